"""Measure per-sample prediction latency end to end, stage by stage, offline and streaming.

The model is CAMA-BC at base sizes with random weights. Its encoders are HuBERT base, BERT base and
VideoMAE base (the transformers config defaults: 12 layers, width 768). MMA aligns layers 9-11 with
projection size 256 and 4 heads, then come the hierarchical fusion and a 4-class head. Windows are
1.5 s, 5 words and 12 frames of 224 x 224. The media is generated: a 640 x 360, 25 fps H.264 video
with 48 kHz stereo AAC audio.

One sample (batch of 1) is timed per stage, under ``torch.inference_mode``:

    decode         cut the window out of the media (``WindowExtractor.extract``): audio slice with
                   the listener's speech zeroed, video frames decoded and resized. The whole audio
                   track is decoded once per file beforehand; that one-off cost is reported apart.
    preprocessing  ``model.preprocess``: HuBERT feature extractor, BERT tokenizer, VideoMAE image
                   processor.
    encoders       each encoder's ``forward`` (the camabc wrapper around the transformers model).
    aligner+head   aligner, fusion and linear head on the encoder outputs.
    bare encoders  the transformers models called directly on the same inputs, in the same run,
                   to show what the camabc wrappers add.

Samples lie 0.1 s apart, as in ``camabc predict``'s timeline (the video decoder moves forward).
The streaming step is ``StreamingPredictor``: push 0.1 s of audio and its frames, then predict.

    .venv/bin/python benchmarks/latency.py
    .venv/bin/python benchmarks/latency.py --modalities audio,text --samples 20
    .venv/bin/python benchmarks/latency.py --size tiny --samples 3   # smoke run, seconds
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import av
import numpy as np
import torch

from camabc_core.inference.streaming import StreamingPredictor
from camabc_core.inference.timeline import class_probabilities
from camabc_core.media import AudioSource
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
from camabc_core.records import Conversation, Sample, Word
from camabc_core.windows import WindowExtractor

logger = logging.getLogger("latency")

FUSIONS = {("audio", "text", "video"): "hierarchical", ("audio", "text"): "concat",
           ("audio",): "audio_only", ("text",): "text_only", ("video",): "video_only"}
BERT_BASE_VOCABULARY_SIZE = 30522
# Smoke-run sizes (2 layers, small widths): their timings do not predict those of real models.
TINY_CONFIGS = {
    "audio": {"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2,
              "intermediate_size": 37, "conv_dim": [32] * 7, "num_conv_pos_embeddings": 16,
              "num_conv_pos_embedding_groups": 2},
    "text": {"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 37},
    "video": {"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 37},
}
WORDS = ["so", "i", "think", "we", "should", "go", "there", "and", "then", "we", "went", "home",
         "yeah", "that", "is", "right"]
STEP_SECONDS = 0.1


def write_media(path: Path, seconds: float, width: int = 640, height: int = 360, fps: int = 25) -> Path:
    """Write an H.264 video of a moving gradient with 48 kHz stereo AAC speech-like audio."""
    rate = 48000
    with av.open(str(path), "w") as container:
        video = container.add_stream("libx264", rate=fps, options={"preset": "veryfast"})
        video.width, video.height, video.pix_fmt = width, height, "yuv420p"
        audio = container.add_stream("aac", rate=rate, layout="stereo")
        x = np.linspace(0, 255, width, dtype=np.float32)[None, :]
        y = np.linspace(0, 255, height, dtype=np.float32)[:, None]
        for index in range(round(seconds * fps)):
            image = np.stack([(x + 4 * index) % 256 + 0 * y, (y + 2 * index) % 256 + 0 * x,
                              (x + y) / 2 % 256], axis=-1).astype(np.uint8)
            for packet in video.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                container.mux(packet)
        for packet in video.encode():
            container.mux(packet)
        time_axis = np.arange(round(seconds * rate)) / rate
        signal = (0.3 * (0.5 + 0.5 * np.sin(2 * np.pi * 3 * time_axis)) * np.sin(2 * np.pi * 220 * time_axis))
        stereo = np.stack([signal, signal]).astype(np.float32)
        for begin in range(0, stereo.shape[1], 1024):
            frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(stereo[:, begin:begin + 1024]),
                                               format="fltp", layout="stereo")
            frame.sample_rate, frame.pts = rate, begin
            for packet in audio.encode(frame):
                container.mux(packet)
        for packet in audio.encode():
            container.mux(packet)
    return path


def dialogue_words(seconds: float) -> list[Word]:
    """Return words of speaker "A" every 0.3 s and one word of listener "B" every 2 s."""
    words = [Word("A", round(start, 3), round(start + 0.25, 3), WORDS[index % len(WORDS)])
             for index, start in enumerate(np.arange(0.05, seconds - 0.3, 0.3))]
    words += [Word("B", start + 0.1, start + 0.3, "yeah") for start in np.arange(1.0, seconds - 0.3, 2.0)]
    return sorted(words, key=lambda word: (word.start, word.end))


def build_model(size: str, modalities: tuple[str, ...],
                tokenizer_dir: Path) -> tuple[BackchannelModel, Recipe]:
    def spec(modality: str, name: str, **options: Any) -> EncoderSpec | None:
        if modality not in modalities:
            return None
        config = dict(TINY_CONFIGS[modality]) if size == "tiny" else {}
        if modality == "text":
            config["vocab_size"] = BERT_BASE_VOCABULARY_SIZE
        return EncoderSpec(name=name, config=config, **options)

    encoders = EncodersSection(audio=spec("audio", "hubert"),
                               text=spec("text", "bert", tokenizer=str(tokenizer_dir)),
                               video=spec("video", "videomae"))
    layers = [0, 1] if size == "tiny" else [9, 10, 11]
    recipe = Recipe(
        data=DataSection(window=WindowSection(num_frames=12, image_size=224)),
        model=ModelSection(encoders=encoders, aligner=AlignerSpec(name="mma", layers=layers),
                           fusion=FusionSpec(name=FUSIONS[modalities])),
    )
    torch.manual_seed(0)
    model = BackchannelModel.from_recipe(recipe, num_classes=4)
    return model.eval(), recipe


def write_tokenizer(directory: Path) -> Path:
    from transformers import BertTokenizer

    vocabulary = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *sorted(set(WORDS))]
    BertTokenizer(vocab={token: index for index, token in enumerate(vocabulary)},
                  do_lower_case=False).save_pretrained(directory)
    return directory


def timed(function: Callable[[], Any]) -> tuple[np.ndarray, Any]:
    """Run ``function``; return [wall-clock seconds, CPU seconds of this process] and its result.

    CPU time counts every thread of the process, so with T busy threads it approaches T x wall time.
    Other processes on a shared machine inflate wall time much more than CPU time.
    """
    wall, cpu = time.perf_counter(), time.process_time()
    result = function()
    return np.array([time.perf_counter() - wall, time.process_time() - cpu]), result


def bare_forward(encoder: torch.nn.Module, inputs: dict[str, torch.Tensor]) -> Any:
    """Call the wrapped transformers model directly, as a user of transformers would."""
    if encoder.modality == "audio":
        # HuBERT base (group norm) was trained without an attention mask; one unpadded sample needs none.
        return encoder.model(inputs["input_values"], output_hidden_states=True)
    return encoder.model(**inputs, output_hidden_states=True)


def time_sample(model: BackchannelModel, extractor: WindowExtractor, sample: Sample) -> dict[str, np.ndarray]:
    """Time every stage of one sample; returns [wall, CPU] seconds per stage."""
    timings: dict[str, np.ndarray] = {}
    with torch.inference_mode():
        timings["decode"], window = timed(lambda: extractor.extract(sample))
        timings["preprocessing"], inputs = timed(lambda: model.preprocess([window]))
        outputs = {}
        for modality in model.modalities:
            encoder = model.encoders[modality]
            timings[f"encoder.{modality}"], outputs[modality] = timed(
                lambda e=encoder, m=modality: e(**inputs[m]))
        timings["encoders"] = sum(timings[f"encoder.{m}"] for m in model.modalities)

        def head_part() -> torch.Tensor:
            aligned = model.aligner(outputs)
            return model.head(model.dropout(model.fusion(aligned.embeddings)))

        timings["aligner+head"], logits = timed(head_part)
        for modality in model.modalities:
            encoder = model.encoders[modality]
            timings[f"bare.{modality}"], _ = timed(lambda e=encoder, m=modality: bare_forward(e, inputs[m]))
        timings["bare encoders"] = sum(timings[f"bare.{m}"] for m in model.modalities)
        # Cross-check: the staged run gives the model's own output.
        expected = model(inputs).logits
        if not torch.allclose(logits, expected, atol=1e-5):
            raise RuntimeError("the staged forward pass differs from model(inputs); the benchmark is stale")
    timings["end to end"] = (timings["decode"] + timings["preprocessing"] + timings["encoders"]
                             + timings["aligner+head"])
    return timings


def streaming_steps(model: BackchannelModel, recipe: Recipe, media: Path, words: list[Word],
                    start: float, steps: int) -> list[dict[str, np.ndarray]]:
    """Feed the stream up to ``start``, then time ``steps`` steps of 0.1 s (push + predict)."""
    rate = recipe.data.window.sample_rate
    audio = AudioSource.from_file(media, rate).signal()
    with av.open(str(media)) as container:
        stream = container.streams.video[0]
        end = start + steps * STEP_SECONDS
        frames = [(float(frame.pts * stream.time_base), frame) for frame in container.decode(stream)
                  if start - 2.0 <= float(frame.pts * stream.time_base) < end]
    predictor = StreamingPredictor(model, recipe, ("NoBC", "Continuer", "Understanding", "Empathy"),
                                   speaker="A", listener="B")
    pushed = {"samples": 0, "frames": 0, "words": 0}

    def push_until(time_point: float) -> None:
        target = round(time_point * rate)
        predictor.push_audio(audio[pushed["samples"]:target])
        pushed["samples"] = target
        while pushed["words"] < len(words) and words[pushed["words"]].start < time_point:
            predictor.push_word(words[pushed["words"]])
            pushed["words"] += 1
        if "video" in model.modalities:
            while pushed["frames"] < len(frames) and frames[pushed["frames"]][0] < time_point:
                predictor.push_frame(frames[pushed["frames"]][1], frames[pushed["frames"]][0])
                pushed["frames"] += 1

    push_until(start)
    predictor.predict()  # warm-up
    results = []
    for step in range(1, steps + 1):
        now = start + step * STEP_SECONDS
        push_seconds, _ = timed(lambda n=now: push_until(n))
        predict_seconds, _ = timed(predictor.predict)
        results.append({"push": push_seconds, "predict": predict_seconds,
                        "step": push_seconds + predict_seconds})
    return results


def summarise(rows: list[dict[str, np.ndarray]]) -> dict[str, dict[str, float]]:
    """Median and maximum wall-clock time and median CPU time of every stage, in milliseconds."""
    summary = {}
    for key in rows[0]:
        wall = [row[key][0] for row in rows]
        cpu = [row[key][1] for row in rows]
        summary[key] = {"median_ms": 1000 * statistics.median(wall), "max_ms": 1000 * max(wall),
                        "median_cpu_ms": 1000 * statistics.median(cpu)}
    return summary


def print_table(title: str, summary: dict[str, dict[str, float]]) -> None:
    print(f"\n{title}\n")
    print("| stage | median wall (ms) | max wall (ms) | median CPU (ms) |\n|---|---:|---:|---:|")
    for key, value in summary.items():
        print(f"| {key} | {value['median_ms']:.1f} | {value['max_ms']:.1f} | {value['median_cpu_ms']:.1f} |")


def parse_arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", choices=("base", "tiny"), default="base",
                        help="encoder sizes (default: base)")
    parser.add_argument("--modalities", default="audio,text,video",
                        help="comma-separated modalities (default: audio,text,video)")
    parser.add_argument("--samples", type=int, default=8,
                        help="timed samples after one warm-up sample (default: 8)")
    parser.add_argument("--streaming-steps", type=int, default=8,
                        help="timed streaming steps after one warm-up step (default: 8)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    parser.add_argument("--json", type=Path, default=None, help="also write the results to this file")
    return parser.parse_args()


def run_benchmark(args: argparse.Namespace, modalities: tuple[str, ...]) -> dict[str, Any]:
    """Generate the media, build the model and time the offline and streaming paths."""
    with tempfile.TemporaryDirectory(prefix="camabc-latency-") as workspace:
        workspace = Path(workspace)
        seconds = 6.0 + (args.samples + args.streaming_steps) * STEP_SECONDS
        media = write_media(workspace / "call.mp4", seconds)
        words = dialogue_words(seconds)
        model, recipe = build_model(args.size, modalities, write_tokenizer(workspace / "tokenizer"))

        conversation = Conversation(id="call", words=tuple(words), backchannels=(), speakers=("A", "B"),
                                    audio_path=media, video_path=media if "video" in modalities else None)
        file_decode, _ = timed(lambda: AudioSource.from_file(media, recipe.data.window.sample_rate))
        extractor = WindowExtractor([conversation], recipe.data.window, modalities)
        times = 2.0 + STEP_SECONDS * np.arange(args.samples + 1)
        rows = [time_sample(model, extractor, Sample("call", float(t), "A", "B")) for t in times]
        streaming = streaming_steps(model, recipe, media, words, start=4.0, steps=args.streaming_steps)
        end_to_end, _ = timed(lambda: class_probabilities(model, [extractor.extract(
            Sample("call", float(times[-1]), "A", "B"))]))
        extractor.close()
    return {
        "size": args.size,
        "modalities": modalities,
        "media_seconds": seconds,
        "threads": torch.get_num_threads(),
        "file_decode_ms": (1000 * file_decode).tolist(),
        "offline": summarise(rows[1:]),  # the first sample warms up caches and kernels
        "streaming": summarise(streaming),
        "end_to_end_call_ms": (1000 * end_to_end).tolist(),
        "load_average": os.getloadavg() if hasattr(os, "getloadavg") else None,
    }


def report(results: dict[str, Any], samples: int, steps: int) -> None:
    offline = results["offline"]
    print(f"camabc latency: size {results['size']}, modalities {', '.join(results['modalities'])}, "
          f"torch {torch.__version__}, {results['threads']} threads, {platform.machine()}, "
          f"{os.cpu_count()} CPUs")
    load = results["load_average"]
    if load is not None:
        # Other processes on the machine slow every stage alike; record how busy it was.
        print(f"load average at the end (1/5/15 min): {load[0]:.2f} / {load[1]:.2f} / {load[2]:.2f}")
    print(f"one-off: decode the whole {results['media_seconds']:.1f} s audio track: "
          f"{results['file_decode_ms'][0]:.1f} ms wall, {results['file_decode_ms'][1]:.1f} ms CPU")
    print_table(f"per sample (batch 1), {samples} samples {STEP_SECONDS} s apart", offline)
    end_to_end = results["end_to_end_call_ms"]
    print(f"\nend to end in one call (extract + class_probabilities): {end_to_end[0]:.1f} ms wall, "
          f"{end_to_end[1]:.1f} ms CPU")
    for clock, key in (("wall", "median_ms"), ("CPU", "median_cpu_ms")):
        encoders = offline["encoders"][key]
        overhead = offline["decode"][key] + offline["preprocessing"][key]
        print(f"decode + preprocessing ({clock}) = {overhead:.1f} ms = {100 * overhead / encoders:.1f} % "
              f"of the encoders ({encoders:.1f} ms); target <= 10 %")
    print_table(f"streaming step ({STEP_SECONDS} s of input, then predict), {steps} steps",
                results["streaming"])


def main() -> None:
    args = parse_arguments()
    logging.basicConfig(level=logging.ERROR)
    if args.threads:
        torch.set_num_threads(args.threads)
    modalities = tuple(m for m in ("audio", "text", "video") if m in args.modalities.split(","))
    results = run_benchmark(args, modalities)
    report(results, args.samples, args.streaming_steps)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
