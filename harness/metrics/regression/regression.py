"""Scores for real-valued predictions (Pearson, Spearman, mean squared error), computed offline."""

import datasets
import evaluate
from scipy.stats import pearsonr
from scipy.stats import spearmanr
from sklearn.metrics import mean_squared_error

_DESCRIPTION = """\
Scores for regression, where each prediction and reference is a single real number. Reports
the Pearson correlation (linear agreement), the Spearman rank correlation (monotone agreement)
and the mean squared error. Correlations lie in -1..1 and are NaN when either input is
constant; the error is in squared units of the target.
"""

_CITATION = """\
@article{virtanen2020scipy,
  title={{SciPy} 1.0: Fundamental Algorithms for Scientific Computing in {P}ython},
  author={Virtanen, Pauli and Gommers, Ralf and Oliphant, Travis E. and others},
  journal={Nature Methods},
  volume={17},
  pages={261--272},
  year={2020}
}
"""

_KWARGS_DESCRIPTION = """
Args:
    predictions: predicted values, one float per example.
    references: target values, in the same order as ``predictions``.
Returns:
    pearson: Pearson correlation coefficient of predictions and references.
    spearmanr: Spearman rank correlation coefficient (ties get their average rank).
    mse: mean of the squared differences.
    All values are Python floats.
Examples:
    >>> reg = load_metric("regression")
    >>> reg.compute(predictions=[1.0, 2.0, 4.0], references=[1.0, 3.0, 3.0])
    {'pearson': 0.7559289460184543, 'spearmanr': 0.8660254037844387, 'mse': 0.6666666666666666}
"""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class Regression(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            # float64 so float32 and float64 inputs both pass through unchanged.
            features=datasets.Features(
                {"predictions": datasets.Value("float64"), "references": datasets.Value("float64")}
            ),
            reference_urls=["https://docs.scipy.org/doc/scipy/reference/stats.html"],
        )

    def _compute(self, predictions, references):
        # Inputs arrive as Python lists; format="numpy" would downcast them to float32.
        return {
            "pearson": float(pearsonr(predictions, references).statistic),
            "spearmanr": float(spearmanr(predictions, references).statistic),
            "mse": float(mean_squared_error(references, predictions)),
        }
