"""Small generated sentence pairs with a known similarity: two sentences share a subject, a verb phrase, both
or neither; the score counts what they share (0, 2.5 or 5), so a bi-encoder can learn it."""

from __future__ import annotations

import json
import random

SUBJECTS = ["a man", "a woman", "the child", "the dog", "a cat", "the horse"]
ACTIONS = ["plays the guitar", "plays the piano", "runs in the park", "eats food", "rides a bike", "sings music"]


def scored_pairs(n: int, seed: int) -> list[dict]:
    rng = random.Random(seed)
    rows = []
    for _ in range(n):
        s1, a1 = rng.randrange(len(SUBJECTS)), rng.randrange(len(ACTIONS))
        s2 = s1 if rng.random() < 0.5 else rng.randrange(len(SUBJECTS))
        a2 = a1 if rng.random() < 0.5 else rng.randrange(len(ACTIONS))
        score = 2.5 * (s1 == s2) + 2.5 * (a1 == a2)
        rows.append({"sentence1": f"{SUBJECTS[s1]} {ACTIONS[a1]}", "sentence2": f"{SUBJECTS[s2]} {ACTIONS[a2]}",
                     "score": score})
    return rows


def write_jsonl(path, rows) -> str:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return str(path)


def write_csv(path, rows) -> str:
    import csv

    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    return str(path)
