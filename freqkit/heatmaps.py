"""Fourier heat maps (Yin et al. 2019, "A Fourier perspective on model robustness").

For every frequency of the centred DFT grid, the error rate (or logit drop) of a model when
each image gets that frequency's Fourier basis image added at a fixed L2 norm.

* :func:`fourier_heatmap`: the map, ``(H, W)`` on the grid of :func:`freqkit.dft2`;
* :func:`fourier_basis_images`: the perturbations it adds;
* :func:`n_fourier_directions`: how many directions a map costs;
* :func:`heatmap_radial_profile`, :func:`heatmap_summary`: the map averaged over rings, or
  over the lower and the upper half of its frequencies;
* :func:`heatmap_report`: one model's maps with what a chapter reports beside them.

Nothing here draws; the book's ``viz`` does.
"""
from __future__ import annotations

import math
import time

import numpy as np
import torch
import torch.nn as nn

from ._runtime import eval_mode
from ._runtime import progress as progress_bar
from ._validate import (
    check_choice, check_images, check_label_range, check_labels, check_model_output, check_positive_int, check_tensor,
)
from .models import predict_logits
from .transforms import equal_count_band_masks, frequency_radius, idht2

__all__ = ["fourier_basis_images", "fourier_heatmap", "n_fourier_directions", "heatmap_radial_profile",
           "heatmap_summary", "heatmap_report"]


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
    """Real unit-L2-norm Fourier basis images for flat indices of the centred DFT grid.

    The image for ``(u, v)`` is the Hartley basis image ``idht2(e_uv)`` (:func:`freqkit.idht2`):
    a sinusoid at frequency ``(u, v)`` (and so also ``-(u, v)``), ``cos + sin`` of the phase
    over ``sqrt(H W)``; its DFT is supported exactly on ``(u, v)`` and its mirror, like the
    basis of Yin et al. 2019 ("A Fourier perspective on model robustness", who use the same
    sinusoid with another phase).  These are the perturbations :func:`fourier_heatmap` adds.
    Arguments are not checked.

    Args:
        h, w: grid (image) size.
        index: 1-D integer tensor of flat indices ``u * w + v`` into the centred ``h x w``
            grid of :func:`freqkit.dft2` (zero frequency at ``(h // 2, w // 2)``), each in
            ``[0, h * w)``.
        dtype: dtype of the result (floating point).
        device: device of the result (``index`` is moved there).

    Returns:
        Tensor of ``dtype``, each image of L2 norm 1.

    Shape:
        - index: ``(D,)``.
        - Output: ``(D, H, W)``.

    Example:
        >>> import torch, freqkit as fk
        >>> b = fk.fourier_basis_images(4, 4, torch.tensor([0, 5, 9]))
        >>> tuple(b.shape), [round(float(n), 4) for n in b.flatten(1).norm(dim=1)]
        ((3, 4, 4), [1.0, 1.0, 1.0])
        >>> (fk.dft2(b).abs() > 1e-5).flatten(1).sum(1).tolist()   # (u, v) and its mirror; (-2, -2) is its own
        [1, 2, 2]
    """
    e = torch.zeros(index.numel(), h * w, dtype=dtype, device=device)
    e[torch.arange(index.numel(), device=device), index.to(device)] = 1.0
    return idht2(e.reshape(-1, h, w))

def fourier_heatmap(model: nn.Module, x: torch.Tensor, y: torch.Tensor, eps: float = 4.0,
                    batch_size: int = 512, seed: int = 0, metric: str = "error",
                    progress: bool = True) -> torch.Tensor:
    """Fourier heat map (Yin et al. 2019, "A Fourier perspective on model robustness").

    For every frequency ``(u, v)`` of the centred DFT grid, each image gets the real
    unit-L2-norm Fourier basis image ``U_uv`` (:func:`fourier_basis_images`: a sinusoid
    whose spectrum sits at ``(u, v)`` and ``(-u, -v)``) added with norm ``eps`` and a random
    sign per image and channel, ``clamp(x + eps * s * U_uv, 0, 1)``; the map holds the
    model's error rate on these images (``metric="error"``: ``argmax != y``, over all
    images, including those misclassified clean) or the mean drop of the true class's logit
    (``metric="logit_change"``: ``logit_y(x) - logit_y(x + perturbation)``).  A frequency
    and its mirror share one basis image, so each conjugate pair is evaluated once and the
    map is symmetric under ``f -> -f``.  The signs are drawn up front from ``seed``, so the
    map does not depend on ``batch_size``.  The model runs in eval mode (every submodule's
    mode restored after), without gradients.

    Args:
        model: classifier on ``[0, 1]`` images, returning logits ``(n, K)``: an
            ``nn.Module`` or any callable.
        x: images in ``[0, 1]``, at least one.
        y: labels in ``[0, K)``.
        eps: L2 norm of the perturbation per channel on ``[0, 1]`` images, a finite number
            ``>= 0``; ``4.0`` (default) is the CIFAR-10 convention of Yin et al. 2019 (a
            large, visible perturbation).
        batch_size: perturbed images per forward pass, ``>= 1`` (directions x images are
            batched).
        seed: seed of the random signs (a private CPU generator).
        metric: ``"error"`` (default) or ``"logit_change"``, or a tuple/list of both: then
            both maps come from the same perturbed images in one pass (half the cost of two
            calls) and a ``{metric: map}`` dict is returned.
        progress: show a progress bar (on a terminal).

    Returns:
        float32 map on ``x``'s device, laid out on the centred grid of :func:`freqkit.dft2`
        (zero frequency at ``(H//2, W//2)``), error rates in ``[0, 1]`` or mean logit
        drops; a ``{metric: map}`` dict when ``metric`` is a tuple or list.

    Shape:
        - x: ``(N, C, H, W)``.
        - y: ``(N,)``.
        - Output: ``(H, W)`` (each map).

    Raises:
        TypeError: ``x`` not a floating-point tensor, ``y`` not an integer tensor.
        ValueError: ``x`` not 4-D, not finite, outside ``[0, 1]`` or holding no image
            ("x holds no images (N = 0)"); ``metric`` empty or not
            ``"error"``/``"logit_change"``; ``y`` not ``(N,)`` or outside ``[0, K)``;
            ``eps`` not a finite number ``>= 0``; ``batch_size`` not an integer ``>= 1``;
            the model returning anything but finite ``(n, K)`` logits (NaN or inf: a
            corrupt or diverged checkpoint; the message names the model).

    Cost: :func:`n_fourier_directions` ``(H, W)`` directions (about half the grid, thanks to
    the symmetry) times ``N`` images, in about ``ceil(N * n_directions / batch_size)``
    forward passes (more when ``batch_size`` is not a multiple of ``N``), plus one clean
    pass for ``"logit_change"``.

    Example:
        >>> import torch, freqkit as fk
        >>> _ = torch.manual_seed(0); model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(16, 3))
        >>> x, y = torch.rand(2, 1, 4, 4), torch.tensor([0, 1])
        >>> hm = fk.fourier_heatmap(model, x, y, eps=1.0, progress=False)
        >>> tuple(hm.shape), bool(((hm >= 0) & (hm <= 1)).all())
        ((4, 4), True)
    """
    check_images(x, "x", unit_range=True)
    several = isinstance(metric, (tuple, list))
    metrics = tuple(metric) if several else (metric,)
    if not metrics:
        raise ValueError("metric must name at least one of ['error', 'logit_change'], got an empty tuple")
    for m_ in metrics:
        check_choice(m_, "metric", ("error", "logit_change"))
    n, c, h, w = x.shape
    y = check_labels(y, n, x.device)
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
    with eval_mode(model), torch.no_grad():
        clean = check_model_output(model(x), model) if "logit_change" in metrics else None
        if clean is not None:
            check_label_range(y, clean.shape[1])
            clean_y = clean.gather(1, y[:, None]).squeeze(1)
        starts = [(d0, i0) for d0 in range(0, n_dir, dirs_per_batch) for i0 in range(0, n, imgs_per_batch)]
        checked = clean is not None
        for d0, i0 in progress_bar(starts, enabled=progress, desc="Fourier heat map"):
            d1, i1 = min(d0 + dirs_per_batch, n_dir), min(i0 + imgs_per_batch, n)
            basis = fourier_basis_images(h, w, idx[d0:d1], x.dtype, x.device)      # (D, H, W)
            s = signs[d0:d1, i0:i1]                                                  # (D, n, C)
            xp = x[i0:i1].unsqueeze(0) + eps * s[..., None, None] * basis[:, None, None]
            xp = xp.clamp(0.0, 1.0).reshape(-1, c, h, w)
            logits = check_model_output(model(xp), model)
            yy = y[i0:i1].repeat(d1 - d0)
            if not checked:
                check_label_range(yy, logits.shape[1])
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


def heatmap_radial_profile(hm: torch.Tensor, n_bins: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Average a Fourier heat map (centred DFT grid, :func:`fourier_heatmap`) over rings.

    The mean of ``hm`` over each of ``n_bins`` equal-width radial bands of the normalised
    DFT radius (:func:`freqkit.frequency_radius`, from 0 to the grid's largest radius), e.g.
    the error rate as a function of the perturbation's frequency.  A band holding no grid
    point is left out, so fewer than ``n_bins`` values may come back.

    Args:
        hm: the map, on the centred DFT grid.
        n_bins: number of radial bands, ``>= 1``; default ``None``: ``min(H, W) // 2`` (at
            least 1).

    Returns:
        ``(centres, values)``: float64 numpy arrays, the mean normalised radius (units of
        Nyquist) and the mean of ``hm`` over each non-empty band.

    Shape:
        - hm: ``(H, W)``.
        - Output: ``centres``, ``values`` ``(B,)``, ``B <= n_bins``.

    Raises:
        TypeError: ``hm`` not a floating-point tensor.
        ValueError: ``hm`` not 2-D or not finite; ``n_bins`` not an integer ``>= 1``.
    """
    check_tensor(hm, "hm", ndim=2)
    h, w = hm.shape
    n_bins = max(1, min(h, w) // 2) if n_bins is None else check_positive_int(n_bins, "n_bins")
    r = frequency_radius(h, w, "dft").numpy().ravel()
    v = hm.detach().cpu().double().numpy().ravel()
    edges = np.linspace(0.0, r.max(), n_bins + 1)
    idx = np.clip(np.searchsorted(edges, r, side="right") - 1, 0, n_bins - 1)
    cnt = np.bincount(idx, minlength=n_bins)
    keep = cnt > 0                                    # a bin between two grid radii is left out
    centres = np.bincount(idx, weights=r, minlength=n_bins)[keep] / cnt[keep]
    values = np.bincount(idx, weights=v, minlength=n_bins)[keep] / cnt[keep]
    return centres, values

def n_fourier_directions(h: int, w: int) -> int:
    """Count the basis directions :func:`fourier_heatmap` evaluates on an ``h x w`` grid.

    One per pair ``{f, -f}`` of the centred DFT grid: ``(H W + s) / 2`` with ``s`` the
    number of self-conjugate frequencies (4 on an even x even grid, 1 on an odd x odd
    one), about ``H W / 2``.  The heat map of ``N`` images costs ``N *
    n_fourier_directions(H, W)`` perturbed forward passes (images, batched).

    Args:
        h, w: grid (image) size, integers ``>= 1``.

    Returns:
        int.

    Raises:
        ValueError: ``h`` or ``w`` not an integer ``>= 1``.

    Example:
        >>> import torch, freqkit as fk
        >>> fk.n_fourier_directions(32, 32), fk.n_fourier_directions(4, 4), fk.n_fourier_directions(3, 3)
        (514, 10, 5)
    """
    check_positive_int(h, "h")
    check_positive_int(w, "w")
    return int(_conjugate_pairs(h, w)[0].numel())


def heatmap_summary(hm) -> dict:
    """Mean of a Fourier heat map over the lower and the upper half of its frequencies.

    Halves by DFT radius with equal numbers of grid points, as far as the grid allows
    (:func:`freqkit.equal_count_band_masks` with 2 bands on the centred DFT grid, as
    :func:`freqkit.low_high_masks`; coefficients at one radius are never split), e.g. the
    mean error rate under low-frequency and under high-frequency Fourier-basis
    perturbations.

    Args:
        hm: the map on the centred DFT grid: a tensor or anything ``torch.as_tensor``
            takes (converted to float64).

    Returns:
        ``{"low": float, "high": float}``.

    Shape:
        - hm: ``(H, W)``.

    Raises:
        ValueError: ``hm`` not 2-D or not finite, or a grid too small to halve (fewer than 2
            distinct radii).

    Example:
        >>> import torch, freqkit as fk
        >>> s = fk.heatmap_summary(fk.frequency_radius(8, 8, "dft"))   # a map that grows with frequency
        >>> sorted(s), bool(s["low"] < s["high"])
        (['high', 'low'], True)
    """
    hm = torch.as_tensor(hm, dtype=torch.float64)
    check_tensor(hm, "hm", ndim=2)
    m = equal_count_band_masks(hm.shape[0], hm.shape[1], 2, basis="dft")
    return {"low": float(hm[m[0]].mean()), "high": float(hm[m[1]].mean())}


def heatmap_report(model: nn.Module, x: torch.Tensor, y: torch.Tensor, eps: float, batch_size: int = 512,
                   seed: int = 0, n_radial_bins: int | None = None,
                   metrics: tuple = ("error", "logit_change")) -> dict:
    """Fourier heat maps of one model (Yin et al. 2019) with what a chapter reports beside them.

    Computes every metric of ``metrics`` with one :func:`fourier_heatmap` pass, their
    radial profiles (:func:`heatmap_radial_profile`), the clean error and the timing.

    Args:
        model: classifier on ``[0, 1]`` images.
        x: images in ``[0, 1]``.
        y: labels.
        eps: L2 norm of the perturbation per channel (see :func:`fourier_heatmap`).
        batch_size: perturbed images per forward pass.
        seed: seed of the random signs.
        n_radial_bins: bands of the radial profiles (default as
            :func:`heatmap_radial_profile`).
        metrics: a metric name or a tuple of them (``"error"``, ``"logit_change"``).

    Returns:
        dict with

        * ``maps``: ``{metric: (H, W) tensor}`` on the centred DFT grid;
        * ``radial``: ``{metric: [centres, values]}`` (lists; :func:`heatmap_radial_profile`);
        * ``clean_error``: the model's error rate on ``x`` unperturbed (float);
        * ``timing``: ``seconds``, ``n_images``, ``n_directions``, ``ms_per_image_direction``,
          ``device`` (every metric comes from the same forward passes).

    Shape:
        - x: ``(N, C, H, W)``.
        - y: ``(N,)``.

    Raises:
        TypeError: ``x`` not a floating-point tensor, ``y`` not an integer tensor.
        ValueError: ``x`` holding no image; ``metrics`` empty; and what
            :func:`fourier_heatmap` and :func:`heatmap_radial_profile` reject (a model
            output holding NaN or inf, ...).
    """
    check_images(x, "x", nonempty=True)
    y = check_labels(y, x.shape[0], x.device)
    h, w = x.shape[-2:]
    metrics = (metrics,) if isinstance(metrics, str) else tuple(metrics)
    if not metrics:
        raise ValueError("metrics must name at least one metric, e.g. ('error',)")
    clean = check_model_output(predict_logits(model, x), model)
    clean_error = float((clean.argmax(1).cpu() != y.cpu()).float().mean())
    t0 = time.perf_counter()
    maps = fourier_heatmap(model, x, y, eps=eps, batch_size=batch_size, seed=seed,
                           metric=metrics if len(metrics) > 1 else metrics[0], progress=False)
    if isinstance(maps, torch.Tensor):
        maps = {metrics[0]: maps}
    sec = time.perf_counter() - t0
    n_dir = n_fourier_directions(h, w)
    return {"maps": maps,
            "radial": {m: [v.tolist() for v in heatmap_radial_profile(maps[m], n_radial_bins)] for m in maps},
            "clean_error": clean_error,
            "timing": {"seconds": sec, "n_images": int(x.shape[0]), "n_directions": n_dir,
                       "ms_per_image_direction": 1e3 * sec / max(1, x.shape[0] * n_dir), "device": str(x.device)}}
