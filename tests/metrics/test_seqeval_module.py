"""``harness/metrics/seqeval`` agrees exactly with calling the seqeval library directly."""

from __future__ import annotations

import math
import os
import random

# Set before ``evaluate`` is imported: its config reads the variable once, at import time.
os.environ["HF_EVALUATE_OFFLINE"] = "1"
os.environ["HF_HUB_OFFLINE"] = "1"

import pytest
from seqeval.metrics import accuracy_score
from seqeval.metrics import classification_report
from seqeval.metrics import f1_score
from seqeval.metrics import precision_score
from seqeval.metrics import recall_score
from seqeval.scheme import IOB2
from seqeval.scheme import IOBES

from harness.metrics import available
from harness.metrics import load_metric

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning", "ignore::RuntimeWarning")

TYPES = ["PER", "LOC", "ORG", "MISC"]
SCHEMES = {"IOB2": IOB2, "IOBES": IOBES}


@pytest.fixture(scope="module")
def metric():
    return load_metric("seqeval")


def same(got, expected) -> bool:
    assert type(got) is float, f"{got!r} is a {type(got).__name__}, not a plain float"
    expected = float(expected)
    return (math.isnan(got) and math.isnan(expected)) or got == expected


def direct(refs, preds, mode=None, scheme=None):
    """What seqeval itself says, in the module's flat key layout."""
    scheme_class = SCHEMES[scheme] if scheme else (IOB2 if mode == "strict" else None)
    kw = dict(mode=mode, scheme=scheme_class, zero_division=0)
    report = classification_report(refs, preds, output_dict=True, **kw)
    expected = {
        "overall_precision": precision_score(refs, preds, **kw),
        "overall_recall": recall_score(refs, preds, **kw),
        "overall_f1": f1_score(refs, preds, **kw),
        "accuracy": accuracy_score(refs, preds),
        "micro/f1": f1_score(refs, preds, average="micro", **kw),
        "macro/precision": precision_score(refs, preds, average="macro", **kw),
        "macro/recall": recall_score(refs, preds, average="macro", **kw),
        "macro/f1": f1_score(refs, preds, average="macro", **kw),
        "weighted/f1": f1_score(refs, preds, average="weighted", **kw),
    }
    for key, scores in report.items():
        name = {"micro avg": "micro", "macro avg": "macro", "weighted avg": "weighted"}.get(key, key)
        expected[f"{name}/precision"] = scores["precision"]
        expected[f"{name}/recall"] = scores["recall"]
        expected[f"{name}/f1"] = scores["f1-score"]
        expected[f"{name}/number"] = scores["support"]
    return expected


def check(metric, refs, preds, **kwargs):
    got = metric.compute(predictions=preds, references=refs, **kwargs)
    expected = direct(refs, preds, mode=kwargs.get("mode"), scheme=kwargs.get("scheme"))
    for key, value in expected.items():
        assert key in got, f"missing {key}"
        assert same(got[key], value), f"{key}: module {got[key]!r} != seqeval {value!r}"
    types = {k.split("/")[0] for k in got if "/" in k} - {"micro", "macro", "weighted"}
    assert types == {k for k in expected_types(refs, preds, kwargs)}
    return got


def expected_types(refs, preds, kwargs):
    report = classification_report(
        refs, preds, output_dict=True, zero_division=0, mode=kwargs.get("mode"),
        scheme=SCHEMES[kwargs["scheme"]] if kwargs.get("scheme") else (IOB2 if kwargs.get("mode") else None),
    )
    return [k for k in report if not k.endswith(" avg")]


REFS = [
    ["O", "B-PER", "I-PER", "O", "B-LOC", "O"],
    ["B-ORG", "I-ORG", "I-ORG", "O", "B-MISC"],
    ["O", "O", "B-PER"],
]
PREDS = [
    ["O", "B-PER", "I-PER", "O", "I-LOC", "O"],  # orphan I-LOC: right span in default mode, wrong in strict
    ["B-ORG", "I-ORG", "O", "O", "B-MISC"],  # truncated ORG
    ["O", "B-LOC", "B-PER"],  # spurious LOC
]


def test_registered():
    assert "seqeval" in available()


def test_hand_made_default_mode(metric):
    got = check(metric, REFS, PREDS)
    # default (conlleval) mode: PER x2, LOC (orphan I-LOC read as B-LOC), MISC right; ORG wrong; LOC spurious
    assert got["overall_precision"] == 4 / 6 and got["overall_recall"] == 4 / 5
    assert got["PER/f1"] == 1.0 and got["PER/number"] == 2.0 and got["ORG/f1"] == 0.0
    assert got["accuracy"] == 11 / 14 and got["overall_accuracy"] == got["accuracy"]
    assert got["micro/f1"] == got["overall_f1"]


def test_hand_made_strict_iob2(metric):
    got = check(metric, REFS, PREDS, mode="strict", scheme="IOB2")
    # strict IOB2: the orphan I-LOC is no entity
    assert got["overall_precision"] == 3 / 5 and got["overall_recall"] == 3 / 5
    assert got["LOC/recall"] == 0.0 and got["LOC/precision"] == 0.0
    # strict without a scheme means strict IOB2 (the harness default)
    assert metric.compute(predictions=PREDS, references=REFS, mode="strict") == got


def test_strict_iobes(metric):
    refs = [["S-PER", "O", "B-LOC", "E-LOC"], ["B-ORG", "I-ORG", "E-ORG"]]
    preds = [["S-PER", "O", "B-LOC", "I-LOC"], ["B-ORG", "I-ORG", "E-ORG"]]
    got = check(metric, refs, preds, mode="strict", scheme="IOBES")
    assert got["LOC/f1"] == 0.0 and got["PER/f1"] == 1.0 and got["ORG/f1"] == 1.0


def test_perfect_and_empty(metric):
    got = check(metric, REFS, REFS)
    assert got["overall_f1"] == 1.0 and got["macro/f1"] == 1.0 and got["accuracy"] == 1.0
    got = metric.compute(predictions=[["O", "O"]], references=[["O", "O"]])
    assert got["overall_f1"] == 0.0 and got["accuracy"] == 1.0 and math.isnan(got["macro/f1"])
    got = metric.compute(predictions=[], references=[])
    assert math.isnan(got["overall_f1"]) and got["micro/number"] == 0.0


def test_all_values_are_floats(metric):
    got = metric.compute(predictions=PREDS, references=REFS, mode="strict", scheme="IOB2")
    assert got and all(type(v) is float for v in got.values())
    assert {"PER/f1", "PER/precision", "PER/recall", "PER/number", "micro/f1", "macro/f1", "accuracy",
            "overall_precision", "overall_recall", "overall_f1", "overall_accuracy"} <= set(got)


def test_bad_arguments(metric):
    with pytest.raises(ValueError, match="unknown scheme"):
        metric.compute(predictions=PREDS, references=REFS, mode="strict", scheme="BIO")
    with pytest.raises(ValueError, match="mode"):
        metric.compute(predictions=PREDS, references=REFS, mode="lenient")
    with pytest.raises(ValueError, match="sentence 0"):
        metric.compute(predictions=[["O"]], references=[["O", "O"]])


def random_tags(rng: random.Random, n: int) -> list[str]:
    choices = ["O", "O", "O"] + [f"{p}-{t}" for p in "BI" for t in TYPES[: rng.randint(1, 4)]]
    return [rng.choice(choices) for _ in range(n)]


def perturb(rng: random.Random, tags: list[str]) -> list[str]:
    out = list(tags)
    for i in range(len(out)):
        if rng.random() < 0.2:
            out[i] = rng.choice(["O", "B-PER", "I-PER", "B-LOC", "I-LOC", "B-ORG", "I-ORG"])
    return out


@pytest.mark.parametrize("seed", range(8))
@pytest.mark.parametrize("mode", [None, "strict"])
def test_random_cases_agree(metric, seed, mode):
    rng = random.Random(seed)
    refs = [random_tags(rng, rng.randint(1, 15)) for _ in range(rng.randint(1, 30))]
    preds = [perturb(rng, r) for r in refs]
    kwargs = {"mode": "strict", "scheme": "IOB2"} if mode else {}
    check(metric, refs, preds, **kwargs)
