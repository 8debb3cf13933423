"""`--dataset synth`: a synthetic dataset in the NTU layout, read by the NTU code with its own class names.

The names, views and protocols are NTU-60's (CS, CV, CVS at 0°/45°/90°); what differs is that the classes are
the benchmark's actions, no samples are excluded for missing skeletons (every synthetic sample has joints), and
CVS keeps videos shorter than NTU's 32-frame rule (every video has the length chosen with `--frames`).
"""

from __future__ import annotations

from pathlib import Path

from viewclr.data.index import Sample
from viewclr.data.ntu import NTUDataset
from viewclr.errors import DatasetError
from viewclr.synth.actions import CLASSES
from viewclr.synth.generate import METADATA
from viewclr.synth.meta import SynthMetadata


class SynthDataset(NTUDataset):
    def __init__(self):
        super().__init__(60)
        self.name = "synth"
        self.title = "synthetic multi-view actions"
        self.classes = CLASSES

    def missing_skeletons(self) -> frozenset[str]:
        return frozenset()

    def cvs_extra_drops(self) -> frozenset[str]:
        return frozenset()

    def cvs_min_frames(self) -> int:
        return 0  # every video has the length the user chose; SURREACT's 32-frame rule is about NTU's

    def scan(self, root: str | Path, labels_csv: str | None = None) -> list[Sample]:
        if (Path(root) / METADATA).is_file():
            meta = SynthMetadata(root)
            layout = meta.settings["layout"]
            if layout != "ntu":
                raise DatasetError(
                    f"{root} is a synthetic dataset in the {layout} layout; read it with --dataset "
                    f"{'nucla' if layout == 'nucla' else 'folder'} (or make it with --layout ntu)"
                )
            self.classes = meta.class_names
        return super().scan(root, labels_csv)
