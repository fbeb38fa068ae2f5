"""Timeline files: one CSV row per prediction point, and a JSON document with points and moments.

CSV columns: ``time`` (s), ``source`` (``word_end`` or ``grid``), ``last_word`` (the speaker's last
word ending at or before the point), ``padded`` (0/1), ``listener_speaking`` (0/1), ``p_<class>`` for
every class in label order, and ``backchannel_score`` (1 − P(NoBC)). Both files are written atomically.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import attrs
import numpy as np

from camabc_core.inference.timeline import Timeline
from camabc_core.training.atomic import atomic_write_text

# Probabilities are written with this many decimals; enough to compare runs at 1e-6.
DECIMALS = 6


def _listener_speaking(timeline: Timeline) -> np.ndarray:
    """(N,) listener-speaking flags; all False for a timeline built without them."""
    if timeline.listener_speaking is None:
        return np.zeros(timeline.times.shape, dtype=bool)
    return timeline.listener_speaking


def timeline_csv(timeline: Timeline) -> str:
    """Render the prediction points of ``timeline`` as CSV text (header + one row per point)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    speaking = _listener_speaking(timeline)
    writer.writerow(["time", "source", "last_word", "padded", "listener_speaking",
                     *(f"p_{name}" for name in timeline.classes), "backchannel_score"])
    scores = timeline.backchannel_scores
    for index, time in enumerate(timeline.times):
        writer.writerow([
            f"{time:.6f}",
            timeline.sources[index],
            timeline.last_words[index],
            int(timeline.padded[index]),
            int(speaking[index]),
            *(f"{p:.{DECIMALS}f}" for p in timeline.probabilities[index]),
            f"{scores[index]:.{DECIMALS}f}",
        ])
    return buffer.getvalue()


def timeline_document(timeline: Timeline, metadata: dict[str, Any]) -> dict[str, Any]:
    """Build the JSON document: ``metadata`` (inputs and settings), the points and the moments."""
    scores = timeline.backchannel_scores
    speaking = _listener_speaking(timeline)
    points = [
        {
            "time": round(float(time), 6),
            "source": timeline.sources[index],
            "last_word": timeline.last_words[index],
            "padded": bool(timeline.padded[index]),
            "listener_speaking": bool(speaking[index]),
            "probabilities": {
                name: round(float(p), DECIMALS)
                for name, p in zip(timeline.classes, timeline.probabilities[index])
            },
            "backchannel_score": round(float(scores[index]), DECIMALS),
        }
        for index, time in enumerate(timeline.times)
    ]
    return {
        **metadata,
        "classes": list(timeline.classes),
        "speaker": timeline.speaker,
        "listener": timeline.listener,
        "duration": round(timeline.duration, 6),
        "window_seconds": timeline.window_seconds,
        "points": points,
        "moments": [attrs.asdict(moment) for moment in timeline.moments],
    }


def write_timeline(timeline: Timeline, output_dir: Path, metadata: dict[str, Any]) -> dict[str, Path]:
    """Write ``timeline.csv`` and ``timeline.json`` under ``output_dir``; return their paths by kind."""
    output_dir.mkdir(parents=True, exist_ok=True)
    paths = {"csv": output_dir / "timeline.csv", "json": output_dir / "timeline.json"}
    atomic_write_text(paths["csv"], timeline_csv(timeline))
    document = timeline_document(timeline, metadata)
    atomic_write_text(paths["json"], json.dumps(document, indent=2, ensure_ascii=False) + "\n")
    return paths
