"""The skeleton array cache `viewclr prepare --skeletons` writes, so that training never parses text.

A folder holding `skeletons.npy` (N × 3 × T × V × M float32, read memory-mapped) and `skeletons.json`: the format,
the settings the arrays were made with (dataset, frames, bodies, normalisation), the names in row order with each
one's tracked frame count and label-free, and every skipped file with its reason. A cache whose settings differ
from the ones asked for is made again, never read (`open_cache`).
"""

from __future__ import annotations

import hashlib
import logging
from collections import Counter
from pathlib import Path

import numpy as np
from tqdm import tqdm

from viewclr.data.skeleton import SkeletonError, joint_count, list_skeletons, load_sample, read_skeleton
from viewclr.errors import ConfigError, DatasetError
from viewclr.fileio import read_json, write_json

log = logging.getLogger(__name__)
FORMAT = "viewclr-skeletons"
ARRAYS, INDEX = "skeletons.npy", "skeletons.json"
PROGRESS = "skeletons.progress.json"  # beside skeletons.npy.part while a preparation runs: where to resume
SAVE_EVERY = 500  # files between two progress marks


def cache_settings(dataset: str, frames: int, bodies: int, normalise: str) -> dict:
    return {"dataset": dataset, "frames": frames, "bodies": bodies, "normalise": normalise}


def prepare_skeletons(
    root: str | Path,
    dataset: str,
    out: str | Path,
    frames: int,
    bodies: int = 2,
    normalise: str = "none",
    skip: frozenset[str] = frozenset(),
    skip_reason: str = "",
    progress: bool = True,
) -> dict:
    """Read every skeleton file under `root` into the cache `out`; returns its index. `skip`: names left out before
    reading (NTU's missing-skeleton list), said so with `skip_reason`. Unreadable files are skipped, counted and
    named in the index, never raised. An interrupted preparation of the same files with the same settings resumes
    from its last progress mark (every `SAVE_EVERY` files) and gives the same cache."""
    files = list_skeletons(root, dataset)
    if not files:
        raise DatasetError(f"{root} holds no skeleton files")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    names = [n for n in files if n not in skip]
    skipped = {n: skip_reason for n in files if n in skip}
    shape = (len(names), 3, frames, joint_count(dataset), bodies)
    partial, marks = out / (ARRAYS + ".part"), out / PROGRESS
    identity = {
        "root": str(Path(root).resolve()),
        "settings": cache_settings(dataset, frames, bodies, normalise),
        "names": hashlib.sha256("\n".join(names).encode()).hexdigest()[:16],
    }
    done = read_json(marks) if marks.is_file() and partial.is_file() else None
    if isinstance(done, dict) and done.get("identity") == identity:  # an interrupted preparation of these files
        arrays = np.lib.format.open_memmap(partial, mode="r+")
        kept, lengths, start = done["kept"], done["lengths"], done["next"]
        skipped |= done["skipped"]
        log.info("resuming the skeleton cache in %s at file %d of %d", out, start + 1, len(names))
    else:
        arrays = np.lib.format.open_memmap(partial, mode="w+", dtype=np.float32, shape=shape)
        kept, lengths, start = [], [], 0
    for i in tqdm(range(start, len(names)), desc="skeletons", unit="file", disable=not progress, initial=start,
                  total=len(names)):  # fmt: skip
        name = names[i]
        try:
            sequence = read_skeleton(files[name], dataset)
            arrays[len(kept)] = load_sample(files[name], dataset, frames, bodies, normalise, frames_read=sequence)
        except SkeletonError as err:
            skipped[name] = str(err)
        else:
            kept.append(name)
            lengths.append(len(sequence))
        if (i + 1) % SAVE_EVERY == 0:  # the rows first, then the mark that says they are there
            arrays.flush()
            state = {"identity": identity, "next": i + 1, "kept": kept, "lengths": lengths, "skipped": skipped}
            write_json(marks, state)
    arrays.flush()
    del arrays
    marks.unlink(missing_ok=True)
    if not kept:
        partial.unlink()
        raise DatasetError(f"no usable skeleton under {root}: all {len(files)} files were skipped")
    if len(kept) < len(names):  # rows of skipped files: shrink to the kept ones
        full = np.load(partial, mmap_mode="r")
        np.save(out / ARRAYS, full[: len(kept)])
        del full
        partial.unlink()
    else:
        partial.replace(out / ARRAYS)
    index = {
        "format": FORMAT,
        "settings": cache_settings(dataset, frames, bodies, normalise),
        "root": str(root),
        "names": kept,
        "frames": lengths,
        "skipped": skipped,
    }
    write_json(out / INDEX, index)  # last: its presence means the cache is whole
    reasons = Counter(_kind(r) for r in skipped.values())
    if skipped:
        log.warning(
            "%d of %d skeleton files skipped (%s); each is named in %s",
            len(skipped),
            len(files),
            ", ".join(f"{k}: {v}" for k, v in reasons.items()),
            out / INDEX,
        )
    return index


def _kind(reason: str) -> str:
    """A skip reason's kind, for the count ("truncated", "no body in any …", …)."""
    text = reason.split(": ", 1)[-1] if ": " in reason else reason
    return text.split(" (")[0][:40]


class SkeletonCache:
    """A prepared cache: `arrays` (memory-mapped [N, 3, T, V, M]), `row[name]`, `index` (skeletons.json)."""

    def __init__(self, folder: str | Path):
        self.folder = Path(folder)
        self.index = read_json(self.folder / INDEX)
        if not isinstance(self.index, dict) or self.index.get("format") != FORMAT:
            raise DatasetError(f"{self.folder} is not a skeleton cache (make one with viewclr prepare --skeletons)")
        self.arrays = np.load(self.folder / ARRAYS, mmap_mode="r")
        self.row = {name: i for i, name in enumerate(self.index["names"])}
        if len(self.arrays) != len(self.row):
            raise DatasetError(f"{self.folder / ARRAYS} has {len(self.arrays)} rows, its index {len(self.row)}")

    @property
    def settings(self) -> dict:
        return self.index["settings"]

    def take(self, names: list[str]) -> np.ndarray:
        """[len(names), 3, T, V, M] float32 in `names`' order."""
        rows = np.array([self.row[n] for n in names], dtype=np.int64)
        order = np.argsort(rows)  # memory-mapped reads in file order
        out = np.empty((len(rows), *self.arrays.shape[1:]), dtype=np.float32)
        out[order] = self.arrays[rows[order]]
        return out


def open_cache(folder: str | Path, settings: dict, key: str | None = None) -> SkeletonCache | None:
    """The cache in `folder` when it was made with `settings`; None when there is none, or when it differs (said
    so; it is then made again). With `key` (the setting that named the folder) a cache of other settings is never
    replaced: a ConfigError names the settings that differ."""
    folder = Path(folder)
    if not (folder / INDEX).is_file():
        return None
    cache = SkeletonCache(folder)
    if cache.settings != settings:
        differ = [f"{k}={cache.settings.get(k)} (asked {v})" for k, v in settings.items() if cache.settings.get(k) != v]
        if key is not None:
            raise ConfigError(
                key, f"{folder} holds skeletons made with {', '.join(differ)}: name another folder, or prepare it again"
            )
        log.warning("the skeleton cache in %s was made with %s; making it again", folder, ", ".join(differ))
        return None
    return cache
