"""Command line of ``python -m synth``: ``swbd`` for Switchboard, ``audio`` for one recording with turns.

Run it on several GPUs or processes with
``accelerate launch --multi_gpu --num_processes N -m synth swbd ...``, and each process takes its
share of the jobs.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from camabc_core.errors import CamabcError
from synth.errors import SynthError
from synth.jobs import ComponentSpec
from synth.planning import CLIP_MODES, POINT_SOURCES, SynthSettings, build_plan, describe_plan
from synth.timing import frames_per_window

logger = logging.getLogger("synth")


def _option_pairs(values: Sequence[str], flag: str) -> dict[str, Any]:
    options: dict[str, Any] = {}
    for value in values:
        key, separator, text = value.partition("=")
        if not separator or not key:
            raise SynthError(f"{flag} {value!r}: expected KEY=VALUE, e.g. {flag} steps=20")
        # YAML reads 20 as an int, 0.5 as a float and true as a bool; anything else stays text.
        options[key.strip()] = yaml.safe_load(text) if text else ""
    return options


def _add_common_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", type=Path, required=True, help="output folder (manifest, references, clips)")

    # Components and their options.
    parser.add_argument("--reference", default="cartoon",
                        help="reference generator plugin: cartoon (CPU, default) or flux (diffusers)")
    parser.add_argument("--animator", default="cartoon",
                        help="animator plugin: cartoon (CPU, default) or echomimic (external program)")
    parser.add_argument("--reference-option", action="append", default=[], metavar="KEY=VALUE",
                        help="option for the reference generator, e.g. offload=model (repeatable)")
    parser.add_argument("--animator-option", action="append", default=[], metavar="KEY=VALUE",
                        help="option for the animator, e.g. steps=20 (repeatable)")
    parser.add_argument("--flux-model", metavar="HUB_ID_OR_DIR",
                        help="Flux pipeline to load (default black-forest-labs/FLUX.1-dev)")
    parser.add_argument("--flux-offload", choices=("none", "model", "sequential"),
                        help="move Flux components to the GPU only while they run (needs a GPU)")
    parser.add_argument("--echomimic-python", metavar="PATH",
                        help="python of the EchoMimic environment (default $CAMABC_ECHOMIMIC_PYTHON)")
    parser.add_argument("--echomimic-dir", metavar="DIR",
                        help="EchoMimic checkout with pretrained_weights/ (default $CAMABC_ECHOMIMIC_DIR)")

    # What each clip covers.
    parser.add_argument("--clips", choices=CLIP_MODES, default="windows",
                        help="windows: one clip per prediction point; sides: one per speaker over the whole "
                             "recording; conversation: one per recording showing the active speaker")
    parser.add_argument("--points", choices=POINT_SOURCES, default="samples",
                        help="prediction points of window clips: samples (backchannels and NoBC points drawn "
                             "with --seed), backchannels (onsets only) or context (every word end)")
    parser.add_argument("--window", type=float,
                        help="window length in seconds (default: the recipe's data.window.audio_seconds, "
                             "else 1.5)")
    parser.add_argument("--recipe", type=Path,
                        help="training recipe whose window length, NoBC sampling, label scheme, seeds "
                             "(run.seed or run.seeds) and max_conversations the window clips follow")

    # Picture and run settings.
    parser.add_argument("--fps", type=int, default=30,
                        help="frames per second; window × fps must be a whole number (default 30)")
    parser.add_argument("--width", type=int, default=512, help="clip width in pixels (default 512)")
    parser.add_argument("--height", type=int, default=512, help="clip height in pixels (default 512)")
    parser.add_argument("--seed", type=int, default=0,
                        help="seeds the speakers' looks, and the NoBC points when no --recipe is given "
                             "(default 0)")
    parser.add_argument("--limit", type=int, help="make only the first N clips (a quick look)")
    parser.add_argument("--crf", type=int, default=18, help="x264 quality, lower is better (default 18)")
    parser.add_argument("--dry-run", action="store_true", help="print the plan and counts, write nothing")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m synth",
        description="Synthesize talking-head videos for audio-only conversations.",
        epilog="Several processes or GPUs: accelerate launch --multi_gpu --num_processes N -m synth swbd ...",
    )
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    swbd = subparsers.add_parser("swbd", help="Switchboard: speakers from caller_tab.csv and conv_tab.csv")
    swbd.add_argument("--swbd-root", type=Path, required=True,
                      help="Switchboard folder (audio, word alignments, caller_tab.csv, conv_tab.csv)")
    swbd.add_argument("--draw-missing-metadata", action="store_true",
                      help="draw sex and age for callers the tables lack, instead of failing their jobs")
    _add_common_options(swbd)
    audio = subparsers.add_parser("audio", help="one recording with speaker turns (RTTM or STM)")
    audio.add_argument("--audio", type=Path, required=True, help="the recording (any format FFmpeg reads)")
    audio.add_argument("--turns", type=Path, required=True, help="speaker turns: an .rttm or .stm file")
    audio.add_argument("--transcript", type=Path, help="STM transcript: words for the prediction points")
    audio.add_argument("--speaker-info", type=Path,
                       help="CSV with header speaker,sex,age; speakers it lacks get drawn values")
    audio.add_argument("--channel-speakers", help="speaker of each audio channel, comma-separated, for "
                                                  "recordings with one channel per speaker")
    _add_common_options(audio)
    return parser


def _load_recipe(path: Path | None) -> Any:
    if path is None:
        return None
    from camabc_core.recipe_loading import load_recipe

    # Only the data and run sections are used, so the model's component names are not checked.
    return load_recipe(path, validate=False)


def settings_from_args(args: argparse.Namespace, recipe: Any = None) -> SynthSettings:
    """Validate the options that apply to every job and collect them (``recipe``: a loaded Recipe)."""
    if args.width <= 0 or args.height <= 0 or args.width % 2 or args.height % 2:
        raise SynthError(f"--width and --height must be positive even numbers (H.264 with yuv420p), "
                         f"got {args.width}x{args.height}")
    window = args.window
    if window is None:
        window = recipe.data.window.audio_seconds if recipe is not None else 1.5
    if args.clips == "windows":
        frames_per_window(window, args.fps)
    reference_options = _option_pairs(args.reference_option, "--reference-option")
    animator_options = _option_pairs(args.animator_option, "--animator-option")
    if args.flux_model:
        reference_options["model"] = args.flux_model
    if args.flux_offload:
        reference_options["offload"] = args.flux_offload
    if args.echomimic_python:
        animator_options["python"] = args.echomimic_python
    if args.echomimic_dir:
        animator_options["echomimic_dir"] = args.echomimic_dir
    extra: dict[str, Any] = {"sampling_seeds": (args.seed,)}
    if recipe is not None:
        extra = {"sampling_seeds": tuple(recipe.run.seeds or [recipe.run.seed]),
                 "sampling": recipe.data.sampling}
    return SynthSettings(
        reference=ComponentSpec(args.reference, reference_options),
        animator=ComponentSpec(args.animator, animator_options),
        clips=args.clips, points=args.points, window=window, fps=args.fps, width=args.width,
        height=args.height, seed=args.seed, limit=args.limit, **extra,
    )


def _apply_recipe_data(source_set: Any, recipe: Any) -> Any:
    """Use the recipe's label scheme and keep its first ``max_conversations`` conversations by id."""
    import attrs

    from camabc_core.labels import build_label_scheme

    category_map = recipe.data.category_map
    if category_map is None:
        category_map = source_set.scheme.category_map
    scheme = build_label_scheme(recipe.data.label_scheme, category_map)
    sources = sorted(source_set.sources, key=lambda source: source.conversation.id)
    if recipe.data.max_conversations is not None:
        sources = sources[:recipe.data.max_conversations]
    return attrs.evolve(source_set, sources=sources, scheme=scheme)


def _check_components(settings: SynthSettings) -> None:
    """Build both components once, so an unknown name or option stops the run before any job."""
    from camabc_core.registry import describe_unknown_component, get_registry
    from synth.runner import create_component

    registry = get_registry()
    for kind, spec in (("reference_generator", settings.reference), ("animator", settings.animator)):
        names = registry.names(kind)
        if spec.name not in names:
            raise SynthError(describe_unknown_component(kind, spec.name, names))
        create_component(kind, spec)


def _sources(args: argparse.Namespace, settings: SynthSettings, recipe: Any = None) -> Any:
    from synth.sources import recording_sources, switchboard_sources

    need_duration = settings.clips != "windows"
    if args.command == "swbd":
        if not args.swbd_root.is_dir():
            raise SynthError(f"--swbd-root {args.swbd_root}: folder not found; pass the Switchboard folder "
                             "that contains the audio, the word alignments and caller_tab.csv")
        # The recipe's swbd rule thresholds move the prediction points, so the clips follow them. Its
        # video options are left out: they name the videos this run makes.
        reader_options = {}
        if recipe is not None and recipe.data.dataset == "swbd":
            reader_options = {key: value for key, value in (recipe.data.reader_options or {}).items()
                              if key not in ("video_dir", "skip_missing_video")}
        return switchboard_sources(args.swbd_root, seed=settings.seed, need_duration=need_duration,
                                   draw_missing_metadata=args.draw_missing_metadata,
                                   reader_options=reader_options)
    channel_speakers = None
    if args.channel_speakers:
        channel_speakers = [name.strip() for name in args.channel_speakers.split(",")]
    _check_audio_input(args.audio, channel_speakers)
    return recording_sources(args.audio, args.turns, transcript=args.transcript,
                             speaker_info=args.speaker_info, channel_speakers=channel_speakers,
                             seed=settings.seed, need_duration=need_duration)


def _check_audio_input(path: Path, channel_speakers: Sequence[str] | None) -> None:
    """Check that ``--audio`` exists and decodes, and that ``--channel-speakers`` fits its channels.

    Runs before any reference is generated, so a wrong path costs no GPU time.
    """
    import av

    if not path.is_file():
        raise SynthError(f"--audio {path}: file not found; pass the recording to animate")
    try:
        with av.open(str(path)) as container:
            if not container.streams.audio:
                raise SynthError(f"--audio {path}: the file has no audio stream; pass a file with audio")
            channels = container.streams.audio[0].channels
            # Decoding the first packet catches files whose header opens but whose samples do not.
            next(container.decode(audio=0), None)
    except av.FFmpegError as error:
        raise SynthError(f"--audio {path}: cannot decode the file ({error}); it may be truncated or "
                         "corrupt, re-encode it (e.g. to WAV)") from error
    if channel_speakers is None:
        return
    if len(channel_speakers) > channels:
        raise SynthError(f"--channel-speakers names {len(channel_speakers)} speakers but {path} has "
                         f"{channels} audio channel(s); list one speaker per channel, in channel order")
    if len(channel_speakers) < channels:
        logger.warning("%s has %d audio channels but --channel-speakers names %d (%s); channel(s) %s are "
                       "ignored", path, channels, len(channel_speakers), ",".join(channel_speakers),
                       ", ".join(str(index + 1) for index in range(len(channel_speakers), channels)))


def _empty_plan_reason(settings: SynthSettings, source_set: Any) -> str:
    """Explain why a plan has no clips, with the option that would give some."""
    sources = source_set.sources
    if not sources:
        return "no conversations were found"
    if settings.clips != "windows":
        return "the conversations have no speakers"
    backchannels = sum(len(source.conversation.backchannels) for source in sources)
    words = sum(len(source.conversation.words) for source in sources)
    if settings.points == "context":
        return f"the transcripts contain {words} words, so there are no word ends to end a window at"
    if backchannels == 0:
        return ("no backchannels were found in the turns or transcript, so there are no backchannel or "
                "NoBC prediction points; use --points context for a clip at every word end, or turns "
                "(e.g. RTTM) in which listeners' short turns mark backchannels")
    return (f"the {backchannels} backchannels gave no prediction points (none has a speaker to react "
            "to); use --points context for a clip at every word end")


def _animator_problem(settings: SynthSettings) -> str | None:
    """Return why the animator cannot run here (e.g. a missing EchoMimic environment), or None."""
    from synth.errors import AnimatorUnavailableError
    from synth.runner import create_component

    animator = create_component("animator", settings.animator)
    check = getattr(animator, "check", None)
    if check is None:
        return None
    try:
        check()
    except AnimatorUnavailableError as error:
        return f"animator {settings.animator.name!r} cannot run, so every clip would fail: {error}"
    return None


def run_command(args: argparse.Namespace) -> int:
    from synth.manifest import MANIFEST_NAME, read_manifest
    from synth.runner import Runner, RunOptions, process_state

    state = process_state()
    recipe = _load_recipe(args.recipe)
    settings = settings_from_args(args, recipe)
    _check_components(settings)
    source_set = _sources(args, settings, recipe)
    if recipe is not None:
        source_set = _apply_recipe_data(source_set, recipe)
    plan = build_plan(source_set.sources, source_set.profiles, settings, source_set.scheme)
    empty_reason = _empty_plan_reason(settings, source_set) if not plan.clips else ""
    if args.dry_run:
        if state.is_main_process:
            problem = _animator_problem(settings) if plan.clips else None
            print(describe_plan(plan, read_manifest(args.out / MANIFEST_NAME), args.out, empty_reason,
                                [problem] if problem else []))
        return 0
    if not plan.clips:
        logger.warning("the plan has no clips: %s", empty_reason)
    return Runner(plan, RunOptions(out_dir=args.out, crf=args.crf), state).run()


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from synth.runner import process_state

    main_process = process_state().is_main_process
    level = logging.DEBUG if args.verbose else logging.INFO
    logging.basicConfig(level=level if main_process else logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    try:
        return run_command(args)
    except CamabcError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
