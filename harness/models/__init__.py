"""Model builders (``model.component`` in a recipe) and, per folder, custom ``transformers`` models.

Importing this package registers every built-in model family — its recipe builders and its Auto classes:
:mod:`.pretrained` (wrapped checkpoints), :mod:`.bert` (BERT from a fresh config), :mod:`.rnn`,
:mod:`.rnn_tagger`, :mod:`.ngram`, :mod:`.transformer`. A new family is a folder with ``configuration_<name>.py`` and
``modeling_<name>.py``, builders decorated ``@register("model", ...)``, ``register_auto(...)`` in its
``__init__``, and one line here.
"""

from harness.models import bert, ngram, pretrained, rnn, rnn_seq2seq, rnn_tagger, siamese, span_classifier, transformer  # noqa: F401  (register the families)
