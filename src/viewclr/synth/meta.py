"""Reading a synthetic dataset's metadata and 3D joints back: per sample, its camera and its joints in world,
camera or pixel coordinates (the pose stream for "ViewCLR + Poses")."""

from __future__ import annotations

import json
from functools import cached_property
from pathlib import Path

import numpy as np

from viewclr.errors import DatasetError
from viewclr.synth.generate import FORMAT, JOINTS_FILE, METADATA

SPACES = ("world", "camera", "pixel")


class SynthMetadata:
    """`viewclr_synth.json` and `viewclr_synth_joints.npz` of a dataset made by `viewclr synth`."""

    def __init__(self, root: str | Path):
        self.root = Path(root)
        path = self.root / METADATA
        if not path.is_file():
            raise DatasetError(f"{self.root} is not a synthetic dataset (no {METADATA}); make one with `viewclr synth`")
        try:
            self.data = json.loads(path.read_text())
        except json.JSONDecodeError as err:
            raise DatasetError(f"{path} is not valid JSON ({err.msg}, line {err.lineno})") from None
        if self.data.get("format") != FORMAT:
            raise DatasetError(f"{path} is not a viewclr synthetic dataset description")
        self.samples = {s["name"]: s for s in self.data["samples"]}

    @property
    def settings(self) -> dict:
        return self.data["settings"]

    @property
    def class_names(self) -> tuple[str, ...]:
        return tuple(c["name"] for c in self.data["classes"])

    @cached_property
    def _joints(self) -> dict[str, np.ndarray]:
        path = self.root / JOINTS_FILE
        if not path.is_file():
            raise DatasetError(f"{path} is missing; run `viewclr synth` on {self.root} again to rewrite it")
        with np.load(path) as archive:
            return {key: archive[key] for key in archive.files}

    def camera(self, name: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """K, R, t of the camera that recorded sample `name` (world → camera: X_c = R·X + t)."""
        s = self._sample(name)
        cam = self.data["setups"][str(s["setup"])]["cameras"][str(s["camera"])]
        return np.array(cam["K"]), np.array(cam["R"]), np.array(cam["t"])

    def joints(self, name: str, space: str = "world") -> np.ndarray:
        """The sample's joints over time: [F, 20, 3] in world or camera metres, or [F, 20, 2] in pixels."""
        if space not in SPACES:
            raise ValueError(f"space must be one of {SPACES}, not {space!r}")
        world = self._joints[self._sample(name)["performance"]]
        if space == "world":
            return world
        K, R, t = self.camera(name)
        cam = world @ R.T + t
        if space == "camera":
            return cam.astype(np.float32)
        pixel = cam @ K.T
        return (pixel[..., :2] / pixel[..., 2:]).astype(np.float32)

    def _sample(self, name: str) -> dict:
        try:
            return self.samples[name]
        except KeyError:
            raise DatasetError(f"{name} is not a sample of the synthetic dataset in {self.root}") from None
