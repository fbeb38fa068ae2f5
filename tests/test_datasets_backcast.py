"""BACKCast reader on five real dialogue folders (tests/data/backcast, CC BY-NC-SA 4.0, ETRI)."""

from __future__ import annotations

import csv
import logging
import re
import shutil
from collections import Counter
from pathlib import Path

import pytest

from camabc_core.errors import CorpusFormatError
from camabc_core.labels import build_label_scheme
from camabc_core.records import Word
from camabc_plugins.datasets.backcast import BackcastReader

DATA = Path(__file__).parent / "data" / "backcast"
EMPTY_DIALOGUE = "EBS 공감시대/AHABF21000662_000"
REVERSED_DIALOGUE = "좋은 사람들 송정애 입니다/AHABD21000475_002"


def read_tsv(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle, delimiter="\t"))


@pytest.fixture(scope="module")
def reader_and_conversations():
    reader = BackcastReader()
    return reader, {conversation.id: conversation for conversation in reader.load(DATA)}


def test_backcast_loads_every_dialogue(reader_and_conversations):
    _, conversations = reader_and_conversations
    folders = sorted(path.parent for path in DATA.glob("*/*/word.tsv"))

    assert sorted(conversations) == sorted(folder.name for folder in folders)
    for folder in folders:
        conversation = conversations[folder.name]
        assert conversation.source == folder.parent.name
        assert len(conversation.words) == len(read_tsv(folder / "word.tsv"))
        assert len(conversation.backchannels) == len(read_tsv(folder / "backchannel.tsv"))


def test_backcast_categories_match_csv_count(reader_and_conversations):
    _, conversations = reader_and_conversations
    expected = Counter(row["category"] for path in DATA.glob("*/*/backchannel.tsv") for row in read_tsv(path))
    found = Counter(event.category for c in conversations.values() for event in c.backchannels)

    assert found == expected
    assert len(expected) == 7


def test_backcast_words_of_short_dialogue(reader_and_conversations):
    _, conversations = reader_and_conversations
    conversation = conversations[Path(EMPTY_DIALOGUE).name]

    assert conversation.words[0] == Word("AH0001", 0.5, 1.224, "@이름2")
    assert conversation.words[1] == Word("AH0001", 1.486, 1.928, "수원대")
    assert conversation.words[-1] == Word("AH0002", 4.655, 5.359, "안녕하세요.")
    assert conversation.backchannels == ()
    assert conversation.speakers == ("AH0001", "AH0002")
    assert conversation.duration == pytest.approx(5.359)
    assert conversation.audio_path is None


def test_backcast_backchannel_fields(reader_and_conversations):
    _, conversations = reader_and_conversations
    first_row = read_tsv(DATA / REVERSED_DIALOGUE / "backchannel.tsv")[0]
    event = conversations[Path(REVERSED_DIALOGUE).name].backchannels[0]

    assert (event.listener, event.start, event.end, event.category, event.text) == (
        first_row["speaker"], float(first_row["start"]), float(first_row["end"]), first_row["category"],
        first_row["text"],
    )


def test_backcast_reversed_span_kept_at_end(reader_and_conversations):
    reader, conversations = reader_and_conversations
    # word.tsv line 309: "22 34 15 AH0002 153.316 152.516 쫌" (start one second after end).
    words = [w for w in conversations[Path(REVERSED_DIALOGUE).name].words if w.start == 152.516]

    assert words == [Word("AH0002", 152.516, 152.516, "쫌")]
    assert reader.reversed_spans == [f"{DATA / REVERSED_DIALOGUE / 'word.tsv'}:309"]


def test_backcast_labels_four_class(reader_and_conversations):
    _, conversations = reader_and_conversations
    scheme = build_label_scheme("four_class", BackcastReader.default_category_map)
    classes = Counter(
        scheme.classes[scheme.class_id(event.category)]
        for conversation in conversations.values() for event in conversation.backchannels
    )
    raw = Counter(event.category for c in conversations.values() for event in c.backchannels)

    assert classes["Continuer"] == raw["CONTINUER"]
    assert classes["Understanding"] == raw["UNDERSTANDING"]
    assert classes["Empathy"] == sum(raw.values()) - raw["CONTINUER"] - raw["UNDERSTANDING"]


def copy_dialogue(tmp_path: Path, dialogue: str = EMPTY_DIALOGUE) -> Path:
    target = tmp_path / "corpus" / dialogue
    shutil.copytree(DATA / dialogue, target)
    return target


def replace_line(path: Path, line_number: int, new_line: str) -> None:
    lines = path.read_text(encoding="utf-8").split("\n")
    lines[line_number - 1] = new_line
    path.write_text("\n".join(lines), encoding="utf-8")


def test_backcast_malformed_row_names_file_and_line(tmp_path):
    folder = copy_dialogue(tmp_path)
    replace_line(folder / "word.tsv", 3, "1\t1\t2\tAH0001\tx\t1.928\t수원대\t[]")

    with pytest.raises(CorpusFormatError, match=re.escape(f"{folder / 'word.tsv'}:3: start/end must be")):
        BackcastReader().load(tmp_path / "corpus")


def test_backcast_wrong_field_count(tmp_path):
    folder = copy_dialogue(tmp_path)
    replace_line(folder / "word.tsv", 4, "1\t1\t3\tAH0001\t2.23")

    with pytest.raises(CorpusFormatError, match=re.escape(f"{folder / 'word.tsv'}:4: expected 8")):
        BackcastReader().load(tmp_path / "corpus")


def test_backcast_skip_malformed_counts(tmp_path, caplog):
    folder = copy_dialogue(tmp_path)
    replace_line(folder / "word.tsv", 3, "1\t1\t2\tAH0001\tx\t1.928\t수원대\t[]")
    replace_line(folder / "word.tsv", 4, "1\t1\t3\tAH0001\t-2.0\t2.472\t명예\t[]")
    reader = BackcastReader(skip_malformed=True)

    with caplog.at_level(logging.WARNING):
        conversation = reader.load(tmp_path / "corpus")[0]

    assert reader.skipped_lines == 2
    assert "skipped 2 malformed line(s)" in caplog.text
    assert [word.text for word in conversation.words] == ["@이름2", "교수", "모셨습니다.", "안녕하십니까?",
                                                        "안녕하세요."]


def test_backcast_header_checked(tmp_path):
    folder = copy_dialogue(tmp_path)
    replace_line(folder / "backchannel.tsv", 1, "bid\tspeaker\tstart")

    expected = re.escape(f"{folder / 'backchannel.tsv'}:1: expected the header")
    with pytest.raises(CorpusFormatError, match=expected):
        BackcastReader(skip_malformed=True).load(tmp_path / "corpus")


def test_backcast_empty_text_cell(tmp_path):
    folder = copy_dialogue(tmp_path)
    replace_line(folder / "word.tsv", 3, "1\t1\t2\tAH0001\t1.486\t1.928\t\t[]")
    conversation = BackcastReader().load(tmp_path / "corpus")[0]

    assert conversation.words[1] == Word("AH0001", 1.486, 1.928, "")


def test_backcast_finds_audio_in_dialogue_folder(tmp_path):
    folder = copy_dialogue(tmp_path)
    (folder / "audio.wav").write_bytes(b"RIFF")

    assert BackcastReader().load(tmp_path / "corpus")[0].audio_path == folder / "audio.wav"


def test_backcast_missing_corpus_is_clear(tmp_path):
    with pytest.raises(CorpusFormatError, match="no BACKCast dialogues"):
        BackcastReader().load(tmp_path)
