"""Multi-view testing (appendix 1): every video is scored on ten spatial crops (centre and four corners, each
flipped) of every overlapping temporal window, and the softmax scores are averaged over all of them."""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from viewclr.data.augment import Normalize, _to_frames, to_device
from viewclr.data.index import Sample
from viewclr.data.loader import ClipDataset, ClipLoader

CHUNK = 20  # clips per forward pass (small enough for the allocator to reuse memory instead of mapping it anew)
RESIZE_RATIO = 256 / 224  # the short side is resized to this × the crop before cropping (as ImageNet testing)


def ten_crop(clips: torch.Tensor, size: int, crops: int, normalize: Normalize) -> torch.Tensor:
    """uint8 clips [N, T, H, W, 3] → normalised [N·crops, 3, T, size, size]: with crops = 10, the centre and the
    four corners of the clip resized to short side size·256/224, and each of them flipped; with 1, the centre."""
    frames, _ = _to_frames(clips)  # [N, T, C, H, W]
    n, t, c, h, w = frames.shape
    short = round(size * RESIZE_RATIO) if crops == 10 else size
    scale = short / min(h, w)
    new_h, new_w = max(size, round(h * scale)), max(size, round(w * scale))
    flat = frames.reshape(n * t, c, h, w)
    if (new_h, new_w) != (h, w):
        flat = F.interpolate(flat, size=(new_h, new_w), mode="bilinear", align_corners=False, antialias=True)
    top, left = (new_h - size) // 2, (new_w - size) // 2
    corners = [(top, left)]
    if crops == 10:
        corners += [(0, 0), (0, new_w - size), (new_h - size, 0), (new_h - size, new_w - size)]
    views = [flat[:, :, y : y + size, x : x + size] for y, x in corners]
    if crops == 10:
        views += [v.flip(-1) for v in views]
    stacked = torch.stack(views, 1).reshape(n, t, len(views), c, size, size).transpose(1, 2)  # [N, V, T, C, S, S]
    out = normalize(stacked.reshape(n * len(views), t, c, size, size), (n * len(views),))
    return out


@dataclass
class Predictions:
    names: list[str]
    labels: torch.Tensor  # [N]
    scores: torch.Tensor  # [N, classes] softmax averaged over clips
    clips: torch.Tensor  # [N] how many clips (crops × windows) each video's score averages


@torch.no_grad()
def predict(
    model: torch.nn.Module,
    samples: list[Sample],
    cfg,
    device: torch.device,
    *,
    crops: int | None = None,
    windows: int | None = -1,
    progress: bool = False,
    desc: str = "test",
) -> Predictions:
    """Video-level softmax scores of `model` (clips [B, 3, T, S, S] → logits) over crops × windows."""
    crops = cfg.eval.crops if crops is None else crops
    windows = cfg.eval.windows if windows == -1 else windows
    data = replace(cfg.data, eval_max_windows=windows)
    loader = ClipLoader(
        ClipDataset.from_config(samples, data, train=False, seed=cfg.seed),
        data.batch_size,
        shuffle=False,
        num_workers=data.num_workers,
        seed=cfg.seed,
        pin_memory=device.type == "cuda",
    )
    normalize = Normalize.from_config(cfg.augment, cfg.model.input).to(device)
    was_training = model.training
    model.eval()
    if cfg.eval.channels_last:
        model.to(memory_format=torch.channels_last_3d)
    names, labels, scores, counts = [], [], [], []
    amp = device.type == "cuda"
    for batch in tqdm(loader, desc=desc, unit="batch", disable=not progress, leave=False):
        batch = to_device(batch, device)
        parts = []
        for windows_chunk in batch["clips"].split(max(1, CHUNK // crops)):  # bounded memory: ~CHUNK clips at once
            inputs = ten_crop(windows_chunk, cfg.augment.size, crops, normalize)
            if cfg.eval.channels_last:
                inputs = inputs.contiguous(memory_format=torch.channels_last_3d)
            with torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=amp):
                parts.append(model(inputs).float().softmax(1))
        probabilities = torch.cat(parts)
        owner = batch["video"].repeat_interleave(crops)
        total = torch.zeros(batch["size"], probabilities.shape[1], device=device).index_add_(0, owner, probabilities)
        count = torch.bincount(owner, minlength=batch["size"]).float()
        scores.append((total / count[:, None]).cpu())
        counts.append(count.cpu())
        labels.append(batch["label"].cpu())
        names += [samples[i].name for i in batch["index"].tolist()]
    model.train(was_training)
    if not scores:
        return Predictions([], torch.zeros(0, dtype=torch.long), torch.zeros(0, 0), torch.zeros(0))
    return Predictions(names, torch.cat(labels), torch.cat(scores), torch.cat(counts))


def summarise(predictions: Predictions, classes: tuple[str, ...], present: list[int] | None = None) -> dict:
    """Top-1, top-5, mean-class accuracy (the mean of the per-class accuracies: top-1 with every class weighing
    the same, however many videos it has), per-class accuracy and the confusion matrix (rows: true class) of
    video-level predictions.

    `present`: the classes the split has. Top-k is then taken over them alone (a class the split lacks is never
    predicted): on a dataset with fewer classes than the head, top-5 over all the head's classes would count a
    guess among 8 actions as if among 60. `top5_of` says how many classes the top-5 chose among."""
    n, k = len(predictions.labels), len(classes)
    if n == 0:
        return {"videos": 0}
    scores = predictions.scores
    if present is not None and len(present) < k:
        absent = torch.ones(k, dtype=torch.bool)
        absent[torch.tensor(present, dtype=torch.long)] = False
        scores = scores.masked_fill(absent, float("-inf"))
    among = k if present is None else min(k, len(present))
    predicted = scores.argmax(1)
    top5 = scores.topk(min(5, among), dim=1).indices
    confusion = np.zeros((k, k), dtype=int)
    np.add.at(confusion, (predictions.labels.numpy(), predicted.numpy()), 1)
    per_class = {classes[c]: float(confusion[c, c] / confusion[c].sum()) for c in range(k) if confusion[c].sum() > 0}
    return {
        "videos": n,
        "top1": float((predicted == predictions.labels).float().mean()),
        "top5": float((top5 == predictions.labels[:, None]).any(1).float().mean()),
        "top5_of": among,
        "mean_class": float(np.mean(list(per_class.values()))),
        "per_class": per_class,
        "confusion": confusion.tolist(),
        "clips_per_video": float(predictions.clips.float().mean()),
    }
