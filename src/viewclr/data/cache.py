"""`viewclr prepare`: convert a dataset once into a cache that trains fast.

Raw NTU videos are 1920×1080 and decoding them dominates training time. The cache holds every video re-encoded
small (short side 128 by default) as H.264 with a keyframe every 8 frames, no B-frames and x264's `fastdecode`
tuning, in the dataset's own layout (`nturgb+d_rgb/<name>_rgb.mp4`, `view_k/aXX_sYY_eZZ.mp4`, the folder
dataset's relative paths), plus `viewclr_cache.jsonl`: one line per finished video with its exact frame count.
A cache root is a dataset root like any other.

Why this format and not MJPEG or raw uint8 arrays: docs/performance.md, "Loader" and "Choosing the cache format"
(`python -m benchmarks.loader` measures it).

Conversion runs in worker processes with a progress bar; every video is written to a temporary file and renamed
when complete, and its manifest line is appended only then, so an interrupted run resumes where it stopped:
a second run skips finished files. Unreadable videos are skipped, warned about, and listed in `failed.txt`.
"""

from __future__ import annotations

import csv
import json
import logging
import multiprocessing
import os
from dataclasses import asdict, dataclass, field
from fractions import Fraction
from pathlib import Path

import av
from tqdm import tqdm
from tqdm.contrib.logging import logging_redirect_tqdm

from viewclr.data.folder import FolderDataset
from viewclr.data.index import (
    CACHE_MANIFEST,
    CACHE_SETTINGS,
    DatasetSpec,
    read_cache_manifest,
    write_cache_manifest,
)
from viewclr.data.video import open_frames
from viewclr.errors import DatasetError, VideoError
from viewclr.fileio import atomic_path, write_json

log = logging.getLogger(__name__)

FAILED_LIST = "failed.txt"
DEFAULT_FPS = 30  # frame folders carry no rate; N-UCLA's Kinect v1 recorded at 30 fps


@dataclass(frozen=True)
class CacheSettings:
    short_side: int = 128
    crf: int = 20  # x264 constant quality (lower is better; 18–23 is visually lossless to good)
    gop: int = 8  # keyframe interval: a random clip start decodes at most gop - 1 frames it does not need
    codec: str = "libx264"
    tune: str = "fastdecode"  # no CABAC, no deblocking: ~1.4x faster decoding for ~10 % more bytes
    version: int = 1


@dataclass
class PrepareReport:
    out: str
    total: int
    already_done: int
    converted: int
    failed: dict[str, str] = field(default_factory=dict)


def cache_path(source: str, root: Path) -> str:
    """Where a source video (or frame folder) goes in the cache, relative to the cache root."""
    try:
        relative = Path(source).resolve().relative_to(root.resolve())
    except ValueError:
        raise DatasetError(
            f"{source} is not under the dataset root {root}; prepare needs videos under --root"
        ) from None
    if Path(source).is_dir():  # a frame folder becomes one video beside where it was
        return relative.as_posix() + ".mp4"
    return relative.with_suffix(".mp4").as_posix()


def even_size(source: str, short_side: int) -> list[int] | None:
    """[H, W] rounded to even numbers when the frames `source` decodes to at `short_side` have an odd side
    (H.264 with 4:2:0 chroma takes even sizes only: a 61×48 video at --short-side 48 keeps its odd 61); None
    when they are even already."""
    with open_frames(source, short_side=short_side) as reader:
        height, width = reader.height, reader.width
    if height % 2 == 0 and width % 2 == 0:
        return None
    return [max(2, 2 * round(height / 2)), max(2, 2 * round(width / 2))]


def convert_video(source: str, target: Path, settings: CacheSettings) -> dict:
    """Decode `source` completely and write it re-encoded to `target` (atomically), at even sizes. Returns its
    manifest entry."""
    frame_size = even_size(source, settings.short_side)
    with (
        open_frames(source, short_side=settings.short_side, frame_size=frame_size) as reader,
        atomic_path(target) as partial,
    ):
        rate = Fraction(reader.rate).limit_denominator(1001) if reader.rate else Fraction(DEFAULT_FPS)
        count = 0
        with av.open(str(partial), "w", format="mp4") as container:
            stream = container.add_stream(settings.codec, rate=rate)
            stream.width, stream.height, stream.pix_fmt = reader.width, reader.height, "yuv420p"
            stream.thread_count = 1
            stream.options = {
                "crf": str(settings.crf),
                "g": str(settings.gop),
                "bf": "0",
                "preset": "fast",
                "tune": settings.tune,
            }
            for frame in reader.iter_frames(format="yuv420p"):
                frame.pts, frame.time_base = count, 1 / rate
                container.mux(stream.encode(frame))
                count += 1
            container.mux(stream.encode(None))
    return {"frames": count, "height": reader.height, "width": reader.width, "fps": float(rate)}


def _convert_task(task: tuple[str, str, str, CacheSettings]) -> tuple[str, dict | None, str | None]:
    """(source, manifest entry, None) when converted; (source, None, why) when the video is unreadable or the
    encoder refuses it — one video's problem, never the end of the run (a full disk still is: an OSError)."""
    source, relative, out, settings = task
    try:
        entry = convert_video(source, Path(out) / relative, settings)
    except VideoError as err:
        return source, None, err.reason
    except (av.error.FFmpegError, ValueError) as err:  # FFmpegError: decoding or encoding in libav*
        if isinstance(err, OSError):  # a full disk, a read-only folder: the run's problem, not the video's
            raise
        return source, None, f"the encoder failed: {str(err).splitlines()[0] if str(err) else type(err).__name__}"
    return source, {"path": relative, "source": source, **entry}, None


def _check_settings(out: Path, dataset: str, settings: CacheSettings) -> None:
    path = out / CACHE_SETTINGS
    wanted = {"dataset": dataset, **asdict(settings)}
    if path.is_file():
        existing = json.loads(path.read_text())
        if existing != wanted:
            diff = ", ".join(
                f"{k} {existing.get(k)} there, {v} asked" for k, v in wanted.items() if existing.get(k) != v
            )
            raise DatasetError(f"{out} is a cache made with other settings ({diff}); use another --out or the same")
    else:
        write_json(path, wanted, indent=2)


def prepare_dataset(
    spec: DatasetSpec,
    root: str | Path,
    out: str | Path,
    *,
    labels_csv: str | None = None,
    settings: CacheSettings = CacheSettings(),
    workers: int | None = None,
    progress: bool = True,
) -> PrepareReport:
    """Convert every video of `spec` under `root` into the cache `out`, skipping what is already there."""
    root, out = Path(root), Path(out)
    if settings.short_side % 2:
        raise DatasetError(f"--short-side must be even for H.264 (got {settings.short_side})")
    if out.resolve() == root.resolve():
        raise DatasetError("--out must differ from --root")
    samples = spec.scan(root, labels_csv)
    targets = {}
    for sample in samples:
        relative = cache_path(sample.path, root)
        if relative in targets:
            raise DatasetError(f"{sample.path} and {targets[relative].path} would both become {relative}")
        targets[relative] = sample
    out.mkdir(parents=True, exist_ok=True)
    _check_settings(out, spec.name, settings)
    done = _compact_manifest(out)
    todo = [(sample.path, rel, str(out), settings) for rel, sample in targets.items() if rel not in done]
    report = PrepareReport(str(out), len(targets), len(targets) - len(todo), 0)
    workers = max(1, min(workers or os.cpu_count() or 1, len(todo) or 1))
    with (
        (out / CACHE_MANIFEST).open("a") as manifest,
        logging_redirect_tqdm(),
        tqdm(total=len(todo), desc=f"prepare {spec.name}", unit="video", disable=not progress) as bar,
    ):
        if workers == 1:
            results = map(_convert_task, todo)
            pool = None
        else:
            pool = multiprocessing.get_context("spawn").Pool(workers)
            results = pool.imap_unordered(_convert_task, todo, chunksize=1)
        try:
            for source, entry, error in results:
                if entry is None:
                    report.failed[source] = error
                    log.warning("skipping unreadable video %s: %s", source, error)
                else:
                    manifest.write(json.dumps(entry) + "\n")
                    manifest.flush()
                    report.converted += 1
                bar.update()
                bar.set_postfix(failed=len(report.failed))
        finally:
            if pool is not None:
                pool.terminate()
                pool.join()
    failed_path = out / FAILED_LIST
    if report.failed:
        failed_path.write_text("".join(f"{src}\t{why}\n" for src, why in sorted(report.failed.items())))
    else:
        failed_path.unlink(missing_ok=True)
    if isinstance(spec, FolderDataset):
        _write_cache_labels(out, spec, targets)
    return report


def _compact_manifest(out: Path) -> set[str]:
    """Keep only complete entries whose video exists (an interrupted run may leave a half-written last line,
    which the next appended entry would otherwise run into); returns the finished relative paths."""
    entries = {rel: e for rel, e in read_cache_manifest(out).items() if (out / rel).is_file()}
    write_cache_manifest(out, entries.values())
    return set(entries)


def _write_cache_labels(out: Path, spec: FolderDataset, targets: dict) -> None:
    """The folder dataset's labels CSV for the cache: the same rows, pointing at the prepared videos."""
    entries = read_cache_manifest(out)
    with (out / "labels.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["path", "label", "view", "subject"])
        for relative, sample in sorted(targets.items()):
            if relative in entries:
                subject = "" if sample.subject is None else sample.subject
                writer.writerow([relative, spec.classes[sample.label], sample.view or "", subject])
