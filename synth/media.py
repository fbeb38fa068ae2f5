"""Files of the synth pipeline: reference PNGs, driving wavs and muxed mp4 clips.

Every output is written under a temporary name in its final folder and moved into place with
``os.replace``, so a killed run leaves either the previous file or the complete new one.
Clips are written with moviepy 2 (libx264 video, AAC audio) from frames pulled one at a time.
"""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
import wave
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from PIL import Image

from camabc_core.file_permissions import apply_umask_permissions
from synth.errors import SynthError

logger = logging.getLogger(__name__)

# AAC codes 1024 samples per packet: 21 ms at 48 kHz stays under one video frame at up to 48 fps,
# where the 16 kHz driving audio would give 64 ms packets.
MUX_AUDIO_RATE = 48000


@contextlib.contextmanager
def atomic_output(target: Path) -> Iterator[Path]:
    """Yield a temporary path beside ``target`` (same suffix) and move it onto ``target`` on success."""
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary_name = tempfile.mkstemp(
        dir=target.parent, prefix=f".{target.stem}.", suffix=f".tmp{target.suffix}"
    )
    os.close(handle)
    temporary = Path(temporary_name)
    try:
        yield temporary
        # mkstemp's file is owner-only (0600); give the result the usual umask-based mode.
        apply_umask_permissions(temporary)
        os.replace(temporary, target)
    finally:
        temporary.unlink(missing_ok=True)


def save_png(image: np.ndarray, target: Path) -> None:
    """Write an RGB uint8 (H, W, 3) image to ``target`` atomically."""
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise SynthError(f"{target}: expected an RGB uint8 (H, W, 3) image, got {image.dtype} {image.shape}")
    with atomic_output(target) as temporary:
        Image.fromarray(image).save(temporary, format="PNG")


def load_png(path: Path) -> np.ndarray:
    """Read an image file as RGB uint8 (H, W, 3)."""
    try:
        with Image.open(path) as image:
            return np.asarray(image.convert("RGB"))
    except (OSError, ValueError) as error:
        raise SynthError(f"{path}: cannot read the reference image ({error}); delete it and rerun") from error


def write_wav(samples: np.ndarray, sample_rate: int, target: Path) -> None:
    """Write mono float audio (S,) in [-1, 1] as 16-bit PCM wav (clipped, not normalised)."""
    pcm = np.round(np.clip(samples, -1.0, 1.0) * 32767.0).astype("<i2")
    with wave.open(str(target), "wb") as writer:
        writer.setnchannels(1)
        writer.setsampwidth(2)
        writer.setframerate(sample_rate)
        writer.writeframes(pcm.tobytes())


class _FrameFeed:
    """Serves a frame iterator to moviepy's ``frame_function(t)``, which reads frames in time order.

    moviepy requests frame 0 once to learn the size and then every frame in order, so only the
    current frame is kept. A request for an earlier frame, a frame of the wrong shape or too few
    frames raises ``SynthError``.
    """

    def __init__(self, frames: Iterator[np.ndarray], num_frames: int, fps: int, size: tuple[int, int],
                 source: str):
        self._frames = frames
        self._num_frames = num_frames
        self._fps = fps
        self._shape = (size[1], size[0], 3)
        self._source = source
        self._index = -1
        self._frame: np.ndarray | None = None

    def __call__(self, time: float) -> np.ndarray:
        index = min(round(time * self._fps), self._num_frames - 1)
        if index < self._index:
            raise SynthError(f"{self._source}: frame {index} requested after frame {self._index}")
        while self._index < index:
            try:
                frame = next(self._frames)
            except StopIteration:
                raise SynthError(
                    f"{self._source}: the animator yielded {self._index + 1} frames, "
                    f"{self._num_frames} were requested"
                ) from None
            if frame.shape != self._shape or frame.dtype != np.uint8:
                raise SynthError(
                    f"{self._source}: the animator yielded a {frame.dtype} frame of shape {frame.shape}, "
                    f"expected uint8 {self._shape}"
                )
            self._frame = frame
            self._index += 1
        assert self._frame is not None
        return self._frame

    @property
    def frames_served(self) -> int:
        return self._index + 1


def write_clip(target: Path, frames: Iterator[np.ndarray], *, num_frames: int, fps: int,
               size: tuple[int, int], audio_path: Path, crf: int = 18) -> None:
    """Mux ``num_frames`` frames of ``size`` (width, height) and the wav at ``audio_path`` into an mp4.

    The mp4 has one H.264 video stream (yuv420p, so width and height must be even) and one AAC audio
    stream at 48 kHz, both ``num_frames / fps`` seconds long. The file appears at ``target`` only
    when it is complete.
    """
    # moviepy imports are slow and only this function needs them.
    try:
        from moviepy import AudioFileClip, VideoClip
    except ImportError as error:
        raise SynthError(f"writing {target} needs moviepy 2; install it with: "
                         f"pip install 'camabc[synth]'") from error

    width, height = size
    if width % 2 or height % 2:
        raise SynthError(f"{target}: H.264 with yuv420p needs an even width and height, got {width}x{height}")
    duration = num_frames / fps
    # moviepy writes int(duration × fps) frames; step up past float round-off so none is lost.
    while int(duration * fps) < num_frames:
        duration = float(np.nextafter(duration, np.inf))
    feed = _FrameFeed(frames, num_frames, fps, size, source=str(target))
    video = VideoClip(frame_function=feed, duration=duration)
    # AudioFileClip resamples through FFmpeg, so the 16 kHz driving audio reaches AAC filtered.
    audio = AudioFileClip(str(audio_path), fps=MUX_AUDIO_RATE)
    audio = audio.with_duration(min(audio.duration, duration))
    clip = video.with_audio(audio)
    temporary_audio: Path | None = None
    try:
        with atomic_output(target) as temporary:
            # moviepy encodes the audio to this file first and leaves it behind when writing fails.
            temporary_audio = temporary.with_name(f"{temporary.stem}.audio.m4a")
            clip.write_videofile(
                str(temporary), fps=fps, codec="libx264", audio_codec="aac", audio_fps=MUX_AUDIO_RATE,
                temp_audiofile=str(temporary_audio), pixel_format="yuv420p",
                ffmpeg_params=["-crf", str(crf)], logger=None,
            )
            if feed.frames_served != num_frames:
                raise SynthError(f"{target}: {feed.frames_served} of {num_frames} frames were written")
    finally:
        audio.close()
        clip.close()
        if temporary_audio is not None:
            temporary_audio.unlink(missing_ok=True)


def probe_duration(path: Path) -> float:
    """Return the duration of the first audio stream in seconds, decoding only when the header has none."""
    import av

    from camabc_core.errors import MediaError
    from camabc_core.media import decode_audio

    if not path.is_file():
        raise MediaError(f"{path}: audio file not found; check the path")
    try:
        with av.open(str(path)) as container:
            if not container.streams.audio:
                raise MediaError(f"{path}: no audio stream; pass a file with audio")
            stream = container.streams.audio[0]
            if stream.duration and stream.time_base:
                return float(stream.duration * stream.time_base)
            if container.duration:
                return container.duration / av.time_base
    except av.FFmpegError as error:
        raise MediaError(f"{path}: cannot open the audio file ({error}); it may be truncated or corrupt, "
                         f"re-download or re-encode it") from error
    rate = 16000
    return decode_audio(path, rate).shape[1] / rate
