"""Every logged value goes to `metrics.jsonl` (one JSON object per line) and to TensorBoard events."""

from __future__ import annotations

import json
import logging
from pathlib import Path

log = logging.getLogger(__name__)


class MetricLogger:
    def __init__(self, folder: str | Path, enabled: bool = True):
        self.enabled = enabled
        self.folder = Path(folder)
        self._writer = None
        if not enabled:
            return
        self.folder.mkdir(parents=True, exist_ok=True)
        self._jsonl = (self.folder / "metrics.jsonl").open("a")
        try:
            from torch.utils.tensorboard import SummaryWriter

            self._writer = SummaryWriter(str(self.folder / "tensorboard"))
        except ImportError:  # tensorboard is a dependency, but a stripped environment still trains
            log.warning("tensorboard is not installed; logging to metrics.jsonl only")

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


def read_metrics(folder: str | Path) -> list[dict]:
    path = Path(folder) / "metrics.jsonl"
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
