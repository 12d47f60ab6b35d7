"""QLoRA: ``model.quantization`` loads a 4-/8-bit base through bitsandbytes (CPU backend here), LoRA trains over
it, the head stays in full precision, checkpoints hold the trainable weights only, resume and ``harness eval``
rebuild the quantized base; and every bad setting is one error naming its key."""

from __future__ import annotations

import json

import pytest
import torch
from testkit import recipe_file, reset_accelerate, save_tiny_bert
from safetensors import safe_open
from transformers import AutoModelForSequenceClassification, BertConfig, T5Config, AutoModelForSeq2SeqLM

from harness.errors import HarnessError
from harness.models import quantization

SEQ = AutoModelForSequenceClassification


# ------------------------------------------------------------------------------ the recipe value


def test_presets_and_mappings_become_bitsandbytes_arguments():
    assert quantization.check("4bit") == {"load_in_4bit": True, "bnb_4bit_quant_type": "nf4",
                                          "bnb_4bit_use_double_quant": True, "bnb_4bit_compute_dtype": "bfloat16"}
    assert quantization.check("8bit") == {"load_in_8bit": True}
    assert quantization.check({"load_in_4bit": True, "bnb_4bit_quant_type": "fp4"})["bnb_4bit_quant_type"] == "fp4"


@pytest.mark.parametrize("spec,match", [
    ("3bit", r"model.quantization: expected one of 4bit, 8bit or a mapping"),
    (4, r"model.quantization: expected one of 4bit, 8bit or a mapping .* got int"),
    ({"load_in_4bit": True, "bnb_4bit_quant_typ": "nf4"}, r"model.quantization.bnb_4bit_quant_typ: unknown key .*bnb_4bit_quant_type"),
    ({"bnb_4bit_quant_type": "nf4"}, r"exactly one of load_in_4bit: true and load_in_8bit: true \(got neither\)"),
    ({"load_in_4bit": True, "load_in_8bit": True}, r"exactly one .*got load_in_4bit, load_in_8bit"),
    ({"load_in_4bit": True, "bnb_4bit_compute_dtype": "float64"}, r"bnb_4bit_compute_dtype: expected one of float32"),
    ({"load_in_4bit": True, "bnb_4bit_quant_type": "int4"}, r"bnb_4bit_quant_type: expected nf4 or fp4"),
])
def test_bad_settings_are_one_error_naming_the_key(spec, match):
    with pytest.raises(HarnessError, match=match):
        quantization.check(spec)


def test_the_task_head_stays_in_full_precision_the_body_is_quantized():
    cfg = BertConfig(vocab_size=50, hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32)
    assert quantization.head_modules(SEQ, cfg) == ["dropout", "classifier"]
    # T5's body is the whole model (no `transformer` child): nothing is kept out beyond transformers' own choice
    t5 = T5Config(vocab_size=50, d_model=16, d_kv=8, d_ff=32, num_layers=1, num_heads=2)
    assert quantization.head_modules(AutoModelForSeq2SeqLM, t5) == []


def test_a_missing_bitsandbytes_is_named(monkeypatch):
    import builtins

    real = builtins.__import__

    def no_bnb(name, *a, **k):
        if name == "bitsandbytes":
            raise ImportError("No module named 'bitsandbytes'")
        return real(name, *a, **k)

    monkeypatch.setattr(builtins, "__import__", no_bnb)
    cfg = BertConfig(vocab_size=50, hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32)
    with pytest.raises(HarnessError, match=r"model.quantization: needs the bitsandbytes package"):
        quantization.bnb_config("4bit", SEQ, cfg)
    with pytest.raises(HarnessError, match=r"model.path: the adapter was trained on a quantized base"):
        quantization.saved_load_kwargs({"quant_method": "bitsandbytes", "load_in_4bit": True}, "model.path")


# ------------------------------------------------------------------------------ end to end

bnb = pytest.importorskip("bitsandbytes")
MODEL = {"component": "pretrained_classifier"}
DATA = {"component": "synthetic_classification", "num_train": 32, "num_validation": 16}
TRAINING = {"lr": 5e-3, "batch_size": 8, "max_steps": 6, "eval_steps": 3, "max_length": 16}
LORA = {"method": "lora", "r": 4, "lora_alpha": 8, "target_modules": ["query", "value"]}


@pytest.fixture
def tiny_checkpoint(tmp_path):
    """bitsandbytes' CPU kernels quantize in blocks of 64: the layers are 64 and 128 wide."""
    return save_tiny_bert(tmp_path / "tiny-base", hidden_size=64, intermediate_size=128)


def _weights_keys(path) -> list[str]:
    with safe_open(str(path), "pt") as f:
        return list(f.keys())


@pytest.mark.parametrize("bits", ["4bit", "8bit"])
def test_qlora_trains_saves_the_adapter_and_eval_rebuilds_the_quantized_base(bits, tmp_path, tiny_checkpoint,
                                                                               fresh_accelerate):
    from harness.cli import main
    from harness.run import build, load, make_accelerator

    model = dict(MODEL, checkpoint=str(tiny_checkpoint), quantization=bits)
    recipe = recipe_file(tmp_path, model=model, peft=LORA, data=DATA, training=TRAINING)
    # what is built: the body's linear layers quantized, the head a plain full-precision layer, LoRA trainable
    loaded = load(str(recipe), [])
    built = build(loaded, make_accelerator(loaded, tmp_path / "probe", trackers=False))
    layer = built.model.base_model.model.bert.encoder.layer[0].attention.self.query.base_layer
    assert isinstance(layer, bnb.nn.Linear4bit if bits == "4bit" else bnb.nn.Linear8bitLt)
    head = built.model.base_model.model.classifier.modules_to_save["default"]
    assert type(head) is torch.nn.Linear and head.weight.dtype == torch.float32 and head.weight.requires_grad
    assert all("lora_" in n or "classifier" in n for n, p in built.model.named_parameters() if p.requires_grad)

    from harness.training.peft import count_parameters

    # a 4-bit weight matrix is stored two weights per byte: counted by the weights it holds, as before quantizing
    plain = load(str(recipe_file(tmp_path, "plain", model=dict(MODEL, checkpoint=str(tiny_checkpoint)), peft=LORA,
                                 data=DATA, training=TRAINING)), [])
    reset_accelerate()
    unquantized = build(plain, make_accelerator(plain, tmp_path / "probe2", trackers=False))
    assert count_parameters(built.model) == count_parameters(unquantized.model)
    reset_accelerate()

    assert main(["train", str(recipe)]) == 0
    out = tmp_path / "run"
    metrics = json.loads((out / "metrics.json").read_text())
    # the checkpoints hold the trainable weights (LoRA, head), not the 4-/8-bit body
    keys = _weights_keys(out / "checkpoints" / "checkpoint-6" / "model.safetensors")
    assert keys and all("lora_" in k or "classifier" in k for k in keys), keys
    files = sorted(p.name for p in (out / "model").iterdir())
    assert "adapter_model.safetensors" in files and "model.safetensors" not in files, files
    saved = json.loads((out / "model" / "config.json").read_text())["quantization_config"]
    assert saved["load_in_4bit" if bits == "4bit" else "load_in_8bit"] and "classifier" in saved["llm_int8_skip_modules"]

    reset_accelerate()
    assert main(["eval", str(recipe)]) == 0  # the base quantized again from the saved config, the adapter on it
    again = json.loads((out / "eval" / "metrics.json").read_text())
    assert again["validation/accuracy"] == metrics["validation/accuracy"]
    # bitsandbytes' CPU matmuls round differently with the process's history (same weights, loss within 1e-3)
    assert again["validation/loss"] == pytest.approx(metrics["validation/loss"], abs=1e-3)


def test_a_quantized_base_needs_adapters(tmp_path, tiny_checkpoint, fresh_accelerate):
    from harness.run import build, load, make_accelerator

    model = dict(MODEL, checkpoint=str(tiny_checkpoint), quantization="4bit")
    plain = load(str(recipe_file(tmp_path, "plain", model=model, data=DATA, training=TRAINING)), [])
    with pytest.raises(HarnessError, match=r"model.quantization: a 4-/8-bit base cannot be trained itself"):
        build(plain, make_accelerator(plain, tmp_path / "a", trackers=False))
    reset_accelerate()
    houlsby = load(str(recipe_file(tmp_path, "houlsby", model=model, data=DATA, training=TRAINING,
                                   peft={"method": "houlsby", "bottleneck_size": 4})), [])
    with pytest.raises(HarnessError, match=r"peft.method: 'houlsby' is not built for a quantized base"):
        build(houlsby, make_accelerator(houlsby, tmp_path / "b", trackers=False))


def _cut_at_checkpoint_3(run, to):
    """A copy of ``run`` as a run killed after its step-3 checkpoint."""
    import shutil

    shutil.copytree(run, to)
    shutil.rmtree(to / "checkpoints" / "checkpoint-6")
    shutil.rmtree(to / "model")
    (to / "metrics.json").unlink()


def test_qlora_resume_from_a_trainable_only_checkpoint_is_exact(tmp_path, tiny_checkpoint, fresh_accelerate, capsys):
    from safetensors.torch import load_file, save_file

    from harness.cli import main

    model = dict(MODEL, checkpoint=str(tiny_checkpoint), quantization="4bit")
    recipe = recipe_file(tmp_path, model=model, peft=LORA, data=DATA, training=dict(TRAINING, save_total_limit=3))
    assert main(["train", str(recipe)]) == 0
    out, cut = tmp_path / "run", tmp_path / "cut"
    _cut_at_checkpoint_3(out, cut)
    reset_accelerate()
    assert main(["train", str(recipe), f"output_dir={cut}", "training.resume=auto"]) == 0
    a = load_file(str(out / "model" / "adapter_model.safetensors"))
    b = load_file(str(cut / "model" / "adapter_model.safetensors"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)

    # a checkpoint that lacks a trainable weight is refused by name, not half-loaded
    damaged = tmp_path / "damaged"
    _cut_at_checkpoint_3(out, damaged)
    weights = damaged / "checkpoints" / "checkpoint-3" / "model.safetensors"
    save_file({k: v for k, v in load_file(str(weights)).items() if "classifier" not in k}, str(weights))
    reset_accelerate()
    capsys.readouterr()
    assert main(["train", str(recipe), f"output_dir={damaged}", "training.resume=auto"]) != 0
    assert "trainable weights are missing (first: " in capsys.readouterr().err


@pytest.mark.slow  # two two-process gloo runs (~30 s)
def test_qlora_under_ddp_resumes_exactly_from_a_trainable_only_checkpoint(tmp_path, tiny_checkpoint):
    """Each process loads its own quantized copy onto its device; a run cut after its step-3 checkpoint and
    resumed under DDP (the trainable weights loaded into the wrapped model, checked weight by weight) ends with
    the uninterrupted run's adapter."""
    import subprocess
    import sys

    from safetensors.torch import load_file
    from testkit import REPO, child_env

    recipe = recipe_file(tmp_path, model=dict(MODEL, checkpoint=str(tiny_checkpoint), quantization="4bit"), peft=LORA,
                         data=dict(DATA, num_train=64), training=dict(TRAINING, save_total_limit=3))

    def launch(port: int, *overrides: str) -> None:
        cmd = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
               "--num_machines", "1", "--main_process_port", str(port), str(REPO / "harness" / "run.py"), str(recipe),
               *overrides]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=child_env(), cwd=REPO)
        assert proc.returncode == 0, proc.stderr[-3000:]

    launch(29541)
    out, cut = tmp_path / "run", tmp_path / "cut"
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["train/processes"] == 2 and metrics["train/global_step"] == 6
    _cut_at_checkpoint_3(out, cut)
    launch(29542, f"output_dir={cut}", "training.resume=auto")
    a = load_file(str(out / "model" / "adapter_model.safetensors"))
    b = load_file(str(cut / "model" / "adapter_model.safetensors"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
