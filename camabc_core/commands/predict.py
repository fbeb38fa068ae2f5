"""``camabc predict``: a timeline of backchannel probabilities for one media file and its transcript."""

from __future__ import annotations

import argparse
from pathlib import Path

from camabc_core.errors import CamabcError
from camabc_core.inference.moments import DEFAULT_MIN_GAP_SECONDS, DEFAULT_THRESHOLD
from camabc_core.inference.points import MIN_STEP_SECONDS, check_step
from camabc_core.inference.transcripts import TRANSCRIPT_FORMATS

#: Moments listed on the terminal; the files always contain all of them.
PRINTED_MOMENTS = 20

DESCRIPTION = """\
Predict when and how the listener should backchannel while the speaker talks. The model runs at the
end of every speaker word and every --step seconds. Output files in --output: timeline.csv and
timeline.json (class probabilities per point, and the predicted backchannel moments) and
timeline.png (the probabilities under the waveform, with the words marked).

A moment is a local maximum of 1 - P(NoBC) that reaches --threshold (scores compared at 4 decimals;
the first point of a plateau); of two moments closer than --min-gap seconds only the higher one is
kept. Its class is the most probable backchannel class. Points where the listener is talking are no
moments unless --moments-in-listener-speech is given.

Without --speaker and --listener, the person with the most words is the speaker and the person with
the next most words the listener.
"""


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "predict", help="timeline of backchannel probabilities for a media file",
        description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("media", type=Path,
                        help="video with audio, or audio only when the model uses no video")

    # Inputs.
    parser.add_argument("--transcript", type=Path, required=True,
                        help="timed words: word TSV (speaker, start, end, text), STM, or a dataset "
                             "manifest (JSONL)")
    parser.add_argument("--transcript-format", choices=("auto", *TRANSCRIPT_FORMATS), default="auto",
                        help="format of --transcript; auto chooses by file extension (default: auto)")
    parser.add_argument("--conversation", default=None,
                        help="conversation id to take from a manifest that lists several "
                             "(default: the one whose media file name matches MEDIA)")
    parser.add_argument("--checkpoint", type=Path, required=True, metavar="RUN_DIR",
                        help="run directory written by `camabc train`")

    # Roles.
    parser.add_argument("--listener", default=None,
                        help="person who would backchannel, as named in the transcript")
    parser.add_argument("--speaker", default=None,
                        help="person the listener reacts to (default: see below)")

    # Prediction points and moments.
    parser.add_argument("--step", type=float, default=0.1,
                        help="seconds between the grid points predicted besides the speaker's word ends, "
                             f"at least {MIN_STEP_SECONDS:g}; 0 predicts at word ends only (default: 0.1)")
    parser.add_argument("--threshold", type=float, default=DEFAULT_THRESHOLD,
                        help=f"minimum 1 - P(NoBC) of a backchannel moment (default: {DEFAULT_THRESHOLD})")
    parser.add_argument("--min-gap", type=float, default=DEFAULT_MIN_GAP_SECONDS,
                        help=f"minimum seconds between two moments (default: {DEFAULT_MIN_GAP_SECONDS})")
    parser.add_argument("--moments-in-listener-speech", action="store_true",
                        help="let moments fall where the listener is talking (by default they do not: "
                             "the listener already holds the turn)")
    parser.add_argument("--skip-malformed", action="store_true",
                        help="skip malformed transcript lines (counted in one warning) instead of stopping")

    # Output and execution.
    parser.add_argument("--output", type=Path, default=None,
                        help="output directory (default: predictions/<media file name without extension>)")
    parser.add_argument("--batch-size", type=int, default=16, help="windows per forward pass (default: 16)")
    parser.add_argument("--device", default=None,
                        help="torch device: cpu, cuda, cuda:N or mps (default: cuda if available, else cpu)")
    parser.add_argument("--no-plot", action="store_true", help="skip timeline.png")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from camabc_core.inference.pipeline import PredictionSettings, resolve_device, run_prediction

    if args.step != 0:  # 0 means word ends only
        check_step(args.step)
    if not 0.0 <= args.threshold <= 1.0:
        raise CamabcError(f"--threshold must be between 0 and 1, got {args.threshold}")
    if args.min_gap < 0:
        raise CamabcError(f"--min-gap must be >= 0 seconds, got {args.min_gap}")
    if args.batch_size < 1:
        raise CamabcError(f"--batch-size must be >= 1, got {args.batch_size}")
    device = str(resolve_device(args.device))
    output_dir = args.output or Path("predictions") / args.media.stem

    settings = PredictionSettings(
        speaker=args.speaker, listener=args.listener, step=args.step or None,
        threshold=args.threshold, min_gap_seconds=args.min_gap, batch_size=args.batch_size,
        transcript_format=args.transcript_format, conversation=args.conversation,
        plot=not args.no_plot, device=device, moments_in_listener_speech=args.moments_in_listener_speech,
        skip_malformed=args.skip_malformed,
    )
    result = run_prediction(args.media, args.transcript, args.checkpoint, output_dir, settings)

    timeline = result.timeline
    print(f"speaker {timeline.speaker!r}, listener {timeline.listener!r}: {timeline.times.size} points, "
          f"{len(timeline.moments)} backchannel moments")
    for moment in timeline.moments[:PRINTED_MOMENTS]:
        print(f"  {moment.time:8.2f} s  {moment.class_name:<14} score {moment.score:.3f}")
    if len(timeline.moments) > PRINTED_MOMENTS:
        print(f"  ... and {len(timeline.moments) - PRINTED_MOMENTS} more in timeline.json")
    for kind, path in result.paths.items():
        print(f"{kind}: {path}")
    return 0
