"""End-to-end training on the BACKCast excerpt: CA then BA, exact resume, label noise, eval and compare."""

from __future__ import annotations

import json

import attrs
import numpy as np
import pytest
import safetensors.torch
import torch
from accelerate import Accelerator
from training_helpers import tiny_recipe

from camabc_core.cli import main
from camabc_core.errors import CamabcError
from camabc_core.recipe_loading import load_recipe, recipe_to_dict, validate_recipe
from camabc_core.training import load_trained_model
from camabc_core.training.loop import StepEvent
from camabc_core.training.runner import train_run

# Fixtures single_thread and corpus come from conftest.py.
pytestmark = pytest.mark.usefixtures("single_thread")


class SimulatedKill(Exception):
    """Raised from a step callback to stop a run the way a killed process would."""


def recorder(store: dict[tuple[str, int], dict]):
    def record(event: StepEvent) -> None:
        store[event.stage, event.stage_step] = {"losses": event.losses, "rates": event.learning_rates}

    return record


def kill_at(stage: str, step: int):
    def kill(event: StepEvent) -> None:
        if event.stage == stage and event.stage_step == step:
            raise SimulatedKill(f"{stage} step {step}")

    return kill


def test_context_then_backchannel_alignment(corpus, tmp_path):
    manifest, tokenizer = corpus
    recipe = tiny_recipe(manifest, tokenizer)
    run_dir = tmp_path / "run"
    steps: dict[tuple[str, int], dict] = {}

    result = train_run(recipe, run_dir, callbacks=[recorder(steps)])

    assert sorted(steps) == [("backchannel_alignment", s) for s in range(1, 9)] + [
        ("context_alignment", s) for s in range(1, 4)]
    # CA trains the alignment loss alone; BA adds cross-entropy with weight λ = 0.1 on alignment.
    assert set(steps["context_alignment", 1]["losses"]) >= {"align", "align_l0", "align_l1"}
    ba_losses = steps["backchannel_alignment", 1]["losses"]
    assert ba_losses["loss"] == pytest.approx(ba_losses["ce"] + 0.1 * ba_losses["align"], rel=1e-5)
    # Per-epoch decay: encoders and alignment ×0.95 in epoch 2, classifier unchanged.
    assert steps["backchannel_alignment", 5]["rates"] == pytest.approx(
        {"encoders": 1e-3 * 0.95, "alignment": 1e-3 * 0.95, "classifier": 1e-2})

    for name in ("recipe.yaml", "labels.json", "metrics.json", "report.md", "confusion_matrix.png",
                 "training_curves.png", "history.json", "predictions_test.json", "train.log",
                 "checkpoints/best/model.safetensors", "checkpoints/last/model.safetensors",
                 "encoders/text/tokenizer.json", "encoders/audio/config.json"):
        assert (run_dir / name).is_file(), name
    assert (run_dir / "confusion_matrix.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert recipe_to_dict(load_recipe(run_dir / "recipe.yaml")) == recipe_to_dict(recipe)
    labels = json.loads((run_dir / "labels.json").read_text(encoding="utf-8"))
    assert labels["classes"] == ["NoBC", "Continuer", "Understanding", "Empathy"]

    metrics = json.loads((run_dir / "metrics.json").read_text(encoding="utf-8"))
    assert metrics["macro_f1"] == pytest.approx(result.metrics.macro_f1)
    per_class_f1 = [metrics["per_class"][name]["f1"] for name in labels["classes"]]
    assert metrics["macro_f1"] == pytest.approx(np.mean(per_class_f1))
    history = json.loads((run_dir / "history.json").read_text(encoding="utf-8"))
    assert [(entry["stage"], entry["epoch"]) for entry in history] == [
        ("context_alignment", 0), ("backchannel_alignment", 0), ("backchannel_alignment", 1)]
    log = (run_dir / "train.log").read_text(encoding="utf-8")
    assert "parameters encoder.video" in log
    assert "CA epoch 1/1 step 3/3" in log
    model, _, _ = load_trained_model(run_dir)
    assert model.modalities == ("audio", "text", "video")


def test_trained_model_reloads(corpus, tmp_path):
    manifest, tokenizer = corpus
    recipe = tiny_recipe(manifest, tokenizer, modalities=("audio", "text"), context_alignment=None)
    recipe = attrs.evolve(recipe, backchannel_alignment=attrs.evolve(recipe.backchannel_alignment, epochs=1))
    run_dir = tmp_path / "run"
    train_run(recipe, run_dir)
    model, loaded_recipe, scheme = load_trained_model(run_dir)

    assert scheme.classes == ("NoBC", "Continuer", "Understanding", "Empathy")
    assert loaded_recipe.model.encoders.text.tokenizer == recipe.model.encoders.text.tokenizer
    saved = safetensors.torch.load_file(str(run_dir / "checkpoints/best/model.safetensors"))
    state = model.state_dict()
    assert all(np.array_equal(state[key].numpy(), value.numpy()) for key, value in saved.items())

    # `camabc eval` rebuilds the test split and the model from the run directory alone.
    before = json.loads((run_dir / "metrics.json").read_text(encoding="utf-8"))
    assert main(["eval", str(run_dir)]) == 0
    after = json.loads((run_dir / "metrics.json").read_text(encoding="utf-8"))
    assert after["per_class"] == before["per_class"]


@pytest.mark.parametrize(
    ("kill_stage", "kill_step", "checkpoint_every"),
    [("context_alignment", 2, 1), ("backchannel_alignment", 3, 2), ("backchannel_alignment", 4, 1)],
)
def test_resume_after_kill_matches_uninterrupted(corpus, tmp_path, kill_stage, kill_step, checkpoint_every):
    manifest, tokenizer = corpus
    recipe = tiny_recipe(manifest, tokenizer, modalities=("audio", "text"))
    recipe = attrs.evolve(
        recipe,
        run=attrs.evolve(recipe.run, checkpoint_every=checkpoint_every),
        # Accumulating two micro-batches per step exercises resuming between optimiser steps.
        backchannel_alignment=attrs.evolve(recipe.backchannel_alignment, gradient_accumulation_steps=2),
    )
    uninterrupted: dict[tuple[str, int], dict] = {}
    reference = train_run(recipe, tmp_path / "uninterrupted", callbacks=[recorder(uninterrupted)])

    before_kill: dict[tuple[str, int], dict] = {}
    with pytest.raises(SimulatedKill):
        train_run(recipe, tmp_path / "killed",
                  callbacks=[recorder(before_kill), kill_at(kill_stage, kill_step)])
    with pytest.raises(CamabcError, match="--resume"):
        train_run(recipe, tmp_path / "killed")
    after_resume: dict[tuple[str, int], dict] = {}
    resumed = train_run(recipe, tmp_path / "killed", resume=True, callbacks=[recorder(after_resume)])

    # Steps after the last checkpoint before the kill run twice; every run of a step must agree.
    assert set(before_kill) | set(after_resume) == set(uninterrupted)
    first_repeated = kill_step - (kill_step % checkpoint_every) + 1
    last_step = max(step for stage, step in uninterrupted if stage == kill_stage)
    resumed_steps = sorted(step for stage, step in after_resume if stage == kill_stage)
    assert resumed_steps == list(range(first_repeated, last_step + 1))
    for records in (before_kill, after_resume):
        for key, record in records.items():
            assert record["rates"] == uninterrupted[key]["rates"], key
            for name, value in record["losses"].items():
                assert value == pytest.approx(uninterrupted[key]["losses"][name], abs=1e-6), (key, name)
    assert resumed.metrics.f1 == pytest.approx(reference.metrics.f1)
    history = [entry["train_loss"] for entry in resumed.state.history]
    assert history == pytest.approx([entry["train_loss"] for entry in reference.state.history], abs=1e-6)
    weights = safetensors.torch.load_file(str(tmp_path / "killed/checkpoints/last/model.safetensors"))
    expected = safetensors.torch.load_file(str(tmp_path / "uninterrupted/checkpoints/last/model.safetensors"))
    assert all(np.allclose(weights[key].numpy(), expected[key].numpy(), atol=1e-6) for key in expected)


def test_resume_rejects_changed_recipe(corpus, tmp_path):
    manifest, tokenizer = corpus
    recipe = tiny_recipe(manifest, tokenizer, modalities=("text",), context_alignment=None)
    recipe = attrs.evolve(recipe, backchannel_alignment=attrs.evolve(recipe.backchannel_alignment, epochs=1))
    train_run(recipe, tmp_path / "run")
    changed = attrs.evolve(recipe, backchannel_alignment=attrs.evolve(recipe.backchannel_alignment,
                                                                      alignment_weight=0.5))
    with pytest.raises(CamabcError, match=r"backchannel_alignment\.alignment_weight"):
        train_run(changed, tmp_path / "run", resume=True)


def test_label_noise_only_in_training(corpus, tmp_path):
    manifest, tokenizer = corpus
    clean = tiny_recipe(manifest, tokenizer, modalities=("text",), context_alignment=None)
    clean = attrs.evolve(clean, backchannel_alignment=attrs.evolve(clean.backchannel_alignment, max_steps=1))
    noisy = attrs.evolve(clean, data=attrs.evolve(clean.data, sampling=attrs.evolve(
        clean.data.sampling, label_noise=0.2)))
    train_run(clean, tmp_path / "clean")
    train_run(noisy, tmp_path / "noisy")
    clean_summary = json.loads((tmp_path / "clean/data_summary.json").read_text(encoding="utf-8"))
    noisy_summary = json.loads((tmp_path / "noisy/data_summary.json").read_text(encoding="utf-8"))

    # 15 training samples × 0.2 = 3 flipped labels; validation and test are untouched.
    assert noisy_summary["flipped_training_labels"] == 3
    assert clean_summary["flipped_training_labels"] == 0
    assert noisy_summary["splits"]["train"]["fingerprint"] != clean_summary["splits"]["train"]["fingerprint"]
    for split in ("validation", "test"):
        assert noisy_summary["splits"][split] == clean_summary["splits"][split]


def test_early_stopping_after_patience(corpus, tmp_path):
    manifest, tokenizer = corpus
    recipe = tiny_recipe(manifest, tokenizer, modalities=("text",), context_alignment=None)
    # With every learning rate 0 the validation score never changes, so it improves only in epoch 1.
    frozen = attrs.evolve(recipe.backchannel_alignment, epochs=10, patience=2, lr_encoders=0.0,
                          lr_alignment=0.0, lr_classifier=0.0)
    result = train_run(attrs.evolve(recipe, backchannel_alignment=frozen), tmp_path / "run")

    assert [entry["improved"] for entry in result.state.history] == [True, False, False]
    assert result.state.best_epoch == 0


def test_multi_seed_aggregate_and_compare(corpus, tmp_path, capsys):
    manifest, tokenizer = corpus
    recipe = tiny_recipe(manifest, tokenizer, modalities=("text",), context_alignment=None)
    recipe_path = tmp_path / "recipe.yaml"
    from camabc_core.recipe_loading import save_recipe

    save_recipe(recipe, recipe_path)
    for name, learning_rate in (("a", "1e-2"), ("b", "0.0")):
        code = main(["train", str(recipe_path), "--seeds", "0", "1", "--output-dir", str(tmp_path / name),
                     "--set", "backchannel_alignment.epochs=1",
                     "--set", f"backchannel_alignment.lr_classifier={learning_rate}"])
        assert code == 0
    aggregate = json.loads((tmp_path / "a/metrics.json").read_text(encoding="utf-8"))
    per_seed = [json.loads((tmp_path / f"a/seed-{seed}/metrics.json").read_text(encoding="utf-8"))["macro_f1"]
                for seed in (0, 1)]
    assert aggregate["seeds"] == [0, 1]
    assert aggregate["macro_f1"]["mean"] == pytest.approx(np.mean(per_seed))
    assert aggregate["macro_f1"]["std"] == pytest.approx(np.std(per_seed, ddof=1))
    assert "±" in (tmp_path / "a/report.md").read_text(encoding="utf-8")

    capsys.readouterr()
    assert main(["compare", str(tmp_path / "a"), str(tmp_path / "b"), "--json"]) == 0
    comparison = json.loads(capsys.readouterr().out)
    assert comparison["groups"] == 2
    difference = comparison["macro_f1_a"] - comparison["macro_f1_b"]
    assert comparison["observed_difference"] == pytest.approx(difference)
    assert 0 < comparison["p_value"] <= 1


def test_gradient_clipping_before_each_step(corpus, tmp_path, monkeypatch):
    manifest, tokenizer = corpus
    recipe = tiny_recipe(manifest, tokenizer, modalities=("text",), context_alignment=None)
    stage = attrs.evolve(recipe.backchannel_alignment, epochs=1, max_steps=2, max_grad_norm=0.05)
    norms_after_clipping: list[float] = []
    original = Accelerator.clip_grad_norm_

    def clip_and_measure(self, parameters, max_norm, *args, **kwargs):
        parameters = list(parameters)
        result = original(self, parameters, max_norm, *args, **kwargs)
        gradients = [p.grad.flatten() for p in parameters if p.grad is not None]
        norms_after_clipping.append(float(torch.cat(gradients).norm()))
        return result

    monkeypatch.setattr(Accelerator, "clip_grad_norm_", clip_and_measure)
    train_run(attrs.evolve(recipe, backchannel_alignment=stage), tmp_path / "run")

    # One clip per optimiser step, each leaving the global norm at the limit or below.
    assert len(norms_after_clipping) == 2
    assert max(norms_after_clipping) <= 0.05 + 1e-6


def test_gradient_clipping_limit_validated(corpus):
    manifest, tokenizer = corpus
    recipe = tiny_recipe(manifest, tokenizer, modalities=("text",), context_alignment=None)
    stage = attrs.evolve(recipe.backchannel_alignment, max_grad_norm=0.0)
    with pytest.raises(CamabcError, match=r"backchannel_alignment\.max_grad_norm: must be positive"):
        validate_recipe(attrs.evolve(recipe, backchannel_alignment=stage))
