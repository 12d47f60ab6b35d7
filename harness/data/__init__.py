"""Data components: each reads raw data and returns a :class:`harness.data.base.Task`.

Importing this package registers the built-in ones (``@register("data", name)`` in each module):
``glue``, ``text_classification``, ``synthetic_classification``, ``lm_text``, ``mlm_text``, ``conll_ner``, ``translation``, ``text_to_text``.
"""

from harness.data import files, glue, lm, mlm, ner, pairs, seq2seq, superglue, synthetic  # noqa: F401  (registers the components)
