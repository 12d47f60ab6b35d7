"""Configuration of the Siamese bi-encoder: one shared encoder (any ``AutoModel`` config: BERT family, our
Transformer or recurrent encoders), a pooling of its token states into one vector, an optional L2
normalisation, and the similarity the embeddings are compared with.

Hyperparameters only; the model is :mod:`harness.models.siamese.modeling_siamese`. The encoder's config is a
sub-config (as ``EncoderDecoderConfig`` holds its encoder's), so ``config.json`` is self-contained and
``AutoModel.from_pretrained`` rebuilds the whole model.
"""

from __future__ import annotations

from transformers import AutoConfig, PretrainedConfig
from transformers.configuration_utils import SubConfigSpec

POOLINGS = ("mean", "cls", "max")
SIMILARITIES = ("cosine", "euclidean", "dot")


class SiameseConfig(PretrainedConfig):
    r"""Configuration for ``SiameseModel``.

    Args:
        encoder: the shared encoder's config (a ``PretrainedConfig`` or its dict with a ``model_type``).
        pooling: ``mean`` (average of the real tokens' states, padding masked out), ``cls`` (the first token's
            state) or ``max`` (per-dimension maximum over the real tokens).
        normalize: L2-normalise the pooled vector (then dot product = cosine similarity).
        similarity: how two embeddings are compared by :meth:`SiameseModel.similarity` and saved for
            sentence-transformers (``similarity_fn_name``): ``cosine``, ``euclidean`` (negative distance, so
            larger is always more similar) or ``dot``.
        max_seq_length: the longest input in tokens the model was trained with (sentence-transformers'
            ``max_seq_length``); None: the tokenizer's limit.
    """

    model_type = "harness_siamese"
    sub_configs_defaults = {"encoder": SubConfigSpec(config_class=AutoConfig, model_type="bert")}

    encoder: PretrainedConfig | dict | None = None
    pooling: str = "mean"
    normalize: bool = False
    similarity: str = "cosine"
    max_seq_length: int | None = None

    def __post_init__(self, **kwargs):
        super().__post_init__(**kwargs)
        if self.pooling not in POOLINGS:
            raise ValueError(f"SiameseConfig.pooling must be one of {POOLINGS}, got {self.pooling!r}")
        if self.similarity not in SIMILARITIES:
            raise ValueError(f"SiameseConfig.similarity must be one of {SIMILARITIES}, got {self.similarity!r}")
        if not isinstance(self.normalize, bool):
            raise ValueError(f"SiameseConfig.normalize must be true or false, got {self.normalize!r}")
        if self.max_seq_length is not None and (isinstance(self.max_seq_length, bool)
                                                or not isinstance(self.max_seq_length, int) or self.max_seq_length < 1):
            raise ValueError(f"SiameseConfig.max_seq_length must be a positive integer, got {self.max_seq_length!r}")

    @property
    def hidden_size(self) -> int:
        """The embedding width: the encoder's hidden size."""
        return self.encoder.hidden_size
