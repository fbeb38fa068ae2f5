"""Builders for the synth tests: a fake Switchboard tree, SPHERE files, a fake EchoMimic checkout."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import numpy as np

SWITCHBOARD_RATE = 8000

# Caller 1000: female born 1954; caller 1001: male born 1960. Conversation 2001 was recorded on
# 1991-03-11, so their ages are 37 and 31.
CALLER_ROWS = (
    '1000, 32, "N", "FEMALE", 1954, "SOUTH MIDLAND", 2, 0, "CASH", 15, "N", "", 0, "DN2"',
    '1001, 45, "N", "MALE", 1960, "NORTHERN", 3, 0, "CASH", 15, "N", "", 0, "DN2"',
)
CONVERSATION_ROWS = ('2001, "N", 1000, 1001, 318, "", "910311", 1440, 0, "", 0, 0',)

# (side, start, end, word) of conversation 2001: A talks while B backchannels "uh-huh", then B
# talks while A backchannels "yeah".
WORDS_2001 = (
    ("A", 0.30, 0.60, "so"), ("A", 0.62, 0.90, "i"), ("A", 0.92, 1.30, "was"), ("A", 1.32, 1.80, "thinking"),
    ("A", 1.82, 2.10, "about"), ("A", 2.12, 2.40, "the"), ("A", 2.42, 2.90, "weather"),
    ("B", 1.60, 1.95, "uh-huh"),
    ("B", 3.30, 3.60, "well"), ("B", 3.62, 3.80, "it"), ("B", 3.82, 4.10, "has"), ("B", 4.12, 4.40, "been"),
    ("B", 4.42, 4.90, "raining"), ("B", 4.92, 5.10, "a"), ("B", 5.12, 5.50, "lot"),
    ("A", 4.20, 4.45, "yeah"),
)
DURATION_2001 = 6.0


def sphere_bytes(channels: np.ndarray, sample_rate: int) -> bytes:
    """Encode float audio (C, S) in [-1, 1] as a NIST SPHERE file with 16-bit little-endian PCM."""
    num_channels, num_samples = channels.shape
    header = "\n".join([
        "NIST_1A", "   1024",
        "database_id -s5 SWB-1",
        f"channel_count -i {num_channels}",
        f"sample_count -i {num_samples}",
        f"sample_rate -i {sample_rate}",
        "sample_n_bytes -i 2",
        "sample_byte_format -s2 01",
        "sample_coding -s3 pcm",
        "end_head",
    ]) + "\n"
    pcm = np.round(np.clip(channels.T, -1.0, 1.0) * 32767).astype("<i2")  # (S, C) interleaved
    return header.encode("ascii").ljust(1024, b" ") + pcm.tobytes()


def speech_like(duration: float, sample_rate: int, spans: list[tuple[float, float]]) -> np.ndarray:
    """Return a signal (S,) with a 200 Hz tone (amplitude 0.3) inside ``spans`` and silence elsewhere."""
    times = np.arange(round(duration * sample_rate)) / sample_rate
    signal = np.zeros_like(times)
    for start, end in spans:
        inside = (times >= start) & (times < end)
        signal[inside] = 0.3 * np.sin(2 * np.pi * 200 * times[inside])
    return signal.astype(np.float32)


def build_fake_switchboard(root: Path, *, caller_rows: tuple[str, ...] = CALLER_ROWS,
                           conversation_rows: tuple[str, ...] = CONVERSATION_ROWS,
                           audio: bytes | None = None) -> Path:
    """Write metadata tables, word alignments and a 2-channel 8 kHz SPHERE file for conversation 2001."""
    (root / "tables").mkdir(parents=True)
    (root / "tables" / "caller_tab.csv").write_text("\n".join(caller_rows) + "\n", encoding="latin-1")
    (root / "tables" / "conv_tab.csv").write_text("\n".join(conversation_rows) + "\n", encoding="latin-1")
    words_dir = root / "swb_ms98_transcriptions" / "20" / "2001"
    words_dir.mkdir(parents=True)
    for side in ("A", "B"):
        lines = [f"sw2001{side}-ms98-a-{index:04d} {start:.6f} {end:.6f} {word}"
                 for index, (speaker, start, end, word) in enumerate(WORDS_2001, start=1) if speaker == side]
        (words_dir / f"sw2001{side}-ms98-a-word.text").write_text("\n".join(lines) + "\n", encoding="latin-1")
    if audio is None:
        channels = np.stack([
            speech_like(DURATION_2001, SWITCHBOARD_RATE, [(start, end) for side, start, end, _ in WORDS_2001
                                                          if side == wanted])
            for wanted in ("A", "B")
        ])
        audio = sphere_bytes(channels, SWITCHBOARD_RATE)
    (root / "audio").mkdir()
    (root / "audio" / "sw02001.sph").write_bytes(audio)
    return root


FAKE_ECHOMIMIC_SCRIPT = '''
"""Stands in for EchoMimic's infer_audio2vid.py: same arguments, same output layout, no model."""
import argparse
import datetime
import pathlib
import sys

import av
import numpy as np
import yaml

parser = argparse.ArgumentParser()
parser.add_argument("--config", default="./configs/prompts/animation.yaml")
parser.add_argument("-W", type=int, default=512)
parser.add_argument("-H", type=int, default=512)
parser.add_argument("-L", type=int, default=1200)
parser.add_argument("--seed", type=int, default=420)
parser.add_argument("--cfg", type=float, default=2.5)
parser.add_argument("--steps", type=int, default=30)
parser.add_argument("--sample_rate", type=int, default=16000)
parser.add_argument("--fps", type=int, default=24)
parser.add_argument("--device", default="cuda")
args = parser.parse_args()
config = yaml.safe_load(open(args.config))
for key in ("pretrained_vae_path", "inference_config"):
    if not pathlib.Path(config[key]).exists():
        sys.exit(f"missing {config[key]}")
now = datetime.datetime.now()
run_name = f"{now.strftime('%H%M')}--seed_{args.seed}-{args.W}x{args.H}"
save_dir = pathlib.Path("output") / now.strftime("%Y%m%d") / run_name
save_dir.mkdir(parents=True, exist_ok=True)
for reference, audios in config["test_cases"].items():
    for audio in audios:
        assert pathlib.Path(reference).is_file()
        assert pathlib.Path(audio).is_file()
        name = f"{pathlib.Path(reference).stem}_{pathlib.Path(audio).stem}_{args.H}x{args.W}_{int(args.cfg)}"
        # EchoMimic may stop a frame short of -L; the adapter must pad.
        frames = args.L - 1
        for suffix in ("", "_withaudio"):
            with av.open(str(save_dir / f"{name}{suffix}.mp4"), "w") as container:
                stream = container.add_stream("libx264", rate=args.fps)
                stream.width, stream.height, stream.pix_fmt = args.W, args.H, "yuv420p"
                for index in range(frames):
                    image = np.full((args.H, args.W, 3), 40 + index % 200, dtype=np.uint8)
                    for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                        container.mux(packet)
                for packet in stream.encode():
                    container.mux(packet)
        print(save_dir / f"{name}_withaudio.mp4")
'''


def build_fake_echomimic(root: Path) -> tuple[Path, Path]:
    """Write an EchoMimic-like checkout (script, prompt config, weight folders); return (python, root)."""
    (root / "configs" / "prompts").mkdir(parents=True)
    (root / "configs" / "inference").mkdir(parents=True)
    (root / "configs" / "inference" / "inference_v2.yaml").write_text("unet_additional_kwargs: {}\n")
    (root / "pretrained_weights" / "sd-vae-ft-mse").mkdir(parents=True)
    (root / "configs" / "prompts" / "animation.yaml").write_text(textwrap.dedent('''\
        pretrained_vae_path: "./pretrained_weights/sd-vae-ft-mse/"
        inference_config: "./configs/inference/inference_v2.yaml"
        weight_dtype: 'fp16'
        test_cases:
          "./assets/test_imgs/a.png":
            - "./assets/test_audios/echomimic_en.wav"
        '''))
    (root / "infer_audio2vid.py").write_text(textwrap.dedent(FAKE_ECHOMIMIC_SCRIPT))
    return Path(sys.executable), root


def run_synth(argv: list[str], capsys) -> tuple[int, str, str]:
    """Run ``python -m synth`` in this process and return (exit status, stdout, stderr)."""
    from synth.cli import main

    status = main(argv)
    captured = capsys.readouterr()
    return status, captured.out, captured.err
