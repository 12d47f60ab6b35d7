r"""Beam search written out: diverse (group) beam search, GNMT length normalisation and coverage penalty, for any
``transformers`` generative model of the project (decoder-only or encoder-decoder) through its own ``forward`` and
cache.

Nothing in ``transformers`` 5 provides these: group / diverse beam search moved to Hub code behind
``trust_remote_code`` (``generate(num_beam_groups=2, diversity_penalty=1.0)`` raises), its ``length_penalty`` is
the power form :math:`\log P / |Y|^\alpha` rather than GNMT's, and it has no coverage penalty.

**Beam search.** A hypothesis :math:`Y = y_1 … y_t` of source / prompt :math:`X` is scored by
:math:`\log P(Y \mid X) = \sum_{j \le t} \log \tilde p(y_j \mid y_{<j}, X)`, where :math:`\log \tilde p` is the model's
log-softmax after the logits processors (``processors(ids_so_far, log_probs)``, as ``transformers``' beam search
applies them). Each step extends the :math:`k` running hypotheses of a group by every token (:math:`k |V|`
candidates), keeps the best :math:`K = \max(2, 1 + |\mathrm{EOS}|) \cdot k` and then

* of the first :math:`k` of them, those ending in EOS (every one at the last step, ``max_new_tokens``) are
  *finished*: they enter the group's pool of the :math:`k` best finished hypotheses, ranked by the final score below;
* the best :math:`k` not finished run on; the cache is reordered to them (``cache.reorder_cache(beam_idx)``, or the
  model's ``_reorder_cache``).

At step 0 only the first beam of each group is live (the others start at :math:`-\infty`), so the :math:`k` beams
do not start as copies. A group stops when it cannot improve: with ``early_stopping=True`` as soon as its pool
holds :math:`k` hypotheses (``transformers``' ``early_stopping=True``); with ``False`` when the pool is full and no
running hypothesis can still beat its worst member — the bound is :math:`s / lp(L)` maximised over the lengths
:math:`L` still reachable and a coverage penalty of 0 (its maximum), exact when every step's processed log-probability
is :math:`\le 0` (``transformers``' ``early_stopping="never"``; with :math:`\alpha = 0` also its ``False``). The
search ends when every group of every row has stopped, or at ``max_new_tokens``.

**Diverse beam search** (Vijayakumar et al. 2016, "Diverse Beam Search", Hamming diversity). The
``num_beams`` beams form :math:`G` = ``num_beam_groups`` groups of :math:`k = \text{num\_beams} / G`. At each step the
groups are decoded in order, and group :math:`g` chooses its candidates by

.. math:: \log P(y_{<t}) + \log \tilde p(y_t \mid y_{<t}) - \lambda \sum_{h < g} \mathrm{count}_h(y_t),

:math:`\mathrm{count}_h(v)` the number of running beams of group :math:`h` (same batch row) that chose token
:math:`v` at this step, :math:`\lambda` = ``diversity_penalty``. The penalty steers the choice only: a hypothesis
keeps its true :math:`\log P` (``transformers`` 4's group beam search accumulated the penalised score instead). With
:math:`\lambda = 0` the groups do not see one another, so each group is exactly an ordinary beam search of :math:`k`
beams (and :math:`G` groups are :math:`G` identical copies); :math:`G = 1` is ordinary beam search. The returned
hypotheses are the best of all groups' pools together (``groups`` says whose each is).

**GNMT scoring** (Wu et al. 2016, "Google's Neural Machine Translation System", §7). A finished hypothesis is ranked
by

.. math:: s(Y, X) = \frac{\log P(Y \mid X)}{lp(Y)} + cp(X; Y), \qquad
          lp(Y) = \frac{(5 + |Y|)^\alpha}{(5 + 1)^\alpha}, \qquad
          cp(X; Y) = \beta \sum_{i=1}^{|X|} \log\Big(\min\big(\sum_{j=1}^{|Y|} p_{i,j},\ 1\big)\Big),

:math:`|Y|` the generated tokens (EOS included), :math:`p_{i,j}` the attention of target step :math:`j` on source
position :math:`i` (the model's ``cross_attentions`` with ``output_attentions=True``, averaged over layers and heads;
padded source positions left out; the sum floored at 1e-10 so an unattended position costs
:math:`\beta \log 10^{-10}` rather than :math:`-\infty`). :math:`\alpha` = ``length_penalty`` (0: raw
:math:`\log P`; ``length_normalization="power"`` gives ``transformers``' :math:`|Y|^\alpha` instead),
:math:`\beta` = ``coverage_penalty`` (encoder-decoder models that return cross-attention weights only; 0: none). Running
hypotheses of one step all have the same length, so :math:`lp` only matters against finished ones; :math:`cp` is
applied to finished hypotheses only.

Everything is batched over ``batch × num_beams``: one forward per step, tensor ops per step (diverse beam search
chooses its groups one after another, :math:`G` small tensor ops), and the finished pools are tensors too. Use::

    out = beam_search(model, input_ids, attention_mask, num_beams=6, num_beam_groups=3, diversity_penalty=0.5,
                      length_penalty=0.6, max_new_tokens=40)
    out.sequences  # (batch * num_return_sequences, length), padded with pad_token_id
"""

from __future__ import annotations

import dataclasses
import inspect
from dataclasses import dataclass
from typing import Any, Sequence

import torch

#: the length normalisations :math:`lp(Y)` of :func:`length_normalizer`
LENGTH_NORMALIZATIONS = ("gnmt", "power")

#: floor of a source position's accumulated attention in :func:`coverage_penalty` (keeps :math:`\log` finite)
COVERAGE_FLOOR = 1e-10


@dataclass(frozen=True)
class BeamSearchSettings:
    """The settings of :func:`beam_search`, checked on construction (each error names its field).

    ``length_penalty`` is :math:`\\alpha` of ``length_normalization`` (``gnmt``: :math:`((5+|Y|)/6)^\\alpha`,
    ``power``: :math:`|Y|^\\alpha`; None or 0: rank by raw :math:`\\log P`), ``coverage_penalty`` is GNMT's
    :math:`\\beta`. ``eos_token_id`` / ``pad_token_id`` None: the model's ``generation_config`` (then its config);
    ``eos_token_id=[]``: no EOS (every hypothesis runs to ``max_new_tokens``)."""

    num_beams: int
    max_new_tokens: int
    num_beam_groups: int = 1
    diversity_penalty: float = 0.0
    length_penalty: float | None = 0.0
    length_normalization: str = "gnmt"
    coverage_penalty: float = 0.0
    num_return_sequences: int = 1
    early_stopping: bool = False
    eos_token_id: int | Sequence[int] | None = None
    pad_token_id: int | None = None

    def __post_init__(self):
        def whole(name, minimum):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
                raise ValueError(f"{name}: expected an integer >= {minimum}, got {value!r}")

        whole("num_beams", 1)
        whole("max_new_tokens", 1)
        whole("num_beam_groups", 1)
        whole("num_return_sequences", 1)
        if self.num_beams % self.num_beam_groups:
            raise ValueError(f"num_beam_groups: num_beams ({self.num_beams}) must split into num_beam_groups "
                             f"({self.num_beam_groups}) groups of equal size")
        if not self.diversity_penalty >= 0:
            raise ValueError(f"diversity_penalty: expected >= 0, got {self.diversity_penalty}")
        if self.diversity_penalty > 0 and self.num_beam_groups == 1:
            raise ValueError(f"diversity_penalty: {self.diversity_penalty} acts between beam groups; it needs "
                             "num_beam_groups > 1")
        if self.num_return_sequences > self.num_beams:
            raise ValueError(f"num_return_sequences: at most num_beams ({self.num_beams}) hypotheses are kept, "
                             f"got {self.num_return_sequences}")
        if self.length_penalty is not None and not self.length_penalty >= 0:
            raise ValueError(f"length_penalty: alpha must be >= 0 (0: raw log-probabilities), "
                             f"got {self.length_penalty}")
        if self.length_normalization not in LENGTH_NORMALIZATIONS:
            raise ValueError(f"length_normalization: expected one of {', '.join(LENGTH_NORMALIZATIONS)}, "
                             f"got {self.length_normalization!r}")
        if not self.coverage_penalty >= 0:
            raise ValueError(f"coverage_penalty: beta must be >= 0, got {self.coverage_penalty}")
        if not isinstance(self.early_stopping, bool):
            raise ValueError(f"early_stopping: expected True or False, got {self.early_stopping!r}")
        if self.eos_token_id is not None:
            ids = [self.eos_token_id] if isinstance(self.eos_token_id, int) else list(self.eos_token_id)
            if not all(isinstance(i, int) and not isinstance(i, bool) and i >= 0 for i in ids):
                raise ValueError(f"eos_token_id: expected a token id or a list of them, got {self.eos_token_id!r}")
        if self.pad_token_id is not None and (not isinstance(self.pad_token_id, int) or self.pad_token_id < 0):
            raise ValueError(f"pad_token_id: expected a token id, got {self.pad_token_id!r}")

    @property
    def beams_per_group(self) -> int:
        return self.num_beams // self.num_beam_groups

    @classmethod
    def from_generation_config(cls, config, **overrides) -> "BeamSearchSettings":
        """Settings from a ``transformers.GenerationConfig``'s ``num_beams``, ``max_new_tokens``,
        ``num_beam_groups``, ``diversity_penalty``, ``num_return_sequences``, ``early_stopping`` (``"never"`` →
        False), ``eos_token_id`` and ``pad_token_id``; the rest (and anything to change) from ``overrides``. Its
        ``length_penalty`` is not carried over: it is the power form's :math:`\\alpha` (default 1.0); pass
        ``length_penalty`` and ``length_normalization`` explicitly."""
        fields = {}
        for name in ("num_beams", "max_new_tokens", "num_beam_groups", "diversity_penalty", "num_return_sequences",
                     "eos_token_id", "pad_token_id"):
            value = getattr(config, name, None)
            if value is not None:
                fields[name] = value
        early = getattr(config, "early_stopping", None)
        if early is not None:
            fields["early_stopping"] = early is True
        fields.update(overrides)
        return cls(**fields)


@dataclass
class BeamSearchOutput:
    """What :func:`beam_search` returns, ``num_return_sequences`` rows per input row (best first):

    * ``sequences`` ``(batch * R, length)``: the prompt and the continuation (decoder-only) or the decoder start
      token and the continuation (encoder-decoder), padded with ``pad_token_id`` after each hypothesis' end;
    * ``scores`` ``(batch * R,)``: the final score :math:`\\log P / lp(Y) + cp(X; Y)` the hypotheses are ranked by;
    * ``log_probs`` ``(batch * R,)``: :math:`\\log P(Y \\mid X)`, summed processed log-probabilities;
    * ``lengths`` ``(batch * R,)``: generated tokens :math:`|Y|` (EOS included);
    * ``groups`` ``(batch * R,)``: the beam group each hypothesis came from.

    A row whose pool is short of R hypotheses (a vocabulary too small to fill it) has ``-inf`` scores there."""

    sequences: torch.LongTensor
    scores: torch.FloatTensor
    log_probs: torch.FloatTensor
    lengths: torch.LongTensor
    groups: torch.LongTensor


def length_normalizer(lengths: torch.Tensor | int, alpha: float | None, form: str = "gnmt") -> torch.Tensor:
    """:math:`lp(Y)` for ``|Y|`` = ``lengths``: ``gnmt`` :math:`((5 + |Y|) / 6)^\\alpha`, ``power``
    :math:`|Y|^\\alpha`; 1 for :math:`\\alpha` 0 or None."""
    lengths = torch.as_tensor(lengths, dtype=torch.float32)
    if not alpha:
        return torch.ones_like(lengths)
    if form == "gnmt":
        return ((5.0 + lengths) / 6.0) ** alpha
    if form == "power":
        return lengths ** alpha
    raise ValueError(f"length_normalization: expected one of {', '.join(LENGTH_NORMALIZATIONS)}, got {form!r}")


def coverage_penalty(coverage: torch.Tensor, beta: float, source_mask: torch.Tensor | None = None) -> torch.Tensor:
    """GNMT's :math:`cp = \\beta \\sum_i \\log \\min(\\sum_j p_{i,j}, 1)`. ``coverage`` ``(..., S)``: the attention
    each source position received, summed over target steps; ``source_mask`` ``(..., S)`` (1: real position; padded
    ones are left out). Returns ``(...)``, :math:`\\le 0`."""
    if not beta:
        return torch.zeros(coverage.shape[:-1], dtype=torch.float32, device=coverage.device)
    terms = coverage.float().clamp(min=COVERAGE_FLOOR, max=1.0).log()
    if source_mask is not None:
        terms = terms * source_mask.to(terms.dtype)
    return beta * terms.sum(-1)


def _token_ids(value) -> list[int]:
    if value is None:
        return []
    if isinstance(value, torch.Tensor):
        return [int(v) for v in value.flatten().tolist()]
    return [int(value)] if isinstance(value, int) else [int(v) for v in value]


def _first(*values):
    return next((v for v in values if v is not None), None)


def _expand(output, times: int):
    """Each tensor of an encoder output (a ``ModelOutput``, also inside tuples) repeated ``times`` per row."""
    def rep(value):
        if isinstance(value, torch.Tensor):
            return value.repeat_interleave(times, dim=0)
        if isinstance(value, tuple):
            return tuple(rep(v) for v in value)
        return value

    return type(output)(**{key: rep(value) for key, value in output.items()})


def _call_with_accepted(module, **kwargs):
    """``module(**kwargs)`` without the None values and the arguments its ``forward`` does not take."""
    params = inspect.signature(module.forward).parameters
    takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    return module(**{k: v for k, v in kwargs.items() if v is not None and (takes_any or k in params)})


def _step_attention(output, rows: int) -> torch.Tensor:
    """The cross-attention of the step's last target position ``(rows, S)``: mean over layers and heads."""
    cross = getattr(output, "cross_attentions", None)
    if not cross or any(a is None for a in cross):
        raise ValueError("coverage_penalty: the model returned no cross_attentions with output_attentions=True (a "
                         "decoder-only model has none; a transformers model may need attn_implementation='eager'); "
                         "set coverage_penalty to 0")
    per_layer = [a.float().reshape(rows, -1, a.shape[-2], a.shape[-1])[:, :, -1].mean(1) for a in cross]
    return torch.stack(per_layer).mean(0)


def _reorder(model, cache, beam_idx: torch.Tensor):
    if hasattr(model, "_reorder_cache"):
        return model._reorder_cache(cache, beam_idx)
    if hasattr(cache, "reorder_cache"):
        result = cache.reorder_cache(beam_idx)  # in place (DynamicCache, EncoderDecoderCache, the RNN states)
        return cache if result is None else result
    raise ValueError(f"{type(model).__name__}: its cache ({type(cache).__name__}) cannot be reordered for beam "
                     "search (no reorder_cache)")


@torch.no_grad()
def beam_search(model, input_ids: torch.LongTensor, attention_mask: torch.Tensor | None = None,
                settings: BeamSearchSettings | None = None, *, logits_processor=None, encoder_outputs=None,
                **options: Any) -> BeamSearchOutput:
    """Beam search of the module docstring on ``model`` (a ``transformers`` generative model, in eval mode).

    ``input_ids`` ``(batch, length)``: the prompts of a decoder-only model (left-padded, with ``attention_mask``)
    or the sources of an encoder-decoder (``model.config.is_encoder_decoder``: encoded once, the decoder starts from
    ``decoder_start_token_id``). ``settings``: a :class:`BeamSearchSettings`, or its fields as keyword ``options``
    (with ``settings``, options replace its fields). ``logits_processor``: a ``transformers.LogitsProcessorList``
    (or one processor) applied to each step's log-softmax, ``processor(ids_so_far, log_probs)``.
    ``encoder_outputs``: an encoder-decoder's finished encoding of the sources (one row per source;
    ``attention_mask`` is then the sources' mask), ``input_ids`` then being the decoder's prompt (its start token) —
    how ``generate`` hands over through :func:`harness_generate`."""
    settings = (BeamSearchSettings(**options) if settings is None
                else dataclasses.replace(settings, **options) if options else settings)
    if not hasattr(model, "prepare_inputs_for_generation"):
        raise ValueError(f"{type(model).__name__} is not a generative model (no prepare_inputs_for_generation)")
    if logits_processor is not None and not callable(logits_processor):
        raise ValueError(f"logits_processor: expected a LogitsProcessorList or a processor, got {logits_processor!r}")
    if input_ids.dim() != 2:
        raise ValueError(f"input_ids: expected (batch, length), got shape {tuple(input_ids.shape)}")
    if encoder_outputs is None and attention_mask is not None and attention_mask.shape != input_ids.shape:
        raise ValueError(f"attention_mask: expected the shape of input_ids {tuple(input_ids.shape)}, "
                         f"got {tuple(attention_mask.shape)}")
    config = model.config
    generation = getattr(model, "generation_config", None)
    encoder_decoder = bool(getattr(config, "is_encoder_decoder", False))
    if settings.coverage_penalty > 0 and not encoder_decoder:
        raise ValueError(f"coverage_penalty: {settings.coverage_penalty} needs the cross-attention of an "
                         f"encoder-decoder model; {type(model).__name__} is decoder-only")
    eos = _token_ids(_first(settings.eos_token_id, getattr(generation, "eos_token_id", None),
                            getattr(config, "eos_token_id", None)))
    pad = _first(settings.pad_token_id, getattr(generation, "pad_token_id", None),
                 getattr(config, "pad_token_id", None), eos[0] if eos else None, 0)

    device = input_ids.device
    B, N, G, k = input_ids.shape[0], settings.num_beams, settings.num_beam_groups, settings.beams_per_group
    rows = B * N
    alpha, form, beta = settings.length_penalty or 0.0, settings.length_normalization, settings.coverage_penalty
    if attention_mask is not None:
        mask = attention_mask
    elif encoder_outputs is not None:
        mask = torch.ones(encoder_outputs[0].shape[:2], dtype=torch.long, device=input_ids.device)
    else:
        mask = torch.ones_like(input_ids)

    static: dict[str, Any] = {"use_cache": True}
    if beta > 0:
        static["output_attentions"] = True
    if encoder_decoder:
        if encoder_outputs is None:
            encoder_outputs = _call_with_accepted(model.get_encoder(), input_ids=input_ids, attention_mask=mask,
                                                  return_dict=True)
            start = _first(getattr(generation, "decoder_start_token_id", None),
                           getattr(config, "decoder_start_token_id", None), getattr(generation, "bos_token_id", None),
                           getattr(config, "bos_token_id", None))
            if start is None:
                raise ValueError(f"{type(model).__name__}: no decoder_start_token_id (generation_config or config) to "
                                 "start the decoder from")
            prompt = torch.full((B, 1), int(start), dtype=torch.long, device=device)
        else:
            prompt = input_ids  # generate's decoder_input_ids
        static["encoder_outputs"] = _expand(encoder_outputs, N)
        static["attention_mask"] = mask.repeat_interleave(N, dim=0)  # the source's, (rows, S)
        source_mask = mask.view(B, 1, -1)  # (B, 1, S), for the coverage penalty
        decoder_mask = position_ids = None
    else:
        prompt = input_ids
        decoder_mask = mask.repeat_interleave(N, dim=0)  # (rows, P), grows by one column per step
        position_ids = None
        if "position_ids" in inspect.signature(model.forward).parameters:
            position_ids = (decoder_mask.long().cumsum(-1) - 1).masked_fill(decoder_mask == 0, 0)
        source_mask = None

    P, T = prompt.shape[1], prompt.shape[1] + settings.max_new_tokens
    neg_inf = float("-inf")
    seqs = torch.full((B, N, T), pad, dtype=torch.long, device=device)  # running hypotheses
    seqs[:, :, :P] = prompt[:, None]
    scores = torch.zeros(B, G, k, device=device)  # log P of the running hypotheses
    scores[..., 1:] = neg_inf  # step 0: one live beam per group
    coverage = None
    pool_scores = torch.full((B, G, k), neg_inf, device=device)  # finished hypotheses: final score,
    pool_log_probs = torch.full((B, G, k), neg_inf, device=device)  # log P,
    pool_lengths = torch.zeros(B, G, k, dtype=torch.long, device=device)  # |Y|,
    pool_seqs = torch.full((B, G, k, T), pad, dtype=torch.long, device=device)  # tokens
    done = torch.zeros(B, G, dtype=torch.bool, device=device)
    eos_ids = torch.tensor(eos, dtype=torch.long, device=device)
    group_offset = (torch.arange(G, device=device) * k).view(1, G, 1)  # first beam of each group in its row
    row_offset = (torch.arange(B, device=device) * N).view(B, 1, 1)
    cache = None

    for t in range(settings.max_new_tokens):
        current = P + t
        ids = seqs.view(rows, T)[:, :current]
        kwargs = dict(static)
        if decoder_mask is not None:
            kwargs["attention_mask"] = decoder_mask
        if position_ids is not None:
            kwargs["position_ids"] = position_ids
        inputs = model.prepare_inputs_for_generation(ids, next_sequence_length=1 if cache is not None else None,
                                                     past_key_values=cache, is_first_iteration=t == 0, **kwargs)
        output = model(**inputs, return_dict=True)
        cache = getattr(output, "past_key_values", None)
        log_probs = torch.log_softmax(output.logits[:, -1, :].float(), dim=-1)  # (rows, V)
        if logits_processor is not None:
            log_probs = logits_processor(ids, log_probs)
        V = log_probs.shape[-1]
        if beta > 0:
            attention = _step_attention(output, rows)  # (rows, S)
            step_coverage = attention if coverage is None else coverage + attention
        del output

        candidates = scores.unsqueeze(-1) + log_probs.view(B, G, k, V)  # (B, G, k, V): log P of every extension
        flat = candidates.view(B, G, k * V)
        K = min(max(2, 1 + len(eos)) * k, k * V)
        last = t + 1 == settings.max_new_tokens
        if G == 1:
            picks = [_select(flat, flat, K, k, V, eos_ids, last)]
        else:  # groups in order, each penalised by the tokens the groups before it chose at this step
            picks, counts = [], torch.zeros(B, V, device=device)
            for g in range(G):
                chosen = flat[:, g : g + 1] - settings.diversity_penalty * counts.repeat(1, k).unsqueeze(1)
                picks.append(_select(chosen, flat[:, g : g + 1], K, k, V, eos_ids, last))
                run_token, run_scores = picks[-1][4], picks[-1][5]
                counts.scatter_add_(1, run_token[:, 0], torch.isfinite(run_scores[:, 0]).float())
        (fin_src, fin_token, fin_scores, finished, run_token, run_scores, run_src) = (
            torch.cat(parts, dim=1) for parts in zip(*picks))

        # finished: into each group's pool of the k best, unless the group has stopped
        finished &= ~done.unsqueeze(-1)
        if bool(finished.any()):
            src_rows = group_offset + fin_src  # (B, G, k): beam within the row
            cand_seqs = seqs.gather(1, src_rows.view(B, G * k, 1).expand(B, G * k, T)).view(B, G, k, T)
            cand_seqs[..., current] = fin_token
            final = fin_scores / length_normalizer(t + 1, alpha, form).to(device)
            if beta > 0:
                cand_cov = step_coverage.view(B, N, -1).gather(
                    1, src_rows.view(B, G * k, 1).expand(B, G * k, step_coverage.shape[-1])).view(B, G, k, -1)
                final = final + coverage_penalty(cand_cov, beta, source_mask.unsqueeze(1))
            final = final.masked_fill(~finished, neg_inf)
            merged = torch.cat([pool_scores, final], dim=-1)  # (B, G, 2k)
            pool_scores, keep = merged.topk(k, dim=-1)
            fin_log_probs = fin_scores.masked_fill(~finished, neg_inf)
            pool_log_probs = torch.cat([pool_log_probs, fin_log_probs], -1).gather(-1, keep)
            lengths = torch.full_like(pool_lengths, t + 1)
            pool_lengths = torch.cat([pool_lengths, lengths], -1).gather(-1, keep)
            pool_seqs = torch.cat([pool_seqs, cand_seqs], 2).gather(2, keep.unsqueeze(-1).expand(B, G, k, T))

        # the running hypotheses of the next step, and the stopping test
        scores = run_scores
        full = torch.isfinite(pool_scores).all(-1)  # (B, G)
        if settings.early_stopping:
            done |= full
        else:
            best = scores.max(-1).values  # (B, G)
            reach = torch.tensor([min(t + 2, settings.max_new_tokens), settings.max_new_tokens], device=device)
            bound = (best.unsqueeze(-1) / length_normalizer(reach, alpha, form).to(device)).max(-1).values
            done |= full & (bound <= pool_scores.min(-1).values)
        done |= ~torch.isfinite(scores).any(-1)  # no live hypothesis left
        if last or bool(done.all()):
            break
        beam_rows = group_offset + run_src  # (B, G, k)
        seqs = seqs.gather(1, beam_rows.view(B, N, 1).expand(B, N, T))
        seqs.view(B, G, k, T)[..., current] = run_token
        if beta > 0:
            coverage = step_coverage.view(B, N, -1).gather(
                1, beam_rows.view(B, N, 1).expand(B, N, step_coverage.shape[-1])).view(rows, -1)
        if cache is not None:
            cache = _reorder(model, cache, (row_offset + beam_rows).view(rows))
        if decoder_mask is not None:
            decoder_mask = torch.cat([decoder_mask, decoder_mask.new_ones(rows, 1)], dim=-1)
            if position_ids is not None:
                position_ids = torch.cat([position_ids, position_ids[:, -1:] + 1], dim=-1)

    # the best num_return_sequences of all groups' pools, best first
    R = settings.num_return_sequences
    ranked, order = pool_scores.view(B, G * k).topk(R, dim=-1)  # (B, R)
    lengths = pool_lengths.view(B, G * k).gather(1, order)
    sequences = pool_seqs.view(B, G * k, T).gather(1, order.unsqueeze(-1).expand(B, R, T))
    width = P + int(lengths.max())
    return BeamSearchOutput(sequences=sequences[..., :width].reshape(B * R, width), scores=ranked.reshape(B * R),
                            log_probs=pool_log_probs.view(B, G * k).gather(1, order).reshape(B * R),
                            lengths=lengths.reshape(B * R), groups=(order // k).reshape(B * R))


def harness_generate(model, input_ids, logits_processor=None, stopping_criteria=None, generation_config=None,
                     **model_kwargs) -> torch.LongTensor:
    """This beam search as ``generate``'s decoding loop: ``model.generate(..., custom_generate=harness_generate)``.

    ``generate`` prepares everything as for its own beam search — the ``GenerationConfig`` (``num_beams``,
    ``num_beam_groups``, ``diversity_penalty``, ``length_penalty``, ``num_return_sequences``, ``early_stopping``,
    lengths, ids), the logits processors it builds from it (``no_repeat_ngram_size``, ``repetition_penalty``, ...)
    and, for an encoder-decoder, the encoding — and hands over the rows expanded per beam; this takes one row per
    input back and runs :func:`beam_search`. A ``GenerationConfig`` attribute ``length_normalization``
    (``"gnmt"``; default ``"power"``, ``generate``'s own meaning of ``length_penalty``) and ``coverage_penalty``
    choose GNMT's scoring. Returns the sequences as ``generate`` does (``num_return_sequences`` rows per input)."""
    config = generation_config
    N = max(int(config.num_beams or 1), int(config.num_return_sequences or 1))
    rows = input_ids[::N]
    max_new = int(config.max_length) - input_ids.shape[1]
    if max_new < 1:
        raise ValueError(f"max_new_tokens: nothing left to generate (max_length {config.max_length}, input length "
                         f"{input_ids.shape[1]})")
    alpha = config.length_penalty
    settings = BeamSearchSettings.from_generation_config(
        config, max_new_tokens=max_new, length_penalty=float(alpha) if alpha is not None else 0.0,
        length_normalization=getattr(config, "length_normalization", None) or "power",
        coverage_penalty=float(getattr(config, "coverage_penalty", None) or 0.0))
    mask = model_kwargs.get("attention_mask")
    encoded = model_kwargs.get("encoder_outputs")
    if encoded is not None:
        encoded = type(encoded)(**{k: (v[::N] if isinstance(v, torch.Tensor) else v) for k, v in encoded.items()})
    return beam_search(model, rows, mask[::N] if mask is not None else None, settings,
                       logits_processor=logits_processor if logits_processor else None,
                       encoder_outputs=encoded).sequences


def _select(chosen: torch.Tensor, true: torch.Tensor, K: int, k: int, V: int, eos_ids: torch.Tensor, last: bool):
    """One step's choice for some groups. ``chosen`` ``(B, g, k·V)``: the scores candidates are chosen by (with
    the diversity penalty), ``true`` the same candidates' log P. Returns, each ``(B, g, k)``: the first k
    candidates' source beam, token, log P and whether they finish; then the next running beams' token, log P and
    source beam (log P −inf where there is no live candidate)."""
    top_chosen, top_index = chosen.topk(K, dim=-1)  # (B, g, K)
    top_true = true.gather(-1, top_index)
    source, token = top_index // V, top_index % V
    hits = torch.isin(token, eos_ids) if not last else torch.ones_like(token, dtype=torch.bool)
    finished = hits[..., :k] & torch.isfinite(top_true[..., :k])
    running, position = top_chosen.masked_fill(hits, float("-inf")).topk(k, dim=-1)
    run_scores = top_true.gather(-1, position).masked_fill(~torch.isfinite(running), float("-inf"))
    return (source[..., :k], token[..., :k], top_true[..., :k], finished, token.gather(-1, position), run_scores,
            source.gather(-1, position))


__all__ = ["BeamSearchOutput", "BeamSearchSettings", "COVERAGE_FLOOR", "LENGTH_NORMALIZATIONS", "beam_search",
           "coverage_penalty", "harness_generate", "length_normalizer"]
