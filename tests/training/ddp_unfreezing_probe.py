"""``accelerate launch tests/training/ddp_unfreezing_probe.py RECIPE``: ``harness/run.py`` with one more callback,
``test_rank_weights``, which writes what each process holds to ``OUTPUT_DIR/probe/rank<R>.jsonl``: at the start of
training and after every optimizer step a SHA-1 of every parameter's bytes, and at the start of every step the
names of the parameters trainable in it (read by tests/training/test_unfreezing_ddp.py; not collected by pytest)."""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from harness.registry import register  # noqa: E402
from harness.training.callbacks import Callback  # noqa: E402


@register("callback", "test_rank_weights")
class RankWeights(Callback):
    def _write(self, loop, row: dict) -> None:
        path = Path(loop.output_dir) / "probe" / f"rank{loop.accelerator.process_index}.jsonl"
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "a") as f:
            f.write(json.dumps({"step": loop.state.global_step, **row}) + "\n")

    def _hashes(self, loop) -> dict:
        return {n: hashlib.sha1(p.detach().cpu().contiguous().numpy().tobytes()).hexdigest()
                for n, p in loop.unwrapped_model.named_parameters()}

    def on_train_begin(self, loop) -> None:
        self._write(loop, {"event": "begin", "hashes": self._hashes(loop),
                           "find_unused_parameters": getattr(loop.model, "find_unused_parameters", None)})

    def on_step_begin(self, loop) -> None:
        self._write(loop, {"event": "step_begin",
                           "trainable": sorted(n for n, p in loop.unwrapped_model.named_parameters() if p.requires_grad)})

    def on_step_end(self, loop) -> None:
        self._write(loop, {"event": "step_end", "hashes": self._hashes(loop)})


if __name__ == "__main__":
    from harness.run import main

    sys.exit(main())
