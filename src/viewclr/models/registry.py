"""Backbones by name, so a config says `model.backbone: s3d` and `model.width: 0.25`; add one with `register`."""

from __future__ import annotations

import copy
from collections.abc import Callable

import torch
from torch import nn

from viewclr.errors import ConfigError
from viewclr.models.s3d import S3D

BACKBONES: dict[str, Callable[..., nn.Module]] = {"s3d": S3D}


def register(name: str, factory: Callable[..., nn.Module]) -> None:
    """Make `factory(width=..., num_classes=...)` available as `model.backbone: <name>`. A backbone provides
    `f1`, `f2`, `f1_layers`, `f2_layers`, `pool`, `forward_features`, `out_channels` and `split_channels`, as S3D
    does."""
    BACKBONES[name] = factory


def encoder_record(cfg) -> dict:
    """What an encoder's weights mean, written beside them in every weights file (final.pt, classifier.pt): the
    architecture, and the input it was trained on — frames or residual frames, and their normalisation."""
    return {
        "backbone": cfg.model.backbone,
        "width": cfg.model.width,
        "input": cfg.model.input,
        "mean": list(cfg.augment.mean),
        "std": list(cfg.augment.std),
    }


def check_record(record: dict, cfg, path) -> None:
    """Stop (ConfigError, exit 2) when weights recorded in `record` would be fed another input than they were
    trained on, naming both (a plain state dict records nothing and is not checked)."""
    for key, section in (("input", "model"), ("mean", "augment"), ("std", "augment")):
        if key not in record:
            continue
        here = getattr(getattr(cfg, section), key)
        there = record[key]
        if (list(there) if isinstance(there, (list, tuple)) else there) != (
            list(here) if isinstance(here, (list, tuple)) else here
        ):
            raise ConfigError(
                f"{section}.{key}",
                f"{path} holds an encoder trained with {section}.{key}={there}; this config gives {here}: set "
                f"{section}.{key} to what it was trained on",
            )


def check_backbone(name: str) -> None:
    """model.backbone names a registered backbone (a config error otherwise, before any work)."""
    if name not in BACKBONES:
        raise ConfigError("model.backbone", f"unknown backbone '{name}' (choose from {', '.join(BACKBONES)})")


def build_backbone(name: str, width: float = 1.0, num_classes: int | None = None) -> nn.Module:
    check_backbone(name)
    return BACKBONES[name](width=width, num_classes=num_classes)


def split_shape(backbone: nn.Module, frames: int, size: int) -> tuple[int, int, int, int]:
    """(c, T, m, n) of f1's output for clips of `frames` × `size` × `size`, found by running f1 on a copy on the
    meta device (no memory, no compute): shapes are derived, never hard-coded."""
    shadow = copy.deepcopy(backbone).to("meta")
    with torch.no_grad():
        shape = shadow.f1(torch.empty(1, 3, frames, size, size, device="meta")).shape
    return tuple(shape[1:])
