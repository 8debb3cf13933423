"""`viewclr bench` (`make bench`): one table of this machine's speed and memory figures.

It runs the benchmarks of `viewclr.studies.benchmarks` (also reachable as the repository's benchmarks/*.py) — each
measures one thing in fresh processes and documents how — and gathers their results: loader clips/s from raw 1080p
videos vs the prepared cache, S3D and viewpoint-generator forward + backward, the MoCo vs ViewCLR training step
(time and memory, as ratios measured in one run), the training augmentation against kornia's own pipeline,
viewclr's MoCo step against a textbook one, and the demo's wall time (from runs/demo/timings.json, written by
`make demo`). On a CUDA machine it adds the GPU rows at the paper's settings (bf16, batch 32, 32×128², S3D
width 1) with the GPU's name.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import torch

from viewclr.errors import ConfigError, DatasetError
from viewclr.fileio import write_json
from viewclr.studies.benchmarks.textbook import UNSPLIT


def _run(benchmark: str, *args: str) -> str:
    """A benchmark of this package in a fresh process (it works from an installed package, no checkout needed)."""
    module = f"viewclr.studies.benchmarks.{benchmark}"
    print(f"· {benchmark} {' '.join(args)}", flush=True)
    done = subprocess.run([sys.executable, "-m", module, *args], capture_output=True, text=True)
    if done.returncode:
        raise DatasetError(f"{module} failed: {done.stderr.strip().splitlines()[-1] if done.stderr else ''}")
    return done.stdout


def _last_json(output: str):
    return json.loads(output.strip().splitlines()[-1])


def _measured(out: Path, results: dict, key: str, benchmark: str, *args: str):
    """Run a benchmark, keep its whole output in out/KEY.txt at once (a suite stopped later keeps it) and its
    result (the output's last line, JSON) in results[KEY]."""
    output = _run(benchmark, *args)
    (out / f"{key}.txt").write_text(output)
    results[key] = _last_json(output)
    return results[key]


def run_bench(out: str | Path = "runs/bench", quick: bool = False, device: str = "auto", demo_timings="runs/demo"):
    """device: "cpu" (the CPU rows), "cuda" (the GPU rows: the paper's settings, the switches) or "auto" (the CPU
    rows, and the GPU rows when this machine has a GPU)."""
    if device not in ("auto", "cpu", "cuda"):
        raise ConfigError(None, f"--device {device}: one of auto, cpu, cuda")
    if device == "cuda" and not torch.cuda.is_available():
        raise ConfigError(None, "--device cuda: no CUDA device is available here (torch.cuda.is_available() is False)")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    rows: list[tuple[str, str, str]] = []
    results: dict = {}
    if device != "cuda":
        rows += _cpu_rows(out, quick, results)
    if device == "cuda" or (device == "auto" and torch.cuda.is_available()):
        rows += _gpu_rows(out, results)
    if device != "cuda":
        rows.append(_demo_row(Path(demo_timings)))

    table = "| measurement | device | value |\n|---|---|---|\n" + "\n".join(f"| {a} | {b} | {c} |" for a, b, c in rows)
    (out / "bench.md").write_text(table + "\n")
    write_json(out / "bench.json", results)
    print("\n" + table + f"\n\nwritten to {out / 'bench.md'} and {out / 'bench.json'}")
    return table


def _cpu_rows(out: Path, quick: bool, results: dict) -> list[tuple[str, str, str]]:
    """This machine's CPU: loader, models, the two steps, augmentation, viewclr's step against a textbook one."""
    cpu = f"CPU ({os.cpu_count()} cores)"
    rows: list[tuple[str, str, str]] = []
    _run("loader", "--out", str(out / "loader"), *(["--quick"] if quick else []))
    loader = json.loads((out / "loader" / "results.json").read_text())
    results["loader"] = loader
    for r in loader["per_core"]:
        rows.append(
            (
                f"loader, {r['frames']}×{r['short_side']} clips/s/core: raw 1080p → cache at {r['cache_short_side']}",
                cpu,
                f"{r['raw']:.1f} → {r['cache']:.1f} ({r['cache'] / r['raw']:.1f}×)",
            )
        )
    rows.append(("loader, 2 workers, cache, 16×112 clips/s", cpu, f"{loader['two_workers_16x112_clips_per_s']:.0f}"))

    rounds = "1" if quick else "3"
    models = _measured(
        out, results, "models_cpu", "models", "--rounds", rounds, *(["--frames", "16", "--size", "64"] if quick else [])
    )
    rows += _model_rows(models, cpu)

    pretrain = _measured(out, results, "pretrain_cpu", "pretrain", "--rounds", "2" if quick else "5")
    rows += _step_rows(pretrain, cpu, "synth_cpu preset (S3D ×0.25, batch 16, 16×64²)")

    augment = _measured(out, results, "augment_cpu", "augment", "--rounds", "3" if quick else "7")
    ms, speedup = augment["ms"], augment["speedup"]
    rows.append(("augmentation per batch, synth_cpu (16 videos × 2 clips × 16×64²): kornia → viewclr", cpu,
                 f"{ms['augmentation, kornia']:.0f} → {ms['augmentation, viewclr']:.0f} ms "
                 f"({speedup['augmentation']:.2f}×, goal ≥ 2); hue step {speedup['hue']:.1f}×"))  # fmt: skip

    textbook = _measured(out, results, "textbook_cpu", "textbook", "--rounds", "3" if quick else "7")
    rows.append(("MoCo step, synth_cpu: viewclr / textbook MoCo v2 (plain BatchNorm)", cpu,
                 f"{textbook['ms']['viewclr MoCo']:.0f} / {textbook['ms']['textbook MoCo v2']:.0f} ms = "
                 f"{textbook['ratio']:.2f}× (goal ≤ 1.0)"))  # fmt: skip
    if "split_bn_cost" in textbook:
        rows.append(("MoCo step, synth_cpu: viewclr with / without its per-GPU BatchNorm emulation", cpu,
                     f"{textbook['ms']['viewclr MoCo']:.0f} / {textbook['ms'][UNSPLIT]:.0f} ms = "
                     f"{100 * textbook['split_bn_cost']:+.1f} % (goal: a few percent)"))  # fmt: skip
    return rows


def _gpu_rows(out: Path, results: dict) -> list[tuple[str, str, str]]:
    """This machine's GPU at the paper's settings in bf16, then the steps/s with every switch and without each."""
    gpu = torch.cuda.get_device_name()
    rows: list[tuple[str, str, str]] = []
    models = _measured(
        out, results, "models_gpu", "models", "--device", "cuda", "--batch", "32", "--amp", "--widths", "1.0"
    )
    rows += _model_rows(models, gpu + ", bf16")
    pretrain = _measured(out, results, "pretrain_gpu", "pretrain", "--config", "ntu60_cvs", "--device", "cuda")
    rows += _step_rows(pretrain, gpu + ", bf16", "paper settings (S3D ×1, batch 32, 32×128²)")
    toggles = _measured(
        out, results, "switches_gpu", "pretrain", "--config", "ntu60_cvs", "--device", "cuda", "--switches"
    )
    for label, rate in toggles["steps_per_second"].items():
        rows.append((f"steps/s at the paper's settings, {label}: MoCo · ViewCLR", gpu,
                     f"{rate['infonce']:.2f} · {rate['viewclr']:.2f}"))  # fmt: skip
    return rows


def _demo_row(folder: Path) -> tuple[str, str, str]:
    cpu = f"CPU ({os.cpu_count()} cores)"
    timings = folder / "timings.json"
    seconds = json.loads(timings.read_text()).get("demo/first_run_seconds") if timings.is_file() else None
    if seconds is None:
        return ("make demo, wall time", cpu, f"not measured: no first run's time in {timings} (run make demo first)")
    return ("make demo, wall time of a first run", cpu, f"{seconds / 60:.1f} min")


def _model_rows(models: list[dict], where: str) -> list[tuple[str, str, str]]:
    rows = []
    for i in range(0, len(models), 2):
        s3d, gen = models[i], models[i + 1]
        shape = "×".join(map(str, s3d["input"]))
        rows.append(
            (
                f"S3D ×{s3d['width']} forward+backward, batch {s3d['batch']} × {shape}",
                where,
                f"{1000 * s3d['seconds']:.0f} ms, {s3d['peak_mb']:.0f} MB",
            )
        )
        rows.append(
            (
                f"viewpoint generator (at S3D ×{gen['width']}'s split) forward+backward",
                where,
                f"{1000 * gen['seconds']:.0f} ms ({100 * gen['seconds'] / s3d['seconds']:.0f}% of S3D), "
                f"{gen['peak_mb']:.0f} MB",
            )
        )
    return rows


def _step_rows(pretrain: dict, where: str, setting: str) -> list[tuple[str, str, str]]:
    rate, memory = pretrain["rate"], pretrain["memory_mb"]
    return [
        (f"MoCo training step, {setting}", where, f"{rate['infonce']:.1f} videos/s, {memory['infonce']:.0f} MB"),
        (f"ViewCLR training step, {setting}", where, f"{rate['viewclr']:.1f} videos/s, {memory['viewclr']:.0f} MB"),
        (
            "ViewCLR / MoCo step, one run",
            where,
            f"{pretrain['time_ratio']:.2f}× time, {pretrain['memory_ratio']:.2f}× memory (goal ≤ 2.0× time)",
        ),
    ]
