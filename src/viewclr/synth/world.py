"""The deterministic world of a synthetic dataset: who the subjects are, what each setup's room and cameras
look like, how each performance moves — all drawn from the seed alone, so that any part can be rebuilt without
rendering (the metadata, the 3D joints, the preview) and a dataset with fewer classes or subjects is exactly a
subset of a larger one with the same seed.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

from viewclr.errors import ConfigError
from viewclr.synth.actions import ACTIONS, MotionParams, pose, random_motion
from viewclr.synth.body import Actor, Posed, Skeleton, forward_kinematics, random_actor, skeleton
from viewclr.synth.camera import (
    NTU_CAMERA_AZIMUTH,
    NTU_FACED_CAMERA,
    Camera,
    orbit_camera,
    relative_azimuth,
)
from viewclr.synth.render import Light, Scene, random_light, random_scene

LAYOUTS = ("ntu", "nucla", "folder")
TARGET_HEIGHT = 0.95  # metres: cameras aim at the actor's hips
NTU_VIEWS = (0, 45, 90)


@dataclass(frozen=True)
class SynthSettings:
    """What `viewclr synth` makes. Everything that changes the pixels is here (and in the metadata file)."""

    subjects: int = 16
    classes: int = 12
    setups: int = 1
    size: int = 112
    frames: int = 48
    fps: int = 30
    seed: int = 0
    layout: str = "ntu"
    # (azimuth, elevation) of each camera relative to the actor, degrees; elevation None = the setup's camera
    # height. Only for the nucla and folder layouts: the ntu layout is NTU's own three-camera rig.
    views: tuple[tuple[float, float | None], ...] | None = None
    replications: int = 2
    fov: float = 45.0  # vertical field of view, degrees
    crf: int = 18  # H.264 quality of the written videos
    gop: int = 8
    version: int = 1

    def validate(self) -> None:
        def need(ok: bool, key: str, message: str) -> None:
            if not ok:  # named as the command-line option, which is where these values come from
                raise ConfigError(None, f"--{key}: {message}")

        need(self.layout in LAYOUTS, "layout", f"must be one of {', '.join(LAYOUTS)}")
        need(
            1 <= self.classes <= len(ACTIONS),
            "classes",
            f"must be 1–{len(ACTIONS)} (the benchmark has {len(ACTIONS)} actions)",
        )
        need(self.subjects >= 1, "subjects", "must be at least 1")
        need(self.setups >= 1, "setups", "must be at least 1")
        need(self.size >= 32 and self.size % 2 == 0, "size", "must be even and at least 32 (H.264 needs even sizes)")
        need(self.frames >= 8, "frames", "must be at least 8")
        need(self.fps >= 1, "fps", "must be at least 1")
        need(10 <= self.fov <= 120, "fov", "must be 10–120 degrees")
        need(self.replications >= 1, "replications", "must be at least 1")
        if self.layout == "ntu":
            need(self.views is None, "views", "the ntu layout uses NTU's camera rig; --views is for nucla/folder")
            need(self.setups <= 17, "setups", "must be at most 17 (NTU's viewpoint mapping covers S001–S017)")
            need(self.subjects <= 999, "subjects", "must be at most 999 (Pppp)")
            need(self.replications == 2, "replications", "must be 2 for the ntu layout (R1 and R2 set the views)")
        if self.layout == "nucla":
            need(self.classes <= 10, "classes", "must be at most 10 for the nucla layout (N-UCLA's 10 action ids)")
            need(self.subjects <= 99 and self.replications <= 99, "subjects", "must be at most 99 for nucla")
            need(self.setups == 1, "setups", "must be 1 for the nucla layout (its names carry no setup)")
            need(len(self.camera_views()) == 3, "views", "the nucla layout needs exactly 3 views")

    def camera_views(self) -> tuple[tuple[float, float | None], ...]:
        if self.views is not None:
            return self.views
        return tuple((float(v), None) for v in NTU_VIEWS)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["views"] = None if self.views is None else [list(v) for v in self.views]
        return d


@dataclass(frozen=True)
class Setup:
    """A room and its camera rig (placement shared by every video recorded in it)."""

    id: int
    scene: Scene
    distance: float  # metres, camera to the actor's spot (horizontal)
    camera_height: float  # metres

    @property
    def elevation(self) -> float:
        return float(np.degrees(np.arctan2(self.camera_height - TARGET_HEIGHT, self.distance)))


def make_setup(seed: int, setup: int) -> Setup:
    rng = np.random.default_rng([seed, 3, setup])
    return Setup(setup, random_scene(rng), float(rng.uniform(2.9, 3.8)), float(rng.uniform(1.0, 1.8)))


def make_actor(seed: int, subject: int) -> Actor:
    return random_actor(np.random.default_rng([seed, 2, subject]))


@dataclass(frozen=True)
class View:
    """One camera of one performance."""

    index: int  # NTU camera id (1–3) or the position in the view list (1-based)
    camera: Camera
    azimuth: float  # signed, relative to the actor's facing direction (+ = actor's left)
    elevation: float
    view: str  # NTU: "0" / "45" / "90"; otherwise the nominal azimuth, e.g. "135"


@dataclass(frozen=True)
class Performance:
    """One take of one action by one subject in one setup, seen by all cameras at once."""

    setup: int
    subject: int
    replication: int
    action: int  # 1-based
    motion: MotionParams
    light: Light
    facing: float  # world azimuth the actor faces, degrees
    views: list[View] = field(default_factory=list)

    @property
    def id(self) -> str:
        return f"S{self.setup:03d}P{self.subject:03d}R{self.replication:03d}A{self.action:03d}"


def make_performance(settings: SynthSettings, setup: Setup, subject: int, replication: int, action: int) -> Performance:
    rng = np.random.default_rng([settings.seed, 1, setup.id, subject, replication, action])
    motion = random_motion(rng, ACTIONS[action - 1])
    light = random_light(rng)
    size, fov = settings.size, settings.fov
    views = []
    if settings.layout == "ntu":
        facing = NTU_CAMERA_AZIMUTH[NTU_FACED_CAMERA[replication]]
        for index, azimuth in NTU_CAMERA_AZIMUTH.items():
            camera = orbit_camera(azimuth, setup.elevation, setup.distance, TARGET_HEIGHT, size, fov)
            relative = relative_azimuth(camera, facing + np.degrees(motion.yaw))
            nominal = relative_azimuth(camera, facing)
            views.append(View(index, camera, relative, setup.elevation, str(int(round(abs(nominal))))))
    else:
        facing = 0.0
        for index, (azimuth, elevation) in enumerate(settings.camera_views(), start=1):
            elevation = setup.elevation if elevation is None else float(elevation)
            camera = orbit_camera(azimuth, elevation, setup.distance, TARGET_HEIGHT, size, fov)
            relative = relative_azimuth(camera, facing + np.degrees(motion.yaw))
            views.append(View(index, camera, relative, elevation, f"{azimuth:g}"))
    return Performance(setup.id, subject, replication, action, motion, light, facing, views)


def perform(performance: Performance, actor: Actor, frames: int) -> tuple[Skeleton, Posed]:
    """The performance's body over time (world coordinates)."""
    skel = skeleton(actor)
    channels = pose(actor, ACTIONS[performance.action - 1], performance.motion, frames, np.radians(performance.facing))
    return skel, forward_kinematics(skel, channels)


def performances(settings: SynthSettings) -> list[tuple[Setup, int, int, int]]:
    """Every (setup, subject, replication, action) of the dataset, in name order."""
    setups = [make_setup(settings.seed, s) for s in range(1, settings.setups + 1)]
    return [
        (setup, subject, replication, action)
        for setup in setups
        for subject in range(1, settings.subjects + 1)
        for replication in range(1, settings.replications + 1)
        for action in range(1, settings.classes + 1)
    ]
