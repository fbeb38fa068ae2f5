"""The demo corpus: the real two-person phone call, its labels, and a synthesized speaker video.

The call in ``data/samples/pyannote_call`` (30 s of 16 kHz mono audio, RTTM speaker turns and an
STM transcript, MIT licence) is copied into the corpus folder. ``python -m synth audio`` with its
CPU cartoon reference generator and animator makes one video of the whole call that shows the
current speaker. The video is copied beside the audio as ``sample.mp4``, where the ``stm`` dataset
reader finds it. The reader labels backchannels with its rule: a listener turn of at most 1 s and
3 words that lies inside the partner's turn. In this call the rule finds one, by Sheila at 18.15 s.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path
from typing import Any

import attrs

from camabc_core.errors import CamabcError
from camabc_core.records import Conversation

logger = logging.getLogger(__name__)

#: The bundled call, in a source checkout of camabc (it is not installed with the package).
SAMPLE_DIR = Path(__file__).resolve().parents[2] / "data" / "samples" / "pyannote_call"
#: File id of the call in its RTTM and STM files, and so the stem of its media files.
FILE_ID = "sample"
SAMPLE_FILES = (f"{FILE_ID}.wav", f"{FILE_ID}.rttm", f"{FILE_ID}.stm", "LICENSE.md")

# synth draws each face from sex and age. The transcript names the two people Diane and Sheila, both
# women's names, and the blank ages are drawn by synth (seeded).
SPEAKER_INFO_CSV = "speaker,sex,age\nDiane,female,\nSheila,female,\n"
SYNTH_CLIP_ID = f"conversation/{FILE_ID}"


@attrs.frozen
class DemoCorpus:
    """The corpus folder (the recipe's ``data.root``) and what the demo made for it."""

    directory: Path
    #: The call as the ``stm`` reader loads it: words, the rule's backchannels, audio and video paths.
    conversation: Conversation
    #: The synthesized video beside the audio (``directory/sample.mp4``).
    video: Path
    #: Folder of the synth run: manifest.jsonl, references/ (one face per speaker), conversations/.
    synth_dir: Path
    #: The backchannel rule with the reader's settings, in words.
    rule: str
    video_size: int
    video_fps: int


def check_sample_dir(sample_dir: Path) -> None:
    """Raise CamabcError unless ``sample_dir`` contains every file of the call."""
    missing = [name for name in SAMPLE_FILES if not (sample_dir / name).is_file()]
    if missing:
        raise CamabcError(
            f"the demo sample {sample_dir} lacks {', '.join(missing)}; camabc demo runs from a source "
            "checkout of camabc, which has the call in data/samples/pyannote_call"
        )


def copy_sample(sample_dir: Path, corpus_dir: Path) -> None:
    """Copy the call's audio, turns, transcript and licence note into ``corpus_dir``."""
    check_sample_dir(sample_dir)
    corpus_dir.mkdir(parents=True, exist_ok=True)
    for name in SAMPLE_FILES:
        shutil.copyfile(sample_dir / name, corpus_dir / name)


def synthesize_video(corpus_dir: Path, synth_dir: Path, *, size: int, fps: int, seed: int) -> Path:
    """Run ``python -m synth audio`` (cartoon path) on the call and return the video it made.

    The video shows the face of the current speaker, driven by the call's audio, and carries that
    audio.
    """
    try:
        from synth.cli import main as synth_main
        from synth.manifest import MANIFEST_NAME, read_manifest
    except ImportError as error:
        raise CamabcError(
            f"camabc demo synthesizes the speaker video with synth, which failed to import ({error}); "
            "install camabc with its synth extra: pip install -e '.[synth]'"
        ) from error

    synth_dir.mkdir(parents=True, exist_ok=True)
    speaker_info = synth_dir / "speakers.csv"
    speaker_info.write_text(SPEAKER_INFO_CSV, encoding="utf-8")
    arguments = [
        "audio",
        "--audio", str(corpus_dir / f"{FILE_ID}.wav"),
        "--turns", str(corpus_dir / f"{FILE_ID}.rttm"),
        "--transcript", str(corpus_dir / f"{FILE_ID}.stm"),
        "--speaker-info", str(speaker_info),
        "--out", str(synth_dir),
        "--clips", "conversation",
        "--fps", str(fps),
        "--width", str(size),
        "--height", str(size),
        "--seed", str(seed),
    ]
    logger.info("synthesizing the speaker video: python -m synth %s", " ".join(arguments))
    status = synth_main(arguments)
    manifest = synth_dir / MANIFEST_NAME
    record = read_manifest(manifest).get(SYNTH_CLIP_ID)
    if status != 0 or record is None or record.get("status") != "done":
        raise CamabcError(
            f"python -m synth audio failed (exit status {status}) to make {SYNTH_CLIP_ID}; its job "
            f"records are in {manifest}"
        )
    return synth_dir / record["output"]


def load_call(corpus_dir: Path, reader_options: dict[str, Any] | None = None) -> tuple[Conversation, str]:
    """Load the corpus folder with the ``stm`` reader and the recipe's reader options, as training will.

    Returns the call and the reader's backchannel rule in words.
    """
    from camabc_core.registry import get_registry

    reader = get_registry().create("dataset", "stm", **(reader_options or {}))
    conversations = reader.load(corpus_dir)
    if len(conversations) != 1:
        raise CamabcError(
            f"expected the one call in {corpus_dir}, but the stm reader found {len(conversations)}"
        )
    rule = reader.rule
    description = (
        f"a listener turn of at most {rule.max_seconds:g} s and {rule.max_words} words that lies inside "
        f"the partner's turn (the partner's pauses up to {rule.partner_pause_seconds:g} s bridged)"
    )
    return conversations[0], description


def build_demo_corpus(sample_dir: Path, corpus_dir: Path, synth_dir: Path, *, video_size: int,
                      video_fps: int, seed: int, reader_options: dict[str, Any] | None = None) -> DemoCorpus:
    """Copy the call into ``corpus_dir``, synthesize its video into ``synth_dir``, and load it."""
    copy_sample(sample_dir, corpus_dir)
    clip = synthesize_video(corpus_dir, synth_dir, size=video_size, fps=video_fps, seed=seed)
    video = corpus_dir / f"{FILE_ID}.mp4"
    shutil.copyfile(clip, video)

    conversation, rule = load_call(corpus_dir, reader_options)
    if conversation.video_path is None or Path(conversation.video_path).resolve() != video.resolve():
        raise CamabcError(f"the stm reader did not find the video {video} beside the audio")
    events = ", ".join(f"{event.listener} at {event.start:.2f}-{event.end:.2f} s"
                       for event in conversation.backchannels)
    logger.info("demo corpus %s: %d words, %d backchannels by the short-turn rule (%s)", corpus_dir,
                len(conversation.words), len(conversation.backchannels), events or "none")
    return DemoCorpus(corpus_dir, conversation, video, synth_dir, rule, video_size, video_fps)
