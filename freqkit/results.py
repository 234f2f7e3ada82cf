"""The results store: each chapter saves what it measured, with its setting, as JSON.

Chapter 9 reads the stored results to build the table of hypotheses and verdicts, so a
verdict is always computed from a run, never typed.  Files are written atomically.
"""
from __future__ import annotations

import json
import math
from pathlib import Path

from ._io import atomic_write_bytes

__all__ = ["save_results", "load_results", "verdict", "VERDICTS"]

VERDICTS = ("supported", "rejected", "inconclusive")


def _jsonable(v):
    if hasattr(v, "tolist"):
        return v.tolist()
    if isinstance(v, float) and not math.isfinite(v):
        return str(v)
    if isinstance(v, dict):
        return {str(k): _jsonable(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_jsonable(x) for x in v]
    return v


def save_results(results_dir, chapter: str, results: dict, setting: dict) -> Path:
    """Write ``{"chapter", "setting", "results"}`` to ``results_dir/<chapter>.json`` atomically."""
    if not chapter or "/" in chapter:
        raise ValueError(f"chapter must be a plain name like '02_which_frequencies', got {chapter!r}")
    if not isinstance(results, dict) or not isinstance(setting, dict):
        raise TypeError("results and setting must be dicts")
    d = Path(results_dir)
    d.mkdir(parents=True, exist_ok=True)
    path = d / f"{chapter}.json"
    payload = json.dumps({"chapter": chapter, "setting": _jsonable(setting), "results": _jsonable(results)},
                         indent=1, sort_keys=True)
    atomic_write_bytes(path, payload.encode())
    return path


def load_results(results_dir, chapter: str) -> dict:
    """Read a chapter's stored results; a clear error if the chapter has not been run."""
    path = Path(results_dir) / f"{chapter}.json"
    if not path.exists():
        raise FileNotFoundError(f"no stored results for chapter {chapter!r} in {results_dir} "
                                f"(run that chapter first: python -m freqkit.book --chapters {chapter})")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise ValueError(f"stored results {path} are corrupt ({e}); re-run chapter {chapter!r}") from e


def verdict(hypothesis: str, rule: str, supported, evidence: dict) -> dict:
    """A hypothesis' verdict from a stated rule: ``supported`` is True, False or None (inconclusive)."""
    if supported not in (True, False, None):
        raise ValueError(f"supported must be True, False or None, got {supported!r}")
    word = {True: "supported", False: "rejected", None: "inconclusive"}[supported]
    return {"hypothesis": hypothesis, "rule": rule, "verdict": word, "evidence": _jsonable(evidence)}
