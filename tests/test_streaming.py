"""StreamingPredictor: ring buffers, window rules, memory bound, and equality with the offline timeline."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest
from inference_helpers import DIALOGUE, TINY_WINDOW, write_clip, write_run_dir

from camabc_core.inference.streaming import AudioRingBuffer, StreamingPredictor
from camabc_core.inference.timeline import predict_timeline
from camabc_core.media import load_audio
from camabc_core.recipe import DataSection, Recipe
from camabc_core.records import Word
from camabc_core.training import load_trained_model

RATE = TINY_WINDOW.sample_rate


class FakeModel:
    """Stands in for a model where only the windows are tested: modalities, eval() and nothing else."""

    def __init__(self, modalities: tuple[str, ...]) -> None:
        self.modalities = modalities

    def eval(self) -> FakeModel:
        return self


def predictor_for(modalities: tuple[str, ...], **options: object) -> StreamingPredictor:
    recipe = Recipe(data=DataSection(window=TINY_WINDOW))
    return StreamingPredictor(FakeModel(modalities), recipe, ("NoBC", "BC"), speaker="A", listener="B",
                              **options)


@pytest.fixture(scope="module")
def multimodal_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_run_dir(tmp_path_factory.mktemp("streaming") / "run", ("audio", "text", "video"))


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_clip(tmp_path_factory.mktemp("streaming-media") / "clip.mp4", seconds=2.0)


# Ring buffer ---------------------------------------------------------------------------------


def test_ring_buffer_wraps_around() -> None:
    buffer = AudioRingBuffer(5)
    buffer.push(np.arange(3, dtype=np.float32))
    buffer.push(np.arange(3, 7, dtype=np.float32))
    assert (buffer.total, buffer.oldest) == (7, 2)
    assert buffer.read(2, 7).tolist() == [2, 3, 4, 5, 6]
    with pytest.raises(ValueError, match=r"samples \[1, 4\) are not held"):
        buffer.read(1, 4)


def test_ring_buffer_keeps_tail_of_long_push() -> None:
    buffer = AudioRingBuffer(4)
    buffer.push(np.arange(1, dtype=np.float32))
    buffer.push(np.arange(10, 20, dtype=np.float32))
    assert buffer.total == 11
    assert buffer.read(7, 11).tolist() == [16, 17, 18, 19]


# Window rules --------------------------------------------------------------------------------


def test_audio_window_zeroes_listener_speech() -> None:
    predictor = predictor_for(("audio",))
    predictor.push_audio(np.ones(RATE, dtype=np.float32))  # 1 s of ones
    predictor.push_word(Word("B", 0.70, 0.75, "네"))
    predictor.push_listener_speech(0.90, 1.20)
    predictor.push_word(Word("C", 0.55, 0.60, "third"))  # neither speaker nor listener: kept

    window = predictor.window_at(1.0).audio
    # The window is samples [8000, 16000) of the stream; sample 11200 plays at 0.70 s.
    assert window.samples.size == 8000
    assert not window.padding.any()
    assert window.samples[:3200].min() == 1.0
    assert window.samples[3200:4000].max() == 0.0
    assert window.samples[4000:6400].min() == 1.0
    assert window.samples[6400:].max() == 0.0


def test_speaker_channel_audio_not_zeroed() -> None:
    predictor = predictor_for(("audio",), audio_is_speaker_channel=True)
    predictor.push_audio(np.ones(RATE, dtype=np.float32))
    predictor.push_word(Word("B", 0.70, 0.75, "네"))
    assert predictor.window_at(1.0).audio.samples.min() == 1.0


def test_audio_window_before_start_is_padded() -> None:
    predictor = predictor_for(("audio",))
    predictor.push_audio(np.full(RATE // 5, 0.5, dtype=np.float32))  # 0.2 s
    window = predictor.window_at(0.2).audio
    assert window.padding.sum() == 4800
    assert window.samples[:4800].max() == 0.0
    assert window.samples[4800:].min() == 0.5


def test_text_window_last_words_before_now() -> None:
    predictor = predictor_for(("text",))
    words = [Word("A", 0.0, 0.2, "one"), Word("A", 0.3, 0.5, "two"), Word("B", 0.5, 0.6, "네"),
             Word("A", 0.6, 0.8, "ｔｈｒｅｅ"), Word("A", 0.9, 1.0, " "), Word("A", 1.1, 1.3, "four")]
    for word in words:
        predictor.push_word(word)
    # Three words ending at or before 1.2 s; full-width letters are NFKC-normalised, blank words dropped.
    assert predictor.window_at(1.2).text == "one two three"
    assert predictor.window_at(1.3).text == "two three four"
    assert predictor.window_at(0.1).text == ""


def test_video_window_frames_on_screen() -> None:
    predictor = predictor_for(("video",))
    for index in range(10):  # 10 fps, frame i filled with value i
        predictor.push_frame(np.full((32, 32, 3), index, dtype=np.uint8), index / 10)
    video = predictor.window_at(0.63)
    # Frame times 0.13, 0.255, 0.38, 0.505 show the frames shown from 0.1, 0.2, 0.3 and 0.5 s.
    assert video.video.timestamps.tolist() == [0.1, 0.2, 0.3, 0.5]
    assert video.video.frames[:, 0, 0, 0].tolist() == [1, 2, 3, 5]
    # Before the first frame the first frame is shown.
    assert predictor.window_at(0.33).video.frames[:, 0, 0, 0].tolist() == [0, 0, 0, 2]


def test_frames_resized_to_image_size() -> None:
    predictor = predictor_for(("video",))
    predictor.push_frame(np.full((48, 64, 3), 200, dtype=np.uint8), 0.0)
    frames = predictor.window_at(0.5).video.frames
    assert frames.shape == (4, 32, 32, 3)
    assert frames.min() == frames.max() == 200
    with pytest.raises(ValueError, match="uint8 RGB"):
        predictor.push_frame(np.zeros((32, 32), dtype=np.uint8), 0.1)


# Memory bound --------------------------------------------------------------------------------


def test_old_input_is_dropped() -> None:
    predictor = predictor_for(("audio", "text", "video"), max_delay_seconds=0.25)
    for index in range(100):  # 10 s in 0.1 s steps
        predictor.push_audio(np.zeros(RATE // 10, dtype=np.float32))
        predictor.push_word(Word("A", index / 10, index / 10 + 0.05, f"w{index}"))
        predictor.push_word(Word("B", index / 10 + 0.05, index / 10 + 0.08, "네"))
        predictor.push_frame(np.zeros((32, 32, 3), dtype=np.uint8), index / 10)

    # Audio: window (8000) + delay (4000) + 1 samples. Words: those ending after 9.75 s plus 3.
    assert predictor._audio.capacity == 12001
    assert len(predictor._speaker_words) == 3 + 2
    assert predictor.window_at(10.0).text == "w97 w98 w99"
    assert predictor.window_at(9.75).text == "w95 w96 w97"
    # Listener speech overlapping [9.25, 10.0) and frames from the one on screen at 9.25 s on.
    assert len(predictor._listener_speech) == 8
    assert predictor._frame_times[0] == pytest.approx(9.2)

    with pytest.raises(ValueError, match=r"more than max_delay_seconds=0\.25 behind"):
        predictor.predict(9.7)
    with pytest.raises(ValueError, match="past the audio pushed so far"):
        predictor.predict(10.1)
    # A rejected request leaves the earliest accepted time where it was.
    assert predictor._earliest_now() == pytest.approx(9.75)


def test_predict_needs_now_without_audio() -> None:
    with pytest.raises(ValueError, match="needs `now`"):
        predictor_for(("text",)).predict()


# Equality with the offline timeline ----------------------------------------------------------


def decoded_frames(path: Path) -> list[tuple[float, av.VideoFrame]]:
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        return [(float(frame.pts * stream.time_base), frame) for frame in container.decode(stream)]


def test_streaming_equals_offline(multimodal_run: Path, clip: Path) -> None:
    model, recipe, scheme = load_trained_model(multimodal_run)
    offline = predict_timeline(model, recipe, scheme.classes, clip, DIALOGUE, speaker="A", listener="B",
                               step=0.1)

    audio = load_audio(clip, RATE)
    frames = decoded_frames(clip)
    # Words arrive when they start, like the speech a dialogue system (the listener) plays itself.
    words = sorted(DIALOGUE, key=lambda word: word.start)
    predictor = StreamingPredictor(model, recipe, scheme.classes, speaker="A", listener="B")
    pushed_samples = next_word = next_frame = 0
    chunk = round(0.07 * RATE)  # chunks that do not line up with the prediction times
    streamed = []
    for time in offline.times:
        target = round(time * RATE)
        while pushed_samples < target:
            size = min(chunk, target - pushed_samples)
            predictor.push_audio(audio[pushed_samples:pushed_samples + size])
            pushed_samples += size
        while next_word < len(words) and words[next_word].start < time:
            predictor.push_word(words[next_word])
            next_word += 1
        while next_frame < len(frames) and frames[next_frame][0] < time:
            predictor.push_frame(frames[next_frame][1], frames[next_frame][0])
            next_frame += 1
        streamed.append(predictor.predict())

    assert offline.times.size == 20
    np.testing.assert_allclose(np.array(streamed), offline.probabilities, atol=1e-5, rtol=0)
    # The window moved on, and the buffer's capacity stays at window + delay seconds of audio.
    assert predictor._audio.capacity == round((TINY_WINDOW.audio_seconds + 1.0) * RATE) + 1
