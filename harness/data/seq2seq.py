"""Sequence-to-sequence tasks: translation from parallel text and any text-to-text task (summarization …) from
JSON lines / CSV / TSV, or a Hub dataset — one task family after loading.

Every split becomes rows of ``source`` (a string) and ``references`` (a list of strings: one for translation,
one or several for a summary). Training reads the first reference as the target (teacher forcing); evaluation
decodes each source with the recipe's ``generation:`` settings and scores the strings against all references
(``sacrebleu`` — BLEU and chrF — for translation, ``rouge`` for summaries).

Recipes::

    data:                                 data:
      component: translation                component: text_to_text
      data_dir: ${env:HARNESS_DATA_DIR}/multi30k      train_file: train.jsonl
      source_lang: de                       validation_file: val.jsonl
      target_lang: en                       source_field: document
      # Multi30k's layout: train.de / train.en, val.*, test_2016_flickr.* …    reference_fields: [summary, summary_2]

A model with a task prefix (T5: ``model.config.harness_prefix``, set by the ``pretrained`` builder) gets it in
front of every source. Sources or targets longer than ``training.max_length`` stop the run, naming the split
and the longest, unless ``data.truncate: true`` (then they are cut and the count is printed).
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

from datasets import Dataset, DatasetDict

from harness.data.base import Task, TaskInfo, check_length, max_positions, training_data_required
from harness.data.files import read_rows
from harness.errors import DataError, RecipeError, where
from harness.io import atomic_write_text, read_text
from harness.registry import register

SEQ2SEQ = "seq2seq"
TRANSLATION_METRICS = ("bleu", "chrf", "bleu_*", "chrf_*", "exact_match")
SUMMARY_METRICS = ("rouge1", "rouge2", "rougeL", "rougeLsum", "rougeW", "rouge*", "exact_match")
#: Multi30k's file names per split (``<name>.<lang>``); a split whose files are absent is skipped
MULTI30K_SPLITS = {"train": "train", "validation": "val", "test_2016_flickr": "test_2016_flickr",
                   "test_2017_flickr": "test_2017_flickr", "test_2017_mscoco": "test_2017_mscoco"}


class Seq2SeqTask(Task):
    auto_model_class = "AutoModelForSeq2SeqLM"
    evaluator = "generation"

    def __init__(self, splits: DatasetDict, name: str, metric: str, main_metric: str,
                 eval_splits=("validation",), truncate: bool = False, source_prefix: str = ""):
        self.truncate = truncate
        self.source_prefix = source_prefix
        self.signatures: dict[str, str] = {}
        self.prefix = ""
        info = TaskInfo(name=name, problem_type=SEQ2SEQ, label_names=None, text_columns=("source",), metric=metric,
                        main_metric=main_metric)
        self._set_splits(info, splits, [s for s in eval_splits if s in splits])

    def texts(self, split: str | None = None) -> Iterator[str]:
        """Sources and first references of a split (a joint vocabulary is trained on both)."""
        ds = self.splits[split or self.train_split]
        yield from ds["source"]
        for refs in ds["references"]:
            yield refs[0]

    def configure_for(self, model) -> None:
        config = getattr(model, "config", None)
        self.prefix = self.source_prefix or getattr(config, "harness_prefix", "") or ""
        #: a target whose tokenization starts with the decoder's start token loses it (the model puts it in front
        #: when it shifts the labels right): [CLS] y [SEP] → y [SEP] for our tokenizers; T5's y </s> is untouched
        self.decoder_start = getattr(config, "decoder_start_token_id", None)
        #: teacher forcing: the training batches carry the decoder's inputs, the labels shifted right by the model's
        #: own rule (``prepare_decoder_input_ids_from_labels``), so any loss can run the forward
        self.teacher = model if hasattr(model, "prepare_decoder_input_ids_from_labels") else None
        self.position_limit = max_positions(model)

    def tokenize(self, tokenizer, max_length: int | None = None) -> DatasetDict:
        if max_length is not None:
            check_length(max_length, getattr(self, "position_limit", None))
        out = {}
        for split, ds in self.splits.items():
            sources = [self.prefix + s for s in ds["source"]]
            targets = [refs[0] for refs in ds["references"]]
            encoded = tokenizer(sources, text_target=targets, verbose=False)
            start = getattr(self, "decoder_start", None)
            if start is not None:
                encoded["labels"] = [y[1:] if len(y) > 1 and y[0] == start else y for y in encoded["labels"]]
            for key, texts in (("input_ids", "sources"), ("labels", "targets")):
                lengths = [len(x) for x in encoded[key]]
                long = [i for i, n in enumerate(lengths) if max_length is not None and n > max_length]
                if long and not self.truncate:
                    raise DataError(f"task {self.info.name!r} split {split!r}: {len(long)} {texts} are longer than "
                                    f"training.max_length={max_length} tokens (the longest, row {long[0] + 1} of "
                                    f"those, has {max(lengths)}); raise training.max_length or set data.truncate: "
                                    "true to cut them")
                if long:
                    print(f"{split}: {len(long)} {texts} cut to {max_length} tokens (data.truncate)")
                    cut = encoded[key]
                    for i in long:
                        cut[i] = cut[i][: max_length - 1] + cut[i][-1:]  # keep the end token
                    if key == "input_ids":
                        encoded["attention_mask"] = [[1] * len(x) for x in cut]
            out[split] = Dataset.from_dict({"input_ids": encoded["input_ids"],
                                            "attention_mask": encoded["attention_mask"],
                                            "labels": encoded["labels"]})
        return DatasetDict(out)

    def collator(self, tokenizer, pad_to_multiple_of: int | None = None):
        from transformers import DataCollatorForSeq2Seq

        return DataCollatorForSeq2Seq(tokenizer, model=getattr(self, "teacher", None), label_pad_token_id=-100,
                                      pad_to_multiple_of=pad_to_multiple_of)

    def references(self, split: str):
        return [list(r) for r in self.splits[split]["references"]]

    def compute_metrics(self, predictions, references, split: str) -> dict[str, float]:
        from harness.metrics import load_metric

        texts = [p[0] if isinstance(p, list) else p for p in predictions]
        metric = load_metric(self.info.metric)
        result = metric.compute(predictions=texts, references=references)
        out = {k: float(v) for k, v in result.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
        self.signatures.update({k: v for k, v in result.items() if k.endswith("_signature") and isinstance(v, str)})
        # the share of outputs equal to one of their references (whitespace-normalised)
        same = [" ".join(t.split()) in {" ".join(r.split()) for r in refs} for t, refs in zip(texts, references)]
        out["exact_match"] = sum(same) / max(1, len(same))
        return out

    def report_rows(self) -> dict[str, str]:
        """The metric signatures (sacreBLEU's ``nrefs:1|case:mixed|eff:no|tok:13a|smooth:exp|version:…``), so a score
        can be compared with one computed elsewhere."""
        return {f"{k.removesuffix('_signature')} signature": v for k, v in sorted(self.signatures.items())}

    def write_predictions(self, path: Path, split: str, predictions) -> Path:
        """``predictions_<split>.txt``: one hypothesis per line, in the split's order (a line break inside a
        hypothesis becomes a space); with several per example, the first."""
        path = Path(path).with_suffix(".txt")
        lines = [(p[0] if isinstance(p, list) else p).replace("\n", " ") for p in predictions]
        atomic_write_text(path, "\n".join(lines) + "\n")
        return path

    def describe_split(self, rows) -> str:
        return f"{len(rows):,} pairs"


def read_parallel(source_path: Path, target_path: Path) -> tuple[list[str], list[str]]:
    """Two line-aligned files; different line counts or an empty line on either side is a DataError naming the
    place."""
    sources = read_text(source_path).split("\n")
    targets = read_text(target_path).split("\n")
    for lines in (sources, targets):
        if lines and lines[-1] == "":
            lines.pop()  # the final newline
    if len(sources) != len(targets):
        raise DataError(f"parallel files are not aligned: {source_path} has {len(sources)} lines, {target_path} has "
                        f"{len(targets)}")
    for path, lines in ((source_path, sources), (target_path, targets)):
        for i, line in enumerate(lines, 1):
            if not line.strip():
                raise DataError(f"{where(path, i)}: empty line (line {i} of the other side has no partner)")
    return [s.strip() for s in sources], [t.strip() for t in targets]


def _eval_splits(splits, wanted) -> list[str]:
    if wanted is not None:
        return list(wanted)
    return [s for s in splits if s != "train"]


@register("data", "translation", metrics=lambda args: TRANSLATION_METRICS)
def translation(
    source_lang: str,
    target_lang: str,
    data_dir: str | None = None,
    files: dict[str, list[str]] | None = None,
    dataset: str | None = None,
    dataset_config: str | None = None,
    eval_splits: list[str] | None = None,
    truncate: bool = False,
    source_prefix: str = "",
) -> Seq2SeqTask:
    """Translation ``source_lang`` → ``target_lang`` from one of:

    * ``data_dir`` in Multi30k's layout: ``<split file>.<lang>`` for train, val (→ ``validation``),
      test_2016_flickr, test_2017_flickr, test_2017_mscoco — the splits whose two files exist;
    * ``files``: ``{split: [source_file, target_file]}``, any aligned pair per split;
    * ``dataset``: a Hub dataset with a ``translation`` column of ``{lang: text}`` rows.

    ``eval_splits``: the splits scored (default: every split but train; the first drives checkpoint selection).
    ``source_prefix``: text put before every source (a T5 prefix, when the model does not carry one).
    """
    given = [name for name, v in (("data_dir", data_dir), ("files", files), ("dataset", dataset)) if v]
    if len(given) != 1:
        raise RecipeError(f"data: translation reads one of data_dir, files or dataset (got {', '.join(given) or 'none'})")
    splits: dict[str, Dataset] = {}
    if dataset is not None:
        splits = _hub_translation(dataset, dataset_config, source_lang, target_lang)
        name = dataset
    else:
        if files is None:
            base = Path(data_dir)
            files = {split: [str(base / f"{stem}.{source_lang}"), str(base / f"{stem}.{target_lang}")]
                     for split, stem in MULTI30K_SPLITS.items()
                     if (base / f"{stem}.{source_lang}").is_file() or (base / f"{stem}.{target_lang}").is_file()}
            if not files:
                raise DataError(f"data.data_dir: {base} holds no <split>.{source_lang} / <split>.{target_lang} files "
                                f"(Multi30k's layout: {', '.join(f'{s}.{source_lang}' for s in MULTI30K_SPLITS.values())})")
            name = base.name
        else:
            name = "parallel"
        for split, pair in files.items():
            if not isinstance(pair, (list, tuple)) or len(pair) != 2:
                raise RecipeError(f"data.files.{split}: expected [source_file, target_file], got {pair!r}")
            if split == "train" and not training_data_required():
                continue
            sources, targets = read_parallel(Path(pair[0]), Path(pair[1]))
            splits[split] = Dataset.from_dict({"source": sources, "references": [[t] for t in targets]})
    return Seq2SeqTask(DatasetDict(splits), name=f"translation:{name}:{source_lang}-{target_lang}",
                       metric="sacrebleu", main_metric="bleu", eval_splits=_eval_splits(splits, eval_splits),
                       truncate=truncate, source_prefix=source_prefix)


def _hub_translation(dataset, dataset_config, source_lang, target_lang) -> dict[str, Dataset]:
    from datasets import load_dataset

    label = dataset if dataset_config is None else f"{dataset}/{dataset_config}"
    try:
        raw = load_dataset(dataset, dataset_config)
    except Exception as e:  # offline, unknown name: one line with the cause
        raise DataError(f"dataset {label!r} cannot be loaded ({type(e).__name__}: {e}); offline, use data_dir or "
                        "files with local copies") from None
    splits = {}
    for split, ds in raw.items():
        if "translation" not in ds.column_names:
            raise DataError(f"dataset {label!r} split {split!r} has no 'translation' column (columns: "
                            f"{', '.join(ds.column_names)})")
        pairs = ds["translation"]
        for i, pair in enumerate(pairs):
            if not pair.get(source_lang) or not pair.get(target_lang):
                raise DataError(f"dataset {label!r} split {split!r} row {i}: no {source_lang!r} / {target_lang!r} text")
        splits[split] = Dataset.from_dict({"source": [p[source_lang].strip() for p in pairs],
                                           "references": [[p[target_lang].strip()] for p in pairs]})
    return splits


@register("data", "text_to_text", metrics=lambda args: (TRANSLATION_METRICS if args.get("metric") == "sacrebleu"
                                                         else SUMMARY_METRICS))
def text_to_text(
    source_field: str,
    reference_fields: list[str],
    train_file: str | None = None,
    validation_file: str | None = None,
    test_file: str | None = None,
    dataset: str | None = None,
    dataset_config: str | None = None,
    metric: str = "rouge",
    truncate: bool = False,
    source_prefix: str = "",
) -> Seq2SeqTask:
    """Any text-to-text task (summarization, paraphrase …) from JSON lines / CSV / TSV files per split or a Hub
    dataset: ``source_field`` is the input, ``reference_fields`` one or several gold outputs (multi-reference
    scoring; a row may leave later ones empty, never the first). ``metric``: ``rouge`` (ROUGE-1/2/L/Lsum/W) or
    ``sacrebleu`` (BLEU, chrF)."""
    if metric not in ("rouge", "sacrebleu"):
        raise RecipeError(f"data.metric: expected rouge or sacrebleu, got {metric!r}")
    if not reference_fields:
        raise RecipeError("data.reference_fields: name at least one field")
    files = {k: v for k, v in (("train", train_file), ("validation", validation_file), ("test", test_file)) if v}
    if (dataset is None) == (not files):
        raise RecipeError("data: text_to_text reads either local files (train_file / validation_file / test_file) "
                          "or a dataset")
    splits = {}
    if dataset is None:
        for split, f in files.items():
            if split == "train" and not training_data_required():
                continue
            rows = read_rows(f)
            splits[split] = _pairs([(where(f, line), row) for line, row in rows], source_field, reference_fields)
        name = Path(next(iter(files.values()))).parent.name or "text"
    else:
        from datasets import load_dataset

        label = dataset if dataset_config is None else f"{dataset}/{dataset_config}"
        try:
            raw = load_dataset(dataset, dataset_config)
        except Exception as e:
            raise DataError(f"dataset {label!r} cannot be loaded ({type(e).__name__}: {e}); offline, point "
                            "train_file / validation_file / test_file at local copies") from None
        for split, ds in raw.items():
            splits[split] = _pairs([(f"dataset {label!r} split {split!r} row {i}", row) for i, row in enumerate(ds)],
                                   source_field, reference_fields)
        name = dataset
    return Seq2SeqTask(DatasetDict(splits), name=f"text_to_text:{name}", metric=metric,
                       main_metric="rougeL" if metric == "rouge" else "bleu",
                       eval_splits=[s for s in ("validation", "test") if s in splits], truncate=truncate,
                       source_prefix=source_prefix)


@register("data", "synthetic_seq2seq", metrics=lambda args: TRANSLATION_METRICS)
def synthetic_seq2seq(
    operation: str = "reverse",
    num_train: int = 2000,
    num_validation: int = 200,
    num_test: int = 0,
    vocab: int = 10,
    min_length: int = 3,
    max_length: int = 8,
    seed: int = 0,
) -> Seq2SeqTask:
    """Generated sequence pairs for tests and tiny recipes: random "words" ``s0 … s{vocab-1}``, ``min_length`` to
    ``max_length`` per source, the target its ``copy``, ``reverse`` or ``sort``. A model that learns the operation
    reaches 100 % exact match; scored with sacreBLEU and exact match."""
    import random

    operations = {"copy": lambda w: w, "reverse": lambda w: w[::-1], "sort": sorted}
    if operation not in operations:
        raise RecipeError(f"data.operation: expected one of {', '.join(operations)}, got {operation!r}")
    if not 1 <= min_length <= max_length:
        raise RecipeError(f"data.min_length / max_length: need 1 <= min_length <= max_length, got {min_length}, {max_length}")
    rng = random.Random(seed)
    words = [f"s{i}" for i in range(vocab)]
    splits = {}
    for split, n in (("train", num_train), ("validation", num_validation), ("test", num_test)):
        if n <= 0:
            continue
        sources = [[rng.choice(words) for _ in range(rng.randint(min_length, max_length))] for _ in range(n)]
        splits[split] = Dataset.from_dict({"source": [" ".join(w) for w in sources],
                                           "references": [[" ".join(operations[operation](w))] for w in sources]})
    return Seq2SeqTask(DatasetDict(splits), name=f"synthetic_seq2seq:{operation}", metric="sacrebleu",
                       main_metric="exact_match", eval_splits=[s for s in ("validation", "test") if s in splits])


def _pairs(rows, source_field: str, reference_fields: list[str]) -> Dataset:
    sources, references = [], []
    for place, row in rows:
        source = row.get(source_field)
        if not isinstance(source, str) or not source.strip():
            raise DataError(f"{place}: no {source_field!r} text (data.source_field)")
        refs = []
        for i, field in enumerate(reference_fields):
            value = row.get(field)
            if field not in row and i == 0:
                raise DataError(f"{place}: the reference field {field!r} is missing (data.reference_fields)")
            if isinstance(value, str) and value.strip():
                refs.append(value.strip())
            elif i == 0:
                raise DataError(f"{place}: the first reference {field!r} is empty")
        sources.append(source.strip())
        references.append(refs)
    return Dataset.from_dict({"source": sources, "references": references})


__all__ = ["Seq2SeqTask", "translation", "text_to_text", "synthetic_seq2seq", "read_parallel"]
