"""lm_text (local files and the datasets path) and the recipe run: fit → evaluate → report."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import yaml
from datasets import DatasetDict

from harness import registry
from harness.config.loader import load_recipe
from harness.config.schema import validate
from harness.data.lm import LMTextTask, lm_text
from harness.errors import DataError, HarnessError, RecipeError
from harness.models.ngram import NgramLM, ngram_lm
from harness.run import evaluate, procedure_of, train
from harness.training import counting

REPO = Path(__file__).resolve().parents[2]

TRAIN = ["the cat sat on the mat", "", "the dog sat on the log", "a cat saw a dog", "  ", "The Mat was red"]
VALID = ["the cat sat on the log", "a zebra sat"]
TEST = ["the dog saw the cat"]


def write_lines(path: Path, lines: list[str]) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(f" {line}" for line in lines) + "\n", encoding="utf-8")  # PTB lines start with a space
    return str(path)


@pytest.fixture
def files(tmp_path):
    d = tmp_path / "ptb"
    return {"train_file": write_lines(d / "ptb.train.txt", TRAIN), "validation_file": write_lines(d / "ptb.valid.txt", VALID),
            "test_file": write_lines(d / "ptb.test.txt", TEST)}


@pytest.fixture
def registered():
    """The short names the harness registers for these components."""
    assert registry.resolve("data", "lm_text") is lm_text
    assert registry.resolve("model", "ngram_lm") is ngram_lm


# ------------------------------------------------------------------------ lm_text


def test_local_files_become_sentence_splits(files):
    task = lm_text(**files)
    assert isinstance(task, LMTextTask) and isinstance(task.splits, DatasetDict)
    assert {k: len(v) for k, v in task.splits.items()} == {"train": 4, "validation": 2, "test": 1}  # blank lines dropped
    assert task.eval_splits == ("validation", "test") and task.add_eos
    assert next(task.sentences()) == ["the", "cat", "sat", "on", "the", "mat"]
    assert list(task.sentences("train"))[-1] == ["The", "Mat", "was", "red"]
    assert list(lm_text(**files, lowercase=True).sentences("train"))[-1] == ["the", "mat", "was", "red"]
    assert task.num_words("test") == 5


def test_relative_paths_resolve_against_data_dir(files, tmp_path):
    task = lm_text(train_file="ptb/ptb.train.txt", data_dir=str(tmp_path))
    assert len(task.splits["train"]) == 4 and task.eval_splits == ()


def test_datasets_path_with_a_local_dataset_folder(tmp_path, monkeypatch):
    import datasets

    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", str(tmp_path / "cache"))
    folder = tmp_path / "wt"
    write_lines(folder / "train.txt", TRAIN)
    write_lines(folder / "test.txt", TEST)
    task = lm_text(dataset=str(folder))
    assert {k: len(v) for k, v in task.splits.items()} == {"train": 4, "test": 1}
    assert list(task.sentences("test")) == [TEST[0].split()]
    with pytest.raises(DataError, match="has no column 'sentence'"):
        lm_text(dataset=str(folder), text_column="sentence")


def test_data_errors(files, tmp_path):
    with pytest.raises(DataError, match="data file not found"):
        lm_text(train_file=str(tmp_path / "missing.txt"))
    with pytest.raises(DataError, match="no sentences"):
        lm_text(train_file=write_lines(tmp_path / "empty.txt", ["", "  "]))
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"fine line\nsecond \xff line\n")
    with pytest.raises(DataError, match=r"bad\.txt:2: not UTF-8"):
        lm_text(train_file=str(bad))
    with pytest.raises(RecipeError, match="either dataset"):
        lm_text(dataset="ptb_text_only", **files)
    with pytest.raises(RecipeError, match="needs train_file"):
        lm_text()
    with pytest.raises(DataError, match="cannot be loaded .* offline"):
        lm_text(dataset="no-such-org/no-such-dataset")


# ------------------------------------------------------------------------ the recipe run


def recipe_for(tmp_path, files, **model) -> Path:
    body = {"name": "tiny-kn3", "output_dir": str(tmp_path / "run"), "tracking": {"report_to": []},
            "data": {"component": "lm_text", **files},
            "model": {"component": "ngram_lm", "order": 3, "smoothing": "modified_kneser_ney",
                      "discount": [0.5, 1.0, 1.5], **model},
            "evaluation": {"predict_splits": ["test"]}}
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(body))
    return path


def test_harness_train_fits_evaluates_and_reports_the_run(tmp_path, files, registered):
    path = recipe_for(tmp_path, files)
    recipe = validate(load_recipe(path))
    assert procedure_of(recipe) is counting.Counting
    report = train(str(path), [])
    out = tmp_path / "run"
    assert report == out / "report.md"
    metrics = json.loads((out / "metrics.json").read_text())
    for split in ("validation", "test"):
        for key in ("perplexity", "cross_entropy_bits", "oov_rate", "tokens", "scoring_seconds", "tokens_per_second"):
            assert f"{split}/{key}" in metrics
        assert math.isfinite(metrics[f"{split}/perplexity"])
    assert metrics["validation/oov_rate"] == pytest.approx(1 / 11)  # zebra, of 9 words + 2 </s>
    assert metrics["validation/cross_entropy_bits"] == pytest.approx(math.log2(metrics["validation/perplexity"]))
    assert metrics["model/ngrams_1"] == 3 + 13  # <unk> <s> </s> + 13 word types (case kept)
    assert metrics["model/ngrams_2"] > 0 and metrics["model/ngrams_3"] > 0
    assert metrics["train/tokens"] == 21 + 4 and metrics["train/build_seconds"] >= 0 and metrics["wall_seconds"] > 0
    text = report.read_text()
    assert text.startswith("# tiny-kn3\n")
    assert "test/perplexity" in text and "## Samples" in text and "cpu" in text
    assert (out / "recipe.yaml").is_file() and (out / "predictions_test.tsv").is_file()
    # the saved ARPA model scores what the report says
    model = NgramLM.load(out / "model")
    task = lm_text(**files)
    assert model.perplexity(list(task.sentences("test"))) == pytest.approx(metrics["test/perplexity"], rel=1e-8)
    # an earlier run is not overwritten unless asked
    with pytest.raises(HarnessError, match="already holds a run"):
        train(str(path), [])
    train(str(path), ["training.overwrite=true"])
    # harness eval: the saved model, scored again
    evaluated = evaluate(str(path), [])
    assert evaluated["test/perplexity"] == pytest.approx(metrics["test/perplexity"], rel=1e-8)
    assert (out / "eval" / "metrics.json").is_file() and (out / "eval" / "predictions_test.tsv").is_file()


def test_the_report_samples_with_the_recipe_generation_settings(tmp_path, files, registered):
    path = recipe_for(tmp_path, files)
    body = yaml.safe_load(path.read_text())
    body["generation"] = {"do_sample": True, "top_k": 1}
    path.write_text(yaml.safe_dump(body))
    text = train(str(path), []).read_text()
    assert "(do_sample True, top_k 1)" in text
    samples = [line.split(". ", 1)[1] for line in text.split("## Samples", 1)[1].splitlines() if line[:2] in
               {f"{i}." for i in range(1, 6)}]
    # top-k 1 keeps only the most likely word (and its ties: cat / dog, mat / log after "the ... on the")
    greedy = {f"the {a} sat on the {b} </s>" for a in ("cat", "dog") for b in ("mat", "log")}
    assert len(samples) == 5 and set(samples) <= greedy


def test_bad_model_arguments_fail_at_validation(tmp_path, files, registered):
    with pytest.raises(RecipeError, match=r"model.smoothing: expected one of .* \(did you mean 'kneser_ney'\?\)"):
        validate(load_recipe(recipe_for(tmp_path, files, smoothing="kneser-ney")))
    with pytest.raises(RecipeError, match="model.ordr: unknown key"):
        validate(load_recipe(recipe_for(tmp_path, files, ordr=3)))


def test_shipped_recipe_validates(monkeypatch, tmp_path, registered):
    monkeypatch.setenv("HARNESS_DATA_DIR", str(tmp_path / "data"))
    recipe = validate(load_recipe(REPO / "recipes" / "lm" / "ngram_kn5_ptb.yaml"))
    assert recipe.model_args["order"] == 5 and recipe.model_args["smoothing"] == "modified_kneser_ney"
    assert recipe.data_args["train_file"] == str(tmp_path / "data" / "ptb" / "ptb.train.txt")
    assert procedure_of(recipe) is counting.Counting
