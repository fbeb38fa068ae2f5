"""PyAV decoding: audio from any rate, channel count and sample format; video frames at exact times."""

from __future__ import annotations

import fractions
import pickle
import time
from pathlib import Path

import av
import numpy as np
import pytest
from media_helpers import write_wav

from camabc_core.errors import MediaError
from camabc_core.media import AudioSource, VideoReader, decode_audio, load_audio


def write_gray_video(
    path: Path,
    pts: list[int],
    time_base: fractions.Fraction,
    *,
    size: tuple[int, int] = (48, 64),
    keyframe_interval: int = 4,
    audio_seconds: float = 0.0,
) -> Path:
    """Encode an h264 mp4 whose frame i (shown from ``pts[i]``) carries i in two gray halves.

    The left half has gray level 16 + 22 × (i // 10) and the right half 16 + 22 × (i % 10), so indices
    up to 99 survive lossy compression and resizing.
    """
    height, width = size
    container = av.open(str(path), "w")
    video = container.add_stream("libx264", rate=30)
    video.width, video.height, video.pix_fmt = width, height, "yuv420p"
    video.codec_context.time_base = time_base
    video.time_base = time_base
    video.codec_context.gop_size = keyframe_interval
    # Every stream must exist before the first packet is written.
    audio = container.add_stream("aac", rate=16000) if audio_seconds else None
    if audio is not None:
        audio.layout = "mono"
    for index, timestamp in enumerate(pts):
        image = np.empty((height, width, 3), np.uint8)
        image[:, : width // 2] = 16 + 22 * (index // 10)
        image[:, width // 2 :] = 16 + 22 * (index % 10)
        frame = av.VideoFrame.from_ndarray(image, format="rgb24")
        frame.pts, frame.time_base = timestamp, time_base
        for packet in video.encode(frame):
            container.mux(packet)
    for packet in video.encode():
        container.mux(packet)
    if audio is not None:
        total = round(audio_seconds * 16000)
        for start in range(0, total, 1024):
            count = min(1024, total - start)
            tone = 0.1 * np.sin(2 * np.pi * 440 * np.arange(start, start + count) / 16000)
            frame = av.AudioFrame.from_ndarray(tone.astype(np.float32)[None], format="flt", layout="mono")
            frame.sample_rate, frame.pts = 16000, start
            for packet in audio.encode(frame):
                container.mux(packet)
        for packet in audio.encode():
            container.mux(packet)
    container.close()
    return path


def gray_indices(images: np.ndarray) -> list[int]:
    """Recover the frame index that ``write_gray_video`` encoded in each image of (L, H, W, 3)."""
    width = images.shape[2]
    tens = images[:, :, width // 8 : 3 * width // 8].mean(axis=(1, 2, 3))
    ones = images[:, :, 5 * width // 8 : 7 * width // 8].mean(axis=(1, 2, 3))
    return [round((t - 16) / 22) * 10 + round((o - 16) / 22) for t, o in zip(tens, ones)]


CONSTANT_RATE_PTS = list(range(60))  # 2 s at 30 fps in a 1/30 s time base
VARIABLE_RATE_MS = [0, 40, 50, 300, 310, 700, 720, 1000, 1500, 1510]


@pytest.fixture(scope="module")
def constant_rate_video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("video") / "constant.mp4"
    return write_gray_video(path, CONSTANT_RATE_PTS, fractions.Fraction(1, 30), keyframe_interval=10)


@pytest.fixture(scope="module")
def variable_rate_video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("video") / "variable.mp4"
    return write_gray_video(path, VARIABLE_RATE_MS, fractions.Fraction(1, 1000))


# Audio ------------------------------------------------------------------------------------------


def test_stereo_tone_mixes_to_quarter_peak(tmp_path: Path) -> None:
    rate = 44100
    seconds = np.arange(rate * 3) / rate
    left = 0.5 * np.sin(2 * np.pi * 440 * seconds)
    path = write_wav(tmp_path / "tone.wav", np.stack([left, np.zeros_like(left)]), rate)

    mono = load_audio(path)
    assert mono.dtype == np.float32
    assert mono.ndim == 1
    assert abs(mono.size - 3 * 16000) <= 2
    window, padding = AudioSource.from_file(path).window(end_time=2.0, num_samples=24000)
    assert window.shape == (24000,)
    assert window.dtype == np.float32
    assert not padding.any()
    assert abs(float(np.abs(window).max()) - 0.25) < 0.01


def test_channel_selection_keeps_each_side(tmp_path: Path) -> None:
    rate = 44100
    seconds = np.arange(rate) / rate
    left = 0.5 * np.sin(2 * np.pi * 440 * seconds)
    path = write_wav(tmp_path / "tone.wav", np.stack([left, np.zeros_like(left)]), rate)

    assert abs(float(np.abs(load_audio(path, channel=0)).max()) - 0.5) < 0.01
    assert float(np.abs(load_audio(path, channel=1)).max()) < 1e-4
    with pytest.raises(MediaError, match=r"channel 2 requested but the file has 2"):
        load_audio(path, channel=2)


@pytest.mark.parametrize(("rate", "channels"), [(8000, 1), (22050, 3), (48000, 2)])
def test_any_rate_and_channel_count(tmp_path: Path, rate: int, channels: int) -> None:
    constant = np.full((channels, rate // 2), 0.4)  # 0.5 s at 0.4 on every channel
    path = write_wav(tmp_path / f"constant_{rate}.wav", constant, rate)

    decoded = decode_audio(path, sample_rate=16000)
    assert decoded.shape[0] == channels
    assert abs(decoded.shape[1] - 8000) <= 2
    # Away from the edges, where the resampling filter rings, the level is unchanged.
    assert np.allclose(load_audio(path)[200:-200], 0.4, atol=2e-3)


def test_compressed_audio_track(tmp_path: Path) -> None:
    path = write_gray_video(
        tmp_path / "with_audio.mp4", list(range(6)), fractions.Fraction(1, 30), audio_seconds=1.0
    )
    audio = load_audio(path)
    # AAC adds encoder padding of at most a couple of 1024-sample frames.
    assert 16000 <= audio.size <= 16000 + 2 * 1024
    assert 0.08 < float(np.abs(audio).max()) < 0.12


def test_window_before_start_is_padded(tmp_path: Path) -> None:
    signal = np.full((1, 16000 * 2), 0.5)
    source = AudioSource(signal.astype(np.float32), 16000)
    samples, padding = source.window(end_time=0.8, num_samples=24000)

    assert samples.shape == (24000,)
    assert (samples[:11200] == 0).all()
    assert padding[:11200].all()
    assert (samples[11200:] == 0.5).all()
    assert not padding[11200:].any()


def test_window_past_end_is_padded() -> None:
    source = AudioSource(np.ones((1, 16000), np.float32), 16000)
    samples, padding = source.window(end_time=1.25, num_samples=8000)
    assert (samples[:4000] == 1).all()
    assert (samples[4000:] == 0).all()
    assert padding.tolist() == [False] * 4000 + [True] * 4000


def test_window_is_a_copy() -> None:
    source = AudioSource(np.ones((1, 16000), np.float32), 16000)
    samples, _ = source.window(end_time=0.5, num_samples=100)
    samples[:] = 0
    assert (source.signal() == 1).all()


def test_disk_cache_reuses_decoded_audio(tmp_path: Path) -> None:
    path = write_wav(tmp_path / "constant.wav", np.full((2, 8000), 0.25), 8000)
    cache = tmp_path / "cache"

    first = AudioSource.from_file(path, cache_dir=cache)
    cached_files = list(cache.glob("*.npy"))
    assert len(cached_files) == 1
    second = AudioSource.from_file(path, cache_dir=cache)
    assert isinstance(second.channels, np.memmap)
    assert np.array_equal(np.asarray(first.channels), np.asarray(second.channels))
    assert list(cache.glob("*.tmp")) == []


def test_missing_audio_file_names_it(tmp_path: Path) -> None:
    with pytest.raises(MediaError, match=r"missing\.wav: audio file not found"):
        load_audio(tmp_path / "missing.wav")


def test_video_without_audio_track(constant_rate_video: Path) -> None:
    with pytest.raises(MediaError, match=r"constant\.mp4: no audio stream"):
        load_audio(constant_rate_video)


# Video ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["seek", "sequential"])
def test_frames_at_constant_rate(constant_rate_video: Path, mode: str) -> None:
    # Mid-frame times, deliberately out of order and with a jump back, to exercise every path.
    indices = [45, 3, 4, 30, 59, 0, 17, 18, 18]
    times = [(index + 0.5) / 30 for index in indices]
    with VideoReader(constant_rate_video, mode=mode) as reader:
        images, frame_times = reader.frames_at(times)
    assert images.shape == (9, 48, 64, 3)
    assert images.dtype == np.uint8
    assert gray_indices(images) == indices
    assert np.allclose(frame_times, [index / 30 for index in indices])


def test_frames_at_variable_rate(variable_rate_video: Path) -> None:
    # Each time maps to the last frame whose timestamp is <= it (VARIABLE_RATE_MS).
    times = [0.0, 0.045, 0.299, 0.3, 0.69, 0.999, 1.2, 1.505, 1.6]
    expected = [0, 1, 2, 3, 4, 6, 7, 8, 9]
    with VideoReader(variable_rate_video) as reader:
        images, frame_times = reader.frames_at(times)
    assert gray_indices(images) == expected
    assert np.allclose(frame_times, [VARIABLE_RATE_MS[i] / 1000 for i in expected])


def test_seek_and_sequential_agree(variable_rate_video: Path) -> None:
    times = np.linspace(-0.5, 2.0, 40)
    with (
        VideoReader(variable_rate_video, size=16) as seeking,
        VideoReader(variable_rate_video, size=16, mode="sequential") as sequential,
    ):
        seek_images, seek_times = seeking.frames_at(times)
        sequential_images, sequential_times = sequential.frames_at(times)
    assert np.array_equal(seek_images, sequential_images)
    assert np.array_equal(seek_times, sequential_times)


@pytest.mark.parametrize("mode", ["seek", "sequential"])
def test_frames_at_across_calls(constant_rate_video: Path, mode: str) -> None:
    # One request per call, forwards in small and large steps, then backwards: the reader keeps its
    # decoding position between calls and must never hand out a frame it skipped earlier.
    indices = [2, 3, 5, 6, 9, 14, 15, 33, 34, 58, 57, 40, 39, 1, 0, 30]
    with VideoReader(constant_rate_video, mode=mode) as reader:
        found = [gray_indices(reader.frames_at([(index + 0.5) / 30])[0])[0] for index in indices]
    assert found == indices


def test_unneeded_nonreference_frames_skipped(constant_rate_video: Path) -> None:
    # The encoder's choices, read independently: frames surviving skip_frame=NONREF are references.
    with av.open(str(constant_rate_video)) as container:
        stream = container.streams.video[0]
        keyframes = {
            round(float(p.pts * stream.time_base) * 30) for p in container.demux(stream) if p.is_keyframe
        }
    with av.open(str(constant_rate_video)) as container:
        stream = container.streams.video[0]
        stream.codec_context.skip_frame = "NONREF"
        reference = {round(float(frame.time) * 30) for frame in container.decode(stream)}
    # Request a frame whose predecessor is a non-reference frame, so that one can be skipped.
    requested = next(i for i in range(1, 59) if i - 1 not in reference and i not in keyframes)
    keyframe = max(k for k in keyframes if k <= requested)

    reader = VideoReader(constant_rate_video)
    returned: list[int] = []
    decode_next = reader._decode_next

    def record() -> av.VideoFrame | None:
        frame = decode_next()
        if frame is not None:
            returned.append(round(float(frame.time) * 30))
        return frame

    reader._decode_next = record  # type: ignore[method-assign]
    images, _ = reader.frames_at([(requested + 0.5) / 30])
    reader.close()

    assert gray_indices(images) == [requested]
    # From the keyframe to the frame after the request: every reference frame, the requested frame
    # and the next one (read to see that the requested frame is the last shown before the time).
    assert returned == [i for i in range(keyframe, requested + 2) if i in reference or i >= requested]
    assert requested - 1 not in returned


def test_frames_resized(constant_rate_video: Path) -> None:
    with VideoReader(constant_rate_video, size=32) as square:
        assert square.frames_at([0.5])[0].shape == (1, 32, 32, 3)
    with VideoReader(constant_rate_video, size=(20, 30)) as rectangle:
        assert rectangle.frames_at([0.5])[0].shape == (1, 20, 30, 3)


def test_time_before_first_frame_clamps(variable_rate_video: Path) -> None:
    with VideoReader(variable_rate_video) as reader:
        images, frame_times = reader.frames_at([-1.0, -0.01])
    assert gray_indices(images) == [0, 0]
    assert frame_times.tolist() == [0.0, 0.0]


def test_audio_longer_than_video(tmp_path: Path) -> None:
    path = write_gray_video(
        tmp_path / "short_video.mp4",
        list(range(90)),
        fractions.Fraction(1, 30),
        keyframe_interval=30,
        audio_seconds=10.0,
    )
    reader = VideoReader(path)
    started = time.perf_counter()
    images, frame_times = reader.frames_at(np.linspace(4.0, 9.9, 12))
    elapsed = time.perf_counter() - started

    assert gray_indices(images) == [89] * 12
    assert np.allclose(frame_times, 89 / 30)
    assert reader.last_frame_time == pytest.approx(89 / 30)
    assert elapsed < 2.0

    # Later requests past the end come from the cached last frame, with no decoding at all.
    def fail_decoding() -> None:
        raise AssertionError("decoded again past the end of the video")

    reader._decode_next = fail_decoding  # type: ignore[method-assign]
    images, _ = reader.frames_at(np.linspace(5.0, 9.0, 12))
    assert gray_indices(images) == [89] * 12
    reader.close()


def test_truncated_video_names_file(constant_rate_video: Path, tmp_path: Path) -> None:
    truncated = tmp_path / "truncated.mp4"
    truncated.write_bytes(constant_rate_video.read_bytes()[:2048])
    with pytest.raises(MediaError, match=r"truncated\.mp4.*truncated or corrupt"):
        VideoReader(truncated).frames_at([0.5])


def test_garbage_video_names_file(tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.mp4"
    garbage.write_bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    with pytest.raises(MediaError, match=r"garbage\.mp4"):
        VideoReader(garbage).frames_at([0.5])


def test_audio_only_file_as_video(tmp_path: Path) -> None:
    path = write_wav(tmp_path / "speech.wav", np.zeros((1, 1600)), 16000)
    with pytest.raises(MediaError, match=r"speech\.wav: no video stream"):
        VideoReader(path)


def test_reader_pickles_without_open_file(constant_rate_video: Path) -> None:
    reader = VideoReader(constant_rate_video, size=16)
    reader.frames_at([1.0])
    copy = pickle.loads(pickle.dumps(reader))
    images, _ = copy.frames_at([(20 + 0.5) / 30])
    assert gray_indices(images) == [20]
    assert images.shape == (1, 16, 16, 3)


def test_frames_at_rejects_empty(constant_rate_video: Path) -> None:
    with VideoReader(constant_rate_video) as reader, pytest.raises(ValueError, match="non-empty"):
        reader.frames_at([])
