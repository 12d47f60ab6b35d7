"""Recipe builders: word-level tokenizer from the task, config from the tokenizer, AutoTokenizer +
AutoModel round trips, and one short training run of an RNN classifier through the harness loop."""

from __future__ import annotations

import json

import pytest
import torch
from testkit import run_harness
from datasets import Dataset, DatasetDict
from transformers import (
    AutoModelForCausalLM,
    AutoModelForSequenceClassification,
    AutoModelForTokenClassification,
    AutoTokenizer,
)

from harness import registry
from harness.config.checking import check_args
from harness.data.base import TaskInfo
from harness.data.synthetic import synthetic_classification
from harness.models.rnn.builders import rnn_causal_lm, rnn_classifier, rnn_tagger


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def task():
    return synthetic_classification(num_train=64, num_validation=8, seed=0)


def test_causal_lm_builder_round_trips_with_its_tokenizer(task, tmp_path):
    torch.manual_seed(0)
    model, tok = rnn_causal_lm(task, cell="gru", embedding_size=16, hidden_size=24, tie_word_embeddings=True)
    cfg = model.config
    assert cfg.vocab_size == len(tok) and cfg.pad_token_id == tok.pad_token_id
    assert (cfg.bos_token_id, cfg.eos_token_id) == (tok.cls_token_id, tok.sep_token_id)
    assert model.lm_proj is not None  # tied with hidden 24 != embedding 16
    model.save_pretrained(tmp_path)
    tok.save_pretrained(tmp_path)
    tok2 = AutoTokenizer.from_pretrained(tmp_path)
    model2 = AutoModelForCausalLM.from_pretrained(tmp_path).eval()
    enc = tok2(["the film was good"], return_tensors="pt")
    assert enc["input_ids"][0, 0] == tok.cls_token_id
    with torch.no_grad():
        assert torch.equal(model.eval()(**enc).logits, model2(**enc).logits)
    out = model2.generate(**enc, max_new_tokens=5, do_sample=False)  # token_type_ids ride along, ignored
    assert out.shape[1] <= enc["input_ids"].shape[1] + 5 and out.max() < len(tok)


def test_classifier_and_tagger_builders(task, tmp_path):
    model, tok = rnn_classifier(task, cell="lstm", embedding_size=8, hidden_size=8, pooling="mean")
    assert model.config.num_labels == 2 and model.config.id2label == {0: "negative", 1: "positive"}
    assert model.config.bidirectional and model.config.pooling == "mean"
    model.save_pretrained(tmp_path / "cls")
    assert isinstance(AutoModelForSequenceClassification.from_pretrained(tmp_path / "cls"), type(model))

    tag_task = synthetic_classification(num_train=16, num_validation=4, seed=1)
    tag_task.info = TaskInfo(name="tags", problem_type="single_label_classification", label_names=["O", "B", "I"])
    tagger, tok = rnn_tagger(tag_task, cell="gru", embedding_size=8, hidden_size=8)
    assert tagger.config.num_labels == 3 and tagger.config.problem_type is None
    enc = tok(["good film"], return_tensors="pt")
    assert tagger(**enc).logits.shape == (1, enc["input_ids"].shape[1], 3)
    tagger.save_pretrained(tmp_path / "tag")
    assert isinstance(AutoModelForTokenClassification.from_pretrained(tmp_path / "tag"), type(tagger))


def test_builders_are_recipe_components():
    entry = registry.entry("model", "rnn_classifier")
    assert entry.target is rnn_classifier and entry.runner_args == ("task",)
    errors: list[str] = []
    args = check_args(entry.target, {"cell": "gru", "hidden_size": 8}, "model", errors, entry.runner_args)
    assert not errors and args == {"cell": "gru", "hidden_size": 8}
    check_args(entry.target, {"cell": "transformer"}, "model", errors, entry.runner_args)
    assert errors and "model.cell" in errors[0]


@pytest.mark.slow  # a subprocess end-to-end run; the default suite covers it in-process
def test_rnn_classifier_trains_through_the_harness_loop(write_recipe, tmp_path):
    recipe = write_recipe(
        "rnn",
        model={"component": "rnn_classifier", "cell": "lstm",
               "embedding_size": 32, "hidden_size": 32},
        training={"lr": 1e-2, "num_epochs": 3},
    )
    proc = run_harness("train", str(recipe))
    assert proc.returncode == 0, proc.stderr[-3000:]
    metrics = json.loads((tmp_path / "rnn" / "metrics.json").read_text())
    assert metrics["validation/accuracy"] >= 0.85, metrics
    saved = tmp_path / "rnn" / "model"
    model = AutoModelForSequenceClassification.from_pretrained(saved)
    tok = AutoTokenizer.from_pretrained(saved)
    assert model(**tok(["good great film"], return_tensors="pt")).logits.shape == (1, 2)
