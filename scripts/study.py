"""The reproduction study on the synthetic benchmark (docs/results.md), with one command:

    python scripts/study.py                       # CPU-sized: see docs/results.md for what it ran and how long
    python scripts/study.py --seeds 0 1 2 --subjects 40 train.stage1_epochs=300 train.stage2_epochs=200  # GPU

For each seed: supervised from scratch, InfoNCE, ViewCLR and the Table 1 ablations (−L3D, −L_adv, −L_adv−L3D
without the generator), and ViewCLR with eq. 1's voxel world (model.world=voxels) — `--methods` chooses from
viewclr.methods.METHODS — all through `viewclr compare` (stage 1 shared, the baseline continued from it, equal
epochs); linear probe and finetune; top-1 at 0°, 45° and 90° (CVS). Then mean ± std over seeds, per-view bar plots
(all written by compare), and beside them the training curves of the paper's Fig. 5, the generator's diagnostics
(its net change of viewpoint, how much G changes its input) and a nearest-neighbour diagnostic of what the frozen
features encode (the action, or the actor). Everything finished is reused, so an interrupted study continues where
it stopped.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

from viewclr import provenance
from viewclr.config import load_config
from viewclr.data.registry import build_split
from viewclr.features import extract_features
from viewclr.fileio import write_json, write_text
from viewclr.logger import read_metrics
from viewclr.methods import METHODS
from viewclr.models.weights import load_encoder
from viewclr.studies.compare import compare
from viewclr.synth.generate import generate
from viewclr.synth.world import SynthSettings

ORDER = ["supervised", "infonce", "viewclr_no_adv_l3d", "viewclr_no_adv", "viewclr_no_l3d", "viewclr", "viewclr_voxels"]
MODES = ["probe", "finetune"]


def plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as pyplot

    return pyplot


def curves(seed_root: Path, out: Path) -> dict:
    """Fig. 5: pretext accuracy and loss over training (InfoNCE vs ViewCLR, stage 1 then stage 2), and the
    generator's rotation angle and relative change of its input during stage 2."""
    pyplot = plt()
    stage1 = read_metrics(seed_root / "viewclr" / "stage1")
    offset = max((r["step"] for r in stage1), default=0)
    runs = {
        "InfoNCE": read_metrics(seed_root / "infonce" / "infonce"),
        "ViewCLR": stage1 + [{**r, "step": r["step"] + offset} for r in read_metrics(seed_root / "viewclr" / "stage2")],
    }
    figure, axes = pyplot.subplots(1, 4, figsize=(15, 3.4), dpi=110)
    diagnostics = {}
    for name, records in runs.items():
        for axis, key in zip(axes[:2], ("train/pretext_acc", "loss/total"), strict=True):
            points = [(r["step"], r[key]) for r in records if key in r]
            if points:
                xs, ys = zip(*points, strict=True)
                axis.plot(xs, _smooth(ys), label=name, linewidth=1.2)
    stage2 = read_metrics(seed_root / "viewclr" / "stage2")
    for axis, key, title in (
        (axes[2], "train/gen_view_deg", "G: net change of viewpoint R_K·Rᵀ (°)"),
        (axes[3], "train/gen_change", "G: ‖G(g) − g‖ / ‖g‖"),
    ):
        points = [(r["step"] + offset, r[key]) for r in stage2 if key in r]
        if points:
            xs, ys = zip(*points, strict=True)
            axis.plot(xs, ys, color="C1")
            diagnostics[key] = {"first": ys[0], "last": ys[-1], "max": max(ys)}
        axis.set_title(title, fontsize=9)
    axes[0].set_title("pretext accuracy (Fig. 5; ViewCLR: own or partner's key)", fontsize=9)
    axes[1].set_title("total loss", fontsize=9)
    for axis in axes:
        axis.set_xlabel("step")
        axis.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(out)
    pyplot.close(figure)
    for name, records in runs.items():
        accs = [r["train/pretext_acc"] for r in records if "train/pretext_acc" in r]
        diagnostics[f"pretext_acc_last10/{name}"] = float(np.mean(accs[-10:])) if accs else None
    return diagnostics


def _smooth(values, window: int = 5):
    values = np.asarray(values, dtype=float)
    if len(values) < window:
        return values
    kernel = np.ones(window) / window
    return np.convolve(np.pad(values, (window // 2, window - 1 - window // 2), mode="edge"), kernel, mode="valid")


def what_features_encode(cfg, weights: Path) -> dict:
    """Leave-one-out 1-NN among the 0° training videos (frozen, L2-normalised features): how often the nearest
    video shows the same action, and how often the same actor. Chance: 1/classes and 1/subjects."""
    _, split = build_split(cfg.data)
    samples = split.train_samples()
    backbone = load_encoder(str(weights), cfg) if weights else None
    if backbone is None:
        from viewclr.models import build_backbone

        torch.manual_seed(cfg.seed)
        backbone = build_backbone(cfg.model.backbone, cfg.model.width)
    x, y = extract_features(backbone, samples, cfg, torch.device("cpu"), windows=2)
    subjects = torch.tensor([s.subject for s in samples])
    similarity = x @ x.T
    similarity.fill_diagonal_(-2.0)
    nearest = similarity.argmax(1)
    return {
        "same_action": float((y[nearest] == y).float().mean()),
        "same_subject": float((subjects[nearest] == subjects).float().mean()),
        "chance_action": 1 / len(set(y.tolist())),
        "chance_subject": 1 / len(set(subjects.tolist())),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default="synth_study")
    parser.add_argument("--out", default="runs/study")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--methods", nargs="+", default=ORDER, help=f"from: {', '.join(METHODS)}")
    parser.add_argument("--subjects", type=int, default=16, help="synthetic subjects (NTU-60's CS split of them)")
    parser.add_argument("--size", type=int, default=64, help="rendered frame size")
    parser.add_argument("--no-progress", action="store_true")
    parser.add_argument("overrides", nargs="*", help="config overrides, e.g. train.stage1_epochs=30")
    args = parser.parse_args()
    out = Path(args.out)
    started = time.perf_counter()
    synth = out / "synth"
    print(f"synthetic benchmark: {args.subjects} subjects at {args.size} px → {synth}", flush=True)
    generate(SynthSettings(subjects=args.subjects, size=args.size), synth, progress=not args.no_progress)
    overrides = [*args.overrides, f"data.root={synth}"]
    done = compare(args.config, out, args.methods, args.seeds, MODES, overrides, progress=not args.no_progress)
    seed_root = out / f"seed{args.seeds[0]}"
    diagnostics = curves(seed_root, out / "curves.png")
    cfg = load_config(args.config, [*overrides, f"seed={args.seeds[0]}"])
    encodes = {
        "random init": what_features_encode(cfg, None),
        "InfoNCE": what_features_encode(cfg, seed_root / "infonce" / "infonce" / "final.pt"),
        "ViewCLR": what_features_encode(cfg, seed_root / "viewclr" / "stage2" / "final.pt"),
    }
    summary = {
        "seeds": args.seeds,
        "config": args.config,
        "overrides": args.overrides,
        "subjects": args.subjects,
        "table": done["table"],
        "diagnostics": diagnostics,
        "nearest_neighbour": encodes,
        "code": provenance.record(),
        "mixed_code": done["provenance_warning"],  # every run's: results.json
        "seconds": time.perf_counter() - started,
    }
    write_json(out / "study.json", summary)
    lines = ["Nearest-neighbour diagnostic (0° training videos, leave-one-out 1-NN, frozen features):", ""]
    lines += ["| encoder | same action | same actor |", "|---|---:|---:|"]
    for name, d in encodes.items():
        lines.append(f"| {name} | {100 * d['same_action']:.1f} | {100 * d['same_subject']:.1f} |")
    chance = encodes["InfoNCE"]
    lines += ["", f"(chance: action {100 * chance['chance_action']:.1f}, actor {100 * chance['chance_subject']:.1f})"]
    lines += ["", f"Generator and pretext diagnostics (seed {args.seeds[0]}):", "", "```"]
    lines += [json.dumps(diagnostics, indent=1), "```", "", f"wall time: {summary['seconds'] / 60:.1f} min"]
    code = summary["code"]
    lines += [
        f"code: viewclr {code['version']}, source {code['source']}, commit {code['commit']}"
        f"{' with local changes' if code['dirty'] else ''}"
    ]
    lines += [f"**Warning:** {done['provenance_warning']}."] if done["provenance_warning"] else []
    text = (out / "results.md").read_text() + "\n" + "\n".join(lines) + "\n"
    write_text(out / "results.md", text)
    print(text)
    print(f"\nwritten: {out / 'results.md'}, results.json, study.json, per_view.png, curves.png, report.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
