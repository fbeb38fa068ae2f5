"""Audio and video decoding through PyAV (FFmpeg ships inside the ``av`` wheel).

Times are seconds on the media's own timeline: audio sample ``i`` plays at ``i / sample_rate`` and a
video frame is shown from its presentation timestamp (``pts × time_base``) until the next frame's.
Every decoding failure raises ``MediaError`` naming the file; no function returns an empty array in
place of an error.
"""

from __future__ import annotations

import hashlib
import logging
import math
import os
import tempfile
from collections import deque
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Literal

import av
import numpy as np
from av.video.reformatter import VideoReformatter

from camabc_core.errors import MediaError
from camabc_core.file_permissions import apply_umask_permissions

logger = logging.getLogger(__name__)

# Decoded audio is kept as planar float32 so that channels slice without copies.
_AUDIO_FORMAT = "fltp"


def shorten_sphere_coding(path: str | os.PathLike[str]) -> str | None:
    """Return the ``sample_coding`` of a SPHERE file whose samples are shorten-compressed, else None.

    LDC distributes Switchboard-1 this way (``sample_coding -s26 ulaw,embedded-shorten-v2.00``), and
    FFmpeg's SPHERE demuxer reads only uncompressed PCM, mu-law and A-law. Only the 1024-byte
    header is read; a file that is not SPHERE returns None.
    """
    with open(path, "rb") as stream:
        header = stream.read(1024).decode("ascii", errors="replace")
    if not header.startswith("NIST_1A"):
        return None
    for line in header.splitlines():
        fields = line.split(maxsplit=2)
        if len(fields) == 3 and fields[0] == "sample_coding" and "shorten" in fields[2]:
            return fields[2].strip()
    return None


def check_sphere_coding(path: str | os.PathLike[str]) -> None:
    """Raise ``MediaError`` for an existing ``.sph`` file whose samples are shorten-compressed."""
    path = Path(path)
    if path.suffix.lower() != ".sph" or not path.is_file():
        return
    coding = shorten_sphere_coding(path)
    if coding is not None:
        raise MediaError(
            f"{path}: SPHERE samples are compressed with shorten ({coding}), which FFmpeg "
            f"cannot decode; decompress the corpus first (e.g. sph2pipe -f wav -p {path.name} "
            f"{path.stem}.wav) and use the .wav files in place of the .sph files"
        )


def _open_container(path: Path, what: str) -> av.container.InputContainer:
    if not path.is_file():
        raise MediaError(f"{path}: {what} file not found; check the corpus root and the media paths")
    check_sphere_coding(path)
    try:
        return av.open(str(path), mode="r")
    except av.FFmpegError as error:
        raise MediaError(
            f"{path}: cannot open {what} file ({error}); it may be truncated or corrupt, "
            f"re-download or re-encode it"
        ) from error


def decode_audio(path: str | os.PathLike[str], sample_rate: int = 16000) -> np.ndarray:
    """Decode every audio channel of ``path`` to float32 at ``sample_rate``: shape (C, N).

    Any sample rate, channel count and sample format FFmpeg reads is accepted. Resampling uses
    PyAV's ``AudioResampler`` (libswresample) and keeps the channel layout, so channel mixing and
    selection happen afterwards in numpy with exact weights.
    """
    path = Path(path)
    container = _open_container(path, "audio")
    with container:
        if not container.streams.audio:
            raise MediaError(f"{path}: no audio stream; pass a file with audio or drop the audio modality")
        stream = container.streams.audio[0]
        resampler = av.AudioResampler(format=_AUDIO_FORMAT, rate=sample_rate)
        chunks: list[np.ndarray] = []
        try:
            for frame in container.decode(stream):
                chunks.extend(resampled.to_ndarray() for resampled in resampler.resample(frame))
            chunks.extend(resampled.to_ndarray() for resampled in resampler.resample(None))
        except av.FFmpegError as error:
            raise MediaError(
                f"{path}: audio decoding failed after {sum(c.shape[1] for c in chunks)} samples "
                f"({error}); the file may be truncated or corrupt"
            ) from error
    if not chunks or sum(chunk.shape[1] for chunk in chunks) == 0:
        raise MediaError(f"{path}: the audio stream decoded to 0 samples; the file may be truncated")
    return np.ascontiguousarray(np.concatenate(chunks, axis=1), dtype=np.float32)


def _cache_file(path: Path, sample_rate: int, cache_dir: Path) -> Path:
    stat = path.stat()
    key = f"{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}|{sample_rate}"
    return cache_dir / f"{hashlib.sha1(key.encode()).hexdigest()}.npy"


def _save_atomically(array: np.ndarray, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=target.parent, suffix=".npy.tmp")
    try:
        with os.fdopen(handle, "wb") as stream:
            np.save(stream, array)
        apply_umask_permissions(temporary)
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


class AudioSource:
    """A decoded audio file that serves fixed-length windows by slicing.

    ``channels`` is float32 (C, N) at ``sample_rate``. With ``cache_dir``, ``from_file`` stores the
    decoded array as ``.npy`` (keyed by path, size, modification time and rate) and later opens it
    memory-mapped, so data-loader workers share one decoded copy instead of decoding again.
    """

    def __init__(self, channels: np.ndarray, sample_rate: int, path: Path | None = None):
        if channels.ndim != 2:
            raise ValueError(f"channels must have shape (C, N), got {channels.shape}")
        self.channels = channels
        self.sample_rate = sample_rate
        self.path = path
        self._mono: np.ndarray | None = None

    @classmethod
    def from_file(
        cls,
        path: str | os.PathLike[str],
        sample_rate: int = 16000,
        cache_dir: str | os.PathLike[str] | None = None,
    ) -> AudioSource:
        path = Path(path)
        if cache_dir is None:
            return cls(decode_audio(path, sample_rate), sample_rate, path)
        if not path.is_file():
            raise MediaError(f"{path}: audio file not found; check the corpus root and the media paths")
        cached = _cache_file(path, sample_rate, Path(cache_dir))
        if not cached.is_file():
            _save_atomically(decode_audio(path, sample_rate), cached)
        return cls(np.load(cached, mmap_mode="r"), sample_rate, path)

    @property
    def num_channels(self) -> int:
        return self.channels.shape[0]

    @property
    def num_samples(self) -> int:
        return self.channels.shape[1]

    @property
    def duration(self) -> float:
        return self.num_samples / self.sample_rate

    def signal(self, channel: int | None = None) -> np.ndarray:
        """Return one channel, or the mean of all channels when ``channel`` is None: shape (N,)."""
        if channel is not None:
            if not 0 <= channel < self.num_channels:
                raise MediaError(
                    f"{self.path}: channel {channel} requested but the file has {self.num_channels} "
                    f"channel(s); check the conversation's channel_speakers"
                )
            return self.channels[channel]
        if self.num_channels == 1:
            return self.channels[0]
        if self._mono is None:
            # Computed once: an equal-weight mix keeps a full-scale tone on one stereo side at half scale.
            self._mono = self.channels.mean(axis=0, dtype=np.float32)
        return self._mono

    def window(
        self, end_time: float, num_samples: int, channel: int | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Return the ``num_samples`` samples before ``end_time`` (exclusive) and their padding mask.

        The window is samples ``[round(end_time × rate) − num_samples, round(end_time × rate))``.
        Positions before the start or past the end of the audio are zero and True in the mask. The
        returned samples are a new float32 array (S,) the caller may modify.
        """
        signal = self.signal(channel)
        end = round(end_time * self.sample_rate)
        start = end - num_samples
        samples = np.zeros(num_samples, dtype=np.float32)
        padding = np.ones(num_samples, dtype=bool)
        source_start, source_end = max(start, 0), min(end, signal.shape[0])
        if source_end > source_start:
            samples[source_start - start : source_end - start] = signal[source_start:source_end]
            padding[source_start - start : source_end - start] = False
        return samples, padding


def load_audio(
    path: str | os.PathLike[str], sample_rate: int = 16000, channel: int | None = None
) -> np.ndarray:
    """Decode ``path`` to float32 mono (N,) at ``sample_rate``: one channel or the mean of all."""
    return np.ascontiguousarray(AudioSource.from_file(path, sample_rate).signal(channel))


VideoMode = Literal["seek", "sequential"]

# Packets remembered behind and read ahead of the one being decoded, to decide whether its frame can
# be skipped. H.264 and HEVC reorder at most 16 frames, so the next frame in presentation order is
# almost always inside this window. A miss only costs a decode, never a wrong frame.
_PACKET_WINDOW = 20


class VideoReader:
    """Frames of a video file at exact timestamps, correct for variable frame rate.

    The frame returned for time τ is the one on screen at τ: the last frame whose presentation time
    (``pts × time_base``) is ≤ τ. A τ before the first frame gives the first frame. A τ after the
    last decodable frame gives that last frame, which is cached once the end of the stream is known.

    ``mode="seek"`` seeks to the keyframe before a request unless the request lies at most
    ``max_decode_ahead`` seconds after the current decoding position, where decoding on is cheaper.
    ``mode="sequential"`` never seeks: it decodes from the start of the file (reopening it when a
    request lies behind the current position). It exists to measure what seeking saves.

    Both modes skip decoding non-reference frames (``skip_frame=NONREF``) that cannot be on screen
    at a requested time, which is known from packet timestamps before decoding. Reference frames
    are always decoded, because later frames are predicted from them.

    ``size`` resizes frames: an int gives square frames, a tuple is (height, width), None keeps the
    stored size. Frames are uint8 RGB (H, W, 3). ``threads`` is the decoder's thread count (0 lets
    FFmpeg choose). Not thread-safe. Each data-loader worker needs its own reader, so pickling keeps
    only the settings.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        size: int | tuple[int, int] | None = None,
        mode: VideoMode = "seek",
        max_decode_ahead: float = 1.0,
        threads: int = 0,
    ):
        if mode not in ("seek", "sequential"):
            raise ValueError(f"mode must be 'seek' or 'sequential', got {mode!r}")
        self.path = Path(path)
        self.size = (size, size) if isinstance(size, int) else size
        self.mode = mode
        self.max_decode_ahead = max_decode_ahead
        self.threads = threads
        self._container: av.container.InputContainer | None = None
        self._reformatter = VideoReformatter()
        self._requests = np.empty(0)  # sorted times of the frames_at call in progress
        self._reset_cursor()
        # Set when decoding first reaches the end of the stream.
        self._end_time: float | None = None
        self._end_image: np.ndarray | None = None
        self._open()

    def __getstate__(self) -> dict[str, object]:
        return {
            "path": self.path,
            "size": self.size,
            "mode": self.mode,
            "max_decode_ahead": self.max_decode_ahead,
            "threads": self.threads,
        }

    def __setstate__(self, state: dict[str, object]) -> None:
        self.__init__(**state)  # type: ignore[misc, arg-type]

    def __enter__(self) -> VideoReader:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        if self._container is not None:
            self._container.close()
            self._container = None
        self._reset_cursor()

    def _reset_cursor(self) -> None:
        self._packets: Iterator[av.Packet] | None = None
        self._upcoming_packets: deque[av.Packet] = deque()
        self._sent_times: deque[float | None] = deque(maxlen=_PACKET_WINDOW)
        self._decoded: deque[av.VideoFrame] = deque()
        self._drained = False
        self._current: av.VideoFrame | None = None  # last frame at or before the last request
        self._next_frame: av.VideoFrame | None = None  # decoded frame after the last request
        self._decoded_in_pass = 0

    def _open(self) -> None:
        container = _open_container(self.path, "video")
        if not container.streams.video:
            container.close()
            raise MediaError(f"{self.path}: no video stream; pass a video file or drop the video modality")
        stream = container.streams.video[0]
        # Frame threading keeps one frame per thread in flight, which delays the first frame after
        # every seek. On 640x360 h264 with PyAV 18.1 it also used about 10% more CPU per 1.5 s window.
        stream.thread_type = "SLICE"
        stream.thread_count = self.threads
        self._container = container
        self._stream = stream
        self._reset_cursor()

    @property
    def time_base(self) -> float:
        return float(self._stream.time_base)

    @property
    def average_rate(self) -> float | None:
        """Average frames per second the container declares (None when unknown); not used for lookups."""
        rate = self._stream.average_rate
        return float(rate) if rate else None

    @property
    def last_frame_time(self) -> float:
        """Presentation time of the last decodable frame.

        Found once, by decoding from the last keyframe to the end of the stream.
        """
        if self._end_time is None:
            self.frames_at([math.inf])
        assert self._end_time is not None
        return self._end_time

    # Decoding cursor -------------------------------------------------------------------------

    def _timestamp_seconds(self, pts: int | None) -> float | None:
        return None if pts is None else float(pts * self._stream.time_base)

    def _frame_time(self, frame: av.VideoFrame) -> float:
        time = self._timestamp_seconds(frame.pts)
        if time is None:
            raise MediaError(
                f"{self.path}: a video frame has no timestamp; remux the file (ffmpeg -i IN -c copy OUT.mp4)"
            )
        return time

    def _read_ahead(self) -> None:
        assert self._container is not None
        if self._packets is None:
            self._packets = self._container.demux(self._stream)
        while len(self._upcoming_packets) < _PACKET_WINDOW:
            packet = next(self._packets, None)
            if packet is None:
                return
            if packet.size:  # demuxing ends with an empty packet that only flushes
                self._upcoming_packets.append(packet)

    def _frame_may_be_requested(self, time: float | None) -> bool:
        """Return False only if a frame shown from ``time`` is on screen at no requested time.

        That holds when another known packet is shown after it but no later than the first
        requested time at or after it.
        """
        if time is None:
            return True
        index = int(np.searchsorted(self._requests, time, side="left"))
        if index == self._requests.size:
            return True  # past this call's requests: the next call may need it
        limit = float(self._requests[index])
        upcoming = (self._timestamp_seconds(packet.pts) for packet in self._upcoming_packets)
        return not any(
            other is not None and time < other <= limit for other in (*self._sent_times, *upcoming)
        )

    def _decode_next(self) -> av.VideoFrame | None:
        """Return the next decoded frame in presentation order, or None at the end of the stream."""
        codec = self._stream.codec_context
        try:
            while not self._decoded:
                if self._drained:
                    return None
                self._read_ahead()
                if not self._upcoming_packets:
                    self._decoded.extend(codec.decode(None))
                    self._drained = True
                    continue
                packet = self._upcoming_packets.popleft()
                time = self._timestamp_seconds(packet.pts)
                codec.skip_frame = "DEFAULT" if self._frame_may_be_requested(time) else "NONREF"
                self._sent_times.append(time)
                self._decoded.extend(codec.decode(packet))
        except av.FFmpegError as error:
            if self._decoded_in_pass == 0:
                raise MediaError(
                    f"{self.path}: video decoding failed ({error}); the file may be corrupt"
                ) from error
            # A damaged tail (an interrupted download) ends the usable stream; earlier frames stay valid.
            logger.warning(
                "%s: video decoding stopped early (%s); later times get the last good frame", self.path, error
            )
            self._decoded.clear()
            self._drained = True
            return None
        self._decoded_in_pass += 1
        return self._decoded.popleft()

    def _stream_end_hint(self) -> float:
        """End of the video stream as the container declares it, or a far time when it declares none."""
        stream = self._stream
        if stream.duration:
            return float((stream.duration + (stream.start_time or 0)) * stream.time_base)
        assert self._container is not None
        if self._container.duration:
            return self._container.duration / av.time_base
        return 1e9

    def _seek(self, target: float) -> None:
        """Position the decoder on a keyframe at or before ``target`` seconds."""
        assert self._container is not None
        target = min(target, self._stream_end_hint())
        margin = 0.0
        while True:
            seek_time = max(target - margin, 0.0)
            self._reset_cursor()
            try:
                self._container.seek(
                    math.floor(seek_time / self._stream.time_base),
                    stream=self._stream,
                    backward=True,
                    any_frame=False,
                )
            except av.FFmpegError as error:
                raise MediaError(f"{self.path}: seeking to {seek_time:.3f} s failed ({error})") from error
            first = self._decode_next()
            if seek_time == 0.0 or (first is not None and self._frame_time(first) <= target):
                self._next_frame = first
                return
            # Nothing decodes after the seek point (it is past the last keyframe), or the keyframe found
            # is shown after ``target`` (the demuxer index is by decoding time, so B-frames shift it).
            # Step back until a keyframe before ``target`` is found.
            margin = max(2 * margin, 1.0)

    def _frame_for(self, target: float) -> tuple[av.VideoFrame | None, bool]:
        """Advance the cursor to ``target`` and return (frame on screen, reached end of stream)."""
        while True:
            if self._next_frame is None:
                self._next_frame = self._decode_next()
                if self._next_frame is None:
                    return self._current, True
            if self._frame_time(self._next_frame) <= target:
                self._current, self._next_frame = self._next_frame, None
                continue
            # ``target`` precedes the next frame: the current one is on screen, or it is before the first.
            return (self._current if self._current is not None else self._next_frame), False

    def _position_for(self, target: float) -> None:
        """Seek, restart or keep decoding forward, whichever reaches ``target`` with least work.

        Frames before the cursor may have been skipped, so a target behind it always seeks or restarts.
        """
        position = None
        if self._current is not None:
            position = self._frame_time(self._current)
        elif self._next_frame is not None:
            position = self._frame_time(self._next_frame)
        if self.mode == "sequential":
            if position is None or target < position:
                self.close()
                self._open()
            return
        if position is None or target < position or target - position > self.max_decode_ahead:
            self._seek(target)

    # Public API --------------------------------------------------------------------------------

    def _to_image(self, frame: av.VideoFrame) -> np.ndarray:
        # One reformatter per reader keeps libswscale's context between frames (several times
        # faster than a new one per frame). Area averaging avoids aliasing when shrinking.
        height, width = self.size if self.size is not None else (frame.height, frame.width)
        image = self._reformatter.reformat(
            frame, width=width, height=height, format="rgb24", interpolation="AREA"
        )
        return image.to_ndarray()

    def frames_at(self, times: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
        """Return the frames on screen at ``times`` (L,) and their presentation times.

        Output: images uint8 (L, H, W, 3) and frame times float64 (L,), in the order of ``times``.
        Sorted times decode in one forward pass; a frame shown at several times is converted once.
        """
        requested = np.asarray(times, dtype=np.float64)
        if requested.ndim != 1 or requested.size == 0:
            raise ValueError(f"times must be a non-empty 1-D sequence, got shape {requested.shape}")
        if np.isnan(requested).any():
            raise ValueError("times contain NaN")
        images: list[np.ndarray | None] = [None] * requested.size
        frame_times = np.empty(requested.size, dtype=np.float64)
        converted: dict[int, np.ndarray] = {}  # pts -> image, for frames repeated within this call
        self._requests = np.sort(requested)
        try:
            for index in np.argsort(requested, kind="stable"):
                target = float(requested[index])
                if self._end_time is not None and target >= self._end_time:
                    images[index], frame_times[index] = self._end_image, self._end_time
                    continue
                self._position_for(target)
                frame, at_end = self._frame_for(target)
                if frame is None:
                    raise MediaError(f"{self.path}: the video stream has no decodable frame")
                if frame.pts not in converted:
                    converted[frame.pts] = self._to_image(frame)
                time = self._frame_time(frame)
                if at_end:
                    self._end_time, self._end_image = time, converted[frame.pts]
                images[index], frame_times[index] = converted[frame.pts], time
        finally:
            self._requests = np.empty(0)
        return np.stack(images), frame_times  # type: ignore[arg-type]
