"""Configuration of the recurrent encoder-decoder (Sutskever et al. 2014; Bahdanau et al. 2015; Luong et al. 2015).

Hyperparameters only; the modules live in :mod:`harness.models.rnn_seq2seq.modeling_rnn_seq2seq`. Out-of-range
values raise a got-vs-expected ``ValueError`` when the config is built and when ``config.json`` is loaded.
"""

from __future__ import annotations

from transformers import PretrainedConfig

CELLS = ("gru", "lstm")
ATTENTIONS = ("none", "bahdanau", "luong")
LUONG_SCORES = ("dot", "general", "concat")


class RNNSeq2SeqConfig(PretrainedConfig):
    r"""Configuration for ``RNNSeq2SeqForConditionalGeneration``.

    Args:
        vocab_size: one vocabulary for source and target (a joint tokenizer); the embedding is shared.
        embedding_size: word embedding width.
        hidden_size: the decoder's state width, and the encoder's per direction.
        encoder_layers / decoder_layers: stacked recurrent layers.
        cell: ``gru`` or ``lstm`` (both sides).
        bidirectional: the encoder reads both ways; its outputs are ``2 × hidden_size`` wide.
        attention: ``none`` (the final encoder state is the only bridge: the information bottleneck), ``bahdanau``
            (additive attention from the previous decoder state, before the recurrent step, its context fed into
            the step) or ``luong`` (the recurrent step first, then attention on its output; ``luong_score``:
            ``dot``, ``general`` or ``concat``; ``input_feeding``: the previous attentional vector is fed to the
            next step; ``deep_output``: the output layer reads ``[h̃_t; e_t]``, the attentional vector and the
            previous token's embedding, as Bahdanau's readout ``[s_t; c_t; e_t]`` reads it — Pascanu et al. 2014's
            deep output; false: Luong et al.'s ``h̃_t`` alone).
        scale_scores: ``luong`` ``dot`` / ``general`` scores divided by √d, d the width of the vectors they
            multiply (Vaswani et al. 2017's scaled dot product; Luong et al., who trained with SGD, did not scale).
            Adam moves every weight by about lr in its gradient's sign, so one step can move a bilinear score
            :math:`s^\top W h` by up to :math:`lr \sum_{ij} |s_i h_j|`. Unscaled, on Multi30k the attention
            saturated on one source position within 25 steps and never recovered (max weight 1.0, under half of
            Bahdanau's BLEU; docs/benchmarks.md, Multi30k part 7). Additive scores (``bahdanau``, ``concat``) are
            bounded by tanh and are never scaled.
        attention_size: width of the additive (``bahdanau`` / ``concat``) score layer.
        dropout: dropout on embeddings, between layers and before the output layer.
        tie_word_embeddings: the output layer's matrix is the embedding (needs ``embedding_size`` wide readout:
            a projection is added when the readout is wider).
        init_range: every weight from U(−init_range, init_range), biases zero (Sutskever et al. 2014: 0.08; Luong
            et al. 2015: 0.1); None (default): PyTorch's fan-in scaled defaults (U(±1/√hidden) for the recurrent
            weights) — with the small uniform init, Luong's dot / general scores start so close to 0 that attention
            stays uniform for hundreds of steps on the tiny reverse task (measured: loss 2.0 after 300 Adam steps
            vs 0.02 with the defaults).
        professor_forcing: train with professor forcing (Lamb et al. 2016): each training batch also runs a
            free-running decoder pass (its own sampled tokens fed back), a discriminator (a biGRU of
            ``discriminator_hidden_size``, default ``hidden_size``, part of the model and of its checkpoint, unused
            by ``generate``) learns to tell the two passes' hidden-state sequences apart, and the decoder is also
            trained to make its free-running behaviour look teacher-forced, with ``professor_forcing_weight``.
    """

    model_type = "harness_rnn_seq2seq"

    vocab_size: int = 10000
    embedding_size: int = 256
    hidden_size: int = 512
    encoder_layers: int = 1
    decoder_layers: int = 1
    cell: str = "gru"
    bidirectional: bool = True
    attention: str = "bahdanau"
    luong_score: str = "general"
    input_feeding: bool = True
    deep_output: bool = False
    scale_scores: bool = True
    attention_size: int | None = None
    dropout: float = 0.3
    tie_word_embeddings: bool = False
    init_range: float | None = None
    professor_forcing: bool = False
    professor_forcing_weight: float = 1.0
    discriminator_hidden_size: int | None = None
    is_encoder_decoder: bool = True
    use_cache: bool = True
    pad_token_id: int | None = 0
    bos_token_id: int | None = None
    eos_token_id: int | None = None
    decoder_start_token_id: int | None = None

    def __post_init__(self, **kwargs):
        super().__post_init__(**kwargs)
        if self.attention_size is None:
            self.attention_size = self.hidden_size
        if self.discriminator_hidden_size is None:
            self.discriminator_hidden_size = self.hidden_size
        self._check()

    @property
    def encoder_output_size(self) -> int:
        return self.hidden_size * (2 if self.bidirectional else 1)

    def _check(self) -> None:
        for name in ("vocab_size", "embedding_size", "hidden_size", "encoder_layers", "decoder_layers",
                     "attention_size", "discriminator_hidden_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"RNNSeq2SeqConfig.{name} must be a positive integer, got {value!r}")
        for name, allowed in (("cell", CELLS), ("attention", ATTENTIONS), ("luong_score", LUONG_SCORES)):
            if getattr(self, name) not in allowed:
                raise ValueError(f"RNNSeq2SeqConfig.{name} must be one of {allowed}, got {getattr(self, name)!r}")
        if self.init_range is not None and (isinstance(self.init_range, bool) or
                                            not isinstance(self.init_range, (int, float)) or not self.init_range > 0):
            raise ValueError(f"RNNSeq2SeqConfig.init_range must be None or > 0, got {self.init_range!r}")
        if isinstance(self.dropout, bool) or not isinstance(self.dropout, (int, float)) or not 0 <= self.dropout < 1:
            raise ValueError(f"RNNSeq2SeqConfig.dropout must be a probability in [0, 1), got {self.dropout!r}")
        weight = self.professor_forcing_weight
        if isinstance(weight, bool) or not isinstance(weight, (int, float)) or not weight >= 0:
            raise ValueError(f"RNNSeq2SeqConfig.professor_forcing_weight must be a number >= 0, got {weight!r}")
        for name in ("bidirectional", "input_feeding", "deep_output", "scale_scores", "tie_word_embeddings", "use_cache",
                     "professor_forcing"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"RNNSeq2SeqConfig.{name} must be true or false, got {getattr(self, name)!r}")
        if not self.is_encoder_decoder:
            raise ValueError("RNNSeq2SeqConfig.is_encoder_decoder must stay true")
        for name in ("pad_token_id", "bos_token_id", "eos_token_id", "decoder_start_token_id"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int)
                                      or not 0 <= value < self.vocab_size):
                raise ValueError(f"RNNSeq2SeqConfig.{name} must be None or an id in [0, vocab_size={self.vocab_size}), "
                                 f"got {value!r}")


__all__ = ["RNNSeq2SeqConfig", "CELLS", "ATTENTIONS", "LUONG_SCORES"]
