"""Methods compared on one protocol at equal budgets: the plan behind the demo (`viewclr demo`) and the study
(`scripts/study.py`, docs/results.md).

Every method trains for the same total number of epochs, stage1_epochs + stage2_epochs, and the self-supervised
ones share one stage-1 run (per seed); all of it goes through `engine.plan.pretrain`:

    <root>/viewclr/stage1        MoCo with InfoNCE, stage1_epochs                 (shared)
    <root>/viewclr/stage2        ViewCLR, stage2_epochs, from stage 1
    <root>/viewclr_no_l3d/...    the Table 1 ablations (and variants): stage 2 from the same stage 1
    <root>/infonce/infonce       the InfoNCE baseline continued from stage 1's last checkpoint for stage2_epochs:
                                 the same run as a baseline of stage1 + stage2 epochs (resume is exact), at half the
                                 cost (with optim.schedule=cosine the rate depends on the run's length: trained whole)
    <root>/supervised/finetune   the encoder trained from scratch on the labels for the same total epochs

Each method is then evaluated (linear probe and/or finetune) into <root>/<method>/<mode>/results.json. The split is
built once and passed down. Every step skips what is already finished *for these settings* (`viewclr.lineage`: a
stage or result is reused only where the identity it records equals this run's; what a change reaches is set aside
and trained again), so a second run reuses the first's work, an interrupted one continues, and a changed setting
never leaves a stale row in the table.
"""

from __future__ import annotations

import errno
import logging
import os
import time
from dataclasses import replace
from pathlib import Path

from viewclr import lineage, provenance
from viewclr.checkpoint import load_weights
from viewclr.config import Config
from viewclr.data.registry import build_split
from viewclr.engine.plan import FINAL, check_stage2, continues_stage1, pretrain
from viewclr.errors import ConfigError
from viewclr.eval.classify import evaluate
from viewclr.eval.tables import results_table
from viewclr.fileio import LOCK, folder_lock, read_json, write_json
from viewclr.methods import METHODS, Method
from viewclr.methods.registry import POSE_OBJECTIVES
from viewclr.runtime import check_precision, choose_device

log = logging.getLogger(__name__)


def with_sections(cfg: Config, **sections) -> Config:
    """A copy of cfg with some fields of some sections replaced: with_sections(cfg, method={"name": "infonce"})."""
    return replace(cfg, **{name: replace(getattr(cfg, name), **values) for name, values in sections.items()})


def stage1_dir(root: Path) -> Path:
    return root / "viewclr" / "stage1"


UNPRETRAINED = ("supervised", "agcn", "fusion")  # trained on labels in their evaluation, or fused from others'


def train_method(cfg: Config, method: Method, root: str | Path, split=None, progress: bool = True) -> Path | None:
    """Pretrain one method under root (reusing what is there); returns its final weights (None: the UNPRETRAINED
    methods, which train on labels in their evaluation or fuse others' scores). `split`: (spec, Split), built once
    by the caller."""
    if method.objective in UNPRETRAINED:
        return None
    root = Path(root)
    if method.objective == "skeletonclr":
        from viewclr.studies.pose import pose_data, pretrain_skeletonclr

        return pretrain_skeletonclr(cfg, pose_data(cfg, progress), root / method.name, progress)
    split = split or build_split(cfg.data)
    stage1 = stage1_dir(root)
    shared = replace(with_sections(cfg, method={"name": "viewclr"}), out_dir=str(root / "viewclr"))
    # each stage is reused only where it records this run's identity, else set aside and trained again (restart)
    pretrain(shared, stage="1", resume=True, progress=progress, split=split, restart=True)
    run = replace(
        with_sections(cfg, method={"name": method.objective, **method.method_settings}), out_dir=str(root / method.name)
    )
    if method.objective == "infonce":
        source = stage1 if continues_stage1(cfg) else None  # otherwise (a schedule over the run's length) whole
        results = pretrain(run, resume=True, progress=progress, source=source, split=split, restart=True)
        return Path(results["infonce"]["final"])
    if method.model_settings:
        run = with_sections(run, model=method.model_settings)
    trained = pretrain(run, stage="2", resume=True, progress=progress, stage1=stage1, split=split, restart=True)
    return Path(trained["stage2"]["final"])


def evaluate_method(
    cfg: Config,
    method: Method,
    weights: Path | None,
    mode: str,
    root: str | Path,
    split=None,
    progress: bool = True,
    name: str | None = None,
) -> dict:
    """Linear probe or finetune of a method's encoder (supervised: training from scratch for the same total
    epochs) on cfg's dataset, into root/<method>/<name or mode>. An earlier results.json there is reused only where
    it records this evaluation's identity (its settings, videos and the encoder's identity); otherwise it is set
    aside, said so, and the evaluation runs again."""
    out = Path(root) / method.name / (name or mode)
    if method.objective in POSE_OBJECTIVES:
        return _evaluate_pose_method(cfg, method, weights, mode, Path(root), split, progress, name)
    if method.objective == "supervised":
        epochs = cfg.train.stage1_epochs + cfg.train.stage2_epochs
        run = with_sections(cfg, eval={"checkpoint": None, "finetune_epochs": epochs, "backbone_lr_scale": 1.0})
        mode = "finetune"
    else:
        run = with_sections(cfg, eval={"checkpoint": str(weights)})
    split = split or build_split(run.data)
    if (saved := lineage.reuse(out, lineage.eval_identity(run, mode, split[1]))) is not None:
        return saved
    if mode == "knn":  # no training: the frozen encoder's features and their nearest training videos
        from viewclr.eval.embed import knn

        return knn(run, out, progress=progress, split=split)
    return evaluate(run, mode, out, progress=progress, split=split)


def _evaluate_pose_method(
    cfg, method: Method, weights, mode: str, root: Path, split, progress: bool, name: str | None = None
) -> dict:
    """SkeletonCLR probed or finetuned, the AGCN joint stream, or ViewCLR + Poses: ViewCLR's `mode` scores fused
    with AGCN's at the weight chosen on both models' scores of held-out training subjects (`studies.pose`).
    `name` '<mode>@<preset>': on another dataset (cfg is its config) — SkeletonCLR's encoder probed or finetuned
    there, AGCN trained on its labels, the fusion of ViewCLR's and AGCN's results there."""
    from viewclr.eval.fusion import fuse
    from viewclr.studies.pose import evaluate_pose, pose_data, validation_split

    data = pose_data(cfg, progress)
    at = "@" + name.partition("@")[2] if name and "@" in name else ""  # the other dataset's results' suffix
    if method.objective != "fusion":
        kind = "finetune" if method.objective == "agcn" else mode
        return evaluate_pose(cfg, method.objective, kind, weights, data, root / method.name / (kind + at), progress)
    rgb, agcn = root / "viewclr", root / "agcn"
    tested = (rgb / f"{mode}{at}" / "scores.pt", agcn / f"finetune{at}" / "scores.pt")
    missing = [p for p in tested if not p.is_file()]
    if missing:
        raise ConfigError(None, f"ViewCLR + Poses fuses viewclr's and agcn's scores; {missing[0]} is missing")
    spec, rgb_split = split or build_split(cfg.data)
    held_out = validation_split(rgb_split, cfg.pose.val_subjects)
    encoder = root / "viewclr" / "stage2" / FINAL
    rgb_val = f"{mode}-val{at}"
    evaluate_method(cfg, METHODS["viewclr"], encoder, mode, root, (spec, held_out), progress, name=rgb_val)
    evaluate_pose(cfg, "agcn", "finetune", None, data, agcn / f"finetune-val{at}", progress, validation=True)
    results = fuse(
        *tested,
        None,
        root / method.name / (name or mode),
        validation=(rgb / rgb_val / "scores.pt", agcn / f"finetune-val{at}" / "scores.pt"),
    )
    results["provenance"] = provenance.record()
    return results


def check_methods(methods: list[str]) -> None:
    """Every name of `methods` is one of METHODS (a config error naming the first that is not); a fusion needs
    the methods it fuses."""
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        raise ConfigError(None, f"unknown method '{unknown[0]}'; known: {', '.join(METHODS)}")
    if "viewclr_poses" in methods and not {"viewclr", "agcn"} <= set(methods):
        raise ConfigError(None, "--methods viewclr_poses fuses two other methods: add viewclr and agcn to --methods")


# ---------------------------------------------------------------------------------------------- viewclr compare


def compare(
    config: str | Path | None,
    out: str | Path,
    methods: list[str] = ("infonce", "viewclr"),
    seeds: list[int] = (0,),
    evaluations: list[str] = ("probe",),
    overrides: list[str] = (),
    progress: bool = True,
    echo=print,
    eval_on: list[str] = (),
    eval_overrides: list[str] = (),
) -> dict:
    """The paper's comparison on any dataset and protocol: every method of `methods` for every seed, at equal
    budgets (`train_method`'s plan, one shared stage 1 per seed), each evaluation; then a table per evaluation
    (mean ± sample std over seeds per test group, and each seed, with the chance level), a per-view bar plot and a
    report with every seed's training curves, in `out`. Every finished step made with these settings is reused: a
    second call trains nothing.

    `eval_on`: presets (or YAML files) of other datasets on which each evaluation is run too, with the encoders
    pretrained here — the paper's N-UCLA protocol (NTU-60-pretrained encoders probed and finetuned on N-UCLA):
    their data, augmentation and eval settings (`eval_overrides` on top), this comparison's model and seeds.
    Supervised from scratch trains on their labels. Their results are the evaluations '<mode>@<preset>'.

    Args:
        config: a preset's name or a YAML file (None: the defaults), with `overrides` ("key=value") on top.
        out: the comparison's folder (one it made, or empty).
        methods: names of `viewclr.methods.METHODS`.
        seeds: each seed trains and evaluates every method.
        evaluations: "probe", "finetune", "knn" (supervised is always finetuned).
        progress, echo: progress bars, and where the step lines go.

    Returns:
        {"table": {method: {evaluation: {test group: [top-1 of each seed]}}}, "per_seed": {seed: {method:
        {evaluation: results.json}}}, "provenance_warning": a line when the results come from different code}.
    """
    from viewclr.config import load_config

    check_methods(methods)
    methods = [m for m in methods if METHODS[m].objective != "fusion"] + [
        m for m in methods if METHODS[m].objective == "fusion"
    ]  # a fusion reads the scores of the methods it fuses
    for given, what in ((methods, "--methods"), (seeds, "--seeds"), (evaluations, "--eval"), (eval_on, "--eval-on")):
        twice = sorted({str(x) for x in given if list(given).count(x) > 1})
        if twice:
            raise ConfigError(None, f"{what} names {twice[0]} twice; give each once")
    bad = [e for e in evaluations if e not in EVALUATION_NAMES]
    if bad:
        raise ConfigError(None, f"--eval {bad[0]}: choose from {', '.join(EVALUATION_NAMES)}")
    out = Path(out)
    configs = {
        seed: load_config(config, [*overrides, f"seed={seed}", f"out_dir={out / f'seed{seed}'}"]) for seed in seeds
    }  # every config is checked before any work
    for seed, cfg in configs.items():  # one skeleton cache for every seed (it does not depend on the seed)
        if cfg.pose.cache is None:
            configs[seed] = replace(cfg, pose=replace(cfg.pose, cache=str(out / "skeletons")))
    check_precision(configs[seeds[0]].train, choose_device(configs[seeds[0]].train.device))
    for name in methods:
        if METHODS[name].objective == "viewclr":
            check_stage2(with_sections(configs[seeds[0]], method=METHODS[name].method_settings))
    elsewhere = {Path(preset).stem: preset for preset in eval_on}
    eval_configs = {
        (seed, key): elsewhere_config(
            configs[seed], preset, [*eval_overrides, f"seed={seed}"], out / f"skeletons@{key}"
        )
        for seed in seeds
        for key, preset in elsewhere.items()
    }
    split = build_split(configs[seeds[0]].data)
    splits = {key: build_split(eval_configs[seeds[0], key].data) for key in elsewhere}  # checked before any work
    check_pose_methods(methods, configs[seeds[0]], split, {k: (eval_configs[seeds[0], k], splits[k]) for k in splits})

    def method_steps(name: str) -> list[str | None]:
        """Pretraining (None; none for a method trained on labels, or a fusion), then each evaluation here, then each
        on the other datasets ('probe@nucla_v12_3')."""
        here = _modes(METHODS[name], evaluations)
        pretrained = METHODS[name].objective not in UNPRETRAINED  # the others train in their evaluation
        return [None] * pretrained + [*here, *(f"{mode}@{key}" for key in elsewhere for mode in here)]

    claim_output(out, "compare")
    with folder_lock(out, "viewclr compare"):
        steps = [(seed, m, mode) for seed in seeds for m in methods for mode in method_steps(m)]
        per_seed: dict[int, dict[str, dict]] = {seed: {} for seed in seeds}
        weights: dict[tuple[int, str], Path | None] = {}
        spent: list[float] = []
        timings_path = out / "timings.json"
        timings = read_json(timings_path)
        ran = {f"seed{seed}/{name}/{mode or 'pretrain'}" for seed, name, mode in steps}
        timings = {
            k: v
            for k, v in (timings if isinstance(timings, dict) else {}).items()
            if k in ran or not k.startswith("seed")
        }  # only this comparison's steps (and the demo's total)
        for done, (seed, name, mode) in enumerate(steps):
            method, cfg, root = METHODS[name], configs[seed], out / f"seed{seed}"
            left = f"; about {len(steps) - done} steps × {sum(spent) / len(spent) / 60:.1f} min left" if spent else ""
            what = f"{method.title}, {'pretraining' if mode is None else evaluation_name(mode)}"
            echo(f"[{done + 1}/{len(steps)}] seed {seed}: {what}{left}", flush=True)
            started = time.perf_counter()
            if mode is None:
                weights[seed, name] = train_method(cfg, method, root, split, progress)
            elif "@" in mode:  # another dataset, this comparison's encoder
                base, key = mode.split("@")
                there, encoder = eval_configs[seed, key], weights.get((seed, name))
                result = evaluate_method(there, method, encoder, base, root, splits[key], progress, name=mode)
                per_seed[seed].setdefault(name, {})[mode] = result
            else:
                result = evaluate_method(cfg, method, weights.get((seed, name)), mode, root, split, progress)
                per_seed[seed].setdefault(name, {})[mode] = result
            seconds = time.perf_counter() - started
            timings.setdefault(f"seed{seed}/{name}/{mode or 'pretrain'}", round(seconds, 1))  # the first run's
            write_json(timings_path, timings)
            if seconds > 5:  # reused steps take no time and say nothing of the rest
                spent.append(seconds)
        table = aggregate(list(per_seed.values()))
        records = trained_by(out, weights, per_seed)
        warning = provenance.mixed(records)
        if warning:
            echo(f"warning: {warning}", flush=True)
        runs = [out / f"seed{seed}" / m for seed in seeds for m in methods]  # every seed's curves
        write_comparison(out, table, per_seed, methods, seeds, runs, {"runs": records, "warning": warning})
        return {"table": table, "per_seed": per_seed, "provenance_warning": warning}


def check_pose_methods(methods: list[str], cfg: Config, split, elsewhere: dict) -> None:
    """Before any work: a fusion's held-out training subjects exist on every dataset it runs on, and SkeletonCLR's
    encoder meets on every other dataset the skeletons it is trained on (the same normalisation)."""
    from viewclr.data.poses import validation_split

    objectives = {METHODS[m].objective for m in methods}
    if "fusion" in objectives:
        validation_split(split[1], cfg.pose.val_subjects)
    for key, (there, other) in elsewhere.items():
        if "fusion" in objectives:
            validation_split(other[1], there.pose.val_subjects)
        if "skeletonclr" in objectives and there.pose.normalise != cfg.pose.normalise:
            raise ConfigError(
                "pose.normalise",
                f"--eval-on {key}: SkeletonCLR is trained on skeletons normalised '{cfg.pose.normalise}' and would be "
                f"evaluated on '{there.pose.normalise}'; give --eval-set pose.normalise={cfg.pose.normalise}",
            )


def elsewhere_config(cfg: Config, preset, overrides: list[str], skeletons: Path) -> Config:
    """The config of `--eval-on preset`: its data, augmentation and evaluation settings, this comparison's encoders
    (model; the pose encoders' widths), its skeleton cache in `skeletons` where it names none."""
    from viewclr.config import load_config

    there = load_config(preset, overrides)
    pose = replace(there.pose, stgcn_width=cfg.pose.stgcn_width, agcn_width=cfg.pose.agcn_width)
    if pose.cache is None:
        pose = replace(pose, cache=str(skeletons))
    return replace(there, model=cfg.model, pose=pose)


MARKER = ".viewclr-compare"  # in a folder compare (or the demo) made: they may write there again


def claim_output(out: Path, command: str) -> None:
    """Stop unless `out` is a folder `viewclr <command>` may write its results.md, results.json and report.md into:
    missing, empty, or made by compare or the demo (MARKER there, or an earlier comparison's results.json)."""
    if out.exists() and not out.is_dir():
        raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), str(out))
    if out.is_dir() and not (out / MARKER).is_file():
        earlier = read_json(out / "results.json") if (out / "results.json").is_file() else None
        ours = isinstance(earlier, dict) and {"seeds", "methods", "table"} <= earlier.keys()
        present = sorted(p.name for p in out.iterdir() if p.name != LOCK)
        if present and not ours:
            raise ConfigError(
                None,
                f"{out} holds files viewclr {command} did not make (e.g. {present[0]}), and "
                "it writes results.md, results.json and report.md there: choose a new or empty "
                "folder",
            )
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / MARKER, {"made_by": f"viewclr {command}"})


def trained_by(out: Path, weights: dict, per_seed: dict) -> dict[str, dict | None]:
    """The provenance of every result the comparison rests on (None where the code recorded none): each
    pretraining's final weights, the stage 1 they share, and each evaluation."""
    records: dict[str, dict | None] = {}
    finals = {f"seed{seed}/{name}": path for (seed, name), path in weights.items() if path is not None}
    finals |= {f"seed{seed}/stage1": stage1_dir(out / f"seed{seed}") / FINAL for seed in per_seed}
    for name, path in sorted(finals.items()):
        if Path(path).is_file():
            records[name] = load_weights(path, mmap=True).get("summary", {}).get("provenance")  # weights untouched
    for seed, by_method in per_seed.items():
        for name, by_mode in by_method.items():
            for mode, result in by_mode.items():
                records[f"seed{seed}/{name}/{mode}"] = result.get("provenance")
    return records


EVALUATION_NAMES = {"probe": "linear probe", "finetune": "finetune", "knn": "kNN"}


def evaluation_name(mode: str) -> str:
    """'probe' → 'linear probe'; 'finetune@nucla_v12_3' → 'finetune on nucla_v12_3'."""
    base, _, elsewhere = mode.partition("@")
    return EVALUATION_NAMES[base] + (f" on {elsewhere}" if elsewhere else "")


def evaluation_keys(table: dict, methods: list[str]) -> list[str]:
    """The evaluations a table holds, this dataset's first (probe, finetune), then each other dataset's."""
    present = {mode for name in methods for mode in table.get(name, {})}
    order = list(EVALUATION_NAMES)

    def place(mode: str) -> tuple[str, int]:
        base, _, elsewhere = mode.partition("@")
        return elsewhere, order.index(base)

    return sorted(present, key=place)


def _modes(method: Method, evaluations) -> list[str]:
    if method.objective in ("supervised", "agcn"):
        return ["finetune"]
    if method.objective in ("skeletonclr", "fusion"):
        return [e for e in evaluations if e != "knn"]  # the pose path has no kNN
    return list(evaluations)


def aggregate(per_seed: list[dict]) -> dict:
    """{method: {mode: {group: [top-1 of each seed]}}} from each seed's {method: {mode: results}}."""
    table: dict = {}
    for results in per_seed:
        for method, by_mode in results.items():
            for mode, result in by_mode.items():
                for group, values in result["groups"].items():
                    table.setdefault(method, {}).setdefault(mode, {}).setdefault(group, []).append(values["top1"])
    return table


def _first_result(per_seed: dict, mode: str | None = None) -> dict:
    """The first seed's first result (of evaluation `mode`, when given): its groups, classes and protocol."""
    first = next(iter(per_seed.values())).values()
    return next(r for by_mode in first for m, r in by_mode.items() if mode is None or m == mode)


def evaluation_table(table: dict, per_seed: dict, methods: list[str], mode: str) -> str | None:
    """The results table of one evaluation (mean ± sample std over seeds per test group, each seed after it), or
    None if none ran it."""
    if not any(mode in table.get(m, {}) for m in methods):
        return None
    first = _first_result(per_seed, mode)
    evaluation = EVALUATION_NAMES[mode.partition("@")[0]]

    def own(m: str) -> dict:  # the method's own first result: its modality (RGB, Pose, RGB + Pose)
        return next((by[m][mode] for by in per_seed.values() if mode in by.get(m, {})), first)

    def described(m: str) -> str:
        objective = METHODS[m].objective
        if objective in ("supervised", "agcn"):
            return "trained on labels"
        if objective == "fusion":
            weights = [by[m][mode]["weight"] for by in per_seed.values() if mode in by.get(m, {})]
            return f"{evaluation} + AGCN, w = {'/'.join(f'{w:g}' for w in weights)} (validation)"
        return evaluation

    rows = [
        {
            "method": METHODS[m].title,
            "evaluation": described(m),
            "modality": own(m).get("modality", "RGB"),
            "protocol": first.get("protocol", ""),
            "groups": table[m][mode],
        }
        for m in methods
        if mode in table.get(m, {})
    ]
    return results_table(rows, seeds=True) if rows else None


def comparison_tables(table: dict, per_seed: dict, methods: list[str]) -> tuple[str, list[str]]:
    """Markdown: one table per evaluation (mean ± sample std over seeds, and each seed), each dataset's chance
    level; this dataset's test groups."""
    seeds = ", ".join(map(str, per_seed))
    lines, chances = [], {}
    for mode in evaluation_keys(table, methods):
        if (text := evaluation_table(table, per_seed, methods, mode)) is not None:
            spread = (
                f"mean ± sample std (ddof 1) over seeds {seeds}, then each seed's"
                if len(per_seed) > 1
                else f"seed {seeds}"
            )
            lines += [f"## {evaluation_name(mode)} (top-1 %, {spread})", "", text, ""]
            first = _first_result(per_seed, mode)
            classes = first.get("classes_present") or first.get("classes")
            if classes:
                chances.setdefault(mode.partition("@")[2], f"{100 / classes:.1f} % ({classes} classes)")
    for elsewhere, chance in chances.items():
        lines += [f"Chance is {chance}{f' on {elsewhere}' if elsewhere else ''}.", ""]
    home = [m for m in evaluation_keys(table, methods) if "@" not in m]
    groups = list(_first_result(per_seed, home[0] if home else None)["groups"])
    return "\n".join(lines), groups


def write_comparison(
    out: Path, table: dict, per_seed: dict, methods: list[str], seeds, runs: list[Path], provenance_of: dict
) -> None:
    """results.md (the tables), results.json, per_view.png and report.md (every seed's training curves).
    `provenance_of`: {"runs": the code behind each result, "warning": None or what mixes}."""
    from viewclr.eval.report import report

    text, _ = comparison_tables(table, per_seed, methods)
    result = {"seeds": list(seeds), "methods": list(methods), "table": table, "provenance": provenance_of}
    write_json(out / "results.json", result)
    per_view_bars(table, per_seed, methods, out / "per_view.png")
    report([run for run in runs if run.is_dir()], out / "report.md")
    warning = f"**Warning:** {provenance_of['warning']}.\n\n" if provenance_of["warning"] else ""
    (out / "results.md").write_text(f"# Comparison\n\n{warning}{text}\nPlots: per_view.png; curves: report.md.\n")


def per_view_bars(table: dict, per_seed: dict, methods: list[str], path: Path) -> None:
    """One panel per evaluation (and dataset), a bar per method and test group: the mean over seeds, the sample
    std (ddof 1) as its error bar, each seed's top-1 as a point, and the chance level as a dashed line."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    from viewclr.data.index import view_label

    modes = evaluation_keys(table, methods)
    seeds = list(per_seed)
    figure, axes = plt.subplots(1, len(modes), figsize=(5.5 * len(modes), 3.8), dpi=110, sharey=True, squeeze=False)
    for axis, mode in zip(axes[0], modes, strict=True):
        first = _first_result(per_seed, mode)
        groups = list(first["groups"])
        names = [n for n in methods if mode in table.get(n, {})]
        width = 0.8 / max(len(names), 1)
        for i, name in enumerate(names):
            cells = table[name][mode]
            means = [100 * np.mean(cells[g]) for g in groups]
            stds = [100 * np.std(cells[g], ddof=1) if len(cells[g]) > 1 else 0.0 for g in groups]
            x = np.arange(len(groups)) + (i - (len(names) - 1) / 2) * width
            bars = axis.bar(x, means, width, yerr=stds, capsize=2, label=METHODS[name].title)
            for j, g in enumerate(groups):
                axis.plot(
                    [x[j]] * len(cells[g]),
                    [100 * v for v in cells[g]],
                    "o",
                    markersize=3,
                    color="black",
                    markerfacecolor=bars[j].get_facecolor(),
                    zorder=3,
                )
        classes = first.get("classes_present") or first.get("classes")
        if classes:
            axis.axhline(100 / classes, color="grey", linestyle="--", linewidth=1, label="chance")
        axis.set_xticks(np.arange(len(groups)), [view_label(g) for g in groups])
        axis.set_title(evaluation_name(mode))
        axis.grid(axis="y", alpha=0.3)
    spread = (
        f"mean ± sample std over seeds {', '.join(map(str, seeds))}; points: each seed"
        if len(seeds) > 1
        else (f"seed {seeds[0]}")
    )
    axes[0][0].set_ylabel(f"top-1 (%), {spread}" if len(seeds) == 1 else "top-1 (%)")
    figure.suptitle(f"top-1 per test view: {spread}", fontsize=9)
    axes[0][-1].legend(fontsize=7, loc="center left", bbox_to_anchor=(1.0, 0.5), frameon=False)
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)
