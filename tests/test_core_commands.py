"""``camabc plugins`` and ``camabc recipe check/show`` run through the real command-line entry point."""

from __future__ import annotations

import json

from camabc_core.cli import main
from camabc_core.hookspecs import hookimpl
from camabc_core.registry import get_registry

GOOD_PLUGIN = """
    from camabc_core.hookspecs import hookimpl


    class GoodEncoder:
        modality = "text"


    @hookimpl
    def register_encoders(register):
        register("good-encoder", GoodEncoder)


    @hookimpl
    def register_fusions(register):
        register("concat", dict)
"""


def install_good_and_broken(fake_plugins):
    fake_plugins.add_module("good_plugin", GOOD_PLUGIN)
    fake_plugins.add_module("broken_plugin", "raise ImportError('libfoo 2 or later is required')\n")
    fake_plugins.add_distribution("camabc-good", "0.3.0", {"good": "good_plugin"})
    fake_plugins.add_distribution("camabc-broken", "1.2.0", {"broken": "broken_plugin"})


def test_plugins_table(fake_plugins, capsys):
    install_good_and_broken(fake_plugins)
    assert main(["plugins"]) == 0
    assert capsys.readouterr().out == (
        "KIND     NAME          PLUGIN  DISTRIBUTION  VERSION\n"
        "encoder  good-encoder  good    camabc-good   0.3.0\n"
        "fusion   concat        good    camabc-good   0.3.0\n"
        "\n"
        "Plugins that failed to load (1):\n"
        "  broken (camabc-broken 1.2.0): ImportError: libfoo 2 or later is required\n"
    )


def test_plugins_json(fake_plugins, capsys, monkeypatch):
    install_good_and_broken(fake_plugins)
    monkeypatch.setenv("CAMABC_DISABLE_PLUGINS", "broken")
    assert main(["plugins", "--json"]) == 0
    listing = json.loads(capsys.readouterr().out)
    assert listing["components"][0] == {
        "kind": "encoder",
        "name": "good-encoder",
        "plugin": "good",
        "distribution": "camabc-good",
        "version": "0.3.0",
    }
    assert len(listing["components"]) == 2
    assert listing["failures"] == []
    assert listing["disabled"] == [{"plugin": "broken", "distribution": "camabc-broken", "version": "1.2.0"}]


class RecipeComponents:
    @hookimpl
    def register_encoders(self, register):
        register("bert", dict)

    @hookimpl
    def register_aligners(self, register):
        register("mma", dict)

    @hookimpl
    def register_fusions(self, register):
        register("hierarchical", dict)

    @hookimpl
    def register_datasets(self, register):
        register("manifest", dict)


def test_recipe_check_reports_each_file(fake_plugins, tmp_path, capsys):
    get_registry().register_plugin(RecipeComponents(), name="recipe-components")
    good = tmp_path / "good.yaml"
    good.write_text("model:\n  encoders:\n    text: {name: bert}\n", encoding="utf-8")
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "data:\n  window:\n    num_frame: 8\nmodel:\n  aligner:\n    temprature: 0.1\n", encoding="utf-8"
    )

    assert main(["recipe", "check", str(good), str(bad)]) == 1
    captured = capsys.readouterr()
    assert captured.out == (
        f"{good}: OK\n"
        f"{bad}: 2 problems\n"
        "  - data.window.num_frame (line 3): unknown key. Did you mean 'num_frames'?\n"
        "  - model.aligner.temprature (line 6): unknown key. Did you mean 'temperature'?\n"
    )
    assert captured.err == "1 of 2 recipes are invalid.\n"

    assert main(["recipe", "check", str(good), "--set", "model.aligner.name=mmx"]) == 1
    assert "model.aligner.name: unknown aligner 'mmx'. Did you mean 'mma'?" in capsys.readouterr().out
    assert main(["recipe", "check", str(good), "--set", "run.seed=4"]) == 0


def test_recipe_show_prints_resolved_recipe(fake_plugins, tmp_path, capsys):
    get_registry().register_plugin(RecipeComponents(), name="recipe-components")
    path = tmp_path / "recipe.yaml"
    path.write_text("model:\n  encoders:\n    text: {name: bert}\n", encoding="utf-8")
    assert main(["recipe", "show", str(path), "--set", "data.window.num_frames=4"]) == 0
    output = capsys.readouterr().out
    assert "  window:\n    audio_seconds: 1.5\n    text_words: 5\n    num_frames: 4\n" in output
    assert "    text:\n      name: bert\n      checkpoint: null\n" in output
    assert "    layers: [9, 10, 11]\n" in output
