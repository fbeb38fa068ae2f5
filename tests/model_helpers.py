"""Tiny encoder specs, windows and a registry for the model tests (random weights, CPU, < 1 s to build)."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import numpy as np
from transformers import BertTokenizer

from camabc_core.interfaces import AudioWindow, VideoWindow, Window
from camabc_core.recipe import EncoderSpec, WindowSection

SAMPLE_RATE = 16000

#: Word pieces of the test tokenizer: the special tokens, a few Korean and English words, and the
#: conjoining jamo that NFKC produces from compatibility jamo ("ㅋ" -> "ᄏ").
VOCABULARY = [
    "[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]",
    "진짜", "그래", "네", "ᄏ", "##ᄏ", "ㅋ", "##ㅋ", "yeah", "right", "so", "i", "think", "we", "go", ".",
]

# Hidden sizes differ per modality (16, 24, 12) and the feed-forward width is odd, so a projection or
# reshape that mixes them up fails.
HUBERT_CONFIG: dict[str, Any] = {
    "hidden_size": 16,
    "num_hidden_layers": 2,
    "num_attention_heads": 2,
    "intermediate_size": 37,
    # The convolution stack keeps HuBERT's kernels and strides (receptive field 400 samples) with
    # 8 channels instead of 512.
    "conv_dim": [8] * 7,
    "num_conv_pos_embeddings": 16,
    "num_conv_pos_embedding_groups": 2,
}
BERT_CONFIG: dict[str, Any] = {
    "hidden_size": 24,
    "num_hidden_layers": 2,
    "num_attention_heads": 2,
    "intermediate_size": 37,
    "max_position_embeddings": 32,
}
VIDEOMAE_CONFIG: dict[str, Any] = {
    "hidden_size": 12,
    "num_hidden_layers": 2,
    "num_attention_heads": 2,
    "intermediate_size": 37,
    "patch_size": 16,
}
TINY_WINDOW = WindowSection(num_frames=4, image_size=32)


def write_tokenizer(directory: Path) -> Path:
    """Save a WordPiece tokenizer over ``VOCABULARY`` to ``directory``.

    It is cased because lower-casing also strips accents, which splits Hangul syllables into jamo.
    """
    vocabulary = {token: index for index, token in enumerate(VOCABULARY)}
    BertTokenizer(vocab=vocabulary, do_lower_case=False).save_pretrained(directory)
    return directory


def hubert_spec(**config: Any) -> EncoderSpec:
    return EncoderSpec(name="hubert", config={**HUBERT_CONFIG, **config})


def bert_spec(tokenizer_dir: Path, max_length: int = 16) -> EncoderSpec:
    return EncoderSpec(
        name="bert", tokenizer=str(tokenizer_dir), config=dict(BERT_CONFIG), max_length=max_length
    )


def videomae_spec() -> EncoderSpec:
    return EncoderSpec(name="videomae", config=dict(VIDEOMAE_CONFIG))


def audio_window(num_samples: int, seed: int, num_padded: int = 0) -> AudioWindow:
    """A noise waveform of ``num_samples`` whose first ``num_padded`` samples are padding zeros."""
    samples = np.random.default_rng(seed).normal(0.0, 0.1, num_samples).astype(np.float32)
    padding = np.zeros(num_samples, dtype=bool)
    samples[:num_padded] = 0.0
    padding[:num_padded] = True
    return AudioWindow(samples=samples, padding=padding, sample_rate=SAMPLE_RATE)


def video_window(seed: int, num_frames: int = 4, height: int = 40, width: int = 48) -> VideoWindow:
    frames = np.random.default_rng(seed).integers(0, 256, (num_frames, height, width, 3), dtype=np.uint8)
    return VideoWindow(frames=frames, timestamps=np.arange(num_frames, dtype=np.float64) / 25.0)


def windows(
    count: int, with_audio: bool = True, with_text: bool = True, with_video: bool = True
) -> list[Window]:
    texts = ["진짜 ㅋㅋ", "yeah right", "so i think we go .", "", "네 그래"]
    return [
        Window(
            audio=audio_window(8000 - 800 * (index % 3), seed=index) if with_audio else None,
            text=texts[index % len(texts)] if with_text else None,
            video=video_window(seed=index) if with_video else None,
        )
        for index in range(count)
    ]


class DirectRegistry:
    """Stands in for ``camabc_core.registry`` where it is not installed: built-in factories by name."""

    def __init__(self) -> None:
        from camabc_plugins import aligners, encoders, fusions

        self.factories: dict[tuple[str, str], Any] = {}
        encoders.register_encoders(functools.partial(self._add, "encoder"))
        aligners.register_aligners(functools.partial(self._add, "aligner"))
        fusions.register_fusions(functools.partial(self._add, "fusion"))

    def _add(self, kind: str, name: str, factory: Any) -> None:
        self.factories[(kind, name)] = factory

    def create(self, kind: str, name: str, **options: Any) -> Any:
        return self.factories[(kind, name)](**options)


def component_registry() -> Any:
    """The plugin registry if the core provides it, else ``DirectRegistry``."""
    try:
        from camabc_core.registry import get_registry
    except ImportError:
        return DirectRegistry()
    return get_registry()
