"""What stage 2 did during training, from a finished study's logs (docs/results.md, "Why").

    python scripts/stage2_metrics.py runs/study

For every seed folder and every ViewCLR variant of the study: the λ-aware pretext accuracy (own *or* partner's
key, `train/pretext_acc`) averaged over stage 2's logged steps, G's net change of viewpoint (`train/gen_view_deg`,
the angle of R_K·Rᵀ) after the first logged step, at stage 2's middle and end and its maximum, and how far G moves
its input (`train/gen_change`, ‖G(g) − g‖/‖g‖) at the first and last logged step; for InfoNCE, the pretext
accuracy of its continuation over the same epochs. Then the mean ± std (population) over seeds. Reads only the
runs' metrics.jsonl; trains and evaluates nothing.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

from viewclr.logger import read_metrics
from viewclr.methods import METHODS
from viewclr.studies.compare import stage1_dir

VARIANTS = [m.name for m in METHODS.values() if m.objective == "viewclr"]  # each has a stage 2 in a study's seed folder


def stage2_row(records: list[dict]) -> dict[str, float]:
    """One stage 2's figures (those it logged) from its metrics records."""
    logged = [r for r in records if "train/pretext_acc" in r]
    if not logged:
        return {}
    row = {"pretext": statistics.fmean(r["train/pretext_acc"] for r in logged)}
    turned = [r for r in logged if "train/gen_view_deg" in r]
    if turned:
        middle = min(turned, key=lambda r: abs(r["step"] - turned[-1]["step"] / 2))
        degrees = [r["train/gen_view_deg"] for r in turned]
        row |= {
            "deg_first": degrees[0],
            "deg_middle": middle["train/gen_view_deg"],
            "deg_end": degrees[-1],
            "deg_max": max(degrees),
            "change_first": turned[0]["train/gen_change"],
            "change_end": turned[-1]["train/gen_change"],
        }
    return row


def continuation_pretext(study: Path, seed: str) -> float | None:
    """InfoNCE's pretext accuracy averaged over the steps after its shared stage 1 (the continuation)."""
    stage1 = read_metrics(stage1_dir(study / seed))
    if not stage1:
        return None
    start = max(r.get("step", 0) for r in stage1)
    logged = [r for r in read_metrics(study / seed / "infonce" / "infonce") if "train/pretext_acc" in r]
    later = [r["train/pretext_acc"] for r in logged if r["step"] > start]
    return statistics.fmean(later) if later else None


def mean_std(values: list[float], digits: int) -> str:
    if not values:
        return "–"
    return f"{statistics.fmean(values):.{digits}f} ± {statistics.pstdev(values):.{digits}f}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("study", type=Path, help="a study folder (scripts/study.py's --out): seed0/, seed1/, …")
    args = parser.parse_args()
    seeds = sorted(p.name for p in args.study.glob("seed*") if p.is_dir())
    if not seeds:
        raise SystemExit(f"{args.study}: no seed folders (seed0/, seed1/, …)")
    rows: dict[str, list[dict]] = {}
    print("| seed | run | pretext acc. | view change first / middle / end / max (°) | ‖G(g)−g‖/‖g‖ first → end |")
    print("|---|---|---:|---|---|")
    for seed in seeds:
        infonce = continuation_pretext(args.study, seed)
        if infonce is not None:
            rows.setdefault("infonce", []).append({"pretext": infonce})
            print(f"| {seed} | InfoNCE continued | {infonce:.2f} | | |")
        for variant in VARIANTS:
            row = stage2_row(read_metrics(args.study / seed / variant / "stage2"))
            if not row:
                continue
            rows.setdefault(variant, []).append(row)
            turn = change = ""
            if "deg_end" in row:
                turn = " / ".join(f"{row[k]:.1f}" for k in ("deg_first", "deg_middle", "deg_end", "deg_max"))
                change = f"{row['change_first']:.2f} → {row['change_end']:.2f}"
            print(f"| {seed} | {variant} | {row['pretext']:.2f} | {turn} | {change} |")
    print(f"\nMean ± std over {len(seeds)} seeds:\n")
    print("| run | pretext acc. | view change at the end (°) | maximum (°) |\n|---|---:|---:|---:|")
    for name, found in rows.items():
        ends = [r["deg_end"] for r in found if "deg_end" in r]
        peaks = [r["deg_max"] for r in found if "deg_max" in r]
        print(f"| {name} | {mean_std([r['pretext'] for r in found], 2)} | {mean_std(ends, 1)} | {mean_std(peaks, 1)} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
