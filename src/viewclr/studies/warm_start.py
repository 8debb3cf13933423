"""The warm-start diagnostic (`scripts/warm_start.py`, docs/results.md): InfoNCE and ViewCLR stage 2 each continue,
for stage2_epochs, from the same encoder trained on the labels (`supervised_start`), so any difference between
them is stage 2's doing — whether self-supervision learns the action at all does not enter."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import torch

from viewclr.config import Config
from viewclr.data.registry import build_split
from viewclr.engine.plan import FINAL, Stage, train_stage
from viewclr.errors import ConfigError
from viewclr.methods import build_method
from viewclr.models.weights import load_encoder
from viewclr.studies.compare import Method, evaluate_method, with_sections

NO_AUGMENT = {"crop_scale": [1.0, 1.0], "hflip_p": 0.0, "jitter_p": 0.0, "grayscale_p": 0.0, "blur_p": 0.0}


def supervised_start(cfg: Config, root: str | Path, epochs: int, progress: bool = True) -> Path:
    """An encoder trained from scratch on the training labels, without augmentation (which learns the action
    within a few hundred steps at CPU scale), evaluated like every method; returns its weights (reused)."""
    run = with_sections(
        cfg, augment=NO_AUGMENT, eval={"dropout": 0.0}, train={"stage1_epochs": epochs, "stage2_epochs": 0}
    )
    evaluate_method(run, Method("supervised", "", "supervised"), None, "finetune", Path(root) / "start", None, progress)
    return Path(root) / "start" / "supervised" / "finetune" / "classifier.pt"


def warm_started(cfg: Config, weights: str | Path, kind: str, root: str | Path, progress: bool = True) -> Path:
    """InfoNCE (kind "infonce") or ViewCLR stage 2 ("viewclr") for stage2_epochs, starting from an encoder's
    weights: query and momentum encoders from them, a fresh projection head and queue (and ViewCLR's third
    stream copied from the encoder, as from stage 1). Returns the final weights (reused)."""
    if kind not in ("infonce", "viewclr"):
        raise ConfigError(None, f"warm start trains infonce or viewclr, not '{kind}'")
    stage = Stage("infonce" if kind == "infonce" else "stage2", kind, cfg.train.stage2_epochs)
    run = replace(with_sections(cfg, method={"name": kind}), out_dir=str(Path(root) / kind))
    final = Path(root) / kind / stage.name / FINAL
    if not final.is_file():
        spec, split = build_split(cfg.data)
        train_stage(run, stage, split, len(spec.classes), init=warm_start_state(cfg, weights), resume=True,
                    progress=progress)  # fmt: skip
    return final


def warm_start_state(cfg: Config, weights: str | Path) -> dict:
    """A MoCo state whose query and momentum encoders hold an encoder's weights, with a fresh projection head
    and queue (seeded by cfg.seed, so both kinds of warm start get the same)."""
    torch.manual_seed(cfg.seed)
    start = build_method(cfg, "infonce")
    start.encoder.backbone.load_state_dict(load_encoder(weights, cfg).state_dict())
    start.momentum_encoder.load_state_dict(start.encoder.state_dict())
    return start.state_dict()
