"""``harness train`` / ``harness eval`` in this process on the tiny recipe: the outputs of a run, the saved
model, the refusals that come after validation. (The same through ``accelerate launch`` in a subprocess,
DDP, SIGKILL resume and the real-checkpoint runs are the ``slow`` tests.)"""

from __future__ import annotations

import json

import pytest
import yaml
from testkit import REPO, reset_accelerate

from harness.cli import main
from harness.errors import HarnessError


def test_train_then_eval_in_process(write_recipe, tmp_path, fresh_accelerate, capsys):
    recipe = write_recipe("e2e")
    assert main(["train", str(recipe)]) == 0
    out = tmp_path / "e2e"
    for name in ("recipe.yaml", "metrics.json", "report.md", "loss_curve.png", "predictions_test.tsv",
                 "logs/history.jsonl", "model/model.safetensors", "model/tokenizer.json"):
        assert (out / name).is_file(), name
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["validation/accuracy"] >= 0.8, metrics  # the lexicon rule is learnt
    assert metrics["train/global_step"] == 64 and metrics["train/tokens"] > 0
    report = (out / "report.md").read_text()
    # the report names the optimizer that ran (fused AdamW on CPU), not the class's default
    assert "| optimizer | torch.optim.AdamW (fused) |" in report
    assert len((out / "predictions_test.tsv").read_text().splitlines()) == 33  # header + 32

    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    model = AutoModelForSequenceClassification.from_pretrained(out / "model")
    tok = AutoTokenizer.from_pretrained(out / "model")
    assert model(**tok(["good great film"], return_tensors="pt")).logits.shape == (1, 2)

    reset_accelerate()
    assert main(["eval", str(recipe)]) == 0
    again = json.loads((out / "eval" / "metrics.json").read_text())
    for key, value in again.items():
        assert value == pytest.approx(metrics[key], abs=1e-6), key


def test_an_earlier_run_is_refused_and_overwrite_moves_it_aside_until_training_starts(tmp_path):
    from harness.run import load, run_dir

    recipe_path = tmp_path / "r.yaml"
    recipe_path.write_text(yaml.safe_dump({"extends": str(REPO / "recipes/tiny/synthetic_bert.yaml"),
                                           "output_dir": str(tmp_path / "run")}))
    out = tmp_path / "run"
    with run_dir(load(str(recipe_path), [])):  # nothing there yet
        assert (out / ".harness.lock").is_file()
    assert not (out / ".harness.lock").exists()
    (out / "checkpoints" / "checkpoint-3").mkdir(parents=True)
    (out / "checkpoints" / "checkpoint-3" / "trainer_state.json").write_text("{}")
    (out / "metrics.json").write_text('{"old": 1}')
    (out / "notes.txt").write_text("mine")  # not a run file: never touched
    with pytest.raises(HarnessError, match="already holds a run"):
        with run_dir(load(str(recipe_path), [])):
            pass
    with run_dir(load(str(recipe_path), ["training.resume=auto"])):  # continuing it is fine
        assert (out / "metrics.json").is_file()
    # overwrite, and the new run fails before training: the earlier run is put back
    with pytest.raises(RuntimeError):
        with run_dir(load(str(recipe_path), ["training.overwrite=true"])):
            assert not (out / "metrics.json").exists() and (out / ".replaced" / "metrics.json").is_file()
            (out / "recipe.yaml").write_text("new")
            raise RuntimeError("data path typo")
    assert (out / "metrics.json").read_text() == '{"old": 1}' and not (out / "recipe.yaml").exists()
    # overwrite, and the new run gets going: the earlier run is gone once it commits
    with run_dir(load(str(recipe_path), ["training.overwrite=true"])) as folder:
        folder.commit()
    assert not (out / "checkpoints").exists() and not (out / "metrics.json").exists()
    assert not (out / ".replaced").exists() and (out / "notes.txt").read_text() == "mine"


def test_group_by_length_is_refused_for_a_streamed_lm(tmp_path, fresh_accelerate, capsys):
    text = tmp_path / "lm.txt"
    text.write_text("\n".join(f"the cat sat on mat number {i}" for i in range(60)) + "\n")
    recipe = tmp_path / "lm.yaml"
    recipe.write_text(yaml.safe_dump({
        "extends": str(REPO / "recipes" / "lm" / "lstm_small_ptb.yaml"), "output_dir": str(tmp_path / "lm"),
        "data": {"train_file": str(text), "validation_file": str(text), "test_file": str(text)},
        "model": {"embedding_size": 8, "hidden_size": 8},
        "training": {"group_by_length": True}, "tracking": {"report_to": []},
    }))
    assert main(["train", str(recipe)]) == 2
    err = capsys.readouterr().err
    assert "training.group_by_length" in err and "Traceback" not in err


def test_truncated_bptt_needs_a_streamed_task(write_recipe, tmp_path, fresh_accelerate, capsys):
    recipe = write_recipe("tbptt", step={"component": "truncated_bptt"})
    assert main(["train", str(recipe)]) == 2
    assert "needs a task whose batches continue each other" in capsys.readouterr().err


def test_peft_on_a_model_from_scratch_is_refused(write_recipe, tmp_path, fresh_accelerate, capsys):
    recipe = write_recipe("scratch_lora", peft={"method": "lora", "r": 4, "target_modules": ["query"]})
    assert main(["train", str(recipe)]) == 2
    err = capsys.readouterr().err
    assert "has no checkpoint path to reload an adapter onto" in err and "Traceback" not in err


def test_a_recipe_loss_trains_the_model(write_recipe, tmp_path, fresh_accelerate):
    """``loss: cross_entropy`` with label smoothing replaces the model's own loss: the logged training loss
    of a smoothed run stays above the smoothing floor the plain loss goes below."""
    plain = write_recipe("plain")
    smooth = write_recipe("smooth",
                          loss={"component": "cross_entropy", "label_smoothing": 0.4})
    assert main(["train", str(plain)]) == 0
    reset_accelerate()
    assert main(["train", str(smooth)]) == 0

    def last_loss(name):
        rows = [json.loads(line) for line in (tmp_path / name / "logs" / "history.jsonl").read_text().splitlines()]
        return [r["loss"] for r in rows if "loss" in r][-1]

    # two classes, ε = 0.4: even a perfect model pays ≥ H(0.8, 0.2) ≈ 0.500 nats
    assert last_loss("smooth") > 0.49 > last_loss("plain")
    metrics = json.loads((tmp_path / "smooth" / "metrics.json").read_text())
    assert metrics["validation/accuracy"] >= 0.8  # and it still learns the task
