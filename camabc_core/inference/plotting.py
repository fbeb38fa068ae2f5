"""PNG plot of a timeline: the waveform with the words marked, the class probabilities below it."""

from __future__ import annotations

import logging
import re
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from camabc_core.inference.timeline import Timeline
from camabc_core.labels import NOBC
from camabc_core.records import Word
from camabc_core.training.atomic import atomic_path

# Figure width grows with the media so that words stay readable, within these bounds (inches).
INCHES_PER_SECOND = 1.0
MIN_WIDTH_INCHES = 10.0
MAX_WIDTH_INCHES = 80.0
# Word labels are drawn only while they fit; above this many words per inch only spans are drawn.
MAX_LABELLED_WORDS_PER_INCH = 3.0
# Consecutive labels of one person cycle through this many heights so that short words do not overlap.
LABEL_ROWS = 3
# Min/max envelope columns per inch of figure width.
ENVELOPE_COLUMNS_PER_INCH = 100

logger = logging.getLogger(__name__)

# Fonts with Hangul, tried in this order before matplotlib's default (DejaVu Sans has no Hangul).
KOREAN_FONTS: tuple[str, ...] = (
    "Noto Sans CJK KR", "Noto Sans KR", "Source Han Sans KR", "NanumGothic", "Malgun Gothic",
    "Apple SD Gothic Neo", "AppleGothic", "UnDotum",
)
HANGUL = re.compile("[\u1100-\u11ff\u3130-\u318f\uac00-\ud7af]")

SPEAKER_COLOUR = "tab:blue"
LISTENER_COLOUR = "tab:orange"


def waveform_envelope(samples: np.ndarray, columns: int) -> tuple[np.ndarray, np.ndarray]:
    """Min and max of ``samples`` (N,) over ``columns`` equal bins; drawing these is exact at plot scale."""
    columns = max(1, min(columns, samples.size))
    bins = np.array_split(samples, columns)
    return np.array([b.min() for b in bins]), np.array([b.max() for b in bins])


def font_family(words: Sequence[Word]) -> list[str]:
    """Installed Korean fonts (when a word has Hangul) followed by matplotlib's default family."""
    from matplotlib import font_manager, rcParams

    family = list(rcParams["font.family"])
    if not any(HANGUL.search(word.text) for word in words):
        return family
    installed = {font.name for font in font_manager.fontManager.ttflist}
    korean = [name for name in KOREAN_FONTS if name in installed]
    if not korean:
        logger.info("no font with Hangul is installed (for example Noto Sans CJK KR, package "
                    "fonts-noto-cjk); Korean word labels in the plot show as empty boxes")
    return [*korean, *family]


def _draw_words(axis, words: Sequence[Word], speaker: str, width_inches: float, duration: float) -> None:
    family = font_family(words)
    visible_words = [w for w in words if w.start < duration]
    label_words = len(visible_words) / width_inches <= MAX_LABELLED_WORDS_PER_INCH
    rows = {True: 0, False: 0}  # next label row of the speaker and of the others
    for word in visible_words:
        is_speaker = word.speaker == speaker
        colour = SPEAKER_COLOUR if is_speaker else LISTENER_COLOUR
        axis.axvspan(word.start, min(word.end, duration), color=colour, alpha=0.12, linewidth=0)
        if not label_words:
            continue
        # Speaker words in the upper rows of the panel, the other people's words in the lower rows.
        row = rows[is_speaker] % LABEL_ROWS
        rows[is_speaker] += 1
        height = 0.93 - 0.08 * row if is_speaker else 0.03 + 0.08 * row
        axis.text(word.start, height, word.text, transform=axis.get_xaxis_transform(), fontsize=7,
                  fontfamily=family, color=colour, va="center", clip_on=True)


def plot_timeline(timeline: Timeline, samples: np.ndarray | None, sample_rate: int,
                  words: Sequence[Word], path: Path, *, threshold: float, title: str = "") -> Path:
    """Draw the timeline to a PNG at ``path`` (written atomically) and return ``path``.

    Top: the waveform (``samples`` mono (N,), or an empty panel when the media has no audio) with the
    speaker's words in blue and the other speakers' in orange. Bottom: P(class) for every backchannel
    class, the backchannel score 1 − P(NoBC), the threshold, and the predicted moments.
    """
    import matplotlib

    matplotlib.use("Agg")  # files only; no display is needed or wanted.
    import matplotlib.pyplot as plt

    duration = timeline.duration
    width = float(np.clip(duration * INCHES_PER_SECOND, MIN_WIDTH_INCHES, MAX_WIDTH_INCHES))
    figure, (wave_axis, probability_axis) = plt.subplots(
        2, 1, sharex=True, figsize=(width, 6), gridspec_kw={"height_ratios": [1, 1.4]}
    )

    if samples is not None and samples.size:
        low, high = waveform_envelope(samples, int(width * ENVELOPE_COLUMNS_PER_INCH))
        columns = np.linspace(0, samples.size / sample_rate, low.size)
        wave_axis.fill_between(columns, low, high, color="0.35", linewidth=0)
        peak = float(max(abs(low.min()), abs(high.max()), 1e-6))
        wave_axis.set_ylim(-2.2 * peak, 2.2 * peak)  # room for the word labels above and below
    else:
        wave_axis.text(0.5, 0.5, "no audio", transform=wave_axis.transAxes, ha="center", color="0.5")
    _draw_words(wave_axis, words, timeline.speaker, width, duration)
    wave_axis.set_yticks([])
    wave_axis.set_ylabel("waveform")
    wave_axis.set_title(title or f"speaker {timeline.speaker}, listener {timeline.listener}")

    backchannel_classes = [name for name in timeline.classes if name != NOBC]
    for column, name in enumerate(timeline.classes):
        # With one backchannel class (binary scheme) its curve is the score curve drawn below.
        if name != NOBC and len(backchannel_classes) > 1:
            probability_axis.plot(timeline.times, timeline.probabilities[:, column], linewidth=1,
                                  label=f"P({name})")
    probability_axis.plot(timeline.times, timeline.backchannel_scores, color="black", linewidth=1.6,
                          label=f"1 − P({NOBC})")
    probability_axis.axhline(threshold, color="0.5", linestyle=":", linewidth=1, label="threshold")
    for moment in timeline.moments:
        for axis in (wave_axis, probability_axis):
            axis.axvline(moment.time, color="crimson", linewidth=1, alpha=0.8)
        # Vertical, left of the line, so labels near the end of the media stay inside the figure.
        probability_axis.annotate(moment.class_name, (moment.time, 1.0), xytext=(-2, -2),
                                  textcoords="offset points", fontsize=8, color="crimson",
                                  rotation=90, ha="right", va="top")
    if timeline.padded.any():
        probability_axis.axvspan(0, min(timeline.window_seconds, duration), color="0.9", zorder=0,
                                 label="padded window")
    probability_axis.set_ylim(0, 1.05)
    probability_axis.set_xlim(0, duration)
    probability_axis.set_xlabel("time (s)")
    probability_axis.set_ylabel("probability")
    # Below the axes, where it hides neither curves nor moment labels.
    probability_axis.legend(loc="upper center", bbox_to_anchor=(0.5, -0.22), fontsize=8,
                            ncol=len(timeline.classes) + 2, frameon=False)

    figure.tight_layout()
    with atomic_path(path) as temporary, warnings.catch_warnings():
        # Missing glyphs were reported once by font_family; matplotlib would warn per character.
        warnings.filterwarnings("ignore", message="Glyph .* missing from font", category=UserWarning)
        figure.savefig(temporary, dpi=100, format="png", bbox_inches="tight")
    plt.close(figure)
    return path
