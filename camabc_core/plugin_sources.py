"""Plugin sources: entry points of the ``camabc`` group and the environment switches.

``CAMABC_DISABLE_PLUGINS`` is a comma-separated list of entry-point names or distribution names
to skip. ``CAMABC_STRICT_PLUGINS=1`` makes a broken plugin raise instead of being logged and skipped.
Both are read each time plugins are discovered, never at import time.
"""

from __future__ import annotations

import importlib.metadata
import os

import attrs

from camabc_core.errors import PluginError

ENTRY_POINT_GROUP = "camabc"
#: The distribution whose entry points are the built-in plugins (encoders, aligners, ...).
BUILTIN_DISTRIBUTION = "camabc"
STRICT_ENV = "CAMABC_STRICT_PLUGINS"
DISABLE_ENV = "CAMABC_DISABLE_PLUGINS"

_TRUE_VALUES = {"1", "true", "yes", "on"}
_FALSE_VALUES = {"", "0", "false", "no", "off"}


@attrs.frozen
class PluginSource:
    """A plugin known to the registry: its name and the package that provides it.

    ``distribution`` and ``version`` are None for a plugin registered by hand; ``entry_point`` is the
    ``name = module`` line of the entry point, or None.
    """

    name: str
    distribution: str | None = None
    version: str | None = None
    entry_point: str | None = None

    def describe(self) -> str:
        """Return e.g. "plugin 'encoders' (entry point encoders = camabc_plugins.encoders, camabc 0.1.0)"."""
        details = []
        if self.entry_point is not None:
            details.append(f"entry point {self.entry_point}")
        if self.distribution is not None:
            details.append(f"distribution {self.distribution} {self.version or '(unknown version)'}")
        if not details:
            details.append("registered by hand")
        return f"plugin {self.name!r} ({', '.join(details)})"


@attrs.frozen
class PluginFailure:
    """A plugin that could not be loaded or whose hook raised; ``reason`` is "ExceptionType: message"."""

    plugin: str
    distribution: str | None
    version: str | None
    entry_point: str | None
    reason: str


def camabc_entry_points() -> list[importlib.metadata.EntryPoint]:
    """Return the entry points of the ``camabc`` group of every installed distribution.

    ``importlib.metadata.entry_points`` is looked up at call time so tests can replace it (or
    ``importlib.metadata.distributions``) with fakes.
    """
    return list(importlib.metadata.entry_points(group=ENTRY_POINT_GROUP))


def source_of_entry_point(entry_point: importlib.metadata.EntryPoint) -> PluginSource:
    """Describe an entry point; the distribution is unknown when the entry point was built by hand."""
    distribution = getattr(entry_point, "dist", None)
    name = version = None
    if distribution is not None:
        name = distribution.metadata["Name"]
        version = distribution.version
    return PluginSource(
        name=entry_point.name,
        distribution=name,
        version=version,
        entry_point=f"{entry_point.name} = {entry_point.value}",
    )


def strict_plugins() -> bool:
    """Return True when ``CAMABC_STRICT_PLUGINS`` requests that broken plugins raise."""
    value = os.environ.get(STRICT_ENV, "").strip().lower()
    if value in _TRUE_VALUES:
        return True
    if value in _FALSE_VALUES:
        return False
    raise PluginError(f"{STRICT_ENV}={value!r} is invalid; set it to 1 (raise) or 0 (log and skip)")


def disabled_plugin_names() -> list[str]:
    """Return the entry-point or distribution names listed in ``CAMABC_DISABLE_PLUGINS``."""
    value = os.environ.get(DISABLE_ENV, "")
    return [name.strip() for name in value.split(",") if name.strip()]


def disable_hint(plugin_name: str) -> str:
    """Return the ``CAMABC_DISABLE_PLUGINS=...`` setting that adds ``plugin_name`` to the current list."""
    names = disabled_plugin_names()
    if plugin_name not in names:
        names.append(plugin_name)
    return f"{DISABLE_ENV}={','.join(names)}"


def unknown_disabled_names(sources: list[PluginSource]) -> list[str]:
    """Return the names in ``CAMABC_DISABLE_PLUGINS`` that match no entry-point or distribution name."""
    known = {source.name for source in sources}
    known.update(source.distribution for source in sources if source.distribution is not None)
    return [name for name in disabled_plugin_names() if name not in known]
