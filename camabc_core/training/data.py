"""From a recipe to batches: corpus loading, samples, splits, label noise, windows and data order.

The data order of every epoch is a pure function of (seed, stage, epoch), so a resumed run can rebuild
the exact batches it had not yet seen by skipping the ones it had.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import attrs
import numpy as np
import torch
from torch.utils.data import Dataset

from camabc_core.errors import RecipeError
from camabc_core.interfaces import Window
from camabc_core.labels import LabelScheme, build_label_scheme
from camabc_core.recipe import Recipe
from camabc_core.records import Conversation, Sample

logger = logging.getLogger(__name__)

SPLITS: tuple[str, ...] = ("train", "validation", "test")


@attrs.define
class PreparedData:
    """Everything the trainer needs from the corpus, built once per run."""

    conversations: list[Conversation]
    scheme: LabelScheme
    #: Labelled Backchannel Alignment samples by split; the train split already carries label noise.
    splits: dict[str, list[Sample]]
    #: Unlabelled Context Alignment samples (one per word of every conversation); empty when CA is off.
    context_samples: list[Sample]
    #: Number of training labels the label-noise step changed.
    flipped_labels: int = 0


def used_modalities(recipe: Recipe) -> tuple[str, ...]:
    """Modalities with an encoder in the recipe, in the canonical audio, text, video order."""
    encoders = recipe.model.encoders
    return tuple(m for m in ("audio", "text", "video") if getattr(encoders, m) is not None)


def create_reader(recipe: Recipe) -> Any:
    """Build the recipe's dataset reader with ``data.skip_malformed`` and ``data.reader_options``.

    Options the reader does not accept raise RecipeError naming each ``data.reader_options.<key>``
    and the accepted options, also for recipes loaded without validation.
    """
    from camabc_core.recipe_validation import find_reader_option_problems, format_problem_list
    from camabc_core.registry import get_registry

    registry = get_registry()
    options = dict(recipe.data.reader_options or {})
    problems = find_reader_option_problems(registry.get("dataset", recipe.data.dataset),
                                           recipe.data.dataset, options)
    if problems:
        raise RecipeError(f"invalid reader options:\n{format_problem_list(problems)}")
    if recipe.data.skip_malformed:
        options["skip_malformed"] = True
    return registry.create("dataset", recipe.data.dataset, **options)


def load_conversations(recipe: Recipe) -> tuple[list[Conversation], Any]:
    """Read the corpus with the recipe's dataset plugin; keep the first ``max_conversations`` by id."""
    if not recipe.data.root:
        raise RecipeError("data.root is empty; set it to the corpus directory, e.g. --set data.root=/path")
    root = Path(recipe.data.root).expanduser()
    if not root.exists():
        raise RecipeError(f"data.root {str(root)!r} does not exist; point it at the corpus directory")
    reader = create_reader(recipe)
    conversations = sorted(reader.load(root), key=lambda conversation: conversation.id)
    if recipe.data.max_conversations is not None:
        conversations = conversations[: recipe.data.max_conversations]
    if not conversations:
        raise RecipeError(f"dataset {recipe.data.dataset!r} found no conversations under {str(root)!r}")
    return conversations, reader


def label_scheme_for(recipe: Recipe, reader: Any) -> LabelScheme:
    """Build the recipe's label scheme; a null ``data.category_map`` takes the reader's default."""
    category_map = recipe.data.category_map
    if category_map is None:
        category_map = dict(getattr(reader, "default_category_map", {}) or {}) or None
    return build_label_scheme(recipe.data.label_scheme, category_map)


def prepare_data(recipe: Recipe, seed: int) -> PreparedData:
    """Load the corpus and build the labelled splits (with training label noise) and the CA samples."""
    from camabc_core.sampling import (
        apply_label_noise,
        build_backchannel_samples,
        build_context_samples,
        split_samples,
    )

    conversations, reader = load_conversations(recipe)
    scheme = label_scheme_for(recipe, reader)
    sampling = recipe.data.sampling

    splits: dict[str, list[Sample]] = {name: [] for name in SPLITS}
    flipped = 0
    if recipe.backchannel_alignment is not None:
        samples = build_backchannel_samples(conversations, scheme, sampling, seed)
        splits = {name: list(values) for name, values in
                  split_samples(samples, sampling.split, seed, sampling.split_by).items()}
        if sampling.label_noise > 0:
            clean = splits["train"]
            splits["train"] = list(apply_label_noise(clean, sampling.label_noise, scheme.num_classes, seed))
            flipped = sum(a.label != b.label for a, b in zip(clean, splits["train"]))
            logger.info("label noise: changed %d of %d training labels (fraction %.3f requested)",
                        flipped, len(clean), sampling.label_noise)
        for name in SPLITS:
            counts = Counter(sample.label for sample in splits[name])
            per_class = ", ".join(f"{label} {counts.get(i, 0)}" for i, label in enumerate(scheme.classes))
            logger.info("%s split: %d samples, %s", name, len(splits[name]), per_class)

    # NOTE: Context Alignment reads every conversation, test dialogues included, because it uses no
    # labels and pre-trains on whole dialogues. With a sample-level split, test windows overlap CA
    # windows anyway. data.sampling.split_by=conversation keeps held-out dialogues out of CA.
    context_samples: list[Sample] = []
    if recipe.context_alignment is not None:
        context_samples = list(build_context_samples(conversations))
        if sampling.split_by == "conversation" and recipe.backchannel_alignment is not None:
            held_out = {s.conversation_id for name in ("validation", "test") for s in splits[name]}
            context_samples = [s for s in context_samples if s.conversation_id not in held_out]
        logger.info("context alignment: %d samples from %d conversations",
                    len(context_samples), len({s.conversation_id for s in context_samples}))
    return PreparedData(conversations, scheme, splits, context_samples, flipped)


class WindowDataset(Dataset):
    """Map-style dataset: item i is (index, Window, label or -1) for ``samples[i]``."""

    def __init__(self, samples: Sequence[Sample], extractor: Any) -> None:
        self.samples = list(samples)
        self.extractor = extractor

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> tuple[int, Window, int]:
        sample = self.samples[index]
        label = -1 if sample.label is None else int(sample.label)
        return index, self.extractor.extract(sample), label


@attrs.frozen
class Batch:
    """One collated batch: encoder inputs by modality, labels (B,) (-1 when unlabelled), sample indices."""

    inputs: dict[str, dict[str, torch.Tensor]]
    labels: torch.Tensor
    indices: torch.Tensor

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def to(self, device: torch.device | str) -> Batch:
        moved = {
            modality: {key: value.to(device) for key, value in tensors.items()}
            for modality, tensors in self.inputs.items()
        }
        return Batch(moved, self.labels.to(device), self.indices)


def make_collate(preprocess: Callable[[list[Window]], dict[str, dict[str, torch.Tensor]]]):
    """Return a collate function that runs the model's preprocessing (tokenizer, feature extractors)."""

    def collate(items: list[tuple[int, Window, int]]) -> Batch:
        indices, windows, labels = zip(*items)
        return Batch(
            inputs=preprocess(list(windows)),
            labels=torch.tensor(labels, dtype=torch.long),
            indices=torch.tensor(indices, dtype=torch.long),
        )

    return collate


def epoch_order(num_samples: int, seed: int, stage_index: int, epoch: int) -> np.ndarray:
    """Shuffled sample indices of one epoch, determined by (seed, stage, epoch) alone."""
    generator = np.random.default_rng(np.random.SeedSequence([seed, stage_index, epoch]))
    return generator.permutation(num_samples)


def count_batches(num_samples: int, batch_size: int) -> int:
    """Count the global batches of an epoch as ``EpochBatchSampler`` cuts them."""
    batches = -(-num_samples // batch_size)
    if batches > 1 and batch_size > 1 and num_samples % batch_size == 1:
        batches -= 1
    return batches


class EpochBatchSampler:
    """Batch sampler over a fixed epoch order, sharded across processes, that can start mid-epoch.

    The order is cut into global batches of ``batch_size``. A last batch of a single sample joins
    the batch before it, because a contrastive loss needs at least two samples. Process ``rank``
    takes every ``world_size``-th batch; the list is padded by wrapping around so every process runs
    the same number of steps (DDP needs that). ``start_batch`` skips this process's first batches on
    resume.
    """

    def __init__(self, order: np.ndarray, batch_size: int, *, rank: int = 0, world_size: int = 1,
                 start_batch: int = 0) -> None:
        if batch_size < 1:
            raise RecipeError(f"batch_size must be at least 1, got {batch_size}")
        batches = [order[i: i + batch_size].tolist() for i in range(0, len(order), batch_size)]
        if len(batches) > 1 and len(batches[-1]) == 1 and batch_size > 1:
            batches[-2].extend(batches.pop())
        if batches and len(batches) % world_size:
            batches += batches[: world_size - len(batches) % world_size]
        self.batches = batches[rank::world_size]
        self.start_batch = start_batch

    def __len__(self) -> int:
        return max(0, len(self.batches) - self.start_batch)

    def __iter__(self) -> Iterator[list[int]]:
        yield from self.batches[self.start_batch:]

    @property
    def batches_per_epoch(self) -> int:
        return len(self.batches)
