"""Job manifest and the split of jobs across processes (Accelerate)."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

import attrs
import pytest

from synth.jobs import ClipJob, ComponentSpec, Plan, ReferenceJob, Track
from synth.manifest import append_record, read_manifest, rewrite_manifest
from synth.profiles import build_profile
from synth.runner import Runner, RunOptions

CALL = Path(__file__).resolve().parents[1] / "data" / "samples" / "pyannote_call"


@attrs.define
class FakeState:
    """The parts of accelerate's PartialState the runner uses."""

    process_index: int
    num_processes: int

    @property
    def is_main_process(self) -> bool:
        return self.process_index == 0

    def wait_for_everyone(self) -> None:
        pass


def _plan(num_clips: int) -> Plan:
    spec = ComponentSpec("cartoon")
    reference = ReferenceJob("speaker", build_profile("speaker", 0), "references/speaker.png", 64, 64, spec)
    clips = [
        ClipJob(conversation_id="call", kind="window", audio_path="call.wav", start=index, end=index + 1.5,
                fps=30, num_frames=45, output=f"clips/{index}.mp4", animator=spec,
                tracks=(Track("A", "speaker", reference.id, None),))
        for index in range(num_clips)
    ]
    return Plan(references=[reference], clips=clips)


def test_processes_split_jobs_disjointly(tmp_path):
    plan = _plan(7)
    shares = []
    for index in range(3):
        runner = Runner(plan, RunOptions(out_dir=tmp_path), FakeState(index, 3))
        shares.append([job.id for job in runner.my_share(list(plan.clips))])
    assert [len(share) for share in shares] == [3, 2, 2]
    assert sorted(job_id for share in shares for job_id in share) == sorted(job.id for job in plan.clips)
    assert shares[1] == [plan.clips[1].id, plan.clips[4].id]


def test_pending_skips_done_with_same_fingerprint(tmp_path):
    plan = _plan(3)
    runner = Runner(plan, RunOptions(out_dir=tmp_path), FakeState(0, 1))
    runner.prepare()
    done = plan.clips[1]
    (tmp_path / done.output).parent.mkdir(parents=True)
    (tmp_path / done.output).write_bytes(b"mp4")
    append_record(tmp_path / "manifest.jsonl", {**runner.records[done.id], "status": "done"})
    assert [job.id for job in runner.pending(plan.clips)] == [plan.clips[0].id, plan.clips[2].id]
    # The same record with another fingerprint (another option) does not count as done.
    changed = {**runner.records[done.id], "status": "done", "fingerprint": "x"}
    append_record(tmp_path / "manifest.jsonl", changed)
    assert len(runner.pending(plan.clips)) == 3


def test_manifest_last_record_wins_and_torn_line_skipped(tmp_path, caplog):
    path = tmp_path / "manifest.jsonl"
    rewrite_manifest(path, [{"id": "a", "status": "pending"}, {"id": "b", "status": "pending"}])
    append_record(path, {"id": "a", "status": "done"})
    with path.open("a") as stream:
        stream.write('{"id": "b", "sta')
    records = read_manifest(path)
    assert records == {"a": {"id": "a", "status": "done"}, "b": {"id": "b", "status": "pending"}}
    assert "line 4 is not valid JSON" in caplog.text


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.mark.slow
def test_accelerate_launch_two_processes(tmp_path):
    pytest.importorskip("moviepy")
    out = tmp_path / "out"
    command = [
        sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
        "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
        "--main_process_port", str(_free_port()), "-m", "synth", "audio",
        "--audio", str(CALL / "sample.wav"), "--turns", str(CALL / "sample.rttm"),
        "--transcript", str(CALL / "sample.stm"), "--out", str(out), "--points", "context", "--limit", "6",
        "--width", "32", "--height", "32",
    ]
    completed = subprocess.run(command, capture_output=True, text=True, timeout=300, check=False)
    assert completed.returncode == 0, completed.stdout + completed.stderr
    records = [json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines()]
    assert len(records) == 8  # 2 references and 6 clips
    assert all(record["status"] == "done" for record in records)
    assert {record["process"] for record in records} == {0, 1}
    assert completed.stdout.count("synth: 8 of 8 jobs done, 0 failed") == 1  # only the main process prints
