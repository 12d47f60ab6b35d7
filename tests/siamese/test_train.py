"""Siamese bi-encoders trained through ``harness train`` on small generated pairs: each loss family with its data
format and evaluator, the saved model's Auto round trip and sentence-transformers export, and the errors."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
import torch
import yaml

from data_gen import scored_pairs, write_jsonl

REPO = Path(__file__).resolve().parents[2]


def load_script(name: str):
    spec = importlib.util.spec_from_file_location(name, REPO / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


ENCODER = {"model_type": "bert", "hidden_size": 32, "num_hidden_layers": 1, "num_attention_heads": 2,
           "intermediate_size": 64, "hidden_dropout_prob": 0.0, "attention_probs_dropout_prob": 0.0}


def recipe(tmp_path, loss, data=None, epochs=3, **extra):
    train = write_jsonl(tmp_path / "train.jsonl", scored_pairs(160, 0))
    dev = write_jsonl(tmp_path / "dev.jsonl", scored_pairs(48, 1))
    body = {"output_dir": str(tmp_path / "run"), "seed": 0,
            "data": {"component": "text_pairs", "train_file": train, "validation_file": dev, "score_scale": 5.0,
                     **(data or {})},
            "model": {"component": "siamese", "encoder": ENCODER},
            "loss": loss,
            "training": {"lr": 1e-3, "batch_size": 16, "num_epochs": epochs, "warmup_ratio": 0.0},
            "evaluation": {"at_start": True},
            "tracking": {"report_to": []}, **extra}
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(body))
    return path


def test_cosine_regression_learns_sts_and_the_model_exports(tmp_path, fresh_accelerate):
    from sentence_transformers import SentenceTransformer
    from transformers import AutoModel, AutoTokenizer

    from harness.cli import main
    from harness.models.siamese import export_sentence_transformers

    path = recipe(tmp_path, {"component": "cosine_similarity"})
    assert main(["train", str(path)]) == 0
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["validation/spearman"] > 0.7, metrics
    # `harness eval` reloads the saved model (AutoModel) and scores it the same way
    assert main(["eval", str(path)]) == 0
    again = json.loads((tmp_path / "run" / "eval" / "metrics.json").read_text())
    assert again["validation/spearman"] == pytest.approx(metrics["validation/spearman"], abs=1e-6)
    model = AutoModel.from_pretrained(tmp_path / "run" / "model")
    tokenizer = AutoTokenizer.from_pretrained(tmp_path / "run" / "model")
    sentences = ["a man plays the guitar", "the dog eats food"]
    ours = model.encode(sentences, tokenizer)
    st = SentenceTransformer(str(export_sentence_transformers(model, tokenizer, tmp_path / "st")), device="cpu")
    torch.testing.assert_close(torch.as_tensor(st.encode(sentences)), ours, atol=1e-5, rtol=1e-5)
    # the same through the script a user runs on a run's model folder; a non-Siamese folder is refused
    script = load_script("export_sentence_transformers")
    assert script.main([str(tmp_path / "run" / "model"), str(tmp_path / "st2")]) == 0
    st2 = SentenceTransformer(str(tmp_path / "st2"), device="cpu")
    torch.testing.assert_close(torch.as_tensor(st2.encode(sentences)), ours, atol=1e-5, rtol=1e-5)
    model.encoder.save_pretrained(tmp_path / "plain")
    assert script.main([str(tmp_path / "plain"), str(tmp_path / "st3")]) != 0  # one error line, no traceback


@pytest.mark.parametrize("loss,data", [
    ({"component": "multiple_negatives_ranking"}, {"train_format": "positives", "positive_threshold": 0.5}),
    pytest.param({"component": "triplet", "negatives": "mean+closest", "margin": 0.5, "distance": "cosine"},
                 {"train_format": "positives", "positive_threshold": 0.5}, marks=pytest.mark.slow),
    pytest.param({"component": "contrastive"}, {"train_format": "labels", "label_threshold": 0.5},
                 marks=pytest.mark.slow),
])
def test_in_batch_and_labelled_losses_train(tmp_path, fresh_accelerate, loss, data):
    from harness.cli import main

    path = recipe(tmp_path, loss, data, epochs=2)
    assert main(["train", str(path)]) == 0
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["validation/spearman"] > 0.5, metrics


def test_retrieval_and_duplicate_detection_splits(tmp_path, fresh_accelerate):
    from harness.cli import main

    rows = scored_pairs(200, 3)
    pairs = [{"anchor": r["sentence1"], "positive": r["sentence2"]} for r in rows if r["score"] == 5.0]
    labelled = [{"sentence1": r["sentence1"], "sentence2": r["sentence2"], "label": int(r["score"] >= 2.5)}
                for r in rows]
    train = write_jsonl(tmp_path / "train.jsonl", pairs)
    dev = write_jsonl(tmp_path / "dev.jsonl", labelled[:100])
    test = write_jsonl(tmp_path / "test.jsonl", labelled[100:])
    body = {"output_dir": str(tmp_path / "run"), "seed": 0,
            "data": {"component": "text_pairs", "train_file": train, "validation_file": dev, "test_file": test},
            "model": {"component": "siamese", "encoder": ENCODER, "pooling": "max"},
            "loss": {"component": "batch_hard_triplet", "margin": 1.0},
            "training": {"lr": 1e-3, "batch_size": 16, "num_epochs": 1},
            "evaluation": {"splits": ["validation", "test", "train"]},
            "tracking": {"report_to": []}}
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(body))
    assert main(["train", str(path)]) == 0
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["test/f1_threshold"] == metrics["validation/f1_threshold"]
    assert {"validation/f1", "test/accuracy", "train/mrr@10", "train/recall@5"} <= set(metrics)


def test_siamese_needs_a_pairs_task_and_a_loss_its_columns_fit(tmp_path, fresh_accelerate, capsys):
    from harness.cli import main

    path = recipe(tmp_path, {"component": "triplet"})  # given negatives, but the rows are scored pairs
    assert main(["train", str(path)]) != 0
    err = capsys.readouterr().err
    assert "loss triplet: expects 3 text columns per row, the batch has 2" in err, err
    glue = tmp_path / "glue.yaml"
    glue.write_text(yaml.safe_dump({"output_dir": str(tmp_path / "g"), "data": {"component": "synthetic_classification",
                                    "num_train": 16, "num_validation": 8},
                                    "model": {"component": "siamese", "encoder": ENCODER},
                                    "tracking": {"report_to": []}}))
    assert main(["train", str(glue)]) != 0
    assert "siamese embeds texts" in capsys.readouterr().err
