"""The contract between data components, models, the loop and the evaluator.

A data component (registered with ``@register("data", name)``) is a function that reads raw data and
returns a :class:`Task`. The runner then builds the model (which may need ``task.info`` for the label set,
or ``task.texts()`` to build a tokenizer from scratch), calls :meth:`Task.tokenize` with that model's
tokenizer, and hands the tokenized splits to the loop. A task family brings everything that is its own:

* the batches — :meth:`Task.collator` for training, :meth:`Task.eval_collator` for evaluation (a
  generative task left-pads prompts), :meth:`Task.arrange` for the row order; the batch's keys are what
  the loss (default: the model's own) and the evaluator read — three texts for a triplet, source and
  target for a translation;
* the training step (:attr:`Task.default_step`: the plain one, or truncated BPTT for a streamed LM);
* the evaluator (:attr:`Task.evaluator`, a registered name) and what it calls back:
  :meth:`Task.predictions_from_logits`, :meth:`Task.compute_metrics`, :meth:`Task.references`,
  :meth:`Task.write_predictions`.

So the loop and the runner never need to know what kind of task they are training.
"""

from __future__ import annotations

import contextlib
import contextvars
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np
from datasets import Dataset, DatasetDict

from harness.errors import DataError
from harness.io import atomic_write_text

_EVALUATION_ONLY = contextvars.ContextVar("evaluation_only", default=False)


@contextlib.contextmanager
def evaluation_only():
    """While a saved model is evaluated (``harness eval``) no training data is needed: data components read
    what is there, and a task without a train split is fine."""
    token = _EVALUATION_ONLY.set(True)
    try:
        yield
    finally:
        _EVALUATION_ONLY.reset(token)


def training_data_required() -> bool:
    return not _EVALUATION_ONLY.get()


#: problem types, named as ``transformers`` names them in ``PretrainedConfig.problem_type``
CLASSIFICATION = "single_label_classification"
REGRESSION = "regression"
#: what the classification metric module reports (harness/metrics/classification; ``f1`` on two classes)
CLASSIFICATION_METRICS = ("accuracy", "f1_macro", "matthews_correlation", "f1")
#: ... and the regression one (harness/metrics/regression)
REGRESSION_METRICS = ("pearson", "spearmanr", "mse")


@dataclass
class TaskInfo:
    """What a model builder needs to know about a task before it sees any tokens."""

    name: str
    problem_type: str
    label_names: list[str] | None = None  # None for regression
    text_columns: tuple[str, ...] = ("sentence",)
    metric: str = "classification"  # module under harness/metrics/
    metric_config: str | None = None  # evaluate config name, e.g. the GLUE task
    main_metric: str = "accuracy"  # default metric for best-checkpoint selection
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def num_labels(self) -> int:
        return 1 if self.problem_type == REGRESSION else len(self.label_names or [])

    @property
    def id2label(self) -> dict[int, str] | None:
        return None if self.label_names is None else dict(enumerate(self.label_names))


class Task:
    """Raw splits plus everything needed to tokenize, batch and score them.

    Subclasses override the hooks; :class:`ClassificationTask` covers single sentences, sentence
    pairs and regression (all of GLUE).
    """

    info: TaskInfo
    splits: DatasetDict
    #: splits evaluated during and after training (the first one drives best-checkpoint selection)
    eval_splits: Sequence[str] = ("validation",)
    train_split: str = "train"
    #: the ``transformers`` Auto class that loads a saved model for this task
    auto_model_class: str = "AutoModelForSequenceClassification"
    #: truncated-BPTT training: batches continue each other and the model's state carries over
    stateful: bool = False
    #: the registered evaluator that scores this task (:mod:`harness.evaluation.evaluators`)
    evaluator: str = "classification"
    #: the registered training step (:mod:`harness.training.steps`), unless the recipe names one
    default_step: str = "standard"

    def arrange(self, dataset: Dataset, batch_size: int, num_processes: int) -> Dataset:
        """Row order for the loaders (default: unchanged). A stateful task lays out its streams so
        that each process's k-th batch continues its (k-1)-th, row for row."""
        return dataset

    def texts(self, split: str | None = None) -> Iterator[str]:
        """Every text field of a split (default: the train split), for building vocabularies."""
        raise NotImplementedError

    def _set_splits(self, info: TaskInfo, splits: DatasetDict, eval_splits: Sequence[str]) -> None:
        """Check that the train split exists and is not empty and that every evaluation split exists,
        then keep them."""
        if self.train_split not in splits and training_data_required():
            raise DataError(f"task {info.name!r} has no {self.train_split!r} split (found: {sorted(splits)})")
        missing = [s for s in eval_splits if s not in splits]
        if missing:
            raise DataError(f"task {info.name!r} has no split {missing} to evaluate on (found: {sorted(splits)})")
        if self.train_split in splits and len(splits[self.train_split]) == 0:
            raise DataError(f"task {info.name!r}: the {self.train_split!r} split is empty")
        self.info = info
        self.splits = splits
        self.eval_splits = tuple(eval_splits)

    def configure_for(self, model) -> None:
        """Called once the model exists (built or loaded), before :meth:`tokenize`: a task whose inputs
        depend on the model (a tagger's character vocabulary, a saved model's label ids) reads them here."""

    def write_predictions(self, path: Path, split: str, predictions) -> Path:
        """``index<TAB>prediction`` per example (``path``: a ``.tsv`` file), with the split's own ``idx``
        and the label names (the GLUE submission format)."""
        raw = self.splits[split]
        index = raw["idx"] if "idx" in raw.column_names else range(len(predictions))
        names = self.info.label_names
        rows = ["index\tprediction"]
        for i, p in zip(index, predictions):
            rows.append(f"{i}\t{names[int(p)] if names else f'{float(p):.6g}'}")
        atomic_write_text(path, "\n".join(rows) + "\n")
        return path

    def tokenize(self, tokenizer, max_length: int | None = None) -> DatasetDict:
        raise NotImplementedError

    def tokenize_cache_key(self) -> dict | None:
        """What, besides the raw splits' content, the tokenizer and ``max_length``, decides :meth:`tokenize`'s
        rows — JSON-able — so that a later run with the same can read them back (:mod:`harness.data.tokenize_cache`);
        None (the default): never cached. Opt in only when ``tokenize`` is a pure function of those (it sets no
        state on the task) and override it beside ``tokenize`` (a subclass with its own ``tokenize`` and an
        inherited key is not cached)."""
        return None

    def collator(self, tokenizer, pad_to_multiple_of: int | None = None):
        raise NotImplementedError

    def eval_collator(self, tokenizer, pad_to_multiple_of: int | None = None):
        """The collator of evaluation batches (default: the training one)."""
        return self.collator(tokenizer, pad_to_multiple_of=pad_to_multiple_of)

    def predictions_from_logits(self, logits: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def compute_metrics(self, predictions, references, split: str) -> dict[str, float]:
        raise NotImplementedError

    def references(self, split: str):
        """The gold outputs of a split for a generative evaluator (strings, or lists of strings when an
        example has several references); None when the split has none."""
        return None

    def describe_split(self, rows) -> str:
        """How big a tokenized split is, for the run's first line (default: its rows)."""
        return f"{len(rows):,}"

    def report_rows(self) -> dict[str, str]:
        """Facts about the scoring to show in the report's run table (a seq2seq task: the metrics' signatures)."""
        return {}

    def num_tokens(self, batch: dict):
        """Real (non-padding) tokens in a batch, for tokens/s (default: :func:`count_tokens`)."""
        return count_tokens(batch)


class ClassificationTask(Task):
    """Single-sentence or sentence-pair classification, or regression (STS-B style).

    ``splits`` hold the text columns named in ``info.text_columns`` and a ``label`` column (an
    integer class id, or a float for regression); a split without labels (a benchmark's test set)
    simply lacks the column, or holds -1.
    """

    def __init__(self, info: TaskInfo, splits: DatasetDict, eval_splits: Sequence[str] = ("validation",)):
        if info.problem_type not in (CLASSIFICATION, REGRESSION):
            raise ValueError(f"problem_type must be {CLASSIFICATION!r} or {REGRESSION!r}, got {info.problem_type!r}")
        if not 1 <= len(info.text_columns) <= 2:
            raise ValueError(f"text_columns must name one or two columns, got {info.text_columns}")
        self._set_splits(info, splits, eval_splits)

    def texts(self, split: str | None = None) -> Iterator[str]:
        ds = self.splits[split or self.train_split]
        for column in self.info.text_columns:
            yield from ds[column]

    def tokenize(self, tokenizer, max_length: int | None = None) -> DatasetDict:
        columns = self.info.text_columns
        regression = self.info.problem_type == REGRESSION

        def encode(batch, with_labels: bool):
            texts = [batch[c] for c in columns]
            out = tokenizer(*texts, truncation=max_length is not None, max_length=max_length)
            if with_labels:
                out["labels"] = [float(x) for x in batch["label"]] if regression else [int(x) for x in batch["label"]]
            return out

        tokenized = {}
        for name, ds in self.splits.items():
            tokenized[name] = ds.map(
                encode,
                batched=True,
                remove_columns=ds.column_names,
                fn_kwargs={"with_labels": labelled(ds)},
                desc=f"tokenizing {name}",
            )
        return DatasetDict(tokenized)

    def tokenize_cache_key(self) -> dict | None:
        return {"text_columns": list(self.info.text_columns), "problem_type": self.info.problem_type}

    def collator(self, tokenizer, pad_to_multiple_of: int | None = None):
        from transformers import DataCollatorWithPadding

        return DataCollatorWithPadding(tokenizer, pad_to_multiple_of=pad_to_multiple_of)

    def configure_for(self, model) -> None:
        """A model's classes must be the task's, by name: a saved model whose ``id2label`` names the same classes
        in another order is read through that order (its class 0 is not the task's class 0); other names stop
        the run, saying which differ. Unnamed heads (``LABEL_0`` …) cannot be checked."""
        self._model_to_task = None
        names = self.info.label_names
        id2label = getattr(getattr(model, "config", None), "id2label", None) or {}
        if names is None or not id2label:
            return
        model_names = [id2label[k] for k in sorted(id2label, key=int)]
        if all(n == f"LABEL_{i}" for i, n in enumerate(model_names)):
            return
        if sorted(model_names) != sorted(names):
            only_model = [n for n in model_names if n not in names]
            only_task = [n for n in names if n not in model_names]
            raise DataError(f"the model's classes are not the task's ({self.info.name}): the model has "
                            f"{model_names}, the data {list(names)}"
                            + (f"; only in the model: {only_model}" if only_model else "")
                            + (f"; only in the data: {only_task}" if only_task else ""))
        if model_names != list(names):
            self._model_to_task = np.array([list(names).index(n) for n in model_names])

    def predictions_from_logits(self, logits: np.ndarray) -> np.ndarray:
        if self.info.problem_type == REGRESSION:
            return logits.reshape(len(logits), -1)[:, 0]
        predictions = logits.argmax(-1)
        mapping = getattr(self, "_model_to_task", None)
        return predictions if mapping is None or not len(predictions) else mapping[predictions]

    def compute_metrics(self, predictions: np.ndarray, references: np.ndarray, split: str) -> dict[str, float]:
        from harness.metrics import load_metric

        metric = load_metric(self.info.metric, self.info.metric_config)
        return {k: float(v) for k, v in metric.compute(predictions=predictions, references=references).items()}


def head_config(info, per_token: bool = False) -> dict:
    """The ``PretrainedConfig`` keys of a classification head sized for a task's ``info``: ``num_labels``,
    ``id2label``, ``label2id`` and ``problem_type`` (None for a per-token head: the sequence-level types do not
    apply)."""
    id2label = info.id2label or {0: "LABEL_0"}
    return {"num_labels": info.num_labels, "problem_type": None if per_token else info.problem_type,
            "id2label": id2label, "label2id": {v: k for k, v in id2label.items()}}


def max_positions(model) -> int | None:
    """The longest input a model's absolute position table holds (GPT-2's ``n_positions``, BERT's and ours'
    ``max_position_embeddings``), or None when positions are unbounded (sinusoidal, rotary, relative, recurrent)."""
    config = getattr(model, "config", None)
    if config is None or getattr(config, "position_embedding_type", "absolute") in ("sinusoidal", "rotary"):
        return None
    for name in ("n_positions", "max_position_embeddings"):
        value = getattr(config, name, None)
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    return None


def check_length(length: int, model_limit: int | None) -> None:
    """Refuse sequences longer than the model's position table, naming the recipe key."""
    if model_limit is not None and length > model_limit:
        raise DataError(f"training.max_length: {length} tokens per sequence, but the model's position table holds "
                        f"{model_limit}; lower training.max_length")


def count_tokens(batch: dict):
    """Real (non-padding) tokens of a batch — its attention mask's sum, else every input id — as a tensor on
    the batch's device (the loop sums it there and reads it at log steps: counting never waits for the device)."""
    mask = batch.get("attention_mask")
    return mask.sum() if mask is not None else batch["input_ids"].numel()


def labelled(ds: Dataset) -> bool:
    """Whether a split carries gold labels (test splits of benchmarks do not)."""
    if "label" not in ds.column_names or len(ds) == 0:
        return False
    return not np.all(np.asarray(ds["label"][: min(len(ds), 64)]) == -1)
