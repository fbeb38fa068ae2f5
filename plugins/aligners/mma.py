"""Multi-Layer Multimodal Alignment (MMA), the CAMA-BC aligner.

At every aligned layer j the hidden states of each modality m are projected into a shared space
(one linear map W_m per modality, shared by all layers) and average-pooled over real tokens into
sample embeddings ā, t̄, v̄. The layer loss is

    L*_j = Σ over the 6 ordered pairs (α, β) of {ā, t̄, v̄} of δ(α, β)
           + δ(ā, c̄_vt) + δ(t̄, c̄_va) + δ(v̄, c̄_ta)

where c̄_xy is cross-attention with modality x as query and y as key/value, average-pooled over
x's tokens, and δ is ``camabc_core.losses.delta_loss``. The cross-attention direction follows the
information density of the modalities for backchannel prediction (audio > text > video): the
denser modality is the key/value. The aligner loss is Σ_j L*_j.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from torch import nn

from camabc_core.interfaces import AlignerOutput, EncoderOutput, Modality
from camabc_core.losses import delta_loss
from camabc_core.recipe import AlignerSpec
from camabc_plugins.aligners.common import (
    CrossAttention,
    EncoderShape,
    ProjectedAligner,
    masked_mean,
    pairwise_delta_loss,
)

#: (query, key/value) modality pairs of the hierarchical cross-attention.
CROSS_ATTENTION_PAIRS: tuple[tuple[Modality, Modality], ...] = (
    ("video", "text"),
    ("video", "audio"),
    ("text", "audio"),
)

#: (anchor, query, key/value): each cross-attended embedding is aligned with the third modality.
CROSS_ATTENDED_TERMS: tuple[tuple[Modality, Modality, Modality], ...] = (
    ("audio", "video", "text"),
    ("text", "video", "audio"),
    ("video", "text", "audio"),
)


def cross_attended_name(query: str, key: str) -> str:
    """Embedding key of the pooled cross-attention of ``query`` tokens over ``key`` tokens."""
    return f"{query}<-{key}"


class MultiLayerAligner(ProjectedAligner):
    """MMA with hierarchical cross-attention (recipe name ``mma``).

    With a subset of modalities only the terms whose modalities are all present remain: two
    modalities keep their two ordered pairs (no cross-attended term, since each involves all three),
    one modality has no loss. The cross-attention of every present pair is still computed at the
    final aligned layer, because the hierarchical fusion reads those embeddings.

    ``share_cross_attention_across_pairs`` uses one cross-attention module for all three pairs; by
    default each pair has its own. Either way a module is shared by all aligned layers.
    """

    def __init__(
        self,
        encoders: Mapping[Modality, EncoderShape],
        *,
        layers: Sequence[int] = (9, 10, 11),
        projection_size: int = 256,
        num_heads: int = 4,
        temperature: float = 1.0,
        share_cross_attention_across_pairs: bool = False,
    ) -> None:
        super().__init__(encoders, layers=layers, projection_size=projection_size, temperature=temperature)
        present = set(self.modalities)
        self.cross_pairs = tuple((q, k) for q, k in CROSS_ATTENTION_PAIRS if {q, k} <= present)
        self.cross_terms = tuple(term for term in CROSS_ATTENDED_TERMS if set(term) <= present)
        self.share_cross_attention_across_pairs = share_cross_attention_across_pairs
        if share_cross_attention_across_pairs:
            self.shared_cross_attention = CrossAttention(projection_size, num_heads)
        else:
            # Module names cannot hold "<-", so the modules are keyed "<query>_from_<key>".
            self.cross_attentions = nn.ModuleDict(
                {f"{q}_from_{k}": CrossAttention(projection_size, num_heads) for q, k in self.cross_pairs}
            )

    @classmethod
    def from_spec(cls, spec: AlignerSpec, encoders: Mapping[Modality, EncoderShape]) -> MultiLayerAligner:
        return cls(
            encoders,
            layers=spec.layers,
            projection_size=spec.projection_size,
            num_heads=spec.num_heads,
            temperature=spec.temperature,
            share_cross_attention_across_pairs=spec.share_cross_attention_across_pairs,
        )

    @property
    def embedding_names(self) -> tuple[str, ...]:
        return (*self.modalities, *(cross_attended_name(q, k) for q, k in self.cross_pairs))

    def cross_attention(self, query: Modality, key: Modality) -> CrossAttention:
        if self.share_cross_attention_across_pairs:
            return self.shared_cross_attention
        return self.cross_attentions[f"{query}_from_{key}"]

    def forward(self, outputs: Mapping[Modality, EncoderOutput]) -> AlignerOutput:
        self.check_outputs(outputs)
        masks = {m: outputs[m].attention_mask for m in self.modalities}
        loss_pairs = {(query, key) for _, query, key in self.cross_terms}
        layer_losses: dict[int, torch.Tensor] = {}
        embeddings: dict[str, torch.Tensor] = {}
        for position, layer in enumerate(self.layers):
            is_final = position == len(self.layers) - 1
            projected = self.project(outputs, position)  # each (B, T_m, projection_size)
            pooled = {m: masked_mean(projected[m], masks[m]) for m in self.modalities}  # each (B, D)
            cross_pooled = {}
            for query, key in self.cross_pairs:
                if not is_final and (query, key) not in loss_pairs:
                    continue
                cross_pooled[cross_attended_name(query, key)] = self.cross_attention(query, key).pooled(
                    projected[query], projected[key], masks[key], masks[query]
                )

            loss = pairwise_delta_loss(pooled, self.temperature)  # zero for a single modality
            for anchor, query, key in self.cross_terms:
                loss = loss + delta_loss(pooled[anchor], cross_pooled[cross_attended_name(query, key)],
                                         self.temperature)
            layer_losses[layer] = loss
            if is_final:
                embeddings = {**pooled, **cross_pooled}
        total = torch.stack(list(layer_losses.values())).sum()
        return AlignerOutput(loss=total, embeddings=embeddings, layer_losses=layer_losses)
