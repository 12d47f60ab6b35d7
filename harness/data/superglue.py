"""SuperGLUE: BoolQ, CB, COPA, MultiRC, ReCoRD, RTE, WiC, WSC and the AX-b / AX-g diagnostics, each a task family.

Two sources give the same columns, split names and label ids, so nothing after loading needs to know where the
data came from:

* **local** — the official release's JSON Lines layout (``<data_dir>/<Task>/{train,val,test}.jsonl``;
  ``AX-b/AX-b.jsonl``, ``AX-g/AX-g.jsonl``); ``data_dir`` defaults to ``$HARNESS_DATA_DIR/superglue``. Every
  line is one JSON object and every field is checked: a missing field, a wrong type, a label outside the
  task's set, a span outside its sentence is a :class:`~harness.errors.DataError` naming ``file:line``.
  Boolean labels are read from JSON booleans *or* the strings ``"true"`` / ``"false"`` (any case: copies such
  as OpenCompass's stringify them); anything else (``1``, ``"yes"``, ``null``) is refused, never guessed.
  ``idx`` is read from an integer or a string of digits (AX-b's file writes ``"0"``).
* **hub** — ``datasets.load_dataset("aps/super_glue", <config>)`` (the ``super_glue`` dataset's current home;
  WSC from ``wsc.fixed``), converted to the same flat columns. (Not exercised here: the Hub is unreachable.)

Task shapes (``superglue(task=...)`` returns the task family):

=========  ==========================================================================================
boolq      sentence pair (question, passage) → false / true          accuracy
cb         sentence pair (premise, hypothesis) → 3 classes           accuracy, macro-F1
rte        sentence pair (premise, hypothesis) → 2 classes           accuracy
copa       multiple choice (``AutoModelForMultipleChoice``): premise + "What was the cause/effect?",
           two choices                                               accuracy
wic        span-aware pair: the target word's character spans in both sentences → token positions
           (``span_bounds``) for :mod:`harness.models.span_classifier`, which pools them   accuracy
wsc        span-aware single text: the candidate (span 1) and the pronoun (span 2) word indices → token
           positions                                                 accuracy
multirc    each (paragraph, question + answer) classified; scored grouped by question    F1a, EM
record     each candidate entity of the passage put in the query's ``@placeholder`` and the (passage,
           filled query) pair classified; per query the highest-scoring candidate is the answer,
           scored against the gold answers (max over them, SQuAD-normalised)   F1, EM
=========  ==========================================================================================

AX-b and AX-g have no training data: they are predicted with an RTE model (:func:`load_diagnostic` returns them
with RTE's columns; both files carry gold labels here, so they are scored too: Matthews correlation; gender
parity and accuracy).

ReCoRD as the SuperGLUE paper's BERT baseline does it: every candidate is scored independently by a binary
classifier and the best one per query is the answer (entity spans are the release's, end inclusive; the
passage's ``@highlight`` markers are shown as "- " bullets). No library reads ReCoRD's release format into
a trainable task with its grouped metric; this module does.

Predictions are written (``predictions_<split>.tsv``: ``index<TAB>prediction``) with the label strings the
SuperGLUE server expects (:data:`SERVER_LABELS`); MultiRC's index is ``paragraph/question/answer``; ReCoRD's
is the query's ``idx`` and its prediction the chosen entity's text.
"""

from __future__ import annotations

import logging
import os
import re
import string
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np
from datasets import Dataset, DatasetDict

from harness.data.base import CLASSIFICATION, ClassificationTask, TaskInfo, labelled, training_data_required
from harness.data.files import read_rows
from harness.errors import DataError, RecipeError, where
from harness.io import atomic_write_text
from harness.registry import register

log = logging.getLogger(__name__)

HUB_DATASET = "aps/super_glue"
SOURCES = ("auto", "local", "hub")
#: every task name :func:`superglue` knows, in the leaderboard's order (HF config names)
SUPERGLUE_TASKS = ("boolq", "cb", "copa", "multirc", "record", "rte", "wic", "wsc")
DIAGNOSTICS = ("axb", "axg")
#: split name -> file name in a task folder (the official release's names)
_FILES = {"train": "train.jsonl", "validation": "val.jsonl", "test": "test.jsonl"}

_NLI2 = ["entailment", "not_entailment"]
_BOOL = ["False", "True"]  # HF super_glue's ClassLabel names (id 0 = False)


@dataclass(frozen=True)
class Spec:
    key: str  # HF config name
    folder: str  # official folder / submission file stem
    kind: str  # pair | choice | span | multirc | record
    label_names: list[str]  # class id -> name (HF super_glue order)
    #: class id -> the label the SuperGLUE server expects in the submission (str, or int for COPA / MultiRC;
    #: none for ReCoRD, whose label is the answer's text)
    server_labels: list
    text_columns: tuple[str, ...]
    metrics: tuple[str, ...]  # what the superglue metric module reports for the task
    hub_config: str | None = None


SPECS: dict[str, Spec] = {
    "boolq": Spec("boolq", "BoolQ", "pair", _BOOL, ["false", "true"], ("question", "passage"), ("accuracy",)),
    "cb": Spec("cb", "CB", "pair", ["entailment", "contradiction", "neutral"],
               ["entailment", "contradiction", "neutral"], ("premise", "hypothesis"), ("accuracy", "f1_macro")),
    "rte": Spec("rte", "RTE", "pair", _NLI2, _NLI2, ("premise", "hypothesis"), ("accuracy",)),
    "copa": Spec("copa", "COPA", "choice", ["choice1", "choice2"], [0, 1], ("premise", "choice1", "choice2"),
                 ("accuracy",)),
    "wic": Spec("wic", "WiC", "span", _BOOL, ["false", "true"], ("sentence1", "sentence2"), ("accuracy",)),
    "wsc": Spec("wsc", "WSC", "span", _BOOL, ["False", "True"], ("text",), ("accuracy",), hub_config="wsc.fixed"),
    "multirc": Spec("multirc", "MultiRC", "multirc", _BOOL, [0, 1], ("paragraph", "question_answer"),
                    ("f1_a", "exact_match")),
    "record": Spec("record", "ReCoRD", "record", _BOOL, [], ("passage", "query_filled"), ("f1", "exact_match")),
    "axb": Spec("axb", "AX-b", "pair", _NLI2, _NLI2, ("premise", "hypothesis"), ("matthews_correlation",)),
    "axg": Spec("axg", "AX-g", "pair", _NLI2, _NLI2, ("premise", "hypothesis"), ("gender_parity", "accuracy")),
}
#: the submission file of every task and diagnostic
SUBMISSION_FILES = {"boolq": "BoolQ.jsonl", "cb": "CB.jsonl", "copa": "COPA.jsonl", "multirc": "MultiRC.jsonl",
                    "record": "ReCoRD.jsonl", "rte": "RTE.jsonl", "wic": "WiC.jsonl", "wsc": "WSC.jsonl",
                    "axb": "AX-b.jsonl", "axg": "AX-g.jsonl"}
SERVER_LABELS = {key: spec.server_labels for key, spec in SPECS.items()}

_ALIASES = {**{k: k for k in SPECS}, **{s.folder.lower(): k for k, s in SPECS.items()},
            "ax-b": "axb", "ax-g": "axg", "wsc.fixed": "wsc"}


def superglue_task_name(task: str) -> str:
    """The canonical (HF config) name of a SuperGLUE task: ``"MultiRC"`` -> ``"multirc"``, ``"AX-b"`` -> ``"axb"``."""
    key = _ALIASES.get(str(task).strip().lower().replace("_", "-"))
    if key is None:
        raise DataError(f"unknown SuperGLUE task {task!r}; valid tasks: {', '.join(SUPERGLUE_TASKS)} "
                        f"(and the diagnostics {', '.join(DIAGNOSTICS)}, predicted with an RTE model)")
    return key


def superglue_metrics(args: dict) -> tuple[str, ...]:
    """The metrics ``superglue(**args)`` reports, for checking ``evaluation.metric_for_best`` early."""
    try:
        key = superglue_task_name(args.get("task", ""))
    except DataError:
        return ("*",)
    return SPECS[key].metrics if key in SPECS else ("*",)


# --------------------------------------------------------------------------------------------
# reading one JSON Lines file, strictly


class _Row:
    """One record of a JSONL file with checked field access; every error names ``file:line``."""

    def __init__(self, record: dict, path: Path, line: int):
        self.record, self.path, self.line = record, path, line

    def fail(self, message: str) -> DataError:
        return DataError(f"{where(str(self.path), self.line)}: {message}")

    def get(self, key: str, record: dict | None = None, context: str = ""):
        record = self.record if record is None else record
        if key not in record:
            raise self.fail(f"missing field {context}{key!r} (found: {', '.join(sorted(record)) or 'none'})")
        return record[key]

    def text(self, key: str, record: dict | None = None, context: str = "") -> str:
        value = self.get(key, record, context)
        if not isinstance(value, str):
            raise self.fail(f"field {context}{key!r} must be a string, found {value!r}")
        return value

    def object(self, key: str, record: dict | None = None, context: str = "") -> dict:
        value = self.get(key, record, context)
        if not isinstance(value, dict):
            raise self.fail(f"field {context}{key!r} must be an object, found {value!r}")
        return value

    def objects(self, key: str, record: dict | None = None, context: str = "",
                what: str = "") -> Iterator[tuple[str, dict]]:
        """``(place, item)`` for each object of a non-empty list field; ``place`` (``"qas[2]."``) prefixes the
        item's fields in error messages."""
        items = self.get(key, record, context)
        if not isinstance(items, list) or not items:
            raise self.fail(f"{context}{key} must be a non-empty list" + (f" of {what}" if what else ""))
        for i, item in enumerate(items):
            if not isinstance(item, dict):
                raise self.fail(f"{context}{key}[{i}] must be an object" + (f" ({what})" if what else ""))
            yield f"{context}{key}[{i}].", item

    def integer(self, key: str, record: dict | None = None, context: str = "", digits_ok: bool = True) -> int:
        value = self.get(key, record, context)
        if isinstance(value, bool) or not (isinstance(value, int) or (digits_ok and isinstance(value, str)
                                                                      and re.fullmatch(r"\d+", value))):
            raise self.fail(f"field {context}{key!r} must be an integer{' (or a string of digits)' if digits_ok else ''}"
                            f", found {value!r}")
        return int(value)

    def boolean_label(self, key: str = "label", record: dict | None = None, context: str = "",
                      ints: bool = False) -> int:
        """A JSON boolean, or the string "true"/"false" (any case); with ``ints``, also 0/1 (MultiRC's answers)."""
        value = self.get(key, record, context)
        if isinstance(value, bool):
            return int(value)
        if isinstance(value, str) and value.strip().lower() in ("true", "false"):
            return int(value.strip().lower() == "true")
        if ints and isinstance(value, int) and value in (0, 1):
            return value
        allowed = "true/false (JSON booleans or the strings \"true\"/\"false\")" + (" or 0/1" if ints else "")
        raise self.fail(f"field {context}{key!r} must be {allowed}, found {value!r}")

    def class_label(self, names: Sequence[str], key: str = "label") -> int:
        value = self.get(key)
        if value not in names:
            raise self.fail(f"field {key!r} must be one of {', '.join(map(repr, names))}, found {value!r}")
        return list(names).index(value)


def read_jsonl(path: Path) -> Iterator[_Row]:
    """Every non-blank line of a JSON Lines file as a checked :class:`_Row` (read by
    :func:`harness.data.files.read_rows`: a line that is not a JSON object is a DataError with ``file:line``)."""
    for number, record in read_rows(path):
        yield _Row(record, path, number)


_WORD = re.compile(r"\S+")


def _norm(word: str) -> str:
    return word.lower().strip(string.punctuation + "“”‘’")


def wsc_char_span(row: _Row, text: str, index: int, span_text: str, which: str) -> tuple[int, int]:
    """Character range of WSC's span: ``span_text`` (n words) starting at word ``index`` of ``text`` (words split
    on whitespace, as the release counts them). The word there must start with the span's first word
    (punctuation and case aside: ``Emma's`` carries ``Emma``); the release has a few off-by-one indices (HF's
    ``wsc.fixed`` corrects them): the nearest matching word within 3 words is taken, with a warning naming
    the line. No matching word: DataError."""
    words = list(_WORD.finditer(text))
    n = max(1, len(span_text.split()))
    first = _norm(span_text.split()[0]) if span_text.split() else ""
    if not first:
        raise row.fail(f"target.{which}_text is empty")

    def matches(i: int) -> bool:
        return 0 <= i and i + n <= len(words) and _norm(words[i].group()).startswith(first)

    chosen = index if matches(index) else next(
        (i for d in (1, -1, 2, -2, 3, -3) for i in [index + d] if matches(i)), None)
    if chosen is None:
        found = words[index].group() if 0 <= index < len(words) else "past the end"
        raise row.fail(f"target.{which}_index {index} points at {found!r}, not at {which}_text {span_text!r} "
                       f"(the text has {len(words)} words)")
    if chosen != index:
        log.warning("%s: WSC target.%s_index %d points at %r; using word %d (%r), which matches %r",
                    where(str(row.path), row.line), which, index, words[index].group() if index < len(words) else "",
                    chosen, words[chosen].group(), span_text)
    return words[chosen].start(), words[chosen + n - 1].end()


# --------------------------------------------------------------------------------------------
# per task: one official record -> flat rows (the columns of the loaded splits)


def _flatten(spec: Spec, row: _Row, labelled_file: bool) -> list[dict]:
    k = spec.key
    idx = row.integer("idx")
    label = -1
    if k in ("boolq",):
        if labelled_file:
            label = row.boolean_label()
        return [{"question": row.text("question"), "passage": row.text("passage"), "label": label, "idx": idx}]
    if k in ("cb", "rte", "axg"):
        if labelled_file:
            label = row.class_label(spec.label_names)
        out = {"premise": row.text("premise"), "hypothesis": row.text("hypothesis"), "label": label, "idx": idx}
        if k == "axg":
            out["pair_id"] = row.integer("pair_id")
        return [out]
    if k == "axb":
        if labelled_file:
            label = row.class_label(spec.label_names)
        return [{"premise": row.text("sentence1"), "hypothesis": row.text("sentence2"), "label": label, "idx": idx}]
    if k == "copa":
        if labelled_file:
            label = row.get("label")
            if isinstance(label, bool) or label not in (0, 1):
                raise row.fail(f"field 'label' must be 0 (choice1) or 1 (choice2), found {label!r}")
        question = row.text("question")
        if question not in ("cause", "effect"):
            raise row.fail(f"field 'question' must be 'cause' or 'effect', found {question!r}")
        return [{"premise": row.text("premise"), "choice1": row.text("choice1"), "choice2": row.text("choice2"),
                 "question": question, "label": label, "idx": idx}]
    if k == "wic":
        if labelled_file:
            label = row.boolean_label()
        out = {"word": row.text("word"), "sentence1": row.text("sentence1"), "sentence2": row.text("sentence2")}
        for i in (1, 2):
            start, end = row.integer(f"start{i}", digits_ok=False), row.integer(f"end{i}", digits_ok=False)
            if not 0 <= start < end <= len(out[f"sentence{i}"]):
                raise row.fail(f"start{i}/end{i} = {start}/{end} is not a span of sentence{i} "
                               f"({len(out[f'sentence{i}'])} characters)")
            out[f"start{i}"], out[f"end{i}"] = start, end
        return [{**out, "label": label, "idx": idx}]
    if k == "wsc":
        if labelled_file:
            label = row.boolean_label()
        text = row.text("text")
        target = row.object("target")
        out = {"text": text}
        for i, which in ((1, "span1"), (2, "span2")):
            span_text = row.text(f"{which}_text", target, "target.")
            index = row.integer(f"{which}_index", target, "target.", digits_ok=False)
            out[f"span{i}_text"] = span_text
            out[f"start{i}"], out[f"end{i}"] = wsc_char_span(row, text, index, span_text, which)
        return [{**out, "label": label, "idx": idx}]
    if k == "multirc":
        passage = row.object("passage")
        paragraph = row.text("text", passage, "passage.")
        rows = []
        for where_q, q in row.objects("questions", passage, "passage."):
            question = row.text("question", q, where_q)
            q_idx = row.integer("idx", q, where_q)
            for where_a, a in row.objects("answers", q, where_q):
                answer = row.text("text", a, where_a)
                rows.append({"paragraph": paragraph, "question": question, "answer": answer,
                             "question_answer": f"{question} {answer}",
                             "label": row.boolean_label("label", a, where_a, ints=True) if labelled_file else -1,
                             "paragraph_idx": idx, "question_idx": q_idx, "answer_idx": row.integer("idx", a, where_a)})
        return rows
    if k == "record":
        return _record_rows(row, idx, labelled_file)
    raise AssertionError(k)


RECORD_PLACEHOLDER = "@placeholder"


def _record_rows(row: _Row, idx: int, labelled_file: bool) -> list[dict]:
    """One ReCoRD passage → one row per (query, candidate entity): ``query_filled`` is the query with the
    candidate in its ``@placeholder``; label 1 when the candidate is one of the query's answers."""
    passage = row.object("passage")
    text = row.text("text", passage, "passage.")
    names = set()
    for where_e, e in row.objects("entities", passage, "passage.", what="{start, end}: the candidate answers"):
        start, end = row.integer("start", e, where_e, digits_ok=False), row.integer("end", e, where_e, digits_ok=False)
        if not 0 <= start <= end < len(text):  # the release's end is inclusive
            raise row.fail(f"{where_e}start/end = {start}/{end} is not a span of passage.text ({len(text)} characters;"
                           " end is inclusive)")
        names.add(text[start:end + 1])
    candidates = sorted(names)
    shown = text.replace("@highlight\n", "- ")
    rows = []
    for where_q, qa in row.objects("qas", what="queries"):
        query = row.text("query", qa, where_q)
        if RECORD_PLACEHOLDER not in query:
            raise row.fail(f"{where_q}query has no {RECORD_PLACEHOLDER} to fill: {query[:80]!r}")
        q_idx = row.integer("idx", qa, where_q)
        answers: list[str] = []
        if labelled_file:
            answers = [row.text("text", a, where_a)
                       for where_a, a in row.objects("answers", qa, where_q, what="{start, end, text}")]
            answers = sorted(set(answers))
        for entity in candidates:
            rows.append({"passage": shown, "query": query, "entity": entity,
                         "query_filled": query.replace(RECORD_PLACEHOLDER, entity), "answers": answers,
                         "label": int(entity in answers) if labelled_file else -1,
                         "passage_idx": idx, "query_idx": q_idx})
    return rows



def _has_label(spec: Spec, row: _Row) -> bool:
    if spec.key == "multirc":
        try:
            return "label" in row.record["passage"]["questions"][0]["answers"][0]
        except (KeyError, IndexError, TypeError):
            return False
    if spec.key == "record":
        try:
            return "answers" in row.record["qas"][0]
        except (KeyError, IndexError, TypeError):
            return False
    return "label" in row.record


def read_split(spec: Spec, path: Path, split: str) -> Dataset:
    """One official JSONL file → a Dataset of the task's flat columns. Test files carry no labels (label -1); a
    labelled file must label every row (a row without one is an error naming its line)."""
    rows: list[dict] = []
    labelled_file = None
    seen: dict[int, int] = {}
    for row in read_jsonl(path):
        has = _has_label(spec, row)
        if labelled_file is None:
            labelled_file = has
        elif has != labelled_file:
            raise row.fail("this row " + ("has" if has else "lacks") + " a label, the file's first row "
                           + ("lacks" if has else "has") + " one: a split is labelled throughout or not at all")
        if split != "test" and not has and spec.key not in DIAGNOSTICS:
            raise row.fail(f"the {split} split needs labels; field 'label' is missing")
        flat = _flatten(spec, row, has)
        first = row.integer("idx")
        if first in seen:
            raise row.fail(f"idx {first} repeats line {seen[first]}")
        seen[first] = row.line
        rows.extend(flat)
    if not rows:
        raise DataError(f"{where(str(path))}: no examples (SuperGLUE {spec.key} {split} split)")
    return Dataset.from_list(rows)


# --------------------------------------------------------------------------------------------
# the Hub (same flat columns)


def _load_hub(spec: Spec) -> DatasetDict:
    from datasets import load_dataset

    config = spec.hub_config or spec.key
    try:
        raw = load_dataset(HUB_DATASET, config)
    except Exception as e:  # network, missing cache under HF_HUB_OFFLINE, ...
        raise DataError(f"could not load {HUB_DATASET} ({config!r}) from the Hub: {type(e).__name__}: {e}. "
                        "Use local files instead (set HARNESS_DATA_DIR or pass data_dir).") from e
    out = {}
    for split, ds in raw.items():
        rows = []
        for r in ds:
            label = int(r["label"]) if r.get("label") is not None else -1
            if spec.key == "multirc":
                rows.append({"paragraph": r["paragraph"], "question": r["question"], "answer": r["answer"],
                             "question_answer": f"{r['question']} {r['answer']}", "label": label,
                             "paragraph_idx": r["idx"]["paragraph"], "question_idx": r["idx"]["question"],
                             "answer_idx": r["idx"]["answer"]})
            elif spec.key == "wsc":
                row = _Row({}, Path(f"{HUB_DATASET}/{config}/{split}"), r["idx"] + 1)
                s1 = wsc_char_span(row, r["text"], r["span1_index"], r["span1_text"], "span1")
                s2 = wsc_char_span(row, r["text"], r["span2_index"], r["span2_text"], "span2")
                rows.append({"text": r["text"], "span1_text": r["span1_text"], "start1": s1[0], "end1": s1[1],
                             "span2_text": r["span2_text"], "start2": s2[0], "end2": s2[1], "label": label,
                             "idx": r["idx"]})
            elif spec.key == "axb":
                rows.append({"premise": r["sentence1"], "hypothesis": r["sentence2"], "label": label, "idx": r["idx"]})
            elif spec.key == "record":  # one row per query, entities already as texts
                answers = sorted(set(r.get("answers") or []))
                shown = r["passage"].replace("@highlight\n", "- ")
                for entity in sorted(set(r["entities"])):
                    rows.append({"passage": shown, "query": r["query"], "entity": entity,
                                 "query_filled": r["query"].replace(RECORD_PLACEHOLDER, entity), "answers": answers,
                                 "label": int(entity in answers) if answers else -1,
                                 "passage_idx": r["idx"]["passage"], "query_idx": r["idx"]["query"]})
            else:
                rows.append({k: v for k, v in r.items()} | {"label": label})
        out[split] = Dataset.from_list(rows)
    return DatasetDict(out)


# --------------------------------------------------------------------------------------------
# where the data comes from


def _offline() -> bool:
    truthy = {"1", "true", "yes", "on"}
    return any(os.environ.get(v, "").strip().lower() in truthy for v in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE"))


def _root(data_dir: str | None) -> Path | None:
    if data_dir is not None:
        return Path(data_dir).expanduser()
    root = os.environ.get("HARNESS_DATA_DIR")
    return Path(root).expanduser() / "superglue" if root else None


def _folder(spec: Spec, root: Path | None) -> Path | None:
    if root is None or not root.is_dir():
        return None
    for child in sorted(root.iterdir()):
        if child.is_dir() and child.name.lower() == spec.folder.lower():
            return child
    return None


def _how_to_get(spec: Spec) -> str:
    return (f"Put SuperGLUE in its official layout (<dir>/{spec.folder}/{{train,val,test}}.jsonl) and set "
            f"HARNESS_DATA_DIR so that it is $HARNESS_DATA_DIR/superglue/{spec.folder}, or pass data_dir; or use "
            f"source: hub ({HUB_DATASET}) on a machine that can reach the Hugging Face Hub"
            + (" (HF_HUB_OFFLINE is set here)" if _offline() else "") + ".")


def load_splits(spec: Spec, data_dir: str | None, source: str) -> tuple[DatasetDict, str, Path | None]:
    """The task's splits from its local folder or the Hub -> (splits, source used, folder)."""
    if source not in SOURCES:
        raise RecipeError(f"superglue: source must be one of {', '.join(SOURCES)}, got {source!r}")
    if source != "hub":
        root = _root(data_dir)
        folder = _folder(spec, root)
        if folder is not None:
            return _load_local(spec, folder), "local", folder
        if source == "local" or data_dir is not None or _offline():
            place = f"no {spec.folder}/ folder under {root}" if root else "HARNESS_DATA_DIR is not set and no data_dir was given"
            raise DataError(f"SuperGLUE {spec.key!r} data not found: {place}. {_how_to_get(spec)}")
    return _load_hub(spec), "hub", None


def _load_local(spec: Spec, folder: Path) -> DatasetDict:
    if spec.key in DIAGNOSTICS:
        path = folder / f"{spec.folder}.jsonl"
        if not path.is_file():
            raise DataError(f"{where(str(path))}: file not found (SuperGLUE diagnostic {spec.folder}). {_how_to_get(spec)}")
        return DatasetDict({"test": read_split(spec, path, "test")})
    splits = {}
    for split, name in _FILES.items():
        path = folder / name
        if not path.is_file():
            required = split == "validation" or (split == "train" and training_data_required())
            if required:
                missing = "train" if split == "train" else "validation"
                raise DataError(f"{where(str(path))}: file not found (SuperGLUE {spec.key} {missing} split). "
                                + _how_to_get(spec))
            log.warning("SuperGLUE %s: %s not found; the task has no %r split", spec.key, path, split)
            continue
        splits[split] = read_split(spec, path, split)
    return DatasetDict(splits)


# --------------------------------------------------------------------------------------------
# the task families


class SuperGlueTask(ClassificationTask):
    """Common to every SuperGLUE task: metrics from ``harness/metrics/superglue``, predictions written with the
    server's label strings and the split's own ``idx``."""

    spec: Spec

    def __init__(self, spec: Spec, info: TaskInfo, splits: DatasetDict, eval_splits: Sequence[str]):
        self.spec = spec
        self._set_splits(info, splits, eval_splits)

    def texts(self, split: str | None = None) -> Iterator[str]:
        ds = self.splits[split or self.train_split]
        for column in self.info.text_columns:
            yield from ds[column]

    def submission_index(self, split: str) -> list:
        return list(self.splits[split]["idx"])

    def expected_predictions(self, split: str) -> int:
        """How many predictions the split's submission file holds (MultiRC: answer options)."""
        return len(self.splits[split])

    def write_predictions(self, path: Path, split: str, predictions) -> Path:
        labels = self.spec.server_labels
        rows = ["index\tprediction"]
        for i, p in zip(self.submission_index(split), predictions):
            rows.append(f"{i}\t{labels[int(p)]}")
        atomic_write_text(path, "\n".join(rows) + "\n")
        return path

    def compute_metrics(self, predictions, references, split: str) -> dict[str, float]:
        from harness.metrics import load_metric

        metric = load_metric("superglue", self.spec.key)
        return {k: float(v) for k, v in metric.compute(predictions=[int(p) for p in predictions],
                                                       references=[int(r) for r in references]).items()}


class MultiRCTask(SuperGlueTask):
    """Every answer option is one (paragraph, question + answer) pair classified false / true; the metrics group
    the answers by question (:meth:`compute_metrics`). Rows keep ``paragraph_idx``, ``question_idx``,
    ``answer_idx`` for the grouping and the nested submission."""

    def submission_index(self, split: str) -> list:
        ds = self.splits[split]
        return [f"{p}/{q}/{a}" for p, q, a in zip(ds["paragraph_idx"], ds["question_idx"], ds["answer_idx"])]

    def compute_metrics(self, predictions, references, split: str) -> dict[str, float]:
        from harness.metrics import load_metric

        ds = self.splits[split]
        if len(ds) != len(predictions):
            raise ValueError(f"MultiRC {split}: {len(predictions)} predictions for {len(ds)} answers")
        preds = [{"idx": {"paragraph": p, "question": q, "answer": a}, "prediction": int(x)}
                 for p, q, a, x in zip(ds["paragraph_idx"], ds["question_idx"], ds["answer_idx"], predictions)]
        metric = load_metric("superglue", "multirc")
        return {k: float(v) for k, v in metric.compute(predictions=preds,
                                                       references=[int(r) for r in references]).items()}


class RecordTask(SuperGlueTask):
    """ReCoRD: every (passage, query with a candidate entity) pair is classified; per query the candidate with the
    highest score (logit of "True" minus logit of "False") is the answer. :meth:`predictions_from_logits` returns
    those scores, not class ids; the grouping happens in :meth:`compute_metrics` and :meth:`write_predictions`,
    which know the split."""

    def predictions_from_logits(self, logits: np.ndarray) -> np.ndarray:
        logits = np.asarray(logits, dtype=np.float64).reshape(len(logits), -1)
        return logits[:, 1] - logits[:, 0] if logits.shape[1] > 1 else logits[:, 0]

    def best_candidates(self, split: str, scores) -> dict[tuple[int, int], tuple[str, list[str]]]:
        """(passage idx, query idx) → (the highest-scoring entity, the gold answers), in first-seen order."""
        ds = self.splits[split]
        if len(ds) != len(scores):
            raise ValueError(f"ReCoRD {split}: {len(scores)} scores for {len(ds)} candidates")
        best: dict[tuple[int, int], tuple[float, str, list[str]]] = {}
        for p, q, entity, answers, score in zip(ds["passage_idx"], ds["query_idx"], ds["entity"], ds["answers"],
                                                scores):
            key = (int(p), int(q))
            if key not in best or float(score) > best[key][0]:
                best[key] = (float(score), entity, list(answers))
        return {k: (entity, answers) for k, (_, entity, answers) in best.items()}

    def expected_predictions(self, split: str) -> int:
        """One submission row per query (not per candidate)."""
        ds = self.splits[split]
        return len(set(zip(ds["passage_idx"], ds["query_idx"])))

    def write_predictions(self, path: Path, split: str, predictions) -> Path:
        rows = ["index\tprediction"]
        for (_, q), (entity, _) in self.best_candidates(split, predictions).items():
            rows.append(f"{q}\t{' '.join(entity.split())}")  # a tab or newline inside an entity would break the TSV
        atomic_write_text(path, "\n".join(rows) + "\n")
        return path

    def compute_metrics(self, predictions, references, split: str) -> dict[str, float]:
        from harness.metrics import load_metric

        chosen = self.best_candidates(split, predictions)
        preds = [{"idx": {"passage": p, "query": q}, "prediction_text": entity} for (p, q), (entity, _) in chosen.items()]
        refs = [{"idx": {"passage": p, "query": q}, "answers": answers} for (p, q), (_, answers) in chosen.items()]
        metric = load_metric("superglue", "record")
        return {k: float(v) for k, v in metric.compute(predictions=preds, references=refs).items()}


class ChoiceTask(SuperGlueTask):
    """COPA as multiple choice: each example is two (premise + question, choice) pairs scored by
    ``AutoModelForMultipleChoice``; the prediction is the higher-scoring choice."""

    auto_model_class = "AutoModelForMultipleChoice"
    QUESTIONS = {"cause": "What was the cause of this?", "effect": "What happened as a result?"}

    def texts(self, split: str | None = None) -> Iterator[str]:
        ds = self.splits[split or self.train_split]
        for column in ("premise", "choice1", "choice2"):
            yield from ds[column]

    def tokenize(self, tokenizer, max_length: int | None = None) -> DatasetDict:
        questions = self.QUESTIONS

        def encode(batch, with_labels: bool):
            firsts, seconds = [], []
            for premise, question, c1, c2 in zip(batch["premise"], batch["question"], batch["choice1"],
                                                 batch["choice2"]):
                firsts += [f"{premise} {questions[question]}"] * 2
                seconds += [c1, c2]
            enc = tokenizer(firsts, seconds, truncation=max_length is not None, max_length=max_length)
            out = {key: [values[i:i + 2] for i in range(0, len(values), 2)] for key, values in enc.items()}
            if with_labels:
                out["labels"] = [int(x) for x in batch["label"]]
            return out

        return DatasetDict({name: ds.map(encode, batched=True, remove_columns=ds.column_names,
                                         fn_kwargs={"with_labels": labelled(ds)}, desc=f"tokenizing {name}")
                            for name, ds in self.splits.items()})

    def collator(self, tokenizer, pad_to_multiple_of: int | None = None):
        return ChoiceCollator(tokenizer, pad_to_multiple_of)


class ChoiceCollator:
    """``transformers.DataCollatorForMultipleChoice`` without its one limit: a test split has no labels. Every
    example's choices are padded together with the tokenizer, then viewed as ``(batch, choices, length)``."""

    def __init__(self, tokenizer, pad_to_multiple_of: int | None = None):
        self.tokenizer, self.pad_to_multiple_of = tokenizer, pad_to_multiple_of

    def __call__(self, features: list[dict]) -> dict:
        import torch

        labels = [f["labels"] for f in features] if "labels" in features[0] else None
        n = len(features[0]["input_ids"])
        flat = [{k: v[i] for k, v in f.items() if k != "labels"} for f in features for i in range(n)]
        batch = self.tokenizer.pad(flat, padding=True, pad_to_multiple_of=self.pad_to_multiple_of,
                                   return_tensors="pt")
        out = {k: v.view(len(features), n, -1) for k, v in batch.items()}
        if labels is not None:
            out["labels"] = torch.tensor(labels, dtype=torch.long)
        return out


def token_span(offsets: Sequence, sequence_ids: Sequence, seq: int, start: int, end: int) -> tuple[int, int] | None:
    """The token positions ``[first, last + 1)`` of sequence ``seq`` whose character offsets overlap
    ``[start, end)``; None when no token does (the span was truncated away)."""
    hit = [i for i, (o, s) in enumerate(zip(offsets, sequence_ids))
           if s == seq and o[1] > o[0] and o[0] < end and o[1] > start]
    return (hit[0], hit[-1] + 1) if hit else None


class SpanTask(SuperGlueTask):
    """WiC (the target word in each sentence) and WSC (candidate and pronoun in one text): the character spans
    become token positions ``span_bounds = [[first1, end1], [first2, end2]]`` through the fast tokenizer's offsets,
    for :class:`~harness.models.span_classifier.SpanClassifier`, which pools the span tokens. A span cut off by
    ``training.max_length`` is an error (it would be read as empty)."""

    def tokenize(self, tokenizer, max_length: int | None = None) -> DatasetDict:
        if not getattr(tokenizer, "is_fast", False):
            raise DataError(f"task {self.info.name}: span positions need a fast tokenizer (character offsets); "
                            f"{type(tokenizer).__name__} is not one")
        pair = self.spec.key == "wic"
        task = self

        def encode(batch, with_labels: bool, split: str):
            texts = [batch["sentence1"], batch["sentence2"]] if pair else [batch["text"]]
            enc = tokenizer(*texts, truncation=max_length is not None, max_length=max_length,
                            return_offsets_mapping=True)
            bounds = []
            for i in range(len(batch["idx"])):
                ids = enc.sequence_ids(i)
                spans = []
                for k in (1, 2):
                    seq = (k - 1) if pair else 0
                    found = token_span(enc["offset_mapping"][i], ids, seq, batch[f"start{k}"][i], batch[f"end{k}"][i])
                    if found is None:
                        raise DataError(f"task {task.info.name}, {split} idx {batch['idx'][i]}: span {k} lies beyond "
                                        f"training.max_length={max_length} tokens; raise training.max_length")
                    spans.append(list(found))
                bounds.append(spans)
            out = {key: enc[key] for key in enc if key != "offset_mapping"}
            out["span_bounds"] = bounds
            if with_labels:
                out["labels"] = [int(x) for x in batch["label"]]
            return out

        return DatasetDict({name: ds.map(encode, batched=True, remove_columns=ds.column_names,
                                         fn_kwargs={"with_labels": labelled(ds), "split": name},
                                         desc=f"tokenizing {name}")
                            for name, ds in self.splits.items()})


_FAMILIES: dict[str, type[SuperGlueTask]] = {"pair": SuperGlueTask, "choice": ChoiceTask, "span": SpanTask,
                                             "multirc": MultiRCTask, "record": RecordTask}
#: the column that keeps one example's rows together when a split is subsampled
_GROUP_COLUMN = {"multirc": "paragraph_idx", "record": "passage_idx"}


def _info(spec: Spec, source: str, folder: Path | None) -> TaskInfo:
    return TaskInfo(
        name=f"superglue/{spec.key}", problem_type=CLASSIFICATION, label_names=list(spec.label_names),
        text_columns=spec.text_columns, metric="superglue", metric_config=spec.key, main_metric=spec.metrics[0],
        extra={"superglue_task": spec.key, "superglue_folder": spec.folder, "source": source,
               "path": None if folder is None else str(folder),
               "submission_file": SUBMISSION_FILES[spec.key], "server_labels": list(spec.server_labels),
               "test_splits": {"test": SUBMISSION_FILES[spec.key]}})


def _subsample(spec: Spec, splits: DatasetDict, max_train: int | None, max_eval: int | None, seed: int) -> DatasetDict:
    """The first N examples after a seeded shuffle; MultiRC and ReCoRD count passages (a question's answers, a
    query's candidates stay together, or they could not be scored)."""
    out = {}
    group = _GROUP_COLUMN.get(spec.key)
    for name, ds in splits.items():
        limit = {"train": max_train, "validation": max_eval}.get(name)
        if limit is not None:
            if group:
                paragraphs = sorted(set(ds[group]))
                if limit < len(paragraphs):
                    keep = set(np.random.default_rng(seed).permutation(paragraphs)[:limit].tolist())
                    ds = ds.filter(lambda p: p in keep, input_columns=group)
            elif limit < len(ds):
                ds = ds.shuffle(seed=seed).select(range(limit)).flatten_indices()
        out[name] = ds
    return DatasetDict(out)


@register("data", "superglue", metrics=superglue_metrics)
def superglue(
    task: str,
    data_dir: str | None = None,
    source: str = "auto",
    max_train_samples: int | None = None,
    max_eval_samples: int | None = None,
    seed: int = 0,
) -> SuperGlueTask:
    """Load one SuperGLUE task as its task family.

    Args:
        task: boolq, cb, copa, multirc, record, rte, wic or wsc (case-insensitive; folder names such as
            ``MultiRC`` work too); ``axb`` / ``axg`` are test-only diagnostics: see :func:`load_diagnostic`.
        data_dir: the folder holding the task folders; default ``$HARNESS_DATA_DIR/superglue``.
        source: ``local``, ``hub`` (``aps/super_glue``) or ``auto`` (local when the folder exists, else the Hub
            unless ``HF_HUB_OFFLINE`` is set). An explicit ``data_dir`` is never skipped for the Hub.
        max_train_samples, max_eval_samples: keep this many examples of train / validation (MultiRC, ReCoRD:
            passages),
            after a shuffle with ``seed``; test is kept whole.
    """
    key = superglue_task_name(task)
    if key in DIAGNOSTICS:
        raise DataError(f"SuperGLUE {SPECS[key].folder} is a test-only diagnostic: there is nothing to train on. Train "
                        "task 'rte' and predict it with that model (harness.data.superglue.load_diagnostic; "
                        "`harness leaderboard --benchmark superglue` does)")
    for name, value in (("max_train_samples", max_train_samples), ("max_eval_samples", max_eval_samples)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            raise RecipeError(f"superglue: {name} must be a positive integer or null, got {value!r}")
    spec = SPECS[key]
    splits, used, folder = load_splits(spec, data_dir, source)
    splits = _subsample(spec, splits, max_train_samples, max_eval_samples, seed)
    family = _FAMILIES[spec.kind]
    return family(spec, _info(spec, used, folder), splits, eval_splits=("validation",))


def load_diagnostic(name: str, data_dir: str | None = None, source: str = "auto") -> Dataset:
    """AX-b or AX-g as one Dataset with RTE's columns (``premise``, ``hypothesis``, ``label``: RTE's ids, -1 when
    unlabelled; ``idx``; AX-g also ``pair_id``), to predict with an RTE model."""
    key = superglue_task_name(name)
    if key not in DIAGNOSTICS:
        raise DataError(f"{name!r} is not a SuperGLUE diagnostic (axb, axg)")
    splits, _, _ = load_splits(SPECS[key], data_dir, source)
    return splits["test"]


def majority_baseline(task: SuperGlueTask, split: str = "validation") -> dict[str, float] | None:
    """The most-frequent-class baseline, measured: the train split's most frequent label predicted for every
    example of ``split`` and scored with the task's metrics (COPA's "class" is a choice position). None when there
    is no labelled train split, and for ReCoRD (its answers are entities of each passage, not classes)."""
    if task.spec.key == "record" or task.train_split not in task.splits or not labelled(task.splits[task.train_split]):
        return None
    labels = np.asarray(task.splits[task.train_split]["label"])
    majority = int(np.bincount(labels[labels >= 0]).argmax())
    gold = task.splits[split]["label"]
    return task.compute_metrics(np.full(len(gold), majority), np.asarray(gold), split)

