#!/usr/bin/env bash
# The default model's figures through the running server, as a client sees them: start `server.py` with
# MODEL, type the held-out projects through HTTP requests with two protocols, and print keystrokes saved
# (per file, per project, overall), latency, bits/char, accuracy and line completion:
#   lines    today's request: {"prompt": the last 20 lines before the cursor}
#   project  {"prompt": the whole text before the cursor, "input_extra": other files of the same project
#            (200 KB at most, imported modules first; evaluate/project.py)}
#   middle / middle-nosuffix  edit in the middle: 4 regions of 5 lines per file deleted and retyped with
#            the rest of the file present; {"prompt": 20 lines, "suffix": the rest of the file (1000 lines,
#            16K characters: the extension's default; SUFFIX_LINES=20 for the protocol before 2026-12-05)} or none
#   inside / inside-nosuffix  edit inside a line: 12 spans per file (a call's arguments, an `if` clause)
#            retyped with the rest of their line after the cursor; the suffix as for middle, or only that rest
# Usage: [PROTOCOLS="lines middle"] [OUT=DIR] scripts/measure_default.sh [MODEL] [FILES] [CHARS] [START_FRACTION]
set -euo pipefail
cd "$(dirname "$0")/.."
MODEL=${1:-checkpoints/default.pt}
FILES=${2:-12}
CHARS=${3:-2000}
START=${4:-0}
DATA=${DATA:-data/default-model}
PROTOCOLS=${PROTOCOLS:-lines project middle middle-nosuffix inside inside-nosuffix}
OUT=${OUT:-reports/eval-server${START/#0/}}
mkdir -p "$OUT"
PORT=$(.venv/bin/python -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
.venv/bin/python server.py --host 127.0.0.1 --port "$PORT" --model "$MODEL" > "$OUT/server.log" 2>&1 &
SERVER=$!
trap 'kill $SERVER 2>/dev/null || true' EXIT
for _ in $(seq 1 300); do
  curl -sf "http://127.0.0.1:$PORT/health" >/dev/null && break; sleep 0.2
done
.venv/bin/python -m evaluate --model "$MODEL" --data "$DATA" --split test --max-files "$FILES" \
  --max-chars "$CHARS" --start-fraction "$START" --protocol $PROTOCOLS --line-samples 200 --threads 1 \
  ${SUFFIX_LINES:+--suffix-lines "$SUFFIX_LINES"} --server "http://127.0.0.1:$PORT" --out "$OUT"
