"""Plugin registry: lazy entry-point loading, broken plugins, hook validation, names and conflicts."""

from __future__ import annotations

import importlib.metadata
import logging
import sys

import pytest

from camabc_core.errors import PluginError
from camabc_core.hookspecs import hookimpl
from camabc_core.registry import KIND_HOOKS, Registry, get_registry, reset_registry

GOOD_PLUGIN = """
    from camabc_core.hookspecs import hookimpl


    class GoodEncoder:
        modality = "audio"


    @hookimpl
    def register_encoders(register):
        register("good-encoder", GoodEncoder)
"""

BROKEN_PLUGIN = """
    import camabc_missing_dependency  # not installed anywhere

    from camabc_core.hookspecs import hookimpl


    @hookimpl
    def register_encoders(register):
        register("never-registered", object)
"""

MISSPELLED_HOOK_PLUGIN = """
    from camabc_core.hookspecs import hookimpl


    @hookimpl
    def register_encoder(register):
        register("typo-encoder", dict)


    @hookimpl
    def register_fusions(register):
        register("typo-fusion", dict)
"""


def registry_errors(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        record.getMessage()
        for record in caplog.records
        if record.name == "camabc_core.registry" and record.levelno >= logging.ERROR
    ]


@pytest.fixture
def good_and_broken(fake_plugins):
    fake_plugins.add_module("good_plugin", GOOD_PLUGIN)
    fake_plugins.add_module("broken_plugin", BROKEN_PLUGIN)
    fake_plugins.add_distribution("camabc-broken", "1.2.0", {"broken": "broken_plugin"})
    fake_plugins.add_distribution("camabc-good", "0.3.0", {"good": "good_plugin"})
    return fake_plugins


def test_nothing_loads_before_first_use(good_and_broken, monkeypatch):
    calls = []
    real_entry_points = importlib.metadata.entry_points

    def counting_entry_points(**params):
        calls.append(params)
        return real_entry_points(**params)

    monkeypatch.setattr(importlib.metadata, "entry_points", counting_entry_points)
    registry = get_registry()
    assert calls == []
    assert "good_plugin" not in sys.modules

    assert registry.names("encoder") == ["good-encoder"]
    assert calls == [{"group": "camabc"}]
    assert get_registry() is registry


def test_import_error_logs_one_message(good_and_broken, caplog):
    registry = Registry()
    with caplog.at_level(logging.INFO):
        assert registry.names("encoder") == ["good-encoder"]
        registry.discover()
        assert registry.names("encoder") == ["good-encoder"]

    messages = registry_errors(caplog)
    assert len(messages) == 1
    message = messages[0]
    assert "'broken'" in message
    assert "entry point broken = broken_plugin" in message
    assert "camabc-broken 1.2.0" in message
    assert "ModuleNotFoundError: No module named 'camabc_missing_dependency'" in message
    assert "CAMABC_DISABLE_PLUGINS=broken" in message

    (failure,) = registry.failures()
    assert failure.plugin == "broken"
    assert failure.distribution == "camabc-broken"
    assert failure.version == "1.2.0"
    assert failure.reason == "ModuleNotFoundError: No module named 'camabc_missing_dependency'"


def test_strict_mode_reraises_import_error(good_and_broken, monkeypatch):
    monkeypatch.setenv("CAMABC_STRICT_PLUGINS", "1")
    with pytest.raises(ImportError, match="camabc_missing_dependency") as raised:
        Registry().names("encoder")
    assert any("camabc-broken 1.2.0" in note for note in getattr(raised.value, "__notes__", []))


@pytest.mark.skipif(sys.version_info < (3, 11), reason="exception notes need Python 3.11")
def test_strict_mode_note_does_not_suggest_strict(good_and_broken, monkeypatch):
    monkeypatch.setenv("CAMABC_STRICT_PLUGINS", "1")
    with pytest.raises(ImportError) as raised:
        Registry().names("encoder")
    (note,) = raised.value.__notes__
    assert note.endswith("; CAMABC_STRICT_PLUGINS is set, so the error is raised.")
    assert "to raise instead" not in note


def test_invalid_strict_value_rejected(good_and_broken, monkeypatch):
    monkeypatch.setenv("CAMABC_STRICT_PLUGINS", "maybe")
    with pytest.raises(PluginError, match="CAMABC_STRICT_PLUGINS='maybe' is invalid"):
        Registry().names("encoder")


@pytest.mark.parametrize("disabled", ["broken", "camabc-broken", " other , broken "])
def test_disabled_plugin_not_imported(good_and_broken, monkeypatch, caplog, disabled):
    monkeypatch.setenv("CAMABC_DISABLE_PLUGINS", disabled)
    registry = Registry()
    assert registry.names("encoder") == ["good-encoder"]
    assert registry.failures() == []
    assert registry_errors(caplog) == []
    assert [source.name for source in registry.disabled_plugins()] == ["broken"]
    assert "broken_plugin" not in sys.modules


def test_unknown_disabled_names_warned_once(good_and_broken, monkeypatch, caplog):
    monkeypatch.setenv("CAMABC_DISABLE_PLUGINS", "nosuchplugin, brokn,camabc-broken")
    registry = Registry()
    with caplog.at_level(logging.WARNING, logger="camabc_core.registry"):
        registry.discover()
        registry.discover()
    warnings = [record.getMessage() for record in caplog.records if record.levelno == logging.WARNING]
    assert warnings == [
        "CAMABC_DISABLE_PLUGINS lists names that match no installed plugin, so they disable nothing: "
        "'nosuchplugin', 'brokn' (did you mean 'broken'?). Installed plugins: broken, good "
        "(distributions: camabc-broken, camabc-good)."
    ]
    assert [source.name for source in registry.disabled_plugins()] == ["broken"]


def test_disable_hint_keeps_listed_names(good_and_broken, monkeypatch, caplog):
    monkeypatch.setenv("CAMABC_DISABLE_PLUGINS", "unrelated")
    Registry().names("encoder")
    (message,) = registry_errors(caplog)
    assert "CAMABC_DISABLE_PLUGINS=unrelated,broken" in message


def test_misspelled_hook_fails_at_discovery(fake_plugins, caplog):
    fake_plugins.add_module("good_plugin", GOOD_PLUGIN)
    fake_plugins.add_module("typo_plugin", MISSPELLED_HOOK_PLUGIN)
    fake_plugins.add_distribution("camabc-typo", "0.1.0", {"typo": "typo_plugin"})
    fake_plugins.add_distribution("camabc-good", "0.3.0", {"good": "good_plugin"})
    registry = Registry()
    registry.discover()

    (failure,) = registry.failures()
    assert failure.plugin == "typo"
    assert "unknown hook 'register_encoder'" in failure.reason
    assert "Did you mean 'register_encoders'?" in failure.reason
    (message,) = registry_errors(caplog)
    assert "plugin 'typo'" in message
    assert "register_encoder" in message
    assert "register_reference_generators. Its components are unavailable." in message
    assert ".." not in message
    # The whole plugin is rejected, its correctly spelled hook included; the others still work.
    assert registry.names("fusion") == []
    assert registry.names("encoder") == ["good-encoder"]


def test_misspelled_hook_strict_raises(fake_plugins, monkeypatch):
    fake_plugins.add_module("typo_plugin", MISSPELLED_HOOK_PLUGIN)
    fake_plugins.add_distribution("camabc-typo", "0.1.0", {"typo": "typo_plugin"})
    monkeypatch.setenv("CAMABC_STRICT_PLUGINS", "1")
    with pytest.raises(PluginError, match=r"plugin 'typo'.*unknown hook 'register_encoder'"):
        Registry().discover()


def test_misspelled_hook_by_hand_raises(empty_registry):
    class TypoPlugin:
        @hookimpl
        def register_aligner(self, register):
            register("typo", dict)

    with pytest.raises(PluginError, match=r"plugin 'typo-plugin'.*'register_aligner'.*'register_aligners'"):
        empty_registry.register_plugin(TypoPlugin(), name="typo-plugin")
    assert "typo-plugin" not in [source.name for source in empty_registry.plugins()]


def test_hook_without_marker_rejected(empty_registry):
    class UnmarkedPlugin:
        def register_encoders(self, register):
            register("unmarked", dict)

    with pytest.raises(PluginError, match="defines register_encoders without the @hookimpl decorator"):
        empty_registry.register_plugin(UnmarkedPlugin(), name="unmarked")


def test_unmarked_hook_message_has_one_full_stop(fake_plugins, caplog):
    fake_plugins.add_module("unmarked_plugin", "def register_encoders(register):\n    pass\n")
    fake_plugins.add_distribution("camabc-unmarked", "0.1.0", {"unmarked": "unmarked_plugin"})
    Registry().discover()
    (message,) = registry_errors(caplog)
    assert "(from camabc_core.hookspecs import hookimpl). Its components are unavailable." in message
    assert ".." not in message


def test_hook_with_unknown_argument_rejected(empty_registry):
    class ExtraArgumentPlugin:
        @hookimpl
        def register_encoders(self, register, device):
            register("extra", dict)

    with pytest.raises(PluginError, match=r"plugin 'extra'.*device"):
        empty_registry.register_plugin(ExtraArgumentPlugin(), name="extra")


def test_discovery_twice_and_by_hand(fake_plugins, caplog):
    fake_plugins.add_module("good_plugin", GOOD_PLUGIN)
    fake_plugins.add_distribution("camabc-good", "0.3.0", {"good": "good_plugin"})
    registry = Registry()
    registry.discover()
    registry.discover()
    module = sys.modules["good_plugin"]
    assert registry.register_plugin(module, name="good-by-hand") == "good"

    # Another object that registers the very same factory is the same component, not a conflict.
    class SameFactoryPlugin:
        @hookimpl
        def register_encoders(self, register):
            register("good-encoder", module.GoodEncoder)

    registry.register_plugin(SameFactoryPlugin(), name="same-factory")
    registry.discover()

    components = [(info.kind, info.name, info.plugin) for info in registry.components()]
    assert components == [("encoder", "good-encoder", "good")]
    assert registry.get("encoder", "good-encoder") is module.GoodEncoder
    assert registry.failures() == []
    assert registry_errors(caplog) == []


def test_by_hand_then_discovery_registers_once(fake_plugins):
    fake_plugins.add_module("good_plugin", GOOD_PLUGIN)
    fake_plugins.add_distribution("camabc-good", "0.3.0", {"good": "good_plugin"})
    import good_plugin

    registry = Registry()
    registry.register_plugin(good_plugin, name="mine")
    registry.discover()
    assert [(info.name, info.plugin) for info in registry.components()] == [("good-encoder", "mine")]
    assert registry.failures() == []


def test_same_name_from_two_plugins_conflicts(fake_plugins, caplog, monkeypatch):
    for index in (1, 2):
        fake_plugins.add_module(
            f"rival_plugin_{index}",
            f"""
            from camabc_core.hookspecs import hookimpl


            class RivalEncoder{index}:
                pass


            @hookimpl
            def register_encoders(register):
                register("shared-name", RivalEncoder{index})
                register("only-in-{index}", RivalEncoder{index})
            """,
        )
        fake_plugins.add_distribution(
            f"camabc-rival{index}", f"{index}.0", {f"rival{index}": f"rival_plugin_{index}"}
        )
    registry = Registry()

    with pytest.raises(PluginError) as raised:
        registry.get("encoder", "shared-name")
    message = str(raised.value)
    assert "encoder 'shared-name' is registered by more than one plugin" in message
    assert "'rival1' (camabc-rival1)" in message
    assert "'rival2' (camabc-rival2)" in message
    assert "disable one with CAMABC_DISABLE_PLUGINS=rival1 or CAMABC_DISABLE_PLUGINS=rival2" in message
    assert len(registry_errors(caplog)) == 1
    (conflict,) = registry.conflicts()
    assert (conflict.kind, conflict.name) == ("encoder", "shared-name")
    assert [claim.plugin for claim in conflict.claims] == ["rival1", "rival2"]
    assert conflict.describe() == message
    # Names without a conflict keep working; the listing shows both claims.
    assert registry.get("encoder", "only-in-1").__name__ == "RivalEncoder1"
    listed = [(info.name, info.plugin) for info in registry.components()]
    assert listed == [
        ("only-in-1", "rival1"),
        ("only-in-2", "rival2"),
        ("shared-name", "rival1"),
        ("shared-name", "rival2"),
    ]

    monkeypatch.setenv("CAMABC_STRICT_PLUGINS", "1")
    with pytest.raises(PluginError, match="more than one plugin"):
        Registry().names("encoder")


def test_conflict_with_builtin_names_third_party(fake_plugins, caplog):
    fake_plugins.add_module(
        "builtin_encoders",
        """
        from camabc_core.hookspecs import hookimpl


        @hookimpl
        def register_encoders(register):
            register("hubert", dict)
            register("bert", list)
        """,
    )
    fake_plugins.add_module(
        "third_party_hubert",
        """
        from camabc_core.hookspecs import hookimpl


        @hookimpl
        def register_encoders(register):
            register("hubert", set)
        """,
    )
    fake_plugins.add_distribution("camabc", "0.1.0", {"encoders": "builtin_encoders"})
    fake_plugins.add_distribution("dupname", "0.3.1", {"dupname": "third_party_hubert"})
    registry = Registry()

    with pytest.raises(PluginError) as raised:
        registry.get("encoder", "hubert")
    assert str(raised.value) == (
        "encoder 'hubert' is registered by more than one plugin: 'encoders' (camabc) and 'dupname' "
        "(dupname). Disable the third-party plugin with CAMABC_DISABLE_PLUGINS=dupname, or uninstall "
        "dupname. Keep the built-in plugin 'encoders' enabled, because disabling it also removes every "
        "other component it provides."
    )
    assert registry.get("encoder", "bert") is list
    assert registry_errors(caplog) == [str(raised.value)]


def test_conflict_between_hand_registered_plugins(empty_registry):
    class FirstRival:
        @hookimpl
        def register_fusions(self, register):
            register("same", dict)

    class SecondRival:
        @hookimpl
        def register_fusions(self, register):
            register("same", list)

    empty_registry.register_plugin(FirstRival(), name="rival1")
    empty_registry.register_plugin(SecondRival(), name="rival2")
    with pytest.raises(PluginError) as raised:
        empty_registry.get("fusion", "same")
    assert str(raised.value) == (
        "fusion 'same' is registered by more than one plugin: 'rival1' (registered by hand) and 'rival2' "
        "(registered by hand). Unregister one of them with Registry.unregister_plugin."
    )


def test_unknown_name_lists_available_and_closest(empty_registry):
    class EncodersPlugin:
        @hookimpl
        def register_encoders(self, register):
            for name in ("hubert", "bert", "videomae"):
                register(name, dict)

    empty_registry.register_plugin(EncodersPlugin(), name="encoders")
    with pytest.raises(PluginError) as raised:
        empty_registry.get("encoder", "hubbert")
    assert str(raised.value) == (
        "unknown encoder 'hubbert'. Did you mean 'hubert'? Available encoders: bert, hubert, videomae."
    )
    with pytest.raises(PluginError, match="Did you mean 'encoder'"):
        empty_registry.names("encoders")


def test_unknown_name_mentions_failed_plugins(good_and_broken):
    with pytest.raises(PluginError, match=r"Plugins that failed to load \(broken\) may provide it"):
        Registry().get("encoder", "never-registered")


@pytest.mark.parametrize(
    ("name", "factory", "expected"),
    [
        ("not callable", dict, "the encoder name 'not callable', which is invalid"),
        ("", dict, "the encoder name '', which is invalid"),
        ("fine-name", 42, "encoder 'fine-name' with a int factory, which is not callable"),
    ],
)
def test_bad_registration_names_plugin(fake_plugins, caplog, name, factory, expected):
    fake_plugins.add_module("good_plugin", GOOD_PLUGIN)
    fake_plugins.add_distribution("camabc-good", "0.3.0", {"good": "good_plugin"})
    registry = Registry()

    class BadPlugin:
        @hookimpl
        def register_encoders(self, register):
            register(name, factory)

    registry.register_plugin(BadPlugin(), name="bad-plugin")
    assert registry.names("encoder") == ["good-encoder"]
    (failure,) = registry.failures()
    assert failure.plugin == "bad-plugin"
    assert failure.reason == f"PluginError: plugin 'bad-plugin' registered {expected}" + (
        "; names are non-empty strings of letters, digits, '_', '-' and '.'"
        if "invalid" in expected
        else "; pass a class or function that builds the encoder"
    )
    (message,) = registry_errors(caplog)
    assert "failed in register_encoders" in message


def test_hook_that_raises_is_recorded(empty_registry):
    class RaisingPlugin:
        @hookimpl
        def register_datasets(self, register):
            register("half-registered", dict)
            raise RuntimeError("corpus index missing")

    empty_registry.register_plugin(RaisingPlugin(), name="raising")
    assert empty_registry.names("dataset") == []
    (failure,) = empty_registry.failures()
    assert failure.reason == "RuntimeError: corpus index missing"


def test_entry_point_name_taken(fake_plugins):
    fake_plugins.add_module("good_plugin", GOOD_PLUGIN)
    fake_plugins.add_module("other_plugin", GOOD_PLUGIN.replace("good-encoder", "other-encoder"))
    fake_plugins.add_distribution("camabc-good", "0.3.0", {"encoders": "good_plugin"})
    fake_plugins.add_distribution("camabc-other", "2.0", {"encoders": "other_plugin"})
    registry = Registry()
    assert registry.names("encoder") == ["good-encoder"]
    (failure,) = registry.failures()
    assert failure.distribution == "camabc-other"
    assert "already used by plugin 'encoders'" in failure.reason
    assert "distribution camabc-good 0.3.0" in failure.reason


def test_entry_point_without_distribution(fake_plugins, monkeypatch):
    fake_plugins.add_module("good_plugin", GOOD_PLUGIN)
    entry_point = importlib.metadata.EntryPoint(name="loose", value="good_plugin", group="camabc")
    monkeypatch.setattr(importlib.metadata, "entry_points", lambda **_: [entry_point])
    (info,) = Registry().components()
    assert (info.name, info.plugin, info.distribution, info.version) == ("good-encoder", "loose", None, None)


def test_create_checks_options_and_result(empty_registry):
    from camabc_core.interfaces import DatasetReader

    class TinyReader(DatasetReader):
        def __init__(self, skip_malformed: bool = False) -> None:
            self.skip_malformed = skip_malformed

        def load(self, root):
            return []

    class ReadersPlugin:
        @hookimpl
        def register_datasets(self, register):
            register("tiny", TinyReader)
            register("wrong-type", lambda: "not a reader")

    empty_registry.register_plugin(ReadersPlugin(), name="readers")
    reader = empty_registry.create("dataset", "tiny", skip_malformed=True)
    assert isinstance(reader, TinyReader)
    assert reader.skip_malformed is True
    with pytest.raises(PluginError, match=r"dataset 'tiny'.*\['root'\].*Accepted options: skip_malformed"):
        empty_registry.create("dataset", "tiny", root="/data")
    with pytest.raises(PluginError, match="returned a str, expected an instance of DatasetReader"):
        empty_registry.create("dataset", "wrong-type")


def test_unregister_removes_components(empty_registry):
    class OneFusion:
        @hookimpl
        def register_fusions(self, register):
            register("one", dict)

    empty_registry.register_plugin(OneFusion(), name="one-fusion")
    assert empty_registry.names("fusion") == ["one"]
    empty_registry.unregister_plugin("one-fusion")
    assert empty_registry.names("fusion") == []
    with pytest.raises(PluginError, match="no plugin named 'one-fusion'"):
        empty_registry.unregister_plugin("one-fusion")


def test_every_kind_has_a_hookspec():
    from camabc_core import hookspecs

    assert sorted(KIND_HOOKS.values()) == sorted(
        name for name in dir(hookspecs) if hasattr(getattr(hookspecs, name), "camabc_spec")
    )


def test_reset_registry_forgets_plugins(empty_registry):
    first = get_registry()
    reset_registry()
    assert get_registry() is not first
