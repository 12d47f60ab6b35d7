"""The from-scratch Transformer family: every head's shapes, the Auto round trip, caches and generate."""

from __future__ import annotations

import pytest
import torch
import transformers

from harness.models.transformer.configuration_transformer import TransformerConfig
from harness.models.transformer import modeling_transformer as m

V = 40


def config(**kw) -> TransformerConfig:
    base = dict(vocab_size=V, hidden_size=16, num_hidden_layers=2, num_attention_heads=4, intermediate_size=24,
                max_position_embeddings=32, pad_token_id=0, bos_token_id=1, eos_token_id=2,
                hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    base.update(kw)
    return TransformerConfig(**base)


def ids_and_mask(batch=3, length=7, seed=0):
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(3, V, (batch, length), generator=g)
    mask = torch.ones_like(ids)
    mask[1, length - 2:] = 0  # right padding in one row
    return ids, mask


HEADS = [
    (m.TransformerModel, transformers.AutoModel, {}, "last_hidden_state", lambda B, L: (B, L, 16)),
    (m.TransformerForMaskedLM, transformers.AutoModelForMaskedLM, {}, "logits", lambda B, L: (B, L, V)),
    (m.TransformerForSequenceClassification, transformers.AutoModelForSequenceClassification, {"num_labels": 3},
     "logits", lambda B, L: (B, 3)),
    (m.TransformerForTokenClassification, transformers.AutoModelForTokenClassification, {"num_labels": 5},
     "logits", lambda B, L: (B, L, 5)),
    (m.TransformerForCausalLM, transformers.AutoModelForCausalLM, {"is_decoder": True}, "logits",
     lambda B, L: (B, L, V)),
    (m.TransformerForConditionalGeneration, transformers.AutoModelForSeq2SeqLM,
     {"is_encoder_decoder": True, "decoder_start_token_id": 1, "num_decoder_layers": 3}, "logits",
     lambda B, L: (B, 4, V)),
]


def _inputs(cls, ids, mask):
    kw = {"input_ids": ids, "attention_mask": mask}
    if cls is m.TransformerForConditionalGeneration:
        kw["decoder_input_ids"] = ids[:, :4]
    return kw


@pytest.mark.parametrize("positions", ["learned", "sinusoidal", "rotary"])
@pytest.mark.parametrize("norm", ["pre", "post"])
@pytest.mark.parametrize("head", HEADS, ids=[h[0].__name__ for h in HEADS])
def test_every_head_shapes_and_auto_round_trip(tmp_path, head, positions, norm):
    cls, auto, extra, key, shape = head
    torch.manual_seed(0)
    model = cls(config(position_embedding_type=positions, norm_position=norm, **extra)).eval()
    ids, mask = ids_and_mask()
    out = model(**_inputs(cls, ids, mask))
    assert out[key].shape == shape(*ids.shape)
    assert torch.isfinite(out[key]).all()
    model.save_pretrained(tmp_path)
    loaded = auto.from_pretrained(tmp_path).eval()
    assert type(loaded) is cls
    assert torch.equal(loaded(**_inputs(cls, ids, mask))[key], out[key])


@pytest.mark.parametrize("head", HEADS[1:], ids=[h[0].__name__ for h in HEADS[1:]])
def test_heads_compute_their_loss_and_train(head):
    cls, _, extra, _, _ = head
    torch.manual_seed(0)
    model = cls(config(**extra))
    ids, mask = ids_and_mask()
    labels = {"TransformerForSequenceClassification": torch.tensor([0, 2, 1]),
              "TransformerForTokenClassification": torch.randint(0, 5, ids.shape)}.get(cls.__name__, ids)
    kw = _inputs(cls, ids, mask)
    kw.pop("decoder_input_ids", None)  # labels are shifted right into them
    loss = model(**kw, labels=labels).loss
    assert loss.ndim == 0 and torch.isfinite(loss)
    loss.backward()
    assert all(p.grad is not None for n, p in model.named_parameters() if "token_types" not in n)


def test_tied_embeddings_are_one_tensor_and_untied_are_not():
    lm = m.TransformerForCausalLM(config(is_decoder=True))
    assert lm.lm_head.weight is lm.transformer.stack.embeddings.tokens.weight
    seq = m.TransformerForConditionalGeneration(config(is_encoder_decoder=True, decoder_start_token_id=1))
    shared = seq.model.encoder.embeddings.tokens.weight
    assert seq.model.decoder.embeddings.tokens.weight is shared and seq.lm_head.weight is shared
    untied = m.TransformerForCausalLM(config(is_decoder=True, tie_word_embeddings=False))
    assert untied.lm_head.weight is not untied.transformer.stack.embeddings.tokens.weight


@pytest.mark.parametrize("positions", ["learned", "sinusoidal", "rotary"])
def test_causal_lm_cache_equals_full_forward(positions):
    torch.manual_seed(0)
    model = m.TransformerForCausalLM(config(is_decoder=True, position_embedding_type=positions)).eval()
    ids, _ = ids_and_mask(batch=2, length=9)
    full = model(ids, use_cache=False).logits
    first = model(ids[:, :5], use_cache=True)
    assert isinstance(first.past_key_values, transformers.DynamicCache)
    assert first.past_key_values.get_seq_length() == 5
    rest = model(ids[:, 5:], past_key_values=first.past_key_values, use_cache=True)
    torch.testing.assert_close(torch.cat([first.logits, rest.logits], 1), full, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("positions", ["learned", "rotary"])
def test_generate_greedy_cached_equals_uncached_and_beams_and_sampling(positions):
    torch.manual_seed(0)
    model = m.TransformerForCausalLM(config(is_decoder=True, position_embedding_type=positions)).eval()
    prompt, _ = ids_and_mask(batch=2, length=4)
    cached = model.generate(prompt, max_new_tokens=6, do_sample=False)
    uncached = model.generate(prompt, max_new_tokens=6, do_sample=False, use_cache=False)
    assert torch.equal(cached, uncached) and cached.shape == (2, 10)
    beams = model.generate(prompt, max_new_tokens=6, num_beams=3, num_return_sequences=2)
    assert beams.shape[0] == 4
    torch.manual_seed(1)
    a = model.generate(prompt, max_new_tokens=6, do_sample=True, top_p=0.9)
    torch.manual_seed(1)
    b = model.generate(prompt, max_new_tokens=6, do_sample=True, top_p=0.9)
    assert torch.equal(a, b)


def test_left_padded_batch_generates_what_each_prompt_generates_alone():
    torch.manual_seed(0)
    model = m.TransformerForCausalLM(config(is_decoder=True)).eval()
    long = torch.tensor([[5, 6, 7, 8, 9]])
    short = torch.tensor([[11, 12, 13]])
    batch = torch.tensor([[5, 6, 7, 8, 9], [0, 0, 11, 12, 13]])
    mask = torch.tensor([[1, 1, 1, 1, 1], [0, 0, 1, 1, 1]])
    together = model.generate(batch, attention_mask=mask, max_new_tokens=5, do_sample=False)
    alone_long = model.generate(long, max_new_tokens=5, do_sample=False)
    alone_short = model.generate(short, max_new_tokens=5, do_sample=False)
    assert torch.equal(together[0, 5:], alone_long[0, 5:])
    assert torch.equal(together[1, 5:], alone_short[0, 3:])


def test_encoder_decoder_generate_cached_equals_uncached_and_teacher_forcing():
    torch.manual_seed(0)
    model = m.TransformerForConditionalGeneration(
        config(is_encoder_decoder=True, decoder_start_token_id=1, num_decoder_layers=3)).eval()
    ids, mask = ids_and_mask()
    cached = model.generate(ids, attention_mask=mask, max_new_tokens=6, do_sample=False)
    uncached = model.generate(ids, attention_mask=mask, max_new_tokens=6, do_sample=False, use_cache=False)
    assert torch.equal(cached, uncached) and (cached[:, 0] == 1).all()
    beams = model.generate(ids, attention_mask=mask, max_new_tokens=6, num_beams=4, num_return_sequences=2)
    assert beams.shape[0] == 6
    labels = torch.tensor([[5, 6, 2, -100], [7, 2, -100, -100], [8, 9, 10, 2]])
    assert m.shift_right(labels, 1, 0).tolist() == [[1, 5, 6, 2], [1, 7, 2, 0], [1, 8, 9, 10]]
    # teacher forcing: the loss with labels is the cross-entropy of the shifted-input forward
    out = model(input_ids=ids, attention_mask=mask, labels=labels)
    manual = model(input_ids=ids, attention_mask=mask, decoder_input_ids=m.shift_right(labels, 1, 0)).logits
    expected = torch.nn.functional.cross_entropy(manual.reshape(-1, V), labels.reshape(-1), ignore_index=-100)
    torch.testing.assert_close(out.loss, expected)


def test_padding_changes_nothing_for_the_real_tokens():
    torch.manual_seed(0)
    encoder = m.TransformerForTokenClassification(config(num_labels=3)).eval()
    ids = torch.tensor([[5, 6, 7, 8]])
    padded = torch.tensor([[5, 6, 7, 8, 0, 0]])
    mask = torch.tensor([[1, 1, 1, 1, 0, 0]])
    torch.testing.assert_close(encoder(padded, attention_mask=mask).logits[:, :4], encoder(ids).logits,
                               atol=1e-6, rtol=1e-5)


def test_output_attentions_per_layer_and_zero_on_padding():
    torch.manual_seed(0)
    model = m.TransformerForConditionalGeneration(config(is_encoder_decoder=True, decoder_start_token_id=1)).eval()
    ids, mask = ids_and_mask()
    out = model(input_ids=ids, attention_mask=mask, decoder_input_ids=ids[:, :4], output_attentions=True)
    assert len(out.encoder_attentions) == 2 and out.encoder_attentions[0].shape == (3, 4, 7, 7)
    assert len(out.decoder_attentions) == 2 and out.decoder_attentions[0].shape == (3, 4, 4, 4)
    assert out.cross_attentions[0].shape == (3, 4, 4, 7)
    assert (out.cross_attentions[0][1, :, :, 5:] == 0).all()  # padded source positions
    assert (out.decoder_attentions[0][0].triu(1) == 0).all()  # causal
    torch.testing.assert_close(out.encoder_attentions[1].sum(-1), torch.ones(3, 4, 7))
    # the attention path that returns weights computes the same outputs as the fused one
    plain = model(input_ids=ids, attention_mask=mask, decoder_input_ids=ids[:, :4])
    torch.testing.assert_close(plain.logits, out.logits, atol=1e-5, rtol=1e-5)


def test_mlm_pretrained_encoder_loads_into_the_classifier(tmp_path):
    torch.manual_seed(0)
    mlm = m.TransformerForMaskedLM(config())
    mlm.save_pretrained(tmp_path)
    classifier, info = transformers.AutoModelForSequenceClassification.from_pretrained(
        tmp_path, num_labels=2, output_loading_info=True)
    assert type(classifier) is m.TransformerForSequenceClassification
    assert sorted(info["missing_keys"]) == ["classifier.bias", "classifier.weight", "pooler.bias", "pooler.weight"]
    torch.testing.assert_close(classifier.transformer.stack.layers[1].ffn.up.weight,
                               mlm.transformer.stack.layers[1].ffn.up.weight)


def test_decoder_classifier_pools_the_last_real_token():
    torch.manual_seed(0)
    model = m.TransformerForSequenceClassification(config(is_decoder=True, num_labels=2)).eval()
    ids = torch.tensor([[5, 6, 7]])
    right = model(torch.tensor([[5, 6, 7, 0]]), attention_mask=torch.tensor([[1, 1, 1, 0]])).logits
    torch.testing.assert_close(right, model(ids).logits, atol=1e-6, rtol=1e-5)


def test_residual_projections_get_the_depth_scaled_init():
    torch.manual_seed(0)
    model = m.TransformerForCausalLM(config(is_decoder=True, hidden_size=64, intermediate_size=256,
                                            num_hidden_layers=8))
    block = model.transformer.stack.layers[0]
    assert abs(block.ffn.up.weight.std().item() - 0.02) < 0.002
    assert abs(block.ffn.down.weight.std().item() - 0.02 / 4) < 0.0005  # 0.02 / sqrt(2 * 8)


@pytest.mark.parametrize("kw, message", [
    ({"hidden_size": 18, "num_attention_heads": 4}, "divisible by num_attention_heads"),
    ({"position_embedding_type": "alibi"}, "position_embedding_type"),
    ({"norm_position": "sandwich"}, "norm_position"),
    ({"hidden_size": 12, "num_attention_heads": 4, "position_embedding_type": "rotary"}, "even head width"),
    ({"hidden_dropout_prob": 1.0}, "hidden_dropout_prob"),
    ({"is_decoder": True, "is_encoder_decoder": True}, "exclude each other"),
    ({"pad_token_id": V}, "pad_token_id"),
])
def test_config_refuses_bad_values(kw, message):
    with pytest.raises(ValueError, match=message):
        config(**kw)


def test_heads_refuse_the_wrong_arrangement():
    with pytest.raises(ValueError, match="is_decoder=True"):
        m.TransformerForCausalLM(config())
    with pytest.raises(ValueError, match="is_decoder=False"):
        m.TransformerForMaskedLM(config(is_decoder=True))
    with pytest.raises(ValueError, match="is_encoder_decoder=True"):
        m.TransformerForConditionalGeneration(config())


def test_learned_positions_refuse_a_longer_input_and_sinusoidal_grow():
    model = m.TransformerForCausalLM(config(is_decoder=True, max_position_embeddings=8)).eval()
    with pytest.raises(ValueError, match="max_position_embeddings"):
        model(torch.ones(1, 9, dtype=torch.long))
    grows = m.TransformerForCausalLM(config(is_decoder=True, max_position_embeddings=8,
                                            position_embedding_type="sinusoidal")).eval()
    assert grows(torch.ones(1, 20, dtype=torch.long)).logits.shape == (1, 20, V)


def test_two_pass_scheduled_sampling_feeds_the_first_pass_tokens_in_training_only():
    torch.manual_seed(0)
    model = m.TransformerForConditionalGeneration(config(is_encoder_decoder=True, decoder_start_token_id=1))
    ids, mask = ids_and_mask()
    decoder_ids = ids[:, :5].clone()
    decoder_ids[:, 0] = 1
    model.train()  # dropout is 0: the passes are deterministic
    forced = model(input_ids=ids, attention_mask=mask, decoder_input_ids=decoder_ids).logits
    model.sampling_probability = 1.0
    own = model(input_ids=ids, attention_mask=mask, decoder_input_ids=decoder_ids).logits
    # every input after the start token is the first (teacher-forced) pass's argmax of the position before
    mixed = torch.cat([decoder_ids[:, :1], forced.argmax(-1)[:, :-1]], 1)
    expected = model.eval()(input_ids=ids, attention_mask=mask, decoder_input_ids=mixed).logits
    torch.testing.assert_close(own, expected, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(own[:, 0], forced[:, 0])
    # in eval mode the probability is ignored
    torch.testing.assert_close(model(input_ids=ids, attention_mask=mask, decoder_input_ids=decoder_ids).logits,
                               forced, atol=1e-5, rtol=1e-5)
    model.train()
    model.sampling_probability = 0.5
    torch.manual_seed(3)
    half = model(input_ids=ids, attention_mask=mask, decoder_input_ids=decoder_ids).logits
    assert not torch.allclose(half, forced) and not torch.allclose(half, own)
