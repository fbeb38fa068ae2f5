"""The training loop: Context Alignment then Backchannel Alignment with Hugging Face Accelerate.

One process on CPU; ``accelerate launch`` runs the same code as DDP over GPUs and nodes. Mixed
precision (bf16 on GPU) comes from ``run.mixed_precision``. Checkpoints are taken only at optimiser
step boundaries, where gradients are zero, so (weights, optimiser, scheduler, random states, epoch,
position in the epoch's data order) fully determine the rest of the run.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import attrs
import torch
from accelerate import Accelerator
from accelerate.utils import DistributedDataParallelKwargs, set_seed
from torch.utils.data import DataLoader
from tqdm.auto import tqdm
from tqdm.contrib.logging import logging_redirect_tqdm

from camabc_core.recipe import Recipe, StageSection
from camabc_core.training import checkpoint as ckpt
from camabc_core.training.data import (
    EpochBatchSampler,
    PreparedData,
    WindowDataset,
    count_batches,
    epoch_order,
    make_collate,
)
from camabc_core.training.evaluation import predict_samples
from camabc_core.training.optim import build_optimizer, build_scheduler, current_learning_rates
from camabc_core.training.progress import ProgressMeter, log_epoch_summary
from camabc_core.training.run_dir import BEST_CHECKPOINT, CHECKPOINTS_DIR, LAST_CHECKPOINT
from camabc_core.training.stages import (
    BACKCHANNEL_ALIGNMENT,
    CONTEXT_ALIGNMENT,
    STAGE_ORDER,
    STAGE_TITLES,
    StageForward,
    backchannel_alignment_loss,
    context_alignment_loss,
    enabled_stages,
)

logger = logging.getLogger("camabc_core.training")


@attrs.frozen
class StepEvent:
    """Passed to callbacks after every optimiser step (and after any checkpoint of that step)."""

    stage: str
    epoch: int
    stage_step: int
    #: Losses of this step, averaged over its accumulated micro-batches.
    losses: dict[str, float]
    learning_rates: dict[str, float]


#: A callback may raise to stop training, e.g. a test simulating a killed process.
StepCallback = Callable[[StepEvent], None]


def create_accelerator(recipe: Recipe) -> Accelerator:
    # Context Alignment never touches the classification head, so DDP must tolerate unused parameters.
    return Accelerator(
        mixed_precision=recipe.run.mixed_precision,
        kwargs_handlers=[DistributedDataParallelKwargs(find_unused_parameters=True)],
    )


class Trainer:
    """Runs the recipe's enabled stages on one model, checkpointing into ``run_dir/checkpoints``."""

    def __init__(
        self,
        recipe: Recipe,
        model: Any,
        data: PreparedData,
        extractor: Any,
        run_dir: Path,
        seed: int,
        *,
        accelerator: Accelerator | None = None,
        callbacks: Sequence[StepCallback] = (),
    ) -> None:
        self.recipe = recipe
        self.model = model
        self.data = data
        self.extractor = extractor
        self.run_dir = Path(run_dir)
        self.seed = seed
        self.accelerator = accelerator or create_accelerator(recipe)
        self.callbacks = list(callbacks)
        self.checkpoint_dir = self.run_dir / CHECKPOINTS_DIR
        self.collate = make_collate(model.preprocess)

    @property
    def is_main(self) -> bool:
        return self.accelerator.is_main_process

    # --- public entry -------------------------------------------------------------------------------

    def fit(self, state: ckpt.TrainingState | None = None) -> ckpt.TrainingState:
        """Train from ``state``: None starts a fresh run; a state read from checkpoints/last resumes it.

        On resume the first stage run reloads weights, optimiser, scheduler and random states from
        the last checkpoint before its first step.
        """
        stages = enabled_stages(self.recipe)
        resume = state is not None
        if state is None:
            state = ckpt.TrainingState(stage=stages[0][0])
        for name, stage in stages:
            if state.stage == "done":
                break
            if STAGE_ORDER.index(name) < STAGE_ORDER.index(state.stage):
                continue
            self.run_stage(name, stage, state, resume=resume)
            resume = False
            following = [n for n, _ in stages if STAGE_ORDER.index(n) > STAGE_ORDER.index(name)]
            state.stage = following[0] if following else "done"
            state.epoch = state.batch_in_epoch = state.stage_step = 0
            state.epochs_without_improvement = 0
            state.stopped_early = False
            # The next stage starts from these weights with a fresh optimiser, so none is saved.
            self.save_last(state, optimizer=None, scheduler=None)
        return state

    # --- one stage ----------------------------------------------------------------------------------

    def stage_samples(self, name: str) -> list:
        return self.data.context_samples if name == CONTEXT_ALIGNMENT else self.data.splits["train"]

    def samples_per_epoch(self, name: str, stage: StageSection) -> int:
        count = len(self.stage_samples(name))
        return min(count, stage.max_samples_per_epoch) if stage.max_samples_per_epoch else count

    def steps_per_epoch(self, name: str, stage: StageSection) -> int:
        global_batches = count_batches(self.samples_per_epoch(name, stage), stage.batch_size)
        local_batches = -(-global_batches // self.accelerator.num_processes)
        return -(-local_batches // stage.gradient_accumulation_steps)

    def run_stage(self, name: str, stage: StageSection, state: ckpt.TrainingState, *, resume: bool) -> None:
        samples = self.stage_samples(name)
        if not samples:
            raise ValueError(f"{name}: no training samples; check the corpus and data.sampling")
        unwrapped = self.model
        optimizer = build_optimizer(unwrapped, stage)
        scheduler = build_scheduler(optimizer, stage)
        if resume:
            directory = ckpt.find_checkpoint(self.checkpoint_dir / LAST_CHECKPOINT)
            loaded = ckpt.load_checkpoint(directory, unwrapped, optimizer, scheduler,
                                          rank=self.accelerator.process_index)
            if loaded.stage != name:
                raise RuntimeError(f"checkpoint {directory} is in stage {loaded.stage}, expected {name}")
            logger.info("resuming %s at epoch %d, batch %d (step %d) from %s", name, state.epoch + 1,
                        state.batch_in_epoch, state.stage_step, directory)
        wrapper, optimizer = self.accelerator.prepare(StageForward(unwrapped), optimizer)

        steps_per_epoch = self.steps_per_epoch(name, stage)
        total_steps = steps_per_epoch * stage.epochs
        if stage.max_steps is not None:
            total_steps = min(total_steps, stage.max_steps)
        meter = ProgressMeter(STAGE_TITLES[name], total_steps, self.recipe.run.log_every,
                              enabled=self.is_main)
        logger.info("%s: %d samples, %d steps per epoch, %d epochs, batch %d x %d accumulation x %d "
                    "processes", name, self.samples_per_epoch(name, stage), steps_per_epoch, stage.epochs,
                    stage.batch_size, stage.gradient_accumulation_steps, self.accelerator.num_processes)
        dataset = WindowDataset(samples, self.extractor)
        # disable=None hides the bar when stderr is not a terminal (log files, CI); the log lines remain.
        progress_bar = tqdm(total=total_steps, initial=state.stage_step, desc=STAGE_TITLES[name],
                            disable=None if self.is_main else True, dynamic_ncols=True)

        # Log lines go through tqdm.write so they do not tear the progress bar.
        with logging_redirect_tqdm():
            while state.epoch < stage.epochs and not state.stopped_early:
                epoch_started = time.perf_counter()
                reached_max = self.run_epoch(name, stage, state, wrapper, optimizer, scheduler, dataset,
                                             meter, progress_bar)
                self.finish_epoch(name, stage, state, optimizer, scheduler,
                                  time.perf_counter() - epoch_started)
                if reached_max:
                    break
        progress_bar.close()

    def run_epoch(self, name, stage, state, wrapper, optimizer, scheduler, dataset, meter,
                  progress_bar) -> bool:
        """Train the rest of the current epoch; return True when ``max_steps`` was reached."""
        order = epoch_order(len(dataset), self.seed, STAGE_ORDER.index(name), state.epoch)
        if stage.max_samples_per_epoch:
            order = order[: stage.max_samples_per_epoch]
        sampler = EpochBatchSampler(order, stage.batch_size, rank=self.accelerator.process_index,
                                    world_size=self.accelerator.num_processes,
                                    start_batch=state.batch_in_epoch)
        loader = DataLoader(dataset, batch_sampler=sampler, collate_fn=self.collate,
                            num_workers=self.recipe.run.num_workers,
                            # A private generator keeps the global RNG (dropout) independent of loaders.
                            generator=torch.Generator().manual_seed(self.seed))
        batches_per_epoch = sampler.batches_per_epoch
        accumulation = stage.gradient_accumulation_steps
        step_parts: list[dict[str, float]] = []
        step_samples = 0
        wrapper.train()
        for batch in loader:
            batch = batch.to(self.accelerator.device)
            state.batch_in_epoch += 1
            is_step = state.batch_in_epoch % accumulation == 0 or state.batch_in_epoch == batches_per_epoch
            parts = self.backward(name, stage, wrapper, batch, accumulation, sync=is_step)
            step_parts.append(parts)
            step_samples += len(batch) * self.accelerator.num_processes
            self.accumulate_epoch_loss(state, parts, len(batch))
            if not is_step:
                continue

            if stage.max_grad_norm is not None:
                self.accelerator.clip_grad_norm_(wrapper.parameters(), stage.max_grad_norm)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            state.stage_step += 1
            losses = {key: sum(p[key] for p in step_parts) / len(step_parts) for key in step_parts[0]}
            rates = current_learning_rates(optimizer)
            meter.update(state.stage_step, state.epoch, stage.epochs, step_samples, losses, rates)
            progress_bar.update(1)
            step_parts, step_samples = [], 0

            reached_max = stage.max_steps is not None and state.stage_step >= stage.max_steps
            every = self.recipe.run.checkpoint_every
            if every and state.stage_step % every == 0 and not reached_max:
                self.save_last(state, optimizer, scheduler)
            event = StepEvent(name, state.epoch, state.stage_step, losses, rates)
            for callback in self.callbacks:
                callback(event)
            if reached_max:
                logger.info("%s: reached max_steps %d", name, stage.max_steps)
                return True
        return False

    def backward(self, name: str, stage: StageSection, wrapper: Any, batch: Any, accumulation: int,
                 *, sync: bool) -> dict[str, float]:
        """Forward and backward one micro-batch; gradients are all-reduced only on step batches."""
        context = self.accelerator.no_sync(wrapper) if not sync else contextlib.nullcontext()
        with context:
            if name == CONTEXT_ALIGNMENT:
                loss = context_alignment_loss(wrapper(batch.inputs, alignment_only=True))
            else:
                loss = backchannel_alignment_loss(wrapper(batch.inputs), batch.labels, stage.alignment_weight)
            self.accelerator.backward(loss.total / accumulation)
        return loss.parts

    @staticmethod
    def accumulate_epoch_loss(state: ckpt.TrainingState, parts: dict[str, float], batch_size: int) -> None:
        key = "loss" if "loss" in parts else "align"  # BA reports "loss", CA only "align"
        totals = state.epoch_totals
        totals["loss_sum"] = totals.get("loss_sum", 0.0) + parts[key] * batch_size
        totals["samples"] = totals.get("samples", 0) + batch_size

    # --- epoch end: validation, early stopping, checkpoints -----------------------------------------

    def finish_epoch(self, name, stage, state, optimizer, scheduler, seconds: float) -> None:
        totals = state.epoch_totals
        entry: dict[str, Any] = {
            "stage": name,
            "epoch": state.epoch,
            "train_loss": totals.get("loss_sum", 0.0) / max(1, totals.get("samples", 0)),
            "learning_rates": current_learning_rates(optimizer),
            "steps": state.stage_step,
            "seconds": seconds,
        }
        if name == BACKCHANNEL_ALIGNMENT and self.data.splits["validation"]:
            self.validate(stage, state, entry)
        state.history.append(entry)
        if self.is_main:
            log_epoch_summary(entry)
            if state.stopped_early:
                logger.info("early stopping: validation macro F1 has not improved for %d epochs "
                            "(best %.2f at epoch %d)", state.epochs_without_improvement,
                            100 * state.best_metric, state.best_epoch + 1)

        scheduler.step()  # per-epoch decay of the encoder and alignment learning rates
        state.epoch += 1
        state.batch_in_epoch = 0
        state.epoch_totals = {}
        self.save_last(state, optimizer, scheduler)

    def validate(self, stage: StageSection, state: ckpt.TrainingState, entry: dict[str, Any]) -> None:
        result = predict_samples(
            self.model, self.data.splits["validation"], self.extractor,
            batch_size=self.recipe.evaluation.batch_size, device=self.accelerator.device,
            num_workers=self.recipe.run.num_workers, accelerator=self.accelerator,
            description="validation",
        )
        metrics = result.metrics(self.data.scheme)
        entry["validation_loss"] = result.loss
        entry["validation_macro_f1"] = metrics.macro_f1
        entry["validation_f1"] = dict(zip(metrics.class_names, metrics.f1))
        improved = state.best_metric is None or metrics.macro_f1 > state.best_metric
        entry["improved"] = improved
        if improved:
            state.best_metric = metrics.macro_f1
            state.best_epoch = state.epoch
            state.epochs_without_improvement = 0
            if self.is_main:
                ckpt.save_model_weights(self.model, self.checkpoint_dir / BEST_CHECKPOINT / ckpt.MODEL_FILE)
            self.accelerator.wait_for_everyone()
        else:
            state.epochs_without_improvement += 1
            if stage.patience is not None and state.epochs_without_improvement >= stage.patience:
                state.stopped_early = True

    def save_last(self, state: ckpt.TrainingState, optimizer: Any, scheduler: Any) -> None:
        """Write checkpoints/last: the main process writes the shared files, every process its RNG."""
        directory = self.checkpoint_dir / LAST_CHECKPOINT
        staging = ckpt.staging_directory(directory)
        self.accelerator.wait_for_everyone()
        if self.is_main:
            if staging.exists():
                import shutil

                shutil.rmtree(staging)
            inner = getattr(optimizer, "optimizer", optimizer)  # unwrap Accelerate's optimiser
            ckpt.write_checkpoint_files(staging, self.model, inner, scheduler, state)
        self.accelerator.wait_for_everyone()
        ckpt.write_rng_file(staging, self.accelerator.process_index)
        self.accelerator.wait_for_everyone()
        if self.is_main:
            ckpt.publish_checkpoint(staging, directory)
        self.accelerator.wait_for_everyone()


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (all devices) before the model is built."""
    set_seed(seed)
