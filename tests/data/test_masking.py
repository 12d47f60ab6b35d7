"""Masked-language-model collators: the masking rate, what may be masked, the 80/10/10 split, span lengths,
seeding, static masking and the constructors' checks — measured over many batches of a word tokenizer."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch

from harness.data.masking import SpanMaskingCollator, mask_statically, mlm_collator
from harness.data.tokenizers import build_word_tokenizer

WORDS = [f"w{i}" for i in range(50)]


def sentences(n=200, seed=0):
    rng = random.Random(seed)
    return [" ".join(rng.choice(WORDS) for _ in range(rng.randint(5, 40))) for _ in range(n)]


@pytest.fixture(scope="module")
def tokenizer():
    return build_word_tokenizer(sentences())


@pytest.fixture(scope="module")
def features(tokenizer):
    return [{"input_ids": tokenizer(s)["input_ids"]} for s in sentences()]


def batches(features, n_batches, batch_size=16, seed=1):
    rng = random.Random(seed)
    for _ in range(n_batches):
        yield rng.sample(features, batch_size)


def original(tokenizer, chunk):
    padded = tokenizer.pad([{"input_ids": f["input_ids"]} for f in chunk], return_tensors="pt")
    return padded["input_ids"], padded["attention_mask"].bool()


def special_mask(tokenizer, ids):
    return torch.isin(ids, torch.tensor(tokenizer.all_special_ids))


def runs(labelled_row):
    """Lengths of the maximal runs of True in a 1-D bool array."""
    out, n = [], 0
    for flag in list(labelled_row) + [False]:
        if flag:
            n += 1
        elif n:
            out.append(n)
            n = 0
    return out


def test_tokenizer_and_features_carry_specials(tokenizer, features):
    ids = features[0]["input_ids"]
    assert ids[0] == tokenizer.cls_token_id and ids[-1] == tokenizer.sep_token_id
    assert tokenizer.unk_token_id not in {i for f in features for i in f["input_ids"]}
    assert len(tokenizer) == 55


# ------------------------------------------------------------------ span masking


@pytest.fixture(scope="module")
def span_stats(tokenizer, features):
    """Statistics of the default span collator over 300 batches of 16."""
    collator = SpanMaskingCollator(tokenizer, mlm_probability=0.15, seed=0)
    stats = {"maskable": 0, "labelled": 0, "as_mask": 0, "unchanged": 0, "random": 0, "bad_label": 0,
             "special_labelled": 0, "padding_labelled": 0, "changed_unlabelled": 0, "runs": [], "shape_ok": True}
    for chunk in batches(features, 300):
        batch = collator(chunk)
        ids, real = original(tokenizer, chunk)
        stats["shape_ok"] &= batch["input_ids"].shape == ids.shape == batch["labels"].shape
        stats["shape_ok"] &= torch.equal(batch["attention_mask"].bool(), real)
        specials = special_mask(tokenizer, ids)
        labelled = batch["labels"] != -100
        maskable = real & ~specials
        stats["maskable"] += int(maskable.sum())
        stats["labelled"] += int(labelled.sum())
        stats["special_labelled"] += int((labelled & specials & real).sum())
        stats["padding_labelled"] += int((labelled & ~real).sum())
        stats["bad_label"] += int((batch["labels"][labelled] != ids[labelled]).sum())
        stats["changed_unlabelled"] += int((batch["input_ids"][~labelled] != ids[~labelled]).sum())
        out = batch["input_ids"][labelled]
        stats["as_mask"] += int((out == tokenizer.mask_token_id).sum())
        stats["unchanged"] += int((out == ids[labelled]).sum())
        stats["random"] += int(((out != tokenizer.mask_token_id) & (out != ids[labelled])).sum())
        for row in labelled.numpy():
            stats["runs"].extend(runs(row))
    return stats


def test_span_masking_rate(span_stats):
    assert span_stats["shape_ok"]
    rate = span_stats["labelled"] / span_stats["maskable"]
    assert 0.14 <= rate <= 0.16, rate


def test_span_masking_never_labels_specials_or_padding(span_stats):
    assert span_stats["special_labelled"] == 0
    assert span_stats["padding_labelled"] == 0
    assert span_stats["changed_unlabelled"] == 0  # only labelled positions are altered


def test_span_masking_labels_are_the_original_ids(span_stats):
    assert span_stats["labelled"] > 0 and span_stats["bad_label"] == 0


def test_span_masking_replacement_split(span_stats):
    n = span_stats["labelled"]
    assert abs(span_stats["as_mask"] / n - 0.8) < 0.03, span_stats["as_mask"] / n
    # a random replacement may draw the original token (1 in 55): "unchanged" is ~0.1 + 0.1/55
    assert abs(span_stats["unchanged"] / n - 0.1) < 0.03, span_stats["unchanged"] / n
    assert abs(span_stats["random"] / n - 0.1) < 0.03, span_stats["random"] / n


def test_span_masking_masks_spans(span_stats):
    lengths = np.array(span_stats["runs"])
    assert 2.0 < lengths.mean() < 6.0, lengths.mean()
    assert (lengths >= 2).mean() > 0.5  # mostly spans, not single tokens


def test_span_masking_long_sequences_mean_run_length():
    """Where the budget does not cut the spans short (400-word rows), runs are several tokens long."""
    rng = random.Random(3)
    texts = [" ".join(rng.choice(WORDS) for _ in range(400)) for _ in range(16)]
    tok = build_word_tokenizer(texts)
    feats = [{"input_ids": tok(t)["input_ids"]} for t in texts]
    batch = SpanMaskingCollator(tok, seed=0)(feats)
    lengths = [n for row in (batch["labels"] != -100).numpy() for n in runs(row)]
    assert 3.3 < np.mean(lengths) < 6.0, np.mean(lengths)


def test_span_lengths_support():
    tok = build_word_tokenizer(sentences(20))
    rng = np.random.default_rng(0)
    lengths = SpanMaskingCollator(tok).span_lengths(rng, 50_000)
    assert lengths.min() == 1 and lengths.max() == 10
    assert (SpanMaskingCollator(tok, max_span_length=1).span_lengths(rng, 1000) == 1).all()
    assert (SpanMaskingCollator(tok, geometric_p=1.0).span_lengths(rng, 1000) == 1).all()


def test_span_lengths_follow_spanbert_truncated_geometric():
    tok = build_word_tokenizer(sentences(20))
    lengths = SpanMaskingCollator(tok).span_lengths(np.random.default_rng(0), 200_000)
    weights = np.array([0.2 * 0.8 ** (n - 1) for n in range(1, 11)])
    weights /= weights.sum()
    assert abs(lengths.mean() - 3.797) < 0.05, lengths.mean()
    assert abs((lengths == 10).mean() - weights[-1]) < 0.01, (lengths == 10).mean()


def test_span_masking_spans_are_masked_whole():
    """Per-span 80/10/10: with mask_replace_prob=1 every labelled position is [MASK]; with 0/0 none changes."""
    tok = build_word_tokenizer(sentences(50))
    feats = [{"input_ids": tok(s)["input_ids"]} for s in sentences(50)]
    batch = SpanMaskingCollator(tok, mask_replace_prob=1.0, random_replace_prob=0.0, seed=3)(feats)
    labelled = batch["labels"] != -100
    assert labelled.any() and (batch["input_ids"][labelled] == tok.mask_token_id).all()
    ids, _ = original(tok, feats)
    batch = SpanMaskingCollator(tok, mask_replace_prob=0.0, random_replace_prob=0.0, seed=3)(feats)
    assert (batch["labels"] != -100).any() and torch.equal(batch["input_ids"], ids)


def test_span_masking_max_span_length_one_gives_rate_and_short_runs(tokenizer, features):
    collator = SpanMaskingCollator(tokenizer, mlm_probability=0.15, max_span_length=1, seed=0)
    all_runs, labelled, maskable = [], 0, 0
    for chunk in batches(features, 40):
        batch = collator(chunk)
        ids, real = original(tokenizer, chunk)
        mask = batch["labels"] != -100
        labelled += int(mask.sum())
        maskable += int((real & ~special_mask(tokenizer, ids)).sum())
        for row in mask.numpy():
            all_runs.extend(runs(row))
    assert 0.13 < labelled / maskable < 0.17
    assert np.mean(all_runs) < 1.5  # single tokens (adjacent ones merge only by chance)


def test_span_masking_seeding(tokenizer, features):
    chunk = features[:16]
    a = SpanMaskingCollator(tokenizer, seed=0)(chunk)
    b = SpanMaskingCollator(tokenizer, seed=0)(chunk)
    c = SpanMaskingCollator(tokenizer, seed=1)(chunk)
    for key in ("input_ids", "labels", "attention_mask"):
        assert torch.equal(a[key], b[key])
    assert not torch.equal(a["labels"], c["labels"])


def test_span_masking_unseeded_follows_torch_seed(tokenizer, features):
    chunk = features[:16]
    torch.manual_seed(5)
    a = SpanMaskingCollator(tokenizer)(chunk)
    torch.manual_seed(5)
    b = SpanMaskingCollator(tokenizer)(chunk)
    assert torch.equal(a["labels"], b["labels"]) and torch.equal(a["input_ids"], b["input_ids"])


def test_span_masking_respects_given_special_tokens_mask(tokenizer, features):
    """A feature's own special_tokens_mask is used: positions it marks are never labelled."""
    feats = []
    for f in features[:32]:
        n = len(f["input_ids"])
        special = [1 if i < n // 2 or i in (0, n - 1) else 0 for i in range(n)]
        feats.append({"input_ids": f["input_ids"], "special_tokens_mask": special})
    collator = SpanMaskingCollator(tokenizer, mlm_probability=0.5, seed=0)
    batch = collator(feats)
    for row, f in enumerate(feats):
        labelled = (batch["labels"][row] != -100).tolist()
        assert not any(lab and s for lab, s in zip(labelled, f["special_tokens_mask"]))
        assert any(labelled)


# ------------------------------------------------------------------ BERT's token masking


def test_mlm_collator_rate_and_split(tokenizer, features):
    collator = mlm_collator(tokenizer, mlm_probability=0.15, seed=0)
    maskable = labelled = as_mask = unchanged = special_labelled = bad = 0
    for chunk in batches(features, 150):
        batch = collator([{"input_ids": f["input_ids"]} for f in chunk])
        ids, real = original(tokenizer, chunk)
        specials = special_mask(tokenizer, ids)
        lab = batch["labels"] != -100
        maskable += int((real & ~specials).sum())
        labelled += int(lab.sum())
        special_labelled += int((lab & (specials | ~real)).sum())
        bad += int((batch["labels"][lab] != ids[lab]).sum())
        out = batch["input_ids"][lab]
        as_mask += int((out == tokenizer.mask_token_id).sum())
        unchanged += int((out == ids[lab]).sum())
    assert special_labelled == 0 and bad == 0
    assert 0.14 <= labelled / maskable <= 0.16, labelled / maskable
    assert abs(as_mask / labelled - 0.8) < 0.02
    assert abs(unchanged / labelled - 0.1) < 0.02
    assert abs((labelled - as_mask - unchanged) / labelled - 0.1) < 0.02


# ------------------------------------------------------------------ static masking


@pytest.mark.parametrize("make", [lambda tok: SpanMaskingCollator(tok, seed=7), lambda tok: mlm_collator(tok, seed=7)],
                         ids=["span", "mlm"])
def test_mask_statically(tokenizer, features, make):
    rows = features[:40]
    out = mask_statically(rows, make(tokenizer), batch_size=16)  # three chunks, the last one short
    again = mask_statically(rows, make(tokenizer), batch_size=16)
    assert set(out) == {"input_ids", "attention_mask", "labels"}
    assert out == again
    for key in out:
        assert len(out[key]) == len(rows)
        assert [len(r) for r in out[key]] == [len(f["input_ids"]) for f in rows]
    assert all(all(m == 1 for m in row) for row in out["attention_mask"])
    assert all(isinstance(x, int) for row in out["labels"] for x in row)
    for row, f in zip(out["labels"], rows):
        assert all(lab in (-100, orig) for lab, orig in zip(row, f["input_ids"]))
    assert sum(lab != -100 for row in out["labels"] for lab in row) > 0


# ------------------------------------------------------------------ constructor checks


@pytest.mark.parametrize("kwargs", [
    {"mlm_probability": 0.0}, {"mlm_probability": 1.0}, {"mlm_probability": -0.1},
    {"mask_replace_prob": -0.1}, {"random_replace_prob": -0.1},
    {"mask_replace_prob": 0.9, "random_replace_prob": 0.2},
    {"geometric_p": 0.0}, {"geometric_p": 1.5}, {"max_span_length": 0},
])
def test_span_collator_rejects_bad_settings(tokenizer, kwargs):
    with pytest.raises(ValueError):
        SpanMaskingCollator(tokenizer, **kwargs)


def test_span_collator_accepts_edge_settings(tokenizer):
    SpanMaskingCollator(tokenizer, geometric_p=1.0, max_span_length=1, mask_replace_prob=0.9,
                        random_replace_prob=0.1)
