"""Ray-cast rendering of the synthetic actor in a room, vectorised over frames and pixels. (Above ~350 lines: the
ray–primitive geometry, clothing, shading and the room are one renderer.)

The body is 16 primitives — ellipsoids (head, chest, belly) and capsules (neck, limbs, hands, feet). Every pixel's
ray is intersected with every primitive analytically (all frames at once, as [frames, pixels] arrays), the
nearest hit wins (true depth order, so limbs pass in front of and behind the body), and the winner is shaded:
its colour and clothing pattern come from where the ray hit it in the part's own frame, so patterns move with the
body; brightness is Lambertian under a directional light plus ambient light. Only a box around the actor (and
its shadow) is ray-cast; the room behind — a floor texture, walls, a ceiling — is rendered once per video.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from viewclr.synth.body import Actor, J, Posed, Skeleton
from viewclr.synth.camera import Camera

ROOM_HALF_SIZE = 5.0  # metres from the centre to each wall
ROOM_HEIGHT = 3.2
FLOOR_PATTERNS = ("checker", "planks", "tiles", "plain")
SHADOW_CASTERS = ("pelvis", "spine", "neck", "l_knee", "r_knee", "l_ankle", "r_ankle")


@dataclass(frozen=True)
class Scene:
    """One setup's room: floor and wall looks (the camera rig is separate)."""

    floor_pattern: str
    floor_colours: tuple[tuple[int, int, int], tuple[int, int, int]]
    tile: float  # metres
    wall_colour: tuple[int, int, int]
    accent_colour: tuple[int, int, int]  # a band along the walls
    accent_height: float

    def to_dict(self) -> dict:
        return {k: (list(map(list, v)) if k == "floor_colours" else v) for k, v in self.__dict__.items()}


@dataclass(frozen=True)
class Light:
    direction: tuple[float, float, float]  # world, pointing towards the light
    intensity: float
    ambient: float

    def to_dict(self) -> dict:
        return {
            "direction": [round(c, 5) for c in self.direction],
            "intensity": self.intensity,
            "ambient": self.ambient,
        }


def random_scene(rng: np.random.Generator) -> Scene:
    base = rng.integers(60, 220, size=3)
    second = np.clip(base + rng.integers(-70, 70, size=3), 0, 255)
    return Scene(
        floor_pattern=FLOOR_PATTERNS[int(rng.integers(len(FLOOR_PATTERNS)))],
        floor_colours=(tuple(int(c) for c in base), tuple(int(c) for c in second)),
        tile=float(rng.uniform(0.3, 0.8)),
        wall_colour=tuple(int(c) for c in rng.integers(90, 245, size=3)),
        accent_colour=tuple(int(c) for c in rng.integers(20, 230, size=3)),
        accent_height=float(rng.uniform(0.8, 1.6)),
    )


def random_light(rng: np.random.Generator) -> Light:
    azimuth, elevation = rng.uniform(0, 2 * np.pi), np.radians(rng.uniform(45, 75))
    direction = (np.cos(elevation) * np.sin(azimuth), np.sin(elevation), np.cos(elevation) * np.cos(azimuth))
    return Light(
        direction=tuple(float(c) for c in direction),
        intensity=float(rng.uniform(0.75, 1.05)),
        ambient=float(rng.uniform(0.35, 0.5)),
    )


# ---------------------------------------------------------------------------------------------- the body's parts


@dataclass(frozen=True)
class Capsule:
    a: np.ndarray  # [F, 3] end points, camera coordinates
    b: np.ndarray
    radius: float
    material: str


@dataclass(frozen=True)
class Ellipsoid:
    centre: np.ndarray  # [F, 3] camera coordinates
    rotation: np.ndarray  # [F, 3, 3] part frame → camera
    axes: np.ndarray  # [3] semi-axes in the part frame
    material: str


def body_parts(posed: Posed, skel: Skeleton, actor: Actor, camera: Camera) -> list[Capsule | Ellipsoid]:
    """The actor's primitives in camera coordinates."""
    joints = camera.to_camera(posed.joints).astype(np.float32)
    rot = (camera.R @ posed.rotations).astype(np.float32)  # part frames → camera
    r = skel.radii
    h = actor.height / 1.75

    def at(name: str) -> np.ndarray:
        return joints[:, J[name]]

    def offset(name: str, local: tuple[float, float, float]) -> np.ndarray:
        return at(name) + rot[:, J[name]] @ np.asarray(local, np.float32)

    def axes(*values: float) -> np.ndarray:
        return np.asarray(values, np.float32)

    forearm = "skin" if actor.short_sleeves else "shirt"

    def ellipsoid(joint: str, frame: str, lift: float, prefix: str, material: str) -> Ellipsoid:
        radii = axes(r[f"{prefix}_x"], r[f"{prefix}_y"], r[f"{prefix}_z"])
        return Ellipsoid(offset(joint, (0, lift * h, 0)), rot[:, J[frame]], radii, material)

    parts: list[Capsule | Ellipsoid] = [
        ellipsoid("pelvis", "pelvis", 0.10, "belly", "belly"),
        ellipsoid("spine", "spine", 0.14, "chest", "shirt"),
        ellipsoid("head", "neck", 0.0, "head", "head"),
        Capsule(at("neck") - (at("head") - at("neck")) * 0.4, at("head"), r["neck"], "skin"),
    ]
    for side in ("l", "r"):
        parts += [
            Capsule(at(f"{side}_shoulder"), at(f"{side}_elbow"), r["upper_arm"], "shirt"),
            Capsule(at(f"{side}_elbow"), at(f"{side}_wrist"), r["forearm"], forearm),
            Capsule(at(f"{side}_wrist"), at(f"{side}_hand"), r["hand"], "skin"),
            Capsule(at(f"{side}_hip"), at(f"{side}_knee"), r["thigh"], "trousers"),
            Capsule(at(f"{side}_knee"), at(f"{side}_ankle"), r["shin"], "trousers"),
            Capsule(at(f"{side}_ankle"), at(f"{side}_foot"), r["foot"], "shoes"),
        ]
    return parts


def _capsule_depth(part: Capsule, rays: np.ndarray) -> np.ndarray:
    """Distance along each ray (camera at the origin) to the capsule, [F, P]; inf where it misses."""
    ba = part.b - part.a
    oa = -part.a
    baba = (ba * ba).sum(-1)[:, None]
    baoa = (ba * oa).sum(-1)[:, None]
    oaoa = (oa * oa).sum(-1)[:, None]
    bard = ba @ rays.T
    rdoa = oa @ rays.T
    r2 = part.radius**2
    k2 = np.maximum(baba - bard * bard, 1e-12)
    k1 = baba * rdoa - baoa * bard
    k0 = baba * oaoa - baoa * baoa - r2 * baba
    h = k1 * k1 - k2 * k0
    inside = h >= 0  # the infinite cylinder contains the capsule: a miss there misses it all
    t = (-k1 - np.sqrt(np.maximum(h, 0))) / k2
    y = baoa + t * bard
    on_body = inside & (y > 0) & (y < baba)
    # otherwise the ray can only hit one of the spherical caps: at a when y <= 0, at b beyond
    below = y <= 0
    cap_b = np.where(below, rdoa, rdoa - bard)
    cap_c = np.where(below, oaoa - r2, (part.b * part.b).sum(-1)[:, None] - r2)
    hc = cap_b * cap_b - cap_c
    t_cap = -cap_b - np.sqrt(np.maximum(hc, 0))
    t = np.where(on_body, t, np.where(inside & (hc >= 0), t_cap, np.inf))
    return np.where(t > 0, t, np.inf).astype(np.float32)


def _ellipsoid_frame(part: Ellipsoid) -> tuple[np.ndarray, np.ndarray]:
    """M = S⁻¹·Rᵀ (camera → unit-sphere space) [F, 3, 3] and the ray origin there, [F, 3]."""
    m = part.rotation.transpose(0, 2, 1) / part.axes[None, :, None]
    return m, -(m @ part.centre[..., None])[..., 0]


def _ellipsoid_depth(part: Ellipsoid, rays: np.ndarray, ray_products: np.ndarray) -> np.ndarray:
    """Distance along each ray to the ellipsoid, [F, P]; inf where it misses.

    In unit-sphere space the ray is o' + t·M·d; |M·d|² = dᵀ(MᵀM)d is a quadratic form in the ray's components,
    so with the six products of each ray precomputed both quadratic coefficients are matrix products."""
    m, origin = _ellipsoid_frame(part)
    q = m.transpose(0, 2, 1) @ m  # [F, 3, 3], symmetric
    q6 = np.stack([q[:, 0, 0], q[:, 1, 1], q[:, 2, 2], 2 * q[:, 0, 1], 2 * q[:, 0, 2], 2 * q[:, 1, 2]], -1)
    a = q6 @ ray_products.T
    b = (m.transpose(0, 2, 1) @ origin[..., None])[..., 0] @ rays.T
    c = (origin * origin).sum(-1)[:, None] - 1
    h = b * b - a * c
    t = (-b - np.sqrt(np.maximum(h, 0))) / a
    return np.where((h >= 0) & (t > 0), t, np.inf).astype(np.float32)


def _ray_products(rays: np.ndarray) -> np.ndarray:
    x, y, z = rays[:, 0], rays[:, 1], rays[:, 2]
    return np.stack([x * x, y * y, z * z, x * y, x * z, y * z], -1)


def _hatch(value: np.ndarray, count: float) -> np.ndarray:
    return (np.floor(value * count).astype(np.int64) % 2).astype(bool)


class Materials:
    """Per-part colours (0–1) and the clothing pattern, evaluated at hit points in the part's own frame."""

    def __init__(self, actor: Actor):
        def c(rgb):
            return np.asarray(rgb, np.float32) / 255

        self.actor = actor
        self.colour = {
            "skin": c(actor.skin),
            "hair": c(actor.hair),
            "shirt": c(actor.shirt),
            "shirt2": c(actor.shirt_second),
            "trousers": c(actor.trousers),
            "shoes": c(actor.shoes),
        }

    def shirt(self, pattern_a: np.ndarray, pattern_b: np.ndarray | None) -> np.ndarray:
        """Shirt colour at points with pattern coordinates a (along the part) and b (around it, if known)."""
        kind = self.actor.shirt_pattern
        if kind == "solid" or (kind == "vstripes" and pattern_b is None):
            second = np.zeros(pattern_a.shape, bool)
        elif kind == "hstripes" or pattern_b is None:
            second = _hatch(pattern_a, 1.0)
        elif kind == "vstripes":
            second = _hatch(pattern_b, 1.0)
        else:
            second = _hatch(pattern_a, 1.0) ^ _hatch(pattern_b, 1.0)
        return np.where(second[:, None], self.colour["shirt2"], self.colour["shirt"])

    def ellipsoid(self, material: str, q: np.ndarray, axes: np.ndarray) -> np.ndarray:
        """Colours at unit-sphere points q [N, 3] of an ellipsoid with semi-axes `axes` (metres)."""
        if material == "head":  # face in front, hair behind and on top
            hair = (q[:, 2] < -0.1) | (q[:, 1] > 0.45 - 0.3 * q[:, 2])
            return np.where(hair[:, None], self.colour["hair"], self.colour["skin"])
        height = q[:, 1] * axes[1]
        around = (np.arctan2(q[:, 0], q[:, 2]) + np.pi) * axes[0]
        colour = self.shirt(height / 0.07, around / 0.09)
        if material == "belly":  # trousers below the belt
            colour = np.where((q[:, 1] < -0.35)[:, None], self.colour["trousers"], colour)
        return colour

    def capsule(self, material: str, along: np.ndarray, length: np.ndarray) -> np.ndarray:
        if material == "shirt":
            return self.shirt(along * length / 0.07, None)
        return np.broadcast_to(self.colour[material], (len(along), 3))


# ---------------------------------------------------------------------------------------------- the room


def _floor_colour(scene: Scene, x: np.ndarray, z: np.ndarray) -> np.ndarray:
    first, second = (np.asarray(c, np.float32) / 255 for c in scene.floor_colours)
    u, v = x / scene.tile, z / scene.tile
    if scene.floor_pattern == "checker":
        mix = ((np.floor(u) + np.floor(v)) % 2).astype(np.float32)
    elif scene.floor_pattern == "planks":  # long boards, staggered
        row = np.floor(v * 2)
        mix = 0.35 * ((np.floor(u / 3 + 0.5 * row) % 2) + 0.6 * (np.abs((v * 2) % 1 - 0.5) > 0.46))
    elif scene.floor_pattern == "tiles":  # grout lines
        mix = ((np.abs(u % 1 - 0.5) > 0.46) | (np.abs(v % 1 - 0.5) > 0.46)).astype(np.float32)
    else:
        mix = np.zeros_like(u)
    return first * (1 - mix[..., None]) + second * mix[..., None]


@dataclass(frozen=True)
class Room:
    """The background image of one camera and where its floor pixels are (for shadows)."""

    image: np.ndarray  # [H, W, 3] float32 in 0–1
    floor_xz: np.ndarray  # [H, W, 2] world floor coordinates of each pixel (nan where not floor)


def render_room(scene: Scene, camera: Camera, light: Light) -> Room:
    rays_world = camera.rays() @ camera.R  # camera → world directions
    origin = camera.position
    dx, dy, dz = rays_world[:, 0], rays_world[:, 1], rays_world[:, 2]
    with np.errstate(divide="ignore", invalid="ignore"):
        t_floor = np.where(dy < 0, -origin[1] / dy, np.inf)
        t_ceiling = np.where(dy > 0, (ROOM_HEIGHT - origin[1]) / dy, np.inf)
        t_x = np.where(dx != 0, (np.sign(dx) * ROOM_HALF_SIZE - origin[0]) / dx, np.inf)
        t_z = np.where(dz != 0, (np.sign(dz) * ROOM_HALF_SIZE - origin[2]) / dz, np.inf)
    t_wall = np.minimum(t_x, t_z)
    t = np.minimum(np.minimum(t_floor, t_ceiling), t_wall)
    hit = origin + t[:, None] * rays_world
    light_dir = np.asarray(light.direction)
    colour = np.empty((len(t), 3), np.float32)
    # walls: each one lit differently by the light, a darker skirting board and a coloured band
    wall_normal = np.where(
        (t_x < t_z)[:, None], [[-1.0, 0, 0]] * np.sign(dx)[:, None], [[0, 0, -1.0]] * np.sign(dz)[:, None]
    )
    lit = light.ambient + (1 - light.ambient) * light.intensity * np.clip(wall_normal @ light_dir, 0, 1) * 0.6
    wall = np.asarray(scene.wall_colour, np.float32) / 255 * (0.55 + 0.45 * lit)[:, None]
    band = np.abs(hit[:, 1] - scene.accent_height) < 0.06
    wall[band] = np.asarray(scene.accent_colour, np.float32) / 255 * 0.9
    wall[hit[:, 1] < 0.1] *= 0.55
    colour[:] = wall
    is_floor = t_floor <= t
    floor = _floor_colour(scene, hit[is_floor, 0], hit[is_floor, 2])
    falloff = 1.0 / (1.0 + 0.04 * (hit[is_floor, 0] ** 2 + hit[is_floor, 2] ** 2))  # light pooled near the actor
    colour[is_floor] = floor * (light.ambient + (1 - light.ambient) * light.intensity * light_dir[1] * falloff)[:, None]
    is_ceiling = t_ceiling <= t
    colour[is_ceiling] = 0.85 * np.asarray(scene.wall_colour, np.float32) / 255
    floor_xz = np.full((len(t), 2), np.nan, np.float32)
    floor_xz[is_floor] = hit[is_floor][:, [0, 2]]
    shape = (camera.height, camera.width)
    return Room(colour.reshape(*shape, 3), floor_xz.reshape(*shape, 2))


# ---------------------------------------------------------------------------------------------- frames

Box = tuple[int, int, int, int]  # y0, y1, x0, x1 (pixels, end exclusive)


def _pixel_box(camera: Camera, centres: np.ndarray, radius: float | np.ndarray) -> Box | None:
    """Pixels that spheres of `radius` around world-or-camera `centres` [N, 3] (camera coordinates) can cover."""
    depth = centres[:, 2]
    centres, radius = centres[depth > 0.05], np.broadcast_to(radius, depth.shape)[depth > 0.05]
    if not len(centres):
        return None
    depth = centres[:, 2]
    u = camera.fx * centres[:, 0] / depth + camera.cx
    v = camera.fy * centres[:, 1] / depth + camera.cy
    # a sphere's image is an ellipse no wider than r·f/(z − r) around its centre's image, more off-axis
    spread = 1.3 * camera.fx * radius / np.maximum(depth - radius, 0.05) + 1
    x0, x1 = int(np.floor((u - spread).min())), int(np.ceil((u + spread).max())) + 1
    y0, y1 = int(np.floor((v - spread).min())), int(np.ceil((v + spread).max())) + 1
    x0, x1, y0, y1 = max(x0, 0), min(x1, camera.width), max(y0, 0), min(y1, camera.height)
    return (y0, y1, x0, x1) if y1 > y0 and x1 > x0 else None


def _part_box(part: Capsule | Ellipsoid, camera: Camera) -> Box | None:
    if isinstance(part, Capsule):
        return _pixel_box(camera, np.concatenate([part.a, part.b]), part.radius)
    return _pixel_box(camera, part.centre, float(part.axes.max()))


def _shadow_points(posed: Posed, light: Light) -> np.ndarray:
    """Where a few body points cast their shadow on the floor, [F, N, 3], along the light direction."""
    caster = posed.joints[:, [J[n] for n in SHADOW_CASTERS]]
    light_dir = np.asarray(light.direction)
    return caster - caster[..., 1:2] / light_dir[1] * light_dir


SHADOW_SIGMA = 0.11  # metres


def _add_shadows(out: np.ndarray, posed: Posed, camera: Camera, room: Room, light: Light) -> None:
    """Darken the floor under the actor in place: one soft blob (in the floor plane) per shadow caster."""
    shadows = _shadow_points(posed, light)
    spread = 3.5 * SHADOW_SIGMA
    corners = np.concatenate([shadows + np.array([dx, 0, dz]) for dx in (-spread, spread) for dz in (-spread, spread)])
    box = _pixel_box(camera, camera.to_camera(corners.reshape(-1, 3)), 0.0)
    if box is None:
        return
    y0, y1, x0, x1 = box
    floor_xz = room.floor_xz[y0:y1, x0:x1].reshape(-1, 2)
    on_floor = np.flatnonzero(~np.isnan(floor_xz[:, 0]))
    if not len(on_floor):
        return
    centres = shadows[..., [0, 2]].astype(np.float32).reshape(-1, 2)  # [F·N, 2]
    points = floor_xz[on_floor]
    d2 = (points * points).sum(-1)[:, None] - 2 * points @ centres.T + (centres * centres).sum(-1)[None]
    blobs = np.exp(-np.maximum(d2, 0) / (2 * SHADOW_SIGMA**2)).reshape(len(points), *shadows.shape[:2]).sum(-1)
    darkness = np.clip(blobs.T, 0, 1) * (0.55 * light.intensity)  # [F, P]
    region = out[:, y0:y1, x0:x1].reshape(out.shape[0], -1, 3)
    region[:, on_floor] *= (1 - darkness)[..., None]
    out[:, y0:y1, x0:x1] = region.reshape(out.shape[0], y1 - y0, x1 - x0, 3)


def render_frames(posed: Posed, skel: Skeleton, actor: Actor, camera: Camera, room: Room, light: Light) -> np.ndarray:
    """uint8 frames [F, H, W, 3] of the posed actor in the room, seen by `camera`."""
    frames = posed.joints.shape[0]
    out = np.broadcast_to(room.image, (frames, *room.image.shape)).copy()
    _add_shadows(out, posed, camera, room, light)
    parts = body_parts(posed, skel, actor, camera)
    boxes = [_part_box(part, camera) for part in parts]
    present = [b for b in boxes if b is not None]
    if present:
        body_box = (
            min(b[0] for b in present),
            max(b[1] for b in present),
            min(b[2] for b in present),
            max(b[3] for b in present),
        )
        _render_body(out, parts, boxes, body_box, actor, camera, light)
    return (np.clip(out, 0, 1) * 255 + 0.5).astype(np.uint8)


def _render_body(out, parts, boxes, body_box: Box, actor: Actor, camera: Camera, light: Light) -> None:
    """Ray-cast the parts inside `body_box` and shade the nearest hit, in place. Each part is only tested on the
    pixels its own box (over all frames) covers, a fraction of the actor's box for all but the swinging limbs."""
    frames = out.shape[0]
    by0, by1, bx0, bx1 = body_box
    all_rays = camera.rays().reshape(camera.height, camera.width, 3).astype(np.float32)
    nearest = np.full((frames, by1 - by0, bx1 - bx0), np.inf, np.float32)
    winner = np.full(nearest.shape, -1, np.int8)
    for index, (part, box) in enumerate(zip(parts, boxes, strict=True)):
        if box is None:
            continue
        y0, y1, x0, x1 = box
        rays = all_rays[y0:y1, x0:x1].reshape(-1, 3)
        if isinstance(part, Capsule):
            depth = _capsule_depth(part, rays)
        else:
            depth = _ellipsoid_depth(part, rays, _ray_products(rays))
        depth = depth.reshape(frames, y1 - y0, x1 - x0)
        window = (slice(None), slice(y0 - by0, y1 - by0), slice(x0 - bx0, x1 - bx0))
        closer = depth < nearest[window]
        nearest[window] = np.where(closer, depth, nearest[window])
        winner[window][closer] = index

    rays = all_rays[by0:by1, bx0:bx1].reshape(-1, 3)
    nearest, winner = nearest.reshape(frames, -1), winner.reshape(frames, -1)
    region = out[:, by0:by1, bx0:bx1].reshape(frames, -1, 3)
    hit_f, hit_p = np.nonzero(winner >= 0)
    order = np.argsort(winner[hit_f, hit_p], kind="stable")
    hit_f, hit_p = hit_f[order], hit_p[order]
    counts = np.bincount(winner[hit_f, hit_p], minlength=len(parts))
    materials = Materials(actor)
    light_cam = (camera.R @ np.asarray(light.direction)).astype(np.float32)
    start = 0
    for part, count in zip(parts, counts, strict=True):
        f, p = hit_f[start : start + count], hit_p[start : start + count]
        start += count
        if not count:
            continue
        point = nearest[f, p, None] * rays[p]
        if isinstance(part, Capsule):
            axis = part.b[f] - part.a[f]
            length2 = np.maximum((axis * axis).sum(-1), 1e-12)
            along = np.clip(((point - part.a[f]) * axis).sum(-1) / length2, 0, 1)
            normal = point - part.a[f] - along[:, None] * axis
            colour = materials.capsule(part.material, along, np.sqrt(length2))
        else:
            m, _ = _ellipsoid_frame(part)
            q = (m[f] @ (point - part.centre[f])[..., None])[..., 0]
            normal = (part.rotation[f] @ (q / part.axes)[..., None])[..., 0]
            colour = materials.ellipsoid(part.material, q, part.axes)
        normal /= np.maximum(np.linalg.norm(normal, axis=-1, keepdims=True), 1e-9)
        diffuse = np.clip(normal @ light_cam, 0, 1) * light.intensity
        facing = np.clip(-(normal * rays[p]).sum(-1), 0, 1)  # a little light from the camera's side
        shade = light.ambient + (1 - light.ambient) * (0.85 * diffuse + 0.25 * facing)
        region[f, p] = colour * shade[:, None]
    out[:, by0:by1, bx0:bx1] = region.reshape(frames, by1 - by0, bx1 - bx0, 3)
