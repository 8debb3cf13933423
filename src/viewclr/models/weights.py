"""Loading an encoder from whatever a user has — to evaluate it, or to start pretraining from it (`train.init`): a
`viewclr pretrain` final.pt or checkpoint, a probe or finetune result (a different head), or a plain state dict such
as torchvision's Kinetics S3D. Its width and the input it was trained on are checked against the config."""

from __future__ import annotations

import logging
from pathlib import Path

import torch
import yaml
from torch import nn

from viewclr.checkpoint import CheckpointError, load_weights, shape_mismatch
from viewclr.errors import ConfigError
from viewclr.models.registry import build_backbone, check_record

log = logging.getLogger(__name__)
PREFIXES = ("module.", "encoder.backbone.", "backbone.", "_orig_mod.")


def backbone_state(path: str | Path) -> tuple[dict[str, torch.Tensor], dict]:
    """(the encoder's state dict, what the file says about the model) from any supported file."""
    obj = load_weights(path)
    info: dict = {}
    if isinstance(obj, dict) and "backbone" in obj and isinstance(obj["backbone"], dict):
        state, info = obj["backbone"], obj.get("model", {})
    elif isinstance(obj, dict) and "method" in obj:  # a training checkpoint: the query encoder's backbone
        state = {
            k[len("encoder.backbone.") :]: v for k, v in obj["method"].items() if k.startswith("encoder.backbone.")
        }
        info = _record_of_config(obj.get("config"))
    elif isinstance(obj, dict) and "state_dict" in obj:
        state = obj["state_dict"]
    elif isinstance(obj, dict) and all(isinstance(v, torch.Tensor) for v in obj.values()):
        state = obj
    else:
        raise CheckpointError(f"{path} holds no encoder weights (expected a viewclr result or a state dict)")
    cleaned = {}
    for key, value in state.items():
        for prefix in PREFIXES:
            if key.startswith(prefix):
                key = key[len(prefix) :]
        if not key.startswith("classifier."):  # another task's head: not part of the encoder
            cleaned[key] = value
    if not cleaned:
        raise CheckpointError(f"{path} holds no encoder weights")
    return cleaned, info


def _record_of_config(config_yaml: str | None) -> dict:
    """The encoder record of a training checkpoint, from the config it stores."""
    if not config_yaml:
        return {}
    cfg = yaml.safe_load(config_yaml) or {}
    model, augment = cfg.get("model", {}), cfg.get("augment", {})
    record = {k: model[k] for k in ("backbone", "width", "input") if k in model}
    return record | {k: augment[k] for k in ("mean", "std") if k in augment}


def initial_state(path: str | Path, cfg, third_stream: bool = False) -> tuple[dict[str, torch.Tensor], str]:
    """A method's starting weights from `path` (train.init), checked as `load_encoder` checks, and one line
    saying what was loaded and what is left fresh.

    The encoder's backbone always; the projection head and the momentum encoder where the file holds them (a
    pretrain result or checkpoint; otherwise the head is fresh and the momentum encoder starts as a copy of the
    encoder); with `third_stream` (ViewCLR's stage 2) the viewpoint generator where the file holds one. A foreign
    classifier is dropped; queues always start fresh (they hold another dataset's keys). Any problem with the
    file is a config error naming train.init."""
    try:
        backbone = load_encoder(path, cfg, key="train.init").state_dict()
        method = load_weights(path).get("method") if path is not None else None
    except CheckpointError as err:
        raise ConfigError("train.init", str(err)) from None
    state = {f"encoder.backbone.{k}": v for k, v in backbone.items()}
    method = method if isinstance(method, dict) else {}
    parts = ["the encoder"]
    head = {k: v for k, v in method.items() if k.startswith("encoder.head.")}
    if head:
        state |= head
        parts.append("its projection head")
    momentum = {k: v for k, v in method.items() if k.startswith("momentum_encoder.")}
    if momentum:
        state |= momentum
        parts.append("the momentum encoder")
    else:  # the momentum encoder follows the encoder: it starts as the encoder's copy
        state |= {f"momentum_encoder.backbone.{k}": v for k, v in backbone.items()}
        if head:
            state |= {f"momentum_{k}": v for k, v in head.items()}
    generator = {k: v for k, v in method.items() if k.startswith("generator.")} if third_stream else {}
    state |= generator
    parts += ["the viewpoint generator"] if generator else []
    fresh = ["the queues"] + ([] if head else ["the projection head"])
    fresh += ["the viewpoint generator"] if third_stream and not generator else []
    return state, f"from {path}: {', '.join(parts)} loaded; {', '.join(fresh)} fresh"


def load_encoder(path: str | Path, cfg, key: str = "eval.checkpoint") -> nn.Module:
    """The backbone of `cfg.model` with the weights in `path`.

    Args:
        path: final.pt, classifier.pt, a checkpoint, an exported encoder, or a plain state dict.
        cfg: the config whose model.backbone, model.width, model.input and augment.mean/std the weights must fit.
        key: the setting `path` came from, named in errors.

    Returns:
        the backbone, a new nn.Module in training mode (S3D: clips [B, 3, T, H, W] → features [B, 1024·width]).

    Raises:
        ConfigError naming the setting to change: a width or architecture mismatch (a tensor of another shape,
        keys missing or unexpected), or an encoder trained on another input (model.input, augment.mean/std).
    """
    model_cfg = cfg.model
    state, info = backbone_state(path)
    check_record(info, cfg, path)
    if "input" not in info:  # a plain state dict: nothing to check model.input against
        log.warning(
            "%s does not say which input it was trained on (a plain state dict); it is loaded into a "
            "model.input=%s encoder%s",
            path,
            model_cfg.input,
            ", but Kinetics weights such as torchvision's were trained on RGB frames"
            if model_cfg.input != "rgb"
            else "",
        )
    stem = state.get("features.0.0.0.weight")
    if stem is not None and model_cfg.backbone == "s3d":
        width = info.get("width", stem.shape[0] / 64)
        if abs(width * 64 - model_cfg.width * 64) >= 0.5:
            raise ConfigError(
                "model.width",
                f"{path} holds an S3D of width {width:g}, the config builds width {model_cfg.width:g}; "
                f"set model.width={width:g}",
            )
    backbone = build_backbone(model_cfg.backbone, model_cfg.width)
    mismatch = shape_mismatch(state, backbone.state_dict())
    if mismatch is not None:
        raise ConfigError(
            key,
            f"{path} does not fit model.backbone={model_cfg.backbone} at model.width="
            f"{model_cfg.width:g}: {mismatch[1]}",
        )
    result = backbone.load_state_dict(state, strict=False)
    if result.missing_keys or result.unexpected_keys:
        missing = f"{len(result.missing_keys)} missing (e.g. {result.missing_keys[0]})" if result.missing_keys else ""
        extra = (
            f"{len(result.unexpected_keys)} unexpected (e.g. {result.unexpected_keys[0]})"
            if result.unexpected_keys
            else ""
        )
        raise ConfigError(
            key,
            f"{path} does not fit model.backbone={model_cfg.backbone}: {', '.join(p for p in (missing, extra) if p)}",
        )
    return backbone


def pretrained_encoder(path: str | Path) -> nn.Module:
    """`viewclr.load_encoder(path)`: the encoder in `path` as it was trained, in one line, with no config — the
    backbone and width its file records (a `viewclr pretrain` final.pt or checkpoint, a probe or finetune result;
    SkeletonCLR's final.pt or a pose classifier.pt: its ST-GCN or AGCN, `.record` its joints, bodies, frames and
    normalisation)
    or, for a plain state dict (torchvision's Kinetics S3D, `viewclr export`'s), an S3D of the width its stem
    implies. In eval mode; `.record` says what it expects (backbone, width, input — frames or residual frames —,
    mean, std; input/mean/std absent where the file cannot say).

    Args:
        path: any file `viewclr` writes with an encoder in it, or a plain state dict.

    Returns:
        the encoder in eval mode (S3D: clips [B, 3, T, H, W], normalised with `.record`'s mean and std → features
        [B, 1024·width]).

    Raises:
        CheckpointError: the file is not a whole encoder of the backbone and width it implies.
    """
    if pose_record(path) is not None:  # a skeleton encoder: the file says which, of how many joints and bodies
        return load_pose_encoder(path).eval()
    state, info = backbone_state(path)
    name = info.get("backbone", "s3d")
    stem = state.get("features.0.0.0.weight")
    width = info.get("width", stem.shape[0] / 64 if stem is not None else 1.0)
    backbone = build_backbone(name, width)
    result = backbone.load_state_dict(state, strict=False)
    if result.missing_keys or result.unexpected_keys:
        extra = (result.missing_keys or result.unexpected_keys)[0]
        raise CheckpointError(f"{path} is not a whole {name} encoder of width {width:g} ({extra} does not fit)")
    backbone.record = {"backbone": name, "width": width} | {k: info[k] for k in ("input", "mean", "std") if k in info}
    return backbone.eval()


def pose_record(path: str | Path | None) -> dict | None:
    """What a SkeletonCLR final.pt says its encoder is ({"backbone": "stgcn", "joints", "bodies", "width"}); None
    for any other file (a video encoder, or nothing)."""
    if path is None or not Path(path).is_file():
        return None
    obj = load_weights(path, mmap=True)
    return obj.get("pose") if isinstance(obj, dict) else None


def load_pose_encoder(
    path: str | Path, joints: int | None = None, bodies: int | None = None, key: str = "eval.checkpoint"
) -> nn.Module:
    """The skeleton encoder of a pose file — SkeletonCLR's final.pt (ST-GCN), or the classifier.pt of a pose probe,
    finetune or AGCN (its backbone) — its weights loaded (skeletons [B, 3, T, V, M] → features [B, C]).

    `joints`, `bodies`: the data's, when they are fewer than the file's (`models.gcn.transfer_state`: an NTU
    encoder on N-UCLA's 20 joints, a two-body encoder on one actor); more is a config error naming `pose.bodies` or
    `key`."""
    from viewclr.models.gcn import AGCN, STGCN, transfer_state

    obj = load_weights(path)
    record = obj.get("pose") if isinstance(obj, dict) else None
    if not record:
        raise CheckpointError(f"{path} holds no skeleton encoder (a SkeletonCLR final.pt or a pose classifier.pt)")
    state = obj["encoder"] if "encoder" in obj else obj["backbone"]
    kind = AGCN if record.get("backbone") == "agcn" else STGCN
    joints = record["joints"] if joints is None else joints
    bodies = record["bodies"] if bodies is None else bodies
    if bodies > record["bodies"]:
        raise ConfigError(
            "pose.bodies", f"{path} was trained on {record['bodies']} bodies; set pose.bodies<={record['bodies']}"
        )
    if joints > record["joints"]:
        raise ConfigError(key, f"{path} is an encoder of {record['joints']} joints; the data has {joints}")
    if (joints, bodies) != (record["joints"], record["bodies"]):
        state = transfer_state(state, record["joints"], record["bodies"], joints, bodies)
    encoder = kind(joints=joints, bodies=bodies, width=record["width"])
    encoder.load_state_dict(state)
    encoder.record = {**record, "backbone": record.get("backbone", "stgcn"), "joints": joints, "bodies": bodies}
    return encoder


def check_skeletons(path, record: dict, cfg, keys=("normalise",)) -> None:
    """Stop with one line naming each `pose.<key>` of `keys` whose value for the skeletons `path` was trained on
    (its `record`) is not the config's; a file that does not record a key is not checked on it."""
    differ = [k for k in keys if k in record and record[k] != getattr(cfg.pose, k)]
    if differ:
        wanted = ", ".join(f"pose.{k}={record[k]}" for k in differ)
        raise ConfigError(f"pose.{differ[0]}", f"{path} was trained on skeletons with {wanted}; set {wanted}")
