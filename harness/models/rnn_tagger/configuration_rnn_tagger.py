"""Configuration of the BiLSTM-CRF sequence tagger (:mod:`harness.models.rnn_tagger.modeling_rnn_tagger`):
the recurrent family's :class:`~harness.models.rnn.RNNConfig` plus character features and the head."""

from __future__ import annotations

from harness.models.rnn.configuration_rnn import RNNConfig
from harness.modules.crf import allowed_transitions

CHAR_ENCODERS = ("none", "cnn", "lstm")
HEADS = ("crf", "softmax")
CHAR_PAD, CHAR_UNK = 0, 1


class RNNTaggerConfig(RNNConfig):
    r"""An :class:`RNNConfig` (the word-level encoder) plus the tagger's own settings.

    Args:
        char_vocab: the characters with an embedding (ids ``2 ..``; 0 is padding, 1 an unknown character).
        char_encoder: ``"lstm"`` (a character BiLSTM, final forward and backward states; Lample et al.),
            ``"cnn"`` (a width-``char_kernel_size`` convolution max-pooled over the word; Ma & Hovy) or
            ``"none"`` (word embeddings only).
        char_embedding_size: width of the character embeddings (Lample et al.: 25; Ma & Hovy: 30).
        char_hidden_size: character BiLSTM state width per direction, or the number of CNN filters.
        char_kernel_size: the CNN's window, in characters.
        max_word_length: characters per word fed to the character encoder (longer words keep their first
            ``max_word_length - 1`` characters and their last one); the word itself is never cut.
        head: ``"crf"`` or ``"softmax"``.
        tag_scheme: ``"IOB1"``, ``"IOB2"`` or ``"IOBES"`` to forbid the transitions the scheme does not
            allow (CRF head only, in training and decoding), or None for an unconstrained CRF.
        word_dropout: in training, each word id is replaced by the unknown word with this probability,
            so the ``[UNK]`` embedding is learned (rare and unseen words at test time map to it).
        singleton_unk: in training, each occurrence of a word seen only once in the training data is
            replaced by the unknown word with this probability instead of ``word_dropout`` (Lample et al.
            2016: 0.5), so ``[UNK]`` learns from the words most like unseen ones. The singleton words are
            the model's ``singleton_words`` buffer (saved with the weights), set by the recipe builder
            through :meth:`RNNTaggerForTokenClassification.set_singleton_words`.
        unk_token_id: the word id ``word_dropout`` and ``singleton_unk`` substitute.
    """

    model_type = "harness_rnn_tagger"

    char_vocab: list[str] | None = None
    char_encoder: str = "lstm"
    char_embedding_size: int = 25
    char_hidden_size: int = 25
    char_kernel_size: int = 3
    max_word_length: int = 30
    head: str = "crf"
    tag_scheme: str | None = "IOB2"
    word_dropout: float = 0.0
    singleton_unk: float = 0.0
    unk_token_id: int | None = 1

    def _check(self) -> None:
        super()._check()
        if self.char_encoder not in CHAR_ENCODERS:
            raise ValueError(f"RNNTaggerConfig.char_encoder must be one of {CHAR_ENCODERS}, got {self.char_encoder!r}")
        if self.head not in HEADS:
            raise ValueError(f"RNNTaggerConfig.head must be one of {HEADS}, got {self.head!r}")
        for name in ("char_embedding_size", "char_hidden_size", "char_kernel_size", "max_word_length"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"RNNTaggerConfig.{name} must be a positive integer, got {value!r}")
        if self.char_encoder != "none" and not self.char_vocab:
            raise ValueError("RNNTaggerConfig.char_vocab must list the characters when char_encoder is not 'none'")
        for name in ("word_dropout", "singleton_unk"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value < 1.0:
                raise ValueError(f"RNNTaggerConfig.{name} must be a probability in [0, 1), got {value!r}")
        if self.tag_scheme is not None and self.head == "crf" and self.id2label:
            # fails early (and names the tag) when the labels do not fit the scheme
            allowed_transitions([self.id2label[i] for i in range(len(self.id2label))], self.tag_scheme)

    @property
    def char_features_size(self) -> int:
        if self.char_encoder == "none":
            return 0
        return 2 * self.char_hidden_size if self.char_encoder == "lstm" else self.char_hidden_size


__all__ = ["RNNTaggerConfig", "CHAR_ENCODERS", "HEADS", "CHAR_PAD", "CHAR_UNK"]
