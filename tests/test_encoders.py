import logging

import numpy as np
import pytest
import torch
from model_helpers import (
    TINY_WINDOW,
    VOCABULARY,
    audio_window,
    bert_spec,
    hubert_spec,
    video_window,
    videomae_spec,
    write_tokenizer,
)

from camabc_core.errors import RecipeError
from camabc_core.recipe import EncoderSpec, WindowSection
from camabc_plugins.aligners import masked_mean
from camabc_plugins.encoders import BertEncoder, HubertEncoder, VideoMAEEncoder, validate_video_frames


@pytest.fixture(scope="module")
def tokenizer_dir(tmp_path_factory):
    return write_tokenizer(tmp_path_factory.mktemp("tokenizer"))


def build(encoder_class, spec, window=TINY_WINDOW):
    torch.manual_seed(0)
    encoder = encoder_class.from_spec(spec, window)
    return encoder.eval()


def pooled_layers(output, row):
    """Masked mean of every hidden state for one batch row: a list of (D,) tensors."""
    mask = output.attention_mask[row : row + 1]
    return [masked_mean(state[row : row + 1], mask)[0] for state in output.hidden_states]


def assert_same_alone_and_batched(encoder, alone_inputs, batch_inputs, row):
    with torch.inference_mode():
        alone = encoder(**alone_inputs)
        batched = encoder(**batch_inputs)
    for layer, (single, in_batch) in enumerate(zip(pooled_layers(alone, 0), pooled_layers(batched, row))):
        assert torch.allclose(single, in_batch, atol=1e-5), f"layer {layer} differs in a batch"


# HuBERT


def test_hubert_frame_lengths_match_convolutions():
    encoder = build(HubertEncoder, hubert_spec())

    # 16000 samples -> 3199, 1599, 799, 399, 199, 99, 49 frames after the seven convolutions.
    lengths = encoder.frame_lengths(torch.tensor([16000, 400, 8000]))

    assert encoder.receptive_field == 400
    assert lengths.tolist() == [49, 1, 24]


def test_hubert_returns_every_hidden_state():
    encoder = build(HubertEncoder, hubert_spec())
    inputs = encoder.preprocess([audio_window(8000, seed=0), audio_window(16000, seed=1)])

    with torch.inference_mode():
        output = encoder(**inputs)

    assert len(output.hidden_states) == encoder.num_layers + 1 == 3
    assert [tuple(state.shape) for state in output.hidden_states] == [(2, 49, 16)] * 3
    assert output.attention_mask.sum(dim=1).tolist() == [24, 49]


def test_hubert_drops_padding_samples():
    encoder = build(HubertEncoder, hubert_spec())
    window = audio_window(8000, seed=0, num_padded=3200)

    inputs = encoder.preprocess([window])

    assert inputs["input_values"].shape == (1, 4800)
    assert inputs["attention_mask"].sum().item() == 4800


def test_hubert_short_input_padded_to_receptive_field():
    encoder = build(HubertEncoder, hubert_spec())

    inputs = encoder.preprocess([audio_window(399, seed=0)])
    with torch.inference_mode():
        output = encoder(**inputs)

    assert inputs["input_values"].shape == (1, 400)
    assert output.hidden_states[-1].shape == (1, 1, 16)
    assert output.attention_mask.tolist() == [[1]]


def test_hubert_all_padding_window_gives_one_frame():
    encoder = build(HubertEncoder, hubert_spec())

    inputs = encoder.preprocess([audio_window(800, seed=0, num_padded=800), audio_window(8000, seed=1)])
    with torch.inference_mode():
        output = encoder(**inputs)

    assert output.attention_mask.sum(dim=1).tolist() == [1, 24]


@pytest.mark.parametrize(
    "norm_config",
    [{}, {"feat_extract_norm": "layer", "do_stable_layer_norm": True}],
    ids=["group-norm", "layer-norm"],
)
def test_hubert_sample_independent_of_batch(norm_config):
    encoder = build(HubertEncoder, hubert_spec(**norm_config))
    target = audio_window(5600, seed=3)
    batch = [audio_window(8000, seed=4), target, audio_window(2400, seed=5), audio_window(8000, seed=6)]

    assert_same_alone_and_batched(encoder, encoder.preprocess([target]), encoder.preprocess(batch), row=1)


def test_hubert_layer_norm_batch_uses_attention_mask():
    encoder = build(HubertEncoder, hubert_spec(feat_extract_norm="layer", do_stable_layer_norm=True))
    inputs = encoder.preprocess([audio_window(8000, seed=0), audio_window(4000, seed=1)])

    with torch.inference_mode():
        output = encoder(**inputs)

    assert output.attention_mask.sum(dim=1).tolist() == [24, 12]


def test_hubert_rejects_other_sample_rate():
    encoder = build(HubertEncoder, hubert_spec())
    window = audio_window(800, seed=0)
    wrong = type(window)(samples=window.samples, padding=window.padding, sample_rate=8000)

    with pytest.raises(ValueError, match="8000 Hz"):
        encoder.preprocess([wrong])
    with pytest.raises(RecipeError, match="sample_rate"):
        HubertEncoder.from_spec(hubert_spec(), WindowSection(sample_rate=8000))


def test_hubert_rejects_layerdrop():
    with pytest.raises(RecipeError, match="layerdrop"):
        build(HubertEncoder, hubert_spec(layerdrop=0.1))


def test_encoder_config_typo_is_named():
    with pytest.raises(RecipeError, match=r"hiden_size \(did you mean hidden_size"):
        build(HubertEncoder, hubert_spec(hiden_size=8))


def test_random_weights_log_warning(caplog):
    with caplog.at_level(logging.WARNING):
        build(HubertEncoder, hubert_spec())

    assert "random weights" in caplog.text


def test_hubert_loads_saved_checkpoint(tmp_path):
    encoder = build(HubertEncoder, hubert_spec())
    encoder.model.save_pretrained(tmp_path)
    inputs = encoder.preprocess([audio_window(4000, seed=0)])

    reloaded = build(HubertEncoder, EncoderSpec(name="hubert", checkpoint=str(tmp_path)))
    with torch.inference_mode():
        expected = encoder(**inputs).hidden_states[-1]
        actual = reloaded(**reloaded.preprocess([audio_window(4000, seed=0)])).hidden_states[-1]

    assert torch.allclose(expected, actual, atol=1e-6)


# BERT


def token_ids(tokens):
    return [VOCABULARY.index(token) for token in tokens]


def test_bert_normalises_nfkc_before_tokenising(tokenizer_dir):
    encoder = build(BertEncoder, bert_spec(tokenizer_dir))

    inputs = encoder.preprocess(["진짜 ㅋㅋ"])

    # "ㅋ" (U+314B, compatibility jamo) becomes "ᄏ" (U+110F) under NFKC; both are in the vocabulary.
    assert inputs["input_ids"].tolist() == [token_ids(["[CLS]", "진짜", "ᄏ", "##ᄏ", "[SEP]"])]
    assert inputs["attention_mask"].tolist() == [[1, 1, 1, 1, 1]]


def test_bert_empty_text_is_cls_sep(tokenizer_dir):
    encoder = build(BertEncoder, bert_spec(tokenizer_dir))

    inputs = encoder.preprocess([""])

    assert inputs["input_ids"].tolist() == [token_ids(["[CLS]", "[SEP]"])]
    assert inputs["attention_mask"].tolist() == [[1, 1]]


def test_bert_pads_batch_right(tokenizer_dir):
    encoder = build(BertEncoder, bert_spec(tokenizer_dir))

    inputs = encoder.preprocess(["", "yeah right"])

    assert inputs["input_ids"].tolist() == [
        token_ids(["[CLS]", "[SEP]", "[PAD]", "[PAD]"]),
        token_ids(["[CLS]", "yeah", "right", "[SEP]"]),
    ]
    assert inputs["attention_mask"].tolist() == [[1, 1, 0, 0], [1, 1, 1, 1]]


def test_bert_truncation_keeps_last_tokens(tokenizer_dir):
    encoder = build(BertEncoder, bert_spec(tokenizer_dir, max_length=4))

    inputs = encoder.preprocess(["so i think we go ."])

    assert inputs["input_ids"].tolist() == [token_ids(["[CLS]", "go", ".", "[SEP]"])]


def test_bert_returns_every_hidden_state(tokenizer_dir):
    encoder = build(BertEncoder, bert_spec(tokenizer_dir))
    inputs = encoder.preprocess(["네", "so i think we go ."])

    with torch.inference_mode():
        output = encoder(**inputs)

    assert len(output.hidden_states) == 3
    assert [tuple(state.shape) for state in output.hidden_states] == [(2, 8, 24)] * 3
    assert torch.equal(output.attention_mask, inputs["attention_mask"])
    assert encoder.model.pooler is None


def test_bert_sample_independent_of_batch(tokenizer_dir):
    encoder = build(BertEncoder, bert_spec(tokenizer_dir))
    batch = ["so i think we go .", "네", "진짜 ㅋㅋ"]

    assert_same_alone_and_batched(encoder, encoder.preprocess(["네"]), encoder.preprocess(batch), row=1)


def test_bert_needs_a_tokenizer():
    spec = EncoderSpec(name="bert", config={"hidden_size": 8, "num_attention_heads": 2})

    with pytest.raises(RecipeError, match="no tokenizer"):
        BertEncoder.from_spec(spec, TINY_WINDOW)


def test_bert_max_length_within_positions(tokenizer_dir):
    with pytest.raises(RecipeError, match="max_position_embeddings=32"):
        build(BertEncoder, bert_spec(tokenizer_dir, max_length=33))


def test_bert_loads_saved_checkpoint(tokenizer_dir, tmp_path):
    encoder = build(BertEncoder, bert_spec(tokenizer_dir))
    encoder.model.save_pretrained(tmp_path)
    encoder.tokenizer.save_pretrained(tmp_path)

    reloaded = build(BertEncoder, EncoderSpec(name="bert", checkpoint=str(tmp_path), max_length=16))
    inputs = reloaded.preprocess(["진짜 ㅋㅋ"])
    with torch.inference_mode():
        expected = encoder(**inputs).hidden_states[-1]
        actual = reloaded(**inputs).hidden_states[-1]

    assert torch.allclose(expected, actual, atol=1e-6)


# VideoMAE


def test_videomae_12_frames_224_gives_1176_tokens():
    encoder = build(VideoMAEEncoder, videomae_spec(), WindowSection(num_frames=12, image_size=224))

    inputs = encoder.preprocess([video_window(seed=0, num_frames=12, height=240, width=320)])
    with torch.inference_mode():
        output = encoder(**inputs)

    # 12 / 2 tubelets x (224 / 16)² patches.
    assert encoder.tokens_per_layer == 1176
    assert inputs["pixel_values"].shape == (1, 12, 3, 224, 224)
    assert [tuple(state.shape) for state in output.hidden_states] == [(1, 1176, 12)] * 3
    assert output.attention_mask.shape == (1, 1176)


def test_videomae_odd_frame_count_rejected():
    with pytest.raises(RecipeError, match="num_frames is 11"):
        validate_video_frames(11)
    with pytest.raises(RecipeError, match="num_frames is 11"):
        VideoMAEEncoder.from_spec(videomae_spec(), WindowSection(num_frames=11))
    validate_video_frames(12)


def test_videomae_image_size_multiple_of_patch():
    with pytest.raises(RecipeError, match="image_size is 40"):
        VideoMAEEncoder.from_spec(videomae_spec(), WindowSection(num_frames=4, image_size=40))


def test_videomae_rejects_wrong_frame_count():
    encoder = build(VideoMAEEncoder, videomae_spec())

    with pytest.raises(ValueError, match=r"\(6, 40, 48, 3\)"):
        encoder.preprocess([video_window(seed=0, num_frames=6)])


def test_videomae_sample_independent_of_batch():
    encoder = build(VideoMAEEncoder, videomae_spec())
    target = video_window(seed=1)
    batch = [video_window(seed=0), target, video_window(seed=2)]

    assert_same_alone_and_batched(encoder, encoder.preprocess([target]), encoder.preprocess(batch), row=1)


def test_videomae_preprocess_scales_pixels():
    encoder = build(VideoMAEEncoder, videomae_spec())
    window = video_window(seed=0)
    white = type(window)(frames=np.full_like(window.frames, 255), timestamps=window.timestamps)

    pixels = encoder.preprocess([white])["pixel_values"]

    # Default normalisation: (1.0 - 0.5) / 0.5.
    assert pixels.shape == (1, 4, 3, 32, 32)
    assert torch.allclose(pixels, torch.ones_like(pixels))

