"""Registers this folder's fixtures (defined in :mod:`superglue_fixtures`)."""

from superglue_fixtures import sg_dir, tiny_checkpoint

__all__ = ["sg_dir", "tiny_checkpoint"]
