"""The SuperGLUE leaderboard workflow: train each task's recipe, predict AX-b / AX-g with the RTE model, write the
submission the server takes and a dev-score table.

    harness leaderboard --benchmark superglue --recipes recipes/superglue --runs-dir runs/superglue --out runs/superglue
    harness leaderboard --benchmark superglue --runs-dir runs/superglue --out runs/superglue --collect

**Run mode** (the default): for each task of ``--tasks`` (default: the eight SuperGLUE tasks) whose recipe
``<recipes>/<task>.yaml`` exists and whose data loads, ``python -m harness train <recipe> <overrides>
output_dir=DIR/<task> evaluation.predict_splits=[test]`` runs in its own process (as the GLUE workflow does). A task
whose data component raises a DataError is reported *missing* with the reason (here: COPA, WiC and BoolQ have no
train split; ReCoRD's data is absent); a run that exits non-zero is *failed* with its
``error:`` line. Neither gets a score. Then AX-b and AX-g are predicted with ``DIR/rte/model``.

**Collect mode** (``--collect``): no training; the same report from ``DIR/<task>/metrics.json`` and
``predictions_test.tsv``.

``--out`` receives ``superglue_submission/<Task>.jsonl`` and ``superglue_submission.zip`` (the files that have
predictions, checked by :func:`~harness.evaluation.superglue_submission.validate_submission` against the test sets'
sizes), and ``leaderboard.md``: dev scores per task beside the most-frequent-class baseline measured on the same
dev split, the average over the tasks present (labelled a subset unless all eight are), the published test
averages of the SuperGLUE paper's baselines, the AX-b / AX-g diagnostics (scored too: their gold labels are in the
files here), the missing tasks and why, and the submission's check.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from harness import registry
from harness.errors import DataError, HarnessError, RecipeError, report_errors
from harness.evaluation.glue_submission import read_predictions
from harness.evaluation.superglue_submission import submission_rows, validate_submission, write_submission

#: the eight tasks of the SuperGLUE score, in the leaderboard's order
TASKS = ("boolq", "cb", "copa", "multirc", "record", "rte", "wic", "wsc")
DISPLAY = {"boolq": "BoolQ", "cb": "CB", "copa": "COPA", "multirc": "MultiRC", "record": "ReCoRD", "rte": "RTE",
           "wic": "WiC", "wsc": "WSC", "axb": "AX-b", "axg": "AX-g"}
#: the dev metrics of each task, in the order the table prints them (their mean is the task's score)
DEV_METRICS = {"boolq": ("accuracy",), "cb": ("f1_macro", "accuracy"), "copa": ("accuracy",),
               "multirc": ("f1_a", "exact_match"), "record": ("f1", "exact_match"), "rte": ("accuracy",), "wic": ("accuracy",), "wsc": ("accuracy",)}
METRIC_LABELS = {"boolq": "acc", "cb": "F1/acc", "copa": "acc", "multirc": "F1a/EM", "record": "F1/EM", "rte": "acc",
                 "wic": "acc", "wsc": "acc"}
REPORT_NAME = "leaderboard.md"

#: published SuperGLUE baselines on the *test* sets: Wang et al. 2019, "SuperGLUE", NeurIPS camera-ready, Table 3
#: (average over the eight tasks, then each task's metrics in this table's order: CB F1/acc, MultiRC F1a/EM,
#: ReCoRD F1/EM), checked against a full-text copy of the paper. (The arXiv abstract's CBOW average, 44.5, differs
#: from this table's 44.3.)
PUBLISHED = (
    ("BERT-large (Wang et al. 2019)", "69.0", {"boolq": "77.4", "cb": "75.7/83.6", "copa": "70.6", "multirc": "70.0/24.0",
                                              "record": "72.0/71.3", "rte": "71.6", "wic": "69.5", "wsc": "64.3"}),
    ("Most frequent class (Wang et al. 2019)", "47.1", {"boolq": "62.3", "cb": "21.7/48.4", "copa": "50.0",
                                                       "multirc": "61.1/0.3", "record": "33.4/32.5", "rte": "50.3",
                                                       "wic": "50.0", "wsc": "65.1"}),
    ("CBoW (Wang et al. 2019)", "44.3", {"boolq": "62.1", "cb": "49.0/71.2", "copa": "51.6", "multirc": "0.0/0.4",
                                        "record": "14.0/13.6", "rte": "49.7", "wic": "53.0", "wsc": "65.1"}),
)
#: the same table's diagnostics: AX-b MCC, AX-g gender parity / accuracy
PUBLISHED_DIAGNOSTICS = {"BERT-large": ("23.0", "97.8/51.7"), "Most frequent class": ("0.0", "100.0/50.0"),
                         "CBoW": ("-0.4", "100.0/50.0")}


@dataclass
class TaskResult:
    task: str
    status: str = "missing"  # ok | missing | failed
    reason: str = ""
    metrics: dict[str, float] = field(default_factory=dict)  # DEV_METRICS keys -> [0, 1]
    baseline: dict[str, float] | None = None  # the most-frequent-class baseline on the same dev split
    rows: list[dict] | None = None  # the submission file's JSON objects
    expected: int | None = None  # test predictions (MultiRC: answer options; ReCoRD: queries) when the data loaded
    notes: list[str] = field(default_factory=list)

    @property
    def score(self) -> float | None:
        if self.status != "ok":
            return None
        return 100.0 * sum(self.metrics[k] for k in DEV_METRICS[self.task]) / len(DEV_METRICS[self.task])

    def cell(self, metrics: dict[str, float] | None = None) -> str:
        if metrics is None:
            if self.status != "ok":
                return f"{self.status}"
            metrics = self.metrics
        return "/".join(f"{100 * metrics[k]:.1f}" for k in DEV_METRICS[self.task])


def superglue_average(scores: dict[str, float | None]) -> tuple[float | None, int]:
    """Mean of the tasks' scores that exist (a missing task is left out, never counted as 0) and how many."""
    present = [s for s in scores.values() if s is not None]
    return (sum(present) / len(present), len(present)) if present else (None, 0)


# ---------------------------------------------------------------------------------------------- one task


def _recipe(recipe_path: Path, overrides: list[str]):
    from harness.config.loader import load_recipe
    from harness.config.schema import validate
    from harness.data.superglue import superglue

    recipe = validate(load_recipe(recipe_path, overrides))
    if registry.resolve("data", recipe.data_component) is not superglue:
        raise RecipeError(f"leaderboard: {recipe_path} must use the SuperGLUE data component (data.component: "
                          f"superglue), not {recipe.data_component!r}")
    return recipe


def load_task(recipe) -> object:
    return registry.resolve("data", recipe.data_component)(**recipe.data_args)


def collect_task(task: str, data, run_dir: Path, data_error: str | None) -> TaskResult:
    """Scores from ``run_dir/metrics.json``, submission rows from ``run_dir/predictions_test.tsv``."""
    from harness.data.superglue import SUBMISSION_FILES, majority_baseline

    res = TaskResult(task)
    fname = SUBMISSION_FILES[task]
    if data is not None:
        if "test" in data.splits:
            res.expected = data.expected_predictions("test")
        try:
            res.baseline = majority_baseline(data)
        except Exception as e:  # a baseline is a courtesy: never let it stop the report
            res.notes.append(f"most-frequent-class baseline not computed ({type(e).__name__}: {e})")
    metrics_path = run_dir / "metrics.json"
    if not metrics_path.is_file():
        res.reason = data_error or f"no run: {metrics_path} not found"
        return res
    try:
        metrics = json.loads(metrics_path.read_text())
    except (OSError, ValueError) as e:
        res.status, res.reason = "failed", f"{metrics_path}: unreadable ({e})"
        return res
    keys = {k: f"validation/{k}" for k in DEV_METRICS[task]}
    lacking = [v for v in keys.values() if not isinstance(metrics.get(v), (int, float))]
    if lacking:
        res.status, res.reason = "failed", f"{metrics_path} lacks {', '.join(lacking)}"
        return res
    res.status = "ok"
    res.metrics = {k: float(metrics[v]) for k, v in keys.items()}
    path = run_dir / "predictions_test.tsv"
    if not path.is_file():
        res.notes.append(f"{fname}: no predictions ({path} not found)")
    else:
        try:
            res.rows = submission_rows(fname, read_predictions(path), str(path))
        except DataError as e:
            res.notes.append(f"{fname}: not written: {e}")
    return res


# ---------------------------------------------------------------------------------------------- AX-b / AX-g


def predict_diagnostic(name: str, rte_recipe, run_dir: Path) -> tuple[dict[str, float], list[tuple[str, str]], int]:
    """Predict AX-b or AX-g with the RTE model in ``run_dir/model``; write ``run_dir/predictions_<name>.tsv``.
    Returns (metrics against the file's gold labels — empty when it has none, (index, label) rows, examples)."""
    from accelerate import Accelerator
    from datasets import DatasetDict

    from harness.data.base import evaluation_only, labelled
    from harness.data.superglue import SPECS, SuperGlueTask, _info, load_diagnostic
    from harness.evaluation.loaders import eval_loader
    from harness.evaluation.runner import predict
    from harness.metrics import load_metric
    from harness.models.pretrained import load_saved

    args = rte_recipe.data_args
    ds = load_diagnostic(name, args.get("data_dir"), args.get("source", "auto"))
    spec = SPECS[name]
    with evaluation_only():
        task = SuperGlueTask(spec, _info(spec, "local", None), DatasetDict({"test": ds}), eval_splits=())
    model, tokenizer = load_saved(run_dir / "model", task)
    task.configure_for(model)
    cfg = rte_recipe.training
    rows = task.tokenize(tokenizer, max_length=cfg.max_length)["test"]
    accelerator = Accelerator(cpu=False)
    loader = eval_loader(task, rows, tokenizer, cfg.eval_batch_size or 2 * cfg.batch_size,
                         pad_to_multiple_of=cfg.pad_to_multiple_of, seed=rte_recipe.seed)
    model, loader = accelerator.prepare(model, loader)
    logits, _, _ = predict(model, loader, accelerator)
    predictions = task.predictions_from_logits(logits)
    path = task.write_predictions(run_dir / f"predictions_{name}.tsv", "test", predictions)
    metrics: dict[str, float] = {}
    if labelled(ds):
        kwargs = {"hypotheses": list(ds["hypothesis"])} if name == "axg" else {}
        metrics = load_metric("superglue", name).compute(predictions=[int(p) for p in predictions],
                                                         references=list(ds["label"]), **kwargs)
    return metrics, read_predictions(path), len(ds)


# ---------------------------------------------------------------------------------------------- the report


def _md(text: str) -> str:
    return (text or "").replace("|", "\\|").replace("<", "&lt;").replace(">", "&gt;").replace("\n", " ")


def render(results: dict[str, TaskResult], diagnostics: dict[str, dict], *, recipes: str | None, runs_dir: Path,
           overrides: list[str], zip_path: Path | None, problems: list[str], missing: list[str], mode: str) -> str:
    avg, n = superglue_average({t: r.score for t, r in results.items() if t in TASKS})
    scored = [DISPLAY[t] for t in TASKS if t in results and results[t].score is not None]
    if avg is None:
        score = "— (no task scored)"
    elif n == len(TASKS):
        score = f"{avg:.1f}"
    else:
        score = f"{avg:.1f} — subset: {n} of {len(TASKS)} tasks ({', '.join(scored)}), not a SuperGLUE score"
    base_scores = {t: (100 * sum(r.baseline[k] for k in DEV_METRICS[t]) / len(DEV_METRICS[t])
                       if r.baseline and t in DEV_METRICS else None) for t, r in results.items()}
    base_same = {t: s for t, s in base_scores.items() if t in results and results[t].score is not None}
    base_avg, base_n = superglue_average(base_same)
    out = ["# SuperGLUE leaderboard", ""]
    out.append(f"- recipes: `{recipes}`" if recipes else "- recipes: (none; collected runs)")
    if overrides:
        out.append(f"- overrides: `{' '.join(overrides)}`")
    out.append(f"- runs: `{runs_dir}` ({mode}), written {time.strftime('%Y-%m-%d %H:%M')}")
    out += ["", "## Dev scores (×100)", "",
            "BoolQ, COPA, RTE, WiC, WSC: accuracy; CB: macro-F1/accuracy; MultiRC: F1a/EM. A task's score is the mean "
            "of its metrics; the average is over the tasks that have a score — a missing task is left out, never "
            "counted as 0. *Most frequent class (dev, measured)*: the train split's most frequent label predicted "
            "for every dev example, scored the same way.", ""]
    header = ["Model", "Average", *(f"{DISPLAY[t]} ({METRIC_LABELS[t]})" for t in TASKS)]
    out += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    cells = [results[t].cell() if t in results else "not run" for t in TASKS]
    out.append(f"| **this run** | **{score}** | " + " | ".join(cells) + " |")
    bcells = [results[t].cell(results[t].baseline) if t in results and results[t].baseline and t in DEV_METRICS
              else "—" for t in TASKS]
    bavg = "—" if base_avg is None else f"{base_avg:.1f} (same {base_n} tasks)"
    out.append(f"| Most frequent class (dev, measured) | {bavg} | " + " | ".join(bcells) + " |")
    for name, value, per_task in PUBLISHED:
        out.append(f"| {name} | {value} (test, all 8 tasks) | " + " | ".join(per_task[t] for t in TASKS) + " |")
    out += ["", "The published rows are test-set scores (Wang et al. 2019, Table 3); a dev score is not the same "
            "measurement (dev and test differ by a few points), and their average covers all eight tasks, not a "
            "subset.", ""]

    out += ["## Diagnostics (predicted with the RTE model)", ""]
    for name in ("axb", "axg"):
        d = diagnostics.get(name, {})
        if d.get("status") == "ok":
            shown = ", ".join(f"{k} {100 * v:.1f}" for k, v in d["metrics"].items()) or "no gold labels"
            out.append(f"- {DISPLAY[name]}: {shown}")
        else:
            out.append(f"- {DISPLAY[name]}: {d.get('status', 'missing')}: {_md(d.get('reason', ''))}")
    out += ["", "Published on test (Wang et al. 2019, Table 3): AX-b MCC / AX-g gender parity and accuracy — "
            + "; ".join(f"{who} {axb} / {axg}" for who, (axb, axg) in PUBLISHED_DIAGNOSTICS.items()) + ".", ""]

    unscored = [(t, r) for t, r in results.items() if r.status != "ok"]
    if unscored or missing:
        out += ["## Tasks without a score", ""]
        out += [f"- {DISPLAY[t]}: {r.status}: {_md(r.reason)}" for t, r in unscored]
        out += [f"- {DISPLAY[t]}: not run (not in --tasks)" for t in TASKS if t not in results]
        out.append("")
    notes = [f"- {DISPLAY[t]}: {_md(n)}" for t, r in results.items() for n in r.notes]
    if notes:
        out += ["## Notes", "", *notes, ""]

    out += ["## Submission", ""]
    if zip_path is None:
        out.append("No submission written: no task has test predictions.")
    else:
        out.append(f"`{zip_path}` (and the same files in `{zip_path.parent / 'superglue_submission'}`).")
        out.append("")
        out.append("Missing from it (the server needs every file; it is not complete): "
                   + (", ".join(missing) if missing else "nothing — complete"))
        out.append("")
        out.append("Check: " + ("passed (format, labels, idx, one prediction per test example)." if not problems
                                else "FAILED:"))
        out += [f"- {_md(p)}" for p in problems]
    return "\n".join(out) + "\n"


# ---------------------------------------------------------------------------------------------- the command


def run(args) -> int:
    from harness.data.superglue import SUBMISSION_FILES, superglue_task_name
    from harness.workflows.glue_leaderboard import train_task

    runs_dir = Path(args.runs_dir)
    out_dir = Path(args.out or args.runs_dir)
    if not args.collect and not args.recipes:
        raise RecipeError("leaderboard --benchmark superglue: give --recipes DIR (one <task>.yaml per task, e.g. "
                          "recipes/superglue), or --collect to report existing runs")
    tasks = [superglue_task_name(t) for t in (args.tasks or TASKS)]
    bad = [t for t in tasks if t not in TASKS]
    if bad:
        raise RecipeError(f"--tasks: {', '.join(bad)} not SuperGLUE tasks (AX-b / AX-g come with rte)")
    launcher = shlex.split(args.launcher) + ["train"] if args.launcher else None
    results: dict[str, TaskResult] = {}
    recipes: dict[str, object] = {}
    for task in tasks:
        run_dir = runs_dir / task
        source = Path(args.recipes) / f"{task}.yaml" if args.recipes else run_dir / "recipe.yaml"
        data, data_error = None, None
        if not source.is_file():
            data_error = f"no recipe: {source} not found"
        else:
            try:
                recipes[task] = _recipe(source, [*args.overrides, f"data.task={task}"])
                data = load_task(recipes[task])
            except DataError as e:
                data_error = str(e)
            except HarnessError as e:
                data_error = f"{source}: {e}"
        if not args.collect and data is not None:
            overrides = [*args.overrides, f"data.task={task}", f"output_dir={run_dir}",
                         "evaluation.predict_splits=[test]"]
            ok, error = train_task(str(source), overrides, run_dir / "leaderboard_train.log", command=launcher)
            if not ok:
                results[task] = TaskResult(task, "failed", error)
                continue
        results[task] = collect_task(task, data, run_dir, data_error)
        if data is None and results[task].status == "missing":
            results[task].reason = data_error or results[task].reason
        print(f"{DISPLAY[task]}: {results[task].status}"
              + (f" {results[task].cell()}" if results[task].status == "ok" else f" ({results[task].reason})"),
              flush=True)

    diagnostics: dict[str, dict] = {}
    files: dict[str, list[dict]] = {SUBMISSION_FILES[t]: r.rows for t, r in results.items() if r.rows}
    expected = {SUBMISSION_FILES[t]: r.expected for t, r in results.items() if r.rows and r.expected is not None}
    rte_dir = runs_dir / "rte"
    for name in ("axb", "axg"):
        if "rte" not in tasks:
            diagnostics[name] = {"status": "missing", "reason": "rte not in --tasks"}
        elif not (rte_dir / "model").is_dir() or "rte" not in recipes:
            diagnostics[name] = {"status": "missing", "reason": f"no RTE model at {rte_dir / 'model'}"}
        else:
            try:
                metrics, rows, count = predict_diagnostic(name, recipes["rte"], rte_dir)
            except HarnessError as e:
                diagnostics[name] = {"status": "missing" if isinstance(e, DataError) else "failed", "reason": str(e)}
                continue
            fname = SUBMISSION_FILES[name]
            files[fname] = submission_rows(fname, rows, str(rte_dir / f"predictions_{name}.tsv"))
            expected[fname] = count
            diagnostics[name] = {"status": "ok", "metrics": metrics}
        print(f"{DISPLAY[name]}: {diagnostics[name]['status']}", flush=True)

    zip_path, problems = None, []
    if files:
        zip_path = write_submission(out_dir, files)
        problems = validate_submission(zip_path, expected)
    missing = [f for f in SUBMISSION_FILES.values() if f not in files]
    report = render(results, diagnostics, recipes=args.recipes, runs_dir=runs_dir, overrides=args.overrides,
                    zip_path=zip_path, problems=problems, missing=missing,
                    mode="collected" if args.collect else "trained")
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / REPORT_NAME).write_text(report, encoding="utf-8")
    print(f"\nleaderboard: {out_dir / REPORT_NAME}")
    if zip_path is not None:
        print(f"submission: {zip_path} ({len(files)} files; missing: {', '.join(missing) or 'none'})")
        for p in problems:
            print(f"submission problem: {p}", file=sys.stderr)
    return 1 if problems else 0


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="harness leaderboard --benchmark superglue",
                                description="Train each SuperGLUE task's recipe, predict AX-b/AX-g with the RTE model, "
                                "write the submission (one .jsonl per task, zipped) and leaderboard.md.")
    p.add_argument("--recipes", help="folder with one recipe per task, named <task>.yaml (e.g. recipes/superglue)")
    p.add_argument("--runs-dir", required=True, help="where each task's run goes (DIR/<task>)")
    p.add_argument("--out", help="where the submission and leaderboard.md go (default: --runs-dir)")
    p.add_argument("--tasks", nargs="+", help=f"a subset of {' '.join(TASKS)}")
    p.add_argument("--collect", action="store_true", help="no training: report the runs already in --runs-dir")
    p.add_argument("--launcher", help="replaces `python -m harness` (e.g. 'accelerate launch -m harness')")
    p.add_argument("--debug", action="store_true", help="show full tracebacks")
    p.add_argument("overrides", nargs="*", metavar="key.path=value", help="recipe changes for every task")
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_intermixed_args(argv)
    if args.tasks:  # `--tasks cb rte seed=43`: argparse hands the override to --tasks (as the GLUE workflow says)
        args.overrides += [t for t in args.tasks if "=" in t]
        args.tasks = [t for t in args.tasks if "=" not in t] or None
    return report_errors(lambda: run(args), args.debug)


if __name__ == "__main__":
    sys.exit(main())
