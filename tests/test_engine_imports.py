"""Imports from the project (evaluate/imports.py): in a `from MODULE import` list, the names MODULE's file
(an input_extra chunk with its filename) defines."""
from __future__ import annotations

import pytest
import torch

from evaluate.imports import (ImportsConfig, ImportSite, ModuleSite, ProjectImports, import_site, module_names,
                              module_site)
from evaluate.names import NAME_BYTES
from evaluate.predictor import Predictor, PredictorConfig
from tests.tiny_model import make_tiny_checkpoint

SHAPES = ("import math\n\n\ndef qzv_trapezoid_area(a, b, h):\n    return (a + b) * h / 2\n\n\n"
          "def qzv_triangle_area(b, h):\n    return b * h / 2\n\n\nqzv_unit = 1.0\n")
# Another file of the project that uses a different `qzv_` name a lot: the most frequent name of the memory
# (names.py's choice) is not one the module defines.
TRACING = "def run():\n" + "".join(f"    qzv_tracer_calls({i})\n" for i in range(8))
CHUNKS = [("src/geometry/shapes.py", SHAPES), ("src/tracing.py", TRACING)]


@pytest.fixture(scope="module")
def ckpt():
    torch.set_num_threads(1)
    return make_tiny_checkpoint()


def test_the_site_is_a_name_being_typed_in_a_from_import_list():
    assert import_site("from ._models import Req") == ImportSite("._models", (), "Req")
    assert import_site("from pkg.mod import a as b, c, ") == ImportSite("pkg.mod", ("a", "c"), "")
    assert import_site("x = 1\nfrom .m import (\n    Alpha,  # first\n    Beta,\n    Ga") == \
        ImportSite(".m", ("Alpha", "Beta"), "Ga")
    assert import_site("from a.b import c \\\n    , d") == ImportSite("a.b", ("c",), "d")
    assert import_site("from .m import Ga", min_prefix=3) is None  # too short
    assert import_site("from .m import Ga", suffix="mma\n") is None  # the cursor is inside a name
    assert import_site("from .m import a as b") is None  # an alias is typed, not a module's name
    assert import_site("from .m import a \n") is None  # the statement ended
    assert import_site("from .m import (a)\nx = Re") is None  # the list is closed
    assert import_site("import os\nx = os.pa") is None


def test_a_module_defines_its_top_level_names_and_a_package_what_it_imports():
    source = ("import os\nfrom .x import Y as Z, W\nclass A:\n    def method(self): pass\ndef f(): pass\n"
              "async def g(): pass\nX: int = 3\nif a == b:\n    inner = 1\n__all__ = ['Q', \"R\"]\n")
    assert module_names(source, package=False) == ["A", "f", "g", "X"]
    assert module_names(source, package=True) == ["A", "f", "g", "X", "os", "Z", "W", "Q", "R"]


def test_candidates_come_from_the_module_file_after_the_listed_names_in_their_order():
    imports = ProjectImports()
    module = "def Gamma(): pass\nclass Alpha: pass\nBeta = 1\nAardvark = 2\ndef Delta(): pass\n"
    chunks = [("pkg/mod.py", module), ("pkg/other.py", "def Omega(): pass\n")]

    def candidates(prompt, chunks=chunks):
        site = import_site(prompt)
        return imports.candidates(site, imports.module_chunks(site, chunks), chunks)

    assert candidates("from .mod import ") == ["Gamma", "Alpha", "Beta", "Aardvark", "Delta"]
    # sorted so far: the names after the last listed one, in sorted order, first
    assert candidates("from .mod import Alpha, Beta, ") == ["Delta", "Gamma", "Aardvark"]
    assert candidates("from pkg.mod import Beta, Alpha, ") == ["Gamma", "Aardvark", "Delta"]
    assert candidates("from .other import O") == ["Omega"]
    # a package's __init__.py: what it imports, and its submodules among the chunks
    package = [("src/pkg/__init__.py", "from .mod import Gamma\n"), ("src/pkg/mod.py", module),
               ("src/pkg/sub/__init__.py", ""), ("src/other/thing.py", "")]
    assert candidates("from pkg import ", package) == ["Gamma", "mod", "sub"]
    # an unknown module, a filename that only ends like it, no filename, `from . import`: nothing
    for prompt, chunks_sent in [("from .missing import G", chunks), ("from .mod import G", [("pkg/xmod.py", module)]),
                                ("from .mod import G", [("", module)]), ("from . import m", package)]:
        site = import_site(prompt)
        assert imports.module_chunks(site, chunks_sent) == [], prompt


def test_a_module_name_nobody_uses_is_offered_over_the_memory_s_most_frequent(ckpt):
    """`from .shapes import qzv_t`: names.py would offer `qzv_tracer_calls` (8 uses in another file); the
    module defines `qzv_trapezoid_area` and `qzv_triangle_area`, and the list is sorted."""
    on = Predictor.from_checkpoint(ckpt, config=PredictorConfig())
    off = Predictor.from_checkpoint(ckpt, config=PredictorConfig(imports=None))
    first = "from .shapes import qzv_t"
    assert off.complete(first, extra=CHUNKS)[0].text == "racer_calls"  # the project's most frequent name
    assert on.complete(first, extra=CHUNKS)[0].text == "rapezoid_area"
    assert on.complete("from .shapes import qzv_trapezoid_area, qzv_t", extra=CHUNKS)[0].text == "riangle_area"
    multi = "from geometry.shapes import (\n    qzv_triangle_area,\n    qzv_"
    assert on.complete(multi, extra=CHUNKS)[0].text == "unit"
    # Without filenames the module is unknown: names.py's rule, as before
    texts = [text for _, text in CHUNKS]
    assert on.complete(first, extra=texts)[0].text == off.complete(first, extra=texts)[0].text == "racer_calls"


def test_outside_an_import_list_the_suggestions_are_unchanged(ckpt):
    on = Predictor.from_checkpoint(ckpt, config=PredictorConfig())
    off = Predictor.from_checkpoint(ckpt, config=PredictorConfig(imports=None))
    for prompt in ["def main():\n    area = qzv_t", "from .shapes import qzv_trapezoid_area\nx = qzv_t",
                   "import qzv_t", "from .shapes import qzv_trapezoid_area as qz"]:
        assert [c.text for c in on.complete(prompt, extra=CHUNKS, max_suggestions=3)] == \
            [c.text for c in off.complete(prompt, extra=CHUNKS, max_suggestions=3)], prompt


def test_module_names_are_read_once_per_chunk_and_bounded(ckpt):
    one = NAME_BYTES + len("alpha_10")  # a name list of one name of 8 characters
    imports = ProjectImports(ImportsConfig(max_bytes=4 * one))
    site = import_site("from .m import a")
    for i in range(10, 30):
        chunk = [("m.py", f"alpha_{i} = 1\n")]
        assert imports.candidates(site, chunk, chunk) == [f"alpha_{i}"]
        assert imports.usage()["imports_module_bytes"] <= 4 * one
    assert imports.usage() == {"imports_modules": 4, "imports_module_bytes": 4 * one}
    # one module defining many names: a count bound would keep 4 of them; the byte bound keeps it alone
    big = [("m.py", "".join(f"alpha_{i} = 1\n" for i in range(100, 200)))]
    assert len(imports.candidates(site, big, big)) == 100
    assert imports.usage()["imports_modules"] == 1
    # read again from the cache, not re-parsed: same list object
    assert imports._names(big[0][1], False) is imports._names(big[0][1], False)


def test_the_search_keeps_a_name_of_the_module_text_and_punctuation_before_any_name():
    module = [("pkg/mod.py", "from typing import Gadget\ntry:\n    from fast import Galaxy\nexcept ImportError:\n"
                             "    Galaxy = None\n\n\ndef Gamma():\n    pass\n")]
    site = import_site("from .mod import Ga")
    assert ProjectImports.complete(site, "laxy\n", ["Gamma"], module) is None  # defined inside `try`: kept
    assert ProjectImports.complete(site, "mma\n", ["Gamma"], module) is None  # a candidate: kept
    assert ProjectImports.complete(site, "rbage", ["Gamma"], module) == ("mma", 1.0)
    assert ProjectImports.complete(site, "dget", ["Gamma"], module) == ("mma", 1.0)  # imported there, not its own
    assert ProjectImports.complete(site, None, ["Gamma"], module) == ("mma", 1.0)
    assert ProjectImports.complete(site, "rbage", [], module) is None
    empty = import_site("from .mod import ")
    assert ProjectImports.complete(empty, "(\n", ["Gamma"], module) is None  # `(` after `import`: kept
    assert ProjectImports.complete(empty, "os\n", ["Gamma", "Galaxy"], module) == ("Gamma", 0.5)
    complete_name = import_site("from .mod import Gamma")
    assert ProjectImports.complete(complete_name, ", Galaxy\n", ["Gamma", "GammaRay"], module) is None
    assert ProjectImports.complete(complete_name, "Rays", ["Gamma", "GammaRay"], module) == ("Ray", 1.0)


def test_a_relative_module_being_typed_is_one_of_the_chunks_files_after_the_line_above():
    assert module_site("from ._c") == ModuleSite((), "_c", None, frozenset())
    assert module_site("from ._auth import Auth\nfrom ._transports.base import B\nfrom ._c") == \
        ModuleSite((), "_c", "_transports", frozenset({"_auth", "_transports"}))
    assert module_site("from ._transports.b") == ModuleSite(("_transports",), "b", None, frozenset())
    assert module_site("from .") is None and module_site("from ._c", min_prefix=3) is None
    assert module_site("from ._c", suffix="onfig import X") is None  # inside the name
    assert module_site("import _c") is None and module_site("from os.pa") is None  # not the project's
    chunks = [("src/httpx/_auth.py", ""), ("src/httpx/_config.py", ""), ("src/httpx/_content.py", ""),
              ("src/httpx/_transports/__init__.py", ""), ("src/httpx/_transports/base.py", "")]
    candidates = ProjectImports.module_candidates
    assert candidates(module_site("from ._"), chunks) == ["_auth", "_config", "_content", "_transports"]
    assert candidates(module_site("from ._auth import A\nfrom ._config import C\nfrom ._"), chunks) == \
        ["_content", "_transports"]  # imported above: left out; after the line above first
    assert candidates(module_site("from ._transports import T\nfrom ._c"), chunks) == ["_config", "_content"]
    assert candidates(module_site("from ._transports.b"), chunks) == ["base"]


def test_a_project_module_nobody_named_is_offered_after_from_dot(ckpt):
    on = Predictor.from_checkpoint(ckpt, config=PredictorConfig())
    off = Predictor.from_checkpoint(ckpt, config=PredictorConfig(imports=ImportsConfig(modules=False)))
    chunks = [("src/geometry/qzv_shapes.py", SHAPES), ("src/geometry/qzv_tracing.py", TRACING)]
    assert not off.complete("from .qzv_s", extra=chunks)[0].text.startswith("hapes")
    assert on.complete("from .qzv_s", extra=chunks)[0].text == "hapes"
    assert on.complete("from .qzv_shapes import qzv_triangle_area\nfrom .qzv_", extra=chunks)[0].text == "tracing"
