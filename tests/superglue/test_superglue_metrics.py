"""harness/metrics/superglue: the official definitions, against hand-computed cases and scikit-learn."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, f1_score, matthews_corrcoef

from harness.metrics import load_metric


def compute(config, predictions, references, **kwargs):
    return load_metric("superglue", config).compute(predictions=predictions, references=references, **kwargs)


@pytest.mark.parametrize("config", ["boolq", "copa", "rte", "wic", "wsc"])
def test_accuracy_tasks(config):
    assert compute(config, [1, 0, 1, 1], [1, 0, 0, 1]) == {"accuracy": 0.75}


def test_cb_accuracy_and_macro_f1_by_hand_and_sklearn():
    # class 0: P=R=1 -> F1 1; class 1: P=1, R=1/2 -> 2/3; class 2: predicted once, never gold -> 0
    out = compute("cb", [0, 1, 2, 0], [0, 1, 1, 0])
    assert out["accuracy"] == 0.75
    assert out["f1_macro"] == pytest.approx((1 + 2 / 3 + 0) / 3)
    rng = np.random.default_rng(0)
    p, r = rng.integers(0, 3, 50).tolist(), rng.integers(0, 3, 50).tolist()
    out = compute("cb", p, r)
    assert out["f1_macro"] == pytest.approx(f1_score(r, p, average="macro"))
    assert out["accuracy"] == pytest.approx(accuracy_score(r, p))


def test_cb_macro_f1_counts_all_three_classes_even_when_one_is_absent():
    # neutral never appears: its F1 is 0 and still one third of the average (jiant averages over the 3 classes)
    assert compute("cb", [0, 1], [0, 1])["f1_macro"] == pytest.approx(2 / 3)


def _mrc(p, q, a, x):
    return {"idx": {"paragraph": p, "question": q, "answer": a}, "prediction": x}


def test_multirc_f1a_over_answers_and_exact_match_per_question():
    predictions = [_mrc(0, 0, 0, 1), _mrc(0, 0, 1, 0), _mrc(0, 1, 0, 1), _mrc(0, 1, 1, 1), _mrc(1, 0, 0, 0)]
    references = [1, 0, 1, 0, 0]
    out = compute("multirc", predictions, references)
    # F1a: tp 2, fp 1, fn 0 -> P 2/3, R 1 -> 0.8; EM: question (0,0) right, (0,1) wrong, (1,0) right -> 2/3
    assert out["f1_a"] == pytest.approx(0.8)
    assert out["exact_match"] == pytest.approx(2 / 3)
    assert out["f1_a"] == pytest.approx(f1_score(references, [p["prediction"] for p in predictions]))


def test_multirc_questions_are_told_apart_by_paragraph_too():
    # question 0 of paragraph 0 and question 0 of paragraph 1 are different questions
    out = compute("multirc", [_mrc(0, 0, 0, 1), _mrc(1, 0, 0, 0)], [1, 1])
    assert out["exact_match"] == 0.5


def test_axb_matthews_correlation_is_sklearn_s():
    p, r = [0, 1, 1, 0, 1, 0, 0], [0, 1, 0, 0, 1, 1, 0]
    assert compute("axb", p, r)["matthews_correlation"] == pytest.approx(matthews_corrcoef(r, p))


def test_axg_gender_parity_and_accuracy():
    # pairs (0,1) same, (2,3) different, (4,5) same -> parity 2/3
    out = compute("axg", [0, 0, 1, 0, 1, 1], [0, 1, 1, 1, 1, 0], hypotheses=["a", "a", "b", "b", "c", "c"])
    assert out["gender_parity"] == pytest.approx(2 / 3)
    assert out["accuracy"] == pytest.approx(3 / 6)


def test_axg_refuses_what_is_not_a_set_of_minimal_pairs():
    with pytest.raises(ValueError, match="odd number"):
        compute("axg", [0, 0, 1], [0, 0, 1])
    with pytest.raises(ValueError, match="examples 0 and 1 are not a minimal pair"):
        compute("axg", [0, 0], [0, 0], hypotheses=["a", "b"])


def test_record_f1_and_exact_match_take_the_best_gold_answer_per_query():
    idx = [{"passage": 0, "query": 0}, {"passage": 0, "query": 1}, {"passage": 1, "query": 2}]
    predictions = [{"idx": idx[0], "prediction_text": "the Acme Corp"},  # article and punctuation dropped: exact
                   {"idx": idx[1], "prediction_text": "Acme"},  # 1 of 2 gold tokens: P 1, R 1/2, F1 2/3
                   {"idx": idx[2], "prediction_text": "Bob"}]
    references = [{"idx": idx[0], "answers": ["Acme Corp."]}, {"idx": idx[1], "answers": ["Paris", "Acme Corp."]},
                  {"idx": idx[2], "answers": ["Alice"]}]
    scores = compute("record", predictions, references)
    assert scores["exact_match"] == pytest.approx(1 / 3)
    assert scores["f1"] == pytest.approx((1 + 2 / 3 + 0) / 3)
    with pytest.raises(ValueError, match="no reference for passage 1, query 2"):
        compute("record", predictions, references[:2] + [{"idx": {"passage": 1, "query": 3}, "answers": ["Bob"]}])


def test_unknown_config_is_refused():
    with pytest.raises(ValueError, match="unknown SuperGLUE config 'squad'"):
        load_metric("superglue", "squad")
