"""Configuration of the recurrent family (vanilla RNN, GRU, LSTM; uni- or bidirectional).

Hyperparameters only: the modules live in :mod:`harness.models.rnn.modeling_rnn`. Like every
``transformers`` 5 config, the fields are dataclass fields (``RNNConfig(hidden_size=64, ...)``, keyword
arguments only) and ``save_pretrained`` writes them to ``config.json``. Out-of-range values raise a
got-vs-expected ``ValueError`` when the config is built (and again when ``config.json`` is loaded).
"""

from __future__ import annotations

from transformers import PretrainedConfig

CELLS = ("rnn_tanh", "rnn_relu", "gru", "lstm")
POOLINGS = ("last", "mean", "max")


class RNNConfig(PretrainedConfig):
    r"""Configuration for ``RNNModel`` and its heads.

    Args:
        vocab_size: rows of the input embedding (and of the LM's output layer).
        embedding_size: width of the word embeddings fed to the first recurrent layer.
        hidden_size: width of the recurrent state of each layer *per direction*.
        num_layers: stacked recurrent layers, each a single-layer ``nn.RNN`` / ``nn.GRU`` / ``nn.LSTM``.
        cell: ``"rnn_tanh"`` (:math:`h_t = \tanh(W x_t + U h_{t-1} + b)`), ``"rnn_relu"`` (the same with a
            ReLU), ``"gru"`` or ``"lstm"``; the gate equations are in ``modeling_rnn.reference_cell_step``.
        bidirectional: run each layer left-to-right and right-to-left and concatenate both (encoders and
            taggers only; ``RNNForCausalLM`` refuses it, a causal LM must not see the future).
        dropout: dropout probability on the embeddings and on every layer's output (Zaremba et al. 2014
            drop the non-recurrent connections only; the recurrent ones are left intact).
        residual: add each layer's input to its output where the widths match (every layer but the first,
            and the first too when ``embedding_size == hidden_size * num_directions``).
        layer_norm: ``LayerNorm`` on each layer's output (after the residual sum).
        layer_norm_eps: the ``LayerNorm`` epsilon.
        init_range: every embedding, recurrent and linear weight is drawn from ``U(-init_range, init_range)``
            (Zaremba et al. use 0.1 for their medium LSTM, 0.05 for the large one).
        forget_bias: initial bias of the LSTM forget gate (Jozefowicz et al. 2015: 1.0 lets gradients
            through the cell path from the start; 0.0 is PyTorch's plain default).
        pooling: how ``RNNForSequenceClassification`` turns the sequence into one vector: ``"last"`` (the
            output after the last real token; for a bidirectional encoder, the forward half there and the
            backward half at the first real token), ``"mean"`` or ``"max"`` over real tokens.
        classifier_dropout: dropout before the classification heads (default: ``dropout``).
        tie_word_embeddings: share the LM's output matrix with the input embedding (Press & Wolf 2017;
            Inan et al. 2017). When ``hidden_size != embedding_size`` a bias-free projection
            ``hidden_size → embedding_size`` is put in front of the output layer.
        use_cache: return the final recurrent state (the cache ``generate`` carries) by default.
        pad_token_id / bos_token_id / eos_token_id: special token ids (``generate`` reads them).
        num_labels / id2label / label2id / problem_type: the usual ``PretrainedConfig`` head settings.
    """

    model_type = "harness_rnn"

    vocab_size: int = 10000
    embedding_size: int = 128
    hidden_size: int = 256
    num_layers: int = 2
    cell: str = "lstm"
    bidirectional: bool = False
    dropout: float = 0.0
    residual: bool = False
    layer_norm: bool = False
    layer_norm_eps: float = 1e-5
    init_range: float = 0.1
    forget_bias: float = 1.0
    pooling: str = "last"
    classifier_dropout: float | None = None
    tie_word_embeddings: bool = False
    use_cache: bool = True
    pad_token_id: int | None = 0
    bos_token_id: int | None = None
    eos_token_id: int | None = None

    def __post_init__(self, **kwargs):
        super().__post_init__(**kwargs)
        self._check()

    @property
    def num_directions(self) -> int:
        return 2 if self.bidirectional else 1

    @property
    def output_size(self) -> int:
        """Width of each layer's output: ``hidden_size * num_directions``."""
        return self.hidden_size * self.num_directions

    # --- validation (got-vs-expected ValueErrors, raised from __init__) -----------------------------
    def _check(self) -> None:
        for name in ("vocab_size", "embedding_size", "hidden_size", "num_layers"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"RNNConfig.{name} must be a positive integer, got {value!r}")
        if self.cell not in CELLS:
            raise ValueError(f"RNNConfig.cell must be one of {CELLS}, got {self.cell!r}")
        if self.pooling not in POOLINGS:
            raise ValueError(f"RNNConfig.pooling must be one of {POOLINGS}, got {self.pooling!r}")
        for name in ("bidirectional", "residual", "layer_norm", "tie_word_embeddings", "use_cache"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"RNNConfig.{name} must be true or false, got {getattr(self, name)!r}")
        for name in ("dropout", "classifier_dropout"):
            value = getattr(self, name)
            if value is None and name == "classifier_dropout":
                continue
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value < 1.0:
                raise ValueError(f"RNNConfig.{name} must be a probability in [0, 1), got {value!r}")
        if not isinstance(self.init_range, (int, float)) or not self.init_range > 0:
            raise ValueError(f"RNNConfig.init_range must be > 0, got {self.init_range!r}")
        if not isinstance(self.layer_norm_eps, (int, float)) or not self.layer_norm_eps > 0:
            raise ValueError(f"RNNConfig.layer_norm_eps must be > 0, got {self.layer_norm_eps!r}")
        if isinstance(self.forget_bias, bool) or not isinstance(self.forget_bias, (int, float)):
            raise ValueError(f"RNNConfig.forget_bias must be a number, got {self.forget_bias!r}")
        for name in ("pad_token_id", "bos_token_id", "eos_token_id"):
            value = getattr(self, name)
            if value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < self.vocab_size:
                raise ValueError(
                    f"RNNConfig.{name} must be None or an id in [0, vocab_size={self.vocab_size}), got {value!r}"
                )


__all__ = ["RNNConfig", "CELLS", "POOLINGS"]
