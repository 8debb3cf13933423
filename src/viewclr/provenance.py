"""Which code produced a result: the package version, a digest of the package's source files and, in a git
checkout, the commit. Recorded in every pretraining summary (final.pt) and evaluation (results.json), so that
results trained by different code — a comparison that reuses runs of an earlier version, or a process whose source
was edited while it ran and imported some modules later — can be told apart (`viewclr compare` warns)."""

from __future__ import annotations

import functools
import hashlib
import logging
import subprocess
from pathlib import Path

from viewclr import __version__

log = logging.getLogger(__name__)
PACKAGE = Path(__file__).resolve().parent


def source_digest(root: Path = PACKAGE) -> str:
    """sha256 (first 16 hex digits) over the relative path and bytes of every .py and .yaml file under root."""
    digest = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.suffix in (".py", ".yaml") and p.is_file()):
        digest.update(path.relative_to(root).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def git_state(root: Path = PACKAGE) -> tuple[str | None, bool | None]:
    """(commit, whether the package's files differ from it) when root is in a git checkout; (None, None) else."""
    try:
        commit = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10
        )
        if commit.returncode:
            return None, None
        status = subprocess.run(
            ["git", "-C", str(root), "status", "--porcelain", "--", "."], capture_output=True, text=True, timeout=10
        )
        return commit.stdout.strip(), bool(status.stdout.strip()) if status.returncode == 0 else None
    except (OSError, subprocess.SubprocessError):  # no git, or it hangs
        return None, None


@functools.cache
def at_start() -> dict:
    """The code this process started with (computed at the first call and kept; the CLI calls it first thing)."""
    commit, dirty = git_state()
    return {"version": __version__, "source": source_digest(), "commit": commit, "dirty": dirty}


def record() -> dict:
    """`at_start()` and whether the source on disk still matches it (`source_changed`: if true, modules this
    process imported later may be other code than those it imported first)."""
    start = at_start()
    changed = source_digest() != start["source"]
    if changed:
        log.warning(
            "the viewclr source under %s changed while this process ran: a result it writes now may mix "
            "code of two versions (rerun it in a fresh process)",
            PACKAGE,
        )
    return {**start, "source_changed": changed}


def mixed(records: dict[str, dict | None]) -> str | None:
    """A one-line warning when the results named by `records` ({what: its provenance, None if unrecorded}) come
    from more than one version of the code or from a process whose source changed while it ran; None if not."""
    sources = {r["source"] for r in records.values() if r is not None}
    unrecorded = [name for name, r in records.items() if r is None]
    changed = [name for name, r in records.items() if r is not None and r.get("source_changed")]
    problems = []
    if len(sources) > 1:
        problems.append(f"{len(sources)} versions of the code ({', '.join(sorted(sources))})")
    if sources and unrecorded:
        problems.append(f"{len(unrecorded)} result(s) from code that recorded no version (e.g. {unrecorded[0]})")
    if changed:
        problems.append(f"a source edited while it ran ({changed[0]})")
    if not problems:
        return None
    return "these results come from " + "; ".join(problems) + ": delete the runs in question to redo them with one"
