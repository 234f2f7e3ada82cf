"""Chapter plumbing: what the chapters share that is not computation.

Loading (or training) the models a chapter needs (:func:`load_models`), the one-line records
and tables chapters print (:func:`record_line`, :func:`robustness_rows`, :func:`band_table`,
:func:`verdict_lines`, :func:`evidence_summary`, :func:`verdict_markdown`).  Everything measured
comes from the library; nothing here computes a result.
"""
from __future__ import annotations

import datetime as _dt
import subprocess
from pathlib import Path
from typing import Callable, Mapping, Sequence

import numpy as np
import torch

from ..objectives import train_suite
from ..training import PRESETS, check_seeds, train_many, train_or_load
from .viz import markdown_table

__all__ = ["display_markdown", "models_table", "verdict_markdown", "admonition", "load_models", "model_record",
           "record_line", "robustness_rows", "band_table", "verdict_lines", "evidence_summary",
           "provenance", "criteria_markdown", "load_suites", "matched_accuracy_overrides", "stop_table",
           "per_seed", "band_attack_rows", "masking_rows"]


def load_models(datasets: Sequence[str], profile: str, overrides: Mapping | None = None, *,
                objectives: Callable | Mapping | None = None, data_root=None, cache_dir=None, device="auto",
                show: bool = True, seeds: Sequence[int] | None = None) -> tuple[dict, dict]:
    """Load (or train) the models a chapter needs, one configuration per data set.

    Each data set's configuration is ``PRESETS[dataset][profile]``
    (:data:`freqkit.training.PRESETS`) updated with ``overrides[dataset]``; the models come
    from :func:`freqkit.train_or_load` (from the checkpoint cache when it holds them), or,
    with ``objectives``, from :func:`freqkit.train_suite`.

    Args:
        datasets: data set names, keys of ``PRESETS`` (``"cifar10"``, ``"mnist"``).
        profile: the book profile (``"smoke"``, ``"cpu"``, ``"gpu"``) whose preset is the base
            configuration.
        overrides: ``{dataset: {config key: value}}`` on top of the preset; every key must be
            one of ``datasets``.  Default: none.
        objectives: ``None`` (default) for one standard model per data set, or a
            ``{name: Objective or None}`` dict (or a function of the data set returning one)
            for a suite (:func:`freqkit.train_suite`) that differs only in the objective.
        data_root: data folder, as :func:`freqkit.train_or_load` (None: its default).
        cache_dir: checkpoint folder, as :func:`freqkit.train_or_load` (None: its default).
        device: ``"auto"`` (default), ``"cpu"``, ``"cuda"``, ...: where the models are put.
        show: display the models as a Markdown table (:func:`models_table`; default True).
        seeds: training seeds of a suite (:func:`freqkit.train_seeds`): each model becomes
            a list of models, one per seed (without ``objectives`` only).  None: one model.

    Returns:
        ``(models, infos)``: ``models[dataset]`` (or ``models[dataset][name]`` with
        ``objectives``; a list over ``seeds`` with ``seeds``) in eval mode on ``device``, and
        the ``train_or_load`` infos alike.

    Raises:
        ValueError: ``overrides`` names a data set that is not in ``datasets``.
        KeyError: a data set or ``profile`` that ``PRESETS`` does not have.
    """
    overrides = dict(overrides or {})
    unknown = sorted(set(overrides) - set(datasets))
    if unknown:
        raise ValueError(f"overrides names data sets {unknown} that are not in datasets {list(datasets)}")
    if seeds is not None and objectives is not None:
        raise ValueError("seeds is for standard models only (objectives: one model per objective)")
    models, infos, records = {}, {}, []
    if seeds is not None:
        # one list over every data set and seed: beside another chapter that trains the same suites,
        # this one trains whatever nobody else is training (training.train_many) instead of waiting
        seeds = check_seeds(seeds)
        jobs = [(ds, {**PRESETS[ds][profile], **overrides.get(ds, {}), "seed": sd}, None)
                for ds in datasets for sd in seeds]
        pairs = iter(train_many(jobs, data_root=data_root, cache_dir=cache_dir, device=device))
        for ds in datasets:
            got = [next(pairs) for _ in seeds]
            models[ds], infos[ds] = [m.eval() for m, _ in got], [i for _, i in got]
            if show:
                records.extend((ds, f"standard, seed {i['config']['seed']}", model_record(i)) for i in infos[ds])
        if show and records:
            display_markdown(models_table(records))
        return models, infos
    for ds in datasets:
        config = {**PRESETS[ds][profile], **overrides.get(ds, {})}
        if objectives is None:
            m, info = train_or_load(ds, config, data_root=data_root, cache_dir=cache_dir, device=device)
            models[ds], infos[ds] = m.eval(), info
        else:
            objs = objectives(ds) if callable(objectives) else objectives
            models[ds], infos[ds] = train_suite(ds, objs, config, device=device, data_root=data_root,
                                                cache_dir=cache_dir)
        if show:
            records.extend((ds, n, model_record(i)) for n, i in
                           ([("standard", infos[ds])] if objectives is None else infos[ds].items()))
    if show and records:
        display_markdown(models_table(records))
    return models, infos


def model_record(info: Mapping) -> dict:
    """The JSON-ready facts of a :func:`freqkit.train_or_load` ``info``: accuracy, time, setting.

    Args:
        info: the ``info`` dict of :func:`freqkit.train_or_load` (or one of the infos of
            :func:`freqkit.train_suite`); it must hold ``config``, ``test_accuracy``,
            ``n_test``, ``train_seconds``, ``cached``, ``n_train`` and ``key``.

    Returns:
        A dict with ``test_accuracy``, ``n_test``, ``train_seconds``, ``trained_on`` (None when
        the info does not say), ``cached``, ``n_train``, ``epochs``, ``width``, ``arch``,
        ``objective`` (``"standard"`` when the config has none), ``objective_params``
        (``{}`` when none), the full ``config`` and the checkpoint ``key``.

    Raises:
        KeyError: ``info`` (or its ``config``: ``epochs``, ``width``, ``arch``) lacks a key
            above.
    """
    cfg = info["config"]
    return {"test_accuracy": info["test_accuracy"], "n_test": info["n_test"], "train_seconds": info["train_seconds"],
            "trained_on": info.get("trained_on"), "cached": info["cached"], "n_train": info["n_train"],
            "epochs": cfg["epochs"], "width": cfg["width"], "arch": cfg["arch"],
            "objective": cfg.get("objective", "standard"), "objective_params": cfg.get("objective_params", {}),
            "config": cfg, "key": info["key"]}


def record_line(dataset: str, name: str, rec: Mapping, name_width: int = 20) -> str:
    """One line of text for a :func:`model_record`: accuracy, model, data, time, objective.

    Args:
        dataset: the data set name, written first (padded to 8 characters).
        name: the model's name (e.g. ``"standard"`` or an objective), padded to
            ``name_width`` characters.
        rec: a :func:`model_record` dict (keys ``test_accuracy``, ``n_test``, ``arch``,
            ``width``, ``epochs``, ``n_train``, ``train_seconds``, ``trained_on``, ``cached``,
            ``objective``, ``objective_params``).
        name_width: the width ``name`` is padded to (default 20), so lines of a suite align.

    Returns:
        One line (no newline): accuracy as a percentage with the test set size, architecture,
        width, epochs and training set size, training seconds and device, whether the model
        came from the cache, and the objective with its parameters.

    Raises:
        KeyError: ``rec`` lacks one of the keys above.

    Example:
        >>> from freqkit.book.chapters import record_line
        >>> rec = {"test_accuracy": 0.9123, "n_test": 1000, "arch": "small", "width": 32, "epochs": 2,
        ...        "n_train": 5000, "train_seconds": 41.6, "trained_on": "cpu", "cached": True,
        ...        "objective": "standard", "objective_params": {}}
        >>> print(record_line("cifar10", "standard", rec, name_width=8).replace(" | ", "\\n"))
        cifar10  standard test accuracy 91.23% (1000 images)
        small width 32, 2 epochs on 5000 images
        trained 42 s on cpu
        cached=True
        objective standard {}
    """
    return (f"{dataset:8s} {name:{name_width}s} test accuracy {rec['test_accuracy']:.2%} ({rec['n_test']} images) | "
            f"{rec['arch']} width {rec['width']}, {rec['epochs']} epochs on {rec['n_train']} images | trained "
            f"{rec['train_seconds']:.0f} s on {rec['trained_on']} | cached={rec['cached']} | objective "
            f"{rec['objective']} {rec['objective_params']}")


def robustness_rows(evaluations: Mapping, attacks: Sequence[str] | None = None, records: Mapping | None = None):
    """``(header, rows)`` of a table of clean and robust accuracies (for :func:`freqkit.book.viz.markdown_table`).

    One row per model; columns: the model's name, clean accuracy, each attack's robust
    accuracy, AutoAttack's accuracy per norm that any result holds (or, when AutoAttack did
    not run to the end, its status string), and, given ``records``, training seconds.  The
    numbers are copied from the results unchanged (accuracies in ``[0, 1]``).

    Args:
        evaluations: ``{name: result}`` of :func:`freqkit.evaluate_defense` (keys ``clean``,
            ``attacks``, optionally ``autoattack``); at least one.
        attacks: the attack keys (``"<norm>/<band>"``) to show, in order; default: every
            attack of the first result.  A key the first result lacks gets a header without
            eps; a model without that attack gets None (``"-"`` in :func:`~freqkit.book.viz.markdown_table`).
        records: ``{name: model_record dict}`` (:func:`model_record`); adds a ``"train s"``
            column (None for names it lacks).  Default: no such column.

    Returns:
        ``(header, rows)``: ``header`` a list of column titles (``"model"``, ``"clean"``,
        ``"<attack> (eps <eps>)"``..., ``"AutoAttack <norm>"``..., ``"train s"``); ``rows``
        one list per model in the order of ``evaluations``.

    Raises:
        ValueError: ``evaluations`` is empty.
        KeyError: a result lacks ``clean`` or ``attacks``.
    """
    if not evaluations:
        raise ValueError("evaluations must hold at least one evaluate_defense() result")
    first = next(iter(evaluations.values()))
    attacks = list(first["attacks"]) if attacks is None else list(attacks)
    aa_norms = sorted({k for e in evaluations.values() for k in (e.get("autoattack") or {})})
    header = ["model", "clean"] + [f"{a} (eps {first['attacks'][a]['eps']:.3g})" if a in first["attacks"] else a
                                   for a in attacks] + [f"AutoAttack {n}" for n in aa_norms]
    if records is not None:
        header.append("train s")
    rows = []
    for name, e in evaluations.items():
        row = [name, e["clean"]["accuracy"]] + [e["attacks"][a]["accuracy"] if a in e["attacks"] else None
                                               for a in attacks]
        for n in aa_norms:
            aa = (e.get("autoattack") or {}).get(n)
            row.append(None if aa is None else aa["accuracy"] if aa.get("status") == "ok" else aa["status"])
        if records is not None:
            r = records.get(name)
            row.append(None if r is None else r["train_seconds"])
        rows.append(row)
    return header, rows


def band_table(records: Mapping, eps_list) -> str:
    """:func:`freqkit.band_comparison` records as a fixed-width text table, one row per band.

    Columns: the band, its number of coefficients, the success rate at each eps of
    ``eps_list``, the median minimal distortion with its bootstrap CI, the success rate at
    ``eps_max``, the box-limited share and the largest out-of-band energy share.  Values are
    formatted, not recomputed.

    Args:
        records: ``{band: record}`` from :func:`freqkit.band_comparison` (each with
            ``success_rate``, ``n_coefficients``, ``median_distortion``, ``ci_low``,
            ``ci_high``, ``success_at_eps_max``, ``box_limited_share``, ``out_of_band_max``).
        eps_list: the radii the records were made with (one per ``success_rate`` entry),
            written in the header.

    Returns:
        The table as one string: a header line and one line per band, each indented by two
        spaces, joined by newlines.

    Raises:
        ValueError: ``records`` is not a non-empty mapping, or a record's ``success_rate``
            does not have one value per entry of ``eps_list``.
        KeyError: a record lacks one of the keys above.
    """
    if not isinstance(records, Mapping) or not records:
        raise ValueError("records must be a non-empty {band: record} dict from band_comparison")
    eps_list = list(eps_list)
    for band, r in records.items():
        if len(r["success_rate"]) != len(eps_list):
            raise ValueError(f"records[{band!r}] has {len(r['success_rate'])} success rates but eps_list has "
                             f"{len(eps_list)} values: pass the eps_list the records were made with")
    lines = [f"  {'band':>6} {'coef':>5} | success at eps = {', '.join(f'{e:.3g}' for e in eps_list)}"
             " | median min. distortion [95% CI] | success at eps_max | box-limited | out-of-band max"]
    for band, r in records.items():
        lines.append(f"  {band:>6} {r['n_coefficients']:>5} | {' '.join(f'{s:4.0%}' for s in r['success_rate'])} | "
                     f"{r['median_distortion']:.3g} [{r['ci_low']:.3g}, {r['ci_high']:.3g}] | "
                     f"{r['success_at_eps_max']:.0%} | {r['box_limited_share']:.0%} | {r['out_of_band_max']:.1e}")
    return "\n".join(lines)


def verdict_lines(v: Mapping) -> str:
    """A verdict record (:mod:`freqkit.hypotheses`) as three lines: statement and verdict, rule, evidence.

    The evidence line shows the evidence dict with its top-level float values rounded to 4
    decimals (nested values unchanged).

    Args:
        v: a verdict record, e.g. from :func:`freqkit.hypotheses.verdict` or
            :func:`freqkit.hypotheses.decide` (keys ``hypothesis``, ``verdict``, ``rule``,
            ``evidence``).

    Returns:
        ``"<statement> -> <VERDICT>\\n  rule: <rule>\\n  evidence: <dict>"``.

    Raises:
        ValueError: ``v`` is not a mapping with the keys ``hypothesis``, ``verdict``,
            ``rule`` and ``evidence``.

    Example:
        >>> import freqkit as fk
        >>> from freqkit.book.chapters import verdict_lines
        >>> v = fk.hypotheses.verdict("randomisation", True, {"ig": 0.123456, "n": 16})
        >>> lines = verdict_lines(v).splitlines()
        >>> print(lines[0]); print(lines[2])
        Sanity: frequency attributions depend on the learned weights -> SUPPORTED
          evidence: {'ig': 0.1235, 'n': 16}
    """
    need = ("hypothesis", "verdict", "rule", "evidence")
    if not isinstance(v, Mapping) or any(k not in v for k in need):
        raise ValueError(f"v must be a verdict record (keys {', '.join(need)}), got "
                         f"{sorted(v) if isinstance(v, Mapping) else type(v).__name__}")
    ev = {k: (round(val, 4) if isinstance(val, float) else val) for k, val in v["evidence"].items()}
    return f"{v['hypothesis']} -> {v['verdict'].upper()}\n  rule: {v['rule']}\n  evidence: {ev}"


def evidence_summary(evidence, max_items: int = 8, digits: int = 3) -> str:
    """A one-line ``key=value`` digest of the scalar entries of a verdict's evidence.

    Entries are taken in order: Python floats to ``digits`` significant digits, ints as
    they are, strings of at most 60 characters, and lists/tuples of one or two numbers
    (e.g. a CI) as ``[a, b]``.  Booleans, None, longer strings and lists, nested dicts and
    other types (numpy scalars included) are left out.

    Args:
        evidence: the ``evidence`` dict of a verdict record; anything that is not a mapping
            gives ``""``.
        max_items: stop after this many entries (default 8).
        digits: significant digits of floats (default 3).

    Returns:
        The entries joined by ``"; "`` (``""`` when none qualifies).

    Example:
        >>> from freqkit.book.chapters import evidence_summary
        >>> evidence_summary({"median_ratio": 0.41237, "ratio_ci": [0.3, 0.52], "n": 40,
        ...                   "box_limited": False, "reason": "CI below 1"})
        'median_ratio=0.412; ratio_ci=[0.3, 0.52]; n=40; reason=CI below 1'
    """
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


def display_markdown(text: str) -> None:
    """Show Markdown as a cell output in a notebook (``IPython.display.Markdown``); print it elsewhere.

    Args:
        text: Markdown (tables, admonitions with a colon fence, ...).

    Returns:
        None.
    """
    try:
        from IPython import get_ipython
        from IPython.display import Markdown, display
    except ImportError:  # pragma: no cover - IPython is a book requirement
        print(text)
        return
    if get_ipython() is None:
        print(text)
    else:
        display(Markdown(text))


def models_table(records) -> str:
    """The models a chapter uses, as a Markdown table: accuracy, architecture, data, training time.

    Args:
        records: ``[(dataset, name, model_record(info)), ...]`` (:func:`model_record`).

    Returns:
        A Markdown table, one row per model.

    Example:
        >>> rec = {"test_accuracy": 0.906, "n_test": 1000, "arch": "resnet", "width": 16, "epochs": 16,
        ...        "n_train": 50000, "train_seconds": 549.0, "trained_on": "cpu", "cached": True,
        ...        "objective": "standard", "objective_params": {}}
        >>> print(models_table([("cifar10", "standard", rec)]).splitlines()[2])
        | cifar10 | standard | 90.6% (1000) | resnet w16, 16 epochs, 50000 images | 549 s (cpu) | yes |
    """
    rows = []
    for ds, name, r in records:
        rows.append([ds, name, f"{r['test_accuracy']:.1%} ({r['n_test']})",
                     f"{r['arch']} w{r['width']}, {r['epochs']} epochs, {r['n_train']} images",
                     f"{r['train_seconds']:.0f} s ({r.get('trained_on') or '?'})", bool(r["cached"])])
    return markdown_table(["data set", "model", "test accuracy (n)", "architecture and training", "trained in",
                           "from cache"], rows)


def admonition(body: str, title: str, kind: str = "note") -> str:
    """A MyST admonition (colon fence) with ``title``, of class ``kind`` (note, tip, warning, ...).

    Args:
        body: Markdown inside the box.
        title: its title (Markdown; backticks allowed).
        kind: the admonition class.

    Returns:
        The Markdown text.

    Example:
        >>> print(admonition("Text.", "A finding", "tip"))
        :::{admonition} A finding
        :class: tip
        Text.
        :::
    """
    return f":::{{admonition}} {title}\n:class: {kind}\n{body}\n:::"


_VERDICT_KIND = {"supported": "tip", "rejected": "warning", "inconclusive": "note"}


def verdict_markdown(v: Mapping, keys: Sequence[str] | None = None) -> str:
    """A verdict record as an admonition: the verdict in the title, the rule and the key evidence inside.

    Args:
        v: a verdict record (:func:`freqkit.hypotheses.verdict`).
        keys: evidence keys to list (default: every scalar or pair, as :func:`evidence_summary`).

    Returns:
        Markdown (an admonition: tip for supported, warning for rejected, note for inconclusive).

    Raises:
        ValueError: ``v`` is not a verdict record.
    """
    need = ("hypothesis", "verdict", "rule", "evidence")
    if not isinstance(v, Mapping) or any(k not in v for k in need):
        raise ValueError(f"v must be a verdict record (keys {', '.join(need)}), got "
                         f"{sorted(v) if isinstance(v, Mapping) else type(v).__name__}")
    if "criteria" in v:
        return admonition(criteria_markdown(v), f"{v['hypothesis']}: **{v['verdict']}**",
                          _VERDICT_KIND.get(v["verdict"], "note"))
    ev = v["evidence"]
    items = [(k, ev[k]) for k in (keys if keys is not None else ev) if k in ev]
    rows = [[k, val] for k, val in items
            if isinstance(val, (int, float, str, bool)) or (isinstance(val, (list, tuple)) and 0 < len(val) <= 3)]
    body = f"**Rule.** {v['rule']}\n\n" + (markdown_table(["evidence", "value"], rows) if rows else "")
    return admonition(body, f"{v['hypothesis']}: **{v['verdict']}**", _VERDICT_KIND.get(v["verdict"], "note"))


def _num(x: float) -> str:
    return f"{x:+.3g}" if not abs(x) < 1e-3 or x == 0 else f"{x:+.2e}"


def criteria_markdown(v: Mapping) -> str:
    """The body of a :func:`freqkit.hypotheses.judge` verdict: one table row per criterion, the reason, the provenance.

    Args:
        v: a verdict record with ``criteria`` (:func:`freqkit.hypotheses.judge`).

    Returns:
        Markdown: a table (criterion, role, what it must beat, effect with its CI, smallest
        effect of interest, decision, seeds agreeing, n), the reason for the verdict, and a
        line naming the commit, profile, images and seeds.

    Raises:
        ValueError: ``v`` has no ``criteria``.

    Example:
        >>> import freqkit as fk
        >>> e = {"mean": 0.3, "ci_low": 0.2, "ci_high": 0.4, "n_images": 10}
        >>> v = fk.hypotheses.judge("H1", {"high_pass_accuracy": e, "low_pass_loss": e, "residual_invisible":
        ...     {"mean": 0.5, "ci_low": 0.4, "ci_high": 0.6, "n_images": 10}}, {"commit": "abc", "profile": "smoke"})
        >>> print(criteria_markdown(v).splitlines()[0])
        | criterion | role | must beat | effect [95% CI] | smallest effect | decision | seeds agreeing | n images |
    """
    if not isinstance(v, Mapping) or "criteria" not in v:
        raise ValueError("v must be a verdict record with criteria (freqkit.hypotheses.judge)")
    rows = []
    for c in v["criteria"]:
        lo, hi = (float(v) for v in c["ci"])  # stored JSON writes inf as "inf"
        delta = ("> " if c["direction"] == "greater" else "< ") + (f"{c['delta']:g}" if c["direction"] == "greater"
                                                                  or c["delta"] == 0 else f"{-c['delta']:g}")
        seeds = "-" if c["seeds_agreeing"] is None else f"{c['seeds_agreeing']} of {len(c['per_seed_decisions'])}"
        rows.append([f"`{c['name']}`", c["role"], c["null"],
                     f"{_num(float(c['mean']))} [{_num(lo)}, {_num(hi)}] {c['units']}".strip(),
                     delta, f"**{c['decision']}**", seeds, c["n_images"] if c["n_images"] is not None else "-"])
    table = markdown_table(["criterion", "role", "must beat", f"effect [{v['criteria'][0]['confidence']:.0%} CI]",
                            "smallest effect", "decision", "seeds agreeing", "n images"], rows)
    pv = v.get("provenance", {})
    ev = v.get("evidence", {})
    where = (f"commit `{str(pv.get('commit', '?'))[:12]}`, profile `{pv.get('profile', '?')}`, "
             f"{ev.get('n_images', '?')} images, {ev.get('n_seeds', '?')} seed(s)")
    return f"{table}\n\n**Why {v['verdict']}.** {v.get('reason', '')}.  **Rule.** {v['rule']}\n\n*Run: {where}.*"


def provenance(profile: str, **extra) -> dict:
    """What a verdict records about the run that made it: the code's git commit, the profile, the date.

    Args:
        profile: the book profile.
        **extra: anything else that identifies the run (JSON-ready).

    Returns:
        ``{"commit" (the git commit of the freqkit checkout, with "+dirty" when it has
        uncommitted changes; "unknown" outside a git checkout), "profile", "date", "torch",
        **extra}``.
    """
    root = Path(__file__).resolve().parents[2]
    try:
        commit = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True,
                                timeout=10).stdout.strip() or "unknown"
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=10).stdout.strip()
        commit += "+dirty" if dirty and commit != "unknown" else ""
    except (OSError, subprocess.SubprocessError):
        commit = "unknown"
    return {"commit": commit, "profile": profile, "date": _dt.date.today().isoformat(), "torch": torch.__version__,
            **extra}


# ============================================================================ suites of seeds (chapter 7)

def load_suites(dataset: str, profile: str, objectives: Mapping, seeds: Sequence[int], overrides: Mapping | None = None,
                *, data_root=None, cache_dir=None, device="auto", show: bool = True) -> tuple[dict, dict]:
    """Load (or train) several suites of one data set: every objective of ``objectives`` for every seed.

    The configuration is ``PRESETS[dataset][profile]`` updated with ``overrides``, the same
    for every objective (:func:`freqkit.train_suite` with ``seeds``): the models at the same
    position of each list share their seed and differ only in the objective.  Each
    (objective, seed) is its own checkpoint, so a suite that another chapter trained with the
    same configuration (the standard models of chapter 2, say) comes from the cache.

    Args:
        dataset: a key of ``PRESETS`` (``"cifar10"``, ``"mnist"``).
        profile: the book profile whose preset is the base configuration.
        objectives: non-empty ``{suite name: Objective or None}`` (``None``: standard training).
        seeds: training seeds, a non-empty sequence of distinct integers.
        overrides: config keys on top of the preset (default: none).
        data_root, cache_dir: as :func:`freqkit.train_or_load` (None: its defaults).
        device: where the models are trained and put (``"auto"``: as :func:`freqkit.train_or_load`).
        show: display the models as a Markdown table (:func:`models_table`; default True),
            one row per suite and seed.

    Returns:
        ``(models, infos)``: ``{suite: [model per seed]}`` in eval mode on ``device`` and
        ``{suite: [train_or_load info per seed]}``, in the order of ``seeds``.

    Raises:
        KeyError: a data set or profile that ``PRESETS`` does not have.
        ValueError, TypeError: what :func:`freqkit.train_suite` refuses (empty ``objectives``,
            repeated seeds, an entry that is not an objective, a bad config key).
    """
    config = {**PRESETS[dataset][profile], **dict(overrides or {})}
    models, infos = train_suite(dataset, objectives, config, device=device, seeds=list(seeds), data_root=data_root,
                                cache_dir=cache_dir)
    if show:
        display_markdown(models_table([(dataset, f"{name}, seed {i['config']['seed']}", model_record(i))
                                       for name, lst in infos.items() for i in lst]))
    return models, infos


def matched_accuracy_overrides(infos: Sequence[Mapping], val_size: int, check_every: int | None = None,
                               accuracy: str = "test_accuracy", digits: int = 3) -> dict:
    """The config keys of a matched-accuracy control: standard training stopped at another suite's clean accuracy.

    The target is the mean over ``infos`` (a suite's :func:`freqkit.train_or_load` infos,
    e.g. the adversarially trained models) of their clean ``accuracy``, rounded to
    ``digits`` decimals so that the control's checkpoint key (which hashes the target) does
    not move with the last bit of a float.  The control is stopped when its accuracy on its
    own validation split (``val_size`` training images held out) reaches the target
    (:mod:`freqkit.training`, "Stopping at an accuracy").

    Args:
        infos: non-empty sequence of infos holding ``accuracy`` (a number in ``(0, 1]``).
        val_size: validation images held out of the control's training set, an integer >= 1.
        check_every: optimiser steps between validation checks (an integer >= 1), or None
            (at the end of each epoch).
        accuracy: which info key is matched: ``"test_accuracy"`` (default) or
            ``"val_accuracy"`` (when the source suite was trained with a validation split).
        digits: decimals of the target, an integer >= 1.

    Returns:
        ``{"val_size", "stop_at_accuracy", "stop_check_every"}``, to merge into the
        control's configuration overrides.

    Raises:
        ValueError: ``infos`` empty, an accuracy missing or outside ``(0, 1]``, ``val_size``
            or ``digits`` not an integer >= 1, ``check_every`` neither None nor an integer >= 1.

    Example:
        >>> matched_accuracy_overrides([{"test_accuracy": 0.7012}, {"test_accuracy": 0.7131}], 5000, 25)
        {'val_size': 5000, 'stop_at_accuracy': 0.707, 'stop_check_every': 25}
    """
    if isinstance(infos, Mapping) or not isinstance(infos, Sequence) or not infos:
        raise ValueError("infos must be a non-empty sequence of train_or_load infos (one per seed)")
    for v, nm in ((val_size, "val_size"), (digits, "digits")):
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ValueError(f"{nm} must be an integer >= 1, got {v!r}")
    if check_every is not None and (isinstance(check_every, bool) or not isinstance(check_every, int)
                                    or check_every < 1):
        raise ValueError(f"check_every must be None or an integer >= 1, got {check_every!r}")
    accs = []
    for i, info in enumerate(infos):
        a = info.get(accuracy) if isinstance(info, Mapping) else None
        if isinstance(a, bool) or not isinstance(a, (int, float)) or not 0 < a <= 1:
            raise ValueError(f"infos[{i}][{accuracy!r}] must be an accuracy in (0, 1], got {a!r}")
        accs.append(float(a))
    target = min(1.0, max(10.0 ** -digits, round(sum(accs) / len(accs), digits)))
    return {"val_size": val_size, "stop_at_accuracy": target, "stop_check_every": check_every}


def stop_table(infos: Sequence[Mapping], reference: Sequence[Mapping] | None = None) -> str:
    """Where each model of a matched-accuracy control stopped, as a Markdown table.

    One row per seed: the target, whether it was reached, the (fractional) epoch and the
    training images seen at the stop, the validation accuracy there (on how many images),
    the model's test accuracy, and (given ``reference``, the suite it is matched to) that
    suite's test accuracy for the same seed.

    Args:
        infos: the control's :func:`freqkit.train_or_load` infos, each with ``config``,
            ``test_accuracy`` and ``stop`` (``target``, ``reached``, ``epoch``,
            ``images_seen``, ``val_accuracy``, ``n_val``).
        reference: the matched suite's infos, the same seeds in the same order (optional).

    Returns:
        The Markdown table.

    Raises:
        ValueError: an info without ``stop`` (not trained with ``stop_at_accuracy``), or a
            ``reference`` of another length.

    Example:
        >>> stop = {"target": 0.7, "reached": True, "epoch": 1.5, "images_seen": 6000, "val_accuracy": 0.71,
        ...         "n_val": 500}
        >>> t = stop_table([{"config": {"seed": 0}, "test_accuracy": 0.69, "stop": stop}],
        ...                [{"test_accuracy": 0.7}])
        >>> print(t.splitlines()[2])
        | 0 | 70.0% | yes | 1.50 | 6000 | 71.0% (500) | 69.0% | 70.0% |
    """
    if reference is not None and len(reference) != len(infos):
        raise ValueError(f"reference must hold one info per seed of infos ({len(infos)}), got {len(reference)}")
    rows = []
    for k, i in enumerate(infos):
        st = i.get("stop") if isinstance(i, Mapping) else None
        if not st:
            raise ValueError(f"infos[{k}] has no 'stop' record: was it trained with stop_at_accuracy?")
        epoch = "-" if st.get("epoch") is None else f"{st['epoch']:.2f}"
        val = "-" if st.get("val_accuracy") is None else f"{st['val_accuracy']:.1%} ({st.get('n_val')})"
        row = [i["config"]["seed"], f"{st['target']:.1%}", "yes" if st.get("reached") else "no (full run)", epoch,
               st.get("images_seen") if st.get("images_seen") is not None else "-", val, f"{i['test_accuracy']:.1%}"]
        if reference is not None:
            row.append(f"{reference[k]['test_accuracy']:.1%}")
        rows.append(row)
    header = ["seed", "target", "reached", "stopped at epoch", "images seen", "validation accuracy (n)",
              "test accuracy"] + (["matched suite's test accuracy"] if reference is not None else [])
    return markdown_table(header, rows)


def per_seed(models: Sequence, fn: Callable) -> np.ndarray:
    """A per-image measure of every model of a suite, stacked as a float ``(S, N)`` array (seeds by images).

    Args:
        models: the suite, one model per seed (non-empty).
        fn: ``fn(model)`` -> ``(N,)`` values (a tensor, array or list), the same ``N`` for every model.

    Returns:
        float64 numpy array ``(len(models), N)``, the input layout of
        :func:`freqkit.hypotheses.decide_suites`.

    Raises:
        ValueError: ``models`` empty, a result that is not 1-D, or results of different lengths.

    Example:
        >>> per_seed([1.0, 2.0], lambda m: [m, 2 * m, 3 * m]).tolist()
        [[1.0, 2.0, 3.0], [2.0, 4.0, 6.0]]
    """
    if not len(models):
        raise ValueError("models must hold at least one model")
    rows = []
    for m in models:
        v = fn(m)
        v = v.detach().cpu().double().numpy() if isinstance(v, torch.Tensor) else np.asarray(v, dtype=float)
        if v.ndim != 1:
            raise ValueError(f"fn(model) must return one value per image (N,), got shape {v.shape}")
        rows.append(v)
    if len({r.shape[0] for r in rows}) != 1:
        raise ValueError(f"fn(model) returned different numbers of images: {[r.shape[0] for r in rows]}")
    return np.stack(rows).astype(float)


def band_attack_rows(evaluations: Mapping) -> tuple[list, list]:
    """``(header, rows)``: band PGD beside the band AutoAttack, per model, norm and band.

    Args:
        evaluations: ``{model name: freqkit.evaluate_defense(..., band_autoattack=...) result}``
            (keys ``attacks`` and ``band_autoattack``; a result without band AutoAttack
            gets its PGD numbers only).

    Returns:
        ``(header, rows)`` for :func:`freqkit.book.viz.markdown_table`: one row per model and
        ``"<norm>/<band>"`` attack: model, attack, eps, coefficients in the band, PGD robust
        accuracy on all images (n), PGD's ``budget_used`` (median ``||delta|| / eps`` of the
        images that resisted: far below 1, the band barely fits in the ``[0, 1]`` box), band
        AutoAttack robust accuracy and band PGD on the same (first) images, robust under both,
        and the images of that comparison.  Accuracies in ``[0, 1]``, copied unchanged; None
        where an attack did not run.

    Raises:
        ValueError: ``evaluations`` empty.
        KeyError: a result without ``attacks``.

    Example:
        >>> e = {"attacks": {"linf/low": {"eps": 0.03, "accuracy": 0.5, "n": 10, "n_coefficients": 512,
        ...                               "budget_used": 0.9}},
        ...      "band_autoattack": {"linf/low": {"accuracy": 0.4, "pgd_accuracy": 0.5, "worst_case_accuracy": 0.4,
        ...                                       "n": 5}}}
        >>> band_attack_rows({"robust": e})[1]
        [['robust', 'linf/low', 0.03, 512, 0.5, 10, 0.9, 0.4, 0.5, 0.4, 5]]
    """
    if not evaluations:
        raise ValueError("evaluations must hold at least one evaluate_defense() result")
    header = ["model", "attack", "eps", "coefficients", "band PGD", "n", "budget used", "band AutoAttack",
              "band PGD, same images", "robust under both", "n (AutoAttack)"]
    rows = []
    for name, e in evaluations.items():
        baa = e.get("band_autoattack") or {}
        for k, a in e["attacks"].items():
            b = baa.get(k) or {}
            rows.append([name, k, a.get("eps"), a.get("n_coefficients"), a.get("accuracy"), a.get("n"),
                         a.get("budget_used"), b.get("accuracy"), b.get("pgd_accuracy"),
                         b.get("worst_case_accuracy"), b.get("n")])
    return header, rows


def masking_rows(checks: Mapping) -> tuple[list, list]:
    """``(header, rows)``: the gradient-masking checks of :func:`freqkit.masking_checks`, one row per model and check.

    Args:
        checks: ``{model name: freqkit.masking_checks(...) result}`` (keys ``whitebox``,
            ``checks``).

    Returns:
        ``(header, rows)`` for :func:`freqkit.book.viz.markdown_table`: model, check, what
        was measured (in words, with its numbers), the white-box robust accuracy it is
        compared with, and passed (``"yes"``, ``"NO"`` or ``"skipped"``).

    Raises:
        ValueError: ``checks`` empty.
        KeyError: a result without ``whitebox`` or ``checks``.

    Example:
        >>> r = {"whitebox": {"accuracy": 0.4}, "checks": {"transfer": {"skipped": "no source model given",
        ...      "passed": None}}}
        >>> masking_rows({"m": r})[1]
        [['m', 'transfer', 'skipped: no source model given', 0.4, 'skipped']]
    """
    if not checks:
        raise ValueError("checks must hold at least one masking_checks() result")
    header = ["model", "check", "measured", "white-box robust accuracy", "passed"]
    rows = []
    for name, r in checks.items():
        wb = r["whitebox"]["accuracy"]
        for k, c in r["checks"].items():
            if c.get("skipped"):
                what = f"skipped: {c['skipped']}"
            elif k == "accuracy_to_zero":
                what = (f"APGD-CE accuracy {c['accuracy'][0]:.1%} at eps 0 -> {c['accuracy'][-1]:.1%} at eps "
                        f"{c['eps'][-1]:.3g} (must reach {c['threshold']:.0%}); monotone: "
                        f"{'yes' if c['monotone'] else 'no'}")
            elif k == "blackbox":
                what = f"SimBA-DCT robust accuracy {c['blackbox_accuracy']:.1%} ({c.get('attack', '')})"
            elif k == "transfer":
                what = f"transfer from the source model: robust accuracy {c['transfer_accuracy']:.1%}"
            else:
                what = ", ".join(f"{kk}={vv}" for kk, vv in c.items() if isinstance(vv, (int, float, str)))
            passed = "skipped" if c.get("passed") is None else ("yes" if c["passed"] else "NO")
            rows.append([name, k, what, wb, passed])
    return header, rows
