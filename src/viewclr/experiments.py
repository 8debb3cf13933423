"""Experiments that compare methods on one protocol: the demo (`viewclr demo`, `make demo`) and the reproduction
study (`scripts/study.py`, docs/results.md).

Every method of a comparison trains for the same total number of epochs, stage1_epochs + stage2_epochs, and the
self-supervised ones share one stage-1 MoCo run (per seed):

    <root>/viewclr/stage1       MoCo, stage1_epochs                       (shared)
    <root>/viewclr/stage2       ViewCLR, stage2_epochs, from stage 1
    <root>/viewclr_no_l3d/...   the Table 1 ablations (and variants): stage 2 from the same stage 1
    <root>/infonce/moco         MoCo continued from stage 1's last checkpoint for stage2_epochs: exactly the
                                InfoNCE baseline of stage1 + stage2 epochs (resume is exact), at half the cost
                                (with optim.schedule=cosine the rate depends on the run's length: trained whole)
    <root>/supervised/finetune  the encoder trained from scratch on the labels for the same total epochs

Each method is then evaluated (linear probe and/or finetune) into <root>/<method>/<mode>/results.json. Every step
skips what is already finished, so a second run reuses the first's work and an interrupted one continues.

The warm-start diagnostic (`scripts/warm_start.py`) asks the generator's question without depending on whether
self-supervision learns the action at all: InfoNCE and ViewCLR stage 2 each continue, for stage2_epochs, from the
same encoder trained on the labels (`supervised_start`), so any difference between them is stage 2's doing.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import torch

from viewclr.config import Config
from viewclr.data.index import view_label
from viewclr.engine.trainer import (
    FINAL,
    Stage,
    build_method,
    continue_from,
    continues_stage1,
    train_stage,
    train_stage2,
)
from viewclr.errors import ConfigError
from viewclr.fileio import write_json

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Method:
    name: str
    title: str  # as in the paper's Table 1
    kind: str  # viewclr | infonce | supervised
    method: dict = field(default_factory=dict)  # overrides of cfg.method (ablations)
    model: dict = field(default_factory=dict)  # overrides of cfg.model (stage 2 only: stage 1 has no generator)


METHODS = {
    m.name: m
    for m in (
        Method("supervised", "Supervised from scratch", "supervised"),
        Method("infonce", "InfoNCE", "infonce"),
        # Table 1's last row removes the viewpoint generator: "the third stream only provides feature to perform
        # manifold mixup" (§4.4), i.e. fg1(x″) mixed in directly
        Method(
            "viewclr_no_adv_l3d",
            "ViewCLR − L_adv − L3D (no generator)",
            "viewclr",
            {"use_adv": False, "use_l3d": False, "use_generator": False},
        ),
        Method("viewclr_no_adv", "ViewCLR − L_adv", "viewclr", {"use_adv": False}),
        Method("viewclr_no_l3d", "ViewCLR − L3D", "viewclr", {"use_l3d": False}),
        Method("viewclr", "ViewCLR", "viewclr"),
        # eq. 1 read literally: F_W a world voxel grid, for the auto-encoder and L3D (model.world=voxels)
        Method("viewclr_voxels", "ViewCLR, voxel world (eq. 1)", "viewclr", model={"world": "voxels"}),
        # eq. 8 as printed mixes f1(x) with G(fg1(x)) of the same video; the default (eq. 7, i-Mix) a random partner's
        Method("viewclr_self", "ViewCLR, own-video mix", "viewclr", {"mix_partner": "self"}),
    )
}


def _with(cfg: Config, **sections) -> Config:
    """A copy of cfg with some fields of some sections replaced: _with(cfg, method={"name": "moco"})."""
    return replace(cfg, **{name: replace(getattr(cfg, name), **values) for name, values in sections.items()})


def stage1_dir(root: Path) -> Path:
    return root / "viewclr" / "stage1"


def train_method(cfg: Config, method: Method, root: str | Path, progress: bool = True) -> Path | None:
    """Pretrain one method under root (reusing what is there); returns its final weights (None: supervised,
    which trains in its evaluation)."""
    root = Path(root)
    epochs = cfg.train.stage1_epochs + cfg.train.stage2_epochs
    if method.kind == "supervised":
        return None
    stage1 = stage1_dir(root)
    if not (stage1 / FINAL).is_file():
        first = Stage("stage1", "moco", cfg.train.stage1_epochs)
        train_stage(_stage_cfg(cfg, root / "viewclr", "viewclr"), first, resume=True, progress=progress)
    if method.kind == "infonce":
        run = _stage_cfg(cfg, root / method.name, "moco")
        stage = Stage("moco", "moco", epochs)
        if continues_stage1(cfg) and not (root / method.name / "moco" / FINAL).is_file():
            continue_from(stage1, run, stage)  # otherwise (a schedule over the stage's length) from scratch
        return Path(train_stage(run, stage, resume=True, progress=progress)["final"])
    run = _stage_cfg(cfg, root / method.name, "viewclr", method.method)
    if method.model:
        run = _with(run, model=method.model)
    final = root / method.name / "stage2" / FINAL
    if not final.is_file():
        stage2 = Stage("stage2", "viewclr", cfg.train.stage2_epochs)
        train_stage2(run, stage2, stage1, resume=True, progress=progress)
    return final


def _stage_cfg(cfg: Config, out_dir: Path, name: str, method: dict | None = None) -> Config:
    return replace(_with(cfg, method={"name": name, **(method or {})}), out_dir=str(out_dir))


def evaluate_method(
    cfg: Config, method: Method, weights: Path | None, mode: str, root: str | Path, progress: bool = True
) -> dict:
    """Linear probe or finetune of a method's encoder (supervised: training from scratch for the same total
    epochs); reuses an earlier results.json."""
    out = Path(root) / method.name / mode
    if method.kind == "supervised":
        epochs = cfg.train.stage1_epochs + cfg.train.stage2_epochs
        run = _with(cfg, eval={"checkpoint": None, "finetune_epochs": epochs, "backbone_lr_scale": 1.0})
        return evaluate_once(run, "finetune", out, progress)
    return evaluate_once(_with(cfg, eval={"checkpoint": str(weights)}), mode, out, progress)


def evaluate_once(cfg: Config, mode: str, out: Path, progress: bool = True) -> dict:
    """viewclr.eval.classify.evaluate into `out`, or the results.json an earlier call left there."""
    from viewclr.eval.classify import evaluate

    done = out / "results.json"
    if done.is_file():
        return json.loads(done.read_text())
    return evaluate(cfg, mode, out, progress=progress)


def run_methods(
    cfg: Config, root: str | Path, methods: list[str], modes: list[str], progress: bool = True
) -> dict[str, dict[str, dict]]:
    """Train and evaluate `methods` under root; returns {method: {mode: results}} and writes timings.json."""
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        raise ConfigError(None, f"unknown method '{unknown[0]}'; known: {', '.join(METHODS)}")
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    timings_path = root / "timings.json"
    timings = json.loads(timings_path.read_text()) if timings_path.is_file() else {}
    results: dict[str, dict[str, dict]] = {}
    for name in methods:
        method = METHODS[name]
        started = time.perf_counter()
        weights = train_method(cfg, method, root, progress)
        timings.setdefault(f"{name}/pretrain", round(time.perf_counter() - started, 1))
        for mode in ["finetune"] if method.kind == "supervised" else modes:
            started = time.perf_counter()
            results.setdefault(name, {})[mode] = evaluate_method(cfg, method, weights, mode, root, progress)
            timings.setdefault(f"{name}/{mode}", round(time.perf_counter() - started, 1))
        write_json(timings_path, timings)
    return results


NO_AUGMENT = {"crop_scale": [1.0, 1.0], "hflip_p": 0.0, "jitter_p": 0.0, "grayscale_p": 0.0, "blur_p": 0.0}


def supervised_start(cfg: Config, root: str | Path, epochs: int, progress: bool = True) -> Path:
    """An encoder trained from scratch on the training labels, without augmentation (which learns the action
    within a few hundred steps at CPU scale), evaluated like every method; returns its weights (reused)."""
    out = Path(root) / "start" / "supervised"
    run = _with(
        cfg,
        augment=NO_AUGMENT,
        eval={"checkpoint": None, "finetune_epochs": epochs, "backbone_lr_scale": 1.0, "dropout": 0.0},
    )
    evaluate_once(run, "finetune", out, progress)
    return out / "classifier.pt"


def warm_started(cfg: Config, weights: str | Path, kind: str, root: str | Path, progress: bool = True) -> Path:
    """InfoNCE (kind "infonce") or ViewCLR stage 2 ("viewclr") for stage2_epochs, starting from an encoder's
    weights: query and momentum encoders from them, a fresh projection head and queue (and ViewCLR's third
    stream copied from the encoder, as from stage 1). Returns the final weights (reused)."""
    if kind not in ("infonce", "viewclr"):
        raise ConfigError(None, f"warm start trains infonce or viewclr, not '{kind}'")
    name, stage = ("moco", Stage("moco", "moco", cfg.train.stage2_epochs))
    if kind == "viewclr":
        name, stage = "viewclr", Stage("stage2", "viewclr", cfg.train.stage2_epochs)
    run = _stage_cfg(cfg, Path(root) / kind, name)
    final = Path(root) / kind / stage.name / FINAL
    if not final.is_file():
        train_stage(run, stage, init=warm_start_state(cfg, weights), resume=True, progress=progress)
    return final


def warm_start_state(cfg: Config, weights: str | Path) -> dict:
    """A MoCo state whose query and momentum encoders hold an encoder's weights, with a fresh projection head
    and queue (seeded by cfg.seed, so both kinds of warm start get the same)."""
    from viewclr.eval.encoder import load_encoder

    torch.manual_seed(cfg.seed)
    start = build_method(cfg, "moco")
    start.encoder.backbone.load_state_dict(load_encoder(weights, cfg.model).state_dict())
    start.momentum_encoder.load_state_dict(start.encoder.state_dict())
    return start.state_dict()


def top1_table(results: dict[str, dict[str, dict]]) -> str:
    """Markdown: one row per method × evaluation, one column per test group, top-1 in %."""
    groups: list[str] = []
    for by_mode in results.values():
        for result in by_mode.values():
            groups += [g for g in result["groups"] if g not in groups]
    lines = [
        "| Method | Evaluation | " + " | ".join(view_label(g) for g in groups) + " |",
        "|---|---|" + "---:|" * len(groups),
    ]
    for name, by_mode in results.items():
        for mode, result in by_mode.items():
            cells = [result["groups"].get(g, {}).get("top1") for g in groups]
            values = " | ".join("–" if v is None else f"{100 * v:.1f}" for v in cells)
            lines.append(f"| {METHODS[name].title} | {'linear probe' if mode == 'probe' else mode} | {values} |")
    return "\n".join(lines)
