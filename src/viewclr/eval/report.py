"""`viewclr report RUN_DIR...`: one Markdown report of one run or a comparison of several — their configs, loss
curves, pretext accuracy, kNN top-1 per view during pretraining, the evaluation tables (the layout of the paper's
Table 1), confusion matrices and any t-SNE plots found in the runs."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from viewclr.data.index import view_label
from viewclr.errors import DatasetError
from viewclr.eval.tables import result_row, results_table
from viewclr.logger import read_metrics

STAGES = ("stage1", "stage2", "infonce")


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _curves(runs: dict[str, Path], prefix: str, title: str, out: Path, ylabel: str) -> Path | None:
    """One panel per stage kind, one line per run × metric with `prefix`."""
    series = []
    for name, run in runs.items():
        offset = 0
        for stage in STAGES:
            records = read_metrics(run / stage)
            if not records:
                continue
            keys = sorted({k for r in records for k in r if k.startswith(prefix)})
            for key in keys:
                points = [(r["step"] + offset, r[key]) for r in records if key in r]
                parts = [name, *([] if name.split("/")[-1] == stage else [stage]), key.removeprefix(prefix)]
                series.append((" · ".join(p for p in parts if p), points))
            offset += max(r["step"] for r in records)
    return _lines(series, out, "step (stages one after another)", ylabel, title, height=4, markers=True)


def _lines(
    series: list[tuple[str, list]],
    out: Path,
    xlabel: str,
    ylabel: str,
    title: str,
    height: float = 4,
    markers: bool = False,
) -> Path | None:
    """A line per (label, [(x, y), ...]) with the legend beside the panel, as PNG; None when there is none.
    `markers`: dots on short series."""
    if not series:
        return None
    plt = _plt()
    figure, axis = plt.subplots(figsize=(8, height), dpi=110)
    for label, points in series:
        xs, ys = zip(*points, strict=True)
        marker = "o" if markers and len(xs) < 20 else None
        axis.plot(xs, ys, label=label, linewidth=1.2, marker=marker, markersize=3)
    axis.set_xlabel(xlabel)
    axis.set_ylabel(ylabel)
    axis.set_title(title)
    axis.legend(fontsize=6, loc="center left", bbox_to_anchor=(1.0, 0.5), frameon=False)
    axis.grid(alpha=0.3)
    figure.tight_layout()
    figure.savefig(out)
    plt.close(figure)
    return out


def _evaluation_curves(rows: list[tuple[str, dict, Path]], out: Path) -> Path | None:
    """The linear probes' and finetunes' training loss per epoch (their metrics.jsonl), one line per result."""
    series = []
    for label, result, path in rows:
        points = [(r["step"], r["eval/loss"]) for r in read_metrics(path.parent) if "eval/loss" in r]
        if points:
            series.append((f"{label} · {result['mode']}", points))
    return _lines(series, out, "epoch", "training loss", "linear probe / finetune training", height=3.5)


def _confusion(result: dict, group: str, classes: list[str] | None, out: Path) -> Path | None:
    matrix = result["groups"][group].get("confusion")
    if not matrix:
        return None
    plt = _plt()
    figure, axis = plt.subplots(figsize=(6, 5), dpi=110)
    image = axis.imshow(matrix, cmap="Blues")
    labels = classes or [str(i) for i in range(len(matrix))]
    axis.set_xticks(range(len(labels)), labels, rotation=90, fontsize=6)
    axis.set_yticks(range(len(labels)), labels, fontsize=6)
    axis.set_xlabel("predicted")
    axis.set_ylabel("true")
    axis.set_title(f"{result['mode']} · {view_label(group)}")
    figure.colorbar(image, ax=axis, fraction=0.046)
    figure.tight_layout()
    figure.savefig(out)
    plt.close(figure)
    return out


def run_names(folders: list[Path]) -> dict[str, Path]:
    """{name: folder}: each folder named by the shortest tail of its path that no other folder shares
    ('seed0/infonce' and 'seed1/infonce', not 'infonce' twice)."""
    for depth in range(1, max((len(f.parts) for f in folders), default=1) + 1):
        names = ["/".join(f.parts[-depth:]) for f in folders]
        if len(set(names)) == len(names):
            return dict(zip(names, folders, strict=True))
    return {str(f): f for f in folders}


def _pretrain_runs(folder: Path) -> list[Path]:
    """`folder` if it is a pretraining run (a stage folder with metrics inside), else the runs below it (a
    comparison's seed*/<method> folders)."""

    def is_run(d: Path) -> bool:
        return any((d / stage / "metrics.jsonl").is_file() for stage in STAGES)

    if is_run(folder):
        return [folder]
    return sorted(d for d in folder.rglob("*") if d.is_dir() and is_run(d) and ".earlier-" not in d.as_posix())


def _evaluation_label(result: dict) -> str:
    """The evaluation column: the mode, and for a test how it was tested (two tests of one encoder differ)."""
    if result.get("mode") == "test":
        windows = result.get("windows") or "all"
        return f"test, {result.get('crops', '?')} crops × {windows} windows"
    return result.get("mode", "")


def report(run_dirs: list[str | Path], out: str | Path) -> Path:
    given = []
    for run in map(Path, run_dirs):
        if not run.is_dir():
            raise DatasetError(f"{run} is not a run folder (an out_dir of viewclr pretrain or eval)")
        given.append(run)
    runs = run_names(given)
    curves = run_names([r for run in given for r in _pretrain_runs(run)])
    out = Path(out)
    folder = out.parent / (out.stem + "_files")
    folder.mkdir(parents=True, exist_ok=True)
    lines = [f"# viewclr report: {', '.join(runs)}", ""]

    def image(path: Path | None, caption: str) -> None:
        if path is not None:
            lines.extend([f"![{caption}]({path.relative_to(out.parent).as_posix()})", ""])

    lines += ["## Pretraining", ""]
    image(_curves(curves, "loss/", "loss terms", folder / "losses.png", "loss"), "loss curves")
    image(_curves(curves, "train/pretext_acc", "pretext accuracy (Fig. 5)", folder / "pretext.png", "top-1"), "pretext")
    title = "instance accuracy: own key nearest among the batch's keys (chance 1/batch)"
    image(_curves(curves, "train/instance_acc", title, folder / "instance.png", "top-1"), "instance accuracy")
    image(_curves(curves, "knn/", "kNN top-1 per test view during pretraining", folder / "knn.png", "top-1"), "kNN")
    image(
        _curves(
            curves, "train/gen_", "viewpoint generator: net view change (°) and feature change", folder / "gen.png", ""
        ),
        "G",
    )

    rows = []
    classes = None
    for name, run in runs.items():
        for path in sorted(run.glob("**/results.json")):
            result = json.loads(path.read_text())
            if not isinstance(result, dict) or "mode" not in result or not result.get("groups"):
                continue  # not one evaluation's result (a comparison's summary)
            if ".earlier-" in path.as_posix():
                continue  # set aside by a later run
            where = path.parent.relative_to(run)
            where = where.parent if where.name == result["mode"] else where  # seed0/infonce/probe: seed0/infonce
            label = name if where == Path(".") else f"{name}/{where.as_posix()}"
            rows.append((label, result, path))
            scores = path.parent / "classifier.pt"
            if classes is None and scores.is_file():
                import torch

                classes = torch.load(scores, map_location="cpu", weights_only=False).get("classes")
    if rows:
        by_protocol: dict[str, list] = {}
        for label, result, _ in rows:
            row = result_row(label, result) | {"evaluation": _evaluation_label(result)}
            by_protocol.setdefault(result.get("protocol", "unknown"), []).append(row)
        lines += ["## Results (top-1, %)", ""]
        for protocol, table_rows in by_protocol.items():
            lines += [f"Protocol `{protocol}`:", "", results_table(table_rows), ""]
        image(_evaluation_curves(rows, folder / "evaluation.png"), "evaluation training")
        for label, result, _path in rows:
            for group in result.get("groups", {}):
                slug = f"{label}_{_evaluation_label(result)}".replace("/", "_").replace(" ", "_").replace(",", "")
                target = folder / f"confusion_{slug}_{group}.png"
                image(_confusion(result, group, classes, target), f"confusion {label} {result['mode']} {group}")
    for name, run in runs.items():
        for png in sorted(run.glob("**/tsne*.png")):
            copy = folder / f"{name.replace('/', '_')}_{png.name}"
            shutil.copyfile(png, copy)
            image(copy, f"t-SNE {name}")
    lines += ["## Configurations", ""]
    for name, run in curves.items():
        for stage in STAGES:
            config = run / stage / "config.yaml"
            if config.is_file():
                lines += [
                    f"<details><summary>{name} · {stage}</summary>",
                    "",
                    "```yaml",
                    config.read_text().strip(),
                    "```",
                    "",
                    "</details>",
                    "",
                ]
    out.write_text("\n".join(lines) + "\n")
    return out
