"""VideoMAE video encoder (``VideoMAEModel`` with a ``VideoMAEImageProcessor``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

import numpy as np
import torch

# The PIL image processor is used directly: the default one needs torchvision, which has no build
# matching every torch release, and transformers would fall back to this class with a warning anyway.
from transformers import VideoMAEConfig, VideoMAEModel
from transformers import VideoMAEImageProcessorPil as VideoMAEImageProcessor

from camabc_core.errors import RecipeError
from camabc_core.interfaces import EncoderOutput, Modality, VideoWindow
from camabc_core.recipe import EncoderSpec, WindowSection
from camabc_plugins.encoders.loading import TransformersEncoder, build_config, build_model

#: Frames per VideoMAE tubelet in every released checkpoint (``VideoMAEConfig.tubelet_size``).
DEFAULT_TUBELET_SIZE = 2


def validate_video_frames(num_frames: int, tubelet_size: int = DEFAULT_TUBELET_SIZE) -> None:
    """Raise RecipeError unless ``num_frames`` is a positive multiple of ``tubelet_size``.

    VideoMAE embeds non-overlapping tubelets of ``tubelet_size`` frames, so 11 frames cannot be
    split into the 2-frame tubelets of the released checkpoints.
    """
    if num_frames < tubelet_size or num_frames % tubelet_size != 0:
        raise RecipeError(
            f"data.window.num_frames is {num_frames}, but the VideoMAE encoder groups frames into "
            f"tubelets of {tubelet_size}, so it must be a positive multiple of {tubelet_size} "
            f"(for example {max(tubelet_size, num_frames - num_frames % tubelet_size)})."
        )


class VideoMAEEncoder(TransformersEncoder):
    """Speaker video frames -> every VideoMAE hidden state.

    A window of L frames of S x S pixels gives ``(L / tubelet_size) * (S / patch_size)²`` tokens per
    layer: 12 frames of 224 x 224 give 6 * 14 * 14 = 1176. There is no padding, so the mask is all
    ones. The sinusoidal position table is fixed (not learned), so a checkpoint pretrained on 16
    frames runs on the recipe's frame count unchanged.
    """

    modality: ClassVar[Modality] = "video"

    def __init__(
        self,
        model: VideoMAEModel,
        image_processor: VideoMAEImageProcessor,
        *,
        freeze: bool = False,
    ) -> None:
        super().__init__(model, freeze=freeze)
        self.image_processor = image_processor
        validate_video_frames(self.num_frames, model.config.tubelet_size)

    @classmethod
    def from_spec(cls, spec: EncoderSpec, window: WindowSection) -> VideoMAEEncoder:
        """Build from ``model.encoders.video``; frames and image size come from ``data.window``."""
        where = f"model.encoders.video ({spec.name})"
        overrides = {**(spec.config or {}), "num_frames": window.num_frames, "image_size": window.image_size}
        config = build_config(VideoMAEConfig, spec.checkpoint, overrides, where)
        validate_video_frames(window.num_frames, config.tubelet_size)
        if window.image_size % config.patch_size != 0:
            raise RecipeError(
                f"data.window.image_size is {window.image_size}, not a multiple of the VideoMAE patch "
                f"size {config.patch_size}; use for example "
                f"{window.image_size - window.image_size % config.patch_size}."
            )
        model = build_model(VideoMAEModel, config, spec.checkpoint, where)
        image_processor = load_image_processor(spec.checkpoint, window.image_size)
        return cls(model, image_processor, freeze=spec.freeze)

    @property
    def num_frames(self) -> int:
        return int(self.model.config.num_frames)

    @property
    def image_size(self) -> int:
        return int(self.model.config.image_size)

    @property
    def tokens_per_layer(self) -> int:
        """Tokens in every hidden state: tubelets times patches per frame."""
        config = self.model.config
        return (config.num_frames // config.tubelet_size) * (config.image_size // config.patch_size) ** 2

    def preprocess(self, windows: Sequence[VideoWindow]) -> dict[str, torch.Tensor]:
        """Resize, centre-crop and normalise frames; returns ``pixel_values`` (B, L, 3, S, S)."""
        videos = []
        for index, window in enumerate(windows):
            frames = np.asarray(window.frames)
            if frames.ndim != 4 or frames.shape[0] != self.num_frames or frames.shape[-1] != 3:
                raise ValueError(
                    f"video window {index} has frames of shape {frames.shape}, expected "
                    f"({self.num_frames}, height, width, 3) uint8 RGB; data.window.num_frames must "
                    "match the encoder"
                )
            videos.append(list(frames))
        pixel_values = self.image_processor(videos, return_tensors="pt")["pixel_values"]
        return {"pixel_values": pixel_values}

    def forward(self, pixel_values: torch.Tensor) -> EncoderOutput:
        """Encode (B, L, 3, S, S) frames; returns ``num_layers + 1`` tensors (B, N, D) and a (B, N) mask."""
        output = self.model(pixel_values=pixel_values, output_hidden_states=True)
        hidden_states = self.check_hidden_states(output.hidden_states)
        batch_size, num_tokens = hidden_states[0].shape[:2]
        attention_mask = torch.ones(batch_size, num_tokens, dtype=torch.long, device=pixel_values.device)
        return EncoderOutput(hidden_states=hidden_states, attention_mask=attention_mask)


def load_image_processor(checkpoint: str | None, image_size: int) -> VideoMAEImageProcessor:
    """Load the checkpoint's image processor (or the defaults) and set it to ``image_size``."""
    size = {"shortest_edge": image_size}
    crop_size = {"height": image_size, "width": image_size}
    if checkpoint is not None:
        try:
            return VideoMAEImageProcessor.from_pretrained(checkpoint, size=size, crop_size=crop_size)
        except OSError as error:
            raise RecipeError(
                f"model.encoders.video: cannot load the image processor of {checkpoint!r}: {error}"
            ) from error
    return VideoMAEImageProcessor(size=size, crop_size=crop_size)
