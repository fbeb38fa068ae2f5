"""The CPU cartoon path: a bust that follows the speaker's attributes, a mouth that follows the audio."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

from camabc_core.interfaces import AnimationRequest
from synth.cartoon_animator import CartoonAnimator, mouth_openings
from synth.cartoon_reference import DEFAULT_LAYOUT, SKIN_TONES, CartoonReferenceGenerator, draw_bust
from synth.levels import SILENCE_DB, choose_active_tracks, frame_energies_db

ATTRIBUTES = {"sex": "female", "age": 30, "race": "White", "outfit": "wearing shirts"}


def _request(reference: np.ndarray, audio: np.ndarray, *, fps: int = 30, num_frames: int = 45,
             start_time: float = 0.0) -> AnimationRequest:
    return AnimationRequest(reference=reference, reference_path=Path("reference.png"), audio=audio,
                            audio_path=Path("driving.wav"), sample_rate=16000, fps=fps,
                            num_frames=num_frames, start_time=start_time, seed=7)


def _cheek(image: np.ndarray) -> np.ndarray:
    height, width = image.shape[:2]
    return image[int(0.45 * height), int(0.38 * width)].astype(int)


def test_bust_size_and_determinism():
    generator = CartoonReferenceGenerator()
    first = generator.generate("ignored", seed=3, width=96, height=128, attributes=ATTRIBUTES)
    again = draw_bust(96, 128, ATTRIBUTES, seed=3)
    assert first.shape == (128, 96, 3)
    assert first.dtype == np.uint8
    assert np.array_equal(first, again)
    assert not np.array_equal(first, draw_bust(96, 128, ATTRIBUTES, seed=4))


def test_skin_tone_follows_race():
    for race, (lightest, darkest) in SKIN_TONES.items():
        cheek = _cheek(draw_bust(128, 128, {**ATTRIBUTES, "race": race}, seed=0))
        low = np.minimum(lightest, darkest) - 2
        high = np.maximum(lightest, darkest) + 2
        assert np.all(cheek >= low), race
        assert np.all(cheek <= high), race


def test_old_speaker_has_grey_hair():
    young = draw_bust(128, 128, {**ATTRIBUTES, "age": 25, "race": "Black"}, seed=1)
    old = draw_bust(128, 128, {**ATTRIBUTES, "age": 80, "race": "Black"}, seed=1)
    # A point of the hair cap, above the forehead.
    young_hair = young[int(0.2 * 128), 64].astype(int)
    old_hair = old[int(0.2 * 128), 64].astype(int)
    assert young_hair.mean() < 60
    assert old_hair.mean() > 110


def test_silence_keeps_mouth_closed():
    reference = draw_bust(224, 224, ATTRIBUTES, seed=0)
    # Starting after a blink, 45 silent frames equal the reference everywhere.
    animator = CartoonAnimator(blink_period=100.0)
    frames = list(animator.animate(_request(reference, np.zeros(24000, dtype=np.float32), start_time=1.0)))
    assert len(frames) == 45
    assert all(np.array_equal(frame, reference) for frame in frames)


def test_loud_audio_opens_mouth_only():
    reference = draw_bust(224, 224, ATTRIBUTES, seed=0)
    times = np.arange(24000) / 16000
    loud = (0.5 * np.sin(2 * np.pi * 220 * times)).astype(np.float32)
    frames = list(CartoonAnimator(blink_period=100.0).animate(_request(reference, loud, start_time=1.0)))
    changed = np.any(frames[20] != reference, axis=2)  # (H, W)
    rows, columns = np.nonzero(changed)
    assert rows.size > 50
    mouth_x, mouth_y = DEFAULT_LAYOUT.mouth_center
    assert abs(rows.mean() / 224 - (mouth_y + DEFAULT_LAYOUT.mouth_max_open / 2)) < 0.05
    assert abs(columns.mean() / 224 - mouth_x) < 0.03


def test_blinks_placed_on_conversation_timeline():
    reference = draw_bust(128, 128, ATTRIBUTES, seed=0)
    animator = CartoonAnimator(blink_period=2.0, blink_duration=0.1)
    silence = np.zeros(16000 * 4, dtype=np.float32)
    whole = list(animator.animate(_request(reference, silence, num_frames=120, start_time=0.0)))
    later = list(animator.animate(_request(reference, silence[16000:], num_frames=60, start_time=1.0)))
    # The clip starting at 1.0 s shows the same frames as the whole side from frame 30 on.
    assert all(np.array_equal(a, b) for a, b in zip(whole[30:90], later))
    blinking = [index for index, frame in enumerate(whole) if not np.array_equal(frame, reference)]
    assert blinking
    assert len(blinking) == 6  # two blinks in 4 s, 3 frames (0.1 s at 30 fps) each


def test_frame_energies_and_openings():
    tone = np.full(1600, 0.1, dtype=np.float32)  # a constant 0.1 has RMS -20 dBFS
    levels = frame_energies_db(np.concatenate([np.zeros(1600, np.float32), tone]), 16000, 10, 3)
    assert levels[0] == SILENCE_DB
    assert levels[1] == pytest.approx(-20.0, abs=1e-6)
    assert levels[2] == SILENCE_DB  # past the end of the audio
    openings = mouth_openings(np.array([-60.0, -16.0, -32.0]), floor_db=-48.0, ceiling_db=-16.0)
    # Unsmoothed 0, 1, 0.5; smoothed with weights 1/4, 1/2, 1/4 and the ends repeated.
    assert openings == pytest.approx([0.25, 0.625, 0.625])


def test_active_track_follows_louder_speaker():
    fps = 10
    levels = np.full((2, 40), SILENCE_DB)
    levels[0, :15] = -20.0  # speaker 0 talks for 1.5 s, then speaker 1 for 2.5 s
    levels[1, 15:] = -20.0
    chosen = choose_active_tracks(levels, fps, smoothing_seconds=0.1, min_shot_seconds=0.5)
    assert list(chosen[:15]) == [0] * 15
    assert list(chosen[15:]) == [1] * 25


def test_cartoon_is_ten_times_real_time():
    reference = draw_bust(224, 224, ATTRIBUTES, seed=0)
    seconds = 20
    times = np.arange(seconds * 16000) / 16000
    audio = (0.3 * np.sin(2 * np.pi * 180 * times) * (np.sin(2 * np.pi * 2 * times) > 0)).astype(np.float32)
    started = time.perf_counter()
    count = sum(1 for _ in CartoonAnimator().animate(_request(reference, audio, num_frames=seconds * 30)))
    elapsed = time.perf_counter() - started
    assert count == seconds * 30
    assert seconds / elapsed >= 10.0
