"""The echomimic adapter against a fake EchoMimic checkout that follows the real script's interface."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml
from synth_helpers import build_fake_echomimic

from camabc_core.interfaces import AnimationRequest
from synth.echomimic import DIR_ENV, PYTHON_ENV, EchoMimicAnimator
from synth.errors import AnimatorUnavailableError, SynthError
from synth.media import save_png, write_wav


@pytest.fixture
def request_files(tmp_path) -> AnimationRequest:
    reference = np.full((48, 64, 3), 128, dtype=np.uint8)
    save_png(reference, tmp_path / "reference.png")
    audio = np.zeros(16000, dtype=np.float32)
    write_wav(audio, 16000, tmp_path / "driving.wav")
    work_dir = tmp_path / "work"
    work_dir.mkdir()
    return AnimationRequest(reference=reference, reference_path=tmp_path / "reference.png", audio=audio,
                            audio_path=tmp_path / "driving.wav", sample_rate=16000, fps=30, num_frames=30,
                            start_time=2.0, seed=5, work_dir=work_dir)


def test_fake_echomimic_frames(tmp_path, request_files):
    python, root = build_fake_echomimic(tmp_path / "EchoMimic")
    animator = EchoMimicAnimator(python=str(python), echomimic_dir=str(root))

    frames = list(animator.animate(request_files))

    assert len(frames) == 30  # the fake makes 29 frames; the adapter repeats the last one
    assert all(frame.shape == (48, 64, 3) for frame in frames)
    assert np.array_equal(frames[28], frames[29])
    assert abs(int(frames[1].mean()) - 41) <= 2  # the fake's second frame has value 41


def test_config_paths_made_absolute(tmp_path, request_files):
    python, root = build_fake_echomimic(tmp_path / "EchoMimic")
    animator = EchoMimicAnimator(python=str(python), echomimic_dir=str(root))
    list(animator.animate(request_files))

    written = yaml.safe_load((request_files.work_dir / "echomimic_config.yaml").read_text())
    assert written["pretrained_vae_path"] == str((root / "pretrained_weights" / "sd-vae-ft-mse").resolve())
    assert written["weight_dtype"] == "fp16"
    assert written["test_cases"] == {str(request_files.reference_path.resolve()):
                                     [str(request_files.audio_path.resolve())]}


def test_command_line_follows_echomimic(tmp_path, request_files):
    python, root = build_fake_echomimic(tmp_path / "EchoMimic")
    command = EchoMimicAnimator(python=str(python), echomimic_dir=str(root), steps=20).command(
        request_files, Path("config.yaml"))
    assert command == [str(python), str(root / "infer_audio2vid.py"), "--config", "config.yaml", "-W", "64",
                       "-H", "48", "-L", "30", "--seed", "5", "--fps", "30", "--steps", "20", "--cfg", "2.5",
                       "--sample_rate", "16000", "--device", "cuda"]


def test_environment_variables_configure(tmp_path, request_files, monkeypatch):
    python, root = build_fake_echomimic(tmp_path / "EchoMimic")
    monkeypatch.setenv(PYTHON_ENV, str(python))
    monkeypatch.setenv(DIR_ENV, str(root))
    assert len(list(EchoMimicAnimator().animate(request_files))) == 30


def test_missing_environment_names_fix(request_files, monkeypatch):
    monkeypatch.delenv(PYTHON_ENV, raising=False)
    monkeypatch.delenv(DIR_ENV, raising=False)
    with pytest.raises(AnimatorUnavailableError) as raised:
        EchoMimicAnimator().animate(request_files)
    message = str(raised.value)
    assert "python interpreter is not set" in message
    assert PYTHON_ENV in message
    assert "docs/synth.md" in message


def test_missing_script_named(tmp_path, request_files):
    python, root = build_fake_echomimic(tmp_path / "EchoMimic")
    (root / "infer_audio2vid.py").unlink()
    with pytest.raises(AnimatorUnavailableError, match=r"inference script .*infer_audio2vid\.py does not"):
        EchoMimicAnimator(python=str(python), echomimic_dir=str(root)).animate(request_files)


def test_script_failure_shows_output(tmp_path, request_files):
    python, root = build_fake_echomimic(tmp_path / "EchoMimic")
    (root / "pretrained_weights" / "sd-vae-ft-mse").rmdir()
    with pytest.raises(SynthError) as raised:
        EchoMimicAnimator(python=str(python), echomimic_dir=str(root)).animate(request_files)
    message = str(raised.value)
    assert "exited with status 1" in message
    assert "missing" in message
    assert "sd-vae-ft-mse" in message


def test_each_process_gets_own_gpu(monkeypatch):
    monkeypatch.setenv("LOCAL_RANK", "1")
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "2")
    monkeypatch.setenv("PYTHONPATH", "/camabc/site-packages")
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "4,6")
    environment = EchoMimicAnimator().subprocess_environment()
    assert environment["CUDA_VISIBLE_DEVICES"] == "6"
    assert "PYTHONPATH" not in environment
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES")
    assert EchoMimicAnimator().subprocess_environment()["CUDA_VISIBLE_DEVICES"] == "1"


def test_single_process_keeps_gpus(monkeypatch):
    monkeypatch.delenv("LOCAL_RANK", raising=False)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "4,6")
    assert EchoMimicAnimator().subprocess_environment()["CUDA_VISIBLE_DEVICES"] == "4,6"
