"""S3D inference in the default (contiguous) and channels_last_3d memory formats, and the 3×3×3 max-pool alone.

python -m benchmarks.inference            # width 0.25, 64 clips of 3×16×64×64 (≈15 s on 2 cores)
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np
import torch

from viewclr.models import S3D


def median_ms(function, rounds: int) -> float:
    function()
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return 1000 * float(np.median(times))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--width", type=float, default=0.25)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--frames", type=int, default=16)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    torch.manual_seed(0)
    x = torch.randn(args.batch, 3, args.frames, args.size, args.size)
    plain = S3D(args.width).eval()
    fast = S3D(args.width).eval().to(memory_format=torch.channels_last_3d)
    fast.load_state_dict(plain.state_dict())
    x_fast = x.contiguous(memory_format=torch.channels_last_3d)
    with torch.no_grad():
        assert torch.allclose(plain(x), fast(x_fast), atol=1e-4)
        rows = {
            "S3D forward": (median_ms(lambda: plain(x), args.rounds), median_ms(lambda: fast(x_fast), args.rounds)),
        }
        h = torch.randn(args.batch, 48, 8, 16, 16)
        pool = torch.nn.MaxPool3d(3, 1, 1)
        h_fast = h.contiguous(memory_format=torch.channels_last_3d)
        rows["max-pool 3×3×3 on 48×8×16×16"] = (
            median_ms(lambda: pool(h), args.rounds),
            median_ms(lambda: pool(h_fast), args.rounds),
        )
    print(
        f"S3D width {args.width}, {args.batch} clips of 3×{args.frames}×{args.size}×{args.size}, "
        f"{torch.get_num_threads()} threads; median of {args.rounds}\n"
    )
    print("| | contiguous, ms | channels_last_3d, ms | speed-up |\n|---|---:|---:|---:|")
    for name, (a, b) in rows.items():
        print(f"| {name} | {a:.0f} | {b:.0f} | {a / b:.1f}× |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
