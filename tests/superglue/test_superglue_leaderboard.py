"""`harness leaderboard --benchmark superglue`: runs → the server's JSONL files (zip), validated, the missing tasks
said, and the dev table with the subset average; the submission format on its own."""

from __future__ import annotations

import json
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest
import yaml

from harness.data.superglue import superglue
from harness.evaluation.superglue_submission import missing_files, submission_rows, validate_submission, write_submission
from harness.workflows import superglue_leaderboard as lb

FAKE = {"cb": {"validation/f1_macro": 0.5, "validation/accuracy": 0.7}, "rte": {"validation/accuracy": 0.6},
        "wsc": {"validation/accuracy": 0.65}, "multirc": {"validation/f1_a": 0.6, "validation/exact_match": 0.2}}


def _recipes(folder: Path, data_dir: Path, checkpoint: str, tasks) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for task in tasks:
        component = {"wsc": "pretrained_span_classifier", "copa": "pretrained"}.get(task, "pretrained_classifier")
        body = {"output_dir": "unused", "data": {"component": "superglue", "task": task, "data_dir": str(data_dir)},
                "model": {"component": component, "checkpoint": checkpoint},
                "training": {"batch_size": 4, "max_length": 64}, "tracking": {"report_to": []}}
        (folder / f"{task}.yaml").write_text(yaml.safe_dump(body))
    return folder


def _fake_trainer(data_dir: Path, checkpoint: str):
    """Instead of `harness train` in a subprocess: metrics.json, predictions_test.tsv written by the task itself,
    and for RTE a saved (tiny, untrained) model for AX-b / AX-g."""

    def train(recipe_path, overrides, log_path, command=None, echo=True):
        opts = dict(o.split("=", 1) for o in overrides)
        task, run_dir = opts["data.task"], Path(opts["output_dir"])
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / "metrics.json").write_text(json.dumps({**FAKE[task], "train/global_step": 3}))
        data = superglue(task, data_dir=str(data_dir))
        data.write_predictions(run_dir / "predictions_test.tsv", "test", np.arange(len(data.splits["test"])) % 2)
        (run_dir / "recipe.yaml").write_text(Path(recipe_path).read_text())
        if task == "rte":
            from harness.models.pretrained import sequence_classifier

            model, tokenizer = sequence_classifier(data, checkpoint)
            model.save_pretrained(run_dir / "model")
            tokenizer.save_pretrained(run_dir / "model")
        return True, ""

    return train


@pytest.fixture(scope="module")
def board(sg_dir, tiny_checkpoint, tmp_path_factory):
    """One leaderboard run over fabricated runs: CB, RTE, WSC, MultiRC trained; COPA's data lacks a train split;
    BoolQ and WiC have no recipe; ReCoRD has a recipe but no data."""
    root = tmp_path_factory.mktemp("board")
    data = root / "data"
    shutil.copytree(sg_dir, data)
    (data / "COPA" / "train.jsonl").unlink()
    shutil.rmtree(data / "ReCoRD")
    recipes = _recipes(root / "recipes", data, tiny_checkpoint, ["cb", "rte", "wsc", "multirc", "copa", "record"])
    mp = pytest.MonkeyPatch()
    import harness.workflows.glue_leaderboard as glb

    mp.setattr(glb, "train_task", _fake_trainer(data, tiny_checkpoint))
    try:
        code = lb.main(["--recipes", str(recipes), "--runs-dir", str(root / "runs"), "--out", str(root / "out")])
    finally:
        mp.undo()
    return root, code


def test_submission_files_are_the_server_format_and_validate(board):
    root, code = board
    assert code == 0
    zf = zipfile.ZipFile(root / "out" / "superglue_submission.zip")
    assert sorted(zf.namelist()) == sorted(["CB.jsonl", "RTE.jsonl", "WSC.jsonl", "MultiRC.jsonl", "AX-b.jsonl",
                                            "AX-g.jsonl"])
    cb = [json.loads(l) for l in zf.read("CB.jsonl").decode().splitlines()]
    assert cb[:2] == [{"idx": 0, "label": "entailment"}, {"idx": 1, "label": "contradiction"}] and len(cb) == 6
    wsc = [json.loads(l) for l in zf.read("WSC.jsonl").decode().splitlines()]
    assert wsc[1] == {"idx": 1, "label": "True"}
    mrc = [json.loads(l) for l in zf.read("MultiRC.jsonl").decode().splitlines()]
    assert len(mrc) == 2 and mrc[0]["idx"] == 0
    assert [a["label"] for a in mrc[0]["passage"]["questions"][1]["answers"]] == [1, 0, 1]
    axb = [json.loads(l) for l in zf.read("AX-b.jsonl").decode().splitlines()]
    assert [r["idx"] for r in axb] == list(range(6)) and {r["label"] for r in axb} <= {"entailment", "not_entailment"}
    assert validate_submission(root / "out" / "superglue_submission.zip") == []
    assert validate_submission(root / "out" / "superglue_submission") == []


def test_report_says_what_is_missing_and_labels_the_subset_average(board):
    root, _ = board
    md = (root / "out" / "leaderboard.md").read_text()
    # CB (50+70)/2 = 60, RTE 60, WSC 65, MultiRC (60+20)/2 = 40 -> 56.25
    assert "**56.2 — subset: 4 of 8 tasks (CB, MultiRC, RTE, WSC), not a SuperGLUE score**" in md
    assert "- ReCoRD: missing: SuperGLUE 'record' data not found: no ReCoRD/ folder under" in md
    assert "- COPA: missing:" in md and "train.jsonl: file not found" in md
    assert "- BoolQ: missing: no recipe:" in md and "- WiC: missing: no recipe:" in md
    assert "Missing from it (the server needs every file; it is not complete): BoolQ.jsonl, COPA.jsonl, " \
           "ReCoRD.jsonl, WiC.jsonl" in md
    assert "Check: passed" in md
    # the paper's test rows, per task in the table's column order (BoolQ CB COPA MultiRC ReCoRD RTE WiC WSC)
    assert "| BERT-large (Wang et al. 2019) | 69.0 (test, all 8 tasks) | 77.4 | 75.7/83.6 | 70.6 | 70.0/24.0 | " \
           "72.0/71.3 | 71.6 | 69.5 | 64.3 |" in md
    assert "| CBoW (Wang et al. 2019) | 44.3 (test, all 8 tasks) | 62.1 | 49.0/71.2 |" in md
    assert "| Most frequent class (Wang et al. 2019) | 47.1" in md
    assert "AX-b MCC / AX-g gender parity and accuracy — BERT-large 23.0 / 97.8/51.7" in md
    assert "Most frequent class (dev, measured)" in md
    assert "- AX-b: matthews_correlation" in md and "- AX-g: gender_parity" in md


def test_collect_mode_reports_the_same_runs(board):
    root, _ = board
    code = lb.main(["--collect", "--runs-dir", str(root / "runs"), "--out", str(root / "collected")])
    assert code == 0
    md = (root / "collected" / "leaderboard.md").read_text()
    assert "**56.2 — subset: 4 of 8 tasks" in md
    assert "AX-b.jsonl" in zipfile.ZipFile(root / "collected" / "superglue_submission.zip").namelist()


def test_render_states_missing_tasks_and_the_subset_average(tmp_path):
    """The report alone (fast): scored tasks, the subset label, the reasons of the missing ones, the check's result."""
    results = {"cb": lb.TaskResult("cb", "ok", metrics={"f1_macro": 0.5, "accuracy": 0.7},
                                   baseline={"f1_macro": 0.2, "accuracy": 0.5}),
               "rte": lb.TaskResult("rte", "ok", metrics={"accuracy": 0.6}, baseline={"accuracy": 0.5}),
               "copa": lb.TaskResult("copa", "missing", "COPA/train.jsonl: file not found"),
               "wic": lb.TaskResult("wic", "failed", "error: boom (exit code 2)"),
               "record": lb.TaskResult("record", "missing", "ReCoRD/train.jsonl: file not found")}
    md = lb.render(results, {"axb": {"status": "ok", "metrics": {"matthews_correlation": 0.1}},
                             "axg": {"status": "missing", "reason": "no RTE model"}},
                   recipes="r", runs_dir=tmp_path, overrides=[], zip_path=tmp_path / "superglue_submission.zip",
                   problems=["CB.jsonl:3: idx 2 repeated"], missing=["BoolQ.jsonl"], mode="trained")
    assert "**60.0 — subset: 2 of 8 tasks (CB, RTE), not a SuperGLUE score**" in md
    assert "| Most frequent class (dev, measured) | 42.5 (same 2 tasks) | — | 20.0/50.0 |" in md  # CB 35, RTE 50
    assert "- COPA: missing: COPA/train.jsonl: file not found" in md and "- WiC: failed: error: boom" in md
    assert "- BoolQ: not run (not in --tasks)" in md and "- ReCoRD: missing: ReCoRD" in md
    assert "- AX-b: matthews_correlation 10.0" in md and "- AX-g: missing: no RTE model" in md
    assert "Check: FAILED:" in md and "- CB.jsonl:3: idx 2 repeated" in md
    assert lb.superglue_average({"a": 50.0, "b": None, "c": 70.0}) == (60.0, 2)


def test_validation_finds_what_the_server_would_reject(tmp_path):
    good = submission_rows("MultiRC.jsonl", [("0/0/0", "1"), ("0/0/1", "0"), ("0/1/0", "1")])
    assert good == [{"idx": 0, "passage": {"questions": [{"idx": 0, "answers": [{"idx": 0, "label": 1},
                                                                                 {"idx": 1, "label": 0}]},
                                                          {"idx": 1, "answers": [{"idx": 0, "label": 1}]}]}}]
    record = submission_rows("ReCoRD.jsonl", [("7", "Acme Corp."), ("9", "the U.N.")])
    assert record == [{"idx": 7, "label": "Acme Corp."}, {"idx": 9, "label": "the U.N."}]
    files = {"MultiRC.jsonl": good, "COPA.jsonl": submission_rows("COPA.jsonl", [("0", "1"), ("1", "0")]),
             "ReCoRD.jsonl": record + [{"idx": 8, "label": ""}],
             "BoolQ.jsonl": [{"idx": 0, "label": "True"}, {"idx": 0, "label": "true"}]}
    path = write_submission(tmp_path, files)
    problems = validate_submission(path, {"MultiRC.jsonl": 4, "COPA.jsonl": 2, "RTE.jsonl": 3})
    assert "BoolQ.jsonl:1: label 'True' is not one of 'false', 'true'" in problems
    assert "BoolQ.jsonl:2: idx 0 repeated" in problems
    assert "MultiRC.jsonl: 3 predictions, expected 4 (one per test example)" in problems
    assert "RTE.jsonl: missing from the submission" in problems
    assert "ReCoRD.jsonl:3: label must be the answer text, found ''" in problems
    assert not any(p.startswith("COPA") for p in problems)
    assert json.loads((tmp_path / "superglue_submission" / "COPA.jsonl").read_text().splitlines()[0]) == \
        {"idx": 0, "label": 1}
    assert missing_files(files) == ["CB.jsonl", "RTE.jsonl", "WiC.jsonl", "WSC.jsonl", "AX-b.jsonl",
                                    "AX-g.jsonl"]


def test_bad_prediction_rows_are_refused_with_their_place():
    from harness.errors import DataError

    with pytest.raises(DataError, match=r"p.tsv:3: prediction 'maybe' is not one of entailment"):
        submission_rows("RTE.jsonl", [("0", "entailment"), ("1", "maybe")], "p.tsv")
    with pytest.raises(DataError, match="MultiRC index '3' is not paragraph/question/answer"):
        submission_rows("MultiRC.jsonl", [("3", "1")])


def test_cli_routes_the_benchmark(tmp_path, capsys):
    from harness.cli import _benchmark, main

    assert _benchmark(["--runs-dir", "x", "--benchmark", "superglue"]) == ("superglue", ["--runs-dir", "x"])
    assert _benchmark(["--benchmark=glue", "--collect"]) == ("glue", ["--collect"])
    assert _benchmark(["--collect"]) == ("glue", ["--collect"])
    with pytest.raises(SystemExit):
        _benchmark(["--benchmark", "squad"])
    assert main(["leaderboard", "--benchmark", "superglue", "--runs-dir", str(tmp_path)]) == 2
    assert "give --recipes DIR" in capsys.readouterr().err


def test_overrides_after_tasks_are_overrides_not_task_names(tmp_path, monkeypatch):
    seen = {}
    monkeypatch.setattr(lb, "run", lambda args: seen.update(tasks=args.tasks, overrides=args.overrides) or 0)
    assert lb.main(["--runs-dir", str(tmp_path), "--tasks", "cb", "rte", "seed=43", "training.lr=1e-5"]) == 0
    assert seen == {"tasks": ["cb", "rte"], "overrides": ["seed=43", "training.lr=1e-5"]}
