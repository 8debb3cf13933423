"""The synthetic benchmark: how fast it renders, and how much the viewpoint matters on it.

1. Videos per second per CPU core at 64, 112 and 128 pixels (48 frames): rendering (ray casting + shading) and
   H.264 encoding timed apart, medians of interleaved rounds.
2. Wall time of `viewclr synth` for the demo-sized dataset (16 subjects × 12 classes × 3 cameras × 2 takes =
   1,152 videos) with all cores.
3. The viewpoint gap without learning: 1-nearest-neighbour trained on CS-train subjects at 0° and tested on
   CS-test subjects at 0°, 45° and 90° — on the 2D projected joints, and on the pixels (motion energy: summed
   |frame differences| in 4 temporal segments at 14×14; and raw, 8 frames at 16×16).

    python -m benchmarks.synth --out runs/bench/synth           # ~3 minutes on 2 cores
    python -m benchmarks.synth --quick --out runs/bench/synth   # smaller dataset, fewer rounds
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import av
import numpy as np
from PIL import Image

from viewclr.synth import SynthSettings, generate, render_performance
from viewclr.synth.analysis import nearest_neighbour_by_view
from viewclr.synth.generate import build_metadata, write_video
from viewclr.synth.world import make_performance, make_setup

ROUNDS = 5


def render_rates(size: int, takes: int, rounds: int, tmp: Path) -> dict[str, float]:
    """Videos/s of rendering alone, encoding alone, and both, for one process (one core)."""
    settings = SynthSettings(size=size, frames=48, classes=12)
    setup = make_setup(0, 1)
    jobs = [make_performance(settings, setup, 1 + i % 4, 1 + i % 2, 1 + i % 12) for i in range(takes)]
    render_performance(settings, jobs[0])  # warm up
    render_times, encode_times = [], []
    for _ in range(rounds):
        start = time.perf_counter()
        videos = [v for p in jobs for v in render_performance(settings, p)]
        render_times.append((time.perf_counter() - start) / len(videos))
        start = time.perf_counter()
        for i, video in enumerate(videos):
            write_video(tmp / f"bench_{i}.avi", video, settings.fps, settings.crf, settings.gop)
        encode_times.append((time.perf_counter() - start) / len(videos))
    render, encode = float(np.median(render_times)), float(np.median(encode_times))
    return {"render": 1 / render, "encode": 1 / encode, "total": 1 / (render + encode)}


class Frames:
    """Grey frames of each video of a dataset, decoded once."""

    def __init__(self, root: Path):
        self.root, self.cache = root, {}

    def __call__(self, sample: dict) -> np.ndarray:
        if sample["name"] not in self.cache:
            with av.open(str(self.root / sample["path"])) as container:
                frames = [f.to_ndarray(format="gray") for f in container.decode(video=0)]
            self.cache[sample["name"]] = np.stack(frames).astype(np.float32)
        return self.cache[sample["name"]]


def _resize(image: np.ndarray, size: int) -> np.ndarray:
    return np.asarray(Image.fromarray(image).resize((size, size), Image.BILINEAR))


def _standardise(x: np.ndarray) -> np.ndarray:
    return (x - x.mean()) / (x.std() + 1e-6)


def raw_pixels(frames: Frames, count: int = 8, size: int = 16):
    """`count` evenly spaced frames at size × size, grey."""

    def describe(sample: dict) -> np.ndarray:
        video = frames(sample)
        picks = np.linspace(0, len(video) - 1, count).round().astype(int)
        return _standardise(np.stack([_resize(video[i], size) for i in picks]).ravel())

    return describe


def motion_energy(frames: Frames, segments: int = 4, size: int = 14):
    """Where the image changes: |frame differences| summed over `segments` parts of the video, at size × size.
    Raw pixels are dominated by clothes and rooms; motion energy is about the action."""

    def describe(sample: dict) -> np.ndarray:
        energy = np.abs(np.diff(frames(sample), axis=0))
        parts = [part.sum(0) for part in np.array_split(energy, segments)]
        return _standardise(np.stack([_resize(p, size) for p in parts]).ravel())

    return describe


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="runs/bench/synth", help="folder for the dataset and results.json")
    parser.add_argument("--quick", action="store_true", help="fewer rounds and a smaller dataset")
    parser.add_argument("--workers", type=int, default=None, help="processes for the dataset (default: all cores)")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rounds, takes = (2, 2) if args.quick else (ROUNDS, 4)
    results: dict = {"python": sys.version.split()[0], "machine": platform.machine(), "cpus": os.cpu_count()}

    print(f"1. videos/s per core (48 frames; {takes} takes × 3 cameras; median of {rounds} rounds)")
    print("| size | render | encode (H.264) | render + encode |\n|---|---|---|---|")
    results["per_core"] = {}
    for size in (64, 112, 128):
        rates = render_rates(size, takes, rounds, out)
        results["per_core"][size] = rates
        print(f"| {size} | {rates['render']:.1f} | {rates['encode']:.1f} | {rates['total']:.1f} |")
    for leftover in out.glob("bench_*.avi"):
        leftover.unlink()

    subjects = 8 if args.quick else 16
    settings = SynthSettings(subjects=subjects, classes=12, size=112, frames=48)
    dataset = out / f"synth_s{subjects}_112"
    start = time.perf_counter()
    report = generate(settings, dataset, workers=args.workers, progress=True)
    wall = time.perf_counter() - start
    results["dataset"] = {"videos": report.videos, "rendered": report.rendered, "seconds": wall}
    print(
        f"\n2. viewclr synth {dataset} --subjects {subjects} (112 px, 48 frames): {report.videos:,} videos, "
        f"{report.rendered:,} rendered in {wall:.1f} s with {args.workers or os.cpu_count()} workers"
        + (f" = {report.rendered / wall:.1f} videos/s" if report.rendered else " (already there)")
    )

    metadata, joints = build_metadata(settings)
    frames = Frames(dataset)
    gap = {
        "2D joints": nearest_neighbour_by_view(metadata, joints),
        "pixels: motion energy 4×14×14": nearest_neighbour_by_view(metadata, descriptor=motion_energy(frames)),
        "pixels: raw 8×16×16": nearest_neighbour_by_view(metadata, descriptor=raw_pixels(frames)),
    }
    results["view_gap"] = gap
    print("\n3. 1-NN top-1 accuracy (%), trained at 0° on CS-train subjects, tested on CS-test subjects")
    print("| features | 0° | 45° | 90° |\n|---|---|---|---|")
    for name, accuracy in gap.items():
        print(f"| {name} | " + " | ".join(f"{100 * accuracy[v]:.1f}" for v in ("0", "45", "90")) + " |")
    print(f"(chance: {100 / settings.classes:.1f})")
    (out / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    print(f"\nresults: {out / 'results.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
