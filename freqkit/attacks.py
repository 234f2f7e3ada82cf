"""Frequency-constrained adversarial attacks and the equal-distortion comparison of bands.

Everything here takes any ``nn.Module`` classifier that maps images ``(N, C, H, W)`` with
pixels in ``[0, 1]`` to logits ``(N, K)`` (normalisation is a layer inside the model, see
DESIGN.md), runs on the images' device, and is batched.

* :func:`pgd`: projected gradient descent (Madry et al. 2018) whose perturbation lives in a
  frequency band, a DCT mask or a symmetric mask on the centred DFT grid: the low-frequency
  attacks of Guo et al. 2018 and Sharma et al. 2019, with the projection done right.  The
  returned ``x_adv`` lies in ``[0, 1]``, in the eps-ball, *and* in the band.
* :func:`minimal_distortion`, :func:`success_curve`, :func:`compare_bands`,
  :func:`band_comparison` (with :func:`box_limited`): the equal-distortion comparison of
  bands that Sharma et al. 2019 left open; :func:`band_examples`, :func:`example_spectra`
  and :func:`smooth_summary` for the pictures beside it.
  :func:`minimal_distortion_convergence` shows that the per-band medians are stable under
  a stronger attack (more steps and restarts); :func:`minimal_distortion_ddn` is a
  minimal-norm attack (DDN, Rony et al. 2019) in the band, an independent check of the
  search.  ``box=False`` (on :func:`pgd` and everything built on it) drops the ``[0, 1]``
  box, so that what the box costs a band can be told apart from what the model resists.
* :func:`smooth_pgd`: smooth adversarial examples after Zhang et al. 2019 (graph-Laplacian
  smoothing along the image's own structure); :func:`freqkit.band_energy` compares the
  spectra of perturbations.

Fourier heat maps (Yin et al. 2019) live in :mod:`freqkit.heatmaps`; Auto-PGD and the
AutoAttack ensemble inside a band in :mod:`freqkit.apgd`.  The projection described below is
shared with them (the private module ``freqkit._projection``).

The projection onto a band and a box (why not "project, then clip")
-------------------------------------------------------------------
A band-limited perturbation ``delta`` must satisfy three convex constraints at once:
``delta`` in the band subspace ``S``, ``||delta|| <= eps`` and ``0 <= x + delta <= 1``.
The published low-frequency PGD filters the perturbation to the band and then clips the
image to ``[0, 1]``; the clipping puts energy back outside the band, the more so the more
pixels are saturated.  Here each step projects onto the *intersection*.  Two sets suffice:
for L2, ``A = S ∩ ball`` has the exact projection "filter, then rescale" (the ball is
centred on 0, which lies in the subspace); for Linf, the Linf ball and the box are both
boxes, so their intersection is one box and ``A = S`` (the Linf ball stays in pixel
space: Linf is not preserved by the orthonormal transforms).  The projection onto ``A ∩
box`` is Dykstra's method (Dykstra 1983; Boyle & Dykstra 1986), which, unlike plain
alternating projections, converges to the Euclidean projection onto the intersection and
not merely to some point of it, run in its dual form with FISTA momentum (the fast dual
proximal gradient method of Beck & Teboulle 2014): on saturated images, where the box
bites, 32 of its iterations are as accurate as 128 of plain Dykstra, and the gap widens
with the accuracy asked for.  The dual
variables are carried from one PGD step to the next, so a fixed small number of
iterations per step (``proj_iters``) suffices.

After the iterations, the in-band iterate is clipped to the box, which makes box and eps
hold exactly (clipping into a box that contains 0 never increases any ``|delta_i|``) and
leaves a small out-of-band residue, measured per image and returned as
``info["out_of_band"]``.  Where it exceeds ``1e-4`` the image is re-projected with many
more iterations; where even that fails, the band can barely move this image inside
``[0, 1]`` (a high-frequency band on an image with large saturated regions, say: the
projection is nearly 0), and the in-band perturbation is shrunk towards 0 until the box
holds (0 is always feasible), which is exactly in band.  So every returned ``x_adv`` is in
``[0, 1]`` and in the eps-ball to float precision, with an out-of-band share below
``1e-3`` (typically below ``1e-4``); ``info["projection"]`` says which route each image took.
"""
from __future__ import annotations

import itertools
import math
import time
from typing import Mapping, Sequence

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from ._projection import (
    REFINE_ROUNDS, SHARE_TOL, BandProjector, box_bounds, check_band, check_eps, check_norm, finalise, flat_norm,
    l2_ball, out_of_band_share, project, shrink_into_box,
)
from ._distributed import checksum, fail_together, gather_in_order, local_batches, world
from ._runtime import eval_mode
from ._runtime import progress as progress_bar
from ._validate import (
    check_images, check_label_range, check_labels, check_mask, check_model_output, check_number, check_positive_int,
)
from .stats import bootstrap_ci, distribution_summary, median_with_inf
from .transforms import band_energy, band_masks, check_basis, check_dft_symmetric, frequency_radius

__all__ = [
    "pgd", "band_projector", "minimal_distortion", "success_curve", "compare_bands", "box_limited",
    "band_comparison", "band_examples", "example_spectra", "smooth_summary", "smooth_pgd", "LaplacianSmoothing",
    "minimal_distortion_convergence", "minimal_distortion_ddn", "suite_band_distortion",
]

def _step_sizes(step_size, eps: torch.Tensor, steps: int, x: torch.Tensor) -> torch.Tensor:
    """Per-image step ``(N, 1, 1, 1)``: ``step_size`` (a number or ``(N,)`` tensor, > 0), or
    by default ``2.5 * eps / steps``, the choice of Madry et al. 2018 (enough to cross the
    ball 2.5 times, so the last steps can still move along its boundary)."""
    if step_size is None:
        return 2.5 * eps / max(steps, 1)
    if not isinstance(step_size, torch.Tensor) and (
            isinstance(step_size, bool) or not isinstance(step_size, (int, float))
            or not math.isfinite(step_size) or step_size <= 0):
        raise ValueError(f"step_size must be a finite number > 0 or None, got {step_size!r}")
    a = check_eps(step_size, x.shape[0], x, "step_size")
    if bool((a <= 0).any()):
        raise ValueError("step_size must be > 0")
    return a


def _check_bool(v, name: str) -> bool:
    if not isinstance(v, bool):
        raise ValueError(f"{name} must be a bool (True or False), got {v!r}")
    return v


def _finalise_unboxed(x, x_adv, proj, eps, norm, lam):
    """:func:`freqkit._projection.finalise` for ``box=False``: band and ball only, no ``[0, 1]``.

    Returns ``(x_adv, out_of_band_share, route)`` like ``finalise``.  L2: band ∩ ball has an
    exact projection, so the iterate is projected once more (route 0).  Linf: band ∩ Linf
    ball still needs the dual iterations (the ball is a box), so images above ``SHARE_TOL``
    are re-projected in ``finalise``'s rounds (route 1: the same result as ``finalise``
    wherever the box would not bind), and where even that fails the in-band iterate is
    shrunk into the ball (route 2), exactly in band since 0 is feasible.  ``finalise``
    itself cannot be used: it clamps the images to ``[0, 1]``.
    """
    n = x.shape[0]
    route = torch.zeros(n, dtype=torch.long, device=x.device)
    if proj is None:
        return x_adv, torch.zeros(n, dtype=x.dtype, device=x.device), route
    delta = x_adv - x
    if norm == "l2":
        delta = l2_ball(proj(delta), eps)
    else:
        bad = out_of_band_share(delta, proj) > SHARE_TOL
        if bool(bad.any()):
            b = bad.nonzero().flatten()
            z = delta[b]
            hi = eps[b].expand_as(z).contiguous()
            zlam = torch.zeros_like(z) if lam is None else lam[b]
            clipped, in_band = z.clone(), z.clone()
            todo = torch.arange(b.numel(), device=x.device)
            for iters in REFINE_ROUNDS:
                c, d, zl = project(z[todo], -hi[todo], hi[todo], proj, None, iters, zlam[todo])
                clipped[todo], in_band[todo], zlam[todo] = c, d, zl
                todo = todo[out_of_band_share(c, proj) > SHARE_TOL]
                if todo.numel() == 0:
                    break
            still = torch.zeros(b.numel(), dtype=torch.bool, device=x.device)
            still[todo] = True
            if bool(still.any()):
                _, clipped[still] = shrink_into_box(in_band[still], -hi[still], hi[still])
            delta = delta.index_copy(0, b, clipped)
            route[b] = torch.where(still, 2, 1)
    x_adv = x + delta
    return x_adv, out_of_band_share(x_adv - x, proj), route


# ----------------------------------------------------------------------------- band projector

def band_projector(band: torch.Tensor, basis: str = "dct", dtype=torch.float32, device=None):
    """Build the orthogonal projection onto a frequency band, as a callable on ``(..., H, W)`` tensors.

    The band is the span of the DCT basis images under the mask (``basis="dct"``:
    ``v -> D_h^T (M * (D_h v D_w^T)) D_w`` with the cached orthonormal DCT matrices of
    :func:`freqkit.dct_matrix`), or of the DFT frequencies under a mask on the centred DFT grid
    (``basis="dft"``: ``v -> irfft2(rfft2(v) * M)``; with a mask symmetric under ``f -> -f``
    this is the exact real projection onto the span of the kept frequencies).  The same
    operator as :func:`freqkit.filter_band`, but with the matrices prepared once, for use
    inside loops (it is what :func:`pgd` uses); a mask that keeps every frequency gives the
    identity.  The projection is linear, idempotent and self-adjoint, and differentiable.

    Args:
        band: ``(H, W)`` mask, boolean or 0/1, selecting at least one frequency; on the
            centred DFT grid of :func:`freqkit.dft2` for ``basis="dft"``.
        basis: ``"dct"`` (default) or ``"dft"``.
        dtype: dtype of the prepared DCT matrices / mask; the inputs should have it.
        device: device of the prepared matrices; default ``band``'s device.

    Returns:
        A callable ``P`` with ``P(v)`` of the same shape as ``v`` (the input itself, not a
        copy, when the band is every frequency); ``P.into(v, out)`` writes ``P v`` into
        ``out`` through cached work buffers (no gradient; what the attacks' loops use).
        Computed separably on the rows and columns of the mask that keep any frequency (DCT,
        and DFT masks symmetric under each axis flip, through the real Fourier basis), else
        with ``rfft2``.

    Shape:
        - band: ``(H, W)``.
        - v (the callable's input): ``(..., H, W)``, real; output: the same shape.

    Raises:
        ValueError: ``basis`` not ``"dct"``/``"dft"``; ``band`` not a 2-D tensor, not 0/1, or
            empty; for ``"dft"``, ``band`` not symmetric under ``f -> -f``.

    Example:
        >>> import torch, freqkit as fk
        >>> low = fk.low_high_masks(8, 8)["low"]
        >>> P, v = fk.band_projector(low), torch.randn(2, 3, 8, 8)
        >>> torch.allclose(P(P(v)), P(v), atol=1e-5), torch.allclose(P(v), fk.filter_band(v, low), atol=1e-5)
        (True, True)
    """
    check_basis(basis)
    if not isinstance(band, torch.Tensor) or band.dim() != 2:
        raise ValueError(f"band must be an (H, W) mask tensor, got "
                         f"{tuple(band.shape) if isinstance(band, torch.Tensor) else type(band).__name__}")
    m = check_band(band, band.shape[0], band.shape[1], basis)
    return BandProjector(m, basis, dtype, device if device is not None else band.device)


# ----------------------------------------------------------------------------- PGD

def _loss_and_grad(model, xa, ya, targeted: bool, check_labels: bool = False):
    """Logits at ``xa`` and the gradient of the (targeted: negated) mean cross-entropy."""
    xa = xa.detach().requires_grad_(True)
    # A NaN logit would make a NaN gradient, NaN images and a "success" (argmax of NaN is 0).
    logits = check_model_output(model(xa), model)
    if check_labels:
        check_label_range(ya, logits.shape[1])
    # The mean over the batch follows torchattacks; the scale cancels in sign() and in the
    # L2 normalisation, so which images are still active does not change any image's step.
    loss = F.cross_entropy(logits, ya)
    cost = -loss if targeted else loss
    grad, = torch.autograd.grad(cost, xa)
    return logits.detach(), grad


def _succeeded(logits, ya, targeted: bool) -> torch.Tensor:
    pred = logits.argmax(1)
    return pred == ya if targeted else pred != ya


def _outcome(x, x_adv, logits, y, targeted) -> dict:
    """Per-image success and distortion, shared by every attack's ``info``."""
    delta = x_adv - x
    return {"success": _succeeded(logits, y, targeted), "l2": flat_norm(delta, "l2"),
            "linf": flat_norm(delta, "linf")}


def _draw(x: torch.Tensor) -> torch.Tensor:
    """An uninitialised contiguous tensor of ``x``'s shape, dtype and device, for random draws.

    ``torch.empty_like`` would copy ``x``'s memory format, and a generator fills memory in
    order: a ``channels_last`` input would get other numbers at the same pixels.  For a
    contiguous ``x`` this is ``empty_like(x)``, so torchattacks' draws are kept.
    """
    return torch.empty(x.shape, dtype=x.dtype, device=x.device)


def _pgd_once(model, x, y, eps, norm, steps, alpha, proj, lo_box, hi_box, random_start, targeted,
              gen, early_stop, proj_iters, smoother=None, check_labels=True, box=True):
    """One restart of PGD on the images ``x`` ``(n, C, H, W)``.

    Returns ``(x_adv, n_iter, q)`` with ``q`` the projection's dual variables (band attacks),
    kept for the final check.  ``proj is None`` is the unconstrained (``band=None``)
    attack, written to follow torchattacks' PGD / PGDL2 operation for operation, random
    draws included.  ``smoother(v, idx)`` (smooth_pgd) smooths gradients of images ``idx``.
    ``box=False``: no ``[0, 1]`` clip (band attacks get infinite ``lo_box``/``hi_box``).
    """
    n = x.shape[0]
    l2 = norm == "l2"
    band = proj is not None
    if band:
        # Linf ball and [0, 1] box are both boxes: one clamp projects onto their intersection.
        lo, hi = box_bounds(lo_box, hi_box, eps, norm)
    q = torch.zeros_like(x) if band else None
    # Without the box, band ∩ L2 ball has the exact projection "filter, then rescale":
    # the dual iterations would only spin on an empty box constraint.
    iters = proj_iters if (box or not l2) else 0

    def clip(v):
        return torch.clamp(v, min=0, max=1) if box else v

    # Random start: torchattacks' draws (uniform in the Linf ball; for L2 a Gaussian direction
    # with a radius uniform in [0, eps]), restricted to the band where there is one.
    if not random_start:
        x_adv = x.clone()
    elif not l2:
        if bool((eps == eps.flatten()[0]).all()):
            e0 = float(eps.flatten()[0])
            u = _draw(x).uniform_(-e0, e0, generator=gen)
        else:
            u = _draw(x).uniform_(-1.0, 1.0, generator=gen) * eps
        if smoother is not None:
            u = smoother(u, None)
            u = u * (eps / u.reshape(n, -1).abs().amax(1).view(n, 1, 1, 1).clamp_min(1e-30))
        if band:
            d, _, q = project(proj(u), lo, hi, proj, None, iters, q)
            x_adv = x + d
        else:
            x_adv = clip(x + u)
    else:
        d = _draw(x).normal_(generator=gen)
        if band:
            d = proj(d)
        elif smoother is not None:
            d = smoother(d, None)
        nrm = d.reshape(n, -1).norm(p=2, dim=1).view(n, 1, 1, 1)
        r = torch.zeros_like(nrm).uniform_(0, 1, generator=gen)
        d = d * (r / nrm * eps)
        if band:
            d, _, q = project(d, lo, hi, proj, eps, iters, q)
            x_adv = x + d
        else:
            x_adv = clip(x + d)
    x_adv = x_adv.detach()

    n_iter = torch.zeros(n, dtype=torch.long, device=x.device)
    active = torch.arange(n, device=x.device)
    everyone = True
    for it in range(steps):
        xa, ya = (x_adv, y) if everyone else (x_adv[active], y[active])
        logits, grad = _loss_and_grad(model, xa, ya, targeted, check_labels and it == 0)
        if early_stop:
            keep = ~_succeeded(logits, ya, targeted)
            if not bool(keep.all()):
                active, grad, xa = active[keep], grad[keep], xa[keep]
                everyone = False
                if active.numel() == 0:
                    break

        def sel(t):
            return t if everyone else t[active]

        xs, es, al = sel(x), sel(eps), sel(alpha)
        m = grad.shape[0]
        if smoother is not None:
            grad = smoother(grad, None if everyone else active)
        if not band and not l2:
            # torchattacks PGD: step along sign(grad), clip to the ball, then to [0, 1].  A
            # smoothed gradient keeps its shape (sign() would undo the smoothing): it is
            # scaled to unit Linf norm instead.
            if smoother is None:
                step = grad.sign()
            else:
                step = grad / grad.reshape(m, -1).abs().amax(1).view(m, 1, 1, 1).clamp_min(1e-30)
            new = xa + al * step
            delta = torch.maximum(torch.minimum(new - xs, es), -es)
            new = clip(xs + delta)
        elif not band:
            # torchattacks PGDL2: normalised gradient step, rescale into the ball, clip.
            gn = grad.reshape(m, -1).norm(p=2, dim=1).view(m, 1, 1, 1) + 1e-10
            new = xa + al * (grad / gn)
            delta = new - xs
            dn = delta.reshape(m, -1).norm(p=2, dim=1).view(m, 1, 1, 1)
            delta = delta * torch.min(es / dn, torch.ones_like(dn))
            new = clip(xs + delta)
        else:
            # Steepest ascent restricted to the band.  For L2 the band-projected gradient is
            # the steepest in-band direction.  For Linf we step along the sign of the
            # band-projected gradient (the Linf-steepest direction for the in-band part of
            # the gradient) and let the projection bring the step back into the band:
            # sign() of the raw gradient would spend most of the step out of band, and a
            # normalised in-band step would leave most of the Linf budget unused.
            g = proj(grad)
            g = g.clone() if g is grad else g             # the full band returns its input
            if l2:
                gn = g.reshape(m, -1).norm(p=2, dim=1).view(m, 1, 1, 1) + 1e-10
                z = (g / gn).mul_(al).add_(xa - xs)
            else:
                z = g.sign_().mul_(al).add_(xa - xs)
            delta, _, qa = project(z, sel(lo), sel(hi), proj, es if l2 else None, iters, sel(q))
            q = qa if everyone else q.index_copy(0, active, qa)
            new = xs + delta
        if everyone:
            x_adv = new.detach()
            n_iter += 1
        else:
            x_adv = x_adv.index_copy(0, active, new.detach())
            n_iter[active] += 1
    return x_adv, n_iter, q


def pgd(model: nn.Module, x: torch.Tensor, y: torch.Tensor, eps, norm: str = "linf", steps: int = 20,
        step_size=None, band: torch.Tensor | None = None, basis: str = "dct", random_start: bool = True,
        targeted: bool = False, seed: int | None = None, early_stop: bool = True, restarts: int = 1,
        return_info: bool = False, proj_iters: int = 8, box: bool = True):
    """Projected gradient descent (Madry et al. 2018), optionally confined to a frequency band.

    Maximises the cross-entropy of ``model(x + delta)`` (or, ``targeted``, minimises it
    towards the labels ``y``) over perturbations with ``||delta||_p <= eps``,
    ``0 <= x + delta <= 1`` and, if ``band`` is given, ``delta`` in the band: the span of
    the DCT basis images under the mask (``basis="dct"``), or of the DFT frequencies under a
    symmetric mask on the centred DFT grid (``basis="dft"``, the grid of
    :func:`freqkit.dft2`).  Band-limited PGD is the white-box low-frequency attack of
    Sharma et al. 2019 ("On the effectiveness of low frequency perturbations", after Guo
    et al. 2018's low-frequency subspace), with a projection onto the intersection of band,
    ball and box (Dykstra 1983; Boyle & Dykstra 1986; accelerated after Beck & Teboulle
    2014; see the module docstring) instead of "filter, then clip".

    Steps: Linf without a band, ``sign(grad)``; L2 without a band, ``grad / ||grad||``; with
    a band, the same applied to the band-projected gradient (Linf: its sign, brought back
    into the band by the projection).  With ``band=None`` the iteration is torchattacks'
    ``PGD`` (Linf) / ``PGDL2`` operation for operation: with ``early_stop=False`` and the
    same seed the results are identical.

    Args:
        model: classifier, ``(N, C, H, W)`` in ``[0, 1]`` -> logits ``(N, K)``: an
            ``nn.Module`` (attacked in eval mode, every submodule's own mode restored
            afterwards) or any callable.
        x: images, at least one, pixels in ``[0, 1]`` (values within 1e-6 outside are
            clamped first); any memory format (the random start does not depend on it).
        y: true labels (or target labels with ``targeted=True``), integers in ``[0, K)``.
        eps: radius, a number or an ``(N,)`` tensor of per-image radii, ``>= 0``, in pixel
            space on ``[0, 1]`` images (Linf: e.g. ``8/255``; L2: e.g. ``0.5``).  Linf is
            *not* preserved by the orthonormal transforms, so the Linf ball is always the
            pixel-space ball, also for a band.
        norm: ``"linf"`` (default) or ``"l2"`` (case-insensitive).
        steps: gradient steps per restart, ``>= 0`` (0: only the random start, if any).
        step_size: step per iteration (torchattacks' ``alpha``), a number or an ``(N,)``
            tensor, ``> 0``; default ``None``: ``2.5 * eps / steps`` (Madry et al. 2018).
        band: ``(H, W)`` mask (boolean or 0/1, at least one frequency), or ``None``
            (default) for the unconstrained attack.
        basis: ``"dct"`` (default) or ``"dft"``: the basis ``band`` is laid out in.
        random_start: start from a random point of the (in-band) ball (default): torchattacks'
            draws, uniform in the Linf ball, or for L2 a Gaussian direction with a radius
            uniform in ``[0, eps]``; ``False`` starts at ``x``.
        targeted: move towards the labels ``y`` instead of away from them.
        seed: seed of a private ``torch.Generator`` for the random start (the global RNG
            is left untouched); ``None`` (default) draws from the global RNG.  The draws are
            the ones torchattacks makes, so ``torch.manual_seed(s)`` before torchattacks and
            ``seed=s`` here start from the same point.
        early_stop: stop updating an image as soon as it is misclassified (or, targeted,
            classified as its target) and keep that ``x_adv``; later steps could only lose
            it.  The remaining images run in smaller batches, which also saves time.
        restarts: random restarts, ``>= 1``; an image keeps its first successful result,
            else the last restart's.  Only images not yet fooled are restarted.
        return_info: also return a dict of per-image diagnostics (below).
        proj_iters: iterations of the band/ball/box projection per step (band attacks
            only), ``>= 1``; warm-started from step to step, so a few suffice (see the module
            docstring).
        box: keep ``x_adv`` in the ``[0, 1]`` box (default).  ``False`` drops that
            constraint, so that the attack is limited by the band, the ball and the model
            alone: ``x_adv`` may leave ``[0, 1]`` (the model is then evaluated on such
            images; its normalisation layer takes any values).  This separates failures due
            to the box (a band that cannot move saturated pixels) from failures due to the
            model; see :func:`box_limited`.  Without the box the L2 projection onto band and
            ball is exact ("filter, then rescale") and ``proj_iters`` is not used for L2.

    Returns:
        ``x_adv``, detached, in ``[0, 1]`` (unless ``box=False``), in the eps-ball and (to
        an out-of-band energy share below ``1e-3``) in the band; with ``return_info`` the
        pair ``(x_adv, info)``, ``info`` a dict of per-image tensors: ``success`` bool (from a final forward pass
        on ``x_adv``), ``l2`` and ``linf`` norms of ``x_adv - x``, ``out_of_band`` share of
        the perturbation's energy outside the band (0 without a band; below ``1e-3`` by
        construction, typically below ``1e-4``), ``projection`` (int64: how the final
        projection went: 0 the PGD iterate passed, 1 re-projected with more iterations,
        2 shrunk into the box: the band can barely move this image inside ``[0, 1]``,
        3 zeroed: the perturbation was below float resolution; always 0 without a band),
        ``iterations`` (int64, gradient steps taken over all restarts), ``logits`` at
        ``x_adv``.  With ``box=False``, ``projection`` is 0 (passed), 1 (Linf: re-projected)
        or 2 (Linf: shrunk into the ball); the L2 result is exactly in band and ball.

    Shape:
        - x: ``(N, C, H, W)``.
        - y: ``(N,)``.
        - eps, step_size: a number or ``(N,)``.
        - band: ``(H, W)``.
        - Output: ``x_adv`` ``(N, C, H, W)``; ``info["logits"]`` ``(N, K)``; every other
          ``info`` entry ``(N,)``.

    Raises:
        TypeError: ``x`` not a floating-point tensor, ``y`` not an integer tensor, ``band``
            not a tensor.
        ValueError: ``x`` not 4-D, not finite, outside ``[0, 1]`` or holding no image ("x
            holds no images (N = 0)"); ``y`` not of shape ``(N,)``, or (at the first forward
            pass) outside ``[0, K)``; ``norm``, ``basis``; ``eps`` negative, non-finite or
            of the wrong shape; ``steps`` not an integer ``>= 0``; ``restarts`` or
            ``proj_iters`` not an integer ``>= 1``; ``step_size`` not ``> 0``; ``band`` not
            ``(H, W)``, not 0/1, empty, or (DFT) not symmetric under ``f -> -f``; ``box`` not
            a bool; ``model`` not returning 2-D logits, or returning NaN or inf (every
            forward pass is checked; the message names the model).

    Example:
        >>> import torch, freqkit as fk
        >>> _ = torch.manual_seed(0); model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 3))
        >>> x = torch.rand(2, 1, 8, 8); y = model(x).argmax(1); low = fk.low_high_masks(8, 8)["low"]
        >>> x_adv = fk.pgd(model, x, y, eps=0.5, norm="l2", steps=5, band=low, seed=0)
        >>> d = x_adv - x
        >>> bool(x_adv.min() >= 0 and x_adv.max() <= 1), bool((d.flatten(1).norm(dim=1) <= 0.5 + 1e-5).all())
        (True, True)
        >>> torch.allclose(fk.band_projector(low)(d), d, atol=1e-5)   # in band
        True
    """
    check_images(x, "x", unit_range=True)
    norm = check_norm(norm)
    check_basis(basis)
    n, c, h, w = x.shape
    y = check_labels(y, n, x.device)
    eps_t = check_eps(eps, n, x)
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 0:
        raise ValueError(f"steps must be an integer >= 0, got {steps!r}")
    check_positive_int(restarts, "restarts")
    check_positive_int(proj_iters, "proj_iters")
    _check_bool(box, "box")
    alpha = _step_sizes(step_size, eps_t, steps, x)
    proj = None
    if band is not None:
        mask = check_band(band, h, w, basis)
        proj = BandProjector(mask, basis, x.dtype, x.device)

    x = x.detach().clamp(0.0, 1.0)
    gen = None
    if seed is not None:
        gen = torch.Generator(device=x.device)
        gen.manual_seed(int(seed))
    if box:
        lo_box, hi_box = -x, 1.0 - x
    else:
        lo_box, hi_box = torch.full_like(x, -math.inf), torch.full_like(x, math.inf)

    with eval_mode(model), torch.enable_grad():
        x_adv = x.clone()
        n_iter = torch.zeros(n, dtype=torch.long, device=x.device)
        q = torch.zeros_like(x) if proj is not None else None
        todo = torch.arange(n, device=x.device)
        for r in range(restarts):
            xs, ys = x[todo], y[todo]
            xa, it, qa = _pgd_once(model, xs, ys, eps_t[todo], norm, steps, alpha[todo], proj,
                               lo_box[todo], hi_box[todo], random_start, targeted, gen, early_stop,
                               proj_iters, check_labels=(r == 0), box=box)
            x_adv = x_adv.index_copy(0, todo, xa)
            n_iter[todo] += it
            if q is not None:
                q = q.index_copy(0, todo, qa)
            if r + 1 < restarts:
                with torch.no_grad():
                    ok = _succeeded(check_model_output(model(xa), model), ys, targeted)
                todo = todo[~ok]
                if todo.numel() == 0:
                    break
        with torch.no_grad():
            if box:
                x_adv, share, route = finalise(x, x_adv, proj, lo_box, hi_box, eps_t, norm, q)
            else:
                x_adv, share, route = _finalise_unboxed(x, x_adv, proj, eps_t, norm, q)
            if steps == 0 or return_info:
                logits = check_model_output(model(x_adv), model)
                check_label_range(y, logits.shape[1])
            if not return_info:
                return x_adv.detach()
    info = {
        **_outcome(x, x_adv, logits, y, targeted),
        "out_of_band": share,
        "projection": route,
        "iterations": n_iter,
        "logits": logits,
    }
    return x_adv.detach(), info


# ----------------------------------------------------------------------------- equal distortion

def _default_eps_max(x: torch.Tensor, norm: str) -> float:
    # L2: a perturbation with RMS 0.25 per pixel (sqrt(3072)/4 ~ 13.9 on CIFAR-10), Linf:
    # 0.25.  Both are far beyond any imperceptible attack, so "inf" means "not even then".
    return math.sqrt(x[0].numel()) / 4 if norm == "l2" else 0.25


def minimal_distortion(model: nn.Module, x: torch.Tensor, y: torch.Tensor, band: torch.Tensor | None = None,
                       norm: str = "l2", basis: str = "dct", eps_max: float | None = None,
                       eps_min: float | None = None, search_steps: int = 10, pgd_steps: int = 20,
                       step_factor: float = 2.5, random_start: bool = False, restarts: int = 1, targeted: bool = False,
                       seed: int = 0, batch_size: int | None = None, progress: bool = True,
                       return_info: bool = False, box: bool = True):
    """Per image, the smallest perturbation size at which (band-limited) PGD changes the prediction.

    Binary search over ``eps`` with :func:`pgd` (each image its own bracket, searched in
    one batch): ``eps_max`` is tried first; images that PGD cannot flip even there get
    ``inf``; for the others ``search_steps`` bisections of ``[eps_min, eps_max]`` *on a log
    scale* (geometric midpoints, so the precision is relative: distortions of different
    bands differ by factors, not by offsets) narrow the bracket ``[lo, hi]``, and the
    result is the norm of the smallest successful perturbation found (``<= hi``; relative
    resolution ``(eps_max / eps_min) ** (2 ** -search_steps)``, 0.7% with the defaults).
    A success whose perturbation is smaller than the radius tried (early stop) lowers
    ``hi`` to that perturbation's size at once.

    Why a search with PGD rather than a minimal-norm attack (DDN, FMN): it works the same
    for every band, basis and norm and reuses the one projection that is tested to keep
    the result in band, ball and box.  The price is ``search_steps + 1`` PGD runs; for L2,
    :func:`minimal_distortion_ddn` (DDN in the band, with the same projection) is a faster
    alternative and a check of this search.
    The result is an upper bound on the true minimal distortion (PGD is a heuristic); the
    search assumes that success is monotone in ``eps``, which holds for the deterministic
    attack used by default (no random start, fixed seed) up to rare exceptions.  This is
    the distortion measure of the equal-distortion comparison of bands (:func:`compare_bands`).

    Under ``torch.distributed`` (a process group initialised, e.g. by ``torchrun``) each
    rank searches its share of the whole batches of ``batch_size`` images
    (:func:`freqkit._distributed.local_batches` with ``whole_batches``: every batch holds
    the images it holds in one process, so its PGD calls and their seeds are the same), and
    every rank returns the full result in image order; a rank that fails stops all of them.

    Args:
        model: as in :func:`pgd`.
        x: images in ``[0, 1]``.
        y: labels (targets with ``targeted``), in ``[0, K)``.
        band: ``(H, W)`` mask of the band, or ``None`` (default) for all frequencies.
        norm: ``"l2"`` (default) or ``"linf"``; distortion in that norm, in pixel space on
            ``[0, 1]`` images.
        basis: ``"dct"`` (default) or ``"dft"``, the basis of ``band``.
        eps_max: the largest radius tried, a finite number ``> 0``; default ``None``:
            ``sqrt(C*H*W) / 4`` (L2, an RMS of 0.25 per pixel) or ``0.25`` (Linf), far beyond
            any imperceptible attack.
        eps_min: the bottom of the search bracket, in ``(0, eps_max)``; default ``None``:
            ``eps_max / 1000``.  A smaller minimal distortion is still found, as the norm of
            the perturbation at ``eps_min``.
        search_steps: bisections, an integer ``>= 0`` (default 10).
        pgd_steps: PGD steps per try, ``>= 1``, with step size ``step_factor * eps / pgd_steps``.
        step_factor: see ``pgd_steps`` (default 2.5, as :func:`pgd`'s default step).
        random_start: off by default: for L2 a random start spends budget in directions the
            steps never undo, which biases the minimal norm upwards and breaks monotonicity.
        restarts: PGD restarts per try (``>= 1``; only useful with ``random_start``).
        targeted: search the smallest perturbation that reaches the target labels ``y``.
        seed: seed of every PGD call's random start.
        batch_size: images per PGD call, ``>= 1``; default ``None``: all at once.
        progress: show a progress bar (on a terminal).
        return_info: also return a dict (below).
        box: keep the adversarial images in ``[0, 1]`` (default); ``False`` searches the
            smallest perturbation in band and ball alone (:func:`pgd`'s ``box``), a lower
            envelope that separates what the box costs from what the model resists.

    Returns:
        ``(N,)`` tensor of minimal distortions on ``x``'s device, ``x``'s dtype (``inf``
        where PGD fails at ``eps_max``, ``0`` where ``x`` is already misclassified, or,
        ``targeted``, already classified as its target); with ``return_info`` the pair
        ``(distortions, info)``, ``info`` holding ``x_adv`` (the smallest successful
        perturbations, ``x`` where none) and ``success`` (bool, finite distortion).

    Shape:
        - x: ``(N, C, H, W)``.
        - y: ``(N,)``.
        - band: ``(H, W)``.
        - Output: ``(N,)``; ``info["x_adv"]`` ``(N, C, H, W)``, ``info["success"]`` ``(N,)``.

    Raises:
        TypeError: as :func:`pgd` for ``x``, ``y`` and ``band``.
        ValueError: as :func:`pgd` for ``x``, ``y``, ``norm``, ``basis``, ``band`` and
            ``restarts`` (``x`` holding no image, a model output holding NaN or inf, ...);
            ``eps_max`` not a finite number ``> 0``; ``eps_min`` not in ``(0, eps_max)``;
            ``search_steps`` not an integer ``>= 0``; ``pgd_steps`` or ``batch_size`` not
            an integer ``>= 1``; ``step_factor * eps`` not ``> 0`` (raised by :func:`pgd`);
            ``box`` not a bool; (distributed) ranks given different images, labels or
            settings.
        RankFailed: (distributed) another rank raised.
        DistributedError: (distributed) a rank died or hung past the process group's timeout.

    Example:
        >>> import torch, freqkit as fk
        >>> _ = torch.manual_seed(0); model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 3))
        >>> x = torch.rand(2, 1, 8, 8); y = model(x).argmax(1)
        >>> d, info = fk.minimal_distortion(model, x, y, search_steps=3, pgd_steps=4, progress=False, return_info=True)
        >>> d.shape, info["success"].tolist(), bool((model(info["x_adv"]).argmax(1) != y).all())
        (torch.Size([2]), [True, True], True)
    """
    fp = {}
    with fail_together("minimal_distortion", fingerprint=lambda: fp):
        check_images(x, "x", unit_range=True)
        norm = check_norm(norm)
        check_basis(basis)
        n = x.shape[0]
        y = check_labels(y, n, x.device)
        if band is not None:
            check_band(band, x.shape[-2], x.shape[-1], basis)
        eps_max = _default_eps_max(x, norm) if eps_max is None else eps_max
        if isinstance(eps_max, bool) or not isinstance(eps_max, (int, float)) or not math.isfinite(eps_max) \
                or eps_max <= 0:
            raise ValueError(f"eps_max must be a finite number > 0, got {eps_max!r}")
        eps_min = eps_max / 1000 if eps_min is None else eps_min
        if isinstance(eps_min, bool) or not isinstance(eps_min, (int, float)) or not 0 < eps_min < eps_max:
            raise ValueError(f"eps_min must be a number in (0, eps_max={eps_max:.4g}), got {eps_min!r}")
        if isinstance(search_steps, bool) or not isinstance(search_steps, int) or search_steps < 0:
            raise ValueError(f"search_steps must be an integer >= 0, got {search_steps!r}")
        check_positive_int(pgd_steps, "pgd_steps")
        _check_bool(box, "box")
        bs = n if batch_size is None else check_positive_int(batch_size, "batch_size")
        fp.update(n=n, shape="x".join(map(str, x.shape[1:])), x_sum=checksum(x), y_sum=checksum(y),
                  band_sum=None if band is None else checksum(band), norm=norm, basis=basis, eps_max=float(eps_max),
                  eps_min=float(eps_min), search_steps=search_steps, pgd_steps=pgd_steps, batch_size=bs,
                  seed=seed, box=box, targeted=bool(targeted))

    def attack(xb, yb, eb):
        return pgd(model, xb, yb, eb, norm=norm, steps=pgd_steps, step_size=step_factor * eb / pgd_steps,
                   band=band, basis=basis, random_start=random_start, targeted=targeted, seed=seed,
                   early_stop=True, restarts=restarts, return_info=True, box=box)

    def search(xb, yb, tick):
        """The bracket search on one batch: (smallest distortion found, its adversarial images)."""
        m = xb.shape[0]
        with eval_mode(model), torch.no_grad():
            logits = check_model_output(model(xb), model)
        check_label_range(yb, logits.shape[1])
        already = _succeeded(logits, yb, targeted)
        lo = torch.full((m,), float(eps_min), dtype=x.dtype, device=x.device)
        hi = torch.full((m,), float(eps_max), dtype=x.dtype, device=x.device)
        best = torch.full((m,), float("inf"), dtype=x.dtype, device=x.device)
        bx = xb.detach().clone()
        best[already] = 0.0
        for k in range(search_steps + 1):
            tick()
            eb = hi if k == 0 else torch.sqrt(lo * hi)
            todo = (~already) & torch.isfinite(best) if k > 0 else ~already
            if not bool(todo.any()):
                continue
            idx = todo.nonzero().flatten()
            xa, info = attack(xb[idx], yb[idx], eb[idx])
            ok = info["success"]
            size = info[norm]
            better = ok & (size < best[idx])
            best[idx[better]] = size[better]
            bx[idx[better]] = xa[better]
            # A success with a perturbation smaller than eps (early stop) narrows the bracket
            # down to that perturbation's size at once.
            hi[idx[ok]] = torch.minimum(eb[idx[ok]], size[ok])
            if k > 0:
                lo[idx[~ok]] = eb[idx[~ok]]
        return best, bx

    # Under torch.distributed each rank searches whole batches of bs images (the batches one
    # process would form: a batch's PGD calls see the same images, so the same results), then
    # the rows are gathered in image order on every rank.
    batches, n_batches = local_batches(x, y, bs, "x", whole_batches=True)
    bar = progress_bar(range(n_batches * (search_steps + 1)), enabled=progress and world().rank == 0,
                       desc="minimal distortion")
    it = iter(bar)
    index, dists, advs = [], [], []
    with fail_together("minimal_distortion: computing"):
        for off, xb, yb in batches:
            best, bx = search(xb, yb, lambda: next(it, None))
            index.append(torch.arange(off, off + xb.shape[0], device=x.device))
            dists.append(best)
            advs.append(bx)
    if progress and hasattr(bar, "close"):
        bar.close()
    out = torch.cat(dists) if dists else x.new_zeros((0,))
    best_x = torch.cat(advs) if advs else x.new_zeros((0, *x.shape[1:]))
    out, best_x = gather_in_order(torch.cat(index) if index else torch.zeros(0, dtype=torch.int64), out, best_x,
                                  what="minimal_distortion")
    if return_info:
        return out, {"x_adv": best_x, "success": torch.isfinite(out)}
    return out


def success_curve(model: nn.Module, x: torch.Tensor, y: torch.Tensor, eps_list: Sequence[float],
                  band: torch.Tensor | None = None, norm: str = "l2", basis: str = "dct", steps: int = 20,
                  step_factor: float = 2.5, random_start: bool = True, restarts: int = 1, seed: int = 0,
                  targeted: bool = False, progress: bool = True, box: bool = True) -> dict:
    """Success rate of (band-limited) :func:`pgd` at each radius of ``eps_list``.

    One :func:`pgd` run per radius (``steps`` steps of ``step_factor * eps / steps``, early
    stop, the same ``seed`` for every radius); a radius of 0 is scored without attacking
    (the clean predictions).

    Args:
        model, x, y: as in :func:`pgd`.
        eps_list: radii ``>= 0`` (numbers), at least one.
        band, basis: the band (``(H, W)`` mask, ``None``: all frequencies) and its basis.
        norm: ``"l2"`` (default) or ``"linf"``.
        steps: PGD steps per radius; must be ``>= 1`` when a radius is ``> 0``.
        step_factor: step size ``step_factor * eps / steps`` (default 2.5).
        random_start: PGD's random start (default on).
        restarts: PGD restarts, ``>= 1``.
        seed: seed of the random starts.
        targeted: targeted attack (success: classified as ``y``).
        progress: show a progress bar (on a terminal).
        box: keep the adversarial images in ``[0, 1]`` (default); see :func:`pgd`.

    Returns:
        dict with ``eps`` ``(E,)``, ``success_rate`` ``(E,)`` float (fraction of the N
        images whose prediction PGD changes, or brings to the target), ``success``
        ``(E, N)`` bool, ``out_of_band_max`` ``(E,)`` (largest out-of-band energy share of
        any returned perturbation), all CPU tensors, and ``n`` (int, N).

    Shape:
        - x: ``(N, C, H, W)``.
        - y: ``(N,)``.
        - Output: ``eps``, ``success_rate``, ``out_of_band_max`` ``(E,)``; ``success`` ``(E, N)``.

    Raises:
        ValueError: ``eps_list`` empty or holding a negative or non-finite radius; ``steps``
            not an integer ``>= 1`` while a radius is ``> 0`` (both checked before any
            attack); ``x`` holding no image; anything :func:`pgd` rejects (``x``, ``y``,
            ``norm``, ``basis``, ``band``, a model output holding NaN or inf, ...);
            ``TypeError``/``ValueError`` from ``float()`` for a non-numeric radius.
    """
    check_images(x, "x", unit_range=True)
    eps_list = [float(e) for e in eps_list]
    if not eps_list:
        raise ValueError("eps_list must hold at least one radius")
    bad = [e for e in eps_list if not (math.isfinite(e) and e >= 0)]
    if bad:
        raise ValueError(f"eps_list must hold finite radii >= 0, got {bad}")
    if any(e > 0 for e in eps_list) and (isinstance(steps, bool) or not isinstance(steps, int) or steps < 1):
        raise ValueError(f"steps must be an integer >= 1 when eps_list holds a radius > 0 (the step size is "
                         f"step_factor * eps / steps), got {steps!r}")
    succ, oob = [], []
    for e in progress_bar(eps_list, enabled=progress, desc="success curve"):
        if e == 0:
            _, info = pgd(model, x, y, 0.0, norm=norm, steps=0, band=band, basis=basis,
                          random_start=False, targeted=targeted, return_info=True, box=box)
        else:
            _, info = pgd(model, x, y, e, norm=norm, steps=steps, step_size=step_factor * e / steps, band=band,
                          basis=basis, random_start=random_start, targeted=targeted, seed=seed,
                          restarts=restarts, return_info=True, box=box)
        succ.append(info["success"])
        oob.append(float(info["out_of_band"].max()))
    s = torch.stack(succ)
    return {"eps": torch.tensor(eps_list), "success_rate": s.float().mean(1).cpu(), "success": s.cpu(),
            "out_of_band_max": torch.tensor(oob), "n": x.shape[0]}


def compare_bands(model: nn.Module, x: torch.Tensor, y: torch.Tensor, masks, norm: str = "l2",
                  eps_list: Sequence[float] | None = None, basis: str = "dct", steps: int = 20,
                  search_steps: int = 10, eps_max: float | None = None, n_boot: int = 1000, ci: float = 0.95,
                  include_full: bool = True, seed: int = 0, progress: bool = True, box: bool = True) -> dict:
    """Low- vs high-frequency attacks at equal distortion: one tidy record per band.

    For each band of ``masks`` runs :func:`success_curve` over ``eps_list`` and
    :func:`minimal_distortion`, and reports the median minimal distortion with a
    percentile-bootstrap confidence interval over images (Efron 1979; ``inf`` counts as
    larger than any distortion, so a median of ``inf`` means most images resisted up to
    ``eps_max``; the interval uses :func:`freqkit.bootstrap_ci` with ``rule="outward"``).
    This is the equal-distortion comparison that Sharma et al. 2019 ("On the effectiveness
    of low frequency perturbations") did not make.

    Args:
        model, x, y: as in :func:`pgd`.
        masks: a ``(K, H, W)`` (or ``(H, W)``) stack of bands, e.g. from
            :func:`freqkit.band_masks` or :func:`freqkit.equal_count_band_masks` (named
            ``band0``, ``band1``, ...), or a ``{name: (H, W) mask}`` dict.
        norm: ``"l2"`` (default) or ``"linf"``.
        eps_list: radii of the success curves; default ``None``:
            ``eps_max * (0, 1/16, 1/8, 1/4, 1/2, 1)``.
        basis: ``"dct"`` (default) or ``"dft"``, the basis of the masks.
        steps: PGD steps, used throughout (curves and search).
        search_steps: bisections per minimal distortion (:func:`minimal_distortion`).
        eps_max: largest radius searched; default as in :func:`minimal_distortion`.
        n_boot: bootstrap resamples, ``>= 1``.
        ci: confidence level in ``(0, 1)``.
        include_full: add an entry ``"full"`` for the unconstrained attack (``band=None``),
            the reference every band is weaker than.
        seed: seed of the attacks and of the bootstrap.
        progress: show a progress bar over bands (on a terminal).
        box: keep the adversarial images in ``[0, 1]`` (default); ``False`` runs curves and
            searches without the box (:func:`pgd`'s ``box``), to separate the box from the
            model.

    Returns:
        ``{name: record}`` with plain Python floats and lists (JSON-ready); each record has
        ``eps``, ``success_rate`` (lists, one entry per radius), ``median_distortion``,
        ``ci_low``, ``ci_high``, ``ci``, ``success_at_eps_max`` (share of finite
        distortions), ``distortions`` (``N`` values, ``inf`` where PGD failed at
        ``eps_max``), ``n_coefficients`` (coefficients in the band; ``H * W`` for
        ``"full"``), ``out_of_band_max``, and the setting: ``norm``, ``basis``, ``n``,
        ``steps``, ``eps_max``, ``box``.

    Shape:
        - x: ``(N, C, H, W)``.
        - y: ``(N,)``.
        - masks: ``(K, H, W)``, ``(H, W)`` or a dict of ``(H, W)``.

    Raises:
        TypeError: a mask that is not a tensor (``None`` is not accepted here).
        ValueError: a mask of the wrong shape, not 0/1, empty or (DFT) not symmetric; no
            band; a band named ``"full"`` with ``include_full``; ``ci`` not in ``(0, 1)``;
            ``eps_max`` not a finite number ``> 0``; ``n_boot`` or ``steps`` not an integer
            ``>= 1``; ``search_steps`` not an integer ``>= 0``; ``box`` not a bool (all these
            before any attack runs); ``x`` holding no image; and what :func:`success_curve`, :func:`pgd` and
            :func:`minimal_distortion` reject (``y``, ``norm``, ``basis``, ``eps_list``, a
            model output holding NaN or inf, ...).
    """
    check_images(x, "x", unit_range=True)
    norm = check_norm(norm)
    check_basis(basis)
    h, w = x.shape[-2:]
    if isinstance(masks, Mapping):
        named = {str(k): check_band(v, h, w, basis, f"masks[{k!r}]") for k, v in masks.items()}
    else:
        ms = check_mask(masks, "masks", h, w, allow_stack=True)
        ms = ms.unsqueeze(0) if ms.dim() == 2 else ms
        named = {f"band{k}": check_band(ms[k], h, w, basis, f"masks[{k}]") for k in range(ms.shape[0])}
    if not named:
        raise ValueError("masks must hold at least one band")
    if include_full:
        if "full" in named:
            raise ValueError("masks already has a band named 'full'; rename it or pass include_full=False")
        named["full"] = None
    eps_max = _default_eps_max(x, norm) if eps_max is None else eps_max
    # Everything the attacks would only check later is checked before the first one runs.
    eps_max = check_number(eps_max, "eps_max")
    check_positive_int(n_boot, "n_boot")
    check_positive_int(steps, "steps")
    if isinstance(search_steps, bool) or not isinstance(search_steps, int) or search_steps < 0:
        raise ValueError(f"search_steps must be an integer >= 0, got {search_steps!r}")
    if eps_list is None:
        eps_list = [eps_max * f for f in (0.0, 0.0625, 0.125, 0.25, 0.5, 1.0)]
    if isinstance(ci, bool) or not isinstance(ci, (int, float)) or not 0 < ci < 1:
        raise ValueError(f"ci must be in (0, 1), got {ci!r}")
    _check_bool(box, "box")
    out = {}
    for name, m in progress_bar(list(named.items()), enabled=progress, desc="bands"):
        curve = success_curve(model, x, y, eps_list, band=m, norm=norm, basis=basis, steps=steps, seed=seed,
                              progress=False, box=box)
        d = minimal_distortion(model, x, y, band=m, norm=norm, basis=basis, eps_max=eps_max,
                               search_steps=search_steps, pgd_steps=steps, seed=seed, progress=False, box=box)
        dn = d.detach().cpu().double().numpy()
        lo, hi = (float(v) for v in bootstrap_ci(dn, median_with_inf, n_boot=n_boot, ci=ci, seed=seed,
                                                  rule="outward"))
        out[name] = {
            "eps": [float(e) for e in curve["eps"]],
            "success_rate": [float(r) for r in curve["success_rate"]],
            "median_distortion": float(median_with_inf(dn)),
            "ci_low": lo, "ci_high": hi, "ci": ci,
            "success_at_eps_max": float(np.isfinite(dn).mean()),
            "distortions": [float(v) for v in dn],
            "n_coefficients": int(m.sum()) if m is not None else h * w,
            "out_of_band_max": float(curve["out_of_band_max"].max()),
            "norm": norm, "basis": basis, "n": int(x.shape[0]), "steps": steps, "eps_max": float(eps_max),
            "box": box,
        }
    return out


# ----------------------------------------------------------------------------- box-limited failures

def _named_masks(masks, h: int, w: int, basis: str) -> dict:
    """``{name: (H, W) mask or None}`` from a ``(K, H, W)`` stack (``band0..``) or a dict, checked."""
    if isinstance(masks, Mapping):
        out = {}
        for k, m in masks.items():
            if m is not None:
                m = check_mask(m, f"masks[{k!r}]", h, w)
                if basis != "dct":
                    check_dft_symmetric(m, f"masks[{k!r}]")
            out[str(k)] = m
        return out
    ms = check_mask(masks, "masks", h, w, allow_stack=True)
    ms = ms.unsqueeze(0) if ms.dim() == 2 else ms
    if basis != "dct":
        check_dft_symmetric(ms, "masks")
    return {f"band{k}": ms[k] for k in range(ms.shape[0])}

def box_limited(model: nn.Module, x: torch.Tensor, y: torch.Tensor, band: torch.Tensor | None, eps: float,
                norm: str = "l2", basis: str = "dct", steps: int = 20, step_factor: float = 2.5, seed: int = 0,
                threshold: float = 0.5) -> dict:
    """Did the ``[0, 1]`` box, rather than the model, stop the attack?

    Runs the attack of :func:`minimal_distortion`'s first try (band-limited :func:`pgd` at
    radius ``eps``, no random start, early stop, step ``step_factor * eps / steps``) and
    measures how much of its budget each image's final perturbation uses,
    ``||delta|| / eps`` in ``norm``.  A failed attack normally ends on the sphere (a used
    share near 1: the model resisted the whole budget).  A band that can barely move the
    image inside ``[0, 1]`` (a high band on an image with large saturated regions, such as
    MNIST's black background and white strokes) ends far inside: the projection onto
    band, ball and box is nearly 0.  Such an image is *box-limited*: failed and used share
    ``< threshold``.  (A model whose gradient vanished inside the band would also leave
    the budget unused; trained CNNs have no such bands, and the used share is returned so
    that it can be checked.)

    Args:
        model, x, y: as in :func:`pgd`.
        band: ``(H, W)`` mask, or ``None`` for all frequencies.
        eps: the radius, a finite number ``> 0`` (e.g. :func:`minimal_distortion`'s ``eps_max``).
        norm: ``"l2"`` (default) or ``"linf"``.
        basis: ``"dct"`` (default) or ``"dft"``.
        steps: PGD steps, ``>= 1``.
        step_factor: step size ``step_factor * eps / steps`` (default 2.5).
        seed: PGD's seed (no random start is drawn; kept for symmetry).
        threshold: used share below which a failure counts as box-limited, in ``(0, 1]``.

    Returns:
        dict of tensors: ``success`` (bool: the attack changed the prediction), ``used``
        (float, ``||x_adv - x|| / eps``) and ``limited`` (bool: failed and ``used < threshold``).

    Shape:
        - x: ``(N, C, H, W)``.
        - y: ``(N,)``.
        - Output: every entry ``(N,)``.

    Raises:
        ValueError: ``threshold`` not in ``(0, 1]``; ``eps`` not a finite number ``> 0``;
            ``steps`` not an integer ``>= 1``; and what :func:`pgd` rejects.
    """
    check_images(x, "x", unit_range=True)
    if not (isinstance(threshold, (int, float)) and 0 < threshold <= 1):
        raise ValueError(f"threshold must be in (0, 1], got {threshold!r}")
    if isinstance(eps, bool) or not isinstance(eps, (int, float)) or not math.isfinite(eps) or eps <= 0:
        raise ValueError(f"eps must be a finite number > 0, got {eps!r}")
    check_positive_int(steps, "steps")
    _, info = pgd(model, x, y, eps, norm=norm, steps=steps, step_size=step_factor * eps / steps, band=band,
                  basis=basis, random_start=False, seed=seed, early_stop=True, return_info=True)
    used = info[norm.lower()] / eps
    return {"success": info["success"], "used": used, "limited": (~info["success"]) & (used < threshold)}

def band_comparison(model: nn.Module, x: torch.Tensor, y: torch.Tensor, masks, norm: str = "l2",
                    eps_list=None, basis: str = "dct", steps: int = 20, search_steps: int = 10,
                    eps_max: float | None = None, n_boot: int = 1000, ci: float = 0.95,
                    include_full: bool = True, seed: int = 0, box_threshold: float = 0.5,
                    progress: bool = False, box: bool = True) -> dict:
    """Run :func:`compare_bands` and say, per band, how many failures the ``[0, 1]`` box explains.

    After :func:`compare_bands`, every image that resisted a band up to ``eps_max``
    (infinite minimal distortion) is attacked once more at ``eps_max`` by
    :func:`box_limited`, which tells whether the box, not the model, stopped the attack.

    Args:
        model, x, y, masks, norm, eps_list, basis, steps, search_steps, eps_max, n_boot,
            ci, include_full, seed: as in :func:`compare_bands`.
        box_threshold: :func:`box_limited`'s ``threshold``, a number in ``(0, 1]`` (checked
            before any attack runs).
        progress: show :func:`compare_bands`' progress bar (default off).
        box: keep the adversarial images in ``[0, 1]`` (default).  ``False`` runs
            :func:`compare_bands` without the box; no failure can then be the box's, so
            :func:`box_limited` is not run: ``box_limited`` is all ``False`` and
            ``budget_used`` all ``nan``.  Running both settings on the same images tells
            how much of a band's distortion (and of its failures) the box accounts for.

    Returns:
        :func:`compare_bands`' ``{name: record}``, each record extended by ``box_limited``
        (list of ``N`` bools: the image resisted up to ``eps_max`` *and* the box stopped the
        attack), ``box_limited_share`` (their share of the ``N`` images), ``budget_used``
        (list of ``N`` floats: used share of ``eps_max`` for the images that resisted,
        ``nan`` for the others) and ``box_threshold``.  JSON-ready.

    Shape:
        - x: ``(N, C, H, W)``.
        - y: ``(N,)``.
        - masks: ``(K, H, W)``, ``(H, W)`` or a dict of ``(H, W)``.

    Raises:
        TypeError, ValueError: as :func:`compare_bands`; ValueError for ``box_threshold``
            not a finite number in ``(0, 1]``.
    """
    box_threshold = check_number(box_threshold, "box_threshold", hi=1.0)     # before any attack
    _check_bool(box, "box")
    h, w = x.shape[-2:]
    recs = compare_bands(model, x, y, masks, norm=norm, eps_list=eps_list, basis=basis, steps=steps,
                         search_steps=search_steps, eps_max=eps_max, n_boot=n_boot, ci=ci,
                         include_full=include_full, seed=seed, progress=progress, box=box)
    named = _named_masks(masks, h, w, basis)
    if include_full:
        named["full"] = None
    n = x.shape[0]
    for name, rec in recs.items():
        d = torch.tensor(rec["distortions"], dtype=torch.float64)
        failed = ~torch.isfinite(d)
        lim = torch.zeros(n, dtype=torch.bool)
        used = torch.full((n,), float("nan"), dtype=torch.float64)
        if box and bool(failed.any()):
            idx = failed.nonzero().flatten().to(x.device)
            b = box_limited(model, x[idx], y[idx], named[name], rec["eps_max"], norm=norm, basis=basis,
                            steps=steps, seed=seed, threshold=box_threshold)
            lim[idx.cpu()] = b["limited"].cpu()
            used[idx.cpu()] = b["used"].detach().cpu().double()
        rec["box_limited"] = [bool(v) for v in lim]
        rec["box_limited_share"] = float(lim.double().mean())
        rec["budget_used"] = [float(v) for v in used]
        rec["box_threshold"] = float(box_threshold)
    return recs


# ----------------------------------------------------------------------------- minimal-norm attack (DDN)

def minimal_distortion_ddn(model: nn.Module, x: torch.Tensor, y: torch.Tensor, band: torch.Tensor | None = None,
                           basis: str = "dct", steps: int = 100, init_norm: float = 1.0, gamma: float = 0.05,
                           alpha: float = 1.0, alpha_min: float = 0.01, targeted: bool = False, box: bool = True,
                           proj_iters: int = 8, seed: int = 0, return_info: bool = False):
    """Per image, the smallest L2 perturbation (in a band) found by DDN: one run, no binary search.

    Decoupled Direction and Norm (Rony et al. 2019, "Decoupling direction and norm for
    efficient gradient-based L2 adversarial attacks and defenses", CVPR) moves the
    perturbation along the normalised gradient of the cross-entropy and, separately, keeps it
    on a sphere whose radius shrinks by ``(1 - gamma)`` after each step that ends
    adversarial and grows by ``(1 + gamma)`` after each that does not; the smallest
    adversarial perturbation seen is kept.  Here in the band parametrisation: the gradient
    is projected onto the band before it is normalised (the steepest in-band direction), so
    the perturbation stays in the band, and instead of DDN's "rescale, then clip to
    ``[0, 1]``" each iterate is projected onto band ∩ ball ∩ box with the projection of
    :func:`pgd` (warm-started dual iterations, see the module docstring).  Step size
    cosine-annealed from ``alpha`` to ``alpha_min`` (Rony et al.'s schedule).  An iterate
    counts as adversarial only once its out-of-band energy share is below ``1e-4``, so that
    the returned examples are in band as :func:`pgd`'s are; DDN's final 8-bit quantisation
    is left out.

    An alternative to :func:`minimal_distortion` for ``norm="l2"``: ``steps`` gradient
    evaluations in all instead of ``(search_steps + 1) * pgd_steps``, and no assumption that
    success is monotone in the radius; like it, an upper bound on the true minimal
    distortion (every value is the size of an adversarial example found).  The resolution
    is set by ``gamma`` (the radius oscillates by that factor around the boundary).

    Args:
        model: as in :func:`pgd`.
        x: images in ``[0, 1]``.
        y: labels (targets with ``targeted``), in ``[0, K)``.
        band: ``(H, W)`` mask of the band, or ``None`` (default) for all frequencies.
        basis: ``"dct"`` (default) or ``"dft"``, the basis of ``band``.
        steps: iterations, an integer ``>= 1`` (Rony et al.: 100 to 1000).
        init_norm: the first radius, a finite number ``> 0`` (Rony et al.: 1).
        gamma: the radius' multiplicative change per step, in ``(0, 1)`` (Rony et al.: 0.05).
        alpha: the first step size (L2), a finite number ``> 0``.
        alpha_min: the last step size, in ``(0, alpha]``.
        targeted: search the smallest perturbation that reaches the target labels ``y``.
        box: keep the images in ``[0, 1]`` (default); ``False`` as in :func:`pgd`.
        proj_iters: iterations of the band/ball/box projection per step, ``>= 1``.
        seed: seed of the random directions drawn for images whose gradient vanishes.
        return_info: also return a dict (below).

    Returns:
        ``(N,)`` tensor of distortions (L2, pixel space on ``[0, 1]`` images), ``x``'s
        dtype and device: ``inf`` where no adversarial example was found, ``0`` where ``x``
        is already misclassified (targeted: already classified as its target); with
        ``return_info`` the pair ``(distortions, info)``, ``info`` holding ``x_adv`` (the
        smallest adversarial examples, ``x`` where none), ``success`` (bool, from a final
        forward pass: finite distortion) and ``out_of_band`` (share of each perturbation's
        energy outside the band, below ``1e-3``; 0 without a band).

    Shape:
        - x: ``(N, C, H, W)``.
        - y: ``(N,)``.
        - band: ``(H, W)``.
        - Output: ``(N,)``; ``info["x_adv"]`` ``(N, C, H, W)``, the other entries ``(N,)``.

    Raises:
        TypeError: as :func:`pgd` for ``x``, ``y`` and ``band``.
        ValueError: as :func:`pgd` for ``x``, ``y``, ``basis``, ``band``, ``box``,
            ``proj_iters`` and the model's output; ``steps`` not an integer ``>= 1``;
            ``init_norm`` or ``alpha`` not a finite number ``> 0``; ``gamma`` not in
            ``(0, 1)``; ``alpha_min`` not in ``(0, alpha]``.

    Example:
        >>> import torch, freqkit as fk
        >>> _ = torch.manual_seed(0); model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 3))
        >>> x = torch.rand(2, 1, 8, 8); y = model(x).argmax(1); low = fk.low_high_masks(8, 8)["low"]
        >>> d, info = fk.attacks.minimal_distortion_ddn(model, x, y, band=low, steps=30, return_info=True)
        >>> info["success"].tolist(), bool((model(info["x_adv"]).argmax(1) != y).all())
        ([True, True], True)
        >>> torch.allclose((info["x_adv"] - x).flatten(1).norm(dim=1), d)
        True
    """
    check_images(x, "x", unit_range=True)
    check_basis(basis)
    n, _, h, w = x.shape
    y = check_labels(y, n, x.device)
    check_positive_int(steps, "steps")
    init_norm = check_number(init_norm, "init_norm")
    gamma = check_number(gamma, "gamma")
    if gamma >= 1:
        raise ValueError(f"gamma must be in (0, 1), got {gamma!r}")
    alpha = check_number(alpha, "alpha")
    alpha_min = check_number(alpha_min, "alpha_min", hi=alpha)
    _check_bool(box, "box")
    check_positive_int(proj_iters, "proj_iters")
    proj = None
    if band is not None:
        proj = BandProjector(check_band(band, h, w, basis), basis, x.dtype, x.device)
    x = x.detach().clamp(0.0, 1.0)
    gen = torch.Generator(device=x.device)
    gen.manual_seed(int(seed))
    if box:
        lo, hi = -x, 1.0 - x
    else:
        lo, hi = torch.full_like(x, -math.inf), torch.full_like(x, math.inf)

    def flat(v):
        return v.reshape(n, -1).norm(dim=1).view(n, 1, 1, 1)

    delta = torch.zeros_like(x)
    lam = torch.zeros_like(x)
    radius = torch.full((n, 1, 1, 1), float(init_norm), dtype=x.dtype, device=x.device)
    best = torch.full((n,), math.inf, dtype=x.dtype, device=x.device)
    best_delta = torch.zeros_like(x)
    with eval_mode(model), torch.enable_grad():
        for i in range(steps + 1):
            logits, grad = _loss_and_grad(model, x + delta, y, targeted, check_labels=(i == 0))
            with torch.no_grad():
                size = flat(delta).view(n)
                ok = _succeeded(logits, y, targeted) & (size < best)
                if proj is not None:
                    # The clip into the box leaves an out-of-band residue: only iterates whose
                    # residue is below the projection's target count, so none is discarded later.
                    ok &= out_of_band_share(delta, proj) <= SHARE_TOL
                best = torch.where(ok, size, best)
                best_delta[ok] = delta[ok]
                if i == steps:
                    break
                a = alpha_min + (alpha - alpha_min) * (1 + math.cos(math.pi * i / steps)) / 2
                g = grad if proj is None else proj(grad)
                gn = flat(g)
                dead = gn.view(n) == 0
                if bool(dead.any()):
                    # A vanished gradient gives no direction; DDN steps along a random one.
                    r = _draw(x[dead]).normal_(generator=gen)
                    g = g.clone()
                    g[dead] = r if proj is None else proj(r)
                    gn = flat(g)
                adv = _succeeded(logits, y, targeted).view(n, 1, 1, 1)
                radius = torch.where(adv, radius * (1 - gamma), radius * (1 + gamma))
                z = delta + a * g / gn.clamp_min(1e-30)
                z = z * (radius / flat(z).clamp_min(1e-30))          # onto the sphere (in band: still in band)
                if proj is None:
                    delta = torch.minimum(torch.maximum(z, lo), hi) if box else z
                else:
                    delta, _, lam = project(z, lo, hi, proj, radius, proj_iters if box else 0, lam)
    with torch.no_grad():
        found = torch.isfinite(best)
        x_adv = x + best_delta
        eps = torch.where(found, best, torch.zeros_like(best)).view(n, 1, 1, 1) * (1 + 1e-6)
        if box:
            x_adv, share, _ = finalise(x, x_adv, proj, lo, hi, eps, "l2", None)
        else:
            x_adv, share, _ = _finalise_unboxed(x, x_adv, proj, eps, "l2", None)
        with eval_mode(model):
            logits = check_model_output(model(x_adv), model)
        success = found & _succeeded(logits, y, targeted)
        x_adv = torch.where(success.view(n, 1, 1, 1), x_adv, x)
        d = torch.where(success, flat(x_adv - x).view(n), torch.full_like(best, math.inf))
    if return_info:
        return d, {"x_adv": x_adv.detach(), "success": success,
                   "out_of_band": torch.where(success, share, torch.zeros_like(share))}
    return d


# ----------------------------------------------------------------------------- convergence of the minimal distortion

def _relative_change(prev: float, last: float) -> float:
    """``|last - prev| / prev``; 0 for equal values (``inf`` and ``inf`` too), ``inf`` where undefined."""
    if prev == last:
        return 0.0
    if not (math.isfinite(prev) and math.isfinite(last)) or prev == 0:
        return math.inf
    return abs(last - prev) / prev


def _check_settings(settings) -> list:
    """``settings`` as a list of ``(steps, restarts)`` int pairs, each at least as strong as the one before."""
    try:
        pairs = [tuple(p) for p in settings]
    except TypeError:
        raise ValueError(f"settings must be a sequence of (steps, restarts) pairs, got {settings!r}") from None
    if len(pairs) < 2:
        raise ValueError(f"settings must hold at least 2 (steps, restarts) pairs to compare, got {pairs}")
    for p in pairs:
        if len(p) != 2 or any(isinstance(v, bool) or not isinstance(v, int) or v < 1 for v in p):
            raise ValueError(f"settings must hold (steps, restarts) pairs of integers >= 1, got {p!r}")
    for a, b in itertools.pairwise(pairs):
        if b[0] < a[0] or b[1] < a[1] or a == b:
            raise ValueError(f"settings must grow in strength (steps and restarts never fewer, one of them "
                             f"more than the setting before), got {a} then {b}")
    return pairs


def minimal_distortion_convergence(model: nn.Module, x: torch.Tensor, y: torch.Tensor, bands,
                                   settings: Sequence = ((20, 1), (100, 4)), tol: float = 0.05, norm: str = "l2",
                                   basis: str = "dct", eps_max: float | None = None, eps_min: float | None = None,
                                   search_steps: int = 10, step_factor: float = 2.5, box: bool = True,
                                   include_full: bool = False, seed: int = 0, n_boot: int = 1000, ci: float = 0.95,
                                   batch_size: int | None = None, progress: bool = False) -> dict:
    """Are the per-band median minimal distortions stable when the attack gets stronger?

    :func:`minimal_distortion` is an upper bound on the true minimal distortion, tight only
    if PGD finds (nearly) the smallest adversarial perturbation.  Carlini et al. 2019 ("On
    evaluating adversarial robustness") ask that an attack's result be shown to have
    converged: more iterations and more restarts must not change it.  This function runs
    the minimal-distortion search of every band at each setting ``(steps, restarts)`` of
    ``settings`` (increasing strength) and reports, per band, the median at each setting,
    the relative change of the median between the last two settings, and ``converged``
    (that change ``<= tol``).

    A setting ``(steps, restarts)`` runs ``restarts`` independent searches of ``steps`` PGD
    steps each and keeps, per image, the smallest distortion found: the first search is
    :func:`minimal_distortion`'s deterministic one (no random start, seed ``seed``), the
    r-th further one starts PGD at random points (seed ``seed + r``).  (Restarts inside each
    PGD run would break the monotonicity the binary search relies on; restarts of the whole
    search do not.)  A search that an earlier setting already ran (same ``steps`` and
    restart index) is reused.  Every search result is the size of an adversarial example
    that was found, so the per-image minimum over *all* settings (``best``) is also an
    upper bound of the true minimal distortion, the tightest one available: it is reported
    with its median, interval and distribution.

    Args:
        model, x, y: as in :func:`pgd` (``y`` the true labels).
        bands: a ``(K, H, W)`` (or ``(H, W)``) stack of masks (named ``band0``, ...), e.g.
            :func:`freqkit.equal_count_band_masks` with ``exclude_dc=True``, or a ``{name:
            (H, W) mask or None}`` dict (``None``: all frequencies), e.g.
            :func:`freqkit.transforms.low_block_masks`.
        settings: at least 2 pairs ``(steps, restarts)`` of integers ``>= 1`` in increasing
            strength: neither number ever smaller than in the setting before, one of them
            larger (e.g. ``((20, 1), (100, 4))``).
        tol: the tolerance of ``converged`` on the relative change of the median, a number
            in ``(0, 1]`` (default 0.05: 5%).
        norm: ``"l2"`` (default) or ``"linf"``.
        basis: ``"dct"`` (default) or ``"dft"``, the basis of the masks.
        eps_max, eps_min, search_steps, step_factor: the search of
            :func:`minimal_distortion` (defaults as there).
        box: keep the adversarial images in ``[0, 1]`` (default); ``False`` as in
            :func:`minimal_distortion`.
        include_full: also the unconstrained attack, as ``"full"`` (default ``False``).
        seed: seed of the searches (and of the bootstrap).
        n_boot: bootstrap resamples of the intervals, an integer ``>= 1``.
        ci: confidence level of the intervals, in ``(0, 1)``.
        batch_size: images per PGD call (:func:`minimal_distortion`), ``None``: all.
        progress: show a progress bar over bands and settings (on a terminal).

    Returns:
        ``{name: record}``, JSON-ready (plain floats, bools and lists), each record with:
        ``settings`` (list of ``[steps, restarts]``); per setting, in that order,
        ``medians`` (:func:`freqkit.median_with_inf` over images; ``inf`` when most images
        resisted up to ``eps_max``), ``ci_low``/``ci_high`` (percentile bootstrap of the
        median, :func:`freqkit.bootstrap_ci` with ``rule="outward"``), ``distortions``
        (``N`` values each) and ``seconds`` (wall time spent on that setting's new
        searches); ``relative_change`` (of the median between the last two settings:
        ``|m_last - m_prev| / m_prev``, 0 when equal, also both ``inf``, and ``inf`` when one
        of them is ``inf`` or ``m_prev`` is 0), ``converged`` (``relative_change <= tol``),
        ``share_improved`` (share of images whose distortion at the last setting is below
        ``(1 - tol)`` times the one before, or finite where it was ``inf``: the median can be
        stable while single images still move); ``best`` (``N`` per-image minima over all
        settings), ``median_best``, ``best_ci_low``, ``best_ci_high``, ``best_summary``
        (:func:`freqkit.distribution_summary` of ``best``); and the setting: ``tol``,
        ``norm``, ``basis``, ``box``, ``eps_max``, ``search_steps``, ``n``,
        ``n_coefficients`` (``H * W`` for ``"full"``).

    Shape:
        - x: ``(N, C, H, W)``.
        - y: ``(N,)``.
        - bands: ``(K, H, W)``, ``(H, W)`` or a dict of ``(H, W)``.

    Raises:
        TypeError: a mask that is not a tensor (or ``None`` in a dict).
        ValueError: ``settings`` not a sequence of at least 2 increasing ``(steps,
            restarts)`` pairs of integers ``>= 1``; ``tol`` not in ``(0, 1]``; a bad mask
            (shape, values, empty, DFT symmetry); a band named ``"full"`` with
            ``include_full``; ``n_boot`` not an integer ``>= 1``; ``ci`` not in ``(0, 1)``;
            ``eps_max`` not a finite number ``> 0``; ``box`` not a bool (all before any
            attack runs); and what :func:`minimal_distortion` rejects.

    Example:
        >>> import torch, freqkit as fk
        >>> _ = torch.manual_seed(0); model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 3))
        >>> x = torch.rand(4, 1, 8, 8); y = model(x).argmax(1)
        >>> bands = fk.equal_count_band_masks(8, 8, 2, exclude_dc=True)
        >>> rec = fk.attacks.minimal_distortion_convergence(model, x, y, bands, settings=[(5, 1), (10, 2)],
        ...                                                 search_steps=4, n_boot=50)
        >>> list(rec), rec["band0"]["settings"], len(rec["band0"]["medians"]), len(rec["band0"]["best"])
        (['band0', 'band1'], [[5, 1], [10, 2]], 2, 4)
        >>> all(b <= d for b, d in zip(rec["band0"]["best"], rec["band0"]["distortions"][-1]))
        True
    """
    check_images(x, "x", unit_range=True)
    norm = check_norm(norm)
    check_basis(basis)
    h, w = x.shape[-2:]
    pairs = _check_settings(settings)
    tol = check_number(tol, "tol", hi=1.0)
    named = _named_masks(bands, h, w, basis)
    if not named:
        raise ValueError("bands must hold at least one band")
    if include_full:
        if "full" in named:
            raise ValueError("bands already has a band named 'full'; rename it or pass include_full=False")
        named["full"] = None
    check_positive_int(n_boot, "n_boot")
    if isinstance(ci, bool) or not isinstance(ci, (int, float)) or not 0 < ci < 1:
        raise ValueError(f"ci must be in (0, 1), got {ci!r}")
    _check_bool(box, "box")
    eps_max = check_number(_default_eps_max(x, norm) if eps_max is None else eps_max, "eps_max")

    def interval(v):
        lo, hi = bootstrap_ci(v, median_with_inf, n_boot=n_boot, ci=ci, seed=seed, rule="outward")
        return float(lo), float(hi)

    out = {}
    work = [(name, k) for name in named for k in range(len(pairs))]
    bar = progress_bar(work, enabled=progress, desc="convergence")
    runs: dict = {}
    per_setting: dict = {}
    seconds: dict = {}
    for name, k in bar:
        m = named[name]
        steps, restarts = pairs[k]
        t0 = time.perf_counter()
        found = []
        for r in range(restarts):
            key = (name, steps, r)
            if key not in runs:
                runs[key] = minimal_distortion(
                    model, x, y, band=m, norm=norm, basis=basis, eps_max=eps_max, eps_min=eps_min,
                    search_steps=search_steps, pgd_steps=steps, step_factor=step_factor, random_start=r > 0,
                    restarts=1, seed=seed + r, batch_size=batch_size, progress=False, box=box,
                ).detach().cpu().double().numpy()
            found.append(runs[key])
        per_setting[name, k] = np.min(np.stack(found), axis=0)
        seconds[name, k] = time.perf_counter() - t0
    if progress and hasattr(bar, "close"):
        bar.close()
    for name, m in named.items():
        ds = [per_setting[name, k] for k in range(len(pairs))]
        medians = [float(median_with_inf(d)) for d in ds]
        cis = [interval(d) for d in ds]
        prev, last = ds[-2], ds[-1]
        with np.errstate(invalid="ignore"):
            improved = np.where(np.isinf(prev), np.isfinite(last), last < (1.0 - tol) * prev)
        best = np.min(np.stack(ds), axis=0)
        change = _relative_change(medians[-2], medians[-1])
        b_lo, b_hi = interval(best)
        out[name] = {
            "settings": [list(p) for p in pairs],
            "medians": medians,
            "ci_low": [c[0] for c in cis], "ci_high": [c[1] for c in cis],
            "distortions": [[float(v) for v in d] for d in ds],
            "seconds": [float(seconds[name, k]) for k in range(len(pairs))],
            "relative_change": change,
            "converged": bool(change <= tol),
            "share_improved": float(improved.mean()),
            "best": [float(v) for v in best],
            "median_best": float(median_with_inf(best)),
            "best_ci_low": b_lo, "best_ci_high": b_hi,
            "best_summary": distribution_summary(best),
            "tol": tol, "norm": norm, "basis": basis, "box": box, "eps_max": float(eps_max),
            "search_steps": search_steps, "n": int(x.shape[0]),
            "n_coefficients": int(m.sum()) if m is not None else h * w,
        }
    return out


# ----------------------------------------------------------------------------- examples at one radius

def band_examples(model: nn.Module, x: torch.Tensor, y: torch.Tensor, masks, eps: float, norm: str = "l2",
                  basis: str = "dct", steps: int = 20, seed: int = 0, include_full: bool = True,
                  smooth: dict | None = None) -> dict:
    """Perturbations of every band at one radius ``eps``: the equal-distortion picture.

    Runs band-limited :func:`pgd` per band *without* early stopping and without a random
    start, so that every perturbation spends (up to the box) the same budget, and
    optionally a smooth adversarial example (:func:`smooth_pgd`, Zhang et al. 2019) at the
    same radius.

    Args:
        model, x, y: as in :func:`pgd`.
        masks: a ``(K, H, W)`` (or ``(H, W)``) stack (names ``band0``, ...) or a
            ``{name: (H, W) mask or None}`` dict (``None``: all frequencies).
        eps: the radius, in ``norm``.
        norm: ``"l2"`` (default) or ``"linf"``.
        basis: ``"dct"`` (default) or ``"dft"``.
        steps: PGD steps.
        seed: PGD's seed.
        include_full: also the unconstrained attack, as ``"full"``.
        smooth: keyword arguments of :func:`smooth_pgd` (e.g. ``{}`` or ``{"alpha": 0.9}``)
            to add a smooth example as ``"smooth"``; ``None`` (default): none.

    Returns:
        ``{name: record}``, names the bands' (``band0``, ... or the dict's keys), ``"full"``
        and ``"smooth"``; each record holds CPU tensors ``x_adv``, ``delta`` (``x_adv - x``),
        ``success`` (bool), ``pred`` (predicted class at ``x_adv``), ``l2``, ``linf``,
        ``out_of_band`` (0 for ``"smooth"``) and, for ``"smooth"``, ``dirichlet`` (the
        normalised graph Dirichlet energy of ``delta``).

    Shape:
        - x: ``(N, C, H, W)``.
        - y: ``(N,)``.
        - Output: ``x_adv``, ``delta`` ``(N, C, H, W)``; every other entry ``(N,)``.

    Raises:
        TypeError: a mask that is not a tensor or ``None``; an unknown key in ``smooth``.
        ValueError: a bad mask (shape, values, empty, DFT symmetry), and what :func:`pgd`
            and :func:`smooth_pgd` reject.
    """
    check_images(x, "x", unit_range=True)
    h, w = x.shape[-2:]
    named = _named_masks(masks, h, w, basis)
    if include_full:
        named["full"] = None
    out = {}
    for name, m in named.items():
        xa, info = pgd(model, x, y, eps, norm=norm, steps=steps, band=m, basis=basis, random_start=False,
                       seed=seed, early_stop=False, return_info=True)
        out[name] = _example_record(x, xa, info)
    if smooth is not None:
        xa, info = smooth_pgd(model, x, y, eps, norm=norm, steps=steps, seed=seed, early_stop=False,
                              return_info=True, **smooth)
        info = {**info, "out_of_band": torch.zeros(x.shape[0])}
        out["smooth"] = _example_record(x, xa, info)
    return out

def _check_variants(examples: Mapping, names, what: str) -> None:
    """Raise unless ``examples`` (of :func:`band_examples`) holds every name of ``names``."""
    if not isinstance(examples, Mapping):
        raise TypeError(f"examples must be the dict of band_examples, got {type(examples).__name__}")
    if not names:
        raise ValueError(f"{what} must name at least one example")
    missing = [v for v in names if v not in examples]
    if missing:
        raise ValueError(f"{what}: no example named {', '.join(map(repr, missing))}; band_examples made "
                         f"{', '.join(map(repr, examples))} (pass smooth={{}} to it for 'smooth')")

def example_spectra(examples: Mapping, variants: Mapping, n_bands: int, basis: str = "dct") -> tuple[dict, list]:
    """Mean radial energy profile of :func:`band_examples` perturbations.

    For each chosen example, the share of each perturbation's energy in each of ``n_bands``
    equal-width radial bands (:func:`freqkit.band_masks`, :func:`freqkit.band_energy`),
    averaged over the images: where in frequency each attack puts its energy.

    Args:
        examples: the dict returned by :func:`band_examples`.
        variants: ``{example name: label}``, e.g. ``{"full": "PGD (full band)"}``; at
            least one.
        n_bands: number of radial bands, ``>= 1``.
        basis: ``"dct"`` (default) or ``"dft"``: the basis the energy is measured in.

    Returns:
        ``(spectra, centres)``: ``spectra`` ``{label: list of n_bands floats}`` (shares of
        energy, summing to 1 for a nonzero perturbation), ``centres`` (list of
        ``n_bands`` floats: each band's mean normalised radius, x Nyquist).

    Raises:
        TypeError: ``examples`` not a mapping.
        ValueError: ``variants`` empty or naming a missing example; ``n_bands`` not an
            integer ``>= 1`` or leaving a band empty; ``basis``.
    """
    _check_variants(examples, variants, "variants")
    first = examples[next(iter(variants))]["delta"]
    h, w = first.shape[-2:]
    sm = band_masks(h, w, n_bands, kind="radial", basis=basis)
    r = frequency_radius(h, w, basis)
    centres = [float(r[m].mean()) for m in sm]
    spectra = {label: band_energy(examples[v]["delta"], basis, masks=sm).mean(0).tolist()
               for v, label in variants.items()}
    return spectra, centres

def smooth_summary(examples: Mapping, masks: torch.Tensor, variants=("full", "band0", "smooth"),
                   basis: str = "dct") -> dict:
    """Compare smooth PGD with full-band and lowest-band PGD at the same radius (:func:`band_examples`).

    Args:
        examples: the dict of :func:`band_examples`, made with ``smooth=`` (so that it
            holds ``"smooth"``).
        masks: the bands, ``(K, H, W)`` (or ``(H, W)``); ``masks[0]`` is the lowest band
            whose energy share is reported.
        variants: example names to report (default ``("full", "band0", "smooth")``).
        basis: ``"dct"`` (default) or ``"dft"``.

    Returns:
        dict: ``lowest_band_energy_share`` ``{variant: mean share of the perturbation's
        energy in masks[0]}``, ``dirichlet_smooth`` (mean normalised graph Dirichlet energy
        of the smooth perturbations, :meth:`LaplacianSmoothing.dirichlet_energy`) and
        ``success_<variant>`` (success rate of each variant), all floats.

    Raises:
        TypeError: ``examples`` not a mapping; ``masks`` not a tensor.
        ValueError: ``variants`` empty or naming a missing example, or ``examples`` without
            ``"smooth"``; a bad mask.
    """
    _check_variants(examples, tuple(variants) + ("smooth",), "variants (and 'smooth')")
    low = {v: float(band_energy(examples[v]["delta"], basis, masks=masks)[:, 0].mean()) for v in variants}
    out = {"lowest_band_energy_share": low, "dirichlet_smooth": float(examples["smooth"]["dirichlet"].mean())}
    out.update({f"success_{v}": float(examples[v]["success"].float().mean()) for v in variants})
    return out

def _example_record(x, xa, info) -> dict:
    """One :func:`band_examples` record: the attack's result and diagnostics as CPU tensors."""
    rec = {"x_adv": xa.detach().cpu(), "delta": (xa - x).detach().cpu(), "success": info["success"].cpu(),
           "pred": info["logits"].argmax(1).cpu(), "l2": info["l2"].detach().cpu(),
           "linf": info["linf"].detach().cpu(), "out_of_band": info["out_of_band"].detach().cpu()}
    if "dirichlet" in info:
        rec["dirichlet"] = info["dirichlet"].detach().cpu()
    return rec


# ----------------------------------------------------------------------------- smooth adversarial examples

_OFFSETS = {4: ((0, 1), (1, 0)), 8: ((0, 1), (1, 0), (1, 1), (1, -1))}


class LaplacianSmoothing:
    """Graph-Laplacian smoothing along an image's own structure (Zhang et al. 2019).

    After Zhang et al. 2019, "Smooth adversarial examples".  The graph of image ``x`` has
    one node per pixel and edges to the 4 or 8 spatial neighbours (no wrap-around) with
    affinities ``w_ij = exp(-||x_i - x_j||^2 / sigma^2)`` (``x_i`` the colour vector of
    pixel i), so that pixels across an edge of the image are barely coupled.  With ``D``
    the degree matrix, ``W_n = D^{-1/2} W D^{-1/2}`` and
    ``L_alpha = (I - alpha W_n) / (1 - alpha)``, smoothing ``v`` means solving
    ``L_alpha r = v``: ``r`` minimises ``alpha r^T (I - W_n) r + (1 - alpha) ||r - v||^2``
    (Zhou et al. 2004's regularised Laplacian), is smooth where the image is flat and may
    change sharply across its edges.  ``L_alpha`` is symmetric positive definite with
    eigenvalues in ``[1, (1 + alpha) / (1 - alpha)]``, so conjugate gradients converge fast;
    the same graph smooths every channel.

    Calling the object on ``v`` (or on a subset ``idx`` of the images) returns
    ``L_alpha^{-1} v`` (``v`` itself when ``alpha == 0``); :meth:`laplacian` applies
    ``L_alpha`` and :meth:`dirichlet_energy` measures smoothness on the graph.

    Args:
        x: the images whose graphs are built, float ``(N, C, H, W)`` (any range).
        alpha: smoothing strength in ``[0, 1)``; 0 is no smoothing, larger is smoother.
        sigma: colour scale of the affinities, ``> 0``; default ``None``: per image, the
            RMS colour difference over the graph's edges (so the weights adapt to the
            image's contrast).
        neighbors: 4 or 8 (default) neighbours per pixel.
        cg_iters: maximum conjugate-gradient iterations, ``>= 1``.
        tol: CG stops once every (image, channel) residual is below ``tol`` times its
            initial norm.

    Shape:
        - x: ``(N, C, H, W)``.
        - v (call, :meth:`laplacian`): ``(N, C', H, W)``, or ``(len(idx), C', H, W)`` with
          ``idx``; output: the same shape.
        - :meth:`dirichlet_energy`: ``(N,)`` (or ``(len(idx),)``).

    Raises:
        TypeError: ``x`` not a floating-point tensor.
        ValueError: ``x`` not 4-D or not finite; ``alpha`` not in ``[0, 1)``; ``neighbors``
            not 4 or 8; ``sigma`` not ``> 0`` or ``None``; ``cg_iters`` not an integer ``>= 1``.
    """

    def __init__(self, x: torch.Tensor, alpha: float = 0.95, sigma: float | None = None, neighbors: int = 8,
                 cg_iters: int = 50, tol: float = 1e-4):
        check_images(x, "x")
        if not (isinstance(alpha, (int, float)) and 0 <= alpha < 1):
            raise ValueError(f"alpha must be in [0, 1), got {alpha!r}")
        if neighbors not in _OFFSETS:
            raise ValueError(f"neighbors must be 4 or 8, got {neighbors!r}")
        if sigma is not None and not (isinstance(sigma, (int, float)) and sigma > 0):
            raise ValueError(f"sigma must be a number > 0 or None, got {sigma!r}")
        check_positive_int(cg_iters, "cg_iters")
        self.alpha, self.cg_iters, self.tol = float(alpha), cg_iters, tol
        n, _, h, w = x.shape
        d2s = []
        for dy, dx in _OFFSETS[neighbors]:
            nb = torch.roll(x, shifts=(-dy, -dx), dims=(-2, -1))
            d2 = (x - nb).pow(2).sum(1)                                    # (N, H, W)
            valid = torch.ones(h, w, dtype=torch.bool, device=x.device)
            if dy > 0:
                valid[h - dy:, :] = False
            if dx > 0:
                valid[:, w - dx:] = False
            if dx < 0:
                valid[:, :-dx] = False
            d2s.append((d2, valid))
        if sigma is None:
            tot = sum((d2 * v).sum((1, 2)) for d2, v in d2s)
            cnt = sum(v.sum() for _, v in d2s)
            s2 = (tot / cnt).clamp_min(1e-6).view(n, 1, 1)
        else:
            s2 = torch.full((n, 1, 1), float(sigma) ** 2, dtype=x.dtype, device=x.device)
        self.offsets = _OFFSETS[neighbors]
        self.weights = [torch.exp(-d2 / s2) * v for d2, v in d2s]             # each (N, H, W)
        deg = torch.zeros(n, h, w, dtype=x.dtype, device=x.device)
        for (dy, dx), wt in zip(self.offsets, self.weights):
            deg = deg + wt + torch.roll(wt, shifts=(dy, dx), dims=(-2, -1))
        self.dinv = deg.clamp_min(1e-12).rsqrt()

    def _wn(self, v, idx):
        """``W_n v`` for ``v`` ``(n, C, H, W)``; the roll's wrap-around terms carry zero weight."""
        dinv = self.dinv if idx is None else self.dinv[idx]
        u = v * dinv[:, None]
        out = torch.zeros_like(v)
        for (dy, dx), wt in zip(self.offsets, self.weights):
            wt = (wt if idx is None else wt[idx])[:, None]
            out = out + wt * torch.roll(u, shifts=(-dy, -dx), dims=(-2, -1))
            out = out + torch.roll(wt * u, shifts=(dy, dx), dims=(-2, -1))
        return out * dinv[:, None]

    def laplacian(self, v, idx=None):
        """``L_alpha v`` for ``v`` of all images (``idx=None``) or of the images ``idx`` (an index tensor)."""
        return (v - self.alpha * self._wn(v, idx)) / (1 - self.alpha)

    def dirichlet_energy(self, v, idx=None) -> torch.Tensor:
        """``v^T (I - W_n) v / v^T v`` per image, in ``[0, 2]``: 0 for perfectly smooth on the graph.

        Summed over channels; 0 for an all-zero ``v``.  ``idx`` as in :meth:`laplacian`.
        """
        n = v.shape[0]
        num = (v * (v - self._wn(v, idx))).reshape(n, -1).sum(1)
        den = v.reshape(n, -1).pow(2).sum(1)
        return torch.where(den > 0, num / den.clamp_min(1e-38), torch.zeros_like(den))

    def __call__(self, v: torch.Tensor, idx=None) -> torch.Tensor:
        """Solve ``L_alpha r = v`` by conjugate gradients, batched over images and channels.

        ``idx``: ``None`` (``v`` holds every image) or an index tensor of the images ``v`` holds.
        """
        if self.alpha == 0:
            return v
        r = torch.zeros_like(v)
        res = v.clone()
        p = res.clone()
        rs = res.pow(2).sum((-2, -1), keepdim=True)
        stop = (self.tol ** 2) * rs.clamp_min(1e-38)
        for _ in range(self.cg_iters):
            ap = self.laplacian(p, idx)
            a = rs / (p * ap).sum((-2, -1), keepdim=True).clamp_min(1e-38)
            r = r + a * p
            res = res - a * ap
            rs_new = res.pow(2).sum((-2, -1), keepdim=True)
            if bool((rs_new <= stop).all()):
                break
            p = res + (rs_new / rs.clamp_min(1e-38)) * p
            rs = rs_new
        return r


def smooth_pgd(model: nn.Module, x: torch.Tensor, y: torch.Tensor, eps, norm: str = "l2", steps: int = 20,
               step_size=None, alpha: float = 0.95, sigma: float | None = None, neighbors: int = 8,
               cg_iters: int = 50, random_start: bool = False, targeted: bool = False, seed: int | None = None,
               early_stop: bool = True, return_info: bool = False):
    """Smooth adversarial examples after Zhang et al. 2019 ("Smooth adversarial examples").

    Definition: a perturbation is *smooth* when it is smooth along the image's own
    structure: flat where the image is flat, free to change across the image's edges.
    Zhang et al. make this precise with the graph of the image (pixels, neighbour edges
    weighted by colour affinity) and its regularised Laplacian ``L_alpha`` (see
    :class:`LaplacianSmoothing`): an attack is smoothed by passing its update through
    ``L_alpha^{-1}``, a low-pass filter *on the image graph* (not in the Fourier domain).
    Our version of their sPGD: every PGD step (Madry et al. 2018) moves along the smoothed
    gradient ``L_alpha^{-1} grad`` (computed by conjugate gradients), normalised to unit L2
    norm (``norm="l2"``, the setting of the paper) or unit Linf norm (``"linf"``: ``sign``
    would undo the smoothing); the perturbation, a sum of smoothed steps, is then
    projected onto the eps-ball (a rescaling for L2, which keeps it smooth; a clip for
    Linf) and the image clipped to ``[0, 1]`` (which can break smoothness on saturated
    pixels, as in the paper).  A random start is smoothed too (Linf: then rescaled to Linf
    norm ``eps``).  ``info["dirichlet"]`` measures the smoothness of the result on the graph.

    Args:
        model, x, y, eps, norm, steps, step_size, random_start, targeted, seed, early_stop:
            as in :func:`pgd` (no band, no restarts); ``norm`` defaults to ``"l2"`` and
            ``random_start`` to ``False`` here.
        alpha: smoothing strength in ``[0, 1)``.  0 is no smoothing: for L2 exactly
            :func:`pgd`'s (torchattacks') steps, for Linf steps along ``grad / max|grad|``
            instead of ``sign(grad)``, so not plain Linf PGD.
        sigma, neighbors, cg_iters: the graph and its solver (:class:`LaplacianSmoothing`).
        return_info: also return a dict of per-image diagnostics (below).

    Returns:
        ``x_adv`` (detached) in ``[0, 1]`` and in the eps-ball; with ``return_info`` the
        pair ``(x_adv, info)``, ``info`` holding ``success``, ``l2``, ``linf``,
        ``iterations`` and ``logits`` as in :func:`pgd` (no ``out_of_band`` or
        ``projection``), plus ``dirichlet``, the normalised graph Dirichlet energy of
        ``x_adv - x`` (:meth:`LaplacianSmoothing.dirichlet_energy`, in ``[0, 2]``).

    Shape:
        - x: ``(N, C, H, W)``.
        - y: ``(N,)``.
        - Output: ``x_adv`` ``(N, C, H, W)``; ``info["logits"]`` ``(N, K)``; every other
          ``info`` entry ``(N,)``.

    Raises:
        TypeError: ``x`` not a floating-point tensor, ``y`` not an integer tensor.
        ValueError: as :func:`pgd` for ``x`` (also holding no image), ``y``, ``norm``,
            ``eps``, ``steps``, ``step_size`` and the model's output (2-D, finite); as
            :class:`LaplacianSmoothing` for ``alpha``, ``sigma``, ``neighbors`` and
            ``cg_iters``.
    """
    check_images(x, "x", unit_range=True)
    norm = check_norm(norm)
    n = x.shape[0]
    y = check_labels(y, n, x.device)
    eps_t = check_eps(eps, n, x)
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 0:
        raise ValueError(f"steps must be an integer >= 0, got {steps!r}")
    alpha_t = _step_sizes(step_size, eps_t, steps, x)
    x = x.detach().clamp(0.0, 1.0)
    smoother = LaplacianSmoothing(x, alpha=alpha, sigma=sigma, neighbors=neighbors, cg_iters=cg_iters)
    gen = None
    if seed is not None:
        gen = torch.Generator(device=x.device)
        gen.manual_seed(int(seed))
    with eval_mode(model), torch.enable_grad():
        x_adv, n_iter, _ = _pgd_once(model, x, y, eps_t, norm, steps, alpha_t, None, None, None, random_start,
                                     targeted, gen, early_stop, 1, smoother=smoother)
        if not return_info:
            return x_adv.detach()
        with torch.no_grad():
            logits = check_model_output(model(x_adv), model)
    check_label_range(y, logits.shape[1])
    info = {
        **_outcome(x, x_adv, logits, y, targeted),
        "iterations": n_iter,
        "dirichlet": smoother.dirichlet_energy(x_adv - x),
        "logits": logits,
    }
    return x_adv.detach(), info


def suite_band_distortion(models: Sequence[nn.Module], x: torch.Tensor, y: torch.Tensor, bands: Mapping,
                          settings: Sequence = ((20, 1), (100, 4)), eps_max: float | None = None,
                          search_steps: int = 10, seed: int = 0) -> dict:
    """Per-band minimal L2 distortion of a suite (one model per training seed), with its two checks.

    The measurement behind the equal-distortion comparison of bands (H3): for every model,
    :func:`minimal_distortion_convergence` over ``bands`` at the ``settings`` of increasing
    strength (per image the smallest distortion any search found, and whether the medians
    moved between the last two settings); and for the first model the same search with the
    ``[0, 1]`` box relaxed (``box=False``, ``pgd_steps`` of the last setting), which
    separates what the box costs from what the model resists: an image that resists every
    search in the box but flips once the attack may leave it is *box-limited*.

    Args:
        models: the suite: ``nn.Module`` classifiers on ``[0, 1]`` images, at least one.
        x: images in ``[0, 1]`` (typically those every model classifies correctly).
        y: their labels.
        bands: ``{name: (H, W) DCT mask}``, e.g. the lowest and highest equal-count bands
            and a low block (:func:`freqkit.transforms.low_block_masks`).
        settings: ``(steps, restarts)`` pairs of increasing strength, as in
            :func:`minimal_distortion_convergence`.
        eps_max: the search's largest L2 radius (``None``: :func:`minimal_distortion`'s
            default).
        search_steps: bisections of each search, an integer ``>= 0``.
        seed: seed of the searches.

    Returns:
        dict: ``best`` ``{band: (S, N) float ndarray}`` (per seed and image, ``inf`` where
        nothing flipped the image); ``medians``, ``converged`` and
        ``relative_change_per_seed`` ``{band: list over seeds}`` (from
        :func:`minimal_distortion_convergence`); ``relative_change`` ``{band: the largest
        over seeds}``; ``relaxed`` ``{band: (N,) ndarray}`` and ``relaxed_median`` ``{band:
        float}`` (first model, box relaxed); ``box_limited_share`` ``{band: share of the
        images that resist in the box on the first model but flip with it relaxed}``.

    Shape:
        - x: ``(N, C, H, W)``; y: ``(N,)``; each band ``(H, W)``.

    Raises:
        ValueError: ``models`` empty, ``bands`` not a non-empty dict; and what
            :func:`minimal_distortion_convergence` and :func:`minimal_distortion` reject.
    """
    models = list(models)
    if not models:
        raise ValueError("models must hold at least one model (one per seed), got none")
    if not isinstance(bands, Mapping) or not bands:
        raise ValueError(f"bands must be a non-empty dict {{name: (H, W) mask}}, got {type(bands).__name__}")
    runs = [minimal_distortion_convergence(m, x, y, bands, settings=settings, eps_max=eps_max,
                                           search_steps=search_steps, seed=seed) for m in models]
    best = {b: np.array([r[b]["best"] for r in runs], dtype=float) for b in bands}
    per_seed = {b: [r[b]["relative_change"] for r in runs] for b in bands}
    relaxed = {b: minimal_distortion(models[0], x, y, m, eps_max=eps_max, search_steps=search_steps,
                                     pgd_steps=int(settings[-1][0]), progress=False, box=False).cpu().numpy()
               for b, m in bands.items()}
    return {"best": best,
            "medians": {b: [r[b]["medians"] for r in runs] for b in bands},
            "converged": {b: [r[b]["converged"] for r in runs] for b in bands},
            "relative_change_per_seed": per_seed,
            "relative_change": {b: max(float(v) for v in per_seed[b]) for b in bands},
            "relaxed": relaxed, "relaxed_median": {b: float(np.median(v)) for b, v in relaxed.items()},
            "box_limited_share": {b: float((np.isinf(best[b][0]) & np.isfinite(relaxed[b])).mean()) for b in bands}}
