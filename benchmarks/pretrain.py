"""Training step cost of ViewCLR against MoCo at the same batch: clips/s and peak memory, as a ratio.

Both methods are built from one config and stepped on the same random, already augmented clips (the loader and
augmentation are measured in benchmarks/loader.py), forward + backward + Adam, interleaved round by round in one
process so that machine noise hits both alike; median of the rounds. Peak memory per method is measured in a
fresh process each (CPU: the resident set sampled every millisecond during two steps, above its level before them;
GPU: torch.cuda.max_memory_allocated above the allocated memory before them).

    python -m benchmarks.pretrain                                  # CPU, the synth_cpu preset (≈1 min)
    python -m benchmarks.pretrain --config ntu60_cvs --device cuda    # the paper's settings, bf16
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time

import torch

from benchmarks import add_device, config_parser, device_label, interleaved_ms
from viewclr.config import load_config
from viewclr.engine.trainer import channels_last, make_optimizer
from viewclr.methods import build_method
from viewclr.runtime import switches

SWITCHES = (  # (name, on, off): every switch on (the default on CUDA), then each one off in turn
    ("bf16 autocast", "train.amp=bf16", "train.amp=fp32"),
    ("channels_last_3d", "train.channels_last=true", "train.channels_last=false"),
    ("cuDNN autotuner", "train.cudnn_benchmark=true", "train.cudnn_benchmark=false"),
    ("fused Adam", "train.fused_adam=true", "train.fused_adam=false"),
)


def setup(cfg, name: str, device: torch.device):
    """One training step of `name` as the trainer runs it (its switches, its optimiser) on fixed clips."""
    torch.manual_seed(0)
    on = switches(cfg.train, device)
    torch.backends.cudnn.benchmark = on.cudnn_benchmark
    method = build_method(cfg, name).to(device).train()
    if on.channels_last:
        method.to(memory_format=torch.channels_last_3d)
    optimizer = make_optimizer([p for _, p in method.trainable()], cfg.optim, on)
    size, frames = cfg.augment.size, cfg.data.frames
    clips = torch.randn(cfg.data.batch_size, method.num_views, 3, frames, size, size, device=device)
    if on.channels_last:
        clips = channels_last(clips)
    counter = iter(range(10**9))

    def step() -> None:
        with torch.autocast(device_type=device.type, dtype=on.amp or torch.float32, enabled=on.amp is not None):
            loss = method(clips, next(counter))["loss"]
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if device.type == "cuda":
            torch.cuda.synchronize()

    return method, step


def measure(cfg, device: torch.device, rounds: int, steps: int) -> dict[str, float]:
    """Videos per second of each method: interleaved rounds of `steps` steps, the median."""
    step_of = {name: setup(cfg, name, device)[1] for name in ("infonce", "viewclr")}
    ms = interleaved_ms(step_of, rounds, steps)  # the warm-up step also runs cuDNN's autotuning
    return {name: 1000 * cfg.data.batch_size / value for name, value in ms.items()}


def compare_switches(args, device: torch.device) -> int:
    """MoCo and ViewCLR steps per second with every switch on (the default on CUDA), then without each one; a
    configuration that runs out of GPU memory is a row saying so."""
    on = [o for _, o, _ in SWITCHES]
    rows = [("every switch on (the default on CUDA)", on)]
    rows += [(f"without {name}", [o if o != switch_on else off for o in on]) for name, switch_on, off in SWITCHES]
    results = {}
    print("| switches | MoCo steps/s | ViewCLR steps/s |\n|---|---:|---:|")
    for label, extra in rows:
        cfg = load_config(args.config, [*args.overrides, *extra])
        try:
            rate = measure(cfg, device, args.rounds, args.steps)
        except torch.cuda.OutOfMemoryError:  # e.g. fp32 at the paper's batch on a smaller GPU: that row only
            rate = None
        if rate is None:  # outside `except`, whose traceback would keep the failed step's tensors alive
            torch.cuda.empty_cache()
            results[label] = {"failed": "out of memory"}
            print(f"| {label} | out of memory | out of memory |", flush=True)
            continue
        results[label] = {name: value / cfg.data.batch_size for name, value in rate.items()}
        print(f"| {label} | {results[label]['infonce']:.2f} | {results[label]['viewclr']:.2f} |", flush=True)
    print(json.dumps({"steps_per_second": results}))
    return 0


def rss_mb() -> float:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def peak_memory(cfg_args: list[str], name: str, device: str) -> float:
    command = [sys.executable, __file__, "--memory-of", name, "--device", device, *cfg_args]
    return float(subprocess.run(command, check=True, capture_output=True, text=True).stdout.strip().splitlines()[-1])


def main() -> int:
    parser = config_parser(__doc__, 5, "data.batch_size=8")
    add_device(parser)
    parser.add_argument("--steps", type=int, default=3, help="steps per round")
    parser.add_argument("--memory-of", help=argparse.SUPPRESS)
    parser.add_argument("--switches", action="store_true", help="steps/s with every switch, then without each one")
    args = parser.parse_args()
    cfg = load_config(args.config, args.overrides)
    device = torch.device(args.device)
    cfg_args = ["--config", args.config, *args.overrides]

    if args.memory_of:
        _, step = setup(cfg, args.memory_of, device)
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats()
            base = torch.cuda.memory_allocated()
            for _ in range(2):
                step()
            print((torch.cuda.max_memory_allocated() - base) / 2**20)
            return 0
        # CPU: the building of the model peaks higher than a step (copies), so sample the resident set while
        # stepping and report its peak over the level before the first step
        base, peak = rss_mb(), [0.0]
        done = threading.Event()

        def sample() -> None:
            while not done.is_set():
                peak[0] = max(peak[0], rss_mb())
                time.sleep(0.001)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        for _ in range(2):
            step()
        done.set()
        sampler.join()
        print(max(peak[0], rss_mb()) - base)
        return 0

    if args.switches:
        return compare_switches(args, device)
    rate = measure(cfg, device, args.rounds, args.steps)
    steps = rate
    memory = {name: peak_memory(cfg_args, name, args.device) for name in steps}
    where = device_label(device)
    print(
        f"{args.config} {' '.join(args.overrides)}: S3D width {cfg.model.width}, batch {cfg.data.batch_size}, "
        f"clips 3×{cfg.data.frames}×{cfg.augment.size}², {where}; median of {args.rounds} rounds × {args.steps} steps\n"
    )
    print("| method | videos/s | ms / step | peak memory, MB |\n|---|---:|---:|---:|")
    for name in steps:
        ms = 1000 * cfg.data.batch_size / rate[name]
        label = "MoCo (InfoNCE)" if name == "infonce" else "ViewCLR"
        print(f"| {label} | {rate[name]:.1f} | {ms:.0f} | {memory[name]:.0f} |")
    ratio_time = rate["infonce"] / rate["viewclr"]
    ratio_memory = memory["viewclr"] / max(memory["infonce"], 1e-9)
    print(f"\nViewCLR / MoCo: {ratio_time:.2f}× the time per step, {ratio_memory:.2f}× the memory (goal ≤ 2.0× time)")
    print(json.dumps({"rate": rate, "memory_mb": memory, "time_ratio": ratio_time, "memory_ratio": ratio_memory}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
