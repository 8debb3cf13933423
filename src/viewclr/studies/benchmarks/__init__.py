"""Benchmarks of the package (`viewclr bench` runs them in fresh processes; benchmarks/*.py in a checkout)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable

import numpy as np


def interleaved_ms(cases: dict[str, Callable[[], object]], rounds: int, repeat: int = 1) -> dict[str, float]:
    """Median milliseconds per call of each case: one warm-up call each, then `rounds` rounds in which every case
    runs `repeat` times in turn — interleaved, so that a shared machine's load falls on all cases alike."""
    for case in cases.values():
        case()
    times: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(rounds):
        for name, case in cases.items():
            start = time.perf_counter()
            for _ in range(repeat):
                case()
            times[name].append((time.perf_counter() - start) / repeat)
    return {name: 1000 * float(np.median(values)) for name, values in times.items()}


def report(setting: str, what: str, ms: dict[str, float], summary: str, result: dict) -> None:
    """The setting, a table of milliseconds per `what`, the summary line, and the result as JSON (the last line,
    which `viewclr bench` reads)."""
    print(setting + "\n")
    print(f"| {what} | ms |\n|---|---:|")
    for name, value in ms.items():
        print(f"| {name} | {value:.0f} |")
    print("\n" + summary)
    print(json.dumps(result))
