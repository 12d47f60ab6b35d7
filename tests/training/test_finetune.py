"""Fine-tuning strategies on a tiny random BERT: layer-wise learning rates, the slanted triangular schedule,
gradual unfreezing (order, optimizer state, resume), bottleneck adapters (identity at init, what trains,
save → load), AdapterFusion, DoRA / IA3 through PEFT, and end-to-end runs."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from testkit import recipe_file, reset_accelerate
from safetensors import safe_open
from safetensors.torch import load_file
from transformers import BertConfig, BertForSequenceClassification

from harness.errors import HarnessError
from harness.training.layerwise import depths, slanted_triangular_factor
from harness.training.optim import build_optimizer, build_scheduler
from harness.training.peft import apply_peft

SEQ = "AutoModelForSequenceClassification"


def tiny_bert(layers: int = 3, seed: int = 0) -> BertForSequenceClassification:
    torch.manual_seed(seed)
    cfg = BertConfig(vocab_size=120, hidden_size=32, num_hidden_layers=layers, num_attention_heads=2,
                     intermediate_size=64, num_labels=2, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    model = BertForSequenceClassification(cfg)
    model.name_or_path = model.config.name_or_path = "tiny-bert"  # PEFT methods need a named base to reload onto
    model.harness_new_modules = ["classifier"]
    return model


def batch(seed: int = 1) -> dict:
    g = torch.Generator().manual_seed(seed)
    return {"input_ids": torch.randint(0, 120, (4, 9), generator=g), "labels": torch.tensor([0, 1, 1, 0])}


# ------------------------------------------------------------------------------ discriminative lrs


def test_layerwise_lrs_per_group():
    model = tiny_bert(layers=3)
    opt = build_optimizer(model, {"component": "adamw_layerwise", "layer_decay": 0.5}, lr=1e-3, weight_decay=0.1)
    lr_of = {id(p): (g["lr"], g["weight_decay"]) for g in opt.param_groups for p in g["params"]}
    names = dict(model.named_parameters())
    assert set(lr_of) == {id(p) for p in names.values()}
    expected_depth = {"classifier.weight": 0, "bert.pooler.dense.weight": 0, "bert.encoder.layer.2.output.dense.weight": 1,
                      "bert.encoder.layer.1.attention.self.query.weight": 2, "bert.encoder.layer.0.intermediate.dense.weight": 3,
                      "bert.embeddings.word_embeddings.weight": 4, "bert.embeddings.LayerNorm.weight": 4}
    for name, depth in expected_depth.items():
        lr, wd = lr_of[id(names[name])]
        assert lr == pytest.approx(1e-3 * 0.5 ** depth), name
        assert wd == (0.0 if "LayerNorm" in name else 0.1), name
    assert max(depths(model).values()) == 4  # the embeddings are the deepest
    # the schedule scales every group alike: the ratios stay
    sched = build_scheduler(opt, {"component": "linear"}, total_steps=10, steps_per_epoch=10, warmup=2)
    opt.step(), sched.step()
    lrs = [g["lr"] for g in opt.param_groups]
    assert lrs[0] > 0 and lrs[-1] == pytest.approx(lrs[0] * 0.5 ** 4)


def test_layerwise_refuses_a_model_without_blocks_and_a_bad_decay():
    flat = torch.nn.Sequential(torch.nn.Linear(2, 2))
    with pytest.raises(HarnessError, match="numbered blocks"):
        build_optimizer(flat, {"component": "adamw_layerwise"}, lr=1e-3, weight_decay=0.0)
    with pytest.raises(HarnessError, match="layer_decay"):
        build_optimizer(tiny_bert(1), {"component": "adamw_layerwise", "layer_decay": 1.5}, lr=1e-3, weight_decay=0.0)


# ------------------------------------------------------------------------------ slanted triangular


def test_slanted_triangular_values():
    # Howard & Ruder eq. 3 with T=100, cut_frac=0.1 (cut=10), ratio=32
    f = lambda t: slanted_triangular_factor(t, 100, 0.1, 32)  # noqa: E731
    assert f(0) == pytest.approx(1 / 32)
    assert f(5) == pytest.approx((1 + 0.5 * 31) / 32)
    assert f(10) == pytest.approx(1.0)
    assert f(55) == pytest.approx((1 + 0.5 * 31) / 32)  # p = 1 - 45/90
    assert f(100) == pytest.approx(1 / 32)
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.32)
    sched = build_scheduler(opt, {"component": "slanted_triangular"}, total_steps=100, steps_per_epoch=50, warmup=0)
    seen = []
    for _ in range(100):
        seen.append(sched.get_last_lr()[0])
        opt.step(), sched.step()
    assert seen[0] == pytest.approx(0.01) and max(seen) == pytest.approx(0.32) and seen.index(max(seen)) == 10
    with pytest.raises(HarnessError, match="warmup"):
        build_scheduler(opt, {"component": "slanted_triangular"}, total_steps=100, steps_per_epoch=50, warmup=6)


# ------------------------------------------------------------------------------ gradual unfreezing


class _Acc:
    def unwrap_model(self, m):
        return m

    def print(self, *a):
        pass


def test_unfreezing_order_and_optimizer_state_survives():
    from harness.training.unfreezing import GradualUnfreezing

    model = tiny_bert(layers=2)
    opt = build_optimizer(model, {"component": "adamw", "fused": False}, lr=1e-2, weight_decay=0.01)
    loop = SimpleNamespace(model=model, optimizer=opt, accelerator=_Acc(), state=SimpleNamespace(global_step=0, epoch=0),
                           record=lambda row: None)
    cb = GradualUnfreezing(every_steps=2)
    cb.on_train_begin(loop)
    names = dict(model.named_parameters())
    top, low, emb, head = (names["bert.encoder.layer.1.output.dense.weight"], names["bert.encoder.layer.0.output.dense.weight"],
                           names["bert.embeddings.word_embeddings.weight"], names["classifier.weight"])
    trainable_at = []
    top_state_at_4 = None
    for step in range(8):
        loop.state.global_step = step
        cb.on_step_begin(loop)
        trainable_at.append((head.requires_grad, top.requires_grad, low.requires_grad, emb.requires_grad))
        if step == 4:
            top_state_at_4 = opt.state[top]["exp_avg"].clone(), float(opt.state[top]["step"])
        model(**batch(step)).loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        if step == 3:
            assert low not in opt.state and emb not in opt.state  # frozen: never touched, no state
    assert trainable_at == [(True, False, False, False)] * 2 + [(True, True, False, False)] * 2 \
        + [(True, True, True, False)] * 2 + [(True, True, True, True)] * 2
    # the top block, unfrozen at step 2, kept its moments through later unfreezing: 6 updates, not restarted
    assert float(opt.state[top]["step"]) == 6 and top_state_at_4[1] == 2
    assert float(opt.state[head]["step"]) == 8 and float(opt.state[low]["step"]) == 4
    assert float(opt.state[emb]["step"]) == 2
    # by epoch, one block per epoch
    cb2 = GradualUnfreezing(every_epochs=1)
    assert [cb2.stage_at(0, e) for e in range(4)] == [0, 1, 2, 3]


def test_unfreezing_refuses_parameters_the_optimizer_lacks():
    from harness.training.unfreezing import GradualUnfreezing

    model = tiny_bert(layers=2)
    for n, p in model.named_parameters():
        p.requires_grad_(n.startswith("classifier"))
    opt = build_optimizer(model, {"component": "adamw"}, lr=1e-2, weight_decay=0.0)
    for p in model.parameters():
        p.requires_grad_(True)
    loop = SimpleNamespace(model=model, optimizer=opt, accelerator=_Acc(), state=SimpleNamespace(global_step=0, epoch=0))
    with pytest.raises(HarnessError, match="does not hold"):
        GradualUnfreezing(every_steps=1).on_train_begin(loop)
    with pytest.raises(HarnessError, match="not both"):
        GradualUnfreezing(every_steps=1, every_epochs=1)


ULMFIT = {
    "optimizer": {"component": "adamw_layerwise", "layer_decay": 0.5},
    "scheduler": {"component": "slanted_triangular", "cut_frac": 0.25},
    "callbacks": [{"component": "gradual_unfreezing", "every_steps": 2}],
    "evaluation": {"load_best_at_end": False},  # the last step's weights, not the best checkpoint's
}


def test_unfreezing_resume_mid_schedule_reproduces(tmp_path, fresh_accelerate):
    """ULMFiT end to end (layer-wise lrs, slanted triangular, gradual unfreezing) on the tiny from-scratch BERT:
    8 steps, checkpoints at 4 and 8; resuming from step 4 (head + top block trained, lower block just
    unfreezing) ends with the uninterrupted run's weights, bit for bit."""
    from harness.cli import main

    training = {"lr": 5e-3, "batch_size": 8, "num_epochs": 2, "eval_steps": 4, "log_steps": 2, "warmup_ratio": 0.0}
    model = {"component": "bert_from_scratch", "hidden_size": 16, "num_layers": 2, "num_heads": 2}
    full = recipe_file(tmp_path, "full", training=training, model=model, **ULMFIT)
    assert main(["train", str(full)]) == 0
    reset_accelerate()
    ckpt4 = tmp_path / "run" / "checkpoints" / "checkpoint-4"
    assert ckpt4.is_dir()
    resumed = recipe_file(tmp_path, "resumed", output_dir=str(tmp_path / "resumed_run"),
                          training={**training, "resume": str(ckpt4)}, model=model, **ULMFIT)
    assert main(["train", str(resumed)]) == 0
    a = load_file(str(tmp_path / "run" / "model" / "model.safetensors"))
    b = load_file(str(tmp_path / "resumed_run" / "model" / "model.safetensors"))
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k
    at4 = load_file(str(ckpt4 / "model.safetensors"))
    emb = next(k for k in a if k.endswith("word_embeddings.weight"))
    assert not torch.equal(at4[emb], a[emb])  # the embeddings trained after the resume point (from step 6)
    hist = [json.loads(line) for line in (tmp_path / "run" / "logs" / "history.jsonl").read_text().splitlines()]
    lrs = [r["lr"] for r in hist if "lr" in r]
    assert lrs and max(lrs) <= 5e-3 + 1e-12  # the head's (depth 0) lr under the slanted triangle
    # what trained: each stage once in the resumed run's history too, and the same step-weighted share
    for run in ("run", "resumed_run"):
        rows = [json.loads(line) for line in (tmp_path / run / "logs" / "history.jsonl").read_text().splitlines()]
        assert [r["unfreezing"]["stage"] for r in rows if "unfreezing" in r] == [0, 1, 2, 3], run
    m = [json.loads((tmp_path / d / "metrics.json").read_text()) for d in ("run", "resumed_run")]
    keys = ("train/trainable_parameters", "train/trainable_parameters_first_step", "train/trainable_parameters_mean")
    assert [m[0][k] for k in keys] == [m[1][k] for k in keys]
    assert m[0]["train/trainable_parameters_first_step"] < m[0]["train/trainable_parameters_mean"] \
        < m[0]["train/trainable_parameters"] == m[0]["train/total_parameters"]


# ------------------------------------------------------------------------------ bottleneck adapters


@pytest.mark.parametrize("method,points", [("houlsby", 2), ("pfeiffer", 1)])
def test_adapters_identity_at_init_and_what_trains(method, points):
    base = tiny_bert(layers=2).eval()
    x = batch()
    want = base(**x).logits
    model = apply_peft(copy.deepcopy(base), {"method": method, "reduction_factor": 4}, SEQ).eval()
    assert torch.allclose(model(**x).logits, want, atol=1e-6)
    trainable = [n for n, p in model.named_parameters() if p.requires_grad]
    assert trainable and all(".bottleneck.adapters." in n or "LayerNorm" in n or n.startswith("base_model.classifier.")
                             for n in trainable), trainable
    adapters = {n.split(".bottleneck.")[0] for n in trainable if ".bottleneck." in n}
    assert len(adapters) == 2 * points  # 2 blocks × places
    assert any("LayerNorm" in n for n in trainable) and any("classifier" in n for n in trainable)
    frozen = dict(model.named_parameters())
    assert not frozen["base_model.bert.encoder.layer.0.attention.self.query.weight"].requires_grad
    # one step moves the output: the adapters are in the forward path
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    model.train()
    model(**x).loss.backward()
    opt.step()
    assert not torch.allclose(model.eval()(**x).logits, want, atol=1e-4)


def test_adapter_save_load_restores_logits_without_base_weights(tmp_path):
    from harness.modules.adapters import CONFIG_NAME, WEIGHTS_NAME, BottleneckModel

    base = tiny_bert(layers=2)
    model = apply_peft(copy.deepcopy(base), {"method": "houlsby", "bottleneck_size": 5,
                                             "modules_to_save": ["pooler"]}, SEQ)
    with torch.no_grad():  # trained-looking adapters, head and norms
        for p in model.parameters():
            if p.requires_grad:
                p.add_(torch.randn_like(p) * 0.05)
    model.eval()
    x = batch(3)
    want = model(**x).logits
    model.save_pretrained(tmp_path / "ad")
    assert sorted(p.name for p in (tmp_path / "ad").iterdir()) == sorted([CONFIG_NAME, WEIGHTS_NAME])
    with safe_open(str(tmp_path / "ad" / WEIGHTS_NAME), "pt") as f:
        keys = list(f.keys())
    assert keys and all(".bottleneck." in k or "LayerNorm" in k or k.startswith(("classifier.", "bert.pooler."))
                        for k in keys), keys
    assert not any("query" in k or "word_embeddings" in k or "intermediate" in k for k in keys)
    fresh = tiny_bert(layers=2, seed=0)  # the same base, a new process's copy (head re-initialised differently)
    torch.manual_seed(123)
    fresh.classifier.reset_parameters()
    loaded = BottleneckModel.from_pretrained(fresh, tmp_path / "ad").eval()
    assert torch.equal(loaded(**x).logits, want)
    # a file for another base is refused, not half-loaded
    other = tiny_bert(layers=1)
    with pytest.raises(HarnessError, match="does not have"):
        BottleneckModel.from_pretrained(other, tmp_path / "ad")


def test_adapter_fusion_trains_only_fusion_and_head(tmp_path):
    from harness.modules.adapters import BottleneckModel

    base = tiny_bert(layers=2)
    for i, task in enumerate(("a", "b")):
        m = apply_peft(copy.deepcopy(base), {"method": "pfeiffer", "bottleneck_size": 4, "train_layer_norms": False}, SEQ)
        with torch.no_grad():
            for n, p in m.named_parameters():
                if ".bottleneck." in n:
                    p.add_(torch.randn_like(p) * 0.1 * (i + 1))
        m.save_pretrained(tmp_path / task / "model")
    fused = apply_peft(copy.deepcopy(base), {"method": "adapter_fusion",
                                             "adapters": [str(tmp_path / "a"), str(tmp_path / "b" / "model")]}, SEQ)
    trainable = [n for n, p in fused.named_parameters() if p.requires_grad]
    assert trainable and all(".bottleneck.fusion." in n or n.startswith("base_model.classifier.") for n in trainable)
    assert any(".adapters.a." in n for n, _ in fused.named_parameters())
    assert any(".adapters.b." in n for n, _ in fused.named_parameters())
    # the task adapters arrived with their trained weights
    src = load_file(str(tmp_path / "b" / "model" / "bottleneck_model.safetensors"))
    key = next(k for k in src if ".adapters.default.up.weight" in k)
    assert torch.equal(dict(fused.base_model.named_parameters())[key.replace(".default.", ".b.")], src[key])
    x = batch()
    fused.train()
    frozen_before = {n: p.detach().clone() for n, p in fused.named_parameters() if not p.requires_grad}
    opt = torch.optim.AdamW([p for p in fused.parameters() if p.requires_grad], lr=1e-2)
    fused(**x).loss.backward()
    opt.step()
    assert all(torch.equal(p, frozen_before[n]) for n, p in fused.named_parameters() if not p.requires_grad)
    weights = fused.base_model.bert.encoder.layer[0].output.bottleneck.fusion.last_weights
    assert weights.shape[-1] == 2 and torch.allclose(weights.sum(-1), torch.ones(()))
    fused.eval()
    want = fused(**x).logits
    fused.save_pretrained(tmp_path / "fused")
    again = BottleneckModel.from_pretrained(copy.deepcopy(base), tmp_path / "fused").eval()
    assert torch.equal(again(**x).logits, want)
    # adapters trained with their layer norms cannot be fused (their bases differ)
    m = apply_peft(copy.deepcopy(base), {"method": "pfeiffer", "bottleneck_size": 4}, SEQ)
    m.save_pretrained(tmp_path / "c")
    with pytest.raises(HarnessError, match="train_layer_norms"):
        apply_peft(copy.deepcopy(base), {"method": "adapter_fusion", "adapters": [str(tmp_path / "a"), str(tmp_path / "c")]}, SEQ)
    with pytest.raises(HarnessError, match="at least two"):
        apply_peft(copy.deepcopy(base), {"method": "adapter_fusion", "adapters": [str(tmp_path / "a")]}, SEQ)


# ------------------------------------------------------------------------------ PEFT's DoRA and IA3


def test_dora_and_ia3_train_on_bert():
    from harness.config.schema import validate_peft

    ia3 = json.loads(json.dumps(_recipe_peft("ia3.yaml")))
    errors: list[str] = []
    assert validate_peft(ia3, errors) and not errors
    x = batch()
    for spec in ({"method": "dora", "r": 4, "target_modules": ["query", "value"]}, ia3):
        model = apply_peft(tiny_bert(layers=2), spec, SEQ)
        names = [n for n, p in model.named_parameters() if p.requires_grad]
        before = {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}
        opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
        model(**x).loss.backward()
        opt.step()
        moved = [n for n, p in model.named_parameters() if p.requires_grad and not torch.equal(p, before[n])]
        assert any("classifier" in n for n in moved)
        if spec["method"] == "dora":
            assert any("lora_magnitude_vector" in n for n in names)
        else:  # key, value and the FFN's output layer; the attention output projection is not adapted
            adapted = sorted({n.split(".ia3_l")[0].split("encoder.layer.0.")[-1] for n in names if "layer.0." in n})
            assert adapted == ["attention.self.key", "attention.self.value", "output.dense"], adapted
            assert any("ia3_l" in n for n in moved)
    with pytest.raises(HarnessError, match="use_dora"):
        apply_peft(tiny_bert(layers=1), {"method": "dora", "use_dora": False}, SEQ)


def _recipe_peft(name: str) -> dict:
    import yaml

    return yaml.safe_load((Path(__file__).resolve().parents[2] / "recipes" / "finetune" / name).read_text())["peft"]


# ------------------------------------------------------------------------------ end to end


def test_houlsby_recipe_trains_saves_adapters_only_and_eval_reloads(tmp_path, tiny_checkpoint, fresh_accelerate):
    from harness.cli import main

    recipe = recipe_file(tmp_path, model={"component": "pretrained_classifier", "checkpoint": str(tiny_checkpoint)},
                         peft={"method": "houlsby", "bottleneck_size": 4, "modules_to_save": ["pooler"]},
                         data={"component": "synthetic_classification", "num_train": 32, "num_validation": 16},
                         training={"lr": 5e-3, "batch_size": 8, "max_steps": 4, "max_length": 16})
    assert main(["train", str(recipe)]) == 0
    out = tmp_path / "run"
    metrics = json.loads((out / "metrics.json").read_text())
    assert 0 < metrics["train/trainable_parameters"] < 0.2 * metrics["train/total_parameters"]
    files = sorted(p.name for p in (out / "model").iterdir())
    assert "bottleneck_model.safetensors" in files and "model.safetensors" not in files, files
    with safe_open(str(out / "model" / "bottleneck_model.safetensors"), "pt") as f:
        assert not any("word_embeddings" in k or "attention.self" in k for k in f.keys())
    reset_accelerate()
    assert main(["eval", str(recipe)]) == 0
    again = json.loads((out / "eval" / "metrics.json").read_text())
    for key, value in again.items():
        if key in metrics:
            assert value == pytest.approx(metrics[key], abs=1e-6), key


def test_adapters_on_our_transformer_encoder_with_its_projection_names():
    from harness.models.transformer.modeling_transformer import TransformerConfig, TransformerForSequenceClassification

    torch.manual_seed(0)
    base = TransformerForSequenceClassification(TransformerConfig(vocab_size=50, hidden_size=16, num_layers=2,
                                                                  num_heads=2, intermediate_size=32, num_labels=2))
    base.name_or_path, base.harness_new_modules = "runs/x/model", []
    x = torch.randint(0, 50, (2, 5))
    want = base.eval()(input_ids=x).logits
    with pytest.raises(HarnessError, match="peft.attention_output"):
        apply_peft(copy.deepcopy(base), {"method": "houlsby"}, SEQ)
    model = apply_peft(base, {"method": "houlsby", "bottleneck_size": 4, "attention_output": "self_attn.out",
                              "ffn_output": "ffn.down", "modules_to_save": ["classifier"]}, SEQ).eval()
    assert torch.equal(model(input_ids=x).logits, want)
    blocks = len(model.base_model.transformer.stack.layers)
    assert sum(".bottleneck.adapters." in n and n.endswith("up.weight") for n, _ in model.named_parameters()) == 2 * blocks


@pytest.mark.slow  # three in-process runs (~10 s)
def test_adapter_fusion_recipe_end_to_end(tmp_path, tiny_checkpoint, fresh_accelerate):
    """Two Pfeiffer task adapters trained by `harness train`, fused by a third run; `harness eval` reloads the
    fusion (adapters + fusion layers + head) onto the base and reproduces the metrics."""
    from harness.cli import main

    model = {"component": "pretrained_classifier", "checkpoint": str(tiny_checkpoint)}
    training = {"lr": 5e-3, "batch_size": 8, "max_steps": 3, "max_length": 16}
    for i, name in enumerate(("first", "second")):
        recipe = recipe_file(tmp_path, name, output_dir=str(tmp_path / name), model=model, seed=i + 1,
                             peft={"method": "pfeiffer", "bottleneck_size": 4, "train_layer_norms": False},
                             data={"component": "synthetic_classification", "num_train": 24, "num_validation": 8},
                             training=training)
        assert main(["train", str(recipe)]) == 0
        reset_accelerate()
    recipe = recipe_file(tmp_path, "fusion", output_dir=str(tmp_path / "fusion"), model=model,
                         peft={"method": "adapter_fusion", "adapters": [str(tmp_path / "first"), str(tmp_path / "second")]},
                         data={"component": "synthetic_classification", "num_train": 24, "num_validation": 16},
                         training=training)
    assert main(["train", str(recipe)]) == 0
    config = json.loads((tmp_path / "fusion" / "model" / "bottleneck_config.json").read_text())
    assert config["method"] == "fusion" and config["adapters"] == ["first", "second"]
    metrics = json.loads((tmp_path / "fusion" / "metrics.json").read_text())
    reset_accelerate()
    assert main(["eval", str(recipe)]) == 0
    again = json.loads((tmp_path / "fusion" / "eval" / "metrics.json").read_text())
    for key, value in again.items():
        if key in metrics:
            assert value == pytest.approx(metrics[key], abs=1e-6), key
