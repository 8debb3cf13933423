"""The synthetic benchmark's skeletons in the real datasets' formats, so the pose path runs on it as on NTU/N-UCLA.

Each sample's rendered joints are taken into its camera's coordinates and written as the Kinect records them:
camera space in metres with x to the sensor's left, y up, z forward (the renderer's cameras are OpenCV's — x right,
y down — so x and y change sign). The ntu layout (and the `synth` dataset) gets NTU `.skeleton` files, the nucla
layout N-UCLA's `<name>.json`; the folder layout has no skeleton format and gets none.

The renderer's 20 joints are NTU's first 20, in NTU's order. NTU's other five are not rendered and are derived:
spine shoulder = the shoulders' midpoint; hand tip = hand + ½ (hand − wrist), the forearm carried on; thumb = the
hand joint itself.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from viewclr.data.skeleton import NTU_JOINTS, skeleton_file, write_ntu_skeleton, write_nucla_skeleton
from viewclr.synth.body import J

OPENCV_TO_KINECT = np.array([-1.0, -1.0, 1.0], dtype=np.float32)
BODY_ID = 72057594037927936  # NTU's body ids are 64-bit tracking ids; any fixed one names the single actor


def camera_joints(metadata: dict, sample: dict, world: np.ndarray) -> np.ndarray:
    """[F, 20, 3] world joints of `sample`'s take → its camera's Kinect coordinates, metres."""
    cam = metadata["setups"][str(sample["setup"])]["cameras"][str(sample["camera"])]
    camera = world @ np.asarray(cam["R"], dtype=np.float64).T + np.asarray(cam["t"], dtype=np.float64)
    return (camera * OPENCV_TO_KINECT).astype(np.float32)


def kinect_25(joints: np.ndarray) -> np.ndarray:
    """[F, 20, 3] → [F, 25, 3] in NTU's joint order, the five unrendered joints derived (module docstring)."""
    hand_l, hand_r = joints[:, J["l_hand"]], joints[:, J["r_hand"]]
    extra = np.stack(
        [
            (joints[:, J["l_shoulder"]] + joints[:, J["r_shoulder"]]) / 2,
            hand_l + (hand_l - joints[:, J["l_wrist"]]) / 2,
            hand_l,
            hand_r + (hand_r - joints[:, J["r_wrist"]]) / 2,
            hand_r,
        ],
        axis=1,
    )
    out = np.concatenate([joints, extra], axis=1)
    assert out.shape[1] == len(NTU_JOINTS)
    return out


def skeleton_paths(metadata: dict, layout: str) -> tuple[Path, ...]:
    """The skeleton files of a layout, relative to its root (none for "folder")."""
    if layout == "folder":
        return ()
    dataset = "nucla" if layout == "nucla" else "ntu60"
    return tuple(skeleton_file(".", dataset, s["name"]) for s in metadata["samples"])


def write_skeletons(out: Path, metadata: dict, joints: dict[str, np.ndarray], layout: str) -> int:
    """Every sample's skeleton file under `out` (the layout's format; none for "folder"); how many were written.
    Files already there are kept: they are a function of the seed, like the videos."""
    if layout == "folder":
        return 0
    dataset = "nucla" if layout == "nucla" else "ntu60"
    written = 0
    for sample in metadata["samples"]:
        path = skeleton_file(out, dataset, sample["name"])
        if path.exists():
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        camera = camera_joints(metadata, sample, joints[sample["performance"]])
        partial = path.with_name(path.name + ".part")
        if dataset == "nucla":
            write_nucla_skeleton(partial, camera)
        else:
            write_ntu_skeleton(partial, [{BODY_ID: frame} for frame in kinect_25(camera)])
        partial.replace(path)
        written += 1
    return written
