"""``python -m synth swbd`` end to end on a fake Switchboard tree, with its failure cases."""

from __future__ import annotations

import json
from pathlib import Path

import av
import numpy as np
import pytest
from synth_helpers import CALLER_ROWS, build_fake_echomimic, build_fake_switchboard, run_synth

from synth.echomimic import DIR_ENV, PYTHON_ENV

# Clips are muxed with moviepy, which the synth extra installs.
pytest.importorskip("moviepy")

SMALL = ["--width", "64", "--height", "48"]


def _manifest(out: Path) -> dict[str, dict]:
    records = [json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines()]
    return {record["id"]: record for record in records}


def _swbd(root: Path, out: Path, *extra: str) -> list[str]:
    return ["swbd", "--swbd-root", str(root), "--out", str(out), *SMALL, *extra]


@pytest.fixture
def swbd_root(tmp_path) -> Path:
    return build_fake_switchboard(tmp_path / "swbd")


def test_swbd_cartoon_clips(swbd_root, tmp_path, capsys):
    out = tmp_path / "out"
    status, stdout, _ = run_synth(_swbd(swbd_root, out), capsys)

    assert status == 0
    assert "6 of 6 jobs done, 0 failed" in stdout
    records = _manifest(out)
    female = records["reference/swbd-1000"]
    assert female["prompt"].startswith("A bust image of a 37-year-old ")
    assert female["prompt"].split(", ")[0].endswith(" woman")
    assert records["reference/swbd-1001"]["profile"]["age"] == 31
    assert records["reference/swbd-1001"]["profile"]["sex"] == "male"
    # The two backchannels (B's "uh-huh" at 1.6 s, A's "yeah" at 4.2 s) give windows of the other
    # side ending at their onsets. Two NoBC word ends are drawn as well.
    windows = {record_id for record_id, record in records.items() if record["kind"] == "window"}
    assert {"clip/sw2001/A/000001600", "clip/sw2001/B/000004200"} <= windows
    assert len(windows) == 4
    clip = records["clip/sw2001/A/000001600"]
    assert clip["start"] == pytest.approx(0.1)
    assert clip["tracks"][0]["channel"] == 0
    assert clip["tracks"][0]["speaker_id"] == "swbd-1000"
    with av.open(str(out / clip["output"])) as container:
        assert [stream.type for stream in container.streams] == ["video", "audio"]
        frames = [frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)]
    assert len(frames) == 45
    assert frames[0].shape == (48, 64, 3)
    assert all(record["status"] == "done" for record in records.values())


def test_swbd_rerun_skips_finished(swbd_root, tmp_path, capsys):
    out = tmp_path / "out"
    run_synth(_swbd(swbd_root, out), capsys)
    clip = out / _manifest(out)["clip/sw2001/A/000001600"]["output"]
    before = clip.stat().st_mtime_ns

    status, stdout, _ = run_synth(_swbd(swbd_root, out), capsys)

    assert status == 0
    assert "6 of 6 jobs done" in stdout
    assert clip.stat().st_mtime_ns == before
    # A changed option changes the fingerprints, so the clips are made again.
    run_synth(_swbd(swbd_root, out, "--animator-option", "levels=4"), capsys)
    assert clip.stat().st_mtime_ns != before


def test_swbd_resumes_after_kill(swbd_root, tmp_path, capsys):
    out = tmp_path / "out"
    run_synth(_swbd(swbd_root, out), capsys)
    records = _manifest(out)
    kept = out / records["clip/sw2001/A/000001600"]["output"]
    kept_bytes = kept.read_bytes()
    lost = out / records["clip/sw2001/B/000004200"]["output"]
    # A killed run: one clip never finished, a temporary file and a torn manifest line remain.
    lost.unlink()
    (lost.parent / ".sw2001_B_000004200.abc.tmp.mp4").write_bytes(b"partial")
    with (out / "manifest.jsonl").open("a") as manifest:
        manifest.write('{"id": "clip/sw2001/B/0000042')

    status, stdout, _ = run_synth(_swbd(swbd_root, out), capsys)

    assert status == 0
    assert "6 of 6 jobs done" in stdout
    assert lost.is_file()
    assert kept.read_bytes() == kept_bytes
    assert not list(out.glob("**/.*.tmp*"))
    assert _manifest(out)["clip/sw2001/B/000004200"]["status"] == "done"


def test_swbd_dry_run_writes_nothing(swbd_root, tmp_path, capsys):
    out = tmp_path / "out"
    status, stdout, _ = run_synth(_swbd(swbd_root, out, "--dry-run"), capsys)
    assert status == 0
    assert "reference: 2 jobs, 0 already done, 2 to run" in stdout
    assert "window: 4 jobs, 0 already done, 4 to run, 6.0 s of video" in stdout
    assert not out.exists()


def test_swbd_sides(swbd_root, tmp_path, capsys):
    out = tmp_path / "out"
    status, _, _ = run_synth(_swbd(swbd_root, out, "--clips", "sides", "--fps", "25"), capsys)
    assert status == 0
    records = _manifest(out)
    side = records["side/sw2001/B"]
    assert side["num_frames"] == 150  # the 6 s SPHERE file at 25 fps
    with av.open(str(out / side["output"])) as container:
        durations = [float(stream.duration * stream.time_base) for stream in container.streams]
    assert durations == pytest.approx([6.0, 6.0], abs=1 / 25)


def test_swbd_rejects_fractional_frames(swbd_root, tmp_path, capsys):
    status, _, stderr = run_synth(_swbd(swbd_root, tmp_path / "out", "--fps", "25"), capsys)
    assert status == 2
    assert "37.5 frames" in stderr


def test_missing_caller_metadata_fails_its_jobs_only(tmp_path, capsys):
    root = build_fake_switchboard(tmp_path / "swbd", caller_rows=CALLER_ROWS[:1])
    out = tmp_path / "out"

    status, stdout, _ = run_synth(_swbd(root, out), capsys)

    assert status == 1
    records = _manifest(out)
    assert records["reference/swbd-1000"]["status"] == "done"
    assert records["clip/sw2001/A/000001600"]["status"] == "done"
    failed = records["reference/swbd-1001"]
    assert failed["status"] == "failed"
    assert "caller 1001 (side B of sw2001) has no sex or birth year in caller_tab.csv" in failed["error"]
    assert "--draw-missing-metadata" in failed["error"]
    assert "synth: 3 of 6 jobs done, 3 failed" in stdout
    assert "reference/swbd-1001: caller 1001" in stdout
    assert "clip/sw2001/B/000004200: no reference portrait for speaker swbd-1001" in stdout

    status, stdout, _ = run_synth(_swbd(root, out, "--draw-missing-metadata"), capsys)
    assert status == 0
    assert _manifest(out)["reference/swbd-1001"]["profile"]["metadata_source"] == "drawn"


def test_unreadable_audio_fails_clips_only(tmp_path, capsys):
    root = build_fake_switchboard(tmp_path / "swbd", audio=b"NIST_1A\n   1024\nnot a header")
    out = tmp_path / "out"

    status, stdout, _ = run_synth(_swbd(root, out), capsys)

    assert status == 1
    records = _manifest(out)
    assert records["reference/swbd-1000"]["status"] == "done"
    clip = records["clip/sw2001/A/000001600"]
    assert clip["status"] == "failed"
    assert "sw02001.sph" in clip["error"]
    assert "re-download or re-encode" in clip["error"]
    assert "4 failed" in stdout
    assert "clip/sw2001/A/000001600: " in stdout


def test_missing_echomimic_environment(swbd_root, tmp_path, capsys, monkeypatch):
    monkeypatch.delenv(PYTHON_ENV, raising=False)
    monkeypatch.delenv(DIR_ENV, raising=False)
    out = tmp_path / "out"

    status, stdout, _ = run_synth(_swbd(swbd_root, out, "--animator", "echomimic", "--limit", "2"), capsys)

    assert status == 1
    records = _manifest(out)
    assert records["reference/swbd-1000"]["status"] == "done"
    assert records["clip/sw2001/A/000001600"]["status"] == "failed"
    assert "clip/sw2001/A/000001600: EchoMimic's python interpreter is not set" in stdout
    assert PYTHON_ENV in stdout


def test_echomimic_through_cli(swbd_root, tmp_path, capsys):
    python, echomimic = build_fake_echomimic(tmp_path / "EchoMimic")
    out = tmp_path / "out"
    status, stdout, _ = run_synth(_swbd(swbd_root, out, "--animator", "echomimic", "--limit", "1",
                                        "--echomimic-python", str(python), "--echomimic-dir", str(echomimic)),
                                  capsys)
    assert status == 0, stdout
    clip = _manifest(out)["clip/sw2001/A/000001600"]
    assert clip["animator"] == {"name": "echomimic", "options": {"python": str(python),
                                                                 "echomimic_dir": str(echomimic)}}
    with av.open(str(out / clip["output"])) as container:
        frames = [frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)]
    assert len(frames) == 45
    assert np.abs(frames[0].astype(int) - 40).max() <= 3


def test_shorten_sphere_names_sph2pipe(tmp_path, capsys):
    header = ("NIST_1A\n   1024\nchannel_count -i 2\nsample_count -i 8000\nsample_rate -i 8000\n"
              "sample_n_bytes -i 1\nsample_coding -s26 ulaw,embedded-shorten-v2.00\nend_head\n")
    root = build_fake_switchboard(tmp_path / "swbd", audio=header.encode().ljust(1024, b" ") + bytes(4000))

    status, stdout, _ = run_synth(_swbd(root, tmp_path / "out", "--limit", "1"), capsys)

    assert status == 1
    assert "compressed with shorten (ulaw,embedded-shorten-v2.00)" in stdout
    assert "sph2pipe -f wav -p sw02001.sph sw02001.wav" in stdout


def test_invalid_component_option_stops_early(swbd_root, tmp_path, capsys):
    status, _, stderr = run_synth(_swbd(swbd_root, tmp_path / "out", "--animator-option", "lips=4"), capsys)
    assert status == 2
    assert "animator 'cartoon' rejected the options {'lips': 4}" in stderr
    assert "--animator-option" in stderr
    assert not (tmp_path / "out").exists()


def test_unknown_animator_lists_names(swbd_root, tmp_path, capsys):
    status, _, stderr = run_synth(_swbd(swbd_root, tmp_path / "out", "--animator", "echomimik"), capsys)
    assert status == 2
    assert "unknown animator 'echomimik'" in stderr
    assert "echomimic" in stderr


def test_recipe_windows_match_training_samples(swbd_root, tmp_path, capsys):
    from camabc_core.labels import build_label_scheme
    from camabc_core.recipe import SamplingSection
    from camabc_core.sampling import build_backchannel_samples
    from camabc_plugins.datasets.switchboard import SwitchboardReader

    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(
        "run:\n  seeds: [0, 1, 2]\n"
        f"data:\n  dataset: swbd\n  root: {swbd_root}\n  label_scheme: binary\n"
        "  window:\n    audio_seconds: 1.0\n"
        "  sampling:\n    nobc_tolerance_seconds: 0.5\n"
    )
    out = tmp_path / "out"
    status, _, _ = run_synth(_swbd(swbd_root, out, "--recipe", str(recipe), "--dry-run"), capsys)
    assert status == 0

    conversations = SwitchboardReader().load(swbd_root)
    scheme = build_label_scheme("binary", SwitchboardReader.default_category_map)
    sampling = SamplingSection(nobc_tolerance_seconds=0.5)
    expected = {f"clip/{sample.conversation_id}/{sample.speaker}/{round(sample.time * 1000):09d}"
                for seed in (0, 1, 2)
                for sample in build_backchannel_samples(conversations, scheme, sampling, seed)}
    status, _, _ = run_synth(_swbd(swbd_root, out, "--recipe", str(recipe), "--fps", "25"), capsys)
    assert status == 0
    records = _manifest(out)
    windows = {record_id: record for record_id, record in records.items() if record["kind"] == "window"}
    assert set(windows) == expected
    assert len(expected) > 4  # the three seeds draw different NoBC points
    assert all(record["end"] - record["start"] == pytest.approx(1.0) for record in windows.values())
    assert all(record["num_frames"] == 25 for record in windows.values())
