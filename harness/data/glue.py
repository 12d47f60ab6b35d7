"""GLUE: the nine tasks (and the AX diagnostic set) as :class:`~harness.data.base.ClassificationTask`.

Two sources give the same columns, split names and label ids, so nothing after loading needs to
know where the data came from:

* **local** — GLUE's original TSV layout, as ``download_glue_data.py`` writes it::

      <data_dir>/CoLA/{train,dev,test}.tsv        train/dev: no header (source, label, mark, sentence)
      <data_dir>/SST-2/{train,dev,test}.tsv
      <data_dir>/MRPC/{train,dev,test}.tsv        UTF-8 BOM header
      <data_dir>/STS-B/{train,dev,test}.tsv       10 columns (test: 9, no score)
      <data_dir>/QQP/{train,dev,test}.tsv
      <data_dir>/MNLI/{train,dev_matched,dev_mismatched,test_matched,test_mismatched}.tsv
      <data_dir>/QNLI/{train,dev,test}.tsv
      <data_dir>/RTE/{train,dev,test}.tsv
      <data_dir>/WNLI/{train,dev,test}.tsv
      <data_dir>/diagnostic/diagnostic.tsv        (or AX/AX.tsv): AX, test only

  ``data_dir`` defaults to ``$HARNESS_DATA_DIR/glue``. Files are parsed by their header names
  (CoLA train/dev by position, as GLUE ships them headerless) with ``csv`` and
  ``quoting=QUOTE_NONE``, like the HF ``glue`` script and transformers' GLUE processors. Every row
  is checked: a wrong field count, a label outside the task's label set or a non-float STS-B score
  is a :class:`~harness.errors.DataError` naming ``file:line``.
* **hub** — ``datasets.load_dataset("nyu-mll/glue", <config>)``, then cast to the same features.

Every split has the text columns of ``info.text_columns``, ``label`` (int class id; float for
STS-B; -1 where a test file has no labels) and ``idx`` (int: the file's ``index`` column where it
has one, the 0-based row number otherwise, as HF does), in that order.

AX (the diagnostic set) has no training data: it is predicted with an MNLI model. ``glue("ax")``
raises a DataError that says so; :func:`load_ax` returns the AX test set as a ``Dataset`` with the
MNLI task's columns, for the leaderboard writer to predict after training on ``glue("mnli")``.
"""

from __future__ import annotations

import csv
import io
import logging
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

from datasets import Dataset, DatasetDict, Features, Value

from harness.data.base import CLASSIFICATION, REGRESSION, ClassificationTask, TaskInfo, training_data_required
from harness.errors import DataError, RecipeError, where
from harness.io import read_text
from harness.registry import register

log = logging.getLogger(__name__)

HUB_DATASET = "nyu-mll/glue"
SOURCES = ("auto", "local", "hub")
#: the column every GLUE submission file has, in order (``index<TAB>prediction``)
SUBMISSION_COLUMNS = ("index", "prediction")

_MNLI_LABELS = ["entailment", "neutral", "contradiction"]


@dataclass(frozen=True)
class _FileLayout:
    """How one split's file is read."""

    filename: str
    #: output text column -> header name in the file (or column position when ``positional``)
    text: dict[str, str | int]
    label: str | int | None  # header name / position of the label; None: unlabelled by design
    positional: int = 0  # >0: no header, this many fields per row (CoLA train/dev)
    index: str | None = "index"  # header name of the example id column, if the file has one


@dataclass(frozen=True)
class _Spec:
    key: str  # our name == HF config name
    folder: str  # GLUE folder
    label_names: list[str] | None  # HF glue names and order; None: regression
    #: label strings as written in the TSV files (and as the GLUE server expects them), by id
    file_labels: list[str] | None
    text_columns: tuple[str, ...]
    main_metric: str
    files: dict[str, _FileLayout]  # split name -> layout
    eval_splits: tuple[str, ...] = ("validation",)
    submission_files: dict[str, str] = field(default_factory=dict)  # test split -> GLUE file name
    aliases: tuple[str, ...] = ()

    @property
    def test_splits(self) -> tuple[str, ...]:
        return tuple(s for s in self.files if s.startswith("test"))


def _same(columns: Sequence[str]) -> dict[str, str]:
    return {c: c for c in columns}


def _standard(
    key,
    folder,
    label_names,
    file_labels,
    text,
    label_col,
    main_metric,
    *,
    index_train="index",
    index_test="index",
    aliases=(),
):
    """A task with header-named train/dev/test files where test lacks the label column."""
    text_columns = tuple(text)
    return _Spec(
        key=key,
        folder=folder,
        label_names=label_names,
        file_labels=file_labels,
        text_columns=text_columns,
        main_metric=main_metric,
        files={
            "train": _FileLayout("train.tsv", text, label_col, index=index_train),
            "validation": _FileLayout("dev.tsv", text, label_col, index=index_train),
            "test": _FileLayout("test.tsv", text, label_col, index=index_test),
        },
        submission_files={"test": f"{folder}.tsv"},
        aliases=aliases,
    )


_BINARY = ["0", "1"]
_PAIR = _same(("sentence1", "sentence2"))

_SPECS: dict[str, _Spec] = {
    "cola": _Spec(
        key="cola",
        folder="CoLA",
        label_names=["unacceptable", "acceptable"],
        file_labels=_BINARY,
        text_columns=("sentence",),
        main_metric="matthews_correlation",
        files={
            # GLUE's CoLA train/dev have no header: source, label, original mark, sentence
            "train": _FileLayout("train.tsv", {"sentence": 3}, 1, positional=4, index=None),
            "validation": _FileLayout("dev.tsv", {"sentence": 3}, 1, positional=4, index=None),
            "test": _FileLayout("test.tsv", {"sentence": "sentence"}, None),
        },
        submission_files={"test": "CoLA.tsv"},
    ),
    "sst2": _standard(
        "sst2", "SST-2", ["negative", "positive"], _BINARY, _same(("sentence",)), "label", "accuracy",
        index_train=None, aliases=("sst", "sst-2"),
    ),
    "mrpc": _standard(
        "mrpc", "MRPC", ["not_equivalent", "equivalent"], _BINARY,
        {"sentence1": "#1 String", "sentence2": "#2 String"}, "Quality", "f1", index_train=None,
    ),
    "stsb": _standard(
        "stsb", "STS-B", None, None, _PAIR, "score", "pearson", aliases=("sts", "sts-b"),
    ),
    # QQP's "id" in train/dev is the Quora pair id, not a row number; HF numbers rows instead
    "qqp": _standard(
        "qqp", "QQP", ["not_duplicate", "duplicate"], _BINARY, _same(("question1", "question2")),
        "is_duplicate", "f1", index_train=None, index_test="id",
    ),
    "mnli": _Spec(
        key="mnli",
        folder="MNLI",
        label_names=_MNLI_LABELS,
        file_labels=_MNLI_LABELS,
        text_columns=("premise", "hypothesis"),
        main_metric="accuracy",
        files={
            split: _FileLayout(f"{name}.tsv", {"premise": "sentence1", "hypothesis": "sentence2"}, "gold_label")
            for split, name in (
                ("train", "train"),
                ("validation_matched", "dev_matched"),
                ("validation_mismatched", "dev_mismatched"),
                ("test_matched", "test_matched"),
                ("test_mismatched", "test_mismatched"),
            )
        },
        eval_splits=("validation_matched", "validation_mismatched"),
        submission_files={"test_matched": "MNLI-m.tsv", "test_mismatched": "MNLI-mm.tsv"},
        aliases=("multinli",),
    ),
    "qnli": _standard(
        "qnli", "QNLI", ["entailment", "not_entailment"], ["entailment", "not_entailment"],
        _same(("question", "sentence")), "label", "accuracy",
    ),
    "rte": _standard(
        "rte", "RTE", ["entailment", "not_entailment"], ["entailment", "not_entailment"], _PAIR, "label",
        "accuracy",
    ),
    # WNLI's files say 0/1 (1 = entailment) and the GLUE server wants 0/1 back
    "wnli": _standard(
        "wnli", "WNLI", ["not_entailment", "entailment"], _BINARY, _PAIR, "label", "accuracy",
    ),
}

_AX = _Spec(
    key="ax",
    folder="diagnostic",
    label_names=_MNLI_LABELS,
    file_labels=_MNLI_LABELS,
    text_columns=("premise", "hypothesis"),
    main_metric="accuracy",
    files={"test": _FileLayout("diagnostic.tsv", {"premise": "sentence1", "hypothesis": "sentence2"}, None)},
    eval_splits=(),
    submission_files={"test": "AX.tsv"},
    aliases=("diagnostic", "glue_diagnostics"),
)

#: every task name :func:`glue` knows (HF ``glue`` config names)
GLUE_TASKS: tuple[str, ...] = (*_SPECS, "ax")


def _canon(name: str) -> str:
    return name.strip().lower().replace("_", "-")


_ALIASES: dict[str, str] = {}
for _spec in (*_SPECS.values(), _AX):
    for _alias in (_spec.key, _spec.folder, *_spec.aliases):
        _ALIASES[_canon(_alias)] = _spec.key
_ALIASES[_canon("AX")] = "ax"


def glue_task_name(task: str) -> str:
    """The canonical (HF config) name of a GLUE task: ``"SST-2"`` -> ``"sst2"``."""
    key = _ALIASES.get(_canon(str(task)))
    if key is None:
        raise DataError(
            f"unknown GLUE task {task!r}; valid tasks: {', '.join(GLUE_TASKS)} "
            f"(GLUE folder names such as SST-2, STS-B, MNLI are accepted too)"
        )
    return key


# --------------------------------------------------------------------------------------------
# the public entry points


#: what the GLUE metric module (harness/metrics/glue) reports per task (``glue_metrics``)
_METRICS = {"cola": ("matthews_correlation",), "stsb": ("pearson", "spearmanr"), "mrpc": ("accuracy", "f1"),
            "qqp": ("accuracy", "f1")}


def glue_metrics(args: dict) -> tuple[str, ...]:
    """The metrics ``glue(**args)`` reports (its task's), for checking ``evaluation.metric_for_best`` early."""
    try:
        key = glue_task_name(args.get("task", ""))
    except DataError:
        return ("*",)  # the task itself is refused when the data is loaded
    return _METRICS.get(key, ("accuracy",))


@register("data", "glue", metrics=glue_metrics)
def glue(
    task: str,
    data_dir: str | None = None,
    source: str = "auto",
    max_train_samples: int | None = None,
    max_eval_samples: int | None = None,
    seed: int = 0,
) -> ClassificationTask:
    """Load one GLUE task.

    Args:
        task: cola, sst2, mrpc, stsb, qqp, mnli, qnli, rte or wnli (case-insensitive; GLUE folder
            names such as ``SST-2`` work too). ``ax`` raises: see :func:`load_ax`.
        data_dir: the folder holding GLUE's task folders; default ``$HARNESS_DATA_DIR/glue``.
        source: ``local`` (the TSV files), ``hub`` (``nyu-mll/glue``), or ``auto``: local when the
            task's folder exists, else the Hub unless ``HF_HUB_OFFLINE``/``HF_DATASETS_OFFLINE`` is
            set (then the missing-data error). An explicit ``data_dir`` is never skipped for the Hub.
        max_train_samples, max_eval_samples: keep this many examples of the train split / of each
            evaluation split (shuffled with ``seed``, then the first N); test splits are kept whole.
        seed: the subsampling seed.

    The returned task's ``info.extra`` holds what a GLUE leaderboard writer needs:
    ``test_splits`` (test split -> submission file name), ``test_label_strings`` (the string the
    GLUE server expects for each class id, or None for STS-B's float scores), and
    ``submission_columns``.
    """
    key = glue_task_name(task)
    if key == "ax":
        raise DataError(
            "GLUE task 'ax' (the diagnostic set) is test-only: there is nothing to train on. "
            "Train on task 'mnli' and predict AX with that model; harness.data.glue.load_ax() returns "
            "the AX test set (premise, hypothesis, label -1, idx) to predict with MNLI's label names, and the "
            "mnli task's info.extra['ax_submission_file'] names its submission file (AX.tsv)."
        )
    spec = _SPECS[key]
    _check_source(source)
    for name, value in (("max_train_samples", max_train_samples), ("max_eval_samples", max_eval_samples)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            raise RecipeError(f"glue: {name} must be a positive integer or null, got {value!r}")

    use, folder, _ = _choose_source(spec, data_dir, source)
    if use == "local":
        splits = _load_local(spec, folder)
    else:
        splits = _load_hub(spec)

    splits = _subsample(splits, spec, max_train_samples, max_eval_samples, seed)
    info = _info(spec, list(splits), source=use, data_dir=None if folder is None else str(folder))
    eval_splits = tuple(s for s in spec.eval_splits if s in splits)
    return ClassificationTask(info, splits, eval_splits=eval_splits)


def load_ax(data_dir: str | None = None, source: str = "auto") -> Dataset:
    """GLUE's AX diagnostic set: the ``test`` split only, to be predicted with an MNLI model.

    Columns match ``glue("mnli")``: ``premise``, ``hypothesis``, ``label`` (-1: AX is unlabelled)
    and ``idx``. Predictions are written with MNLI's label words (``entailment``, ``neutral``,
    ``contradiction``) to ``AX.tsv``. Locally the file is ``<data_dir>/diagnostic/diagnostic.tsv``
    or ``<data_dir>/AX/AX.tsv``.
    """
    _check_source(source)
    use, folder, _ = _choose_source(_AX, data_dir, source)
    if use == "local":
        return _load_local(_AX, folder)["test"]
    return _load_hub(_AX)["test"]


# --------------------------------------------------------------------------------------------
# where the data comes from


def _check_source(source: str) -> None:
    if source not in SOURCES:
        raise RecipeError(f"glue: source must be one of {', '.join(SOURCES)}, got {source!r}")


def _offline() -> bool:
    truthy = {"1", "true", "yes", "on"}
    return any(os.environ.get(v, "").strip().lower() in truthy for v in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE"))


def _default_root() -> Path | None:
    root = os.environ.get("HARNESS_DATA_DIR")
    return Path(root).expanduser() / "glue" if root else None


def _find_folder(spec: _Spec, root: Path) -> Path | None:
    """``root/<Folder>`` (case-insensitive, any of the task's names); also ``root/glue/<Folder>``."""
    names = {_canon(n) for n in (spec.key, spec.folder, *spec.aliases)}
    if spec is _AX:
        names.add("ax")
    for base in (root, root / "glue"):
        if not base.is_dir():
            continue
        exact = base / spec.folder
        if exact.is_dir():
            return exact
        for child in sorted(base.iterdir()):
            if child.is_dir() and _canon(child.name) in names:
                return child
    return None


def _how_to_get(spec: _Spec) -> str:
    files = "diagnostic.tsv" if spec is _AX else ", ".join(l.filename for l in spec.files.values())
    return (
        f"Put GLUE in its original layout (<dir>/{spec.folder}/{{{files}}}, as download_glue_data.py "
        f"writes it) and set HARNESS_DATA_DIR so that it is $HARNESS_DATA_DIR/glue/{spec.folder}, or pass "
        f"data_dir; or use source: hub ({HUB_DATASET}) on a machine that can reach the Hugging Face Hub"
        + (" (HF_HUB_OFFLINE is set here)" if _offline() else "")
        + "."
    )


def _missing_message(spec: _Spec, tried: Path | None) -> str:
    what = "the GLUE AX diagnostic set" if spec is _AX else f"GLUE {spec.key!r} data"
    place = (
        f"no {spec.folder}/ folder under {tried}"
        if tried
        else "HARNESS_DATA_DIR is not set and no data_dir was given"
    )
    return f"{what} not found: {place}. {_how_to_get(spec)}"


def _choose_source(spec: _Spec, data_dir: str | None, source: str) -> tuple[str, Path | None, Path | None]:
    """-> ("local", task folder, root) or ("hub", None, None)."""
    if source == "hub":
        return "hub", None, None
    explicit = data_dir is not None
    root = Path(data_dir).expanduser() if explicit else _default_root()
    folder = _find_folder(spec, root) if root is not None else None
    if folder is not None:
        return "local", folder, root
    if source == "auto" and not explicit and not _offline():
        log.info("GLUE %s: no local copy (%s); loading %s from the Hub", spec.key, root, HUB_DATASET)
        return "hub", None, None
    raise DataError(_missing_message(spec, root))


# --------------------------------------------------------------------------------------------
# local TSV files


def _features(spec: _Spec) -> Features:
    cols = {c: Value("string") for c in spec.text_columns}
    cols["label"] = Value("float32") if spec.label_names is None else Value("int64")
    cols["idx"] = Value("int32")
    return Features(cols)


def _load_local(spec: _Spec, folder: Path) -> DatasetDict:
    splits = {}
    for split, layout in spec.files.items():
        path = folder / layout.filename
        if spec is _AX and not path.is_file() and (folder / "AX.tsv").is_file():
            path = folder / "AX.tsv"
        if not path.is_file():
            optional = split.startswith("test") or (split == "train" and not training_data_required())
            if optional and spec is not _AX:
                log.warning("GLUE %s: %s not found; the task has no %r split", spec.key, path, split)
                continue
            raise DataError(
                f"{where(str(path))}: file not found (GLUE {spec.key} {split} split). {_how_to_get(spec)}"
            )
        columns = _read_tsv(spec, split, layout, path)
        splits[split] = Dataset.from_dict(columns, features=_features(spec))
    return DatasetDict(splits)


def _read_tsv(spec: _Spec, split: str, layout: _FileLayout, path: Path) -> dict[str, list]:
    """Stream one GLUE TSV file into columns, checking every row."""
    regression = spec.label_names is None
    label_ids = None if regression else {s: i for i, s in enumerate(spec.file_labels)}
    out: dict[str, list] = {c: [] for c in spec.text_columns}
    labels: list = []
    idxs: list[int] = []
    text_cols = list(layout.text.items())
    test = split.startswith("test")

    text = read_text(path)  # utf-8-sig drops MRPC's BOM; a bad byte names file:line
    with io.StringIO(text, newline="") as f:
        reader = csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE)
        try:
            if layout.positional:
                n_fields = layout.positional
                described = f"{n_fields} tab-separated fields (no header)"
                text_pos = [(c, int(p)) for c, p in text_cols]
                label_pos = layout.label
                index_pos = None
            else:
                header = next(reader, None)
                if header is None:
                    raise DataError(f"{where(str(path), 1)}: the file is empty; expected a header line")
                header = [h.lstrip("\ufeff").strip() for h in header]
                n_fields = len(header)
                described = f"{n_fields} tab-separated fields ({', '.join(header)})"
                need = [name for _, name in text_cols]
                missing = [name for name in need if name not in header]
                if missing:
                    raise DataError(
                        f"{where(str(path), 1)}: header lacks column(s) {missing} needed for GLUE "
                        f"{spec.key}; expected {need + ([layout.label] if layout.label and not test else [])}, "
                        f"found {header}"
                    )
                text_pos = [(c, header.index(name)) for c, name in text_cols]
                label_pos = header.index(layout.label) if layout.label in header else None
                if label_pos is None and not test:
                    raise DataError(
                        f"{where(str(path), 1)}: header lacks the label column {layout.label!r} that GLUE "
                        f"{spec.key}'s {split} split needs; found {header}"
                    )
                index_pos = header.index(layout.index) if layout.index and layout.index in header else None

            row_number = 0
            for row in reader:
                if not row:  # a blank line (csv.DictReader skips these too)
                    continue
                line = reader.line_num
                if len(row) != n_fields:
                    raise DataError(
                        f"{where(str(path), line)}: expected {described}, found {len(row)} field(s)"
                    )
                for column, pos in text_pos:
                    out[column].append(row[pos])
                if label_pos is None:
                    labels.append(-1.0 if regression else -1)
                else:
                    labels.append(_parse_label(spec, label_ids, row[label_pos], path, line))
                if index_pos is None:
                    idxs.append(row_number)
                else:
                    try:
                        idxs.append(int(row[index_pos]))
                    except ValueError:
                        raise DataError(
                            f"{where(str(path), line)}: expected an integer in column "
                            f"{layout.index!r}, found {row[index_pos]!r}"
                        ) from None
                row_number += 1
        except csv.Error as e:
            raise DataError(f"{where(str(path), reader.line_num)}: unreadable TSV row ({e})") from None

    if not test and not labels:
        raise DataError(f"{where(str(path))}: no examples (GLUE {spec.key} {split} split)")
    out["label"] = labels
    out["idx"] = idxs
    return out


def _parse_label(spec: _Spec, label_ids: dict[str, int] | None, raw: str, path: Path, line: int):
    value = raw.strip()
    if label_ids is None:
        try:
            score = float(value)
        except ValueError:
            score = math.nan
        if not math.isfinite(score):
            raise DataError(f"{where(str(path), line)}: expected a float similarity score, found {raw!r}")
        return score
    try:
        return label_ids[value]
    except KeyError:
        raise DataError(
            f"{where(str(path), line)}: expected a GLUE {spec.key} label, one of "
            f"{', '.join(repr(s) for s in spec.file_labels)}; found {raw!r}"
        ) from None


# --------------------------------------------------------------------------------------------
# the Hub


def _load_hub(spec: _Spec) -> DatasetDict:
    from datasets import load_dataset

    try:
        raw = load_dataset(HUB_DATASET, spec.key)
    except Exception as e:  # network, missing cache under HF_HUB_OFFLINE, ...
        raise DataError(
            f"could not load {HUB_DATASET} ({spec.key!r}) from the Hub: {type(e).__name__}: {e}. "
            f"Use local files instead (set HARNESS_DATA_DIR or pass data_dir)."
        ) from e
    missing = [s for s in spec.files if s not in raw]
    if missing:
        raise DataError(f"{HUB_DATASET} ({spec.key!r}) lacks split(s) {missing}; found {sorted(raw)}")
    features = _features(spec)
    splits = {}
    for split in spec.files:  # same split names and order as the local files
        ds = raw[split]
        lacking = [c for c in features if c not in ds.column_names]
        if lacking:
            raise DataError(
                f"{HUB_DATASET} ({spec.key!r}) split {split!r} lacks column(s) {lacking}; found {ds.column_names}"
            )
        ds = ds.select_columns(list(features))
        splits[split] = ds.cast(features)  # ClassLabel -> int64 ids (test: -1), as the local files give
    return DatasetDict(splits)


# --------------------------------------------------------------------------------------------
# the rest


def _subsample(splits: DatasetDict, spec: _Spec, max_train: int | None, max_eval: int | None, seed: int) -> DatasetDict:
    limits = {"train": max_train, **{s: max_eval for s in spec.eval_splits}}
    out = {}
    for name, ds in splits.items():
        limit = limits.get(name)
        if limit is not None and limit < len(ds):
            ds = ds.shuffle(seed=seed).select(range(limit)).flatten_indices()
        out[name] = ds
    return DatasetDict(out)


def _info(spec: _Spec, split_names: list[str], *, source: str, data_dir: str | None) -> TaskInfo:
    extra = {
        "glue_task": spec.key,
        "glue_folder": spec.folder,
        "source": source,
        "path": data_dir,  # the task folder read (local source)
        # test split (those present) -> the file name the GLUE server expects for it
        "test_splits": {s: f for s, f in spec.submission_files.items() if s in split_names},
        # the string the GLUE server expects per class id; None: write STS-B's float score
        "test_label_strings": None if spec.file_labels is None else list(spec.file_labels),
        "submission_columns": list(SUBMISSION_COLUMNS),
    }
    if spec.key == "mnli":
        extra["ax_submission_file"] = "AX.tsv"  # AX is predicted with the MNLI model: see load_ax()
    return TaskInfo(
        name=f"glue/{spec.key}",
        problem_type=REGRESSION if spec.label_names is None else CLASSIFICATION,
        label_names=None if spec.label_names is None else list(spec.label_names),
        text_columns=spec.text_columns,
        metric="glue",
        metric_config=spec.key,
        main_metric=spec.main_metric,
        extra=extra,
    )
