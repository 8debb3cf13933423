"""`viewclr prepare`: the cache has the dataset's layout, exact frame counts, resumes, and lists failures."""

import json

import numpy as np
import pytest
from helpers import break_file, frame_index, make_ntu_tree, write_frame_folder, write_video

from viewclr.cli import main
from viewclr.data.cache import CacheSettings, prepare_dataset
from viewclr.data.index import CACHE_MANIFEST, read_cache_manifest
from viewclr.data.loader import ClipDataset
from viewclr.data.registry import get_dataset
from viewclr.errors import DatasetError

NAMES = ["S001C001P001R001A001", "S001C002P002R002A002", "S002C003P003R001A003", "S018C001P050R001A061"]
SMALL = CacheSettings(short_side=32)


@pytest.fixture
def raw(tmp_path):
    root = tmp_path / "raw"
    make_ntu_tree(root, NAMES[:2], num_frames=30, height=54, width=96)
    make_ntu_tree(root, NAMES[2:], num_frames=45, height=54, width=96)
    return root


def test_prepare_ntu(raw, tmp_path):
    out = tmp_path / "cache"
    report = prepare_dataset(get_dataset("ntu60"), raw, out, settings=SMALL, workers=2, progress=False)
    assert (report.total, report.converted, report.already_done, report.failed) == (
        3,
        3,
        0,
        {},
    )  # S018 is NTU-120
    entries = read_cache_manifest(out)
    assert set(entries) == {f"nturgb+d_rgb/{n}_rgb.mp4" for n in NAMES[:3]}
    assert entries["nturgb+d_rgb/S002C003P003R001A003_rgb.mp4"]["frames"] == 45
    assert {(e["height"], e["width"]) for e in entries.values()} == {(32, 56)}  # 96 * 32 / 54 = 56.9 → 56
    samples = {s.name: s for s in get_dataset("ntu60").scan(out)}  # a cache is a dataset root
    assert samples["S001C001P001R001A001"].num_frames == 30 and samples["S001C001P001R001A001"].view == "45"
    # the frames survive re-encoding: clip frame indices decoded from the cache are the requested ones
    item = ClipDataset([samples["S002C003P003R001A003"]], frames=8, stride=5, num_clips=2, seed=3)[0]
    decoded = np.array([[frame_index(f) for f in clip] for clip in item["clips"].numpy()])
    assert (np.diff(decoded, axis=1) == 5).all() and decoded.max() <= 44


def test_second_run_skips_finished_files(raw, tmp_path):
    out = tmp_path / "cache"
    prepare_dataset(get_dataset("ntu60"), raw, out, settings=SMALL, workers=1, progress=False)
    video = out / "nturgb+d_rgb" / f"{NAMES[0]}_rgb.mp4"
    stamp = video.stat().st_mtime_ns
    again = prepare_dataset(get_dataset("ntu60"), raw, out, settings=SMALL, workers=1, progress=False)
    assert (again.converted, again.already_done) == (0, 3)
    assert video.stat().st_mtime_ns == stamp


def test_interrupted_run_resumes(raw, tmp_path):
    out = tmp_path / "cache"
    prepare_dataset(get_dataset("ntu60"), raw, out, settings=SMALL, workers=1, progress=False)
    manifest = out / CACHE_MANIFEST
    lines = manifest.read_text().splitlines()
    # as if killed while writing the third video: its line is half written, a partial file lies beside it
    manifest.write_text("\n".join(lines[:2]) + "\n" + lines[2][:15])
    lost = out / json.loads(lines[2])["path"]
    lost.rename(lost.with_name(lost.name + ".part"))
    report = prepare_dataset(get_dataset("ntu60"), raw, out, settings=SMALL, workers=1, progress=False)
    assert (report.converted, report.already_done) == (1, 2)
    assert len(read_cache_manifest(out)) == 3 and lost.is_file()


def test_unreadable_videos_are_listed_not_fatal(raw, tmp_path, capsys):
    break_file(raw / "nturgb+d_rgb" / f"{NAMES[1]}_rgb.avi", "garbage")
    out = tmp_path / "cache"
    code = main(["prepare", "--dataset", "ntu60", "--root", str(raw), "--out", str(out), "--short-side", "32",
                 "--workers", "2", "--no-progress"])  # fmt: skip
    assert code == 0
    printed = capsys.readouterr().out
    assert "prepared 2 videos" in printed and "1 unreadable" in printed
    assert NAMES[1] in (out / "failed.txt").read_text()
    assert len(read_cache_manifest(out)) == 2


def test_settings_must_match(raw, tmp_path):
    out = tmp_path / "cache"
    prepare_dataset(get_dataset("ntu60"), raw, out, settings=SMALL, workers=1, progress=False)
    with pytest.raises(DatasetError, match="other settings .*short_side 32 there, 64 asked"):
        prepare_dataset(get_dataset("ntu60"), raw, out, settings=CacheSettings(short_side=64), progress=False)
    with pytest.raises(DatasetError, match="must be even"):
        prepare_dataset(get_dataset("ntu60"), raw, tmp_path / "c2", settings=CacheSettings(short_side=31))


def test_prepare_nucla_frame_folders(tmp_path):
    raw = tmp_path / "multiview"
    write_frame_folder(raw / "view_1" / "a01_s01_e00", 14, height=48, width=64)
    write_frame_folder(raw / "view_2" / "a02_s01_e00", 9, height=48, width=64)
    out = tmp_path / "cache"
    prepare_dataset(get_dataset("nucla"), raw, out, settings=SMALL, workers=1, progress=False)
    assert (out / "view_1" / "a01_s01_e00.mp4").is_file()
    samples = {s.name: s for s in get_dataset("nucla").scan(out)}
    assert samples["a01_s01_e00_v01"].num_frames == 14 and samples["a02_s01_e00_v02"].label == 1
    frames = ClipDataset([samples["a01_s01_e00_v01"]], frames=14, train=False)[0]["clips"][0].numpy()
    assert [frame_index(f) for f in frames] == list(range(14))


def test_prepare_folder_dataset_writes_labels(tmp_path):
    raw = tmp_path / "mine"
    write_video(raw / "clips" / "a.mp4", 12, codec="libx264")
    write_video(raw / "clips" / "b.avi", 12)
    (raw / "labels.csv").write_text("path,label,view,subject\nclips/a.mp4,jump,front,1\nclips/b.avi,wave,side,2\n")
    out = tmp_path / "cache"
    prepare_dataset(get_dataset("folder"), raw, out, settings=SMALL, workers=1, progress=False)
    samples = get_dataset("folder").scan(out)
    assert [(s.name, s.label, s.view, s.subject, s.num_frames) for s in samples] == [
        ("clips/a", 0, "front", 1, 12),
        ("clips/b", 1, "side", 2, 12),
    ]


def odd_dataset(tmp_path):
    """A 61×48 video (its short side already 48, its long side odd) and an ordinary 64×48 one."""
    raw = tmp_path / "odd"
    write_video(raw / "videos" / "a.mp4", 12, height=48, width=61)
    write_video(raw / "videos" / "b.mp4", 12, height=48, width=64)
    (raw / "labels.csv").write_text("path,label\nvideos/a.mp4,x\nvideos/b.mp4,y\n")
    return raw


def test_an_odd_frame_size_is_cached_at_an_even_one(tmp_path):
    raw = odd_dataset(tmp_path)
    report = prepare_dataset(get_dataset("folder"), raw, tmp_path / "c", settings=CacheSettings(short_side=48),
                             workers=1, progress=False)  # fmt: skip
    assert report.converted == 2 and not report.failed
    sizes = {k: (e["height"], e["width"]) for k, e in read_cache_manifest(tmp_path / "c").items()}
    assert sizes == {"videos/a.mp4": (48, 60), "videos/b.mp4": (48, 64)}


def test_an_encoder_error_skips_that_video_and_names_it(tmp_path, monkeypatch, capsys):
    """libx264 refusing a video (here: the odd size, with the rounding switched off) is that video's problem."""
    import viewclr.data.cache as cache

    monkeypatch.setattr(cache, "even_size", lambda source, short_side: None)
    raw = odd_dataset(tmp_path)
    code = main(["prepare", "--dataset", "folder", "--root", str(raw), "--labels-csv", str(raw / "labels.csv"),
                 "--out", str(tmp_path / "c"), "--short-side", "48", "--workers", "1", "--no-progress"])  # fmt: skip
    assert code == 0 and "1 unreadable" in capsys.readouterr().out
    failed = (tmp_path / "c" / "failed.txt").read_text()
    assert "videos/a.mp4" in failed and "the encoder failed" in failed
    assert list(read_cache_manifest(tmp_path / "c")) == ["videos/b.mp4"]
    assert not list((tmp_path / "c").rglob("*.part"))
