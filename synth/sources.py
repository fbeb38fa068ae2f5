"""Conversations and speaker profiles for the two commands: Switchboard, and one recording with turns.

Parsing is left to the dataset plugins (the ``swbd`` reader, the Switchboard metadata tables and the
STM/RTTM readers in ``camabc_plugins.datasets``), so synth gets the same conversations, speakers and
prediction points as training does.
"""

from __future__ import annotations

import csv
import logging
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import attrs

from camabc_core.errors import CamabcError, CorpusFormatError
from camabc_core.labels import LabelScheme, build_label_scheme
from camabc_core.records import Conversation
from synth.errors import SynthError
from synth.media import probe_duration
from synth.planning import ConversationSource, SpeakerSource
from synth.profiles import SpeakerProfile, build_profile, normalize_sex

logger = logging.getLogger(__name__)

MISSING_METADATA_HINT = ("add the caller's row (caller number, pin, target, sex, birth year, ...) to "
                         "caller_tab.csv, or pass --draw-missing-metadata to draw sex and age instead")


@attrs.frozen
class SourceSet:
    """Everything planning needs: conversations with speakers, profiles and the label scheme."""

    sources: list[ConversationSource]
    profiles: dict[str, SpeakerProfile | str]
    scheme: LabelScheme


def _with_durations(sources: list[ConversationSource]) -> list[ConversationSource]:
    """Probe each conversation's audio duration; an unreadable file becomes that conversation's plan error."""
    probed = []
    for source in sources:
        path = source.conversation.audio_path
        if source.plan_error is None and path is not None and source.duration is None:
            try:
                source = attrs.evolve(source, duration=probe_duration(Path(path)))
            except CamabcError as error:
                source = attrs.evolve(source, plan_error=str(error))
        probed.append(source)
    return probed


# Recordings with speaker turns ---------------------------------------------------------------


def read_speaker_info(path: Path) -> dict[str, tuple[str | None, int | None]]:
    """Read a CSV with header ``speaker,sex,age`` into speaker -> (sex, age); blank cells are None."""
    info: dict[str, tuple[str | None, int | None]] = {}
    with path.open(encoding="utf-8-sig", newline="") as handle:
        reader = csv.DictReader(handle)
        missing = {"speaker", "sex", "age"} - set(reader.fieldnames or ())
        if missing:
            raise CorpusFormatError(f"{path}: missing column(s) {', '.join(sorted(missing))}; "
                                    f"the header must be speaker,sex,age")
        for line_number, row in enumerate(reader, start=2):
            sex_text, age_text = (row["sex"] or "").strip(), (row["age"] or "").strip()
            sex = normalize_sex(sex_text) if sex_text else None
            if sex_text and sex is None:
                raise CorpusFormatError(f"{path}:{line_number}: sex must be female or male, got {sex_text!r}")
            if age_text and not age_text.isdigit():
                raise CorpusFormatError(f"{path}:{line_number}: age must be whole years, got {age_text!r}")
            info[row["speaker"].strip()] = (sex, int(age_text) if age_text else None)
    return info


def recording_sources(audio: Path, turns_path: Path, *, transcript: Path | None = None,
                      speaker_info: Path | None = None, channel_speakers: Sequence[str] | None = None,
                      seed: int = 0, need_duration: bool = False) -> SourceSet:
    """Build the source of one recording from its speaker turns (RTTM or STM) and optional STM transcript.

    Speakers take the transcript's names when both are given (as the ``stm`` dataset reader names
    them). Without ``channel_speakers`` the recording is treated as one mixed channel and each
    speaker's audio is limited to that speaker's turns.
    """
    from camabc_plugins.datasets.stm import StmReader, Turn, map_turn_speakers, read_rttm, read_stm

    suffix = turns_path.suffix.lower()
    if suffix not in (".rttm", ".stm"):
        raise SynthError(f"{turns_path}: speaker turns must be an .rttm or .stm file")
    rttm_turns = read_rttm(turns_path) if suffix == ".rttm" else []
    if transcript is not None:
        utterances = read_stm(transcript)
    elif suffix == ".stm":
        utterances = read_stm(turns_path)
    else:
        utterances = []
    if not rttm_turns and not utterances:
        raise SynthError(f"{turns_path}: no speaker turns found")
    file_id = (rttm_turns or utterances)[0].file_id or audio.stem
    conversation = StmReader().build_conversation(file_id, utterances, rttm_turns, [])
    conversation = attrs.evolve(conversation, audio_path=audio)

    if rttm_turns:
        names = map_turn_speakers(rttm_turns, utterances) if utterances else {}
        turns = [Turn(names.get(turn.speaker, turn.speaker), turn.start, turn.end) for turn in rttm_turns]
    else:
        turns = [Turn(item.speaker, item.start, item.end) for item in utterances]
    intervals: dict[str, list[tuple[float, float]]] = defaultdict(list)
    for turn in sorted(turns, key=lambda item: item.start):
        intervals[turn.speaker].append((turn.start, turn.end))
    speakers = list(dict.fromkeys([*conversation.speakers, *intervals]))

    info = read_speaker_info(speaker_info) if speaker_info else {}
    unknown = set(info) - set(speakers)
    if unknown:
        raise SynthError(f"{speaker_info}: speakers {sorted(unknown)} do not occur in {turns_path} "
                         f"(speakers there: {', '.join(speakers)})")
    if channel_speakers is not None:
        missing = set(speakers) - set(channel_speakers)
        if missing:
            raise SynthError(f"--channel-speakers names no channel for {sorted(missing)}; list one speaker "
                             f"per audio channel, in channel order")
    sources_speakers, profiles = [], {}
    for label in speakers:
        speaker_id = f"{file_id}-{label}"
        sex, age = info.get(label, (None, None))
        profiles[speaker_id] = build_profile(speaker_id, seed, sex=sex, age=age)
        channel = list(channel_speakers).index(label) if channel_speakers is not None else None
        sources_speakers.append(SpeakerSource(
            label=label, speaker_id=speaker_id, channel=channel,
            speech_intervals=None if channel is not None else tuple(intervals.get(label, ())),
        ))
    sources = [ConversationSource(conversation=conversation, speakers=tuple(sources_speakers))]
    if need_duration:
        sources = _with_durations(sources)
    scheme = build_label_scheme(StmReader.default_label_scheme, StmReader.default_category_map)
    return SourceSet(sources=sources, profiles=profiles, scheme=scheme)


def _earliest_ages(metadata: dict[str, tuple[Any, Any]]) -> dict[str, int]:
    """Return each caller's age at their earliest recorded conversation (one portrait per caller)."""
    ages: dict[str, int] = {}
    for pair in metadata.values():
        for speaker in pair:
            if speaker.age is not None:
                ages[speaker.caller_id] = min(speaker.age, ages.get(speaker.caller_id, speaker.age))
    return ages


def _caller_problem(caller: Any, label: str, conversation_id: str, age: int | None) -> str | None:
    missing = []
    if normalize_sex(caller.sex) is None:
        missing.append("sex")
    if caller.birth_year is None:
        missing.append("birth year")
    if missing:
        return (f"caller {caller.caller_id} (side {label} of {conversation_id}) has no "
                f"{' or '.join(missing)} in caller_tab.csv; {MISSING_METADATA_HINT}")
    if age is None:
        return (f"caller {caller.caller_id} (side {label} of {conversation_id}) has no recording day "
                f"(YYMMDD) in conv_tab.csv, so the age is unknown; add it, or pass --draw-missing-metadata")
    return None


def switchboard_sources(root: Path, *, seed: int = 0, need_duration: bool = False,
                        draw_missing_metadata: bool = False,
                        reader_options: dict[str, Any] | None = None) -> SourceSet:
    """Build sources for every Switchboard conversation under ``root``.

    Each caller is one speaker (``swbd-<caller number>``) with one portrait across all their calls;
    the age is the caller's age at their earliest call in ``conv_tab.csv``. A caller or conversation
    missing from the tables fails its reference job (and so its clips) with a message naming the
    caller and the fix, unless ``draw_missing_metadata`` draws sex and age. ``reader_options`` are
    keyword options of the ``swbd`` reader, e.g. the backchannel rule's thresholds.
    """
    from camabc_core.registry import get_registry
    from camabc_plugins.datasets.switchboard_metadata import read_switchboard_metadata

    reader = get_registry().create("dataset", "swbd", **(reader_options or {}))
    conversations: list[Conversation] = reader.load(Path(root))
    metadata = read_switchboard_metadata(root)
    ages = _earliest_ages(metadata)
    sources, profiles = [], {}
    for conversation in conversations:
        callers = metadata.get(conversation.id)
        speakers = []
        for channel, label in enumerate(conversation.channel_speakers or conversation.speakers):
            if callers is None:
                speaker_id = f"{conversation.id}-{label}"
                problem = (f"{conversation.id} is not in conv_tab.csv, so the caller of side {label} is "
                           f"unknown; add the conversation's row (number, active, caller A, caller B, "
                           f"topic, ..., talk day YYMMDD) or pass --draw-missing-metadata")
                sex, age = None, None
            else:
                caller = callers[channel]
                speaker_id = f"swbd-{caller.caller_id}"
                sex, age = normalize_sex(caller.sex), ages.get(caller.caller_id)
                problem = _caller_problem(caller, label, conversation.id, age)
            if speaker_id not in profiles:
                if problem is None or draw_missing_metadata:
                    if problem is not None:
                        logger.warning("%s; drawing the missing values", problem.split(";")[0])
                    profiles[speaker_id] = build_profile(speaker_id, seed, sex=sex, age=age)
                else:
                    profiles[speaker_id] = problem
            speakers.append(SpeakerSource(label=label, speaker_id=speaker_id, channel=channel))
        sources.append(ConversationSource(conversation=conversation, speakers=tuple(speakers)))
    if need_duration:
        sources = _with_durations(sources)
    scheme = build_label_scheme(reader.default_label_scheme, reader.default_category_map)
    return SourceSet(sources=sources, profiles=profiles, scheme=scheme)
