"""Entity-level precision, recall and F1 for sequence labelling (NER, chunking), computed offline
with the ``seqeval`` library and flattened into one dict of floats.
"""

import warnings

import datasets
import evaluate
import numpy as np
import seqeval.scheme
from seqeval.metrics import accuracy_score
from seqeval.metrics import classification_report

_DESCRIPTION = """\
Entity-level scores for sequence labelling, as computed by the seqeval library (the conlleval
convention). An entity counts as correct only when its type and exact span match. In the default
mode seqeval reads tags leniently, as conlleval does (an orphan I-X starts an entity); with
mode="strict" and a scheme (IOB1, IOB2, IOE1, IOE2, IOBES, BILOU) only entities that are well
formed in that scheme count. Token-level accuracy is reported too. All scores lie on a 0-1 scale.
"""

_CITATION = """\
@misc{seqeval,
  title={{seqeval}: A Python framework for sequence labeling evaluation},
  url={https://github.com/chakki-works/seqeval},
  note={Software available from https://github.com/chakki-works/seqeval},
  author={Hiroki Nakayama},
  year={2018},
}
@inproceedings{ramshaw-marcus-1995-text,
  title={Text Chunking using Transformation-Based Learning},
  author={Ramshaw, Lance and Marcus, Mitch},
  booktitle={Third Workshop on Very Large Corpora},
  year={1995},
  url={https://www.aclweb.org/anthology/W95-0107},
}
"""

_KWARGS_DESCRIPTION = """
Args:
    predictions: one list of string tags per sentence (e.g. ["O", "B-PER", "I-PER"]).
    references: the gold tags, the same shape as ``predictions``.
    scheme: None, "IOB1", "IOB2", "IOE1", "IOE2", "IOBES" or "BILOU"; used by mode="strict"
        (which defaults it to "IOB2").
    mode: None (lenient, conlleval-compatible) or "strict".
    suffix: True if tags put the prefix last ("PER-B").
    zero_division: the value for 0/0 precision or recall (0 or 1; "warn" acts as 0 with a warning).
Returns:
    A flat dict of Python floats:
    ``overall_precision``, ``overall_recall``, ``overall_f1`` (= the micro averages),
    ``overall_accuracy`` and ``accuracy`` (token-level accuracy);
    ``micro/...``, ``macro/...``, ``weighted/...`` with ``precision``, ``recall``, ``f1``, ``number``;
    per entity type ``TYPE/precision``, ``TYPE/recall``, ``TYPE/f1``, ``TYPE/number`` (``number``: the
    gold entities of that type). Macro averages are NaN when there are no entity types at all.
Examples:
    >>> seqeval = load_metric("seqeval")
    >>> r = seqeval.compute(predictions=[["B-PER", "I-PER", "O"]], references=[["B-PER", "I-PER", "O"]],
    ...                     scheme="IOB2", mode="strict")
    >>> r["overall_f1"], r["PER/f1"], r["PER/number"]
    (1.0, 1.0, 1.0)
"""

SCHEMES = ("IOB1", "IOB2", "IOE1", "IOE2", "IOBES", "BILOU")
_AVERAGES = {"micro avg": "micro", "macro avg": "macro", "weighted avg": "weighted"}
_SCORES = {"precision": "precision", "recall": "recall", "f1-score": "f1", "support": "number"}


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class Seqeval(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features(
                {
                    "predictions": datasets.Sequence(datasets.Value("string", id="label"), id="sequence"),
                    "references": datasets.Sequence(datasets.Value("string", id="label"), id="sequence"),
                }
            ),
            homepage="https://github.com/chakki-works/seqeval",
            reference_urls=["https://github.com/chakki-works/seqeval"],
        )

    def _compute(self, predictions, references, scheme=None, mode=None, suffix=False, zero_division=0,
                 sample_weight=None):
        if mode not in (None, "default", "strict"):
            raise ValueError(f"mode must be None or 'strict', got {mode!r}")
        if mode == "default":
            mode = None
        if mode == "strict" and scheme is None:
            scheme = "IOB2"
        scheme_class = None
        if scheme is not None:
            name = str(scheme).upper()
            if name not in SCHEMES:
                raise ValueError(f"unknown scheme {scheme!r}; choose one of: {', '.join(SCHEMES)}")
            scheme_class = getattr(seqeval.scheme, name)
        predictions = [list(p) for p in predictions]
        references = [list(r) for r in references]
        for i, (p, r) in enumerate(zip(predictions, references)):
            if len(p) != len(r):
                raise ValueError(f"sentence {i}: {len(p)} predicted tags but {len(r)} reference tags")
        if not predictions:  # seqeval rejects an empty corpus; nothing to score
            nan = float("nan")
            out = {f"{avg}/{short}": nan for avg in _AVERAGES.values() for short in ("precision", "recall", "f1")}
            out.update({f"{avg}/number": 0.0 for avg in _AVERAGES.values()})
            out.update(overall_precision=nan, overall_recall=nan, overall_f1=nan, overall_accuracy=nan, accuracy=nan)
            return out
        with warnings.catch_warnings(), np.errstate(invalid="ignore", divide="ignore"):
            warnings.simplefilter("ignore", RuntimeWarning)
            report = classification_report(
                y_true=references,
                y_pred=predictions,
                suffix=suffix,
                output_dict=True,
                mode=mode,
                scheme=scheme_class,
                sample_weight=sample_weight,
                zero_division=zero_division,
            )
        out = {}
        for key, scores in report.items():
            prefix = _AVERAGES.get(key, key)
            for score, short in _SCORES.items():
                out[f"{prefix}/{short}"] = float(scores[score])
        # classification_report leaves out the micro average when nothing was predicted or expected
        for short in ("precision", "recall", "f1"):
            out.setdefault(f"micro/{short}", 0.0)
        out.setdefault("micro/number", 0.0)
        out["overall_precision"] = out["micro/precision"]
        out["overall_recall"] = out["micro/recall"]
        out["overall_f1"] = out["micro/f1"]
        accuracy = float(accuracy_score(y_true=references, y_pred=predictions)) if any(references) else float("nan")
        out["overall_accuracy"] = accuracy
        out["accuracy"] = accuracy
        return out
