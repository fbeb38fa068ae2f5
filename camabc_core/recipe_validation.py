"""Semantic checks of a structured recipe: value ranges, cross-field rules and component names.

Every check runs and every problem is reported in one error, so a user fixes a recipe in one pass.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from camabc_core.errors import PluginError, RecipeError
from camabc_core.labels import build_label_scheme
from camabc_core.recipe import AlignerSpec, EncoderSpec, Recipe, StageSection
from camabc_core.suggestions import did_you_mean

if TYPE_CHECKING:
    from camabc_core.registry import Registry

# VideoMAE embeds the video in tubelets of this many frames unless the encoder config sets another
# size.
DEFAULT_TUBELET_SIZE = 2
SPLIT_NAMES = ("train", "validation", "test")


class InvalidRecipeError(RecipeError):
    """A recipe with one or more problems; ``problems`` lists each one as "key.path: message"."""

    def __init__(self, source: str, problems: Sequence[str]) -> None:
        self.source = source
        self.problems = list(problems)
        count = f"{len(self.problems)} problem" + ("s" if len(self.problems) != 1 else "")
        super().__init__(f"invalid recipe {source} ({count}):\n{format_problem_list(self.problems)}")


def format_problem_list(problems: Sequence[str]) -> str:
    """Render problems as a "  - " list; the later lines of a problem (a quoted source line) are indented."""
    return "\n".join("  - " + problem.replace("\n", "\n    ") for problem in problems)


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
    reader_factory = _check_component(registry, "dataset", data.dataset, "data.dataset", problems)
    if reader_factory is not None:
        problems.extend(find_reader_option_problems(reader_factory, data.dataset, data.reader_options or {}))
    try:
        build_label_scheme(data.label_scheme, data.category_map)
    except RecipeError as error:
        problems.append(str(error))
    if data.max_conversations is not None and data.max_conversations < 1:
        problems.append(
            f"data.max_conversations: must be at least 1, or null for all, got {data.max_conversations}"
        )

    window = data.window
    if _is_finite("data.window.audio_seconds", window.audio_seconds, problems) and window.audio_seconds <= 0:
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
    if _is_finite("data.sampling.nobc_ratio", sampling.nobc_ratio, problems) and sampling.nobc_ratio < 0:
        problems.append(f"data.sampling.nobc_ratio: must be 0 or more, got {sampling.nobc_ratio}")
    tolerance = sampling.nobc_tolerance_seconds
    if _is_finite("data.sampling.nobc_tolerance_seconds", tolerance, problems) and tolerance < 0:
        problems.append(f"data.sampling.nobc_tolerance_seconds: must be 0 s or more, got {tolerance}")
    if len(sampling.split) != len(SPLIT_NAMES):
        problems.append(
            f"data.sampling.split: must list 3 proportions ({', '.join(SPLIT_NAMES)}), got {sampling.split}"
        )
    elif not all(math.isfinite(ratio) for ratio in sampling.split):
        problems.append(f"data.sampling.split: every proportion must be finite, got {sampling.split}")
    elif any(ratio <= 0 for ratio in sampling.split):
        problems.append(f"data.sampling.split: every proportion must be more than 0, got {sampling.split}")
    label_noise = sampling.label_noise
    if _is_finite("data.sampling.label_noise", label_noise, problems) and not 0 <= label_noise < 1:
        problems.append(
            f"data.sampling.label_noise: must be in [0, 1) (a fraction of labels), got {label_noise}"
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
    aligner_factory = _check_component(registry, "aligner", aligner.name, "model.aligner.name", problems)
    if not aligner.layers:
        problems.append("model.aligner.layers: must list at least one encoder layer")
    elif len(set(aligner.layers)) != len(aligner.layers):
        problems.append(f"model.aligner.layers: contains duplicates {aligner.layers}")
    elif _reads_recipe_layers(aligner_factory):
        for modality, spec in encoders.items():
            if spec is not None:
                _check_layers_exist(aligner, modality, spec, problems)
    temperature = aligner.temperature
    if _is_finite("model.aligner.temperature", temperature, problems) and temperature <= 0:
        problems.append(f"model.aligner.temperature: must be more than 0, got {temperature}")
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
    if _is_finite("model.dropout", model.dropout, problems) and not 0 <= model.dropout < 1:
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
    _check_encoder_config(path, spec.config or {}, problems)


def _config_int(config: dict[str, Any], key: str) -> int | None:
    """Return ``config[key]`` when it is an integer (not a bool); other types are left to the encoder."""
    value = config.get(key)
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _check_encoder_config(path: str, config: dict[str, Any], problems: list[str]) -> None:
    """Check the transformers config sizes that the recipe states, without building the model.

    NOTE: a size the recipe leaves out comes from the checkpoint or the config class, which are not
    loaded here. A mismatch with such a size (e.g. hidden_size 7 with the 12 heads of the transformers
    HuBERT, BERT and VideoMAE defaults) is reported when the model is built.
    """
    for key in ("num_hidden_layers", "hidden_size", "num_attention_heads"):
        value = _config_int(config, key)
        if value is not None and value < 1:
            problems.append(f"{path}.config.{key}: must be at least 1, got {value}")
    hidden_size = _config_int(config, "hidden_size")
    num_heads = _config_int(config, "num_attention_heads")
    if hidden_size is None or num_heads is None or hidden_size < 1 or num_heads < 1:
        return
    if hidden_size % num_heads:
        problems.append(
            f"{path}.config.hidden_size: attention splits hidden_size across num_attention_heads "
            f"({num_heads}), so it must be a multiple of {num_heads}, got {hidden_size}"
        )


def _check_layers_exist(aligner: AlignerSpec, modality: str, spec: EncoderSpec, problems: list[str]) -> None:
    """Report aligned layers beyond the encoder's ``num_hidden_layers`` when the recipe states it."""
    num_layers = _config_int(spec.config or {}, "num_hidden_layers")
    if num_layers is None or num_layers < 1:
        return
    missing = [layer for layer in aligner.layers if not -num_layers <= layer < num_layers]
    if missing:
        problems.append(
            f"model.aligner.layers: contains {', '.join(map(str, missing))}, but "
            f"model.encoders.{modality}.config.num_hidden_layers is {num_layers}; use 0-based layers "
            f"0..{num_layers - 1}, or negative ones counted from the end (-1 is the last layer)"
        )


def _reads_recipe_layers(factory: object) -> bool:
    """Return False when the aligner class behind ``factory`` declares that it ignores aligner.layers."""
    owner = factory.__self__ if inspect.ismethod(factory) else factory
    return bool(getattr(owner, "uses_recipe_layers", True)) if inspect.isclass(owner) else True


def _is_finite(path: str, value: float, problems: list[str]) -> bool:
    """Append a problem for NaN or infinity, which pass every range comparison unnoticed."""
    if math.isfinite(value):
        return True
    problems.append(f"{path}: must be a finite number, got {value}")
    return False


def _declared_modality(factory: object) -> str | None:
    """Return the modality an encoder factory declares without building the encoder.

    A factory declares it as the ``modality`` of its Encoder class (a class or a classmethod), or as
    a ``modality`` attribute of a plain function. Other factories cannot be inspected.
    """
    owner = factory
    if inspect.ismethod(factory) and inspect.isclass(factory.__self__):
        owner = factory.__self__
    if inspect.isclass(owner) or inspect.isfunction(owner):
        modality = getattr(owner, "modality", None)
        return modality if isinstance(modality, str) else None
    return None


def find_reader_option_problems(
    factory: object,
    dataset: str,
    options: dict[str, Any],
    *,
    prefix: str = "data.reader_options.",
    skip_malformed_setting: str = "data.skip_malformed",
) -> list[str]:
    """Return a problem for every reader option that the dataset factory's signature rejects.

    ``prefix`` turns an option key into the setting the user wrote (``data.reader_options.<key>`` in a
    recipe, ``--reader-option <key>`` on the command line). A factory with ``**kwargs`` or without an
    inspectable signature accepts every key here, and its own call reports what it rejects.
    """
    problems = []
    if "skip_malformed" in options:
        problems.append(f"{prefix}skip_malformed: set {skip_malformed_setting} instead, which every "
                        f"reader receives; remove the key from the reader options")
    try:
        parameters = inspect.signature(factory).parameters.values()
    except (TypeError, ValueError):
        return problems
    if any(parameter.kind is inspect.Parameter.VAR_KEYWORD for parameter in parameters):
        return problems
    keyword_kinds = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    accepted = [parameter.name for parameter in parameters
                if parameter.kind in keyword_kinds and parameter.name != "skip_malformed"]
    listing = ", ".join(accepted) or "none"
    for key in options:
        if key != "skip_malformed" and key not in accepted:
            problems.append(f"{prefix}{key}: dataset {dataset!r} has no option {key!r}."
                            f"{did_you_mean(key, accepted)} Accepted options: {listing}.")
    required = [parameter.name for parameter in parameters
                if parameter.kind in keyword_kinds and parameter.default is inspect.Parameter.empty
                and parameter.name not in options]
    if required:
        problems.append(f"{prefix.rstrip('. ')}: dataset {dataset!r} requires the option(s) "
                        f"{', '.join(required)}; add them")
    return problems


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
        if value is None or not _is_finite(f"{stage_name}.{field}", value, problems):
            return
        if value < minimum:
            problems.append(f"{stage_name}.{field}: must be at least {minimum}{unit}, got {value}")

    at_least("epochs", 1)
    at_least("max_steps", 1)
    at_least("batch_size", 1)
    at_least("gradient_accumulation_steps", 1)
    at_least("patience", 1, " epoch")
    at_least("max_samples_per_epoch", 1)
    for field in ("lr_encoders", "lr_classifier", "lr_alignment", "weight_decay", "alignment_weight"):
        at_least(field, 0)
    if _is_finite(f"{stage_name}.lr_decay", stage.lr_decay, problems) and not 0 < stage.lr_decay <= 1:
        problems.append(f"{stage_name}.lr_decay: must be in (0, 1], got {stage.lr_decay}")
    max_norm = stage.max_grad_norm
    path = f"{stage_name}.max_grad_norm"
    if max_norm is not None and _is_finite(path, max_norm, problems) and max_norm <= 0:
        problems.append(f"{path}: must be positive or null (no clipping), got {max_norm}")
