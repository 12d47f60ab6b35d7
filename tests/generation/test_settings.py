"""The recipe's generation section: which search runs, and its checks."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from harness.cli import main
from harness.config.schema import validate_generation
from harness.generation.settings import build_generation

REPO = Path(__file__).resolve().parents[2]


def errors_of(section: dict) -> list[str]:
    errors: list[str] = []
    validate_generation(section, errors)
    return errors


def test_harness_search_keys_are_checked_with_the_place_named():
    assert errors_of({"num_beams": 4, "num_beam_groups": 2, "diversity_penalty": 0.5, "max_new_tokens": 5}) == []
    assert errors_of({"num_beams": 4, "diversity_penalty": 0.5, "max_new_tokens": 5}) == [
        "generation.diversity_penalty: needs num_beam_groups > 1 (diverse beam search)"]
    assert errors_of({"num_beams": 4, "num_beam_groups": 1, "coverage_penalty": 0.0}) == []  # neutral values
    assert errors_of({"num_beams": 3, "num_beam_groups": 2, "max_new_tokens": 5})[0].startswith(
        "generation.num_beam_groups: num_beams (3) must split")
    assert errors_of({"num_beams": 4, "num_beam_groups": 2})[0].startswith("generation.max_new_tokens:")
    assert errors_of({"num_beams": 4, "length_normalization": "gmnt", "max_new_tokens": 5}) == [
        "generation.length_normalization: expected gnmt or power, got 'gmnt'"]
    assert errors_of({"num_beams": 4, "coverage_penalty": -1.0, "max_new_tokens": 5}) == [
        "generation.coverage_penalty: expected a number >= 0, got -1.0"]


def test_build_generation_routes_to_the_harness_search_only_when_asked():
    plain = build_generation({"num_beams": 4, "max_new_tokens": 5, "length_penalty": 1.0})
    assert plain.search is None and plain.config.num_beams == 4
    diverse = build_generation({"num_beams": 4, "num_beam_groups": 2, "diversity_penalty": 0.5, "max_new_tokens": 5})
    assert diverse.search.num_beam_groups == 2 and diverse.search.diversity_penalty == 0.5
    assert diverse.search.length_penalty == 0.0  # raw log P unless asked
    assert diverse.config.num_beam_groups == 2  # generate reads them and hands over to the harness search
    gnmt = build_generation({"num_beams": 4, "length_normalization": "gnmt", "length_penalty": 0.6,
                             "coverage_penalty": 0.2, "max_new_tokens": 5})
    assert (gnmt.search.length_normalization, gnmt.search.length_penalty, gnmt.search.coverage_penalty) == (
        "gnmt", 0.6, 0.2)
    assert (gnmt.config.length_normalization, gnmt.config.coverage_penalty) == ("gnmt", 0.2)
    power = build_generation({"num_beams": 4, "num_beam_groups": 2, "length_penalty": 1.0, "max_new_tokens": 5})
    assert (power.search.length_normalization, power.search.length_penalty) == ("power", 1.0)


def test_a_recipe_decodes_with_diverse_gnmt_beam_search(tmp_path, fresh_accelerate):
    body = yaml.safe_load((REPO / "recipes/tiny/rnn_reverse.yaml").read_text())
    body["output_dir"] = str(tmp_path / "run")
    body["generation"] = {"num_beams": 4, "num_beam_groups": 2, "diversity_penalty": 0.5, "max_new_tokens": 12,
                          "length_normalization": "gnmt", "length_penalty": 0.6, "coverage_penalty": 0.2}
    body["evaluation"] = {"metric_for_best": "exact_match", "predict_splits": ["validation"]}
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(body))
    assert main(["train", str(path), "data.num_train=800", "data.num_validation=40", "training.num_epochs=4"]) == 0
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["validation/exact_match"] >= 0.5  # chance ≈ 0: the search decodes what the model learned
    lines = next((tmp_path / "run").glob("predictions_validation.*")).read_text().splitlines()
    assert len(lines) >= 40
    # the saved model's generation config is one a plain generate() runs
    import transformers

    saved = transformers.GenerationConfig.from_pretrained(tmp_path / "run" / "model")
    assert (saved.num_beams, saved.num_beam_groups or 1, getattr(saved, "coverage_penalty", None)) == (4, 1, None)


def test_mbr_section_sets_the_candidates_and_is_checked():
    assert errors_of({"max_new_tokens": 8, "mbr": {"num_candidates": 4, "candidate_strategy": "beam"}}) == []
    assert errors_of({"mbr": {"num_candidates": 0}}) == ["generation.mbr.num_candidates: expected an integer >= 1, got 0"]
    assert errors_of({"mbr": {"utility": "meteor"}})[0].startswith("generation.mbr.utility: expected one of")
    assert errors_of({"mbr": {"candidates": 4}})[0].startswith("generation.mbr.candidates: unknown key")
    assert errors_of({"num_beams": 4, "mbr": {}}) == ["generation.num_beams: mbr sets it from its candidate_strategy; "
                                                      "leave it out"]
    assert errors_of({"num_beams": 4, "num_beam_groups": 2, "max_new_tokens": 4, "mbr": {}})[0].startswith(
        "generation.num_beams")
    settings = build_generation({"max_new_tokens": 8, "mbr": {"num_candidates": 6, "candidate_strategy": "epsilon",
                                                              "epsilon": 0.05}})
    config = settings.config
    assert (config.do_sample, config.top_k, config.num_return_sequences, config.epsilon_cutoff) == (True, 0, 6, 0.05)
    assert settings.mbr["utility"] == "chrf" and settings.search is None
    assert settings.select([["a b c", "a b c", "x y"], ["z"]]) == ["a b c", "z"]
    beam = build_generation({"mbr": {"num_candidates": 3, "candidate_strategy": "beam", "utility": "bleu"}}).config
    assert (beam.do_sample, beam.num_beams, beam.num_return_sequences) == (False, 3, 3)


def test_a_recipe_decodes_with_mbr(tmp_path, fresh_accelerate):
    body = yaml.safe_load((REPO / "recipes/tiny/rnn_reverse.yaml").read_text())
    body["output_dir"] = str(tmp_path / "run")
    body["generation"] = {"max_new_tokens": 12, "mbr": {"num_candidates": 4, "candidate_strategy": "epsilon"}}
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(body))
    assert main(["train", str(path), "data.num_train=800", "data.num_validation=40", "training.num_epochs=4"]) == 0
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["validation/exact_match"] >= 0.5  # one chosen text per example, scored like any decoder
