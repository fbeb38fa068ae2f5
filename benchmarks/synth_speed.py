"""Speed of the CPU cartoon path of ``python -m synth``.

Prints, for clips of 224x224 pixels at 30 fps driven by the real phone call in
data/samples/pyannote_call:

1. the cartoon animator's real-time factor (seconds of audio animated per second of wall time,
   frames only, no encoding), over the whole 30 s call for each speaker (target: at least 10);
2. seconds per 1.5 s window clip in the full pipeline (driving audio, animation, wav, H.264/AAC
   muxing with moviepy, manifest record), the median over ``--clips`` clips.

Run: ``python benchmarks/synth_speed.py`` (add ``--clips 40`` for a longer sample).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from camabc_core.interfaces import AnimationRequest
from camabc_core.media import decode_audio
from synth.cartoon_animator import CartoonAnimator
from synth.cartoon_reference import draw_bust
from synth.cli import main as synth_main

CALL = Path(__file__).resolve().parents[1] / "data" / "samples" / "pyannote_call"
SIZE = 224
FPS = 30
RATE = 16000


def animator_real_time_factor(repeats: int) -> tuple[float, float]:
    """Return (audio seconds, best real-time factor over ``repeats``) for animating the whole call."""
    audio = decode_audio(CALL / "sample.wav", RATE)[0]
    num_frames = audio.shape[0] * FPS // RATE
    attributes = {"sex": "female", "age": 40, "race": "White", "outfit": "wearing shirts"}
    reference = draw_bust(SIZE, SIZE, attributes, seed=0)
    request = AnimationRequest(reference=reference, reference_path=Path("unused.png"), audio=audio,
                               audio_path=Path("unused.wav"), sample_rate=RATE, fps=FPS,
                               num_frames=num_frames)
    animator = CartoonAnimator()
    best = 0.0
    for _ in range(repeats):
        started = time.perf_counter()
        count = sum(1 for _ in animator.animate(request))
        elapsed = time.perf_counter() - started
        assert count == num_frames
        best = max(best, num_frames / FPS / elapsed)
    return num_frames / FPS, best


def seconds_per_window_clip(clips: int) -> list[float]:
    """Run the pipeline on the call's word-end windows and return each clip's recorded seconds."""
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder) / "out"
        status = synth_main([
            "audio", "--audio", str(CALL / "sample.wav"), "--turns", str(CALL / "sample.rttm"),
            "--transcript", str(CALL / "sample.stm"), "--out", str(out), "--points", "context",
            "--limit", str(clips), "--width", str(SIZE), "--height", str(SIZE), "--fps", str(FPS),
        ])
        if status != 0:
            raise SystemExit(f"synth failed with status {status}")
        records = [json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines()]
    return [record["seconds"] for record in records if record["kind"] == "window"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clips", type=int, default=20, help="window clips to time (default 20)")
    parser.add_argument("--repeats", type=int, default=3, help="animator runs; the best is reported")
    args = parser.parse_args()

    audio_seconds, factor = animator_real_time_factor(args.repeats)
    clip_seconds = seconds_per_window_clip(args.clips)
    import av
    import moviepy

    load = ", ".join(f"{value:.1f}" for value in os.getloadavg())
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPU cores, "
          f"load average {load}, Python {platform.python_version()}, numpy {np.__version__}, "
          f"PyAV {av.__version__}, moviepy {moviepy.__version__}")
    print(f"cartoon animator, {SIZE}x{SIZE} at {FPS} fps, {audio_seconds:.1f} s of audio: "
          f"{factor:.0f}x real time (target >= 10x)")
    print(f"1.5 s window clip with muxing, {SIZE}x{SIZE} at {FPS} fps: median "
          f"{statistics.median(clip_seconds):.3f} s, mean {statistics.fmean(clip_seconds):.3f} s, "
          f"max {max(clip_seconds):.3f} s over {len(clip_seconds)} clips "
          f"({1.5 / statistics.median(clip_seconds):.1f}x real time)")


if __name__ == "__main__":
    main()
