"""Measure how much the aligner, fusion and head add to the encoders' forward time.

The model is CAMA-BC at base sizes with random weights: HuBERT base, BERT base and VideoMAE base
(12 layers, width 768 each), MMA on layers 9-11 with projection size 256 and 4 heads, hierarchical
fusion and 4 classes. Each sample has 1.5 s of 16 kHz audio, 5 words of text (7 tokens with CLS
and SEP) and 12 frames of 224 x 224 video.

First it counts the floating-point operations of the encoders and of the head part for one sample
(``torch.utils.flop_counter``); this ratio does not depend on machine load. Then it takes three
timings per batch size and precision, all under ``torch.inference_mode``:

    encoders  the three encoders alone (``model.encode``)
    full      the whole model (``model(inputs)``): encoders, aligner, fusion and head
    head      aligner + fusion + head on encoder outputs computed beforehand

The three run in turn within each repeat, starting from a different one every repeat, after a
warm-up call of the encoders and of the head part. The table reports median times. The overhead
is ``head / encoders`` and, as a cross-check that includes more timing noise,
``(full - encoders) / encoders``; both are medians of the ratios within each repeat, so a slow
stretch of time on a shared machine affects numerator and denominator alike.

    .venv/bin/python benchmarks/model_overhead.py
    .venv/bin/python benchmarks/model_overhead.py --batch-sizes 1 --repeats 3 --precisions fp32
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils.flop_counter import FlopCounterMode
from transformers import BertTokenizer

from camabc_core.interfaces import AudioWindow, VideoWindow, Window
from camabc_core.model import BackchannelModel
from camabc_core.recipe import (
    AlignerSpec,
    DataSection,
    EncoderSpec,
    EncodersSection,
    FusionSpec,
    ModelSection,
    Recipe,
    WindowSection,
)

logger = logging.getLogger("model_overhead")

# Text windows of about 5 words; the tokenizer has one word piece per word (plus CLS and SEP).
TEXTS = ["so i think we should", "yeah that is right then", "진짜 그래 네 맞아 ㅋㅋ", "and then we went home"]
BERT_BASE_VOCABULARY_SIZE = 30522


def write_tokenizer(directory: Path) -> Path:
    """Save a WordPiece tokenizer whose vocabulary contains every word of ``TEXTS``."""
    words = sorted({word for text in TEXTS for word in text.split()} | {"ᄏᄏ"})
    tokens = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *words]
    vocabulary = {token: index for index, token in enumerate(tokens)}
    BertTokenizer(vocab=vocabulary, do_lower_case=False).save_pretrained(directory)
    return directory


def base_recipe(tokenizer_dir: Path) -> Recipe:
    """HuBERT, BERT and VideoMAE at their base sizes (the transformers config defaults), random weights."""
    encoders = EncodersSection(
        audio=EncoderSpec(name="hubert"),
        text=EncoderSpec(name="bert", tokenizer=str(tokenizer_dir),
                         config={"vocab_size": BERT_BASE_VOCABULARY_SIZE}),
        video=EncoderSpec(name="videomae"),
    )
    model = ModelSection(encoders=encoders, aligner=AlignerSpec(name="mma"), fusion=FusionSpec())
    return Recipe(data=DataSection(window=WindowSection(num_frames=12, image_size=224)), model=model)


def make_windows(batch_size: int, seed: int = 0) -> list[Window]:
    generator = np.random.default_rng(seed)
    windows = []
    for index in range(batch_size):
        samples = generator.normal(0.0, 0.1, 24000).astype(np.float32)  # 1.5 s at 16 kHz
        frames = generator.integers(0, 256, (12, 224, 224, 3), dtype=np.uint8)
        windows.append(Window(
            audio=AudioWindow(samples=samples, padding=np.zeros(24000, dtype=bool), sample_rate=16000),
            text=TEXTS[index % len(TEXTS)],
            video=VideoWindow(frames=frames, timestamps=np.arange(12) / 8.0),
        ))
    return windows


def head_only(model: BackchannelModel, outputs) -> torch.Tensor:
    """Aligner, fusion and head on encoder outputs computed beforehand."""
    aligned = model.aligner(outputs)
    return model.head(model.dropout(model.fusion(aligned.embeddings)))


def precision_context(precision: str) -> contextlib.AbstractContextManager:
    if precision == "bf16":
        return torch.autocast("cpu", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def count_flops(model: BackchannelModel) -> dict[str, int]:
    """Floating-point operations of the encoders and of the head part for one sample.

    The math attention backend is forced because ``FlopCounterMode`` does not count the fused CPU
    attention kernel. Operations outside matrix products and convolutions are not counted.
    """
    inputs = model.preprocess(make_windows(1))
    # no_grad, not inference_mode: HuBERT's weight-norm parametrisation fails under FlopCounterMode
    # in inference mode.
    with torch.no_grad(), sdpa_kernel(SDPBackend.MATH):
        with FlopCounterMode(display=False) as encoder_counter:
            outputs = model.encode(inputs)
        with FlopCounterMode(display=False) as head_counter:
            head_only(model, outputs)
    return {"encoders": encoder_counter.get_total_flops(), "head": head_counter.get_total_flops()}


def measure(model: BackchannelModel, batch_size: int, precision: str, repeats: int) -> dict[str, list[float]]:
    """Seconds of the encoders, the full model and the head part in each repeat, interleaved."""
    inputs = model.preprocess(make_windows(batch_size))
    with torch.inference_mode(), precision_context(precision):
        # This call also warms up the encoders (allocator, oneDNN kernel selection for these shapes).
        # The full model is the encoders plus the head part, so warming both up covers it too.
        outputs = model.encode(inputs)
        head_only(model, outputs)
        calls: dict[str, Callable[[], object]] = {
            "encoders": lambda: model.encode(inputs),
            "full": lambda: model(inputs),
            "head": lambda: head_only(model, outputs),
        }
        times: dict[str, list[float]] = {name: [] for name in calls}
        names = list(calls)
        for repeat in range(repeats):
            order = names[repeat % len(names):] + names[: repeat % len(names)]
            for name in order:
                start = time.perf_counter()
                calls[name]()
                times[name].append(time.perf_counter() - start)
            logger.info("batch %d %s repeat %d/%d: %s", batch_size, precision, repeat + 1, repeats,
                        ", ".join(f"{name} {times[name][-1] * 1000:.1f} ms" for name in names))
    return times


def format_table(rows: list[tuple[int, str, dict[str, list[float]]]]) -> str:
    """Markdown table of medians; the ratios are medians of the ratios within each repeat."""
    lines = [
        "| batch | precision | repeats | encoders (ms) | full model (ms) | aligner + fusion + head (ms) "
        "| head / encoders | (full - encoders) / encoders |",
        "|---:|---|---:|---:|---:|---:|---:|---:|",
    ]
    for batch_size, precision, times in rows:
        encoders, full, head = (statistics.median(times[key]) * 1000 for key in ("encoders", "full", "head"))
        head_share = statistics.median(h / e for h, e in zip(times["head"], times["encoders"]))
        full_excess = statistics.median((f - e) / e for f, e in zip(times["full"], times["encoders"]))
        lines.append(
            f"| {batch_size} | {precision} | {len(times['head'])} | {encoders:.0f} | {full:.0f} | {head:.1f} "
            f"| {head_share:.2%} | {full_excess:+.2%} |"
        )
    return "\n".join(lines)


def describe_machine() -> str:
    """CPU model, core and thread counts, load average and versions, for the benchmark record."""
    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    load = ", ".join(f"{value:.1f}" for value in os.getloadavg()) if hasattr(os, "getloadavg") else "n/a"
    return (
        f"{cpu}, {os.cpu_count()} cores, {torch.get_num_threads()} torch threads, load average {load}; "
        f"torch {torch.__version__}, Python {platform.python_version()}"
    )


def parse_arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 8], help="batch sizes to time")
    parser.add_argument("--precisions", nargs="+", choices=["fp32", "bf16"], default=["fp32", "bf16"],
                        help="fp32, or bf16 autocast")
    parser.add_argument("--repeats", type=int, default=5, help="timed repeats per batch size of 1")
    parser.add_argument("--large-batch-repeats", type=int, default=3,
                        help="timed repeats for batch sizes above 1 (they take seconds each on a CPU)")
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    arguments = parse_arguments(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s",
                        datefmt="%H:%M:%S")
    if arguments.threads:
        torch.set_num_threads(arguments.threads)
    torch.manual_seed(0)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as directory:
        model = BackchannelModel.from_recipe(base_recipe(write_tokenizer(Path(directory))), num_classes=4)
    model.eval()
    counts = model.parameter_counts()
    logger.info("parameters: %s", ", ".join(f"{name} {count / 1e6:.2f} M" for name, count in counts.items()))

    flops = count_flops(model)
    rows = []
    for batch_size in arguments.batch_sizes:
        repeats = arguments.repeats if batch_size == 1 else arguments.large_batch_repeats
        for precision in arguments.precisions:
            rows.append((batch_size, precision, measure(model, batch_size, precision, repeats)))

    encoder_parameters = sum(count for name, count in counts.items() if name.startswith("encoder."))
    print(f"\nMachine: {describe_machine()}")
    print(f"Parameters: encoders {encoder_parameters / 1e6:.1f} M, aligner {counts['aligner'] / 1e6:.2f} M, "
          f"head {counts['head'] / 1e3:.1f} k")
    print(f"FLOPs per sample: encoders {flops['encoders'] / 1e9:.1f} G, aligner + fusion + head "
          f"{flops['head'] / 1e9:.2f} G ({flops['head'] / flops['encoders']:.2%} of the encoders)")
    print(format_table(rows))
    print(f"Total run time: {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
