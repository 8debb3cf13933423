"""Loader throughput: clips per second from raw 1080p videos vs the prepared cache.

Generates NTU-like raw videos (1920×1080, 30 fps, MPEG-4 Part 2 in AVI, textured moving content with sensor noise,
at NTU's bitrate), converts them
with `viewclr prepare`, then times `ClipDataset` — decoding, temporal sampling, resizing, uint8 clips exactly as
training workers produce them — in one process with one thread (per core), and through a DataLoader with two
workers (the 2-core rate). Augmentation is not included: it runs on the training device.

    python -m benchmarks.loader            # full: 8 raw videos of 90 frames (~1 minute on 2 cores)
    python -m benchmarks.loader --quick    # 3 videos of 60 frames, fewer clips (~15 s)
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import time
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import torch

from viewclr.data.cache import CacheSettings, prepare_dataset
from viewclr.data.loader import ClipDataset, ClipLoader
from viewclr.data.registry import get_dataset
from viewclr.data.video import VideoFile


def write_raw_video(path: Path, frames: int, seed: int, height: int = 1080, width: int = 1920) -> None:
    """A textured background with sensor noise and a moving figure. The noise (sigma 3) calibrates the bitrate to
    real NTU RGB videos: ~2.6 MB per 90 frames here, vs 136 GB / 56,880 videos = 2.4 MB per NTU-60 video."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width]
    base = np.stack([xx * 255 // width, yy * 255 // height, (xx + yy) * 255 // (width + height)], -1)
    base = (base + rng.integers(0, 40, (height, width, 3))).clip(0, 255).astype(np.int16)
    noise = rng.normal(0, 3, (8, height, width, 1)).astype(np.int16)
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("mpeg4", rate=30)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {"qmin": "2", "qmax": "6", "g": "12"}
        for t in range(frames):
            frame = base + noise[t % len(noise)]
            cx, cy = int(width * (0.2 + 0.6 * t / frames)), height // 2 + int(80 * np.sin(t / 6))
            frame[cy - height // 4 : cy + height // 4, cx - width // 16 : cx + width // 16] = (200, 60, 50)
            video_frame = av.VideoFrame.from_ndarray(frame.clip(0, 255).astype(np.uint8), format="rgb24")
            video_frame.pts, video_frame.time_base = t, Fraction(1, 30)
            container.mux(stream.encode(video_frame))
        container.mux(stream.encode(None))


ROUNDS = 5  # timings are medians of interleaved rounds: a shared 2-core VM is noisy


def median_rates(timers: dict, rounds: int = ROUNDS) -> dict[str, float]:
    """Run each timer (a function returning items/s) once per round, interleaved; the median per timer."""
    rates: dict[str, list[float]] = {name: [] for name in timers}
    for _ in range(rounds):
        for name, timer in timers.items():
            rates[name].append(timer())
    return {name: float(np.median(values)) for name, values in rates.items()}


def clip_timer(samples, frames: int, short_side: int, clips: int):
    """A timer of one process, one thread: clips/s per CPU core."""
    dataset = ClipDataset(samples, frames=frames, stride=1, num_clips=1, short_side=short_side, seed=0)
    dataset[(0, 0)]  # warm up imports and caches
    epoch = iter(range(1, 1_000_000))

    def timer() -> float:
        e = next(epoch)
        start = time.perf_counter()
        for n in range(clips):
            item = dataset[(e * clips + n // len(samples), n % len(samples))]
            assert item["clips"].shape[:2] == (1, frames), item
        return clips / (time.perf_counter() - start)

    return timer


def loader_rate(samples, frames: int, short_side: int, clips: int, workers: int, num_clips: int = 1) -> float:
    """Clips/s through a DataLoader with `workers` processes (the cores a training run would give it)."""
    dataset = ClipDataset(samples * 64, frames=frames, stride=1, num_clips=num_clips, short_side=short_side)
    loader = ClipLoader(dataset, batch_size=8, num_workers=workers, seed=0)
    iterator = iter(loader)
    next(iterator)  # workers started
    start, done = time.perf_counter(), 0
    for batch in iterator:
        done += batch["clips"].shape[0] * num_clips
        if done >= clips:
            break
    return done / (time.perf_counter() - start)


def compare_formats(source: str, out: Path, clips: int) -> list[dict]:
    """Bytes, fidelity and 32-frame clip rate (one core) of candidate cache formats, on the same 128-px frames."""
    with VideoFile(source, short_side=128) as reader:
        frames = reader.read(range(reader.num_frames))
    n, height, width = frames.shape[:3]
    h264 = {"crf": "20", "bf": "0", "preset": "fast"}
    candidates = {
        "H.264, keyframe every 8, fastdecode (chosen)": ("libx264", {**h264, "g": "8", "tune": "fastdecode"}),
        "H.264, keyframe every 8": ("libx264", {**h264, "g": "8"}),
        "H.264, keyframe every 32": ("libx264", {**h264, "g": "32"}),
        "MJPEG (every frame a keyframe)": ("mjpeg", {}),
    }
    starts = np.random.default_rng(0).integers(0, n - 32 + 1, clips)
    paths, rows = {}, {}
    for index, (label, (codec, options)) in enumerate(candidates.items()):
        paths[label] = path = out / f"format{index}.mp4"
        with av.open(str(path), "w") as container:
            stream = container.add_stream(codec, rate=30)
            stream.width, stream.height = width, height
            stream.pix_fmt = "yuvj420p" if codec == "mjpeg" else "yuv420p"
            stream.options = options
            for t, array in enumerate(frames):
                frame = av.VideoFrame.from_ndarray(array, format="rgb24")
                frame.pts, frame.time_base = t, Fraction(1, 30)
                container.mux(stream.encode(frame))
            container.mux(stream.encode(None))
        with VideoFile(path) as video:
            error = np.abs(video.read(range(n)).astype(np.int16) - frames).mean()
        rows[label] = {"format": label, "kb": path.stat().st_size / 1024, "error": float(error)}
    array_path = out / "format_uint8.npy"
    np.save(array_path, frames)
    label = "uint8 array (.npy, memory-mapped)"
    rows[label] = {"format": label, "kb": array_path.stat().st_size / 1024, "error": 0.0}

    def video_timer(path: Path):
        def timer() -> float:
            start = time.perf_counter()
            for s in starts:
                with VideoFile(path, num_frames=n) as video:
                    video.read(range(s, s + 32))
            return clips / (time.perf_counter() - start)

        return timer

    def array_timer() -> float:
        start = time.perf_counter()
        for s in starts:
            np.ascontiguousarray(np.load(array_path, mmap_mode="r")[s : s + 32])
        return clips / (time.perf_counter() - start)

    timers = {label: video_timer(path) for label, path in paths.items()} | {label: array_timer}
    for label, rate in median_rates(timers).items():
        rows[label]["rate"] = rate
    return list(rows.values())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer, shorter videos and clips")
    parser.add_argument("--out", default="runs/bench/loader", help="where videos, cache and results go")
    args = parser.parse_args()
    torch.set_num_threads(1)
    out = Path(args.out)
    n_videos, n_frames = (3, 60) if args.quick else (8, 90)
    raw_clips, cache_clips, loader_clips = (2, 30, 200) if args.quick else (12, 150, 1500)

    raw = out / "raw"
    names = [f"S001C00{1 + i % 3}P{1 + i // 3:03d}R001A001" for i in range(n_videos)]
    print(f"writing {n_videos} raw 1920x1080 videos of {n_frames} frames to {raw} (once) ...", flush=True)
    for i, name in enumerate(names):
        path = raw / "nturgb+d_rgb" / f"{name}_rgb.avi"
        if not path.exists():
            write_raw_video(path, n_frames, seed=i)
    raw_bytes = sum(p.stat().st_size for p in (raw / "nturgb+d_rgb").iterdir())

    caches, prepare_s = {}, {}
    for side in (128, 64):  # the default cache, and one made for training at 64 px (prepare --short-side 64)
        shutil.rmtree(out / f"cache{side}", ignore_errors=True)  # conversion time is measured: start empty
        start = time.perf_counter()
        prepare_dataset(get_dataset("ntu60"), raw, out / f"cache{side}", settings=CacheSettings(short_side=side))
        prepare_s[side] = time.perf_counter() - start
        caches[side] = get_dataset("ntu60").scan(out / f"cache{side}")
    cache_bytes = sum(p.stat().st_size for p in (out / "cache128" / "nturgb+d_rgb").glob("*.mp4"))
    raw_samples = get_dataset("ntu60").scan(raw)

    rows = []
    for frames, side, cache_side in ((32, 128, 128), (16, 64, 128), (16, 64, 64)):
        print(f"timing {frames}-frame clips at short side {side} (cache at {cache_side}) ...", flush=True)
        rates = median_rates(
            {
                "raw": clip_timer(raw_samples, frames, side, raw_clips),
                "cache": clip_timer(caches[cache_side], frames, side, cache_clips),
            }
        )
        rows.append({"frames": frames, "short_side": side, "cache_short_side": cache_side, **rates})

    print("timing the 2-worker DataLoader ...", flush=True)
    two_core_112 = loader_rate(caches[128], 16, 112, loader_clips, workers=2)
    two_core_triplet = loader_rate(caches[128], 32, 128, loader_clips, workers=2, num_clips=3)

    print("comparing cache formats ...", flush=True)
    formats = compare_formats(raw_samples[0].path, out, cache_clips // 2)

    result = {
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, {platform.system()}",
        "pyav": av.__version__,
        "ffmpeg_libavcodec": ".".join(map(str, av.library_versions["libavcodec"])),
        "videos": n_videos,
        "frames_per_video": n_frames,
        "prepare_seconds_2_workers": prepare_s,
        "raw_kb_per_video": raw_bytes / n_videos / 1024,
        "cache_kb_per_video": cache_bytes / n_videos / 1024,
        "per_core": rows,
        "two_workers_16x112_clips_per_s": two_core_112,
        "two_workers_32x128_xyz_clips_per_s": two_core_triplet,
        "formats": formats,
    }
    (out / "results.json").write_text(json.dumps(result, indent=2))
    lines = [
        f"Loader throughput — {result['machine']}, PyAV {result['pyav']}; medians of {ROUNDS} interleaved rounds",
        "",
        "| clip: frames x short side | raw 1080p, clips/s/core | cache (short side), clips/s/core | cache / raw |",
        "| --- | ---: | ---: | ---: |",
        *[
            f"| {r['frames']} x {r['short_side']} | {r['raw']:.1f} | {r['cache']:.1f} ({r['cache_short_side']}) "
            f"| {r['cache'] / r['raw']:.1f}x |"
            for r in rows
        ],
        "",
        f"2 workers, cache, 16 x 112 clips: {two_core_112:.0f} clips/s",
        f"2 workers, cache, 32 x 128, three clips per decoded video (x, x', x''): {two_core_triplet:.0f} clips/s",
        f"prepare (2 workers): {n_videos} videos in {prepare_s[128]:.1f} s; "
        f"{result['raw_kb_per_video']:.0f} KB raw -> {result['cache_kb_per_video']:.0f} KB cached (short side 128)",
    ]
    lines += [
        "",
        f"Cache formats: one {n_frames}-frame video at short side 128; 32-frame clips at random starts, one core;",
        "error = mean absolute difference from the uncompressed frames, in grey levels (0-255):",
        "",
        "| format | KB per video | error | clips/s/core |",
        "| --- | ---: | ---: | ---: |",
        *[f"| {f['format']} | {f['kb']:.0f} | {f['error']:.2f} | {f['rate']:.0f} |" for f in formats],
    ]
    table = "\n".join(lines)
    (out / "results.md").write_text(table + "\n")
    print("\n" + table + f"\n\nwritten to {out}/results.md and results.json")


if __name__ == "__main__":
    sys.exit(main())
