"""Every recipe under recipes/ and every command in recipes/README.md loads and validates."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from camabc_core.recipe_loading import load_recipe
from camabc_core.training.data import used_modalities
from camabc_core.training.stages import check_stages

RECIPES_DIR = Path(__file__).resolve().parents[1] / "recipes"
RECIPE_FILES = sorted(RECIPES_DIR.rglob("*.yaml"))
SECTIONS = ("run:", "data:", "model:", "context_alignment:", "backchannel_alignment:", "evaluation:")


def readme_commands() -> list[list[str]]:
    """The `camabc train` commands of the README's shell blocks, split into arguments."""
    text = (RECIPES_DIR / "README.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```sh\n(.*?)```", text, flags=re.DOTALL)
    lines = [line for block in blocks for line in block.splitlines() if line.startswith("camabc train")]
    return [shlex.split(line) for line in lines]


def test_recipes_exist():
    assert len(RECIPE_FILES) >= 8


@pytest.mark.parametrize("path", RECIPE_FILES, ids=lambda path: str(path.relative_to(RECIPES_DIR)))
def test_recipe_loads_and_validates(path: Path):
    recipe = load_recipe(path)
    check_stages(recipe, used_modalities(recipe))

    text = path.read_text(encoding="utf-8")
    assert text.startswith("#"), "a recipe opens with a header comment"
    for marker in ("Run:", "Override:"):
        assert marker in text.split("\nrun:")[0], f"header lacks {marker!r}"
    positions = [text.find(f"\n{section}") for section in SECTIONS]
    assert all(position > 0 for position in positions), "every top-level section is written out"
    assert positions == sorted(positions)


def test_readme_lists_every_ablation():
    commands = readme_commands()
    names = [argument.split("=", 1)[1] for command in commands for argument in command
             if argument.startswith("run.name=")]

    assert len(commands) == 19
    assert len(set(names)) == len(names), "each ablation writes its own run directory"


@pytest.mark.parametrize("command", readme_commands(), ids=lambda command: command[-1].split("=", 1)[1])
def test_readme_command_loads(command: list[str]):
    recipe_path = RECIPES_DIR.parent / command[2]
    overrides = [command[i + 1] for i, argument in enumerate(command) if argument == "--set"]
    recipe = load_recipe(recipe_path, overrides)
    check_stages(recipe, used_modalities(recipe))

    assert recipe.data.root == "$KC_DIALOG"
