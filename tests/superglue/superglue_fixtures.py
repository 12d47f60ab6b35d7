"""Tiny SuperGLUE in the official JSONL layouts (every task's real fields, string labels where copies have them,
AX-b's string idx, test files without labels and without a final newline) and the session fixtures ``sg_dir`` / ``tiny_checkpoint`` built from it."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

WORDS = "the a cat dog sat ran saw big small red blue house tree man woman car road went fast slow bank river".split()


def sentence(rng: random.Random, n: int = 6) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(n)).capitalize() + "."


def write_jsonl(path: Path, rows: list[dict], final_newline: bool = True) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    text = "\n".join(json.dumps(r) for r in rows)
    path.write_text(text + ("\n" if final_newline else ""), encoding="utf-8")
    return path


def _pair(rng, i, labels, keys=("premise", "hypothesis")):
    return {keys[0]: sentence(rng, 8), keys[1]: sentence(rng, 4), "label": labels[i % len(labels)], "idx": i}


def _copa(rng, i, labelled=True):
    row = {"premise": sentence(rng), "choice1": sentence(rng, 4), "choice2": sentence(rng, 4),
           "question": ("cause", "effect")[i % 2], "idx": i}
    return {**row, "label": i % 2} if labelled else row


def _wic(rng, i, label=None):
    word = rng.choice(["bank", "river", "house"])
    s1 = f"The {word} was big."
    s2 = f"I saw a {word} today."
    row = {"word": word, "sentence1": s1, "sentence2": s2, "idx": i, "start1": 4, "end1": 4 + len(word),
           "start2": 8, "end2": 8 + len(word), "version": 1.1}
    return row if label is None else {**row, "label": label}


def _wsc(rng, i, label=None):
    text = "Mark told Pete many lies about himself , which Pete included in his book . He should have been skeptical ."
    row = {"text": text, "target": {"span1_index": 0, "span1_text": "Mark", "span2_index": 15, "span2_text": "He"},
           "idx": i}
    return row if label is None else {**row, "label": label}


def _multirc(rng, p, labelled=True):
    questions = []
    for q in range(2):
        answers = [{"text": sentence(rng, 3), "idx": a, **({"label": (p + q + a) % 2} if labelled else {})}
                   for a in range(3)]
        questions.append({"question": sentence(rng, 5), "idx": q, "answers": answers})
    return {"idx": p, "version": 1.1, "passage": {"text": " ".join(sentence(rng) for _ in range(4)),
                                                  "questions": questions}}


RECORD_NAMES = ["Alice Smith", "Bob", "Paris", "Acme Corp.", "the U.N."]


def _record(rng, p, labelled=True):
    """One ReCoRD passage in the release's layout: entity spans with an inclusive end, @highlight markers, two
    queries with an @placeholder; answers (with their spans) only in labelled files."""
    names = rng.sample(RECORD_NAMES, 4)
    text = (f"{names[0]} met {names[1]} in {sentence(rng, 3)[:-1]} near {names[2]}.\n@highlight\n"
            f"{names[3]} hired {names[0]}")
    entities, start = [], 0
    for name in names + [names[0]]:  # the first name twice: one candidate, two mentions
        start = text.index(name, start if name != names[0] or not entities else text.index("hired"))
        entities.append({"start": start, "end": start + len(name) - 1})
    qas = []
    for q in range(2):
        answer = names[q]
        qa = {"query": f"Later @placeholder said {sentence(rng, 3)}", "idx": 10 * p + q}
        if labelled:
            a = text.index(answer)
            qa["answers"] = [{"start": a, "end": a + len(answer) - 1, "text": answer}]
        qas.append(qa)
    return {"idx": p, "source": "Daily mail", "passage": {"text": text, "entities": entities}, "qas": qas}


def make_superglue(root: Path, n_train: int = 12, n_val: int = 8, n_test: int = 6, seed: int = 0) -> Path:
    """Every task (plus AX-b, AX-g) under ``root``; returns ``root``."""
    rng = random.Random(seed)
    nli3 = ["entailment", "contradiction", "neutral"]
    nli2 = ["entailment", "not_entailment"]
    unl = lambda rows: [{k: v for k, v in r.items() if k != "label"} for r in rows]  # noqa: E731
    for task, labels in (("CB", nli3), ("RTE", nli2)):
        write_jsonl(root / task / "train.jsonl", [_pair(rng, i, labels) for i in range(n_train)])
        write_jsonl(root / task / "val.jsonl", [_pair(rng, i, labels) for i in range(n_val)])
        write_jsonl(root / task / "test.jsonl", unl([_pair(rng, i, labels) for i in range(n_test)]), final_newline=False)
    # BoolQ: JSON booleans in train, the strings "true"/"false" in val (as OpenCompass's copy has them)
    boolq = lambda i, lab: {"question": sentence(rng, 5), "passage": sentence(rng, 12), "idx": i, "label": lab}  # noqa: E731
    write_jsonl(root / "BoolQ" / "train.jsonl", [boolq(i, i % 2 == 0) for i in range(n_train)])
    write_jsonl(root / "BoolQ" / "val.jsonl", [boolq(i, ["true", "false"][i % 2]) for i in range(n_val)])
    write_jsonl(root / "BoolQ" / "test.jsonl", unl([boolq(i, True) for i in range(n_test)]), final_newline=False)
    write_jsonl(root / "COPA" / "train.jsonl", [_copa(rng, i) for i in range(n_train)])
    write_jsonl(root / "COPA" / "val.jsonl", [_copa(rng, i) for i in range(n_val)])
    write_jsonl(root / "COPA" / "test.jsonl", [_copa(rng, i, False) for i in range(n_test)], final_newline=False)
    write_jsonl(root / "WiC" / "train.jsonl", [_wic(rng, i, i % 2 == 0) for i in range(n_train)])
    write_jsonl(root / "WiC" / "val.jsonl", [_wic(rng, i, ["true", "false"][i % 2]) for i in range(n_val)])
    write_jsonl(root / "WiC" / "test.jsonl", [_wic(rng, i) for i in range(n_test)], final_newline=False)
    write_jsonl(root / "WSC" / "train.jsonl", [_wsc(rng, i, i % 2 == 0) for i in range(n_train)])
    write_jsonl(root / "WSC" / "val.jsonl", [_wsc(rng, i, i % 3 == 0) for i in range(n_val)])
    write_jsonl(root / "WSC" / "test.jsonl", [_wsc(rng, i) for i in range(n_test)], final_newline=False)
    write_jsonl(root / "MultiRC" / "train.jsonl", [_multirc(rng, p) for p in range(3)])
    write_jsonl(root / "MultiRC" / "val.jsonl", [_multirc(rng, p) for p in range(2)])
    write_jsonl(root / "MultiRC" / "test.jsonl", [_multirc(rng, p, False) for p in range(2)], final_newline=False)
    write_jsonl(root / "ReCoRD" / "train.jsonl", [_record(rng, p) for p in range(4)])
    write_jsonl(root / "ReCoRD" / "val.jsonl", [_record(rng, p) for p in range(2)])
    write_jsonl(root / "ReCoRD" / "test.jsonl", [_record(rng, p, False) for p in range(2)], final_newline=False)
    axb = [{"idx": str(i), "label": nli2[i % 2], "sentence1": sentence(rng), "sentence2": sentence(rng, 4),
            "logic": "Negation"} for i in range(6)]
    write_jsonl(root / "AX-b" / "AX-b.jsonl", axb)
    axg = []
    for i in range(6):
        hyp = sentence(rng, 4) if i % 2 == 0 else axg[-1]["hypothesis"]
        axg.append({"hypothesis": hyp, "idx": i, "label": nli2[(i // 2) % 2], "pair_id": 1000 + i,
                    "premise": f"The man said {('he', 'she')[i % 2]} ran."})
    write_jsonl(root / "AX-g" / "AX-g.jsonl", axg, final_newline=False)
    return root


# fixtures (registered by the folder's conftest.py)
@pytest.fixture(scope="session")
def sg_dir(tmp_path_factory) -> Path:
    return make_superglue(tmp_path_factory.mktemp("superglue"))


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory) -> str:
    """A 1-layer, 16-wide random BERT saved with all-MiniLM-L6-v2's (fast, uncased WordPiece) tokenizer."""
    from transformers import AutoTokenizer, BertConfig, BertModel

    from harness.models.pretrained import resolve_checkpoint

    path = tmp_path_factory.mktemp("tiny_bert")
    tokenizer = AutoTokenizer.from_pretrained(resolve_checkpoint("sentence-transformers/all-MiniLM-L6-v2"))
    config = BertConfig(vocab_size=len(tokenizer), hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                        intermediate_size=32, max_position_embeddings=128)
    BertModel(config).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return str(path)
