"""Switchboard with synthesized video: synth's conversation clip, the reader's video_dir, recipes."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from synth_helpers import build_fake_switchboard, run_synth

from camabc_core.cli import main
from camabc_core.errors import CorpusFormatError, RecipeError
from camabc_core.recipe import WindowSection
from camabc_core.recipe_loading import load_recipe
from camabc_core.recipe_validation import InvalidRecipeError
from camabc_core.records import Sample
from camabc_core.training.data import load_conversations
from camabc_core.windows import WindowExtractor
from camabc_plugins.datasets.switchboard import SwitchboardReader

RECIPES_DIR = Path(__file__).resolve().parents[1] / "recipes"


@pytest.fixture
def swbd_root(tmp_path) -> Path:
    return build_fake_switchboard(tmp_path / "swbd")


def _add_conversation_2002(root: Path) -> None:
    """Copy conversation 2001 (words and audio) as 2002, so the tree has two conversations."""
    words = root / "swb_ms98_transcriptions" / "20" / "2001"
    for side in ("A", "B"):
        text = (words / f"sw2001{side}-ms98-a-word.text").read_text(encoding="latin-1")
        (words / f"sw2002{side}-ms98-a-word.text").write_text(text.replace("sw2001", "sw2002"),
                                                               encoding="latin-1")
    shutil.copyfile(root / "audio" / "sw02001.sph", root / "audio" / "sw02002.sph")


def _write_manifest(video_dir: Path, records: list[dict]) -> None:
    video_dir.mkdir(parents=True, exist_ok=True)
    lines = [json.dumps(record) for record in records]
    (video_dir / "manifest.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")


def _conversation_record(conversation: str, status: str = "done", **extra: str) -> dict:
    return {"id": f"conversation/{conversation}", "kind": "conversation", "conversation": conversation,
            "output": f"conversations/{conversation}.mp4", "status": status, **extra}


def test_synth_video_feeds_window_extractor(swbd_root, tmp_path, capsys):
    pytest.importorskip("moviepy")
    video_dir = tmp_path / "video"
    status, stdout, _ = run_synth(["swbd", "--swbd-root", str(swbd_root), "--out", str(video_dir),
                                   "--clips", "conversation", "--width", "64", "--height", "48",
                                   "--fps", "10"], capsys)
    assert status == 0, stdout

    (conversation,) = SwitchboardReader(video_dir=video_dir).load(swbd_root)
    assert conversation.video_path == video_dir / "conversations" / "sw2001.mp4"

    # Sample times 2.3, 2.675, 3.05 and 3.425 s show the 10 fps frames that start at 2.3, 2.6, 3.0 and
    # 3.4 s. A talks until 2.9 s, then no one talks until B starts at 3.3 s.
    window = WindowSection(audio_seconds=1.5, num_frames=4, image_size=32)
    extractor = WindowExtractor([conversation], window, ("video",))
    sample = Sample(conversation_id="sw2001", time=3.8, speaker="B", listener="A")
    video = extractor.extract(sample).video
    extractor.close()

    assert video.frames.shape == (4, 32, 32, 3)
    assert video.frames.dtype == np.uint8
    assert video.timestamps == pytest.approx([2.3, 2.6, 3.0, 3.4])
    assert any(not np.array_equal(frame, video.frames[0]) for frame in video.frames[1:])


def test_video_from_manifest(swbd_root, tmp_path):
    video_dir = tmp_path / "video"
    _write_manifest(video_dir, [_conversation_record("sw2001", output="elsewhere/call.mp4")])
    (video_dir / "elsewhere").mkdir()
    (video_dir / "elsewhere" / "call.mp4").write_bytes(b"")

    (conversation,) = SwitchboardReader(video_dir=video_dir).load(swbd_root)

    assert conversation.video_path == video_dir / "elsewhere" / "call.mp4"


def test_video_by_file_name_without_manifest(swbd_root, tmp_path):
    video = tmp_path / "video" / "conversations" / "sw2001.mp4"
    video.parent.mkdir(parents=True)
    video.write_bytes(b"")

    (conversation,) = SwitchboardReader(video_dir=tmp_path / "video").load(swbd_root)

    assert conversation.video_path == video


def test_missing_video_names_path_and_command(swbd_root, tmp_path):
    video_dir = tmp_path / "video"
    video_dir.mkdir()

    with pytest.raises(CorpusFormatError) as caught:
        SwitchboardReader(video_dir=video_dir).load(swbd_root)

    message = str(caught.value)
    assert "sw2001" in message
    assert str(video_dir / "conversations" / "sw2001.mp4") in message
    assert f"python -m synth swbd --swbd-root {swbd_root} --out {video_dir} --clips conversation" in message
    assert "skip_missing_video" in message


def test_failed_synth_job_gives_its_error(swbd_root, tmp_path):
    video_dir = tmp_path / "video"
    _write_manifest(video_dir, [_conversation_record("sw2001", status="failed", error="audio unreadable")])

    with pytest.raises(CorpusFormatError, match="its synth job has status 'failed': audio unreadable"):
        SwitchboardReader(video_dir=video_dir).load(swbd_root)


def test_window_clips_only_hint(swbd_root, tmp_path):
    video_dir = tmp_path / "video"
    window = {"id": "clip/sw2001/A/000001600", "kind": "window", "conversation": "sw2001",
              "output": "clips/sw2001/A/sw2001_A_000001600.mp4", "status": "done"}
    _write_manifest(video_dir, [window])

    with pytest.raises(CorpusFormatError) as caught:
        SwitchboardReader(video_dir=video_dir).load(swbd_root)

    assert "lists 1 window job(s) but no conversation videos" in str(caught.value)


def test_skip_missing_video_keeps_the_rest(swbd_root, tmp_path):
    _add_conversation_2002(swbd_root)
    video_dir = tmp_path / "video"
    _write_manifest(video_dir, [_conversation_record("sw2001")])
    (video_dir / "conversations").mkdir()
    (video_dir / "conversations" / "sw2001.mp4").write_bytes(b"")

    reader = SwitchboardReader(video_dir=video_dir, skip_missing_video=True)
    conversations = reader.load(swbd_root)

    assert [conversation.id for conversation in conversations] == ["sw2001"]
    assert reader.skipped_without_video == ["sw2002"]
    with pytest.raises(CorpusFormatError, match="1 of 2 conversation"):
        SwitchboardReader(video_dir=video_dir).load(swbd_root)


def test_empty_video_dir_option_is_rejected():
    with pytest.raises(CorpusFormatError, match="video_dir option is empty"):
        SwitchboardReader(video_dir="")


def test_swbd_recipe_reader_options_validate(swbd_root, tmp_path):
    video = tmp_path / "video" / "conversations" / "sw2001.mp4"
    video.parent.mkdir(parents=True)
    video.write_bytes(b"")
    recipe = load_recipe(RECIPES_DIR / "swbd.yaml", [f"data.root={swbd_root}",
                                                     f"data.reader_options.video_dir={video.parents[1]}"])

    assert recipe.data.reader_options == {"video_dir": str(video.parents[1]), "skip_missing_video": False}
    conversations, _ = load_conversations(recipe)
    assert conversations[0].video_path == video


def test_misspelled_reader_option_fails_validation():
    with pytest.raises(InvalidRecipeError) as caught:
        load_recipe(RECIPES_DIR / "swbd.yaml", ["data.reader_options.vidoe_dir=/data/video"])

    message = str(caught.value)
    assert "data.reader_options.vidoe_dir: dataset 'swbd' has no option 'vidoe_dir'" in message
    assert "Did you mean 'video_dir'?" in message
    assert "Accepted options: audio_dir, spurt_pause_seconds," in message
    assert "skip_missing_video" in message


def test_skip_malformed_reader_option_points_to_data_setting():
    expected = r"data.reader_options.skip_malformed: set data.skip_malformed"
    with pytest.raises(InvalidRecipeError, match=expected):
        load_recipe(RECIPES_DIR / "swbd.yaml", ["data.reader_options.skip_malformed=true"])


def test_unvalidated_recipe_fails_at_load(swbd_root):
    overrides = [f"data.root={swbd_root}", "data.reader_options.max_secs=2"]
    recipe = load_recipe(RECIPES_DIR / "swbd.yaml", overrides, validate=False)

    with pytest.raises(RecipeError, match=r"data.reader_options.max_secs: .*Did you mean 'max_seconds'\?"):
        load_conversations(recipe)


def test_stats_reader_option_is_checked(swbd_root, capsys):
    status = main(["data", "stats", "swbd", str(swbd_root), "--reader-option", "vidoe_dir=/data/video"])

    assert status != 0
    assert "--reader-option vidoe_dir: dataset 'swbd' has no option 'vidoe_dir'" in capsys.readouterr().err


def test_synth_follows_recipe_rule_thresholds(swbd_root, tmp_path, capsys):
    # B's "uh-huh" lasts 0.35 s and A's "yeah" 0.25 s, so max_seconds 0.3 keeps only "yeah". The
    # recipe's video_dir names the folder being made and must not be read.
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text("data:\n  dataset: swbd\n  label_scheme: binary\n  reader_options:\n"
                      f"    max_seconds: 0.3\n    video_dir: {tmp_path / 'not-made-yet'}\n", encoding="utf-8")
    arguments = ["swbd", "--swbd-root", str(swbd_root), "--out", str(tmp_path / "video"),
                 "--points", "backchannels", "--dry-run"]

    status, stdout, _ = run_synth([*arguments, "--recipe", str(recipe)], capsys)
    assert status == 0
    assert "window: 1 jobs" in stdout
    status, stdout, _ = run_synth(arguments, capsys)
    assert status == 0
    assert "window: 2 jobs" in stdout
