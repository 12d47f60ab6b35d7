"""Bad values are refused by ``harness validate`` / ``harness train`` before any data is read: exit code 2,
one ``error:`` line naming the recipe, each problem with its key path, and an earlier run in the output
folder untouched. (Issue 12's probe, "refused at validation" group.)"""

from __future__ import annotations

import pytest
from testkit import one_error, recipe_file, unchanged

from harness.cli import main


def run_cli(capsys, *args) -> tuple[int, str]:
    code = main(list(map(str, args)))
    return code, capsys.readouterr().err


@pytest.mark.parametrize("key, value, message", [
    ("num_epochs", 0, "training.num_epochs: expected a number > 0.0, got 0.0"),
    ("num_epochs", -2, "training.num_epochs: expected a number > 0.0, got -2.0"),
    ("num_epochs", float("nan"), "training.num_epochs: expected a finite number, got nan"),
    ("batch_size", 0, "training.batch_size: expected a number ≥ 1, got 0"),
    ("batch_size", -8, "training.batch_size: expected a number ≥ 1, got -8"),
    ("eval_batch_size", 0, "training.eval_batch_size: expected a number ≥ 1, got 0"),
    ("gradient_accumulation_steps", 0, "training.gradient_accumulation_steps: expected a number ≥ 1, got 0"),
    ("log_steps", 0, "training.log_steps: expected a number ≥ 1, got 0"),
    ("eval_steps", 0, "training.eval_steps: expected a number ≥ 1, got 0"),
    ("save_steps", -1, "training.save_steps: expected a number ≥ 1, got -1"),
    ("save_total_limit", 0, "training.save_total_limit: expected a number ≥ 1, got 0"),
    ("max_steps", 0, "training.max_steps: expected a number ≥ 1, got 0"),
    ("max_length", 0, "training.max_length: expected a number ≥ 1, got 0"),
    ("lr", -1e-3, "training.lr: expected a number ≥ 0.0, got -0.001"),
    ("lr", float("nan"), "training.lr: expected a finite number, got nan"),
    ("lr", float("inf"), "training.lr: expected a finite number, got inf"),
    ("weight_decay", -0.1, "training.weight_decay: expected a number ≥ 0.0, got -0.1"),
    ("max_grad_norm", -1.0, "training.max_grad_norm: expected a number ≥ 0.0, got -1.0"),
    ("warmup_ratio", 1.5, "training.warmup_ratio: expected a number ≥ 0.0 and ≤ 1.0, got 1.5"),
    ("warmup_ratio", -0.1, "training.warmup_ratio: expected a number ≥ 0.0 and ≤ 1.0, got -0.1"),
    ("warmup_steps", -1, "training.warmup_steps: expected a number ≥ 0, got -1"),
    ("num_workers", -1, "training.num_workers: expected a number ≥ 0, got -1"),
    ("pad_to_multiple_of", 0, "training.pad_to_multiple_of: expected a number ≥ 1, got 0"),
    ("early_stopping_patience", -1, "training.early_stopping_patience: expected a number ≥ 0, got -1"),
    ("batch_size", "8", "training.batch_size: expected an integer, got '8' (str)"),
    ("lr", "fast", "training.lr: expected a number, got 'fast' (str)"),
])
def test_a_bad_training_value_is_refused_before_anything_runs(tmp_path, capsys, earlier_run, key, value, message):
    path = recipe_file(tmp_path, training={"lr": 5e-4, "batch_size": 8, key: value},
                       output_dir=str(earlier_run))
    for command in ("validate", "train"):
        code, err = run_cli(capsys, command, path)
        assert code == 2, err
        assert one_error(err).endswith("invalid recipe:")
        assert f"  {message}" in err.splitlines(), err
    assert unchanged(earlier_run)


@pytest.mark.parametrize("sections, message", [
    ({"output_dir": ""}, "output_dir: empty (the run would write into the current folder); name a folder"),
    ({"evaluation": {"metric_for_best": "f2"}}, "evaluation.metric_for_best: 'f2' is not a metric this task reports"),
    ({"evaluation": {"metric_for_best": "test/accuracy", "splits": ["validation"]}},
     "evaluation.metric_for_best: split 'test' is not evaluated"),
    ({"tracking": {"report_to": ["wandbb"]}}, "tracking.report_to[0]: unknown tracker 'wandbb'"),
    ({"training": {"learning_rate": 1e-3}}, "training.learning_rate: unknown key (the Hugging Face TrainingArguments"),
    ({"training": {"optimizer": "sgd"}}, "training.optimizer: unknown key (moved to the optimizer section"),
    ({"optimizer": {"component": "adam"}}, "optimizer.component: unknown optimizer component 'adam' (did you mean"),
    ({"loss": {"component": "cross_entropy", "label_smoothing": 2}}, "loss.label_smoothing: expected a number in [0, 1)"),
    ({"callbacks": [{"component": "early_stopping", "patience": 0}]}, "callbacks[0].patience: expected an integer ≥ 1"),
    ({"generation": {"num_beams": 0}}, "generation.num_beams: expected a number >= 1, got 0"),
    ({"generation": {"top_p": 1.5}}, "generation.top_p: expected a number > 0.0 and <= 1.0, got 1.5"),
    ({"data": {"component": "harness.data.glue:glue", "task": "rte"}},
     "data.component: unknown data component 'harness.data.glue:glue'"),
    ({"model": {"component": "pretrained_classifier", "checkpoint": "x", "trust_remote_code": True}},
     "model.trust_remote_code: true would run the Python code that comes with the checkpoint"),
])
def test_a_bad_section_is_refused_with_its_key_path(tmp_path, capsys, earlier_run, sections, message):
    sections.setdefault("output_dir", str(earlier_run))
    path = recipe_file(tmp_path, **sections)
    code, err = run_cli(capsys, "train", path)
    assert code == 2, err
    assert one_error(err) == "error: invalid recipe:"
    assert any(line.strip().startswith(message) for line in err.splitlines()), err
    assert unchanged(earlier_run)


def test_a_tracker_that_is_not_installed_is_refused(tmp_path, capsys, earlier_run):
    import importlib.util

    missing = next((t for t in ("wandb", "comet_ml", "mlflow", "aim", "clearml") if importlib.util.find_spec(t) is None),
                   None)
    if missing is None:
        pytest.skip("every tracker is installed here")
    code, err = run_cli(capsys, "train", recipe_file(tmp_path, tracking={"report_to": [missing]},
                                                    output_dir=str(earlier_run)))
    assert code == 2 and f"tracking.report_to[0]: {missing!r} is not installed" in err
    assert unchanged(earlier_run)


def test_trust_remote_code_needs_the_command_line(tmp_path, capsys, monkeypatch):
    from harness.config.schema import TRUST_REMOTE_CODE_ENV

    monkeypatch.delenv(TRUST_REMOTE_CODE_ENV, raising=False)
    path = recipe_file(tmp_path, model={"component": "pretrained_classifier", "checkpoint": "x",
                                        "trust_remote_code": True})
    assert run_cli(capsys, "validate", path)[0] == 2
    code, err = run_cli(capsys, "validate", "--trust-remote-code", path)
    assert code == 0, err


def test_an_output_dir_that_is_a_file_is_refused(tmp_path, capsys):
    (tmp_path / "afile").write_text("keep me")
    code, err = run_cli(capsys, "train", recipe_file(tmp_path, output_dir=str(tmp_path / "afile")))
    assert code == 2 and "output_dir: " in err and "is a file, not a folder" in err
    assert (tmp_path / "afile").read_text() == "keep me"


@pytest.mark.parametrize("text, message", [
    ("output_dir: x\ntraining:\n  lr: 1\ntraining:\n  lr: 2\n", "key 'training' appears twice in one mapping (lines 2 and 4)"),
    ("output_dir: x\ndata: {component: glue, task: rte, task: mrpc}\n", "key 'task' appears twice in one mapping"),
    ("output_dir: ${env:HOME\n", "has an unterminated or empty ${...}"),
    ("output_dir: runs/${}\n", "has an unterminated or empty ${...}"),
    ("output_dir: !!python/object/apply:os.system [echo hi]\n", "not valid YAML"),
    ("output_dir: [unclosed\n", "not valid YAML"),
    ("- a list\n- not a recipe\n", "a recipe must be a mapping"),
])
def test_malformed_recipe_text_is_one_error_naming_the_file(tmp_path, capsys, text, message):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    code, err = run_cli(capsys, "validate", path)
    assert code == 2
    line = one_error(err)
    assert str(path) in line and message in err, err


def test_a_yaml_alias_bomb_is_refused_quickly(tmp_path, capsys):
    import time

    rows = ["a: &a [1,1,1,1,1,1,1,1,1]"] + [f"{c}: &{c} [{','.join(['*' + p] * 9)}]" for p, c in zip("abcdefgh", "bcdefghi")]
    path = tmp_path / "bomb.yaml"
    path.write_text("\n".join(rows) + "\n")
    t = time.perf_counter()
    code, err = run_cli(capsys, "validate", path)
    assert code == 2 and "refused as an alias bomb" in one_error(err)
    assert time.perf_counter() - t < 5


def test_a_few_aliases_are_fine(tmp_path, capsys):
    path = tmp_path / "ok.yaml"
    path.write_text(recipe_file(tmp_path).read_text().replace("  report_to: []", "  report_to: &none []")
                    + "evaluation:\n  predict_splits: *none\n")
    assert "*none" in path.read_text()
    code, err = run_cli(capsys, "validate", path)
    assert code == 0, err


@pytest.mark.parametrize("override, message", [
    ("training.lr=", "training.lr: expected a number, got '' (str)"),
    ("training.batch_size=0", "training.batch_size: expected a number ≥ 1, got 0"),
    ("training.nope=1", "training.nope: unknown key"),
    ("model.hidden=8", "model.hidden: unknown key (did you mean 'hidden_size'?)"),
    ("training.lr.x=1", "training.lr is a value, not a section"),
    ("notanoverride", "must look like key.path=value"),
])
def test_a_bad_override_is_refused_before_the_output_folder_is_touched(tmp_path, capsys, earlier_run, override, message):
    code, err = run_cli(capsys, "train", recipe_file(tmp_path, output_dir=str(earlier_run)), override)
    assert code == 2
    one_error(err)
    assert message in err, err
    assert unchanged(earlier_run) and not (earlier_run / ".harness.lock").exists()


def test_no_value_anywhere_makes_validation_crash():
    """Wrong types everywhere: validation answers with a RecipeError (or accepts), never a raw exception."""
    import dataclasses

    from testkit import tiny_recipe

    from harness.config.schema import EvaluationConfig, TrackingConfig, TrainingConfig, validate
    from harness.errors import RecipeError

    values = [None, "x", [], {}, -1, 0, 1.5, True, float("nan"), "1e3", [1, 2], {"a": 1}, "a/b/c"]
    cases = [{section: {f.name: v}} for section, cls in (("training", TrainingConfig), ("evaluation", EvaluationConfig),
                                                         ("tracking", TrackingConfig))
             for f in dataclasses.fields(cls) for v in values]
    cases += [{top: v} for top in ("seed", "name", "output_dir", "data", "model", "optimizer", "scheduler", "loss",
                                   "step", "callbacks", "generation", "peft") for v in values]
    cases += [{"optimizer": {"component": "adamw", "betas": v}} for v in values]
    cases += [{"generation": {"logits_processors": v}} for v in values]
    cases += [{"peft": {"method": "lora", "r": v}} for v in values]
    for case in cases:
        try:
            validate(tiny_recipe(**case))
        except RecipeError:
            pass
