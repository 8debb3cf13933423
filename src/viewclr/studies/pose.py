"""The pose modality end to end: skeletons → SkeletonCLR pretraining → linear probe or finetune, and the supervised
2s-AGCN joint stream; each writes per-video scores that join the RGB methods' by sample name (`viewclr fuse`).

- Data: `data.poses.pose_data` — the skeleton cache and the videos' own protocol split, restricted to the samples
  that have a skeleton.
- SkeletonCLR (`methods.skeletonclr`): the package's MoCo over ST-GCN, SGD with momentum 0.9 (its repository's),
  two views per sequence (temporal crop, shear), an epoch's checkpoint for resumption, `final.pt` with its identity.
- Linear probe: the frozen encoder's features, the fc layer alone trained with SGD (SkeletonCLR's linear evaluation:
  `pose.probe_lr`, `pose.probe_epochs`, a ×0.1 drop at `pose.probe_steps`). Finetune, and the supervised AGCN: the
  whole network, SGD Nesterov (2s-AGCN's recipe: `pose.supervised_*`), no augmentation.
- Validation (`validation=True`): the classifier trained on the training subjects less `pose.val_subjects` of them
  and scored on those (training view only): what the fusion weight is chosen on, never the test views.

Every result records its identity (`lineage.pose_settings`: the pose settings — normalisation, frames, bodies
included — the protocol, the samples, the weights'), and is reused only when it matches.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from viewclr import lineage, provenance
from viewclr.checkpoint import CheckpointError, CheckpointManager, load_weights
from viewclr.data.index import Split
from viewclr.data.poses import PoseData, batches_of, pose_data, prepare_for, validation_split
from viewclr.errors import ConfigError
from viewclr.eval.classify import Classifier, FeatureHead, fit, save_scores
from viewclr.eval.embed import pose_features
from viewclr.eval.predict import Predictions, summarise
from viewclr.eval.tables import result_row, results_table
from viewclr.fileio import save_torch, set_aside, write_json
from viewclr.logger import MetricLogger
from viewclr.methods.skeletonclr import build_skeletonclr, two_views
from viewclr.models.gcn import AGCN
from viewclr.models.weights import check_skeletons, load_pose_encoder, pose_record
from viewclr.runtime import choose_device, step_generator

log = logging.getLogger(__name__)
__all__ = [
    "evaluate_checkpoint",
    "evaluate_pose",
    "pose_data",
    "prepare_for",
    "pretrain_skeletonclr",
    "test_pose",
    "validation_split",
]


# ---------------------------------------------------------------------------------------------- batches


def _sgd(lr: float, weight_decay: float, nesterov: bool):
    return lambda groups: torch.optim.SGD(groups, lr=lr, momentum=0.9, weight_decay=weight_decay, nesterov=nesterov)


def _steps(steps: list[int]):
    """A step schedule: ×0.1 at each epoch of `steps`."""
    return lambda epoch: 0.1 ** sum(epoch >= s for s in steps)


# ---------------------------------------------------------------------------------------------- SkeletonCLR


def pretrain_skeletonclr(cfg, data: PoseData, out: str | Path, progress: bool = True) -> Path:
    """SkeletonCLR on the split's training samples into `out`; its final.pt (reused when its identity matches,
    resumed from the last epoch's checkpoint when that one's does)."""
    p, out = cfg.pose, Path(out)
    samples = data.split.train_samples()
    identity = {
        "method": "skeletonclr",
        "settings": lineage.pose_settings(cfg),
        "data": lineage.samples_digest(samples),
        "epochs": p.epochs,
    }
    final = out / "final.pt"
    if final.is_file():
        recorded = load_weights(final).get("identity")
        if lineage.same(recorded, identity):
            return final
        log.warning("%s: %s; training again", final, "; ".join(lineage.differences(recorded, identity)[:4]))
        set_aside(out)
    if p.queue_size > len(samples):
        log.warning("pose.queue_size=%d is larger than the %d training samples", p.queue_size, len(samples))
    device = choose_device(cfg.train.device)
    torch.manual_seed(cfg.seed)
    method = build_skeletonclr(cfg, data.joints).to(device)
    params = [q for _, q in method.trainable()]
    optimizer = torch.optim.SGD(params, lr=p.lr, momentum=0.9, weight_decay=p.weight_decay)
    checkpoints = CheckpointManager(out / "checkpoints", keep=1)
    found, start = checkpoints.load_latest(map_location="cpu"), 0
    if found is not None and lineage.same(found[0].get("identity"), {**identity, "epochs": None}):
        method.load_state_dict(found[0]["method"])
        optimizer.load_state_dict(found[0]["optimizer"])
        start = found[0]["epoch"]
        log.info("resuming SkeletonCLR from %s (epoch %d)", found[1], start)
    per_epoch = max(1, len(samples) // p.batch_size)
    logger = MetricLogger(out, after=start * per_epoch)
    schedule = _steps(p.lr_steps)
    method.train()
    for epoch in tqdm(range(start, p.epochs), desc="SkeletonCLR", unit="epoch", disable=not progress, leave=False):
        for group in optimizer.param_groups:
            group["lr"] = p.lr * schedule(epoch)
        losses = []
        for i, (x, _, index) in enumerate(batches_of(data.cache, samples, p.batch_size, cfg.seed, epoch, True)):
            if len(index) < p.batch_size:  # the queue takes whole batches (drop_last)
                continue
            step = epoch * per_epoch + i
            views = two_views(x.to(device), p, step_generator(cfg.seed, step))
            result = method(views, step, index.to(device))
            if not torch.isfinite(result["loss"]):
                raise FloatingPointError(f"SkeletonCLR's loss is not finite at epoch {epoch + 1}, step {step}")
            optimizer.zero_grad(set_to_none=True)
            result["loss"].backward()
            optimizer.step()
            losses.append(float(result["loss"].detach()))
            last = {f"train/{k}": float(v) for k, v in result["metrics"].items()}
        if losses:
            logger.log((epoch + 1) * per_epoch, {"train/loss": float(np.mean(losses)), **last}, epoch=epoch + 1)
        state = {"method": method.state_dict(), "optimizer": optimizer.state_dict(), "epoch": epoch + 1}
        checkpoints.save({**state, "identity": {**identity, "epochs": None}}, epoch + 1)
    logger.close()
    save_torch(
        final,
        {
            "encoder": {k: v.cpu() for k, v in method.encoder.backbone.state_dict().items()},
            "method": method.state_dict(),
            "identity": identity,
            "pose": _record("stgcn", cfg, data),
            "summary": {"provenance": provenance.record()},
        },
    )
    return final


def _record(backbone: str, cfg, data: PoseData, width: float | None = None) -> dict:
    """What a pose weights file holds (`models.weights.pose_record`): the encoder (`width`: a loaded encoder's;
    None: the config's), and the skeletons it was trained on — what every later use of the file is checked
    against."""
    p = cfg.pose
    width = width if width is not None else p.agcn_width if backbone == "agcn" else p.stgcn_width
    return {
        "backbone": backbone,
        "joints": data.joints,
        "bodies": p.bodies,
        "width": width,
        "frames": p.frames,
        "normalise": p.normalise,
        "dataset": data.spec.name,
    }


# ---------------------------------------------------------------------------------------------- evaluation


def pose_identity(cfg, objective: str, mode: str, split: Split, weights: Path | None) -> dict:
    samples = split.train_samples() + split.test_samples()
    return {
        "mode": f"{objective}/{mode}",
        "settings": lineage.pose_settings(cfg),
        "data": lineage.samples_digest(samples),
        "weights": lineage.weights_identity(weights),
    }


def evaluate_pose(
    cfg,
    objective: str,
    mode: str,
    weights: Path | None,
    data: PoseData,
    out: str | Path,
    progress: bool = True,
    validation: bool = False,
) -> dict:
    """SkeletonCLR's encoder (`weights`) probed or finetuned, or ("agcn") the AGCN joint stream trained on the
    labels; tested on every test group (or, `validation`, on the held-out training subjects). Writes scores.pt,
    results.json, results.md in `out`; reuses a results.json of the same identity."""
    p, out = cfg.pose, Path(out)
    split = validation_split(data.split, p.val_subjects) if validation else data.split
    identity = pose_identity(cfg, objective, mode, split, weights)
    if (saved := lineage.reuse(out, identity)) is not None:
        return saved
    out.mkdir(parents=True, exist_ok=True)
    device = choose_device(cfg.train.device)
    classes = len(data.spec.classes)
    torch.manual_seed(cfg.seed)
    if objective == "agcn":
        backbone = AGCN(joints=data.joints, bodies=p.bodies, width=p.agcn_width)
        model = Classifier(backbone, classes, 0.0, "none", frozen=False)
        record = _record("agcn", cfg, data)
    else:
        check_skeletons(weights, pose_record(weights) or {}, cfg)
        backbone = load_pose_encoder(weights, data.joints, p.bodies)
        model = Classifier(backbone, classes, 0.0, "none", frozen=mode == "probe")
        record = _record(backbone.record["backbone"], cfg, data, backbone.record["width"])
    model.to(device)
    train = split.train_samples()
    if mode == "probe":
        features, labels = pose_features(model.backbone, data.cache, train, device)
        generator = torch.Generator().manual_seed(cfg.seed)

        def feature_batches(epoch):
            order = torch.randperm(len(features), generator=generator)
            for start in range(0, len(order), p.batch_size):
                index = order[start : start + p.batch_size]
                yield features[index].to(device), labels[index].to(device)

        head = FeatureHead(model)
        fit(
            head,
            feature_batches,
            [{"params": list(model.head.parameters()), "lr": p.probe_lr}],
            p.probe_epochs,
            optimizer=_sgd(p.probe_lr, 0.0, False),
            lr_scale=_steps(p.probe_steps),
            desc="pose probe",
            progress=progress,
            bar_per_epoch=False,
            log_to=out,
        )
    else:

        def sample_batches(epoch):
            for x, y, _ in batches_of(data.cache, train, p.supervised_batch_size, cfg.seed, epoch, True):
                yield x.to(device), y.to(device)

        fit(
            model,
            sample_batches,
            [{"params": list(model.parameters()), "lr": p.supervised_lr}],
            p.supervised_epochs,
            optimizer=_sgd(p.supervised_lr, p.weight_decay, True),
            lr_scale=_steps(p.supervised_steps),
            checkpoints=CheckpointManager(out / "checkpoints", keep=1),
            desc="AGCN" if objective == "agcn" else "pose finetune",
            progress=progress,
            identity={**identity, "settings": dict(identity["settings"])},
            log_to=out,
        )
    model.eval()
    save_torch(
        out / "classifier.pt",  # `viewclr test` takes it, as a video classifier
        {
            "backbone": {k: v.cpu() for k, v in model.backbone.state_dict().items()},
            "classifier": {k: v.cpu() for k, v in model.head.state_dict().items()},
            "pose": record,
            "eval": {"feature_norm": "none", "mode": mode, "objective": objective},
            "classes": list(data.spec.classes),
            "identity": identity,
        },
    )
    return _test(model, cfg, objective, mode, data, split, identity, out, device)


def test_pose(cfg, checkpoint, data: PoseData, out: str | Path, progress: bool = True) -> dict:
    """`viewclr test` of a pose classifier.pt (a pose probe's, finetune's or AGCN's): every test group of the
    config's split, scored as the evaluation that made it scores (the whole sequence, once). Its skeleton settings
    (normalisation, frames, bodies) and joints must be the config's. Writes scores.pt, results.json, results.md in
    `out`; reuses a results.json of the same identity."""
    out = Path(out)
    obj = load_weights(checkpoint)
    if not isinstance(obj, dict) or "classifier" not in obj or "pose" not in obj:
        raise CheckpointError(f"{checkpoint} has no pose classifier; test a pose probe, finetune or agcn classifier.pt")
    record = obj["pose"]
    check_skeletons(checkpoint, record, cfg, ("normalise", "frames", "bodies"))
    if record["joints"] != data.joints:
        raise ConfigError(
            "data.dataset",
            f"{checkpoint} classifies skeletons of {record['joints']} joints; the data has {data.joints}",
        )
    classes = len(data.spec.classes)
    head_classes = obj["classifier"]["linear.weight"].shape[0]
    if head_classes != classes:
        raise CheckpointError(f"{checkpoint} classifies {head_classes} classes; {data.spec.name} has {classes}")
    objective = obj.get("eval", {}).get("objective", "skeletonclr")
    identity = {
        "mode": f"{objective}/test",
        "settings": lineage.pose_settings(cfg),
        "data": lineage.samples_digest(data.split.test_samples()),
        "weights": lineage.weights_identity(checkpoint),
    }
    if (saved := lineage.reuse(out, identity, "testing")) is not None:
        return saved
    out.mkdir(parents=True, exist_ok=True)
    model = Classifier(load_pose_encoder(checkpoint), classes, 0.0, "none", frozen=True)
    model.head.load_state_dict(obj["classifier"])
    device = choose_device(cfg.train.device)
    model.to(device).eval()
    return _test(model, cfg, objective, "test", data, data.split, identity, out, device)


def evaluate_checkpoint(cfg, mode: str, out: str | Path, progress: bool = True, validation: bool = False) -> dict:
    """`viewclr probe / finetune / test` when eval.checkpoint is a pose file: SkeletonCLR's final.pt (or a pose
    classifier.pt) probed or finetuned on the config's skeletons, or a pose classifier.pt tested on them."""
    checkpoint = Path(cfg.eval.checkpoint)
    record = pose_record(checkpoint) or {}
    # the file's skeleton settings first: a cache of other settings would otherwise be what the error names
    check_skeletons(checkpoint, record, cfg, ("normalise", "frames", "bodies") if mode == "test" else ("normalise",))
    data = pose_data(cfg, progress)
    if mode == "test":
        return test_pose(cfg, checkpoint, data, out, progress)
    return evaluate_pose(cfg, "skeletonclr", mode, checkpoint, data, out, progress, validation)


@torch.no_grad()
def _test(model, cfg, objective, mode, data: PoseData, split: Split, identity, out: Path, device) -> dict:
    classes = tuple(data.spec.classes)
    present = sorted({s.label for s in split.train_samples()} | {s.label for s in split.test_samples()})
    groups, scores = {}, {}
    for group, samples in split.test.items():
        chunks = [
            F.softmax(model(x.to(device)).float(), 1).cpu()
            for x, _, _ in batches_of(data.cache, samples, cfg.pose.batch_size, 0, 0, False)
        ]
        predictions = Predictions(
            [s.name for s in samples],
            torch.tensor([s.label for s in samples]),
            torch.cat(chunks),
            torch.ones(len(samples), dtype=torch.long),
        )
        groups[group] = summarise(predictions, classes, present)
        scores[group] = {"names": predictions.names, "labels": predictions.labels, "scores": predictions.scores}
    p = cfg.pose
    results = {
        "mode": "finetune" if objective == "agcn" and mode != "test" else mode,
        "method": objective,
        "dataset": data.spec.name,
        "protocol": split.protocol,
        "modality": "Pose",
        "normalise": p.normalise,
        "frames": p.frames,
        "bodies": p.bodies,
        "classes": len(classes),
        "classes_present": len(present),
        "groups": groups,
        "provenance": provenance.record(),
        "identity": identity,
    }
    save_scores(out, classes, "Pose", split.protocol, scores)
    title = "2s-AGCN joint stream" if objective == "agcn" else "SkeletonCLR"
    title += "" if (objective, mode) == ("agcn", "finetune") else f" ({mode})"
    note = f"Skeletons: {p.frames} frames, {p.bodies} bodies, normalisation '{p.normalise}'."
    (out / "results.md").write_text(results_table([result_row(title, results)]) + f"\n\n{note}\n")
    write_json(out / "results.json", results)  # last: its presence means the evaluation finished
    return results
