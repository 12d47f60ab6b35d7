"""The seq2seq task family: parallel files, text-to-text rows with several references, and their errors."""

from __future__ import annotations

import json

import pytest

from harness.data.seq2seq import text_to_text, translation
from harness.data.tokenizers import build_subword_tokenizer
from harness.errors import DataError, RecipeError


def write(path, lines):
    path.write_text("\n".join(lines) + "\n")
    return path


def multi30k_layout(tmp_path, n=20):
    for stem, count in (("train", n), ("val", 5), ("test_2016_flickr", 4)):
        write(tmp_path / f"{stem}.de", [f"ein hund {i} läuft ." for i in range(count)])
        write(tmp_path / f"{stem}.en", [f"a dog {i} runs ." for i in range(count)])


def test_multi30k_layout_gives_named_splits_and_single_references(tmp_path):
    multi30k_layout(tmp_path)
    task = translation(source_lang="de", target_lang="en", data_dir=str(tmp_path))
    assert sorted(task.splits) == ["test_2016_flickr", "train", "validation"]
    assert task.eval_splits == ("validation", "test_2016_flickr")
    assert task.references("validation")[2] == ["a dog 2 runs ."]
    assert task.splits["train"][0]["source"] == "ein hund 0 läuft ."
    reverse = translation(source_lang="en", target_lang="de", data_dir=str(tmp_path))
    assert reverse.splits["train"][0]["source"] == "a dog 0 runs ."


def test_misaligned_and_empty_lines_name_the_files(tmp_path):
    write(tmp_path / "a.de", ["eins", "zwei", "drei"])
    write(tmp_path / "a.en", ["one", "two"])
    with pytest.raises(DataError, match=r"a.de has 3 lines, .*a.en has 2"):
        translation(source_lang="de", target_lang="en", files={"train": [str(tmp_path / "a.de"), str(tmp_path / "a.en")]})
    write(tmp_path / "b.en", ["one", "", "three"])
    with pytest.raises(DataError, match=r"b.en:2: empty line"):
        translation(source_lang="de", target_lang="en", files={"train": [str(tmp_path / "a.de"), str(tmp_path / "b.en")]})
    with pytest.raises(RecipeError, match="one of data_dir, files or dataset"):
        translation(source_lang="de", target_lang="en")


def test_text_to_text_reads_several_references_and_names_a_missing_one(tmp_path):
    rows = [{"doc": "the cat sat on the mat all day", "s1": "cat sat", "s2": "a cat sat"},
            {"doc": "dogs bark at night", "s1": "dogs bark", "s2": ""}]
    (tmp_path / "train.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    task = text_to_text(source_field="doc", reference_fields=["s1", "s2"], train_file=str(tmp_path / "train.jsonl"),
                        validation_file=str(tmp_path / "train.jsonl"))
    assert task.references("validation") == [["cat sat", "a cat sat"], ["dogs bark"]]
    assert task.info.main_metric == "rougeL"
    (tmp_path / "bad.jsonl").write_text(json.dumps({"doc": "x"}) + "\n")
    with pytest.raises(DataError, match=r"bad.jsonl:1: the reference field 's1' is missing"):
        text_to_text(source_field="doc", reference_fields=["s1"], train_file=str(tmp_path / "bad.jsonl"))


def test_targets_lose_the_decoder_start_and_long_rows_stop_the_run_unless_truncated(tmp_path):
    multi30k_layout(tmp_path)
    task = translation(source_lang="de", target_lang="en", data_dir=str(tmp_path))
    tokenizer = build_subword_tokenizer(task.texts(), "bpe", vocab_size=300, min_frequency=1)

    class Model:
        class config:
            decoder_start_token_id = tokenizer.cls_token_id
            harness_prefix = "übersetze: "

    task.configure_for(Model())
    rows = task.tokenize(tokenizer, max_length=32)
    labels = rows["train"][0]["labels"]
    assert labels[0] != tokenizer.cls_token_id and labels[-1] == tokenizer.sep_token_id
    assert tokenizer.decode(rows["train"][0]["input_ids"], skip_special_tokens=True).startswith("übersetze:")
    with pytest.raises(DataError, match=r"longer than training.max_length=4 .*data.truncate: true"):
        task.tokenize(tokenizer, max_length=4)
    task.truncate = True
    cut = task.tokenize(tokenizer, max_length=4)
    assert max(len(x) for x in cut["train"]["input_ids"]) == 4
    assert all(x[-1] == tokenizer.sep_token_id for x in cut["train"]["labels"])


def test_predictions_are_one_line_per_example(tmp_path):
    multi30k_layout(tmp_path)
    task = translation(source_lang="de", target_lang="en", data_dir=str(tmp_path))
    path = task.write_predictions(tmp_path / "predictions_validation.tsv", "validation",
                                  ["a dog\nruns", "x", "y", "z", "w"])
    assert path.name == "predictions_validation.txt"
    assert path.read_text().splitlines() == ["a dog runs", "x", "y", "z", "w"]
