"""evaluate/breakdown.py: every keystroke of a typing run in exactly one class, and the command's table."""
from __future__ import annotations

import json

import pytest
import torch

from evaluate.__main__ import main as evaluate_main
from evaluate.breakdown import CLASSES, keystroke_breakdown, main, project_names
from tests.tiny_model import TINY_TEXT, make_tiny_checkpoint


def test_each_typed_character_is_classed_by_where_its_name_occurs():
    #       0123456789012345678901234
    text = "value = load(x)\nvalue.go\n"
    # accepted: "alue" (1..5) and "(x)" (12..15); everything else typed
    counts = keystroke_breakdown(text, 0, len(text), [(1, 5), (12, 15)], in_project={"load"})
    assert counts["accept"] == 2
    # names: value (v typed: start), load (l start, oad from the project), value again (v start, alue: file),
    # go (g start, o: new)
    assert counts["name_start"] == 4
    assert counts["name_rest_project"] == 3 and counts["name_rest_file"] == 4 and counts["name_rest_new"] == 1
    assert counts["space"] == 4  # " ", " ", "\n", "\n"
    assert counts["punct"] == 2  # "=", "."
    typed = len(text) - 4 - 3
    assert sum(counts.values()) == typed + 2 == len(text) - 7 + 2


def test_the_text_before_the_start_counts_as_the_files_and_a_name_cut_by_the_start_has_no_first_character():
    text = "import numpy\nnumpy.array\n"
    start = text.index("py\n")  # typing resumes inside the first `numpy`
    counts = keystroke_breakdown(text, start, len(text), [], in_project=set())
    assert counts["name_start"] == 2  # numpy (2nd), array; not the cut numpy
    assert counts["name_rest_new"] == 2 + 4  # "py" of the first numpy, "rray"
    assert counts["name_rest_file"] == 4  # "umpy": the first numpy is before it
    assert sum(counts.values()) == len(text) - start


def test_project_names_are_whole_words():
    assert project_names(["def get_users(x): pass", "y = 1"]) == {"def", "get_users", "x", "pass", "y", "1"}


@pytest.fixture(scope="module")
def ckpt():
    torch.set_num_threads(1)
    return make_tiny_checkpoint()


def test_evaluate_reports_the_breakdown_and_the_command_prints_it(ckpt, tmp_path, capsys):
    root = tmp_path / "proj"
    root.mkdir()
    (root / "stack.py").write_text(TINY_TEXT)
    (root / "other.py").write_text(TINY_TEXT.replace("Stack", "Queue"))
    out = tmp_path / "report"
    assert evaluate_main(["--model", str(ckpt), "--files", str(root / "stack.py"), "--project-root", str(root),
                          "--max-chars", "300", "--line-samples", "0", "--protocol", "lines", "project",
                          "--out", str(out)]) == 0
    report = json.loads((out / "eval.json").read_text())
    for col in ("auto", "auto_project"):
        counts = report["overall"][f"keystrokes_by_class_{col}"]
        assert set(counts) == set(CLASSES)
        assert sum(counts.values()) == report["files"][0][f"keystrokes_{col}"]
        assert counts["accept"] > 0
    capsys.readouterr()
    assert main([str(out), str(out / "eval.json")]) == 0
    printed = capsys.readouterr().out
    assert printed.count(f"| {out} | auto_project |") == 1 and "name_rest_project" in printed
    assert main([str(tmp_path / "missing")]) == 2
    (tmp_path / "other.json").write_text('{"files": []}')
    assert main([str(tmp_path / "other.json")]) == 2
    assert "not a `python -m evaluate` report" in capsys.readouterr().err
    # A report without the breakdown (written before it, or an edit protocol's column) is named, not dropped.
    old = dict(report, overall={k: v for k, v in report["overall"].items() if not k.startswith("keystrokes_by")})
    (tmp_path / "old.json").write_text(json.dumps(old))
    capsys.readouterr()
    assert main([str(tmp_path / "old.json")]) == 0
    printed = capsys.readouterr().out
    assert "No breakdown" in printed and f"{tmp_path / 'old.json'} auto_project" in printed
    assert f"| {tmp_path / 'old.json'} |" not in printed
