"""evaluate/repeats.py: no completion makes the cursor line a copy of the line above."""
from __future__ import annotations

import pytest

from evaluate.repeats import line_above, repeats_line_above


def test_line_above_is_the_line_before_the_cursor_line():
    assert line_above("a = 1\nb = 2\n    c") == "b = 2"
    assert line_above("a = 1\n") == "a = 1"
    assert line_above("first line") == ""
    assert line_above("\n") == ""


@pytest.mark.parametrize("completion, cursor_line, above, rest, repeats", [
    ("x = x", "        self.", "        self.x = x", "", True),
    ("        self.x = x", "", "        self.x = x", "", True),      # a whole line at an empty cursor line
    ("y = y", "        self.", "        self.x = x", "", False),
    ("x = x\n        self.y = y", "        self.", "        self.x = x", "", True),  # its first line
    ("\n        self.x = x", "        self.x = x", "        pass", "", False),  # a new line: not the cursor's
    ("items.pop(", "        return self.", "        return self.items.pop()", ")", True),  # with the rest
    ("pass", "    ", "    pass", "", False),                        # short lines repeat legitimately
    ("", "        self.x = x", "        self.x = x", "", False),     # nothing inserted
])
def test_repeats_line_above(completion, cursor_line, above, rest, repeats):
    assert repeats_line_above(completion, cursor_line, above, rest) is repeats
