#!/usr/bin/env python
"""Benchmark our training loop against the Hugging Face ``Trainer``: same model, data, order, steps.

    HARNESS_DATA_DIR=/work/shared/data HF_HUB_OFFLINE=1 HF_EVALUATE_OFFLINE=1 \\
        .venv/bin/python scripts/bench_loop.py [--repeats 2] [--steps 60] [--write]

One run of this script measures both loops, alternately (ours, Trainer, ours, Trainer, ... for
``--repeats``), each in its own subprocess so that peak memory is per run, and reports

* **tokens/s** — real (non-padding) tokens trained on / seconds of training loop; the median over
  the repeats, and the ratio ours / Trainer (goal ≥ 1.0);
* **peak memory** — ``ru_maxrss`` of the child process when its training loop returns (model load,
  tokenization and the loop; our final evaluation and model save come after and are reported
  separately), and ``torch.cuda.max_memory_allocated`` on a GPU; the ratio ours / Trainer (goal ≤ 1.0);
* **loss curves** — the losses both loops log every ``--log-steps`` optimizer steps (each the mean
  over the batches since the previous row), compared at the same steps.

What is identical between the two runs
    * the recipe: one temporary YAML recipe is the single source of the hyperparameters; the Trainer's
      ``TrainingArguments`` are derived from its validated ``training`` section;
    * data and model: both children call ``harness.run.seed_everything`` and ``harness.run.build``
      (same data component, same model builder, same seed), so tokenized data and initial weights
      (including the newly initialised classifier head) are the same;
    * data order: the Trainer gets our ``EpochSampler`` (``torch.randperm`` seeded with
      ``seed + epoch``) through ``_get_train_sampler``, so both see the same batches in the same order;
    * dropout: the Trainer re-seeds the global RNG in ``__init__``; a callback restores, at
      ``on_train_begin``, the RNG state that ``build`` left — the state our loop starts from. Our
      train loader draws its per-pass base seed from a private ``torch.Generator``; when it does (the
      ours child reports it), the Trainer's loader gets one too, so neither loop's loader consumes the
      global RNG and the dropout masks are the same at every step. A forward pre-hook on the model
      (the same in both loops) checks it: the global RNG state at the first and at the last training
      forward must hash the same;
    * batch size, lr, linear schedule with the same warmup steps, AdamW betas/eps, weight decay off
      for biases and LayerNorm weights (the parameter sets are compared), gradient clipping norm,
      number of optimizer steps, no evaluation or checkpoint during training, no dataloader workers,
      dynamic padding with the task's ``DataCollatorWithPadding``, fp32 (``--mixed-precision bf16``
      for GPU runs).

What differs (each loop as it ships)
    * nothing in the optimizer: both build ``torch.optim.AdamW(fused=True)`` (ours: the ``adamw``
      optimizer component's default wherever every parameter is a float tensor on a CPU or CUDA device;
      the Trainer: ``optim="adamw_torch_fused"``, its default on torch ≥ 2.8). Each run reports the
      optimizer its loop actually built (``harness.training.optim.describe``), so a change shows;
    * the data pipeline: ours reads the dataset ``with_format("torch")``, the Trainer reads Python
      lists; both pad with the same collator;
    * host syncs: ours adds the loss and the token count up on the device and reads them at log steps;
      the Trainer reads its loss at log steps too.

So the loss curves are expected to agree to rounding: the Trainer accumulates a logging window's
losses in a float32 tensor and our loop in float64 — relative differences of order 1e-8, not the
percent-level scatter that two different data orders or dropout streams give.

What the times cover
    * ours: ``train/seconds`` from ``metrics.json`` — from just before the first batch is drawn to the
      last optimizer step and its log row; excludes building, ``accelerator.prepare``, the final
      evaluation and checkpoint (the loop stops its clock around them);
    * Trainer: ``on_train_begin`` → ``on_train_end`` (callback, ``time.perf_counter``) — from just
      before the first batch is drawn to the end of the loop (plus its final metrics log); excludes
      optimizer/scheduler creation and ``accelerator.prepare``, which run before ``on_train_begin``.
      ``trainer.train()``'s whole wall time is reported too.
    * tokens: ours counts ``attention_mask.sum()`` per batch inside the loop (``train/tokens``); for the
      Trainer the script replays the sampler order over the batches the Trainer consumed
      (``global_step × gradient_accumulation_steps``) and sums the unpadded lengths — the same count,
      without touching the timed loop. The two counts are checked to be equal.
    * a contention-robust figure: the probe's timestamps of consecutive training forwards give each
      step's duration (data, forward, backward, clipping, optimizer, logging); per step the fastest
      of the repeats is kept (the same batch in every repeat and both loops), and tokens/s over those.
      On a shared machine (other jobs on the same cores) this moves much less than whole-loop time.

Shared machines
    Each child measures the share of the CPUs that *other* processes used while its loop ran
    (``/proc/stat`` busy time minus its own CPU time). A pair of runs over ``--max-other-load`` is
    discarded and run again (``--retries``). When another job holds a core for long, ``--threads 1``
    (both runs) measures on the free core: with two threads on one free core every step waits on a
    descheduled OpenMP thread, which slows both loops many times over and distorts the ratio.

Data: SST-2 (GLUE component, ``--train-samples`` examples) when ``HARNESS_DATA_DIR`` is set, else the
generated ``synthetic_classification`` task so the script still runs anywhere.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import hashlib
import json
import os
import platform
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "benchmarks.md"
DOC_HEADER = (
    "# Benchmarks\n\n"
    "Every figure here comes with the command that produced it, the hardware, the date, and an anchor "
    "(a reference figure measured in the same run or cited with its source).\n"
)
ANCHOR_NOTE = (
    "the Trainer is overhead-bound on small models: about 900 examples/s fine-tuning MiniLM on SST-2 "
    "on an H100 (figure quoted in the issue)"
)

if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


# ============================================================================================ recipe


def make_recipe(args, data_dir: str | None) -> dict:
    """The one recipe both loops run (our loop reads it; the Trainer child derives its arguments)."""
    if data_dir:
        data = {
            "component": "glue",
            "task": args.task,
            "max_train_samples": args.train_samples,
            "max_eval_samples": args.eval_samples,
        }
    else:
        data = {
            "component": "synthetic_classification",
            "num_train": args.train_samples,
            "num_validation": args.eval_samples,
            "num_test": 0,
            "seed": 0,
        }
    return {
        "name": "bench-loop",
        "output_dir": "unused",  # each run overrides it
        "seed": args.seed,
        "data": data,
        "model": {"component": "pretrained_classifier", "checkpoint": args.checkpoint},
        "optimizer": {"component": "adamw"},
        "scheduler": {"component": "linear"},
        "training": {
            "lr": args.lr,
            "weight_decay": args.weight_decay,
            "batch_size": args.batch_size,
            "eval_batch_size": max(args.eval_samples, 1),
            "gradient_accumulation_steps": 1,
            "max_grad_norm": args.max_grad_norm,
            "max_steps": args.steps,
            "warmup_steps": args.warmup_steps,
            "mixed_precision": args.mixed_precision,
            "max_length": args.max_length,
            "eval_steps": args.steps + 1,  # no evaluation during training (one at the end, untimed)
            "save_total_limit": 1,
            "log_steps": args.log_steps,
            "num_workers": 0,
            "compile": (args.compile_mode or True) if args.compile else False,
        },
        "evaluation": {"load_best_at_end": False},
        "tracking": {"report_to": []},
    }


# ============================================================================================ children


def _rng_hash(state) -> str:
    return hashlib.sha256(state.numpy().tobytes()).hexdigest()[:16]


def _peaks() -> dict:
    import resource

    import torch

    out = {"peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}
    if torch.cuda.is_available():
        out["peak_gpu_mib"] = torch.cuda.max_memory_allocated() / 2**20
    return out


class _Probe:
    """A forward pre-hook: the time of every training forward (one per batch, so the intervals are
    whole steps, data included) and the global RNG state at the first and the latest one. The same
    probe is attached to the model in both loops; it costs a clock read and an RNG-state copy per
    batch."""

    def __init__(self, profile: dict | None = None):
        self.times: list[float] = []
        self.cpu_times: list[float] = []  # this process's CPU time (all threads)
        self.first_rng = None
        self.last_rng = None
        self.profiler = _StepProfiler(**profile) if profile else None

    def attach(self, model) -> list:
        """The hooks on ``model`` (handles, for removal): this probe before every forward, and the profiler's
        end-of-forward mark when profiling."""
        handles = [model.register_forward_pre_hook(self)]
        if self.profiler is not None:
            handles.append(model.register_forward_hook(self.profiler.forward_done))
        return handles

    def __call__(self, module, args):
        if not module.training:
            return
        import torch

        if self.profiler is not None:
            self.profiler.forward_start(len(self.times) + 1)
        self.times.append(time.perf_counter())
        self.cpu_times.append(time.process_time())
        self.last_rng = torch.get_rng_state()
        if self.first_rng is None:
            self.first_rng = self.last_rng

    def report(self) -> dict:
        return {
            "forward_times": [t - self.times[0] for t in self.times] if self.times else [],
            "forward_cpu_times": [t - self.cpu_times[0] for t in self.cpu_times] if self.cpu_times else [],
            "rng_first_forward": _rng_hash(self.first_rng) if self.first_rng is not None else None,
            "rng_last_forward": _rng_hash(self.last_rng) if self.last_rng is not None else None,
            **({"profile": self.profiler.result()} if self.profiler is not None else {}),
        }


#: the parts of a step the profile names, each a profiler event that the loops' own code opens (inclusive CPU time
#: of its calls): the data loader's ``__next__``, the model's forward (our mark, from the probe's pre-hook to a
#: forward hook), the autograd engine's backward, gradient clipping, the optimizer's step and zero_grad
_PHASES = (
    ("data", ("enumerate(DataLoader)",)),
    ("forward", ("bench::forward",)),
    ("backward", ("autograd::engine::evaluate_function", "torch::autograd::")),
    ("clip", ("aten::_foreach_norm", "aten::linalg_vector_norm")),
    ("optimizer", ("Optimizer.step#", "Optimizer.zero_grad#")),
)
_SYNC_EVENTS = ("aten::item", "aten::_local_scalar_dense", "cudaStreamSynchronize", "cudaDeviceSynchronize",
                "cudaEventSynchronize", "aten::is_nonzero")
_LAUNCH_EVENTS = ("cudaLaunchKernel", "cuLaunchKernel", "cudaLaunchKernelExC", "cuLaunchKernelEx", "cudaGraphLaunch")


class _StepProfiler:
    """``torch.profiler`` over ``steps`` consecutive training steps after ``skip`` warm-up steps, driven by the
    probe (one tick per training forward, so the window is whole steps, data loading included), and a summary of
    where a step's milliseconds go: wall time, GPU-busy time (summed kernel and copy time), kernel launches, host
    syncs, and the CPU time of each phase of the step. Only for the ``--profile-steps`` run: profiling slows the
    step, so its times are not the benchmark's."""

    def __init__(self, skip: int, steps: int, top: int = 15):
        self.skip, self.steps, self.top = skip, steps, top
        self.prof = None
        self.forward_mark = None
        self.t0 = None
        self.summary = None

    def _sync(self):
        import torch

        if torch.cuda.is_available():
            torch.cuda.synchronize()

    def forward_start(self, n: int) -> None:
        """Called before training forward number ``n`` (1-based)."""
        import torch

        if n == self.skip + 1 and self.prof is None and self.summary is None:
            activities = [torch.profiler.ProfilerActivity.CPU]
            if torch.cuda.is_available():
                activities.append(torch.profiler.ProfilerActivity.CUDA)
            self._sync()
            self.prof = torch.profiler.profile(activities=activities)
            self.prof.__enter__()
            self.t0 = time.perf_counter()
        elif n == self.skip + self.steps + 1 and self.prof is not None:
            self._stop()
        if self.prof is not None:
            self.forward_mark = torch.profiler.record_function("bench::forward")
            self.forward_mark.__enter__()

    def forward_done(self, module, args, output):
        if self.forward_mark is not None:
            self.forward_mark.__exit__(None, None, None)
            self.forward_mark = None

    def _stop(self) -> None:
        self._sync()
        wall = time.perf_counter() - self.t0
        self.prof.__exit__(None, None, None)
        self.summary = _profile_summary(self.prof, self.steps, wall, self.top)
        self.prof = None

    def result(self) -> dict:
        if self.prof is not None:  # the loop ended inside the window
            return {"error": f"the run ended before the profile window closed (needs {self.skip + self.steps + 1} "
                             "training forwards)"}
        return self.summary or {"error": f"the profile window never opened (needs {self.skip + 1} forwards)"}


def _profile_summary(prof, steps: int, wall: float, top: int) -> dict:
    """Per-step figures from a profiler window of ``steps`` steps that took ``wall`` seconds."""
    import torch

    def device_us(e) -> float:
        return float(getattr(e, "self_device_time_total", None) or getattr(e, "self_cuda_time_total", 0) or 0)

    averages = prof.key_averages()
    on_host = [e for e in averages if e.device_type != torch.autograd.DeviceType.CUDA]
    # kernels and copies; a named range (record_function, the optimizer's step) shows on the device too, spanning
    # the kernels inside it: left out, it would count them twice
    ranges = {e.key for e in on_host}
    on_device = [e for e in averages if e.device_type == torch.autograd.DeviceType.CUDA and e.key not in ranges]

    def count(names) -> float:
        return sum(e.count for e in on_host if e.key.startswith(names)) / steps

    def inclusive_ms(prefixes) -> float:
        return sum(e.cpu_time_total for e in on_host if e.key.startswith(prefixes)) / 1000 / steps

    phases = {name: round(inclusive_ms(prefixes), 3) for name, prefixes in _PHASES}
    ms = 1000 * wall / steps
    busy = sum(device_us(e) for e in on_device) / 1000 / steps
    host_top = sorted(on_host, key=lambda e: e.self_cpu_time_total, reverse=True)[:top]
    device_top = sorted(on_device, key=device_us, reverse=True)[:top]
    return {
        "steps": steps,
        "wall_ms_per_step": round(ms, 3),
        "gpu_busy_ms_per_step": round(busy, 3) if on_device else None,
        "gpu_busy_share": round(busy / ms, 4) if on_device and ms else None,
        "kernels_per_step": round(sum(e.count for e in on_device) / steps, 1) if on_device else None,
        "launches_per_step": round(count(_LAUNCH_EVENTS), 1),
        "syncs_per_step": {n: round(count((n,)), 2) for n in _SYNC_EVENTS if count((n,))},
        "aten_ops_per_step": round(count(("aten::",)), 1),
        "phase_cpu_ms_per_step": phases,
        "top_host_self_cpu": [(e.key, round(e.count / steps, 2), round(e.self_cpu_time_total / 1000 / steps, 3))
                              for e in host_top],
        "top_device": [(e.key[:120], round(e.count / steps, 2), round(device_us(e) / 1000 / steps, 3))
                       for e in device_top],
    }


def _cpu_snapshot() -> tuple[float, float, float]:
    """(CPU-seconds busy on the whole machine incl. steal, this process's CPU-seconds, wall clock)."""
    busy = 0.0
    try:
        with open("/proc/stat") as f:
            fields = [int(x) for x in f.readline().split()[1:]]
        # user nice system idle iowait irq softirq steal ...
        busy = (sum(fields[:3]) + sum(fields[5:8])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        pass
    return busy, time.process_time(), time.perf_counter()


def _foreign_load(a: tuple[float, float, float], b: tuple[float, float, float]) -> float | None:
    """Share of the machine's CPUs that other processes (or the hypervisor) used between two
    snapshots: 0 on a quiet machine, 0.5 when another job kept one of two cores busy."""
    wall = b[2] - a[2]
    if not a[0] or wall <= 0:
        return None
    return max(0.0, ((b[0] - a[0]) - (b[1] - a[1])) / (wall * (os.cpu_count() or 1)))


def child_ours(spec: dict) -> dict:
    """``harness.run.train`` in this process; a thin wrapper around the loop's ``train`` attaches the
    probe, records the RNG state the loop starts from, whether its train loader draws its base seed
    from a private generator, and the peak memory when the loop returns (the loop itself is untouched)."""
    import torch

    from harness import run
    from harness.training import loop
    from harness.training.optim import describe

    info: dict = {}
    probe = _Probe(spec.get("profile"))
    original = loop.Trainer.train

    def observed_train(self):
        base = getattr(self.train_dl, "base_dataloader", self.train_dl)
        info["private_loader_generator"] = getattr(base, "generator", None) is not None
        handles = probe.attach(self.accelerator.unwrap_model(self.model))
        info["optimizer"] = describe(self.optimizer)  # what the shipped loop built, read off the run
        info["rng_at_loop_start"] = _rng_hash(torch.get_rng_state())
        info["peak_at_loop_start"] = _peaks()
        snap = _cpu_snapshot()
        try:
            result = original(self)
        finally:
            for handle in handles:
                handle.remove()
        info["foreign_load"] = _foreign_load(snap, _cpu_snapshot())
        info["peak_at_loop_end"] = _peaks()
        return result

    loop.Trainer.train = observed_train
    out = Path(spec["run_dir"])
    t = time.perf_counter()
    run.train(spec["recipe"], [f"output_dir={out}", "training.overwrite=true"])
    wall = time.perf_counter() - t
    metrics = json.loads((out / "metrics.json").read_text())
    rows = [json.loads(line) for line in (out / "logs" / "history.jsonl").read_text().splitlines() if line.strip()]
    losses = {r["step"]: r["loss"] for r in rows if "loss" in r}
    return {
        "kind": "ours",
        "steps": metrics["train/global_step"],
        "tokens": metrics["train/tokens"],
        "examples": None,  # filled by the parent from the Trainer's replay of the same order
        "seconds": metrics["train/seconds"],
        "call_seconds": wall,
        "losses": losses,
        "rng_at_loop_start": info["rng_at_loop_start"],
        "private_loader_generator": info["private_loader_generator"],
        "foreign_load": info["foreign_load"],
        **probe.report(),
        "peak": info["peak_at_loop_end"],
        "peak_at_loop_start": info["peak_at_loop_start"],
        "peak_whole_run": _peaks(),
        "optimizer": info["optimizer"],
    }


class _NoAccelerator:
    """What ``harness.run.build`` needs from an accelerator when one process builds alone."""

    def main_process_first(self):
        import contextlib

        return contextlib.nullcontext()


def child_trainer(spec: dict) -> dict:
    import contextlib

    import torch
    import transformers
    from transformers import Trainer, TrainerCallback, TrainingArguments

    from harness import run
    from harness.training.loop import EpochSampler
    from harness.training.optim import describe, parameter_groups, warmup_steps

    recipe = run.load(spec["recipe"], [f"output_dir={spec['run_dir']}"])
    cfg = recipe.training
    if recipe.optimizer["component"] != "adamw":
        raise SystemExit("bench_loop: only the adamw optimizer is mapped to the Trainer")
    betas = recipe.optimizer.get("betas", (0.9, 0.999))
    scheduler = recipe.scheduler["component"]
    run.seed_everything(recipe)
    built = run.build(recipe, _NoAccelerator())
    rng_after_build = torch.get_rng_state()  # what our loop starts from (checked by hash)
    task, model, tokenizer = built.task, built.model, built.tokenizer
    train_ds = built.tokenized[task.train_split]

    class _Bench(Trainer):
        def _get_train_sampler(self, train_dataset=None):
            ds = train_dataset if train_dataset is not None else self.train_dataset
            return EpochSampler(len(ds), recipe.seed)

        def get_train_dataloader(self):
            dl = super().get_train_dataloader()
            if spec.get("private_loader_generator"):
                # our loader draws its per-pass base seed from its own generator, not the global RNG
                # that dropout uses; do the same here so the dropout streams stay aligned
                getattr(dl, "base_dataloader", dl).generator = torch.Generator().manual_seed(recipe.seed)
            return dl

    clock: dict = {}

    class _Clock(TrainerCallback):
        def on_train_begin(self, args, state, control, **kw):
            torch.set_rng_state(rng_after_build)
            clock["rng"] = _rng_hash(torch.get_rng_state())
            clock["peak_at_loop_start"] = _peaks()
            clock["snap"] = _cpu_snapshot()
            clock["t0"] = time.perf_counter()

        def on_train_end(self, args, state, control, **kw):
            clock["t1"] = time.perf_counter()
            clock["foreign_load"] = _foreign_load(clock["snap"], _cpu_snapshot())

    mp = cfg.mixed_precision
    targs = TrainingArguments(
        output_dir=str(Path(spec["run_dir"]) / "hf"),
        per_device_train_batch_size=cfg.batch_size,
        gradient_accumulation_steps=cfg.gradient_accumulation_steps,
        learning_rate=cfg.lr,
        weight_decay=cfg.weight_decay,
        adam_beta1=betas[0],
        adam_beta2=betas[1],
        adam_epsilon=recipe.optimizer.get("eps", 1e-8),
        max_grad_norm=cfg.max_grad_norm or 0.0,
        max_steps=cfg.max_steps,
        lr_scheduler_type={"constant": "constant_with_warmup"}.get(scheduler, scheduler),
        warmup_steps=warmup_steps(cfg.warmup_steps, cfg.warmup_ratio, cfg.max_steps),
        logging_strategy="steps",
        logging_steps=cfg.log_steps,
        eval_strategy="no",
        save_strategy="no",
        report_to="none",
        seed=recipe.seed,
        dataloader_num_workers=cfg.num_workers,
        bf16=mp == "bf16",
        fp16=mp == "fp16",
        torch_compile=bool(cfg.compile),  # --compile: the Trainer's own torch.compile beside our training.compile
        # --compile-mode: the same torch.compile mode in both (reduce-overhead: CUDA graphs)
        torch_compile_mode=None if cfg.compile in (False, True) else cfg.compile,
    )
    probe = _Probe(spec.get("profile"))
    probe.attach(model)
    trainer = _Bench(
        model=model,
        args=targs,
        train_dataset=train_ds,
        data_collator=task.collator(tokenizer, pad_to_multiple_of=cfg.pad_to_multiple_of),
        processing_class=tokenizer,
        callbacks=[_Clock()],
    )
    # weight decay: the Trainer's decayed set must be ours
    ours_decay = {id(p) for g in parameter_groups(model, cfg.weight_decay) if g["weight_decay"] for p in g["params"]}
    hf_names = set(trainer.get_decay_parameter_names(model)) if cfg.weight_decay else set()
    hf_decay = {id(p) for n, p in model.named_parameters() if n in hf_names and p.requires_grad}
    # --trainer-attention like-ours: the fused attention kernels our loop allows (training.attention_backend), so
    # that a difference in attention kernels can be told from a difference in the loops
    from harness.training.sdpa import attention_backends

    device_type = "cuda" if torch.cuda.is_available() else "cpu"
    attention = (attention_backends(cfg.attention_backend, device_type, static_shapes=False)
                 if spec.get("trainer_attention") == "like-ours" else contextlib.nullcontext())
    t = time.perf_counter()
    with attention:
        out = trainer.train()
    wall = time.perf_counter() - t
    peak = _peaks()
    losses = {r["step"]: r["loss"] for r in trainer.state.log_history if "loss" in r and "step" in r}
    steps = trainer.state.global_step
    # real tokens: replay the sampler order over the batches consumed
    lengths = [int(sum(m)) for m in train_ds["attention_mask"]]
    batches = steps * cfg.gradient_accumulation_steps
    per_batch = _replay(lengths, cfg.batch_size, recipe.seed, batches)
    return {
        "kind": "trainer",
        "steps": steps,
        "tokens": sum(t for t, _ in per_batch),
        "examples": sum(n for _, n in per_batch),
        "batch_tokens": [t for t, _ in per_batch],
        "seconds": clock["t1"] - clock["t0"],
        "call_seconds": wall,
        "losses": losses,
        "rng_at_loop_start": clock["rng"],
        "private_loader_generator": bool(spec.get("private_loader_generator")),
        "foreign_load": clock["foreign_load"],
        **probe.report(),
        "peak": peak,
        "peak_at_loop_start": clock["peak_at_loop_start"],
        "peak_whole_run": peak,
        "optimizer": f"{describe(trainer.optimizer)}, optim={targs.optim}",
        "weight_decay_sets_equal": ours_decay == hf_decay,
        "train_loss": out.training_loss,
        "transformers": transformers.__version__,
    }


def _replay(lengths: list[int], batch_size: int, seed: int, batches: int) -> list[tuple[int, int]]:
    """(real tokens, examples) of each of the first ``batches`` batches of the ``EpochSampler`` order."""
    from harness.training.loop import EpochSampler

    sampler = EpochSampler(len(lengths), seed)
    out: list[tuple[int, int]] = []
    epoch = 0
    while len(out) < batches:
        sampler.set_epoch(epoch)
        order = list(sampler)
        for i in range(0, len(order), batch_size):
            if len(out) == batches:
                break
            chunk = order[i : i + batch_size]
            out.append((sum(lengths[j] for j in chunk), len(chunk)))
        epoch += 1
    return out


def child_main(kind: str, spec_path: str, result_path: str) -> int:
    import torch

    spec = json.loads(Path(spec_path).read_text())
    if spec.get("threads"):
        torch.set_num_threads(spec["threads"])
    result = child_ours(spec) if kind == "ours" else child_trainer(spec)
    result["torch_threads"] = torch.get_num_threads()
    Path(result_path).write_text(json.dumps(result))
    return 0


# ============================================================================================ parent


def hardware() -> dict:
    import accelerate
    import torch
    import transformers

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), cpu)
    except OSError:
        pass
    hw = {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "torch threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "accelerate": accelerate.__version__,
        "python": platform.python_version(),
    }
    if torch.cuda.is_available():
        hw["gpu"] = torch.cuda.get_device_name(0)
    return hw


def run_child(kind: str, spec: dict, workdir: Path, index: int) -> dict:
    spec_path = workdir / f"spec-{kind}-{index}.json"
    result_path = workdir / f"result-{kind}-{index}.json"
    log_path = workdir / f"log-{kind}-{index}.txt"
    spec_path.write_text(json.dumps(spec))
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", kind, str(spec_path), str(result_path)]
    env = dict(os.environ)
    if spec.get("threads"):
        env.update(OMP_NUM_THREADS=str(spec["threads"]), MKL_NUM_THREADS=str(spec["threads"]))
    with open(log_path, "w") as log:
        proc = subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT, env=env)
    if proc.returncode != 0 or not result_path.is_file():
        tail = log_path.read_text()[-4000:]
        raise SystemExit(f"bench_loop: the {kind} run #{index} failed (exit {proc.returncode}); log {log_path}:\n{tail}")
    return json.loads(result_path.read_text())


def compare_losses(a: dict, b: dict) -> dict:
    steps = sorted(set(a) & set(b), key=int)
    if not steps:
        return {"steps": 0}
    diffs = [abs(a[s] - b[s]) for s in steps]
    rel = [abs(a[s] - b[s]) / max(abs(b[s]), 1e-12) for s in steps]
    return {
        "steps": len(steps),
        "first_step": int(steps[0]),
        "last_step": int(steps[-1]),
        "mean_abs_diff": sum(diffs) / len(diffs),
        "max_rel_diff": max(rel),
        "first_rel_diff": rel[0],
        "rows": [(int(s), a[s], b[s]) for s in steps],
    }


def _pct(x: float | None) -> str:
    return "?" if x is None else f"{x:.0%}"


def _fmt_ratio(x: float) -> str:
    return f"{x:.3f}"


def summarize(runs: list[dict]) -> dict:
    def pick(kind):
        return [r for r in runs if r["kind"] == kind]

    ours, hf = pick("ours"), pick("trainer")
    for r in runs:
        r["tokens_per_second"] = r["tokens"] / r["seconds"] if r["seconds"] else float("nan")
        r["examples_per_second"] = r["examples"] / r["seconds"] if r["seconds"] and r["examples"] else float("nan")
    s = {}
    for name, rs in (("ours", ours), ("trainer", hf)):
        s[name] = {
            "tokens_per_second": statistics.median(r["tokens_per_second"] for r in rs),
            "examples_per_second": statistics.median(r["examples_per_second"] for r in rs),
            "seconds": statistics.median(r["seconds"] for r in rs),
            "peak_rss_mib": statistics.median(r["peak"]["peak_rss_mib"] for r in rs),
            "peak_rss_whole_mib": statistics.median(r["peak_whole_run"]["peak_rss_mib"] for r in rs),
            "peak_gpu_mib": statistics.median(r["peak"]["peak_gpu_mib"] for r in rs) if "peak_gpu_mib" in rs[0]["peak"] else None,
            "tokens": rs[0]["tokens"],
            "examples": rs[0]["examples"],
            "steps": rs[0]["steps"],
            "optimizer": rs[0]["optimizer"],
            # every repeat of one loop should log the same losses (deterministic CPU run)
            "repeats_identical": all(r["losses"] == rs[0]["losses"] for r in rs),
        }
    # contention-robust figure: per step, the fastest of the repeats (steps are the same batches in
    # both loops and in every repeat); intervals between consecutive training forwards
    batch_tokens = hf[0]["batch_tokens"]
    for name, rs in (("ours", ours), ("trainer", hf)):
        intervals = [[b - a for a, b in zip(r["forward_times"], r["forward_times"][1:])] for r in rs]
        n = min(len(x) for x in intervals)
        best = [min(x[i] for x in intervals) for i in range(n)]
        s[name]["best_step_tokens_per_second"] = sum(batch_tokens[:n]) / sum(best) if n else float("nan")
        s[name]["median_step_ms"] = 1000 * statistics.median(v for x in intervals for v in x[:n]) if n else float("nan")
        s[name]["forwards"] = len(rs[0]["forward_times"])
        # CPU-seconds between the first and the last training forward (median over the repeats)
        cpu = statistics.median(r["forward_cpu_times"][n] for r in rs) if n else float("nan")
        s[name]["tokens_per_cpu_second"] = sum(batch_tokens[:n]) / cpu if n and cpu else float("nan")
    s["cpu_tps_ratio"] = s["ours"]["tokens_per_cpu_second"] / s["trainer"]["tokens_per_cpu_second"]
    s["best_step_tps_ratio"] = s["ours"]["best_step_tokens_per_second"] / s["trainer"]["best_step_tokens_per_second"]
    s["tps_ratio"] = s["ours"]["tokens_per_second"] / s["trainer"]["tokens_per_second"]
    s["rss_ratio"] = s["ours"]["peak_rss_mib"] / s["trainer"]["peak_rss_mib"]
    if s["ours"]["peak_gpu_mib"] and s["trainer"]["peak_gpu_mib"]:
        s["gpu_ratio"] = s["ours"]["peak_gpu_mib"] / s["trainer"]["peak_gpu_mib"]
    s["loss"] = compare_losses(ours[0]["losses"], hf[0]["losses"])
    s["rng_aligned"] = all(
        ours[0][k] == hf[0][k] for k in ("rng_at_loop_start", "rng_first_forward", "rng_last_forward")
    )
    s["tokens_equal"] = ours[0]["tokens"] == hf[0]["tokens"]
    s["steps_equal"] = ours[0]["steps"] == hf[0]["steps"]
    s["weight_decay_sets_equal"] = hf[0].get("weight_decay_sets_equal")
    per_ratio = [o["tokens_per_second"] / h["tokens_per_second"] for o, h in zip(ours, hf)]
    s["per_pair_tps_ratio"] = per_ratio
    if "profile" in ours[0]:
        s["profile"] = {"ours": ours[0]["profile"], "trainer": hf[0]["profile"]}
    return s


def render_profile(profile: dict) -> str:
    """The two loops' profiles side by side (``--profile-steps``)."""
    o, h = profile["ours"], profile["trainer"]
    if "error" in o or "error" in h:
        return f"Profile: ours: {o.get('error', 'ok')}; Trainer: {h.get('error', 'ok')}."

    def cell(d, key, spec=".1f"):
        v = d.get(key)
        return "—" if v is None else format(v, spec)

    lines = [f"Profile of {o['steps']} steps (torch.profiler; these steps run slower than unprofiled ones):", "",
             "| per step | ours | HF Trainer |", "|---|---:|---:|"]
    for key, label, spec in (("wall_ms_per_step", "wall ms", ".2f"), ("gpu_busy_ms_per_step", "GPU busy ms", ".2f"),
                             ("gpu_busy_share", "GPU busy share", ".1%"), ("kernels_per_step", "kernels", ".0f"),
                             ("launches_per_step", "kernel launches (host API calls)", ".0f"),
                             ("aten_ops_per_step", "aten ops dispatched", ".0f")):
        lines.append(f"| {label} | {cell(o, key, spec)} | {cell(h, key, spec)} |")
    for phase in o["phase_cpu_ms_per_step"]:
        lines.append(f"| CPU ms in {phase} (inclusive) | {o['phase_cpu_ms_per_step'][phase]:.2f} | "
                     f"{h['phase_cpu_ms_per_step'].get(phase, 0):.2f} |")
    syncs = sorted(set(o["syncs_per_step"]) | set(h["syncs_per_step"]))
    for name in syncs:
        lines.append(f"| {name} calls | {o['syncs_per_step'].get(name, 0):.2f} | {h['syncs_per_step'].get(name, 0):.2f} |")
    for d, name in ((o, "ours"), (h, "HF Trainer")):
        lines += ["", f"{name}: top host events by self CPU ms per step: "
                  + "; ".join(f"{k} ×{c:g} {t:.2f}" for k, c, t in d["top_host_self_cpu"][:10]) + "."]
        if d.get("top_device"):
            lines.append(f"{name}: top device events by ms per step: "
                         + "; ".join(f"{k[:60]} ×{c:g} {t:.2f}" for k, c, t in d["top_device"][:8]) + ".")
    return "\n".join(lines)


def render(s: dict, runs: list[dict], args, setup: dict) -> str:
    o, h = s["ours"], s["trainer"]
    lines = [
        "| metric | ours | HF Trainer | ours / Trainer | goal |",
        "|---|---:|---:|---:|---|",
        f"| tokens/s (median of {args.repeats}) | {o['tokens_per_second']:,.0f} | {h['tokens_per_second']:,.0f} | "
        f"**{_fmt_ratio(s['tps_ratio'])}** | ≥ 1.0 {'✓' if s['tps_ratio'] >= 1.0 else '✗'} |",
        f"| tokens/s, fastest of the repeats per step (contention-robust) | {o['best_step_tokens_per_second']:,.0f} | "
        f"{h['best_step_tokens_per_second']:,.0f} | {_fmt_ratio(s['best_step_tps_ratio'])} | ≥ 1.0 |",
        f"| tokens per CPU-second (process CPU time, first → last forward; median) | "
        f"{o['tokens_per_cpu_second']:,.0f} | {h['tokens_per_cpu_second']:,.0f} | {_fmt_ratio(s['cpu_tps_ratio'])} | ≥ 1.0 |",
        f"| median step, ms | {o['median_step_ms']:.1f} | {h['median_step_ms']:.1f} | "
        f"{o['median_step_ms'] / h['median_step_ms']:.3f} | |",
        f"| examples/s (median) | {o['examples_per_second']:,.1f} | {h['examples_per_second']:,.1f} | "
        f"{o['examples_per_second'] / h['examples_per_second']:.3f} | |",
        f"| training-loop seconds (median) | {o['seconds']:.2f} | {h['seconds']:.2f} | {o['seconds'] / h['seconds']:.3f} | |",
        f"| peak RSS at loop end, MiB (median) | {o['peak_rss_mib']:,.0f} | {h['peak_rss_mib']:,.0f} | "
        f"**{_fmt_ratio(s['rss_ratio'])}** | ≤ 1.0 {'✓' if s['rss_ratio'] <= 1.0 else '✗'} |",
    ]
    if "gpu_ratio" in s:
        lines.append(
            f"| peak GPU allocated, MiB (median) | {o['peak_gpu_mib']:,.0f} | {h['peak_gpu_mib']:,.0f} | "
            f"**{_fmt_ratio(s['gpu_ratio'])}** | ≤ 1.0 {'✓' if s['gpu_ratio'] <= 1.0 else '✗'} |"
        )
    lines += [
        f"| peak RSS whole process, MiB (median) | {o['peak_rss_whole_mib']:,.0f} | {h['peak_rss_whole_mib']:,.0f} | "
        f"{o['peak_rss_whole_mib'] / h['peak_rss_whole_mib']:.3f} | (ours includes final eval + save) |",
        f"| optimizer steps / real tokens / examples | {o['steps']} / {o['tokens']:,} / {o['examples']:,} | "
        f"{h['steps']} / {h['tokens']:,} / {h['examples']:,} | | equal |",
    ]
    lc = s["loss"]
    if lc["steps"]:
        lines.append(
            f"| logged loss, {lc['steps']} rows (steps {lc['first_step']}–{lc['last_step']}) | | | "
            f"mean abs diff {lc['mean_abs_diff']:.2e}, max rel diff {lc['max_rel_diff']:.2e} | agree |"
        )
    lines += [
        "",
        "Checks: "
        + ", ".join(
            [
                f"same steps {'yes' if s['steps_equal'] else 'NO'}",
                f"same real-token count {'yes' if s['tokens_equal'] else 'NO'}",
                f"dropout RNG state equal at loop start, first and last training forward {'yes' if s['rng_aligned'] else 'NO'}",
                f"weight-decay parameter sets equal {'yes' if s['weight_decay_sets_equal'] else 'NO'}",
                f"repeats bit-identical: ours {'yes' if o['repeats_identical'] else 'no'}, "
                f"Trainer {'yes' if h['repeats_identical'] else 'no'}",
            ]
        )
        + ".",
        "",
        "Other load (share of the CPUs that other processes used while each loop ran, from /proc/stat "
        f"minus the run's own CPU time): up to {_pct(max((r.get('foreign_load') or 0.0) for r in runs))} in the runs kept; "
        f"{s.get('discarded_pairs', 0)} pair(s) discarded and re-run for exceeding {_pct(s.get('max_other_load'))}.",
        "",
        "Per run (in the order they ran):",
        "",
        "| # | loop | seconds | tokens/s | examples/s | peak RSS at loop end, MiB | whole-call seconds | other load |",
        "|---:|---|---:|---:|---:|---:|---:|---:|",
    ]
    for i, r in enumerate(runs, 1):
        lines.append(
            f"| {i} | {'ours' if r['kind'] == 'ours' else 'HF Trainer'} | {r['seconds']:.2f} | "
            f"{r['tokens_per_second']:,.0f} | {r['examples_per_second']:,.1f} | {r['peak']['peak_rss_mib']:,.0f} | "
            f"{r['call_seconds']:.1f} | {_pct(r.get('foreign_load'))} |"
        )
    lines += [
        "",
        "Per-pair tokens/s ratio (ours / Trainer, run 2k-1 vs 2k): "
        + ", ".join(f"{x:.3f}" for x in s["per_pair_tps_ratio"])
        + ".",
    ]
    if lc["steps"]:
        lines += ["", "Logged losses at matching steps:", "", "| step | ours | HF Trainer | rel diff |", "|---:|---:|---:|---:|"]
        for step, a, b in lc["rows"]:
            lines.append(f"| {step} | {a:.6f} | {b:.6f} | {abs(a - b) / max(abs(b), 1e-12):.1e} |")
    lines += ["", f"Optimizers: ours {o['optimizer']}; Trainer {h['optimizer']}."]
    return "\n".join(lines)


def command_line(argv: list[str]) -> str:
    env = [f"{k}={shlex.quote(os.environ[k])}" for k in ("HARNESS_DATA_DIR", "HF_HUB_OFFLINE", "HF_EVALUATE_OFFLINE") if k in os.environ]
    py = Path(sys.executable)
    try:
        py_s = str(py.relative_to(ROOT)) if not py.is_absolute() or str(py).startswith(str(ROOT)) else str(py)
    except ValueError:
        py_s = str(py)
    return " ".join(env + [py_s, "scripts/bench_loop.py", *map(shlex.quote, argv)])


def doc_section(s: dict, runs: list[dict], args, setup: dict, hw: dict, argv: list[str], when: str, load: tuple) -> str:
    h = s["trainer"]
    hw_line = (
        f"{hw['cpu']}, {hw['cores']} cores (torch threads {hw['torch threads']})"
        + (f", GPU {hw['gpu']}" if "gpu" in hw else ", no GPU")
        + f"; Python {hw['python']}, torch {hw['torch']}, transformers {hw['transformers']}, accelerate {hw['accelerate']}"
    )
    tps_note = ""
    spread = s["per_pair_tps_ratio"]
    other = max((r.get("foreign_load") or 0.0) for r in runs)
    if other > s["max_other_load"] or max(spread) - min(spread) > 0.1:
        tps_note = (
            f" **Shared machine:** other processes used up to {_pct(other)} of the CPUs during the kept runs and the "
            f"per-pair wall-clock ratios spread from {min(spread):.2f} to {max(spread):.2f}; the wall-clock tokens/s "
            "ratio is not reliable here — read the CPU-time and fastest-per-step rows, which contention moves much less."
        )
    lines = [
        "",
        f"## Training loop vs HF Trainer — {setup['label']} ({when[:10]})",
        "",
        f"- **Command:** `{command_line(argv)}`",
        f"- **Hardware:** {hw_line}",
        f"- **Date:** {when} (load average before/after: {load[0]:.2f} / {load[1]:.2f})",
        f"- **Setup:** {setup['text']}",
        f"- **Anchor:** the HF Trainer measured in this same run: {h['tokens_per_second']:,.0f} tokens/s, "
        f"{h['examples_per_second']:,.1f} examples/s on this CPU. For scale, {ANCHOR_NOTE}.",
        "",
        render(s, runs, args, setup),
        "",
        "What each time covers: ours is `train/seconds` from `metrics.json` (first batch drawn → last optimizer "
        "step and its log row; the final evaluation and checkpoint are outside the clock); the Trainer's is "
        "`on_train_begin` → `on_train_end` (also after optimizer creation and `accelerator.prepare`). Tokens are "
        "real (non-padding) tokens; ours counted in the loop, the Trainer's by replaying the same sampler order. "
        "Peak RSS is `ru_maxrss` of each run's own process when its training loop returns. The "
        "contention-robust row times each step between consecutive training forwards (a forward pre-hook, "
        "the same in both loops) and keeps, per step, the fastest of the repeats; the CPU-time row divides the "
        "same tokens by the process's CPU time (all threads) between the first and the last training forward."
        + tps_note,
        "",
        "Loss agreement: both loops see the same batches in the same order (the Trainer is given our `EpochSampler`), "
        "from the same initial weights and the same dropout RNG stream (checked at the first and last forward), "
        "so the curves agree step by step up to rounding: the Trainer sums a logging window's losses in a float32 "
        "tensor, our loop in float64 on the device, which alone gives relative differences of about 1e-8.",
    ]
    return "\n".join(lines) + "\n"


def append_doc(section: str) -> None:
    DOC.parent.mkdir(parents=True, exist_ok=True)
    if DOC.is_file() and DOC.read_text().strip():
        text = DOC.read_text()
        if not text.endswith("\n"):
            text += "\n"
        DOC.write_text(text + section)
    else:
        DOC.write_text(DOC_HEADER + section)


def parse_args(argv):
    p = argparse.ArgumentParser(description="Our training loop vs the HF Trainer: tokens/s, peak memory, loss curves.")
    p.add_argument("--checkpoint", default="sentence-transformers/all-MiniLM-L6-v2")
    p.add_argument("--task", default="sst2", help="GLUE task when HARNESS_DATA_DIR is set")
    p.add_argument("--train-samples", type=int, default=2000)
    p.add_argument("--eval-samples", type=int, default=64, help="our loop's final (untimed) evaluation")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--max-length", type=int, default=128)
    p.add_argument("--lr", type=float, default=5e-5)
    p.add_argument("--weight-decay", type=float, default=0.01)
    p.add_argument("--warmup-steps", type=int, default=6)
    p.add_argument("--max-grad-norm", type=float, default=1.0)
    p.add_argument("--steps", type=int, default=60, help="optimizer steps")
    p.add_argument("--log-steps", type=int, default=5)
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--repeats", type=int, default=2, help="runs of each loop, alternating")
    p.add_argument("--threads", type=int, help="torch intra-op threads in both runs (default: torch's, one per core)")
    p.add_argument("--max-other-load", type=float, default=None,
                   help="re-run a pair when other processes used more than this share of the CPUs during its loop "
                   "(default 0.10, plus the share of cores that --threads leaves free)")
    p.add_argument("--retries", type=int, default=3, help="pairs re-run at most for --max-other-load")
    p.add_argument("--retry-wait", type=float, default=30.0, help="seconds to wait before re-running a pair")
    p.add_argument("--mixed-precision", choices=["no", "bf16"], default="no", help="bf16 for GPU runs")
    p.add_argument("--compile", action="store_true",
                   help="torch.compile in both loops: our training.compile, the Trainer's torch_compile=True")
    p.add_argument("--compile-mode", choices=["default", "reduce-overhead", "max-autotune"],
                   help="with --compile: torch.compile's mode in both loops (reduce-overhead: CUDA graphs)")
    p.add_argument("--trainer-attention", choices=["shipped", "like-ours"], default="shipped",
                   help="like-ours: the Trainer runs under the fused attention kernels our loop allows "
                        "(training.attention_backend; on a GPU without length buckets: no cuDNN attention)")
    p.add_argument("--profile-steps", type=int, default=0,
                   help="profile this many steps of each loop (torch.profiler) and report where a step's time goes; "
                        "the profiled runs' speeds are not benchmark figures")
    p.add_argument("--profile-skip", type=int, default=10, help="warm-up steps before the profile window")
    p.add_argument("--write", action="store_true", help=f"append a dated section to {DOC.relative_to(ROOT)}")
    p.add_argument("--keep", action="store_true", help="keep the temporary folder (recipes, logs, results)")
    p.add_argument("--json", type=Path, help="also write the raw results here")
    return p.parse_args(argv)


def _compile_text(args) -> str:
    if not args.compile:
        return ""
    mode = f" (mode {args.compile_mode})" if args.compile_mode else ""
    return (f", torch.compile in both loops{mode}: ours pads batches to length buckets and compiles static graphs, "
            "the Trainer pads dynamically and lets dynamo go dynamic")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--child"]:
        return child_main(argv[1], argv[2], argv[3])
    args = parse_args(argv)
    if args.max_other_load is None:
        cores = os.cpu_count() or 1
        args.max_other_load = 0.10 + max(0, cores - (args.threads or cores)) / cores
    if args.repeats < 1 or args.steps < 1:
        raise SystemExit("bench_loop: --repeats and --steps must be ≥ 1")
    if args.profile_steps and args.profile_skip + args.profile_steps >= args.steps:
        raise SystemExit(f"bench_loop: --profile-skip {args.profile_skip} + --profile-steps {args.profile_steps} "
                         f"must be < --steps {args.steps} (the window closes at the next step's forward)")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("HF_EVALUATE_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    data_dir = os.environ.get("HARNESS_DATA_DIR")
    recipe = make_recipe(args, data_dir)
    if data_dir:
        data_label = f"GLUE {args.task.upper()} ({args.train_samples:,} training examples, from $HARNESS_DATA_DIR)"
    else:
        data_label = f"synthetic_classification ({args.train_samples:,} generated examples; HARNESS_DATA_DIR unset)"
    model_label = args.checkpoint.rsplit("/", 1)[-1]
    setup = {
        "label": f"{model_label} on {'SST-2' if data_dir and args.task == 'sst2' else (args.task if data_dir else 'synthetic data')}",
        "text": (
            f"{args.checkpoint} sequence classifier, {data_label}; batch {args.batch_size}, max_length "
            f"{args.max_length}, dynamic padding (DataCollatorWithPadding), AdamW lr {args.lr:g}, weight decay "
            f"{args.weight_decay:g} (not on biases/LayerNorm), linear schedule with {args.warmup_steps} warmup steps, "
            f"max_grad_norm {args.max_grad_norm:g}, {args.steps} optimizer steps, loss logged every {args.log_steps} "
            f"steps, no evaluation during training, no dataloader workers, "
            f"{'fp32' if args.mixed_precision == 'no' else args.mixed_precision}"
            f"{_compile_text(args)}"
            f"{', the Trainer under our loop’s attention kernels' if args.trainer_attention == 'like-ours' else ''}"
            f", seed {args.seed}, "
            f"torch threads {args.threads or 'default (one per core)'}; "
            f"{args.repeats} runs of each loop, alternating, each in its own process."
        ),
    }
    import yaml

    work = Path(tempfile.mkdtemp(prefix="bench_loop-"))
    recipe_path = work / "recipe.yaml"
    recipe_path.write_text(yaml.safe_dump(recipe, sort_keys=False))
    print(f"bench_loop: {setup['text']}\nworking in {work}", flush=True)
    load_before = os.getloadavg()[0]
    runs, discarded, attempts = [], [], 0
    while len(runs) < 2 * args.repeats:
        i = attempts
        attempts += 1
        pair, private_gen = [], None
        for kind in ("ours", "trainer"):
            spec = {"recipe": str(recipe_path), "run_dir": str(work / f"run-{kind}-{i}"), "threads": args.threads}
            if args.profile_steps:
                spec["profile"] = {"skip": args.profile_skip, "steps": args.profile_steps}
            if kind == "trainer":
                spec["private_loader_generator"] = private_gen
                spec["trainer_attention"] = args.trainer_attention
            t = time.perf_counter()
            r = run_child(kind, spec, work, i)
            fl = r.get("foreign_load")
            print(
                f"  {kind:8s} #{i + 1}: {r['tokens'] / r['seconds']:,.0f} tokens/s over {r['seconds']:.2f} s "
                f"({r['steps']} steps), peak RSS {r['peak']['peak_rss_mib']:,.0f} MiB, other load "
                f"{'?' if fl is None else f'{fl:.0%}'}  [{time.perf_counter() - t:.0f} s]",
                flush=True,
            )
            pair.append(r)
            if kind == "ours":
                private_gen = r["private_loader_generator"]
        loads = [r["foreign_load"] for r in pair if r.get("foreign_load") is not None]
        if loads and max(loads) > args.max_other_load and len(discarded) < 2 * args.retries:
            print(f"  pair #{i + 1} discarded: other processes used {max(loads):.0%} of the CPUs; running it again", flush=True)
            discarded += pair
            time.sleep(args.retry_wait)
            continue
        runs += pair
    if discarded:
        print(f"  {len(discarded) // 2} pair(s) discarded for load from other processes", flush=True)
    load_after = os.getloadavg()[0]
    # examples for our runs: same sampler, same batches (the token counts are checked equal)
    hf_examples = next(r["examples"] for r in runs if r["kind"] == "trainer")
    for r in runs:
        if r["examples"] is None:
            r["examples"] = hf_examples
    s = summarize(runs)
    s["discarded_pairs"] = len(discarded) // 2
    s["max_other_load"] = args.max_other_load
    # compare loss rows as strings-keyed dicts from JSON
    hw = hardware()
    hw["torch threads"] = runs[0].get("torch_threads", hw["torch threads"])
    when = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    print()
    print(render(s, runs, args, setup))
    if "profile" in s:
        print()
        print(render_profile(s["profile"]))
    if args.json:
        args.json.write_text(json.dumps({"summary": {k: v for k, v in s.items()}, "runs": runs, "hardware": hw}, indent=1, default=str))
    if args.write:
        append_doc(doc_section(s, runs, args, setup, hw, argv, when, (load_before, load_after)))
        print(f"\nappended to {DOC}")
    if not args.keep:
        import shutil

        shutil.rmtree(work, ignore_errors=True)
    else:
        print(f"kept {work}")
    bad = [k for k in ("steps_equal", "tokens_equal") if not s[k]]
    if bad:
        print(f"warning: {', '.join(bad)} failed: the two runs did not train on the same batches", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
