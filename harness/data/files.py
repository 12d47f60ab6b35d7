"""Classification / regression data from local files (TSV, CSV or JSON lines), one file per split.

Rows are read with the standard library so that a bad row is reported as ``file:line``; the rows
then become ``datasets.Dataset`` objects and follow the same path as Hub data.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from datasets import Dataset, DatasetDict

from harness.data.base import (CLASSIFICATION, CLASSIFICATION_METRICS, REGRESSION, REGRESSION_METRICS,
                               ClassificationTask, TaskInfo, training_data_required)
from harness.errors import DataError, where
from harness.io import read_text
from harness.registry import register


def read_rows(path: str | Path) -> list[tuple[int, dict]]:
    """``[(line_number, row_dict), ...]`` from a .tsv/.txt or .csv file (header row required) or a .jsonl file.

    TSV is read as GLUE's files are: tab-separated, no quoting (a field may start with ``"``); CSV with the
    usual double-quote quoting. A header that names a column twice is an error (which value a row would
    keep is not defined)."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in (".jsonl", ".json", ".tsv", ".csv", ".txt"):
        raise DataError(f"{path}: unsupported file type {suffix!r} (use .tsv, .csv or .jsonl)")
    text = read_text(path)
    rows: list[tuple[int, dict]] = []
    if suffix in (".jsonl", ".json"):
        for i, line in enumerate(text.split("\n"), 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as e:
                raise DataError(f"{where(path, i)}: not valid JSON: {e.msg}") from None
            if not isinstance(row, dict):
                raise DataError(f"{where(path, i)}: expected a JSON object, got {type(row).__name__}")
            rows.append((i, row))
        return rows
    if suffix == ".csv":
        reader = csv.reader(io.StringIO(text, newline=""), delimiter=",")
    else:
        reader = csv.reader(io.StringIO(text, newline=""), delimiter="\t", quoting=csv.QUOTE_NONE)
    header = next(reader, None)
    if header is None:
        raise DataError(f"{path}: empty file (a header row is required)")
    twice = sorted({c for c in header if header.count(c) > 1})
    if twice:
        raise DataError(f"{where(path, 1)}: the header names column {twice[0]!r} more than once")
    for row in reader:
        line = reader.line_num
        if not row:
            continue
        if len(row) != len(header):
            raise DataError(f"{where(path, line)}: expected {len(header)} fields ({', '.join(header)}), got {len(row)}")
        rows.append((line, dict(zip(header, row))))
    return rows


@register("data", "text_classification",
          metrics=lambda args: REGRESSION_METRICS if args.get("regression") else CLASSIFICATION_METRICS)
def text_classification(
    train_file: str,
    validation_file: str,
    test_file: str | None = None,
    text_column: str = "text",
    text_pair_column: str | None = None,
    label_column: str = "label",
    label_names: list[str] | None = None,
    regression: bool = False,
) -> ClassificationTask:
    """Single texts or text pairs with a class label (or a float score when ``regression``).

    Labels are the strings in ``label_column``; ``label_names`` fixes their order (default: sorted
    labels of the train file). A test file may omit the label column.
    """
    columns = (text_column,) if text_pair_column is None else (text_column, text_pair_column)
    files = {"train": train_file, "validation": validation_file, "test": test_file}
    if not training_data_required() and (label_names is not None or regression or not Path(train_file).is_file()):
        files.pop("train")  # evaluating a saved model: the train file is not read (it need not exist)
    raw = {name: (f, read_rows(f)) for name, f in files.items() if f is not None}
    if "train" in raw and not raw["train"][1]:
        raise DataError(f"{train_file}: no rows")
    if not regression and label_names is None:
        source = "train" if "train" in raw else "validation"
        label_names = sorted({str(row.get(label_column)) for _, row in raw[source][1]})
    label_id = {name: i for i, name in enumerate(label_names or [])}
    splits = {}
    for split, (path, rows) in raw.items():
        data: dict[str, list] = {"idx": [], **{c: [] for c in columns}, "label": []}
        for line, row in rows:
            for c in columns:
                if c not in row:
                    raise DataError(f"{where(path, line)}: no column {c!r} (found: {', '.join(row)})")
                data[c].append(str(row[c]))
            data["idx"].append(len(data["idx"]))
            value = row.get(label_column)
            if value is None or value == "":
                if split != "test":
                    raise DataError(f"{where(path, line)}: no value in label column {label_column!r}")
                data["label"].append(-1)
            elif regression:
                try:
                    data["label"].append(float(value))
                except (TypeError, ValueError):
                    raise DataError(f"{where(path, line)}: label {value!r} is not a number") from None
            else:
                if str(value) not in label_id:
                    raise DataError(f"{where(path, line)}: label {value!r} is not one of {label_names}")
                data["label"].append(label_id[str(value)])
        splits[split] = Dataset.from_dict(data)
    info = TaskInfo(
        name=Path(train_file).stem,
        problem_type=REGRESSION if regression else CLASSIFICATION,
        label_names=None if regression else list(label_names),
        text_columns=columns,
        metric="regression" if regression else "classification",
        main_metric="pearson" if regression else "accuracy",
    )
    return ClassificationTask(info, DatasetDict(splits))
