"""Strict recipe loading: unknown keys, types, overrides, saving, and semantic validation."""

from __future__ import annotations

import textwrap
import typing

import attrs
import pytest

from camabc_core.hookspecs import hookimpl
from camabc_core.recipe import EncoderSpec, Recipe, RunSection, StageSection
from camabc_core.recipe_loading import (
    InvalidRecipeError,
    load_recipe,
    parse_override,
    recipe_from_dict,
    recipe_to_dict,
    save_recipe,
    validate_recipe,
)


def write_recipe(tmp_path, text: str, name: str = "recipe.yaml"):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def load_problems(path, overrides=()) -> list[str]:
    with pytest.raises(InvalidRecipeError) as raised:
        load_recipe(path, overrides, validate=False)
    return raised.value.problems


class AudioEncoder:
    modality = "audio"


class TextEncoder:
    modality = "text"

    @classmethod
    def from_spec(cls, spec, window):
        return cls()


class VideoEncoder:
    modality = "video"


class FakeComponents:
    """Components named like the built-ins, so validation can check names without real models."""

    @hookimpl
    def register_encoders(self, register):
        register("hubert", AudioEncoder)
        register("bert", TextEncoder.from_spec)
        register("videomae", VideoEncoder)

    @hookimpl
    def register_aligners(self, register):
        register("mma", dict)
        register("none", dict)

    @hookimpl
    def register_fusions(self, register):
        register("hierarchical", dict)

    @hookimpl
    def register_datasets(self, register):
        register("manifest", dict)


@pytest.fixture
def components(empty_registry):
    empty_registry.register_plugin(FakeComponents(), name="fake-components")
    return empty_registry


def test_misspelled_keys_reported_together(tmp_path):
    path = write_recipe(
        tmp_path,
        """
        data:
          window:
            num_frame: 8
        model:
          aligner:
            temprature: 0.1
        """,
    )
    with pytest.raises(InvalidRecipeError) as raised:
        load_recipe(path, validate=False)
    assert raised.value.problems == [
        "data.window.num_frame (line 4): unknown key. Did you mean 'num_frames'?",
        "model.aligner.temprature (line 7): unknown key. Did you mean 'temperature'?",
    ]
    message = str(raised.value)
    assert message.startswith(f"invalid recipe {path} (2 problems):")
    assert "num_frames" in message
    assert "temperature" in message


def test_key_in_wrong_section_points_to_it(tmp_path):
    path = write_recipe(tmp_path, "model:\n  temperature: 0.1\nrun:\n  zzz: 1\n")
    run_keys = [field.name for field in attrs.fields(RunSection)]
    assert run_keys[:3] == ["name", "output_dir", "seed"]
    assert load_problems(path) == [
        "model.temperature (line 2): unknown key. Did you mean 'model.aligner.temperature'?",
        f"run.zzz (line 4): unknown key. Valid keys here: {', '.join(run_keys)}.",
    ]


@pytest.mark.parametrize(
    ("yaml_text", "expected"),
    [
        ("run:\n  seed: '3'\n", "run.seed (line 2): expected an integer, got string '3'"),
        (
            "data:\n  window:\n    num_frames: 8.5\n",
            "data.window.num_frames (line 3): expected an integer, got number 8.5",
        ),
        ("run:\n  seed: true\n", "run.seed (line 2): expected an integer, got boolean True"),
        (
            "data:\n  skip_malformed: 'no'\n",
            "data.skip_malformed (line 2): expected a boolean, got string 'no'",
        ),
        (
            "model:\n  aligner:\n    layers: '9,10'\n",
            "model.aligner.layers (line 3): expected a list of integers, got string '9,10'",
        ),
        (
            "model:\n  aligner:\n    layers: [9, ten]\n",
            "model.aligner.layers[1] (line 3): expected an integer, got string 'ten'",
        ),
        (
            "run:\n  mixed_precision: bf61\n",
            "run.mixed_precision (line 2): expected one of 'no', 'bf16', 'fp16', got string 'bf61'. "
            "Did you mean 'bf16'?",
        ),
        (
            "backchannel_alignment:\n  max_steps: many\n",
            "backchannel_alignment.max_steps (line 2): expected an integer or null, got string 'many'",
        ),
        (
            "model:\n  encoders:\n    audio: hubert\n",
            "model.encoders.audio (line 3): expected a mapping of keys or null, got string 'hubert'; "
            "write audio: {name: hubert}",
        ),
        (
            "model:\n  encoders:\n    audio: {checkpoint: x}\n",
            "model.encoders.audio.name (line 3): required key is missing",
        ),
        ("data: [1, 2]\n", "data (line 1): expected a mapping of keys, got list"),
        (
            "data:\n  category_map: {CONTINUER: 3}\n",
            "data.category_map.CONTINUER (line 2): expected a string, got integer 3",
        ),
    ],
)
def test_wrong_type_names_path_and_type(tmp_path, yaml_text, expected):
    assert load_problems(write_recipe(tmp_path, yaml_text)) == [expected]


def test_numbers_read_as_floats(tmp_path):
    path = write_recipe(
        tmp_path,
        """
        backchannel_alignment:
          lr_encoders: 5e-6
          lr_classifier: 1E-4
          lr_decay: 1
        """,
    )
    stage = load_recipe(path, validate=False).backchannel_alignment
    assert stage.lr_encoders == 5e-6
    assert stage.lr_classifier == 1e-4
    assert stage.lr_decay == 1.0
    assert isinstance(stage.lr_decay, float)


def test_duplicate_keys_reported(tmp_path):
    path = write_recipe(tmp_path, "run:\n  seed: 1\n  seed: 2\n")
    assert load_problems(path) == ["line 3: duplicate key 'seed' (first at line 2); keep one"]


def test_invalid_yaml_and_top_level(tmp_path):
    path = write_recipe(tmp_path, "run: [\n")
    # The file ends inside the list; past the last line there is no source line to quote.
    assert load_problems(path) == [
        f"{path}:2:1: invalid YAML: expected the node content, but found '<stream end>'"
    ]
    assert load_problems(write_recipe(tmp_path, "- run\n")) == [
        "a recipe is a mapping of sections (run, data, model, ...), got list"
    ]
    assert load_problems(tmp_path / "missing.yaml")[0].startswith("cannot read the file:")


def test_yaml_syntax_error_gives_file_line_column(tmp_path):
    path = write_recipe(tmp_path, "data:\n  window: {num_frames: 8\n  x: [\n")
    # The parser notices the unclosed mapping at the ':' on line 3 and names where the mapping opened.
    assert load_problems(path) == [
        f"{path}:3:4: invalid YAML: expected ',' or '}}', but got ':' "
        "(while parsing a flow mapping that starts at line 2, column 11)\n"
        "  x: [\n"
        "   ^"
    ]
    assert "<unicode string>" not in str(load_problems(path))


def test_yaml_tab_and_control_character(tmp_path):
    tab = write_recipe(tmp_path, "run:\n\tseed: 1\n", name="tab.yaml")
    (problem,) = load_problems(tab)
    assert problem.startswith(
        f"{tab}:2:1: invalid YAML: found character '\\t' that cannot start any token; indent with spaces"
    )
    control = write_recipe(tmp_path, "run:\n  name: a\x07b\n", name="control.yaml")
    assert load_problems(control) == [
        f"{control}:2:10: invalid YAML: the non-printable character U+0007 is not allowed in YAML; "
        "remove it\n"
        "  name: a\x07b\n"
        "         ^"
    ]


def test_invalid_yaml_in_override_gives_column(tmp_path):
    path = write_recipe(tmp_path, "")
    # Columns count in the whole KEY=VALUE text: '[' is at column 22, the value ends after it.
    assert load_problems(path, ["model.aligner.layers=[9"]) == [
        "--set 'model.aligner.layers=[9': invalid YAML at line 1, column 24: expected ',' or ']', "
        "but got '<stream end>' (while parsing a flow sequence that starts at line 1, column 22)"
    ]


def test_non_utf8_recipe_names_byte_and_line(tmp_path):
    path = tmp_path / "latin1.yaml"
    # "대화" is 2 characters in 6 UTF-8 bytes, so the byte 0xe9 is at column 12 but byte offset 20.
    path.write_bytes("run:\n  name: 대화 ".encode() + b"caf\xe9\n")
    assert load_problems(path) == [
        f"{path}:2:15: byte 0xe9 (byte offset 23) is not valid UTF-8. Save the file as UTF-8, or convert "
        "it with e.g. `iconv -f latin1 -t utf-8 OLD > NEW` (-f cp949 for a Korean Windows file)"
    ]


def test_utf16_recipe_named_as_utf16(tmp_path):
    path = tmp_path / "utf16.yaml"
    path.write_bytes("run: {seed: 1}\n".encode("utf-16"))
    (problem,) = load_problems(path)
    assert problem.startswith(f"{path}:1:1: the file starts with a UTF-16 byte order mark, so it is UTF-16")


def test_utf8_byte_order_mark_accepted(tmp_path):
    path = tmp_path / "bom.yaml"
    path.write_bytes("\ufeffrun: {seed: 4}\n".encode())
    assert load_recipe(path, validate=False).run.seed == 4


def test_empty_file_gives_defaults(tmp_path):
    assert load_recipe(write_recipe(tmp_path, "# nothing changed\n"), validate=False) == Recipe()


def test_overrides_are_yaml_values(tmp_path):
    path = write_recipe(tmp_path, "context_alignment: null\nrun:\n  seeds: [1, 2]\n")
    recipe = load_recipe(
        path,
        [
            "data.window.num_frames=8",
            "model.aligner.layers=[9, 11]",
            "context_alignment.epochs=2",
            "run.seeds=null",
            "model.encoders.text.name=bert",
            "run.name=ablation=λ 0.5",
        ],
        validate=False,
    )
    assert recipe.data.window.num_frames == 8
    assert recipe.model.aligner.layers == [9, 11]
    assert recipe.context_alignment == StageSection(epochs=2)
    assert recipe.run.seeds is None
    assert recipe.model.encoders.text == EncoderSpec(name="bert")
    assert recipe.run.name == "ablation=λ 0.5"


def test_override_paths_checked_like_keys(tmp_path):
    path = write_recipe(tmp_path, "data:\n  window: {num_frames: 8}\nmodel:\n  aligner:\n    layers: [9]\n")
    problems = load_problems(
        path,
        [
            "data.window.num_frame=8",
            "model.aligner.layers.first=1",
            "data.window.num_frames.size=1",
            "no-equals-sign",
            "run.seed=x",
        ],
    )
    assert problems == [
        "model.aligner.layers.first (from --set): model.aligner.layers is a list, not a section",
        "data.window.num_frames.size (from --set): data.window.num_frames is an integer, not a section",
        "--set 'no-equals-sign': expected KEY=VALUE with a dotted key, e.g. data.window.num_frames=8",
        "data.window.num_frame (from --set): unknown key. Did you mean 'num_frames'?",
        "run.seed (from --set): expected an integer, got string 'x'",
    ]


def test_parse_override_values():
    assert parse_override("a.b=8") == (("a", "b"), 8)
    assert parse_override("a=0.5") == (("a",), 0.5)
    assert parse_override("a=") == (("a",), None)
    assert parse_override("a.b=[1, 2]") == (("a", "b"), [1, 2])
    with pytest.raises(InvalidRecipeError, match="expected KEY=VALUE"):
        parse_override("a..b=1")


def test_recipe_from_dict_leaves_input_unchanged():
    data = {"run": {"seed": 1}}
    recipe = recipe_from_dict(data, ["run.seed=5"])
    assert recipe.run.seed == 5
    assert data == {"run": {"seed": 1}}


def test_save_and_load_round_trip(tmp_path, components):
    recipe = load_recipe(
        write_recipe(tmp_path, "model:\n  encoders:\n    text: {name: bert, config: {hidden_size: 8}}\n"),
        [
            "backchannel_alignment.lr_encoders=5e-6",
            "data.category_map={CONTINUER: Continuer}",
            "run.name=대화",
        ],
        registry=components,
    )
    saved = save_recipe(recipe, tmp_path / "run" / "recipe.yaml")
    text = saved.read_text(encoding="utf-8")
    assert text.startswith("# Resolved camabc recipe")
    assert "name: 대화" in text
    assert load_recipe(saved, registry=components) == recipe
    assert recipe_to_dict(recipe)["model"]["encoders"]["text"]["config"] == {"hidden_size": 8}
    assert sorted(path.name for path in saved.parent.iterdir()) == ["recipe.yaml"]


def test_save_replaces_existing_file(tmp_path):
    target = tmp_path / "recipe.yaml"
    target.write_text("old", encoding="utf-8")
    save_recipe(Recipe(), target)
    assert load_recipe(target, validate=False) == Recipe()


def valid_recipe() -> Recipe:
    return recipe_from_dict({"model": {"encoders": {"audio": {"name": "hubert"}, "text": {"name": "bert"}}}})


def test_valid_recipe_passes(components):
    validate_recipe(valid_recipe(), components)


def test_validation_collects_every_problem(components):
    recipe = recipe_from_dict(
        {
            "data": {"window": {"num_frames": 7}, "sampling": {"split": [8, 0, 1.5], "label_noise": 1.0}},
            "model": {"encoders": {"video": {"name": "videomae"}}, "aligner": {"name": "mmaa"}},
        }
    )
    with pytest.raises(InvalidRecipeError) as raised:
        validate_recipe(recipe, components, source="ablation.yaml")
    assert raised.value.problems == [
        "data.window.num_frames: the video encoder groups frames in tubelets of 2, so num_frames must be "
        "a multiple of 2, got 7",
        "data.sampling.split: every proportion must be more than 0, got [8.0, 0.0, 1.5]",
        "data.sampling.label_noise: must be in [0, 1) (a fraction of labels), got 1.0",
        "model.aligner.name: unknown aligner 'mmaa'. Did you mean 'mma'? Available aligners: mma, none.",
    ]
    assert str(raised.value).startswith("invalid recipe ablation.yaml (4 problems):")


def test_odd_frames_allowed_without_video(components):
    recipe = valid_recipe()
    recipe.data.window.num_frames = 7
    validate_recipe(recipe, components)


def test_tubelet_size_from_encoder_config(components):
    recipe = recipe_from_dict(
        {
            "data": {"window": {"num_frames": 6}},
            "model": {"encoders": {"video": {"name": "videomae", "config": {"tubelet_size": 4}}}},
        }
    )
    with pytest.raises(InvalidRecipeError, match="tubelets of 4, so num_frames must be a multiple of 4"):
        validate_recipe(recipe, components)


def test_ranges_and_cross_field_rules(components):
    recipe = valid_recipe()
    recipe.model.encoders.audio = EncoderSpec(name="bert")
    recipe.model.aligner.projection_size = 30
    recipe.model.aligner.num_heads = 4
    recipe.model.aligner.layers = [9, 9]
    recipe.data.category_map = {"CONTINUER": "Laughter"}
    recipe.backchannel_alignment.batch_size = 0
    recipe.backchannel_alignment.lr_decay = 1.5
    recipe.run.seeds = [1, 1]
    recipe.data.dataset = "manifset"
    with pytest.raises(InvalidRecipeError) as raised:
        validate_recipe(recipe, components)
    assert raised.value.problems == [
        "run.seeds: contains duplicates [1, 1]; each seed must appear once",
        "data.dataset: unknown dataset 'manifset'. Did you mean 'manifest'? Available datasets: manifest.",
        "data.category_map maps {'CONTINUER': 'Laughter'} to classes outside the four_class scheme; "
        "use one of ['Continuer', 'Understanding', 'Empathy']",
        "model.encoders.audio.name: encoder 'bert' encodes text, not audio; "
        "move it under model.encoders.text",
        "model.aligner.layers: contains duplicates [9, 9]",
        "model.aligner.num_heads: attention splits projection_size (30) across heads, so it must divide "
        "it exactly, got 4",
        "backchannel_alignment.batch_size: must be at least 1, got 0",
        "backchannel_alignment.lr_decay: must be in (0, 1], got 1.5",
    ]


def test_recipe_needs_an_encoder_and_a_stage(components):
    recipe = Recipe(backchannel_alignment=None)
    with pytest.raises(InvalidRecipeError) as raised:
        validate_recipe(recipe, components)
    assert raised.value.problems == [
        "model.encoders: no encoder is configured; set at least one of audio, text, video",
        "context_alignment, backchannel_alignment: both stages are null, so the recipe trains nothing; "
        "configure at least one",
    ]


def test_load_recipe_validates_by_default(tmp_path, components):
    path = write_recipe(tmp_path, "model:\n  encoders:\n    audio: {name: hubret}\n")
    with pytest.raises(InvalidRecipeError, match=r"unknown encoder 'hubret'\. Did you mean 'hubert'\?"):
        load_recipe(path, registry=components)


def float_field_paths(cls: type = Recipe, prefix: str = "") -> list[str]:
    """Every dotted key path of the schema whose value is a float or a list of floats."""
    paths = []
    for field in attrs.fields(cls):
        annotation = typing.get_type_hints(cls)[field.name]
        inner = [argument for argument in typing.get_args(annotation) if argument is not type(None)]
        section = inner[0] if len(inner) == 1 and attrs.has(inner[0]) else annotation
        if attrs.has(section):
            paths.extend(float_field_paths(section, f"{prefix}{field.name}."))
        elif float in (annotation, *typing.get_args(annotation)):
            paths.append(f"{prefix}{field.name}")
    return paths


def test_float_field_paths_cover_known_fields():
    paths = float_field_paths()
    for path in (
        "data.window.audio_seconds",
        "data.sampling.split",
        "data.sampling.label_noise",
        "model.aligner.temperature",
        "model.dropout",
        "backchannel_alignment.lr_decay",
        "context_alignment.lr_encoders",
    ):
        assert path in paths


@pytest.mark.parametrize("value", [".nan", ".inf", "-.inf"])
def test_non_finite_floats_rejected_everywhere(components, value):
    for path in float_field_paths():
        override = f"{path}=[1.0, {value}, 1.0]" if path == "data.sampling.split" else f"{path}={value}"
        recipe = recipe_from_dict(
            {"model": {"encoders": {"audio": {"name": "hubert"}, "text": {"name": "bert"}}}}, [override]
        )
        with pytest.raises(InvalidRecipeError) as raised:
            validate_recipe(recipe, components)
        # One problem per field: the finiteness check replaces the range check, never adds to it.
        (problem,) = raised.value.problems
        assert problem.startswith(f"{path}: ")
        assert "finite" in problem


def encoder_config_recipe(audio_config, layers, aligner="mma") -> Recipe:
    return recipe_from_dict(
        {
            "model": {
                "encoders": {"audio": {"name": "hubert", "config": audio_config}, "text": {"name": "bert"}},
                "aligner": {"name": aligner, "layers": layers},
            }
        }
    )


def test_aligned_layers_checked_against_config(components):
    recipe = encoder_config_recipe({"num_hidden_layers": 2}, [0, -2, 2, 99, -3])
    with pytest.raises(InvalidRecipeError) as raised:
        validate_recipe(recipe, components)
    assert raised.value.problems == [
        "model.aligner.layers: contains 2, 99, -3, but model.encoders.audio.config.num_hidden_layers is 2; "
        "use 0-based layers 0..1, or negative ones counted from the end (-1 is the last layer)"
    ]
    validate_recipe(encoder_config_recipe({"num_hidden_layers": 2}, [0, 1]), components)
    # Without num_hidden_layers the layer count is the checkpoint's, which validation does not load.
    validate_recipe(encoder_config_recipe({"hidden_size": 16}, [99]), components)


def test_aligner_that_ignores_layers_not_checked(components):
    class LastLayerAligner:
        uses_recipe_layers = False

    class LastLayerPlugin:
        @hookimpl
        def register_aligners(self, register):
            register("last-layer", LastLayerAligner)

    components.register_plugin(LastLayerPlugin(), name="last-layer")
    validate_recipe(encoder_config_recipe({"num_hidden_layers": 2}, [9], aligner="last-layer"), components)


def test_encoder_config_sizes_checked(components):
    recipe = encoder_config_recipe({"hidden_size": 16, "num_attention_heads": 3}, [0])
    with pytest.raises(InvalidRecipeError) as raised:
        validate_recipe(recipe, components)
    assert raised.value.problems == [
        "model.encoders.audio.config.hidden_size: attention splits hidden_size across num_attention_heads "
        "(3), so it must be a multiple of 3, got 16"
    ]
    recipe = encoder_config_recipe({"num_hidden_layers": 0, "hidden_size": 16, "num_attention_heads": 0}, [0])
    with pytest.raises(InvalidRecipeError) as raised:
        validate_recipe(recipe, components)
    assert raised.value.problems == [
        "model.encoders.audio.config.num_hidden_layers: must be at least 1, got 0",
        "model.encoders.audio.config.num_attention_heads: must be at least 1, got 0",
    ]
    validate_recipe(encoder_config_recipe({"hidden_size": 16, "num_attention_heads": 4}, [0]), components)


def test_builtin_encoder_under_wrong_modality(empty_registry):
    # The built-in factories are plain functions; each declares its modality as an attribute.
    from camabc_plugins import encoders

    class OtherComponents(FakeComponents):
        register_encoders = None

    empty_registry.register_plugin(encoders, name="builtin-encoders")
    empty_registry.register_plugin(OtherComponents(), name="fake-components")
    recipe = valid_recipe()
    recipe.model.encoders.audio = EncoderSpec(name="bert")
    with pytest.raises(InvalidRecipeError) as raised:
        validate_recipe(recipe, empty_registry)
    assert (
        "model.encoders.audio.name: encoder 'bert' encodes text, not audio; move it under "
        "model.encoders.text"
    ) in raised.value.problems
