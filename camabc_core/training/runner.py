"""One training run end to end (data, model, stages, test evaluation, reports), and several seeds."""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import attrs
import torch
from accelerate import PartialState

from camabc_core.errors import CamabcError, RecipeError
from camabc_core.metrics import ClassificationMetrics
from camabc_core.recipe import Recipe
from camabc_core.reports import save_training_curves, write_aggregate_report, write_run_report
from camabc_core.training import checkpoint as ckpt
from camabc_core.training.atomic import atomic_write_json
from camabc_core.training.data import SPLITS, PreparedData, prepare_data, used_modalities
from camabc_core.training.evaluation import predict_samples, save_predictions
from camabc_core.training.loop import StepCallback, Trainer, create_accelerator, seed_everything
from camabc_core.training.run_dir import (
    CHECKPOINTS_DIR,
    HISTORY_FILE,
    LAST_CHECKPOINT,
    LOG_FILE,
    RECIPE_FILE,
    eval_dir,
    resolve_local_paths,
    save_encoder_files,
    seed_run_dirs,
    write_labels,
)
from camabc_core.training.stages import check_stages

logger = logging.getLogger("camabc_core.training")

DATA_SUMMARY_FILE = "data_summary.json"


@attrs.frozen
class RunResult:
    run_dir: Path
    seed: int
    #: Scores on ``recipe.evaluation.split``; None when Backchannel Alignment is disabled.
    metrics: ClassificationMetrics | None
    state: ckpt.TrainingState


def default_run_dir(recipe: Recipe) -> Path:
    return Path(recipe.run.output_dir) / recipe.run.name


def recipe_for_seed(recipe: Recipe, seed: int) -> Recipe:
    return attrs.evolve(recipe, run=attrs.evolve(recipe.run, seed=seed, seeds=None))


def parameter_counts(model: Any) -> dict[str, int]:
    """Trainable and total parameters per component (each encoder, aligner, fusion, head)."""
    components = {f"encoder.{name}": module for name, module in model.encoders.items()}
    components.update({"aligner": model.aligner, "fusion": model.fusion, "head": model.head})
    counts = {}
    for name, module in components.items():
        total = sum(p.numel() for p in module.parameters())
        trainable = sum(p.numel() for p in module.parameters() if p.requires_grad)
        counts[name] = {"total": total, "trainable": trainable}
    return counts


def log_run_start(recipe: Recipe, model: Any) -> None:
    import yaml

    from camabc_core.recipe_loading import recipe_to_dict

    logger.info("resolved recipe:\n%s", yaml.safe_dump(recipe_to_dict(recipe), sort_keys=False,
                                                          allow_unicode=True).rstrip())
    counts = parameter_counts(model)
    for name, count in counts.items():
        logger.info("parameters %-16s %12s total %12s trainable", name, f"{count['total']:,}",
                    f"{count['trainable']:,}")
    logger.info("parameters %-16s %12s total", "all", f"{sum(c['total'] for c in counts.values()):,}")


def split_fingerprint(samples: Sequence[Any]) -> str:
    """Hash the samples' identities and labels (SHA-256) so a later evaluation can check its split."""
    digest = hashlib.sha256()
    for sample in samples:
        digest.update(f"{sample.conversation_id}\t{sample.time:.6f}\t{sample.speaker}\t{sample.label}\n"
                      .encode())
    return digest.hexdigest()


def data_summary(data: PreparedData) -> dict[str, Any]:
    summary: dict[str, Any] = {"conversations": len(data.conversations),
                               "context_samples": len(data.context_samples),
                               "flipped_training_labels": data.flipped_labels, "splits": {}}
    for name in SPLITS:
        samples = data.splits[name]
        counts = [sum(1 for s in samples if s.label == i) for i in range(data.scheme.num_classes)]
        summary["splits"][name] = {"samples": len(samples),
                                   "per_class": dict(zip(data.scheme.classes, counts)),
                                   "fingerprint": split_fingerprint(samples)}
    return summary


def check_resumable(recipe: Recipe, run_dir: Path) -> None:
    """Raise unless the recipe equals the one the run was started with.

    Both sides are compared with their local paths made absolute, because runs saved before paths
    were stored absolute contain them relative to the working directory.
    """
    from camabc_core.recipe_loading import load_recipe, recipe_to_dict

    saved = recipe_to_dict(resolve_local_paths(load_recipe(run_dir / RECIPE_FILE)))
    current = recipe_to_dict(resolve_local_paths(recipe))
    differences = sorted(_differing_keys(saved, current))
    if differences:
        raise RecipeError(
            f"cannot resume {run_dir}: the recipe differs from its {RECIPE_FILE} at {differences}; "
            "resume with the same recipe and --set overrides, or start a new --output-dir"
        )


def _differing_keys(left: Any, right: Any, prefix: str = "") -> list[str]:
    if isinstance(left, dict) and isinstance(right, dict):
        keys = []
        for key in sorted(set(left) | set(right)):
            keys += _differing_keys(left.get(key), right.get(key), f"{prefix}{key}.")
        return keys
    return [] if left == right else [prefix.rstrip(".")]


class _RunLogFile:
    """Copies log records into RUN_DIR/train.log on the main process while active.

    camabc's own INFO records (progress lines, epoch summaries) reach the file even when the
    application configured a higher level. The other processes of a distributed run log warnings
    and errors only, so each line appears once. Levels are restored on exit.
    """

    def __init__(self, run_dir: Path, is_main: bool) -> None:
        self.handler = None
        self.package_logger = logging.getLogger("camabc_core")
        self.previous_level = self.package_logger.level
        self.level = logging.WARNING
        if is_main:
            run_dir.mkdir(parents=True, exist_ok=True)
            self.handler = logging.FileHandler(run_dir / LOG_FILE, encoding="utf-8")
            self.handler.setLevel(logging.INFO)
            self.handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
            self.level = min(logging.INFO, self.package_logger.getEffectiveLevel())

    def __enter__(self) -> _RunLogFile:
        if self.handler is not None:
            logging.getLogger().addHandler(self.handler)
        self.package_logger.setLevel(self.level)
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self.handler is not None:
            logging.getLogger().removeHandler(self.handler)
            self.handler.close()
        self.package_logger.setLevel(self.previous_level)


def train_run(
    recipe: Recipe,
    run_dir: str | Path,
    *,
    resume: bool = False,
    callbacks: Sequence[StepCallback] = (),
) -> RunResult:
    """Train one seed (``recipe.run.seed``) into ``run_dir``, then evaluate and write reports.

    With ``resume`` the run continues from ``run_dir/checkpoints/last`` (a fresh start if there is
    none). Without it an existing checkpoint is an error, so a finished run is never overwritten.
    A directory of ``seed-<N>`` runs is an error with or without ``resume``. Local paths of the
    recipe are made absolute first, so the saved recipe.yaml works from any working directory.
    """
    from camabc_core.model import BackchannelModel
    from camabc_core.recipe_loading import save_recipe
    from camabc_core.windows import WindowExtractor

    run_dir = Path(run_dir)
    recipe = resolve_local_paths(recipe)
    seed_runs = seed_run_dirs(run_dir)
    if seed_runs:
        names = ", ".join(path.name for path in seed_runs.values())
        raise CamabcError(
            f"{run_dir} contains the runs of a multi-seed training ({names}); a single run there would "
            "mix with them. Continue them with `--seeds "
            f"{' '.join(str(seed) for seed in seed_runs)} --resume`, or choose another --output-dir"
        )
    seed = recipe.run.seed
    modalities = used_modalities(recipe)
    if not modalities:
        raise RecipeError("model.encoders: no encoder configured; set at least one of audio, text, video")
    check_stages(recipe, modalities)
    last = ckpt.find_checkpoint(run_dir / CHECKPOINTS_DIR / LAST_CHECKPOINT)
    if last is not None and not resume:
        raise CamabcError(f"{run_dir} already contains a checkpoint; pass --resume to continue it or "
                          "choose another --output-dir")
    if last is not None:
        check_resumable(recipe, run_dir)

    accelerator = create_accelerator(recipe)
    if accelerator.device.type == "cpu" and recipe.run.cpu_threads is not None:
        torch.set_num_threads(recipe.run.cpu_threads)
    with _RunLogFile(run_dir, accelerator.is_main_process):
        data = prepare_data(recipe, seed)
        seed_everything(seed)
        model = BackchannelModel.from_recipe(recipe, data.scheme.num_classes)
        if accelerator.is_main_process:
            logger.info("device %s, %d processes, %d torch threads per process", accelerator.device,
                        accelerator.num_processes, torch.get_num_threads())
            log_run_start(recipe, model)
            run_dir.mkdir(parents=True, exist_ok=True)
            save_recipe(recipe, run_dir / RECIPE_FILE)
            write_labels(run_dir, data.scheme)
            save_encoder_files(run_dir, model)
            atomic_write_json(run_dir / DATA_SUMMARY_FILE, data_summary(data))
        model.to(accelerator.device)
        extractor = WindowExtractor(data.conversations, recipe.data.window, modalities)
        trainer = Trainer(recipe, model, data, extractor, run_dir, seed, accelerator=accelerator,
                          callbacks=callbacks)
        state = trainer.fit(ckpt.read_training_state(last) if last is not None else None)

        metrics = None
        if recipe.backchannel_alignment is not None:
            metrics = evaluate_trained(recipe, model, data, extractor, run_dir, accelerator, state)
        elif accelerator.is_main_process:
            atomic_write_json(run_dir / HISTORY_FILE, state.history)
            save_training_curves(state.history, run_dir / "training_curves.png")
        extractor.close()
    return RunResult(run_dir, seed, metrics, state)


def evaluate_trained(recipe: Recipe, model: Any, data: PreparedData, extractor: Any, run_dir: Path,
                     accelerator: Any, state: ckpt.TrainingState) -> ClassificationMetrics:
    """Score the best checkpoint on ``recipe.evaluation.split`` and write every report file."""
    from camabc_core.training.run_dir import trained_weights_path

    split = recipe.evaluation.split
    ckpt.load_model_weights(model, trained_weights_path(run_dir))
    result = predict_samples(model, data.splits[split], extractor, batch_size=recipe.evaluation.batch_size,
                             device=accelerator.device, num_workers=recipe.run.num_workers,
                             accelerator=accelerator, description=f"{split} split")
    metrics = result.metrics(data.scheme)
    if accelerator.is_main_process:
        save_predictions(run_dir, split, result, data.scheme)
        atomic_write_json(run_dir / HISTORY_FILE, state.history)
        best_epoch = state.best_epoch if state.best_epoch is not None else None
        write_run_report(run_dir, recipe.run.name, metrics, split,
                         extra={"seed": recipe.run.seed, "best_epoch": best_epoch,
                                "best_validation_macro_f1": state.best_metric})
        save_training_curves(state.history, run_dir / "training_curves.png")
        logger.info("%s split: macro F1 %.2f | %s", split, 100 * metrics.macro_f1,
                    " | ".join(f"{n} {100 * f:.2f}" for n, f in zip(metrics.class_names, metrics.f1)))
        if metrics.absent_classes:
            logger.warning("%s split has no sample of %s; their F1 counts as 0 in the macro average",
                           split, ", ".join(metrics.absent_classes))
    return metrics


def train_seeds(
    recipe: Recipe,
    seeds: Sequence[int],
    output_dir: str | Path,
    *,
    resume: bool = False,
) -> tuple[list[RunResult], dict[str, Any] | None]:
    """Train one run per seed into ``output_dir/seed-<seed>`` and write the mean ± std aggregate."""
    output_dir = Path(output_dir)
    if ckpt.find_checkpoint(output_dir / CHECKPOINTS_DIR / LAST_CHECKPOINT) is not None:
        raise CamabcError(
            f"{output_dir} contains a single-seed run (checkpoints/last); seed-<N> runs there would "
            "mix with it. Choose another --output-dir, or resume it without --seeds"
        )
    results = [train_run(recipe_for_seed(recipe, seed), output_dir / f"seed-{seed}", resume=resume)
               for seed in seeds]
    scored = {r.seed: r.metrics for r in results if r.metrics is not None}
    aggregate = None
    if scored and PartialState().is_main_process:
        aggregate = write_aggregate_report(output_dir, recipe.run.name, scored, recipe.evaluation.split)
        logger.info("macro F1 over seeds %s: %.2f ± %.2f", sorted(scored),
                    100 * aggregate["macro_f1"]["mean"], 100 * aggregate["macro_f1"]["std"])
    return results, aggregate


def evaluate_run_dir(
    run_dir: str | Path, split: str = "test", batch_size: int | None = None,
    overrides: Sequence[str] = (),
) -> ClassificationMetrics:
    """Re-score a trained run on ``split`` and write the scores under ``RUN_DIR/eval/<split>/``.

    The files that training wrote stay as they are. ``overrides`` (``KEY=VALUE`` as for ``--set``)
    may change the ``data``, ``evaluation`` and ``run.cpu_threads``/``run.num_workers`` keys of the
    saved recipe, e.g. ``data.root`` of a corpus that moved. The split is rebuilt from the corpus with
    the run's seed. It must match the fingerprint saved in data_summary.json at training time,
    because a changed corpus would give scores that do not compare.
    """
    from camabc_core.recipe_loading import load_recipe
    from camabc_core.training.run_dir import load_trained_model, trained_weights_path
    from camabc_core.windows import WindowExtractor

    run_dir = Path(run_dir)
    if split not in SPLITS:
        raise CamabcError(f"unknown split {split!r}; expected one of {list(SPLITS)}")
    check_eval_overrides(overrides)
    model, recipe, scheme = load_trained_model(run_dir)
    if overrides:
        recipe = load_recipe(run_dir / RECIPE_FILE, list(overrides))
    if recipe.run.cpu_threads is not None:
        torch.set_num_threads(recipe.run.cpu_threads)
    if recipe.backchannel_alignment is None:
        raise CamabcError(f"{run_dir} ran Context Alignment only; there is no classifier to evaluate")
    data = prepare_data(recipe, recipe.run.seed)
    summary_path = run_dir / DATA_SUMMARY_FILE
    if summary_path.is_file():
        expected = json.loads(summary_path.read_text(encoding="utf-8"))["splits"][split]["fingerprint"]
        if split_fingerprint(data.splits[split]) != expected:
            raise CamabcError(
                f"the {split} split rebuilt from {recipe.data.root} differs from the one used in training "
                f"({summary_path}); the corpus or the sampling code changed. If the corpus moved, pass "
                "--set data.root=NEW_PATH"
            )
    extractor = WindowExtractor(data.conversations, recipe.data.window, used_modalities(recipe))
    result = predict_samples(model, data.splits[split], extractor,
                             batch_size=batch_size or recipe.evaluation.batch_size,
                             description=f"{split} split")
    extractor.close()
    metrics = result.metrics(scheme)
    output_dir = eval_dir(run_dir, split)
    output_dir.mkdir(parents=True, exist_ok=True)
    save_predictions(output_dir, split, result, scheme)
    history_path = run_dir / HISTORY_FILE
    state_best = None
    if history_path.is_file():
        history = json.loads(history_path.read_text(encoding="utf-8"))
        improved = [e["epoch"] for e in history if e.get("improved")]
        state_best = improved[-1] if improved else None
    write_run_report(output_dir, recipe.run.name, metrics, split,
                     extra={"seed": recipe.run.seed, "best_epoch": state_best,
                            "weights": str(trained_weights_path(run_dir)), "data_root": recipe.data.root})
    return metrics


#: Recipe keys that ``camabc eval --set`` may change; the others describe the trained model.
EVAL_OVERRIDE_PREFIXES = ("data.", "evaluation.", "run.cpu_threads=", "run.num_workers=")


def check_eval_overrides(overrides: Sequence[str]) -> None:
    """Raise on an override that would change the trained model rather than where and how it is scored."""
    for override in overrides:
        if not override.strip().startswith(EVAL_OVERRIDE_PREFIXES):
            raise RecipeError(
                f"--set {override}: camabc eval accepts only data.*, evaluation.*, run.cpu_threads and "
                "run.num_workers keys, because the other keys describe the trained model; train a new "
                "run to change them"
            )
