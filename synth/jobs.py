"""Jobs of a synth run: one reference portrait per speaker, one clip per window or conversation side.

A job's fingerprint hashes everything its output depends on (inputs, times, sizes, component names
and options, and for a clip its reference's fingerprint). A rerun skips a job only when the manifest
records it as finished with the same fingerprint and its output file exists, so changing an option
redoes exactly the outputs it affects.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import attrs

from synth.profiles import SpeakerProfile

ClipKind = Literal["window", "side", "conversation"]

_UNSAFE_PATH_CHARACTERS = re.compile(r"[^A-Za-z0-9._-]+")


def path_part(text: str) -> str:
    """Turn an id into a file-name part: letters, digits, dot, dash and underscore only."""
    cleaned = _UNSAFE_PATH_CHARACTERS.sub("_", text).strip("._")
    return cleaned or "_"


def fingerprint(payload: Mapping[str, Any]) -> str:
    """Hash a JSON-serialisable mapping (key order does not matter) to 16 hex digits."""
    text = json.dumps(payload, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


@attrs.frozen
class ComponentSpec:
    """A plugin component by name with the keyword options its factory receives."""

    name: str
    options: Mapping[str, Any] = attrs.field(factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "options": dict(self.options)}


@attrs.frozen
class ReferenceJob:
    """Render one speaker's reference portrait to ``output`` (relative to the output folder).

    ``plan_error`` is set when the job cannot run (no metadata for the speaker). The job is then
    recorded as failed without running, and so are the clips that need it.
    """

    speaker_id: str
    profile: SpeakerProfile | None
    output: str
    width: int
    height: int
    generator: ComponentSpec
    plan_error: str | None = None

    @property
    def id(self) -> str:
        return f"reference/{self.speaker_id}"

    @property
    def fingerprint(self) -> str:
        return fingerprint({
            "profile": self.profile.to_json() if self.profile else None,
            "size": [self.width, self.height],
            "generator": self.generator.to_json(),
            "output": self.output,
        })

    def to_record(self) -> dict[str, Any]:
        record: dict[str, Any] = {"id": self.id, "kind": "reference", "speaker": self.speaker_id}
        if self.profile is not None:
            record.update(prompt=self.profile.prompt, profile=self.profile.to_json())
        record.update(output=self.output, width=self.width, height=self.height,
                      generator=self.generator.to_json(), fingerprint=self.fingerprint)
        return record


@attrs.frozen
class Track:
    """One speaker animated in a clip: whose portrait, and which audio drives it.

    The driving audio is ``channel`` of the clip's audio file (None: the mean of all channels). For a
    mono recording of several speakers, ``speech_intervals`` lists the speaker's turns that overlap
    the clip. Audio outside them is zeroed so the portrait does not mouth its partner's words, and
    None keeps the whole signal.
    """

    speaker: str
    speaker_id: str
    reference_id: str
    channel: int | None
    speech_intervals: tuple[tuple[float, float], ...] | None = None

    def to_json(self) -> dict[str, Any]:
        record: dict[str, Any] = {"speaker": self.speaker, "speaker_id": self.speaker_id,
                                  "reference": self.reference_id, "channel": self.channel}
        if self.speech_intervals is not None:
            record["speech_intervals"] = [[round(a, 6), round(b, 6)] for a, b in self.speech_intervals]
        return record


@attrs.frozen
class ClipJob:
    """Animate ``[start, end)`` seconds of a conversation into the mp4 ``output``.

    ``kind`` is ``"window"`` (one speaker before a prediction point), ``"side"`` (one speaker over
    the whole conversation) or ``"conversation"`` (every speaker, each frame showing the active
    speaker, with the recording's own audio). Window and side clips have one track.
    """

    conversation_id: str
    kind: ClipKind
    audio_path: str
    start: float
    end: float
    fps: int
    num_frames: int
    output: str
    animator: ComponentSpec
    tracks: tuple[Track, ...]
    plan_error: str | None = None

    @property
    def id(self) -> str:
        if self.kind == "conversation":
            return f"conversation/{self.conversation_id}"
        speaker = self.tracks[0].speaker
        if self.kind == "side":
            return f"side/{self.conversation_id}/{speaker}"
        return f"clip/{self.conversation_id}/{speaker}/{round(self.end * 1000):09d}"

    @property
    def duration(self) -> float:
        return self.num_frames / self.fps

    def to_record(self, reference_fingerprints: Mapping[str, str]) -> dict[str, Any]:
        record: dict[str, Any] = {
            "id": self.id, "kind": self.kind, "conversation": self.conversation_id,
            "audio": self.audio_path, "start": round(self.start, 6), "end": round(self.end, 6),
            "fps": self.fps, "num_frames": self.num_frames, "output": self.output,
            "animator": self.animator.to_json(), "tracks": [track.to_json() for track in self.tracks],
        }
        references = [reference_fingerprints.get(track.reference_id, "") for track in self.tracks]
        record["fingerprint"] = fingerprint({**record, "reference_fingerprints": references})
        return record


@attrs.frozen
class Plan:
    """Every job of a run, in execution order: references first, then clips grouped by conversation."""

    references: Sequence[ReferenceJob]
    clips: Sequence[ClipJob]

    def reference_by_id(self) -> dict[str, ReferenceJob]:
        return {job.id: job for job in self.references}

    def blocking_error(self, job: ReferenceJob | ClipJob) -> str | None:
        """Return why ``job`` cannot run: its own plan error, or that of a reference it needs."""
        if job.plan_error is not None:
            return job.plan_error
        if isinstance(job, ClipJob):
            references = self.reference_by_id()
            for track in job.tracks:
                reference = references.get(track.reference_id)
                if reference is not None and reference.plan_error is not None:
                    return f"no reference portrait for speaker {track.speaker_id}: {reference.plan_error}"
        return None

    def records(self) -> list[dict[str, Any]]:
        """Return the manifest record of every job (without status)."""
        fingerprints = {job.id: job.fingerprint for job in self.references}
        return [*(job.to_record() for job in self.references),
                *(clip.to_record(fingerprints) for clip in self.clips)]
