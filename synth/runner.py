"""Runs a plan: references first, then clips, split across processes with Accelerate.

Every process builds the same plan. Under ``accelerate launch`` process ``k`` of ``n`` takes the
pending jobs whose position ``i`` in the pending list has ``i % n == k``. The phases are separated by
``PartialState.wait_for_everyone``, so every reference exists before any clip needs it. A failed job
is recorded in the manifest and the others go on. The run ends with a list of failures and exit
status 1.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import attrs
import numpy as np
from tqdm.auto import tqdm

from camabc_core.errors import CamabcError
from camabc_core.interfaces import AnimationRequest
from camabc_core.media import AudioSource
from synth.errors import AnimatorUnavailableError, SynthError
from synth.jobs import ClipJob, ComponentSpec, Plan, ReferenceJob, Track
from synth.levels import choose_active_tracks, frame_energies_db
from synth.manifest import MANIFEST_NAME, append_record, read_manifest, rewrite_manifest
from synth.media import load_png, save_png, write_clip, write_wav
from synth.timing import samples_for_frames

logger = logging.getLogger(__name__)

WORK_DIR_NAME = ".work"
# Failures printed at the end of a run; the manifest lists all of them.
MAX_LISTED_FAILURES = 30


@attrs.frozen
class RunOptions:
    """Output folder and clip encoding settings."""

    out_dir: Path
    #: Rate of the driving audio given to animators and muxed into clips.
    sample_rate: int = 16000
    #: x264 constant rate factor: lower is better quality and larger files.
    crf: int = 18


def process_state() -> Any:
    """Return Accelerate's ``PartialState`` for this process.

    Without a GPU the state is created with ``cpu=True``: Accelerate then joins the processes of
    ``accelerate launch --multi_gpu --num_processes N`` through the gloo backend, where it would
    otherwise treat each of them as a lone process.
    """
    import torch
    from accelerate import PartialState

    return PartialState(cpu=not torch.cuda.is_available())


def _is_done(record: Mapping[str, Any] | None, job_record: Mapping[str, Any], out_dir: Path) -> bool:
    return (record is not None and record.get("status") == "done"
            and record.get("fingerprint") == job_record["fingerprint"]
            and (out_dir / job_record["output"]).is_file())


def create_component(kind: str, spec: ComponentSpec) -> Any:
    """Build a reference generator or animator through the plugin registry.

    :raises SynthError: when the plugin rejects the options (unknown name or invalid value).
    """
    from camabc_core.registry import get_registry

    try:
        return get_registry().create(kind, spec.name, **dict(spec.options))
    except (TypeError, ValueError) as error:
        flag = "--reference-option" if kind == "reference_generator" else "--animator-option"
        raise SynthError(f"{kind} {spec.name!r} rejected the options {dict(spec.options)} ({error}); "
                         f"check the {flag} values against docs/synth.md") from error


class _Components:
    """Builds each named component once per process through the plugin registry, remembering failures."""

    def __init__(self, kind: str):
        self.kind = kind
        self._built: dict[str, Any] = {}

    def get(self, spec: ComponentSpec) -> Any:
        key = repr((spec.name, sorted(spec.options.items())))
        if key not in self._built:
            try:
                self._built[key] = create_component(self.kind, spec)
            except CamabcError as error:
                self._built[key] = error
        built = self._built[key]
        if isinstance(built, Exception):
            raise built
        return built


class _AudioFiles:
    """Decoded audio of the most recent file (clips arrive grouped by conversation), errors included."""

    def __init__(self, sample_rate: int):
        self.sample_rate = sample_rate
        self._path: str | None = None
        self._value: AudioSource | Exception | None = None

    def get(self, path: str) -> AudioSource:
        if path != self._path:
            self._path = path
            try:
                # Decoding raises MediaError for shorten-compressed SPHERE files, naming sph2pipe.
                self._value = AudioSource.from_file(path, self.sample_rate)
            except CamabcError as error:
                self._value = error
        if isinstance(self._value, Exception):
            raise self._value
        assert self._value is not None
        return self._value


class Runner:
    """Executes the jobs of one plan in this process's share."""

    def __init__(self, plan: Plan, options: RunOptions, state: Any = None):
        if state is None:
            state = process_state()
        self.plan = plan
        self.options = options
        self.state = state
        self.out_dir = options.out_dir
        self.manifest_path = options.out_dir / MANIFEST_NAME
        self.records = {record["id"]: record for record in plan.records()}
        self._generators = _Components("reference_generator")
        self._animators = _Components("animator")
        self._audio = _AudioFiles(options.sample_rate)
        # Reference records as the manifest holds them once the reference phase is over.
        self._finished_references: dict[str, dict[str, Any]] = {}
        # Warning of the clip being made (e.g. audio that ends inside the clip), stored in its record.
        self._clip_warning: str | None = None
        # Message of each unavailable-animator error -> the first job that failed with it.
        self._unavailable: dict[str, str] = {}

    # Planning ----------------------------------------------------------------------------------

    def _plan_error(self, job: ReferenceJob | ClipJob) -> str | None:
        return self.plan.blocking_error(job)

    def prepare(self) -> None:
        """Merge the plan into the manifest (main process) and remove leftovers of killed runs."""
        if self.state.is_main_process:
            self.out_dir.mkdir(parents=True, exist_ok=True)
            shutil.rmtree(self.out_dir / WORK_DIR_NAME, ignore_errors=True)
            for leftover in self.out_dir.glob("*/**/.*.tmp*"):
                leftover.unlink(missing_ok=True)
            previous = read_manifest(self.manifest_path)
            merged: list[dict[str, Any]] = []
            for job in [*self.plan.references, *self.plan.clips]:
                record = self.records[job.id]
                old = previous.pop(job.id, None)
                error = self._plan_error(job)
                if error is not None:
                    merged.append({**record, "status": "failed", "error": error})
                elif _is_done(old, record, self.out_dir):
                    kept = {key: old[key] for key in ("status", "seconds", "process") if key in old}
                    merged.append({**record, **kept})
                else:
                    merged.append({**record, "status": "pending"})
            # Jobs of earlier runs that this plan does not contain (another --limit) stay listed.
            merged.extend(previous.values())
            rewrite_manifest(self.manifest_path, merged)
        self.state.wait_for_everyone()

    def pending(self, jobs: Iterable[ReferenceJob | ClipJob]) -> list[ReferenceJob | ClipJob]:
        """Return the jobs that still need to run, read from the manifest on disk."""
        current = read_manifest(self.manifest_path)
        return [job for job in jobs if self._plan_error(job) is None
                and not _is_done(current.get(job.id), self.records[job.id], self.out_dir)]

    def my_share(self, jobs: list[ReferenceJob | ClipJob]) -> list[ReferenceJob | ClipJob]:
        return jobs[self.state.process_index::self.state.num_processes]

    # Execution ---------------------------------------------------------------------------------

    def _record(self, job: ReferenceJob | ClipJob, started: float, error: str | None,
                warning: str | None = None) -> None:
        record = {**self.records[job.id], "process": self.state.process_index,
                  "seconds": round(time.perf_counter() - started, 3)}
        record.update({"status": "failed", "error": error} if error else {"status": "done"})
        if warning:
            record["warning"] = warning
        append_record(self.manifest_path, record)

    def _run_job(self, job: ReferenceJob | ClipJob, work: Callable[[], None]) -> bool:
        started = time.perf_counter()
        self._clip_warning = None
        try:
            work()
        except AnimatorUnavailableError as error:
            # The same setup message would repeat for every clip, so only its first job carries it.
            first = self._unavailable.setdefault(str(error), job.id)
            if first != job.id:
                message = f"the animator cannot run, as reported for {first}"
                logger.debug("%s failed: %s", job.id, message)
                self._record(job, started, message)
                return False
            message = str(error)
        except CamabcError as error:
            message = str(error)
        except Exception as error:  # A broken plugin must not stop the other jobs of the run.
            logger.exception("%s: unexpected error", job.id)
            message = f"unexpected {type(error).__name__}: {error}"
        else:
            if self._clip_warning:
                logger.warning("%s: %s", job.id, self._clip_warning)
            self._record(job, started, None, self._clip_warning)
            return True
        logger.error("%s failed: %s", job.id, message)
        self._record(job, started, message)
        return False

    def _make_reference(self, job: ReferenceJob) -> None:
        assert job.profile is not None
        generator = self._generators.get(job.generator)
        image = generator.generate(job.profile.prompt, seed=job.profile.seed, width=job.width,
                                   height=job.height, attributes=job.profile.attributes)
        save_png(image, self.out_dir / job.output)

    def _reference(self, track: Track) -> tuple[Path, np.ndarray]:
        record = self._finished_references.get(track.reference_id, {})
        path = self.out_dir / self.records[track.reference_id]["output"]
        if record.get("status") != "done" or not path.is_file():
            reason = record.get("error", "it did not finish")
            raise SynthError(f"the reference portrait {track.reference_id} is missing ({reason}); "
                             f"fix that job and rerun")
        return path, load_png(path)

    def _make_clip(self, job: ClipJob) -> None:
        references = [self._reference(track) for track in job.tracks]
        sizes = {image.shape[:2] for _, image in references}
        if len(sizes) != 1:
            raise SynthError(f"the reference portraits of {job.id} differ in size {sorted(sizes)}; "
                             f"regenerate them with the same --width and --height")
        height, width = sizes.pop()
        animator = self._animators.get(job.animator)
        source = self._audio.get(job.audio_path)
        self._clip_warning = check_clip_span(source, job)
        num_samples = samples_for_frames(job.num_frames, job.fps, self.options.sample_rate)
        (self.out_dir / WORK_DIR_NAME).mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=self.out_dir / WORK_DIR_NAME,
                                         prefix=f"p{self.state.process_index}-") as scratch:
            work_dir = Path(scratch)
            streams, levels, wav_paths = [], [], []
            for index, (track, (reference_path, reference)) in enumerate(zip(job.tracks, references)):
                audio = self._driving_audio(source, job, track, num_samples)
                wav_paths.append(work_dir / f"driving-{index}.wav")
                write_wav(audio, self.options.sample_rate, wav_paths[-1])
                track_dir = work_dir / f"track-{index}"
                track_dir.mkdir()
                request = AnimationRequest(
                    reference=reference, reference_path=reference_path, audio=audio, audio_path=wav_paths[-1],
                    sample_rate=self.options.sample_rate, fps=job.fps, num_frames=job.num_frames,
                    start_time=job.start, seed=self.records[track.reference_id]["profile"]["seed"],
                    work_dir=track_dir,
                )
                streams.append(iter(animator.animate(request)))
                levels.append(frame_energies_db(audio, self.options.sample_rate, job.fps, job.num_frames))
            if len(streams) == 1:
                frames, mux_audio = streams[0], wav_paths[0]
            else:
                # A conversation clip shows the active speaker over the recording's audio (all channels).
                active = choose_active_tracks(np.stack(levels), job.fps)
                frames = _speaker_view(streams, active)
                mix, _ = source.window(job.end, num_samples, None)
                mux_audio = work_dir / "mix.wav"
                write_wav(mix, self.options.sample_rate, mux_audio)
            write_clip(self.out_dir / job.output, frames, num_frames=job.num_frames, fps=job.fps,
                       size=(width, height), audio_path=mux_audio, crf=self.options.crf)

    def _driving_audio(self, source: AudioSource, job: ClipJob, track: Track, num_samples: int) -> np.ndarray:
        # The window ends at ``end`` like the data pipeline's audio windows, so both use the same samples.
        samples, _ = source.window(job.end, num_samples, track.channel)
        if track.speech_intervals is not None:
            rate = self.options.sample_rate
            keep = np.zeros(num_samples, dtype=bool)
            first = round(job.end * rate) - num_samples
            for start, end in track.speech_intervals:
                keep[max(round(start * rate) - first, 0):max(round(end * rate) - first, 0)] = True
            samples[~keep] = 0.0
        return samples

    def run_phase(self, jobs: list[ReferenceJob | ClipJob], progress: tqdm) -> None:
        for job in self.my_share(jobs):
            progress.set_postfix_str(job.id, refresh=False)
            if isinstance(job, ReferenceJob):
                self._run_job(job, lambda job=job: self._make_reference(job))
            else:
                self._run_job(job, lambda job=job: self._make_clip(job))
            progress.update(1)

    def run(self) -> int:
        """Run this process's share of every pending job; return 1 if any job of the plan failed."""
        self.prepare()
        references = self.pending(self.plan.references)
        clips = self.pending(self.plan.clips)
        total = len(self.my_share(references)) + len(self.my_share(clips))
        with tqdm(total=total, desc=f"synth (process {self.state.process_index})", unit="job",
                  disable=not self.state.is_main_process) as progress:
            self.run_phase(references, progress)
            self.state.wait_for_everyone()
            self._finished_references = read_manifest(self.manifest_path)
            self.run_phase(clips, progress)
        self.state.wait_for_everyone()
        return self.finish()

    def finish(self) -> int:
        """Compact the manifest, print the summary and failures (main process) and return the status."""
        records = read_manifest(self.manifest_path)
        if self.state.is_main_process:
            rewrite_manifest(self.manifest_path, records.values())
        failures = [records[job_id] for job_id in self.records
                    if records.get(job_id, {}).get("status") != "done"]
        if self.state.is_main_process:
            print_summary(self.records, records, failures, self.manifest_path)
        return 1 if failures else 0


def check_clip_span(source: AudioSource, job: ClipJob) -> str | None:
    """Return a warning when the audio ends inside the clip; raise when the clip is wholly past its end.

    Both cases mean silent frames, which usually come from a truncated audio file or from a
    transcript that belongs to a longer recording. A clip may end up to one frame past the audio.
    """
    duration = source.num_samples / source.sample_rate
    frame = 1.0 / job.fps
    if job.start >= duration:
        raise SynthError(
            f"{job.audio_path}: the audio lasts {duration:.2f} s but the clip covers {job.start:.2f} to "
            f"{job.end:.2f} s, wholly past its end, so the clip would be silent; the file may be truncated "
            "(re-download or re-convert it) or the transcript may belong to another recording"
        )
    if job.end > duration + frame:
        return (f"{job.audio_path}: the audio lasts {duration:.2f} s but the clip runs to {job.end:.2f} s, "
                f"so its last {job.end - duration:.2f} s are silent; the file may be truncated")
    return None


def _speaker_view(streams: list[Iterator[np.ndarray]], active: np.ndarray) -> Iterator[np.ndarray]:
    """Advance every track's frames together and yield the active track's frame each time."""
    for index in active:
        frames = [next(stream, None) for stream in streams]
        if any(frame is None for frame in frames):
            return  # the muxer reports the missing frames
        yield frames[index]


def print_summary(planned: Mapping[str, Any], records: Mapping[str, Any], failures: list[Mapping[str, Any]],
                  manifest_path: Path) -> None:
    done = sum(1 for job_id in planned if records.get(job_id, {}).get("status") == "done")
    print(f"synth: {done} of {len(planned)} jobs done, {len(failures)} failed; manifest: {manifest_path}")
    warned = [records[job_id] for job_id in planned if records.get(job_id, {}).get("warning")]
    if warned:
        print(f"jobs done with a warning ({len(warned)}):")
        for record in warned[:MAX_LISTED_FAILURES]:
            print(f"  {record['id']}: {record['warning']}")
        if len(warned) > MAX_LISTED_FAILURES:
            print(f"  ... and {len(warned) - MAX_LISTED_FAILURES} more (field \"warning\" in the manifest)")
    if failures:
        print("failed jobs:")
        for record in failures[:MAX_LISTED_FAILURES]:
            print(f"  {record['id']}: {record.get('error', 'did not finish')}")
        if len(failures) > MAX_LISTED_FAILURES:
            print(f"  ... and {len(failures) - MAX_LISTED_FAILURES} more (status \"failed\" in the manifest)")
