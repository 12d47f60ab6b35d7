"""The Transformer family through ``harness train``: causal LM on packed blocks, MLM and span MLM pretraining then
fine-tuning, classification, wrapped GPT-2 / T5 on random-init configs of the real architectures, and the
recipe errors this family can have."""

from __future__ import annotations

import json
from pathlib import Path
import random

import numpy as np
import pytest
import torch
import transformers
import yaml
from testkit import one_error, reset_accelerate, run_harness

from harness.cli import main
from harness.data.lm import pack_blocks, sliding_windows

WORDS = ["the", "cat", "dog", "sat", "on", "mat", "a", "ran", "big", "red", "saw", "hat"]


def corpus(tmp_path, n_train=200, n_valid=30):
    rng = random.Random(0)
    for name, n in (("train", n_train), ("valid", n_valid)):
        lines = [" ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 9))) for _ in range(n)]
        (tmp_path / f"{name}.txt").write_text("\n".join(lines) + "\n")


def recipe(tmp_path, name, data, model, **training):
    body = {
        "output_dir": str(tmp_path / name), "seed": 3,
        "data": {"train_file": str(tmp_path / "train.txt"), "validation_file": str(tmp_path / "valid.txt"), **data},
        "model": model,
        "training": {"lr": 3e-3, "batch_size": 8, "max_length": 16, "num_epochs": 2, "log_steps": 5, **training},
        "tracking": {"report_to": []},
    }
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(body))
    return path


TINY_MODEL = {"component": "transformer", "hidden_size": 16, "num_layers": 1, "num_heads": 2, "dropout": 0.0,
              "max_position_embeddings": 32}


def test_packing_blocks_and_sliding_windows_score_every_token_once():
    stream = np.arange(100)
    blocks = pack_blocks(stream, 8, "t")
    assert len(blocks["input_ids"]) == 14 and all(len(x) == 8 for x in blocks["input_ids"])
    predicted = [t for y in blocks["labels"] for t in y[1:]]  # position t is scored on label t + 1
    assert predicted == list(range(1, 99))  # each once; the 1-token tail is not predicted
    windows = sliding_windows(stream, 10, 4)
    scored = [t for y in windows["labels"] for t in y[1:] if t != -100]
    assert scored == list(range(1, 100))  # every token after the first, exactly once, in order
    assert all(len(x) == 10 for x in windows["input_ids"])
    for x, y in list(zip(windows["input_ids"], windows["labels"]))[1:-1]:
        first = next(i for i, t in enumerate(y) if t != -100)
        assert first >= 10 - 4  # at least window - stride tokens before the first scored one


def test_gpt_trains_on_packed_blocks_and_generates(tmp_path, fresh_accelerate):
    corpus(tmp_path)
    path = recipe(tmp_path, "gpt", {"component": "lm_text", "eval_stride": 8},
                  {**TINY_MODEL, "position_embedding": "rotary", "tokenizer": "bpe", "vocab_size": 300},
                  lr=1e-2, num_epochs=6)
    assert main(["train", str(path)]) == 0
    out = tmp_path / "gpt"
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["validation/perplexity"] < 25  # uniform random words: ~13 is the floor; ~300 at init
    assert (out / "attention_maps.png").stat().st_size > 1000
    assert "## Attention maps" in (out / "report.md").read_text()
    reset_accelerate()
    assert main(["eval", str(path), f"output_dir={tmp_path / 'again'}", f"model.path={out / 'model'}"]) == 0
    again = json.loads((tmp_path / "again" / "eval" / "metrics.json").read_text())
    assert again["validation/perplexity"] == pytest.approx(metrics["validation/perplexity"], rel=1e-5)
    model = transformers.AutoModelForCausalLM.from_pretrained(out / "model")
    tokenizer = transformers.AutoTokenizer.from_pretrained(out / "model")
    assert type(model).__name__ == "TransformerForCausalLM" and model.config.position_embedding_type == "rotary"
    prompt = tokenizer(["the cat"], add_special_tokens=False, return_tensors="pt")
    text = tokenizer.decode(model.generate(**prompt, max_new_tokens=8, do_sample=False)[0], skip_special_tokens=True)
    assert text.split()[:2] == ["the", "cat"] and set(text.split()) <= set(WORDS)


@pytest.mark.parametrize("objective", ["mlm", "span"])
def test_mlm_pretraining_then_the_encoder_fine_tunes(tmp_path, fresh_accelerate, objective):
    corpus(tmp_path)
    path = recipe(tmp_path, "mlm", {"component": "mlm_text", "objective": objective, "mlm_probability": 0.2},
                  {**TINY_MODEL, "tokenizer": "unigram", "vocab_size": 60})
    assert main(["train", str(path)]) == 0
    out = tmp_path / "mlm"
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["validation/perplexity"] < 40 and metrics["validation/tokens"] > 0
    mlm = transformers.AutoModelForMaskedLM.from_pretrained(out / "model")
    assert type(mlm).__name__ == "TransformerForMaskedLM"
    reset_accelerate()
    fine = {"output_dir": str(tmp_path / "fine"), "seed": 1,
            "data": {"component": "synthetic_classification", "num_train": 32, "num_validation": 16},
            "model": {"component": "pretrained", "checkpoint": str(out / "model")},
            "training": {"lr": 1e-3, "batch_size": 8, "num_epochs": 1, "max_length": 16},
            "tracking": {"report_to": []}}
    (tmp_path / "fine.yaml").write_text(yaml.safe_dump(fine))
    assert main(["train", str(tmp_path / "fine.yaml")]) == 0
    assert (tmp_path / "fine" / "attention_maps.png").is_file()
    classifier = transformers.AutoModelForSequenceClassification.from_pretrained(tmp_path / "fine" / "model")
    torch.testing.assert_close(mlm.transformer.stack.embeddings.tokens.weight.shape,
                               classifier.transformer.stack.embeddings.tokens.weight.shape)


def test_evaluation_masks_are_fixed_between_evaluations(tmp_path):
    from harness.data.mlm import mlm_text
    from harness.data.tokenizers import build_word_tokenizer

    corpus(tmp_path)
    task = mlm_text(train_file=str(tmp_path / "train.txt"), validation_file=str(tmp_path / "valid.txt"))
    tokenizer = build_word_tokenizer(task.texts())
    first = task.tokenize(tokenizer, max_length=16)["validation"]["labels"]
    again = task.tokenize(tokenizer, max_length=16)["validation"]["labels"]
    assert first == again
    rows = task.tokenize(tokenizer, max_length=16)["train"]
    assert all(len(r) <= 16 and r[0] == tokenizer.cls_token_id and r[-1] == tokenizer.sep_token_id
               for r in rows["input_ids"])


def test_whole_word_masking_masks_every_piece_of_a_word(tmp_path):
    from harness.data.mlm import mlm_text
    from harness.data.tokenizers import build_subword_tokenizer

    rng = random.Random(1)
    long_words = ["unbelievable", "transformation", "reconsidering", "neighbourhood", "extraordinary"]
    lines = [" ".join(rng.choice(long_words) for _ in range(8)) for _ in range(300)]
    (tmp_path / "train.txt").write_text("\n".join(lines) + "\n")
    task = mlm_text(train_file=str(tmp_path / "train.txt"), whole_word_mask=True, mlm_probability=0.3)
    tokenizer = build_subword_tokenizer(task.texts(), "bpe", vocab_size=300, min_frequency=50)
    rows = task.tokenize(tokenizer, max_length=40)["train"]
    batch = task.collator(tokenizer)([rows[i] for i in range(32)])
    torch.manual_seed(0)
    words = [tokenizer(w, add_special_tokens=False)["input_ids"] for w in long_words]
    assert any(len(w) > 1 for w in words)  # the words are split, so the test means something
    labelled = batch["labels"] != -100
    for row in range(32):
        ids = rows[row]["input_ids"]
        position = 1
        while position < len(ids) - 1:
            word = next((w for w in words if ids[position:position + len(w)] == w), None)
            if word is None:
                position += 1
                continue
            states = labelled[row, position:position + len(word)].tolist()
            assert all(states) or not any(states), "a word is masked whole or not at all"
            position += len(word)


def test_transformer_classifier_on_a_pair_task_gets_segment_embeddings(tmp_path, fresh_accelerate):
    from harness.models.transformer.builders import transformer

    class PairTask:
        auto_model_class = "AutoModelForSequenceClassification"

        class info:
            name, problem_type, label_names = "pairs", "single_label_classification", ["no", "yes"]
            text_columns, id2label, num_labels = ("a", "b"), {0: "no", 1: "yes"}, 2

        def texts(self):
            return iter(["the cat", "a dog"])

    model, tokenizer = transformer(PairTask(), hidden_size=16, num_layers=1, num_heads=2)
    assert model.config.type_vocab_size == 2 and model.config.id2label == {0: "no", 1: "yes"}
    encoded = tokenizer("the cat", "a dog", return_tensors="pt")
    assert model(**encoded).logits.shape == (1, 2)


def _tiny_gpt2(folder):
    from harness.data.tokenizers import build_subword_tokenizer
    from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast

    hf = build_subword_tokenizer([" ".join(WORDS)] * 20, "bpe", vocab_size=300, min_frequency=1)
    # GPT-2's own layout: one <|endoftext|> token, no padding token
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=hf.backend_tokenizer, eos_token="[SEP]", bos_token="[CLS]",
                                        unk_token="[UNK]")
    torch.manual_seed(0)
    model = GPT2LMHeadModel(GPT2Config(vocab_size=len(tokenizer), n_positions=32, n_embd=16, n_layer=1, n_head=2,
                                       bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id))
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return tokenizer


def test_wrapped_gpt2_continues_pretraining_through_the_recipe_and_generates_left_padded(tmp_path, fresh_accelerate):
    corpus(tmp_path)
    _tiny_gpt2(tmp_path / "gpt2")
    path = recipe(tmp_path, "gpt2run", {"component": "lm_text"},
                  {"component": "pretrained_causal_lm", "checkpoint": str(tmp_path / "gpt2")}, lr=1e-2, num_epochs=6)
    assert main(["train", str(path)]) == 0
    out = tmp_path / "gpt2run"
    assert json.loads((out / "metrics.json").read_text())["validation/perplexity"] < 25
    model = transformers.AutoModelForCausalLM.from_pretrained(out / "model").eval()
    tokenizer = transformers.AutoTokenizer.from_pretrained(out / "model")
    assert type(model).__name__ == "GPT2LMHeadModel"
    assert tokenizer.padding_side == "left" and tokenizer.pad_token == tokenizer.eos_token
    batch = tokenizer(["the cat sat on", "a dog"], return_tensors="pt", padding=True, add_special_tokens=False)
    together = model.generate(**batch, max_new_tokens=4, do_sample=False, pad_token_id=tokenizer.pad_token_id)
    single = tokenizer(["a dog"], return_tensors="pt", add_special_tokens=False)
    alone = model.generate(**single, max_new_tokens=4, do_sample=False, pad_token_id=tokenizer.pad_token_id)
    generated = alone[0, single["input_ids"].shape[1]:].tolist()  # may stop early at the end token
    assert together[1, batch["input_ids"].shape[1]:].tolist()[: len(generated)] == generated


def test_wrapped_t5_builds_with_its_task_prefix(tmp_path):
    from harness.data.tokenizers import build_subword_tokenizer
    from harness.models.pretrained import pretrained, seq2seq
    from transformers import T5Config, T5ForConditionalGeneration

    tokenizer = build_subword_tokenizer([" ".join(WORDS)] * 20, "unigram", vocab_size=40)
    config = T5Config(vocab_size=len(tokenizer), d_model=16, d_kv=8, d_ff=32, num_layers=1, num_heads=2,
                      pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.sep_token_id,
                      decoder_start_token_id=tokenizer.pad_token_id,
                      task_specific_params={"echo": {"prefix": "repeat: "}})
    torch.manual_seed(0)
    T5ForConditionalGeneration(config).save_pretrained(tmp_path / "t5")
    tokenizer.save_pretrained(tmp_path / "t5")

    class Echo:
        auto_model_class = "AutoModelForSeq2SeqLM"

        class info:
            name = "echo"

    model, tok = seq2seq(Echo(), checkpoint=str(tmp_path / "t5"))
    assert model.config.harness_prefix == "repeat: " and tok.padding_side == "right"
    model, _ = pretrained(Echo(), checkpoint=str(tmp_path / "t5"), prefix="summarize: ")
    assert model.config.harness_prefix == "summarize: "
    batch = tok(["repeat: the cat", "repeat: a"], return_tensors="pt", padding=True)
    assert model.generate(**batch, max_new_tokens=5, num_beams=2).shape[0] == 2


def test_recipe_errors_name_the_key(tmp_path):
    corpus(tmp_path)
    bad_heads = recipe(tmp_path, "heads", {"component": "lm_text"}, {**TINY_MODEL, "hidden_size": 18, "num_heads": 4})
    result = run_harness("validate", str(bad_heads))
    assert result.returncode != 0 and "model.hidden_size: 18 is not divisible by model.num_heads (4)" in result.stderr
    too_long = recipe(tmp_path, "long", {"component": "lm_text"}, {**TINY_MODEL, "max_position_embeddings": 8})
    result = run_harness("validate", str(too_long))
    assert result.returncode != 0
    assert "training.max_length: 16 tokens are more than the 8 learned positions" in result.stderr
    rotary = recipe(tmp_path, "rope", {"component": "lm_text"},
                    {**TINY_MODEL, "max_position_embeddings": 8, "position_embedding": "rotary"})
    assert run_harness("validate", str(rotary)).returncode == 0


def test_a_checkpoint_shorter_than_max_length_and_a_mismatched_tokenizer_are_refused(tmp_path, fresh_accelerate):
    corpus(tmp_path)
    tokenizer = _tiny_gpt2(tmp_path / "gpt2")
    path = recipe(tmp_path, "long", {"component": "lm_text"},
                  {"component": "pretrained_causal_lm", "checkpoint": str(tmp_path / "gpt2")}, max_length=64)
    result = run_harness("train", str(path))
    assert "training.max_length: 64 tokens per sequence, but the model's position table holds 32" in one_error(result.stderr)
    tokenizer.add_tokens([f"extra{i}" for i in range(400)])
    tokenizer.save_pretrained(tmp_path / "gpt2")
    path = recipe(tmp_path, "vocab", {"component": "lm_text"},
                  {"component": "pretrained_causal_lm", "checkpoint": str(tmp_path / "gpt2")})
    result = run_harness("train", str(path))
    assert "model.checkpoint: the tokenizer has" in one_error(result.stderr)


def test_attention_maps_of_any_text_and_of_an_encoder_decoder(tmp_path):
    from harness.data.tokenizers import build_word_tokenizer
    from harness.models.transformer.configuration_transformer import TransformerConfig
    from harness.models.transformer.diagnostics import attention_weights, plot_attention_maps
    from harness.models.transformer.modeling_transformer import TransformerForConditionalGeneration, TransformerModel

    text = "the animal did not cross the street because it was tired"
    tokenizer = build_word_tokenizer([text])
    encoder = TransformerModel(TransformerConfig(vocab_size=len(tokenizer), hidden_size=16, num_hidden_layers=2,
                                                 num_attention_heads=2))
    weights, queries, keys = attention_weights(encoder, tokenizer, text)
    assert weights.shape == (2, 2, 13, 13) and queries == keys and queries[3] == "did"
    np.testing.assert_allclose(weights.sum(-1), 1.0, rtol=1e-5)
    assert plot_attention_maps(weights, queries, keys, tmp_path / "maps.png").stat().st_size > 1000
    seq2seq = TransformerForConditionalGeneration(TransformerConfig(
        vocab_size=len(tokenizer), hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
        is_encoder_decoder=True, decoder_start_token_id=tokenizer.cls_token_id))
    weights, queries, keys = attention_weights(seq2seq, tokenizer, text, decoder_input_ids=[[2, 5, 6]])
    assert weights.shape == (1, 2, 3, 13) and len(queries) == 3 and len(keys) == 13


@pytest.mark.slow
def test_training_compile_trains_the_same_model(tmp_path, fresh_accelerate):
    corpus(tmp_path, n_train=60, n_valid=10)
    losses = {}
    for compiled in (False, True):
        name = f"compiled_{compiled}"
        path = recipe(tmp_path, name, {"component": "lm_text"}, {**TINY_MODEL}, compile=compiled, num_epochs=1,
                      max_steps=4)
        assert main(["train", str(path)]) == 0
        reset_accelerate()
        losses[compiled] = json.loads((tmp_path / name / "metrics.json").read_text())["validation/loss"]
    assert losses[True] == pytest.approx(losses[False], rel=1e-4)


def _reverse_recipe(tmp_path, name, **overrides):
    body = yaml.safe_load((Path(__file__).resolve().parents[2] / "recipes/tiny/transformer_reverse.yaml").read_text())
    body["output_dir"] = str(tmp_path / name)
    for section, values in overrides.items():
        body[section] = {**body.get(section, {}), **values}
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(body))
    return path


def test_encoder_decoder_learns_to_reverse_with_a_label_smoothed_loss(tmp_path, fresh_accelerate):
    path = _reverse_recipe(tmp_path, "rev", data={"num_train": 800, "num_validation": 60, "max_length": 6},
                           training={"num_epochs": 6}, loss={"component": "cross_entropy", "label_smoothing": 0.1})
    assert main(["train", str(path)]) == 0
    metrics = json.loads((tmp_path / "rev" / "metrics.json").read_text())
    assert metrics["validation/exact_match"] >= 0.5 and metrics["validation/bleu"] > 50  # chance: ~0
    report = (tmp_path / "rev" / "report.md").read_text()
    assert "Cross-attention" in report and r"nrefs:1\|case:mixed\|eff:no\|tok:13a\|smooth:exp\|version:" in report
    model = transformers.AutoModelForSeq2SeqLM.from_pretrained(tmp_path / "rev" / "model")
    assert type(model).__name__ == "TransformerForConditionalGeneration"


@pytest.mark.slow
def test_tiny_reverse_recipe_reaches_95_percent_exact_match(tmp_path, fresh_accelerate):
    path = _reverse_recipe(tmp_path, "rev")
    assert main(["train", str(path), "evaluation.predict_splits=[validation]"]) == 0
    metrics = json.loads((tmp_path / "rev" / "metrics.json").read_text())
    assert metrics["validation/exact_match"] >= 0.95
    lines = (tmp_path / "rev" / "predictions_validation.txt").read_text().splitlines()
    assert len(lines) == 200
