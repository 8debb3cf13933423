"""From samples to batches of uint8 clips, in DataLoader workers.

- `ClipDataset` decodes each video once and cuts `num_clips` clips from it (x, x′, x″ for ViewCLR), or the
  overlapping evaluation windows. Randomness comes from (seed, epoch, index) alone, so a batch does not depend
  on which worker made it, and a resumed run sees the same clips.
- An unreadable video becomes a `BadSample`; the collate functions drop it and pass it on, and `ClipLoader`
  warns once per file and reports every epoch how many it skipped. A run never stops for a bad file.
- `EpochSampler` shuffles per epoch, shards across ranks, and can start mid-epoch (resume).

Workers yield uint8 [B, K, T, H, W, 3]; augmentation runs batched on the training device (`augment.py`).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from viewclr.data.index import Sample
from viewclr.data.sampling import eval_clip_indices, train_clip_indices
from viewclr.data.video import open_frames
from viewclr.errors import DatasetError, VideoError

if TYPE_CHECKING:
    from viewclr.config import DataConfig

log = logging.getLogger(__name__)


@dataclass
class BadSample:
    """A video that could not be read, travelling through collation to the main process."""

    index: int
    path: str
    reason: str


class ClipDataset(Dataset):
    """uint8 clips of each sample: [num_clips, T, H, W, 3] (training) or [windows, T, H, W, 3] (evaluation)."""

    def __init__(
        self,
        samples: list[Sample],
        *,
        frames: int,
        stride: int = 1,
        num_clips: int = 1,
        train: bool = True,
        pad: str = "loop",
        short_side: int | None = None,
        frame_size=None,
        overlap: float = 0.5,
        max_windows: int | None = None,
        seed: int = 0,
    ):
        if not samples:
            raise DatasetError("no samples to load (the split is empty)")
        missing = [s.name for s in samples if s.path is None]
        if missing:
            raise DatasetError(f"{len(missing)} samples have no video path (first: {missing[0]}); give data.root")
        self.samples = samples
        self.frames, self.stride, self.num_clips = frames, stride, num_clips
        self.train, self.pad = train, pad
        self.short_side, self.frame_size = short_side, frame_size
        self.overlap, self.max_windows, self.seed = overlap, max_windows, seed

    @classmethod
    def from_config(
        cls, samples: list[Sample], data: DataConfig, *, num_clips: int = 1, train: bool = True, seed: int = 0
    ) -> ClipDataset:
        return cls(
            samples,
            frames=data.frames,
            stride=data.stride,
            num_clips=num_clips,
            train=train,
            pad=data.pad,
            short_side=data.short_side,
            frame_size=data.frame_size,
            overlap=data.eval_overlap,
            max_windows=data.eval_max_windows,
            seed=seed,
        )

    def __len__(self) -> int:
        return len(self.samples)

    def clip_indices(self, num_frames: int, epoch: int, index: int) -> np.ndarray:
        if self.train:
            rng = np.random.default_rng((self.seed, epoch, index))
            return train_clip_indices(num_frames, self.frames, self.stride, self.num_clips, rng, self.pad)
        return eval_clip_indices(num_frames, self.frames, self.stride, self.overlap, self.max_windows, self.pad)

    def __getitem__(self, key: int | tuple[int, int]) -> dict | BadSample:
        epoch, index = key if isinstance(key, tuple) else (0, key)
        sample = self.samples[index]
        try:
            with open_frames(sample.path, sample.num_frames, self.short_side, self.frame_size) as reader:
                indices = self.clip_indices(reader.num_frames, epoch, index)
                unique, inverse = np.unique(indices, return_inverse=True)
                decoded = reader.read(unique)  # every frame decoded once, however many clips use it
        except VideoError as err:
            return BadSample(index, str(sample.path), err.reason)
        clips = decoded[inverse.reshape(indices.shape)]
        return {"clips": torch.from_numpy(clips), "label": sample.label, "index": index, "path": sample.path}


def _split_bad(items: list) -> tuple[list[dict], list[BadSample]]:
    good = [item for item in items if not isinstance(item, BadSample)]
    bad = [item for item in items if isinstance(item, BadSample)]
    path_of_shape = {tuple(item["clips"].shape[-4:]): item["path"] for item in good}
    if len(path_of_shape) > 1:
        (shape_a, path_a), (shape_b, path_b) = list(path_of_shape.items())[:2]
        raise DatasetError(
            f"videos of different frame sizes in one batch: {path_a} gives {shape_a[1]}x{shape_a[2]}, "
            f"{path_b} gives {shape_b[1]}x{shape_b[2]}; set data.frame_size=[H,W] to resize all videos alike"
        )
    return good, bad


def collate_train(items: list) -> dict:
    """{"clips": uint8 [B, K, T, H, W, 3], "label": [B], "index": [B], "skipped": [BadSample], "size": B}."""
    good, bad = _split_bad(items)
    return {
        "clips": torch.stack([item["clips"] for item in good]) if good else None,
        "label": torch.tensor([item["label"] for item in good], dtype=torch.long),
        "index": torch.tensor([item["index"] for item in good], dtype=torch.long),
        "skipped": bad,
        "size": len(good),
    }


def collate_windows(items: list) -> dict:
    """Evaluation: every window of every video in one tensor; `video` says which batch entry owns each window.

    {"clips": uint8 [sum of windows, T, H, W, 3], "video": [sum of windows], "label": [B], "index": [B], ...}.
    """
    good, bad = _split_bad(items)
    owner = [torch.full((len(item["clips"]),), position, dtype=torch.long) for position, item in enumerate(good)]
    return {
        "clips": torch.cat([item["clips"] for item in good]) if good else None,
        "video": torch.cat(owner) if good else torch.zeros(0, dtype=torch.long),
        "label": torch.tensor([item["label"] for item in good], dtype=torch.long),
        "index": torch.tensor([item["index"] for item in good], dtype=torch.long),
        "skipped": bad,
        "size": len(good),
    }


class EpochSampler(Sampler):
    """Yields (epoch, index) keys: a seeded permutation per epoch, this rank's share of it, from `start` on.

    Ranks get equal shares (the permutation is padded by wrapping around, as DistributedSampler does, unless
    `drop_last`); `start` skips the keys this rank already consumed, so an interrupted epoch resumes exactly.
    With `groups` (one label per sample, e.g. its subject) the permutation visits the groups in a random order and
    each group's samples together, in random order, so consecutive batches hold one or two groups.
    """

    def __init__(
        self,
        size: int,
        shuffle: bool = True,
        seed: int = 0,
        rank: int = 0,
        world_size: int = 1,
        drop_last=False,
        groups: list | None = None,
    ):
        if groups is not None and len(groups) != size:
            raise ValueError(f"{len(groups)} group labels for {size} samples")
        self.groups = groups
        if not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} outside world size {world_size}")
        self.size, self.shuffle, self.seed = size, shuffle, seed
        self.rank, self.world_size, self.drop_last = rank, world_size, drop_last
        self.epoch, self.start = 0, 0

    def set_epoch(self, epoch: int, start: int = 0) -> None:
        self.epoch, self.start = epoch, start

    def order(self) -> list[int]:
        """This rank's sample indices for the current epoch, before `start` is applied."""
        if self.shuffle:
            generator = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
            indices = torch.randperm(self.size, generator=generator).tolist()
            if self.groups is not None:  # groups in a random order; sorting is stable, so each keeps its shuffle
                labels = sorted(set(self.groups), key=str)
                rank_of = dict(zip(labels, torch.randperm(len(labels), generator=generator).tolist(), strict=True))
                indices.sort(key=lambda i: rank_of[self.groups[i]])
        else:
            indices = list(range(self.size))
        if self.drop_last:
            indices = indices[: self.size - self.size % self.world_size]
        else:
            total = math.ceil(self.size / self.world_size) * self.world_size
            indices += (indices * math.ceil(total / max(1, self.size)))[: total - self.size]
        return indices[self.rank :: self.world_size]

    def __iter__(self) -> Iterator[tuple[int, int]]:
        for index in self.order()[self.start :]:
            yield self.epoch, index

    def __len__(self) -> int:
        return max(0, len(self.order()) - self.start)


def _worker_init(worker_id: int) -> None:
    torch.set_num_threads(1)  # workers are the parallelism; intra-op threads would oversubscribe the cores


class ClipLoader:
    """A DataLoader of uint8 clip batches that skips unreadable videos and accounts for them.

    Each bad file is warned about once (naming it); at the end of every epoch one line says how many were
    skipped. `skipped` holds this epoch's {path: reason}.
    """

    def __init__(
        self,
        dataset: ClipDataset,
        batch_size: int,
        *,
        shuffle: bool = True,
        num_workers: int = 0,
        seed: int = 0,
        drop_last: bool = False,
        rank: int = 0,
        world_size: int = 1,
        pin_memory: bool = False,
        groups: list | None = None,
    ):
        self.dataset = dataset
        self.sampler = EpochSampler(len(dataset), shuffle, seed, rank, world_size, drop_last, groups)
        self.loader = DataLoader(
            dataset,
            batch_size=batch_size,
            sampler=self.sampler,
            num_workers=num_workers,
            collate_fn=collate_train if dataset.train else collate_windows,
            pin_memory=pin_memory,
            drop_last=drop_last,
            persistent_workers=num_workers > 0,
            worker_init_fn=_worker_init if num_workers > 0 else None,
        )
        self.skipped: dict[str, str] = {}
        self._warned: set[str] = set()

    def set_epoch(self, epoch: int, start_batch: int = 0) -> None:
        """Start `epoch` at batch `start_batch` of this rank (0: from the beginning)."""
        self.sampler.set_epoch(epoch, start_batch * self.loader.batch_size)

    def __len__(self) -> int:
        return len(self.loader)

    def __iter__(self) -> Iterator[dict]:
        self.skipped = {}
        for batch in self.loader:
            for bad in batch["skipped"]:
                self.skipped[bad.path] = bad.reason
                if bad.path not in self._warned:
                    self._warned.add(bad.path)
                    log.warning("skipping unreadable video %s: %s", bad.path, bad.reason)
            if batch["size"]:
                yield batch
        if self.skipped:
            log.warning(
                "epoch %d: skipped %d unreadable video(s) of %d: %s",
                self.sampler.epoch + 1,  # counted from 1, as the progress bar counts
                len(self.skipped),
                len(self.dataset),
                ", ".join(sorted(self.skipped)[:5]) + (" ..." if len(self.skipped) > 5 else ""),
            )
