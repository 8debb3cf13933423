"""A FIFO queue of embeddings (MoCo's dictionary): Queue1 of keys and, for ViewCLR, Queue2 of world codes,
enqueued together so that slot j of both belongs to the same video.

Each slot also remembers which video (dataset index) it came from, so that a query is never contrasted against an
older key of its own video: on a small dataset a queue holds many of them (N-UCLA's ~1,000 training videos fill a
queue of 2048 twice over), and such "negatives" are the query's positive under another augmentation."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from viewclr.methods.distributed import gather


class FeatureQueue(nn.Module):
    """`size` unit vectors of `dim`, oldest overwritten first. Buffers, so checkpoints hold them and the pointer."""

    def __init__(self, size: int, dim: int, seed: int = 0):
        super().__init__()
        generator = torch.Generator().manual_seed(seed)
        self.register_buffer("features", F.normalize(torch.randn(size, dim, generator=generator), dim=1))
        self.register_buffer("pointer", torch.zeros((), dtype=torch.long))
        self.register_buffer("ids", torch.full((size,), -1, dtype=torch.long))  # the video of each slot; -1: none
        # which slots hold a pushed entry (the others hold the random start): Queue2's unwritten slots are no target
        self.register_buffer("filled", torch.zeros(size, dtype=torch.bool))

    @torch.no_grad()
    def restart_at(self, pointer: int) -> None:
        """Empty the queue (no slot written, no video known) and put its pointer at `pointer`."""
        self.filled.zero_()
        self.ids.fill_(-1)
        self.pointer.fill_(pointer % self.size)

    def same_video(self, ids: torch.Tensor) -> torch.Tensor:
        """[B, size] bool: which slots hold a key of each of the B videos `ids` (dataset indices; -1 never matches)."""
        return (ids[:, None] == self.ids[None, :]) & (ids[:, None] >= 0)

    @property
    def size(self) -> int:
        return self.features.shape[0]

    @torch.no_grad()
    def push(self, features: torch.Tensor, gathered: bool = False, ids: torch.Tensor | None = None) -> None:
        """Enqueue a batch (every rank's, in rank order, unless `gathered` says it already is) and the videos it
        came from (`ids`, gathered the same way; unknown when None)."""
        batch = features if gathered else gather(features)
        batch = batch.detach().to(self.features.dtype)
        if ids is None:
            ids = torch.full((len(batch),), -1, dtype=torch.long, device=batch.device)
        elif not gathered:
            ids = gather(ids)
        n = len(batch)
        if n > self.size:
            raise ValueError(f"a batch of {n} does not fit a queue of {self.size} (method.queue_size)")
        start = int(self.pointer)
        end = start + n
        slots = torch.arange(start, end, device=self.features.device) % self.size  # wraps around
        self.features[slots] = batch
        self.ids[slots] = ids.to(self.ids.device)
        self.filled[slots] = True
        self.pointer.fill_(end % self.size)
