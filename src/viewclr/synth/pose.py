"""The synthetic benchmark's pose stream (the paper's "ViewCLR + Poses" on data with known skeletons): a small MLP on
each video's 2D-projected joints — its camera's view of the rendered skeleton — trained with the evaluation's
`fit()` on the training split, writing scores.pt for every test group, ready for `viewclr fuse`."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

from viewclr.data.registry import build_split
from viewclr.errors import ConfigError
from viewclr.eval.classify import fit
from viewclr.eval.tables import result_row, results_table
from viewclr.fileio import save_torch, write_json
from viewclr.synth.meta import SynthMetadata


def pose_descriptor(joints_2d: np.ndarray, frames: int = 16) -> np.ndarray:
    """[F, J, 2] pixel joints → a fixed-size vector: resampled to `frames` frames, centred on the mean pelvis and
    scaled by the spread, so placement and distance do not count."""
    index = np.linspace(0, len(joints_2d) - 1, frames).round().astype(int)
    xy = joints_2d[index].astype(np.float32)
    xy = xy - xy.reshape(-1, 2).mean(0)
    return (xy / (xy.reshape(-1, 2).std() + 1e-6)).ravel()


def train_pose_stream(cfg, out: str | Path, epochs: int = 300, hidden: int = 256) -> dict:
    """The MLP on the training split's joints (full batch, Adam 1e-3, weight decay 1e-4); its test scores per group."""
    spec, split = build_split(cfg.data)
    if cfg.data.root is None:
        raise ConfigError("data.root", "the pose stream needs a synthetic dataset root (viewclr synth)")
    meta = SynthMetadata(cfg.data.root)

    def features(samples):
        return torch.from_numpy(np.stack([pose_descriptor(meta.joints(s.name, "pixel")) for s in samples]))

    train = split.train_samples()
    x, y = features(train), torch.tensor([s.label for s in train])
    torch.manual_seed(cfg.seed)
    model = nn.Sequential(
        nn.Linear(x.shape[1], hidden), nn.ReLU(), nn.Dropout(0.2), nn.Linear(hidden, len(spec.classes))
    )
    fit(
        model,
        lambda epoch: [(x, y)],
        [{"params": list(model.parameters()), "lr": 1e-3}],
        epochs,
        weight_decay=1e-4,
        desc="pose",
    )
    groups, summary = {}, {}
    with torch.no_grad():
        for group, samples in split.test.items():
            scores = model(features(samples))
            labels = torch.tensor([s.label for s in samples])
            groups[group] = {"names": [s.name for s in samples], "labels": labels, "scores": scores}
            summary[group] = {"videos": len(samples), "top1": float((scores.argmax(1) == labels).float().mean())}
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    save_torch(
        out / "scores.pt", {"kind": "logits", "classes": list(spec.classes), "modality": "Pose", "groups": groups}
    )
    results = {"mode": "pose", "modality": "Pose", "dataset": spec.name, "protocol": split.protocol, "groups": summary}
    (out / "results.md").write_text(results_table([result_row("pose MLP (2D joints)", results)]) + "\n")
    write_json(out / "results.json", results)
    return results
