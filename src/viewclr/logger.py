"""Every logged value goes to `metrics.jsonl` (one JSON object per line) and to TensorBoard events."""

from __future__ import annotations

import json
import logging
from pathlib import Path

log = logging.getLogger(__name__)


class MetricLogger:
    """`after`: the step training continues from; records of later steps (an interrupted run's, which the resumed
    run trains again) are dropped first, so that the log holds each step once."""

    def __init__(self, folder: str | Path, enabled: bool = True, after: int | None = None):
        self.enabled = enabled
        self.folder = Path(folder)
        self._writer = None
        if not enabled:
            return
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self.folder / "metrics.jsonl"
        if after is not None and path.is_file():
            kept = [line for line in path.read_text().splitlines() if _step(line) <= after]
            path.write_text("".join(f"{line}\n" for line in kept))
        self._jsonl = path.open("a")
        try:
            from torch.utils.tensorboard import SummaryWriter

            self._writer = SummaryWriter(str(self.folder / "tensorboard"))
        except ImportError:  # an optional extra: metrics.jsonl holds every value either way
            log.info("tensorboard is not installed (pip install 'viewclr[tensorboard]'); logging to metrics.jsonl")

    def log(self, step: int, values: dict[str, float], **context) -> None:
        if not self.enabled:
            return
        record = {"step": step, **context, **{k: float(v) for k, v in values.items()}}
        self._jsonl.write(json.dumps(record) + "\n")
        self._jsonl.flush()
        if self._writer is not None:
            for key, value in values.items():
                self._writer.add_scalar(key, float(value), step)

    def close(self) -> None:
        if not self.enabled:
            return
        self._jsonl.close()
        if self._writer is not None:
            self._writer.close()


def _step(line: str) -> float:
    """A record's step; a line an interrupted write left half is past every step."""
    try:
        return json.loads(line).get("step", -1)
    except json.JSONDecodeError:
        return float("inf")


def read_metrics(folder: str | Path) -> list[dict]:
    path = Path(folder) / "metrics.jsonl"
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
