"""Plugin registry: loads plugins from the ``camabc`` entry-point group and indexes their components.

Importing this module loads nothing. The first call that needs a component loads the entry points one
at a time. A plugin that fails to import, implements an unknown hook or registers an invalid object is
logged once, recorded in ``Registry.failures()`` and skipped, so the other plugins keep working
(``CAMABC_STRICT_PLUGINS=1`` raises instead). Each kind's hook is called the first time a component of
that kind is needed, and again after the set of plugins changes.

    registry = get_registry()
    encoder = registry.create("encoder", "hubert", spec=spec)
"""

from __future__ import annotations

import importlib.metadata
import inspect
import logging
import re
from collections.abc import Callable
from typing import Any

import attrs
import pluggy

from camabc_core import hookspecs
from camabc_core.errors import PluginError
from camabc_core.plugin_sources import (
    BUILTIN_DISTRIBUTION,
    DISABLE_ENV,
    STRICT_ENV,
    PluginFailure,
    PluginSource,
    camabc_entry_points,
    disable_hint,
    disabled_plugin_names,
    source_of_entry_point,
    strict_plugins,
    unknown_disabled_names,
)
from camabc_core.suggestions import closest_match, did_you_mean

logger = logging.getLogger(__name__)

#: Component kind -> the hook that registers components of that kind.
KIND_HOOKS: dict[str, str] = {
    "encoder": "register_encoders",
    "aligner": "register_aligners",
    "fusion": "register_fusions",
    "dataset": "register_datasets",
    "animator": "register_animators",
    "reference_generator": "register_reference_generators",
}
KINDS: tuple[str, ...] = tuple(KIND_HOOKS)

# Component names appear in recipes and on the command line, so they avoid spaces and separators.
_COMPONENT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]*")


@attrs.frozen
class ComponentInfo:
    """One registered component: its kind and name, its factory and the plugin that registered it."""

    kind: str
    name: str
    factory: Callable[..., Any] = attrs.field(eq=False, repr=False)
    plugin: str
    distribution: str | None
    version: str | None


@attrs.frozen
class ComponentConflict:
    """A component name that two or more plugins register for one kind; ``claims`` are in load order."""

    kind: str
    name: str
    claims: tuple[ComponentInfo, ...]

    def describe(self) -> str:
        """Return the message that names every claiming plugin and which one to disable."""
        return describe_conflict(self.kind, self.name, list(self.claims))


@attrs.define
class _KindTable:
    """Components of one kind by name; ``conflicts`` maps a name to every component claiming it."""

    components: dict[str, ComponentInfo] = attrs.field(factory=dict)
    conflicts: dict[str, list[ComponentInfo]] = attrs.field(factory=dict)


def describe_unknown_component(kind: str, name: str, available: list[str]) -> str:
    """Build the message for a component name no plugin registered: available names, closest match."""
    listing = ", ".join(sorted(available)) or "none (is the plugin that provides them installed?)"
    return f"unknown {kind} {name!r}.{did_you_mean(name, available)} Available {kind}s: {listing}."


def describe_conflict(kind: str, name: str, claims: list[ComponentInfo]) -> str:
    """Build the message for a component name registered by two or more plugins, with the fix."""
    owners = " and ".join(
        f"{claim.plugin!r} ({claim.distribution or 'registered by hand'})" for claim in claims
    )
    return f"{kind} {name!r} is registered by more than one plugin: {owners}. {_conflict_fix(claims)}"


def _conflict_fix(claims: list[ComponentInfo]) -> str:
    """Name the plugin to disable: a third-party one rather than a built-in one.

    Disabling a plugin removes every component it provides, so disabling the built-in ``encoders``
    plugin to resolve a clash on ``hubert`` would also remove ``bert`` and ``videomae``.
    """
    installed = [claim for claim in claims if claim.distribution is not None]
    builtin = [claim for claim in installed if claim.distribution == BUILTIN_DISTRIBUTION]
    third_party = [claim for claim in installed if claim.distribution != BUILTIN_DISTRIBUTION]
    if not installed:
        return "Unregister one of them with Registry.unregister_plugin."
    if builtin and third_party:
        hints = " or ".join(disable_hint(claim.plugin) for claim in third_party)
        distributions = " or ".join(sorted({str(claim.distribution) for claim in third_party}))
        return (
            f"Disable the third-party plugin with {hints}, or uninstall {distributions}. Keep the built-in "
            f"plugin {builtin[0].plugin!r} enabled, because disabling it also removes every other "
            "component it provides."
        )
    hints = " or ".join(disable_hint(claim.plugin) for claim in installed)
    return (
        f"Uninstall one of them, or disable one with {hints}; disabling a plugin removes every "
        "component it provides."
    )


class Registry:
    """pluggy plugin manager over the ``camabc`` entry-point group, with components indexed by kind."""

    def __init__(self) -> None:
        self._manager = pluggy.PluginManager(hookspecs.PROJECT_NAME)
        self._manager.add_hookspecs(hookspecs)
        self._sources: dict[str, PluginSource] = {}
        self._failures: list[PluginFailure] = []
        self._failure_keys: set[tuple[str, str]] = set()
        self._disabled: list[PluginSource] = []
        self._seen_entry_points: set[tuple[str, str]] = set()
        self._warned_disabled_names: set[str] = set()
        self._discovered = False
        self._tables: dict[str, _KindTable] = {}

    # -- discovery -----------------------------------------------------------------------------

    def discover(self) -> None:
        """Load every entry point of the ``camabc`` group that is not loaded yet; calling it again is safe."""
        strict = strict_plugins()
        disabled = set(disabled_plugin_names())
        entry_points = camabc_entry_points()
        self._warn_unknown_disabled_names([source_of_entry_point(point) for point in entry_points])
        for entry_point in entry_points:
            key = (entry_point.name, entry_point.value)
            if key in self._seen_entry_points:
                continue
            self._seen_entry_points.add(key)
            self._load_entry_point(entry_point, disabled, strict)
        self._discovered = True
        self._tables.clear()

    def _warn_unknown_disabled_names(self, sources: list[PluginSource]) -> None:
        """Log once per name when ``CAMABC_DISABLE_PLUGINS`` lists a plugin that is not installed."""
        unknown = [
            name for name in unknown_disabled_names(sources) if name not in self._warned_disabled_names
        ]
        if not unknown:
            return
        self._warned_disabled_names.update(unknown)
        plugin_names = sorted({source.name for source in sources})
        distributions = sorted({source.distribution for source in sources if source.distribution})
        listed = []
        for name in unknown:
            match = closest_match(name, [*plugin_names, *distributions])
            listed.append(f"{name!r} (did you mean {match!r}?)" if match else repr(name))
        logger.warning(
            "%s lists names that match no installed plugin, so they disable nothing: %s. "
            "Installed plugins: %s (distributions: %s).",
            DISABLE_ENV,
            ", ".join(listed),
            ", ".join(plugin_names) or "none",
            ", ".join(distributions) or "none",
        )

    def _load_entry_point(
        self, entry_point: importlib.metadata.EntryPoint, disabled: set[str], strict: bool
    ) -> None:
        source = source_of_entry_point(entry_point)
        if source.name in disabled or source.distribution in disabled:
            logger.info("Skipping %s: disabled by %s.", source.describe(), DISABLE_ENV)
            self._disabled.append(source)
            return

        if self._manager.has_plugin(source.name):
            owner = self._sources.get(source.name, PluginSource(source.name))
            error = PluginError(
                f"the plugin name {source.name!r} is already used by {owner.describe()}; "
                "give the entry point a name of its own, e.g. the distribution name"
            )
            self._record_failure(source, "to load", error, strict)
            if strict:
                raise error
            return

        try:
            plugin = entry_point.load()
        except Exception as error:
            # Any exception can escape a plugin's import; it must not take the other plugins down.
            self._record_failure(source, "to load", error, strict)
            if strict:
                raise
            return
        self._add_plugin(plugin, source, strict)

    def _add_plugin(self, plugin: object, source: PluginSource, strict: bool) -> None:
        if self._manager.is_registered(plugin):
            logger.debug("%s is already registered; not registering it again.", source.describe())
            return
        try:
            self._register_validated(plugin, source.name)
        except PluginError as error:
            self._record_failure(source, "to load", error, strict)
            if strict:
                raise
            return
        self._sources[source.name] = source

    def register_plugin(self, plugin: object, name: str | None = None) -> str:
        """Register a plugin object (module, class or instance) by hand and return its name.

        A plugin object that is already registered, under any name, is left as it is. Invalid hooks
        raise PluginError at once; nothing is recorded as a failure.
        """
        if self._manager.is_registered(plugin):
            return self._manager.get_name(plugin) or ""
        plugin_name = name or self._manager.get_canonical_name(plugin)
        if self._manager.has_plugin(plugin_name):
            raise PluginError(
                f"a plugin named {plugin_name!r} is already registered; "
                "pass another name to register_plugin"
            )
        self._register_validated(plugin, plugin_name)
        self._sources[plugin_name] = PluginSource(plugin_name)
        self._tables.clear()
        return plugin_name

    def unregister_plugin(self, name: str) -> None:
        """Remove a registered plugin and its components (tests register and remove fake plugins)."""
        if self._manager.unregister(name=name) is None:
            raise PluginError(f"no plugin named {name!r} is registered")
        self._sources.pop(name, None)
        self._tables.clear()

    def _register_validated(self, plugin: object, name: str) -> None:
        """Register ``plugin`` with pluggy and reject unknown or unmarked hooks, leaving it unregistered."""
        try:
            self._manager.register(plugin, name=name)
        except (pluggy.PluginValidationError, ValueError) as error:
            # pluggy's message spans several lines; the failure listing shows one line per plugin.
            details = "; ".join(line.strip() for line in str(error).splitlines() if line.strip())
            raise PluginError(f"plugin {name!r} is invalid: {details}") from error

        problems = self._unknown_hook_problems(plugin)
        problems.extend(self._unmarked_hook_problems(plugin))
        if problems:
            self._manager.unregister(plugin)
            raise PluginError(f"plugin {name!r}: " + " ".join(problems))

    def _unknown_hook_problems(self, plugin: object) -> list[str]:
        # check_pending raises for the first hook implementation that no hookspec matches.
        try:
            self._manager.check_pending()
        except pluggy.PluginValidationError:
            pass
        else:
            return []
        problems = []
        for hook_caller in self._manager.get_hookcallers(plugin) or []:
            if hook_caller.has_spec():
                continue
            problems.append(
                f"implements unknown hook {hook_caller.name!r}."
                f"{did_you_mean(hook_caller.name, KIND_HOOKS.values())}"
            )
        if problems:
            problems.append(f"Known hooks: {', '.join(KIND_HOOKS.values())}.")
        return problems

    def _unmarked_hook_problems(self, plugin: object) -> list[str]:
        # pluggy ignores functions without the @hookimpl marker, so a forgotten decorator would
        # silently register nothing.
        problems = []
        for hook_name in KIND_HOOKS.values():
            function = getattr(plugin, hook_name, None)
            if callable(function) and self._manager.parse_hookimpl_opts(plugin, hook_name) is None:
                problems.append(
                    f"defines {hook_name} without the @hookimpl decorator "
                    "(from camabc_core.hookspecs import hookimpl)."
                )
        return problems

    def _record_failure(self, source: PluginSource, stage: str, error: BaseException, strict: bool) -> None:
        """Record and log one failure per plugin and stage; in strict mode the caller raises instead.

        ``stage`` completes "failed ...": "to load" or "in register_encoders".
        """
        reason = f"{type(error).__name__}: {error}"
        # Messages such as the hook problems already end with a full stop.
        sentence = reason if reason.endswith((".", "!", "?")) else f"{reason}."
        message = (
            f"{source.describe()} failed {stage}: {sentence} Its components are unavailable. "
            f"Fix or uninstall it, or skip it with {disable_hint(source.name)}"
        )
        if strict:
            if hasattr(error, "add_note"):
                error.add_note(f"{message}; {STRICT_ENV} is set, so the error is raised.")
            return
        message += f"; set {STRICT_ENV}=1 to raise instead."
        key = (source.name, stage)
        if key in self._failure_keys:
            return
        self._failure_keys.add(key)
        self._failures.append(
            PluginFailure(
                plugin=source.name,
                distribution=source.distribution,
                version=source.version,
                entry_point=source.entry_point,
                reason=reason,
            )
        )
        logger.error(message)

    # -- components ----------------------------------------------------------------------------

    def _table(self, kind: str) -> _KindTable:
        if kind not in KIND_HOOKS:
            raise PluginError(
                f"unknown component kind {kind!r}.{did_you_mean(kind, KINDS)} Kinds: {', '.join(KINDS)}."
            )
        if not self._discovered:
            self.discover()
        table = self._tables.get(kind)
        if table is None:
            table = self._collect(kind)
            self._tables[kind] = table
        return table

    def _collect(self, kind: str) -> _KindTable:
        """Call every plugin's hook for ``kind`` one plugin at a time, so each name has a known owner."""
        hook_name = KIND_HOOKS[kind]
        strict = strict_plugins()
        table = _KindTable()
        for hook_impl in getattr(self._manager.hook, hook_name).get_hookimpls():
            source = self._sources.get(hook_impl.plugin_name, PluginSource(hook_impl.plugin_name))
            try:
                registered = self._call_register_hook(hook_impl, kind, source)
            except Exception as error:
                self._record_failure(source, f"in {hook_name}", error, strict)
                if strict:
                    raise
                continue
            for name, factory in registered:
                self._add_component(table, kind, name, factory, source, strict)
        return table

    def _call_register_hook(
        self, hook_impl: pluggy.HookImpl, kind: str, source: PluginSource
    ) -> list[tuple[str, Callable[..., Any]]]:
        registered: dict[str, Callable[..., Any]] = {}

        def register(name: str, factory: Callable[..., Any]) -> None:
            if not isinstance(name, str) or _COMPONENT_NAME.fullmatch(name) is None:
                raise PluginError(
                    f"plugin {source.name!r} registered the {kind} name {name!r}, which is invalid; "
                    "names are non-empty strings of letters, digits, '_', '-' and '.'"
                )
            if not callable(factory):
                raise PluginError(
                    f"plugin {source.name!r} registered {kind} {name!r} with a {type(factory).__name__} "
                    f"factory, which is not callable; pass a class or function that builds the {kind}"
                )
            if name in registered and registered[name] != factory:
                raise PluginError(
                    f"plugin {source.name!r} registered {kind} {name!r} twice with different factories"
                )
            registered[name] = factory

        if hook_impl.hookwrapper or hook_impl.wrapper:
            raise PluginError(
                f"plugin {source.name!r} implements {KIND_HOOKS[kind]} as a wrapper; use a plain hookimpl"
            )
        arguments = {"register": register}
        result = hook_impl.function(*(arguments[argument] for argument in hook_impl.argnames))
        if result is not None:
            raise PluginError(
                f"plugin {source.name!r}: {KIND_HOOKS[kind]} returned a value; "
                "call register(name, factory) instead"
            )
        return list(registered.items())

    def _add_component(
        self,
        table: _KindTable,
        kind: str,
        name: str,
        factory: Callable[..., Any],
        source: PluginSource,
        strict: bool,
    ) -> None:
        info = ComponentInfo(
            kind=kind,
            name=name,
            factory=factory,
            plugin=source.name,
            distribution=source.distribution,
            version=source.version,
        )
        existing = table.components.get(name)
        if existing is None:
            table.components[name] = info
            return
        # The same factory reached through two plugin objects (a module registered by hand as well as
        # through its entry point) is one component, not a conflict.
        if existing.factory == factory:
            return
        claims = table.conflicts.setdefault(name, [existing])
        claims.append(info)
        message = describe_conflict(kind, name, claims)
        if strict:
            raise PluginError(message)
        logger.error(message)

    def get(self, kind: str, name: str) -> Callable[..., Any]:
        """Return the factory registered as ``name`` for ``kind``; PluginError lists the known names."""
        return self.info(kind, name).factory

    def info(self, kind: str, name: str) -> ComponentInfo:
        """Return the registration of one component; raises like ``get``."""
        table = self._table(kind)
        if name in table.conflicts:
            raise PluginError(describe_conflict(kind, name, table.conflicts[name]))
        info = table.components.get(name)
        if info is None:
            message = describe_unknown_component(kind, name, list(table.components))
            if self._failures:
                failed = ", ".join(sorted({failure.plugin for failure in self._failures}))
                message += f" Plugins that failed to load ({failed}) may provide it; run `camabc plugins`."
            raise PluginError(message)
        return info

    def create(self, kind: str, name: str, **options: Any) -> Any:
        """Build a component with ``factory(**options)`` and check it implements the kind's interface."""
        info = self.info(kind, name)
        _check_options(info, options)
        component = info.factory(**options)

        # Imported here because the interfaces import torch, which listing plugins does not need.
        from camabc_core.interfaces import COMPONENT_KINDS

        expected = COMPONENT_KINDS[kind]
        if not isinstance(component, expected):
            raise PluginError(
                f"{kind} {name!r} from plugin {info.plugin!r}: the factory returned a "
                f"{type(component).__name__}, expected an instance of {expected.__name__}"
            )
        return component

    def names(self, kind: str) -> list[str]:
        """Return the sorted component names of one kind."""
        return sorted(self._table(kind).components)

    def conflicts(self) -> list[ComponentConflict]:
        """Return every component name that two or more plugins register, for every kind."""
        return [
            ComponentConflict(kind=kind, name=name, claims=tuple(claims))
            for kind in KINDS
            for name, claims in sorted(self._table(kind).conflicts.items())
        ]

    def components(self) -> list[ComponentInfo]:
        """Return every component of every kind, conflicting registrations included."""
        listing = []
        for kind in KINDS:
            table = self._table(kind)
            for name in sorted(table.components):
                listing.extend(table.conflicts.get(name, [table.components[name]]))
        return listing

    def failures(self) -> list[PluginFailure]:
        """Return the plugins that failed to load or to register, with the reason.

        A failure inside a hook shows up once components of that kind have been requested, which
        ``components()`` does for every kind.
        """
        if not self._discovered:
            self.discover()
        return list(self._failures)

    def disabled_plugins(self) -> list[PluginSource]:
        """Return the entry points skipped because ``CAMABC_DISABLE_PLUGINS`` names them."""
        if not self._discovered:
            self.discover()
        return list(self._disabled)

    def plugins(self) -> list[PluginSource]:
        """Return the registered plugins in registration order."""
        if not self._discovered:
            self.discover()
        return list(self._sources.values())


def _check_options(info: ComponentInfo, options: dict[str, Any]) -> None:
    """Reject options the factory does not accept, naming them and the accepted ones."""
    try:
        signature = inspect.signature(info.factory)
    except (TypeError, ValueError):
        return  # Some callables (C extensions) have no signature; the call itself will complain.
    try:
        signature.bind(**options)
    except TypeError as error:
        accepted = ", ".join(signature.parameters) or "none"
        raise PluginError(
            f"{info.kind} {info.name!r} from plugin {info.plugin!r} cannot be built with options "
            f"{sorted(options)}: {error}. Accepted options: {accepted}."
        ) from error


_registry: Registry | None = None


def get_registry() -> Registry:
    """Return the process-wide registry, created on first use (plugins load when first needed)."""
    global _registry
    if _registry is None:
        _registry = Registry()
    return _registry


def reset_registry() -> None:
    """Forget the process-wide registry so the next ``get_registry`` discovers plugins afresh."""
    global _registry
    _registry = None
