"""What every dataset produces: a list of `Sample`s, and a protocol's `Split` of them."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field, replace
from pathlib import Path

from viewclr.errors import ConfigError, DatasetError
from viewclr.fileio import write_text

log = logging.getLogger(__name__)

ALL = "all"  # the group name of a split side that is not divided by view


@dataclass(frozen=True)
class Sample:
    """One video of a dataset.

    `view` is the viewpoint group protocols use: "0"/"45"/"90" (degrees, NTU), "1"/"2"/"3" (N-UCLA camera),
    or any string from a labels CSV. `path` is None when only names are known (a names file).
    """

    name: str
    label: int
    path: str | None = None
    view: str | None = None
    subject: int | None = None
    camera: int | None = None
    setup: int | None = None
    num_frames: int | None = None


@dataclass
class Split:
    """A protocol applied to samples: named groups of training and test samples.

    Protocols that test each view separately (CVS) key the groups by view; the others use one group, "all".
    """

    dataset: str
    protocol: str
    train: dict[str, list[Sample]] = field(default_factory=dict)
    test: dict[str, list[Sample]] = field(default_factory=dict)
    # what the protocol left out of the samples it was given, and why: one line each, e.g.
    # "6 triplets left out: on NTU's missing-skeleton list (data.exclude_missing_skeletons)"
    left_out: list[str] = field(default_factory=list)

    def sizes(self) -> dict[str, int | dict[str, int]]:
        """`{"train": N, "test": N}`, or per view `{"train": {"0": N}, "test": {"0": N, ...}}`."""

        def side(groups: dict[str, list[Sample]]) -> int | dict[str, int]:
            if set(groups) == {ALL}:
                return len(groups[ALL])
            return {view: len(samples) for view, samples in groups.items()}

        return {"train": side(self.train), "test": side(self.test)}

    def train_samples(self) -> list[Sample]:
        return [s for group in self.train.values() for s in group]

    def test_samples(self, group: str | None = None) -> list[Sample]:
        if group is not None:
            return list(self.test[group])
        return [s for g in self.test.values() for s in g]


def view_label(group: str) -> str:
    """How a split group reads: groups named by a number are viewpoints in degrees (NTU's and CVS's 0/45/90)."""
    return f"{group}°" if group.isdigit() else group


def read_names_file(path: str | Path) -> list[tuple[str, int | None, int]]:
    """Read a names file: one sample per line, an optional frame count in a second column.

    Columns may be separated by tabs, commas or spaces; blank lines, `#` comments and a header row whose first
    field is `name` are skipped. Returns (name, frames or None, line number).
    """
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"names file {path} does not exist")
    rows = []
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        fields = line.replace(",", " ").replace("\t", " ").split()
        if fields[0].lower() == "name":
            continue
        frames = None
        if len(fields) > 1 and fields[1].isdigit():
            frames = int(fields[1])
        rows.append((fields[0], frames, number))
    if not rows:
        raise DatasetError(f"names file {path} lists no samples")
    return rows


CACHE_MANIFEST = "viewclr_cache.jsonl"
CACHE_SETTINGS = "viewclr_cache.json"


def read_cache_manifest(root: str | Path) -> dict[str, dict]:
    """Entries of a prepared cache, keyed by path relative to the root; {} when root is not a cache."""
    manifest = Path(root) / CACHE_MANIFEST
    if not manifest.is_file():
        return {}
    entries = {}
    for number, line in enumerate(manifest.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        try:
            entry = json.loads(line)
            entries[entry["path"]] = entry
        except (json.JSONDecodeError, KeyError):
            # A line cut short by an interrupted `prepare`: that file is simply prepared again.
            log.warning("%s line %d is incomplete; ignoring it", manifest, number)
    return entries


def write_cache_manifest(root: str | Path, entries) -> None:
    """Rewrite a cache manifest (one JSON entry per line) with `entries`, atomically; runs append to it after."""
    write_text(Path(root) / CACHE_MANIFEST, "".join(json.dumps(entry) + "\n" for entry in entries))


def attach_frame_counts(samples: list[Sample], root: str | Path) -> list[Sample]:
    """Fill `num_frames` from a cache manifest (exact counts measured by `viewclr prepare`)."""
    entries = read_cache_manifest(root)
    if not entries:
        return samples
    root = Path(root)
    out = []
    for s in samples:
        entry = entries.get(Path(s.path).relative_to(root).as_posix()) if s.path else None
        out.append(replace(s, num_frames=entry["frames"]) if entry else s)
    return out


def filter_min_frames(samples: list[Sample], min_frames: int, left_out: list[str] | None = None) -> list[Sample]:
    """Drop samples known to be shorter than `min_frames` (unknown lengths are kept); says how many in
    `left_out`."""
    if min_frames <= 0:
        return samples
    kept = [s for s in samples if s.num_frames is None or s.num_frames >= min_frames]
    if left_out is not None:
        note(left_out, len(samples) - len(kept), "video", f"shorter than {min_frames} frames (data.min_frames)")
    return kept


def note(left_out: list[str], count: int, unit: str, why: str) -> None:
    """Add '<count> <unit>s left out: <why>' to a split's left_out, when count > 0."""
    if count:
        left_out.append(f"{count:,} {unit}{'s' if count != 1 else ''} left out: {why}")


VIDEO_EXTENSIONS = (".avi", ".mp4", ".mkv", ".mov", ".webm", ".m4v", ".mpg", ".mpeg")


class DatasetSpec:
    """How one dataset names its samples and which protocols split it.

    Subclasses define `scan` (a dataset root → samples), `from_names` (a names file → samples, no videos
    needed) and `split` (samples + protocol → `Split`). Datasets know nothing about models or training.
    """

    name: str = ""
    title: str = ""
    classes: tuple[str, ...] = ()
    protocols: tuple[str, ...] = ()
    default_protocol: str = ""
    default_min_frames: int = 0

    def is_protocol(self, protocol: str) -> bool:
        return protocol in self.protocols

    def scan(self, root: str | Path, labels_csv: str | None = None) -> list[Sample]:
        raise NotImplementedError

    def from_names(self, names_file: str | Path) -> list[Sample]:
        raise DatasetError(f"the {self.name} dataset has no names-file format; give a dataset root instead")

    def split(self, samples: list[Sample], protocol: str, options) -> Split:
        raise NotImplementedError

    def check_protocol(self, protocol: str) -> None:
        if not self.is_protocol(protocol):
            raise ConfigError(
                "data.protocol",
                f"'{protocol}' is not a protocol of {self.name} (choose from {', '.join(self.protocols)})",
            )
