#!/usr/bin/env bash
# Architecture study: train each architecture for the same wall-clock budget on the default corpus,
# one after another with the same thread count, so each gets the same CPU. Then `python -m
# benchmarks.architectures` evaluates the checkpoints (bits/char, accuracy, keystrokes saved, latency).
# Usage: scripts/architecture_study.sh [MINUTES] [THREADS]
set -euo pipefail
cd "$(dirname "$0")/.."
MINUTES=${1:-8}
THREADS=${2:-1}
DATA=${DATA:-data/default-model}
OUT=${OUT:-runs/study}
common=(--data "$DATA" --minutes "$MINUTES" --threads "$THREADS" --batch-size 16 --seq-len 256 --eval-every 200)
.venv/bin/python train.py "${common[@]}" --model transformer --d-model 256 --layers 4 --heads 8 --out "$OUT/transformer"
.venv/bin/python train.py "${common[@]}" --model lstm --d-model 512 --layers 2 --out "$OUT/lstm"
.venv/bin/python train.py "${common[@]}" --model transformer_xl --d-model 256 --layers 4 --heads 8 --mem-len 256 --out "$OUT/transformer_xl"
.venv/bin/python train.py "${common[@]}" --model highway --d-model 512 --layers 1 --rhn-depth 3 --out "$OUT/highway"
