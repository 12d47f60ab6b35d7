"""Beam search written out (harness.generation.search): exact against brute-force enumeration, equal to
``transformers``' own beam search where the two overlap (every generative model family of the project, GPT-2, T5),
diverse groups, GNMT length normalisation and coverage penalty, argument checks."""

from __future__ import annotations

import itertools
import math

import pytest
import torch
import transformers
from transformers import LogitsProcessor, LogitsProcessorList

from harness.generation.search import (BeamSearchSettings, beam_search, coverage_penalty, length_normalizer)
from harness.models.rnn.configuration_rnn import RNNConfig
from harness.models.rnn.modeling_rnn import RNNForCausalLM
from harness.models.rnn_seq2seq.configuration_rnn_seq2seq import RNNSeq2SeqConfig
from harness.models.rnn_seq2seq.modeling_rnn_seq2seq import RNNSeq2SeqForConditionalGeneration
from harness.models.transformer.configuration_transformer import TransformerConfig
from harness.models.transformer.modeling_transformer import TransformerForCausalLM, TransformerForConditionalGeneration

PAD, BOS, EOS = 0, 1, 2
SPECIAL = dict(pad_token_id=PAD, bos_token_id=BOS, eos_token_id=EOS)


# ------------------------------------------------------------------------------------------------------------
# tiny random-init models (seeded) and inputs
def gpt2(vocab=8, seed=0):
    torch.manual_seed(seed)
    return transformers.GPT2LMHeadModel(transformers.GPT2Config(
        vocab_size=vocab, n_embd=16, n_layer=1, n_head=2, n_positions=32, **SPECIAL)).eval()


def t5(vocab=8, seed=0):
    torch.manual_seed(seed)
    return transformers.T5ForConditionalGeneration(transformers.T5Config(
        vocab_size=vocab, d_model=16, d_kv=8, d_ff=16, num_layers=1, num_heads=2, pad_token_id=PAD,
        eos_token_id=EOS, decoder_start_token_id=PAD)).eval()


def _transformer_config(**kw):
    return TransformerConfig(vocab_size=8, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                             intermediate_size=16, max_position_embeddings=32, hidden_dropout_prob=0.0,
                             attention_probs_dropout_prob=0.0, **SPECIAL, **kw)


def harness_transformer_lm(seed=0):
    torch.manual_seed(seed)
    return TransformerForCausalLM(_transformer_config(is_decoder=True)).eval()


def harness_transformer_seq2seq(seed=0):
    torch.manual_seed(seed)
    return TransformerForConditionalGeneration(_transformer_config(
        is_encoder_decoder=True, decoder_start_token_id=BOS, num_decoder_layers=2)).eval()


def harness_rnn_lm(seed=0):
    torch.manual_seed(seed)
    return RNNForCausalLM(RNNConfig(vocab_size=8, embedding_size=8, hidden_size=8, num_layers=1, **SPECIAL)).eval()


def harness_rnn_seq2seq(attention="bahdanau", cell="gru", seed=0):
    torch.manual_seed(seed)
    return RNNSeq2SeqForConditionalGeneration(RNNSeq2SeqConfig(
        vocab_size=8, embedding_size=8, hidden_size=8, attention=attention, cell=cell, dropout=0.0,
        decoder_start_token_id=BOS, **SPECIAL)).eval()


def prompts():
    """Two decoder-only prompts, the second left-padded."""
    ids = torch.tensor([[BOS, 3, 4, 3], [PAD, PAD, BOS, 4]])  # fits a vocabulary of 5
    return ids, (ids != PAD).long()


def sources():
    """Two encoder-decoder sources, the second right-padded."""
    ids = torch.tensor([[3, 4, 5, 6], [7, 3, PAD, PAD]])
    return ids, (ids != PAD).long()


@torch.no_grad()
def decoder_log_probs(model, ids, mask, sequences, lengths, processors=None):
    """log P of each returned hypothesis recomputed by one teacher-forced forward: ``sequences`` ``(B * R, P + L)``
    (prompt or decoder start token first), ``lengths`` the generated tokens; ``processors`` replayed per step."""
    R = sequences.shape[0] // ids.shape[0]
    prefix = sequences.shape[1] - int(lengths.max())
    if model.config.is_encoder_decoder:
        out = model(input_ids=ids.repeat_interleave(R, 0), attention_mask=mask.repeat_interleave(R, 0),
                    decoder_input_ids=sequences[:, :-1], use_cache=False)
    else:
        full_mask = torch.cat([mask.repeat_interleave(R, 0), torch.ones_like(sequences[:, prefix:])], 1)
        positions = (full_mask.cumsum(-1) - 1).clamp(min=0)
        out = model(input_ids=sequences[:, :-1], attention_mask=full_mask[:, :-1], position_ids=positions[:, :-1],
                    use_cache=False)
    log_probs = out.logits[:, prefix - 1:].float().log_softmax(-1)  # (B * R, L, V): step t predicts token P + t
    total = torch.zeros(sequences.shape[0])
    for t in range(int(lengths.max())):
        step = log_probs[:, t]
        if processors is not None:
            step = processors(sequences[:, : prefix + t], step)
        token = step.gather(1, sequences[:, prefix + t, None]).squeeze(1)
        total += torch.where(t < lengths, token, torch.zeros_like(token))
    return total


# ------------------------------------------------------------------------------------------------------------
# exactness
def test_enough_beams_find_the_brute_force_optimum_and_the_top_hypotheses():
    """Vocabulary 5, 3 new tokens: 25 = 5^2 beams never prune a live prefix, so the pool of 25 finished
    hypotheses is the 25 best of all continuations (EOS only last, or none within 3 tokens), enumerated and
    scored by separate forwards on each row's unpadded prompt (which also checks the left padding)."""
    V, L = 5, 3
    model = gpt2(vocab=V)
    ids, mask = prompts()
    out = beam_search(model, ids, mask, num_beams=V ** (L - 1), max_new_tokens=L, num_return_sequences=V ** (L - 1))
    words = [t for t in range(V) if t != EOS]
    continuations = ([(EOS,)] + [(a, EOS) for a in words]
                     + [(a, b, c) for a, b in itertools.product(words, words) for c in range(V)])
    R = V ** (L - 1)
    for row in range(2):
        prompt = ids[row][mask[row].bool()].tolist()
        enumerated = []
        for continuation in continuations:
            seq = torch.tensor([prompt + list(continuation)])
            with torch.no_grad():
                logp = model(input_ids=seq).logits[0, len(prompt) - 1:-1].log_softmax(-1)
            enumerated.append((float(logp.gather(1, seq[0, len(prompt):, None]).sum()), continuation))
        enumerated.sort(reverse=True)
        got = out.scores[row * R:(row + 1) * R]
        torch.testing.assert_close(got, torch.tensor([s for s, _ in enumerated[:R]]), atol=1e-5, rtol=0)
        best = out.sequences[row * R, ids.shape[1]: ids.shape[1] + int(out.lengths[row * R])].tolist()
        assert tuple(best) == enumerated[0][1]
    torch.testing.assert_close(out.scores, out.log_probs)  # no length normalisation: the score is log P


@pytest.mark.parametrize("build", [gpt2, t5, harness_transformer_lm, harness_transformer_seq2seq],
                         ids=["gpt2", "t5", "transformer_lm", "transformer_seq2seq"])
def test_scores_are_the_models_own_log_probabilities(build):
    model = build()
    ids, mask = sources() if model.config.is_encoder_decoder else prompts()
    processors = LogitsProcessorList([transformers.RepetitionPenaltyLogitsProcessor(1.3)])
    out = beam_search(model, ids, mask, num_beams=3, max_new_tokens=5, num_return_sequences=3,
                      logits_processor=processors)
    torch.testing.assert_close(out.scores, out.log_probs)
    recomputed = decoder_log_probs(model, ids, mask, out.sequences, out.lengths, processors)
    torch.testing.assert_close(out.log_probs, recomputed, atol=1e-5, rtol=1e-5)
    assert (out.scores.view(2, 3).diff(dim=1) <= 0).all()  # best first


# ------------------------------------------------------------------------------------------------------------
# against transformers' beam search
BUILDERS = {"gpt2": gpt2, "t5": t5, "transformer_lm": harness_transformer_lm,
            "transformer_seq2seq": harness_transformer_seq2seq, "rnn_lm": harness_rnn_lm,
            "rnn_seq2seq_bahdanau": harness_rnn_seq2seq,
            "rnn_seq2seq_luong_lstm": lambda: harness_rnn_seq2seq("luong", cell="lstm")}


@pytest.mark.parametrize("processors", [False, True], ids=["plain", "processors"])
@pytest.mark.parametrize("name", list(BUILDERS))
def test_equals_transformers_beam_search(name, processors):
    """Raw log-prob ranking and ``early_stopping=True`` are ``transformers``' ``length_penalty=0.0,
    early_stopping=True``: same bookkeeping (top 2k candidates, the first k may finish, pools of k), so the same
    hypotheses and scores. Compared up to each hypothesis' end: ``generate`` pads with EOS when the pad id is 0
    (its ``pad_token_id or eos_token_id``), this module with the pad id."""
    model = BUILDERS[name]()
    ids, mask = sources() if model.config.is_encoder_decoder else prompts()
    k, steps = 3, 6
    extra, ours = {}, None
    if processors:  # what generate builds from these two settings (it ignores a prompt's left padding)
        extra = dict(no_repeat_ngram_size=2, repetition_penalty=1.5)
        padding = None if model.config.is_encoder_decoder else (mask == 0).sum(1).repeat_interleave(k)
        ours = LogitsProcessorList([transformers.RepetitionPenaltyLogitsProcessor(1.5, prompt_ignore_length=padding),
                                    transformers.NoRepeatNGramLogitsProcessor(2)])
    reference = model.generate(ids, attention_mask=mask, num_beams=k, num_return_sequences=k, do_sample=False,
                               length_penalty=0.0, early_stopping=True, max_new_tokens=steps,
                               output_scores=True, return_dict_in_generate=True, **extra)
    out = beam_search(model, ids, mask, num_beams=k, num_return_sequences=k, early_stopping=True,
                      max_new_tokens=steps, logits_processor=ours)
    prefix = out.sequences.shape[1] - int(out.lengths.max())
    for row, length in enumerate(out.lengths.tolist()):
        assert out.sequences[row, :prefix + length].tolist() == reference.sequences[row, :prefix + length].tolist()
        assert (out.sequences[row, prefix + length:] == PAD).all()
    torch.testing.assert_close(out.scores, reference.sequences_scores, atol=1e-5, rtol=1e-5)


# ------------------------------------------------------------------------------------------------------------
# diverse beam search
def test_groups_without_penalty_are_independent_ordinary_beam_searches():
    """With diversity_penalty 0 the groups never see each other: each of the 3 groups of 2 beams returns exactly
    what an ordinary 2-beam search returns (so the groups are identical). One group of 6 beams is a different
    search (it shares its beams among more candidates), which is why "penalty 0" means this and not that."""
    model = gpt2()
    ids, mask = prompts()
    grouped = beam_search(model, ids, mask, num_beams=6, num_beam_groups=3, max_new_tokens=5, num_return_sequences=6)
    single = beam_search(model, ids, mask, num_beams=2, max_new_tokens=5, num_return_sequences=2)
    for row in range(2):
        rows = range(row * 6, row * 6 + 6)
        for g in range(3):
            mine = [i for i in rows if grouped.groups[i] == g]
            assert len(mine) == 2
            torch.testing.assert_close(grouped.scores[mine], single.scores[row * 2: row * 2 + 2])
            width = single.sequences.shape[1]
            assert grouped.sequences[mine, :width].tolist() == single.sequences[row * 2: row * 2 + 2].tolist()


class FavourAtFirstStep(LogitsProcessor):
    """At the first generated position, a strong bias toward one token (renormalised): every beam of an
    ordinary search then starts with it."""

    def __init__(self, prompt_length: int, token: int, bias: float = 6.0):
        self.prompt_length, self.token, self.bias = prompt_length, token, bias

    def __call__(self, input_ids, scores):
        if input_ids.shape[1] != self.prompt_length:
            return scores
        scores = scores.clone()
        scores[:, self.token] += self.bias
        return scores.log_softmax(-1)


def _first_token_overlap(out, groups: int, prefix: int) -> float:
    """Share of group pairs whose best hypotheses start with the same token (one batch row)."""
    firsts = [int(out.sequences[[i for i in range(len(out.groups)) if out.groups[i] == g][0], prefix])
              for g in range(groups)]
    pairs = list(itertools.combinations(firsts, 2))
    return sum(a == b for a, b in pairs) / len(pairs)


def test_diversity_penalty_spreads_the_groups_first_tokens():
    model = gpt2()
    ids = torch.tensor([[BOS, 3, 4, 5]])
    favour = LogitsProcessorList([FavourAtFirstStep(ids.shape[1], token=6)])
    ordinary = beam_search(model, ids, num_beams=4, max_new_tokens=3, num_return_sequences=4, logits_processor=favour)
    assert set(ordinary.sequences[:, ids.shape[1]].tolist()) == {6}  # near-duplicates: one shared first token
    same = beam_search(model, ids, num_beams=4, num_beam_groups=4, max_new_tokens=3, num_return_sequences=4,
                       logits_processor=favour)
    diverse = beam_search(model, ids, num_beams=4, num_beam_groups=4, diversity_penalty=10.0, max_new_tokens=3,
                          num_return_sequences=4, logits_processor=favour)
    assert _first_token_overlap(same, 4, ids.shape[1]) == 1.0
    assert _first_token_overlap(diverse, 4, ids.shape[1]) == 0.0
    # the penalty only steers the choice: each hypothesis keeps its own log P
    torch.testing.assert_close(diverse.log_probs,
                               decoder_log_probs(model, ids, torch.ones_like(ids), diverse.sequences, diverse.lengths,
                                                 favour), atol=1e-5, rtol=1e-5)


# ------------------------------------------------------------------------------------------------------------
# GNMT length normalisation and coverage penalty
class Scripted(LogitsProcessor):
    """Replaces each step's distribution by a fixed one, ``table[step]``: {token: probability}, the rest
    impossible — the scores then do not depend on the model."""

    def __init__(self, prompt_length: int, table: list[dict[int, float]]):
        self.prompt_length, self.table = prompt_length, table

    def __call__(self, input_ids, scores):
        out = torch.full_like(scores, float("-inf"))
        for token, p in self.table[input_ids.shape[1] - self.prompt_length].items():
            out[:, token] = math.log(p)
        return out


def test_gnmt_length_normalisation_changes_the_winner():
    """EOS at once: log 0.4 = -0.916. "3 3 3 3 EOS": log(0.6 · 0.9^4) = -0.932. α = 0: the short one wins;
    α = 1: lp(5) = (5 + 5) / 6, -0.932 / (10/6) = -0.559 beats -0.916 / lp(1) = -0.916, the long one wins."""
    model = gpt2()
    ids = torch.tensor([[BOS, 3]])
    table = [{EOS: 0.4, 3: 0.6}, {3: 0.9, EOS: 0.1}, {3: 0.9, EOS: 0.1}, {3: 0.9, EOS: 0.1}, {EOS: 0.9, 3: 0.1}]
    script = LogitsProcessorList([Scripted(ids.shape[1], table)])
    short, long_ = [EOS], [3, 3, 3, 3, EOS]
    raw = beam_search(model, ids, num_beams=2, max_new_tokens=5, logits_processor=script, num_return_sequences=2)
    assert raw.sequences[0, 2:2 + int(raw.lengths[0])].tolist() == short
    assert raw.scores[0].item() == pytest.approx(math.log(0.4), abs=1e-5)
    assert raw.sequences[1, 2:].tolist() == long_
    assert raw.scores[1].item() == pytest.approx(math.log(0.6 * 0.9 ** 4), abs=1e-5)
    gnmt = beam_search(model, ids, num_beams=2, max_new_tokens=5, logits_processor=script, num_return_sequences=2,
                       length_penalty=1.0)
    assert gnmt.sequences[0, 2:].tolist() == long_
    assert gnmt.scores[0].item() == pytest.approx(math.log(0.6 * 0.9 ** 4) / (10 / 6), abs=1e-5)
    assert gnmt.log_probs[0].item() == pytest.approx(math.log(0.6 * 0.9 ** 4), abs=1e-5)
    assert gnmt.scores[1].item() == pytest.approx(math.log(0.4), abs=1e-5)
    # early_stopping=True stops at k = 2 finished ("EOS", then "3 EOS" at step 1) and misses the long one; the
    # default (False) waits while a running hypothesis could still win: s / lp(5) with s its log P so far
    hasty = beam_search(model, ids, num_beams=2, max_new_tokens=5, logits_processor=script, length_penalty=1.0,
                        early_stopping=True, num_return_sequences=2)
    assert hasty.lengths.tolist() == [1, 2] and hasty.sequences[:, 2:].tolist() == [[EOS, PAD], [3, EOS]]


def test_length_normalizer_forms():
    lengths = torch.tensor([1, 3, 10])
    torch.testing.assert_close(length_normalizer(lengths, 0.6), ((5 + lengths.float()) / 6) ** 0.6)
    torch.testing.assert_close(length_normalizer(lengths, 0.6, "power"), lengths.float() ** 0.6)
    torch.testing.assert_close(length_normalizer(lengths, 0.0), torch.ones(3))
    torch.testing.assert_close(length_normalizer(lengths, None, "power"), torch.ones(3))
    assert length_normalizer(1, 0.7).item() == pytest.approx(1.0)  # lp(1) = 1 in GNMT's form


def test_coverage_penalty_on_a_hand_made_attention_matrix():
    # 3 target steps × 4 source positions, the last one padding
    attention = torch.tensor([[0.5, 0.3, 0.2, 0.0], [0.6, 0.2, 0.2, 0.0], [0.1, 0.1, 0.8, 0.0]])
    coverage = attention.sum(0)  # [1.2, 0.6, 1.2, 0]: positions 0 and 2 fully covered, 1 at 0.6
    source_mask = torch.tensor([1, 1, 1, 0])
    assert coverage_penalty(coverage, 0.2, source_mask).item() == pytest.approx(0.2 * math.log(0.6))
    assert coverage_penalty(coverage, 0.0, source_mask).item() == 0.0
    # an unattended real position costs beta · log(1e-10), not -inf
    assert coverage_penalty(coverage, 0.2).item() == pytest.approx(0.2 * (math.log(0.6) + math.log(1e-10)), rel=1e-5)


@pytest.mark.parametrize("build", [harness_rnn_seq2seq, harness_transformer_seq2seq],
                         ids=["rnn_seq2seq_bahdanau", "transformer_seq2seq"])
def test_final_scores_are_gnmt_scores_of_the_returned_hypotheses(build):
    """score = log P / lp(|Y|) + β Σ_i log min(Σ_j p_ij, 1), the attention recomputed by one teacher-forced
    forward of each returned hypothesis (mean over layers and heads), padded source positions left out."""
    model = build()
    ids, mask = sources()
    alpha, beta = 0.6, 0.4
    out = beam_search(model, ids, mask, num_beams=4, num_beam_groups=2, diversity_penalty=0.3, max_new_tokens=5,
                      num_return_sequences=4, length_penalty=alpha, coverage_penalty=beta)
    R = 4
    with torch.no_grad():
        forward = model(input_ids=ids.repeat_interleave(R, 0), attention_mask=mask.repeat_interleave(R, 0),
                        decoder_input_ids=out.sequences[:, :-1], output_attentions=True, use_cache=False)
    attention = torch.stack([a.float().mean(1) for a in forward.cross_attentions]).mean(0)  # (B*R, T, S)
    steps = torch.arange(attention.shape[1])[None, :, None] < out.lengths[:, None, None]
    coverage = (attention * steps).sum(1)  # (B*R, S)
    expected = (out.log_probs / length_normalizer(out.lengths, alpha)
                + coverage_penalty(coverage, beta, mask.repeat_interleave(R, 0)))
    torch.testing.assert_close(out.scores, expected, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(out.log_probs, decoder_log_probs(model, ids, mask, out.sequences, out.lengths),
                               atol=1e-5, rtol=1e-5)


def test_coverage_penalty_needs_cross_attention():
    ids, mask = prompts()
    with pytest.raises(ValueError, match="coverage_penalty"):
        beam_search(gpt2(), ids, mask, num_beams=2, max_new_tokens=2, coverage_penalty=0.2)
    src, src_mask = sources()
    with pytest.raises(ValueError, match="coverage_penalty"):  # no attention, no cross_attentions
        beam_search(harness_rnn_seq2seq("none"), src, src_mask, num_beams=2, max_new_tokens=2, coverage_penalty=0.2)


# ------------------------------------------------------------------------------------------------------------
# settings
@pytest.mark.parametrize("kwargs, name", [
    (dict(num_beams=4, num_beam_groups=3), "num_beam_groups"),
    (dict(num_beams=4, diversity_penalty=1.0), "diversity_penalty"),
    (dict(num_beams=4, num_beam_groups=2, diversity_penalty=-1.0), "diversity_penalty"),
    (dict(num_beams=2, num_return_sequences=3), "num_return_sequences"),
    (dict(num_beams=2, length_penalty=-0.5), "length_penalty"),
    (dict(num_beams=2, length_normalization="average"), "length_normalization"),
    (dict(num_beams=2, coverage_penalty=-0.1), "coverage_penalty"),
    (dict(num_beams=0), "num_beams"),
    (dict(num_beams=2, max_new_tokens=0), "max_new_tokens"),
    (dict(num_beams=2, early_stopping="never"), "early_stopping"),
    (dict(num_beams=2, eos_token_id=[2, -1]), "eos_token_id"),
])
def test_invalid_settings_name_the_argument(kwargs, name):
    kwargs.setdefault("max_new_tokens", 3)
    with pytest.raises(ValueError, match=name):
        BeamSearchSettings(**kwargs)
    ids, mask = prompts()
    with pytest.raises(ValueError, match=name):
        beam_search(gpt2(), ids, mask, **kwargs)


def test_settings_object_options_and_generation_config():
    settings = BeamSearchSettings(num_beams=4, max_new_tokens=3, num_beam_groups=2, diversity_penalty=0.5)
    assert settings.beams_per_group == 2
    ids, mask = prompts()
    model = gpt2()
    a = beam_search(model, ids, mask, settings, num_return_sequences=2)
    b = beam_search(model, ids, mask, num_beams=4, max_new_tokens=3, num_beam_groups=2, diversity_penalty=0.5,
                    num_return_sequences=2)
    assert torch.equal(a.sequences, b.sequences) and a.sequences.shape[0] == 4
    config = transformers.GenerationConfig(num_beams=6, max_new_tokens=4, num_beam_groups=3, diversity_penalty=1.0,
                                           early_stopping="never", length_penalty=2.0, eos_token_id=EOS)
    converted = BeamSearchSettings.from_generation_config(config, length_penalty=0.6)
    assert (converted.num_beams, converted.num_beam_groups, converted.diversity_penalty, converted.early_stopping,
            converted.length_penalty, converted.eos_token_id) == (6, 3, 1.0, False, 0.6, EOS)
    with pytest.raises(ValueError, match="attention_mask"):
        beam_search(model, ids, mask[:, 1:], settings)


@pytest.mark.parametrize("build, inputs, extra", [
    (gpt2, prompts, {}),
    (harness_rnn_lm, prompts, {}),
    (t5, sources, {}),
    (harness_rnn_seq2seq, sources, {"length_normalization": "gnmt", "coverage_penalty": 0.2}),
    (harness_transformer_seq2seq, sources, {"length_normalization": "gnmt", "coverage_penalty": 0.2}),
], ids=["gpt2", "rnn-lm", "t5", "rnn-seq2seq-gnmt-coverage", "transformer-seq2seq-gnmt-coverage"])
def test_generate_runs_this_search_through_custom_generate(build, inputs, extra):
    from harness.generation.search import harness_generate

    model = build()
    ids, mask = inputs()
    config = transformers.GenerationConfig(num_beams=4, num_beam_groups=2, diversity_penalty=0.5, max_new_tokens=4,
                                           length_penalty=0.6, num_return_sequences=2, no_repeat_ngram_size=2, **extra)
    with pytest.raises(ValueError, match="trust_remote_code"):  # transformers 5 alone: group beam search is gone
        model.generate(ids, attention_mask=mask, generation_config=config)
    through_generate = model.generate(ids, attention_mask=mask, generation_config=config,
                                      custom_generate=harness_generate)
    processors = LogitsProcessorList([transformers.NoRepeatNGramLogitsProcessor(2)])
    direct = beam_search(model, ids, mask, num_beams=4, num_beam_groups=2, diversity_penalty=0.5, max_new_tokens=4,
                         length_penalty=0.6, num_return_sequences=2, logits_processor=processors,
                         length_normalization=extra.get("length_normalization", "power"),
                         coverage_penalty=extra.get("coverage_penalty", 0.0)).sequences
    assert through_generate.shape[0] == 2 * ids.shape[0]
    assert torch.equal(through_generate, direct)
