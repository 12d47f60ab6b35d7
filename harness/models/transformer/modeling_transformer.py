r"""Transformers written from scratch as ``transformers`` models: encoder (BERT-like), decoder (GPT-like) and
encoder-decoder (Vaswani et al. 2017).

One block, three arrangements. A block is a residual stack of sub-layers — self-attention, cross-attention
(decoder of an encoder-decoder only), a position-wise feed-forward network
:math:`\mathrm{FFN}(x) = W_2\,\phi(W_1 x + b_1) + b_2` — each wrapped as

* pre-LN (``norm_position: pre``, GPT-2): :math:`x \leftarrow x + \mathrm{Dropout}(f(\mathrm{LN}(x)))`, and one
  final LayerNorm after the stack;
* post-LN (``post``, Vaswani et al., BERT): :math:`x \leftarrow \mathrm{LN}(x + \mathrm{Dropout}(f(x)))`, and a
  LayerNorm on the embeddings.

::

    ids ─ tokens (×√D) + positions (+ segments) ─ Dropout ─┬─ block 1 ─ … ─ block N ─ (LN) ─ head
                                                            │
    block:  x ─┬─ [LN] ─ self-attention (causal?) ─ Dropout ─(+)─ [LN] ─ cross-attention ─ … ─(+)─ [LN] ─ FFN ─ … ─(+)─
               └──────────────── residual ─────────────────┘

The attention layers and position encodings are :mod:`harness.modules.attention` and
:mod:`harness.modules.positions` (each equation written out there). Models and heads:

=============================================  ===================================================
``TransformerModel``                           the bare stack (bidirectional; causal if ``config.is_decoder``)
``TransformerForMaskedLM``                     MLM head (dense, activation, LN, tied output layer)
``TransformerForSequenceClassification``       pooled first token (last real token for a decoder)
``TransformerForTokenClassification``          a label per position
``TransformerForCausalLM``                     GPT-like LM with a ``DynamicCache``; ``generate`` works
``TransformerForConditionalGeneration``        encoder-decoder with an ``EncoderDecoderCache``; ``generate``
=============================================  ===================================================

``output_attentions=True`` returns every layer's attention weights ``(batch, heads, queries, keys)`` (the
written-out attention path computes them; otherwise the fused kernels run).

The encoder heads keep the stack under the same name (``transformer``), so an MLM-pretrained encoder loads
into the classification heads (``AutoModelForSequenceClassification.from_pretrained(mlm_folder)``) with only
the new head initialised.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn
from transformers import DynamicCache, EncoderDecoderCache, GenerationMixin, PreTrainedModel
from transformers import initialization as init
from transformers.activations import ACT2FN
from transformers.loss.loss_utils import ForCausalLMLoss, ForSequenceClassificationLoss, ForTokenClassification
from transformers.modeling_outputs import (
    BaseModelOutputWithPastAndCrossAttentions,
    CausalLMOutputWithPast,
    MaskedLMOutput,
    Seq2SeqLMOutput,
    SequenceClassifierOutput,
    TokenClassifierOutput,
)

from harness.models.transformer.configuration_transformer import TransformerConfig
from harness.modules.attention import CrossAttention, SelfAttention, attention_mask as build_attention_mask
from harness.modules.positions import LearnedPositions, RotaryEmbedding, SinusoidalPositions, sinusoidal_table
from harness.registry import register_auto


# --------------------------------------------------------------------------------------------------
# Building blocks
# --------------------------------------------------------------------------------------------------
class Embeddings(nn.Module):
    """Token embedding (×√D when ``scale_embeddings``) + absolute positions (learned or sinusoidal; none for
    rotary, which acts inside attention) + segment embedding (``type_vocab_size > 0``), LayerNorm for post-LN,
    dropout."""

    def __init__(self, config: TransformerConfig):
        super().__init__()
        D = config.hidden_size
        self.tokens = nn.Embedding(config.vocab_size, D)
        kind = config.position_embedding_type
        self.positions = (LearnedPositions(config.max_position_embeddings, D) if kind == "learned"
                          else SinusoidalPositions(config.max_position_embeddings, D) if kind == "sinusoidal" else None)
        self.token_types = nn.Embedding(config.type_vocab_size, D) if config.type_vocab_size else None
        self.norm = nn.LayerNorm(D, eps=config.layer_norm_eps) if config.norm_position == "post" else None
        self.dropout = nn.Dropout(config.hidden_dropout_prob)
        self.scale = math.sqrt(D) if config.scale_embeddings else 1.0

    def forward(self, input_ids=None, position_ids=None, token_type_ids=None, inputs_embeds=None):
        x = self.tokens(input_ids) if inputs_embeds is None else inputs_embeds  # (B, L, D)
        if self.scale != 1.0:
            x = x * self.scale
        if self.positions is not None:
            x = x + self.positions(position_ids).to(x.dtype)  # (B, L, D)
        if self.token_types is not None:
            if token_type_ids is None:
                token_type_ids = torch.zeros(x.shape[:2], dtype=torch.long, device=x.device)
            x = x + self.token_types(token_type_ids)
        if self.norm is not None:
            x = self.norm(x)
        return self.dropout(x)


class FeedForward(nn.Module):
    """:math:`W_2\\,\\phi(W_1 x + b_1) + b_2`, applied at every position alone."""

    def __init__(self, config: TransformerConfig):
        super().__init__()
        self.up = nn.Linear(config.hidden_size, config.intermediate_size, bias=config.bias)
        self.act = ACT2FN[config.hidden_act]
        self.down = nn.Linear(config.intermediate_size, config.hidden_size, bias=config.bias)

    def forward(self, x):
        return self.down(self.act(self.up(x)))  # (B, L, D) → (B, L, D_ff) → (B, L, D)


class TransformerBlock(nn.Module):
    """Self-attention (causal in a decoder), cross-attention (``cross``) and the feed-forward network, each a
    residual sub-layer with pre- or post-LayerNorm."""

    def __init__(self, config: TransformerConfig, layer_idx: int, cross: bool = False):
        super().__init__()
        D, H, eps = config.hidden_size, config.num_attention_heads, config.layer_norm_eps
        self.pre_norm = config.norm_position == "pre"
        self.self_attn = SelfAttention(D, H, config.attention_probs_dropout_prob, config.bias, layer_idx)
        self.self_attn_norm = nn.LayerNorm(D, eps=eps)
        self.cross_attn = CrossAttention(D, H, config.attention_probs_dropout_prob, config.bias, layer_idx) if cross else None
        self.cross_attn_norm = nn.LayerNorm(D, eps=eps) if cross else None
        self.ffn = FeedForward(config)
        self.ffn_norm = nn.LayerNorm(D, eps=eps)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)

    def _residual(self, x, norm, sublayer):
        if self.pre_norm:
            out, weights = sublayer(norm(x))
            return x + self.dropout(out), weights
        out, weights = sublayer(x)
        return norm(x + self.dropout(out)), weights

    def forward(self, x, mask=None, is_causal=False, rotary=None, cache=None, memory=None, memory_mask=None,
                need_weights=False):
        self_cache = cache.self_attention_cache if isinstance(cache, EncoderDecoderCache) else cache
        x, self_weights = self._residual(
            x, self.self_attn_norm, lambda h: self.self_attn(h, mask, is_causal, rotary, self_cache, need_weights))
        cross_weights = None
        if self.cross_attn is not None:
            x, cross_weights = self._residual(
                x, self.cross_attn_norm, lambda h: self.cross_attn(h, memory, memory_mask, cache, need_weights))
        x, _ = self._residual(x, self.ffn_norm, lambda h: (self.ffn(h), None))
        return x, self_weights, cross_weights


def position_ids_for(attention_mask, batch: int, length: int, past: int, device) -> torch.Tensor:
    """Positions of the current input ``(B, L)``: counted over each row's real tokens when there is a mask (a
    left-padded row starts at 0 on its first real token), else ``past, past + 1, …``."""
    if attention_mask is not None:
        positions = (attention_mask.long().cumsum(-1) - 1).clamp(min=0)  # (B, past + L)
        return positions[:, -length:]
    return torch.arange(past, past + length, device=device).expand(batch, length)


class TransformerStack(nn.Module):
    """Embeddings, ``N`` blocks and (pre-LN) a final LayerNorm: an encoder (``causal=False``), a decoder-only
    stack (``causal=True``), or the decoder of an encoder-decoder (``causal=True, cross=True``)."""

    def __init__(self, config: TransformerConfig, num_layers: int, causal: bool, cross: bool = False):
        super().__init__()
        self.config, self.causal, self.cross = config, causal, cross
        self.embeddings = Embeddings(config)
        self.layers = nn.ModuleList(TransformerBlock(config, i, cross) for i in range(num_layers))
        self.norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps) if config.norm_position == "pre" else None
        self.rotary = (RotaryEmbedding(config.head_dim, config.rope_theta)
                       if config.position_embedding_type == "rotary" else None)

    def forward(self, input_ids=None, attention_mask=None, position_ids=None, token_type_ids=None, inputs_embeds=None,
                encoder_hidden_states=None, encoder_attention_mask=None, past_key_values=None, use_cache=None,
                output_attentions=False, output_hidden_states=False, return_dict=True):
        # return_dict: accepted (generate passes it to the encoder); the output is always a ModelOutput
        if (input_ids is None) == (inputs_embeds is None):
            raise ValueError("give exactly one of input_ids and inputs_embeds")
        B, L = (input_ids if input_ids is not None else inputs_embeds).shape[:2]
        device = (input_ids if input_ids is not None else inputs_embeds).device
        cache = past_key_values
        if use_cache and cache is None:
            if not self.causal:
                raise ValueError("use_cache is for a decoder: an encoder has no cache")
            cache = EncoderDecoderCache(DynamicCache(), DynamicCache()) if self.cross else DynamicCache()
        self_cache = cache.self_attention_cache if isinstance(cache, EncoderDecoderCache) else cache
        past = self_cache.get_seq_length() if self_cache is not None else 0
        if attention_mask is not None and attention_mask.shape != (B, past + L):
            raise ValueError(f"attention_mask must be (batch, past + length) = ({B}, {past + L}), "
                             f"got {tuple(attention_mask.shape)}")
        if position_ids is None:
            position_ids = position_ids_for(attention_mask, B, L, past, device)
        positions = self.embeddings.positions
        if positions is not None:
            positions.reserve(past + L)  # a learned table refuses a longer input; a sinusoidal one grows
        x = self.embeddings(input_ids, position_ids, token_type_ids, inputs_embeds)  # (B, L, D)

        padding = attention_mask
        if padding is not None and not self.training and not torch.compiler.is_compiling() and bool(padding.all()):
            padding = None  # nothing padded: the fused kernels' causal path
        mask, is_causal = build_attention_mask(padding, L, self.causal)
        if self.causal and L == 1 and mask is None:
            is_causal = False  # one new query sees every cached key
        memory_mask = None
        if self.cross and encoder_attention_mask is not None:
            memory_mask = encoder_attention_mask.bool()[:, None, None, :]  # (B, 1, 1, S)
        rotary = self.rotary(position_ids, x.dtype) if self.rotary is not None else None

        hidden_states = (x,) if output_hidden_states else None
        self_attentions = () if output_attentions else None
        cross_attentions = () if output_attentions and self.cross else None
        for layer in self.layers:
            x, self_w, cross_w = layer(x, mask, is_causal, rotary, cache, encoder_hidden_states, memory_mask,
                                       output_attentions)
            if output_hidden_states:
                hidden_states += (x,)
            if output_attentions:
                self_attentions += (self_w,)
                if self.cross:
                    cross_attentions += (cross_w,)
        if self.norm is not None:
            x = self.norm(x)
            if output_hidden_states:
                hidden_states = hidden_states[:-1] + (x,)
        return BaseModelOutputWithPastAndCrossAttentions(
            last_hidden_state=x, past_key_values=cache if use_cache else None, hidden_states=hidden_states,
            attentions=self_attentions, cross_attentions=cross_attentions)


# --------------------------------------------------------------------------------------------------
# The models
# --------------------------------------------------------------------------------------------------
class TransformerPreTrainedModel(PreTrainedModel):
    """Initialisation and the class attributes ``transformers`` reads.

    Weights are drawn from :math:`\\mathcal N(0, \\sigma^2)`, :math:`\\sigma` = ``initializer_range``; biases zero;
    LayerNorm weight 1, bias 0; each block's two output projections (attention ``out``, feed-forward ``down``)
    :math:`\\sigma / \\sqrt{2N}` (GPT-2: the residual stream sums :math:`2N` of them). Position tables that are
    not parameters (sinusoidal, RoPE's frequencies) are recomputed.
    """

    config_class = TransformerConfig
    base_model_prefix = "transformer"
    main_input_name = "input_ids"
    _no_split_modules = ["TransformerBlock"]
    supports_gradient_checkpointing = False

    @classmethod
    def _supports_default_dynamic_cache(cls) -> bool:
        # the model makes its own cache in forward (a DynamicCache, or an EncoderDecoderCache whose decoder may
        # have another depth than the encoder), and generate carries it along under past_key_values
        return False

    @torch.no_grad()
    def _init_weights(self, module: nn.Module) -> None:
        std = self.config.initializer_range
        layers = self.config.num_hidden_layers + (self.config.num_decoder_layers if self.config.is_encoder_decoder else 0)
        if isinstance(module, nn.Linear):
            residual = getattr(module, "_residual_projection", False)
            init.normal_(module.weight, mean=0.0, std=std / math.sqrt(2 * layers) if residual else std)
            if module.bias is not None:
                init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            init.normal_(module.weight, mean=0.0, std=std)
        elif isinstance(module, nn.LayerNorm):
            init.ones_(module.weight)
            init.zeros_(module.bias)
        elif isinstance(module, SinusoidalPositions):
            init.copy_(module.table, sinusoidal_table(module.table.shape[0], module.dim, module.base))
        elif isinstance(module, RotaryEmbedding):
            head_dim = module.inv_freq.shape[0] * 2
            base = self.config.rope_theta
            init.copy_(module.inv_freq, 1.0 / (base ** (torch.arange(0, head_dim, 2, dtype=torch.float32) / head_dim)))

    def _mark_residual_projections(self) -> None:
        for module in self.modules():
            if isinstance(module, (SelfAttention, CrossAttention)):
                module.out._residual_projection = True
            elif isinstance(module, FeedForward):
                module.down._residual_projection = True

    def post_init(self):
        self._mark_residual_projections()  # before the weights are initialised
        super().post_init()


class TransformerModel(TransformerPreTrainedModel):
    """The bare stack: bidirectional (an encoder), or causal when ``config.is_decoder``. Returns
    ``BaseModelOutputWithPastAndCrossAttentions``."""

    def __init__(self, config: TransformerConfig):
        if config.is_encoder_decoder:
            raise ValueError("TransformerModel is one stack; an encoder-decoder config goes to "
                             "TransformerForConditionalGeneration (AutoModelForSeq2SeqLM)")
        super().__init__(config)
        self.stack = TransformerStack(config, config.num_hidden_layers, causal=config.is_decoder)
        self.post_init()

    def get_input_embeddings(self):
        return self.stack.embeddings.tokens

    def set_input_embeddings(self, value):
        self.stack.embeddings.tokens = value

    def forward(self, input_ids=None, attention_mask=None, token_type_ids=None, position_ids=None, inputs_embeds=None,
                past_key_values=None, use_cache=None, output_attentions=None, output_hidden_states=None,
                return_dict=None, cache_position=None):
        if use_cache is None:
            use_cache = self.config.use_cache and self.config.is_decoder and not self.training
        out = self.stack(input_ids, attention_mask, position_ids, token_type_ids, inputs_embeds,
                         past_key_values=past_key_values, use_cache=use_cache and self.config.is_decoder,
                         output_attentions=bool(output_attentions), output_hidden_states=bool(output_hidden_states))
        return out if return_dict is not False else out.to_tuple()


class _HeadModel(TransformerPreTrainedModel):
    """A head over ``self.transformer`` (a :class:`TransformerModel`)."""

    def _build_stack(self, config: TransformerConfig, causal: bool | None = None) -> None:
        if config.is_encoder_decoder:
            raise ValueError(f"{type(self).__name__} needs a single stack; got is_encoder_decoder=True")
        if causal is not None and config.is_decoder != causal:
            raise ValueError(f"{type(self).__name__} needs config.is_decoder={causal}, got {config.is_decoder}")
        self.transformer = TransformerModel(config)

    def _build_classifier(self, config: TransformerConfig) -> None:
        dropout = config.classifier_dropout if config.classifier_dropout is not None else config.hidden_dropout_prob
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(config.hidden_size, config.num_labels)

    def get_input_embeddings(self):
        return self.transformer.get_input_embeddings()

    def set_input_embeddings(self, value):
        self.transformer.set_input_embeddings(value)

    def _encode(self, input_ids, attention_mask, token_type_ids, position_ids, inputs_embeds, output_attentions,
                output_hidden_states, past_key_values=None, use_cache=False):
        return self.transformer.stack(input_ids, attention_mask, position_ids, token_type_ids, inputs_embeds,
                                      past_key_values=past_key_values, use_cache=use_cache,
                                      output_attentions=bool(output_attentions),
                                      output_hidden_states=bool(output_hidden_states))


class MaskedLMHead(nn.Module):
    """BERT's prediction head: dense → activation → LayerNorm → the (tied) output layer with its own bias."""

    def __init__(self, config: TransformerConfig):
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.hidden_size)
        self.act = ACT2FN[config.hidden_act]
        self.norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.decoder = nn.Linear(config.hidden_size, config.vocab_size)

    def forward(self, x):
        return self.decoder(self.norm(self.act(self.dense(x))))  # (B, L, D) → (B, L, V)


class TransformerForMaskedLM(_HeadModel):
    """Masked language model: predict the original token at every position whose label is not -100 (the
    collator masks them: :mod:`harness.data.masking`)."""

    _tied_weights_keys = {"lm_head.decoder.weight": "transformer.stack.embeddings.tokens.weight"}

    def __init__(self, config: TransformerConfig):
        super().__init__(config)
        self._build_stack(config, causal=False)
        self.lm_head = MaskedLMHead(config)
        self.post_init()

    def get_output_embeddings(self):
        return self.lm_head.decoder

    def set_output_embeddings(self, value):
        self.lm_head.decoder = value

    def forward(self, input_ids=None, attention_mask=None, token_type_ids=None, position_ids=None, inputs_embeds=None,
                labels=None, output_attentions=None, output_hidden_states=None, return_dict=None):
        out = self._encode(input_ids, attention_mask, token_type_ids, position_ids, inputs_embeds, output_attentions,
                           output_hidden_states)
        logits = self.lm_head(out.last_hidden_state)  # (B, L, V)
        loss = None
        if labels is not None:  # (B*L, V) against (B*L,), -100 = not masked
            loss = F.cross_entropy(logits.float().view(-1, logits.shape[-1]), labels.view(-1).to(logits.device),
                                   ignore_index=-100)
        result = MaskedLMOutput(loss=loss, logits=logits, hidden_states=out.hidden_states, attentions=out.attentions)
        return result if return_dict is not False else result.to_tuple()


class TransformerForSequenceClassification(_HeadModel):
    """One label (or score) per sequence: BERT's pooler (dense + tanh) over the first token ([CLS]); for a
    decoder (``is_decoder``), over the last real token — the only one that has seen the whole sequence."""

    def __init__(self, config: TransformerConfig):
        super().__init__(config)
        self._build_stack(config)
        self.pooler = nn.Linear(config.hidden_size, config.hidden_size)
        self._build_classifier(config)
        self.post_init()

    def forward(self, input_ids=None, attention_mask=None, token_type_ids=None, position_ids=None, inputs_embeds=None,
                labels=None, output_attentions=None, output_hidden_states=None, return_dict=None):
        out = self._encode(input_ids, attention_mask, token_type_ids, position_ids, inputs_embeds, output_attentions,
                           output_hidden_states)
        h = out.last_hidden_state  # (B, L, D)
        if self.config.is_decoder:
            if attention_mask is None:
                last = torch.full((h.shape[0],), h.shape[1] - 1, device=h.device)
            else:  # the last real position of each row (left or right padding)
                positions = torch.arange(h.shape[1], device=h.device).expand(h.shape[0], -1)
                last = torch.where(attention_mask.bool(), positions, -1).max(-1).values
            pooled = h[torch.arange(h.shape[0], device=h.device), last]  # (B, D)
        else:
            pooled = h[:, 0]  # (B, D)
        logits = self.classifier(self.dropout(torch.tanh(self.pooler(pooled))))  # (B, num_labels)
        loss = None
        if labels is not None:
            loss = ForSequenceClassificationLoss(labels.to(logits.device), logits, self.config)
        result = SequenceClassifierOutput(loss=loss, logits=logits, hidden_states=out.hidden_states,
                                          attentions=out.attentions)
        return result if return_dict is not False else result.to_tuple()


class TransformerForTokenClassification(_HeadModel):
    """A label per position (a tagger): dropout and a linear layer over every hidden state."""

    def __init__(self, config: TransformerConfig):
        super().__init__(config)
        self._build_stack(config)
        self._build_classifier(config)
        self.post_init()

    def forward(self, input_ids=None, attention_mask=None, token_type_ids=None, position_ids=None, inputs_embeds=None,
                labels=None, output_attentions=None, output_hidden_states=None, return_dict=None):
        out = self._encode(input_ids, attention_mask, token_type_ids, position_ids, inputs_embeds, output_attentions,
                           output_hidden_states)
        logits = self.classifier(self.dropout(out.last_hidden_state))  # (B, L, num_labels)
        loss = None
        if labels is not None:
            loss = ForTokenClassification(logits, labels.to(logits.device), self.config)
        result = TokenClassifierOutput(loss=loss, logits=logits, hidden_states=out.hidden_states,
                                       attentions=out.attentions)
        return result if return_dict is not False else result.to_tuple()


def _lm_loss(logits, labels, shift_labels, vocab_size, num_items_in_batch):
    """Mean next-token cross-entropy: ``labels`` are shifted inside (position t scored on t+1), ``shift_labels``
    are already aligned (a streamed LM's batches)."""
    if labels is not None and shift_labels is not None:
        raise ValueError("pass labels (shifted inside) or shift_labels (already aligned), not both")
    if labels is None and shift_labels is None:
        return None
    return ForCausalLMLoss(logits, labels, vocab_size, num_items_in_batch=num_items_in_batch,
                           shift_labels=shift_labels)


class TransformerForCausalLM(_HeadModel, GenerationMixin):
    r"""A GPT-like language model: :math:`p(w_{t+1} \mid w_{\le t}) = \mathrm{softmax}(h_t E^\top)` with the
    output layer tied to the token embedding. ``past_key_values`` is a ``DynamicCache``: each layer's keys and
    values of the positions seen so far, so ``generate`` feeds one new token per step; a cached forward equals
    the uncached one."""

    _tied_weights_keys = {"lm_head.weight": "transformer.stack.embeddings.tokens.weight"}

    def __init__(self, config: TransformerConfig):
        super().__init__(config)
        self._build_stack(config, causal=True)
        self.lm_head = nn.Linear(config.hidden_size, config.vocab_size, bias=False)
        self.post_init()

    def get_output_embeddings(self):
        return self.lm_head

    def set_output_embeddings(self, value):
        self.lm_head = value

    def forward(self, input_ids=None, attention_mask=None, position_ids=None, inputs_embeds=None,
                past_key_values=None, labels=None, shift_labels=None, use_cache=None, output_attentions=None,
                output_hidden_states=None, return_dict=None, logits_to_keep: int = 0, num_items_in_batch=None,
                token_type_ids=None, cache_position=None):
        """``labels``: ``(B, L)``, usually the input ids (-100: no loss), shifted inside; ``shift_labels``: targets
        already aligned with the positions; ``logits_to_keep``: logits for the last positions only (``generate``)."""
        if use_cache is None:
            use_cache = self.config.use_cache and not self.training
        out = self._encode(input_ids, attention_mask, token_type_ids, position_ids, inputs_embeds, output_attentions,
                           output_hidden_states, past_key_values, use_cache)
        h = out.last_hidden_state
        if logits_to_keep:
            h = h[:, -logits_to_keep:]
        logits = self.lm_head(h)  # (B, L, V)
        loss = _lm_loss(logits, labels, shift_labels, self.config.vocab_size, num_items_in_batch)
        result = CausalLMOutputWithPast(loss=loss, logits=logits, past_key_values=out.past_key_values,
                                        hidden_states=out.hidden_states, attentions=out.attentions)
        return result if return_dict is not False else result.to_tuple()


def shift_right(labels: torch.Tensor, start: int, pad: int) -> torch.Tensor:
    """Teacher forcing's decoder inputs: ``[start, y_1, …, y_{n-1}]`` from the targets ``[y_1, …, y_n]`` (-100 →
    pad)."""
    inputs = labels.new_full(labels.shape, pad)
    inputs[:, 1:] = labels[:, :-1]
    inputs[:, 0] = start
    return inputs.masked_fill(inputs == -100, pad)


class TransformerSeq2SeqModel(TransformerPreTrainedModel):
    """Encoder (bidirectional) and decoder (causal self-attention + cross-attention to the encoder's output)."""

    _tied_weights_keys = {"decoder.embeddings.tokens.weight": "encoder.embeddings.tokens.weight"}

    def __init__(self, config: TransformerConfig):
        super().__init__(config)
        self.encoder = TransformerStack(config, config.num_hidden_layers, causal=False)
        self.decoder = TransformerStack(config, config.num_decoder_layers, causal=True, cross=True)
        self.post_init()

    def get_input_embeddings(self):
        return self.encoder.embeddings.tokens

    def set_input_embeddings(self, value):
        self.encoder.embeddings.tokens = value
        if self.config.tie_word_embeddings:
            self.decoder.embeddings.tokens = value

    def get_encoder(self, modality=None):
        return self.encoder

    def get_decoder(self):
        return self.decoder


class TransformerForConditionalGeneration(TransformerPreTrainedModel, GenerationMixin):
    r"""The encoder-decoder of Vaswani et al. (2017): :math:`p(y_t \mid y_{<t}, x)`. Trained with teacher forcing
    (``labels`` → decoder inputs shifted right from ``decoder_start_token_id``); ``generate`` encodes once and
    decodes with an ``EncoderDecoderCache`` (greedy, sampling, beam search).

    Scheduled sampling, two-pass (Mihaylova & Martins 2019, "Scheduled Sampling for Transformers"): a Transformer
    decodes every position at once, so the model's "previous prediction" for position t comes from a first,
    gradient-free teacher-forced pass; with ``sampling_probability`` p > 0 (training only; the
    ``scheduled_sampling`` callback sets it) each decoder input after the start token is replaced by that pass's
    most likely token with probability p, and the second pass — the one that is trained — reads the mixture."""

    base_model_prefix = "model"
    _tied_weights_keys = {"lm_head.weight": "model.encoder.embeddings.tokens.weight",
                          "model.decoder.embeddings.tokens.weight": "model.encoder.embeddings.tokens.weight"}

    def __init__(self, config: TransformerConfig):
        if not config.is_encoder_decoder:
            raise ValueError("TransformerForConditionalGeneration needs config.is_encoder_decoder=True")
        if config.decoder_start_token_id is None:
            raise ValueError("TransformerForConditionalGeneration needs config.decoder_start_token_id (the first "
                             "decoder input)")
        super().__init__(config)
        self.model = TransformerSeq2SeqModel(config)
        self.lm_head = nn.Linear(config.hidden_size, config.vocab_size, bias=False)
        #: scheduled sampling's probability of reading the first pass's token instead of the gold one (training)
        self.sampling_probability = 0.0
        self.post_init()

    def get_input_embeddings(self):
        return self.model.get_input_embeddings()

    def set_input_embeddings(self, value):
        self.model.set_input_embeddings(value)

    def get_output_embeddings(self):
        return self.lm_head

    def set_output_embeddings(self, value):
        self.lm_head = value

    def get_encoder(self, modality=None):
        return self.model.encoder

    def get_decoder(self):
        return self.model.decoder

    def prepare_decoder_input_ids_from_labels(self, labels: torch.Tensor) -> torch.Tensor:
        return shift_right(labels, self.config.decoder_start_token_id, self.config.pad_token_id or 0)

    def forward(self, input_ids=None, attention_mask=None, decoder_input_ids=None, decoder_attention_mask=None,
                decoder_position_ids=None, encoder_outputs=None, past_key_values=None, inputs_embeds=None,
                decoder_inputs_embeds=None, labels=None, use_cache=None, output_attentions=None,
                output_hidden_states=None, return_dict=None, logits_to_keep: int = 0, cache_position=None,
                token_type_ids=None):
        """``labels``: the target ids ``(B, T)`` (-100: padding); without ``decoder_input_ids`` they are shifted right
        into them (teacher forcing). ``encoder_outputs``: a finished encoding (``generate`` passes it)."""
        if encoder_outputs is None:
            encoder_outputs = self.model.encoder(input_ids, attention_mask, None, token_type_ids, inputs_embeds,
                                                 output_attentions=bool(output_attentions),
                                                 output_hidden_states=bool(output_hidden_states))
        memory = encoder_outputs[0] if isinstance(encoder_outputs, tuple) else encoder_outputs.last_hidden_state
        if decoder_input_ids is None and decoder_inputs_embeds is None:
            if labels is None:
                raise ValueError("give decoder_input_ids (or labels, which are shifted right into them)")
            decoder_input_ids = self.prepare_decoder_input_ids_from_labels(labels)
        if use_cache is None:
            use_cache = self.config.use_cache and not self.training
        if (self.training and self.sampling_probability > 0 and past_key_values is None
                and decoder_input_ids is not None and decoder_input_ids.shape[1] > 1):
            with torch.no_grad():  # the first pass: the model's own token for every position, teacher-forced
                first = self.model.decoder(decoder_input_ids, decoder_attention_mask, decoder_position_ids, None, None,
                                           encoder_hidden_states=memory, encoder_attention_mask=attention_mask,
                                           use_cache=False).last_hidden_state
                own = self.lm_head(first).argmax(-1)  # (B, T): position t's prediction, the input of t + 1
                use_own = torch.rand(own.shape, device=own.device) < self.sampling_probability
                use_own[:, 0] = False  # the start token stays
                mixed = torch.where(use_own[:, 1:], own[:, :-1], decoder_input_ids[:, 1:])
                decoder_input_ids = torch.cat([decoder_input_ids[:, :1], mixed], 1)
        out = self.model.decoder(decoder_input_ids, decoder_attention_mask, decoder_position_ids, None,
                                 decoder_inputs_embeds, encoder_hidden_states=memory,
                                 encoder_attention_mask=attention_mask, past_key_values=past_key_values,
                                 use_cache=use_cache, output_attentions=bool(output_attentions),
                                 output_hidden_states=bool(output_hidden_states))
        h = out.last_hidden_state
        if logits_to_keep:
            h = h[:, -logits_to_keep:]
        logits = self.lm_head(h)  # (B, T, V)
        loss = None
        if labels is not None:  # position t of the decoder predicts labels[:, t]: already aligned
            loss = F.cross_entropy(logits.float().view(-1, logits.shape[-1]), labels.view(-1).to(logits.device),
                                   ignore_index=-100)
        encoder = encoder_outputs if not isinstance(encoder_outputs, tuple) else None
        result = Seq2SeqLMOutput(
            loss=loss, logits=logits, past_key_values=out.past_key_values,
            decoder_hidden_states=out.hidden_states, decoder_attentions=out.attentions,
            cross_attentions=out.cross_attentions, encoder_last_hidden_state=memory,
            encoder_hidden_states=getattr(encoder, "hidden_states", None),
            encoder_attentions=getattr(encoder, "attentions", None))
        return result if return_dict is not False else result.to_tuple()


register_auto(
    TransformerConfig,
    AutoModel=TransformerModel,
    AutoModelForMaskedLM=TransformerForMaskedLM,
    AutoModelForSequenceClassification=TransformerForSequenceClassification,
    AutoModelForTokenClassification=TransformerForTokenClassification,
    AutoModelForCausalLM=TransformerForCausalLM,
    AutoModelForSeq2SeqLM=TransformerForConditionalGeneration,
)

__all__ = [
    "TransformerPreTrainedModel",
    "TransformerModel",
    "TransformerForMaskedLM",
    "TransformerForSequenceClassification",
    "TransformerForTokenClassification",
    "TransformerForCausalLM",
    "TransformerSeq2SeqModel",
    "TransformerForConditionalGeneration",
    "shift_right",
]
