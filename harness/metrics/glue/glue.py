"""GLUE benchmark scores, one ``evaluate`` config per task, computed offline.

Each score is the scikit-learn / SciPy function GLUE names for the task, on a 0-1 scale.
"""

import datasets
import evaluate
from scipy.stats import pearsonr
from scipy.stats import spearmanr
from sklearn.metrics import accuracy_score
from sklearn.metrics import f1_score
from sklearn.metrics import matthews_corrcoef

_DESCRIPTION = """\
Task scores for the GLUE benchmark (General Language Understanding Evaluation). The config
name picks the task and with it the score GLUE reports for it: Matthews correlation for CoLA
and the AX diagnostic set, accuracy for SST-2, QNLI, RTE, WNLI and the MNLI splits, accuracy
and F1 of the positive class for MRPC and QQP, and Pearson and Spearman correlation for STS-B.
All scores lie on a 0-1 scale (correlations on -1..1), not in percent.
"""

_CITATION = """\
@inproceedings{wang2019glue,
  title={{GLUE}: A Multi-Task Benchmark and Analysis Platform for Natural Language Understanding},
  author={Wang, Alex and Singh, Amanpreet and Michael, Julian and Hill, Felix and Levy, Omer and Bowman, Samuel R.},
  booktitle={International Conference on Learning Representations},
  year={2019},
  note={arXiv:1804.07461}
}
"""

_KWARGS_DESCRIPTION = """
Args:
    predictions: the model's outputs, one per example. Integer class ids for every task but
        ``stsb``, where they are real-valued similarity scores.
    references: the gold labels, in the same order and of the same kind as ``predictions``.
Returns:
    A dict of Python floats whose keys depend on the config:
    ``cola``, ``ax``: ``matthews_correlation``;
    ``sst2``, ``qnli``, ``rte``, ``wnli``, ``mnli``, ``mnli_matched``, ``mnli_mismatched``: ``accuracy``;
    ``mrpc``, ``qqp``: ``accuracy`` and ``f1`` (label 1 is the positive class);
    ``stsb``: ``pearson`` and ``spearmanr``.
Examples:
    >>> glue = load_metric("glue", "mrpc")
    >>> glue.compute(predictions=[1, 0, 1, 1], references=[1, 0, 0, 1])
    {'accuracy': 0.75, 'f1': 0.8}
"""

_MCC_TASKS = ("cola", "ax")
_ACCURACY_TASKS = ("sst2", "qnli", "rte", "wnli", "mnli", "mnli_matched", "mnli_mismatched")
_ACCURACY_F1_TASKS = ("mrpc", "qqp")
_CORRELATION_TASKS = ("stsb",)
CONFIG_NAMES = _MCC_TASKS + _ACCURACY_TASKS + _ACCURACY_F1_TASKS + _CORRELATION_TASKS


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class Glue(evaluate.Metric):
    def _info(self):
        if self.config_name not in CONFIG_NAMES:
            raise ValueError(
                f"unknown GLUE config {self.config_name!r}; choose one of: {', '.join(CONFIG_NAMES)}"
            )
        dtype = "float64" if self.config_name in _CORRELATION_TASKS else "int64"
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features(
                {"predictions": datasets.Value(dtype), "references": datasets.Value(dtype)}
            ),
            homepage="https://gluebenchmark.com/",
            reference_urls=["https://arxiv.org/abs/1804.07461"],
        )

    def _compute(self, predictions, references):
        # Inputs arrive as Python lists. Asking evaluate for format="numpy" would go through the
        # datasets NumpyFormatter, which turns float64 columns into float32 and shifts STS-B scores.
        if self.config_name in _MCC_TASKS:
            return {"matthews_correlation": float(matthews_corrcoef(references, predictions))}
        if self.config_name in _ACCURACY_TASKS:
            return {"accuracy": float(accuracy_score(references, predictions))}
        if self.config_name in _ACCURACY_F1_TASKS:
            return {
                "accuracy": float(accuracy_score(references, predictions)),
                "f1": float(f1_score(references, predictions, pos_label=1, zero_division=0.0)),
            }
        return {
            "pearson": float(pearsonr(predictions, references).statistic),
            "spearmanr": float(spearmanr(predictions, references).statistic),
        }
