"""The GLUE leaderboard workflow: train one recipe on every GLUE task, then write a submission zip and a dev table.

    harness leaderboard --recipe recipes/glue_lora.yaml --runs-dir runs/glue --out runs/glue [key=value ...]
    python scripts/glue_leaderboard.py --recipe RECIPE --runs-dir DIR --out DIR --collect

**Run mode** (the default): for each task of ``--tasks`` (default all nine) whose data can be
loaded, ``python -m harness train RECIPE <overrides> data.task=T output_dir=DIR/T
evaluation.predict_splits=[<T's test splits>]`` runs in its own process (Accelerate keeps
process-global state, and one task's crash cannot take the others with it). A task whose data
component raises a :class:`~harness.errors.DataError` is reported *missing*; a run that exits
non-zero is reported *failed* with its ``error:`` line (its output is kept in
``DIR/T/leaderboard_train.log``); neither is ever given a score. ``--launcher "accelerate launch
--num_processes 2 -m harness"`` replaces ``python -m harness`` for several GPUs. After MNLI,
the AX diagnostic set is predicted with the MNLI model (``DIR/mnli/model``) into
``DIR/mnli/predictions_ax.tsv``.

**Collect mode** (``--collect``): no training; the same report is built from existing
``DIR/<task>/metrics.json`` and ``predictions_<split>.tsv`` files (AX is predicted from
``DIR/mnli/model`` when its predictions are absent).

Either way ``--out`` receives

* ``glue_submission.zip``: ``CoLA.tsv, SST-2.tsv, MRPC.tsv, STS-B.tsv, QQP.tsv, MNLI-m.tsv,
  MNLI-mm.tsv, QNLI.tsv, RTE.tsv, WNLI.tsv, AX.tsv`` (those with predictions), each
  ``index<TAB>prediction`` with the label strings the GLUE server expects (our label names are
  mapped through the task's ``info.label_names`` → ``info.extra["test_label_strings"]``; STS-B
  scores are clipped to [0, 5] with 3 decimals). The zip is checked with
  :func:`validate_submission` after it is written.
* ``leaderboard.md``: dev scores per task (×100) and their GLUE average over the tasks that have
  scores (missing tasks are never counted as 0), beside published baselines.
"""

from __future__ import annotations

import argparse
import collections
import functools
import json
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

from harness import registry
from harness.errors import DataError, HarnessError, RecipeError, report_errors
from harness.evaluation.glue_submission import (
    DEV_METRICS,
    DISPLAY,
    FILES_OF,
    HEADER,
    METRIC_LABELS,
    SUBMISSION_FILES,
    TASKS,
    ZIP_NAME,
    glue_average,
    read_predictions,
    server_label,
    missing_files,
    validate_submission,
    write_submission,
)

@dataclass(frozen=True)
class Baseline:
    name: str
    source: str
    scores: dict[str, str]  # task -> the published number as printed
    score: str | None = None  # the published GLUE score, if any


REPORT_NAME = "leaderboard.md"

_DISTILBERT = "DistilBERT paper (Sanh et al. 2019), Table 1, GLUE dev"
_ANCHOR = "this project, measured on one H100 (other tasks not measured)"
BASELINES: tuple[Baseline, ...] = (
    Baseline("ELMo baseline", _DISTILBERT,
             dict(cola="44.1", mnli="68.6", mrpc="76.6", qnli="71.1", qqp="86.2", rte="53.4", sst2="91.5",
                  stsb="70.4", wnli="56.3"), "68.7"),
    Baseline("BERT-base", _DISTILBERT,
             dict(cola="56.3", mnli="86.7", mrpc="88.6", qnli="91.8", qqp="89.6", rte="69.3", sst2="92.7",
                  stsb="89.0", wnli="53.5"), "79.5"),
    Baseline("DistilBERT", _DISTILBERT,
             dict(cola="51.3", mnli="82.2", mrpc="87.5", qnli="89.2", qqp="88.5", rte="59.9", sst2="91.3",
                  stsb="86.9", wnli="56.3"), "77.0"),
    Baseline("HF Trainer, all-MiniLM-L6-v2, full FT (measured, one H100)", _ANCHOR,
             dict(cola="24.5", sst2="88.8", mrpc="84.5 (F1)", stsb="85.1 (Pearson)", rte="54.5")),
    Baseline("HF Trainer, all-MiniLM-L6-v2, LoRA r8 (measured, one H100)", _ANCHOR,
             dict(cola="21.5", sst2="86.1", mrpc="86.5 (F1)", stsb="84.9 (Pearson)", rte="56.3")),
)


# ---------------------------------------------------------------------------------------------
# results


@dataclass
class TaskResult:
    """What the leaderboard knows about one task."""

    task: str
    status: str = "missing"  # "ok" (scored) | "missing" (no data / no run) | "failed"
    reason: str = ""
    metrics: dict[str, float] = field(default_factory=dict)  # DEV_METRICS keys -> value in [0, 1]
    #: submission file name -> rows (index, server label string)
    files: dict[str, list[tuple[str, str]]] = field(default_factory=dict)
    #: submission file name -> number of test examples (when the data could be loaded)
    expected: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)  # e.g. a test split without predictions

    @property
    def values(self) -> list[float] | None:
        """The task's dev metrics ×100, in DEV_METRICS order; None unless scored."""
        if self.status != "ok":
            return None
        return [100.0 * self.metrics[k] for k in DEV_METRICS[self.task]]

    @property
    def score(self) -> float | None:
        """The task's contribution to the GLUE average: the mean of its metrics (MNLI: m and mm)."""
        v = self.values
        return None if v is None else sum(v) / len(v)

    def cell(self) -> str:
        if self.status == "ok":
            return "/".join(f"{x:.1f}" for x in self.values)
        return f"{self.status} ({_short(self.reason)})"


def _short(text: str, limit: int = 160) -> str:
    """The first sentence / line of a message, for a table cell."""
    line = (text or "").strip().splitlines()[0] if (text or "").strip() else ""
    cut = line.find(". ")
    if 0 < cut:
        line = line[: cut + 1]
    if len(line) > limit:
        line = line[: limit - 1] + "…"
    return _md(line)


def _md(text: str) -> str:
    """Plain text that markdown shows as written (table pipes, ``<dir>`` in messages)."""
    return text.replace("|", "\\|").replace("<", "&lt;").replace(">", "&gt;")


def _static_info(task: str):
    """The task's TaskInfo without reading its data (collect mode, data absent): the same object
    ``glue()`` returns, built from the GLUE spec table."""
    from harness.data import glue as glue_mod

    spec = glue_mod._SPECS[task]
    return glue_mod._info(spec, list(spec.files), source="none", data_dir=None)


# ---------------------------------------------------------------------------------------------
# one task


@dataclass
class _Plan:
    """A task's recipe and data, resolved before training."""

    task: str
    recipe: object | None = None  # harness.config.schema.Recipe
    data: object | None = None  # the ClassificationTask, when its data could be loaded
    info: object | None = None  # TaskInfo (from the data, or built without it)
    data_error: str | None = None  # why the data could not be loaded (a DataError's message)


def _recipe_for(recipe_path: str | Path, overrides: list[str], task: str):
    from harness.config.loader import load_recipe
    from harness.config.schema import validate
    from harness.data.glue import glue

    raw = load_recipe(recipe_path, overrides)
    component = raw.get("data", {}).get("component") if isinstance(raw.get("data"), dict) else None
    try:
        is_glue = component is not None and registry.resolve("data", component) is glue
    except RecipeError:
        is_glue = False
    if not is_glue:
        raise RecipeError(
            f"leaderboard: {recipe_path} must use the GLUE data component (data.component: glue), "
            f"not {component!r}"
        )
    return validate(load_recipe(recipe_path, [*overrides, f"data.task={task}"]))


def plan_task(task: str, recipe_path: str | Path | None, overrides: list[str], run_dir: Path | None = None) -> _Plan:
    """Resolve the recipe for ``task`` and load its data (a DataError: the data is missing).

    Without ``recipe_path`` (collect mode), the run's own ``run_dir/recipe.yaml`` is used when it
    is there and still valid; otherwise the task's label set comes from the GLUE spec and the test
    sets' sizes stay unknown (the zip is then checked without row counts)."""
    plan = _Plan(task)
    if recipe_path is None:
        saved = run_dir / "recipe.yaml" if run_dir is not None else None
        if saved is not None and saved.is_file():
            try:
                plan.recipe = _recipe_for(saved, overrides, task)
            except HarnessError as e:
                plan.data_error = f"{saved}: {e}"
        else:
            plan.data_error = "no recipe to load its data with"
    else:
        plan.recipe = _recipe_for(recipe_path, overrides, task)
    if plan.recipe is not None:
        try:
            plan.data = registry.resolve("data", plan.recipe.data_component)(**plan.recipe.data_args)
        except DataError as e:
            plan.data_error = str(e)
    plan.info = plan.data.info if plan.data is not None else _static_info(task)
    return plan


def _error_line(output: str, returncode: int) -> str:
    """The ``error:`` line a failed ``harness train`` printed (else its last line) and the exit code."""
    lines = [l.strip() for l in output.splitlines() if l.strip()]
    errors = [l for l in lines if l.startswith("error:")]
    line = errors[-1] if errors else (lines[-1] if lines else "no output")
    return f"{line} (exit code {returncode})"


def train_task(recipe_path: str, overrides: list[str], log_path: Path,
               command: Sequence[str] | None = None, echo: bool = True) -> tuple[bool, str]:
    """``python -m harness train RECIPE OVERRIDES`` in its own process (``command`` replaces
    ``python -m harness train``); its output goes to ``log_path`` (and to stdout with ``echo``).
    Returns (succeeded, the error line when it did not)."""
    cmd = [*(command or (sys.executable, "-m", "harness", "train")), str(recipe_path), *overrides]
    log_path.parent.mkdir(parents=True, exist_ok=True)
    print(f"$ {' '.join(shlex.quote(c) for c in cmd)}", flush=True)
    tail: collections.deque[str] = collections.deque(maxlen=200)
    try:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, errors="replace")
    except OSError as e:
        return False, f"cannot start {cmd[0]}: {e}"
    with proc, open(log_path, "w", encoding="utf-8") as log:
        for line in proc.stdout:
            log.write(line)
            tail.append(line)
            if echo:
                sys.stdout.write(line)
                sys.stdout.flush()
        returncode = proc.wait()
    if returncode != 0:
        return False, _error_line("".join(tail), returncode)
    return True, ""


def task_overrides(plan: _Plan, overrides: list[str], run_dir: Path) -> list[str]:
    splits = list(plan.info.extra.get("test_splits", {}))
    return [*overrides, f"data.task={plan.task}", f"output_dir={run_dir}",
            f"evaluation.predict_splits=[{','.join(splits)}]"]


def collect_task(plan: _Plan, run_dir: Path) -> TaskResult:
    """Scores from ``run_dir/metrics.json`` and submission rows from its prediction files."""
    res = TaskResult(plan.task)
    info = plan.info
    for split, fname in info.extra.get("test_splits", {}).items():
        if plan.data is not None and split in plan.data.splits:
            res.expected[fname] = len(plan.data.splits[split])
    metrics_path = run_dir / "metrics.json"
    if not metrics_path.is_file():
        data_absent = plan.recipe is not None and plan.data_error  # the data is why there is no run
        res.status, res.reason = "missing", plan.data_error if data_absent else f"no run: {metrics_path} not found"
        return res
    try:
        metrics = json.loads(metrics_path.read_text())
    except (OSError, ValueError) as e:
        res.status, res.reason = "failed", f"{metrics_path}: unreadable ({e})"
        return res
    lacking = [k for k in DEV_METRICS[plan.task] if not isinstance(metrics.get(k), (int, float))]
    if lacking:
        res.status, res.reason = "failed", f"{metrics_path} lacks {', '.join(lacking)}"
        return res
    res.status = "ok"
    res.metrics = {k: float(metrics[k]) for k in DEV_METRICS[plan.task]}
    test_splits = info.extra.get("test_splits") or {}
    if not test_splits:
        res.notes.append("no test split: nothing to submit")
    for split, fname in test_splits.items():
        _add_file(res, info, run_dir / f"predictions_{split}.tsv", fname)
    return res


def _add_file(res: TaskResult, info, path: Path, fname: str) -> None:
    if not path.is_file():
        res.notes.append(f"{fname}: no predictions ({path} not found)")
        return
    try:
        res.files[fname] = [(i, server_label(info, p)) for i, p in read_predictions(path)]
    except DataError as e:
        res.notes.append(f"{fname}: not written: {e}")


# ---------------------------------------------------------------------------------------------
# AX, predicted with the MNLI model


def predict_ax(plan: _Plan, run_dir: Path) -> Path:
    """Predict GLUE's AX diagnostic set with ``run_dir/model`` (the MNLI model) and write
    ``run_dir/predictions_ax.tsv`` (MNLI's label names). Raises DataError when AX is absent."""
    from accelerate import Accelerator

    from harness.evaluation.loaders import eval_loader
    from harness.evaluation.runner import predict
    from harness.io import atomic_write_text
    from harness.models.pretrained import load_saved

    ax = _load_ax(plan)
    task, cfg = plan.data, plan.recipe.training
    model, tokenizer = load_saved(run_dir / "model", task)
    columns, max_length = task.info.text_columns, cfg.max_length

    def encode(batch):
        return tokenizer(*[batch[c] for c in columns], truncation=max_length is not None, max_length=max_length)

    encoded = ax.map(encode, batched=True, remove_columns=ax.column_names, desc="tokenizing ax")
    accelerator = Accelerator()
    loader = eval_loader(task, encoded, tokenizer, cfg.eval_batch_size or 2 * cfg.batch_size,
                         pad_to_multiple_of=cfg.pad_to_multiple_of, seed=plan.recipe.seed)
    model, loader = accelerator.prepare(model, loader)
    logits, _, _ = predict(model, loader, accelerator)
    predictions = task.predictions_from_logits(logits) if len(logits) else []
    names = task.info.label_names
    path = run_dir / "predictions_ax.tsv"
    atomic_write_text(path, "\n".join([HEADER, *(f"{i}\t{names[int(p)]}" for i, p in zip(ax["idx"], predictions))]) + "\n")
    return path


def _load_ax(plan: _Plan):
    from harness.data.glue import load_ax

    args = plan.recipe.data_args
    return load_ax(args.get("data_dir"), args.get("source", "auto"))


def ax_result(plan: _Plan, run_dir: Path, mnli: TaskResult, predict: bool) -> tuple[str, str]:
    """Predict AX with the MNLI model (always when ``predict``; else only when its predictions are
    absent) and add AX.tsv to the MNLI result. ``(status, reason)`` for the report."""
    if mnli.status != "ok":
        return "missing", f"no MNLI model (MNLI {mnli.status})"
    path = run_dir / "predictions_ax.tsv"
    if plan.data is not None:
        try:
            mnli.expected["AX.tsv"] = len(_load_ax(plan))
        except DataError as e:
            if predict or not path.is_file():
                return "missing", str(e)
    if predict or not path.is_file():
        if plan.data is None:
            return "missing", plan.data_error or "no recipe to load the AX data with"
        if not (run_dir / "model").is_dir():
            return "missing", f"no MNLI model at {run_dir / 'model'}"
        try:
            predict_ax(plan, run_dir)
        except HarnessError as e:
            return "failed", str(e)
        except Exception as e:  # a library failure: report it, keep the rest of the leaderboard
            return "failed", f"{type(e).__name__}: {e}"
    _add_file(mnli, plan.info, path, "AX.tsv")
    if "AX.tsv" not in mnli.files:
        return "failed", next((n for n in mnli.notes if n.startswith("AX.tsv")), "no predictions")
    return "ok", ""


# ---------------------------------------------------------------------------------------------
# the report


def _md_row(cells: Sequence[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def render(results: dict[str, TaskResult], ax: tuple[str, str], *, recipe: str | None, runs_dir: Path,
           overrides: list[str], zip_path: Path | None, problems: list[str], mode: str) -> str:
    avg, n = glue_average({t: r.score for t, r in results.items()})
    if avg is None:
        score = "— (no task scored)"
    elif n == len(TASKS):
        score = f"{avg:.1f}"
    else:
        score = f"{avg:.1f} over {n} of {len(TASKS)} tasks — not a GLUE score"
    name = Path(recipe).stem if recipe else runs_dir.name
    out = [f"# GLUE leaderboard: {name}", ""]
    out.append(f"- recipe: `{recipe}`" if recipe else "- recipe: (none; collected runs)")
    if overrides:
        out.append(f"- overrides: `{' '.join(overrides)}`")
    out.append(f"- runs: `{runs_dir}` ({mode}), written {time.strftime('%Y-%m-%d %H:%M')}")
    out += ["", "## Dev scores (×100)", "",
            "CoLA: Matthews correlation; MRPC, QQP: F1/accuracy; STS-B: Pearson/Spearman; MNLI: "
            "matched/mismatched accuracy; the rest: accuracy. A task's score is the mean of its metrics "
            "(MNLI: of m and mm); the GLUE score is the mean over the tasks that have one — a missing "
            "task is left out, never counted as 0.", ""]
    out.append(_md_row(["Model", "Score", *(f"{DISPLAY[t]}" for t in TASKS), "Source"]))
    out.append(_md_row(["---"] * (len(TASKS) + 3)))
    cells = [results[t].cell() if t in results else "not run" for t in TASKS]
    out.append(_md_row([f"**{name}**", f"**{score}**", *cells, "this run"]))
    for b in BASELINES:
        out.append(_md_row([b.name, b.score or "—", *(b.scores.get(t, "—") for t in TASKS), b.source]))
    out += ["", "The published rows give one number per task, as printed in their source. "
            f"This run's metrics per task: {', '.join(f'{DISPLAY[t]} {METRIC_LABELS[t]}' for t in TASKS)}.", ""]

    unscored = [(t, r) for t, r in results.items() if r.status != "ok"]
    not_run = [t for t in TASKS if t not in results]
    if unscored or not_run:
        out += ["## Tasks without a score", ""]
        out += [f"- {DISPLAY[t]}: {r.status}: {_md(r.reason)}" for t, r in unscored]
        out += [f"- {DISPLAY[t]}: not run (not in --tasks)" for t in not_run]
        out.append("")

    out += ["## Submission", ""]
    if zip_path is None:
        out.append("No submission written: no task has test predictions.")
    else:
        files = {f: rows for r in results.values() for f, rows in r.files.items()}
        absent = missing_files(files)
        if absent:
            out.append(f"`{zip_path}` is **partial: {len(files)} of {len(SUBMISSION_FILES)} files; the GLUE server "
                       f"rejects it** (missing: {', '.join(absent)}). It is written for inspection, not upload.")
        else:
            out.append(f"`{zip_path}` (upload to https://gluebenchmark.com/submit):")
        out.append("")
        owner = {f: t for t in TASKS for f in FILES_OF[t]}
        for fname in SUBMISSION_FILES:
            task = owner[fname]
            if fname in files:
                out.append(f"- {fname}: {len(files[fname])} predictions")
                continue
            if task not in results:
                why = f"{DISPLAY[task]} not run"
            elif results[task].status != "ok":
                why = f"{DISPLAY[task]} {results[task].status}"
            elif fname == "AX.tsv":
                why = f"AX {ax[0]}: {ax[1]}"
            else:
                why = next((n for n in results[task].notes if n.startswith(fname)), "no predictions")
            out.append(f"- {fname}: absent ({_short(why, 300)})")
    notes = [f"{DISPLAY[t]}: {_md(n)}" for t, r in results.items() for n in r.notes]
    if notes:
        out += ["", "Notes:", "", *(f"- {n}" for n in notes)]
    partial = zip_path is not None and missing_files({f for r in results.values() for f in r.files})
    verdict = "no problems found in the files present" if partial else "no problems found"
    out += ["", "Validation: " + (f"{verdict}." if not problems else f"{len(problems)} problem(s):"), ""]
    out += [f"- {_md(p)}" for p in problems[:50]]
    if len(problems) > 50:
        out.append(f"- … and {len(problems) - 50} more")
    return "\n".join(out).rstrip() + "\n"


# ---------------------------------------------------------------------------------------------
# the command


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="harness leaderboard",
        description="Train a GLUE recipe on every GLUE task (or collect earlier runs), then write "
                    "glue_submission.zip and leaderboard.md.",
    )
    p.add_argument("--recipe", help="a GLUE recipe (data.component: glue); required unless --collect")
    p.add_argument("--tasks", nargs="+", default=None, metavar="TASK",
                   help=f"tasks to run or collect (default all: {' '.join(TASKS)}); comma lists work too")
    p.add_argument("--runs-dir", required=True, type=Path, help="each task's run goes to RUNS_DIR/<task>")
    p.add_argument("--collect", action="store_true",
                   help="do not train: collect RUNS_DIR/<task>/metrics.json and predictions")
    p.add_argument("--out", type=Path, default=None,
                   help=f"where {ZIP_NAME} and {REPORT_NAME} go (default: RUNS_DIR)")
    p.add_argument("--launcher", default=None, metavar="CMD",
                   help="what runs `train RECIPE ...` for each task (default: `python -m harness`); e.g. "
                        "\"accelerate launch --num_processes 2 -m harness\" for several GPUs")
    p.add_argument("overrides", nargs="*", metavar="key.path=value", help="recipe overrides for every task")
    p.add_argument("--retrain", action="store_true",
                   help="train tasks whose run is already finished in RUNS_DIR again (default: collect them)")
    p.add_argument("--allow-partial", action="store_true",
                   help="exit 0 although the submission lacks files the GLUE server needs (a partial run)")
    p.add_argument("--debug", action="store_true", help="show full tracebacks")
    return p


def _parse_tasks(values: list[str] | None, overrides: list[str]) -> list[str]:
    from harness.data.glue import glue_task_name

    if not values:
        return list(TASKS)
    tasks = []
    for value in values:
        if "=" in value:  # `--tasks rte training.lr=1e-3`: argparse hands the override to --tasks
            overrides.append(value)
            continue
        for name in filter(None, value.split(",")):
            key = glue_task_name(name)
            if key == "ax":
                raise RecipeError("leaderboard: AX is not a task of its own: it is predicted with the MNLI model")
            if key not in tasks:
                tasks.append(key)
    return [t for t in TASKS if t in tasks]


def run(args: argparse.Namespace, trainer: Callable[[str, list[str], Path], tuple[bool, str]] | None = None) -> int:
    """The leaderboard for parsed ``args``; ``trainer(recipe, overrides, log_path) -> (ok, error)``
    trains one task (default: :func:`train_task` in a subprocess). Returns the exit code."""
    if trainer is None:
        launcher = shlex.split(args.launcher) if getattr(args, "launcher", None) else None
        trainer = functools.partial(train_task, command=[*launcher, "train"] if launcher else None)
    overrides = list(args.overrides)
    tasks = _parse_tasks(args.tasks, overrides)
    if not args.collect and not args.recipe:
        raise RecipeError("leaderboard: --recipe is required to train (or pass --collect)")
    runs_dir: Path = args.runs_dir
    out_dir: Path = args.out or runs_dir
    results: dict[str, TaskResult] = {}
    ax: tuple[str, str] = ("missing", "MNLI not run")
    for task in tasks:
        run_dir = runs_dir / task
        t0 = time.time()
        plan = plan_task(task, args.recipe, overrides, run_dir)
        trained_before = not args.collect and not getattr(args, "retrain", False) and (run_dir / "metrics.json").is_file()
        if trained_before:  # a finished run from an earlier leaderboard: collected, not trained again
            print(f"[{task}] already trained in {run_dir}: collected (--retrain trains it again)", flush=True)
        elif not args.collect:
            if plan.data is None:
                results[task] = TaskResult(task, "missing", plan.data_error or "no data")
                print(f"[{task}] missing: {_short(plan.data_error, 300)}", flush=True)
                continue
            task_args = task_overrides(plan, overrides, run_dir)
            if getattr(args, "retrain", False):
                task_args.append("training.overwrite=true")
            ok, error = trainer(args.recipe, task_args, run_dir / "leaderboard_train.log")
            if not ok:
                results[task] = TaskResult(task, "failed", error)
                print(f"[{task}] failed: {error} (log: {run_dir / 'leaderboard_train.log'})", flush=True)
                continue
        res = collect_task(plan, run_dir)
        if task == "mnli":
            ax = ax_result(plan, run_dir, res, predict=not args.collect and not trained_before)
        results[task] = res
        shown = res.cell() if res.status == "ok" else f"{res.status}: {_short(res.reason, 300)}"
        print(f"[{task}] {shown} ({time.time() - t0:.1f}s)", flush=True)

    files = {f: rows for r in results.values() for f, rows in r.files.items()}
    expected = {f: n for r in results.values() for f, n in r.expected.items() if f in files}
    zip_path = None
    problems: list[str] = []
    if files:
        zip_path = out_dir / ZIP_NAME
        write_submission(zip_path, files)
        problems = validate_submission(zip_path, expected)
    else:
        stale = out_dir / ZIP_NAME
        if stale.is_file():
            stale.unlink()  # an older zip would no longer match this report
    from harness.io import atomic_write_text

    report = render(results, ax, recipe=args.recipe, runs_dir=runs_dir, overrides=overrides, zip_path=zip_path,
                    problems=problems, mode="collected" if args.collect else "trained")
    atomic_write_text(out_dir / REPORT_NAME, report)
    avg, n = glue_average({t: r.score for t, r in results.items()})
    if n == len(TASKS):
        print(f"GLUE score: {avg:.1f}")
    else:
        print(f"dev average over {n} of {len(TASKS)} tasks: {'—' if avg is None else f'{avg:.1f}'} (not a GLUE score)")
    absent = missing_files(files)
    if zip_path is not None:
        print(f"submission: {zip_path} ({len(files)} of {len(SUBMISSION_FILES)} files"
              + (f"; partial, the GLUE server rejects it: missing {', '.join(absent)})" if absent else ")"))
    print(f"leaderboard: {out_dir / REPORT_NAME}")
    for p in problems:
        print(f"submission problem: {p}", file=sys.stderr)
    failed = [t for t, r in results.items() if r.status == "failed"]
    partial = bool(absent) and not getattr(args, "allow_partial", False)
    if partial:
        print(f"error: the submission is partial ({len(files)} of {len(SUBMISSION_FILES)} files); pass "
              "--allow-partial to accept that", file=sys.stderr)
    return 1 if problems or failed or partial else 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_intermixed_args(argv)
    return report_errors(lambda: run(args), args.debug)


if __name__ == "__main__":
    sys.exit(main())
