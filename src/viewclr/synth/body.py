"""The synthetic actor: a 20-joint skeleton, per-actor proportions and looks, and forward kinematics.

Coordinates are metres in the actor's frame at rest: y up, z the direction the actor faces, x the actor's left
(right-handed). A pose is a set of named angle channels over time (see `CHANNELS`); `forward_kinematics` turns
them into world joint positions and per-joint orientations, with the body put back on the floor every frame
(the lower foot touches y = 0) before any jump lift is added.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# JOINTS and CHANNELS keep their hand layout (`# fmt: skip`): a limb per row.
JOINTS: tuple[str, ...] = (
    "pelvis", "spine", "neck", "head",
    "l_shoulder", "l_elbow", "l_wrist", "l_hand",
    "r_shoulder", "r_elbow", "r_wrist", "r_hand",
    "l_hip", "l_knee", "l_ankle", "l_foot",
    "r_hip", "r_knee", "r_ankle", "r_foot",
)  # fmt: skip
PARENTS: tuple[int, ...] = (-1, 0, 1, 2, 1, 4, 5, 6, 1, 8, 9, 10, 0, 12, 13, 14, 0, 16, 17, 18)
J = {name: i for i, name in enumerate(JOINTS)}

# Angle channels of a pose, in radians (root_* in metres). Signs: flex > 0 raises a limb forward, abd > 0 moves
# it away from the body's midline, knee/elbow > 0 bend, pitch > 0 leans forward, roll > 0 leans to the actor's
# right, yaw > 0 turns to the actor's left; shoulder_rot > 0 turns the elbow's bending plane so that a bent forearm
# points up when the arm is held out sideways (as in waving).
CHANNELS: tuple[str, ...] = (
    "root_x", "root_z", "lift", "yaw",
    "pelvis_pitch", "pelvis_roll", "spine_pitch", "spine_roll", "spine_yaw", "neck_pitch", "neck_yaw",
    "l_shoulder_flex", "l_shoulder_abd", "l_shoulder_rot", "l_elbow",
    "r_shoulder_flex", "r_shoulder_abd", "r_shoulder_rot", "r_elbow",
    "l_hip_flex", "l_hip_abd", "l_knee", "r_hip_flex", "r_hip_abd", "r_knee",
)  # fmt: skip

SKIN_TONES = ((244, 208, 177), (229, 184, 143), (198, 134, 66), (141, 85, 36), (94, 58, 36), (255, 224, 196))
HAIR_COLOURS = ((30, 22, 18), (72, 45, 28), (140, 95, 50), (200, 170, 110), (110, 110, 110), (20, 20, 20))
PATTERNS = ("solid", "hstripes", "vstripes", "checks")


@dataclass(frozen=True)
class Actor:
    """One synthetic subject: body measurements and looks, fixed for all of its videos."""

    height: float  # metres, top of the head
    leg: float  # leg length factor (~0.94–1.06)
    arm: float  # arm length factor
    shoulders: float  # shoulder width factor
    girth: float  # radius factor of torso and limbs (0.8 slim … 1.3 broad)
    head: float  # head size factor
    skin: tuple[int, int, int]
    hair: tuple[int, int, int]
    shirt: tuple[int, int, int]
    shirt_second: tuple[int, int, int]  # the pattern's second colour
    shirt_pattern: str
    short_sleeves: bool
    trousers: tuple[int, int, int]
    shoes: tuple[int, int, int]
    arms_out: float  # resting shoulder abduction (radians)

    def to_dict(self) -> dict:
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in self.__dict__.items()}


def random_colour(rng: np.random.Generator, low: int = 20, high: int = 235) -> tuple[int, int, int]:
    return tuple(int(c) for c in rng.integers(low, high, size=3))


def random_actor(rng: np.random.Generator) -> Actor:
    shirt = random_colour(rng)
    return Actor(
        height=float(rng.uniform(1.50, 1.92)),
        leg=float(rng.uniform(0.94, 1.06)),
        arm=float(rng.uniform(0.94, 1.06)),
        shoulders=float(rng.uniform(0.88, 1.12)),
        girth=float(rng.uniform(0.8, 1.3)),
        head=float(rng.uniform(0.92, 1.08)),
        skin=SKIN_TONES[int(rng.integers(len(SKIN_TONES)))],
        hair=HAIR_COLOURS[int(rng.integers(len(HAIR_COLOURS)))],
        shirt=shirt,
        shirt_second=tuple(int(255 - c * 0.6) for c in shirt) if rng.random() < 0.5 else random_colour(rng),
        shirt_pattern=PATTERNS[int(rng.integers(len(PATTERNS)))],
        short_sleeves=bool(rng.random() < 0.4),
        trousers=random_colour(rng, 15, 180),
        shoes=random_colour(rng, 10, 120),
        arms_out=float(np.radians(rng.uniform(6, 14))),
    )


@dataclass(frozen=True)
class Skeleton:
    """Bone offsets (parent → joint, in the parent's frame at rest) and body-part radii of one actor."""

    offsets: np.ndarray  # [J, 3]
    pelvis_height: float
    radii: dict[str, float]


def skeleton(actor: Actor) -> Skeleton:
    h = actor.height / 1.75  # proportions are written for a 1.75 m person
    leg, arm, sw = actor.leg, actor.arm, actor.shoulders
    off = np.zeros((len(JOINTS), 3))
    off[J["spine"]] = (0, 0.26 * h, 0)
    off[J["neck"]] = (0, 0.30 * h, 0)
    off[J["head"]] = (0, 0.12 * h * actor.head, 0.01 * h)
    for side, sign in (("l", 1.0), ("r", -1.0)):
        off[J[f"{side}_shoulder"]] = (sign * 0.19 * h * sw, 0.25 * h, -0.01 * h)
        off[J[f"{side}_elbow"]] = (0, -0.31 * h * arm, 0)
        off[J[f"{side}_wrist"]] = (0, -0.27 * h * arm, 0)
        off[J[f"{side}_hand"]] = (0, -0.14 * h * arm, 0)
        off[J[f"{side}_hip"]] = (sign * 0.095 * h * (0.5 + 0.5 * actor.girth), -0.05 * h, 0)
        off[J[f"{side}_knee"]] = (0, -0.42 * h * leg, 0)
        off[J[f"{side}_ankle"]] = (0, -0.41 * h * leg, 0)
        off[J[f"{side}_foot"]] = (0, -0.05 * h, 0.15 * h)
    g = actor.girth
    radii = {
        "chest_x": 0.17 * h * sw * (0.6 + 0.4 * g),
        "chest_y": 0.19 * h,
        "chest_z": 0.11 * h * g,
        "belly_x": 0.15 * h * (0.55 + 0.45 * g),
        "belly_y": 0.17 * h,
        "belly_z": 0.11 * h * g,
        "head_x": 0.085 * h * actor.head,
        "head_y": 0.11 * h * actor.head,
        "head_z": 0.10 * h * actor.head,
        "neck": 0.05 * h * (0.7 + 0.3 * g),
        "upper_arm": 0.05 * h * g,
        "forearm": 0.04 * h * g,
        "hand": 0.035 * h,
        "thigh": 0.075 * h * g,
        "shin": 0.055 * h * g,
        "foot": 0.04 * h,
    }
    pelvis_height = 0.05 * h + 0.83 * h * leg + 0.05 * h + radii["foot"]
    return Skeleton(offsets=off, pelvis_height=pelvis_height, radii=radii)


def rot_x(angle: np.ndarray) -> np.ndarray:
    c, s = np.cos(angle), np.sin(angle)
    o, z = np.ones_like(angle), np.zeros_like(angle)
    return np.stack([np.stack([o, z, z], -1), np.stack([z, c, -s], -1), np.stack([z, s, c], -1)], -2)


def rot_y(angle: np.ndarray) -> np.ndarray:
    c, s = np.cos(angle), np.sin(angle)
    o, z = np.ones_like(angle), np.zeros_like(angle)
    return np.stack([np.stack([c, z, s], -1), np.stack([z, o, z], -1), np.stack([-s, z, c], -1)], -2)


def rot_z(angle: np.ndarray) -> np.ndarray:
    c, s = np.cos(angle), np.sin(angle)
    o, z = np.ones_like(angle), np.zeros_like(angle)
    return np.stack([np.stack([c, -s, z], -1), np.stack([s, c, z], -1), np.stack([z, z, o], -1)], -2)


def local_rotations(pose: dict[str, np.ndarray]) -> np.ndarray:
    """[F, J, 3, 3] rotation of each joint relative to its parent, from the pose's angle channels."""
    frames = len(pose["yaw"])
    local = np.broadcast_to(np.eye(3), (frames, len(JOINTS), 3, 3)).copy()
    # Rx(+a) tilts an upward bone forward and swings a hanging bone backward; Rz(+a) tilts an upward bone to the
    # actor's right and swings a hanging bone to the actor's left.
    local[:, J["pelvis"]] = rot_y(pose["yaw"]) @ rot_x(pose["pelvis_pitch"]) @ rot_z(pose["pelvis_roll"])
    local[:, J["spine"]] = rot_y(pose["spine_yaw"]) @ rot_x(pose["spine_pitch"]) @ rot_z(pose["spine_roll"])
    local[:, J["neck"]] = rot_x(pose["neck_pitch"]) @ rot_y(pose["neck_yaw"])
    for side, sign in (("l", 1.0), ("r", -1.0)):
        local[:, J[f"{side}_shoulder"]] = (
            rot_x(-pose[f"{side}_shoulder_flex"])
            @ rot_z(sign * pose[f"{side}_shoulder_abd"])
            @ rot_y(sign * pose[f"{side}_shoulder_rot"])
        )
        local[:, J[f"{side}_elbow"]] = rot_x(-pose[f"{side}_elbow"])
        local[:, J[f"{side}_hip"]] = rot_x(-pose[f"{side}_hip_flex"]) @ rot_z(sign * pose[f"{side}_hip_abd"])
        local[:, J[f"{side}_knee"]] = rot_x(pose[f"{side}_knee"])
        # the ankle keeps the foot level: it undoes the pitch that pelvis, hip and knee gave the shin
        shin_pitch = pose["pelvis_pitch"] - pose[f"{side}_hip_flex"] + pose[f"{side}_knee"]
        local[:, J[f"{side}_ankle"]] = rot_x(-shin_pitch)
    return local


@dataclass(frozen=True)
class Posed:
    """A posed body over time, in world coordinates."""

    joints: np.ndarray  # [F, J, 3] joint positions
    rotations: np.ndarray  # [F, J, 3, 3] global orientation of each joint's frame


def forward_kinematics(skel: Skeleton, pose: dict[str, np.ndarray]) -> Posed:
    """Joint positions and orientations for every frame; the lower foot rests on the floor, then `lift` is added."""
    local = local_rotations(pose)
    frames = local.shape[0]
    glob = np.empty_like(local)
    pos = np.empty((frames, len(JOINTS), 3))
    glob[:, 0] = local[:, 0]
    pos[:, 0] = np.stack([pose["root_x"], np.full(frames, skel.pelvis_height), pose["root_z"]], -1)
    for j in range(1, len(JOINTS)):
        parent = PARENTS[j]
        glob[:, j] = glob[:, parent] @ local[:, j]
        pos[:, j] = pos[:, parent] + glob[:, parent] @ skel.offsets[j]
    feet = pos[:, [J["l_ankle"], J["r_ankle"], J["l_foot"], J["r_foot"]], 1]
    ground = feet.min(axis=1) - skel.radii["foot"]
    pos[:, :, 1] += (pose["lift"] - ground)[:, None]
    return Posed(joints=pos, rotations=glob)
