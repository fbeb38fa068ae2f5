"""Hook specifications for camabc plugins.

A plugin is a module (or object) exposed through the ``camabc`` entry-point group that implements
one or more of these hooks. Each hook receives a ``register(name, factory)`` callback; ``factory``
is a callable that builds the component from keyword options taken from the recipe.
Hooks are called once, lazily, the first time a command needs components of that kind.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pluggy

PROJECT_NAME = "camabc"

hookspec = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)

Register = Callable[[str, Callable[..., Any]], None]


@hookspec
def register_encoders(register: Register) -> None:
    """Register encoder factories; each factory returns a :class:`camabc_core.interfaces.Encoder`."""


@hookspec
def register_aligners(register: Register) -> None:
    """Register aligner factories; each factory returns a :class:`camabc_core.interfaces.Aligner`."""


@hookspec
def register_fusions(register: Register) -> None:
    """Register fusion factories; each factory returns a :class:`camabc_core.interfaces.Fusion`."""


@hookspec
def register_datasets(register: Register) -> None:
    """Register dataset readers; each factory returns a :class:`camabc_core.interfaces.DatasetReader`."""


@hookspec
def register_animators(register: Register) -> None:
    """Register synth animators; each factory returns a :class:`camabc_core.interfaces.Animator`."""


@hookspec
def register_reference_generators(register: Register) -> None:
    """Register synth reference-image generators; each returns a
    :class:`camabc_core.interfaces.ReferenceGenerator`."""
