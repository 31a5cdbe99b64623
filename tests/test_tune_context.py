"""scripts/tune_context.py --projects: local folders as validation projects, each file typed with its own
project's other files as input_extra."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))

from tune_context import files_of, main  # noqa: E402


def make_project(root: Path, name: str, n: int) -> Path:
    folder = root / name
    (folder / "pkg").mkdir(parents=True)
    for i in range(n):
        body = "".join(f"def {name}_function_{i}_{j}(value):\n    return value + {j}\n\n\n" for j in range(40))
        (folder / "pkg" / f"module_{i}.py").write_text(body)
    return folder


def test_local_folders_are_projects_and_extra_comes_from_the_same_project(tmp_path):
    alpha, beta = make_project(tmp_path, "alpha", 3), make_project(tmp_path, "beta", 4)
    files = files_of("unused", "valid", n=50, seed=0, extra_chars=200_000, projects=[str(alpha), str(beta)])
    assert len(files) == 7  # every file (all > 1,500 characters, both projects have >= 3 files)
    for name, text, extra in files:
        project = "alpha" if "/alpha/" in name else "beta"
        assert name.startswith(f"local/{project}/pkg/module_") and text.startswith(f"def {project}_")
        assert len(extra) == (2 if project == "alpha" else 3)  # the other files of its own project only
        assert all(t.startswith(f"def {project}_") and t != text for _, t in extra)
        assert all(path.startswith("pkg/module_") for path, _ in extra)  # with their paths in the project


def test_each_variant_is_compared_with_the_first_over_the_same_files(tmp_path, checkpoint, capsys):
    """The table's third column: the variant's keystrokes saved minus the first's, with the paired interval."""
    alpha = make_project(tmp_path, "alpha", 3)
    assert main(["--model", str(checkpoint), "--projects", str(alpha), "--files", "3", "--chars", "120",
                 "--jobs", "1", "{}", '{"context": null}']) == 0
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| `")]
    assert len(rows) == 2
    first, second = ([cell.strip() for cell in row.strip("|").split("|")] for row in rows)
    assert first[2] == "–"
    saved = [float(r[1].rstrip("%")) for r in (first, second)]
    difference, interval = second[2].split(" ", 1)
    assert float(difference) == pytest.approx(saved[1] - saved[0], abs=0.11)
    low, high = (float(x) for x in interval.strip("()").split(" … "))
    assert low <= float(difference) <= high
