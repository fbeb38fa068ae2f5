"""BACKSpeech reader on real annotation excerpts (tests/data/backspeech, CC BY-NC-SA 4.0, ETRI)."""

from __future__ import annotations

import logging
import re
import shutil
from collections import Counter
from pathlib import Path

import pytest

from camabc_core.errors import CorpusFormatError
from camabc_core.labels import build_label_scheme
from camabc_plugins.datasets.backspeech import BackspeechReader, clean_speech

DATA = Path(__file__).parent / "data" / "backspeech"


def count_tags_independently(folder: Path) -> Counter:
    """Count ``(BC/category)`` marks with one regular expression over the raw text of every file."""
    counts: Counter = Counter()
    for path in folder.glob("*.csv"):
        counts.update(re.findall(r"\(BC/([^()]*)\)", path.read_text(encoding="utf-8")))
    return counts


@pytest.fixture(scope="module")
def conversations():
    return {conversation.id: conversation for conversation in BackspeechReader().load(DATA)}


def speaker_words(conversation, speaker, start, end):
    return [word for word in conversation.words
            if word.speaker == speaker and start <= word.start and word.end <= end]


def test_backspeech_counts_match_regex_count(conversations):
    expected = count_tags_independently(DATA / "annotation")
    found = Counter(event.category for c in conversations.values() for event in c.backchannels)

    assert found == expected
    assert sum(expected.values()) == 62  # 43 + 8 + 11 tags in the three files


def test_backspeech_dual_number_form_keeps_spoken(conversations):
    # Line 3: "그니까 이제/ 이제 미국사람들한테 미국 좋아하냐고 물어보면 (70)/(칠십) 몇 퍼센트 ..."
    words = speaker_words(conversations["-8Cus1JW39I"], "speaker#B", 1.995, 6.996)
    texts = [word.text for word in words]

    assert texts == ["그니까", "이제", "이제", "미국사람들한테", "미국", "좋아하냐고", "물어보면", "칠십",
                     "몇", "퍼센트", "정도", "답변을", "하는데"]
    # 39 characters in the utterance, 25 of them before "칠십"; the span is 5.001 s.
    spoken = words[7]
    assert spoken.start == pytest.approx(1.995 + 5.001 * 25 / 39)
    assert spoken.end == pytest.approx(1.995 + 5.001 * 27 / 39)
    assert words[0].start == pytest.approx(1.995)
    assert words[-1].end == pytest.approx(6.996)


def test_backspeech_dual_form_without_slash():
    assert clean_speech("몇 (10명)(십 명)까지") == ["몇", "십", "명까지"]
    assert clean_speech("(89%)/(팔십 구 퍼센트)") == ["팔십", "구", "퍼센트"]


def test_backspeech_tag_inside_overlap_marks(conversations):
    conversation = conversations["-8Cus1JW39I"]
    # Line 9: "26.708  27.132  speaker#A  /os2 [그러니까.(BC/affirmative)] /oe"
    event = next(e for e in conversation.backchannels if e.start == pytest.approx(26.708))

    assert event.listener == "speaker#A"
    assert event.end == pytest.approx(27.132)
    assert event.category == "affirmative"
    assert event.text == "그러니까."
    assert speaker_words(conversation, "speaker#A", 26.708, 27.132) == []


def test_backspeech_speech_inside_overlap_marks(conversations):
    # Line 6: "10.536  11.271  speaker#A  /os2 좋아한다고. /oe"
    words = speaker_words(conversations["-8Cus1JW39I"], "speaker#A", 10.536, 11.271)

    assert [(word.text, word.start, word.end) for word in words] == [("좋아한다고.", 10.536, 11.271)]


def test_backspeech_tag_text_not_in_words(conversations):
    for conversation in conversations.values():
        for word in conversation.words:
            assert "BC/" not in word.text
            assert not set("[]()/\r") & set(word.text), word


def test_backspeech_three_speakers(conversations):
    conversation = conversations["ZGYNSoIqlt8"]

    assert conversation.speakers == ("speaker#A", "speaker#B", "speaker#C")
    assert {event.listener for event in conversation.backchannels} == {"speaker#B"}
    assert len(conversation.backchannels) == 11
    # Line 4: "10.062  10.428  speaker#C  /os1 예. 어/ /oe" is speech, not a tag.
    assert [word.text for word in speaker_words(conversation, "speaker#C", 10.062, 10.428)] == ["예.", "어"]


def test_backspeech_tag_without_brackets(conversations):
    conversation = conversations["C6asEGBwvhQ"]
    # Line 127 of the original file: "450.524  451.230  speaker#B  으음.(BC/continuer)"
    event = next(e for e in conversation.backchannels if e.start == pytest.approx(450.524))

    assert event.listener == "speaker#B"
    assert event.end == pytest.approx(451.23)
    assert event.category == "continuer"
    assert event.text == "으음."


def test_backspeech_categories_map_to_four_classes():
    scheme = build_label_scheme("four_class", BackspeechReader.default_category_map)

    assert scheme.class_id("continuer") == 1
    assert scheme.class_id("understanding") == 2
    for empathy in ("assessment", "affirmative", "request confirmation", "positive surprise",
                    "negative surprise"):
        assert scheme.class_id(empathy) == 3, empathy


def write_annotation(tmp_path: Path, lines: list[str]) -> Path:
    root = tmp_path / "corpus"
    (root / "annotation").mkdir(parents=True)
    path = root / "annotation" / "test.csv"
    path.write_text("\r\n".join(lines) + "\r\n", encoding="utf-8")
    return path


GOOD_LINES = [
    "0.000\t2.000\tspeaker#A\t오늘 날씨가 좋네요.",
    "1.000\t1.300\tspeaker#B\t[네.(BC/continuer)]",
]


def test_backspeech_tag_among_speech_interpolated(tmp_path):
    # 3 + 2 + 3 characters over 3 s: the tag "네." covers characters 3-5 of 8.
    path = write_annotation(tmp_path, ["0.0\t3.0\tspeaker#A\t그래서 [네.(BC/continuer)] 말이죠"])
    conversation = BackspeechReader().load(path.parent.parent)[0]
    [event] = conversation.backchannels

    assert [word.text for word in conversation.words] == ["그래서", "말이죠"]
    assert event.start == pytest.approx(3.0 * 3 / 8)
    assert event.end == pytest.approx(3.0 * 5 / 8)
    assert conversation.words[1].start == pytest.approx(3.0 * 5 / 8)


def test_backspeech_empty_tag_spans_utterance(tmp_path):
    path = write_annotation(tmp_path, ["1.0\t1.5\tspeaker#B\t/os1 [(BC/continuer)] /oe"])
    [event] = BackspeechReader().load(path.parent.parent)[0].backchannels

    assert (event.start, event.end, event.text) == (1.0, 1.5, "")


def test_backspeech_malformed_line_names_file_and_line(tmp_path):
    path = write_annotation(tmp_path, [*GOOD_LINES, "abc\t3.0\tspeaker#A\t그래요."])

    with pytest.raises(CorpusFormatError, match=re.escape(f"{path}:3")):
        BackspeechReader().load(path.parent.parent)


def test_backspeech_empty_text_cell(tmp_path):
    # One line with an empty text column, one where the tab before it is missing too.
    path = write_annotation(tmp_path, [*GOOD_LINES, "1.0\t2.0\tspeaker#A", "3.0\t4.0\tspeaker#B\t"])
    conversation = BackspeechReader().load(path.parent.parent)[0]

    assert [word.text for word in conversation.words] == ["오늘", "날씨가", "좋네요."]
    assert conversation.speakers == ("speaker#A", "speaker#B")


@pytest.mark.parametrize("bad_line, reason", [
    ("1.0\t2.0", "expected 4 tab-separated fields"),
    ("-2.0\t1.0\tspeaker#A\t네.", "negative time"),
    ("1.0\t2.0\t\t네.", "empty speaker"),
    ("1.0\t2.0\tspeaker#A\t[네.(BC/continuer)", "invalid backchannel tag"),
])
def test_backspeech_malformed_line_reasons(tmp_path, bad_line, reason):
    path = write_annotation(tmp_path, [bad_line, *GOOD_LINES])

    with pytest.raises(CorpusFormatError, match=re.escape(f"{path}:1: {reason}")):
        BackspeechReader().load(path.parent.parent)


def test_backspeech_skip_malformed_counts(tmp_path, caplog):
    path = write_annotation(tmp_path, ["x\t1.0\tspeaker#A\t네.", *GOOD_LINES, "1.0\t2.0"])
    reader = BackspeechReader(skip_malformed=True)

    with caplog.at_level(logging.WARNING):
        conversation = reader.load(path.parent.parent)[0]

    assert reader.skipped_lines == 2
    assert "skipped 2 malformed line(s)" in caplog.text
    assert f"{path}:1" in caplog.text
    assert len(conversation.words) == 3
    assert len(conversation.backchannels) == 1


def test_backspeech_media_lookup(tmp_path):
    root = tmp_path / "corpus"
    shutil.copytree(DATA, root)
    (root / "audio").mkdir()
    (root / "audio" / "ZGYNSoIqlt8.wav").write_bytes(b"RIFF")
    conversations = {c.id: c for c in BackspeechReader().load(root)}

    assert conversations["ZGYNSoIqlt8"].audio_path == root / "audio" / "ZGYNSoIqlt8.wav"
    assert conversations["-8Cus1JW39I"].audio_path is None
    assert conversations["ZGYNSoIqlt8"].video_path is None
