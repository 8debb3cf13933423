"""Speed and memory benchmarks of viewclr, beside the package (not installed with it): `python -m benchmarks.NAME`
runs one, `python -m benchmarks` (`make bench`) all of them in fresh processes, as one table. This module holds
what they share: the command line, timing in interleaved rounds, and the report."""

from __future__ import annotations

import argparse
import json
import os
import random
import time
from collections.abc import Callable

import numpy as np
import torch


def config_parser(doc: str, rounds: int, example: str) -> argparse.ArgumentParser:
    """A benchmark's command line: --config (a preset or YAML file, synth_cpu by default), --rounds and config
    overrides (`example` shows one); a benchmark adds its own options."""
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default="synth_cpu")
    parser.add_argument("--rounds", type=int, default=rounds)
    parser.add_argument("overrides", nargs="*", help=f"config overrides, e.g. {example}")
    return parser


def add_device(parser: argparse.ArgumentParser) -> None:
    """--device cpu | cuda; cuda where there is none is a usage error before any work."""

    def device(value: str) -> str:
        if value == "cuda" and not torch.cuda.is_available():
            raise argparse.ArgumentTypeError("cuda: no CUDA device is available here")
        return value

    parser.add_argument("--device", default="cpu", type=device, choices=("cpu", "cuda"))


def device_label(device: str | torch.device = "cpu") -> str:
    """Where a figure was measured, as the tables print it: the GPU's name, or "CPU (N cores)"."""
    if torch.device(device).type == "cuda":
        return torch.cuda.get_device_name()
    return f"CPU ({os.cpu_count()} cores)"


def run_shape(cfg) -> str:
    """The training step's shape in a setting line: batch, clip and network width."""
    return f"batch {cfg.data.batch_size}, 3×{cfg.data.frames}×{cfg.augment.size}², S3D ×{cfg.model.width}"


def interleaved_rounds(cases: dict[str, Callable[[], object]], rounds: int, repeat: int = 1) -> dict[str, list[float]]:
    """Milliseconds per call of each case in each round: one warm-up call each, then `rounds` rounds in which every
    case runs `repeat` times, in an order shuffled anew each round (seeded) — interleaved, so that a shared
    machine's load falls on all cases alike, and shuffled, so that no case always follows the same one."""
    for case in cases.values():
        case()
    order, rng = list(cases), random.Random(0)
    times: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(rounds):
        rng.shuffle(order)
        for name in order:
            start = time.perf_counter()
            for _ in range(repeat):
                cases[name]()
            times[name].append(1000 * (time.perf_counter() - start) / repeat)
    return times


def medians(rounds: dict[str, list[float]]) -> dict[str, float]:
    """The median of each case's times (of `interleaved_rounds`)."""
    return {name: float(np.median(values)) for name, values in rounds.items()}


def interleaved_ms(cases: dict[str, Callable[[], object]], rounds: int, repeat: int = 1) -> dict[str, float]:
    """Median milliseconds per call of each case over `interleaved_rounds`."""
    return medians(interleaved_rounds(cases, rounds, repeat))


def paired_ratio(times: list[float], reference: list[float]) -> float:
    """The median over rounds of each round's time over the reference's in that round: a machine that slows down
    for a few rounds moves both sides of a round's ratio, not one median."""
    return float(np.median(np.asarray(times) / np.asarray(reference)))


def report(setting: str, what: str, ms: dict[str, float], summary: str, result: dict) -> None:
    """The setting, a table of milliseconds per `what`, the summary line, and the result as JSON (the last line,
    which `python -m benchmarks` reads)."""
    print(setting + "\n")
    print(f"| {what} | ms |\n|---|---:|")
    for name, value in ms.items():
        print(f"| {name} | {value:.0f} |")
    print("\n" + summary)
    print(json.dumps(result))
