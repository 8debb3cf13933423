"""Calibrated pinhole cameras and the NTU RGB+D camera rig.

World coordinates: metres, y up, the actor near the origin on the floor y = 0. Camera coordinates follow OpenCV:
x right, y down, z forward; a world point X is seen at pixel K·(R·X + t) / depth.

NTU RGB+D's rig: three cameras at the same height, at horizontal angles −45°, 0° and +45°. In replication 1
the subject faces camera 3, in replication 2 camera 2, so camera 1 always sees the subject at 45°, and cameras 2
and 3 alternate between 0° (frontal) and 90° (side) — the mapping `viewclr.data.ntu.view_of` reads back.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

# World azimuth (degrees, about +y, 0 = +z) of NTU's cameras 1, 2, 3, and the camera the subject faces per replication.
NTU_CAMERA_AZIMUTH = {1: 0.0, 2: 45.0, 3: -45.0}
NTU_FACED_CAMERA = {1: 3, 2: 2}


@dataclass(frozen=True)
class Camera:
    fx: float
    fy: float
    cx: float
    cy: float
    R: np.ndarray  # [3, 3] world → camera rotation
    t: np.ndarray  # [3] world → camera translation
    width: int
    height: int

    @property
    def K(self) -> np.ndarray:
        return np.array([[self.fx, 0.0, self.cx], [0.0, self.fy, self.cy], [0.0, 0.0, 1.0]])

    @property
    def position(self) -> np.ndarray:
        return -self.R.T @ self.t

    def to_camera(self, points: np.ndarray) -> np.ndarray:
        """World points [..., 3] → camera coordinates [..., 3]."""
        return points @ self.R.T + self.t

    def project(self, points: np.ndarray) -> np.ndarray:
        """World points [..., 3] → pixel coordinates [..., 2] (x right, y down; pixel centres at +0.5)."""
        cam = self.to_camera(points)
        return np.stack(
            [self.fx * cam[..., 0] / cam[..., 2] + self.cx, self.fy * cam[..., 1] / cam[..., 2] + self.cy], -1
        )

    def rays(self) -> np.ndarray:
        """Unit viewing rays through every pixel centre, camera coordinates, [H·W, 3] (row-major). Computed once
        per camera: the room and the body of a video both need them."""
        return self._rays

    @cached_property
    def _rays(self) -> np.ndarray:
        v, u = np.mgrid[0 : self.height, 0 : self.width].astype(np.float64) + 0.5
        d = np.stack([(u - self.cx) / self.fx, (v - self.cy) / self.fy, np.ones_like(u)], -1).reshape(-1, 3)
        return d / np.linalg.norm(d, axis=1, keepdims=True)

    def to_dict(self) -> dict:
        return {
            "K": np.round(self.K, 4).tolist(),
            "R": np.round(self.R, 6).tolist(),
            "t": np.round(self.t, 6).tolist(),
            "width": self.width,
            "height": self.height,
        }


def look_at(position: np.ndarray, target: np.ndarray, size: int, fov: float) -> Camera:
    """A square-image camera at `position` looking at `target`, with a vertical field of view `fov` (degrees)."""
    forward = target - position
    forward = forward / np.linalg.norm(forward)
    right = np.cross(forward, np.array([0.0, 1.0, 0.0]))
    right = right / np.linalg.norm(right)
    down = np.cross(forward, right)
    R = np.stack([right, down, forward])
    focal = 0.5 * size / np.tan(np.radians(fov) / 2)
    return Camera(focal, focal, size / 2, size / 2, R, -R @ position, size, size)


def orbit_camera(
    azimuth: float, elevation: float, distance: float, target_height: float, size: int, fov: float
) -> Camera:
    """A camera on a sphere around (0, target_height, 0): world `azimuth` about +y (0 = on +z), `elevation` up."""
    az, el = np.radians(azimuth), np.radians(elevation)
    target = np.array([0.0, target_height, 0.0])
    offset = distance * np.array([np.sin(az) * np.cos(el), np.sin(el), np.cos(az) * np.cos(el)])
    return look_at(target + offset, target, size, fov)


def relative_azimuth(camera: Camera, facing: float) -> float:
    """Signed angle (degrees, in (−180, 180]) from the actor's facing direction to the camera, about +y.

    Positive when the camera is on the actor's left (the actor faces world azimuth `facing`)."""
    pos = camera.position
    camera_azimuth = np.degrees(np.arctan2(pos[0], pos[2]))
    angle = (camera_azimuth - facing + 180.0) % 360.0 - 180.0
    return 180.0 if angle == -180.0 else float(angle)
