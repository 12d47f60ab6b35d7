"""Offline ``evaluate`` modules, one folder each (``<name>/<name>.py``), loaded by path.

``evaluate.load("glue")`` needs the Hub; ``load_metric("glue", "mrpc")`` loads the copy here, so
metrics work with ``HF_EVALUATE_OFFLINE=1`` and no network.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

METRICS_DIR = Path(__file__).resolve().parent


def available() -> list[str]:
    return sorted(p.name for p in METRICS_DIR.iterdir() if (p / f"{p.name}.py").is_file())


@lru_cache(maxsize=None)
def load_metric(name: str, config_name: str | None = None):
    """Load ``harness/metrics/<name>/<name>.py`` as an ``evaluate.EvaluationModule``."""
    import evaluate

    from harness.errors import HarnessError

    path = METRICS_DIR / name
    if not (path / f"{name}.py").is_file():
        raise HarnessError(f"unknown metric {name!r}; available: {', '.join(available())}")
    kwargs = {"config_name": config_name} if config_name else {}
    return evaluate.load(str(path), **kwargs)
