"""Sentence pairs and triplets for representation learning (Siamese bi-encoders, :mod:`harness.models.siamese`).

Each split is one *kind* of rows, read from what its columns hold:

==============  ================================================  ========================================
kind            columns                                           evaluated as (:mod:`harness.evaluation.embeddings`)
==============  ================================================  ========================================
``scores``      sentence1, sentence2, score (→ ``label`` in 0..1)  STS: Spearman / Pearson of the cosine
``labels``      sentence1, sentence2, label 0/1                   duplicate detection: F1 / accuracy at the
                                                                  best threshold of the dev split
``triplets``    anchor, positive[, negative]                      retrieval: MRR@10, recall@k of each anchor's
                                                                  positive among all positives (and negatives)
``classes``     sentence, label (a class id)                      training only (batch-hard / batch-all mining)
==============  ================================================  ========================================

The train split can be turned into what a loss wants (``train_format``): ``labels`` (scores ≥
``label_threshold`` → 1, else 0: contrastive loss on STS), ``positives`` (the pairs with score ≥
``positive_threshold`` or label 1 as (anchor, positive): in-batch negatives for MNRL and the mean / closest
triplet loss), ``triplets`` (each positive pair plus a negative drawn, with ``seed``, from another row's second
text: the given-negative triplet loss). Evaluation splits keep their kind.

In a batch, text column *i* is tokenized on its own under the prefix ``text<i>_`` (``text0_input_ids``,
``text0_attention_mask``, ...) and padded on its own; ``labels`` holds the scores or 0/1 labels. A loss embeds
each column with the one shared model (:func:`column_inputs`).

Components: ``sts_benchmark`` (the STS benchmark, ``glue/STS-B/original/sts-{train,dev,test}.tsv`` under
``$HARNESS_DATA_DIR``), ``mrpc_pairs`` (GLUE MRPC as paraphrase pairs) and ``text_pairs`` (any CSV / TSV / JSON
lines files with those columns). A bad row is reported as ``file:line``.
"""

from __future__ import annotations

import os
import random
from pathlib import Path
from typing import Iterator

from datasets import Dataset, DatasetDict

from harness.data.base import Task, TaskInfo, training_data_required
from harness.errors import DataError, where
from harness.io import read_text
from harness.registry import register

KINDS = ("scores", "labels", "triplets", "classes")
TRAIN_FORMATS = ("as_is", "labels", "positives", "triplets")
#: what the embedding evaluator reports per kind (for evaluation.metric_for_best)
METRICS = {"scores": ("spearman", "pearson"),
           "labels": ("f1", "accuracy", "precision", "recall", "average_precision", "f1_threshold",
                      "accuracy_threshold"),
           "triplets": ("mrr@10", "recall@1", "recall@5", "recall@10")}
MAIN_METRIC = {"scores": "spearman", "labels": "f1", "triplets": "mrr@10"}


def column_inputs(batch: dict) -> list[dict]:
    """The model inputs of each text column of a batch, in column order: ``[{"input_ids": ..., ...}, ...]``."""
    out, i = [], 0
    while f"text{i}_input_ids" in batch:
        prefix = f"text{i}_"
        out.append({k[len(prefix):]: v for k, v in batch.items() if k.startswith(prefix)})
        i += 1
    return out


class PairsTask(Task):
    """Pairs / triplets / labelled sentences; ``kinds[split]`` says which (module docstring)."""

    auto_model_class = "AutoModel"
    evaluator = "embedding_similarity"

    def __init__(self, name: str, splits: dict[str, Dataset], kinds: dict[str, str], eval_splits: tuple[str, ...],
                 extra: dict | None = None):
        for split in eval_splits:
            if kinds.get(split) == "classes":
                raise DataError(f"task {name!r}: split {split!r} holds single labelled sentences; only pairs and "
                                "triplets can be evaluated (a validation file with sentence1/sentence2/score, "
                                "sentence1/sentence2/label or anchor/positive columns)")
        self.kinds = dict(kinds)
        main = MAIN_METRIC[kinds[eval_splits[0]]] if eval_splits else "loss"
        info = TaskInfo(name=name, problem_type="embedding", label_names=None, text_columns=("text0", "text1"),
                        metric="embedding", main_metric=main, extra={"kinds": dict(kinds), **(extra or {})})
        self._set_splits(info, DatasetDict(splits), eval_splits)

    def texts(self, split: str | None = None) -> Iterator[str]:
        ds = self.splits[split or self.train_split]
        for column in ds.column_names:
            if column.startswith("text"):
                yield from ds[column]

    def tokenize(self, tokenizer, max_length: int | None = None) -> DatasetDict:
        limit = max_length or tokenizer.model_max_length
        if not isinstance(limit, int) or limit > 100_000:  # a tokenizer without a limit
            limit = None

        def encode(batch):
            out = {}
            for column in [c for c in batch if c.startswith("text")]:
                enc = tokenizer(batch[column], truncation=limit is not None, max_length=limit)
                out.update({f"{column}_{k}": v for k, v in enc.items()})
            if "label" in batch:
                out["labels"] = batch["label"]
            return out

        return DatasetDict({name: ds.map(encode, batched=True, remove_columns=ds.column_names,
                                         desc=f"tokenizing {name}")
                            for name, ds in self.splits.items()})

    def tokenize_cache_key(self) -> dict | None:
        return {}  # every text<i> column and the label, as they are

    def collator(self, tokenizer, pad_to_multiple_of: int | None = None):
        return PairsCollator(tokenizer.pad_token_id or 0, pad_to_multiple_of)

    def num_tokens(self, batch: dict):
        return sum(v.sum() for k, v in batch.items() if k.endswith("_attention_mask"))

    def describe_split(self, rows) -> str:
        return f"{len(rows):,}"

    def compute_metrics(self, predictions, references, split: str) -> dict[str, float]:
        raise NotImplementedError("the embedding evaluator scores pairs tasks (harness.evaluation.embeddings)")


class PairsCollator:
    """Pads every text column of the rows on its own (right padding; token type ids and masks with 0) and
    stacks ``labels`` (float scores or integer labels)."""

    def __init__(self, pad_token_id: int, pad_to_multiple_of: int | None = None):
        self.pad_token_id = pad_token_id
        self.pad_to_multiple_of = pad_to_multiple_of

    def __call__(self, rows: list[dict]) -> dict:
        import torch

        batch = {}
        for key in rows[0]:
            if key == "labels":
                batch[key] = torch.tensor([r[key] for r in rows])
                continue
            longest = max(len(r[key]) for r in rows)
            if self.pad_to_multiple_of:
                longest = -(-longest // self.pad_to_multiple_of) * self.pad_to_multiple_of
            pad = self.pad_token_id if key.endswith("_input_ids") else 0
            batch[key] = torch.tensor([list(r[key]) + [pad] * (longest - len(r[key])) for r in rows])
        return batch


# ---------------------------------------------------------------------------------------- reading rows


def _kind_of(columns: set[str], path, line) -> str:
    if {"anchor", "positive"} <= columns:
        return "triplets"
    if {"sentence1", "sentence2", "score"} <= columns:
        return "scores"
    if {"sentence1", "sentence2", "label"} <= columns:
        return "labels"
    if {"sentence", "label"} <= columns:
        return "classes"
    raise DataError(f"{where(path, line)}: columns {sorted(columns)} are none of anchor/positive[/negative], "
                    "sentence1/sentence2/score, sentence1/sentence2/label or sentence/label")


def rows_to_split(rows: list[tuple[int, dict]], path, score_scale: float = 1.0) -> tuple[str, dict]:
    """``(kind, columns)`` from ``[(line, row), ...]``: the texts as ``text0`` … and the score / label as
    ``label`` (scores divided by ``score_scale``); every bad row names its ``file:line``."""
    if not rows:
        raise DataError(f"{path}: no rows")
    kind = _kind_of(set(rows[0][1]), path, rows[0][0])
    names = {"triplets": ["anchor", "positive"] + (["negative"] if "negative" in rows[0][1] else []),
             "scores": ["sentence1", "sentence2"], "labels": ["sentence1", "sentence2"], "classes": ["sentence"]}[kind]
    data: dict[str, list] = {f"text{i}": [] for i in range(len(names))}
    if kind != "triplets":
        data["label"] = []
    for line, row in rows:
        for i, name in enumerate(names):
            value = row.get(name)
            if not isinstance(value, str) or not value.strip():
                raise DataError(f"{where(path, line)}: column {name!r} is missing or empty")
            data[f"text{i}"].append(value)
        if kind == "triplets":
            continue
        key = "score" if kind == "scores" else "label"
        value = row.get(key)
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise DataError(f"{where(path, line)}: {key} {value!r} is not a number") from None
        if kind == "scores":
            data["label"].append(number / score_scale)
        elif kind == "labels":
            if number not in (0, 1):
                raise DataError(f"{where(path, line)}: label {value!r} is not 0 or 1")
            data["label"].append(int(number))
        else:
            if number != int(number):
                raise DataError(f"{where(path, line)}: class label {value!r} is not an integer")
            data["label"].append(int(number))
    return kind, data


def convert_train(kind: str, data: dict, train_format: str, positive_threshold: float | None,
                  label_threshold: float | None, seed: int, source: str) -> tuple[str, dict]:
    """The train split in the form a loss wants (module docstring)."""
    if train_format not in TRAIN_FORMATS:
        raise DataError(f"data.train_format: expected one of {', '.join(TRAIN_FORMATS)}, got {train_format!r}")
    if train_format == "as_is":
        return kind, data
    if train_format == "labels":
        if kind == "labels":
            return kind, data
        if kind != "scores" or label_threshold is None:
            raise DataError(f"data.train_format: labels needs scored pairs and data.label_threshold ({source} holds {kind})")
        return "labels", {**{k: v for k, v in data.items() if k != "label"},
                          "label": [int(s >= label_threshold) for s in data["label"]]}
    if kind == "triplets":
        pairs = {"text0": data["text0"], "text1": data["text1"]}
    elif kind in ("scores", "labels"):
        if kind == "scores" and positive_threshold is None:
            raise DataError("data.positive_threshold: required to pick the positive pairs of scored data")
        keep = [i for i, y in enumerate(data["label"]) if (y >= positive_threshold if kind == "scores" else y == 1)]
        if len(keep) < 2:
            raise DataError(f"data.positive_threshold: {len(keep)} positive pairs in {source}; at least 2 are needed")
        pairs = {"text0": [data["text0"][i] for i in keep], "text1": [data["text1"][i] for i in keep]}
    else:
        raise DataError(f"data.train_format: {train_format} needs pairs or triplets; {source} holds single sentences")
    if train_format == "positives":
        return "triplets", pairs
    if kind == "triplets" and "text2" in data:
        return "triplets", data
    rng = random.Random(seed)
    n = len(pairs["text0"])
    negatives = []
    for i in range(n):  # another row's second text, never the row's own
        j = rng.randrange(n - 1)
        negatives.append(pairs["text1"][j + (j >= i)])
    return "triplets", {**pairs, "text2": negatives}


def build_task(name: str, raw: dict[str, tuple[str, dict]], train_format: str, positive_threshold, label_threshold,
               seed: int, eval_splits: tuple[str, ...], max_train_rows: int | None, extra: dict) -> PairsTask:
    if "train" in raw:
        kind, data = convert_train(*raw["train"], train_format, positive_threshold, label_threshold, seed,
                                   extra.get("path", name) + " (train)")
        if max_train_rows is not None:
            if max_train_rows < 1:
                raise DataError(f"data.max_train_rows: expected a positive number, got {max_train_rows}")
            data = {k: v[:max_train_rows] for k, v in data.items()}
        raw = {**raw, "train": (kind, data)}
    splits = {split: Dataset.from_dict({"idx": list(range(len(data["text0"]))), **data}) for split, (_, data) in raw.items()}
    kinds = {split: kind for split, (kind, _) in raw.items()}
    return PairsTask(name, splits, kinds, tuple(s for s in eval_splits if s in splits), extra)


def _all_metrics(args) -> tuple[str, ...]:
    return tuple(m for names in METRICS.values() for m in names)


# ---------------------------------------------------------------------------------------- components


def _data_root(data_dir: str | None, sub: str) -> Path:
    if data_dir is not None:
        return Path(data_dir)
    root = os.environ.get("HARNESS_DATA_DIR")
    if not root:
        raise DataError(f"data.data_dir: not given and HARNESS_DATA_DIR is not set (expected $HARNESS_DATA_DIR/{sub})")
    return Path(root) / sub


def read_sts(path: Path) -> list[tuple[int, dict]]:
    """Rows of an STS benchmark file: no header, TAB-separated ``genre filename year id score sentence1
    sentence2 [license fields]`` (7 or 9 fields), no quoting."""
    rows = []
    for line, text in enumerate(read_text(path).split("\n"), 1):
        if not text.strip():
            continue
        fields = text.split("\t")
        if len(fields) < 7:
            raise DataError(f"{where(path, line)}: expected at least 7 TAB-separated fields (genre filename year id "
                            f"score sentence1 sentence2), got {len(fields)}")
        rows.append((line, {"score": fields[4], "sentence1": fields[5], "sentence2": fields[6]}))
    return rows


@register("data", "sts_benchmark", metrics=_all_metrics)
def sts_benchmark(data_dir: str | None = None, train_format: str = "as_is", positive_threshold: float | None = None,
                  label_threshold: float | None = None, seed: int = 0, max_train_rows: int | None = None,
                  eval_splits: list[str] = ("validation", "test")) -> PairsTask:
    """The STS benchmark (Cer et al. 2017): 5,749 / 1,500 / 1,379 sentence pairs scored 0–5, read from
    ``sts-{train,dev,test}.tsv`` in ``data_dir`` (default ``$HARNESS_DATA_DIR/glue/STS-B/original``). Scores are
    divided by 5 (``label`` in [0, 1], what cosine regression fits); thresholds are on that scale (4 of 5 →
    0.8). Test scores are the gold ones: the test split is scored once, at the end."""
    root = _data_root(data_dir, "glue/STS-B/original")
    files = {"train": root / "sts-train.tsv", "validation": root / "sts-dev.tsv", "test": root / "sts-test.tsv"}
    if not training_data_required():
        files.pop("train")
    raw = {split: rows_to_split(read_sts(path), path, score_scale=5.0) for split, path in files.items()}
    return build_task("sts_benchmark", raw, train_format, positive_threshold, label_threshold, seed,
                      tuple(eval_splits), max_train_rows, {"source": "local", "path": str(root)})


@register("data", "mrpc_pairs", metrics=_all_metrics)
def mrpc_pairs(data_dir: str | None = None, train_format: str = "as_is", seed: int = 0,
               max_train_rows: int | None = None, eval_splits: list[str] = ("validation", "test")) -> PairsTask:
    """MRPC (Dolan & Brockett 2005) as paraphrase pairs with 0/1 labels: GLUE's ``train.tsv`` / ``dev.tsv`` /
    ``test.tsv`` (this copy's test file keeps the gold ``Quality`` column) in ``data_dir`` (default
    ``$HARNESS_DATA_DIR/glue/MRPC``). Evaluated as duplicate detection: the threshold on the cosine that is best
    on the dev split is applied to the test split."""
    from harness.data.files import read_rows

    root = _data_root(data_dir, "glue/MRPC")
    files = {"train": root / "train.tsv", "validation": root / "dev.tsv", "test": root / "test.tsv"}
    if not training_data_required():
        files.pop("train")
    raw = {}
    for split, path in files.items():
        rows = []
        for line, row in read_rows(path):
            if "Quality" not in row:
                raise DataError(f"{where(path, line)}: no Quality (label) column; this MRPC copy's test.tsv keeps it")
            rows.append((line, {"sentence1": row.get("#1 String"), "sentence2": row.get("#2 String"),
                                "label": row["Quality"]}))
        raw[split] = rows_to_split(rows, path)
    return build_task("mrpc_pairs", raw, train_format, None, None, seed, tuple(eval_splits), max_train_rows,
                      {"source": "local", "path": str(root)})


@register("data", "text_pairs", metrics=_all_metrics)
def text_pairs(train_file: str, validation_file: str | None = None, test_file: str | None = None,
               train_format: str = "as_is", score_scale: float = 1.0, positive_threshold: float | None = None,
               label_threshold: float | None = None, seed: int = 0, max_train_rows: int | None = None) -> PairsTask:
    """Pairs / triplets from local files (``.csv``, ``.tsv``, ``.jsonl``), one per split, each with the columns of
    one kind (module docstring); scores are divided by ``score_scale`` (5 for 0–5 STS-style scores)."""
    from harness.data.files import read_rows

    if not score_scale > 0:
        raise DataError(f"data.score_scale: expected a number > 0, got {score_scale}")
    files = {"train": train_file, "validation": validation_file, "test": test_file}
    if not training_data_required() and not Path(train_file).is_file():
        files.pop("train")
    raw = {split: rows_to_split(read_rows(path), path, score_scale) for split, path in files.items() if path}
    eval_splits = tuple(s for s in ("validation", "test") if s in raw)
    return build_task(Path(train_file).stem, raw, train_format, positive_threshold, label_threshold, seed,
                      eval_splits, max_train_rows, {"source": "local", "path": str(train_file)})
