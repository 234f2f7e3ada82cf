"""Auto-PGD inside a frequency band, and the AutoAttack ensemble restricted to a band.

After Croce & Hein 2020, "Reliable evaluation of adversarial robustness with an ensemble of
diverse parameter-free attacks" (ICML): Auto-PGD (APGD) is PGD with momentum whose step
size is halved at checkpoints where the loss stopped improving, restarted from the best
point found; AutoAttack runs APGD on the cross-entropy (APGD-CE) and APGD on the targeted
DLR loss (APGD-T), then FAB-T and Square, each on the images the previous ones left robust.

* :func:`apgd`: APGD with the CE, DLR or targeted DLR loss (:func:`dlr_loss`,
  :func:`dlr_loss_targeted`), Linf or L2, restarts, EOT, optionally confined to a band with
  freqkit's exact projection onto band ∩ ball ∩ box (the projection of :func:`freqkit.pgd`,
  see :mod:`freqkit.attacks`).  With ``band=None`` it is the authors' implementation
  (``pyautoattack``'s ``APGDAttack`` / ``APGDAttack_targeted``) operation for operation,
  random draws included.
* :func:`band_autoattack`: the AutoAttack ensemble with every attack confined to a band
  (APGD-CE and APGD-T for ``version="standard"``); per-image robustness and accuracy.

Which attacks of the standard ensemble are not band-limited, and why
--------------------------------------------------------------------
FAB-T (Croce & Hein 2020b, "Minimally distorted adversarial examples with a fast adaptive
boundary attack") steps to the projection onto the linearised decision boundary *intersected
with the box*, which it solves in closed form because the box is separable in pixel
coordinates; in band coordinates the box is a general polytope, so that step has no closed
form (it would need the iterative projection of every step and would no longer be FAB).
Square (Andriushchenko et al. 2020, "Square attack") proposes localised square patches at
the vertices of the Linf ball: a localised patch spreads over all frequencies, so its
proposals are not in any band by construction.  Both are left out of
:func:`band_autoattack`; a black-box attack *in* a low-frequency subspace is SimBA-DCT
(:func:`freqkit.masking.simba_dct`).

Checkpoints and step size (Croce & Hein 2020, Sec. 3.2)
--------------------------------------------------------
Step size ``eta = 2 eps`` at first; checkpoints ``w_j = ceil(p_j N)`` with ``p_0 = 0``,
``p_1 = 0.22`` and ``p_{j+1} = p_j + max(p_j - p_{j-1} - 0.03, 0.06)``.  At a checkpoint an
image's step is halved, and it restarts from its best point, when (1) the loss increased
in at most ``rho = 0.75`` of the steps since the last checkpoint, or (2) the step was not
halved at the last checkpoint and the best loss has not improved since.  The update is
``z = P(x_k + eta s(grad))``, ``x_{k+1} = P(x_k + a (z - x_k) + (1 - a)(x_k - x_{k-1}))``
with ``a = 0.75`` (``a = 1`` at the first step), ``s`` the sign (Linf) or the normalisation
(L2), ``P`` the projection.  Following the reference code (not the paper's text): the
checkpoint intervals are counted in the integer form ``n_2 = max(int(0.22 N), 1)``,
decreasing by ``max(int(0.03 N), 1)`` to at least ``max(int(0.06 N), 1)``; condition (1)
counts "at most" (``<=``) and, at the first checkpoint, compares the first loss with 0
(the reference reads an unset entry of its loss history there).  Keeping these makes
``band=None`` identical to the reference with the same seed.

In a band, ``s`` is applied to the band-projected gradient (Linf: its sign, which the
projection brings back into the band, as :func:`freqkit.pgd` does), and ``P`` is the
projection onto band ∩ ball ∩ box (dual Dykstra with FISTA momentum, warm-started from
step to step); the random start is the reference's draw projected into the band.  Every
returned ``x_adv`` is in ``[0, 1]``, in the eps-ball and in the band (out-of-band energy
share below ``1e-3``), as for :func:`freqkit.pgd`.
"""
from __future__ import annotations

import time

import torch
import torch.nn as nn
import torch.nn.functional as F

from ._projection import (
    BandProjector, box_bounds, check_band, check_eps, check_norm, finalise, flat_norm, project,
)
from ._runtime import eval_mode
from ._runtime import progress as progress_bar
from ._validate import (
    check_choice, check_images, check_label_range, check_labels, check_model_output, check_number,
    check_positive_int,
)
from .stats import wilson_interval
from .transforms import check_basis

__all__ = ["APGD_LOSSES", "BAND_AUTOATTACK_VERSIONS", "NOT_BAND_LIMITED", "dlr_loss", "dlr_loss_targeted", "apgd",
           "band_autoattack"]

#: The losses of :func:`apgd`: cross-entropy, DLR and targeted DLR (Croce & Hein 2020, Sec. 4).
APGD_LOSSES = ("ce", "dlr", "dlr-targeted")

#: The attacks of each AutoAttack version in :func:`band_autoattack` (the band-limited part of
#: the reference ensemble: ``standard`` is APGD-CE + APGD-T there, FAB-T and Square being left
#: out; ``plus`` adds APGD-DLR and 5 restarts; ``rand`` is APGD-CE + APGD-DLR with 20 EOT draws).
BAND_AUTOATTACK_VERSIONS = {
    "standard": ("apgd-ce", "apgd-t"),
    "plus": ("apgd-ce", "apgd-dlr", "apgd-t"),
    "rand": ("apgd-ce", "apgd-dlr"),
}

#: Attacks of the reference AutoAttack that :func:`band_autoattack` does not run, and why.
NOT_BAND_LIMITED = {
    "fab": "FAB's closed-form step projects onto a hyperplane intersected with the pixel box; in band "
           "coordinates the box is a general polytope, so the step has no closed form",
    "fab-t": "targeted FAB: as 'fab'",
    "square": "Square proposes localised square patches, which spread over all frequencies: its proposals "
              "are not in any band by construction",
}

_REFERENCE_VERSIONS = {"standard": ("apgd-ce", "apgd-t", "fab-t", "square"),
                       "plus": ("apgd-ce", "apgd-dlr", "fab", "square", "apgd-t", "fab-t"),
                       "rand": ("apgd-ce", "apgd-dlr")}


# ----------------------------------------------------------------------------- losses

def _check_logits_for_dlr(logits: torch.Tensor, k_min: int, what: str) -> None:
    check_model_output(logits, logits, "logits")
    if logits.shape[1] < k_min:
        raise ValueError(f"{what} needs at least {k_min} classes, got logits of shape {tuple(logits.shape)}")


def dlr_loss(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """The Difference of Logits Ratio loss of Croce & Hein 2020 (Eq. 5), per image.

    ``DLR(z, y) = -(z_y - max_{i != y} z_i) / (z_pi1 - z_pi3 + 1e-12)`` with ``z_pi1 >= z_pi2
    >= ...`` the sorted logits: shift- and scale-invariant in the logits (so a model cannot
    hide behind large or small logits, unlike the cross-entropy), negative while ``y`` is
    predicted, positive once the image is misclassified.  The ``1e-12`` is the reference's.

    Args:
        logits: ``(N, K)`` scores, ``K >= 3``, finite.
        y: ``(N,)`` integer labels in ``[0, K)``.

    Returns:
        ``(N,)`` tensor, differentiable in ``logits``.

    Shape:
        - logits: ``(N, K)``; y: ``(N,)``; output: ``(N,)``.

    Raises:
        ValueError: ``logits`` not 2-D, not finite, or with fewer than 3 classes; ``y`` of the
            wrong shape or outside ``[0, K)``.
        TypeError: ``y`` not an integer tensor.

    Example:
        >>> import torch
        >>> from freqkit.apgd import dlr_loss, dlr_loss_targeted
        >>> z = torch.tensor([[3.0, 1.0, 0.0, -1.0]])
        >>> float(dlr_loss(z, torch.tensor([0])))   # -(3 - 1) / (3 - 0)
        -0.6666...
    """
    _check_logits_for_dlr(logits, 3, "the DLR loss")
    y = check_labels(y, logits.shape[0], logits.device)
    check_label_range(y, logits.shape[1])
    return _dlr(logits, y)


def _dlr(x, y):
    # The reference's operations (autopgd_base.APGDAttack.dlr_loss), for identical gradients.
    x_sorted, ind_sorted = x.sort(dim=1)
    ind = (ind_sorted[:, -1] == y).float()
    u = torch.arange(x.shape[0], device=x.device)
    return -(x[u, y] - x_sorted[:, -2] * ind - x_sorted[:, -1] * (1. - ind)) / (
        x_sorted[:, -1] - x_sorted[:, -3] + 1e-12)


def dlr_loss_targeted(logits: torch.Tensor, y: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """The targeted DLR loss of Croce & Hein 2020 (Eq. 6), per image.

    ``-(z_y - z_t) / (z_pi1 - (z_pi3 + z_pi4) / 2 + 1e-12)``: maximising it raises the target
    logit ``z_t`` over the true one ``z_y``; the denominator (sorted logits) keeps the
    scale invariance of :func:`dlr_loss`.

    Args:
        logits: ``(N, K)`` scores, ``K >= 4``, finite.
        y: ``(N,)`` true labels in ``[0, K)``.
        target: ``(N,)`` target labels in ``[0, K)``.

    Returns:
        ``(N,)`` tensor, differentiable in ``logits``.

    Shape:
        - logits: ``(N, K)``; y, target: ``(N,)``; output: ``(N,)``.

    Raises:
        ValueError: ``logits`` not 2-D, not finite, or with fewer than 4 classes; ``y`` or
            ``target`` of the wrong shape or outside ``[0, K)``.
        TypeError: ``y`` or ``target`` not an integer tensor.

    Example:
        >>> import torch
        >>> from freqkit.apgd import dlr_loss, dlr_loss_targeted
        >>> z = torch.tensor([[3.0, 1.0, 0.0, -1.0]])
        >>> float(dlr_loss_targeted(z, torch.tensor([0]), torch.tensor([1])))  # -(3 - 1) / (3 - (0 - 1) / 2)
        -0.5714...
    """
    _check_logits_for_dlr(logits, 4, "the targeted DLR loss")
    y = check_labels(y, logits.shape[0], logits.device)
    t = check_labels(target, logits.shape[0], logits.device, "target")
    check_label_range(y, logits.shape[1])
    check_label_range(t, logits.shape[1], "target")
    return _dlr_targeted(logits, y, t)


def _dlr_targeted(x, y, y_target):
    x_sorted, _ = x.sort(dim=1)
    u = torch.arange(x.shape[0], device=x.device)
    return -(x[u, y] - x[u, y_target]) / (x_sorted[:, -1] - .5 * (x_sorted[:, -3] + x_sorted[:, -4]) + 1e-12)


# ----------------------------------------------------------------------------- one APGD run

def _normalize_l2(v):
    """``v / (||v||_2 + 1e-12)`` per image (the reference's ``normalize`` for L2)."""
    t = (v ** 2).reshape(v.shape[0], -1).sum(-1).sqrt()
    return v / (t.view(-1, 1, 1, 1) + 1e-12)


def _normalize_linf(v):
    t = v.abs().reshape(v.shape[0], -1).amax(1)
    return v / (t.view(-1, 1, 1, 1) + 1e-12)


def _l2_norm(v):
    return (v ** 2).reshape(v.shape[0], -1).sum(-1).sqrt().view(-1, 1, 1, 1)


class _Objective:
    """Loss per image and the gradient of its sum (averaged over ``eot_iter`` passes), as the reference."""

    def __init__(self, model, loss: str, eot_iter: int):
        self.model, self.loss, self.eot_iter = model, loss, eot_iter

    def __call__(self, xa, y, y_target, check_range=False):
        grad = None
        for _ in range(self.eot_iter):
            xr = xa.detach().requires_grad_(True)
            logits = check_model_output(self.model(xr), self.model)
            if check_range:
                check_label_range(y, logits.shape[1])
            if self.loss == "ce":
                li = F.cross_entropy(logits, y, reduction="none")
            elif self.loss == "dlr":
                li = _dlr(logits, y)
            else:
                li = _dlr_targeted(logits, y, y_target)
            g, = torch.autograd.grad(li.sum(), xr)
            grad = g if grad is None else grad + g
        if self.eot_iter > 1:
            grad = grad / float(self.eot_iter)
        return logits.detach(), li.detach(), grad.detach()


def _schedule(steps: int):
    """(first checkpoint interval, its decrease, its minimum): the reference's integer checkpoints."""
    return max(int(0.22 * steps), 1), max(int(0.03 * steps), 1), max(int(0.06 * steps), 1)


class _State:
    """Per-image state of one APGD run; :meth:`keep` drops the fooled images from every tensor."""

    PER_IMAGE = ("idx", "x", "y", "yt", "eps", "lo", "hi", "x_adv", "x_adv_old", "x_best", "grad", "grad_best",
                 "loss_best", "step", "loss_best_last_check", "reduced_last_check", "lam1", "lam2")

    def __init__(self, **kw):
        self.__dict__.update(kw)

    def keep(self, keep: torch.Tensor, lam_full) -> None:
        if lam_full is not None:
            gone = ~keep
            lam_full[self.idx[gone]] = self.lam2[gone]
        for name in self.PER_IMAGE:
            v = getattr(self, name)
            if isinstance(v, torch.Tensor) and v.dim() > 0:
                setattr(self, name, v[keep])
        self.hist = self.hist[:, keep]


def _apgd_run(obj, x, y, y_target, eps, norm, steps, rho, proj, lo_box, hi_box, gen, early_stop, proj_iters,
              check_range):
    """One restart of APGD on the images ``x`` ``(n, C, H, W)`` (Croce & Hein 2020, Algorithm 1).

    With ``proj is None`` the reference's ``attack_single_run`` operation for operation.
    Returns ``(x_out, fooled, n_iter, lam)``: ``x_out`` holds the first (``early_stop``) or
    last misclassified iterate of each fooled image and the highest-loss point of the others;
    ``lam`` the projection's dual variables (band only), to warm-start the final check.
    """
    n = x.shape[0]
    l2 = norm == "l2"
    band = proj is not None
    dev = x.device
    # Random start: the reference's draws (torch.rand / torch.randn on the CPU, then moved).
    if not l2:
        t = (2 * torch.rand(x.shape, generator=gen) - 1).to(device=dev, dtype=x.dtype)
    else:
        t = torch.randn(x.shape, generator=gen).to(device=dev, dtype=x.dtype)
    lo = hi = lam = None
    if band:
        lo, hi = box_bounds(lo_box, hi_box, eps, norm)
        if not l2:
            start = proj(eps * torch.ones_like(x) * _normalize_linf(t))
        else:
            start = eps * torch.ones_like(x) * _normalize_l2(proj(t))
        d, _, lam = project(start, lo, hi, proj, eps if l2 else None, proj_iters, None)
        x_adv = x + d
    else:
        x_adv = x + eps * torch.ones_like(x) * (_normalize_l2(t) if l2 else _normalize_linf(t))
        x_adv = x_adv.clamp(0., 1.)

    x_out = x_adv.clone()
    fooled = torch.zeros(n, dtype=torch.bool, device=dev)
    n_iter = torch.zeros(n, dtype=torch.long, device=dev)
    lam_full = torch.zeros_like(x) if (band and early_stop) else None

    logits, loss_indiv, grad = obj(x_adv, y, y_target, check_range)
    k, decr, k_min = _schedule(steps)
    s = _State(idx=torch.arange(n, device=dev), x=x, y=y, yt=y_target, eps=eps, lo=lo, hi=hi, x_adv=x_adv,
               x_adv_old=x_adv.clone(), x_best=x_adv.clone(), grad=grad, grad_best=grad.clone(),
               loss_best=loss_indiv.clone(), step=2. * eps * torch.ones(n, 1, 1, 1, dtype=x.dtype, device=dev),
               loss_best_last_check=loss_indiv.clone(), reduced_last_check=torch.ones_like(loss_indiv),
               lam1=lam, lam2=None if lam is None else lam.clone(),
               hist=torch.zeros(steps, n, dtype=loss_indiv.dtype, device=dev))
    bad = logits.argmax(1) != y
    fooled |= bad                                     # fooled by the start: x_out is the start
    if early_stop and bool(bad.any()):
        s.keep(~bad, lam_full)
    counter3 = 0
    for i in range(steps):
        if s.idx.numel() == 0:
            break
        with torch.no_grad():
            xs, es, x_adv = s.x, s.eps, s.x_adv
            grad2 = x_adv - s.x_adv_old
            s.x_adv_old = x_adv
            a = 0.75 if i > 0 else 1.0
            if not band and not l2:
                x1 = x_adv + s.step * torch.sign(s.grad)
                x1 = torch.clamp(torch.min(torch.max(x1, xs - es), xs + es), 0.0, 1.0)
                x1 = torch.clamp(torch.min(torch.max(x_adv + (x1 - x_adv) * a + grad2 * (1 - a), xs - es), xs + es),
                                 0.0, 1.0)
            elif not band:
                x1 = x_adv + s.step * _normalize_l2(s.grad)
                x1 = torch.clamp(xs + _normalize_l2(x1 - xs) * torch.min(es * torch.ones_like(xs), _l2_norm(x1 - xs)),
                                 0.0, 1.0)
                x1 = x_adv + (x1 - x_adv) * a + grad2 * (1 - a)
                x1 = torch.clamp(xs + _normalize_l2(x1 - xs) * torch.min(es * torch.ones_like(xs), _l2_norm(x1 - xs)),
                                 0.0, 1.0)
            else:
                # In delta coordinates: z = P(d + eta s(P_S grad)), then the momentum step, projected again.
                g = proj(s.grad)
                g = g.clone() if g is s.grad else g       # the full band returns its input
                d0 = x_adv - xs
                z = (_normalize_l2(g) if l2 else g.sign_()).mul_(s.step).add_(d0)
                eb = es if l2 else None
                d1, _, s.lam1 = project(z, s.lo, s.hi, proj, eb, proj_iters, s.lam1)
                if a < 1.0:
                    # d0 + a (d1 - d0) + (1 - a) (x_k - x_{k-1}), then projected again
                    v = torch.lerp(d0, d1, a).add_(grad2, alpha=1 - a)
                    d1, _, s.lam2 = project(v, s.lo, s.hi, proj, eb, proj_iters, s.lam2)
                else:
                    s.lam2 = s.lam1.clone()
                x1 = xs + d1
            s.x_adv = x1

        logits, loss_indiv, s.grad = obj(s.x_adv, s.y, s.yt, False)
        n_iter[s.idx] += 1
        with torch.no_grad():
            bad = logits.argmax(1) != s.y
            if bool(bad.any()):
                gi = s.idx[bad]
                fooled[gi] = True
                x_out[gi] = s.x_adv[bad]              # the reference's x_best_adv
            s.hist[i] = loss_indiv
            better = loss_indiv > s.loss_best
            bv = better.view(-1, 1, 1, 1)
            s.x_best = torch.where(bv, s.x_adv, s.x_best)
            s.grad_best = torch.where(bv, s.grad, s.grad_best)
            s.loss_best = torch.where(better, loss_indiv, s.loss_best)
            counter3 += 1
            if counter3 == k:
                # Condition 1: the loss increased in at most rho * k of the last k steps (index
                # i - k reads the reference's unset last entry, 0, at the first checkpoint).
                t_inc = torch.zeros_like(s.loss_best)
                for c in range(k):
                    t_inc += (s.hist[i - c] > s.hist[i - c - 1]).to(t_inc.dtype)
                fl = (t_inc <= k * rho).to(t_inc.dtype)
                # Condition 2: not reduced at the last checkpoint, and no improvement since.
                fl = torch.max(fl, (1. - s.reduced_last_check) * (s.loss_best_last_check >= s.loss_best).to(fl.dtype))
                s.reduced_last_check = fl
                s.loss_best_last_check = s.loss_best.clone()
                red = (fl > 0).view(-1, 1, 1, 1)
                if bool(red.any()):
                    s.step = torch.where(red, s.step / 2.0, s.step)
                    s.x_adv = torch.where(red, s.x_best, s.x_adv)
                    s.grad = torch.where(red, s.grad_best, s.grad)
                k = max(k - decr, k_min)
                counter3 = 0
            if early_stop and bool(bad.any()):
                s.keep(~bad, lam_full)
    with torch.no_grad():
        if early_stop:
            x_out[s.idx] = s.x_best                   # never fooled: the highest-loss point
        else:
            rest = ~fooled
            x_out[rest] = s.x_best[rest]
    if band:
        if early_stop:
            lam_full[s.idx] = s.lam2
            lam = lam_full
        else:
            lam = s.lam2
    return x_out, fooled, n_iter, lam


# ----------------------------------------------------------------------------- APGD

def _check_loss(loss) -> str:
    return check_choice(loss.lower() if isinstance(loss, str) else loss, "loss", APGD_LOSSES)


def apgd(model: nn.Module, x: torch.Tensor, y: torch.Tensor, eps, norm: str = "linf", loss: str = "ce",
         steps: int = 100, restarts: int = 1, n_target_classes: int = 9, band: torch.Tensor | None = None,
         basis: str = "dct", rho: float = 0.75, eot_iter: int = 1, seed: int | None = 0, early_stop: bool = True,
         proj_iters: int = 4, return_info: bool = False):
    """Auto-PGD (Croce & Hein 2020), optionally confined to a frequency band.

    Maximises the ``loss`` of ``model(x + delta)`` over ``||delta||_p <= eps``,
    ``0 <= x + delta <= 1`` and, with ``band``, ``delta`` in the band (the span of the DCT
    basis images under the mask, or of the DFT frequencies under a symmetric mask on the
    centred DFT grid), with the momentum, checkpoints and step-size halving of Auto-PGD
    (Croce & Hein 2020, "Reliable evaluation of adversarial robustness with an ensemble of
    diverse parameter-free attacks", Algorithm 1; see the module docstring).  Only images
    that ``model`` classifies correctly are attacked; each restart (and, for
    ``"dlr-targeted"``, each target class) attacks the images still not fooled.

    With ``band=None`` it is the reference implementation (``pyautoattack`` 0.2.0,
    ``APGDAttack`` for ``"ce"``/``"dlr"``, ``APGDAttack_targeted`` for ``"dlr-targeted"``)
    operation for operation, random draws included: with ``early_stop=False`` and the same
    seed the same images are fooled.  With a band, every step and the random start are
    projected onto band ∩ ball ∩ box (:func:`freqkit.pgd`'s projection, twice per step:
    after the gradient step and after the momentum step).

    Args:
        model: classifier on ``[0, 1]`` images returning logits ``(N, K)``: an ``nn.Module``
            (attacked in eval mode, every submodule's mode restored) or any callable.
        x: images ``(N, C, H, W)`` in ``[0, 1]``, at least one.
        y: true labels, integers in ``[0, K)``.
        eps: radius, a number or an ``(N,)`` tensor, ``>= 0``, in pixel space (Linf:
            e.g. ``8/255``; L2: e.g. ``0.5``).
        norm: ``"linf"`` (default) or ``"l2"``.
        loss: ``"ce"`` (default; APGD-CE), ``"dlr"`` (APGD-DLR, :func:`dlr_loss`, needs
            ``K >= 3``) or ``"dlr-targeted"`` (APGD-T, :func:`dlr_loss_targeted`, needs
            ``K >= 4``: targets are the classes ranked 2nd to ``n_target_classes + 1``-th by
            the clean logits, one after the other).
        steps: iterations per restart, ``>= 1`` (AutoAttack: 100).
        restarts: random restarts, ``>= 1`` (per target class for ``"dlr-targeted"``).
        n_target_classes: targets of ``"dlr-targeted"``, ``>= 1`` (AutoAttack: 9); at most
            ``K - 1`` are used.
        band: ``(H, W)`` mask of the band (boolean or 0/1), or ``None`` (default).
        basis: ``"dct"`` (default) or ``"dft"``, the basis of ``band``.
        rho: the fraction of condition 1 in ``(0, 1]`` (default 0.75, the paper's).
        eot_iter: gradients averaged per step (expectation over transformation), ``>= 1``.
        seed: seed of a private CPU ``torch.Generator`` for the random starts (the
            reference's ``torch.manual_seed(seed)`` draws, without touching the global RNG);
            ``None``: the global RNG.
        early_stop: drop an image from the batch once it is misclassified and keep that
            iterate (faster; same fooled images as the reference up to float rounding);
            ``False`` runs every image for every step and keeps its last misclassified
            iterate, as the reference.
        proj_iters: iterations of each band/ball/box projection, ``>= 1`` (band only;
            default 4: two projections per step, so 8 per step as :func:`freqkit.pgd`;
            warm-started, and the returned images are re-projected where needed).
        return_info: also return a dict of per-image diagnostics.

    Returns:
        ``x_adv`` (detached) in ``[0, 1]``, in the eps-ball and in the band (out-of-band
        energy share below ``1e-3``): an adversarial iterate where the attack succeeded, the
        highest-loss point found otherwise, ``x`` for images misclassified from the start.
        With ``return_info``: ``(x_adv, info)``, ``info`` holding ``success`` (bool: the
        final prediction differs from ``y``), ``clean_correct`` (bool), ``l2``, ``linf``,
        ``out_of_band``, ``projection`` (routes as in :func:`freqkit.pgd`), ``iterations``
        (int64, gradient steps over every restart and target) and ``logits`` at ``x_adv``.

    Shape:
        - x: ``(N, C, H, W)``; y: ``(N,)``; eps: a number or ``(N,)``; band: ``(H, W)``.
        - Output: ``(N, C, H, W)``; ``info["logits"]`` ``(N, K)``, other entries ``(N,)``.

    Raises:
        TypeError: ``x`` not floating point, ``y`` not an integer tensor, ``band`` not a tensor.
        ValueError: ``x`` not 4-D, not finite, outside ``[0, 1]`` or empty; ``y`` of the wrong
            shape or outside ``[0, K)``; ``norm``, ``loss``, ``basis``; ``eps`` negative or of
            the wrong shape; ``steps``, ``restarts``, ``n_target_classes``, ``eot_iter`` or
            ``proj_iters`` not an integer ``>= 1``; ``rho`` not in ``(0, 1]``; ``band`` not
            ``(H, W)``, not 0/1, empty or (DFT) not symmetric; a DLR loss with too few
            classes; the model returning anything but finite ``(N, K)`` logits.

    Example:
        >>> import torch, freqkit as fk
        >>> from freqkit.apgd import apgd, band_autoattack
        >>> _ = torch.manual_seed(0); model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 4))
        >>> x = torch.rand(3, 1, 8, 8); y = model(x).argmax(1); low = fk.low_high_masks(8, 8)["low"]
        >>> x_adv, info = apgd(model, x, y, eps=0.5, norm="l2", steps=10, band=low, return_info=True)
        >>> bool(x_adv.min() >= 0 and x_adv.max() <= 1), bool((info["l2"] <= 0.5 + 1e-5).all())
        (True, True)
        >>> bool((info["out_of_band"] < 1e-3).all())
        True
    """
    check_images(x, "x", unit_range=True)
    norm = check_norm(norm)
    loss = _check_loss(loss)
    check_basis(basis)
    n, c, h, w = x.shape
    y = check_labels(y, n, x.device)
    eps_t = check_eps(eps, n, x)
    check_positive_int(steps, "steps")
    check_positive_int(restarts, "restarts")
    check_positive_int(n_target_classes, "n_target_classes")
    check_positive_int(eot_iter, "eot_iter")
    check_positive_int(proj_iters, "proj_iters")
    check_number(rho, "rho", hi=1.0)
    if not isinstance(early_stop, bool):
        raise ValueError(f"early_stop must be True or False, got {early_stop!r}")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
        raise ValueError(f"seed must be an integer or None, got {seed!r}")
    proj = None
    if band is not None:
        proj = BandProjector(check_band(band, h, w, basis), basis, x.dtype, x.device)
    x = x.detach().clamp(0.0, 1.0)
    gen = torch.Generator()
    if seed is not None:
        gen.manual_seed(int(seed))
    else:
        gen.set_state(torch.default_generator.get_state())
    lo_box, hi_box = -x, 1.0 - x

    with eval_mode(model), torch.enable_grad():
        obj = _Objective(model, loss, eot_iter)
        with torch.no_grad():
            clean = check_model_output(model(x), model)
        check_label_range(y, clean.shape[1])
        k_cls = clean.shape[1]
        if loss == "dlr" and k_cls < 3:
            raise ValueError(f"loss='dlr' needs at least 3 classes, the model has {k_cls}")
        if loss == "dlr-targeted" and k_cls < 4:
            raise ValueError(f"loss='dlr-targeted' needs at least 4 classes, the model has {k_cls}")
        clean_ok = clean.argmax(1) == y
        x_adv = x.clone()
        n_iter = torch.zeros(n, dtype=torch.long, device=x.device)
        lam = torch.zeros_like(x) if proj is not None else None
        todo_all = clean_ok.clone()
        targets = range(2, min(n_target_classes, k_cls - 1) + 2) if loss == "dlr-targeted" else [None]
        first = True
        for tc in targets:
            for _ in range(restarts):
                todo = todo_all.nonzero().flatten()
                if todo.numel() == 0:
                    break
                yt = clean[todo].sort(dim=1)[1][:, -tc] if tc is not None else None
                xo, fooled, it, la = _apgd_run(obj, x[todo], y[todo], yt, eps_t[todo], norm, steps, rho, proj,
                                               lo_box[todo], hi_box[todo], gen, early_stop, proj_iters, first)
                first = False
                x_adv[todo] = xo
                n_iter[todo] += it
                if lam is not None:
                    lam[todo] = la
                todo_all[todo[fooled]] = False
        if seed is None:
            torch.default_generator.set_state(gen.get_state())
        with torch.no_grad():
            x_adv, share, route = finalise(x, x_adv, proj, lo_box, hi_box, eps_t, norm, lam)
            if not return_info:
                return x_adv.detach()
            logits = check_model_output(model(x_adv), model)
    delta = x_adv - x
    info = {"success": logits.argmax(1) != y, "clean_correct": clean_ok, "l2": flat_norm(delta, "l2"),
            "linf": flat_norm(delta, "linf"), "out_of_band": share, "projection": route, "iterations": n_iter,
            "logits": logits}
    return x_adv.detach(), info


# ----------------------------------------------------------------------------- the ensemble in a band

_ATTACK_LOSS = {"apgd-ce": "ce", "apgd-dlr": "dlr", "apgd-t": "dlr-targeted"}


def _resolve_version(version):
    """``(name, attacks, left_out)`` for a version name or a list of attack names."""
    if isinstance(version, str):
        v = check_choice(version, "version", tuple(BAND_AUTOATTACK_VERSIONS))
        left = {a: NOT_BAND_LIMITED[a] for a in _REFERENCE_VERSIONS[v] if a in NOT_BAND_LIMITED}
        return v, BAND_AUTOATTACK_VERSIONS[v], left
    if isinstance(version, (list, tuple)) and version and all(isinstance(a, str) for a in version):
        out = []
        for a in version:
            if a in NOT_BAND_LIMITED:
                raise ValueError(f"version lists {a!r}, which is not band-limited: {NOT_BAND_LIMITED[a]}; "
                                 f"choose from {sorted(_ATTACK_LOSS)}")
            check_choice(a, "version entry", tuple(_ATTACK_LOSS))
            if a not in out:
                out.append(a)
        return "custom", tuple(out), {}
    raise ValueError(f"version must be one of {sorted(BAND_AUTOATTACK_VERSIONS)} or a non-empty list of "
                     f"{sorted(_ATTACK_LOSS)}, got {version!r}")


def band_autoattack(model: nn.Module, x: torch.Tensor, y: torch.Tensor, eps: float, norm: str = "linf",
                    band: torch.Tensor | None = None, basis: str = "dct", version="standard", steps: int = 100,
                    n_target_classes: int = 9, seed: int = 0, batch_size: int | None = None, proj_iters: int = 4,
                    early_stop: bool = True, progress: bool = False) -> dict:
    """The AutoAttack ensemble (Croce & Hein 2020) with every attack confined to a frequency band.

    As the reference's ``run_standard_evaluation``: the images the model classifies
    correctly are attacked by each attack in turn, each attack seeing only the images the
    previous ones left robust; an image is robust if it is classified correctly clean and
    after every attack.  The attacks are :func:`apgd` runs in the band:

    ============  =============================================  ======================================
    version       attacks run here                               left out of the reference's ensemble
    ============  =============================================  ======================================
    ``standard``  APGD-CE (1 restart), APGD-T (9 targets)        FAB-T, Square
    ``plus``      APGD-CE, APGD-DLR (5 restarts each), APGD-T    FAB, Square, FAB-T
    ``rand``      APGD-CE, APGD-DLR, 20 EOT draws per step       (none)
    ============  =============================================  ======================================

    FAB and Square are not band-limited (:data:`NOT_BAND_LIMITED`, module docstring): the
    result is the band-limited part of AutoAttack, an upper bound on band robust accuracy
    like every attack.  With ``band=None`` the attacks are the reference's APGD-CE/APGD-T.

    Args:
        model: classifier on ``[0, 1]`` images returning logits ``(N, K)`` (eval mode;
            modes restored).  ``"apgd-t"`` needs ``K >= 4``, ``"apgd-dlr"`` ``K >= 3``.
        x: images ``(N, C, H, W)`` in ``[0, 1]``, at least one.
        y: labels, integers in ``[0, K)``.
        eps: radius, a finite number ``> 0`` (pixel space).
        norm: ``"linf"`` (default) or ``"l2"``.
        band: ``(H, W)`` mask of the band, or ``None`` (unconstrained).
        basis: ``"dct"`` (default) or ``"dft"``.
        version: ``"standard"`` (default), ``"plus"``, ``"rand"``, or a list of attack
            names among ``"apgd-ce"``, ``"apgd-dlr"``, ``"apgd-t"`` (run with the standard
            settings: 1 restart, 9 targets).
        steps: APGD iterations per run, ``>= 1`` (AutoAttack: 100).
        n_target_classes: APGD-T targets, ``>= 1`` (at most ``K - 1`` used).
        seed: seed of every attack run (as the reference, the same seed for each attack).
        batch_size: images per attack call, ``>= 1``; default ``None``: all at once.
        proj_iters: projection iterations per projection (band only), ``>= 1``.
        early_stop: as in :func:`apgd`.
        progress: show a progress bar over the attacks (on a terminal).

    Returns:
        dict: ``x_adv`` (``(N, C, H, W)`` tensor: adversarial where an attack succeeded,
        else the last attack's highest-loss point; ``x`` for images misclassified clean),
        ``robust`` (``(N,)`` bool tensor), ``accuracy``, ``ci_lo``, ``ci_hi`` (Wilson 95%),
        ``clean_accuracy``, ``n``, ``after`` (``{attack: robust accuracy after it}``),
        ``attacks`` (names run), ``not_band_limited`` (``{attack: why}`` for the reference
        version's attacks left out), ``out_of_band_max``, ``linf_max``, ``l2_max``,
        ``version``, ``norm``, ``eps``, ``band_coefficients`` (kept frequencies, ``H*W``
        without a band), ``steps``, ``restarts`` (``{attack: restarts}``), ``eot_iter``,
        ``n_target_classes``, ``seconds``.

    Shape:
        - x: ``(N, C, H, W)``; y: ``(N,)``; band: ``(H, W)``.

    Raises:
        TypeError: ``x`` not floating point, ``y`` not integer, ``band`` not a tensor.
        ValueError: ``version`` unknown or listing FAB/Square (the message says why they are
            not band-limited); ``eps`` not a finite number ``> 0``; ``batch_size`` not an
            integer ``>= 1``; too few classes for a DLR attack; and what :func:`apgd` refuses.

    Example:
        >>> import torch, freqkit as fk
        >>> from freqkit.apgd import apgd, band_autoattack
        >>> _ = torch.manual_seed(0); model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 5))
        >>> x = torch.rand(4, 1, 8, 8); y = model(x).argmax(1)
        >>> r = band_autoattack(model, x, y, eps=0.3, norm="l2", band=fk.low_high_masks(8, 8)["low"], steps=5)
        >>> r["attacks"], sorted(r["not_band_limited"]), tuple(r["robust"].shape)
        (('apgd-ce', 'apgd-t'), ['fab-t', 'square'], (4,))
    """
    check_images(x, "x", unit_range=True)
    norm = check_norm(norm)
    check_basis(basis)
    n, _, h, w = x.shape
    y = check_labels(y, n, x.device)
    eps = check_number(eps, "eps")
    name, attacks, left_out = _resolve_version(version)
    if batch_size is not None:
        check_positive_int(batch_size, "batch_size")
    m = None if band is None else check_band(band, h, w, basis)
    restarts = {"apgd-ce": 5 if name == "plus" else 1, "apgd-dlr": 5 if name == "plus" else 1, "apgd-t": 1}
    eot_iter = 20 if name == "rand" else 1
    t0 = time.perf_counter()
    bs = n if batch_size is None else batch_size
    x = x.detach().clamp(0.0, 1.0)
    with eval_mode(model), torch.no_grad():
        clean = torch.cat([check_model_output(model(x[i:i + bs]), model) for i in range(0, n, bs)])
    check_label_range(y, clean.shape[1])
    k_cls = clean.shape[1]
    for a in attacks:
        need = {"apgd-ce": 1, "apgd-dlr": 3, "apgd-t": 4}[a]
        if k_cls < need:
            raise ValueError(f"version {version!r} runs {a!r}, which needs at least {need} classes; the model has "
                             f"{k_cls}: choose version=['apgd-ce']")
    clean_ok = clean.argmax(1) == y
    robust = clean_ok.clone()
    x_adv = x.clone()
    oob = torch.zeros(n, dtype=x.dtype, device=x.device)
    after = {}
    for a in progress_bar(attacks, enabled=progress, desc="band AutoAttack"):
        todo = robust.nonzero().flatten()
        for i in range(0, todo.numel(), bs):
            b = todo[i:i + bs]
            xa, info = apgd(model, x[b], y[b], eps, norm=norm, loss=_ATTACK_LOSS[a], steps=steps,
                            restarts=restarts[a], n_target_classes=n_target_classes, band=m, basis=basis,
                            eot_iter=eot_iter, seed=seed, early_stop=early_stop, proj_iters=proj_iters,
                            return_info=True)
            x_adv[b] = xa
            oob[b] = info["out_of_band"]
            robust[b[info["success"]]] = False
        after[a] = int(robust.sum()) / n
    # The final verdict from one more forward pass on the returned images.
    with eval_mode(model), torch.no_grad():
        pred = torch.cat([check_model_output(model(x_adv[i:i + bs]), model).argmax(1) for i in range(0, n, bs)])
    robust = robust & (pred == y)
    k = int(robust.sum())
    lo, hi = wilson_interval(k, n)
    d = (x_adv - x).flatten(1)
    return {"x_adv": x_adv.detach(), "robust": robust, "accuracy": k / n, "ci_lo": lo, "ci_hi": hi,
            "clean_accuracy": int(clean_ok.sum()) / n, "n": n, "after": after, "attacks": attacks,
            "not_band_limited": left_out, "out_of_band_max": float(oob.max()), "linf_max": float(d.abs().amax()),
            "l2_max": float(d.norm(dim=1).max()), "version": name, "norm": norm, "eps": eps,
            "band_coefficients": int(m.sum()) if m is not None else h * w, "steps": steps,
            "restarts": {a: restarts[a] for a in attacks}, "eot_iter": eot_iter,
            "n_target_classes": min(n_target_classes, k_cls - 1), "seconds": time.perf_counter() - t0}
