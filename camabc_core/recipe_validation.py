"""Semantic checks of a structured recipe: value ranges, cross-field rules and component names.

Every check runs and every problem is reported in one error, so a user fixes a recipe in one pass.
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from typing import TYPE_CHECKING

from camabc_core.errors import PluginError, RecipeError
from camabc_core.labels import build_label_scheme
from camabc_core.recipe import EncoderSpec, Recipe, StageSection

if TYPE_CHECKING:
    from camabc_core.registry import Registry

# VideoMAE embeds the video in tubelets of this many frames unless the encoder config says otherwise.
DEFAULT_TUBELET_SIZE = 2
SPLIT_NAMES = ("train", "validation", "test")


class InvalidRecipeError(RecipeError):
    """A recipe with one or more problems; ``problems`` lists each one as "key.path: message"."""

    def __init__(self, source: str, problems: Sequence[str]) -> None:
        self.source = source
        self.problems = list(problems)
        count = f"{len(self.problems)} problem" + ("s" if len(self.problems) != 1 else "")
        lines = "\n".join(f"  - {problem}" for problem in self.problems)
        super().__init__(f"invalid recipe {source} ({count}):\n{lines}")


def validate_recipe(recipe: Recipe, registry: Registry | None = None, *, source: str = "recipe") -> None:
    """Raise InvalidRecipeError listing every semantic problem of ``recipe``.

    Component names are checked against ``registry`` (the process-wide registry when None), so this
    loads the installed plugins.
    """
    if registry is None:
        from camabc_core.registry import get_registry

        registry = get_registry()
    problems = find_recipe_problems(recipe, registry)
    if problems:
        raise InvalidRecipeError(source, problems)


def find_recipe_problems(recipe: Recipe, registry: Registry) -> list[str]:
    """Return every semantic problem of ``recipe`` as "key.path: message", in recipe order."""
    problems: list[str] = []
    _check_run(recipe, problems)
    _check_data(recipe, registry, problems)
    _check_model(recipe, registry, problems)
    for stage_name in ("context_alignment", "backchannel_alignment"):
        stage = getattr(recipe, stage_name)
        if stage is not None:
            _check_stage(stage_name, stage, problems)
    if recipe.context_alignment is None and recipe.backchannel_alignment is None:
        problems.append(
            "context_alignment, backchannel_alignment: both stages are null, so the recipe trains "
            "nothing; configure at least one"
        )
    if recipe.evaluation.batch_size < 1:
        problems.append(f"evaluation.batch_size: must be at least 1, got {recipe.evaluation.batch_size}")
    return problems


def _check_run(recipe: Recipe, problems: list[str]) -> None:
    run = recipe.run
    if not run.name.strip():
        problems.append("run.name: must not be empty")
    if not run.output_dir.strip():
        problems.append("run.output_dir: must not be empty")
    if run.seed < 0:
        problems.append(f"run.seed: must be 0 or more, got {run.seed}")
    if run.seeds is not None:
        if not run.seeds:
            problems.append("run.seeds: must list at least one seed, or be null to use run.seed")
        if len(set(run.seeds)) != len(run.seeds):
            problems.append(f"run.seeds: contains duplicates {run.seeds}; each seed must appear once")
        if any(seed < 0 for seed in run.seeds):
            problems.append(f"run.seeds: seeds must be 0 or more, got {run.seeds}")
    if run.log_every < 1:
        problems.append(f"run.log_every: must be at least 1 step, got {run.log_every}")
    if run.num_workers < 0:
        problems.append(f"run.num_workers: must be 0 or more, got {run.num_workers}")


def _check_data(recipe: Recipe, registry: Registry, problems: list[str]) -> None:
    data = recipe.data
    _check_component(registry, "dataset", data.dataset, "data.dataset", problems)
    try:
        build_label_scheme(data.label_scheme, data.category_map)
    except RecipeError as error:
        problems.append(str(error))
    if data.max_conversations is not None and data.max_conversations < 1:
        problems.append(
            f"data.max_conversations: must be at least 1, or null for all, got {data.max_conversations}"
        )

    window = data.window
    if window.audio_seconds <= 0:
        problems.append(f"data.window.audio_seconds: must be more than 0 s, got {window.audio_seconds}")
    if window.text_words < 1:
        problems.append(f"data.window.text_words: must be at least 1 word, got {window.text_words}")
    if window.num_frames < 1:
        problems.append(f"data.window.num_frames: must be at least 1, got {window.num_frames}")
    if window.sample_rate < 1:
        problems.append(f"data.window.sample_rate: must be at least 1 Hz, got {window.sample_rate}")
    if window.image_size < 1:
        problems.append(f"data.window.image_size: must be at least 1 pixel, got {window.image_size}")
    video = recipe.model.encoders.video
    if video is not None and window.num_frames >= 1:
        tubelet_size = (video.config or {}).get("tubelet_size", DEFAULT_TUBELET_SIZE)
        if isinstance(tubelet_size, int) and tubelet_size > 0 and window.num_frames % tubelet_size:
            problems.append(
                f"data.window.num_frames: the video encoder groups frames in tubelets of {tubelet_size}, "
                f"so num_frames must be a multiple of {tubelet_size}, got {window.num_frames}"
            )

    sampling = data.sampling
    if sampling.nobc_ratio < 0:
        problems.append(f"data.sampling.nobc_ratio: must be 0 or more, got {sampling.nobc_ratio}")
    if sampling.nobc_tolerance_seconds < 0:
        problems.append(
            "data.sampling.nobc_tolerance_seconds: must be 0 s or more, "
            f"got {sampling.nobc_tolerance_seconds}"
        )
    if len(sampling.split) != len(SPLIT_NAMES):
        problems.append(
            f"data.sampling.split: must list 3 proportions ({', '.join(SPLIT_NAMES)}), got {sampling.split}"
        )
    elif any(ratio <= 0 for ratio in sampling.split):
        problems.append(f"data.sampling.split: every proportion must be more than 0, got {sampling.split}")
    if not 0 <= sampling.label_noise < 1:
        problems.append(
            f"data.sampling.label_noise: must be in [0, 1) (a fraction of labels), got {sampling.label_noise}"
        )


def _check_model(recipe: Recipe, registry: Registry, problems: list[str]) -> None:
    model = recipe.model
    encoders = {
        "audio": model.encoders.audio,
        "text": model.encoders.text,
        "video": model.encoders.video,
    }
    if all(spec is None for spec in encoders.values()):
        problems.append("model.encoders: no encoder is configured; set at least one of audio, text, video")
    for modality, spec in encoders.items():
        if spec is not None:
            _check_encoder(registry, modality, spec, problems)

    aligner = model.aligner
    _check_component(registry, "aligner", aligner.name, "model.aligner.name", problems)
    if not aligner.layers:
        problems.append("model.aligner.layers: must list at least one encoder layer")
    elif len(set(aligner.layers)) != len(aligner.layers):
        problems.append(f"model.aligner.layers: contains duplicates {aligner.layers}")
    if aligner.temperature <= 0:
        problems.append(f"model.aligner.temperature: must be more than 0, got {aligner.temperature}")
    if aligner.projection_size < 1:
        problems.append(f"model.aligner.projection_size: must be at least 1, got {aligner.projection_size}")
    if aligner.num_heads < 1:
        problems.append(f"model.aligner.num_heads: must be at least 1, got {aligner.num_heads}")
    elif aligner.projection_size % aligner.num_heads:
        problems.append(
            f"model.aligner.num_heads: attention splits projection_size ({aligner.projection_size}) "
            f"across heads, so it must divide it exactly, got {aligner.num_heads}"
        )

    _check_component(registry, "fusion", model.fusion.name, "model.fusion.name", problems)
    if not 0 <= model.dropout < 1:
        problems.append(f"model.dropout: must be in [0, 1), got {model.dropout}")


def _check_encoder(registry: Registry, modality: str, spec: EncoderSpec, problems: list[str]) -> None:
    path = f"model.encoders.{modality}"
    factory = _check_component(registry, "encoder", spec.name, f"{path}.name", problems)
    if factory is not None:
        declared = _declared_modality(factory)
        if declared is not None and declared != modality:
            problems.append(
                f"{path}.name: encoder {spec.name!r} encodes {declared}, not {modality}; "
                f"move it under model.encoders.{declared}"
            )
    if spec.max_length < 1:
        problems.append(f"{path}.max_length: must be at least 1 token, got {spec.max_length}")


def _declared_modality(factory: object) -> str | None:
    """Return the ``modality`` of the Encoder class behind a factory, when the factory is a class or
    a classmethod; other factories cannot be inspected without building the encoder."""
    owner = factory
    if inspect.ismethod(factory) and inspect.isclass(factory.__self__):
        owner = factory.__self__
    modality = getattr(owner, "modality", None) if inspect.isclass(owner) else None
    return modality if isinstance(modality, str) else None


def _check_component(
    registry: Registry, kind: str, name: str, path: str, problems: list[str]
) -> object | None:
    """Append a problem when no single plugin provides ``name``; return the factory otherwise."""
    try:
        return registry.get(kind, name)
    except PluginError as error:
        problems.append(f"{path}: {error}")
        return None


def _check_stage(stage_name: str, stage: StageSection, problems: list[str]) -> None:
    def at_least(field: str, minimum: float, unit: str = "") -> None:
        value = getattr(stage, field)
        if value is not None and value < minimum:
            problems.append(f"{stage_name}.{field}: must be at least {minimum}{unit}, got {value}")

    at_least("epochs", 1)
    at_least("max_steps", 1)
    at_least("batch_size", 1)
    at_least("gradient_accumulation_steps", 1)
    at_least("patience", 1, " epoch")
    at_least("max_samples_per_epoch", 1)
    for field in ("lr_encoders", "lr_classifier", "lr_alignment", "weight_decay", "alignment_weight"):
        at_least(field, 0)
    if not 0 < stage.lr_decay <= 1:
        problems.append(f"{stage_name}.lr_decay: must be in (0, 1], got {stage.lr_decay}")
