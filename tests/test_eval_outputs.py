"""`camabc eval` writes beside the training outputs, saved recipes hold absolute paths, and a
multi-seed directory rejects a single run."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import attrs
import pytest
from training_helpers import tiny_recipe

from camabc_core.cli import main
from camabc_core.errors import CamabcError
from camabc_core.recipe_loading import load_recipe, recipe_from_dict, save_recipe
from camabc_core.training.run_dir import resolve_local_paths
from camabc_core.training.runner import train_run

TRAINING_OUTPUTS = ("metrics.json", "report.md", "confusion_matrix.png", "predictions_test.json",
                    "recipe.yaml", "history.json")


# Fixtures single_thread and corpus come from conftest.py.
pytestmark = pytest.mark.usefixtures("single_thread")


def short_text_recipe(manifest: Path, tokenizer: Path):
    recipe = tiny_recipe(manifest, tokenizer, modalities=("text",), context_alignment=None)
    return attrs.evolve(recipe, backchannel_alignment=attrs.evolve(recipe.backchannel_alignment, epochs=1,
                                                                   max_steps=2))


def snapshot(run_dir: Path) -> dict[str, bytes]:
    return {name: (run_dir / name).read_bytes() for name in TRAINING_OUTPUTS if (run_dir / name).is_file()}


def test_eval_keeps_training_outputs(corpus, tmp_path):
    recipe = short_text_recipe(*corpus)
    run_dir = tmp_path / "run"
    train_run(recipe, run_dir)
    before = snapshot(run_dir)
    assert set(before) == set(TRAINING_OUTPUTS)

    assert main(["eval", str(run_dir)]) == 0

    assert snapshot(run_dir) == before
    trained = json.loads(before["metrics.json"])
    assert "best_validation_macro_f1" in trained
    evaluated = json.loads((run_dir / "eval/test/metrics.json").read_text(encoding="utf-8"))
    assert evaluated["name"] == "tiny"
    assert evaluated["per_class"] == trained["per_class"]
    assert (run_dir / "eval/test/report.md").is_file()
    assert (run_dir / "eval/test/confusion_matrix.png").read_bytes()[:4] == b"\x89PNG"
    eval_predictions = json.loads((run_dir / "eval/test/predictions_test.json").read_text(encoding="utf-8"))
    assert eval_predictions == json.loads(before["predictions_test.json"])


def test_compare_reads_eval_predictions(corpus, tmp_path, capsys):
    recipe = short_text_recipe(*corpus)
    run_dir = tmp_path / "run"
    train_run(recipe, run_dir)
    (run_dir / "predictions_validation.json").unlink(missing_ok=True)
    assert main(["eval", str(run_dir), "--split", "validation"]) == 0
    capsys.readouterr()

    assert main(["compare", str(run_dir), str(run_dir), "--split", "validation", "--json"]) == 0
    comparison = json.loads(capsys.readouterr().out)
    assert comparison["observed_difference"] == 0.0


def test_multi_seed_eval_keeps_aggregate(corpus, tmp_path):
    recipe_path = tmp_path / "recipe.yaml"
    save_recipe(short_text_recipe(*corpus), recipe_path)
    run_dir = tmp_path / "seeds"
    assert main(["train", str(recipe_path), "--seeds", "0", "1", "--output-dir", str(run_dir)]) == 0
    before = snapshot(run_dir)
    seed_before = snapshot(run_dir / "seed-1")

    assert main(["eval", str(run_dir)]) == 0

    assert snapshot(run_dir) == before
    assert snapshot(run_dir / "seed-1") == seed_before
    aggregate = json.loads((run_dir / "eval/test/metrics.json").read_text(encoding="utf-8"))
    trained = json.loads(before["metrics.json"])
    assert aggregate["name"] == trained["name"] == "tiny"
    assert aggregate["seeds"] == [0, 1]
    assert aggregate["macro_f1"] == pytest.approx(trained["macro_f1"])
    assert (run_dir / "seed-0/eval/test/metrics.json").is_file()


def test_single_run_rejected_in_seed_directory(corpus, tmp_path):
    recipe_path = tmp_path / "recipe.yaml"
    recipe = short_text_recipe(*corpus)
    save_recipe(recipe, recipe_path)
    run_dir = tmp_path / "seeds"
    assert main(["train", str(recipe_path), "--seeds", "0", "1", "--output-dir", str(run_dir)]) == 0

    for resume in (False, True):
        with pytest.raises(CamabcError, match=r"seed-0, seed-1.*--seeds 0 1 --resume"):
            train_run(recipe, run_dir, resume=resume)
    assert not (run_dir / "checkpoints").exists()


def test_seeds_rejected_in_single_run_directory(corpus, tmp_path, capsys):
    recipe_path = tmp_path / "recipe.yaml"
    save_recipe(short_text_recipe(*corpus), recipe_path)
    run_dir = tmp_path / "run"
    assert main(["train", str(recipe_path), "--output-dir", str(run_dir)]) == 0

    capsys.readouterr()
    assert main(["train", str(recipe_path), "--seeds", "0", "1", "--output-dir", str(run_dir)]) != 0
    assert "contains a single-seed run" in capsys.readouterr().err
    assert not (run_dir / "seed-0").exists()


def test_saved_recipe_works_from_other_directory(corpus, tmp_path, monkeypatch):
    manifest, tokenizer = corpus
    shutil.copytree(manifest.parent, tmp_path / "corpus")
    monkeypatch.chdir(tmp_path)
    recipe = short_text_recipe(Path("corpus") / manifest.name, tokenizer)
    recipe = attrs.evolve(recipe, run=attrs.evolve(recipe.run, output_dir="runs"))
    train_run(recipe, Path("run"))

    saved = load_recipe(tmp_path / "run/recipe.yaml")
    assert saved.data.root == str(tmp_path / "corpus" / manifest.name)
    assert saved.run.output_dir == str(tmp_path / "runs")
    # Resuming with the original relative recipe is the same recipe, so it is accepted.
    train_run(recipe, Path("run"), resume=True)

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    assert main(["eval", str(tmp_path / "run")]) == 0


def test_eval_set_points_to_moved_corpus(corpus, tmp_path, capsys):
    manifest, tokenizer = corpus
    shutil.copytree(manifest.parent, tmp_path / "corpus")
    recipe = short_text_recipe(tmp_path / "corpus" / manifest.name, tokenizer)
    train_run(recipe, tmp_path / "run")
    (tmp_path / "corpus").rename(tmp_path / "moved")

    capsys.readouterr()
    assert main(["eval", str(tmp_path / "run")]) != 0
    assert "data.root" in capsys.readouterr().err
    moved_root = tmp_path / "moved" / manifest.name
    assert main(["eval", str(tmp_path / "run"), "--set", f"data.root={moved_root}"]) == 0
    evaluated = json.loads((tmp_path / "run/eval/test/metrics.json").read_text(encoding="utf-8"))
    assert evaluated["data_root"] == str(moved_root)


def test_eval_set_rejects_model_keys(tmp_path, capsys):
    assert main(["eval", str(tmp_path), "--set", "model.aligner.num_heads=4"]) != 0
    assert "model.aligner.num_heads=4: camabc eval accepts only data" in capsys.readouterr().err


def test_resolve_keeps_hub_ids(tmp_path, monkeypatch):
    (tmp_path / "vocab").mkdir()
    (tmp_path / "data").mkdir()
    monkeypatch.chdir(tmp_path)
    recipe = recipe_from_dict({
        "run": {"output_dir": "runs"},
        "data": {"dataset": "swbd", "root": "data", "reader_options": {"video_dir": "vocab",
                                                                        "min_gap": "data"}},
        "model": {"encoders": {
            "text": {"name": "bert", "checkpoint": "klue/bert-base", "tokenizer": "vocab"},
            "audio": {"name": "hubert", "checkpoint": "facebook/hubert-base-ls960"},
        }},
    })
    resolved = resolve_local_paths(recipe)

    assert resolved.data.root == str(tmp_path / "data")
    assert resolved.data.reader_options == {"video_dir": str(tmp_path / "vocab"), "min_gap": "data"}
    assert resolved.model.encoders.text.checkpoint == "klue/bert-base"
    assert resolved.model.encoders.text.tokenizer == str(tmp_path / "vocab")
    assert resolved.model.encoders.audio.checkpoint == "facebook/hubert-base-ls960"
    assert resolved.run.output_dir == str(tmp_path / "runs")
