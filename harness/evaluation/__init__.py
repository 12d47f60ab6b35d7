"""Evaluation: the evaluators of the task families (:mod:`.evaluators`), the prediction primitives and the
per-run :class:`~harness.evaluation.runner.Evaluation` (:mod:`.runner`), the evaluation loaders
(:mod:`.loaders`), and the GLUE submission format (:mod:`.glue_submission`)."""
