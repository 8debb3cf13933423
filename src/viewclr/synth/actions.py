"""The action classes of the synthetic benchmark, defined by 3D joint motion.

Each action adds angle channels (see `body.CHANNELS`) to a resting pose as a function of u ∈ [0, 1], the
progress through the action. Several classes come in pairs that look alike from one viewpoint and differ from
another, so a representation has to see past the viewpoint to tell them apart:

- raise arm forward / raise arm sideways: from the front the forward arm is foreshortened; from the side the
  sideways arm is.
- step forward / step sideways, kick forward / kick sideways: motion along the line of sight barely shows.
- bow / squat: from the front both lower the head and shoulders; from the side one bends the hips, the other
  the knees.
- punch forward / wave: arm motion in depth versus in the frontal plane.
- lean sideways / bow: a lean is plain from the front, a bow from the side.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from viewclr.synth.body import CHANNELS, Actor

Channels = dict[str, np.ndarray]


@dataclass(frozen=True)
class MotionParams:
    """How one performance of an action varies: speed, timing, size, phase, placement and idle sway."""

    start: float  # fraction of the video before the action starts
    duration: float  # fraction of the video the action takes (speed)
    amplitude: float  # scale of the action's angles and distances
    cycles: float  # repetitions, for periodic actions
    phase: float  # radians, for periodic actions
    x: float  # metres, placement jitter
    z: float
    yaw: float  # radians, orientation jitter around the facing direction
    sway: float  # radians, idle body sway amplitude
    sway_phase: float

    def to_dict(self) -> dict:
        return {k: round(float(v), 5) for k, v in self.__dict__.items()}


def smooth(x: np.ndarray) -> np.ndarray:
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3 - 2 * x)


def envelope(u: np.ndarray, rise: float = 0.25, fall: float = 0.25) -> np.ndarray:
    """0 → 1 over the first `rise`, held, 1 → 0 over the last `fall` of the action; 0 outside it."""
    return smooth(u / rise) * smooth((1 - u) / fall)


def bump(u: np.ndarray) -> np.ndarray:
    """One smooth 0 → 1 → 0 bump over the action."""
    return np.sin(np.pi * np.clip(u, 0.0, 1.0)) ** 2


def oscillation(u: np.ndarray, p: MotionParams) -> np.ndarray:
    """p.cycles smooth 0 → 1 → 0 repetitions over the action."""
    return 0.5 - 0.5 * np.cos(2 * np.pi * p.cycles * np.clip(u, 0.0, 1.0))


def deg(x: float) -> float:
    return float(np.radians(x))


def _raise_arm_forward(u, p):
    e = envelope(u)
    return {"r_shoulder_flex": deg(88) * p.amplitude * e, "r_elbow": -deg(8) * e}


def _raise_arm_sideways(u, p):
    e = envelope(u)
    return {"r_shoulder_abd": deg(85) * p.amplitude * e, "r_elbow": -deg(8) * e}


def _step_forward(u, p):
    e = envelope(u, 0.3, 0.3)
    lift = np.sin(np.pi * e)  # the stepping foot leaves the floor while the weight moves
    return {
        "r_hip_flex": deg(28) * p.amplitude * e + deg(25) * lift,
        "r_knee": deg(45) * lift,
        "l_hip_flex": -deg(12) * p.amplitude * e,
        "root_z": 0.2 * p.amplitude * e,
        "l_shoulder_flex": deg(12) * e,
        "r_shoulder_flex": -deg(10) * e,
    }


def _step_sideways(u, p):
    e = envelope(u, 0.3, 0.3)
    lift = np.sin(np.pi * e)
    return {
        "r_hip_abd": deg(22) * p.amplitude * e,
        "r_hip_flex": deg(15) * lift,
        "r_knee": deg(40) * lift,
        "l_hip_abd": deg(6) * p.amplitude * e,
        "root_x": -0.17 * p.amplitude * e,
        "l_shoulder_abd": deg(8) * e,
        "r_shoulder_abd": deg(8) * e,
    }


def _bow(u, p):
    e = envelope(u) * p.amplitude
    pelvis, spine = deg(38) * e, deg(22) * e
    return {
        "pelvis_pitch": pelvis,
        "spine_pitch": spine,
        "neck_pitch": deg(12) * e,
        "l_hip_flex": pelvis,  # legs stay upright
        "r_hip_flex": pelvis,
        "l_shoulder_flex": pelvis + spine,  # arms hang
        "r_shoulder_flex": pelvis + spine,
    }


def _squat(u, p):
    e = envelope(u) * p.amplitude
    thigh, pelvis = deg(72) * e, deg(25) * e
    return {
        "pelvis_pitch": pelvis,
        "l_hip_flex": thigh + pelvis,
        "r_hip_flex": thigh + pelvis,
        "l_hip_abd": deg(10) * e,
        "r_hip_abd": deg(10) * e,
        "l_knee": thigh + deg(25) * e,
        "r_knee": thigh + deg(25) * e,
        "l_shoulder_flex": deg(70) * e,
        "r_shoulder_flex": deg(70) * e,
    }


def _kick_forward(u, p):
    b = bump(u)
    bend = np.sin(2 * np.pi * np.clip(u, 0, 1)) ** 2  # knee bent while lifting and lowering, straight at the top
    return {
        "r_hip_flex": deg(75) * p.amplitude * b,
        "r_knee": deg(60) * bend,
        "l_shoulder_flex": deg(20) * b,
        "r_shoulder_flex": -deg(15) * b,
        "spine_pitch": -deg(8) * b,
    }


def _kick_sideways(u, p):
    b = bump(u)
    bend = np.sin(2 * np.pi * np.clip(u, 0, 1)) ** 2
    return {
        "r_hip_abd": deg(55) * p.amplitude * b,
        "r_knee": deg(40) * bend,
        "spine_roll": -deg(18) * b,
        "l_shoulder_abd": deg(25) * b,
        "r_shoulder_abd": deg(20) * b,
    }


def _punch(u, p):
    guard = envelope(u, 0.15, 0.15)
    strike = oscillation(u, p) * guard
    return {
        "r_shoulder_flex": deg(35) * guard + deg(52) * p.amplitude * strike,
        "r_elbow": deg(110) * guard - deg(105) * strike,
        "l_shoulder_flex": deg(35) * guard,
        "l_elbow": deg(110) * guard,
    }


def _wave(u, p):
    g = envelope(u, 0.2, 0.2)
    swing = np.sin(2 * np.pi * p.cycles * np.clip(u, 0, 1) + p.phase)
    return {
        "r_shoulder_abd": deg(88) * g,
        "r_shoulder_rot": deg(90) * g,
        "r_elbow": deg(65) * g + deg(30) * p.amplitude * swing * g,
    }


def _clap(u, p):
    g = envelope(u, 0.2, 0.2)
    together = oscillation(u, p)
    return {
        "l_shoulder_flex": deg(75) * g,
        "r_shoulder_flex": deg(75) * g,
        "l_shoulder_abd": (deg(30) * p.amplitude * (1 - together) - deg(22) * together) * g,
        "r_shoulder_abd": (deg(30) * p.amplitude * (1 - together) - deg(22) * together) * g,
        "l_elbow": deg(20) * g,
        "r_elbow": deg(20) * g,
    }


def _jump(u, p):
    crouch = bump(u / 0.4) + bump((u - 0.6) / 0.4)
    air = np.clip((u - 0.35) / 0.3, 0, 1)
    swing = bump((u - 0.25) / 0.5)
    return {
        "lift": 0.22 * p.amplitude * np.sin(np.pi * air),
        "pelvis_pitch": deg(15) * crouch,
        "l_hip_flex": deg(45) * crouch,
        "r_hip_flex": deg(45) * crouch,
        "l_knee": deg(60) * crouch,
        "r_knee": deg(60) * crouch,
        "l_shoulder_flex": deg(70) * swing - deg(20) * crouch,
        "r_shoulder_flex": deg(70) * swing - deg(20) * crouch,
    }


def _hands_up(u, p):
    e = envelope(u) * min(p.amplitude, 1.0)
    return {"l_shoulder_flex": deg(165) * e, "r_shoulder_flex": deg(165) * e}


def _lean_sideways(u, p):
    e = envelope(u) * p.amplitude
    roll = -deg(28) * e
    return {
        "spine_roll": roll,
        "pelvis_roll": -deg(5) * e,
        "l_shoulder_abd": -roll,  # arms hang
        "r_shoulder_abd": roll,
        "neck_pitch": deg(3) * e,
    }


def _arm_circles(u, p):
    g = envelope(u, 0.2, 0.2)
    angle = 2 * np.pi * p.cycles * np.clip(u, 0, 1) + p.phase
    size = deg(25) * p.amplitude * g
    return {
        "l_shoulder_abd": deg(85) * g + size * np.cos(angle),
        "r_shoulder_abd": deg(85) * g + size * np.cos(angle),
        "l_shoulder_flex": size * np.sin(angle),
        "r_shoulder_flex": size * np.sin(angle),
    }


def _twist(u, p):
    g = envelope(u, 0.2, 0.2)
    turn = np.sin(2 * np.pi * p.cycles * np.clip(u, 0, 1) + p.phase)
    return {
        "spine_yaw": deg(45) * p.amplitude * turn * g,
        "l_shoulder_abd": deg(30) * g,
        "r_shoulder_abd": deg(30) * g,
        "l_elbow": deg(70) * g,
        "r_elbow": deg(70) * g,
        "neck_yaw": deg(10) * turn * g,
    }


@dataclass(frozen=True)
class Action:
    name: str
    motion: Callable[[np.ndarray, MotionParams], Channels]
    cycles: tuple[float, float] = (1.0, 1.0)  # range of repetitions for periodic actions


ACTIONS: tuple[Action, ...] = (
    Action("raise right arm forward", _raise_arm_forward),
    Action("raise right arm sideways", _raise_arm_sideways),
    Action("step forward", _step_forward),
    Action("step sideways", _step_sideways),
    Action("bow", _bow),
    Action("squat", _squat),
    Action("kick forward", _kick_forward),
    Action("kick sideways", _kick_sideways),
    Action("punch forward", _punch, (2.0, 3.0)),
    Action("wave right hand", _wave, (2.0, 3.5)),
    Action("clap", _clap, (3.0, 5.0)),
    Action("jump", _jump),
    Action("raise both hands", _hands_up),
    Action("lean sideways", _lean_sideways),
    Action("arm circles", _arm_circles, (2.0, 3.0)),
    Action("twist torso", _twist, (1.0, 2.0)),
)
CLASSES: tuple[str, ...] = tuple(a.name for a in ACTIONS)
# Pairs that one viewpoint confuses and another separates (0-based class indices).
CONFUSABLE_PAIRS: tuple[tuple[int, int], ...] = ((0, 1), (2, 3), (4, 5), (6, 7), (8, 9), (4, 13))


def random_motion(rng: np.random.Generator, action: Action) -> MotionParams:
    duration = float(rng.uniform(0.55, 0.9))
    return MotionParams(
        start=float(rng.uniform(0.0, 1.0 - duration)),
        duration=duration,
        amplitude=float(rng.uniform(0.8, 1.15)),
        cycles=float(rng.uniform(*action.cycles)),
        phase=float(rng.uniform(0, 2 * np.pi)),
        x=float(rng.uniform(-0.12, 0.12)),
        z=float(rng.uniform(-0.12, 0.12)),
        yaw=float(np.radians(rng.uniform(-8, 8))),
        sway=float(np.radians(rng.uniform(1, 3))),
        sway_phase=float(rng.uniform(0, 2 * np.pi)),
    )


def pose(actor: Actor, action: Action, params: MotionParams, frames: int, facing: float) -> Channels:
    """Angle channels for `frames` frames of `actor` performing `action`, facing world azimuth `facing`."""
    t = np.linspace(0.0, 1.0, frames)
    u = (t - params.start) / params.duration
    channels = {name: np.zeros(frames) for name in CHANNELS}
    for side in ("l", "r"):
        channels[f"{side}_shoulder_abd"] += actor.arms_out
        channels[f"{side}_elbow"] += deg(10)
    sway = params.sway * np.sin(2 * np.pi * 0.8 * t + params.sway_phase)
    channels["spine_roll"] += sway
    channels["neck_yaw"] += 2 * sway
    channels["spine_pitch"] += 0.5 * params.sway * np.cos(2 * np.pi * 0.6 * t + params.sway_phase)
    for name, value in action.motion(u, params).items():
        channels[name] = channels[name] + value
    # the action's own translation (root_x: actor's left, root_z: forward) turns with the actor
    yaw = facing + params.yaw
    local_x, local_z = channels["root_x"], channels["root_z"]
    channels["root_x"] = params.x + np.cos(yaw) * local_x + np.sin(yaw) * local_z
    channels["root_z"] = params.z - np.sin(yaw) * local_x + np.cos(yaw) * local_z
    channels["yaw"] = channels["yaw"] + yaw
    return channels
