"""Datasets by name, and the one call that turns a data config into a protocol split."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from viewclr.data.folder import FolderDataset
from viewclr.data.index import DatasetSpec, Split
from viewclr.data.ntu import NTUDataset
from viewclr.data.nucla import NUCLADataset
from viewclr.errors import ConfigError, DatasetError

if TYPE_CHECKING:
    from viewclr.config import DataConfig

log = logging.getLogger(__name__)

DATASETS: dict[str, Callable[[], DatasetSpec]] = {
    "ntu60": lambda: NTUDataset(60),
    "ntu120": lambda: NTUDataset(120),
    "nucla": NUCLADataset,
    "folder": FolderDataset,
}


def register_dataset(name: str, factory: Callable[[], DatasetSpec]) -> None:
    """Make `factory()` the dataset `data.dataset: <name>` (the synthetic benchmark registers itself so)."""
    DATASETS[name] = factory


def get_dataset(name: str) -> DatasetSpec:
    if name not in DATASETS:
        raise ConfigError("data.dataset", f"unknown dataset '{name}' (choose from {', '.join(DATASETS)})")
    return DATASETS[name]()


def read_class_names(path: str | Path) -> tuple[str, ...]:
    """data.class_names: one class name a line, label 0 first; blank lines and '#' comments are skipped."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError("data.class_names", f"{path} does not exist (a text file, one class name a line)")
    names = [line.strip() for line in path.read_text().splitlines() if line.strip() and not line.startswith("#")]
    if not names:
        raise ConfigError("data.class_names", f"{path} names no class (one class name a line)")
    if len(set(names)) != len(names):
        twice = next(n for n in names if names.count(n) > 1)
        raise ConfigError("data.class_names", f"{path} names '{twice}' twice")
    return tuple(names)


def _some(names: list[str], shown: int = 3) -> str:
    return ", ".join(names[:shown]) + (f" and {len(names) - shown} more" if len(names) > shown else "")


def build_split(
    data: DataConfig, names_file: str | Path | None = None, only: set[str] | None = None
) -> tuple[DatasetSpec, Split]:
    """Index the dataset (from `data.root`, or from a names file when no videos are at hand) and split it.
    `only`: the names another modality has (the skeletons): the others are left out, and both directions are
    counted in the split's `left_out`."""
    spec = get_dataset(data.dataset)
    spec.check_protocol(data.protocol)  # before scanning: a large root takes a while to list
    if data.class_names is not None:
        spec.classes = read_class_names(data.class_names)
    if names_file is not None:
        samples = spec.from_names(names_file)
    elif data.root is not None:
        samples = spec.scan(data.root, data.labels_csv)
    else:
        raise DatasetError("no data: set data.root (a dataset folder) or give a names file")
    if data.class_names is not None:
        spec.classes = read_class_names(data.class_names)  # a dataset's scan may set its own (synth); the file wins
        beyond = [s for s in samples if s.label >= len(spec.classes)]
        if beyond:
            raise DatasetError(
                f"{beyond[0].name} has label {beyond[0].label}, but data.class_names ({data.class_names}) names "
                f"{len(spec.classes)} classes"
            )
    notes = []
    if only is not None:
        indexed = {s.name for s in samples}
        kept = [s for s in samples if s.name in only]
        if len(kept) < len(samples):
            missing = sorted(s.name for s in samples if s.name not in only)
            notes.append(f"{len(missing)} videos left out: they have no skeleton ({_some(missing)})")
        if only - indexed:
            notes.append(f"{len(only - indexed)} skeletons have no video, not used ({_some(sorted(only - indexed))})")
        samples = kept
    split = spec.split(samples, data.protocol, data)
    split.left_out[:0] = notes
    for line in split.left_out:  # every protocol says what it left out, and why
        log.info("%s %s: %s", spec.name, split.protocol, line)
    return spec, split
