"""Registers this folder's fixtures (defined in :mod:`siamese_fixtures`)."""

from siamese_fixtures import tiny_siamese, tokenizer

__all__ = ["tiny_siamese", "tokenizer"]
