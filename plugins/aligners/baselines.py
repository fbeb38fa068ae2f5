"""Alignment baselines: joint cross-attention, cross- and self-attention, and no alignment.

Both attention baselines were published for two modalities; here they are extended to audio, text
and video. Like MMA, they work on the projected hidden states of every aligned layer and share their
attention modules across those layers. Their loss is δ over the 6 ordered pairs of their pooled
per-modality outputs at each aligned layer, without MMA's cross-attended terms. Their embeddings
are keyed ``"audio"``, ``"text"`` and ``"video"``, so they pair with the ``concat`` or
single-modality fusions, not ``hierarchical``.
"""

from __future__ import annotations

import abc
from collections.abc import Mapping, Sequence
from typing import ClassVar

import torch
from torch import nn

from camabc_core.interfaces import AlignerOutput, EncoderOutput, Modality
from camabc_core.recipe import AlignerSpec
from camabc_plugins.aligners.common import (
    CrossAttention,
    EncoderShape,
    ProjectedAligner,
    masked_mean,
    pairwise_delta_loss,
)


class AttentionBaselineAligner(ProjectedAligner):
    """Projects, transforms each modality with attention, pools, and sums δ over ordered pairs."""

    def __init__(
        self,
        encoders: Mapping[Modality, EncoderShape],
        *,
        layers: Sequence[int] = (9, 10, 11),
        projection_size: int = 256,
        num_heads: int = 4,
        temperature: float = 1.0,
    ) -> None:
        super().__init__(encoders, layers=layers, projection_size=projection_size, temperature=temperature)
        self.num_heads = num_heads

    @classmethod
    def from_spec(
        cls, spec: AlignerSpec, encoders: Mapping[Modality, EncoderShape]
    ) -> AttentionBaselineAligner:
        """Build from ``model.aligner``; ``share_cross_attention_across_pairs`` does not apply here."""
        return cls(
            encoders,
            layers=spec.layers,
            projection_size=spec.projection_size,
            num_heads=spec.num_heads,
            temperature=spec.temperature,
        )

    @property
    def embedding_names(self) -> tuple[str, ...]:
        return self.modalities

    @abc.abstractmethod
    def attend(
        self, projected: Mapping[str, torch.Tensor], masks: Mapping[str, torch.Tensor]
    ) -> dict[str, torch.Tensor]:
        """Transform every modality's projected tokens (B, T_m, D); shapes are kept."""

    def forward(self, outputs: Mapping[Modality, EncoderOutput]) -> AlignerOutput:
        self.check_outputs(outputs)
        masks = {m: outputs[m].attention_mask for m in self.modalities}
        layer_losses: dict[int, torch.Tensor] = {}
        pooled: dict[str, torch.Tensor] = {}
        for position, layer in enumerate(self.layers):
            attended = self.attend(self.project(outputs, position), masks)
            pooled = {m: masked_mean(attended[m], masks[m]) for m in self.modalities}  # each (B, D)
            layer_losses[layer] = pairwise_delta_loss(pooled, self.temperature)
        total = torch.stack(list(layer_losses.values())).sum()
        return AlignerOutput(loss=total, embeddings=pooled, layer_losses=layer_losses)


class JointCrossAttentionAligner(AttentionBaselineAligner):
    """Joint cross-attention (recipe name ``praveen``), after Praveen et al., CVPR 2022.

    The original joins time-aligned audio and visual features along the feature axis and lets each
    modality attend to that joint representation. Here token counts differ by modality (audio
    frames, word pieces, video tubelets), so the joint representation is the concatenation of all
    modalities' tokens along the time axis. Each modality's tokens are queries over it, through one
    attention module per modality, and the result is added to the input (the residual of the
    original). Softmax attention with padding masks replaces the original's tanh correlation
    matrix, which assumes equal lengths.
    """

    def __init__(self, encoders: Mapping[Modality, EncoderShape], **options) -> None:
        super().__init__(encoders, **options)
        self.joint_attentions = nn.ModuleDict(
            {m: CrossAttention(self.projection_size, self.num_heads) for m in self.modalities}
        )

    def attend(
        self, projected: Mapping[str, torch.Tensor], masks: Mapping[str, torch.Tensor]
    ) -> dict[str, torch.Tensor]:
        joint = torch.cat([projected[m] for m in self.modalities], dim=1)  # (B, T_a + T_t + T_v, D)
        joint_mask = torch.cat([masks[m] for m in self.modalities], dim=1)
        return {
            m: projected[m] + self.joint_attentions[m](projected[m], joint, joint_mask)
            for m in self.modalities
        }


class CrossSelfAttentionAligner(AttentionBaselineAligner):
    """Cross- and self-attention (recipe name ``sun``), after Sun et al., ICASSP 2021.

    The original lets audio attend to text and text to audio, then applies self-attention to each
    result. With three modalities each modality's tokens attend to the concatenated tokens of the
    other two (cross-attention, residual, LayerNorm), then to themselves (self-attention, residual,
    LayerNorm). A single modality skips the cross-attention step.
    """

    def __init__(self, encoders: Mapping[Modality, EncoderShape], **options) -> None:
        super().__init__(encoders, **options)
        size, heads = self.projection_size, self.num_heads
        self.cross_attentions = nn.ModuleDict({m: CrossAttention(size, heads) for m in self.modalities})
        self.cross_norms = nn.ModuleDict({m: nn.LayerNorm(size) for m in self.modalities})
        self.self_attentions = nn.ModuleDict({m: CrossAttention(size, heads) for m in self.modalities})
        self.self_norms = nn.ModuleDict({m: nn.LayerNorm(size) for m in self.modalities})

    def attend(
        self, projected: Mapping[str, torch.Tensor], masks: Mapping[str, torch.Tensor]
    ) -> dict[str, torch.Tensor]:
        attended = {}
        for m in self.modalities:
            others = [other for other in self.modalities if other != m]
            states = projected[m]  # (B, T_m, D)
            if others:
                context = torch.cat([projected[other] for other in others], dim=1)
                context_mask = torch.cat([masks[other] for other in others], dim=1)
                states = self.cross_norms[m](states + self.cross_attentions[m](states, context, context_mask))
            states = self.self_norms[m](states + self.self_attentions[m](states, states, masks[m]))
            attended[m] = states
        return attended


class ProjectionAligner(ProjectedAligner):
    """No alignment (recipe name ``none``): projected, pooled last-layer features and a zero loss.

    Only ``projection_size`` is read from the recipe; the embeddings always come from each
    encoder's last layer.
    """

    uses_recipe_layers: ClassVar[bool] = False

    def __init__(self, encoders: Mapping[Modality, EncoderShape], *, projection_size: int = 256) -> None:
        super().__init__(encoders, layers=(-1,), projection_size=projection_size, temperature=1.0)

    @classmethod
    def from_spec(cls, spec: AlignerSpec, encoders: Mapping[Modality, EncoderShape]) -> ProjectionAligner:
        return cls(encoders, projection_size=spec.projection_size)

    @property
    def embedding_names(self) -> tuple[str, ...]:
        return self.modalities

    def forward(self, outputs: Mapping[Modality, EncoderOutput]) -> AlignerOutput:
        self.check_outputs(outputs)
        projected = self.project(outputs, 0)
        embeddings = {m: masked_mean(projected[m], outputs[m].attention_mask) for m in self.modalities}
        return AlignerOutput(loss=self.zero_loss(outputs), embeddings=embeddings, layer_losses={})
