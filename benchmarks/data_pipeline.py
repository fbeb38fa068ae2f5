"""Measure the data path: sample building with text windows, audio windows and video windows.

Run from the repository root:

    .venv/bin/python benchmarks/data_pipeline.py [--backcast-root DIR]

It prints three measurements:

1. Seconds to build every Backchannel Alignment (BA) and Context Alignment (CA) sample of the
   BACKCast corpus together with its text window (reading the corpus is timed separately).
2. Milliseconds per 1.5 s audio window cut from a long wav that the script writes itself.
3. Milliseconds per 12-frame video window from a 640x360 30 fps h264 mp4 that the script encodes
   itself: seeking to each window, side by side with decoding from the start of the file without
   seeking. Windows come in random order, as a shuffled training epoch requests them.

Media files go to a temporary directory that is removed afterwards.
"""

from __future__ import annotations

import argparse
import fractions
import logging
import os
import statistics
import sys
import tempfile
import time
import wave
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import av
import numpy as np

from camabc_core.labels import build_label_scheme
from camabc_core.media import AudioSource, VideoReader
from camabc_core.recipe import SamplingSection, WindowSection
from camabc_core.records import Conversation, Sample, Word
from camabc_core.sampling import build_backchannel_samples, build_context_samples
from camabc_core.windows import WindowExtractor, video_sample_times

DEFAULT_BACKCAST_ROOT = Path("/work/shared/data/backcast")


def timed(function: Callable[[], object]) -> tuple[object, float]:
    started = time.perf_counter()
    result = function()
    return result, time.perf_counter() - started


def describe(durations: list[float], cpu_durations: list[float] | None = None) -> str:
    """Summarise wall-clock durations in seconds: median, 90th percentile, count and median CPU time.

    The CPU time (all threads of this process) is shown because other work on a shared machine
    inflates wall-clock times but not CPU times.
    """
    milliseconds = sorted(1000 * d for d in durations)
    p90 = milliseconds[min(int(0.9 * len(milliseconds)), len(milliseconds) - 1)]
    text = f"median {statistics.median(milliseconds):.3f} ms (p90 {p90:.3f} ms, n = {len(milliseconds)}"
    if cpu_durations:
        text += f", median CPU {1000 * statistics.median(cpu_durations):.3f} ms"
    return text + ")"


# Sample building --------------------------------------------------------------------------------


def benchmark_samples(root: Path) -> None:
    from camabc_core.registry import get_registry

    reader = get_registry().create("dataset", "backcast")
    conversations, load_seconds = timed(lambda: reader.load(root))
    assert isinstance(conversations, list)
    words = sum(len(c.words) for c in conversations)
    events = sum(len(c.backchannels) for c in conversations)
    print(
        f"BACKCast: {len(conversations)} dialogues, {words} words, {events} backchannels; "
        f"reading the corpus took {load_seconds:.1f} s (not part of the total below)"
    )

    started, cpu_started = time.perf_counter(), time.process_time()
    scheme = build_label_scheme("four_class")
    backchannel_samples, ba_seconds = timed(
        lambda: build_backchannel_samples(conversations, scheme, SamplingSection(), seed=0)
    )
    context_samples, ca_seconds = timed(lambda: build_context_samples(conversations))
    extractor = WindowExtractor(conversations, WindowSection(), {"text"})
    _, ba_text_seconds = timed(lambda: extractor.extract_texts(backchannel_samples))  # type: ignore[arg-type]
    _, ca_text_seconds = timed(lambda: extractor.extract_texts(context_samples))  # type: ignore[arg-type]
    total, cpu_total = time.perf_counter() - started, time.process_time() - cpu_started
    print(
        f"  BA samples: {len(backchannel_samples)} in {ba_seconds:.1f} s, "  # type: ignore[arg-type]
        f"text windows {ba_text_seconds:.1f} s"
    )
    print(
        f"  CA samples: {len(context_samples)} in {ca_seconds:.1f} s, "  # type: ignore[arg-type]
        f"text windows {ca_text_seconds:.1f} s"
    )
    print(f"  total BA + CA samples with text windows: {total:.1f} s, CPU {cpu_total:.1f} s (target < 60 s)")


# Audio windows ----------------------------------------------------------------------------------


def write_long_wav(path: Path, seconds: int, sample_rate: int = 16000) -> None:
    """Write mono int16 speech-like noise (amplitude-modulated) one minute at a time."""
    rng = np.random.default_rng(0)
    with wave.open(str(path), "wb") as output:
        output.setnchannels(1)
        output.setsampwidth(2)
        output.setframerate(sample_rate)
        for minute in range(0, seconds, 60):
            count = min(60, seconds - minute) * sample_rate
            envelope = 0.5 + 0.5 * np.sin(2 * np.pi * 3 * np.arange(count) / sample_rate)
            output.writeframes((rng.normal(0, 3000, count) * envelope).astype("<i2").tobytes())


def benchmark_audio(directory: Path, seconds: int, windows: int) -> None:
    path = directory / "long.wav"
    write_long_wav(path, seconds)
    source, decode_seconds = timed(lambda: AudioSource.from_file(path, 16000))
    assert isinstance(source, AudioSource)
    print(f"Audio: {seconds // 60} min 16 kHz mono wav decoded once in {decode_seconds:.2f} s")

    rng = np.random.default_rng(1)
    onsets = rng.uniform(0.5, seconds, windows)
    durations = []
    for onset in onsets:
        started = time.perf_counter()
        source.window(float(onset), 24000)
        durations.append(time.perf_counter() - started)
    print(f"  1.5 s window, slice only: {describe(durations)} (target <= 1 ms)")

    # Through the extractor: two speakers alternating 0.4 s words, listener speech zeroed.
    word_ends = np.arange(0.4, seconds, 0.4)
    words = tuple(Word("AB"[i % 2], float(end) - 0.35, float(end), "word") for i, end in enumerate(word_ends))
    conversation = Conversation("long", words, (), ("A", "B"), audio_path=path)
    extractor = WindowExtractor([conversation], WindowSection(), {"audio"})
    extractor.extract_audio(Sample("long", 10.0, "A", "B"))  # decode outside the timing
    durations = []
    for onset in onsets:
        started = time.perf_counter()
        extractor.extract_audio(Sample("long", float(onset), "A", "B"))
        durations.append(time.perf_counter() - started)
    print(f"  1.5 s window with listener masking (WindowExtractor): {describe(durations)}")


# Video windows ----------------------------------------------------------------------------------


def talking_head_frames(count: int, height: int, width: int) -> Iterator[np.ndarray]:
    """Yield RGB frames of a static textured background with a moving, textured face whose mouth opens.

    Like an interview or counselling recording, most blocks repeat between frames, so the encoder
    uses many B-frames.
    """
    rng = np.random.default_rng(2)
    background = np.repeat(np.repeat(rng.integers(60, 180, (height // 4, width // 4, 3)), 4, 0), 4, 1)
    face = 150 + np.repeat(np.repeat(rng.integers(-40, 40, (100, 80, 3)), 2, 0), 2, 1)  # (200, 160, 3)
    rows, columns = np.mgrid[0:200, 0:160]
    inside = ((rows - 100) / 100) ** 2 + ((columns - 80) / 80) ** 2 <= 1
    for index in range(count):
        image = background.astype(np.int16)
        top, left = 80 + int(12 * np.sin(index / 15)), 240 + int(20 * np.sin(index / 23))
        region = image[top : top + 200, left : left + 160]
        region[inside] = (face + int(10 * np.sin(index / 5)))[inside]
        mouth = int(8 + 8 * abs(np.sin(index / 3)))
        image[top + 140 : top + 140 + mouth, left + 55 : left + 105] = 40
        image += rng.integers(-1, 2, image.shape, dtype=np.int16)
        yield np.clip(image, 0, 255).astype(np.uint8)


def panning_frames(count: int, height: int, width: int) -> Iterator[np.ndarray]:
    """Yield RGB frames in which the whole picture moves: two textures panning at different speeds
    plus per-pixel noise. Nearly every block changes, so the encoder uses P-frames at about 1 Mbit/s.
    """
    rng = np.random.default_rng(2)
    coarse = np.repeat(np.repeat(rng.integers(40, 200, (height // 8 + 1, width // 8 + 9, 3)), 8, 0), 8, 1)
    fine = np.repeat(np.repeat(rng.integers(-8, 9, (height // 2 + 1, width // 2 + 40, 3)), 2, 0), 2, 1)
    for index in range(count):
        image = coarse[:height, index % 64 : index % 64 + width].astype(np.int16)
        image += fine[:height, 2 * index % 80 : 2 * index % 80 + width]
        image += rng.integers(-2, 3, image.shape, dtype=np.int16)
        yield np.clip(image, 0, 255).astype(np.uint8)


CONTENTS: dict[str, Callable[[int, int, int], Iterator[np.ndarray]]] = {
    "talking head": talking_head_frames,
    "panning": panning_frames,
}


def write_test_video(path: Path, seconds: int, content: str, keyframe_interval: int | None) -> None:
    """Encode 640x360 30 fps h264 (libx264 veryfast, CRF 23); None keeps libx264's keyframe interval."""
    height, width, fps = 360, 640, 30
    container = av.open(str(path), "w")
    stream = container.add_stream("libx264", rate=fps)
    stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
    stream.options = {"preset": "veryfast", "crf": "23"}
    if keyframe_interval is not None:
        stream.codec_context.gop_size = keyframe_interval
    for index, image in enumerate(CONTENTS[content](seconds * fps, height, width)):
        frame = av.VideoFrame.from_ndarray(image, format="rgb24")
        frame.pts, frame.time_base = index, fractions.Fraction(1, fps)
        for packet in stream.encode(frame):
            container.mux(packet)
    for packet in stream.encode():
        container.mux(packet)
    container.close()


def frame_types(path: Path) -> str:
    """Return the share of I, P and B frames, e.g. 'I 2%, P 25%, B 73%'."""
    with av.open(str(path)) as container:
        # pict_type follows FFmpeg's AVPictureType: 1 = I, 2 = P, 3 = B.
        counts = Counter(int(frame.pict_type) for frame in container.decode(container.streams.video[0]))
    total = sum(counts.values())
    return ", ".join(
        f"{name} {100 * counts[code] / total:.0f}%" for code, name in ((1, "I"), (2, "P"), (3, "B"))
    )


def time_windows(reader: VideoReader, onsets: np.ndarray) -> str:
    durations, cpu_durations = [], []
    for onset in onsets:
        times = video_sample_times(float(onset), 1.5, 12)
        started, cpu_started = time.perf_counter(), time.process_time()
        frames, _ = reader.frames_at(times)
        durations.append(time.perf_counter() - started)
        cpu_durations.append(time.process_time() - cpu_started)
        assert frames.shape == (12, 224, 224, 3)
    return describe(durations, cpu_durations)


def benchmark_video(directory: Path, seconds: int, windows: int) -> None:
    rng = np.random.default_rng(3)
    onsets = rng.uniform(1.5, seconds, windows)
    cases = (("talking head", 60), ("talking head", None), ("panning", 60))
    for content, keyframe_interval in cases:
        path = directory / f"{content.replace(' ', '_')}_{keyframe_interval}.mp4"
        write_test_video(path, seconds, content, keyframe_interval)
        megabits_per_second = path.stat().st_size * 8 / 1e6 / seconds
        keyframes = "every 2 s" if keyframe_interval else "libx264 default (up to 250 frames)"
        print(
            f"Video, {content}: {seconds} s 640x360 30 fps h264 at {megabits_per_second:.2f} Mbit/s, "
            f"keyframes {keyframes}, {frame_types(path)}; 12 frames over 1.5 s resized to 224x224"
        )
        with VideoReader(path, size=224) as reader:
            reader.frames_at([0.0])  # open the decoder outside the timing
            print(f"  seeking:    {time_windows(reader, onsets)} (target <= 50 ms median)")
        with VideoReader(path, size=224, mode="sequential") as reader:
            reader.frames_at([0.0])
            sequential_onsets = onsets[: max(windows // 4, 5)]
            print(
                f"  sequential: {time_windows(reader, sequential_onsets)} "
                f"(no seeking: decodes from the start whenever a window lies behind the previous one)"
            )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--backcast-root",
        type=Path,
        default=DEFAULT_BACKCAST_ROOT,
        help="BACKCast corpus root (program/dialogue/word.tsv)",
    )
    parser.add_argument("--skip-backcast", action="store_true", help="skip the sample-building measurement")
    parser.add_argument("--audio-minutes", type=int, default=30, help="length of the generated wav")
    parser.add_argument("--video-seconds", type=int, default=60, help="length of the generated mp4s")
    parser.add_argument("--windows", type=int, default=200, help="windows timed per measurement")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)

    load = ", ".join(f"{value:.1f}" for value in os.getloadavg())
    print(
        f"Python {sys.version.split()[0]}, PyAV {av.__version__}, numpy {np.__version__}, "
        f"{os.cpu_count()} CPUs, load average {load}"
    )
    if not args.skip_backcast:
        benchmark_samples(args.backcast_root)
    with tempfile.TemporaryDirectory(prefix="camabc-bench-") as directory:
        benchmark_audio(Path(directory), args.audio_minutes * 60, args.windows * 50)
        benchmark_video(Path(directory), args.video_seconds, args.windows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
