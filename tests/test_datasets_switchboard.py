"""Switchboard reader and metadata on a small fake LDC tree built in each test."""

from __future__ import annotations

import logging
import re
from pathlib import Path

import pytest

from camabc_core.errors import CorpusFormatError, MediaError
from camabc_core.media import AudioSource, shorten_sphere_coding
from camabc_core.records import Word
from camabc_plugins.datasets.switchboard import SwitchboardReader, is_backchannel_text
from camabc_plugins.datasets.switchboard_metadata import SwitchboardSpeaker, read_switchboard_metadata

# Side A talks from 0.5 s to 4.6 s with a 0.6 s pause at 1.8 s, stops, then talks from 9.0 s.
SIDE_A = [
    ("0.000000", "0.500000", "[silence]"),
    ("0.500000", "0.700000", "so"),
    ("0.700000", "0.800000", "i"),
    ("0.800000", "1.100000", "went"),
    ("1.100000", "1.200000", "to"),
    ("1.200000", "1.300000", "the"),
    ("1.300000", "1.800000", "store"),
    ("1.800000", "2.400000", "[silence]"),
    ("2.400000", "2.600000", "and"),
    ("2.600000", "3.000000", "bought"),
    ("3.000000", "3.400000", "some"),
    ("3.400000", "3.800000", "milk"),
    ("3.800000", "4.000000", "and"),
    ("4.000000", "4.600000", "bread"),
    ("4.600000", "9.000000", "[silence]"),
    ("9.000000", "9.300000", "well"),
    ("9.300000", "11.000000", "anyway"),
]
# Side B: "uh-huh" in A's pause and "[laughter-yeah]" while A speaks (both backchannels), "uh" alone
# (a filler), "uh-huh" after A stopped, a turn of its own, and "right" lasting 1.2 s.
SIDE_B = [
    ("0.000000", "1.900000", "[silence]"),
    ("1.900000", "2.300000", "uh-huh"),
    ("2.300000", "2.600000", "[noise]"),
    ("2.600000", "3.200000", "[silence]"),
    ("3.200000", "3.400000", "[laughter-yeah]"),
    ("3.400000", "4.000000", "[silence]"),
    ("4.000000", "4.100000", "uh"),
    ("4.100000", "5.200000", "[silence]"),
    ("5.200000", "5.600000", "uh-huh"),
    ("5.600000", "6.300000", "[silence]"),
    ("6.300000", "6.600000", "yeah"),
    ("6.600000", "6.800000", "i"),
    ("6.800000", "7.100000", "think"),
    ("7.100000", "7.400000", "so"),
    ("7.400000", "9.500000", "[silence]"),
    ("9.500000", "10.700000", "right"),
]
CALLER_TABLE = (
    '1000,  32,  "N",  "FEMALE",  1954,  "SOUTH MIDLAND",  1,  0,  "CASH",  15,  "N",  "",  2,  "DN2"\n'
    '1001,  40,  "N",  "MALE",  1969,  "NORTHERN",  2,  0,  "CASH",  15,  "N",  "",  0,  "DN1"\n'
)
CONVERSATION_TABLE = "2001,Y,1000,1001,303,0,910304,1218,1222, ,\n"


def write_word_file(folder: Path, name: str, rows: list[tuple[str, str, str]]) -> Path:
    """Write rows as MS-State lines: ``sw2001A-ms98-a-0001 0.000000 0.500000 [silence]``."""
    path = folder / name
    side_id = name.split("-")[0]
    lines = [f"{side_id}-ms98-a-{index:04d} {start} {end} {word}"
             for index, (start, end, word) in enumerate(rows, start=1)]
    path.write_text("\n".join(lines) + "\n", encoding="latin-1")
    return path


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    words = tmp_path / "swb_ms98_transcriptions" / "20" / "2001"
    words.mkdir(parents=True)
    write_word_file(words, "sw2001A-ms98-a-word.text", SIDE_A)
    write_word_file(words, "sw2001B-ms98-a-word.text", SIDE_B)
    (tmp_path / "audio").mkdir()
    (tmp_path / "audio" / "sw02001.sph").write_bytes(b"NIST_1A\n   1024\n")
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "caller_tab.csv").write_text(CALLER_TABLE, encoding="latin-1")
    (tmp_path / "docs" / "conv_tab.csv").write_text(CONVERSATION_TABLE, encoding="latin-1")
    return tmp_path


def test_switchboard_conversation_fields(corpus):
    [conversation] = SwitchboardReader().load(corpus)

    assert conversation.id == "sw2001"
    assert conversation.speakers == ("A", "B")
    assert conversation.channel_speakers == ("A", "B")
    assert conversation.audio_path == corpus / "audio" / "sw02001.sph"
    assert conversation.duration == pytest.approx(11.0)


def test_switchboard_backchannels_follow_rule(corpus):
    [conversation] = SwitchboardReader().load(corpus)
    events = [(e.listener, e.start, e.end, e.category, e.text) for e in conversation.backchannels]

    assert events == [("B", 1.9, 2.3, "BC", "uh-huh"), ("B", 3.2, 3.4, "BC", "yeah")]


def test_switchboard_words_exclude_backchannels_and_noise(corpus):
    [conversation] = SwitchboardReader().load(corpus)
    side_b = [word.text for word in conversation.words if word.speaker == "B"]
    side_a = [word.text for word in conversation.words if word.speaker == "A"]

    assert side_b == ["uh", "uh-huh", "yeah", "i", "think", "so", "right"]
    assert side_a == ["so", "i", "went", "to", "the", "store", "and", "bought", "some", "milk", "and",
                      "bread", "well", "anyway"]


def test_switchboard_rule_options(corpus):
    # Bridging only 0.5 s pauses splits A's turn at 1.8-2.4 s, and without an end tolerance the
    # "uh-huh" (1.9-2.3 s) no longer lies inside A's first turn (0.5-1.8 s).
    [conversation] = SwitchboardReader(partner_pause_seconds=0.5, end_tolerance_seconds=0.0).load(corpus)

    assert [e.start for e in conversation.backchannels] == [3.2]


def test_switchboard_max_seconds_option(corpus):
    # "right" (9.5-10.7 s) lies inside A's last turn and passes once 1.2 s is short enough.
    [conversation] = SwitchboardReader(max_seconds=1.5).load(corpus)

    assert [e.text for e in conversation.backchannels] == ["uh-huh", "yeah", "right"]


@pytest.mark.parametrize("words, expected", [
    (["uh-huh"], True),
    (["uh", "yeah"], True),
    (["i", "see"], True),
    (["oh", "i", "see"], True),
    (["uh"], False),
    (["yeah", "i", "think"], False),
])
def test_switchboard_backchannel_tokens(words, expected):
    assert is_backchannel_text(words) is expected


def test_switchboard_malformed_line(corpus):
    path = next(corpus.rglob("sw2001A-ms98-a-word.text"))
    lines = path.read_text(encoding="latin-1").splitlines()
    lines[2] = "sw2001A-ms98-a-0003 0.7 i"
    path.write_text("\n".join(lines) + "\n", encoding="latin-1")

    with pytest.raises(CorpusFormatError, match=re.escape(f"{path}:3: expected")):
        SwitchboardReader().load(corpus)

    reader = SwitchboardReader(skip_malformed=True)
    [conversation] = reader.load(corpus)
    assert reader.skipped_lines == 1
    assert [word.text for word in conversation.words if word.speaker == "A"][:3] == ["so", "went", "to"]


def test_switchboard_missing_side(corpus, caplog):
    folder = corpus / "swb_ms98_transcriptions" / "20" / "2002"
    folder.mkdir()
    write_word_file(folder, "sw2002A-ms98-a-word.text", SIDE_A)

    with pytest.raises(CorpusFormatError, match="sw2002: no word alignment for side B"):
        SwitchboardReader().load(corpus)

    reader = SwitchboardReader(skip_malformed=True)
    with caplog.at_level(logging.WARNING):
        conversations = reader.load(corpus)
    assert [c.id for c in conversations] == ["sw2001"]
    assert reader.skipped_conversations == ["sw2002"]
    assert "sw2002" in caplog.text


def test_switchboard_metadata(corpus):
    metadata = read_switchboard_metadata(corpus)

    assert metadata == {
        "sw2001": (
            SwitchboardSpeaker("1000", "female", 1954, "SOUTH MIDLAND", 1, 37),
            SwitchboardSpeaker("1001", "male", 1969, "NORTHERN", 2, 22),
        )
    }


def test_switchboard_metadata_quoted_and_header(tmp_path):
    (tmp_path / "caller_tab.csv").write_text(
        "caller_no,pin,target,sex,birth_year,dialect_area,education\n"
        '1002, 10, "Y", "FEMALE", 0, "WESTERN", 9\n',
        encoding="latin-1",
    )
    (tmp_path / "conv_tab.csv").write_text('2005, "Y", 1002, 1003, 317\n', encoding="latin-1")
    metadata = read_switchboard_metadata(tmp_path)

    # Birth year 0 and education 9 mean unknown; caller 1003 is missing from caller_tab.csv.
    assert metadata["sw2005"] == (
        SwitchboardSpeaker("1002", "female", None, "WESTERN", None, None),
        SwitchboardSpeaker("1003", "", None, "", None, None),
    )


def test_switchboard_metadata_missing_table(tmp_path):
    with pytest.raises(CorpusFormatError, match=re.escape("caller_tab.csv or caller.tab not found")):
        read_switchboard_metadata(tmp_path)


SHORTEN_HEADER = ("NIST_1A\n   1024\nchannel_count -i 2\nsample_count -i 8000\nsample_rate -i 8000\n"
                  "sample_n_bytes -i 1\nsample_coding -s26 ulaw,embedded-shorten-v2.00\nend_head\n")


def write_shorten_sphere(path: Path) -> Path:
    """Write a SPHERE header that declares shorten coding, padded to 1024 bytes, and some samples."""
    path.write_bytes(SHORTEN_HEADER.encode("ascii").ljust(1024, b" ") + bytes(4000))
    return path


def test_shorten_sphere_detected(tmp_path):
    shorten = write_shorten_sphere(tmp_path / "sw02001.sph")
    plain = tmp_path / "plain.sph"
    plain.write_bytes(SHORTEN_HEADER.replace("ulaw,embedded-shorten-v2.00", "ulaw").encode().ljust(1024))
    not_sphere = tmp_path / "x.sph"
    not_sphere.write_bytes(b"RIFF" + bytes(100))

    assert shorten_sphere_coding(shorten) == "ulaw,embedded-shorten-v2.00"
    assert shorten_sphere_coding(plain) is None
    assert shorten_sphere_coding(not_sphere) is None


def test_shorten_sphere_decoding_names_sph2pipe(tmp_path):
    path = write_shorten_sphere(tmp_path / "sw02001.sph")

    expected = (f"{path}: SPHERE samples are compressed with shorten (ulaw,embedded-shorten-v2.00), which "
                f"FFmpeg cannot decode; decompress the corpus first (e.g. sph2pipe -f wav -p sw02001.sph "
                f"sw02001.wav)")
    with pytest.raises(MediaError, match=re.escape(expected)):
        AudioSource.from_file(path)


def test_switchboard_warns_about_shorten_audio(corpus, caplog):
    write_shorten_sphere(corpus / "audio" / "sw02001.sph")

    with caplog.at_level(logging.WARNING):
        SwitchboardReader().load(corpus)

    assert "swbd: 1 .sph file(s) are shorten-compressed" in caplog.text
    assert "sph2pipe -f wav -p sw02001.sph sw02001.wav" in caplog.text


def test_switchboard_prefers_converted_wav(corpus, caplog):
    write_shorten_sphere(corpus / "audio" / "sw02001.sph")
    (corpus / "audio" / "sw02001.wav").write_bytes(b"RIFF")

    with caplog.at_level(logging.WARNING):
        [conversation] = SwitchboardReader().load(corpus)

    assert conversation.audio_path == corpus / "audio" / "sw02001.wav"
    assert "shorten" not in caplog.text


def test_switchboard_audio_dir_option(corpus, tmp_path):
    converted = tmp_path / "converted"
    converted.mkdir()
    (converted / "sw02001.wav").write_bytes(b"RIFF")

    [conversation] = SwitchboardReader(audio_dir=converted).load(corpus)
    assert conversation.audio_path == converted / "sw02001.wav"

    with pytest.raises(CorpusFormatError, match=re.escape(f"{tmp_path / 'nowhere'}: audio folder not found")):
        SwitchboardReader(audio_dir=tmp_path / "nowhere").load(corpus)


def test_switchboard_reversed_span_kept_at_end(corpus):
    path = next(corpus.rglob("sw2001A-ms98-a-word.text"))
    lines = path.read_text(encoding="latin-1").splitlines()
    lines[3] = "sw2001A-ms98-a-0004 1.100000 0.900000 went"
    path.write_text("\n".join(lines) + "\n", encoding="latin-1")
    reader = SwitchboardReader()
    [conversation] = reader.load(corpus)

    assert Word("A", 0.9, 0.9, "went") in conversation.words
    assert reader.reversed_spans == [f"{path}:4"]
