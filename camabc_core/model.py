"""The backchannel model: encoders, aligner, fusion and a linear classification head.

``BackchannelModel.from_recipe`` builds every component by name through the plugin registry, so a
third-party encoder, aligner or fusion is used exactly like a built-in one. The factory calls are

    registry.create("encoder", spec.name, spec=EncoderSpec, window=WindowSection)
    registry.create("aligner", spec.name, spec=AlignerSpec, encoders={modality: Encoder})
    registry.create("fusion", spec.name, spec=FusionSpec, aligner=Aligner)

Data flow for a batch of B windows (D_m = encoder width, d = aligner embedding size, C = classes):

    preprocess (data-loader collate)   Window list -> {modality: encoder input tensors}
    encoders                           -> {modality: num_layers + 1 hidden states (B, T_m, D_m), mask}
    aligner                            -> alignment loss (scalar), embeddings {name: (B, d)}
    fusion                             -> (B, fusion.output_size)
    dropout + linear head              -> logits (B, C)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

import attrs
import torch
from torch import nn

from camabc_core.errors import RecipeError
from camabc_core.interfaces import (
    MODALITIES,
    Aligner,
    AlignerOutput,
    Encoder,
    EncoderOutput,
    Fusion,
    Modality,
    Window,
)
from camabc_core.recipe import EncoderSpec, Recipe

ModelInputs = Mapping[str, Mapping[str, torch.Tensor]]


class ComponentRegistry(Protocol):
    """The part of ``camabc_core.registry.Registry`` the model uses."""

    def create(self, kind: str, name: str, **options: Any) -> Any: ...


@attrs.frozen
class ModelOutput:
    """Logits (B, C), the alignment loss (float32 scalar), its per-layer parts and the sample embeddings."""

    logits: torch.Tensor
    alignment_loss: torch.Tensor
    layer_losses: dict[int, torch.Tensor] = attrs.field(factory=dict)
    embeddings: dict[str, torch.Tensor] = attrs.field(factory=dict)


class BackchannelModel(nn.Module):
    """Encoders for any subset of audio, text and video, an aligner, a fusion and a linear head.

    Attributes used by the trainers: ``encoders`` (``nn.ModuleDict`` keyed by modality),
    ``aligner``, ``fusion``, ``head`` (``nn.Linear``, preceded by ``dropout``) and ``modalities``.
    """

    def __init__(
        self,
        encoders: Mapping[Modality, Encoder],
        aligner: Aligner,
        fusion: Fusion,
        num_classes: int,
        *,
        dropout: float = 0.1,
    ) -> None:
        super().__init__()
        if num_classes < 1:
            raise RecipeError(f"num_classes must be at least 1, got {num_classes}")
        for modality, encoder in encoders.items():
            if encoder.modality != modality:
                raise RecipeError(
                    f"model.encoders.{modality} is a {encoder.modality} encoder "
                    f"({type(encoder).__name__}); move it to model.encoders.{encoder.modality}."
                )
        missing = [name for name in fusion.required_embeddings if name not in aligner.embedding_names]
        if missing:
            raise RecipeError(
                f"fusion {type(fusion).__name__} needs embeddings {missing} that aligner "
                f"{type(aligner).__name__} does not produce (it produces {list(aligner.embedding_names)})."
            )
        self.modalities: tuple[Modality, ...] = tuple(m for m in MODALITIES if m in encoders)
        self.encoders = nn.ModuleDict({m: encoders[m] for m in self.modalities})
        self.aligner = aligner
        self.fusion = fusion
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(fusion.output_size, num_classes)

    @classmethod
    def from_recipe(
        cls, recipe: Recipe, num_classes: int, registry: ComponentRegistry | None = None
    ) -> BackchannelModel:
        """Build the model of ``recipe.model``; ``registry`` defaults to the global plugin registry."""
        if registry is None:
            from camabc_core.registry import get_registry

            registry = get_registry()
        section = recipe.model
        encoders: dict[Modality, Encoder] = {}
        for modality in MODALITIES:
            spec = getattr(section.encoders, modality)
            if spec is None:
                continue
            encoder = _build_encoder(registry, modality, spec, recipe)
            _check_component(encoder, Encoder, f"model.encoders.{modality}", spec.name)
            encoders[modality] = encoder
        if not encoders:
            raise RecipeError("model.encoders: set at least one of audio, text and video.")

        aligner = registry.create("aligner", section.aligner.name, spec=section.aligner, encoders=encoders)
        _check_component(aligner, Aligner, "model.aligner", section.aligner.name)
        fusion = registry.create("fusion", section.fusion.name, spec=section.fusion, aligner=aligner)
        _check_component(fusion, Fusion, "model.fusion", section.fusion.name)
        return cls(encoders, aligner, fusion, num_classes, dropout=section.dropout)

    def preprocess(self, windows: Sequence[Window]) -> dict[str, dict[str, torch.Tensor]]:
        """Turn raw windows into encoder inputs per modality (CPU tensors; runs in collate)."""
        inputs = {}
        for modality in self.modalities:
            values = [getattr(window, modality) for window in windows]
            absent = [index for index, value in enumerate(values) if value is None]
            if absent:
                raise ValueError(
                    f"the model uses {modality}, but windows {absent[:10]} have none; check that the "
                    "dataset provides this modality for every sample"
                )
            inputs[modality] = self.encoders[modality].preprocess(values)
        return inputs

    def encode(self, inputs: ModelInputs) -> dict[Modality, EncoderOutput]:
        """Run every encoder; an encoder whose parameters are all frozen runs without autograd."""
        outputs: dict[Modality, EncoderOutput] = {}
        for modality in self.modalities:
            encoder = self.encoders[modality]
            trainable = any(parameter.requires_grad for parameter in encoder.parameters())
            with torch.set_grad_enabled(trainable and torch.is_grad_enabled()):
                outputs[modality] = encoder(**inputs[modality])
        return outputs

    def forward_alignment(self, inputs: ModelInputs) -> AlignerOutput:
        """Encoders and aligner only: the alignment loss and embeddings, without the head."""
        return self.aligner(self.encode(inputs))

    def forward(self, inputs: ModelInputs) -> ModelOutput:
        aligned = self.forward_alignment(inputs)
        fused = self.fusion(aligned.embeddings)  # (B, fusion.output_size)
        logits = self.head(self.dropout(fused))  # (B, C)
        return ModelOutput(
            logits=logits,
            alignment_loss=aligned.loss,
            layer_losses=aligned.layer_losses,
            embeddings=aligned.embeddings,
        )

    def parameter_groups(self) -> dict[str, list[nn.Parameter]]:
        """Trainable parameters by group: encoders, alignment (aligner), classifier (fusion + head)."""
        groups = {
            "encoders": list(self.encoders.parameters()),
            "alignment": list(self.aligner.parameters()),
            "classifier": [*self.fusion.parameters(), *self.head.parameters()],
        }
        return {name: [p for p in parameters if p.requires_grad] for name, parameters in groups.items()}

    def parameter_counts(self) -> dict[str, int]:
        """Parameter counts (trainable or not) per encoder, aligner, fusion and head, for logging."""
        counts = {f"encoder.{m}": _count(self.encoders[m]) for m in self.modalities}
        counts.update(aligner=_count(self.aligner), fusion=_count(self.fusion), head=_count(self.head))
        return counts


def move_inputs(inputs: ModelInputs, device: torch.device | str) -> dict[str, dict[str, torch.Tensor]]:
    """Copy every tensor of a preprocessed batch to ``device``."""
    return {
        modality: {name: tensor.to(device, non_blocking=True) for name, tensor in tensors.items()}
        for modality, tensors in inputs.items()
    }


def _count(module: nn.Module) -> int:
    return sum(parameter.numel() for parameter in module.parameters())


def _build_encoder(registry: ComponentRegistry, modality: Modality, spec: EncoderSpec, recipe: Recipe) -> Any:
    """Build one encoder, turning a ValueError from the model code into a RecipeError naming the key."""
    try:
        return registry.create("encoder", spec.name, spec=spec, window=recipe.data.window)
    except ValueError as error:
        # transformers raises ValueError for sizes that do not fit together, e.g. a hidden_size that
        # num_attention_heads does not divide, in wording that names no recipe key.
        raise RecipeError(
            f"model.encoders.{modality}: the {spec.name!r} encoder cannot be built from this config "
            f"(ValueError: {error}). Check the sizes in model.encoders.{modality}.config and the "
            "checkpoint's config; for example, hidden_size must be a multiple of num_attention_heads."
        ) from error


def _check_component(component: Any, expected: type, key: str, name: str) -> None:
    if not isinstance(component, expected):
        raise RecipeError(
            f"{key}: plugin {name!r} returned {type(component).__name__}, not a "
            f"{expected.__module__}.{expected.__name__}; fix or disable the plugin that registers it."
        )
