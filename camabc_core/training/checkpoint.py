"""Checkpoints: model weights as safetensors plus the full training state, written atomically.

A checkpoint directory contains

- ``model.safetensors``: every model parameter and buffer;
- ``optimizer.pt``: optimiser and learning-rate scheduler state (tensors and plain values only, so
  it loads with ``torch.load(weights_only=True)``);
- ``rng_rank<R>.pt``: Python, NumPy, torch CPU and CUDA random states of process R;
- ``state.json``: stage, epoch, position in the epoch's data order, step, best metric and history.

The directory is assembled under a temporary name and swapped in with renames, so ``last/`` is
always a complete checkpoint; a crash between the two renames leaves the previous one as
``last.old/``, which ``find_checkpoint`` picks up.
"""

from __future__ import annotations

import json
import random
import shutil
from pathlib import Path
from typing import Any

import attrs
import numpy as np
import safetensors.torch
import torch
from torch import nn

from camabc_core.training.atomic import atomic_path

MODEL_FILE = "model.safetensors"
OPTIMIZER_FILE = "optimizer.pt"
STATE_FILE = "state.json"


@attrs.define
class TrainingState:
    """Position of a run in its stages and epochs: everything needed to continue it exactly."""

    #: "context_alignment", "backchannel_alignment" or "done".
    stage: str
    #: Epoch in progress (0-based) within ``stage``.
    epoch: int = 0
    #: Batches of this epoch's data order already consumed by this process.
    batch_in_epoch: int = 0
    #: Optimiser steps taken in ``stage``.
    stage_step: int = 0
    best_metric: float | None = None
    best_epoch: int | None = None
    epochs_without_improvement: int = 0
    stopped_early: bool = False
    #: One entry per finished epoch (stage, epoch, train_loss, validation scores, learning rates).
    history: list[dict[str, Any]] = attrs.field(factory=list)
    #: Running sums of the epoch in progress ("loss_sum", "samples"), so a resumed epoch's mean
    #: training loss equals the uninterrupted one.
    epoch_totals: dict[str, float] = attrs.field(factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return attrs.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainingState:
        return cls(**data)


def save_model_weights(model: nn.Module, path: str | Path) -> None:
    """Write every parameter and buffer to a safetensors file atomically (shared tensors stored once)."""
    with atomic_path(path) as temporary:
        safetensors.torch.save_model(model, str(temporary))


def load_model_weights(model: nn.Module, path: str | Path) -> None:
    """Load a safetensors file into ``model``; missing or unexpected keys are an error naming them."""
    missing, unexpected = safetensors.torch.load_model(model, str(path), strict=False)
    if missing or unexpected:
        raise RuntimeError(
            f"{path} does not match the model: missing keys {sorted(missing)[:10]}, unexpected keys "
            f"{sorted(unexpected)[:10]}; the recipe's model section must be the one the weights were "
            "trained with"
        )


def capture_rng_state() -> dict[str, Any]:
    """Random states as tensors and plain values, loadable with ``weights_only=True``."""
    version, keys, position, has_gauss, cached_gaussian = np.random.get_state()
    python_version, python_internal, python_gauss = random.getstate()
    state: dict[str, Any] = {
        "python": [python_version, list(python_internal), python_gauss],
        "numpy": {"keys": torch.from_numpy(np.asarray(keys, dtype=np.int64)), "position": int(position),
                  "has_gauss": int(has_gauss), "cached_gaussian": float(cached_gaussian),
                  "version": version},
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng_state(state: dict[str, Any]) -> None:
    python_version, python_internal, python_gauss = state["python"]
    random.setstate((python_version, tuple(python_internal), python_gauss))
    numpy_state = state["numpy"]
    np.random.set_state((
        numpy_state["version"],
        numpy_state["keys"].numpy().astype(np.uint32),
        numpy_state["position"],
        numpy_state["has_gauss"],
        numpy_state["cached_gaussian"],
    ))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def staging_directory(directory: Path) -> Path:
    return directory.with_name(f".{directory.name}.incomplete")


def write_checkpoint_files(
    staging: Path,
    model: nn.Module,
    optimizer: torch.optim.Optimizer | None,
    scheduler: Any,
    state: TrainingState,
) -> None:
    """Write the process-independent files of a checkpoint into ``staging`` (main process only).

    ``optimizer`` is None between stages: the next stage starts with a fresh optimiser.
    """
    staging.mkdir(parents=True, exist_ok=True)
    save_model_weights(model, staging / MODEL_FILE)
    if optimizer is not None:
        with atomic_path(staging / OPTIMIZER_FILE) as temporary:
            torch.save({"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict()}, temporary)
    with atomic_path(staging / STATE_FILE) as temporary:
        temporary.write_text(json.dumps(state.to_dict(), indent=2) + "\n", encoding="utf-8")


def write_rng_file(staging: Path, rank: int) -> None:
    staging.mkdir(parents=True, exist_ok=True)
    with atomic_path(staging / f"rng_rank{rank}.pt") as temporary:
        torch.save(capture_rng_state(), temporary)


def publish_checkpoint(staging: Path, directory: Path) -> None:
    """Swap a complete staging directory in as ``directory`` (main process, after every rank wrote)."""
    previous = directory.with_name(f"{directory.name}.old")
    if previous.exists():
        shutil.rmtree(previous)
    if directory.exists():
        directory.rename(previous)
    staging.rename(directory)
    if previous.exists():
        shutil.rmtree(previous)


def find_checkpoint(directory: Path) -> Path | None:
    """Return ``directory`` if it contains a checkpoint, else its ``.old`` twin left by a crash, else None."""
    for candidate in (directory, directory.with_name(f"{directory.name}.old")):
        if (candidate / STATE_FILE).is_file() and (candidate / MODEL_FILE).is_file():
            return candidate
    return None


def read_training_state(directory: Path) -> TrainingState:
    return TrainingState.from_dict(json.loads((directory / STATE_FILE).read_text(encoding="utf-8")))


def load_checkpoint(
    directory: Path,
    model: nn.Module,
    optimizer: torch.optim.Optimizer | None,
    scheduler: Any | None,
    rank: int = 0,
) -> TrainingState:
    """Restore model weights, optimiser, scheduler and this process's random states from ``directory``.

    A checkpoint taken between stages has no optimiser file; the optimiser then stays fresh.
    """
    load_model_weights(model, directory / MODEL_FILE)
    if optimizer is not None and (directory / OPTIMIZER_FILE).is_file():
        saved = torch.load(directory / OPTIMIZER_FILE, map_location="cpu", weights_only=True)
        optimizer.load_state_dict(saved["optimizer"])
        if scheduler is not None:
            scheduler.load_state_dict(saved["scheduler"])
    rng_file = directory / f"rng_rank{rank}.pt"
    if rng_file.is_file():
        restore_rng_state(torch.load(rng_file, map_location="cpu", weights_only=True))
    return read_training_state(directory)
