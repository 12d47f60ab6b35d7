"""ROUGE-1 / 2 / L / Lsum with Google's ``rouge-score`` library, plus ROUGE-W (weighted LCS, Lin 2004) from
``harness.metrics.rouge_w``, averaged over examples into one flat dict of floats.
"""

import datasets
import evaluate
from rouge_score import rouge_scorer

from harness.metrics.rouge_w import RougeWScorer
from harness.metrics.references import MultiReferenceInputs
from harness.metrics.references import check_inputs

_DESCRIPTION = """\
ROUGE scores of generated texts against one or several references, on a 0-1 scale.

ROUGE-N (rouge1, rouge2, ... rouge9), ROUGE-L and ROUGE-Lsum come from rouge-score's RougeScorer
(rouge_score.rouge_scorer), unchanged. ROUGE-W (rougeW) is the weighted-LCS score of Lin (2004),
section 3.2, with f(k) = k ** alpha: no maintained Python package has it, so it is computed by
harness.metrics.rouge_w (see its docstring for the definition and the exact/greedy DP choice) on
the tokens rouge-score produces, so it sees what ROUGE-L sees.

Tokenization (rouge-score's default tokenizer): text is lower-cased and every run of characters
outside [a-z0-9] separates tokens, so punctuation is dropped and text in other scripts (accented
letters included: "café" -> "caf") loses those characters; a text with none of [a-z0-9] has no
tokens and scores 0. use_stemmer=True applies the Porter stemmer to tokens longer than 3 characters.

ROUGE-Lsum is the summary-level LCS of rouge-score: the texts are split into sentences on newline
characters ("\\n") only, and the union LCS of each reference sentence with all candidate sentences
is counted. Put one sentence per line in both predictions and references (e.g. join nltk's
sentences with "\\n"); without newlines ROUGE-Lsum equals ROUGE-L. ROUGE-L and ROUGE-W ignore the
line structure.

Several references per example: as rouge-score's score_multi, each ROUGE type takes the reference
with the highest F-measure (the first on ties) and reports that reference's precision and recall.
The per-example scores are then averaged over the examples (a plain mean, no bootstrap).
"""

_CITATION = """\
@inproceedings{lin-2004-rouge,
  title={{ROUGE}: A Package for Automatic Evaluation of Summaries},
  author={Lin, Chin-Yew},
  booktitle={Text Summarization Branches Out},
  year={2004},
  address={Barcelona, Spain},
  publisher={Association for Computational Linguistics},
  url={https://aclanthology.org/W04-1013},
  pages={74--81},
}
"""

_KWARGS_DESCRIPTION = """
Args:
    predictions: one generated text per example.
    references: per example, one reference text or a non-empty list of reference texts
        (rows may hold different numbers of references).
    rouge_types: the scores to compute; default ("rouge1", "rouge2", "rougeL", "rougeLsum", "rougeW").
        "rouge3" ... "rouge9" work too.
    use_stemmer: Porter-stem tokens longer than 3 characters (rouge-score's option), default False.
        Applies to ROUGE-W too.
    rouge_w_alpha: ROUGE-W's weight exponent, f(k) = k ** alpha; default 1.2 (ROUGE-W-1.2).
    rouge_w_exact: False (default) computes WLCS with the paper's greedy dynamic program, True
        the exact maximum-weight common subsequence (see harness.metrics.rouge_w).
Returns:
    A flat dict of Python floats, means over the examples; for every ROUGE type T:
    ``T`` (F-measure, beta = 1), ``T_precision`` and ``T_recall``; e.g. ``rouge1``,
    ``rouge1_precision``, ``rouge1_recall``, ..., ``rougeW``, ``rougeW_precision``, ``rougeW_recall``.
Examples:
    >>> rouge = load_metric("rouge")
    >>> r = rouge.compute(predictions=["the cat sat on the mat"], references=[["a cat sat on a mat", "the cat sat"]])
    >>> round(r["rouge1"], 4), r["rouge2_recall"]  # rouge2: the second reference has the higher F
    (0.6667, 1.0)
"""

DEFAULT_TYPES = ("rouge1", "rouge2", "rougeL", "rougeLsum", "rougeW")
_SCORER_TYPES = ("rougeL", "rougeLsum") + tuple(f"rouge{n}" for n in range(1, 10))
OPTIONS = ("rouge_types", "use_stemmer", "rouge_w_alpha", "rouge_w_exact")


def check_options(rouge_types=DEFAULT_TYPES, use_stemmer=False, rouge_w_alpha=1.2, rouge_w_exact=False):
    """The options, checked; ``rouge_types`` as a list without repeats."""
    if isinstance(rouge_types, str):
        rouge_types = [rouge_types]
    rouge_types = list(dict.fromkeys(rouge_types))
    unknown = [t for t in rouge_types if t not in _SCORER_TYPES and t != "rougeW"]
    if unknown or not rouge_types:
        raise ValueError(f"unknown rouge_types {unknown}; choose from rouge1 ... rouge9, rougeL, rougeLsum, rougeW")
    if "rougeW" in rouge_types:
        RougeWScorer(alpha=rouge_w_alpha, exact=rouge_w_exact)  # raises on a bad alpha
    return {"rouge_types": rouge_types}


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class Rouge(MultiReferenceInputs, evaluate.Metric):
    OPTIONS = OPTIONS
    check_options = staticmethod(check_options)

    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features(
                {
                    "predictions": datasets.Value("string", id="sequence"),
                    "references": datasets.Sequence(datasets.Value("string", id="sequence")),
                }
            ),
            homepage="https://github.com/google-research/google-research/tree/master/rouge",
            reference_urls=[
                "https://github.com/google-research/google-research/tree/master/rouge",
                "https://aclanthology.org/W04-1013",
            ],
        )

    def _compute(self, predictions, references, rouge_types=DEFAULT_TYPES, use_stemmer=False, rouge_w_alpha=1.2,
                 rouge_w_exact=False):
        rouge_types = check_options(rouge_types=rouge_types, rouge_w_alpha=rouge_w_alpha,
                                    rouge_w_exact=rouge_w_exact)["rouge_types"]
        check_inputs(predictions, references)
        if not predictions:
            raise ValueError("no predictions to score (empty corpus)")
        scorer_types = [t for t in rouge_types if t != "rougeW"]
        scorer = rouge_scorer.RougeScorer(scorer_types, use_stemmer=use_stemmer) if scorer_types else None
        w_scorer = (RougeWScorer(alpha=rouge_w_alpha, use_stemmer=use_stemmer, exact=rouge_w_exact)
                    if "rougeW" in rouge_types else None)
        totals = {t: [0.0, 0.0, 0.0] for t in rouge_types}  # precision, recall, fmeasure sums
        for prediction, refs in zip(predictions, references):
            scores = {}
            if scorer is not None:
                scores.update(scorer.score_multi(refs, prediction))
            if w_scorer is not None:
                scores["rougeW"] = w_scorer.score_multi(refs, prediction)
            for t in rouge_types:
                s = scores[t]
                total = totals[t]
                total[0] += s.precision
                total[1] += s.recall
                total[2] += s.fmeasure
        count = len(predictions)
        out = {}
        for t in rouge_types:
            precision, recall, fmeasure = totals[t]
            out[t] = float(fmeasure / count)
            out[f"{t}_precision"] = float(precision / count)
            out[f"{t}_recall"] = float(recall / count)
        return out
