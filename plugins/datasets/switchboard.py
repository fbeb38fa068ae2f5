"""Switchboard-1 reader: MS-State word alignments, two-channel SPHERE audio, binary labels.

Layout under ROOT (any depth): word alignments ``swNNNN{A,B}-ms98-a-word.text`` (one word per line:
``utterance-id start end word``; A and B are the two sides of conversation NNNN) and audio
``swNNNN.sph`` or ``sw0NNNN.sph`` (LDC97S62: 8 kHz, channel 0 = side A, channel 1 = side B).
LDC compresses these SPHERE files with shorten, which FFmpeg cannot decode. Convert them with
``sph2pipe -f wav -p sw02001.sph sw02001.wav``: a ``.wav`` (or ``.flac``) is chosen over the
``.sph`` of the same conversation, and ``load`` warns about shorten files that have no such copy.

Switchboard has no backchannel annotation, so labels come from a rule (the ``camabc data stats``
table and docs/datasets.md give the resulting counts):

1. Each side's words become spurts: runs of words with pauses of at most ``spurt_pause_seconds``.
   Silence, noise and laughter tokens are not words; ``[laughter-yeah]`` is the word ``yeah``.
2. A spurt is a backchannel when all of its words are backchannel tokens (``BACKCHANNEL_TOKENS``,
   optionally with the fillers ``uh``/``um``) or it is one of ``BACKCHANNEL_PHRASES``, and the
   :class:`~camabc_plugins.datasets.turns.ShortTurnRule` holds: at most ``max_seconds`` long, at
   most ``max_words`` words, inside a turn of the other side.

Backchannel spurts become events with category ``"BC"``; their words are removed from the words.

Switchboard has no video. With ``video_dir`` set to the ``--out`` folder of ``python -m synth swbd
--clips conversation``, each conversation gets the synthesized talking-head video that shows whoever
speaks (``camabc_plugins.datasets.synth_videos`` describes the lookup).
"""

from __future__ import annotations

import logging
import re
import shlex
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path
from typing import ClassVar

import attrs

from camabc_core.errors import CorpusFormatError
from camabc_core.interfaces import DatasetReader
from camabc_core.records import BackchannelEvent, Conversation, Word
from camabc_plugins.datasets.checks import finish_load, require_root
from camabc_plugins.datasets.lines import MalformedLines
from camabc_plugins.datasets.media_files import AUDIO_EXTENSIONS
from camabc_plugins.datasets.switchboard_metadata import conversation_id
from camabc_plugins.datasets.synth_videos import ConversationVideos
from camabc_plugins.datasets.turns import ShortTurnRule, Turn

#: Conversations named in the error about missing videos; the rest are counted.
MAX_LISTED_MISSING_VIDEOS = 5

logger = logging.getLogger(__name__)

BACKCHANNEL_CATEGORY = "BC"
CHANNEL_SPEAKERS = ("A", "B")

#: Words that make up backchannels in Switchboard (MS-State spelling, lower case).
BACKCHANNEL_TOKENS = frozenset({
    "uh-huh", "um-hum", "mm-hmm", "mhm", "hm", "hmm", "huh", "yeah", "yes", "yep", "yup", "right",
    "okay", "ok", "oh", "sure", "really", "wow", "exactly", "true", "alright", "gosh", "boy",
})
#: Multi-word backchannels whose words are not all in ``BACKCHANNEL_TOKENS``.
BACKCHANNEL_PHRASES = frozenset({
    "i see", "oh i see", "that's right", "that's true", "all right", "of course", "i know",
    "oh my", "oh my gosh", "my goodness", "no kidding", "that's good", "sounds good",
})
#: Fillers allowed next to backchannel tokens ("uh yeah") but not alone.
FILLERS = frozenset({"uh", "um"})
#: Tokens that are not speech.
NON_SPEECH_TOKENS = frozenset({
    "[silence]", "[noise]", "[vocalized-noise]", "[laughter]", "<b_aside>", "<e_aside>",
})
WORD_FILE = re.compile(r"sw(?P<number>\d{4,5})(?P<side>[AB])-ms98-a-word\.text")
AUDIO_FILE = re.compile(r"sw0?(?P<number>\d{4,5})")
LAUGHTER_WORD = re.compile(r"\[laughter-(?P<word>[^\]]+)\]")


def clean_token(token: str) -> str | None:
    """Return the spoken word of an MS-State token, or None for silence, noise and laughter."""
    if token in NON_SPEECH_TOKENS:
        return None
    laughing = LAUGHTER_WORD.fullmatch(token)
    return laughing.group("word") if laughing else token


def is_backchannel_text(words: list[str]) -> bool:
    """Return True when ``words`` (lower case) form a backchannel by token list or phrase."""
    if " ".join(words) in BACKCHANNEL_PHRASES:
        return True
    content = [word for word in words if word not in FILLERS]
    if not content:
        return False
    return all(word in BACKCHANNEL_TOKENS for word in content) or " ".join(content) in BACKCHANNEL_PHRASES


def split_spurts(words: list[Word], max_pause: float) -> list[list[Word]]:
    """Split one side's time-sorted words at pauses longer than ``max_pause`` seconds."""
    spurts: list[list[Word]] = []
    for word in words:
        if spurts and word.start - spurts[-1][-1].end <= max_pause:
            spurts[-1].append(word)
        else:
            spurts.append([word])
    return spurts


def _warn_shorten_audio(paths: Iterable[Path]) -> None:
    """Log one warning naming the shorten-compressed SPHERE files, which decoding will reject."""
    from camabc_core.media import shorten_sphere_coding

    compressed = [path for path in paths if path.suffix.lower() == ".sph" and shorten_sphere_coding(path)]
    if compressed:
        example = compressed[0]
        logger.warning(
            "swbd: %d .sph file(s) are shorten-compressed, which FFmpeg cannot decode, e.g. %s. Convert "
            "them (sph2pipe -f wav -p %s %s.wav) next to the .sph files or into the folder given by "
            "the audio_dir option; the reader then uses the .wav files",
            len(compressed), example, example.name, example.stem,
        )


class SwitchboardReader(DatasetReader):
    """Reads Switchboard-1 conversations with binary backchannel labels from the rule above.

    :param skip_malformed: count and skip malformed lines (and conversations missing a side).
    :param audio_dir: folder searched (at any depth) for the audio in place of ROOT, e.g. the
        folder of ``.wav`` files converted from the ``.sph`` files.
    :param spurt_pause_seconds: pause that separates two spurts of one side.
    :param max_seconds: longest backchannel spurt.
    :param max_words: most words in a backchannel spurt.
    :param partner_pause_seconds: pauses up to this length inside the other side's turn are bridged.
    :param end_tolerance_seconds: how far a backchannel may run past the other side's turn end.
    :param video_dir: ``--out`` folder of ``python -m synth swbd --clips conversation``; each
        conversation gets its video from there (null: no video).
    :param skip_missing_video: leave out conversations without a finished video (logged and listed in
        ``skipped_without_video``) instead of failing; only used with ``video_dir``.
    """

    default_category_map: ClassVar[dict[str, str]] = {BACKCHANNEL_CATEGORY: "BC"}
    default_label_scheme: ClassVar[str] = "binary"

    def __init__(self, *, skip_malformed: bool = False, audio_dir: str | Path | None = None,
                 spurt_pause_seconds: float = 0.5, max_seconds: float = 1.0, max_words: int = 3,
                 partner_pause_seconds: float = 1.0, end_tolerance_seconds: float = 0.5,
                 video_dir: str | Path | None = None, skip_missing_video: bool = False) -> None:
        self.skip_malformed = skip_malformed
        self.audio_dir = Path(audio_dir) if audio_dir is not None else None
        if video_dir is not None and not str(video_dir).strip():
            raise CorpusFormatError("swbd: the video_dir option is empty; set it to the --out folder of "
                                    "`python -m synth swbd ... --clips conversation`, e.g. "
                                    "--set data.reader_options.video_dir=/data/swbd-video, or set it "
                                    "to null to train without video")
        self.video_dir = Path(video_dir).expanduser() if video_dir is not None else None
        self.skip_missing_video = skip_missing_video
        self.spurt_pause_seconds = spurt_pause_seconds
        self.rule = ShortTurnRule(max_seconds=max_seconds, max_words=max_words,
                                  partner_pause_seconds=partner_pause_seconds,
                                  end_tolerance_seconds=end_tolerance_seconds)
        #: Malformed lines skipped by the last ``load``.
        self.skipped_lines = 0
        #: Conversations skipped by the last ``load`` because one side's word file is missing.
        self.skipped_conversations: list[str] = []
        #: ``file:line`` of every word that ends before it starts (kept as zero-length).
        self.reversed_spans: list[str] = []
        #: Conversations left out by the last ``load`` because ``video_dir`` has no video for them.
        self.skipped_without_video: list[str] = []

    def load(self, root: Path) -> list[Conversation]:
        root = require_root(root, "a folder with swNNNNA-ms98-a-word.text files at any depth")
        if root.is_file():
            raise CorpusFormatError(f"{root}: the swbd reader reads a folder, because a conversation "
                                    f"has one word file per side; pass the folder that contains it")
        word_files: dict[str, dict[str, Path]] = defaultdict(dict)
        for path in root.rglob("sw*-ms98-a-word.text"):
            match = WORD_FILE.fullmatch(path.name)
            if match:
                word_files[conversation_id(match.group("number"))][match.group("side")] = path
        if not word_files:
            raise CorpusFormatError(f"no MS-State word alignments (swNNNNA-ms98-a-word.text) under {root}")
        audio_files = self._index_audio(self.audio_dir or root)
        _warn_shorten_audio(audio_files.values())

        malformed = MalformedLines("swbd", self.skip_malformed)
        self.skipped_conversations = []
        conversations = []
        for conversation in sorted(word_files):
            sides = word_files[conversation]
            missing = [side for side in CHANNEL_SPEAKERS if side not in sides]
            if missing:
                message = (f"{conversation}: no word alignment for side {', '.join(missing)} next to "
                           f"{next(iter(sides.values()))}")
                if not self.skip_malformed:
                    raise CorpusFormatError(f"{message}; restore the file or set skip_malformed")
                logger.warning("swbd: skipped %s", message)
                self.skipped_conversations.append(conversation)
                continue
            words = [word for side in CHANNEL_SPEAKERS
                     for word in self.read_word_file(sides[side], side, malformed)]
            conversations.append(self.build_conversation(conversation, words,
                                                          audio_files.get(conversation)))
        if self.video_dir is not None:
            conversations = self.attach_videos(conversations, root, self.video_dir)
        finish_load("swbd", root, conversations, malformed)
        self.skipped_lines = malformed.count
        self.reversed_spans = malformed.reversed_spans
        return conversations

    def attach_videos(self, conversations: list[Conversation], root: Path,
                      video_dir: Path) -> list[Conversation]:
        """Set each conversation's ``video_path`` from synth's output folder ``video_dir``.

        A conversation without a finished video raises CorpusFormatError, or is left out with a
        warning when ``skip_missing_video`` is set.
        """
        videos = ConversationVideos(video_dir)
        with_video, missing = [], []
        for conversation in conversations:
            lookup = videos.find(conversation.id)
            if lookup.path is None:
                missing.append((conversation.id, lookup))
            else:
                with_video.append(attrs.evolve(conversation, video_path=lookup.path))
        if not missing:
            self.skipped_without_video = []
            return with_video

        first_id, first = missing[0]
        listed = ", ".join(conversation for conversation, _ in missing[:MAX_LISTED_MISSING_VIDEOS])
        more = len(missing) - MAX_LISTED_MISSING_VIDEOS
        listed += f" and {more} more" if more > 0 else ""
        command = (f"python -m synth swbd --swbd-root {shlex.quote(str(root))} "
                   f"--out {shlex.quote(str(video_dir))} --clips conversation")
        message = (f"{len(missing)} of {len(conversations)} conversation(s) have no video in "
                   f"{video_dir} ({listed}); {first_id} is expected at {first.expected} "
                   f"({first.problem}).{videos.kinds_hint()} Make the videos with `{command}`")
        if not self.skip_missing_video:
            raise CorpusFormatError(f"{message}, or set the skip_missing_video option to leave such "
                                    f"conversations out")
        if not with_video:
            raise CorpusFormatError(f"{message}; skip_missing_video left no conversation to read")
        logger.warning("swbd: skipped %s", message)
        self.skipped_without_video = [conversation for conversation, _ in missing]
        return with_video

    @staticmethod
    def _index_audio(root: Path) -> dict[str, Path]:
        """Map conversation ids to audio files; any other audio format wins over ``.sph``."""
        if not root.is_dir():
            raise CorpusFormatError(f"{root}: audio folder not found; check the audio_dir option")
        audio = {}
        candidates = sorted(root.rglob("sw*"), key=lambda path: (path.suffix.lower() == ".sph", path))
        for path in candidates:
            match = AUDIO_FILE.fullmatch(path.stem)
            if match and path.suffix.lower() in AUDIO_EXTENSIONS and path.is_file():
                audio.setdefault(conversation_id(match.group("number")), path)
        return audio

    @staticmethod
    def read_word_file(path: Path, side: str, malformed: MalformedLines) -> list[Word]:
        """Read one side's word alignment; silence, noise and laughter tokens are dropped."""
        words = []
        with path.open(encoding="latin-1") as handle:
            for line_number, line in enumerate(handle, start=1):
                fields = line.split()
                if not fields:
                    continue
                if len(fields) != 4:
                    malformed.report(path, line_number, f"expected 'utterance-id start end word', "
                                     f"found {len(fields)} fields")
                    continue
                try:
                    start, end = float(fields[1]), float(fields[2])
                except ValueError:
                    malformed.report(path, line_number, f"start/end must be seconds, found "
                                     f"{fields[1]!r}, {fields[2]!r}")
                    continue
                span = malformed.check_span(path, line_number, start, end)
                if span is None:
                    continue
                word = clean_token(fields[3])
                if word is not None:
                    words.append(Word(speaker=side, start=span[0], end=span[1], text=word))
        words.sort(key=lambda item: (item.start, item.end))
        return words

    def build_conversation(self, conversation: str, words: list[Word], audio: Path | None) -> Conversation:
        """Label the backchannel spurts of one conversation and remove their words."""
        spurts = {
            side: split_spurts([word for word in words if word.speaker == side], self.spurt_pause_seconds)
            for side in CHANNEL_SPEAKERS
        }
        turns = [Turn(side, spurt[0].start, spurt[-1].end, conversation)
                 for side, side_spurts in spurts.items() for spurt in side_spurts]
        partner_turns = self.rule.index(turns)

        events: list[BackchannelEvent] = []
        kept: list[Word] = []
        for side, side_spurts in spurts.items():
            for spurt in side_spurts:
                turn = Turn(side, spurt[0].start, spurt[-1].end, conversation)
                tokens = [word.text.lower() for word in spurt]
                if is_backchannel_text(tokens) and self.rule.is_backchannel(turn, len(spurt), partner_turns):
                    events.append(BackchannelEvent(
                        listener=side, start=turn.start, end=turn.end, category=BACKCHANNEL_CATEGORY,
                        text=" ".join(word.text for word in spurt),
                    ))
                else:
                    kept.extend(spurt)
        kept.sort(key=lambda item: (item.start, item.end))
        events.sort(key=lambda event: (event.start, event.end))
        return Conversation(
            id=conversation,
            words=tuple(kept),
            backchannels=tuple(events),
            speakers=CHANNEL_SPEAKERS,
            audio_path=audio,
            channel_speakers=CHANNEL_SPEAKERS,
            duration=max((word.end for word in words), default=None),
            source="swbd",
        )
