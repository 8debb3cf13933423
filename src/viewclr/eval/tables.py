"""The one results table of the library, in the layout of the paper's Table 1: a row per method and evaluation, a
column per test group (CVS1/2/3 = 0°, 45°, 90° for CVS; the protocol's test split otherwise), top-1 in %.

A cell is one result's top-1, or several seeds' (mean ± sample standard deviation, ddof 1: with 2-3 seeds the
population std understates the spread by a factor sqrt(n / (n - 1)))."""

from __future__ import annotations

import numpy as np

from viewclr.data.index import view_label

EVALUATIONS = {"probe": "linear probe", "finetune": "finetune", "test": "test", "knn": "kNN"}


def group_title(protocol: str, index: int, group: str) -> str:
    if protocol.startswith("cvs"):
        return f"CVS{index + 1} ({view_label(group)})"
    return protocol.upper() if group == "all" else view_label(group)


def cell(value, seeds: bool = False) -> str:
    """'–' for none, '63.2' for one top-1 (or a list of one), '58.6 ± 4.0' for several (mean ± sample std), with
    `seeds` each one after it: '58.6 ± 4.0 (55.0, 58.0, 62.8)'."""
    if value is None or (isinstance(value, list) and not value):
        return "–"
    if isinstance(value, list) and len(value) == 1:
        value = value[0]
    if isinstance(value, list):
        each = f" ({', '.join(f'{100 * v:.1f}' for v in value)})" if seeds else ""
        return f"{100 * np.mean(value):.1f} ± {100 * np.std(value, ddof=1):.1f}{each}"
    return f"{100 * value:.1f}"


def results_table(rows: list[dict], seeds: bool = False) -> str:
    """Markdown. Each row: {"method", "evaluation" (probe | finetune | … or free text), "modality", "protocol",
    "groups": {group: top-1 | [top-1 per seed]}}; a row's M column is its input (RGB, RGB residual, Pose).
    `seeds`: a cell of several seeds lists each seed's top-1 after the mean ± sample std."""
    groups: list[str] = []
    for row in rows:
        groups += [g for g in row["groups"] if g not in groups]
    if not groups:
        raise ValueError("a results table needs at least one test group")
    protocol = next((row.get("protocol", "") for row in rows), "")
    titles = [group_title(protocol, i, g) for i, g in enumerate(groups)]
    lines = ["| Method | Evaluation | M | " + " | ".join(titles) + " |", "|---|---|---|" + "---:|" * len(groups)]
    for row in rows:
        evaluation = EVALUATIONS.get(row.get("evaluation", ""), row.get("evaluation", ""))
        cells = " | ".join(cell(row["groups"].get(g), seeds) for g in groups)
        lines.append(f"| {row['method']} | {evaluation} | {row.get('modality', 'RGB')} | {cells} |")
    return "\n".join(lines)


def result_row(method: str, result: dict) -> dict:
    """A results.json (probe, finetune, test, kNN, pose) as a row of `results_table`."""
    groups = {g: r.get("top1") for g, r in result.get("groups", {}).items()}
    return {
        "method": method,
        "evaluation": result.get("mode", ""),
        "modality": result.get("modality", "RGB"),
        "protocol": result.get("protocol", ""),
        "groups": groups,
    }
