"""A tiny trainable corpus and recipes for the training tests.

The words and backchannels are real: the BACKCast excerpt in tests/data (one dialogue, 120 words,
9 backchannels). No corpus in tests/data has audio and video, so ``write_media_manifest`` pairs
the excerpt with a generated recording (a different tone per speaker turn, silence elsewhere)
and a generated video (frame brightness follows the speaker). It then writes a manifest that the
``manifest`` reader loads like any user corpus.
"""

from __future__ import annotations

import fractions
import json
import wave
from pathlib import Path
from typing import Any

import av
import numpy as np
from model_helpers import HUBERT_CONFIG, VIDEOMAE_CONFIG

from camabc_core.recipe import Recipe
from camabc_core.recipe_loading import recipe_from_dict

DATA_DIR = Path(__file__).parent / "data"
BACKCAST_EXCERPT = DATA_DIR / "backcast_dialogue_excerpt"
SAMPLE_RATE = 16000
VIDEO_FPS = 4
VIDEO_SIZE = 32

TINY_BERT = {"hidden_size": 24, "num_hidden_layers": 2, "num_attention_heads": 2,
             "intermediate_size": 37, "max_position_embeddings": 32}


def load_excerpt():
    from camabc_plugins.datasets.backcast import BackcastReader

    (conversation,) = BackcastReader().load(BACKCAST_EXCERPT)
    return conversation


def write_media_manifest(directory: Path) -> Path:
    """Write audio.wav, video.mp4 and corpus.jsonl for the excerpt into ``directory``.

    Returns the manifest path.
    """
    directory.mkdir(parents=True, exist_ok=True)
    conversation = load_excerpt()
    duration = float(np.ceil(conversation.duration + 1.0))
    speakers = list(conversation.speakers)

    # Audio: speaker i's words are a sine at 220·(i + 1) Hz, so the audio encoder can tell the
    # speakers apart.
    num_samples = int(duration * SAMPLE_RATE)
    signal = np.zeros(num_samples, dtype=np.float32)
    for word in conversation.words:
        start, end = int(word.start * SAMPLE_RATE), int(word.end * SAMPLE_RATE)
        times = np.arange(end - start) / SAMPLE_RATE
        signal[start:end] = 0.3 * np.sin(2 * np.pi * 220 * (speakers.index(word.speaker) + 1) * times)
    with wave.open(str(directory / "audio.wav"), "wb") as output:
        output.setnchannels(1)
        output.setsampwidth(2)
        output.setframerate(SAMPLE_RATE)
        output.writeframes(np.round(signal * 32767).astype("<i2").tobytes())

    # Video: a frame's grey level is 60 + 80·(speaker index + 1) while someone speaks, 30 otherwise.
    container = av.open(str(directory / "video.mp4"), "w")
    stream = container.add_stream("libx264", rate=VIDEO_FPS)
    stream.width = stream.height = VIDEO_SIZE
    stream.pix_fmt = "yuv420p"
    for index in range(int(duration * VIDEO_FPS)):
        time = index / VIDEO_FPS
        level = 30
        for word in conversation.words:
            if word.start <= time < word.end:
                level = 60 + 80 * (speakers.index(word.speaker) + 1)
        pixels = np.full((VIDEO_SIZE, VIDEO_SIZE, 3), level, np.uint8)
        frame = av.VideoFrame.from_ndarray(pixels, format="rgb24")
        frame.pts, frame.time_base = index, fractions.Fraction(1, VIDEO_FPS)
        for packet in stream.encode(frame):
            container.mux(packet)
    for packet in stream.encode():
        container.mux(packet)
    container.close()

    entry = {
        "id": conversation.id,
        "audio": "audio.wav",
        "video": "video.mp4",
        "speakers": speakers,
        "duration": duration,
        "words": [{"speaker": w.speaker, "start": w.start, "end": w.end, "text": w.text}
                  for w in conversation.words],
        "backchannels": [{"listener": b.listener, "start": b.start, "end": b.end, "category": b.category,
                          "text": b.text} for b in conversation.backchannels],
    }
    manifest = directory / "corpus.jsonl"
    manifest.write_text(json.dumps(entry, ensure_ascii=False) + "\n", encoding="utf-8")
    return manifest


def write_excerpt_tokenizer(directory: Path) -> Path:
    """Train a small WordPiece tokenizer on every word of the excerpt."""
    from camabc_core.training.tokenizer import train_wordpiece

    conversation = load_excerpt()
    texts = [word.text for word in conversation.words]
    train_wordpiece(texts, directory, vocab_size=120, min_frequency=1)
    return directory


def tiny_recipe(
    manifest: Path,
    tokenizer_dir: Path,
    *,
    modalities: tuple[str, ...] = ("audio", "text", "video"),
    **sections: Any,
) -> Recipe:
    """A recipe with 2-layer encoders (hidden 16, 24, 12), MMA on both layers, 4-frame 32-pixel video.

    ``sections`` replaces or extends top-level sections, e.g. ``backchannel_alignment={...}``.
    """
    encoders: dict[str, Any] = {}
    if "audio" in modalities:
        encoders["audio"] = {"name": "hubert", "config": dict(HUBERT_CONFIG)}
    if "text" in modalities:
        encoders["text"] = {"name": "bert", "tokenizer": str(tokenizer_dir), "config": dict(TINY_BERT),
                            "max_length": 16}
    if "video" in modalities:
        encoders["video"] = {"name": "videomae", "config": dict(VIDEOMAE_CONFIG)}
    if len(modalities) == 1:
        fusion = f"{modalities[0]}_only"
    else:
        fusion = "hierarchical" if "audio" in modalities else "concat"
    data: dict[str, Any] = {
        "run": {"name": "tiny", "output_dir": str(manifest.parent / "runs"), "log_every": 1,
                "checkpoint_every": 1},
        "data": {"dataset": "manifest", "root": str(manifest),
                 "window": {"audio_seconds": 0.5, "text_words": 5, "num_frames": 4, "image_size": 32}},
        "model": {"encoders": encoders,
                  "aligner": {"name": "mma" if len(modalities) > 1 else "none", "layers": [0, 1],
                              "projection_size": 16, "num_heads": 2},
                  "fusion": {"name": fusion}},
        "context_alignment": {"epochs": 1, "max_steps": 3, "batch_size": 4},
        "backchannel_alignment": {"epochs": 2, "batch_size": 4, "lr_encoders": 1e-3, "lr_alignment": 1e-3,
                                  "lr_classifier": 1e-2},
        "evaluation": {"batch_size": 8},
    }
    data.update(sections)
    return recipe_from_dict(data)
