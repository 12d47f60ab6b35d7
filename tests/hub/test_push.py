"""``harness push``: through the real ``huggingface_hub`` client to a local Hub, then loaded back in a fresh
interpreter that cannot import harness, with identical outputs; the model card's metadata; one clear error for
each bad input, with the run left as it was and the push retryable."""

from __future__ import annotations

import json

import pytest
import yaml
from hubtools import (assert_same, expected_outputs, load_many_without_harness, load_without_harness,
                      make_run, snapshot)

from harness.errors import HarnessError
from harness.hub import push as hub_push
from harness.hub.card import card_metrics, split_metrics

TINY_RECIPE = {"seed": 1, "data": {"component": "synthetic_classification", "num_train": 32, "num_validation": 8},
               "model": {"component": "bert_from_scratch", "hidden_size": 16, "num_layers": 1, "num_heads": 2},
               "training": {"lr": 5e-4, "batch_size": 8}, "tracking": {"report_to": []}}


def tiny_recipe(**sections) -> dict:
    return {**TINY_RECIPE, **sections}


def one_error(err: str) -> str:
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def _push(run, repo="tester/tiny", **kw) -> str:
    return hub_push.push(run, repo, **kw)


@pytest.mark.slow  # a fresh interpreter (~7 s); the default suite checks the upload itself, the card and the errors
def test_push_rnn_classifier_loads_without_harness_with_identical_logits(hub, tmp_path):
    run, model, auto, spec = make_run(tmp_path / "run", "rnn_classifier")
    before = snapshot(run)
    url = _push(run, "tester/tiny-rnn", commit_message="first")
    assert url.startswith(hub.url) and "/tester/tiny-rnn/commit/" in url
    files = hub.hub.files("tester/tiny-rnn")
    assert {"config.json", "model.safetensors", "tokenizer.json", "configuration_rnn.py", "modeling_rnn.py",
            "recipe.yaml", "metrics.json", "README.md"} <= set(files)
    config = json.loads(files["config.json"])
    assert config["auto_map"]["AutoModelForSequenceClassification"] == "modeling_rnn.RNNForSequenceClassification"
    assert b"harness" not in b"".join(line for name, text in files.items() if name.endswith(".py")
                                      for line in text.splitlines() if line.lstrip().startswith((b"from", b"import")))
    assert snapshot(run) == before  # the run is only read
    got = load_without_harness("tester/tiny-rnn", auto, spec, tmp_path, server_url=hub.url)
    assert got["module"].startswith("transformers_modules.")  # the repo's code, not harness's
    assert_same(got["logits"], expected_outputs(model, spec)["logits"], "logits")
    assert got["id2label"] == {"0": "negative", "1": "positive"}


def test_card_metadata_equals_metrics_and_to_folder_is_the_upload(hub, tmp_path):
    run, *_ = make_run(tmp_path / "run", "rnn_classifier")
    folder = tmp_path / "folder"
    from harness.cli import main

    assert main(["push", str(run), "--repo", "tester/card", "--to-folder", str(folder)]) == 0
    from huggingface_hub import ModelCard

    text = (folder / "README.md").read_text()
    card = ModelCard(text)
    metrics = json.loads((run / "metrics.json").read_text())
    expected = {f"{s}/{m}": v for s, ms in split_metrics(metrics).items() for m, v in ms.items()}
    assert card_metrics(text) == expected == {"validation/accuracy": 0.75, "validation/loss": 0.5123456789,
                                              "test/accuracy": 0.625}
    assert card.data.datasets == ["nyu-mll/glue"] and card.data.license == "unknown"  # SST-2: none stated
    assert card.data.pipeline_tag == "text-classification" and "custom_code" in card.data.tags
    for needed in ("AMD EPYC (2 cores)", "| training time | 1.5 s |", "harness train recipe.yaml",
                   "trust_remote_code=True", "## Intended use and limits"):
        assert needed in text, needed
    # the push uploads exactly the folder's files
    _push(run, "tester/card")
    uploaded = {k: v for k, v in hub.hub.files("tester/card").items() if k != ".gitattributes"}
    written = {p.name: p.read_bytes() for p in folder.iterdir()}
    assert uploaded.keys() == written.keys()
    assert all(uploaded[k] == written[k] for k in written if k != "README.md")


def test_revision_branch_and_private(hub, tmp_path):
    run, *_ = make_run(tmp_path / "run", "rnn_classifier")
    _push(run, "tiny-private", private=True, revision="v1")  # no namespace: the token's user
    repo = hub.repos["tester/tiny-private"]
    assert repo["private"] and set(repo["branches"]) == {"main", "v1"}
    assert "model.safetensors" in hub.hub.files("tester/tiny-private", "v1")
    assert "model.safetensors" not in hub.hub.files("tester/tiny-private", "main")


def _no_backoff_waits(monkeypatch) -> None:
    import time
    import types

    from huggingface_hub.utils import _http

    fast = types.SimpleNamespace(**{k: getattr(time, k) for k in dir(time) if not k.startswith("_")})
    fast.sleep = lambda seconds: None
    monkeypatch.setattr(_http, "time", fast)


def test_bad_input_one_clear_error_run_untouched_and_retryable(hub, tmp_path, monkeypatch):
    run, *_ = make_run(tmp_path / "run", "rnn_classifier")
    before = snapshot(run)
    with pytest.raises(HarnessError, match=r"'bad repo!' is not a valid Hub repo id"):
        _push(run, "bad repo!")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(HarnessError, match="no trained model to push"):
        _push(empty)
    monkeypatch.setenv("HF_TOKEN", "hf_wrong")
    with pytest.raises(HarnessError, match="rejected the token.*401"):
        _push(run)
    monkeypatch.delenv("HF_TOKEN")
    with pytest.raises(HarnessError, match="no Hugging Face token"):
        _push(run)
    monkeypatch.setenv("HF_TOKEN", __import__("hub_server").TOKEN)
    hub.hub.fail["commit"] = "disconnect"
    _no_backoff_waits(monkeypatch)  # the client retries the commit 5 times, 23 s of waiting in all
    with pytest.raises(HarnessError, match="network error during the upload.*not committed.*push again"):
        _push(run)
    assert set(hub.hub.files("tester/tiny")) == {".gitattributes"}  # the repo has no partial commit
    assert snapshot(run) == before
    hub.hub.fail.clear()
    _push(run)  # the retry goes through
    assert "model.safetensors" in hub.hub.files("tester/tiny")
    assert snapshot(run) == before


def test_cli_errors_are_one_line(tmp_path, capsys):
    from harness.cli import main

    run, *_ = make_run(tmp_path / "run", "rnn_classifier")
    capsys.readouterr()
    assert main(["push", str(run), "--repo", "a/b/c"]) == 2
    assert one_error(capsys.readouterr().err).startswith("error: --repo: 'a/b/c' is not a valid Hub repo id")
    assert main(["push", str(run), "--repo", "a/b"]) == 2  # HF_HUB_OFFLINE=1 in the test session
    assert "HF_HUB_OFFLINE is set" in one_error(capsys.readouterr().err)
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "x").write_text("x")
    assert main(["push", str(run), "--repo", "a/b", "--to-folder", str(tmp_path / "taken")]) == 2
    assert "not an empty folder" in one_error(capsys.readouterr().err)
    # a model evaluated again with `harness eval` (eval/metrics.json): its scores are in the card too
    (run / "eval").mkdir()
    (run / "eval" / "metrics.json").write_text(json.dumps({"test/accuracy": 0.5, "test/tokens": 40}))
    assert main(["push", str(run), "--repo", "a/b", "--to-folder", str(tmp_path / "out")]) == 0
    from huggingface_hub import ModelCard

    text = (tmp_path / "out" / "README.md").read_text()
    results = ModelCard(text).data.eval_results
    assert len(results) == 4 and results[-1].metric_value == 0.5 and "## Evaluation (`harness eval`)" in text
    assert (tmp_path / "out" / "eval_metrics.json").is_file()


def test_recipe_hub_section_is_validated(tmp_path):
    from harness.config.loader import load_recipe
    from harness.config.schema import HubConfig, validate
    from harness.errors import RecipeError

    def check(**sections):
        path = tmp_path / "r.yaml"
        path.write_text(yaml.safe_dump(tiny_recipe(output_dir=str(tmp_path / "run"), **sections)))
        return validate(load_recipe(path))

    assert check().hub == HubConfig()
    recipe = check(hub={"push_to_hub": True, "hub_model_id": "me/tiny", "hub_private_repo": True})
    assert recipe.hub.push_to_hub and recipe.hub.hub_model_id == "me/tiny" and recipe.hub.hub_private_repo
    with pytest.raises(RecipeError, match="hub.hub_model_id: hub.push_to_hub is true but no repo is named"):
        check(hub={"push_to_hub": True})
    with pytest.raises(RecipeError, match="hub.hub_model_id: 'me/bad name' is not a valid Hub repo id"):
        check(hub={"hub_model_id": "me/bad name"})
    with pytest.raises(RecipeError, match=r"training.push_to_hub: unknown key .*here it is hub.push_to_hub"):
        check(training={"push_to_hub": True})
    with pytest.raises(RecipeError, match=r"hub.push: unknown key"):
        check(hub={"push": True})


@pytest.mark.slow
def test_recipe_hub_section_pushes_at_the_end_of_training(hub, tmp_path, fresh_accelerate):
    from harness.cli import main

    path = tmp_path / "r.yaml"
    path.write_text(yaml.safe_dump(tiny_recipe(output_dir=str(tmp_path / "run"), training={"batch_size": 8, "num_epochs": 1},
                                               hub={"push_to_hub": True, "hub_model_id": "tester/trained",
                                                    "hub_revision": "exp1"})))
    assert main(["train", str(path)]) == 0
    files = hub.hub.files("tester/trained", "exp1")
    assert {"model.safetensors", "config.json", "recipe.yaml", "metrics.json", "README.md"} <= set(files)
    assert json.loads(files["metrics.json"]) == json.loads((tmp_path / "run" / "metrics.json").read_text())


FAMILIES = ["rnn_lm", "rnn_tagger", "rnn_seq2seq", "transformer_lm", "transformer_seq2seq", "siamese"]


@pytest.mark.slow
def test_every_family_round_trips_through_the_hub(hub, tmp_path):
    """Each family pushed, then all loaded in one fresh interpreter without harness: identical outputs (one
    interpreter, so torch and transformers are imported once)."""
    jobs, want = [], {}
    for family in FAMILIES:
        run, model, auto, spec = make_run(tmp_path / family, family)
        _push(run, f"tester/{family}")
        jobs.append({"source": f"tester/{family}", "auto": auto, "spec": spec})
        want[family] = expected_outputs(model, spec)
    # the control: a run's own model folder does not load without harness (no auto_map, no code)
    jobs.append({"source": str(tmp_path / "rnn_lm" / "model"), "auto": jobs[0]["auto"], "spec": jobs[0]["spec"]})
    got = load_many_without_harness(jobs, tmp_path, server_url=hub.url)
    for family, out in zip(FAMILIES, got):
        assert "error" not in out, (family, out["error"])
        assert out["module"].startswith("transformers_modules."), family  # the repo's code, not harness's
        for key, value in want[family].items():
            assert_same(out[key], value, (family, key))
    assert "does not recognize this architecture" in got[-1]["error"]

def test_leaderboard_folder_is_one_repo_with_a_model_per_task(tmp_path):
    from huggingface_hub import ModelCard

    board = tmp_path / "glue"
    for task in ("sst2", "rte"):
        make_run(board / task, "rnn_classifier", recipe={"name": f"glue-{task}", "output_dir": str(board / task),
                                                         "data": {"component": "glue", "task": task},
                                                         "model": {"component": "rnn_classifier"}})
    (board / "leaderboard.md").write_text("# GLUE dev\n\n| task | score |\n|---|---|\n| SST-2 | 75.0 |\n")
    (board / "glue_submission.zip").write_bytes(b"PK\x05\x06" + b"\0" * 18)
    files = hub_push.to_folder(board, tmp_path / "out", "tester/glue")
    assert {"README.md", "leaderboard.md", "glue_submission.zip", "sst2/model.safetensors", "sst2/modeling_rnn.py",
            "rte/config.json", "rte/README.md"} <= set(files)
    card = ModelCard((tmp_path / "out" / "README.md").read_text())
    scores = {(r.dataset_config, r.dataset_split, r.metric_type): r.metric_value for r in card.data.eval_results}
    assert scores[("sst2", "validation", "accuracy")] == scores[("rte", "validation", "accuracy")] == 0.75
    assert card.data.license == "other"  # SST-2 none stated, RTE research terms: not one license
    assert "| SST-2 | 75.0 |" in card.text and "subfolder='sst2'" in card.text
    assert "subfolder='rte', trust_remote_code=True" in (tmp_path / "out" / "rte" / "README.md").read_text()


def test_peft_base_from_a_local_folder_needs_its_hub_id(tmp_path):
    run = tmp_path / "run"
    (run / "model").mkdir(parents=True)
    local = tmp_path / "my-base"
    local.mkdir()
    (run / "model" / "adapter_config.json").write_text(json.dumps(
        {"peft_type": "LORA", "task_type": "SEQ_CLS", "base_model_name_or_path": str(local)}))
    (run / "model" / "adapter_model.safetensors").write_bytes(b"\0" * 8)
    (run / "recipe.yaml").write_text(yaml.safe_dump({"model": {"component": "pretrained_classifier",
                                                               "checkpoint": str(local)}}))
    with pytest.raises(HarnessError, match=r"local folder .*my-base.* pass --base-model NAMESPACE/NAME"):
        hub_push.to_folder(run, tmp_path / "a", "me/x")
    hub_push.to_folder(run, tmp_path / "b", "me/x", base_model="me/my-base")
    adapter = json.loads((tmp_path / "b" / "adapter_config.json").read_text())
    assert adapter["base_model_name_or_path"] == "me/my-base"
    # a shipped copy's folder is named by its Hub id without help
    from harness.models.pretrained import resolve_checkpoint

    shipped = resolve_checkpoint("sentence-transformers/all-MiniLM-L6-v2")
    (run / "model" / "adapter_config.json").write_text(json.dumps(
        {"peft_type": "LORA", "task_type": "SEQ_CLS", "base_model_name_or_path": shipped}))
    (run / "recipe.yaml").write_text(yaml.safe_dump({"model": {"component": "pretrained_classifier",
                                                               "checkpoint": shipped}}))
    hub_push.to_folder(run, tmp_path / "c", "me/x")
    adapter = json.loads((tmp_path / "c" / "adapter_config.json").read_text())
    assert adapter["base_model_name_or_path"] == "sentence-transformers/all-MiniLM-L6-v2"
