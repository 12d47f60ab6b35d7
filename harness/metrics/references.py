"""Inputs shared by the generation metrics (``sacrebleu``, ``rouge``): one prediction string per example and one
reference string or a list of them, checked before ``evaluate`` stores anything (an error raised inside
``_compute`` would leave evaluate's cache file locked, and the next call waits on it)."""

from __future__ import annotations


def as_reference_lists(references):
    """One reference string per row becomes a one-element list; lists pass through (see ``check_inputs``)."""
    if references is None or isinstance(references, str):
        return references
    return [[r] if isinstance(r, str) else r for r in references]


def check_inputs(predictions, references):
    """One string per prediction, one non-empty list of strings per reference row, as many rows as predictions."""
    if len(predictions) != len(references):
        raise ValueError(f"got {len(predictions)} predictions but {len(references)} references; "
                         "give one reference (or one list of references) per prediction")
    for i, prediction in enumerate(predictions):
        if not isinstance(prediction, str):
            raise ValueError(f"predictions[{i}] is {prediction!r}, not a string")
    for i, refs in enumerate(references):
        if len(refs) == 0:
            raise ValueError(f"references[{i}] is an empty list; every example needs at least one reference")
        for ref in refs:
            if not isinstance(ref, str):
                raise ValueError(f"references[{i}] holds {ref!r}, not a string")


class MultiReferenceInputs:
    """``compute`` / ``add_batch`` / ``add`` of an ``evaluate.Metric`` that take a reference string or a list per
    example; the metric class sets ``OPTIONS`` (its compute keywords) and ``check_options`` (a static method that
    raises on a bad one). evaluate appends the inputs description to these docstrings, so they must have one."""

    OPTIONS: tuple[str, ...] = ()

    @staticmethod
    def check_options(**options) -> dict:
        return options

    def compute(self, *, predictions=None, references=None, **kwargs):
        """Score the examples given here and any added before."""
        self.check_options(**{k: v for k, v in kwargs.items() if k in self.OPTIONS})
        if predictions is not None and references is not None:
            references = as_reference_lists(references)
            check_inputs(predictions, references)
            if len(predictions) == 0 and self.writer is None:
                raise ValueError("no predictions to score (empty corpus)")
        return super().compute(predictions=predictions, references=references, **kwargs)

    def add_batch(self, *, predictions=None, references=None, **kwargs):
        """Add a batch; a reference row may be one string or a list of strings (made a list here)."""
        references = as_reference_lists(references)
        if predictions is not None and references is not None:
            check_inputs(predictions, references)
        return super().add_batch(predictions=predictions, references=references, **kwargs)

    def add(self, *, prediction=None, reference=None, **kwargs):
        """Add one example; the reference may be one string or a list of strings."""
        if isinstance(reference, str):
            reference = [reference]
        if prediction is not None and reference is not None:
            check_inputs([prediction], [reference])
        return super().add(prediction=prediction, reference=reference, **kwargs)
