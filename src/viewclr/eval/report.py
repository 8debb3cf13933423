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
from viewclr.metrics import read_metrics

STAGES = ("stage1", "stage2", "infonce")


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _curves(runs: dict[str, Path], prefix: str, title: str, out: Path, ylabel: str) -> Path | None:
    """One panel per stage kind, one line per run × metric with `prefix`."""
    plt = _plt()
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
                series.append((f"{name} {stage} {key.removeprefix(prefix)}", points))
            offset += max(r["step"] for r in records)
    if not series:
        return None
    figure, axis = plt.subplots(figsize=(8, 4), dpi=110)
    for label, points in series:
        xs, ys = zip(*points, strict=True)
        axis.plot(xs, ys, label=label, linewidth=1.2, marker="o" if len(xs) < 20 else None, markersize=3)
    axis.set_xlabel("step (stages one after another)")
    axis.set_ylabel(ylabel)
    axis.set_title(title)
    axis.legend(fontsize=6, loc="center left", bbox_to_anchor=(1.0, 0.5), frameon=False)
    axis.grid(alpha=0.3)
    figure.tight_layout()
    figure.savefig(out)
    plt.close(figure)
    return out


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


def report(run_dirs: list[str | Path], out: str | Path) -> Path:
    runs = {}
    for run in map(Path, run_dirs):
        if not run.is_dir():
            raise DatasetError(f"{run} is not a run folder (an out_dir of viewclr pretrain or eval)")
        runs[run.name] = run
    out = Path(out)
    folder = out.parent / (out.stem + "_files")
    folder.mkdir(parents=True, exist_ok=True)
    lines = [f"# viewclr report: {', '.join(runs)}", ""]

    def image(path: Path | None, caption: str) -> None:
        if path is not None:
            lines.extend([f"![{caption}]({path.relative_to(out.parent).as_posix()})", ""])

    lines += ["## Pretraining", ""]
    image(_curves(runs, "loss/", "loss terms", folder / "losses.png", "loss"), "loss curves")
    image(_curves(runs, "train/pretext_acc", "pretext accuracy (Fig. 5)", folder / "pretext.png", "top-1"), "pretext")
    title = "instance accuracy: own key nearest among the batch's keys (chance 1/batch)"
    image(_curves(runs, "train/instance_acc", title, folder / "instance.png", "top-1"), "instance accuracy")
    image(_curves(runs, "knn/", "kNN top-1 per test view during pretraining", folder / "knn.png", "top-1"), "kNN")
    image(
        _curves(
            runs, "train/gen_", "viewpoint generator: net view change (°) and feature change", folder / "gen.png", ""
        ),
        "G",
    )

    rows = []
    classes = None
    for name, run in runs.items():
        for path in sorted(run.glob("**/results.json")):
            result = json.loads(path.read_text())
            rows.append((name, result, path))
            scores = path.parent / "classifier.pt"
            if classes is None and scores.is_file():
                import torch

                classes = torch.load(scores, map_location="cpu", weights_only=False).get("classes")
    if rows:
        by_protocol: dict[str, list] = {}
        for name, result, _ in rows:
            by_protocol.setdefault(result.get("protocol", "?"), []).append(result_row(name, result))
        lines += ["## Results (top-1, %)", ""]
        for protocol, table_rows in by_protocol.items():
            lines += [f"Protocol `{protocol}`:", "", results_table(table_rows), ""]
        for name, result, _path in rows:
            for group in result.get("groups", {}):
                label = f"{name}_{result['mode']}".replace(" ", "_")
                target = folder / f"confusion_{label}_{group}.png"
                image(_confusion(result, group, classes, target), f"confusion {name} {result['mode']} {group}")
    for name, run in runs.items():
        for png in sorted(run.glob("**/tsne*.png")):
            copy = folder / f"{name}_{png.name}"
            shutil.copyfile(png, copy)
            image(copy, f"t-SNE {name}")
    lines += ["## Configurations", ""]
    for name, run in runs.items():
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
