"""Manifest (JSON Lines) reader: the documented format, validation errors and skipping."""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path

import pytest
from camabc_plugins.datasets.manifest import ManifestReader

from camabc_core.errors import CorpusFormatError
from camabc_core.records import BackchannelEvent, Word

SESSION = {
    "id": "session-001",
    "audio": "media/session-001.wav",
    "video": "media/session-001.mp4",
    "words": [
        {"speaker": "counsellor", "start": 1.2, "end": 1.5, "text": "요즘"},
        {"speaker": "counsellor", "start": 0.5, "end": 1.1, "text": "안녕하세요"},
        {"speaker": "client", "start": 2.0, "end": 2.4, "text": None},
    ],
    "backchannels": [{"listener": "client", "start": 1.6, "end": 1.9, "category": "CONTINUER", "text": "네"}],
}


def write_manifest(tmp_path: Path, entries: list, name: str = "corpus.jsonl") -> Path:
    path = tmp_path / name
    lines = [entry if isinstance(entry, str) else json.dumps(entry, ensure_ascii=False) for entry in entries]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_manifest_reads_documented_format(tmp_path):
    path = write_manifest(tmp_path, [SESSION])
    [conversation] = ManifestReader().load(path)

    assert conversation.id == "session-001"
    assert conversation.words == (
        Word("counsellor", 0.5, 1.1, "안녕하세요"),
        Word("counsellor", 1.2, 1.5, "요즘"),
        Word("client", 2.0, 2.4, ""),
    )
    assert conversation.backchannels == (BackchannelEvent("client", 1.6, 1.9, "CONTINUER", "네"),)
    assert conversation.speakers == ("counsellor", "client")
    assert conversation.audio_path == tmp_path / "media" / "session-001.wav"
    assert conversation.video_path == tmp_path / "media" / "session-001.mp4"
    assert conversation.channel_speakers is None


def test_manifest_folder_and_optional_keys(tmp_path):
    stereo = {"id": "call-7", "audio": "/data/call-7.wav", "channel_speakers": ["A", "B"],
              "speakers": ["A", "B"], "duration": 300, "words": [], "backchannels": []}
    write_manifest(tmp_path, [SESSION], "a.jsonl")
    write_manifest(tmp_path, [stereo], "b.jsonl")
    conversations = ManifestReader().load(tmp_path)

    assert [c.id for c in conversations] == ["session-001", "call-7"]
    assert conversations[1].audio_path == Path("/data/call-7.wav")
    assert conversations[1].channel_speakers == ("A", "B")
    assert conversations[1].duration == 300.0
    assert conversations[1].video_path is None


WITHOUT_WORDS = {key: value for key, value in SESSION.items() if key != "words"}
REVERSED_WORD = {"speaker": "a", "start": 2.0, "end": 1.0}
TEXT_TIME_WORD = {"speaker": "a", "start": "1", "end": 2.0}
CATEGORY_MISSING = {"listener": "b", "start": 1, "end": 2}


@pytest.mark.parametrize("entry, reason", [
    ({**SESSION, "vidoe": "x.mp4"}, "conversation: unknown key(s) ['vidoe']"),
    (WITHOUT_WORDS, "conversation: missing key(s) ['words']"),
    ({**SESSION, "words": [REVERSED_WORD]}, "words[0]: end 1.0 s is before start"),
    ({**SESSION, "words": [TEXT_TIME_WORD]}, "words[0].start: expected a time"),
    ({**SESSION, "backchannels": [CATEGORY_MISSING]}, "backchannels[0]: missing key(s) ['category']"),
    ({**SESSION, "speakers": ["counsellor"]}, "speakers: ['client'] speak but are not listed"),
    ("{not json", "invalid JSON"),
])
def test_manifest_invalid_line_names_file_and_line(tmp_path, entry, reason):
    path = write_manifest(tmp_path, [{**SESSION, "id": "first"}, entry])

    with pytest.raises(CorpusFormatError, match=re.escape(f"{path}:2: {reason}")):
        ManifestReader().load(path)


def test_manifest_duplicate_id(tmp_path):
    path = write_manifest(tmp_path, [SESSION, SESSION])

    expected = f"{path}:2: duplicate id 'session-001', first used at {path}:1"
    with pytest.raises(CorpusFormatError, match=re.escape(expected)):
        ManifestReader().load(path)


def test_manifest_skip_malformed_counts(tmp_path, caplog):
    path = write_manifest(tmp_path, ["{not json", SESSION, {"id": "x"}])
    reader = ManifestReader(skip_malformed=True)

    with caplog.at_level(logging.WARNING):
        conversations = reader.load(path)

    assert [c.id for c in conversations] == ["session-001"]
    assert reader.skipped_lines == 2
    assert "skipped 2 malformed line(s)" in caplog.text
    assert "media file(s) not found" in caplog.text
