"""Temporal sampling: clip spans, random crops, padding of short videos, evaluation windows."""

import numpy as np
import pytest

from viewclr.data.sampling import clip_span, eval_clip_indices, train_clip_indices


def test_train_clips_are_strided_and_inside_the_video():
    rng = np.random.default_rng(0)
    idx = train_clip_indices(num_frames=100, frames=8, stride=3, num_clips=500, rng=rng)
    assert idx.shape == (500, 8)
    assert (np.diff(idx, axis=1) == 3).all()
    assert idx.min() >= 0 and idx.max() <= 99
    starts = idx[:, 0]
    assert starts.min() == 0 and starts.max() == 100 - clip_span(8, 3)  # every legal start is reachable
    assert len(set(starts.tolist())) > 50  # independent random starts (random temporal crop)


def test_train_clips_depend_only_on_the_generator():
    a = train_clip_indices(90, 16, 2, 3, np.random.default_rng((0, 1, 5)))
    b = train_clip_indices(90, 16, 2, 3, np.random.default_rng((0, 1, 5)))
    c = train_clip_indices(90, 16, 2, 3, np.random.default_rng((0, 2, 5)))
    assert (a == b).all() and not (a == c).all()


def test_short_video_loops():
    idx = train_clip_indices(num_frames=5, frames=8, stride=1, num_clips=50, rng=np.random.default_rng(0))
    assert idx.max() <= 4
    for clip in idx:  # consecutive frames of the looped video: each step is +1 modulo 5
        assert ((np.diff(clip) % 5) == 1).all()


def test_short_video_repeats_last_frame():
    idx = train_clip_indices(5, 8, 1, 2, np.random.default_rng(0), pad="repeat")
    assert idx.tolist() == [[0, 1, 2, 3, 4, 4, 4, 4]] * 2


def test_eval_windows_overlap_and_cover_the_video():
    idx = eval_clip_indices(num_frames=100, frames=32, stride=1, overlap=0.5)
    starts = idx[:, 0].tolist()
    assert starts == [0, 16, 32, 48, 64, 68]  # half-overlapping, the last one flush with the end
    assert idx[-1, -1] == 99 and idx.shape == (6, 32)


def test_eval_windows_subset_and_short_video():
    idx = eval_clip_indices(100, 32, 1, 0.5, max_windows=3)
    assert idx[:, 0].tolist() == [0, 32, 68]
    short = eval_clip_indices(10, 16, 1)
    assert short.shape == (1, 16) and short[0].tolist() == [i % 10 for i in range(16)]


def test_bad_arguments():
    with pytest.raises(ValueError):
        train_clip_indices(0, 8, 1, 1, np.random.default_rng(0))
    with pytest.raises(ValueError, match="pad"):
        train_clip_indices(4, 8, 1, 1, np.random.default_rng(0), pad="mirror")
