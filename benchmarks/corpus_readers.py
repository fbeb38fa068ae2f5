"""Check the corpus readers on the full real corpora and time how long loading takes.

Run from the repository root:

    .venv/bin/python benchmarks/corpus_readers.py --backspeech-root DIR --backcast-root DIR [--repeats 3]

It prints two checks:

1. BACKSpeech: the reader's backchannel count per raw category next to an independent count of
   the ``(BC/category)`` marks, found by one regular expression in the raw annotation text. It
   prints whether the two agree and how many seconds reading the corpus took.
2. BACKCast: how many dialogue folders contain a ``word.tsv``, how many conversations the reader
   returns, their words and backchannels, and the seconds to read all of them (each repeat reads
   the corpus again). The minimum and median wall time and the minimum CPU time are printed,
   because wall time grows when other processes share the CPUs.
"""

from __future__ import annotations

import argparse
import logging
import re
import statistics
import sys
import time
from collections import Counter
from pathlib import Path

from camabc_plugins.datasets.backcast import BackcastReader
from camabc_plugins.datasets.backspeech import BackspeechReader

TAG_MARK = re.compile(r"\(BC/([^()]*)\)")


def check_backspeech(root: Path) -> bool:
    started = time.perf_counter()
    conversations = BackspeechReader().load(root)
    seconds = time.perf_counter() - started

    found = Counter(event.category for c in conversations for event in c.backchannels)
    files = sorted((root / "annotation").glob("*.csv")) or sorted(root.glob("*.csv"))
    independent = Counter(
        category for path in files for category in TAG_MARK.findall(path.read_text(encoding="utf-8"))
    )
    print(f"BACKSpeech: {len(files)} annotation files, {len(conversations)} conversations, "
          f"read in {seconds:.2f} s")
    print(f"  {'category':<22}{'reader':>8}{'regex':>8}")
    for category in sorted(set(found) | set(independent), key=lambda name: -independent[name]):
        print(f"  {category:<22}{found[category]:>8,}{independent[category]:>8,}")
    print(f"  {'total':<22}{sum(found.values()):>8,}{sum(independent.values()):>8,}")
    agree = found == independent
    print(f"  reader and regex counts agree: {agree}")
    return agree


def check_backcast(root: Path, repeats: int) -> bool:
    folders = sorted({path.parent for path in root.glob("*/*/word.tsv")})
    timings = []
    cpu_timings = []
    conversations = []
    for _ in range(repeats):
        conversations = []  # release the previous repeat's records before reading again
        started, cpu_started = time.perf_counter(), time.process_time()
        conversations = BackcastReader().load(root)
        timings.append(time.perf_counter() - started)
        cpu_timings.append(time.process_time() - cpu_started)
    words = sum(len(c.words) for c in conversations)
    events = sum(len(c.backchannels) for c in conversations)
    print(f"BACKCast: {len(folders):,} dialogue folders, {len(conversations):,} conversations loaded, "
          f"{words:,} words, {events:,} backchannels")
    print(f"  read in {min(timings):.2f} s (min), {statistics.median(timings):.2f} s (median of {repeats}); "
          f"CPU time {min(cpu_timings):.2f} s (min)")
    complete = len(conversations) == len(folders)
    print(f"  every dialogue folder loaded: {complete}")
    return complete


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backspeech-root", type=Path, required=True,
                        help="BACKSpeech folder that contains annotation/")
    parser.add_argument("--backcast-root", type=Path, required=True,
                        help="BACKCast folder that contains <program>/<dialogue>/word.tsv")
    parser.add_argument("--repeats", type=int, default=3, help="number of times to read BACKCast (default 3)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")

    backspeech_ok = check_backspeech(args.backspeech_root)
    backcast_ok = check_backcast(args.backcast_root, args.repeats)
    return 0 if backspeech_ok and backcast_ok else 1


if __name__ == "__main__":
    sys.exit(main())
