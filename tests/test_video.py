"""Decoding: the right frames (checked through real decoding), resizing, seeking, and bad files."""

import av
import numpy as np
import pytest
from helpers import break_file, frame_index, write_frame_folder, write_video

from viewclr.data import video
from viewclr.data.video import FrameFolder, VideoFile, open_frames, output_size
from viewclr.errors import VideoError


def decoded_indices(frames: np.ndarray) -> list[int]:
    return [frame_index(f) for f in frames]


@pytest.mark.parametrize(("codec", "ext"), [("mpeg4", "avi"), ("libx264", "mp4"), ("mpeg4", "mkv")])
def test_reads_exactly_the_requested_frames(tmp_path, codec, ext):
    path = write_video(tmp_path / f"v.{ext}", 77, codec=codec)
    with VideoFile(path) as reader:
        assert reader.num_frames == 77  # mkv stores no count: counted from packets
        wanted = [0, 1, 5, 17, 18, 40, 76]
        frames = reader.read(wanted)
    assert frames.shape == (7, 48, 64, 3) and frames.dtype == np.uint8
    assert decoded_indices(frames) == wanted


def test_far_apart_frames_are_reached_by_seeking(tmp_path, monkeypatch):
    path = write_video(tmp_path / "v.mp4", 77, codec="libx264", gop=8)
    seeks = []
    original = VideoFile._seek
    monkeypatch.setattr(VideoFile, "_seek", lambda self, i: (seeks.append(i), original(self, i)))
    with VideoFile(path) as reader:
        frames = reader.read([2, 3, 60, 61, 70])
    assert decoded_indices(frames) == [2, 3, 60, 61, 70]
    assert seeks == [2, 60]  # to the first run, and across the gap 3 → 60 (longer than SEEK_GAP)


def test_a_late_clip_decodes_from_the_keyframe_before_it(tmp_path, monkeypatch):
    path = write_video(tmp_path / "v.mp4", 77, codec="libx264", gop=8)
    decoded = []
    original = VideoFile._index
    monkeypatch.setattr(VideoFile, "_index", lambda self, f: decoded.append(original(self, f)) or decoded[-1])
    with VideoFile(path) as reader:
        assert decoded_indices(reader.read(range(45, 61))) == list(range(45, 61))
    assert decoded == list(range(40, 61))  # keyframes every 8 frames: 40 is the one before 45


def test_frames_without_timestamps_are_counted_from_the_start(tmp_path, monkeypatch):
    path = write_video(tmp_path / "v.mp4", 77, codec="libx264", gop=8)
    monkeypatch.setattr(VideoFile, "_index", lambda self, frame: None)  # as if no frame had a pts
    with VideoFile(path) as reader:
        assert decoded_indices(reader.read([5, 6, 60, 76])) == [5, 6, 60, 76]


def test_each_requested_frame_is_decoded_once(tmp_path, monkeypatch):
    path = write_video(tmp_path / "v.avi", 40)
    converted = []
    original = VideoFile._rgb
    monkeypatch.setattr(VideoFile, "_rgb", lambda self, f: (converted.append(1), original(self, f))[1])
    with VideoFile(path) as reader:
        reader.read(list(range(0, 40, 2)))
    assert len(converted) == 20


def test_resizing(tmp_path):
    path = write_video(tmp_path / "v.avi", 4, height=108, width=192)
    with VideoFile(path, short_side=64) as reader:
        assert reader.read([0]).shape == (1, 64, 114, 3)  # 192 * 64 / 108 = 113.8 → even 114
    with VideoFile(path, frame_size=[32, 40]) as reader:
        assert reader.read([0, 3]).shape == (2, 32, 40, 3)
    assert output_size(1080, 1920, 128) == (128, 228)
    assert output_size(1920, 1080, 128) == (228, 128)
    assert output_size(112, 112, None) == (112, 112)


def test_header_slightly_long_repeats_last_frame(tmp_path):
    path = write_video(tmp_path / "v.avi", 40)
    with VideoFile(path, num_frames=42) as reader:  # a count two frames too high: tolerated
        assert decoded_indices(reader.read([38, 39, 40, 41])) == [38, 39, 39, 39]


def test_truncated_video_is_an_error(tmp_path):
    path = break_file(write_video(tmp_path / "v.avi", 77), "truncated")
    with (
        VideoFile(path) as reader,
        pytest.raises(VideoError, match=r"truncated: ends after \d+ of 77 frames"),
    ):
        reader.read([70, 75])
    with VideoFile(path) as reader, pytest.raises(VideoError, match="truncated"):
        list(reader.iter_frames())


@pytest.mark.parametrize(("how", "ext"), [("empty", "avi"), ("garbage", "avi"), ("text", "avi"), ("truncated", "mp4")])
def test_unreadable_files_raise_video_error(tmp_path, how, ext):
    path = break_file(write_video(tmp_path / f"v.{ext}", 40, codec="libx264" if ext == "mp4" else "mpeg4"), how)
    with pytest.raises(VideoError, match="cannot open|no video stream") as info:
        open_frames(path)
    assert info.value.path == str(path)


@pytest.mark.parametrize(
    ("codec", "ext", "reason"), [("libx264", "mp4", "decode error"), ("mpeg4", "avi", "truncated")]
)
def test_corrupt_stream_raises_video_error(tmp_path, codec, ext, reason):
    path = break_file(write_video(tmp_path / f"v.{ext}", 77, height=96, width=128, codec=codec, gop=8), "corrupt")
    with open_frames(path) as reader, pytest.raises(VideoError, match=reason):  # opens, fails while decoding
        reader.read(range(77))


def test_audio_only_file_has_no_video_stream(tmp_path):
    path = tmp_path / "sound.mp4"
    with av.open(str(path), "w") as container:
        stream = container.add_stream("aac", rate=16000)
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
        frame.sample_rate = 16000
        container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    with pytest.raises(VideoError, match="no video stream"):
        open_frames(path)


def test_missing_file(tmp_path):
    with pytest.raises(VideoError, match="does not exist"):
        open_frames(tmp_path / "nope.avi")


def test_frame_folder(tmp_path):
    folder = write_frame_folder(tmp_path / "a01_s01_e00", 12)
    reader = open_frames(folder, short_side=24)
    assert isinstance(reader, FrameFolder) and reader.num_frames == 12
    frames = reader.read([0, 3, 11])
    assert frames.shape == (3, 24, 32, 3)
    assert decoded_indices(frames) == [0, 3, 11]
    assert [f.name for f in video.list_frame_files(folder)][:3] == [
        "frame_0_tc_1000_rgb.jpg",
        "frame_1_tc_1033_rgb.jpg",
        "frame_2_tc_1066_rgb.jpg",
    ]  # numeric order, depth images left out


def test_frame_folder_errors(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(VideoError, match="no frame images"):
        open_frames(tmp_path / "empty")
    folder = write_frame_folder(tmp_path / "f", 4)
    (folder / "frame_2_tc_1066_rgb.jpg").write_bytes(b"\xff\xd8 broken")
    with pytest.raises(VideoError, match="cannot read frame"):
        open_frames(folder).read([2])
