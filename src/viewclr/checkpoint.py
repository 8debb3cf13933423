"""Checkpoints written atomically and verified on load.

Each checkpoint is `step_<N>.pt`, written to a temporary file and renamed, then recorded (with its SHA-256) in
`index.json`, itself replaced atomically. Loading takes the newest entry whose file exists and matches its
checksum and unpickles; a truncated or corrupt one is reported (naming the file) and the previous good one is
used. Only the newest `keep` checkpoints are kept.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
from pathlib import Path

import torch

from viewclr.errors import ViewCLRError
from viewclr.fileio import write_bytes, write_json

log = logging.getLogger(__name__)
INDEX = "index.json"


class CheckpointError(ViewCLRError):
    """No usable checkpoint where one was asked for."""


class CheckpointManager:
    def __init__(self, folder: str | Path, keep: int = 2):
        self.folder = Path(folder)
        self.keep = keep

    def _index(self, say: bool = True) -> list[dict]:
        """The index's entries; without a readable index, every step_*.pt file (unverified), said so (`say`)."""
        path = self.folder / INDEX
        try:
            return json.loads(path.read_text())
        except FileNotFoundError:
            problem = "is missing"
        except (json.JSONDecodeError, UnicodeDecodeError):
            problem = "is unreadable"
        files = sorted(p for p in self.folder.glob("step_*.pt") if p.is_file())
        if files and say:
            log.warning("%s %s; looking for checkpoints by file name (%d found)", path, problem, len(files))
        return [{"file": p.name, "sha256": None, "step": _step_of(p)} for p in files]

    def save(self, state: dict, step: int) -> Path:
        self.folder.mkdir(parents=True, exist_ok=True)
        for stray in self.folder.glob("*.part"):  # left by a write that was interrupted: never a checkpoint
            stray.unlink(missing_ok=True)
        buffer = io.BytesIO()
        torch.save(state, buffer)
        payload = buffer.getvalue()
        target = self.folder / f"step_{step:09d}.pt"
        write_bytes(target, payload, fsync=True)
        entries = [e for e in self._index(say=False) if e["file"] != target.name]  # the first save has no index yet
        entries.append({"file": target.name, "sha256": hashlib.sha256(payload).hexdigest(), "step": step})
        entries.sort(key=lambda e: e["step"])
        for old in entries[: -self.keep]:
            (self.folder / old["file"]).unlink(missing_ok=True)
        entries = entries[-self.keep :]
        write_json(self.folder / INDEX, entries)
        return target

    def load_latest(self, map_location=None) -> tuple[dict, Path] | None:
        """The newest checkpoint that verifies, or None when there is none at all."""
        entries = sorted(self._index(), key=lambda e: e["step"], reverse=True)
        problems = []
        for entry in entries:
            path = self.folder / entry["file"]
            try:
                payload = path.read_bytes()
            except OSError as err:
                problems.append(f"{path}: {err.strerror}")
                continue
            if entry.get("sha256") and hashlib.sha256(payload).hexdigest() != entry["sha256"]:
                problems.append(f"{path}: truncated or corrupt (checksum mismatch)")
                log.warning("checkpoint %s is truncated or corrupt (checksum mismatch); trying an older one", path)
                continue
            try:
                state = torch.load(io.BytesIO(payload), map_location=map_location, weights_only=False)
            except Exception as err:  # noqa: BLE001 — any unpickling failure means this file is unusable
                problems.append(f"{path}: cannot be read ({err.__class__.__name__})")
                log.warning("checkpoint %s cannot be read (%s); trying an older one", path, err.__class__.__name__)
                continue
            return state, path
        if problems:
            raise CheckpointError("no usable checkpoint: " + "; ".join(problems))
        return None


def _step_of(path: Path) -> int:
    try:
        return int(path.stem.removeprefix("step_"))
    except ValueError:
        return -1


def load_weights(path: str | Path, map_location="cpu", mmap: bool = False) -> dict:
    """A checkpoint or weights file, with errors that name it. `mmap`: tensors stay in the file and are read
    only when touched (for reading a summary beside the weights)."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path} does not exist")
    try:
        return torch.load(path, map_location=map_location, weights_only=False, mmap=mmap)
    except Exception as err:  # noqa: BLE001
        raise CheckpointError(f"{path} is not a readable checkpoint ({err.__class__.__name__}: {err})") from None


def shape_mismatch(state: dict, own: dict) -> tuple[str, str] | None:
    """(key, "KEY is (a, b) there and (c, d) here") for the first tensor of `state` whose shape differs from the
    same key's in `own` (a state dict or {key: shape}); None when every shared key fits."""
    for key, value in state.items():
        here = own.get(key)
        here = getattr(here, "shape", here)
        if here is not None and tuple(here) != tuple(value.shape):
            return key, f"{key} is {tuple(value.shape)} there and {tuple(here)} here"
    return None
