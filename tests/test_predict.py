"""``camabc predict``: prediction points, moments, roles, transcripts, files, and the error cases."""

from __future__ import annotations

import csv
import json
import logging
import wave
from pathlib import Path

import attrs
import numpy as np
import pytest
import torch
from inference_helpers import DIALOGUE, write_clip, write_run_dir, write_word_tsv

from camabc_core.cli import main
from camabc_core.errors import CamabcError, CorpusFormatError, MediaError
from camabc_core.inference.moments import detect_moments, local_maxima
from camabc_core.inference.roles import resolve_roles
from camabc_core.inference.timeline import (
    MAX_POINTS,
    grid_times,
    listener_speaking,
    predict_timeline,
    prediction_points,
)
from camabc_core.inference.transcripts import load_transcript
from camabc_core.records import Word
from camabc_core.training import load_trained_model

# A recorded 30 s two-person telephone call (MIT licence, see the LICENSE.md beside it).
CALL = Path(__file__).parent.parent / "data" / "samples" / "pyannote_call"
CALL_STM = CALL / "sample.stm"
FOUR_CLASSES = ("NoBC", "Continuer", "Understanding", "Empathy")


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("predict")


@pytest.fixture(scope="module")
def multimodal_run(workspace: Path) -> Path:
    return write_run_dir(workspace / "run-atv", ("audio", "text", "video"))


@pytest.fixture(scope="module")
def audio_text_run(workspace: Path) -> Path:
    return write_run_dir(workspace / "run-at", ("audio", "text"), scheme="binary")


@pytest.fixture(scope="module")
def clip(workspace: Path) -> Path:
    return write_clip(workspace / "clip.mp4", seconds=2.0)


# Prediction points ---------------------------------------------------------------------------


def test_grid_times_round_to_step() -> None:
    assert grid_times(0.35, 0.1).tolist() == [0.1, 0.2, 0.3]
    assert grid_times(0.3, 0.1).tolist() == [0.1, 0.2, 0.3]
    assert grid_times(0.05, 0.1).tolist() == []


def test_points_merge_grid_and_word_ends() -> None:
    words = [Word("A", 0.0, 0.2, "a"), Word("B", 0.1, 0.35, "b"), Word("A", 0.3, 0.45, "c"),
             Word("A", 0.5, 0.9, "beyond")]
    times, sources = prediction_points(words, "A", duration=0.6, step=0.2)
    # A's word ends 0.2 and 0.45; grid 0.2 merges into the word end; 0.9 lies past the end.
    assert times.tolist() == [0.2, 0.4, 0.45, 0.6]
    assert sources == ("word_end", "grid", "word_end", "grid")


def test_points_without_grid() -> None:
    times, sources = prediction_points(DIALOGUE, "A", duration=2.0, step=None)
    assert times.tolist() == [0.3, 0.6, 1.2, 1.5, 1.9]
    assert set(sources) == {"word_end"}


# Moments -------------------------------------------------------------------------------------


def probabilities_for(scores: list[float]) -> np.ndarray:
    """Rows whose 1 − P(NoBC) is ``score``; Understanding takes 60 % of the backchannel mass."""
    scores_array = np.asarray(scores)
    return np.stack([1 - scores_array, 0.25 * scores_array, 0.6 * scores_array, 0.15 * scores_array], axis=1)


def test_local_maxima_plateau_takes_first() -> None:
    assert local_maxima(np.array([0.6, 0.6, 0.3])) == [0]
    assert local_maxima(np.array([0.2, 0.6, 0.6, 0.6, 0.3])) == [1]
    # A plateau that rises again afterwards is no maximum.
    assert local_maxima(np.array([0.2, 0.6, 0.6, 0.7, 0.3])) == [3]
    assert local_maxima(np.array([0.1, 0.7, 0.6, 0.8, 0.2, 0.65])) == [1, 3, 5]


def test_moments_ignore_float_noise_on_a_plateau() -> None:
    # A flat stretch at 0.5575902 to 0.5575913 (noise of a few 1e-7, as different CPU thread counts
    # give): the moment is the first point of the plateau, whatever the noise.
    times = np.array([0.0, 0.1, 0.2, 0.3, 0.4, 0.5])
    base = [0.2, 0.5575902, 0.5575913, 0.5575907, 0.5575911, 0.3]
    for noise in ([0, 0, 0, 0, 0, 0], [0, 3e-7, -9e-7, 2e-7, 0, 0], [0, -1e-7, 0, 4e-7, 8e-7, 0]):
        scores = [value + delta for value, delta in zip(base, noise)]
        moments = detect_moments(times, probabilities_for(scores), FOUR_CLASSES, threshold=0.5)
        assert [m.time for m in moments] == [0.1]


def test_moments_skip_excluded_points() -> None:
    times = np.array([0.0, 1.0, 2.0, 3.0, 4.0])
    probabilities = probabilities_for([0.1, 0.6, 0.9, 0.7, 0.2])
    excluded = np.array([False, False, True, False, False])
    moments = detect_moments(times, probabilities, FOUR_CLASSES, threshold=0.5, min_gap_seconds=0.5,
                             excluded=excluded)
    # Without 2.0 s the points 1.0 and 3.0 s are neighbours; 0.7 > 0.6 makes 3.0 s the maximum.
    assert [m.time for m in moments] == [3.0]
    assert moments[0].point_index == 3


def test_moments_threshold_and_gap() -> None:
    times = np.array([0.0, 0.5, 1.0, 1.5, 2.0, 2.5])
    probabilities = probabilities_for([0.1, 0.7, 0.6, 0.8, 0.2, 0.65])

    moments = detect_moments(times, probabilities, FOUR_CLASSES, threshold=0.5, min_gap_seconds=1.0)
    assert [m.time for m in moments] == [0.5, 1.5, 2.5]
    assert [m.class_name for m in moments] == ["Understanding"] * 3
    assert moments[1].score == pytest.approx(0.8)
    assert moments[1].class_probability == pytest.approx(0.48)

    # 1.2 s apart at least: the peak at 1.5 s suppresses both neighbours 1.0 s away.
    spaced = detect_moments(times, probabilities, FOUR_CLASSES, threshold=0.5, min_gap_seconds=1.2)
    assert [m.time for m in spaced] == [1.5]

    strict = detect_moments(times, probabilities, FOUR_CLASSES, threshold=0.75, min_gap_seconds=0.0)
    assert [m.time for m in strict] == [1.5]


def test_moments_binary_class() -> None:
    times = np.array([0.0, 1.0, 2.0])
    probabilities = np.array([[0.9, 0.1], [0.2, 0.8], [0.7, 0.3]])
    moments = detect_moments(times, probabilities, ("NoBC", "BC"))
    assert [(m.time, m.class_name) for m in moments] == [(1.0, "BC")]


def test_moments_reject_unsorted_times() -> None:
    with pytest.raises(ValueError, match="sorted"):
        detect_moments(np.array([1.0, 0.5]), probabilities_for([0.6, 0.7]), FOUR_CLASSES)


# Roles ---------------------------------------------------------------------------------------


def test_roles_from_word_counts() -> None:
    assert resolve_roles(DIALOGUE) == ("A", "B")
    assert resolve_roles(DIALOGUE, listener="A") == ("B", "A")
    assert resolve_roles(DIALOGUE, speaker="B") == ("B", "A")


def test_roles_single_person_has_empty_listener() -> None:
    assert resolve_roles([Word("A", 0, 1, "hi")]) == ("A", "")


def test_roles_unknown_listener_lists_speakers() -> None:
    with pytest.raises(CamabcError, match=r"--listener 'C' does not appear.*\['A', 'B'\]"):
        resolve_roles(DIALOGUE, listener="C")


def test_roles_same_person_rejected() -> None:
    with pytest.raises(CamabcError, match="must be different"):
        resolve_roles(DIALOGUE, speaker="A", listener="A")


# Transcripts ---------------------------------------------------------------------------------


def test_stm_transcript_words_timed_by_characters() -> None:
    transcript = load_transcript(CALL_STM)
    first = transcript.words[0]
    assert (first.speaker, first.text, first.start, first.end) == ("Diane", "Hello?", 6.68, 7.16)
    # "Oh, hello." spans 8.436-8.876 s: "Oh," has 3 of the 9 characters, so it ends a third in.
    oh, hello = (w for w in transcript.words if w.start >= 8.4 and w.end <= 8.9)
    assert oh.text == "Oh,"
    assert oh.end == pytest.approx(8.436 + 0.44 * 3 / 9)
    assert hello.end == pytest.approx(8.876)
    assert {w.speaker for w in transcript.words} == {"Diane", "Sheila"}


def test_manifest_transcript_picks_conversation(tmp_path: Path) -> None:
    lines = [
        {"id": "one", "audio": "one.wav", "words": [{"speaker": "A", "start": 0.1, "end": 0.4, "text": "hi"}],
         "backchannels": []},
        {"id": "two", "audio": "clip.wav",
         "words": [{"speaker": "A", "start": 0.2, "end": 0.5, "text": "so"},
                   {"speaker": "B", "start": 0.6, "end": 0.7, "text": "yes"}],
         "backchannels": [{"listener": "B", "start": 0.45, "end": 0.55, "category": "CONTINUER"}]},
    ]
    manifest = tmp_path / "corpus.jsonl"
    manifest.write_text("\n".join(json.dumps(line) for line in lines) + "\n", encoding="utf-8")

    by_media = load_transcript(manifest, media=tmp_path / "clip.wav")
    assert [w.text for w in by_media.words] == ["so", "yes"]
    assert [(e.start, e.end) for e in by_media.backchannels] == [(0.45, 0.55)]

    by_id = load_transcript(manifest, conversation="one")
    assert [w.text for w in by_id.words] == ["hi"]

    with pytest.raises(CamabcError, match="--conversation"):
        load_transcript(manifest, media=tmp_path / "other.wav")


def test_word_tsv_transcript(tmp_path: Path) -> None:
    transcript = load_transcript(write_word_tsv(tmp_path / "words.tsv", DIALOGUE))
    assert transcript.words == DIALOGUE


def test_unknown_transcript_extension(tmp_path: Path) -> None:
    path = tmp_path / "words.csv"
    path.write_text("A,0,1,hi\n", encoding="utf-8")
    with pytest.raises(CamabcError, match="--transcript-format"):
        load_transcript(path)


# Offline timeline ----------------------------------------------------------------------------


def test_timeline_probabilities_and_padding(multimodal_run: Path, clip: Path) -> None:
    model, recipe, scheme = load_trained_model(multimodal_run)
    timeline = predict_timeline(model, recipe, scheme.classes, clip, DIALOGUE,
                                speaker="A", listener="B", step=0.5)
    assert timeline.times.tolist() == [0.3, 0.5, 0.6, 1.0, 1.2, 1.5, 1.9, 2.0]
    assert timeline.sources[:2] == ("word_end", "grid")
    assert timeline.last_words == ("yeah", "yeah", "right", "right", "so", "i", "think", "think")
    assert np.allclose(timeline.probabilities.sum(axis=1), 1.0)
    # Windows are 0.5 s long: only the point at 0.3 s reaches before the start of the clip.
    assert timeline.padded.tolist() == [True] + [False] * 7


def test_media_shorter_than_window_is_padded(multimodal_run: Path, workspace: Path,
                                             caplog: pytest.LogCaptureFixture) -> None:
    model, recipe, scheme = load_trained_model(multimodal_run)
    short_clip = write_clip(workspace / "short.mp4", seconds=0.4)
    words = [Word("A", 0.0, 0.15, "yeah"), Word("A", 0.2, 0.35, "right")]
    with caplog.at_level(logging.WARNING):
        timeline = predict_timeline(model, recipe, scheme.classes, short_clip, words,
                                    speaker="A", listener="B", step=0.2)
    assert "less than one 0.50 s window" in caplog.text
    assert timeline.padded.all()
    assert timeline.times.tolist() == [0.15, 0.2, 0.35, 0.4]
    assert np.isfinite(timeline.probabilities).all()


def test_words_past_media_end_are_ignored(audio_text_run: Path, workspace: Path,
                                          caplog: pytest.LogCaptureFixture) -> None:
    model, recipe, scheme = load_trained_model(audio_text_run)
    wav = write_clip(workspace / "one-second.wav", seconds=1.0, video=False)
    words = [Word("A", 0.2, 0.5, "yeah"), Word("A", 0.8, 1.3, "across"), Word("A", 1.5, 1.8, "after")]
    with caplog.at_level(logging.WARNING):
        timeline = predict_timeline(model, recipe, scheme.classes, wav, words,
                                    speaker="A", listener="B", step=None)
    assert "1 of 3 words start after the end" in caplog.text
    # "across" starts inside the clip and stays as context, but its end (1.3 s) is past 1.0 s.
    assert timeline.times.tolist() == [0.5]


def test_transcript_entirely_past_media_end(audio_text_run: Path, workspace: Path) -> None:
    model, recipe, scheme = load_trained_model(audio_text_run)
    wav = write_clip(workspace / "half-second.wav", seconds=0.5, video=False)
    words = [Word("A", 3.0, 3.4, "late")]
    with pytest.raises(CorpusFormatError, match="all 1 words start after the end"):
        predict_timeline(model, recipe, scheme.classes, wav, words, speaker="A", listener="B")


def write_pcm_wav(path: Path, channels: np.ndarray) -> Path:
    """Write float channels (C, N) in [-1, 1] as a 16-bit PCM WAV file at 16 kHz."""
    with wave.open(str(path), "wb") as writer:
        writer.setnchannels(channels.shape[0])
        writer.setsampwidth(2)
        writer.setframerate(16000)
        writer.writeframes((channels.T * 32767).astype("<i2").tobytes())
    return path


def test_channel_speakers_select_channel(audio_text_run: Path, tmp_path: Path) -> None:
    """With one channel per person the windows take the speaker's channel, not the zeroed mix."""
    model, recipe, scheme = load_trained_model(audio_text_run)
    rng = np.random.default_rng(1)
    speaker_channel = 0.3 * np.sin(2 * np.pi * 220 * np.arange(16000) / 16000)
    listener_channel = rng.normal(0, 0.2, 16000)
    stereo = write_pcm_wav(tmp_path / "stereo.wav", np.stack([speaker_channel, listener_channel]))
    mono = write_pcm_wav(tmp_path / "speaker.wav", speaker_channel[None])
    words = [Word("A", 0.1, 0.4, "yeah"), Word("B", 0.3, 0.6, "네"), Word("A", 0.5, 0.9, "right")]

    by_channel = predict_timeline(model, recipe, scheme.classes, stereo, words, channel_speakers=("A", "B"),
                                  speaker="A", listener="B", step=0.25)
    # The same speaker audio alone, with no listener words to zero out.
    speaker_words = [word for word in words if word.speaker == "A"]
    speaker_only = predict_timeline(model, recipe, scheme.classes, mono, speaker_words,
                                    speaker="A", listener="B", step=0.25)
    mixed = predict_timeline(model, recipe, scheme.classes, stereo, words,
                             speaker="A", listener="B", step=0.25)

    assert by_channel.times.tolist() == [0.25, 0.4, 0.5, 0.75, 0.9, 1.0]
    np.testing.assert_allclose(by_channel.probabilities, speaker_only.probabilities, atol=1e-6)
    assert np.abs(mixed.probabilities - by_channel.probabilities).max() > 1e-4


def test_video_model_on_audio_file(multimodal_run: Path, workspace: Path) -> None:
    model, recipe, scheme = load_trained_model(multimodal_run)
    wav = write_clip(workspace / "audio-only.wav", seconds=1.0, video=False)
    with pytest.raises(MediaError, match=r"uses video .* has no video stream"):
        predict_timeline(model, recipe, scheme.classes, wav, DIALOGUE, speaker="A", listener="B",
                         checkpoint=multimodal_run)


def test_audio_model_on_silent_video(audio_text_run: Path, workspace: Path) -> None:
    model, recipe, scheme = load_trained_model(audio_text_run)
    silent = write_clip(workspace / "silent.mp4", seconds=1.0, audio=False)
    with pytest.raises(MediaError, match=r"uses audio .* has no audio stream"):
        predict_timeline(model, recipe, scheme.classes, silent, DIALOGUE, speaker="A", listener="B")


# Command line --------------------------------------------------------------------------------


def test_predict_command_writes_files(multimodal_run: Path, clip: Path, tmp_path: Path,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    transcript = write_word_tsv(tmp_path / "words.tsv", DIALOGUE)
    output = tmp_path / "out"
    code = main(["predict", str(clip), "--transcript", str(transcript), "--checkpoint", str(multimodal_run),
                 "--listener", "B", "--step", "0.25", "--threshold", "0.3", "--output", str(output)])
    assert code == 0

    with (output / "timeline.csv").open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    document = json.loads((output / "timeline.json").read_text(encoding="utf-8"))
    # Grid 0.25 ... 2.0 (8 points) plus the word ends 0.3, 0.6, 1.2, 1.9 (1.5 is on the grid).
    assert [float(row["time"]) for row in rows] == [0.25, 0.3, 0.5, 0.6, 0.75, 1.0, 1.2, 1.25, 1.5,
                                                     1.75, 1.9, 2.0]
    assert rows[8]["source"] == "word_end"
    # B talks over [0.6, 0.8): the points at 0.6 and 0.75 s; no moment may fall there.
    assert [row["listener_speaking"] for row in rows] == ["0", "0", "0", "1", "1"] + ["0"] * 7
    assert list(rows[0])[4:] == ["listener_speaking", "p_NoBC", "p_Continuer", "p_Understanding",
                                 "p_Empathy", "backchannel_score"]
    for row, point in zip(rows, document["points"]):
        assert sum(float(row[f"p_{name}"]) for name in FOUR_CLASSES) == pytest.approx(1.0, abs=1e-5)
        assert float(row["backchannel_score"]) == pytest.approx(1 - float(row["p_NoBC"]), abs=2e-6)
        assert point["probabilities"]["NoBC"] == pytest.approx(float(row["p_NoBC"]), abs=1e-6)

    assert (document["speaker"], document["listener"]) == ("A", "B")
    scores = np.array([point["backchannel_score"] for point in document["points"]])
    times = np.array([point["time"] for point in document["points"]])
    probabilities = np.array([[point["probabilities"][name] for name in FOUR_CLASSES]
                              for point in document["points"]])
    speaking = np.array([point["listener_speaking"] for point in document["points"]])
    expected = detect_moments(times, probabilities, FOUR_CLASSES, threshold=0.3, min_gap_seconds=1.0,
                              excluded=speaking)
    assert [m["time"] for m in document["moments"]] == [m.time for m in expected]
    assert all(scores[m["point_index"]] >= 0.3 for m in document["moments"])
    assert not any(document["points"][m["point_index"]]["listener_speaking"] for m in document["moments"])
    assert document["moment_rule"]["moments_in_listener_speech"] is False

    png = (output / "timeline.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    printed = capsys.readouterr().out
    assert "speaker 'A', listener 'B': 12 points" in printed


def test_predict_command_reports_modality_mismatch(multimodal_run: Path, workspace: Path, tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    wav = write_clip(workspace / "for-cli.wav", seconds=1.0, video=False)
    transcript = write_word_tsv(tmp_path / "words.tsv", DIALOGUE)
    code = main(["predict", str(wav), "--transcript", str(transcript), "--checkpoint", str(multimodal_run),
                 "--output", str(tmp_path / "out")])
    assert code == 1
    assert "has no video stream" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def first_seconds_of(source: Path, seconds: float, target: Path) -> Path:
    """Copy the first ``seconds`` of a PCM WAV file unchanged."""
    with wave.open(str(source), "rb") as reader, wave.open(str(target), "wb") as writer:
        writer.setparams(reader.getparams())
        writer.writeframes(reader.readframes(round(seconds * reader.getframerate())))
    return target


def test_predict_on_recorded_call(audio_text_run: Path, tmp_path: Path) -> None:
    """The first 14 s of a real telephone call with its whole STM transcript, which goes on to 30 s."""
    media = first_seconds_of(CALL / "sample.wav", 14.0, tmp_path / "call_first_14s.wav")
    output = tmp_path / "call"
    code = main(["predict", str(media), "--transcript", str(CALL_STM), "--checkpoint", str(audio_text_run),
                 "--step", "0", "--output", str(output), "--no-plot"])
    assert code == 0
    document = json.loads((output / "timeline.json").read_text(encoding="utf-8"))
    # Diane has the most words, so she speaks and Sheila listens.
    assert (document["speaker"], document["listener"]) == ("Diane", "Sheila")
    assert document["duration"] == pytest.approx(14.0)
    assert document["classes"] == ["NoBC", "BC"]
    # One point per end of Diane's words inside the 14 s; her last utterance then ends at 14.184 s.
    diane_ends = sorted({w.end for w in load_transcript(CALL_STM).words
                         if w.speaker == "Diane" and w.end <= 14.0})
    assert [p["time"] for p in document["points"]] == pytest.approx(diane_ends)
    assert document["points"][0]["last_word"] == "Hello?"
    assert not (output / "timeline.png").exists()


def test_listener_speaking_bridges_short_pauses() -> None:
    words = [Word("B", 1.0, 1.4, "I"), Word("B", 1.6, 2.0, "see"),  # 0.2 s pause: one turn
             Word("B", 3.0, 3.5, "ok"),  # 1.0 s after: a new turn
             Word("A", 2.0, 3.0, "well")]
    times = np.array([0.9, 1.0, 1.5, 1.99, 2.0, 2.5, 3.2, 3.5])
    assert listener_speaking(words, "B", times).tolist() == [False, True, True, True, False, False,
                                                             True, False]


@pytest.mark.parametrize("step", ["nan", "inf", "-0.1", "0.001", "1e-6"])
def test_predict_rejects_bad_step_before_loading(step: str, tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    # The run directory does not exist: the step check has to come first.
    code = main(["predict", str(tmp_path / "missing.wav"), "--transcript", str(tmp_path / "w.tsv"),
                 "--checkpoint", str(tmp_path / "no-run"), "--step", step])
    assert code != 0
    assert "--step must be a finite number of seconds >= 0.01" in capsys.readouterr().err


def test_grid_refuses_too_many_points() -> None:
    with pytest.raises(CamabcError, match=r"1000001 prediction points .* use --step 0\.0101 or larger"):
        grid_times(10_000.01, 0.01)
    assert MAX_POINTS == 1_000_000
    assert grid_times(10_000.01, 0.0101).size == 990_100
    assert grid_times(0.05, 0.01).tolist() == [0.01, 0.02, 0.03, 0.04, 0.05]


@pytest.mark.parametrize(("device", "message"), [
    ("tpu", "--device 'tpu' is not a device name; use cpu, cuda or cuda:N"),
    ("cuda", "--device cuda: this torch build has no CUDA support or sees no GPU"),
])
def test_predict_rejects_unavailable_device(device: str, message: str, tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    if device == "cuda" and torch.cuda.is_available():
        pytest.skip("a GPU is visible")
    code = main(["predict", str(tmp_path / "missing.wav"), "--transcript", str(tmp_path / "w.tsv"),
                 "--checkpoint", str(tmp_path / "no-run"), "--device", device])
    assert code != 0
    assert message in capsys.readouterr().err


def test_predict_checks_media_before_loading_model(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    import camabc_core.training

    def fail(*args, **kwargs):
        raise AssertionError("the model was loaded before the inputs were checked")

    monkeypatch.setattr(camabc_core.training, "load_trained_model", fail)
    transcript = write_word_tsv(tmp_path / "words.tsv", DIALOGUE)
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    code = main(["predict", str(tmp_path / "missing.wav"), "--transcript", str(transcript),
                 "--checkpoint", str(run_dir)])
    assert code != 0
    assert "missing.wav: media file not found" in capsys.readouterr().err


def test_predict_skip_malformed_transcript_lines(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    transcript = write_word_tsv(tmp_path / "words.tsv", DIALOGUE)
    with transcript.open("a", encoding="utf-8") as handle:
        handle.write("A\tnot-a-time\t2.0\tbroken\n")
    with pytest.raises(CorpusFormatError, match="--skip-malformed"):
        load_transcript(transcript)
    with caplog.at_level(logging.WARNING):
        loaded = load_transcript(transcript, skip_malformed=True)
    assert [w.text for w in loaded.words] == [w.text for w in DIALOGUE]
    assert "words.tsv:8" in caplog.text


def test_timeline_plot_size_legend_and_thinned_labels(tmp_path: Path,
                                                      caplog: pytest.LogCaptureFixture) -> None:
    import matplotlib
    from matplotlib import font_manager
    from PIL import Image

    from camabc_core.inference import plotting
    from camabc_core.inference.timeline import Timeline

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    # 300 s of media with a word every 0.2 s: far more words than fit at 20 inches.
    words = [Word("A" if i % 2 else "B", 0.2 * i, 0.2 * i + 0.15, "네" if i % 3 == 0 else "word")
             for i in range(1500)]
    times = np.arange(1, 301, dtype=np.float64)
    probabilities = probabilities_for(list(np.linspace(0.1, 0.9, times.size)))
    timeline = Timeline(classes=FOUR_CLASSES, times=times, sources=("grid",) * times.size,
                        last_words=("",) * times.size, probabilities=probabilities,
                        padded=np.zeros(times.size, dtype=bool), speaker="A", listener="B",
                        duration=300.0, window_seconds=1.5)
    with caplog.at_level(logging.WARNING):
        path = plotting.plot_timeline(timeline, None, 16000, words, tmp_path / "timeline.png", threshold=0.5)
    width, height = Image.open(path).size
    assert width <= 2000
    assert height <= 700
    installed = {font.name for font in font_manager.fontManager.ttflist}
    if not installed & set(plotting.KOREAN_FONTS):
        assert "fonts-nanum" in caplog.text

    figure, axis = plt.subplots(figsize=(20, 6))
    plain = [attrs.evolve(word, text="word") for word in words]
    labels = plotting._draw_words(axis, plain, "A", 20.0, 300.0)
    plt.close(figure)
    # A 4-letter label at 8 pt covers (4 · 8 · 0.62 / 72 + 0.05) in · 15 s/in = 4.88 s. Each person
    # speaks every 0.4 s, so their 3 rows take the words at t, t + 0.4 and t + 0.8. The next label
    # fits at t + 5.2, which gives 58 groups of 3 labels per person in 300 s, 348 of the 1500 words.
    assert labels == 2 * 58 * 3
    assert plotting.WORD_FONT_SIZE >= 8


def test_predict_with_truncated_weights_names_the_file(audio_text_run: Path, tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    import shutil

    run_dir = shutil.copytree(audio_text_run, tmp_path / "run")
    weights = run_dir / "checkpoints" / "best" / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])
    wav = write_clip(tmp_path / "clip.wav", seconds=1.0, video=False)
    transcript = write_word_tsv(tmp_path / "words.tsv", DIALOGUE)
    code = main(["predict", str(wav), "--transcript", str(transcript), "--checkpoint", str(run_dir),
                 "--output", str(tmp_path / "out"), "--no-plot"])
    assert code != 0
    error = capsys.readouterr().err
    assert f"{weights} is not a readable safetensors file" in error
    assert "Traceback" not in error
