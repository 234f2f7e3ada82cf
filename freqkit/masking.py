"""Gradient-masking checks: is a robust accuracy real, or did the attack fail?

After the checklists of Athalye, Carlini & Wagner 2018 ("Obfuscated gradients give a false
sense of security", Sec. 3.1: "characteristic behaviors of obfuscated gradients") and
Carlini et al. 2019 ("On evaluating adversarial robustness", Sec. 5 and the checklist of
its appendix).  A defense that masks gradients (shattered gradients through a
non-differentiable step, stochastic gradients, vanishing/exploding gradients) looks robust
to white-box gradient attacks without being robust.  Three of their symptoms, computed and
returned as data (each check a dict with ``passed`` and its numbers):

* :func:`accuracy_vs_eps`: accuracy must fall to about 0 as the radius grows ("unbounded
  attacks must reach 100% success"), and must not rise with the radius ("increasing the
  distortion bound does not increase success" is a symptom);
* :func:`simba_dct` with :func:`blackbox_check`: a black-box attack must not beat the
  white-box one ("black-box attacks are better than white-box attacks" is a symptom); the
  black-box attack is SimBA-DCT (Guo et al. 2019, "Simple black-box adversarial attacks"),
  which only queries the model's probabilities, along low-frequency DCT directions;
* :func:`transfer_check`: adversarial examples made on another (standard) model must not
  fool the model more often than its own white-box attack ("transfer attacks beat
  white-box attacks" is a symptom).

:func:`masking_checks` runs all three against one white-box evaluation (the AutoAttack
ensemble of :func:`freqkit.apgd.band_autoattack`, optionally inside a band) and says which
passed.  A masked model (e.g. behind a quantiser without BPDA, :class:`freqkit.DCTQuantize`
with ``bpda=False``) fails them: its white-box robust accuracy is high, the black-box and
transfer attacks do better.  An honest model passes them.  Passing is necessary, not
sufficient, for a robustness claim.
"""
from __future__ import annotations

import math
import time
from typing import Sequence

import torch
import torch.nn as nn

from ._runtime import eval_mode
from ._runtime import progress as progress_bar
from ._validate import (
    check_choice, check_images, check_label_range, check_labels, check_mask, check_model_output, check_number,
    check_positive_int,
)
from .apgd import apgd, band_autoattack
from .models import predict_logits
from .stats import wilson_interval
from .transforms import dct_matrix

__all__ = ["simba_order", "simba_dct", "accuracy_vs_eps", "blackbox_check", "transfer_check", "masking_checks"]


def _acc(correct: torch.Tensor) -> dict:
    n = int(correct.numel())
    k = int(correct.sum())
    lo, hi = wilson_interval(k, n)
    return {"accuracy": k / n, "ci_lo": lo, "ci_hi": hi, "n": n}


def _check_norm(norm) -> str:
    return check_choice(norm.lower() if isinstance(norm, str) else norm, "norm", ("linf", "l2"))


def _predict(model, x, batch_size):
    with eval_mode(model), torch.no_grad():
        return check_model_output(predict_logits(model, x, batch_size), model).argmax(1)


# ----------------------------------------------------------------------------- SimBA-DCT

def simba_order(channels: int, h: int, w: int, freq_dims: int, stride: int, seed: int = 0,
                band: torch.Tensor | None = None) -> torch.Tensor:
    """SimBA-DCT's order of DCT directions: low frequencies first, random within each ring.

    Guo et al. 2019's ``block_order``: a random permutation of the ``freq_dims x freq_dims``
    block of lowest DCT frequencies (every channel), then of each L-shaped ring of width
    ``stride`` around it, out to the full ``h x w`` grid.  With ``band``, only the
    coefficients inside the band (a DCT mask) are kept, in the same order.

    Args:
        channels: image channels, ``>= 1``.
        h, w: image size, ``>= 1``.
        freq_dims: side of the first block, ``>= 1``.
        stride: ring width, ``>= 1``.
        seed: seed of the permutations (a private generator).
        band: optional ``(h, w)`` DCT mask restricting the directions.

    Returns:
        int64 tensor of flat indices into ``(channels, h, w)`` coefficients, in query order.

    Shape:
        - Output: ``(channels * h * w,)``, or the number of coefficients in the band x
          ``channels``.

    Raises:
        ValueError: an argument not an integer ``>= 1``; ``band`` of the wrong shape, not
            0/1 or empty.

    Example:
        >>> import freqkit.masking as M
        >>> o = M.simba_order(1, 4, 4, freq_dims=2, stride=1)
        >>> sorted(o[:4].tolist()), len(o)     # the 2 x 2 block of lowest frequencies first
        ([0, 1, 4, 5], 16)
    """
    for v, name in ((channels, "channels"), (h, "h"), (w, "w"), (freq_dims, "freq_dims"), (stride, "stride")):
        check_positive_int(v, name)
    g = torch.Generator().manual_seed(int(seed))
    ring = torch.maximum(torch.arange(h).view(-1, 1).expand(h, w), torch.arange(w).view(1, -1).expand(h, w))
    # ring index: 0 inside the first block, then 1, 2, ... per ring of width ``stride``
    level = torch.where(ring < freq_dims, torch.zeros_like(ring), 1 + (ring - freq_dims) // stride)
    level = level.unsqueeze(0).expand(channels, h, w).reshape(-1)
    keys = level.double() + torch.rand(level.numel(), generator=g, dtype=torch.float64)  # random within a ring
    order = torch.argsort(keys)
    if band is not None:
        m = check_mask(band, "band", h, w).reshape(-1).repeat(channels)
        order = order[m[order]]
    return order


def simba_dct(model: nn.Module, x: torch.Tensor, y: torch.Tensor, eps: float, norm: str = "linf",
              max_iters: int = 1000, step: float | None = None, freq_dims: int | None = None,
              stride: int | None = None, band: torch.Tensor | None = None, seed: int = 0,
              return_info: bool = False):
    """SimBA-DCT (Guo et al. 2019, "Simple black-box adversarial attacks"), inside a threat model.

    A black-box attack: it only queries the model's probabilities (no gradient).  For each
    direction ``q`` of :func:`simba_order` (orthonormal DCT basis images, lowest frequencies
    first), it tries ``x_adv - step q`` and, if that does not lower the probability of the
    true class, ``x_adv + step q``; a step that lowers it is kept (Guo et al.'s Algorithm 1
    in the DCT basis).  An image stops once misclassified.  Here every candidate stays in
    the threat model: without a band it is clipped to the eps-ball and ``[0, 1]``
    (rescaled for L2, clamped for Linf); with a band (DCT mask) the step is shortened to
    the largest fraction that keeps ball and box, so the perturbation stays exactly in the
    band.  Two queries per image and direction at most.

    Args:
        model: classifier on ``[0, 1]`` images returning logits ``(N, K)`` (eval mode,
            modes restored; only its outputs are used).
        x: images ``(N, C, H, W)`` in ``[0, 1]``, at least one.
        y: labels in ``[0, K)``.
        eps: radius, a finite number ``> 0`` (pixel space).
        norm: ``"linf"`` (default) or ``"l2"``.
        max_iters: directions tried per image, ``>= 1``.
        step: L2 length of each step (a DCT basis image times ``step``), ``> 0``; default
            ``None``: Linf ``eps * sqrt(H W) / 2`` (a step whose largest pixel change is
            about ``eps``), L2 ``eps / 2``.
        freq_dims: side of the first low-frequency block, ``>= 1``; default ``None``:
            ``max(H // 4, 1)`` (8 on CIFAR-10; Guo et al. use 28 of 224 on ImageNet).
        stride: width of the following rings, ``>= 1``; default ``None``:
            ``max(H // 16, 1)``.
        band: optional ``(H, W)`` DCT mask: only its directions are used and the
            perturbation stays in it.
        seed: seed of the direction order.
        return_info: also return a dict of per-image diagnostics.

    Returns:
        ``x_adv`` ``(N, C, H, W)`` in ``[0, 1]`` and in the eps-ball; with ``return_info``
        ``(x_adv, info)``, ``info`` holding ``success`` (bool), ``queries`` (int64 model
        evaluations per image, the first clean one included), ``l2``, ``linf``.

    Shape:
        - x: ``(N, C, H, W)``; y: ``(N,)``; band: ``(H, W)``.

    Raises:
        TypeError: ``x`` not floating point, ``y`` not integer.
        ValueError: ``x`` not 4-D, outside ``[0, 1]`` or empty; ``y`` of the wrong shape or
            outside ``[0, K)``; ``norm``; ``eps``, ``step`` not ``> 0``; ``max_iters``,
            ``freq_dims``, ``stride`` not integers ``>= 1``; a bad ``band``; the model
            returning non-finite logits.

    Example:
        >>> import torch, freqkit.masking as M
        >>> _ = torch.manual_seed(0); model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 3))
        >>> x = torch.rand(4, 1, 8, 8); y = model(x).argmax(1)
        >>> x_adv, info = M.simba_dct(model, x, y, eps=0.1, max_iters=50, return_info=True)
        >>> bool((info["linf"] <= 0.1 + 1e-6).all()), bool(x_adv.min() >= 0 and x_adv.max() <= 1)
        (True, True)
    """
    check_images(x, "x", unit_range=True)
    norm = _check_norm(norm)
    n, c, h, w = x.shape
    y = check_labels(y, n, x.device)
    eps = check_number(eps, "eps")
    check_positive_int(max_iters, "max_iters")
    step = (eps * math.sqrt(h * w) / 2 if norm == "linf" else eps / 2) if step is None else check_number(step, "step")
    freq_dims = max(h // 4, 1) if freq_dims is None else check_positive_int(freq_dims, "freq_dims")
    stride = max(h // 16, 1) if stride is None else check_positive_int(stride, "stride")
    order = simba_order(c, h, w, min(freq_dims, max(h, w)), stride, seed, band)[:max_iters].to(x.device)
    dh, dw = dct_matrix(h, x.dtype, x.device), dct_matrix(w, x.dtype, x.device)
    x = x.detach().clamp(0.0, 1.0)
    lo_box, hi_box = -x, 1.0 - x
    if norm == "linf":
        lo_box, hi_box = lo_box.clamp_min(-eps), hi_box.clamp_max(eps)

    def prob_true(xa, ya, out=None):
        out = check_model_output(model(xa), model) if out is None else out
        return torch.softmax(out.float(), 1).gather(1, ya[:, None])[:, 0], out.argmax(1)

    def feasible(d, s, idx):
        """``d + s`` moved back into the threat model (see the docstring)."""
        if band is None:
            cand = d + s
            if norm == "l2":
                nrm = cand.flatten(1).norm(dim=1).view(-1, 1, 1, 1)
                cand = cand * torch.clamp(eps / nrm.clamp_min(1e-30), max=1.0)
            return torch.minimum(torch.maximum(cand, lo_box[idx]), hi_box[idx])
        # largest t in [0, 1] with lo <= d + t s <= hi (and ||d + t s|| <= eps for L2)
        big = torch.full_like(s, float("inf"))
        up = torch.where(s > 0, (hi_box[idx] - d) / s.clamp_min(1e-38), big)
        dn = torch.where(s < 0, (lo_box[idx] - d) / s.clamp_max(-1e-38), big)
        t = torch.minimum(up, dn).flatten(1).amin(1).clamp(0.0, 1.0)
        if norm == "l2":
            a, b, cc = s.flatten(1).pow(2).sum(1), 2 * (d * s).flatten(1).sum(1), d.flatten(1).pow(2).sum(1) - eps ** 2
            root = (-b + torch.sqrt((b * b - 4 * a * cc).clamp_min(0))) / (2 * a).clamp_min(1e-38)
            t = torch.minimum(t, root.clamp(0.0, 1.0))
        return d + t.view(-1, 1, 1, 1) * s

    with eval_mode(model), torch.no_grad():
        delta = torch.zeros_like(x)
        out = check_model_output(model(x), model)
        check_label_range(y, out.shape[1])
        p, pred = prob_true(x, y, out)
        queries = torch.ones(n, dtype=torch.long, device=x.device)
        active = (pred == y).nonzero().flatten()
        for k in range(order.numel()):
            if active.numel() == 0:
                break
            ci, rest = divmod(int(order[k]), h * w)
            u, v = divmod(rest, w)
            basis = torch.zeros(1, c, h, w, dtype=x.dtype, device=x.device)
            basis[0, ci] = torch.outer(dh[u], dw[v]) * step
            xa, ya, da, pa = x[active], y[active], delta[active], p[active]
            improved = torch.zeros(active.numel(), dtype=torch.bool, device=x.device)
            new_d, new_p, new_pred = da.clone(), pa.clone(), torch.full_like(ya, -1)
            for sign in (-1.0, 1.0):
                todo = (~improved).nonzero().flatten()
                if todo.numel() == 0:
                    break
                cand = feasible(da[todo], sign * basis.expand(todo.numel(), -1, -1, -1), active[todo])
                pc, predc = prob_true(xa[todo] + cand, ya[todo])
                queries[active[todo]] += 1
                ok = pc < pa[todo]
                sel = todo[ok]
                new_d[sel], new_p[sel], new_pred[sel] = cand[ok], pc[ok], predc[ok]
                improved[sel] = True
            delta[active] = new_d
            p[active] = new_p
            fooled = improved & (new_pred != ya)
            active = active[~fooled]
        x_adv = (x + delta).clamp(0.0, 1.0)
        if not return_info:
            return x_adv
        success = check_model_output(model(x_adv), model).argmax(1) != y
    d = (x_adv - x).flatten(1)
    return x_adv, {"success": success, "queries": queries, "l2": d.norm(dim=1), "linf": d.abs().amax(1)}


# ----------------------------------------------------------------------------- the checks

def _whitebox(model, x, y, eps, norm, band, version, steps, seed, batch_size):
    """Per-image robustness (bool tensor) under the AutoAttack ensemble of :func:`band_autoattack`."""
    with eval_mode(model), torch.no_grad():
        k = int(check_model_output(model(x[:1]), model).shape[1])
    if k < 4 and version == "standard":
        version = ["apgd-ce", "apgd-dlr"] if k == 3 else ["apgd-ce"]
    r = band_autoattack(model, x, y, eps, norm=norm, band=band, version=version, steps=steps, seed=seed,
                        batch_size=batch_size)
    return r["robust"], {"version": r["version"], "attacks": list(r["attacks"]), "steps": steps}


def accuracy_vs_eps(model: nn.Module, x: torch.Tensor, y: torch.Tensor, norm: str = "linf",
                    eps_list: Sequence[float] | None = None, threshold: float = 0.05, steps: int = 50,
                    restarts: int = 1, band: torch.Tensor | None = None, basis: str = "dct", seed: int = 0,
                    batch_size: int | None = None, progress: bool = False) -> dict:
    """Accuracy under APGD-CE as the radius grows: it must fall to about 0 (Carlini et al. 2019).

    For each radius, :func:`freqkit.apgd.apgd` with the cross-entropy loss (``steps``
    iterations, ``restarts`` restarts, optionally inside a band).  Two symptoms of gradient
    masking (Athalye et al. 2018, Sec. 3.1; Carlini et al. 2019, Sec. 5.2) are checked:
    accuracy that does not reach ``threshold`` at the largest radius, and accuracy that
    rises with the radius (by more than one image).  A large enough radius can turn any
    image into any other, so an honest model loses every image (inside a band, the band
    may be unable to move some images within ``[0, 1]``: then the floor is not 0).

    Args:
        model: classifier on ``[0, 1]`` images returning logits ``(N, K)``.
        x: images ``(N, C, H, W)`` in ``[0, 1]``.
        y: labels in ``[0, K)``.
        norm: ``"linf"`` (default) or ``"l2"``.
        eps_list: increasing radii ``>= 0``, at least two; default ``None``: Linf
            ``0, 1, 2, 4, 8, 16, 32, 64, 128, 255`` / 255, L2 ``0, 0.125, ..., 64`` (doubling).
        threshold: the accuracy at the largest radius must be at most this, in ``[0, 1]``.
        steps, restarts: APGD iterations and restarts per radius, ``>= 1``.
        band, basis: optional band (as :func:`freqkit.apgd.apgd`).
        seed: seed of the attacks.
        batch_size: images per attack call; default ``None``: all.
        progress: show a progress bar over the radii.

    Returns:
        dict: ``eps`` (list), ``accuracy`` (list, per radius), ``eps_below_threshold`` (the
        smallest radius whose accuracy is at most ``threshold``, or ``None``),
        ``monotone`` (bool), ``max_rise`` (largest accuracy increase between consecutive
        radii), ``passed`` (reaches ``threshold`` and monotone), ``threshold``, ``norm``,
        ``steps``, ``restarts``, ``n``, ``seconds``.

    Shape:
        - x: ``(N, C, H, W)``; y: ``(N,)``.

    Raises:
        ValueError: ``eps_list`` with fewer than two radii, a negative or non-finite one, or
            not increasing; ``threshold`` outside ``[0, 1]``; and what :func:`freqkit.apgd.apgd`
            refuses.
    """
    check_images(x, "x", unit_range=True)
    norm = _check_norm(norm)
    y = check_labels(y, x.shape[0], x.device)
    if eps_list is None:
        eps_list = ([0.0] + [2 ** i / 255 for i in range(8)] + [1.0] if norm == "linf"
                    else [0.0] + [0.125 * 2 ** i for i in range(10)])
    eps_list = [float(e) for e in eps_list]
    if len(eps_list) < 2 or any(not math.isfinite(e) or e < 0 for e in eps_list) or \
            any(b <= a for a, b in zip(eps_list, eps_list[1:])):
        raise ValueError(f"eps_list must hold at least two increasing radii >= 0, got {eps_list!r}")
    threshold = check_number(threshold, "threshold", lo=0.0, lo_open=False, hi=1.0)
    check_positive_int(steps, "steps")
    check_positive_int(restarts, "restarts")
    bs = x.shape[0] if batch_size is None else check_positive_int(batch_size, "batch_size")
    t0 = time.perf_counter()
    clean = _predict(model, x, bs) == y
    acc = []
    for e in progress_bar(eps_list, enabled=progress, desc="eps"):
        if e == 0:
            acc.append(int(clean.sum()) / x.shape[0])
            continue
        ok = []
        for i in range(0, x.shape[0], bs):
            _, info = apgd(model, x[i:i + bs], y[i:i + bs], e, norm=norm, steps=steps, restarts=restarts, band=band,
                           basis=basis, seed=seed, return_info=True)
            ok.append(~info["success"])
        acc.append(int((torch.cat(ok) & clean).sum()) / x.shape[0])
    rise = max([0.0] + [b - a for a, b in zip(acc, acc[1:])])
    below = next((e for e, a in zip(eps_list, acc) if a <= threshold), None)
    monotone = rise <= 1.0 / x.shape[0] + 1e-12
    return {"eps": eps_list, "accuracy": acc, "eps_below_threshold": below, "monotone": monotone, "max_rise": rise,
            "passed": bool(acc[-1] <= threshold and monotone), "threshold": threshold, "norm": norm, "steps": steps,
            "restarts": restarts, "n": int(x.shape[0]), "seconds": time.perf_counter() - t0}


def _compare(name, other: torch.Tensor, white: torch.Tensor, tolerance: float, extra: dict) -> dict:
    """The record of 'attack ``name`` must not beat the white-box attack' (robust flags per image)."""
    only = other.logical_not() & white
    a_o, a_w = int(other.sum()) / other.numel(), int(white.sum()) / white.numel()
    return {f"{name}_accuracy": a_o, "whitebox_accuracy": a_w, "difference_pp": 100 * (a_o - a_w),
            f"fooled_only_by_{name}": int(only.sum()), "tolerance": tolerance,
            "passed": bool(a_o >= a_w - tolerance), **_acc(other), **extra}


def blackbox_check(model: nn.Module, x: torch.Tensor, y: torch.Tensor, eps: float, norm: str = "linf",
                   whitebox_robust: torch.Tensor | None = None, band: torch.Tensor | None = None,
                   max_iters: int = 1000, tolerance: float = 0.02, whitebox: str = "standard", steps: int = 100,
                   seed: int = 0, batch_size: int | None = None) -> dict:
    """The black-box attack SimBA-DCT must not beat the white-box attack (Carlini et al. 2019).

    Runs :func:`simba_dct` and compares its robust accuracy with the white-box robust
    accuracy (``whitebox_robust`` if given, else the AutoAttack ensemble of
    :func:`freqkit.apgd.band_autoattack` with ``whitebox`` and ``steps``).  The check fails
    when the black-box accuracy is lower than the white-box one by more than ``tolerance``:
    a gradient attack that does worse than random search along DCT directions is not
    following the model's gradients (Athalye et al. 2018, Sec. 3.1).

    Args:
        model: classifier on ``[0, 1]`` images returning logits ``(N, K)``.
        x, y: images ``(N, C, H, W)`` in ``[0, 1]`` and labels.
        eps: radius, ``> 0``.
        norm: ``"linf"`` (default) or ``"l2"``.
        whitebox_robust: optional ``(N,)`` bool tensor of white-box robustness per image.
        band: optional ``(H, W)`` DCT mask for both attacks.
        max_iters: SimBA directions per image, ``>= 1``.
        tolerance: allowed shortfall of the black-box accuracy, in ``[0, 1]`` (default 2 pp).
        whitebox, steps: the white-box ensemble (a :func:`freqkit.apgd.band_autoattack`
            version) and its iterations, when ``whitebox_robust`` is not given.
        seed: seed of both attacks.
        batch_size: images per white-box attack call; default ``None``: all.

    Returns:
        dict: ``passed``, ``blackbox_accuracy``, ``whitebox_accuracy``, ``difference_pp``,
        ``fooled_only_by_blackbox`` (images the black-box attack fooled and the white-box
        did not), ``tolerance``, ``accuracy``/``ci_lo``/``ci_hi``/``n`` (black box),
        ``robust`` (list of bools, black box), ``queries_median``, ``attack``.

    Shape:
        - x: ``(N, C, H, W)``; y: ``(N,)``; whitebox_robust: ``(N,)``.

    Raises:
        ValueError: ``whitebox_robust`` not ``(N,)``; ``tolerance`` outside ``[0, 1]``; and
            what :func:`simba_dct` or :func:`freqkit.apgd.band_autoattack` refuse.
    """
    check_images(x, "x", unit_range=True)
    y = check_labels(y, x.shape[0], x.device)
    norm = _check_norm(norm)
    tolerance = check_number(tolerance, "tolerance", lo=0.0, lo_open=False, hi=1.0)
    white = _given_robust(whitebox_robust, x)
    wb_info = {}
    if white is None:
        white, wb_info = _whitebox(model, x, y, eps, norm, band, whitebox, steps, seed, batch_size)
    xs, info = simba_dct(model, x, y, eps, norm=norm, max_iters=max_iters, band=band, seed=seed, return_info=True)
    clean = _predict(model, x, x.shape[0] if batch_size is None else batch_size) == y
    robust = ~info["success"] & clean
    rec = _compare("blackbox", robust, white, tolerance,
                   {"robust": robust.cpu().tolist(), "queries_median": float(info["queries"].float().median()),
                    "attack": f"SimBA-DCT (Guo et al. 2019), {max_iters} directions", "whitebox": wb_info})
    return rec


def _given_robust(r, x):
    if r is None:
        return None
    if isinstance(r, (list, tuple)):
        r = torch.tensor(r, dtype=torch.bool)
    if not isinstance(r, torch.Tensor) or r.dim() != 1 or r.shape[0] != x.shape[0]:
        raise ValueError(f"whitebox_robust must be a bool tensor (or list) of shape ({x.shape[0]},), got "
                         f"{tuple(r.shape) if isinstance(r, torch.Tensor) else type(r).__name__}")
    return r.to(device=x.device, dtype=torch.bool)


def transfer_check(model: nn.Module, source_model: nn.Module, x: torch.Tensor, y: torch.Tensor, eps: float,
                   norm: str = "linf", whitebox_robust: torch.Tensor | None = None, band: torch.Tensor | None = None,
                   source_version="standard", tolerance: float = 0.02, whitebox: str = "standard",
                   steps: int = 100, seed: int = 0, batch_size: int | None = None) -> dict:
    """Adversarial examples made on another model must not beat the white-box attack (transfer check).

    The examples are made on ``source_model`` (a standard model, say) with the AutoAttack
    ensemble of :func:`freqkit.apgd.band_autoattack` (``source_version``), then classified
    by ``model``.  A transfer attack knows less about ``model`` than its own white-box
    attack; if it fools ``model`` more often (by more than ``tolerance``), the white-box
    attack is not working: a symptom of gradient masking (Athalye et al. 2018, Sec. 3.1;
    Carlini et al. 2019, Sec. 5.4).

    Args:
        model: the classifier checked, on ``[0, 1]`` images returning logits ``(N, K)``.
        source_model: the classifier the examples are made on (same input and classes).
        x, y: images ``(N, C, H, W)`` in ``[0, 1]`` and labels.
        eps: radius, ``> 0``.
        norm: ``"linf"`` (default) or ``"l2"``.
        whitebox_robust: optional ``(N,)`` bool tensor of ``model``'s white-box robustness.
        band: optional ``(H, W)`` mask for the attacks (DCT).
        source_version: :func:`freqkit.apgd.band_autoattack` version run on the source.
        tolerance: allowed shortfall of the transfer accuracy, in ``[0, 1]`` (default 2 pp).
        whitebox, steps: the white-box ensemble and its iterations (when
            ``whitebox_robust`` is not given; ``steps`` also for the source attack).
        seed: seed of the attacks.
        batch_size: images per attack call; default ``None``: all.

    Returns:
        dict: ``passed``, ``transfer_accuracy``, ``whitebox_accuracy``, ``difference_pp``,
        ``fooled_only_by_transfer``, ``source_accuracy`` (the source model's robust accuracy
        under its own attack), ``tolerance``, ``accuracy``/``ci_lo``/``ci_hi``/``n``
        (transfer), ``robust`` (list of bools).

    Shape:
        - x: ``(N, C, H, W)``; y: ``(N,)``; whitebox_robust: ``(N,)``.

    Raises:
        TypeError: ``source_model`` not callable.
        ValueError: as :func:`blackbox_check`.
    """
    check_images(x, "x", unit_range=True)
    y = check_labels(y, x.shape[0], x.device)
    norm = _check_norm(norm)
    if not callable(source_model):
        raise TypeError(f"source_model must be a classifier (an nn.Module), got {type(source_model).__name__}")
    tolerance = check_number(tolerance, "tolerance", lo=0.0, lo_open=False, hi=1.0)
    white = _given_robust(whitebox_robust, x)
    wb_info = {}
    if white is None:
        white, wb_info = _whitebox(model, x, y, eps, norm, band, whitebox, steps, seed, batch_size)
    with eval_mode(source_model), torch.no_grad():
        k = int(check_model_output(source_model(x[:1]), source_model).shape[1])
    if k < 4 and source_version == "standard":
        source_version = ["apgd-ce"]
    src = band_autoattack(source_model, x, y, eps, norm=norm, band=band, version=source_version, steps=steps,
                          seed=seed, batch_size=batch_size)
    bs = x.shape[0] if batch_size is None else batch_size
    clean = _predict(model, x, bs) == y
    robust = (_predict(model, src["x_adv"], bs) == y) & clean
    return _compare("transfer", robust, white, tolerance,
                    {"robust": robust.cpu().tolist(), "source_accuracy": src["accuracy"],
                     "source_attack": {"version": src["version"], "attacks": list(src["attacks"]), "steps": steps},
                     "whitebox": wb_info})


def masking_checks(model: nn.Module, x: torch.Tensor, y: torch.Tensor, eps: float, norm: str = "linf",
                   source_model: nn.Module | None = None, band: torch.Tensor | None = None,
                   eps_list: Sequence[float] | None = None, whitebox="standard", steps: int = 100,
                   curve_steps: int = 50, simba_iters: int = 1000, threshold: float = 0.05,
                   tolerance: float = 0.02, seed: int = 0, batch_size: int | None = None) -> dict:
    """The gradient-masking checks of Athalye et al. 2018 and Carlini et al. 2019, as data.

    One white-box evaluation (the AutoAttack ensemble of
    :func:`freqkit.apgd.band_autoattack`, optionally inside a band) and three checks
    against it: :func:`accuracy_vs_eps` (accuracy falls to about 0 as eps grows),
    :func:`blackbox_check` (SimBA-DCT does not beat the white-box attack) and, given a
    ``source_model``, :func:`transfer_check` (examples made on the source do not beat it).
    The model is checked as given: to check a defense with a non-differentiable step, pass
    it without BPDA to see the masking, with BPDA to check the adaptive attack.

    Args:
        model: classifier on ``[0, 1]`` images returning logits ``(N, K)``.
        x, y: images ``(N, C, H, W)`` in ``[0, 1]`` and labels.
        eps: the threat model's radius, ``> 0``.
        norm: ``"linf"`` (default) or ``"l2"``.
        source_model: optional model for the transfer check (e.g. a standard model); ``None``
            skips that check (reported as skipped).
        band: optional ``(H, W)`` DCT mask: every attack inside the band.
        eps_list: radii of the accuracy curve (see :func:`accuracy_vs_eps`).
        whitebox: the white-box ensemble, a :func:`freqkit.apgd.band_autoattack` version.
        steps: APGD iterations of the white-box and source attacks, ``>= 1``.
        curve_steps: APGD-CE iterations per radius of the curve, ``>= 1``.
        simba_iters: SimBA-DCT directions per image, ``>= 1``.
        threshold: see :func:`accuracy_vs_eps`.
        tolerance: see :func:`blackbox_check`.
        seed: seed of every attack.
        batch_size: images per attack call; default ``None``: all.

    Returns:
        dict: ``whitebox`` (``accuracy``, ``ci_lo``, ``ci_hi``, ``n``, ``robust``, ``version``,
        ``attacks``, ``steps``), ``checks`` (``{"accuracy_to_zero": ..., "blackbox": ...,
        "transfer": ...}``, each with ``passed``; ``transfer`` is ``{"skipped": reason,
        "passed": None}`` without a source model), ``passed`` (every check run passed),
        ``failed`` (names of the failed checks), ``eps``, ``norm``, ``seconds``.

    Shape:
        - x: ``(N, C, H, W)``; y: ``(N,)``.

    Raises:
        ValueError, TypeError: what the checks refuse.

    Example:
        >>> import torch, freqkit.masking as M
        >>> _ = torch.manual_seed(0); model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 5))
        >>> x = torch.rand(6, 1, 8, 8); y = model(x).argmax(1)
        >>> r = M.masking_checks(model, x, y, eps=0.1, steps=5, curve_steps=5, simba_iters=20)
        >>> sorted(r["checks"]), r["checks"]["transfer"]["passed"]
        (['accuracy_to_zero', 'blackbox', 'transfer'], None)
    """
    check_images(x, "x", unit_range=True)
    y = check_labels(y, x.shape[0], x.device)
    norm = _check_norm(norm)
    eps = check_number(eps, "eps")
    t0 = time.perf_counter()
    white, wb = _whitebox(model, x, y, eps, norm, band, whitebox, steps, seed, batch_size)
    checks = {
        "accuracy_to_zero": accuracy_vs_eps(model, x, y, norm, eps_list, threshold, curve_steps, band=band,
                                            seed=seed, batch_size=batch_size),
        "blackbox": blackbox_check(model, x, y, eps, norm, white, band, simba_iters, tolerance, seed=seed,
                                   batch_size=batch_size),
    }
    if source_model is None:
        checks["transfer"] = {"skipped": "no source model given", "passed": None}
    else:
        checks["transfer"] = transfer_check(model, source_model, x, y, eps, norm, whitebox_robust=white, band=band,
                                            source_version=whitebox, tolerance=tolerance, steps=steps, seed=seed,
                                            batch_size=batch_size)
    failed = [k for k, v in checks.items() if v["passed"] is False]
    return {"whitebox": {**_acc(white), "robust": white.cpu().tolist(), **wb}, "checks": checks,
            "passed": not failed, "failed": failed, "eps": eps, "norm": norm,
            "seconds": time.perf_counter() - t0}
