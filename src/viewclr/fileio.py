"""Atomic file writes: a file is either its old self or completely new, never half written.

Every result, checkpoint, manifest and rendered video is written to `<name>.part` beside its target and renamed over
it only when complete (`os.replace` is atomic on POSIX and Windows). An interrupted run therefore never leaves a
truncated file where a finished one is expected, which matters because the resumable steps (prepare, synth,
pretrain, the experiments) decide what is done by what exists.
"""

from __future__ import annotations

import io
import json
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import torch


@contextmanager
def atomic_path(path: str | Path, fsync: bool = False) -> Iterator[Path]:
    """Yields a temporary sibling of `path` to write (a file or a folder); when the block succeeds it replaces
    `path` (an existing folder is removed first), when it fails it is removed and `path` is left as it was.
    `fsync` flushes a file to disk before the rename, for checkpoints."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".part")
    _remove(partial)
    try:
        yield partial
        if fsync and partial.is_file():
            with open(partial, "rb") as handle:
                os.fsync(handle.fileno())
    except BaseException as err:
        _remove(partial)
        if isinstance(err, OSError) and not err.filename and err.errno:  # a failed write names no file: name it
            raise OSError(err.errno, err.strerror, str(path)) from err
        raise
    try:
        if partial.is_dir():
            _remove(path)
        os.replace(partial, path)
    except BaseException:  # e.g. a folder where the file should go: the old path stays, no .part is left
        _remove(partial)
        raise


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def write_text(path: str | Path, text: str) -> None:
    with atomic_path(path) as partial:
        partial.write_text(text)


def write_json(path: str | Path, value, indent: int | None = 1) -> None:
    write_text(path, json.dumps(value, indent=indent) + "\n")


def write_bytes(path: str | Path, payload: bytes, fsync: bool = False) -> None:
    with atomic_path(path, fsync=fsync) as partial:
        partial.write_bytes(payload)


def save_torch(path: str | Path, state) -> None:
    """torch.save, atomically; serialised in memory first, so that a full disk is an OSError naming the file (torch's
    own file writer reports it as a RuntimeError)."""
    buffer = io.BytesIO()
    torch.save(state, buffer)
    write_bytes(path, buffer.getvalue())
