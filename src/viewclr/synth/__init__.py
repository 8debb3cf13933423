"""The built-in synthetic multi-view action benchmark (`viewclr synth`).

A procedural, articulated actor (20 joints, ellipsoid and capsule body parts, clothing patterns) performs
16 actions defined by 3D joint motion, in rooms with textured floors, filmed by calibrated cameras — NTU RGB+D's
three-camera rig by default, so that camera and replication map to 0°/45°/90° exactly as in NTU.

    from viewclr.synth import SynthSettings, generate
    generate(SynthSettings(subjects=16, classes=12, size=112), "data/synth")

It registers the dataset `synth` (data.dataset=synth: NTU-60's names and protocols with the benchmark's classes)
with the data registry; the data layer knows nothing of it. The package's import does this (`viewclr/__init__`).
"""

from viewclr.data.registry import register_dataset
from viewclr.synth.actions import ACTIONS, CLASSES, CONFUSABLE_PAIRS
from viewclr.synth.generate import JOINTS_FILE, METADATA, SynthReport, generate, render_performance
from viewclr.synth.meta import SynthMetadata
from viewclr.synth.world import SynthSettings


def _spec():
    from viewclr.synth.spec import SynthDataset

    return SynthDataset()


register_dataset("synth", _spec)

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
