"""Inference with a trained model: offline timelines over a media file and online streaming.

``predict_timeline`` computes class probabilities at every speaker word end and on a regular grid,
and ``detect_moments`` picks the backchannel moments from them. ``StreamingPredictor`` computes the
same probabilities online from pushed audio, words and frames. ``run_prediction`` (in
``camabc_core.inference.pipeline``) is the whole ``camabc predict`` command, files and plot included.

The names below are imported on first access, because several of their modules import torch, which
takes seconds. ``camabc --help`` reads the defaults in ``camabc_core.inference.moments`` without it.
"""

from __future__ import annotations

import importlib
from typing import Any

# Public name -> module that defines it.
_LAZY_EXPORTS = {
    "BackchannelMoment": "camabc_core.inference.moments",
    "StreamingPredictor": "camabc_core.inference.streaming",
    "Timeline": "camabc_core.inference.timeline",
    "class_probabilities": "camabc_core.inference.timeline",
    "detect_moments": "camabc_core.inference.moments",
    "load_transcript": "camabc_core.inference.transcripts",
    "predict_timeline": "camabc_core.inference.timeline",
    "resolve_roles": "camabc_core.inference.roles",
}

__all__ = sorted(_LAZY_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _LAZY_EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(_LAZY_EXPORTS[name]), name)


def __dir__() -> list[str]:
    return sorted([*globals(), *_LAZY_EXPORTS])
