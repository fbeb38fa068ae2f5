"""Pieces shared by the built-in aligners: layer selection, projections, pooling and attention."""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from typing import ClassVar, Protocol

import torch
import torch.nn.functional as F
from torch import nn

from camabc_core.errors import RecipeError
from camabc_core.interfaces import MODALITIES, Aligner, EncoderOutput, Modality
from camabc_core.losses import delta_loss


class EncoderShape(Protocol):
    """Encoder properties an aligner reads; every ``Encoder`` provides them."""

    @property
    def hidden_size(self) -> int: ...

    @property
    def num_layers(self) -> int: ...


def mean_weights(mask: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """Turn a (B, T) 0/1 mask into averaging weights that sum to 1 over each row's real positions."""
    weights = mask.to(dtype)
    return weights / weights.sum(dim=1, keepdim=True).clamp(min=1.0)


def masked_mean(states: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Average (B, T, D) over the positions where ``mask`` (B, T) is 1; returns (B, D)."""
    # A batched matrix product, so the (B, T, D) masked copy is never materialised.
    return torch.einsum("bt,btd->bd", mean_weights(mask, states.dtype), states)


def resolve_layer(layer: int, num_layers: int, modality: str) -> int:
    """Map a 0-based (or negative, from the end) encoder layer to its ``hidden_states`` index."""
    resolved = layer if layer >= 0 else num_layers + layer
    if not 0 <= resolved < num_layers:
        raise RecipeError(
            f"model.aligner.layers contains {layer}, but the {modality} encoder has {num_layers} layers. "
            f"Use 0-based indices 0..{num_layers - 1}, or negative ones counted from the end (-1 is "
            "the last layer)."
        )
    return resolved + 1  # hidden_states[0] is the embedding output


def pairwise_delta_loss(pooled: Mapping[str, torch.Tensor], temperature: float) -> torch.Tensor:
    """Sum δ(α, β) over every ordered pair of distinct embeddings (6 pairs for three modalities)."""
    loss = torch.zeros((), dtype=torch.float32, device=next(iter(pooled.values())).device)
    for first, second in itertools.permutations(pooled, 2):
        loss = loss + delta_loss(pooled[first], pooled[second], temperature)
    return loss


class CrossAttention(nn.Module):
    """Multi-head attention of ``query`` tokens over ``key_value`` tokens, without a residual.

    ``forward(query (B, Tq, D), key_value (B, Tk, D), key_mask (B, Tk)) -> (B, Tq, D)``; keys where
    ``key_mask`` is 0 get no attention weight. Every key sequence must have at least one real token.
    """

    def __init__(self, size: int, num_heads: int) -> None:
        super().__init__()
        if size % num_heads != 0:
            raise RecipeError(
                f"model.aligner.projection_size={size} is not divisible by model.aligner.num_heads="
                f"{num_heads}; choose sizes so that each head gets projection_size / num_heads features."
            )
        self.num_heads = num_heads
        self.query_projection = nn.Linear(size, size)
        self.key_projection = nn.Linear(size, size)
        self.value_projection = nn.Linear(size, size)
        self.output_projection = nn.Linear(size, size)

    def forward(self, query: torch.Tensor, key_value: torch.Tensor, key_mask: torch.Tensor) -> torch.Tensor:
        attended = self._attend_heads(query, key_value, key_mask)  # (B, H, Tq, D / H)
        batch_size, _, query_length, _ = attended.shape
        merged = attended.transpose(1, 2).reshape(batch_size, query_length, -1)  # (B, Tq, D)
        return self.output_projection(merged)

    def pooled(
        self, query: torch.Tensor, key_value: torch.Tensor, key_mask: torch.Tensor, query_mask: torch.Tensor
    ) -> torch.Tensor:
        """Return ``masked_mean(forward(query, key_value, key_mask), query_mask)`` as (B, D).

        The output projection is affine and the mean's weights sum to 1, so pooling first and
        projecting once gives the same result without projecting every query token (1176 of them
        for a 12-frame VideoMAE window).
        """
        attended = self._attend_heads(query, key_value, key_mask)  # (B, H, Tq, D / H)
        weights = mean_weights(query_mask, attended.dtype)  # (B, Tq)
        pooled_heads = torch.einsum("bq,bhqd->bhd", weights, attended)  # (B, H, D / H)
        return self.output_projection(pooled_heads.flatten(1))  # (B, D)

    def _attend_heads(
        self, query: torch.Tensor, key_value: torch.Tensor, key_mask: torch.Tensor
    ) -> torch.Tensor:
        queries = self._split_heads(self.query_projection(query))  # (B, H, Tq, D / H)
        keys = self._split_heads(self.key_projection(key_value))  # (B, H, Tk, D / H)
        values = self._split_heads(self.value_projection(key_value))
        allowed = key_mask.bool()[:, None, None, :]  # (B, 1, 1, Tk), broadcast over heads and queries
        return F.scaled_dot_product_attention(queries, keys, values, attn_mask=allowed)

    def _split_heads(self, states: torch.Tensor) -> torch.Tensor:
        batch_size, length, size = states.shape
        return states.view(batch_size, length, self.num_heads, size // self.num_heads).transpose(1, 2)


class ProjectedAligner(Aligner):
    """Base of the built-in aligners: one linear projection per modality into a shared space.

    Each projection is shared by all aligned layers. ``layers`` contains 0-based encoder layers
    (negative ones count from the end); sample embeddings are taken at the final entry.
    """

    #: Recipe validation checks model.aligner.layers against the encoder configs only for aligners
    #: that read it; an aligner that ignores it sets this to False.
    uses_recipe_layers: ClassVar[bool] = True

    def __init__(
        self,
        encoders: Mapping[Modality, EncoderShape],
        *,
        layers: Sequence[int],
        projection_size: int,
        temperature: float,
    ) -> None:
        super().__init__()
        self.modalities: tuple[Modality, ...] = tuple(m for m in MODALITIES if m in encoders)
        if not self.modalities:
            raise RecipeError("model.encoders: at least one of audio, text and video must be set.")
        if not layers or len(set(layers)) != len(layers):
            raise RecipeError(f"model.aligner.layers must be a non-empty list without repeats, got {layers}.")
        # NaN fails every comparison, so "not temperature > 0" also rejects it; infinity is rejected too.
        if projection_size < 1 or not 0 < temperature < math.inf:
            raise RecipeError(
                f"model.aligner.projection_size must be >= 1 and temperature a finite number > 0, got "
                f"{projection_size} and {temperature}."
            )
        self.layers = tuple(layers)
        self.hidden_state_indices = {
            m: tuple(resolve_layer(layer, encoders[m].num_layers, m) for layer in layers)
            for m in self.modalities
        }
        self.temperature = temperature
        self.projection_size = projection_size
        self.projections = nn.ModuleDict(
            {m: nn.Linear(encoders[m].hidden_size, projection_size) for m in self.modalities}
        )

    @property
    def embedding_size(self) -> int:
        return self.projection_size

    def project(self, outputs: Mapping[Modality, EncoderOutput], position: int) -> dict[str, torch.Tensor]:
        """Project each modality's hidden states at ``self.layers[position]`` to (B, T, projection_size)."""
        return {
            m: self.projections[m](outputs[m].hidden_states[self.hidden_state_indices[m][position]])
            for m in self.modalities
        }

    def check_outputs(self, outputs: Mapping[Modality, EncoderOutput]) -> None:
        missing = [m for m in self.modalities if m not in outputs]
        if missing:
            raise ValueError(
                f"{type(self).__name__} was built for {list(self.modalities)} but got no encoder "
                f"output for {missing}"
            )

    def zero_loss(self, outputs: Mapping[Modality, EncoderOutput]) -> torch.Tensor:
        """Return a float32 scalar zero on the outputs' device, for modality sets with no contrastive term."""
        device = outputs[self.modalities[0]].attention_mask.device
        return torch.zeros((), dtype=torch.float32, device=device)
