"""Manifest (JSON Lines) reader: the documented format, validation errors and skipping."""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path

import pytest

from camabc_core.errors import CorpusFormatError
from camabc_core.records import BackchannelEvent, Word
from camabc_plugins.datasets.manifest import ManifestReader

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
    """Write ``entries`` (objects or raw lines) and the two media files that SESSION names."""
    (tmp_path / "media").mkdir(exist_ok=True)
    for media in (SESSION["audio"], SESSION["video"]):
        (tmp_path / media).write_bytes(b"")
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
    # /data/call-7.wav does not exist here, so the media check is off.
    conversations = ManifestReader(check_media=False).load(tmp_path)

    assert [c.id for c in conversations] == ["session-001", "call-7"]
    assert conversations[1].audio_path == Path("/data/call-7.wav")
    assert conversations[1].channel_speakers == ("A", "B")
    assert conversations[1].duration == 300.0
    assert conversations[1].video_path is None


WITHOUT_WORDS = {key: value for key, value in SESSION.items() if key != "words"}
TEXT_TIME_WORD = {"speaker": "a", "start": "1", "end": 2.0}
CATEGORY_MISSING = {"listener": "b", "start": 1, "end": 2}


@pytest.mark.parametrize("entry, reason", [
    ({**SESSION, "vidoe": "x.mp4"}, "conversation: unknown key(s) ['vidoe']"),
    (WITHOUT_WORDS, "conversation: missing key(s) ['words']"),
    ({**SESSION, "words": [TEXT_TIME_WORD]}, "words[0].start: expected a time"),
    ({**SESSION, "backchannels": [CATEGORY_MISSING]}, "backchannels[0]: missing key(s) ['category']"),
    ({**SESSION, "speakers": ["counsellor"]}, "speakers: ['client'] speak but are not listed"),
    ({**SESSION, "audio": "media/missing.wav"}, "audio: media file"),
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


@pytest.mark.parametrize("line, column, message", [
    # The line ends after 23 characters in the middle of the list, so the error is at column 24.
    ('{"id": "s2", "words": [', 24, "Expecting value"),
    ('{"id": "x" "words": []}', 12, "Expecting ',' delimiter"),
    # Columns count characters, not bytes: "네" is one column.
    ('{"id": "네", }', 13, "Expecting property name enclosed in double quotes"),
])
def test_manifest_json_error_column(tmp_path, line, column, message):
    path = write_manifest(tmp_path, [SESSION, line])

    with pytest.raises(CorpusFormatError, match=re.escape(f"{path}:2:{column}: invalid JSON: {message}.")):
        ManifestReader().load(path)


def test_manifest_missing_media_names_line_and_path(tmp_path):
    path = write_manifest(tmp_path, [SESSION, {**SESSION, "id": "two", "video": "media/two.mp4"}])

    expected = (f"{path}:2: video: media file {tmp_path / 'media' / 'two.mp4'} not found (relative paths "
                f"start at the manifest's folder). Fix the path, set the reader option check_media: false")
    with pytest.raises(CorpusFormatError, match=re.escape(expected)):
        ManifestReader().load(path)

    unchecked = ManifestReader(check_media=False).load(path)
    assert unchecked[1].video_path == tmp_path / "media" / "two.mp4"


def test_manifest_media_relative_to_manifest_folder(tmp_path, monkeypatch):
    folder = tmp_path / "corpus"
    folder.mkdir()
    path = write_manifest(folder, [SESSION])
    # Another working directory must not change where relative media paths point.
    monkeypatch.chdir(tmp_path)
    [conversation] = ManifestReader().load(Path("corpus") / path.name)

    assert conversation.audio_path == Path("corpus") / "media" / "session-001.wav"
    assert conversation.audio_path.is_file()


def test_manifest_absolute_missing_media(tmp_path):
    missing = tmp_path / "elsewhere" / "call.wav"
    path = write_manifest(tmp_path, [{**SESSION, "audio": str(missing)}])

    expected = f"{path}:1: audio: media file {missing} not found."
    with pytest.raises(CorpusFormatError, match=re.escape(expected)):
        ManifestReader().load(path)
