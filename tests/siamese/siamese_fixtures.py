"""Fixtures of the siamese tests (registered by the folder's conftest.py): tiny random BERT encoders and a WordPiece
tokenizer built in the test's folder (nothing downloaded)."""

from __future__ import annotations

import pytest

WORDS = ("a man woman child dog cat is are the plays playing guitar piano runs running eats eating food park "
         "on in with and sings music horse rides bike slices onion").split()


def make_tokenizer(folder):
    from transformers import BertTokenizerFast

    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *WORDS, "##s", "##ing"]
    return BertTokenizerFast(vocab={token: i for i, token in enumerate(vocab)}, do_lower_case=True,
                             model_max_length=64)


def bert_config(vocab_size: int, **kw):
    from transformers import BertConfig

    return BertConfig(vocab_size=vocab_size, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                      intermediate_size=48, max_position_embeddings=64, hidden_dropout_prob=0.0,
                      attention_probs_dropout_prob=0.0, **kw)


@pytest.fixture
def tokenizer(tmp_path):
    return make_tokenizer(tmp_path)


@pytest.fixture
def tiny_siamese(tokenizer):
    """``make(pooling=..., normalize=..., similarity=...)`` → a random tiny BERT bi-encoder."""
    import torch

    from harness.models.siamese.configuration_siamese import SiameseConfig
    from harness.models.siamese.modeling_siamese import SiameseModel

    def make(**kw):
        torch.manual_seed(0)
        config = SiameseConfig(encoder=bert_config(len(tokenizer)).to_dict(), **kw)
        return SiameseModel(config).eval()

    return make
