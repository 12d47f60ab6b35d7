"""Tokenized splits cached across runs (harness/data/tokenize_cache.py): the same data + tokenizer + max_length read
back without tokenizing, any change tokenizes again, only Arrow and JSON are stored, and tasks that did not opt in
(or a subclass with its own tokenize) are never served cached rows."""

from __future__ import annotations

import pytest
import yaml
from testkit import tiny_recipe

from harness.data import tokenize_cache as tc


@pytest.fixture
def cache(tmp_path, monkeypatch):
    root = tmp_path / "tokcache"
    monkeypatch.setenv(tc.ENV, str(root))
    return root


def _built(tmp_path, fresh_accelerate, **training):
    """The tiny recipe's task and tokenizer through the runner's own build (data → model → tokenize)."""
    from harness.run import build, load, make_accelerator

    recipe_path = tmp_path / "r.yaml"
    recipe_path.write_text(yaml.safe_dump(tiny_recipe(output_dir=str(tmp_path / "run"),
                                                      training={"lr": 5e-4, "batch_size": 8, **training})))
    recipe = load(str(recipe_path), [])
    return build(recipe, make_accelerator(recipe, tmp_path / "run", trackers=False))


def _rows(dd):
    return {name: ds.to_dict() for name, ds in dd.items()}


def test_second_build_reads_the_cache_and_changes_miss(tmp_path, cache, fresh_accelerate, capsys):
    first = _built(tmp_path, fresh_accelerate, max_length=16)
    assert "tokenized splits: cached in" in capsys.readouterr().out
    entries = [p for p in cache.iterdir() if not p.name.startswith(".")]
    assert len(entries) == 1 and (entries[0] / "harness_tokenized.json").is_file()
    # nothing that unpickles: Arrow files and JSON only
    stored = [p for p in entries[0].rglob("*") if p.is_file()]
    assert stored and all(p.suffix in (".arrow", ".json") for p in stored), stored

    task, tok = first.task, first.tokenizer
    calls = []
    real = type(task).tokenize
    task.tokenize = lambda *a, **k: calls.append(1) or real(task, *a, **k)
    again, status = tc.tokenize_cached(task, tok, 16)
    assert status.startswith("hit") and not calls  # read back, not tokenized
    assert _rows(again) == _rows(first.tokenized)

    # a changed max_length, tokenizer or data tokenizes again, into its own entry
    _, status = tc.tokenize_cached(task, tok, 8)
    assert status.startswith("stored") and calls == [1]
    tok.add_tokens(["zzzunseen"])
    _, status = tc.tokenize_cached(task, tok, 16)
    assert status.startswith("stored") and calls == [1, 1]
    task.splits["train"] = task.splits["train"].select(range(16))
    _, status = tc.tokenize_cached(task, tok, 16)
    assert status.startswith("stored") and calls == [1, 1, 1]
    assert len([p for p in cache.iterdir() if not p.name.startswith(".")]) == 4


def test_a_second_run_prints_the_hit(tmp_path, cache, fresh_accelerate, capsys):
    from testkit import reset_accelerate

    _built(tmp_path, fresh_accelerate)
    capsys.readouterr()
    reset_accelerate()
    _built(tmp_path, fresh_accelerate)
    assert f"tokenized splits: read from {cache}" in capsys.readouterr().out


def test_tokenizer_identity_ignores_call_state_and_sees_the_vocabulary(tmp_path, fresh_accelerate, monkeypatch):
    monkeypatch.setenv(tc.ENV, "off")
    built = _built(tmp_path, fresh_accelerate)
    tok = built.tokenizer
    before = tc.tokenizer_identity(tok)
    tok(["good film"], truncation=True, max_length=3)  # sets the backend's truncation state
    assert tc.tokenizer_identity(tok) == before
    tok.padding_side = "left" if tok.padding_side == "right" else "right"
    assert tc.tokenizer_identity(tok) != before


def test_off_and_tasks_that_do_not_opt_in(tmp_path, fresh_accelerate, monkeypatch):
    monkeypatch.setenv(tc.ENV, "off")
    built = _built(tmp_path, fresh_accelerate)
    task, tok = built.task, built.tokenizer
    assert tc.tokenize_cached(task, tok, 16)[1] == "off"
    assert not (tmp_path / "tokcache").exists()

    monkeypatch.setenv(tc.ENV, str(tmp_path / "tokcache"))

    class OwnTokenize(type(task)):  # its own tokenize, the parent's key: never served the parent's rows
        def tokenize(self, tokenizer, max_length=None):
            return super().tokenize(tokenizer, max_length)

    task.__class__ = OwnTokenize
    assert tc.cache_key(task, tok, 16) is None
    assert tc.tokenize_cached(task, tok, 16)[1] == "not cacheable"
    from harness.data.lm import LMTextTask

    assert LMTextTask.tokenize_cache_key(object.__new__(LMTextTask)) is None  # tokenize sets the BPTT length


def test_a_damaged_entry_is_tokenized_again(tmp_path, cache, fresh_accelerate):
    built = _built(tmp_path, fresh_accelerate)
    rows = _rows(built.tokenized)  # (the run's rows are the stored files, memory-mapped)
    entry = next(p for p in cache.iterdir() if not p.name.startswith("."))
    for arrow in entry.rglob("*.arrow"):
        arrow.write_bytes(b"not arrow")
    again, status = tc.tokenize_cached(built.task, built.tokenizer, 128)
    assert status.startswith("stored")
    assert _rows(again) == rows


def test_least_recently_used_entries_go_when_the_cache_is_over_its_size(tmp_path, cache, fresh_accelerate,
                                                                        monkeypatch):
    import os
    import time

    from testkit import reset_accelerate

    def entries():
        return sorted(p.name for p in cache.iterdir() if not p.name.startswith("."))

    _built(tmp_path, fresh_accelerate, max_length=16)
    (first,) = entries()
    reset_accelerate()
    _built(tmp_path, fresh_accelerate, max_length=12)
    assert len(entries()) == 2  # far under the default 10 GB
    second = next(e for e in entries() if e != first)
    # the first entry used again (a hit) after the second was stored: the second is now the older use
    past = time.time() - 100
    os.utime(cache / second / "harness_tokenized.json", (past, past))
    reset_accelerate()
    _built(tmp_path, fresh_accelerate, max_length=16)
    stale = cache / ".tmp-dead"
    stale.mkdir()
    os.utime(stale, (time.time() - 3 * 86400,) * 2)
    size = tc._size(cache / first)
    monkeypatch.setenv(tc.MAX_GB_ENV, str(2.5 * size / 1024 ** 3))  # room for two entries
    reset_accelerate()
    _built(tmp_path, fresh_accelerate, max_length=10)  # a third entry: over the limit
    left = entries()
    # the least recently *used* goes (second), not the oldest stored (first, used again since)
    assert first in left and second not in left and len(left) == 2
    assert not stale.exists()
    monkeypatch.setenv(tc.MAX_GB_ENV, "0")
    reset_accelerate()
    _built(tmp_path, fresh_accelerate, max_length=8)
    assert len(entries()) == 1  # at a limit of 0 the entry just stored stays, alone
    assert tc.max_bytes({tc.MAX_GB_ENV: "x"}) == 10 * 1024 ** 3 and tc.max_bytes({tc.MAX_GB_ENV: "0.5"}) == 2 ** 29
