"""Windows before a prediction point: audio with padding and listener masking, speaker text, video frames."""

from __future__ import annotations

import fractions
import pickle
from pathlib import Path

import av
import numpy as np
import pytest
from media_helpers import write_wav

from camabc_core.errors import MediaError, RecipeError
from camabc_core.recipe import WindowSection
from camabc_core.records import BackchannelEvent, Conversation, Sample, Word
from camabc_core.windows import WindowExtractor, video_sample_times


def write_indexed_video(path: Path, num_frames: int, fps: int, size: tuple[int, int] = (48, 64)) -> Path:
    """Encode an h264 mp4 whose frame i, shown from i / fps, is uniformly gray at level 16 + 22·i."""
    height, width = size
    container = av.open(str(path), "w")
    stream = container.add_stream("libx264", rate=fps)
    stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
    for index in range(num_frames):
        frame = av.VideoFrame.from_ndarray(
            np.full((height, width, 3), 16 + 22 * index, np.uint8), format="rgb24"
        )
        frame.pts, frame.time_base = index, fractions.Fraction(1, fps)
        for packet in stream.encode(frame):
            container.mux(packet)
    for packet in stream.encode():
        container.mux(packet)
    container.close()
    return path


def conversation(
    words: list[Word], backchannels: tuple[BackchannelEvent, ...] = (), **media: object
) -> Conversation:
    return Conversation(
        id="dialogue", words=tuple(words), backchannels=backchannels, speakers=("A", "B"), **media
    )  # type: ignore[arg-type]


def sample(time: float, speaker: str = "A", listener: str = "B") -> Sample:
    return Sample("dialogue", time, speaker, listener)


# Audio ------------------------------------------------------------------------------------------


def test_audio_onset_before_window_length(tmp_path: Path) -> None:
    path = write_wav(tmp_path / "speech.wav", np.full((1, 32000), 0.5), 16000)
    extractor = WindowExtractor([conversation([], audio_path=path)], WindowSection(), {"audio"})
    window = extractor.extract(sample(0.8))

    assert window.text is None
    assert window.video is None
    audio = window.audio
    assert audio is not None
    assert audio.sample_rate == 16000
    assert audio.samples.shape == (24000,)
    assert (audio.samples[:11200] == 0).all()
    assert audio.padding[:11200].all()
    assert not audio.padding[11200:].any()
    assert np.allclose(audio.samples[11200:], 0.5, atol=1e-4)


def test_audio_stereo_tone_through_extractor(tmp_path: Path) -> None:
    rate = 44100
    seconds = np.arange(rate * 3) / rate
    left = 0.5 * np.sin(2 * np.pi * 440 * seconds)
    path = write_wav(tmp_path / "tone.wav", np.stack([left, np.zeros_like(left)]), rate)
    extractor = WindowExtractor([conversation([], audio_path=path)], WindowSection(), {"audio"})
    audio = extractor.extract_audio(sample(2.5))

    assert audio.samples.shape == (24000,)
    assert audio.samples.dtype == np.float32
    assert abs(float(np.abs(audio.samples).max()) - 0.25) < 0.01


def test_mono_audio_zeroes_listener_speech(tmp_path: Path) -> None:
    path = write_wav(tmp_path / "speech.wav", np.full((1, 16000 * 3), 0.5), 16000)
    words = [Word("A", 0.6, 0.9, "speaker"), Word("B", 1.0, 1.2, "listener"), Word("A", 1.3, 1.9, "talks")]
    events = (
        BackchannelEvent("B", 1.5, 1.6, "CONTINUER", "네"),
        BackchannelEvent("A", 1.7, 1.8, "CONTINUER"),
    )
    extractor = WindowExtractor([conversation(words, events, audio_path=path)], WindowSection(), {"audio"})
    audio = extractor.extract_audio(sample(2.0))

    # The window [0.5, 2.0) s starts at sample 8000; B speaks over [1.0, 1.2) and [1.5, 1.6) s.
    expected = np.full(24000, 0.5, np.float32)
    expected[8000:11200] = 0
    expected[16000:17600] = 0
    assert np.allclose(audio.samples, expected, atol=1e-4)
    assert not audio.padding.any()


def test_masking_clips_intervals_at_window_edges(tmp_path: Path) -> None:
    path = write_wav(tmp_path / "speech.wav", np.full((1, 16000 * 3), 0.5), 16000)
    words = [Word("B", 0.0, 0.75, "early"), Word("B", 1.9, 2.5, "late")]
    extractor = WindowExtractor([conversation(words, audio_path=path)], WindowSection(), {"audio"})
    samples = extractor.extract_audio(sample(2.0)).samples

    # Window [0.5, 2.0): B covers its first 0.25 s and its last 0.1 s.
    assert (samples[:4000] == 0).all()
    assert np.allclose(samples[4000:22400], 0.5, atol=1e-4)
    assert (samples[22400:] == 0).all()


def test_multichannel_audio_takes_speaker_channel(tmp_path: Path) -> None:
    path = write_wav(
        tmp_path / "two_channel.wav", np.stack([np.full(16000 * 2, 0.25), np.full(16000 * 2, 0.75)]), 16000
    )
    words = [Word("A", 0.2, 1.9, "caller"), Word("B", 0.2, 1.9, "callee")]
    extractor = WindowExtractor(
        [conversation(words, audio_path=path, channel_speakers=("A", "B"))],
        WindowSection(audio_seconds=1.0),
        {"audio"},
    )

    # No masking, because each channel contains one speaker only.
    assert np.allclose(extractor.extract_audio(sample(1.5, "B", "A")).samples, 0.75, atol=1e-4)
    assert np.allclose(extractor.extract_audio(sample(1.5, "A", "B")).samples, 0.25, atol=1e-4)
    with pytest.raises(MediaError, match=r"speaker 'C' has no channel"):
        extractor.extract_audio(sample(1.5, "C", "A"))


def test_audio_without_file(tmp_path: Path) -> None:
    extractor = WindowExtractor([conversation([])], WindowSection(), {"audio"})
    with pytest.raises(MediaError, match=r"'dialogue' has no audio file"):
        extractor.extract(sample(1.0))


# Text -------------------------------------------------------------------------------------------

KOREAN_WORDS = [
    Word("A", 0.0, 0.4, "오늘은"),
    Word("B", 0.3, 0.5, "네"),
    Word("A", 0.5, 0.9, "날씨가"),
    Word("A", 1.0, 1.3, "정말"),
    Word("B", 1.1, 1.2, "음"),
    Word("A", 1.4, 1.8, "좋네요"),
    Word("A", 1.9, 2.2, "그래서"),
    Word("A", 2.3, 2.6, "산책을"),
    Word("A", 2.7, 3.1, "갔어요"),
]


def test_text_last_words_of_speaker() -> None:
    extractor = WindowExtractor([conversation(KOREAN_WORDS)], WindowSection(text_words=5), {"text"})
    assert extractor.extract_text(sample(3.5)) == "정말 좋네요 그래서 산책을 갔어요"
    # The listener's words ("네", "음") never enter.
    assert extractor.extract_text(sample(1.85)) == "오늘은 날씨가 정말 좋네요"
    # A word ending exactly at t counts; one still running at t does not.
    assert extractor.extract_text(sample(1.8)) == "오늘은 날씨가 정말 좋네요"
    assert extractor.extract_text(sample(1.79)) == "오늘은 날씨가 정말"
    assert extractor.extract_text(sample(1.15, "B", "A")) == "네"


def test_text_before_any_word_is_empty() -> None:
    extractor = WindowExtractor([conversation(KOREAN_WORDS)], WindowSection(), {"text"})
    assert extractor.extract_text(sample(0.2)) == ""
    assert extractor.extract(sample(0.0)).text == ""
    assert extractor.extract_text(sample(5.0, "C", "A")) == ""


def test_text_skips_empty_cells() -> None:
    words = [
        Word("A", 0.0, 0.2, ""),
        Word("A", 0.3, 0.5, "   "),
        Word("A", 0.6, 0.8, "네"),
        Word("A", 0.9, 1.0, ""),
    ]
    extractor = WindowExtractor([conversation(words)], WindowSection(), {"text"})
    assert extractor.extract_text(sample(0.55)) == ""
    assert extractor.extract_text(sample(1.5)) == "네"


def test_text_is_nfkc_normalised() -> None:
    decomposed_han = "\u1112\u1161\u11ab"  # 한 as three conjoining jamo
    words = [Word("A", 0.0, 0.5, "ｈｅｌｌｏ"), Word("A", 0.6, 0.9, decomposed_han + "국")]
    extractor = WindowExtractor([conversation(words)], WindowSection(), {"text"})
    assert extractor.extract_text(sample(1.0)) == "hello 한국"


def test_batch_text_matches_single() -> None:
    extractor = WindowExtractor([conversation(KOREAN_WORDS)], WindowSection(text_words=3), {"text"})
    samples = [
        sample(t, speaker, listener)
        for t in np.arange(0.0, 3.5, 0.05)
        for speaker, listener in (("A", "B"), ("B", "A"))
    ]
    assert extractor.extract_texts(samples) == [extractor.extract_text(s) for s in samples]


def test_zero_text_words() -> None:
    extractor = WindowExtractor([conversation(KOREAN_WORDS)], WindowSection(text_words=0), {"text"})
    assert extractor.extract_text(sample(3.5)) == ""
    assert extractor.extract_texts([sample(3.5)]) == [""]


# Video ------------------------------------------------------------------------------------------


def test_video_times_exclude_onset() -> None:
    times = video_sample_times(2.0, 1.5, 12)
    assert np.allclose(times, [0.5 + 0.125 * k for k in range(12)])
    assert times.max() < 2.0


def test_short_clip_repeats_frames(tmp_path: Path) -> None:
    path = write_indexed_video(tmp_path / "clip.mp4", num_frames=5, fps=5)
    extractor = WindowExtractor([conversation([], video_path=path)], WindowSection(image_size=32), {"video"})
    video = extractor.extract(sample(1.23)).video
    assert video is not None

    # Times -0.27 + 0.125·k; frame i is shown from 0.2·i (the last, i = 4, from 0.8 s on).
    assert video.frames.shape == (12, 32, 32, 3)
    assert video.frames.dtype == np.uint8
    indices = [round((float(frame.mean()) - 16) / 22) for frame in video.frames]
    assert indices == [0, 0, 0, 0, 1, 1, 2, 3, 3, 4, 4, 4]
    assert np.allclose(video.timestamps, [0.2 * i for i in indices])
    assert (video.timestamps < 1.23).all()


def test_video_without_file() -> None:
    extractor = WindowExtractor([conversation([])], WindowSection(), {"video"})
    with pytest.raises(MediaError, match=r"'dialogue' has no video file"):
        extractor.extract(sample(1.0))


# Extractor --------------------------------------------------------------------------------------


def test_extractor_pickles_for_workers(tmp_path: Path) -> None:
    audio_path = write_wav(tmp_path / "speech.wav", np.full((1, 32000), 0.5), 16000)
    video_path = write_indexed_video(tmp_path / "clip.mp4", num_frames=5, fps=5)
    extractor = WindowExtractor(
        [conversation(KOREAN_WORDS, audio_path=audio_path, video_path=video_path)],
        WindowSection(image_size=16, num_frames=4),
        {"audio", "text", "video"},
    )
    before = extractor.extract(sample(1.5))
    copy = pickle.loads(pickle.dumps(extractor))
    after = copy.extract(sample(1.5))

    assert before.text == after.text == "오늘은 날씨가 정말"
    assert before.audio is not None and after.audio is not None
    assert np.array_equal(before.audio.samples, after.audio.samples)
    assert before.video is not None and after.video is not None
    assert np.array_equal(before.video.frames, after.video.frames)
    extractor.close()
    copy.close()


def test_extractor_rejects_bad_settings() -> None:
    with pytest.raises(RecipeError, match=r"unknown modalities \['speech'\]"):
        WindowExtractor([], WindowSection(), {"speech"})
    with pytest.raises(RecipeError, match=r"audio_seconds must be > 0, got 0.*num_frames must be >= 1"):
        WindowExtractor([], WindowSection(audio_seconds=0, num_frames=0), {"audio"})
    twice = [conversation([]), conversation([])]
    with pytest.raises(RecipeError, match=r"two conversations share the id 'dialogue'"):
        WindowExtractor(twice, WindowSection(), {"text"})


def test_unknown_conversation() -> None:
    extractor = WindowExtractor([conversation([])], WindowSection(), {"text"})
    with pytest.raises(RecipeError, match=r"conversation 'elsewhere', which is not among the 1"):
        extractor.extract(Sample("elsewhere", 1.0, "A", "B"))
