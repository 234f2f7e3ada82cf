"""The shape of the package: public API, layering, one of each, docstrings and their examples.

These tests read the source (ast) and import the modules; they hold the layout of
README.md's "Where things are" against the code, so that a move that breaks it fails here.
"""
from __future__ import annotations

import ast
import doctest
import importlib
import inspect
from pathlib import Path

import pytest

import freqkit as fk

PKG = Path(fk.__file__).resolve().parent
LIBRARY = sorted(p for p in PKG.glob("*.py") if p.name != "__init__.py")
BOOK = sorted((PKG / "book").glob("*.py"))

# What each library module may import from freqkit (besides the private shared modules
# _validate, _io, _runtime, _explain, _distributed).  The floors of DESIGN.md: transforms at the bottom;
# data and models beside it; attribution, attacks, heatmaps on transforms; objectives and
# defense above them; stats and results serve everyone; hypotheses decides from results.
# A private module listed here (``_projection``: the band ∩ ball ∩ box projection shared by
# attacks and apgd) sits on a floor like a public one.
ALLOWED = {
    "transforms": set(),
    "stats": set(),
    "results": set(),
    "human": {"transforms"},
    "data": set(),
    "models": set(),
    "training": {"data", "models"},
    "attribution": {"models", "stats", "transforms"},   # models: Normalize's LRP rule
    "faithfulness": {"attribution", "transforms", "stats"},
    "planted": {"attribution", "models", "stats", "training", "transforms"},
    "_projection": {"transforms"},
    "attacks": {"_projection", "transforms", "stats"},
    "apgd": {"_projection", "transforms", "stats"},
    "masking": {"apgd", "attacks", "models", "stats", "transforms"},
    "heatmaps": {"models", "transforms"},
    "defense": {"apgd", "attacks", "human", "models", "stats", "transforms"},   # human: visibility of attacks
    "objectives": {"defense", "human", "training", "transforms"},
    "reliance": {"attribution", "heatmaps", "human", "models", "stats", "transforms"},   # heatmaps: H4's measure
    "hypotheses": {"results", "stats"},
    "features": {"attacks", "stats", "transforms"},   # Ilyas et al.'s robust and non-robust data sets
    "adapters": {"apgd", "attacks", "attribution", "models", "transforms"},   # nothing in the library imports adapters
    # the command line (python -m freqkit.run), at the library's edge like adapters: it only combines
    # public functions for a shell, and nothing in the library imports it
    "run": {"data", "heatmaps", "models", "reliance"},
}
PRIVATE_SHARED = {"_validate", "_io", "_runtime", "_explain", "_distributed"}


def _tree(path: Path) -> ast.Module:
    return ast.parse(path.read_text(), filename=str(path))


def _freqkit_imports(path: Path):
    """(module imported, names, inside a function?) for every freqkit import in ``path``."""
    tree = _tree(path)
    in_function = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            for sub in ast.walk(node):
                if isinstance(sub, (ast.Import, ast.ImportFrom)):
                    in_function.add(id(sub))
    package = "freqkit.book" if path.parent.name == "book" else "freqkit"
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            if mod == "freqkit" or mod.startswith("freqkit."):
                yield mod, [a.name for a in node.names], id(node) in in_function
        elif isinstance(node, ast.Import):
            for a in node.names:
                if a.name.startswith("freqkit"):
                    yield a.name, [], id(node) in in_function


def test_public_api_is_curated_and_complete():
    names = fk.__all__
    assert len(names) == len(set(names)), "duplicates in freqkit.__all__"
    for n in names:
        assert hasattr(fk, n), n
    # the contract of DESIGN.md
    for n in ("dct2", "idct2", "band_masks", "FrequencyModel", "attribute", "pgd", "fourier_heatmap", "hypotheses"):
        assert n in names
    for n in names:
        obj = getattr(fk, n)
        mod = getattr(obj, "__module__", None) or getattr(obj, "__name__", "")
        assert not str(mod).startswith("freqkit.book"), f"{n} comes from the book code"
    # every module's __all__ names exist there
    for p in LIBRARY + BOOK:
        if p.name == "__main__.py":
            continue
        mod = importlib.import_module(("freqkit.book." if p.parent.name == "book" else "freqkit.") + p.stem)
        for n in getattr(mod, "__all__", []):
            assert hasattr(mod, n), f"{mod.__name__}.__all__ names {n}, which does not exist"


def test_nothing_in_the_library_imports_the_book_code():
    for p in LIBRARY:
        for mod, _, _ in _freqkit_imports(p):
            assert not mod.startswith("freqkit.book"), f"{p.name} imports {mod}"


@pytest.mark.parametrize("path", LIBRARY, ids=lambda p: p.stem)
def test_layering(path):
    if path.stem.startswith("_") and path.stem not in ALLOWED:
        allowed = PRIVATE_SHARED  # private modules use only each other
    else:
        allowed = {f"freqkit.{m}" for m in ALLOWED[path.stem]} | {f"freqkit.{m}" for m in PRIVATE_SHARED}
    for mod, _, _ in _freqkit_imports(path):
        target = mod.split(".")[1] if "." in mod else mod
        if path.stem.startswith("_") and path.stem not in ALLOWED:
            assert target in allowed, f"{path.name} imports {mod}"
        else:
            assert mod in allowed, f"{path.name} imports {mod}; its floor allows {sorted(ALLOWED[path.stem])}"


@pytest.mark.parametrize("path", LIBRARY + BOOK, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_no_private_name_crosses_a_module_and_no_import_hides_in_a_function(path):
    for mod, names, in_function in _freqkit_imports(path):
        private = [n for n in names if n.startswith("_")]
        assert not private, f"{path.name} imports private {private} from {mod}"
        assert not in_function, f"{path.name} imports {mod} inside a function"


def test_one_basis_vocabulary_one_bootstrap_one_atomic_writer():
    sources = {p: p.read_text() for p in LIBRARY + BOOK}
    for p, s in sources.items():
        if p.name != "transforms.py":
            assert "BASES =" not in s, f"{p.name} defines its own tuple of bases"
            assert '"dht"' not in s, f"{p.name} uses the basis name 'dht'"
        if p.name != "stats.py":
            assert ".integers(" not in s, f"{p.name} draws bootstrap resamples itself"
        if p.name != "_io.py":
            assert "mkstemp" not in s and "json.dump(" not in s, f"{p.name} writes files itself"
    assert fk.BASES == ("dct", "dft")


def test_nothing_loads_code_from_a_file():
    """Every torch.load reads weights only; no plain pickle.load; no hub loader that unpickles."""
    for p in LIBRARY + BOOK:
        tree = _tree(p)
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call):
                continue
            f = node.func
            name = f.attr if isinstance(f, ast.Attribute) else getattr(f, "id", "")
            owner = getattr(f.value, "id", "") if isinstance(f, ast.Attribute) else ""
            where = f"{p.name}:{node.lineno}"
            if name == "load" and owner == "torch":
                kw = {k.arg: k.value for k in node.keywords}
                assert "weights_only" in kw and getattr(kw["weights_only"], "value", None) is True, \
                    f"{where}: torch.load without weights_only=True"
            assert not (name in ("load", "loads") and owner == "pickle"), f"{where}: pickle.{name} runs code"
            assert name not in ("load_state_dict_from_url", "get_state_dict"), f"{where}: {name} unpickles"


def _public_callables():
    for p in LIBRARY + BOOK:
        if p.name in ("__main__.py",) or p.stem.startswith("_"):
            continue
        modname = ("freqkit.book." if p.parent.name == "book" else "freqkit.") + p.stem
        mod = importlib.import_module(modname)
        for n in getattr(mod, "__all__", []):
            obj = getattr(mod, n)
            if (inspect.isfunction(obj) or inspect.isclass(obj)) and obj.__module__ == modname:
                yield f"{modname}.{n}", obj


def test_every_public_function_documents_its_arguments():
    missing = []
    for name, obj in _public_callables():
        doc = inspect.getdoc(obj) or ""
        if not doc:
            missing.append(f"{name}: no docstring")
            continue
        target = obj.__init__ if inspect.isclass(obj) else obj
        try:
            params = [q for q in inspect.signature(target).parameters if q not in ("self", "args", "kwargs")]
        except (TypeError, ValueError):
            params = []
        if inspect.isclass(obj) and not params:
            continue
        if params and "Args:" not in doc and "Attributes:" not in doc:
            missing.append(f"{name}: no Args section for {params}")
    assert not missing, "\n".join(missing)


def test_docstring_examples_run():
    """Every ``>>>`` example in freqkit's docstrings runs and prints what it says."""
    failed, attempted = 0, 0
    for p in LIBRARY + BOOK:
        if p.name == "__main__.py":
            continue
        mod = importlib.import_module(("freqkit.book." if p.parent.name == "book" else "freqkit.") + p.stem)
        res = doctest.testmod(mod, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE, verbose=False)
        failed += res.failed
        attempted += res.attempted
    assert failed == 0
    assert attempted >= 30, f"only {attempted} docstring examples; the core functions should have them"
