"""Frequency-constrained adversarial attacks, minimal distortion per band, Fourier heat maps.

Everything here takes any ``nn.Module`` classifier that maps images ``(N, C, H, W)`` with
pixels in ``[0, 1]`` to logits ``(N, K)`` (normalisation is a layer inside the model, see
DESIGN.md), runs on the images' device, and is batched.

* :func:`pgd`: projected gradient descent (Madry et al. 2018) whose perturbation lives in a
  frequency band, a DCT mask or a symmetric mask on the centred DFT grid: the low-frequency
  attacks of Guo et al. 2018 and Sharma et al. 2019, with the projection done right.  The
  returned ``x_adv`` lies in ``[0, 1]``, in the eps-ball, *and* in the band.
* :func:`minimal_distortion`, :func:`success_curve`, :func:`compare_bands`: the
  equal-distortion comparison of bands that Sharma et al. 2019 left open.
* :func:`fourier_heatmap`: the Fourier heat map of Yin et al. 2019.
* :func:`smooth_pgd`: smooth adversarial examples after Zhang et al. 2019 (graph-Laplacian
  smoothing along the image's own structure), and :func:`perturbation_spectrum` to compare
  the spectra of perturbations.

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

import math
from typing import Mapping, Sequence

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from ._validate import check_choice, check_images, check_mask, check_positive_int, check_tensor
from .transforms import band_masks, check_dft_symmetric, dct2, dct_matrix, dht2, idht2

__all__ = [
    "pgd", "minimal_distortion", "success_curve", "compare_bands", "fourier_heatmap",
    "smooth_pgd", "LaplacianSmoothing", "perturbation_spectrum", "band_projector",
    "fourier_basis_images",
]

_NORMS = ("linf", "l2")
_BASES = ("dct", "dft", "dht")
#: Out-of-band energy share above which an image's projection is refined (the target is 1e-3).
_SHARE_TOL = 1e-4
#: The guarantee: no returned perturbation has a larger out-of-band energy share.
_SHARE_MAX = 1e-3
#: Iterations of the final re-projection of images whose share is above _SHARE_TOL.
_REFINE_ITERS = 300


# ----------------------------------------------------------------------------- input checks

def _check_norm(norm) -> str:
    n = norm.lower() if isinstance(norm, str) else norm
    return check_choice(n, "norm", _NORMS)


def _check_eps(eps, n: int, like: torch.Tensor, name: str = "eps") -> torch.Tensor:
    """eps as a float or an ``(N,)`` tensor of per-image radii -> ``(N, 1, 1, 1)`` tensor."""
    if isinstance(eps, torch.Tensor):
        check_tensor(eps, name, floating=False)
        if eps.dim() == 0:
            eps = eps.reshape(1).expand(n)
        if eps.dim() != 1 or eps.shape[0] != n:
            raise ValueError(f"{name} must be a number or a tensor of shape ({n},), got shape {tuple(eps.shape)}")
        e = eps.to(device=like.device, dtype=like.dtype)
    else:
        if isinstance(eps, bool) or not isinstance(eps, (int, float)) or not math.isfinite(eps):
            raise ValueError(f"{name} must be a finite number >= 0, got {eps!r}")
        e = torch.full((n,), float(eps), device=like.device, dtype=like.dtype)
    if not bool(torch.isfinite(e).all()) or bool((e < 0).any()):
        raise ValueError(f"{name} must be finite and >= 0, got min {float(e.min()):.4g}")
    return e.view(n, 1, 1, 1)


def _check_labels(y, n: int, device) -> torch.Tensor:
    if not isinstance(y, torch.Tensor):
        raise TypeError(f"y must be a torch.Tensor of class indices, got {type(y).__name__}")
    if y.dtype == torch.bool or y.is_floating_point() or y.is_complex():
        raise TypeError(f"y must hold integer class indices, got dtype {y.dtype}")
    if y.dim() != 1 or y.shape[0] != n:
        raise ValueError(f"y must have shape ({n},) to match x, got {tuple(y.shape)}")
    return y.to(device=device, dtype=torch.long)


def _check_label_range(y: torch.Tensor, n_classes: int, name: str = "y") -> None:
    if y.numel() and (int(y.min()) < 0 or int(y.max()) >= n_classes):
        raise ValueError(f"{name} must hold class indices in [0, {n_classes - 1}] (the model has "
                         f"{n_classes} outputs), got range [{int(y.min())}, {int(y.max())}]")


def _check_band(band, h: int, w: int, basis: str, name: str = "band") -> torch.Tensor:
    m = check_mask(band, name, h, w)
    if basis != "dct":
        check_dft_symmetric(m, name)
    return m


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
    a = _check_eps(step_size, x.shape[0], x, "step_size")
    if bool((a <= 0).any()):
        raise ValueError("step_size must be > 0")
    return a


class _EvalMode:
    """Attack in eval mode (BatchNorm statistics frozen, dropout off) and restore afterwards,
    as torchattacks does, so that an attack never changes the model it attacks."""

    def __init__(self, model: nn.Module):
        self.model = model

    def __enter__(self):
        self.was_training = self.model.training
        self.model.eval()
        return self.model

    def __exit__(self, *exc):
        self.model.train(self.was_training)
        return False


# ----------------------------------------------------------------------------- band projector

class _BandProjector:
    """Orthogonal projection onto the band subspace ``S`` of perturbations ``(..., H, W)``.

    DCT: ``D_h^T (M * (D_h v D_w^T)) D_w`` with the cached DCT matrices of
    :func:`freqkit.dct_matrix` (four small matmuls).  DFT: ``irfft2(rfft2(v) * M)``: with a mask symmetric under
    ``f -> -f`` this is the exact real projection onto the span of the kept DFT frequencies,
    the same subspace as the DHT coefficients under the mask.
    """

    def __init__(self, mask: torch.Tensor, basis: str, dtype, device):
        h, w = mask.shape
        self.h, self.w, self.basis = h, w, basis
        self.full = bool(mask.all())
        self.n_coef = int(mask.sum())
        if basis == "dct":
            self.dh = dct_matrix(h, dtype, device)
            self.dw = self.dh if w == h else dct_matrix(w, dtype, device)
            self.dht, self.dwt = self.dh.transpose(0, 1), self.dw.transpose(0, 1)
            self.m = mask.to(device=device, dtype=dtype)
        else:
            unshifted = torch.fft.ifftshift(mask.to(device), dim=(-2, -1))
            self.m = unshifted[:, : w // 2 + 1].to(dtype)

    def __call__(self, v: torch.Tensor) -> torch.Tensor:
        if self.full:
            return v
        if self.basis == "dct":
            return self.dht @ ((self.dh @ v @ self.dwt) * self.m) @ self.dw
        return torch.fft.irfft2(torch.fft.rfft2(v) * self.m, s=(self.h, self.w))


def band_projector(band: torch.Tensor, basis: str = "dct", dtype=torch.float32, device=None):
    """The orthogonal projection onto a band, as a callable on ``(..., H, W)`` tensors.

    ``band`` is an ``(H, W)`` boolean mask in the DCT basis, or on the centred DFT grid
    (``basis="dft"``; it must be symmetric under ``f -> -f``).  Equivalent to
    :func:`freqkit.filter_band` but with the matrices prepared once, for use inside loops.
    """
    check_choice(basis, "basis", _BASES)
    if not isinstance(band, torch.Tensor) or band.dim() != 2:
        raise ValueError(f"band must be an (H, W) mask tensor, got "
                         f"{tuple(band.shape) if isinstance(band, torch.Tensor) else type(band).__name__}")
    m = _check_band(band, band.shape[0], band.shape[1], basis)
    return _BandProjector(m, basis, dtype, device if device is not None else band.device)


def _flat_norm(v: torch.Tensor, norm: str) -> torch.Tensor:
    f = v.reshape(v.shape[0], -1)
    return f.norm(dim=1) if norm == "l2" else f.abs().amax(dim=1)


def _ball(v: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
    """Project each image's ``v`` onto the L2 ball of radius ``eps`` ``(n, 1, 1, 1)``."""
    nrm = v.reshape(v.shape[0], -1).norm(dim=1).view(-1, 1, 1, 1)
    return v * torch.clamp(eps / nrm.clamp_min(1e-30), max=1.0)


def _project(z, lo, hi, proj, eps_l2, iters: int, lam=None):
    """Project ``z`` onto ``A ∩ box[lo, hi]``, then make box and ball hold exactly.

    ``A`` is the band ``S`` (``eps_l2 is None``; Linf, whose ball is folded into the box) or
    ``S ∩ L2-ball`` (``eps_l2`` given), whose exact projection is "filter, then rescale".
    The projection onto the intersection is Dykstra's alternating projection (Dykstra 1983;
    Boyle & Dykstra 1986) in its dual form: for two sets, Dykstra's method is proximal
    gradient ascent on the dual of ``min ||d - z||^2, d in A, d in box`` (Gaffke & Mathar
    1989), whose dual variable ``lam`` is Dykstra's box increment, and we accelerate it with
    Nesterov/FISTA momentum: the fast dual proximal gradient method of Beck & Teboulle 2014.
    Each iteration costs one projection onto ``A`` and one clamp, like a Dykstra iteration,
    but the primal error falls as O(1/k) instead of O(1/sqrt(k)).

    ``lam`` may be warm-started with the previous call's: the dual method converges from any
    dual point, and between two PGD steps the box is the same and its active pixels barely
    move, so the iterations add up over the steps instead of starting from scratch.

    Returns ``(delta, d, lam)``: ``d = P_A(z - lam)`` is exactly in ``A`` (band, and ball);
    ``delta = clamp(d, lo, hi)`` satisfies box and ball exactly (clipping into a box that
    contains 0 never increases any ``|d_i|``) and is in the band up to the clip's residue.
    """
    def p_a(v):
        v = proj(v)
        return v if eps_l2 is None else _ball(v, eps_l2)

    lam = torch.zeros_like(z) if lam is None else lam
    v, t = lam, 1.0
    for _ in range(iters):
        w = v + p_a(z - v)
        lam_new = w - torch.clamp(w, lo, hi)          # prox of the box's support function
        t_new = (1.0 + math.sqrt(1.0 + 4.0 * t * t)) / 2.0
        v = lam_new + ((t - 1.0) / t_new) * (lam_new - lam)
        lam, t = lam_new, t_new
    d = p_a(z - lam)
    return torch.clamp(d, lo, hi), d, lam


def _out_of_band_share(delta: torch.Tensor, proj) -> torch.Tensor:
    """``||delta - P_S delta||^2 / ||delta||^2`` per image (0 for a zero perturbation)."""
    n = delta.shape[0]
    e_all = delta.reshape(n, -1).pow(2).sum(1)
    e_out = (delta - proj(delta)).reshape(n, -1).pow(2).sum(1)
    return torch.where(e_all > 0, e_out / e_all.clamp_min(1e-38), torch.zeros_like(e_all))


def _shrink_into_box(v, lo, hi):
    """Largest ``t in [0, 1]`` per image with ``lo <= t v <= hi`` (``lo <= 0 <= hi``), and ``t v``."""
    n = v.shape[0]
    big = torch.full_like(v, float("inf"))
    up = torch.where(v > 0, hi / v.clamp_min(1e-38), big)
    dn = torch.where(v < 0, lo / v.clamp_max(-1e-38), big)
    t = torch.minimum(up, dn).reshape(n, -1).amin(1).clamp(0.0, 1.0)
    # One float rounding of hi / v may overshoot by an ulp; the caller's final clamp of the
    # image to [0, 1] and the Linf tolerance absorb it.
    return t, v * t.view(n, 1, 1, 1)


# ----------------------------------------------------------------------------- PGD

def _loss_and_grad(model, xa, ya, targeted: bool, check_labels: bool = False):
    xa = xa.detach().requires_grad_(True)
    logits = model(xa)
    if logits.dim() != 2:
        raise ValueError(f"model must return logits of shape (N, n_classes), got {tuple(logits.shape)}")
    if check_labels:
        _check_label_range(ya, logits.shape[1])
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
    return {"success": _succeeded(logits, y, targeted), "l2": _flat_norm(delta, "l2"),
            "linf": _flat_norm(delta, "linf")}


def _pgd_once(model, x, y, eps, norm, steps, alpha, proj, lo_box, hi_box, random_start, targeted,
              gen, early_stop, proj_iters, smoother=None, check_labels=True):
    """One restart of PGD on the images ``x`` ``(n, C, H, W)``.

    Returns ``(x_adv, n_iter, q)`` with ``q`` the projection's dual variables (band attacks),
    kept for the final check.  ``proj is None`` is the unconstrained (``band=None``)
    attack, written to follow torchattacks' PGD / PGDL2 operation for operation, random
    draws included.  ``smoother(v, idx)`` (smooth_pgd) smooths gradients of images ``idx``.
    """
    n = x.shape[0]
    l2 = norm == "l2"
    band = proj is not None
    if band:
        # Linf ball and [0, 1] box are both boxes: one clamp projects onto their intersection.
        lo, hi = (lo_box, hi_box) if l2 else (torch.maximum(lo_box, -eps), torch.minimum(hi_box, eps))
    q = torch.zeros_like(x) if band else None

    # Random start: torchattacks' draws (uniform in the Linf ball; for L2 a Gaussian direction
    # with a radius uniform in [0, eps]), restricted to the band where there is one.
    if not random_start:
        x_adv = x.clone()
    elif not l2:
        if bool((eps == eps.flatten()[0]).all()):
            e0 = float(eps.flatten()[0])
            u = torch.empty_like(x).uniform_(-e0, e0, generator=gen)
        else:
            u = torch.empty_like(x).uniform_(-1.0, 1.0, generator=gen) * eps
        if smoother is not None:
            u = smoother(u, None)
            u = u * (eps / u.reshape(n, -1).abs().amax(1).view(n, 1, 1, 1).clamp_min(1e-30))
        if band:
            d, _, q = _project(proj(u), lo, hi, proj, None, proj_iters, q)
            x_adv = x + d
        else:
            x_adv = torch.clamp(x + u, min=0, max=1)
    else:
        d = torch.empty_like(x).normal_(generator=gen)
        if band:
            d = proj(d)
        elif smoother is not None:
            d = smoother(d, None)
        nrm = d.reshape(n, -1).norm(p=2, dim=1).view(n, 1, 1, 1)
        r = torch.zeros_like(nrm).uniform_(0, 1, generator=gen)
        d = d * (r / nrm * eps)
        if band:
            d, _, q = _project(d, lo, hi, proj, eps, proj_iters, q)
            x_adv = x + d
        else:
            x_adv = torch.clamp(x + d, min=0, max=1)
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
            new = torch.clamp(xs + delta, min=0, max=1)
        elif not band:
            # torchattacks PGDL2: normalised gradient step, rescale into the ball, clip.
            gn = grad.reshape(m, -1).norm(p=2, dim=1).view(m, 1, 1, 1) + 1e-10
            new = xa + al * (grad / gn)
            delta = new - xs
            dn = delta.reshape(m, -1).norm(p=2, dim=1).view(m, 1, 1, 1)
            delta = delta * torch.min(es / dn, torch.ones_like(dn))
            new = torch.clamp(xs + delta, min=0, max=1)
        else:
            # Steepest ascent restricted to the band.  For L2 the band-projected gradient is
            # the steepest in-band direction.  For Linf we step along the sign of the
            # band-projected gradient (the Linf-steepest direction for the in-band part of
            # the gradient) and let the projection bring the step back into the band:
            # sign() of the raw gradient would spend most of the step out of band, and a
            # normalised in-band step would leave most of the Linf budget unused.
            g = proj(grad)
            if l2:
                gn = g.reshape(m, -1).norm(p=2, dim=1).view(m, 1, 1, 1) + 1e-10
                z = (xa - xs) + al * (g / gn)
            else:
                z = (xa - xs) + al * g.sign()
            delta, _, qa = _project(z, sel(lo), sel(hi), proj, es if l2 else None, proj_iters, sel(q))
            q = qa if everyone else q.index_copy(0, active, qa)
            new = xs + delta
        if everyone:
            x_adv = new.detach()
            n_iter += 1
        else:
            x_adv = x_adv.index_copy(0, active, new.detach())
            n_iter[active] += 1
    return x_adv, n_iter, q


def _finalise(x, x_adv, proj, lo_box, hi_box, eps, norm, lam):
    """Exact feasibility and the band check of the returned images (band attacks only).

    Returns ``(x_adv, out_of_band_share, route)`` with ``route`` per image: 0 the PGD
    iterate passed; 1 re-projected with many more iterations; 2 its in-band part shrunk
    into the box; 3 zeroed, where float rounding of ``x + delta`` alone breaks the band
    (perturbations near the float resolution).
    """
    n = x.shape[0]
    route = torch.zeros(n, dtype=torch.long, device=x.device)
    if proj is None:
        return x_adv, torch.zeros(n, dtype=x.dtype, device=x.device), route
    l2 = norm == "l2"
    lo, hi = (lo_box, hi_box) if l2 else (torch.maximum(lo_box, -eps), torch.minimum(hi_box, eps))
    delta = x_adv - x
    bad = _out_of_band_share(delta, proj) > _SHARE_TOL
    if bool(bad.any()):
        b = bad.nonzero().flatten()
        # Re-project the few offending images with many more (warm-started) iterations:
        # projecting an almost feasible point moves it little, so the attack's progress is kept.
        d2, y2, _ = _project(delta[b], lo[b], hi[b], proj, eps[b] if l2 else None, _REFINE_ITERS, lam[b])
        still = _out_of_band_share(d2, proj) > _SHARE_TOL
        if bool(still.any()):
            # The intersection is then nearly {0} (a band that cannot move the image without
            # leaving [0, 1]): shrink the in-band, in-ball iterate towards 0 until the box
            # holds, which is exactly in band and feasible because 0 is.
            _, d3 = _shrink_into_box(y2[still], lo[b][still], hi[b][still])
            d2[still] = d3
        delta = delta.index_copy(0, b, d2)
        route[b] = torch.where(still, 2, 1)
    x_adv = torch.clamp(x + delta, 0.0, 1.0)
    share = _out_of_band_share(x_adv - x, proj)
    tiny = share > _SHARE_MAX
    if bool(tiny.any()):
        x_adv[tiny] = x[tiny]
        share[tiny] = 0.0
        route[tiny] = 3
    return x_adv, share, route


def pgd(model: nn.Module, x: torch.Tensor, y: torch.Tensor, eps, norm: str = "linf", steps: int = 20,
        step_size=None, band: torch.Tensor | None = None, basis: str = "dct", random_start: bool = True,
        targeted: bool = False, seed: int | None = None, early_stop: bool = True, restarts: int = 1,
        return_info: bool = False, proj_iters: int = 8):
    """Projected gradient descent (Madry et al. 2018), optionally confined to a frequency band.

    Maximises the cross-entropy of ``model(x + delta)`` (or, ``targeted``, minimises it
    towards the labels ``y``) over perturbations with ``||delta||_p <= eps``,
    ``0 <= x + delta <= 1`` and, if ``band`` is given, ``delta`` in the band: the span of
    the DCT basis images under the mask (``basis="dct"``), or of the DFT frequencies under a
    symmetric mask on the centred DFT grid (``basis="dft"``, the grid of
    :func:`freqkit.dft2`).  Band-limited PGD is the white-box low-frequency attack of
    Sharma et al. 2019 (after Guo et al. 2018's low-frequency subspace), with a projection
    onto the intersection of band, ball and box (Dykstra 1983; Boyle & Dykstra 1986;
    accelerated after Beck & Teboulle 2014; see the module docstring) instead of "filter,
    then clip".

    Args:
        model: classifier, ``(N, C, H, W)`` in ``[0, 1]`` -> logits ``(N, K)``; attacked in
            eval mode, its mode restored afterwards.
        x: images ``(N, C, H, W)``, pixels in ``[0, 1]`` (values within 1e-6 outside are
            clamped first).
        y: ``(N,)`` true labels (or target labels with ``targeted=True``), in ``[0, K)``.
        eps: radius, a number or an ``(N,)`` tensor of per-image radii, ``>= 0``, in pixel
            space on ``[0, 1]`` images (Linf: e.g. ``8/255``; L2: e.g. ``0.5``).  Linf is
            *not* preserved by the orthonormal transforms, so the Linf ball is always the
            pixel-space ball, also for a band.
        norm: ``"linf"`` or ``"l2"``.
        steps: gradient steps per restart (``>= 0``).
        step_size: step per iteration (torchattacks' ``alpha``); default ``2.5 * eps / steps``
            (Madry et al. 2018).
        band: ``(H, W)`` boolean mask, or ``None`` for the unconstrained attack.
        basis: ``"dct"`` or ``"dft"`` (``"dht"`` is an alias of ``"dft"``: the same subspaces).
        random_start: start from a random point of the (in-band) ball: torchattacks' draws,
            uniform in the Linf ball, or for L2 a Gaussian direction with a radius uniform
            in ``[0, eps]``.
        targeted: move towards the labels ``y`` instead of away from them.
        seed: seed of a private ``torch.Generator`` for the random start (the global RNG
            is left untouched); ``None`` draws from the global RNG.  The draws are the
            ones torchattacks makes, so ``torch.manual_seed(s)`` before torchattacks and
            ``seed=s`` here start from the same point.
        early_stop: stop updating an image as soon as it is misclassified (or, targeted,
            classified as its target) and keep that ``x_adv``; later steps could only lose
            it.  The remaining images run in smaller batches, which also saves time.
        restarts: random restarts; an image keeps its first successful result, else the
            last restart's.
        return_info: also return a dict of per-image diagnostics (below).
        proj_iters: iterations of the band/ball/box projection per step (band attacks
            only); warm-started from step to step, so a few suffice (see the module docstring).

    Returns:
        ``x_adv`` ``(N, C, H, W)`` in ``[0, 1]``; with ``return_info`` also ``info``:
        ``success`` ``(N,)`` bool (from a final forward pass on ``x_adv``), ``l2`` and
        ``linf`` ``(N,)`` norms of ``x_adv - x``, ``out_of_band`` ``(N,)`` share of the
        perturbation's energy outside the band (0 without a band; below ``1e-3`` by
        construction, typically below ``1e-4``), ``projection`` ``(N,)`` how the final
        projection went (0 the PGD iterate passed, 1 re-projected with more iterations,
        2 shrunk into the box: the band can barely move this image inside ``[0, 1]``,
        3 zeroed: the perturbation was below float resolution), ``iterations`` ``(N,)``
        gradient steps taken, ``logits`` ``(N, K)`` at ``x_adv``.

    With ``band=None`` the iteration is torchattacks' ``PGD`` (Linf) / ``PGDL2`` operation
    for operation: with ``early_stop=False`` and the same seed the results are identical.
    """
    check_images(x, "x", unit_range=True)
    norm = _check_norm(norm)
    check_choice(basis, "basis", _BASES)
    n, c, h, w = x.shape
    y = _check_labels(y, n, x.device)
    eps_t = _check_eps(eps, n, x)
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 0:
        raise ValueError(f"steps must be an integer >= 0, got {steps!r}")
    check_positive_int(restarts, "restarts")
    check_positive_int(proj_iters, "proj_iters")
    alpha = _step_sizes(step_size, eps_t, steps, x)
    proj = None
    if band is not None:
        mask = _check_band(band, h, w, basis)
        proj = _BandProjector(mask, basis, x.dtype, x.device)

    x = x.detach().clamp(0.0, 1.0)
    gen = None
    if seed is not None:
        gen = torch.Generator(device=x.device)
        gen.manual_seed(int(seed))
    lo_box, hi_box = -x, 1.0 - x

    with _EvalMode(model), torch.enable_grad():
        x_adv = x.clone()
        n_iter = torch.zeros(n, dtype=torch.long, device=x.device)
        q = torch.zeros_like(x) if proj is not None else None
        todo = torch.arange(n, device=x.device)
        for r in range(restarts):
            xs, ys = x[todo], y[todo]
            xa, it, qa = _pgd_once(model, xs, ys, eps_t[todo], norm, steps, alpha[todo], proj,
                               lo_box[todo], hi_box[todo], random_start, targeted, gen, early_stop,
                               proj_iters, check_labels=(r == 0))
            x_adv = x_adv.index_copy(0, todo, xa)
            n_iter[todo] += it
            if q is not None:
                q = q.index_copy(0, todo, qa)
            if r + 1 < restarts:
                with torch.no_grad():
                    ok = _succeeded(model(xa), ys, targeted)
                todo = todo[~ok]
                if todo.numel() == 0:
                    break
        with torch.no_grad():
            x_adv, share, route = _finalise(x, x_adv, proj, lo_box, hi_box, eps_t, norm, q)
            if steps == 0 or return_info:
                logits = model(x_adv)
                _check_label_range(y, logits.shape[1])
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

def _progress(iterable, enabled: bool, **kw):
    if not enabled:
        return iterable
    from tqdm.auto import tqdm
    return tqdm(iterable, **kw)


def _default_eps_max(x: torch.Tensor, norm: str) -> float:
    # L2: a perturbation with RMS 0.25 per pixel (sqrt(3072)/4 ~ 13.9 on CIFAR-10), Linf:
    # 0.25.  Both are far beyond any imperceptible attack, so "inf" means "not even then".
    return math.sqrt(x[0].numel()) / 4 if norm == "l2" else 0.25


def minimal_distortion(model: nn.Module, x: torch.Tensor, y: torch.Tensor, band: torch.Tensor | None = None,
                       norm: str = "l2", basis: str = "dct", eps_max: float | None = None,
                       eps_min: float | None = None, search_steps: int = 10, pgd_steps: int = 20,
                       step_factor: float = 2.5, random_start: bool = False, restarts: int = 1, targeted: bool = False,
                       seed: int = 0, batch_size: int | None = None, progress: bool = True,
                       return_info: bool = False):
    """Per image, the smallest perturbation size at which band-limited PGD changes the prediction.

    Binary search over ``eps`` with :func:`pgd` (each image its own bracket, searched in
    one batch): ``eps_max`` is tried first; images that PGD cannot flip even there get
    ``inf``; for the others ``search_steps`` bisections of ``[eps_min, eps_max]`` *on a log
    scale* (geometric midpoints, so the precision is relative: distortions of different
    bands differ by factors, not by offsets) narrow the bracket ``[lo, hi]``, and the
    result is the norm of the smallest successful perturbation found (``<= hi``; relative
    resolution ``(eps_max / eps_min) ** (2 ** -search_steps)``, 0.7% with the defaults).

    Why a search with PGD rather than a minimal-norm attack (DDN, FMN): it works the same
    for every band, basis and norm and reuses the one projection that is tested to keep
    the result in band, ball and box; a minimal-norm attack confined to a band would be
    faster but harder to constrain exactly.  The price is ``search_steps + 1`` PGD runs.
    The result is an upper bound on the true minimal distortion (PGD is a heuristic); the
    search assumes that success is monotone in ``eps``, which holds for the deterministic
    attack used by default (no random start, fixed seed) up to rare exceptions.

    Args:
        model, x, y: as in :func:`pgd` (``x`` ``(N, C, H, W)`` in ``[0, 1]``).
        band, basis: the band (``(H, W)`` mask) or ``None`` for all frequencies.
        norm: ``"l2"`` or ``"linf"``; distortion in that norm, in pixel space on ``[0, 1]``.
        eps_max: the largest radius tried; default ``sqrt(C*H*W)/4`` (L2), ``0.25`` (Linf).
        eps_min: the bottom of the search bracket, default ``eps_max / 1000``; a smaller
            minimal distortion is still found, as the norm of the perturbation at ``eps_min``.
        search_steps: bisections.  pgd_steps: PGD steps per try, with step size
            ``step_factor * eps / pgd_steps``.
        random_start: off by default: for L2 a random start spends budget in directions the
            steps never undo, which biases the minimal norm upwards and breaks monotonicity.
        batch_size: images per PGD call (default: all).

    Returns:
        ``(N,)`` tensor of minimal distortions (``inf`` where PGD fails at ``eps_max``,
        ``0`` where ``x`` is already misclassified); with ``return_info`` also a dict with
        ``x_adv`` (the smallest successful perturbations, ``x`` where none) and ``success``.
    """
    check_images(x, "x", unit_range=True)
    norm = _check_norm(norm)
    check_choice(basis, "basis", _BASES)
    n = x.shape[0]
    y = _check_labels(y, n, x.device)
    if band is not None:
        _check_band(band, x.shape[-2], x.shape[-1], basis)
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
    bs = n if batch_size is None else check_positive_int(batch_size, "batch_size")

    def attack(xb, yb, eb):
        return pgd(model, xb, yb, eb, norm=norm, steps=pgd_steps, step_size=step_factor * eb / pgd_steps,
                   band=band, basis=basis, random_start=random_start, targeted=targeted, seed=seed,
                   early_stop=True, restarts=restarts, return_info=True)

    out = torch.full((n,), float("inf"), dtype=x.dtype, device=x.device)
    best_x = x.detach().clone()
    found = torch.zeros(n, dtype=torch.bool, device=x.device)
    chunks = list(range(0, n, bs))
    bar = _progress(range(len(chunks) * (search_steps + 1)), progress, desc="minimal distortion")
    it = iter(bar)
    for s in chunks:
        xb, yb = x[s:s + bs], y[s:s + bs]
        m = xb.shape[0]
        with _EvalMode(model), torch.no_grad():
            logits = model(xb)
        _check_label_range(yb, logits.shape[1])
        already = _succeeded(logits, yb, targeted)
        lo = torch.full((m,), float(eps_min), dtype=x.dtype, device=x.device)
        hi = torch.full((m,), float(eps_max), dtype=x.dtype, device=x.device)
        best = torch.full((m,), float("inf"), dtype=x.dtype, device=x.device)
        bx = xb.detach().clone()
        best[already] = 0.0
        for k in range(search_steps + 1):
            next(it, None)
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
        out[s:s + m] = best
        best_x[s:s + m] = bx
        found[s:s + m] = torch.isfinite(best)
    if progress and hasattr(bar, "close"):
        bar.close()
    if return_info:
        return out, {"x_adv": best_x, "success": found}
    return out


def success_curve(model: nn.Module, x: torch.Tensor, y: torch.Tensor, eps_list: Sequence[float],
                  band: torch.Tensor | None = None, norm: str = "l2", basis: str = "dct", steps: int = 20,
                  step_factor: float = 2.5, random_start: bool = True, restarts: int = 1, seed: int = 0,
                  targeted: bool = False, progress: bool = True) -> dict:
    """Success rate of (band-limited) :func:`pgd` at each radius of ``eps_list``.

    Returns a dict: ``eps`` ``(E,)``, ``success_rate`` ``(E,)`` (fraction of the N images
    whose prediction PGD changes), ``success`` ``(E, N)`` bool, ``out_of_band_max``
    ``(E,)`` (largest out-of-band energy share of any returned perturbation), ``n``.
    """
    check_images(x, "x", unit_range=True)
    eps_list = [float(e) for e in eps_list]
    if not eps_list:
        raise ValueError("eps_list must hold at least one radius")
    succ, oob = [], []
    for e in _progress(eps_list, progress, desc="success curve"):
        if e == 0:
            _, info = pgd(model, x, y, 0.0, norm=norm, steps=0, band=band, basis=basis,
                          random_start=False, targeted=targeted, return_info=True)
        else:
            _, info = pgd(model, x, y, e, norm=norm, steps=steps, step_size=step_factor * e / steps, band=band,
                          basis=basis, random_start=random_start, targeted=targeted, seed=seed,
                          restarts=restarts, return_info=True)
        succ.append(info["success"])
        oob.append(float(info["out_of_band"].max()))
    s = torch.stack(succ)
    return {"eps": torch.tensor(eps_list), "success_rate": s.float().mean(1).cpu(), "success": s.cpu(),
            "out_of_band_max": torch.tensor(oob), "n": x.shape[0]}


def _median_with_inf(v: np.ndarray, axis: int = -1) -> np.ndarray:
    # Median that treats inf ("never succeeded") as larger than anything, without the
    # inf - inf = nan of interpolating quantiles: mean of the two middle order statistics.
    # Distortions are >= 0, so no -inf can meet an inf.
    s = np.sort(v, axis=axis)
    k = s.shape[axis]
    return (np.take(s, (k - 1) // 2, axis=axis) + np.take(s, k // 2, axis=axis)) / 2


def _bootstrap_median_ci(d: np.ndarray, n_boot: int, ci: float, seed: int):
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, d.shape[0], size=(n_boot, d.shape[0]))
    meds = np.sort(_median_with_inf(d[idx], axis=1))
    # Order statistics of the bootstrap medians (no interpolation, so inf stays inf).
    lo = meds[int(math.floor((1 - ci) / 2 * (n_boot - 1)))]
    hi = meds[int(math.ceil((1 + ci) / 2 * (n_boot - 1)))]
    return float(lo), float(hi)


def compare_bands(model: nn.Module, x: torch.Tensor, y: torch.Tensor, masks, norm: str = "l2",
                  eps_list: Sequence[float] | None = None, basis: str = "dct", steps: int = 20,
                  search_steps: int = 10, eps_max: float | None = None, n_boot: int = 1000, ci: float = 0.95,
                  include_full: bool = True, seed: int = 0, progress: bool = True) -> dict:
    """Low- vs high-frequency attacks at equal distortion: one tidy record per band.

    For each band of ``masks`` (a ``(K, H, W)`` stack, e.g. from :func:`freqkit.band_masks`,
    or a ``{name: (H, W) mask}`` dict) runs :func:`success_curve` over ``eps_list`` and
    :func:`minimal_distortion`, and reports the median minimal distortion with a
    percentile-bootstrap confidence interval over images (Efron 1979; ``inf`` counts as
    larger than any distortion, so a median of ``inf`` means most images resisted up to
    ``eps_max``).  This is the equal-distortion comparison that Sharma et al. 2019 did not
    make.

    Returns ``{name: {"eps", "success_rate", "median_distortion", "ci_low", "ci_high",
    "success_at_eps_max", "distortions" (N,), "n_coefficients", "out_of_band_max"}}`` with
    plain Python floats and lists (JSON-ready); with ``include_full`` also an entry
    ``"full"`` for the unconstrained attack (``band=None``), the reference every band is
    weaker than.  ``eps_list`` defaults to ``eps_max * (0, 1/16, 1/8, 1/4, 1/2, 1)``;
    ``steps`` PGD steps are used throughout, ``search_steps`` bisections per distortion.
    """
    check_images(x, "x", unit_range=True)
    norm = _check_norm(norm)
    check_choice(basis, "basis", _BASES)
    h, w = x.shape[-2:]
    if isinstance(masks, Mapping):
        named = {str(k): _check_band(v, h, w, basis, f"masks[{k!r}]") for k, v in masks.items()}
    else:
        ms = check_mask(masks, "masks", h, w, allow_stack=True)
        ms = ms.unsqueeze(0) if ms.dim() == 2 else ms
        named = {f"band{k}": _check_band(ms[k], h, w, basis, f"masks[{k}]") for k in range(ms.shape[0])}
    if not named:
        raise ValueError("masks must hold at least one band")
    if include_full:
        if "full" in named:
            raise ValueError("masks already has a band named 'full'; rename it or pass include_full=False")
        named["full"] = None
    eps_max = _default_eps_max(x, norm) if eps_max is None else eps_max
    if eps_list is None:
        eps_list = [eps_max * f for f in (0.0, 0.0625, 0.125, 0.25, 0.5, 1.0)]
    if not 0 < ci < 1:
        raise ValueError(f"ci must be in (0, 1), got {ci!r}")
    out = {}
    for name, m in _progress(list(named.items()), progress, desc="bands"):
        curve = success_curve(model, x, y, eps_list, band=m, norm=norm, basis=basis, steps=steps, seed=seed,
                              progress=False)
        d = minimal_distortion(model, x, y, band=m, norm=norm, basis=basis, eps_max=eps_max,
                               search_steps=search_steps, pgd_steps=steps, seed=seed, progress=False)
        dn = d.detach().cpu().double().numpy()
        lo, hi = _bootstrap_median_ci(dn, n_boot, ci, seed)
        out[name] = {
            "eps": [float(e) for e in curve["eps"]],
            "success_rate": [float(r) for r in curve["success_rate"]],
            "median_distortion": float(_median_with_inf(dn)),
            "ci_low": lo, "ci_high": hi, "ci": ci,
            "success_at_eps_max": float(np.isfinite(dn).mean()),
            "distortions": [float(v) for v in dn],
            "n_coefficients": int(m.sum()) if m is not None else h * w,
            "out_of_band_max": float(curve["out_of_band_max"].max()),
            "norm": norm, "basis": basis, "n": int(x.shape[0]), "steps": steps, "eps_max": float(eps_max),
        }
    return out


# ----------------------------------------------------------------------------- Fourier heat map

def _conjugate_pairs(h: int, w: int, device=None):
    """Flat indices of one member of each pair ``{f, -f}`` on the centred grid, and of its mirror."""
    u = torch.arange(h, device=device)
    v = torch.arange(w, device=device)
    mu = (-(u - h // 2)) % h
    mu = (mu + h // 2) % h
    mv = (-(v - w // 2)) % w
    mv = (mv + w // 2) % w
    flat = (u[:, None] * w + v[None, :]).flatten()
    mirror = (mu[:, None] * w + mv[None, :]).flatten()
    keep = flat <= mirror
    return flat[keep], mirror[keep]


def fourier_basis_images(h: int, w: int, index: torch.Tensor, dtype=torch.float32, device=None) -> torch.Tensor:
    """Unit-L2-norm real Fourier basis images ``(len(index), H, W)`` for flat centred-grid indices.

    The image for ``(u, v)`` is the Hartley basis image ``idht2(e_uv)``: a sinusoid at
    frequency ``(u, v)`` (and so also ``-(u, v)``), ``cos + sin`` of the phase over
    ``sqrt(H W)``; its DFT is supported exactly on ``(u, v)`` and its mirror, like the
    basis of Yin et al. 2019 (who use the same sinusoid with another phase).
    """
    e = torch.zeros(index.numel(), h * w, dtype=dtype, device=device)
    e[torch.arange(index.numel(), device=device), index.to(device)] = 1.0
    return idht2(e.reshape(-1, h, w))


def fourier_heatmap(model: nn.Module, x: torch.Tensor, y: torch.Tensor, eps: float = 4.0,
                    batch_size: int = 512, seed: int = 0, metric: str = "error",
                    progress: bool = True) -> torch.Tensor:
    """Fourier heat map (Yin et al. 2019, "A Fourier perspective on model robustness").

    For every frequency ``(u, v)`` of the centred DFT grid, each image gets the real
    unit-L2-norm Fourier basis image ``U_uv`` (a sinusoid whose spectrum sits at ``(u, v)``
    and ``(-u, -v)``) added with norm ``eps`` and a random sign per image and channel,
    ``clamp(x + eps * s * U_uv, 0, 1)``; the map holds the model's error rate on these
    images (``metric="error"``) or the mean drop of the true class's logit
    (``metric="logit_change"``: ``logit_y(x) - logit_y(x + perturbation)``).  A frequency
    and its mirror share one basis image, so each conjugate pair is evaluated once and the
    map is symmetric under ``f -> -f``.

    Args:
        model: classifier on ``[0, 1]`` images.
        x: ``(N, C, H, W)`` images in ``[0, 1]``.  y: ``(N,)`` labels.
        eps: L2 norm of the perturbation per channel on ``[0, 1]`` images; ``4.0`` is the
            CIFAR-10 convention of Yin et al. 2019 (a large, visible perturbation).
        batch_size: perturbed images per forward pass (directions x images are batched).
        seed: seed of the random signs.  metric: ``"error"`` or ``"logit_change"``, or a
            tuple of both: then both maps come from the same perturbed images in one pass
            (half the cost of two calls) and a ``{metric: map}`` dict is returned.

    Returns:
        ``(H, W)`` float tensor on ``x``'s device, laid out on the centred grid of
        :func:`freqkit.dft2` (zero frequency at ``(H//2, W//2)``); a ``{metric: map}`` dict
        when ``metric`` is a tuple.

    Cost: ``ceil(N * (H*W/2 + 2) / batch_size)`` forward passes (about half the grid,
    thanks to the symmetry).
    """
    check_images(x, "x", unit_range=True)
    several = isinstance(metric, (tuple, list))
    metrics = tuple(metric) if several else (metric,)
    if not metrics:
        raise ValueError("metric must name at least one of ['error', 'logit_change'], got an empty tuple")
    for m_ in metrics:
        check_choice(m_, "metric", ("error", "logit_change"))
    n, c, h, w = x.shape
    y = _check_labels(y, n, x.device)
    if isinstance(eps, bool) or not isinstance(eps, (int, float)) or not math.isfinite(eps) or eps < 0:
        raise ValueError(f"eps must be a finite number >= 0, got {eps!r}")
    check_positive_int(batch_size, "batch_size")
    idx, mirror = _conjugate_pairs(h, w, x.device)
    n_dir = idx.numel()
    gen = torch.Generator(device="cpu").manual_seed(int(seed))
    # Signs drawn up front, per (direction, image, channel), so that the map does not depend
    # on batch_size.
    signs = (torch.randint(0, 2, (n_dir, n, c), generator=gen) * 2 - 1).to(device=x.device, dtype=x.dtype)
    accs = {m_: torch.zeros(n_dir, dtype=torch.float64, device=x.device) for m_ in metrics}
    dirs_per_batch = max(1, batch_size // n)
    imgs_per_batch = min(n, batch_size)
    with _EvalMode(model), torch.no_grad():
        clean = model(x) if "logit_change" in metrics else None
        if clean is not None:
            _check_label_range(y, clean.shape[1])
            clean_y = clean.gather(1, y[:, None]).squeeze(1)
        starts = [(d0, i0) for d0 in range(0, n_dir, dirs_per_batch) for i0 in range(0, n, imgs_per_batch)]
        checked = clean is not None
        for d0, i0 in _progress(starts, progress, desc="Fourier heat map"):
            d1, i1 = min(d0 + dirs_per_batch, n_dir), min(i0 + imgs_per_batch, n)
            basis = fourier_basis_images(h, w, idx[d0:d1], x.dtype, x.device)      # (D, H, W)
            s = signs[d0:d1, i0:i1]                                                  # (D, n, C)
            xp = x[i0:i1].unsqueeze(0) + eps * s[..., None, None] * basis[:, None, None]
            xp = xp.clamp(0.0, 1.0).reshape(-1, c, h, w)
            logits = model(xp)
            yy = y[i0:i1].repeat(d1 - d0)
            if not checked:
                _check_label_range(yy, logits.shape[1])
                checked = True
            for m_, acc in accs.items():
                if m_ == "error":
                    val = (logits.argmax(1) != yy).to(torch.float64)
                else:
                    val = (clean_y[i0:i1].repeat(d1 - d0) - logits.gather(1, yy[:, None]).squeeze(1)).double()
                acc[d0:d1] += val.reshape(d1 - d0, i1 - i0).sum(1)
    maps = {}
    for m_, acc in accs.items():
        hm = torch.zeros(h * w, dtype=torch.float64, device=x.device)
        hm[idx] = acc / n
        hm[mirror] = acc / n
        maps[m_] = hm.reshape(h, w).to(torch.float32)
    return maps if several else maps[metric]


# ----------------------------------------------------------------------------- smooth adversarial examples

_OFFSETS = {4: ((0, 1), (1, 0)), 8: ((0, 1), (1, 0), (1, 1), (1, -1))}


class LaplacianSmoothing:
    """Graph-Laplacian smoothing along an image's own structure (Zhang et al. 2019).

    The graph of image ``x`` has one node per pixel and edges to the 4 or 8 spatial
    neighbours with affinities ``w_ij = exp(-||x_i - x_j||^2 / sigma^2)`` (``x_i`` the
    colour vector of pixel i), so that pixels across an edge of the image are barely
    coupled.  With ``D`` the degree matrix, ``W_n = D^{-1/2} W D^{-1/2}`` and
    ``L_alpha = (I - alpha W_n) / (1 - alpha)``, smoothing ``v`` means solving
    ``L_alpha r = v``: ``r`` minimises ``alpha r^T (I - W_n) r + (1 - alpha) ||r - v||^2``
    (Zhou et al. 2004's regularised Laplacian), is smooth where the image is flat and may
    change sharply across its edges.  ``L_alpha`` is symmetric positive definite with
    eigenvalues in ``[1, (1 + alpha) / (1 - alpha)]``, so conjugate gradients converge fast;
    the same graph smooths every channel.

    Calling the object on ``v`` ``(N, C, H, W)`` (or on a subset ``idx`` of the images)
    returns ``L_alpha^{-1} v``.  ``sigma=None`` uses, per image, the RMS colour difference
    over the graph's edges (so the weights adapt to the image's contrast).
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
        """``L_alpha v``."""
        return (v - self.alpha * self._wn(v, idx)) / (1 - self.alpha)

    def dirichlet_energy(self, v, idx=None) -> torch.Tensor:
        """``v^T (I - W_n) v / v^T v`` per image in ``[0, 2]``: 0 for perfectly smooth on the graph."""
        n = v.shape[0]
        num = (v * (v - self._wn(v, idx))).reshape(n, -1).sum(1)
        den = v.reshape(n, -1).pow(2).sum(1)
        return torch.where(den > 0, num / den.clamp_min(1e-38), torch.zeros_like(den))

    def __call__(self, v: torch.Tensor, idx=None) -> torch.Tensor:
        """Solve ``L_alpha r = v`` by conjugate gradients, batched over images and channels."""
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
    projected onto the eps-ball (a rescaling for L2, which keeps it smooth) and the image
    clipped to ``[0, 1]`` (which can break smoothness on saturated pixels, as in the paper).
    ``info["dirichlet"]`` measures the smoothness of the result on the graph.

    Args: as :func:`pgd` (no band), plus ``alpha`` in ``[0, 1)`` (smoothing strength; 0 is
    plain PGD), ``sigma``, ``neighbors`` and ``cg_iters`` of the graph.

    Returns ``x_adv`` ``(N, C, H, W)`` in ``[0, 1]`` (and ``info`` as :func:`pgd`, plus
    ``dirichlet`` ``(N,)``, the normalised graph Dirichlet energy of ``x_adv - x``).
    """
    check_images(x, "x", unit_range=True)
    norm = _check_norm(norm)
    n = x.shape[0]
    y = _check_labels(y, n, x.device)
    eps_t = _check_eps(eps, n, x)
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 0:
        raise ValueError(f"steps must be an integer >= 0, got {steps!r}")
    alpha_t = _step_sizes(step_size, eps_t, steps, x)
    x = x.detach().clamp(0.0, 1.0)
    smoother = LaplacianSmoothing(x, alpha=alpha, sigma=sigma, neighbors=neighbors, cg_iters=cg_iters)
    gen = None
    if seed is not None:
        gen = torch.Generator(device=x.device)
        gen.manual_seed(int(seed))
    with _EvalMode(model), torch.enable_grad():
        x_adv, n_iter, _ = _pgd_once(model, x, y, eps_t, norm, steps, alpha_t, None, None, None, random_start,
                                     targeted, gen, early_stop, 1, smoother=smoother)
        if not return_info:
            return x_adv.detach()
        with torch.no_grad():
            logits = model(x_adv)
    _check_label_range(y, logits.shape[1])
    info = {
        **_outcome(x, x_adv, logits, y, targeted),
        "iterations": n_iter,
        "dirichlet": smoother.dirichlet_energy(x_adv - x),
        "logits": logits,
    }
    return x_adv.detach(), info


def perturbation_spectrum(delta: torch.Tensor, basis: str = "dct", masks: torch.Tensor | None = None,
                          n_bands: int | None = None, normalize: bool = True) -> torch.Tensor:
    """Radial energy profile of perturbations: energy per frequency band, per image.

    ``delta`` ``(N, C, H, W)`` (e.g. ``x_adv - x``); energy per coefficient in the
    orthonormal ``basis`` (``"dct"``, or ``"dft"``: the real Hartley form of the centred DFT,
    whose energies over a symmetric band equal ``|F|^2`` summed over it), summed over
    channels and over each band of ``masks`` ``(K, H, W)`` (default: ``n_bands`` equal-width
    radial bands, ``min(H, W) // 2`` of them).  Returns ``(N, K)``; with ``normalize`` the
    share of each image's energy per band (rows sum to 1; zero rows stay zero).  Used to
    compare the spectra of smooth, low-frequency and unconstrained perturbations.
    """
    check_tensor(delta, "delta", ndim=4)
    check_choice(basis, "basis", _BASES)
    h, w = delta.shape[-2:]
    if masks is None:
        k = max(2, min(h, w) // 2) if n_bands is None else check_positive_int(n_bands, "n_bands")
        masks = band_masks(h, w, k, kind="radial", basis="dct" if basis == "dct" else "dft", device=delta.device)
    else:
        masks = check_mask(masks, "masks", h, w, allow_stack=True)
        masks = masks.unsqueeze(0) if masks.dim() == 2 else masks
        if basis != "dct":
            check_dft_symmetric(masks, "masks")
    coef = dct2(delta) if basis == "dct" else dht2(delta)
    e = coef.pow(2).sum(1)                                                     # (N, H, W)
    m = masks.to(device=delta.device, dtype=e.dtype).reshape(masks.shape[0], -1)
    prof = e.reshape(e.shape[0], -1) @ m.T
    if normalize:
        tot = prof.sum(1, keepdim=True)
        prof = torch.where(tot > 0, prof / tot.clamp_min(1e-38), torch.zeros_like(prof))
    return prof
