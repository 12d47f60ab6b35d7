#!/usr/bin/env python
"""Train a GLUE recipe on every GLUE task (or collect earlier runs), then write the GLUE submission
zip and a dev-score leaderboard. Same as ``harness leaderboard``; see harness/workflows/glue_leaderboard.py.

    HF_HUB_OFFLINE=1 HF_EVALUATE_OFFLINE=1 HARNESS_DATA_DIR=/work/shared/data \\
        python scripts/glue_leaderboard.py --recipe recipes/glue_lora.yaml --runs-dir runs/glue \\
        --out runs/glue [--tasks sst2 rte ...] [--collect] [key.path=value ...]
"""

from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a file from a checkout: make `harness` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from harness.workflows.glue_leaderboard import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
