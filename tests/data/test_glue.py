"""harness.data.glue: GLUE's original TSV layouts (tiny copies written here), errors, AX, the Hub path."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from datasets import ClassLabel, Dataset, DatasetDict, Features, Value

from harness.data import base
from harness.data import glue as glue_mod
from harness.data.glue import GLUE_TASKS, glue, glue_task_name, load_ax
from harness.errors import DataError, HarnessError, RecipeError

BOM = "\ufeff"


def write(path: Path, lines: list[str], bom: bool = False, newline: str = "\n", final_newline: bool = True) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    text = newline.join(lines) + (newline if final_newline else "")
    path.write_bytes(((BOM if bom else "") + text).encode("utf-8"))
    return path


def tsv(*fields) -> str:
    return "\t".join(str(f) for f in fields)


# ---- one tiny GLUE folder per task, in the exact layouts GLUE ships --------------------------


def make_cola(root: Path):
    d = root / "CoLA"
    write(d / "train.tsv", [tsv("gj04", 1, "", "The sailors rode the breeze."), tsv("gj04", 0, "*", "Sailors the rode."),
                           tsv("clc95", 1, "", "Somebody left.")])
    # GLUE's dev.tsv has no trailing newline after the last row
    write(d / "dev.tsv", [tsv("gj04", 0, "*", "Bill bill."), tsv("clc95", 1, "", "Who left?")], final_newline=False)
    write(d / "test.tsv", [tsv("index", "sentence"), tsv(0, "Bill whistled."), tsv(1, "The car honked.")])


def make_sst2(root: Path):
    d = root / "SST-2"
    write(d / "train.tsv", [tsv("sentence", "label"), tsv("hide new secretions ", 0), tsv("a charming journey ", 1),
                           tsv("bleak and desperate ", 0)])
    write(d / "dev.tsv", [tsv("sentence", "label"), tsv("it 's charming . ", 1), tsv("unflinchingly bleak ", 0)])
    write(d / "test.tsv", [tsv("index", "sentence"), tsv(0, "uneasy mishmash ."), tsv(1, "a poor imitation .")])


MRPC_HEADER = tsv("Quality", "#1 ID", "#2 ID", "#1 String", "#2 String")


def make_mrpc(root: Path, test_with_quality: bool = False):
    d = root / "MRPC"
    write(d / "train.tsv", [MRPC_HEADER, tsv(1, 702876, 702977, "Amrozi accused his brother .", "Referring to him ."),
                           tsv(0, 2108705, 2108831, "Yucaipa owned Dominick 's .", "Yucaipa bought Dominick 's .")], bom=True)
    write(d / "dev.tsv", [MRPC_HEADER, tsv(1, 1355540, 1355592, "He said the pie .", '" The pie business .')], bom=True)
    if test_with_quality:  # the local copy's deviation: gold label kept as column 2
        write(d / "test.tsv", [tsv("index", "Quality", "#1 ID", "#2 ID", "#1 String", "#2 String"),
                              tsv(0, 1, 1089874, 1089925, "PCCW 's chief .", "Current Chief ."),
                              tsv(1, 0, 3019446, 3019327, "The world 's two .", "Domestic sales .")])
    else:  # standard GLUE test.tsv
        write(d / "test.tsv", [tsv("index", "#1 ID", "#2 ID", "#1 String", "#2 String"),
                              tsv(0, 1089874, 1089925, "PCCW 's chief .", "Current Chief ."),
                              tsv(1, 3019446, 3019327, "The world 's two .", "Domestic sales .")])


STSB_HEADER = ["index", "genre", "filename", "year", "old_index", "source1", "source2", "sentence1", "sentence2"]


def make_stsb(root: Path, bad_score: str | None = None):
    d = root / "STS-B"

    def row(i, s1, s2, *score):
        return tsv(i, "main-captions", "MSRvid", "2012test", f"{i:04d}", "none", "none", s1, s2, *score)

    write(d / "train.tsv", [tsv(*STSB_HEADER, "score"), row(0, "A plane is taking off.", "An air plane.", "5.000"),
                           row(1, "A man plays a flute.", "A man plays.", bad_score or "3.800")])
    write(d / "dev.tsv", [tsv(*STSB_HEADER, "score"), row(0, "A man with a hat.", "A man wearing a hat.", "0.500")])
    write(d / "test.tsv", [tsv(*STSB_HEADER), row(0, "A girl is styling.", "A girl is brushing.")])


def make_qqp(root: Path):
    d = root / "QQP"
    header = tsv("id", "qid1", "qid2", "question1", "question2", "is_duplicate")
    write(d / "train.tsv", [header, tsv(133273, 213221, 213222, "How is the life?", "Which is best?", 0),
                           tsv(402555, 536040, 536041, "How do I control?", "How do I control it?", 1)])
    write(d / "dev.tsv", [header, tsv(201359, 303345, 303346, "Why are slugs?", "Why are snails?", 0)])
    write(d / "test.tsv", [tsv("id", "question1", "question2"), tsv(0, "Would the idea?", "Will it?"),
                          tsv(1, "What is a word?", "Is it a word?")])


MNLI_COMMON = ["index", "promptID", "pairID", "genre", "sentence1_binary_parse", "sentence2_binary_parse",
               "sentence1_parse", "sentence2_parse", "sentence1", "sentence2"]


def mnli_row(i, premise, hypothesis, *labels):
    return tsv(i, 31193, f"{31193}n", "government", "( ( x ) )", "( ( y ) )", "(ROOT x)", "(ROOT y)", premise,
               hypothesis, *labels)


def make_mnli(root: Path, gold: str = "neutral"):
    d = root / "MNLI"
    write(d / "train.tsv", [tsv(*MNLI_COMMON, "label1", "gold_label"),
                           mnli_row(0, "Conceptually cream skimming.", "Product and geography.", "neutral", gold),
                           mnli_row(1, "you know during the season.", "You lose the things.", "entailment", "entailment"),
                           mnli_row(2, "One of our number.", "A member of my team.", "contradiction", "contradiction"),
                           mnli_row(3, "How do you know?", "This information.", "entailment", "entailment")])
    dev_header = tsv(*MNLI_COMMON, "label1", "label2", "label3", "label4", "label5", "gold_label")
    five = ["neutral"] * 5
    write(d / "dev_matched.tsv", [dev_header, mnli_row(0, "The new rights.", "Everyone likes.", *five, "neutral"),
                                  mnli_row(1, "This site.", "The site includes.", *["entailment"] * 5, "entailment")])
    write(d / "dev_mismatched.tsv", [dev_header, mnli_row(0, "Your contribution.", "Your gift.", *five, "neutral"),
                                     mnli_row(1, "The fence.", "It is a fence.", *["contradiction"] * 5, "contradiction")])
    write(d / "test_matched.tsv", [tsv(*MNLI_COMMON), mnli_row(0, "Hierbas.", "Hierbas is a name.")])
    write(d / "test_mismatched.tsv", [tsv(*MNLI_COMMON), mnli_row(0, "What.", "Something."),
                                      mnli_row(1, "Yes.", "No.")])


def make_qnli(root: Path):
    d = root / "QNLI"
    header = tsv("index", "question", "sentence", "label")
    write(d / "train.tsv", [header, tsv(0, "When did it happen?", "It happened in 1999.", "entailment"),
                           tsv(1, "Who?", "Nobody knows where.", "not_entailment")])
    write(d / "dev.tsv", [header, tsv(0, "What came?", "The wind came.", "entailment")])
    write(d / "test.tsv", [tsv("index", "question", "sentence"), tsv(0, "What?", "That.")])


def make_rte(root: Path):
    d = root / "RTE"
    header = tsv("index", "sentence1", "sentence2", "label")
    write(d / "train.tsv", [header, tsv(0, "No weapons found.", "Weapons found.", "not_entailment"),
                           tsv(1, "Pope Benedict XVI.", "Benedict is pope.", "entailment")])
    write(d / "dev.tsv", [header, tsv(0, "Dana Reeve died.", "Reeve had an accident.", "not_entailment")])
    write(d / "test.tsv", [tsv("index", "sentence1", "sentence2"), tsv(0, "Mangla was summoned.", "Shukla."),
                          tsv(1, "Authorities say.", "Hostages.")])


def make_wnli(root: Path):
    d = root / "WNLI"
    header = tsv("index", "sentence1", "sentence2", "label")
    write(d / "train.tsv", [header, tsv(0, "I stuck a pin.", "The pin had a hole.", 1),
                           tsv(1, "John couldn't see.", "John was short.", 0)])
    write(d / "dev.tsv", [header, tsv(0, "The drain is clogged.", "The hair is clogged.", 0)])
    write(d / "test.tsv", [tsv("index", "sentence1", "sentence2"), tsv(0, "Maude and Dora.", "Dora had seen.")])


def make_ax(root: Path, alt: bool = False):
    path = root / ("AX/AX.tsv" if alt else "diagnostic/diagnostic.tsv")
    write(path, [tsv("index", "sentence1", "sentence2"), tsv(0, "The cat sat.", "The cat did not sit."),
                 tsv(1, "A dog.", "An animal.")])


MAKERS = {"cola": make_cola, "sst2": make_sst2, "mrpc": make_mrpc, "stsb": make_stsb, "qqp": make_qqp,
          "mnli": make_mnli, "qnli": make_qnli, "rte": make_rte, "wnli": make_wnli}

# task -> (text columns, {split: expected labels}, label names, main metric, test label strings)
EXPECTED = {
    "cola": (("sentence",), {"train": [1, 0, 1], "validation": [0, 1], "test": [-1, -1]},
             ["unacceptable", "acceptable"], "matthews_correlation", ["0", "1"]),
    "sst2": (("sentence",), {"train": [0, 1, 0], "validation": [1, 0], "test": [-1, -1]},
             ["negative", "positive"], "accuracy", ["0", "1"]),
    "mrpc": (("sentence1", "sentence2"), {"train": [1, 0], "validation": [1], "test": [-1, -1]},
             ["not_equivalent", "equivalent"], "f1", ["0", "1"]),
    "stsb": (("sentence1", "sentence2"), {"train": [5.0, 3.8], "validation": [0.5], "test": [-1.0]},
             None, "pearson", None),
    "qqp": (("question1", "question2"), {"train": [0, 1], "validation": [0], "test": [-1, -1]},
            ["not_duplicate", "duplicate"], "f1", ["0", "1"]),
    "mnli": (("premise", "hypothesis"),
             {"train": [1, 0, 2, 0], "validation_matched": [1, 0], "validation_mismatched": [1, 2],
              "test_matched": [-1], "test_mismatched": [-1, -1]},
             ["entailment", "neutral", "contradiction"], "accuracy", ["entailment", "neutral", "contradiction"]),
    "qnli": (("question", "sentence"), {"train": [0, 1], "validation": [0], "test": [-1]},
             ["entailment", "not_entailment"], "accuracy", ["entailment", "not_entailment"]),
    "rte": (("sentence1", "sentence2"), {"train": [1, 0], "validation": [1], "test": [-1, -1]},
            ["entailment", "not_entailment"], "accuracy", ["entailment", "not_entailment"]),
    "wnli": (("sentence1", "sentence2"), {"train": [1, 0], "validation": [0], "test": [-1]},
             ["not_entailment", "entailment"], "accuracy", ["0", "1"]),
}


@pytest.fixture(autouse=True)
def _offline_env(monkeypatch):
    """No Hub, and no HARNESS_DATA_DIR leaking in, unless a test sets one."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.delenv("HARNESS_DATA_DIR", raising=False)


@pytest.fixture
def root(tmp_path):
    r = tmp_path / "glue"
    for make in MAKERS.values():
        make(r)
    make_ax(r)
    return r


def approx_list(values):
    return [pytest.approx(v) for v in values]


# ---- loading every task ---------------------------------------------------------------------


@pytest.mark.parametrize("task", list(MAKERS))
def test_every_task_loads_in_glue_layout(root, task):
    t = glue(task, data_dir=str(root))
    text_columns, labels, label_names, main_metric, label_strings = EXPECTED[task]
    assert isinstance(t, base.ClassificationTask)
    assert list(t.splits) == list(labels)
    for split, expected in labels.items():
        ds = t.splits[split]
        assert ds.column_names == [*text_columns, "label", "idx"], split
        assert ds["label"] == (approx_list(expected) if task == "stsb" else expected), split
        assert ds["idx"] == list(range(len(ds))), split
        assert ds.features["idx"] == Value("int32")
        assert ds.features["label"] == Value("float32" if task == "stsb" else "int64")
        assert all(isinstance(x, str) and x for c in text_columns for x in ds[c])
    info = t.info
    assert info.name == f"glue/{task}"
    assert info.problem_type == (base.REGRESSION if task == "stsb" else base.CLASSIFICATION)
    assert info.label_names == label_names
    assert info.num_labels == (1 if task == "stsb" else len(label_names))
    assert info.text_columns == text_columns
    assert (info.metric, info.metric_config, info.main_metric) == ("glue", task, main_metric)
    assert info.extra["glue_task"] == task
    assert info.extra["test_label_strings"] == label_strings
    assert info.extra["source"] == "local"
    test_splits = [s for s in labels if s.startswith("test")]
    assert sorted(info.extra["test_splits"]) == sorted(test_splits)
    if task == "mnli":
        assert t.eval_splits == ("validation_matched", "validation_mismatched")
        assert info.extra["test_splits"] == {"test_matched": "MNLI-m.tsv", "test_mismatched": "MNLI-mm.tsv"}
        assert info.extra["ax_submission_file"] == "AX.tsv"
    else:
        assert t.eval_splits == ("validation",)
    for split in test_splits:
        assert not base.labelled(t.splits[split])
    assert base.labelled(t.splits["train"])


def test_text_is_kept_verbatim(root):
    # SST-2's trailing space before the tab and MRPC's quote characters survive (QUOTE_NONE)
    assert glue("sst2", data_dir=str(root)).splits["train"][0]["sentence"] == "hide new secretions "
    mrpc = glue("mrpc", data_dir=str(root))
    assert mrpc.splits["validation"][0]["sentence2"] == '" The pie business .'
    # the BOM does not end up in a column name, nor does it hide MRPC's "Quality" column
    assert mrpc.splits["train"]["label"] == [1, 0]


def test_task_names_are_case_insensitive_and_accept_glue_folders(root):
    for name, key in [("SST-2", "sst2"), ("STS-B", "stsb"), ("MNLI", "mnli"), ("CoLA", "cola"), ("Rte", "rte"),
                      ("diagnostic", "ax"), ("AX", "ax")]:
        assert glue_task_name(name) == key
    assert glue("SST-2", data_dir=str(root)).info.name == "glue/sst2"
    assert glue("sts-b", data_dir=str(root)).info.name == "glue/stsb"
    assert set(GLUE_TASKS) == {"cola", "sst2", "mrpc", "stsb", "qqp", "mnli", "qnli", "rte", "wnli", "ax"}


def test_mrpc_test_with_quality_column_keeps_labels(tmp_path):
    make_mrpc(tmp_path, test_with_quality=True)
    t = glue("mrpc", data_dir=str(tmp_path))
    assert t.splits["test"]["label"] == [1, 0]
    assert t.splits["test"]["sentence1"] == ["PCCW 's chief .", "The world 's two ."]
    assert t.splits["test"]["idx"] == [0, 1]


def test_test_idx_comes_from_the_index_column(tmp_path):
    write(tmp_path / "RTE/train.tsv", [tsv("index", "sentence1", "sentence2", "label"), tsv(0, "a", "b", "entailment")])
    write(tmp_path / "RTE/dev.tsv", [tsv("index", "sentence1", "sentence2", "label"), tsv(0, "a", "b", "entailment")])
    write(tmp_path / "RTE/test.tsv", [tsv("index", "sentence1", "sentence2"), tsv(7, "a", "b"), tsv(3, "c", "d")])
    assert glue("rte", data_dir=str(tmp_path)).splits["test"]["idx"] == [7, 3]


def test_crlf_and_blank_trailing_lines(tmp_path):
    d = tmp_path / "SST-2"
    write(d / "train.tsv", [tsv("sentence", "label"), tsv("good", 1), tsv("bad", 0), ""], newline="\r\n")
    write(d / "dev.tsv", [tsv("sentence", "label"), tsv("fine", 1)], newline="\r\n")
    t = glue("sst2", data_dir=str(tmp_path))
    assert t.splits["train"]["sentence"] == ["good", "bad"]
    assert t.splits["train"]["label"] == [1, 0]
    assert "test" not in t.splits  # a missing test file only drops the split
    assert t.info.extra["test_splits"] == {}


def test_default_data_dir_is_harness_data_dir_glue(tmp_path, monkeypatch):
    make_rte(tmp_path / "glue")
    monkeypatch.setenv("HARNESS_DATA_DIR", str(tmp_path))
    t = glue("rte")
    assert t.info.extra["path"] == str(tmp_path / "glue" / "RTE")
    # a data_dir pointing at the folder above glue/ is accepted too
    assert len(glue("rte", data_dir=str(tmp_path)).splits["train"]) == 2


# ---- subsampling ----------------------------------------------------------------------------


def test_max_samples_are_deterministic_and_leave_test_whole(root):
    a = glue("mnli", data_dir=str(root), max_train_samples=2, max_eval_samples=1, seed=3)
    b = glue("mnli", data_dir=str(root), max_train_samples=2, max_eval_samples=1, seed=3)
    assert len(a.splits["train"]) == 2
    assert a.splits["train"]["idx"] == b.splits["train"]["idx"]
    assert len(a.splits["validation_matched"]) == len(a.splits["validation_mismatched"]) == 1
    assert len(a.splits["test_mismatched"]) == 2
    seen = {tuple(glue("mnli", data_dir=str(root), max_train_samples=2, seed=s).splits["train"]["idx"])
            for s in range(8)}
    assert len(seen) > 1  # the seed matters
    full = glue("mnli", data_dir=str(root), max_train_samples=100)
    assert len(full.splits["train"]) == 4
    with pytest.raises(RecipeError, match="max_train_samples"):
        glue("rte", data_dir=str(root), max_train_samples=0)


# ---- errors ---------------------------------------------------------------------------------


def test_unknown_task_lists_the_valid_ones():
    with pytest.raises(DataError) as e:
        glue("mnli-mm2")
    for name in ("cola", "sst2", "mrpc", "stsb", "qqp", "mnli", "qnli", "rte", "wnli", "ax"):
        assert name in str(e.value)


def test_bad_source_is_a_recipe_error(root):
    with pytest.raises(RecipeError, match="source"):
        glue("rte", data_dir=str(root), source="s3")


def test_wrong_field_count_names_file_and_line(tmp_path):
    make_sst2(tmp_path)
    path = write(tmp_path / "SST-2/train.tsv", [tsv("sentence", "label"), tsv("ok", 1), tsv("a tab\tinside", 0)])
    with pytest.raises(DataError) as e:
        glue("sst2", data_dir=str(tmp_path))
    msg = str(e.value)
    assert f"{path}:3" in msg
    assert "expected 2" in msg and "found 3" in msg


def test_wrong_field_count_in_headerless_cola(tmp_path):
    make_cola(tmp_path)
    path = write(tmp_path / "CoLA/dev.tsv", [tsv("gj04", 1, "", "Fine."), tsv("gj04", 1, "Missing a field.")])
    with pytest.raises(DataError, match=rf"{path}:2: expected 4 tab-separated fields \(no header\), found 3"):
        glue("cola", data_dir=str(tmp_path))


def test_label_outside_the_label_set(tmp_path):
    make_rte(tmp_path)
    path = write(tmp_path / "RTE/dev.tsv", [tsv("index", "sentence1", "sentence2", "label"),
                                            tsv(0, "a", "b", "entailment"), tsv(1, "c", "d", "neutral")])
    with pytest.raises(DataError) as e:
        glue("rte", data_dir=str(tmp_path))
    assert f"{path}:3" in str(e.value) and "'neutral'" in str(e.value) and "'not_entailment'" in str(e.value)

    make_sst2(tmp_path)
    path = write(tmp_path / "SST-2/train.tsv", [tsv("sentence", "label"), tsv("ok", 2)])
    with pytest.raises(DataError, match=rf"{path}:2: .*found '2'"):
        glue("sst2", data_dir=str(tmp_path))


def test_mnli_gold_label_dash_is_rejected(tmp_path):
    make_mnli(tmp_path, gold="-")
    with pytest.raises(DataError, match=r"MNLI/train.tsv:2: expected a GLUE mnli label"):
        glue("mnli", data_dir=str(tmp_path))


def test_stsb_score_must_be_a_float(tmp_path):
    make_stsb(tmp_path, bad_score="high")
    with pytest.raises(DataError, match=r"STS-B/train.tsv:3: expected a float similarity score, found 'high'"):
        glue("stsb", data_dir=str(tmp_path))


def test_header_without_needed_columns(tmp_path):
    make_qnli(tmp_path)
    path = write(tmp_path / "QNLI/train.tsv", [tsv("index", "sentence1", "sentence2", "label"),
                                               tsv(0, "a", "b", "entailment")])
    with pytest.raises(DataError, match=rf"{path}:1: header lacks column\(s\) \['question', 'sentence'\]"):
        glue("qnli", data_dir=str(tmp_path))
    # a train/dev file must carry the label column
    write(tmp_path / "QNLI/train.tsv", [tsv("index", "question", "sentence"), tsv(0, "a", "b")])
    with pytest.raises(DataError, match="label column 'label'"):
        glue("qnli", data_dir=str(tmp_path))


def test_missing_data_offline_says_how_to_get_it():
    with pytest.raises(DataError) as e:
        glue("sst2")  # auto, no HARNESS_DATA_DIR, HF_HUB_OFFLINE=1: no network attempt
    msg = str(e.value)
    assert "HARNESS_DATA_DIR" in msg and "data_dir" in msg and "source: hub" in msg


def test_missing_task_folder_names_the_path(tmp_path):
    make_rte(tmp_path)
    with pytest.raises(DataError) as e:
        glue("mrpc", data_dir=str(tmp_path))
    assert str(tmp_path) in str(e.value) and "MRPC" in str(e.value) and "HARNESS_DATA_DIR" in str(e.value)


def test_missing_train_file_names_the_path(tmp_path):
    make_rte(tmp_path)
    (tmp_path / "RTE/train.tsv").unlink()
    with pytest.raises(DataError, match=rf"{tmp_path / 'RTE' / 'train.tsv'}: file not found"):
        glue("rte", data_dir=str(tmp_path))


def test_errors_are_harness_errors():
    assert issubclass(DataError, HarnessError) and issubclass(RecipeError, HarnessError)


# ---- AX -------------------------------------------------------------------------------------


def test_ax_is_not_a_training_task(root):
    with pytest.raises(DataError) as e:
        glue("ax", data_dir=str(root))
    assert "mnli" in str(e.value) and "load_ax" in str(e.value)


@pytest.mark.parametrize("alt", [False, True])
def test_load_ax_gives_the_mnli_columns(tmp_path, alt):
    make_ax(tmp_path, alt=alt)
    ds = load_ax(str(tmp_path))
    assert isinstance(ds, Dataset)
    assert ds.column_names == ["premise", "hypothesis", "label", "idx"]
    assert ds["label"] == [-1, -1] and ds["idx"] == [0, 1]
    assert ds["hypothesis"] == ["The cat did not sit.", "An animal."]


def test_load_ax_missing(tmp_path):
    with pytest.raises(DataError, match="AX"):
        load_ax(str(tmp_path))


# ---- the Hub path, without the network ------------------------------------------------------


def fake_hub_mrpc() -> DatasetDict:
    features = Features({"sentence1": Value("string"), "sentence2": Value("string"),
                         "label": ClassLabel(names=["not_equivalent", "equivalent"]), "idx": Value("int32")})
    rows = {"sentence1": ["a", "b"], "sentence2": ["c", "d"], "label": [1, 0], "idx": [0, 1]}
    return DatasetDict({s: Dataset.from_dict(rows, features=features) for s in ("train", "validation", "test")})


def test_hub_source_normalizes_to_the_local_features(tmp_path, monkeypatch):
    import datasets

    calls = []

    def fake_load_dataset(path, name=None, **kw):
        calls.append((path, name))
        return fake_hub_mrpc()

    monkeypatch.setattr(datasets, "load_dataset", fake_load_dataset)
    hub = glue("mrpc", source="hub")
    assert calls == [("nyu-mll/glue", "mrpc")]
    make_mrpc(tmp_path)
    local = glue("mrpc", data_dir=str(tmp_path))
    assert list(hub.splits) == list(local.splits)
    for split in hub.splits:
        assert hub.splits[split].features == local.splits[split].features
    assert hub.splits["train"]["label"] == [1, 0]
    assert hub.info.extra["source"] == "hub"
    assert hub.info.label_names == local.info.label_names


def test_auto_goes_to_the_hub_only_when_online_and_no_local_data(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(glue_mod, "_load_hub", lambda spec: calls.append(spec.key) or glue_mod._load_local(
        spec, _made(tmp_path, spec.key)))
    monkeypatch.delenv("HF_HUB_OFFLINE")
    monkeypatch.delenv("HF_DATASETS_OFFLINE", raising=False)
    t = glue("rte")  # no HARNESS_DATA_DIR, online: the Hub
    assert calls == ["rte"] and t.info.extra["source"] == "hub"
    with pytest.raises(DataError):  # an explicit data_dir is never silently replaced by the Hub
        glue("rte", data_dir=str(tmp_path / "nowhere"))
    assert calls == ["rte"]


def _made(tmp_path: Path, key: str) -> Path:
    MAKERS[key](tmp_path / "made")
    return tmp_path / "made" / glue_mod._SPECS[key].folder


def test_hub_failure_is_a_data_error(monkeypatch):
    import datasets

    def boom(*a, **k):
        raise ConnectionError("no network")

    monkeypatch.setattr(datasets, "load_dataset", boom)
    with pytest.raises(DataError, match="nyu-mll/glue.*no network"):
        glue("cola", source="hub")


# ---- scoring goes through the offline glue metric -------------------------------------------


def test_compute_metrics_uses_the_glue_config(root):
    import numpy as np

    t = glue("stsb", data_dir=str(root))
    refs = np.asarray(t.splits["train"]["label"])
    scores = t.compute_metrics(refs, refs, "train")
    assert scores["pearson"] == pytest.approx(1.0)
    m = glue("mrpc", data_dir=str(root))
    scores = m.compute_metrics(np.array([1, 0]), np.asarray(m.splits["train"]["label"]), "train")
    assert scores["f1"] == pytest.approx(1.0) and scores["accuracy"] == pytest.approx(1.0)


# ---- the real files (shared/data/glue), when HARNESS_DATA_DIR points at them -----------------

REAL_COUNTS = {
    "sst2": {"train": 67_349, "validation": 872, "test": 1_821},
    "cola": {"train": 8_551, "validation": 1_043, "test": 1_063},
    "mrpc": {"train": 3_668, "validation": 408, "test": 1_725},
    "stsb": {"train": 5_749, "validation": 1_500, "test": 1_379},
    "rte": {"train": 2_490, "validation": 277, "test": 3_000},
}
_REAL_ROOT = os.environ.get("HARNESS_DATA_DIR")


@pytest.mark.skipif(
    not _REAL_ROOT or not (Path(_REAL_ROOT) / "glue").is_dir(),
    reason="set HARNESS_DATA_DIR to a folder holding glue/ (e.g. /work/shared/data)",
)
def test_real_glue_files(monkeypatch):
    monkeypatch.setenv("HARNESS_DATA_DIR", _REAL_ROOT)
    for task, counts in REAL_COUNTS.items():
        t = glue(task)
        assert {s: len(d) for s, d in t.splits.items()} == counts, task
        for split, ds in t.splits.items():
            assert ds["idx"] == list(range(len(ds))), (task, split)
        assert base.labelled(t.splits["train"]) and base.labelled(t.splits["validation"])
    # the local MRPC test.tsv carries gold labels (README: 578 / 1,147); the others' tests do not
    mrpc = glue("mrpc")
    assert sorted(mrpc.splits["test"]["label"]).count(1) == 1_147
    assert not base.labelled(glue("rte").splits["test"])
    sst2 = glue("sst2")
    assert sum(sst2.splits["train"]["label"]) == 37_569
