#!/usr/bin/env python
"""Benchmark ``harness.modules.crf.CRF`` against pytorch-crf (``torchcrf``) on the same random inputs.

    HF_HUB_OFFLINE=1 OMP_NUM_THREADS=1 .venv/bin/python scripts/bench_crf.py [--repeats 30]

For each case (batch, seq_len, tags; CoNLL-like 32 x 40 x 9 and a longer one) both CRFs get the same
parameters (ours copied into pytorch-crf, ``batch_first=True`` for both) and the same emissions, gold
tags and variable-length mask (lengths uniform in [seq_len/2, seq_len], one sequence full length).
Timed, alternating ours / pytorch-crf each repeat (which goes first alternates too), median over
``--repeats`` of wall time and of process CPU time (the latter is less disturbed when other jobs load
the machine; with OMP_NUM_THREADS=1 both measure one thread):

* ``LL fwd``: ``crf(emissions, tags, mask)`` (log-likelihood, reduction sum);
* ``LL fwd+bwd``: the same plus ``.backward()`` (a training step's CRF cost);
* ``decode``: Viterbi ``crf.decode(emissions, mask)`` to lists of tag indices.

Equality checks: per-sequence log-likelihood within 1e-5 (absolute, both CRFs in float64; the float32
relative difference is reported too), identical Viterbi paths (float32 and float64).
Prints a markdown table with command, CPU model, cores, torch version and date. pytorch-crf must be
installed (``.venv/bin/pip install pytorch-crf==0.7.2``). Nothing here runs in the test suite.
"""

from __future__ import annotations

import argparse
import copy
import datetime as _dt
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from harness.modules.crf import CRF  # noqa: E402

try:
    import torchcrf
except ImportError:  # pragma: no cover
    sys.exit("pytorch-crf is not installed: .venv/bin/pip install pytorch-crf==0.7.2")


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def make_case(batch: int, seq_len: int, num_tags: int, seed: int):
    gen = torch.Generator().manual_seed(seed)
    emissions = torch.randn(batch, seq_len, num_tags, generator=gen)
    tags = torch.randint(num_tags, (batch, seq_len), generator=gen)
    lengths = torch.randint(seq_len // 2, seq_len + 1, (batch,), generator=gen)
    lengths[0] = seq_len
    # (B, L): left-aligned prefixes
    mask = torch.arange(seq_len).unsqueeze(0) < lengths.unsqueeze(1)
    return emissions, tags, mask


def timed(fn) -> tuple[float, float]:
    """(wall, process CPU) seconds of one call; CPU time is less disturbed by other jobs' load."""
    wall, cpu = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - wall, time.process_time() - cpu


def bench_case(batch: int, seq_len: int, num_tags: int, repeats: int, seed: int) -> dict:
    torch.manual_seed(seed)
    ours = CRF(num_tags, batch_first=True)
    ref = torchcrf.CRF(num_tags, batch_first=True)
    with torch.no_grad():
        ref.start_transitions.copy_(ours.start_transitions)
        ref.end_transitions.copy_(ours.end_transitions)
        ref.transitions.copy_(ours.transitions)
    emissions, tags, mask = make_case(batch, seq_len, num_tags, seed)
    mask_ref = mask  # pytorch-crf documents uint8 masks; bool gives the same results without a deprecation warning

    # Equality checks: float64 copies for the 1e-5 absolute LL check (float32 sums over a sequence of
    # ~100-magnitude scores differ in summation order at ~1e-6 relative), float32 relative diff reported.
    with torch.no_grad():
        ll32 = ours(emissions, tags, mask, reduction="none")
        ll32_ref = ref(emissions, tags, mask_ref, reduction="none")
        rel32 = float(((ll32 - ll32_ref).abs() / ll32_ref.abs()).max())
        ours64, ref64 = copy.deepcopy(ours).double(), copy.deepcopy(ref).double()
        em64 = emissions.double()
        ll_diff = float((ours64(em64, tags, mask, reduction="none") - ref64(em64, tags, mask_ref, reduction="none")).abs().max())
    paths_equal = ours.decode(emissions, mask) == ref.decode(emissions, mask_ref)
    paths_equal &= ours64.decode(em64, mask) == ref64.decode(em64, mask_ref)

    em_grad_ours = emissions.clone().requires_grad_(True)
    em_grad_ref = emissions.clone().requires_grad_(True)

    def ours_bwd():
        ours.zero_grad(set_to_none=True)
        em_grad_ours.grad = None
        ours(em_grad_ours, tags, mask).backward()

    def ref_bwd():
        ref.zero_grad(set_to_none=True)
        em_grad_ref.grad = None
        ref(em_grad_ref, tags, mask_ref).backward()

    tasks = {
        "LL fwd": (lambda: ours(emissions, tags, mask), lambda: ref(emissions, tags, mask_ref)),
        "LL fwd+bwd": (ours_bwd, ref_bwd),
        "decode": (lambda: ours.decode(emissions, mask), lambda: ref.decode(emissions, mask_ref)),
    }
    results = {}
    for name, (fn_ours, fn_ref) in tasks.items():
        for _ in range(3):  # warm-up
            fn_ours()
            fn_ref()
        t_ours, t_ref = [], []
        for i in range(repeats):
            if i % 2 == 0:
                t_ours.append(timed(fn_ours))
                t_ref.append(timed(fn_ref))
            else:
                t_ref.append(timed(fn_ref))
                t_ours.append(timed(fn_ours))
        results[name] = tuple(
            statistics.median(t[k] for t in ts) for ts in (t_ours, t_ref) for k in (0, 1)
        )  # (ours wall, ours cpu, ref wall, ref cpu)
    return {"ll_diff": ll_diff, "rel32": rel32, "paths_equal": paths_equal, "times": results}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    cases = [(32, 40, 9), (32, 200, 9), (8, 40, 25)]
    command = "OMP_NUM_THREADS={} .venv/bin/python scripts/bench_crf.py {}".format(
        os.environ.get("OMP_NUM_THREADS", "unset"), " ".join(sys.argv[1:])
    ).strip()
    load_start = os.getloadavg()
    rows = []
    all_ok = True
    for batch, seq_len, num_tags in cases:
        res = bench_case(batch, seq_len, num_tags, args.repeats, args.seed)
        ok = res["ll_diff"] <= 1e-5 and res["paths_equal"]
        all_ok &= ok
        for name, (t_ours, c_ours, t_ref, c_ref) in res["times"].items():
            rows.append(
                f"| {batch}×{seq_len}×{num_tags} | {name} | {t_ours * 1e3:.3f} | {t_ref * 1e3:.3f} "
                f"| **{t_ref / t_ours:.2f}×** | {c_ours * 1e3:.3f} | {c_ref * 1e3:.3f} | {c_ref / c_ours:.2f}× | {res['ll_diff']:.1e} | {res['rel32']:.1e} | {'yes' if res['paths_equal'] else 'NO'} |"
            )
    load_end = os.getloadavg()

    print(f"- command: `{command}`")
    print(f"- hardware: {cpu_model()}, {os.cpu_count()} logical cores; torch threads {torch.get_num_threads()}")
    print(f"- torch {torch.__version__}, pytorch-crf {torchcrf.__version__}, Python {platform.python_version()}")
    print(f"- date: {_dt.datetime.now(_dt.timezone.utc):%Y-%m-%d %H:%M UTC}")
    print(f"- load average at start / end: {load_start[0]:.2f} / {load_end[0]:.2f}")
    print(
        f"- median of {args.repeats} alternating repeats (wall and process CPU time); masks with variable "
        "lengths; speed-up = pytorch-crf / ours"
    )
    print()
    print(
        "| batch×len×tags | op | ours ms | pytorch-crf ms | speed-up | ours CPU ms | pytorch-crf CPU ms "
        "| CPU speed-up | max LL diff (f64) | max LL rel diff (f32) | same paths |"
    )
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    print("\n".join(rows))
    if not all_ok:
        sys.exit("equality check failed")


if __name__ == "__main__":
    main()
