"""Each SuperGLUE task shape trains a step and predicts through the task's evaluator, on a tiny random BERT; the span
classifier round-trips save_pretrained -> AutoModelForSequenceClassification."""

from __future__ import annotations

import pytest
import torch

from harness import registry
from harness.data.superglue import superglue
from harness.evaluation.evaluators import ClassificationEvaluator
from harness.evaluation.loaders import eval_loader
from harness.evaluation.glue_submission import read_predictions

BUILDERS = {"boolq": "pretrained_classifier", "cb": "pretrained_classifier", "rte": "pretrained_classifier",
            "multirc": "pretrained_classifier", "record": "pretrained_classifier", "copa": "pretrained", "wic": "pretrained_span_classifier",
            "wsc": "pretrained_span_classifier"}


@pytest.fixture(scope="module")
def accelerator():
    from accelerate import Accelerator


    return Accelerator(cpu=True)


#: BoolQ and RTE are the same sentence-pair shape as CB: run with the slow tests
@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.slow) if n in ("boolq", "rte") else n
                                  for n in BUILDERS])
def test_task_shape_trains_a_step_and_predicts(name, sg_dir, tiny_checkpoint, accelerator, tmp_path):
    torch.manual_seed(0)
    task = superglue(name, data_dir=str(sg_dir))
    model, tokenizer = registry.resolve("model", BUILDERS[name])(task, checkpoint=tiny_checkpoint)
    task.configure_for(model)
    tokenized = task.tokenize(tokenizer, max_length=64)
    batch = task.collator(tokenizer)([tokenized["train"][i] for i in range(4)])
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    model.train()
    loss = model(**batch).loss
    loss.backward()
    before = [p.detach().clone() for p in model.parameters()]
    optimizer.step()
    assert torch.isfinite(loss)
    assert any(not torch.equal(a, b) for a, b in zip(before, model.parameters()))

    evaluator = ClassificationEvaluator(task, tokenizer)
    metrics, predictions = evaluator.evaluate(model, eval_loader(task, tokenized["validation"], tokenizer, 4),
                                              "validation", accelerator)
    assert set(task.spec.metrics) <= set(metrics) and len(predictions) == len(task.splits["validation"])
    _, test_predictions = evaluator.evaluate(model, eval_loader(task, tokenized["test"], tokenizer, 4), "test",
                                             accelerator)
    rows = read_predictions(task.write_predictions(tmp_path / "predictions_test.tsv", "test", test_predictions))
    assert len(rows) == task.expected_predictions("test")
    if name == "record":  # one row per query: the best-scoring candidate's text
        test = task.splits["test"]
        assert [int(i) for i, _ in rows] == sorted(set(test["query_idx"]))
        for q, entity in rows:
            scores = {e: s for e, s, qi in zip(test["entity"], test_predictions, test["query_idx"]) if qi == int(q)}
            assert entity == max(scores, key=scores.get)
        return
    assert {p for _, p in rows} <= {str(x) for x in task.spec.server_labels}
    if name == "multirc":
        assert rows[0][0] == "0/0/0" and rows[-1][0] == "1/1/2"


def test_span_classifier_pools_the_spans_and_round_trips(sg_dir, tiny_checkpoint, tmp_path):
    from transformers import AutoModelForSequenceClassification

    from harness.models.span_classifier.modeling_span_classifier import SpanClassifier, pool_spans

    hidden = torch.arange(2 * 5 * 3, dtype=torch.float).view(2, 5, 3)
    bounds = torch.tensor([[[1, 3], [4, 5]], [[0, 1], [2, 5]]])
    pooled = pool_spans(hidden, bounds)
    assert torch.allclose(pooled[0, 0], hidden[0, 1:3].mean(0)) and torch.allclose(pooled[1, 1], hidden[1, 2:5].mean(0))
    assert torch.equal(pool_spans(hidden, bounds, "max")[1, 1], hidden[1, 2:5].max(0).values)
    with pytest.raises(ValueError, match="end > first"):
        pool_spans(hidden, torch.tensor([[[2, 2], [0, 1]]]))

    task = superglue("wsc", data_dir=str(sg_dir))
    model, tokenizer = registry.resolve("model", "pretrained_span_classifier")(task, checkpoint=tiny_checkpoint)
    rows = task.tokenize(tokenizer)["validation"]
    first = rows[0]
    tokens = tokenizer.convert_ids_to_tokens(first["input_ids"])
    (a, b), (c, d) = first["span_bounds"]
    assert tokens[a:b] == ["mark"] and tokens[c:d] == ["he"]
    batch = task.collator(tokenizer)([rows[i] for i in range(3)])
    model.save_pretrained(tmp_path)
    tokenizer.save_pretrained(tmp_path)
    loaded = AutoModelForSequenceClassification.from_pretrained(tmp_path)
    assert isinstance(loaded, SpanClassifier) and loaded.config.id2label == model.config.id2label
    model.eval(), loaded.eval()
    with torch.no_grad():
        assert torch.allclose(model(**batch).logits, loaded(**batch).logits)
    # a saved span classifier is a valid checkpoint for the builder too (loaded whole)
    again, _ = registry.resolve("model", "pretrained_span_classifier")(task, checkpoint=str(tmp_path))
    assert torch.equal(again.classifier.weight, model.classifier.weight)


def test_span_classifier_refuses_a_task_without_spans(sg_dir, tiny_checkpoint):
    from harness.errors import HarnessError

    with pytest.raises(HarnessError, match="pools marked spans"):
        registry.resolve("model", "pretrained_span_classifier")(superglue("rte", data_dir=str(sg_dir)),
                                                                checkpoint=tiny_checkpoint)


def test_a_span_cut_off_by_max_length_is_an_error(sg_dir, tiny_checkpoint):
    from harness.errors import DataError

    task = superglue("wsc", data_dir=str(sg_dir))
    _, tokenizer = registry.resolve("model", "pretrained_span_classifier")(task, checkpoint=tiny_checkpoint)
    with pytest.raises(DataError, match="span 2 lies beyond training.max_length=8"):
        task.tokenize(tokenizer, max_length=8)
