#!/usr/bin/env bash
# The main job: LoRA fine-tuning of all-MiniLM-L6-v2 on GLUE (recipes/glue_lora.yaml), offline.
# Extra arguments are recipe overrides, e.g.  bash scripts/main.sh data.task=mrpc
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup_env.sh
export HF_HUB_OFFLINE=${HF_HUB_OFFLINE:-1} HF_EVALUATE_OFFLINE=${HF_EVALUATE_OFFLINE:-1}
if [ -z "${HARNESS_DATA_DIR:-}" ] && [ -d ../shared/data ]; then
  export HARNESS_DATA_DIR=$(cd ../shared/data && pwd)
fi
exec .venv/bin/accelerate launch --quiet --num_processes 1 --num_machines 1 --mixed_precision no --dynamo_backend no \
  harness/run.py recipes/glue_lora.yaml "$@"
