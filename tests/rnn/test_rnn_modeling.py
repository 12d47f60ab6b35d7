"""The recurrent family as transformers models: config validation, head shapes, the cell equations,
save → Auto-load round trips, tied embeddings, losses, the cache (chunked == full) and padding invariance."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import load_file
from transformers import (
    AutoConfig,
    AutoModel,
    AutoModelForCausalLM,
    AutoModelForSequenceClassification,
    AutoModelForTokenClassification,
)

from harness.models.rnn import (
    RNNConfig,
    RNNForCausalLM,
    RNNForSequenceClassification,
    RNNForTokenClassification,
    RNNModel,
    RNNState,
)
from harness.models.rnn.diagnostics import unrolled_forward

CELLS = ["rnn_tanh", "rnn_relu", "gru", "lstm"]
V = 30


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Tiny tensors: threads only add contention on a busy 2-core machine (10x slower here)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def tiny(cell="lstm", **kw) -> RNNConfig:
    args = dict(vocab_size=V, embedding_size=16, hidden_size=16, num_layers=2, cell=cell, pad_token_id=0,
                bos_token_id=2, eos_token_id=3, num_labels=3, init_range=0.3)
    args.update(kw)
    return RNNConfig(**args)


def ids(batch=3, time=7, seed=0) -> torch.LongTensor:
    return torch.randint(4, V, (batch, time), generator=torch.Generator().manual_seed(seed))


# --- config ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"cell": "lstmm"}, "cell must be one of"),
        ({"hidden_size": 0}, "hidden_size must be a positive integer, got 0"),
        ({"num_layers": 1.5}, "num_layers must be a positive integer"),
        ({"dropout": 1.0}, "dropout must be a probability in [0, 1), got 1.0"),
        ({"classifier_dropout": -0.1}, "classifier_dropout must be a probability"),
        ({"pooling": "first"}, "pooling must be one of"),
        ({"bidirectional": "yes"}, "bidirectional must be true or false"),
        ({"init_range": 0}, "init_range must be > 0"),
        ({"pad_token_id": 30}, "pad_token_id must be None or an id in [0, vocab_size=30), got 30"),
    ],
)
def test_config_validation_errors(kwargs, message):
    with pytest.raises(ValueError) as err:
        tiny(**kwargs)
    assert message in str(err.value)


def test_causal_lm_refuses_bidirectional():
    with pytest.raises(ValueError, match="bidirectional=False, got True"):
        RNNForCausalLM(tiny(bidirectional=True))
    with pytest.raises(ValueError, match="bidirectional"):
        AutoModelForCausalLM.from_config(tiny(bidirectional=True))


def test_config_round_trip_and_auto_config(tmp_path):
    cfg = tiny(cell="gru", residual=True, layer_norm=True, pooling="mean")
    cfg.save_pretrained(tmp_path)
    again = AutoConfig.from_pretrained(tmp_path)
    assert isinstance(again, RNNConfig) and again.model_type == "harness_rnn"
    for key in ("cell", "residual", "layer_norm", "pooling", "hidden_size", "num_labels"):
        assert getattr(again, key) == getattr(cfg, key)
    assert isinstance(AutoConfig.for_model("harness_rnn"), RNNConfig)


# --- shapes ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("bidirectional", [False, True])
def test_shapes_of_every_head(cell, bidirectional):
    cfg = tiny(cell, bidirectional=bidirectional, embedding_size=12)
    d = 2 if bidirectional else 1
    x = ids(3, 7)
    base = RNNModel(cfg)(x, output_hidden_states=True)
    assert base.last_hidden_state.shape == (3, 7, 16 * d)
    assert len(base.hidden_states) == 3 and base.hidden_states[0].shape == (3, 7, 12)
    state = base.past_key_values
    assert isinstance(state, RNNState) and len(state) == 2 and state.get_seq_length() == 7
    assert all(h.shape == (d, 3, 16) for h in state.hidden)
    assert (state.cell is not None) == (cell == "lstm")
    seq = RNNForSequenceClassification(cfg)(x, labels=torch.tensor([0, 2, 1]))
    assert seq.logits.shape == (3, 3) and seq.loss.ndim == 0
    tok = RNNForTokenClassification(cfg)(x, labels=torch.zeros(3, 7, dtype=torch.long))
    assert tok.logits.shape == (3, 7, 3) and tok.loss.ndim == 0
    if not bidirectional:
        lm = RNNForCausalLM(cfg)(x, labels=x)
        assert lm.logits.shape == (3, 7, V) and lm.loss.ndim == 0
        assert isinstance(lm.past_key_values, RNNState)
        assert RNNForCausalLM(cfg)(x, logits_to_keep=1).logits.shape == (3, 1, V)
    # tuples when return_dict=False
    assert RNNModel(cfg)(x, return_dict=False)[0].shape == (3, 7, 16 * d)


# --- the cells compute the documented equations ----------------------------------------------------
@pytest.mark.parametrize("cell", CELLS)
def test_fused_stack_matches_the_written_out_equations(cell):
    torch.manual_seed(0)
    for extra in ({}, {"residual": True, "layer_norm": True}):
        model = RNNModel(tiny(cell, **extra)).eval()
        x = ids(2, 9)
        top, states = unrolled_forward(model, x)
        out = model(x)
        torch.testing.assert_close(top, out.last_hidden_state, atol=1e-5, rtol=1e-5)
        for layer in range(2):
            torch.testing.assert_close(states[layer][-1], out.past_key_values.hidden[layer][0], atol=1e-5, rtol=1e-5)


def test_init_is_uniform_with_the_forget_bias():
    model = RNNForCausalLM(tiny("lstm", init_range=0.1, forget_bias=1.0))
    for name, p in model.named_parameters():
        if name.endswith("lm_head.bias"):
            assert torch.all(p == 0)
        elif "bias" not in name:
            assert p.abs().max() <= 0.1, name
    rnn = model.rnn.layers[0].rnn
    total = rnn.bias_ih_l0 + rnn.bias_hh_l0
    torch.testing.assert_close(total[16:32], torch.ones(16))  # the forget gate rows


# --- save → Auto-load ----------------------------------------------------------------------------
@pytest.mark.parametrize("cell", CELLS)
def test_save_and_auto_load_reproduce_logits(cell, tmp_path):
    torch.manual_seed(0)
    x = ids(2, 6)
    cases = [
        (RNNForCausalLM(tiny(cell, tie_word_embeddings=True, embedding_size=12, layer_norm=True)), AutoModelForCausalLM),
        (RNNForSequenceClassification(tiny(cell, bidirectional=True, residual=True)), AutoModelForSequenceClassification),
        (RNNForTokenClassification(tiny(cell, bidirectional=True)), AutoModelForTokenClassification),
        (RNNModel(tiny(cell)), AutoModel),
    ]
    for i, (model, auto) in enumerate(cases):
        model.eval()
        path = tmp_path / str(i)
        model.save_pretrained(path)
        assert (path / "model.safetensors").is_file()
        loaded = auto.from_pretrained(path).eval()
        assert type(loaded) is type(model)
        # weights copied off the file buffer: unaligned CPU memory changes the last bit of the outputs
        assert all(p.data_ptr() % 64 == 0 for p in loaded.parameters())
        with torch.no_grad():
            a, b = model(x), loaded(x)
        key = "last_hidden_state" if isinstance(model, RNNModel) else "logits"
        assert torch.equal(a[key], b[key]), type(model).__name__


def test_tied_embeddings_survive_the_round_trip(tmp_path):
    for emb, hidden in ((16, 16), (12, 16)):
        model = RNNForCausalLM(tiny("lstm", embedding_size=emb, hidden_size=hidden, tie_word_embeddings=True))
        assert model.lm_head.weight is model.rnn.embeddings.weight
        assert (model.lm_proj is None) == (emb == hidden)  # a projection only when the sizes differ
        model.save_pretrained(tmp_path / str(emb))
        stored = load_file(tmp_path / str(emb) / "model.safetensors")
        assert "rnn.embeddings.weight" in stored and "lm_head.weight" not in stored  # one copy on disk
        loaded = AutoModelForCausalLM.from_pretrained(tmp_path / str(emb))
        assert loaded.lm_head.weight.data_ptr() == loaded.rnn.embeddings.weight.data_ptr()
        torch.testing.assert_close(loaded.lm_head.weight, model.lm_head.weight, rtol=0, atol=0)
        loaded.resize_token_embeddings(V + 4)  # transformers' resizing keeps the tie
        assert loaded.lm_head.weight is loaded.rnn.embeddings.weight and loaded.lm_head.bias.shape == (V + 4,)
    untied = RNNForCausalLM(tiny("gru", embedding_size=12, tie_word_embeddings=False))
    assert untied.lm_head.weight.shape == (V, 16) and untied.lm_proj is None
    assert untied.lm_head.weight.data_ptr() != untied.rnn.embeddings.weight.data_ptr()


# --- losses ---------------------------------------------------------------------------------------
def test_lm_loss_is_shifted_and_ignores_minus_100_and_padding():
    torch.manual_seed(0)
    model = RNNForCausalLM(tiny("gru")).eval()
    x = ids(2, 6)
    labels = x.clone()
    labels[0, 3] = -100
    out = model(x, labels=labels)
    logits = out.logits[:, :-1].reshape(-1, V)
    target = labels[:, 1:].reshape(-1)
    keep = target != -100
    torch.testing.assert_close(out.loss, F.cross_entropy(logits[keep], target[keep]))
    # right padding: the loss over the padded batch is the token-weighted loss of the unpadded rows
    mask = torch.ones_like(x)
    mask[1, 4:] = 0
    padded = x.clone()
    padded[1, 4:] = 0
    loss = model(padded, attention_mask=mask, labels=padded).loss
    l0 = model(x[:1], labels=x[:1]).loss
    l1 = model(x[1:, :4], labels=x[1:, :4]).loss
    torch.testing.assert_close(loss, (5 * l0 + 3 * l1) / 8)


def test_token_classification_loss_ignores_minus_100_and_padding():
    torch.manual_seed(0)
    model = RNNForTokenClassification(tiny("lstm", bidirectional=True)).eval()
    x = ids(2, 5)
    labels = torch.randint(0, 3, (2, 5), generator=torch.Generator().manual_seed(1))
    labels[0, 1] = -100
    mask = torch.ones_like(x)
    mask[1, 3:] = 0
    out = model(x, attention_mask=mask, labels=labels)
    keep = (labels != -100) & mask.bool()
    torch.testing.assert_close(out.loss, F.cross_entropy(out.logits[keep], labels[keep]))


def test_sequence_classification_problem_types():
    x = ids(4, 5)
    reg = RNNForSequenceClassification(tiny("gru", num_labels=1, problem_type="regression"))
    out = reg(x, labels=torch.tensor([0.5, 1.0, -1.0, 2.0]))
    torch.testing.assert_close(out.loss, F.mse_loss(out.logits.squeeze(-1), torch.tensor([0.5, 1.0, -1.0, 2.0])))
    multi = RNNForSequenceClassification(tiny("gru", problem_type="multi_label_classification"))
    y = torch.tensor([[1.0, 0, 1], [0, 0, 1], [1, 1, 1], [0, 0, 0]])
    out = multi(x, labels=y)
    torch.testing.assert_close(out.loss, F.binary_cross_entropy_with_logits(out.logits, y))


# --- the cache ------------------------------------------------------------------------------------
@pytest.mark.parametrize("cell", CELLS)
def test_cached_chunks_equal_one_full_forward(cell):
    torch.manual_seed(0)
    model = RNNForCausalLM(tiny(cell, residual=True, layer_norm=True)).eval()
    x = ids(2, 10)
    with torch.no_grad():
        full = model(x).logits
        state, pieces = None, []
        for start, end in ((0, 4), (4, 5), (5, 6), (6, 10)):  # a prompt, then single tokens, then a chunk
            out = model(x[:, start:end], past_key_values=state)
            state = out.past_key_values
            pieces.append(out.logits)
    torch.testing.assert_close(torch.cat(pieces, dim=1), full, atol=1e-5, rtol=1e-5)
    assert state.get_seq_length() == 10


def test_truncated_bptt_chunks_with_shift_labels_give_the_full_loss():
    torch.manual_seed(0)
    model = RNNForCausalLM(tiny("lstm"))
    x = ids(2, 13)
    full = model(x, labels=x).loss  # 12 predictions per row
    state, total = None, 0.0
    for start in range(0, 12, 4):  # chunks x[:, 0:4], x[:, 4:8], x[:, 8:12]; targets one ahead
        out = model(x[:, start:start + 4], shift_labels=x[:, start + 1:start + 5], past_key_values=state)
        out.loss.backward()  # each chunk backpropagates only into itself
        total += out.loss.item() * 8
        state = out.past_key_values.detach()
    assert total / 24 == pytest.approx(full.item(), abs=1e-5)
    with pytest.raises(ValueError, match="not both"):
        model(x, labels=x, shift_labels=x)


def test_state_helpers_and_truncated_bptt():
    torch.manual_seed(0)
    model = RNNForCausalLM(tiny("lstm"))
    x = ids(3, 8)
    state = model(x[:, :4]).past_key_values
    assert state.hidden[0].requires_grad
    cut = state.detach()
    assert not cut.hidden[0].requires_grad and not cut.cell[0].requires_grad and cut.seen_tokens == 4
    out = model(x[:, 4:], past_key_values=cut, labels=x[:, 4:])
    out.loss.backward()  # the graph stops at the cut: no error, gradients reach the weights
    assert model.rnn.embeddings.weight.grad is not None
    h0 = [h.clone() for h in cut.hidden]
    cut.reorder_cache(torch.tensor([2, 2, 0]))
    assert torch.equal(cut.hidden[1][:, 0], h0[1][:, 2]) and torch.equal(cut.hidden[1][:, 2], h0[1][:, 0])
    cut.batch_repeat_interleave(2)
    assert cut.batch_size == 6 and torch.equal(cut.cell[0][:, 1], cut.cell[0][:, 0])
    cut.batch_select_indices(torch.tensor([0, 5]))
    assert cut.batch_size == 2
    with pytest.raises(ValueError, match="expected 2 layers x batch 3"):
        model(x, past_key_values=cut)


# --- padding never changes a real token's state -----------------------------------------------------
def _pad(rows, length, side):
    x = torch.zeros(len(rows), length, dtype=torch.long)
    mask = torch.zeros(len(rows), length, dtype=torch.long)
    for i, r in enumerate(rows):
        sl = slice(0, len(r)) if side == "right" else slice(length - len(r), length)
        x[i, sl] = r
        mask[i, sl] = 1
    return x, mask


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("side", ["left", "right"])
def test_padding_invariance_for_every_head(cell, side):
    torch.manual_seed(0)
    rows = [ids(1, n, seed=n)[0] for n in (6, 3, 5)]
    x, mask = _pad(rows, 6, side)
    real = mask.bool()
    for bidirectional in (False, True):
        cfg = tiny(cell, bidirectional=bidirectional, residual=True, layer_norm=True)
        base = RNNModel(cfg).eval()
        heads = [RNNForSequenceClassification(tiny(cell, bidirectional=bidirectional, pooling=p)).eval()
                 for p in ("last", "mean", "max")]
        tagger = RNNForTokenClassification(cfg).eval()
        with torch.no_grad():
            batch = base(x, attention_mask=mask)
            batch_heads = [h(x, attention_mask=mask).logits for h in heads]
            batch_tags = tagger(x, attention_mask=mask).logits
            for i, r in enumerate(rows):
                single = base(r[None])
                torch.testing.assert_close(batch.last_hidden_state[i][real[i]], single.last_hidden_state[0],
                                           atol=1e-5, rtol=1e-5)
                for layer in range(2):
                    torch.testing.assert_close(batch.past_key_values.hidden[layer][:, i],
                                               single.past_key_values.hidden[layer][:, 0], atol=1e-5, rtol=1e-5)
                for h, logits in zip(heads, batch_heads):
                    torch.testing.assert_close(logits[i], h(r[None]).logits[0], atol=1e-5, rtol=1e-5)
                torch.testing.assert_close(batch_tags[i][real[i]], tagger(r[None]).logits[0], atol=1e-5, rtol=1e-5)
    # the causal LM: with right padding, the last column still predicts what follows the last real token
    lm = RNNForCausalLM(tiny(cell)).eval()
    with torch.no_grad():
        last = lm(x, attention_mask=mask).logits[:, -1]
        for i, r in enumerate(rows):
            torch.testing.assert_close(last[i], lm(r[None]).logits[0, -1], atol=1e-5, rtol=1e-5)


def test_inner_padding_and_all_padding_rows_keep_the_state():
    torch.manual_seed(0)
    model = RNNModel(tiny("lstm")).eval()
    r = ids(1, 4)[0]
    x = torch.tensor([[r[0], r[1], 0, r[2], r[3]], [0, 0, 0, 0, 0]])
    mask = (x != 0).long()
    with torch.no_grad():
        prev = model(ids(2, 3, seed=5)).past_key_values
        out = model(x, attention_mask=mask, past_key_values=prev)
        first_row = RNNState([h[:, :1] for h in prev.hidden], [c[:, :1] for c in prev.cell], 3)
        single = model(r[None], past_key_values=first_row)
    torch.testing.assert_close(out.last_hidden_state[0, mask[0].bool()], single.last_hidden_state[0],
                               atol=1e-5, rtol=1e-5)
    for layer in range(2):
        # the all-padding row leaves its state untouched
        assert torch.equal(out.past_key_values.hidden[layer][:, 1], prev.hidden[layer][:, 1])
        assert torch.equal(out.past_key_values.cell[layer][:, 1], prev.cell[layer][:, 1])
    assert torch.all(out.last_hidden_state[1] == 0)
