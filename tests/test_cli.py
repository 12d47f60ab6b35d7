"""The command line: bad input ends with one ``error:`` message and exit code 2, no traceback
unless ``--debug``."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from testkit import tiny_yaml

ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_EVALUATE_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false",
       "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}

def good_text(out: Path) -> str:
    """The shared tiny recipe as YAML, writing into ``out``."""
    return tiny_yaml(output_dir=str(out), data={"component": "synthetic_classification", "num_train": 16,
                                                 "num_validation": 8})


def write(path: Path, text: str) -> Path:
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def harness(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "harness", *map(str, args)], cwd=cwd, env=ENV,
                          capture_output=True, text=True, timeout=120)


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("error:")]


@pytest.fixture
def good(tmp_path) -> Path:
    return write(tmp_path / "good.yaml", good_text(tmp_path / "runs" / "good"))


@pytest.fixture
def bad(tmp_path) -> Path:
    text = good_text(tmp_path / "runs" / "bad").replace("  lr: 0.0005", "  lrr: 0.0005")
    assert "lrr" in text
    return write(tmp_path / "bad.yaml", text)


# ------------------------------------------------------------------------------------ validate


def test_validate_good_recipe(tmp_path, good):
    r = harness("validate", good, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == f"ok: {good}"
    assert "error" not in r.stderr and "Traceback" not in r.stderr


def test_validate_bad_recipe(tmp_path, bad):
    r = harness("validate", bad, cwd=tmp_path)
    assert r.returncode == 2
    assert error_lines(r.stderr) == [f"error: {bad}: invalid recipe:"]
    assert "  training.lrr: unknown key (did you mean 'lr'?)" in r.stderr.splitlines()
    assert "Traceback" not in r.stderr
    assert r.stdout == ""
    assert not (tmp_path / "runs").exists()


def test_validate_many_reports_each_recipe(tmp_path, good, bad):
    broken = write(tmp_path / "broken.yaml", "output_dir: x\ntraining:\n  lr: [1\n")
    r = harness("validate", good, bad, broken, tmp_path / "missing.yaml", cwd=tmp_path)
    assert r.returncode == 2
    assert r.stdout.strip() == f"ok: {good}"
    errors = error_lines(r.stderr)
    assert len(errors) == 3, r.stderr
    assert errors[0] == f"error: {bad}: invalid recipe:"
    assert errors[1].startswith(f"error: {broken}: {broken}:") and "not valid YAML" in errors[1]
    assert errors[2].startswith(f"error: {tmp_path / 'missing.yaml'}: recipe not found")
    assert "Traceback" not in r.stderr


def test_validate_applies_overrides_to_each_recipe(tmp_path, good, bad):
    r = harness("validate", good, bad, "training.lr=3e-4", "optimizer.component=adam", cwd=tmp_path)
    assert r.returncode == 2
    assert r.stdout == ""
    assert error_lines(r.stderr) == [f"error: {good}: invalid recipe:", f"error: {bad}: invalid recipe:"]
    problems = [line.strip() for line in r.stderr.splitlines() if not line.startswith("error:")]
    optimizer = ("optimizer.component: unknown optimizer component 'adam' (did you mean 'adamw'?); "
                 "registered: adamw, adamw_layerwise, sgd")
    assert problems == [optimizer, "training.lrr: unknown key (did you mean 'lr'?)", optimizer]


def test_validate_with_only_overrides_is_an_error(tmp_path):
    r = harness("validate", "training.lr=3e-4", cwd=tmp_path)
    assert r.returncode == 2
    assert error_lines(r.stderr) == ["error: no recipe to validate (only overrides: training.lr=3e-4)"]


def test_validate_debug_shows_traceback(tmp_path, bad):
    r = harness("--debug", "validate", bad, cwd=tmp_path)
    assert r.returncode != 0
    assert "Traceback" in r.stderr and "RecipeError" in r.stderr and "training.lrr" in r.stderr


def test_refused_component_is_not_imported(tmp_path):
    marker = tmp_path / "imported"
    evil = write(tmp_path / "evil_component.py", f"open({str(marker)!r}, 'w').close()\ndef run(): pass\n")
    recipe = write(tmp_path / "evil.yaml", good_text(tmp_path / "runs" / "evil").replace(
        "component: synthetic_classification", f"component: {evil.stem}:run"))
    r = harness("validate", recipe, cwd=tmp_path)  # evil_component.py is importable from cwd
    assert r.returncode == 2
    assert "data.component: unknown data component 'evil_component:run'" in r.stderr
    assert not marker.exists()


# ------------------------------------------------------------------------------------ train


def test_train_with_unknown_key_stops_before_output_dir(tmp_path, bad):
    r = harness("train", bad, cwd=tmp_path)
    assert r.returncode == 2
    assert error_lines(r.stderr) == ["error: invalid recipe:"]
    assert "training.lrr: unknown key (did you mean 'lr'?)" in r.stderr
    assert "Traceback" not in r.stderr
    assert not (tmp_path / "runs" / "bad").exists()


def test_train_override_error_stops_before_output_dir(tmp_path, good):
    r = harness("train", good, "model.hidden=8", cwd=tmp_path)
    assert r.returncode == 2
    assert "model.hidden: unknown key (did you mean 'hidden_size'?)" in r.stderr
    assert "Traceback" not in r.stderr
    assert not (tmp_path / "runs" / "good").exists()


def test_train_debug_shows_traceback(tmp_path, bad):
    r = harness("train", bad, "--debug", cwd=tmp_path)  # (validate tests the flag before the command)
    assert r.returncode != 0
    assert "Traceback" in r.stderr
    assert "harness.errors.RecipeError: invalid recipe:" in r.stderr and "training.lrr" in r.stderr
    assert not (tmp_path / "runs" / "bad").exists()


def test_train_data_error_is_one_line(tmp_path, good):
    """A DataError raised by the data component (after validation): one line naming the file, exit 2."""
    missing = tmp_path / "no_such_train.tsv"
    recipe = write(tmp_path / "missing_data.yaml", good.read_text().replace(
        "component: synthetic_classification\n  num_train: 16\n  num_validation: 8",
        f"component: text_classification\n  train_file: {missing}\n  validation_file: {missing}"))
    r = harness("train", recipe, cwd=tmp_path)
    assert r.returncode == 2, r.stderr
    assert error_lines(r.stderr) == [f"error: data file not found: {missing}"]
    assert "Traceback" not in r.stderr
