"""Checkpoints: model weights as safetensors plus the full training state, written atomically.

A checkpoint directory contains these files:

- ``model.safetensors``: every model parameter and buffer.
- ``optimizer.pt``: optimiser and learning-rate scheduler state. It contains tensors and plain
  values only, so it loads with ``torch.load(weights_only=True)``.
- ``rng_rank<R>.pt``: Python, NumPy, torch CPU and CUDA random states of process R.
- ``state.json``: stage, epoch, position in the epoch's data order, step, best metric and history.

The directory is assembled under a temporary name and swapped in with renames, so ``last/`` is
always a complete checkpoint. A crash between the two renames leaves the previous one as
``last.old/``, which ``find_checkpoint`` picks up.
"""

from __future__ import annotations

import json
import pickle
import random
import re
import shutil
from pathlib import Path
from typing import Any

import attrs
import numpy as np
import safetensors.torch
import torch
from torch import nn

from camabc_core.errors import CheckpointError
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


#: Fix suggested in the error for a checkpoint file that cannot be read.
CORRUPT_FILE_FIX = ("restore the file from a backup, use another checkpoint of the run (checkpoints/best or "
                    "checkpoints/last), or retrain")
#: Mismatched tensors named in a shape-mismatch message; the rest are counted.
MISMATCHES_NAMED = 3
_SHAPE = r"(torch\.Size\(\[[^\]]*\]\))"
_SIZE_MISMATCH = re.compile(rf"size mismatch for ([^:\s]+): copying a param with shape {_SHAPE} "
                            rf"from checkpoint, the shape in current model is {_SHAPE}")


def load_model_weights(model: nn.Module, path: str | Path) -> None:
    """Load a safetensors file into ``model``.

    Raises ``CheckpointError`` naming the file when it is unreadable (empty, truncated, not
    safetensors) or when its tensors do not fit the model (missing, unexpected or differently shaped).
    """
    path = Path(path)
    try:
        missing, unexpected = safetensors.torch.load_model(model, str(path), strict=False)
    except safetensors.SafetensorError as error:
        raise CheckpointError(
            f"{path} is not a readable safetensors file ({error}); it is truncated or corrupt: "
            f"{CORRUPT_FILE_FIX}"
        ) from error
    except RuntimeError as error:
        raise CheckpointError(_shape_mismatch_message(path, str(error))) from error
    if missing or unexpected:
        raise CheckpointError(
            f"{path} does not match the model: missing keys {sorted(missing)[:10]}, unexpected keys "
            f"{sorted(unexpected)[:10]}; the recipe's model section must be the one the weights were "
            "trained with"
        )


def _shape_mismatch_message(path: Path, error: str) -> str:
    """Summarise torch's one-line-per-tensor size-mismatch error in one sentence."""
    mismatches = _SIZE_MISMATCH.findall(error)
    if not mismatches:
        first_line = error.strip().splitlines()[0] if error.strip() else "unknown error"
        return (f"{path} cannot be loaded into the model ({first_line}); the encoder configs and recipe "
                "of the run must be the ones the weights were trained with")
    named = "; ".join(f"{name} is {saved} in the file but {current} in the model"
                      for name, saved, current in mismatches[:MISMATCHES_NAMED])
    more = len(mismatches) - MISMATCHES_NAMED
    extra = f" (and {more} more)" if more > 0 else ""
    return (f"{path}: {len(mismatches)} tensor(s) have other shapes than the model built from the run's "
            f"configs: {named}{extra}. The encoder config.json files and recipe.yaml of the run must be "
            "the ones the weights were trained with: restore them, or retrain")


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
    """Read ``state.json``; raise ``CheckpointError`` naming it when it is unreadable or incomplete."""
    path = directory / STATE_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise CheckpointError(f"{path} is not valid JSON ({error}); it is truncated or corrupt: "
                              f"{CORRUPT_FILE_FIX}") from error
    try:
        return TrainingState.from_dict(data)
    except TypeError as error:
        raise CheckpointError(f"{path} does not hold a training state ({error}): "
                              f"{CORRUPT_FILE_FIX}") from error


def _load_torch_file(path: Path) -> Any:
    """``torch.load`` of an optimiser or random-state file, with a ``CheckpointError`` when unreadable."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except (RuntimeError, EOFError, ValueError, OSError, pickle.UnpicklingError) as error:
        raise CheckpointError(f"{path} cannot be read ({error}); it is truncated or corrupt: "
                              f"{CORRUPT_FILE_FIX}") from error


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
        saved = _load_torch_file(directory / OPTIMIZER_FILE)
        optimizer.load_state_dict(saved["optimizer"])
        if scheduler is not None:
            scheduler.load_state_dict(saved["scheduler"])
    rng_file = directory / f"rng_rank{rank}.pt"
    if rng_file.is_file():
        restore_rng_state(_load_torch_file(rng_file))
    return read_training_state(directory)
