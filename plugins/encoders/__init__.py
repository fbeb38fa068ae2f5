"""Built-in encoders: ``hubert`` (audio), ``bert`` (text, any BERT-family checkpoint), ``videomae`` (video).

Every factory has the signature ``from_spec(spec: EncoderSpec, window: WindowSection) -> Encoder``;
the model builds encoders with ``registry.create("encoder", name, spec=spec, window=window)``.
"""

from __future__ import annotations

from camabc_plugins.encoders.bert import BertEncoder
from camabc_plugins.encoders.hubert import HubertEncoder
from camabc_plugins.encoders.videomae import VideoMAEEncoder, validate_video_frames

from camabc_core.hookspecs import Register, hookimpl

__all__ = ["BertEncoder", "HubertEncoder", "VideoMAEEncoder", "validate_video_frames"]


@hookimpl
def register_encoders(register: Register) -> None:
    register("hubert", HubertEncoder.from_spec)
    register("bert", BertEncoder.from_spec)
    register("videomae", VideoMAEEncoder.from_spec)
