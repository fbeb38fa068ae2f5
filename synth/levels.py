"""Speech levels per video frame, and the choice of which speaker a conversation clip shows."""

from __future__ import annotations

import numpy as np

# RMS level (dBFS) of a frame with no samples, or of digital silence.
SILENCE_DB = -120.0


def frame_energies_db(audio: np.ndarray, sample_rate: int, fps: int, num_frames: int) -> np.ndarray:
    """Return the RMS level in dBFS of the audio under each video frame: shape (num_frames,).

    Frame k covers samples [round(k × rate / fps), round((k + 1) × rate / fps)). A frame past the end
    of the audio, or a silent one, gets ``SILENCE_DB``.
    """
    bounds = np.round(np.arange(num_frames + 1) * sample_rate / fps).astype(np.int64)
    bounds = np.minimum(bounds, audio.shape[0])
    squares = np.concatenate([[0.0], np.cumsum(audio.astype(np.float64) ** 2)])
    counts = np.maximum(bounds[1:] - bounds[:-1], 1)
    mean_square = (squares[bounds[1:]] - squares[bounds[:-1]]) / counts
    return np.maximum(10.0 * np.log10(np.maximum(mean_square, 1e-30)), SILENCE_DB)


def choose_active_tracks(energies_db: np.ndarray, fps: int, *, floor_db: float = -48.0,
                         smoothing_seconds: float = 0.5, min_shot_seconds: float = 0.6) -> np.ndarray:
    """Pick the track to show in each frame of a conversation clip: shape (N,) of indices into K.

    ``energies_db`` (K, N) contains each speaker's level per frame. The loudest speaker over a
    ``smoothing_seconds`` moving average is shown. When no speaker is above ``floor_db`` the last
    speaker stays on screen, and a cut is held at least ``min_shot_seconds`` so the view does not
    flicker during overlaps. The first frame shows the first speaker to talk (track 0 if none does).
    """
    num_frames = energies_db.shape[1]
    power = 10.0 ** (energies_db / 10.0)  # (K, N)
    width = max(1, round(smoothing_seconds * fps))
    kernel = np.ones(width) / width
    smoothed = np.stack([np.convolve(row, kernel, mode="same") for row in power])  # (K, N)
    loudest = smoothed.argmax(axis=0)
    audible = 10.0 * np.log10(np.maximum(smoothed.max(axis=0), 1e-30)) > floor_db
    audible_frames = np.flatnonzero(audible)
    current = int(loudest[audible_frames[0]]) if audible_frames.size else 0
    min_shot = round(min_shot_seconds * fps)
    shot_start = 0
    chosen = np.empty(num_frames, dtype=np.int64)
    for frame in range(num_frames):
        if audible[frame] and loudest[frame] != current and frame - shot_start >= min_shot:
            current, shot_start = int(loudest[frame]), frame
        chosen[frame] = current
    return chosen
