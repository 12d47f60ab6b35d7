"""Entry point: ``accelerate launch harness/run.py RECIPE [a.b=c ...]`` (the same as ``harness train``).

A run reads as setup → build → train → evaluate → report, each a named step below. The recipe's parts
come from the registry (:mod:`harness.registry`): the data component makes the task, the model
component the model (a PEFT method may wrap it), the task names its evaluator and default step, and the
recipe may name the loss, the step, the callbacks, the optimizer, the schedule and the generation settings.
A model kind that is not trained by gradients names its own procedure in its registry entry (n-grams:
``counting``), and the run hands the recipe to it.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

if __package__ in (None, ""):  # executed as a script by `accelerate launch harness/run.py`
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from harness import registry  # noqa: E402
from harness.config.loader import load_recipe  # noqa: E402
from harness.config.schema import Recipe, is_test_split, validate  # noqa: E402
from harness.errors import HarnessError, first_line, is_main_process, report_errors  # noqa: E402
from harness.training.distributed import check_launch, dataloader_settings, pin_memory  # noqa: E402
from harness.training.sdpa import attention_backends  # noqa: E402


@dataclass
class Built:
    task: object
    model: object
    tokenizer: object
    tokenized: object
    trainable_params: int
    total_params: int
    length_buckets: list[int] | None = None  # every batch padded to one of these lengths (training.length_buckets)


# ---------------------------------------------------------------------------------------- setup


def load(recipe_path: str, overrides: list[str]) -> Recipe:
    """Parse and validate; no data or weights are touched."""
    return validate(load_recipe(recipe_path, overrides))


def procedure_of(recipe: Recipe):
    """The procedure that fits this recipe's model kind when it is not the gradient loop, else None."""
    name = registry.entry("model", recipe.model_component).meta.get("procedure")
    return registry.resolve("procedure", name) if name else None


def run_dir(recipe: Recipe, training: bool = True):
    """The output folder, locked for this command. For training, an earlier run there is refused, or
    (``training.overwrite``) moved aside until this one's training starts
    (:class:`harness.training.rundir.RunDir`); evaluating only takes the lock."""
    from harness.training.rundir import RunDir

    cfg = recipe.training
    return RunDir(Path(recipe.output_dir), overwrite=training and cfg.overwrite, resume=bool(cfg.resume),
                  main=is_main_process(), check_earlier=training)


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


def ddp_settings(recipe: Recipe) -> list:
    """Accelerate's DDP settings for this recipe: ``find_unused_parameters`` when one of its callbacks
    declares ``changes_trainable_parameters`` (gradual unfreezing). The model is wrapped while every parameter
    is trainable, so DDP's reducer expects a gradient for each in every step and stops with "Expected to have
    finished reduction" at the first step where a frozen one has none; with the setting it finds them after
    the forward pass, and leaves a parameter that no process used without a gradient (AdamW skips it), while
    the unfrozen ones are all-reduced as usual (once every weight is unfrozen torch warns, once, that it found
    none unused: expected). Off otherwise: finding them costs a graph walk per step."""
    from accelerate.utils import DistributedDataParallelKwargs

    if any(getattr(registry.resolve("callback", spec["component"]), "changes_trainable_parameters", False)
           for spec in recipe.callbacks):
        return [DistributedDataParallelKwargs(find_unused_parameters=True)]
    return []


def make_accelerator(recipe: Recipe, output_dir: Path, trackers: bool = True):
    from accelerate import Accelerator
    from accelerate.utils import ProjectConfiguration

    import torch

    quiet_tied_weight_notices()

    cfg = recipe.training
    report_to = list(recipe.tracking.report_to) if trackers else []
    # several processes and no GPU: Accelerate picks gloo (MULTI_CPU) only when told cpu=True
    cpu = not torch.cuda.is_available() and int(os.environ.get("WORLD_SIZE", "1")) > 1
    accelerator = Accelerator(
        cpu=cpu,
        mixed_precision=resolve_mixed_precision(cfg.mixed_precision),
        gradient_accumulation_steps=cfg.gradient_accumulation_steps,
        log_with=report_to or None,
        project_config=ProjectConfiguration(project_dir=str(output_dir), logging_dir=str(output_dir / "logs")),
        kwargs_handlers=ddp_settings(recipe),
        dataloader_config=dataloader_settings(),  # non-blocking copies to a GPU
    )
    check_launch(accelerator)  # FSDP / DeepSpeed asked for and not granted: refused
    return accelerator


def quiet_progress_bars() -> None:
    """Progress bars belong on a terminal: written to a log file they are hundreds of KB of ``\\r`` frames.
    Off for ``datasets`` and ``transformers`` when stderr is not a terminal (the loop's own bar, too)."""
    if sys.stderr.isatty():
        return
    import datasets
    import transformers

    datasets.disable_progress_bars()
    transformers.utils.logging.disable_progress_bar()


class _TiedWeightsNotice(logging.Filter):
    """Accelerate warns at every checkpoint of a model with tied embeddings that it "removed shared tensor
    lm_head.weight while saving": the tie is restored on loading (``_tied_weights_keys``), so it is noise."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "Removed shared tensor" not in record.getMessage()


def quiet_tied_weight_notices() -> None:
    logger = logging.getLogger("accelerate.utils.other")
    if not any(isinstance(f, _TiedWeightsNotice) for f in logger.filters):
        logger.addFilter(_TiedWeightsNotice())


def seed_everything(recipe: Recipe) -> None:
    from accelerate.utils import set_seed

    if recipe.training.deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    set_seed(recipe.seed, deterministic=recipe.training.deterministic)


# ---------------------------------------------------------------------------------------- build


def build(recipe: Recipe, accelerator, evaluating: bool = False) -> Built:
    """Data → model (→ PEFT) → tokenized splits. ``evaluating`` (``harness eval``): no train split needed."""
    from harness.data.base import evaluation_only
    from harness.data.tokenize_cache import tokenize_cached
    from harness.training.peft import apply_peft, count_parameters

    with accelerator.main_process_first(), (evaluation_only() if evaluating else contextlib.nullcontext()):
        task = registry.resolve("data", recipe.data_component)(**recipe.data_args)
    if recipe.model_path:
        from harness.models.pretrained import load_saved

        try:
            model, tokenizer = load_saved(recipe.model_path, task)
        except HarnessError:
            raise
        except Exception as e:  # a truncated weights file, a config transformers cannot read ...
            raise HarnessError(f"model.path: {recipe.model_path} cannot be loaded ({type(e).__name__}: "
                               f"{first_line(e)})") from e
    else:
        if recipe.model_args.get("quantization") is not None and not recipe.peft and not evaluating:
            raise HarnessError("model.quantization: a 4-/8-bit base cannot be trained itself, only adapters over it "
                               "(QLoRA); add a peft section (e.g. peft: {method: lora}) or remove model.quantization")
        model, tokenizer = registry.resolve("model", recipe.model_component)(task, **recipe.model_args)
        if recipe.peft:
            model = apply_peft(model, recipe.peft, task.auto_model_class)
    task.configure_for(model)
    with accelerator.main_process_first():  # the main process tokenizes (or reads the cache) first, the others read
        tokenized, cached = tokenize_cached(task, tokenizer, recipe.training.max_length)
    if cached.startswith(("hit", "stored")) and is_main_process():  # harness/data/tokenize_cache.py
        print(f"tokenized splits: {'read from' if cached.startswith('hit') else 'cached in'} {cached.split(' ', 1)[1]}")
    trainable, total = count_parameters(model)
    buckets = length_buckets(recipe, task, tokenizer, tokenized)
    if buckets and is_main_process():
        print(f"length buckets: every batch padded to one of {buckets} tokens")
    return Built(task, model, tokenizer, tokenized, trainable, total, buckets)


def length_buckets(recipe: Recipe, task, tokenizer, tokenized) -> list[int] | None:
    """``training.length_buckets`` resolved: the recipe's lengths, lengths chosen from the train split (``auto``),
    or None. Unset under ``training.compile``: ``auto`` where the task's collator can pad to fixed lengths (a
    compiled model then sees a few static shapes); elsewhere batches stay padded to their longest row."""
    from harness.data.buckets import BucketedCollator, choose_buckets, supports_buckets
    from harness.training.loop import row_lengths

    cfg = recipe.training
    spec = cfg.length_buckets
    collators = (task.collator(tokenizer), task.eval_collator(tokenizer))
    if spec is None:
        if not cfg.compile or task.stateful or not all(supports_buckets(c) for c in collators):
            return None
        spec = "auto"
    if spec == "auto":
        if task.train_split not in tokenized:  # evaluating a saved model: no train split to measure
            return None
        spec = choose_buckets(row_lengths(tokenized[task.train_split]))
    for collator in collators:
        BucketedCollator(collator, spec)  # a collator that pads its own way is refused here, by name
    return list(spec)


def build_evaluation(recipe: Recipe, built: Built, accelerator):
    """The task's evaluator over every evaluation and prediction split, each with a prepared loader."""
    from harness.evaluation.loaders import eval_loader
    from harness.evaluation.runner import Evaluation
    from harness.generation import build_generation

    task, cfg = built.task, recipe.training
    scored = list(recipe.evaluation.splits or task.eval_splits)
    wanted = list(dict.fromkeys(scored + list(recipe.evaluation.predict_splits)))
    for split in wanted:
        if split not in built.tokenized:
            raise HarnessError(f"evaluation: split {split!r} does not exist (task has: {', '.join(built.tokenized)})")
    generation = build_generation(recipe.generation, accelerator.unwrap_model(built.model), built.tokenizer)
    evaluator = registry.resolve("evaluator", task.evaluator)(task=task, tokenizer=built.tokenizer,
                                                              generation=generation)
    batch_size = cfg.eval_batch_size or 2 * cfg.batch_size
    loaders = {s: eval_loader(task, built.tokenized[s], built.tokenizer, batch_size, accelerator.num_processes,
                              cfg.pad_to_multiple_of, recipe.seed, pin_memory=pin_memory(accelerator.device),
                              length_buckets=built.length_buckets)
               for s in wanted}
    prepared = accelerator.prepare(*loaders.values()) if loaders else ()
    if len(loaders) == 1:
        prepared = (prepared,)
    during = [s for s in scored if recipe.evaluation.test_during_training or not is_test_split(s)]
    return Evaluation(evaluator, dict(zip(loaders, prepared)), scored, accelerator, during)


def best_metric(recipe: Recipe, built: Built, evaluation) -> tuple[str | None, bool]:
    """The tracked metric's key (``split/metric``) and its direction."""
    metric = recipe.evaluation.metric_for_best or built.task.info.main_metric
    if not evaluation.during:  # nothing is evaluated during training: the last checkpoint is the one
        return None, True
    key = metric if "/" in metric else f"{evaluation.during[0]}/{metric}"
    greater = recipe.evaluation.greater_is_better
    return key, evaluation.evaluator.greater_is_better(metric) if greater is None else greater


def build_trainer(recipe: Recipe, built: Built, evaluation, accelerator, out: Path):
    """The loop's parts from the recipe: training rows, step, loss, callbacks, optimizer, schedule."""
    from harness.training.callbacks import EarlyStopping
    from harness.data.buckets import bucketed
    from harness.training.loop import TrainParts, Trainer, row_lengths

    task, cfg = built.task, recipe.training
    rows = task.arrange(built.tokenized[task.train_split], cfg.batch_size, accelerator.num_processes)
    lengths = None
    if cfg.group_by_length:
        if task.stateful:
            raise HarnessError("training.group_by_length: this task reads its token streams in order "
                               "(truncated BPTT); its batches are already of equal length")
        lengths = row_lengths(rows)
    step = registry.build("step", recipe.step or {"component": task.default_step})
    if step.needs_stateful_task and not task.stateful:
        raise HarnessError(f"step: {(recipe.step or {}).get('component', task.default_step)!r} needs a task whose "
                           "batches continue each other (a streamed language model: data.component lm_text)")
    loss = registry.build("loss", recipe.loss or {"component": "model"})
    callbacks = [registry.build("callback", spec) for spec in recipe.callbacks]
    if cfg.early_stopping_patience:
        callbacks.append(EarlyStopping(cfg.early_stopping_patience))
    best_key, greater = best_metric(recipe, built, evaluation)
    parts = TrainParts(
        model=built.model, train_rows=rows,
        collate_fn=bucketed(task.collator(built.tokenizer, pad_to_multiple_of=cfg.pad_to_multiple_of),
                            built.length_buckets), length_buckets=built.length_buckets,
        evaluate=evaluation, best_key=best_key, greater_is_better=greater, step=step, loss=loss,
        callbacks=callbacks, optimizer=recipe.optimizer, scheduler=recipe.scheduler, shuffle=not task.stateful,
        lengths=lengths, num_tokens=task.num_tokens, seed=recipe.seed, evaluate_at_start=recipe.evaluation.at_start,
    )
    return Trainer(cfg, parts, accelerator, out)


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


def save_model(model, tokenizer, accelerator, path: Path, generation=None) -> None:
    """``save_pretrained`` into a temporary folder, then rename: a reader never sees half a model. A
    generative model's ``generation_config.json`` carries the recipe's generation settings (those a plain
    ``generate`` runs: :meth:`~harness.generation.GenerationSettings.saved_config`)."""
    import shutil

    from harness.training.checkpoint import replace_dir

    accelerator.wait_for_everyone()
    # FSDP / DeepSpeed hold shards: every process gathers (a collective), the main one writes the full weights
    sharded = getattr(accelerator.distributed_type, "value", "") in ("FSDP", "DEEPSPEED")
    state_dict = accelerator.get_state_dict(model) if sharded else None
    if accelerator.is_main_process:
        tmp = path.with_name(f".tmp-{path.name}")
        shutil.rmtree(tmp, ignore_errors=True)
        unwrapped = accelerator.unwrap_model(model)
        if generation is not None and getattr(unwrapped, "generation_config", None) is not None:
            unwrapped.generation_config = generation.saved_config()
        unwrapped.save_pretrained(tmp, safe_serialization=True, state_dict=state_dict)
        if hasattr(unwrapped, "get_base_model") and not (tmp / "config.json").exists():
            # a PEFT adapter: its base's config beside it, so the head's class names travel with the model
            unwrapped.get_base_model().config.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        replace_dir(tmp, path)
    accelerator.wait_for_everyone()


def resume(trainer, recipe: Recipe, out: Path, accelerator) -> None:
    """Continue from ``training.resume`` (``auto``: the latest checkpoint), after checking that the recipe
    changes nothing the checkpoint fixes; the changes that can apply are said and recorded."""
    from harness.training import checkpoint as ckpt
    from harness.training.rundir import flat_recipe, resume_conflicts

    spec = recipe.training.resume
    path = ckpt.latest(out / "checkpoints") if spec == "auto" else Path(spec)
    if path is None:
        accelerator.print(f"training.resume=auto: no checkpoint in {out / 'checkpoints'}, starting fresh")
        return
    if not (path / ckpt.STATE_FILE).is_file():
        raise HarnessError(f"training.resume: {path} is not a complete checkpoint")
    old, new = ckpt.read_state(path).get("recipe") or {}, flat_recipe(recipe)
    refused, applied = resume_conflicts(old, new) if old else ([], [])
    if refused:
        raise HarnessError(f"training.resume: {path} cannot continue with a changed " + "; ".join(refused)
                           + " (its weights, optimizer state and schedule come from the checkpoint). Resume with "
                           "the recipe it was trained with, or start a new run (another output_dir, or "
                           "training.overwrite=true)")
    if applied:
        accelerator.print(f"resuming {path} with changed settings: {', '.join(applied)}")
    try:
        trainer.resume_from(path)
    except HarnessError:
        raise
    except Exception as e:  # a truncated file, weights of another shape, a missing optimizer state ...
        raise HarnessError(f"training.resume: the checkpoint {path} cannot be loaded into this run "
                           f"({type(e).__name__}: {first_line(e)})") from e
    trainer.state.recipe = new


def prediction_sections(built: Built, evaluation, metrics: dict, out: Path) -> list[list[str]]:
    """The final predictions of the first scored split, as the field looks at them: a confusion matrix for a
    classifier, predicted against gold for a regression, P/R/F1 per entity type for a tagger."""
    import numpy as np

    from harness import report
    from harness.data.base import CLASSIFICATION, REGRESSION

    if not evaluation.scored:
        return []
    split, info = evaluation.scored[0], built.task.info
    gold = evaluation.evaluator.references.get(split)
    predicted = evaluation.predictions.get(split)
    # (a task whose predictions are scores, not class ids — ReCoRD's candidates — gets no confusion matrix)
    if info.problem_type == CLASSIFICATION and gold is not None and info.label_names \
            and np.asarray(predicted).dtype.kind in "iub":
        return [report.confusion_section(split, list(info.label_names), gold, predicted, out)]
    if info.problem_type == REGRESSION and gold is not None and len(gold) > 1:
        return [report.scatter_section(split, gold, predicted, out)]
    section = report.per_type_section(split, metrics)
    return [section] if section else []


def throughput_rows(out: Path) -> list[dict]:
    """``logs/throughput.jsonl`` (step, tokens, seconds per log row); the last row per step (a resumed run
    writes the steps after its checkpoint again)."""
    import json

    path = out / "logs" / "throughput.jsonl"
    rows: dict[int, dict] = {}
    if path.is_file():
        for line in path.read_text().splitlines():
            if line.strip():
                row = json.loads(line)
                rows[row["step"]] = row
    return [rows[s] for s in sorted(rows)]


def report_sections(model, built: Built, splits, out: Path) -> list[list[str]]:
    """What the registered report hooks add to ``report.md`` (a recurrent LM's gradient-through-time plot)."""
    sections = []
    for entry in registry.entries("report"):
        lines = entry.target(model=model, tokenized=built.tokenized, splits=splits, output_dir=out,
                             tokenizer=built.tokenizer)
        if lines:
            sections.append(lines)
    return sections


def write_outputs(out: Path, title: str, metrics: dict, run_info: dict, history: list[dict], extra_rows: dict,
                  sections: list[list[str]], t_start: float, throughput: list[dict] = ()) -> Path:
    """``metrics.json`` (the final metrics and the run's facts) and ``report.md``; main process only."""
    from harness import report

    run_info = {**{k: v for k, v in run_info.items() if v is not None}, "wall_seconds": round(time.time() - t_start, 2)}
    report.write_metrics(out / "metrics.json", {**metrics, **run_info})
    rows = {**report.hardware(), **run_info, **{k: round(v, 1) for k, v in report.peak_memory().items()}, **extra_rows}
    path = report.write_report(out, title, metrics, history, rows, sections, throughput)
    print(f"metrics: {out / 'metrics.json'}\nreport: {path}")
    return path


def train(recipe_path: str, overrides: list[str]) -> Path:
    """The main job: train, evaluate the best checkpoint, save the model, write the report."""
    t_start = time.time()
    recipe = load(recipe_path, overrides)
    with run_dir(recipe) as folder:
        for note in folder.notes:
            print(note, file=sys.stderr)
        report_path = _train(recipe, recipe_path, folder, t_start)
    if recipe.hub.push_to_hub and is_main_process():  # the recipe's hub: section, once the run is complete
        from harness.hub.push import push_after_training

        push_after_training(recipe.hub, recipe.output_dir)
    return report_path


def _attention(recipe: Recipe, accelerator, built: Built):
    """The context the model runs in: the fused attention kernels ``training.attention_backend`` allows."""
    return attention_backends(recipe.training.attention_backend, accelerator.device.type, bool(built.length_buckets))


def _train(recipe: Recipe, recipe_path: str, folder, t_start: float) -> Path:
    from harness import report
    from harness.training.rundir import flat_recipe

    out = Path(recipe.output_dir)
    title = recipe.name or Path(recipe_path).stem
    procedure = procedure_of(recipe)
    if procedure is not None:  # a model kind fitted otherwise (n-gram counting): one process
        if not is_main_process():
            return out / "report.md"
        fitted = procedure.fit(recipe, out)
        folder.commit()
        report.write_recipe(out, recipe.raw)
        return write_outputs(out, title, fitted.metrics, fitted.run_info, [], {}, fitted.sections, t_start)

    # ---- setup
    quiet_progress_bars()
    accelerator = make_accelerator(recipe, out)
    seed_everything(recipe)

    # ---- build
    built = build(recipe, accelerator)
    accelerator.print(
        f"task {built.task.info.name}: "
        + ", ".join(f"{k} {built.task.describe_split(v)}" for k, v in built.tokenized.items())
        + f"; trainable parameters {built.trainable_params:,} of {built.total_params:,}"
    )
    source = built.task.info.extra.get("source")
    if source:  # where the data came from: a local mirror or the Hub
        where = built.task.info.extra.get("path")
        accelerator.print(f"data: {source}{f' ({where})' if where else ''}")
    cfg = recipe.training
    if accelerator.num_processes > 1:  # batch_size is per process: say what one optimizer step sees
        accelerator.print(f"batch: {cfg.batch_size} per process × {accelerator.num_processes} processes × "
                          f"{cfg.gradient_accumulation_steps} accumulation = "
                          f"{cfg.batch_size * accelerator.num_processes * cfg.gradient_accumulation_steps} examples "
                          "per optimizer step (fewer steps per epoch than one process)")
    evaluation = build_evaluation(recipe, built, accelerator)
    trainer = build_trainer(recipe, built, evaluation, accelerator, out)
    trainer.state.recipe = flat_recipe(recipe)
    if recipe.training.resume:
        resume(trainer, recipe, out, accelerator)
    folder.commit()  # the run is under way: an earlier run it replaces goes now
    if accelerator.is_main_process:
        report.write_recipe(out, recipe.raw)
    if recipe.tracking.report_to:
        accelerator.init_trackers(recipe.tracking.project_name, config=_flat(recipe.raw))

    # ---- train
    with _attention(recipe, accelerator, built):
        result = trainer.train()

    # ---- evaluate (the best checkpoint) and save
    st = result.state
    if recipe.evaluation.load_best_at_end and result.best_checkpoint and st.best_step != st.global_step:
        accelerator.print(f"loading the best checkpoint ({trainer.best_key} = {st.best_metric:.4f}) from "
                          f"{result.best_checkpoint}")
        trainer.load_state(result.best_checkpoint)
    with _attention(recipe, accelerator, built):
        metrics = evaluation.final(trainer.eval_model, recipe.evaluation.predict_splits, out)
    save_model(trainer.model, built.tokenizer, accelerator, out / "model",
               evaluation.evaluator.generation if recipe.generation else None)
    accelerator.end_training()

    # ---- report
    if not accelerator.is_main_process:
        return out / "report.md"
    from harness.training.optim import describe

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
        **trainer.callbacks.summary(),  # a callback that changes what trains says what did (gradual unfreezing)
    }
    extra = {"mixed_precision": accelerator.mixed_precision, "optimizer": describe(trainer.optimizer),
             **built.task.report_rows()}
    sections = prediction_sections(built, evaluation, metrics, out)
    sections += report_sections(accelerator.unwrap_model(trainer.model), built, evaluation.scored, out)
    return write_outputs(out, title, metrics, run_info, st.history, extra, sections, t_start, throughput_rows(out))


def evaluate(recipe_path: str, overrides: list[str]) -> dict:
    """Evaluate a saved model (``model.path=DIR``, or the run's own ``output_dir/model``)."""
    recipe = load(recipe_path, overrides)
    with run_dir(recipe, training=False):
        return _evaluate(recipe)


def _evaluate(recipe: Recipe) -> dict:
    from harness import report

    out = Path(recipe.output_dir)
    eval_dir = out / "eval"
    procedure = procedure_of(recipe)
    if procedure is not None:
        main = is_main_process()
        metrics = procedure.evaluate(recipe, out) if main else {}
    else:
        if not recipe.model_path:
            recipe.model_path = str(out / "model")
        quiet_progress_bars()
        accelerator = make_accelerator(recipe, out, trackers=False)
        seed_everything(recipe)
        built = build(recipe, accelerator, evaluating=True)
        model = accelerator.prepare(built.model)
        with _attention(recipe, accelerator, built):
            metrics = build_evaluation(recipe, built, accelerator).final(model, recipe.evaluation.predict_splits, eval_dir)
        main = accelerator.is_main_process
    if main:
        report.write_metrics(eval_dir / "metrics.json", metrics)
        print(f"metrics ({recipe.model_path or out / 'model'}):")
        for k, v in sorted(metrics.items()):
            print(f"  {k}: {v:.4f}")
        print(f"written to {eval_dir / 'metrics.json'}")
    return metrics


def main(argv: list[str] | None = None) -> int:
    """``accelerate launch harness/run.py RECIPE [key=value ...] [--debug]``: train, one ``error:`` line on
    bad input (``harness train`` is the same through :mod:`harness.cli`)."""
    p = argparse.ArgumentParser(prog="harness/run.py", description="train a recipe, evaluate it, write the report")
    p.add_argument("recipe")
    p.add_argument("overrides", nargs="*", metavar="key.path=value")
    p.add_argument("--debug", action="store_true", help="show full tracebacks")
    p.add_argument("--trust-remote-code", action="store_true",
                   help="let a recipe's model.trust_remote_code: true apply (the checkpoint's own code runs)")
    args = p.parse_intermixed_args(sys.argv[1:] if argv is None else argv)
    if args.trust_remote_code:
        from harness.config.schema import TRUST_REMOTE_CODE_ENV

        os.environ[TRUST_REMOTE_CODE_ENV] = "1"

    def command() -> int:
        train(args.recipe, args.overrides)
        return 0

    return report_errors(command, args.debug)


if __name__ == "__main__":
    sys.exit(main())
