"""BERT-family text encoder (BERT, KoBERT, RoBERTa, ... through ``AutoModel`` and ``AutoTokenizer``)."""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from typing import Any, ClassVar

import torch
from transformers import AutoConfig, AutoModel, AutoTokenizer, PreTrainedTokenizerBase

from camabc_core.errors import RecipeError
from camabc_core.interfaces import EncoderOutput, Modality
from camabc_core.recipe import EncoderSpec, WindowSection
from camabc_plugins.encoders.loading import TransformersEncoder, check_config_keys, warn_random_weights


class BertEncoder(TransformersEncoder):
    """Speaker transcript -> every hidden state of a BERT-family model.

    ``preprocess`` NFKC-normalises each text, so compatibility jamo such as "ㅋ" (U+314B) become the
    conjoining jamo "ᄏ" (U+110F) that Korean vocabularies contain. It tokenises the text without
    special tokens and keeps the last ``max_length - 2`` tokens, the words right before the
    prediction point. Then it adds the tokenizer's CLS and SEP tokens itself, which gives the BERT
    layout ``[CLS] text [SEP]`` even with tokenizers that would place them elsewhere (KoBERT's loads
    as an XLNet-style SentencePiece tokenizer). Empty text encodes to ``[CLS] [SEP]`` with mask
    ``[1, 1]``.
    """

    modality: ClassVar[Modality] = "text"

    def __init__(
        self,
        model: Any,
        tokenizer: PreTrainedTokenizerBase,
        *,
        max_length: int = 64,
        freeze: bool = False,
    ) -> None:
        super().__init__(model, freeze=freeze)
        self.tokenizer = tokenizer
        limit = getattr(model.config, "max_position_embeddings", None)
        if max_length < 2 or (limit is not None and max_length > limit):
            raise RecipeError(
                f"text encoder max_length={max_length} must be between 2 (room for CLS and SEP) and "
                f"the model's max_position_embeddings={limit}."
            )
        self.max_length = max_length
        for role in ("cls_token_id", "sep_token_id", "pad_token_id"):
            if getattr(tokenizer, role) is None:
                raise RecipeError(
                    f"tokenizer {type(tokenizer).__name__} has no {role.removesuffix('_id')}; "
                    "a BERT-family tokenizer with CLS, SEP and PAD tokens is required."
                )

    @classmethod
    def from_spec(cls, spec: EncoderSpec, window: WindowSection) -> BertEncoder:
        """Build from ``model.encoders.text`` of a recipe.

        With ``checkpoint`` set, ``AutoModel`` and ``AutoTokenizer`` load it (``tokenizer`` may name
        another hub id or directory). With ``checkpoint: null`` the model gets random weights from
        ``config``, a ``BertConfig`` unless ``config.model_type`` names another family. Then
        ``tokenizer`` must name a tokenizer directory or hub id, and ``vocab_size`` defaults to the
        tokenizer's size.
        """
        where = f"model.encoders.text ({spec.name})"
        tokenizer_source = spec.tokenizer or spec.checkpoint
        if tokenizer_source is None:
            raise RecipeError(
                f"{where}: no tokenizer. Set checkpoint to a pretrained model, or tokenizer to a "
                "tokenizer directory or hub id when building from config."
            )
        tokenizer = load_tokenizer(tokenizer_source, where)
        model = build_text_model(spec.checkpoint, dict(spec.config or {}), len(tokenizer), where)
        if len(tokenizer) > model.config.vocab_size:
            raise RecipeError(
                f"{where}: the tokenizer has {len(tokenizer)} tokens but the model's vocab_size is "
                f"{model.config.vocab_size}; use the tokenizer that belongs to the checkpoint."
            )
        return cls(model, tokenizer, max_length=spec.max_length, freeze=spec.freeze)

    def preprocess(self, windows: Sequence[str]) -> dict[str, torch.Tensor]:
        """Return ``input_ids`` and ``attention_mask`` (B, T), right-padded with the PAD token."""
        texts = [unicodedata.normalize("NFKC", text) for text in windows]
        token_ids = self.tokenizer(texts, add_special_tokens=False)["input_ids"]
        keep = self.max_length - 2
        sequences = [
            [self.tokenizer.cls_token_id, *ids[max(len(ids) - keep, 0):], self.tokenizer.sep_token_id]
            for ids in token_ids
        ]
        longest = max(len(sequence) for sequence in sequences)
        input_ids = torch.full((len(sequences), longest), self.tokenizer.pad_token_id, dtype=torch.long)
        attention_mask = torch.zeros((len(sequences), longest), dtype=torch.long)
        for row, sequence in enumerate(sequences):
            input_ids[row, : len(sequence)] = torch.tensor(sequence, dtype=torch.long)
            attention_mask[row, : len(sequence)] = 1
        return {"input_ids": input_ids, "attention_mask": attention_mask}

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> EncoderOutput:
        """Encode (B, T) token ids; returns ``num_layers + 1`` tensors (B, T, D) and the mask."""
        output = self.model(input_ids=input_ids, attention_mask=attention_mask, output_hidden_states=True)
        return EncoderOutput(
            hidden_states=self.check_hidden_states(output.hidden_states), attention_mask=attention_mask
        )


def load_tokenizer(source: str, where: str) -> PreTrainedTokenizerBase:
    try:
        return AutoTokenizer.from_pretrained(source)
    except (OSError, ValueError) as error:
        raise RecipeError(
            f"{where}: cannot load tokenizer {source!r}: {error}\nGive a hub id this machine can "
            "download or a directory saved with save_pretrained (KoBERT's tokenizer also needs the "
            "sentencepiece package)."
        ) from error


def build_text_model(checkpoint: str | None, overrides: dict[str, Any], vocab_size: int, where: str) -> Any:
    """Load ``checkpoint`` with ``AutoModel``, or build a randomly initialised model from ``overrides``."""
    if checkpoint is not None:
        try:
            config = AutoConfig.from_pretrained(checkpoint, **overrides)
            model = AutoModel.from_pretrained(checkpoint, config=config)
        except OSError as error:
            raise RecipeError(
                f"{where}: cannot load checkpoint {checkpoint!r}: {error}\nGive a hub id this machine "
                "can download or a local directory saved with save_pretrained."
            ) from error
    else:
        model_type = overrides.pop("model_type", "bert")
        config_class = type(AutoConfig.for_model(model_type))
        check_config_keys(config_class, overrides, where)
        overrides.setdefault("vocab_size", vocab_size)
        config = config_class(**overrides)
        warn_random_weights(where)
        model = AutoModel.from_config(config)
    # The pooled [CLS] output is never used; its parameters would get no gradient, which
    # DistributedDataParallel rejects by default.
    if getattr(model, "pooler", None) is not None:
        model.pooler = None
    return model

