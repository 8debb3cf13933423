"""Clips from videos through DataLoader workers: shapes, the right frames, determinism, bad files skipped."""

import logging

import numpy as np
import pytest
import torch
from helpers import break_file, frame_index, make_ntu_tree, write_video

from viewclr.data.loader import ClipDataset, ClipLoader, EpochSampler
from viewclr.data.registry import get_dataset
from viewclr.data.video import VideoFile
from viewclr.errors import DatasetError

NAMES = [f"S001C00{c}P00{p}R001A00{a}" for c in (1, 2, 3) for p in (1, 3) for a in (1, 2)]


@pytest.fixture(scope="module")
def ntu_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("ntu")
    make_ntu_tree(root, NAMES, num_frames=40)
    return root


@pytest.fixture(scope="module")
def samples(ntu_root):
    return get_dataset("ntu60").scan(ntu_root)


def clip_frame_indices(clips: torch.Tensor) -> np.ndarray:
    """[..., T, H, W, 3] coded clips → the frame index of every frame."""
    flat = clips.reshape(-1, *clips.shape[-3:]).numpy()
    return np.array([frame_index(f) for f in flat]).reshape(clips.shape[:-3])


def test_three_clips_from_one_decode(samples, monkeypatch):
    reads = []
    original = VideoFile.read
    monkeypatch.setattr(VideoFile, "read", lambda self, idx: (reads.append(len(idx)), original(self, idx))[1])
    dataset = ClipDataset(samples, frames=8, stride=2, num_clips=3, seed=0)
    item = dataset[(0, 4)]
    assert item["clips"].shape == (3, 8, 48, 64, 3) and item["clips"].dtype == torch.uint8
    assert len(reads) == 1 and reads[0] <= 24  # one read of the distinct frames of all three clips
    indices = clip_frame_indices(item["clips"])
    assert (np.diff(indices, axis=1) == 2).all()  # each clip: 8 frames at stride 2, really decoded
    assert item["label"] == samples[4].label


def test_clips_depend_on_seed_epoch_index_only(samples):
    dataset = ClipDataset(samples, frames=4, stride=1, num_clips=2, seed=7)
    a, b = dataset[(3, 5)]["clips"], dataset[(3, 5)]["clips"]
    assert torch.equal(a, b)
    epochs = {tuple(clip_frame_indices(dataset[(e, 5)]["clips"])[:, 0]) for e in range(8)}
    assert len(epochs) > 1  # a new random temporal crop each epoch


def test_eval_windows(samples):
    dataset = ClipDataset(samples, frames=16, stride=1, train=False, overlap=0.5)
    indices = clip_frame_indices(dataset[0]["clips"])
    assert indices[:, 0].tolist() == [0, 8, 16, 24]  # 40 frames, windows of 16 every 8
    assert indices[-1, -1] == 39


def test_short_videos_loop(tmp_path):
    make_ntu_tree(tmp_path, ["S001C001P001R001A001"], num_frames=5)
    samples = get_dataset("ntu60").scan(tmp_path)
    indices = clip_frame_indices(ClipDataset(samples, frames=12, seed=1)[0]["clips"])
    assert ((np.diff(indices[0]) % 5) == 1).all()


@pytest.mark.parametrize("workers", [0, 2])
def test_loader_batches(samples, workers):
    loader = ClipLoader(ClipDataset(samples, frames=4, num_clips=3), batch_size=5, num_workers=workers, seed=3)
    batches = list(loader)
    assert [b["clips"].shape[0] for b in batches] == [5, 5, 2]
    assert batches[0]["clips"].shape == (5, 3, 4, 48, 64, 3)
    seen = torch.cat([b["index"] for b in batches]).tolist()
    assert sorted(seen) == list(range(12)) and seen != list(range(12))  # every sample once, shuffled
    assert loader.skipped == {}


def test_batches_do_not_depend_on_worker_count(samples):
    def first_batch(workers):
        loader = ClipLoader(ClipDataset(samples, frames=4, num_clips=2), batch_size=6, num_workers=workers, seed=1)
        loader.set_epoch(2)
        return next(iter(loader))

    a, b = first_batch(0), first_batch(2)
    assert torch.equal(a["index"], b["index"]) and torch.equal(a["clips"], b["clips"])


@pytest.mark.parametrize("workers", [0, 2])
def test_bad_videos_are_skipped_warned_once_and_counted(tmp_path, caplog, workers):
    names = [f"S001C001P001R001A0{a:02d}" for a in range(1, 11)]
    paths = make_ntu_tree(tmp_path, names, num_frames=77)  # long enough that the cut AVI still opens
    broken = {paths[1]: "empty", paths[4]: "truncated", paths[6]: "garbage", paths[8]: "text", paths[9]: "corrupt"}
    for path, how in broken.items():
        break_file(path, how)
    samples = get_dataset("ntu60").scan(tmp_path)
    loader = ClipLoader(ClipDataset(samples, frames=8, stride=4), batch_size=4, num_workers=workers)
    caplog.set_level(logging.WARNING)
    for epoch in range(2):
        loader.set_epoch(epoch)
        delivered = sum(b["clips"].shape[0] for b in loader)
        assert delivered == 5
        assert set(loader.skipped) == {str(p) for p in broken}
        assert "truncated" in loader.skipped[str(paths[4])]
    warnings = [r.getMessage() for r in caplog.records if "skipping unreadable video" in r.getMessage()]
    assert len(warnings) == 5  # one per file, not one per epoch
    assert all(any(str(p) in w for w in warnings) for p in broken)
    summaries = [r.getMessage() for r in caplog.records if "skipped 5 unreadable video(s) of 10" in r.getMessage()]
    assert len(summaries) == 2  # one summary line per epoch, numbered from 1 as the progress bar
    assert summaries[0].startswith("epoch 1: ") and summaries[1].startswith("epoch 2: ")


def test_all_bad_batch_is_dropped(tmp_path):
    paths = make_ntu_tree(tmp_path, ["S001C001P001R001A001", "S001C001P001R001A002"], num_frames=10)
    break_file(paths[0], "empty")
    loader = ClipLoader(ClipDataset(get_dataset("ntu60").scan(tmp_path), frames=4), batch_size=1, shuffle=False)
    assert [b["index"].tolist() for b in loader] == [[1]]


def test_root_errors(tmp_path):
    with pytest.raises(DatasetError, match="no NTU RGB\\+D 60 videos under"):
        get_dataset("ntu60").scan(tmp_path)
    write_video(tmp_path / "nturgb+d_rgb" / "holiday_rgb.avi", 3)
    with pytest.raises(DatasetError, match="holiday_rgb.avi: 'holiday_rgb.avi' is not an NTU RGB"):
        get_dataset("ntu60").scan(tmp_path)
    with pytest.raises(DatasetError, match="is not a directory"):
        get_dataset("ntu60").scan(tmp_path / "nowhere")


def test_mixed_frame_sizes(tmp_path):
    make_ntu_tree(tmp_path, ["S001C001P001R001A001"], num_frames=10)
    make_ntu_tree(tmp_path, ["S001C001P001R001A002"], num_frames=10, height=32, width=64)
    samples = get_dataset("ntu60").scan(tmp_path)
    with pytest.raises(DatasetError, match=r"different frame sizes.*data.frame_size"):
        next(iter(ClipLoader(ClipDataset(samples, frames=4), batch_size=2)))
    batch = next(iter(ClipLoader(ClipDataset(samples, frames=4, frame_size=[24, 32]), batch_size=2)))
    assert batch["clips"].shape == (2, 1, 4, 24, 32, 3)


def test_sampler_shuffles_shards_and_resumes():
    sampler = EpochSampler(10, shuffle=True, seed=0)
    sampler.set_epoch(0)
    epoch0 = [i for _, i in sampler]
    sampler.set_epoch(1)
    epoch1 = [i for _, i in sampler]
    assert sorted(epoch0) == sorted(epoch1) == list(range(10)) and epoch0 != epoch1
    sampler.set_epoch(1, start=4)
    assert [i for _, i in sampler] == epoch1[4:] and len(sampler) == 6
    ranks = [EpochSampler(10, seed=0, rank=r, world_size=3) for r in range(3)]
    shares = [r.order() for r in ranks]
    assert all(len(s) == 4 for s in shares)  # padded to 12 by wrapping around
    assert set().union(*map(set, shares)) == set(range(10))
    assert [k[0] for k in EpochSampler(4)] == [0, 0, 0, 0]  # keys carry the epoch


def test_sampler_grouped_by_subject_keeps_each_subjects_videos_together():
    groups = [i % 4 + 1 for i in range(24)]  # 4 subjects × 6 videos, interleaved
    sampler = EpochSampler(24, seed=3, groups=groups)
    for epoch in range(3):
        sampler.set_epoch(epoch)
        order = [i for _, i in sampler]
        assert sorted(order) == list(range(24))
        runs = [groups[i] for i in order]
        # one run of 6 per subject: batches of 6 hold a single subject
        assert all(len(set(runs[j : j + 6])) == 1 for j in range(0, 24, 6))
        assert len(set(runs[j] for j in range(0, 24, 6))) == 4
    sampler.set_epoch(0)
    first = [i for _, i in sampler]
    sampler.set_epoch(1)
    assert [i for _, i in sampler] != first  # subjects and videos reshuffled every epoch
    sampler.set_epoch(1, start=5)
    assert len(sampler) == 19  # resumes mid-epoch like the plain sampler
    with pytest.raises(ValueError, match="3 group labels for 24 samples"):
        EpochSampler(24, groups=[1, 2, 3])


def test_evaluation_batches_carry_every_window(samples):
    loader = ClipLoader(ClipDataset(samples, frames=16, train=False), batch_size=3, shuffle=False)
    batch = next(iter(loader))
    assert batch["clips"].shape == (12, 16, 48, 64, 3)  # 3 videos × 4 windows of a 40-frame video
    assert batch["video"].tolist() == [0] * 4 + [1] * 4 + [2] * 4
    assert batch["index"].tolist() == [0, 1, 2]
    starts = clip_frame_indices(batch["clips"])[:, 0].tolist()
    assert starts == [0, 8, 16, 24] * 3


def test_config_to_augmented_batch(ntu_root):
    """The whole data path: preset + overrides → protocol split → workers → uint8 → device augmentation."""
    from viewclr.config import load_config
    from viewclr.data.augment import ClipAugment, to_device
    from viewclr.data.registry import build_split

    cfg = load_config(None, [f"data.root={ntu_root}", "data.protocol=cv", "data.frames=8", "data.short_side=32",
                             "augment.size=24", "data.batch_size=4"])  # fmt: skip
    _, split = build_split(cfg.data)
    assert {s.camera for s in split.train_samples()} == {2, 3} and {s.camera for s in split.test_samples()} == {1}
    dataset = ClipDataset.from_config(split.train_samples(), cfg.data, num_clips=3, seed=cfg.seed)
    batch = to_device(next(iter(ClipLoader(dataset, cfg.data.batch_size))), "cpu")
    assert batch["clips"].shape == (4, 3, 8, 32, 42, 3) and batch["clips"].dtype == torch.uint8
    views = ClipAugment(cfg.augment)(batch["clips"])
    assert views.shape == (4, 3, 3, 8, 24, 24) and views.dtype == torch.float32
    assert not torch.allclose(views[:, 0], views[:, 1])  # x and x′ of a video are augmented differently
