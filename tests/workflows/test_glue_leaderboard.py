"""harness.workflows.glue_leaderboard (GLUE runs → submission zip + leaderboard.md) and the submission format it
writes (harness.evaluation.glue_submission), on tiny data with a tiny model."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import yaml
from testkit import load_script

from harness.data.glue import glue
from harness.evaluation.glue_submission import (
    SERVER_LABELS,
    TASKS,
    glue_average,
    server_label,
    validate_submission,
)
from harness.workflows import glue_leaderboard as lb
from harness.workflows.glue_leaderboard import TaskResult

REPO = Path(__file__).resolve().parents[2]

# ---- tiny GLUE, in GLUE's own file layouts (scripts/tiny_glue.py) ----------------------------

tiny = load_script("tiny_glue")
TEST_ROWS, TEST_FILES, COUNTS = tiny.TEST_ROWS, tiny.TEST_FILES, tiny.COUNTS
make_glue, write_glue_recipe = tiny.make_glue, tiny.write_glue_recipe


# ---- fabricated runs (what `harness train` leaves behind), for --collect ----------------------

#: task -> its dev metrics in [0, 1], as metrics.json holds them
FAKE_METRICS = {
    "cola": {"validation/matthews_correlation": 0.20},
    "sst2": {"validation/accuracy": 0.80},
    "mrpc": {"validation/f1": 0.80, "validation/accuracy": 0.70},
    "stsb": {"validation/pearson": 0.60, "validation/spearmanr": 0.50},
    "qqp": {"validation/f1": 0.60, "validation/accuracy": 0.70},
    "mnli": {"validation_matched/accuracy": 0.50, "validation_mismatched/accuracy": 0.60},
    "qnli": {"validation/accuracy": 0.70},
    "rte": {"validation/accuracy": 0.50},
    "wnli": {"validation/accuracy": 0.40},
}
#: the per-task score (mean of its metrics, ×100) for FAKE_METRICS
FAKE_SCORES = {"cola": 20.0, "sst2": 80.0, "mrpc": 75.0, "stsb": 55.0, "qqp": 65.0, "mnli": 55.0, "qnli": 70.0,
               "rte": 50.0, "wnli": 40.0}


def fake_run(runs: Path, task: str, data_dir: Path) -> Path:
    """A finished run folder: metrics.json and predictions_<test split>.tsv with our label names."""
    d = runs / task
    d.mkdir(parents=True, exist_ok=True)
    (d / "metrics.json").write_text(json.dumps({**FAKE_METRICS[task], "train/global_step": 3}))
    t = glue(task, data_dir=str(data_dir))
    names = t.info.label_names
    for split in t.info.extra["test_splits"]:
        n = len(t.splits[split])
        preds = [f"{(i * 1.7) - 1:.4g}" for i in range(n)] if names is None else [names[i % len(names)] for i in range(n)]
        (d / f"predictions_{split}.tsv").write_text("index\tprediction\n" + "".join(f"{i}\t{p}\n" for i, p in enumerate(preds)))
    return d


def zip_rows(zip_path: Path) -> dict[str, list[list[str]]]:
    with zipfile.ZipFile(zip_path) as zf:
        return {n: [line.split("\t") for line in zf.read(n).decode().splitlines()] for n in zf.namelist()}


def table_row(md: str, first_cell: str) -> list[str]:
    for line in md.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if cells and cells[0] == first_cell:
            return cells
    raise AssertionError(f"no row {first_cell!r} in:\n{md}")


COLUMNS = ["Model", "Score", "CoLA", "SST-2", "MRPC", "STS-B", "QQP", "MNLI", "QNLI", "RTE", "WNLI", "Source"]


# ---- end to end: 2 tasks trained (subprocesses), the other 7 collected ------------------------


@pytest.mark.slow  # a subprocess end-to-end run; the default suite covers it in-process
def test_run_then_collect_all_nine(tmp_path, monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    monkeypatch.setenv("TOKENIZERS_PARALLELISM", "false")
    monkeypatch.delenv("HARNESS_DATA_DIR", raising=False)
    data = make_glue(tmp_path / "glue")
    recipe = write_glue_recipe(tmp_path, data)
    runs, out = tmp_path / "runs", tmp_path / "out"

    # run mode: stsb (regression) and mnli (three classes, two test splits, + AX with its model)
    argv = ["--recipe", str(recipe), "--runs-dir", str(runs), "--out", str(out), "--tasks", "STS-B", "mnli",
            "training.max_steps=2"]
    assert lb.main(argv) == 1  # a partial submission: the GLUE server would reject it
    md = (out / "leaderboard.md").read_text()
    assert "is **partial: 4 of 11 files; the GLUE server rejects it** (missing: CoLA.tsv, SST-2.tsv" in md
    assert "upload to" not in md and "no problems found in the files present" in md
    with zipfile.ZipFile(out / "glue_submission.zip") as zf:  # ordinary file permissions (rw-r--r--)
        assert {(i.external_attr >> 16) & 0o777 for i in zf.infolist()} == {0o644}
    assert lb.main(argv + ["--allow-partial", "--collect"]) == 0
    for task in ("stsb", "mnli"):
        assert (runs / task / "metrics.json").is_file() and (runs / task / "model").is_dir()
        saved = yaml.safe_load((runs / task / "recipe.yaml").read_text())
        assert saved["data"]["task"] == task and saved["training"]["max_steps"] == 2
        assert saved["output_dir"] == str(runs / task)
    assert (runs / "mnli" / "predictions_ax.tsv").is_file()
    rows = zip_rows(out / "glue_submission.zip")
    assert sorted(rows) == sorted(["STS-B.tsv", "MNLI-m.tsv", "MNLI-mm.tsv", "AX.tsv"])
    assert validate_submission(out / "glue_submission.zip", {k: COUNTS[k] for k in rows}) == []
    assert all(re.fullmatch(r"\d\.\d{3}", r[1]) for r in rows["STS-B.tsv"][1:])
    for name in ("MNLI-m.tsv", "MNLI-mm.tsv", "AX.tsv"):
        assert {r[1] for r in rows[name][1:]} <= {"entailment", "neutral", "contradiction"}
    md = (out / "leaderboard.md").read_text()
    ours = table_row(md, "**tiny_glue**")
    assert ours[1].endswith("over 2 of 9 tasks — not a GLUE score**")
    assert re.fullmatch(r"\d+\.\d/\d+\.\d", ours[COLUMNS.index("MNLI")])
    assert re.fullmatch(r"-?\d+\.\d/-?\d+\.\d", ours[COLUMNS.index("STS-B")])
    assert ours[COLUMNS.index("CoLA")] == "not run"

    # collect mode: fabricate the seven other runs; the two real ones are collected as they are
    for task in ("cola", "sst2", "mrpc", "qqp", "qnli", "rte", "wnli"):
        fake_run(runs, task, data)
    out2 = tmp_path / "out2"
    assert lb.main(["--recipe", str(recipe), "--runs-dir", str(runs), "--out", str(out2), "--collect"]) == 0
    zip_path = out2 / "glue_submission.zip"
    rows = zip_rows(zip_path)
    assert sorted(rows) == sorted(SERVER_LABELS)
    assert {n: len(r) - 1 for n, r in rows.items()} == COUNTS
    assert all(r[0] == ["index", "prediction"] for r in rows.values())
    assert validate_submission(zip_path, COUNTS) == []
    # the label strings the server expects: RTE/QNLI words, WNLI/MRPC/QQP/CoLA/SST-2 digits
    assert [r[1] for r in rows["RTE.tsv"][1:]] == ["entailment", "not_entailment", "entailment", "not_entailment"]
    assert [r[1] for r in rows["WNLI.tsv"][1:]] == ["0", "1"]  # names: not_entailment, entailment
    assert [r[1] for r in rows["SST-2.tsv"][1:]] == ["0", "1", "0", "1"]
    md = (out2 / "leaderboard.md").read_text()
    ours = table_row(md, "**tiny_glue**")
    assert not any(c.startswith(("missing", "failed", "not run")) for c in ours)
    assert ours[COLUMNS.index("RTE")] == "50.0" and ours[COLUMNS.index("MRPC")] == "80.0/70.0"
    metrics = {t: json.loads((runs / t / "metrics.json").read_text()) for t in TASKS}
    scores = [sum(100 * metrics[t][k] for k in lb.DEV_METRICS[t]) / len(lb.DEV_METRICS[t]) for t in TASKS]
    assert ours[1] == f"**{sum(scores) / 9:.1f}**"  # all nine: no "N of 9"
    assert table_row(md, "BERT-base")[COLUMNS.index("Score")] == "79.5"
    assert "Validation: no problems found." in md and "upload to https://gluebenchmark.com/submit" in md


# ---- missing data ----------------------------------------------------------------------------


def test_missing_and_failed_tasks_are_reported_and_left_out_of_the_average(tmp_path, monkeypatch):
    monkeypatch.delenv("HARNESS_DATA_DIR", raising=False)
    data = make_glue(tmp_path / "glue", skip=("wnli", "cola"), ax=False)
    recipe = write_glue_recipe(tmp_path, data)
    runs, out = tmp_path / "runs", tmp_path / "out"
    trained = []

    def fake_trainer(recipe_path, overrides, log_path):  # instead of a subprocess: leave a finished run
        task = next(o.split("=", 1)[1] for o in overrides if o.startswith("data.task="))
        assert f"output_dir={runs / task}" in overrides and "training.max_steps=1" in overrides
        splits = {"mnli": "[test_matched,test_mismatched]"}.get(task, "[test]")
        assert overrides[-1] == f"evaluation.predict_splits={splits}"
        trained.append(task)
        if task == "qnli":
            return False, "error: training diverged (exit code 3)"
        fake_run(runs, task, data)
        return True, ""

    args = lb._parser().parse_intermixed_args(["--recipe", str(recipe), "--runs-dir", str(runs), "--out", str(out),
                                               "--tasks", "rte,wnli", "mnli", "training.max_steps=1", "cola", "qnli"])
    assert lb.run(args, trainer=fake_trainer) == 1  # a failed task: non-zero, the report is still written
    assert trained == ["mnli", "qnli", "rte"]  # no run is started for a task without data
    md = (out / "leaderboard.md").read_text()
    ours = table_row(md, "**tiny_glue**")
    assert ours[COLUMNS.index("WNLI")].startswith("missing (GLUE 'wnli' data not found")
    assert ours[COLUMNS.index("CoLA")].startswith("missing (GLUE 'cola' data not found")
    assert ours[COLUMNS.index("QNLI")] == "failed (error: training diverged (exit code 3))"
    assert ours[COLUMNS.index("SST-2")] == "not run"
    # the average covers MNLI and RTE only: (55 + 50) / 2; missing and failed tasks are not zeros
    assert ours[1] == "**52.5 over 2 of 9 tasks — not a GLUE score**"
    # AX data absent: MNLI still scores and submits, AX is reported missing
    assert ours[COLUMNS.index("MNLI")] == "50.0/60.0"
    assert "AX.tsv: absent (AX missing: the GLUE AX diagnostic set not found" in md
    assert "- WNLI.tsv: absent (WNLI missing)" in md and "- SST-2.tsv: absent (SST-2 not run)" in md
    assert "- WNLI: missing: GLUE 'wnli' data not found" in md  # the full reason, below the table
    rows = zip_rows(out / "glue_submission.zip")
    assert sorted(rows) == ["MNLI-m.tsv", "MNLI-mm.tsv", "RTE.tsv"]
    assert validate_submission(out / "glue_submission.zip", COUNTS) == [
        f"{n}: missing from the zip" for n in COUNTS if n not in rows]

    # --collect without a recipe (the fabricated runs have no recipe.yaml): labels from the GLUE spec
    out2 = tmp_path / "out2"
    assert lb.main(["--runs-dir", str(runs), "--out", str(out2), "--collect", "--tasks", "rte", "wnli"]) == 1
    assert lb.main(["--runs-dir", str(runs), "--out", str(out2), "--collect", "--tasks", "rte", "wnli",
                    "--allow-partial"]) == 0
    md = (out2 / "leaderboard.md").read_text()
    assert table_row(md, "**runs**")[1] == "**50.0 over 1 of 9 tasks — not a GLUE score**"
    assert table_row(md, "**runs**")[COLUMNS.index("WNLI")].startswith("missing (no run:")
    assert zip_rows(out2 / "glue_submission.zip")["RTE.tsv"][1] == ["0", "entailment"]


def test_train_task_reports_the_error_line(tmp_path):
    fail = [sys.executable, "-c", "import sys; print('loading'); print('error: boom', file=sys.stderr); sys.exit(2)"]
    ok, error = lb.train_task("recipe.yaml", ["data.task=rte"], tmp_path / "log.txt", command=fail, echo=False)
    assert (ok, error) == (False, "error: boom (exit code 2)")
    assert "loading" in (tmp_path / "log.txt").read_text()
    ok, error = lb.train_task("recipe.yaml", [], tmp_path / "log2.txt", command=[sys.executable, "-c", "pass"])
    assert (ok, error) == (True, "")
    ok, error = lb.train_task("r.yaml", [], tmp_path / "log3.txt", command=[str(tmp_path / "no-such-launcher")])
    assert not ok and error.startswith("cannot start")


def test_launcher_replaces_python_m_harness(tmp_path, monkeypatch):
    seen = []
    monkeypatch.setattr(lb, "train_task", lambda *a, **k: seen.append(k["command"]) or (False, "error: x (exit code 1)"))
    data = make_glue(tmp_path / "glue", skip=tuple(t for t in TASKS if t != "rte"), ax=False)
    recipe = write_glue_recipe(tmp_path, data)
    assert lb.main(["--recipe", str(recipe), "--runs-dir", str(tmp_path / "runs"), "--tasks", "rte",
                    "--launcher", "accelerate launch --num_processes 2 -m harness"]) == 1
    assert seen == [["accelerate", "launch", "--num_processes", "2", "-m", "harness", "train"]]


def test_no_recipe_and_not_collect_is_an_error(tmp_path, capsys):
    assert lb.main(["--runs-dir", str(tmp_path)]) == 2
    assert "--recipe is required" in capsys.readouterr().err


def test_non_glue_recipe_is_refused(tmp_path, capsys):
    rc = lb.main(["--recipe", str(REPO / "recipes/tiny/synthetic_bert.yaml"), "--runs-dir", str(tmp_path),
                  "--tasks", "rte"])
    assert rc == 2
    assert "data.component: glue" in capsys.readouterr().err


def test_ax_is_not_a_task(tmp_path, capsys):
    assert lb.main(["--runs-dir", str(tmp_path), "--collect", "--tasks", "ax"]) == 2
    assert "MNLI" in capsys.readouterr().err


# ---- label strings ---------------------------------------------------------------------------

#: task -> (our label names in id order, the strings the GLUE server expects in the same order)
LABEL_STRINGS = {
    "cola": (["unacceptable", "acceptable"], ["0", "1"]),
    "sst2": (["negative", "positive"], ["0", "1"]),
    "mrpc": (["not_equivalent", "equivalent"], ["0", "1"]),
    "qqp": (["not_duplicate", "duplicate"], ["0", "1"]),
    "mnli": (["entailment", "neutral", "contradiction"], ["entailment", "neutral", "contradiction"]),
    "qnli": (["entailment", "not_entailment"], ["entailment", "not_entailment"]),
    "rte": (["entailment", "not_entailment"], ["entailment", "not_entailment"]),
    "wnli": (["not_entailment", "entailment"], ["0", "1"]),
}


@pytest.fixture(scope="module")
def glue_dir(tmp_path_factory):
    return make_glue(tmp_path_factory.mktemp("glue"))


@pytest.mark.parametrize("task", [t for t in TASKS if t != "stsb"])
def test_label_names_map_to_server_strings(glue_dir, task):
    info = glue(task, data_dir=str(glue_dir)).info
    names, strings = LABEL_STRINGS[task]
    assert info.label_names == names
    assert [server_label(info, n) for n in names] == strings
    # the static info used when the data is absent is the same
    static = lb._static_info(task)
    assert [server_label(static, n) for n in names] == strings
    for fname in TEST_FILES[task].values():
        assert set(strings) <= set(SERVER_LABELS[fname])
    with pytest.raises(lb.DataError, match="not one of the task's labels"):
        server_label(info, "maybe")


def test_stsb_scores_are_clipped_floats(glue_dir):
    info = glue("stsb", data_dir=str(glue_dir)).info
    assert info.label_names is None and info.extra["test_label_strings"] is None
    assert [server_label(info, p) for p in ["3.14159", "-0.2", "5.7", "0", "2.5e0"]] == \
        ["3.142", "0.000", "5.000", "0.000", "2.500"]
    for bad in ["entailment", "nan", "inf"]:
        with pytest.raises(lb.DataError):
            server_label(info, bad)


def test_test_splits_and_file_names_match_the_data(glue_dir):
    for task in TASKS:
        assert glue(task, data_dir=str(glue_dir)).info.extra["test_splits"] == TEST_FILES[task]


# ---- the average -----------------------------------------------------------------------------


def test_task_scores_and_glue_average():
    def result(task):
        return TaskResult(task, "ok", metrics=FAKE_METRICS[task])

    for task in TASKS:
        assert result(task).score == pytest.approx(FAKE_SCORES[task])
    assert result("mnli").cell() == "50.0/60.0" and result("cola").cell() == "20.0"
    assert result("stsb").values == pytest.approx([60.0, 50.0])
    avg, n = glue_average({t: result(t).score for t in TASKS})
    assert n == 9 and avg == pytest.approx(sum(FAKE_SCORES.values()) / 9)
    # missing and failed tasks are left out, not counted as 0
    partial = {"rte": result("rte").score, "mnli": result("mnli").score,
               "wnli": TaskResult("wnli", "missing", "no data").score,
               "cola": TaskResult("cola", "failed", "boom").score}
    assert glue_average(partial) == (pytest.approx(52.5), 2)
    assert glue_average({}) == (None, 0)
    assert TaskResult("wnli", "missing", "no data | here. More text").cell() == "missing (no data \\| here.)"


def test_baselines_are_the_published_numbers():
    by_name = {b.name: b for b in lb.BASELINES}
    bert = by_name["BERT-base"]
    assert bert.score == "79.5" and bert.scores["cola"] == "56.3" and bert.scores["wnli"] == "53.5"
    assert by_name["DistilBERT"].score == "77.0" and by_name["ELMo baseline"].scores["stsb"] == "70.4"
    for b in lb.BASELINES[:3]:  # the paper's rows: all nine tasks, close to the published macro-score
        assert set(b.scores) == set(TASKS) and "Sanh et al. 2019" in b.source
        assert sum(float(v) for v in b.scores.values()) / 9 == pytest.approx(float(b.score), abs=0.3)
    anchors = lb.BASELINES[3:]
    assert all(set(b.scores) == {"cola", "sst2", "mrpc", "stsb", "rte"} and b.score is None for b in anchors)


# ---- the validator ---------------------------------------------------------------------------


def _zip(path: Path, files: dict[str, str]) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for name, body in files.items():
            zf.writestr(name, body)
    return path


def test_validate_submission_finds_problems(tmp_path):
    good = _zip(tmp_path / "good.zip", {"RTE.tsv": "index\tprediction\n0\tentailment\n1\tnot_entailment\n",
                                        "STS-B.tsv": "index\tprediction\n0\t0.000\n1\t4.250\n"})
    assert validate_submission(good, {"RTE.tsv": 2, "STS-B.tsv": 2}) == []
    bad = _zip(tmp_path / "bad.zip", {
        "RTE.tsv": "index\tprediction\n0\tentailment\n0\tneutral\n",  # repeated index, illegal label
        "SST-2.tsv": "idx\tlabel\n0\t1\n",  # wrong header
        "STS-B.tsv": "index\tprediction\n0\t5.5\nx\t1.0\n1\t2\t3\n",  # out of range, bad index, 3 fields
        "notes.txt": "hi",
    })
    problems = validate_submission(bad, {"RTE.tsv": 3, "QQP.tsv": 10})
    text = "\n".join(problems)
    for expected in ["RTE.tsv:3: index 0 repeated", "RTE.tsv:3: prediction 'neutral'", "RTE.tsv: 2 rows, expected 3",
                     "SST-2.tsv:1: expected the header", "STS-B.tsv:2: prediction '5.5' is not a score in [0, 5]",
                     "STS-B.tsv:3: index 'x' is not an integer", "STS-B.tsv:4: expected 2 tab-separated fields",
                     "notes.txt: not a GLUE submission file", "QQP.tsv: missing from the zip"]:
        assert expected in text, (expected, problems)
    assert validate_submission(tmp_path / "nothing.zip") != []


def test_error_line_prefers_the_harness_error():
    out = "loading...\nerror: training.lr: expected float, got 'x'\n"
    assert lb._error_line(out, 2) == "error: training.lr: expected float, got 'x' (exit code 2)"
    assert lb._error_line("Traceback ...\nKilled", -9) == "Killed (exit code -9)"
    assert lb._error_line("", 1) == "no output (exit code 1)"


def test_script_is_a_thin_wrapper(tmp_path):
    proc = subprocess.run([sys.executable, str(REPO / "scripts/glue_leaderboard.py"), "--help"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and "--collect" in proc.stdout and "--runs-dir" in proc.stdout


def _cli_has_leaderboard() -> bool:
    import harness.cli

    return "leaderboard" in Path(harness.cli.__file__).read_text()


@pytest.mark.skipif(not _cli_has_leaderboard(), reason="`harness leaderboard` is not wired into harness/cli.py yet")
def test_harness_leaderboard_subcommand(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "harness", "leaderboard", "--help"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and "--collect" in proc.stdout, proc.stderr
    proc = subprocess.run([sys.executable, "-m", "harness", "leaderboard", "--runs-dir", str(tmp_path)],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and "--recipe is required" in proc.stderr
