"""Decoding: selected frames of a video file (PyAV) or of a folder of JPEG frames (Pillow), as uint8 RGB.

`open_frames(path)` returns a reader with `num_frames` and `read(indices) -> uint8 [N, H, W, 3]`. Readers decode
each requested frame once, seek instead of decoding long stretches nobody asked for, and resize while
converting to RGB (one cached swscale context per file: this halves the cost of small videos).

Anything wrong with a file — it cannot be opened, has no video stream, fails to decode, has no frames, or ends
well before its header or cache manifest says — raises `VideoError`, which loaders skip and count.
"""

from __future__ import annotations

import re
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from av.video.reformatter import VideoReformatter
from PIL import Image

from viewclr.errors import VideoError

FRAME_EXTENSIONS = (".jpg", ".jpeg", ".png")
# A file may end a little before its header's frame count (headers are often off by a frame or two): missing
# tail frames then repeat the last decoded one. Ending before this fraction of the count means truncation.
TRUNCATION_FRACTION = 0.9
# Requested frames further apart than this are reached by seeking again rather than by decoding the gap.
SEEK_GAP = 48
AV_ERRORS = (av.error.FFmpegError, OSError, EOFError)


def output_size(height: int, width: int, short_side: int | None, frame_size=None) -> tuple[int, int]:
    """The (H, W) frames are delivered at: `frame_size` if given, else scaled to `short_side` (the long side
    rounded to an even number, as video codecs need), else unchanged."""
    if frame_size is not None:
        return int(frame_size[0]), int(frame_size[1])
    if short_side is None or min(height, width) == short_side:
        return height, width
    scale = short_side / min(height, width)
    if height <= width:
        return short_side, max(2, 2 * round(width * scale / 2))
    return max(2, 2 * round(height * scale / 2)), short_side


def _natural_key(path: Path) -> list:
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", path.name)]


def list_frame_files(folder: str | Path) -> list[Path]:
    """Image files of a frame folder in frame order (`frame_2` before `frame_10`). Where a folder also holds
    depth visualisations (N-UCLA), only the `*_rgb.*` frames count."""
    files = [p for p in Path(folder).iterdir() if p.suffix.lower() in FRAME_EXTENSIONS and p.is_file()]
    rgb = [p for p in files if p.stem.endswith("_rgb")]
    return sorted(rgb or files, key=_natural_key)


class VideoFile:
    """Frames of one video file, decoded with PyAV."""

    def __init__(
        self,
        path: str | Path,
        num_frames: int | None = None,
        short_side: int | None = None,
        frame_size=None,
        threads: int = 1,
    ):
        self.path = str(path)
        try:
            self.container = av.open(self.path)
        except AV_ERRORS as err:
            raise VideoError(self.path, f"cannot open ({err.__class__.__name__}: {_short(err)})") from None
        try:
            if not self.container.streams.video:
                raise VideoError(self.path, "no video stream")
            self.stream = self.container.streams.video[0]
            self.stream.thread_count = threads
            height, width = self.stream.codec_context.height, self.stream.codec_context.width
            if not height or not width:
                raise VideoError(self.path, "video stream has no frame size")
            self.height, self.width = output_size(height, width, short_side, frame_size)
            # swscale filter: area averaging for big downscales (antialiased, and 2x faster than bilinear from
            # 1080p); plain fast bilinear for small changes and pure colour conversion (2x faster than bilinear)
            shrink = min(height, width) / min(self.height, self.width)
            self._interpolation = "AREA" if shrink >= 2 else "FAST_BILINEAR"
            self.rate = self.stream.average_rate or self.stream.guessed_rate or self.stream.base_rate
            self._start = self.stream.start_time or 0
            # frames per pts tick: index = round((pts - start) * this), a float computed once, not per frame
            self._frames_per_tick = float(self.stream.time_base * Fraction(self.rate)) if self.rate else None
            self.num_frames = num_frames or self.stream.frames or self._estimate_frames()
        except VideoError:
            self.close()
            raise
        self._reformatter = VideoReformatter()

    def _estimate_frames(self) -> int:
        """Frame count for containers whose header does not store it: count the packets (no decoding)."""
        count = sum(1 for packet in self.container.demux(self.stream) if packet.size)
        self.container.seek(0)
        if count == 0:
            raise VideoError(self.path, "no video frames")
        return count

    def _index(self, frame: av.VideoFrame) -> int | None:
        if frame.pts is None or self._frames_per_tick is None:
            return None
        return round((frame.pts - self._start) * self._frames_per_tick)

    def _seek(self, index: int) -> None:
        timestamp = self._start + int(Fraction(index) / Fraction(self.rate) / self.stream.time_base)
        self.container.seek(timestamp, stream=self.stream, backward=True, any_frame=False)

    def _rgb(self, frame: av.VideoFrame) -> np.ndarray:
        return self._reformatter.reformat(
            frame, format="rgb24", width=self.width, height=self.height, interpolation=self._interpolation
        ).to_ndarray()

    def read(self, indices) -> np.ndarray:
        """uint8 [len(indices), H, W, 3] for sorted, distinct, non-negative frame indices."""
        wanted = [int(i) for i in indices]
        if not wanted:
            return np.zeros((0, self.height, self.width, 3), np.uint8)
        try:
            frames, decoded_end, last = self._decode(wanted)
        except AV_ERRORS as err:
            raise VideoError(self.path, f"decode error ({err.__class__.__name__}: {_short(err)})") from None
        missing = [i for i in wanted if i not in frames]
        if missing:
            self._check_complete(decoded_end)
            tail = self._rgb(last)
            for i in missing:
                frames[i] = tail
        return np.stack([frames[i] for i in wanted])

    def _decode(self, wanted: list[int]) -> tuple[dict[int, np.ndarray], int, av.VideoFrame | None]:
        """Decode the wanted frames in runs; returns them, how far the stream went, and its last frame."""
        if self._frames_per_tick is None:  # no timing information: frame indices only by counting
            return self._decode_sequential(wanted)
        runs: list[list[int]] = [[wanted[0]]]
        for i in wanted[1:]:
            if i - runs[-1][-1] > SEEK_GAP:
                runs.append([i])
            else:
                runs[-1].append(i)
        frames: dict[int, np.ndarray] = {}
        position, last = -1, None  # position: index of the last decoded frame, -1 right after a seek
        for run in runs:
            # seek to the keyframe before the run: always for the first run (cheaper than decoding from frame 0
            # with short keyframe intervals, no worse with long ones), for later runs across long gaps
            if run[0] > 0 and (position < 0 or run[0] > position + SEEK_GAP):
                self._seek(run[0])
                position = -1
            want, ended = set(run), True
            for frame in self.container.decode(self.stream):
                index = self._index(frame)
                if index is None or (position >= 0 and index < position) or (position < 0 and index > run[0]):
                    # no timestamp, timestamps going backwards, or a seek that landed after the wanted frame
                    return self._decode_sequential(wanted)
                position, last = index, frame
                if index in want:
                    frames[index] = self._rgb(frame)
                if index >= run[-1]:
                    ended = False
                    break
            if ended:  # the stream ended inside this run
                break
        return frames, position + 1, last

    def _decode_sequential(self, wanted: list[int]) -> tuple[dict[int, np.ndarray], int, av.VideoFrame | None]:
        """Fallback for files without usable timestamps: decode from the first frame, counting."""
        self.container.seek(0)
        want, stop = set(wanted), wanted[-1]
        frames, count, last = {}, 0, None
        for frame in self.container.decode(self.stream):
            if count in want:
                frames[count] = self._rgb(frame)
            last = frame
            count += 1
            if count > stop:
                break
        return frames, count, last

    def iter_frames(self, format: str = "rgb24"):
        """Every frame in order as an av.VideoFrame at the output size (for re-encoding: format="yuv420p")."""
        count = 0
        try:
            for frame in self.container.decode(self.stream):
                count += 1
                yield self._reformatter.reformat(
                    frame, format=format, width=self.width, height=self.height, interpolation=self._interpolation
                )
        except AV_ERRORS as err:
            raise VideoError(self.path, f"decode error ({err.__class__.__name__}: {_short(err)})") from None
        self._check_complete(count)

    def _check_complete(self, decoded: int) -> None:
        """The stream ended after `decoded` frames: an error unless that is (nearly) all the header promised."""
        if decoded == 0:
            raise VideoError(self.path, "no decodable frames")
        if decoded < TRUNCATION_FRACTION * self.num_frames:
            raise VideoError(self.path, f"truncated: ends after {decoded} of {self.num_frames} frames")

    def close(self) -> None:
        self.container.close()

    def __enter__(self) -> VideoFile:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class FrameFolder:
    """Frames of one folder of images (N-UCLA's JPEG frames), decoded with Pillow."""

    def __init__(self, path: str | Path, num_frames: int | None = None, short_side=None, frame_size=None):
        self.path = str(path)
        self.files = list_frame_files(path)
        if not self.files:
            raise VideoError(self.path, "no frame images (.jpg, .jpeg, .png) in folder")
        self.num_frames = len(self.files)
        try:
            with Image.open(self.files[0]) as image:
                width, height = image.size
        except (OSError, Image.DecompressionBombError) as err:
            raise VideoError(str(self.files[0]), f"cannot read frame ({_short(err)})") from None
        self.height, self.width = output_size(height, width, short_side, frame_size)
        self.rate = None

    def read(self, indices) -> np.ndarray:
        out = np.empty((len(indices), self.height, self.width, 3), np.uint8)
        for slot, index in enumerate(indices):
            path = self.files[min(int(index), self.num_frames - 1)]
            try:
                with Image.open(path) as image:
                    image.draft("RGB", (self.width, self.height))  # JPEG: decode at a reduced scale
                    image = image.convert("RGB")
                    if image.size != (self.width, self.height):
                        image = image.resize((self.width, self.height), Image.BILINEAR)
                    out[slot] = np.asarray(image)
            except OSError as err:
                raise VideoError(str(path), f"cannot read frame ({_short(err)})") from None
        return out

    def iter_frames(self, format: str = "rgb24"):
        for index in range(self.num_frames):
            frame = av.VideoFrame.from_ndarray(self.read([index])[0], format="rgb24")
            yield frame if format == "rgb24" else frame.reformat(format=format)

    def close(self) -> None:
        pass

    def __enter__(self) -> FrameFolder:
        return self

    def __exit__(self, *exc) -> None:
        pass


def open_frames(path: str | Path, num_frames=None, short_side=None, frame_size=None, threads: int = 1):
    """A reader for a video file or a frame folder."""
    if not Path(path).exists():
        raise VideoError(str(path), "file does not exist")
    if Path(path).is_dir():
        return FrameFolder(path, num_frames, short_side, frame_size)
    return VideoFile(path, num_frames, short_side, frame_size, threads)


def _short(err: BaseException) -> str:
    """FFmpeg's reason without the path it repeats (callers name the file already)."""
    text = getattr(err, "strerror", None) or str(err)
    return text.splitlines()[0][:200] if text else err.__class__.__name__
