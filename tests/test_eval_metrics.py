"""Evaluation metrics and the `python -m evaluate` command on the tiny real checkpoint."""
from __future__ import annotations

import json
import math
import random
import shutil

import pytest
import torch

from evaluate.__main__ import main
from evaluate.metrics import (bracket_spans, char_surprise, clip_text, edit_similarity, header_span,
                              levenshtein, line_completion, line_scores, line_starts_of, next_word_end, prompt_at,
                              sample_inside_spans, sample_line_cuts, simulate_typing, token_stats)
from evaluate.predictor import Completion, Predictor
from tests.tiny_model import TINY_TEXT, make_tiny_checkpoint


@pytest.fixture(scope="module")
def ckpt():
    torch.set_num_threads(1)
    return make_tiny_checkpoint()


@pytest.fixture(scope="module")
def predictor(ckpt):
    return Predictor.from_checkpoint(ckpt)


def scrambled(text: str, seed: int = 0) -> str:
    lines = text.split("\n")
    random.Random(seed).shuffle(lines)
    return "\n".join(line[::-1] for line in lines)


def test_prompt_is_the_last_lines_before_the_cursor():
    text = "a\nb\nc\nd\ne"
    starts = line_starts_of(text)
    assert prompt_at(text, starts, len(text), 2) == "d\ne"
    assert prompt_at(text, starts, 5, 2) == "b\nc"  # cursor right after "b\nc" ... at the start of line 3
    assert prompt_at(text, starts, 6, 20) == "a\nb\nc\n"
    assert clip_text("ab\ncd\nef", 7) == "ab\ncd\n"


def test_typing_simulation_accounting(predictor):
    text = clip_text(TINY_TEXT[TINY_TEXT.index("class TestMath"):], 400)
    r = simulate_typing(predictor, text)
    # every keystroke either typed one character or accepted a suggestion equal to the next characters
    assert r.keystrokes == r.chars - sum(end - start - 1 for start, end in r.accepted)
    assert all(e > s for s, e in r.accepted)
    assert all(r.accepted[i][1] <= r.accepted[i + 1][0] for i in range(len(r.accepted) - 1))
    assert r.saved > 0.5  # the model knows this text by heart
    assert len(r.request_ms) == r.keystrokes
    unknown = simulate_typing(predictor, scrambled(text)[:300])
    assert unknown.saved < r.saved - 0.3  # and it does not know the scrambled one


class Silent:
    """A completer that never offers anything: the keystrokes are the typist's and the editor's alone."""

    def complete(self, prompt, **options):
        return []


def test_autoindent_blanks_cost_nothing_where_the_editor_guesses_them():
    text = "def zq(x):\n    if x:\n        return 1\n    return 2\nx = [\n    1,\n]\n"
    assert simulate_typing(Silent(), text).keystrokes == len(text) and simulate_typing(Silent(), text).shown == 0
    r = simulate_typing(Silent(), text, autoindent=True)
    # the editor's rule indents lines 2, 3 and 4 right (":" opens, "return" closes); not "    1," (no ":")
    line_starts = [i + 1 for i, c in enumerate(text) if c == "\n"]
    assert r.indented == [(line_starts[0], line_starts[0] + 4), (line_starts[1], line_starts[1] + 8),
                          (line_starts[2], line_starts[2] + 4)]
    assert r.keystrokes == len(text) - 16 and not r.accepted
    from evaluate.breakdown import keystroke_breakdown
    counts = keystroke_breakdown(text, 0, len(text), r.accepted, set(), r.indented)
    assert sum(counts.values()) == r.keystrokes


@pytest.mark.parametrize("suggestion,word", [
    ("self.x", "self"), (".x", "."), (" = y", " "), ("(a, b)", "("), ("  foo", "  "), ("foo bar", "foo"),
    ("0.5)", "0.5"), (", ", ", "), ("\n    return", "\n    "), ("x", "x"),
])
def test_next_word_is_what_vs_codes_ctrl_right_accepts(suggestion, word):
    assert suggestion[:next_word_end(suggestion)] == word


class Fixed:
    """A completer that offers one suggestion wherever the text typed so far ends with a key of `by_end`."""

    def __init__(self, by_end: dict[str, str]):
        self.by_end = by_end

    def complete(self, prompt, **options):
        return [Completion(s, 0.5) for end, s in self.by_end.items() if prompt.endswith(end)][:1]


def test_a_word_accepting_typist_takes_the_right_words_of_a_wrong_suggestion():
    text = "result = self.items[0]\n"
    completer = Fixed({"result = ": "self.values[0]", "result = self": ".values[0]", "result = self.": "items[1]"})
    whole = simulate_typing(completer, text, context_lines=0)
    assert whole.accepted == [] and whole.keystrokes == len(text) and whole.shown == 3  # three wrong, none taken
    words = simulate_typing(completer, text, context_lines=0, accept_words=True)
    # "self", then "." by Ctrl+Right (the word after each is wrong), then "items" ("[1]" is wrong); each
    # accepted word is a new request's place, as each typed character is
    start = len("result = ")
    assert words.accepted == [(start, start + 4), (start + 4, start + 5), (start + 5, start + 10)]
    assert words.keystrokes == len(text) - (4 + 1 + 5) + 3 and words.shown == 3
    # a whole suggestion that is right is taken whole, one keystroke, by both typists
    right = Fixed({"result = ": "self.items[0]"})
    assert simulate_typing(right, text, context_lines=0, accept_words=True).accepted == [(start, start + 13)]


def test_token_stats_chunked_equals_one_pass(ckpt, predictor):
    text = TINY_TEXT[:800]
    one = token_stats(predictor.model, predictor.tokenizer, text, chunk=10_000)
    chunked = token_stats(predictor.model, predictor.tokenizer, text, chunk=7)
    assert one.tokens == chunked.tokens == len(predictor.tokenizer.encode(text))
    assert chunked.bits == pytest.approx(one.bits, rel=1e-4)
    assert chunked.correct == one.correct
    assert one.bits_per_char < 0.5 and one.correct / one.tokens > 0.8
    other = token_stats(predictor.model, predictor.tokenizer, scrambled(text))
    assert other.bits_per_char > 2 * one.bits_per_char
    surprise = char_surprise(predictor.tokenizer, text, one)
    assert len(surprise) == len(text) and sum(surprise) == pytest.approx(one.bits, rel=1e-5)


def test_token_stats_bits_are_cross_entropy(predictor):
    text = "def add(a, b):\n    return a + b\n"
    s = token_stats(predictor.model, predictor.tokenizer, text)
    ids = [predictor.tokenizer.eot_id] + predictor.tokenizer.encode(text)
    with torch.inference_mode():
        logits, _ = predictor.model(torch.tensor([ids[:-1]]))
    nll = torch.nn.functional.cross_entropy(logits[0], torch.tensor(ids[1:]), reduction="sum")
    assert s.bits == pytest.approx(float(nll) / math.log(2), rel=1e-4)


def test_edit_similarity():
    assert levenshtein("kitten", "sitting") == 3
    assert levenshtein("", "abc") == 3
    assert edit_similarity("abc", "abc") == 1.0
    assert edit_similarity("", "") == 1.0
    assert edit_similarity("abcd", "abce") == pytest.approx(0.75)
    assert edit_similarity("", "xy") == 0.0


def test_line_cuts_and_completion(predictor):
    texts = {"tiny.py": TINY_TEXT}
    cuts = sample_line_cuts(texts, 30, seed=1)
    assert len(cuts) == 30
    for name, cut, truth in cuts:
        line_end = TINY_TEXT.find("\n", cut)
        assert truth == TINY_TEXT[cut:line_end].rstrip() and truth
    samples = line_completion(predictor, texts, n=30, seed=1)
    scores = line_scores(samples)
    assert scores["samples"] == 30
    assert scores["exact_match"] > 0.5 and scores["edit_similarity"] >= scores["exact_match"]


def test_evaluate_command_on_files(ckpt, tmp_path, capsys):
    f = tmp_path / "tiny.py"
    f.write_text(TINY_TEXT)
    out = tmp_path / "report"
    assert main(["--model", str(ckpt), "--files", str(f), "--max-chars", "300", "--line-samples", "10",
                 "--kind", "auto", "word", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "| tiny.py |" in printed and "saved (auto)" in printed and "exact match" in printed
    report = json.loads((out / "eval.json").read_text())
    o = report["overall"]
    assert 0.3 < o["saved_auto"] <= 1 and 0 < o["saved_word"] <= 1
    assert o["bits_per_char"] < 1 and o["line_completion"]["lines"]["samples"] == 10
    keys = (out / "tiny.py.auto.keystrokes.html").read_text()
    assert keys.count("class='acc acc-start'") >= 5
    # every accept was of a suggestion shown; the table says how many were taken
    row = report["files"][0]
    assert 5 <= o["taken_auto"] == row["taken_auto"] == keys.count("class='acc acc-start'") < o["shown_auto"]
    assert f"auto {o['taken_auto']:,} of {o['shown_auto']:,} ({o['taken_auto'] / o['shown_auto']:.1%})" in printed
    assert "span style='background:" in (out / "tiny.py.surprise.html").read_text()


def test_evaluate_command_with_the_edit_in_the_middle_protocols(ckpt, tmp_path, capsys):
    f = tmp_path / "tiny.py"
    f.write_text(TINY_TEXT)
    out = tmp_path / "report"
    assert main(["--model", str(ckpt), "--files", str(f), "--max-chars", "400", "--line-samples", "0",
                 "--protocol", "lines", "middle", "middle-nosuffix", "--regions", "2", "--out", str(out)]) == 0
    o = json.loads((out / "eval.json").read_text())["overall"]
    for column in ("auto", "auto_middle", "auto_middle-nosuffix"):
        assert 0 < o[f"saved_{column}"] <= 1
    # The middle protocols retype only their regions; the overall row counts what the file rows count.
    assert 0 < o["chars_typed_auto_middle"] == o["chars_typed_auto_middle-nosuffix"] < o["chars_typed_auto"]
    assert o["chars_typed"] == o["chars_typed_auto"]
    assert f"| **overall (1 files)** | {o['chars_typed_auto']} |" in capsys.readouterr().out


@pytest.mark.parametrize("line, insides", [
    ("x = f(a, g(b))", ["b", "a, g(b)", "a", "g(b)"]),          # insides, then their elements
    ('print("a(b", x[1:2])  # f(x)', ["1:2", '"a(b", x[1:2]', '"a(b"', "x[1:2]"]),  # strings, comments skipped
    ("d = {1: (2, 3),  }", ["2, 3", "2", "3", "1: (2, 3),  ", "1: (2, 3)"]),  # blank elements are none
    ("s = 'it\\'s' + h(y)", ["y"]),                                # an escaped quote stays in its string
    ('f("a\\\\", b)', ['"a\\\\", b', '"a\\\\"', "b"]),                # an escaped backslash ends before the quote
    ("foo(a,", []),                                                 # closes on a later line
    ("    )", []),
])
def test_bracket_spans_are_the_insides_of_pairs_closed_on_the_line(line, insides):
    assert [line[a:b] for a, b in bracket_spans(line)] == insides


@pytest.mark.parametrize("line, clause", [
    ("    if x is None:", "x is None"),
    ("for k, v in d.items():  ", "k, v in d.items()"),
    ("    async with lock as held:", "lock as held"),
    ("elif a:  # a comment", None),  # the rest would be more than the colon: left to the brackets
    ("if x: return 1", None),
    ("if (a and", None),
    ("def f(x):", None),
])
def test_header_spans_are_the_clause_before_the_colon(line, clause):
    span = header_span(line)
    assert (line[span[0]:span[1]] if span else None) == clause


def test_inside_spans_are_one_per_line_and_end_at_their_closer():
    text = "def f(a, b):\n    return g(a, 1)[b]\n\nx = f(1, 2)  # (c)\ny = ()\nif ok:\nwhile n > 0:\n"
    spans = sample_inside_spans(text, 10, random.Random(0))
    lines = [text.count("\n", 0, a) for a, _ in spans]
    # `[b]`, `()`, `ok`: under 3 characters
    assert len(spans) == 4 and lines == sorted(set(lines)) == [0, 1, 3, 6]
    for a, b in spans[:3]:
        assert text[a - 1] in "([{" and text[b] in ")]}" and "\n" not in text[a:b]
    assert text[slice(*spans[3])] == "n > 0"
    assert sample_inside_spans(text, 10, random.Random(0)) == spans  # seeded
    assert len(sample_inside_spans(text, 2, random.Random(0))) == 2


def test_evaluate_command_with_the_edit_inside_a_line_protocols(ckpt, tmp_path):
    f = tmp_path / "tiny.py"
    f.write_text(TINY_TEXT)
    out = tmp_path / "report"
    assert main(["--model", str(ckpt), "--files", str(f), "--line-samples", "5", "--spans", "6",
                 "--protocol", "inside", "inside-nosuffix", "--out", str(out)]) == 0
    report = json.loads((out / "eval.json").read_text())
    o = report["overall"]
    spans = sample_inside_spans(TINY_TEXT, 6, random.Random("0/inside/tiny.py"))
    assert o["chars_typed_auto_inside"] == o["chars_typed_auto_inside-nosuffix"] == sum(b - a for a, b in spans)
    assert 0 < o["saved_auto_inside"] <= 1 and 0 < o["saved_auto_inside-nosuffix"] <= 1
    assert o["line_completion"] == {}  # the spans are that protocol's line completion


def test_context_lines_zero_sends_the_whole_text_before_the_cursor(ckpt, tmp_path):
    """--context-lines 0: the prompt is the whole text before the cursor, the project protocol's prompt (with
    no other file there: --extra-chars 0), so the two type the file alike."""
    f = tmp_path / "long.py"
    f.write_text(TINY_TEXT * 4)
    reports = {}
    for name, extra in (("whole", ["--protocol", "lines", "--context-lines", "0"]),
                        ("project", ["--protocol", "project", "--extra-chars", "0"])):
        assert main(["--model", str(ckpt), "--files", str(f), "--max-chars", "300", "--start-fraction", "0.6",
                     "--line-samples", "0", *extra, "--out", str(tmp_path / name)]) == 0
        reports[name] = json.loads((tmp_path / name / "eval.json").read_text())
    assert reports["whole"]["context_lines"] == 0
    assert reports["whole"]["overall"]["saved_auto"] == reports["project"]["overall"]["saved_auto_project"]


def test_evaluate_command_on_a_corpus_split(ckpt, tmp_path, capsys):
    corpus = tmp_path / "data" / "corpus"
    (corpus / "files" / "test" / "proj").mkdir(parents=True)
    (corpus / "files" / "test" / "proj" / "mod.py").write_text(TINY_TEXT)
    (corpus / "meta.json").write_text("{}")
    (corpus / "manifest.json").write_text(json.dumps({"files": [
        {"project": "proj", "path": "mod.py", "split": "test", "sha256": "", "chars": len(TINY_TEXT)}]}))
    out = tmp_path / "r"
    assert main(["--model", str(ckpt), "--data", str(tmp_path / "data"), "--max-chars", "200",
                 "--line-samples", "5", "--out", str(out)]) == 0
    report = json.loads((out / "eval.json").read_text())
    assert report["split"] == "test" and report["files"][0]["file"] == "proj/mod.py"


def test_evaluate_command_errors(ckpt, tmp_path, capsys):
    assert main(["--model", str(tmp_path / "missing.pt"), "--files", __file__]) == 2
    assert "cannot load checkpoint" in capsys.readouterr().err
    with pytest.raises(SystemExit, match="no such file"):
        main(["--model", str(ckpt), "--files", str(tmp_path / "nope.py")])
    with pytest.raises(SystemExit, match="no corpus"):
        main(["--model", str(ckpt), "--data", str(tmp_path / "nodata"), "--out", str(tmp_path / "o")])
    with pytest.raises(SystemExit):
        main(["--model", str(ckpt), "--files", __file__, "--max-chars", "-1"])


def test_evaluate_through_a_running_server_matches_in_process(ckpt, tmp_path):
    """`--server URL` types through real HTTP requests of just {"prompt": ...}; the server runs the same
    engine, so keystrokes saved and line completions equal the in-process figures exactly."""
    from benchmarks.server_load import ServerProcess
    f = tmp_path / "tiny.py"
    f.write_text(TINY_TEXT)
    other = tmp_path / "other.py"  # the project protocol sends it as input_extra with tiny.py's requests
    other.write_text(TINY_TEXT.replace("Stack", "Queue").replace("add", "plus"))
    common = ["--model", str(ckpt), "--files", str(f), str(other), "--max-chars", "300", "--line-samples", "10",
              "--protocol", "lines", "project"]
    assert main(common + ["--out", str(tmp_path / "local")]) == 0
    models = tmp_path / "models"  # the same weights as one of the server's named models (serving/models.py)
    models.mkdir()
    shutil.copyfile(ckpt, models / "mine.pt")
    with ServerProcess(ckpt, "--torch-threads", "1", "--time-budget-ms", "0",  # searches as in process
                       "--models-dir", str(models)) as srv:
        assert main(common + ["--server", srv.url, "--out", str(tmp_path / "remote")]) == 0
        named = common + ["--server", srv.url, "--server-model", "mine", "--line-samples", "0"]
        assert main(named + ["--out", str(tmp_path / "named")]) == 0
        with pytest.raises(RuntimeError, match="404.*no model 'theirs'"):  # the name reaches the server
            main(common + ["--server", srv.url, "--server-model", "theirs", "--out", str(tmp_path / "x")])
    with pytest.raises(SystemExit):
        main(common + ["--server-model", "mine", "--out", str(tmp_path / "x")])  # a server's model, no server
    local = json.loads((tmp_path / "local" / "eval.json").read_text())
    remote = json.loads((tmp_path / "remote" / "eval.json").read_text())
    by_name = json.loads((tmp_path / "named" / "eval.json").read_text())
    assert remote["server"] == srv.url and local["server"] is None
    assert by_name["server_model"] == "mine" and remote["server_model"] is None
    for column in ("saved_auto", "saved_auto_project"):
        assert abs(by_name["overall"][column] - remote["overall"][column]) <= 0.01
    assert [r["extra_chars"] for r in local["files"]] == [len(other.read_text()), len(TINY_TEXT)]
    # The copy model's mixed distributions have near-ties (two remembered continuations, p 0.5 each) that
    # this process's and the server's torch thread counts may break differently: equal within a point.
    for column in ("saved_auto", "saved_auto_project"):
        assert abs(remote["overall"][column] - local["overall"][column]) <= 0.01
        assert local["overall"][column] > 0.3
    for protocol in ("lines", "project"):
        same = sum(a["pred"] == b["pred"] for a, b in zip(remote["line_samples"][protocol],
                                                         local["line_samples"][protocol]))
        assert same >= 9  # of 10 (near-ties, above)


def test_files_sharing_a_name_are_all_typed_and_a_project_root_gives_every_neighbour(ckpt, tmp_path):
    """Two given files named alike (a project's `__init__.py`s) are both typed, under their relative paths
    (they overwrote each other before); with --project-root the project protocol's neighbours are all the
    project's .py files but the typed one, as the editor's workspace sends them (a virtual environment's are
    not the project's), where without it they are only the other files given."""
    root = tmp_path / "proj"
    texts = {"pkg/__init__.py": TINY_TEXT, "pkg/sub/__init__.py": TINY_TEXT.replace("Stack", "Heap"),
             "pkg/util.py": "def helper(x):\n    return x\n" * 10, "tests/test_a.py": "import pkg\n" * 5,
             "venv/lib/site.py": "x = 1\n" * 1000}
    for rel, text in texts.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    typed = [str(root / "pkg/__init__.py"), str(root / "pkg/sub/__init__.py")]
    common = ["--model", str(ckpt), "--files", *typed, "--max-chars", "120", "--line-samples", "0",
              "--protocol", "project"]
    assert main(common + ["--out", str(tmp_path / "given")]) == 0
    given = json.loads((tmp_path / "given" / "eval.json").read_text())
    assert sorted(r["file"] for r in given["files"]) == ["__init__.py", "sub/__init__.py"]
    assert {r["project"] for r in given["files"]} == {"files"}
    extra = {r["file"]: r["extra_chars"] for r in given["files"]}
    assert extra == {"__init__.py": len(texts["pkg/sub/__init__.py"]), "sub/__init__.py": len(TINY_TEXT)}
    assert main(common + ["--project-root", str(root), "--out", str(tmp_path / "whole")]) == 0
    whole = json.loads((tmp_path / "whole" / "eval.json").read_text())
    assert sorted(r["file"] for r in whole["files"]) == ["pkg/__init__.py", "pkg/sub/__init__.py"]
    project = sum(len(t) for rel, t in texts.items() if not rel.startswith("venv/"))
    for row in whole["files"]:
        assert row["extra_chars"] == project - len(texts[row["file"]])
    with pytest.raises(SystemExit, match="not under --project-root"):
        main(common + ["--project-root", str(root / "tests")])


def test_span_extra_sends_the_projects_other_files_with_the_edit_protocols(ckpt, tmp_path):
    """--span-extra: the middle protocols' requests carry the project's other files, as the editor's do. The
    typed file calls forty made-up helpers defined only in the other file, one a line: with the other file the
    copy model completes their names, without it nothing can."""
    rng = random.Random(0)
    words = "alpha beta gamma delta epsilon zeta theta iota kappa lam mu nu xi rho sigma tau phi chi psi".split()
    names = ["_".join(rng.sample(words, 4)) for _ in range(40)]
    (tmp_path / "helpers.py").write_text("".join(f"def {n}(value):\n    return value + {i}\n\n\n"
                                                 for i, n in enumerate(names)))
    typed = tmp_path / "main.py"
    typed.write_text("from helpers import *\n\n\ndef run(value):\n"
                     + "".join(f"    value = {n}(value)\n" for n in names) + "    return value\n")
    common = ["--model", str(ckpt), "--files", str(typed), "--project-root", str(tmp_path), "--regions", "2",
              "--protocol", "middle-nosuffix", "--context-lines", "2", "--line-samples", "0"]
    saved = {}
    for flag in ([], ["--span-extra"]):
        out = tmp_path / f"r{len(flag)}"
        assert main(common + flag + ["--out", str(out)]) == 0
        report = json.loads((out / "eval.json").read_text())
        assert report["span_extra"] == bool(flag)
        saved[bool(flag)] = report["overall"]["saved_auto_middle-nosuffix"]
    assert saved[True] > saved[False] + 0.2


def test_files_per_project_and_project_protocol_on_a_split(ckpt, tmp_path):
    """--files-per-project samples every project equally; the project protocol sends each file's
    neighbours from its own project only, and the report has per-project figures for both protocols."""
    files = tmp_path / "data" / "corpus" / "files" / "test"
    manifest = []
    for project, names in {"alpha": ["a.py", "b.py", "c.py"], "beta": ["x.py", "y.py"]}.items():
        (files / project).mkdir(parents=True)
        for i, name in enumerate(names):
            text = TINY_TEXT.replace("Stack", f"Stack{project}{i}")
            (files / project / name).write_text(text)
            manifest.append({"project": project, "path": name, "split": "test", "sha256": "", "chars": len(text)})
    (tmp_path / "data" / "corpus" / "meta.json").write_text("{}")
    (tmp_path / "data" / "corpus" / "manifest.json").write_text(json.dumps({"files": manifest}))
    out = tmp_path / "r"
    assert main(["--model", str(ckpt), "--data", str(tmp_path / "data"), "--files-per-project", "1",
                 "--max-chars", "120", "--line-samples", "0", "--protocol", "lines", "project",
                 "--out", str(out)]) == 0
    report = json.loads((out / "eval.json").read_text())
    assert sorted(r["project"] for r in report["files"]) == ["alpha", "beta"]
    for row in report["files"]:  # the neighbours: exactly the other files of its own project
        project, picked = row["file"].split("/")
        others = [f for f in (files / project).iterdir() if f.name != picked]
        assert row["extra_chars"] == sum(len(f.read_text()) for f in others)
    assert set(report["projects"]) == {"alpha", "beta"}
    assert all({"saved_auto", "saved_auto_project"} <= set(p) for p in report["projects"].values())


def test_soak_requests_are_what_the_editor_sends(tmp_path):
    """benchmarks/soak.py's clients: 20-line requests by default; with extra_chars the project-aware request
    (the text before the cursor, other files as input_extra within the budget, the same while typing on)."""
    import itertools
    import random

    from benchmarks.soak import typing_requests
    folder = tmp_path / "proj"
    folder.mkdir()
    files = []
    for i in range(4):
        f = folder / f"m{i}.py"
        f.write_text("".join(f"def f_{i}_{j}(x):\n    return x + {j}\n" for j in range(60)))
        files.append(f)
    plain = list(itertools.islice(typing_requests(files, random.Random(0)), 40))
    assert all("input_extra" not in b and b["prompt"].count("\n") <= 20 for b in plain)
    project = list(itertools.islice(typing_requests(files, random.Random(0), extra_chars=3000), 40))
    for b, p in zip(project, plain):
        assert b["suffix"] == p["suffix"] and b["prompt"].endswith(p["prompt"])
        assert len(b["prompt"]) > len(p["prompt"]) or b["prompt"] == p["prompt"]
        assert 0 < sum(len(c["text"]) for c in b["input_extra"]) <= 3000
        assert all(c["text"] not in b["prompt"] for c in b["input_extra"])  # other files, not this one
    assert all(b["input_extra"] == project[0]["input_extra"] for b in project)  # one jump: the same chunks
