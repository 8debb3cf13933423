"""`make bench` (`python -m benchmarks` from the repository's root): one table of this machine's speed and memory.

    python -m benchmarks                    # the CPU rows, and the GPU rows when there is a GPU
    python -m benchmarks --device cuda      # the GPU rows only (the paper's settings, each GPU switch)
    python -m benchmarks --quick            # fewer repetitions (a smoke test of the suite)

It runs the benchmarks beside it (`python -m benchmarks.NAME` runs one) — each measures one thing in fresh
processes and documents how — and gathers their results: loader clips/s from raw 1080p
videos vs the prepared cache, S3D and viewpoint-generator forward + backward, the MoCo vs ViewCLR training step
(time and memory, as ratios measured in one run), the training augmentation against kornia's own pipeline,
viewclr's MoCo step against a textbook one, one SkeletonCLR and one 2s-AGCN step, and the demo's wall time
(from runs/demo/timings.json, written by `make demo`). On a CUDA machine it adds the GPU rows at the paper's
settings (bf16, batch 32, 32×128², S3D width 1) with the GPU's name, and both steps' rate with each GPU switch
off (`--device cuda`: those rows alone).
A benchmark that fails is a row saying so; the others still run.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import torch

from benchmarks import device_label
from benchmarks.textbook import UNSPLIT
from viewclr.errors import ConfigError, ViewCLRError
from viewclr.fileio import write_json

Row = tuple[str, str, str]


class BenchmarkFailed(ViewCLRError):
    """A benchmark's process ended with an error (its last line says which)."""


ROOT = Path(__file__).resolve().parents[1]


def _run(benchmark: str, *args: str) -> str:
    """One benchmark (`python -m benchmarks.NAME`) in a fresh process, from the repository's root."""
    module = f"benchmarks.{benchmark}"
    print(f"· {benchmark} {' '.join(args)}", flush=True)
    done = subprocess.run([sys.executable, "-m", module, *args], capture_output=True, text=True, cwd=ROOT)
    if done.returncode:
        raise BenchmarkFailed(f"{module} failed: {done.stderr.strip().splitlines()[-1] if done.stderr else ''}")
    return done.stdout


def _last_json(output: str):
    return json.loads(output.strip().splitlines()[-1])


class _Suite:
    """The benchmarks of one `python -m benchmarks`: each runs in its own process; its whole output is kept in
    out/KEY.txt as soon as it ends (a suite stopped later keeps it), its result in `results[KEY]`. One that fails
    becomes a row saying so, and the others still run."""

    def __init__(self, out: Path):
        self.out, self.results, self.failures = out, {}, []

    def rows(self, key: str, where: str, command: list[str], rows_of, read=_last_json) -> list[Row]:
        """The rows `rows_of(result)` of benchmark `command` ([name, *args]); `read(output)` is its result."""
        try:
            output = _run(*command)
        except BenchmarkFailed as err:
            print(f"  {err}", flush=True)
            self.failures.append(str(err))
            self.results[key] = {"failed": str(err)}
            (self.out / f"{key}.txt").write_text(f"{err}\n")
            return [(" ".join(command), where, f"failed: {err}")]
        (self.out / f"{key}.txt").write_text(output)
        self.results[key] = read(output)
        return rows_of(self.results[key])


def run_bench(out: str | Path = "runs/bench", quick: bool = False, device: str = "auto", demo_timings="runs/demo"):
    """device: "cpu" (the CPU rows), "cuda" (the GPU rows: the paper's settings, the switches) or "auto" (the CPU
    rows, and the GPU rows when this machine has a GPU). The table is written whatever fails; a failed benchmark
    is a row saying so, and then `BenchmarkFailed` is raised at the end."""
    if device not in ("auto", "cpu", "cuda"):
        raise ConfigError(None, f"--device {device}: one of auto, cpu, cuda")
    if device == "cuda" and not torch.cuda.is_available():
        raise ConfigError(None, "--device cuda: no CUDA device is available here (torch.cuda.is_available() is False)")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    suite = _Suite(out)
    rows: list[Row] = []
    if device != "cuda":
        rows += _cpu_rows(suite, quick)
    if device == "cuda" or (device == "auto" and torch.cuda.is_available()):
        rows += _gpu_rows(suite)
    if device != "cuda":
        rows.append(_demo_row(Path(demo_timings)))

    table = "| measurement | device | value |\n|---|---|---|\n" + "\n".join(f"| {a} | {b} | {c} |" for a, b, c in rows)
    (out / "bench.md").write_text(table + "\n")
    write_json(out / "bench.json", suite.results)
    print("\n" + table + f"\n\nwritten to {out / 'bench.md'} and {out / 'bench.json'}")
    if suite.failures:
        raise BenchmarkFailed(
            f"{len(suite.failures)} benchmark(s) failed, the table has the rest; first: {suite.failures[0]}"
        )
    return table


def _cpu_rows(suite: _Suite, quick: bool) -> list[Row]:
    """This machine's CPU: loader, models, the two steps, augmentation, viewclr's step against a textbook one."""
    cpu = device_label()
    loader_out = suite.out / "loader"

    def loader_rows(loader: dict) -> list[Row]:
        rows = [
            (
                f"loader, {r['frames']}×{r['short_side']} clips/s/core: raw 1080p → cache at {r['cache_short_side']}",
                cpu,
                f"{r['raw']:.1f} → {r['cache']:.1f} ({r['cache'] / r['raw']:.1f}×)",
            )
            for r in loader["per_core"]
        ]
        return rows + [
            ("loader, 2 workers, cache, 16×112 clips/s", cpu, f"{loader['two_workers_16x112_clips_per_s']:.0f}")
        ]

    def augment_rows(augment: dict) -> list[Row]:
        ms, speedup = augment["ms"], augment["speedup"]
        return [
            (
                "augmentation per batch, synth_cpu (16 videos × 2 clips × 16×64²): kornia → viewclr",
                cpu,
                f"{ms['augmentation, kornia']:.0f} → {ms['augmentation, viewclr']:.0f} ms "
                f"({speedup['augmentation']:.2f}×, goal ≥ 2); hue step {speedup['hue']:.1f}×",
            )
        ]

    def textbook_rows(textbook: dict) -> list[Row]:
        ms = textbook["ms"]
        rows = [
            (
                "MoCo step, synth_cpu: viewclr / textbook MoCo v2 (plain BatchNorm)",
                cpu,
                f"{ms['viewclr MoCo']:.0f} / {ms['textbook MoCo v2']:.0f} ms = {textbook['ratio']:.2f}× (goal ≤ 1.0)",
            )
        ]
        if "split_bn_cost" in textbook:
            rows.append(
                (
                    "MoCo step, synth_cpu: viewclr with / without its per-GPU BatchNorm emulation",
                    cpu,
                    f"{ms['viewclr MoCo']:.0f} / {ms[UNSPLIT]:.0f} ms = "
                    f"{100 * textbook['split_bn_cost']:+.1f} % (goal: a few percent)",
                )
            )
        return rows

    rounds = "1" if quick else "3"
    small = ["--frames", "16", "--size", "64"] if quick else []
    return [
        *suite.rows(
            "loader",
            cpu,
            ["loader", "--out", str(loader_out), *(["--quick"] if quick else [])],
            loader_rows,
            read=lambda _: json.loads((loader_out / "results.json").read_text()),
        ),
        *suite.rows("models_cpu", cpu, ["models", "--rounds", rounds, *small], lambda r: _model_rows(r, cpu)),
        *suite.rows(
            "pretrain_cpu",
            cpu,
            ["pretrain", "--rounds", "2" if quick else "5"],
            lambda r: _step_rows(r, cpu, "synth_cpu preset (S3D ×0.25, batch 16, 16×64²)"),
        ),
        *suite.rows("augment_cpu", cpu, ["augment", "--rounds", "3" if quick else "7"], augment_rows),
        *suite.rows("textbook_cpu", cpu, ["textbook", "--rounds", "3" if quick else "7"], textbook_rows),
        *suite.rows("pose_cpu", cpu, ["pose", "--rounds", "2" if quick else "5"], lambda r: _pose_rows(r, cpu)),
    ]


def _pose_rows(pose: dict, where: str) -> list[Row]:
    ms, rate = pose["ms"], pose["rate"]
    return [
        ("SkeletonCLR training step, " + pose["setting"].split(";")[0], where,
         f"{ms['SkeletonCLR step']:.0f} ms ({rate['skeletonclr']:.0f} sequences/s)"),
        ("2s-AGCN joint-stream training step, same skeletons", where,
         f"{ms['AGCN step']:.0f} ms ({rate['agcn']:.0f} sequences/s)"),
    ]  # fmt: skip


def _gpu_rows(suite: _Suite) -> list[Row]:
    """This machine's GPU at the paper's settings in bf16, then the steps/s with every switch and without each."""
    gpu = device_label("cuda")
    paper = ["--config", "ntu60_cvs", "--device", "cuda"]

    def switch_rows(toggles: dict) -> list[Row]:
        return [
            (
                f"steps/s at the paper's settings, {label}: MoCo · ViewCLR",
                gpu,
                f"{rate['infonce']:.2f} · {rate['viewclr']:.2f}" if "failed" not in rate else rate["failed"],
            )
            for label, rate in toggles["steps_per_second"].items()
        ]

    return [
        *suite.rows(
            "models_gpu",
            gpu + ", bf16",
            ["models", "--device", "cuda", "--batch", "32", "--amp", "--widths", "1.0"],
            lambda r: _model_rows(r, gpu + ", bf16"),
        ),
        *suite.rows(
            "pretrain_gpu",
            gpu + ", bf16",
            ["pretrain", *paper],
            lambda r: _step_rows(r, gpu + ", bf16", "paper settings (S3D ×1, batch 32, 32×128²)"),
        ),
        *suite.rows("switches_gpu", gpu, ["pretrain", *paper, "--switches"], switch_rows),
        *suite.rows("pose_gpu", gpu, ["pose", *paper], lambda r: _pose_rows(r, gpu)),
    ]


def _demo_row(folder: Path) -> Row:
    cpu = device_label()
    timings = folder / "timings.json"
    seconds = json.loads(timings.read_text()).get("demo/first_run_seconds") if timings.is_file() else None
    if seconds is None:
        return ("make demo, wall time", cpu, f"not measured: no first run's time in {timings} (run make demo first)")
    return ("make demo, wall time of a first run", cpu, f"{seconds / 60:.1f} min")


def _model_rows(models: list[dict], where: str) -> list[Row]:
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


def _step_rows(pretrain: dict, where: str, setting: str) -> list[Row]:
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default="runs/bench", help="output folder (default: %(default)s)")
    parser.add_argument("--quick", action="store_true", help="fewer repetitions (a smoke test of the suite)")
    parser.add_argument(
        "--device",
        choices=("auto", "cpu", "cuda"),
        default="auto",
        help="cpu: the CPU rows; cuda: the GPU rows only (paper settings, each switch); auto "
        "(default): the CPU rows, and the GPU rows when there is a GPU",
    )
    parser.add_argument("--demo", default="runs/demo", help="demo folder whose timings.json gives the demo wall time")
    args = parser.parse_args(argv)
    try:
        run_bench(args.out, quick=args.quick, device=args.device, demo_timings=args.demo)
    except ViewCLRError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2 if isinstance(err, ConfigError) else 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
