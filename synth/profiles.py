"""Synthetic speaker profiles and the text prompt that describes each reference portrait.

Age and sex come from corpus metadata when it exists. Race and outfit are drawn from fixed lists by a
generator seeded with the run seed and the speaker id, so a speaker keeps the same look however the
jobs are ordered, filtered or split across processes.
"""

from __future__ import annotations

import hashlib
from typing import Any

import attrs
import numpy as np

# Lists and prompt template of the CAMA-BC paper's reference-image method (Flux.1 [dev] prompts).
RACES: tuple[str, ...] = ("White", "Middle Eastern", "Black", "Mediterranean")
OUTFITS: tuple[str, ...] = ("wearing clothes", "wearing shirts", "wearing t-shirts")
PROMPT_TEMPLATE = (
    "A bust image of {article} {age}-year-old {race} {gender}, {outfit}, facing forward, "
    "highly detailed, neutral background, photo-realistic."
)
SEXES: tuple[str, ...] = ("female", "male")
GENDER_WORDS: dict[str, str] = {"female": "woman", "male": "man"}
# Ages drawn for speakers without metadata: adult callers, as in telephone corpora.
DRAWN_AGE_RANGE: tuple[int, int] = (20, 70)


def stable_seed(*parts: object) -> int:
    """Hash ``parts`` into a 63-bit seed that is the same on every machine and Python version."""
    digest = hashlib.sha256("\x1f".join(str(part) for part in parts).encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") >> 1


def speaker_rng(run_seed: int, speaker_id: str) -> np.random.Generator:
    """Return the generator for one speaker's random choices."""
    return np.random.default_rng(stable_seed("speaker", run_seed, speaker_id))


def indefinite_article(age: int) -> str:
    """Return "an" for ages read with a leading vowel sound (8, 11, 18, 80-89), else "a"."""
    spoken_with_vowel = str(age).startswith("8") or age in (11, 18)
    return "an" if spoken_with_vowel else "a"


@attrs.frozen
class SpeakerProfile:
    """One synthetic speaker: who the reference portrait shows and the seed that renders it.

    ``metadata_source`` is ``"metadata"`` when sex and age both come from the corpus, ``"partial"``
    when one of them was drawn and ``"drawn"`` when both were.
    """

    speaker_id: str
    sex: str
    age: int
    race: str
    outfit: str
    seed: int
    metadata_source: str = "metadata"

    @property
    def prompt(self) -> str:
        return PROMPT_TEMPLATE.format(
            article=indefinite_article(self.age),
            age=self.age,
            race=self.race,
            gender=GENDER_WORDS[self.sex],
            outfit=self.outfit,
        )

    @property
    def attributes(self) -> dict[str, Any]:
        return {"sex": self.sex, "age": self.age, "race": self.race, "outfit": self.outfit}

    def to_json(self) -> dict[str, Any]:
        return {**attrs.asdict(self), "prompt": self.prompt}


def normalize_sex(value: str) -> str | None:
    """Map corpus spellings ("FEMALE", "f", "Male") to "female"/"male"; None when unrecognised."""
    text = value.strip().strip('"').lower()
    if text in ("female", "f", "woman"):
        return "female"
    if text in ("male", "m", "man"):
        return "male"
    return None


def build_profile(speaker_id: str, run_seed: int, *, sex: str | None = None,
                  age: int | None = None) -> SpeakerProfile:
    """Build a speaker's profile; race and outfit are always drawn, sex and age only when missing.

    The draws happen in a fixed order whether or not sex and age are given, so adding metadata for
    one speaker never changes another speaker's race or outfit.
    """
    rng = speaker_rng(run_seed, speaker_id)
    race = RACES[int(rng.integers(len(RACES)))]
    outfit = OUTFITS[int(rng.integers(len(OUTFITS)))]
    drawn_sex = SEXES[int(rng.integers(len(SEXES)))]
    drawn_age = int(rng.integers(DRAWN_AGE_RANGE[0], DRAWN_AGE_RANGE[1]))
    image_seed = int(rng.integers(2**31 - 1))
    if sex is not None and sex not in SEXES:
        raise ValueError(f"sex must be one of {SEXES}, got {sex!r}")
    return SpeakerProfile(
        speaker_id=speaker_id,
        sex=sex if sex is not None else drawn_sex,
        age=age if age is not None else drawn_age,
        race=race,
        outfit=outfit,
        seed=image_seed,
        metadata_source=_metadata_source(sex is not None, age is not None),
    )


def _metadata_source(has_sex: bool, has_age: bool) -> str:
    if has_sex and has_age:
        return "metadata"
    return "partial" if has_sex or has_age else "drawn"
