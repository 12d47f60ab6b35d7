"""scripts/bench_gpu_support.py, the Python half of scripts/bench_gpu.sh: the fp16 carry copy restores the original
dtypes and values to fp16 precision, what to install is decided from what imports, and the summary puts the
issue's goals beside the results (and says what did not run). The whole script on CPU: ``BENCH_GPU_TINY=1 bash
scripts/bench_gpu.sh DIR`` after ``scripts/prepare_gpu_carry.sh`` (needs PyPI and $HARNESS_DATA_DIR; a manual check)."""

from __future__ import annotations

import gzip
import json

import torch
from safetensors.torch import load_file, save_file
from testkit import load_script


def test_pack_and_restore_round_trip(tmp_path):
    support = load_script("bench_gpu_support")
    src = tmp_path / "model"
    src.mkdir()
    torch.manual_seed(0)
    weights = {"w": torch.randn(4, 3), "ids": torch.arange(5), "b": torch.randn(3, dtype=torch.float64)}
    save_file(weights, str(src / "model.safetensors"))
    (src / "config.json").write_text('{"model_type": "bert"}')
    carry = tmp_path / "carry"
    support.pack(src, carry / "minilm")
    packed = load_file(str(carry / "minilm" / "model.safetensors"))
    assert packed["w"].dtype == torch.float16 and packed["b"].dtype == torch.float16 and packed["ids"].dtype == torch.int64
    (carry / "data" / "glue" / "SST-2").mkdir(parents=True)
    with gzip.open(carry / "data" / "glue" / "SST-2" / "dev.tsv.gz", "wt") as f:
        f.write("sentence\tlabel\ngood\t1\n")
    work = tmp_path / "work"
    support.restore(carry, work)
    back = load_file(str(work / "minilm" / "model.safetensors"))
    assert {k: v.dtype for k, v in back.items()} == {k: v.dtype for k, v in weights.items()}
    torch.testing.assert_close(back["w"], weights["w"], rtol=1e-3, atol=1e-3)
    assert torch.equal(back["ids"], weights["ids"])
    assert (work / "minilm" / "config.json").is_file()
    assert (work / "data" / "glue" / "SST-2" / "dev.tsv").read_text() == "sentence\tlabel\ngood\t1\n"


def test_needs_installs_nothing_where_everything_imports():
    # this environment has datasets, evaluate and a transformers at pyproject's minimum or newer
    support = load_script("bench_gpu_support")
    assert support.needs() == []
    assert support._minimum("transformers") and support._as_tuple("5.17.0") < support._as_tuple("5.20")


def _loop(ours: float, trainer: float) -> dict:
    side = {"tokens_per_second": 0.0, "median_step_ms": 10.0, "steps": 300}
    return {"summary": {"ours": {**side, "tokens_per_second": ours}, "trainer": {**side, "tokens_per_second": trainer},
                        "tps_ratio": ours / trainer, "best_step_tps_ratio": 1.0, "tokens_equal": True,
                        "loss": {"max_rel_diff": 1e-7}}}


def test_summary_sets_goals_beside_results_and_names_what_failed(tmp_path):
    support = load_script("bench_gpu_support")
    (tmp_path / "environment.json").write_text(json.dumps({"gpu": "NVIDIA H200", "date": "2026-11-28"}))
    (tmp_path / "stages.json").write_text(json.dumps({"tiny": False, "loop_label": "bf16",
                                                      "ran": ["loop", "compile", "main", "main_cudagraphs"],
                                                      "failed": ["compile (exit 124, time limit)"]}))
    (tmp_path / "bench_loop.json").write_text(json.dumps(_loop(16000.0, 10000.0)))
    (tmp_path / "main_job_metrics.json").write_text(json.dumps({"train/seconds": 14.0, "validation/accuracy": 0.871,
                                                                "train/global_step": 2105}))
    (tmp_path / "main_job_cudagraphs_metrics.json").write_text(json.dumps(
        {"train/seconds": 21.0, "validation/accuracy": 0.874, "train/global_step": 2105}))
    result = support.summarize(tmp_path)
    assert result["loop"]["ratio"] == 1.6 and result["loop"]["goal_met"]
    assert result["main_job_cudagraphs"]["train_seconds"] == 21.0 and not result["main_job_cudagraphs"]["goal_met"]
    assert result["loop_compile"] == {"ran": False}
    assert result["main_job"]["goal_met"] and result["main_job"]["train_seconds"] == 14.0
    md = (tmp_path / "bench_gpu.md").read_text()
    assert "**1.60×** (goal ≥ 1.5×)" in md and "did not finish" in md and "compile (exit 124, time limit)" in md
    assert "one epoch, training.compile: reduce-overhead" in md and "| **21.0** (goal ≤ 15)" in md
    assert json.loads((tmp_path / "bench_gpu.json").read_text())["environment"]["gpu"] == "NVIDIA H200"


def test_bench_loop_compile_flag_reaches_both_loops(tmp_path):
    """--compile: our recipe's training.compile (validated as the loop reads it) and the Trainer's torch_compile."""
    import yaml
    from transformers import TrainingArguments

    from harness.run import load

    bench = load_script("bench_loop")
    args = bench.parse_args(["--compile", "--mixed-precision", "bf16"])
    path = tmp_path / "r.yaml"
    path.write_text(yaml.safe_dump(bench.make_recipe(args, None)))
    recipe = load(str(path), [])
    assert recipe.training.compile is True and recipe.training.mixed_precision == "bf16"
    assert TrainingArguments(output_dir=str(tmp_path / "hf"), torch_compile=recipe.training.compile).torch_compile
    assert bench.make_recipe(bench.parse_args([]), None)["training"]["compile"] is False


def test_bench_loop_profile_covers_whole_steps_and_names_their_parts():
    """--profile-steps: the probe opens the profiler at training forward skip+1 and closes it at forward
    skip+steps+1, so the window is whole steps; the summary counts per step and splits the CPU time by phase."""
    bench = load_script("bench_loop")
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.ReLU(), torch.nn.Linear(16, 2))
    optimizer = torch.optim.AdamW(model.parameters())
    probe = bench._Probe({"skip": 2, "steps": 3})
    probe.attach(model)
    model.train()
    for _ in range(6):  # forwards 3, 4, 5 are profiled; forward 6 closes the window
        loss = model(torch.randn(4, 8)).square().mean()
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    profile = probe.report()["profile"]
    assert profile["steps"] == 3 and profile["wall_ms_per_step"] > 0
    assert profile["gpu_busy_ms_per_step"] is None  # no CUDA activity on a CPU
    # two linear layers forward (addmm) per step: counted per step, not over the window
    assert dict((k, c) for k, c, _ in profile["top_host_self_cpu"]).get("aten::addmm") == 2
    phases = profile["phase_cpu_ms_per_step"]
    assert phases["forward"] > 0 and phases["backward"] > 0 and phases["optimizer"] > 0
    text = bench.render_profile({"ours": profile, "trainer": profile})
    assert "| wall ms |" in text and "CPU ms in forward" in text


def test_bench_loop_profile_window_that_never_closes_says_so():
    bench = load_script("bench_loop")
    model = torch.nn.Linear(4, 2)
    probe = bench._Probe({"skip": 1, "steps": 5})
    probe.attach(model)
    model.train()
    for _ in range(3):
        model(torch.randn(2, 4))
    assert "ended before the profile window closed" in probe.report()["profile"]["error"]
    probe.profiler.prof.__exit__(None, None, None)  # the window left open by the short run
    text = bench.render_profile({"ours": probe.report()["profile"], "trainer": {"steps": 5}})
    assert text.startswith("Profile: ours: the run ended before")


def test_bench_loop_refuses_a_profile_window_past_the_last_step():
    bench = load_script("bench_loop")
    import pytest

    with pytest.raises(SystemExit, match="must be < --steps"):
        bench.main(["--steps", "10", "--profile-skip", "5", "--profile-steps", "5"])
