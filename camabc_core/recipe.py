"""Recipe schema: the YAML file that fully describes a run.

Every field has a default so a recipe only states what it changes. Unknown keys and wrong types are
errors (see ``camabc_core.recipe_loading``), never silently ignored.
"""

from __future__ import annotations

from typing import Any, Literal

import attrs


@attrs.define
class RunSection:
    name: str = "camabc-run"
    output_dir: str = "runs"
    seed: int = 0
    #: Several seeds run the whole recipe once per seed and aggregate mean ± std.
    seeds: list[int] | None = None
    mixed_precision: Literal["no", "bf16", "fp16"] = "no"
    #: Progress line every this many optimiser steps.
    log_every: int = 10
    #: Also save checkpoints/last every this many optimiser steps (null: only at the end of each
    #: epoch). A resumed run repeats at most this many steps.
    checkpoint_every: int | None = 500
    num_workers: int = 0
    #: torch intra-op threads when training on a CPU (null: torch's default, one per core). On a
    #: machine shared with other jobs, fewer threads than cores avoid threads waiting on each other.
    cpu_threads: int | None = None


@attrs.define
class WindowSection:
    #: Audio and video context before the prediction point, in seconds (n).
    audio_seconds: float = 1.5
    #: Speaker words before the prediction point (m).
    text_words: int = 5
    #: Video frames per window (l); VideoMAE tubelets span 2 frames, so it must be even.
    num_frames: int = 12
    sample_rate: int = 16000
    #: Square frame size fed to the video encoder, in pixels.
    image_size: int = 224


@attrs.define
class SamplingSection:
    #: NoBC points per backchannel event.
    nobc_ratio: float = 1.0
    #: A speaker word end within this many seconds of a listener backchannel onset is not a NoBC point.
    nobc_tolerance_seconds: float = 1.0
    #: Train / validation / test proportions.
    split: list[float] = attrs.field(factory=lambda: [8.0, 0.5, 1.5])
    split_by: Literal["sample", "conversation"] = "sample"
    #: Fraction of training labels flipped to another class (seeded), for robustness studies.
    label_noise: float = 0.0


@attrs.define
class DataSection:
    #: Dataset plugin name (``camabc plugins`` lists them).
    dataset: str = "manifest"
    root: str = ""
    #: "four_class" (NoBC, Continuer, Understanding, Empathy) or "binary" (NoBC, BC).
    label_scheme: Literal["four_class", "binary"] = "four_class"
    #: Raw corpus category -> class name; null uses the dataset's default mapping.
    category_map: dict[str, str] | None = None
    #: Skip malformed annotation lines (counted and reported) instead of failing.
    skip_malformed: bool = False
    #: Keyword options passed to the dataset reader's factory, e.g. the Switchboard rule's thresholds
    #: or ``video_dir`` (null: the reader's defaults). Set ``skip_malformed`` above, not here.
    reader_options: dict[str, Any] | None = None
    #: Use only the first N conversations (sorted by id); null uses all.
    max_conversations: int | None = None
    window: WindowSection = attrs.field(factory=WindowSection)
    sampling: SamplingSection = attrs.field(factory=SamplingSection)


@attrs.define
class EncoderSpec:
    #: Encoder plugin name, e.g. "hubert", "bert", "videomae".
    name: str
    #: Hub id or local directory of pretrained weights; null builds from ``config`` with random weights.
    checkpoint: str | None = None
    #: transformers config fields used when ``checkpoint`` is null (or overriding the checkpoint's).
    config: dict[str, Any] | None = None
    #: Tokenizer hub id or directory (text encoders); null uses ``checkpoint``.
    tokenizer: str | None = None
    #: Maximum tokens per text window (text encoders).
    max_length: int = 64
    freeze: bool = False


@attrs.define
class EncodersSection:
    audio: EncoderSpec | None = None
    text: EncoderSpec | None = None
    video: EncoderSpec | None = None


@attrs.define
class AlignerSpec:
    #: "mma" (the CAMA-BC aligner), "praveen", "sun" or "none".
    name: str = "mma"
    #: 0-based encoder layers to align; layer l is ``hidden_states[l + 1]``. Negative counts from the end.
    layers: list[int] = attrs.field(factory=lambda: [9, 10, 11])
    #: Softmax temperature of the contrastive similarity.
    temperature: float = 1.0
    #: Width of the shared projection space.
    projection_size: int = 256
    num_heads: int = 4
    #: One cross-attention module for all modality pairs instead of one per pair.
    share_cross_attention_across_pairs: bool = False


@attrs.define
class FusionSpec:
    #: "hierarchical" (CAMA-BC), "concat", "audio_only", "text_only" or "video_only".
    name: str = "hierarchical"


@attrs.define
class ModelSection:
    encoders: EncodersSection = attrs.field(factory=EncodersSection)
    aligner: AlignerSpec = attrs.field(factory=AlignerSpec)
    fusion: FusionSpec = attrs.field(factory=FusionSpec)
    dropout: float = 0.1


@attrs.define
class StageSection:
    """Optimisation settings of one training stage."""

    epochs: int = 1
    #: Stop after this many optimiser steps in total (null: run all epochs). Useful for smoke runs.
    max_steps: int | None = None
    batch_size: int = 16
    gradient_accumulation_steps: int = 1
    lr_encoders: float = 5e-6
    lr_classifier: float = 5e-5
    #: Projections and cross-attention.
    lr_alignment: float = 5e-4
    #: Multiplied into the encoder and alignment learning rates after every epoch.
    lr_decay: float = 0.95
    weight_decay: float = 0.0
    #: Clip the global gradient L2 norm to this value before each optimiser step (null: no clipping).
    #: The cosine similarity of the alignment loss has large gradients near zero-norm embeddings.
    max_grad_norm: float | None = None
    #: Weight λ of the alignment loss added to cross-entropy (Backchannel Alignment only).
    alignment_weight: float = 0.1
    #: Epochs without validation macro-F1 improvement before stopping (Backchannel Alignment only).
    patience: int | None = 10
    #: Cap on samples per epoch (null: all). Context Alignment on large corpora uses it.
    max_samples_per_epoch: int | None = None


@attrs.define
class EvaluationSection:
    split: Literal["train", "validation", "test"] = "test"
    batch_size: int = 32


@attrs.define
class Recipe:
    run: RunSection = attrs.field(factory=RunSection)
    data: DataSection = attrs.field(factory=DataSection)
    model: ModelSection = attrs.field(factory=ModelSection)
    #: null skips Context Alignment.
    context_alignment: StageSection | None = None
    #: null skips Backchannel Alignment.
    backchannel_alignment: StageSection | None = attrs.field(factory=StageSection)
    evaluation: EvaluationSection = attrs.field(factory=EvaluationSection)
