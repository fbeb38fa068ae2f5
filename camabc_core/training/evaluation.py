"""Prediction over a split, with per-sample outputs saved for reports and paired significance tests."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import attrs
import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from camabc_core.errors import CamabcError
from camabc_core.labels import LabelScheme
from camabc_core.metrics import ClassificationMetrics, classification_metrics
from camabc_core.records import Sample
from camabc_core.training.atomic import atomic_write_json
from camabc_core.training.data import WindowDataset, make_collate
from camabc_core.training.run_dir import eval_dir, predictions_file


@attrs.frozen
class SplitPredictions:
    """Per-sample outputs on one split, in the split's sample order."""

    samples: tuple[Sample, ...]
    labels: np.ndarray
    predictions: np.ndarray
    #: (N, C) softmax probabilities.
    probabilities: np.ndarray
    #: Mean cross-entropy over the split.
    loss: float

    def metrics(self, scheme: LabelScheme) -> ClassificationMetrics:
        return classification_metrics(self.labels, self.predictions, scheme.classes)


@torch.no_grad()
def predict_samples(
    model: Any,
    samples: Sequence[Sample],
    extractor: Any,
    *,
    batch_size: int,
    device: torch.device | str = "cpu",
    num_workers: int = 0,
    accelerator: Any = None,
    description: str = "evaluating",
) -> SplitPredictions:
    """Run the classifier over ``samples``; with an accelerator, shard across processes and gather.

    ``model`` is the unwrapped model (its ``preprocess`` feeds the collate function). Dropout is
    off during prediction and the previous train/eval mode is restored afterwards.
    """
    if not samples:
        raise CamabcError(f"{description}: the split has no samples; check data.sampling.split")
    rank = accelerator.process_index if accelerator is not None else 0
    world_size = accelerator.num_processes if accelerator is not None else 1
    shard = list(range(len(samples)))[rank::world_size]
    dataset = WindowDataset([samples[i] for i in shard], extractor)
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=num_workers,
                        collate_fn=make_collate(model.preprocess),
                        generator=torch.Generator())  # private generator: the global RNG stays untouched

    was_training = model.training
    model.eval()
    local_indices, local_probabilities, local_losses = [], [], []
    show = accelerator is None or accelerator.is_main_process
    for batch in tqdm(loader, desc=description, disable=None if show else True, leave=False):
        batch = batch.to(device)
        # The training precision (bf16 autocast on GPUs) also applies to prediction.
        with accelerator.autocast() if accelerator is not None else contextlib.nullcontext():
            logits = model(batch.inputs).logits.float()  # (B, C)
        local_probabilities.append(F.softmax(logits, dim=-1).cpu())
        local_losses.append(F.cross_entropy(logits, batch.labels, reduction="none").cpu())
        local_indices.append(torch.tensor([shard[i] for i in batch.indices.tolist()]))
    model.train(was_training)

    # A process whose shard is empty (fewer samples than processes) contributes no part.
    parts = []
    if local_indices:
        parts.append((torch.cat(local_indices).numpy(), torch.cat(local_probabilities).numpy(),
                      torch.cat(local_losses).numpy()))
    if world_size > 1:
        from accelerate.utils import gather_object

        parts = gather_object(parts)
    indices = np.concatenate([part[0] for part in parts])
    probabilities = np.concatenate([part[1] for part in parts])
    losses = np.concatenate([part[2] for part in parts])
    order = np.argsort(indices, kind="stable")
    probabilities = probabilities[order]
    labels = np.array([-1 if s.label is None else s.label for s in samples], dtype=np.int64)
    return SplitPredictions(
        samples=tuple(samples),
        labels=labels,
        predictions=probabilities.argmax(axis=1),
        probabilities=probabilities,
        loss=float(losses.mean()),
    )


def save_predictions(run_dir: Path, split: str, result: SplitPredictions, scheme: LabelScheme) -> Path:
    """Write per-sample predictions; sample keys let ``camabc compare`` check that runs are paired."""
    path = run_dir / predictions_file(split)
    atomic_write_json(path, {
        "split": split,
        "classes": list(scheme.classes),
        "samples": [
            {"conversation_id": s.conversation_id, "time": s.time, "speaker": s.speaker,
             "label": int(label), "prediction": int(prediction),
             "probabilities": [round(float(p), 6) for p in probabilities]}
            for s, label, prediction, probabilities in zip(
                result.samples, result.labels, result.predictions, result.probabilities)
        ],
    })
    return path


def read_predictions(run_dir: Path, split: str) -> dict[str, Any]:
    """Read the predictions that training wrote for ``split``, else those of ``camabc eval``."""
    path = run_dir / predictions_file(split)
    if not path.is_file():
        path = eval_dir(run_dir, split) / predictions_file(split)
    if not path.is_file():
        raise CamabcError(f"{run_dir / predictions_file(split)} not found; run "
                          f"`camabc eval {run_dir} --split {split}` first")
    return json.loads(path.read_text(encoding="utf-8"))
