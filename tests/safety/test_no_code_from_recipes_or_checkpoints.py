"""No recipe and no checkpoint folder can run code: components are registered names only (nothing else is
imported), a checkpoint is read without unpickling objects, YAML tags are refused, and a model's own code
runs only when the command line allows it. (Issue 12's probe, "code execution" group.)"""

from __future__ import annotations

import json
import pickle
import sys
from pathlib import Path

import pytest
import yaml
from testkit import REPO, one_error, recipe_file, reset_accelerate

from harness.cli import main

MARKER_NAME = "pwned"


class Payload:
    """Unpickling this writes a marker file: what a crafted checkpoint would do."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return (Path.write_text, (Path(self.marker), "code ran"))


@pytest.mark.parametrize("section, spec", [
    ("data", {"component": "harness.workflows.glue_leaderboard.main",
              "argv": ["--recipe", "x", "--runs-dir", "y", "--launcher", "sh -c 'id > /tmp/pwned' --"]}),
    ("data", {"component": "harness.workflows.glue_leaderboard:main"}),
    ("data", {"component": "os:system", "command": "id"}),
    ("data", {"component": "subprocess.run"}),
    ("model", {"component": "builtins:eval"}),
    ("model", {"component": "harness.models.bert:bert_classifier"}),  # a real builder, but not by path
    ("loss", {"component": "torch.nn:CrossEntropyLoss"}),
    ("step", {"component": "harness.training.steps:StandardStep"}),
    ("optimizer", {"component": "torch.optim.AdamW"}),
    ("scheduler", {"component": "harness.training.optim.linear"}),
])
def test_only_registered_names_can_be_built(tmp_path, capsys, section, spec):
    before = set(sys.modules)
    path = recipe_file(tmp_path, **{section: spec})
    for command in ("validate", "train"):
        assert main([command, str(path)]) == 2
        err = capsys.readouterr().err
        one_error(err)
        assert f"{section}.component: unknown {section} component {spec['component']!r}" in err
    assert not {m for m in set(sys.modules) - before if m in ("subprocess", "harness.workflows.glue_leaderboard")}
    assert not (tmp_path / "run").exists() and not Path("/tmp/pwned").exists()


def test_callbacks_and_logits_processors_are_registered_names_too(tmp_path, capsys):
    path = recipe_file(tmp_path, callbacks=[{"component": "os.system"}],
                       generation={"logits_processors": [{"component": "transformers:TopKLogitsWarper"}]})
    assert main(["validate", str(path)]) == 2
    err = capsys.readouterr().err
    assert "callbacks[0].component: unknown callback component 'os.system'" in err
    assert "generation.logits_processors[0].component: unknown logits_processor component" in err


@pytest.mark.parametrize("text", [
    "output_dir: !!python/object/apply:os.system ['touch {marker}']\n",
    "output_dir: !!python/name:os.system\n",
    "!!python/object/new:os.system ['touch {marker}']\n",
])
def test_yaml_tags_that_would_run_code_are_refused(tmp_path, capsys, text):
    marker = tmp_path / MARKER_NAME
    path = tmp_path / "evil.yaml"
    path.write_text(text.format(marker=marker))
    assert main(["validate", str(path)]) == 2
    assert "not valid YAML" in one_error(capsys.readouterr().err)
    assert not marker.exists()


def test_a_model_folder_with_code_needs_the_command_line(tmp_path, capsys, monkeypatch):
    from harness.config.schema import TRUST_REMOTE_CODE_ENV

    monkeypatch.delenv(TRUST_REMOTE_CODE_ENV, raising=False)
    path = recipe_file(tmp_path, model={"component": "pretrained_classifier", "checkpoint": str(tmp_path),
                                        "trust_remote_code": True})
    assert main(["train", str(path)]) == 2
    assert "--trust-remote-code" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


@pytest.fixture
def finished_run(tmp_path, fresh_accelerate):
    """A tiny finished run (checkpoints at steps 4 and 8) to tamper with."""
    path = recipe_file(tmp_path, training={"lr": 5e-4, "batch_size": 8, "num_epochs": 2})
    assert main(["train", str(path)]) == 0
    return path, tmp_path / "run"


def test_a_checkpoint_holds_no_pickle_the_harness_writes(finished_run):
    _, out = finished_run
    ckpt = out / "checkpoints" / "checkpoint-8"
    names = sorted(p.name for p in ckpt.iterdir())
    assert "trainer_state.json" in names and "model.safetensors" in names
    assert not [n for n in names if n.endswith((".pt", ".pkl")) and not n.startswith("random_states")]
    state = json.loads((ckpt / "trainer_state.json").read_text())
    assert state["scheduler"]["last_epoch"] == 8  # the schedule, as JSON


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")  # the crafted pickle's, not ours
@pytest.mark.parametrize("planted", ["custom_checkpoint_0.pkl", "random_states_0.pkl", "carried_state_0.pt"])
def test_a_crafted_checkpoint_cannot_run_code_on_resume(finished_run, capsys, planted):
    path, out = finished_run
    ckpt = out / "checkpoints" / "checkpoint-8"
    marker = out.parent / MARKER_NAME
    (ckpt / planted).write_bytes(pickle.dumps(Payload(marker)))
    if planted == "custom_checkpoint_0.pkl":  # make the harness take its old-format path to that file
        state = json.loads((ckpt / "trainer_state.json").read_text())
        state.pop("scheduler")
        (ckpt / "trainer_state.json").write_text(json.dumps(state))
    before = json.loads((out / "metrics.json").read_text())
    reset_accelerate()
    code = main(["train", str(path), f"training.resume={ckpt}"])
    err = capsys.readouterr().err
    assert not marker.exists(), "unpickling ran code"
    if planted == "custom_checkpoint_0.pkl":  # read with weights_only=True: refused, one line
        assert code == 2
        assert f"training.resume: the checkpoint {ckpt} cannot be loaded" in one_error(err)
    else:
        # carried_state_*.pt is never read (the carried state is safetensors); Accelerate skips RNG states it
        # cannot load (weights_only=True), and the harness's own JSON/safetensors copy restores them
        assert code == 0, err
        after = json.loads((out / "metrics.json").read_text())
        assert after["validation/accuracy"] == before["validation/accuracy"]


def test_extends_reads_yaml_only(tmp_path, capsys):
    evil = tmp_path / "base.py"
    evil.write_text(f"open({str(tmp_path / MARKER_NAME)!r}, 'w')\n")
    child = tmp_path / "child.yaml"
    child.write_text(yaml.safe_dump({"extends": str(evil), "output_dir": "x"}))
    assert main(["validate", str(child)]) == 2
    capsys.readouterr()
    assert not (tmp_path / MARKER_NAME).exists()


def test_the_shipped_recipes_name_registered_components_only():
    from harness import registry

    for path in sorted((REPO / "recipes").rglob("*.yaml")):
        raw = yaml.safe_load(path.read_text())
        for section in ("data", "model", "optimizer", "scheduler", "loss", "step"):
            spec = raw.get(section)
            if isinstance(spec, dict) and "component" in spec:
                registry.entry(section, spec["component"])  # raises for anything else
