"""BACKSpeech reader: Korean YouTube dialogues with inline backchannel tags.

Layout: ``ROOT/annotation/<video id>.csv``, or the ``.csv`` files directly in ``ROOT``, or ROOT is
one ``.csv`` file. Each file is UTF-8 and tab-separated, with no header and one utterance per line:
``start_s  end_s  speaker  text``. The text column uses the ETRI transcription conventions:

- ``[text(BC/category)]``: a backchannel of this line's speaker (the listener), e.g.
  ``[네.(BC/continuer)]``. One line in the released corpus omits the brackets. A text cell with no
  bracketed tag that ends in ``text(BC/category)`` is therefore read as one tag that contains the
  whole cell.
- ``/os1 ... /oe`` and ``/os2 ... /oe``: start and end of overlapping speech. The marks are dropped
  and the speech inside is kept.
- ``(written)/(spoken)``: dual transcription of numbers, units and foreign words, e.g.
  ``(70)/(칠십)``. The spoken Korean form is kept because it is what the audio contains. A few
  lines omit the slash (``(1위)(일 위)``); those are read the same way.
- ``word/``: a filler or disfluent word. It is kept without the slash, also when the slash glues
  it to the next word, as in ``음/이``.
- ``n/``, ``u/``, ``b/``, ``l/``, ``o/``: noise, unintelligible speech, breath, laughter and other
  non-speech marks. They are dropped.

Timing: the corpus times whole utterances only. Words get times interpolated over the utterance
span in proportion to their number of characters. A tag takes its own character share of the
same span, so a backchannel starts where its text starts in the utterance. In the released corpus
every tagged utterance contains the tag and nothing else that is spoken, so the event starts at the
utterance start and ends at the utterance end. Tag text becomes ``BackchannelEvent.text`` and never
appears among the listener's words.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import ClassVar

import attrs

from camabc_core.errors import CorpusFormatError
from camabc_core.interfaces import DatasetReader
from camabc_core.labels import DEFAULT_FOUR_CLASS_MAP
from camabc_core.records import BackchannelEvent, Conversation, Word
from camabc_plugins.datasets.checks import finish_load, require_root
from camabc_plugins.datasets.lines import MalformedLines, read_text
from camabc_plugins.datasets.media_files import AUDIO_EXTENSIONS, VIDEO_EXTENSIONS, find_media_file
from camabc_plugins.datasets.text import normalise_text, spread_over_span

# A bracketed tag; the text may contain dual forms "(70)/(칠십)" but no brackets.
BRACKETED_TAG = re.compile(r"\[(?P<text>[^\[\]]*?)\(BC/(?P<category>[^()\[\]]*)\)\]")
# The bracket-less form, accepted only for a whole text cell without bracketed tags.
BARE_TAG = re.compile(r"(?P<text>[^\[\]]*?)\(BC/(?P<category>[^()\[\]]*)\)")
OVERLAP_MARK = re.compile(r"/os\d*|/oe")
# "(written)/(spoken)", also without the slash.
DUAL_FORM = re.compile(r"\((?P<written>[^()]*)\)/?\((?P<spoken>[^()]*)\)")
# Non-speech marks at the start of a token: noise, unintelligible, breath, laughter, other.
NON_SPEECH_MARK = re.compile(r"(?<!\S)[nublo]/")


@attrs.frozen
class _Piece:
    """Spoken text of one utterance in order: a run of words, or one backchannel tag."""

    tokens: tuple[str, ...]
    category: str | None = None


def clean_speech(text: str) -> list[str]:
    """Return the spoken tokens of transcript ``text`` (no tags) after the conventions above."""
    text = DUAL_FORM.sub(lambda match: match.group("spoken"), text)
    text = OVERLAP_MARK.sub(" ", text)
    text = NON_SPEECH_MARK.sub(" ", text)
    # "word/" marks a filler, sometimes glued to the next word ("음/이"). Leftover parentheses come
    # from a dual form that lacks one of its halves.
    text = text.replace("(", " ").replace(")", " ").replace("/", " ")
    tokens: list[str] = []
    for token in normalise_text(text).split():
        # Punctuation left alone by a removed mark ("n/ ?") belongs to the word before it.
        if tokens and not any(character.isalnum() for character in token):
            tokens[-1] += token
        else:
            tokens.append(token)
    return tokens


def split_tags(text: str) -> list[_Piece] | None:
    """Split a text cell into speech and tag pieces; return None if a ``(BC/`` is not a valid tag."""
    pieces: list[_Piece] = []
    position = 0
    for match in BRACKETED_TAG.finditer(text):
        pieces.append(_Piece(tuple(clean_speech(text[position:match.start()]))))
        pieces.append(_Piece(tuple(clean_speech(match.group("text"))), match.group("category")))
        position = match.end()
    rest = text[position:]
    if "(BC/" in rest:
        bare = None
        if position == 0:
            bare = BARE_TAG.fullmatch(NON_SPEECH_MARK.sub(" ", OVERLAP_MARK.sub(" ", rest)).strip())
        if bare is None:
            return None
        pieces.append(_Piece(tuple(clean_speech(bare.group("text"))), bare.group("category")))
    else:
        pieces.append(_Piece(tuple(clean_speech(rest))))
    return [piece for piece in pieces if piece.tokens or piece.category is not None]


class BackspeechReader(DatasetReader):
    """Reads BACKSpeech annotation files into conversations (one per video).

    :param skip_malformed: count and skip malformed lines instead of raising.
    :param audio_dir: directory of ``<video id>.wav`` files; default ``ROOT/audio``, then ``ROOT``.
    :param video_dir: directory of ``<video id>.mp4`` files; default ``ROOT/video``, then ``ROOT``.
    """

    # BACKSpeech writes categories in lower case with spaces ("request confirmation"); the label
    # scheme compares them case-insensitively with spaces read as underscores.
    default_category_map: ClassVar[dict[str, str]] = dict(DEFAULT_FOUR_CLASS_MAP)
    default_label_scheme: ClassVar[str] = "four_class"

    def __init__(self, *, skip_malformed: bool = False, audio_dir: str | Path | None = None,
                 video_dir: str | Path | None = None) -> None:
        self.skip_malformed = skip_malformed
        self.audio_dir = Path(audio_dir) if audio_dir is not None else None
        self.video_dir = Path(video_dir) if video_dir is not None else None
        #: Malformed lines skipped by the last ``load``.
        self.skipped_lines = 0
        #: ``file:line`` of every utterance that ends before it starts (kept as zero-length).
        self.reversed_spans: list[str] = []

    def annotation_files(self, root: Path) -> list[Path]:
        """Return the annotation files that ``root`` names (one ``.csv`` file or a folder), sorted by name."""
        root = require_root(root, "a folder with annotation/*.csv, or one .csv file")
        if root.is_file():
            if root.suffix.lower() != ".csv":
                raise CorpusFormatError(f"{root}: not a BACKSpeech annotation file (*.csv); pass a .csv "
                                        f"file or the folder that contains annotation/")
            return [root]
        directory = root / "annotation" if (root / "annotation").is_dir() else root
        files = sorted(directory.glob("*.csv"))
        if not files:
            raise CorpusFormatError(
                f"no BACKSpeech annotation files (*.csv) in {directory}; point ROOT at the folder "
                f"that contains annotation/"
            )
        return files

    def load(self, root: Path) -> list[Conversation]:
        files = self.annotation_files(root)
        root = Path(root)
        # Media folders sit beside annotation/, also when ROOT is one annotation file.
        media_root = root
        if root.is_file():
            media_root = root.parent.parent if root.parent.name == "annotation" else root.parent
        malformed = MalformedLines("backspeech", self.skip_malformed)
        conversations = [self.read_file(path, media_root, malformed) for path in files]
        finish_load("backspeech", root, conversations, malformed)
        self.skipped_lines = malformed.count
        self.reversed_spans = malformed.reversed_spans
        return conversations

    def read_file(self, path: Path, root: Path, malformed: MalformedLines) -> Conversation:
        """Parse one annotation file into a Conversation; ``root`` is the folder searched for media."""
        words: list[Word] = []
        events: list[BackchannelEvent] = []
        speakers: dict[str, None] = {}
        for line_number, line in enumerate(read_text(path, malformed).split("\n"), start=1):
            if not line.strip():
                continue
            parsed = self._parse_line(line, path, line_number, malformed)
            if parsed is None:
                continue
            speaker, line_words, line_events = parsed
            speakers.setdefault(speaker)
            words.extend(line_words)
            events.extend(line_events)

        words.sort(key=lambda word: (word.start, word.end))
        events.sort(key=lambda event: (event.start, event.end))
        ends = [word.end for word in words] + [event.end for event in events]
        video_id = path.stem
        return Conversation(
            id=video_id,
            words=tuple(words),
            backchannels=tuple(events),
            speakers=tuple(speakers),
            audio_path=self._media(root, video_id, self.audio_dir, "audio", AUDIO_EXTENSIONS),
            video_path=self._media(root, video_id, self.video_dir, "video", VIDEO_EXTENSIONS),
            duration=max(ends) if ends else None,
            source=str(path),
        )

    def _parse_line(self, line: str, path: Path, line_number: int, malformed: MalformedLines
                    ) -> tuple[str, list[Word], list[BackchannelEvent]] | None:
        fields = line.split("\t")
        # Some editors drop the tab before an empty last column, so 3 fields mean an empty text cell.
        if len(fields) not in (3, 4):
            malformed.report(path, line_number, f"expected 4 tab-separated fields "
                             f"(start, end, speaker, text), found {len(fields)}")
            return None
        start_text, end_text, speaker = (field.strip() for field in fields[:3])
        text = fields[3] if len(fields) == 4 else ""
        try:
            start, end = float(start_text), float(end_text)
        except ValueError:
            malformed.report(path, line_number, f"start/end must be seconds, found {start_text!r}, "
                             f"{end_text!r}")
            return None
        span = malformed.check_span(path, line_number, start, end)
        if span is None:
            return None
        start, end = span
        if not speaker:
            malformed.report(path, line_number, "empty speaker field")
            return None
        pieces = split_tags(text)
        if pieces is None:
            malformed.report(path, line_number, f"invalid backchannel tag in {text.strip()!r}; "
                             f"expected [text(BC/category)]")
            return None
        return (speaker, *self._time_pieces(speaker, start, end, pieces))

    @staticmethod
    def _time_pieces(speaker: str, start: float, end: float, pieces: list[_Piece]
                     ) -> tuple[list[Word], list[BackchannelEvent]]:
        """Give every token a character share of the utterance; tags become events."""
        tokens = [token for piece in pieces for token in piece.tokens]
        # A line holding only a tag without text gives that tag the whole span.
        lengths = [len(token) for token in tokens] or [1]
        spans = spread_over_span(start, end, lengths)
        words: list[Word] = []
        events: list[BackchannelEvent] = []
        index = 0
        for piece in pieces:
            count = len(piece.tokens)
            # An empty tag among words borrows the span of the next word (or of the last one).
            piece_spans = spans[index:index + count] or [spans[min(index, len(spans) - 1)]]
            index += count
            if piece.category is None:
                words.extend(
                    Word(speaker=speaker, start=span_start, end=span_end, text=token)
                    for token, (span_start, span_end) in zip(piece.tokens, piece_spans)
                )
            else:
                events.append(BackchannelEvent(
                    listener=speaker,
                    start=piece_spans[0][0],
                    end=piece_spans[-1][1],
                    category=normalise_text(piece.category),
                    text=" ".join(piece.tokens),
                ))
        return words, events

    def _media(self, root: Path, video_id: str, configured: Path | None, folder: str,
               extensions: tuple[str, ...]) -> Path | None:
        directories = [configured] if configured is not None else [root / folder, root]
        return find_media_file(directories, [video_id], extensions)
