"""Linear probe and finetuning (paper §4.3), and the protocol-aware results they report.

- Linear probe: the encoder frozen (BatchNorm in eval mode), a linear layer after a non-affine BatchNorm (or L2
  normalisation) of the pooled features, trained with cross-entropy. The fast path (default, `eval.fast`)
  extracts every training video's feature once (centre crop, `eval.feature_windows` windows averaged) and trains
  the linear layer on those — with a frozen encoder and no augmentation this is the same optimisation problem as
  running the encoder each epoch, at a fraction of the cost. The slow path trains through the frozen encoder on
  augmented clips.
- Finetune: encoder + dropout + linear, the paper's augmentations minus blur, the encoder at a lower learning rate.

Both test with the multi-view protocol (`predict`) on every test group (per view for CVS) and write
`results.json`, `results.md` (the layout of the paper's Table 1) and `scores.pt` (per-video scores for fusion).
"""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from viewclr.data.augment import ClipAugment, modality, to_device
from viewclr.data.index import view_label
from viewclr.data.loader import ClipDataset, ClipLoader
from viewclr.data.registry import build_split
from viewclr.engine.checkpoint import CheckpointError, CheckpointManager, load_weights
from viewclr.engine.trainer import choose_device
from viewclr.errors import ConfigError
from viewclr.eval.encoder import load_encoder
from viewclr.eval.knn import extract_features
from viewclr.eval.predict import predict, summarise
from viewclr.fileio import save_torch, write_json
from viewclr.models import build_backbone
from viewclr.models.heads import ClassifierHead

log = logging.getLogger(__name__)


class Classifier(nn.Module):
    """backbone → pooled features → ClassifierHead; `frozen` keeps the encoder in eval mode and without gradients."""

    def __init__(self, backbone: nn.Module, num_classes: int, dropout: float, feature_norm: str, frozen: bool):
        super().__init__()
        self.backbone = backbone
        self.frozen = frozen
        self.l2 = feature_norm == "l2"
        self.head = ClassifierHead(backbone.out_channels, num_classes, dropout, feature_norm == "bn")
        if frozen:
            backbone.requires_grad_(False)

    def train(self, mode: bool = True):
        super().train(mode)
        if self.frozen:
            self.backbone.eval()  # BatchNorm statistics stay the pretrained ones
        return self

    def features(self, x: torch.Tensor) -> torch.Tensor:
        with torch.set_grad_enabled(not self.frozen and torch.is_grad_enabled()):
            return self.backbone(x)

    def classify(self, features: torch.Tensor) -> torch.Tensor:
        return self.head(F.normalize(features, dim=1) if self.l2 else features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classify(self.features(x))


def _encoder(cfg) -> nn.Module:
    if cfg.eval.checkpoint is None:
        log.warning("eval.checkpoint is not set: evaluating a randomly initialised encoder")
        return build_backbone(cfg.model.backbone, cfg.model.width)
    return load_encoder(cfg.eval.checkpoint, cfg.model)


def evaluate(cfg, mode: str, out: str | Path | None = None, progress: bool = True) -> dict:
    """mode: probe | finetune | test. Trains what the mode trains, tests every group, writes the results."""
    device = choose_device(cfg)
    spec, split = build_split(cfg.data)
    out = Path(out or Path(cfg.out_dir) / "eval" / mode)
    torch.manual_seed(cfg.seed)
    num_classes = len(spec.classes)
    if mode == "test":
        model = load_classifier(cfg.eval.checkpoint, cfg, num_classes)
    else:
        frozen = mode == "probe"
        model = Classifier(
            _encoder(cfg),
            num_classes,
            0.0 if frozen and cfg.eval.fast else cfg.eval.dropout,
            cfg.eval.feature_norm if frozen else "none",
            frozen,
        )
    out.mkdir(parents=True, exist_ok=True)  # only once the checkpoint has loaded: a bad one leaves nothing behind
    model.to(device)
    if cfg.eval.channels_last:
        model.to(memory_format=torch.channels_last_3d)
    if mode == "probe" and cfg.eval.fast:
        _train_on_features(model, split.train_samples(), cfg, device, progress)
    elif mode in ("probe", "finetune"):
        _train_on_clips(model, split.train_samples(), cfg, device, out, progress, finetune=mode == "finetune")
    if mode != "test":
        save_torch(
            out / "classifier.pt",
            {
                "backbone": model.backbone.state_dict(),
                "classifier": model.head.state_dict(),
                "model": {"backbone": cfg.model.backbone, "width": cfg.model.width},
                "eval": {"feature_norm": cfg.eval.feature_norm if mode == "probe" else "none", "mode": mode},
                "classes": list(spec.classes),
            },
        )
    groups, scores = {}, {}
    present = sorted({s.label for s in split.train_samples()} | {s.label for s in split.test_samples()})
    for group, samples in split.test.items():
        predictions = predict(model, samples, cfg, device, progress=progress, desc=f"test {group}")
        groups[group] = summarise(predictions, spec.classes, present)
        scores[group] = {"names": predictions.names, "labels": predictions.labels, "scores": predictions.scores}
    results = {
        "mode": mode,
        "dataset": spec.name,
        "protocol": split.protocol,
        "checkpoint": cfg.eval.checkpoint,
        "crops": cfg.eval.crops,
        "windows": cfg.eval.windows,
        "modality": modality(cfg.augment),
        "classes": len(spec.classes),  # the classifier's outputs
        "classes_present": len(present),  # the split's classes: top-k is over these (summarise)
        "groups": groups,
    }
    save_torch(
        out / "scores.pt",
        {"kind": "probabilities", "classes": list(spec.classes), "modality": results["modality"], "groups": scores},
    )
    heads = f" of the classifier's {len(spec.classes)}" if len(present) < len(spec.classes) else ""
    note = (
        f"Top-1 in %. The split has {len(present)} classes{heads} (chance {100 / len(present):.1f} %); top-5 "
        "(results.json) is taken over the split's classes."
    )
    (out / "results.md").write_text(
        results_table([(f"{mode} ({cfg.model.backbone})", results["modality"], results)]) + f"\n\n{note}\n"
    )
    write_json(out / "results.json", results)  # last: its presence means the evaluation finished
    return results


def load_classifier(path, cfg, num_classes: int) -> Classifier:
    """A probe or finetune result (encoder + linear layer) for `viewclr test`."""
    if path is None:
        raise ConfigError("eval.checkpoint", "viewclr test needs a classifier: the classifier.pt of probe or finetune")
    obj = load_weights(path)
    if "classifier" not in obj:
        raise CheckpointError(f"{path} has no classifier; test a probe or finetune result (classifier.pt)")
    backbone = load_encoder(path, cfg.model)
    norm = obj.get("eval", {}).get("feature_norm", "none")
    model = Classifier(backbone, num_classes, 0.0, norm, frozen=True)
    head_classes = obj["classifier"]["linear.weight"].shape[0]
    if head_classes != num_classes:
        raise CheckpointError(f"{path} classifies {head_classes} classes; {cfg.data.dataset} has {num_classes}")
    model.head.load_state_dict(obj["classifier"])
    return model


def _train_on_features(model: Classifier, samples, cfg, device, progress: bool) -> None:
    features, labels = extract_features(
        model.backbone, samples, cfg, device, windows=cfg.eval.feature_windows, normalize=False
    )
    fit_linear(model, features.to(device), labels.to(device), cfg.eval, cfg.data.batch_size, cfg.seed, progress)


def fit_linear(model: Classifier, features, labels, eval_cfg, batch: int, seed: int = 0, progress=False) -> None:
    """Train the classifier's head on fixed features (Adam, cross-entropy, shuffled mini-batches)."""
    head = model.head
    optimizer = torch.optim.Adam(head.parameters(), lr=eval_cfg.lr, weight_decay=eval_cfg.weight_decay)
    generator = torch.Generator().manual_seed(seed)
    head.train()
    for _ in tqdm(range(eval_cfg.epochs), desc="probe", unit="epoch", disable=not progress, leave=False):
        order = torch.randperm(len(features), generator=generator).to(features.device)
        for start in range(0, len(order), batch):
            index = order[start : start + batch]
            if len(index) < 2 and isinstance(head.norm, nn.BatchNorm1d):
                continue
            loss = F.cross_entropy(model.classify(features[index]), labels[index])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
    model.eval()


def _train_on_clips(model: Classifier, samples, cfg, device, out: Path, progress: bool, finetune: bool) -> None:
    epochs = cfg.eval.finetune_epochs if finetune else cfg.eval.epochs
    augment = ClipAugment(replace(cfg.augment, blur_p=0.0)).to(device)  # the paper's augmentations minus blur
    loader = ClipLoader(
        ClipDataset.from_config(samples, cfg.data, num_clips=1, train=True, seed=cfg.seed),
        cfg.data.batch_size,
        shuffle=True,
        num_workers=cfg.data.num_workers,
        seed=cfg.seed,
        drop_last=len(samples) > cfg.data.batch_size,
        pin_memory=device.type == "cuda",
    )
    head_params = list(model.head.parameters())
    groups = [{"params": head_params, "lr": cfg.eval.lr}]
    if finetune:
        groups.append({"params": list(model.backbone.parameters()), "lr": cfg.eval.lr * cfg.eval.backbone_lr_scale})
    optimizer = torch.optim.Adam(groups, weight_decay=cfg.eval.weight_decay)
    checkpoints = CheckpointManager(out / "checkpoints", keep=1)
    start_epoch = 0
    found = checkpoints.load_latest(map_location="cpu")
    if found is not None:
        state, path = found
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        start_epoch = state["epoch"]
        log.info("resuming from %s (epoch %d)", path, start_epoch)
    model.train()
    amp = device.type == "cuda"
    step = start_epoch * max(len(loader), 1)
    for epoch in range(start_epoch, epochs):
        loader.set_epoch(epoch)
        bar = tqdm(loader, desc=f"{'finetune' if finetune else 'probe'} {epoch + 1}/{epochs}", disable=not progress)
        for batch in bar:
            torch.manual_seed(cfg.seed * 1_000_003 + step)
            clips = augment(to_device(batch, device)["clips"])[:, 0]
            if cfg.eval.channels_last:
                clips = clips.contiguous(memory_format=torch.channels_last_3d)
            with torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=amp):
                loss = F.cross_entropy(model(clips).float(), batch["label"].to(device))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            step += 1
            bar.set_postfix(loss=f"{loss.item():.3f}", refresh=False)
        checkpoints.save(
            {"model": model.state_dict(), "optimizer": optimizer.state_dict(), "epoch": epoch + 1}, epoch + 1
        )
    model.eval()


def results_table(rows: list[tuple[str, str, dict]]) -> str:
    """A Markdown table in the layout of the paper's Table 1: one row per method, one column per test group
    (CVS: CVS1/2/3 = 0°, 45°, 90°; other protocols: their test split), top-1 in %."""
    groups: list[str] = []
    for _, _, result in rows:
        groups += [g for g in result["groups"] if g not in groups]
    protocol = rows[0][2]["protocol"] if rows else ""

    def title(index: int, group: str) -> str:
        if protocol.startswith("cvs"):
            return f"CVS{index + 1} ({view_label(group)})"
        return protocol.upper() if group == "all" else view_label(group)

    lines = [
        "| Method | M | " + " | ".join(title(i, g) for i, g in enumerate(groups)) + " |",
        "|---|---|" + "---:|" * len(groups),
    ]
    for name, kind, result in rows:
        cells = [result["groups"].get(g, {}).get("top1") for g in groups]
        lines.append(f"| {name} | {kind} | " + " | ".join("–" if v is None else f"{100 * v:.1f}" for v in cells) + " |")
    return "\n".join(lines)
