"""Faults that every corpus reader treats the same way: encodings, roots, empty corpora, time spans
and listeners without words (the policy in docs/datasets.md)."""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path

import pytest

from camabc_core.errors import CorpusFormatError
from camabc_core.records import BackchannelEvent, Word
from camabc_core.registry import get_registry
from camabc_plugins.datasets.backcast import BACKCHANNEL_COLUMNS, WORD_COLUMNS, BackcastReader
from camabc_plugins.datasets.backspeech import BackspeechReader
from camabc_plugins.datasets.manifest import ManifestReader
from camabc_plugins.datasets.stm import StmReader, read_rttm
from camabc_plugins.datasets.switchboard import SwitchboardReader

# "그래요." in CP949, the usual encoding of Korean text saved by Windows. Its first byte, 0xb1, is a
# UTF-8 continuation byte and cannot start a character.
CP949_TEXT = "그래요.".encode("cp949")
BACKSPEECH_CP949_LINE = b"2.0\t3.0\tspeaker#A\t" + CP949_TEXT
BACKCAST_CP949_ROW = b"3\t1\t1\tAH1\t3.0\t3.4\t" + CP949_TEXT + b"\t[]"
STM_CP949_LINE = b"call 1 B 3.0 4.0 " + CP949_TEXT


def write_lines(path: Path, lines: list[str | bytes]) -> Path:
    """Write ``lines`` with LF endings; ``bytes`` items are written as they are (any encoding)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    encoded = [line if isinstance(line, bytes) else line.encode("utf-8") for line in lines]
    path.write_bytes(b"\n".join(encoded) + b"\n")
    return path


def backspeech_corpus(root: Path, extra: list[str | bytes]) -> Path:
    """Return the annotation file: A speaks at 0-2 s, B backchannels "네." at 1.0-1.3 s, then ``extra``."""
    return write_lines(root / "annotation" / "call.csv", [
        "0.0\t2.0\tspeaker#A\t오늘 날씨가 좋네요.", "1.0\t1.3\tspeaker#B\t[네.(BC/continuer)]", *extra,
    ])


def backcast_corpus(root: Path, extra_words: list[str | bytes], backchannel_rows: list[str] | None = None
                    ) -> Path:
    """Return word.tsv of one dialogue: two words of AH1, one of AH2, then ``extra_words``."""
    folder = root / "program" / "dialogue"
    rows = backchannel_rows if backchannel_rows is not None else ["1\tAH2\t0.9\t1.1\tCONTINUER\t네\t1\t1\t2"]
    write_lines(folder / "backchannel.tsv", ["\t".join(BACKCHANNEL_COLUMNS), *rows])
    return write_lines(folder / "word.tsv", [
        "\t".join(WORD_COLUMNS),
        "1\t1\t1\tAH1\t0.5\t0.9\t안녕하세요\t[]",
        "1\t1\t2\tAH1\t1.0\t1.4\t오늘은\t[1]",
        "2\t1\t1\tAH2\t2.0\t2.4\t네\t[]",
        *extra_words,
    ])


def manifest_line(listener: str = "B", start: float = 1.5, end: float = 1.8, identifier: str = "s1") -> str:
    return json.dumps({
        "id": identifier,
        "words": [{"speaker": "A", "start": 0.5, "end": 0.8, "text": "안녕하세요"},
                  {"speaker": "B", "start": 2.0, "end": 2.3, "text": "네"}],
        "backchannels": [{"listener": listener, "start": start, "end": end, "category": "CONTINUER"}],
    }, ensure_ascii=False)


def stm_corpus(root: Path, extra: list[str | bytes]) -> Path:
    return write_lines(root / "call.stm", ["call 1 A 0.0 3.0 so i went to the store", *extra])


# --- Files that are not UTF-8 -------------------------------------------------------------------------


# The column is the 1-based byte of the first bad byte: it follows the 18 bytes "2.0\t3.0\tspeaker#A\t",
# the 18 bytes "3\t1\t1\tAH1\t3.0\t3.4\t", the 8 bytes '{"id": "' and the 17 bytes "call 1 B 3.0 4.0 ".
@pytest.mark.parametrize("reader_class, build, line_number, column", [
    (BackspeechReader, lambda root: backspeech_corpus(root, [BACKSPEECH_CP949_LINE]), 3, 19),
    (BackcastReader, lambda root: backcast_corpus(root, [BACKCAST_CP949_ROW]), 5, 19),
    (ManifestReader, lambda root: write_lines(root / "corpus.jsonl", [
        manifest_line(), b'{"id": "' + CP949_TEXT + b'", "words": [], "backchannels": []}']), 2, 9),
    (StmReader, lambda root: stm_corpus(root, [STM_CP949_LINE]), 2, 18),
])
def test_non_utf8_line_names_file_and_line(tmp_path, reader_class, build, line_number, column):
    path = build(tmp_path)
    kwargs = {"check_media": False} if reader_class is ManifestReader else {}

    with pytest.raises(CorpusFormatError) as raised:
        reader_class(**kwargs).load(tmp_path)

    message = str(raised.value)
    expected = f"{path}:{line_number}: not valid UTF-8 (byte 0xb1 at byte {column} of the line)"
    assert message.startswith(expected)
    assert "Re-save the file as UTF-8" in message
    assert f"iconv -f CP949 -t UTF-8 {path.name}" in message


@pytest.mark.parametrize("reader_class, build, kept_words", [
    (BackspeechReader, lambda root: backspeech_corpus(root, [BACKSPEECH_CP949_LINE]), 3),
    (BackcastReader, lambda root: backcast_corpus(root, [BACKCAST_CP949_ROW]), 3),
    (StmReader, lambda root: stm_corpus(root, [STM_CP949_LINE]), 6),
])
def test_non_utf8_line_skipped_as_malformed(tmp_path, caplog, reader_class, build, kept_words):
    path = build(tmp_path)
    reader = reader_class(skip_malformed=True)

    with caplog.at_level(logging.WARNING):
        [conversation] = reader.load(tmp_path)

    assert reader.skipped_lines == 1
    assert len(conversation.words) == kept_words
    assert f"skipped 1 malformed line(s); the first was {path}:" in caplog.text
    assert "not valid UTF-8" in caplog.text


def test_backcast_non_utf8_header_named(tmp_path):
    path = backcast_corpus(tmp_path, [])
    path.write_bytes(CP949_TEXT + b"\n" + path.read_bytes().split(b"\n", 1)[1])

    header = " ".join(WORD_COLUMNS)
    expected = f"{path}:1: expected the header {header!r}, found an empty line or one that is not valid UTF-8"
    with pytest.raises(CorpusFormatError, match=re.escape(expected)):
        BackcastReader(skip_malformed=True).load(tmp_path)


def test_manifest_non_utf8_line_skipped(tmp_path):
    write_lines(tmp_path / "corpus.jsonl", [b'{"id": "' + CP949_TEXT + b'"}', manifest_line()])
    reader = ManifestReader(skip_malformed=True)

    assert [conversation.id for conversation in reader.load(tmp_path)] == ["s1"]
    assert reader.skipped_lines == 1


def test_byte_order_mark_and_crlf_read(tmp_path):
    path = tmp_path / "annotation" / "call.csv"
    path.parent.mkdir()
    text = "0.0\t2.0\tspeaker#A\t좋네요.\r\n1.0\t1.3\tspeaker#B\t[네.(BC/continuer)]\r\n"
    path.write_bytes(b"\xef\xbb\xbf" + text.encode())
    [conversation] = BackspeechReader().load(tmp_path)

    assert conversation.words == (Word("speaker#A", 0.0, 2.0, "좋네요."),)
    assert conversation.speakers == ("speaker#A", "speaker#B")


# --- Roots ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["backspeech", "backcast", "manifest", "stm", "swbd"])
def test_missing_root_not_found(tmp_path, name):
    reader = get_registry().create("dataset", name)

    with pytest.raises(CorpusFormatError, match=re.escape(f"{tmp_path / 'nowhere'}: corpus root not found")):
        reader.load(tmp_path / "nowhere")


def test_backspeech_single_file_root(tmp_path):
    path = backspeech_corpus(tmp_path, [])
    (tmp_path / "audio").mkdir()
    (tmp_path / "audio" / "call.wav").write_bytes(b"RIFF")
    [conversation] = BackspeechReader().load(path)

    assert conversation.id == "call"
    assert len(conversation.words) == 3
    # Media are looked up beside annotation/, as when ROOT is the corpus folder.
    assert conversation.audio_path == tmp_path / "audio" / "call.wav"


def test_backcast_single_file_root(tmp_path):
    path = backcast_corpus(tmp_path, [])

    [conversation] = BackcastReader().load(path)
    assert conversation.id == "dialogue"
    assert conversation.source == "program"
    assert len(conversation.words) == 3


@pytest.mark.parametrize("reader_class, name, expected", [
    (BackspeechReader, "notes.txt", "not a BACKSpeech annotation file"),
    (BackcastReader, "notes.txt", "not a BACKCast file"),
    (StmReader, "notes.txt", "not an .stm or .rttm file"),
    (SwitchboardReader, "sw2001A-ms98-a-word.text", "the swbd reader reads a folder"),
])
def test_wrong_single_file_root(tmp_path, reader_class, name, expected):
    path = write_lines(tmp_path / name, ["x"])

    with pytest.raises(CorpusFormatError, match=re.escape(f"{path}: {expected}")):
        reader_class().load(path)


# --- Empty corpora ------------------------------------------------------------------------------------


def test_empty_manifest_is_error(tmp_path):
    path = tmp_path / "corpus.jsonl"
    path.write_bytes(b"")

    expected = f"{path}: the manifest reader found no conversations"
    with pytest.raises(CorpusFormatError, match=re.escape(expected)):
        ManifestReader().load(path)


def test_all_lines_skipped_is_error(tmp_path):
    path = write_lines(tmp_path / "corpus.jsonl", ["{not json", "", "[]"])

    expected = f"{path}: the manifest reader found no conversations (2 malformed line(s) were skipped)"
    with pytest.raises(CorpusFormatError, match=re.escape(expected)):
        ManifestReader(skip_malformed=True).load(path)


def test_empty_stm_is_error(tmp_path):
    path = write_lines(tmp_path / "call.stm", [";; only a comment"])

    with pytest.raises(CorpusFormatError, match=re.escape(f"{path}: the stm reader found no conversations")):
        StmReader().load(path)


# --- Time spans ---------------------------------------------------------------------------------------


def test_backspeech_reversed_span_kept_at_end(tmp_path, caplog):
    path = backspeech_corpus(tmp_path, ["3.0\t2.5\tspeaker#A\t그래요."])
    reader = BackspeechReader()

    with caplog.at_level(logging.WARNING):
        [conversation] = reader.load(tmp_path)

    assert Word("speaker#A", 2.5, 2.5, "그래요.") in conversation.words
    assert reader.reversed_spans == [f"{path}:3"]
    assert f"1 span(s) end before they start; kept as zero-length at the end time: {path}:3" in caplog.text


def test_manifest_reversed_span_kept_at_end(tmp_path, caplog):
    path = write_lines(tmp_path / "corpus.jsonl", [manifest_line(start=1.8, end=1.5)])
    reader = ManifestReader()

    with caplog.at_level(logging.WARNING):
        [conversation] = reader.load(path)

    assert conversation.backchannels == (BackchannelEvent("B", 1.5, 1.5, "CONTINUER", ""),)
    assert reader.reversed_spans == [f"{path}:1 backchannels[0]"]
    assert f"kept as zero-length at the end time: {path}:1 backchannels[0]" in caplog.text


def test_stm_reversed_span_kept_at_end(tmp_path):
    path = stm_corpus(tmp_path, ["call 1 B 5.0 4.0 yes"])
    reader = StmReader()
    [conversation] = reader.load(tmp_path)

    assert Word("B", 4.0, 4.0, "yes") in conversation.words
    assert reader.reversed_spans == [f"{path}:2"]


def test_rttm_negative_duration_kept_at_end(tmp_path):
    path = write_lines(tmp_path / "call.rttm", ["SPEAKER call 1 2.0 -0.5 <NA> <NA> A <NA> <NA>"])

    [turn] = read_rttm(path)
    assert (turn.start, turn.end) == (1.5, 1.5)


@pytest.mark.parametrize("reader_class, build", [
    (BackspeechReader, lambda root: backspeech_corpus(root, ["1.0\tnan\tspeaker#A\t그래요."])),
    (BackspeechReader, lambda root: backspeech_corpus(root, ["1.0\tinf\tspeaker#A\t그래요."])),
    (BackcastReader, lambda root: backcast_corpus(root, ["3\t1\t1\tAH1\tnan\t3.4\t그래요.\t[]"])),
    (BackcastReader, lambda root: backcast_corpus(root, ["3\t1\t1\tAH1\t3.0\tinf\t그래요.\t[]"])),
    (StmReader, lambda root: stm_corpus(root, ["call 1 B 3.0 inf yes"])),
])
def test_non_finite_time_is_malformed(tmp_path, reader_class, build):
    path = build(tmp_path)
    line_number = len(path.read_text(encoding="utf-8").splitlines())

    expected = f"{path}:{line_number}: times must be finite seconds"
    with pytest.raises(CorpusFormatError, match=re.escape(expected)):
        reader_class().load(tmp_path)


@pytest.mark.parametrize("reader_class, build", [
    (BackspeechReader, lambda root: backspeech_corpus(root, ["-1.0\t2.0\tspeaker#A\t그래요."])),
    (BackcastReader, lambda root: backcast_corpus(root, ["3\t1\t1\tAH1\t-1.0\t3.4\t그래요.\t[]"])),
    (StmReader, lambda root: stm_corpus(root, ["call 1 B -1.0 2.0 yes"])),
])
def test_negative_time_is_malformed(tmp_path, reader_class, build):
    path = build(tmp_path)
    line_number = len(path.read_text(encoding="utf-8").splitlines())

    with pytest.raises(CorpusFormatError, match=re.escape(f"{path}:{line_number}: negative time")):
        reader_class().load(tmp_path)


# --- Listeners without words --------------------------------------------------------------------------


def test_backcast_listener_without_words_warned(tmp_path, caplog):
    backcast_corpus(tmp_path, [], ["1\tAH3\t0.9\t1.1\tCONTINUER\t네\t1\t1\t2"])

    with caplog.at_level(logging.WARNING):
        [conversation] = BackcastReader().load(tmp_path)

    assert conversation.speakers == ("AH1", "AH2", "AH3")
    assert ("backcast: 1 listener(s) give backchannels but have no words in their conversation: "
            "dialogue: AH3 (1 backchannel(s))") in caplog.text


def test_manifest_unlisted_listener_without_words_added(tmp_path, caplog):
    entry = json.loads(manifest_line(listener="C"))
    entry["speakers"] = ["A", "B"]
    path = write_lines(tmp_path / "corpus.jsonl", [json.dumps(entry)])

    with caplog.at_level(logging.WARNING):
        [conversation] = ManifestReader().load(path)

    assert conversation.speakers == ("A", "B", "C")
    assert ("manifest: 1 listener(s) give backchannels but have no words in their conversation: "
            "s1: C (1 backchannel(s))") in caplog.text


def test_listener_with_words_not_warned(tmp_path, caplog):
    path = write_lines(tmp_path / "corpus.jsonl", [manifest_line(listener="B")])

    with caplog.at_level(logging.WARNING):
        ManifestReader().load(path)

    assert "have no words" not in caplog.text
