"""Checks of a media file's streams against the modalities of a trained model, before any window is cut.

A model that uses video needs a video stream, and a model that uses audio needs an audio stream. A
mismatch is reported here as a ``MediaError`` naming the file and the model's encoders, instead of
surfacing later as a shape error inside an encoder.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import attrs
import av

from camabc_core.errors import MediaError

logger = logging.getLogger(__name__)


@attrs.frozen
class MediaInfo:
    """The streams of one media file and its duration in seconds (from the container's header)."""

    path: Path
    has_audio: bool
    has_video: bool
    #: Container duration; None when the container declares none (then the decoded audio decides).
    declared_duration: float | None


def probe_media(path: str | Path) -> MediaInfo:
    """Open ``path`` with PyAV and list its audio and video streams without decoding them."""
    path = Path(path)
    if not path.is_file():
        raise MediaError(f"{path}: media file not found; pass an audio or video file")
    try:
        container = av.open(str(path), mode="r")
    except av.FFmpegError as error:
        raise MediaError(f"{path}: cannot open the media file ({error}); it may be corrupt") from error
    with container:
        duration = container.duration / av.time_base if container.duration else None
        return MediaInfo(
            path=path,
            has_audio=bool(container.streams.audio),
            has_video=bool(container.streams.video),
            declared_duration=duration,
        )


def check_media_modalities(info: MediaInfo, modalities: Sequence[str], checkpoint: str | Path) -> None:
    """Raise ``MediaError`` when the model in ``checkpoint`` needs a stream that the media lacks."""
    if "video" in modalities and not info.has_video:
        raise MediaError(
            f"{info.path}: the model in {checkpoint} uses video (modalities: {', '.join(modalities)}) "
            f"but the file has no video stream; pass the conversation's video file (with its audio "
            f"track), or use a model trained without video"
        )
    if "audio" in modalities and not info.has_audio:
        raise MediaError(
            f"{info.path}: the model in {checkpoint} uses audio (modalities: {', '.join(modalities)}) "
            f"but the file has no audio stream; pass a file with the speaker's audio"
        )
    if not info.has_audio and not info.has_video:
        raise MediaError(f"{info.path}: the file has neither an audio nor a video stream")
