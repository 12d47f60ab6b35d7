"""harness.data.superglue: every task's real format, strict labels, idx kept, bad rows named by file:line."""

from __future__ import annotations

import json
import logging

import pytest
from superglue_fixtures import write_jsonl

from harness.data.base import evaluation_only
from harness.data.superglue import SPECS, load_diagnostic, majority_baseline, superglue, superglue_task_name
from harness.errors import DataError


@pytest.mark.parametrize("task,splits,columns", [
    ("boolq", {"train": 12, "validation": 8, "test": 6}, ["question", "passage", "label", "idx"]),
    ("cb", {"train": 12, "validation": 8, "test": 6}, ["premise", "hypothesis", "label", "idx"]),
    ("rte", {"train": 12, "validation": 8, "test": 6}, ["premise", "hypothesis", "label", "idx"]),
    ("copa", {"train": 12, "validation": 8, "test": 6}, ["premise", "choice1", "choice2", "question", "label", "idx"]),
    ("wic", {"train": 12, "validation": 8, "test": 6}, ["word", "sentence1", "sentence2", "start1", "end1", "start2",
                                                         "end2", "label", "idx"]),
    ("wsc", {"train": 12, "validation": 8, "test": 6}, ["text", "span1_text", "start1", "end1", "span2_text",
                                                         "start2", "end2", "label", "idx"]),
    ("multirc", {"train": 18, "validation": 12, "test": 12}, ["paragraph", "question", "answer", "question_answer",
                                                               "label", "paragraph_idx", "question_idx", "answer_idx"]),
    # ReCoRD: 4 / 2 / 2 passages × 2 queries × 4 distinct candidate entities
    ("record", {"train": 32, "validation": 16, "test": 16}, ["passage", "query", "entity", "query_filled", "answers",
                                                              "label", "passage_idx", "query_idx"]),
])
def test_every_task_loads_with_its_fields(sg_dir, task, splits, columns):
    t = superglue(task, data_dir=str(sg_dir))
    assert {k: len(v) for k, v in t.splits.items()} == splits
    assert set(columns) <= set(t.splits["validation"].column_names)
    assert set(t.splits["test"]["label"]) == {-1}  # test files carry no labels
    if task not in ("multirc", "record"):
        assert t.splits["test"]["idx"] == list(range(splits["test"]))


def test_string_labels_read_as_the_booleans_they_stand_for(sg_dir):
    boolq = superglue("boolq", data_dir=str(sg_dir))
    assert boolq.splits["validation"]["label"][:4] == [1, 0, 1, 0]  # "true", "false", ... (True = id 1)
    assert boolq.splits["train"]["label"][:2] == [1, 0]  # JSON true, false
    wic = superglue("wic", data_dir=str(sg_dir))
    assert wic.splits["validation"]["label"][:2] == [1, 0]
    assert SPECS["boolq"].label_names == ["False", "True"]


def test_wsc_and_wic_spans_are_character_ranges_of_their_words(sg_dir):
    wsc = superglue("wsc", data_dir=str(sg_dir)).splits["train"][0]
    assert wsc["text"][wsc["start1"]:wsc["end1"]] == "Mark" and wsc["text"][wsc["start2"]:wsc["end2"]] == "He"
    wic = superglue("wic", data_dir=str(sg_dir)).splits["validation"][0]
    assert wic["sentence1"][wic["start1"]:wic["end1"]] == wic["word"] == wic["sentence2"][wic["start2"]:wic["end2"]]


def test_diagnostics_keep_idx_and_labels(sg_dir):
    axb = load_diagnostic("AX-b", data_dir=str(sg_dir))
    assert axb["idx"] == list(range(6))  # the file's idx are the strings "0".."5"
    assert axb["label"][:2] == [0, 1] and axb.column_names[:2] == ["premise", "hypothesis"]
    axg = load_diagnostic("axg", data_dir=str(sg_dir))
    assert len(axg) == 6 and "pair_id" in axg.column_names


def test_unusable_task_names_say_why(sg_dir):
    with pytest.raises(DataError, match="RTE model|rte"):
        superglue("AX-b", data_dir=str(sg_dir))
    with pytest.raises(DataError, match="unknown SuperGLUE task"):
        superglue_task_name("squad")
    assert superglue_task_name("MultiRC") == "multirc" and superglue_task_name("wsc.fixed") == "wsc"


def test_missing_train_split_is_an_error_for_training_but_not_for_evaluation(sg_dir, tmp_path):
    folder = tmp_path / "COPA"
    folder.mkdir()
    for name in ("val.jsonl", "test.jsonl"):
        (folder / name).write_text((sg_dir / "COPA" / name).read_text())
    with pytest.raises(DataError, match="train.jsonl: file not found"):
        superglue("copa", data_dir=str(tmp_path))
    with evaluation_only():
        assert "train" not in superglue("copa", data_dir=str(tmp_path)).splits


def _bad(tmp_path, folder, rows, task, split="val.jsonl"):
    for name in ("train.jsonl", "val.jsonl", "test.jsonl"):
        write_jsonl(tmp_path / folder / name, rows if name == split else rows[:1])
    with pytest.raises(DataError) as e:
        superglue(task, data_dir=str(tmp_path))
    return str(e.value)


GOOD_BOOLQ = {"question": "q", "passage": "p", "idx": 0, "label": True}


@pytest.mark.parametrize("row,match", [
    ({**GOOD_BOOLQ, "idx": 1, "label": 1}, "'label' must be true/false"),  # an int is not silently a boolean
    ({**GOOD_BOOLQ, "idx": 1, "label": "yes"}, "'label' must be true/false"),
    ({**GOOD_BOOLQ, "idx": 1, "label": None}, "'label' must be true/false"),
    ({"question": "q", "idx": 1, "label": True}, "missing field 'passage'"),
    ({**GOOD_BOOLQ, "idx": "one"}, "'idx' must be an integer"),
    ({**GOOD_BOOLQ, "idx": 0}, "idx 0 repeats line 1"),
    ({**GOOD_BOOLQ, "idx": 1, "question": 5}, "'question' must be a string"),
])
def test_bad_boolq_rows_name_file_and_line(tmp_path, row, match):
    message = _bad(tmp_path, "BoolQ", [GOOD_BOOLQ, row], "boolq")
    assert f"{tmp_path / 'BoolQ' / 'val.jsonl'}:2:" in message and match in message, message


def test_bad_json_and_bad_labels_of_other_tasks(tmp_path):
    path = write_jsonl(tmp_path / "x" / "CB" / "val.jsonl", [{"premise": "a", "hypothesis": "b", "label": "entailment",
                                                               "idx": 0}])
    path.write_text(path.read_text() + "{not json\n")
    (tmp_path / "x" / "CB" / "train.jsonl").write_text(path.read_text().splitlines()[0] + "\n")
    with pytest.raises(DataError, match=rf"{path}:2: not valid JSON"):
        superglue("cb", data_dir=str(tmp_path / "x"))
    cb = {"premise": "a", "hypothesis": "b", "label": "entailment", "idx": 0}
    assert "must be one of 'entailment', 'contradiction', 'neutral', found 'Entailment'" in _bad(
        tmp_path / "y", "CB", [cb, {**cb, "idx": 1, "label": "Entailment"}], "cb")
    copa = {"premise": "p", "choice1": "a", "choice2": "b", "question": "cause", "label": 0, "idx": 0}
    assert "must be 0 (choice1) or 1 (choice2), found True" in _bad(
        tmp_path / "z", "COPA", [copa, {**copa, "idx": 1, "label": True}], "copa")
    assert "must be 'cause' or 'effect'" in _bad(tmp_path / "q", "COPA", [copa, {**copa, "idx": 1, "question": "why"}],
                                                 "copa")


def test_bad_spans_name_file_and_line(tmp_path):
    wic = {"word": "bank", "sentence1": "The bank.", "sentence2": "A bank.", "idx": 0, "label": True, "start1": 4,
           "end1": 8, "start2": 2, "end2": 6}
    message = _bad(tmp_path / "a", "WiC", [wic, {**wic, "idx": 1, "end2": 60}], "wic")
    assert f"{tmp_path / 'a' / 'WiC' / 'val.jsonl'}:2: start2/end2 = 2/60 is not a span of sentence2" in message
    wsc = {"text": "Mark saw Pete . He ran .", "target": {"span1_index": 0, "span1_text": "Mark", "span2_index": 4,
                                                           "span2_text": "He"}, "idx": 0, "label": False}
    bad = {**wsc, "idx": 1, "target": {**wsc["target"], "span1_text": "Joan"}}
    message = _bad(tmp_path / "b", "WSC", [wsc, bad], "wsc")
    assert f"{tmp_path / 'b' / 'WSC' / 'val.jsonl'}:2: target.span1_index 0 points at 'Mark', not at span1_text 'Joan'" \
        in message


def test_wsc_off_by_one_index_is_corrected_with_a_warning(tmp_path, caplog):
    wsc = {"text": "Mark saw Pete . He ran .", "target": {"span1_index": 0, "span1_text": "Mark", "span2_index": 3,
                                                           "span2_text": "He"}, "idx": 0, "label": False}
    for name in ("train.jsonl", "val.jsonl", "test.jsonl"):
        write_jsonl(tmp_path / "WSC" / name, [wsc])
    with caplog.at_level(logging.WARNING, logger="harness.data.superglue"):
        row = superglue("wsc", data_dir=str(tmp_path)).splits["train"][0]
    assert row["text"][row["start2"]:row["end2"]] == "He"
    assert f"{tmp_path / 'WSC' / 'train.jsonl'}:1: WSC target.span2_index 3 points at '.'" in caplog.text


def test_a_labelled_split_must_label_every_row(tmp_path):
    rows = [{"premise": "a", "hypothesis": "b", "label": "entailment", "idx": 0}, {"premise": "a", "hypothesis": "b",
                                                                                 "idx": 1}]
    assert ":2: this row lacks a label" in _bad(tmp_path, "RTE", rows, "rte")


def test_multirc_subsampling_keeps_a_question_s_answers_together(sg_dir):
    t = superglue("multirc", data_dir=str(sg_dir), max_train_samples=2, max_eval_samples=1)
    assert len(set(t.splits["train"]["paragraph_idx"])) == 2 and len(t.splits["train"]) == 12
    assert len(t.splits["validation"]) == 6


def test_record_candidates_fill_the_placeholder_and_are_labelled_by_the_answers(sg_dir):
    t = superglue("ReCoRD", data_dir=str(sg_dir))
    dev = t.splits["validation"]
    first = dev.filter(lambda q: q == 0, input_columns="query_idx")
    raw = json.loads((sg_dir / "ReCoRD" / "val.jsonl").read_text().splitlines()[0])
    text = raw["passage"]["text"]
    names = {text[e["start"]:e["end"] + 1] for e in raw["passage"]["entities"]}  # the end is inclusive
    assert sorted(first["entity"]) == sorted(names) and len(first) == 4  # one row per distinct entity
    gold = raw["qas"][0]["answers"][0]["text"]
    assert [e for e, lab in zip(first["entity"], first["label"]) if lab == 1] == [gold]
    assert all(q == raw["qas"][0]["query"].replace("@placeholder", e) for q, e in zip(first["query_filled"],
                                                                                     first["entity"]))
    assert "@highlight" not in first["passage"][0] and "\n- " in first["passage"][0]
    assert set(t.splits["test"]["label"]) == {-1} and t.splits["test"]["answers"][0] == []
    assert t.expected_predictions("test") == 4 and majority_baseline(t) is None
    sub = superglue("record", data_dir=str(sg_dir), max_train_samples=3)  # passages: their queries stay whole
    assert len(set(sub.splits["train"]["passage_idx"])) == 3 and len(sub.splits["train"]) == 24


def test_bad_record_rows_name_file_and_line(tmp_path, sg_dir):
    good = json.loads((sg_dir / "ReCoRD" / "val.jsonl").read_text().splitlines()[0])
    span = json.loads(json.dumps(good))
    span["passage"]["entities"][0]["end"] = len(good["passage"]["text"])
    assert ":2: passage.entities[0].start/end" in _bad(tmp_path, "ReCoRD", [good, span], "record")
    query = json.loads(json.dumps(good))
    query["qas"][1]["query"] = "No placeholder here."
    assert ":1: qas[1].query has no @placeholder" in _bad(tmp_path, "ReCoRD", [query], "record")
    answers = json.loads(json.dumps(good))
    answers["qas"][0]["answers"] = []
    assert ":1: qas[0].answers must be a non-empty list" in _bad(tmp_path, "ReCoRD", [answers], "record")


def test_majority_baseline_is_the_train_majority_scored_on_dev(sg_dir):
    cb = superglue("cb", data_dir=str(sg_dir))
    gold = cb.splits["validation"]["label"]
    expected_acc = gold.count(0) / len(gold)  # train: entailment, contradiction, neutral cycled -> 0 is a most frequent
    assert majority_baseline(cb)["accuracy"] == pytest.approx(expected_acc)


def test_hub_is_refused_offline_without_local_data(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HARNESS_DATA_DIR", str(tmp_path))
    with pytest.raises(DataError, match="SuperGLUE 'rte' data not found.*HF_HUB_OFFLINE is set"):
        superglue("rte")


def test_files_written_by_json_dumps_round_trip(sg_dir):
    # the unlabelled test file ends without a newline, as the official ones do
    assert not (sg_dir / "RTE" / "test.jsonl").read_text().endswith("\n")
    assert json.loads((sg_dir / "RTE" / "test.jsonl").read_text().splitlines()[-1])["idx"] == 5
