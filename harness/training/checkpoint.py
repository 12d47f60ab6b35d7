"""Atomic checkpoints: write into a hidden temporary folder, then ``os.replace`` it into place.

A run killed while saving leaves only a ``.tmp-*`` folder, which :func:`latest` ignores and
:func:`clean_partial` removes, so ``resume=auto`` always finds a complete checkpoint.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

STATE_FILE = "trainer_state.json"
_NAME = re.compile(r"^checkpoint-(\d+)$")


def checkpoint_dir(root: Path, step: int) -> Path:
    return root / f"checkpoint-{step}"


def list_checkpoints(root: Path) -> list[Path]:
    """Complete checkpoints under ``root``, oldest first."""
    if not root.is_dir():
        return []
    found = []
    for p in root.iterdir():
        m = _NAME.match(p.name)
        if m and p.is_dir() and (p / STATE_FILE).is_file():
            found.append((int(m.group(1)), p))
    return [p for _, p in sorted(found)]


def latest(root: Path) -> Path | None:
    ckpts = list_checkpoints(root)
    return ckpts[-1] if ckpts else None


def clean_partial(root: Path) -> None:
    if root.is_dir():
        for p in root.iterdir():
            if p.name.startswith(".tmp-"):
                shutil.rmtree(p, ignore_errors=True)


def temporary_dir(root: Path, step: int) -> Path:
    tmp = root / f".tmp-checkpoint-{step}"
    if tmp.exists():
        shutil.rmtree(tmp)
    return tmp


def commit(tmp: Path, final: Path, state: dict) -> Path:
    """Write the trainer state last, fsync it, then move the folder into place in one rename."""
    path = tmp / STATE_FILE
    with open(path, "w") as f:
        json.dump(state, f, indent=1)
        f.flush()
        os.fsync(f.fileno())
    replace_dir(tmp, final)
    return final


def replace_dir(tmp: Path, final: Path) -> None:
    """Move a finished folder into place by rename; an existing one (a re-save at the same step, a
    model from an earlier run) is renamed away first and deleted after."""
    if final.exists():
        old = final.with_name(f".tmp-old-{final.name}")
        shutil.rmtree(old, ignore_errors=True)
        os.replace(final, old)
        os.replace(tmp, final)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(tmp, final)


def read_state(ckpt: Path) -> dict:
    with open(ckpt / STATE_FILE) as f:
        return json.load(f)


def prune(root: Path, keep_last: int, protect: set[Path] = frozenset()) -> None:
    """Delete all but the newest ``keep_last`` checkpoints (never those in ``protect``)."""
    ckpts = list_checkpoints(root)
    doomed = ckpts[: max(0, len(ckpts) - keep_last)]
    for p in doomed:
        if p.resolve() not in {q.resolve() for q in protect}:
            shutil.rmtree(p, ignore_errors=True)
