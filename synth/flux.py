"""The ``flux`` reference generator: diffusers' ``FluxPipeline`` from a hub id or a local directory.

Defaults follow FLUX.1 [dev]: 28 denoising steps, guidance 3.5. The pipeline loads on the first
``generate`` call, so planning and dry runs never load weights. bfloat16 is used on GPU, float32 on
CPU (CPU kernels for half precision are slow or missing). Width and height must be multiples of 16,
because the VAE downsamples 8× and the transformer packs 2×2 latent patches. Other sizes are rounded
down with a warning.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from camabc_core.interfaces import ReferenceGenerator
from synth.errors import SynthError

logger = logging.getLogger(__name__)

DEFAULT_FLUX_MODEL = "black-forest-labs/FLUX.1-dev"
# FLUX.1 [dev]'s VAE scale factor (8) times its 2×2 latent packing.
FLUX_SIZE_MULTIPLE = 16
OFFLOAD_MODES = ("none", "model", "sequential")
DTYPE_NAMES = ("auto", "bfloat16", "float16", "float32")


def snap_size(width: int, height: int, multiple: int = FLUX_SIZE_MULTIPLE) -> tuple[int, int]:
    """Round ``width`` and ``height`` down to multiples of ``multiple``, warning when either changes."""
    snapped_width = (width // multiple) * multiple
    snapped_height = (height // multiple) * multiple
    if snapped_width < multiple or snapped_height < multiple:
        raise SynthError(f"Flux needs images of at least {multiple}x{multiple} pixels, got {width}x{height}")
    if (snapped_width, snapped_height) != (width, height):
        logger.warning(
            "Flux image size %dx%d is not a multiple of %d; using %dx%d (pass --width/--height as "
            "multiples of %d to avoid this)",
            width, height, multiple, snapped_width, snapped_height, multiple,
        )
    return snapped_width, snapped_height


def resolve_device(device: str) -> str:
    """Return the torch device for ``"auto"``: this process's GPU under Accelerate when one exists."""
    import torch

    if device != "auto":
        return device
    if not torch.cuda.is_available():
        return "cpu"
    from accelerate import PartialState

    return str(PartialState().device)


def resolve_dtype(dtype: str, device: str) -> Any:
    """Return the torch dtype: bfloat16 on GPU and float32 on CPU for ``"auto"``.

    Half precision requested on a CPU falls back to float32 with a warning.
    """
    import torch

    if dtype not in DTYPE_NAMES:
        raise SynthError(f"unknown Flux dtype {dtype!r}; use one of {', '.join(DTYPE_NAMES)}")
    on_cpu = device.startswith("cpu")
    if dtype == "auto":
        return torch.float32 if on_cpu else torch.bfloat16
    if on_cpu and dtype in ("float16", "bfloat16"):
        logger.warning("Flux dtype %s requested on CPU; using float32 (CPU half-precision kernels are "
                       "slow or missing)", dtype)
        return torch.float32
    return getattr(torch, dtype)


class FluxReferenceGenerator(ReferenceGenerator):
    """Generates photo-realistic busts with Flux.

    :param model: hub id or local directory of a diffusers Flux pipeline (``model_index.json``).
    :param device: ``"auto"`` (this process's GPU, else CPU), ``"cpu"``, ``"cuda"``, ``"cuda:1"``...
    :param dtype: ``"auto"``, ``"bfloat16"``, ``"float16"`` or ``"float32"``.
    :param offload: ``"none"``; ``"model"`` moves whole components to the GPU only while they run;
        ``"sequential"`` moves layer by layer (lowest memory, slowest). Both need a GPU.
    :param num_inference_steps: denoising steps.
    :param guidance_scale: Flux's distilled guidance.
    :param max_sequence_length: T5 prompt tokens.
    :param local_files_only: never contact the hub, load from the local cache or directory only.
    """

    def __init__(self, model: str = DEFAULT_FLUX_MODEL, *, device: str = "auto", dtype: str = "auto",
                 offload: str = "none", num_inference_steps: int = 28, guidance_scale: float = 3.5,
                 max_sequence_length: int = 512, local_files_only: bool = False):
        if offload not in OFFLOAD_MODES:
            raise SynthError(f"unknown Flux offload mode {offload!r}; use one of {', '.join(OFFLOAD_MODES)}")
        self.model = str(model)
        self.device = device
        self.dtype = dtype
        self.offload = offload
        self.num_inference_steps = int(num_inference_steps)
        self.guidance_scale = float(guidance_scale)
        self.max_sequence_length = int(max_sequence_length)
        self.local_files_only = bool(local_files_only)
        self._pipeline: Any = None

    def _load(self) -> Any:
        try:
            from diffusers import FluxPipeline
        except ImportError as error:
            raise SynthError(
                "the flux reference generator needs diffusers; install it with: pip install 'camabc[synth]'"
            ) from error
        device = resolve_device(self.device)
        dtype = resolve_dtype(self.dtype, device)
        logger.info("loading Flux pipeline %s on %s as %s",
                    self.model, device, str(dtype).removeprefix("torch."))
        try:
            pipeline = FluxPipeline.from_pretrained(self.model, dtype=dtype,
                                                    local_files_only=self.local_files_only)
        except (OSError, ValueError) as error:
            hint = ("check the directory holds a diffusers Flux pipeline (model_index.json)"
                    if Path(self.model).exists() else
                    "pass --flux-model with a local directory, or log in with `hf auth login` and accept "
                    "the model's licence on the hub (FLUX.1 [dev] is gated)")
            raise SynthError(f"cannot load the Flux pipeline {self.model!r} ({error}); {hint}") from error
        if self.offload != "none" and device.startswith("cpu"):
            logger.warning("Flux offload %r needs a GPU; running fully on CPU instead", self.offload)
        elif self.offload == "model":
            pipeline.enable_model_cpu_offload(device=device)
        elif self.offload == "sequential":
            pipeline.enable_sequential_cpu_offload(device=device)
        else:
            pipeline.to(device)
        pipeline.set_progress_bar_config(disable=True)
        self._device = device
        return pipeline

    def generate(self, prompt: str, *, seed: int, width: int, height: int,
                 attributes: Mapping[str, Any]) -> np.ndarray:
        import torch

        if self._pipeline is None:
            self._pipeline = self._load()
        multiple = getattr(self._pipeline, "vae_scale_factor", 8) * 2
        width, height = snap_size(width, height, multiple)
        # A CPU generator gives the same image for a seed on every device.
        generator = torch.Generator(device="cpu").manual_seed(seed)
        output = self._pipeline(
            prompt, width=width, height=height, num_inference_steps=self.num_inference_steps,
            guidance_scale=self.guidance_scale, max_sequence_length=self.max_sequence_length,
            generator=generator, output_type="np",
        )
        image = np.asarray(output.images[0], dtype=np.float32)  # (H, W, 3) in [0, 1]
        return np.round(np.clip(image, 0.0, 1.0) * 255.0).astype(np.uint8)
