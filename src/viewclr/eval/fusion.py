"""Late fusion of two models' per-video scores (the paper's "ViewCLR + Poses": ViewCLR's with the 2s-AGCN joint
stream's, `studies.pose`), with the weight given or chosen on validation scores (`choose_weight`): scores of both
models on held-out training subjects, never the test views."""

from __future__ import annotations

from pathlib import Path

import torch

from viewclr.checkpoint import load_weights
from viewclr.errors import ConfigError, DatasetError
from viewclr.eval.tables import results_table
from viewclr.fileio import write_json


def read_scores(path: str | Path) -> dict:
    """A scores file: {"kind": "probabilities" | "logits", "groups": {group: {"names", "labels", "scores"}}}, or a
    flat {"names", "scores"[, "labels"]} (a user's model), which becomes one group "all"."""
    obj = load_weights(path)
    if "groups" not in obj:
        if "names" not in obj or "scores" not in obj:
            raise DatasetError(f"{path} is not a scores file (needs names and scores, per group or flat)")
        obj = {"kind": obj.get("kind", "logits"), "groups": {"all": obj}}
    return obj


def _probabilities(entry: dict, kind: str) -> torch.Tensor:
    scores = torch.as_tensor(entry["scores"]).float()
    return scores if kind == "probabilities" else scores.softmax(1)


WEIGHTS = tuple(i / 20 for i in range(21))  # the grid choose_weight searches: 0, 0.05, …, 1


def _joined(a: dict, b: dict, first, second) -> dict[str, tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    """Per group of `a`: (probabilities of a, of b, labels) over the sample names both have. A group the two files
    share no name in stops with one line naming both files."""
    joined = {}
    for group, entry in a["groups"].items():
        other = b["groups"].get(group) or b["groups"].get("all")
        if other is None:
            raise DatasetError(f"{second} has no scores for group {group} (and no flat 'all' group)")
        position = {name: i for i, name in enumerate(other["names"])}
        common = [i for i, name in enumerate(entry["names"]) if name in position]
        if not common:
            raise DatasetError(f"{first} and {second} share no sample names in group {group}")
        pa = _probabilities(entry, a["kind"])[common]
        pb = _probabilities(other, b["kind"])[[position[entry["names"][i]] for i in common]]
        joined[group] = (pa, pb, torch.as_tensor(entry["labels"])[common], len(entry["names"]) - len(common))
    return joined


def choose_weight(first: str | Path, second: str | Path) -> tuple[float, dict[float, float]]:
    """The weight of `first` (on `WEIGHTS`) whose fusion is most accurate on these validation scores, and the
    top-1 at every weight; of equally accurate weights, the one nearest 0.5."""
    joined = _joined(read_scores(first), read_scores(second), first, second)
    accuracy = {}
    for w in WEIGHTS:
        right = sum(int(((w * pa + (1 - w) * pb).argmax(1) == y).sum()) for pa, pb, y, _ in joined.values())
        accuracy[w] = right / sum(len(y) for _, _, y, _ in joined.values())
    best = max(accuracy.values())
    return min((w for w in WEIGHTS if accuracy[w] == best), key=lambda w: abs(w - 0.5)), accuracy


def fuse(
    first: str | Path,
    second: str | Path,
    weight: float | None = 0.5,
    out: str | Path | None = None,
    validation: tuple[str | Path, str | Path] | None = None,
) -> dict:
    """weight·softmax(first) + (1 − weight)·softmax(second), matched by sample name within each group of `first`
    (a flat second file is searched for every group). Reports top-1 of each stream and of the fusion.
    `validation`: (first's, second's) scores on a validation split; the weight is then chosen on them
    (`choose_weight`) and `weight` must be None."""
    chosen_on = None
    if validation is not None:
        if weight is not None:
            raise ConfigError(None, "give --weight or --validation, not both")
        weight, curve = choose_weight(*validation)
        chosen_on = {"files": [str(v) for v in validation], "top1": {str(w): a for w, a in curve.items()}}
    if weight is None or not 0.0 <= weight <= 1.0:
        raise ConfigError(None, f"--weight must be in [0, 1], got {weight}")
    a, b = read_scores(first), read_scores(second)
    groups = {}
    for group, (pa, pb, labels, missing) in _joined(a, b, first, second).items():
        fused = weight * pa + (1 - weight) * pb
        groups[group] = {
            "videos": len(labels),
            "missing": missing,
            "top1": float((fused.argmax(1) == labels).float().mean()),
            "top1_first": float((pa.argmax(1) == labels).float().mean()),
            "top1_second": float((pb.argmax(1) == labels).float().mean()),
        }
    # the protocol the first stream was tested on (scores files record it; older ones are guessed from the groups)
    protocol = a.get("protocol") or b.get("protocol") or ("cvs" if set(groups) >= {"0", "45", "90"} else "all")
    first_modality, second_modality = a.get("modality", "RGB"), b.get("modality", "Pose")
    results = {
        "mode": "fuse",
        "weight": weight,
        "weight_chosen_on": chosen_on,
        "first": str(first),
        "second": str(second),
        "protocol": protocol,
        "modality": f"{first_modality} + {second_modality}",
        "groups": groups,
    }
    if out is not None:
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)

        def row(method, modality, key):
            values = {g: r[key] for g, r in groups.items()}
            return {
                "method": method,
                "evaluation": "fusion",
                "modality": modality,
                "protocol": protocol,
                "groups": values,
            }

        rows = [
            row("first", first_modality, "top1_first"),
            row("second", second_modality, "top1_second"),
            row(f"fused (w = {weight:g})", f"{first_modality} + {second_modality}", "top1"),
        ]
        (out / "results.md").write_text(results_table(rows) + "\n")
        write_json(out / "results.json", results)
    return results
