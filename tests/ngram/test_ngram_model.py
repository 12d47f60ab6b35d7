"""NgramLM behaviour: finite perplexity on unseen words, MLE's inf, scores, sampling, bad input."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

from harness import registry
from harness.errors import DataError, HarnessError
from harness.models.ngram import NgramLM, NgramWarning, ngram_lm

TRAIN = ["the cat sat on the mat", "the dog sat on the log", "a cat saw a dog", "the mat was red",
         "a dog sat", "the cat ran"]
UNSEEN = ["the zebra sat on the sofa", "quokka"]


def fit(order=3, smoothing="modified_kneser_ney", **kw) -> NgramLM:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NgramWarning)
        return NgramLM(order, smoothing, **kw).fit(TRAIN)


@pytest.mark.parametrize("order", [1, 2, 3, 4])
@pytest.mark.parametrize("smoothing", ["laplace", "add_k", "kneser_ney", "modified_kneser_ney"])
def test_perplexity_is_finite_on_unseen_words(order, smoothing):
    lm = fit(order, smoothing, k=0.1)
    with warnings.catch_warnings():
        warnings.simplefilter("error", NgramWarning)  # no probability-0 warning either
        scores = lm.score(UNSEEN)
    assert np.isfinite(scores.log10).all()
    assert math.isfinite(scores.perplexity) and scores.perplexity > 1
    assert scores.oov.sum() == 3  # zebra, sofa, quokka
    assert scores.oov_rate == pytest.approx(3 / scores.num_tokens)
    # the unseen word is scored as <unk>, which has real mass
    assert lm.log10_prob("zebra", ["the"]) == lm.log10_prob("<unk>", ["the"]) > -10


def test_mle_gives_inf_with_a_warning_and_finite_on_seen_text():
    lm = fit(2, "mle")
    with pytest.warns(NgramWarning, match="MLE"):
        assert lm.perplexity(UNSEEN) == math.inf
    with warnings.catch_warnings():
        warnings.simplefilter("error", NgramWarning)
        assert math.isfinite(lm.perplexity(TRAIN))


def test_scores_layout_and_units():
    lm = fit()
    scores = lm.score(["the cat sat", "a dog"])
    assert scores.num_sentences == 2 and scores.num_tokens == 4 + 3  # words + </s> each
    np.testing.assert_array_equal(scores.sentence(1), scores.log10[4:])
    assert scores.cross_entropy_bits == pytest.approx(math.log2(scores.perplexity))
    assert scores.perplexity == pytest.approx(10 ** (-scores.log10.sum() / 7))
    ln = lm.logprobs("the cat sat")
    np.testing.assert_allclose(ln, scores.sentence(0) * math.log(10))
    # strings and token lists are the same sentence; eos=False drops </s>
    assert lm.score([["the", "cat", "sat"]]).log10.tolist() == scores.sentence(0).tolist()
    assert lm.score(["the cat sat"], eos=False).log10.tolist() == scores.sentence(0)[:3].tolist()
    # an empty sentence still predicts </s>
    assert lm.score([""]).num_tokens == 1


def test_history_longer_than_order_uses_last_words_only():
    lm = fit(3)
    assert lm.log10_prob("sat", ["x", "y", "the", "cat"]) == lm.log10_prob("sat", ["the", "cat"])
    assert lm.log10_prob("sat", ["<s>", "the", "cat"]) == lm.log10_prob("sat", ["the", "cat"])


def test_sampling_is_reproducible_and_in_vocabulary():
    lm = fit(3)
    a = lm.sample(20, seed=7)
    assert a == lm.sample(20, seed=7)
    assert a != lm.sample(20, seed=8)
    vocab = set(lm.vocab.words) - {"<s>"}
    for s in a:
        assert s[-1] == "</s>" and "</s>" not in s[:-1]
        assert set(s) <= vocab
    # a cut sample (max_length) does not invent </s>
    assert all(len(s) <= 2 for s in lm.sample(10, seed=1, max_length=2))
    assert lm.sample(1, seed=0, prefix=["the"])[0][-1] == "</s>"


def test_samples_follow_the_distribution():
    lm = NgramLM(1, "mle").fit(["a a a b"])  # p(a) = 3/5, p(b) = 1/5, p(</s>) = 1/5
    first = [s[0] for s in lm.sample(4000, seed=0)]
    assert first.count("a") / 4000 == pytest.approx(0.6, abs=0.03)


def test_sampling_goes_through_the_generation_warpers():
    lm = NgramLM(1, "mle").fit(["a a a b"])  # p(a) = 3/5, p(b) = 1/5, p(</s>) = 1/5

    def first(n=4000, **kw):
        words = [s[0] for s in lm.sample(n, seed=0, max_length=1, **kw)]
        return {w: words.count(w) / n for w in set(words)}

    assert first(400, top_k=1) == {"a": 1.0}
    assert first(400, top_p=0.5) == {"a": 1.0}  # a alone holds 0.6 >= 0.5
    kept = first(400, top_p=0.7)  # the smallest set holding 0.7: a (0.6) and one of the two at 0.2
    assert len(kept) == 2 and "a" in kept
    assert first(400, temperature=0.05) == {"a": 1.0}  # (3/5)^20 dwarfs (1/5)^20
    hot = first(temperature=2.0)  # p^(1/2) renormalised: a = √.6 / (√.6 + 2√.2)
    assert hot["a"] == pytest.approx(0.6 ** 0.5 / (0.6 ** 0.5 + 2 * 0.2 ** 0.5), abs=0.03)
    assert first(400, epsilon_cutoff=0.3) == {"a": 1.0}  # b and </s> (0.2) fall under epsilon
    # a processor in the transformers interface sees the history ids: ban the word drawn before
    from transformers import LogitsProcessor

    class NoRepeat(LogitsProcessor):
        def __call__(self, input_ids, scores):
            scores = scores.clone()
            scores[0, input_ids[0, -1]] = float("-inf")
            return scores

    for sentence in lm.sample(50, seed=1, max_length=10, logits_processor=[NoRepeat()]):
        assert all(x != y for x, y in zip(sentence, sentence[1:]))
    assert lm.sample(20, seed=3) == lm.sample(20, seed=3, temperature=1.0)  # neutral settings: the plain draw
    with pytest.raises(ValueError, match="unknown top_q"):
        lm.sample(1, top_q=0.5)


# ------------------------------------------------------------------------ bad input


@pytest.mark.parametrize("corpus", [[], [[]], ["", "   "]])
def test_empty_corpus(corpus):
    with pytest.raises(DataError, match="empty corpus"):
        NgramLM(3).fit(corpus)


@pytest.mark.parametrize("order", [0, -1, 2.5, True, "3"])
def test_bad_order(order):
    with pytest.raises(HarnessError, match="order must be an integer >= 1"):
        NgramLM(order)


def test_unknown_smoothing_names_the_choices():
    with pytest.raises(HarnessError, match=r"unknown smoothing 'kneser-ney' \(did you mean 'kneser_ney'\?\)"):
        NgramLM(3, "kneser-ney")


@pytest.mark.parametrize("kwargs, match", [
    ({"smoothing": "add_k", "k": 0}, "k > 0"),
    ({"smoothing": "kneser_ney", "discount": 1.5}, r"\(0, 1\]"),
    ({"smoothing": "kneser_ney", "discount": [0.5, 0.5]}, "one per order"),
    ({"smoothing": "modified_kneser_ney", "discount": [0.5, 2.5, 1.0]}, "0 < Dk <= k"),
    ({"smoothing": "mle", "discount": 0.5}, "discount applies to"),
    ({"unk_threshold": 0}, "unk_threshold"),
])
def test_bad_hyperparameters(kwargs, match):
    with pytest.raises(HarnessError, match=match):
        NgramLM(3, **kwargs)


def test_reserved_tokens_and_unfitted_model():
    with pytest.raises(HarnessError, match="not fitted"):
        NgramLM(2).score(["a"])
    with pytest.raises(DataError, match=r"training sentence 2: token '</s>'"):
        NgramLM(2).fit(["a b", "a </s> b"])
    lm = fit(2)
    with pytest.raises(DataError, match="reserved for sentence boundaries"):
        lm.score(["the <s> cat"])
    with pytest.raises(DataError, match="may only start a history"):
        lm.log10_prob("cat", ["the", "<s>"])


def test_component_refuses_a_non_lm_task():
    class NotLM:
        class info:
            name = "sst2"

    with pytest.raises(HarnessError, match="language-modelling data component"):
        ngram_lm(NotLM())
    assert registry.entry("model", "ngram_lm").meta["procedure"] == "counting"
    assert isinstance(ngram_lm(None, order=2), NgramLM)
