"""SuperGLUE benchmark scores, one ``evaluate`` config per task, computed offline.

The official definitions (Wang et al. 2019, Table 1; jiant's scorers): accuracy for BoolQ, COPA, RTE, WiC, WSC;
accuracy and macro-F1 over CB's three classes; MultiRC's F1a (binary F1 over every answer option) and exact
match (a question counts only when all its answer options are right); ReCoRD's token F1 and exact match of the
predicted entity against the best-matching gold answer (the official ReCoRD script's SQuAD normalisation: lower
case, punctuation and articles removed), averaged over queries; Matthews correlation for AX-b; gender
parity (the share of AX-g's minimal pairs — consecutive examples that differ only in the pronoun's gender —
given the same prediction) and accuracy for AX-g. Scores on a 0-1 scale.
"""

from collections import defaultdict

import re
import string
from collections import Counter

import datasets
import evaluate
from sklearn.metrics import accuracy_score, f1_score, matthews_corrcoef

_DESCRIPTION = """\
Task scores for the SuperGLUE benchmark. The config picks the task: ``boolq``, ``copa``, ``rte``, ``wic``,
``wsc`` report accuracy; ``cb`` accuracy and macro-F1 over its 3 classes; ``multirc`` F1a over all answer
options and exact match per question; ``record`` F1 and exact match over queries; ``axb`` Matthews correlation; ``axg`` gender parity and accuracy.
"""

_CITATION = """\
@inproceedings{wang2019superglue,
  title={{SuperGLUE}: A Stickier Benchmark for General-Purpose Language Understanding Systems},
  author={Wang, Alex and Pruksachatkun, Yada and Nangia, Nikita and Singh, Amanpreet and Michael, Julian and
          Hill, Felix and Levy, Omer and Bowman, Samuel R.},
  booktitle={Advances in Neural Information Processing Systems},
  year={2019}
}
"""

_KWARGS_DESCRIPTION = """
Args:
    predictions: class ids, one per example; for ``multirc`` dicts
        ``{"idx": {"paragraph": int, "question": int, "answer": int}, "prediction": 0|1}`` (HF's format); for
        ``record`` dicts ``{"idx": {"passage": int, "query": int}, "prediction_text": str}``.
    references: gold class ids in the same order; for ``record`` dicts ``{"idx": ..., "answers": [str, ...]}``.
    hypotheses (``axg`` only, optional): each example's hypothesis, to check that every pair (examples 2k and
        2k + 1) is a minimal pair.
Returns:
    ``accuracy``; ``cb``: ``accuracy``, ``f1_macro``; ``multirc``: ``f1_a``, ``exact_match``; ``record``:
    ``f1``, ``exact_match``; ``axb``:
    ``matthews_correlation``; ``axg``: ``gender_parity``, ``accuracy``.
Examples:
    >>> m = load_metric("superglue", "cb")
    >>> m.compute(predictions=[0, 1, 2, 0], references=[0, 1, 1, 0])
    {'accuracy': 0.75, 'f1_macro': 0.555...}
"""

_ACCURACY = ("boolq", "copa", "rte", "wic", "wsc")
CONFIG_NAMES = _ACCURACY + ("cb", "multirc", "record", "axb", "axg")


def gender_parity(predictions, hypotheses=None) -> float:
    """Share of consecutive pairs (2k, 2k + 1) with the same prediction (jiant's GenderParity)."""
    if len(predictions) % 2:
        raise ValueError(f"axg: gender parity needs minimal pairs, got an odd number of examples ({len(predictions)})")
    if not predictions:
        raise ValueError("axg: no examples")
    same = 0
    for k in range(0, len(predictions), 2):
        if hypotheses is not None and hypotheses[k] != hypotheses[k + 1]:
            raise ValueError(f"axg: examples {k} and {k + 1} are not a minimal pair (their hypotheses differ)")
        same += predictions[k] == predictions[k + 1]
    return same / (len(predictions) // 2)


def multirc_scores(predictions, references) -> dict[str, float]:
    """F1a over every answer option; exact match over questions (all options of a question right)."""
    labels = [int(p["prediction"]) for p in predictions]
    per_question: dict[tuple, bool] = defaultdict(lambda: True)
    for p, gold in zip(predictions, references):
        key = (p["idx"]["paragraph"], p["idx"]["question"])
        per_question[key] = per_question[key] and int(p["prediction"]) == int(gold)
    return {"f1_a": float(f1_score(references, labels, pos_label=1, average="binary", zero_division=0.0)),
            "exact_match": sum(per_question.values()) / len(per_question)}


_PUNCTUATION = frozenset(string.punctuation)


def normalize_answer(text: str) -> str:
    """The ReCoRD / SQuAD answer normalisation: lower case, no punctuation, no articles, single spaces."""
    text = "".join(ch for ch in text.lower() if ch not in _PUNCTUATION)
    return " ".join(re.sub(r"\b(a|an|the)\b", " ", text).split())


def token_f1(prediction: str, gold: str) -> float:
    pred, ref = normalize_answer(prediction).split(), normalize_answer(gold).split()
    common = sum((Counter(pred) & Counter(ref)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(pred), common / len(ref)
    return 2 * precision * recall / (precision + recall)


def record_scores(predictions, references) -> dict[str, float]:
    """Per query the max over its gold answers of token F1 and of exact match (after normalisation), averaged."""
    gold = {(r["idx"]["passage"], r["idx"]["query"]): r["answers"] for r in references}
    if not predictions:
        raise ValueError("record: no predictions")
    f1 = em = 0.0
    for p in predictions:
        key = (p["idx"]["passage"], p["idx"]["query"])
        if key not in gold:
            raise ValueError(f"record: no reference for passage {key[0]}, query {key[1]}")
        if not gold[key]:
            raise ValueError(f"record: passage {key[0]}, query {key[1]} has no gold answers")
        text = p["prediction_text"]
        f1 += max(token_f1(text, g) for g in gold[key])
        em += max(float(normalize_answer(text) == normalize_answer(g)) for g in gold[key])
    return {"f1": f1 / len(predictions), "exact_match": em / len(predictions)}


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class Superglue(evaluate.Metric):
    def _info(self):
        if self.config_name not in CONFIG_NAMES:
            raise ValueError(f"unknown SuperGLUE config {self.config_name!r}; choose one of: {', '.join(CONFIG_NAMES)}")
        reference = datasets.Value("int64")
        if self.config_name == "multirc":
            prediction = {"idx": {"paragraph": datasets.Value("int64"), "question": datasets.Value("int64"),
                                  "answer": datasets.Value("int64")}, "prediction": datasets.Value("int64")}
        elif self.config_name == "record":
            idx = {"passage": datasets.Value("int64"), "query": datasets.Value("int64")}
            prediction = {"idx": idx, "prediction_text": datasets.Value("string")}
            reference = {"idx": idx, "answers": datasets.Sequence(datasets.Value("string"))}
        else:
            prediction = datasets.Value("int64")
        return evaluate.MetricInfo(
            description=_DESCRIPTION, citation=_CITATION, inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features({"predictions": prediction, "references": reference}),
            homepage="https://super.gluebenchmark.com/", reference_urls=["https://arxiv.org/abs/1905.00537"])

    def _compute(self, predictions, references, hypotheses=None):
        name = self.config_name
        if name in _ACCURACY:
            return {"accuracy": float(accuracy_score(references, predictions))}
        if name == "cb":
            return {"accuracy": float(accuracy_score(references, predictions)),
                    "f1_macro": float(f1_score(references, predictions, labels=[0, 1, 2], average="macro",
                                               zero_division=0.0))}
        if name == "multirc":
            return multirc_scores(predictions, references)
        if name == "record":
            return record_scores(predictions, references)
        if name == "axb":
            return {"matthews_correlation": float(matthews_corrcoef(references, predictions))}
        return {"gender_parity": float(gender_parity(list(predictions), hypotheses)),
                "accuracy": float(accuracy_score(references, predictions))}
