"""Evaluation that cannot mislead: test splits are scored once, at the end; a model's classes are matched to
the task's by name; a saved model evaluates on data without a train split; the report draws what it says."""

from __future__ import annotations

import json

import numpy as np
import pytest
import yaml
from testkit import one_error, reset_accelerate

from harness.cli import main
from harness.data.base import ClassificationTask, TaskInfo
from harness.errors import DataError

WORDS = {"pos": "good great fine nice", "neg": "bad awful poor dull", "up": "good great", "down": "bad poor"}


def write_tsv(path, n, seed, labels=("pos", "neg")):
    rng = np.random.default_rng(seed)
    rows = ["text\tlabel"]
    for i in range(n):
        label = labels[i % len(labels)]
        words = rng.choice(WORDS[label].split(), size=4).tolist() + rng.choice(["film", "plot", "the"], 2).tolist()
        rows.append(f"{' '.join(rng.permutation(words))}\t{label}")
    path.write_text("\n".join(rows) + "\n")
    return path


@pytest.fixture
def tsv(tmp_path):
    return {s: str(write_tsv(tmp_path / f"{s}.tsv", n, i)) for i, (s, n) in enumerate(
        (("train", 96), ("validation", 24), ("test", 24)))}


def recipe(tmp_path, tsv, name="run", **sections):
    body = {"output_dir": str(tmp_path / name), "seed": 1,
            "data": {"component": "text_classification", "train_file": tsv["train"],
                     "validation_file": tsv["validation"], "test_file": tsv["test"], "label_names": ["neg", "pos"]},
            "model": {"component": "bert_from_scratch", "hidden_size": 16, "num_layers": 1, "num_heads": 2},
            "training": {"lr": 3e-3, "batch_size": 16, "num_epochs": 3, "log_steps": 2, "eval_steps": 6},
            "evaluation": {"splits": ["validation", "test"]}, "tracking": {"report_to": []}}
    body.update(sections)
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(body))
    return path


def history(out):
    return [json.loads(line) for line in (out / "logs" / "history.jsonl").read_text().splitlines()]


def test_test_splits_are_scored_once_at_the_end(tmp_path, tsv, fresh_accelerate):
    assert main(["train", str(recipe(tmp_path, tsv))]) == 0
    out = tmp_path / "run"
    evals = [r["eval"] for r in history(out) if "eval" in r]
    assert evals and all(not k.startswith("test/") for e in evals for k in e)  # no test curve to choose on
    metrics = json.loads((out / "metrics.json").read_text())
    assert "test/accuracy" in metrics and "validation/accuracy" in metrics  # the chosen checkpoint's test score
    report = (out / "report.md").read_text()
    assert "| test/accuracy |" in report and "test/accuracy |" not in report.split("## Evaluations during training")[1]

    reset_accelerate()  # asked for explicitly, test is evaluated during training too
    assert main(["train", str(recipe(tmp_path, tsv, "peek", evaluation={"splits": ["validation", "test"],
                                                                       "test_during_training": True}))]) == 0
    assert any(k.startswith("test/") for r in history(tmp_path / "peek") if "eval" in r for k in r["eval"])


def test_choosing_the_checkpoint_on_test_is_refused(tmp_path, tsv, capsys):
    path = recipe(tmp_path, tsv, evaluation={"splits": ["validation", "test"], "metric_for_best": "test/accuracy"})
    assert main(["validate", str(path)]) == 2
    assert "selects the model on test data" in capsys.readouterr().err


def test_a_models_classes_are_matched_to_the_tasks_by_name():
    info = TaskInfo(name="t", problem_type="single_label_classification", label_names=["neg", "pos"])
    from datasets import Dataset, DatasetDict

    task = ClassificationTask(info, DatasetDict({"train": Dataset.from_dict({"text": ["a"], "label": [0]}),
                                                 "validation": Dataset.from_dict({"text": ["a"], "label": [0]})}))

    class Model:
        def __init__(self, id2label):
            self.config = type("C", (), {"id2label": id2label})()

    logits = np.array([[2.0, 0.0], [0.0, 2.0]])  # the model says: its class 0, then its class 1
    task.configure_for(Model({0: "neg", 1: "pos"}))
    assert task.predictions_from_logits(logits).tolist() == [0, 1]
    task.configure_for(Model({0: "pos", 1: "neg"}))  # same classes, other order: read by name
    assert task.predictions_from_logits(logits).tolist() == [1, 0]
    task.configure_for(Model({"0": "LABEL_0", "1": "LABEL_1"}))  # unnamed: nothing to check
    assert task.predictions_from_logits(logits).tolist() == [0, 1]
    with pytest.raises(DataError, match=r"the model's classes are not the task's .*only in the model: \['maybe'\]"):
        task.configure_for(Model({0: "neg", 1: "maybe"}))


def test_a_saved_model_evaluated_on_data_in_another_label_order_scores_the_same(tmp_path, tsv, fresh_accelerate,
                                                                               capsys):
    path = recipe(tmp_path, tsv)
    assert main(["train", str(path)]) == 0
    first = json.loads((tmp_path / "run" / "metrics.json").read_text())
    reset_accelerate()
    assert main(["eval", str(path), "data.label_names=[pos,neg]"]) == 0  # class ids swapped in the data
    again = json.loads((tmp_path / "run" / "eval" / "metrics.json").read_text())
    assert again["validation/accuracy"] == pytest.approx(first["validation/accuracy"])
    reset_accelerate()
    write_tsv(tmp_path / "other.tsv", 8, 5, labels=("up", "down"))
    assert main(["eval", str(path), f"data.validation_file={tmp_path / 'other.tsv'}", "data.label_names=[down,up]",
                 "evaluation.splits=[validation]", f"data.test_file={tmp_path / 'other.tsv'}"]) == 2
    assert "the model's classes are not the task's" in one_error(capsys.readouterr().err)


def test_a_saved_model_evaluates_on_glue_data_without_a_train_file(tmp_path, fresh_accelerate, capsys):
    rte = tmp_path / "glue" / "RTE"
    rte.mkdir(parents=True)
    header = "index\tsentence1\tsentence2\tlabel\n"
    rows = [f"{i}\tA man {w}.\tA person {w}.\t{'entailment' if i % 2 else 'not_entailment'}" for i, w in
            enumerate("runs walks sits eats reads sings".split())]
    (rte / "train.tsv").write_text(header + "\n".join(rows) + "\n")
    (rte / "dev.tsv").write_text(header + "\n".join(rows[:4]) + "\n")
    body = {"output_dir": str(tmp_path / "run"), "data": {"component": "glue", "task": "rte",
                                                          "data_dir": str(tmp_path / "glue")},
            "model": {"component": "bert_from_scratch", "hidden_size": 16, "num_layers": 1, "num_heads": 2},
            "training": {"max_steps": 2, "batch_size": 4}, "tracking": {"report_to": []}}
    path = tmp_path / "rte.yaml"
    path.write_text(yaml.safe_dump(body))
    assert main(["train", str(path)]) == 0
    (rte / "train.tsv").unlink()  # a held-out set: dev (and test) only
    reset_accelerate()
    assert main(["eval", str(path)]) == 0
    assert "validation/accuracy" in json.loads((tmp_path / "run" / "eval" / "metrics.json").read_text())
    reset_accelerate()
    body["output_dir"] = str(tmp_path / "again")
    path.write_text(yaml.safe_dump(body))
    assert main(["train", str(path)]) == 2  # training still needs it
    assert "train.tsv: file not found" in one_error(capsys.readouterr().err)


def test_the_report_draws_the_series_it_names(tmp_path):
    from harness import report

    history = [{"step": s, "loss": 1.0 / s, "lr": 0.1 * s, "epoch": 0} for s in range(1, 11)]
    history += [{"step": 5, "epoch": 0, "eval": {"validation/loss": 0.4, "validation/accuracy": 0.6,
                                                 "test/loss": 0.5, "test/accuracy": 0.5}},
                {"step": 10, "epoch": 1, "eval": {"validation/loss": 0.3, "validation/accuracy": 0.7,
                                                  "validation/PER/f1": 0.1}}]
    throughput = [{"step": s, "tokens": 100 * s, "seconds": 0.5 * s} for s in range(1, 11)]
    assert report.plot_loss(history, tmp_path / "loss.png") == [
        "train loss", "train loss (smoothed)", "test loss", "validation loss"]
    assert report.plot_eval_metrics(history, tmp_path / "metrics.png") == ["accuracy"]
    assert report.plot_schedule(history, throughput, tmp_path / "schedule.png") == ["learning rate", "tokens / s"]
    for name in ("loss.png", "metrics.png", "schedule.png"):
        assert (tmp_path / name).stat().st_size > 1000
    # a run of one step still draws its point
    assert report.plot_loss([{"step": 1, "loss": 0.7}], tmp_path / "one.png") == ["train loss"]
    lines = report.confusion_section("validation", ["neg", "pos"], [0, 0, 1, 1, 1], [0, 1, 1, 1, 0], tmp_path)
    assert "| neg | 1 | 1 |" in lines and "| pos | 1 | 2 |" in lines and (tmp_path / "confusion_matrix.png").is_file()
    assert report.scatter_section("validation", [0.0, 2.5, 5.0], [0.5, 2.0, 4.0], tmp_path)[-1].endswith(".png)")
    assert "| PER | 0.8 | 0.5 | 0.6154 | 12 |" in report.per_type_section(
        "validation", {"validation/PER/precision": 0.8, "validation/PER/recall": 0.5, "validation/PER/f1": 8 / 13,
                       "validation/PER/number": 12.0, "validation/overall_f1": 0.6})


def test_numbers_read_as_numbers_and_json_has_no_infinity(tmp_path):
    from harness import report

    assert [report._fmt(v) for v in (4.0, 552.7, 0.69184, 113.0912, 12345.678, 31529.3, 0.00012, 20544, True)] == [
        "4", "552.7", "0.6918", "113.09", "12,345.7", "31,529.3", "0.00012", "20,544", "True"]
    report.write_metrics(tmp_path / "m.json", {"test/perplexity": float("inf"), "x": float("nan"), "y": 1.5})
    text = (tmp_path / "m.json").read_text()
    assert "Infinity" not in text and "NaN" not in text
    assert json.loads(text) == {"test/perplexity": None, "x": None, "y": 1.5}
