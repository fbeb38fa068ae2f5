"""Timed words for ``camabc predict`` from a transcript file.

Formats, chosen by ``format`` or by the file extension:

- ``tsv`` (``.tsv``): word TSV, one word per row: speaker, start, end, text (parsed here, with the
  dataset readers' malformed-line reporting and text normalisation).
- ``stm`` (``.stm``): NIST STM utterances, parsed by the ``stm`` dataset reader's ``read_stm``. Each
  utterance's words are timed by character share of its span, as that reader does.
- ``manifest`` (``.jsonl``): the ``manifest`` dataset format. The conversation is the one named by
  ``conversation``, or else the one whose media file has the same name as the media to predict on.

Every word of every person is returned, sorted by start time, because the listener's words mark the
audio to zero out. A manifest's backchannels are returned too: they are listener speech as well, but
never enter the text windows. Parsing errors are ``CorpusFormatError`` naming the file and line.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import attrs

from camabc_core.errors import CamabcError, CorpusFormatError
from camabc_core.records import BackchannelEvent, Conversation, Word


@attrs.frozen
class Transcript:
    """The timed words of one conversation (all people, sorted by start) and its backchannels."""

    words: tuple[Word, ...]
    backchannels: tuple[BackchannelEvent, ...] = ()
    #: Speaker of each audio channel when the media has one channel per speaker (manifests only).
    channel_speakers: tuple[str, ...] | None = None


TRANSCRIPT_FORMATS: tuple[str, ...] = ("tsv", "stm", "manifest")

TSV_COLUMNS: tuple[str, ...] = ("speaker", "start", "end", "text")

EXTENSION_FORMATS: dict[str, str] = {".tsv": "tsv", ".stm": "stm", ".jsonl": "manifest"}


def transcript_format(path: Path, format: str = "auto") -> str:
    """Return the format name of ``path``: ``format`` itself, or the one its extension implies."""
    if format != "auto":
        if format not in TRANSCRIPT_FORMATS:
            raise CamabcError(
                f"unknown transcript format {format!r}; expected one of {list(TRANSCRIPT_FORMATS)}"
            )
        return format
    try:
        return EXTENSION_FORMATS[path.suffix.lower()]
    except KeyError:
        raise CamabcError(
            f"{path}: cannot tell the transcript format from the extension {path.suffix!r}; "
            f"name it {', '.join(EXTENSION_FORMATS)} or pass "
            f"--transcript-format {{{','.join(TRANSCRIPT_FORMATS)}}}"
        ) from None


def _select_by_file_id(items_by_id: dict[str, list], path: Path, media: Path | None,
                       conversation: str | None) -> list:
    """Pick the items of one file id out of a multi-file transcript."""
    if conversation is not None:
        if conversation not in items_by_id:
            raise CamabcError(f"{path} has no conversation {conversation!r}; it has {sorted(items_by_id)}")
        return items_by_id[conversation]
    if len(items_by_id) == 1:
        return next(iter(items_by_id.values()))
    if media is not None and media.stem in items_by_id:
        return items_by_id[media.stem]
    raise CamabcError(
        f"{path} contains {len(items_by_id)} conversations {sorted(items_by_id)[:10]} and none is named "
        f"like {media.name if media else 'the media'}; choose one with --conversation"
    )


def load_stm(path: Path, media: Path | None = None, conversation: str | None = None,
             skip_malformed: bool = False) -> Transcript:
    """Words of one STM file id, each utterance's words timed by character share of its span."""
    from camabc_plugins.datasets.stm import read_stm
    from camabc_plugins.datasets.text import interpolate_words

    by_file: dict[str, list] = {}
    for utterance in read_stm(path, skip_malformed=skip_malformed):
        by_file.setdefault(utterance.file_id, []).append(utterance)
    if not by_file:
        raise CorpusFormatError(f"{path}: no STM utterances")
    utterances = _select_by_file_id(by_file, path, media, conversation)
    return Transcript(tuple(
        word
        for utterance in utterances
        for word in interpolate_words(utterance.speaker, utterance.start, utterance.end,
                                      utterance.text.split())
    ))


def _parse_tsv_row(fields: list[str]) -> Word | str:
    """Return the word of one TSV row, or the reason it is malformed."""
    if len(fields) != len(TSV_COLUMNS):
        return (f"expected {len(TSV_COLUMNS)} tab-separated fields ({' '.join(TSV_COLUMNS)}), "
                f"found {len(fields)}")
    speaker, start_text, end_text, text = (field.strip() for field in fields)
    try:
        start, end = float(start_text), float(end_text)
    except ValueError:
        return f"start/end must be seconds, found {start_text!r}, {end_text!r}"
    if not 0.0 <= start <= end:
        return f"invalid span: start {start} s, end {end} s"
    if not speaker:
        return "empty speaker"
    return Word(speaker=speaker, start=start, end=end, text=text)


def load_tsv(path: Path, media: Path | None = None, conversation: str | None = None,
             skip_malformed: bool = False) -> Transcript:
    """Words of a word TSV file: one word per row, ``speaker start end text`` separated by tabs.

    A first row that reads ``speaker start end text`` is a header. Blank rows are skipped; text is
    NFKC-normalised like every reader's.
    """
    from camabc_plugins.datasets.lines import MalformedLines
    from camabc_plugins.datasets.text import normalise_text

    malformed = MalformedLines("word tsv", skip=skip_malformed)
    words = []
    with path.open(encoding="utf-8-sig") as handle:
        for line_number, line in enumerate(handle, start=1):
            fields = line.rstrip("\r\n").split("\t")
            is_header = line_number == 1 and [f.strip().lower() for f in fields] == list(TSV_COLUMNS)
            if is_header or not line.strip():
                continue
            parsed = _parse_tsv_row(fields)
            if isinstance(parsed, str):
                malformed.report(path, line_number, parsed)
                continue
            words.append(attrs.evolve(parsed, text=normalise_text(parsed.text)))
    malformed.warn_summary()
    return Transcript(tuple(words))


def load_manifest(path: Path, media: Path | None = None, conversation: str | None = None,
                  skip_malformed: bool = False) -> Transcript:
    """Words and backchannels of one conversation of a manifest."""
    from camabc_plugins.datasets.manifest import ManifestReader

    # The media to predict on is passed separately, so the manifest's own media need not exist.
    conversations: list[Conversation] = ManifestReader(
        skip_malformed=skip_malformed, check_media=False).load(path)
    if not conversations:
        raise CorpusFormatError(f"{path}: the manifest lists no conversation")
    chosen = None
    if conversation is None and media is not None and len(conversations) > 1:
        matches = [item for item in conversations
                   if media.name in {Path(p).name for p in (item.audio_path, item.video_path) if p}]
        if len(matches) == 1:
            chosen = matches[0]
    if chosen is None:
        by_id = {item.id: [item] for item in conversations}
        chosen = _select_by_file_id(by_id, path, media, conversation)[0]
    return Transcript(chosen.words, chosen.backchannels, chosen.channel_speakers)


LOADERS: dict[str, Callable[[Path, Path | None, str | None, bool], Transcript]] = {
    "tsv": load_tsv,
    "stm": load_stm,
    "manifest": load_manifest,
}


def load_transcript(path: str | Path, *, format: str = "auto", media: str | Path | None = None,
                    conversation: str | None = None, skip_malformed: bool = False) -> Transcript:
    """Read every timed word of the transcript at ``path``, sorted by (start, end), and its backchannels.

    ``media`` (the file to predict on) and ``conversation`` select one conversation from
    transcripts that hold several (see the module docstring). With ``skip_malformed`` malformed
    lines are counted in one warning and skipped instead of raising ``CorpusFormatError``.
    """
    path = Path(path)
    if not path.is_file():
        raise CamabcError(f"{path}: transcript file not found")
    name = transcript_format(path, format)
    transcript = LOADERS[name](path, Path(media) if media is not None else None, conversation,
                               skip_malformed)
    if not transcript.words:
        raise CorpusFormatError(f"{path}: the transcript has no words")
    return attrs.evolve(transcript, words=tuple(sorted(transcript.words, key=lambda w: (w.start, w.end))))
