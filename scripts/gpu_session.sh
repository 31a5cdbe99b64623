#!/usr/bin/env bash
# One prepared device check for a session that is lent a GPU (`device` tool): the design card's CUDA checks
# and the training of candidate default models, in one call that fits the 15 minutes of device time a task
# gets (a machine's start ~1-2 minutes, this ~9 minutes, the transfers).
#
# Why one script: every call and idle minute counts against those 15 minutes, a fresh machine is bare, and
# files come back only from $OUT (8 files at most, 16 MiB each). So everything runs in one command:
#
#   1. the candidates train at once on the one GPU, in the background, with fill in the middle at 0.5 as the
#      shipped model (bf16 autocast, fused AdamW, the data pipeline in prefetch threads: the CPU bounds these
#      small models, not the GPU, so two runs share it well; docs/training.md "Training on a GPU");
#   2. meanwhile the CUDA checks: the tests with GPU paths (resume restores the CUDA RNG, prefetch, FIM) and a
#      30-step `torchrun` run (one GPU: world size 1, so NCCL itself is exercised only with several);
#   3. each candidate's best.pt exported in fp16 and cut into 15 MiB parts ($OUT/NAME.pt.partaa, ...), with
#      a summary of its validation lines; the logs in $OUT/session.log.
#
# The machine's image holds torch, numpy, tokenizers, tqdm and pytest but not labml / labml-nn, which
# `import models` needs (models/transformer_xl.py): their wheels (pure Python) travel in .whl/ (git-ignored).
#
#   here:    make data-default && bash scripts/gpu_session.sh prepare      # downloads the two wheels to .whl/
#   device:  run(command="bash scripts/gpu_session.sh", timeout_s=600,
#                carry=[".whl", "data/default-model/corpus/train.npy", "data/default-model/corpus/valid.npy",
#                       "data/default-model/corpus/meta.json", "data/default-model/corpus/tokenizer.json"])
#
# Before any training it checks that the device's python imports the trainer (exit 2 at once if not: no
# device minute spent on a run that cannot start).
#
# Back here: `cat FILES_AT/NAME.pt.part* > runs/gpu-NAME.pt`, then `python scripts/fim_bits.py --model
# runs/gpu-NAME.pt --data data/default-model` (seconds: does it read the suffix more than the shipped model?)
# before the typing simulations and `python -m benchmarks.model_size` (docs/training.md "The next GPU session").
#
# Settings (environment): OUT (required), DATA (data/default-model), MINUTES (6, each candidate's wall clock),
# CANDIDATES ("NAME:LAYERS:D_MODEL:LR ...", default 6x384 and 6x320), PY (python3), CHECKS (1: run step 2),
# SMOKE (1: a CPU dry run with a tiny model and a few steps, what the test suite runs), SITE (/tmp/site).
set -u -o pipefail
WHEELS=(labml==0.4.168 labml-nn==0.5.1)  # requirements*.txt's pins
if [ "${1:-}" = prepare ]; then
  mkdir -p .whl
  exec "${PY:-.venv/bin/python}" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 \
    --implementation cp -d .whl "${WHEELS[@]}"
fi
: "${OUT:?set OUT to the folder whose files come back}"
DATA=${DATA:-data/default-model}
MINUTES=${MINUTES:-6}
CANDIDATES=${CANDIDATES:-"6x384:6:384:1e-3 6x320:6:320:1e-3"}
PY=${PY:-python3}
CHECKS=${CHECKS:-1}
SMOKE=${SMOKE:-0}
RUNS=${RUNS:-runs/gpu-session}
PART_BYTES=${PART_BYTES:-15M}
SITE=${SITE:-/tmp/site}  # where the carried wheels are installed
LOG="$OUT/session.log"
export PYTHONUNBUFFERED=1
mkdir -p "$OUT" "$RUNS"
say() { echo "[$(date +%H:%M:%S)] $*" | tee -a "$LOG"; }

if [ ! -f "$DATA/corpus/meta.json" ]; then
  say "error: no corpus in $DATA (carry its corpus/ train.npy, valid.npy, meta.json, tokenizer.json)"
  exit 2
fi
if [ "$SMOKE" = 1 ]; then
  BUDGET=(--steps 3 --eval-every 0 --batch-size 2 --seq-len 32 --heads 2 --warmup 1 --threads 1)
else
  BUDGET=(--minutes "$MINUTES" --eval-every 1000 --batch-size 128 --seq-len 256 --heads 8 --warmup 200)
fi

if compgen -G ".whl/*.whl" >/dev/null; then
  "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$SITE" .whl/*.whl \
    >>"$LOG" 2>&1 && export PYTHONPATH=$SITE${PYTHONPATH:+:$PYTHONPATH}
fi
if ! "$PY" -c "import models, train" >>"$LOG" 2>&1; then
  say "error: $PY cannot import the trainer (above); carry .whl from 'bash scripts/gpu_session.sh prepare'"
  exit 2
fi

{ command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
  "$PY" -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available())"; nproc; } >>"$LOG" 2>&1

# 1. The candidates, in the background.
pids=()
for spec in $CANDIDATES; do
  IFS=: read -r name layers d_model lr <<<"$spec"
  say "train $name: $layers layers x $d_model, lr $lr"
  "$PY" train.py --data "$DATA" --model transformer --layers "$layers" --d-model "$d_model" --lr "$lr" \
    --fim-rate 0.5 --out "$RUNS/$name" "${BUDGET[@]}" >"$RUNS/$name.log" 2>&1 &
  pids+=($!)
done

# 2. The CUDA checks beside them.
if [ "$CHECKS" = 1 ] && [ "$SMOKE" != 1 ]; then
  say "tests with GPU paths"
  timeout 240 "$PY" -m pytest -q -x tests/test_train_run.py tests/test_prefetch.py tests/test_fim.py \
    tests/test_models_interface.py >>"$LOG" 2>&1; say "tests: exit $?"
  say "torchrun, 30 steps"
  timeout 120 "$PY" -m torch.distributed.run --standalone --nproc_per_node 1 train.py --data "$DATA" \
    --model transformer --layers 2 --d-model 128 --heads 4 --steps 30 --eval-every 0 --batch-size 16 \
    --fim-rate 0.5 --out "$RUNS/torchrun" >>"$LOG" 2>&1; say "torchrun: exit $?"
fi

# 3. Wait, export, cut into parts that come back.
status=0
i=0
for spec in $CANDIDATES; do
  IFS=: read -r name _ <<<"$spec"
  wait "${pids[$i]}"; rc=$?; i=$((i + 1))
  grep -E "parameters|valid loss|done:|error" "$RUNS/$name.log" | tail -n 12 | sed "s/^/$name: /" >>"$OUT/summary.txt"
  if [ $rc -ne 0 ] || [ ! -f "$RUNS/$name/best.pt" ]; then
    say "train $name: exit $rc"; tail -n 20 "$RUNS/$name.log" >>"$LOG"; status=1; continue
  fi
  "$PY" -m models.export "$RUNS/$name/best.pt" "$RUNS/$name.pt" >>"$LOG" 2>&1 || { status=1; continue; }
  split -b "$PART_BYTES" "$RUNS/$name.pt" "$OUT/$name.pt.part"
  say "exported $name: $(ls "$OUT" | grep -c "^$name.pt.part") part(s)"
done
cat "$OUT/summary.txt" >>"$LOG" 2>/dev/null
files=$(ls "$OUT" | wc -l)
if [ "$files" -gt 8 ]; then  # the device sends back 8 files at most: fail here, not silently there
  say "error: $files files in $OUT, only 8 come back: raise PART_BYTES or train fewer candidates"; status=1
fi
exit $status
