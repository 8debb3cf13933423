"""Northwestern-UCLA Multiview Action 3D (N-UCLA): 10 actions, 10 subjects, 3 Kinect v1 views.

Raw RGB layout: `multiview_action/view_{1,2,3}/aXX_sYY_eZZ/frame_<i>_tc_<timestamp>_rgb.jpg` (JPEG frames, not
videos); a cache made by `viewclr prepare` holds `view_k/aXX_sYY_eZZ.mp4`. Sample names add the view:
`aXX_sYY_eZZ_vKK` (CTR-GCN's spelling; VPN's `_cKK` is read too).

Cross-view protocols train on two views and test on the third (default V(1,2)→3). Two "videos" of the release
have a single frame (a02_s09_e04 at views 2 and 3); the standard lists (VPN) leave them out, which the default
`min_frames = 2` reproduces exactly.
"""

from __future__ import annotations

import re
from pathlib import Path

from viewclr.data.index import (
    ALL,
    DatasetSpec,
    Sample,
    Split,
    attach_frame_counts,
    filter_min_frames,
    read_names_file,
)
from viewclr.data.video import list_frame_files
from viewclr.errors import DatasetError

# action id → class name; a07 and a10 do not exist
ACTIONS: dict[int, str] = {
    1: "pick up with one hand",
    2: "pick up with two hands",
    3: "drop trash",
    4: "walk around",
    5: "sit down",
    6: "stand up",
    8: "donning",
    9: "doffing",
    11: "throw",
    12: "carry",
}
CLASSES = tuple(ACTIONS.values())
LABEL_OF_ACTION = {action: label for label, action in enumerate(ACTIONS)}

FOLDER_PATTERN = re.compile(r"^a(\d{2})_s(\d{2})_e(\d{2})$")
NAME_PATTERN = re.compile(r"^a(\d{2})_s(\d{2})_e(\d{2})_[vc](\d{2})$")
VIEW_FOLDER = re.compile(r"^view_(\d+)$")
# protocol → (training views, test view)
PROTOCOLS = {"v12_3": ((1, 2), 3), "v13_2": ((1, 3), 2), "v23_1": ((2, 3), 1)}


def make_sample(action: int, subject: int, episode: int, view: int, path=None, frames=None) -> Sample:
    if action not in ACTIONS:
        raise DatasetError(f"a{action:02d} is not an N-UCLA action ({', '.join(f'a{a:02d}' for a in ACTIONS)})")
    if view not in (1, 2, 3):
        raise DatasetError(f"view {view} is not an N-UCLA view (1, 2, 3)")
    return Sample(
        name=f"a{action:02d}_s{subject:02d}_e{episode:02d}_v{view:02d}",
        label=LABEL_OF_ACTION[action],
        path=path,
        view=str(view),
        subject=subject,
        camera=view,
        num_frames=frames,
    )


def parse_name(name: str, frames: int | None = None) -> Sample:
    """`a01_s02_e03_v01` (or `_c01`) → a Sample without a path."""
    match = NAME_PATTERN.match(name)
    if not match:
        raise DatasetError(f"'{name}' is not an N-UCLA sample name (aXX_sYY_eZZ_vKK)")
    action, subject, episode, view = (int(g) for g in match.groups())
    return make_sample(action, subject, episode, view, frames=frames)


class NUCLADataset(DatasetSpec):
    name = "nucla"
    title = "N-UCLA"
    classes = CLASSES
    protocols = tuple(PROTOCOLS)
    default_protocol = "v12_3"
    default_min_frames = 2

    def scan(self, root: str | Path, labels_csv: str | None = None) -> list[Sample]:
        root = Path(root)
        if not root.is_dir():
            raise DatasetError(f"dataset root {root} is not a directory")
        base = root / "multiview_action" if (root / "multiview_action").is_dir() else root
        samples = []
        for view_dir in sorted(p for p in base.iterdir() if p.is_dir() and VIEW_FOLDER.match(p.name)):
            view = int(VIEW_FOLDER.match(view_dir.name).group(1))
            for entry in sorted(view_dir.iterdir()):
                stem = entry.name[: -len(".mp4")] if entry.is_file() and entry.name.endswith(".mp4") else None
                if entry.is_dir():
                    stem = entry.name
                if stem is None:
                    continue
                match = FOLDER_PATTERN.match(stem)
                if not match:
                    raise DatasetError(f"{entry}: not an N-UCLA sample folder (aXX_sYY_eZZ)")
                action, subject, episode = (int(g) for g in match.groups())
                frames = len(list_frame_files(entry)) if entry.is_dir() else None
                try:
                    samples.append(make_sample(action, subject, episode, view, str(entry), frames))
                except DatasetError as err:
                    raise DatasetError(f"{entry}: {err}") from None
        if not samples:
            raise DatasetError(
                f"no N-UCLA samples under {base} (expected view_1/aXX_sYY_eZZ/ frame folders, "
                "or view_k/aXX_sYY_eZZ.mp4 from a prepared cache)"
            )
        return attach_frame_counts(samples, root)

    def from_names(self, names_file: str | Path) -> list[Sample]:
        samples = []
        for name, frames, line in read_names_file(names_file):
            try:
                samples.append(parse_name(name, frames))
            except DatasetError as err:
                raise DatasetError(f"{names_file} line {line}: {err}") from None
        return samples

    def split(self, samples: list[Sample], protocol: str, options) -> Split:
        self.check_protocol(protocol)
        train_views, test_view = PROTOCOLS[protocol]
        min_frames = options.min_frames if options.min_frames is not None else self.default_min_frames
        left_out: list[str] = []
        samples = filter_min_frames(samples, min_frames, left_out)
        return Split(
            self.name,
            protocol,
            train={ALL: [s for s in samples if int(s.view) in train_views]},
            test={ALL: [s for s in samples if int(s.view) == test_view]},
            left_out=left_out,
        )
