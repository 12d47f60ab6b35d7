"""Pairs / triplets tasks: what each file layout becomes, the train formats, the batches, and one clear error
per bad row (file:line)."""

from __future__ import annotations

import pytest
import torch

from harness.data.pairs import column_inputs, mrpc_pairs, sts_benchmark, text_pairs
from harness.errors import DataError

from data_gen import scored_pairs, write_csv, write_jsonl


def test_columns_decide_the_kind_of_each_split(tmp_path):
    train = write_csv(tmp_path / "train.csv", [{"anchor": "a man", "positive": "the man", "negative": "a dog"}] * 3)
    dev = write_jsonl(tmp_path / "dev.jsonl", scored_pairs(5, 0))
    test = write_csv(tmp_path / "test.csv", [{"sentence1": "a", "sentence2": "b", "label": 1},
                                              {"sentence1": "c", "sentence2": "d", "label": 0}])
    task = text_pairs(train, dev, test, score_scale=5.0)
    assert task.kinds == {"train": "triplets", "validation": "scores", "test": "labels"}
    assert task.splits["train"].column_names == ["idx", "text0", "text1", "text2"]
    assert max(task.splits["validation"]["label"]) <= 1.0  # scores / 5
    assert task.info.main_metric == "spearman" and task.eval_splits == ("validation", "test")


def test_train_formats(tmp_path):
    rows = scored_pairs(40, 1)
    train = write_jsonl(tmp_path / "train.jsonl", rows)
    high = sum(r["score"] >= 4 for r in rows)
    labels = text_pairs(train, train_format="labels", score_scale=5, label_threshold=0.5)
    assert labels.kinds["train"] == "labels"
    assert labels.splits["train"]["label"] == [int(r["score"] / 5 >= 0.5) for r in rows]
    positives = text_pairs(train, train_format="positives", score_scale=5, positive_threshold=0.8)
    assert positives.kinds["train"] == "triplets" and len(positives.splits["train"]) == high
    triplets = text_pairs(train, train_format="triplets", score_scale=5, positive_threshold=0.8, seed=3)
    ds = triplets.splits["train"]
    assert len(ds) == high and all(n != p or ds["text1"].count(p) > 1 for p, n in zip(ds["text1"], ds["text2"]))
    assert set(ds["text2"]) <= set(ds["text1"])  # negatives are other rows' positives
    with pytest.raises(DataError, match="positive_threshold"):
        text_pairs(train, train_format="positives")
    with pytest.raises(DataError, match="train_format: expected one of"):
        text_pairs(train, train_format="hard")


@pytest.mark.parametrize("rows,match", [
    ([{"sentence1": "a", "sentence2": "b", "score": "high"}], r"train.jsonl:1: score 'high' is not a number"),
    ([{"sentence1": "a", "sentence2": "b", "label": 1}, {"sentence1": "a", "sentence2": "b", "label": 2}],
     r"train.jsonl:2: label 2 is not 0 or 1"),
    ([{"sentence1": "a", "sentence2": "b", "score": 1}, {"sentence1": "a", "score": 2}],
     r"train.jsonl:2: column 'sentence2' is missing"),
    ([{"query": "a", "doc": "b"}], r"train.jsonl:1: columns \['doc', 'query'\] are none of"),
])
def test_a_bad_row_names_its_file_and_line(tmp_path, rows, match):
    path = write_jsonl(tmp_path / "train.jsonl", rows)
    with pytest.raises(DataError, match=match):
        text_pairs(path)


def _sts_dir(tmp_path, bad: str | None = None):
    rows = scored_pairs(12, 2)
    for name in ("sts-train.tsv", "sts-dev.tsv", "sts-test.tsv"):
        lines = [f"main-captions\tMSRvid\t2012test\t{i:04d}\t{r['score']:.3f}\t{r['sentence1']}\t{r['sentence2']}"
                 + ("\tlicense\tnote" if i % 2 else "") for i, r in enumerate(rows)]
        if bad and name == "sts-dev.tsv":
            lines[3] = bad
        (tmp_path / name).write_text("\n".join(lines) + "\n")
    return tmp_path


def test_sts_benchmark_reads_7_and_9_field_rows(tmp_path):
    task = sts_benchmark(data_dir=str(_sts_dir(tmp_path)))
    assert task.kinds == {"train": "scores", "validation": "scores", "test": "scores"}
    assert len(task.splits["test"]) == 12 and task.eval_splits == ("validation", "test")
    with pytest.raises(DataError, match=r"sts-dev.tsv:4: expected at least 7 TAB-separated fields"):
        sts_benchmark(data_dir=str(_sts_dir(tmp_path, bad="genre\tfile\t2012\t1\t3.0\tonly one sentence")))


def test_mrpc_pairs_reads_glue_files(tmp_path):
    head = "\ufeffQuality\t#1 ID\t#2 ID\t#1 String\t#2 String\n"
    rows = "1\t1\t2\ta man plays\tthe man plays\n0\t3\t4\ta dog runs\ta cat eats\n"
    (tmp_path / "train.tsv").write_text(head + rows)
    (tmp_path / "dev.tsv").write_text(head + rows)
    (tmp_path / "test.tsv").write_text("index\t" + head.lstrip("\ufeff") + "0\t" + rows.replace("\n0\t", "\n1\t0\t"))
    task = mrpc_pairs(data_dir=str(tmp_path))
    assert task.kinds["test"] == "labels" and task.splits["test"]["label"] == [1, 0]
    assert task.info.main_metric == "f1"


def test_batches_pad_each_column_on_its_own(tmp_path, tokenizer):
    train = write_csv(tmp_path / "t.csv", [{"anchor": "a man", "positive": "a man plays the guitar in the park"},
                                          {"anchor": "the dog runs", "positive": "a dog"}])
    task = text_pairs(train)
    rows = task.tokenize(tokenizer)["train"]
    batch = task.collator(tokenizer)([rows[0], rows[1]])
    inputs = column_inputs(batch)
    assert [tuple(c["input_ids"].shape) for c in inputs] == [(2, 5), (2, 10)]
    assert inputs[0]["attention_mask"].tolist() == [[1, 1, 1, 1, 0], [1, 1, 1, 1, 1]]
    assert int(task.num_tokens(batch)) == sum(int(c["attention_mask"].sum()) for c in inputs)
    assert "labels" not in batch
    labelled = text_pairs(write_jsonl(tmp_path / "s.jsonl", scored_pairs(3, 0)), score_scale=5)
    b = labelled.collator(tokenizer)(list(labelled.tokenize(tokenizer)["train"]))
    assert b["labels"].dtype == torch.float64 or b["labels"].is_floating_point()
