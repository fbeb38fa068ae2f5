"""``camabc tokenizer train``: a WordPiece vocabulary from a recipe's training split."""

from __future__ import annotations

import argparse
from pathlib import Path

from camabc_core.commands.arguments import add_recipe_arguments, recipe_from_args


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("tokenizer", help="train tokenizers for text encoders built from a config")
    actions = parser.add_subparsers(dest="tokenizer_command", metavar="ACTION", required=True)
    train = actions.add_parser(
        "train",
        help="train a WordPiece tokenizer on the recipe's training split",
        description=(
            "Build the recipe's samples and splits exactly as `camabc train` does, and train a cased "
            "WordPiece vocabulary on the text windows of the training split (validation and test "
            "text stay out). Point model.encoders.text.tokenizer at OUTPUT and leave vocab_size "
            "unset in its config (it defaults to the tokenizer's size)."
        ),
    )
    add_recipe_arguments(train)
    train.add_argument("--output", type=Path, required=True, metavar="DIR", help="directory to save it in")
    train.add_argument("--vocab-size", type=int, default=8000, help="maximum vocabulary size (default 8000)")
    train.add_argument("--min-frequency", type=int, default=2,
                       help="minimum count of a merged piece (default 2)")
    train.set_defaults(func=run_train_tokenizer)


def run_train_tokenizer(args: argparse.Namespace) -> int:
    from camabc_core.training.tokenizer import train_wordpiece, training_texts

    texts = training_texts(recipe_from_args(args))
    tokenizer = train_wordpiece(texts, args.output, vocab_size=args.vocab_size,
                                min_frequency=args.min_frequency)
    print(f"{len(tokenizer)} tokens from {len(texts)} training windows saved to {args.output}")
    return 0
