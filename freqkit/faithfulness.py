"""Are frequency attributions right?  Summaries that chapters 3 and 4 report and judge.

:mod:`freqkit.attribution` computes the attributions and the raw checks (deletion and
insertion curves, the randomisation test, planted-band shares).  This module runs several
methods on the same images (:func:`compare_methods`), measures completeness
(:func:`relative_completeness`, :func:`completeness_summary`), agreement between methods
(:func:`band_rank_agreement`), parity with Captum (:func:`captum_parity`), summarises
deletion/insertion areas with intervals (:func:`auc_table`), and turns them into the
verdict on H2 (:func:`h2_verdict`).
"""
from __future__ import annotations

import numbers
from typing import Callable, Mapping, Sequence

import numpy as np
import torch

from ._validate import check_choice, check_images, check_positive_int
from .attribution import (
    ATTRIBUTION_METHODS, DeletionInsertionCurves, FrequencyAttribution, FrequencyModel, attribute,
)

__all__ = ["compare_methods", "relative_completeness", "completeness_summary", "band_rank_agreement",
           "h2_verdict", "captum_parity", "auc_table", "distribution_summary", "topk_series",
           "input_rank_correlation", "randomisation_summary", "band_share_profile"]


# ============================================================================ several methods at once

def compare_methods(model: Callable, x: torch.Tensor, target, methods, masks: torch.Tensor | None = None,
                    basis: str = "dct", n_steps: int = 32, baseline=None, internal_batch_size: int | None = None,
                    progress: bool = False) -> dict:
    """Run several attribution methods on the same images, targets and bands.

    Args:
        methods: a sequence of method names (see :data:`freqkit.ATTRIBUTION_METHODS`), or
            a dict ``{label: {"method": name, **options}}`` to run one method in several
            settings (e.g. occlusion on rings and on radial bands: give ``"masks"`` in the
            options to override ``masks``).
        target: as :func:`freqkit.attribute`; ``"predicted"`` is resolved once, on the
            first method, and reused so every method explains the same class.
        masks, basis, n_steps, baseline, internal_batch_size: shared by every method
            (options in ``methods`` override them).

    Returns:
        ``{label: FrequencyAttribution}`` in the order given.
    """
    if isinstance(methods, str):
        methods = [methods]
    if isinstance(methods, dict):
        spec = {}
        for label, opts in methods.items():
            if not isinstance(opts, dict) or "method" not in opts:
                raise ValueError(f"methods[{label!r}] must be a dict with a 'method' key, got {opts!r}")
            spec[str(label)] = dict(opts)
    else:
        methods = list(methods)
        if not methods:
            raise ValueError("methods is empty: give at least one attribution method")
        spec = {m: {"method": m} for m in methods}
    for label, opts in spec.items():
        check_choice(opts["method"], f"methods[{label!r}]", ATTRIBUTION_METHODS)
    from tqdm.auto import tqdm

    out, t = {}, target
    for label, opts in tqdm(spec.items(), disable=not progress, desc="methods"):
        kw = dict(basis=basis, n_steps=n_steps, baseline=baseline, internal_batch_size=internal_batch_size,
                  masks=masks)
        kw.update(opts)
        method = kw.pop("method")
        out[label] = attribute(model, x, t, method=method, **kw)
        t = out[label].target
    return out


# ============================================================================ completeness

def relative_completeness(result: FrequencyAttribution) -> torch.Tensor:
    """``|delta| / |f(x) - f(baseline)|`` per image, ``(N,)``: IG's completeness error, relative.

    ``delta = sum(scores) - (f(x) - f(baseline))`` (Sundararajan et al. 2017); an image whose
    output does not change (``f(x) == f(baseline)``) gives ``inf`` unless delta is 0 too.
    """
    if not isinstance(result, FrequencyAttribution):
        raise TypeError(f"result must be a FrequencyAttribution, got {type(result).__name__}")
    if result.delta is None or result.output_baseline is None:
        raise ValueError(f"this {result.method!r} result has no completeness error (use method='ig' or 'shapley')")
    gap = (result.output_x - result.output_baseline).abs().double()
    d = result.delta.abs().double()
    with np.errstate(divide="ignore", invalid="ignore"):
        rel = d / gap
    return torch.where((gap == 0) & (d == 0), torch.zeros_like(rel), rel).cpu()


def distribution_summary(values, quantiles: Sequence[float] = (0.1, 0.25, 0.5, 0.75, 0.9)) -> dict:
    """Mean, min, max and quantiles of a 1-D sample (NaNs dropped and counted)."""
    v = np.asarray(values.detach().cpu().double() if isinstance(values, torch.Tensor) else values, dtype=float)
    v = v.reshape(-1)
    n_nan = int(np.isnan(v).sum())
    v = v[~np.isnan(v)]
    if v.size == 0:
        raise ValueError("values holds no (non-NaN) number")
    out = {"n": int(v.size), "n_nan": n_nan, "mean": float(v.mean()), "min": float(v.min()), "max": float(v.max())}
    for q in quantiles:
        out[f"q{round(100 * q):02d}"] = float(np.quantile(v, q))
    return out


def completeness_summary(rel_error, tol: float = 0.01) -> dict:
    """Distribution of relative completeness errors and the share of images within ``tol``."""
    if isinstance(tol, bool) or not isinstance(tol, numbers.Real) or not tol > 0:
        raise ValueError(f"tol must be a number > 0, got {tol!r}")
    v = np.asarray(rel_error.detach().cpu().double() if isinstance(rel_error, torch.Tensor) else rel_error,
                   dtype=float).reshape(-1)
    if v.size == 0:
        raise ValueError("rel_error is empty")
    s = distribution_summary(v)
    s.update({"tol": float(tol), "share_within": float(np.mean(v <= tol)), "median": s["q50"]})
    return s


# ============================================================================ agreement between methods

def _bands_of(a, name: str) -> torch.Tensor:
    if isinstance(a, FrequencyAttribution):
        a = a.bands()
    if not isinstance(a, torch.Tensor) or a.dim() != 2:
        raise ValueError(f"{name} must be (N, K) band scores or a FrequencyAttribution with masks, "
                         f"got {tuple(a.shape) if isinstance(a, torch.Tensor) else type(a).__name__}")
    return a


def band_rank_agreement(a, b, method: str = "spearman") -> torch.Tensor:
    """Rank correlation between two methods' band scores, one per image, ``(N,)``.

    ``a``, ``b``: ``(N, K)`` band scores (or FrequencyAttributions computed with the same
    masks).  ``method``: ``"spearman"`` (average ranks for ties) or ``"kendall"`` (tau-b).
    A row that is constant in either input gives NaN.
    """
    from scipy.stats import kendalltau, rankdata

    check_choice(method, "method", ("spearman", "kendall"))
    a, b = _bands_of(a, "a"), _bands_of(b, "b")
    if a.shape != b.shape:
        raise ValueError(f"a and b must have the same shape (N, K), got {tuple(a.shape)} and {tuple(b.shape)}")
    if a.shape[1] < 2:
        raise ValueError(f"rank agreement needs K >= 2 bands, got {a.shape[1]}")
    an, bn = a.detach().double().cpu().numpy(), b.detach().double().cpu().numpy()
    if method == "kendall":
        r = np.array([kendalltau(u, v).statistic if np.ptp(u) > 0 and np.ptp(v) > 0 else np.nan
                      for u, v in zip(an, bn)], dtype=float)
        return torch.from_numpy(r)
    ra, rb = rankdata(an, axis=1), rankdata(bn, axis=1)
    ra -= ra.mean(1, keepdims=True)
    rb -= rb.mean(1, keepdims=True)
    den = np.sqrt((ra ** 2).sum(1) * (rb ** 2).sum(1))
    with np.errstate(invalid="ignore", divide="ignore"):
        r = np.where(den > 0, (ra * rb).sum(1) / np.where(den > 0, den, 1.0), np.nan)
    return torch.from_numpy(r)


def h2_verdict(rel_error, rank_corr, max_rel_error: float = 0.01, min_median_rho: float = 0.5,
               n_steps: int | None = None) -> dict:
    """Verdict on H2: attribution quantifies each component's contribution.

    Rule: *supported* if the median relative IG completeness error is below
    ``max_rel_error`` **and** the median (over images) Spearman correlation between IG
    band scores and band-occlusion scores is at least ``min_median_rho``; *rejected* if
    either fails; *inconclusive* if there are fewer than 3 usable images.

    Args:
        rel_error: ``(N,)`` :func:`relative_completeness` of IG.
        rank_corr: ``(N,)`` :func:`band_rank_agreement` of IG and occlusion band scores.
    """
    from .results import verdict

    for v, nm in ((max_rel_error, "max_rel_error"), (min_median_rho, "min_median_rho")):
        if isinstance(v, bool) or not isinstance(v, numbers.Real) or not np.isfinite(v):
            raise ValueError(f"{nm} must be a finite number, got {v!r}")
    if not max_rel_error > 0:
        raise ValueError(f"max_rel_error must be > 0, got {max_rel_error!r}")
    rel = np.asarray(rel_error.detach().cpu().double() if isinstance(rel_error, torch.Tensor) else rel_error,
                     dtype=float).reshape(-1)
    rho = np.asarray(rank_corr.detach().cpu().double() if isinstance(rank_corr, torch.Tensor) else rank_corr,
                     dtype=float).reshape(-1)
    rel, rho_ok = rel[np.isfinite(rel)], rho[np.isfinite(rho)]
    rule = (f"supported if the median relative IG completeness error |delta| / |f(x) - f(b)| < {max_rel_error:g}"
            + (f" (n_steps={n_steps})" if n_steps else "")
            + f" AND the median per-image Spearman correlation between IG and band-occlusion band scores is "
              f">= {min_median_rho:g}; rejected if either fails; inconclusive with fewer than 3 images")
    if rel.size < 3 or rho_ok.size < 3:
        return verdict("H2: attribution quantifies each component's contribution", rule, None,
                       {"n_completeness": int(rel.size), "n_rank": int(rho_ok.size)})
    med_rel, med_rho = float(np.median(rel)), float(np.median(rho_ok))
    complete, agree = med_rel < max_rel_error, med_rho >= min_median_rho
    evidence = {"median_rel_completeness_error": med_rel, "share_within_tol": float(np.mean(rel <= max_rel_error)),
                "max_rel_completeness_error": float(rel.max()), "median_spearman": med_rho,
                "spearman_quartiles": [float(np.quantile(rho_ok, q)) for q in (0.25, 0.5, 0.75)],
                "share_spearman_positive": float(np.mean(rho_ok > 0)), "completeness_ok": complete,
                "agreement_ok": agree, "n_images": int(rel.size), "n_rank": int(rho_ok.size),
                "n_rank_undefined": int(rho.size - rho_ok.size)}
    return verdict("H2: attribution quantifies each component's contribution", rule, complete and agree, evidence)


# ============================================================================ parity with Captum

def captum_parity(model: Callable, x: torch.Tensor, target, masks: torch.Tensor, basis: str = "dct",
                  n_steps: int = 32, baseline=None, internal_batch_size: int | None = None) -> dict:
    """Max absolute difference between freqkit and Captum run by hand on the wrapped model.

    IG: ``captum.attr.IntegratedGradients(FrequencyModel(model, basis))`` on the
    coefficients, against :func:`freqkit.attribute` ``method="ig"``.  Band occlusion:
    ``captum.attr.FeatureAblation`` with ``feature_mask`` = the band index of every
    coefficient (all channels of a band ablated together) and the baseline's coefficients,
    against ``method="occlusion"`` (Captum gives every coefficient of a band the band's
    score; freqkit's band score is compared with it).

    Returns:
        ``{"ig_max_abs_diff", "ig_max_abs_score", "occlusion_max_abs_diff",
        "occlusion_max_abs_score", "n", "n_steps", "dtype"}``.
    """
    from captum.attr import FeatureAblation, IntegratedGradients

    check_images(x, "x")
    check_positive_int(n_steps, "n_steps")
    ours_ig = attribute(model, x, target, method="ig", basis=basis, n_steps=n_steps, baseline=baseline,
                        internal_batch_size=internal_batch_size)
    t = ours_ig.target
    ours_occ = attribute(model, x, t, method="occlusion", basis=basis, masks=masks, baseline=baseline,
                         internal_batch_size=internal_batch_size)
    fm = FrequencyModel(model, basis)
    c, cb = ours_ig.coeffs, ours_ig.baseline_coeffs
    ref_ig = IntegratedGradients(fm).attribute(c.detach().clone().requires_grad_(), baselines=cb, target=t,
                                               n_steps=n_steps, method="gausslegendre",
                                               internal_batch_size=internal_batch_size).detach()
    m = ours_occ.masks
    k = m.shape[0]
    fmask = (m.long() * torch.arange(k, device=m.device)[:, None, None]).sum(0)[None, None]
    fmask = fmask.expand(1, x.shape[1], -1, -1)
    with torch.no_grad():
        ref_occ = FeatureAblation(fm).attribute(c, baselines=cb, target=t, feature_mask=fmask,
                                                perturbations_per_eval=min(k, 16))
    first = m.reshape(k, -1).float().argmax(1)
    ref_bands = ref_occ[:, 0].reshape(x.shape[0], -1)[:, first]
    return {"ig_max_abs_diff": float((ours_ig.scores - ref_ig).abs().max()),
            "ig_max_abs_score": float(ref_ig.abs().max()),
            "occlusion_max_abs_diff": float((ours_occ.band_scores - ref_bands).abs().max()),
            "occlusion_max_abs_score": float(ref_bands.abs().max()),
            "n": int(x.shape[0]), "n_steps": n_steps, "n_bands": k, "dtype": str(x.dtype).replace("torch.", "")}


# ============================================================================ deletion / insertion areas

def auc_table(curves: DeletionInsertionCurves, n_boot: int = 1000, seed: int = 0) -> dict:
    """Mean deletion and insertion AUC per order with 95% bootstrap intervals over images.

    Also the share of images on which the ``"attribution"`` order beats ``"random"``
    (lower deletion AUC, higher insertion AUC), where both orders were computed.

    Returns:
        ``{"deletion": {order: {"mean", "ci"}}, "insertion": {...}, "beats_random": {...}, "n"}``.
    """
    if not isinstance(curves, DeletionInsertionCurves):
        raise TypeError(f"curves must be a DeletionInsertionCurves, got {type(curves).__name__}")
    check_positive_int(n_boot, "n_boot")
    rng = np.random.default_rng(seed)
    out: dict = {"deletion": {}, "insertion": {}, "beats_random": {}}
    n = None
    for kind, aucs in (("deletion", curves.auc_deletion), ("insertion", curves.auc_insertion)):
        for order, v in aucs.items():
            a = v.detach().double().cpu().numpy()
            n = a.shape[0]
            idx = rng.integers(0, n, size=(n_boot, n))
            boots = a[idx].mean(1)
            out[kind][order] = {"mean": float(a.mean()),
                                "ci": [float(np.quantile(boots, 0.025)), float(np.quantile(boots, 0.975))]}
    if "attribution" in curves.auc_deletion and "random" in curves.auc_deletion:
        out["beats_random"] = {
            "deletion": float((curves.auc_deletion["attribution"] < curves.auc_deletion["random"]).double().mean()),
            "insertion": float((curves.auc_insertion["attribution"] > curves.auc_insertion["random"]).double().mean())}
    out["n"] = n
    out["output"] = curves.output
    return out


# ============================================================================ what the model sees

def topk_series(model: Callable, x: torch.Tensor, target, scores, fractions: Sequence[float], basis: str = "dct",
                by: str = "abs", baseline=None, batch_size: int = 256) -> dict:
    """Images rebuilt from their top-``fraction`` attributed coefficients, and what the model says.

    For every fraction: :func:`freqkit.topk_reconstruction` of ``x`` with ``scores``, the
    model's softmax probability of ``target`` on it and its predicted class.

    Returns:
        ``{"fractions": [...], "images": [(N, C, H, W) per fraction], "prob": (F, N),
        "pred": (F, N) long, "target": (N,)}``.
    """
    from .attribution import _resolve_target, topk_reconstruction

    check_images(x, "x")
    check_positive_int(batch_size, "batch_size")
    fractions = [float(f) for f in fractions]
    if not fractions:
        raise ValueError("fractions is empty")

    @torch.no_grad()
    def logits(z):
        return torch.cat([model(z[i:i + batch_size]) for i in range(0, z.shape[0], batch_size)])

    t = _resolve_target(target, logits(x))
    imgs, prob, pred = [], [], []
    for f in fractions:
        r = topk_reconstruction(x, scores, f, basis=basis, by=by, baseline=baseline)
        out = logits(r)
        imgs.append(r)
        prob.append(torch.softmax(out.double(), 1).gather(1, t[:, None])[:, 0].cpu())
        pred.append(out.argmax(1).cpu())
    return {"fractions": fractions, "images": imgs, "prob": torch.stack(prob), "pred": torch.stack(pred),
            "target": t.cpu()}


# ============================================================================ how much is just the input?

def input_rank_correlation(result: FrequencyAttribution) -> torch.Tensor:
    """Spearman correlation, per image, between ``|scores|`` and ``|c - c_baseline|``, ``(N,)``.

    Methods that multiply a gradient by the input (gradient x input, IG) inherit the
    image's spectrum, which falls steeply with frequency (about ``1/f`` in amplitude for
    natural images): part of their ranking of coefficients is the image's, not the
    model's.  This measures that part; compare it with the randomisation check.
    """
    from .attribution import _spearman_rows

    if not isinstance(result, FrequencyAttribution):
        raise TypeError(f"result must be a FrequencyAttribution, got {type(result).__name__}")
    if result.scores is None:
        raise ValueError(f"this {result.method!r} result has no per-coefficient scores")
    n = result.coeffs.shape[0]
    return _spearman_rows(result.scores.abs().reshape(n, -1),
                          (result.coeffs - result.baseline_coeffs).abs().reshape(n, -1))


def randomisation_summary(checks: Mapping) -> dict:
    """The numbers a chapter reports from :func:`freqkit.model_randomisation_check` results.

    ``checks``: ``{method label: RandomisationCheck}`` (mode "cascading" or "independent",
    top layer first).  Per label: ``spearman_abs_top_layer`` and ``spearman_abs`` (mean over
    images of the Spearman correlation of ``|scores|`` with the trained model's, after
    randomising the top layer / every layer), ``spearman`` (signed, every layer) and
    ``spearman_with_input`` (:func:`input_rank_correlation` of the trained model's scores:
    how much of the ranking the image's own spectrum explains).  NaN images (constant
    scores) are left out of the means.
    """
    from .attribution import RandomisationCheck

    if not isinstance(checks, Mapping) or not checks:
        raise ValueError("checks must be a non-empty {label: RandomisationCheck} dict")
    out = {}
    for label, c in checks.items():
        if not isinstance(c, RandomisationCheck):
            raise TypeError(f"checks[{label!r}] must be a RandomisationCheck (model_randomisation_check), "
                            f"got {type(c).__name__}")
        out[label] = {"spearman_abs": float(np.nanmean(c.spearman_abs[-1].numpy())),
                      "spearman": float(np.nanmean(c.spearman[-1].numpy())),
                      "spearman_abs_top_layer": float(np.nanmean(c.spearman_abs[0].numpy())),
                      "spearman_with_input": float(np.nanmean(input_rank_correlation(c.original).numpy()))}
    return out


def band_share_profile(result, masks: torch.Tensor, by: str = "signed", n_boot: int = 1000,
                       seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean share of attribution per band over images, with a percentile bootstrap 95% CI.

    ``result``: a :class:`FrequencyAttribution` or ``(N, C, H, W)`` scores; ``masks``
    ``(K, H, W)`` bands; ``by`` as in :func:`freqkit.band_shares`.  Returns
    ``(mean, lo, hi)``, each ``(K,)`` (the form :func:`freqkit.viz.band_profile_plot` takes).
    """
    from .attribution import band_shares
    from .stats import bootstrap_ci

    check_positive_int(n_boot, "n_boot")
    sh = band_shares(result, masks, by=by).detach().cpu().numpy()
    lo, hi = bootstrap_ci(sh, stat=np.mean, n_boot=n_boot, seed=seed)
    return sh.mean(0), lo, hi
