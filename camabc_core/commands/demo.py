"""``camabc demo``: build a corpus from the bundled call, train a tiny model, evaluate and predict."""

from __future__ import annotations

import argparse
from pathlib import Path

from camabc_core.commands.arguments import add_override_argument

DESCRIPTION = """\
Run the whole pipeline on the real two-person phone call in data/samples/pyannote_call, on a CPU:

  1. build a corpus: the call's audio, turns and transcript, backchannel labels from the stm
     reader's short-turn rule, NoBC points at speaker word ends, and a cartoon speaker video made
     by `python -m synth audio`;
  2. train a WordPiece tokenizer and a tiny CAMA-BC (2-layer HuBERT, BERT and VideoMAE with random
     weights) with Context Alignment, then Backchannel Alignment (recipes/demo-cpu.yaml);
  3. evaluate it on the test split and write the report, confusion matrix and training curves;
  4. run `camabc predict` on the call and write the timeline CSV, JSON and plot.

It prints the path of every output. The tiny model only demonstrates the pipeline, and its scores
are no measure of the method (docs/results.md has results on real corpora). It runs from a source
checkout of camabc, which has the call and the recipe.
"""


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "demo", help="run the whole pipeline on a bundled real phone call (CPU, a few minutes)",
        description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--output", type=Path, default=Path("demo-output"), metavar="DIR",
                        help="output folder; the outputs of an earlier demo in it are replaced "
                             "(default: demo-output)")
    parser.add_argument("--video-size", type=int, default=128, metavar="PIXELS",
                        help="width and height of the synthesized video, an even number (default: 128)")
    parser.add_argument("--video-fps", type=int, default=10, metavar="FPS",
                        help="frames per second of the synthesized video (default: 10)")
    parser.add_argument("--predict-step", type=float, default=0.1, metavar="SECONDS",
                        help="grid spacing of the prediction timeline, added to the speaker's word ends; "
                             "0 predicts at word ends only (default: 0.1)")
    add_override_argument(parser)
    parser.set_defaults(func=run_demo_command)


def run_demo_command(args: argparse.Namespace) -> int:
    from camabc_core.demo import DemoSettings, run_demo
    from camabc_core.demo.summary import describe_demo

    settings = DemoSettings(output_dir=args.output, overrides=tuple(args.overrides),
                            video_size=args.video_size, video_fps=args.video_fps,
                            predict_step=args.predict_step)
    result = run_demo(settings)
    print()
    print(describe_demo(result))
    return 0
