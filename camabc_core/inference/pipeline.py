"""``camabc predict`` end to end: trained run + media + transcript -> timeline files and plot."""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path

import attrs
import torch

from camabc_core import __version__
from camabc_core.inference.export import write_timeline
from camabc_core.inference.moments import DEFAULT_MIN_GAP_SECONDS, DEFAULT_THRESHOLD, detect_moments
from camabc_core.inference.plotting import plot_timeline
from camabc_core.inference.roles import resolve_roles
from camabc_core.inference.timeline import Timeline, predict_timeline
from camabc_core.inference.transcripts import load_transcript
from camabc_core.media import AudioSource

logger = logging.getLogger(__name__)


@attrs.frozen
class PredictionSettings:
    """Options of one ``camabc predict`` run (the command-line flags)."""

    speaker: str | None = None
    listener: str | None = None
    #: Grid spacing in seconds; None predicts at the speaker's word ends only.
    step: float | None = 0.1
    threshold: float = DEFAULT_THRESHOLD
    min_gap_seconds: float = DEFAULT_MIN_GAP_SECONDS
    batch_size: int = 16
    transcript_format: str = "auto"
    #: Conversation to take from a manifest that lists several.
    conversation: str | None = None
    plot: bool = True
    device: str = "cpu"


@attrs.frozen
class PredictionResult:
    timeline: Timeline
    #: "csv", "json" and (unless disabled) "png" -> written file.
    paths: dict[str, Path]


def run_prediction(media: str | Path, transcript: str | Path, checkpoint: str | Path,
                   output_dir: str | Path, settings: PredictionSettings) -> PredictionResult:
    """Load the trained model, predict over ``media``, pick moments, and write CSV, JSON and PNG."""
    from camabc_core.training import load_trained_model

    media, transcript, checkpoint, output_dir = map(Path, (media, transcript, checkpoint, output_dir))
    model, recipe, scheme = load_trained_model(checkpoint)
    model.to(torch.device(settings.device))

    loaded = load_transcript(transcript, format=settings.transcript_format, media=media,
                             conversation=settings.conversation)
    words = loaded.words
    speaker, listener = resolve_roles(words, speaker=settings.speaker, listener=settings.listener,
                                      transcript=str(transcript))
    logger.info("predicting for listener %r reacting to speaker %r", listener, speaker)

    metadata = {
        "camabc_version": __version__,
        "media": str(media),
        "transcript": str(transcript),
        "checkpoint": str(checkpoint),
        "modalities": list(model.modalities),
        "label_scheme": scheme.name,
        "step": settings.step,
        "moment_rule": {
            "score": "1 - P(NoBC)",
            "threshold": settings.threshold,
            "min_gap_seconds": settings.min_gap_seconds,
        },
    }
    with tempfile.TemporaryDirectory(prefix="camabc-predict-") as audio_cache:
        # The audio is decoded once into this cache and memory-mapped by the windows and the plot.
        timeline = predict_timeline(
            model, recipe, scheme.classes, media, words, backchannels=loaded.backchannels,
            channel_speakers=loaded.channel_speakers, speaker=speaker, listener=listener,
            step=settings.step, batch_size=settings.batch_size,
            checkpoint=checkpoint, transcript=transcript, audio_cache_dir=audio_cache,
        )
        moments = detect_moments(timeline.times, timeline.probabilities, timeline.classes,
                                 threshold=settings.threshold, min_gap_seconds=settings.min_gap_seconds)
        timeline = attrs.evolve(timeline, moments=tuple(moments))
        paths = write_timeline(timeline, output_dir, metadata)

        if settings.plot:
            rate = recipe.data.window.sample_rate
            samples = None
            if timeline.has_audio:
                samples = AudioSource.from_file(media, rate, cache_dir=audio_cache).signal()
            paths["png"] = plot_timeline(timeline, samples, rate, words, output_dir / "timeline.png",
                                         threshold=settings.threshold, title=media.name)
    logger.info("%d prediction points, %d backchannel moments; wrote %s", timeline.times.size,
                len(timeline.moments), ", ".join(str(path) for path in paths.values()))
    return PredictionResult(timeline=timeline, paths=paths)
