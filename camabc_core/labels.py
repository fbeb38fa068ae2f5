"""Label schemes: the fixed class list of a task and the raw-category -> class mapping.

Class ids are the positions in ``classes`` and are stored with every trained model, so a scheme's
order never changes. NoBC is always id 0.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

import attrs

from camabc_core.errors import RecipeError

NOBC = "NoBC"

FOUR_CLASS: tuple[str, ...] = (NOBC, "Continuer", "Understanding", "Empathy")
BINARY: tuple[str, ...] = (NOBC, "BC")

SCHEME_CLASSES: dict[str, tuple[str, ...]] = {"four_class": FOUR_CLASS, "binary": BINARY}

# Raw categories used by Korean backchannel corpora (BACKCast spelling, upper case). Empathy gathers
# every affective category.
DEFAULT_FOUR_CLASS_MAP: dict[str, str] = {
    "CONTINUER": "Continuer",
    "UNDERSTANDING": "Understanding",
    "EMPATHY": "Empathy",
    "ASSESSMENT": "Empathy",
    "POSITIVE_SURPRISE": "Empathy",
    "NEGATIVE_SURPRISE": "Empathy",
    "REQUEST_CONFIRMATION": "Empathy",
    "AFFIRMATIVE": "Empathy",
}


def normalise_category(raw_category: str) -> str:
    """Return the lookup key of a raw category: upper case, with spaces and hyphens as underscores.

    BACKSpeech writes "request confirmation" where BACKCast writes "REQUEST_CONFIRMATION"; both
    give the key "REQUEST_CONFIRMATION".
    """
    return re.sub(r"[\s\-]+", "_", raw_category.strip()).upper()


@attrs.frozen
class LabelScheme:
    """A named class list plus the mapping from raw corpus categories to class names."""

    name: str
    classes: tuple[str, ...]
    category_map: Mapping[str, str]

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def class_id(self, raw_category: str) -> int | None:
        """Return the class id of a raw backchannel category, or None if the mapping drops it.

        In the binary scheme every mapped category is "BC". Lookup ignores case and surrounding space
        and reads inner spaces and hyphens as underscores (see ``normalise_category``).
        """
        class_name = self.category_map.get(normalise_category(raw_category))
        if class_name is None:
            return None
        if self.name == "binary":
            return self.classes.index("BC")
        return self.classes.index(class_name)


def build_label_scheme(name: str, category_map: Mapping[str, str] | None = None) -> LabelScheme:
    """Build a scheme; ``category_map`` (raw -> class name) defaults to the four-class Korean mapping."""
    if name not in SCHEME_CLASSES:
        raise RecipeError(
            f"data.label_scheme: unknown scheme {name!r}; expected one of {sorted(SCHEME_CLASSES)}"
        )
    classes = SCHEME_CLASSES[name]
    mapping = dict(DEFAULT_FOUR_CLASS_MAP if category_map is None else category_map)

    # In the binary scheme the map may name four-class classes or "BC"; both mean a backchannel.
    allowed = set(classes) | (set(FOUR_CLASS) if name == "binary" else set())
    invalid = {raw: cls for raw, cls in mapping.items() if cls not in allowed or cls == NOBC}
    if invalid:
        raise RecipeError(
            f"data.category_map maps {invalid} to classes outside the {name} scheme; "
            f"use one of {[c for c in classes if c != NOBC]}"
        )
    normalised = {normalise_category(raw): cls for raw, cls in mapping.items()}
    return LabelScheme(name=name, classes=classes, category_map=normalised)
