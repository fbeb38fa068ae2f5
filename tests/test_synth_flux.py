"""The flux reference generator on a tiny random FluxPipeline built offline and loaded from disk."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from synth.errors import SynthError
from synth.flux import FluxReferenceGenerator, resolve_dtype, snap_size

diffusers = pytest.importorskip("diffusers")
torch = pytest.importorskip("torch")

LETTERS = "abcdefghijklmnopqrstuvwxyz0123456789-,."
PROMPT = "A bust image of a 37-year-old White woman, wearing shirts, facing forward."


def _tokenizers():
    from transformers import CLIPTokenizer, T5Tokenizer

    # Character-level vocabularies: every prompt character is a token, so no merges are needed.
    clip_vocab = {"<|startoftext|>": 0, "<|endoftext|>": 1}
    for character in LETTERS:
        clip_vocab[character] = len(clip_vocab)
        clip_vocab[f"{character}</w>"] = len(clip_vocab)
    clip = CLIPTokenizer(vocab=clip_vocab, merges=[], model_max_length=77)
    t5_vocab = [("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0), ("▁", -2.0)] + [(c, -3.0) for c in LETTERS]
    t5 = T5Tokenizer(vocab=t5_vocab, extra_ids=0)
    return clip, t5, len(clip_vocab), len(t5_vocab)


@pytest.fixture(scope="module")
def tiny_flux_dir(tmp_path_factory):
    """Save a FluxPipeline with 1-layer transformer, 2-layer text encoders and a 4-level VAE."""
    from diffusers import AutoencoderKL, FlowMatchEulerDiscreteScheduler, FluxPipeline, FluxTransformer2DModel
    from transformers import CLIPTextConfig, CLIPTextModel, T5Config, T5EncoderModel

    torch.manual_seed(0)
    clip_tokenizer, t5_tokenizer, clip_size, t5_size = _tokenizers()
    transformer = FluxTransformer2DModel(
        patch_size=1, in_channels=4, num_layers=1, num_single_layers=1, attention_head_dim=16,
        num_attention_heads=2, joint_attention_dim=32, pooled_projection_dim=32, axes_dims_rope=[4, 4, 8],
    )
    clip = CLIPTextModel(CLIPTextConfig(
        bos_token_id=0, eos_token_id=1, pad_token_id=1, hidden_size=32, intermediate_size=37,
        num_attention_heads=4, num_hidden_layers=2, vocab_size=clip_size, projection_dim=32,
        max_position_embeddings=77,
    ))
    t5 = T5EncoderModel(T5Config(
        vocab_size=t5_size, d_model=32, d_kv=8, d_ff=37, num_layers=2, num_heads=4,
        relative_attention_num_buckets=8, decoder_start_token_id=0, pad_token_id=0, eos_token_id=1,
    ))
    # Four resolution levels give the 8× downsampling of the real Flux VAE.
    vae = AutoencoderKL(
        in_channels=3, out_channels=3, block_out_channels=(4, 4, 4, 4), layers_per_block=1,
        down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4,
        latent_channels=1, norm_num_groups=1, use_quant_conv=False, use_post_quant_conv=False,
        shift_factor=0.0609, scaling_factor=1.5035,
    )
    pipeline = FluxPipeline(
        scheduler=FlowMatchEulerDiscreteScheduler(), vae=vae, text_encoder=clip, tokenizer=clip_tokenizer,
        text_encoder_2=t5, tokenizer_2=t5_tokenizer, transformer=transformer,
    )
    directory = tmp_path_factory.mktemp("tiny_flux")
    pipeline.save_pretrained(directory)
    return directory


def test_snap_512x360_to_512x352(caplog):
    with caplog.at_level(logging.WARNING, logger="synth.flux"):
        assert snap_size(512, 360) == (512, 352)
    assert "512x360 is not a multiple of 16; using 512x352" in caplog.text


def test_snap_keeps_multiples_silently(caplog):
    with caplog.at_level(logging.WARNING, logger="synth.flux"):
        assert snap_size(512, 512) == (512, 512)
    assert caplog.text == ""


def test_snap_rejects_tiny_size():
    with pytest.raises(SynthError, match="at least 16x16"):
        snap_size(8, 64)


def test_half_precision_on_cpu_becomes_float32(caplog):
    with caplog.at_level(logging.WARNING, logger="synth.flux"):
        assert resolve_dtype("float16", "cpu") is torch.float32
    assert "float16 requested on CPU; using float32" in caplog.text
    assert resolve_dtype("auto", "cpu") is torch.float32
    assert resolve_dtype("auto", "cuda:0") is torch.bfloat16


def test_tiny_pipeline_generates_snapped_image(tiny_flux_dir, caplog):
    generator = FluxReferenceGenerator(str(tiny_flux_dir), device="cpu", dtype="float16",
                                       num_inference_steps=2, max_sequence_length=64, local_files_only=True)
    with caplog.at_level(logging.WARNING, logger="synth.flux"):
        image = generator.generate(PROMPT, seed=11, width=512, height=360, attributes={})
    assert image.shape == (352, 512, 3)
    assert image.dtype == np.uint8
    assert image.std() > 0  # random weights still decode to a non-constant image
    assert "using float32" in caplog.text
    assert "using 512x352" in caplog.text
    assert generator._pipeline.transformer.dtype == torch.float32


def test_tiny_pipeline_seed_decides_image(tiny_flux_dir):
    generator = FluxReferenceGenerator(str(tiny_flux_dir), device="cpu", num_inference_steps=2,
                                       max_sequence_length=64, local_files_only=True)
    first = generator.generate(PROMPT, seed=1, width=64, height=48, attributes={})
    again = generator.generate(PROMPT, seed=1, width=64, height=48, attributes={})
    other = generator.generate(PROMPT, seed=2, width=64, height=48, attributes={})
    assert np.array_equal(first, again)
    assert not np.array_equal(first, other)


def test_missing_model_dir_names_fix(tmp_path):
    generator = FluxReferenceGenerator(str(tmp_path / "no_such_model"), device="cpu", local_files_only=True)
    with pytest.raises(SynthError) as raised:
        generator.generate(PROMPT, seed=0, width=64, height=64, attributes={})
    message = str(raised.value)
    assert "no_such_model" in message
    assert "--flux-model" in message


def test_unknown_offload_rejected():
    with pytest.raises(SynthError, match="unknown Flux offload mode 'disk'"):
        FluxReferenceGenerator("model", offload="disk")
