"""Which frequencies does a model rely on?  Two measures of reliance.

* :func:`filtered_accuracy` (with :func:`high_frequency_energy`): accuracy on low- and
  high-pass filtered images, after Wang et al. 2019, "High-frequency component helps
  explain the generalization of convolutional neural networks" (CVPR 2020; arXiv
  1905.13545): a model that still classifies images from which everything but the high
  frequencies was removed uses information a person barely sees.
* :func:`alignment_profile`: the share of a model's attribution per radial band, and how
  well that reliance matches human contrast sensitivity (:func:`freqkit.human_alignment`).
* Model-only measures, per image, for comparing suites of models (H4: adversarially trained
  models rely more on low frequencies), with no attribution method in between:
  :func:`input_gradient_spectrum` (where the input gradient's power lies) and
  :func:`band_occlusion_shares` (how much removing each band changes the output).

Both take tensors or an iterable of ``(images, labels)`` batches (a DataLoader, streamed),
and split their images across ranks under an initialised ``torch.distributed`` process
group (``torchrun``; ``python -m freqkit.run filtered-accuracy``), returning the same full
result on every rank.
"""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ._distributed import (
    agree_shape, all_reduce_sum, checksum, fail_together, gather_in_order, is_distributed, local_batches, world,
)
from ._explain import check_masks
from ._runtime import eval_mode, model_device
from ._runtime import progress as progress_bar
from ._validate import (
    check_choice, check_images, check_label_range, check_labels, check_model_output, check_number, check_positive_int,
    check_tensor,
)
from .attribution import attribute, band_shares
from .heatmaps import fourier_heatmap, heatmap_summary
from .human import band_sensitivity, human_alignment
from .models import predict_logits
from .stats import bootstrap_ci, wilson_interval
from .transforms import band_masks, check_basis, dct2, high_pass, low_high_masks, low_pass, radial_profile, to_basis

__all__ = ["filtered_accuracy", "high_frequency_energy", "alignment_profile", "input_gradient_spectrum",
           "band_occlusion_shares", "suite_reliance"]


def filtered_accuracy(model, x, y: torch.Tensor | None, cutoffs: Sequence[float], mode: str = "low",
                      basis: str = "dct", kind: str = "radial", batch_size: int = 500,
                      clip: bool = False, progress: bool = False) -> dict:
    """Accuracy of ``model`` on low- or high-pass filtered copies of ``x``, per cut-off radius.

    After Wang et al. 2019 ("High-frequency component helps explain the generalization of
    convolutional neural networks", CVPR 2020): each image is filtered with
    :func:`freqkit.low_pass` (``mode="low"``: keep normalised radius ``<= cutoff``) or
    :func:`freqkit.high_pass` (``"high"``: keep radius ``> cutoff``) and classified; a model
    that still classifies high-pass images uses information a person barely sees.  Accuracy
    comes with a 95% Wilson interval (:func:`freqkit.wilson_interval`).  The model runs in
    eval mode; every submodule's mode is restored afterwards.

    Data: whole tensors ``x``, ``y`` (peak memory: the images in float64 twice, their
    filtered copies and their DCT, about 5 x 8 bytes per pixel of the data set), or an
    iterable of ``(images, labels)`` batches with ``y=None`` (a DataLoader: streamed, each
    batch moved to the model's device, filtered at every cut-off and dropped; peak memory
    about 5 x 8 bytes per pixel of one batch, whatever the data set's size).

    Under ``torch.distributed`` (an initialised process group with several ranks, e.g.
    ``torchrun``) the images are split by rank (:func:`freqkit._distributed.local_batches`:
    a contiguous share of tensor ``x``, of a sequential DataLoader's indices, or every
    ``size``-th batch of another iterable); the counts are summed over ranks, so every rank
    returns the same result, equal to one process's (accuracies exactly, ``energy_kept`` to
    float rounding).  Every rank must pass the same data and arguments (checked); a rank
    that raises makes every rank raise.

    Args:
        model: classifier taking ``(N, C, H, W)`` images in ``[0, 1]`` (normalisation
            inside), returning logits ``(N, n_classes)``: an ``nn.Module`` or any callable.
        x: images ``(N, C, H, W)`` in ``[0, 1]``, at least one; or an iterable of
            ``(images, labels)`` batches (e.g. a DataLoader) with ``y=None``.
        y: ``(N,)`` integer labels, on ``x``'s device; ``None`` for an iterable.
        cutoffs: normalised radii (units of Nyquist, ``>= 0``; up to ``sqrt(2)`` for
            ``kind="radial"``); at least one.
        mode: ``"low"`` (default) or ``"high"``, as above.
        basis: ``"dct"`` (default) or ``"dft"`` (the frequency grid of the filter).
        kind: ``"radial"`` (default; Euclidean radius) or ``"ring"`` (``max(fu, fv)``).
        batch_size: images per filtering and forward pass, >= 1 (default 500; an
            iterable keeps its own batches for filtering, and is cut to ``batch_size`` for
            the forward passes).
        clip: clip filtered images to ``[0, 1]``.  Off by default, as in Wang et al.: a
            high-pass image is near-zero-mean and clipping would destroy it.
        progress: show a progress bar (on a terminal; rank 0 only).

    Returns:
        a dict: ``cutoffs``, ``accuracy`` (in ``[0, 1]``), ``ci_lo``, ``ci_hi`` (lists, one
        per cut-off), ``n`` (images), ``energy_kept`` (per cut-off, the mean fraction of an
        image's non-DC energy that survives the filter; without ``clip`` up to rounding in
        ``[0, 1]``), and the setting ``mode``, ``basis``, ``kind``.

    Shape:
        - x: ``(N, C, H, W)``; y: ``(N,)``.

    Raises:
        ValueError: ``x`` not 4-D, not finite, outside ``[0, 1]`` or holding no image; ``y``
            not 1-D or of another length than ``x``, or given with an iterable ``x``; a batch
            that is not ``(images, labels)``; an unknown ``mode``, ``basis`` or
            ``kind``; ``batch_size`` not an integer >= 1; no ``cutoffs``; a cut-off that is
            negative or not finite; a model output that is not 2-D or holds NaN or inf (the
            message names the model).
        TypeError: ``x`` not a floating-point tensor (nor an iterable); ``y`` not an integer
            tensor.
        RankFailed: (distributed) another rank raised.
        DistributedError: (distributed) a rank died or hung past the process group's timeout.
    """
    tensor = isinstance(x, torch.Tensor)
    if not tensor or is_distributed():
        return _filtered_accuracy_sharded(model, x, y, cutoffs, mode, basis, kind, batch_size, clip, progress)
    check_images(x, "x", unit_range=True)
    check_tensor(y, "y", ndim=1, floating=False)
    if y.shape[0] != x.shape[0]:
        raise ValueError(f"y must have one label per image: x has {x.shape[0]}, y has {y.shape[0]}")
    check_choice(mode, "mode", ("low", "high"))
    check_positive_int(batch_size, "batch_size")
    if len(cutoffs) == 0:
        raise ValueError("cutoffs must hold at least one radius")
    filt = low_pass if mode == "low" else high_pass
    c = dct2(x.double())
    c[..., 0, 0] = 0  # non-DC energy: the mean alone carries no class information a person sees
    total = (c ** 2).sum((1, 2, 3)).clamp_min(1e-12)
    acc, lo, hi, kept = [], [], [], []
    for cut in progress_bar(cutoffs, enabled=progress, desc=f"{mode}-pass accuracy"):
        parts = []
        for i in range(0, x.shape[0], batch_size):
            xf = filt(x[i:i + batch_size], float(cut), basis=basis, kind=kind)
            parts.append(xf.clamp(0, 1) if clip else xf)
        xf = torch.cat(parts)
        with eval_mode(model):
            pred = check_model_output(predict_logits(model, xf, batch_size), model).argmax(1)
        k = int((pred == y).sum())
        acc.append(k / len(y))
        a, b = wilson_interval(k, len(y))
        lo.append(a), hi.append(b)
        cf = dct2(xf.double())
        cf[..., 0, 0] = 0
        kept.append(float(((cf ** 2).sum((1, 2, 3)) / total).mean()))
    return {"cutoffs": [float(v) for v in cutoffs], "accuracy": acc, "ci_lo": lo, "ci_hi": hi, "n": len(y),
            "energy_kept": kept, "mode": mode, "basis": basis, "kind": kind}


def _check_filter_args(cutoffs, mode, batch_size):
    check_choice(mode, "mode", ("low", "high"))
    check_positive_int(batch_size, "batch_size")
    if len(cutoffs) == 0:
        raise ValueError("cutoffs must hold at least one radius")


def _filtered_accuracy_sharded(model, x, y, cutoffs, mode, basis, kind, batch_size, clip, progress) -> dict:
    """:func:`filtered_accuracy` streamed over batches, split by rank, with counts summed over ranks."""
    tensor = isinstance(x, torch.Tensor)
    fp = {}
    with fail_together("filtered_accuracy", fingerprint=lambda: fp):
        if tensor:
            check_images(x, "x", unit_range=True)
            check_tensor(y, "y", ndim=1, floating=False)
            if y.shape[0] != x.shape[0]:
                raise ValueError(f"y must have one label per image: x has {x.shape[0]}, y has {y.shape[0]}")
            fp.update(n=x.shape[0], shape="x".join(map(str, x.shape[1:])), x_sum=checksum(x),
                      y_sum=checksum(y))
        _check_filter_args(cutoffs, mode, batch_size)
        batches, n_batches = local_batches(x, y, batch_size, "x")
        fp.update(cutoffs=",".join(f"{float(c):.9g}" for c in cutoffs), mode=mode, basis=basis, kind=kind,
                  clip=bool(clip))
    filt = low_pass if mode == "low" else high_pass
    k = len(cutoffs)
    correct = torch.zeros(k, dtype=torch.int64)
    kept = torch.zeros(k, dtype=torch.float64)
    n = 0
    dev = None if tensor else model_device(model)
    with fail_together("filtered_accuracy: computing"):
        with eval_mode(model):
            for off, xb, yb in progress_bar(batches, enabled=progress and world().rank == 0, total=n_batches,
                                            desc=f"{mode}-pass accuracy", unit="batch"):
                if not tensor:
                    where = f"x's batch at image {off}"
                    check_images(xb, where, unit_range=True)
                    xb = xb.to(dev)
                    yb = check_labels(torch.as_tensor(yb), xb.shape[0], dev, name=f"labels of {where}")
                if xb.shape[0] == 0:
                    continue
                c = dct2(xb.double())
                c[..., 0, 0] = 0
                total = (c ** 2).sum((1, 2, 3)).clamp_min(1e-12)
                for j, cut in enumerate(cutoffs):
                    xf = filt(xb, float(cut), basis=basis, kind=kind)
                    if clip:
                        xf = xf.clamp(0, 1)
                    pred = check_model_output(predict_logits(model, xf, batch_size), model).argmax(1)
                    correct[j] += int((pred == yb.to(pred.device)).sum())
                    cf = dct2(xf.double())
                    cf[..., 0, 0] = 0
                    kept[j] += float(((cf ** 2).sum((1, 2, 3)) / total).sum())
                n += int(xb.shape[0])
    n = int(all_reduce_sum(torch.tensor([n], dtype=torch.int64), "filtered_accuracy")[0])
    if n == 0:
        raise ValueError("x holds no images (N = 0): the iterable yielded no non-empty batch")
    correct = all_reduce_sum(correct, "filtered_accuracy")
    kept = all_reduce_sum(kept, "filtered_accuracy")
    acc, lo, hi = [], [], []
    for j in range(k):
        kk = int(correct[j])
        acc.append(kk / n)
        a, b = wilson_interval(kk, n)
        lo.append(a), hi.append(b)
    return {"cutoffs": [float(v) for v in cutoffs], "accuracy": acc, "ci_lo": lo, "ci_hi": hi, "n": n,
            "energy_kept": [float(v) / n for v in kept], "mode": mode, "basis": basis, "kind": kind}


def high_frequency_energy(x: torch.Tensor, cutoff: float, basis: str = "dct") -> torch.Tensor:
    """Per image, the fraction of non-DC energy above ``cutoff``.

    The energy of :func:`freqkit.high_pass` ``(x, cutoff, basis)`` (all channels) over the
    energy of ``x`` without its DC (mean) coefficient; both bases are orthonormal and share
    the DC coefficient, so the ratio is a fraction in ``[0, 1]``.  The measure
    :func:`filtered_accuracy` puts next to its accuracies (Wang et al. 2019).  An image
    without non-DC energy (a constant image) gives ~0.

    Args:
        x: images ``(N, C, H, W)`` (any range).
        cutoff: normalised radius (units of Nyquist, ``>= 0``); frequencies with radius
            ``> cutoff`` count as high.
        basis: ``"dct"`` (default) or ``"dft"``: the grid on which the radius is measured.

    Returns:
        ``(N,)`` float64 tensor in ``[0, 1]``.

    Shape:
        - x: ``(N, C, H, W)``.
        - output: ``(N,)``.

    Raises:
        ValueError: ``x`` not 4-D or not finite; ``cutoff`` negative, not finite or not a
            number; an unknown ``basis``.
        TypeError: ``x`` not a floating-point tensor.

    Example:
        >>> import torch, freqkit as fk
        >>> i = torch.arange(8.0)     # single DCT basis images: frequency 1 and 7 along W
        >>> low = 0.5 + 0.2 * torch.cos(torch.pi * (i + 0.5) * 1 / 8).expand(1, 1, 8, 8)
        >>> high = 0.5 + 0.2 * torch.cos(torch.pi * (i + 0.5) * 7 / 8).expand(1, 1, 8, 8)
        >>> fk.high_frequency_energy(torch.cat([low, high]), cutoff=0.5).round(decimals=6).tolist()
        [0.0, 1.0]
    """
    check_images(x, "x")
    c = dct2(x.double())
    c[..., 0, 0] = 0
    hp = high_pass(x.double(), cutoff, basis=basis)
    return (hp ** 2).sum((1, 2, 3)) / (c ** 2).sum((1, 2, 3)).clamp_min(1e-12)


def alignment_profile(model: nn.Module, x, y: torch.Tensor | None, n_bands: int = 8, method: str = "ig",
                      pixels_per_degree: float = 60.0, n_boot: int = 1000, seed: int = 0, batch_size: int = 64,
                      progress: bool = False, **attr_kw) -> dict:
    """Radial attribution profile of ``model`` and its human-alignment score, per image and overall.

    One attribution pass (:func:`freqkit.attribute` with ``method`` in the DCT basis,
    explaining the true class ``y``; ``attr_kw`` e.g. ``n_steps``) gives per image: the
    share of ``|attribution|`` in each of ``n_bands`` equal-width radial bands
    (:func:`freqkit.band_shares`), the human-alignment score of those shares
    (:func:`freqkit.human_alignment`: the attribution-weighted mean of the Mannos & Sakrison
    1974 contrast sensitivity), and the share in the lower half of the coefficients
    (:func:`freqkit.low_high_masks`, used by H4).  Means come with percentile-bootstrap 95%
    CIs over images (one seeded numpy stream: band shares, then score, then low share).  The
    model runs in eval mode and its mode is restored afterwards.

    Data: tensors ``x``, ``y``, or an iterable of ``(images, labels)`` batches with
    ``y=None`` (a DataLoader: streamed, each batch moved to the model's device; peak memory
    that of :func:`freqkit.attribute` on one batch (bound it with ``internal_batch_size``)
    plus ``n_bands + 1`` floats per image).  Under ``torch.distributed`` (several ranks)
    the images are split by rank (:func:`freqkit._distributed.local_batches`), the per-image
    shares gathered in image order on every rank, and the bootstrap run on every rank with
    the same seed: every rank returns the same result, equal (to float rounding: batches
    differ) to one process's.  A rank that raises makes every rank raise.

    Args:
        model: pixel classifier, ``(N, C, H, W)`` in ``[0, 1]`` -> logits.
        x: images ``(N, C, H, W)`` in ``[0, 1]``, or an iterable of ``(images, labels)``
            batches; y: ``(N,)`` integer labels (``None`` for an iterable).
        n_bands: radial bands over ``[0, sqrt(2)]``, >= 2 (default 8).
        method: attribution method (default ``"ig"``).  The shares are taken of the
            per-coefficient scores on the radial bands, so for occlusion and Shapley (whose
            scores are spread over their own bands) they mix those bands.
        pixels_per_degree: viewing geometry of the contrast sensitivity (default 60).
        n_boot: bootstrap resamples, >= 1; seed: seeds them.
        batch_size: images per :func:`freqkit.attribute` call, >= 1 (tensor ``x``; an
            iterable keeps its batches).
        progress: show a progress bar (only in a terminal).
        **attr_kw: passed to :func:`freqkit.attribute`.

    Returns:
        a JSON-ready dict: ``method``, ``n``, ``n_bands``, ``edges`` (``n_bands + 1`` band
        edges), ``band_sensitivity`` (per band), ``shares`` (``mean``, ``ci_low``,
        ``ci_high``: lists per band), ``score`` and ``low_share`` (``mean``, ``ci_low``,
        ``ci_high``: floats), ``per_image_score``, ``per_image_low_share`` (lists of N) and
        ``pixels_per_degree``.

    Shape:
        - x: ``(N, C, H, W)``; y: ``(N,)``.

    Raises:
        ValueError: ``x`` not 4-D, not finite, outside ``[0, 1]`` or holding no image; ``y``
            not 1-D or of another length, or not ``None`` for an iterable; a batch that is not
            ``(images, labels)`` or of another image shape; ``n_bands`` < 2, ``n_boot`` or ``batch_size`` not
            an integer >= 1; an image whose attribution is all zero (no alignment score);
            and what :func:`freqkit.attribute` raises (a model output holding NaN or inf).
        TypeError: ``x`` not a floating-point tensor (nor an iterable); ``y`` not an integer
            tensor.
        RankFailed: (distributed) another rank raised.
        DistributedError: (distributed) a rank died or hung past the process group's timeout.
    """
    tensor = isinstance(x, torch.Tensor)
    fp = {}
    with fail_together("alignment_profile", fingerprint=lambda: fp):
        if tensor:
            check_images(x, "x", unit_range=True)
            check_tensor(y, "y", ndim=1, floating=False)
            if y.shape[0] != x.shape[0]:
                raise ValueError(f"y must have one label per image ({x.shape[0]}), got {y.shape[0]}")
            if x.shape[0]:
                fp.update(n=x.shape[0], x_sum=checksum(x), y_sum=checksum(y))
        check_positive_int(n_bands, "n_bands", 2)
        check_positive_int(batch_size, "batch_size")
        check_positive_int(n_boot, "n_boot")
        batches, n_batches = local_batches(x, y, batch_size, "x")
        fp.update(method=str(method), n_bands=n_bands, n_boot=n_boot, seed=int(seed),
                  attr_kw=repr(sorted(attr_kw.items())))
    dev = None if tensor else model_device(model)
    shares, lows, index = [], [], []
    shape, masks = None, None
    with fail_together("alignment_profile: computing"):
        with eval_mode(model):
            for off, xb, yb in progress_bar(batches, enabled=progress and world().rank == 0, total=n_batches,
                                            desc=f"{method} profile"):
                if not tensor:
                    where = f"x's batch at image {off}"
                    check_images(xb, where, unit_range=True)
                    xb = xb.to(dev)
                    yb = check_labels(torch.as_tensor(yb), xb.shape[0], dev, name=f"labels of {where}")
                if xb.shape[0] == 0:
                    continue
                if shape is None:
                    shape = tuple(xb.shape[1:])
                    masks, halves = _profile_masks(shape[-2], shape[-1], n_bands)
                elif tuple(xb.shape[1:]) != shape:
                    raise ValueError(f"x's batches must all hold images of one shape: the batch at image {off} has "
                                     f"{tuple(xb.shape[1:])}, the first had {shape}")
                r = attribute(model, xb, yb, method=method, basis="dct", **attr_kw)
                sc = r.scores.detach().double().cpu()
                shares.append(band_shares(sc, masks))
                lows.append(band_shares(sc, halves)[:, 0])
                index.append(torch.arange(off, off + xb.shape[0]))
    _, h, w = agree_shape(shape, 3, "alignment_profile")
    if masks is None:
        masks, halves = _profile_masks(h, w, n_bands)
    per = torch.cat(shares) if shares else torch.zeros(0, n_bands, dtype=torch.float64)
    low = torch.cat(lows) if lows else torch.zeros(0, dtype=torch.float64)
    idx = torch.cat(index) if index else torch.zeros(0, dtype=torch.int64)
    per, low = gather_in_order(idx, per, low, what="alignment_profile")
    score = human_alignment(per, masks, "dct", pixels_per_degree)
    rng = np.random.default_rng(seed)  # one stream: band shares, then score, then low share
    sh_lo, sh_hi = bootstrap_ci(per.numpy(), np.mean, n_boot=n_boot, rng=rng)
    s_lo, s_hi = bootstrap_ci(score.numpy(), np.mean, n_boot=n_boot, rng=rng)
    l_lo, l_hi = bootstrap_ci(low.numpy(), np.mean, n_boot=n_boot, rng=rng)
    return {"method": method, "n": int(per.shape[0]), "n_bands": n_bands,
            "edges": [float(v) for v in torch.linspace(0, math.sqrt(2), n_bands + 1)],
            "band_sensitivity": band_sensitivity(masks, "dct", pixels_per_degree).tolist(),
            "shares": {"mean": per.mean(0).tolist(), "ci_low": sh_lo.tolist(), "ci_high": sh_hi.tolist()},
            "score": {"mean": float(score.numpy().mean()), "ci_low": float(s_lo), "ci_high": float(s_hi)},
            "per_image_score": score.tolist(),
            "low_share": {"mean": float(low.numpy().mean()), "ci_low": float(l_lo), "ci_high": float(l_hi)},
            "per_image_low_share": low.tolist(), "pixels_per_degree": pixels_per_degree}


def _profile_masks(h: int, w: int, n_bands: int):
    """The radial DCT bands of :func:`alignment_profile` and its lower/upper halves."""
    masks = band_masks(h, w, n_bands, kind="radial", basis="dct")
    lh = low_high_masks(h, w)
    return masks, torch.stack([lh["low"], lh["high"]])


# ============================================================================ model-only reliance (H4)

def _halves(h: int, w: int, basis: str, device=None) -> torch.Tensor:
    """``(2, H, W)``: the lower and the upper half of the coefficients (:func:`freqkit.low_high_masks`)."""
    lh = low_high_masks(h, w, basis)
    return torch.stack([lh["low"], lh["high"]]).to(device)


def input_gradient_spectrum(model, x: torch.Tensor, y: torch.Tensor, of: str = "loss", basis: str = "dct",
                            n_bands: int = 8, batch_size: int = 64) -> dict:
    """Where the power of the input gradient lies in frequency, per image.

    Per image, the gradient ``g`` of the model's cross-entropy loss at the true label
    (``of="loss"``) or of the true class's logit (``of="logit"``) with respect to the
    pixels, its power spectrum ``sum_channels B(g)^2`` in ``basis`` (orthonormal DCT-II, or
    the real Hartley form of the DFT, :func:`freqkit.to_basis`), and the share of that power
    in the lower half of the coefficients (:func:`freqkit.low_high_masks`: equal-count
    halves by radius; the mean is in the lower half) and in ``n_bands`` equal-width radial
    bands.  A model-only measure: the gradient is the first-order answer to "which small
    change of the input changes the output", with no attribution method's path or
    baseline in between.  Adversarially trained models have smoother, more
    image-like input gradients (Tsipras et al. 2019, "Robustness may be at odds with
    accuracy"), i.e. more low-frequency power; Yin et al. 2019 ("A Fourier perspective on
    model robustness") find them more sensitive to low-frequency perturbations.

    Why the loss by default: it is the quantity attacks ascend and adversarial training
    flattens (Madry et al. 2018), so its gradient is what a robust model was trained to
    change; it is ``sum_k (p_k - [k = y]) grad logit_k``, so it also weighs the classes
    the image could be confused with.  Its size shrinks as ``1 - p_y`` for confident
    images, but the shares are ratios and do not depend on it (the softmax runs in float64,
    so a gradient underflows to zero only beyond a logit margin of about 700).  ``of="logit"``
    is the gradient of the evidence for the true class alone (the saliency map of Simonyan
    et al. 2013), never scaled down by confidence.

    The model runs in eval mode (every submodule's mode restored after); only the input
    gets gradients (the parameters' ``.grad`` are untouched).

    Args:
        model: classifier, images ``(N, C, H, W)`` -> logits ``(N, n_classes)`` (an
            ``nn.Module`` or any differentiable callable).
        x: images ``(N, C, H, W)``, at least one, finite.
        y: ``(N,)`` integer true labels.
        of: ``"loss"`` (default) or ``"logit"``, as above.
        basis: ``"dct"`` (default) or ``"dft"`` (one of :data:`freqkit.transforms.BASES`).
        n_bands: equal-width radial bands over ``[0, sqrt(2)]`` for the profile, >= 2.
        batch_size: images per forward and backward pass, >= 1.

    Returns:
        a dict: ``low_share`` ``(N,)`` float64 CPU tensor in ``[0, 1]`` (NaN for an image
        whose gradient is exactly zero), ``band_shares`` ``(N, K)`` (power share per radial
        band; rows sum to 1, NaN rows as above), ``profile`` ``(K,)`` (the mean of
        ``band_shares`` over images, NaN rows left out), ``edges`` (``K + 1`` band edges,
        units of Nyquist), ``grad_norm`` ``(N,)`` (L2 norm of ``g``), ``n_zero`` (images with
        a zero gradient), and the setting ``of``, ``basis``.

    Shape:
        - x: ``(N, C, H, W)``; y: ``(N,)``.
        - low_share, grad_norm: ``(N,)``; band_shares: ``(N, K)``; profile: ``(K,)``.

    Raises:
        ValueError: ``x`` not 4-D, not finite or holding no image; ``y`` not ``(N,)`` or a
            label out of the model's range; an unknown ``of`` or ``basis``; ``n_bands`` < 2
            or ``batch_size`` < 1; a model output that is not 2-D or holds NaN or inf.
        TypeError: ``x`` not a floating-point tensor; ``y`` not an integer tensor.

    Example:
        >>> import torch, freqkit as fk
        >>> _ = torch.manual_seed(0); x = torch.rand(4, 1, 8, 8); y = torch.tensor([0, 1, 2, 0])
        >>> model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 3))
        >>> r = fk.reliance.input_gradient_spectrum(model, x, y, n_bands=4)
        >>> r["low_share"].shape, r["band_shares"].shape, [round(float(v), 6) for v in r["band_shares"].sum(1)]
        (torch.Size([4]), torch.Size([4, 4]), [1.0, 1.0, 1.0, 1.0])
    """
    check_images(x, "x", nonempty=True)
    y = check_labels(y, x.shape[0], x.device)
    check_choice(of, "of", ("loss", "logit"))
    check_basis(basis)
    check_positive_int(n_bands, "n_bands", 2)
    check_positive_int(batch_size, "batch_size")
    n, _, h, w = x.shape
    grads = []
    with eval_mode(model):
        for i in range(0, n, batch_size):
            xb = x[i:i + batch_size].detach().clone().requires_grad_(True)
            yb = y[i:i + batch_size]
            out = check_model_output(model(xb), model)
            check_label_range(yb, out.shape[1])
            # Summed over the batch, each image's loss depends on its own pixels only, so one
            # backward pass gives every image its own gradient.
            if of == "loss":
                obj = F.cross_entropy(out.double(), yb, reduction="sum")
            else:
                obj = out.gather(1, yb[:, None]).sum()
            (g,) = torch.autograd.grad(obj, xb)
            grads.append(g.detach())
    g = torch.cat(grads).double()
    power = (to_basis(g, basis) ** 2).sum(1)                          # (N, H, W)
    total = power.sum((1, 2))
    zero = total == 0
    safe = torch.where(zero, torch.ones_like(total), total)
    halves = _halves(h, w, basis, power.device)
    low = radial_profile(power, halves[:1])[:, 0] / safe
    masks = band_masks(h, w, n_bands, kind="radial", basis=basis, device=power.device)
    shares = radial_profile(power, masks) / safe[:, None]
    nan = torch.tensor(float("nan"), dtype=torch.float64, device=power.device)
    low = torch.where(zero, nan, low).cpu()
    shares = torch.where(zero[:, None], nan, shares).cpu()
    ok = ~zero.cpu()
    profile = shares[ok].mean(0) if bool(ok.any()) else torch.full((n_bands,), float("nan"), dtype=torch.float64)
    return {"low_share": low, "band_shares": shares, "profile": profile,
            "edges": [float(v) for v in torch.linspace(0, math.sqrt(2), n_bands + 1)],
            "grad_norm": total.sqrt().cpu(), "n_zero": int(zero.sum()), "of": of, "basis": basis}


def band_occlusion_shares(model, x: torch.Tensor, y: torch.Tensor, masks: torch.Tensor | None = None,
                          basis: str = "dct", output: str = "logit", baseline=None, by: str = "abs",
                          keep_dc: bool = False, internal_batch_size: int | None = None) -> dict:
    """How much removing each frequency band changes the true class's output, as shares, per image.

    Band occlusion (Zeiler & Fergus 2014, applied to frequency bands as in Wang et al. 2020,
    "Towards frequency-based explanation for robust CNN"): for each band ``k`` of ``masks``
    the band's coefficients are replaced by the baseline's (zeros by default) and the drop
    ``f_y(x) - f_y(x without band k)`` of the true class's output is recorded
    (:func:`freqkit.attribute` ``method="occlusion"``, ``mode="remove"``).  The drops are
    normalised to shares, ``|drop_k| / sum_j |drop_j|`` (``by="abs"``) or ``drop_k / sum_j
    |drop_j|`` (``"signed"``: a band whose removal raises the output gets a negative
    share); a drop within rounding, ``|drop_k| <= 64 eps (1 + |f_y(x)|)`` with ``eps`` the
    machine epsilon of ``x``'s dtype, counts as 0.  With the default masks (the lower and
    the upper half of the coefficients, :func:`freqkit.low_high_masks`) ``low_share`` is
    the share of the lower half: near 1 for a model that uses only low frequencies, near 0
    for one that uses only high ones.
    A model-only measure: two forward passes per image and band, no gradients.

    Why the logit by default: it is what occlusion explains in Wang et al. 2020 and in
    :func:`freqkit.attribute`, and unlike the probability it does not saturate: removing a
    band the model uses lowers the logit even when the softmax stays near 1.

    The lower half holds the mean (DC) coefficient: removing it makes the image dark grey
    around 0, a change of brightness nearly every model reacts to, standard or robust.
    ``keep_dc=True`` takes the DC coefficient out of every band, so it is never removed and
    the shares compare the remaining frequencies only.

    Args:
        model: classifier on images ``(N, C, H, W)`` (an ``nn.Module``, run in eval mode and
            its submodules' modes restored, or any callable).
        x: images ``(N, C, H, W)``, at least one.
        y: ``(N,)`` integer true labels (the class whose output is watched).
        masks: ``(K, H, W)`` disjoint bool bands on the ``basis`` grid, ``K >= 2`` (``None``:
            the two halves of :func:`freqkit.low_high_masks`).
        basis: ``"dct"`` (default) or ``"dft"``.
        output: ``"logit"`` (default), ``"prob"`` or ``"log_prob"``.
        baseline: what a removed band is replaced by, as in :func:`freqkit.attribute`
            (``None``: zero coefficients; a name of
            :data:`freqkit.attribution.NAMED_BASELINES`, a number or a tensor).
        by: ``"abs"`` (default) or ``"signed"``, as above.
        keep_dc: never remove the DC (mean) coefficient (default ``False``: it is part of
            the band that holds it), see above.
        internal_batch_size: masked images per forward pass (default 256).

    Returns:
        a dict of CPU float64 tensors: ``drops`` ``(N, K)`` (output units, as measured),
        ``shares`` ``(N, K)`` (NaN rows where no band's removal changes the output beyond
        rounding), ``low_share``
        ``(N,)`` (``shares[:, 0]``; only with the default masks, else ``None``), plus
        ``output_x`` ``(N,)`` (the output on ``x``), ``masks`` and the setting ``basis``,
        ``output``, ``by``.

    Shape:
        - x: ``(N, C, H, W)``; y: ``(N,)``; masks: ``(K, H, W)``.
        - drops, shares: ``(N, K)``; low_share: ``(N,)``.

    Raises:
        ValueError: ``x`` not 4-D, not finite or holding no image; ``y`` not ``(N,)`` or out
            of range; an unknown ``basis``, ``output``, ``by`` or baseline name; ``masks``
            overlapping, of the wrong shape, with an empty band (also one that held only
            the DC coefficient, with ``keep_dc``) or fewer than 2 bands; a model output
            holding NaN or inf.
        TypeError: ``x`` not a floating-point tensor; ``y`` not an integer tensor.

    Example:
        >>> import torch, freqkit as fk
        >>> _ = torch.manual_seed(0); x = torch.rand(3, 1, 8, 8); y = torch.tensor([0, 1, 2])
        >>> model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 3))
        >>> r = fk.reliance.band_occlusion_shares(model, x, y)
        >>> r["shares"].shape, bool(torch.allclose(r["shares"].sum(1), torch.ones(3, dtype=torch.float64)))
        (torch.Size([3, 2]), True)
    """
    check_images(x, "x", nonempty=True)
    y = check_labels(y, x.shape[0], x.device)
    check_choice(by, "by", ("abs", "signed"))
    check_basis(basis)
    default = masks is None
    h, w = x.shape[-2:]
    if default:
        masks = _halves(h, w, basis, x.device)
    if keep_dc:
        masks = check_masks(masks, h, w, disjoint=True, device=x.device).clone()
        dc = (0, 0) if basis == "dct" else (h // 2, w // 2)       # the DFT grid is centred
        masks[:, dc[0], dc[1]] = False
    res = attribute(model, x, y, method="occlusion", basis=basis, masks=masks, baseline=baseline, output=output,
                    internal_batch_size=internal_batch_size)
    if res.masks.shape[0] < 2:
        raise ValueError(f"masks must hold at least 2 bands to share the drops among, got {res.masks.shape[0]}")
    drops = res.band_scores.detach().double().cpu()
    fx = res.output_x.detach().double().cpu()
    # A band the model ignores still "drops" the output by rounding error (the inverse
    # transform and the forward pass round); normalised, that noise would pose as a share.
    floor = 64 * torch.finfo(x.dtype).eps * (1 + fx.abs())[:, None]
    kept = torch.where(drops.abs() > floor, drops, torch.zeros_like(drops))
    total = kept.abs().sum(1, keepdim=True)
    num = kept.abs() if by == "abs" else kept
    shares = torch.where(total > 0, num / torch.where(total > 0, total, torch.ones_like(total)),
                         torch.full_like(num, float("nan")))
    return {"drops": drops, "shares": shares, "low_share": shares[:, 0].clone() if default else None,
            "output_x": res.output_x.detach().double().cpu(), "masks": res.masks.cpu(), "basis": basis,
            "output": output, "by": by}


def suite_reliance(models: Sequence, x: torch.Tensor, y: torch.Tensor, n_bands: int = 8,
                   lowpass_cutoff: float | None = None, heatmap_x: torch.Tensor | None = None,
                   heatmap_y: torch.Tensor | None = None, heatmap_eps: float | None = None,
                   batch_size: int = 64, seed: int = 0) -> dict:
    """The model-only reliance measures of a suite (one model per training seed), per seed and image.

    The measures the hypotheses on reliance compare between suites (H4, H6), each a number
    per image and seed, none depending on an attribution method's path or baseline:

    * ``gradient_low_share``: share of the input gradient's power in the lower half of the
      DCT coefficients (:func:`input_gradient_spectrum`, ``n_bands`` radial bands for the
      profile);
    * ``occlusion_low_share``: share of the lower half in band occlusion with the DC term
      removed with its half (:func:`band_occlusion_shares`, default masks, ``keep_dc=False``);
    * ``lowpass_retention`` (when ``lowpass_cutoff`` is given): correct on the low-pass copy
      (:func:`freqkit.low_pass`, radius ``<= lowpass_cutoff``) minus correct on the image,
      per image (``-1``, ``0`` or ``1``);
    * ``heatmap_low_minus_high`` (when ``heatmap_x`` is given): the Fourier heat map's error
      in the lower minus the upper half of the frequencies (Yin et al. 2019,
      :func:`freqkit.fourier_heatmap` per image, :func:`freqkit.heatmap_summary`), on its own
      images ``heatmap_x``, ``heatmap_y`` at L2 size ``heatmap_eps``, signs seeded ``seed``.

    Args:
        models: the suite: ``nn.Module`` classifiers on ``[0, 1]`` images, at least one.
        x: images in ``[0, 1]``.
        y: their labels.
        n_bands: radial bands of the gradient profile, ``>= 1``.
        lowpass_cutoff: normalised radius of the low-pass copy (``0 < r``), or ``None`` (not
            measured).
        heatmap_x, heatmap_y: images and labels of the heat maps, or ``None`` (not measured).
        heatmap_eps: L2 size of the Fourier perturbations; required with ``heatmap_x``.
        batch_size: images per forward/backward pass (heat maps: ``4 * batch_size``
            perturbed images per pass).
        seed: seed of the heat maps' random signs.

    Returns:
        dict: each measure above as a float64 numpy array ``(S, N)`` (``(S, N_heat)`` for
        the heat map), rows in the order of ``models``; ``gradient_edges`` (``n_bands + 1``
        radii), ``gradient_band_shares`` ``(S, N, n_bands)`` float64 tensor (each image's
        share of the gradient power per band; NaN rows where the gradient is 0), ``heatmaps`` ``(S, H, W)`` float32 tensor (each seed's mean
        per-image map) or ``None``, and ``n_seeds``.

    Shape:
        - x: ``(N, C, H, W)``; y: ``(N,)``.
        - heatmap_x: ``(N_heat, C, H, W)``; heatmap_y: ``(N_heat,)``.

    Raises:
        ValueError: ``models`` empty; ``heatmap_x`` without ``heatmap_y`` or ``heatmap_eps``
            (or the other way round); ``lowpass_cutoff`` not a number ``> 0``; and what
            the measures' functions raise for ``x``, ``y``, ``n_bands`` or ``batch_size``.
    """
    models = list(models)
    if not models:
        raise ValueError("models must hold at least one model (one per seed), got none")
    if (heatmap_x is None) != (heatmap_y is None) or (heatmap_x is None) != (heatmap_eps is None):
        raise ValueError("heatmap_x, heatmap_y and heatmap_eps go together: give all three or none "
                         f"(got heatmap_x {'set' if heatmap_x is not None else 'None'}, heatmap_y "
                         f"{'set' if heatmap_y is not None else 'None'}, heatmap_eps {heatmap_eps!r})")
    if lowpass_cutoff is not None:
        check_number(lowpass_cutoff, "lowpass_cutoff")
        x_low = low_pass(x, float(lowpass_cutoff))

    def correct(m, v):
        with eval_mode(m):
            return (check_model_output(predict_logits(m, v, batch_size), m).argmax(1) == y.to(v.device)).double()

    out = {k: [] for k in ("gradient_low_share", "occlusion_low_share", "lowpass_retention",
                           "heatmap_low_minus_high")}
    profiles, maps, edges = [], [], None
    for m in models:
        g = input_gradient_spectrum(m, x, y, n_bands=n_bands, batch_size=batch_size)
        edges = g["edges"]
        out["gradient_low_share"].append(g["low_share"])
        profiles.append(g["band_shares"])
        out["occlusion_low_share"].append(band_occlusion_shares(m, x, y)["low_share"])
        if lowpass_cutoff is not None:
            out["lowpass_retention"].append(correct(m, x_low) - correct(m, x))
        if heatmap_x is not None:
            hm = fourier_heatmap(m, heatmap_x, heatmap_y, eps=heatmap_eps, seed=seed, per_image=True,
                                 progress=False, batch_size=4 * batch_size).cpu()
            out["heatmap_low_minus_high"].append(heatmap_summary(hm)["low_minus_high"])
            maps.append(hm.mean(0))
    res = {k: torch.stack([torch.as_tensor(v).detach().double().cpu() for v in vs]).numpy()
           for k, vs in out.items() if vs}
    res.update(gradient_edges=edges, gradient_band_shares=torch.stack(profiles),
               heatmaps=torch.stack(maps) if maps else None, n_seeds=len(models))
    return res
