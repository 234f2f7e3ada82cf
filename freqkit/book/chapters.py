"""Chapter plumbing: what the chapters share that is not computation.

Loading (or training) the models a chapter needs (:func:`load_models`), the one-line records
and tables chapters print (:func:`record_line`, :func:`robustness_rows`, :func:`band_table`,
:func:`h3_summary`, :func:`verdict_lines`, :func:`evidence_summary`).  Everything measured
comes from the library; nothing here computes a result.
"""
from __future__ import annotations

from typing import Callable, Mapping, Sequence

from ..objectives import train_suite
from ..training import PRESETS, train_or_load

__all__ = ["load_models", "model_record", "record_line", "robustness_rows", "band_table", "h3_summary",
           "verdict_lines", "evidence_summary"]


def load_models(datasets: Sequence[str], profile: str, overrides: Mapping | None = None, *,
                objectives: Callable | Mapping | None = None, data_root=None, cache_dir=None, device="auto",
                show: bool = True) -> tuple[dict, dict]:
    """The models a chapter needs: ``PRESETS[dataset][profile]`` updated with ``overrides[dataset]``.

    Args:
        datasets: data set names ("cifar10", "mnist").
        profile: the book profile whose preset is the base configuration.
        overrides: ``{dataset: {config key: value}}`` on top of the preset.
        objectives: ``None`` for one standard model per data set, or a ``{name: Objective or
            None}`` dict (or a function of the data set returning one) for a suite
            (:func:`freqkit.train_suite`) that differs only in the objective.
        data_root, cache_dir, device: as :func:`freqkit.train_or_load`.
        show: print one :func:`record_line` per model.

    Returns:
        ``(models, infos)``: ``models[dataset]`` (or ``models[dataset][name]`` with
        ``objectives``) in eval mode on ``device``, and the ``train_or_load`` infos alike.
    """
    overrides = dict(overrides or {})
    unknown = sorted(set(overrides) - set(datasets))
    if unknown:
        raise ValueError(f"overrides names data sets {unknown} that are not in datasets {list(datasets)}")
    models, infos = {}, {}
    for ds in datasets:
        config = {**PRESETS[ds][profile], **overrides.get(ds, {})}
        if objectives is None:
            m, info = train_or_load(ds, config, data_root=data_root, cache_dir=cache_dir, device=device)
            models[ds], infos[ds] = m.eval(), info
            lines = [record_line(ds, "standard", model_record(info))]
        else:
            objs = objectives(ds) if callable(objectives) else objectives
            models[ds], infos[ds] = train_suite(ds, objs, config, device=device, data_root=data_root,
                                                cache_dir=cache_dir)
            width = max(len(n) for n in objs)
            lines = [record_line(ds, n, model_record(i), name_width=width) for n, i in infos[ds].items()]
        if show:
            print("\n".join(lines))
    return models, infos


def model_record(info: Mapping) -> dict:
    """The JSON-ready facts of a :func:`freqkit.train_or_load` ``info``: accuracy, time, setting."""
    cfg = info["config"]
    return {"test_accuracy": info["test_accuracy"], "n_test": info["n_test"], "train_seconds": info["train_seconds"],
            "trained_on": info.get("trained_on"), "cached": info["cached"], "n_train": info["n_train"],
            "epochs": cfg["epochs"], "width": cfg["width"], "arch": cfg["arch"],
            "objective": cfg.get("objective", "standard"), "objective_params": cfg.get("objective_params", {}),
            "config": cfg, "key": info["key"]}


def record_line(dataset: str, name: str, rec: Mapping, name_width: int = 20) -> str:
    """One line of text for a :func:`model_record`: accuracy, model, data, time, objective."""
    return (f"{dataset:8s} {name:{name_width}s} test accuracy {rec['test_accuracy']:.2%} ({rec['n_test']} images) | "
            f"{rec['arch']} width {rec['width']}, {rec['epochs']} epochs on {rec['n_train']} images | trained "
            f"{rec['train_seconds']:.0f} s on {rec['trained_on']} | cached={rec['cached']} | objective "
            f"{rec['objective']} {rec['objective_params']}")



def robustness_rows(evaluations: Mapping, attacks: Sequence[str] | None = None, records: Mapping | None = None):
    """``(header, rows)`` of a table of clean and robust accuracies (for :func:`freqkit.book.viz.markdown_table`).

    One row per ``{name: evaluate_defense result}``; columns: clean accuracy, each attack's
    robust accuracy (``"<norm>/<band>"``, default every attack of the first result),
    AutoAttack per norm (or its status), and, given ``records`` (:func:`model_record` per
    name), training seconds.
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
    """:func:`freqkit.band_comparison` records as a fixed-width text table, one row per band: number
    of coefficients, success rate at each eps of ``eps_list``, median minimal distortion with
    its CI, success at ``eps_max``, box-limited share, largest out-of-band share."""
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



def h3_summary(v: Mapping) -> str:
    """A :func:`freqkit.hypotheses.decide_h3` verdict as text: the verdict and reason, the rule, the paired ratio with
    its CI, and each band's median minimal distortion with its CI."""
    need = ("hypothesis", "verdict", "rule", "evidence")
    if not isinstance(v, Mapping) or any(k not in v for k in need):
        raise ValueError(f"v must be a decide_h3 verdict (keys {', '.join(need)}), got "
                         f"{sorted(v) if isinstance(v, Mapping) else type(v).__name__}")
    e = v["evidence"]

    def g(x):  # stored evidence writes inf as "inf"
        return f"{float(x):.3g}"

    return "\n".join([
        f"{v['hypothesis']} -> {v['verdict'].upper()} ({e['reason']})",
        f"  rule: {v['rule']}",
        f"  median over images of d_low / d_high = {g(e['median_ratio'])}, 95% CI "
        f"[{', '.join(map(g, e['ratio_ci']))}] | n={e['n']} | box-limited {e['box_limited_share']}",
        f"  per band: {e['band_low']} median {g(e['median_low'])} CI [{', '.join(map(g, e['ci_low_band']))}] | "
        f"{e['band_high']} median {g(e['median_high'])} CI [{', '.join(map(g, e['ci_high_band']))}]"
        + (f" | full band {g(e['median_full'])}" if "median_full" in e else "")])



def verdict_lines(v: Mapping) -> str:
    """A verdict record (:mod:`freqkit.hypotheses`) as three lines: statement and verdict, rule, evidence."""
    need = ("hypothesis", "verdict", "rule", "evidence")
    if not isinstance(v, Mapping) or any(k not in v for k in need):
        raise ValueError(f"v must be a verdict record (keys {', '.join(need)}), got "
                         f"{sorted(v) if isinstance(v, Mapping) else type(v).__name__}")
    ev = {k: (round(val, 4) if isinstance(val, float) else val) for k, val in v["evidence"].items()}
    return f"{v['hypothesis']} -> {v['verdict'].upper()}\n  rule: {v['rule']}\n  evidence: {ev}"


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
