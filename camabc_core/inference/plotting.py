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

# Figure width grows with the media, within these bounds (inches). At ``DPI`` the PNG is at most
# 2000 pixels wide, so it opens at a readable scale without zooming.
INCHES_PER_SECOND = 1.0
MIN_WIDTH_INCHES = 10.0
MAX_WIDTH_INCHES = 20.0
HEIGHT_INCHES = 6.0
DPI = 100
# Word labels in points; smaller labels are unreadable at full view.
WORD_FONT_SIZE = 8
# Consecutive labels of one person use this many heights. A word whose label would overlap the
# previous label of every row is left unlabelled, but its span is still drawn. Crowded stretches
# are therefore thinned out instead of printed on top of each other.
LABEL_ROWS = 3
# Approximate width of one character of a label, as a share of the font size (for the overlap check).
CHARACTER_WIDTH_EM = 0.62
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
        logger.warning("no font with Hangul is installed, so Korean word labels in timeline.png show as "
                       "empty boxes; install a CJK font (Debian/Ubuntu: apt install fonts-nanum or "
                       "fonts-noto-cjk) and delete matplotlib's font cache (~/.cache/matplotlib)")
    return [*korean, *family]


def _draw_words(axis, words: Sequence[Word], speaker: str, width_inches: float, duration: float) -> int:
    """Draw the word spans and as many labels as fit without overlap; return the number of labels."""
    family = font_family(words)
    seconds_per_inch = duration / width_inches
    # Seconds after each row's last label start that its text covers; the speaker's rows and the
    # other people's rows are separate.
    row_free_at = {True: [-np.inf] * LABEL_ROWS, False: [-np.inf] * LABEL_ROWS}
    labels = 0
    for word in (w for w in words if w.start < duration):
        is_speaker = word.speaker == speaker
        colour = SPEAKER_COLOUR if is_speaker else LISTENER_COLOUR
        axis.axvspan(word.start, min(word.end, duration), color=colour, alpha=0.12, linewidth=0)
        free = row_free_at[is_speaker]
        row = next((r for r in range(LABEL_ROWS) if free[r] <= word.start), None)
        if row is None or not word.text:
            continue
        text_inches = len(word.text) * WORD_FONT_SIZE * CHARACTER_WIDTH_EM / 72 + 0.05
        free[row] = word.start + text_inches * seconds_per_inch
        # Speaker words in the upper rows of the panel, the other people's words in the lower rows.
        height = 0.93 - 0.08 * row if is_speaker else 0.03 + 0.08 * row
        axis.text(word.start, height, word.text, transform=axis.get_xaxis_transform(),
                  fontsize=WORD_FONT_SIZE, fontfamily=family, color=colour, va="center", clip_on=True)
        labels += 1
    return labels


def _word_legend(axis, speaker: str, listener: str) -> None:
    """Name the colours of the word spans in a legend above the waveform."""
    from matplotlib.patches import Patch

    others = f"{listener} (listener) and others" if listener else "others"
    handles = [Patch(color=SPEAKER_COLOUR, alpha=0.35, label=f"words of {speaker} (speaker)"),
               Patch(color=LISTENER_COLOUR, alpha=0.35, label=f"words of {others}")]
    axis.legend(handles=handles, loc="lower right", bbox_to_anchor=(1.0, 1.0), ncol=2, fontsize=8,
                frameon=False, borderaxespad=0.2)


def plot_timeline(timeline: Timeline, samples: np.ndarray | None, sample_rate: int,
                  words: Sequence[Word], path: Path, *, threshold: float, title: str = "") -> Path:
    """Draw the timeline to a PNG at ``path`` (written atomically) and return ``path``.

    Top: the waveform (``samples`` mono (N,), or an empty panel when the media has no audio) with the
    speaker's words in blue and the other speakers' in orange (named in a legend). Bottom: P(class) for
    every backchannel class, the backchannel score 1 − P(NoBC), the threshold, and the predicted moments.
    """
    import matplotlib

    matplotlib.use("Agg")  # files only; no display is needed or wanted.
    import matplotlib.pyplot as plt

    duration = timeline.duration
    width = float(np.clip(duration * INCHES_PER_SECOND, MIN_WIDTH_INCHES, MAX_WIDTH_INCHES))
    figure, (wave_axis, probability_axis) = plt.subplots(
        2, 1, sharex=True, figsize=(width, HEIGHT_INCHES), gridspec_kw={"height_ratios": [1, 1.4]}
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
    _word_legend(wave_axis, timeline.speaker, timeline.listener)
    wave_axis.set_yticks([])
    wave_axis.set_ylabel("waveform")
    wave_axis.set_title(title or f"speaker {timeline.speaker}, listener {timeline.listener}", loc="left")

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
        figure.savefig(temporary, dpi=DPI, format="png", bbox_inches="tight")
    plt.close(figure)
    return path
