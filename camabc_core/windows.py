"""Model inputs before a prediction point t: the speaker's audio, words and video frames.

For a window length n seconds, m words and l frames:

- audio: samples ``[round(t × rate) − round(n × rate), round(t × rate))``; positions before the start
  (or past the end) of the recording are zero and marked in the padding mask. Mono recordings get
  the listener's speech intervals (their words and backchannels) zeroed; multi-channel recordings
  (``Conversation.channel_speakers``) give the speaker's own channel.
- text: the speaker's last m words that end at or before t, NFKC-normalised and joined by spaces;
  other speakers' words never enter. No such word gives "".
- video: the frames on screen at ``t − n + k·n/l`` for k = 0 … l−1. The last time is t − n/l, so no
  frame shown at or after t is used. Times before the first frame give the first frame.
"""

from __future__ import annotations

import logging
import os
import unicodedata
from collections import OrderedDict, defaultdict
from collections.abc import Callable, Collection, Iterable, Sequence
from pathlib import Path
from typing import Generic, TypeVar

import attrs
import numpy as np

from camabc_core.errors import MediaError, RecipeError
from camabc_core.interfaces import MODALITIES, AudioWindow, VideoWindow, Window
from camabc_core.media import AudioSource, VideoReader
from camabc_core.recipe import WindowSection
from camabc_core.records import Conversation, Sample

logger = logging.getLogger(__name__)

Key = TypeVar("Key")
Value = TypeVar("Value")


class _LeastRecentlyUsed(Generic[Key, Value]):
    """A small cache of open media: long recordings are large, so only a few stay decoded."""

    def __init__(self, capacity: int, on_evict: Callable[[Value], None] | None = None):
        self.capacity = max(capacity, 1)
        self.on_evict = on_evict
        self._items: OrderedDict[Key, Value] = OrderedDict()

    def get(self, key: Key, create: Callable[[], Value]) -> Value:
        if key in self._items:
            self._items.move_to_end(key)
            return self._items[key]
        value = create()
        self._items[key] = value
        while len(self._items) > self.capacity:
            _, evicted = self._items.popitem(last=False)
            if self.on_evict is not None:
                self.on_evict(evicted)
        return value

    def clear(self) -> None:
        while self._items:
            _, evicted = self._items.popitem(last=False)
            if self.on_evict is not None:
                self.on_evict(evicted)


@attrs.frozen
class _SpeakerWords:
    """One speaker's non-empty words sorted by end time, for binary search on t."""

    ends: np.ndarray  # (W,) float64, ascending
    texts: tuple[str, ...]  # (W,) NFKC-normalised


@attrs.frozen
class _Intervals:
    """Disjoint, sorted time intervals in seconds (starts and ends both ascending)."""

    starts: np.ndarray
    ends: np.ndarray

    @classmethod
    def merge(cls, pairs: Iterable[tuple[float, float]]) -> _Intervals:
        merged: list[list[float]] = []
        for start, end in sorted(pair for pair in pairs if pair[1] > pair[0]):
            if merged and start <= merged[-1][1]:
                merged[-1][1] = max(merged[-1][1], end)
            else:
                merged.append([start, end])
        array = np.asarray(merged, dtype=np.float64).reshape(-1, 2)
        return cls(array[:, 0].copy(), array[:, 1].copy())


def _index_words(conversation: Conversation) -> dict[str, _SpeakerWords]:
    by_speaker: dict[str, list[tuple[float, str]]] = defaultdict(list)
    for word in conversation.words:
        text = unicodedata.normalize("NFKC", word.text or "").strip()
        if text:
            by_speaker[word.speaker].append((word.end, text))
    index = {}
    for speaker, entries in by_speaker.items():
        entries.sort(key=lambda entry: entry[0])
        index[speaker] = _SpeakerWords(
            np.fromiter((e for e, _ in entries), np.float64, len(entries)), tuple(text for _, text in entries)
        )
    return index


def _listener_intervals(conversation: Conversation, listener: str) -> _Intervals:
    words = ((w.start, w.end) for w in conversation.words if w.speaker == listener)
    events = ((e.start, e.end) for e in conversation.backchannels if e.listener == listener)
    return _Intervals.merge([*words, *events])


def video_sample_times(end_time: float, window_seconds: float, num_frames: int) -> np.ndarray:
    """Return the l frame times ``t − n + k·n/l`` (k = 0 … l−1) of a window ending at t: shape (l,)."""
    return end_time - window_seconds + np.arange(num_frames) * (window_seconds / num_frames)


class WindowExtractor:
    """Cuts the audio, text and video windows of samples out of their conversations.

    Only the modalities in ``modalities`` are read; the others are None in the ``Window``. Word
    indexes are built per conversation on first use. Decoded audio and open videos are cached for
    the ``max_open_media`` most recently used conversations, so extracting samples in conversation
    order decodes each file once. ``audio_cache_dir`` keeps decoded audio on disk across runs and
    data-loader workers. Pickling (for workers) drops the caches.
    """

    def __init__(
        self,
        conversations: Iterable[Conversation],
        window: WindowSection,
        modalities: Collection[str],
        *,
        max_open_media: int = 4,
        audio_cache_dir: str | os.PathLike[str] | None = None,
    ):
        unknown = sorted(set(modalities) - set(MODALITIES))
        if unknown:
            raise RecipeError(f"unknown modalities {unknown}; expected a subset of {list(MODALITIES)}")
        _validate_window(window)
        self.window = window
        self.modalities = frozenset(modalities)
        self.max_open_media = max_open_media
        self.audio_cache_dir = audio_cache_dir
        self._conversations: dict[str, Conversation] = {}
        for conversation in conversations:
            if conversation.id in self._conversations:
                raise RecipeError(f"two conversations share the id {conversation.id!r}; ids must be unique")
            self._conversations[conversation.id] = conversation
        self._create_caches()

    def _create_caches(self) -> None:
        self._word_indexes: dict[str, dict[str, _SpeakerWords]] = {}
        self._masks: dict[tuple[str, str], _Intervals] = {}
        self._audio = _LeastRecentlyUsed[str, AudioSource](self.max_open_media)
        self._video = _LeastRecentlyUsed[str, VideoReader](self.max_open_media, on_evict=VideoReader.close)

    def __getstate__(self) -> dict[str, object]:
        state = dict(self.__dict__)
        for name in ("_word_indexes", "_masks", "_audio", "_video"):
            state.pop(name)
        return state

    def __setstate__(self, state: dict[str, object]) -> None:
        self.__dict__.update(state)
        self._create_caches()

    def close(self) -> None:
        """Release decoded audio and open video files."""
        self._audio.clear()
        self._video.clear()

    def conversation(self, conversation_id: str) -> Conversation:
        try:
            return self._conversations[conversation_id]
        except KeyError:
            raise RecipeError(
                f"sample refers to conversation {conversation_id!r}, which is not among the "
                f"{len(self._conversations)} conversations given to the WindowExtractor"
            ) from None

    def extract(self, sample: Sample) -> Window:
        """Return the windows of every configured modality for one sample."""
        return Window(
            audio=self.extract_audio(sample) if "audio" in self.modalities else None,
            text=self.extract_text(sample) if "text" in self.modalities else None,
            video=self.extract_video(sample) if "video" in self.modalities else None,
        )

    # Text --------------------------------------------------------------------------------------

    def _words_of(self, conversation_id: str, speaker: str) -> _SpeakerWords | None:
        index = self._word_indexes.get(conversation_id)
        if index is None:
            index = self._word_indexes[conversation_id] = _index_words(self.conversation(conversation_id))
        return index.get(speaker)

    def extract_text(self, sample: Sample) -> str:
        """Return the speaker's last m words ending at or before the sample time, joined by spaces."""
        words = self._words_of(sample.conversation_id, sample.speaker)
        if words is None or self.window.text_words == 0:
            return ""
        stop = int(np.searchsorted(words.ends, sample.time, side="right"))
        return " ".join(words.texts[max(stop - self.window.text_words, 0) : stop])

    def extract_texts(self, samples: Sequence[Sample]) -> list[str]:
        """Return ``extract_text`` of every sample, with one vectorised search per speaker."""
        texts = [""] * len(samples)
        groups: dict[tuple[str, str], list[int]] = defaultdict(list)
        for position, sample in enumerate(samples):
            groups[sample.conversation_id, sample.speaker].append(position)
        count = self.window.text_words
        if count == 0:
            return texts
        for (conversation_id, speaker), positions in groups.items():
            words = self._words_of(conversation_id, speaker)
            if words is None:
                continue
            times = np.fromiter((samples[p].time for p in positions), np.float64, len(positions))
            stops = np.searchsorted(words.ends, times, side="right").tolist()
            word_texts = words.texts
            for position, stop in zip(positions, stops):
                texts[position] = " ".join(word_texts[max(stop - count, 0) : stop])
        return texts

    # Audio -------------------------------------------------------------------------------------

    def _audio_source(self, conversation: Conversation) -> AudioSource:
        if conversation.audio_path is None:
            raise MediaError(
                f"conversation {conversation.id!r} has no audio file; add one or drop the audio modality"
            )
        path = Path(conversation.audio_path)
        return self._audio.get(
            conversation.id,
            lambda: AudioSource.from_file(path, self.window.sample_rate, cache_dir=self.audio_cache_dir),
        )

    def extract_audio(self, sample: Sample) -> AudioWindow:
        """Return the n seconds before the sample time: the speaker's channel, or the mono mix with
        the listener's speech zeroed."""
        conversation = self.conversation(sample.conversation_id)
        source = self._audio_source(conversation)
        rate = self.window.sample_rate
        num_samples = round(self.window.audio_seconds * rate)
        if conversation.channel_speakers:
            if sample.speaker not in conversation.channel_speakers:
                raise MediaError(
                    f"conversation {conversation.id!r}: speaker {sample.speaker!r} has no channel in "
                    f"channel_speakers {list(conversation.channel_speakers)}"
                )
            channel = conversation.channel_speakers.index(sample.speaker)
            samples, padding = source.window(sample.time, num_samples, channel=channel)
            return AudioWindow(samples, padding, rate)

        samples, padding = source.window(sample.time, num_samples)
        self._zero_listener_speech(conversation, sample, samples)
        return AudioWindow(samples, padding, rate)

    def _zero_listener_speech(self, conversation: Conversation, sample: Sample, samples: np.ndarray) -> None:
        key = (conversation.id, sample.listener)
        intervals = self._masks.get(key)
        if intervals is None:
            intervals = self._masks[key] = _listener_intervals(conversation, sample.listener)
        rate = self.window.sample_rate
        window_end = round(sample.time * rate)
        window_start = window_end - samples.size
        start_seconds = window_start / rate
        first = int(np.searchsorted(intervals.ends, start_seconds, side="right"))
        last = int(np.searchsorted(intervals.starts, window_end / rate, side="left"))
        for start, end in zip(intervals.starts[first:last], intervals.ends[first:last]):
            low = max(round(start * rate) - window_start, 0)
            high = min(round(end * rate) - window_start, samples.size)
            samples[low:high] = 0.0

    # Video -------------------------------------------------------------------------------------

    def extract_video(self, sample: Sample) -> VideoWindow:
        """Return the l frames on screen at ``t − n + k·n/l`` (k = 0 … l−1), resized to squares."""
        conversation = self.conversation(sample.conversation_id)
        if conversation.video_path is None:
            raise MediaError(
                f"conversation {conversation.id!r} has no video file; add one or drop the video modality"
            )
        path = Path(conversation.video_path)
        reader = self._video.get(conversation.id, lambda: VideoReader(path, size=self.window.image_size))
        times = video_sample_times(sample.time, self.window.audio_seconds, self.window.num_frames)
        frames, frame_times = reader.frames_at(times)
        return VideoWindow(frames, frame_times)


def _validate_window(window: WindowSection) -> None:
    problems = []
    if window.audio_seconds <= 0:
        problems.append(f"audio_seconds must be > 0, got {window.audio_seconds}")
    if window.text_words < 0:
        problems.append(f"text_words must be >= 0, got {window.text_words}")
    if window.num_frames < 1:
        problems.append(f"num_frames must be >= 1, got {window.num_frames}")
    if window.sample_rate <= 0:
        problems.append(f"sample_rate must be > 0, got {window.sample_rate}")
    if window.image_size <= 0:
        problems.append(f"image_size must be > 0, got {window.image_size}")
    if problems:
        raise RecipeError("data.window: " + "; ".join(problems))
