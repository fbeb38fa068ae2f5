import pytest
import torch
from model_helpers import (
    TINY_WINDOW,
    bert_spec,
    component_registry,
    hubert_spec,
    videomae_spec,
    windows,
    write_tokenizer,
)

from camabc_core.errors import RecipeError
from camabc_core.interfaces import AlignerOutput
from camabc_core.model import BackchannelModel, ModelOutput
from camabc_core.recipe import (
    AlignerSpec,
    DataSection,
    EncodersSection,
    FusionSpec,
    ModelSection,
    Recipe,
)

NUM_CLASSES = 4


@pytest.fixture(scope="module")
def tokenizer_dir(tmp_path_factory):
    return write_tokenizer(tmp_path_factory.mktemp("tokenizer"))


def make_recipe(tokenizer_dir, modalities=("audio", "text", "video"), aligner="mma", fusion="hierarchical",
                freeze_audio=False):
    specs = {"audio": hubert_spec(), "text": bert_spec(tokenizer_dir), "video": videomae_spec()}
    specs["audio"].freeze = freeze_audio
    encoders = EncodersSection(**{m: specs[m] for m in modalities})
    model = ModelSection(
        encoders=encoders,
        aligner=AlignerSpec(name=aligner, layers=[0, 1], projection_size=8, num_heads=2),
        fusion=FusionSpec(name=fusion),
        dropout=0.1,
    )
    return Recipe(data=DataSection(window=TINY_WINDOW), model=model)


def build(recipe):
    torch.manual_seed(0)
    return BackchannelModel.from_recipe(recipe, NUM_CLASSES, registry=component_registry())


def test_model_forward_shapes(tokenizer_dir):
    model = build(make_recipe(tokenizer_dir))
    batch = windows(4)

    output = model(model.preprocess(batch))

    assert model.modalities == ("audio", "text", "video")
    assert list(model.encoders) == ["audio", "text", "video"]
    assert isinstance(output, ModelOutput)
    assert output.logits.shape == (4, NUM_CLASSES)
    assert output.alignment_loss.dim() == 0
    assert torch.isfinite(output.alignment_loss)
    assert list(output.layer_losses) == [0, 1]
    # cat(ā, c̄_va, c̄_ta) with projection size 8.
    assert model.head.in_features == 24


def test_model_preprocess_per_modality(tokenizer_dir):
    model = build(make_recipe(tokenizer_dir))

    inputs = model.preprocess(windows(3))

    assert set(inputs) == {"audio", "text", "video"}
    assert set(inputs["audio"]) == {"input_values", "attention_mask"}
    assert set(inputs["text"]) == {"input_ids", "attention_mask"}
    assert inputs["video"]["pixel_values"].shape == (3, 4, 3, 32, 32)


def test_model_backward_reaches_every_group(tokenizer_dir):
    model = build(make_recipe(tokenizer_dir))

    output = model(model.preprocess(windows(4)))
    labels = torch.tensor([0, 1, 2, 3])
    loss = torch.nn.functional.cross_entropy(output.logits, labels) + output.alignment_loss
    loss.backward()

    # DistributedDataParallel rejects trainable parameters that get no gradient.
    groups = model.parameter_groups()
    assert set(groups) == {"encoders", "alignment", "classifier"}
    for name, parameters in groups.items():
        assert all(p.grad is not None for p in parameters), name
    assert any(p.grad.abs().sum() > 0 for p in groups["encoders"])


def test_parameter_groups_partition_parameters(tokenizer_dir):
    model = build(make_recipe(tokenizer_dir))

    groups = model.parameter_groups()

    grouped = [id(p) for parameters in groups.values() for p in parameters]
    assert len(grouped) == len(set(grouped))
    assert set(grouped) == {id(p) for p in model.parameters() if p.requires_grad}
    assert {id(p) for p in groups["alignment"]} == {id(p) for p in model.aligner.parameters()}
    assert {id(p) for p in groups["classifier"]} == {id(p) for p in model.head.parameters()}


def test_forward_alignment_skips_head(tokenizer_dir):
    model = build(make_recipe(tokenizer_dir)).eval()
    inputs = model.preprocess(windows(3))

    aligned = model.forward_alignment(inputs)

    assert isinstance(aligned, AlignerOutput)
    assert torch.allclose(aligned.loss, model(inputs).alignment_loss)


def test_model_sample_independent_of_batch(tokenizer_dir):
    model = build(make_recipe(tokenizer_dir)).eval()
    batch = windows(4)

    with torch.inference_mode():
        batched = model(model.preprocess(batch)).logits
        alone = model(model.preprocess(batch[2:3])).logits

    assert torch.allclose(batched[2], alone[0], atol=1e-5)


@pytest.mark.parametrize(
    ("modalities", "aligner", "fusion", "head_inputs"),
    [
        (("audio", "text"), "mma", "hierarchical", 16),
        (("audio", "video"), "mma", "concat", 16),
        (("text",), "none", "text_only", 8),
        (("audio", "text", "video"), "praveen", "concat", 24),
        (("audio", "text", "video"), "sun", "audio_only", 8),
        (("audio", "text", "video"), "none", "concat", 24),
    ],
)
def test_model_modality_subsets_and_baselines(tokenizer_dir, modalities, aligner, fusion, head_inputs):
    model = build(make_recipe(tokenizer_dir, modalities, aligner, fusion))
    batch = windows(3, **{f"with_{m}": m in modalities for m in ("audio", "text", "video")})

    output = model(model.preprocess(batch))
    output.logits.sum().backward()

    assert model.modalities == modalities
    assert model.head.in_features == head_inputs
    assert output.logits.shape == (3, NUM_CLASSES)
    assert torch.isfinite(output.alignment_loss)


def test_frozen_encoder_gets_no_gradient(tokenizer_dir):
    model = build(make_recipe(tokenizer_dir, freeze_audio=True))

    output = model(model.preprocess(windows(3)))
    (output.logits.sum() + output.alignment_loss).backward()

    audio_parameters = {id(p) for p in model.encoders["audio"].parameters()}
    assert all(p.grad is None for p in model.encoders["audio"].parameters())
    assert not audio_parameters & {id(p) for p in model.parameter_groups()["encoders"]}


def test_missing_modality_in_window(tokenizer_dir):
    model = build(make_recipe(tokenizer_dir))

    with pytest.raises(ValueError, match=r"uses video, but windows \[0, 1\] have none"):
        model.preprocess(windows(2, with_video=False))


def test_encoder_in_wrong_slot(tokenizer_dir):
    recipe = make_recipe(tokenizer_dir, ("audio", "text"))
    recipe.model.encoders.audio = bert_spec(tokenizer_dir)

    with pytest.raises(RecipeError, match=r"model\.encoders\.audio is a text encoder"):
        build(recipe)


def test_inconsistent_encoder_config_names_key(tokenizer_dir):
    recipe = make_recipe(tokenizer_dir, ("audio", "text"))
    recipe.model.encoders.audio = hubert_spec(num_attention_heads=3)  # 3 does not divide hidden_size 16

    with pytest.raises(RecipeError) as raised:
        build(recipe)
    message = str(raised.value)
    assert message.startswith("model.encoders.audio: the 'hubert' encoder cannot be built from this config")
    assert "embed_dim must be divisible by num_heads" in message
    assert "model.encoders.audio.config" in message


def test_aligned_layer_missing_from_encoder(tokenizer_dir):
    recipe = make_recipe(tokenizer_dir, ("audio", "text"))
    recipe.model.aligner.layers = [99]

    with pytest.raises(RecipeError, match=r"model\.aligner\.layers contains 99, but the audio encoder has 2"):
        build(recipe)


def test_fusion_incompatible_with_aligner(tokenizer_dir):
    with pytest.raises(RecipeError, match="fusion concat"):
        build(make_recipe(tokenizer_dir, aligner="none", fusion="hierarchical"))


def test_model_trains_on_four_samples(tokenizer_dir):
    model = build(make_recipe(tokenizer_dir))
    model.train()
    inputs = model.preprocess(windows(4))
    labels = torch.tensor([0, 1, 2, 3])
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)

    losses = []
    for _ in range(8):
        optimizer.zero_grad()
        output = model(inputs)
        loss = torch.nn.functional.cross_entropy(output.logits, labels) + 0.1 * output.alignment_loss
        loss.backward()
        optimizer.step()
        losses.append(loss.item())

    assert losses[-1] < losses[0]


def test_from_recipe_uses_plugin_registry(tokenizer_dir):
    pytest.importorskip("camabc_core.registry")

    model = BackchannelModel.from_recipe(make_recipe(tokenizer_dir, ("audio", "text")), NUM_CLASSES)

    assert model.modalities == ("audio", "text")
