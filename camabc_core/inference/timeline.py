"""Offline prediction: class probabilities over the whole of one media file.

Prediction points are the end of every word of the speaker plus a regular grid every ``step``
seconds (``step``, ``2 × step``, ... up to the media's duration). At each point the model receives
the same windows as in training. These are the speaker's audio over ``[t − n, t)`` with the
listener's speech zeroed, the speaker's last m words, and l video frames over ``[t − n, t)``.

Windows that reach before the start of the media are zero-padded (audio, masked as padding) and use
the first frame (video), exactly as training windows near the start of a conversation. Such points
are flagged ``padded``. This covers media shorter than one window: every point is padded.

Points where the listener is talking are flagged ``listener_speaking``. The listener already has
the turn there, so ``camabc predict`` places no backchannel moment on them by default.

The grid is at most ``MAX_POINTS_PER_SECOND`` points per second (``step`` >= ``MIN_STEP_SECONDS``),
and a timeline has at most ``MAX_POINTS`` points; finer requests are refused before any model runs.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import attrs
import numpy as np
import torch
from tqdm.auto import tqdm

from camabc_core.errors import CorpusFormatError, MediaError
from camabc_core.inference.media_checks import check_media_modalities, probe_media
from camabc_core.inference.moments import BackchannelMoment, backchannel_scores
from camabc_core.inference.points import (  # noqa: F401 (MAX_POINTS* re-exported for callers)
    MAX_POINTS,
    MAX_POINTS_PER_SECOND,
    MIN_STEP_SECONDS,
    check_point_count,
    check_step,
)
from camabc_core.interfaces import Window
from camabc_core.media import AudioSource
from camabc_core.recipe import Recipe
from camabc_core.records import BackchannelEvent, Conversation, Sample, Word

logger = logging.getLogger(__name__)

#: Two prediction times closer than this (seconds) are one point.
TIME_TOLERANCE = 1e-6

#: Pauses shorter than this between two listener words still count as the listener talking.
LISTENER_PAUSE_SECONDS = 0.5

WORD_END = "word_end"
GRID = "grid"


@attrs.frozen
class Timeline:
    """Class probabilities at the prediction points of one media file, sorted by time."""

    classes: tuple[str, ...]
    #: (N,) seconds from the start of the media.
    times: np.ndarray
    #: (N,) ``"word_end"`` (a speaker word ends here) or ``"grid"`` (a multiple of ``step``).
    sources: tuple[str, ...]
    #: (N,) the speaker's last word ending at or before the point ("" before the first word).
    last_words: tuple[str, ...]
    #: (N, C) softmax probabilities over ``classes``.
    probabilities: np.ndarray
    #: (N,) True where the window reaches before the start of the media (zero-padded audio).
    padded: np.ndarray
    speaker: str
    listener: str
    duration: float
    window_seconds: float
    #: Whether the media has an audio stream (the plot draws its waveform).
    has_audio: bool = True
    moments: tuple[BackchannelMoment, ...] = ()
    #: (N,) True where the listener is talking (see ``listener_speaking``); None when not computed.
    listener_speaking: np.ndarray | None = None

    @property
    def backchannel_scores(self) -> np.ndarray:
        """(N,) 1 − P(NoBC): the probability that the listener reacts at each point."""
        return backchannel_scores(self.probabilities, self.classes)


def listener_speaking(words: Sequence[Word], listener: str, times: np.ndarray) -> np.ndarray:
    """Return (N,) True for the ``times`` at which ``listener`` is talking.

    The listener talks over ``[start, end)`` of each of their words. Pauses shorter than
    ``LISTENER_PAUSE_SECONDS`` between two of their words are bridged, so a turn counts as a whole.
    """
    spans = sorted((w.start, w.end) for w in words if w.speaker == listener and w.end > w.start)
    turns: list[list[float]] = []
    for start, end in spans:
        if turns and start - turns[-1][1] < LISTENER_PAUSE_SECONDS:
            turns[-1][1] = max(turns[-1][1], end)
        else:
            turns.append([start, end])
    speaking = np.zeros(times.shape, dtype=bool)
    for start, end in turns:
        speaking |= (times >= start) & (times < end)
    return speaking


def grid_times(duration: float, step: float) -> np.ndarray:
    """Return ``step, 2·step, ...`` up to ``duration`` inclusive, rounded to microseconds."""
    check_step(step)
    check_point_count(duration, step)
    count = int(np.floor(duration / step + TIME_TOLERANCE))
    # Rounding keeps 0.1 · 3 at 0.3 instead of 0.30000000000000004, so grid and word times compare.
    return np.round(np.arange(1, count + 1, dtype=np.float64) * step, 6)


def prediction_points(words: Sequence[Word], speaker: str, duration: float,
                      step: float | None) -> tuple[np.ndarray, tuple[str, ...]]:
    """Return the sorted prediction times (N,) and their sources: speaker word ends and the grid.

    Word ends outside ``(0, duration]`` are left out. A grid time within ``TIME_TOLERANCE`` of a word
    end merges into that word-end point.
    """
    word_ends = sorted({w.end for w in words if w.speaker == speaker and 0 < w.end <= duration})
    points: list[tuple[float, str]] = [(end, WORD_END) for end in word_ends]
    if step is not None:
        ends = np.asarray(word_ends, dtype=np.float64)
        for time in grid_times(duration, step):
            position = int(np.searchsorted(ends, time))
            near = [ends[i] for i in (position - 1, position) if 0 <= i < ends.size]
            if not any(abs(time - end) <= TIME_TOLERANCE for end in near):
                points.append((float(time), GRID))
    points.sort()
    times = np.asarray([time for time, _ in points], dtype=np.float64)
    return times, tuple(source for _, source in points)


def last_speaker_words(words: Sequence[Word], speaker: str, times: np.ndarray) -> tuple[str, ...]:
    """For each time, the text of the speaker's last word that ends at or before it ("" if none)."""
    spoken = sorted((w for w in words if w.speaker == speaker), key=lambda w: w.end)
    ends = np.asarray([w.end for w in spoken], dtype=np.float64)
    positions = np.searchsorted(ends, times + TIME_TOLERANCE, side="right") - 1
    return tuple(spoken[p].text if p >= 0 else "" for p in positions)


def words_within_media(words: Sequence[Word], duration: float, transcript: str | Path,
                       media: str | Path) -> tuple[Word, ...]:
    """Drop words that start at or after the end of the media; raise if that leaves none.

    Words that start inside the media but end after it stay (their text can still be context), but
    no prediction point is placed past the end. Negative times are a transcript error.
    """
    negative = [w for w in words if w.start < 0 or w.end < w.start]
    if negative:
        first = negative[0]
        raise CorpusFormatError(
            f"{transcript}: {len(negative)} word(s) have a negative time or end before they start, "
            f"the first is {first.text!r} of {first.speaker} at {first.start:.3f}-{first.end:.3f} s; "
            f"fix the timestamps"
        )
    inside = tuple(w for w in words if w.start < duration)
    outside = len(words) - len(inside)
    if not inside:
        raise CorpusFormatError(
            f"{transcript}: all {len(words)} words start after the end of {media} ({duration:.2f} s); "
            f"the transcript probably belongs to another media file"
        )
    if outside:
        first = next(w for w in words if w.start >= duration)
        logger.warning(
            "%s: %d of %d words start after the end of %s (%.2f s) and are ignored; "
            "the first is %r at %.2f s",
            transcript, outside, len(words), media, duration, first.text, first.start,
        )
    return inside


def move_to_device(inputs: Any, device: torch.device) -> Any:
    """Move every tensor of a (nested) dict, list or tuple of inputs to ``device``."""
    if isinstance(inputs, torch.Tensor):
        return inputs.to(device)
    if isinstance(inputs, dict):
        return {key: move_to_device(value, device) for key, value in inputs.items()}
    if isinstance(inputs, (list, tuple)):
        return type(inputs)(move_to_device(value, device) for value in inputs)
    return inputs


@torch.inference_mode()
def class_probabilities(model: torch.nn.Module, windows: Sequence[Window]) -> np.ndarray:
    """Run the model in eval mode on a batch of windows; return softmax probabilities (B, C) as float64."""
    model.eval()
    device = next(model.parameters()).device
    inputs = move_to_device(model.preprocess(list(windows)), device)
    logits = model(inputs).logits  # (B, C)
    return torch.softmax(logits.double(), dim=-1).cpu().numpy()


def media_duration(media: str | Path, has_audio: bool, declared: float | None, sample_rate: int,
                   audio_cache_dir: str | Path | None = None) -> float:
    """Duration in seconds: the decoded audio's length when there is audio, else the container's."""
    if has_audio:
        return AudioSource.from_file(media, sample_rate, cache_dir=audio_cache_dir).duration
    if declared is None:
        raise MediaError(f"{media}: the container declares no duration and has no audio to measure it")
    return declared


def _probabilities_at(model: torch.nn.Module, extractor: Any, conversation: Conversation,
                      times: np.ndarray, speaker: str, listener: str, num_classes: int,
                      batch_size: int) -> np.ndarray:
    """Class probabilities (N, C) at ``times``, in batches of ``batch_size`` windows."""
    probabilities = np.empty((times.size, num_classes), dtype=np.float64)
    for begin in tqdm(range(0, times.size, batch_size), desc="predict", unit="batch",
                      disable=times.size <= batch_size):
        windows = [
            extractor.extract(Sample(conversation.id, float(time), speaker, listener))
            for time in times[begin:begin + batch_size]
        ]
        probabilities[begin:begin + len(windows)] = class_probabilities(model, windows)
    return probabilities


def predict_timeline(
    model: torch.nn.Module,
    recipe: Recipe,
    classes: Sequence[str],
    media: str | Path,
    words: Sequence[Word],
    *,
    backchannels: Sequence[BackchannelEvent] = (),
    channel_speakers: Sequence[str] | None = None,
    speaker: str,
    listener: str,
    step: float | None = 0.1,
    batch_size: int = 16,
    checkpoint: str | Path = "the checkpoint",
    transcript: str | Path = "the transcript",
    audio_cache_dir: str | Path | None = None,
) -> Timeline:
    """Predict class probabilities at every prediction point of ``media`` (see the module docstring).

    ``words`` contains every speaker's timed words; the listener's words and ``backchannels`` mark the
    audio to zero out. With ``channel_speakers`` (the speaker of each audio channel) the windows take
    the speaker's own channel instead of zeroing the listener in the mix. ``checkpoint`` and
    ``transcript`` only name the inputs in messages. ``audio_cache_dir`` keeps the decoded audio as
    a memory-mapped file, so the media is decoded once for the duration and every window.

    Raises ``MediaError`` when the media lacks a stream the model uses, and ``CorpusFormatError`` when
    the transcript does not fit the media.
    """
    from camabc_core.windows import WindowExtractor

    media = Path(media)
    modalities = tuple(model.modalities)
    info = probe_media(media)
    check_media_modalities(info, modalities, checkpoint)
    window = recipe.data.window
    duration = media_duration(media, info.has_audio, info.declared_duration, window.sample_rate,
                              audio_cache_dir)
    words = words_within_media(words, duration, transcript, media)
    if duration < window.audio_seconds:
        logger.warning(
            "%s lasts %.2f s, less than one %.2f s window: every window is zero-padded at the start",
            media, duration, window.audio_seconds,
        )

    conversation = Conversation(
        id=media.stem,
        words=tuple(sorted(words, key=lambda w: (w.start, w.end))),
        backchannels=tuple(event for event in backchannels if event.start < duration),
        speakers=tuple(dict.fromkeys(w.speaker for w in words)),
        audio_path=media if info.has_audio else None,
        video_path=media if info.has_video and "video" in modalities else None,
        channel_speakers=tuple(channel_speakers) if channel_speakers else None,
        duration=duration,
    )
    if step is not None:
        check_step(step)
    check_point_count(duration, step, word_ends=sum(1 for w in conversation.words if w.speaker == speaker))
    times, sources = prediction_points(conversation.words, speaker, duration, step)
    if times.size == 0:
        raise CorpusFormatError(
            f"{transcript}: no prediction point inside {media} ({duration:.2f} s): speaker {speaker!r} "
            f"has no word ending inside the media and no grid step was given"
        )
    extractor = WindowExtractor([conversation], window, modalities, audio_cache_dir=audio_cache_dir)
    try:
        probabilities = _probabilities_at(model, extractor, conversation, times, speaker, listener,
                                          len(classes), batch_size)
    finally:
        extractor.close()

    return Timeline(
        classes=tuple(classes),
        times=times,
        sources=sources,
        last_words=last_speaker_words(conversation.words, speaker, times),
        probabilities=probabilities,
        padded=times < window.audio_seconds - TIME_TOLERANCE,
        speaker=speaker,
        listener=listener,
        duration=duration,
        window_seconds=window.audio_seconds,
        has_audio=info.has_audio,
        listener_speaking=listener_speaking(conversation.words, listener, times),
    )
