"""The seams, used the way a new capability would use them: a loss, a callback, a task with its own evaluator
and a logits processor, all registered from this file (nothing under harness/ knows them), train a small
recurrent LM through ``harness train`` in this process.

The task: sentences of four consecutive letters of a cyclic alphabet ("c d e f"); the evaluator prompts the
model with the first two and compares its greedy continuation with the last two. The logits processor bans
one letter, so continuations that need it can never be right while the others are: the processor is
demonstrably in ``generate``'s loop, and the evaluator's numbers are what the recipe's generation section made.
"""

from __future__ import annotations

import json

import pytest
import torch
import yaml
from datasets import Dataset, DatasetDict
from transformers import LogitsProcessor

from harness import registry
from harness.data.base import Task, TaskInfo
from harness.evaluation.evaluators import Evaluator
from harness.evaluation.runner import generate_texts
from harness.losses import Loss
from harness.training.callbacks import Callback

LETTERS = "a b c d e f g h".split()
BANNED = "e"
EVENTS: list[str] = []
LOSS_CALLS = [0]


def _sentence(start: int) -> list[str]:
    return [LETTERS[(start + k) % len(LETTERS)] for k in range(4)]


class ContinuationTask(Task):
    """Train on whole sentences (causal LM); evaluate by continuing each sentence's first two words."""

    evaluator = "test_continuation"
    auto_model_class = "AutoModelForCausalLM"

    def __init__(self, repeats: int):
        rows = {"train": [_sentence(i % len(LETTERS)) for i in range(repeats * len(LETTERS))],
                "validation": [_sentence(i) for i in range(len(LETTERS))]}
        self.splits = DatasetDict({k: Dataset.from_dict({"words": v}) for k, v in rows.items()})
        self.eval_splits = ("validation",)
        self.info = TaskInfo(name="continuation", problem_type="causal_lm", label_names=None,
                             text_columns=("words",), main_metric="exact_match")

    def texts(self, split=None):
        for words in self.splits[split or "train"]["words"]:
            yield " ".join(words)

    def tokenize(self, tokenizer, max_length=None):
        def encode(batch, prompt_only: bool):
            texts = [" ".join(w[:2] if prompt_only else w) for w in batch["words"]]
            # no [SEP] after a prompt: the model continues it
            enc = tokenizer(texts, add_special_tokens=False)
            ids = [[tokenizer.cls_token_id, *x] + ([] if prompt_only else [tokenizer.sep_token_id])
                   for x in enc["input_ids"]]
            out = {"input_ids": ids, "attention_mask": [[1] * len(x) for x in ids]}
            if not prompt_only:
                out["labels"] = ids
            return out

        return DatasetDict({split: ds.map(encode, batched=True, remove_columns=["words"],
                                          fn_kwargs={"prompt_only": split != "train"})
                            for split, ds in self.splits.items()})

    def collator(self, tokenizer, pad_to_multiple_of=None):
        def collate(rows):
            longest = max(len(r["input_ids"]) for r in rows)
            batch = {}
            for key, pad in (("input_ids", tokenizer.pad_token_id), ("attention_mask", 0), ("labels", -100)):
                if key in rows[0]:
                    batch[key] = torch.tensor([list(r[key]) + [pad] * (longest - len(r[key])) for r in rows])
            return batch

        return collate

    def eval_collator(self, tokenizer, pad_to_multiple_of=None):
        def collate(rows):  # left padding: generation continues from the last real token
            longest = max(len(r["input_ids"]) for r in rows)
            ids = [[tokenizer.pad_token_id] * (longest - len(r["input_ids"])) + list(r["input_ids"]) for r in rows]
            mask = [[0] * (longest - len(r["input_ids"])) + [1] * len(r["input_ids"]) for r in rows]
            return {"input_ids": torch.tensor(ids), "attention_mask": torch.tensor(mask)}

        return collate

    def references(self, split):
        return [" ".join(w[2:]) for w in self.splits[split]["words"]]

    def compute_metrics(self, predictions, references, split):
        hits = [p == r for p, r in zip(predictions, references)]
        needs_banned = [BANNED in r.split() for r in references]
        clean = [h for h, b in zip(hits, needs_banned) if not b]
        return {"exact_match": sum(hits) / len(hits), "exact_match_without_banned": sum(clean) / len(clean),
                "exact_match_with_banned": sum(h for h, b in zip(hits, needs_banned) if b) / sum(needs_banned)}

    def write_predictions(self, path, split, predictions):
        path.write_text("\n".join(predictions) + "\n")
        return path


class ContinuationEvaluator(Evaluator):
    """Greedy continuations under the recipe's generation settings; also keeps the texts it saw."""

    seen: list[list[str]] = []

    def evaluate(self, model, dataloader, split, accelerator):
        texts = generate_texts(model, dataloader, accelerator, self.tokenizer, self.generation)
        ContinuationEvaluator.seen.append(texts)
        return self.task.compute_metrics(texts, self.task.references(split), split), texts


class ScaledModelLoss(Loss):
    """The model's own loss times ``scale`` (counts its calls)."""

    def __init__(self, scale: float = 1.0):
        super().__init__()
        self.scale = scale

    def forward(self, model, batch, **model_kwargs):
        LOSS_CALLS[0] += 1
        outputs = model(**batch, **model_kwargs)
        return outputs.loss * self.scale, outputs


class EventRecorder(Callback):
    def on_train_begin(self, loop):
        EVENTS.append("train_begin")

    def on_epoch_begin(self, loop):
        EVENTS.append("epoch_begin")

    def on_step_end(self, loop):
        EVENTS.append(f"step_end:{loop.state.global_step}")

    def on_evaluate(self, loop, metrics, improved):
        EVENTS.append(f"evaluate:{loop.state.global_step}:{improved}")

    def on_epoch_end(self, loop):
        EVENTS.append("epoch_end")

    def on_train_end(self, loop):
        EVENTS.append("train_end")


class BanWord(LogitsProcessor):
    """Never emit ``word`` (its token ids' scores set to -inf)."""

    def __init__(self, word: str, tokenizer):
        ids = tokenizer.convert_tokens_to_ids([word])
        if ids[0] == tokenizer.unk_token_id:
            raise ValueError(f"word: {word!r} is not in the vocabulary")
        self.ids = ids

    def __call__(self, input_ids, scores):
        scores = scores.clone()
        scores[:, self.ids] = float("-inf")
        return scores


@pytest.fixture
def seams():
    added = [("data", "test_continuation", lambda repeats=40: ContinuationTask(repeats), {}),
             ("evaluator", "test_continuation", ContinuationEvaluator, {"runner_args": ("task", "tokenizer", "generation")}),
             ("loss", "test_scaled", ScaledModelLoss, {}),
             ("callback", "test_recorder", EventRecorder, {}),
             ("logits_processor", "test_ban_word", BanWord, {"runner_args": ("tokenizer",)})]
    for section, name, target, kwargs in added:
        registry.register(section, name, **kwargs)(target)
    EVENTS.clear()
    LOSS_CALLS[0] = 0
    ContinuationEvaluator.seen = []
    yield
    for section, name, _, _ in added:
        registry.unregister(section, name)


def test_a_new_loss_callback_task_evaluator_and_logits_processor_train_through_harness_train(
        seams, tmp_path, fresh_accelerate):
    from harness.cli import main

    recipe = {
        "output_dir": str(tmp_path / "run"),
        "seed": 0,
        "data": {"component": "test_continuation", "repeats": 40},
        "model": {"component": "rnn_lm", "cell": "lstm", "embedding_size": 24, "hidden_size": 48, "num_layers": 1},
        "loss": {"component": "test_scaled", "scale": 1.0},
        "callbacks": [{"component": "test_recorder"}],
        "generation": {"max_new_tokens": 2, "do_sample": False,
                       "logits_processors": [{"component": "test_ban_word", "word": BANNED}]},
        "training": {"lr": 0.02, "batch_size": 16, "num_epochs": 3, "log_steps": 5, "warmup_ratio": 0.0},
        "evaluation": {"metric_for_best": "exact_match_without_banned", "predict_splits": ["validation"]},
        "tracking": {"report_to": []},
    }
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(recipe))
    assert main(["train", str(path)]) == 0

    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    # learnt: every continuation that does not need the banned letter is right ...
    assert metrics["validation/exact_match_without_banned"] == 1.0, metrics
    # ... and none that does: the processor was applied inside generate
    assert metrics["validation/exact_match_with_banned"] == 0.0, metrics
    assert all(BANNED not in text.split() for texts in ContinuationEvaluator.seen for text in texts)

    steps, epochs = metrics["train/global_step"], 3
    assert LOSS_CALLS[0] == steps  # one micro-batch per step, each through the recipe's loss
    assert EVENTS[0] == "train_begin" and EVENTS[-1] == "train_end"
    assert EVENTS.count("epoch_begin") == EVENTS.count("epoch_end") == epochs
    assert [e for e in EVENTS if e.startswith("step_end")] == [f"step_end:{s}" for s in range(1, steps + 1)]
    assert [e.split(":")[1] for e in EVENTS if e.startswith("evaluate")] == [str(steps // epochs * k)
                                                                            for k in range(1, epochs + 1)]
    # the prediction file is the task's own, the saved model carries the generation settings
    assert (tmp_path / "run" / "predictions_validation.tsv").read_text().count("\n") == len(LETTERS)
    saved = json.loads((tmp_path / "run" / "model" / "generation_config.json").read_text())
    assert saved["max_new_tokens"] == 2
