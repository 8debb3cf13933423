"""Forward + backward time and peak memory of S3D and of the viewpoint generator at ViewCLR's split shape.

For each network and batch size, one fresh process builds the model and the input, runs one warm-up step and
then `--rounds` timed forward + backward passes (median reported). Peak memory is the growth of the process's
peak resident set from before the first step (CPU) or `torch.cuda.max_memory_allocated` over the baseline (GPU):
the activations, gradients and workspace a step needs, beyond the weights and input. The generator runs on the
output shape of the matching S3D's f1 (480×16×16×16 for width 1 at 32×128×128), so "G / S3D" is the cost the
third stream adds per clip.

    python -m benchmarks.models                    # CPU: batch 2, 32×128×128 (≈3 min on 2 cores)
    python -m benchmarks.models --device cuda --batch 32 --amp     # the paper's per-GPU batch, bf16
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

import numpy as np
import torch

from benchmarks import add_device, device_label
from viewclr.models import ViewpointGenerator, build_backbone, split_shape


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def measure(network: str, width: float, batch: int, frames: int, size: int, device: str, amp: bool, rounds: int):
    torch.manual_seed(0)
    backbone = build_backbone("s3d", width=width)
    if network == "s3d":
        model = backbone
        x = torch.randn(batch, 3, frames, size, size)
    else:
        shape = split_shape(backbone, frames, size)
        model = ViewpointGenerator(*shape[:1], *shape[2:])
        x = torch.randn(batch, *shape)
    model, x = model.to(device).train(), x.to(device)
    parameters = sum(p.numel() for p in model.parameters())

    def step() -> None:
        with torch.autocast(device_type=device, dtype=torch.bfloat16, enabled=amp):
            out = model(x)
            if network == "s3d":
                loss = out.float().square().mean()
            else:
                loss = out.view.float().square().mean() + (out.reconstruction - out.inter).float().square().mean()
        loss.backward()
        model.zero_grad(set_to_none=True)

    def sync() -> None:
        if device == "cuda":
            torch.cuda.synchronize()

    sync()
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
    else:
        base = peak_rss_mb()  # weights and input are in; no step has run
    step()  # warm-up (allocator, kernels); its peak counts, the steps after it reuse the same memory
    sync()
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        step()
        sync()
        times.append(time.perf_counter() - start)
    peak = (torch.cuda.max_memory_allocated() - base) / 2**20 if device == "cuda" else peak_rss_mb() - base
    return {
        "network": network,
        "width": width,
        "batch": batch,
        "input": list(x.shape[1:]),
        "parameters": parameters,
        "seconds": float(np.median(times)),
        "peak_mb": peak,
        "device": device_label(device),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_device(parser)
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--frames", type=int, default=32)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--widths", type=float, nargs="+", default=[1.0, 0.25])
    parser.add_argument("--amp", action="store_true", help="bf16 autocast")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--one", nargs=2, metavar=("NETWORK", "WIDTH"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        network, width = args.one[0], float(args.one[1])
        result = measure(network, width, args.batch, args.frames, args.size, args.device, args.amp, args.rounds)
        print(json.dumps(result))
        return 0

    # every measurement runs in its own process so that one network's peak does not hide another's
    results = []
    for width in args.widths:
        for network in ("s3d", "generator"):
            command = [
                sys.executable,
                __file__,
                "--one",
                network,
                str(width),
                "--batch",
                str(args.batch),
                "--frames",
                str(args.frames),
                "--size",
                str(args.size),
                "--device",
                args.device,
                "--rounds",
                str(args.rounds),
            ] + (["--amp"] if args.amp else [])
            output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
            results.append(json.loads(output.strip().splitlines()[-1]))
    device = results[0]["device"]
    print(
        f"forward + backward, batch {args.batch}, clips 3×{args.frames}×{args.size}×{args.size}, {device}"
        f"{', bf16 autocast' if args.amp else ''}; median of {args.rounds}\n"
    )
    print("| network | width | input | parameters | ms / step | peak memory, MB | G / S3D time | G / S3D memory |")
    print("|---|---:|---|---:|---:|---:|---:|---:|")
    for i in range(0, len(results), 2):
        s3d, gen = results[i], results[i + 1]
        for r, ratio in (
            (s3d, None),
            (gen, (gen["seconds"] / s3d["seconds"], gen["peak_mb"] / max(s3d["peak_mb"], 1e-9))),
        ):
            shape = "×".join(map(str, r["input"]))
            extra = f"{100 * ratio[0]:.0f} % | {100 * ratio[1]:.0f} %" if ratio else " | "
            print(
                f"| {'S3D' if r['network'] == 's3d' else 'viewpoint generator'} | {r['width']} | {shape} | "
                f"{r['parameters'] / 1e6:.2f} M | {1000 * r['seconds']:.0f} | {r['peak_mb']:.0f} | {extra} |"
            )
    print(json.dumps(results))  # the last line, for `python -m benchmarks`
    return 0


if __name__ == "__main__":
    sys.exit(main())
