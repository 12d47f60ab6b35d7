"""``generate`` with the recurrent state as the cache: greedy, beam search, sampling, padding, continuation.

The reference for every cached run is the same decoding done by full forwards over the growing prefix."""

from __future__ import annotations

import pytest
import torch

from harness.models.rnn import RNNConfig, RNNForCausalLM, RNNState

CELLS = ["rnn_tanh", "rnn_relu", "gru", "lstm"]
V = 30


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def lm(cell: str, **kw) -> RNNForCausalLM:
    torch.manual_seed(0)
    # a wide init range makes the tiny model's predictions depend on the context (not one constant token)
    args = dict(vocab_size=V, embedding_size=16, hidden_size=16, num_layers=2, cell=cell, pad_token_id=0,
                bos_token_id=2, eos_token_id=3, init_range=0.5)
    args.update(kw)
    return RNNForCausalLM(RNNConfig(**args)).eval()


def prompt(batch=2, time=4, seed=0):
    return torch.randint(4, V, (batch, time), generator=torch.Generator().manual_seed(seed))


def greedy_by_full_forwards(model, x, steps):
    with torch.no_grad():
        for _ in range(steps):
            nxt = model(x, use_cache=False).logits[:, -1].argmax(-1)
            x = torch.cat([x, nxt[:, None]], dim=1)
    return x


def count_forwards(model):
    calls = []
    handle = model.register_forward_pre_hook(
        lambda mod, args, kwargs: calls.append((kwargs["input_ids"].shape[1], kwargs.get("past_key_values"))),
        with_kwargs=True,
    )
    return calls, handle


@pytest.mark.parametrize("cell", CELLS)
def test_last_token_logits_with_cache_equal_a_full_forward(cell):
    model = lm(cell, residual=True, layer_norm=True)
    x = prompt(2, 9)
    with torch.no_grad():
        state = model(x[:, :-1]).past_key_values
        cached = model(x[:, -1:], past_key_values=state).logits[:, -1]
        full = model(x, use_cache=False).logits[:, -1]
    torch.testing.assert_close(cached, full, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("cell", CELLS)
def test_greedy_generate_feeds_one_token_per_step_and_equals_full_forwards(cell):
    model = lm(cell)
    x = prompt()
    calls, handle = count_forwards(model)
    out = model.generate(x, max_new_tokens=6, do_sample=False, eos_token_id=None)
    handle.remove()
    assert [n for n, _ in calls] == [4, 1, 1, 1, 1, 1]  # the prompt once, then only the new token
    assert calls[0][1] is None and all(isinstance(s, RNNState) for _, s in calls[1:])
    assert torch.equal(out, greedy_by_full_forwards(model, x, 6))
    assert torch.equal(out, model.generate(x, max_new_tokens=6, do_sample=False, eos_token_id=None, use_cache=False))


@pytest.mark.parametrize("cell", CELLS)
def test_beam_search_with_the_state_reordered_equals_beam_search_without_cache(cell):
    model = lm(cell)
    x = prompt()
    kw = dict(max_new_tokens=5, num_beams=3, num_return_sequences=2, do_sample=False, eos_token_id=None)
    beams = model.generate(x, **kw)
    assert beams.shape == (4, 9) and torch.equal(beams[::2, :4], x) and torch.equal(beams[1::2, :4], x)
    assert beams.min() >= 0 and beams.max() < V
    # without a cache every step re-reads the whole beam; equality means reorder_cache kept the right rows
    assert torch.equal(beams, model.generate(x, use_cache=False, **kw))


def test_exhaustive_beam_search_equals_brute_force():
    """With as many beams as words, two steps of beam search must find the best of all V² continuations."""
    import itertools

    model = lm("lstm")
    x = prompt(1, 4)
    best = model.generate(x, max_new_tokens=2, num_beams=V, do_sample=False, eos_token_id=None, length_penalty=0.0)
    pairs = torch.tensor(list(itertools.product(range(V), repeat=2)))  # (V², 2)
    seqs = torch.cat([x.expand(len(pairs), -1), pairs], dim=1)
    with torch.no_grad():
        lp = model(seqs, use_cache=False).logits.log_softmax(-1)
    scores = lp[:, 3:-1].gather(-1, seqs[:, 4:, None]).squeeze(-1).sum(-1)
    assert torch.equal(best[0], seqs[scores.argmax()])


@pytest.mark.parametrize("cell", CELLS)
def test_sampling_with_top_k_and_top_p(cell):
    model = lm(cell)
    x = prompt()
    torch.manual_seed(1)
    a = model.generate(x, max_new_tokens=6, do_sample=True, top_k=5, top_p=0.9, num_return_sequences=3)
    torch.manual_seed(1)
    b = model.generate(x, max_new_tokens=6, do_sample=True, top_k=5, top_p=0.9, num_return_sequences=3)
    assert a.shape[0] == 6 and a.shape[1] <= 10 and torch.equal(a[:, :4], x.repeat_interleave(3, dim=0))
    assert a.min() >= 0 and a.max() < V
    assert torch.equal(a, b)  # same seed, same samples
    # top_k=1 sampling is greedy
    assert torch.equal(model.generate(x, max_new_tokens=4, do_sample=True, top_k=1, eos_token_id=None),
                       model.generate(x, max_new_tokens=4, do_sample=False, eos_token_id=None))


@pytest.mark.parametrize("side", ["left", "right"])
def test_padded_prompts_generate_like_unpadded_ones(side):
    model = lm("lstm")
    rows = [prompt(1, 5, seed=1)[0], prompt(1, 2, seed=2)[0]]
    x = torch.zeros(2, 5, dtype=torch.long)
    for i, r in enumerate(rows):
        if side == "left":
            x[i, 5 - len(r):] = r
        else:
            x[i, : len(r)] = r
    mask = (x != 0).long()
    out = model.generate(x, attention_mask=mask, max_new_tokens=4, do_sample=False, eos_token_id=None)
    for i, r in enumerate(rows):
        single = model.generate(r[None], max_new_tokens=4, do_sample=False, eos_token_id=None)
        assert torch.equal(out[i, 5:], single[0, len(r):])


def test_generate_continues_from_a_state_the_caller_passes():
    model = lm("gru")
    x = prompt(2, 6)
    with torch.no_grad():
        state = model(x[:, :4]).past_key_values
    cont = model.generate(x, past_key_values=state, max_new_tokens=4, do_sample=False, eos_token_id=None,
                          return_dict_in_generate=True)
    fresh = model.generate(x, max_new_tokens=4, do_sample=False, eos_token_id=None)
    assert torch.equal(cont.sequences, fresh)
    assert isinstance(cont.past_key_values, RNNState) and cont.past_key_values.get_seq_length() == 9


def test_generation_config_takes_the_special_tokens():
    model = lm("lstm")
    assert model.generation_config.eos_token_id == 3 and model.generation_config.pad_token_id == 0
    assert model.generation_config.bos_token_id == 2
    out = model.generate(max_new_tokens=3, do_sample=False)  # no prompt: starts from BOS
    assert out.shape[0] == 1 and out[0, 0] == 2


def test_generate_returns_scores_hidden_states_and_the_state():
    model = lm("lstm")
    x = prompt()
    out = model.generate(x, max_new_tokens=3, do_sample=False, eos_token_id=None, return_dict_in_generate=True,
                         output_scores=True, output_hidden_states=True)
    assert len(out.scores) == 3 and out.scores[0].shape == (2, V)
    assert len(out.hidden_states) == 3 and out.hidden_states[1][-1].shape == (2, 1, 16)  # one token per step
    assert isinstance(out.past_key_values, RNNState)
    with pytest.raises(ValueError, match="no attention weights"):
        model.generate(x, max_new_tokens=2, output_attentions=True, return_dict_in_generate=True)
