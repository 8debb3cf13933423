"""Linear probe and finetuning (paper §4.3), and the protocol-aware results they report.

- Linear probe: the encoder frozen (BatchNorm in eval mode), a linear layer after a non-affine BatchNorm (or L2
  normalisation) of the pooled features, trained with cross-entropy. The fast path (default, `eval.fast`)
  extracts every training video's feature once (centre crop, `eval.feature_windows` windows averaged) and trains
  the linear layer on those — with a frozen encoder and no augmentation this is the same optimisation problem as
  running the encoder each epoch, at a fraction of the cost. The slow path trains through the frozen encoder on
  augmented clips.
- Finetune (Appendix 1): encoder + dropout + linear, the pretraining's augmentation minus blur, pretraining's Adam
  (`eval.lr`, `eval.finetune_weight_decay`) for `eval.finetune_epochs`; `eval.backbone_lr_scale` < 1 slows the
  encoder (the CPU presets' choice).

Every training here — the fast probe on features, the slow probe and the finetune on clips, the synthetic pose
stream — is one `fit()`. Both modes test with the multi-view protocol (`predict`) on every test group (per view
for CVS) and write `results.json`, `results.md` (the library's results table) and `scores.pt` (per-video scores
for fusion).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import replace
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from viewclr import lineage, provenance
from viewclr.checkpoint import CheckpointError, CheckpointManager, load_weights
from viewclr.config import to_yaml
from viewclr.data.augment import ClipAugment, modality, to_device
from viewclr.data.loader import ClipDataset, ClipLoader
from viewclr.data.registry import build_split
from viewclr.errors import ConfigError
from viewclr.eval.predict import predict, summarise
from viewclr.eval.tables import result_row, results_table
from viewclr.features import extract_features
from viewclr.fileio import folder_lock, save_torch, set_aside, write_json
from viewclr.logger import MetricLogger
from viewclr.models.heads import ClassifierHead
from viewclr.models.registry import build_backbone, check_backbone, encoder_record
from viewclr.models.weights import load_encoder, pose_record
from viewclr.runtime import choose_device, derived_seed

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


def encoder_of(cfg) -> nn.Module:
    """The encoder eval.checkpoint holds (checked against cfg), or a randomly initialised one, said so."""
    if cfg.eval.checkpoint is None:
        log.warning("eval.checkpoint is not set: evaluating a randomly initialised encoder")
        return build_backbone(cfg.model.backbone, cfg.model.width)
    return load_encoder(cfg.eval.checkpoint, cfg)


def fit(
    model: nn.Module,
    batches: Callable[[int], Iterable[tuple[torch.Tensor, torch.Tensor]]],
    groups: list[dict],
    epochs: int,
    *,
    weight_decay: float = 0.0,
    checkpoints: CheckpointManager | None = None,
    amp: bool = False,
    desc: str = "fit",
    progress: bool = False,
    bar_per_epoch: bool = True,
    identity: dict | None = None,
    log_to: Path | None = None,
    optimizer: Callable[[list[dict]], torch.optim.Optimizer] | None = None,
    lr_scale: Callable[[int], float] | None = None,
) -> None:
    """Cross-entropy training of `model` for `epochs`: Adam on the parameter `groups`, over the (inputs, labels)
    pairs `batches(epoch)` yields. With `checkpoints`, an epoch's end is saved and an interrupted fit resumes
    from the last one. Progress: a bar over each epoch's batches, or (`bar_per_epoch` false, for epochs of a few
    milliseconds) one bar over the epochs. `identity`: what the fit is (lineage.eval_identity), recorded in its
    checkpoints; one of another fit is set aside, not resumed. `log_to`: a folder whose metrics.jsonl (and
    TensorBoard events) get each epoch's mean loss and training top-1, as pretraining logs its steps.
    `optimizer`: builds the optimiser from the groups (default Adam with `weight_decay`); `lr_scale(epoch)`
    multiplies each group's learning rate in that epoch (a step schedule)."""
    optimizer = optimizer(groups) if optimizer is not None else torch.optim.Adam(groups, weight_decay=weight_decay)
    base_lrs = [g["lr"] for g in optimizer.param_groups]
    start = 0
    found = checkpoints.load_latest(map_location="cpu") if checkpoints is not None else None
    identity = None if identity is None else lineage.fit_identity(identity, epochs)
    if found is not None and identity is not None:
        problems = lineage.continues(found[0].get("identity"), (found[0]["epoch"], 0), identity, False)
        if problems:
            log.warning("%s is not a checkpoint of this fit (%s); starting it over", found[1], "; ".join(problems[:4]))
            set_aside(checkpoints.folder)
            found = None
    if found is not None:
        state, path = found
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        start = state["epoch"]
        log.info("resuming from %s (epoch %d)", path, start)
    model.train()
    device = next(model.parameters()).device
    logger = MetricLogger(log_to, after=start) if log_to is not None else None
    over_epochs = tqdm(
        range(start, epochs),
        desc=desc,
        unit="epoch",
        initial=start,
        total=epochs,
        disable=not progress or bar_per_epoch,
        leave=False,
    )
    for epoch in over_epochs:
        if lr_scale is not None:
            for group, lr in zip(optimizer.param_groups, base_lrs, strict=True):
                group["lr"] = lr * lr_scale(epoch)
        bar = tqdm(
            batches(epoch),
            desc=f"{desc} {epoch + 1}/{epochs}",
            unit="batch",
            disable=not progress or not bar_per_epoch,
            leave=False,
        )
        total = correct = seen = 0.0
        for inputs, labels in bar:
            with torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=amp):
                logits = model(inputs).float()
                loss = F.cross_entropy(logits, labels)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total += float(loss.detach()) * len(labels)
            correct += float((logits.detach().argmax(1) == labels).sum())
            seen += len(labels)
            (bar if bar_per_epoch else over_epochs).set_postfix(loss=f"{loss.item():.3f}", refresh=False)
        if logger is not None and seen:
            logger.log(epoch + 1, {"eval/loss": total / seen, "eval/train_top1": correct / seen}, epoch=epoch + 1)
        if checkpoints is not None:
            checkpoints.save(
                {
                    "model": model.state_dict(),
                    "optimizer": optimizer.state_dict(),
                    "epoch": epoch + 1,
                    "identity": identity,
                },
                epoch + 1,
            )
    if logger is not None:
        logger.close()
    model.eval()


class FeatureHead(nn.Module):
    """A classifier's head on precomputed features (the fast probe trains this)."""

    def __init__(self, classifier: Classifier):
        super().__init__()
        self.classifier = classifier
        self.head = classifier.head

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.classifier.classify(features)


def fit_linear(
    model: Classifier, features, labels, eval_cfg, batch: int, seed: int = 0, progress=False, log_to: Path | None = None
) -> None:
    """Train the classifier's head on fixed features (Adam, cross-entropy, shuffled mini-batches)."""
    generator = torch.Generator().manual_seed(seed)
    single_batch_norm = isinstance(model.head.norm, nn.BatchNorm1d)

    def batches(epoch: int):
        order = torch.randperm(len(features), generator=generator).to(features.device)
        for start in range(0, len(order), batch):
            index = order[start : start + batch]
            if len(index) < 2 and single_batch_norm:
                continue
            yield features[index], labels[index]

    groups = [{"params": list(model.head.parameters()), "lr": eval_cfg.lr}]
    fit(
        FeatureHead(model),
        batches,
        groups,
        eval_cfg.epochs,
        weight_decay=eval_cfg.weight_decay,
        desc="probe",
        progress=progress,
        bar_per_epoch=False,
        log_to=log_to,
    )
    model.eval()


def _train_on_clips(
    model: Classifier, samples, cfg, device, out: Path, progress: bool, finetune: bool, identity: dict | None = None
) -> None:
    """The slow probe (through the frozen encoder) or the finetune, on augmented clips (the paper's, minus blur)."""
    augment = ClipAugment(replace(cfg.augment, blur_p=0.0), cfg.model.input).to(device)
    loader = ClipLoader(
        ClipDataset.from_config(samples, cfg.data, num_clips=1, train=True, seed=cfg.seed),
        cfg.data.batch_size,
        shuffle=True,
        num_workers=cfg.data.num_workers,
        seed=cfg.seed,
        drop_last=len(samples) > cfg.data.batch_size,
        pin_memory=device.type == "cuda",
    )
    per_epoch = max(len(loader), 1)

    def batches(epoch: int):
        loader.set_epoch(epoch)
        for i, batch in enumerate(loader):
            torch.manual_seed(derived_seed(cfg.seed, epoch * per_epoch + i))  # the step's augmentation
            clips = augment(to_device(batch, device)["clips"])[:, 0]
            if cfg.eval.channels_last:
                clips = clips.contiguous(memory_format=torch.channels_last_3d)
            yield clips, batch["label"].to(device)

    groups = [{"params": list(model.head.parameters()), "lr": cfg.eval.lr}]
    if finetune:
        groups.append({"params": list(model.backbone.parameters()), "lr": cfg.eval.lr * cfg.eval.backbone_lr_scale})
    epochs = cfg.eval.finetune_epochs if finetune else cfg.eval.epochs
    weight_decay = cfg.eval.finetune_weight_decay if finetune else cfg.eval.weight_decay
    fit(
        model,
        batches,
        groups,
        epochs,
        weight_decay=weight_decay,
        checkpoints=CheckpointManager(out / "checkpoints", keep=1),
        amp=device.type == "cuda",
        desc="finetune" if finetune else "probe",
        progress=progress,
        identity=identity,
        log_to=out,
    )


def evaluate(cfg, mode: str, out: str | Path | None = None, progress: bool = True, split=None) -> dict:
    """mode: probe | finetune | test. Trains what the mode trains, tests every group, writes the results.
    `split`: (spec, Split) when the caller built it already. A pose eval.checkpoint (SkeletonCLR's final.pt, a
    pose classifier.pt) is evaluated on skeletons by `studies.pose.evaluate_checkpoint` (the CLI's probe, finetune
    and test hand it there)."""
    if pose_record(cfg.eval.checkpoint) is not None:
        raise ConfigError(
            "eval.checkpoint",
            f"{cfg.eval.checkpoint} holds a skeleton encoder: evaluate it with studies.pose.evaluate_checkpoint",
        )
    device = choose_device(cfg.train.device)
    check_backbone(cfg.model.backbone)
    spec, split = split if split is not None else build_split(cfg.data)
    out = Path(out or Path(cfg.out_dir) / "eval" / mode)
    torch.manual_seed(cfg.seed)
    num_classes = len(spec.classes)
    if mode == "test":
        model = load_classifier(cfg.eval.checkpoint, cfg, num_classes)
    else:
        frozen = mode == "probe"
        model = Classifier(
            encoder_of(cfg),
            num_classes,
            0.0 if frozen and cfg.eval.fast else cfg.eval.dropout,
            cfg.eval.feature_norm if frozen else "none",
            frozen,
        )
    with folder_lock(out, f"viewclr {mode}"):  # only once the checkpoint has loaded: a bad one leaves nothing
        return _evaluate(model, cfg, mode, out, progress, spec, split, device)


def _evaluate(model, cfg, mode: str, out: Path, progress: bool, spec, split, device) -> dict:
    identity = lineage.eval_identity(cfg, mode, split)  # what it measures: compare reuses only its like
    (out / "config.yaml").write_text(to_yaml(cfg))  # beside the result, as pretraining keeps its own
    model.to(device)
    if cfg.eval.channels_last:
        model.to(memory_format=torch.channels_last_3d)
    if mode == "probe" and cfg.eval.fast:
        features, labels = extract_features(
            model.backbone,
            split.train_samples(),
            cfg,
            device,
            windows=cfg.eval.feature_windows,
            normalize=False,
            progress=progress,
        )
        fit_linear(
            model, features.to(device), labels.to(device), cfg.eval, cfg.data.batch_size, cfg.seed, progress, log_to=out
        )
    elif mode in ("probe", "finetune"):
        _train_on_clips(model, split.train_samples(), cfg, device, out, progress, mode == "finetune", identity)
    if mode != "test":
        save_torch(
            out / "classifier.pt",
            {
                "backbone": model.backbone.state_dict(),
                "classifier": model.head.state_dict(),
                "model": encoder_record(cfg),
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
        "modality": modality(cfg.model.input),
        "classes": len(spec.classes),  # the classifier's outputs
        "classes_present": len(present),  # the split's classes: top-k is over these (summarise)
        "groups": groups,
        "provenance": provenance.record(),
        "identity": identity,
    }
    save_scores(out, spec.classes, results["modality"], split.protocol, scores)
    heads = f" of the classifier's {len(spec.classes)}" if len(present) < len(spec.classes) else ""
    note = (
        f"Top-1 in %. The split has {len(present)} classes{heads} (chance {100 / len(present):.1f} %); top-5 "
        "(results.json) is taken over the split's classes."
    )
    table = results_table([result_row(cfg.model.backbone, results)])
    (out / "results.md").write_text(f"{table}\n\n{note}\n")
    write_json(out / "results.json", results)  # last: its presence means the evaluation finished
    return results


def save_scores(out: Path, classes, modality_: str, protocol: str, groups: dict) -> None:
    """out/scores.pt: per test group the names, labels and softmax scores of each video, for `viewclr fuse`."""
    save_torch(
        out / "scores.pt",
        {
            "kind": "probabilities",
            "classes": list(classes),
            "modality": modality_,
            "protocol": protocol,
            "groups": groups,
        },
    )


def load_classifier(path, cfg, num_classes: int) -> Classifier:
    """A probe or finetune result (encoder + linear layer) for `viewclr test`."""
    if path is None:
        raise ConfigError("eval.checkpoint", "viewclr test needs a classifier: the classifier.pt of probe or finetune")
    obj = load_weights(path)
    if "classifier" not in obj:
        raise CheckpointError(f"{path} has no classifier; test a probe or finetune result (classifier.pt)")
    backbone = load_encoder(path, cfg)
    norm = obj.get("eval", {}).get("feature_norm", "none")
    model = Classifier(backbone, num_classes, 0.0, norm, frozen=True)
    head_classes = obj["classifier"]["linear.weight"].shape[0]
    if head_classes != num_classes:
        raise CheckpointError(f"{path} classifies {head_classes} classes; {cfg.data.dataset} has {num_classes}")
    model.head.load_state_dict(obj["classifier"])
    return model
