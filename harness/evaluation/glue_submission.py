"""The GLUE submission format: what the GLUE server accepts, written and checked.

Pure functions over predictions, no training: the server's label strings per file (:data:`SERVER_LABELS`),
our label names → those strings (:func:`server_label`), ``predictions_<split>.tsv`` reading, the zip
(:func:`write_submission`, atomic) and its validator (:func:`validate_submission`: header, one integer index
per example, legal predictions, expected row counts), and the GLUE average over the tasks that have a
score. The workflow that trains every task and assembles the zip is :mod:`harness.workflows.glue_leaderboard`.
"""

from __future__ import annotations

import csv
import math
import os
import time
import zipfile
from pathlib import Path

from harness.errors import DataError

#: the nine GLUE tasks, in the leaderboard's column order
TASKS: tuple[str, ...] = ("cola", "sst2", "mrpc", "stsb", "qqp", "mnli", "qnli", "rte", "wnli")
DISPLAY = {"cola": "CoLA", "sst2": "SST-2", "mrpc": "MRPC", "stsb": "STS-B", "qqp": "QQP", "mnli": "MNLI",
           "qnli": "QNLI", "rte": "RTE", "wnli": "WNLI"}

#: the dev metrics of each task, as ``metrics.json`` keys, in the order they are shown (a/b)
DEV_METRICS: dict[str, tuple[str, ...]] = {
    "cola": ("validation/matthews_correlation",),
    "sst2": ("validation/accuracy",),
    "mrpc": ("validation/f1", "validation/accuracy"),
    "stsb": ("validation/pearson", "validation/spearmanr"),
    "qqp": ("validation/f1", "validation/accuracy"),
    "mnli": ("validation_matched/accuracy", "validation_mismatched/accuracy"),
    "qnli": ("validation/accuracy",),
    "rte": ("validation/accuracy",),
    "wnli": ("validation/accuracy",),
}
METRIC_LABELS = {"cola": "MCC", "sst2": "acc", "mrpc": "F1/acc", "stsb": "Pearson/Spearman", "qqp": "F1/acc",
                 "mnli": "m/mm", "qnli": "acc", "rte": "acc", "wnli": "acc"}

_MNLI = ("entailment", "neutral", "contradiction")
_NLI2 = ("entailment", "not_entailment")
_BIN = ("0", "1")
#: every submission file the GLUE server takes → the prediction strings it accepts (None: a float
#: score in [0, 5]). Written down here independently of harness.data.glue, so that the validator
#: checks the writer rather than repeating it.
SERVER_LABELS: dict[str, tuple[str, ...] | None] = {
    "CoLA.tsv": _BIN, "SST-2.tsv": _BIN, "MRPC.tsv": _BIN, "STS-B.tsv": None, "QQP.tsv": _BIN,
    "MNLI-m.tsv": _MNLI, "MNLI-mm.tsv": _MNLI, "QNLI.tsv": _NLI2, "RTE.tsv": _NLI2, "WNLI.tsv": _BIN,
    "AX.tsv": _MNLI,
}
SUBMISSION_FILES: tuple[str, ...] = tuple(SERVER_LABELS)
#: task -> the submission files its run provides (AX comes from the MNLI model)
FILES_OF = {"cola": ("CoLA.tsv",), "sst2": ("SST-2.tsv",), "mrpc": ("MRPC.tsv",), "stsb": ("STS-B.tsv",),
             "qqp": ("QQP.tsv",), "mnli": ("MNLI-m.tsv", "MNLI-mm.tsv", "AX.tsv"), "qnli": ("QNLI.tsv",),
             "rte": ("RTE.tsv",), "wnli": ("WNLI.tsv",)}
HEADER = "index\tprediction"
ZIP_NAME = "glue_submission.zip"
STSB_RANGE = (0.0, 5.0)


def glue_average(scores: dict[str, float | None]) -> tuple[float | None, int]:
    """``(mean of the tasks that have a score, how many have one)``; missing tasks are left out,
    never counted as 0. ``scores`` maps task -> its score (the mean of its metrics) or None."""
    present = [s for s in scores.values() if s is not None and math.isfinite(s)]
    return (sum(present) / len(present) if present else None), len(present)


# ---------------------------------------------------------------------------------------------
# label strings


def server_label(task_info, prediction: str) -> str:
    """Our prediction (a label name, or a float for regression) → the string the GLUE server takes:
    label name → class id through ``info.label_names`` → ``info.extra["test_label_strings"][id]``;
    a regression score is clipped to [0, 5] and written with 3 decimals."""
    strings = task_info.extra.get("test_label_strings")
    names = task_info.label_names
    if strings is None or names is None:
        try:
            value = float(prediction)
        except ValueError:
            raise DataError(f"{task_info.name}: expected a float prediction, found {prediction!r}") from None
        if not math.isfinite(value):
            raise DataError(f"{task_info.name}: prediction {prediction!r} is not a finite number")
        return f"{min(max(value, STSB_RANGE[0]), STSB_RANGE[1]):.3f}"
    try:
        return strings[names.index(prediction)]
    except ValueError:
        raise DataError(
            f"{task_info.name}: prediction {prediction!r} is not one of the task's labels ({', '.join(names)})"
        ) from None


def read_predictions(path: Path) -> list[tuple[str, str]]:
    """``predictions_<split>.tsv`` (``index<TAB>prediction``) → [(index, prediction), ...]."""
    rows = []
    with open(path, encoding="utf-8", newline="") as f:
        reader = csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE)
        header = next(reader, None)
        if header != ["index", "prediction"]:
            raise DataError(f"{path}:1: expected the header 'index<TAB>prediction', found {header!r}")
        for row in reader:
            if not row:
                continue
            if len(row) != 2:
                raise DataError(f"{path}:{reader.line_num}: expected 2 tab-separated fields, found {len(row)}")
            rows.append((row[0], row[1]))
    return rows


def write_submission(path: Path, files: dict[str, list[tuple[str, str]]]) -> None:
    """Write the zip (atomically) in SUBMISSION_FILES order."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".tmp-{path.name}")
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name in SUBMISSION_FILES:
            if name in files:
                body = "\n".join([HEADER, *(f"{i}\t{p}" for i, p in files[name])]) + "\n"
                member = zipfile.ZipInfo(name, date_time=time.localtime()[:6])
                member.compress_type = zipfile.ZIP_DEFLATED
                member.external_attr = (0o100644 << 16)  # a regular file, rw-r--r-- (writestr's default is 0o600)
                zf.writestr(member, body)
    os.replace(tmp, path)


def missing_files(files) -> list[str]:
    """The submission files the GLUE server needs that ``files`` (names) lacks: it rejects a partial zip."""
    return [name for name in SUBMISSION_FILES if name not in set(files)]


def validate_submission(zip_path: str | Path, expected_counts: dict[str, int] | None = None) -> list[str]:
    """Problems with a GLUE submission zip (empty list: none). Checks that every file is one the
    GLUE server knows, has the ``index<TAB>prediction`` header, one row per example with an integer
    index (no repeats) and a legal prediction (the task's label strings; STS-B a float in [0, 5]),
    and — for the files named in ``expected_counts`` — is present with exactly that many rows."""
    problems: list[str] = []
    try:
        zf = zipfile.ZipFile(zip_path)
    except (OSError, zipfile.BadZipFile) as e:
        return [f"{zip_path}: not a readable zip ({e})"]
    with zf:
        names = zf.namelist()
        for name in names:
            if name not in SERVER_LABELS:
                problems.append(f"{name}: not a GLUE submission file (expected one of {', '.join(SUBMISSION_FILES)})")
                continue
            legal = SERVER_LABELS[name]
            try:
                text = zf.read(name).decode("utf-8")
            except UnicodeDecodeError as e:
                problems.append(f"{name}: not UTF-8 ({e})")
                continue
            lines = text.splitlines()
            if not lines or lines[0] != HEADER:
                problems.append(f"{name}:1: expected the header 'index<TAB>prediction', found {lines[0] if lines else ''!r}")
                continue
            seen: set[int] = set()
            rows = 0
            for n, line in enumerate(lines[1:], start=2):
                if not line.strip():
                    problems.append(f"{name}:{n}: blank line")
                    continue
                rows += 1
                fields = line.split("\t")
                if len(fields) != 2:
                    problems.append(f"{name}:{n}: expected 2 tab-separated fields, found {len(fields)}")
                    continue
                index, prediction = fields
                try:
                    i = int(index)
                except ValueError:
                    problems.append(f"{name}:{n}: index {index!r} is not an integer")
                else:
                    if i in seen:
                        problems.append(f"{name}:{n}: index {i} repeated")
                    seen.add(i)
                if legal is None:
                    try:
                        value = float(prediction)
                    except ValueError:
                        value = math.nan
                    if not (STSB_RANGE[0] <= value <= STSB_RANGE[1]):
                        problems.append(f"{name}:{n}: prediction {prediction!r} is not a score in [0, 5]")
                elif prediction not in legal:
                    problems.append(f"{name}:{n}: prediction {prediction!r} is not one of {', '.join(legal)}")
            if rows == 0:
                problems.append(f"{name}: no predictions")
            if expected_counts and name in expected_counts and rows != expected_counts[name]:
                problems.append(f"{name}: {rows} rows, expected {expected_counts[name]} (one per test example)")
        for name in expected_counts or {}:
            if name not in names:
                problems.append(f"{name}: missing from the zip")
    return problems


