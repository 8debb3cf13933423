"""The built-in synthetic multi-view action benchmark (`viewclr synth`).

A procedural, articulated actor (20 joints, ellipsoid and capsule body parts, clothing patterns) performs
16 actions defined by 3D joint motion, in rooms with textured floors, filmed by calibrated cameras — NTU RGB+D's
three-camera rig by default, so that camera and replication map to 0°/45°/90° exactly as in NTU.

    from viewclr.data.synth import SynthSettings, generate
    generate(SynthSettings(subjects=16, classes=12, size=112), "data/synth")
"""

from viewclr.data.synth.actions import ACTIONS, CLASSES, CONFUSABLE_PAIRS
from viewclr.data.synth.generate import JOINTS_FILE, METADATA, SynthReport, generate, render_performance
from viewclr.data.synth.meta import SynthMetadata
from viewclr.data.synth.world import SynthSettings

__all__ = [
    "ACTIONS",
    "CLASSES",
    "CONFUSABLE_PAIRS",
    "JOINTS_FILE",
    "METADATA",
    "SynthMetadata",
    "SynthReport",
    "SynthSettings",
    "generate",
    "render_performance",
]
