"""``camabc demo`` end to end on the bundled call, at a smaller size, and its output-folder rules.

The call (data/samples/pyannote_call, MIT, see the LICENSE.md there) has 81 transcribed words:
Diane 46, Sheila 35. Its RTTM has one turn that the short-turn rule labels a backchannel: speaker91
(Sheila) at 18.150 s for 0.440 s, inside speaker90's (Diane's) turn from 18.050 s to 21.490 s.
The demo recipe draws 24 NoBC points per backchannel and splits 6 : 2 : 2, stratified. The 24 NoBC
points split 14 / 5 / 5 (cumulative rounding of 14.4 and 19.2), and the single BC sample rounds into
the training split (0.6 + 0.5 rounds down to 1, so its one sample goes to train).
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import re
from pathlib import Path

import av
import pytest
import torch

from camabc_core.cli import main
from camabc_core.demo import SAMPLE_DIR
from camabc_core.demo.pipeline import STATE_FILE, prepare_output_dir

# Smaller than the demo's defaults: half-second windows of 32-pixel frames, a 4 fps video, two
# Context Alignment steps, one Backchannel Alignment epoch, and predictions at word ends only.
FAST_OPTIONS = [
    "--video-size", "32", "--video-fps", "4", "--predict-step", "0",
    "--set", "data.window.audio_seconds=0.5",
    "--set", "data.window.image_size=32",
    "--set", "context_alignment.max_steps=2",
    "--set", "backchannel_alignment.epochs=1",
]


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """Run the fast demo once; return its output folder and what it printed."""
    output = tmp_path_factory.mktemp("demo") / "out"
    threads = torch.get_num_threads()
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        status = main(["demo", "--output", str(output), *FAST_OPTIONS])
    assert status == 0
    # The recipe's run.cpu_threads applies during the demo only.
    assert torch.get_num_threads() == threads
    return output, printed.getvalue()


@pytest.mark.slow
def test_demo_corpus_copies_call(demo_run):
    output, _ = demo_run
    corpus = output / "corpus"
    for name in ("sample.wav", "sample.rttm", "sample.stm", "LICENSE.md"):
        assert (corpus / name).read_bytes() == (SAMPLE_DIR / name).read_bytes()


@pytest.mark.slow
def test_demo_video_covers_call(demo_run):
    output, _ = demo_run
    with av.open(str(output / "corpus" / "sample.mp4")) as container:
        kinds = [stream.type for stream in container.streams]
        video = container.streams.video[0]
        size = (video.codec_context.width, video.codec_context.height)
        duration = float(video.duration * video.time_base)
    assert kinds == ["video", "audio"]
    assert size == (32, 32)
    assert duration == pytest.approx(30.0, abs=0.3)
    assert (output / "video" / "references" / "sample-Diane.png").is_file()
    assert (output / "video" / "references" / "sample-Sheila.png").is_file()


@pytest.mark.slow
def test_demo_labels_one_backchannel(demo_run):
    output, _ = demo_run
    facts = json.loads((output / STATE_FILE).read_text(encoding="utf-8"))
    assert facts["status"] == "done"
    (event,) = facts["backchannels"]
    assert event["listener"] == "Sheila"
    assert event["start"] == pytest.approx(18.15)
    assert event["end"] == pytest.approx(18.59)


@pytest.mark.slow
def test_demo_sample_counts(demo_run):
    output, _ = demo_run
    summary = json.loads((output / "run" / "data_summary.json").read_text(encoding="utf-8"))
    assert summary["context_samples"] == 81
    splits = summary["splits"]
    assert splits["train"]["per_class"] == {"NoBC": 14, "BC": 1}
    assert splits["validation"]["per_class"] == {"NoBC": 5, "BC": 0}
    assert splits["test"]["per_class"] == {"NoBC": 5, "BC": 0}


@pytest.mark.slow
def test_demo_trains_both_stages(demo_run):
    output, _ = demo_run
    history = json.loads((output / "run" / "history.json").read_text(encoding="utf-8"))
    stages = [entry["stage"] for entry in history]
    # Two CA steps of 16 windows fit in the first of the recipe's two epochs; then one BA epoch.
    assert stages == ["context_alignment", "backchannel_alignment"]
    assert (output / "tokenizer" / "tokenizer.json").is_file()
    assert (output / "run" / "checkpoints" / "best" / "model.safetensors").is_file()


@pytest.mark.slow
def test_demo_report_files(demo_run):
    output, _ = demo_run
    run = output / "run"
    for name in ("report.md", "confusion_matrix.png", "training_curves.png", "predictions_test.json"):
        assert (run / name).stat().st_size > 0, name
    metrics = json.loads((run / "metrics.json").read_text(encoding="utf-8"))
    assert metrics["classes"] == ["NoBC", "BC"]
    assert metrics["absent_classes"] == ["BC"]
    # Five NoBC test samples, whatever the model predicts for them.
    assert [sum(row) for row in metrics["confusion_matrix"]] == [5, 0]


@pytest.mark.slow
def test_demo_timeline_at_word_ends(demo_run):
    output, _ = demo_run
    with (output / "prediction" / "timeline.csv").open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    # Diane has the most words, so she is the speaker; --predict-step 0 keeps her 46 word ends.
    assert len(rows) == 46
    assert {row["source"] for row in rows} == {"word_end"}
    assert rows[-1]["last_word"] == "now."
    for row in rows:
        assert float(row["p_NoBC"]) + float(row["p_BC"]) == pytest.approx(1.0, abs=1e-5)
    assert (output / "prediction" / "timeline.png").stat().st_size > 0
    assert (output / "prediction" / "timeline.json").is_file()


@pytest.mark.slow
def test_demo_prints_outputs_and_caveat(demo_run):
    output, printed = demo_run
    assert "pipeline demonstration" in printed
    assert "docs/results.md" in printed
    assert "camabc predict" in printed
    for name in ("report.md", "confusion_matrix.png", "training_curves.png", "timeline.csv", "timeline.png"):
        assert name in printed, name
    # synth prints its own line first; the summary ends the output.
    assert printed.strip().endswith((output / "summary.txt").read_text(encoding="utf-8").strip())


def test_output_dir_replaces_earlier_demo(tmp_path):
    output = tmp_path / "out"
    (output / "run").mkdir(parents=True)
    (output / "run" / "report.md").write_text("old", encoding="utf-8")
    (output / STATE_FILE).write_text("{}", encoding="utf-8")
    (output / "notes.txt").write_text("mine", encoding="utf-8")

    prepare_output_dir(output)

    assert not (output / "run").exists()
    assert (output / "notes.txt").read_text(encoding="utf-8") == "mine"
    assert json.loads((output / STATE_FILE).read_text(encoding="utf-8"))["status"] == "running"


def test_output_dir_rejects_foreign_folder(tmp_path, capsys):
    (tmp_path / "thesis.tex").write_text("keep", encoding="utf-8")

    assert main(["demo", "--output", str(tmp_path)]) == 1

    assert "contains no earlier demo" in capsys.readouterr().err
    assert sorted(path.name for path in tmp_path.iterdir()) == ["thesis.tex"]


def test_demo_rejects_managed_override(tmp_path, capsys):
    output = tmp_path / "out"

    assert main(["demo", "--output", str(output), "--set", "data.root=/elsewhere"]) == 1

    assert "choose the output folder with --output" in capsys.readouterr().err
    assert not output.exists()


def test_readme_demo_command():
    readme = (Path(__file__).parents[1] / "README.md").read_text(encoding="utf-8")
    blocks = re.findall(r"<!-- (\S+)-command:start -->\n```bash\n(.*?)\n```\n<!-- \1-command:end -->", readme,
                        flags=re.DOTALL)

    # Two set-up commands: the demo on the bundled call, and the tests (which .ci/run reads).
    assert [name for name, _ in blocks] == ["demo", "test"]
    assert dict(blocks)["demo"] == "bash scripts/setup.sh && .venv/bin/camabc demo"
