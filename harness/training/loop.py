"""The training loop on Accelerate.

Shape (accelerate's ``nlp_example.py`` + ``gradient_accumulation.py``): one ``prepare``, a step
inside ``accelerator.accumulate``, clipping when gradients sync, evaluation every N optimizer steps
and at the end, best-checkpoint selection by a named metric, early stopping with patience.

Stateful tasks (recurrent LMs) train with truncated backpropagation through time: the task lays
out its token streams so that consecutive batches continue each other, the loop reads them in
order and feeds each batch the model's detached state from the previous one (checkpointed too).

Exact resume: the train sampler draws each epoch's order from ``seed + epoch`` (never from the
global RNG), a checkpoint is taken only on an optimizer-step boundary and stores the model,
optimizer, scheduler, RNG states (``accelerator.save_state``) and the loop's position (epoch,
batches consumed in it, step, best metric, history). Resuming reloads all of it and skips the
consumed batches with ``accelerator.skip_first_batches``, so an interrupted run ends with the same
weights as an uninterrupted one.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import torch
from torch.utils.data import DataLoader, Sampler

from harness.config.schema import Recipe
from harness.data.base import Task
from harness.errors import HarnessError, TrainingError
from harness.evaluation.runner import evaluate_split
from harness.training import checkpoint as ckpt
from harness.training.optim import build_optimizer, build_scheduler


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
class LoopState:
    """Everything besides tensors that a checkpoint must hold to resume exactly."""

    global_step: int = 0
    epoch: int = 0
    batch_in_epoch: int = 0  # batches of the current epoch already consumed (this process)
    best_metric: float | None = None
    best_step: int | None = None
    best_checkpoint: str | None = None
    evals_without_improvement: int = 0
    tokens_seen: int = 0  # all processes (flushed at every log row and checkpoint)
    train_seconds: float = 0.0
    history: list[dict] = field(default_factory=list)  # {"step", "loss", "lr", "epoch"} and eval rows


@dataclass
class TrainResult:
    state: LoopState
    stopped_early: bool
    best_checkpoint: Path | None


def _is_better(value: float, best: float | None, greater: bool) -> bool:
    return best is None or (value > best if greater else value < best)


class Trainer:
    def __init__(self, recipe: Recipe, task: Task, model, tokenizer, tokenized, accelerator, output_dir: Path):
        self.recipe = recipe
        self.cfg = recipe.training
        self.task = task
        self.accelerator = accelerator
        self.output_dir = output_dir
        self.ckpt_root = output_dir / "checkpoints"
        self.history_path = output_dir / "logs" / "history.jsonl"
        cfg = self.cfg

        collate = task.collator(tokenizer, pad_to_multiple_of=cfg.pad_to_multiple_of)
        n_proc = accelerator.num_processes
        arranged = task.arrange(tokenized[task.train_split], cfg.batch_size, n_proc)
        train_ds = arranged.with_format("torch")
        # stateful (truncated-BPTT) tasks read their streams in order; everything else is shuffled
        lengths = None
        if cfg.group_by_length:
            if task.stateful:
                raise HarnessError("training.group_by_length: this task reads its token streams in order "
                                   "(truncated BPTT); its batches are already of equal length")
            lengths = row_lengths(arranged)
        self.sampler = EpochSampler(len(train_ds), recipe.seed, shuffle=not task.stateful, lengths=lengths,
                                    group_size=GROUP_BATCHES * cfg.batch_size * n_proc)
        self.carried = None  # the recurrent state carried between batches of a stateful task
        # a DataLoader draws a base seed each time it starts iterating; from the global RNG that
        # would make a resumed run's dropout masks differ, so each loader gets its own generator
        train_dl = DataLoader(
            train_ds,
            batch_size=cfg.batch_size,
            sampler=self.sampler,
            collate_fn=collate,
            num_workers=cfg.num_workers,
            generator=torch.Generator().manual_seed(recipe.seed),
        )
        eval_bs = cfg.eval_batch_size or 2 * cfg.batch_size
        self.eval_split_names = list(recipe.evaluation.splits or task.eval_splits)
        for split in self.eval_split_names + list(recipe.evaluation.predict_splits):
            if split not in tokenized:
                raise HarnessError(f"evaluation: split {split!r} does not exist (task has: {', '.join(tokenized)})")
        eval_dls = [
            DataLoader(
                task.arrange(tokenized[s], eval_bs, n_proc).with_format("torch"),
                batch_size=eval_bs,
                shuffle=False,
                collate_fn=collate,
                generator=torch.Generator().manual_seed(recipe.seed),
            )
            for s in self.eval_split_names
        ]
        optimizer = build_optimizer(model, cfg)
        model, optimizer, train_dl, *eval_dls = accelerator.prepare(model, optimizer, train_dl, *eval_dls)
        self.model, self.optimizer, self.train_dl = model, optimizer, train_dl
        self.eval_dls = dict(zip(self.eval_split_names, eval_dls))

        self.batches_per_epoch = len(train_dl)
        self.steps_per_epoch = math.ceil(self.batches_per_epoch / cfg.gradient_accumulation_steps)
        if cfg.max_steps:
            self.total_steps = cfg.max_steps
        else:
            self.total_steps = max(1, math.ceil(cfg.num_epochs * self.steps_per_epoch))
        # not prepared: Accelerate would step a prepared scheduler once per process per step
        self.scheduler = build_scheduler(optimizer, cfg, self.total_steps, self.steps_per_epoch)
        accelerator.register_for_checkpointing(self.scheduler)

        ev = recipe.evaluation
        first_split = self.eval_split_names[0] if self.eval_split_names else None
        metric = ev.metric_for_best or task.info.main_metric
        self.best_key = metric if "/" in metric else f"{first_split}/{metric}"
        if ev.greater_is_better is not None:
            self.greater = ev.greater_is_better
        else:
            self.greater = not any(w in metric for w in ("loss", "perplexity", "error"))
        self.state = LoopState()
        self._tokens_local = 0  # this process, since the last flush

    def _flush_tokens(self) -> None:
        local = torch.tensor(self._tokens_local, device=self.accelerator.device)
        self.state.tokens_seen += int(self.accelerator.reduce(local, reduction="sum").item())
        self._tokens_local = 0

    # ------------------------------------------------------------------ checkpoints

    def save_checkpoint(self) -> Path:
        acc = self.accelerator
        final = ckpt.checkpoint_dir(self.ckpt_root, self.state.global_step)
        if acc.is_main_process:
            ckpt.temporary_dir(self.ckpt_root, self.state.global_step)  # clears a stale one
        self._flush_tokens()
        acc.wait_for_everyone()
        tmp = self.ckpt_root / f".tmp-checkpoint-{self.state.global_step}"
        acc.save_state(str(tmp), safe_serialization=True)  # every process writes its RNG state here
        if self.carried is not None:
            torch.save(self.carried, tmp / f"carried_state_{acc.process_index}.pt")
        acc.wait_for_everyone()
        if acc.is_main_process:
            ckpt.commit(tmp, final, dict(vars(self.state)))
            protect = {Path(self.state.best_checkpoint)} if self.state.best_checkpoint else set()
            ckpt.prune(self.ckpt_root, self.cfg.save_total_limit, protect)
        acc.wait_for_everyone()
        return final

    def resume_from(self, path: Path) -> None:
        acc = self.accelerator
        self.accelerator.load_state(str(path))
        saved = ckpt.read_state(path)
        self.state = LoopState(**saved)
        carried = path / f"carried_state_{acc.process_index}.pt"
        if carried.is_file():
            self.carried = torch.load(carried, weights_only=False, map_location=acc.device)
        if acc.is_main_process:  # drop log rows written after this checkpoint by the interrupted run
            self.history_path.parent.mkdir(parents=True, exist_ok=True)
            with open(self.history_path, "w") as f:
                f.writelines(json.dumps(row) + "\n" for row in self.state.history)
        acc.print(
            f"resumed from {path} (step {self.state.global_step}, epoch {self.state.epoch}, "
            f"batch {self.state.batch_in_epoch}/{self.batches_per_epoch})"
        )

    # ------------------------------------------------------------------ evaluation

    def evaluate(self) -> dict[str, float]:
        results: dict[str, float] = {}
        for split, dl in self.eval_dls.items():
            metrics, _ = evaluate_split(self.model, dl, self.task, self.accelerator, split)
            results.update({f"{split}/{k}": v for k, v in metrics.items()})
        return results

    def _record(self, row: dict) -> None:
        self.state.history.append(row)
        if self.accelerator.is_main_process:
            self.history_path.parent.mkdir(parents=True, exist_ok=True)
            with open(self.history_path, "a") as f:
                f.write(json.dumps(row) + "\n")

    def _after_eval(self, metrics: dict[str, float]) -> bool:
        """Log, track the best metric, checkpoint; return True when early stopping triggers."""
        st = self.state
        self._record({"step": st.global_step, "epoch": st.epoch, "eval": metrics})
        self.accelerator.log({f"eval/{k}": v for k, v in metrics.items()}, step=st.global_step)
        self.accelerator.print(
            # split/metric only: per-class breakdowns (split/PER/f1, ...) go to the log file, not the console
            f"step {st.global_step}: " + ", ".join(f"{k}={v:.4f}" for k, v in sorted(metrics.items()) if k.count("/") <= 1)
        )
        if self.best_key not in metrics:
            raise HarnessError(
                f"evaluation.metric_for_best: {self.best_key!r} is not among the computed metrics "
                f"({', '.join(sorted(metrics))})"
            )
        value = metrics[self.best_key]
        improved = _is_better(value, st.best_metric, self.greater)
        if improved:
            st.best_metric, st.best_step = value, st.global_step
            st.evals_without_improvement = 0
        else:
            st.evals_without_improvement += 1
        if improved or self.cfg.save_steps is None:
            path = ckpt.checkpoint_dir(self.ckpt_root, st.global_step)
            if improved:
                st.best_checkpoint = str(path)
            self.save_checkpoint()
        patience = self.cfg.early_stopping_patience
        return bool(patience and st.evals_without_improvement >= patience)

    # ------------------------------------------------------------------ training

    def train(self) -> TrainResult:
        acc, cfg, st = self.accelerator, self.cfg, self.state
        model, optimizer, scheduler = self.model, self.optimizer, self.scheduler
        eval_every = cfg.eval_steps or self.steps_per_epoch
        save_every = cfg.save_steps
        if acc.is_main_process:
            ckpt.clean_partial(self.ckpt_root)

        from tqdm.auto import tqdm

        bar = tqdm(total=self.total_steps, initial=st.global_step, disable=not acc.is_local_main_process, desc="train")
        if self.recipe.evaluation.at_start and st.global_step == 0:
            self._record({"step": 0, "epoch": 0, "eval": self.evaluate()})

        window_loss, window_n = 0.0, 0
        stopped_early = False
        done = st.global_step >= self.total_steps
        model.train()
        t0 = time.perf_counter()
        while not done:
            # the prepared loader re-seeds the sampler from its own epoch counter on every pass
            self.train_dl.set_epoch(st.epoch)
            if st.batch_in_epoch == 0:
                self.carried = None  # each epoch's streams start from a zero state
            dl = self.train_dl
            if st.batch_in_epoch:
                dl = acc.skip_first_batches(self.train_dl, st.batch_in_epoch)
            for batch in dl:
                with acc.accumulate(model):
                    if self.task.stateful:
                        outputs = model(**batch, past_key_values=self.carried)
                        self.carried = outputs.past_key_values.detach()  # truncated BPTT
                    else:
                        outputs = model(**batch)
                    loss = outputs.loss
                    self._check_finite(loss)
                    acc.backward(loss)
                    if acc.sync_gradients and cfg.max_grad_norm:
                        acc.clip_grad_norm_(model.parameters(), cfg.max_grad_norm)
                    optimizer.step()
                    if acc.sync_gradients and not acc.optimizer_step_was_skipped:
                        scheduler.step()
                    optimizer.zero_grad(set_to_none=True)
                st.batch_in_epoch += 1
                self._tokens_local += self.task.num_tokens(batch)
                window_loss += loss.detach().float().item()
                window_n += 1
                if not acc.sync_gradients:
                    continue
                st.global_step += 1
                bar.update(1)
                if st.batch_in_epoch >= self.batches_per_epoch:
                    st.epoch, st.batch_in_epoch = st.epoch + 1, 0
                if st.global_step % cfg.log_steps == 0 or st.global_step == self.total_steps:
                    row = {
                        "step": st.global_step,
                        "epoch": round(st.epoch + st.batch_in_epoch / self.batches_per_epoch, 4),
                        "loss": window_loss / max(window_n, 1),
                        "lr": scheduler.get_last_lr()[0],
                    }
                    self._flush_tokens()
                    self._record(row)
                    acc.log({"train/loss": row["loss"], "train/lr": row["lr"]}, step=st.global_step)
                    bar.set_postfix(loss=f"{row['loss']:.4f}")
                    window_loss, window_n = 0.0, 0
                finished = st.global_step >= self.total_steps
                if st.global_step % eval_every == 0 or finished:
                    st.train_seconds += time.perf_counter() - t0
                    stop = self._after_eval(self.evaluate())
                    t0 = time.perf_counter()
                    if stop:
                        acc.print(
                            f"early stopping: {self.best_key} did not improve for "
                            f"{st.evals_without_improvement} evaluations"
                        )
                        stopped_early = finished = True
                elif save_every and st.global_step % save_every == 0:
                    st.train_seconds += time.perf_counter() - t0
                    self.save_checkpoint()
                    t0 = time.perf_counter()
                if finished:
                    done = True
                    break
            else:
                # the loader ended on a step boundary that the epoch counter already advanced past
                if st.batch_in_epoch:
                    st.epoch, st.batch_in_epoch = st.epoch + 1, 0
        st.train_seconds += time.perf_counter() - t0
        self._flush_tokens()
        bar.close()
        best = Path(st.best_checkpoint) if st.best_checkpoint else None
        return TrainResult(state=st, stopped_early=stopped_early, best_checkpoint=best)

    def _check_finite(self, loss: torch.Tensor) -> None:
        bad = torch.tensor(float(not torch.isfinite(loss.detach()).all()), device=loss.device)
        if self.accelerator.num_processes > 1:
            bad = self.accelerator.reduce(bad, reduction="sum")
        if bad.item():
            last = ckpt.latest(self.ckpt_root)
            kept = f"the last good checkpoint is kept at {last}" if last else "no checkpoint had been written yet"
            raise TrainingError(
                f"non-finite loss ({loss.item()}) at step {self.state.global_step + 1} (epoch {self.state.epoch}, "
                f"batch {self.state.batch_in_epoch}); stopped before the update, {kept}. "
                "Try a lower training.lr, training.max_grad_norm, or training.mixed_precision=bf16 instead of fp16."
            )
