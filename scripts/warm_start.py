"""The warm-start diagnostic of the reproduction study (docs/results.md), with one command:

    python scripts/warm_start.py                  # 3 seeds × stage-2 learning rates 1e-3 and 1e-4, ≈6 min a seed

Does ViewCLR's stage 2 make features that already encode the action generalise better to unseen views than
InfoNCE does? For each seed: an encoder trained on the labels of the 0° training videos (no augmentation), then
InfoNCE and ViewCLR each continue from it for train.stage2_epochs at each learning rate (a fresh projection head
and queue; ViewCLR's third stream copied from the encoder); every encoder linear-probed at 0°, 45° and 90° (CVS).
Writes OUT/results.md and OUT/results.json; everything finished is reused.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from viewclr.config import Config, load_config
from viewclr.data.index import view_label
from viewclr.data.registry import build_split
from viewclr.engine.plan import FINAL, Stage, train_stage
from viewclr.errors import ConfigError
from viewclr.eval.classify import evaluate
from viewclr.fileio import write_json, write_text
from viewclr.methods import Method, build_method
from viewclr.models.weights import load_encoder
from viewclr.studies.compare import evaluate_method, with_sections
from viewclr.synth.generate import generate
from viewclr.synth.world import SynthSettings

KINDS = {"infonce": "InfoNCE", "viewclr": "ViewCLR"}
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
        train_stage(
            run, stage, split, len(spec.classes), init=warm_start_state(cfg, weights), resume=True, progress=progress
        )
    return final


def warm_start_state(cfg: Config, weights: str | Path) -> dict:
    """A MoCo state whose query and momentum encoders hold an encoder's weights, with a fresh projection head
    and queue (seeded by cfg.seed, so both kinds of warm start get the same)."""
    torch.manual_seed(cfg.seed)
    start = build_method(cfg, "infonce")
    start.encoder.backbone.load_state_dict(load_encoder(weights, cfg).state_dict())
    start.momentum_encoder.load_state_dict(start.encoder.state_dict())
    return start.state_dict()


def probe(cfg, weights: Path, out: Path) -> dict[str, float]:
    """Top-1 per test view of a linear probe on `weights` (reused)."""
    done = out / "results.json"
    if done.is_file():
        result = json.loads(done.read_text())
    else:
        result = evaluate(with_sections(cfg, eval={"checkpoint": str(weights)}), "probe", out, progress=False)
    return {group: values["top1"] for group, values in result["groups"].items()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default="synth_study")
    parser.add_argument("--out", default="runs/warm_start")
    parser.add_argument("--data", default="runs/study/synth", help="the study's synthetic benchmark (made if missing)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--lrs", type=float, nargs="+", default=[1e-3, 1e-4], help="stage-2 learning rates")
    parser.add_argument("--supervised-epochs", type=int, default=14)
    parser.add_argument("--subjects", type=int, default=16)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("overrides", nargs="*", help="config overrides, e.g. train.stage2_epochs=8")
    args = parser.parse_args()
    out, started = Path(args.out), time.perf_counter()
    generate(SynthSettings(subjects=args.subjects, size=args.size), args.data, progress=False)
    rows: dict[str, list[dict[str, float]]] = {}
    for seed in args.seeds:
        cfg = load_config(args.config, [*args.overrides, f"data.root={args.data}", f"seed={seed}"])
        root = out / f"seed{seed}"
        weights = supervised_start(cfg, root, args.supervised_epochs, progress=False)
        rows.setdefault("start", []).append(probe(cfg, weights, root / "start" / "probe"))
        print(f"seed {seed}: start {_fmt(rows['start'][-1])}", flush=True)
        for lr in args.lrs:
            run = with_sections(cfg, optim={"lr": lr})
            for kind in KINDS:
                where = root / f"lr{lr:g}"
                final = warm_started(run, weights, kind, where, progress=False)
                rows.setdefault(f"{kind}@{lr:g}", []).append(probe(cfg, final, where / kind / "probe"))
                print(f"seed {seed}: {KINDS[kind]} at lr {lr:g}: {_fmt(rows[f'{kind}@{lr:g}'][-1])}", flush=True)
    groups = list(rows["start"][0])
    epochs = cfg.train.stage2_epochs  # the same for every seed
    lines = [
        f"| Encoder ({len(args.seeds)} seeds, linear probe) | " + " | ".join(view_label(g) for g in groups) + " |",
        "|---|" + "---:|" * len(groups),
    ]
    for row, per_seed in rows.items():
        if row == "start":
            title = f"start: trained on labels, {args.supervised_epochs} epochs, no augmentation"
        else:
            kind, lr = row.split("@")
            title = f"start + {KINDS[kind]}, {epochs} epochs at lr {lr}"
        cells = [
            f"{100 * np.mean([r[g] for r in per_seed]):.1f} ± {100 * np.std([r[g] for r in per_seed], ddof=1):.1f}"
            for g in groups
        ]
        lines.append(f"| {title} | " + " | ".join(cells) + " |")
    table = "\n".join(lines)
    out.mkdir(parents=True, exist_ok=True)
    write_text(out / "results.md", table + "\n")
    write_json(out / "results.json", {"seeds": args.seeds, "rows": rows})
    print(table)
    print(f"{time.perf_counter() - started:.0f} s; written to {out}/results.md and results.json")
    return 0


def _fmt(result: dict[str, float]) -> str:
    return "  ".join(f"{view_label(g)}: {100 * v:.1f}%" for g, v in result.items())


if __name__ == "__main__":
    raise SystemExit(main())
