"""The demo's steps in order, each timed: corpus, tokenizer, training with evaluation, prediction.

Layout of the output folder (``demo-output`` by default):

- ``corpus/``: the call (wav, rttm, stm, licence note) and ``sample.mp4``; the recipe's ``data.root``
- ``video/``: the synth run that made the video (manifest.jsonl, speakers.csv, references/)
- ``tokenizer/``: the WordPiece tokenizer of the text encoder
- ``run/``: the training run (report.md, metrics.json, confusion_matrix.png, training_curves.png,
  checkpoints/, train.log, recipe.yaml)
- ``prediction/``: the ``camabc predict`` timeline (timeline.csv, timeline.json, timeline.png)
- ``summary.txt``: what the demo printed at the end; ``demo.json``: the same facts as JSON
"""

from __future__ import annotations

import contextlib
import datetime
import json
import logging
import shutil
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import attrs

from camabc_core import __version__
from camabc_core.demo.corpus import FILE_ID, SAMPLE_DIR, DemoCorpus, build_demo_corpus
from camabc_core.errors import CamabcError
from camabc_core.recipe import Recipe

if TYPE_CHECKING:
    from camabc_core.inference.pipeline import PredictionResult
    from camabc_core.training.runner import RunResult

logger = logging.getLogger(__name__)

#: The tiny CPU recipe, in a source checkout of camabc.
DEMO_RECIPE = Path(__file__).resolve().parents[2] / "recipes" / "demo-cpu.yaml"

CORPUS_DIR = "corpus"
VIDEO_DIR = "video"
TOKENIZER_DIR = "tokenizer"
RUN_DIR = "run"
PREDICTION_DIR = "prediction"
SUMMARY_FILE = "summary.txt"
#: Marks a folder as the demo's, so a second run may replace its outputs (and nothing else).
STATE_FILE = "demo.json"
OUTPUT_ENTRIES = (CORPUS_DIR, VIDEO_DIR, TOKENIZER_DIR, RUN_DIR, PREDICTION_DIR, SUMMARY_FILE, STATE_FILE)

#: Recipe keys the demo sets to paths inside the output folder; use --output to move them.
MANAGED_KEYS = ("data.root", "run.output_dir", "model.encoders.text.tokenizer")

# The training split has about 75 words of text, so every piece that occurs fits well within this.
TOKENIZER_VOCAB_SIZE = 1000


@attrs.frozen
class DemoSettings:
    """Options of one ``camabc demo`` run (the command-line flags)."""

    output_dir: Path = Path("demo-output")
    #: ``KEY=VALUE`` recipe overrides applied to the demo recipe, as ``--set`` reads them.
    overrides: tuple[str, ...] = ()
    #: Width and height of the synthesized video, in pixels (even, for H.264).
    video_size: int = 128
    #: Frames per second of the synthesized video.
    video_fps: int = 10
    #: Seconds between the timeline's grid points, added to the speaker's word ends; 0 predicts at
    #: word ends only.
    predict_step: float = 0.1
    recipe_path: Path = DEMO_RECIPE
    sample_dir: Path = SAMPLE_DIR


@attrs.frozen
class DemoResult:
    """Everything the demo made; ``seconds`` maps each step to its wall time."""

    output_dir: Path
    corpus: DemoCorpus
    recipe: Recipe
    #: None when the recipe's text encoder loads its tokenizer from a checkpoint.
    tokenizer_dir: Path | None
    #: Tokens in the trained tokenizer (0 when none was trained).
    tokenizer_size: int
    run: RunResult
    prediction: PredictionResult
    #: Grid step of the prediction timeline in seconds (0: word ends only).
    predict_step: float
    seconds: dict[str, float]
    #: Start time, UTC, ISO 8601.
    started: str


def check_settings(settings: DemoSettings) -> None:
    """Raise CamabcError on an invalid option or a missing recipe, before any work starts."""
    if settings.video_size < 16 or settings.video_size % 2:
        raise CamabcError(
            f"--video-size must be an even number of pixels, at least 16; got {settings.video_size}"
        )
    if settings.video_fps < 1:
        raise CamabcError(f"--video-fps must be at least 1, got {settings.video_fps}")
    if settings.predict_step < 0:
        raise CamabcError(f"--predict-step must be >= 0 seconds, got {settings.predict_step}")
    if not settings.recipe_path.is_file():
        raise CamabcError(
            f"the demo recipe {settings.recipe_path} does not exist; camabc demo runs from a source "
            "checkout of camabc, which has it in recipes/demo-cpu.yaml"
        )
    for override in settings.overrides:
        key = override.partition("=")[0].strip()
        if key in MANAGED_KEYS:
            raise CamabcError(f"--set {override}: camabc demo sets {key} to a path inside --output; "
                              "choose the output folder with --output instead")


def prepare_output_dir(output_dir: Path) -> str:
    """Create ``output_dir``, or clear the outputs of an earlier demo in it.

    A non-empty folder without the demo's state file is left untouched and rejected, so the demo
    never deletes files it did not write. Returns the start time (UTC, ISO 8601) it records there.
    """
    from camabc_core.training.atomic import atomic_write_json

    if output_dir.exists() and not output_dir.is_dir():
        raise CamabcError(f"--output {output_dir} is a file; choose a folder")
    if output_dir.is_dir() and any(output_dir.iterdir()):
        if not (output_dir / STATE_FILE).is_file():
            raise CamabcError(f"--output {output_dir} is not empty and contains no earlier demo "
                              f"({STATE_FILE} is missing); choose another folder or empty this one")
        logger.info("replacing the outputs of the earlier demo in %s", output_dir)
        for name in OUTPUT_ENTRIES:
            path = output_dir / name
            if path.is_dir():
                shutil.rmtree(path)
            elif path.exists():
                path.unlink()
    output_dir.mkdir(parents=True, exist_ok=True)
    started = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    atomic_write_json(output_dir / STATE_FILE,
                      {"camabc_version": __version__, "status": "running", "started": started})
    return started


@contextlib.contextmanager
def torch_threads(count: int | None) -> Iterator[None]:
    """Run the block with ``count`` torch intra-op threads (None keeps the current number)."""
    import torch

    previous = torch.get_num_threads()
    if count is not None:
        torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


@contextlib.contextmanager
def timed_step(seconds: dict[str, float], name: str) -> Iterator[None]:
    """Record the wall time of one step under ``name`` and log it."""
    logger.info("demo step: %s", name)
    started = time.perf_counter()
    yield
    seconds[name] = time.perf_counter() - started
    logger.info("demo step: %s took %.1f s", name, seconds[name])


def load_demo_recipe(settings: DemoSettings, extra_overrides: Sequence[str] = ()) -> Recipe:
    """Load the demo recipe with the output paths and the user's overrides applied."""
    from camabc_core.recipe_loading import load_recipe

    output_dir = settings.output_dir
    paths = [f"data.root={yaml_string(output_dir / CORPUS_DIR)}", f"run.output_dir={yaml_string(output_dir)}"]
    return load_recipe(settings.recipe_path, [*paths, *extra_overrides, *settings.overrides])


def yaml_string(path: Path) -> str:
    """Quote a path for a ``KEY=VALUE`` override, whose value is read as YAML (a JSON string is YAML)."""
    return json.dumps(str(path))


def needs_tokenizer(recipe: Recipe) -> bool:
    """Return whether the demo must train a tokenizer: a text encoder built from a config has none."""
    text = recipe.model.encoders.text
    return text is not None and text.checkpoint is None


def train_tokenizer(recipe: Recipe, tokenizer_dir: Path) -> int:
    """Train the WordPiece tokenizer on the training split's text windows; return its size."""
    from camabc_core.training.tokenizer import train_wordpiece, training_texts

    texts = training_texts(recipe)
    tokenizer = train_wordpiece(texts, tokenizer_dir, vocab_size=TOKENIZER_VOCAB_SIZE, min_frequency=1)
    return len(tokenizer)


def predict_call(corpus: DemoCorpus, run_dir: Path, prediction_dir: Path, step: float) -> PredictionResult:
    """Run ``camabc predict`` on the call's video and transcript with the trained run."""
    from camabc_core.inference.pipeline import PredictionSettings, run_prediction

    transcript = corpus.directory / f"{FILE_ID}.stm"
    settings = PredictionSettings(step=step or None, device="cpu")
    return run_prediction(corpus.video, transcript, run_dir, prediction_dir, settings)


def run_demo(settings: DemoSettings) -> DemoResult:
    """Run every demo step into ``settings.output_dir``; write summary.txt and demo.json at the end."""
    from camabc_core.demo.summary import demo_facts, describe_demo
    from camabc_core.training.atomic import atomic_write_json, atomic_write_text
    from camabc_core.training.runner import train_run

    check_settings(settings)
    output_dir = settings.output_dir
    recipe = load_demo_recipe(settings)  # fails early on a bad --set, before any output is written
    if recipe.backchannel_alignment is None:
        raise CamabcError("backchannel_alignment is null, but the demo evaluates the classifier and "
                          "predicts with it; keep the backchannel_alignment section")
    started = prepare_output_dir(output_dir)
    seconds: dict[str, float] = {}

    with timed_step(seconds, "corpus"):
        corpus = build_demo_corpus(settings.sample_dir, output_dir / CORPUS_DIR, output_dir / VIDEO_DIR,
                                   video_size=settings.video_size, video_fps=settings.video_fps,
                                   seed=recipe.run.seed, reader_options=recipe.data.reader_options)
    tokenizer_dir, tokenizer_size = None, 0
    if needs_tokenizer(recipe):
        tokenizer_dir = output_dir / TOKENIZER_DIR
        recipe = load_demo_recipe(settings, [f"model.encoders.text.tokenizer={yaml_string(tokenizer_dir)}"])
        with timed_step(seconds, "tokenizer"):
            tokenizer_size = train_tokenizer(recipe, tokenizer_dir)
    with torch_threads(recipe.run.cpu_threads):
        with timed_step(seconds, "training and evaluation"):
            run = train_run(recipe, output_dir / RUN_DIR)
        with timed_step(seconds, "prediction"):
            prediction = predict_call(corpus, output_dir / RUN_DIR, output_dir / PREDICTION_DIR,
                                      settings.predict_step)

    result = DemoResult(output_dir, corpus, recipe, tokenizer_dir, tokenizer_size, run, prediction,
                        settings.predict_step, seconds, started)
    atomic_write_text(output_dir / SUMMARY_FILE, describe_demo(result) + "\n")
    atomic_write_json(output_dir / STATE_FILE,
                      {"camabc_version": __version__, "status": "done", **demo_facts(result)})
    return result
