"""Masked-language-model pretraining text: the ``lm_text`` corpora, packed into ``[CLS] … [SEP]`` sequences and
masked by the objective's collator (:mod:`harness.data.masking`).

Recipe::

    data:
      component: mlm_text
      train_file: ${env:HARNESS_DATA_DIR}/wikitext-2/wiki.valid.tokens
      objective: span          # mlm (BERT, default) | span (SpanBERT's multi-span masking)
      mlm_probability: 0.15
    model:
      component: transformer   # builds TransformerForMaskedLM for this task
    training:
      max_length: 128          # tokens per packed sequence, [CLS] and [SEP] included

Sentences are tokenized without special tokens and packed one after another (a ``[SEP]`` between two) into
sequences of ``max_length`` tokens, as RoBERTa's FULL-SENTENCES does: no padding is wasted on short
sentences. Training masks are drawn per batch; each evaluation split is masked once with a fixed seed, so
its score (``perplexity`` of the masked tokens, ``loss``, ``tokens``) is comparable between evaluations
and between runs on the same data and tokenizer.
"""

from __future__ import annotations

from typing import Iterator, Literal

from datasets import Dataset, DatasetDict

from harness.data.base import Task, TaskInfo, check_length, max_positions
from harness.data.lm import read_text_splits
from harness.data.masking import SpanMaskingCollator, mask_statically, mlm_collator
from harness.errors import DataError, RecipeError
from harness.registry import register

MASKED_LM = "masked_language_modeling"
MLM_METRICS = ("perplexity", "loss", "tokens")
#: evaluation masks are drawn once per split with this seed
EVAL_MASK_SEED = 1234


class MaskedLMTask(Task):
    auto_model_class = "AutoModelForMaskedLM"
    evaluator = "perplexity"
    #: labels sit at the masked positions themselves (the perplexity evaluator counts every label)
    labels_shifted = False

    def __init__(self, splits: DatasetDict, name: str, lowercase: bool = False, objective: str = "mlm",
                 mlm_probability: float = 0.15, whole_word_mask: bool = False, mask_replace_prob: float = 0.8,
                 random_replace_prob: float = 0.1, span_geometric_p: float = 0.2, max_span_length: int = 10):
        if objective not in ("mlm", "span"):
            raise RecipeError(f"data.objective: expected mlm or span, got {objective!r}")
        if objective == "span" and whole_word_mask:
            raise RecipeError("data.whole_word_mask: span masking draws token spans; use objective: mlm for "
                              "whole-word masking")
        self.lowercase = lowercase
        self.objective = objective
        self.masking = dict(mlm_probability=mlm_probability, mask_replace_prob=mask_replace_prob,
                            random_replace_prob=random_replace_prob)
        self.whole_word_mask = whole_word_mask
        self.span = dict(geometric_p=span_geometric_p, max_span_length=max_span_length)
        eval_splits = tuple(s for s in ("validation", "test") if s in splits)
        info = TaskInfo(name=name, problem_type=MASKED_LM, label_names=None, text_columns=("text",),
                        metric="perplexity", main_metric="perplexity")
        self._set_splits(info, splits, eval_splits)
        self._check_masking()  # bad probabilities are reported now, not at the first batch

    def texts(self, split: str | None = None) -> Iterator[str]:
        for text in self.splits[split or self.train_split]["text"]:
            yield text.lower() if self.lowercase else text

    def _check_masking(self) -> None:
        for name, value in self.masking.items():
            if not 0.0 <= value <= 1.0:
                raise RecipeError(f"data.{name}: expected a probability, got {value}")
        if not 0.0 < self.masking["mlm_probability"] < 1.0:
            raise RecipeError(f"data.mlm_probability: expected a number in (0, 1), got {self.masking['mlm_probability']}")
        if self.masking["mask_replace_prob"] + self.masking["random_replace_prob"] > 1.0:
            raise RecipeError("data.mask_replace_prob + random_replace_prob must be at most 1")
        if not 0.0 < self.span["geometric_p"] <= 1.0 or self.span["max_span_length"] < 1:
            raise RecipeError("data.span_geometric_p must be in (0, 1] and data.max_span_length >= 1")

    def _masker(self, tokenizer, pad_to_multiple_of=None, seed=None):
        """The objective's masking collator (``seed``: a fixed one, for the evaluation splits)."""
        if self.objective == "span":
            return SpanMaskingCollator(tokenizer, **self.masking, **self.span, pad_to_multiple_of=pad_to_multiple_of,
                                       seed=seed)
        return mlm_collator(tokenizer, **self.masking, whole_word_mask=self.whole_word_mask,
                            pad_to_multiple_of=pad_to_multiple_of, seed=seed)

    def configure_for(self, model) -> None:
        self.position_limit = max_positions(model)

    def tokenize(self, tokenizer, max_length: int | None = None) -> DatasetDict:
        if tokenizer.mask_token_id is None or tokenizer.cls_token_id is None or tokenizer.sep_token_id is None:
            raise DataError(f"task {self.info.name!r}: masked-LM pretraining needs a tokenizer with [MASK], [CLS] "
                            "and [SEP] tokens")
        length = max_length or 128
        check_length(length, getattr(self, "position_limit", None))
        if length < 3:
            raise RecipeError(f"training.max_length: a packed MLM sequence needs at least 3 tokens, got {length}")
        out = {}
        for split in self.splits:
            rows = self._pack(tokenizer, list(self.texts(split)), length)
            if split == self.train_split:
                out[split] = Dataset.from_dict(rows)
            else:
                masker = self._masker(tokenizer, seed=EVAL_MASK_SEED)
                features = [dict(zip(rows, values)) for values in zip(*rows.values())]
                out[split] = Dataset.from_dict(mask_statically(features, masker))
        return DatasetDict(out)

    def _pack(self, tokenizer, texts: list[str], length: int) -> dict[str, list]:
        """Sentences packed into ``[CLS] … [SEP]`` rows of at most ``length`` tokens. Offsets are synthetic — the
        sub-tokens of one word touch, two words never do — which is all whole-word masking reads."""
        encoded = tokenizer(texts, add_special_tokens=False, verbose=False)  # packed below: no length limit here
        body = length - 2
        ids, words = [], []
        word = 0
        for i, row in enumerate(encoded["input_ids"]):
            if not row:
                continue
            if ids:
                ids.append(tokenizer.sep_token_id)
                words.append(None)
            previous = None
            for token, w in zip(row, encoded.word_ids(i)):
                if w != previous or w is None:
                    word += 1
                previous = w
                ids.append(token)
                words.append(word)
        rows = {"input_ids": [], "special_tokens_mask": [], "offset_mapping": []}
        for start in range(0, len(ids), body):
            chunk, chunk_words = ids[start:start + body], words[start:start + body]
            rows["input_ids"].append([tokenizer.cls_token_id, *chunk, tokenizer.sep_token_id])
            rows["special_tokens_mask"].append([1, *(int(w is None) for w in chunk_words), 1])
            offsets, position, last = [(0, 0)], 0, None
            for w in chunk_words:
                if w is None:
                    offsets.append((0, 0))
                    last = None
                    continue
                if w != last:
                    position += 1  # a gap: a new word
                offsets.append((position, position + 1))
                position += 1
                last = w
            rows["offset_mapping"].append([*offsets, (0, 0)])
        if not rows["input_ids"]:
            raise DataError(f"task {self.info.name!r}: no tokens to pack")
        if not self.whole_word_mask:
            del rows["offset_mapping"]
        return rows

    def collator(self, tokenizer, pad_to_multiple_of: int | None = None):
        return self._masker(tokenizer, pad_to_multiple_of=pad_to_multiple_of)

    def eval_collator(self, tokenizer, pad_to_multiple_of: int | None = None):
        from transformers import DataCollatorForTokenClassification

        return DataCollatorForTokenClassification(tokenizer, pad_to_multiple_of=pad_to_multiple_of)  # labels pad -100

    def describe_split(self, rows) -> str:
        return f"{len(rows):,} sequences"


@register("data", "mlm_text", metrics=lambda args: MLM_METRICS)
def mlm_text(
    train_file: str | None = None,
    validation_file: str | None = None,
    test_file: str | None = None,
    dataset: str | None = None,
    dataset_config: str | None = None,
    text_column: str = "text",
    data_dir: str | None = None,
    lowercase: bool = False,
    objective: Literal["mlm", "span"] = "mlm",
    mlm_probability: float = 0.15,
    whole_word_mask: bool = False,
    mask_replace_prob: float = 0.8,
    random_replace_prob: float = 0.1,
    span_geometric_p: float = 0.2,
    max_span_length: int = 10,
) -> MaskedLMTask:
    """Text for masked-LM pretraining (the files / dataset keys are ``lm_text``'s). ``objective``: ``mlm`` — BERT's
    token masking (``whole_word_mask``: by word) — or ``span`` — SpanBERT's spans, lengths ~ Geo(``span_geometric_p``)
    truncated to ``max_span_length``. ``mlm_probability`` of the tokens are chosen; of those, ``mask_replace_prob``
    become [MASK], ``random_replace_prob`` a random token, the rest stay."""
    name, splits = read_text_splits(train_file, validation_file, test_file, dataset, dataset_config, text_column,
                                    data_dir, component="mlm_text")
    return MaskedLMTask(splits, name=f"mlm_text:{name}", lowercase=lowercase, objective=objective,
                        mlm_probability=mlm_probability, whole_word_mask=whole_word_mask,
                        mask_replace_prob=mask_replace_prob, random_replace_prob=random_replace_prob,
                        span_geometric_p=span_geometric_p, max_span_length=max_span_length)
