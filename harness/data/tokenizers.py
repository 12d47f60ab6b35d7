"""Word-level tokenizers built from training text with the ``tokenizers`` library.

For models trained from scratch (RNNs, small Transformers, tiny test models): whitespace
pre-tokenisation, a vocabulary of the words seen at least ``min_frequency`` times, and BERT-style
``[CLS] a [SEP] b [SEP]`` templates with token type ids. The result is a
``PreTrainedTokenizerFast`` that ``save_pretrained`` writes and ``AutoTokenizer`` loads back.
"""

from __future__ import annotations

from typing import Iterable

SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


def build_word_tokenizer(
    texts: Iterable[str],
    vocab_size: int | None = None,
    min_frequency: int = 1,
    lowercase: bool = False,
    model_max_length: int = 512,
    special_tokens_template: bool = True,
    digits_to_zero: bool = False,
):
    """A word-level ``PreTrainedTokenizerFast``: words are split on whitespace only, so a pre-split word
    (``is_split_into_words=True``) is always exactly one id. ``special_tokens_template=False`` leaves out
    the ``[CLS] .. [SEP]`` template (a tagger wants one id per word and nothing else); ``digits_to_zero``
    maps every digit to 0 before lookup (Lample et al. 2016), ``lowercase`` lowercases."""
    from tokenizers import Regex, Tokenizer, normalizers, pre_tokenizers, processors
    from tokenizers.models import WordLevel
    from tokenizers.trainers import WordLevelTrainer
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(WordLevel(unk_token="[UNK]"))
    steps = ([normalizers.Lowercase()] if lowercase else []) + (
        [normalizers.Replace(Regex(r"\d"), "0")] if digits_to_zero else []
    )
    if steps:
        tok.normalizer = normalizers.Sequence(steps)
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    trainer = WordLevelTrainer(
        vocab_size=vocab_size or 10**9, min_frequency=min_frequency, special_tokens=SPECIALS, show_progress=False
    )
    tok.train_from_iterator(texts, trainer=trainer)
    cls, sep = tok.token_to_id("[CLS]"), tok.token_to_id("[SEP]")
    if special_tokens_template:
        tok.post_processor = processors.TemplateProcessing(
            single="[CLS] $A [SEP]",
            pair="[CLS] $A [SEP] $B:1 [SEP]:1",
            special_tokens=[("[CLS]", cls), ("[SEP]", sep)],
        )
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        pad_token="[PAD]",
        unk_token="[UNK]",
        cls_token="[CLS]",
        sep_token="[SEP]",
        mask_token="[MASK]",
        model_max_length=model_max_length,
    )
