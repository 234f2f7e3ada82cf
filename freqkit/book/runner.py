"""The book runner: execute every chapter with papermill under a profile, then build the book.

    python -m freqkit.book --profile smoke|cpu|gpu [--chapters 01 02] [--set NAME=VALUE] [--out _build] [--no-build]
                           [--jobs N]

1. Reads ``_toc.yml`` (every ``.ipynb`` listed there is a chapter, ``.md`` pages are copied)
   and ``book/profiles.yml`` (per profile: ``_all`` parameters for every chapter, plus
   overrides keyed by notebook stem). Each chapter gets exactly the parameters of its
   profile plus ``profile=<name>`` and the ``--set NAME=VALUE`` overrides (YAML values);
   every name must exist in the chapter's ``parameters`` cell (a typo is an error, not a
   silently ignored parameter).
2. Executes each chapter with papermill (kernel ``python3`` of this interpreter, widget state
   saved) into ``<out>/executed/<profile>/book/<stem>.ipynb``. The working directory of the
   kernel is that folder, which also holds a copy of the non-notebook files of ``book/``, so
   a chapter may read files next to it and its scratch files never land in the sources.
   The executed copy is first written under ``.partial/`` and moved into place only when the
   chapter passed; a failed chapter's output goes to ``<out>/executed/<profile>/failed/``.
   A chapter's results file (``<results_dir>/<stem>.json``) counts only when the chapter
   finished: an older one is removed before the chapter starts, and one written by a run
   that failed or was interrupted is moved to ``failed/results/``.
   Timings go to ``<out>/executed/<profile>/run.json`` (written atomically after every step;
   a chapter is ``running`` there before its old executed copy is deleted, and Ctrl-C
   leaves the run and the chapter ``interrupted``).
3. If a chapter fails: stops, prints chapter, failing cell, the head of its source and the
   error, exits 1, and builds nothing.
4. Otherwise runs ``jupyter-book build`` (warnings are errors, every page rebuilt, notebooks
   never re-executed: ``execute_notebooks: "off"``) on the staging tree
   ``<out>/executed/<profile>/`` (the executed copies + ``_config.yml`` + ``_toc.yml`` +
   the other files of ``book/``), and moves the HTML into ``<out>/html``.  A chapter that
   summarises others (chapter 9) stores the SHA-256 of every results file it read
   (``setting["inputs"]``); the build refuses it when one of them changed since.

``--jobs N`` executes up to N chapters at the same time (a thread per chapter, each kernel its
own process with ``OMP_NUM_THREADS = cores // N`` unless the caller set it); chapters start
longest first by the seconds ``book/measured/<profile>.json`` holds for their last run (the
unrecorded ones after them, in toc order), a chapter marked as summarising the others (notebook metadata
``{"freqkit": {"summarises_others": true}}``, chapter 9) only once every chapter before it
ended, and none after a failure.  Two chapters that need the same model train it once
(:func:`freqkit.train_or_load` locks each checkpoint; a suite hands each process the seeds
nobody else is training).

One runner at a time per output folder and profile: a run holds an exclusive lock on
``<out>/executed/<profile>/run.lock`` (``fcntl.flock``), and a second one exits 2 at once.

Path parameters (names ending in ``_dir``, ``_root``, ``_path`` or ``_file``) given as
strings in profiles.yml may use ``{out}``, ``{profile}`` and ``{root}`` (substituted, not
formatted: any other brace is an error) and are made absolute against the repository root.
Exit status: 0 ok, 1 a chapter or the build failed, 2 bad usage or configuration (or
another runner holds the lock), 130 interrupted.
"""
from __future__ import annotations

import argparse
import datetime as _dt
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path
from typing import Any, Sequence

import torch
import yaml

from .. import hypotheses
from .._io import atomic_write_bytes, atomic_write_json, lock_file
from .._runtime import cpu_name
from . import chapters

__all__ = [
    "measured_markdown", "measured_block", "update_readme", "store_measured", "MEASURED_START", "MEASURED_END",
    "MEASURED_RECORD",
    "BookError", "ChapterFailed", "ChapterInterrupted", "BuildFailed", "find_root", "read_toc", "chapters_in_toc",
    "select_chapters", "load_profiles", "parse_overrides", "chapter_parameters", "check_source", "check_executed",
    "kernel_check", "RunRecord", "sync_assets", "executed_path", "results_file", "execute_chapter",
    "jupyter_book_executable", "check_config", "changed_inputs", "build_book", "setup", "parse_args", "run", "main",
    "present", "scrub_paths", "verdicts_markdown", "stage_pages", "SHOW_TAGS", "VERDICTS_MARKER", "KERNEL_MPLBACKEND",
    "PROFILE_NOTES", "repository_url", "install_cell_source", "publish_sources", "is_summary", "SUMMARY_KEY",
    "recorded_seconds",
]

#: The matplotlib backend every chapter kernel runs with (figures become cell outputs).
KERNEL_MPLBACKEND = "module://matplotlib_inline.backend_inline"
SHARED_PARAMETERS = ("profile", "data_root", "cache_dir", "device", "seed", "results_dir")
PATH_SUFFIXES = ("_dir", "_root", "_path", "_file")
PROFILES_FILE = Path("book") / "profiles.yml"
WIDGET_STATE = "application/vnd.jupyter.widget-state+json"
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
BOOK_DIR = "book"
SKIP_COPY = (".ipynb", ".pyc")
SKIP_DIRS = (".ipynb_checkpoints", "__pycache__", "_build")
LOCK_FILE = "run.lock"
PLACEHOLDERS = ("out", "profile", "root")
DESCRIPTION = ("Execute the book's chapters with papermill under a profile of book/profiles.yml, then build "
               "the HTML book with jupyter-book.")
_BRACES = re.compile(r"\{[^{}]*\}|[{}]")
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


class BookError(Exception):
    """A configuration or usage error (exit status 2).

    Raised for a bad ``_toc.yml``, ``book/profiles.yml``, ``_config.yml``, parameter, kernel or
    command line; :func:`main` prints it and returns 2.
    """


class ChapterFailed(Exception):
    """A chapter failed to execute (exit status 1).

    Args:
        message: what failed: the chapter, the failing cell (index and head of its source)
            and the error.
        info: the chapter's run record (``status``, ``seconds``, ``error``, ``failed_copy``,
            ...) for ``run.json``; default ``{}``.

    Attributes:
        info: the ``info`` dict given (``{}`` when None).
    """

    def __init__(self, message: str, info: dict | None = None):
        super().__init__(message)
        self.info = info or {}


class ChapterInterrupted(KeyboardInterrupt):
    """A chapter was interrupted (Ctrl-C) while it executed; :func:`main` returns 130.

    A :class:`KeyboardInterrupt`, so that whatever catches Ctrl-C catches it too; it also
    carries the chapter's record, after the partial copy and the results file written by the
    interrupted run were set aside (:func:`execute_chapter`).

    Args:
        message: which chapter was interrupted, and where its partial copy went.
        info: the chapter's run record (``status`` ``"interrupted"``, ``seconds``, ...,
            ``failed_copy`` and ``results_set_aside`` when written); default ``{}``.

    Attributes:
        info: the ``info`` dict given (``{}`` when None).
    """

    def __init__(self, message: str, info: dict | None = None):
        super().__init__(message)
        self.info = info or {}


class BuildFailed(Exception):
    """jupyter-book failed (exit status 1): it exited non-zero or wrote no ``index.html``."""


# --------------------------------------------------------------------------- helpers

def _log(msg: str = "") -> None:
    print(msg, flush=True)


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def find_root(start: Path | None = None) -> Path:
    """The repository root: the first folder holding ``_toc.yml`` and ``_config.yml`` from ``start`` upwards.

    Searches ``start`` and its parents for a folder with both ``_toc.yml`` and
    ``_config.yml``; if there is none, falls back to the folder above the freqkit package
    (two levels above this file's folder) when that holds both files too.

    Args:
        start: the folder to search from (default: the current working directory).

    Returns:
        The root folder, an absolute resolved path.

    Raises:
        BookError: no such folder in ``start`` or above, nor at the package's root.
    """
    here = (start or Path.cwd()).resolve()
    for d in (here, *here.parents):
        if (d / "_toc.yml").is_file() and (d / "_config.yml").is_file():
            return d
    pkg_root = Path(__file__).resolve().parents[2]
    if (pkg_root / "_toc.yml").is_file() and (pkg_root / "_config.yml").is_file():
        return pkg_root
    raise BookError(f"no _toc.yml/_config.yml found in {here} or above (nor in {pkg_root}); "
                    "run from the repository or pass --root")


# --------------------------------------------------------------------------- toc

def _toc_files(node: Any, where: str) -> list[str]:
    files: list[str] = []
    if isinstance(node, list):
        for i, item in enumerate(node):
            files += _toc_files(item, f"{where}[{i}]")
        return files
    if not isinstance(node, dict):
        raise BookError(f"_toc.yml: unexpected entry at {where}: {node!r}")
    if "glob" in node:
        raise BookError(f"_toc.yml: 'glob' entries are not supported by the book runner ({where}); list files")
    if "file" in node:
        files.append(str(node["file"]))
    for key in ("root",):
        if key in node:
            files.append(str(node[key]))
    for key in ("parts", "chapters", "sections", "subtrees", "entries"):
        if key in node:
            files += _toc_files(node[key], f"{where}.{key}")
    return files


def read_toc(root: Path) -> list[Path]:
    """Source files listed in ``_toc.yml`` (root first, then in order), resolved to paths.

    Reads a Jupyter Book ``jb-book`` table of contents: the ``root`` entry, then every
    ``file`` of ``parts``/``chapters``/``sections``/``subtrees``/``entries``, depth first.
    An entry without the suffix ``.ipynb`` or ``.md`` is looked up as ``<entry>.ipynb`` and
    ``<entry>.md``.

    Args:
        root: the repository root (holds ``_toc.yml``).

    Returns:
        The ``.ipynb`` and ``.md`` files as paths under ``root / "book"``, in toc order.

    Raises:
        BookError: ``_toc.yml`` is unreadable or invalid YAML, has no ``root`` entry, holds a
            ``glob`` entry or an entry that is not a mapping or list, lists a file that does
            not exist, is ambiguous (both ``.ipynb`` and ``.md``) or listed twice, or lists a
            page outside ``book/``.
    """
    toc_path = root / "_toc.yml"
    try:
        toc = yaml.safe_load(toc_path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise BookError(f"cannot read {toc_path}: {exc}") from exc
    if not isinstance(toc, dict) or "root" not in toc:
        raise BookError(f"{toc_path}: expected a jb-book toc with a 'root' entry")
    paths: list[Path] = []
    for entry in _toc_files(toc, "toc"):
        base = root / entry
        if base.suffix in (".ipynb", ".md"):
            candidates = [base]
        else:
            candidates = [base.with_name(base.name + ".ipynb"), base.with_name(base.name + ".md")]
        found = [c for c in candidates if c.is_file()]
        if not found:
            raise BookError(f"_toc.yml lists '{entry}' but no {' or '.join(c.name for c in candidates)} exists "
                            f"in {base.parent}")
        if len(found) > 1:
            raise BookError(f"_toc.yml entry '{entry}' is ambiguous: both {found[0].name} and {found[1].name} exist")
        if found[0] in paths:
            raise BookError(f"_toc.yml lists '{entry}' twice")
        try:
            found[0].relative_to(root / BOOK_DIR)
        except ValueError:
            raise BookError(f"_toc.yml entry '{entry}' is outside {BOOK_DIR}/: keep every page in {BOOK_DIR}/") from None
        paths.append(found[0])
    return paths


def chapters_in_toc(root: Path) -> list[Path]:
    """The chapters: the notebooks (``.ipynb``) of :func:`read_toc`, in toc order.

    Args:
        root: the repository root (holds ``_toc.yml``).

    Returns:
        The notebooks' paths; the ``.md`` pages are left out.

    Raises:
        BookError: as :func:`read_toc`.
    """
    return [p for p in read_toc(root) if p.suffix == ".ipynb"]


def select_chapters(chapters: list[Path], wanted: list[str] | None) -> list[Path]:
    """The chapters that ``--chapters`` asks for, in toc order.

    Each wanted name selects the chapter whose stem equals it, or else the one chapter whose
    stem starts with it (``"01"`` selects ``01_images``; note that ``"1"`` selects
    ``10_...``, not ``01_...``).  A chapter named twice is selected once.

    Args:
        chapters: the chapters in toc order (e.g. :func:`chapters_in_toc`).
        wanted: stems or stem prefixes; None or empty: every chapter.

    Returns:
        The selected chapters, in the order of ``chapters`` (not of ``wanted``).

    Raises:
        BookError: a wanted name matches no chapter, or is a prefix of several.

    Example:
        >>> from pathlib import Path
        >>> from freqkit.book.runner import select_chapters
        >>> chs = [Path("book/01_images.ipynb"), Path("book/02_filters.ipynb"), Path("book/10_summary.ipynb")]
        >>> [c.stem for c in select_chapters(chs, ["02", "01_images"])]
        ['01_images', '02_filters']
        >>> select_chapters(chs, ["0"])
        Traceback (most recent call last):
        ...
        freqkit.book.runner.BookError: --chapters: '0' is ambiguous: 01_images, 02_filters
    """
    if not wanted:
        return list(chapters)
    chosen: list[Path] = []
    for w in wanted:
        matches = [c for c in chapters if c.stem == w] or [c for c in chapters if c.stem.startswith(w)]
        if not matches:
            raise BookError(f"--chapters: no chapter in _toc.yml matches '{w}'; chapters: "
                            + (", ".join(c.stem for c in chapters) or "(none)"))
        if len(matches) > 1:
            raise BookError(f"--chapters: '{w}' is ambiguous: " + ", ".join(c.stem for c in matches))
        if matches[0] not in chosen:
            chosen.append(matches[0])
    return [c for c in chapters if c in chosen]  # toc order


# --------------------------------------------------------------------------- profiles

def load_profiles(root: Path) -> dict[str, dict]:
    """Read and check ``book/profiles.yml``.

    Each profile is a mapping of sections: ``_all`` (parameters of every chapter) and one
    section per notebook stem (parameters of that chapter), each a mapping of parameter
    names to values.  Sections naming notebooks that do not exist are caught later, by
    :func:`chapter_parameters`.

    Args:
        root: the repository root.

    Returns:
        ``{profile: {section: {parameter: value}}}`` as parsed (values not yet resolved).

    Raises:
        BookError: the file is missing or invalid YAML, is not a non-empty mapping, a
            profile or section is not a mapping, or a section sets ``profile`` (the runner
            sets it).
    """
    path = root / PROFILES_FILE
    try:
        data = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise BookError(f"profiles file not found: {path}") from None
    except yaml.YAMLError as exc:
        raise BookError(f"{path}: invalid YAML: {exc}") from exc
    if not isinstance(data, dict) or not data:
        raise BookError(f"{path}: expected a mapping of profile names to sections")
    for name, prof in data.items():
        if not isinstance(prof, dict) or not isinstance(prof.get("_all", {}), dict):
            raise BookError(f"{path}: profile '{name}' must be a mapping with an '_all' mapping "
                            "and per-chapter mappings keyed by notebook stem")
        for key, val in prof.items():
            if not isinstance(val, dict):
                raise BookError(f"{path}: profile '{name}', section '{key}' must be a mapping of parameters")
            if "profile" in val:
                raise BookError(f"{path}: profile '{name}', section '{key}': 'profile' is set by the runner")
    return data


def _substitute(value: str, name: str, values: dict[str, str]) -> str:
    """``value`` with each ``{out}``, ``{profile}``, ``{root}`` replaced (in one pass: a
    substituted text is not looked at again); any other brace is an error."""
    def one(m: re.Match) -> str:
        key = m.group(0)[1:-1]
        if m.group(0) in ("{", "}") or key not in values:
            raise BookError(f"parameter '{name}' (profiles.yml or --set): {m.group(0)!r} in {value!r} is not a "
                            "placeholder: only {out}, {profile} and {root} are substituted, and no other "
                            "brace may appear in a path")
        return values[key]

    return _BRACES.sub(one, value)


def _resolve_path_value(value: Any, name: str, *, root: Path, out: Path, profile: str) -> Any:
    if not isinstance(value, str) or not name.endswith(PATH_SUFFIXES):
        return value
    given = {"out": out, "profile": profile, "root": root}
    value = _substitute(value, name, {k: str(given[k]) for k in PLACEHOLDERS})
    p = Path(os.path.expanduser(os.path.expandvars(value)))
    return str(p if p.is_absolute() else (root / p).resolve())


def parse_overrides(items: list[str] | None) -> dict[str, Any]:
    """``["n_images=8", "datasets=[cifar10]"]`` -> ``{"n_images": 8, "datasets": ["cifar10"]}``.

    Values are parsed as YAML (the syntax of profiles.yml, PyYAML's YAML 1.1), so numbers,
    lists and mappings keep their types; a bare word stays a string.  YAML 1.1 rules apply:
    an empty value is None, ``yes``/``no``/``on``/``off`` are booleans, and a float in
    exponent notation needs a dot (``1.0e-3``; ``1e-3`` stays the string ``"1e-3"``).

    Args:
        items: the ``--set`` arguments, each ``NAME=VALUE`` (split at the first ``=``, the
            name stripped); None: no overrides.

    Returns:
        ``{name: value}``; a name given twice keeps its last value.

    Raises:
        BookError: an item without ``=`` or whose name is not a Python identifier, the name
            ``profile`` (set by ``--profile``), or a value that is not valid YAML.

    Example:
        >>> from freqkit.book.runner import parse_overrides
        >>> parse_overrides(["n_images=8", "datasets=[cifar10]", "device=cpu", "eps=0.5"])
        {'n_images': 8, 'datasets': ['cifar10'], 'device': 'cpu', 'eps': 0.5}
        >>> parse_overrides(["eps=1e-3", "eps2=1.0e-3"])
        {'eps': '1e-3', 'eps2': 0.001}
    """
    out: dict[str, Any] = {}
    for item in items or []:
        name, sep, value = item.partition("=")
        name = name.strip()
        if not sep or not name.isidentifier():
            raise BookError(f"--set expects NAME=VALUE with NAME a parameter name, got {item!r}")
        if name == "profile":
            raise BookError("--set: 'profile' is set by --profile")
        try:
            out[name] = yaml.safe_load(value)
        except yaml.YAMLError as exc:
            raise BookError(f"--set {name}: value {value!r} is not valid YAML: {exc}") from exc
    return out


def chapter_parameters(profiles: dict, profile: str, stem: str, *, root: Path, out: Path,
                       known_stems: set[str], overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """The parameters one chapter is executed with under ``profile``.

    ``{"profile": profile}``, updated with the profile's ``_all`` section, then its section
    for ``stem``, then ``overrides`` (later wins).  Path parameters (names ending in
    ``_dir``, ``_root``, ``_path`` or ``_file``) with string values have exactly the
    placeholders ``{out}``, ``{profile}`` and ``{root}`` replaced (plain substitution, never
    ``str.format``: no attribute or index look-ups), then ``~`` and environment variables
    expanded, and are made absolute against ``root``; other values are passed unchanged.

    Args:
        profiles: the result of :func:`load_profiles`.
        profile: the profile's name.
        stem: the chapter's notebook stem.
        root: the repository root (relative paths are resolved against it).
        out: the output folder (``{out}``).
        known_stems: the stems of every notebook under ``book/`` (a profile section for any
            other name is an error).
        overrides: the ``--set`` values (:func:`parse_overrides`); default: none.

    Returns:
        ``{name: value}`` with every shared parameter (``profile``, ``data_root``,
        ``cache_dir``, ``device``, ``seed``, ``results_dir``) and the chapter's own.

    Raises:
        BookError: an unknown ``profile``; a section for a notebook not in ``known_stems``;
            a shared parameter missing; a path value with a brace that is not one of the
            placeholders ``{out}``, ``{profile}``, ``{root}`` (the message names the parameter).
    """
    if profile not in profiles:
        raise BookError(f"unknown profile '{profile}'; {root / PROFILES_FILE} defines: " + ", ".join(profiles))
    prof = profiles[profile]
    unknown = [k for k in prof if k != "_all" and k not in known_stems]
    if unknown:
        raise BookError(f"profiles.yml: profile '{profile}' has sections for notebooks that do not exist in "
                        f"{BOOK_DIR}/: {', '.join(unknown)} (keys are notebook stems, e.g. 01_images_as_frequencies)")
    params: dict[str, Any] = {"profile": profile}
    params.update(prof.get("_all") or {})
    params.update(prof.get(stem) or {})
    params.update(overrides or {})
    missing = [k for k in SHARED_PARAMETERS if k not in params]
    if missing:
        raise BookError(f"profiles.yml: profile '{profile}' does not set {', '.join(missing)} for '{stem}' "
                        f"(every chapter gets {', '.join(SHARED_PARAMETERS)})")
    return {k: _resolve_path_value(v, k, root=root, out=out, profile=profile) for k, v in params.items()}


# --------------------------------------------------------------------------- notebooks

def _read_nb(path: Path):
    import nbformat

    try:
        return nbformat.read(str(path), as_version=4)
    except Exception as exc:  # noqa: BLE001 - any parse error is a config error
        raise BookError(f"cannot read notebook {path}: {exc}") from exc


def check_source(path: Path, params: dict[str, Any]) -> None:
    """Check that a chapter has exactly one 'parameters' cell, which defines every injected name.

    Run on every chosen chapter before any is executed, so that a typo in profiles.yml or
    ``--set`` stops the run at once.  The names defined are read with
    ``papermill.inspect_notebook``.

    Args:
        path: the source notebook.
        params: the parameters it will be given (:func:`chapter_parameters`).

    Returns:
        None.

    Raises:
        BookError: the notebook cannot be read, has no cell tagged ``parameters`` or more
            than one, or ``params`` holds a name its parameters cell does not define.
    """
    import papermill

    nb = _read_nb(path)
    tagged = [i for i, c in enumerate(nb.cells) if "parameters" in c.get("metadata", {}).get("tags", [])]
    if not tagged:
        raise BookError(f"{path.name}: no cell tagged 'parameters' (papermill needs one; it must define "
                        f"{', '.join(SHARED_PARAMETERS)})")
    if len(tagged) > 1:
        raise BookError(f"{path.name}: {len(tagged)} cells tagged 'parameters' (cells {tagged}); keep exactly one")
    declared = papermill.inspect_notebook(str(path))
    unknown = [k for k in params if k not in declared]
    if unknown:
        raise BookError(f"{path.name}: profile parameters not defined in its parameters cell: {', '.join(unknown)} "
                        f"(defined there: {', '.join(declared) or 'nothing'})")


def _error_outputs(nb) -> list[tuple[int, Any, Any]]:
    errs = []
    for i, cell in enumerate(nb.cells):
        for out in cell.get("outputs", []):
            if out.get("output_type") == "error":
                errs.append((i, cell, out))
    return errs


def _source_index(nb, index: int) -> int:
    """Index in the source notebook of cell ``index`` of the executed one (papermill inserts
    an 'injected-parameters' cell)."""
    skip = sum(1 for c in nb.cells[:index] if "injected-parameters" in c.get("metadata", {}).get("tags", []))
    return index - skip


def check_executed(nb, name: str) -> dict[str, Any]:
    """Check an executed copy: no error output, and widgets that work in the static book.

    Every displayed widget view must have saved widget state (``store_widget_state``), and
    no saved widget may be a ``Play`` widget or come from ``interact``/``interactive``
    (neither works without a kernel).

    Args:
        nb: the executed notebook (an ``nbformat`` v4 notebook node).
        name: the chapter's name, for the messages.

    Returns:
        ``{"widget_views": int, "widget_models": int}``: widget views displayed and widget
        models saved.

    Raises:
        ChapterFailed: a cell has an error output (the message names the cell, in the
            source and the executed copy, with the head of its source and the traceback's
            tail), widget views without saved state, a Play widget, or ``interact``.
    """
    errs = _error_outputs(nb)
    if errs:
        i, cell, out = errs[0]
        raise ChapterFailed(_failure_message(name, i, _source_index(nb, i), cell.get("source", ""),
                                             out.get("ename", "?"), out.get("evalue", ""), out.get("traceback", [])))
    views: list[str] = []
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            data = out.get("data", {})
            if WIDGET_VIEW in data:
                views.append(data[WIDGET_VIEW].get("model_id"))
    state = nb.metadata.get("widgets", {}).get(WIDGET_STATE, {}).get("state", {})
    if views and not state:
        raise ChapterFailed(f"chapter {name}: displays {len(views)} widget(s) but the executed copy has no saved "
                            f"widget state (metadata.widgets['{WIDGET_STATE}'])")
    missing = [m for m in views if m not in state]
    if missing:
        raise ChapterFailed(f"chapter {name}: widget views {missing[:3]} have no saved state")
    for model_id, model in state.items():
        mname = model.get("model_name", "")
        classes = model.get("state", {}).get("_dom_classes", [])
        if mname == "PlayModel":
            raise ChapterFailed(f"chapter {name}: uses a Play widget, which does not work in the static book "
                                "(use freqkit.book.widgets.image_slider)")
        if "widget-interact" in classes:
            raise ChapterFailed(f"chapter {name}: uses interact/interactive, whose callbacks need a kernel and do "
                                "nothing in the static book (precompute frames: freqkit.book.widgets.image_slider)")
    return {"widget_views": len(views), "widget_models": len(state)}


def _failure_message(name: str, index: int, src_index: int, source: str, ename: str, evalue: str,
                     traceback: list[str] | None = None) -> str:
    head = "\n".join(source.splitlines()[:8])
    more = " ..." if len(source.splitlines()) > 8 else ""
    tb = _ANSI.sub("", "\n".join(traceback or [])).strip()
    tb_tail = "\n".join(tb.splitlines()[-25:]) if tb else ""
    return (f"chapter {name} failed in cell {src_index} of the source notebook "
            f"(cell {index} of the executed copy):\n"
            f"{textwrap.indent(head + more, '    | ')}\n"
            f"{ename}: {evalue}"
            + (f"\n--- traceback (last lines) ---\n{tb_tail}" if tb_tail else ""))


def _running_cell(path: Path):
    """The cell papermill was running when a chapter died (from the autosaved partial copy)."""
    try:
        import nbformat

        nb = nbformat.read(str(path), as_version=4)
    except Exception:  # noqa: BLE001
        return None, None
    for i, c in enumerate(nb.cells):
        if c.get("metadata", {}).get("papermill", {}).get("status") == "running":
            return nb, i
    return nb, None


def kernel_check(kernel_name: str) -> None:
    """Check that the Jupyter kernel runs this interpreter (so chapters see the same freqkit/torch).

    A kernel spec whose command is a bare ``python``, ``python3`` or ``pythonX.Y`` passes
    (jupyter_client runs it as ``sys.executable``); otherwise its executable must resolve to
    this interpreter.

    Args:
        kernel_name: the kernel's name (``--kernel``, default ``"python3"``).

    Returns:
        None.

    Raises:
        BookError: no kernel of that name, or it runs another interpreter.
    """
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

    try:
        spec = KernelSpecManager().get_kernel_spec(kernel_name)
    except NoSuchKernel:
        raise BookError(f"no Jupyter kernel named '{kernel_name}' (pip install ipykernel)") from None
    exe = spec.argv[0] if spec.argv else ""
    if exe in ("python", "python3", f"python{sys.version_info[0]}.{sys.version_info[1]}"):
        return  # jupyter_client substitutes sys.executable
    if Path(exe).resolve() != Path(sys.executable).resolve():
        raise BookError(f"kernel '{kernel_name}' runs {exe}, not this interpreter {sys.executable}; "
                        f"pass --kernel with a kernel of this environment (its spec: {spec.resource_dir})")


# --------------------------------------------------------------------------- run record

class RunRecord:
    """run.json next to the executed copies: per-chapter status, timings, parameters.

    Opening a record keeps the chapters of an earlier run of the same profile (so that a
    build after ``--chapters`` knows the other chapters' executed copies); a file of another
    profile, or an unreadable one, is started afresh.  Every change is saved at once,
    atomically (:func:`freqkit._io.atomic_write_json`).

    Args:
        path: the ``run.json`` file (need not exist).
        profile: the profile of this run.

    Attributes:
        path: the file.
        data: the record: ``profile``, ``chapters`` (``{stem: info}``), and after
            :meth:`start` ``started``, ``finished``, ``command``, ``status``, ``python``,
            ``build``.
    """

    def __init__(self, path: Path, profile: str):
        self.path = path
        data: dict[str, Any] = {}
        if path.is_file():
            try:
                data = json.loads(path.read_text())
            except (OSError, json.JSONDecodeError):
                data = {}
        if data.get("profile") != profile:
            data = {}
        data.setdefault("profile", profile)
        data.setdefault("chapters", {})
        self.data = data
        self._guard = threading.RLock()  # chapters run side by side (--jobs) record from several threads

    def start(self, argv: list[str]) -> None:
        """Mark the run as started (status ``"running"``) with its command line, and save."""
        self.data.update({"started": _now(), "finished": None, "command": argv, "status": "running",
                          "python": sys.executable, "build": None})
        self.save()

    def chapter(self, stem: str, **info: Any) -> None:
        """Store (replace) chapter ``stem``'s info, and save."""
        with self._guard:
            self.data["chapters"][stem] = info
            self.save()

    def finish(self, status: str, **info: Any) -> None:
        """Mark the run as finished with ``status`` (and extra top-level ``info``), and save."""
        with self._guard:
            self.data.update({"finished": _now(), "status": status, **info})
            self.save()

    def save(self) -> None:
        """Write :attr:`data` to :attr:`path` atomically (JSON, key order kept, non-JSON values as str)."""
        with self._guard:
            atomic_write_json(self.data, self.path, sort_keys=False, default=str)


# --------------------------------------------------------------------------- staging

def sync_assets(root: Path, stage: Path) -> None:
    """Copy _config.yml, _toc.yml and book/'s non-notebook files into the staging tree.

    Files ending in ``.ipynb`` or ``.pyc`` and the folders ``.ipynb_checkpoints``,
    ``__pycache__`` and ``_build`` are skipped; a file whose staged copy has the same size
    and is not older is not copied again.  Files deleted from ``book/`` are not deleted
    from the staging tree.

    Args:
        root: the repository root.
        stage: the staging folder (``<out>/executed/<profile>``), created if needed.

    Returns:
        None.

    Raises:
        FileNotFoundError: ``_config.yml`` or ``_toc.yml`` is missing in ``root``.
    """
    stage.mkdir(parents=True, exist_ok=True)
    for name in ("_config.yml", "_toc.yml"):
        shutil.copy2(root / name, stage / name)
    src_book = root / BOOK_DIR
    for dirpath, dirnames, filenames in os.walk(src_book):
        dirnames[:] = [d for d in dirnames if d not in SKIP_DIRS]
        rel = Path(dirpath).relative_to(src_book)
        target = stage / BOOK_DIR / rel
        target.mkdir(parents=True, exist_ok=True)
        for fn in filenames:
            if fn.endswith(SKIP_COPY):
                continue
            src, dst = Path(dirpath) / fn, target / fn
            if dst.exists() and dst.stat().st_size == src.stat().st_size and dst.stat().st_mtime >= src.stat().st_mtime:
                continue
            shutil.copy2(src, dst)


def _write_nb(nb, path: Path) -> None:
    import nbformat

    nbformat.write(nb, str(path))


#: What each profile is for, as the pages say it (book/profiles.yml holds the parameters).
PROFILE_NOTES = {
    "smoke": "The smoke profile runs seconds per chapter on tiny subsets, to test the pipeline: its numbers and "
             "verdicts are not conclusions.",
    "cpu": "The cpu profile runs the experiments on real CIFAR-10 and MNIST within the budget of a 2-core CPU "
           "(smaller models and subsets than a GPU allows; each chapter states its n and seeds).",
    "gpu": "The gpu profile runs the full experiments on one GPU.",
}


#: Tags that already decide how a cell's code is shown; :func:`present` leaves such cells alone.
SHOW_TAGS = ("remove-cell", "remove-input", "hide-input", "hide-cell", "show-input")


def scrub_paths(text: str, places: dict[str, Path]) -> str:
    """``text`` with every absolute path under one of ``places`` written relative to its name.

    A reader's page should not show the build machine's folders: ``/tmp/x/_build/results``
    becomes ``<out>/results`` for ``places={"out": Path("/tmp/x/_build")}``.  Longer places
    are replaced first (an out folder inside the repository stays ``<out>``).

    Args:
        text: any text (a cell output, a parameter value).
        places: ``{name: absolute folder}``.

    Returns:
        The text with ``str(folder)`` replaced by ``<name>`` (also in resolved form).

    Example:
        >>> scrub_paths("saved /tmp/b/_build/results/x.json", {"out": Path("/tmp/b/_build")})
        'saved <out>/results/x.json'
    """
    pairs = []
    for name, folder in places.items():
        for form in {str(folder), str(Path(folder).resolve())}:
            if form and form != "/":
                pairs.append((form, f"<{name}>"))
    for form, repl in sorted(pairs, key=lambda t: -len(t[0])):
        text = text.replace(form, repl)
    return text


def present(nb, params: dict[str, Any], places: dict[str, Path]) -> dict[str, Any]:
    """Prepare an executed chapter for readers, in place: plumbing folded, logs out, no local paths.

    * the ``parameters`` cell and papermill's ``injected-parameters`` cell are removed from
      the page (tag ``remove-cell``); a note after the title says which profile built the
      page and lists its parameters (folded);
    * every other code cell's code is folded (tag ``hide-input``) unless a tag of
      :data:`SHOW_TAGS` already decides it: the page shows results, the code is one click away;
    * stderr streams (warnings, logs) are taken off the page and returned (the run record
      keeps them), so that a reader meets results, not logs;
    * absolute paths of ``places`` (and of ``$FREQKIT_DATA``) in text outputs are written
      relative to their name (:func:`scrub_paths`).

    Args:
        nb: an executed notebook (``nbformat`` v4 node).
        params: the parameters it ran with (``profile`` among them).
        places: ``{name: folder}`` to scrub from outputs, e.g. ``{"out": ..., "root": ...}``.

    Returns:
        ``{"stderr": [lines taken off the page], "folded": n, "removed": n}``.
    """
    places = dict(places)
    if os.environ.get("FREQKIT_DATA"):
        places.setdefault("data", Path(os.environ["FREQKIT_DATA"]))
    stderr, folded, removed = [], 0, 0
    for cell in nb.cells:
        tags = cell.setdefault("metadata", {}).setdefault("tags", [])
        if cell.get("cell_type") != "code":
            continue
        if "parameters" in tags or "injected-parameters" in tags:
            if "remove-cell" not in tags:
                tags.append("remove-cell")
                removed += 1
            continue
        if not any(t in tags for t in SHOW_TAGS):
            tags.append("hide-input")
            folded += 1
        kept = []
        for out in cell.get("outputs", []):
            if out.get("output_type") == "stream" and out.get("name") == "stderr":
                stderr.append(out.get("text", "") if isinstance(out.get("text"), str) else "".join(out["text"]))
                continue
            if out.get("output_type") == "stream":
                out["text"] = scrub_paths(out["text"] if isinstance(out["text"], str) else "".join(out["text"]), places)
            for mime in ("text/plain", "text/markdown", "text/html"):
                data = out.get("data", {})
                if mime in data:
                    v = data[mime] if isinstance(data[mime], str) else "".join(data[mime])
                    data[mime] = scrub_paths(v, places)
            kept.append(out)
        cell["outputs"] = kept
    import nbformat

    shown = {k: scrub_paths(str(v), places) for k, v in params.items() if k != "profile"}
    rows = "\n".join(f"| `{k}` | `{v}` |" for k, v in shown.items())
    note = nbformat.v4.new_markdown_cell(
        # a colon fence: a backtick fence's info string may not hold the backticks of the title
        f":::{{admonition}} Built with the `{params.get('profile', '?')}` profile\n:class: dropdown note\n"
        f"{PROFILE_NOTES.get(params.get('profile'), '')} Every number on this page comes from this run "
        f"(`python -m freqkit.book --profile {params.get('profile', '?')}`), with these parameters:\n\n"
        f"| parameter | value |\n|---|---|\n{rows}\n:::")
    note.metadata["tags"] = ["freqkit-profile"]
    first_md = next((i for i, c in enumerate(nb.cells) if c.get("cell_type") == "markdown"), -1)
    nb.cells.insert(first_md + 1, note)
    return {"stderr": stderr, "folded": folded, "removed": removed}


def executed_path(stage: Path, root: Path, source: Path) -> Path:
    """Where the executed copy of chapter ``source`` lies: ``stage / source.relative_to(root)``.

    Args:
        stage: the staging folder.
        root: the repository root.
        source: the chapter's source notebook, under ``root``.

    Returns:
        The path (it need not exist).

    Raises:
        ValueError: ``source`` is not under ``root``.
    """
    return stage / source.relative_to(root)


# --------------------------------------------------------------------------- execute

def results_file(params: dict[str, Any], stem: str) -> Path | None:
    """A chapter's results file: ``<results_dir>/<stem>.json``, where ``results_dir`` is its parameter.

    Args:
        params: the chapter's parameters (:func:`chapter_parameters`).
        stem: the chapter's notebook stem.

    Returns:
        The path (it need not exist), or None when ``params`` has no ``results_dir`` (or it is
        empty or None).
    """
    results_dir = params.get("results_dir")
    return Path(results_dir) / f"{stem}.json" if results_dir else None


def _set_aside(info: dict[str, Any], partial: Path, failed: Path, results: Path | None, results_aside: Path) -> None:
    """After a failure or an interruption: the partial copy to ``failed``, the run's results file aside."""
    if partial.exists():
        failed.parent.mkdir(parents=True, exist_ok=True)
        os.replace(partial, failed)
        info["failed_copy"] = str(failed)
    if results is not None and results.exists():
        try:
            results_aside.parent.mkdir(parents=True, exist_ok=True)
            shutil.move(str(results), str(results_aside))  # results_dir may lie on another file system
            info["results_set_aside"] = str(results_aside)
        except OSError as exc:
            results.unlink(missing_ok=True)
            info["results_removed"] = f"{results} (could not move it to {results_aside}: {exc})"


def _papermill(source: Path, partial: Path, cwd: Path, name: str, params: dict[str, Any], kernel: str,
               timeout: int | None, log_output: bool, progress: bool) -> str | None:
    """Run papermill on ``source`` into ``partial``; None if it ran through, else the failure message."""
    import papermill
    from papermill.exceptions import PapermillExecutionError

    try:
        papermill.execute_notebook(
            str(source), str(partial), parameters=params, kernel_name=kernel, cwd=str(cwd),
            progress_bar={"desc": name, "file": sys.stderr, "mininterval": 2.0, "ascii": True} if progress else False,
            log_output=log_output, request_save_on_cell_execute=True, execution_timeout=timeout,
            store_widget_state=True,
        )
    except PapermillExecutionError as exc:
        import nbformat

        nb = nbformat.read(str(partial), as_version=4) if partial.exists() else None
        # papermill added error banner cells; the index it reported counts cells without them
        src_index = exc.cell_index
        if nb is not None:
            nb_cells = [c for c in nb.cells if "papermill-error-cell-tag" not in c.get("metadata", {}).get("tags", [])]
            nb.cells = nb_cells
            src_index = _source_index(nb, exc.cell_index)
        return _failure_message(name, exc.cell_index, src_index, exc.source, exc.ename, exc.evalue, exc.traceback)
    except Exception as exc:  # kernel died, cell timeout, ...
        nb, idx = _running_cell(partial)
        if nb is not None and idx is not None:
            return _failure_message(name, idx, _source_index(nb, idx), nb.cells[idx].get("source", ""),
                                    type(exc).__name__, str(exc).strip().splitlines()[0] if str(exc).strip() else "")
        return f"chapter {name} failed: {type(exc).__name__}: {exc}"
    return None


def execute_chapter(source: Path, *, root: Path, stage: Path, params: dict[str, Any], kernel: str,
                    timeout: int | None, log_output: bool, progress: bool) -> dict[str, Any]:
    """Execute one chapter with papermill into the staging tree, then check it.

    The kernel runs in the executed copy's folder; widget state is saved.  The copy is
    written under ``<stage>/.partial/`` (saved after every cell) and moved to
    :func:`executed_path` only when the chapter ran without error and passed
    :func:`check_executed`; a failed (or interrupted) copy is moved to ``<stage>/failed/``.
    Stale copies of the chapter are deleted first, and ``params["results_dir"]`` is created.

    The chapter's results file (:func:`results_file`) counts only when the chapter finished:
    one left by an earlier run is deleted before the chapter starts (and said so), and one
    written by this run is moved to ``<stage>/failed/results/<stem>.json`` when the chapter
    fails or is interrupted (what an earlier failure left there is deleted first).

    Args:
        source: the chapter's source notebook.
        root: the repository root.
        stage: the staging folder (``<out>/executed/<profile>``).
        params: the parameters injected by papermill (:func:`chapter_parameters`).
        kernel: the Jupyter kernel's name.
        timeout: seconds allowed per cell; None: no limit.
        log_output: stream the cells' output.
        progress: show papermill's per-cell progress bar (on stderr).

    Returns:
        The chapter's info for ``run.json``: ``status`` (``"ok"``), ``seconds``, ``source``,
        ``source_sha256``, ``parameters``, ``finished``, ``widget_views``,
        ``widget_models``, ``executed``, ``executed_sha256``, ``code_cells`` and
        ``slowest_cells`` (the three slowest code cells, by source index).

    Raises:
        ChapterFailed: a cell raised, the kernel died or timed out, or
            :func:`check_executed` failed; its ``info`` holds the failed record (with
            ``error`` and, when written, ``failed_copy`` and ``results_set_aside``).
        ChapterInterrupted: Ctrl-C (KeyboardInterrupt) while the chapter ran; its ``info``
            holds the record with status ``"interrupted"`` (and ``failed_copy``,
            ``results_set_aside`` when written).
    """
    name = source.stem
    final = executed_path(stage, root, source)
    partial = stage / ".partial" / source.relative_to(root)
    failed = stage / "failed" / source.relative_to(root)
    results = results_file(params, name)
    results_aside = stage / "failed" / "results" / f"{name}.json"
    for p in (final, partial, failed, results_aside):
        if p.exists():
            p.unlink()  # never leave a stale copy of a chapter that is being re-run
    if results is not None and results.exists():
        results.unlink()  # nor an earlier run's results, which a chapter failing early would leave as if valid
        _log(f"  removed the results file of an earlier run of {name}: {results}")
    partial.parent.mkdir(parents=True, exist_ok=True)
    final.parent.mkdir(parents=True, exist_ok=True)
    if results is not None:
        results.parent.mkdir(parents=True, exist_ok=True)

    t0 = time.perf_counter()

    def chapter_info(status: str) -> dict[str, Any]:
        return {"status": status, "seconds": round(time.perf_counter() - t0, 2), "source": str(source),
                "source_sha256": _sha256(source), "parameters": params, "finished": _now()}

    try:
        error = _papermill(source, partial, final.parent, name, params, kernel, timeout, log_output, progress)
        info = chapter_info("failed")
        if error is None:
            try:
                nb = _read_nb(partial)
                info.update(check_executed(nb, name))
            except (ChapterFailed, BookError) as exc:
                error = str(exc)
        if error is not None:
            _set_aside(info, partial, failed, results, results_aside)
            info["error"] = error
            raise ChapterFailed(error, info) from None
    except KeyboardInterrupt:
        info = chapter_info("interrupted")
        _set_aside(info, partial, failed, results, results_aside)
        info["error"] = "interrupted (KeyboardInterrupt)"
        raise ChapterInterrupted(f"chapter {name} was interrupted", info) from None

    cells = []
    for i, c in enumerate(nb.cells):
        d = c.get("metadata", {}).get("papermill", {}).get("duration")
        if c.get("cell_type") == "code" and d is not None:
            cells.append((round(float(d), 2), _source_index(nb, i)))
    info["presentation"] = present(nb, params, {"out": stage.parents[1], "root": root, "home": Path.home()})
    _write_nb(nb, partial)
    os.replace(partial, final)
    info.update({"status": "ok", "executed": str(final), "executed_sha256": _sha256(final),
                 "code_cells": len(cells), "slowest_cells": [{"cell": i, "seconds": s} for s, i in
                                                             sorted(cells, reverse=True)[:3]]})
    return info


# --------------------------------------------------------------------------- build

def jupyter_book_executable() -> list[str]:
    """The command that runs jupyter-book: the one next to this interpreter, else the one on PATH.

    Returns:
        ``[path]`` of the ``jupyter-book`` executable.

    Raises:
        BookError: jupyter-book is not installed.
    """
    exe = Path(sys.executable).with_name("jupyter-book")
    if exe.is_file():
        return [str(exe)]
    found = shutil.which("jupyter-book")
    if found:
        return [found]
    raise BookError("jupyter-book is not installed in this environment (pip install -r requirements.txt)")


def check_config(stage: Path) -> None:
    """Check the staged ``_config.yml`` and assets before building.

    Args:
        stage: the staging folder (holds ``_config.yml`` and ``book/``).

    Returns:
        None.

    Raises:
        BookError: ``execute.execute_notebooks`` is not ``"off"``; a ``_static`` folder exists
            (in ``stage`` or ``stage/book``); the vendored widget JavaScript
            (``book/_vendor/static/widgets/embed-amd.js``) is missing.
        FileNotFoundError: ``_config.yml`` is missing in ``stage``.
    """
    cfg = yaml.safe_load((stage / "_config.yml").read_text()) or {}
    mode = (cfg.get("execute") or {}).get("execute_notebooks")
    if mode != "off":
        raise BookError(f"_config.yml: execute.execute_notebooks is {mode!r}; it must be \"off\" (papermill executes "
                        "the chapters; with auto/cache/force the book would re-execute them)")
    if (stage / "_static").exists() or (stage / BOOK_DIR / "_static").exists():
        raise BookError("a _static folder exists: Jupyter Book 1 adds every .js in it to every page; vendor "
                        "JavaScript under book/_vendor/static instead")
    if not (stage / BOOK_DIR / "_vendor" / "static" / "widgets" / "embed-amd.js").is_file():
        raise BookError("book/_vendor/static is missing: fetch the pinned widget JavaScript first with "
                        "`bash book/_vendor/fetch.sh` (part of `make install`)")


def changed_inputs(path: Path) -> dict[str, str]:
    """The inputs of a summary's results file that changed since the summary was computed.

    A chapter that summarises others (chapter 9) stores in its setting ``"inputs"``:
    ``{stem: SHA-256 of <stem>.json, or None where there was none}``, as returned by
    :func:`freqkit.hypotheses.collect_verdicts`.  Each is compared with the file
    ``<stem>.json`` now beside ``path``.

    Args:
        path: a results file (``<results_dir>/<stem>.json``).

    Returns:
        ``{stem: what changed}`` for each input whose file now differs, is missing, or
        exists although it did not then; ``{}`` when nothing changed, or when ``path`` does
        not exist, is not a JSON object, or its setting has no ``"inputs"``.

    Raises:
        BookError: ``"inputs"`` is not a mapping of stems to SHA-256 strings (or None).
    """
    try:
        stored = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    setting = stored.get("setting") if isinstance(stored, dict) else None
    inputs = setting.get("inputs") if isinstance(setting, dict) else None
    if inputs is None:
        return {}
    if not isinstance(inputs, dict) or not all(isinstance(k, str) and (v is None or isinstance(v, str))
                                               for k, v in inputs.items()):
        raise BookError(f"{path}: setting 'inputs' must map chapter stems to SHA-256 strings (or null), "
                        f"got {inputs!r}")
    changed = {}
    for stem, digest in inputs.items():
        f = path.parent / f"{stem}.json"
        now = _sha256(f) if f.is_file() else None
        if now == digest:
            continue
        if digest is None:
            changed[stem] = f"{f} was written since (it was not there)"
        elif now is None:
            changed[stem] = f"{f} is missing (removed since)"
        else:
            changed[stem] = f"{f} changed since"
    return changed


VERDICTS_MARKER = "<!-- freqkit:verdicts -->"
_CHAPTER_LINK = re.compile(r"\[([^\]]+)\]\(([\w.-]+)\.ipynb\)")


def verdicts_markdown(results_dir: Path, titles: dict[str, str] | None = None, present=None) -> str:
    """The landing page's table: every hypothesis and check, its verdicts, and where it is tested.

    Generated from the stored results (:func:`freqkit.hypotheses.collect_verdicts`), one row
    per hypothesis id with the verdict per data set; the chapter is a link to its page.

    Args:
        results_dir: the profile's results store.
        titles: ``{chapter stem: page title}`` for the links (default: the stem).
        present: the chapter stems in this build (a link to any other would dangle: those
            chapters are named without a link); None = every chapter.

    Returns:
        A Markdown table (with a line saying so when nothing has been run).
    """
    found = hypotheses.collect_verdicts(results_dir)
    by_id: dict[str, list] = {}
    for r in found["rows"]:
        by_id.setdefault(r["id"], []).append(r)
    lines = ["| | claim | verdict | tested in |", "|---|---|---|---|"]
    for hid, h in hypotheses.HYPOTHESES.items():
        rows = by_id.get(hid, [])
        words = []
        for r in rows:
            where = r.get("dataset") or ""
            words.append(f"**{r['verdict']}**" + (f" ({where})" if where else ""))
        name = (titles or {}).get(h.chapter, h.chapter)
        chapter = f"[{name}]({h.chapter}.ipynb)" if present is None or h.chapter in present else name
        lines.append(f"| {hid} | {h.statement} | {'; '.join(words) or 'not run'} | {chapter} |")
    return "\n".join(lines)


MEASURED_START, MEASURED_END = "<!-- measured:start -->", "<!-- measured:end -->"


def _criteria_summary(row: dict) -> str:
    """One cell: each criterion's effect with its CI, decision and seed agreement (or the legacy evidence)."""
    if not row.get("criteria"):
        return chapters.evidence_summary(row["evidence"], max_items=4) or "-"
    parts = []
    for c in row["criteria"]:
        lo, hi = (float(v) for v in c["ci"])  # stored JSON writes inf as "inf"
        seeds = f", {c['seeds_agreeing']}/{len(c['per_seed_decisions'])} seeds" if c.get("per_seed_decisions") else ""
        parts.append(f"{c['name']} {float(c['mean']):+.3g} [{lo:+.3g}, {hi:+.3g}] ({'>' if c['direction'] == 'greater' else '<'}"
                     f" {c['delta'] if c['direction'] == 'greater' or not c['delta'] else -c['delta']:g}: "
                     f"{c['decision']}{seeds})")
    return "; ".join(parts)


#: The committed record of the measured verdicts of a profile, relative to the repository root
#: (:func:`store_measured`); the README's measured block is rendered from it.
MEASURED_RECORD = "book/measured/{profile}.json"


def _real_rows(rows) -> list[dict]:
    return [r for r in rows if r["verdict"] not in ("not run", "no verdict stored")]


def store_measured(record_file: Path, results_dir: Path, profile: str, run: dict | None = None,
                   machine: str | None = None, chapters_: Sequence[str] | None = None) -> dict:
    """Merge the verdicts of a run into the committed record of a profile's measured verdicts.

    A chapter's runs take hours on 2 cores, so one session rarely runs the whole cpu
    profile; the record keeps, per chapter, the verdicts of the last run that stored any,
    with that run's commit, date, machine and time, so that the README's measured block
    (:func:`update_readme`) can be regenerated from files in the repository and no figure
    in it is typed by hand.  Chapters of the run replace their earlier rows; the others stay.
    A run of a chapter on some of its data sets only (``--set 'datasets=[cifar10]'``: the
    ``datasets`` parameter in ``run``) replaces only the rows of those data sets (a row's
    data set is the first name of its ``dataset`` field, e.g. ``"cifar10, standard"`` ->
    cifar10); the chapter then lists one entry per run that still supplies rows, each with
    the data sets it covered.

    Args:
        record_file: the record (``book/measured/<profile>.json``, :data:`MEASURED_RECORD`); need not exist.
        results_dir: the results store of the run (:func:`freqkit.save_results`).
        profile: the profile of the run.
        run: the run's ``run.json`` data (:class:`RunRecord`), for each chapter's seconds and
            ``datasets`` parameter; optional (without it every chapter counts as run on all its data sets).
        machine: the machine that ran it (e.g. :func:`freqkit._runtime.cpu_name`); optional.
        chapters_: the chapter stems this run executed (default: every chapter of the store
            that stored verdicts); results of other chapters in the store are left out.

    Returns:
        The record written: ``{"profile", "chapters": {stem: {"commit", "date", "machine",
        "seconds", "results_sha256"}}, "rows": [...]}`` (rows as :func:`freqkit.hypotheses.collect_verdicts`
        makes them, placeholders left out); after a run on some data sets of a chapter whose
        other data sets' rows stay, ``chapters[stem]`` is a list of such entries, each with
        ``"datasets"``.

    Raises:
        ValueError: the record holds another profile, or a stored verdict of the run names another profile.
        OSError: the record cannot be written.
    """
    record_file, results_dir = Path(record_file), Path(results_dir)
    if not results_dir.is_dir():
        raise ValueError(f"results_dir: {results_dir} is not a folder (a results store of the run)")
    rec = {"profile": profile, "chapters": {}, "rows": []}
    if record_file.is_file():
        try:
            rec = json.loads(record_file.read_text())
        except json.JSONDecodeError as e:
            raise ValueError(f"record_file: {record_file} is not valid JSON ({e})") from e
        if rec.get("profile") != profile:
            raise ValueError(f"record_file: {record_file} holds the {rec.get('profile')!r} profile, not {profile!r}")
    found = hypotheses.collect_verdicts(results_dir)
    ran = [stem for stem, st in found["chapters"].items() if st == "ok" and (chapters_ is None or stem in chapters_)]
    new = [r for r in _real_rows(found["rows"]) if r["chapter"] in ran]
    wrong = sorted({str(r["profile"]) for r in new if r.get("profile") not in (None, profile)})
    if wrong:
        raise ValueError(f"results_dir: {results_dir} holds verdicts of the {', '.join(wrong)} profile, not {profile!r}")
    runs = dict(rec.get("chapters") or {})
    old_rows = list(rec.get("rows") or [])
    kept = [r for r in old_rows if r["chapter"] not in ran]
    for stem in ran:
        info = ((run or {}).get("chapters") or {}).get(stem, {})
        covered = (info.get("parameters") or {}).get("datasets")
        covered = None if covered is None else sorted(str(d) for d in covered)
        # rows of this chapter on data sets the run did not cover stay, with the run that made them
        stay = [] if covered is None else [r for r in old_rows if r["chapter"] == stem and _row_dataset(r)
                                           and _row_dataset(r) not in covered]
        kept += stay
        prov = next((r["provenance"] for r in new if r["chapter"] == stem and r.get("provenance")), None) or {}
        entry = {"commit": prov.get("commit"), "date": prov.get("date"), "machine": machine,
                 "seconds": info.get("seconds"), "results_sha256": found["inputs"].get(stem)}
        if not stay:
            runs[stem] = entry if covered is None else {**entry, "datasets": covered}
            continue
        left = sorted({_row_dataset(r) for r in stay})
        earlier = []
        for e in _run_entries(runs.get(stem)):
            ds = [d for d in (e.get("datasets") or left) if d in left]
            if ds:
                earlier.append({**e, "datasets": ds})
        runs[stem] = earlier + [{**entry, "datasets": covered}]
    rows = kept + new
    order = list(dict.fromkeys(h.chapter for h in hypotheses.HYPOTHESES.values()))
    rows = _real_rows(hypotheses.complete_rows(rows, order))
    rec = {"profile": profile, "chapters": {k: runs[k] for k in sorted(runs)}, "rows": rows}
    atomic_write_json(rec, record_file)
    return rec


def _row_dataset(row: dict) -> str:
    """The data set a stored verdict was tested on: the first name of its ``dataset`` field ("" if none)."""
    return str(row.get("dataset") or "").split(",")[0].strip()


def _run_entries(info) -> list[dict]:
    """A chapter's run facts in a record as a list (one dict per run that supplied rows)."""
    if not info:
        return []
    return [dict(e) for e in info] if isinstance(info, list) else [dict(info)]


def _measured_rows(source: Path, chapters_: Sequence[str] | None) -> tuple[list[dict], dict]:
    """(rows with placeholders, per-chapter run facts) from a results store or a record file."""
    source = Path(source)
    if source.is_file():
        rec = json.loads(source.read_text())
        order = list(chapters_ or dict.fromkeys(h.chapter for h in hypotheses.HYPOTHESES.values()))
        rows = [r for r in rec.get("rows") or [] if r["chapter"] in order]
        runs = dict(rec.get("chapters") or {})
        # a chapter that ran without a verdict for some hypothesis (a subset of its data sets) says so
        return hypotheses.complete_rows(rows, order, {stem: "no verdicts" for stem in runs}), runs
    return hypotheses.collect_verdicts(source, chapters_)["rows"], {}


def measured_markdown(results_dir: Path, chapters_: Sequence[str] | None = None, link: bool = True) -> str:
    """Every stored verdict as one Markdown table, generated from the results: nothing typed by hand.

    One row per verdict: the hypothesis, the data set it was tested on, the verdict, each
    criterion's effect with its 95% CI, smallest effect of interest, decision and seed
    agreement, n images and seeds, and the chapter.  Used by the README's measured block
    (:func:`update_readme`) and chapter 9.

    Args:
        results_dir: the profile's results store, or a record file of :func:`store_measured`
            (then each chapter's commit, date, machine and time are listed under the table).
        chapters_: chapter stems to read (default: every chapter with a hypothesis).
        link: link the chapter column to its page (``<stem>.ipynb``); off for the README,
            which links into ``book/``.

    Returns:
        Markdown: a table, and a line naming the profiles and commits it came from.
    """
    rows, runs = _measured_rows(results_dir, chapters_)
    lines = ["| | tested on | verdict | criteria: effect [95% CI] (smallest effect: decision, seeds) | images, seeds | "
             "chapter |", "|---|---|---|---|---|---|"]
    commits, profiles = set(), set()
    for r in rows:
        on = r.get("dataset") or "-"
        ev = r.get("evidence") or {}
        n = f"{ev.get('n_images', '-')}, {ev.get('n_seeds', '-')}" if r.get("criteria") else "-"
        stem = r["chapter"]
        where = f"[{stem.split('_', 1)[0]}]({stem}.ipynb)" if link else f"[{stem.split('_', 1)[0]}](book/{stem}.ipynb)"
        lines.append(f"| {r['id']} | {on} | **{r['verdict']}** | {_criteria_summary(r)} | {n} | {where} |")
        if r.get("provenance"):
            commits.add(str(r["provenance"].get("commit", "?"))[:12])
        if r.get("profile"):
            profiles.add(str(r["profile"]))
    src = (f"Generated from the stored results of the {', '.join(sorted(profiles)) or '-'} profile "
           f"(commit {', '.join(sorted(commits)) or '-'}) by `python -m freqkit.book`.")
    if runs:
        src += " Runs: " + "; ".join(
            f"chapter {stem.split('_', 1)[0]}"
            + (f" ({', '.join(info['datasets'])})" if info.get("datasets") else "")
            + f": {info.get('date') or '?'}, commit {str(info.get('commit') or '?')[:12]}, "
            f"{info.get('machine') or 'machine not recorded'}"
            + (f", {float(info['seconds']):,.0f} s" if info.get("seconds") is not None else "")
            for stem, entries in sorted(runs.items()) for info in _run_entries(entries)) + "."
    return "\n".join(lines) + "\n\n" + src


def update_readme(readme: Path, results_dir: Path, profile: str) -> bool:
    """Replace the README's measured block (between :data:`MEASURED_START` and :data:`MEASURED_END`).

    Args:
        readme: the README file.
        results_dir: the results store of the run, or the committed record (:func:`store_measured`).
        profile: the profile that produced it (named in the block's heading).

    Returns:
        True if the block was replaced; False if the README has no markers.
    """
    text = readme.read_text()
    if MEASURED_START not in text or MEASURED_END not in text:
        return False
    head, rest = text.split(MEASURED_START, 1)
    _, tail = rest.split(MEASURED_END, 1)
    atomic_write_bytes(readme, (head + MEASURED_START + measured_block(results_dir, profile) + MEASURED_END
                                + tail).encode())
    return True


def measured_block(results_dir: Path, profile: str) -> str:
    """The text :func:`update_readme` puts between the README's markers.

    Args:
        results_dir: a results store or a record file (see :func:`measured_markdown`).
        profile: the profile named in the heading.

    Returns:
        Markdown, starting and ending with a newline.
    """
    return (f"\n### Measured ({profile} profile)\n\nEvery verdict of the book under the rules of "
            f"`freqkit.hypotheses`, as the last `{profile}` run of each chapter stored it (the chapters show the "
            f"figures and settings):\n\n{measured_markdown(results_dir, link=False)}\n")


def stage_pages(stage: Path, profile: str, record: "RunRecord", repo_url: str | None = None) -> None:
    """Before a build: the landing page's verdict table and every page's footer, in the staging tree.

    ``book/intro.md`` holds :data:`VERDICTS_MARKER` where :func:`verdicts_markdown` goes
    (read from the results store of the chapters' ``results_dir``); ``_config.yml`` gets an
    ``html.extra_footer`` naming the profile and the date, shown on every page, and, when the
    repository's URL is known, the repository button and the Binder and Colab launch buttons
    (they open the clean source notebooks of the repository).

    Args:
        stage: the staging folder.
        profile: the profile being built.
        record: the run record (it knows each chapter's parameters).
        repo_url: the repository's https URL (:func:`repository_url`), or None.

    Returns:
        None.
    """
    intro = stage / BOOK_DIR / "intro.md"
    results_dirs = [(info.get("parameters") or {}).get("results_dir") for info in record.data["chapters"].values()]
    results_dir = next((Path(d) for d in results_dirs if d), None)
    present = {p.stem for p in (stage / BOOK_DIR).glob("*.ipynb")}
    if intro.is_file():
        # A build of some chapters only (--chapters): links to the others would dangle (and fail -W).
        intro.write_text(_CHAPTER_LINK.sub(lambda m: m.group(0) if m.group(2) in present else m.group(1),
                                           intro.read_text()))
    if intro.is_file() and VERDICTS_MARKER in intro.read_text():
        titles = {}
        for nb_path in (stage / BOOK_DIR).glob("*.ipynb"):
            try:
                first = next(c for c in _read_nb(nb_path).cells if c.get("cell_type") == "markdown")
                titles[nb_path.stem] = first["source"].lstrip("# ").splitlines()[0].strip()
            except (StopIteration, BookError, IndexError):
                pass
        table = verdicts_markdown(results_dir, titles, present) if results_dir is not None else "(no chapter has been run)"
        table = f"**This build: the `{profile}` profile.** {PROFILE_NOTES.get(profile, '')}\n\n{table}"
        intro.write_text(intro.read_text().replace(VERDICTS_MARKER, table))
    cfg_path = stage / "_config.yml"
    cfg = yaml.safe_load(cfg_path.read_text()) or {}
    html = cfg.setdefault("html", {})
    html["extra_footer"] = (f"<p>Built with the <code>{profile}</code> profile of <code>python -m freqkit.book"
                            f"</code> on {_dt.date.today().isoformat()}; every number comes from that run.</p>")
    if repo_url:
        cfg["repository"] = {"url": repo_url, "branch": "main", "path_to_book": ""}
        html["use_repository_button"] = True
        cfg["launch_buttons"] = {**(cfg.get("launch_buttons") or {}), "binderhub_url": "https://mybinder.org",
                                 "colab_url": "https://colab.research.google.com", "notebook_interface": "classic"}
    cfg_path.write_text(yaml.safe_dump(cfg, sort_keys=False))


def repository_url(root: Path) -> str | None:
    """The repository's https URL: ``$FREQKIT_REPOSITORY_URL``, else GitHub Actions' ``$GITHUB_SERVER_URL/$GITHUB_REPOSITORY``,
    else the ``origin`` remote of ``root``'s git checkout (an ssh remote rewritten as https); None if none is known.

    Args:
        root: the repository root.

    Returns:
        The URL without a trailing ``.git``, or None.

    Example:
        >>> import os; os.environ["FREQKIT_REPOSITORY_URL"] = "https://github.com/o/freqkit.git"
        >>> repository_url(Path("."))
        'https://github.com/o/freqkit'
        >>> del os.environ["FREQKIT_REPOSITORY_URL"]
    """
    url = os.environ.get("FREQKIT_REPOSITORY_URL")
    if not url and os.environ.get("GITHUB_REPOSITORY"):
        url = f"{os.environ.get('GITHUB_SERVER_URL', 'https://github.com')}/{os.environ['GITHUB_REPOSITORY']}"
    if not url:
        try:
            url = subprocess.run(["git", "-C", str(root), "remote", "get-url", "origin"], capture_output=True,
                                 text=True, timeout=10).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            url = ""
    if not url:
        return None
    m = re.match(r"git@([^:]+):(.+)$", url)
    if m:
        url = f"https://{m.group(1)}/{m.group(2)}"
    url = url[:-4] if url.endswith(".git") else url
    return url if url.startswith("https://") else None


def install_cell_source(repo_url: str | None) -> str:
    """The first code cell of a downloaded chapter: installs freqkit when the notebook runs outside the repository.

    Inside the repository (or wherever freqkit is importable) it does nothing; elsewhere
    (Colab, Binder, a fresh environment) it installs freqkit with its book extras from the
    repository (``repo_url``; without one it says how).  Data come through torchvision's
    download (:func:`freqkit.load_dataset`), so the chapter then runs as it is.

    Args:
        repo_url: the repository's https URL, or None.

    Returns:
        Python source.
    """
    target = f'"freqkit[book] @ git+{repo_url}"' if repo_url else None
    lines = ["# Outside the freqkit repository (Colab, Binder, a fresh environment) this installs freqkit;",
             "# inside it, or wherever freqkit is importable, it does nothing.",
             "import importlib.util, subprocess, sys",
             'if importlib.util.find_spec("freqkit") is None:']
    if target:
        lines.append(f'    subprocess.check_call([sys.executable, "-m", "pip", "install", "-q", {target}])')
    else:
        lines.append('    raise SystemExit("install freqkit first: clone its repository and run pip install -e \'.[book]\'")')
    return "\n".join(lines)


def publish_sources(root: Path, html: Path, chapters: list[Path], repo_url: str | None) -> None:
    """Make each page's ".ipynb" download the clean source notebook, with :func:`install_cell_source` first.

    Jupyter Book links the executed copy (build paths, outputs); readers who download a
    chapter to run it want the source, which carries no outputs, plus a cell that installs
    freqkit where it is missing.

    Args:
        root: the repository root.
        html: the built HTML folder (``_sources/`` inside it is rewritten).
        chapters: the chapters' source notebooks.
        repo_url: the repository's https URL (:func:`repository_url`), or None.

    Returns:
        None.
    """
    import nbformat

    for src in chapters:
        target = html / "_sources" / src.relative_to(root)
        if not target.parent.is_dir():
            continue
        nb = _read_nb(src)
        cell = nbformat.v4.new_code_cell(install_cell_source(repo_url))
        cell.metadata["tags"] = ["freqkit-install"]
        first_md = next((i for i, c in enumerate(nb.cells) if c.get("cell_type") == "markdown"), -1)
        nb.cells.insert(first_md + 1, cell)
        _write_nb(nb, target)


def build_book(root: Path, stage: Path, out: Path, profile: str, chapters: list[Path],
               record: RunRecord) -> Path:
    """Build the HTML book from the executed copies with ``jupyter-book build``.

    Every chapter needs a successful executed copy of this profile, unchanged since it was
    executed (a source changed since is only noted), and a chapter whose results file
    records the results it read (``setting["inputs"]``, chapter 9) must be newer than all of
    them (:func:`changed_inputs`).  Runs ``jupyter-book build`` on the staging tree with
    warnings as errors (``-W``) and every page rebuilt (``--all``) into
    ``<out>/jb/<profile>``, then moves the HTML to ``<out>/html`` (replacing the old one).
    ``record.data["build"]`` gets the status and seconds (not saved here).

    Args:
        root: the repository root.
        stage: the staging folder (``<out>/executed/<profile>``).
        out: the output folder.
        profile: the profile's name.
        chapters: every chapter of the book (the build needs all of them).
        record: the run's :class:`RunRecord`.

    Returns:
        The HTML folder ``<out>/html``.

    Raises:
        BookError: a chapter without a successful executed copy, or whose copy changed
            since; a chapter whose results file read results that changed since (the
            message names it and them, and says to re-run it); or :func:`check_config` or
            :func:`jupyter_book_executable` failed.
        BuildFailed: jupyter-book exited non-zero or wrote no ``index.html``.
    """
    for ch in chapters:
        info = record.data["chapters"].get(ch.stem, {})
        exe = executed_path(stage, root, ch)
        if info.get("status") != "ok" or not exe.is_file():
            raise BookError(f"cannot build: chapter {ch.stem} has no successful executed copy for profile "
                            f"'{profile}' (run it, e.g. without --chapters)")
        if info.get("executed_sha256") and info["executed_sha256"] != _sha256(exe):
            raise BookError(f"cannot build: {exe} changed since it was executed; re-run chapter {ch.stem}")
        if info.get("source_sha256") != _sha256(ch):
            _log(f"  note: {ch.name} changed since it was executed under '{profile}'; the book shows the old run")
    stale = []
    for ch in chapters:
        results = results_file(record.data["chapters"][ch.stem].get("parameters") or {}, ch.stem)
        changed = changed_inputs(results) if results is not None else {}
        if changed:
            stale.append(f"chapter {ch.stem} ({results}) was computed from results that changed since: "
                         + "; ".join(f"{stem}: {why}" for stem, why in changed.items())
                         + f"; re-run it: python -m freqkit.book --profile {profile} --chapters {ch.stem}")
    if stale:
        raise BookError("cannot build: stale results\n  " + "\n  ".join(stale))
    stage_pages(stage, profile, record, repository_url(root))
    check_config(stage)
    jb_out = out / "jb" / profile
    cmd = jupyter_book_executable() + [
        "build", str(stage), "--path-output", str(jb_out), "--config", str(stage / "_config.yml"),
        "--toc", str(stage / "_toc.yml"), "--builder", "html", "-W", "--all",
    ]
    _log(f"building the book: {' '.join(cmd)}")
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=stage)
    seconds = time.perf_counter() - t0
    built = jb_out / "_build" / "html"
    if proc.returncode != 0 or not (built / "index.html").is_file():
        record.data["build"] = {"status": "failed", "seconds": round(seconds, 2)}
        raise BuildFailed(f"jupyter-book build failed (exit {proc.returncode}); warnings are errors: see its output "
                          "above")
    html = out / "html"
    old = out / ".html.old"
    if old.exists():
        shutil.rmtree(old)
    if html.exists():
        os.replace(html, old)
    publish_sources(root, built, chapters, repository_url(root))
    os.replace(built, html)
    if old.exists():
        shutil.rmtree(old)
    record.data["build"] = {"status": "ok", "seconds": round(seconds, 2), "html": str(html)}
    return html


# --------------------------------------------------------------------------- Sphinx extension

def setup(app):  # pragma: no cover - exercised by the book build
    """``freqkit.book`` is also a small Sphinx extension (``extra_extensions`` in _config.yml):

    * de-duplicates the pages' scripts: Sphinx 7.4 adds inline scripts registered after
      ``Builder.init()`` twice (as ``None`` and as ``''``), and sphinx-thebe's
      ``const THEBE_JS_URL`` then throws "Identifier has already been declared" on every page;
    * warns (an error under ``-W``) when a page loads a script from another host: every
      script is vendored so that the book works offline.

    Args:
        app: the Sphinx application.

    Returns:
        The extension's metadata: ``{"version", "parallel_read_safe", "parallel_write_safe"}``.
    """
    app.connect("html-page-context", _page_scripts, priority=900)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}


def _page_scripts(app, pagename, templatename, context, doctree) -> None:  # pragma: no cover
    from sphinx.util import logging as sphinx_logging

    files = context.get("script_files")
    if not isinstance(files, list):
        return
    seen, keep = set(), []
    for js in files:
        fn = str(getattr(js, "filename", js) or "")
        attrs = getattr(js, "attributes", {}) or {}
        key = (fn, getattr(js, "priority", None), tuple(sorted((k, str(v)) for k, v in attrs.items())))
        if key in seen:
            continue
        seen.add(key)
        keep.append(js)
        if "://" in fn or fn.startswith("//"):
            sphinx_logging.getLogger(__name__).warning(
                f"page {pagename} loads a script from {fn}: vendor it under book/_vendor/static (the book must work "
                "offline)")
    files[:] = keep


# --------------------------------------------------------------------------- main

def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number of seconds, got {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive number of seconds, got {value} (omit --timeout for "
                                         "no limit)")
    return value


def _positive_count(text: str) -> int:
    """argparse type of ``--jobs``: an integer ``>= 1``."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Parse the command line of ``python -m freqkit.book`` (described in the module docstring).

    Args:
        argv: the arguments without the program name; None: ``sys.argv[1:]``.

    Returns:
        The namespace: ``profile``, ``chapters``, ``out``, ``no_build``, ``build_only``,
        ``root``, ``kernel``, ``timeout``, ``overrides`` (the ``--set`` items), ``log_output``,
        ``no_progress``, ``jobs``.

    Raises:
        SystemExit: bad usage (status 2; e.g. no ``--profile``, both ``--no-build`` and
            ``--build-only``, a ``--timeout`` that is not a positive integer, or a ``--jobs``
            below 1), or ``--help``
            (status 0).
    """
    ap = argparse.ArgumentParser(prog="python -m freqkit.book", description=DESCRIPTION)
    ap.add_argument("--profile", required=True, help="a profile of book/profiles.yml (smoke, cpu, gpu)")
    ap.add_argument("--chapters", nargs="+", metavar="STEM",
                    help="run only these chapters (stem or prefix, e.g. 01 02); the build uses earlier executed "
                         "copies of the others")
    ap.add_argument("--out", default="_build", help="output folder (default: _build in the repository root)")
    ap.add_argument("--no-build", action="store_true", help="execute the chapters, do not build the book")
    ap.add_argument("--build-only", action="store_true", help="build from the executed copies of an earlier run")
    ap.add_argument("--root", help="repository root (default: found from the current folder)")
    ap.add_argument("--kernel", default="python3", help="Jupyter kernel (default python3 of this interpreter)")
    ap.add_argument("--timeout", type=_positive_int, default=None,
                    help="seconds allowed per cell, a positive integer (default: no limit)")
    ap.add_argument("--set", action="append", metavar="NAME=VALUE", dest="overrides",
                    help="override a parameter of every chosen chapter (value parsed as YAML, e.g. "
                         "--set 'datasets=[cifar10]'); repeatable; each name must exist in the chapter's "
                         "parameters cell")
    ap.add_argument("--log-output", action="store_true", help="stream the cells' output")
    ap.add_argument("--no-progress", action="store_true", help="no per-cell progress bar")
    ap.add_argument("--jobs", type=_positive_count, default=1, metavar="N",
                    help="chapters executed at the same time (default 1); with N > 1 every kernel gets "
                         "OMP_NUM_THREADS = CPU cores // N unless it is set, there is no progress bar, the "
                         "chapters start longest first (by book/measured/<profile>.json), and a chapter that "
                         "summarises the others starts after all of them")
    ap.add_argument("--update-readme", action="store_true",
                    help="after a successful run, regenerate README.md's measured block from the stored results")
    args = ap.parse_args(argv)
    if args.no_build and args.build_only:
        ap.error("--no-build and --build-only exclude each other")
    return args


def _check_root(root: Path, given: bool) -> None:
    where = "--root" if given else "the repository root"
    if not root.is_dir():
        raise BookError(f"{where}: {root} is not a folder")
    missing = [str(root / n) for n in ("_toc.yml", "_config.yml") if not (root / n).is_file()]
    if missing:
        raise BookError(f"{where}: {root} is not a book project: missing {' and '.join(missing)}")


def _lock(stage: Path, out: Path, profile: str):
    """Take the exclusive lock of ``stage`` (held until the returned file is closed), or raise BookError."""
    stage.mkdir(parents=True, exist_ok=True)
    path = stage / LOCK_FILE
    try:
        return lock_file(path, blocking=False)
    except BlockingIOError:
        try:
            holder = path.read_text().strip() or "unknown"
        except OSError:
            holder = "unknown"
        raise BookError(f"another book runner holds the lock {path} (pid {holder}): it runs profile '{profile}' "
                        f"into {out}; wait for it to finish, or use another --out") from None


def run(args: argparse.Namespace, argv: list[str]) -> int:
    """Run the book: check every chosen chapter, execute them in toc order, build the book.

    Steps: find (or check) the root, read the profiles and the toc, select the chapters,
    compute each chapter's parameters, take the lock of the staging folder, check every
    source and the kernel (unless ``--build-only``), copy the assets to the staging tree,
    execute the chapters (stopping at the first failure), and build (unless
    ``--no-build``).  Prepends the root to ``PYTHONPATH`` in ``os.environ`` (of this
    process too) so that the kernels import this repository's freqkit.  Progress goes to
    stdout, failures to stderr, timings to ``run.json``.

    The lock (``fcntl.flock`` on ``<out>/executed/<profile>/run.lock``, which holds the
    holder's pid) is held for the whole run.  Before a chapter runs, its record in
    ``run.json`` says ``"running"`` (its old executed copy is deleted after that); a
    failed chapter's record says ``"failed"``.  On Ctrl-C the run and the chapter that was
    running are recorded as ``"interrupted"``; after another error once the run started,
    the run is recorded as ``"error"`` (with the message).

    Args:
        args: the namespace of :func:`parse_args`.
        argv: the command line, stored in ``run.json``.

    Returns:
        The exit status: 0 (ok), 1 (a chapter or the build failed).

    Raises:
        BookError: a usage or configuration error (:func:`main` turns it into status 2):
            ``--root`` is not a folder holding ``_toc.yml`` and ``_config.yml``, no root is
            found, ``--timeout`` is not positive, another runner holds the lock of this
            output folder and profile, a bad profile, toc, parameter or kernel, or a build
            refused (:func:`build_book`).
        KeyboardInterrupt: Ctrl-C (a :class:`ChapterInterrupted` while a chapter ran),
            after ``run.json`` was marked ``"interrupted"``.
    """
    if args.timeout is not None and args.timeout <= 0:
        raise BookError(f"--timeout must be a positive number of seconds, got {args.timeout}")
    root = Path(args.root).resolve() if args.root else find_root()
    _check_root(root, bool(args.root))
    out = Path(args.out)
    out = (out if out.is_absolute() else root / out).resolve()
    profiles = load_profiles(root)
    if args.profile not in profiles:
        raise BookError(f"unknown profile '{args.profile}'; {root / PROFILES_FILE} defines: " + ", ".join(profiles))
    toc_chapters = chapters_in_toc(root)
    chosen = select_chapters(toc_chapters, args.chapters)
    known = {p.stem for p in (root / BOOK_DIR).rglob("*.ipynb") if ".ipynb_checkpoints" not in p.parts}
    overrides = parse_overrides(args.overrides)
    plan = [(ch, chapter_parameters(profiles, args.profile, ch.stem, root=root, out=out, known_stems=known,
                                    overrides=overrides))
            for ch in chosen]
    stage = out / "executed" / args.profile
    lock = _lock(stage, out, args.profile)
    try:
        record = RunRecord(stage / "run.json", args.profile)
        if not args.build_only:
            for ch, params in plan:
                check_source(ch, params)  # every chapter is checked before any runs
            kernel_check(args.kernel)
        sync_assets(root, stage)
        record.start(argv)
        t0 = time.perf_counter()
        try:
            return _run_started(args, root, out, stage, plan, toc_chapters, record, t0)
        except KeyboardInterrupt:
            for info in record.data["chapters"].values():
                if info.get("status") == "running":
                    info.update(status="interrupted", error="interrupted (KeyboardInterrupt)")
            record.finish("interrupted", seconds=round(time.perf_counter() - t0, 2))
            raise
        except Exception as exc:
            for info in record.data["chapters"].values():
                if info.get("status") == "running":
                    info.update(status="failed", error=f"{type(exc).__name__}: {exc}")
            record.finish("error", error=str(exc) if isinstance(exc, BookError) else f"{type(exc).__name__}: {exc}",
                          seconds=round(time.perf_counter() - t0, 2))
            raise
    finally:
        lock.close()


def _run_started(args: argparse.Namespace, root: Path, out: Path, stage: Path, plan: list, toc_chapters: list[Path],
                 record: RunRecord, total0: float) -> int:
    """:func:`run` once the lock is held and the run recorded as started: execute, then build."""
    # the kernels import freqkit from this repository, installed or not
    os.environ["PYTHONPATH"] = os.pathsep.join([str(root)] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p])
    # Figures are outputs of the book: the kernels draw inline whatever backend the caller's
    # environment names (CI sets MPLBACKEND=Agg for its own plots; inherited by a kernel it
    # silently drops every figure from the published pages).
    os.environ["MPLBACKEND"] = KERNEL_MPLBACKEND

    _log(f"freqkit book: profile '{args.profile}', {len(plan)} of {len(toc_chapters)} chapter(s), out {out}")
    if not args.build_only:
        failed = (_execute_plan if getattr(args, "jobs", 1) == 1 else _execute_concurrently)(args, root, stage, plan,
                                                                                               record)
        if failed is not None:
            record.finish("failed", failed_chapter=failed, seconds=round(time.perf_counter() - total0, 2))
            print("Stopped: the remaining chapters were not run and the book was not built.",
                  file=sys.stderr, flush=True)
            return 1
    if args.no_build:
        record.finish("executed", seconds=round(time.perf_counter() - total0, 2))
        _log(f"done (not built) in {time.perf_counter() - total0:.1f} s; timings in {record.path}")
        _store_and_update_readme(args, root, record, [ch.stem for ch, *_ in plan])
        return 0
    try:
        html = build_book(root, stage, out, args.profile, toc_chapters, record)
    except BuildFailed as exc:
        record.finish("build failed", seconds=round(time.perf_counter() - total0, 2))
        print(f"\nFAILED: {exc}", file=sys.stderr, flush=True)
        return 1
    record.finish("ok", seconds=round(time.perf_counter() - total0, 2))
    _log("")
    for ch in toc_chapters:
        info = record.data["chapters"].get(ch.stem, {})
        _log(f"  {ch.stem:<36} {info.get('seconds', float('nan')):8.1f} s")
    _log(f"  {'jupyter-book build':<36} {record.data['build']['seconds']:8.1f} s")
    _log(f"book built in {time.perf_counter() - total0:.1f} s: {html / 'index.html'}")
    _log(f"timings: {record.path}")
    _store_and_update_readme(args, root, record, [ch.stem for ch, *_ in plan])
    return 0


def _execute_one(args: argparse.Namespace, root: Path, stage: Path, k: int, n: int, ch: Path, params: dict,
                 record: "RunRecord", progress: bool) -> bool:
    """Execute chapter ``ch`` (number ``k`` of ``n``) and record it; False when it failed.

    Raises:
        ChapterInterrupted: Ctrl-C while it ran (recorded as ``"interrupted"`` first).
    """
    _log(f"[{k}/{n}] {ch.stem}: executing ({', '.join(f'{a}={b!r}' for a, b in params.items())})")
    # no longer "ok": its old executed copy and results are about to be deleted
    started = _now()
    record.chapter(ch.stem, status="running", started=started, source=str(ch), parameters=params)
    try:
        info = execute_chapter(ch, root=root, stage=stage, params=params, kernel=args.kernel, timeout=args.timeout,
                               log_output=args.log_output, progress=progress)
    except ChapterInterrupted as exc:
        record.chapter(ch.stem, **exc.info)
        print(f"\nINTERRUPTED: chapter {ch.stem}", file=sys.stderr, flush=True)
        _report_set_aside(exc.info, params, ch.stem)
        raise
    except ChapterFailed as exc:
        record.chapter(ch.stem, **exc.info)
        print(f"\nFAILED: {exc}", file=sys.stderr, flush=True)
        _report_set_aside(exc.info, params, ch.stem)
        return False
    record.chapter(ch.stem, started=started, **info)
    _log(f"[{k}/{n}] {ch.stem}: ok in {info['seconds']:.1f} s -> {info['executed']}")
    return True


def _execute_plan(args: argparse.Namespace, root: Path, stage: Path, plan: list, record: "RunRecord") -> str | None:
    """Execute the chapters of ``plan`` one after another, in order; the stem of the first that failed, or None."""
    for k, (ch, params) in enumerate(plan, 1):
        if not _execute_one(args, root, stage, k, len(plan), ch, params, record, progress=not args.no_progress):
            return ch.stem
    return None


#: Notebook metadata ``{"freqkit": {SUMMARY_KEY: true}}`` marks a chapter that summarises the
#: others' results (chapter 9): with ``--jobs`` it starts only once every chapter before it ended.
SUMMARY_KEY = "summarises_others"


def is_summary(source: Path) -> bool:
    """Whether chapter ``source`` is marked as summarising the others (:data:`SUMMARY_KEY`).

    Args:
        source: the chapter's source notebook.

    Returns:
        True when its metadata holds ``{"freqkit": {"summarises_others": true}}``.

    Raises:
        BookError: the notebook cannot be read.
    """
    return bool((_read_nb(source).metadata.get("freqkit") or {}).get(SUMMARY_KEY))


def recorded_seconds(root: Path, profile: str) -> dict[str, float]:
    """``{stem: seconds}`` of each chapter's last run that the committed record keeps (:data:`MEASURED_RECORD`).

    Args:
        root: the repository root.
        profile: the profile whose record is read.

    Returns:
        ``{stem: seconds}``; ``{}`` when the record is missing or unreadable; chapters
        without a number are left out.
    """
    try:
        data = json.loads((root / MEASURED_RECORD.format(profile=profile)).read_text())
        chapters_ = data.get("chapters") or {}
        return {stem: float(info["seconds"]) for stem, info in chapters_.items()
                if isinstance(info, dict) and isinstance(info.get("seconds"), (int, float))}
    except (OSError, ValueError, AttributeError, TypeError):
        return {}


def _execute_concurrently(args: argparse.Namespace, root: Path, stage: Path, plan: list,
                          record: "RunRecord") -> str | None:
    """Execute the chapters of ``plan`` with up to ``args.jobs`` at a time; the first that failed, or None.

    Chapters start as workers free up, longest first by the seconds of their last run in the
    committed record (:func:`recorded_seconds`), then the unrecorded ones in the plan's order;
    a chapter that summarises others (:func:`is_summary`) starts last, once every other has
    ended.  After a failure no chapter starts and the running ones are waited for.  The
    record's seconds include any time a chapter waited for a model another one was training,
    so the order is a heuristic.  Kernels are separate
    processes (papermill), so a thread per running chapter suffices; each kernel inherits
    ``OMP_NUM_THREADS`` (set here to ``cores // jobs`` unless the caller set it), and
    :func:`freqkit.train_or_load`'s checkpoint locks make two chapters that need the same
    model train it once.
    """
    import concurrent.futures as cf

    jobs = int(args.jobs)
    if "OMP_NUM_THREADS" not in os.environ:
        os.environ["OMP_NUM_THREADS"] = str(max(1, (os.cpu_count() or 1) // jobs))
    _log(f"{jobs} chapters at a time, OMP_NUM_THREADS={os.environ['OMP_NUM_THREADS']} per kernel")
    waiting = [(k, ch, params, is_summary(ch)) for k, (ch, params) in enumerate(plan, 1)]
    # Longest first (the seconds of each chapter's last run in the committed record), so that the
    # long chapters overlap and the short ones fill the end; then the unrecorded ones, in toc order;
    # the summaries last.
    seconds = recorded_seconds(root, args.profile)
    waiting.sort(key=lambda w: (w[3], w[1].stem not in seconds, -seconds.get(w[1].stem, 0.0), w[0]))
    _log("order: " + ", ".join(w[1].stem + (f" ({seconds[w[1].stem]:,.0f} s last run)" if w[1].stem in seconds else "")
                               for w in waiting))
    running: dict = {}
    failed: list[str] = []
    with cf.ThreadPoolExecutor(max_workers=jobs) as pool:
        while waiting or running:
            while waiting and not failed and len(running) < jobs:
                k, ch, params, summary = waiting[0]
                if summary and running:
                    break  # a summary waits for every chapter before it (those after it wait too)
                waiting.pop(0)
                running[pool.submit(_execute_one, args, root, stage, k, len(plan), ch, params, record,
                                    False)] = ch.stem
            if failed:
                waiting.clear()
            if not running:
                break
            done, _ = cf.wait(running, return_when=cf.FIRST_COMPLETED)
            for fut in done:
                stem = running.pop(fut)
                if not fut.result():
                    failed.append(stem)
    return failed[0] if failed else None


def _store_and_update_readme(args: argparse.Namespace, root: Path, record: "RunRecord", ran: list[str]) -> None:
    """--update-readme: merge this run's verdicts into the committed record, then render the README from it."""
    if not getattr(args, "update_readme", False):
        return
    results = next((Path(p["results_dir"]) for p in (i.get("parameters") or {} for i in
                                                        record.data["chapters"].values()) if p.get("results_dir")),
                   None)
    if results is None:
        return
    dest = root / MEASURED_RECORD.format(profile=args.profile)
    machine = cpu_name() + (f"; {torch.cuda.get_device_name()}" if torch.cuda.is_available() else "")
    store_measured(dest, results, args.profile, run=record.data, chapters_=ran, machine=machine)
    if update_readme(root / "README.md", dest, args.profile):
        _log(f"README.md: measured block regenerated from {dest.relative_to(root)}")


def _report_set_aside(info: dict[str, Any], params: dict[str, Any], stem: str) -> None:
    """Say where a failed or interrupted chapter's notebook and results went (stderr)."""
    if info.get("failed_copy"):
        what = "(as far as it ran)" if info.get("status") == "interrupted" else "(with the error)"
        print(f"\nThe failed notebook {what} is {info['failed_copy']}", file=sys.stderr)
    if info.get("results_set_aside"):
        print(f"Its results file {results_file(params, stem)}, written before it stopped, does not count: moved to "
              f"{info['results_set_aside']}", file=sys.stderr)
    elif info.get("results_removed"):
        print(f"Its results file, written before it stopped, does not count: removed {info['results_removed']}",
              file=sys.stderr)
    sys.stderr.flush()


def main(argv: list[str] | None = None) -> int:
    """The entry point of ``python -m freqkit.book``: :func:`parse_args`, then :func:`run`.

    Args:
        argv: the arguments without the program name; None: ``sys.argv[1:]``.

    Returns:
        The exit status: 0 ok, 1 a chapter or the build failed, 2 a :class:`BookError`
        (printed to stderr: bad usage or configuration, another runner holds the lock, or
        the build refused stale results), 130 interrupted (Ctrl-C; ``run.json`` says
        ``"interrupted"``).

    Raises:
        SystemExit: from :func:`parse_args` on bad usage (status 2) or ``--help``.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(argv)
    try:
        return run(args, argv)
    except BookError as exc:
        print(f"freqkit.book: error: {exc}", file=sys.stderr, flush=True)
        return 2
    except KeyboardInterrupt:
        print("freqkit.book: interrupted; nothing was built from this run", file=sys.stderr, flush=True)
        return 130


if __name__ == "__main__":
    sys.exit(main())
