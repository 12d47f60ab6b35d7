"""Data components: each reads raw data and returns a :class:`harness.data.base.Task`.

Registered names live in :data:`harness.config.components.REGISTRY` under ``"data"``.
"""
