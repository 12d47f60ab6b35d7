"""The BiLSTM-CRF / softmax tagger: Auto round trips, CRF loss and decoding, padding, word vectors."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from transformers import AutoConfig, AutoModelForTokenClassification

from harness.errors import DataError
from harness.models.rnn_tagger.builders import load_word_vectors
from harness.models.rnn_tagger import RNNTaggerConfig, RNNTaggerForTokenClassification, char_ids
from harness.modules.crf import CRF, allowed_transitions

LABELS = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC"]


def make(head="crf", char_encoder="lstm", **kw) -> RNNTaggerForTokenClassification:
    torch.manual_seed(0)
    config = RNNTaggerConfig(
        vocab_size=30, embedding_size=8, hidden_size=6, num_layers=1, bidirectional=True, dropout=0.0,
        char_vocab=list("abcdefgh"), char_encoder=char_encoder, char_embedding_size=4, char_hidden_size=3,
        head=head, tag_scheme="IOB2", num_labels=len(LABELS), id2label=dict(enumerate(LABELS)),
        label2id={t: i for i, t in enumerate(LABELS)}, **kw,
    )
    return RNNTaggerForTokenClassification(config).eval()


def batch(seed=0, b=3, t=7, w=5):
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(5, 30, (b, t), generator=g)
    mask = torch.ones(b, t, dtype=torch.long)
    mask[1, 5:] = 0
    mask[2, 2:] = 0
    chars = torch.randint(2, 10, (b, t, w), generator=g)
    chars[:, :, 3:] = 0
    chars[mask == 0] = 0
    labels = torch.randint(0, len(LABELS), (b, t), generator=g).masked_fill(mask == 0, -100)
    return {"input_ids": ids, "attention_mask": mask, "char_ids": chars, "labels": labels}


@pytest.mark.parametrize("head,char_encoder", [("crf", "lstm"), ("crf", "cnn"), ("softmax", "lstm"), ("softmax", "none")])
def test_save_then_auto_load_gives_identical_outputs(tmp_path, head, char_encoder):
    model = make(head, char_encoder)
    inputs = batch()
    with torch.no_grad():
        out = model(**inputs)
        tags = model.decode_tags(out.logits, inputs["attention_mask"])
    model.save_pretrained(tmp_path)
    assert AutoConfig.from_pretrained(tmp_path).model_type == "harness_rnn_tagger"
    loaded = AutoModelForTokenClassification.from_pretrained(tmp_path).eval()
    assert type(loaded) is RNNTaggerForTokenClassification
    with torch.no_grad():
        again = loaded(**inputs)
    assert torch.equal(out.logits, again.logits) and torch.equal(out.loss, again.loss)
    assert torch.equal(tags, loaded.decode_tags(again.logits, inputs["attention_mask"]))
    assert loaded.char_ids_for(["abc", "zz"]) == model.char_ids_for(["abc", "zz"]) == [[2, 3, 4], [1, 1]]


def test_crf_loss_is_the_mean_negative_log_likelihood_and_decoding_is_viterbi():
    model = make("crf")
    inputs = batch()
    with torch.no_grad():
        out = model(**inputs)
    mask = inputs["attention_mask"].bool()
    reference = CRF(len(LABELS), constraints=allowed_transitions(LABELS, "IOB2"))
    reference.load_state_dict(model.crf.state_dict())
    expected = -reference(out.logits, inputs["labels"], mask, reduction="mean")
    torch.testing.assert_close(out.loss, expected)
    tags = model.decode_tags(out.logits, inputs["attention_mask"])
    assert (tags[~mask] == -100).all()
    for row, path in zip(tags, reference.decode(out.logits, mask)):
        assert row[row != -100].tolist() == path
        # IOB2 constraints: never O -> I-X, never a sentence starting with I-X
        named = [LABELS[i] for i in path]
        for prev, cur in zip(["O"] + named, named):
            if cur.startswith("I-"):
                assert prev[2:] == cur[2:] and prev != "O"


def test_softmax_head_is_masked_cross_entropy_and_argmax():
    model = make("softmax")
    inputs = batch()
    with torch.no_grad():
        out = model(**inputs)
    labels = inputs["labels"]
    expected = torch.nn.functional.cross_entropy(out.logits.reshape(-1, len(LABELS)), labels.reshape(-1), ignore_index=-100)
    torch.testing.assert_close(out.loss, expected)
    tags = model.decode_tags(out.logits, inputs["attention_mask"])
    assert torch.equal(tags, out.logits.argmax(-1).masked_fill(inputs["attention_mask"] == 0, -100))


@pytest.mark.parametrize("char_encoder", ["lstm", "cnn"])
def test_padding_does_not_change_a_sentence(char_encoder):
    model = make("crf", char_encoder)
    inputs = batch()
    n = int(inputs["attention_mask"][1].sum())
    alone = {k: v[1:2, :n] for k, v in inputs.items()}
    with torch.no_grad():
        padded = model(**inputs).logits[1, :n]
        single = model(**alone).logits[0]
    torch.testing.assert_close(padded, single, atol=1e-6, rtol=1e-5)


def test_crf_refuses_unlabelled_real_positions_and_missing_chars():
    model = make("crf")
    inputs = batch()
    inputs["labels"][0, 2] = -100
    with pytest.raises(ValueError, match="a tag for every word"):
        model(**inputs)
    with pytest.raises(ValueError, match="char_ids"):
        model(input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"])


def test_word_dropout_only_in_training():
    model = make("softmax", "none", word_dropout=0.5, unk_token_id=1)
    inputs = batch()
    with torch.no_grad():
        a, b = model(**inputs).logits, model(**inputs).logits
        assert torch.equal(a, b)
        model.train()
        torch.manual_seed(1)
        c = model(**inputs).logits
    assert not torch.equal(a, c)


def test_singleton_unk_replaces_only_singletons_and_only_in_training(tmp_path):
    model = make("softmax", "none", word_dropout=0.0, singleton_unk=0.9, unk_token_id=1)
    model.set_singleton_words([7, 9])
    seen = []
    model.rnn.embeddings.register_forward_hook(lambda mod, args, out: seen.append(args[0].clone()))
    ids = torch.tensor([[7, 9, 8, 10] * 50])
    with torch.no_grad():
        model(input_ids=ids)
        assert torch.equal(seen[-1], ids)  # evaluation: nothing replaced
        model.train()
        torch.manual_seed(0)
        model(input_ids=ids)
    got = seen[-1]
    singleton = (ids == 7) | (ids == 9)
    assert torch.equal(got[~singleton], ids[~singleton])  # other words untouched (word_dropout 0)
    share = (got[singleton] == 1).float().mean().item()
    assert 0.8 < share < 0.98, share
    # the set travels with the weights
    model.eval().save_pretrained(tmp_path)
    loaded = AutoModelForTokenClassification.from_pretrained(tmp_path)
    assert loaded.singleton_words.nonzero().flatten().tolist() == [7, 9]
    with pytest.raises(ValueError, match="lie in"):
        model.set_singleton_words([30])
    with pytest.raises(ValueError, match="singleton_unk > 0"):
        make("softmax", "none").set_singleton_words([7])


def test_builder_marks_the_training_words_seen_once():
    from harness.models.rnn_tagger.builders import sequence_tagger

    class Info:
        num_labels, problem_type, extra = 2, None, {"scheme": "IOB2"}
        id2label = {0: "O", 1: "B-PER"}

    class Task:
        info = Info()

        def texts(self, split=None):
            return iter(["Paris is big", "paris 1990", "Rome 1991 is"])

    model, tok = sequence_tagger(Task(), singleton_unk=0.5, lowercase=True, digits_to_zero=True, char_encoder="none")
    marked = {tok.convert_ids_to_tokens(i) for i in model.singleton_words.nonzero().flatten().tolist()}
    assert marked == {"big", "rome"}  # "paris", "is" and "0000" occur twice once normalised
    assert model.config.singleton_unk == 0.5


@pytest.mark.parametrize("head", ["crf", "softmax"])
def test_predict_tags_returns_scores_only_for_a_tagger_without_sequence_decoding(head):
    from accelerate import Accelerator

    from harness.evaluation.runner import predict_tags

    model = make(head)
    inputs = batch()
    accelerator = Accelerator(cpu=True)
    tags, _ = predict_tags(model, [inputs], accelerator)
    rows, _ = predict_tags(model, [inputs], accelerator, scores=True)
    lengths = inputs["attention_mask"].sum(1).tolist()
    assert [len(r) for r in tags] == [len(r) for r in rows] == lengths
    if head == "crf":  # Viterbi either way
        assert all(np.array_equal(a, b) for a, b in zip(tags, rows))
    else:  # log-probabilities for the task's constrained decoder; their argmax is the plain reading
        assert all(r.shape == (n, len(LABELS)) for r, n in zip(rows, lengths))
        assert all(np.allclose(np.exp(r).sum(-1), 1, atol=1e-5) for r in rows)
        assert all(np.array_equal(r.argmax(-1), t) for r, t in zip(rows, tags))


def test_config_checks():
    with pytest.raises(ValueError, match="char_vocab"):
        RNNTaggerConfig(char_encoder="lstm", char_vocab=None)
    with pytest.raises(ValueError, match="head"):
        RNNTaggerConfig(char_encoder="none", head="mlp")
    with pytest.raises(ValueError, match="singleton_unk"):
        RNNTaggerConfig(char_encoder="none", singleton_unk=1.0)
    with pytest.raises(ValueError):  # a tag the scheme does not know
        RNNTaggerConfig(char_encoder="none", num_labels=2, id2label={0: "O", 1: "X-PER"}, label2id={"O": 0, "X-PER": 1})


def test_long_words_keep_their_last_character():
    index = {c: i + 2 for i, c in enumerate("abcdefghij")}
    assert char_ids(["abcdefghij", ""], index, 4) == [[2, 3, 4, 11], [1]]


def test_word_vectors_glove_and_word2vec_formats(tmp_path):
    emb = torch.nn.Embedding(5, 3)
    vocab = {"[PAD]": 0, "[UNK]": 1, "Paris": 2, "berlin": 3, "1990": 4}
    glove = tmp_path / "vectors.txt"
    glove.write_text("paris 1 2 3\nParis 4 5 6\nberlin 7 8 9 \n0000 1 1 1\n")
    assert load_word_vectors(emb, vocab, str(glove)) == 3
    assert emb.weight[2].tolist() == [4, 5, 6]  # the exact form wins over the lowercased one
    assert emb.weight[3].tolist() == [7, 8, 9]
    assert emb.weight[4].tolist() == [1, 1, 1]  # digits mapped to 0
    w2v = tmp_path / "w2v.txt"
    w2v.write_text("2 3\nberlin 0 0 1\nother 1 1 1\n")
    assert load_word_vectors(emb, vocab, str(w2v)) == 1
    bad = tmp_path / "bad.txt"
    bad.write_text("paris 1 2 3\nberlin 1 2\n")
    with pytest.raises(DataError, match=r"bad.txt:2: expected a word and 3 values"):
        load_word_vectors(emb, vocab, str(bad))
    with pytest.raises(DataError, match=r"w2v.txt:1: vectors have dimension 3"):
        load_word_vectors(torch.nn.Embedding(5, 4), vocab, str(w2v))
