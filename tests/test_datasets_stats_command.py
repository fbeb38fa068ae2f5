"""``camabc data stats`` on the committed BACKSpeech and pyannote excerpts."""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path

import pytest

from camabc_core.cli import main

DATA = Path(__file__).parent / "data"


def run_json(capsys, *arguments: str) -> dict:
    assert main(["data", "stats", *arguments, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_stats_json_backspeech(capsys):
    statistics = run_json(capsys, "backspeech", str(DATA / "backspeech"))
    raw_text = "".join(path.read_text(encoding="utf-8") for path in (DATA / "backspeech").rglob("*.csv"))
    tags = Counter(re.findall(r"\(BC/([^()]*)\)", raw_text))

    assert statistics["raw_categories"] == dict(tags)
    assert statistics["classes"] == {
        "NoBC": sum(tags.values()),
        "Continuer": tags["continuer"],
        "Understanding": tags["understanding"],
        "Empathy": sum(tags.values()) - tags["continuer"] - tags["understanding"],
    }
    assert sum(statistics["splits"].values()) == 2 * sum(tags.values())
    assert list(statistics["splits"]) == ["train", "validation", "test"]
    assert statistics["context_samples"] == statistics["words"]
    assert statistics["unmapped_categories"] == {}


def test_stats_binary_scheme_and_category_map(capsys):
    statistics = run_json(capsys, "backspeech", str(DATA / "backspeech"), "--label-scheme", "binary",
                          "--category-map", "continuer=BC")

    # The excerpt has 43 continuer, 17 affirmative, 1 assessment and 1 understanding tag (grep -o).
    assert statistics["classes"] == {"NoBC": 43, "BC": 43}
    assert statistics["unmapped_categories"] == {"affirmative": 17, "assessment": 1, "understanding": 1}


def test_stats_table_and_reader_option(capsys):
    arguments = ["data", "stats", "stm", str(DATA / "pyannote_call"), "--reader-option", "max_seconds=0.5"]
    assert main(arguments) == 0
    output = capsys.readouterr().out

    assert "NoBC" in output
    assert "CA samples" in output
    assert re.search(r"^\s+BC\s+1\s*$", output, flags=re.MULTILINE)


def test_stats_bad_key_value(capsys):
    with pytest.raises(SystemExit):
        main(["data", "stats"])
    assert main(["data", "stats", "stm", str(DATA / "pyannote_call"), "--reader-option", "oops"]) == 1
    assert "invalid --reader-option 'oops': expected KEY=VALUE" in capsys.readouterr().err


def write_jsonl(path: Path, categories: list[str]) -> Path:
    """Write one conversation in which B gives one backchannel of each category while A speaks."""
    words = [{"speaker": "A", "start": 0.5 + index, "end": 0.8 + index, "text": "말"} for index in range(7)]
    words.append({"speaker": "B", "start": 9.0, "end": 9.3, "text": "네"})
    events = [{"listener": "B", "start": 1.85 + 2 * index, "end": 1.95 + 2 * index, "category": category}
              for index, category in enumerate(categories)]
    entry = {"id": "s1", "words": words, "backchannels": events}
    path.write_text(json.dumps(entry, ensure_ascii=False) + "\n", encoding="utf-8")
    return path


def test_stats_unmapped_category_warning(tmp_path, capsys, caplog):
    path = write_jsonl(tmp_path / "corpus.jsonl", ["CONTINUER", "WOW", "request confirmation"])

    statistics = run_json(capsys, "manifest", str(path))

    assert statistics["unmapped_categories"] == {"WOW": 1}
    # The option replaces the whole map, so the hint keeps the two mapped categories. Categories are
    # listed as in the table: by count, then by name.
    assert ("1 backchannel(s) in categories that the four_class label map leaves out are not sampled: "
            "'WOW' (1). To use them, map every category: --category-map CONTINUER=Continuer "
            "--category-map WOW=CLASS --category-map 'request confirmation=Empathy' "
            "(CLASS is one of Continuer, Understanding, Empathy)") in caplog.text


def test_stats_only_unmapped_categories_warned(tmp_path, capsys, caplog):
    path = write_jsonl(tmp_path / "corpus.jsonl", ["WOW"])

    assert main(["data", "stats", "manifest", str(path)]) == 0

    assert re.search(r"^\s+WOW\s+1\s+\(unmapped, not sampled\)$", capsys.readouterr().out, re.MULTILINE)
    assert (f"{path} gives no Backchannel Alignment samples because its backchannels are all unmapped; "
            f"only Context Alignment can use its 8 words") in caplog.text


def test_stats_no_backchannels_warned(tmp_path, capsys, caplog):
    path = write_jsonl(tmp_path / "corpus.jsonl", [])

    assert main(["data", "stats", "manifest", str(path)]) == 0
    expected = f"{path} gives no Backchannel Alignment samples because it has no backchannel events"
    assert expected in caplog.text


def test_stats_empty_manifest_fails(tmp_path, capsys):
    path = tmp_path / "corpus.jsonl"
    path.write_text("\n", encoding="utf-8")

    assert main(["data", "stats", "manifest", str(path)]) == 1
    assert f"{path}: the manifest reader found no conversations" in capsys.readouterr().err


def test_stats_non_utf8_file_fails_cleanly(tmp_path, capsys):
    annotation = tmp_path / "annotation"
    annotation.mkdir()
    (annotation / "call.csv").write_bytes("0.0\t2.0\tspeaker#A\t그래요.\n".encode("cp949"))

    assert main(["data", "stats", "backspeech", str(tmp_path)]) == 1
    error = capsys.readouterr().err
    assert f"{annotation / 'call.csv'}:1: not valid UTF-8" in error
    assert "Traceback" not in error


def test_stats_missing_root_fails(tmp_path, capsys):
    assert main(["data", "stats", "backspeech", str(tmp_path / "nowhere")]) == 1
    assert f"{tmp_path / 'nowhere'}: corpus root not found" in capsys.readouterr().err
