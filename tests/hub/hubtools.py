"""The hub tests' helpers and their ``hub`` fixture (registered by the folder's conftest.py): tiny run
folders of every custom model family, and the check that loads a pushed model in a fresh interpreter without harness
on ``sys.path``."""

from __future__ import annotations

import json
import os
import site
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from hub_server import TOKEN, HubServer

HERE = Path(__file__).resolve().parent
SITE_PACKAGES = [p for p in site.getsitepackages() if p.endswith("site-packages")]


def clean_env(server_url: str | None, tmp: Path) -> dict[str, str]:
    """The environment of the no-harness interpreter: only site-packages on the path, fresh caches."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_TOKEN", "PYTHONPATH", "HF_ENDPOINT")}
    env.update(PYTHONPATH=os.pathsep.join(SITE_PACKAGES), HF_HOME=str(tmp / "hf-home"),
               HF_MODULES_CACHE=str(tmp / "hf-modules"), OMP_NUM_THREADS="1", TOKENIZERS_PARALLELISM="false")
    if server_url:
        env["HF_ENDPOINT"] = server_url
    else:
        env["HF_HUB_OFFLINE"] = "1"
    return env


def load_many_without_harness(jobs: list[dict], tmp: Path, server_url: str | None = None) -> list[dict]:
    """Load each job's model (``{"source", "auto", "spec", "revision"}``: a folder, or a repo id on ``server_url``) in
    one ``python -S`` interpreter started in ``tmp``, where harness is not importable (``load_clean.py`` checks);
    returns their outputs (``{"error": ...}`` for a model that did not load)."""
    work = tmp / "clean"
    work.mkdir(exist_ok=True)
    (work / "jobs.json").write_text(json.dumps(jobs))
    cmd = [sys.executable, "-S", str(HERE / "load_clean.py"), str(work / "jobs.json"), str(work / "out.json")]
    r = subprocess.run(cmd, capture_output=True, text=True, cwd=work, env=clean_env(server_url, tmp), timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    return json.loads((work / "out.json").read_text())


def load_without_harness(source: str, auto: str, spec: dict, tmp: Path, server_url: str | None = None,
                         revision: str | None = None) -> dict:
    """One model: :func:`load_many_without_harness`; a load failure fails the test with its message."""
    out = load_many_without_harness([{"source": source, "auto": auto, "spec": spec, "revision": revision}], tmp,
                                    server_url)[0]
    assert "error" not in out, out["error"]
    return out


# ------------------------------------------------------------------------------------------ tiny runs

TEXTS = ["the cat sat on the mat", "a dog ran in the park", "the bird sang a song", "it was not bad at all"]
LABELS = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC"]


def _tokenizer():
    from harness.data.tokenizers import build_word_tokenizer

    return build_word_tokenizer(TEXTS)


def build_model(family: str):
    """``(model, tokenizer, auto class name, spec)`` for a tiny model of ``family``; ``spec`` is what
    :func:`load_without_harness` runs."""
    import torch

    torch.manual_seed(0)
    tok = _tokenizer()
    V = len(tok)
    ids = [[5, 6, 7, 8, 9, 10]]
    mask = [[1, 1, 1, 1, 1, 1]]
    special = dict(pad_token_id=tok.pad_token_id, bos_token_id=tok.cls_token_id, eos_token_id=tok.sep_token_id)
    gen = {"max_new_tokens": 5, "do_sample": False}
    if family in ("rnn_lm", "rnn_classifier"):
        from harness.models.rnn.configuration_rnn import RNNConfig
        from harness.models.rnn.modeling_rnn import RNNForCausalLM, RNNForSequenceClassification

        config = RNNConfig(vocab_size=V, embedding_size=8, hidden_size=8, num_layers=1, cell="lstm", num_labels=2,
                           id2label={0: "negative", 1: "positive"}, label2id={"negative": 0, "positive": 1},
                           init_range=0.3, **special)
        if family == "rnn_lm":
            return RNNForCausalLM(config).eval(), tok, "AutoModelForCausalLM", {
                "mode": "generate", "inputs": {"input_ids": ids, "attention_mask": mask}, "generate": gen}
        return RNNForSequenceClassification(config).eval(), tok, "AutoModelForSequenceClassification", {
            "mode": "logits", "inputs": {"input_ids": ids + [[5, 6, 7, 0, 0, 0]],
                                         "attention_mask": mask + [[1, 1, 1, 0, 0, 0]]}}
    if family == "rnn_tagger":
        from harness.models.rnn_tagger.configuration_rnn_tagger import RNNTaggerConfig
        from harness.models.rnn_tagger.modeling_rnn_tagger import RNNTaggerForTokenClassification

        config = RNNTaggerConfig(vocab_size=V, embedding_size=8, hidden_size=6, num_layers=1, bidirectional=True,
                                 dropout=0.0, char_vocab=list("abcdefgh"), char_encoder="lstm", char_embedding_size=4,
                                 char_hidden_size=3, head="crf", tag_scheme="IOB2", num_labels=len(LABELS),
                                 id2label=dict(enumerate(LABELS)), label2id={t: i for i, t in enumerate(LABELS)},
                                 pad_token_id=tok.pad_token_id)
        chars = [[[2, 3, 4, 0], [5, 6, 0, 0], [2, 2, 2, 2], [7, 8, 9, 0], [3, 0, 0, 0], [4, 5, 0, 0]]]
        return RNNTaggerForTokenClassification(config).eval(), tok, "AutoModelForTokenClassification", {
            "mode": "tags", "inputs": {"input_ids": ids, "attention_mask": mask, "char_ids": chars}}
    if family == "rnn_seq2seq":
        from harness.models.rnn_seq2seq.configuration_rnn_seq2seq import RNNSeq2SeqConfig
        from harness.models.rnn_seq2seq.modeling_rnn_seq2seq import RNNSeq2SeqForConditionalGeneration

        config = RNNSeq2SeqConfig(vocab_size=V, embedding_size=8, hidden_size=12, cell="gru", attention="bahdanau",
                                  dropout=0.0, decoder_start_token_id=tok.cls_token_id, **special)
        return RNNSeq2SeqForConditionalGeneration(config).eval(), tok, "AutoModelForSeq2SeqLM", {
            "mode": "generate", "inputs": {"input_ids": ids, "attention_mask": mask}, "generate": gen}
    if family in ("transformer_lm", "transformer_seq2seq"):
        from harness.models.transformer.configuration_transformer import TransformerConfig
        from harness.models.transformer.modeling_transformer import (TransformerForCausalLM,
                                                                     TransformerForConditionalGeneration)

        seq2seq = family == "transformer_seq2seq"
        config = TransformerConfig(vocab_size=V, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                                   intermediate_size=24, max_position_embeddings=32, hidden_dropout_prob=0.0,
                                   attention_probs_dropout_prob=0.0, is_encoder_decoder=seq2seq,
                                   decoder_start_token_id=tok.cls_token_id if seq2seq else None,
                                   **({"is_decoder": True} if not seq2seq else {}), **special)
        cls = TransformerForConditionalGeneration if seq2seq else TransformerForCausalLM
        return cls(config).eval(), tok, "AutoModelForSeq2SeqLM" if seq2seq else "AutoModelForCausalLM", {
            "mode": "generate", "inputs": {"input_ids": ids, "attention_mask": mask}, "generate": gen}
    if family == "siamese":
        from harness.models.siamese.configuration_siamese import SiameseConfig
        from harness.models.siamese.modeling_siamese import SiameseModel

        encoder = {"model_type": "bert", "vocab_size": V, "hidden_size": 16, "num_hidden_layers": 1,
                   "num_attention_heads": 2, "intermediate_size": 32, "pad_token_id": tok.pad_token_id}
        return SiameseModel(SiameseConfig(encoder=encoder, pooling="mean", normalize=True)).eval(), tok, "AutoModel", {
            "mode": "embeddings", "inputs": {"input_ids": ids + [[5, 6, 7, 0, 0, 0]],
                                             "attention_mask": mask + [[1, 1, 1, 0, 0, 0]]}}
    raise ValueError(family)


def expected_outputs(model, spec: dict) -> dict:
    import torch

    inputs = {k: torch.tensor(v) for k, v in spec["inputs"].items()}
    with torch.no_grad():
        if spec["mode"] == "generate":
            return {"generated": model.generate(**inputs, **spec.get("generate", {})).tolist()}
        if spec["mode"] == "embeddings":
            return {"embeddings": model(**inputs).embeddings.tolist()}
        logits = model(**inputs).logits
        out = {"logits": logits.tolist()}
        if spec["mode"] == "tags":
            out["tags"] = model.decode_tags(logits, inputs.get("attention_mask")).tolist()
        return out


RUN_METRICS = {"validation/accuracy": 0.75, "validation/loss": 0.5123456789, "test/accuracy": 0.625,
               "train/seconds": 1.5, "train/global_step": 8, "train/epochs": 1.0, "train/tokens": 512,
               "train/trainable_parameters": 1234, "train/total_parameters": 1234, "train/processes": 1,
               "wall_seconds": 3.25}
REPORT = """# tiny

## Run

| | |
|---|---|
| cpu | AMD EPYC (2 cores) |
| torch | 2.13.0+cpu |
| transformers | 5.23.0 |
| mixed_precision | no |
"""


def make_run(folder: Path, family: str, recipe: dict | None = None):
    """A finished run's folder (``model/``, ``recipe.yaml``, ``metrics.json``, ``report.md``) holding a tiny model
    of ``family``; returns ``(folder, model, auto class name, spec)``."""
    model, tok, auto, spec = build_model(family)
    (folder / "model").mkdir(parents=True)
    model.save_pretrained(folder / "model")
    tok.save_pretrained(folder / "model")
    recipe = recipe or {"name": f"tiny-{family}", "output_dir": str(folder), "seed": 0,
                        "data": {"component": "glue", "task": "sst2"}, "model": {"component": family}}
    (folder / "recipe.yaml").write_text(yaml.safe_dump(recipe, sort_keys=False))
    (folder / "metrics.json").write_text(json.dumps(RUN_METRICS, indent=2))
    (folder / "report.md").write_text(REPORT)
    return folder, model, auto, spec


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file of a folder and its bytes (to show a failed push left the run as it was)."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}



@pytest.fixture
def hub(monkeypatch, tmp_path):
    """A local Hub for this test: ``HF_ENDPOINT`` and the ``huggingface_hub`` constants read at import time point at
    it, offline mode is off, ``HF_TOKEN`` is its write token and no stored token file is seen."""
    from huggingface_hub import constants

    with HubServer() as server:
        monkeypatch.setattr(constants, "ENDPOINT", server.url)
        monkeypatch.setattr(constants, "HUGGINGFACE_CO_URL_TEMPLATE",
                            server.url + "/{repo_id}/resolve/{revision}/{filename}")
        monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
        monkeypatch.setattr(constants, "HF_TOKEN_PATH", str(tmp_path / "hf-token"))
        monkeypatch.setattr(constants, "HF_STORED_TOKENS_PATH", str(tmp_path / "hf-stored-tokens"))
        monkeypatch.setenv("HF_ENDPOINT", server.url)
        monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
        monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
        monkeypatch.setenv("HF_TOKEN", TOKEN)
        yield server


def assert_same(got, want, what=None) -> None:
    """Token ids and labels exactly; floats (logits, embeddings) to 1e-5: another process may sum in another order."""
    import torch

    if isinstance(want, list):
        torch.testing.assert_close(torch.tensor(got), torch.tensor(want), rtol=1e-5, atol=1e-5,
                                   msg=lambda m: f"{what}: {m}")
    else:
        assert got == want, what
