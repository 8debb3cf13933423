"""3D skeletons: NTU RGB+D's `.skeleton` files and N-UCLA's per-sample JSON, read into one array per sample.

A sample becomes `[3, T, V, M]` float32 (x, y, z in camera metres; T frames, padded; V joints — 25 for NTU, 20 for
N-UCLA, whose joint order is NTU's first 20; M bodies), the layout ST-GCN and 2s-AGCN take.

- NTU `.skeleton` (the dataset's `read_skeleton_file.m`): line 1 the frame count; per frame the body count; per body
  one line of 10 values (bodyID first), the joint count, then one line of 12 values per joint (x y z, depth x y,
  colour x y, orientation w x y z, tracking state). Only x y z are kept.
- N-UCLA: `<name>.json` with key "skeletons", T × 20 × 3 (the layout CTR-GCN's feeder reads).
- The main actors: a file may track up to 6 bodies (people passing by, noise). As the public loaders do, the
  `bodies` (2) bodies that move most are kept, the most-moving first; motion is the summed per-joint variance of
  x, y, z over the frames the body is tracked.
- Normalisation (`normalise`): "none" keeps camera coordinates; "pre" is 2s-AGCN's pre-normalisation — empty frames
  filled by looping the sequence, everything centred on the spine joint of the first body's first frame, then
  rotated so that hip → spine lies on +z and right → left shoulder on +x. 2s-AGCN's second rotation is the
  shortest one taking the shoulders onto x, which tilts the spine off z wherever the shoulders are not
  perpendicular to it; here it turns about z, so the spine stays on z and the shoulders land in the xz-plane,
  pointing to +x: the frame is exactly the body's own, and a camera anywhere gives the same array. That removes
  the camera's viewpoint, which is what the cross-view protocols (CVS) measure: results record which
  normalisation they used.

Bad files raise `SkeletonError` naming the file and the fault (truncated, no body in any frame, a joint count that is
not the dataset's, non-finite coordinates); `data.skeleton_cache` skips and counts them.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from viewclr.errors import DatasetError

# NTU RGB+D's 25 Kinect v2 joints, 0-based (the dataset documents them 1-based).
NTU_JOINTS = (
    "spine_base",
    "spine_mid",
    "neck",
    "head",
    "left_shoulder",
    "left_elbow",
    "left_wrist",
    "left_hand",
    "right_shoulder",
    "right_elbow",
    "right_wrist",
    "right_hand",
    "left_hip",
    "left_knee",
    "left_ankle",
    "left_foot",
    "right_hip",
    "right_knee",
    "right_ankle",
    "right_foot",
    "spine_shoulder",
    "left_hand_tip",
    "left_thumb",
    "right_hand_tip",
    "right_thumb",
)  # fmt: skip  (a limb per row, as the dataset lists them)
NUCLA_JOINT_COUNT = 20  # N-UCLA's Kinect v1 joints, in NTU's order of its first 20
SPINE_BASE, SPINE_MID, LEFT_SHOULDER, RIGHT_SHOULDER = 0, 1, 4, 8
NORMALISATIONS = ("none", "pre")
BODY_VALUES, JOINT_VALUES = 10, 12  # values on a body's line and on each joint's line of a .skeleton file


class SkeletonError(DatasetError):
    """A skeleton file that cannot be used: the message names the file and what is wrong with it."""


def joint_count(dataset: str) -> int:
    """V of a dataset's skeletons: 20 for N-UCLA, 25 for NTU (and the synthetic benchmark's NTU layout)."""
    return NUCLA_JOINT_COUNT if dataset == "nucla" else len(NTU_JOINTS)


# ---------------------------------------------------------------------------------------------- reading


def read_ntu_skeleton(path: str | Path) -> list[dict[int, np.ndarray]]:
    """A `.skeleton` file → per frame, {bodyID: [25, 3] x y z}. Frames without bodies are empty dicts."""
    path = Path(path)
    lines = path.read_text().split("\n")
    position = 0

    def take(what: str) -> list[str]:
        nonlocal position
        while position < len(lines) and not lines[position].strip():
            position += 1
        if position >= len(lines):
            raise SkeletonError(f"{path}: truncated (the file ends where {what} should be)")
        position += 1
        return lines[position - 1].split()

    def integer(what: str) -> int:
        fields = take(what)
        try:
            return int(fields[0])
        except ValueError:
            raise SkeletonError(f"{path} line {position}: expected {what}, found {' '.join(fields)[:40]!r}") from None

    frames = []
    for f in range(integer("the frame count")):
        bodies = {}
        for _ in range(integer(f"frame {f + 1}'s body count")):
            info = take(f"frame {f + 1}'s body line")
            if len(info) != BODY_VALUES:
                raise SkeletonError(f"{path} line {position}: a body line has {BODY_VALUES} values, not {len(info)}")
            count = integer(f"frame {f + 1}'s joint count")
            if count != len(NTU_JOINTS):
                raise SkeletonError(f"{path} line {position}: {count} joints per body, NTU has {len(NTU_JOINTS)}")
            joints = np.empty((count, 3), dtype=np.float32)
            for j in range(count):
                values = take(f"frame {f + 1}'s joint {j + 1}")
                if len(values) != JOINT_VALUES:
                    raise SkeletonError(f"{path} line {position}: a joint line has {JOINT_VALUES} values")
                try:
                    joints[j] = [float(v) for v in values[:3]]
                except ValueError:
                    raise SkeletonError(f"{path} line {position}: a joint's x y z are not numbers") from None
            if not np.isfinite(joints).all():
                raise SkeletonError(f"{path} line {position}: non-finite joint coordinates (NaN or inf)")
            bodies[int(info[0]) if info[0].lstrip("-").isdigit() else len(bodies)] = joints
        frames.append(bodies)
    if not any(frames):
        raise SkeletonError(f"{path}: no body in any of its {len(frames)} frames")
    return frames


def read_nucla_skeleton(path: str | Path) -> list[dict[int, np.ndarray]]:
    """An N-UCLA `<name>.json` ({"skeletons": T × 20 × 3}) → per frame, {0: [20, 3]} (one actor)."""
    path = Path(path)
    try:
        data = np.asarray(json.loads(path.read_text())["skeletons"], dtype=np.float32)
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise SkeletonError(f"{path}: not valid JSON ({err})") from None
    except (KeyError, TypeError):
        raise SkeletonError(f"{path}: no 'skeletons' list (T × {NUCLA_JOINT_COUNT} × 3)") from None
    except ValueError:
        raise SkeletonError(f"{path}: 'skeletons' is not a T × {NUCLA_JOINT_COUNT} × 3 array of numbers") from None
    if data.ndim != 3 or data.shape[2] != 3 or data.shape[1] != NUCLA_JOINT_COUNT:
        raise SkeletonError(f"{path}: skeletons of shape {list(data.shape)}, N-UCLA's are T × {NUCLA_JOINT_COUNT} × 3")
    if len(data) == 0:
        raise SkeletonError(f"{path}: no body in any frame (0 frames)")
    if not np.isfinite(data).all():
        raise SkeletonError(f"{path}: non-finite joint coordinates (NaN or inf)")
    return [{0: frame} for frame in data]


def skeleton_file(root: str | Path, dataset: str, name: str) -> Path:
    """Where a sample's skeleton lies under a dataset root: NTU's `nturgb+d_skeletons/<name>.skeleton` (the
    dataset's own folder), N-UCLA's `skeletons/<name>.json`."""
    if dataset == "nucla":
        return Path(root) / "skeletons" / f"{name}.json"
    return Path(root) / "nturgb+d_skeletons" / f"{name}.skeleton"


def list_skeletons(root: str | Path, dataset: str) -> dict[str, Path]:
    """Every skeleton file under a root, by sample name."""
    folder = skeleton_file(root, dataset, "x").parent
    if not folder.is_dir():
        raise DatasetError(f"{root} has no skeleton folder ({folder.name}/)")
    suffix = ".json" if dataset == "nucla" else ".skeleton"
    return {p.name[: -len(suffix)]: p for p in sorted(folder.iterdir()) if p.name.endswith(suffix)}


def read_skeleton(path: str | Path, dataset: str) -> list[dict[int, np.ndarray]]:
    return read_nucla_skeleton(path) if dataset == "nucla" else read_ntu_skeleton(path)


# ---------------------------------------------------------------------------------------------- to an array


def main_bodies(frames: list[dict[int, np.ndarray]], bodies: int = 2) -> list[int]:
    """The ids of the `bodies` bodies that move most (summed variance of x, y, z over their tracked frames), the
    most-moving first; a body seen in one frame only has no motion."""
    tracks: dict[int, list[np.ndarray]] = {}
    for frame in frames:
        for body, joints in frame.items():
            tracks.setdefault(body, []).append(joints)
    motion = {
        body: float(np.stack(track).var(axis=0).sum()) if len(track) > 1 else 0.0 for body, track in tracks.items()
    }
    return sorted(motion, key=lambda body: (-motion[body], list(tracks).index(body)))[:bodies]


def to_array(frames: list[dict[int, np.ndarray]], length: int, bodies: int = 2) -> np.ndarray:
    """Per-frame bodies → [3, length, V, bodies]: the main bodies (`main_bodies`), frames beyond `length` cut, the
    rest and untracked frames zero."""
    keep = main_bodies(frames, bodies)
    joints = next(iter(next(f for f in frames if f).values())).shape[0]
    out = np.zeros((3, length, joints, bodies), dtype=np.float32)
    for t, frame in enumerate(frames[:length]):
        for m, body in enumerate(keep):
            if body in frame:
                out[:, t, :, m] = frame[body].T
    return out


def _rotation(from_vector: np.ndarray, to_vector: np.ndarray) -> np.ndarray:
    """The rotation that turns the direction of `from_vector` into that of `to_vector` (Rodrigues)."""
    a = from_vector / (np.linalg.norm(from_vector) + 1e-12)
    b = to_vector / np.linalg.norm(to_vector)
    axis, cos = np.cross(a, b), float(np.dot(a, b))
    sin = np.linalg.norm(axis)
    if sin < 1e-8:  # parallel, or opposite (a half turn about any axis perpendicular to a)
        if cos > 0:
            return np.eye(3)
        other = np.array([1.0, 0.0, 0.0]) if abs(a[0]) < 0.9 else np.array([0.0, 1.0, 0.0])
        axis = np.cross(a, other)
        axis /= np.linalg.norm(axis)
        return 2 * np.outer(axis, axis) - np.eye(3)
    k = axis / sin
    cross = np.array([[0, -k[2], k[1]], [k[2], 0, -k[0]], [-k[1], k[0], 0]])
    return np.eye(3) + sin * cross + (1 - cos) * cross @ cross


def loop_fill(array: np.ndarray) -> np.ndarray:
    """[3, T, V, M]: each body's frames after its last tracked one filled by looping its tracked frames (2s-AGCN)."""
    out = array.copy()
    for m in range(array.shape[3]):
        tracked = np.flatnonzero(np.abs(array[:, :, :, m]).sum(axis=(0, 2)) > 0)
        if len(tracked) == 0:
            continue
        first, last = tracked[0], tracked[-1] + 1
        body = array[:, first:last, :, m]
        rest = array.shape[1] - first
        out[:, first:, :, m] = np.concatenate([body] * (rest // (last - first) + 1), axis=1)[:, :rest]
    return out


def normalise(array: np.ndarray, how: str) -> np.ndarray:
    """[3, T, V, M] → the same, normalised (`NORMALISATIONS`; the module's docstring says what each does)."""
    if how == "none":
        return array
    if how != "pre":
        raise ValueError(f"normalisation must be one of {NORMALISATIONS}, not {how!r}")
    out = loop_fill(array)
    present = np.abs(out).sum(axis=(0, 2), keepdims=True) > 0  # [1, T, 1, M]: frames a body is in
    tracked = np.flatnonzero(present[0, :, 0, 0])
    if len(tracked) == 0:
        return out
    first = out[:, tracked[0], :, 0]  # [3, V]: the first body's first frame
    out = (out - first[:, SPINE_MID, None, None, None]) * present
    first = out[:, tracked[0], :, 0]
    to_z = _rotation(first[:, SPINE_MID] - first[:, SPINE_BASE], np.array([0.0, 0.0, 1.0]))
    out = np.einsum("ij,jtvm->itvm", to_z, out)
    first = out[:, tracked[0], :, 0]
    shoulders = first[:, LEFT_SHOULDER] - first[:, RIGHT_SHOULDER]
    angle = -np.arctan2(shoulders[1], shoulders[0])  # about z: the spine stays on z
    about_z = np.array([[np.cos(angle), -np.sin(angle), 0.0], [np.sin(angle), np.cos(angle), 0.0], [0.0, 0.0, 1.0]])
    return np.einsum("ij,jtvm->itvm", about_z, out).astype(np.float32)


def load_sample(
    path: str | Path, dataset: str, length: int, bodies: int = 2, how: str = "none", frames_read=None
) -> np.ndarray:
    """One skeleton file → [3, length, V, bodies], normalised; `SkeletonError` when it cannot be used.
    `frames_read`: the file's frames when the caller has read them already."""
    frames = read_skeleton(path, dataset) if frames_read is None else frames_read
    if len(frames) > length:
        frames = frames[:length]
    return normalise(to_array(frames, length, bodies), how)


# ---------------------------------------------------------------------------------------------- writing


def write_ntu_skeleton(path: str | Path, bodies: list[dict[int, np.ndarray]]) -> None:
    """Per frame {bodyID: [25, 3] x y z} → an NTU `.skeleton` file. Values NTU records that a writer here does not
    have (depth / colour pixels, orientations, hand states) are zero; tracking states are 2 (tracked)."""
    lines = [str(len(bodies))]
    for frame in bodies:
        lines.append(str(len(frame)))
        for body, joints in frame.items():
            if joints.shape != (len(NTU_JOINTS), 3):
                raise ValueError(f"an NTU body has {len(NTU_JOINTS)} joints of x y z, not {list(joints.shape)}")
            lines.append(f"{body} 0 0 0 0 0 0 0 0 2")
            lines.append(str(len(NTU_JOINTS)))
            lines.extend(f"{x:.7g} {y:.7g} {z:.7g} 0 0 0 0 0 0 0 0 2" for x, y, z in joints.tolist())
    Path(path).write_text("\n".join(lines) + "\n")


def write_nucla_skeleton(path: str | Path, joints: np.ndarray) -> None:
    """[T, 20, 3] → N-UCLA's `<name>.json` layout ({"skeletons": T × 20 × 3})."""
    if joints.ndim != 3 or joints.shape[1:] != (NUCLA_JOINT_COUNT, 3):
        raise ValueError(f"N-UCLA skeletons are T × {NUCLA_JOINT_COUNT} × 3, not {list(joints.shape)}")
    rounded = [[[float(f"{v:.7g}") for v in joint] for joint in frame] for frame in joints.tolist()]
    Path(path).write_text(json.dumps({"skeletons": rounded}))
