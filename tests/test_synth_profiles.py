"""Speaker prompts: metadata fills age and sex, seeded draws fill race and outfit."""

from __future__ import annotations

import pytest

from synth.profiles import OUTFITS, RACES, SpeakerProfile, build_profile, indefinite_article, normalize_sex


def test_prompt_matches_template():
    profile = SpeakerProfile("swbd-1000", "female", 37, "White", "wearing shirts", seed=1)
    assert profile.prompt == ("A bust image of a 37-year-old White woman, wearing shirts, facing forward, "
                              "highly detailed, neutral background, photo-realistic.")


@pytest.mark.parametrize(("age", "article"), [(8, "an"), (11, "an"), (18, "an"), (80, "an"), (84, "an"),
                                              (21, "a"), (37, "a"), (68, "a"), (108, "a")])
def test_indefinite_article(age, article):
    assert indefinite_article(age) == article


def test_prompt_for_older_man():
    profile = SpeakerProfile("swbd-1001", "male", 81, "Middle Eastern", "wearing t-shirts", seed=1)
    assert profile.prompt.startswith("A bust image of an 81-year-old Middle Eastern man, wearing t-shirts,")


def test_metadata_kept_and_rest_drawn_from_lists():
    profile = build_profile("swbd-1000", run_seed=0, sex="female", age=37)
    assert profile.sex == "female"
    assert profile.age == 37
    assert profile.race in RACES
    assert profile.outfit in OUTFITS
    assert profile.metadata_source == "metadata"


def test_draws_repeat_for_same_seed_and_speaker():
    first = build_profile("swbd-1000", run_seed=5, sex="female", age=37)
    again = build_profile("swbd-1000", run_seed=5, sex="female", age=37)
    assert first == again


def test_draws_do_not_depend_on_metadata():
    # Adding a caller's metadata must not change their race, outfit or image seed.
    drawn = build_profile("swbd-1234", run_seed=3)
    known = build_profile("swbd-1234", run_seed=3, sex="male", age=50)
    assert (drawn.race, drawn.outfit, drawn.seed) == (known.race, known.outfit, known.seed)
    assert drawn.metadata_source == "drawn"
    assert build_profile("swbd-1234", run_seed=3, sex="male").metadata_source == "partial"


def test_draws_cover_lists_and_change_with_seed():
    profiles = [build_profile(f"swbd-{number}", run_seed=0) for number in range(200)]
    assert {profile.race for profile in profiles} == set(RACES)
    assert {profile.outfit for profile in profiles} == set(OUTFITS)
    reseeded = [build_profile(f"swbd-{number}", run_seed=1) for number in range(200)]
    changed = sum(a.race != b.race or a.outfit != b.outfit for a, b in zip(profiles, reseeded))
    assert changed > 100


def test_normalize_sex_spellings():
    assert normalize_sex('"FEMALE"') == "female"
    assert normalize_sex("m") == "male"
    assert normalize_sex("") is None
    assert normalize_sex("unknown") is None


def test_invalid_sex_rejected():
    with pytest.raises(ValueError, match="sex must be one of"):
        build_profile("x", 0, sex="other")
