"""``camabc data stats``: the class, split and context-sample counts of a corpus, as a table or JSON."""

from __future__ import annotations

import argparse
import json
import logging
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from camabc_core.errors import RecipeError
from camabc_core.labels import SCHEME_CLASSES, LabelScheme, build_label_scheme
from camabc_core.recipe import SamplingSection
from camabc_core.records import Conversation

logger = logging.getLogger(__name__)


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("data", help="inspect corpora through their dataset readers")
    actions = parser.add_subparsers(dest="data_command", metavar="ACTION", required=True)

    stats = actions.add_parser(
        "stats",
        help="count backchannels, NoBC samples, splits and context samples of a corpus",
        description=(
            "Read a corpus with a dataset reader and print the sample counts that training would use: "
            "NoBC and backchannel classes of the Backchannel Alignment samples, their train/validation/"
            "test split, the number of Context Alignment samples (one per word), and the raw corpus "
            "categories before mapping."
        ),
    )
    stats.add_argument("dataset", metavar="DATASET", help="dataset reader name (see `camabc plugins`)")
    stats.add_argument("root", type=Path, metavar="ROOT",
                       help="corpus folder; backspeech, backcast, manifest and stm also accept one "
                            "annotation file (.csv, word.tsv, .jsonl, .stm/.rttm)")
    stats.add_argument(
        "--json", action="store_true",
        help="print one JSON object: raw_categories, classes, splits, context_samples and more",
    )
    stats.add_argument("--label-scheme", choices=sorted(SCHEME_CLASSES), default=None,
                       help="label scheme (default: the reader's own, four_class for the Korean corpora)")
    stats.add_argument("--category-map", action="append", default=[], metavar="RAW=CLASS",
                       help="map a raw category to a class, e.g. --category-map ASSESSMENT=Empathy; "
                            "repeat for several; replaces the reader's default mapping")
    stats.add_argument("--skip-malformed", action="store_true",
                       help="skip malformed annotation lines (the count is logged) instead of failing")
    stats.add_argument("--reader-option", action="append", default=[], metavar="KEY=VALUE",
                       help="reader option, value read as YAML, e.g. --reader-option max_seconds=1.5 or "
                            "video_dir=/data/swbd-video (a recipe's data.reader_options); repeatable")
    stats.add_argument("--seed", type=int, default=0, help="seed of NoBC sampling and splitting (default 0)")
    stats.add_argument("--split-by", choices=("sample", "conversation"), default="sample",
                       help="split samples stratified by label (default) or whole conversations")
    stats.set_defaults(func=run_stats)


def parse_key_values(pairs: Sequence[str], option: str, *, parse_values: bool) -> dict[str, Any]:
    """Parse ``KEY=VALUE`` strings; values are YAML scalars when ``parse_values`` is set."""
    parsed: dict[str, Any] = {}
    for pair in pairs:
        key, separator, value = pair.partition("=")
        if not separator or not key.strip():
            raise RecipeError(f"invalid {option} {pair!r}: expected KEY=VALUE")
        parsed[key.strip()] = yaml.safe_load(value) if parse_values else value.strip()
    return parsed


def compute_statistics(conversations: Sequence[Conversation], scheme: LabelScheme,
                       sampling: SamplingSection, seed: int) -> dict[str, Any]:
    """Count raw categories, sample classes, splits and context samples as training would build them."""
    from camabc_core.sampling import build_backchannel_samples, build_context_samples, split_samples

    raw_categories = Counter(event.category for c in conversations for event in c.backchannels)
    unmapped = {category: count for category, count in raw_categories.items()
                if scheme.class_id(category) is None}
    samples = build_backchannel_samples(conversations, scheme, sampling, seed)
    class_counts = Counter(scheme.classes[sample.label] for sample in samples)
    splits = split_samples(samples, sampling.split, seed, by=sampling.split_by)
    return {
        "raw_categories": dict(sorted(raw_categories.items(), key=lambda item: (-item[1], item[0]))),
        "classes": {name: class_counts.get(name, 0) for name in scheme.classes},
        "splits": {name: len(split) for name, split in splits.items()},
        "context_samples": len(build_context_samples(conversations)),
        "total_samples": len(samples),
        "unmapped_categories": unmapped,
        "conversations": len(conversations),
        "words": sum(len(c.words) for c in conversations),
        "label_scheme": scheme.name,
    }


def format_table(statistics: dict[str, Any], dataset: str) -> str:
    """Lay the statistics out as one table row (classes, splits, total, CA samples), then raw categories."""
    classes = list(statistics["classes"])
    splits = list(statistics["splits"])
    header = [*classes, *(name.capitalize() for name in splits), "Total", "CA samples"]
    values = [*(statistics["classes"][name] for name in classes),
              *(statistics["splits"][name] for name in splits),
              statistics["total_samples"], statistics["context_samples"]]
    cells = [f"{value:,}" for value in values]
    widths = [max(len(title), len(cell)) for title, cell in zip(header, cells)]
    lines = [
        f"{dataset}: {statistics['conversations']:,} conversations, {statistics['words']:,} words, "
        f"{statistics['label_scheme']} labels",
        "  ".join(title.rjust(width) for title, width in zip(header, widths)),
        "  ".join(cell.rjust(width) for cell, width in zip(cells, widths)),
        "",
        "Raw categories:",
    ]
    raw = statistics["raw_categories"]
    name_width = max((len(name) for name in raw), default=0)
    for name, count in raw.items():
        note = "  (unmapped, not sampled)" if name in statistics["unmapped_categories"] else ""
        lines.append(f"  {name.ljust(name_width)}  {count:>9,}{note}")
    if not raw:
        lines.append("  (none)")
    return "\n".join(lines)


def category_map_hint(statistics: dict[str, Any], scheme: LabelScheme) -> str:
    """Return the ``--category-map`` options that keep the current mapping and add the unmapped categories.

    The option replaces the whole default map, so the hint repeats the categories mapped now.
    """
    options = []
    for category in statistics["raw_categories"]:
        class_id = scheme.class_id(category)
        class_name = "CLASS" if class_id is None else scheme.classes[class_id]
        options.append(f"--category-map {_shell_word(f'{category}={class_name}')}")
    choices = ", ".join(name for name in scheme.classes if name != scheme.classes[0])
    return f"{' '.join(options)} (CLASS is one of {choices})"


def _shell_word(text: str) -> str:
    # BACKSpeech categories contain spaces ("request confirmation").
    return f"'{text}'" if any(character.isspace() for character in text) else text


def warn_about_labels(statistics: dict[str, Any], scheme: LabelScheme, root: Path) -> None:
    """Log a warning when raw categories are unmapped or no Backchannel Alignment sample was built."""
    unmapped = statistics["unmapped_categories"]
    if unmapped:
        listed = ", ".join(f"{category!r} ({count})" for category, count in unmapped.items())
        logger.warning(
            "%d backchannel(s) in categories that the %s label map leaves out are not sampled: %s. "
            "To use them, map every category: %s",
            sum(unmapped.values()), scheme.name, listed, category_map_hint(statistics, scheme),
        )
    if statistics["total_samples"] == 0:
        reason = "its backchannels are all unmapped" if unmapped else "it has no backchannel events"
        usable = (f"only Context Alignment can use its {statistics['words']:,} words" if statistics["words"]
                  else "it has no words either, so neither training stage can use it")
        logger.warning("%s gives no Backchannel Alignment samples because %s; %s", root, reason, usable)


def run_stats(args: argparse.Namespace) -> int:
    from camabc_core.recipe_validation import find_reader_option_problems, format_problem_list
    from camabc_core.registry import get_registry

    registry = get_registry()
    options = parse_key_values(args.reader_option, "--reader-option", parse_values=True)
    # The same check as a recipe's data.reader_options, named after the command-line option.
    problems = find_reader_option_problems(
        registry.get("dataset", args.dataset), args.dataset, options,
        prefix="--reader-option ", skip_malformed_setting="--skip-malformed",
    )
    if problems:
        raise RecipeError(f"invalid reader options:\n{format_problem_list(problems)}")
    reader = registry.create("dataset", args.dataset, skip_malformed=args.skip_malformed, **options)
    scheme_name = args.label_scheme or reader.default_label_scheme
    category_map = (parse_key_values(args.category_map, "--category-map", parse_values=False)
                    or reader.default_category_map)
    scheme = build_label_scheme(scheme_name, category_map)

    started = time.perf_counter()
    conversations = reader.load(args.root)
    logger.info("read %d conversations from %s in %.1f s", len(conversations), args.root,
                time.perf_counter() - started)
    statistics = compute_statistics(conversations, scheme, SamplingSection(split_by=args.split_by), args.seed)
    warn_about_labels(statistics, scheme, args.root)
    if args.json:
        print(json.dumps(statistics, ensure_ascii=False, indent=2))
    else:
        print(format_table(statistics, args.dataset))
    return 0
