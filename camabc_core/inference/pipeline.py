"""``camabc predict`` end to end: trained run + media + transcript -> timeline files and plot."""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path

import attrs
import torch

from camabc_core import __version__
from camabc_core.errors import CamabcError, MediaError
from camabc_core.inference.export import write_timeline
from camabc_core.inference.moments import (
    DEFAULT_MIN_GAP_SECONDS,
    DEFAULT_THRESHOLD,
    SCORE_DECIMALS,
    detect_moments,
)
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
    #: Whether moments may fall on points where the listener is talking. By default they may not,
    #: because the listener already has the turn, so a backchannel there is moot.
    moments_in_listener_speech: bool = False
    #: Skip malformed transcript lines (counted in one warning) instead of stopping at the first.
    skip_malformed: bool = False


@attrs.frozen
class PredictionResult:
    timeline: Timeline
    #: "csv", "json" and (unless disabled) "png" -> written file.
    paths: dict[str, Path]


def resolve_device(name: str | None) -> torch.device:
    """Return the torch device ``name`` (default: cuda when available, else cpu) after checking it exists.

    Raises ``CamabcError`` for a name torch does not know and for a device this machine lacks.
    """
    if name is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise CamabcError(f"--device {name!r} is not a device name; use cpu, cuda or cuda:N") from None
    if device.type == "cpu":
        return device
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise CamabcError(f"--device {name}: this torch build has no CUDA support or sees no GPU; "
                              "use --device cpu, or install a CUDA build of torch")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise CamabcError(f"--device {name}: only {torch.cuda.device_count()} GPU(s) are visible "
                              f"(cuda:0 to cuda:{torch.cuda.device_count() - 1})")
        return device
    if device.type == "mps" and torch.backends.mps.is_available():
        return device
    raise CamabcError(f"--device {name}: {device.type} is not available on this machine; use cpu or cuda")


def run_prediction(media: str | Path, transcript: str | Path, checkpoint: str | Path,
                   output_dir: str | Path, settings: PredictionSettings) -> PredictionResult:
    """Load the trained model, predict over ``media``, pick moments, and write CSV, JSON and PNG."""
    from camabc_core.training import load_trained_model

    media, transcript, checkpoint, output_dir = map(Path, (media, transcript, checkpoint, output_dir))
    # The cheap checks of every input come before the model is loaded (several seconds).
    device = resolve_device(settings.device)
    if not media.is_file():
        raise MediaError(f"{media}: media file not found")
    if not checkpoint.is_dir():
        raise CamabcError(f"{checkpoint}: run directory not found; pass the --output-dir of `camabc train`")
    loaded = load_transcript(transcript, format=settings.transcript_format, media=media,
                             conversation=settings.conversation, skip_malformed=settings.skip_malformed)
    words = loaded.words
    speaker, listener = resolve_roles(words, speaker=settings.speaker, listener=settings.listener,
                                      transcript=str(transcript))
    logger.info("predicting for listener %r reacting to speaker %r", listener, speaker)

    model, recipe, scheme = load_trained_model(checkpoint)
    model.to(device)

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
            "score_decimals": SCORE_DECIMALS,
            "plateau_point": "first",
            "moments_in_listener_speech": settings.moments_in_listener_speech,
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
                                 threshold=settings.threshold, min_gap_seconds=settings.min_gap_seconds,
                                 excluded=None if settings.moments_in_listener_speech
                                 else timeline.listener_speaking)
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
