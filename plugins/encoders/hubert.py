"""HuBERT audio encoder (``HubertModel`` with a ``Wav2Vec2FeatureExtractor``)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import ClassVar

import numpy as np
import torch
from transformers import HubertConfig, HubertModel, Wav2Vec2FeatureExtractor

from camabc_core.errors import RecipeError
from camabc_core.interfaces import AudioWindow, EncoderOutput, Modality
from camabc_core.recipe import EncoderSpec, WindowSection
from camabc_plugins.encoders.loading import TransformersEncoder, build_config, build_model

logger = logging.getLogger(__name__)

# Defaults applied before the recipe's ``config`` overrides. Layer dropping skips whole layers and
# their hidden states, which the aligner indexes by layer. SpecAugment-style time masking needs
# sequences longer than ``mask_time_length`` frames and is not part of the CAMA-BC training recipe.
HUBERT_DEFAULTS = {"layerdrop": 0.0, "apply_spec_augment": False}


class HubertEncoder(TransformersEncoder):
    """Speaker audio -> every HuBERT hidden state, about 50 frames per second.

    Padding. ``preprocess`` drops the samples an ``AudioWindow`` marks as padding (the zeros before
    the start of the media), right-pads the batch and returns the sample-level attention mask.
    HuBERT base normalises its first convolution with GroupNorm over time
    (``feat_extract_norm="group"``), so zero padding would change the statistics of every padded
    sample, and that checkpoint was trained without an attention mask. For such models ``forward``
    runs each group of equal-length samples on its own, unpadded, and pads only the outputs. Models
    with ``feat_extract_norm="layer"`` (HuBERT large) normalise each frame on its own and get the
    attention mask. Either way a sample's features do not depend on the rest of its batch.

    Inputs shorter than the convolutional receptive field (400 samples, 25 ms, for the HuBERT
    convolution stack) are zero-padded to it and the added zeros count as real audio, so every
    sample yields at least one frame.
    """

    modality: ClassVar[Modality] = "audio"

    def __init__(
        self,
        model: HubertModel,
        feature_extractor: Wav2Vec2FeatureExtractor,
        *,
        freeze: bool = False,
    ) -> None:
        super().__init__(model, freeze=freeze)
        self.feature_extractor = feature_extractor
        # The learned mask embedding is only used by SpecAugment. Unused, it would get no gradient,
        # which DistributedDataParallel rejects by default.
        masked_spec_embed = getattr(model, "masked_spec_embed", None)
        if masked_spec_embed is not None and not model.config.apply_spec_augment:
            masked_spec_embed.requires_grad_(False)

    @classmethod
    def from_spec(cls, spec: EncoderSpec, window: WindowSection) -> HubertEncoder:
        """Build from ``model.encoders.audio`` of a recipe; ``window.sample_rate`` must match the model's."""
        where = f"model.encoders.audio ({spec.name})"
        overrides = {**HUBERT_DEFAULTS, **(spec.config or {})}
        config = build_config(HubertConfig, spec.checkpoint, overrides, where)
        if config.layerdrop > 0:
            raise RecipeError(
                f"{where}: config layerdrop={config.layerdrop} skips layers and their hidden states, "
                "which the aligner needs. Set layerdrop: 0."
            )
        model = build_model(HubertModel, config, spec.checkpoint, where)
        feature_extractor = load_feature_extractor(spec.checkpoint, config)
        if feature_extractor.sampling_rate != window.sample_rate:
            raise RecipeError(
                f"data.window.sample_rate is {window.sample_rate} Hz but {where} expects "
                f"{feature_extractor.sampling_rate} Hz. Set data.window.sample_rate: "
                f"{feature_extractor.sampling_rate}."
            )
        return cls(model, feature_extractor, freeze=spec.freeze)

    @property
    def sample_rate(self) -> int:
        return int(self.feature_extractor.sampling_rate)

    @property
    def receptive_field(self) -> int:
        """Input samples that contribute to one output frame (400 for the HuBERT convolution stack)."""
        field, stride = 1, 1
        for kernel_size, conv_stride in zip(self.model.config.conv_kernel, self.model.config.conv_stride):
            field += (kernel_size - 1) * stride
            stride *= conv_stride
        return field

    def frame_lengths(self, sample_lengths: torch.Tensor) -> torch.Tensor:
        """Output frames for inputs of ``sample_lengths`` samples (no convolution padding)."""
        lengths = sample_lengths
        for kernel_size, conv_stride in zip(self.model.config.conv_kernel, self.model.config.conv_stride):
            lengths = torch.div(lengths - kernel_size, conv_stride, rounding_mode="floor") + 1
        return lengths

    def preprocess(self, windows: Sequence[AudioWindow]) -> dict[str, torch.Tensor]:
        """Return ``input_values`` (B, S) float32 and ``attention_mask`` (B, S), 1 on real samples."""
        waveforms = []
        for index, window in enumerate(windows):
            if window.sample_rate != self.sample_rate:
                raise ValueError(
                    f"audio window {index} has sample rate {window.sample_rate} Hz, the encoder expects "
                    f"{self.sample_rate} Hz; resample it or change data.window.sample_rate"
                )
            samples = np.asarray(window.samples, dtype=np.float32)[~np.asarray(window.padding, dtype=bool)]
            if samples.shape[0] < self.receptive_field:
                samples = np.pad(samples, (0, self.receptive_field - samples.shape[0]))
            waveforms.append(samples)
        # With the attention mask requested, the feature extractor normalises each waveform over its
        # own real samples. Its default of not returning a mask is meant for group-norm models.
        batch = self.feature_extractor(
            waveforms,
            sampling_rate=self.sample_rate,
            padding="longest",
            return_attention_mask=True,
            return_tensors="pt",
        )
        return {"input_values": batch["input_values"], "attention_mask": batch["attention_mask"]}

    def forward(self, input_values: torch.Tensor, attention_mask: torch.Tensor) -> EncoderOutput:
        """Encode (B, S) waveforms; returns ``num_layers + 1`` tensors (B, T, D) and a (B, T) mask."""
        sample_lengths = attention_mask.sum(dim=-1)
        frame_lengths = self.frame_lengths(sample_lengths)
        if self.model.config.feat_extract_norm == "group":
            hidden_states = self._encode_equal_length_groups(input_values, sample_lengths, frame_lengths)
        else:
            output = self.model(input_values, attention_mask=attention_mask, output_hidden_states=True)
            hidden_states = self.check_hidden_states(output.hidden_states)
        num_frames = hidden_states[0].shape[1]
        frame_mask = torch.arange(num_frames, device=input_values.device)[None, :] < frame_lengths[:, None]
        return EncoderOutput(hidden_states=hidden_states, attention_mask=frame_mask.long())

    def _encode_equal_length_groups(
        self, input_values: torch.Tensor, sample_lengths: torch.Tensor, frame_lengths: torch.Tensor
    ) -> tuple[torch.Tensor, ...]:
        """Run each set of equal-length samples without padding, then right-pad the outputs."""
        groups = []
        for length in torch.unique(sample_lengths).tolist():
            rows = torch.nonzero(sample_lengths == length).squeeze(1)
            output = self.model(input_values[rows, :length], output_hidden_states=True)
            groups.append((rows, self.check_hidden_states(output.hidden_states)))  # each (n, T_group, D)
        if len(groups) == 1:
            return groups[0][1]

        batch_size = input_values.shape[0]
        max_frames = int(frame_lengths.max())
        padded = []
        for layer in range(self.num_layers + 1):
            first_state = groups[0][1][layer]
            layer_state = first_state.new_zeros(batch_size, max_frames, first_state.shape[-1])
            for rows, states in groups:
                layer_state = layer_state.index_put((rows,), _pad_frames(states[layer], max_frames))
            padded.append(layer_state)
        return tuple(padded)


def _pad_frames(state: torch.Tensor, num_frames: int) -> torch.Tensor:
    """Right-pad (n, T, D) with zeros to (n, num_frames, D)."""
    return torch.nn.functional.pad(state, (0, 0, 0, num_frames - state.shape[1]))


def load_feature_extractor(checkpoint: str | None, config: HubertConfig) -> Wav2Vec2FeatureExtractor:
    """Load the checkpoint's feature extractor, or build one that matches how HuBERT was trained.

    Models with GroupNorm in the first convolution (HuBERT base) were pretrained on unnormalised
    waveforms, those with LayerNorm (HuBERT large) on zero-mean unit-variance ones.
    """
    if checkpoint is not None:
        try:
            return Wav2Vec2FeatureExtractor.from_pretrained(checkpoint)
        except OSError:
            logger.info("No feature extractor config in %s; building one from the model config.", checkpoint)
    return Wav2Vec2FeatureExtractor(
        feature_size=1,
        sampling_rate=16000,
        padding_value=0.0,
        do_normalize=config.feat_extract_norm == "layer",
        return_attention_mask=config.feat_extract_norm == "layer",
    )
