"""Sequence labelling (NER, chunking) as a :class:`~harness.data.base.Task`: CoNLL files or Hub datasets
in, word-level tags out, scored with seqeval.

The data component ``conll_ner`` reads CoNLL-style files (:func:`harness.data.conll.read_conll`: any
number of columns, the tag column chosen, ``-DOCSTART-`` skipped, IOB1/IOB2/IOBES converted to the
task's ``scheme``) or a dataset with ``tokens`` / ``ner_tags`` columns (a Hub name, or a folder written
by ``DatasetDict.save_to_disk``).

:class:`TokenClassificationTask` tokenizes pre-split words with ``is_split_into_words=True`` and puts
each word's label on its **first sub-token** (-100 on the other sub-tokens and on special tokens, so
they are neither trained nor scored); predictions are read back at the same positions, so every score
and every prediction file is per word, not per sub-token. A sentence longer than the model's
``max_length`` is never truncated: it is cut at word boundaries into windows that fit, and the
windows' predictions are joined back into one sentence. Scores are seqeval's entity-level
precision/recall/F1 (``strict`` mode and the ``scheme`` explicit, IOB2 by default); in strict mode
the lenient (conlleval) micro F1 is reported beside it as ``lenient_f1``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal, Sequence

import numpy as np
from datasets import Dataset, DatasetDict

from harness.data.base import Task, TaskInfo, training_data_required
from harness.data.conll import PREFIXES, _check_scheme, convert, from_hub_rows, read_conll, split_tag, to_dataset
from harness.errors import DataError
from harness.io import atomic_write_text
from harness.registry import register

TOKEN_CLASSIFICATION = "token_classification"
Scheme = Literal["IOB1", "IOB2", "IOBES", "BIO", "BIOES"]


def ordered_labels(tags: set[str], scheme: str) -> list[str]:
    """``O`` first, then each entity type (sorted) with its prefixes in the scheme's order."""
    types = sorted({split_tag(t, scheme)[1] for t in tags if t != "O"})
    labels = ["O"]
    for kind in types:
        labels += [f"{p}-{kind}" for p in PREFIXES[scheme] if f"{p}-{kind}" in tags]
    return labels


class TokenClassificationTask(Task):
    """Word-level tagging. ``splits`` hold ``tokens`` (list of words) and ``ner_tags`` (list of string tags,
    in ``info.extra["scheme"]``) per sentence; a split without gold tags has empty ``ner_tags`` lists."""

    auto_model_class = "AutoModelForTokenClassification"
    evaluator = "tagging"

    def __init__(self, info: TaskInfo, splits: DatasetDict, eval_splits: Sequence[str] = ("validation",)):
        self._set_splits(info, splits, eval_splits)
        self.label2id = {name: i for i, name in enumerate(info.label_names)}
        self.id2label = dict(enumerate(info.label_names))
        self._char_ids = None  # set by configure_for when the model reads characters
        self._case_types = False  # set by configure_for when the model reads casing classes as token types
        self._rows: dict[str, list[tuple[int, int, list[int | None]]]] = {}

    # ------------------------------------------------------------------ model-facing hooks

    def configure_for(self, model) -> None:
        """Use the model's label ids (a saved model may order them differently) and, for a tagger with
        character features, its character vocabulary."""
        config = model.config
        model_labels = getattr(config, "label2id", None) or {}
        if model_labels and set(model_labels) != {f"LABEL_{i}" for i in range(len(model_labels))}:
            unknown = [t for t in self.info.label_names if t not in model_labels]
            if unknown:
                raise DataError(f"the data has tags the model does not know: {', '.join(unknown)} "
                                f"(model labels: {', '.join(model_labels)})")
            self.label2id = {name: int(i) for name, i in model_labels.items()}
            self.id2label = {i: name for name, i in self.label2id.items()}
        base = model.get_base_model() if hasattr(model, "get_base_model") else model
        self._char_ids = getattr(base, "char_ids_for", None) if getattr(config, "char_encoder", "none") != "none" else None
        self._case_types = bool(getattr(config, "harness_case_features", False))

    def texts(self, split: str | None = None):
        for words in self.splits[split or self.train_split]["tokens"]:
            yield " ".join(words)

    def has_gold(self, split: str) -> bool:
        return any(len(t) for t in self.splits[split]["ner_tags"])

    # ------------------------------------------------------------------ tokenization

    def tokenize(self, tokenizer, max_length: int | None = None) -> DatasetDict:
        limit = max_length
        if limit is None and tokenizer.model_max_length < 1_000_000:
            limit = int(tokenizer.model_max_length)
        specials = tokenizer.num_special_tokens_to_add(pair=False)
        out = {}
        for split, ds in self.splits.items():
            sentences = list(ds["tokens"])
            gold = list(ds["ner_tags"]) if self.has_gold(split) else None
            enc = tokenizer(sentences, is_split_into_words=True, add_special_tokens=True)
            columns: dict[str, list] = {"input_ids": [], "attention_mask": []}
            if gold is not None:
                columns["labels"] = []
            if self._char_ids is not None:
                columns["char_ids"] = []
            if self._case_types:
                columns["token_type_ids"] = []
            rows = []
            for i, words in enumerate(sentences):
                word_ids = enc.word_ids(i)
                pieces = [(0, len(words), enc["input_ids"][i], word_ids)]
                if limit is not None and len(word_ids) > limit:
                    pieces = self._windows(tokenizer, words, word_ids, limit, specials, split, i)
                for start, end, ids, wids in pieces:
                    columns["input_ids"].append(list(ids))
                    columns["attention_mask"].append([1] * len(ids))
                    first = _first_subtokens(wids)
                    if gold is not None:
                        tags = gold[i]
                        columns["labels"].append(
                            [self._label_id(tags[start + w], split, i) if f else -100 for w, f in zip(wids, first)]
                        )
                    if self._char_ids is not None:
                        chars = self._char_ids(words[start:end])
                        columns["char_ids"].append([chars[w] if w is not None else [1] for w in wids])
                    if self._case_types:
                        cases = [case_class(word) for word in words[start:end]]
                        columns["token_type_ids"].append([cases[w] if w is not None else 0 for w in wids])
                    rows.append((i, start, list(wids)))
            self._rows[split] = rows
            out[split] = Dataset.from_dict(columns)
        return DatasetDict(out)

    def _label_id(self, tag: str, split: str, sentence: int) -> int:
        try:
            return self.label2id[tag]
        except KeyError:
            raise DataError(f"{split} sentence {sentence}: tag {tag!r} is not one of the model's labels "
                            f"({', '.join(self.label2id)})") from None

    @staticmethod
    def _windows(tokenizer, words, word_ids, limit, specials, split, sentence):
        """Cut a sentence that does not fit ``limit`` sub-tokens into word-aligned windows that do."""
        sizes = [0] * len(words)
        for w in word_ids:
            if w is not None:
                sizes[w] += 1
        budget = limit - specials
        groups, start, used = [], 0, 0
        for w, size in enumerate(sizes):
            if size > budget:
                raise DataError(f"{split} sentence {sentence}: word {w} ({words[w][:40]!r}) alone is {size} sub-tokens, "
                                f"more than max_length={limit} allows; raise training.max_length")
            if used + size > budget:
                groups.append((start, w))
                start, used = w, 0
            used += size
        groups.append((start, len(words)))
        pieces = []
        for a, b in groups:
            enc = tokenizer([words[a:b]], is_split_into_words=True, add_special_tokens=True)
            pieces.append((a, b, enc["input_ids"][0], enc.word_ids(0)))
        return pieces

    def collator(self, tokenizer, pad_to_multiple_of: int | None = None):
        return TaggingCollator(tokenizer, pad_to_multiple_of)

    # ------------------------------------------------------------------ predictions and scores

    @property
    def wants_scores(self) -> bool:
        """True when predictions should come as per-position log-probabilities (``decoding: constrained``)
        for :meth:`word_predictions` to decode, rather than as tag ids."""
        return self.info.extra.get("decoding", "argmax") == "constrained"

    def word_predictions(self, split: str, position_tags: list[np.ndarray], decode=None) -> list[list[str]]:
        """Per-position predictions of every tokenized row (real positions only, in order) → one list of
        string tags per sentence, read at each word's first sub-token. A word with no sub-token at all
        (a tokenizer can drop a control character) is tagged ``O``.

        A row is either tag ids ``(positions,)`` or log-probabilities ``(positions, tags)``; the latter are
        read at the words' first sub-tokens and handed to ``decode`` (a list of ``(words, tags)`` arrays →
        a list of tag-id paths; the tagging evaluator passes
        :func:`harness.generation.constrained_viterbi` for the task's scheme)."""
        rows = self._rows[split]
        if len(rows) != len(position_tags):
            raise RuntimeError(f"{split}: {len(position_tags)} predicted rows for {len(rows)} tokenized rows")
        firsts = [np.array(_first_subtokens(wids), dtype=bool) for _, _, wids in rows]
        for (_, _, wids), tags in zip(rows, position_tags):
            if len(tags) != len(wids):
                raise RuntimeError(f"{split}: a row of {len(wids)} positions got {len(tags)} predictions")
        decoded = None
        if position_tags and np.ndim(position_tags[0]) == 2:
            if decode is None:
                raise ValueError("word_predictions: scores need a decode function")
            decoded = decode([np.asarray(sc)[first] for sc, first in zip(position_tags, firsts)])
        out = [["O"] * len(words) for words in self.splits[split]["tokens"]]
        for k, ((sentence, start, wids), first) in enumerate(zip(rows, firsts)):
            words = np.asarray([w if w is not None else -1 for w in wids])[first]
            tags = decoded[k] if decoded is not None else np.asarray(position_tags[k])[first]
            for w, tag in zip(words, tags):
                out[sentence][start + int(w)] = self.id2label[int(tag)]
        return out

    def compute_metrics(self, predictions, references, split: str) -> dict[str, float]:
        """seqeval on word-level tags against the split's gold tags (``references`` is not used: the
        gold words, not the sub-token labels, are the reference)."""
        from harness.metrics import load_metric

        gold = [list(t) for t in self.splits[split]["ner_tags"]]
        extra = self.info.extra
        metric = load_metric("seqeval")
        mode = "strict" if extra.get("strict", True) else None
        scores = metric.compute(predictions=predictions, references=gold, scheme=extra["seqeval_scheme"], mode=mode)
        result = {k: float(v) for k, v in scores.items()}
        if mode == "strict":
            lenient = metric.compute(predictions=predictions, references=gold)
            result["lenient_f1"] = float(lenient["overall_f1"])
        return result

    def write_predictions(self, path: Path, split: str, predictions: list[list[str]]) -> Path:
        """CoNLL layout, one word per line — ``word gold predicted`` (conlleval's input), or ``word
        predicted`` for a split without gold tags — and a blank line after each sentence. Tags are written
        in the data's own scheme (``input_scheme``) when the task converted them to another one."""
        path = path.with_suffix(".conll")
        ds = self.splits[split]
        scheme, written = self.info.extra["scheme"], self.info.extra.get("input_scheme") or self.info.extra["scheme"]
        gold = [convert(t, scheme, written) for t in ds["ner_tags"]] if self.has_gold(split) else None
        predictions = [convert(t, scheme, written) for t in predictions]
        lines = []
        for i, (words, tags) in enumerate(zip(ds["tokens"], predictions)):
            for j, (word, tag) in enumerate(zip(words, tags)):
                lines.append(f"{word} {gold[i][j]} {tag}" if gold is not None else f"{word} {tag}")
            lines.append("")
        atomic_write_text(path, "\n".join(lines) + ("\n" if lines else ""))
        return path


CASE_CLASSES = 4  # the values case_class returns


def case_class(word: str) -> int:
    """The casing class of a word: 0 no capital letter (or no letter), 1 Title (a capital then none:
    "Paris", "I"), 2 UPPER (two or more letters, all capitals: "EU", "U.S."), 3 mIxed ("McDonald", "iPod")."""
    letters = [c for c in word if c.isalpha()]
    upper = [c.isupper() for c in letters]
    if not any(upper):
        return 0
    if upper[0] and not any(upper[1:]):
        return 1
    return 2 if all(upper) else 3


def _first_subtokens(word_ids: list[int | None]) -> list[bool]:
    """True at the first position of each word (``word_ids`` as a fast tokenizer reports them)."""
    flags, previous = [], None
    for w in word_ids:
        flags.append(w is not None and w != previous)
        previous = w
    return flags


class TaggingCollator:
    """``DataCollatorForTokenClassification`` (dynamic padding of ids, masks and -100 labels) plus
    ``char_ids`` padded to ``(batch, positions, longest word)`` with 0, aligned with the padding side."""

    def __init__(self, tokenizer, pad_to_multiple_of: int | None = None):
        from transformers import DataCollatorForTokenClassification

        self.tokenizer = tokenizer
        self.base = DataCollatorForTokenClassification(tokenizer, pad_to_multiple_of=pad_to_multiple_of)

    def __call__(self, features):
        import torch

        chars = None
        if features and "char_ids" in features[0]:
            features = [dict(f) for f in features]
            chars = [[list(map(int, w)) for w in f.pop("char_ids")] for f in features]
        batch = self.base(features)
        if chars is not None:
            length = batch["input_ids"].shape[1]
            width = max((len(w) for row in chars for w in row), default=1)
            out = torch.zeros(len(chars), length, width, dtype=torch.long)
            left = self.tokenizer.padding_side == "left"
            for b, row in enumerate(chars):
                offset = length - len(row) if left else 0
                for t, word in enumerate(row):
                    out[b, offset + t, : len(word)] = torch.tensor(word, dtype=torch.long)
            batch["char_ids"] = out
        return batch


#: seqeval's scores (overall, per entity type, micro/macro/weighted averages) and the lenient F1
NER_METRICS = ("overall_precision", "overall_recall", "overall_f1", "overall_accuracy", "accuracy", "lenient_f1",
               "*/precision", "*/recall", "*/f1", "*/number")


@register("data", "conll_ner", metrics=lambda args: NER_METRICS)
def conll_ner(
    train_file: str | None = None,
    validation_file: str | None = None,
    test_file: str | None = None,
    dataset: str | None = None,
    dataset_config: str | None = None,
    tag_column: int = -1,
    token_column: int = 0,
    scheme: Scheme = "IOB2",
    input_scheme: Scheme | None = None,
    repair: bool = False,
    strict: bool = True,
    decoding: Literal["argmax", "constrained"] = "argmax",
    labels: list[str] | None = None,
    eval_splits: list[str] | None = None,
    name: str | None = None,
) -> TokenClassificationTask:
    """A sequence-labelling task from CoNLL files (``train_file`` etc.) or a dataset (``dataset``).

    ``scheme``: the tag scheme the task works in (files in ``input_scheme``, default the same, are
    converted to it); ``strict``: seqeval's strict mode for that scheme (entities must be well formed),
    else conlleval's lenient reading; ``repair``: turn an invalid gold sequence into a valid one
    (documented in :func:`harness.data.conll.repair`) instead of failing with ``file:line``;
    ``labels``: the allowed tags (anything else in a file is an error naming ``file:line``);
    ``decoding``: how the tags of a model without its own decoder (a softmax head, a BERT-family tagger)
    are read — ``argmax`` per word, or ``constrained``: the best sequence the scheme allows
    (:func:`harness.generation.constrained_viterbi`). A CRF tagger decodes itself either way.
    """
    scheme = _check_scheme(scheme)
    if decoding not in ("argmax", "constrained"):
        raise DataError(f"data.decoding: expected 'argmax' or 'constrained', got {decoding!r}")
    files = {"train": train_file, "validation": validation_file, "test": test_file}
    if dataset is not None and any(files.values()):
        raise DataError("data: give either dataset or train_file/validation_file/test_file, not both")
    splits = {}
    if dataset is not None:
        splits = _load_dataset_rows(dataset, dataset_config, scheme, input_scheme, repair)
    else:
        evaluating = not training_data_required()
        if train_file is None and not evaluating:
            raise DataError("data.train_file: missing (or give data.dataset)")
        for split, path in files.items():
            if path is None or (split == "train" and evaluating):  # a saved model brings its own tag set
                continue
            sentences = read_conll(path, tag_column=tag_column, token_column=token_column, scheme=scheme,
                                   repair=repair, input_scheme=input_scheme, label_set=labels)
            if not sentences:
                raise DataError(f"data.{split}_file: {path} holds no sentences")
            splits[split] = to_dataset(sentences)
    tags = {t for ds in splits.values() for row in ds["ner_tags"] for t in row}
    if labels is not None:
        tags |= set(_check_labels(labels, scheme))
    label_names = ordered_labels(tags, scheme)
    if eval_splits is None:
        eval_splits = [s for s in ("validation",) if s in splits]
    info = TaskInfo(
        name=name or f"ner:{Path(train_file).parent.name if train_file else dataset}",
        problem_type=TOKEN_CLASSIFICATION,
        label_names=label_names,
        text_columns=("tokens",),
        metric="seqeval",
        main_metric="overall_f1",
        extra={"scheme": scheme, "input_scheme": _check_scheme(input_scheme or scheme), "strict": bool(strict),
               "seqeval_scheme": scheme, "decoding": decoding},
    )
    return TokenClassificationTask(info, DatasetDict(splits), eval_splits=eval_splits)


def _check_labels(labels: list[str], scheme: str) -> list[str]:
    for tag in labels:
        try:
            split_tag(tag, scheme)
        except ValueError as e:
            raise DataError(f"data.labels: {e}") from None
    return list(labels)


def _load_dataset_rows(dataset: str, config: str | None, scheme: str, input_scheme: str | None, repair: bool) -> dict:
    """Rows of a Hub dataset or a ``save_to_disk`` folder; integer ``ner_tags`` are mapped through the
    ``ClassLabel`` names, string tags are taken as they are."""
    import datasets

    path = Path(dataset).expanduser()
    if path.is_dir() and ((path / "dataset_dict.json").is_file() or (path / "dataset_info.json").is_file()):
        loaded = datasets.load_from_disk(str(path))
    else:
        try:
            loaded = datasets.load_dataset(dataset, config)
        except Exception as e:  # offline, unknown name, ...
            raise DataError(f"data.dataset: cannot load {dataset!r}: {e}") from None
    if isinstance(loaded, Dataset):
        loaded = DatasetDict({"train": loaded})
    out = {}
    for split, ds in loaded.items():
        for column in ("tokens", "ner_tags"):
            if column not in ds.column_names:
                raise DataError(f"data.dataset: split {split!r} has no {column!r} column (has {', '.join(ds.column_names)})")
        feature = ds.features["ner_tags"]
        inner = getattr(feature, "feature", None)
        names = list(getattr(inner, "names", []) or [])
        out[split] = from_hub_rows(ds, names, scheme=scheme, repair=repair, input_scheme=input_scheme,
                                   name=f"{dataset}[{split}]")
    return out


__all__ = ["TOKEN_CLASSIFICATION", "TokenClassificationTask", "TaggingCollator", "conll_ner", "ordered_labels"]
