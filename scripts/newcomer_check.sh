#!/usr/bin/env bash
# What a newcomer does with the README, checked in a temporary clone (committed files only) with a tiny
# GLUE mirror and no HARNESS_DATA_DIR:
#   1. every shipped recipe validates without knowing where the data is (`harness validate recipes`);
#   2. `harness recipes` lists them and `harness recipes copy` copies one that validates;
#   3. one tiny run through `accelerate launch --quiet` with its output in a file: no progress-bar frames,
#      a report with its plots, and a second run into the same folder refused with one error line;
#   4. the GLUE leaderboard: a partial run exits non-zero and says the zip would be rejected; all nine tasks
#      (tiny runs) give a complete zip that validates, exit 0.
# Run by CI (.ci/run); about two minutes on 2 cores.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup_env.sh
repo=$(pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
git clone -q "$repo" "$work/clone"
cd "$work/clone"
ln -s "$repo/.venv" .venv  # the environment set up above (a fresh one is what scripts/setup_env.sh makes)
export PYTHONPATH="$work/clone"  # the clone's code, not the checkout the environment was installed from
unset HARNESS_DATA_DIR
export HF_HUB_OFFLINE=1 HF_EVALUATE_OFFLINE=1 TOKENIZERS_PARALLELISM=false OMP_NUM_THREADS=1
fail() { echo "newcomer check FAILED: $*" >&2; exit 1; }
step() { echo "== $*"; }

step "1. harness validate recipes (no HARNESS_DATA_DIR)"
.venv/bin/harness validate recipes

step "2. harness recipes; harness recipes copy"
.venv/bin/harness recipes > "$work/recipes.txt"
grep -q "^glue_lora " "$work/recipes.txt" || fail "glue_lora is not listed"
.venv/bin/harness recipes | head -1 > /dev/null  # a closed pipe is not an error
.venv/bin/harness recipes copy lm/lstm_medium_ptb "$work/mine.yaml"
.venv/bin/harness validate "$work/mine.yaml"

step "3. a tiny run through accelerate launch, output to a file"
launch=(.venv/bin/accelerate launch --quiet --num_processes 1 --num_machines 1 --mixed_precision no
        --dynamo_backend no harness/run.py recipes/tiny/synthetic_bert.yaml "output_dir=$work/tiny"
        "tracking.report_to=[]")
"${launch[@]}" > "$work/tiny.log" 2>&1 || { cat "$work/tiny.log"; fail "the tiny run failed"; }
if grep -q $'\r' "$work/tiny.log"; then fail "progress-bar frames (\\r) in a log file"; fi
for f in report.md metrics.json loss_curve.png eval_metrics.png schedule.png confusion_matrix.png; do
  [ -s "$work/tiny/$f" ] || fail "the run wrote no $f"
done
grep -q "^step 64/64: loss" "$work/tiny.log" || fail "no log rows in the log file"
if "${launch[@]}" > "$work/again.log" 2>&1; then fail "a second run into the same folder was not refused"; fi
[ "$(grep -c '^error:' "$work/again.log")" = 1 ] || { cat "$work/again.log"; fail "not one error line"; }
grep -q "already holds a run" "$work/again.log" || fail "the refusal does not say why"

step "4. the GLUE leaderboard on a tiny mirror"
.venv/bin/python scripts/tiny_glue.py "$work/g" > /dev/null
recipe="$work/g/tiny_glue.yaml"
if .venv/bin/harness leaderboard --recipe "$recipe" --runs-dir "$work/g/runs" --tasks rte training.max_steps=1 \
     > "$work/partial.log" 2>&1; then
  fail "a partial leaderboard exited 0"
fi
grep -q "partial" "$work/partial.log" || fail "the partial leaderboard does not say so"
grep -q "upload to" "$work/g/runs/leaderboard.md" && fail "a partial zip is offered for upload"
.venv/bin/harness leaderboard --recipe "$recipe" --runs-dir "$work/g/runs" training.max_steps=1 \
  > "$work/full.log" 2>&1 || { tail -20 "$work/full.log"; fail "the complete leaderboard failed"; }
grep -q "^GLUE score: " "$work/full.log" || fail "no GLUE score over all nine tasks"
.venv/bin/python - "$work/g/runs/glue_submission.zip" <<'EOF' || fail "the complete zip does not validate"
import sys
import zipfile

from harness.evaluation.glue_submission import SUBMISSION_FILES, validate_submission

path = sys.argv[1]
problems = validate_submission(path)
names = zipfile.ZipFile(path).namelist()
assert not problems, problems
assert sorted(names) == sorted(SUBMISSION_FILES), names
EOF
echo "newcomer check: ok"
