"""The run directory: what a training run writes, and how a trained model is rebuilt from it.

Layout (docs/training.md describes every file)::

    RUN_DIR/
      recipe.yaml              resolved recipe, every default filled in
      labels.json              label scheme: name, classes in id order, raw-category map
      encoders/<modality>/     config.json of each encoder (+ tokenizer files for text)
      checkpoints/last/        latest checkpoint (weights + optimiser, scheduler, RNG, position)
      checkpoints/best/        model.safetensors of the best validation epoch
      history.json             one entry per finished epoch of each stage
      predictions_<split>.json per-sample labels and predictions (for ``camabc compare``)
      metrics.json, report.md, confusion_matrix.png, training_curves.png
      train.log
      eval/<split>/            what ``camabc eval`` writes; it never rewrites the files above
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import attrs

from camabc_core.errors import CamabcError
from camabc_core.labels import LabelScheme, build_label_scheme
from camabc_core.recipe import Recipe
from camabc_core.training.atomic import atomic_write_json

logger = logging.getLogger(__name__)

RECIPE_FILE = "recipe.yaml"
LABELS_FILE = "labels.json"
HISTORY_FILE = "history.json"
ENCODERS_DIR = "encoders"
CHECKPOINTS_DIR = "checkpoints"
LAST_CHECKPOINT = "last"
BEST_CHECKPOINT = "best"
LOG_FILE = "train.log"
EVAL_DIR = "eval"

#: Reader options whose names end like these hold paths, so a saved recipe stores them absolute.
PATH_OPTION_SUFFIXES = ("_dir", "_path", "_file", "root")


def predictions_file(split: str) -> str:
    return f"predictions_{split}.json"


def eval_dir(run_dir: Path, split: str) -> Path:
    """Return the folder where ``camabc eval`` writes its scores of ``split`` for this run."""
    return run_dir / EVAL_DIR / split


def seed_run_dirs(run_dir: Path) -> dict[int, Path]:
    """Map seed -> run directory for a multi-seed output directory (``seed-<N>`` sub-directories)."""
    runs = {}
    for child in sorted(run_dir.glob("seed-*")):
        suffix = child.name.removeprefix("seed-")
        if child.is_dir() and suffix.isdigit() and (child / RECIPE_FILE).is_file():
            runs[int(suffix)] = child
    return runs


def _absolute_if_local(value: str | None, base: Path) -> str | None:
    """Return ``value`` as an absolute path when it names an existing file or folder under ``base``.

    Values that exist nowhere, such as hub ids, stay as they are.
    """
    if not value or Path(value).is_absolute():
        return value
    candidate = base / Path(value).expanduser()
    return str(candidate.resolve()) if candidate.exists() else value


def resolve_local_paths(recipe: Recipe, base: Path | None = None) -> Recipe:
    """Make every local path of the recipe absolute, so the saved run works from any directory.

    ``data.root``, path-like reader options and each encoder's ``checkpoint`` and ``tokenizer``
    change only when they exist relative to ``base`` (the working directory by default), which
    keeps hub ids untouched. ``run.output_dir`` is always local, so it always becomes absolute.
    """
    base = Path.cwd() if base is None else base
    reader_options = recipe.data.reader_options
    if reader_options:
        reader_options = {
            key: _absolute_if_local(value, base)
            if isinstance(value, str) and key.endswith(PATH_OPTION_SUFFIXES) else value
            for key, value in reader_options.items()
        }
    data = attrs.evolve(recipe.data, root=_absolute_if_local(recipe.data.root, base) or "",
                        reader_options=reader_options)
    encoders = recipe.model.encoders
    replaced = {}
    for modality in ("audio", "text", "video"):
        spec = getattr(encoders, modality)
        if spec is not None:
            spec = attrs.evolve(spec, checkpoint=_absolute_if_local(spec.checkpoint, base),
                                tokenizer=_absolute_if_local(spec.tokenizer, base))
        replaced[modality] = spec
    model = attrs.evolve(recipe.model, encoders=attrs.evolve(encoders, **replaced))
    run = attrs.evolve(recipe.run, output_dir=str((base / recipe.run.output_dir).resolve()))
    return attrs.evolve(recipe, data=data, model=model, run=run)


def write_labels(run_dir: Path, scheme: LabelScheme) -> None:
    atomic_write_json(run_dir / LABELS_FILE, {
        "scheme": scheme.name,
        "classes": list(scheme.classes),
        "category_map": dict(scheme.category_map),
    })


def read_labels(run_dir: Path) -> LabelScheme:
    """Rebuild the label scheme a model was trained with; class ids are positions in ``classes``."""
    path = run_dir / LABELS_FILE
    if not path.is_file():
        raise CamabcError(f"{path} not found; {run_dir} is not a camabc run directory")
    data = json.loads(path.read_text(encoding="utf-8"))
    scheme = build_label_scheme(data["scheme"], data["category_map"])
    if list(scheme.classes) != data["classes"]:
        raise CamabcError(
            f"{path} lists classes {data['classes']} but this camabc version orders the "
            f"{data['scheme']!r} scheme as {list(scheme.classes)}; class ids would be misread"
        )
    return scheme


def save_encoder_files(run_dir: Path, model: Any) -> None:
    """Save each encoder's transformers config, and a text encoder's tokenizer, under encoders/.

    With these files ``load_trained_model`` rebuilds the architecture without the original hub id
    or local checkpoint directory; the trained weights come from the run's safetensors file.
    """
    for modality, encoder in model.encoders.items():
        directory = run_dir / ENCODERS_DIR / modality
        directory.mkdir(parents=True, exist_ok=True)
        config = encoder_config(encoder)
        if config is not None:
            config.save_pretrained(directory)
        tokenizer = getattr(encoder, "tokenizer", None)
        if tokenizer is not None and hasattr(tokenizer, "save_pretrained"):
            tokenizer.save_pretrained(directory)


def encoder_config(encoder: Any) -> Any:
    """Return the transformers config of an encoder that wraps a transformers model, else None."""
    config = getattr(encoder, "config", None)
    if config is None:
        config = getattr(getattr(encoder, "model", None), "config", None)
    return config if hasattr(config, "save_pretrained") else None


def recipe_for_saved_encoders(recipe: Recipe, run_dir: Path) -> Recipe:
    """Point every encoder at its saved config (and tokenizer) in the run directory.

    The returned recipe builds each encoder with random weights from ``encoders/<modality>/``, which
    the run's trained weights then overwrite, so neither the hub nor the original files are needed.
    """
    encoders = recipe.model.encoders
    replaced = {}
    for modality in ("audio", "text", "video"):
        spec = getattr(encoders, modality)
        directory = run_dir / ENCODERS_DIR / modality
        if spec is None or not (directory / "config.json").is_file():
            replaced[modality] = spec
            continue
        config = json.loads((directory / "config.json").read_text(encoding="utf-8"))
        has_tokenizer = (directory / "tokenizer.json").is_file() or (directory / "vocab.txt").is_file()
        replaced[modality] = attrs.evolve(
            spec,
            checkpoint=None,
            config=config,
            tokenizer=str(directory) if has_tokenizer else spec.tokenizer,
        )
    model_section = attrs.evolve(recipe.model, encoders=attrs.evolve(encoders, **replaced))
    return attrs.evolve(recipe, model=model_section)


def trained_weights_path(run_dir: Path) -> Path:
    """Return the weights file of the best checkpoint, or of the last one when no validation ran."""
    for name in (BEST_CHECKPOINT, LAST_CHECKPOINT):
        path = run_dir / CHECKPOINTS_DIR / name / "model.safetensors"
        if path.is_file():
            return path
    raise CamabcError(
        f"no trained weights in {run_dir / CHECKPOINTS_DIR}; the run has not finished an epoch "
        "(resume it with `camabc train RECIPE --resume`)"
    )


def load_trained_model(run_dir: str | Path) -> tuple[Any, Recipe, LabelScheme]:
    """Rebuild a trained model from a run directory: (model in eval mode, resolved recipe, label scheme).

    The model uses the best validation checkpoint if there is one, else the last checkpoint.
    """
    from camabc_core.model import BackchannelModel
    from camabc_core.recipe_loading import load_recipe
    from camabc_core.training.checkpoint import load_model_weights

    run_dir = Path(run_dir)
    recipe_path = run_dir / RECIPE_FILE
    if not recipe_path.is_file():
        raise CamabcError(f"{recipe_path} not found; {run_dir} is not a camabc run directory")
    recipe = load_recipe(recipe_path)
    scheme = read_labels(run_dir)
    model = BackchannelModel.from_recipe(recipe_for_saved_encoders(recipe, run_dir), scheme.num_classes)
    weights = trained_weights_path(run_dir)
    load_model_weights(model, weights)
    # The encoders were built from saved configs, so each warned about random weights. This log line
    # reports that the trained weights replaced them.
    logger.info("loaded the trained weights of every component from %s", weights)
    model.eval()
    return model, recipe, scheme
