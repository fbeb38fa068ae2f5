"""Built-in encoders: ``hubert`` (audio), ``bert`` (text, any BERT-family checkpoint), ``videomae`` (video).

Every factory has the signature ``from_spec(spec: EncoderSpec, window: WindowSection) -> Encoder``;
the model builds encoders with ``registry.create("encoder", name, spec=spec, window=window)``.
The encoder modules import transformers' model code, which takes seconds, so they are imported only
when an encoder is built or one of the classes below is accessed, not when the plugin is discovered.
"""

from __future__ import annotations

import importlib
from typing import Any

from camabc_core.hookspecs import Register, hookimpl
from camabc_core.interfaces import Encoder
from camabc_core.recipe import EncoderSpec, WindowSection

# Public name -> module that defines it.
_LAZY_EXPORTS = {
    "BertEncoder": "camabc_plugins.encoders.bert",
    "HubertEncoder": "camabc_plugins.encoders.hubert",
    "VideoMAEEncoder": "camabc_plugins.encoders.videomae",
    "validate_video_frames": "camabc_plugins.encoders.videomae",
}

__all__ = sorted(_LAZY_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _LAZY_EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(_LAZY_EXPORTS[name]), name)


def build_hubert(spec: EncoderSpec, window: WindowSection) -> Encoder:
    """Build the ``hubert`` encoder (see ``HubertEncoder.from_spec``)."""
    return __getattr__("HubertEncoder").from_spec(spec, window)


def build_bert(spec: EncoderSpec, window: WindowSection) -> Encoder:
    """Build the ``bert`` encoder (see ``BertEncoder.from_spec``)."""
    return __getattr__("BertEncoder").from_spec(spec, window)


def build_videomae(spec: EncoderSpec, window: WindowSection) -> Encoder:
    """Build the ``videomae`` encoder (see ``VideoMAEEncoder.from_spec``)."""
    return __getattr__("VideoMAEEncoder").from_spec(spec, window)


# Recipe validation reads these to catch an encoder placed under the wrong modality before building it.
build_hubert.modality = "audio"
build_bert.modality = "text"
build_videomae.modality = "video"


@hookimpl
def register_encoders(register: Register) -> None:
    register("hubert", build_hubert)
    register("bert", build_bert)
    register("videomae", build_videomae)
