"""Late fusion of two models' per-video scores (the paper's "ViewCLR + Poses"; the synthetic benchmark's pose
stream is `viewclr.synth.pose`)."""

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


def fuse(first: str | Path, second: str | Path, weight: float, out: str | Path | None = None) -> dict:
    """weight·softmax(first) + (1 − weight)·softmax(second), matched by sample name within each group of `first`
    (a flat second file is searched for every group). Reports top-1 of each stream and of the fusion."""
    if not 0.0 <= weight <= 1.0:
        raise ConfigError(None, f"--weight must be in [0, 1], got {weight}")
    a, b = read_scores(first), read_scores(second)
    groups = {}
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
        labels = torch.as_tensor(entry["labels"])[common]
        fused = weight * pa + (1 - weight) * pb
        groups[group] = {
            "videos": len(common),
            "missing": len(entry["names"]) - len(common),
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
