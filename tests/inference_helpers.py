"""Tiny trained-model run directories and generated media for the inference tests.

A run directory contains what ``camabc train`` writes and ``load_trained_model`` reads: recipe.yaml,
labels.json, the encoder configs (and tokenizer) under encoders/, and the weights under
checkpoints/best/. The weights are random, seeded, so predictions are deterministic.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import av
import numpy as np
import torch
from model_helpers import bert_spec, hubert_spec, videomae_spec, write_tokenizer

from camabc_core.labels import build_label_scheme
from camabc_core.model import BackchannelModel
from camabc_core.recipe import (
    AlignerSpec,
    DataSection,
    EncodersSection,
    FusionSpec,
    ModelSection,
    Recipe,
    WindowSection,
)
from camabc_core.recipe_loading import save_recipe
from camabc_core.records import Word
from camabc_core.training.checkpoint import save_model_weights
from camabc_core.training.run_dir import save_encoder_files, write_labels

SAMPLE_RATE = 16000
#: Half-second windows, 3 words, 4 frames of 32 x 32: small enough for a fast CPU forward pass.
TINY_WINDOW = WindowSection(audio_seconds=0.5, text_words=3, num_frames=4, image_size=32)

FUSION_FOR = {
    ("audio", "text", "video"): "hierarchical",
    ("audio", "text"): "concat",
    ("audio",): "audio_only",
    ("text",): "text_only",
}


def write_run_dir(run_dir: Path, modalities: Sequence[str] = ("audio", "text", "video"), *,
                  scheme: str = "four_class", seed: int = 0) -> Path:
    """Build a tiny model with random weights for ``modalities`` and save it as a trained run."""
    run_dir.mkdir(parents=True, exist_ok=True)
    tokenizer_dir = write_tokenizer(run_dir.parent / f"{run_dir.name}-tokenizer")
    encoders = EncodersSection(
        audio=hubert_spec() if "audio" in modalities else None,
        text=bert_spec(tokenizer_dir) if "text" in modalities else None,
        video=videomae_spec() if "video" in modalities else None,
    )
    recipe = Recipe(
        data=DataSection(label_scheme=scheme, window=TINY_WINDOW),
        model=ModelSection(
            encoders=encoders,
            aligner=AlignerSpec(name="mma", layers=[0, 1], projection_size=8, num_heads=2),
            fusion=FusionSpec(name=FUSION_FOR[tuple(modalities)]),
        ),
    )
    label_scheme = build_label_scheme(scheme)
    torch.manual_seed(seed)
    model = BackchannelModel.from_recipe(recipe, label_scheme.num_classes)
    save_recipe(recipe, run_dir / "recipe.yaml")
    write_labels(run_dir, label_scheme)
    save_encoder_files(run_dir, model)
    save_model_weights(model, run_dir / "checkpoints" / "best" / "model.safetensors")
    return run_dir


def speech_like_signal(seconds: float, seed: int = 0) -> np.ndarray:
    """A 220 Hz tone with noise and a 3 Hz amplitude envelope, float32 mono at SAMPLE_RATE."""
    rng = np.random.default_rng(seed)
    time = np.arange(round(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    envelope = 0.5 + 0.5 * np.sin(2 * np.pi * 3 * time)
    signal = 0.3 * envelope * np.sin(2 * np.pi * 220 * time) + rng.normal(0, 0.02, time.size)
    return signal.astype(np.float32)


def write_clip(path: Path, seconds: float, *, video: bool = True, audio: bool = True,
               fps: int = 10, width: int = 48, height: int = 40, seed: int = 0) -> Path:
    """Write an MP4 (H.264 noise frames, AAC audio) or, with ``video=False``, a WAV file."""
    rng = np.random.default_rng(seed)
    with av.open(str(path), "w") as container:
        video_stream = None
        if video:
            video_stream = container.add_stream("libx264", rate=fps)
            video_stream.width, video_stream.height, video_stream.pix_fmt = width, height, "yuv420p"
        audio_stream = None
        if audio:
            codec = "aac" if video else "pcm_s16le"
            audio_stream = container.add_stream(codec, rate=SAMPLE_RATE, layout="mono")
        if video_stream is not None:
            for _ in range(round(seconds * fps)):
                image = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
                for packet in video_stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                    container.mux(packet)
            for packet in video_stream.encode():
                container.mux(packet)
        if audio_stream is not None:
            signal = speech_like_signal(seconds, seed)
            sample_format = "fltp" if video else "s16"
            for begin in range(0, signal.size, 1024):
                chunk = signal[begin:begin + 1024][None]
                if sample_format == "s16":
                    chunk = (chunk * 32767).astype(np.int16)
                frame = av.AudioFrame.from_ndarray(chunk, format=sample_format, layout="mono")
                frame.sample_rate, frame.pts = SAMPLE_RATE, begin
                for packet in audio_stream.encode(frame):
                    container.mux(packet)
            for packet in audio_stream.encode():
                container.mux(packet)
    return path


#: Speaker "A" talks, and listener "B" speaks one word at 0.60-0.80 s. Times fit a 2 s clip.
DIALOGUE: tuple[Word, ...] = (
    Word("A", 0.10, 0.30, "yeah"),
    Word("A", 0.35, 0.60, "right"),
    Word("B", 0.60, 0.80, "네"),
    Word("A", 0.90, 1.20, "so"),
    Word("A", 1.25, 1.50, "i"),
    Word("A", 1.55, 1.90, "think"),
)


def write_word_tsv(path: Path, words: Sequence[Word]) -> Path:
    lines = ["speaker\tstart\tend\ttext"] + [f"{w.speaker}\t{w.start}\t{w.end}\t{w.text}" for w in words]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path
