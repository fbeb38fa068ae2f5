"""Contracts of the six plugin kinds.

Encoders, aligners and fusions are ``torch.nn.Module`` subclasses so they train, save and move
between devices like any module. Shapes use B = batch, T = time steps or tokens, D = hidden size.
"""

from __future__ import annotations

import abc
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar, Literal

import attrs
import numpy as np
import torch
from torch import nn

from camabc_core.records import Conversation

Modality = Literal["audio", "text", "video"]
MODALITIES: tuple[Modality, ...] = ("audio", "text", "video")


@attrs.frozen
class AudioWindow:
    """Speaker audio before a prediction point: mono float32 at ``sample_rate`` Hz.

    ``samples`` has shape (S,); ``padding`` (S,) is True where the window reached before the start of
    the media (zero-filled). Listener speech is already zeroed (mono) or excluded (per-speaker channel).
    """

    samples: np.ndarray
    padding: np.ndarray
    sample_rate: int


@attrs.frozen
class VideoWindow:
    """``frames`` uint8 (L, H, W, 3) sampled uniformly over the window, excluding the prediction point."""

    frames: np.ndarray
    timestamps: np.ndarray


@attrs.frozen
class Window:
    """The inputs of one sample; a modality the recipe does not use is None."""

    audio: AudioWindow | None
    text: str | None
    video: VideoWindow | None


@attrs.frozen
class EncoderOutput:
    """Every hidden state of an encoder.

    ``hidden_states`` has ``num_layers + 1`` tensors (B, T, D): the embedding output, then layer 0 ...
    layer ``num_layers - 1``. ``attention_mask`` (B, T) is 1 for real positions, 0 for padding.
    """

    hidden_states: tuple[torch.Tensor, ...]
    attention_mask: torch.Tensor


@attrs.frozen
class AlignerOutput:
    """Alignment loss (a scalar, zero when the aligner has none) and sample embeddings (B, D).

    ``embeddings`` contains pooled per-modality embeddings under ``"audio"``, ``"text"``, ``"video"``
    and cross-attended ones under ``"<query><-<key>"`` (``"video<-text"``: video queries attend to
    text keys and values), all taken at the last aligned layer. ``layer_losses`` maps each aligned
    layer index to its loss, for logging.
    """

    loss: torch.Tensor
    embeddings: dict[str, torch.Tensor]
    layer_losses: dict[int, torch.Tensor] = attrs.field(factory=dict)


class Encoder(nn.Module, abc.ABC):
    """A pretrained (or randomly initialised) encoder for one modality.

    ``preprocess`` turns raw windows into model inputs on the CPU, because it runs in data-loader
    workers. ``forward`` takes those inputs (moved to the device) and returns every hidden state.
    A sample's features never depend on the other samples in its batch.
    """

    modality: ClassVar[Modality]

    @property
    @abc.abstractmethod
    def hidden_size(self) -> int:
        """Width D of every hidden state."""

    @property
    @abc.abstractmethod
    def num_layers(self) -> int:
        """Number of transformer layers; ``forward`` returns ``num_layers + 1`` hidden states."""

    @abc.abstractmethod
    def preprocess(self, windows: Sequence[Any]) -> dict[str, torch.Tensor]:
        """Batch raw windows (AudioWindow, str or VideoWindow, by modality) into input tensors."""

    @abc.abstractmethod
    def forward(self, **inputs: torch.Tensor) -> EncoderOutput:
        """Encode a batch produced by ``preprocess``."""


class Aligner(nn.Module, abc.ABC):
    """Aligns the modalities at selected layers and returns the alignment loss and embeddings."""

    @property
    @abc.abstractmethod
    def embedding_size(self) -> int:
        """Width of every tensor in ``AlignerOutput.embeddings``."""

    @property
    @abc.abstractmethod
    def embedding_names(self) -> tuple[str, ...]:
        """Keys this aligner puts in ``AlignerOutput.embeddings`` for its modalities."""

    @abc.abstractmethod
    def forward(self, outputs: Mapping[Modality, EncoderOutput]) -> AlignerOutput:
        """Align a batch. ``outputs`` contains one EncoderOutput per modality the model uses."""


class Fusion(nn.Module, abc.ABC):
    """Turns the aligner's embeddings into the classifier input (B, output_size)."""

    @property
    @abc.abstractmethod
    def output_size(self) -> int:
        """Width of the fused vector fed to the classification head."""

    @property
    @abc.abstractmethod
    def required_embeddings(self) -> tuple[str, ...]:
        """Keys of ``AlignerOutput.embeddings`` this fusion reads."""

    @abc.abstractmethod
    def forward(self, embeddings: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """Fuse the embeddings of one batch."""


class DatasetReader(abc.ABC):
    """Parses one corpus format from a root directory into Conversation records.

    Sampling, windowing and splitting are done by the core so every corpus behaves the same.
    """

    #: Default raw-category to class-name mapping, e.g. {"CONTINUER": "Continuer"}.
    default_category_map: ClassVar[Mapping[str, str]] = {}
    #: Default label scheme name ("four_class" or "binary").
    default_label_scheme: ClassVar[str] = "four_class"

    @abc.abstractmethod
    def load(self, root: Path) -> list[Conversation]:
        """Read every conversation under ``root``; raise ``CorpusFormatError`` naming file and line."""


class ReferenceGenerator(abc.ABC):
    """Makes one reference portrait per synthetic speaker."""

    @abc.abstractmethod
    def generate(self, prompt: str, *, seed: int, width: int, height: int,
                 attributes: Mapping[str, Any]) -> np.ndarray:
        """Render the speaker described by ``prompt`` as RGB uint8 (H, W, 3).

        ``attributes`` contains the prompt's parts (sex, age, race, outfit). A generator that supports
        only some sizes may return another (H, W) than requested and logs a warning when it does.
        """


@attrs.frozen(eq=False)
class AnimationRequest:
    """One clip for an Animator: a reference portrait and the speech that drives it.

    The arrays and the files hold the same content: in-process animators read the arrays, and
    animators that run an external program (EchoMimic) pass the files. ``audio`` is mono float32
    (S,) with S = round(num_frames / fps × sample_rate). ``start_time`` is where the clip starts on
    the conversation's timeline in seconds, so motion that depends on time (blinks) agrees between
    overlapping clips. ``work_dir`` is an empty scratch folder the animator may write to; the caller
    removes it afterwards.
    """

    reference: np.ndarray
    reference_path: Path
    audio: np.ndarray
    audio_path: Path
    sample_rate: int
    fps: int
    num_frames: int
    start_time: float = 0.0
    seed: int = 0
    work_dir: Path | None = None


class Animator(abc.ABC):
    """Animates a reference portrait with speech audio into video frames."""

    @abc.abstractmethod
    def animate(self, request: AnimationRequest) -> Iterator[np.ndarray]:
        """Yield ``request.num_frames`` RGB uint8 frames (H, W, 3) at ``request.fps``, in order.

        Frames have the reference's size and are yielded one at a time, so a whole conversation side
        never has to fit in memory.
        """


COMPONENT_KINDS: dict[str, type] = {
    "encoder": Encoder,
    "aligner": Aligner,
    "fusion": Fusion,
    "dataset": DatasetReader,
    "animator": Animator,
    "reference_generator": ReferenceGenerator,
}
