"""Check Tabby's agent (npm `tabby-agent`), unchanged, against this server's Tabby routes (serving/tabby.py).

    python scripts/tabby_agent_check.py [--model checkpoints/default.pt] [--agent DIR] [--nvim nvim]

Tabby's editor plugins reach a server through `tabby-agent`, one Node.js program in two protocols: a language
server (`--lsp --stdio`: Neovim's built-in client, Emacs' lsp-mode, Helix, coc.nvim) and JSON lines on stdio
(Tabby's Vim and IntelliJ plugins of the same release). The script fetches the agent from npm (`npm pack
tabby-agent@1.5.0`, cached in .e2e/tabby-agent; `--agent DIR` uses a copy whose dist/cli.js is there), starts
`server.py` with a tokens file, and checks, with a home folder of its own for the agent's config and data:

1. The language server (the agent's config.toml names the server and a user's token): `textDocument/completion`
   in a Python file gives items, each the server's own answer to the segments the agent sends (the 20 lines
   around the cursor), asked again with POST /v1/completions.
2. The server turned the agent's telemetry off: the agent stored `/v1beta/server_setting`'s
   `anonymousUsageTracking.disable` for this endpoint (data.json), which keeps its usage events from
   app.tabbyml.com.
3. The JSON-lines protocol with the editor's declarations (as Tabby's IntelliJ and Vim plugins send them):
   the completion uses a name only the declaration holds, and `postEvent` "view" and "select" are counted in
   /metrics (`autocomplete_client_events_total`), as are the user's completions (`..._user_requests_total`).
4. The agent shows the server's answers: at cursor positions in a real file (this repository's serving/gate.py),
   its first choice is what `python -m evaluate --server-api tabby` reads from the server (evaluate/remote.py
   TabbyPredictor) at 85 % of them at least (75 of 81 on 2026-12-07). The others are the agent's own
   post-processing (a trailing blank trimmed, a choice dropped), which the script prints.
5. A wrong token: the agent's status becomes "unauthorized" and the language server says so to the editor.
6. Neovim's built-in LSP client (`--nvim`, when one is found; 0.7 and later) starts the agent, asks for a
   completion in a buffer, applies the first item's edit and writes the file: the file must hold the typed
   text and the completion.

Prints each step; exit 1 on a failure. docs/server.md "Tabby's API" gives what it printed (2026-12-07).
"""
from __future__ import annotations

import argparse
import json
import os
import queue
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from benchmarks.server_load import ServerProcess  # noqa: E402
from serving.metrics import sample_value  # noqa: E402

AGENT_VERSION = "1.5.0"
TOKEN, USER = "tabby-check-token-7f3a", "alice"
# The file typed in; the cursor goes after its last character.
TYPED = ("import os\n\n\ndef list_python_files(folder):\n    names = []\n"
         "    for name in os.listdir(folder):\n        if name.")
SUFFIX = "\n    return names\n"
# A declaration the editor found (IntelliJ's and VS Code's plugins send those of the names before the cursor):
# a name the model can only take from it.
DECLARATION = "def normalise_pixel_histogram(histogram, bins):\n    return [h / bins for h in histogram]\n"
DECLARED_TYPED = "import imaging\n\n\ndef plot(histogram):\n    values = imaging.normalise_"


def fetch_agent(cache: Path) -> Path:
    """tabby-agent's package folder, from npm the first time."""
    package = cache / "package"
    if (package / "dist" / "cli.js").is_file():
        return package
    cache.mkdir(parents=True, exist_ok=True)
    packed = subprocess.run(["npm", "pack", f"tabby-agent@{AGENT_VERSION}", "--pack-destination", str(cache)],
                            cwd=cache, capture_output=True, text=True)
    if packed.returncode != 0:
        raise SystemExit(f"npm pack tabby-agent@{AGENT_VERSION} failed: {packed.stderr[-2000:]}")
    with tarfile.open(cache / f"tabby-agent-{AGENT_VERSION}.tgz") as tar:
        tar.extractall(cache, filter="data")
    return package


def write_agent_config(home: Path, endpoint: str, token: str):
    """The agent's user config (~/.tabby-client/agent/config.toml), which the language server reads."""
    folder = home / ".tabby-client" / "agent"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.toml").write_text(f'[server]\nendpoint = "{endpoint}"\ntoken = "{token}"\n\n'
                                        '[logs]\nlevel = "debug"\n')


class Agent:
    """tabby-agent as a child process; messages are read on a thread into a queue."""

    def __init__(self, node: str, cli: Path, home: Path, lsp: bool):
        args = [node, str(cli)] + (["--lsp", "--stdio"] if lsp else [])
        # in its home folder: the agent's log rotation writes an audit.json into its working directory
        self.proc = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     env={**os.environ, "HOME": str(home)}, cwd=home)
        self.messages: queue.Queue = queue.Queue()
        self.stderr: list[bytes] = []
        reader = self._read_lsp if lsp else self._read_lines
        threading.Thread(target=reader, daemon=True).start()
        threading.Thread(target=lambda: self.stderr.extend(self.proc.stderr), daemon=True).start()
        self.next_id = 1
        self.seen: list = []  # every message read, in order

    def _read_lsp(self):
        out = self.proc.stdout
        while True:
            headers = {}
            while (line := out.readline()) not in (b"\r\n", b""):
                key, _, value = line.decode().partition(":")
                headers[key.strip().lower()] = value.strip()
            if not headers:
                return
            self.messages.put(json.loads(out.read(int(headers["content-length"]))))

    def _read_lines(self):
        for line in self.proc.stdout:
            try:
                self.messages.put(json.loads(line))
            except ValueError:
                self.stderr.append(b"stdout: " + line)  # not a message

    def send_lsp(self, message: dict):
        data = json.dumps({"jsonrpc": "2.0", **message}).encode()
        self.proc.stdin.write(b"Content-Length: %d\r\n\r\n%s" % (len(data), data))
        self.proc.stdin.flush()

    def request_lsp(self, method: str, params: dict, timeout: float = 30.0) -> dict:
        rid, self.next_id = self.next_id, self.next_id + 1
        self.send_lsp({"id": rid, "method": method, "params": params})
        return self.wait(lambda m: m.get("id") == rid and "method" not in m, timeout)

    def call(self, func: str, *args, timeout: float = 30.0):
        """A JSON-lines call: [id, {"func", "args"}] -> [id, result]."""
        rid, self.next_id = self.next_id, self.next_id + 1
        self.proc.stdin.write((json.dumps([rid, {"func": func, "args": list(args)}]) + "\n").encode())
        self.proc.stdin.flush()
        return self.wait(lambda m: isinstance(m, list) and m[0] == rid, timeout)[1]

    def wait(self, match, timeout: float, seen_too: bool = False):
        """The next message that `match`es (every message read is kept in `seen`; `seen_too`: an earlier one
        that matches will do)."""
        if seen_too:
            for message in self.seen:
                if match(message):
                    return message
        deadline = time.monotonic() + timeout
        while True:
            try:
                message = self.messages.get(timeout=max(deadline - time.monotonic(), 0.01))
            except queue.Empty:
                raise TimeoutError(f"no answer from tabby-agent; its stderr: {b''.join(self.stderr)[-2000:]!r}")
            self.seen.append(message)
            if match(message):
                return message

    def close(self):
        self.proc.kill()
        self.proc.wait()


def check(ok: bool, what: str):
    print(("PASS " if ok else "FAIL ") + what, flush=True)
    if not ok:
        raise SystemExit(1)


def lsp_session(agent: Agent, folder: Path, text: str) -> dict:
    """initialize, open `text` as a Python file, ask for a completion at its end: the completion list."""
    agent.request_lsp("initialize", {"processId": os.getpid(), "rootUri": folder.as_uri(), "capabilities": {},
                                     "clientInfo": {"name": "tabby_agent_check", "version": "1"}})
    agent.send_lsp({"method": "initialized", "params": {}})
    uri = (folder / "files.py").as_uri()
    agent.send_lsp({"method": "textDocument/didOpen", "params": {"textDocument": {
        "uri": uri, "languageId": "python", "version": 1, "text": text + SUFFIX}}})
    lines = text.split("\n")
    position = {"line": len(lines) - 1, "character": len(lines[-1])}
    # The agent answers from its cache or waits for its health check; ask until it has items (or 30 s).
    deadline = time.monotonic() + 30
    while True:
        answer = agent.request_lsp("textDocument/completion", {"textDocument": {"uri": uri}, "position": position,
                                                                "context": {"triggerKind": 1}})
        items = (answer.get("result") or {}).get("items", [])
        if items or time.monotonic() > deadline:
            return answer
        time.sleep(0.5)


def server_choices(server: ServerProcess, prefix: str, suffix: str, token: str, extra: list | None = None) -> list:
    body = {"language": "python", "segments": {"prefix": prefix, "suffix": suffix, "declarations": extra or []}}
    r = requests.post(server.url + "/v1/completions", json=body, headers={"Authorization": f"Bearer {token}"},
                      timeout=30)
    r.raise_for_status()
    return [c["text"] for c in r.json()["choices"]]


def metric(server: ServerProcess, name: str, **labels: str) -> float:
    text = requests.get(server.url + "/metrics", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10).text
    return sample_value(text, name, **labels)


# Step 4: cursor positions in a real file (this repository's), every AGREEMENT_STEP characters of its start.
AGREEMENT_FILE, AGREEMENT_CHARS, AGREEMENT_STEP, AGREEMENT = "serving/gate.py", 3000, 37, 0.85


def shown_text(choice: dict, position: int) -> str:
    """What the editor inserts at `position` for one of provideCompletions' choices: its `text` replaces
    `replaceRange` (the agent's LSP server slices it so too); a choice from the agent's cache of an earlier
    position starts there, with what was typed since."""
    start = choice.get("replaceRange", {}).get("start", position)
    return choice["text"][max(position - start, 0):]


def agreement(agent: Agent, server: ServerProcess, project: Path) -> tuple[int, list]:
    """At each position, the agent's first choice (provideCompletions, as Tabby's editor plugins ask) against
    what evaluate/remote.py's TabbyPredictor reads from the server: (how many agree, [(where, shown, read)])."""
    from evaluate.remote import TabbyPredictor
    reader = TabbyPredictor(server.url, TOKEN)
    text = (ROOT / AGREEMENT_FILE).read_text()
    same, differ = 0, []
    for position in range(AGREEMENT_STEP, min(len(text), AGREEMENT_CHARS), AGREEMENT_STEP):
        result = agent.call("provideCompletions", {"filepath": str(project / "gate.py"), "language": "python",
                                                   "text": text, "position": position, "manually": True},
                            {"signal": True})
        choices = (result or {}).get("choices") or []
        shown = shown_text(choices[0], position) if choices else ""
        read = reader.complete(text[:position], text[position:])
        read = read[0].text if read else ""
        if shown == read:
            same += 1
        else:
            line = text.count("\n", 0, position) + 1
            differ.append((f"line {line} `{text[:position].rsplit(chr(10), 1)[-1].strip()}`", shown, read))
    return same, differ


NVIM_LUA = r"""
local cli, out, line, col = _G.arg_cli, _G.arg_out, _G.arg_line, _G.arg_col
vim.cmd('edit ' .. out)
local client = vim.lsp.start_client({cmd = {_G.arg_node, cli, '--lsp', '--stdio'}, name = 'tabby',
                                     root_dir = vim.fn.fnamemodify(out, ':h')})
vim.lsp.buf_attach_client(0, client)
vim.wait(30000, function() local c = vim.lsp.get_client_by_id(client); return c ~= nil and c.initialized end)
local params = {textDocument = vim.lsp.util.make_text_document_params(), position = {line = line, character = col},
                context = {triggerKind = 1}}
local items = {}
for _ = 1, 60 do
  local answers = vim.lsp.buf_request_sync(0, 'textDocument/completion', params, 5000) or {}
  for _, answer in pairs(answers) do
    if answer.result and answer.result.items then items = answer.result.items end
  end
  if #items > 0 then break end
  vim.wait(500)
end
if #items > 0 then
  vim.lsp.util.apply_text_edits({items[1].textEdit}, 0, 'utf-16')
  vim.cmd('write')
end
io.stdout:write('items=' .. #items .. '\n')
vim.lsp.stop_client(client, true)
vim.cmd('qall!')
"""


def nvim_session(nvim: str, node: str, cli: Path, home: Path, folder: Path) -> tuple[str, str]:
    """Neovim (headless, no user config) completes at the end of TYPED through its LSP client: (file, output)."""
    path = folder / "nvim_typed.py"
    path.write_text(TYPED + SUFFIX)
    lines = TYPED.split("\n")
    script = folder / "check.lua"
    script.write_text(f"_G.arg_cli = {json.dumps(str(cli))}\n_G.arg_node = {json.dumps(node)}\n"
                      f"_G.arg_out = {json.dumps(str(path))}\n_G.arg_line = {len(lines) - 1}\n"
                      f"_G.arg_col = {len(lines[-1])}\n" + NVIM_LUA)
    run = subprocess.run([nvim, "--headless", "-u", "NONE", "-i", "NONE", "-c", f"luafile {script}"],
                         env={**os.environ, "HOME": str(home)}, cwd=home, capture_output=True, text=True, timeout=120)
    return path.read_text(), run.stdout + run.stderr


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=str(ROOT / "checkpoints" / "default.pt"))
    parser.add_argument("--agent", type=Path, help="tabby-agent's package folder (default: npm, cached in "
                                                    ".e2e/tabby-agent)")
    parser.add_argument("--node", default=shutil.which("node") or "node")
    parser.add_argument("--nvim", default=shutil.which("nvim"), help="Neovim for step 6 (default: on PATH)")
    args = parser.parse_args(argv)
    package = args.agent or fetch_agent(ROOT / ".e2e" / "tabby-agent")
    cli = package / "dist" / "cli.js"
    version = json.loads((package / "package.json").read_text())["version"]
    node_version = subprocess.run([args.node, "--version"], capture_output=True, text=True).stdout.strip()
    print(f"tabby-agent {version}, node {node_version}", flush=True)

    with tempfile.TemporaryDirectory(prefix="tabby-check-") as tmp:
        tmp = Path(tmp)
        tokens = tmp / "tokens"
        tokens.write_text(f"{USER} {TOKEN}\n")
        server = ServerProcess(args.model, "--workers", "0", "--tokens-file", str(tokens)).start()
        try:
            home, project = tmp / "home", tmp / "project"
            project.mkdir()
            write_agent_config(home, server.url, TOKEN)

            # 1. the language server
            before = metric(server, "autocomplete_user_requests_total", user=USER)
            agent = Agent(args.node, cli, home, lsp=True)
            try:
                answer = lsp_session(agent, project, TYPED)
            finally:
                agent.close()
            items = answer.get("result", {}).get("items", [])
            shown = [item["textEdit"]["newText"] for item in items]
            print(f"     the language server's items at `{TYPED.splitlines()[-1].strip()}`: {shown}")
            # The agent sends the 20 lines above and below the cursor (its maxPrefixLines / maxSuffixLines).
            prefix = "".join(TYPED.splitlines(keepends=True)[-20:])
            expected = server_choices(server, prefix, SUFFIX, TOKEN)
            word = re.search(r"\w*$", TYPED).group(0)  # the item's label starts with the word being typed
            check(bool(shown) and all(s.startswith(word) for s in shown)
                  and [s[len(word):] for s in shown] == expected[:len(shown)],
                  f"textDocument/completion gives the server's own choices {expected}")
            after = metric(server, "autocomplete_user_requests_total", user=USER)
            check(after > before, f"the agent's requests carried {USER}'s token ({after - before:.0f} completions)")

            # 2. telemetry
            data = json.loads((home / ".tabby-client" / "agent" / "data.json").read_text())
            stored = data.get("serverConfig", {}).get(server.url, {})
            check(stored.get("anonymousUsageTracking", {}).get("disable") is True,
                  f"the agent stored the server's setting, telemetry off: {stored}")

            # 3. the JSON-lines protocol, declarations and events
            agent = Agent(args.node, cli, home, lsp=False)
            try:
                agent.call("initialize", {"config": {"server": {"endpoint": server.url, "token": TOKEN}},
                                          "clientProperties": {"session": {"client": "tabby_agent_check"}}})
                request = {"filepath": str(project / "plots.py"), "language": "python", "text": DECLARED_TYPED,
                           "position": len(DECLARED_TYPED), "manually": True,
                           "declarations": [{"filepath": str(project / "imaging.py"), "offset": 0,
                                             "text": DECLARATION}]}
                result = None
                for _ in range(60):  # until the agent's health check has passed
                    result = agent.call("provideCompletions", request, {"signal": True})
                    if result and result.get("choices"):
                        break
                    time.sleep(0.5)
                texts = [shown_text(c, len(DECLARED_TYPED)) for c in (result or {}).get("choices", [])]
                print(f"     provideCompletions with the declaration: {texts}")
                alone = server_choices(server, DECLARED_TYPED, "", TOKEN)
                print(f"     the same without it: {alone}")
                check(any(t.startswith("pixel_histogram") for t in texts)
                      and not any(t.startswith("pixel_histogram") for t in alone),
                      "the completion takes the declared name (segments.declarations reached the engine)")
                model = Path(args.model).stem  # the server's default model: the events count under its name
                views = metric(server, "autocomplete_client_events_total", type="view", model=model)
                selects = metric(server, "autocomplete_client_events_total", type="select", model=model)
                for kind in ("view", "select"):
                    agent.call("postEvent", {"type": kind, "completion_id": result["id"], "choice_index": 0})
                check(metric(server, "autocomplete_client_events_total", type="view", model=model) == views + 1
                      and metric(server, "autocomplete_client_events_total", type="select", model=model) == selects + 1,
                      f"postEvent view and select are counted in /metrics, under the model that answered ({model})")

                # 4. the agent shows the server's answers (or its own post-processing of them)
                same, differ = agreement(agent, server, project)
                for where, shown, read in differ[:5]:
                    print(f"     differ at {where}: the agent shows {shown!r}, TabbyPredictor reads {read!r}")
                check(same >= AGREEMENT * (same + len(differ)),
                      f"the agent shows the server's first choice unchanged at {same} of {same + len(differ)} "
                      f"cursor positions in {AGREEMENT_FILE} (at least {AGREEMENT:.0%}; the rest: its post-processing)")
            finally:
                agent.close()

            # 5. a wrong token
            bad_home = tmp / "bad-home"
            write_agent_config(bad_home, server.url, "not-the-token")
            agent = Agent(args.node, cli, bad_home, lsp=True)
            try:
                agent.request_lsp("initialize", {"processId": os.getpid(), "rootUri": project.as_uri(),
                                                 "capabilities": {}})
                agent.send_lsp({"method": "initialized", "params": {}})
                shown = agent.wait(lambda m: m.get("method") == "window/showMessage", 30, seen_too=True)["params"]["message"]
            finally:
                agent.close()
            check("unauthorized" in shown, f"a wrong token: the editor is told `{shown}`")

            # 6. Neovim
            if args.nvim:
                version = subprocess.run([args.nvim, "--version"], capture_output=True, text=True).stdout
                print(f"     {version.splitlines()[0]}")
                text, output = nvim_session(args.nvim, args.node, cli, home, project)
                typed_line = TYPED.splitlines()[-1]
                line = text.splitlines()[len(TYPED.splitlines()) - 1]
                print(f"     Neovim wrote: `{line.strip()}` ({output.strip()})")
                check(text.startswith(TYPED) and line != typed_line and line[len(typed_line):] == expected[0]
                      and text.endswith(SUFFIX), "Neovim's LSP client applied the server's completion")
            else:
                print("SKIP Neovim: no nvim on PATH")
        finally:
            server.stop()
    print("tabby-agent check: PASS")
    return 0


if __name__ == "__main__":
    sys.exit(main())
