"""Training progress: a periodic log line and per-epoch summaries, from the main process only."""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping

logger = logging.getLogger("camabc_core.training")


def format_duration(seconds: float) -> str:
    seconds = max(0, int(seconds))
    hours, remainder = divmod(seconds, 3600)
    minutes, seconds = divmod(remainder, 60)
    return f"{hours}:{minutes:02d}:{seconds:02d}" if hours else f"{minutes}:{seconds:02d}"


class ProgressMeter:
    """Tracks throughput of one stage and writes a line every ``log_every`` optimiser steps.

    The line names the stage, epoch, step out of the stage total, each loss averaged over the
    steps since the previous line, every group's learning rate, samples per second and the ETA.
    Throughput counts only this session, so a resumed run's ETA is not skewed by the restart.
    """

    def __init__(self, stage: str, total_steps: int, log_every: int, *, enabled: bool = True) -> None:
        self.stage = stage
        self.total_steps = total_steps
        self.log_every = max(1, log_every)
        self.enabled = enabled
        self.started = time.perf_counter()
        self.session_steps = 0
        self.session_samples = 0
        self.window_losses: dict[str, list[float]] = {}

    def update(self, step: int, epoch: int, epochs: int, samples: int, losses: Mapping[str, float],
               learning_rates: Mapping[str, float]) -> str | None:
        """Record one optimiser step; return (and log) the progress line when one is due."""
        self.session_steps += 1
        self.session_samples += samples
        for name, value in losses.items():
            self.window_losses.setdefault(name, []).append(value)
        if step % self.log_every and step != self.total_steps:
            return None
        line = self.format_line(step, epoch, epochs, learning_rates)
        self.window_losses = {}
        if self.enabled:
            logger.info(line)
        return line

    def samples_per_second(self) -> float:
        elapsed = time.perf_counter() - self.started
        return self.session_samples / elapsed if elapsed > 0 else 0.0

    def format_line(self, step: int, epoch: int, epochs: int, learning_rates: Mapping[str, float]) -> str:
        elapsed = time.perf_counter() - self.started
        seconds_per_step = elapsed / self.session_steps if self.session_steps else 0.0
        eta = format_duration(seconds_per_step * max(0, self.total_steps - step))
        losses = " ".join(f"{name} {sum(v) / len(v):.4f}" for name, v in self.window_losses.items())
        rates = " ".join(f"lr_{name} {rate:.2e}" for name, rate in learning_rates.items())
        return (f"{self.stage} epoch {epoch + 1}/{epochs} step {step}/{self.total_steps} | {losses} | "
                f"{rates} | {self.samples_per_second():.1f} samples/s | ETA {eta}")


def log_epoch_summary(entry: Mapping[str, object]) -> None:
    parts = [f"{entry['stage']} epoch {int(entry['epoch']) + 1} done:",
             f"train loss {entry['train_loss']:.4f}"]
    if entry.get("validation_loss") is not None:
        parts.append(f"validation loss {entry['validation_loss']:.4f}")
    if entry.get("validation_macro_f1") is not None:
        parts.append(f"validation macro F1 {100 * entry['validation_macro_f1']:.2f}")
    if entry.get("improved"):
        parts.append("(best so far)")
    parts.append(f"in {format_duration(float(entry['seconds']))}")
    logger.info(" ".join(parts))
