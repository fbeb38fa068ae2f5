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
