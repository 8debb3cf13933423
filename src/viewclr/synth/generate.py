"""`viewclr synth`: render a synthetic multi-view action dataset to disk, in parallel, resumably. (Above ~350
lines: the metadata, the three file layouts, resumption and the claim on the output folder are one writer's job.)

Layouts:
- `ntu` (default): `OUT/nturgb+d_rgb/SsssCcccPpppRrrrAaaa_rgb.avi`, NTU RGB+D's own names and camera rig, so the
  NTU loader and every NTU-60 protocol (CS, CV, CVS) run on it unchanged (`--dataset synth` adds the synthetic
  class names and no missing-skeleton exclusions; `--dataset ntu60` reads it too).
- `nucla`: `OUT/view_k/aXX_sYY_eZZ/frame_NNN.jpg` JPEG frame folders, N-UCLA's layout (classes map to N-UCLA's
  action ids a01…a12 in order; views 1–3 are the first three of `--views`, by default 0°, 45°, 90°).
- `folder`: `OUT/videos/<name>.mp4` and `OUT/labels.csv` (path,label,view,subject), for any number of views.

Beside the videos: `viewclr_synth.json` (settings, classes, joints, subjects, setups with camera intrinsics and
extrinsics, and every sample with its view angle), `viewclr_synth_joints.npz` (each performance's 3D joints,
world coordinates, [frames, 20, 3]) and `viewclr_cache.jsonl` (frame counts, as a prepared cache has).

The world is drawn from the seed before anything is rendered (`world.py`), so the metadata and joints are
written first and a second run renders only the videos that are missing.

Rendering never writes into a folder that is not its own: OUT must be new, empty, or a synthetic dataset this
renderer made (its `viewclr_synth.json` says so) holding nothing but its own files; and a video is written over
only when this renderer wrote it (it is in the manifest, or was being rendered by an interrupted run, which
`viewclr_synth_rendering.txt` lists). Anything else stops the run before a byte is written (`claim_folder`).
"""

from __future__ import annotations

import csv
import json
import multiprocessing
import os
import time
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from PIL import Image
from tqdm import tqdm

from viewclr.data.index import CACHE_MANIFEST, read_cache_manifest, write_cache_manifest
from viewclr.data.nucla import ACTIONS as NUCLA_ACTIONS
from viewclr.errors import DatasetError
from viewclr.fileio import atomic_path, write_json, write_text
from viewclr.synth.actions import ACTIONS, CONFUSABLE_PAIRS
from viewclr.synth.body import JOINTS, PARENTS
from viewclr.synth.render import render_frames, render_room
from viewclr.synth.skeletons import skeleton_paths, write_skeletons
from viewclr.synth.world import (
    Performance,
    Setup,
    SynthSettings,
    make_actor,
    make_performance,
    make_setup,
    perform,
    performances,
)

METADATA = "viewclr_synth.json"
JOINTS_FILE = "viewclr_synth_joints.npz"
RENDERING = "viewclr_synth_rendering.txt"  # the videos a run is about to write, for its resumption
FORMAT = "viewclr-synth"
OWN_FILES = (METADATA, JOINTS_FILE, CACHE_MANIFEST, RENDERING, "labels.csv")


@dataclass
class SynthReport:
    out: str
    videos: int
    already_done: int
    rendered: int
    seconds: float = 0.0


# ---------------------------------------------------------------------------------------------- names and paths


def sample_name(settings: SynthSettings, p: Performance, view_index: int) -> str:
    if settings.layout == "ntu":
        return f"S{p.setup:03d}C{view_index:03d}P{p.subject:03d}R{p.replication:03d}A{p.action:03d}"
    if settings.layout == "nucla":
        return f"a{list(NUCLA_ACTIONS)[p.action - 1]:02d}_s{p.subject:02d}_e{p.replication:02d}_v{view_index:02d}"
    return f"{p.id}V{view_index:03d}"


def sample_path(settings: SynthSettings, name: str) -> str:
    """Where a sample goes, relative to the output root."""
    if settings.layout == "ntu":
        return f"nturgb+d_rgb/{name}_rgb.avi"
    if settings.layout == "nucla":
        folder, view = name.rsplit("_v", 1)
        return f"view_{int(view)}/{folder}"
    return f"videos/{name}.mp4"


# ---------------------------------------------------------------------------------------------- metadata


def build_metadata(settings: SynthSettings) -> tuple[dict, dict[str, np.ndarray]]:
    """Everything about the dataset except its pixels, and each performance's 3D joints."""
    setups: dict[str, dict] = {}
    samples, joints = [], {}
    actors = {s: make_actor(settings.seed, s) for s in range(1, settings.subjects + 1)}
    for setup, subject, replication, action in performances(settings):
        p = make_performance(settings, setup, subject, replication, action)
        if str(setup.id) not in setups:
            setups[str(setup.id)] = _setup_entry(setup, p)
        _, posed = perform(p, actors[subject], settings.frames)
        joints[p.id] = posed.joints.astype(np.float32)
        for view in p.views:
            name = sample_name(settings, p, view.index)
            samples.append(
                {
                    "name": name,
                    "path": sample_path(settings, name),
                    "label": action - 1,
                    "action": action,
                    "subject": subject,
                    "setup": setup.id,
                    "replication": replication,
                    "camera": view.index,
                    "view": view.view,
                    "azimuth": round(view.azimuth, 3),
                    "elevation": round(view.elevation, 3),
                    "performance": p.id,
                    "facing": p.facing + round(float(np.degrees(p.motion.yaw)), 3),
                    "motion": p.motion.to_dict(),
                    "light": p.light.to_dict(),
                }
            )
    metadata = {
        "format": FORMAT,
        "settings": settings.to_dict(),
        "classes": [{"label": i, "action": i + 1, "name": ACTIONS[i].name} for i in range(settings.classes)],
        "confusable_pairs": [list(pair) for pair in CONFUSABLE_PAIRS if max(pair) < settings.classes],
        "joints": {
            "names": list(JOINTS),
            "parents": list(PARENTS),
            "file": JOINTS_FILE,
            "space": "world, metres, y up",
        },
        "camera_convention": "OpenCV: x right, y down, z forward; pixel = K·(R·X + t) / depth, X in world metres",
        "subjects": {str(s): actor.to_dict() for s, actor in actors.items()},
        "setups": setups,
        "samples": samples,
    }
    return metadata, joints


def _setup_entry(setup: Setup, p: Performance) -> dict:
    # Cameras are placed per setup; in the ntu layout their world placement does not depend on the take.
    return {
        "scene": setup.scene.to_dict(),
        "camera_distance": round(setup.distance, 4),
        "camera_height": round(setup.camera_height, 4),
        "cameras": {str(v.index): v.camera.to_dict() for v in p.views},
    }


def claim_folder(out: Path, samples: list[dict], skeletons: tuple[Path, ...] = ()) -> None:
    """Stop (DatasetError) unless `out` is a folder rendering may write into: missing, empty, or a synthetic
    dataset of these settings holding only this renderer's files (videos, `skeletons`), none of them a video it
    did not write."""
    if out.exists() and not out.is_dir():
        raise DatasetError(f"{out} is a file, not a folder; render the synthetic benchmark into a new or empty folder")
    if not out.is_dir() or not any(out.iterdir()):
        return
    own = {Path(s["path"]) for s in samples}
    if _metadata_format(out / METADATA) != FORMAT:
        example = sorted(p.name for p in out.iterdir())[0]
        raise DatasetError(
            f"{out} is not empty and is not a synthetic dataset rendered by viewclr (no {METADATA} there; it holds "
            f"e.g. {example}): rendering never writes into another folder's files; choose a new or empty folder"
        )
    allowed = own | {Path(name) for name in OWN_FILES} | set(skeletons)
    folders = {path.parent for path in skeletons}
    for path in sorted(out.rglob("*")):
        relative = path.relative_to(out)
        if relative.name.endswith(".part"):  # a write that an interrupted run left unfinished
            relative = relative.with_name(relative.name.removesuffix(".part"))
        inside = any(parent in own for parent in relative.parents)  # a frame of a frame-folder sample
        folder = path.is_dir() and (relative in folders or any(a.is_relative_to(relative) for a in own))
        if relative in allowed or inside or folder:
            continue
        raise DatasetError(
            f"{path} is not a file of the synthetic dataset in {out}: rendering never writes into a folder that holds "
            "other files; move it away or choose a new or empty folder"
        )
    done = set(read_cache_manifest(out))
    started = set(_read_lines(out / RENDERING))
    for sample in samples:
        if (out / sample["path"]).exists() and sample["path"] not in done | started:
            raise DatasetError(
                f"{out / sample['path']} exists but was not written by this renderer (not in {CACHE_MANIFEST}); "
                "rendering never replaces a file it did not write: move it away or choose a new or empty folder"
            )


def _metadata_format(path: Path) -> str | None:
    try:
        return json.loads(path.read_text()).get("format") if path.is_file() else None
    except (json.JSONDecodeError, UnicodeDecodeError, AttributeError, OSError):
        return None


def _read_lines(path: Path) -> list[str]:
    return [line for line in path.read_text().splitlines() if line] if path.is_file() else []


def _check_settings(out: Path, settings: SynthSettings) -> None:
    """Stop if `out` holds a synthetic dataset made with other settings."""
    path = out / METADATA
    if path.is_file():
        try:
            existing = json.loads(path.read_text()).get("settings")
        except json.JSONDecodeError:
            existing = None
        if existing is not None and existing != settings.to_dict():
            wanted = settings.to_dict()
            diff = ", ".join(
                f"{k} {existing.get(k)} there, {v} asked" for k, v in wanted.items() if existing.get(k) != v
            )
            raise DatasetError(f"{out} holds a synthetic dataset made with other settings ({diff}); use another OUT")


def _write_metadata(out: Path, metadata: dict, joints: dict) -> None:
    write_json(out / METADATA, metadata)
    with atomic_path(out / JOINTS_FILE) as partial, open(partial, "wb") as handle:
        np.savez_compressed(handle, **joints)


# ---------------------------------------------------------------------------------------------- rendering


def render_performance(settings: SynthSettings, p: Performance) -> list[np.ndarray]:
    """uint8 frames [F, H, W, 3] of the performance from each of its views, in view order."""
    actor = make_actor(settings.seed, p.subject)
    skel, posed = perform(p, actor, settings.frames)
    scene = make_setup(settings.seed, p.setup).scene
    return [
        render_frames(posed, skel, actor, v.camera, render_room(scene, v.camera, p.light), p.light) for v in p.views
    ]


def write_video(path: Path, frames: np.ndarray, fps: int, crf: int, gop: int) -> None:
    """H.264 (x264, keyframe every `gop` frames, no B-frames, fastdecode), written atomically."""
    container_format = "avi" if path.suffix == ".avi" else "mp4"
    with atomic_path(path) as partial, av.open(str(partial), "w", format=container_format) as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = frames.shape[2], frames.shape[1], "yuv420p"
        stream.thread_count = 1  # one process per core already; also keeps the bytes deterministic
        stream.options = {"crf": str(crf), "g": str(gop), "bf": "0", "preset": "fast", "tune": "fastdecode"}
        for i, array in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(array, format="rgb24")
            frame.pts, frame.time_base = i, Fraction(1, fps)
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))


def write_frame_folder(path: Path, frames: np.ndarray) -> None:
    """JPEG frames `frame_001.jpg`…, written to a temporary folder that is renamed when complete."""
    with atomic_path(path) as partial:
        partial.mkdir()
        for i, array in enumerate(frames, start=1):
            Image.fromarray(array).save(partial / f"frame_{i:03d}.jpg", quality=92)


def _render_task(task: tuple[SynthSettings, str, int, int, int, int]) -> list[dict]:
    settings, out, setup_id, subject, replication, action = task
    p = make_performance(settings, make_setup(settings.seed, setup_id), subject, replication, action)
    entries = []
    for view, frames in zip(p.views, render_performance(settings, p), strict=True):
        relative = sample_path(settings, sample_name(settings, p, view.index))
        target = Path(out) / relative
        if settings.layout == "nucla":
            write_frame_folder(target, frames)
        else:
            write_video(target, frames, settings.fps, settings.crf, settings.gop)
        entries.append(
            {
                "path": relative,
                "frames": len(frames),
                "height": frames.shape[1],
                "width": frames.shape[2],
                "fps": settings.fps,
            }
        )
    return entries


def generate(
    settings: SynthSettings, out: str | Path, *, workers: int | None = None, progress: bool = True
) -> SynthReport:
    """Render the dataset into `out`; videos already there (listed in the manifest) are kept. A folder that is not
    this renderer's is refused before anything is written (`claim_folder`)."""
    start = time.perf_counter()
    settings.validate()
    out = Path(out)
    metadata, joints = build_metadata(settings)
    _check_settings(out, settings)
    skeletons = skeleton_paths(metadata, settings.layout)
    claim_folder(out, metadata["samples"], skeletons)
    out.mkdir(parents=True, exist_ok=True)
    _write_metadata(out, metadata, joints)
    write_skeletons(out, metadata, joints, settings.layout)
    entries = {rel: e for rel, e in read_cache_manifest(out).items() if (out / rel).exists()}
    takes: dict[str, list[dict]] = {}  # performance id → its samples (one per camera), in name order
    for sample in metadata["samples"]:
        takes.setdefault(sample["performance"], []).append(sample)
    todo, keep, pending = [], {}, 0
    for samples in takes.values():
        paths = [s["path"] for s in samples]
        if all(path in entries for path in paths):
            keep.update((path, entries[path]) for path in paths)
        else:  # a take is rendered whole (its cameras share the work), so its old entries go
            first = samples[0]
            todo.append((settings, str(out), first["setup"], first["subject"], first["replication"], first["action"]))
            pending += len(paths)
    write_cache_manifest(out, keep.values())
    # what this run will write, so that a resumption knows the half-rendered videos are its own
    rendering = [s["path"] for s in metadata["samples"] if s["path"] not in keep]
    write_text(out / RENDERING, "\n".join(sorted(set(rendering) | set(_read_lines(out / RENDERING)))) + "\n")
    report = SynthReport(str(out), len(metadata["samples"]), len(keep), 0)
    workers = max(1, min(workers or os.cpu_count() or 1, len(todo) or 1))
    with (
        (out / CACHE_MANIFEST).open("a") as manifest,
        tqdm(total=pending, desc="synth", unit="video", disable=not progress) as bar,
    ):
        pool = None
        if workers == 1:
            results = map(_render_task, todo)
        else:
            pool = multiprocessing.get_context("spawn").Pool(workers)
            results = pool.imap_unordered(_render_task, todo, chunksize=1)
        try:
            for entries in results:
                for entry in entries:
                    manifest.write(json.dumps(entry) + "\n")
                manifest.flush()
                report.rendered += len(entries)
                bar.update(len(entries))
        finally:
            if pool is not None:
                pool.terminate()
                pool.join()
    if settings.layout == "folder":
        _write_labels_csv(out, metadata)
    (out / RENDERING).unlink(missing_ok=True)  # every video is in the manifest now
    report.seconds = time.perf_counter() - start
    return report


def _write_labels_csv(out: Path, metadata: dict) -> None:
    with (out / "labels.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["path", "label", "view", "subject"])
        for s in metadata["samples"]:
            writer.writerow([s["path"], s["label"], s["view"], s["subject"]])  # indices keep the class order
