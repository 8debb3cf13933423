"""Frozen features of every video of a split, and a cosine kNN classifier on them (no training).

Used as the online monitor of pretraining (top-1 per test view) and by `viewclr knn`."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from viewclr.data.augment import ClipCenter, to_device
from viewclr.data.index import Sample
from viewclr.data.loader import ClipDataset, ClipLoader


@torch.no_grad()
def extract_features(
    backbone: torch.nn.Module,
    samples: list[Sample],
    cfg,
    device: torch.device,
    *,
    windows: int | None = 1,
    batch_size: int | None = None,
    amp: bool = False,
    normalize: bool = True,
    progress: bool = False,
    desc: str = "features",
    indices: list[int] | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Pooled features [N, C] (averaged over `windows` evenly spaced centre clips per video; L2-normalised unless
    `normalize` is false) and labels [N].

    Videos the loader cannot read are left out (and warned about by the loader). `progress`: a bar over the
    videos, labelled `desc`."""
    data = replace(cfg.data, eval_max_windows=windows)
    dataset = ClipDataset.from_config(samples, data, train=False, seed=cfg.seed)
    loader = ClipLoader(
        dataset,
        batch_size or data.batch_size,
        shuffle=False,
        num_workers=data.num_workers,
        seed=cfg.seed,
        pin_memory=device.type == "cuda",
    )
    transform = ClipCenter(cfg.augment, cfg.model.input).to(device)
    was_training = backbone.training
    backbone.eval()
    channels_last = cfg.eval.channels_last
    if channels_last:
        backbone.to(memory_format=torch.channels_last_3d)
    features, labels = [], []
    bar = tqdm(total=len(samples), desc=desc, unit="video", disable=not progress, leave=False)
    for batch in loader:
        batch = to_device(batch, device)
        with torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=amp):
            inputs = transform(batch["clips"])
            if channels_last:
                inputs = inputs.contiguous(memory_format=torch.channels_last_3d)
            clip_features = backbone(inputs).float()
        per_video = torch.zeros(batch["size"], clip_features.shape[1], device=device)
        per_video.index_add_(0, batch["video"], clip_features)
        per_video /= torch.bincount(batch["video"], minlength=batch["size"]).clamp_min(1)[:, None]
        features.append((F.normalize(per_video, dim=1) if normalize else per_video).cpu())
        labels.append(batch["label"].cpu())
        if indices is not None:  # which samples the rows are (unreadable videos are left out)
            indices += batch["index"].tolist()
        bar.update(batch["size"])
    bar.close()
    backbone.train(was_training)
    if not features:
        return torch.zeros(0, 1), torch.zeros(0, dtype=torch.long)
    return torch.cat(features), torch.cat(labels)


def knn_predict(
    train_features: torch.Tensor,
    train_labels: torch.Tensor,
    test_features: torch.Tensor,
    num_classes: int,
    k: int = 20,
    temperature: float = 0.07,
    chunk: int = 1024,
) -> torch.Tensor:
    """Class scores [N_test, classes] of a weighted kNN on cosine similarity (Wu et al. 2018): each of the k
    nearest training videos votes for its class with weight exp(similarity / temperature)."""
    k = min(k, len(train_features))
    scores = []
    for start in range(0, len(test_features), chunk):
        similarity = test_features[start : start + chunk] @ train_features.T
        top, index = similarity.topk(k, dim=1)
        votes = torch.zeros(len(top), num_classes)
        votes.scatter_add_(1, train_labels[index], (top / temperature).exp())
        scores.append(votes)
    return torch.cat(scores) if scores else torch.zeros(0, num_classes)


def knn_accuracy(train_features, train_labels, test_features, test_labels, num_classes: int, k: int = 20) -> float:
    if len(test_features) == 0 or len(train_features) == 0:
        return float("nan")
    predicted = knn_predict(train_features, train_labels, test_features, num_classes, k).argmax(1)
    return float((predicted == test_labels).float().mean())


def subsample(samples: list[Sample], limit: int | None, seed: int) -> list[Sample]:
    if limit is None or len(samples) <= limit:
        return samples
    keep = np.sort(np.random.default_rng(seed).choice(len(samples), limit, replace=False))
    return [samples[i] for i in keep]
