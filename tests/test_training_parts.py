"""Training building blocks: optimiser groups and decay, data order, checkpoints, losses, tokenizer."""

from __future__ import annotations

import math
import os
import random
import stat
import unicodedata

import numpy as np
import pytest
import torch
from torch import nn

from camabc_core.errors import CheckpointError, RecipeError
from camabc_core.recipe import Recipe, StageSection
from camabc_core.recipe_yaml import write_text_atomic
from camabc_core.training import checkpoint as ckpt
from camabc_core.training.atomic import atomic_path, atomic_write_text
from camabc_core.training.data import EpochBatchSampler, count_batches, epoch_order
from camabc_core.training.optim import build_optimizer, build_scheduler, current_learning_rates
from camabc_core.training.stages import backchannel_alignment_loss, check_stages, context_alignment_loss


class TwoPartModel(nn.Module):
    """An encoder and a head, grouped the way BackchannelModel groups its parameters."""

    def __init__(self) -> None:
        super().__init__()
        self.encoder = nn.Linear(3, 5)
        self.projection = nn.Linear(5, 4)
        self.head = nn.Linear(4, 2)

    def parameter_groups(self) -> dict[str, list[nn.Parameter]]:
        return {"encoders": list(self.encoder.parameters()), "alignment": list(self.projection.parameters()),
                "classifier": list(self.head.parameters())}


def test_optimizer_groups_have_their_own_rates():
    optimizer = build_optimizer(TwoPartModel(), StageSection())

    assert current_learning_rates(optimizer) == {"encoders": 5e-6, "alignment": 5e-4, "classifier": 5e-5}
    assert [len(group["params"]) for group in optimizer.param_groups] == [2, 2, 2]


def test_frozen_parameters_are_left_out():
    model = TwoPartModel()
    model.encoder.requires_grad_(False)
    optimizer = build_optimizer(model, StageSection())

    assert [group["name"] for group in optimizer.param_groups] == ["alignment", "classifier"]


def test_epoch_decay_skips_classifier():
    optimizer = build_optimizer(TwoPartModel(), StageSection(lr_decay=0.95))
    scheduler = build_scheduler(optimizer, StageSection(lr_decay=0.95))
    for _ in range(2):  # two epochs end
        optimizer.step()
        scheduler.step()

    assert current_learning_rates(optimizer) == pytest.approx(
        {"encoders": 5e-6 * 0.9025, "alignment": 5e-4 * 0.9025, "classifier": 5e-5})


def test_epoch_order_is_seeded():
    first = epoch_order(50, seed=3, stage_index=1, epoch=2)

    assert np.array_equal(first, epoch_order(50, seed=3, stage_index=1, epoch=2))
    assert sorted(first.tolist()) == list(range(50))
    assert not np.array_equal(first, epoch_order(50, seed=3, stage_index=1, epoch=3))
    assert not np.array_equal(first, epoch_order(50, seed=3, stage_index=0, epoch=2))


def test_batch_sampler_cuts_and_skips():
    order = np.arange(10)
    sampler = EpochBatchSampler(order, 4, start_batch=1)

    assert sampler.batches_per_epoch == 3
    assert list(sampler) == [[4, 5, 6, 7], [8, 9]]
    assert len(sampler) == 2


def test_lone_last_sample_joins_previous_batch():
    sampler = EpochBatchSampler(np.arange(9), 4)

    assert list(sampler) == [[0, 1, 2, 3], [4, 5, 6, 7, 8]]
    assert count_batches(9, 4) == 2
    assert count_batches(10, 4) == 3
    assert count_batches(1, 4) == 1


def test_batch_sampler_shards_evenly():
    # Five batches over two processes: the list wraps to six so both run three steps.
    order = np.arange(10)
    rank0 = list(EpochBatchSampler(order, 2, rank=0, world_size=2))
    rank1 = list(EpochBatchSampler(order, 2, rank=1, world_size=2))

    assert rank0 == [[0, 1], [4, 5], [8, 9]]
    assert rank1 == [[2, 3], [6, 7], [0, 1]]


def test_rng_state_round_trip():
    state = ckpt.capture_rng_state()
    expected = (random.random(), np.random.random(), torch.rand(3))
    ckpt.restore_rng_state(state)

    assert random.random() == expected[0]
    assert np.random.random() == expected[1]
    assert torch.equal(torch.rand(3), expected[2])


def test_checkpoint_round_trip(tmp_path):
    model = TwoPartModel()
    optimizer = build_optimizer(model, StageSection())
    scheduler = build_scheduler(optimizer, StageSection())
    loss = model.head(model.projection(model.encoder(torch.randn(2, 3)))).sum()
    loss.backward()
    optimizer.step()
    scheduler.step()
    state = ckpt.TrainingState(stage="backchannel_alignment", epoch=1, batch_in_epoch=4, stage_step=7,
                               best_metric=0.4, epoch_totals={"loss_sum": 2.5, "samples": 8})
    staging = ckpt.staging_directory(tmp_path / "last")
    ckpt.write_checkpoint_files(staging, model, optimizer, scheduler, state)
    ckpt.write_rng_file(staging, rank=0)
    ckpt.publish_checkpoint(staging, tmp_path / "last")

    restored = TwoPartModel()
    restored_optimizer = build_optimizer(restored, StageSection())
    restored_scheduler = build_scheduler(restored_optimizer, StageSection())
    loaded = ckpt.load_checkpoint(tmp_path / "last", restored, restored_optimizer, restored_scheduler)

    assert loaded == state
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), restored.state_dict().values()))
    assert current_learning_rates(restored_optimizer) == current_learning_rates(optimizer)
    assert restored_scheduler.last_epoch == 1
    exp_avg = optimizer.state[model.encoder.weight]["exp_avg"]
    assert torch.equal(restored_optimizer.state[restored.encoder.weight]["exp_avg"], exp_avg)


def test_interrupted_publish_uses_previous(tmp_path):
    model = TwoPartModel()
    for step in (1, 2):
        staging = ckpt.staging_directory(tmp_path / "last")
        staging.mkdir()
        ckpt.save_model_weights(model, staging / ckpt.MODEL_FILE)
        (staging / ckpt.STATE_FILE).write_text(f'{{"stage": "context_alignment", "stage_step": {step}}}')
        if step == 1:
            ckpt.publish_checkpoint(staging, tmp_path / "last")
    # A crash between the two renames of the second publish: last/ moved to last.old/, staging not moved.
    (tmp_path / "last").rename(tmp_path / "last.old")

    found = ckpt.find_checkpoint(tmp_path / "last")
    assert found == tmp_path / "last.old"
    assert ckpt.read_training_state(found).stage_step == 1


def test_atomic_path_keeps_old_file_on_error(tmp_path):
    target = tmp_path / "metrics.json"
    atomic_write_text(target, "old")
    with pytest.raises(RuntimeError), atomic_path(target) as temporary:
        temporary.write_text("half")
        raise RuntimeError("killed while writing")

    assert target.read_text() == "old"
    assert list(tmp_path.iterdir()) == [target]


@pytest.mark.parametrize("damage", ["truncated", "empty", "random"])
def test_corrupt_weights_name_the_file(tmp_path, damage):
    path = tmp_path / ckpt.MODEL_FILE
    ckpt.save_model_weights(TwoPartModel(), path)
    if damage == "truncated":
        path.write_bytes(path.read_bytes()[:100])
    elif damage == "empty":
        path.write_bytes(b"")
    else:
        path.write_bytes(np.random.default_rng(0).bytes(5000))
    with pytest.raises(CheckpointError, match=rf"{path} is not a readable safetensors file .* truncated or "
                                              r"corrupt: restore the file .* or retrain"):
        ckpt.load_model_weights(TwoPartModel(), path)


class WiderModel(TwoPartModel):
    """TwoPartModel with a 7-wide encoder: the shapes an edited encoder config would give."""

    def __init__(self) -> None:
        super().__init__()
        self.encoder = nn.Linear(3, 7)
        self.projection = nn.Linear(7, 4)


def test_shape_mismatch_is_summarised(tmp_path):
    path = tmp_path / ckpt.MODEL_FILE
    ckpt.save_model_weights(TwoPartModel(), path)
    with pytest.raises(CheckpointError) as caught:
        ckpt.load_model_weights(WiderModel(), path)
    message = str(caught.value)
    # encoder.weight, encoder.bias and projection.weight differ; the first three are named.
    assert message.startswith(f"{path}: 3 tensor(s) have other shapes")
    assert "encoder.weight is torch.Size([5, 3]) in the file but torch.Size([7, 3]) in the model" in message
    assert "projection.weight is torch.Size([4, 5])" in message
    assert "encoder config.json files and recipe.yaml" in message
    assert "\n" not in message


@pytest.mark.parametrize("content", ['{"stage": "context_al', "", '["not", "a", "state"]', '{"stages": 1}'])
def test_broken_state_file_names_the_file(tmp_path, content):
    (tmp_path / ckpt.STATE_FILE).write_text(content, encoding="utf-8")
    with pytest.raises(CheckpointError, match=rf"{tmp_path / ckpt.STATE_FILE} .*restore the file"):
        ckpt.read_training_state(tmp_path)


def test_truncated_optimizer_file_names_the_file(tmp_path):
    model = TwoPartModel()
    optimizer = build_optimizer(model, StageSection())
    scheduler = build_scheduler(optimizer, StageSection())
    staging = ckpt.staging_directory(tmp_path / "last")
    state = ckpt.TrainingState(stage="context_alignment")
    ckpt.write_checkpoint_files(staging, model, optimizer, scheduler, state)
    ckpt.publish_checkpoint(staging, tmp_path / "last")
    optimizer_file = tmp_path / "last" / ckpt.OPTIMIZER_FILE
    optimizer_file.write_bytes(optimizer_file.read_bytes()[:50])
    with pytest.raises(CheckpointError, match=rf"{optimizer_file} cannot be read"):
        ckpt.load_checkpoint(tmp_path / "last", model, optimizer, scheduler)


def test_atomic_writes_keep_umask_permissions(tmp_path):
    previous = os.umask(0o022)
    try:
        atomic_write_text(tmp_path / "metrics.json", "{}")
        with atomic_path(tmp_path / "model.safetensors") as temporary:
            temporary.write_bytes(b"x")
        write_text_atomic(tmp_path / "recipe.yaml", "a: 1\n")
        os.umask(0o027)
        atomic_write_text(tmp_path / "group.json", "{}")
    finally:
        os.umask(previous)
    modes = {path.name: stat.S_IMODE(path.stat().st_mode) for path in tmp_path.iterdir()}
    assert modes == {"metrics.json": 0o644, "model.safetensors": 0o644, "recipe.yaml": 0o644,
                     "group.json": 0o640}


def test_backchannel_loss_adds_weighted_alignment():
    # Equal logits over two classes: cross-entropy ln 2. Total = ln 2 + 0.1 × 2.
    alignment = torch.tensor(2.0, requires_grad=True)
    output = {"logits": torch.zeros(1, 2), "alignment_loss": alignment, "layer_losses": {}}
    loss = backchannel_alignment_loss(output, torch.tensor([0]), 0.1)

    assert loss.total.item() == pytest.approx(math.log(2) + 0.2)
    assert loss.parts == pytest.approx({"loss": math.log(2) + 0.2, "ce": math.log(2), "align": 2.0})


def test_context_alignment_needs_gradient():
    with pytest.raises(RecipeError, match="context_alignment: null"):
        context_alignment_loss({"alignment_loss": torch.tensor(0.0), "layer_losses": {}})


def test_context_alignment_rejected_for_one_modality():
    recipe = Recipe(context_alignment=StageSection())

    with pytest.raises(RecipeError, match="at least two modalities"):
        check_stages(recipe, ("text",))


def test_wordpiece_keeps_hangul_syllables(tmp_path):
    from transformers import AutoTokenizer

    from camabc_core.training.tokenizer import train_wordpiece

    texts = ["저희 아버지께서 하셔야 되는", "아버지 네 그렇죠", "그렇죠 네 네"] * 3
    train_wordpiece(texts, tmp_path, vocab_size=60, min_frequency=1)
    tokenizer = AutoTokenizer.from_pretrained(tmp_path)
    tokens = tokenizer.tokenize("아버지 그렇죠")

    assert tokens == ["아버지", "그렇죠"]
    assert not any(unicodedata.name(ch).startswith("HANGUL CHOSEONG") for t in tokens for ch in t)
    assert tokenizer("네")["input_ids"] == [tokenizer.cls_token_id, tokenizer.convert_tokens_to_ids("네"),
                                           tokenizer.sep_token_id]
    assert tokenizer.pad_token_id == 0
