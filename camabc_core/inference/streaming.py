"""Online prediction: class probabilities for the current moment of a live conversation.

A ``StreamingPredictor`` receives the media and the transcript as they arrive. It keeps only what the
last window needs: a ring buffer of audio samples, the speaker's last words, the listener's speech
intervals that still overlap the buffer, and the video frames of the buffered span. ``predict(now)``
cuts the same windows as ``camabc_core.windows.WindowExtractor`` does offline (same sample indices,
same word rule, same frame times), so on the same inputs it returns the offline probabilities.

All times are seconds on one clock: audio sample ``i`` (counted over every ``push_audio`` call) plays
at ``i / sample_rate``, and words and frames carry times on the same clock.
"""

from __future__ import annotations

import bisect
import logging
import unicodedata
from collections import deque
from collections.abc import Sequence

import av
import numpy as np
import torch
from av.video.reformatter import VideoReformatter

from camabc_core.inference.timeline import class_probabilities
from camabc_core.interfaces import AudioWindow, VideoWindow, Window
from camabc_core.recipe import Recipe
from camabc_core.records import Word
from camabc_core.windows import video_sample_times

logger = logging.getLogger(__name__)

#: How far (seconds) ``now`` may lag behind the newest input by default; older input is dropped.
DEFAULT_MAX_DELAY_SECONDS = 1.0


class AudioRingBuffer:
    """The most recent ``capacity`` samples of a mono float32 stream, addressed by absolute index."""

    def __init__(self, capacity: int):
        if capacity <= 0:
            raise ValueError(f"capacity must be > 0 samples, got {capacity}")
        self.capacity = capacity
        self._buffer = np.zeros(capacity, dtype=np.float32)
        #: Samples pushed since the start. The buffer contains samples [total - capacity, total).
        self.total = 0

    @property
    def oldest(self) -> int:
        """Absolute index of the oldest sample still held."""
        return max(self.total - self.capacity, 0)

    def push(self, samples: np.ndarray) -> None:
        """Append samples (N,); when N exceeds the capacity only the last ``capacity`` are stored."""
        count = samples.size
        kept = samples[-self.capacity:] if count > self.capacity else samples
        position = (self.total + count - kept.size) % self.capacity
        first = min(kept.size, self.capacity - position)
        self._buffer[position:position + first] = kept[:first]
        self._buffer[:kept.size - first] = kept[first:]
        self.total += count

    def read(self, start: int, stop: int) -> np.ndarray:
        """Return a copy of absolute samples ``[start, stop)`` (all must be held): shape (stop − start,)."""
        if start < self.oldest or stop > self.total or stop < start:
            raise ValueError(f"samples [{start}, {stop}) are not held; the buffer has "
                             f"[{self.oldest}, {self.total})")
        indices = np.arange(start, stop) % self.capacity
        return self._buffer[indices]


class StreamingPredictor:
    """Class probabilities of a trained model for the current moment of a live conversation.

    ``model`` is a trained ``BackchannelModel``, which ``load_trained_model`` returns with its recipe
    and label scheme. ``speaker`` is the person whose turn the listener reacts to, and ``listener``
    the person who would backchannel. Push the inputs as they arrive:

    - ``push_audio(samples)``: mono float32 at ``recipe.data.window.sample_rate`` Hz, the mix of both
      people (the listener's speech is zeroed from their words, as offline) or, with
      ``audio_is_speaker_channel=True``, the speaker's own channel (nothing is zeroed).
    - ``push_word(word)``: a timed word of either person (other speakers are ignored).
    - ``push_listener_speech(start, end)``: listener speech known without words.
    - ``push_frame(frame, timestamp)``: a video frame shown from ``timestamp`` seconds on.

    ``predict(now)`` may look back at most ``max_delay_seconds`` behind the newest input, so memory
    stays bounded: about ``audio_seconds + max_delay_seconds`` of audio and frames.

    Inputs must arrive before the ``now`` that needs them: a word or frame pushed after a prediction
    that should have used it changes only later predictions. The offline timeline uses each
    listener word from its start, so a stream equals it only when listener words are pushed by then.
    """

    def __init__(self, model: torch.nn.Module, recipe: Recipe, classes: Sequence[str], *,
                 speaker: str, listener: str, audio_is_speaker_channel: bool = False,
                 max_delay_seconds: float = DEFAULT_MAX_DELAY_SECONDS):
        if speaker == listener:
            raise ValueError(f"speaker and listener must differ, both are {speaker!r}")
        if max_delay_seconds < 0:
            raise ValueError(f"max_delay_seconds must be >= 0, got {max_delay_seconds}")
        self.model = model.eval()
        self.window = recipe.data.window
        self.classes = tuple(classes)
        self.modalities = tuple(model.modalities)
        self.speaker = speaker
        self.listener = listener
        self.audio_is_speaker_channel = audio_is_speaker_channel
        self.max_delay_seconds = max_delay_seconds

        self.sample_rate = self.window.sample_rate
        self._window_samples = round(self.window.audio_seconds * self.sample_rate)
        delay_samples = round(max_delay_seconds * self.sample_rate)
        self._audio = AudioRingBuffer(self._window_samples + delay_samples + 1)
        # (end, start, arrival, text) of the speaker's words, sorted; same order as the offline index.
        self._speaker_words: list[tuple[float, float, int, str]] = []
        # (start, end) of the listener's words and other listener speech, in arrival order.
        self._listener_speech: deque[tuple[float, float]] = deque()
        # (timestamp, image) sorted by timestamp; images already at the encoder's frame size.
        self._frame_times: list[float] = []
        self._frames: list[np.ndarray] = []
        self._reformatter = VideoReformatter()
        self._arrivals = 0
        self._latest_now = 0.0

    # Inputs ------------------------------------------------------------------------------------

    @property
    def audio_time(self) -> float:
        """Seconds of audio pushed so far: the end of the audio stream on the shared clock."""
        return self._audio.total / self.sample_rate

    def push_audio(self, samples: np.ndarray) -> None:
        """Append mono samples (N,) at ``sample_rate`` Hz to the audio stream."""
        samples = np.asarray(samples, dtype=np.float32)
        if samples.ndim != 1:
            raise ValueError(f"push_audio expects mono samples of shape (N,), got {samples.shape}; "
                             f"mix or select one channel first")
        self._audio.push(samples)
        self._forget_old_input()

    def push_word(self, word: Word) -> None:
        """Add one timed word; words of people other than the speaker and listener are ignored.

        A listener word also marks its span as listener speech to zero out of the audio. Push it as
        soon as its span is known, because a window cut before that keeps the listener's voice.
        """
        if word.end < word.start:
            raise ValueError(f"word {word.text!r} ends at {word.end} s before it starts at {word.start} s")
        if word.speaker == self.speaker:
            text = unicodedata.normalize("NFKC", word.text or "").strip()
            if text:  # the offline windows skip empty words too
                self._arrivals += 1
                bisect.insort(self._speaker_words, (word.end, word.start, self._arrivals, text))
        elif word.speaker == self.listener:
            self.push_listener_speech(word.start, word.end)

    def push_listener_speech(self, start: float, end: float) -> None:
        """Mark ``[start, end)`` seconds as listener speech, zeroed in later audio windows.

        For speech without a transcript: a voice-activity segment, or the span of a backchannel
        the dialogue system itself is playing.
        """
        if end < start:
            raise ValueError(f"listener speech ends at {end} s before it starts at {start} s")
        if end > start:
            self._listener_speech.append((float(start), float(end)))

    def push_frame(self, frame: np.ndarray | av.VideoFrame, timestamp: float) -> None:
        """Add a video frame shown from ``timestamp`` seconds on (uint8 RGB (H, W, 3) or a PyAV frame).

        Frames are resized to the recipe's square image size on arrival, with the same FFmpeg scaler
        the offline video reader uses. A PyAV frame gives bit-identical images to offline decoding.
        """
        if "video" not in self.modalities:
            return
        image = self._frame_image(frame)
        position = bisect.bisect_right(self._frame_times, timestamp)
        self._frame_times.insert(position, float(timestamp))
        self._frames.insert(position, image)
        self._forget_old_input()

    def _frame_image(self, frame: np.ndarray | av.VideoFrame) -> np.ndarray:
        size = self.window.image_size
        if not isinstance(frame, av.VideoFrame):
            frame = np.asarray(frame)
            if frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[2] != 3:
                raise ValueError(f"push_frame expects uint8 RGB (H, W, 3), got {frame.dtype} {frame.shape}")
            if frame.shape[:2] == (size, size):
                return np.ascontiguousarray(frame)
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")
        # NOTE: this mirrors camabc_core.media.VideoReader's conversion (area averaging straight to
        # RGB). If that conversion changes, the streaming-equals-offline test fails until this follows.
        image = self._reformatter.reformat(frame, width=size, height=size, format="rgb24",
                                           interpolation="AREA")
        return image.to_ndarray()

    # Memory bound ------------------------------------------------------------------------------

    def _earliest_now(self) -> float:
        """Return the earliest ``now`` that ``predict`` accepts, ``max_delay_seconds`` behind the input."""
        return max(self.audio_time, self._latest_now) - self.max_delay_seconds

    def _forget_old_input(self) -> None:
        earliest_start = self._earliest_now() - self.window.audio_seconds
        if earliest_start <= 0:
            return
        # Listener intervals that ended before the earliest window can never be zeroed again.
        self._listener_speech = deque(
            interval for interval in self._listener_speech if interval[1] > earliest_start
        )
        # Keep every word that may end after the earliest now, plus the m words before it.
        earliest_now = self._earliest_now()
        finished = bisect.bisect_right(self._speaker_words, (earliest_now, float("inf"), 0, ""))
        drop = max(finished - self.window.text_words, 0)
        del self._speaker_words[:drop]
        # Keep the frame on screen at the earliest frame time, and every later one.
        on_screen = bisect.bisect_right(self._frame_times, earliest_start) - 1
        if on_screen > 0:
            del self._frame_times[:on_screen]
            del self._frames[:on_screen]

    # Prediction --------------------------------------------------------------------------------

    def window_at(self, now: float) -> Window:
        """Cut the windows ending at ``now`` (exclusive) from the buffered input."""
        return Window(
            audio=self._audio_window(now) if "audio" in self.modalities else None,
            text=self._text_window(now) if "text" in self.modalities else None,
            video=self._video_window(now) if "video" in self.modalities else None,
        )

    def predict(self, now: float | None = None) -> np.ndarray:
        """Return the class probabilities (C,) at ``now`` seconds, in the order of ``classes``.

        ``now`` defaults to the end of the audio pushed so far. It must not lie past that end (for a
        model that uses audio) or more than ``max_delay_seconds`` behind the newest input.
        """
        if now is None:
            if "audio" not in self.modalities:
                raise ValueError("predict() needs `now` when the model uses no audio")
            now = self.audio_time
        now = float(now)
        if now < self._earliest_now() - 1e-9:
            raise ValueError(
                f"now={now:.3f} s is more than max_delay_seconds={self.max_delay_seconds} behind the newest "
                f"input ({self._earliest_now() + self.max_delay_seconds:.3f} s); its input was dropped. "
                f"Raise max_delay_seconds to look further back"
            )
        window = self.window_at(now)
        # Only a window that could be cut moves the memory bound forward.
        self._latest_now = max(self._latest_now, now)
        self._forget_old_input()
        return class_probabilities(self.model, [window])[0]

    def _audio_window(self, now: float) -> AudioWindow:
        rate = self.sample_rate
        window_end = round(now * rate)
        window_start = window_end - self._window_samples
        if window_end > self._audio.total:
            raise ValueError(f"now={now:.3f} s lies past the audio pushed so far ({self.audio_time:.3f} s); "
                             f"push the audio up to now first")
        samples = np.zeros(self._window_samples, dtype=np.float32)
        padding = np.ones(self._window_samples, dtype=bool)
        held_start = max(window_start, 0)
        samples[held_start - window_start:] = self._audio.read(held_start, window_end)
        padding[held_start - window_start:] = False
        if not self.audio_is_speaker_channel:
            # The same sample indices as the offline extractor: [round(start × rate), round(end × rate)).
            for start, end in self._listener_speech:
                low = max(round(start * rate) - window_start, 0)
                high = min(round(end * rate) - window_start, samples.size)
                if high > low:
                    samples[low:high] = 0.0
        return AudioWindow(samples, padding, rate)

    def _text_window(self, now: float) -> str:
        count = self.window.text_words
        if count == 0:
            return ""
        stop = bisect.bisect_right(self._speaker_words, (now, float("inf"), 0, ""))
        return " ".join(entry[3] for entry in self._speaker_words[max(stop - count, 0):stop])

    def _video_window(self, now: float) -> VideoWindow:
        if not self._frames:
            raise ValueError("the model uses video but no frame was pushed yet; push_frame() first")
        times = video_sample_times(now, self.window.audio_seconds, self.window.num_frames)
        # The frame on screen at τ is the last one shown at or before τ; before the first, the first.
        positions = [max(bisect.bisect_right(self._frame_times, float(t)) - 1, 0) for t in times]
        frames = np.stack([self._frames[p] for p in positions])
        return VideoWindow(frames, np.asarray([self._frame_times[p] for p in positions], dtype=np.float64))
