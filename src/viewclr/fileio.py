"""Atomic file writes: a file is either its old self or completely new, never half written.

Every result, checkpoint, manifest and rendered video is written to `<name>.part` beside its target and renamed over
it only when complete (`os.replace` is atomic on POSIX and Windows). An interrupted run therefore never leaves a
truncated file where a finished one is expected, which matters because the resumable steps (prepare, synth,
pretrain, the experiments) decide what is done by what exists.
"""

from __future__ import annotations

import errno
import io
import json
import logging
import os
import shutil
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import torch

from viewclr.errors import ViewCLRError

log = logging.getLogger(__name__)


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


def read_json(path: str | Path):
    """A JSON file's value; None when it is missing, and None said in a warning naming the file when it is not
    JSON (half written by hand, or another program's)."""
    try:
        return json.loads(Path(path).read_text())
    except FileNotFoundError:
        return None
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        log.warning("%s is not readable JSON (%s); ignoring it", path, err.__class__.__name__)
        return None


def set_aside(out: Path) -> Path | None:
    """Starting a stage (or an evaluation) over where an earlier run left files: move them to
    `<folder>.earlier-<n>` beside it (nothing is deleted), so that a later --resume never reads the earlier run's
    checkpoints or final.pt, nor appends to its metrics. Returns where they went."""
    if not out.is_dir() or not any(out.iterdir()):
        return None
    n = 1
    while (target := out.with_name(f"{out.name}.earlier-{n}")).exists():
        n += 1
    out.rename(target)
    log.warning("%s held an earlier run; moved it to %s (starting over; --resume continues a run)", out, target)
    return target


# ---------------------------------------------------------------------------------------------- one writer


LOCK = ".viewclr.lock"
_HELD: dict[Path, int] = {}  # folders this process holds, with how many nested holds


class FolderInUse(ViewCLRError):
    """Another live viewclr process writes into the folder."""


def _started(pid: int) -> str | None:
    """When process `pid` started (clock ticks since boot, Linux), to tell a reused pid from the lock's owner."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def _alive(owner: dict) -> bool:
    try:
        os.kill(int(owner["pid"]), 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process
        return True
    except (KeyError, TypeError, ValueError):
        return False
    started = owner.get("started")
    return started is None or _started(int(owner["pid"])) in (None, started)


@contextmanager
def folder_lock(folder: str | Path, command: str) -> Iterator[Path]:
    """One writer per folder: holds `folder/.viewclr.lock` (this process's pid, host and command) while the block
    runs, and stops with `FolderInUse`, naming the other process, when a live one holds it. A lock whose process
    has ended (killed, crashed) is taken over, said so. Nested holds by one process are one."""
    folder = Path(folder).absolute()
    if folder in _HELD:
        _HELD[folder] += 1
        try:
            yield folder / LOCK
        finally:
            _HELD[folder] -= 1
        return
    if folder.exists() and not folder.is_dir():
        raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), str(folder))
    made = not folder.exists()
    folder.mkdir(parents=True, exist_ok=True)
    lock = folder / LOCK
    mine = {"pid": os.getpid(), "host": socket.gethostname(), "command": command, "started": _started(os.getpid())}
    while True:
        try:
            handle = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            owner = read_json(lock) or {}
            if owner.get("host") not in (None, mine["host"]):
                raise FolderInUse(
                    f"{folder} is in use by {owner.get('command', 'viewclr')} (pid {owner.get('pid')} on "
                    f"{owner['host']}); wait for it, or delete {lock} if that process has ended"
                ) from None
            if _alive(owner):
                raise FolderInUse(
                    f"{folder} is in use by {owner.get('command', 'viewclr')} (pid {owner['pid']}); wait for it to "
                    "finish or choose another folder"
                ) from None
            log.warning("%s was left by a process that has ended (pid %s); taking it over", lock, owner.get("pid"))
            lock.unlink(missing_ok=True)
            continue
        with os.fdopen(handle, "w") as out:
            json.dump(mine, out)
        break
    _HELD[folder] = 1
    try:
        yield lock
    finally:
        del _HELD[folder]
        if (read_json(lock) or {}).get("pid") == mine["pid"]:
            lock.unlink(missing_ok=True)
        if made and not any(folder.iterdir()):  # stopped before writing anything: leave nothing behind
            folder.rmdir()
