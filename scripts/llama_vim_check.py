"""Check llama.vim (ggml-org/llama.vim) against this server's POST /infill in a real Vim.

    python scripts/llama_vim_check.py --plugin ~/.vim/pack/llama/start/llama.vim [--model checkpoints/default.pt]

The plugin is not part of this repository: point `--plugin` at your copy (the folder holding
`autoload/llama.vim`). The script starts `server.py` with the model and runs Vim (`--vim`, needs +job +timers
+textprop) in a pseudo-terminal, as a user would:

1. `calc.py` is opened, then `demo.py`, so llama.vim's ring of chunks holds some of `calc.py`;
2. at the end of `def list_py(folder):` Enter opens a new line (`autoindent` puts 4 blanks there); the ghost
   text must appear and Tab must insert code after those blanks (serving/infill.py: the plugin sends a blank
   line without its blanks, the server puts the indentation back);
3. typing goes on (`[n for n in os.`); the ghost text must appear again and Tab must insert more.

Where the ghost text is shown, a Vim timer writes the cursor position while `llama#is_fim_hint_shown()` holds. The
saved file and the server's /metrics (every /infill answer 200) are the verdict. Prints each step; exit 1 on a
failure. docs/server.md "POST /infill" gives what it printed on 2026-12-07 (Vim 9.0.1378, llama.vim a1c8e6e).
"""
from __future__ import annotations

import argparse
import os
import pty
import select
import shutil
import sys
import tempfile
import time
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchmarks.server_load import ServerProcess  # noqa: E402
from serving.metrics import samples  # noqa: E402

CALC = "def add(a, b):\n    return a + b\n\n\ndef mul(a, b):\n    return a * b\n"
DEMO = "import os\n\n\ndef list_py(folder):\n"


class Vim:
    """Vim in a pseudo-terminal: keys in, its screen output drained (a full pty would block it)."""

    def __init__(self, vim: str, vimrc: Path, files: list[Path], home: Path):
        self.pid, self.fd = pty.fork()
        if self.pid == 0:
            os.execvpe(vim, [vim, "-u", str(vimrc), "-i", "NONE", "-N", *map(str, files)],
                       {**os.environ, "TERM": "xterm", "HOME": str(home)})

    def pump(self, seconds: float):
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            if select.select([self.fd], [], [], 0.05)[0]:
                try:
                    os.read(self.fd, 65536)
                except OSError:
                    return

    def keys(self, text: bytes, pause: float = 0.05):
        for byte in text:
            os.write(self.fd, bytes([byte]))
            self.pump(pause)

    def close(self):
        self.keys(b"\x1b:wq\r", 0.2)
        self.pump(1.0)
        os.waitpid(self.pid, 0)


def infill_statuses(url: str) -> dict[str, float]:
    text = requests.get(url + "/metrics", timeout=30).text
    return {labels["status"]: value for labels, value in samples(text, "autocomplete_requests_total")
            if labels.get("endpoint") == "/infill" and labels.get("method") == "POST"}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--plugin", required=True, type=Path, help="llama.vim's folder (holding autoload/llama.vim)")
    p.add_argument("--model", default="checkpoints/default.pt")
    p.add_argument("--vim", default="vim")
    p.add_argument("--wait", type=float, default=15.0, help="seconds to wait for each ghost text")
    args = p.parse_args(argv)
    if not (args.plugin / "autoload" / "llama.vim").is_file():
        p.error(f"{args.plugin} holds no autoload/llama.vim")
    if not shutil.which(args.vim):
        p.error(f"no {args.vim} on PATH")
    failures = []
    with tempfile.TemporaryDirectory() as tmp, ServerProcess(args.model, "--workers", "0") as server:
        d = Path(tmp)
        (d / "pack" / "llama" / "start").mkdir(parents=True)
        (d / "pack" / "llama" / "start" / "llama.vim").symlink_to(args.plugin.resolve())
        flag = d / "hint"
        calc, demo = d / "calc.py", d / "demo.py"
        calc.write_text(CALC * 3)
        demo.write_text(DEMO)
        (d / "vimrc").write_text(
            f"set nocompatible\nset packpath={d}\n"
            f"let g:llama_config = {{'endpoint_fim': '{server.url}/infill', 'show_info': 0, 'ring_update_ms': 300}}\n"
            "packloadall\nfiletype plugin indent on\nset autoindent\n"
            f"call timer_start(50, {{-> llama#is_fim_hint_shown() ? writefile([line('.') . ':' . col('.')], "
            f"'{flag}') : 0}}, {{'repeat': -1}})\n")
        before = infill_statuses(server.url)
        vim = Vim(args.vim, d / "vimrc", [calc, demo], d)

        def ghost_text_at(line: int) -> bool:
            deadline = time.monotonic() + args.wait
            while time.monotonic() < deadline:
                vim.pump(0.1)
                if flag.exists() and flag.read_text().startswith(f"{line}:"):
                    return True
            return False

        vim.pump(1.5)
        vim.keys(b":next\r", 0.0)
        vim.pump(2.5)  # demo.py open; llama.vim reads chunks in normal mode
        vim.keys(b"GA\r", 0.05)
        flag.unlink(missing_ok=True)
        shown = ghost_text_at(5)
        print(f"1. new line under `def list_py(folder):`: ghost text {'shown' if shown else 'NOT shown'}")
        vim.keys(b"\t", 0.5)
        flag.unlink(missing_ok=True)
        vim.keys(b"[n for n in os.", 0.03)
        vim.pump(1.0)
        flag.unlink(missing_ok=True)
        shown_again = ghost_text_at(5)
        print(f"2. after typing `[n for n in os.`: ghost text {'shown' if shown_again else 'NOT shown'}")
        vim.keys(b"\t", 0.5)
        vim.close()
        line = demo.read_text().split("\n")[4]
        print(f"   the saved line: {line!r}")
        statuses = {k: v - before.get(k, 0) for k, v in infill_statuses(server.url).items()}
        print(f"   /infill answers by status: {statuses}")
        if not (shown and shown_again):
            failures.append("the ghost text did not appear")
        first = line.split("[n for n in os.")[0]
        if not (first.startswith("    ") and first.strip()):
            failures.append(f"Tab on the new line inserted no code after its 4 blanks: {first!r}")
        if not (line.count("[n for n in os.") == 1 and not line.endswith("os.")):
            failures.append(f"Tab after `os.` inserted nothing: {line!r}")
        if not statuses or set(statuses) != {"200"}:
            failures.append(f"/infill answered other than 200: {statuses}")
    for failure in failures:
        print(f"FAIL {failure}")
    print("RESULT:", "FAIL" if failures else "PASS")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
