"""The training loop on Accelerate.

Shape (accelerate's ``nlp_example.py`` + ``gradient_accumulation.py``): one ``prepare``, each micro-batch
inside ``accelerator.accumulate`` handed to the step (forward → loss → backward), clipping and the
optimizer step when gradients sync, evaluation every N optimizer steps and at the end, the best checkpoint
by a named metric, callbacks at every event. The loop takes its :class:`TrainingConfig` and the parts
(:class:`TrainParts`), never the whole recipe, so it can be driven in-process by a test.

No host sync per micro-batch: the loss and the token count add up on the device and are read at log
steps. A model that reports figures of its own training forward (a ``training_stats`` dict of scalar tensors,
e.g. professor forcing's discriminator accuracy and adversarial losses) has them averaged the same way over
each log window into the history rows, beside the loss (this process's figures). A non-finite loss still
never reaches the weights: each optimizer step carries a device flag
(any non-finite micro-batch loss, on any process) into the fused optimizer's ``found_inf``, which skips
that update on the device; the flag is read at the next log step, evaluation or checkpoint, and the run
stops there with the last good checkpoint kept (an optimizer without ``found_inf`` support, or fp16's
gradient scaler, reads the flag before every optimizer step instead).

Exact resume: the train sampler draws each epoch's order from ``seed + epoch`` (never from the global
RNG), a checkpoint is taken only on an optimizer-step boundary and stores the model, optimizer,
scheduler and RNG states (``accelerator.save_state``), the loop's position (epoch, batches consumed in it,
step, best metric, history, callback states; JSON) and what the step carries (truncated BPTT's state;
safetensors). Resuming reloads all of it and skips the consumed batches with
``accelerator.skip_first_batches``, so an interrupted run ends with the same weights as an uninterrupted one.
"""

from __future__ import annotations

import contextlib
import json
import math
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

import torch
from torch.utils.data import DataLoader, Sampler

from harness.config.schema import TrainingConfig
from harness.data.base import count_tokens
from harness.errors import HarnessError, Interrupted, TrainingError
from harness.losses import Loss, ModelOutputLoss
from harness.models.quantization import is_quantized
from harness.training import checkpoint as ckpt
from harness.training.callbacks import Callback, CallbackList
from harness.training.distributed import pin_memory
from harness.training.optim import build_optimizer, build_scheduler, warmup_steps
from harness.training.steps import StandardStep, Step


class EpochSampler(Sampler[int]):
    """A shuffled order that depends only on ``(seed, epoch)``, so a resumed run replays it.

    With ``lengths``, the order is grouped by length as the HF Trainer's ``group_by_length`` does
    (its ``LengthGroupedSampler``): the shuffled order is cut into mega-batches of ``group_size``
    items and each is sorted longest first, so a batch holds rows of similar length and pads
    little, while which rows meet in a mega-batch stays random from epoch to epoch.
    """

    def __init__(self, num_items: int, seed: int, shuffle: bool = True,
                 lengths: list[int] | None = None, group_size: int = 0):
        if lengths is not None and len(lengths) != num_items:
            raise ValueError(f"EpochSampler: {len(lengths)} lengths for {num_items} items")
        self.num_items = num_items
        self.seed = seed
        self.shuffle = shuffle
        self.lengths = lengths
        self.group_size = group_size
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self) -> Iterator[int]:
        if not self.shuffle:
            return iter(range(self.num_items))
        g = torch.Generator().manual_seed(self.seed + self.epoch)
        order = torch.randperm(self.num_items, generator=g).tolist()
        if self.lengths is None or self.group_size <= 1:
            return iter(order)
        grouped = []
        for start in range(0, self.num_items, self.group_size):  # a stable sort: ties keep the shuffle
            grouped += sorted(order[start:start + self.group_size], key=self.lengths.__getitem__, reverse=True)
        return iter(grouped)

    def __len__(self) -> int:
        return self.num_items


#: batches per length-sorted mega-batch (the HF Trainer's LengthGroupedSampler uses 50)
GROUP_BATCHES = 50


def row_lengths(dataset) -> list[int]:
    """Token count of every row (its ``input_ids``), for length grouping."""
    if "input_ids" not in dataset.column_names:
        raise HarnessError(f"training.group_by_length: the train split has no input_ids column to measure (columns: "
                           f"{', '.join(dataset.column_names)})")
    return [len(ids) for ids in dataset["input_ids"]]


@dataclass
class TrainParts:
    """What the loop trains with: built by the runner from a recipe, or by hand in a test."""

    model: torch.nn.Module
    train_rows: object  # a datasets.Dataset (or any map-style dataset) of the task's arranged training rows
    collate_fn: Callable
    #: ``evaluate(model) -> {"split/metric": value}`` on the current weights (None: no evaluation)
    evaluate: Callable[[torch.nn.Module], dict[str, float]] | None = None
    best_key: str | None = None  # the tracked metric ("validation/accuracy")
    greater_is_better: bool = True
    step: Step = field(default_factory=StandardStep)
    loss: Loss = field(default_factory=ModelOutputLoss)
    callbacks: list[Callback] = field(default_factory=list)
    optimizer: dict = field(default_factory=lambda: {"component": "adamw"})  # a registry spec
    scheduler: dict = field(default_factory=lambda: {"component": "linear"})
    shuffle: bool = True  # False: a streamed task reads its rows in order
    lengths: list[int] | None = None  # row lengths for length-grouped batches
    length_buckets: list[int] | None = None  # the collator pads every batch to one of these (compile: static shapes)
    num_tokens: Callable[[dict], object] = count_tokens
    seed: int = 42
    evaluate_at_start: bool = False


@dataclass
class LoopState:
    """Everything besides tensors that a checkpoint must hold to resume exactly."""

    global_step: int = 0
    epoch: int = 0
    batch_in_epoch: int = 0  # batches of the current epoch already consumed (this process)
    best_metric: float | None = None
    best_step: int | None = None
    best_checkpoint: str | None = None
    tokens_seen: int = 0  # all processes (flushed at every log row and checkpoint)
    train_seconds: float = 0.0
    history: list[dict] = field(default_factory=list)  # {"step", "loss", "lr", "epoch"} and eval rows
    callbacks: list[dict] = field(default_factory=list)  # each callback's state_dict
    scheduler: dict = field(default_factory=dict)  # the lr schedule's state_dict (JSON: no pickle to load)
    window_loss: float = 0.0  # the loss summed since the last log row, and over how many batches
    window_batches: int = 0
    window_stats: dict = field(default_factory=dict)  # the model's training_stats: name -> [sum, count] this window
    lowest_loss: float | None = None  # the lowest logged training loss so far
    last_sane_checkpoint: str | None = None  # the newest checkpoint written before any loss spike
    recipe: dict = field(default_factory=dict)  # what the run was trained with (a resume compares it)


#: a training-loss row's own keys; anything else in the row is a model's ``training_stats``
_ROW_KEYS = ("step", "epoch", "loss", "lr")


def _clip_groups(model, wrapped, accelerator) -> tuple[list[list], list]:
    """The parameter groups whose gradients ``max_grad_norm`` clips on their own (a model's
    ``separately_clipped_parameters()``: professor forcing's discriminator), and all the others, clipped together.

    One optimizer trains both players of an adversarial model, but their gradients must not share one clipping
    norm: the discriminator's gradient (norm 16 against the token loss's 0.8, measured on the Multi30k model)
    would scale the generator's updates down 16-fold — what separate optimizers would not do. Under FSDP (which
    clips only the whole model) and DeepSpeed (which clips inside its engine) every parameter is clipped together."""
    from accelerate.utils import DistributedType

    groups = getattr(model, "separately_clipped_parameters", None)
    apart = [list(g) for g in groups()] if callable(groups) else []
    apart = [g for g in apart if g]
    if not apart or accelerator.distributed_type in (DistributedType.FSDP, DistributedType.DEEPSPEED):
        return [], []
    ids = {id(p) for g in apart for p in g}
    return apart, [p for p in wrapped.parameters() if id(p) not in ids]


@dataclass
class TrainResult:
    state: LoopState
    stopped_early: bool
    best_checkpoint: Path | None


def _is_better(value: float, best: float | None, greater: bool) -> bool:
    return best is None or (value > best if greater else value < best)


STEP_STATE = "step_state_{}.safetensors"
RNG_STATE = "rng_state_{}"  # .safetensors (torch generators) and .json (Python's and numpy's)
#: a logged training loss this many times the lowest one so far is a spike: checkpoints written after it
#: are not "good" ones to go back to when the run later fails
SPIKE = 10.0


def _save_rng(stem: Path) -> None:
    """Every random generator the run draws from, without pickle: torch's (CPU and each CUDA device) as
    safetensors, Python's and numpy's as JSON."""
    import random

    import numpy as np
    from safetensors.torch import save_file

    tensors = {"cpu": torch.get_rng_state()}
    if torch.cuda.is_available():
        tensors.update({f"cuda{i}": s for i, s in enumerate(torch.cuda.get_rng_state_all())})
    save_file(tensors, str(stem.with_suffix(".safetensors")))
    version, internal, gauss = random.getstate()
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    stem.with_suffix(".json").write_text(json.dumps({"python": [version, list(internal), gauss],
                                                     "numpy": [kind, keys.tolist(), pos, has_gauss, cached]}))


def _load_rng(stem: Path) -> None:
    """Restore :func:`_save_rng`'s states (a checkpoint written before they were saved: nothing to do)."""
    import random

    import numpy as np
    from safetensors.torch import load_file

    if not stem.with_suffix(".safetensors").is_file():
        return
    tensors = load_file(str(stem.with_suffix(".safetensors")))
    torch.set_rng_state(tensors["cpu"])
    cuda = [tensors[f"cuda{i}"] for i in range(len(tensors) - 1) if f"cuda{i}" in tensors]
    if cuda and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(cuda)
    states = json.loads(stem.with_suffix(".json").read_text())
    version, internal, gauss = states["python"]
    random.setstate((version, tuple(internal), gauss))
    kind, keys, pos, has_gauss, cached = states["numpy"]
    np.random.set_state((kind, np.asarray(keys, dtype=np.uint32), pos, has_gauss, cached))


def _trainable(model) -> dict[str, torch.nn.Parameter]:
    return {name: p for name, p in model.named_parameters() if p.requires_grad}


def _keep_trainable(models, weights, output_dir) -> None:
    """Accelerate's save-state hook over a quantized base: each model's saved state keeps its trainable weights."""
    for model, state in zip(models, weights):
        keep = _trainable(model)
        for key in [k for k in state if k not in keep]:
            del state[key]


class Trainer:
    def __init__(self, cfg: TrainingConfig, parts: TrainParts, accelerator, output_dir: Path):
        self.cfg = cfg
        self.parts = parts
        self.accelerator = accelerator
        self.output_dir = Path(output_dir)
        self.ckpt_root = self.output_dir / "checkpoints"
        self.history_path = self.output_dir / "logs" / "history.jsonl"
        self.throughput_path = self.output_dir / "logs" / "throughput.jsonl"
        self.step, self.loss = parts.step, parts.loss
        self.callbacks = CallbackList(parts.callbacks)
        self.best_key, self.greater = parts.best_key, parts.greater_is_better
        getattr(self.loss, "check", lambda: None)()  # a Loss refuses trainable parameters

        self.sampler = EpochSampler(len(parts.train_rows), parts.seed, shuffle=parts.shuffle, lengths=parts.lengths,
                                    group_size=GROUP_BATCHES * cfg.batch_size * accelerator.num_processes)
        # a DataLoader draws a base seed each time it starts iterating; from the global RNG that would make
        # a resumed run's dropout masks differ, so the loader gets its own generator
        train_dl = DataLoader(parts.train_rows, batch_size=cfg.batch_size, sampler=self.sampler,
                              collate_fn=parts.collate_fn, num_workers=cfg.num_workers,
                              pin_memory=pin_memory(accelerator.device),  # CUDA: non-blocking copies from it
                              generator=torch.Generator().manual_seed(parts.seed))
        optimizer = build_optimizer(parts.model, parts.optimizer, cfg.lr, cfg.weight_decay)
        self.model, self.optimizer, self.train_dl = accelerator.prepare(parts.model, optimizer, train_dl)
        prepared = self.model  # the eager (DDP-wrapped) module under any compilation
        if cfg.compile:
            # the training forward/backward compiled (TorchInductor: fused kernels; CUDA graphs only in the modes
            # that ask for them); unwrap_model returns the eager module for saving, generate and checkpoints
            # with length buckets every batch has one of a few shapes: one static graph each (training and
            # evaluation, full and last batches), within dynamo's recompile limit; without buckets dynamo compiles
            # dynamic-shape kernels after the second shape
            buckets = parts.length_buckets
            if buckets:
                import torch._dynamo.config as dynamo

                dynamo.recompile_limit = max(dynamo.recompile_limit, 4 * len(buckets) + 8)
            mode = None if cfg.compile is True else cfg.compile
            self.model = torch.compile(self.model, dynamic=False if buckets else None, mode=mode)
        # CUDA graphs (reduce-overhead, max-autotune on a GPU): each training step starts a new replay, so the
        # outputs of the last one may be overwritten (the loop keeps none of them past its own step)
        self._cudagraph_steps = (cfg.compile in ("reduce-overhead", "max-autotune")
                                 and accelerator.device.type == "cuda")
        # an evaluation keeps every batch's outputs on the device until the split ends, which a CUDA-graph replay
        # would overwrite: under CUDA graphs evaluations run the eager module
        self.eval_model = prepared if self._cudagraph_steps else self.model

        # a quantized base (QLoRA) stays frozen and is rebuilt from its own checkpoint at load: the run's
        # checkpoints hold the trainable weights only (its 4-bit state would not load back into a quantized model)
        self._trainable_only = is_quantized(self.unwrapped_model)
        if self._trainable_only:
            accelerator.register_save_state_pre_hook(_keep_trainable)

        self.batches_per_epoch = len(self.train_dl)
        self.steps_per_epoch = math.ceil(self.batches_per_epoch / cfg.gradient_accumulation_steps)
        self.total_steps = cfg.max_steps or max(1, math.ceil(cfg.num_epochs * self.steps_per_epoch))
        # not prepared: Accelerate would step a prepared scheduler once per process per step; not registered
        # for Accelerate's checkpointing either (it pickles custom objects and loads them with weights_only=False):
        # its state goes into the checkpoint's JSON
        self.scheduler = build_scheduler(self.optimizer, parts.scheduler, self.total_steps, self.steps_per_epoch,
                                         warmup_steps(cfg.warmup_steps, cfg.warmup_ratio, self.total_steps))

        self.state = LoopState()
        self._signal: int | None = None  # SIGINT / SIGTERM received while training
        self._saved_step: int | None = None  # the step of the last checkpoint written
        self._stop_reason: str | None = None
        self._stopped_early = False
        self._t0 = time.perf_counter()  # when the running stretch of training time started
        self._print_rows = False  # no progress bar (not a terminal): each log row is printed as a line
        device = accelerator.device
        self._tokens = torch.zeros((), dtype=torch.int64, device=device)  # this process, since the last flush
        self._loss_sum = torch.zeros((), dtype=torch.float32 if device.type == "mps" else torch.float64, device=device)
        self._loss_n = 0
        #: the model's own figures (``training_stats``), summed on the device over the log window: name -> [sum, n]
        self._stats: dict[str, list] = {}
        self._stats_source = self.unwrapped_model if isinstance(
            getattr(self.unwrapped_model, "training_stats", None), dict) else None
        self._clip_apart, self._clip_rest = _clip_groups(self.unwrapped_model, self.model, accelerator)
        self._bad = torch.zeros((), dtype=torch.bool, device=device)  # a non-finite loss in this optimizer step
        self._first_bad = torch.full((), -1, dtype=torch.int64, device=device)  # the first such step, ever
        inner = getattr(self.optimizer, "optimizer", self.optimizer)
        # the fused kernels skip an update on the device when ``found_inf`` is set; fp16's scaler owns it
        self._device_skip = bool(inner.defaults.get("fused")) and getattr(accelerator, "scaler", None) is None

    # ------------------------------------------------------------------ callbacks' handles

    def request_stop(self, reason: str, early: bool = False) -> None:
        """Stop after the current optimizer step (a callback's way to end training)."""
        self._stop_reason = reason
        self._stopped_early = self._stopped_early or early

    @property
    def unwrapped_model(self):
        return self.accelerator.unwrap_model(self.model)

    def record(self, row: dict) -> None:
        """Add a row (``{"step": ..., ...}``) to the run's history (``logs/history.jsonl``, kept by checkpoints):
        a callback's event, such as a gradual-unfreezing stage."""
        self._record(row)

    # ------------------------------------------------------------------ bookkeeping

    def _take_stats(self) -> None:
        """Add the model's ``training_stats`` of the forward just run to the window's sums (on the device) and
        empty the dict, so a forward that reports nothing adds nothing."""
        stats = self._stats_source.training_stats
        for name, value in stats.items():
            value = value.detach().to(self._loss_sum.dtype).reshape(())
            entry = self._stats.get(name)
            if entry is None:
                self._stats[name] = [value.clone(), 1]  # a copy: a CUDA-graph replay reuses its output's memory
            else:
                entry[0] += value
                entry[1] += 1
        stats.clear()

    def _flush_tokens(self) -> None:
        total = self.accelerator.reduce(self._tokens.clone(), reduction="sum")
        self.state.tokens_seen += int(total.item())
        self._tokens.zero_()

    def _record(self, row: dict) -> None:
        self.state.history.append(row)
        if self.accelerator.is_main_process:
            self.history_path.parent.mkdir(parents=True, exist_ok=True)
            with open(self.history_path, "a") as f:
                f.write(json.dumps(row) + "\n")

    def _raise_if_bad(self) -> None:
        """Read the device's non-finite flag (a host sync: at log steps, evaluations and checkpoints only)."""
        first = int(self._first_bad.item())
        if first < 0:
            return
        good, latest = self.state.last_sane_checkpoint, ckpt.latest(self.ckpt_root)
        advice = ("Start again with a lower training.lr or training.max_grad_norm (another output_dir, or "
                  "training.overwrite=true)")
        if good is None:
            kept = "no checkpoint before it is a good one to go back to"
        else:
            kept = f"the last good checkpoint is {good}"
            if latest is not None and Path(good) != latest:
                kept += f" (later ones, up to {latest.name}, were written after the training loss spiked)"
            advice += (f", or go on from {Path(good).name} with training.resume={good} (a resumed run keeps that "
                       "checkpoint's learning rate and schedule)")
        if self.accelerator.mixed_precision == "fp16":
            advice += "; training.mixed_precision=bf16 avoids fp16's overflow"
        raise TrainingError(
            f"non-finite loss at step {first} (found at step {self.state.global_step}, epoch {self.state.epoch}); "
            f"that update was skipped and the run stopped before saving anything; {kept}. {advice}."
        )

    # ------------------------------------------------------------------ checkpoints

    def save_checkpoint(self) -> Path:
        self._raise_if_bad()
        acc = self.accelerator
        final = ckpt.checkpoint_dir(self.ckpt_root, self.state.global_step)
        if acc.is_main_process:
            ckpt.temporary_dir(self.ckpt_root, self.state.global_step)  # clears a stale one
        self._flush_tokens()
        self.state.callbacks = self.callbacks.state_dict()
        self.state.scheduler = self.scheduler.state_dict()
        self.state.window_loss = float(self._loss_sum.item())  # the open log window continues after a resume
        self.state.window_batches = self._loss_n
        self.state.window_stats = {name: [float(total.item()), n] for name, (total, n) in self._stats.items()}
        acc.wait_for_everyone()
        tmp = self.ckpt_root / f".tmp-checkpoint-{self.state.global_step}"
        try:
            acc.save_state(str(tmp), safe_serialization=True)  # every process writes its RNG state here
            carried = self.step.state_tensors()
            if carried:
                from safetensors.torch import save_file

                save_file({k: v.detach().cpu().contiguous() for k, v in carried.items()},
                          str(tmp / STEP_STATE.format(acc.process_index)))
            _save_rng(tmp / RNG_STATE.format(acc.process_index))
        except OSError as e:  # a full disk, a folder gone read-only: the earlier checkpoints stay
            self._cannot_save(final, e)
        acc.wait_for_everyone()
        last = next((r["loss"] for r in reversed(self.state.history) if "loss" in r), None)
        lowest = self.state.lowest_loss
        spiked = last is not None and (not math.isfinite(last) or (lowest is not None and last > SPIKE * lowest))
        if not spiked:
            self.state.last_sane_checkpoint = str(final)
        if acc.is_main_process:
            try:
                ckpt.commit(tmp, final, dict(vars(self.state)))
            except OSError as e:
                self._cannot_save(final, e)
            protect = {Path(p) for p in (self.state.best_checkpoint, self.state.last_sane_checkpoint) if p}
            ckpt.prune(self.ckpt_root, self.cfg.save_total_limit, protect)
        acc.wait_for_everyone()
        self._saved_step = self.state.global_step
        self.callbacks.call("on_save", self, final)
        return final

    def _cannot_save(self, final: Path, error: OSError):
        raise TrainingError(f"checkpoint {final.name} cannot be written in {self.ckpt_root} "
                            f"({error.strerror or error}); the earlier checkpoints are kept") from error

    def load_state(self, path: Path) -> None:
        """The checkpoint's model, optimizer and RNG states (``accelerator.load_state``). Over a quantized base the
        checkpoint holds the trainable weights only: the rest stays as loaded; every trainable weight must be in
        the file and, once loaded, equal to it (a non-strict load that matched no name would otherwise pass)."""
        if not self._trainable_only:
            self.accelerator.load_state(str(path))
            return
        from safetensors.torch import load_file

        weights = path / "model.safetensors"
        saved = load_file(str(weights))
        trainable = _trainable(self.unwrapped_model)
        lacking = sorted(set(trainable) - set(saved))
        if lacking:
            raise TrainingError(f"{weights}: {len(lacking)} trainable weights are missing (first: {lacking[0]}); "
                                "the checkpoint was not written by this recipe")
        self.accelerator.load_state(str(path), strict=False)
        differ = [name for name, p in trainable.items() if not torch.equal(p.detach().cpu(), saved[name])]
        if differ:
            raise TrainingError(f"{weights}: {len(differ)} trainable weights did not load (first: {differ[0]})")

    def resume_from(self, path: Path) -> None:
        acc = self.accelerator
        self.load_state(path)
        # Accelerate skips RNG states it cannot load with a log line only; ours make the resume exact
        _load_rng(path / RNG_STATE.format(acc.process_index))
        saved = ckpt.read_state(path)
        known = set(LoopState.__dataclass_fields__)
        self.state = LoopState(**{k: v for k, v in saved.items() if k in known})
        self.callbacks.load_state_dict(self.state.callbacks)
        if self.state.scheduler:
            self.scheduler.load_state_dict(self.state.scheduler)
        elif (path / "custom_checkpoint_0.pkl").is_file():  # written before the schedule went into the JSON
            self.scheduler.load_state_dict(torch.load(path / "custom_checkpoint_0.pkl", weights_only=True))
        self._loss_sum.fill_(self.state.window_loss)
        self._loss_n = self.state.window_batches
        self._stats = {name: [torch.tensor(total, dtype=self._loss_sum.dtype, device=self._loss_sum.device), n]
                       for name, (total, n) in self.state.window_stats.items()}
        carried = path / STEP_STATE.format(acc.process_index)
        if carried.is_file():
            from safetensors.torch import load_file

            self.step.load_state_tensors(load_file(str(carried)), self.unwrapped_model)
        if acc.is_main_process:  # drop log rows written after this checkpoint by the interrupted run
            self.history_path.parent.mkdir(parents=True, exist_ok=True)
            with open(self.history_path, "w") as f:
                f.writelines(json.dumps(row) + "\n" for row in self.state.history)
        acc.print(f"resumed from {path} (step {self.state.global_step}, epoch {self.state.epoch}, "
                  f"batch {self.state.batch_in_epoch}/{self.batches_per_epoch})")

    # ------------------------------------------------------------------ evaluation

    def evaluate(self) -> dict[str, float]:
        return self.parts.evaluate(self.eval_model) if self.parts.evaluate is not None else {}

    def _after_eval(self, metrics: dict[str, float]) -> None:
        """Log, track the best metric, tell the callbacks, checkpoint."""
        st = self.state
        self._record({"step": st.global_step, "epoch": st.epoch, "eval": metrics})
        self.accelerator.log({f"eval/{k}": v for k, v in metrics.items()}, step=st.global_step)
        self.accelerator.print(
            # split/metric only: per-class breakdowns (split/PER/f1, ...) go to the log file, not the console
            f"step {st.global_step}: " + ", ".join(f"{k}={v:.4f}" for k, v in sorted(metrics.items()) if k.count("/") <= 1)
        )
        improved = False
        if self.best_key is not None:
            if self.best_key not in metrics:
                raise HarnessError(f"evaluation.metric_for_best: {self.best_key!r} is not among the computed metrics "
                                   f"({', '.join(sorted(metrics))})")
            value = metrics[self.best_key]
            improved = _is_better(value, st.best_metric, self.greater)
            if improved:
                st.best_metric, st.best_step = value, st.global_step
        self.callbacks.call("on_evaluate", self, metrics, improved)
        if improved or self.cfg.save_steps is None:
            if improved:
                st.best_checkpoint = str(ckpt.checkpoint_dir(self.ckpt_root, st.global_step))
            self.save_checkpoint()

    # ------------------------------------------------------------------ training

    def _optimizer_step(self) -> None:
        """Clip and step once gradients are synced; a non-finite loss in the accumulated micro-batches
        skips the update (on the device where the optimizer can, else after reading the flag)."""
        acc, cfg = self.accelerator, self.cfg
        bad = self._bad
        if acc.num_processes > 1:
            bad = acc.reduce(bad.to(torch.int32), reduction="sum") > 0
        self._first_bad = torch.where(bad & (self._first_bad < 0), self.state.global_step + 1, self._first_bad)
        if not self._device_skip:
            self._raise_if_bad()
        if cfg.max_grad_norm:
            if self._clip_apart:
                acc.clip_grad_norm_(self._clip_rest, cfg.max_grad_norm)  # unscales fp16 gradients, once
                for group in self._clip_apart:
                    torch.nn.utils.clip_grad_norm_(group, cfg.max_grad_norm)
            else:
                acc.clip_grad_norm_(self.model.parameters(), cfg.max_grad_norm)
        if self._device_skip:
            getattr(self.optimizer, "optimizer", self.optimizer).found_inf = bad.to(torch.float32)
        self.optimizer.step()
        if not acc.optimizer_step_was_skipped:
            self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        self._bad.zero_()

    def _log_row(self) -> dict:
        st = self.state
        self._raise_if_bad()
        row = {
            "step": st.global_step,
            "epoch": round(st.epoch + st.batch_in_epoch / self.batches_per_epoch, 4),
            "loss": float(self._loss_sum.item()) / max(self._loss_n, 1),
            "lr": self.scheduler.get_last_lr()[0],
        }
        clash = next((name for name in self._stats if name in row), None)
        if clash is not None:
            raise TrainingError(f"{type(self._stats_source).__name__}.training_stats: {clash!r} would overwrite the "
                                f"history row's own {clash!r}; rename it")
        row.update({name: float(total.item()) / n for name, (total, n) in self._stats.items()})
        self._stats.clear()
        self._flush_tokens()
        if self.accelerator.is_main_process:  # throughput over training, for the report (not part of the history)
            seconds = st.train_seconds + time.perf_counter() - self._t0
            self.throughput_path.parent.mkdir(parents=True, exist_ok=True)
            with open(self.throughput_path, "a") as f:
                f.write(json.dumps({"step": st.global_step, "tokens": st.tokens_seen, "seconds": round(seconds, 4)}) + "\n")
        if math.isfinite(row["loss"]) and (self.state.lowest_loss is None or row["loss"] < self.state.lowest_loss):
            self.state.lowest_loss = row["loss"]
        self._record(row)
        self.accelerator.log({f"train/{k}": v for k, v in row.items() if k not in ("step", "epoch")},
                             step=st.global_step)
        self._loss_sum.zero_()
        self._loss_n = 0
        if self._print_rows:
            extra = "".join(f", {k} {v:.4g}" for k, v in row.items() if k not in _ROW_KEYS)
            self.accelerator.print(f"step {st.global_step}/{self.total_steps}: loss {row['loss']:.4f}, "
                                   f"lr {row['lr']:.3g}{extra}")
        self.callbacks.call("on_log", self, row)
        return row

    @contextlib.contextmanager
    def _signals(self):
        """While training, SIGINT and SIGTERM ask for a stop at the next optimizer-step boundary, with a
        checkpoint to resume from; a second one stops at once."""

        def handler(signum, frame):
            if self._signal is not None:
                signal.signal(signum, previous.get(signum, signal.SIG_DFL))
                raise Interrupted(f"interrupted again ({signal.Signals(signum).name}) before the checkpoint; "
                                  "the last complete checkpoint is kept", signum)
            self._signal = signum
            self.accelerator.print(f"{signal.Signals(signum).name}: stopping at the next step with a checkpoint "
                                   "(send it again to stop now)")

        previous = {}
        try:
            for sig in (signal.SIGINT, signal.SIGTERM):
                previous[sig] = signal.signal(sig, handler)
        except ValueError:  # not the main thread: leave signals alone
            pass
        try:
            yield
        finally:
            for sig, old in previous.items():
                signal.signal(sig, old)

    def _signalled(self, log_step: bool) -> bool:
        """Whether a stop signal arrived (on any process: checked at log steps when there are several)."""
        if self.accelerator.num_processes == 1:
            return self._signal is not None
        if not log_step:
            return False
        flag = torch.tensor(int(self._signal is not None), device=self.accelerator.device)
        return bool(self.accelerator.reduce(flag, reduction="sum").item())

    def _stop_for_signal(self) -> None:
        path = ckpt.checkpoint_dir(self.ckpt_root, self.state.global_step)
        if self._saved_step != self.state.global_step:
            path = self.save_checkpoint()
        signum = self._signal or signal.SIGTERM
        raise Interrupted(f"interrupted ({signal.Signals(signum).name}) at step {self.state.global_step}; checkpoint "
                          f"saved at {path}: continue with training.resume=auto", signum)

    def train(self) -> TrainResult:
        from tqdm.auto import tqdm

        if self.accelerator.is_main_process:
            ckpt.clean_partial(self.ckpt_root)
        # a progress bar on a terminal only (disable=None); in a log file each log row is a line instead
        bar = tqdm(total=self.total_steps, initial=self.state.global_step,
                   disable=None if self.accelerator.is_local_main_process else True, desc="train")
        self._print_rows = bar.disable
        try:
            with self._signals():
                return self._train(bar)
        finally:
            bar.close()  # before any error line, which then starts a line of its own

    def _train(self, bar) -> TrainResult:
        acc, cfg, st = self.accelerator, self.cfg, self.state
        eval_every = cfg.eval_steps or self.steps_per_epoch
        save_every = cfg.save_steps
        if self.parts.evaluate_at_start and st.global_step == 0:
            self._record({"step": 0, "epoch": 0, "eval": self.evaluate()})
        self.callbacks.call("on_train_begin", self)

        done = st.global_step >= self.total_steps or self._stop_reason is not None
        self.model.train()
        self._t0 = time.perf_counter()
        while not done:
            # the prepared loader re-seeds the sampler from its own epoch counter on every pass
            self.train_dl.set_epoch(st.epoch)
            dl = self.train_dl
            if st.batch_in_epoch == 0:
                self.step.start_epoch()  # each epoch's streams start from a zero state
                self.callbacks.call("on_epoch_begin", self)
            else:
                dl = acc.skip_first_batches(self.train_dl, st.batch_in_epoch)
            starting = True  # the next micro-batch opens an optimizer step
            for batch in dl:
                if starting:
                    self.callbacks.call("on_step_begin", self)
                with acc.accumulate(self.model):
                    if self._cudagraph_steps:
                        torch.compiler.cudagraph_mark_step_begin()
                    loss = self.step(self.model, batch, self.loss, acc).reshape(-1).mean()  # a (1,) loss too
                    self._bad |= ~torch.isfinite(loss)
                    self._loss_sum += loss.to(self._loss_sum.dtype)
                    self._loss_n += 1
                    if self._stats_source is not None:
                        self._take_stats()
                    self._tokens += self.parts.num_tokens(batch)
                    if acc.sync_gradients:
                        self._optimizer_step()
                st.batch_in_epoch += 1
                starting = acc.sync_gradients
                if not acc.sync_gradients:
                    continue
                st.global_step += 1
                bar.update(1)
                end_of_epoch = st.batch_in_epoch >= self.batches_per_epoch
                if end_of_epoch:
                    st.epoch, st.batch_in_epoch = st.epoch + 1, 0
                log_step = st.global_step % cfg.log_steps == 0 or st.global_step == self.total_steps
                if log_step:
                    row = self._log_row()
                    bar.set_postfix(loss=f"{row['loss']:.4f}")
                self.callbacks.call("on_step_end", self)
                finished = st.global_step >= self.total_steps
                if st.global_step % eval_every == 0 or finished:
                    st.train_seconds += time.perf_counter() - self._t0
                    self._raise_if_bad()
                    self._after_eval(self.evaluate())
                    self._t0 = time.perf_counter()
                elif save_every and st.global_step % save_every == 0:
                    st.train_seconds += time.perf_counter() - self._t0
                    self.save_checkpoint()
                    self._t0 = time.perf_counter()
                if end_of_epoch:
                    self.callbacks.call("on_epoch_end", self)
                if self._signalled(log_step):
                    st.train_seconds += time.perf_counter() - self._t0
                    self._stop_for_signal()
                if self._stop_reason is not None:
                    acc.print(self._stop_reason)
                    finished = True
                if finished:
                    done = True
                    break
            else:
                # the loader ended on a step boundary that the epoch counter already advanced past
                if st.batch_in_epoch:
                    st.epoch, st.batch_in_epoch = st.epoch + 1, 0
        st.train_seconds += time.perf_counter() - self._t0
        self._raise_if_bad()
        self._flush_tokens()
        self.callbacks.call("on_train_end", self)
        best = Path(st.best_checkpoint) if st.best_checkpoint else None
        return TrainResult(state=st, stopped_early=self._stopped_early, best_checkpoint=best)
