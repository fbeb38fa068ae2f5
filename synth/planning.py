"""Turns conversations and speaker profiles into a plan of reference and clip jobs.

Window clips end at the prediction points of the data pipeline (``camabc_core.sampling``), so a
window clip contains exactly the video a training sample reads. ``samples`` gives every backchannel
sample and the NoBC points drawn with each of ``sampling_seeds`` (the recipe's seeds),
``backchannels`` only the backchannel onsets (the CAMA-BC paper's Switchboard videos), and
``context`` every word end (Context Alignment samples). Side clips cover one speaker over the whole
recording. Conversation clips show the active speaker in each frame, so the data pipeline can read
one as the conversation's single video file.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Literal

import attrs

from camabc_core.labels import NOBC, LabelScheme
from camabc_core.recipe import SamplingSection
from camabc_core.records import Conversation, Sample
from camabc_core.sampling import build_backchannel_samples, build_context_samples
from synth.jobs import ClipJob, ComponentSpec, Plan, ReferenceJob, Track, path_part
from synth.profiles import SpeakerProfile
from synth.timing import frames_in_duration, frames_per_window

logger = logging.getLogger(__name__)

ClipMode = Literal["windows", "sides", "conversation"]
PointSource = Literal["samples", "backchannels", "context"]
CLIP_MODES: tuple[str, ...] = ("windows", "sides", "conversation")
POINT_SOURCES: tuple[str, ...] = ("samples", "backchannels", "context")


@attrs.frozen
class SynthSettings:
    """Settings of one synth run, filled from the command line."""

    reference: ComponentSpec
    animator: ComponentSpec
    clips: ClipMode = "windows"
    points: PointSource = "samples"
    #: Window length n in seconds; window × fps must be a whole number of frames.
    window: float = 1.5
    fps: int = 30
    #: Size requested for reference portraits, and so of every clip, in pixels.
    width: int = 512
    height: int = 512
    #: Seeds the speakers' looks (race, outfit, portrait).
    seed: int = 0
    #: Seeds of the NoBC draw for ``points="samples"``: the union of the points of every seed is
    #: synthesised, so each training seed finds its windows. Use the recipe's ``run.seed``/``run.seeds``.
    sampling_seeds: tuple[int, ...] = (0,)
    #: NoBC sampling settings; keep them equal to the recipe's ``data.sampling``.
    sampling: SamplingSection = attrs.field(factory=SamplingSection)
    #: Keep only the first N clip jobs (a quick look at the output); None keeps all.
    limit: int | None = None


@attrs.frozen
class SpeakerSource:
    """One speaker of one conversation: the profile it uses and where its speech is.

    ``channel`` selects the speaker's channel of a multi-channel file; ``speech_intervals`` lists
    the speaker's turns in a mono recording (None: use the whole signal).
    """

    label: str
    speaker_id: str
    channel: int | None
    speech_intervals: tuple[tuple[float, float], ...] | None = None


@attrs.frozen
class ConversationSource:
    """A conversation, its speakers, and why its clips cannot be made (``plan_error``), if they cannot."""

    conversation: Conversation
    speakers: tuple[SpeakerSource, ...]
    duration: float | None = None
    plan_error: str | None = None


def prediction_points(conversations: Sequence[Conversation], scheme: LabelScheme, points: PointSource,
                      seeds: Sequence[int], sampling: SamplingSection) -> list[Sample]:
    """Return the data pipeline's prediction points that window clips end at, for every seed."""
    if points == "context":
        return build_context_samples(conversations)
    samples = [sample for seed in seeds
               for sample in build_backchannel_samples(conversations, scheme, sampling, seed)]
    if points == "backchannels":
        nobc = scheme.classes.index(NOBC)
        samples = [sample for sample in samples if sample.label != nobc]
    return sorted(samples, key=lambda sample: (sample.conversation_id, sample.time))


def _overlapping(intervals: tuple[tuple[float, float], ...] | None, start: float,
                 end: float) -> tuple[tuple[float, float], ...] | None:
    if intervals is None:
        return None
    return tuple((a, b) for a, b in intervals if b > start and a < end)


def _track(speaker: SpeakerSource, start: float, end: float) -> Track:
    return Track(speaker=speaker.label, speaker_id=speaker.speaker_id,
                 reference_id=f"reference/{speaker.speaker_id}", channel=speaker.channel,
                 speech_intervals=_overlapping(speaker.speech_intervals, start, end))


def _audio_problem(source: ConversationSource) -> str | None:
    if source.plan_error is not None:
        return source.plan_error
    if source.conversation.audio_path is None:
        return (f"conversation {source.conversation.id} has no audio file; put its audio where the "
                f"dataset reader looks for it")
    return None


def _window_clips(source: ConversationSource, samples: Sequence[Sample], settings: SynthSettings,
                  num_frames: int) -> list[ClipJob]:
    conversation = source.conversation
    speakers = {speaker.label: speaker for speaker in source.speakers}
    clips: dict[str, ClipJob] = {}
    for sample in samples:
        speaker = speakers.get(sample.speaker)
        end = sample.time
        start = end - settings.window
        name = f"{path_part(conversation.id)}_{path_part(sample.speaker)}_{round(end * 1000):09d}.mp4"
        error = _audio_problem(source)
        if speaker is None:
            error = error or f"speaker {sample.speaker!r} of {conversation.id} has no audio source"
            speaker = SpeakerSource(sample.speaker, f"{conversation.id}-{sample.speaker}", None)
        clip = ClipJob(
            conversation_id=conversation.id, kind="window", audio_path=str(conversation.audio_path),
            start=start, end=end, fps=settings.fps, num_frames=num_frames,
            output=f"clips/{path_part(conversation.id)}/{path_part(sample.speaker)}/{name}",
            animator=settings.animator, tracks=(_track(speaker, start, end),), plan_error=error,
        )
        clips.setdefault(clip.id, clip)  # two points at the same millisecond share one clip
    return list(clips.values())


def _whole_clips(source: ConversationSource, settings: SynthSettings) -> list[ClipJob]:
    conversation = source.conversation
    error = _audio_problem(source)
    duration = source.duration
    if error is None and duration is None:
        error = f"the duration of {conversation.audio_path} is unknown; check the file decodes"
    num_frames = frames_in_duration(duration or 0.0, settings.fps)
    end = num_frames / settings.fps
    base = dict(conversation_id=conversation.id, audio_path=str(conversation.audio_path), start=0.0, end=end,
                fps=settings.fps, num_frames=num_frames, animator=settings.animator, plan_error=error)
    if settings.clips == "conversation":
        tracks = tuple(_track(speaker, 0.0, end) for speaker in source.speakers)
        return [ClipJob(kind="conversation", output=f"conversations/{path_part(conversation.id)}.mp4",
                        tracks=tracks, **base)]
    return [
        ClipJob(kind="side", tracks=(_track(speaker, 0.0, end),),
                output=f"sides/{path_part(conversation.id)}/{path_part(conversation.id)}_"
                       f"{path_part(speaker.label)}.mp4", **base)
        for speaker in source.speakers
    ]


def _reference_jobs(speaker_ids: Sequence[str], profiles: Mapping[str, SpeakerProfile | str],
                    settings: SynthSettings) -> list[ReferenceJob]:
    jobs = []
    for speaker_id in speaker_ids:
        profile = profiles.get(speaker_id, f"no profile was built for speaker {speaker_id}")
        jobs.append(ReferenceJob(
            speaker_id=speaker_id, profile=profile if isinstance(profile, SpeakerProfile) else None,
            output=f"references/{path_part(speaker_id)}.png", width=settings.width, height=settings.height,
            generator=settings.reference, plan_error=profile if isinstance(profile, str) else None,
        ))
    return jobs


def build_plan(sources: Sequence[ConversationSource], profiles: Mapping[str, SpeakerProfile | str],
               settings: SynthSettings, scheme: LabelScheme) -> Plan:
    """Build the jobs for ``sources``; ``profiles`` maps speaker ids to a profile or the reason it is missing.

    References come first (one per speaker that some clip needs), then clips grouped by
    conversation. With ``settings.limit`` only the first clips are kept.
    """
    clips: list[ClipJob] = []
    if settings.clips == "windows":
        num_frames = frames_per_window(settings.window, settings.fps)
        samples = prediction_points([source.conversation for source in sources], scheme, settings.points,
                                    settings.sampling_seeds, settings.sampling)
        by_conversation: dict[str, list[Sample]] = {}
        for sample in samples:
            by_conversation.setdefault(sample.conversation_id, []).append(sample)
        for source in sources:
            clips.extend(_window_clips(source, by_conversation.get(source.conversation.id, []), settings,
                                       num_frames))
    else:
        for source in sources:
            clips.extend(_whole_clips(source, settings))
    if settings.limit is not None:
        clips = clips[:settings.limit]
    speaker_ids = list(dict.fromkeys(track.speaker_id for clip in clips for track in clip.tracks))
    return Plan(references=_reference_jobs(speaker_ids, profiles, settings), clips=clips)


def describe_plan(plan: Plan, records: Mapping[str, Mapping[str, object]], out_dir: Path,
                  empty_reason: str = "", problems: Sequence[str] = ()) -> str:
    """Summarise a plan for ``--dry-run``: counts by kind and status, problems, and the first jobs.

    ``empty_reason`` explains a plan without clips; ``problems`` are found before any job runs,
    such as an animator whose environment is missing.
    """
    lines = [f"plan for {out_dir}:"]
    if not plan.clips:
        lines.append(f"  clips: 0 jobs ({empty_reason or 'no prediction points or speakers were found'})")
        lines.append(f"  reference: {len(plan.references)} jobs")
    planned = plan.records()
    for kind in ("reference", "window", "side", "conversation"):
        jobs = [record for record in planned if record["kind"] == kind]
        if not jobs:
            continue
        done = sum(1 for record in jobs
                   if records.get(record["id"], {}).get("status") == "done"
                   and records[record["id"]].get("fingerprint") == record["fingerprint"]
                   and (out_dir / str(record["output"])).is_file())
        seconds = sum(float(record.get("num_frames", 0)) / float(record.get("fps", 1)) for record in jobs)
        extra = f", {seconds:.1f} s of video" if kind != "reference" else ""
        lines.append(f"  {kind}: {len(jobs)} jobs, {done} already done, {len(jobs) - done} to run{extra}")
    failing = [(job.id, error) for job in [*plan.references, *plan.clips]
               if (error := plan.blocking_error(job)) is not None]
    if failing:
        lines.append(f"  {len(failing)} jobs cannot run:")
        lines.extend(f"    {job_id}: {error}" for job_id, error in failing[:20])
    lines.extend(f"  problem: {problem}" for problem in problems)
    if planned:
        lines.append("  first jobs:")
        lines.extend(f"    {record['id']} -> {record['output']}" for record in planned[:8])
    return "\n".join(lines)
