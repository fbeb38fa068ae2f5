"""Example plugin: registers the ``framed-audio`` encoder through the ``camabc`` entry-point group."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from camabc_core.hookspecs import Register, hookimpl
from camabc_core.interfaces import AudioWindow, Encoder, EncoderOutput
from camabc_core.recipe import EncoderSpec, WindowSection


class FramedAudioEncoder(Encoder):
    """Cuts audio into frames of ``frame_size`` samples; one linear layer maps each frame.

    Hidden states: the frames themselves (B, T, frame_size), then the linear layer's output.
    """

    modality = "audio"

    def __init__(self, frame_size: int = 16) -> None:
        super().__init__()
        self.frame_size = frame_size
        self.layer = nn.Linear(frame_size, frame_size)

    @classmethod
    def from_spec(cls, spec: EncoderSpec, window: WindowSection) -> FramedAudioEncoder:
        return cls(frame_size=int((spec.config or {}).get("frame_size", 16)))

    @property
    def hidden_size(self) -> int:
        return self.frame_size

    @property
    def num_layers(self) -> int:
        return 1

    def preprocess(self, windows: Sequence[AudioWindow]) -> dict[str, torch.Tensor]:
        # Every window of a recipe has the same length; trailing samples that fill no frame are dropped.
        samples = torch.stack([torch.as_tensor(window.samples, dtype=torch.float32) for window in windows])
        num_frames = samples.shape[1] // self.frame_size
        frames = samples[:, : num_frames * self.frame_size].reshape(len(windows), num_frames, self.frame_size)
        return {"input_values": frames, "attention_mask": torch.ones(len(windows), num_frames)}

    def forward(self, input_values: torch.Tensor, attention_mask: torch.Tensor) -> EncoderOutput:
        hidden_states = (input_values, self.layer(input_values))
        return EncoderOutput(hidden_states=hidden_states, attention_mask=attention_mask)


@hookimpl
def register_encoders(register: Register) -> None:
    register("framed-audio", FramedAudioEncoder.from_spec)
