"""Length buckets (``training.length_buckets``): lengths chosen from the train split, every batch padded to the
smallest bucket that holds it (training and evaluation), the default under ``training.compile`` with a static
graph per shape, and a collator that pads its own way refused by name."""

from __future__ import annotations

import json

import pytest
import torch
from testkit import recipe_file
from transformers import DataCollatorWithPadding

from harness.data.buckets import BucketedCollator, choose_buckets, supports_buckets
from harness.errors import HarnessError


def _padded(lengths, buckets):
    return sum(next(b for b in buckets if b >= n) for n in lengths)


def test_auto_buckets_minimise_the_padded_tokens_exactly():
    import itertools
    import random

    rng = random.Random(0)
    for trial in range(30):
        lengths = [rng.randint(1, 60) for _ in range(rng.randint(1, 40))]
        most = rng.randint(1, 4)
        chosen = choose_buckets(lengths, max_buckets=most)
        assert len(chosen) <= most and chosen == sorted(chosen) and all(b % 8 == 0 for b in chosen)
        assert chosen[-1] >= max(lengths)
        top = 8 * -(-max(lengths) // 8)
        candidates = range(8, top, 8)
        best = min(_padded(lengths, list(c) + [top]) for k in range(most)
                   for c in itertools.combinations(candidates, k))
        assert _padded(lengths, chosen) == best, (lengths, most, chosen)
    assert choose_buckets([5] * 40 + [9]) == [8, 16]  # few distinct lengths: few buckets
    assert choose_buckets([3, 70], max_buckets=4, multiple=1) == [3, 70]
    with pytest.raises(HarnessError, match="training.length_buckets: the train split is empty"):
        choose_buckets([])


class _Tok:
    """The padding half of a tokenizer, for DataCollatorWithPadding."""

    pad_token_id, padding_side, model_input_names = 0, "right", ["input_ids", "attention_mask"]

    def pad(self, features, padding, max_length, pad_to_multiple_of, return_tensors):
        width = max_length if padding == "max_length" else max(len(f["input_ids"]) for f in features)
        ids = [f["input_ids"] + [0] * (width - len(f["input_ids"])) for f in features]
        mask = [[1] * len(f["input_ids"]) + [0] * (width - len(f["input_ids"])) for f in features]
        return {"input_ids": torch.tensor(ids), "attention_mask": torch.tensor(mask)}


def test_each_batch_is_padded_to_the_smallest_bucket_that_holds_it():
    collate = BucketedCollator(DataCollatorWithPadding(_Tok()), [8, 16])
    rows = lambda *ns: [{"input_ids": list(range(1, n + 1))} for n in ns]
    assert collate(rows(3, 5))["input_ids"].shape == (2, 8)
    assert collate(rows(9, 2))["input_ids"].shape == (2, 16)
    batch = collate(rows(8))
    assert batch["input_ids"].shape == (1, 8) and batch["attention_mask"].sum() == 8
    assert collate(rows(20, 1))["input_ids"].shape == (2, 20)  # longer than the last bucket: nothing cut


def test_a_collator_that_pads_its_own_way_is_refused_by_name():
    class Own:
        def __call__(self, features):
            return features

    assert not supports_buckets(Own())
    with pytest.raises(HarnessError, match=r"training.length_buckets: this task's collator \(Own\) pads its own way"):
        BucketedCollator(Own(), [8])


def _fake_compile(calls: list, shapes: list):
    """torch.compile's stand-in: records its arguments and the sequence length of every forward."""

    def compile(model, dynamic=None, mode=None, **kwargs):
        if not isinstance(model, torch.nn.Module):  # a function transformers compiles for itself: left eager
            return model
        calls.append({"dynamic": dynamic, "mode": mode, **kwargs})
        model.register_forward_pre_hook(lambda m, args, kw: shapes.append(tuple(kw["input_ids"].shape)),
                                        with_kwargs=True)
        return model

    return compile


@pytest.mark.parametrize("buckets", [None, [8, 16]])
def test_compile_pads_training_and_evaluation_batches_to_buckets(buckets, tmp_path, fresh_accelerate, monkeypatch,
                                                                 capsys):
    from harness.cli import main
    from harness.training import loop

    calls, shapes = [], []
    monkeypatch.setattr(loop.torch, "compile", _fake_compile(calls, shapes))
    training = {"compile": True, "max_steps": 6, "eval_steps": 6, "batch_size": 4, "group_by_length": True}
    if buckets:
        training["length_buckets"] = buckets
    recipe = recipe_file(tmp_path, training=training,
                         data={"component": "synthetic_classification", "num_train": 40, "num_validation": 12,
                               "min_length": 2, "max_length": 14})
    assert main(["train", str(recipe)]) == 0
    said = capsys.readouterr().out
    chosen = buckets or json.loads(said.split("every batch padded to one of ")[1].split(" tokens")[0])
    assert calls == [{"dynamic": False, "mode": None}]  # static graphs: one per bucket
    assert shapes and {length for _, length in shapes} <= set(chosen), (shapes, chosen)
    assert len(chosen) >= 2


def test_a_compile_mode_reaches_torch_compile_and_cpu_evaluations_run_the_compiled_model(tmp_path, fresh_accelerate,
                                                                                         monkeypatch):
    from harness.run import build, build_evaluation, build_trainer, load, make_accelerator
    from harness.training import loop

    calls, shapes = [], []
    monkeypatch.setattr(loop.torch, "compile", _fake_compile(calls, shapes))
    recipe = load(str(recipe_file(tmp_path, training={"compile": "reduce-overhead", "max_steps": 2})), [])
    accelerator = make_accelerator(recipe, tmp_path / "run", trackers=False)
    built = build(recipe, accelerator)
    trainer = build_trainer(recipe, built, build_evaluation(recipe, built, accelerator), accelerator, tmp_path / "run")
    assert calls == [{"dynamic": False, "mode": "reduce-overhead"}]
    # CUDA graphs only on a GPU: on this CPU the steps mark no replays and evaluations use the compiled model
    assert not trainer._cudagraph_steps and trainer.eval_model is trainer.model


def test_without_compile_batches_keep_their_own_length_and_explicit_buckets_apply(tmp_path, fresh_accelerate):
    from harness.run import build, load, make_accelerator

    data = {"component": "synthetic_classification", "num_train": 24, "num_validation": 8}
    plain = load(str(recipe_file(tmp_path, "plain", data=data)), [])
    assert build(plain, make_accelerator(plain, tmp_path / "a", trackers=False)).length_buckets is None
    fixed = load(str(recipe_file(tmp_path, "fixed", data=data, training={"length_buckets": [16, 32]})), [])
    assert build(fixed, make_accelerator(fixed, tmp_path / "b", trackers=False)).length_buckets == [16, 32]


def test_bad_bucket_lists_are_one_error_naming_the_key(tmp_path):
    from harness.errors import RecipeError
    from harness.run import load

    for bad in ("[32, 16]", "[]", "[0, 8]"):
        with pytest.raises(RecipeError, match=r"training.length_buckets: expected \"auto\" or increasing lengths"):
            load(str(recipe_file(tmp_path)), [f"training.length_buckets={bad}"])


@pytest.mark.slow  # dynamo traces the tiny BERT once per shape (~20 s)
def test_a_compiled_run_traces_one_graph_per_shape_and_matches_eager(tmp_path, fresh_accelerate, monkeypatch):
    """Real torch.compile (dynamo, with its eager backend so that no C++ is built): with buckets the model is traced
    for a few fixed shapes only, and the run's numbers equal the uncompiled run's with the same buckets."""
    import functools

    import torch._dynamo
    from testkit import reset_accelerate

    from harness.cli import main

    data = {"component": "synthetic_classification", "num_train": 48, "num_validation": 16, "min_length": 2,
            "max_length": 14}
    training = {"max_steps": 8, "eval_steps": 4, "batch_size": 8, "group_by_length": True, "length_buckets": [8, 16]}
    eager = recipe_file(tmp_path, "eager", output_dir=str(tmp_path / "eager"), data=data, training=training)
    assert main(["train", str(eager)]) == 0
    reset_accelerate()

    torch._dynamo.reset()
    torch._dynamo.utils.counters.clear()
    monkeypatch.setattr(torch, "compile", functools.partial(torch.compile, backend="eager"))
    compiled = recipe_file(tmp_path, "compiled", output_dir=str(tmp_path / "compiled"), data=data,
                           training=dict(training, compile=True))
    assert main(["train", str(compiled)]) == 0
    graphs = torch._dynamo.utils.counters["stats"]["unique_graphs"]
    # shapes: 2 buckets × (training, evaluation) × (full, last partial batch) at most (3 measured)
    # without buckets (static graphs, one per batch length: 4-16 tokens here) it would pass this bound
    assert 1 <= graphs <= 8, graphs
    read = lambda name: json.loads((tmp_path / name / "metrics.json").read_text())
    a, b = read("eager"), read("compiled")
    for key in ("validation/accuracy", "validation/loss"):
        assert a[key] == pytest.approx(b[key], abs=1e-6), key
    torch._dynamo.reset()
