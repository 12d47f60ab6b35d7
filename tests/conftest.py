"""Registers the shared fixtures of :mod:`testkit` (the helpers live there: ``from testkit import ...``)."""

from testkit import earlier_run, finished, fresh_accelerate, tiny_checkpoint, write_recipe

__all__ = ["earlier_run", "finished", "fresh_accelerate", "tiny_checkpoint", "write_recipe"]
