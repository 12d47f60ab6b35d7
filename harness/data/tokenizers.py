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


SUBWORD_MODELS = ("bpe", "unigram")


def build_subword_tokenizer(
    texts: Iterable[str],
    model: str = "bpe",
    vocab_size: int = 8000,
    min_frequency: int = 2,
    lowercase: bool = False,
    model_max_length: int = 512,
    extra_special_tokens: Iterable[str] = (),
):
    """A subword ``PreTrainedTokenizerFast`` trained on ``texts`` with ``tokenizers``: byte-level BPE (GPT-2's
    scheme: every string is encodable, no unknown token) or a unigram LM (Kudo 2018, SentencePiece's default;
    Metaspace pre-tokenisation, so spaces survive decoding). The special tokens are the word tokenizer's
    (``[PAD] [UNK] [CLS] [SEP] [MASK]``, then ``extra_special_tokens``) with the same ``[CLS] a [SEP]``
    template; ``[CLS]`` / ``[SEP]`` double as BOS / EOS for a language model or a decoder. Saved with the
    model, loaded back by ``AutoTokenizer``."""
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    if model not in SUBWORD_MODELS:
        raise ValueError(f"tokenizer: expected one of {SUBWORD_MODELS}, got {model!r}")
    specials = SPECIALS + [t for t in extra_special_tokens if t not in SPECIALS]
    if model == "bpe":
        tok = Tokenizer(models.BPE())
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=True)
        # every word carries its leading space ("Ġword") so a word is one token wherever it stands; the decoder
        # drops the space that adds in front of the text
        tok.decoder = decoders.Sequence([decoders.ByteLevel(), decoders.Strip(" ", 1, 0)])
        trainer = trainers.BpeTrainer(vocab_size=vocab_size, min_frequency=min_frequency, special_tokens=specials,
                                      initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    else:
        tok = Tokenizer(models.Unigram())
        tok.pre_tokenizer = pre_tokenizers.Metaspace()
        tok.decoder = decoders.Metaspace()
        trainer = trainers.UnigramTrainer(vocab_size=vocab_size, special_tokens=specials, unk_token="[UNK]",
                                          show_progress=False)
    if lowercase:
        tok.normalizer = normalizers.Lowercase()
    tok.train_from_iterator(texts, trainer=trainer)
    cls, sep = tok.token_to_id("[CLS]"), tok.token_to_id("[SEP]")
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1", special_tokens=[("[CLS]", cls), ("[SEP]", sep)])
    extra = [t for t in specials if t not in SPECIALS]
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, pad_token="[PAD]", unk_token="[UNK]", cls_token="[CLS]", sep_token="[SEP]",
        mask_token="[MASK]", bos_token="[CLS]", eos_token="[SEP]", model_max_length=model_max_length,
        **({"additional_special_tokens": extra} if extra else {}),
    )
