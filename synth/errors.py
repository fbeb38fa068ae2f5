"""Errors of the synth pipeline; the command line prints them without a traceback."""

from camabc_core.errors import CamabcError


class SynthError(CamabcError):
    """An option, input or job of the synth pipeline is invalid; the message names what to change."""


class AnimatorUnavailableError(SynthError):
    """An animator's external program or environment is missing; the message names the fix."""
