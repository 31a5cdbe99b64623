"""Jupyter notebooks as Python source: a `.ipynb` file's code cells, in order, as one module.

    notebook_source(raw)    # bytes or str of a .ipynb file -> Python text; NotebookError when it is not one
    read_source(path)       # any project file's text: a notebook's code, a .py file as it is

Why. Much of a data scientist's Python is in notebooks, not in `.py` files: `make train SOURCES=~/analysis` on a
folder of notebooks failed with "has no .py files", and the project context never read them. A notebook is
JSON. Its code is the `source` of its code cells, beside markdown, outputs (base64 images, tables) and metadata
that are not code: taken as they are, they would teach the model JSON, and a notebook's plots make it larger than
any code file.

The module a notebook becomes:
- its code cells in order, each opened by `# %%`: the cell marker of VS Code's Python Interactive window, Spyder
  and jupytext's percent format, so a notebook reads as the `.py` files written as notebooks do;
- markdown and raw cells, outputs and metadata left out;
- IPython lines that are not Python kept as comments where they stand (`%matplotlib inline` ->
  `# %matplotlib inline`, `!pip install x`, `%%timeit`, `obj?`): the rest still parses, and the model learns
  the cell as its author wrote it, less what only IPython runs; a cell that a cell magic runs as another
  language (`%%bash`, `%%sql`, `%%html`, `%%writefile notes.txt`) is commented out whole;
- nbformat 4 (`cells`, `source`) and 3 (`worksheets[].cells`, `input`); a source is a string or a list of lines;
- a notebook of another language's kernel (R, Julia: `metadata.kernelspec.language`, `metadata.language_info.name`,
  nbformat 3's `metadata.language`) is not Python: NotPythonNotebook, and `make train` skips it. A notebook that
  names no language is taken as Python, as Jupyter's default kernel is.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

from dataset.clean import CleanConfig, clean_source

NOTEBOOK_SUFFIX = ".ipynb"
CELL_MARKER = "# %%"
# A notebook's size is mostly its outputs (plots as base64): its file may be this large before its code is judged
# (the code then meets the cleaning's own limits, dataset/clean.py)
NOTEBOOK_MAX_BYTES = 64 * 2**20
# IPython-only lines: magics (%, %%), shell escapes (!) and help (`??obj`, `obj?`, `obj.attr??`), at the start of
# a line: indented, `%` and `!` would be a continued expression's operator, and a `?` after prose a docstring's
_IPYTHON_LINE = re.compile(r"^(?:%|!|\?\?|\?(?=\w))|^[\w.]+\?{1,2}\s*$")
# A cell magic (`%%name args` on a cell's first line), and those of IPython's whose body is Python
_CELL_MAGIC = re.compile(r"%%(\w+)(.*)")
PYTHON_CELL_MAGICS = frozenset({"time", "timeit", "capture", "prun", "debug", "python", "python3", "pypy"})


class NotebookError(ValueError):
    """The file is not a notebook this module can read (not JSON, no cells)."""


class NotPythonNotebook(NotebookError):
    """A notebook whose kernel runs another language: its code cells are not Python."""


def notebook_language(nb: dict) -> str | None:
    """The language the notebook's kernel runs, lower case, as its metadata names it; None when it names none."""
    meta = nb.get("metadata")
    if not isinstance(meta, dict):
        return None
    for holder, key in ((meta.get("kernelspec"), "language"), (meta.get("language_info"), "name"), (meta, "language")):
        if isinstance(holder, dict) and isinstance(holder.get(key), str) and holder[key].strip():
            return holder[key].strip().lower()
    return None


def _text(source) -> str:
    if isinstance(source, list):
        return "".join(s for s in source if isinstance(s, str))
    return source if isinstance(source, str) else ""


def python_body(first_line: str) -> bool:
    """Is the body of a cell that starts with `first_line` Python? Yes unless a cell magic runs it as another
    language (`%%bash`, `%%sql`, `%%html`, `%%javascript`, `%%writefile notes.txt` ...); `%%timeit`, `%%capture`
    and the other magics of PYTHON_CELL_MAGICS run Python, as `%%writefile` does when it writes a `.py` file."""
    m = _CELL_MAGIC.match(first_line)
    if m is None:
        return True
    name, args = m.group(1), m.group(2).split()
    if name in ("writefile", "file"):
        return bool(args) and args[-1].endswith(".py")
    return name in PYTHON_CELL_MAGICS


def python_lines(cell: str) -> str:
    """The cell with its IPython-only lines commented out, and its whole body when a cell magic runs it as another
    language (python_body): a `%%bash` cell's `ls data` is not Python to learn, nor to copy from."""
    lines = cell.split("\n")
    if not python_body(lines[0]):
        return "\n".join(f"# {line}" if line.strip() else line for line in lines)
    return "\n".join(f"# {line.lstrip()}" if _IPYTHON_LINE.match(line) else line for line in lines)


def notebook_source(raw: bytes | str) -> str:
    """The Python module of a notebook's code cells (the module docstring); "" when it has none."""
    try:
        nb = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as e:
        raise NotebookError(f"not JSON: {e}") from None
    if not isinstance(nb, dict):
        raise NotebookError("not a notebook: the JSON is not an object")
    if isinstance(nb.get("cells"), list):  # nbformat 4
        cells, key = nb["cells"], "source"
    elif isinstance(nb.get("worksheets"), list):  # nbformat 3
        cells = [c for ws in nb["worksheets"] if isinstance(ws, dict) for c in ws.get("cells") or []]
        key = "input"
    else:
        raise NotebookError("not a notebook: no cells")
    language = notebook_language(nb)
    if language is not None and not language.startswith(("python", "ipython")):
        raise NotPythonNotebook(f"its kernel runs {language!r}, not Python")
    parts = []
    for cell in cells:
        if not isinstance(cell, dict) or cell.get("cell_type") != "code":
            continue
        code = _text(cell.get(key)).replace("\r\n", "\n").replace("\r", "\n").strip("\n")
        if code.strip():
            parts.append(f"{CELL_MARKER}\n{python_lines(code)}\n")
    return "\n".join(parts)


def is_notebook(path: str | Path) -> bool:
    return str(path).endswith(NOTEBOOK_SUFFIX)


def read_source(path: str | Path) -> str:
    """A project file's text: a notebook's Python module, anything else decoded as UTF-8 (UnicodeDecodeError
    when it is not); NotebookError for a `.ipynb` file that is not a notebook."""
    raw = Path(path).read_bytes()
    if is_notebook(path):
        return notebook_source(raw)
    return raw.decode("utf-8")


def clean_notebook(path: Path, config: CleanConfig) -> tuple[str | None, str | None]:
    """`clean_source` of a notebook's module: `(text, None)` to keep, `(None, reason)` to skip. The file's size
    is held to NOTEBOOK_MAX_BYTES (outputs), its code to the cleaning's limits."""
    if path.stat().st_size > NOTEBOOK_MAX_BYTES:
        return None, "too_large"
    try:
        code = notebook_source(path.read_bytes())
    except NotPythonNotebook:
        return None, "not_python_notebook"
    except NotebookError:
        return None, "not_a_notebook"
    return clean_source(code.encode("utf-8"), config)
