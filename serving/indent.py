"""The indentation an editor gives a new line: what the typist does not type, and what a plugin leaves out.

Two users of one guess. The server (infill.py) puts a blank cursor line's indentation back into the
prompt, which llama.vim and llama.vscode send without it; `python -m evaluate --autoindent` (metrics.py
`simulate_typing`) lets the simulated editor indent each new line, as Vim's indent/python.vim and VS Code's
onEnterRules do, so the typist does not pay for blanks the editor types. Both follow the same rule: the last
line with code above sets the level, one level more after a line whose code ends with `:`, one less after
`return`, `pass`, `raise`, `break` or `continue`.

The code of a line is what comes before its comment: a `#` outside the line's string literals (`if s == "#":`
opens a block, `x = 1  # why:` does not, nor does `if x:  # don't` fail to). Strings are followed by their
quotes alone, on the one line; a line inside a triple-quoted string above is taken as code, as the editors do.
"""
from __future__ import annotations

OPENS_BLOCK = ":"
ENDS_BLOCK = ("return", "pass", "raise", "break", "continue")


def last_code_line(text: str) -> str | None:
    """The last line of `text` that is not blank (None: there is none), found from the end: `text` may be a
    client's 64K-character prefix, and splitting all of it on each request cost ~110 us."""
    end = len(text)
    while end >= 0:
        start = text.rfind("\n", 0, end) + 1
        if text[start:end].strip():
            return text[start:end]
        end = start - 1
    return None


def code_of_line(line: str) -> str:
    """`line` without its comment and trailing blanks: cut at the first `#` outside a string literal."""
    quote = ""  # the open string's quote ('"', "'", or a triple of them), "" outside strings
    i = 0
    while i < len(line):
        c = line[i]
        if quote:
            if c == "\\":
                i += 2
                continue
            if line.startswith(quote, i):
                i += len(quote)
                quote = ""
                continue
        elif c == "#":
            return line[:i].rstrip()
        elif c in "'\"":
            quote = c * 3 if line.startswith(c * 3, i) else c
            i += len(quote)
            continue
        i += 1
    return line.rstrip()


def blank_line_indent(prefix: str, n_indent: int) -> str:
    """The whitespace a blank line after `prefix` holds in the editor. `n_indent` > 0 is the editor's own count
    of it (llama.vscode sends one, a tab counting one); 0 asks for the editor's guess (the module's rule)."""
    above = last_code_line(prefix)
    if above is None:
        return " " * n_indent
    indent = above[:len(above) - len(above.lstrip(" \t"))]
    unit = "\t" if indent.startswith("\t") else "    "
    if n_indent > 0:
        return unit[0] * n_indent
    code = code_of_line(above)
    if code.endswith(OPENS_BLOCK):
        return indent + unit
    if code.lstrip().split(" ", 1)[0] in ENDS_BLOCK:
        return indent[:-len(unit)] if indent.endswith(unit) else ""
    return indent
