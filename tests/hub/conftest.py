"""Registers this folder's fixtures (defined in :mod:`hubtools`)."""

from hubtools import hub

__all__ = ["hub"]
