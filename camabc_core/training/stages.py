"""The two training stages and their losses.

- Context Alignment (CA): unlabelled windows of whole dialogues; loss = Σ_j L_MMA^j, the alignment
  loss summed over the aligned layers j. No classifier is involved.
- Backchannel Alignment (BA): labelled windows; loss = cross-entropy + λ Σ_j L_MMA^j. The published
  CAMA-BC setting is λ = 0.1; λ = 0 trains on cross-entropy alone.

Either stage is skipped when its recipe section is null.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs
import torch
import torch.nn.functional as F
from torch import nn

from camabc_core.errors import RecipeError
from camabc_core.recipe import Recipe, StageSection

CONTEXT_ALIGNMENT = "context_alignment"
BACKCHANNEL_ALIGNMENT = "backchannel_alignment"
#: Fixed stage order; the index also seeds each stage's data order.
STAGE_ORDER: tuple[str, ...] = (CONTEXT_ALIGNMENT, BACKCHANNEL_ALIGNMENT)
STAGE_TITLES = {CONTEXT_ALIGNMENT: "CA", BACKCHANNEL_ALIGNMENT: "BA"}


def enabled_stages(recipe: Recipe) -> list[tuple[str, StageSection]]:
    """Return the stages the recipe runs, in order; raise RecipeError if both are disabled."""
    stages = [(name, getattr(recipe, name)) for name in STAGE_ORDER if getattr(recipe, name) is not None]
    if not stages:
        raise RecipeError("context_alignment and backchannel_alignment are both null; enable at least one")
    return stages


def check_stages(recipe: Recipe, modalities: tuple[str, ...]) -> None:
    """Reject stage and run settings that cannot train, before any data are loaded."""
    for key in ("checkpoint_every", "cpu_threads"):
        value = getattr(recipe.run, key)
        if value is not None and value < 1:
            raise RecipeError(f"run.{key} must be at least 1 or null, got {value}")
    if recipe.context_alignment is not None and (recipe.model.aligner.name == "none" or len(modalities) < 2):
        raise RecipeError(
            "context_alignment needs an alignment loss, which takes at least two modalities and an "
            f"aligner other than 'none' (modalities {list(modalities)}, aligner "
            f"{recipe.model.aligner.name!r}); set context_alignment: null"
        )
    for name, stage in enabled_stages(recipe):
        if stage.epochs < 1:
            raise RecipeError(f"{name}.epochs must be at least 1, got {stage.epochs}")
        if stage.gradient_accumulation_steps < 1:
            raise RecipeError(f"{name}.gradient_accumulation_steps must be at least 1, "
                              f"got {stage.gradient_accumulation_steps}")
        if stage.alignment_weight < 0:
            raise RecipeError(f"{name}.alignment_weight must be >= 0, got {stage.alignment_weight}")


class StageForward(nn.Module):
    """Wraps the model so both stages go through ``forward`` and return plain dicts of tensors.

    DistributedDataParallel synchronises gradients only for calls of ``forward``. With
    ``find_unused_parameters`` it also walks the output for tensors, and it cannot see inside attrs
    classes such as ``ModelOutput``: it would take every parameter for unused and fail in backward.
    The output is ``{"alignment_loss", "layer_losses"}`` plus ``"logits"`` (B, C) unless
    ``alignment_only``.
    """

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, inputs: Mapping[str, Mapping[str, torch.Tensor]],
                alignment_only: bool = False) -> dict[str, Any]:
        if alignment_only:
            aligned = self.model.forward_alignment(inputs)
            return {"alignment_loss": aligned.loss, "layer_losses": dict(aligned.layer_losses)}
        output = self.model(inputs)
        return {"logits": output.logits, "alignment_loss": output.alignment_loss,
                "layer_losses": dict(output.layer_losses)}


@attrs.frozen
class StageLoss:
    """The loss to back-propagate and its parts as floats for logging."""

    total: torch.Tensor
    parts: dict[str, float]


def layer_parts(output: Mapping[str, Any]) -> dict[str, float]:
    layer_losses = output.get("layer_losses") or {}
    return {f"align_l{layer}": float(value.detach()) for layer, value in sorted(layer_losses.items())}


def context_alignment_loss(output: Mapping[str, Any]) -> StageLoss:
    """Return the Context Alignment loss from a ``StageForward`` output: the summed alignment loss."""
    alignment = output["alignment_loss"]
    if not alignment.requires_grad:
        raise RecipeError(
            "the alignment loss has no gradient (aligner 'none' or a single modality); "
            "Context Alignment cannot train such a model; set context_alignment: null"
        )
    return StageLoss(alignment, {"align": float(alignment.detach()), **layer_parts(output)})


def backchannel_alignment_loss(output: Mapping[str, Any], labels: torch.Tensor,
                               alignment_weight: float) -> StageLoss:
    """Return cross-entropy + ``alignment_weight`` × summed alignment loss of a StageForward output."""
    cross_entropy = F.cross_entropy(output["logits"].float(), labels)
    alignment = output["alignment_loss"]
    total = cross_entropy + alignment_weight * alignment if alignment_weight else cross_entropy
    parts = {"loss": float(total.detach()), "ce": float(cross_entropy.detach())}
    if alignment.requires_grad:  # aligners without a loss (``none``) return a constant zero
        parts["align"] = float(alignment.detach())
    return StageLoss(total, parts)
