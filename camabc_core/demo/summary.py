"""The demo's closing summary: the work of each step, the path of every output, and what the scores mean."""

from __future__ import annotations

import json
import os
import shlex
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from camabc_core.demo.pipeline import DemoResult

RESULTS_PAGE = "docs/results.md"

DISCLAIMER = (
    "This model is a pipeline demonstration. Its encoders start from random weights, have 2 layers, "
    "and learn from 30 seconds of one call with a single backchannel, so its scores and its timeline "
    f"say nothing about how well CAMA-BC predicts backchannels. Results on real corpora are in "
    f"{RESULTS_PAGE}."
)


def display_path(path: Path) -> str:
    """Return ``path`` relative to the working directory when it lies inside it, else absolute."""
    absolute = Path(path).resolve()
    try:
        return str(absolute.relative_to(Path.cwd()))
    except ValueError:
        return str(absolute)


def output_paths(result: DemoResult) -> dict[str, Path]:
    """Map a label of every existing output to its path, in the order a reader would open them."""
    run_dir = result.run.run_dir
    paths = {
        "report (F1 table)": run_dir / "report.md",
        "confusion matrix": run_dir / "confusion_matrix.png",
        "training curves": run_dir / "training_curves.png",
        "metrics": run_dir / "metrics.json",
        "test predictions": run_dir / "predictions_test.json",
    }
    labels = {"csv": "timeline CSV", "json": "timeline JSON", "png": "timeline plot"}
    for kind, path in result.prediction.paths.items():
        paths[labels.get(kind, f"timeline {kind}")] = path
    paths.update({
        "training log": run_dir / "train.log",
        "resolved recipe": run_dir / "recipe.yaml",
        "model weights": run_dir / "checkpoints" / "best",
        "corpus (data.root)": result.corpus.directory,
        "speaker video": result.corpus.video,
        "speaker faces": result.corpus.synth_dir / "references",
    })
    if result.tokenizer_dir is not None:
        paths["tokenizer"] = result.tokenizer_dir
    paths["this summary"] = result.output_dir / "summary.txt"
    return {name: path for name, path in paths.items() if path.exists() or name == "this summary"}


def read_data_summary(result: DemoResult) -> dict[str, Any]:
    """Read the sample counts that training wrote into data_summary.json."""
    return json.loads((result.run.run_dir / "data_summary.json").read_text(encoding="utf-8"))


def _split_text(splits: dict[str, Any]) -> str:
    parts = []
    for name, split in splits.items():
        classes = ", ".join(f"{count} {label}" for label, count in split["per_class"].items())
        parts.append(f"{name} {split['samples']} ({classes})")
    return "; ".join(parts)


def predict_command(result: DemoResult) -> str:
    """Return the ``camabc predict`` command line that writes the demo's timeline."""
    timeline = result.prediction.timeline
    corpus = result.corpus.directory
    return shlex.join([
        "camabc", "predict", display_path(result.corpus.video),
        "--transcript", display_path(corpus / "sample.stm"),
        "--checkpoint", display_path(result.run.run_dir),
        "--speaker", timeline.speaker, "--listener", timeline.listener, "--step", f"{result.predict_step:g}",
        "--output", display_path(result.prediction.paths["csv"].parent),
    ])


def _corpus_lines(result: DemoResult) -> list[str]:
    corpus, sampling = result.corpus, result.recipe.data.sampling
    conversation = corpus.conversation
    words = Counter(word.speaker for word in conversation.words)
    people = " and ".join(f"{name} ({count} words)" for name, count in words.items())
    events = ", ".join(f"{event.listener} at {event.start:.2f}-{event.end:.2f} s"
                       for event in conversation.backchannels) or "none"
    data = read_data_summary(result)
    classes = ", ".join(result.run.metrics.class_names)
    return [
        f"1. Corpus: the real {conversation.duration:.0f} s phone call between {people}, MIT licence "
        "(LICENSE.md beside it).",
        f"   Backchannel labels by the stm reader's rule, {corpus.rule}: "
        f"{len(conversation.backchannels)} found ({events}).",
        f"   Labels: {result.recipe.data.label_scheme} ({classes}), NoBC points drawn at speaker word ends "
        f"({sampling.nobc_ratio:g} per backchannel, more than {sampling.nobc_tolerance_seconds:g} s from "
        "a backchannel onset).",
        f"   Samples: {_split_text(data['splits'])}; Context Alignment: {data['context_samples']} word ends.",
        f"   Video: python -m synth audio, cartoon reference and animator, "
        f"{corpus.video_size}x{corpus.video_size} pixels at {corpus.video_fps} fps, showing whoever speaks.",
    ]


def _training_lines(result: DemoResult) -> list[str]:
    recipe, metrics = result.recipe, result.run.metrics
    if result.tokenizer_dir is not None:
        lines = [f"2. Tokenizer: WordPiece, {result.tokenizer_size} tokens, trained on the training split's "
                 "text windows."]
    else:
        lines = ["2. Tokenizer: the text encoder's checkpoint provides it."]

    encoders = recipe.model.encoders
    names = [spec.name for spec in (encoders.audio, encoders.text, encoders.video) if spec is not None]
    stages = [f"{title} {stage.epochs} epochs" for title, stage in
              (("Context Alignment", recipe.context_alignment),
               ("Backchannel Alignment", recipe.backchannel_alignment)) if stage is not None]
    window = recipe.data.window
    lines.append(
        f"3. Training: {', '.join(names)} encoders with aligner {recipe.model.aligner.name} and fusion "
        f"{recipe.model.fusion.name}; {' then '.join(stages)}; windows of {window.audio_seconds:g} s audio, "
        f"{window.text_words} words and {window.num_frames} frames of {window.image_size} pixels."
    )

    split = recipe.evaluation.split
    scores = ", ".join(f"{name} {100 * f1:.1f}" for name, f1 in zip(metrics.class_names, metrics.f1))
    lines.append(f"   {split.capitalize()} split: macro F1 {100 * metrics.macro_f1:.1f} "
                 f"(per class F1: {scores}), accuracy {100 * metrics.accuracy:.1f}.")
    if metrics.absent_classes:
        lines.append(f"   The {split} split has no {', '.join(metrics.absent_classes)} sample, so that F1 "
                     "counts as 0 in the macro average.")
    return lines


def _prediction_lines(result: DemoResult) -> list[str]:
    timeline = result.prediction.timeline
    grid = f" and every {result.predict_step:g} s" if result.predict_step else ""
    return [
        f"4. Prediction: {timeline.times.size} points (every word end of {timeline.speaker}{grid}) for "
        f"listener {timeline.listener}; {len(timeline.moments)} backchannel moments.",
        f"   Same command: {predict_command(result)}",
    ]


def describe_steps(result: DemoResult) -> list[str]:
    """Describe each step in numbered lines, with its counts and scores."""
    return [*_corpus_lines(result), *_training_lines(result), *_prediction_lines(result)]


def describe_demo(result: DemoResult) -> str:
    """Render the text the demo prints at the end and saves as summary.txt."""
    total = sum(result.seconds.values())
    timings = ", ".join(f"{name} {seconds:.0f} s" for name, seconds in result.seconds.items())
    paths = output_paths(result)
    width = max(len(name) for name in paths)
    lines = [
        f"camabc demo finished in {total:.0f} s ({timings}).",
        "",
        "What it did:",
        *describe_steps(result),
        "",
        "Outputs:",
        *(f"  {name:<{width}}  {display_path(path)}{os.sep if path.is_dir() else ''}"
          for name, path in paths.items()),
        "",
        DISCLAIMER,
    ]
    return "\n".join(lines)


def demo_facts(result: DemoResult) -> dict[str, Any]:
    """Collect the summary's numbers and paths as JSON-ready data (saved as demo.json)."""
    conversation = result.corpus.conversation
    timeline = result.prediction.timeline
    return {
        "started": result.started,
        "seconds": {name: round(seconds, 2) for name, seconds in result.seconds.items()},
        "backchannels": [{"listener": e.listener, "start": e.start, "end": e.end}
                         for e in conversation.backchannels],
        "samples": read_data_summary(result),
        "metrics": result.run.metrics.to_dict(),
        "prediction": {"speaker": timeline.speaker, "listener": timeline.listener,
                       "points": int(timeline.times.size),
                       "moments": [{"time": m.time, "class": m.class_name, "score": m.score}
                                   for m in timeline.moments]},
        "outputs": {name: str(path) for name, path in output_paths(result).items()},
        "note": DISCLAIMER,
    }
