"""Task-agnostic classification scores (accuracy, F1, Matthews correlation), computed offline."""

import datasets
import evaluate
import numpy as np
from sklearn.metrics import accuracy_score
from sklearn.metrics import f1_score
from sklearn.metrics import matthews_corrcoef

_DESCRIPTION = """\
Scores for single-label classification with integer class ids. Reports plain accuracy, F1
averaged over classes with equal weight (macro F1), and the Matthews correlation coefficient
(the multi-class form when more than two classes occur). When every label seen in predictions
and references is 0 or 1 the task is treated as binary and the F1 of class 1 is added.
Scores are on a 0-1 scale (Matthews correlation on -1..1).
"""

_CITATION = """\
@article{pedregosa2011scikit,
  title={Scikit-learn: Machine Learning in {P}ython},
  author={Pedregosa, F. and Varoquaux, G. and Gramfort, A. and Michel, V. and Thirion, B. and Grisel, O. and Blondel, M. and Prettenhofer, P. and Weiss, R. and Dubourg, V. and Vanderplas, J. and Passos, A. and Cournapeau, D. and Brucher, M. and Perrot, M. and Duchesnay, E.},
  journal={Journal of Machine Learning Research},
  volume={12},
  pages={2825--2830},
  year={2011}
}
"""

_KWARGS_DESCRIPTION = """
Args:
    predictions: predicted class ids, one integer per example.
    references: gold class ids, in the same order as ``predictions``.
Returns:
    accuracy: share of examples whose prediction equals the reference.
    f1_macro: unweighted mean of the per-class F1 over every class seen in either input.
    f1: F1 of class 1; only present when all labels seen are 0 or 1.
    matthews_correlation: Matthews correlation coefficient; 0.0 when it is undefined
        (for example when a single class is predicted throughout).
    All values are Python floats. Classes that are never predicted score an F1 of 0.0.
Examples:
    >>> clf = load_metric("classification")
    >>> clf.compute(predictions=[0, 1, 1, 0], references=[0, 1, 0, 0])
    {'accuracy': 0.75, 'f1_macro': 0.7333333333333334, 'matthews_correlation': 0.5773502691896258, 'f1': 0.6666666666666666}
"""


def is_binary(predictions, references):
    """True when the labels seen in either input are a subset of {0, 1}."""
    seen = set(np.unique(np.asarray(predictions)).tolist()) | set(np.unique(np.asarray(references)).tolist())
    return seen <= {0, 1}


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class Classification(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features(
                {"predictions": datasets.Value("int64"), "references": datasets.Value("int64")}
            ),
            reference_urls=[
                "https://scikit-learn.org/stable/modules/model_evaluation.html#classification-metrics"
            ],
        )

    def _compute(self, predictions, references):
        result = {
            "accuracy": float(accuracy_score(references, predictions)),
            "f1_macro": float(f1_score(references, predictions, average="macro", zero_division=0.0)),
            "matthews_correlation": float(matthews_corrcoef(references, predictions)),
        }
        if is_binary(predictions, references):
            result["f1"] = float(f1_score(references, predictions, pos_label=1, zero_division=0.0))
        return result
