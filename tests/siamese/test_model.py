"""The Siamese bi-encoder: pooling against hand computation, the Auto round trip, and sentence-transformers
both ways (our export loads in ``SentenceTransformer`` with the same embeddings; a sentence-transformers folder
— all-MiniLM-L6-v2 as shipped — is read with its own pooling and normalisation)."""

from __future__ import annotations

import json

import pytest
import torch

from harness.errors import HarnessError

SENTENCES = ["a man plays the guitar", "the dog runs in the park", "a woman is eating food",
             "a child rides a horse on the park and sings"]


def test_pooling_is_mask_aware():
    from harness.models.siamese.modeling_siamese import pool

    hidden = torch.tensor([[[1.0, -2.0], [3.0, 4.0], [100.0, 100.0]]])
    mask = torch.tensor([[1, 1, 0]])
    torch.testing.assert_close(pool(hidden, mask, "mean"), torch.tensor([[2.0, 1.0]]))
    torch.testing.assert_close(pool(hidden, mask, "max"), torch.tensor([[3.0, 4.0]]))
    torch.testing.assert_close(pool(hidden, mask, "cls"), torch.tensor([[1.0, -2.0]]))


@pytest.mark.parametrize("pooling", ["mean", "cls", "max"])
def test_padding_does_not_change_an_embedding(tiny_siamese, tokenizer, pooling):
    model = tiny_siamese(pooling=pooling)
    alone = model.encode(SENTENCES[:1], tokenizer)
    every = model.encode(SENTENCES, tokenizer)  # the first one padded to the longest sentence
    torch.testing.assert_close(alone, every[:1], atol=1e-5, rtol=1e-5)
    assert not torch.allclose(every[0], every[1], atol=1e-3)  # the words are in the vocabulary: texts differ


def test_normalize_and_similarities(tiny_siamese, tokenizer):
    model = tiny_siamese(normalize=True, similarity="euclidean")
    e = model.encode(SENTENCES, tokenizer)
    torch.testing.assert_close(e.norm(dim=-1), torch.ones(len(SENTENCES)))
    torch.testing.assert_close(model.similarity(e[:2], e[2:]), -(e[:2] - e[2:]).norm(dim=-1))
    torch.testing.assert_close(model.similarity_matrix(e, e).diagonal(), torch.zeros(len(SENTENCES)), atol=1e-3, rtol=0)


def test_save_pretrained_auto_round_trip(tiny_siamese, tokenizer, tmp_path):
    from transformers import AutoConfig, AutoModel

    from harness.models.siamese.modeling_siamese import SiameseModel

    model = tiny_siamese(pooling="max", normalize=True, similarity="dot")
    model.save_pretrained(tmp_path / "m")
    assert AutoConfig.from_pretrained(tmp_path / "m").model_type == "harness_siamese"
    loaded = AutoModel.from_pretrained(tmp_path / "m").eval()
    assert isinstance(loaded, SiameseModel)
    assert (loaded.config.pooling, loaded.config.normalize, loaded.config.similarity) == ("max", True, "dot")
    torch.testing.assert_close(loaded.encode(SENTENCES, tokenizer), model.encode(SENTENCES, tokenizer))


@pytest.mark.parametrize("pooling,normalize,similarity", [("mean", True, "cosine"), ("cls", False, "dot"),
                                                          ("max", False, "euclidean")])
def test_export_loads_in_sentence_transformers_with_the_same_embeddings(tiny_siamese, tokenizer, tmp_path, pooling,
                                                                        normalize, similarity):
    from sentence_transformers import SentenceTransformer

    from harness.models.siamese.sentence_transformers_io import export_sentence_transformers, read_sentence_transformers

    model = tiny_siamese(pooling=pooling, normalize=normalize, similarity=similarity)
    path = export_sentence_transformers(model, tokenizer, tmp_path / "st")
    st = SentenceTransformer(str(path), device="cpu")
    theirs = torch.as_tensor(st.encode(SENTENCES, convert_to_numpy=True))
    torch.testing.assert_close(theirs, model.encode(SENTENCES, tokenizer), atol=1e-5, rtol=1e-5)
    assert st.similarity_fn_name == similarity
    # ... and our reader reads back what we wrote
    read = read_sentence_transformers(path)
    assert (read["pooling"], read["normalize"], read["similarity"]) == (pooling, normalize, similarity)


def test_minilm_checkpoint_folder_is_read_with_its_own_pooling():
    """all-MiniLM-L6-v2 as shipped: mean pooling from 1_Pooling/config.json, a Normalize module, 256 tokens; the
    builder's model gives sentence-transformers' embeddings."""
    from types import SimpleNamespace

    from sentence_transformers import SentenceTransformer

    from harness.models.pretrained import resolve_checkpoint
    from harness.models.siamese.builders import siamese
    from harness.models.siamese.sentence_transformers_io import read_sentence_transformers

    folder = resolve_checkpoint("sentence-transformers/all-MiniLM-L6-v2")
    read = read_sentence_transformers(folder)
    assert (read["pooling"], read["normalize"], read["max_seq_length"]) == ("mean", True, 256)
    task = SimpleNamespace(auto_model_class="AutoModel", info=SimpleNamespace(name="t"))
    model, tok = siamese(task, checkpoint="sentence-transformers/all-MiniLM-L6-v2")
    assert (model.config.pooling, model.config.normalize, model.config.max_seq_length) == ("mean", True, 256)
    theirs = torch.as_tensor(SentenceTransformer(folder, device="cpu").encode(SENTENCES))
    torch.testing.assert_close(model.eval().encode(SENTENCES, tok), theirs, atol=1e-5, rtol=1e-4)


def test_unsupported_sentence_transformers_modules_are_refused(tmp_path):
    from harness.models.siamese.sentence_transformers_io import read_sentence_transformers

    (tmp_path / "1_Pooling").mkdir()
    (tmp_path / "1_Pooling" / "config.json").write_text(json.dumps(
        {"pooling_mode_mean_tokens": True, "pooling_mode_max_tokens": True}))
    modules = [{"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
               {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"}]
    (tmp_path / "modules.json").write_text(json.dumps(modules))
    with pytest.raises(HarnessError, match=r"1_Pooling/config.json: pooling \['mean', 'max'\]"):
        read_sentence_transformers(tmp_path)
    (tmp_path / "1_Pooling" / "config.json").write_text(json.dumps({"pooling_mode_mean_tokens": True}))
    modules.append({"idx": 2, "name": "2", "path": "2_Dense", "type": "sentence_transformers.models.Dense"})
    (tmp_path / "modules.json").write_text(json.dumps(modules))
    with pytest.raises(HarnessError, match="modules.json: module 2 is a sentence_transformers.models.Dense"):
        read_sentence_transformers(tmp_path)


def test_config_refuses_unknown_choices():
    from harness.models.siamese.configuration_siamese import SiameseConfig

    with pytest.raises(ValueError, match="pooling must be one of"):
        SiameseConfig(pooling="attention")
    with pytest.raises(ValueError, match="similarity must be one of"):
        SiameseConfig(similarity="manhattan")


@pytest.mark.parametrize("encoder", [
    {"model_type": "harness_transformer", "hidden_size": 16, "num_hidden_layers": 1, "num_attention_heads": 2,
     "type_vocab_size": 2, "hidden_dropout_prob": 0.0, "attention_probs_dropout_prob": 0.0},
    {"model_type": "harness_rnn", "hidden_size": 16, "embedding_size": 16},
])
def test_our_own_encoders_are_shared_encoders_too(encoder, tmp_path):
    """The builder's fresh ``encoder:`` config may name our from-scratch Transformer or recurrent encoder: the
    bi-encoder embeds with it, ignores padding, and comes back from ``AutoModel``."""
    from types import SimpleNamespace

    from transformers import AutoModel

    from harness.models.siamese.builders import siamese

    task = SimpleNamespace(auto_model_class="AutoModel", info=SimpleNamespace(name="t"), texts=lambda: iter(SENTENCES))
    torch.manual_seed(0)
    model, tokenizer = siamese(task, encoder=encoder)
    model.eval()
    every = model.encode(SENTENCES, tokenizer)
    torch.testing.assert_close(model.encode(SENTENCES[:1], tokenizer), every[:1], atol=1e-5, rtol=1e-5)
    model.save_pretrained(tmp_path / "m")
    loaded = AutoModel.from_pretrained(tmp_path / "m").eval()
    assert loaded.config.encoder.model_type == encoder["model_type"]
    torch.testing.assert_close(loaded.encode(SENTENCES, tokenizer), every)
