"""The offline ``evaluate`` modules in ``harness/metrics`` agree exactly with scikit-learn / SciPy."""

from __future__ import annotations

import math
import os

# Set before ``evaluate`` is imported: its config reads the variable once, at import time.
os.environ["HF_EVALUATE_OFFLINE"] = "1"
os.environ["HF_HUB_OFFLINE"] = "1"

import numpy as np
import pytest
from scipy.stats import pearsonr
from scipy.stats import spearmanr
from sklearn.metrics import accuracy_score
from sklearn.metrics import f1_score
from sklearn.metrics import matthews_corrcoef
from sklearn.metrics import mean_squared_error

from harness.metrics import available
from harness.metrics import load_metric

# The one-class cases are meant to be degenerate; scikit-learn says so on every call.
pytestmark = pytest.mark.filterwarnings("ignore:A single label was found:UserWarning")

N = 300
TOL = 1e-12

MCC_CONFIGS = ["cola", "ax"]
ACCURACY_CONFIGS = ["sst2", "qnli", "rte", "wnli", "mnli", "mnli_matched", "mnli_mismatched"]
ACCURACY_F1_CONFIGS = ["mrpc", "qqp"]
ALL_GLUE_CONFIGS = MCC_CONFIGS + ACCURACY_CONFIGS + ACCURACY_F1_CONFIGS + ["stsb"]
THREE_WAY = {"mnli", "mnli_matched", "mnli_mismatched", "ax"}


def same(got, expected):
    assert type(got) is float, f"{got!r} is a {type(got).__name__}, not a plain float"
    if math.isnan(expected):
        return math.isnan(got)
    return abs(got - float(expected)) <= TOL


def assert_scores(got: dict, expected: dict, case: str = ""):
    assert set(got) == set(expected), case
    for key, value in expected.items():
        assert same(got[key], value), f"{case} {key}: got {got[key]!r}, expected {value!r}"


def label_cases(num_classes: int, seed: int):
    """(name, predictions, references) pairs: random, and the degenerate ones that trip MCC and F1."""
    rng = np.random.RandomState(seed)
    refs = rng.randint(0, num_classes, size=N)
    noisy = np.where(rng.rand(N) < 0.7, refs, rng.randint(0, num_classes, size=N))
    return [
        ("random", rng.randint(0, num_classes, size=N), refs),
        ("correlated", noisy, refs),
        ("perfect", refs.copy(), refs),
        ("all_ones", np.ones(N, dtype=np.int64), refs),
        ("all_zeros", np.zeros(N, dtype=np.int64), refs),
        ("one_class_both", np.ones(N, dtype=np.int64), np.ones(N, dtype=np.int64)),
    ]


def float_cases(seed: int):
    rng = np.random.RandomState(seed)
    refs = rng.uniform(0.0, 5.0, size=N)
    return [
        ("random", rng.uniform(0.0, 5.0, size=N), refs),
        ("correlated", refs + rng.normal(0.0, 0.8, size=N), refs),
        ("ties", np.round(refs + rng.normal(0.0, 1.0, size=N)), refs),
        ("anti", -refs, refs),
    ]


# --------------------------------------------------------------------------------------- GLUE


def test_loads_offline():
    import evaluate

    assert evaluate.config.HF_EVALUATE_OFFLINE is True
    assert {"glue", "classification", "regression"} <= set(available())
    assert load_metric("glue", "mrpc").config_name == "mrpc"


@pytest.mark.parametrize("config", MCC_CONFIGS)
def test_glue_matthews(config):
    metric = load_metric("glue", config)
    for name, preds, refs in label_cases(3 if config in THREE_WAY else 2, seed=1):
        got = metric.compute(predictions=preds, references=refs)
        assert_scores(got, {"matthews_correlation": matthews_corrcoef(refs, preds)}, name)


@pytest.mark.parametrize("config", ACCURACY_CONFIGS)
def test_glue_accuracy(config):
    metric = load_metric("glue", config)
    for name, preds, refs in label_cases(3 if config in THREE_WAY else 2, seed=2):
        got = metric.compute(predictions=preds, references=refs)
        assert_scores(got, {"accuracy": accuracy_score(refs, preds)}, name)


@pytest.mark.parametrize("config", ACCURACY_F1_CONFIGS)
def test_glue_accuracy_f1(config):
    metric = load_metric("glue", config)
    for name, preds, refs in label_cases(2, seed=3):
        got = metric.compute(predictions=preds, references=refs)
        expected = {"accuracy": accuracy_score(refs, preds), "f1": f1_score(refs, preds)}
        assert_scores(got, expected, name)


def test_glue_stsb():
    metric = load_metric("glue", "stsb")
    for name, preds, refs in float_cases(seed=4):
        got = metric.compute(predictions=preds, references=refs)
        expected = {"pearson": pearsonr(preds, refs).statistic, "spearmanr": spearmanr(preds, refs).statistic}
        assert_scores(got, expected, name)


def test_glue_stsb_keeps_float32_inputs_exact():
    # float32 inputs widen losslessly to the float64 feature; nothing is rounded on the way.
    rng = np.random.RandomState(5)
    preds = rng.uniform(0.0, 5.0, size=N).astype(np.float32)
    refs = rng.uniform(0.0, 5.0, size=N).astype(np.float32)
    got = load_metric("glue", "stsb").compute(predictions=preds, references=refs)
    p64, r64 = preds.astype(np.float64), refs.astype(np.float64)
    assert_scores(got, {"pearson": pearsonr(p64, r64).statistic, "spearmanr": spearmanr(p64, r64).statistic})


def test_glue_stsb_constant_prediction_is_nan():
    refs = np.random.RandomState(6).uniform(0.0, 5.0, size=N)
    with pytest.warns(Warning):
        got = load_metric("glue", "stsb").compute(predictions=np.full(N, 2.5), references=refs)
    assert math.isnan(got["pearson"]) and math.isnan(got["spearmanr"])


def test_glue_batches_accumulate():
    _, preds, refs = label_cases(2, seed=7)[1]
    metric = load_metric("glue", "mrpc")
    metric.add_batch(predictions=preds[:100], references=refs[:100])
    metric.add_batch(predictions=preds[100:], references=refs[100:])
    assert metric.compute() == metric.compute(predictions=preds, references=refs)


@pytest.mark.parametrize("config", ["nope", None])
def test_glue_unknown_config_lists_valid_names(config):
    with pytest.raises(ValueError) as info:
        load_metric("glue", config)
    message = str(info.value)
    assert repr(config or "default") in message
    for name in ALL_GLUE_CONFIGS:
        assert name in message


# ----------------------------------------------------------------------- generic classification


@pytest.mark.parametrize("num_classes", [2, 3])
def test_classification(num_classes):
    metric = load_metric("classification")
    for name, preds, refs in label_cases(num_classes, seed=10 + num_classes):
        got = metric.compute(predictions=preds, references=refs)
        expected = {
            "accuracy": accuracy_score(refs, preds),
            "f1_macro": f1_score(refs, preds, average="macro"),
            "matthews_correlation": matthews_corrcoef(refs, preds),
        }
        if set(np.unique(np.concatenate([preds, refs])).tolist()) <= {0, 1}:
            expected["f1"] = f1_score(refs, preds)
        assert_scores(got, expected, name)


def test_classification_binary_is_decided_from_both_inputs():
    metric = load_metric("classification")
    # Predictions alone look binary, but the references hold a third class.
    assert "f1" not in metric.compute(predictions=[0, 1, 1, 0], references=[0, 1, 2, 0])
    # Two classes that are not {0, 1}: no positive class 1, so no binary F1.
    assert "f1" not in metric.compute(predictions=[1, 2, 2, 1], references=[1, 2, 1, 1])
    # Only zeros anywhere: still binary; F1 of class 1 is 0.0 (undefined, scikit-learn's default).
    got = metric.compute(predictions=[0, 0, 0], references=[0, 0, 0])
    assert got["f1"] == 0.0 and got["matthews_correlation"] == 0.0 and got["accuracy"] == 1.0


# -------------------------------------------------------------------------------- regression


def test_regression():
    metric = load_metric("regression")
    for name, preds, refs in float_cases(seed=20):
        got = metric.compute(predictions=preds, references=refs)
        expected = {
            "pearson": pearsonr(preds, refs).statistic,
            "spearmanr": spearmanr(preds, refs).statistic,
            "mse": mean_squared_error(refs, preds),
        }
        assert_scores(got, expected, name)
