"""Configuration of the from-scratch Transformer family: encoder (BERT-like), decoder (GPT-like) and
encoder-decoder (Vaswani et al. 2017).

Hyperparameters only; the modules live in :mod:`harness.models.transformer.modeling_transformer`. Field names
are the ones ``transformers`` configs use (``hidden_size``, ``num_hidden_layers``, ``num_attention_heads``,
...), so its generic code (caches, ``generate``, PEFT's target modules) reads them. Out-of-range values raise
a got-vs-expected ``ValueError`` when the config is built (and when ``config.json`` is loaded back).
"""

from __future__ import annotations

from transformers import PretrainedConfig

POSITION_EMBEDDINGS = ("learned", "sinusoidal", "rotary")
NORM_POSITIONS = ("pre", "post")
ACTIVATIONS = ("gelu", "gelu_new", "relu", "silu")


class TransformerConfig(PretrainedConfig):
    r"""Configuration for ``TransformerModel`` and its heads.

    Args:
        vocab_size: rows of the token embedding (and of the output layer of the LM heads).
        hidden_size: the model width :math:`D` (``d_model``).
        num_hidden_layers: blocks in the stack (the encoder's, for an encoder-decoder).
        num_decoder_layers: blocks in the decoder of an encoder-decoder (default: ``num_hidden_layers``).
        num_attention_heads: heads :math:`H`; ``hidden_size`` must be divisible by it (each head is
            :math:`d_k = D / H` wide).
        intermediate_size: width of the feed-forward layer inside each block (default: ``4 * hidden_size``).
        hidden_act: the feed-forward activation (``gelu``, ``gelu_new`` — GPT-2's tanh approximation —,
            ``relu`` as in Vaswani et al., ``silu``).
        hidden_dropout_prob: dropout on the embeddings and on every sub-layer's output before the residual sum.
        attention_probs_dropout_prob: dropout on the attention weights.
        max_position_embeddings: rows of the learned position table (the longest input); for sinusoidal and
            rotary positions only a starting size.
        position_embedding_type: ``learned`` (BERT, GPT-2), ``sinusoidal`` (Vaswani et al., fixed) or ``rotary``
            (RoPE, applied to queries and keys inside attention).
        rope_theta: RoPE's base (angles :math:`p \cdot \theta^{-2i/d_k}`).
        norm_position: ``pre`` (LayerNorm before each sub-layer, a final LayerNorm after the stack: GPT-2, stable
            without warm-up) or ``post`` (LayerNorm after each residual sum and on the embeddings: BERT, Vaswani).
        layer_norm_eps: the LayerNorm epsilon.
        type_vocab_size: rows of the segment (token type) embedding for sentence pairs; 0: none.
        scale_embeddings: multiply token embeddings by :math:`\sqrt{D}` (Vaswani et al. §3.4, with sinusoidal
            positions).
        bias: biases in the attention and feed-forward projections.
        initializer_range: std of the normal initialisation (0.02 as GPT-2 / BERT); every block's output
            projections get ``initializer_range / sqrt(2 · layers)`` (GPT-2: the residual sum grows with depth).
        classifier_dropout: dropout before the classification heads (default: ``hidden_dropout_prob``).
        is_decoder: the stack is causal (position :math:`t` attends to :math:`\le t`): a GPT-like decoder.
        is_encoder_decoder: encoder and decoder with cross-attention (``TransformerForConditionalGeneration``).
        tie_word_embeddings: the LM heads' output matrix is the token embedding (Press & Wolf 2017); for an
            encoder-decoder, encoder, decoder and output share the one matrix (a joint vocabulary, as Vaswani et al.).
        decoder_start_token_id: the first decoder input of an encoder-decoder.
        pad_token_id / bos_token_id / eos_token_id: special token ids.
        num_labels / id2label / label2id / problem_type: the usual ``PretrainedConfig`` head settings.
    """

    model_type = "harness_transformer"
    keys_to_ignore_at_inference = ["past_key_values"]

    vocab_size: int = 30000
    hidden_size: int = 256
    num_hidden_layers: int = 4
    num_decoder_layers: int | None = None
    num_attention_heads: int = 4
    intermediate_size: int | None = None
    hidden_act: str = "gelu"
    hidden_dropout_prob: float = 0.1
    attention_probs_dropout_prob: float = 0.1
    max_position_embeddings: int = 512
    position_embedding_type: str = "learned"
    rope_theta: float = 10000.0
    norm_position: str = "pre"
    layer_norm_eps: float = 1e-5
    type_vocab_size: int = 0
    scale_embeddings: bool = False
    bias: bool = True
    initializer_range: float = 0.02
    classifier_dropout: float | None = None
    is_decoder: bool = False
    is_encoder_decoder: bool = False
    tie_word_embeddings: bool = True
    use_cache: bool = True
    pad_token_id: int | None = 0
    bos_token_id: int | None = None
    eos_token_id: int | None = None
    decoder_start_token_id: int | None = None

    def __post_init__(self, **kwargs):
        super().__post_init__(**kwargs)
        if self.intermediate_size is None:
            self.intermediate_size = 4 * self.hidden_size if isinstance(self.hidden_size, int) else None
        if self.num_decoder_layers is None:
            self.num_decoder_layers = self.num_hidden_layers
        self._check()

    @property
    def head_dim(self) -> int:
        return self.hidden_size // self.num_attention_heads

    def _check(self) -> None:
        for name in ("vocab_size", "hidden_size", "num_hidden_layers", "num_decoder_layers", "num_attention_heads",
                     "intermediate_size", "max_position_embeddings"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"TransformerConfig.{name} must be a positive integer, got {value!r}")
        if self.hidden_size % self.num_attention_heads:
            raise ValueError(f"TransformerConfig.hidden_size ({self.hidden_size}) must be divisible by "
                             f"num_attention_heads ({self.num_attention_heads}): each head is hidden_size / heads wide")
        choices = {"position_embedding_type": POSITION_EMBEDDINGS, "norm_position": NORM_POSITIONS,
                   "hidden_act": ACTIVATIONS}
        for name, allowed in choices.items():
            if getattr(self, name) not in allowed:
                raise ValueError(f"TransformerConfig.{name} must be one of {allowed}, got {getattr(self, name)!r}")
        if self.position_embedding_type == "rotary" and self.head_dim % 2:
            raise ValueError(f"TransformerConfig: rotary positions need an even head width, got hidden_size / "
                             f"num_attention_heads = {self.head_dim}")
        if self.position_embedding_type == "sinusoidal" and self.hidden_size % 2:
            raise ValueError(f"TransformerConfig: sinusoidal positions need an even hidden_size, got {self.hidden_size}")
        for name in ("hidden_dropout_prob", "attention_probs_dropout_prob", "classifier_dropout"):
            value = getattr(self, name)
            if value is None and name == "classifier_dropout":
                continue
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value < 1.0:
                raise ValueError(f"TransformerConfig.{name} must be a probability in [0, 1), got {value!r}")
        if isinstance(self.type_vocab_size, bool) or not isinstance(self.type_vocab_size, int) or self.type_vocab_size < 0:
            raise ValueError(f"TransformerConfig.type_vocab_size must be an integer >= 0, got {self.type_vocab_size!r}")
        for name in ("initializer_range", "layer_norm_eps", "rope_theta"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
                raise ValueError(f"TransformerConfig.{name} must be > 0, got {value!r}")
        for name in ("scale_embeddings", "bias", "is_decoder", "is_encoder_decoder", "tie_word_embeddings", "use_cache"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"TransformerConfig.{name} must be true or false, got {getattr(self, name)!r}")
        if self.is_decoder and self.is_encoder_decoder:
            raise ValueError("TransformerConfig: is_decoder (a decoder-only stack) and is_encoder_decoder exclude each other")
        for name in ("pad_token_id", "bos_token_id", "eos_token_id", "decoder_start_token_id"):
            value = getattr(self, name)
            if value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < self.vocab_size:
                raise ValueError(f"TransformerConfig.{name} must be None or an id in [0, vocab_size={self.vocab_size}), "
                                 f"got {value!r}")


__all__ = ["TransformerConfig", "POSITION_EMBEDDINGS", "NORM_POSITIONS", "ACTIVATIONS"]
