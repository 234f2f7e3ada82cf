"""The results store: each chapter (or any run) saves what it measured, with its setting, as JSON.

Chapter 9 reads the stored results to build the table of hypotheses and verdicts
(:func:`freqkit.hypotheses.collect_verdicts`), so a verdict is always computed from a run,
never typed.  Files are written atomically (:mod:`freqkit._io`): a reader sees the old
file or the complete new one.
"""
from __future__ import annotations

import json
from pathlib import Path

from ._io import atomic_write_json, jsonable

__all__ = ["save_results", "load_results"]


def save_results(results_dir, chapter: str, results: dict, setting: dict) -> Path:
    """Write ``{"chapter", "setting", "results"}`` to ``results_dir/<chapter>.json`` atomically.

    The file is written through :func:`freqkit._io.atomic_write_json` (keys sorted, indent 1,
    a final newline), so a reader sees the old file or the complete new one; an existing
    file of the chapter is replaced.  ``results`` and ``setting`` pass through
    :func:`freqkit._io.jsonable`: tensors and arrays become lists, dict keys strings, and
    every non-finite float (plain, numpy, or inside a tensor or array) the string ``"inf"``,
    ``"-inf"`` or ``"nan"``, so the file is strict JSON (``float(v)`` reads them back).

    Args:
        results_dir: folder (created if missing).
        chapter: a plain file stem such as ``"02_which_frequencies"``.
        results: what was measured (a dict of JSON-ready values, tensors or arrays).
        setting: how it was measured (data set, model, n, seed, ...), stored beside it.

    Returns:
        The path written, ``results_dir/<chapter>.json``.

    Raises:
        ValueError: an empty ``chapter`` or one holding ``/``.
        TypeError: ``results`` or ``setting`` not a dict, or a value json cannot encode.

    Example:
        >>> import tempfile, torch, freqkit as fk
        >>> with tempfile.TemporaryDirectory() as d:
        ...     path = fk.save_results(d, "demo", {"acc": torch.tensor([0.5, 1.0]), "eps": float("inf")}, {"n": 2})
        ...     print(path.name, fk.load_results(d, "demo"))
        demo.json {'chapter': 'demo', 'results': {'acc': [0.5, 1.0], 'eps': 'inf'}, 'setting': {'n': 2}}
    """
    if not chapter or "/" in chapter:
        raise ValueError(f"chapter must be a plain name like '02_which_frequencies', got {chapter!r}")
    if not isinstance(results, dict) or not isinstance(setting, dict):
        raise TypeError("results and setting must be dicts")
    path = Path(results_dir) / f"{chapter}.json"
    return atomic_write_json({"chapter": chapter, "setting": jsonable(setting), "results": jsonable(results)},
                             path, indent=1)


def load_results(results_dir, chapter: str) -> dict:
    """Read a chapter's stored results (the dict :func:`save_results` wrote).

    Args:
        results_dir: the folder given to :func:`save_results`.
        chapter: the chapter's file stem (not checked: a name holding ``/`` reads a subfolder).

    Returns:
        ``{"chapter": str, "setting": dict, "results": dict}`` as stored: tensors and arrays
        come back as lists, non-finite Python floats as the strings ``"inf"``/``"nan"``.

    Raises:
        FileNotFoundError: the chapter has not been run (the message says how to run it).
        ValueError: the file is not valid JSON (re-run the chapter).

    Example:
        >>> import tempfile, freqkit as fk
        >>> with tempfile.TemporaryDirectory() as d:
        ...     _ = fk.save_results(d, "demo", {"top1": 0.9}, {"dataset": "mnist"})
        ...     r = fk.load_results(d, "demo")
        >>> r["results"]["top1"], r["setting"]
        (0.9, {'dataset': 'mnist'})
    """
    path = Path(results_dir) / f"{chapter}.json"
    if not path.exists():
        raise FileNotFoundError(f"no stored results for chapter {chapter!r} in {results_dir} "
                                f"(run that chapter first: python -m freqkit.book --chapters {chapter})")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise ValueError(f"stored results {path} are corrupt ({e}); re-run chapter {chapter!r}") from e
