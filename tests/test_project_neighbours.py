"""evaluate/project.py's neighbours, pinned to the same cases as the extension's port
(vscode-extension/src/test/workspaceContext.test.ts): the editor sends what the protocol measured."""
from evaluate.project import imported_modules, neighbours

IMPORTS = "\n".join([
    "import os, sys as system",
    "import billing.invoices",
    "from .models import Invoice, (Line)",
    "from ..util import helpers as h",
    "from pkg import (a,",
    "    b)",
    "x = 1  # import nothing",
    "    from . import sibling",
])


def test_imports_read_as_the_extension_reads_them():
    assert imported_modules(IMPORTS) == ["os", "sys", "billing.invoices", "models", "models.Invoice", "models.Line",
                                         "util", "util.helpers", "util.h", "pkg", "pkg.a", "sibling"]


def test_order_imports_then_folder_then_the_rest_by_path():
    paths = ["shop/main.py", "shop/util.py", "shop/billing/invoices.py", "shop/billing/__init__.py",
             "other/zeta.py", "other/alpha.py", "shop/models.py", "docs/conf.py"]
    others = {p: f"# {p}\n" for p in paths}
    others["shop/main.py"] = "from .models import Invoice\nimport shop.billing.invoices\n\nprint(1)\n"
    sent = neighbours("shop/main.py", others, budget=10_000)
    order = [t.splitlines()[0][2:] for _, t in sent]
    assert [p for p, _ in sent] == order  # each text with its path
    assert order == ["shop/models.py", "shop/billing/invoices.py", "shop/util.py",
                     "docs/conf.py", "other/alpha.py", "other/zeta.py", "shop/billing/__init__.py"]


def test_the_folders_left_out_are_the_extensions():
    """`python -m evaluate --project-root` lists a project as the extension lists a workspace: the same folders
    (environments, build output, caches) are not the project's."""
    import re
    from pathlib import Path

    from dataset.workspace import NOT_PROJECT_DIRS
    ts = (Path(__file__).resolve().parent.parent / "vscode-extension" / "src" / "workspaceContext.ts").read_text()
    listed = re.search(r"NOT_PROJECT_DIRS = \[([^\]]*)\]", ts).group(1)
    assert set(re.findall(r"'([^']+)'", listed)) == NOT_PROJECT_DIRS
