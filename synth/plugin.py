"""Entry point ``synth = synth.plugin``: registers the built-in animators and reference generators.

Factories import their modules when called, so listing plugins never imports diffusers or moviepy.
"""

from __future__ import annotations

from typing import Any

from camabc_core.hookspecs import Register, hookimpl


def _cartoon_animator(**options: Any) -> Any:
    from synth.cartoon_animator import CartoonAnimator

    return CartoonAnimator(**options)


def _echomimic_animator(**options: Any) -> Any:
    from synth.echomimic import EchoMimicAnimator

    return EchoMimicAnimator(**options)


def _cartoon_reference(**options: Any) -> Any:
    from synth.cartoon_reference import CartoonReferenceGenerator

    return CartoonReferenceGenerator(**options)


def _flux_reference(**options: Any) -> Any:
    from synth.flux import FluxReferenceGenerator

    return FluxReferenceGenerator(**options)


@hookimpl
def register_animators(register: Register) -> None:
    register("cartoon", _cartoon_animator)
    register("echomimic", _echomimic_animator)


@hookimpl
def register_reference_generators(register: Register) -> None:
    register("cartoon", _cartoon_reference)
    register("flux", _flux_reference)
