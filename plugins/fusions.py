"""Built-in fusions: ``hierarchical`` (CAMA-BC), ``concat`` and the single-modality baselines.

Every factory has the signature ``from_spec(spec: FusionSpec, aligner: Aligner) -> Fusion``; the model
builds the fusion with ``registry.create("fusion", name, spec=spec, aligner=aligner)``. A fusion reads
the aligner's sample embeddings, all of width ``aligner.embedding_size``, and concatenates some of
them in a fixed order. The classification head that follows is a linear layer.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch

from camabc_core.errors import RecipeError
from camabc_core.hookspecs import Register, hookimpl
from camabc_core.interfaces import MODALITIES, Aligner, Fusion
from camabc_core.recipe import FusionSpec


class ConcatenationFusion(Fusion):
    """Concatenates the named embeddings in order: (B, len(names) * embedding_size)."""

    def __init__(self, names: Sequence[str], embedding_size: int) -> None:
        super().__init__()
        if not names:
            raise RecipeError("a fusion needs at least one embedding to concatenate")
        self.names = tuple(names)
        self.embedding_size = embedding_size

    @property
    def output_size(self) -> int:
        return len(self.names) * self.embedding_size

    @property
    def required_embeddings(self) -> tuple[str, ...]:
        return self.names

    def forward(self, embeddings: Mapping[str, torch.Tensor]) -> torch.Tensor:
        missing = [name for name in self.names if name not in embeddings]
        if missing:
            raise KeyError(f"{type(self).__name__} needs embeddings {missing}; got {sorted(embeddings)}")
        return torch.cat([embeddings[name] for name in self.names], dim=-1)


class HierarchicalFusion(ConcatenationFusion):
    """cat(ā, c̄_va, c̄_ta): the audio embedding and the two audio-keyed cross-attended embeddings.

    Audio is the anchor: video and text enter only through their cross-attention over audio tokens
    (``"video<-audio"``, ``"text<-audio"``). With two modalities the one cross-attended embedding
    that exists is used. It needs an audio encoder and an aligner that produces these embeddings
    (``mma``).
    """

    @classmethod
    def from_spec(cls, spec: FusionSpec, aligner: Aligner) -> HierarchicalFusion:
        available = aligner.embedding_names
        cross_attended = [f"{query}<-audio" for query in ("video", "text") if f"{query}<-audio" in available]
        if "audio" not in available or not cross_attended:
            raise RecipeError(
                f"model.fusion hierarchical needs the audio embedding and at least one of "
                f"'video<-audio' and 'text<-audio', but the aligner {type(aligner).__name__} provides "
                f"{list(available)}. Use aligner mma with audio plus text or video, or fusion concat "
                "(or audio_only, text_only, video_only)."
            )
        return cls(["audio", *cross_attended], aligner.embedding_size)


class ConcatFusion(ConcatenationFusion):
    """Pooled embeddings of every modality, concatenated (the BPM-V-style baseline): cat(ā, t̄, v̄)."""

    @classmethod
    def from_spec(cls, spec: FusionSpec, aligner: Aligner) -> ConcatFusion:
        names = [m for m in MODALITIES if m in aligner.embedding_names]
        return cls(names, aligner.embedding_size)


class SingleModalityFusion(ConcatenationFusion):
    """The pooled embedding of one modality alone (single-encoder baselines)."""

    @classmethod
    def factory_for(cls, modality: str):
        def from_spec(spec: FusionSpec, aligner: Aligner) -> SingleModalityFusion:
            if modality not in aligner.embedding_names:
                raise RecipeError(
                    f"model.fusion {spec.name} needs the {modality} embedding, but the model has no "
                    f"{modality} encoder. Set model.encoders.{modality}, or pick the fusion of an "
                    "encoder the recipe sets."
                )
            return cls([modality], aligner.embedding_size)

        from_spec.__name__ = f"{modality}_only_from_spec"
        return from_spec


@hookimpl
def register_fusions(register: Register) -> None:
    register("hierarchical", HierarchicalFusion.from_spec)
    register("concat", ConcatFusion.from_spec)
    for modality in MODALITIES:
        register(f"{modality}_only", SingleModalityFusion.factory_for(modality))
