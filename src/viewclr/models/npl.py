"""The Neural Projection Layer (NPL, Nguyen et al. 2021; ViewCLR §2, §3.2.2), vectorised over B·T·m·n points.

Each temporal slice F ∈ R^{c×m×n} of a feature map [B, c, T, m, n] is treated as an image seen by a fixed
*lifting camera* (focal f₀ = max(m, n)/2, centre at the middle of the grid, the scene's centre on its optical
axis at depth d₀):

1. a small CNN predicts, per pixel, a depth d = d₀·exp(δ) and a sub-pixel offset (Δu, Δv); the pixel's 3D
   coordinates are p = d·K₀⁻¹·[u + Δu, v + Δv, 1] − (0, 0, d₀), i.e. relative to the scene centre;
2. a fully connected layer on the slice's pooled features predicts a rotation R (6D representation, Zhou et al.
   2019: continuous and without singularities, unlike Euler angles or quaternions with their double cover) and a
   translation t; world points p_w = Rᵀ(p + t) — the paper's p_w = p·[Rᵀ | Rᵀt];
3. the world representation F_W (eq. 1), in one of two readings (`model.world`):
   - `points` (the paper's stated size, (c + 3)×T×m×n): F_W = [F ; p_w], every pixel's features with its world
     point;
   - `voxels` (eq. 1 read literally): the features, reduced to c′ channels by a 1×1 convolution, and the world
     points are splatted trilinearly into a D×D×D grid around the scene centre, [c′ + 3, T, D, D, D] — the sum of
     eq. 1, every point adding (1 − |x − p_w[x]|)(1 − |y − p_w[y]|)(1 − |z − p_w[z]|) of its F′ to each of the
     eight voxels around it;
4. a learned camera — rotation R_K (6D), scales (s_x, s_y), offsets (x₀, y₀), at distance d₀ from the scene
   centre — projects the world points back: (u′, v′) = A·(R_K·p_w + (0, 0, d₀)) with A = [[s_x, 0, x₀],
   [0, s_y, y₀], [0, 0, 1]] (eq. 2); and
5. the c feature channels are splatted bilinearly onto the m×n grid at (u′, v′) and normalised by the splatted
   weights (eq. 3).

At initialisation (zero last layers, camera = lifting camera) the layer is the identity, exactly: every point
projects back onto its own pixel with weight 1.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

# Below this accumulated splatting weight a pixel fades to zero instead of being divided up (almost nothing landed).
MIN_MASS = 1e-3
MIN_DEPTH = 1e-3


def wide(x: torch.Tensor) -> torch.Tensor:
    """float32, or float64 if already: geometry and splatting never run in half precision."""
    return x.to(torch.promote_types(x.dtype, torch.float32))


def rotation_from_6d(x: torch.Tensor) -> torch.Tensor:
    """[..., 6] → rotation matrices [..., 3, 3] whose first two columns are Gram–Schmidt of the two 3-vectors."""
    a, b = x[..., :3], x[..., 3:]
    first = F.normalize(a, dim=-1)
    second = F.normalize(b - (first * b).sum(-1, keepdim=True) * first, dim=-1)
    third = torch.cross(first, second, dim=-1)
    return torch.stack([first, second, third], dim=-1)


IDENTITY_6D = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0)


def rotation_angle(rotation: torch.Tensor) -> torch.Tensor:
    """Angle of rotation matrices [..., 3, 3], in degrees (for monitoring what the generator learns)."""
    trace = rotation.diagonal(dim1=-2, dim2=-1).sum(-1)
    return torch.rad2deg(torch.arccos(((trace - 1) / 2).clamp(-1.0, 1.0)))


def view_change(rotation: torch.Tensor, camera_rotation: torch.Tensor) -> torch.Tensor:
    """The net change of viewpoint [..., 3, 3] from the lifting camera to the learned one: a point p of a slice is
    seen by the learned camera at R_K·p_w = R_K·Rᵀ·(p + t), so R_K·Rᵀ is how far G turns the scene (the pose R
    alone is not: R = R_K turns nothing)."""
    return camera_rotation @ rotation.transpose(-1, -2)


@dataclass(frozen=True)
class LiftingCamera:
    """The fixed pinhole camera a feature slice is assumed to be seen by (pixel units of the m×n grid)."""

    height: int
    width: int
    depth: float = 2.0  # d₀: scene centre distance

    @property
    def focal(self) -> float:
        return max(self.height, self.width) / 2

    @property
    def centre(self) -> tuple[float, float]:
        return (self.width - 1) / 2, (self.height - 1) / 2

    def pixels(self, device=None, dtype=torch.float32) -> tuple[torch.Tensor, torch.Tensor]:
        """u (column) and v (row) coordinates of the grid, each [m, n]."""
        v, u = torch.meshgrid(
            torch.arange(self.height, device=device, dtype=dtype),
            torch.arange(self.width, device=device, dtype=dtype),
            indexing="ij",
        )
        return u, v

    def lift(self, u: torch.Tensor, v: torch.Tensor, depth: torch.Tensor) -> torch.Tensor:
        """Pixels (u, v) at `depth` → 3D points [..., 3] relative to the scene centre."""
        cx, cy = self.centre
        x = (u - cx) / self.focal * depth
        y = (v - cy) / self.focal * depth
        return torch.stack([x, y, depth - self.depth], dim=-1)


def to_world(points: torch.Tensor, rotation: torch.Tensor, translation: torch.Tensor) -> torch.Tensor:
    """p_w = Rᵀ(p + t): points [G, P, 3], rotation [G, 3, 3], translation [G, 3] → [G, P, 3]."""
    return (points + translation[:, None]) @ rotation


def project(
    world: torch.Tensor, camera_rotation: torch.Tensor, scale: torch.Tensor, offset: torch.Tensor, distance: float
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Eq. 2: world points [..., 3] → pixel coordinates u, v and depth, through A·(R_K·p + (0, 0, distance))."""
    cam = world @ camera_rotation.T
    depth = cam[..., 2] + distance
    safe = depth.clamp_min(MIN_DEPTH)
    u = scale[0] * cam[..., 0] / safe + offset[0]
    v = scale[1] * cam[..., 1] / safe + offset[1]
    return u, v, depth


def splat(
    values: torch.Tensor, u: torch.Tensor, v: torch.Tensor, height: int, width: int, valid: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Eq. 3: bilinear splatting of point values onto grids, one grid per group.

    values [G, P, c] at continuous pixel positions u, v [G, P] (column, row) → (sums [G, height, width, c],
    weights [G, height, width]): each point adds (1 − |x − u|)(1 − |y − v|) of itself to each of the four pixels
    around it; corners off the grid are dropped, so the total weight is the number of points that land inside.
    One `index_add_` per corner over all G·P points at once; computed in float32 even under autocast."""
    groups, points, channels = values.shape
    values, u, v = wide(values), wide(u), wide(v)
    ok = torch.isfinite(u) & torch.isfinite(v)
    if valid is not None:
        ok = ok & valid
    u = torch.where(ok, u, torch.full_like(u, -2.0)).clamp(-2.0, width + 1.0)
    v = torch.where(ok, v, torch.full_like(v, -2.0)).clamp(-2.0, height + 1.0)
    u0, v0 = torch.floor(u), torch.floor(v)
    base = (torch.arange(groups, device=values.device) * (height * width))[:, None]
    sums = values.new_zeros(groups * height * width, channels)
    weights = values.new_zeros(groups * height * width)
    for du in (0.0, 1.0):
        for dv in (0.0, 1.0):
            ui, vi = u0 + du, v0 + dv
            w = (1 - (u - ui).abs()) * (1 - (v - vi).abs())
            inside = ok & (ui >= 0) & (ui <= width - 1) & (vi >= 0) & (vi <= height - 1)
            w = w * inside
            index = (base + vi.clamp(0, height - 1).long() * width + ui.clamp(0, width - 1).long()).reshape(-1)
            sums.index_add_(0, index, (values * w[..., None]).reshape(-1, channels))
            weights.index_add_(0, index, w.reshape(-1))
    return sums.view(groups, height, width, channels), weights.view(groups, height, width)


def splat3d(values: torch.Tensor, position: torch.Tensor, size: int) -> torch.Tensor:
    """Eq. 1: trilinear splatting of point values into voxel grids, one grid per group.

    values [G, P, c] at continuous voxel coordinates `position` [G, P, 3] (x, y, z; voxel centres at integers
    0 … size − 1) → sums [G, size, size, size, c] indexed [z, y, x]. Each point adds (1 − |x − i|)(1 − |y − j|)
    (1 − |z − k|) of itself to each of the eight voxels around it; corners off the grid are dropped, so a point
    wholly inside adds exactly its value (mass is conserved) and the weighted mean position of what it left is
    the point itself. An unnormalised sum, as eq. 1 writes it; float32 even under autocast."""
    groups, points, channels = values.shape
    values, position = wide(values), wide(position)
    ok = torch.isfinite(position).all(-1)
    position = torch.where(ok[..., None], position, torch.full_like(position, -2.0)).clamp(-2.0, size + 1.0)
    low = torch.floor(position)
    base = (torch.arange(groups, device=values.device) * size**3)[:, None]
    sums = values.new_zeros(groups * size**3, channels)
    for corner in range(8):
        offset = torch.tensor(
            [(corner >> 0) & 1, (corner >> 1) & 1, (corner >> 2) & 1], dtype=low.dtype, device=low.device
        )
        index = low + offset
        weight = (1 - (position - index).abs()).prod(-1)
        inside = ok & ((index >= 0) & (index <= size - 1)).all(-1)
        index = index.clamp(0, size - 1).long()
        flat = base + (index[..., 2] * size + index[..., 1]) * size + index[..., 0]
        sums.index_add_(0, flat.reshape(-1), (values * (weight * inside)[..., None]).reshape(-1, channels))
    return sums.view(groups, size, size, size, channels)


@dataclass(frozen=True)
class VoxelGrid:
    """The world grid of eq. 1 (`model.world=voxels`): `size`³ voxels spanning a cube of half-side `extent` around
    the scene centre. The extent is √2·d₀: the lifted points of a slice fill a square of half-side < d₀ around the
    centre, so at any rotation (and no translation) they stay inside the grid."""

    size: int
    extent: float

    def coordinates(self, world: torch.Tensor) -> torch.Tensor:
        """World points [..., 3] → continuous voxel coordinates (−extent → 0, +extent → size − 1)."""
        return (world + self.extent) / (2 * self.extent) * (self.size - 1)


@dataclass
class ProjectionOutput:
    view: torch.Tensor  # [B, c, T, m, n] the features seen from the new viewpoint
    world: torch.Tensor | None  # F_W (eq. 1): [B, c + 3, T, m, n] (points) or [B, c′ + 3, T, D, D, D] (voxels)
    rotation: torch.Tensor  # [B, T, 3, 3]
    translation: torch.Tensor  # [B, T, 3]
    mass: torch.Tensor  # [B, T, m, n] splatted weight per pixel


class NeuralProjection(nn.Module):
    """The Neural Projection Layer (§3.2.2, eq. 1–4) over each temporal slice of a feature map: lift every pixel
    to 3D (a learned depth and sub-pixel offset), place the slice in the world (a learned pose R, t per slice), and
    project the world points with a learned camera (R_K, scale, centre) back onto the m × n grid, splatting the
    features there. It starts as the identity (`reset_to_identity`).

    Args:
        channels, height, width: c, m, n of the feature maps it takes.
        hidden: the coordinate network's width.
        depth: the scene centre's distance from the lifting camera.
        world: "points" (F_W = [F ; p_w] on the feature grid) or "voxels" (F_W splatted into a D³ grid).
        voxel_size, voxel_channels: D and c′ of the voxel world.

    Shapes: `forward(features [B, c, T, m, n])` → `ProjectionOutput`: view [B, c, T, m, n], world
    [B, c + 3, T, m, n] or [B, c′ + 3, T, D, D, D] (None with `with_world=False`), rotation [B, T, 3, 3],
    translation [B, T, 3], mass [B, T, m, n].
    """

    def __init__(
        self,
        channels: int,
        height: int,
        width: int,
        hidden: int = 64,
        depth: float = 2.0,
        world: str = "points",
        voxel_size: int = 8,
        voxel_channels: int = 32,
    ):
        super().__init__()
        if world not in ("points", "voxels"):
            raise ValueError(f"world must be 'points' or 'voxels', not '{world}'")
        self.lifting = LiftingCamera(height, width, depth)
        self.grid = VoxelGrid(voxel_size, 2**0.5 * depth) if world == "voxels" else None
        # eq. 1 as a voxel grid: the channels are reduced first (memory B·T·D³·c′)
        self.reduce = nn.Conv3d(channels, voxel_channels, 1) if world == "voxels" else None
        # per-pixel depth and sub-pixel offset; (1, k, k) kernels: each temporal slice on its own
        self.coordinates = nn.Sequential(
            nn.Conv3d(channels, hidden, 1, bias=False),
            nn.BatchNorm3d(hidden),
            nn.ReLU(inplace=True),
            nn.Conv3d(hidden, hidden, (1, 3, 3), padding=(0, 1, 1), bias=False),
            nn.BatchNorm3d(hidden),
            nn.ReLU(inplace=True),
            nn.Conv3d(hidden, 3, 1),
        )
        # per-slice rotation (6D) and translation
        self.pose = nn.Linear(channels, 9)
        # the camera of eq. 2, learned; starts as the lifting camera
        self.camera_rotation = nn.Parameter(torch.tensor(IDENTITY_6D))
        self.log_scale = nn.Parameter(torch.zeros(2))
        self.offset = nn.Parameter(torch.zeros(2))
        self.reset_to_identity()

    @torch.no_grad()
    def reset_to_identity(self) -> None:
        """Zero depth offsets, identity poses, the lifting camera: the layer returns its input."""
        nn.init.zeros_(self.coordinates[-1].weight)
        nn.init.zeros_(self.coordinates[-1].bias)
        nn.init.zeros_(self.pose.weight)
        self.pose.bias.copy_(torch.tensor((*IDENTITY_6D, 0.0, 0.0, 0.0)))
        self.camera_rotation.copy_(torch.tensor(IDENTITY_6D))
        self.log_scale.zero_()
        self.offset.zero_()

    def world_representation(self, features: torch.Tensor, world: torch.Tensor) -> torch.Tensor:
        """F_W of eq. 1 from the features [B, c, T, m, n] and their world points [B·T, m·n, 3]."""
        b, c, t, m, n = features.shape
        if self.grid is None:  # the points: F′ = [F ; p_w] at every pixel
            world_map = world.view(b, t, m, n, 3).permute(0, 4, 1, 2, 3)
            return torch.cat([features, world_map.to(features.dtype)], dim=1)
        reduced = wide(self.reduce(features)).permute(0, 2, 3, 4, 1).reshape(b * t, m * n, -1)
        values = torch.cat([reduced, world], dim=-1)  # F′: reduced features and world coordinates
        grid = splat3d(values, self.grid.coordinates(world), self.grid.size)  # [B·T, D, D, D, c′ + 3]
        d = self.grid.size
        return grid.view(b, t, d, d, d, -1).permute(0, 5, 1, 2, 3, 4).to(features.dtype)

    def camera(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """R_K [3, 3], (s_x, s_y), (x₀, y₀) of eq. 2."""
        cx, cy = self.lifting.centre
        scale = self.lifting.focal * torch.exp(self.log_scale)
        offset = self.offset + torch.tensor([cx, cy], device=self.offset.device, dtype=self.offset.dtype)
        return rotation_from_6d(self.camera_rotation), scale, offset

    @property
    def world_shape(self) -> tuple[int, ...]:
        """F_W's shape per sample and slice, without T: (c + 3, m, n) or (c′ + 3, D, D, D)."""
        if self.grid is None:
            return (self.pose.in_features + 3, self.lifting.height, self.lifting.width)
        return (self.reduce.out_channels + 3, *(self.grid.size,) * 3)

    def forward(self, features: torch.Tensor, with_world: bool = True) -> ProjectionOutput:
        """The features seen by the learned camera, and F_W.

        Args:
            features: [B, c, T, m, n]; m × n must be the size the layer was built for.
            with_world: compute F_W (False: a pass that needs only the view, the adversary's).

        Returns:
            ProjectionOutput (shapes in the class docstring).
        """
        b, c, t, m, n = features.shape
        if (m, n) != (self.lifting.height, self.lifting.width):
            raise ValueError(f"NPL built for {self.lifting.height}×{self.lifting.width} slices, got {m}×{n}")
        # 1. per-pixel 3D coordinates, relative to the scene centre
        raw = wide(self.coordinates(features)).permute(0, 2, 3, 4, 1)  # [B, T, m, n, 3]
        u, v = self.lifting.pixels(features.device, raw.dtype)
        depth = self.lifting.depth * torch.exp(raw[..., 2].clamp(-4, 4))
        points = self.lifting.lift(u + raw[..., 0], v + raw[..., 1], depth)
        # 2. per-slice rotation and translation; world points
        pose = wide(self.pose(features.mean(dim=(3, 4)).transpose(1, 2)))  # [B, T, 9]
        rotation, translation = rotation_from_6d(pose[..., :6]), pose[..., 6:]
        world = to_world(points.reshape(b * t, m * n, 3), rotation.reshape(b * t, 3, 3), translation.reshape(b * t, 3))
        # 3. F_W (eq. 1)
        world_features = self.world_representation(features, world) if with_world else None
        # 4.–5. project with the learned camera and splat the features back onto the grid
        camera_rotation, scale, offset = self.camera()
        pu, pv, pdepth = project(world, camera_rotation, scale, offset, self.lifting.depth)
        values = features.permute(0, 2, 3, 4, 1).reshape(b * t, m * n, c)
        sums, mass = splat(values, pu, pv, m, n, valid=pdepth > MIN_DEPTH)
        view = sums / mass.clamp_min(MIN_MASS)[..., None]
        view = view.view(b, t, m, n, c).permute(0, 4, 1, 2, 3).to(features.dtype)
        return ProjectionOutput(view, world_features, rotation, translation, mass.view(b, t, m, n))
