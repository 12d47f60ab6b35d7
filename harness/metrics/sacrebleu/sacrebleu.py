"""Corpus BLEU and chrF computed offline with the ``sacrebleu`` library, with sacreBLEU's signatures, flattened
into one dict.
"""

import datasets
import evaluate
from sacrebleu.metrics import BLEU
from sacrebleu.metrics import CHRF

from harness.metrics.references import MultiReferenceInputs
from harness.metrics.references import check_inputs

_DESCRIPTION = """\
Corpus-level BLEU and chrF as computed by sacreBLEU (the sacrebleu library's Python API, the same
code as its command line), on sacreBLEU's 0-100 scale, with the signature string that says how
each score was computed (number of references, case, tokenizer, smoothing, version ...).

BLEU: sacreBLEU's defaults (tokenizer "13a", exponential smoothing, 4-grams); chrF: chrF2
(character 6-grams, beta 2, no word n-grams). Hypotheses and references are single segments
(one sentence or line each) in plain, detokenized text.

Several references per example: the reference streams are built by transposing the rows; rows
with fewer references than the longest row are padded with None, which sacreBLEU's API reads as
"no reference here" (a variable number of references; the signature then says nrefs:var). The
command line cannot express that; there every line of every reference file is a reference.
"""

_CITATION = """\
@inproceedings{post-2018-call,
  title={A Call for Clarity in Reporting {BLEU} Scores},
  author={Post, Matt},
  booktitle={Proceedings of the Third Conference on Machine Translation: Research Papers},
  year={2018},
  address={Belgium, Brussels},
  publisher={Association for Computational Linguistics},
  url={https://www.aclweb.org/anthology/W18-6319},
  pages={186--191},
}
@inproceedings{papineni-etal-2002-bleu,
  title={{B}leu: a Method for Automatic Evaluation of Machine Translation},
  author={Papineni, Kishore and Roukos, Salim and Ward, Todd and Zhu, Wei-Jing},
  booktitle={Proceedings of the 40th Annual Meeting of the Association for Computational Linguistics},
  year={2002},
  pages={311--318},
}
@inproceedings{popovic-2015-chrf,
  title={chr{F}: character n-gram {F}-score for automatic {MT} evaluation},
  author={Popovi{\\'c}, Maja},
  booktitle={Proceedings of the Tenth Workshop on Statistical Machine Translation},
  year={2015},
  pages={392--395},
}
"""

_KWARGS_DESCRIPTION = """
Args:
    predictions: one hypothesis string per example.
    references: per example, one reference string or a non-empty list of reference strings
        (rows may hold different numbers of references).
    tokenize: BLEU's tokenizer, default "13a" (sacreBLEU's default); also "none", "intl", "char",
        "zh", and, with extra packages or downloads, "ja-mecab", "ko-mecab", "spm", "flores101",
        "flores200", "spBLEU-1K". chrF does not tokenize.
    lowercase: lower-case hypotheses and references before scoring, for BLEU and chrF alike (the
        command line's ``-lc --chrf-lowercase``); default False.
    metrics: which of "bleu" and "chrf" to compute; default ("bleu", "chrf").
Returns:
    for BLEU: ``bleu`` (0-100), ``bleu_signature`` (str), ``bleu_precision_1`` ... ``bleu_precision_4``
    (modified n-gram precisions, 0-100), ``bleu_bp`` (brevity penalty, 0-1), ``bleu_sys_len`` and
    ``bleu_ref_len`` (hypothesis and effective reference lengths in tokens); for chrF: ``chrf``
    (0-100) and ``chrf_signature``. Every value but the signatures is a Python float.
Examples:
    >>> sacrebleu = load_metric("sacrebleu")
    >>> r = sacrebleu.compute(predictions=["the cat sat on the mat"], references=[["the cat sat on the mat"]])
    >>> round(r["bleu"], 6), r["chrf"], r["bleu_signature"]
    (100.0, 100.0, 'nrefs:1|case:mixed|eff:no|tok:13a|smooth:exp|version:2.6.0')
"""

METRICS = ("bleu", "chrf")
OPTIONS = ("tokenize", "lowercase", "metrics")


def check_options(tokenize="13a", lowercase=False, metrics=METRICS):
    """The options, checked; ``metrics`` as a list of lower-case names."""
    if isinstance(metrics, str):
        metrics = [metrics]
    metrics = list(dict.fromkeys(str(m).lower() for m in metrics))
    unknown = [m for m in metrics if m not in METRICS]
    if unknown or not metrics:
        raise ValueError(f"unknown metrics {unknown}; choose from {', '.join(METRICS)}")
    if tokenize not in BLEU.TOKENIZERS:
        raise ValueError(f"unknown tokenize {tokenize!r}; sacrebleu knows {', '.join(BLEU.TOKENIZERS)}")
    return {"tokenize": tokenize, "lowercase": bool(lowercase), "metrics": metrics}


def reference_streams(references):
    """Rows of references → sacreBLEU's reference streams (stream k holds every row's k-th reference), short
    rows padded with None, which sacreBLEU skips."""
    width = max(len(refs) for refs in references)
    return [[refs[k] if k < len(refs) else None for refs in references] for k in range(width)]


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class Sacrebleu(MultiReferenceInputs, evaluate.Metric):
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
                    "references": datasets.Sequence(datasets.Value("string", id="sequence"), id="references"),
                }
            ),
            homepage="https://github.com/mjpost/sacreBLEU",
            reference_urls=["https://github.com/mjpost/sacreBLEU", "https://www.aclweb.org/anthology/W18-6319"],
        )

    def _compute(self, predictions, references, tokenize="13a", lowercase=False, metrics=METRICS):
        metrics = check_options(tokenize=tokenize, lowercase=lowercase, metrics=metrics)["metrics"]
        check_inputs(predictions, references)
        if not predictions:
            raise ValueError("no predictions to score (empty corpus)")
        streams = reference_streams(references)
        out = {}
        if "bleu" in metrics:
            bleu = BLEU(tokenize=tokenize, lowercase=bool(lowercase))
            score = bleu.corpus_score(predictions, streams)
            out["bleu"] = float(score.score)
            out["bleu_signature"] = str(bleu.get_signature().format())
            for n, precision in enumerate(score.precisions, 1):
                out[f"bleu_precision_{n}"] = float(precision)
            out["bleu_bp"] = float(score.bp)
            out["bleu_sys_len"] = float(score.sys_len)
            out["bleu_ref_len"] = float(score.ref_len)
        if "chrf" in metrics:
            chrf = CHRF(lowercase=bool(lowercase))
            out["chrf"] = float(chrf.corpus_score(predictions, streams).score)
            out["chrf_signature"] = str(chrf.get_signature().format())
        return out
