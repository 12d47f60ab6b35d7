"""Exact resume after SIGKILL mid-epoch, and atomic checkpoints."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
from testkit import REPO, child_env, run_harness
from safetensors.torch import load_file

from harness.training.rundir import LOCK, _alive

TIMING = ("seconds", "tokens_per_second", "wall_seconds")

TRAINING = {
    "num_epochs": 6,  # 16 steps per epoch → 96 steps
    "eval_steps": 6,  # 6 does not divide 16: most checkpoints fall mid-epoch
    "save_total_limit": 3,
    "log_steps": 2,
    "warmup_ratio": 0.1,
}


def _weights(run: Path) -> dict:
    return load_file(str(run / "model" / "model.safetensors"))


def _metrics(run: Path) -> dict:
    m = json.loads((run / "metrics.json").read_text())
    return {k: v for k, v in m.items() if not k.endswith(TIMING)}


def _steps(ckpts: Path) -> list[int]:
    return sorted(int(p.name.split("-")[1]) for p in ckpts.glob("checkpoint-*")) if ckpts.is_dir() else []


def _kill_after_checkpoint(child, ckpts: Path, after: int, kill) -> None:
    """``kill()`` the run once it has written a checkpoint past step ``after``; it must not have finished first."""
    deadline = time.time() + 240
    while time.time() < deadline and child.poll() is None and not any(s > after for s in _steps(ckpts)):
        time.sleep(0.01)
    kill()
    child.wait()
    assert child.returncode == -signal.SIGKILL, "the run finished before it could be killed; make it longer"


@pytest.mark.slow  # a subprocess end-to-end run; the default suite covers it in-process
def test_sigkill_mid_epoch_then_resume_matches_uninterrupted(write_recipe, tmp_path):
    full = write_recipe("full", training=TRAINING)
    proc = run_harness("train", str(full))
    assert proc.returncode == 0, proc.stderr[-3000:]

    killed = write_recipe("killed", training=TRAINING)
    ckpts = tmp_path / "killed" / "checkpoints"
    child = subprocess.Popen(
        [sys.executable, "-m", "harness", "train", str(killed)],
        cwd=REPO, env=child_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    # kill once a checkpoint past the first epoch exists: the run is then mid-epoch 2 or later
    _kill_after_checkpoint(child, ckpts, 16, lambda: child.send_signal(signal.SIGKILL))
    assert not (tmp_path / "killed" / "metrics.json").exists()
    last = max(_steps(ckpts))
    assert last % 16 != 0 or last < 96

    proc = run_harness("train", str(killed), "training.resume=auto")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "resumed from" in proc.stdout + proc.stderr

    a, b = _weights(tmp_path / "full"), _weights(tmp_path / "killed")
    assert a.keys() == b.keys()
    for k in a:
        assert (a[k] == b[k]).all(), f"weight {k} differs after resume"
    assert _metrics(tmp_path / "full") == _metrics(tmp_path / "killed")
    # the loss history was cut back to the checkpoint and continued: same rows as the full run
    hist = lambda r: [json.loads(l) for l in (tmp_path / r / "logs" / "history.jsonl").read_text().splitlines()]
    assert hist("full") == hist("killed")


@pytest.mark.slow  # a subprocess end-to-end run; the default suite covers it in-process
def test_training_over_an_earlier_run_is_refused(write_recipe, tmp_path):
    recipe = write_recipe("run", training={"num_epochs": 1})
    assert run_harness("train", str(recipe)).returncode == 0
    before = (tmp_path / "run" / "metrics.json").read_bytes()
    proc = run_harness("train", str(recipe))
    assert proc.returncode == 2
    assert "already holds a run" in proc.stderr and "Traceback" not in proc.stderr
    assert (tmp_path / "run" / "metrics.json").read_bytes() == before
    # asked to overwrite: the earlier run's checkpoints and log rows do not mix into the new one
    (tmp_path / "run" / "checkpoints" / "checkpoint-999").mkdir()
    proc = run_harness("train", str(recipe), "training.overwrite=true", "training.max_steps=3", "training.eval_steps=3")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert sorted(p.name for p in (tmp_path / "run" / "checkpoints").iterdir()) == ["checkpoint-3"]
    rows = (tmp_path / "run" / "logs" / "history.jsonl").read_text().splitlines()
    assert max(json.loads(r)["step"] for r in rows) == 3


@pytest.mark.slow  # two 2-process gloo runs and a killed one (~40 s)
def test_ddp_sigkill_mid_epoch_then_resume_matches_uninterrupted(write_recipe, tmp_path):
    """Exact resume under DDP: both processes killed mid-epoch, resumed from the last checkpoint, end with the
    weights, metrics and history of an uninterrupted two-process run (each process's data shard, RNG and
    dropout streams restored)."""
    training = {"num_epochs": 5, "eval_steps": 3, "save_total_limit": 3, "log_steps": 1, "warmup_ratio": 0.1}
    per_epoch, total = 8, 40  # 512 examples / (32 × 2 processes); dropout 0.1, so each process's RNG matters

    def launcher(port: int) -> list[str]:
        return [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
                "--num_machines", "1", "--main_process_port", str(port), str(REPO / "harness" / "run.py")]

    full = write_recipe("full", training=training)
    proc = subprocess.run(launcher(29531) + [str(full)], capture_output=True, text=True, timeout=300,
                          env=child_env(), cwd=REPO)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert json.loads((tmp_path / "full" / "metrics.json").read_text())["train/global_step"] == total

    killed = write_recipe("killed", training=training)
    ckpts = tmp_path / "killed" / "checkpoints"
    child = subprocess.Popen(launcher(29532) + [str(killed)], cwd=REPO, env=child_env(), start_new_session=True,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    def kill_all() -> None:
        """The launcher and both workers at once (a crashed machine). torch's elastic agent starts each worker
        in its own session, so killing the launcher's process group would leave them running."""
        workers = psutil.Process(child.pid).children(recursive=True)
        for p in [psutil.Process(child.pid), *workers]:
            p.send_signal(signal.SIGKILL)
        deadline = time.time() + 60  # gone, or zombies where nothing reaps them
        while any(_alive(p.pid) for p in workers) and time.time() < deadline:
            time.sleep(0.05)

    _kill_after_checkpoint(child, ckpts, per_epoch, kill_all)
    holder = json.loads((tmp_path / "killed" / LOCK).read_text())["pid"]
    assert not _alive(holder)
    assert not (tmp_path / "killed" / "metrics.json").exists()
    last = max(_steps(ckpts))
    assert last % per_epoch != 0 and last < total, last  # mid-epoch

    proc = subprocess.run(launcher(29533) + [str(killed), "training.resume=auto"], capture_output=True, text=True,
                          timeout=300, env=child_env(), cwd=REPO)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "resumed from" in proc.stdout + proc.stderr

    a, b = _weights(tmp_path / "full"), _weights(tmp_path / "killed")
    assert a.keys() == b.keys()
    for k in a:
        assert (a[k] == b[k]).all(), f"weight {k} differs after resume under DDP"
    assert _metrics(tmp_path / "full") == _metrics(tmp_path / "killed")
    hist = lambda r: [json.loads(l) for l in (tmp_path / r / "logs" / "history.jsonl").read_text().splitlines()]
    assert hist("full") == hist("killed")
