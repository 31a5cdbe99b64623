"""dataset/notebooks.py: a Jupyter notebook's code cells are Python `make train` learns from and evaluate types.

Real notebook files (nbformat 4 and 3 JSON, written as Jupyter writes them: sources as lists of lines, outputs
beside), the fine-tuning fixture's package turned into notebooks, the tiny real checkpoint of tests/tiny_model.py.
"""
from __future__ import annotations

import ast
import importlib.util
import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from dataset.clean import CleanConfig
from dataset.corpus import load_split
from dataset.notebooks import (NotebookError, NotPythonNotebook, clean_notebook, notebook_source, python_lines,
                               read_source)
from dataset.personal import SourceError, build_personal_corpus, gather
from dataset.workspace import project_source_files
from evaluate import __main__ as evaluate_main
from models.checkpoint import load_checkpoint
from tests.tiny_model import make_tiny_checkpoint

REPO = Path(__file__).resolve().parent.parent
PACKAGE = REPO / "tests" / "fixtures" / "finetune_project" / "inventory"

_spec = importlib.util.spec_from_file_location("finetune_script", REPO / "scripts" / "finetune.py")
finetune = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(finetune)


def lines(text: str) -> list[str]:
    return text.splitlines(keepends=True)


def notebook(*cells: tuple[str, str], nbformat: int = 4) -> str:
    """A notebook's JSON as Jupyter writes it: each source a list of lines, code cells with outputs."""
    if nbformat == 3:
        return json.dumps({"nbformat": 3, "worksheets": [{"cells": [
            {"cell_type": kind, ("input" if kind == "code" else "source"): lines(src), "outputs": []}
            for kind, src in cells]}]})
    return json.dumps({"nbformat": 4, "nbformat_minor": 5, "metadata": {"kernelspec": {"name": "python3"}},
                       "cells": [{"cell_type": kind, "source": lines(src), "metadata": {},
                                  **({"outputs": [{"output_type": "display_data",
                                                   "data": {"image/png": "iVBORw0KGgo" * 50}}],
                                      "execution_count": 1} if kind == "code" else {})}
                                 for kind, src in cells]}, indent=1)


@pytest.mark.parametrize("cell, module", [
    ("%%bash\nls data\n\n  echo done", "# %%bash\n# ls data\n\n#   echo done"),
    ("%%sql sqlite://\nSELECT 1", "# %%sql sqlite://\n# SELECT 1"),
    ("%%writefile notes.txt\nhello", "# %%writefile notes.txt\n# hello"),
    ("%%writefile -a helpers.py\nx = 1\n!ls", "# %%writefile -a helpers.py\nx = 1\n# !ls"),  # writes Python
    ("%%capture out\nx = 1", "# %%capture out\nx = 1"),
    ("x = 1\n%%bash", "x = 1\n# %%bash"),  # only a cell's first line is a cell magic
])
def test_a_cell_magic_of_another_language_is_commented_out_whole(cell, module):
    """vscode-extension/src/test/notebook.test.ts checks pythonLines on the same cases."""
    assert python_lines(cell) == module
    ast.parse(module)


def test_a_notebook_is_its_code_cells_in_order_with_ipython_lines_as_comments():
    text = notebook(("markdown", "# Sales\nSome *prose*.\n"),
                    ("code", "%matplotlib inline\nimport math\n!pip install tqdm\n"),
                    ("raw", "not code\n"),
                    ("code", "total = (10\n   % 3)\nmath.sqrt?\n??math\ndef f():\n    \"\"\"Why?\n    Is it?\"\"\"\n"),
                    ("code", ""),
                    ("code", "%%timeit\nmath.sqrt(2)\n"))
    source = notebook_source(text)
    assert source == ("# %%\n# %matplotlib inline\nimport math\n# !pip install tqdm\n\n"
                      "# %%\ntotal = (10\n   % 3)\n# math.sqrt?\n# ??math\n"
                      "def f():\n    \"\"\"Why?\n    Is it?\"\"\"\n\n"
                      "# %%\n# %%timeit\nmath.sqrt(2)\n")
    ast.parse(source)  # what is left is Python
    assert "iVBOR" not in source and "Sales" not in source and "not code" not in source
    # nbformat 3 (`worksheets`, `input`) reads the same; a source may be one string
    assert notebook_source(notebook(("code", "import math\n"), nbformat=3)) == "# %%\nimport math\n"
    assert notebook_source(json.dumps({"cells": [{"cell_type": "code", "source": "x = 1"}]})) == "# %%\nx = 1\n"
    assert notebook_source(notebook(("markdown", "only prose\n"))) == ""


@pytest.mark.parametrize("raw", [b"{not json", b"\xff\xfe", b"[1, 2]", b'{"metadata": {}}'])
def test_what_is_not_a_notebook_is_refused_by_name(raw):
    with pytest.raises(NotebookError):
        notebook_source(raw)


def test_a_notebook_of_another_languages_kernel_is_not_python(tmp_path):
    def of(metadata: dict) -> str:
        return json.dumps({"nbformat": 4, "metadata": metadata,
                           "cells": [{"cell_type": "code", "source": ["df <- read.csv('x')\n"]}]})
    r = of({"kernelspec": {"name": "ir", "language": "R"}, "language_info": {"name": "R"}})
    with pytest.raises(NotPythonNotebook, match="'r', not Python"):
        notebook_source(r)
    with pytest.raises(NotPythonNotebook):
        notebook_source(of({"language_info": {"name": "julia"}}))
    # Python's kernels, and a notebook that names none (Jupyter's default kernel is Python's), are read
    for metadata in ({"kernelspec": {"language": "python"}}, {"language_info": {"name": "Python"}}, {},
                     {"kernelspec": {"name": "python3"}}, {"language": "python"}):
        assert notebook_source(of(metadata)) == "# %%\ndf <- read.csv('x')\n"
    (tmp_path / "analysis.ipynb").write_text(r)
    assert clean_notebook(tmp_path / "analysis.ipynb", CleanConfig()) == (None, "not_python_notebook")
    (tmp_path / "fit.ipynb").write_text(notebook(("code", "import math\n")))
    assert [rec["path"] for rec in gather([tmp_path])] == ["fit.ipynb"]  # make train skips the R notebook


def test_a_notebook_is_cleaned_by_its_code_not_its_outputs(tmp_path):
    big = tmp_path / "plots.ipynb"  # 2 MB of plots around one line of code: the code is kept
    big.write_text(json.dumps({"cells": [{"cell_type": "code", "source": ["y = 2\n"],
                                          "outputs": [{"data": {"image/png": "A" * 2_000_000}}]}]}))
    assert clean_notebook(big, CleanConfig()) == ("# %%\ny = 2\n", None)
    (tmp_path / "bad.ipynb").write_text("{ truncated")
    assert clean_notebook(tmp_path / "bad.ipynb", CleanConfig()) == (None, "not_a_notebook")
    (tmp_path / "prose.ipynb").write_text(notebook(("markdown", "no code\n")))
    assert clean_notebook(tmp_path / "prose.ipynb", CleanConfig()) == (None, "empty")


def package_as_notebooks(folder: Path) -> dict[str, str]:
    """The fixture package's modules as notebooks, one cell per top-level block; name -> the module's text."""
    folder.mkdir()
    texts = {}
    for path in sorted(PACKAGE.glob("*.py")):
        text = path.read_text()
        cells = [("markdown", f"# {path.stem}\n")] + [("code", block.strip("\n") + "\n")
                                                        for block in re.split(r"\n\n\n", text) if block.strip()]
        (folder / f"{path.stem}.ipynb").write_text(notebook(*cells))
        texts[path.stem] = text
    return texts


def test_a_projects_notebooks_are_listed_but_not_jupyters_autosaved_copies(tmp_path):
    (tmp_path / "a.py").write_text("x = 1\n")
    (tmp_path / "b.ipynb").write_text(notebook(("code", "y = 2\n")))
    (tmp_path / ".ipynb_checkpoints").mkdir()
    (tmp_path / ".ipynb_checkpoints" / "b-checkpoint.ipynb").write_text(notebook(("code", "y = 2\n")))
    assert project_source_files(tmp_path).files == ["a.py", "b.ipynb"]  # walked
    git = shutil.which("git")
    if git:  # git lists an autosaved copy no .gitignore excludes: left out all the same
        subprocess.run([git, "-C", str(tmp_path), "init", "-q"], check=True)
        assert project_source_files(tmp_path).files == ["a.py", "b.ipynb"]


def test_the_project_protocol_sends_the_projects_notebooks_as_their_code(tmp_path):
    """`python -m evaluate --project-root`'s context is what the editor's workspace sends: the project's `.py`
    files and its other notebooks, each notebook as its module of code cells (not its JSON, outputs and all)."""
    root = tmp_path / "proj"
    (root / "pkg").mkdir(parents=True)
    (root / "pkg" / "model.py").write_text("def fit(frame):\n    return frame.mean()\n" * 5)
    (root / "notes").mkdir()
    fit = notebook(("markdown", "# Fit\n"), ("code", "from pkg.model import fit\nresult = fit(data)\n"))
    (root / "notes" / "fit.ipynb").write_text(fit)
    (root / "notes" / "plot.ipynb").write_text(notebook(("code", "import pandas as pd\ndata = pd.read_csv('x')\n")))
    (root / "notes" / ".ipynb_checkpoints").mkdir()
    (root / "notes" / ".ipynb_checkpoints" / "plot-checkpoint.ipynb").write_text(fit)
    out = tmp_path / "out"
    assert evaluate_main.main(["--model", str(make_tiny_checkpoint(tmp_path / "tiny.pt")), "--files",
                               str(root / "notes" / "plot.ipynb"), "--project-root", str(root), "--protocol",
                               "project", "--max-chars", "60", "--line-samples", "0", "--out", str(out)]) == 0
    row, = json.loads((out / "eval.json").read_text())["files"]
    assert len(fit) > 300  # its JSON: the outputs' plots
    assert row["extra_chars"] == len(notebook_source(fit)) + len((root / "pkg" / "model.py").read_text())


def test_a_folder_of_notebooks_is_a_corpus_of_their_code(tmp_path):
    folder = tmp_path / "analysis"
    texts = package_as_notebooks(folder)
    (folder / "broken.ipynb").write_text("{ truncated")
    described = []
    records = gather([folder], described=described)
    assert described[0]["py_files"] == 0 and described[0]["notebooks"] == len(texts) + 1
    assert sorted(r["path"] for r in records) == sorted(f"{name}.ipynb" for name in texts)  # broken one skipped
    by_name = {r["path"]: r["text"] for r in records}
    for name, text in texts.items():
        code = by_name[f"{name}.ipynb"]
        assert code.startswith("# %%\n") and '"cell_type"' not in code and "iVBOR" not in code
        # every line of the module is in its notebook's code, in order
        assert [ln for ln in code.split("\n") if ln and ln != "# %%"] == [ln for ln in text.split("\n") if ln]
    tok = load_checkpoint(make_tiny_checkpoint(tmp_path / "tiny.pt")).tokenizer
    build_personal_corpus([folder], tmp_path / "data", tok, valid_fraction=0.2)
    trained = tok.decode([i for i in load_split(tmp_path / "data", "train") if i != tok.eot_id])
    assert "def " in trained and "# %%" in trained and "outputs" not in trained


def test_a_folder_of_only_broken_notebooks_fails_naming_why(tmp_path):
    (tmp_path / "bad.ipynb").write_text("{ truncated")
    with pytest.raises(SourceError, match="not a Jupyter notebook"):
        gather([tmp_path])
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("no code\n")
    with pytest.raises(SourceError, match="has no .py files or Jupyter notebooks"):
        gather([tmp_path / "empty"])


def test_evaluate_types_a_notebooks_code(tmp_path):
    path = tmp_path / "nb.ipynb"
    path.write_text(notebook(("markdown", "prose\n"), ("code", "import math\nmath.pi\n")))
    assert read_source(path) == evaluate_main._read(path) == "# %%\nimport math\nmath.pi\n"
    (tmp_path / "bad.ipynb").write_text("[]")
    assert evaluate_main._read(tmp_path / "bad.ipynb") is None  # skipped, said on stderr


def test_make_train_fine_tunes_on_a_folder_of_notebooks(tmp_path, capsys):
    folder = tmp_path / "analysis"
    package_as_notebooks(folder)
    tiny = make_tiny_checkpoint(tmp_path / "tiny.pt")
    out = tmp_path / "personal.pt"
    rc = finetune.main([str(folder), "--init", str(tiny), "--out", str(out), "--work", str(tmp_path / "w"),
                        "--steps", "20", "--lr", "3e-3", "--warmup", "2", "--eval-every", "10", "--batch-size", "4",
                        "--valid-fraction", "0.2", "--no-progress", "--replay", "", "--priority", "normal"])
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    assert f"{folder}: 0 .py files, {len(list(folder.glob('*.ipynb')))} notebooks" in captured.out
    model = load_checkpoint(out)
    assert model.meta["valid_loss"] < model.meta["init_valid_loss"]  # it learned the notebooks' code
    # the typing report typed held-out notebooks as code (evaluate/gain.py)
    assert re.search(r"typing \d+ of your held-out files \([0-9,]+ characters\)", captured.out), captured.out


def test_the_fixture_notebook_reads_as_the_module_the_editor_builds():
    """tests/fixtures/notebooks/sales.py is sales.ipynb's module; vscode-extension/src/test/notebook.test.ts checks
    that the editor shows the model the same text, so a notebook is served as it was trained on."""
    fixtures = REPO / "tests" / "fixtures" / "notebooks"
    module = notebook_source((fixtures / "sales.ipynb").read_bytes())
    assert module == (fixtures / "sales.py").read_text()
    ast.parse(module)
