"""Language-modelling text: one sentence per row, from local files or a Hub dataset.

Local files (PTB, WikiText...) are plain UTF-8 text, one sentence per line, already tokenized
(tokens split on whitespace; PTB's ``<unk>`` is kept as the word it is). They are read with the
standard library, so a bad byte is reported as ``file:line``, and become ``datasets.Dataset`` splits
— the same path as a Hub dataset after loading. Blank lines (WikiText's paragraph breaks) are not
sentences and are dropped.

Recipe::

    data:
      component: lm_text
      train_file: ${env:HARNESS_DATA_DIR}/ptb/ptb.train.txt
      validation_file: ${env:HARNESS_DATA_DIR}/ptb/ptb.valid.txt
      test_file: ${env:HARNESS_DATA_DIR}/ptb/ptb.test.txt
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import numpy as np

from datasets import Dataset, DatasetDict

from harness.data.base import Task, TaskInfo, check_length, max_positions
from harness.errors import DataError, HarnessError, RecipeError
from harness.io import read_text
from harness.registry import register

LANGUAGE_MODELING = "language_modeling"
SPLITS = ("train", "validation", "test")


class LMTextTask(Task):
    """Sentences per split (a ``text`` column) and how to tokenize them for a word-level LM.

    ``sentences(split)`` yields each sentence as a list of tokens (whitespace split, lowercased when
    asked). ``add_eos``: whether models predict the end of each sentence (``</s>``, PTB's ``<eos>``),
    as perplexities on PTB are usually reported.
    """

    auto_model_class = "AutoModelForCausalLM"
    evaluator = "perplexity"

    def __init__(self, splits: DatasetDict, name: str = "lm_text", lowercase: bool = False, add_eos: bool = True,
                 packing: bool | None = None, eval_stride: int | None = None):
        if eval_stride is not None and eval_stride < 1:
            raise RecipeError(f"data.eval_stride: expected a positive integer, got {eval_stride}")
        self.packing, self.eval_stride = packing, eval_stride
        if not splits:
            raise DataError(f"task {name!r}: no split to read (give train_file / validation_file / test_file or a dataset)")
        self.splits = splits
        self.lowercase = lowercase
        self.add_eos = add_eos
        self.eval_splits = tuple(s for s in ("validation", "test") if s in splits)
        self.info = TaskInfo(name=name, problem_type=LANGUAGE_MODELING, label_names=None, text_columns=("text",),
                             metric="perplexity", main_metric="perplexity")

    def texts(self, split: str | None = None) -> Iterator[str]:
        split = split or self.train_split
        if split not in self.splits:
            raise DataError(f"task {self.info.name!r} has no {split!r} split (found: {', '.join(self.splits)})")
        texts = self.splits[split]["text"]
        for text in texts:
            yield text.lower() if self.lowercase else text

    def sentences(self, split: str | None = None) -> Iterator[list[str]]:
        """Tokenized sentences of a split (default: train), in file order."""
        for text in self.texts(split):
            yield text.split()

    def num_words(self, split: str | None = None) -> int:
        return sum(len(s) for s in self.sentences(split))

    # ---------------------------------------------------------------- neural LMs (truncated BPTT)
    #
    # Count-based models (ngram_lm) read ``sentences()`` and never call these. A neural LM sees each
    # split as one token stream (every sentence's tokens, then the end-of-sentence token), cut by
    # ``arrange`` into rows × windows as in Zaremba et al.: the stream is split into
    # batch_size × processes equal rows, each row is read left to right in windows of
    # ``training.max_length`` (the BPTT length), and the model's state carries from one window of
    # a row to the next. Rows are ordered [window][process][row], so each process's k-th batch is
    # window k of its own rows (Accelerate hands global batch g to process g % processes).

    stateful = True
    DEFAULT_BPTT = 35
    DEFAULT_BLOCK = 128
    #: labels are the next tokens (the perplexity evaluator counts ``shift_labels`` / ``labels[:, 1:]``)
    labels_shifted = True

    @property
    def default_step(self) -> str:
        return "truncated_bptt" if self.stateful else "standard"

    def configure_for(self, model) -> None:
        """A recurrent model (``_is_stateful``) reads the stream in order with its state carried (truncated BPTT);
        any other (a Transformer) trains on packed blocks — unless ``packing`` was set in the recipe."""
        self.position_limit = max_positions(model)
        recurrent = bool(getattr(model, "_is_stateful", False))
        self.stateful = recurrent if self.packing is None else not self.packing
        if self.stateful and not recurrent:
            raise DataError(f"data.packing: false streams the text with a carried state (truncated BPTT), which "
                            f"{type(model).__name__} does not have; leave packing out or set it true")

    def tokenize(self, tokenizer, max_length: int | None = None) -> DatasetDict:
        eos = tokenizer.eos_token_id if tokenizer.eos_token_id is not None else tokenizer.sep_token_id
        if self.add_eos and eos is None:
            raise HarnessError("lm_text: add_eos needs a tokenizer with an eos (or sep) token")
        self.bptt = max_length or (self.DEFAULT_BPTT if self.stateful else self.DEFAULT_BLOCK)
        if not self.stateful:
            check_length(self.bptt, getattr(self, "position_limit", None))
        streams = {}
        for split in self.splits:
            encoded = tokenizer(list(self.texts(split)), add_special_tokens=False)["input_ids"]
            tail = [eos] if self.add_eos else []
            stream = np.fromiter((t for ids in encoded for t in (*ids, *tail)), dtype=np.int64)
            if self.stateful:
                streams[split] = Dataset.from_dict({"stream": [stream]})
            elif split == self.train_split:
                streams[split] = Dataset.from_dict(pack_blocks(stream, self.bptt, self.info.name))
            else:
                stride = min(self.eval_stride or max(1, self.bptt // 2), self.bptt)
                streams[split] = Dataset.from_dict(sliding_windows(stream, self.bptt, stride))
        return DatasetDict(streams)

    def describe_split(self, rows) -> str:
        if not self.stateful:
            return f"{len(rows):,} blocks of {self.bptt}"
        return f"{len(rows[0]['stream']):,} tokens"

    def arrange(self, dataset: Dataset, batch_size: int, num_processes: int) -> Dataset:
        if not self.stateful:
            return dataset  # independent blocks, shuffled by the loop
        stream = np.asarray(dataset[0]["stream"], dtype=np.int64)
        rows = batch_size * num_processes
        per_row = (len(stream) - 1) // rows  # the last (len - 1) % rows tokens are not predicted
        if per_row < 1:
            raise DataError(f"task {self.info.name!r}: {len(stream)} tokens cannot fill {rows} rows; "
                            "lower training.batch_size / eval_batch_size")
        x = stream[: rows * per_row].reshape(rows, per_row)
        y = stream[1 : rows * per_row + 1].reshape(rows, per_row)
        inputs, targets = [], []
        for start in range(0, per_row, self.bptt):
            inputs.extend(x[:, start : start + self.bptt])  # [window][process][row], rows = p * B + b
            targets.extend(y[:, start : start + self.bptt])
        return Dataset.from_dict({"input_ids": inputs, "shift_labels": targets})

    def collator(self, tokenizer, pad_to_multiple_of: int | None = None):
        from transformers import default_data_collator

        return default_data_collator  # every row of a batch is the same window: no padding


def pack_blocks(stream: np.ndarray, block: int, name: str) -> dict:
    """Packing for a causal LM (GPT-2, nanoGPT): the split's documents, one after another with their end tokens,
    cut into independent blocks of ``block`` tokens. ``labels`` are the inputs (every ``transformers`` causal LM
    shifts them inside: position t is scored on token t + 1); consecutive blocks share one token, so every token
    after the first is predicted exactly once. A tail shorter than a block is not predicted."""
    if block < 2:
        raise DataError(f"task {name!r}: a block of {block} token predicts nothing; raise training.max_length")
    step = block - 1
    count = (len(stream) - 1) // step
    if count < 1:
        raise DataError(f"task {name!r}: {len(stream)} tokens cannot fill one block of {block} "
                        "(training.max_length); lower it")
    rows = [stream[k * step : k * step + block] for k in range(count)]
    return {"input_ids": rows, "labels": rows}


def sliding_windows(stream: np.ndarray, window: int, stride: int) -> dict:
    """Evaluation windows for a model with a bounded context: windows of ``window`` tokens every ``stride``
    tokens, each scoring only the tokens no earlier window scored (``labels`` -100 elsewhere; shifted inside
    the model like :func:`pack_blocks`'), so every token after the first is scored once, and each after at least
    ``window - stride - 1`` tokens of context except at the start. The last window ends at the stream's end."""
    window = max(2, min(window, len(stream)))
    starts = list(range(0, max(len(stream) - window, 0) + 1, stride))
    if starts[-1] + window < len(stream):
        starts.append(len(stream) - window)
    inputs, labels, scored = [], [], 1  # stream tokens [0, scored) are done (token 0 is never a target)
    for start in starts:
        x = stream[start : start + window]
        y = x.copy()
        y[: max(1, scored - start)] = -100
        scored = start + len(x)
        inputs.append(x)
        labels.append(y)
    return {"input_ids": inputs, "labels": labels}


def read_lines(path: str | Path, lowercase: bool = False) -> list[str]:
    """Non-blank lines of a UTF-8 text file (a bad byte is a DataError naming ``file:line``)."""
    return [line.strip() for line in read_text(path).splitlines() if line.strip()]


#: what a language model of this task reports: the neural evaluator's perplexity / loss / tokens, and the
#: n-gram scorer's extra columns (harness.training.counting)
LM_METRICS = ("perplexity", "loss", "tokens", "cross_entropy_bits", "oov_rate", "sentences")


@register("data", "lm_text", metrics=lambda args: LM_METRICS)
def lm_text(
    train_file: str | None = None,
    validation_file: str | None = None,
    test_file: str | None = None,
    dataset: str | None = None,
    dataset_config: str | None = None,
    text_column: str = "text",
    data_dir: str | None = None,
    lowercase: bool = False,
    add_eos: bool = True,
    packing: bool | None = None,
    eval_stride: int | None = None,
) -> LMTextTask:
    """Sentences for language modelling: local text files (one sentence per line) or a Hub dataset.

    ``*_file``: paths (relative ones resolve against ``data_dir`` when given). ``dataset`` /
    ``dataset_config``: ``datasets.load_dataset`` names (``data_dir`` is passed on to it), whose
    ``train`` / ``validation`` / ``test`` splits' ``text_column`` is read. ``lowercase``: lowercase
    every sentence. ``add_eos``: models predict ``</s>`` after each sentence (perplexity counts it).
    ``packing``: train on independent blocks of ``training.max_length`` tokens (default for a Transformer)
    instead of one stream read in order with a carried state (default for a recurrent model);
    ``eval_stride``: packed evaluation slides a window of ``max_length`` by this many tokens (default half of
    it) and scores each token once.
    """
    name, splits = read_text_splits(train_file, validation_file, test_file, dataset, dataset_config, text_column,
                                    data_dir)
    return LMTextTask(splits, name=f"lm_text:{name}", lowercase=lowercase, add_eos=add_eos, packing=packing,
                      eval_stride=eval_stride)


def read_text_splits(train_file, validation_file, test_file, dataset, dataset_config, text_column, data_dir,
                     component: str = "lm_text") -> tuple[str, DatasetDict]:
    """The splits of a text corpus (a ``text`` column of non-blank lines) from local files or a Hub dataset, and
    the corpus's name."""
    files = {"train": train_file, "validation": validation_file, "test": test_file}
    given = {k: v for k, v in files.items() if v is not None}
    if dataset is not None and given:
        raise RecipeError(f"data: give either dataset ({dataset!r}) or local files ({', '.join(f'{k}_file' for k in given)}), not both")
    if dataset is None and not given:
        raise RecipeError(f"data: {component} needs train_file / validation_file / test_file or a dataset name")
    splits: dict[str, Dataset] = {}
    if dataset is None:
        base = Path(data_dir) if data_dir else None
        name = Path(next(iter(given.values()))).parent.name or "text"
        for split, f in given.items():
            path = Path(f)
            if base is not None and not path.is_absolute():
                path = base / path
            lines = read_lines(path)
            if not lines:
                raise DataError(f"{path}: no sentences (empty corpus)")
            splits[split] = Dataset.from_dict({"text": lines})
    else:
        from datasets import load_dataset

        name = dataset if dataset_config is None else f"{dataset}/{dataset_config}"
        try:
            raw = load_dataset(dataset, dataset_config, data_dir=data_dir)
        except Exception as e:  # offline, unknown name, bad config: one line with the cause
            raise DataError(f"dataset {name!r} cannot be loaded ({type(e).__name__}: {e}); offline, point "
                            f"train_file / validation_file / test_file at local copies instead") from None
        for split in SPLITS:
            if split not in raw:
                continue
            ds = raw[split]
            if text_column not in ds.column_names:
                raise DataError(f"dataset {name!r} split {split!r} has no column {text_column!r} "
                                f"(columns: {', '.join(ds.column_names)}); set data.text_column")
            texts = [t.strip() for t in ds[text_column] if t is not None and t.strip()]
            if not texts:
                raise DataError(f"dataset {name!r} split {split!r}: no sentences (empty corpus)")
            splits[split] = Dataset.from_dict({"text": texts})
        if not splits:
            raise DataError(f"dataset {name!r} has none of the splits {', '.join(SPLITS)} (found: {', '.join(raw)})")
    return name, DatasetDict(splits)
