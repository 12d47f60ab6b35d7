#!/usr/bin/env python
"""A tiny GLUE mirror in GLUE's own file layouts — all nine tasks and AX, a handful of rows each — and a tiny
recipe for it: what the leaderboard tests and scripts/newcomer_check.sh run on.

    python scripts/tiny_glue.py DIR      # writes DIR/glue/<Task>/... and DIR/tiny_glue.yaml
"""

from __future__ import annotations

import sys
from pathlib import Path

import yaml

WORDS = "good bad fine awful great poor nice dull bright grim".split()
#: test rows per test split (different per task, so that row counts are really checked)
TEST_ROWS = {"cola": 3, "sst2": 4, "mrpc": 2, "stsb": 5, "qqp": 3, "mnli_m": 2, "mnli_mm": 3, "qnli": 2,
             "rte": 4, "wnli": 2, "ax": 3}
#: test split -> submission file, per task
TEST_FILES = {"cola": {"test": "CoLA.tsv"}, "sst2": {"test": "SST-2.tsv"}, "mrpc": {"test": "MRPC.tsv"},
              "stsb": {"test": "STS-B.tsv"}, "qqp": {"test": "QQP.tsv"},
              "mnli": {"test_matched": "MNLI-m.tsv", "test_mismatched": "MNLI-mm.tsv"},
              "qnli": {"test": "QNLI.tsv"}, "rte": {"test": "RTE.tsv"}, "wnli": {"test": "WNLI.tsv"}}
COUNTS = {"CoLA.tsv": 3, "SST-2.tsv": 4, "MRPC.tsv": 2, "STS-B.tsv": 5, "QQP.tsv": 3, "MNLI-m.tsv": 2,
          "MNLI-mm.tsv": 3, "QNLI.tsv": 2, "RTE.tsv": 4, "WNLI.tsv": 2, "AX.tsv": 3}


def _write(path: Path, rows: list[list]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join("\t".join(str(x) for x in r) + "\n" for r in rows), encoding="utf-8")


def _s(i: int, n: int = 3) -> str:
    return " ".join(WORDS[(i + k) % len(WORDS)] for k in range(n)) + " ."


def _pair_task(root: Path, folder: str, header: list[str], labels: list, n_test: int, test_header=None,
               row=lambda i, label: [i, _s(i), _s(i + 1), label], test_row=lambda i: [i, _s(i), _s(i + 2)]):
    d = root / folder
    _write(d / "train.tsv", [header] + [row(i, labels[i % len(labels)]) for i in range(8)])
    _write(d / "dev.tsv", [header] + [row(i, labels[(i + 1) % len(labels)]) for i in range(4)])
    _write(d / "test.tsv", [test_header or header[:-1]] + [test_row(i) for i in range(n_test)])


def make_glue(root: Path, skip: tuple[str, ...] = (), ax: bool = True) -> Path:
    """All nine tasks (minus ``skip``) and AX under ``root``, a handful of rows each."""
    makers = {
        "cola": lambda: (
            _write(root / "CoLA/train.tsv", [["gj04", i % 2, "" if i % 2 else "*", _s(i)] for i in range(8)]),
            _write(root / "CoLA/dev.tsv", [["gj04", (i + 1) % 2, "", _s(i)] for i in range(4)]),
            _write(root / "CoLA/test.tsv", [["index", "sentence"]] + [[i, _s(i + 5)] for i in range(TEST_ROWS["cola"])]),
        ),
        "sst2": lambda: (
            _write(root / "SST-2/train.tsv", [["sentence", "label"]] + [[_s(i), i % 2] for i in range(8)]),
            _write(root / "SST-2/dev.tsv", [["sentence", "label"]] + [[_s(i), (i + 1) % 2] for i in range(4)]),
            _write(root / "SST-2/test.tsv", [["index", "sentence"]] + [[i, _s(i)] for i in range(TEST_ROWS["sst2"])]),
        ),
        "mrpc": lambda: _pair_task(
            root, "MRPC", ["Quality", "#1 ID", "#2 ID", "#1 String", "#2 String"], [0, 1], TEST_ROWS["mrpc"],
            test_header=["index", "#1 ID", "#2 ID", "#1 String", "#2 String"],
            row=lambda i, label: [label, 100 + i, 200 + i, _s(i), _s(i + 1)],
            test_row=lambda i: [i, 300 + i, 400 + i, _s(i), _s(i + 3)]),
        "stsb": lambda: _pair_task(
            root, "STS-B", ["index", "genre", "sentence1", "sentence2", "score"], ["0.5", "4.2", "2.0", "5.000"],
            TEST_ROWS["stsb"], row=lambda i, label: [i, "main-news", _s(i), _s(i + 1), label],
            test_row=lambda i: [i, "main-news", _s(i), _s(i + 2)]),
        "qqp": lambda: _pair_task(
            root, "QQP", ["id", "qid1", "qid2", "question1", "question2", "is_duplicate"], [0, 1], TEST_ROWS["qqp"],
            test_header=["id", "question1", "question2"],
            row=lambda i, label: [5000 + i, i, i + 1, _s(i), _s(i + 1), label]),
        "mnli": lambda: make_mnli(root),
        "qnli": lambda: _pair_task(root, "QNLI", ["index", "question", "sentence", "label"],
                                   ["entailment", "not_entailment"], TEST_ROWS["qnli"]),
        "rte": lambda: _pair_task(root, "RTE", ["index", "sentence1", "sentence2", "label"],
                                  ["entailment", "not_entailment"], TEST_ROWS["rte"]),
        "wnli": lambda: _pair_task(root, "WNLI", ["index", "sentence1", "sentence2", "label"], [0, 1],
                                   TEST_ROWS["wnli"]),
    }
    for task, make in makers.items():
        if task not in skip:
            make()
    if ax:
        _write(root / "diagnostic/diagnostic.tsv",
               [["index", "sentence1", "sentence2"]] + [[i, _s(i), _s(i + 4)] for i in range(TEST_ROWS["ax"])])
    return root


def make_mnli(root: Path) -> None:
    header = ["index", "genre", "sentence1", "sentence2", "gold_label"]
    labels = ["entailment", "neutral", "contradiction"]
    d = root / "MNLI"
    _write(d / "train.tsv", [header] + [[i, "fiction", _s(i), _s(i + 1), labels[i % 3]] for i in range(9)])
    for name in ("dev_matched", "dev_mismatched"):
        _write(d / f"{name}.tsv", [header] + [[i, "fiction", _s(i), _s(i + 2), labels[(i + 1) % 3]] for i in range(4)])
    for name, n in (("test_matched", TEST_ROWS["mnli_m"]), ("test_mismatched", TEST_ROWS["mnli_mm"])):
        _write(d / f"{name}.tsv", [header[:-1]] + [[i, "fiction", _s(i), _s(i + 3)] for i in range(n)])


def write_glue_recipe(tmp_path: Path, data_dir: Path) -> Path:
    recipe = {
        "name": "tiny-glue",
        "output_dir": str(tmp_path / "unused"),
        "seed": 0,
        "data": {"component": "glue", "task": "rte", "data_dir": str(data_dir)},
        "model": {"component": "bert_from_scratch", "hidden_size": 16, "num_layers": 1, "num_heads": 1},
        "training": {"num_epochs": 1, "batch_size": 8, "lr": 1e-3, "max_length": 16, "log_steps": 1},
        "tracking": {"report_to": []},
    }
    path = tmp_path / "tiny_glue.yaml"
    path.write_text(yaml.safe_dump(recipe))
    return path



if __name__ == "__main__":
    if len(sys.argv) != 2:
        raise SystemExit("usage: python scripts/tiny_glue.py DIR")
    root = Path(sys.argv[1])
    data = make_glue(root / "glue")
    print(f"tiny GLUE: {data}\nrecipe: {write_glue_recipe(root, data)}")
