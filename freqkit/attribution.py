"""Frequency attribution: how much each DCT/DFT coefficient contributes to a CNN's output.

The model stays a pixel model ``f`` on images ``x`` ``(N, C, H, W)`` in ``[0, 1]``.  We
attribute ``g(c) = f(B^T c)`` where ``c = B x`` are the coefficients of ``x`` in an
orthonormal basis ``B`` (:func:`freqkit.transforms.to_basis`):

* ``basis="dct"``: the orthonormal 2-D DCT-II, per channel;
* ``basis="dft"`` (alias ``"dht"``): the real, orthonormal Hartley form of the centred
  unitary DFT.  A real basis keeps every Captum method (which perturbs real inputs)
  meaningful, and a DFT band mask that is symmetric under ``f -> -f`` selects the same
  subspace in both forms, so band scores mean the same thing.

Because ``B`` is orthonormal, ``grad_c g = B grad_x f`` and straight-line paths map to
straight-line paths, so Integrated-Gradients completeness carries over exactly: the
coefficient scores sum to ``f(x) - f(baseline)``, like pixel IG scores do.

Scores always refer to one output of the model: the target class's logit by default
(``output="logit"``), or its softmax probability (``"prob"``) or log-probability
(``"log_prob"``).

Methods of :func:`attribute` and their sources:

=================  ==========================================================================
``saliency``       ``|d g / d c|``, Simonyan, Vedaldi & Zisserman 2013 (Captum ``Saliency``)
``gradient``       signed ``d g / d c`` (the same, without the absolute value)
``grad_x_input``   ``c * d g / d c``, Shrikumar et al. 2016 (Captum ``InputXGradient``)
``ig``             Integrated Gradients, Sundararajan, Taly & Yan 2017 (Captum)
``smoothgrad``     SmoothGrad, Smilkov et al. 2017: Gaussian noise on the coefficients
                   (Captum ``NoiseTunnel`` over ``Saliency``)
``occlusion``      band occlusion: Zeiler & Fergus 2014 occlusion, applied to frequency bands
                   as in Wang et al. 2020 ("Towards frequency-based explanation for robust
                   CNN", arXiv 2005.03141): zero a band, score = drop of the target logit
``shapley``        band Shapley values, Shapley 1953 / Lundberg & Lee 2017: exact over all
                   2^K coalitions for K <= 8 bands, permutation sampling beyond
=================  ==========================================================================

Faithfulness checks: :func:`deletion_insertion_curves` (Samek et al. 2017; Petsiuk et
al. 2018), :func:`model_randomisation_check` (Adebayo et al. 2018) and
:func:`planted_band_share` (ground truth on a planted-frequency data set).
"""
from __future__ import annotations

import copy
import math
import numbers
import warnings
from dataclasses import dataclass, field
from typing import Callable, Iterable, Sequence

import numpy as np
import torch
from torch import nn

from ._validate import check_choice, check_images, check_mask, check_positive_int, check_tensor
from .transforms import band_masks, frequency_radius, from_basis, radial_profile, to_basis

__all__ = [
    "ATTRIBUTION_METHODS", "FrequencyModel", "FrequencyAttribution", "attribute",
    "BandPixelAttribution", "band_pixel_attribution", "band_shares", "default_band_masks", "band_feature_mask",
    "topk_reconstruction", "RadialAttributionProfile", "radial_attribution_profile",
    "DeletionInsertionCurves", "deletion_insertion_curves", "RandomisationCheck",
    "model_randomisation_check", "planted_band_share",
]

ATTRIBUTION_METHODS = ("saliency", "gradient", "grad_x_input", "ig", "smoothgrad", "occlusion", "shapley")
_BASES = ("dct", "dft", "dht")
_OUTPUTS = ("logit", "prob", "log_prob")
_BAND_METHODS = ("occlusion", "shapley")
# Perturbation methods evaluate many masked copies of each image; without a cap a 32x32
# data set times 256 coalitions would not fit in memory.
_DEFAULT_EVAL_BATCH = 256
_EXACT_SHAPLEY_MAX_K = 8
_EXACT_SHAPLEY_HARD_MAX_K = 16

# Method-specific keyword options of attribute() and their defaults.
_METHOD_OPTIONS = {
    "saliency": {"abs": True},
    "gradient": {},
    "grad_x_input": {},
    "ig": {"ig_method": "gausslegendre"},
    "smoothgrad": {"n_samples": 32, "stdev": 0.15, "nt_type": "smoothgrad", "abs": False, "seed": 0},
    "occlusion": {"mode": "remove"},
    "shapley": {"exact": None, "n_samples": 128, "antithetic": True, "seed": 0},
}


# ============================================================================ the wrapper

class FrequencyModel(nn.Module):
    """A pixel model seen from frequency space: ``fm(c) == model(from_basis(c, basis))``.

    Args:
        model: any callable (usually an ``nn.Module``) taking images ``(N, C, H, W)``.
        basis: ``"dct"`` (orthonormal DCT-II) or ``"dft"`` (real orthonormal Hartley form
            of the centred DFT; ``"dht"`` is an alias).

    ``fm`` takes coefficients ``c`` ``(N, C, H, W)`` (e.g. ``fm.to_coeffs(x)``) and is an
    ordinary differentiable ``nn.Module``, so any Captum attribution class can be built on
    it: ``captum.attr.IntegratedGradients(fm).attribute(fm.to_coeffs(x), ...)`` gives
    per-coefficient IG scores.  The wrapped model is a submodule, so ``fm.eval()`` and
    ``fm.to(device)`` reach it.
    """

    def __init__(self, model: Callable, basis: str = "dct"):
        super().__init__()
        if not callable(model):
            raise TypeError(f"model must be callable (an nn.Module taking (N, C, H, W) images), "
                            f"got {type(model).__name__}")
        check_choice(basis, "basis", _BASES)
        self.model = model
        self.basis = basis

    def forward(self, coeffs: torch.Tensor, *args, **kwargs):
        return self.model(from_basis(coeffs, self.basis), *args, **kwargs)

    def to_coeffs(self, x: torch.Tensor) -> torch.Tensor:
        """Coefficients of images ``x`` in this model's basis (same shape as ``x``)."""
        return to_basis(x, self.basis)

    def extra_repr(self) -> str:
        return f"basis={self.basis!r}"


class _Head(nn.Module):
    """Turn logits into the quantity being explained (logit, probability, log-probability)."""

    def __init__(self, f: Callable, output: str):
        super().__init__()
        self.f = f
        self.output = output

    def forward(self, *args):
        out = self.f(*args)
        if not isinstance(out, torch.Tensor) or out.dim() != 2:
            shape = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
            raise ValueError(f"model must return a (N, n_classes) tensor of scores, got {shape}")
        if self.output == "prob":
            return torch.softmax(out, dim=1)
        if self.output == "log_prob":
            return torch.log_softmax(out, dim=1)
        return out


# ============================================================================ the result

@dataclass
class FrequencyAttribution:
    """Result of :func:`attribute`.

    Attributes:
        scores: ``(N, C, H, W)`` one score per coefficient per channel, or ``None``.  For
            the band methods (occlusion, Shapley) the band's score is spread uniformly over
            its ``C * |band|`` coefficients, so summing ``scores`` over a band (all
            channels) gives back the band score; the per-coefficient values carry no
            information beyond that.
        method, basis: as passed to :func:`attribute`.
        target: ``(N,)`` long, the resolved class indices.
        coeffs: ``(N, C, H, W)`` coefficients of ``x``; ``baseline_coeffs`` likewise.
        delta: ``(N,)`` completeness error ``sum(scores) - (f(x) - f(baseline))`` for IG
            (quadrature error) and Shapley (efficiency; ~0 up to rounding), else ``None``.
        band_scores: ``(N, K)`` for occlusion and Shapley (in the order of ``masks``).
        masks: ``(K, H, W)`` bool, the bands used (or passed), else ``None``.
        stderr: ``(N, K)`` Monte-Carlo standard error of sampled Shapley values, else ``None``.
        output_x, output_baseline: ``(N,)`` the explained output at ``x`` and at the baseline
            (``output_baseline`` where the method evaluates it).
        output: ``"logit"``, ``"prob"`` or ``"log_prob"``.
        info: method settings (n_steps, n_samples, ...).
    """

    scores: torch.Tensor | None
    method: str
    basis: str
    target: torch.Tensor
    coeffs: torch.Tensor
    baseline_coeffs: torch.Tensor
    delta: torch.Tensor | None = None
    band_scores: torch.Tensor | None = None
    masks: torch.Tensor | None = None
    stderr: torch.Tensor | None = None
    output_x: torch.Tensor | None = None
    output_baseline: torch.Tensor | None = None
    output: str = "logit"
    info: dict = field(default_factory=dict)

    def bands(self, masks: torch.Tensor | None = None) -> torch.Tensor:
        """Band scores ``(N, K)``: the scores summed over each band of ``masks`` and over channels.

        ``masks`` ``(K, H, W)`` defaults to the masks the result was computed with.  For
        occlusion and Shapley only those masks are allowed (their scores are per band).
        """
        h, w = self.coeffs.shape[-2:]
        if masks is None:
            if self.masks is None:
                raise ValueError("masks is required: this result was computed without band masks")
            masks = self.masks
        masks = _check_masks(masks, h, w, device=self.coeffs.device)
        if self.band_scores is not None:
            if self.masks is None or masks.shape != self.masks.shape or not bool((masks == self.masks).all()):
                raise ValueError(f"masks must be the bands this {self.method!r} result was computed on "
                                 "(its scores are per band, not per coefficient)")
            return self.band_scores
        if self.scores is None:
            raise ValueError(f"this {self.method!r} result has no per-coefficient scores")
        return radial_profile(self.scores.sum(1), masks)

    def spectral_map(self, reduce: str = "sum") -> torch.Tensor:
        """``(N, H, W)`` scores combined over channels: ``"sum"`` (signed) or ``"abs"`` (sum of |.|)."""
        check_choice(reduce, "reduce", ("sum", "abs"))
        if self.scores is None:
            raise ValueError(f"this {self.method!r} result has no per-coefficient scores")
        return self.scores.abs().sum(1) if reduce == "abs" else self.scores.sum(1)

    def __repr__(self) -> str:
        n = self.coeffs.shape[0]
        extra = f", K={self.masks.shape[0]}" if self.masks is not None else ""
        d = f", max|delta|={float(self.delta.abs().max()):.3g}" if self.delta is not None and n else ""
        return (f"FrequencyAttribution(method={self.method!r}, basis={self.basis!r}, N={n}, "
                f"shape={tuple(self.coeffs.shape[1:])}{extra}{d})")


# ============================================================================ validation helpers

def _check_basis(basis) -> str:
    return check_choice(basis, "basis", _BASES)


def _check_batch(internal_batch_size, name: str = "internal_batch_size"):
    if internal_batch_size is not None:
        check_positive_int(internal_batch_size, name)
    return internal_batch_size


def _prepare_baseline(baseline, x: torch.Tensor, name: str = "baseline") -> torch.Tensor:
    """A baseline image for every row of ``x``: None (black), a number, or a tensor."""
    if baseline is None:
        return torch.zeros_like(x)
    if isinstance(baseline, numbers.Real) and not isinstance(baseline, bool):
        if not math.isfinite(float(baseline)):
            raise ValueError(f"{name} must be finite, got {baseline!r}")
        return torch.full_like(x, float(baseline))
    check_tensor(baseline, name)
    b = baseline.to(device=x.device, dtype=x.dtype)
    if b.dim() == 3:
        b = b.unsqueeze(0)
    if b.dim() != 4 or tuple(b.shape[1:]) != tuple(x.shape[1:]) or b.shape[0] not in (1, x.shape[0]):
        raise ValueError(f"{name} must be an image of shape {tuple(x.shape)}, (1, {', '.join(map(str, x.shape[1:]))}) "
                         f"or {tuple(x.shape[1:])} to match x, got {tuple(baseline.shape)}")
    return b.expand_as(x).clone()


def _check_masks(masks, h: int, w: int, *, name: str = "masks", disjoint: bool = False,
                 partition: bool = False, device=None) -> torch.Tensor:
    masks = check_mask(masks, name, h, w, allow_stack=True)
    if masks.dim() == 2:
        masks = masks.unsqueeze(0)
    if device is not None:
        masks = masks.to(device)
    if disjoint or partition:
        cover = masks.sum(0)
        if bool((cover > 1).any()):
            raise ValueError(f"{name} must not overlap: {int((cover > 1).sum())} frequencies are in more than one band")
        if partition and bool((cover == 0).any()):
            raise ValueError(f"{name} must partition the frequency plane: {int((cover == 0).sum())} "
                             "frequencies are in no band")
    return masks


def _resolve_target(target, out: torch.Tensor) -> torch.Tensor:
    """Class indices ``(N,)`` from an int, a sequence, a tensor or ``"predicted"``; range-checked."""
    n, n_classes = out.shape
    if isinstance(target, str):
        if target != "predicted":
            raise ValueError(f"target must be an int, a sequence or tensor of N ints, or 'predicted'; got {target!r}")
        t = out.argmax(1)
    elif isinstance(target, bool) or target is None:
        raise TypeError(f"target must be an int, a sequence or tensor of N ints, or 'predicted'; got {target!r}")
    elif isinstance(target, numbers.Integral):
        t = torch.full((n,), int(target), dtype=torch.long)
    else:
        if isinstance(target, torch.Tensor):
            t = target.detach()
        elif isinstance(target, (list, tuple, np.ndarray)):
            try:
                t = torch.as_tensor(np.asarray(target))
            except (TypeError, ValueError) as e:
                raise TypeError(f"target must hold integers, got {target!r}") from e
        else:
            raise TypeError(f"target must be an int, a sequence or tensor of N ints, or 'predicted'; "
                            f"got {type(target).__name__}")
        if t.is_floating_point() or t.is_complex() or t.dtype == torch.bool:
            raise TypeError(f"target must hold integers, got dtype {t.dtype}")
        if t.dim() == 0:
            t = t.expand(n)
        if t.dim() != 1 or t.shape[0] != n:
            raise ValueError(f"target must have one class index per image, shape ({n},), got {tuple(t.shape)}")
    t = t.to(device=out.device, dtype=torch.long)
    if n and (int(t.min()) < 0 or int(t.max()) >= n_classes):
        raise ValueError(f"target out of range: class indices must lie in [0, {n_classes}), "
                         f"got min {int(t.min())}, max {int(t.max())}")
    return t


def _check_pixel_model(model) -> None:
    if isinstance(model, FrequencyModel):
        raise TypeError("model must be the pixel model; attribute() wraps it in FrequencyModel itself "
                        "(passing a FrequencyModel would transform twice)")
    if not callable(model):
        raise TypeError(f"model must be callable (an nn.Module taking (N, C, H, W) images), got {type(model).__name__}")


def _warn_if_training(model) -> None:
    # Only layers whose output depends on the mode make a training-mode model a problem.
    if isinstance(model, nn.Module) and any(
            m.training and isinstance(m, (nn.modules.batchnorm._NormBase, nn.modules.dropout._DropoutNd))
            for m in model.modules()):
        warnings.warn("model has batch-norm or dropout layers in training mode: its attributions depend on "
                      "the batch and on chance; call model.eval() first", stacklevel=3)


def _check_options(method: str, kw: dict) -> dict:
    allowed = _METHOD_OPTIONS[method]
    unknown = sorted(set(kw) - set(allowed))
    if unknown:
        raise TypeError(f"unknown option(s) {unknown} for method={method!r}; "
                        f"this method takes {sorted(allowed) or 'no extra options'}")
    opts = dict(allowed)
    opts.update(kw)
    return opts


def band_feature_mask(masks: torch.Tensor) -> torch.Tensor:
    """Captum's ``feature_mask`` for the same bands: ``(1, 1, H, W)`` long map of band ids.

    ``masks``: ``(K, H, W)`` bool, disjoint.  With it, Captum's perturbation methods
    (FeatureAblation, ShapleyValues...) on :class:`FrequencyModel` coefficients remove or keep
    the same groups of coefficients (every channel of a band at once) as freqkit's band
    occlusion and band Shapley.
    """
    if masks.dim() != 3 or masks.dtype != torch.bool:
        raise ValueError(f"masks must be a (K, H, W) bool tensor, got {tuple(masks.shape)} {masks.dtype}")
    if bool((masks.sum(0) > 1).any()):
        raise ValueError("masks must be disjoint (each coefficient in at most one band)")
    ids = torch.arange(masks.shape[0], device=masks.device)[:, None, None]
    return (masks.long() * ids).sum(0)[None, None]


def default_band_masks(h: int, w: int, basis: str = "dct", device=None) -> torch.Tensor:
    """The authors' L-shaped ring bands (Wang et al. 2020), one ring per frequency step.

    DCT: ``min(H, W)`` rings ``max(u/H, v/W)`` in equal steps (for square images, ring k
    is exactly ``max(u, v) == k``).  DFT: ``min(H, W) // 2`` rings of the centred
    spectrum (the DFT has half as many distinct frequencies per axis).  ``(K, H, W)`` bool.
    """
    _check_basis(basis)
    k = min(h, w) if basis == "dct" else max(1, min(h, w) // 2)
    return band_masks(h, w, k, kind="ring", basis=basis, device=device)


# ============================================================================ evaluation helpers

def _chunks(n: int, size: int | None):
    size = n if size is None else max(1, size)
    for s in range(0, n, size):
        yield slice(s, min(n, s + size))


@torch.no_grad()
def _forward(f: Callable, inp: torch.Tensor, batch: int | None) -> torch.Tensor:
    return torch.cat([f(inp[sl]) for sl in _chunks(inp.shape[0], batch or _DEFAULT_EVAL_BATCH)]) \
        if inp.shape[0] else f(inp)


def _pick(out: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    return out.gather(1, t[:, None])[:, 0]


@torch.no_grad()
def _eval_variants(head: Callable, c: torch.Tensor, cb: torch.Tensor, keep_fn: Callable, n_variants: int,
                   t: torch.Tensor, batch: int | None) -> torch.Tensor:
    """Explained output for every image n and variant m: ``(N, M)``.

    Variant m of image n has coefficients ``c[n]`` where ``keep_fn(n_idx, m_idx)`` is true
    and the baseline's ``cb[n]`` elsewhere.  Images x variants are flattened and evaluated
    ``batch`` at a time, so memory is bounded whatever N and M are.
    """
    n = c.shape[0]
    total = n * n_variants
    out = torch.empty(total, dtype=c.dtype, device=c.device)
    b = batch or _DEFAULT_EVAL_BATCH
    for s in range(0, total, b):
        idx = torch.arange(s, min(total, s + b), device=c.device)
        ni, mi = idx // n_variants, idx % n_variants
        keep = keep_fn(ni, mi)
        inp = torch.where(keep, c[ni], cb[ni])
        out[s:s + idx.numel()] = _pick(head(inp), t[ni]).to(c.dtype)
    return out.view(n, n_variants)


def _spread(band_scores: torch.Tensor, masks: torch.Tensor, channels: int) -> torch.Tensor:
    """Spread (N, K) band scores uniformly over each band's coefficients -> (N, C, H, W)."""
    m = masks.to(band_scores.dtype)
    per_coef = band_scores / (m.sum((1, 2)) * channels)
    spec = torch.einsum("nk,khw->nhw", per_coef, m)
    return spec.unsqueeze(1).expand(-1, channels, -1, -1).contiguous()


# ============================================================================ attribute()

def attribute(model: Callable, x: torch.Tensor, target, method: str = "ig", basis: str = "dct",
              n_steps: int = 64, baseline=None, internal_batch_size: int | None = None,
              masks: torch.Tensor | None = None, output: str = "logit", **kw) -> FrequencyAttribution:
    """Attribute the model's output for ``target`` to the frequency coefficients of ``x``.

    Args:
        model: pixel model, images ``(N, C, H, W)`` -> scores ``(N, n_classes)``.  Put it in
            eval mode first (batch norm in training mode makes scores depend on the batch).
        x: images ``(N, C, H, W)``, finite (pixels in ``[0, 1]`` by convention).
        target: class to explain: an int, a sequence or ``(N,)`` tensor of ints, or
            ``"predicted"`` (the model's argmax on ``x``).
        method: one of ``"saliency"``, ``"gradient"``, ``"grad_x_input"``, ``"ig"``,
            ``"smoothgrad"``, ``"occlusion"``, ``"shapley"`` (see the module docstring).
        basis: ``"dct"`` or ``"dft"`` (real Hartley form of the centred DFT).
        n_steps: IG quadrature steps (>= 1); used by ``"ig"`` only.
        baseline: reference image, in pixel space: ``None`` (zeros: a black image, i.e.
            zero coefficients), a number (a constant grey image: only the DC coefficient is
            nonzero), or a tensor ``(N, C, H, W)``, ``(1, C, H, W)`` or ``(C, H, W)``.  IG
            integrates from it; occlusion and Shapley replace removed coefficients by the
            baseline's coefficients (zeros by default, the authors' definition).
        internal_batch_size: at most this many model inputs per forward pass (IG:
            images x steps, passed to Captum, and images are chunked so that it holds;
            perturbation methods: masked images, default 256).  Bounds memory.
        masks: ``(K, H, W)`` bool bands.  Required meaning for occlusion and Shapley (the
            players); defaults there to :func:`default_band_masks` (the authors' rings).
            For the other methods they are only stored, so ``result.bands()`` works.
        output: the explained quantity: ``"logit"`` (default, the authors' choice),
            ``"prob"`` or ``"log_prob"`` of the target class.
        **kw: method options:
            saliency: ``abs=True`` (False gives the signed gradient, same as ``"gradient"``);
            ig: ``ig_method="gausslegendre"`` (any Captum IG ``method``, e.g.
            ``"riemann_trapezoid"``);
            smoothgrad: ``n_samples=32``, ``stdev=0.15`` (noise std in coefficient units;
            the basis is orthonormal, so this is i.i.d. noise of the same std on the
            pixels, 15% of the [0, 1] range as Smilkov et al. recommend),
            ``nt_type="smoothgrad"`` (or ``"smoothgrad_sq"``, ``"vargrad"``), ``abs=False``
            (average of signed gradients, as in the paper), ``seed=0`` (the noise comes
            from Captum in ``internal_batch_size`` batches: a seed reproduces a result for
            the same ``internal_batch_size``);
            occlusion: ``mode="remove"`` (score_k = f(x) - f(x without band k): the
            authors' "n" mode) or ``"keep"`` (score_k = f(baseline + band k of x) -
            f(baseline): their "s" mode);
            shapley: ``exact=None`` (auto: exact for K <= 8), ``n_samples=128``
            permutations when sampling, ``antithetic=True`` (each permutation with its
            reverse, lowering variance), ``seed=0``.

    Returns:
        :class:`FrequencyAttribution`.  ``scores`` has the shape of ``x``.  For IG,
        ``scores.sum((1, 2, 3)) ~= f(x) - f(baseline)`` and ``delta`` is the error.

    Raises:
        ValueError / TypeError naming the argument for an unknown method or basis, a bad
        shape of ``x``, ``baseline`` or ``masks``, a target out of range, ``n_steps < 1``,
        non-finite inputs, or an unknown option.
    """
    check_choice(method, "method", ATTRIBUTION_METHODS)
    _check_basis(basis)
    check_positive_int(n_steps, "n_steps")
    _check_batch(internal_batch_size)
    check_choice(output, "output", _OUTPUTS)
    opts = _check_options(method, kw)
    check_images(x, "x")
    _check_pixel_model(model)
    _warn_if_training(model)
    n, ch, h, w = x.shape
    b = _prepare_baseline(baseline, x)
    if masks is not None:
        masks = _check_masks(masks, h, w, disjoint=method in _BAND_METHODS,
                             partition=method == "shapley", device=x.device)
    fm = FrequencyModel(model, basis)
    head = _Head(fm, output)
    c, cb = to_basis(x, basis), to_basis(b, basis)
    # f(x) through the frequency model (as Captum evaluates it) so that deltas and
    # occlusion drops compare like with like; it differs from model(x) by rounding only.
    fx = _forward(head, c, internal_batch_size)
    t = _resolve_target(target, fx)
    fx_t = _pick(fx, t)
    res = FrequencyAttribution(scores=None, method=method, basis=basis, target=t, coeffs=c,
                               baseline_coeffs=cb, masks=masks, output_x=fx_t, output=output,
                               info={k: v for k, v in opts.items()})
    ibs = internal_batch_size

    if method in ("saliency", "gradient", "grad_x_input", "ig", "smoothgrad"):
        res.scores = _gradient_method(method, head, c, cb, t, n_steps, ibs, opts)
        if method == "ig":
            res.info["n_steps"] = n_steps
            fb_t = _pick(_forward(head, cb, ibs), t)
            res.output_baseline = fb_t
            res.delta = res.scores.sum((1, 2, 3)) - (fx_t - fb_t)
        return res

    if masks is None:
        masks = default_band_masks(h, w, basis, device=x.device)
        res.masks = masks
    k = masks.shape[0]
    fb_t = _pick(_forward(head, cb, ibs), t)
    res.output_baseline = fb_t
    if method == "occlusion":
        check_choice(opts["mode"], "mode", ("remove", "keep"))
        keep = (~masks if opts["mode"] == "remove" else masks).unsqueeze(1)  # (K, 1, H, W)
        v = _eval_variants(head, c, cb, lambda ni, mi: keep[mi], k, t, ibs)
        res.band_scores = fx_t[:, None] - v if opts["mode"] == "remove" else v - fb_t[:, None]
    else:
        phi, se, info = _band_shapley(head, c, cb, t, masks, fx_t, fb_t, ibs, opts)
        res.band_scores, res.stderr = phi, se
        res.info.update(info)
        res.delta = phi.sum(1) - (fx_t - fb_t)
    res.scores = _spread(res.band_scores, masks, ch)
    return res


def _gradient_method(method, head, c, cb, t, n_steps, ibs, opts) -> torch.Tensor:
    from captum.attr import InputXGradient, IntegratedGradients, NoiseTunnel, Saliency

    n = c.shape[0]
    pieces = []
    if method == "smoothgrad":
        check_positive_int(opts["n_samples"], "n_samples")
        stdev = opts["stdev"]
        if not isinstance(stdev, numbers.Real) or isinstance(stdev, bool) or not math.isfinite(stdev) or stdev < 0:
            raise ValueError(f"stdev must be a finite number >= 0, got {stdev!r}")
        check_choice(opts["nt_type"], "nt_type", ("smoothgrad", "smoothgrad_sq", "vargrad"))
    for sl in _chunks(n, ibs):
        # Captum warns unless the input already requires grad; it needs it either way.
        cc, tt = c[sl].detach().requires_grad_(), t[sl]
        if method in ("saliency", "gradient"):
            a = Saliency(head).attribute(cc, target=tt, abs=bool(opts.get("abs", False)))
        elif method == "grad_x_input":
            a = InputXGradient(head).attribute(cc, target=tt)
        elif method == "ig":
            a = IntegratedGradients(head).attribute(cc, baselines=cb[sl], target=tt, n_steps=n_steps,
                                                    method=opts["ig_method"], internal_batch_size=ibs)
        else:
            ns = opts["n_samples"]
            nsb = None if ibs is None else max(1, min(ns, ibs // cc.shape[0]))
            devices = [c.device] if c.device.type == "cuda" else []
            # The noise is drawn from torch's global RNG inside Captum: fork it so a seed
            # makes results reproducible without disturbing the caller's random stream.
            with torch.random.fork_rng(devices=devices):
                torch.manual_seed(opts["seed"])
                a = NoiseTunnel(Saliency(head)).attribute(
                    cc, nt_type=opts["nt_type"], nt_samples=ns, nt_samples_batch_size=nsb,
                    stdevs=float(opts["stdev"]), target=tt, abs=bool(opts["abs"]))
        pieces.append(a.detach())
    return torch.cat(pieces) if pieces else torch.zeros_like(c)


def _band_shapley(head, c, cb, t, masks, fx_t, fb_t, ibs, opts):
    """Shapley values of the K bands as players; v(S) = f(coefficients of S from x, rest baseline)."""
    k = masks.shape[0]
    exact = opts["exact"]
    if exact is None:
        exact = k <= _EXACT_SHAPLEY_MAX_K
    if exact and k > _EXACT_SHAPLEY_HARD_MAX_K:
        raise ValueError(f"exact Shapley values need 2^K model calls per image; K={k} > "
                         f"{_EXACT_SHAPLEY_HARD_MAX_K} is too many, use exact=False (sampling)")
    flat = masks.reshape(k, -1).to(c.dtype)
    h, w = masks.shape[-2:]
    if exact:
        m = 1 << k
        bits = ((torch.arange(m, device=c.device)[:, None] >> torch.arange(k, device=c.device)) & 1).bool()
        keep = ((bits.to(c.dtype) @ flat) > 0).reshape(m, 1, h, w)
        v = _eval_variants(head, c, cb, lambda ni, mi: keep[mi], m, t, ibs).double()
        # The empty and the full coalition are f(baseline) and f(x) by definition; using the
        # same numbers as the delta makes efficiency hold to rounding.
        v[:, 0], v[:, m - 1] = fb_t.double(), fx_t.double()
        size = bits.sum(1)
        weight = torch.tensor([math.factorial(s) * math.factorial(k - s - 1) / math.factorial(k)
                               for s in range(k)], dtype=torch.float64, device=c.device)
        phi = torch.zeros(c.shape[0], k, dtype=torch.float64, device=c.device)
        ar = torch.arange(m, device=c.device)
        for i in range(k):
            without = ar[~bits[:, i]]
            phi[:, i] = ((v[:, without | (1 << i)] - v[:, without]) * weight[size[without]]).sum(1)
        return phi.to(c.dtype), None, {"exact": True, "n_coalitions": m}

    ns = check_positive_int(opts["n_samples"], "n_samples", minimum=2)
    gen = torch.Generator().manual_seed(int(opts["seed"]))
    half = (ns + 1) // 2 if opts["antithetic"] else ns
    perms = torch.stack([torch.randperm(k, generator=gen) for _ in range(half)])
    if opts["antithetic"]:
        perms = torch.cat([perms, perms.flip(1)])
    perms = perms.to(c.device)
    p = perms.shape[0]
    # member[p, j, band] = band is among the first j+1 bands of permutation p (j < K-1).
    pos = torch.empty_like(perms)
    pos.scatter_(1, perms, torch.arange(k, device=c.device).expand(p, k))
    member = pos[:, None, :] <= torch.arange(k - 1, device=c.device)[None, :, None]
    keep = ((member.reshape(-1, k).to(c.dtype) @ flat) > 0).reshape(p * (k - 1), 1, h, w)
    v_mid = _eval_variants(head, c, cb, lambda ni, mi: keep[mi], p * (k - 1), t, ibs)
    n = c.shape[0]
    vals = torch.cat([fb_t[:, None, None].expand(n, p, 1), v_mid.view(n, p, k - 1),
                      fx_t[:, None, None].expand(n, p, 1)], dim=2).double()
    marg = vals[:, :, 1:] - vals[:, :, :-1]                        # in permutation order
    samples = torch.zeros_like(marg).scatter_(2, perms[None].expand(n, p, k), marg)
    if opts["antithetic"]:
        samples = 0.5 * (samples[:, :half] + samples[:, half:])   # pairs are the i.i.d. units
    phi = samples.mean(1)
    se = samples.std(1, unbiased=True) / math.sqrt(samples.shape[1])
    return phi.to(c.dtype), se.to(c.dtype), {"exact": False, "n_permutations": p}


# ============================================================================ per-band pixel heat maps

@dataclass
class BandPixelAttribution:
    """Result of :func:`band_pixel_attribution`.

    Attributes:
        maps: ``(N, K, C, H, W)`` pixel heat map of each band: where in the image band k
            matters.  ``maps[:, k].sum((1, 2, 3)) == band_scores[:, k]``.
        band_scores: ``(N, K)``; equal to the band sums of frequency-domain IG with the
            same baseline and steps, and summing to ``f(x) - f(baseline)`` up to ``delta``.
        delta: ``(N,)`` completeness error ``band_scores.sum(1) - (f(x) - f(baseline))``.
        components: ``(N, K, C, H, W)`` the band components of ``x`` (they sum to ``x``).
        target, masks, basis, n_steps: the setting.
    """

    maps: torch.Tensor
    band_scores: torch.Tensor
    delta: torch.Tensor
    components: torch.Tensor
    target: torch.Tensor
    masks: torch.Tensor
    basis: str
    n_steps: int

    def heatmaps(self, reduce: str = "sum") -> torch.Tensor:
        """``(N, K, H, W)``: per-band maps combined over channels, ``"sum"`` or ``"abs"``."""
        check_choice(reduce, "reduce", ("sum", "abs"))
        return self.maps.abs().sum(2) if reduce == "abs" else self.maps.sum(2)


def _band_components(x: torch.Tensor, masks: torch.Tensor, basis: str) -> torch.Tensor:
    # Through the real basis (not the complex DFT), so the projection is the very one the
    # frequency scores use; for symmetric DFT masks it equals band_decompose.
    m = masks.to(x.dtype)[None, :, None]                      # (1, K, 1, H, W)
    return from_basis(to_basis(x, basis).unsqueeze(1) * m, basis)


def band_pixel_attribution(model: Callable, x: torch.Tensor, target, masks: torch.Tensor,
                           basis: str = "dct", n_steps: int = 64, baseline=None,
                           internal_batch_size: int | None = None, ig_method: str = "gausslegendre",
                           output: str = "logit") -> BandPixelAttribution:
    """Integrated Gradients with the K band components of ``x`` as K separate inputs.

    ``x = sum_k x_k`` with ``x_k`` the band-k component (``masks`` ``(K, H, W)`` must
    partition the plane), the baseline likewise ``b = sum_k b_k``; IG runs on
    ``F(x_1, ..., x_K) = f(sum_k x_k)`` along the straight path from ``(b_k)`` to
    ``(x_k)`` (Sundararajan et al. 2017).  The result is a pixel heat map per band,
    ``(N, K, C, H, W)``, answering *where* in the image each band matters.

    Because every component enters through the same sum, the K gradients are equal; we
    therefore run one pixel IG for the path-integrated gradient ``G`` and form
    ``maps[:, k] = G * (x_k - b_k)`` -- the same numbers as Captum IG with K inputs, at
    1/K of its memory (tested).  Consequences: the maps of band k sum to the band-k score
    of frequency-domain IG (``<G, P_k (x - b)> = <B G, M_k B (x - b)>``), and all maps
    together sum to ``f(x) - f(baseline)`` (completeness).

    Args: as :func:`attribute` (``ig_method`` is Captum's quadrature rule).
    """
    from captum.attr import IntegratedGradients

    _check_basis(basis)
    check_positive_int(n_steps, "n_steps")
    _check_batch(internal_batch_size)
    check_choice(output, "output", _OUTPUTS)
    check_images(x, "x")
    _check_pixel_model(model)
    _warn_if_training(model)
    n, ch, h, w = x.shape
    b = _prepare_baseline(baseline, x)
    masks = _check_masks(masks, h, w, partition=True, device=x.device)
    head = _Head(model, output)
    fx = _forward(head, x, internal_batch_size)
    t = _resolve_target(target, fx)
    fx_t = _pick(fx, t)
    fb_t = _pick(_forward(head, b, internal_batch_size), t)
    ig = IntegratedGradients(head, multiply_by_inputs=False)
    g = torch.cat([ig.attribute(x[sl], baselines=b[sl], target=t[sl], n_steps=n_steps, method=ig_method,
                                internal_batch_size=internal_batch_size).detach()
                   for sl in _chunks(n, internal_batch_size)]) if n else torch.zeros_like(x)
    comps = _band_components(x, masks, basis)
    maps = g.unsqueeze(1) * (comps - _band_components(b, masks, basis))
    band_scores = maps.sum((2, 3, 4))
    return BandPixelAttribution(maps=maps, band_scores=band_scores, delta=band_scores.sum(1) - (fx_t - fb_t),
                                components=comps, target=t, masks=masks, basis=basis, n_steps=n_steps)


# ============================================================================ shares, top-k

def _scores_of(scores, name: str = "scores") -> torch.Tensor:
    if isinstance(scores, FrequencyAttribution):
        if scores.scores is None:
            raise ValueError(f"{name}: this {scores.method!r} result has no per-coefficient scores")
        scores = scores.scores
    return check_tensor(scores, name, ndim=4)


def band_shares(scores, masks: torch.Tensor, by: str = "abs") -> torch.Tensor:
    """Share of attribution mass per band, ``(N, K)``.

    ``by="abs"``: ``sum_band |a| / sum_all |a|`` (rows sum to 1 when the bands partition
    the plane).  ``by="signed"``: ``sum_band a / sum_all |a|`` (same denominator, so the
    sign shows whether a band raised or lowered the output).  Channels are pooled.
    ``scores`` is ``(N, C, H, W)`` or a :class:`FrequencyAttribution`.  An all-zero row
    gives zeros.
    """
    s = _scores_of(scores)
    check_choice(by, "by", ("abs", "signed"))
    masks = _check_masks(masks, *s.shape[-2:], device=s.device)
    total = s.abs().sum((1, 2, 3))
    num = radial_profile((s.abs() if by == "abs" else s).sum(1), masks)
    return num / total.clamp_min(torch.finfo(s.dtype).tiny)[:, None]


def planted_band_share(result_scores, planted_masks: torch.Tensor) -> torch.Tensor:
    """Share of ``|attribution|`` mass on a planted band, ``(N,)`` in ``[0, 1]``.

    Ground truth for chapter 4: on a data set where the label lives in a known band, a
    faithful method puts most of its mass there.  ``result_scores``: ``(N, C, H, W)`` or a
    :class:`FrequencyAttribution`; ``planted_masks``: one ``(H, W)`` mask for all images or
    ``(N, H, W)``, one per image.  Channels are pooled.
    """
    s = _scores_of(result_scores, "result_scores")
    n, _, h, w = s.shape
    m = check_mask(planted_masks, "planted_masks", h, w, allow_stack=True).to(s.device)
    if m.dim() == 3 and m.shape[0] != n:
        raise ValueError(f"planted_masks must be (H, W) or one mask per image ({n}, {h}, {w}), got {tuple(m.shape)}")
    a = s.abs().sum(1)
    on = (a * m.to(a.dtype)).sum((1, 2))
    return on / a.sum((1, 2)).clamp_min(torch.finfo(a.dtype).tiny)


def topk_reconstruction(x: torch.Tensor, scores, fraction: float, basis: str = "dct", by: str = "abs",
                        baseline=None, return_mask: bool = False):
    """What the model sees: ``x`` rebuilt from its top ``fraction`` attributed coefficients.

    Per image, the ``round(fraction * C * H * W)`` coefficients with the largest score
    (``by="abs"``: largest ``|score|``; ``"signed"``: largest score, i.e. most positive
    evidence) keep their value; all others are set to the baseline's coefficients (zero
    by default).  ``fraction=1`` returns ``x`` (to rounding), ``0`` the baseline.

    Args:
        x: images ``(N, C, H, W)``; scores: ``(N, C, H, W)`` or a FrequencyAttribution
        (computed in the same ``basis``); fraction in ``[0, 1]``.
    Returns:
        images ``(N, C, H, W)``, and the kept-coefficient mask (same shape, bool) with
        ``return_mask=True``.
    """
    check_images(x, "x")
    _check_basis(basis)
    check_choice(by, "by", ("abs", "signed"))
    s = _scores_of(scores)
    if tuple(s.shape) != tuple(x.shape):
        raise ValueError(f"scores must have the shape of x {tuple(x.shape)}, got {tuple(s.shape)}")
    if not isinstance(fraction, numbers.Real) or isinstance(fraction, bool) or not 0 <= fraction <= 1:
        raise ValueError(f"fraction must be a number in [0, 1], got {fraction!r}")
    b = _prepare_baseline(baseline, x)
    n = x.shape[0]
    d = x[0].numel()
    k = int(round(fraction * d))
    key = (s.abs() if by == "abs" else s).reshape(n, d)
    keep = torch.zeros(n, d, dtype=torch.bool, device=x.device)
    if k:
        keep.scatter_(1, key.topk(k, dim=1).indices, True)
    keep = keep.view_as(x)
    c = torch.where(keep, to_basis(x, basis), to_basis(b, basis))
    out = from_basis(c, basis)
    return (out, keep) if return_mask else out


# ============================================================================ data-set profile

@dataclass
class RadialAttributionProfile:
    """Result of :func:`radial_attribution_profile`.

    Attributes:
        mean, ci_low, ci_high: ``(K,)`` mean band share over images and its bootstrap
            95% percentile interval.
        per_image: ``(M, K)`` band shares of every image.
        labels: ``(M,)`` class labels; targets: ``(M,)`` explained classes.
        by_class: ``{class: {"mean", "ci_low", "ci_high", "n"}}`` when asked, else ``{}``.
        method, basis, by, n_boot, seed, masks: the setting.
    """

    mean: torch.Tensor
    ci_low: torch.Tensor
    ci_high: torch.Tensor
    per_image: torch.Tensor
    labels: torch.Tensor
    targets: torch.Tensor
    by_class: dict
    method: str
    basis: str
    by: str
    n_boot: int
    seed: int
    masks: torch.Tensor

    def to_dict(self) -> dict:
        """Plain lists, for JSON results files."""
        return {
            "method": self.method, "basis": self.basis, "by": self.by, "n_boot": self.n_boot,
            "seed": self.seed, "n_images": int(self.per_image.shape[0]),
            "mean": self.mean.tolist(), "ci_low": self.ci_low.tolist(), "ci_high": self.ci_high.tolist(),
            "by_class": {str(k): {kk: (vv.tolist() if isinstance(vv, torch.Tensor) else vv) for kk, vv in v.items()}
                         for k, v in self.by_class.items()},
        }


def _bootstrap(values: torch.Tensor, n_boot: int, gen: torch.Generator, chunk: int = 64):
    """Mean and 95% percentile bootstrap interval of the row mean of ``values`` (M, K)."""
    m = values.shape[0]
    v = values.double().cpu()
    means = []
    for s in range(0, n_boot, chunk):
        r = min(chunk, n_boot - s)
        idx = torch.randint(0, m, (r, m), generator=gen)
        means.append(v[idx].mean(1))
    means = torch.cat(means)
    lo, hi = torch.quantile(means, torch.tensor([0.025, 0.975], dtype=torch.float64), dim=0)
    return v.mean(0), lo, hi


def radial_attribution_profile(model: Callable, x, y: torch.Tensor | None, masks: torch.Tensor,
                               method: str = "ig", basis: str = "dct", batch_size: int = 64,
                               n_boot: int = 1000, seed: int = 0, by_class: bool = False,
                               target="label", by: str = "abs", progress: bool = True,
                               **attr_kw) -> RadialAttributionProfile:
    """Data-set level: mean share of attribution per band, with bootstrap 95% intervals.

    For every image, the attribution (:func:`attribute` with ``method``, ``basis``,
    ``masks`` and ``attr_kw``) is reduced to band shares (:func:`band_shares`, ``by="abs"``
    or ``"signed"``); shares are averaged over images and resampled ``n_boot`` times
    (percentile bootstrap over images, seeded).

    Args:
        x: images ``(M, C, H, W)`` with labels ``y`` ``(M,)``, or an iterable of
            ``(images, labels)`` batches (e.g. a DataLoader) with ``y=None``.
        masks: ``(K, H, W)`` bands.
        batch_size: images per :func:`attribute` call (tensor input only).
        target: ``"label"`` (explain the true class ``y``) or ``"predicted"``.
        by_class: also report the profile per class label.
        progress: show a tqdm bar over batches.
    """
    from tqdm.auto import tqdm

    check_choice(target, "target", ("label", "predicted"))
    check_choice(by, "by", ("abs", "signed"))
    check_positive_int(batch_size, "batch_size")
    check_positive_int(n_boot, "n_boot")
    if isinstance(x, torch.Tensor):
        check_images(x, "x")
        if not isinstance(y, torch.Tensor) or y.dim() != 1 or y.shape[0] != x.shape[0]:
            raise ValueError(f"y must be a ({x.shape[0]},) tensor of labels matching x, got "
                             f"{tuple(y.shape) if isinstance(y, torch.Tensor) else type(y).__name__}")
        batches: Iterable = ((x[sl], y[sl]) for sl in _chunks(x.shape[0], batch_size))
        total = math.ceil(x.shape[0] / batch_size)
    else:
        if y is not None:
            raise ValueError("y must be None when x is an iterable of (images, labels) batches")
        batches, total = x, (len(x) if hasattr(x, "__len__") else None)
    shares, labels, targets = [], [], []
    for xb, yb in tqdm(batches, total=total, disable=not progress, desc=f"{method} profile"):
        yb = torch.as_tensor(yb)
        r = attribute(model, xb, yb if target == "label" else "predicted", method=method, basis=basis,
                      masks=masks, **attr_kw)
        shares.append(band_shares(r, r.masks, by=by).detach().cpu())
        labels.append(yb.detach().cpu().long())
        targets.append(r.target.cpu())
    if not shares:
        raise ValueError("x holds no images")
    per_image = torch.cat(shares)
    labels_t, targets_t = torch.cat(labels), torch.cat(targets)
    gen = torch.Generator().manual_seed(seed)
    mean, lo, hi = _bootstrap(per_image, n_boot, gen)
    classes = {}
    if by_class:
        for cl in torch.unique(labels_t).tolist():
            sel = per_image[labels_t == cl]
            cm, cl_lo, cl_hi = _bootstrap(sel, n_boot, gen)
            classes[int(cl)] = {"mean": cm, "ci_low": cl_lo, "ci_high": cl_hi, "n": int(sel.shape[0])}
    return RadialAttributionProfile(mean=mean, ci_low=lo, ci_high=hi, per_image=per_image, labels=labels_t,
                                    targets=targets_t, by_class=classes, method=method, basis=basis, by=by,
                                    n_boot=n_boot, seed=seed, masks=masks)


# ============================================================================ deletion / insertion

@dataclass
class DeletionInsertionCurves:
    """Result of :func:`deletion_insertion_curves`.

    Attributes:
        fractions: ``(P,)`` fraction of coefficients removed (deletion) / added (insertion).
        deletion, insertion: ``{order: (N, P)}`` explained output along each curve.
        auc_deletion, auc_insertion: ``{order: (N,)}`` trapezoid areas over ``[0, 1]``.
            Faithful attributions give a low deletion AUC and a high insertion AUC for
            ``"attribution"`` compared with ``"random"``.
        output: ``"prob"``, ``"logit"`` or ``"log_prob"``; target: ``(N,)``.
    """

    fractions: torch.Tensor
    deletion: dict
    insertion: dict
    auc_deletion: dict
    auc_insertion: dict
    output: str
    target: torch.Tensor

    def summary(self) -> dict:
        """Mean AUC per order: ``{"deletion": {order: float}, "insertion": {...}}``."""
        return {"deletion": {k: float(v.mean()) for k, v in self.auc_deletion.items()},
                "insertion": {k: float(v.mean()) for k, v in self.auc_insertion.items()}}


_ORDERS = ("attribution", "random", "low_to_high", "high_to_low")


def deletion_insertion_curves(model: Callable, x: torch.Tensor, target, scores, basis: str = "dct",
                              orders: Sequence[str] = _ORDERS, n_points: int = 21, baseline=None,
                              output: str = "prob", by: str = "signed", seed: int = 0,
                              internal_batch_size: int | None = None) -> DeletionInsertionCurves:
    """Deletion and insertion curves in frequency space (Samek et al. 2017; Petsiuk et al. 2018).

    Coefficients (all ``C * H * W`` per image) are ranked by an order; *deletion* replaces
    the first ``round(p * D)`` of them by the baseline's coefficients (zero by default),
    *insertion* starts from the baseline and puts them back, for ``p`` in
    ``linspace(0, 1, n_points)``; the curve is the explained output of the target.

    Orders: ``"attribution"`` (largest score first; ``by="signed"`` ranks the strongest
    positive evidence first, ``"abs"`` the largest magnitude), ``"random"`` (seeded),
    ``"low_to_high"`` / ``"high_to_low"`` (by normalised radial frequency; ties by index).

    Args:
        scores: ``(N, C, H, W)`` in ``basis``, or a FrequencyAttribution.
        target: as in :func:`attribute`.
        output: ``"prob"`` (softmax probability, as Petsiuk et al.), ``"logit"``, ``"log_prob"``.
    """
    check_images(x, "x")
    _check_basis(basis)
    check_positive_int(n_points, "n_points", minimum=2)
    check_choice(output, "output", _OUTPUTS)
    check_choice(by, "by", ("abs", "signed"))
    _check_batch(internal_batch_size)
    if isinstance(orders, str):
        orders = (orders,)
    for o in orders:
        check_choice(o, "orders", _ORDERS)
    s = _scores_of(scores)
    if tuple(s.shape) != tuple(x.shape):
        raise ValueError(f"scores must have the shape of x {tuple(x.shape)}, got {tuple(s.shape)}")
    n, ch, h, w = x.shape
    d = ch * h * w
    b = _prepare_baseline(baseline, x)
    head = _Head(FrequencyModel(model, basis), output)
    c, cb = to_basis(x, basis), to_basis(b, basis)
    t = _resolve_target(target, _forward(head, c, internal_batch_size))
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
        dele[o] = _eval_variants(head, c, cb, lambda ni, mi: rank[ni] >= kcount[mi].view(-1, 1, 1, 1),
                                 n_points, t, internal_batch_size)
        ins[o] = _eval_variants(head, c, cb, lambda ni, mi: rank[ni] < kcount[mi].view(-1, 1, 1, 1),
                                n_points, t, internal_batch_size)
        fr = fractions.to(device=x.device, dtype=dele[o].dtype)
        auc_d[o] = torch.trapezoid(dele[o], fr, dim=1)
        auc_i[o] = torch.trapezoid(ins[o], fr, dim=1)
    return DeletionInsertionCurves(fractions=fractions, deletion=dele, insertion=ins, auc_deletion=auc_d,
                                   auc_insertion=auc_i, output=output, target=t)


# ============================================================================ randomisation check

@dataclass
class RandomisationCheck:
    """Result of :func:`model_randomisation_check`.

    Attributes:
        layers: names of the randomised layers, one entry per step (``"all"`` for mode all;
            for cascading, step i has layers[0..i] re-initialised, top first).
        spearman: ``(L, N)`` Spearman rank correlation between the original and the
            randomised model's scores (signed); ``spearman_abs``: of ``|scores|``.  High
            values mean the explanation does not depend on what the model learned.
        original: the original model's :class:`FrequencyAttribution`.
        randomised_scores: ``(L, N, C, H, W)``.
        mode, method, basis, seed.
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
        return {"layers": list(self.layers), "mode": self.mode, "method": self.method,
                "spearman_mean": self.spearman.mean(1).tolist(),
                "spearman_abs_mean": self.spearman_abs.mean(1).tolist()}


def _spearman_rows(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Spearman correlation per row with average ranks for ties (NaN for a constant row)."""
    from scipy.stats import rankdata

    ra = rankdata(a.detach().double().cpu().numpy(), axis=1)
    rb = rankdata(b.detach().double().cpu().numpy(), axis=1)
    ra -= ra.mean(1, keepdims=True)
    rb -= rb.mean(1, keepdims=True)
    den = np.sqrt((ra ** 2).sum(1) * (rb ** 2).sum(1))
    with np.errstate(invalid="ignore", divide="ignore"):
        r = (ra * rb).sum(1) / den
    return torch.from_numpy(r)


def _randomisable_layers(model: nn.Module) -> list:
    return [name for name, mod in model.named_modules()
            if callable(getattr(mod, "reset_parameters", None)) and any(True for _ in mod.parameters(recurse=False))]


def model_randomisation_check(model: nn.Module, x: torch.Tensor, target, method: str = "ig",
                              basis: str = "dct", mode: str = "cascading", layers: Sequence[str] | None = None,
                              seed: int = 0, **attr_kw) -> RandomisationCheck:
    """Model-parameter randomisation test of Adebayo et al. 2018 ("Sanity checks for saliency maps").

    A copy of ``model`` has its layers re-initialised (``reset_parameters()``; the
    original is untouched) and the attributions are recomputed for the same images and
    the same target classes (those resolved on the original model).  A faithful method's
    scores must change: low rank correlation with the original.

    Args:
        model: an ``nn.Module``; layers are its submodules that own parameters and have
            ``reset_parameters`` (conv, linear, batch norm, ...), ordered top (output) first.
        mode: ``"cascading"`` (re-initialise from the top layer down, cumulatively, one
            step per layer), ``"independent"`` (one layer at a time) or ``"all"`` (every
            layer at once, one step).
        layers: names to randomise, top first (default: all randomisable layers).
        seed: seeds the re-initialisation (torch's global RNG is forked, not disturbed).
        attr_kw: passed to :func:`attribute` (``n_steps``, ``baseline``, ``masks``, ...).
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
            rho.append(_spearman_rows(flat_o, flat_r))
            rho_abs.append(_spearman_rows(flat_o.abs(), flat_r.abs()))
    return RandomisationCheck(layers=names, spearman=torch.stack(rho), spearman_abs=torch.stack(rho_abs),
                              original=orig, randomised_scores=torch.stack(scores), mode=mode,
                              method=method, basis=basis, seed=seed)
