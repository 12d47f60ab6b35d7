"""The ready Accelerate configs (configs/accelerate/*.yaml): each is read by Accelerate's own config loader and
launch-argument validation, and a launch that asks for FSDP / DeepSpeed where Accelerate cannot grant it (CPU
processes) is refused with one error instead of silently training as DDP."""

from __future__ import annotations

import sys
import types
from pathlib import Path

import pytest
from testkit import REPO, run_harness

CONFIGS = REPO / "configs" / "accelerate"
#: file → (distributed type, processes, what the launcher turns on)
EXPECTED = {
    "single_gpu.yaml": ("NO", 1, None),
    "multi_gpu_ddp.yaml": ("MULTI_GPU", 8, "multi_gpu"),
    "fsdp.yaml": ("FSDP", 8, "use_fsdp"),
    "deepspeed_zero2.yaml": ("DEEPSPEED", 8, "use_deepspeed"),
    "deepspeed_zero3.yaml": ("DEEPSPEED", 8, "use_deepspeed"),
}


def test_every_config_is_listed():
    assert sorted(p.name for p in CONFIGS.glob("*.yaml")) == sorted(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_config_parses_with_accelerates_loader(name):
    from accelerate.commands.config.config_args import ClusterConfig, load_config_from_file
    from accelerate.commands.launch import _validate_launch_command, launch_command_parser

    config = load_config_from_file(str(CONFIGS / name))  # refuses unknown top-level keys
    assert isinstance(config, ClusterConfig)
    kind, processes, flag = EXPECTED[name]
    assert config.distributed_type.value == kind and config.num_processes == processes
    # what `accelerate launch --config_file` makes of it: every nested key must be a launch argument
    args = launch_command_parser().parse_args(["--config_file", str(CONFIGS / name), "harness/run.py", "r.yaml"])
    known = set(vars(args))
    for section in (config.fsdp_config, config.deepspeed_config):
        unknown = [k for k in section if k not in known]
        assert not unknown, f"{name}: not an accelerate launch argument: {unknown}"
    args, _, _ = _validate_launch_command(args)
    for option in ("multi_gpu", "use_fsdp", "use_deepspeed"):
        assert bool(getattr(args, option)) == (option == flag), (name, option)
    assert args.mixed_precision == "bf16"
    if name == "fsdp.yaml":
        assert args.fsdp_transformer_layer_cls_to_wrap == "BertLayer"
        assert args.fsdp_auto_wrap_policy == "TRANSFORMER_BASED_WRAP" and str(args.fsdp_version) == "2"
        assert str(args.fsdp_reshard_after_forward).lower() == "true"  # full shard
    if flag == "use_deepspeed":
        assert int(args.zero_stage) == (2 if "zero2" in name else 3)


def _accelerator(kind: str, device: str = "cpu", processes: int = 2):
    return types.SimpleNamespace(distributed_type=types.SimpleNamespace(value=kind), num_processes=processes,
                                 device=types.SimpleNamespace(type=device))


def test_check_launch_refuses_a_sharding_accelerate_did_not_grant():
    from harness.errors import HarnessError
    from harness.training.distributed import check_launch

    fsdp = {"ACCELERATE_USE_FSDP": "true"}
    check_launch(_accelerator("FSDP", "cuda"), fsdp)  # granted
    check_launch(_accelerator("MULTI_CPU"), {})  # nothing asked
    check_launch(_accelerator("MULTI_CPU"), {"ACCELERATE_USE_FSDP": "false"})
    with pytest.raises(HarnessError, match="asks for FSDP .* runs these 2 process\\(es\\) as MULTI_CPU on cpu"):
        check_launch(_accelerator("MULTI_CPU"), fsdp)
    with pytest.raises(HarnessError, match="asks for DeepSpeed"):
        check_launch(_accelerator("MULTI_GPU", "cuda"), {"ACCELERATE_USE_DEEPSPEED": "true"})


@pytest.mark.slow  # two launched processes (~20 s)
def test_fsdp_config_with_two_cpu_processes_is_refused(write_recipe):
    """torch's FSDP2 runs over gloo on CPU, but Accelerate 1.15 turns FSDP on only for multi-accelerator
    distributed types: two CPU processes under configs/accelerate/fsdp.yaml would train as plain DDP
    (MULTI_CPU). The run says so and exits 2 instead."""
    recipe = write_recipe("fsdp", training={"num_epochs": 1})
    launcher = [sys.executable, "-m", "accelerate.commands.launch", "--config_file", str(CONFIGS / "fsdp.yaml"), "--num_processes", "2",
                "--mixed_precision", "no", "--main_process_port", "29571"]
    proc = run_harness(str(REPO / "harness" / "run.py"), str(recipe), launcher=launcher, timeout=240)
    assert proc.returncode != 0
    errors = {ln for ln in proc.stderr.splitlines() if ln.startswith("error:")}
    assert len(errors) == 1, proc.stderr[-3000:]  # both processes say the same line
    line = errors.pop()
    assert "asks for FSDP" in line and "as MULTI_CPU on cpu" in line and "--multi_gpu" in line, line
    # (the launcher prints its own ChildFailedError traceback; none comes from the run)
    assert "harness/run.py\", line" not in proc.stderr and "harness/training" not in proc.stderr, proc.stderr[-3000:]
    assert not (Path(recipe).parent / "fsdp" / "metrics.json").exists()
