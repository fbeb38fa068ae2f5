import itertools
import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from camabc_core.errors import RecipeError
from camabc_core.interfaces import EncoderOutput
from camabc_core.recipe import AlignerSpec
from camabc_plugins.aligners import (
    CrossAttention,
    CrossSelfAttentionAligner,
    JointCrossAttentionAligner,
    MultiLayerAligner,
    ProjectionAligner,
    masked_mean,
)


def shapes(**sizes):
    """Encoder stand-ins: modality -> (hidden_size, num_layers)."""
    return {m: SimpleNamespace(hidden_size=size, num_layers=layers) for m, (size, layers) in sizes.items()}


def encoder_output(states, mask):
    """EncoderOutput whose every hidden state is ``states``: (B, T, D) nested lists, mask (B, T)."""
    tensor = torch.tensor(states, dtype=torch.float32)
    return EncoderOutput(hidden_states=(tensor, tensor), attention_mask=torch.tensor(mask))


def random_outputs(generator, batch_size, lengths, sizes, num_layers):
    """Random hidden states with right padding; sample 0 is always full length."""
    outputs = {}
    for m, length in lengths.items():
        states = tuple(
            torch.randn(batch_size, length, sizes[m], generator=generator) for _ in range(num_layers + 1)
        )
        real = [length]
        real += [int(torch.randint(1, length + 1, (1,), generator=generator)) for _ in range(batch_size - 1)]
        mask = torch.tensor([[1] * n + [0] * (length - n) for n in real])
        outputs[m] = EncoderOutput(hidden_states=states, attention_mask=mask)
    return outputs


def set_identity(linear):
    with torch.no_grad():
        linear.weight.copy_(torch.eye(linear.weight.shape[0]))
        linear.bias.zero_()


def identity_mma(**options):
    aligner = MultiLayerAligner(shapes(audio=(2, 1), text=(2, 1), video=(2, 1)), layers=[0],
                                projection_size=2, num_heads=1, **options)
    for module in aligner.modules():
        if isinstance(module, torch.nn.Linear):
            set_identity(module)
    return aligner


# The full MMA loss by hand


def test_mma_loss_hand_computed_two_samples():
    aligner = identity_mma()
    outputs = {
        "audio": encoder_output([[[1, 0]], [[0, 1]]], [[1], [1]]),
        # Text sample 0 has a padding token with large values: pooling and attention must ignore it.
        "text": encoder_output([[[1, 0], [100, -100]], [[0, 1], [0, 1]]], [[1, 0], [1, 1]]),
        "video": encoder_output([[[0, 1]], [[1, 0]]], [[1], [1]]),
    }

    result = aligner(outputs)

    # Identity projections: ā = t̄ = [[1, 0], [0, 1]] and v̄ = [[0, 1], [1, 0]]. With identity
    # attention weights and one distinct real key per sample, c̄_vt = t̄, c̄_va = ā, c̄_ta = ā.
    # Cosine matrices: a-t and t-a are the identity, every pair with v is [[0, 1], [1, 0]].
    # For B = 2, δ = mean over rows of log(1 + exp(off-diagonal - diagonal)):
    #   identity -> log(1 + e^-1), swapped -> log(1 + e^1).
    # Pairs: δ(a,t), δ(t,a) -> 2 x log(1 + e^-1); δ(a,v), δ(v,a), δ(t,v), δ(v,t) -> 4 x log(1 + e).
    # Cross terms: δ(ā, c̄_vt) = δ(a,t), δ(t̄, c̄_va) = δ(t,a), δ(v̄, c̄_ta) = δ(v,a).
    near, far = math.log(1 + math.exp(-1)), math.log(1 + math.e)
    expected = 4 * near + 5 * far
    assert expected == pytest.approx(7.819356, abs=1e-6)
    assert result.loss.item() == pytest.approx(expected, abs=1e-5)
    assert result.layer_losses[0].item() == pytest.approx(expected, abs=1e-5)
    assert torch.allclose(result.embeddings["video<-text"], torch.tensor([[1.0, 0.0], [0.0, 1.0]]))
    assert torch.allclose(result.embeddings["text<-audio"], torch.tensor([[1.0, 0.0], [0.0, 1.0]]))


# The full MMA loss against an independent NumPy implementation


def np_delta(v, w, temperature):
    v = v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-8)
    w = w / np.maximum(np.linalg.norm(w, axis=1, keepdims=True), 1e-8)
    scores = v @ w.T / temperature
    log_probabilities = scores - np.log(np.exp(scores).sum(axis=1, keepdims=True))
    return -np.mean(np.diag(log_probabilities))


def np_pool(states, mask):
    return (states * mask[..., None]).sum(axis=1) / mask.sum(axis=1, keepdims=True)


def np_linear(x, linear):
    return x @ linear.weight.detach().numpy().T + linear.bias.detach().numpy()


def np_cross_attention(query, key_value, key_mask, module):
    heads = module.num_heads
    q = np_linear(query, module.query_projection)
    k = np_linear(key_value, module.key_projection)
    v = np_linear(key_value, module.value_projection)
    batch_size, _, size = q.shape
    head_size = size // heads
    merged = np.zeros_like(q)
    for b, h in itertools.product(range(batch_size), range(heads)):
        columns = slice(h * head_size, (h + 1) * head_size)
        scores = q[b, :, columns] @ k[b, :, columns].T / math.sqrt(head_size)  # (Tq, Tk)
        scores[:, key_mask[b] == 0] = -np.inf
        weights = np.exp(scores - scores.max(axis=1, keepdims=True))
        weights /= weights.sum(axis=1, keepdims=True)
        merged[b, :, columns] = weights @ v[b, :, columns]
    return np_linear(merged, module.output_projection)


def np_mma_loss(aligner, outputs, temperature):
    total = 0.0
    for position in range(len(aligner.layers)):
        projected, masks = {}, {}
        for m, output in outputs.items():
            states = output.hidden_states[aligner.hidden_state_indices[m][position]].numpy()
            projected[m] = np_linear(states, aligner.projections[m])
            masks[m] = output.attention_mask.numpy().astype(np.float64)
        pooled = {m: np_pool(projected[m], masks[m]) for m in projected}
        loss = sum(np_delta(pooled[x], pooled[y], temperature) for x, y in itertools.permutations(pooled, 2))
        for anchor, query, key in (("audio", "video", "text"), ("text", "video", "audio"),
                                   ("video", "text", "audio")):
            attended = np_cross_attention(projected[query], projected[key], masks[key],
                                          aligner.cross_attention(query, key))
            loss += np_delta(pooled[anchor], np_pool(attended, masks[query]), temperature)
        total += loss
    return total


@pytest.mark.parametrize("share", [False, True], ids=["per-pair", "shared"])
def test_mma_loss_matches_numpy_reference(share):
    torch.manual_seed(0)
    generator = torch.Generator().manual_seed(1)
    sizes = {"audio": 6, "text": 5, "video": 3}
    aligner = MultiLayerAligner(shapes(audio=(6, 3), text=(5, 3), video=(3, 3)), layers=[1, -1],
                                projection_size=4, num_heads=2, temperature=0.7,
                                share_cross_attention_across_pairs=share)
    outputs = random_outputs(generator, batch_size=3, lengths={"audio": 5, "text": 3, "video": 4},
                             sizes=sizes, num_layers=3)

    with torch.no_grad():
        result = aligner(outputs)

    assert result.loss.item() == pytest.approx(np_mma_loss(aligner, outputs, 0.7), rel=1e-5)
    assert list(result.layer_losses) == [1, -1]
    assert result.loss.item() == pytest.approx(sum(v.item() for v in result.layer_losses.values()), rel=1e-6)


# Structure and subsets


def test_cross_attention_pooled_matches_token_mean():
    torch.manual_seed(0)
    attention = CrossAttention(8, num_heads=2)
    query, key_value = torch.randn(3, 5, 8), torch.randn(3, 4, 8)
    query_mask = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 0, 0, 0], [1, 0, 0, 0, 0]])
    key_mask = torch.tensor([[1, 1, 1, 1], [1, 0, 0, 0], [1, 1, 0, 0]])

    pooled = attention.pooled(query, key_value, key_mask, query_mask)

    expected = masked_mean(attention(query, key_value, key_mask), query_mask)
    assert torch.allclose(pooled, expected, atol=1e-6)


def test_mma_shares_modules_across_layers():
    per_pair = MultiLayerAligner(shapes(audio=(6, 4), text=(5, 4), video=(3, 4)), layers=[1, 2, 3],
                                 projection_size=8, num_heads=2)
    shared = MultiLayerAligner(shapes(audio=(6, 4), text=(5, 4), video=(3, 4)), layers=[1, 2, 3],
                               projection_size=8, num_heads=2, share_cross_attention_across_pairs=True)

    def count(aligner, kind):
        return sum(isinstance(module, kind) for module in aligner.modules())

    assert count(per_pair, CrossAttention) == 3
    assert count(shared, CrossAttention) == 1
    assert count(per_pair, torch.nn.Linear) == 3 + 3 * 4  # projections + 4 linears per cross-attention
    assert per_pair.hidden_state_indices == {"audio": (2, 3, 4), "text": (2, 3, 4), "video": (2, 3, 4)}


def test_mma_embeddings_at_final_layer():
    torch.manual_seed(0)
    aligner = MultiLayerAligner(shapes(audio=(6, 2), text=(5, 2), video=(3, 2)), layers=[0, 1],
                                projection_size=8, num_heads=2)
    outputs = random_outputs(torch.Generator().manual_seed(0), 4, {"audio": 5, "text": 3, "video": 4},
                             {"audio": 6, "text": 5, "video": 3}, num_layers=2)

    result = aligner(outputs)

    assert aligner.embedding_names == ("audio", "text", "video", "video<-text", "video<-audio", "text<-audio")
    assert set(result.embeddings) == set(aligner.embedding_names)
    assert all(embedding.shape == (4, 8) for embedding in result.embeddings.values())
    audio = outputs["audio"]
    expected = aligner.projections["audio"](audio.hidden_states[2])
    expected = (expected * audio.attention_mask[..., None]).sum(1) / audio.attention_mask.sum(1, keepdim=True)
    assert torch.allclose(result.embeddings["audio"], expected, atol=1e-6)


def test_mma_two_modalities_keep_their_pairs():
    torch.manual_seed(0)
    aligner = MultiLayerAligner(shapes(audio=(6, 2), text=(5, 2)), layers=[-1], projection_size=4,
                                num_heads=1)
    outputs = random_outputs(torch.Generator().manual_seed(0), 3, {"audio": 5, "text": 3},
                             {"audio": 6, "text": 5}, num_layers=2)

    with torch.no_grad():
        result = aligner(outputs)

    pooled_audio, pooled_text = result.embeddings["audio"].numpy(), result.embeddings["text"].numpy()
    expected = np_delta(pooled_audio, pooled_text, 1.0) + np_delta(pooled_text, pooled_audio, 1.0)
    assert aligner.embedding_names == ("audio", "text", "text<-audio")
    assert result.loss.item() == pytest.approx(expected, rel=1e-5)


def test_mma_one_modality_has_no_loss():
    aligner = MultiLayerAligner(shapes(video=(3, 2)), layers=[-1], projection_size=4, num_heads=1)
    outputs = random_outputs(torch.Generator().manual_seed(0), 3, {"video": 4}, {"video": 3}, num_layers=2)

    result = aligner(outputs)

    assert result.loss.item() == 0.0
    assert set(result.embeddings) == {"video"}


def test_mma_batch_of_one_no_nan():
    aligner = MultiLayerAligner(shapes(audio=(6, 2), text=(5, 2), video=(3, 2)), layers=[0, 1],
                                projection_size=4, num_heads=2)
    outputs = random_outputs(torch.Generator().manual_seed(0), 1, {"audio": 5, "text": 3, "video": 4},
                             {"audio": 6, "text": 5, "video": 3}, num_layers=2)

    result = aligner(outputs)
    result.loss.backward()

    assert result.loss.item() == 0.0
    assert all(torch.isfinite(p.grad).all() for p in aligner.parameters() if p.grad is not None)


def test_mma_ignores_padded_tokens():
    torch.manual_seed(0)
    aligner = MultiLayerAligner(shapes(audio=(6, 2), text=(5, 2), video=(3, 2)), layers=[1],
                                projection_size=4, num_heads=2)
    outputs = random_outputs(torch.Generator().manual_seed(3), 3, {"audio": 5, "text": 3, "video": 4},
                             {"audio": 6, "text": 5, "video": 3}, num_layers=2)
    changed = dict(outputs)
    text = outputs["text"]
    padding = (text.attention_mask == 0)[..., None]
    assert padding.any()
    changed["text"] = EncoderOutput(
        hidden_states=tuple(state.masked_fill(padding, 1e3) for state in text.hidden_states),
        attention_mask=text.attention_mask,
    )

    with torch.no_grad():
        original, perturbed = aligner(outputs), aligner(changed)

    assert original.loss.item() == pytest.approx(perturbed.loss.item(), rel=1e-6)


def test_layers_out_of_range_rejected():
    with pytest.raises(RecipeError, match="contains 9, but the text encoder has 2 layers"):
        MultiLayerAligner(shapes(audio=(6, 12), text=(5, 2)), layers=[9, 10, 11])
    with pytest.raises(RecipeError, match="without repeats"):
        MultiLayerAligner(shapes(audio=(6, 12)), layers=[1, 1])


@pytest.mark.parametrize("temperature", [0.0, float("nan"), float("inf")])
def test_temperature_must_be_finite_and_positive(temperature):
    with pytest.raises(RecipeError, match="temperature a finite number > 0"):
        MultiLayerAligner(shapes(audio=(6, 2), text=(5, 2)), layers=[1], temperature=temperature)


def test_only_projection_aligner_ignores_layers():
    assert MultiLayerAligner.uses_recipe_layers
    assert JointCrossAttentionAligner.uses_recipe_layers
    assert CrossSelfAttentionAligner.uses_recipe_layers
    assert not ProjectionAligner.uses_recipe_layers


def test_projection_size_divisible_by_heads():
    with pytest.raises(RecipeError, match="not divisible"):
        MultiLayerAligner(shapes(audio=(6, 2), text=(5, 2)), layers=[1], projection_size=6, num_heads=4)


def test_from_spec_reads_recipe_keys():
    spec = AlignerSpec(layers=[-2, -1], temperature=0.2, projection_size=8, num_heads=2,
                       share_cross_attention_across_pairs=True)

    aligner = MultiLayerAligner.from_spec(spec, shapes(audio=(6, 3), text=(5, 3), video=(3, 3)))

    assert aligner.layers == (-2, -1)
    assert aligner.hidden_state_indices["audio"] == (2, 3)
    assert aligner.temperature == 0.2
    assert aligner.embedding_size == 8
    assert aligner.share_cross_attention_across_pairs


# Baselines


BASELINES = [JointCrossAttentionAligner, CrossSelfAttentionAligner]


@pytest.mark.parametrize("aligner_class", BASELINES, ids=["praveen", "sun"])
def test_attention_baselines_train(aligner_class):
    torch.manual_seed(0)
    aligner = aligner_class(shapes(audio=(6, 2), text=(5, 2), video=(3, 2)), layers=[0, 1],
                            projection_size=8, num_heads=2)
    outputs = random_outputs(torch.Generator().manual_seed(0), 4, {"audio": 5, "text": 3, "video": 4},
                             {"audio": 6, "text": 5, "video": 3}, num_layers=2)

    result = aligner(outputs)
    result.loss.backward()

    pooled = {m: result.embeddings[m].detach().numpy() for m in ("audio", "text", "video")}
    final_layer = sum(np_delta(pooled[x], pooled[y], 1.0) for x, y in itertools.permutations(pooled, 2))
    assert set(result.embeddings) == {"audio", "text", "video"}
    assert result.layer_losses[1].item() == pytest.approx(final_layer, rel=1e-5)
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in aligner.parameters())


@pytest.mark.parametrize("aligner_class", BASELINES, ids=["praveen", "sun"])
def test_attention_baselines_sample_independent(aligner_class):
    torch.manual_seed(0)
    aligner = aligner_class(shapes(audio=(6, 2), text=(5, 2), video=(3, 2)), layers=[1],
                            projection_size=8, num_heads=2).eval()
    outputs = random_outputs(torch.Generator().manual_seed(0), 3, {"audio": 5, "text": 3, "video": 4},
                             {"audio": 6, "text": 5, "video": 3}, num_layers=2)
    alone = {m: EncoderOutput(hidden_states=tuple(s[2:3] for s in o.hidden_states),
                              attention_mask=o.attention_mask[2:3]) for m, o in outputs.items()}

    with torch.no_grad():
        batched, single = aligner(outputs), aligner(alone)

    for name in ("audio", "text", "video"):
        assert torch.allclose(batched.embeddings[name][2], single.embeddings[name][0], atol=1e-5), name


@pytest.mark.parametrize("aligner_class", BASELINES, ids=["praveen", "sun"])
def test_attention_baselines_one_modality(aligner_class):
    aligner = aligner_class(shapes(text=(5, 2)), layers=[1], projection_size=8, num_heads=2)
    outputs = random_outputs(torch.Generator().manual_seed(0), 2, {"text": 3}, {"text": 5}, num_layers=2)

    result = aligner(outputs)

    assert result.loss.item() == 0.0
    assert result.embeddings["text"].shape == (2, 8)


def test_none_aligner_pools_last_layer():
    torch.manual_seed(0)
    aligner = ProjectionAligner.from_spec(AlignerSpec(name="none", projection_size=4),
                                          shapes(audio=(6, 3), video=(3, 3)))
    outputs = random_outputs(torch.Generator().manual_seed(0), 2, {"audio": 5, "video": 4},
                             {"audio": 6, "video": 3}, num_layers=3)

    result = aligner(outputs)

    audio = outputs["audio"]
    projected = aligner.projections["audio"](audio.hidden_states[-1])
    mask = audio.attention_mask[..., None]
    expected = (projected * mask).sum(1) / mask.sum(1)
    assert result.loss.item() == 0.0
    assert result.layer_losses == {}
    assert aligner.embedding_names == ("audio", "video")
    assert torch.allclose(result.embeddings["audio"], expected, atol=1e-6)
