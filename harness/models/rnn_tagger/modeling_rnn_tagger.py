r"""The BiLSTM-CRF sequence tagger (Lample et al. 2016; Ma & Hovy 2016) as a ``transformers`` model.

Per word: a word embedding (random, or loaded from a word-vector file by the recipe builder)
concatenated with character-level features of its spelling — a character BiLSTM's final states
(Lample et al.) or a character CNN max-pooled over the word (Ma & Hovy) — then dropout, the recurrent
encoder of this family (:class:`~harness.models.rnn.modeling_rnn.RNNModel`, a BiLSTM by default),
dropout, a linear layer to per-tag emission scores, and either a linear-chain CRF
(:class:`harness.modules.crf.CRF`, optionally constrained to the tag scheme's valid transitions) or a
per-token softmax (``config.head``). Nothing in ``transformers`` provides character features or a CRF
head, hence this module.

Inputs: ``input_ids`` are **word** ids (one per word, no special tokens: the builder's tokenizer is
word-level), ``char_ids`` ``(batch, words, max_chars)`` the characters of each word (0 = padding,
1 = unknown character), ``labels`` one tag id per word (-100 under padding). ``decode_tags`` turns
the emission scores into tag ids: Viterbi for the CRF head, argmax for the softmax head.

The character vocabulary is part of the config (``config.char_vocab``), so a saved model carries
everything needed to featurise new text: :meth:`RNNTaggerForTokenClassification.char_ids_for` maps words
to ``char_ids`` rows.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence
from transformers.modeling_outputs import TokenClassifierOutput

from harness.models.rnn.modeling_rnn import RNNModel, RNNPreTrainedModel, _chunk_mask
from harness.models.rnn_tagger.configuration_rnn_tagger import CHAR_PAD, CHAR_UNK, RNNTaggerConfig
from harness.modules.crf import CRF, allowed_transitions
from harness.registry import register_auto


class CharEncoder(nn.Module):
    """``(batch, words, chars)`` character ids → ``(batch, words, features)``, one vector per word."""

    def __init__(self, config: RNNTaggerConfig):
        super().__init__()
        self.kind = config.char_encoder
        self.embeddings = nn.Embedding(len(config.char_vocab) + 2, config.char_embedding_size, padding_idx=CHAR_PAD)
        if self.kind == "lstm":
            self.lstm = nn.LSTM(config.char_embedding_size, config.char_hidden_size, batch_first=True, bidirectional=True)
        else:
            k = config.char_kernel_size
            self.conv = nn.Conv1d(config.char_embedding_size, config.char_hidden_size, k, padding=k // 2)
        self.out_size = config.char_features_size

    def forward(self, char_ids: torch.LongTensor) -> torch.Tensor:
        batch, words, chars = char_ids.shape
        flat = char_ids.reshape(batch * words, chars)
        lengths = (flat != CHAR_PAD).sum(1)  # (N,) 0 for padding words
        real = lengths > 0
        out = torch.zeros(batch * words, self.out_size, device=char_ids.device, dtype=self.embeddings.weight.dtype)
        if not bool(real.any()):
            return out.view(batch, words, -1)
        ids, lengths = flat[real], lengths[real]
        emb = self.embeddings(ids)  # (n, chars, E)
        if self.kind == "lstm":
            packed = pack_padded_sequence(emb, lengths.cpu(), batch_first=True, enforce_sorted=False)
            _, (h, _) = self.lstm(packed)  # h: (2, n, H), the final state of each direction
            feats = torch.cat([h[0], h[1]], dim=-1)
        else:
            conv = self.conv(emb.transpose(1, 2))[..., :chars]  # (n, F, chars)
            pad = (ids == CHAR_PAD).unsqueeze(1)
            feats = conv.masked_fill(pad, float("-inf")).max(dim=-1).values
        out = out.index_put((real.nonzero(as_tuple=True)[0],), feats.to(out.dtype))
        return out.view(batch, words, -1)


class RNNTaggerForTokenClassification(RNNPreTrainedModel):
    """Word + character features → recurrent encoder → emissions → CRF or softmax.

    The loss is the CRF's negative log-likelihood averaged over the sentences of the batch, or the
    softmax head's cross-entropy averaged over the words. ``logits`` are the emission scores.
    """

    config_class = RNNTaggerConfig

    def __init__(self, config: RNNTaggerConfig):
        super().__init__(config)
        self.num_labels = config.num_labels
        self.char_encoder = CharEncoder(config) if config.char_encoder != "none" else None
        self.rnn = RNNModel(config, extra_input_size=config.char_features_size)
        p = config.dropout if config.classifier_dropout is None else config.classifier_dropout
        self.dropout = nn.Dropout(p)
        self.classifier = nn.Linear(config.output_size, config.num_labels)
        self.crf = None
        if config.head == "crf":
            labels = [config.id2label[i] for i in range(config.num_labels)]
            constraints = allowed_transitions(labels, config.tag_scheme) if config.tag_scheme else None
            self.crf = CRF(config.num_labels, batch_first=True, constraints=constraints)
        if config.singleton_unk > 0:
            # which word ids were seen once in training (set by the builder; saved with the weights)
            self.register_buffer("singleton_words", torch.zeros(config.vocab_size, dtype=torch.bool))
        self._char_index = {c: i + 2 for i, c in enumerate(config.char_vocab or [])}
        self.post_init()

    def set_singleton_words(self, word_ids) -> None:
        """Mark the word ids that ``config.singleton_unk`` replaces in training (the training words seen once)."""
        if self.config.singleton_unk <= 0:
            raise ValueError("set_singleton_words needs config.singleton_unk > 0")
        ids = torch.as_tensor(list(word_ids), dtype=torch.long)
        if ids.numel() and (int(ids.min()) < 0 or int(ids.max()) >= self.config.vocab_size):
            raise ValueError(f"singleton word ids must lie in [0, {self.config.vocab_size})")
        self.singleton_words.zero_()
        self.singleton_words[ids.to(self.singleton_words.device)] = True

    def get_input_embeddings(self) -> nn.Embedding:
        return self.rnn.embeddings

    def set_input_embeddings(self, value: nn.Embedding) -> None:
        self.rnn.embeddings = value

    def char_ids_for(self, words: list[str]) -> list[list[int]]:
        """The ``char_ids`` rows of a sentence (one list per word, unpadded)."""
        return char_ids(words, self._char_index, self.config.max_word_length)

    def emissions(self, input_ids, attention_mask=None, char_ids=None, output_hidden_states=None):
        cfg = self.config
        if self.training and (cfg.word_dropout > 0 or cfg.singleton_unk > 0) and cfg.unk_token_id is not None:
            p = torch.full(input_ids.shape, float(cfg.word_dropout), device=input_ids.device)
            if cfg.singleton_unk > 0:
                p = p.masked_fill(self.singleton_words[input_ids], float(cfg.singleton_unk))
            drop = torch.rand(input_ids.shape, device=input_ids.device) < p
            input_ids = input_ids.masked_fill(drop, cfg.unk_token_id)
        x = self.rnn.embeddings(input_ids)
        if self.char_encoder is not None:
            if char_ids is None:
                raise ValueError("this tagger reads characters: pass char_ids (batch, words, max_chars)")
            if char_ids.shape[:2] != input_ids.shape:
                raise ValueError(f"char_ids must be (batch, words, chars) with (batch, words) = "
                                 f"{tuple(input_ids.shape)}, got {tuple(char_ids.shape)}")
            x = torch.cat([x, self.char_encoder(char_ids)], dim=-1)
        out = self.rnn(inputs_embeds=x, attention_mask=attention_mask, use_cache=False,
                       output_hidden_states=output_hidden_states, return_dict=True)
        return self.classifier(self.dropout(out.last_hidden_state)), out.hidden_states

    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        attention_mask: torch.Tensor | None = None,
        char_ids: torch.LongTensor | None = None,
        labels: torch.LongTensor | None = None,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
        token_type_ids: torch.Tensor | None = None,  # accepted and ignored
    ):
        return_dict = self.config.return_dict if return_dict is None else return_dict
        logits, hidden_states = self.emissions(input_ids, attention_mask, char_ids, output_hidden_states)
        loss = None
        if labels is not None:
            if labels.shape != logits.shape[:2]:
                raise ValueError(f"labels must be (batch, words) = {tuple(logits.shape[:2])}, got {tuple(labels.shape)}")
            mask = self._mask(attention_mask, logits)
            if self.crf is not None:
                if bool(((labels == -100) & mask).any()):
                    raise ValueError(
                        "the CRF head needs a tag for every word: labels hold -100 at a real position (use a "
                        "word-level tokenizer without special tokens, one id per word)"
                    )
                loss = -self.crf(logits.float(), labels, mask, reduction="mean")
            else:
                labels = labels.masked_fill(~mask, -100)
                loss = F.cross_entropy(logits.float().reshape(-1, self.num_labels), labels.reshape(-1), ignore_index=-100)
        if not return_dict:
            rest = (hidden_states,) if hidden_states is not None else ()
            return ((loss,) if loss is not None else ()) + (logits,) + rest
        return TokenClassifierOutput(loss=loss, logits=logits, hidden_states=hidden_states)

    @staticmethod
    def _mask(attention_mask, logits) -> torch.Tensor:
        mask = _chunk_mask(attention_mask, *logits.shape[:2], False)
        return torch.ones(logits.shape[:2], dtype=torch.bool, device=logits.device) if mask is None else mask

    @property
    def structured_decoding(self) -> bool:
        """True when :meth:`decode_tags` decodes whole sequences (the CRF head's Viterbi); the softmax
        head's per-word argmax is not, so an evaluation that asks for constrained decoding
        (``data.decoding: constrained``) reads its scores instead."""
        return self.crf is not None

    @torch.no_grad()
    def decode_tags(self, logits: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.LongTensor:
        """Tag ids ``(batch, words)``, -100 under padding: Viterbi (CRF head) or argmax (softmax head)."""
        mask = self._mask(attention_mask, logits)
        if self.crf is None:
            return logits.argmax(-1).masked_fill(~mask, -100)
        if not bool(mask[:, 0].all()):
            # the CRF wants left-aligned masks; a right-padded batch always is, a left-padded one is shifted
            raise ValueError("the CRF decodes right-padded batches only (tokenizer.padding_side='right')")
        paths, _ = self.crf.decode_padded(logits.float(), mask, pad_tag=-100)
        return paths


def char_ids(words: list[str], index: dict[str, int], max_word_length: int) -> list[list[int]]:
    """Character ids of each word (unknown characters → 1); a word longer than ``max_word_length`` keeps
    its first ``max_word_length - 1`` characters and its last one (suffixes carry morphology)."""
    rows = []
    for word in words:
        chars = word if len(word) <= max_word_length else word[: max_word_length - 1] + word[-1]
        rows.append([index.get(c, CHAR_UNK) for c in chars] or [CHAR_UNK])
    return rows


register_auto(RNNTaggerConfig, AutoModelForTokenClassification=RNNTaggerForTokenClassification)

__all__ = ["RNNTaggerConfig", "RNNTaggerForTokenClassification", "CharEncoder", "char_ids"]
