"""Shared fixtures: offline environment, the one tiny recipe, a recipe writer, a fresh Accelerate state for
in-process runs, and a subprocess runner."""

from __future__ import annotations

import copy
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_EVALUATE_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

REPO = Path(__file__).resolve().parent.parent
TINY = REPO / "recipes" / "tiny" / "synthetic_bert.yaml"

#: the smallest valid recipe — a 1-layer BERT from scratch on 32 generated sentences — that the recipe,
#: schema and command-line tests start from (:func:`tiny_recipe`); the training tests extend ``TINY``
TINY_RECIPE = {
    "output_dir": "runs/tiny",
    "seed": 1,
    "data": {"component": "synthetic_classification", "num_train": 32, "num_validation": 8},
    "model": {"component": "bert_from_scratch", "hidden_size": 16, "num_layers": 1, "num_heads": 2},
    "training": {"lr": 5e-4, "batch_size": 8},
    "tracking": {"report_to": []},
}


def tiny_recipe(**sections) -> dict:
    """A copy of :data:`TINY_RECIPE` with some top-level sections replaced (``None`` removes one)."""
    out = copy.deepcopy(TINY_RECIPE)
    for key, value in sections.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = value
    return out


def tiny_yaml(**sections) -> str:
    return yaml.safe_dump(tiny_recipe(**sections), sort_keys=False)


@pytest.fixture
def fresh_accelerate():
    """Accelerate keeps process-wide singletons (its state, the gradient state): start and leave an
    in-process run with none, so runs in one pytest process do not see each other's settings."""
    from accelerate.state import AcceleratorState, GradientState, PartialState

    for state in (AcceleratorState, GradientState, PartialState):
        state._reset_state()
    yield
    for state in (AcceleratorState, GradientState, PartialState):
        state._reset_state()


def child_env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update({"HF_HUB_OFFLINE": "1", "HF_EVALUATE_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false",
                "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"})
    env.update(extra)
    return env


@pytest.fixture
def write_recipe(tmp_path):
    """Write a recipe that extends the tiny synthetic one, with ``output_dir`` under tmp_path."""

    def write(name: str = "recipe", base: Path = TINY, **sections) -> Path:
        body = {"extends": str(base), "output_dir": str(tmp_path / name), "tracking": {"report_to": []}}
        for key, value in sections.items():
            body[key] = value
        path = tmp_path / f"{name}.yaml"
        path.write_text(yaml.safe_dump(body))
        return path

    return write


def run_harness(*args: str, timeout: float = 300, launcher: list[str] | None = None, **kwargs) -> subprocess.CompletedProcess:
    cmd = (launcher or [sys.executable, "-m", "harness"]) + list(args)
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=child_env(), cwd=REPO, **kwargs)


def load_script(name: str):
    """Import ``scripts/<name>.py`` as a module (the scripts are not a package)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(name, REPO / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
