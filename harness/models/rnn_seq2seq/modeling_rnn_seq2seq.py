r"""The recurrent encoder-decoder with three decoders: no attention, pre-attention (Bahdanau) and post-attention
(Luong), as one ``transformers`` model, ``RNNSeq2SeqForConditionalGeneration``.

Encoder: embeddings → a (bi)GRU / LSTM stack over the padded source (``pack_padded_sequence``: padding never
touches a real token) → outputs :math:`h_1 … h_S` (``encoder_output_size`` wide) and the final states, whose
concatenation (forward last, backward first) is the encoder's summary :math:`\bar h`. The decoder's first state is
:math:`s_0 = \tanh(W_b \bar h)` in every layer.

Decoder step :math:`t`, with :math:`e_t = \mathrm{Emb}(y_{t-1})` (teacher forcing: the gold previous token):

* ``attention: none`` (Sutskever et al. 2014): :math:`s_t = \mathrm{RNN}(e_t, s_{t-1})`,
  :math:`p(y_t) = \mathrm{softmax}(W_o s_t)` — everything about the source passes through :math:`s_0`.
* ``bahdanau`` — **pre-attention** (Bahdanau et al. 2015): the previous state asks first,
  :math:`a_{tj} = v^\top \tanh(W_a s_{t-1} + U_a h_j)`, :math:`\alpha_t = \mathrm{softmax}(a_t)` over real source
  positions, :math:`c_t = \sum_j \alpha_{tj} h_j`; then the step reads the context:
  :math:`s_t = \mathrm{RNN}([e_t; c_t], s_{t-1})`, :math:`p(y_t) = \mathrm{softmax}(W_o [s_t; c_t; e_t])`.
* ``luong`` — **post-attention** (Luong et al. 2015): the step first,
  :math:`s_t = \mathrm{RNN}([e_t; \tilde h_{t-1}], s_{t-1})` (input feeding; :math:`e_t` alone without it), then
  attention on its output with ``dot`` :math:`s_t^\top h_j` (:math:`s_t^\top P h_j` when the encoder's width
  differs from the decoder's: a bidirectional encoder), ``general`` :math:`s_t^\top W_a h_j` or ``concat``
  :math:`v^\top \tanh(W_a [s_t; h_j])` scores, :math:`c_t = \sum_j \alpha_{tj} h_j` over the encoder outputs
  themselves, the attentional vector :math:`\tilde h_t = \tanh(W_c [c_t; s_t])`,
  :math:`p(y_t) = \mathrm{softmax}(W_o \tilde h_t)`. ``dot`` and ``general`` scores are divided by :math:`\sqrt d`
  (``config.scale_scores``, on by default; d the keys' width): unscaled, one Adam step can move a score by up to
  :math:`lr \sum_{ij} |s_i h_j|`, and on Multi30k the attention saturated on one source position within 25 steps,
  for good (docs/benchmarks.md, Multi30k part 7).

The decoder runs one position at a time (attention at step t depends on the state of step t − 1). Its cache is a
:class:`Seq2SeqRNNState` — every decoder layer's state, the input-feeding vector and the positions seen — which
beam search reorders in place. ``output_attentions=True`` returns the weights :math:`\alpha` as
``cross_attentions`` (one "layer", one "head": ``(batch, 1, target, source)``), the alignment heatmap.

Training beyond teacher forcing: scheduled sampling (``sampling_probability``, driven by the
``scheduled_sampling`` callback) and professor forcing (``config.professor_forcing``: a free-running pass and a
discriminator on the two passes' hidden states, see :meth:`RNNSeq2SeqForConditionalGeneration._professor_forcing`).
Neither exists in ``transformers``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence
from transformers import GenerationMixin, PreTrainedModel
from transformers import initialization as init
from transformers.modeling_outputs import BaseModelOutputWithPooling, Seq2SeqLMOutput

from harness.models.rnn_seq2seq.configuration_rnn_seq2seq import RNNSeq2SeqConfig
from harness.registry import register_auto

_RNN = {"gru": nn.GRU, "lstm": nn.LSTM}


class Seq2SeqRNNState:
    """The decoder's cache: ``hidden`` ``(layers, batch, hidden_size)`` (and ``cell`` for an LSTM), the last
    attentional vector ``feed`` ``(batch, hidden_size)`` (Luong's input feeding; None otherwise) and the target
    positions consumed. ``reorder_cache`` (beam search), ``batch_repeat_interleave`` and ``batch_select_indices``
    change it in place."""

    is_compileable = False
    is_croppable = False

    def __init__(self, hidden: torch.Tensor, cell: torch.Tensor | None = None, feed: torch.Tensor | None = None,
                 seen_tokens: int = 0):
        self.hidden, self.cell, self.feed, self.seen_tokens = hidden, cell, feed, int(seen_tokens)

    def get_seq_length(self, layer_idx: int = 0) -> int:
        return self.seen_tokens

    def _rows(self, fn_state, fn_feed) -> None:
        self.hidden = fn_state(self.hidden)
        if self.cell is not None:
            self.cell = fn_state(self.cell)
        if self.feed is not None:
            self.feed = fn_feed(self.feed)

    def reorder_cache(self, beam_idx: torch.LongTensor) -> None:
        self._rows(lambda t: t.index_select(1, beam_idx.to(t.device)), lambda t: t.index_select(0, beam_idx.to(t.device)))

    def batch_repeat_interleave(self, repeats: int) -> None:
        self._rows(lambda t: t.repeat_interleave(repeats, dim=1), lambda t: t.repeat_interleave(repeats, dim=0))

    def batch_select_indices(self, indices: torch.Tensor) -> None:
        self._rows(lambda t: t[:, indices.to(t.device)], lambda t: t[indices.to(t.device)])

    def rnn_state(self):
        return self.hidden if self.cell is None else (self.hidden, self.cell)


class RNNSeq2SeqPreTrainedModel(PreTrainedModel):
    """Initialisation: with ``config.init_range`` every weight from U(−init_range, init_range) (Sutskever et al.: 0.08),
    biases zero; without it (default) PyTorch's own fan-in scaled initialisation of each module is kept."""

    config_class = RNNSeq2SeqConfig
    base_model_prefix = "seq2seq"
    main_input_name = "input_ids"
    _is_stateful = True
    cache_class = Seq2SeqRNNState

    @classmethod
    def _supports_default_dynamic_cache(cls) -> bool:
        return False  # the decoder's recurrent state is its cache (Seq2SeqRNNState), made in forward

    @torch.no_grad()
    def _init_weights(self, module: nn.Module) -> None:
        r = self.config.init_range
        if r is None:
            return
        if isinstance(module, (nn.Embedding, nn.Linear)):
            init.uniform_(module.weight, -r, r)
            if getattr(module, "bias", None) is not None:
                init.zeros_(module.bias)
        elif isinstance(module, nn.RNNBase):
            for name, param in module.named_parameters():
                if name.startswith("bias"):
                    init.zeros_(param)
                else:
                    init.uniform_(param, -r, r)


class RNNEncoder(nn.Module):
    """Embeddings and a (bi)directional GRU / LSTM stack over packed sequences."""

    main_input_name = "input_ids"  # generate reads it from the encoder

    def __init__(self, config: RNNSeq2SeqConfig):
        super().__init__()
        self.config = config
        self.embeddings = nn.Embedding(config.vocab_size, config.embedding_size)  # shared with the decoder
        self.dropout = nn.Dropout(config.dropout)
        self.rnn = _RNN[config.cell](config.embedding_size, config.hidden_size, num_layers=config.encoder_layers,
                                     batch_first=True, bidirectional=config.bidirectional,
                                     dropout=config.dropout if config.encoder_layers > 1 else 0.0)

    def forward(self, input_ids=None, attention_mask=None, inputs_embeds=None, output_attentions=None,
                output_hidden_states=None, return_dict=True, token_type_ids=None):
        x = self.dropout(self.embeddings(input_ids) if inputs_embeds is None else inputs_embeds)  # (B, S, E)
        B, S = x.shape[:2]
        lengths = (attention_mask.sum(-1) if attention_mask is not None
                   else torch.full((B,), S, device=x.device)).clamp(min=1).cpu()
        packed = pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
        out, state = self.rnn(packed)
        out, _ = pad_packed_sequence(out, batch_first=True, total_length=S)  # (B, S, H · directions)
        h = state[0] if isinstance(state, tuple) else state  # (layers · directions, B, H)
        if self.config.bidirectional:
            summary = torch.cat([h[-2], h[-1]], dim=-1)  # last layer: forward's last step, backward's first
        else:
            summary = h[-1]
        return BaseModelOutputWithPooling(last_hidden_state=out, pooler_output=summary)


class DecoderOutput(NamedTuple):
    """What :meth:`RNNDecoder.forward` returns: ``readout`` ``(B, T, readout)`` (what the output layer reads),
    ``alignments`` ``(B, T, S)`` (None without attention), the new ``state``, and ``hidden`` ``(B, T, H)``: the top
    layer's recurrent output :math:`s_t` per step, the behaviour professor forcing's discriminator judges."""

    readout: torch.Tensor
    alignments: torch.Tensor | None
    state: Seq2SeqRNNState
    hidden: torch.Tensor


class RNNDecoder(nn.Module):
    """The decoder of the module docstring; :meth:`forward` runs the given target positions one by one."""

    def __init__(self, config: RNNSeq2SeqConfig):
        super().__init__()
        self.config = config
        H, E, M, A = config.hidden_size, config.embedding_size, config.encoder_output_size, config.attention_size
        self.dropout = nn.Dropout(config.dropout)
        self.kind = config.attention
        self.bridge = nn.Linear(M, H)
        feed = self.kind == "luong" and config.input_feeding
        step_input = E + (M if self.kind == "bahdanau" else H if feed else 0)
        self.rnn = _RNN[config.cell](step_input, H, num_layers=config.decoder_layers, batch_first=True,
                                     dropout=config.dropout if config.decoder_layers > 1 else 0.0)
        self.key: nn.Linear | None = None  # Bahdanau's U_a; Luong's dot-score P when the widths differ
        if self.kind == "bahdanau":
            self.query = nn.Linear(H, A, bias=False)  # W_a
            self.key = nn.Linear(M, A)  # U_a
            self.score = nn.Linear(A, 1, bias=False)  # v
            readout = H + M + E
        elif self.kind == "luong":
            if config.luong_score == "dot" and M != H:
                self.key = nn.Linear(M, H, bias=False)  # P: the keys at the decoder's width (the values stay h_j)
            elif config.luong_score == "general":
                self.general = nn.Linear(H, M, bias=False)  # W_a
            elif config.luong_score == "concat":
                self.concat = nn.Linear(H + M, A)  # W_a
                self.score = nn.Linear(A, 1, bias=False)  # v
            self.combine = nn.Linear(M + H, H, bias=False)  # W_c
            readout = H + (E if config.deep_output else 0)
        else:
            readout = H
        self.readout_size = readout

    def initial_state(self, summary: torch.Tensor) -> Seq2SeqRNNState:
        s0 = torch.tanh(self.bridge(summary))  # (B, H)
        hidden = s0.unsqueeze(0).repeat(self.config.decoder_layers, 1, 1).contiguous()  # (layers, B, H)
        cell = torch.zeros_like(hidden) if self.config.cell == "lstm" else None
        feed = (torch.zeros_like(s0) if self.kind == "luong" and self.config.input_feeding else None)
        return Seq2SeqRNNState(hidden, cell, feed)

    def _attend(self, scores: torch.Tensor, values: torch.Tensor, mask):
        """``scores`` ``(B, S)`` → weights over real positions and the context ``(B, values width)``."""
        if mask is not None:
            scores = scores.masked_fill(~mask, float("-inf"))
        weights = torch.softmax(scores.float(), dim=-1).to(values.dtype)  # (B, S)
        return torch.bmm(weights.unsqueeze(1), values).squeeze(1), weights

    def forward(self, embeddings: nn.Embedding, decoder_input_ids, memory, memory_mask, state: Seq2SeqRNNState,
                predict=None, sampling_probability: float = 0.0, sample: bool = False) -> DecoderOutput:
        """``embeddings``: the encoder's (one vocabulary); ``decoder_input_ids`` ``(B, T)``, ``memory`` ``(B, S, M)``,
        ``memory_mask`` ``(B, S)`` bool or None. Returns a :class:`DecoderOutput`.

        Scheduled sampling (Bengio et al. 2015): with ``sampling_probability`` p > 0 and ``predict`` (readout →
        logits), each row's input at step t > 0 is, with probability p, the model's own token of step t − 1 instead
        of the gold one (no gradient through that choice): its most likely token, or with ``sample`` one drawn from
        its distribution. p = 1 with ``sample`` is the free-running pass of professor forcing."""
        embedded = self.dropout(embeddings(decoder_input_ids))  # (B, T, E)
        sampling = sampling_probability > 0 and predict is not None
        # once per call: Bahdanau's U_a h_j (B, S, A); Luong's dot-score keys P h_j (B, S, H) when widths differ;
        # Luong's dot / general keys carry the 1 / √d of scale_scores (s_t · k_j / √d = s_t · (k_j / √d)); concat's
        # W_a [s_t; h_j] + b = W_s s_t + (W_h h_j + b), whose h_j half (B, S, A) does not change from step to step
        keys = self.key(memory) if self.key is not None else memory
        H = self.config.hidden_size
        if self.kind == "luong" and self.config.luong_score == "concat":
            keys = F.linear(memory, self.concat.weight[:, H:], self.concat.bias)
        elif self.kind == "luong" and self.config.scale_scores:
            keys = keys / keys.shape[-1] ** 0.5
        rnn_state, feed = state.rnn_state(), state.feed
        outputs, alignments, hiddens = [], [], []
        for t in range(embedded.shape[1]):
            e = embedded[:, t]  # (B, E)
            if sampling and t > 0:
                with torch.no_grad():
                    logits = predict(outputs[-1]).float()  # (B, V): the model's distribution for step t − 1
                    own = (torch.multinomial(torch.softmax(logits, -1), 1).squeeze(-1) if sample
                           else logits.argmax(-1))  # (B,)
                    use_own = torch.rand(own.shape, device=own.device) < sampling_probability
                chosen = torch.where(use_own, own, decoder_input_ids[:, t])
                e = self.dropout(embeddings(chosen))
            if self.kind == "bahdanau":
                previous = (rnn_state[0] if isinstance(rnn_state, tuple) else rnn_state)[-1]  # (B, H): s_{t-1}
                scores = self.score(torch.tanh(self.query(previous).unsqueeze(1) + keys)).squeeze(-1)  # (B, S)
                context, weights = self._attend(scores, memory, memory_mask)  # (B, M)
                out, rnn_state = self.rnn(torch.cat([e, context], -1).unsqueeze(1), rnn_state)  # s_t: (B, 1, H)
                s = out.squeeze(1)  # (B, H): s_t
                readout = torch.cat([s, context, e], -1)  # [s_t; c_t; e_t]
            elif self.kind == "luong":
                step_in = torch.cat([e, feed], -1) if feed is not None else e
                out, rnn_state = self.rnn(step_in.unsqueeze(1), rnn_state)
                s = out.squeeze(1)  # (B, H): s_t
                if self.config.luong_score == "concat":  # v_a · tanh(W_s s_t + keys_j)
                    query = F.linear(s, self.concat.weight[:, :H])  # (B, A)
                    scores = self.score(torch.tanh(query.unsqueeze(1) + keys)).squeeze(-1)  # (B, S)
                else:  # dot: s_t · h_j (s_t · P h_j when the widths differ); general: s_t W_a h_j (keys = h_j)
                    query = s if self.config.luong_score == "dot" else self.general(s)
                    scores = torch.bmm(keys, query.unsqueeze(-1)).squeeze(-1)  # (B, S)
                context, weights = self._attend(scores, memory, memory_mask)  # (B, M)
                attentional = torch.tanh(self.combine(torch.cat([context, s], -1)))  # h̃_t
                feed = attentional if feed is not None else None
                readout = torch.cat([attentional, e], -1) if self.config.deep_output else attentional  # [h̃_t; e_t]
            else:
                out, rnn_state = self.rnn(e.unsqueeze(1), rnn_state)
                s = out.squeeze(1)
                readout, weights = s, None
            outputs.append(readout)
            hiddens.append(s)
            if weights is not None:
                alignments.append(weights)
        hidden, cell = rnn_state if isinstance(rnn_state, tuple) else (rnn_state, None)
        new_state = Seq2SeqRNNState(hidden, cell, feed, state.seen_tokens + embedded.shape[1])
        aligned = torch.stack(alignments, 1) if alignments else None
        return DecoderOutput(torch.stack(outputs, 1), aligned, new_state, torch.stack(hiddens, 1))


@dataclass
class Seq2SeqLMOutputWithAuxiliaryLoss(Seq2SeqLMOutput):
    """``Seq2SeqLMOutput`` and ``auxiliary_loss``: a training term beside the token cross-entropy (professor
    forcing's adversarial losses), already weighted. It is part of ``loss`` when ``labels`` are given; a loss that
    scores the logits itself (``loss: cross_entropy``) adds it."""

    auxiliary_loss: torch.FloatTensor | None = None


class ProfessorForcingDiscriminator(nn.Module):
    r"""Professor forcing's discriminator (Lamb et al. 2016, §3): a bidirectional GRU over a sequence of decoder
    hidden states (``lengths`` real steps per row), its two final states concatenated, an MLP to one logit:
    :math:`D(b) = P(\text{the behaviour } b \text{ came from a teacher-forced pass})`."""

    def __init__(self, input_size: int, hidden_size: int):
        super().__init__()
        self.rnn = nn.GRU(input_size, hidden_size, batch_first=True, bidirectional=True)
        self.classify = nn.Sequential(nn.Linear(2 * hidden_size, hidden_size), nn.ReLU(), nn.Linear(hidden_size, 1))

    def forward(self, behaviour: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """``behaviour`` ``(B, T, H)``, ``lengths`` ``(B,)`` → logits ``(B,)``."""
        packed = pack_padded_sequence(behaviour, lengths.clamp(min=1).cpu(), batch_first=True, enforce_sorted=False)
        _, h = self.rnn(packed)  # (2, B, D): forward's last step, backward's first
        return self.classify(torch.cat([h[0], h[1]], -1)).squeeze(-1)


class RNNSeq2SeqForConditionalGeneration(RNNSeq2SeqPreTrainedModel, GenerationMixin):
    """Encoder, decoder (``config.attention``) and output layer; ``generate`` encodes once and decodes with the
    recurrent state as its cache (greedy, sampling, beam search)."""

    _tied_weights_keys = {"output.weight": "encoder.embeddings.weight"}

    def __init__(self, config: RNNSeq2SeqConfig):
        if config.decoder_start_token_id is None:
            raise ValueError("RNNSeq2SeqForConditionalGeneration needs config.decoder_start_token_id")
        super().__init__(config)
        self.encoder = RNNEncoder(config)
        self.decoder = RNNDecoder(config)
        #: scheduled sampling's probability of feeding the model's own previous token in training (0: teacher
        #: forcing); the ``scheduled_sampling`` callback sets it every optimizer step
        self.sampling_probability = 0.0
        tie = config.tie_word_embeddings
        self.project = nn.Linear(self.decoder.readout_size, config.embedding_size, bias=False) if tie else None
        self.output = nn.Linear(config.embedding_size if tie else self.decoder.readout_size, config.vocab_size)
        if config.professor_forcing:
            self.discriminator = ProfessorForcingDiscriminator(config.hidden_size, config.discriminator_hidden_size)
        #: a multiplier on professor forcing's generator term in training (0: no free-running pass, no discriminator
        #: step — teacher forcing); the ``professor_forcing_schedule`` callback sets it every optimizer step
        self.professor_forcing_scale = 1.0
        #: the last training forward's professor-forcing figures (detached scalars): the discriminator's accuracy and
        #: loss, the generator's loss and whether its term counted (Lamb et al.'s gate). The training loop averages
        #: them over each log window into the history (and empties the dict as it reads it)
        self.training_stats: dict[str, torch.Tensor] = {}
        self.post_init()

    def separately_clipped_parameters(self) -> list[list[nn.Parameter]]:
        """For the training loop: the discriminator's gradients are clipped apart from the generator's, as two
        optimizers would (its gradient would otherwise take the generator's share of ``max_grad_norm``)."""
        return [list(self.discriminator.parameters())] if self.config.professor_forcing else []

    def get_input_embeddings(self):
        return self.encoder.embeddings

    def set_input_embeddings(self, value):
        self.encoder.embeddings = value

    def get_output_embeddings(self):
        return self.output

    def set_output_embeddings(self, value):
        self.output = value

    def get_encoder(self, modality=None):
        return self.encoder

    def _logits(self, readout: torch.Tensor) -> torch.Tensor:
        return self.output(self.project(readout) if self.project is not None else readout)

    def prepare_decoder_input_ids_from_labels(self, labels: torch.Tensor) -> torch.Tensor:
        from harness.models.transformer.modeling_transformer import shift_right

        return shift_right(labels, self.config.decoder_start_token_id, self.config.pad_token_id or 0)

    def forward(self, input_ids=None, attention_mask=None, decoder_input_ids=None, encoder_outputs=None,
                past_key_values=None, labels=None, use_cache=None, output_attentions=None, output_hidden_states=None,
                return_dict=None, decoder_attention_mask=None, inputs_embeds=None, logits_to_keep: int = 0,
                cache_position=None, token_type_ids=None):
        """``labels`` ``(B, T)`` (−100: padding) are shifted right into ``decoder_input_ids`` when those are not given
        (teacher forcing). With ``past_key_values`` (a :class:`Seq2SeqRNNState`) only the new target positions run."""
        if encoder_outputs is None:
            encoder_outputs = self.encoder(input_ids, attention_mask, inputs_embeds)
        memory = encoder_outputs.last_hidden_state  # (B, S, M)
        if decoder_input_ids is None:
            if labels is None:
                raise ValueError("give decoder_input_ids (or labels, which are shifted right into them)")
            decoder_input_ids = self.prepare_decoder_input_ids_from_labels(labels)
        state = past_key_values if past_key_values is not None else self.decoder.initial_state(
            encoder_outputs.pooler_output)
        if past_key_values is not None and decoder_input_ids.shape[1] > 1 and state.seen_tokens:
            decoder_input_ids = decoder_input_ids[:, state.seen_tokens:]  # only what the state has not read
        mask = attention_mask.bool() if attention_mask is not None else None
        sampling = self.sampling_probability if self.training else 0.0
        start = state
        readout, alignments, state, hidden = self.decoder(self.encoder.embeddings, decoder_input_ids, memory, mask,
                                                          state, predict=self._logits, sampling_probability=sampling)
        auxiliary = None
        if self.training and self.config.professor_forcing and self.professor_forcing_scale > 0 \
                and past_key_values is None:
            lengths = ((labels != -100).sum(-1) if labels is not None
                       else (decoder_input_ids[:, 1:] != self.config.pad_token_id).sum(-1) + 1)
            free = self.decoder(self.encoder.embeddings, decoder_input_ids, memory, mask, start, predict=self._logits,
                                sampling_probability=1.0, sample=True).hidden
            auxiliary = self._professor_forcing(hidden, free, lengths)
        if logits_to_keep:
            readout = readout[:, -logits_to_keep:]
        logits = self._logits(self.decoder.dropout(readout))  # (B, T, V)
        loss = None
        if labels is not None:
            loss = F.cross_entropy(logits.float().reshape(-1, logits.shape[-1]), labels.reshape(-1).to(logits.device),
                                   ignore_index=-100)
            if auxiliary is not None:
                loss = loss + auxiliary
        use_cache = self.config.use_cache if use_cache is None else use_cache
        cross = (alignments.unsqueeze(1),) if output_attentions and alignments is not None else None
        return Seq2SeqLMOutputWithAuxiliaryLoss(loss=loss, logits=logits, past_key_values=state if use_cache else None,
                                                cross_attentions=cross, encoder_last_hidden_state=memory,
                                                auxiliary_loss=auxiliary)

    def _professor_forcing(self, forced: torch.Tensor, free: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        r"""Professor forcing's two adversarial terms, one scalar for one backward pass and one optimizer.

        ``forced`` / ``free``: the decoder's hidden states ``(B, T, H)`` of the teacher-forced pass and of the
        free-running pass (its own sampled tokens fed back, from the same start), ``lengths`` the real target steps.

        * discriminator :math:`D` (its parameters only): :math:`-\log D(b_{tf}) - \log(1 - D(b_{fr}))` on detached
          behaviour, so no gradient reaches the generator;
        * generator (every other parameter): the non-saturating :math:`-\log D(b_{fr})` — make free-running behave
          like teacher-forced — through a copy of :math:`D` with detached parameters (``torch.func.functional_call``),
          so no gradient reaches :math:`D`; weighted by ``professor_forcing_weight`` times
          ``professor_forcing_scale`` (the ``professor_forcing_schedule`` callback's warm start and ramp).

        Lamb et al.'s gates: the generator term only counts while the discriminator's accuracy on the batch is at
        least 75 % (before that its judgement is noise), the discriminator's only while it is at most 99 %. The
        discriminator's term is added as :math:`L_D - \mathrm{sg}(L_D)`: its gradient is kept and its value (0) does
        not inflate the logged training loss, which stays the generator's objective."""
        D = self.discriminator
        ones, zeros = torch.ones_like(lengths, dtype=torch.float32), torch.zeros_like(lengths, dtype=torch.float32)
        judged_forced, judged_free = D(forced.detach(), lengths), D(free.detach(), lengths)  # (B,) logits
        d_loss = (F.binary_cross_entropy_with_logits(judged_forced.float(), ones)
                  + F.binary_cross_entropy_with_logits(judged_free.float(), zeros))
        accuracy = ((judged_forced > 0).float().mean() + (judged_free <= 0).float().mean()) / 2
        frozen = {name: p.detach() for name, p in D.named_parameters()}
        fooled = torch.func.functional_call(D, frozen, (free, lengths))
        g_loss = F.binary_cross_entropy_with_logits(fooled.float(), ones)
        train_g, train_d = (accuracy >= 0.75).float(), (accuracy <= 0.99).float()
        self.training_stats = {"discriminator_accuracy": accuracy.detach(), "discriminator_loss": d_loss.detach(),
                               "generator_loss": g_loss.detach(), "generator_term_on": train_g}
        weight = self.config.professor_forcing_weight * self.professor_forcing_scale
        return weight * train_g * g_loss + train_d * (d_loss - d_loss.detach())


register_auto(RNNSeq2SeqConfig, AutoModelForSeq2SeqLM=RNNSeq2SeqForConditionalGeneration)

__all__ = ["Seq2SeqRNNState", "RNNSeq2SeqPreTrainedModel", "RNNSeq2SeqForConditionalGeneration", "RNNEncoder",
           "RNNDecoder", "DecoderOutput", "ProfessorForcingDiscriminator", "Seq2SeqLMOutputWithAuxiliaryLoss"]
