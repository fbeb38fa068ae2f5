"""``camabc plugins`` and ``camabc recipe check/show`` run through the real command-line entry point."""

from __future__ import annotations

import json
import subprocess
import sys

from camabc_core.cli import COMMAND_MODULES, main
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
    assert listing["conflicts"] == []
    assert listing["failures"] == []
    assert listing["disabled"] == [{"plugin": "broken", "distribution": "camabc-broken", "version": "1.2.0"}]


RIVAL_CONCAT_PLUGIN = """
    from camabc_core.hookspecs import hookimpl


    @hookimpl
    def register_fusions(register):
        register("concat", list)
"""


def install_conflict(fake_plugins):
    fake_plugins.add_module("good_plugin", GOOD_PLUGIN)
    fake_plugins.add_module("rival_plugin", RIVAL_CONCAT_PLUGIN)
    fake_plugins.add_distribution("camabc-good", "0.3.0", {"good": "good_plugin"})
    fake_plugins.add_distribution("camabc-rival", "2.0", {"rival": "rival_plugin"})


CONCAT_CONFLICT = (
    "fusion 'concat' is registered by more than one plugin: 'good' (camabc-good) and 'rival' "
    "(camabc-rival). Uninstall one of them, or disable one with CAMABC_DISABLE_PLUGINS=good or "
    "CAMABC_DISABLE_PLUGINS=rival; disabling a plugin removes every component it provides."
)


def test_plugins_table_marks_conflicts(fake_plugins, capsys):
    install_conflict(fake_plugins)
    assert main(["plugins"]) == 1
    assert capsys.readouterr().out == (
        "KIND     NAME               PLUGIN  DISTRIBUTION  VERSION\n"
        "encoder  good-encoder       good    camabc-good   0.3.0\n"
        "fusion   concat (conflict)  good    camabc-good   0.3.0\n"
        "fusion   concat (conflict)  rival   camabc-rival  2.0\n"
        "\n"
        "Component names registered by more than one plugin (1):\n"
        f"  {CONCAT_CONFLICT}\n"
    )


def test_plugins_json_lists_conflicts(fake_plugins, capsys):
    install_conflict(fake_plugins)
    assert main(["plugins", "--json"]) == 1
    listing = json.loads(capsys.readouterr().out)
    assert listing["conflicts"] == [
        {
            "kind": "fusion",
            "name": "concat",
            "plugins": [
                {"plugin": "good", "distribution": "camabc-good", "version": "0.3.0"},
                {"plugin": "rival", "distribution": "camabc-rival", "version": "2.0"},
            ],
            "message": CONCAT_CONFLICT,
        }
    ]
    assert [(row["name"], row["plugin"]) for row in listing["components"]] == [
        ("good-encoder", "good"),
        ("concat", "good"),
        ("concat", "rival"),
    ]


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


def test_recipe_check_reports_encoding_and_syntax(fake_plugins, tmp_path, capsys):
    latin1 = tmp_path / "latin1.yaml"
    latin1.write_bytes(b"run:\n  name: caf\xe9\n")
    syntax = tmp_path / "syntax.yaml"
    syntax.write_text("run:\n  name: [a\n  seed: 1\n", encoding="utf-8")

    assert main(["recipe", "check", str(latin1), str(syntax)]) == 1
    captured = capsys.readouterr()
    assert captured.out == (
        f"{latin1}: 1 problem\n"
        f"  - {latin1}:2:12: byte 0xe9 (byte offset 16) is not valid UTF-8. Save the file as UTF-8, or "
        "convert it with e.g. `iconv -f latin1 -t utf-8 OLD > NEW` (-f cp949 for a Korean Windows file)\n"
        f"{syntax}: 1 problem\n"
        f"  - {syntax}:3:7: invalid YAML: expected ',' or ']', but got ':' "
        "(while parsing a flow sequence that starts at line 2, column 9)\n"
        "      seed: 1\n"
        "          ^\n"
    )
    assert captured.err == "2 of 2 recipes are invalid.\n"


def test_parser_and_command_modules_skip_torch():
    # A fresh interpreter, because this test process has imported torch already.
    modules = ", ".join(f"camabc_core.commands.{name}" for name in COMMAND_MODULES)
    code = (
        f"import sys, camabc_core.cli, {modules}\n"
        "camabc_core.cli.build_parser()\n"
        "print(sorted(name for name in ('torch', 'transformers', 'cattrs') if name in sys.modules))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout == "[]\n"
