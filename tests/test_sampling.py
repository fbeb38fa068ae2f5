"""Backchannel and context samples, splits and label noise, on hand-built and real BACKCast dialogues."""

from __future__ import annotations

import csv
from collections import Counter
from pathlib import Path

import attrs
import numpy as np
import pytest

from camabc_core.errors import RecipeError
from camabc_core.labels import build_label_scheme
from camabc_core.recipe import SamplingSection, WindowSection
from camabc_core.records import BackchannelEvent, Conversation, Sample, Word
from camabc_core.sampling import (
    apply_label_noise,
    build_backchannel_samples,
    build_context_samples,
    split_samples,
)
from camabc_core.windows import WindowExtractor

FOUR_CLASS = build_label_scheme("four_class")
EXCERPT = Path(__file__).parent / "data" / "backcast_dialogue_excerpt" / "AHABK21001005_000"


def read_backcast_excerpt() -> Conversation:
    """Read the BACKCast excerpt's word.tsv and backchannel.tsv (tab-separated, with a header)."""
    with open(EXCERPT / "word.tsv", encoding="utf-8") as stream:
        words = tuple(
            Word(row["speaker"], float(row["start"]), float(row["end"]), row["text"])
            for row in csv.DictReader(stream, delimiter="\t")
        )
    with open(EXCERPT / "backchannel.tsv", encoding="utf-8") as stream:
        events = tuple(
            BackchannelEvent(
                row["speaker"], float(row["start"]), float(row["end"]), row["category"], row["text"]
            )
            for row in csv.DictReader(stream, delimiter="\t")
        )
    return Conversation("AHABK21001005_000", words, events, ("AH0001", "AH0002"))


def two_speaker_dialogue() -> Conversation:
    """A ends words at 1 … 6 s and B at 2.5 s; B backchannels at 3.4 s, A at 5.2 s."""
    words = [Word("A", end - 0.3, end, f"a{end:g}") for end in (1.0, 2.0, 3.0, 4.0, 5.0, 6.0)]
    words.insert(2, Word("B", 2.3, 2.5, "b"))
    events = (BackchannelEvent("B", 3.4, 3.6, "CONTINUER"), BackchannelEvent("A", 5.2, 5.4, "UNDERSTANDING"))
    return Conversation("two", tuple(words), events, ("A", "B"))


def synthetic_corpus(count: int, seed: int = 0) -> list[Conversation]:
    """Conversations with alternating 0.25 s words and a few random backchannels each."""
    rng = np.random.default_rng(seed)
    corpus = []
    for number in range(count):
        ends = np.arange(0.5, 60.0, 0.25)
        words = tuple(Word("AB"[i % 2], end - 0.2, end, "word") for i, end in enumerate(ends))
        categories = ["CONTINUER", "UNDERSTANDING", "EMPATHY"]
        events = tuple(
            BackchannelEvent(
                "AB"[int(rng.integers(2))], float(onset), float(onset) + 0.3, categories[int(rng.integers(3))]
            )
            for onset in np.sort(rng.uniform(1, 59, int(rng.integers(1, 8))))
        )
        corpus.append(Conversation(f"c{number:03d}", words, events, ("A", "B")))
    return corpus


def sampling(**overrides: object) -> SamplingSection:
    return SamplingSection(**overrides)  # type: ignore[arg-type]


# Backchannel samples ----------------------------------------------------------------------------


def test_every_mapped_backchannel_becomes_sample() -> None:
    samples = build_backchannel_samples([two_speaker_dialogue()], FOUR_CLASS, sampling(), seed=0)
    labelled = [s for s in samples if s.label != 0]
    assert labelled == [
        Sample("two", 3.4, "A", "B", 1, "CONTINUER"),
        Sample("two", 5.2, "B", "A", 2, "UNDERSTANDING"),
    ]


def test_unmapped_category_skipped_but_blocks_nobc() -> None:
    dialogue = two_speaker_dialogue()
    laughter = BackchannelEvent("B", 1.1, 1.2, "LAUGHTER")
    dialogue = Conversation("two", dialogue.words, (*dialogue.backchannels, laughter), ("A", "B"))
    samples = build_backchannel_samples(
        [dialogue], FOUR_CLASS, sampling(nobc_ratio=10.0, nobc_tolerance_seconds=0.5), seed=0
    )
    assert [s.raw_category for s in samples if s.label != 0] == ["CONTINUER", "UNDERSTANDING"]
    # 1.0 s lies 0.1 s from the laughter, 3.0 s 0.4 s from B's continuer.
    assert {(s.time, s.speaker) for s in samples if s.label == 0} == {
        (2.0, "A"),
        (4.0, "A"),
        (5.0, "A"),
        (6.0, "A"),
        (2.5, "B"),
    }


@pytest.mark.parametrize(
    ("tolerance", "expected"),
    [
        (
            0.5,
            {
                (1.0, "A", "B"),
                (2.0, "A", "B"),
                (4.0, "A", "B"),
                (5.0, "A", "B"),
                (6.0, "A", "B"),
                (2.5, "B", "A"),
            },
        ),
        (1.0, {(1.0, "A", "B"), (2.0, "A", "B"), (5.0, "A", "B"), (6.0, "A", "B"), (2.5, "B", "A")}),
        (2.5, {(6.0, "A", "B"), (2.5, "B", "A")}),
    ],
)
def test_nobc_tolerance(tolerance: float, expected: set[tuple[float, str, str]]) -> None:
    # A ratio of 10 requests more points than exist, so every candidate is taken.
    samples = build_backchannel_samples(
        [two_speaker_dialogue()],
        FOUR_CLASS,
        sampling(nobc_ratio=10.0, nobc_tolerance_seconds=tolerance),
        seed=0,
    )
    nobc = [s for s in samples if s.label == 0]
    assert {(s.time, s.speaker, s.listener) for s in nobc} == expected
    assert all(s.raw_category is None for s in nobc)


def test_samples_sorted_by_time() -> None:
    samples = build_backchannel_samples(
        [two_speaker_dialogue()], FOUR_CLASS, sampling(nobc_ratio=10.0), seed=0
    )
    times = [s.time for s in samples]
    assert times == sorted(times)


@pytest.mark.parametrize("ratio", [1.0, 0.5, 2.0])
def test_nobc_ratio(ratio: float) -> None:
    corpus = synthetic_corpus(30)
    samples = build_backchannel_samples(corpus, FOUR_CLASS, sampling(nobc_ratio=ratio), seed=3)
    events = sum(len(c.backchannels) for c in corpus)
    nobc = sum(s.label == 0 for s in samples)
    assert sum(s.label != 0 for s in samples) == events
    assert nobc == int(np.floor(ratio * events + 0.5))


def test_nobc_points_far_from_backchannels() -> None:
    corpus = synthetic_corpus(20)
    tolerance = 1.0
    samples = build_backchannel_samples(
        corpus, FOUR_CLASS, sampling(nobc_tolerance_seconds=tolerance), seed=1
    )
    by_id = {c.id: c for c in corpus}
    for sample in (s for s in samples if s.label == 0):
        conversation = by_id[sample.conversation_id]
        assert any(w.speaker == sample.speaker and w.end == sample.time for w in conversation.words)
        onsets = [e.start for e in conversation.backchannels if e.listener != sample.speaker]
        assert all(abs(onset - sample.time) > tolerance for onset in onsets)


def test_sampling_is_seeded() -> None:
    corpus = synthetic_corpus(10)
    first = build_backchannel_samples(corpus, FOUR_CLASS, sampling(), seed=7)
    again = build_backchannel_samples(corpus, FOUR_CLASS, sampling(), seed=7)
    other = build_backchannel_samples(corpus, FOUR_CLASS, sampling(), seed=8)
    assert first == again
    assert first != other


def test_sampling_per_conversation_is_stable() -> None:
    # Removing a conversation leaves the others' NoBC points unchanged (ratio 1: quotas are exact).
    corpus = synthetic_corpus(6)
    full = build_backchannel_samples(corpus, FOUR_CLASS, sampling(), seed=2)
    fewer = build_backchannel_samples(corpus[1:], FOUR_CLASS, sampling(), seed=2)
    assert [s for s in full if s.conversation_id != "c000"] == fewer


def test_three_speaker_partner() -> None:
    words = (Word("A", 0.0, 1.0, "a"), Word("C", 1.2, 2.0, "c"), Word("B", 2.1, 2.4, "b"))
    events = (BackchannelEvent("B", 2.2, 2.3, "CONTINUER"), BackchannelEvent("A", 0.5, 0.6, "EMPATHY"))
    dialogue = Conversation("three", words, events, ("A", "B", "C"))
    samples = build_backchannel_samples([dialogue], FOUR_CLASS, sampling(nobc_ratio=0.0), seed=0)
    # B's own word at 2.1 s is skipped. Before 0.5 s only A has spoken, so B (the first other speaker)
    # is the partner.
    assert [(s.time, s.speaker, s.listener) for s in samples] == [(0.5, "B", "A"), (2.2, "C", "B")]


def test_binary_scheme_labels() -> None:
    binary = build_label_scheme("binary")
    samples = build_backchannel_samples([two_speaker_dialogue()], binary, sampling(), seed=0)
    assert Counter(s.label for s in samples) == {1: 2, 0: 2}


def test_invalid_sampling_settings() -> None:
    with pytest.raises(RecipeError, match=r"nobc_ratio \(-1\.0\)"):
        build_backchannel_samples([], FOUR_CLASS, sampling(nobc_ratio=-1.0), seed=0)


# Real BACKCast excerpt --------------------------------------------------------------------------


def test_backcast_excerpt_samples() -> None:
    dialogue = read_backcast_excerpt()
    samples = build_backchannel_samples([dialogue], FOUR_CLASS, sampling(), seed=0)
    labelled = [s for s in samples if s.label != 0]
    # The 9 entries: 6 CONTINUER, 2 UNDERSTANDING, 1 AFFIRMATIVE (an Empathy category).
    assert Counter(s.label for s in labelled) == {1: 6, 2: 2, 3: 1}
    assert sum(s.label == 0 for s in samples) == 9
    assert all({s.speaker, s.listener} == {"AH0001", "AH0002"} for s in samples)

    extractor = WindowExtractor([dialogue], WindowSection(), {"text"})
    by_onset = {s.time: s for s in labelled}
    assert extractor.extract_text(by_onset[32.588]) == "갔었어요. 그래서 뭐 많이 돌아다녔던"
    assert by_onset[40.074].speaker == "AH0002"
    assert extractor.extract_text(by_onset[40.074]) == "한여름의 크리스마스를 느낄 수 있죠."


def test_backcast_excerpt_context_samples() -> None:
    dialogue = read_backcast_excerpt()
    samples = build_context_samples([dialogue])
    assert len(samples) == 120
    assert all(s.label is None for s in samples)
    assert [s.time for s in samples] == [w.end for w in dialogue.words]
    assert all(s.speaker == w.speaker and s.listener != w.speaker for s, w in zip(samples, dialogue.words))


# Context samples --------------------------------------------------------------------------------


def test_context_sample_per_word() -> None:
    samples = build_context_samples([two_speaker_dialogue()])
    assert [(s.time, s.speaker, s.listener, s.label) for s in samples] == [
        (1.0, "A", "B", None),
        (2.0, "A", "B", None),
        (2.5, "B", "A", None),
        (3.0, "A", "B", None),
        (4.0, "A", "B", None),
        (5.0, "A", "B", None),
        (6.0, "A", "B", None),
    ]


def test_context_listener_three_speakers() -> None:
    words = (Word("A", 0.0, 1.0, "a"), Word("C", 1.2, 2.0, "c"), Word("B", 2.1, 2.4, "b"))
    samples = build_context_samples([Conversation("three", words, (), ("A", "B", "C"))])
    assert [(s.speaker, s.listener) for s in samples] == [("A", "B"), ("C", "A"), ("B", "C")]


def test_context_single_speaker() -> None:
    samples = build_context_samples([Conversation("solo", (Word("A", 0.0, 1.0, "a"),), (), ("A",))])
    assert [(s.speaker, s.listener) for s in samples] == [("A", "")]


# Splits -----------------------------------------------------------------------------------------


def labelled_samples(counts: dict[int, int], conversations: int = 1) -> list[Sample]:
    samples = []
    for label, count in counts.items():
        samples.extend(Sample(f"c{i % conversations}", float(i), "A", "B", label) for i in range(count))
    return samples


def test_split_stratified_proportions() -> None:
    samples = labelled_samples({0: 200, 1: 100, 2: 40})
    splits = split_samples(samples, seed=0)
    counts = {name: Counter(s.label for s in split) for name, split in splits.items()}
    # Cumulative rounding of 0.8 / 0.85 / 1.0 of each label's count.
    assert counts["train"] == {0: 160, 1: 80, 2: 32}
    assert counts["validation"] == {0: 10, 1: 5, 2: 2}
    assert counts["test"] == {0: 30, 1: 15, 2: 6}


def test_split_partitions_and_is_seeded() -> None:
    samples = labelled_samples({0: 50, 1: 30})
    first = split_samples(samples, seed=4)
    assert sorted(first["train"] + first["validation"] + first["test"], key=samples.index) == samples
    assert split_samples(samples, seed=4) == first
    assert split_samples(samples, seed=5) != first


def test_split_keeps_input_order() -> None:
    samples = labelled_samples({0: 40, 1: 40})
    for split in split_samples(samples, seed=1).values():
        positions = [samples.index(s) for s in split]
        assert positions == sorted(positions)


def test_split_by_conversation_is_disjoint() -> None:
    corpus = synthetic_corpus(60)
    samples = build_backchannel_samples(corpus, FOUR_CLASS, sampling(), seed=0)
    splits = split_samples(samples, seed=0, by="conversation")
    owners = {name: {s.conversation_id for s in split} for name, split in splits.items()}
    assert not owners["train"] & owners["validation"]
    assert not owners["train"] & owners["test"]
    assert not owners["validation"] & owners["test"]
    assert sum(len(split) for split in splits.values()) == len(samples)
    assert abs(len(splits["train"]) / len(samples) - 0.8) < 0.05
    assert abs(len(splits["test"]) / len(samples) - 0.15) < 0.05
    assert len(splits["validation"]) > 0


def test_split_rejects_bad_ratios() -> None:
    with pytest.raises(RecipeError, match=r"got \[8, 2\]"):
        split_samples([], ratios=[8, 2])
    with pytest.raises(RecipeError, match=r"expected 'sample' or 'conversation', got 'speaker'"):
        split_samples([], by="speaker")  # type: ignore[arg-type]


# Label noise ------------------------------------------------------------------------------------


def test_label_noise_flips_exact_count() -> None:
    samples = [Sample("c", float(i), "A", "B", i % 4) for i in range(1000)]
    noisy = apply_label_noise(samples, fraction=0.2, num_classes=4, seed=0)
    changed = [(old.label, new.label) for old, new in zip(samples, noisy) if old.label != new.label]
    assert len(changed) == 200
    assert all(new in range(4) for _, new in changed)
    assert [attrs.evolve(new, label=old.label) for old, new in zip(samples, noisy)] == samples
    assert apply_label_noise(samples, 0.2, 4, seed=0) == noisy
    assert apply_label_noise(samples, 0.2, 4, seed=1) != noisy


def test_label_noise_rounds_and_skips_unlabelled() -> None:
    samples = [Sample("c", float(i), "A", "B", i % 2) for i in range(7)] + [Sample("c", 9.0, "A", "B")]
    noisy = apply_label_noise(samples, fraction=0.5, num_classes=2, seed=3)
    # round(0.5 × 7 labelled) = 4 (half rounds up); the unlabelled sample stays as it is.
    assert sum(a.label != b.label for a, b in zip(samples, noisy)) == 4
    assert noisy[-1] == samples[-1]
    assert apply_label_noise(samples, 0.0, 2, seed=3) == samples


def test_label_noise_rejects_bad_fraction() -> None:
    with pytest.raises(RecipeError, match=r"got 1\.5"):
        apply_label_noise([], 1.5, 4, seed=0)
