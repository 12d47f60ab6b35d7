#!/usr/bin/env bash
# One-command GPU benchmark (issue 20): our loop vs the HF Trainer in bf16, the same with torch.compile in both, and
# one SST-2 epoch of the main job (recipes/glue_lora.yaml). Needs one CUDA GPU with torch, transformers, accelerate
# and peft installed, and NO network: everything else comes from the carry folder that
# scripts/prepare_gpu_carry.sh builds on a networked machine (wheels of datasets / evaluate, an fp16 copy of
# all-MiniLM-L6-v2, SST-2).
#
#   bash scripts/prepare_gpu_carry.sh                 # here, once: gpu_carry/ (~50 MB, git-ignored)
#   bash scripts/bench_gpu.sh [OUTDIR]                # there: results in OUTDIR (default $OUT, else bench_gpu_out/)
#   BENCH_GPU_TINY=1 bash scripts/bench_gpu.sh DIR    # a few steps on CPU or GPU: checks the plumbing, no figures
#
# Writes OUTDIR/bench_gpu.md and bench_gpu.json (the summary, with the issue's goals side by side), each stage's
# JSON (bench_loop*.json from scripts/bench_loop.py --json, main_job*_metrics.json), environment.json and
# bench_gpu.log: more than the device tool's 8 files, so pack OUTDIR into one archive in the call (tar czf). Each
# stage has a time limit; a stage that fails or runs out is reported as such and the next one still runs.
# Stages, in order:
#   loop          bench_loop.py, ours vs the Trainer, bf16, 300 steps (BENCH_GPU_STEPS / BENCH_GPU_TRAIN_SAMPLES)
#   attention     the same, the Trainer under our loop's attention kernels (--trainer-attention like-ours)
#   main          the main job, one SST-2 epoch
#   profile       both loops under torch.profiler for 15 steps: where a step's milliseconds go (~1 min)
#   compile       bench_loop.py --compile (each child compiles cold)
#   cudagraphs    bench_loop.py --compile --compile-mode reduce-overhead       } only with BENCH_GPU_CUDAGRAPHS=1
#   main_cudagraphs  the main job with training.compile=reduce-overhead       }
# On one H200 the first five took ~7 min. Env: GPU_CARRY (default gpu_carry), PYTHON (default python3),
# BENCH_GPU_SKIP (stages to leave out, e.g. "loop attention main"), BENCH_GPU_DEADLINE (seconds: every stage's limit
# is cut so that the whole, summary included, ends by then; a stage with under 20 s left is skipped and reported).
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
OUTDIR=${1:-${OUT:-$ROOT/bench_gpu_out}}
CARRY=${GPU_CARRY:-$ROOT/gpu_carry}
PY=${PYTHON:-python3}
TINY=${BENCH_GPU_TINY:-0}
SKIP=" ${BENCH_GPU_SKIP:-} "
mkdir -p "$OUTDIR"
OUTDIR=$(cd "$OUTDIR" && pwd)
CARRY=$(cd "$CARRY" 2>/dev/null && pwd) || { echo "bench_gpu: no carry folder ${GPU_CARRY:-gpu_carry} (run scripts/prepare_gpu_carry.sh)" >&2; exit 2; }
WORK=$(mktemp -d "${TMPDIR:-/tmp}/bench_gpu.XXXXXX")
exec > >(tee -a "$OUTDIR/bench_gpu.log") 2>&1
export HF_HUB_OFFLINE=1 HF_EVALUATE_OFFLINE=1 TOKENIZERS_PARALLELISM=false PYTHONUNBUFFERED=1
export HF_DATASETS_CACHE="$WORK/hf_datasets" HARNESS_TOKENIZE_CACHE="$WORK/tokenized"
START=$(date +%s)
echo "bench_gpu: work $WORK, results $OUTDIR, carry $CARRY, tiny=$TINY"

# ---- 1. packages the image lacks, from the carry (offline)
needs=$("$PY" scripts/bench_gpu_support.py needs) || exit 2
SITE="$WORK/site"
mkdir -p "$SITE"
if grep -qx wheels <<<"$needs"; then
    echo "installing the carried wheels: $(ls "$CARRY"/wheels)"
    "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target "$SITE" "$CARRY"/wheels/*.whl || exit 2
fi
if grep -qx transformers <<<"$needs"; then
    tarball=$(ls "$CARRY"/transformers-*.tar.xz 2>/dev/null | head -1)
    if [ -n "$tarball" ]; then
        echo "transformers $("$PY" -c 'import transformers; print(transformers.__version__)' 2>/dev/null || echo missing) is older than pyproject's minimum: unpacking $(basename "$tarball")"
        tar -C "$SITE" -xJf "$tarball" || exit 2
    else
        echo "warning: transformers is older than pyproject's minimum and the carry has none; going on with it"
    fi
fi
export PYTHONPATH="$SITE:$ROOT${PYTHONPATH:+:$PYTHONPATH}"
"$PY" -c "import datasets, evaluate, transformers, accelerate, peft" || { echo "bench_gpu: the packages do not import (see above)" >&2; exit 2; }

# ---- 2. model and data from the carry; the machine described
"$PY" scripts/bench_gpu_support.py restore "$CARRY" "$WORK" || exit 2
"$PY" scripts/bench_gpu_support.py describe "$OUTDIR" || exit 2
export HARNESS_DATA_DIR="$WORK/data"
MODEL="$WORK/minilm"

if [ "$TINY" = 1 ]; then
    MP=no
    LOOP=(--steps 3 --train-samples 96 --eval-samples 16 --log-steps 1 --warmup-steps 1)
    MAIN=(data.max_train_samples=64 data.max_eval_samples=32 training.eval_steps=1000 training.mixed_precision=no
          training.log_steps=1)
    PROFILE=(--steps 5 --train-samples 96 --eval-samples 16 --log-steps 1 --warmup-steps 1 --profile-skip 1
             --profile-steps 2)
    LIMIT_LOOP=300 LIMIT_COMPILE=400 LIMIT_MAIN=300 LIMIT_PROFILE=300
    SKIP="$SKIP compile "  # torch.compile on a CPU box takes minutes: BENCH_GPU_TINY_COMPILE=1 keeps it
    [ "${BENCH_GPU_TINY_COMPILE:-0}" = 1 ] && SKIP=${SKIP/ compile / }
else
    MP=bf16
    LOOP=(--steps "${BENCH_GPU_STEPS:-300}" --train-samples "${BENCH_GPU_TRAIN_SAMPLES:-12000}")
    MAIN=()
    PROFILE=(--steps 45 --train-samples 1440 --profile-skip 20 --profile-steps 15)
    LIMIT_LOOP=120 LIMIT_COMPILE=180 LIMIT_MAIN=150 LIMIT_PROFILE=120
fi

RAN=() FAILED=() SECONDS_JSON=""
stage() {  # stage NAME LIMIT command...
    local name=$1 limit=$2 t0 rc left
    shift 2
    if [[ "$SKIP" == *" $name "* ]]; then echo "---- $name: skipped"; return; fi
    if [ "${BENCH_GPU_DEADLINE:-0}" -gt 0 ]; then
        left=$(( BENCH_GPU_DEADLINE - ($(date +%s) - START) - 15 ))  # 15 s kept for the summary
        if [ "$left" -lt 20 ]; then
            echo "---- $name: skipped, ${left}s left before BENCH_GPU_DEADLINE"
            FAILED+=("$name (no time left before BENCH_GPU_DEADLINE)")
            return
        fi
        [ "$left" -lt "$limit" ] && limit=$left
    fi
    echo "---- $name (limit ${limit}s): $*"
    t0=$(date +%s)
    timeout --kill-after=10 "$limit" "$@"
    rc=$?
    RAN+=("$name")
    [ $rc -eq 0 ] || { FAILED+=("$name (exit $rc$([ $rc -eq 124 ] && echo ', time limit'))"); echo "---- $name failed: exit $rc"; }
    SECONDS_JSON+="\"$name\": $(( $(date +%s) - t0 )), "
}

# ---- 3. the loops, side by side (each child builds the same model and data; a whole-loop timing)
stage loop "$LIMIT_LOOP" "$PY" scripts/bench_loop.py --checkpoint "$MODEL" --mixed-precision "$MP" "${LOOP[@]}" \
    --repeats 1 --max-other-load 1.01 --json "$OUTDIR/bench_loop.json"
# the same, the Trainer under our loop's choice of attention kernels: how much of the ratio that choice is
stage attention "$LIMIT_LOOP" "$PY" scripts/bench_loop.py --checkpoint "$MODEL" --mixed-precision "$MP" "${LOOP[@]}" \
    --repeats 1 --max-other-load 1.01 --trainer-attention like-ours --json "$OUTDIR/bench_loop_attention.json"
# ---- 4. the main job (before the compiled loops, which take longest): one SST-2 epoch with LoRA
stage main "$LIMIT_MAIN" "$PY" -m harness train recipes/glue_lora.yaml "model.checkpoint=$MODEL" \
    "output_dir=$WORK/runs/glue_lora" "tracking.report_to=[]" training.overwrite=true "${MAIN[@]}"
[ -f "$WORK/runs/glue_lora/metrics.json" ] && cp "$WORK/runs/glue_lora/metrics.json" "$OUTDIR/main_job_metrics.json"

# where a step's milliseconds go: both loops under torch.profiler (its own run: profiling slows the steps)
stage profile "$LIMIT_PROFILE" "$PY" scripts/bench_loop.py --checkpoint "$MODEL" --mixed-precision "$MP" "${PROFILE[@]}" \
    --repeats 1 --max-other-load 1.01 --json "$OUTDIR/bench_loop_profile.json"

# ---- 5. the compiled loops
# each child compiles cold (else the second one reuses the first one's Inductor cache and looks faster)
stage compile "$LIMIT_COMPILE" env TORCHINDUCTOR_FX_GRAPH_CACHE=0 TORCHINDUCTOR_AUTOGRAD_CACHE=0 \
    "$PY" scripts/bench_loop.py --checkpoint "$MODEL" --mixed-precision "$MP" "${LOOP[@]}" \
    --repeats 1 --max-other-load 1.01 --compile --json "$OUTDIR/bench_loop_compile.json"

[ "${BENCH_GPU_CUDAGRAPHS:-0}" = 1 ] || SKIP="$SKIP cudagraphs main_cudagraphs "
stage cudagraphs "$LIMIT_COMPILE" env TORCHINDUCTOR_FX_GRAPH_CACHE=0 TORCHINDUCTOR_AUTOGRAD_CACHE=0 \
    "$PY" scripts/bench_loop.py --checkpoint "$MODEL" --mixed-precision "$MP" "${LOOP[@]}" \
    --repeats 1 --max-other-load 1.01 --compile --compile-mode reduce-overhead --json "$OUTDIR/bench_loop_cudagraphs.json"

# the main job compiled with CUDA graphs: one graph replay per step instead of ~600 kernel launches (the route to the
# ≤ 15 s epoch; the compilation of each length bucket's graphs counts in its training seconds)
stage main_cudagraphs "$(( LIMIT_MAIN + 90 ))" "$PY" -m harness train recipes/glue_lora.yaml "model.checkpoint=$MODEL" \
    "output_dir=$WORK/runs/glue_lora_cudagraphs" "tracking.report_to=[]" training.overwrite=true \
    training.compile=reduce-overhead "${MAIN[@]}"
[ -f "$WORK/runs/glue_lora_cudagraphs/metrics.json" ] && \
    cp "$WORK/runs/glue_lora_cudagraphs/metrics.json" "$OUTDIR/main_job_cudagraphs_metrics.json"

# ---- 6. summary
ran_json=$(printf '"%s",' "${RAN[@]}")
failed_json=$(printf '"%s",' "${FAILED[@]}")
[ ${#FAILED[@]} -eq 0 ] && failed_json=""
stage_label=$([ "$TINY" = 1 ] && echo "fp32 (tiny)" || echo bf16)
cat > "$OUTDIR/stages.json" <<EOF
{"tiny": $([ "$TINY" = 1 ] && echo true || echo false), "loop_label": "$stage_label", "ran": [${ran_json%,}], "failed": [${failed_json%,}], "seconds": {${SECONDS_JSON%, }}, "total_seconds": $(( $(date +%s) - START ))}
EOF
"$PY" scripts/bench_gpu_support.py summarize "$OUTDIR"
rm -f "$OUTDIR/stages.json"  # folded into bench_gpu.json
rm -rf "$WORK"
echo "bench_gpu: $(( $(date +%s) - START )) s in all; results in $OUTDIR"
[ ${#FAILED[@]} -eq 0 ]
