"""Shared fixtures: offline environment, a tiny recipe writer, and a subprocess runner."""

from __future__ import annotations

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
