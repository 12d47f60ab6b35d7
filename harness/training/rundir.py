"""A run's output folder: one writer at a time, and an earlier run replaced only once the new one is under way.

* **Lock.** ``output_dir/.harness.lock`` is created atomically (``O_EXCL``) by the run's main process and
  holds its pid, host, start time and command; a second run on the same folder is refused with the holder's
  details. A lock whose process is gone (same host, pid not running or a zombie — a run killed with SIGKILL)
  is stale: it is reported and taken over. A lock from another host cannot be checked and is reported with
  the way to remove it.
* **Earlier run.** A folder that holds a run is refused unless the recipe resumes it
  (``training.resume``) or replaces it (``training.overwrite=true``). Replacing moves the earlier run's
  files (``RUN_FILES``: recipe, metrics, report, plots, predictions, ``checkpoints/``, ``model/``,
  ``eval/``, ``logs/``) into ``output_dir/.replaced/``; the new run :meth:`RunDir.commit`\\ s when its
  training starts (its data and model are built), which deletes them; if it fails before that — a typo in
  a data path, a model that does not load — they are moved back. Nothing else in the folder is touched.
* **Resume.** :func:`resume_conflicts` compares the recipe a checkpoint was trained with and the one
  resuming it: a key the checkpoint fixes (data, model, optimizer, schedule, loss, batch size, …) cannot
  change; the others (evaluation, logging, checkpointing cadence, tracking, generation) may.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import json
import os
import shutil
import socket
import sys
import time
from pathlib import Path

from harness.errors import HarnessError

LOCK = ".harness.lock"
ASIDE = ".replaced"
#: what a run writes into its output folder (names or glob patterns)
RUN_FILES = ("recipe.yaml", "metrics.json", "report.md", "loss_curve.png", "gradient_norms.png",
             "gradient_norms.json", "predictions_*", "checkpoints", "model", "eval", "logs")


def _alive(pid: int) -> bool:
    """Whether ``pid`` is a running process on this host. A zombie is not: a run killed together with its
    launcher (``accelerate launch`` under SIGKILL) leaves its workers as zombies wherever nothing reaps them
    (a container whose pid 1 is not an init), and ``kill(pid, 0)`` still succeeds on those."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        pass
    try:  # Linux: the state is the field after the parenthesised command name
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except (OSError, IndexError):
        return True  # no procfs (macOS) or gone this instant: kill() said it was there
    return state not in ("Z", "X")


def _run_files(folder: Path) -> list[Path]:
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if any(fnmatch.fnmatch(p.name, pattern) for pattern in RUN_FILES))


def holds_a_run(folder: Path) -> bool:
    from harness.training import checkpoint as ckpt

    return bool(ckpt.list_checkpoints(folder / "checkpoints")) or (folder / "metrics.json").is_file()


class RunDir:
    """``with RunDir(path, overwrite=..., resume=..., main=...) as run_dir: ...; run_dir.commit()``."""

    def __init__(self, path: Path, *, overwrite: bool = False, resume: bool = False, main: bool = True,
                 check_earlier: bool = True):
        self.path = Path(path)
        self.overwrite, self.resume, self.main = overwrite, resume, main
        self.check_earlier = check_earlier
        self.locked = False
        self.aside: Path | None = None
        self.notes: list[str] = []

    # ------------------------------------------------------------------ lock

    def _lock(self) -> None:
        self.path.mkdir(parents=True, exist_ok=True)
        lock = self.path / LOCK
        record = {"pid": os.getpid(), "host": socket.gethostname(), "started": time.strftime("%Y-%m-%d %H:%M:%S"),
                  "command": " ".join(sys.argv)}
        for _ in range(2):
            try:
                fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                holder = self._holder(lock)
                if holder.get("host") == record["host"] and isinstance(holder.get("pid"), int) \
                        and not _alive(holder["pid"]):
                    self.notes.append(f"removed a stale lock: pid {holder['pid']} (started {holder.get('started')}) "
                                      f"is no longer running")
                    lock.unlink(missing_ok=True)
                    continue
                where = f"pid {holder.get('pid', '?')} on {holder.get('host', '?')}"
                hint = "" if holder.get("host") == record["host"] else \
                    f"; if that run is over, delete {lock}"
                raise HarnessError(f"output_dir {self.path} is in use by another run ({where}, started "
                                   f"{holder.get('started', '?')}: {holder.get('command', '?')}){hint}")
            with os.fdopen(fd, "w") as f:
                json.dump(record, f)
            self.locked = True
            return

    @staticmethod
    def _holder(lock: Path) -> dict:
        try:
            return json.loads(lock.read_text())
        except (OSError, ValueError):
            return {}

    # ------------------------------------------------------------------ the earlier run

    def __enter__(self) -> RunDir:
        if not self.main:
            return self
        self._lock()
        try:
            if self.check_earlier and not self.resume and holds_a_run(self.path) and not self.overwrite:
                raise HarnessError(f"output_dir {self.path} already holds a run; pass training.resume=auto to "
                                   f"continue it, training.overwrite=true to replace it, or another output_dir")
            earlier = _run_files(self.path)
            if self.overwrite and not self.resume and earlier:
                self.aside = self.path / ASIDE
                shutil.rmtree(self.aside, ignore_errors=True)  # left by a run that died mid-swap
                self.aside.mkdir()
                for p in earlier:
                    os.replace(p, self.aside / p.name)
        except BaseException:
            self._unlock()
            raise
        return self

    def commit(self) -> None:
        """The new run is under way: the earlier one's files go."""
        if self.aside is not None:
            shutil.rmtree(self.aside, ignore_errors=True)
            self.aside = None

    def _restore(self) -> None:
        for p in _run_files(self.path):  # what the failed run wrote
            shutil.rmtree(p) if p.is_dir() else p.unlink()
        for p in sorted(self.aside.iterdir()):
            os.replace(p, self.path / p.name)
        self.aside.rmdir()
        self.aside = None

    def _unlock(self) -> None:
        if self.locked:
            (self.path / LOCK).unlink(missing_ok=True)
            self.locked = False

    def __exit__(self, exc_type, exc, tb) -> None:
        try:
            if exc_type is not None and self.aside is not None:
                self._restore()
                print(f"the earlier run in {self.path} was put back (this run failed before training started)",
                      file=sys.stderr)
        finally:
            self._unlock()


# ---------------------------------------------------------------------- resume


#: recipe keys a checkpoint fixes: its weights, optimizer moments and schedule were made with these
FIXED_ON_RESUME = ("seed", "data.*", "model.*", "peft.*", "optimizer.*", "scheduler.*", "loss.*", "step.*",
                   "callbacks", "training.lr", "training.weight_decay", "training.batch_size",
                   "training.gradient_accumulation_steps", "training.num_epochs", "training.max_steps",
                   "training.warmup_steps", "training.warmup_ratio", "training.max_length", "training.group_by_length",
                   "training.pad_to_multiple_of")


def flat_recipe(recipe) -> dict:
    """A validated :class:`~harness.config.schema.Recipe` as ``{"training.lr": 0.001, "data.task": "rte", ...}``
    (JSON values), what a checkpoint records and a resume compares."""
    out: dict = {"seed": recipe.seed}
    for section in ("training", "evaluation", "tracking"):
        for key, value in dataclasses.asdict(getattr(recipe, section)).items():
            out[f"{section}.{key}"] = value
    out["data.component"], out["model.component"] = recipe.data_component, recipe.model_component
    for prefix, args in (("data", recipe.data_args), ("model", recipe.model_args), ("peft", recipe.peft or {}),
                         ("optimizer", recipe.optimizer), ("scheduler", recipe.scheduler), ("loss", recipe.loss or {}),
                         ("step", recipe.step or {}), ("generation", recipe.generation or {})):
        for key, value in args.items():
            out[f"{prefix}.{key}"] = value
    out["callbacks"] = recipe.callbacks
    return json.loads(json.dumps(out, default=str))  # tuples → lists, as the checkpoint's JSON holds them


def resume_conflicts(old: dict, new: dict) -> tuple[list[str], list[str]]:
    """(changes that cannot apply to a resumed run, as messages; keys that changed and apply)."""
    refused, applied = [], []
    for key in sorted(set(old) | set(new)):
        if key in ("training.resume", "training.overwrite") or old.get(key) == new.get(key):
            continue
        if any(fnmatch.fnmatchcase(key, pattern) for pattern in FIXED_ON_RESUME):
            refused.append(f"{key}: the checkpoint was trained with {old.get(key, '(unset)')!r}, this recipe says "
                           f"{new.get(key, '(unset)')!r}")
        else:
            applied.append(key)
    return refused, applied
