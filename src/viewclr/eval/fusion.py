"""Late fusion of two models' per-video scores (the paper's "ViewCLR + Poses"), and the pose stream of the
synthetic benchmark: a small MLP on the rendered 3D joints, as each sample's camera saw them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from viewclr.data.registry import build_split
from viewclr.engine.checkpoint import load_weights
from viewclr.errors import ConfigError, DatasetError
from viewclr.eval.classify import results_table
from viewclr.fileio import save_torch, write_json


def read_scores(path: str | Path) -> dict:
    """A scores file: {"kind": "probabilities" | "logits", "groups": {group: {"names", "labels", "scores"}}}, or a
    flat {"names", "scores"[, "labels"]} (a user's model), which becomes one group "all"."""
    obj = load_weights(path)
    if "groups" not in obj:
        if "names" not in obj or "scores" not in obj:
            raise DatasetError(f"{path} is not a scores file (needs names and scores, per group or flat)")
        obj = {"kind": obj.get("kind", "logits"), "groups": {"all": obj}}
    return obj


def _probabilities(entry: dict, kind: str) -> torch.Tensor:
    scores = torch.as_tensor(entry["scores"]).float()
    return scores if kind == "probabilities" else scores.softmax(1)


def fuse(first: str | Path, second: str | Path, weight: float, out: str | Path | None = None) -> dict:
    """weight·softmax(first) + (1 − weight)·softmax(second), matched by sample name within each group of `first`
    (a flat second file is searched for every group). Reports top-1 of each stream and of the fusion."""
    if not 0.0 <= weight <= 1.0:
        raise ConfigError(None, f"--weight must be in [0, 1], got {weight}")
    a, b = read_scores(first), read_scores(second)
    groups = {}
    for group, entry in a["groups"].items():
        other = b["groups"].get(group) or b["groups"].get("all")
        if other is None:
            raise DatasetError(f"{second} has no scores for group {group} (and no flat 'all' group)")
        position = {name: i for i, name in enumerate(other["names"])}
        common = [i for i, name in enumerate(entry["names"]) if name in position]
        if not common:
            raise DatasetError(f"{first} and {second} share no sample names in group {group}")
        pa = _probabilities(entry, a["kind"])[common]
        pb = _probabilities(other, b["kind"])[[position[entry["names"][i]] for i in common]]
        labels = torch.as_tensor(entry["labels"])[common]
        fused = weight * pa + (1 - weight) * pb
        groups[group] = {
            "videos": len(common),
            "missing": len(entry["names"]) - len(common),
            "top1": float((fused.argmax(1) == labels).float().mean()),
            "top1_first": float((pa.argmax(1) == labels).float().mean()),
            "top1_second": float((pb.argmax(1) == labels).float().mean()),
        }
    protocol = "cvs" if set(groups) >= {"0", "45", "90"} else "all"
    results = {"mode": "fuse", "weight": weight, "first": str(first), "second": str(second),
               "protocol": protocol, "groups": groups}  # fmt: skip
    if out is not None:
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        first_modality, second_modality = a.get("modality", "RGB"), b.get("modality", "Pose")
        rows = [
            (
                "first",
                first_modality,
                {"protocol": protocol, "groups": {g: {"top1": r["top1_first"]} for g, r in groups.items()}},
            ),
            (
                "second",
                second_modality,
                {"protocol": protocol, "groups": {g: {"top1": r["top1_second"]} for g, r in groups.items()}},
            ),
            (f"fused (w = {weight:g})", f"{first_modality} + {second_modality}", results),
        ]
        (out / "results.md").write_text(results_table(rows) + "\n")
        write_json(out / "results.json", results)
    return results


# ---------------------------------------------------------------------------------------------- the pose stream


def pose_descriptor(joints_2d: np.ndarray, frames: int = 16) -> np.ndarray:
    """[F, J, 2] pixel joints → a fixed-size vector: resampled to `frames` frames, centred on the mean pelvis and
    scaled by the spread, so placement and distance do not count."""
    index = np.linspace(0, len(joints_2d) - 1, frames).round().astype(int)
    xy = joints_2d[index].astype(np.float32)
    xy = xy - xy.reshape(-1, 2).mean(0)
    return (xy / (xy.reshape(-1, 2).std() + 1e-6)).ravel()


def train_pose_stream(cfg, out: str | Path, epochs: int = 300, hidden: int = 256) -> dict:
    """An MLP on each video's 2D-projected joints (its camera's view of the synthetic skeleton), trained on the
    training split; writes scores.pt for every test group, ready for `viewclr fuse`."""
    from viewclr.data.synth.meta import SynthMetadata

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
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3, weight_decay=1e-4)
    for _ in range(epochs):
        model.train()
        loss = F.cross_entropy(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.eval()
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
    results = {"mode": "pose", "dataset": spec.name, "protocol": split.protocol, "groups": summary}
    (out / "results.md").write_text(results_table([("pose MLP (2D joints)", "Pose", results)]) + "\n")
    write_json(out / "results.json", results)
    return results
