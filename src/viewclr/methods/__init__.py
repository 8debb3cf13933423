"""Self-supervised methods: MoCo trained with InfoNCE (ViewCLR's stage 1, and the InfoNCE baseline) and ViewCLR
(stage 2), their losses and queues, and the registry of what can be trained and compared (`METHODS`).

What the training loop needs of a method (`engine.trainer`): `num_views` clips per video, `forward(clips, step,
ids)` → {"loss", "terms", "metrics"}, `trainable()` (what the optimiser steps, by name), `momentum_pairs()` (what
follows what by momentum), `start_from(state)` (a stage's starting weights), `set_schedule(total_steps)` and
`bn_splits`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from viewclr.methods.moco import Encoder, MoCo
from viewclr.methods.queue import FeatureQueue
from viewclr.methods.registry import METHODS, OBJECTIVES, Method
from viewclr.methods.viewclr import ViewCLR
from viewclr.models.registry import build_backbone, split_shape

if TYPE_CHECKING:
    from viewclr.config import Config


def build_method(cfg: Config, kind: str) -> MoCo:
    """The module a pretraining stage trains, sized by `cfg`: MoCo (kind "infonce") or ViewCLR ("viewclr")."""
    backbone = build_backbone(cfg.model.backbone, cfg.model.width)
    if kind == "infonce":
        return MoCo(backbone, cfg.method, cfg.model.proj_dim, cfg.model.proj_hidden, seed=cfg.seed)
    if kind != "viewclr":
        raise ValueError(f"a stage trains one of {', '.join(OBJECTIVES)}, not '{kind}'")
    shape = split_shape(backbone, cfg.data.frames, cfg.augment.size)
    return ViewCLR(backbone, cfg.method, cfg.model, shape, seed=cfg.seed)


__all__ = ["METHODS", "OBJECTIVES", "Encoder", "FeatureQueue", "Method", "MoCo", "ViewCLR", "build_method"]
