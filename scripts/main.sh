#!/usr/bin/env bash
# The main job: LoRA fine-tuning of all-MiniLM-L6-v2 on GLUE (recipes/glue_lora.yaml).
# Extra arguments are recipe overrides, e.g.  bash scripts/main.sh data.task=mrpc
# Data: the local mirror when $HARNESS_DATA_DIR (or ../shared/data) exists, else the Hugging Face Hub.
# The Hub is used when it answers; offline (HF_HUB_OFFLINE=1, local copies only) when it does not.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup_env.sh
if [ -z "${HARNESS_DATA_DIR:-}" ] && [ -d ../shared/data ]; then
  export HARNESS_DATA_DIR=$(cd ../shared/data && pwd)
fi
if [ -z "${HF_HUB_OFFLINE:-}" ]; then
  if .venv/bin/python -c "import urllib.request; urllib.request.urlopen('https://huggingface.co/api/models/sentence-transformers/all-MiniLM-L6-v2', timeout=5)" 2>/dev/null; then
    echo "Hugging Face Hub: reachable" >&2
  else
    export HF_HUB_OFFLINE=1 HF_EVALUATE_OFFLINE=1
    echo "Hugging Face Hub: not reachable; offline, local copies only (HF_HUB_OFFLINE=1)" >&2
  fi
fi
# accelerate launch gives its one process OMP_NUM_THREADS=1 unless told; one process may use every core it has
# (2 threads: 1.38x the tokens/s of 1 on the 2-core EPYC, quiet). On a machine shared with other jobs, set
# OMP_NUM_THREADS=1 yourself: threads that wait for a busy core spin.
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-$(nproc)}
export HF_EVALUATE_OFFLINE=${HF_EVALUATE_OFFLINE:-1}  # the metrics are the project's own modules, loaded by path
exec .venv/bin/accelerate launch --quiet --num_processes 1 --num_machines 1 --mixed_precision no --dynamo_backend no \
  harness/run.py recipes/glue_lora.yaml "$@"
