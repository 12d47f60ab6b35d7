"""The recurrent encoder-decoder: every decoder's shapes and cache, generate, the Auto round trip, and training on
the tiny reverse task through ``harness train``."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import torch
import transformers
import yaml
from testkit import reset_accelerate

from harness.cli import main
from harness.models.rnn_seq2seq.configuration_rnn_seq2seq import RNNSeq2SeqConfig
from harness.models.rnn_seq2seq.modeling_rnn_seq2seq import RNNSeq2SeqForConditionalGeneration, Seq2SeqRNNState

VARIANTS = [("none", "general", "gru"), ("bahdanau", "general", "lstm"), ("luong", "dot", "gru"),
            ("luong", "general", "lstm"), ("luong", "concat", "gru"), ("luong", "general", "gru", "deep_output")]
REPO = Path(__file__).resolve().parents[2]


def model(attention, score, cell, *flags, **kw):
    """``flags``: boolean config fields set true (``deep_output``)."""
    torch.manual_seed(0)
    kw.update(dict.fromkeys(flags, True))
    config = RNNSeq2SeqConfig(vocab_size=30, embedding_size=8, hidden_size=12, cell=cell, attention=attention,
                              luong_score=score, dropout=0.0, pad_token_id=0, bos_token_id=1, eos_token_id=2,
                              decoder_start_token_id=1, encoder_layers=2, decoder_layers=2, **kw)
    return RNNSeq2SeqForConditionalGeneration(config).eval()


def inputs():
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(3, 30, (3, 7), generator=g)
    mask = torch.ones_like(ids)
    mask[1, 5:] = 0
    labels = torch.randint(3, 30, (3, 5), generator=g)
    labels[2, 3:] = -100
    return ids, mask, labels


@pytest.mark.parametrize("variant", VARIANTS, ids=["-".join(v) for v in VARIANTS])
def test_step_by_step_with_the_cache_equals_teacher_forcing(variant):
    m = model(*variant)
    ids, mask, labels = inputs()
    full = m(input_ids=ids, attention_mask=mask, labels=labels, output_attentions=True)
    assert full.logits.shape == (3, 5, 30) and torch.isfinite(full.loss)
    decoder_ids = m.prepare_decoder_input_ids_from_labels(labels)
    encoded = m.get_encoder()(ids, mask)
    state, steps = None, []
    for t in range(decoder_ids.shape[1]):
        out = m(attention_mask=mask, decoder_input_ids=decoder_ids[:, : t + 1], encoder_outputs=encoded,
                past_key_values=state, use_cache=True)
        state = out.past_key_values
        steps.append(out.logits[:, -1])
    assert isinstance(state, Seq2SeqRNNState) and state.get_seq_length() == 5
    torch.testing.assert_close(torch.stack(steps, 1), full.logits, atol=1e-5, rtol=1e-5)
    if variant[0] == "none":
        assert full.cross_attentions is None
    else:
        weights = full.cross_attentions[0]
        assert weights.shape == (3, 1, 5, 7)
        assert (weights[1, 0, :, 5:] == 0).all()  # padded source positions get no weight
        torch.testing.assert_close(weights.sum(-1), torch.ones(3, 1, 5))


@pytest.mark.parametrize("variant", VARIANTS, ids=["-".join(v) for v in VARIANTS])
def test_generate_greedy_beam_and_the_auto_round_trip(tmp_path, variant):
    m = model(*variant)
    ids, mask, _ = inputs()
    greedy = m.generate(ids, attention_mask=mask, max_new_tokens=6, do_sample=False)
    assert torch.equal(greedy, m.generate(ids, attention_mask=mask, max_new_tokens=6, do_sample=False, use_cache=False))
    beams = m.generate(ids, attention_mask=mask, max_new_tokens=6, num_beams=3, num_return_sequences=2)
    assert beams.shape[0] == 6
    m.save_pretrained(tmp_path)
    loaded = transformers.AutoModelForSeq2SeqLM.from_pretrained(tmp_path).eval()
    assert type(loaded) is RNNSeq2SeqForConditionalGeneration
    assert torch.equal(loaded.generate(ids, attention_mask=mask, max_new_tokens=6, do_sample=False), greedy)


def test_luong_deep_output_reads_the_attentional_vector_and_the_previous_token():
    m = model("luong", "general", "gru", "deep_output")
    assert m.decoder.readout_size == 12 + 8 and m.output.in_features == 20  # [h̃_t; e_t]
    ids, mask, labels = inputs()
    decoder_ids = m.prepare_decoder_input_ids_from_labels(labels)
    encoded = m.get_encoder()(ids, mask)
    out = m.decoder(m.encoder.embeddings, decoder_ids, encoded.last_hidden_state, mask.bool(),
                    m.decoder.initial_state(encoded.pooler_output))
    torch.testing.assert_close(out.readout[..., 12:], m.encoder.embeddings(decoder_ids))
    assert torch.equal(out.state.feed, out.readout[:, -1, :12])  # input feeding carries h̃_t only


@pytest.mark.parametrize("score", ["dot", "general", "concat"])
def test_luong_attends_over_the_encoder_outputs_themselves(score):
    """Luong et al.'s context is c_t = Σ_j α_tj h_j over the raw encoder states (2 × 12 wide: bidirectional), and
    W_c reads [c_t; s_t] (an earlier version averaged P h_j, the projection its keys used)."""
    m = model("luong", score, "gru")
    ids, mask, labels = inputs()
    seen = []
    m.decoder.combine.register_forward_hook(lambda module, args, out: seen.append(args[0]))
    out = m(input_ids=ids, attention_mask=mask, labels=labels, output_attentions=True)
    weights = out.cross_attentions[0][:, 0]  # (B, T, S)
    contexts = torch.stack([x[:, :24] for x in seen], 1)  # (B, T, M)
    torch.testing.assert_close(contexts, weights @ out.encoder_last_hidden_state)
    assert m.decoder.combine.in_features == 24 + 12


@pytest.mark.parametrize("score, width", [("dot", 12), ("general", 24)])
def test_luong_scaled_scores_are_the_unscaled_ones_over_root_d(score, width):
    """Without input feeding s_t does not depend on the attention, so the two models' scores differ only by the
    factor: softmax(z / √d) = softmax(log softmax(z) / √d). d: the keys' width (dot: P h_j, 12; general: h_j, 24)."""
    scaled = model("luong", score, "gru", input_feeding=False)
    plain = model("luong", score, "gru", input_feeding=False, scale_scores=False)
    assert scaled.config.scale_scores and not plain.config.scale_scores
    plain.load_state_dict(scaled.state_dict())
    ids, mask, labels = inputs()
    weights = [m(input_ids=ids, attention_mask=mask, labels=labels, output_attentions=True).cross_attentions[0][:, 0]
               for m in (scaled, plain)]
    expected = torch.softmax(weights[1].log() / width ** 0.5, -1)  # padded positions: log 0 = −inf → 0 again
    torch.testing.assert_close(weights[0], expected, atol=1e-6, rtol=1e-5)
    assert not torch.allclose(weights[0], weights[1], atol=1e-3)


def test_padding_does_not_change_a_row():
    m = model("bahdanau", "general", "gru")
    ids, _, labels = inputs()
    alone = m(input_ids=ids[:1, :4], labels=labels[:1]).logits
    padded = torch.cat([ids[:1, :4], torch.zeros(1, 3, dtype=torch.long)], 1)
    mask = torch.tensor([[1, 1, 1, 1, 0, 0, 0]])
    torch.testing.assert_close(m(input_ids=padded, attention_mask=mask, labels=labels[:1]).logits, alone,
                               atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("kw, message", [({"attention": "local"}, "attention"), ({"cell": "rnn_tanh"}, "cell"),
                                         ({"dropout": 1.0}, "dropout"), ({"init_range": 0}, "init_range"),
                                         ({"luong_score": "cosine"}, "luong_score"),
                                         ({"scale_scores": "yes"}, "scale_scores")])
def test_config_refuses_bad_values(kw, message):
    with pytest.raises(ValueError, match=message):
        RNNSeq2SeqConfig(**{"vocab_size": 10, **kw})


def _reverse(tmp_path, name, **model):
    body = yaml.safe_load((REPO / "recipes/tiny/rnn_reverse.yaml").read_text())
    body["output_dir"] = str(tmp_path / name)
    body["model"].update(model)
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(body))
    return path


def test_bahdanau_learns_to_reverse_and_draws_its_alignment(tmp_path, fresh_accelerate):
    path = _reverse(tmp_path, "bahdanau")
    assert main(["train", str(path), "data.num_train=800", "data.num_validation=60", "training.num_epochs=5"]) == 0
    metrics = json.loads((tmp_path / "bahdanau" / "metrics.json").read_text())
    assert metrics["validation/exact_match"] >= 0.5  # chance: ~0
    assert (tmp_path / "bahdanau" / "attention_maps.png").is_file()


@pytest.mark.slow
@pytest.mark.parametrize("attention, score", [("bahdanau", "general"), ("luong", "dot"), ("luong", "general")])
def test_attention_decoders_reach_95_percent_exact_match_on_the_tiny_recipe(tmp_path, fresh_accelerate, attention,
                                                                           score):
    path = _reverse(tmp_path, "run", attention=attention, luong_score=score)
    assert main(["train", str(path)]) == 0
    assert json.loads((tmp_path / "run" / "metrics.json").read_text())["validation/exact_match"] >= 0.95


@pytest.mark.slow
@pytest.mark.parametrize("recipe", ["rnn_reverse_scheduled_sampling", "rnn_reverse_professor_forcing",
                                    "transformer_reverse_scheduled_sampling"])
def test_training_variants_reach_95_percent_exact_match_on_their_tiny_recipes(tmp_path, fresh_accelerate, recipe):
    assert main(["train", str(REPO / "recipes/tiny" / f"{recipe}.yaml"), f"output_dir={tmp_path / 'run'}"]) == 0
    assert json.loads((tmp_path / "run" / "metrics.json").read_text())["validation/exact_match"] >= 0.95


@pytest.mark.slow
def test_the_bottleneck_baseline_trails_attention(tmp_path, fresh_accelerate):
    scores = {}
    for attention in ("none", "bahdanau"):
        assert main(["train", str(_reverse(tmp_path, attention, attention=attention))]) == 0
        reset_accelerate()
        scores[attention] = json.loads((tmp_path / attention / "metrics.json").read_text())["validation/exact_match"]
    assert scores["none"] < scores["bahdanau"]


def test_teacher_forcing_schedules_follow_the_paper():
    from harness.training.scheduled_sampling import ScheduledSampling, teacher_forcing_ratio

    assert teacher_forcing_ratio(0, "linear", 1.0, 0.01) == 1.0
    assert teacher_forcing_ratio(30, "linear", 1.0, 0.01) == pytest.approx(0.7)
    assert teacher_forcing_ratio(500, "linear", 1.0, 0.01, minimum=0.1) == 0.1
    assert teacher_forcing_ratio(10, "exponential", 0.9) == pytest.approx(0.9 ** 10)
    assert teacher_forcing_ratio(0, "inverse_sigmoid", 10.0) == pytest.approx(10 / 11)
    assert teacher_forcing_ratio(50, "inverse_sigmoid", 10.0) == pytest.approx(10 / (10 + 2.718281828459045 ** 5))
    ratios = [ScheduledSampling("inverse_sigmoid", k=20).ratio(i) for i in range(0, 200, 20)]
    assert ratios == sorted(ratios, reverse=True) and ratios[-1] < 0.1
    for kw in ({"schedule": "exponential", "k": 1.5}, {"schedule": "inverse_sigmoid", "k": 0.5},
               {"schedule": "cosine"}, {"min_teacher_forcing": 2.0}):
        with pytest.raises(ValueError):
            ScheduledSampling(**kw)


def test_sampling_feeds_the_model_its_own_tokens_in_training_only():
    m = model("bahdanau", "general", "gru")
    ids, mask, labels = inputs()
    m.train()
    forced = m(input_ids=ids, attention_mask=mask, labels=labels).logits
    m.sampling_probability = 1.0
    own = m(input_ids=ids, attention_mask=mask, labels=labels).logits
    torch.testing.assert_close(own[:, 0], forced[:, 0])  # the first input is always the start token
    assert not torch.allclose(own[:, 1:], forced[:, 1:])
    # all own tokens = the free-running greedy decoder's logits
    m.eval()
    torch.testing.assert_close(m(input_ids=ids, attention_mask=mask, labels=labels).logits, forced)
    greedy = m.generate(ids, attention_mask=mask, max_new_tokens=5, min_new_tokens=5, do_sample=False,
                        output_logits=True, return_dict_in_generate=True)
    m.train()
    free = m(input_ids=ids, attention_mask=mask, decoder_input_ids=greedy.sequences[:, :5]).logits
    torch.testing.assert_close(torch.stack(greedy.logits, 1), own, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(free, own, atol=1e-5, rtol=1e-5)


def test_scheduled_sampling_trains_through_the_recipe_and_refuses_a_model_without_it(tmp_path, fresh_accelerate):
    path = _reverse(tmp_path, "ss")
    body = yaml.safe_load(path.read_text())
    body["callbacks"] = [{"component": "scheduled_sampling", "schedule": "linear", "k": 1.0, "c": 0.01}]
    path.write_text(yaml.safe_dump(body))
    assert main(["train", str(path), "data.num_train=400", "data.num_validation=40", "training.num_epochs=2"]) == 0
    history = [json.loads(line) for line in (tmp_path / "ss" / "logs" / "history.jsonl").read_text().splitlines()]
    logged = {r["step"] for r in history if "loss" in r}
    ratios = {r["step"]: r["teacher_forcing_ratio"] for r in history if "teacher_forcing_ratio" in r}
    assert logged and set(ratios) == logged  # one ratio per log row: the one its last step trained with
    assert all(ratio == pytest.approx(1.0 - 0.01 * (step - 1)) for step, ratio in ratios.items()), ratios
    reset_accelerate()
    body["model"] = {"component": "transformer", "hidden_size": 16, "num_layers": 1, "num_heads": 2}
    body["output_dir"] = str(tmp_path / "transformer")
    path.write_text(yaml.safe_dump(body))
    assert main(["train", str(path), "data.num_train=40", "data.num_validation=8"]) == 0  # two-pass sampling


def test_scheduled_sampling_refuses_a_model_that_cannot_feed_its_own_tokens():
    from types import SimpleNamespace

    from harness.errors import HarnessError
    from harness.training.scheduled_sampling import ScheduledSampling

    loop = SimpleNamespace(unwrapped_model=torch.nn.Linear(2, 2))
    with pytest.raises(HarnessError, match="scheduled_sampling needs a decoder .* Linear has none"):
        ScheduledSampling().on_train_begin(loop)


class _MeanProbe(torch.nn.Module):
    """A discriminator whose logit is ``5 - 10 · mean(behaviour)`` (``scale``, ``shift`` trainable): it calls
    all-zero behaviour teacher-forced and all-one behaviour free-running."""

    def __init__(self, scale=10.0, shift=5.0):
        super().__init__()
        self.scale, self.shift = torch.nn.Parameter(torch.tensor(scale)), torch.nn.Parameter(torch.tensor(shift))

    def forward(self, behaviour, lengths):
        return self.shift - self.scale * behaviour.mean((1, 2))


@pytest.mark.parametrize("scale, generator_on, discriminator_on", [(10.0, True, False), (0.0, False, True)],
                         ids=["certain-discriminator", "undecided-discriminator"])
def test_professor_forcing_gates_and_routes_each_adversarial_term(scale, generator_on, discriminator_on):
    m = model("bahdanau", "general", "gru", professor_forcing=True, professor_forcing_weight=2.0)
    m.discriminator = _MeanProbe(scale)
    forced = torch.zeros(3, 4, 12, requires_grad=True)
    free = torch.ones(3, 4, 12, requires_grad=True)
    total = m._professor_forcing(forced, free, torch.tensor([4, 3, 1]))
    stats = m.training_stats
    assert stats["generator_term_on"].item() == float(generator_on)
    # scale 10: every judgement right (accuracy 1 > 0.99); scale 0: every row called teacher-forced (accuracy 0.5)
    assert stats["discriminator_accuracy"].item() == (1.0 if scale else 0.5)
    expected = 2.0 * stats["generator_loss"].item() if generator_on else 0.0
    assert total.item() == pytest.approx(expected, rel=1e-6)  # the discriminator's term adds no value
    total.backward()
    assert forced.grad is None  # teacher-forced behaviour is only judged, never pushed
    assert (free.grad.abs().sum() > 0) == generator_on  # the generator's term moves the free-running pass only
    probe_grads = [p.grad for p in m.discriminator.parameters()]
    assert all(g is not None for g in probe_grads)
    assert any(g.abs() > 0 for g in probe_grads) == discriminator_on  # the generator's term never trains D


def test_professor_forcing_adds_its_terms_to_the_loss_in_training_only():
    m = model("luong", "general", "lstm", professor_forcing=True)
    # the loop clips the discriminator's gradients apart from the generator's (tests/training/test_loop_unit.py)
    assert [[id(p) for p in g] for g in m.separately_clipped_parameters()] == [
        [id(p) for p in m.discriminator.parameters()]]
    assert model("luong", "general", "lstm").separately_clipped_parameters() == []
    ids, mask, labels = inputs()
    nll = m(input_ids=ids, attention_mask=mask, labels=labels).loss  # eval: teacher forcing alone
    m.train()
    out = m(input_ids=ids, attention_mask=mask, labels=labels)
    assert out.auxiliary_loss is not None and torch.isfinite(out.auxiliary_loss)
    torch.testing.assert_close(out.loss - out.auxiliary_loss, nll)
    out.loss.backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in m.discriminator.parameters())
    m.eval()
    assert m(input_ids=ids, attention_mask=mask, labels=labels).auxiliary_loss is None
    assert m.generate(ids, attention_mask=mask, max_new_tokens=4).shape[0] == 3


def test_professor_forcing_trains_through_the_recipe_with_label_smoothing_and_round_trips(tmp_path, fresh_accelerate):
    path = _reverse(tmp_path, "pf")
    body = yaml.safe_load(path.read_text())
    body["model"].update(professor_forcing=True, professor_forcing_weight=0.5)
    body["loss"] = {"component": "cross_entropy", "label_smoothing": 0.1}
    path.write_text(yaml.safe_dump(body))
    assert main(["train", str(path), "data.num_train=400", "data.num_validation=40", "training.num_epochs=2"]) == 0
    rows = [json.loads(line) for line in (tmp_path / "pf" / "logs" / "history.jsonl").read_text().splitlines()]
    rows = [r for r in rows if "loss" in r]  # the loop averages the model's training_stats into each row
    assert rows and all(0 <= r["discriminator_accuracy"] <= 1 and 0 <= r["generator_term_on"] <= 1
                        and r["discriminator_loss"] > 0 and r["generator_loss"] > 0 for r in rows), rows
    saved = tmp_path / "pf" / "model"
    loaded = transformers.AutoModelForSeq2SeqLM.from_pretrained(saved)
    assert loaded.config.professor_forcing and hasattr(loaded, "discriminator")
    with pytest.raises(ValueError, match="professor_forcing_weight"):
        RNNSeq2SeqConfig(vocab_size=10, professor_forcing_weight=-1.0, decoder_start_token_id=1)


def test_professor_forcing_schedule_starts_late_and_ramps_up():
    from harness.training.professor_forcing import ProfessorForcingSchedule, professor_forcing_scale

    assert [professor_forcing_scale(i, 3, 4) for i in range(9)] == [0, 0, 0, 0.25, 0.5, 0.75, 1, 1, 1]
    assert [professor_forcing_scale(i, 2, 0) for i in range(4)] == [0, 0, 1, 1]
    assert professor_forcing_scale(0, 0, 0) == 1.0  # the default: professor forcing from the first step
    for kw in ({"start_step": -1}, {"warmup_steps": 2.5}, {"start_step": True}):
        with pytest.raises(ValueError, match="whole number of optimizer steps"):
            ProfessorForcingSchedule(**kw)


def test_professor_forcing_scale_zero_is_teacher_forcing_and_scales_the_generator_term():
    m = model("bahdanau", "general", "gru", professor_forcing=True, professor_forcing_weight=2.0)
    ids, mask, labels = inputs()
    nll = m(input_ids=ids, attention_mask=mask, labels=labels).loss
    m.train()
    m.professor_forcing_scale = 0.0
    out = m(input_ids=ids, attention_mask=mask, labels=labels)
    assert out.auxiliary_loss is None and m.training_stats == {}  # no free-running pass, no discriminator step
    torch.testing.assert_close(out.loss, nll)
    out.loss.backward()
    assert all(p.grad is None for p in m.discriminator.parameters())
    # the scale multiplies the generator's term (a discriminator right on every row gates it on)
    m.discriminator = _MeanProbe(10.0)
    forced, free, lengths = torch.zeros(3, 4, 12), torch.ones(3, 4, 12), torch.tensor([4, 3, 1])
    aux = {}
    for scale in (1.0, 0.25):
        m.professor_forcing_scale = scale
        aux[scale] = m._professor_forcing(forced, free, lengths).item()
    assert aux[1.0] > 0 and aux[0.25] == pytest.approx(aux[1.0] / 4, rel=1e-6)


def test_professor_forcing_schedule_trains_through_the_recipe(tmp_path, fresh_accelerate, capsys):
    path = _reverse(tmp_path, "pfs", professor_forcing=True)
    body = yaml.safe_load(path.read_text())
    body["callbacks"] = [{"component": "professor_forcing_schedule", "start_step": 6, "warmup_steps": 4}]
    body["training"].update(log_steps=2)
    path.write_text(yaml.safe_dump(body))
    assert main(["train", str(path), "data.num_train=400", "data.num_validation=40", "training.max_steps=14"]) == 0
    rows = [json.loads(line) for line in (tmp_path / "pfs" / "logs" / "history.jsonl").read_text().splitlines()]
    scales = {r["step"]: r["professor_forcing_scale"] for r in rows if "professor_forcing_scale" in r}
    assert scales == {2: 0, 4: 0, 6: 0, 8: 0.5, 10: 1, 12: 1, 14: 1}  # the scale of each row's last step
    losses = {r["step"]: r for r in rows if "loss" in r}
    assert all("discriminator_accuracy" not in losses[s] for s in (2, 4, 6))  # teacher forcing only
    assert all("discriminator_accuracy" in losses[s] for s in (8, 10, 12, 14))
    reset_accelerate()
    path.write_text(yaml.safe_dump({**body, "model": {**body["model"], "professor_forcing": False}}))
    assert main(["train", str(path), "training.overwrite=true"]) == 2
    assert "callbacks: professor_forcing_schedule needs a model trained with professor forcing" in \
        capsys.readouterr().err


def test_the_attention_probe_reads_uniform_and_saturated_attention():
    """scripts/probe_attention.py's figures: zero scores give the uniform distribution (largest weight 1/S, entropy
    log S), huge ones a one-hot one (largest weight 1, entropy 0)."""
    from testkit import load_script

    probe = load_script("probe_attention")
    ids, _, labels = inputs()
    batch = (ids, torch.ones_like(ids), labels)  # every row 7 source tokens
    m = model("luong", "general", "gru")
    with torch.no_grad():
        m.decoder.general.weight.zero_()
    figures = probe.sharpness(m, batch)
    assert f"max weight {1 / 7:.3f}" in figures and f"on [SEP] {1 / 7:.3f}" in figures
    assert f"entropy {torch.log(torch.tensor(7.0)):.3f} (uniform {torch.log(torch.tensor(7.0)):.3f})" in figures
    with torch.no_grad():
        m.decoder.general.weight.normal_(std=1e6)
    figures = dict(re.findall(r"(max weight|entropy) ([0-9.]+)", probe.sharpness(m, batch)))
    assert float(figures["max weight"]) > 0.95 and float(figures["entropy"]) < 0.1
