"""Which frames make a clip: pure index arithmetic, no decoding.

A clip is `frames` frames taken every `stride` frames, so it spans `(frames - 1) * stride + 1` frames of the
video. Training clips start at independent random positions (random temporal crop, as CoCLR); evaluation
takes overlapping windows over the whole video.

Videos shorter than one span are padded (documented choice, `data.pad`):
- `loop`   — the video is played in a loop: indices wrap around modulo its length, starting at a random frame
  (training) or at frame 0 (evaluation);
- `repeat` — the clip starts at frame 0 and the last frame is repeated to fill it.
"""

from __future__ import annotations

import numpy as np

PAD_MODES = ("loop", "repeat")


def clip_span(frames: int, stride: int) -> int:
    return (frames - 1) * stride + 1


def _pad(indices: np.ndarray, num_frames: int, pad: str) -> np.ndarray:
    if pad == "loop":
        return indices % num_frames
    if pad == "repeat":
        return np.minimum(indices, num_frames - 1)
    raise ValueError(f"pad must be one of {PAD_MODES}, got {pad!r}")


def train_clip_indices(
    num_frames: int, frames: int, stride: int, num_clips: int, rng: np.random.Generator, pad: str = "loop"
) -> np.ndarray:
    """[num_clips, frames] frame indices; each clip at an independent random start."""
    if num_frames < 1:
        raise ValueError("a video needs at least one frame")
    offsets = stride * np.arange(frames)
    span = clip_span(frames, stride)
    if num_frames >= span:
        starts = rng.integers(0, num_frames - span + 1, size=num_clips)
    elif pad == "loop":
        starts = rng.integers(0, num_frames, size=num_clips)
    else:
        starts = np.zeros(num_clips, dtype=np.int64)
    return _pad(starts[:, None] + offsets[None, :], num_frames, pad)


def eval_clip_indices(
    num_frames: int,
    frames: int,
    stride: int,
    overlap: float = 0.5,
    max_windows: int | None = None,
    pad: str = "loop",
) -> np.ndarray:
    """[windows, frames] indices of overlapping windows that cover the whole video.

    Consecutive windows start `round(span * (1 - overlap))` frames apart, the last one ends at the last frame;
    with `max_windows`, an evenly spaced subset is kept.
    """
    if num_frames < 1:
        raise ValueError("a video needs at least one frame")
    span = clip_span(frames, stride)
    offsets = stride * np.arange(frames)
    if num_frames <= span:
        starts = np.array([0])
    else:
        step = max(1, round(span * (1.0 - overlap)))
        starts = np.arange(0, num_frames - span + 1, step)
        if starts[-1] != num_frames - span:
            starts = np.append(starts, num_frames - span)
    if max_windows is not None and len(starts) > max_windows:
        starts = starts[np.round(np.linspace(0, len(starts) - 1, max_windows)).astype(int)]
    return _pad(starts[:, None] + offsets[None, :], num_frames, pad)
