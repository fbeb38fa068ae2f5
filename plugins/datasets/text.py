"""Text helpers shared by the corpus readers: Unicode normalisation and word timing."""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence

from camabc_core.records import Word


def normalise_text(text: str) -> str:
    """Return ``text`` in Unicode NFKC with runs of whitespace collapsed to one space.

    NFKC turns compatibility forms (full-width Latin and digits, ligatures) into the forms
    tokenizers expect, and Korean syllables stay precomposed.
    """
    # NOTE: NFKC also maps lone compatibility jamo ("ㅋㅋ", U+314B) to conjoining jamo (U+110F),
    # which a Korean tokenizer may split differently. BACKSpeech and BACKCast contain none.
    if not unicodedata.is_normalized("NFKC", text):
        text = unicodedata.normalize("NFKC", text)
    return " ".join(text.split())


def spread_over_span(start: float, end: float, lengths: Sequence[int]) -> list[tuple[float, float]]:
    """Split ``[start, end]`` into consecutive pieces proportional to ``lengths``.

    Used where a corpus times whole utterances only: each word gets a share of the utterance span
    proportional to its number of characters, which assumes a constant speaking rate per character
    (for Korean one character is one syllable). Zero lengths count as one character so every piece
    has a positive duration when the span has one.
    """
    weights = [max(length, 1) for length in lengths]
    total = sum(weights)
    duration = max(end - start, 0.0)
    pieces: list[tuple[float, float]] = []
    elapsed = 0
    for weight in weights:
        piece_start = start + duration * elapsed / total
        elapsed += weight
        piece_end = start + duration * elapsed / total
        pieces.append((piece_start, piece_end))
    return pieces


def interpolate_words(speaker: str, start: float, end: float, tokens: Sequence[str]) -> list[Word]:
    """Time the whitespace-separated ``tokens`` of one utterance by character share of its span."""
    spans = spread_over_span(start, end, [len(token) for token in tokens])
    return [
        Word(speaker=speaker, start=span_start, end=span_end, text=token)
        for token, (span_start, span_end) in zip(tokens, spans)
    ]
