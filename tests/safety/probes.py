"""Helpers of the safety probes (imported by each file): a folder that already holds a finished run, to check
that nothing is lost; the tiny recipe as a file; the one error line of a command."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from conftest import tiny_recipe

EARLIER = {"metrics.json": '{"validation/accuracy": 0.9}\n', "report.md": "# the earlier run\n",
           "recipe.yaml": "name: earlier\n", "model/model.safetensors": "weights",
           "checkpoints/checkpoint-8/trainer_state.json": '{"global_step": 8}'}


@pytest.fixture
def earlier_run(tmp_path) -> Path:
    """``tmp_path/run`` holding a finished run's files; ``unchanged(folder)`` checks them afterwards."""
    out = tmp_path / "run"
    for name, text in EARLIER.items():
        (out / name).parent.mkdir(parents=True, exist_ok=True)
        (out / name).write_text(text)
    return out


def unchanged(out: Path) -> bool:
    return all((out / name).is_file() and (out / name).read_text() == text for name, text in EARLIER.items())


def recipe_file(tmp_path: Path, name: str = "recipe", **sections) -> Path:
    """The shared tiny recipe (output_dir ``tmp_path/run``) as a file, with sections replaced."""
    body = tiny_recipe(**{"output_dir": str(tmp_path / "run"), **sections})
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(body, sort_keys=False))
    return path


def one_error(err: str) -> str:
    """The single ``error:`` line of a command's stderr (asserting there is exactly one)."""
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, err
    assert "Traceback" not in err, err
    return lines[0]


def metrics(out: Path) -> dict:
    return json.loads((out / "metrics.json").read_text())
