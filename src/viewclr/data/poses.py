"""The pose modality's data: a protocol's samples that have a skeleton, and where their arrays are.

`pose_data(cfg)` is what every pose command starts from (training in `studies.pose`, and kNN, extract and t-SNE of
a SkeletonCLR encoder in `eval.embed`): the skeleton cache (`data.skeleton_cache`; made on first use where
`pose.cache` is not given) and the videos' own protocol split, restricted to the samples that have a skeleton —
the samples whose video has no skeleton, and the skeletons without a video, are counted and named in the split's
summary. `validation_split` holds training subjects out (for the fusion weight).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import torch

from viewclr.data.index import Sample, Split
from viewclr.data.registry import build_split, get_dataset
from viewclr.data.skeleton import joint_count
from viewclr.data.skeleton_cache import SkeletonCache, cache_settings, open_cache, prepare_skeletons
from viewclr.errors import ConfigError, DatasetError
from viewclr.runtime import derived_seed

VALIDATION = "val"  # the group a validation result's scores are in


@dataclass
class PoseData:
    """A protocol's samples with skeletons: the split, the cache their arrays are in, and V."""

    spec: object
    split: Split
    cache: SkeletonCache
    joints: int


def skeleton_format(dataset: str) -> str:
    """Which reader a dataset's skeletons take: nucla (JSON) or ntu (.skeleton; NTU-60/120, synth)."""
    return "nucla" if dataset == "nucla" else "ntu60"


def skeleton_cache(cfg, progress: bool = True) -> SkeletonCache:
    """`pose.cache` (or <out_dir>/skeletons) when it was made with these settings; made from the skeleton files
    under `pose.root` (or `data.root`) otherwise."""
    p, dataset = cfg.pose, cfg.data.dataset
    folder = Path(p.cache) if p.cache else Path(cfg.out_dir) / "skeletons"
    settings = cache_settings(skeleton_format(dataset), p.frames, p.bodies, p.normalise)
    cache = open_cache(folder, settings, "pose.cache" if p.cache else None)  # a named folder is never replaced
    if cache is not None:
        return cache
    root = p.root or cfg.data.root
    if root is None:
        raise ConfigError("pose.root", "no skeletons: set pose.root (or data.root) to a folder of skeleton files")
    prepare_for(dataset, root, folder, p.frames, p.bodies, p.normalise, progress)
    return SkeletonCache(folder)


def prepare_for(
    dataset: str, root, out, frames: int, bodies: int = 2, normalise: str = "none", progress: bool = True
) -> dict:
    """The skeleton cache of `dataset`'s files under `root` (`viewclr prepare --skeletons`): NTU's samples on its
    missing-skeleton list are left out, said so."""
    skip, reason = frozenset(), ""
    if dataset.startswith("ntu"):
        spec = get_dataset(dataset)
        skip, reason = spec.missing_skeletons(), spec.missing_list
    return prepare_skeletons(root, skeleton_format(dataset), out, frames, bodies, normalise, skip, reason, progress)


def pose_data(cfg, progress: bool = True) -> PoseData:
    """The protocol's split of the samples that have a skeleton (module docstring)."""
    cache = skeleton_cache(cfg, progress)
    names = set(cache.row)
    data = cfg.data if cfg.data.root is not None else _with_root(cfg.data, cfg.pose.root)
    try:
        spec, split = build_split(data, only=names)
    except DatasetError:
        if cfg.data.root is not None:
            raise
        listing = cache.folder / "names.txt"  # no videos at hand: the skeletons' names are the samples
        listing.write_text(
            "".join(f"{n} {f}\n" for n, f in zip(cache.index["names"], cache.index["frames"], strict=True))
        )
        spec, split = build_split(cfg.data, names_file=listing)
    if not split.train_samples() or not split.test_samples():
        raise DatasetError(f"the {split.protocol} split has no samples with a skeleton in {cache.folder}")
    return PoseData(spec, split, cache, joint_count(cache.settings["dataset"]))


def _with_root(data, root):
    return replace(data, root=root)


def validation_split(split: Split, subjects: int) -> Split:
    """Training samples of the last `subjects` training subjects as the test group "val", the rest to train on
    (the training view only: the test views are never looked at)."""
    train = split.train_samples()
    ids = sorted({s.subject for s in train if s.subject is not None})
    if len(ids) <= subjects:
        raise ConfigError("pose.val_subjects", f"the split trains on {len(ids)} subjects; hold out fewer")
    held = set(ids[-subjects:])
    return Split(
        split.dataset,
        split.protocol,
        train={"all": [s for s in train if s.subject not in held]},
        test={VALIDATION: [s for s in train if s.subject in held]},
    )


def batches_of(cache: SkeletonCache, samples: list[Sample], batch: int, seed: int, epoch: int, shuffle: bool):
    """(skeletons [b, 3, T, V, M], labels [b], dataset indices [b]) over `samples`, shuffled from (seed, epoch);
    a shuffled epoch drops a last batch smaller than 2 (BatchNorm cannot train on one sample)."""
    order = torch.randperm(len(samples), generator=torch.Generator().manual_seed(derived_seed(seed, epoch)))
    order = order if shuffle else torch.arange(len(samples))
    for start in range(0, len(order), batch):
        index = order[start : start + batch]
        if shuffle and len(index) < 2:
            continue
        chosen = [samples[i] for i in index.tolist()]
        x = torch.from_numpy(cache.take([s.name for s in chosen]))
        yield x, torch.tensor([s.label for s in chosen]), index
