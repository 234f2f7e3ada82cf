"""Frequency attribution: how much each DCT/DFT coefficient contributes to a CNN's output.

The model stays a pixel model ``f`` on images ``x`` ``(N, C, H, W)`` in ``[0, 1]``.  We
attribute ``g(c) = f(B^T c)`` where ``c = B x`` are the coefficients of ``x`` in an
orthonormal basis ``B`` (:func:`freqkit.transforms.to_basis`):

* ``basis="dct"``: the orthonormal 2-D DCT-II, per channel;
* ``basis="dft"``: the centred unitary DFT, in its real orthonormal form (the Hartley
  transform, see :mod:`freqkit.transforms`).  A real basis keeps every Captum method
  (which perturbs real inputs) meaningful, and a DFT band mask that is symmetric under
  ``f -> -f`` selects the same subspace in both forms, so band scores mean the same thing.

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
a Captum class     any ``captum.attr`` attribution (DeepLift, GradientShap, LRP, Occlusion,
                   ...) or a factory ``lambda fm: NoiseTunnel(Saliency(fm))``, run by Captum
                   on :class:`FrequencyModel` (Kokhlikyan et al. 2020, "Captum")
=================  ==========================================================================

Captum's LRP (Bach et al. 2015) needs a rule for every layer; :func:`register_lrp_rules`
gives freqkit's layers theirs (``Normalize``, and the inverse transform :class:`FromBasis`
inside :class:`FrequencyModel`, rooted so that relevance is conserved from pixels to
coefficients).

Baselines (the reference IG integrates from and occlusion fills in) are named in
:data:`NAMED_BASELINES` and built by :func:`baseline_image`: black, a Gaussian blur of the
image, or uniform noise (Sturmfels, Lundberg & Lee 2020, "Visualizing the impact of feature
attribution baselines", Distill).

Beside :func:`attribute`: :func:`band_pixel_attribution` (where in the image each band
matters), :func:`band_shares`, :func:`topk_reconstruction`, the data-set profile
:func:`radial_attribution_profile`, and :func:`perturbation_attribution` (which
frequencies of an adversarial perturbation change the output).  Whether the numbers can be
trusted is :mod:`freqkit.faithfulness`'s question.
"""
from __future__ import annotations

import math
import numbers
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import torch
from torch import nn

from ._explain import (
    OUTPUTS, OutputHead, check_internal_batch, check_masks, eval_variants, forward_batched, pick, prepare_baseline,
    resolve_target,
)
from ._distributed import agree_shape, checksum, fail_together, gather_in_order, local_batches, world
from ._runtime import chunks, eval_mode, model_device
from ._runtime import progress as progress_bar
from ._validate import check_choice, check_images, check_labels, check_mask, check_positive_int, check_tensor
from .models import Normalize, PatchWhitening
from .stats import bootstrap_ci
from .transforms import band_energy, check_basis, from_basis, radial_profile, ring_band_masks, to_basis

__all__ = [
    "ATTRIBUTION_METHODS", "FromBasis", "FrequencyModel", "FrequencyAttribution", "attribute", "register_lrp_rules",
    "scores_of",
    "BandPixelAttribution", "band_pixel_attribution", "band_shares", "band_feature_mask",
    "topk_reconstruction", "RadialAttributionProfile", "radial_attribution_profile", "perturbation_attribution",
    "NAMED_BASELINES", "baseline_image",
]

#: The method names :func:`attribute` accepts (see the table in the module docstring).
ATTRIBUTION_METHODS = ("saliency", "gradient", "grad_x_input", "ig", "smoothgrad", "occlusion", "shapley")
_BAND_METHODS = ("occlusion", "shapley")
#: The baselines :func:`attribute` (and :func:`baseline_image`) accept by name.
NAMED_BASELINES = ("black", "blur", "uniform")
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

_BASIS_RULE = []   # the BasisRule class, built on first use (Captum is imported lazily)


def _basis_rule_class():
    """Captum's ``EpsilonRule`` for :class:`FromBasis`, measured from a root point (built once)."""
    if _BASIS_RULE:
        return _BASIS_RULE[0]
    from captum.attr._utils.lrp_rules import EpsilonRule, IdentityRule

    class BasisRule(EpsilonRule):
        """LRP-epsilon through the inverse transform ``x = B^T c``, rooted where the pixel model's input is zero.

        With a root image ``x0`` (coefficients ``c0 = B x0``) the relevance ``R_x`` of the
        pixels goes to the coefficients as ``R_c = (c - c0) * B (R_x / (x - x0))``
        (Bach et al. 2015's LRP-0/epsilon rule, written for a root point as in Montavon et
        al. 2017's deep Taylor decomposition); the map is linear without bias, so
        ``sum(R_c) = sum(R_x)`` (up to the stabiliser ``epsilon``).  The root is the
        ``mean`` of a :class:`freqkit.Normalize` that is the pixel model's first layer and
        propagates with Captum's ``IdentityRule`` (what :func:`register_lrp_rules` gives
        it): that rule hands on the relevance of the normalised input, which is measured
        from ``x = mean``.  Otherwise the root is 0 (plain LRP-epsilon).
        """

        def forward_hook(self, module, inputs, outputs):
            self._root = None
            model = getattr(module, "pixel_model", None)
            if isinstance(model, nn.Module):
                first = next((m for m in model.modules() if not list(m.children())), None)
                if isinstance(first, Normalize) and isinstance(getattr(first, "rule", None), IdentityRule):
                    self._root = first.mean.to(device=outputs.device, dtype=outputs.dtype)
            self._basis = getattr(module, "basis", "dct")
            return super().forward_hook(module, inputs, outputs)

        def _create_backward_hook_input(self, inputs):
            ref = 0 if self._root is None else to_basis(self._root.expand_as(inputs).contiguous(), self._basis)

            def _backward_hook_input(grad):
                relevance = grad * (inputs - ref)
                if self._has_single_input:
                    self.relevance_input[grad.device] = relevance.data
                else:
                    self.relevance_input[grad.device].append(relevance.data)
                grad.replace_out = relevance
                return relevance

            return _backward_hook_input

        def _create_backward_hook_output(self, outputs):
            ref = 0 if self._root is None else self._root

            def _backward_hook_output(grad):
                d = outputs - ref
                sign = torch.sign(d)
                sign[sign == 0] = 1
                self.relevance_output[grad.device] = grad.data
                return grad / (d + sign * self.STABILITY_FACTOR)

            return _backward_hook_output

    BasisRule.__module__ = __name__
    _BASIS_RULE.append(BasisRule)
    return BasisRule


def register_lrp_rules() -> dict:
    """Give Captum's LRP a rule for every layer of freqkit's models (and of :class:`FrequencyModel`).

    Captum's ``LRP`` (layer-wise relevance propagation, Bach et al. 2015) refuses a model
    with a leaf module that has neither a ``rule`` attribute nor a default rule for its type
    (the table ``SUPPORTED_LAYERS_WITH_RULES`` of ``captum.attr._core.lrp``), and every
    freqkit model starts with such a layer (``Normalize``).  This adds, without replacing a
    rule Captum already has:

    * :class:`freqkit.Normalize` -> ``IdentityRule``: ``(x - mean) / std`` is affine per
      coordinate, each output depends on one input, so the only rule that conserves
      relevance passes it on unchanged (the epsilon rule, Captum's default for the affine
      BatchNorm, would scale it by ``x / (x - mean)``: the bias's share is lost);
    * :class:`freqkit.PatchWhitening` (AirNet's frozen whitening convolution) ->
      ``EpsilonRule``, Captum's rule for ``nn.Conv2d``;
    * ``nn.Flatten`` -> ``EpsilonRule`` (a reshape: relevance passes unchanged);
    * ``nn.AdaptiveMaxPool2d`` -> ``EpsilonRule`` (as Captum's ``MaxPool2d``: winner takes all);
    * ``nn.GELU`` joins Captum's element-wise activations (``ReLU``, ``Tanh``, ``Dropout``),
      through which relevance passes unchanged;
    * :class:`FromBasis` (the inverse transform inside :class:`FrequencyModel`) -> the basis
      rule: LRP-epsilon rooted at the image the first ``Normalize`` maps to zero (its
      ``mean``), which conserves relevance exactly from pixels to coefficients.  (Rooted at
      0, plain LRP-epsilon would divide the relevance of black pixels, which a normalised
      model gives relevance, by a zero pixel value: scores of 1e5 and more, measured.)
      ``FromBasis`` also carries this rule as its ``rule`` attribute, made on first use.

    :func:`attribute` calls this itself, and so does Captum's ``LRP(FrequencyModel(...))``
    (through ``FromBasis.rule``); call it yourself before ``LRP(model)`` on a bare pixel
    model.  Idempotent.  Known limits (LRP runs, finite, but does not conserve relevance):
    the functional residual sum of :class:`freqkit.ResNetCIFAR` sends the full relevance down
    both branches (Captum's ``Addition_Module`` would be needed), and the functional
    ``head_scale`` of ResNetCIFAR and :class:`freqkit.AirNet` multiplies the relevance total
    by that scale (Captum normalises by the last rule layer's output); a
    :class:`freqkit.MirrorAverage` calls its network twice, which Captum's LRP refuses
    (explain its ``net``).  Biases (convolution, linear, batch norm, whitening) absorb
    relevance in every model, as in Captum.

    Returns:
        ``{module type: rule class}``, the rules freqkit registers (also those Captum had).

    Raises:
        ImportError: Captum is not installed, or its LRP no longer has the rule table.
    """
    from captum.attr._core import lrp as captum_lrp
    from captum.attr._utils.lrp_rules import EpsilonRule, IdentityRule

    table = getattr(captum_lrp, "SUPPORTED_LAYERS_WITH_RULES", None)
    if not isinstance(table, dict):
        raise ImportError("captum.attr._core.lrp.SUPPORTED_LAYERS_WITH_RULES is missing: this Captum version "
                          "finds LRP rules differently; set module.rule on each freqkit layer instead")
    ours = {Normalize: IdentityRule, PatchWhitening: EpsilonRule, nn.Flatten: EpsilonRule,
            nn.AdaptiveMaxPool2d: EpsilonRule, FromBasis: _basis_rule_class()}
    for k, v in ours.items():
        table.setdefault(k, v)
    nonlinear = getattr(captum_lrp, "SUPPORTED_NON_LINEAR_LAYERS", None)
    if isinstance(nonlinear, list) and nn.GELU not in nonlinear:
        nonlinear.append(nn.GELU)
    return {k: table[k] for k in ours}


class FromBasis(nn.Module):
    """The inverse transform as a layer: ``FromBasis(basis)(c) == from_basis(c, basis)``.

    :class:`FrequencyModel` runs its input through one of these, so that the inverse
    transform is a module that Captum's layer-wise relevance propagation (LRP, Bach et al.
    2015) can give a rule to: Captum propagates relevance only through modules with a rule
    (its ``LRP`` walks the leaf modules and looks for a ``rule`` attribute, else a default
    rule for the module's type).  The transform is linear without bias, so the epsilon rule
    (LRP-0/epsilon) conserves relevance; what it needs is the right *root point*, the image
    the relevance is measured from.  The :attr:`rule` property gives a fresh basis rule of
    :func:`register_lrp_rules` whenever Captum asks (Captum deletes ``module.rule`` after
    every call; a rule you set yourself lasts, as in Captum, one call).

    Args:
        basis: ``"dct"`` (default) or ``"dft"``.
        pixel_model: the pixel model this layer feeds (kept out of the module tree, for the
            LRP rule's root point only); ``None``: none.

    Shape:
        - input: ``(..., H, W)`` coefficients in ``basis``.
        - output: ``(..., H, W)`` images.

    Raises:
        ValueError: ``basis`` is not ``"dct"`` or ``"dft"``.

    Example:
        >>> import torch, freqkit as fk
        >>> from freqkit.attribution import FromBasis
        >>> c = fk.dct2(torch.rand(1, 1, 4, 4))
        >>> bool(torch.allclose(FromBasis("dct")(c), fk.idct2(c)))
        True
    """

    def __init__(self, basis: str = "dct", pixel_model: Callable | None = None):
        super().__init__()
        check_basis(basis)
        self.basis = basis
        # Only for the LRP root point; a plain attribute would register a Module (and its parameters).
        self.__dict__["pixel_model"] = pixel_model
        self.__dict__["_lrp_rule"] = None

    def forward(self, c: torch.Tensor) -> torch.Tensor:
        """``from_basis(c, basis)``: the images whose coefficients are ``c`` (same shape)."""
        return from_basis(c, self.basis)

    @property
    def rule(self):
        """Captum's LRP rule for this layer (the basis rule of :func:`register_lrp_rules`), made on first use."""
        if self.__dict__["_lrp_rule"] is None:
            register_lrp_rules()  # so that LRP(FrequencyModel(model)) finds Normalize's rule too
            self.__dict__["_lrp_rule"] = _basis_rule_class()()
        return self.__dict__["_lrp_rule"]

    @rule.setter
    def rule(self, value) -> None:
        self.__dict__["_lrp_rule"] = value

    @rule.deleter
    def rule(self) -> None:
        self.__dict__["_lrp_rule"] = None

    def extra_repr(self) -> str:
        """Shown by ``repr``: the basis."""
        return f"basis={self.basis!r}"


class FrequencyModel(nn.Module):
    """A pixel model seen from frequency space: ``fm(c) == model(from_basis(c, basis))``.

    Wraps a pixel model ``f`` so that its input is the coefficient tensor ``c = B x`` of ``x``
    in the orthonormal basis ``B`` of ``basis`` (:func:`freqkit.transforms.to_basis`).  ``fm``
    is an ordinary differentiable ``nn.Module``, so any Captum attribution class can be built
    on it: ``captum.attr.IntegratedGradients(fm).attribute(fm.to_coeffs(x), ...)`` gives
    per-coefficient IG scores.  An ``nn.Module`` model becomes a submodule, so ``fm.eval()``
    and ``fm.to(device)`` reach it.  The inverse transform is a layer too, ``fm.inverse`` (a
    :class:`FromBasis`, no parameters), so that Captum's LRP can propagate relevance through
    it (:func:`register_lrp_rules`).  :func:`attribute` builds this wrapper itself; give it
    the pixel model.

    Args:
        model: any callable (usually an ``nn.Module``) taking images ``(N, C, H, W)``; extra
            arguments of :meth:`forward` are passed on to it.
        basis: ``"dct"`` (orthonormal 2-D DCT-II per channel, the default) or ``"dft"`` (the
            real orthonormal Hartley form of the centred DFT).

    Shape:
        - coeffs (input of :meth:`forward`): ``(N, C, H, W)``, coefficients in ``basis``.
        - output: what ``model`` returns for the images ``from_basis(coeffs, basis)``.

    Raises:
        TypeError: ``model`` is not callable.
        ValueError: ``basis`` is not ``"dct"`` or ``"dft"``.

    Example:
        >>> import torch, freqkit as fk
        >>> _ = torch.manual_seed(0); x = torch.rand(2, 1, 8, 8)
        >>> model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 3)).eval()
        >>> fm = fk.FrequencyModel(model, "dct")
        >>> bool(torch.allclose(fm(fm.to_coeffs(x)), model(x), atol=1e-5))
        True
    """

    def __init__(self, model: Callable, basis: str = "dct"):
        super().__init__()
        if not callable(model):
            raise TypeError(f"model must be callable (an nn.Module taking (N, C, H, W) images), "
                            f"got {type(model).__name__}")
        check_basis(basis)
        self.basis = basis
        self.inverse = FromBasis(basis, pixel_model=model)
        self.model = model

    def forward(self, coeffs: torch.Tensor, *args, **kwargs):
        """The wrapped model's output on the images whose ``basis`` coefficients are ``coeffs``.

        Args:
            coeffs: ``(N, C, H, W)`` coefficients (e.g. from :meth:`to_coeffs`).
            *args, **kwargs: passed on to the wrapped model.

        Returns:
            ``model(from_basis(coeffs, basis), *args, **kwargs)``; differentiable in ``coeffs``.
        """
        return self.model(self.inverse(coeffs), *args, **kwargs)

    def to_coeffs(self, x: torch.Tensor) -> torch.Tensor:
        """Coefficients of images ``x`` ``(N, C, H, W)`` in this model's basis (same shape as ``x``)."""
        return to_basis(x, self.basis)

    def extra_repr(self) -> str:
        """Shown by ``repr(fm)``: the basis."""
        return f"basis={self.basis!r}"


# ============================================================================ the result

@dataclass
class FrequencyAttribution:
    """Result of :func:`attribute`: per-coefficient (and, for the band methods, per-band) scores.

    Attributes:
        scores: ``(N, C, H, W)``, one score per coefficient per channel, in the units of the
            explained output.  For the band methods (occlusion, Shapley) the band's score is
            spread uniformly over its ``C * |band|`` coefficients, so summing ``scores`` over a
            band (all channels) gives back the band score; the per-coefficient values carry no
            information beyond that.  (``None`` only while :func:`attribute` is building it.)
        method, basis: as passed to :func:`attribute` (a Captum method: its class name, e.g.
            ``"DeepLift"`` or ``"NoiseTunnel(Saliency)"``).
        target: ``(N,)`` long, the resolved class indices.
        coeffs: ``(N, C, H, W)`` coefficients of ``x``; ``baseline_coeffs`` likewise for the
            baseline.
        delta: ``(N,)`` completeness error ``sum(scores) - (f(x) - f(baseline))`` for IG
            (quadrature error) and Shapley (efficiency; ~0 up to rounding); for a Captum
            method, Captum's convergence delta as Captum returns it, where it has one
            (DeepLift: ``sum - (f(x) - f(baseline))``; LRP: ``f(x) - sum``; GradientShap:
            one per random sample, ``(N * n_samples,)``); else ``None``.
        band_scores: ``(N, K)`` for occlusion and Shapley (in the order of ``masks``), else
            ``None``.
        masks: ``(K, H, W)`` bool, the bands used (or passed), else ``None``.
        stderr: ``(N, K)`` Monte-Carlo standard error of sampled Shapley values, else ``None``.
        output_x, output_baseline: ``(N,)`` the explained output at ``x`` and at the baseline
            (``output_baseline`` is set by IG, occlusion and Shapley, else ``None``).
        output: ``"logit"``, ``"prob"`` or ``"log_prob"``.
        info: the method's options with their defaults filled in, and method settings
            (``n_steps`` for IG; ``exact``, ``n_coalitions`` / ``n_permutations`` for Shapley).
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

        For the per-coefficient methods (saliency, gradient, grad_x_input, IG, SmoothGrad) any
        bands may be asked for (overlapping or not); for IG, bands that partition the plane give
        band scores summing to ``f(x) - f(baseline)`` up to ``delta``.  For occlusion and Shapley
        the scores are per band, so only the masks the result was computed on are allowed, and
        ``band_scores`` itself (not a copy) is returned.

        Args:
            masks: bool (or 0/1) bands, ``(K, H, W)`` or one band ``(H, W)``; ``None`` (default)
                uses the masks the result was computed with (``self.masks``).

        Returns:
            ``(N, K)`` tensor of the scores' dtype; column k is band k.

        Shape:
            - masks: ``(K, H, W)`` or ``(H, W)``.
            - output: ``(N, K)``.

        Raises:
            ValueError: ``masks`` is None and the result has no masks; ``masks`` has the wrong
                shape, holds values other than 0/1, or has an empty band; for occlusion and
                Shapley, ``masks`` differ from ``self.masks``; the result has no scores.
            TypeError: ``masks`` is not a tensor.

        Example:
            >>> import torch, freqkit as fk
            >>> _ = torch.manual_seed(0); x = torch.rand(2, 1, 8, 8)
            >>> model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 3)).eval()
            >>> r = fk.attribute(model, x, target=0, method="ig", n_steps=16)
            >>> b = r.bands(fk.band_masks(8, 8, 4))
            >>> b.shape, bool(torch.allclose(b.sum(1), r.output_x - r.output_baseline, atol=1e-4))
            (torch.Size([2, 4]), True)
        """
        h, w = self.coeffs.shape[-2:]
        if masks is None:
            if self.masks is None:
                raise ValueError("masks is required: this result was computed without band masks")
            masks = self.masks
        masks = check_masks(masks, h, w, device=self.coeffs.device)
        if self.band_scores is not None:
            if self.masks is None or masks.shape != self.masks.shape or not bool((masks == self.masks).all()):
                raise ValueError(f"masks must be the bands this {self.method!r} result was computed on "
                                 "(its scores are per band, not per coefficient)")
            return self.band_scores
        if self.scores is None:
            raise ValueError(f"this {self.method!r} result has no per-coefficient scores")
        return radial_profile(self.scores.sum(1), masks)

    def spectral_map(self, reduce: str = "sum") -> torch.Tensor:
        """Scores combined over channels: one map per image in the coefficient layout of ``basis``.

        Args:
            reduce: ``"sum"`` (default; signed sum over channels) or ``"abs"`` (sum of ``|score|``).

        Returns:
            ``(N, H, W)`` tensor of the scores' dtype.

        Raises:
            ValueError: an unknown ``reduce``, or the result has no scores.
        """
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

def _check_pixel_model(model) -> None:
    if isinstance(model, FrequencyModel):
        raise TypeError("model must be the pixel model; attribute() wraps it in FrequencyModel itself "
                        "(passing a FrequencyModel would transform twice)")
    if not callable(model):
        raise TypeError(f"model must be callable (an nn.Module taking (N, C, H, W) images), got {type(model).__name__}")


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
    """Captum's ``feature_mask`` for the same bands: a ``(1, 1, H, W)`` long map of band ids.

    Entry ``(0, 0, u, v)`` is the index k of the band holding frequency ``(u, v)``.  With it,
    Captum's perturbation methods (``FeatureAblation``, ``ShapleyValues``, ...) on
    :class:`FrequencyModel` coefficients remove or keep the same groups of coefficients (every
    channel of a band at once) as freqkit's band occlusion and band Shapley.  The mask
    broadcasts over ``(N, C, H, W)`` inputs.  The bands should partition the plane: a
    frequency in no band gets id 0, i.e. it is grouped with band 0.

    Args:
        masks: ``(K, H, W)`` bool bands, disjoint.

    Returns:
        ``(1, 1, H, W)`` int64 tensor with values in ``[0, K)``, on ``masks``' device.

    Shape:
        - masks: ``(K, H, W)``.
        - output: ``(1, 1, H, W)``.

    Raises:
        ValueError: ``masks`` is not a 3-D bool tensor, or two bands overlap.
    """
    if masks.dim() != 3 or masks.dtype != torch.bool:
        raise ValueError(f"masks must be a (K, H, W) bool tensor, got {tuple(masks.shape)} {masks.dtype}")
    if bool((masks.sum(0) > 1).any()):
        raise ValueError("masks must be disjoint (each coefficient in at most one band)")
    ids = torch.arange(masks.shape[0], device=masks.device)[:, None, None]
    return (masks.long() * ids).sum(0)[None, None]


# ============================================================================ baselines

def _blur_dct(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Gaussian blur of std ``sigma`` pixels with mirrored borders, as a DCT filter."""
    h, w = x.shape[-2:]
    # The DCT-II diagonalises convolution with a symmetric kernel under the half-sample
    # mirrored extension of the image, so the blur is one multiplication per coefficient by
    # the Gaussian's frequency response exp(-sigma^2 omega^2 / 2), omega = pi k / n rad/pixel.
    wu = torch.arange(h, dtype=torch.float64, device=x.device) * (math.pi / h)
    wv = torch.arange(w, dtype=torch.float64, device=x.device) * (math.pi / w)
    gain = torch.exp(-0.5 * sigma ** 2 * (wu[:, None] ** 2 + wv[None, :] ** 2)).to(x.dtype)
    return from_basis(to_basis(x, "dct") * gain, "dct")


def baseline_image(x: torch.Tensor, baseline=None, sigma: float | None = None, seed: int = 0) -> torch.Tensor:
    """The baseline image of every row of ``x``, from a name, a number, a tensor or ``None``.

    Integrated Gradients explains ``f(x) - f(baseline)``; in the frequency basis only the
    coefficients where ``x`` and the baseline differ can be attributed (the scores are
    ``(c - c_b)`` times a path-averaged gradient), so the baseline decides which frequencies
    an attribution can see.  The named baselines follow Sturmfels, Lundberg & Lee 2020
    ("Visualizing the impact of feature attribution baselines", Distill), who compare them
    for IG:

    * ``"black"``: zeros (the same as ``None``): every coefficient of ``x`` is attributable.
    * ``"blur"``: ``x`` blurred by a Gaussian of std ``sigma`` pixels with mirrored
      borders, as one multiplication per DCT coefficient by the Gaussian's frequency
      response (for ``sigma >= 1.5`` equal to ``scipy.ndimage.gaussian_filter`` with
      ``mode="reflect"`` to 1e-5; below, the sampled kernel aliases and they part); default
      ``sigma = min(H, W) / 16``, 2 pixels at 32 x 32, 14 at 224 x 224.  The blur keeps
      the low frequencies of ``x``: ``c - c_b`` is ``c * (1 - exp(-sigma^2 omega^2 / 2))``
      (``omega = pi k / n`` for DCT index ``k`` of ``n``), so IG can give the lowest
      frequencies almost nothing, and the DC coefficient exactly nothing, by construction,
      whatever the model does.
    * ``"uniform"``: uniform noise in ``[0, 1]``, one draw per image, seeded (a private
      generator: torch's global stream is untouched, and the same ``x`` shape and ``seed``
      give the same noise, so IG and occlusion called separately share it).  White noise
      has a flat spectrum, so ``c - c_b`` carries noise energy at every frequency.

    Args:
        x: images ``(N, C, H, W)``, floating point and finite (the result takes their dtype
            and device).
        baseline: ``None`` or ``"black"`` (zeros), ``"blur"``, ``"uniform"``, a finite
            number (a constant image), or a tensor ``(N, C, H, W)``, ``(1, C, H, W)`` or
            ``(C, H, W)`` (copied, expanded to ``N`` rows).
        sigma: std of the Gaussian blur in pixels, a finite number > 0, for ``"blur"``
            only (``None``: ``min(H, W) / 16``).
        seed: seeds the ``"uniform"`` noise (an integer).

    Returns:
        a new ``(N, C, H, W)`` tensor of ``x``'s dtype and device.

    Shape:
        - x, output: ``(N, C, H, W)``.

    Raises:
        ValueError: ``x`` not 4-D or not finite; an unknown name (the message lists
            :data:`NAMED_BASELINES`); ``sigma`` not a finite number > 0, or given with
            another baseline than ``"blur"``; ``seed`` not an integer; a non-finite number
            or tensor, or a tensor of another shape.
        TypeError: ``x`` not a floating-point tensor; ``baseline`` of another type.

    Example:
        >>> import torch
        >>> from freqkit.attribution import baseline_image
        >>> x = torch.rand(2, 3, 8, 8, generator=torch.Generator().manual_seed(0))
        >>> b = baseline_image(x, "blur", sigma=1.0)
        >>> b.shape, bool(torch.allclose(b.mean((2, 3)), x.mean((2, 3)), atol=1e-6))  # a blur keeps the mean
        (torch.Size([2, 3, 8, 8]), True)
        >>> bool(torch.equal(baseline_image(x, "uniform"), baseline_image(x, "uniform")))
        True
    """
    check_images(x, "x")
    if sigma is not None and baseline != "blur":
        raise ValueError(f"sigma is the std of the 'blur' baseline; got sigma={sigma!r} with baseline={baseline!r}")
    if not isinstance(baseline, str):
        return prepare_baseline(baseline, x)
    check_choice(baseline, "baseline", NAMED_BASELINES)
    if baseline == "black":
        return torch.zeros_like(x)
    if baseline == "blur":
        if sigma is None:
            sigma = min(x.shape[-2:]) / 16
        if isinstance(sigma, bool) or not isinstance(sigma, numbers.Real) or not math.isfinite(sigma) or sigma <= 0:
            raise ValueError(f"sigma must be a finite number > 0 (pixels), got {sigma!r}")
        return _blur_dct(x, float(sigma))
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral):
        raise ValueError(f"seed must be an integer, got {seed!r}")
    gen = torch.Generator().manual_seed(int(seed))
    return torch.rand(x.shape, generator=gen, dtype=torch.float64).to(device=x.device, dtype=x.dtype)


# ============================================================================ attribute()

def _spread(band_scores: torch.Tensor, masks: torch.Tensor, channels: int) -> torch.Tensor:
    """Spread (N, K) band scores uniformly over each band's coefficients -> (N, C, H, W)."""
    m = masks.to(band_scores.dtype)
    per_coef = band_scores / (m.sum((1, 2)) * channels)
    spec = torch.einsum("nk,khw->nhw", per_coef, m)
    return spec.unsqueeze(1).expand(-1, channels, -1, -1).contiguous()


def attribute(model: Callable, x: torch.Tensor, target, method: str = "ig", basis: str = "dct",
              n_steps: int = 64, baseline=None, internal_batch_size: int | None = None,
              masks: torch.Tensor | None = None, output: str = "logit", **kw) -> FrequencyAttribution:
    """Attribute the model's output for ``target`` to the frequency coefficients of ``x``.

    The pixel model ``f`` is wrapped as ``g(c) = f(B^T c)`` (:class:`FrequencyModel`) and the
    chosen method explains ``g`` at the coefficients ``c = B x`` of ``x`` in the orthonormal
    ``basis``; the methods and their papers are listed in the module docstring (Saliency,
    Simonyan et al. 2013; gradient x input, Shrikumar et al. 2016; Integrated Gradients,
    Sundararajan, Taly & Yan 2017, "Axiomatic attribution for deep networks"; SmoothGrad,
    Smilkov et al. 2017; band occlusion after Wang et al. 2020, "Towards frequency-based
    explanation for robust CNN"; band Shapley values, Shapley 1953).  The gradient methods run
    Captum on the wrapped model; occlusion and Shapley are computed here.

    Args:
        model: pixel model, images ``(N, C, H, W)`` -> scores ``(N, n_classes)``: an
            ``nn.Module`` (run in eval mode, every submodule's own mode restored afterwards,
            so BatchNorm statistics never change) or any callable.  Not a
            :class:`FrequencyModel`: it is wrapped here.
        x: images ``(N, C, H, W)``, at least one, floating point and finite (pixels in
            ``[0, 1]`` by convention; not checked).
        target: class to explain: an int, a sequence or ``(N,)`` tensor of ints, or
            ``"predicted"`` (the model's argmax on ``x``).
        method: one of ``"saliency"``, ``"gradient"``, ``"grad_x_input"``, ``"ig"`` (default),
            ``"smoothgrad"``, ``"occlusion"``, ``"shapley"`` (see the module docstring); or
            any Captum attribution class (a subclass of ``captum.attr.Attribution`` built as
            ``method(model)``: ``DeepLift``, ``DeepLiftShap``, ``GradientShap``,
            ``IntegratedGradients``, ``Saliency``, ``InputXGradient``, ``LRP``,
            ``FeatureAblation``, ``Occlusion``, ...); or a factory that builds a configured
            one on the model it is given, e.g. ``lambda fm: NoiseTunnel(Saliency(fm))`` or
            ``functools.partial(DeepLift, multiply_by_inputs=False)``.  Captum runs it on the
            coefficients ``c`` of :class:`FrequencyModel` (in freqkit's output head, an
            ``nn.Module``) with ``target``, the baseline's coefficients as ``baselines`` where
            its ``attribute`` takes them, ``n_steps`` and ``internal_batch_size`` where it
            takes them, and ``return_convergence_delta=True`` where it has a delta; the
            result equals the same method run by hand on ``FrequencyModel`` (tested).
        basis: ``"dct"`` (default) or ``"dft"`` (real Hartley form of the centred DFT).
        n_steps: IG quadrature steps (>= 1, default 64); used by ``"ig"`` only.
        baseline: reference image, in pixel space: ``None`` (zeros: a black image, i.e.
            zero coefficients), a name of :data:`NAMED_BASELINES` (``"black"``, ``"blur"``:
            a Gaussian blur of ``x``, ``"uniform"``: seeded uniform noise; built by
            :func:`baseline_image` with its defaults, after Sturmfels et al. 2020, "Visualizing
            the impact of feature attribution baselines"; call :func:`baseline_image` yourself
            for another ``sigma`` or ``seed``), a number (a constant grey image: only the DC
            coefficient is nonzero), or a tensor ``(N, C, H, W)``, ``(1, C, H, W)`` or
            ``(C, H, W)``.  IG
            integrates from it; occlusion and Shapley replace removed coefficients by the
            baseline's coefficients (zeros by default, the authors' definition); the other
            named methods ignore it.  A Captum method that takes ``baselines`` gets its
            coefficients (``GradientShap`` and ``DeepLiftShap`` also take a distribution
            ``(M, C, H, W)`` of any M); one that takes none needs ``baseline=None``.
        internal_batch_size: at most this many model inputs per forward pass (IG:
            images x steps, passed to Captum, and images are chunked so that it holds;
            perturbation methods: masked images, default 256; ``None``: no limit for the
            gradient methods).  Bounds memory.
        masks: ``(K, H, W)`` (or one ``(H, W)``) bool bands.  For occlusion they are the
            bands removed (disjoint) and for Shapley the players (a partition of the plane);
            both default to :func:`freqkit.ring_band_masks` (the authors' rings).  For the
            other methods they are only stored, so ``result.bands()`` works.
        output: the explained quantity: ``"logit"`` (default, the authors' choice),
            ``"prob"`` or ``"log_prob"`` of the target class.
        **kw: method options (others raise ``TypeError``):
            saliency: ``abs=True`` (False gives the signed gradient, same as ``"gradient"``);
            ig: ``ig_method="gausslegendre"`` (any Captum IG ``method``, e.g.
            ``"riemann_trapezoid"``);
            smoothgrad: ``n_samples=32``, ``stdev=0.15`` (noise std in coefficient units;
            the basis is orthonormal, so this is i.i.d. noise of the same std on the
            pixels, 15% of the [0, 1] range as Smilkov et al. recommend),
            ``nt_type="smoothgrad"`` (or ``"smoothgrad_sq"``, ``"vargrad"``), ``abs=False``
            (average of signed gradients, as in the paper), ``seed=0`` (the noise comes
            from Captum in ``internal_batch_size`` batches: a seed reproduces a result for
            the same ``internal_batch_size``; torch's global RNG is forked, not disturbed);
            occlusion: ``mode="remove"`` (score_k = f(x) - f(x without band k): the
            authors' "n" mode) or ``"keep"`` (score_k = f(baseline + band k of x) -
            f(baseline): their "s" mode);
            shapley: ``exact=None`` (auto: exact over all 2^K coalitions for K <= 8;
            ``exact=True`` allows K <= 16), ``n_samples=128`` permutations when sampling
            (>= 2; >= 4 with ``antithetic``: the standard error needs two pairs),
            ``antithetic=True`` (each permutation with its reverse, lowering variance; an odd
            ``n_samples`` is rounded up to the next even number), ``seed=0``;
            a Captum method: the keyword arguments of its ``attribute`` (e.g. ``n_samples``
            and ``stdevs`` of GradientShap, ``nt_type``/``nt_samples``/``stdevs`` of a
            NoiseTunnel, ``feature_mask=band_feature_mask(masks)`` of FeatureAblation,
            ``sliding_window_shapes`` of Occlusion), passed unchanged, plus ``seed`` (an int:
            seeds torch's and numpy's global RNGs for Captum's random draws (GradientShap
            draws from both) and restores both afterwards, so ``torch.manual_seed(seed);
            np.random.seed(seed)`` before the same Captum call by hand draws the same and
            the caller's random streams are untouched).

    Returns:
        :class:`FrequencyAttribution`.  ``scores`` has the shape and dtype of ``x``.  For IG,
        ``scores.sum((1, 2, 3)) ~= f(x) - f(baseline)`` and ``delta`` is the error; for
        Shapley the band scores sum to ``f(x) - f(baseline)`` up to rounding.

    Shape:
        - x: ``(N, C, H, W)``.
        - target: an int, or ``(N,)``.
        - baseline: ``(N, C, H, W)``, ``(1, C, H, W)`` or ``(C, H, W)``.
        - masks: ``(K, H, W)`` or ``(H, W)``.
        - result.scores, result.coeffs: ``(N, C, H, W)``; result.band_scores: ``(N, K)``;
          result.delta, result.target: ``(N,)``.

    Raises:
        ValueError: an unknown ``method``, ``basis``, ``output`` or baseline name; ``n_steps`` or
            ``internal_batch_size`` not an integer >= 1; ``x`` not 4-D, not finite, or
            holding no image ("x holds no images (N = 0)"); ``baseline`` non-finite or of a
            shape that does not match ``x``; ``masks`` of the wrong shape, not 0/1, with an
            empty band, overlapping (occlusion, Shapley) or not covering the plane (Shapley);
            ``target`` a string other than ``"predicted"``, of the wrong length, or out of
            range; a model output that is not ``(N, n_classes)`` or holds NaN or inf (the
            message names the model); a bad option value (occlusion ``mode``; SmoothGrad
            ``n_samples``, ``stdev`` < 0, ``nt_type``; Shapley ``n_samples`` < 2, or < 4
            with ``antithetic``, or ``exact=True`` with K > 16); a Captum method whose
            attributions are not one per coefficient (layer and neuron methods), or a
            ``seed`` that is not an integer.
        TypeError: an unknown option in ``**kw`` (for a Captum method: one its ``attribute``
            does not take; ``inputs``, ``target`` and ``baselines`` are set here); a
            ``method`` that is neither a name, a ``captum.attr.Attribution`` subclass nor a
            factory returning one (an already built Captum instance included), a Captum class
            that cannot be built as ``method(model)``; a ``baseline`` for a Captum method
            that takes none; ``model`` not callable or a
            :class:`FrequencyModel`; ``x`` (or a tensor ``baseline`` or ``masks``) not a
            tensor or ``x`` not floating point; ``target`` None, a bool, or not integer.

    Example:
        >>> import torch, freqkit as fk
        >>> _ = torch.manual_seed(0); x = torch.rand(2, 1, 8, 8)
        >>> model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 3)).eval()
        >>> r = fk.attribute(model, x, target=0, method="ig", basis="dct", n_steps=16)
        >>> r.scores.shape, bool(r.delta.abs().max() < 1e-4)   # IG completeness
        (torch.Size([2, 1, 8, 8]), True)
    """
    captum_method = not isinstance(method, str)
    if captum_method:
        _check_captum_method(method)
    else:
        check_choice(method, "method", ATTRIBUTION_METHODS)
    check_basis(basis)
    check_positive_int(n_steps, "n_steps")
    check_internal_batch(internal_batch_size)
    check_choice(output, "output", OUTPUTS)
    opts = dict(kw) if captum_method else _check_options(method, kw)
    check_images(x, "x", nonempty=True)
    _check_pixel_model(model)
    named = baseline if isinstance(baseline, str) else None
    if named is not None:
        baseline = baseline_image(x, named)
    with eval_mode(model):
        if captum_method:
            res = _captum_attribute(model, x, target, method, basis, n_steps, baseline, internal_batch_size, masks,
                                    output, opts)
        else:
            res = _attribute(model, x, target, method, basis, n_steps, baseline, internal_batch_size, masks, output,
                             opts)
    if named is not None:
        res.info["baseline"] = named
    return res


# ============================================================================ any Captum method

def _check_captum_method(method) -> None:
    """TypeError unless ``method`` is a Captum attribution class or a callable factory."""
    if isinstance(method, type):
        from captum.attr import Attribution

        if not issubclass(method, Attribution):
            raise TypeError(f"method must be one of {ATTRIBUTION_METHODS}, a captum.attr attribution class "
                            f"(a subclass of captum.attr.Attribution) or a factory model -> attribution; "
                            f"got the class {method.__name__}")
        return
    from captum.attr import Attribution

    if isinstance(method, Attribution):
        raise TypeError(f"method must be a Captum attribution class or a factory, not an instance "
                        f"({type(method).__name__} built on its own model): pass {type(method).__name__}, or "
                        f"e.g. method=lambda fm: NoiseTunnel(Saliency(fm)) for a configured one")
    if not callable(method):
        raise TypeError(f"method must be one of {ATTRIBUTION_METHODS}, a captum.attr attribution class or a "
                        f"factory model -> attribution; got {type(method).__name__}")


def _build_captum(method, model: nn.Module):
    from captum.attr import Attribution

    if isinstance(method, type):
        try:
            return method(model)
        except TypeError as e:
            raise TypeError(f"method={method.__name__}: {method.__name__}(model) failed ({e}); pass a factory "
                            f"that builds it, e.g. method=lambda fm: {method.__name__}(fm, ...)") from e
    obj = method(model)
    if not isinstance(obj, Attribution):
        raise TypeError(f"method: the factory must return a captum.attr attribution built on the model it is "
                        f"given, got {type(obj).__name__}")
    return obj


def _captum_name(obj) -> str:
    inner = getattr(obj, "attribution_method", None)
    return f"{type(obj).__name__}({type(inner).__name__})" if inner is not None else type(obj).__name__


def _accepted_options(obj) -> tuple[set, bool]:
    """Keyword names ``obj.attribute`` takes (a NoiseTunnel: its own and its method's), and whether it takes any."""
    import inspect

    def params(f):
        ps = inspect.signature(f).parameters.values()
        return ({p.name for p in ps if p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)} - {"self"},
                any(p.kind == p.VAR_KEYWORD for p in ps))

    names, var = params(obj.attribute)
    inner = getattr(obj, "attribution_method", None)
    if inner is not None:
        inner_names, var = params(inner.attribute)
        names |= inner_names
    return names, var


def _captum_attribute(model, x, target, method, basis, n_steps, baseline, ibs, masks, output, opts):
    """:func:`attribute` with a Captum method, after the argument checks, ``model`` in eval mode."""
    from captum.attr import DeepLiftShap, GradientShap

    n, _, h, w = x.shape
    if masks is not None:
        masks = check_masks(masks, h, w, device=x.device)
    register_lrp_rules()
    fm = FrequencyModel(model, basis)
    head = OutputHead(fm, output, model=model)
    obj = _build_captum(method, head)
    name = _captum_name(obj)
    accepted, var_kw = _accepted_options(obj)
    for reserved, use in (("inputs", "x"), ("target", "target"), ("baselines", "baseline (in pixel space)")):
        if reserved in opts:
            raise TypeError(f"{reserved} is set by attribute() for method={name}; pass {use} instead")
    seed = opts.pop("seed", None) if "seed" not in accepted else None
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, numbers.Integral)):
        raise ValueError(f"seed must be an integer or None, got {seed!r}")
    unknown = sorted(k for k in opts if k not in accepted)
    if unknown and not var_kw:
        raise TypeError(f"unknown option(s) {unknown} for method={name}; its attribute() takes {sorted(accepted)}")

    c = to_basis(x, basis)
    fx = forward_batched(head, c, ibs)
    t = resolve_target(target, fx)
    call = dict(opts)
    inner = getattr(obj, "attribution_method", None)
    distribution = isinstance(obj, (GradientShap, DeepLiftShap)) or isinstance(inner, (GradientShap, DeepLiftShap))
    cb = None
    if "baselines" in accepted:
        if (distribution and isinstance(baseline, torch.Tensor) and baseline.dim() == 4
                and tuple(baseline.shape[1:]) == tuple(x.shape[1:]) and baseline.shape[0] >= 1):
            b = check_tensor(baseline, "baseline").to(device=x.device, dtype=x.dtype)   # a distribution: any M rows
        else:
            b = prepare_baseline(baseline, x)
        cb = to_basis(b, basis)
        call["baselines"] = cb
    elif baseline is not None:
        raise TypeError(f"baseline must be None for method={name}: it takes no baselines")
    if "n_steps" in accepted and "n_steps" not in call:
        call["n_steps"] = n_steps
    if "internal_batch_size" in accepted and ibs is not None and "internal_batch_size" not in call:
        call["internal_batch_size"] = ibs
    want_delta = bool(obj.has_convergence_delta()) and "return_convergence_delta" in accepted
    if want_delta:
        call.setdefault("return_convergence_delta", True)
        want_delta = bool(call["return_convergence_delta"])

    devices = [x.device] if x.device.type == "cuda" else []
    np_state = np.random.get_state() if seed is not None else None
    try:
        with torch.random.fork_rng(devices=devices, enabled=seed is not None):
            if seed is not None:
                torch.manual_seed(int(seed))
                np.random.seed(int(seed))   # GradientShap draws its path points from numpy's global RNG
            out = obj.attribute(c.detach().requires_grad_(), target=t, **call)
    finally:
        if np_state is not None:
            np.random.set_state(np_state)
    a, delta = out if want_delta else (out, None)
    if not isinstance(a, torch.Tensor) or tuple(a.shape) != tuple(c.shape):
        got = tuple(a.shape) if isinstance(a, torch.Tensor) else type(a).__name__
        raise ValueError(f"method={name} returned attributions of shape {got}, not one per coefficient "
                         f"{tuple(c.shape)} (layer and neuron methods are not frequency attributions)")
    per_image = cb is not None and cb.shape[0] == n
    info = {k: v for k, v in call.items() if not isinstance(v, torch.Tensor)}
    info.update(captum=name, seed=seed)
    return FrequencyAttribution(
        scores=a.detach(), method=name, basis=basis, target=t, coeffs=c,
        baseline_coeffs=cb if cb is not None else torch.zeros_like(c), masks=masks,
        delta=None if delta is None else delta.detach(), output_x=pick(fx, t),
        output_baseline=pick(forward_batched(head, cb, ibs), t) if per_image else None, output=output, info=info)


def _attribute(model, x, target, method, basis, n_steps, baseline, internal_batch_size, masks, output, opts):
    """:func:`attribute` after its argument checks, with ``model`` in eval mode."""
    n, ch, h, w = x.shape
    b = prepare_baseline(baseline, x)
    if masks is not None:
        masks = check_masks(masks, h, w, disjoint=method in _BAND_METHODS,
                             partition=method == "shapley", device=x.device)
    fm = FrequencyModel(model, basis)
    head = OutputHead(fm, output, model=model)
    c, cb = to_basis(x, basis), to_basis(b, basis)
    # f(x) through the frequency model (as Captum evaluates it) so that deltas and
    # occlusion drops compare like with like; it differs from model(x) by rounding only.
    fx = forward_batched(head, c, internal_batch_size)
    t = resolve_target(target, fx)
    fx_t = pick(fx, t)
    res = FrequencyAttribution(scores=None, method=method, basis=basis, target=t, coeffs=c,
                               baseline_coeffs=cb, masks=masks, output_x=fx_t, output=output,
                               info={k: v for k, v in opts.items()})
    ibs = internal_batch_size

    if method in ("saliency", "gradient", "grad_x_input", "ig", "smoothgrad"):
        res.scores = _gradient_method(method, head, c, cb, t, n_steps, ibs, opts)
        if method == "ig":
            res.info["n_steps"] = n_steps
            fb_t = pick(forward_batched(head, cb, ibs), t)
            res.output_baseline = fb_t
            res.delta = res.scores.sum((1, 2, 3)) - (fx_t - fb_t)
        return res

    if masks is None:
        masks = ring_band_masks(h, w, basis, device=x.device)
        res.masks = masks
    k = masks.shape[0]
    fb_t = pick(forward_batched(head, cb, ibs), t)
    res.output_baseline = fb_t
    if method == "occlusion":
        check_choice(opts["mode"], "mode", ("remove", "keep"))
        keep = (~masks if opts["mode"] == "remove" else masks).unsqueeze(1)  # (K, 1, H, W)
        v = eval_variants(head, c, cb, lambda ni, mi: keep[mi], k, t, ibs)
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
    for sl in chunks(n, ibs):
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
        v = eval_variants(head, c, cb, lambda ni, mi: keep[mi], m, t, ibs).double()
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

    # Antithetic pairs are the i.i.d. units of the standard error, which needs two of them.
    ns = check_positive_int(opts["n_samples"], "n_samples", minimum=4 if opts["antithetic"] else 2)
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
    v_mid = eval_variants(head, c, cb, lambda ni, mi: keep[mi], p * (k - 1), t, ibs)
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
        target: ``(N,)`` long, the explained classes.
        masks: ``(K, H, W)`` bool; basis, n_steps: the setting.
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
        """Per-band pixel maps combined over channels.

        Args:
            reduce: ``"sum"`` (default; signed sum over channels) or ``"abs"`` (sum of ``|map|``).

        Returns:
            ``(N, K, H, W)`` tensor.

        Raises:
            ValueError: an unknown ``reduce``.
        """
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
    ``(x_k)`` (Sundararajan, Taly & Yan 2017, "Axiomatic attribution for deep networks").
    The result is a pixel heat map per band, ``(N, K, C, H, W)``, answering *where* in the
    image each band matters.

    Because every component enters through the same sum, the K gradients are equal; we
    therefore run one pixel IG for the path-integrated gradient ``G`` and form
    ``maps[:, k] = G * (x_k - b_k)`` -- the same numbers as Captum IG with K inputs, at
    1/K of its memory (tested).  Consequences: the maps of band k sum to the band-k score
    of frequency-domain IG (``<G, P_k (x - b)> = <B G, M_k B (x - b)>``), and all maps
    together sum to ``f(x) - f(baseline)`` (completeness).

    Args:
        model: pixel model, images ``(N, C, H, W)`` -> scores ``(N, n_classes)``; run in
            eval mode, every submodule's mode restored afterwards (as in :func:`attribute`).
        x: images ``(N, C, H, W)``, at least one, floating point and finite.
        target: an int, a sequence or ``(N,)`` tensor of ints, or ``"predicted"``.
        masks: ``(K, H, W)`` bool bands that partition the frequency plane of ``basis``.
        basis: ``"dct"`` (default) or ``"dft"``.
        n_steps: IG steps (>= 1, default 64).
        baseline: as in :func:`attribute` (default ``None``: a black image; a name of
            :data:`NAMED_BASELINES` too).
        internal_batch_size: at most this many model inputs per pass (images x steps);
            ``None``: no limit.
        ig_method: Captum's quadrature rule (default ``"gausslegendre"``).
        output: ``"logit"`` (default), ``"prob"`` or ``"log_prob"`` of the target class.

    Returns:
        :class:`BandPixelAttribution` (maps, band scores, completeness error, components).

    Shape:
        - x: ``(N, C, H, W)``; masks: ``(K, H, W)``.
        - result.maps, result.components: ``(N, K, C, H, W)``; result.band_scores: ``(N, K)``;
          result.delta: ``(N,)``.

    Raises:
        ValueError: an unknown ``basis`` or ``output``; ``n_steps`` or
            ``internal_batch_size`` not an integer >= 1; ``x`` not 4-D, not finite or
            holding no image; a bad ``baseline``; ``masks`` of the wrong shape, with an empty
            band, overlapping or not covering the plane; a bad ``target``; a model output
            that is not 2-D or holds NaN or inf (the message names the model).
        TypeError: ``model`` not callable or a :class:`FrequencyModel`; ``x`` or ``masks``
            not a tensor; ``target`` None, a bool, or not integer.

    Example:
        >>> import torch, freqkit as fk
        >>> _ = torch.manual_seed(0); x = torch.rand(2, 1, 8, 8)
        >>> model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 3)).eval()
        >>> r = fk.band_pixel_attribution(model, x, 0, fk.band_masks(8, 8, 4), n_steps=16)
        >>> r.maps.shape, bool(r.delta.abs().max() < 1e-4)
        (torch.Size([2, 4, 1, 8, 8]), True)
    """
    from captum.attr import IntegratedGradients

    check_basis(basis)
    check_positive_int(n_steps, "n_steps")
    check_internal_batch(internal_batch_size)
    check_choice(output, "output", OUTPUTS)
    check_images(x, "x", nonempty=True)
    _check_pixel_model(model)
    n, ch, h, w = x.shape
    b = baseline_image(x, baseline)
    masks = check_masks(masks, h, w, partition=True, device=x.device)
    head = OutputHead(model, output)
    with eval_mode(model):
        fx = forward_batched(head, x, internal_batch_size)
        t = resolve_target(target, fx)
        fx_t = pick(fx, t)
        fb_t = pick(forward_batched(head, b, internal_batch_size), t)
        ig = IntegratedGradients(head, multiply_by_inputs=False)
        g = torch.cat([ig.attribute(x[sl], baselines=b[sl], target=t[sl], n_steps=n_steps, method=ig_method,
                                    internal_batch_size=internal_batch_size).detach()
                       for sl in chunks(n, internal_batch_size)])
    comps = _band_components(x, masks, basis)
    maps = g.unsqueeze(1) * (comps - _band_components(b, masks, basis))
    band_scores = maps.sum((2, 3, 4))
    return BandPixelAttribution(maps=maps, band_scores=band_scores, delta=band_scores.sum(1) - (fx_t - fb_t),
                                components=comps, target=t, masks=masks, basis=basis, n_steps=n_steps)


# ============================================================================ shares, top-k

def scores_of(scores, name: str = "scores") -> torch.Tensor:
    """The per-coefficient scores of a :class:`FrequencyAttribution` or of a tensor, checked.

    Args:
        scores: a :class:`FrequencyAttribution` (its ``scores``) or a tensor ``(N, C, H, W)``.
        name: the argument name used in error messages.

    Returns:
        the ``(N, C, H, W)`` scores tensor itself (not a copy).

    Raises:
        ValueError: the result has no scores, or the tensor is not 4-D or not finite.
        TypeError: not a tensor, or not floating point.
    """
    if isinstance(scores, FrequencyAttribution):
        if scores.scores is None:
            raise ValueError(f"{name}: this {scores.method!r} result has no per-coefficient scores")
        scores = scores.scores
    return check_tensor(scores, name, ndim=4)


def band_shares(scores, masks: torch.Tensor, by: str = "abs") -> torch.Tensor:
    """Share of attribution mass per band, ``(N, K)``.

    ``by="abs"``: ``sum_band |a| / sum_all |a|`` (rows sum to 1 when the bands partition
    the plane).  ``by="signed"``: ``sum_band a / sum_all |a|`` (same denominator, so the
    sign shows whether a band raised or lowered the output; values in ``[-1, 1]``).
    Channels are pooled.  An all-zero row gives zeros.

    Args:
        scores: ``(N, C, H, W)`` scores or a :class:`FrequencyAttribution` (its ``scores``).
        masks: bool (or 0/1) bands ``(K, H, W)``, or one band ``(H, W)``; they may overlap.
        by: ``"abs"`` (default) or ``"signed"``.

    Returns:
        ``(N, K)`` tensor of the scores' dtype; ``by="abs"`` values lie in ``[0, 1]``.

    Shape:
        - scores: ``(N, C, H, W)``; masks: ``(K, H, W)`` or ``(H, W)``.
        - output: ``(N, K)``.

    Raises:
        ValueError: ``scores`` not 4-D or not finite, or a result without scores; an
            unknown ``by``; ``masks`` of the wrong shape, not 0/1, or with an empty band.
        TypeError: ``scores`` or ``masks`` not a tensor, or ``scores`` not floating point.

    Example:
        >>> import torch, freqkit as fk
        >>> s = torch.zeros(1, 1, 4, 4); s[0, 0, 0, 0] = 3.0; s[0, 0, 3, 3] = -1.0
        >>> masks = fk.band_masks(4, 4, 2)       # low and high radial half
        >>> fk.band_shares(s, masks).tolist(), fk.band_shares(s, masks, by="signed").tolist()
        ([[0.75, 0.25]], [[0.75, -0.25]])
    """
    s = scores_of(scores)
    check_choice(by, "by", ("abs", "signed"))
    masks = check_masks(masks, *s.shape[-2:], device=s.device)
    total = s.abs().sum((1, 2, 3))
    num = radial_profile((s.abs() if by == "abs" else s).sum(1), masks)
    return num / total.clamp_min(torch.finfo(s.dtype).tiny)[:, None]


def topk_reconstruction(x: torch.Tensor, scores, fraction: float, basis: str = "dct", by: str = "abs",
                        baseline=None, return_mask: bool = False):
    """What the model sees: ``x`` rebuilt from its top ``fraction`` attributed coefficients.

    Per image, the ``round(fraction * C * H * W)`` coefficients with the largest score
    (``by="abs"``: largest ``|score|``; ``"signed"``: largest score, i.e. most positive
    evidence) keep their value; all others are set to the baseline's coefficients (zero
    by default).  ``fraction=1`` returns ``x`` (to rounding), ``0`` the baseline.  Ties are
    broken by ``torch.topk``.

    Args:
        x: images ``(N, C, H, W)``, floating point and finite.
        scores: ``(N, C, H, W)`` scores or a :class:`FrequencyAttribution`, computed in the
            same ``basis`` (not checked).
        fraction: share of coefficients kept, a number in ``[0, 1]``.
        basis: ``"dct"`` (default) or ``"dft"``.
        by: ``"abs"`` (default) or ``"signed"``.
        baseline: as in :func:`attribute` (default ``None``: zeros; a name of
            :data:`NAMED_BASELINES` too).
        return_mask: also return the kept-coefficient mask.

    Returns:
        images ``(N, C, H, W)`` (not clipped to ``[0, 1]``), and with ``return_mask=True``
        also the kept-coefficient mask (same shape, bool, in the coefficient layout).

    Shape:
        - x, scores: ``(N, C, H, W)``.
        - output (and mask): ``(N, C, H, W)``.

    Raises:
        ValueError: ``x`` or ``scores`` not 4-D or not finite; ``scores`` of another shape
            than ``x``; an unknown ``basis`` or ``by``; ``fraction`` not a number in
            ``[0, 1]``; a bad ``baseline``.
        TypeError: ``x`` or ``scores`` not a floating-point tensor.

    Example:
        >>> import torch, freqkit as fk
        >>> _ = torch.manual_seed(0); x = torch.rand(2, 1, 8, 8)
        >>> scores = fk.to_basis(x, "dct")        # rank coefficients by their own size
        >>> xr, keep = fk.topk_reconstruction(x, scores, 0.25, return_mask=True)
        >>> xr.shape, keep.sum((1, 2, 3)).tolist()
        (torch.Size([2, 1, 8, 8]), [16, 16])
        >>> bool(torch.allclose(fk.topk_reconstruction(x, scores, 1.0), x, atol=1e-5))
        True
    """
    check_images(x, "x")
    check_basis(basis)
    check_choice(by, "by", ("abs", "signed"))
    s = scores_of(scores)
    if tuple(s.shape) != tuple(x.shape):
        raise ValueError(f"scores must have the shape of x {tuple(x.shape)}, got {tuple(s.shape)}")
    if not isinstance(fraction, numbers.Real) or isinstance(fraction, bool) or not 0 <= fraction <= 1:
        raise ValueError(f"fraction must be a number in [0, 1], got {fraction!r}")
    b = baseline_image(x, baseline)
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
        mean, ci_low, ci_high: ``(K,)`` float64, mean band share over images and its
            percentile-bootstrap 95% interval.
        per_image: ``(M, K)`` band shares of every image (CPU).
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
        """The profile as plain Python numbers and lists, for JSON results files.

        Returns:
            ``{"method", "basis", "by", "n_boot", "seed", "n_images", "mean", "ci_low",
            "ci_high", "by_class"}`` (``by_class`` keyed by the class as a string; the
            per-image shares and the masks are left out).
        """
        return {
            "method": self.method, "basis": self.basis, "by": self.by, "n_boot": self.n_boot,
            "seed": self.seed, "n_images": int(self.per_image.shape[0]),
            "mean": self.mean.tolist(), "ci_low": self.ci_low.tolist(), "ci_high": self.ci_high.tolist(),
            "by_class": {str(k): {kk: (vv.tolist() if isinstance(vv, torch.Tensor) else vv) for kk, vv in v.items()}
                         for k, v in self.by_class.items()},
        }


def radial_attribution_profile(model: Callable, x, y: torch.Tensor | None, masks: torch.Tensor,
                               method: str = "ig", basis: str = "dct", batch_size: int = 64,
                               n_boot: int = 1000, seed: int = 0, by_class: bool = False,
                               target="label", by: str = "abs", progress: bool = True,
                               **attr_kw) -> RadialAttributionProfile:
    """Data-set level: mean share of attribution per band, with bootstrap 95% intervals.

    For every image, the attribution (:func:`attribute` with ``method``, ``basis``,
    ``masks`` and ``attr_kw``) is reduced to band shares (:func:`band_shares`, ``by="abs"``
    or ``"signed"``); shares are averaged over images and resampled ``n_boot`` times
    (percentile bootstrap over images, Efron 1979, :func:`freqkit.stats.bootstrap_ci`, one
    seeded numpy stream for the overall and then each class's interval).

    Data: tensors, or an iterable of ``(images, labels)`` batches (a DataLoader) with
    ``y=None``, streamed: each batch is moved to the model's device, attributed and dropped;
    peak memory that of :func:`attribute` on one batch (bound it with
    ``internal_batch_size``: IG at 224 x 224 then holds ``internal_batch_size`` images and
    their activations) plus ``K`` floats per image.  Under ``torch.distributed`` (several
    ranks, e.g. ``torchrun``) the images are split by rank
    (:func:`freqkit._distributed.local_batches`), the per-image shares, labels and targets
    gathered in image order on every rank, and the bootstrap run on every rank with the same
    seed: every rank returns the same profile, equal (to float rounding) to one process's.
    A rank that raises makes every rank raise.

    Args:
        model: pixel model, as in :func:`attribute`.
        x: images ``(M, C, H, W)`` with labels ``y`` ``(M,)``, or an iterable of
            ``(images, labels)`` batches (e.g. a DataLoader) with ``y=None``.
        y: ``(M,)`` labels for tensor ``x``; ``None`` for an iterable.
        masks: ``(K, H, W)`` bands (for occlusion disjoint, for Shapley a partition).
            ``None`` works only for occlusion and Shapley (their default ring bands).
        method: an attribution method (default ``"ig"``); basis: ``"dct"`` or ``"dft"``.
        batch_size: images per :func:`attribute` call (tensor input only; >= 1).  Also the
            images per batch a tensor is split into across ranks.
        n_boot: bootstrap resamples (>= 1); seed: seeds them.
        by_class: also report the profile per class label.
        target: ``"label"`` (default: explain the true class ``y``) or ``"predicted"``.
        by: ``"abs"`` (default) or ``"signed"`` shares.
        progress: show a progress bar over batches (only in a terminal).
        **attr_kw: passed to :func:`attribute` (``n_steps``, ``baseline``, method options).

    Returns:
        :class:`RadialAttributionProfile`.

    Shape:
        - x: ``(M, C, H, W)``; y: ``(M,)``; masks: ``(K, H, W)``.
        - result.mean, result.ci_low, result.ci_high: ``(K,)``; result.per_image: ``(M, K)``.

    Raises:
        ValueError: an unknown ``target`` or ``by``; ``batch_size`` or ``n_boot`` not an
            integer >= 1; ``x`` not 4-D or not finite; ``y`` not a ``(M,)`` tensor for tensor
            ``x``, or not ``None`` for an iterable; no images ("x holds no images"); and what
            :func:`attribute` raises for the method, basis, masks, options or model output.
        RankFailed: (distributed) another rank raised.
        DistributedError: (distributed) a rank died or hung past the process group's timeout.
    """
    tensor = isinstance(x, torch.Tensor)
    fp = {}
    with fail_together("radial_attribution_profile", fingerprint=lambda: fp):
        check_choice(target, "target", ("label", "predicted"))
        check_choice(by, "by", ("abs", "signed"))
        check_positive_int(batch_size, "batch_size")
        check_positive_int(n_boot, "n_boot")
        if tensor:
            check_images(x, "x", nonempty=True)
            if not isinstance(y, torch.Tensor) or y.dim() != 1 or y.shape[0] != x.shape[0]:
                raise ValueError(f"y must be a ({x.shape[0]},) tensor of labels matching x, got "
                                 f"{tuple(y.shape) if isinstance(y, torch.Tensor) else type(y).__name__}")
            fp.update(n=x.shape[0], x_sum=checksum(x), y_sum=checksum(y))
        batches, total = local_batches(x, y, batch_size, "x")
        fp.update(method=str(method), basis=str(basis), target=target, by=by, n_boot=n_boot, seed=int(seed),
                  by_class=bool(by_class), attr_kw=repr(sorted(attr_kw.items())))
    dev = None if tensor else model_device(model)
    shares, labels, targets, index = [], [], [], []
    k_bands = None
    with fail_together("radial_attribution_profile: computing"):
        for off, xb, yb in progress_bar(batches, total=total, enabled=progress and world().rank == 0,
                                        desc=f"{method} profile"):
            yb = torch.as_tensor(yb)
            if not tensor and isinstance(xb, torch.Tensor):
                xb = xb.to(dev)
            r = attribute(model, xb, yb if target == "label" else "predicted", method=method, basis=basis,
                          masks=masks, **attr_kw)
            shares.append(band_shares(r, r.masks, by=by).detach().cpu())
            labels.append(yb.detach().cpu().long())
            targets.append(r.target.cpu())
            index.append(torch.arange(off, off + shares[-1].shape[0]))
            k_bands = int(shares[-1].shape[1])
    (k_bands,) = agree_shape(None if k_bands is None else (k_bands,), 1, "radial_attribution_profile")
    per_image = torch.cat(shares) if shares else torch.zeros(0, k_bands)
    labels_t = torch.cat(labels) if labels else torch.zeros(0, dtype=torch.int64)
    targets_t = torch.cat(targets) if targets else torch.zeros(0, dtype=torch.int64)
    idx = torch.cat(index) if index else torch.zeros(0, dtype=torch.int64)
    per_image, labels_t, targets_t = gather_in_order(idx, per_image, labels_t, targets_t,
                                                     what="radial_attribution_profile")
    rng = np.random.default_rng(seed)  # one stream: the overall interval, then each class's

    def mean_ci(v):
        v = v.double()
        lo, hi = bootstrap_ci(v.numpy(), np.mean, n_boot=n_boot, rng=rng)
        return v.mean(0), torch.from_numpy(np.asarray(lo)), torch.from_numpy(np.asarray(hi))

    mean, lo, hi = mean_ci(per_image)
    classes = {}
    if by_class:
        for cl in torch.unique(labels_t).tolist():
            sel = per_image[labels_t == cl]
            cm, cl_lo, cl_hi = mean_ci(sel)
            classes[int(cl)] = {"mean": cm, "ci_low": cl_lo, "ci_high": cl_hi, "n": int(sel.shape[0])}
    return RadialAttributionProfile(mean=mean, ci_low=lo, ci_high=hi, per_image=per_image, labels=labels_t,
                                    targets=targets_t, by_class=classes, method=method, basis=basis, by=by,
                                    n_boot=n_boot, seed=seed, masks=masks)


# ============================================================================ perturbations

def perturbation_attribution(model: nn.Module, x: torch.Tensor, x_adv: torch.Tensor, y: torch.Tensor,
                             masks: torch.Tensor, basis: str = "dct", n_steps: int = 32,
                             internal_batch_size: int | None = None) -> dict:
    """Which frequencies of the perturbation ``x_adv - x`` drive the change of the output?

    Frequency Integrated Gradients (:func:`attribute`, ``method="ig"``; Sundararajan, Taly &
    Yan 2017) of the true class's logit along the straight path from ``x`` (the baseline) to
    ``x_adv`` (the input), in ``basis``.  By completeness the scores sum to
    ``f_y(x_adv) - f_y(x)``, the change the attack caused; summed over each band of ``masks``
    they say how much of that change each band's part of the perturbation caused.  (Only
    coefficients where the perturbation is non-zero get a score: a band-limited perturbation
    is attributed to its band by construction, so this is informative for unconstrained or
    smooth perturbations.)  ``change_share / energy_share`` compares the bands' effect per
    unit of energy.

    Args:
        model: pixel classifier, run in eval mode (every submodule's mode restored after).
        x: clean images ``(N, C, H, W)`` in ``[0, 1]``.
        x_adv: perturbed images of the same shape, in ``[0, 1]``.
        y: ``(N,)`` integer labels: the class whose logit is explained.
        masks: ``(K, H, W)`` (or one ``(H, W)``) bool bands; for ``basis="dft"`` symmetric.
        basis: ``"dct"`` (default) or ``"dft"``.
        n_steps: IG steps (>= 1, default 32).
        internal_batch_size: at most this many model inputs per pass; ``None``: no limit.

    Returns:
        a dict of CPU tensors: ``logit_change`` ``(N,)`` (``f_y(x_adv) - f_y(x)``),
        ``band_change`` ``(N, K)`` (IG summed per band, logit units), ``change_share``
        ``(N, K)`` (``band_change`` over its row sum: the share of the change caused by each
        band; rows sum to 1, or are all zero when the row sum is 0; bands that work against
        the change give negative shares, others then above 1), ``energy_share`` ``(N, K)``
        (share of the perturbation's energy per band, :func:`freqkit.band_energy`), and
        ``completeness_error`` ``(N,)`` (IG's ``delta``).

    Shape:
        - x, x_adv: ``(N, C, H, W)``; y: ``(N,)``; masks: ``(K, H, W)``.
        - logit_change, completeness_error: ``(N,)``; band_change, change_share,
          energy_share: ``(N, K)``.

    Raises:
        ValueError: ``x`` or ``x_adv`` not 4-D, not finite, outside ``[0, 1]`` or holding
            no image; shapes differ; ``y`` not ``(N,)``; ``masks`` of the wrong shape, not
            0/1, with an empty band, or (DFT) not symmetric; a label out of range; a bad
            ``basis`` or ``n_steps``; a model output holding NaN or inf.
        TypeError: ``y`` not an integer tensor; ``x``, ``x_adv`` or ``masks`` not tensors.
    """
    check_images(x, "x", unit_range=True)
    check_images(x_adv, "x_adv", unit_range=True)
    if x_adv.shape != x.shape:
        raise ValueError(f"x_adv must have the shape of x {tuple(x.shape)}, got {tuple(x_adv.shape)}")
    y = check_labels(y, x.shape[0], x.device)
    h, w = x.shape[-2:]
    masks = check_mask(masks, "masks", h, w, allow_stack=True)
    masks = masks.unsqueeze(0) if masks.dim() == 2 else masks
    res = attribute(model, x_adv, y, method="ig", basis=basis, n_steps=n_steps, baseline=x,
                    internal_batch_size=internal_batch_size)
    s = res.scores.detach()
    band_change = radial_profile(s.sum(1), masks.to(s.device))                 # (N, K)
    tot = band_change.sum(1, keepdim=True)
    share = torch.where(tot.abs() > 0, band_change / torch.where(tot == 0, torch.ones_like(tot), tot),
                        torch.zeros_like(band_change))
    energy = band_energy((x_adv - x).detach(), basis=basis, masks=masks)
    return {"logit_change": (res.output_x - res.output_baseline).detach().cpu(),
            "band_change": band_change.cpu(), "change_share": share.cpu(), "energy_share": energy.cpu(),
            "completeness_error": res.delta.detach().cpu()}
