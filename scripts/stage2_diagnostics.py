"""What stage 2 does to the encoder, measured on training subjects only (docs/results.md, "Why").

    python scripts/stage2_diagnostics.py --stage1 runs/study/seed0/viewclr/stage1 --out runs/diag
    python scripts/stage2_diagnostics.py ... --variant batch32 data.batch_size=32 --variant alpha0.2 method.alpha=0.2
    python scripts/stage2_diagnostics.py ... --seeds 0 1 2     # each seed in --out/seedN, then mean ± std
    python scripts/stage2_diagnostics.py --stage1 'runs/study/seed{seed}/viewclr/stage1' --seeds 0 1 2 ...
    python scripts/stage2_diagnostics.py ... --stage1-curve 360   # stage 1's kept checkpoints every 360 steps too

Validation split (the test subjects are never touched): the CVS training subjects are divided into fit subjects
and held-out subjects (`--held-out`, default the last three of the ten). A linear probe is fitted on the fit
subjects' 0° videos (labels) and tested on the held-out subjects' videos at 0°, 45° and 90°; the 45° and 90°
videos of training subjects are never seen in pretraining, and the held-out subjects' 0° videos only unlabelled.

For each variant (a set of overrides applied to stage 2 only), starting from one finished stage 1 (shared):
InfoNCE continued for stage2_epochs and ViewCLR's stage 2, each with a checkpoint every `--every` steps; every
checkpoint (and stage 1's end) is probed on the validation split. A curve that falls from stage 1's value is
stage 2 forgetting; one that stays flat while InfoNCE's rises is stage 2 not learning. Everything finished is
reused.

With `--seeds`, all of it once per seed (`seed=N`: stage 2's data order, augmentation and initialisation, and the
probe's; stage 1 stays the one given) in --out/seedN, then a table of the end of stage 2 over the seeds: mean ±
std (sample, ddof 1) per view and ViewCLR − InfoNCE per seed (--out/results.md, results.json). A `{seed}` in --stage1
gives each seed its own stage 1 (the study's, one per seed): from one stage 1 the stage-2 seeds can agree on what
another stage 1 does not show (docs/results.md, "Why"). A folder's runs remember their stage 1 and its length;
another stage 1 into the same --out is an error, and so is the same one trained further (`--resume` with more
train.stage1_epochs continues a finished stage 1).
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from viewclr.checkpoint import load_weights
from viewclr.config import load_config
from viewclr.data.index import view_label
from viewclr.data.registry import build_split
from viewclr.engine.plan import FINAL, pretrain
from viewclr.eval.classify import Classifier, fit_linear
from viewclr.eval.tables import cell
from viewclr.features import extract_features, knn_accuracy
from viewclr.fileio import write_json, write_text
from viewclr.lineage import STAGE2_ONLY
from viewclr.logger import read_metrics
from viewclr.models.weights import load_encoder

VIEWS = ("0", "45", "90")


def validation_split(cfg, held_out: list[int]) -> tuple[list, dict[str, list], int]:
    """(fit videos: the other training subjects at 0°, {view: the held-out subjects' videos at that view}, the
    number of classes)."""
    spec, cvs = build_split(cfg.data)
    training_subjects = sorted({s.subject for s in cvs.train_samples()})
    _, cs = build_split(replace(cfg.data, protocol="cs"))  # every view of the CS training subjects
    train = cs.train_samples()
    unknown = [s for s in held_out if s not in training_subjects]
    if unknown:
        raise SystemExit(f"--held-out {unknown}: not training subjects (those are {training_subjects})")
    fit = [s for s in train if s.view == "0" and s.subject not in held_out]
    validation = {v: [s for s in train if s.view == v and s.subject in held_out] for v in VIEWS}
    return fit, validation, len(spec.classes)


def validate(cfg, weights: Path, fit, validation, classes: int) -> dict:
    """Linear probe (as `viewclr probe`'s fast path) and kNN of one encoder on the validation split."""
    torch.manual_seed(cfg.seed)
    backbone = load_encoder(str(weights), cfg)
    device = torch.device("cpu")
    windows = cfg.eval.feature_windows
    fit_x, fit_y = extract_features(backbone, fit, cfg, device, windows=windows, normalize=False)
    model = Classifier(backbone, classes, 0.0, cfg.eval.feature_norm, frozen=True)
    fit_linear(model, fit_x, fit_y, cfg.eval, cfg.data.batch_size, cfg.seed)
    result = {}
    normal = torch.nn.functional.normalize
    for view, samples in validation.items():
        x, y = extract_features(backbone, samples, cfg, device, windows=windows, normalize=False)
        with torch.no_grad():
            probe = float((model.classify(x).argmax(1) == y).float().mean())
        knn = knn_accuracy(normal(fit_x, dim=1), fit_y, normal(x, dim=1), y, classes, cfg.eval.knn_k)
        result[view] = {"probe": probe, "knn": knn}
    return result


def checkpoints(stage_dir: Path) -> list[tuple[int, Path]]:
    """(step, file) of every kept checkpoint of a stage folder, in step order."""
    index = stage_dir / "checkpoints" / "index.json"
    if not index.is_file():
        return []
    return sorted((e["step"], stage_dir / "checkpoints" / e["file"]) for e in json.loads(index.read_text()))


def train_variant(cfg, stage1: Path, out: Path, baseline_out: Path, every: int) -> dict[str, Path]:
    """InfoNCE continued from stage 1 (under baseline_out/) and ViewCLR's stage 2 (under out/); returns their
    stage folders."""
    cfg = replace(cfg, train=replace(cfg.train, checkpoint_every=every, keep_checkpoints=1000, knn_every=0))
    infonce = replace(cfg, out_dir=str(baseline_out / "infonce"), method=replace(cfg.method, name="infonce"))
    viewclr = replace(cfg, out_dir=str(out / "viewclr"), method=replace(cfg.method, name="viewclr"))
    if not (baseline_out / "infonce" / "infonce" / FINAL).is_file():
        pretrain(infonce, resume=True, progress=False, source=stage1)
    if not (out / "viewclr" / "stage2" / FINAL).is_file():
        pretrain(viewclr, stage="2", resume=True, progress=False, stage1=stage1)
    return {"InfoNCE": baseline_out / "infonce" / "infonce", "ViewCLR": out / "viewclr" / "stage2"}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default="synth_study")
    parser.add_argument(
        "--stage1",
        required=True,
        help="a finished stage-1 folder of this config (RUN/viewclr/stage1); with --seeds, {seed} stands for the seed",
    )
    parser.add_argument("--out", default="runs/diag")
    parser.add_argument("--every", type=int, default=30, help="steps between evaluated checkpoints")
    parser.add_argument("--held-out", type=int, nargs="+", default=[14, 15, 16], help="validation subjects")
    parser.add_argument(
        "--variant",
        nargs="+",
        action="append",
        default=[],
        metavar=("NAME", "KEY=VALUE"),
        help="a named set of stage-2 overrides (repeatable); the preset itself is always the variant 'preset'",
    )
    parser.add_argument("--seeds", type=int, nargs="+", help="run once per seed (in --out/seedN), then mean ± std")
    parser.add_argument(
        "--stage1-curve",
        type=int,
        metavar="STEPS",
        help="also validate stage 1's kept checkpoints every STEPS steps, and its last (is stage 1 still improving?)",
    )
    parser.add_argument("overrides", nargs="*", help="overrides for every variant, e.g. data.root=runs/study/synth")
    args = parser.parse_args()
    if args.stage1_curve is not None and args.stage1_curve < 1:
        parser.error(f"--stage1-curve {args.stage1_curve}: a number of steps >= 1")
    out = Path(args.out)
    variants = [("preset", [])] + [(v[0], v[1:]) for v in args.variant]
    if not args.seeds:
        diagnose(args, args.overrides, variants, out, stage1_for(args.stage1, None))
        return 0
    stage1s = {seed: stage1_for(args.stage1, seed) for seed in args.seeds}  # every one checked before any work
    summaries = {}
    for seed in args.seeds:
        print(f"seed {seed}: stage 1 {stage1s[seed]}", flush=True)
        overrides = [*args.overrides, f"seed={seed}"]
        summaries[seed] = diagnose(args, overrides, variants, out / f"seed{seed}", stage1s[seed])
    table, combined = across_seeds(summaries)
    write_json(out / "results.json", combined)
    write_text(out / "results.md", table)
    print(table)
    return 0


def stage1_for(template: str, seed: int | None) -> Path:
    """The finished stage-1 folder of a seed: `template` with {seed} filled in (a template needs --seeds)."""
    if "{seed}" in template and seed is None:
        raise SystemExit(f"--stage1 {template}: {{seed}} needs --seeds")
    stage1 = Path(template.replace("{seed}", str(seed)))
    if not (stage1 / FINAL).is_file():
        raise SystemExit(f"--stage1: {stage1} holds no finished stage 1 ({FINAL})")
    return stage1


def check_same_stage1(cache: dict, stage1: Path, steps: int, out: Path) -> None:
    """A folder's runs continue one stage 1: the cache remembers its folder and length, and another folder, or the
    same one trained further (`--resume` with more train.stage1_epochs), is an error."""
    recorded, given = cache.setdefault("stage1_dir", str(stage1.resolve())), str(stage1.resolve())
    if recorded != given:
        raise SystemExit(f"{out} holds runs from stage 1 {recorded}, not {given}: use another --out")
    before = cache.setdefault("stage1_steps", steps)
    if before != steps:
        raise SystemExit(f"{out} holds runs from {given} at step {before}; it has {steps} steps now: use another --out")


def diagnose(args, overrides: list[str], variants: list[tuple[str, list[str]]], out: Path, stage1: Path) -> dict:
    """Every variant's runs and validation curves under `out` (results.json, results.md, curves.png there)."""
    stage1_steps = load_weights(stage1 / FINAL, mmap=True)["summary"]["steps"]  # InfoNCE's steps continue stage 1's
    base = load_config(args.config, overrides)
    fit, validation, classes = validation_split(base, args.held_out)
    print(
        f"validation: fit on {len(fit)} videos (0°), held-out subjects {args.held_out}: "
        + ", ".join(f"{view_label(v)} {len(s)}" for v, s in validation.items()),
        flush=True,
    )
    cache_path = out / "validation.json"
    cache = json.loads(cache_path.read_text()) if cache_path.is_file() else {}
    check_same_stage1(cache, stage1, stage1_steps, out)
    write_json(cache_path, cache)  # the stage 1 recorded before any run starts
    start = validate(base, stage1 / FINAL, fit, validation, classes) if "stage1" not in cache else cache["stage1"]
    cache["stage1"] = start
    summary = {"stage1": start, "variants": {}}
    if args.stage1_curve:
        end = (stage1_steps, start)  # the last checkpoint's weights are stage 1's end: validated already
        curve = stage1_curve(base, stage1, args.stage1_curve, cache, cache_path, fit, validation, classes, end)
        summary["stage1_curve"] = curve
    for name, changes in variants:
        cfg = load_config(args.config, [*overrides, *changes])
        print(f"variant {name}: {' '.join(changes) or '(the preset)'}", flush=True)
        # a variant that changes only what InfoNCE does not read shares the preset's InfoNCE run
        shared = all(o.split("=")[0] in STAGE2_ONLY for o in changes)
        runs = train_variant(cfg, stage1, out / name, out / ("preset" if shared else name), args.every)
        curves = {}
        for method, stage_dir in runs.items():
            points = [(0, start)]
            offset = stage1_steps if method == "InfoNCE" else 0  # the baseline's steps continue stage 1's
            for step, path in selected(checkpoints(stage_dir), args.every, offset):
                key = f"{stage_dir.relative_to(out).as_posix()}/{step}"  # the folder may move
                if key not in cache:
                    cache[key] = validate(cfg, path, fit, validation, classes)
                    write_json(cache_path, cache)
                points.append((step, cache[key]))
            curves[method] = points
            last = points[-1][1]
            print(
                f"  {method:8s} "
                + "  ".join(
                    f"{view_label(v)} probe {100 * last[v]['probe']:.1f} kNN {100 * last[v]['knn']:.1f}" for v in VIEWS
                ),
                flush=True,
            )
        metrics = read_metrics(runs["ViewCLR"])
        summary["variants"][name] = {
            "overrides": changes,
            "curves": {m: [(s, r) for s, r in p] for m, p in curves.items()},
            "viewclr_last_quarter": _last_quarter(metrics),
            "infonce_last_quarter": _last_quarter(read_metrics(runs["InfoNCE"])),
        }
    write_json(cache_path, cache)
    write_json(out / "results.json", summary)
    write_text(out / "results.md", markdown(summary))
    plot(summary, out / "curves.png")
    print(markdown(summary))
    return summary


def selected(kept: list[tuple[int, Path]], every: int, offset: int = 0) -> list[tuple[int, Path]]:
    """(step - offset, file) of the kept checkpoints after `offset` whose step past it is a multiple of `every`, and
    of the last one; the epoch-end checkpoints in between are skipped."""
    return [
        (step - offset, path)
        for step, path in kept
        if step > offset and ((step - offset) % every == 0 or step == kept[-1][0])
    ]


def stage1_curve(
    cfg, stage1: Path, every: int, cache: dict, cache_path: Path, fit, validation, classes: int, end=None
) -> list:
    """(step, validation) of the kept stage-1 checkpoints at multiples of `every` steps and of the last, in step
    order (cached under "stage1/STEP"). Stage 1 keeps its checkpoints only as `train.keep_checkpoints` allows.
    `end`, when given, is (stage 1's steps, its end's validation): that step is not validated again."""
    points = []
    for step, path in selected(checkpoints(stage1), every):
        key = f"stage1/{step}"
        if key not in cache:
            known = end is not None and step == end[0]
            cache[key] = end[1] if known else validate(cfg, path, fit, validation, classes)
            write_json(cache_path, cache)
        points.append((step, cache[key]))
    if not points:
        raise SystemExit(f"--stage1-curve: {stage1} keeps no checkpoints (checkpoints/index.json)")
    return points


def across_seeds(summaries: dict[int, dict]) -> tuple[str, dict]:
    """(markdown, json) of the end of stage 2 over seeds: validation probe (and kNN) top-1 % mean ± std per view,
    and ViewCLR − InfoNCE probe per seed."""
    seeds = list(summaries)

    def by_view(results: list[dict]) -> dict:  # one {view: {probe, knn}} per seed → {view: {probe, knn: [each]}}
        return {v: {k: [r[v][k] for r in results] for k in ("probe", "knn")} for v in VIEWS}

    rows = {}
    if all("stage1_curve" in summaries[s] for s in seeds):  # stage 1's checkpoints, at the steps all seeds kept
        kept = [dict(summaries[s]["stage1_curve"]) for s in seeds]
        for step in sorted(set.intersection(*(set(k) for k in kept))):
            rows[f"stage 1, step {step}"] = by_view([k[step] for k in kept])
    rows["stage 1's end"] = by_view([summaries[s]["stage1"] for s in seeds])
    differences = {}
    for name in summaries[seeds[0]]["variants"]:
        ends = {s: {m: p[-1][1] for m, p in summaries[s]["variants"][name]["curves"].items()} for s in seeds}
        for method in ("InfoNCE", "ViewCLR"):
            rows[f"{name}: {method}"] = by_view([ends[s][method] for s in seeds])
        differences[name] = {
            v: [100 * (ends[s]["ViewCLR"][v]["probe"] - ends[s]["InfoNCE"][v]["probe"]) for s in seeds] for v in VIEWS
        }
    lines = [
        "Validation probe (kNN) top-1 % at the end of stage 2, mean ± sample std over seeds "
        f"{', '.join(map(str, seeds))}:",
        "",
        "| variant: method | " + " | ".join(view_label(v) for v in VIEWS) + " |",
        "|---|" + "---:|" * len(VIEWS),
    ]
    for name, row in rows.items():
        cells = " | ".join(f"{cell(row[v]['probe'])} ({cell(row[v]['knn'])})" for v in VIEWS)  # mean ± std
        lines.append(f"| {name} | {cells} |")
    lines += ["", "ViewCLR − InfoNCE, probe, per seed (" + " / ".join(map(str, seeds)) + "):", ""]
    lines += ["| variant | " + " | ".join(view_label(v) for v in VIEWS) + " |", "|---|" + "---:|" * len(VIEWS)]
    for name, gaps in differences.items():
        cells = " | ".join(" / ".join(f"{d:+.1f}" for d in gaps[v]) for v in VIEWS)
        lines.append(f"| {name} | {cells} |")
    percent = {
        name: {
            v: {
                k: {
                    "mean": 100 * float(np.mean(x)),
                    "std": 100 * float(np.std(x, ddof=1)),
                    "values": [100 * e for e in x],
                }
                for k, x in row[v].items()
            }
            for v in VIEWS
        }
        for name, row in rows.items()
    }
    return "\n".join(lines) + "\n", {"seeds": seeds, "rows": percent, "viewclr_minus_infonce": differences}


def _last_quarter(records: list[dict]) -> dict:
    """Means of the training metrics over the last quarter of a stage's logged steps."""
    keys = ("train/pretext_acc", "train/instance_acc", "train/gen_view_deg", "train/gen_change", "loss/l3d")
    records = [r for r in records if "train/instance_acc" in r]
    records = records[-max(1, len(records) // 4) :]
    return {k: float(np.mean([r[k] for r in records if k in r])) for k in keys if any(k in r for r in records)}


def markdown(summary: dict) -> str:
    start = summary["stage1"]
    lines = [
        "Validation probe (kNN) top-1 % on held-out training subjects, at the end of stage 2:",
        "",
        "| variant | method | " + " | ".join(view_label(v) for v in VIEWS) + " | instance acc. | pretext acc. |",
        "|---|---|" + "---:|" * (len(VIEWS) + 2),
        "| – | stage 1's end | "
        + " | ".join(f"{100 * start[v]['probe']:.1f} ({100 * start[v]['knn']:.1f})" for v in VIEWS)
        + " | | |",
    ]
    for name, variant in summary["variants"].items():
        for method, points in variant["curves"].items():
            last = points[-1][1]
            train = variant["viewclr_last_quarter" if method == "ViewCLR" else "infonce_last_quarter"]
            cells = " | ".join(f"{100 * last[v]['probe']:.1f} ({100 * last[v]['knn']:.1f})" for v in VIEWS)
            lines.append(
                f"| {name} | {method} | {cells} | {train.get('train/instance_acc', float('nan')):.2f} | "
                f"{train.get('train/pretext_acc', float('nan')):.2f} |"
            )
    if "stage1_curve" in summary:
        cells = ", ".join(
            f"{s}: " + "/".join(f"{100 * r[v]['probe']:.0f}" for v in VIEWS) for s, r in summary["stage1_curve"]
        )
        lines += ["", f"Validation probe over stage 1 (step: 0° / 45° / 90°): {cells}"]
    lines += ["", "Validation probe over stage 2 (step: 0° / 45° / 90°):", ""]
    for name, variant in summary["variants"].items():
        for method, points in variant["curves"].items():
            cells = ", ".join(f"{s}: " + "/".join(f"{100 * r[v]['probe']:.0f}" for v in VIEWS) for s, r in points)
            lines.append(f"- {name}, {method}: {cells}")
    return "\n".join(lines) + "\n"


def plot(summary: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, len(VIEWS), figsize=(4 * len(VIEWS), 3.2), dpi=110, sharey=True)
    for axis, view in zip(axes, VIEWS, strict=True):
        for i, (name, variant) in enumerate(summary["variants"].items()):
            for method, points in variant["curves"].items():
                style = "-" if method == "ViewCLR" else "--"
                axis.plot(
                    [s for s, _ in points],
                    [100 * r[view]["probe"] for _, r in points],
                    style,
                    color=f"C{i}",
                    label=f"{name}, {method}",
                )
        axis.set_title(f"validation probe, {view_label(view)}", fontsize=9)
        axis.set_xlabel("stage-2 step")
        axis.grid(alpha=0.3)
    axes[0].set_ylabel("top-1 (%)")
    axes[-1].legend(fontsize=7, loc="center left", bbox_to_anchor=(1.0, 0.5), frameon=False)
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)


if __name__ == "__main__":
    sys.exit(main())
