"""STM/RTTM parsers and the ``stm`` reader on the pyannote sample call (tests/data/pyannote_call, MIT)."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from camabc_core.errors import CorpusFormatError
from camabc_core.records import BackchannelEvent
from camabc_plugins.datasets.stm import StmReader, Turn, Utterance, map_turn_speakers, read_rttm, read_stm

DATA = Path(__file__).parent / "data" / "pyannote_call"


def test_read_rttm_sample():
    turns = read_rttm(DATA / "sample.rttm")

    assert len(turns) == 10
    assert turns[0].speaker == "speaker90"
    assert turns[0].file_id == "sample"
    assert turns[0].start == pytest.approx(6.69)
    assert turns[0].end == pytest.approx(6.69 + 0.43)
    assert turns[7].speaker == "speaker91"
    assert turns[7].start == pytest.approx(18.15)
    assert turns[7].end == pytest.approx(18.59)


def test_read_stm_sample():
    utterances = read_stm(DATA / "sample.stm")

    assert len(utterances) == 13
    assert utterances[0] == Utterance("Diane", 6.68, 7.16, "Hello?", "sample", "1")
    assert utterances[-1].text == "Oh, I don't hear that in New Jersey now."


def test_rttm_speakers_map_to_stm_names():
    mapping = map_turn_speakers(read_rttm(DATA / "sample.rttm"), read_stm(DATA / "sample.stm"))

    assert mapping == {"speaker90": "Diane", "speaker91": "Sheila"}


def test_stm_reader_labels_short_turn(tmp_path):
    root = tmp_path / "call"
    shutil.copytree(DATA, root)
    (root / "sample.wav").write_bytes(b"RIFF")
    [conversation] = StmReader().load(root)

    # Sheila's 0.44 s RTTM turn at 18.15 s lies inside Diane's 18.05-21.49 s turn; the STM has no
    # words for it. Every other turn is longer than 1 s or outside the other speaker's turns.
    assert conversation.backchannels == (BackchannelEvent("Sheila", 18.15, pytest.approx(18.59), "BC", ""),)
    assert conversation.speakers == ("Diane", "Sheila")
    assert conversation.audio_path == root / "sample.wav"
    assert conversation.duration == pytest.approx(30.0)


def test_stm_reader_interpolates_words():
    [conversation] = StmReader().load(DATA)
    # "Oh, hello." spans 8.436-8.876 s; "Oh," has 3 of its 9 characters.
    oh, hello = [word for word in conversation.words if 8.4 <= word.start < 8.9]

    assert (oh.speaker, oh.text, oh.start) == ("Diane", "Oh,", 8.436)
    assert oh.end == pytest.approx(8.436 + 0.44 * 3 / 9)
    assert hello.text == "hello."
    assert hello.end == pytest.approx(8.876)
    assert len(conversation.words) == sum(len(u.text.split()) for u in read_stm(DATA / "sample.stm"))


def test_stm_reader_without_rttm(tmp_path):
    shutil.copy(DATA / "sample.stm", tmp_path)
    [conversation] = StmReader().load(tmp_path / "sample.stm")

    # No STM utterance of 1 s or less lies inside an utterance of the other speaker.
    assert conversation.backchannels == ()
    assert conversation.source == "stm"


def test_stm_reader_backchannel_words_removed(tmp_path):
    (tmp_path / "call.stm").write_text(
        "call 1 A 0.0 4.0 so we drove all the way to the coast\n"
        "call 1 B 1.5 1.9 uh-huh\n"
        "call 1 B 4.2 6.0 that sounds like a long drive\n",
        encoding="utf-8",
    )
    [conversation] = StmReader().load(tmp_path)

    assert conversation.backchannels == (BackchannelEvent("B", 1.5, 1.9, "BC", "uh-huh"),)
    assert "uh-huh" not in [word.text for word in conversation.words]
    assert len(conversation.words) == 9 + 6

    strict = StmReader(max_seconds=0.3).load(tmp_path)[0]
    assert strict.backchannels == ()


@pytest.mark.parametrize("name, content, reason", [
    ("bad.stm", "call 1 A 0.0\n", "expected 'file channel speaker start end"),
    ("bad.stm", "call 1 A x 2.0 hello\n", "times must be seconds"),
    ("bad.stm", "call 1 A 0.0 1.0 <o,f0 hello\n", "unclosed <label>"),
    ("bad.rttm", "SPEAKER call 1 0.5\n", "expected at least 8 fields"),
    ("bad.rttm", "SPEAKER call 1 -0.5 1 <NA> <NA> A <NA> <NA>\n", "negative time"),
])
def test_stm_malformed_line_names_file_and_line(tmp_path, name, content, reason):
    path = tmp_path / name
    path.write_text(";; comment\n" + content, encoding="utf-8")

    with pytest.raises(CorpusFormatError, match=re.escape(f"{path}:2: {reason}")):
        StmReader().load(tmp_path)


def test_stm_skip_malformed_counts(tmp_path):
    shutil.copy(DATA / "sample.stm", tmp_path)
    with (tmp_path / "sample.stm").open("a", encoding="utf-8") as handle:
        handle.write("sample 1 Diane 31.0\n")
    reader = StmReader(skip_malformed=True)
    [conversation] = reader.load(tmp_path)

    assert reader.skipped_lines == 1
    assert len(conversation.words) == 81


def test_stm_label_field_and_ignored_segments(tmp_path):
    path = tmp_path / "x.stm"
    path.write_text(
        "x 1 A 0.0 1.0 <o,f0,male> hello there\n"
        "x 1 inter_segment_gap 1.0 2.0\n"
        "x 1 B 2.0 3.0 ignore_time_segment_in_scoring\n"
        "x 1 B 3.0 4.0\n",
        encoding="utf-8",
    )

    assert read_stm(path) == [
        Utterance("A", 0.0, 1.0, "hello there", "x", "1"),
        Utterance("B", 3.0, 4.0, "", "x", "1"),
    ]


def test_turn_duration():
    assert Turn("A", 1.0, 2.5).duration == 1.5
