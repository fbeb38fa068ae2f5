"""The ``echomimic`` animator: runs EchoMimic's own inference script in EchoMimic's own environment.

EchoMimic pins old diffusers, transformers and moviepy releases that conflict with camabc's, so it
runs as a separate program. For each clip the adapter writes a copy of EchoMimic's prompt config
whose ``test_cases`` map the reference PNG to the driving wav (16 kHz mono) and whose relative paths
point into the EchoMimic checkout, then runs, in a scratch folder::

    ECHOMIMIC_PYTHON ECHOMIMIC_DIR/infer_audio2vid.py --config CONFIG -W WIDTH -H HEIGHT \\
        -L NUM_FRAMES --seed SEED --fps FPS --steps STEPS --cfg CFG --sample_rate 16000 --device DEVICE

The script writes ``output/<date>/<time>--seed_<seed>-<W>x<H>/<image>_<audio>_<H>x<W>_<cfg>_<time>.mp4``
under its working directory (and a ``..._withaudio.mp4`` copy). The adapter reads the silent one back
with PyAV, resizes frames that differ from the reference size and returns exactly ``num_frames``
frames. The pipeline then muxes them with the driving audio itself.

The interpreter and checkout come from options (``python``, ``echomimic_dir``) or the environment
variables ``CAMABC_ECHOMIMIC_PYTHON`` and ``CAMABC_ECHOMIMIC_DIR``.
"""

from __future__ import annotations

import logging
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import av
import numpy as np
import yaml

from camabc_core.interfaces import AnimationRequest, Animator
from synth.errors import AnimatorUnavailableError, SynthError

logger = logging.getLogger(__name__)

PYTHON_ENV = "CAMABC_ECHOMIMIC_PYTHON"
DIR_ENV = "CAMABC_ECHOMIMIC_DIR"
SETUP_HINT = (
    "install EchoMimic in its own environment (git clone https://github.com/BadToBest/EchoMimic, "
    "pip install -r requirements.txt in a separate venv or conda env, weights in pretrained_weights/), "
    f"then set {PYTHON_ENV} to that environment's python and {DIR_ENV} to the checkout, or pass "
    "--animator-option python=... --animator-option echomimic_dir=...; see docs/synth.md"
)
# Lines of the script's output kept in error messages.
OUTPUT_TAIL_LINES = 20


def _absolute_config_paths(value: Any, root: Path) -> Any:
    """Return ``value`` with every string that starts with ./ or ../ made absolute under ``root``."""
    if isinstance(value, dict):
        return {key: _absolute_config_paths(item, root) for key, item in value.items()}
    if isinstance(value, list):
        return [_absolute_config_paths(item, root) for item in value]
    if isinstance(value, str) and value.startswith(("./", "../")):
        return str((root / value).resolve())
    return value


def _read_frames(path: Path, width: int, height: int) -> Iterator[np.ndarray]:
    try:
        container = av.open(str(path))
    except av.FFmpegError as error:
        raise SynthError(f"{path}: EchoMimic's output video cannot be opened ({error})") from error
    with container:
        for frame in container.decode(video=0):
            yield frame.to_ndarray(width=width, height=height, format="rgb24")


def _exact_frame_count(frames: Iterator[np.ndarray], num_frames: int, source: Path) -> Iterator[np.ndarray]:
    """Yield ``num_frames`` frames, repeating the last one when the script made fewer."""
    last = None
    produced = 0
    for frame in frames:
        if produced == num_frames:
            break
        last = frame
        produced += 1
        yield frame
    if last is None:
        raise SynthError(f"{source}: EchoMimic's output video has no frames")
    if produced < num_frames:
        # EchoMimic cuts the video to the audio features it computed, which may end a frame early.
        logger.debug("%s: %d of %d frames; repeating the last one", source, produced, num_frames)
        for _ in range(num_frames - produced):
            yield last


class EchoMimicAnimator(Animator):
    """Adapter for EchoMimic's ``infer_audio2vid.py`` (audio-driven, no pose input).

    :param python: interpreter of the EchoMimic environment (default: ``$CAMABC_ECHOMIMIC_PYTHON``).
    :param echomimic_dir: EchoMimic checkout with ``pretrained_weights/``
        (default: ``$CAMABC_ECHOMIMIC_DIR``).
    :param script: inference script inside the checkout (``infer_audio2vid_acc.py`` is the faster variant).
    :param config: prompt config inside the checkout whose model paths are used.
    :param steps: denoising steps; :param cfg: classifier-free guidance scale.
    :param device: torch device inside EchoMimic (its script needs CUDA).
    :param timeout: seconds one clip may take before it fails.
    """

    def __init__(self, *, python: str | None = None, echomimic_dir: str | None = None,
                 script: str = "infer_audio2vid.py", config: str = "configs/prompts/animation.yaml",
                 steps: int = 30, cfg: float = 2.5, device: str = "cuda", timeout: float | None = None):
        self.python = python or os.environ.get(PYTHON_ENV)
        self.echomimic_dir = echomimic_dir or os.environ.get(DIR_ENV)
        self.script = script
        self.config = config
        self.steps = int(steps)
        self.cfg = float(cfg)
        self.device = device
        self.timeout = float(timeout) if timeout is not None else None

    def check(self) -> tuple[Path, Path, Path]:
        """Return (python, script, config) paths, raising ``AnimatorUnavailableError`` if one is missing."""
        if not self.python:
            raise AnimatorUnavailableError(f"EchoMimic's python interpreter is not set; {SETUP_HINT}")
        if not self.echomimic_dir:
            raise AnimatorUnavailableError(f"EchoMimic's checkout folder is not set; {SETUP_HINT}")
        python = Path(self.python)
        root = Path(self.echomimic_dir)
        if not python.is_file():
            raise AnimatorUnavailableError(
                f"EchoMimic's python interpreter {python} does not exist; {SETUP_HINT}")
        script, config = root / self.script, root / self.config
        for what, path in (("inference script", script), ("prompt config", config)):
            if not path.is_file():
                raise AnimatorUnavailableError(f"EchoMimic's {what} {path} does not exist; {SETUP_HINT}")
        return python, script, config

    def _write_config(self, base_config: Path, request: AnimationRequest, work_dir: Path) -> Path:
        # EchoMimic resolves the config's relative paths against its working directory. Here that is
        # the scratch folder, not the checkout, so the paths are made absolute.
        try:
            settings = yaml.safe_load(base_config.read_text(encoding="utf-8")) or {}
        except yaml.YAMLError as error:
            raise SynthError(f"{base_config}: invalid YAML ({error})") from error
        settings = _absolute_config_paths(settings, Path(str(self.echomimic_dir)))
        settings["test_cases"] = {str(request.reference_path.resolve()): [str(request.audio_path.resolve())]}
        target = work_dir / "echomimic_config.yaml"
        target.write_text(yaml.safe_dump(settings, sort_keys=False), encoding="utf-8")
        return target

    def command(self, request: AnimationRequest, config_path: Path) -> list[str]:
        """Build the command line for one clip (the interface the fake script in the tests follows)."""
        python, script, _ = self.check()
        height, width = request.reference.shape[:2]
        return [
            str(python), str(script), "--config", str(config_path),
            "-W", str(width), "-H", str(height), "-L", str(request.num_frames),
            "--seed", str(request.seed), "--fps", str(request.fps), "--steps", str(self.steps),
            "--cfg", str(self.cfg), "--sample_rate", str(request.sample_rate), "--device", self.device,
        ]

    def subprocess_environment(self) -> dict[str, str]:
        """Return the environment for EchoMimic: ours without Python paths, on this process's GPU.

        EchoMimic's script always uses the first visible GPU, so under ``accelerate launch`` (which
        sets ``LOCAL_RANK`` and ``LOCAL_WORLD_SIZE``) each process shows it only its own GPU.
        """
        environment = {key: value for key, value in os.environ.items()
                       if key not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
        local_rank = environment.get("LOCAL_RANK")
        if local_rank is not None and int(environment.get("LOCAL_WORLD_SIZE", "1")) > 1:
            visible = environment.get("CUDA_VISIBLE_DEVICES")
            devices = visible.split(",") if visible else [str(index) for index in range(int(local_rank) + 1)]
            environment["CUDA_VISIBLE_DEVICES"] = devices[int(local_rank) % len(devices)]
        return environment

    def _run(self, command: list[str], work_dir: Path) -> None:
        environment = self.subprocess_environment()
        try:
            completed = subprocess.run(command, cwd=work_dir, env=environment, capture_output=True, text=True,
                                       timeout=self.timeout, check=False)
        except subprocess.TimeoutExpired as error:
            raise SynthError(f"EchoMimic timed out after {self.timeout} s: {' '.join(command)}") from error
        except OSError as error:
            raise AnimatorUnavailableError(f"cannot start EchoMimic ({error}); {SETUP_HINT}") from error
        if completed.returncode != 0:
            tail = "\n".join((completed.stdout + completed.stderr).strip().splitlines()[-OUTPUT_TAIL_LINES:])
            raise SynthError(
                f"EchoMimic exited with status {completed.returncode}: {' '.join(command)}\n{tail}")

    def animate(self, request: AnimationRequest) -> Iterator[np.ndarray]:
        if request.work_dir is None:
            raise SynthError("the echomimic animator needs a scratch folder (AnimationRequest.work_dir)")
        _, _, base_config = self.check()
        config_path = self._write_config(base_config, request, request.work_dir)
        self._run(self.command(request, config_path), request.work_dir)
        outputs = sorted(path for path in (request.work_dir / "output").glob("**/*.mp4")
                         if not path.stem.endswith("_withaudio"))
        if len(outputs) != 1:
            raise SynthError(
                f"EchoMimic finished but {len(outputs)} videos were found under "
                f"{request.work_dir / 'output'} (expected 1); check that the script follows the "
                f"interface in docs/synth.md"
            )
        height, width = request.reference.shape[:2]
        return _exact_frame_count(_read_frames(outputs[0], width, height), request.num_frames, outputs[0])
