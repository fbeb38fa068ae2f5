"""WordPiece tokenizers trained on a corpus's training split, for text encoders built from a config.

A BERT built with random weights (``checkpoint: null``) still needs a vocabulary. This trains one on
exactly the text the model reads in training: the speaker's last m words before every training
sample of the recipe's split. Validation and test text never enters the vocabulary.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from pathlib import Path

from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers

from camabc_core.errors import RecipeError
from camabc_core.recipe import Recipe

logger = logging.getLogger(__name__)

SPECIAL_TOKENS: tuple[str, ...] = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")


def training_texts(recipe: Recipe) -> list[str]:
    """Text windows of the training split, built exactly as ``camabc train`` builds them."""
    from camabc_core.training.data import prepare_data
    from camabc_core.windows import WindowExtractor

    if recipe.backchannel_alignment is None:
        raise RecipeError("the recipe has no backchannel_alignment section, so it has no training split")
    data = prepare_data(recipe, recipe.run.seed)
    extractor = WindowExtractor(data.conversations, recipe.data.window, ("text",))
    return [text for text in extractor.extract_texts(data.splits["train"]) if text]


def train_wordpiece(
    texts: Iterable[str],
    output_dir: str | Path,
    *,
    vocab_size: int = 8000,
    min_frequency: int = 2,
):
    """Train a cased WordPiece vocabulary on ``texts`` and save a transformers tokenizer directory.

    The normaliser applies NFKC (the form the BERT encoder feeds it) and keeps case and accents:
    stripping accents would decompose Hangul syllables into jamo. Pre-tokenisation splits on
    whitespace and punctuation like BERT's. Returns the ``PreTrainedTokenizerFast``; its length is
    the ``vocab_size`` a matching BERT config needs.
    """
    from transformers import PreTrainedTokenizerFast

    if vocab_size < len(SPECIAL_TOKENS) + 1:
        raise RecipeError(f"vocab_size must be more than {len(SPECIAL_TOKENS)}, got {vocab_size}")
    tokenizer = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tokenizer.normalizer = normalizers.Sequence([
        normalizers.NFKC(),
        normalizers.BertNormalizer(clean_text=True, handle_chinese_chars=True, strip_accents=False,
                                   lowercase=False),
    ])
    tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    trainer = trainers.WordPieceTrainer(vocab_size=vocab_size, min_frequency=min_frequency,
                                        special_tokens=list(SPECIAL_TOKENS), continuing_subword_prefix="##")
    tokenizer.train_from_iterator(texts, trainer=trainer)
    tokenizer.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[(token, tokenizer.token_to_id(token)) for token in ("[CLS]", "[SEP]")],
    )
    tokenizer.decoder = decoders.WordPiece(prefix="##")

    wrapped = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer, unk_token="[UNK]", pad_token="[PAD]", cls_token="[CLS]",
        sep_token="[SEP]", mask_token="[MASK]",
    )
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    wrapped.save_pretrained(output_dir)
    logger.info("saved a WordPiece tokenizer with %d tokens to %s", len(wrapped), output_dir)
    return wrapped
