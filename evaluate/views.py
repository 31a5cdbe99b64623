"""HTML views of a file: keystrokes (accepted vs typed characters) and a surprise map (-log2 p per char)."""
from __future__ import annotations

import html

_STYLE = """<style>
body { font-family: sans-serif; margin: 1.5em; }
pre { font-family: monospace; font-size: 13px; line-height: 1.35; background: #fbfbfb; padding: 1em; }
.acc { background: #b9f0b9; } .acc-start { border-left: 2px solid #1a7f1a; }
.legend span { padding: 0 .5em; margin-right: 1em; }
</style>"""


def _page(title: str, summary: str, body: str) -> str:
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>{_STYLE}"
            f"</head><body><h2>{html.escape(title)}</h2><p>{summary}</p><pre>{body}</pre></body></html>\n")


def keystrokes_html(title: str, text: str, accepted: list[tuple[int, int]], saved: float) -> str:
    """Accepted suggestions in green (each starts with a dark bar: one keystroke), typed characters plain."""
    parts, pos = [], 0
    for start, end in accepted:
        parts.append(html.escape(text[pos:start]))
        parts.append(f"<span class='acc acc-start'>{html.escape(text[start:end])}</span>")
        pos = end
    parts.append(html.escape(text[pos:]))
    summary = (f"keystrokes saved: <b>{saved:.1%}</b> &middot; <span class='acc'>accepted suggestion</span> "
               f"(one keystroke each) &middot; plain: typed")
    return _page(title, summary, "".join(parts))


def _colour(bits: float, top: float = 8.0) -> str:
    # white (expected) -> red (surprising), saturating at `top` bits per character
    x = min(max(bits / top, 0.0), 1.0)
    g = int(255 - 200 * x)
    return f"rgb(255,{g},{g})"


def surprise_html(title: str, text: str, char_bits: list[float], bits_per_char: float) -> str:
    """Each character on a white-to-red background by -log2 p (its token's bits spread over its chars)."""
    parts, run, run_colour = [], [], None
    for c, bits in zip(text, char_bits):
        colour = _colour(bits)
        if colour != run_colour and run:
            parts.append(f"<span style='background:{run_colour}'>{html.escape(''.join(run))}</span>")
            run = []
        run_colour = colour
        run.append(c)
    if run:
        parts.append(f"<span style='background:{run_colour}'>{html.escape(''.join(run))}</span>")
    summary = (f"bits per character: <b>{bits_per_char:.3f}</b> &middot; white: expected, red: surprising "
               f"(&ge; 8 bits per character); hover-free view of -log2 p spread over each token's characters")
    return _page(title, summary, "".join(parts))
