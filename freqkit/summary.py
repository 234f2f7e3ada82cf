"""What we learned: every hypothesis' verdict, gathered from the chapters' stored results.

Chapters store their verdicts (dicts made by :func:`freqkit.verdict`, with the keys
``hypothesis``, ``rule``, ``verdict`` and ``evidence``) somewhere inside their results
JSON.  :func:`collect_verdicts` reads each chapter's file with
:func:`freqkit.load_results` and finds every such dict wherever it sits, so it needs no
knowledge of a chapter's layout; a chapter whose file is missing is reported as "not
run" (and each hypothesis it should have tested with it), a corrupt file as "unreadable".
Nothing here types a verdict: each row carries the verdict and the rule its chapter
computed.
"""
from __future__ import annotations

import re
from typing import Mapping, Sequence

from .results import VERDICTS, load_results

__all__ = ["BOOK_CHAPTERS", "HYPOTHESES", "find_verdicts", "collect_verdicts", "summarise_hypotheses",
           "evidence_summary"]

#: The chapters whose results chapter 9 reads, in book order.
BOOK_CHAPTERS = ("02_which_frequencies", "03_frequency_attribution", "04_trust_attributions",
                 "05_low_vs_high_attacks", "06_fourier_heatmaps", "07_robust_models", "08_frequency_defense")

#: Each hypothesis of DESIGN.md, its statement and the chapter that tests it.
HYPOTHESES = {
    "H1": ("CNNs use high frequencies that humans barely see", "02_which_frequencies"),
    "H2": ("attribution quantifies each frequency component's contribution (completeness holds; the numbers "
           "agree with occlusion)", "03_frequency_attribution"),
    "H3": ("at equal L2 distortion, low-frequency perturbations are more efficient than high-frequency ones",
           "05_low_vs_high_attacks"),
    "H4": ("adversarially trained models rely more on low frequencies", "07_robust_models"),
    "H5": ("a model aligned with human contrast sensitivity is more aligned and more robust to attacks that see it",
           "08_frequency_defense"),
}

_ID = re.compile(r"^\s*(H\d+[a-z]?)\b")


def _is_verdict(d) -> bool:
    return isinstance(d, Mapping) and {"hypothesis", "rule", "verdict"} <= set(d) \
        and isinstance(d["hypothesis"], str) and d["verdict"] in VERDICTS


def find_verdicts(obj, path: str = "") -> list[tuple[str, dict]]:
    """Every verdict dict inside ``obj`` (nested dicts and lists), with its path ``"a/b/0"``."""
    out = []
    if _is_verdict(obj):
        return [(path, dict(obj))]
    if isinstance(obj, Mapping):
        for k, v in obj.items():
            out += find_verdicts(v, f"{path}/{k}" if path else str(k))
    elif isinstance(obj, (list, tuple)):
        for i, v in enumerate(obj):
            out += find_verdicts(v, f"{path}/{i}" if path else str(i))
    return out


def evidence_summary(evidence, max_items: int = 8, digits: int = 3) -> str:
    """A one-line ``key=value`` digest of the scalar entries of a verdict's evidence."""
    if not isinstance(evidence, Mapping):
        return ""
    parts = []
    for k, v in evidence.items():
        if isinstance(v, bool) or v is None:
            continue
        if isinstance(v, float):
            parts.append(f"{k}={v:.{digits}g}")
        elif isinstance(v, int):
            parts.append(f"{k}={v}")
        elif isinstance(v, str) and len(v) <= 60:
            parts.append(f"{k}={v}")
        elif isinstance(v, (list, tuple)) and 0 < len(v) <= 2 and all(isinstance(t, (int, float)) for t in v):
            parts.append(f"{k}=[{', '.join(f'{t:.{digits}g}' for t in v)}]")
        if len(parts) >= max_items:
            break
    return "; ".join(parts)


def hypothesis_id(text: str) -> str:
    """``"H4"`` from ``"H4: adversarially ..."``; ``"check"`` when the text names no hypothesis."""
    m = _ID.match(text or "")
    return m.group(1) if m else "check"


def collect_verdicts(results_dir, chapters: Sequence[str] = BOOK_CHAPTERS,
                     hypotheses: Mapping = HYPOTHESES) -> dict:
    """Gather the verdicts of ``chapters`` from ``results_dir``.

    Returns ``{"rows": [...], "chapters": {stem: status}}``.  Each row: ``id`` (``"H1"``,
    ``"H5a"``, or ``"check"`` for a sanity check naming no hypothesis), ``hypothesis``,
    ``verdict`` (supported / rejected / inconclusive, or ``"not run"``), ``rule``,
    ``evidence`` (a one-line digest), ``chapter``, ``where`` (the path of the verdict inside
    the results), ``profile`` (from the chapter's stored setting, if any).  Rows are
    ordered by hypothesis and chapter.  A chapter's status is ``"ok"``, ``"not run"``
    (no results file), ``"unreadable: ..."`` (corrupt JSON) or ``"no verdicts"``.  Every
    hypothesis of ``hypotheses`` whose chapter produced no row for it gets a ``"not run"``
    row (or ``"no verdict stored"`` if the chapter ran).
    """
    rows, status = [], {}
    for stem in chapters:
        try:
            stored = load_results(results_dir, stem)
        except FileNotFoundError:
            status[stem] = "not run"
            continue
        except ValueError as e:
            status[stem] = f"unreadable: {e}"
            continue
        found = find_verdicts(stored.get("results", {}))
        status[stem] = "ok" if found else "no verdicts"
        profile = (stored.get("setting") or {}).get("profile")
        for where, v in found:
            rows.append({"id": hypothesis_id(v["hypothesis"]), "hypothesis": v["hypothesis"],
                         "verdict": v["verdict"], "rule": v["rule"], "evidence": evidence_summary(v.get("evidence")),
                         "chapter": stem, "where": where, "profile": profile})
    have = {r["id"].rstrip("abcdefghijklmnopqrstuvwxyz") for r in rows}
    for hid, (text, stem) in hypotheses.items():
        if hid in have:
            continue
        st = status.get(stem, "not run")
        word = "not run" if st == "not run" or st.startswith("unreadable") else "no verdict stored"
        rows.append({"id": hid, "hypothesis": f"{hid}: {text}", "verdict": word,
                     "rule": f"chapter {stem} {'has not been run' if word == 'not run' else 'stored no verdict'}"
                             + (f" ({st})" if st.startswith("unreadable") else ""),
                     "evidence": "", "chapter": stem, "where": "", "profile": None})

    def order(r):
        m = re.match(r"H(\d+)([a-z]?)", r["id"])
        key = (int(m.group(1)), m.group(2)) if m else (10 ** 6, "")
        return key, list(chapters).index(r["chapter"]) if r["chapter"] in chapters else 0, r["where"]

    rows.sort(key=order)
    return {"rows": rows, "chapters": status}


def summarise_hypotheses(rows: Sequence[Mapping]) -> dict:
    """Per hypothesis id, the count of each verdict and an overall word.

    Rule: ``supported`` if every row that ran is supported, ``rejected`` if every such row
    is rejected, ``inconclusive`` if every such row is inconclusive, ``mixed`` otherwise,
    ``not run`` if no row ran.  (A hypothesis tested on two data sets with different
    outcomes is "mixed", never averaged into a verdict.)
    """
    out: dict = {}
    for r in rows:
        c = out.setdefault(r["id"], {"supported": 0, "rejected": 0, "inconclusive": 0, "not run": 0})
        c[r["verdict"] if r["verdict"] in VERDICTS else "not run"] += 1
    for c in out.values():
        ran = c["supported"] + c["rejected"] + c["inconclusive"]
        if ran == 0:
            word = "not run"
        else:
            word = next((v for v in VERDICTS if c[v] == ran), "mixed")
        c["overall"] = word
    return out
