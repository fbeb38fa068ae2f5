"""Shared building blocks of the transformers-backed encoders.

Every built-in encoder is built from an ``EncoderSpec``: pretrained weights from ``checkpoint`` (a hub
id or a local directory, read with ``from_pretrained``), or random weights from a ``config`` dict when
``checkpoint`` is null. ``config`` keys also override the fields of a checkpoint's config.
"""

from __future__ import annotations

import difflib
import logging
from collections.abc import Mapping
from typing import Any

import torch
from transformers import PretrainedConfig, PreTrainedModel

from camabc_core.errors import RecipeError
from camabc_core.interfaces import Encoder

logger = logging.getLogger(__name__)


def check_config_keys(config_class: type[PretrainedConfig], overrides: Mapping[str, Any], where: str) -> None:
    """Raise RecipeError listing every key of ``overrides`` that ``config_class`` does not define.

    transformers configs accept any keyword and store it as an attribute, so a misspelt key such as
    ``hiden_size`` would otherwise be ignored without a word.
    """
    reference = config_class()
    known = set(reference.to_dict())
    unknown = [key for key in overrides if key not in known and not hasattr(reference, key)]
    if not unknown:
        return
    lines = []
    for key in unknown:
        matches = difflib.get_close_matches(key, sorted(known), n=3)
        hint = f" (did you mean {', '.join(matches)}?)" if matches else ""
        lines.append(f"  {key}{hint}")
    raise RecipeError(
        f"{where}: unknown {config_class.__name__} field(s):\n" + "\n".join(lines)
        + f"\nValid fields are the attributes of transformers.{config_class.__name__}."
    )


def build_config(
    config_class: type[PretrainedConfig],
    checkpoint: str | None,
    overrides: Mapping[str, Any],
    where: str,
) -> PretrainedConfig:
    """Load the checkpoint's config (or the class defaults) and apply ``overrides``."""
    check_config_keys(config_class, overrides, where)
    if checkpoint is None:
        return config_class(**overrides)
    try:
        return config_class.from_pretrained(checkpoint, **overrides)
    except OSError as error:
        raise RecipeError(
            f"{where}: cannot load the config of checkpoint {checkpoint!r}: {error}\n"
            "Give a hub id that this machine can download, a local directory containing config.json "
            "and the weights, or set checkpoint: null and a config dict to use random weights."
        ) from error


def build_model(
    model_class: type[PreTrainedModel],
    config: PretrainedConfig,
    checkpoint: str | None,
    where: str,
) -> PreTrainedModel:
    """Load pretrained weights from ``checkpoint``, or initialise randomly (with a warning) if it is None."""
    if checkpoint is None:
        warn_random_weights(where)
        return model_class(config)
    try:
        return model_class.from_pretrained(checkpoint, config=config)
    except OSError as error:
        raise RecipeError(
            f"{where}: cannot load weights from checkpoint {checkpoint!r}: {error}\n"
            "Give a hub id that this machine can download or a local directory saved with "
            "save_pretrained."
        ) from error


def warn_random_weights(where: str) -> None:
    logger.warning(
        "%s: random weights (checkpoint is null), so its features carry no pretrained knowledge. "
        "Set checkpoint to a hub id or a local directory to load pretrained weights.",
        where,
    )


class TransformersEncoder(Encoder):
    """Base of the built-in encoders: wraps one transformers model stored as ``self.model``."""

    model: PreTrainedModel

    def __init__(self, model: PreTrainedModel, *, freeze: bool = False) -> None:
        super().__init__()
        self.model = model
        if freeze:
            self.model.requires_grad_(False)

    @property
    def hidden_size(self) -> int:
        return int(self.model.config.hidden_size)

    @property
    def num_layers(self) -> int:
        return int(self.model.config.num_hidden_layers)

    def check_hidden_states(self, hidden_states: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, ...]:
        """Raise RuntimeError unless there are ``num_layers + 1`` hidden states."""
        if len(hidden_states) != self.num_layers + 1:
            raise RuntimeError(
                f"{type(self).__name__}: the model returned {len(hidden_states)} hidden states, expected "
                f"{self.num_layers + 1} (embedding output + {self.num_layers} layers). Layer dropping "
                "(config layerdrop > 0) skips layers and their outputs; set layerdrop to 0."
            )
        return tuple(hidden_states)
