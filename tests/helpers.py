"""Test data the project makes itself: videos whose frames say which frame they are, dataset trees."""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import importlib.util
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import torch
from PIL import Image

REFERENCE = Path(__file__).parent / "data" / "reference"


def tiny_training(root, out, *extra) -> list[str]:
    """Config overrides for a pretraining run that takes seconds: the tiny synthetic dataset at `root`, a very
    narrow S3D on 8×32² clips, batch 4, one + two epochs."""
    return [
        "data.dataset=synth", f"data.root={root}", "data.frames=8", "data.short_side=32", "augment.size=32",
        "data.batch_size=4", "data.num_workers=0", "model.width=0.125", "model.npl_hidden=8", "model.low_dim=8",
        "model.proj_dim=16", "method.queue_size=16", "train.stage1_epochs=1", "train.stage2_epochs=2",
        "train.checkpoint_every=2", "train.threads=1", "train.log_every=1", f"out_dir={out}", *extra,
    ]  # fmt: skip


def reference_lines(relative: str) -> list[str]:
    """Non-empty lines of a reference list (tests/data/reference/<relative>.gz)."""
    with gzip.open(REFERENCE / f"{relative}.gz", "rt") as handle:
        return [line.strip() for line in handle if line.strip()]


def frame_value(index: int) -> int:
    """Grey level of frame `index` in a coded video (frames 0..76 stay distinguishable after compression)."""
    return 16 + 3 * index


def frame_index(frame: np.ndarray) -> int:
    """Which frame of a coded video a decoded frame is."""
    return int(round((float(frame.mean()) - 16) / 3))


def coded_frames(num_frames: int, height: int, width: int) -> list[np.ndarray]:
    return [np.full((height, width, 3), frame_value(i), np.uint8) for i in range(num_frames)]


def write_video(
    path: str | Path,
    num_frames: int = 40,
    height: int = 48,
    width: int = 64,
    fps: int = 30,
    codec: str = "mpeg4",
    gop: int = 12,
) -> Path:
    """A small video whose frame i is uniformly grey at frame_value(i); a keyframe every `gop` frames."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        if codec == "mpeg4":
            stream.options = {"qmin": "1", "qmax": "2", "g": str(gop)}  # near-lossless: frame means stay exact
        else:
            stream.options = {"g": str(gop), "bf": "0"}
        for i, array in enumerate(coded_frames(num_frames, height, width)):
            frame = av.VideoFrame.from_ndarray(array, format="rgb24")
            frame.pts, frame.time_base = i, Fraction(1, fps)
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return path


def write_frame_folder(folder: str | Path, num_frames: int, height: int = 48, width: int = 64) -> Path:
    """An N-UCLA-style folder: frame_<i>_tc_<t>_rgb.jpg, plus a depth image the reader must ignore."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for i, array in enumerate(coded_frames(num_frames, height, width)):
        Image.fromarray(array).save(folder / f"frame_{i}_tc_{1000 + 33 * i}_rgb.jpg", quality=95)
    Image.fromarray(np.zeros((height, width), np.uint8)).save(folder / "frame_0_tc_1000_depth_vis.jpg")
    return folder


def make_ntu_tree(root: str | Path, names: list[str], num_frames: int = 40, **kw) -> list[Path]:
    folder = Path(root) / "nturgb+d_rgb"
    return [write_video(folder / f"{name}_rgb.avi", num_frames, **kw) for name in names]


def make_decoy(root: str | Path) -> Path:
    """A user's dataset in NTU layout: two real videos whose names the synthetic benchmark also renders, and a note."""
    root = Path(root)
    make_ntu_tree(root, ["S001C001P001R001A001", "S001C002P001R001A001"], num_frames=12, height=32, width=32)
    (root / "notes.txt").write_text("my annotations\n")
    return root


def checksums(root: str | Path) -> dict[str, str]:
    """sha256 of every file under root, by relative path."""
    root = Path(root)
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() for p in root.rglob("*") if p.is_file()
    }


def break_file(path: Path, how: str) -> Path:
    """Damage a real video the ways real files get damaged."""
    data = path.read_bytes()
    if how == "empty":
        path.write_bytes(b"")
    elif how == "corrupt":  # the header survives; a quarter of the stream after it is overwritten
        damaged = bytearray(data)
        start, length = len(data) // 3, len(data) // 4
        damaged[start : start + length] = np.random.default_rng(0).integers(0, 256, length, dtype=np.uint8).tobytes()
        path.write_bytes(bytes(damaged))
    elif how == "truncated":
        path.write_bytes(data[: len(data) * 6 // 10])  # an AVI still opens (its header survives), an MP4 not
    elif how == "garbage":
        path.write_bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    elif how == "text":
        path.write_text("this is not a video\n")
    else:
        raise ValueError(how)
    return path


@contextlib.contextmanager
def onednn(enabled: bool):
    """oneDNN on or off for CPU convolutions inside the block (off: PyTorch's own kernels, the same on every CPU)."""
    before = torch.backends.mkldnn.enabled
    torch.backends.mkldnn.enabled = enabled
    try:
        yield
    finally:
        torch.backends.mkldnn.enabled = before


def load_script(name: str):
    """A module of the repository's scripts/ folder, loaded from its file (scripts/ is not a package)."""
    spec = importlib.util.spec_from_file_location(name, Path(__file__).parents[1] / "scripts" / f"{name}.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    return script
