"""Can frequency attributions be trusted?  The checks chapters 3 and 4 report.

* Several methods on the same images: :func:`compare_methods`.
* Completeness (Sundararajan et al. 2017): :func:`relative_completeness`,
  :func:`completeness_summary`.
* Agreement between methods: :func:`band_rank_agreement`; parity with Captum run by hand
  on the wrapped model: :func:`captum_parity`.
* Deletion and insertion curves in frequency space (Samek et al. 2017; Petsiuk et al.
  2018): :func:`deletion_insertion_curves`, summarised by :func:`auc_table`; what the model
  sees of its top-k coefficients: :func:`topk_series`.
* The model-randomisation sanity check (Adebayo et al. 2018):
  :func:`model_randomisation_check`, :func:`randomisation_summary`, and how much of a
  ranking is just the input's spectrum: :func:`input_rank_correlation`.
* Band shares with intervals: :func:`band_share_profile`.
* Agreement with occlusion against two nulls on the same images (:func:`attribution_vs_nulls`):
  the band energy of ``x - baseline`` (what any method that follows the image's spectrum
  gets) and the attribution of the randomised model (Adebayo et al. 2018).

Ground truth on a planted-frequency data set is :mod:`freqkit.planted`; the verdicts these
numbers feed are :mod:`freqkit.hypotheses`.
"""
from __future__ import annotations

import copy
import numbers
from dataclasses import dataclass
from typing import Callable, Mapping, Sequence

import numpy as np
import torch
from torch import nn

from ._explain import OUTPUTS, OutputHead, check_internal_batch, eval_variants, forward_batched, resolve_target
from ._runtime import eval_mode
from ._runtime import progress as progress_bar
from ._validate import check_choice, check_images, check_model_output, check_positive_int
from .attribution import (
    ATTRIBUTION_METHODS, FrequencyAttribution, FrequencyModel, attribute, band_shares, baseline_image, scores_of,
    topk_reconstruction,
)
from .stats import bootstrap_ci, distribution_summary, paired_difference, spearman_rows
from .transforms import band_energy, check_basis, frequency_radius, radial_profile, to_basis

__all__ = ["compare_methods", "relative_completeness", "completeness_summary", "band_rank_agreement",
           "captum_parity", "DeletionInsertionCurves", "deletion_insertion_curves", "auc_table", "topk_series",
           "RandomisationCheck", "model_randomisation_check", "input_rank_correlation", "randomisation_summary",
           "band_share_profile", "NullComparison", "attribution_vs_nulls"]


# ============================================================================ several methods at once

def compare_methods(model: Callable, x: torch.Tensor, target, methods, masks: torch.Tensor | None = None,
                    basis: str = "dct", n_steps: int = 32, baseline=None, internal_batch_size: int | None = None,
                    progress: bool = False) -> dict:
    """Run several attribution methods on the same images, targets and bands.

    Each entry is one :func:`freqkit.attribute` call with the shared arguments, overridden by
    the entry's options.  ``target="predicted"`` is resolved once, on the first method, and
    the resolved classes are passed to every later method, so all explain the same class.

    Args:
        model: pixel model, as in :func:`freqkit.attribute` (run in eval mode, every
            submodule's mode restored afterwards).
        x: images ``(N, C, H, W)``, at least one.
        target: as in :func:`freqkit.attribute` (an int, ``(N,)`` ints or ``"predicted"``).
        methods: one method name, a sequence of names (see :data:`freqkit.ATTRIBUTION_METHODS`;
            each is its own label), or a dict ``{label: {"method": name, **options}}`` to run
            one method in several settings (e.g. occlusion on rings and on radial bands: give
            ``"masks"`` in the options to override ``masks``).  An empty dict gives ``{}``.
        masks, basis, n_steps, baseline, internal_batch_size: shared by every method
            (options in ``methods`` override them); defaults as in :func:`freqkit.attribute`
            except ``n_steps=32``.
        progress: show a progress bar over the methods (only in a terminal).

    Returns:
        ``{label: FrequencyAttribution}`` in the order given.

    Shape:
        - x: ``(N, C, H, W)``; masks: ``(K, H, W)``.

    Raises:
        ValueError: an empty sequence of methods; a dict entry that is not a dict with a
            ``"method"`` key; an unknown method name; ``x`` holding no image; and what
            :func:`freqkit.attribute` raises for the arguments (and for a model output
            holding NaN or inf).
        TypeError: an option a method does not take (from :func:`freqkit.attribute`).
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
    if spec:
        check_images(x, "x", nonempty=True)
    out, t = {}, target
    with eval_mode(model):
        for label, opts in progress_bar(spec.items(), enabled=progress, desc="methods"):
            kw = dict(basis=basis, n_steps=n_steps, baseline=baseline, internal_batch_size=internal_batch_size,
                      masks=masks)
            kw.update(opts)
            method = kw.pop("method")
            out[label] = attribute(model, x, t, method=method, **kw)
            t = out[label].target
    return out


# ============================================================================ completeness

def relative_completeness(result: FrequencyAttribution) -> torch.Tensor:
    """IG's (or Shapley's) completeness error relative to the output change, per image.

    ``|delta| / |f(x) - f(baseline)|`` with ``delta = sum(scores) - (f(x) - f(baseline))``
    (completeness: Sundararajan, Taly & Yan 2017, "Axiomatic attribution for deep networks").
    An image whose output does not change (``f(x) == f(baseline)``) gives ``inf``, or 0 if
    ``delta`` is 0 too.

    Args:
        result: a :class:`FrequencyAttribution` of ``method="ig"`` or ``"shapley"``.

    Returns:
        ``(N,)`` float64 CPU tensor, ``>= 0`` (``inf`` possible, see above).

    Shape:
        - output: ``(N,)``.

    Raises:
        TypeError: ``result`` is not a :class:`FrequencyAttribution`.
        ValueError: the result has no completeness error (a method other than IG or Shapley).

    Example:
        >>> import torch, freqkit as fk
        >>> _ = torch.manual_seed(0); x = torch.rand(2, 1, 8, 8)
        >>> model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 3)).eval()
        >>> rel = fk.relative_completeness(fk.attribute(model, x, 0, method="ig", n_steps=16))
        >>> rel.shape, rel.dtype, bool((rel < 1e-3).all())
        (torch.Size([2]), torch.float64, True)
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


def completeness_summary(rel_error, tol: float = 0.01) -> dict:
    """Distribution of relative completeness errors and the share of images within ``tol``.

    ``inf`` (an image whose output did not change while its scores do not sum to 0, see
    :func:`relative_completeness`) counts as larger than any error: the quantiles are
    numpy's linear interpolation between order statistics, except that a quantile falling
    between a finite error and ``inf`` is ``inf`` (numpy's interpolation gives NaN there,
    ``0 * inf``), so the median of ``[0, 0.001, inf]`` is ``0.001`` and its 75% quantile
    ``inf``.

    Args:
        rel_error: relative errors (e.g. :func:`relative_completeness`), a tensor, array or
            sequence of numbers (``inf`` allowed).
        tol: the tolerance, a number > 0 (default 0.01: 1% of the output change).

    Returns:
        :func:`freqkit.stats.distribution_summary`'s dict (``"n"``, ``"n_nan"``, ``"mean"``,
        ``"min"``, ``"max"``, ``"q10"``, ``"q25"``, ``"q50"``, ``"q75"``, ``"q90"``; NaNs
        dropped and counted; the quantiles as above, the mean ``inf`` when an error is)
        plus ``"tol"``, ``"median"`` (= ``"q50"``) and ``"share_within"`` (share of all
        entries ``<= tol``; a NaN counts as not within).

    Raises:
        ValueError: ``tol`` not a number > 0; ``rel_error`` empty or all NaN.

    Example:
        >>> import freqkit as fk
        >>> s = fk.completeness_summary([0.0, 0.001, float("inf")])
        >>> s["median"], s["q75"], round(s["share_within"], 3)
        (0.001, inf, 0.667)
    """
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
    """Rank correlation between two methods' band scores, one per image.

    ``method="spearman"``: Spearman's rho with average ranks for ties; ``"kendall"``:
    Kendall's tau-b (``scipy.stats.kendalltau``).  Two methods that order the bands alike
    agree whatever their scales.  A row that is constant in either input gives NaN.

    Args:
        a, b: ``(N, K)`` band scores, or :class:`FrequencyAttribution` results with masks
            (their :meth:`~FrequencyAttribution.bands`), computed on the same bands.
        method: ``"spearman"`` (default) or ``"kendall"``.

    Returns:
        ``(N,)`` float64 CPU tensor in ``[-1, 1]`` (NaN for constant rows).

    Shape:
        - a, b: ``(N, K)`` with ``K >= 2``.
        - output: ``(N,)``.

    Raises:
        ValueError: an unknown ``method``; ``a`` or ``b`` not ``(N, K)`` (or a result
            without masks); shapes differ; ``K < 2``.

    Example:
        >>> import torch, freqkit as fk
        >>> a = torch.tensor([[1., 2., 3., 4.], [4., 3., 2., 1.]])
        >>> b = torch.tensor([[10., 20., 30., 40.], [1., 2., 3., 4.]])
        >>> fk.band_rank_agreement(a, b).tolist()
        [1.0, -1.0]
        >>> fk.band_rank_agreement(a, b, method="kendall").tolist()
        [1.0, -1.0]
    """
    from scipy.stats import kendalltau

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
    return spearman_rows(an, bn)


# ============================================================================ parity with Captum

def captum_parity(model: Callable, x: torch.Tensor, target, masks: torch.Tensor, basis: str = "dct",
                  n_steps: int = 32, baseline=None, internal_batch_size: int | None = None) -> dict:
    """Max absolute difference between freqkit and Captum run by hand on the wrapped model.

    IG: ``captum.attr.IntegratedGradients(FrequencyModel(model, basis))`` on the
    coefficients (Gauss-Legendre rule), against :func:`freqkit.attribute` ``method="ig"``.
    Band occlusion: ``captum.attr.FeatureAblation`` with ``feature_mask`` = the band index of
    every coefficient (all channels of a band ablated together) and the baseline's
    coefficients, against ``method="occlusion"`` (Captum gives every coefficient of a band
    the band's score; freqkit's band score is compared with it).  Both explain the logit.

    Args:
        model: pixel model, as in :func:`freqkit.attribute` (run in eval mode, every
            submodule's mode restored afterwards).
        x: images ``(N, C, H, W)``, at least one.
        target: as in :func:`freqkit.attribute`; the class IG resolves is reused for occlusion.
        masks: ``(K, H, W)`` disjoint bool bands for the occlusion comparison (``None``: the
            ring bands of :func:`freqkit.ring_band_masks`).
        basis: ``"dct"`` (default) or ``"dft"``.
        n_steps: IG steps (>= 1, default 32).
        baseline, internal_batch_size: as in :func:`freqkit.attribute`.

    Returns:
        ``{"ig_max_abs_diff", "ig_max_abs_score", "occlusion_max_abs_diff",
        "occlusion_max_abs_score", "n", "n_steps", "n_bands", "dtype"}``: floats (the
        ``*_score`` entries scale the differences), ints, and the dtype name of ``x``.

    Raises:
        ValueError: ``x`` not 4-D, not finite or holding no image; ``n_steps`` not an
            integer >= 1; and what :func:`freqkit.attribute` raises (bad ``basis``,
            ``masks``, ``target``, a model output holding NaN or inf, ...).
        TypeError: as :func:`freqkit.attribute`.
    """
    check_images(x, "x", nonempty=True)
    check_positive_int(n_steps, "n_steps")
    with eval_mode(model):
        return _captum_parity(model, x, target, masks, basis, n_steps, baseline, internal_batch_size)


def _captum_parity(model, x, target, masks, basis, n_steps, baseline, internal_batch_size) -> dict:
    """:func:`captum_parity` after its argument checks, with ``model`` in eval mode."""
    from captum.attr import FeatureAblation, IntegratedGradients

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


# ============================================================================ deletion / insertion

@dataclass
class DeletionInsertionCurves:
    """Result of :func:`deletion_insertion_curves`.

    Attributes:
        fractions: ``(P,)`` float64 CPU, fraction of coefficients removed (deletion) / added
            (insertion).
        deletion, insertion: ``{order: (N, P)}`` explained output along each curve.
        auc_deletion, auc_insertion: ``{order: (N,)}`` trapezoid areas over ``[0, 1]``.
            Faithful attributions give a low deletion AUC and a high insertion AUC for
            ``"attribution"`` compared with ``"random"``.
        output: ``"prob"``, ``"logit"`` or ``"log_prob"``; target: ``(N,)`` the explained
            classes.
    """

    fractions: torch.Tensor
    deletion: dict
    insertion: dict
    auc_deletion: dict
    auc_insertion: dict
    output: str
    target: torch.Tensor

    def summary(self) -> dict:
        """Mean AUC per order over images.

        Returns:
            ``{"deletion": {order: float}, "insertion": {order: float}}``.
        """
        return {"deletion": {k: float(v.mean()) for k, v in self.auc_deletion.items()},
                "insertion": {k: float(v.mean()) for k, v in self.auc_insertion.items()}}


_ORDERS = ("attribution", "random", "low_to_high", "high_to_low")


def deletion_insertion_curves(model: Callable, x: torch.Tensor, target, scores, basis: str = "dct",
                              orders: Sequence[str] = _ORDERS, n_points: int = 21, baseline=None,
                              output: str = "prob", by: str = "signed", seed: int = 0,
                              internal_batch_size: int | None = None) -> DeletionInsertionCurves:
    """Deletion and insertion curves in frequency space (Samek et al. 2017; Petsiuk et al. 2018).

    Coefficients (all ``D = C * H * W`` per image) are ranked by an order; *deletion*
    replaces the first ``round(p * D)`` of them by the baseline's coefficients (zero by
    default), *insertion* starts from the baseline and puts them back, for ``p`` in
    ``linspace(0, 1, n_points)``; the curve is the explained output of the target class
    (Samek et al. 2017, "Evaluating the visualization of what a deep neural network has
    learned"; Petsiuk, Das & Saenko 2018, "RISE").  The model is evaluated through
    :class:`FrequencyModel`, without gradients, in eval mode (every submodule's mode
    restored afterwards).

    Orders: ``"attribution"`` (largest score first; ``by="signed"`` ranks the strongest
    positive evidence first, ``"abs"`` the largest magnitude; ties by index), ``"random"``
    (a fresh seeded permutation per image), ``"low_to_high"`` / ``"high_to_low"`` (by
    normalised radial frequency; ties by index).

    Args:
        model: pixel model, images ``(N, C, H, W)`` -> ``(N, n_classes)`` (an ``nn.Module``
            or any callable).
        x: images ``(N, C, H, W)``, at least one.
        target: as in :func:`freqkit.attribute` (an int, ``(N,)`` ints or ``"predicted"``).
        scores: ``(N, C, H, W)`` in ``basis``, or a :class:`FrequencyAttribution`.
        basis: ``"dct"`` (default) or ``"dft"``.
        orders: one order name or a sequence of them (default: all four).
        n_points: points per curve, >= 2 (default 21).
        baseline: as in :func:`freqkit.attribute` (default ``None``: zeros; a name of
            :data:`freqkit.attribution.NAMED_BASELINES` too).
        output: ``"prob"`` (default; softmax probability, as Petsiuk et al.), ``"logit"`` or
            ``"log_prob"``.
        by: ``"signed"`` (default) or ``"abs"``, for the ``"attribution"`` order.
        seed: seeds the ``"random"`` order (a private generator; the global RNG is untouched).
        internal_batch_size: at most this many model inputs per pass (default 256).

    Returns:
        :class:`DeletionInsertionCurves`.

    Shape:
        - x, scores: ``(N, C, H, W)``.
        - result.fractions: ``(P,)``; result.deletion[o], result.insertion[o]: ``(N, P)``;
          result.auc_deletion[o], result.auc_insertion[o]: ``(N,)``; with ``P = n_points``.

    Raises:
        ValueError: ``x`` or ``scores`` not 4-D or not finite, ``x`` holding no image, or
            ``scores`` not of ``x``'s shape (or a result without scores); an unknown
            ``basis``, ``output``, ``by`` or order; ``n_points < 2``;
            ``internal_batch_size`` not an integer >= 1; a bad ``baseline`` or ``target``; a
            model output that is not 2-D or holds NaN or inf (the message names the model).
        TypeError: ``x`` or ``scores`` not a floating-point tensor; a bad ``target`` type.
    """
    check_images(x, "x", nonempty=True)
    check_basis(basis)
    check_positive_int(n_points, "n_points", minimum=2)
    check_choice(output, "output", OUTPUTS)
    check_choice(by, "by", ("abs", "signed"))
    check_internal_batch(internal_batch_size)
    if isinstance(orders, str):
        orders = (orders,)
    for o in orders:
        check_choice(o, "orders", _ORDERS)
    s = scores_of(scores)
    if tuple(s.shape) != tuple(x.shape):
        raise ValueError(f"scores must have the shape of x {tuple(x.shape)}, got {tuple(s.shape)}")
    with eval_mode(model):
        return _deletion_insertion(model, x, target, s, basis, orders, n_points, baseline, output, by, seed,
                                   internal_batch_size)


def _deletion_insertion(model, x, target, s, basis, orders, n_points, baseline, output, by, seed,
                        internal_batch_size) -> DeletionInsertionCurves:
    """:func:`deletion_insertion_curves` after its argument checks, with ``model`` in eval mode."""
    n, ch, h, w = x.shape
    d = ch * h * w
    b = baseline_image(x, baseline)
    head = OutputHead(FrequencyModel(model, basis), output, model=model)
    c, cb = to_basis(x, basis), to_basis(b, basis)
    t = resolve_target(target, forward_batched(head, c, internal_batch_size))
    fractions = torch.linspace(0, 1, n_points, dtype=torch.float64)
    kcount = torch.round(fractions * d).long().to(x.device)
    radius = frequency_radius(h, w, basis, "radial", device=x.device).to(x.dtype)
    radius = radius.expand(ch, h, w).reshape(d)
    gen = torch.Generator().manual_seed(seed)
    dele, ins, auc_d, auc_i = {}, {}, {}, {}
    for o in orders:
        if o == "attribution":
            key = (s.abs() if by == "abs" else s).reshape(n, d)
            order = torch.argsort(key, dim=1, descending=True, stable=True)
        elif o == "random":
            order = torch.stack([torch.randperm(d, generator=gen) for _ in range(n)]).to(x.device)
        else:
            order = torch.argsort(radius, descending=o == "high_to_low", stable=True).expand(n, d)
        rank = torch.empty_like(order)
        rank.scatter_(1, order, torch.arange(d, device=x.device).expand(n, d))
        rank = rank.view(n, ch, h, w)
        # Deletion keeps the coefficients ranked past the first k; insertion keeps the first k.
        dele[o] = eval_variants(head, c, cb, lambda ni, mi: rank[ni] >= kcount[mi].view(-1, 1, 1, 1),
                                 n_points, t, internal_batch_size)
        ins[o] = eval_variants(head, c, cb, lambda ni, mi: rank[ni] < kcount[mi].view(-1, 1, 1, 1),
                                n_points, t, internal_batch_size)
        fr = fractions.to(device=x.device, dtype=dele[o].dtype)
        auc_d[o] = torch.trapezoid(dele[o], fr, dim=1)
        auc_i[o] = torch.trapezoid(ins[o], fr, dim=1)
    return DeletionInsertionCurves(fractions=fractions, deletion=dele, insertion=ins, auc_deletion=auc_d,
                                   auc_insertion=auc_i, output=output, target=t)


def auc_table(curves: DeletionInsertionCurves, n_boot: int = 1000, seed: int = 0) -> dict:
    """Mean deletion and insertion AUC per order with 95% bootstrap intervals over images.

    Percentile bootstrap over images (:func:`freqkit.stats.bootstrap_ci`, one seeded numpy
    stream over every (kind, order) in turn).  Also the share of images on which the
    ``"attribution"`` order beats ``"random"`` (lower deletion AUC, higher insertion AUC),
    where both orders were computed.

    Args:
        curves: a :class:`DeletionInsertionCurves`.
        n_boot: bootstrap resamples, >= 1 (default 1000).
        seed: seeds the resampling.

    Returns:
        ``{"deletion": {order: {"mean", "ci"}}, "insertion": {...}, "beats_random":
        {"deletion", "insertion"} (or ``{}``), "n", "output"}``, with ``"ci"`` a
        ``[lo, hi]`` list of floats.

    Raises:
        TypeError: ``curves`` is not a :class:`DeletionInsertionCurves`.
        ValueError: ``n_boot`` not an integer >= 1.
    """
    if not isinstance(curves, DeletionInsertionCurves):
        raise TypeError(f"curves must be a DeletionInsertionCurves, got {type(curves).__name__}")
    check_positive_int(n_boot, "n_boot")
    rng = np.random.default_rng(seed)  # one stream over every (kind, order), in that order
    out: dict = {"deletion": {}, "insertion": {}, "beats_random": {}}
    n = None
    for kind, aucs in (("deletion", curves.auc_deletion), ("insertion", curves.auc_insertion)):
        for order, v in aucs.items():
            a = v.detach().double().cpu().numpy()
            n = a.shape[0]
            lo, hi = bootstrap_ci(a, np.mean, n_boot=n_boot, rng=rng)
            out[kind][order] = {"mean": float(a.mean()), "ci": [float(lo), float(hi)]}
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
    model's softmax probability of ``target`` on it and its predicted class.  The model runs
    in eval mode (every submodule's mode restored afterwards), without gradients,
    ``batch_size`` images at a time.

    Args:
        model: pixel model, images ``(N, C, H, W)`` -> logits ``(N, n_classes)`` (an
            ``nn.Module`` or any callable).
        x: images ``(N, C, H, W)``, at least one.
        target: an int, ``(N,)`` ints or ``"predicted"`` (resolved on ``model(x)``).
        scores: ``(N, C, H, W)`` scores in ``basis``, or a :class:`FrequencyAttribution`.
        fractions: fractions of coefficients kept, each in ``[0, 1]``.
        basis, by, baseline: as in :func:`freqkit.topk_reconstruction`.
        batch_size: images per forward pass, >= 1.

    Returns:
        ``{"fractions": [float], "images": [(N, C, H, W) per fraction], "prob": (F, N)
        float64, "pred": (F, N) long, "target": (N,)}``; ``prob``, ``pred`` and ``target``
        on the CPU.

    Raises:
        ValueError: ``x`` not 4-D, not finite or holding no image; ``batch_size`` not an
            integer >= 1; ``fractions`` empty; a bad ``target``; a model output that is not
            2-D or holds NaN or inf (the message names the model); and what
            :func:`freqkit.topk_reconstruction` raises (a fraction outside ``[0, 1]``,
            ``scores`` of the wrong shape, ...).
        TypeError: ``x`` or ``scores`` not a floating-point tensor.
    """
    check_images(x, "x", nonempty=True)
    check_positive_int(batch_size, "batch_size")
    fractions = [float(f) for f in fractions]
    if not fractions:
        raise ValueError("fractions is empty")

    @torch.no_grad()
    def logits(z):
        return torch.cat([check_model_output(model(z[i:i + batch_size]), model)
                          for i in range(0, z.shape[0], batch_size)])

    imgs, prob, pred = [], [], []
    with eval_mode(model):
        t = resolve_target(target, logits(x))
        for f in fractions:
            r = topk_reconstruction(x, scores, f, basis=basis, by=by, baseline=baseline)
            out = logits(r)
            imgs.append(r)
            prob.append(torch.softmax(out.double(), 1).gather(1, t[:, None])[:, 0].cpu())
            pred.append(out.argmax(1).cpu())
    return {"fractions": fractions, "images": imgs, "prob": torch.stack(prob), "pred": torch.stack(pred),
            "target": t.cpu()}


# ============================================================================ randomisation check

@dataclass
class RandomisationCheck:
    """Result of :func:`model_randomisation_check`.

    Attributes:
        layers: names of the randomised layers, one entry per step (``["all"]`` for mode
            ``"all"``; for ``"cascading"``, step i has layers[0..i] re-initialised, top first;
            for ``"independent"``, step i has layers[i] alone).
        spearman: ``(L, N)`` float64 Spearman rank correlation between the original and the
            randomised model's scores (signed); ``spearman_abs``: of ``|scores|``.  High
            values mean the explanation does not depend on what the model learned.
        original: the original model's :class:`FrequencyAttribution`.
        randomised_scores: ``(L, N, C, H, W)``.
        mode, method, basis, seed: the setting.
    """

    layers: list
    spearman: torch.Tensor
    spearman_abs: torch.Tensor
    original: FrequencyAttribution
    randomised_scores: torch.Tensor
    mode: str
    method: str
    basis: str
    seed: int

    def summary(self) -> dict:
        """The check in plain numbers: mean correlations over images per step.

        Returns:
            ``{"layers", "mode", "method", "spearman_mean", "spearman_abs_mean"}``, the means as
            lists of L floats (NaN if any image's scores were constant).
        """
        return {"layers": list(self.layers), "mode": self.mode, "method": self.method,
                "spearman_mean": self.spearman.mean(1).tolist(),
                "spearman_abs_mean": self.spearman_abs.mean(1).tolist()}


def _randomisable_layers(model: nn.Module) -> list:
    return [name for name, mod in model.named_modules()
            if callable(getattr(mod, "reset_parameters", None)) and any(True for _ in mod.parameters(recurse=False))]


def model_randomisation_check(model: nn.Module, x: torch.Tensor, target, method: str = "ig",
                              basis: str = "dct", mode: str = "cascading", layers: Sequence[str] | None = None,
                              seed: int = 0, **attr_kw) -> RandomisationCheck:
    """Model-parameter randomisation test of Adebayo et al. 2018 ("Sanity checks for saliency maps").

    A copy of ``model`` has its layers re-initialised (``reset_parameters()``; the original
    is untouched: every attribution runs in eval mode and each module's mode is restored)
    and the attributions are recomputed for the same images and the same
    target classes (those resolved on the original model).  A faithful method's scores must
    change: low rank correlation with the original.  Correlations are Spearman's, per image,
    over all ``C * H * W`` scores.

    Args:
        model: an ``nn.Module``; its layers are the submodules that own parameters directly
            and have ``reset_parameters`` (conv, linear, batch norm, ...), taken top
            (output) first as the reverse of their registration order.
        x: images ``(N, C, H, W)``, at least one.
        target: as in :func:`freqkit.attribute`.
        method: attribution method (default ``"ig"``); basis: ``"dct"`` or ``"dft"``.
        mode: ``"cascading"`` (default; re-initialise from the top layer down, cumulatively,
            one step per layer), ``"independent"`` (one layer at a time) or ``"all"`` (every
            layer at once, one step).
        layers: names (as in ``model.named_modules()``) to randomise, top first (default:
            all randomisable layers).
        seed: seeds the re-initialisation (torch's global RNG is forked, not disturbed).
        **attr_kw: passed to :func:`freqkit.attribute` (``n_steps``, ``baseline``,
            ``masks``, ...).

    Returns:
        :class:`RandomisationCheck`.

    Shape:
        - x: ``(N, C, H, W)``.
        - result.spearman, result.spearman_abs: ``(L, N)``; result.randomised_scores:
          ``(L, N, C, H, W)``; L = number of steps.

    Raises:
        TypeError: ``model`` is not an ``nn.Module``; and :func:`freqkit.attribute`'s.
        ValueError: an unknown ``mode``; a name in ``layers`` that is not a randomisable
            layer; no randomisable layer; ``x`` holding no image; and what
            :func:`freqkit.attribute` raises (a model output holding NaN or inf, ...).
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be an nn.Module (its layers are re-initialised), got {type(model).__name__}")
    check_choice(mode, "mode", ("cascading", "independent", "all"))
    available = _randomisable_layers(model)
    if layers is None:
        layers = available[::-1]
    else:
        layers = list(layers)
        bad = [l for l in layers if l not in available]
        if bad:
            raise ValueError(f"layers {bad} are not randomisable layers of model; choose from {available}")
    if not layers:
        raise ValueError("model has no layer with parameters and reset_parameters() to randomise")
    check_images(x, "x", nonempty=True)
    with eval_mode(model):
        orig = attribute(model, x, target, method=method, basis=basis, **attr_kw)
    t = orig.target
    steps = [[l] for l in layers] if mode != "all" else [list(layers)]
    names = list(layers) if mode != "all" else ["all"]
    scores, rho, rho_abs = [], [], []
    devices = [x.device] if x.device.type == "cuda" else []
    rand_model = copy.deepcopy(model)
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        for step in steps:
            if mode == "independent":
                rand_model = copy.deepcopy(model)
            mods = dict(rand_model.named_modules())
            with torch.no_grad():
                for name in step:
                    mods[name].reset_parameters()
            r = attribute(rand_model, x, t, method=method, basis=basis, **attr_kw)
            sc = r.scores
            scores.append(sc)
            flat_o, flat_r = orig.scores.reshape(x.shape[0], -1), sc.reshape(x.shape[0], -1)
            rho.append(spearman_rows(flat_o, flat_r))
            rho_abs.append(spearman_rows(flat_o.abs(), flat_r.abs()))
    return RandomisationCheck(layers=names, spearman=torch.stack(rho), spearman_abs=torch.stack(rho_abs),
                              original=orig, randomised_scores=torch.stack(scores), mode=mode,
                              method=method, basis=basis, seed=seed)


def input_rank_correlation(result: FrequencyAttribution) -> torch.Tensor:
    """Spearman correlation, per image, between ``|scores|`` and ``|c - c_baseline|``.

    Methods that multiply a gradient by the input (gradient x input, IG) inherit the
    image's spectrum, which falls steeply with frequency (about ``1/f`` in amplitude for
    natural images): part of their ranking of coefficients is the image's, not the
    model's.  This measures that part; compare it with the randomisation check
    (Adebayo et al. 2018).

    Args:
        result: a :class:`FrequencyAttribution` with per-coefficient scores.

    Returns:
        ``(N,)`` float64 CPU tensor in ``[-1, 1]``; NaN where either side is constant.

    Raises:
        TypeError: ``result`` is not a :class:`FrequencyAttribution`.
        ValueError: the result has no scores.
    """
    if not isinstance(result, FrequencyAttribution):
        raise TypeError(f"result must be a FrequencyAttribution, got {type(result).__name__}")
    if result.scores is None:
        raise ValueError(f"this {result.method!r} result has no per-coefficient scores")
    n = result.coeffs.shape[0]
    return spearman_rows(result.scores.abs().reshape(n, -1),
                          (result.coeffs - result.baseline_coeffs).abs().reshape(n, -1))


def randomisation_summary(checks: Mapping) -> dict:
    """The numbers a chapter reports from :func:`model_randomisation_check` results.

    Per label: ``spearman_abs_top_layer`` (mean over images of the Spearman correlation of
    ``|scores|`` with the trained model's at the first step: the top layer randomised),
    ``spearman_abs`` and ``spearman`` (the same for ``|scores|`` and signed scores at the
    *last* step: every layer randomised in ``"cascading"`` mode; in ``"independent"`` mode
    the last (bottom) layer alone; in ``"all"`` mode both steps are the single all-layer
    step), and ``spearman_with_input`` (:func:`input_rank_correlation` of the trained
    model's scores: how much of the ranking the image's own spectrum explains).  NaN images
    (constant scores) are left out of the means.

    Args:
        checks: ``{method label: RandomisationCheck}``, non-empty; mode ``"cascading"``
            (what the key names assume) or ``"independent"``, top layer first.

    Returns:
        ``{label: {"spearman_abs", "spearman", "spearman_abs_top_layer",
        "spearman_with_input"}}`` of floats.

    Raises:
        ValueError: ``checks`` is not a non-empty mapping.
        TypeError: a value is not a :class:`RandomisationCheck`.
    """
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


# ============================================================================ band shares with intervals

def band_share_profile(result, masks: torch.Tensor, by: str = "signed", n_boot: int = 1000,
                       seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean share of attribution per band over images, with a percentile bootstrap 95% CI.

    :func:`freqkit.band_shares` per image, averaged over images; the interval is the
    percentile bootstrap over images (:func:`freqkit.stats.bootstrap_ci`, Efron 1979).

    Args:
        result: a :class:`FrequencyAttribution` or ``(N, C, H, W)`` scores.
        masks: ``(K, H, W)`` (or one ``(H, W)``) bool bands.
        by: ``"signed"`` (default here, unlike :func:`freqkit.band_shares`) or ``"abs"``.
        n_boot: bootstrap resamples, >= 1 (default 1000).
        seed: seeds the resampling.

    Returns:
        ``(mean, lo, hi)``, each a ``(K,)`` numpy array (the form
        :func:`freqkit.book.viz.band_profile_plot` takes).

    Raises:
        ValueError: ``n_boot`` not an integer >= 1; and what :func:`freqkit.band_shares`
            raises (bad ``scores``, ``masks`` or ``by``).
        TypeError: ``scores`` or ``masks`` not a tensor.
    """
    check_positive_int(n_boot, "n_boot")
    sh = band_shares(result, masks, by=by).detach().cpu().numpy()
    lo, hi = bootstrap_ci(sh, stat=np.mean, n_boot=n_boot, seed=seed)
    return sh.mean(0), lo, hi


# ============================================================================ agreement against nulls

@dataclass
class NullComparison:
    """Result of :func:`attribution_vs_nulls`: per image, agreement with occlusion of a method and of two nulls.

    Attributes:
        spearman: ``(N,)`` float64, Spearman correlation between the method's band scores
            and the band-occlusion scores (both of the trained model).
        spearman_energy: ``(N,)``, the same for null (a): the band energy of ``x - baseline``.
        spearman_randomised: ``(N,)``, the same for null (b): the method's band scores on the
            model with every layer re-initialised.
        diff_energy, diff_randomised: ``(N,)`` paired differences ``spearman - spearman_*``
            (NaN where either side is NaN: a constant row of band scores).
        occlusion_bands, method_bands, energy_bands, randomised_bands: ``(N, K)`` the band
            scores compared (CPU; ``by="abs"`` compares their absolute values).
        target: ``(N,)`` the explained classes; masks: ``(K, H, W)`` the bands.
        method, basis, by, baseline, seed, layers: the setting (``baseline`` the name, or
            ``"tensor"``/``"number"``/``"black"``).
    """

    spearman: torch.Tensor
    spearman_energy: torch.Tensor
    spearman_randomised: torch.Tensor
    diff_energy: torch.Tensor
    diff_randomised: torch.Tensor
    occlusion_bands: torch.Tensor
    method_bands: torch.Tensor
    energy_bands: torch.Tensor
    randomised_bands: torch.Tensor
    target: torch.Tensor
    masks: torch.Tensor
    method: str
    basis: str
    by: str
    baseline: str
    seed: int
    layers: list

    def summary(self, n_boot: int = 2000, seed: int = 0) -> dict:
        """Mean and median of each correlation, and the paired differences with bootstrap 95% CIs.

        Images where a correlation is NaN (a constant row) are left out of that pair.  The
        mean difference and its CI are :func:`freqkit.stats.paired_difference`; the median
        difference's CI is :func:`freqkit.stats.bootstrap_ci` with ``np.median`` (both
        percentile bootstraps over images, seeded with ``seed``).

        Args:
            n_boot: bootstrap resamples, >= 1 (default 2000).
            seed: seeds the resampling.

        Returns:
            ``{"method", "n", "spearman": {"method", "energy", "randomised"} (each
            ``{"mean", "median", "n_nan"}``), "vs_energy", "vs_randomised"}``; each ``vs_*``
            is :func:`freqkit.stats.paired_difference`'s dict (``mean``, ``ci_low``,
            ``ci_high``, ``ci``, ``n``) plus ``median``, ``median_ci_low``,
            ``median_ci_high`` and ``share_positive`` (share of pairs where the method
            agrees better than the null), or ``None`` with fewer than 2 usable pairs.

        Raises:
            ValueError: ``n_boot`` not an integer >= 1.
        """
        check_positive_int(n_boot, "n_boot")
        m = self.spearman.double().numpy()
        out: dict = {"method": self.method, "n": int(m.size), "spearman": {}}
        for name, v in (("method", m), ("energy", self.spearman_energy.double().numpy()),
                        ("randomised", self.spearman_randomised.double().numpy())):
            ok = v[np.isfinite(v)]
            out["spearman"][name] = {"mean": float(ok.mean()) if ok.size else float("nan"),
                                     "median": float(np.median(ok)) if ok.size else float("nan"),
                                     "n_nan": int(v.size - ok.size)}
        for name, null in (("vs_energy", self.spearman_energy), ("vs_randomised", self.spearman_randomised)):
            nv = null.double().numpy()
            ok = np.isfinite(m) & np.isfinite(nv)
            if ok.sum() < 2:
                out[name] = None
                continue
            d = paired_difference(m[ok], nv[ok], n_boot=n_boot, seed=seed)
            lo, hi = bootstrap_ci(m[ok] - nv[ok], np.median, n_boot=n_boot, seed=seed)
            d.update(median=float(np.median(m[ok] - nv[ok])), median_ci_low=float(lo), median_ci_high=float(hi),
                     share_positive=float(np.mean(m[ok] > nv[ok])))
            out[name] = d
        return out


def attribution_vs_nulls(model: nn.Module, x: torch.Tensor, target, masks: torch.Tensor | None = None,
                         method: str = "ig", basis: str = "dct", baseline=None, n_steps: int = 32,
                         by: str = "signed", seed: int = 0, layers: Sequence[str] | None = None,
                         output: str = "logit", internal_batch_size: int | None = None,
                         **attr_kw) -> NullComparison:
    """Does an attribution agree with band occlusion better than two nulls do, on the same images?

    H2's agreement test (per image, the Spearman correlation between a method's band scores
    and band-occlusion scores, :func:`band_rank_agreement`) has no null of its own: natural
    images have about ``1/f`` amplitude spectra, so any score that follows the energy of
    ``x - baseline`` per band ranks the bands much as occlusion does.  Here, per image, the
    same correlation for

    * the method (``method`` on the trained model);
    * null (a), the band energy of ``c - c_b``: the sum over each band (and channels) of
      the squared coefficients of ``x - baseline`` in ``basis``
      (:func:`freqkit.band_energy` with ``normalize=False``), used as band scores: what a
      method gets that sees only the image, not the model;
    * null (b), the method on the randomised model: every randomisable layer re-initialised
      (:func:`model_randomisation_check` with ``mode="all"``, the end state of Adebayo et
      al. 2018's cascading randomisation, "Sanity checks for saliency maps"; same images,
      targets, bands and baseline): what a method gets from the architecture and the
      image alone;

    and the paired per-image differences ``method - null``: the numbers to bootstrap
    (:meth:`NullComparison.summary`, or :func:`freqkit.stats.paired_difference` /
    :func:`freqkit.stats.hierarchical_bootstrap_ci` on them after dropping NaN pairs).  The
    occlusion reference is :func:`freqkit.attribute` ``method="occlusion"`` (band removed,
    replaced by the baseline's coefficients; after Wang et al. 2020) on the trained model.
    Every call runs the model in eval mode and restores each submodule's mode; the model's
    parameters are untouched (a copy is randomised).

    Args:
        model: an ``nn.Module`` pixel classifier (its layers are re-initialised in a copy).
        x: images ``(N, C, H, W)``, at least one.
        target: as in :func:`freqkit.attribute` (an int, ``(N,)`` ints or ``"predicted"``,
            resolved once on the trained model and reused by every method).
        masks: ``(K, H, W)`` disjoint bool bands, ``K >= 2`` (``None``: the ring bands of
            :func:`freqkit.ring_band_masks`, occlusion's default).
        method: the attribution method judged (default ``"ig"``; any name of
            :data:`freqkit.ATTRIBUTION_METHODS`).
        basis: ``"dct"`` (default) or ``"dft"``.
        baseline: as in :func:`freqkit.attribute` (``None``: black; ``"blur"``,
            ``"uniform"``, a number or a tensor), built once and shared by the method,
            occlusion and both nulls.
        n_steps: IG steps (>= 1, default 32).
        by: ``"signed"`` (default; the band scores as they are, as H2 compares them) or
            ``"abs"`` (their absolute values).  Null (a) is never negative, so with
            ``"signed"`` it cannot follow a band whose removal raises the output; the
            spectrum's confound lives in the magnitudes, and ``"abs"`` tests it hardest
            (measured on a small CIFAR-10 AirNet: median Spearman of null (a) 0.25 signed,
            0.83 abs, against IG's 0.87 and 0.77).
        seed: seeds the re-initialisation of null (b) (torch's global RNG is forked).
        layers: the layers re-initialised for null (b) (default: every randomisable layer).
        output: ``"logit"`` (default), ``"prob"`` or ``"log_prob"`` of the target class.
        internal_batch_size: as in :func:`freqkit.attribute`.
        **attr_kw: the method's options (e.g. ``ig_method``), passed to
            :func:`freqkit.attribute` for the method and null (b).

    Returns:
        :class:`NullComparison` (CPU tensors).

    Shape:
        - x: ``(N, C, H, W)``; masks: ``(K, H, W)``.
        - result.spearman*, result.diff_*: ``(N,)``; result.*_bands: ``(N, K)``.

    Raises:
        TypeError: ``model`` not an ``nn.Module``; and :func:`freqkit.attribute`'s.
        ValueError: an unknown ``method``, ``basis``, ``by`` or ``output``; ``x`` not 4-D,
            not finite or holding no image; ``masks`` overlapping, of the wrong shape, or
            with fewer than 2 bands; ``n_steps`` not an integer >= 1; a bad ``baseline``
            (an unknown name, another shape) or ``target``; no randomisable layer, or a
            name in ``layers`` that is not one; a model output holding NaN or inf.

    Example:
        >>> import torch, freqkit as fk
        >>> from freqkit.faithfulness import attribution_vs_nulls
        >>> _ = torch.manual_seed(0); x = torch.rand(3, 1, 8, 8)
        >>> model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 3))
        >>> r = attribution_vs_nulls(model, x, 0, fk.band_masks(8, 8, 4), n_steps=8)
        >>> r.spearman.shape, r.energy_bands.shape, bool(torch.allclose(r.diff_energy, r.spearman - r.spearman_energy))
        (torch.Size([3]), torch.Size([3, 4]), True)
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be an nn.Module (null (b) re-initialises its layers), got {type(model).__name__}")
    check_choice(method, "method", ATTRIBUTION_METHODS)
    check_choice(by, "by", ("signed", "abs"))
    check_choice(output, "output", OUTPUTS)
    check_basis(basis)
    check_positive_int(n_steps, "n_steps")
    check_images(x, "x", nonempty=True)
    b = baseline_image(x, baseline)
    name = baseline if isinstance(baseline, str) else ("black" if baseline is None else
                                                          "number" if isinstance(baseline, numbers.Real) else "tensor")
    kw = dict(basis=basis, baseline=b, n_steps=n_steps, internal_batch_size=internal_batch_size, output=output)
    with eval_mode(model):
        occ = attribute(model, x, target, method="occlusion", masks=masks, **kw)
        masks = occ.masks
        if masks.shape[0] < 2:
            raise ValueError(f"masks must hold at least 2 bands to rank, got {masks.shape[0]}")
        check = model_randomisation_check(model, x, occ.target, method=method, mode="all", layers=layers, seed=seed,
                                          masks=masks, **kw, **attr_kw)
    ob = occ.band_scores.detach()
    mb = check.original.bands(masks).detach()
    rb = radial_profile(check.randomised_scores[-1].sum(1), masks.to(check.randomised_scores.device)).detach()
    eb = band_energy((x - b).detach(), basis=basis, masks=masks, normalize=False)
    bands = [v.double().cpu() for v in (ob, mb, eb, rb)]
    ranked = [v.abs() for v in bands] if by == "abs" else bands
    rho = band_rank_agreement(ranked[1], ranked[0])
    rho_e = band_rank_agreement(ranked[2], ranked[0])
    rho_r = band_rank_agreement(ranked[3], ranked[0])
    return NullComparison(spearman=rho, spearman_energy=rho_e, spearman_randomised=rho_r, diff_energy=rho - rho_e,
                          diff_randomised=rho - rho_r, occlusion_bands=bands[0], method_bands=bands[1],
                          energy_bands=bands[2], randomised_bands=bands[3], target=occ.target.cpu(),
                          masks=masks.cpu(), method=method, basis=basis, by=by, baseline=name, seed=seed,
                          layers=list(_randomisable_layers(model)[::-1] if layers is None else layers))
