"""Entry point: ``accelerate launch harness/run.py RECIPE [a.b=c ...]`` (same as ``harness train``).

Reads as setup → build → train → evaluate → report, each a named step.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from pathlib import Path

if __package__ in (None, ""):  # executed as a script by `accelerate launch harness/run.py`
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from harness.config.loader import load_recipe  # noqa: E402
from harness.config.schema import Recipe, validate  # noqa: E402
from harness.errors import HarnessError  # noqa: E402


@dataclass
class Built:
    task: object
    model: object
    tokenizer: object
    tokenized: object
    trainable_params: int
    total_params: int


# ---------------------------------------------------------------------------------------- setup


def load(recipe_path: str, overrides: list[str]) -> Recipe:
    """Parse and validate; no data or weights are touched."""
    return validate(load_recipe(recipe_path, overrides))


def check_output_dir(recipe: Recipe, output_dir: Path) -> None:
    """Refuse to train over an earlier run unless asked to resume or overwrite it."""
    from harness.training import checkpoint as ckpt

    cfg = recipe.training
    if cfg.resume:
        return
    if cfg.overwrite:  # asked to replace the earlier run: its results must not mix with the new one
        import shutil

        if int(__import__("os").environ.get("RANK", "0")) == 0:
            for name in ("checkpoints", "model", "eval"):
                shutil.rmtree(output_dir / name, ignore_errors=True)
            for name in ("metrics.json", "report.md", "logs/history.jsonl"):
                (output_dir / name).unlink(missing_ok=True)
        return
    earlier = ckpt.list_checkpoints(output_dir / "checkpoints") or (output_dir / "metrics.json").is_file()
    if earlier:
        raise HarnessError(
            f"output_dir {output_dir} already holds a run; pass training.resume=auto to continue it, "
            f"training.overwrite=true to replace it, or another output_dir"
        )


def resolve_mixed_precision(choice: str) -> str:
    """``auto`` → ``bf16`` where the hardware computes in bf16 natively (a CUDA GPU that supports it;
    a CPU with AVX512-BF16 or AMX, where oneDNN's bf16 kernels beat fp32 — 1.56× for MiniLM LoRA
    on the 2-core EPYC, docs/benchmarks.md), else ``no`` (emulated bf16 is slower than fp32).
    Any other choice is returned as is."""
    if choice != "auto":
        return choice
    import torch

    if torch.cuda.is_available():
        return "bf16" if torch.cuda.is_bf16_supported() else "no"
    native = [getattr(torch.cpu, name, None) for name in ("_is_avx512_bf16_supported", "_is_amx_tile_supported")]
    return "bf16" if any(f is not None and f() for f in native) else "no"


def make_accelerator(recipe: Recipe, output_dir: Path, trackers: bool = True):
    from accelerate import Accelerator
    from accelerate.utils import ProjectConfiguration

    import os

    import torch

    cfg = recipe.training
    report_to = list(recipe.tracking.report_to) if trackers else []
    # several processes and no GPU: Accelerate picks gloo (MULTI_CPU) only when told cpu=True
    cpu = not torch.cuda.is_available() and int(os.environ.get("WORLD_SIZE", "1")) > 1
    return Accelerator(
        cpu=cpu,
        mixed_precision=resolve_mixed_precision(cfg.mixed_precision),
        gradient_accumulation_steps=cfg.gradient_accumulation_steps,
        log_with=report_to or None,
        project_config=ProjectConfiguration(project_dir=str(output_dir), logging_dir=str(output_dir / "logs")),
    )


def seed_everything(recipe: Recipe) -> None:
    from accelerate.utils import set_seed

    if recipe.training.deterministic:
        import os

        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    set_seed(recipe.seed, deterministic=recipe.training.deterministic)


# ---------------------------------------------------------------------------------------- build


def build(recipe: Recipe, accelerator) -> Built:
    """Data → model (→ PEFT) → tokenized splits."""
    from harness.config import components
    from harness.training.peft_glue import apply_peft, count_parameters

    with accelerator.main_process_first():
        task = components.resolve("data", recipe.data_component)(**recipe.data_args)
    if recipe.model_path:
        from harness.models.pretrained import load_saved

        model, tokenizer = load_saved(recipe.model_path, task)
    else:
        model, tokenizer = components.resolve("model", recipe.model_component)(task, **recipe.model_args)
        if recipe.peft:
            model = apply_peft(model, recipe.peft, task.auto_model_class)
    task.configure_for(model)
    with accelerator.main_process_first():
        tokenized = task.tokenize(tokenizer, max_length=recipe.training.max_length)
    trainable, total = count_parameters(model)
    return Built(task, model, tokenizer, tokenized, trainable, total)


# ---------------------------------------------------------------------------------------- evaluate


def final_evaluation(trainer_or_model, built: Built, recipe: Recipe, accelerator, out: Path) -> dict[str, float]:
    """Metrics on every evaluation split (and prediction files for ``evaluation.predict_splits``)."""
    from torch.utils.data import DataLoader

    from harness.evaluation.runner import evaluate_split

    model = trainer_or_model
    task = built.task
    collate = task.collator(built.tokenizer, pad_to_multiple_of=recipe.training.pad_to_multiple_of)
    bs = recipe.training.eval_batch_size or 2 * recipe.training.batch_size
    metrics: dict[str, float] = {}
    splits = list(recipe.evaluation.splits or task.eval_splits)
    for split in dict.fromkeys(splits + list(recipe.evaluation.predict_splits)):
        if split not in built.tokenized:
            raise HarnessError(f"evaluation: split {split!r} does not exist (task has: {', '.join(built.tokenized)})")
        rows = task.arrange(built.tokenized[split], bs, accelerator.num_processes).with_format("torch")
        dl = accelerator.prepare(DataLoader(rows, batch_size=bs, collate_fn=collate))
        split_metrics, predictions = evaluate_split(model, dl, task, accelerator, split)
        if split in splits:
            metrics.update({f"{split}/{k}": v for k, v in split_metrics.items()})
        if split in recipe.evaluation.predict_splits and accelerator.is_main_process:
            task.write_predictions(out / f"predictions_{split}.tsv", split, predictions)
    return metrics


# ---------------------------------------------------------------------------------------- steps


def _flat(d: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(_flat(v, key + "."))
        else:
            out[key] = v if isinstance(v, (int, float, str, bool)) else str(v)
    return out


def save_model(model, tokenizer, accelerator, path: Path) -> None:
    """``save_pretrained`` into a temporary folder, then rename: a reader never sees half a model."""
    import shutil

    from harness.training.checkpoint import replace_dir

    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        tmp = path.with_name(f".tmp-{path.name}")
        shutil.rmtree(tmp, ignore_errors=True)
        accelerator.unwrap_model(model).save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)
        replace_dir(tmp, path)
    accelerator.wait_for_everyone()


def train(recipe_path: str, overrides: list[str]) -> Path:
    """The main job: train, evaluate the best checkpoint, save the model, write the report."""
    from harness import report
    from harness.training import checkpoint as ckpt
    from harness.training.loop import Trainer

    t_start = time.time()
    recipe = load(recipe_path, overrides)
    out = Path(recipe.output_dir)
    check_output_dir(recipe, out)
    from harness.training import counting

    if counting.is_count_based(recipe):  # n-gram LMs: fit → evaluate → report, no gradient loop
        return counting.fit_and_report(recipe, out)
    accelerator = make_accelerator(recipe, out)
    seed_everything(recipe)
    if accelerator.is_main_process:
        out.mkdir(parents=True, exist_ok=True)
        report.write_recipe(out, recipe.raw)
    built = build(recipe, accelerator)
    accelerator.print(
        f"task {built.task.info.name}: "
        + ", ".join(f"{k} {len(v)}" for k, v in built.tokenized.items())
        + f"; trainable parameters {built.trainable_params:,} of {built.total_params:,}"
    )
    trainer = Trainer(recipe, built.task, built.model, built.tokenizer, built.tokenized, accelerator, out)
    if recipe.training.resume:
        resume = recipe.training.resume
        path = ckpt.latest(out / "checkpoints") if resume == "auto" else Path(resume)
        if path is not None:
            if not (path / ckpt.STATE_FILE).is_file():
                raise HarnessError(f"training.resume: {path} is not a complete checkpoint")
            trainer.resume_from(path)
        else:
            accelerator.print(f"training.resume=auto: no checkpoint in {out / 'checkpoints'}, starting fresh")
    if recipe.tracking.report_to:
        accelerator.init_trackers(recipe.tracking.project_name, config=_flat(recipe.raw))
    result = trainer.train()

    if recipe.evaluation.load_best_at_end and result.best_checkpoint and result.state.best_step != result.state.global_step:
        accelerator.print(f"loading the best checkpoint ({trainer.best_key} = {result.state.best_metric:.4f}) from {result.best_checkpoint}")
        accelerator.load_state(str(result.best_checkpoint))
    metrics = final_evaluation(trainer.model, built, recipe, accelerator, out)
    save_model(trainer.model, built.tokenizer, accelerator, out / "model")
    accelerator.end_training()

    st = result.state
    run_info = {
        "train/global_step": st.global_step,
        "train/epochs": round(st.global_step / trainer.steps_per_epoch, 3),
        "train/best_step": st.best_step,
        "train/stopped_early": result.stopped_early,
        "train/seconds": round(st.train_seconds, 2),
        "train/tokens": st.tokens_seen,
        "train/tokens_per_second": round(st.tokens_seen / st.train_seconds, 1) if st.train_seconds else None,
        "train/trainable_parameters": built.trainable_params,
        "train/total_parameters": built.total_params,
        "train/processes": accelerator.num_processes,
        "wall_seconds": round(time.time() - t_start, 2),
    }
    if not accelerator.is_main_process:
        return out / "report.md"
    final = {**metrics, **{k: v for k, v in run_info.items() if v is not None}}
    report.write_metrics(out / "metrics.json", final)
    run_rows = {**report.hardware(), **run_info, **{k: round(v, 1) for k, v in report.peak_memory().items()}}
    run_rows["mixed_precision"] = accelerator.mixed_precision
    from harness.models.rnn.diagnostics import report_gradient_norms  # a recurrent LM only; else None

    splits = recipe.evaluation.splits or built.task.eval_splits
    grads = report_gradient_norms(accelerator.unwrap_model(trainer.model), built.tokenized, splits, out)
    path = report.write_report(out, recipe.name or Path(recipe_path).stem, metrics, st.history, run_rows, grads)
    accelerator.print(f"metrics: {out / 'metrics.json'}\nreport: {path}")
    return path


def evaluate(recipe_path: str, overrides: list[str]) -> dict:
    """Evaluate a saved model (``model.path=DIR``, or the run's own ``output_dir/model``)."""
    from harness import report

    recipe = load(recipe_path, overrides)
    out = Path(recipe.output_dir)
    from harness.training import counting

    if counting.is_count_based(recipe):  # n-gram LMs: score the saved model
        return counting.evaluate_saved(recipe)
    if not recipe.model_path:
        recipe.model_path = str(out / "model")
    accelerator = make_accelerator(recipe, out, trackers=False)
    seed_everything(recipe)
    built = build(recipe, accelerator)
    model = accelerator.prepare(built.model)
    eval_dir = out / "eval"
    metrics = final_evaluation(model, built, recipe, accelerator, eval_dir)
    if accelerator.is_main_process:
        report.write_metrics(eval_dir / "metrics.json", metrics)
        print(f"metrics ({recipe.model_path}):")
        for k, v in sorted(metrics.items()):
            print(f"  {k}: {v:.4f}")
        print(f"written to {eval_dir / 'metrics.json'}")
    return metrics


def main(argv: list[str] | None = None) -> int:
    from harness.cli import main as cli_main

    return cli_main(["train", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    sys.exit(main())
