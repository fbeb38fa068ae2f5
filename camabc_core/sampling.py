"""Prediction points of a corpus: labelled backchannel samples, context samples, splits, label noise.

Every random choice draws from a generator seeded by the caller's seed (and, per conversation, by the
conversation id), so the same corpus and seed always give the same samples in the same order.
"""

from __future__ import annotations

import logging
import math
import zlib
from collections import defaultdict
from collections.abc import Hashable, Iterable, Sequence
from typing import Literal

import attrs
import numpy as np

from camabc_core.errors import RecipeError
from camabc_core.labels import NOBC, LabelScheme
from camabc_core.recipe import SamplingSection
from camabc_core.records import Conversation, Sample

logger = logging.getLogger(__name__)

SPLIT_NAMES: tuple[str, str, str] = ("train", "validation", "test")


@attrs.frozen
class _SpeakerTimeline:
    """Words of one conversation as arrays, for fast "who spoke last before t" queries."""

    speakers: tuple[str, ...]
    starts: np.ndarray  # (W,) float64, ascending
    ends: np.ndarray  # (W,) float64, in the order of ``starts``
    speaker_codes: np.ndarray  # (W,) int32 index into ``speakers``

    @classmethod
    def build(cls, conversation: Conversation) -> _SpeakerTimeline:
        speakers = list(conversation.speakers)
        code_of = {speaker: code for code, speaker in enumerate(speakers)}
        for word in conversation.words:
            if word.speaker not in code_of:
                code_of[word.speaker] = len(speakers)
                speakers.append(word.speaker)
        count = len(conversation.words)
        starts = np.fromiter((w.start for w in conversation.words), np.float64, count)
        ends = np.fromiter((w.end for w in conversation.words), np.float64, count)
        codes = np.fromiter((code_of[w.speaker] for w in conversation.words), np.int32, count)
        order = np.argsort(starts, kind="stable")
        return cls(tuple(speakers), starts[order], ends[order], codes[order])

    def partner(self, person: str, time: float) -> str | None:
        """Return who talks with ``person`` at ``time``: the only other speaker, or else the speaker of
        the most recent word started before ``time`` that is not ``person``. None if no other person
        speaks."""
        others = [s for s in self.speakers if s != person]
        if len(others) <= 1:
            return others[0] if others else None
        person_code = self.speakers.index(person) if person in self.speakers else -1
        index = int(np.searchsorted(self.starts, time, side="left")) - 1
        while index >= 0:
            code = int(self.speaker_codes[index])
            if code != person_code:
                return self.speakers[code]
            index -= 1
        return others[0]


def _conversation_rng(seed: int, conversation_id: str) -> np.random.Generator:
    # Keyed by the id so that adding or removing a conversation leaves the others' samples unchanged.
    return np.random.default_rng([seed, zlib.crc32(conversation_id.encode("utf-8"))])


def _backchannel_samples(
    conversation: Conversation, timeline: _SpeakerTimeline, scheme: LabelScheme
) -> tuple[list[Sample], int]:
    """Return the labelled samples of one conversation and how many events had no partner speaker."""
    samples = []
    without_partner = 0
    for event in conversation.backchannels:
        label = scheme.class_id(event.category)
        if label is None:
            continue
        speaker = timeline.partner(event.listener, event.start)
        if speaker is None:
            without_partner += 1
            continue
        samples.append(Sample(conversation.id, event.start, speaker, event.listener, label, event.category))
    return samples, without_partner


def _nobc_candidates(
    conversation: Conversation, timeline: _SpeakerTimeline, tolerance: float
) -> tuple[np.ndarray, np.ndarray]:
    """Return word ends (K,) and speaker codes (K,) far from every other speaker's backchannel onset.

    A word end of speaker s is a candidate unless some backchannel by another speaker starts within
    ``tolerance`` seconds of it (before or after). Duplicate (speaker, end) pairs count once.
    """
    kept_ends, kept_codes = [], []
    for code, speaker in enumerate(timeline.speakers):
        ends = np.unique(timeline.ends[timeline.speaker_codes == code])
        if ends.size == 0:
            continue
        onsets = np.sort(
            np.fromiter((e.start for e in conversation.backchannels if e.listener != speaker), np.float64)
        )
        if onsets.size:
            position = np.searchsorted(onsets, ends)
            before = onsets[np.clip(position - 1, 0, onsets.size - 1)]
            after = onsets[np.clip(position, 0, onsets.size - 1)]
            distance = np.minimum(np.abs(ends - before), np.abs(after - ends))
            ends = ends[distance > tolerance]
        kept_ends.append(ends)
        kept_codes.append(np.full(ends.size, code, dtype=np.int32))
    if not kept_ends:
        return np.empty(0), np.empty(0, dtype=np.int32)
    return np.concatenate(kept_ends), np.concatenate(kept_codes)


def _allocate_quotas(event_counts: np.ndarray, ratio: float, rng: np.random.Generator) -> np.ndarray:
    """Split round(ratio × total) NoBC points over conversations in proportion to their events.

    This is the largest remainder method. Each conversation gets floor(ratio × its count), and the
    remaining points go to the largest fractional parts, with ties broken by a seeded shuffle.
    """
    exact = ratio * event_counts
    quotas = np.floor(exact).astype(np.int64)
    missing = math.floor(ratio * int(event_counts.sum()) + 0.5) - int(quotas.sum())
    if missing > 0:
        shuffled = rng.permutation(event_counts.size)
        remainders = (exact - quotas)[shuffled]
        chosen = shuffled[np.argsort(-remainders, kind="stable")[:missing]]
        quotas[chosen] += 1
    return quotas


def build_backchannel_samples(
    conversations: Sequence[Conversation], scheme: LabelScheme, sampling: SamplingSection, seed: int
) -> list[Sample]:
    """Build Backchannel Alignment samples: every mapped backchannel plus sampled NoBC points.

    A backchannel event whose category the scheme maps to a class gives one sample at its onset.
    Its speaker is the listener's partner: the other speaker, or with three or more speakers the
    speaker of the most recent word before the onset that is not the listener. NoBC points are
    ``round(nobc_ratio × events)`` word ends, spread over conversations in proportion to their
    events and drawn (seeded) from word ends where no other speaker starts a backchannel within
    ``nobc_tolerance_seconds``. A NoBC sample's listener is picked by the same partner rule.
    Samples come grouped by conversation (input order), sorted by time within each.
    """
    if sampling.nobc_ratio < 0 or sampling.nobc_tolerance_seconds < 0:
        raise RecipeError(
            f"data.sampling: nobc_ratio ({sampling.nobc_ratio}) and nobc_tolerance_seconds "
            f"({sampling.nobc_tolerance_seconds}) must be >= 0"
        )
    nobc_label = scheme.classes.index(NOBC)
    timelines = [_SpeakerTimeline.build(conversation) for conversation in conversations]
    labelled, without_partner = [], 0
    for conversation, timeline in zip(conversations, timelines):
        samples, skipped = _backchannel_samples(conversation, timeline, scheme)
        labelled.append(samples)
        without_partner += skipped
    if without_partner:
        logger.warning("skipped %d backchannel events whose listener has no partner speaker", without_partner)

    counts = np.array([len(samples) for samples in labelled], dtype=np.int64)
    quotas = _allocate_quotas(counts, sampling.nobc_ratio, np.random.default_rng(seed))
    result: list[Sample] = []
    shortfall = 0
    no_listener = 0
    for conversation, timeline, samples, quota in zip(conversations, timelines, labelled, quotas):
        ends, codes = _nobc_candidates(conversation, timeline, sampling.nobc_tolerance_seconds)
        take = min(int(quota), ends.size)
        shortfall += int(quota) - take
        rng = _conversation_rng(seed, conversation.id)
        for index in np.sort(rng.choice(ends.size, size=take, replace=False)):
            speaker = timeline.speakers[codes[index]]
            listener = timeline.partner(speaker, float(ends[index]))
            if listener is None:
                no_listener += 1
                continue
            samples.append(Sample(conversation.id, float(ends[index]), speaker, listener, nobc_label))
        samples.sort(key=lambda sample: sample.time)
        result.extend(samples)
    if shortfall:
        logger.warning(
            "%d NoBC points could not be drawn: some conversations have too few word ends "
            "away from backchannels; lower data.sampling.nobc_tolerance_seconds",
            shortfall,
        )
    if no_listener:
        # A tolerance cannot help here: the speaker of these word ends is the conversation's only one.
        logger.warning(
            "%d NoBC points were dropped because their conversation has no second speaker to be the "
            "listener; check that the transcript names every speaker",
            no_listener,
        )
    return result


def build_context_samples(conversations: Iterable[Conversation]) -> list[Sample]:
    """Build Context Alignment samples: one unlabelled sample at every word end of every dialogue.

    The word's speaker is the speaker. The listener is the only other speaker, or with three or more
    speakers the other speaker whose latest word started most recently (the first other speaker
    before anyone else has spoken). In a one-speaker conversation the listener is "".
    """
    samples: list[Sample] = []
    for conversation in conversations:
        speakers = list(dict.fromkeys((*conversation.speakers, *(w.speaker for w in conversation.words))))
        if len(speakers) <= 2:
            other = {s: next((o for o in speakers if o != s), "") for s in speakers}
            samples.extend(
                Sample(conversation.id, w.end, w.speaker, other[w.speaker]) for w in conversation.words
            )
            continue
        # Most recent speaker other than the current one, tracked in one pass over start-sorted words.
        last_start = dict.fromkeys(speakers, -math.inf)
        for word in sorted(conversation.words, key=lambda w: w.start):
            others = [s for s in speakers if s != word.speaker]
            listener = max(others, key=lambda s: last_start[s])
            samples.append(Sample(conversation.id, word.end, word.speaker, listener))
            last_start[word.speaker] = word.start
    return samples


def _validate_ratios(ratios: Sequence[float]) -> np.ndarray:
    values = np.asarray(ratios, dtype=np.float64)
    if values.shape != (3,) or (values < 0).any() or values.sum() <= 0:
        raise RecipeError(
            f"data.sampling.split: expected three non-negative train/validation/test proportions "
            f"with a positive sum, got {list(ratios)}; the default is [8.0, 0.5, 1.5]"
        )
    return values / values.sum()


def _split_by_sample(samples: Sequence[Sample], fractions: np.ndarray, rng: np.random.Generator) -> list[int]:
    """Return the split index of every sample, stratified by label."""
    assignment = [0] * len(samples)
    groups: dict[Hashable, list[int]] = defaultdict(list)
    for index, sample in enumerate(samples):
        groups[sample.label].append(index)
    for label in sorted(groups, key=lambda value: (value is None, value)):
        members = np.asarray(groups[label])[rng.permutation(len(groups[label]))]
        # Cumulative rounding: split sizes add up to the group size and differ from the exact
        # proportion by less than one sample each.
        bounds = np.floor(np.cumsum(fractions) * members.size + 0.5).astype(int)
        for split, (low, high) in enumerate(zip((0, *bounds[:-1]), bounds)):
            for index in members[low:high]:
                assignment[index] = split
    return assignment


def _split_by_conversation(
    samples: Sequence[Sample], fractions: np.ndarray, rng: np.random.Generator
) -> list[int]:
    """Return the split index of every sample so that each conversation lies in one split.

    Conversations, largest first (ties in seeded order), go to the split whose per-label counts
    move closest to their targets (least increase of the squared error), which keeps the label
    proportions of each split near the corpus's.
    """
    labels = sorted({s.label for s in samples}, key=lambda value: (value is None, value))
    column = {label: i for i, label in enumerate(labels)}
    members: dict[str, list[int]] = defaultdict(list)
    for index, sample in enumerate(samples):
        members[sample.conversation_id].append(index)
    conversation_ids = list(members)
    counts = np.zeros((len(conversation_ids), len(labels)))
    for row, conversation_id in enumerate(conversation_ids):
        for index in members[conversation_id]:
            counts[row, column[samples[index].label]] += 1

    targets = fractions[:, None] * counts.sum(axis=0)[None, :]  # (3, labels)
    current = np.zeros_like(targets)
    shuffled = rng.permutation(len(conversation_ids))
    order = shuffled[np.argsort(-counts.sum(axis=1)[shuffled], kind="stable")]
    assignment = [0] * len(samples)
    for row in order:
        increase = ((current + counts[row] - targets) ** 2).sum(axis=1) - ((current - targets) ** 2).sum(
            axis=1
        )
        increase[fractions == 0] = np.inf
        split = int(np.argmin(increase))
        current[split] += counts[row]
        for index in members[conversation_ids[row]]:
            assignment[index] = split
    if len(conversation_ids) < int((fractions > 0).sum()):
        logger.warning(
            "only %d conversations for %d non-empty splits; some splits stay empty",
            len(conversation_ids),
            int((fractions > 0).sum()),
        )
    return assignment


def split_samples(
    samples: Sequence[Sample],
    ratios: Sequence[float] = (8.0, 0.5, 1.5),
    seed: int = 0,
    by: Literal["sample", "conversation"] = "sample",
) -> dict[str, list[Sample]]:
    """Split samples into train, validation and test, stratified by label and seeded.

    ``by="sample"`` splits each label's samples by the proportions. ``by="conversation"`` keeps every
    conversation in one split, so no dialogue is seen in training and testing. Each split keeps the
    input order.
    """
    fractions = _validate_ratios(ratios)
    rng = np.random.default_rng(seed)
    if by == "sample":
        assignment = _split_by_sample(samples, fractions, rng)
    elif by == "conversation":
        assignment = _split_by_conversation(samples, fractions, rng)
    else:
        raise RecipeError(f"data.sampling.split_by: expected 'sample' or 'conversation', got {by!r}")
    splits: dict[str, list[Sample]] = {name: [] for name in SPLIT_NAMES}
    for sample, split in zip(samples, assignment):
        splits[SPLIT_NAMES[split]].append(sample)
    return splits


def apply_label_noise(
    samples: Sequence[Sample], fraction: float, num_classes: int, seed: int
) -> list[Sample]:
    """Return a copy of ``samples`` with round(fraction × labelled) labels changed to another class.

    The flipped samples are drawn without replacement among those with a label, and each new
    label is drawn uniformly from the other ``num_classes − 1`` classes. Unlabelled samples pass
    through. Use it on the training split only.
    """
    if not 0.0 <= fraction <= 1.0:
        raise RecipeError(f"data.sampling.label_noise: expected a fraction in [0, 1], got {fraction}")
    noisy = list(samples)
    labelled = [index for index, sample in enumerate(noisy) if sample.label is not None]
    count = math.floor(fraction * len(labelled) + 0.5)
    if count == 0:
        return noisy
    if num_classes < 2:
        raise RecipeError(f"label noise needs at least 2 classes, got num_classes={num_classes}")
    rng = np.random.default_rng(seed)
    for index in rng.choice(np.asarray(labelled), size=count, replace=False):
        old = noisy[index].label
        assert old is not None
        if not 0 <= old < num_classes:
            raise RecipeError(f"sample label {old} is outside the {num_classes} classes of the scheme")
        shift = int(rng.integers(1, num_classes))  # 1 .. num_classes − 1, never back to ``old``
        noisy[index] = attrs.evolve(noisy[index], label=(old + shift) % num_classes)
    return noisy
