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


def build_backbone(name: str, width: float = 1.0, num_classes: int | None = None) -> nn.Module:
    if name not in BACKBONES:
        raise ConfigError("model.backbone", f"unknown backbone '{name}' (choose from {', '.join(BACKBONES)})")
    return BACKBONES[name](width=width, num_classes=num_classes)


def split_shape(backbone: nn.Module, frames: int, size: int) -> tuple[int, int, int, int]:
    """(c, T, m, n) of f1's output for clips of `frames` × `size` × `size`, found by running f1 on a copy on the
    meta device (no memory, no compute): shapes are derived, never hard-coded."""
    shadow = copy.deepcopy(backbone).to("meta")
    with torch.no_grad():
        shape = shadow.f1(torch.empty(1, 3, frames, size, size, device="meta")).shape
    return tuple(shape[1:])
