"""A FIFO queue of embeddings (MoCo's dictionary): Queue1 of keys and, for ViewCLR, Queue2 of world codes,
enqueued together so that slot j of both belongs to the same video."""

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

    @property
    def size(self) -> int:
        return self.features.shape[0]

    @torch.no_grad()
    def push(self, features: torch.Tensor, gathered: bool = False) -> None:
        """Enqueue a batch (every rank's, in rank order, unless `gathered` says it already is)."""
        batch = features if gathered else gather(features)
        batch = batch.detach().to(self.features.dtype)
        n = len(batch)
        if n > self.size:
            raise ValueError(f"a batch of {n} does not fit a queue of {self.size} (method.queue_size)")
        start = int(self.pointer)
        end = start + n
        if end <= self.size:
            self.features[start:end] = batch
        else:  # wrap around
            first = self.size - start
            self.features[start:] = batch[:first]
            self.features[: n - first] = batch[first:]
        self.pointer.fill_(end % self.size)
