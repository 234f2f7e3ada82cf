"""Ground truth for frequency attributions: a data set and a model where the answer is known.

:func:`planted_frequency_dataset` makes images whose classes differ *only* in the energy
of one DCT band.  A model that classifies them well can only be using that band, so a
faithful attribution method must put its mass there.  :func:`train_planted_model` trains
such a model (:class:`freqkit.models.PlantedCNN`) in seconds and :func:`ground_truth_table`
scores every method against the truth (:func:`planted_band_share`); the verdict on
"every method finds the planted band" is :func:`freqkit.hypotheses.decide_ground_truth`.

The default task has two classes, ``bands=[None, b]``: class 0 is the background alone,
class 1 the background with extra energy in band ``b``.  Every other band has the same
distribution in both classes, so band ``b`` is the *only* informative band, whichever
class is explained.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
import torch
from torch import nn

from ._validate import check_choice, check_mask, check_model_output, check_positive_int
from .attribution import band_shares, scores_of
from .models import PlantedCNN
from .stats import bootstrap_ci
from .training import train_on_tensors
from .transforms import band_masks, dct_matrix, frequency_radius, idct2

__all__ = ["planted_frequency_dataset", "PlantedTask", "train_planted_model", "planted_band_share",
           "ground_truth_table"]


def planted_frequency_dataset(n: int, n_classes: int = 2, size: int = 32, channels: int = 1,
                              bands: Sequence[int | None] | None = None, kind: str = "radial",
                              basis: str = "dct", n_bands: int = 8, amplitude: float = 1.0,
                              noise: float = 0.0, exponent: float = 1.0, headroom: float = 6.0,
                              seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, dict]:
    """Synthetic images whose classes differ *only* in the energy of one DCT band each.

    Construction (all Gaussian, all in the orthonormal DCT domain, per channel):

    * background, shared by every class: coefficient ``(u, v)`` ~ N(0, s_uv^2) with
      ``s_uv = (f_uv + 1/size) ** -exponent`` (``f`` = normalised radius; ``exponent=1``
      gives the 1/f amplitude spectrum of natural images, 0 white noise), plus white
      noise N(0, (noise * rms(s))^2) on every coefficient;
    * class ``c`` adds N(0, (amplitude * s_uv)^2) to every coefficient of band
      ``bands[c]`` (a random sign and magnitude per coefficient, i.e. random phase), so
      that band's expected energy grows by ``1 + amplitude^2``; ``bands[c] = None`` adds
      nothing (a "background only" class).

    Coefficient signs are symmetric, so a class is visible only in the *energy* of its
    band; every coefficient outside the planted bands has exactly the same distribution
    in every class.  The image is ``0.5 + scale * idct2(c)`` with one global ``scale``
    computed from the parameters alone (the largest pixel standard deviation of any
    class times ``headroom`` maps to 0.5), so the map to ``[0, 1]`` is the same linear map
    for every image and class and leaks nothing into other bands.  A pixel beyond
    ``headroom`` standard deviations (probability ~2e-9 per pixel at 6) is clipped as a
    last resort and counted in ``info["n_clipped"]``.  The ground truth for the attribution
    checks of :func:`ground_truth_table`.

    Args:
        n: number of images, >= 1; classes are balanced (``n // n_classes`` each, the rest
            spread over the first classes) and shuffled.
        n_classes: >= 2 (default 2).
        size: H = W, >= 2 (default 32).
        channels: C, >= 1; channels are independent draws with the same spectrum.
        bands: one band index (into ``band_masks(size, size, n_bands, kind)``) or None
            per class, distinct.  Default: evenly spaced over bands 1 .. n_bands - 2
            (for two classes: bands 1 and n_bands - 2, both planted).
        kind: ``"radial"`` (default) or ``"ring"`` bands (see :func:`freqkit.band_masks`).
        basis: only ``"dct"``.
        n_bands: number of bands K, >= 2 (default 8).
        amplitude: planted standard deviation relative to the background's, > 0.
        noise: white-noise level relative to the background's RMS coefficient, >= 0.
        exponent: background spectrum slope, >= 0.
        headroom: pixel standard deviations that fit between 0.5 and 0 or 1, > 0.
        seed: the generator's seed (images and label order; a private generator, the global
            RNG is untouched).

    Returns:
        ``x`` float32 ``(n, channels, size, size)`` in ``[0, 1]``, ``y`` int64 ``(n,)`` and
        ``info`` (dict): ``masks`` (K, H, W) bool, the band partition; ``bands`` (list);
        ``planted_masks`` (n_classes, H, W) bool, class c's planted band (all False for
        None); ``coef_std`` (n_classes, H, W), the std of each DCT coefficient of
        ``x - 0.5`` per class (before clipping); ``scale``; ``offset`` (0.5);
        ``class_names`` (``"band b"`` or ``"background"``); ``n_clipped``; and every
        parameter.

    Shape:
        - x: ``(n, channels, size, size)``; y: ``(n,)``.

    Raises:
        ValueError: ``n``, ``channels`` not an integer >= 1; ``n_classes``, ``size``,
            ``n_bands`` not an integer >= 2; an unknown ``kind`` or a ``basis`` other than
            ``"dct"``; ``amplitude`` or ``headroom`` not a finite number > 0, ``noise`` or
            ``exponent`` not >= 0; more classes than default bands (``n_classes >
            n_bands - 2`` without ``bands``); ``bands`` of the wrong length, with an index
            out of range (or not an int), or repeated; ``n_bands`` bands that cannot all be
            non-empty at this ``size`` (from :func:`freqkit.band_masks`).

    Example:
        >>> import torch, freqkit as fk
        >>> x, y, info = fk.planted_frequency_dataset(8, size=8, n_bands=4, bands=[None, 2])
        >>> x.shape, x.dtype, y.tolist().count(1), info["class_names"]
        (torch.Size([8, 1, 8, 8]), torch.float32, 4, ['background', 'band 2'])
        >>> bool(x.min() >= 0 and x.max() <= 1), info["planted_masks"].shape
        (True, torch.Size([2, 8, 8]))
    """
    check_positive_int(n, "n")
    check_positive_int(n_classes, "n_classes", 2)
    check_positive_int(size, "size", 2)
    check_positive_int(channels, "channels")
    check_positive_int(n_bands, "n_bands", 2)
    check_choice(kind, "kind", ("radial", "ring"))
    check_choice(basis, "basis", ("dct",))
    for val, nm, lo_ok in ((amplitude, "amplitude", False), (noise, "noise", True), (exponent, "exponent", True),
                           (headroom, "headroom", False)):
        if isinstance(val, bool) or not isinstance(val, (int, float)) or not math.isfinite(val) \
                or val < 0 or (val == 0 and not lo_ok):
            raise ValueError(f"{nm} must be a finite number {'>=' if lo_ok else '>'} 0, got {val!r}")
    masks = band_masks(size, size, n_bands, kind=kind, basis="dct")
    k = masks.shape[0]
    if bands is None:
        if n_classes > k - 2:
            raise ValueError(f"n_classes={n_classes} needs bands= explicitly (only {k - 2} default bands "
                             f"1..{k - 2} with n_bands={n_bands})")
        bands = [round(1 + i * (k - 3) / (n_classes - 1)) for i in range(n_classes)]
    bands = list(bands)
    if len(bands) != n_classes:
        raise ValueError(f"bands must list one band per class ({n_classes}), got {bands!r}")
    for b in bands:
        if b is not None and (isinstance(b, bool) or not isinstance(b, int) or not 0 <= b < k):
            raise ValueError(f"bands entries must be band indices in 0..{k - 1} or None, got {bands!r}")
    if len(set(bands)) != len(bands):
        raise ValueError(f"bands must be distinct (one class per band), got {bands!r}")

    f = frequency_radius(size, size, "dct", "radial")
    s = (f + 1.0 / size) ** (-float(exponent))
    white = float(noise) * float(s.pow(2).mean().sqrt())
    planted = torch.zeros(n_classes, size, size, dtype=torch.bool)
    for c, b in enumerate(bands):
        if b is not None:
            planted[c] = masks[b]
    var = s.pow(2) + white ** 2 + planted.double() * (float(amplitude) * s).pow(2)  # (n_classes, H, W)
    # Pixel variance of idct2(c) with independent coefficients: sum_uv var_uv * D[u,i]^2 D[v,j]^2.
    d2 = dct_matrix(size, dtype=torch.float64).pow(2)
    pix_std = (d2.T @ var @ d2).sqrt()
    scale = 0.5 / (float(headroom) * float(pix_std.max()))

    g = torch.Generator().manual_seed(int(seed))
    y = (torch.arange(n) % n_classes)[torch.randperm(n, generator=g)]
    z = torch.randn(n, channels, size, size, generator=g, dtype=torch.float64)
    coef = z * var.sqrt()[y].unsqueeze(1)
    img = 0.5 + scale * idct2(coef)
    n_clipped = int(((img < 0) | (img > 1)).sum())
    x = img.clamp_(0.0, 1.0).float()
    info = {
        "masks": masks, "bands": bands, "planted_masks": planted,
        "coef_std": (var.sqrt() * scale).float(), "scale": scale, "offset": 0.5,
        "class_names": [f"band {b}" if b is not None else "background" for b in bands],
        "n_clipped": n_clipped, "n": n, "n_classes": n_classes, "size": size, "channels": channels,
        "kind": kind, "basis": basis, "n_bands": n_bands, "amplitude": float(amplitude), "noise": float(noise),
        "exponent": float(exponent), "headroom": float(headroom), "seed": int(seed),
    }
    return x, y.to(torch.int64), info


@dataclass
class PlantedTask:
    """Result of :func:`train_planted_model`.

    Attributes:
        model: the trained :class:`freqkit.models.PlantedCNN` (on the CPU, eval mode).
        x_test, y_test: held-out planted images ``(n_test, C, H, W)`` and labels
            ``(n_test,)`` (drawn with ``seed + 1``, independent of the training set).
        test_accuracy: of ``model`` on them, in ``[0, 1]``.
        truth: ``(H, W)`` bool, the informative frequencies (union of the planted bands).
        band: index of the planted band in ``masks`` (the first one if several).
        masks: ``(K, H, W)`` the data set's band partition.
        info: the data set's info (see :func:`planted_frequency_dataset`), and
            ``train``: the training record of :func:`freqkit.training.train_on_tensors`.
    """

    model: nn.Module
    x_test: torch.Tensor
    y_test: torch.Tensor
    test_accuracy: float
    truth: torch.Tensor
    band: int
    masks: torch.Tensor
    info: dict = field(default_factory=dict)

    def setting(self) -> dict:
        """The setting in plain numbers, for captions and results files.

        Returns:
            a dict: the data-set parameters (``n_classes``, ``size``, ``channels``, ``kind``,
            ``n_bands``, ``amplitude``, ``noise``, ``exponent``, ``bands``), ``band``,
            ``n_train``, ``n_test``, ``test_accuracy``, ``train_seconds`` and ``epochs``.
        """
        keep = ("n_classes", "size", "channels", "kind", "n_bands", "amplitude", "noise", "exponent", "bands")
        return {**{k: self.info[k] for k in keep}, "band": self.band, "n_train": self.info["train"]["n_train"],
                "n_test": int(self.x_test.shape[0]), "test_accuracy": self.test_accuracy,
                "train_seconds": self.info["train"]["train_seconds"], "epochs": len(self.info["train"]["history"])}

def train_planted_model(band: int | None = 5, n_train: int = 4000, n_test: int = 500, bands: Sequence | None = None,
                        width: int = 8, epochs: int = 10, batch_size: int = 128, lr: float = 1e-2,
                        weight_decay: float = 1e-4, seed: int = 0, device="cpu", progress: bool = False,
                        **dataset_kw) -> PlantedTask:
    """Train a :class:`freqkit.models.PlantedCNN` on a planted-frequency data set and test it.

    The training set is :func:`planted_frequency_dataset` with ``seed``, the test set the
    same task with ``seed + 1``; the network's input normalisation is the training set's
    per-channel mean and std, its initialisation is seeded with ``seed``, and training is
    :func:`freqkit.training.train_on_tensors`.  A model that classifies the test set well
    can only be using the planted band(s).

    Args:
        band: the planted band index (default 5); the task is ``bands=[None, band]``
            (background vs background plus energy in ``band``).  Ignored if ``bands`` is given.
        n_train, n_test: images, each >= 1 (defaults 4000 and 500).
        bands: one band index or None per class, for other tasks (see
            :func:`planted_frequency_dataset`).
        width: channels of both convolutions of the network (default 8).
        epochs, batch_size, lr, weight_decay: passed to :func:`freqkit.training.train_on_tensors`.
        seed: seeds the data sets, the initialisation and the training.
        device: where to train; the returned model is on the CPU.
        progress: show a progress bar (only in a terminal).
        **dataset_kw: passed to :func:`planted_frequency_dataset` (``size``, ``channels``,
            ``kind``, ``n_bands``, ``amplitude``, ``noise``, ``exponent``...; not ``n``,
            ``n_classes``, ``bands`` or ``seed``).

    Returns:
        :class:`PlantedTask`.

    Raises:
        ValueError: ``band`` and ``bands`` both None; ``n_train`` or ``n_test`` not an
            integer >= 1; the trained model returning NaN or inf on the test images (a
            divergence; the message names the model); and what
            :func:`planted_frequency_dataset` and the training raise.
        TypeError: ``dataset_kw`` sets ``n``, ``n_classes``, ``bands`` or ``seed``.
    """
    if bands is None:
        if band is None:
            raise ValueError("band or bands is required (the planted band index)")
        bands = [None, band]
    bands = list(bands)
    for k in ("n", "n_classes", "bands", "seed"):
        if k in dataset_kw:
            raise TypeError(f"{k!r} is set by train_planted_model, not a dataset keyword")
    check_positive_int(n_train, "n_train")
    check_positive_int(n_test, "n_test")
    kw = dict(n_classes=len(bands), bands=bands, **dataset_kw)
    x, y, info = planted_frequency_dataset(n_train, seed=seed, **kw)
    xt, yt, _ = planted_frequency_dataset(n_test, seed=seed + 1, **kw)
    ch = x.shape[1]
    torch.manual_seed(seed)  # the initialisation
    mean = x.mean((0, 2, 3)).tolist()
    std = x.std((0, 2, 3)).clamp_min(1e-6).tolist()
    model = PlantedCNN(ch, len(bands), width, mean, std)
    rec = train_on_tensors(model, x, y, epochs=epochs, batch_size=batch_size, lr=lr, weight_decay=weight_decay,
                           seed=seed, device=device, progress=progress)
    model = model.cpu().eval()
    with torch.no_grad():
        acc = float((check_model_output(model(xt), model).argmax(1) == yt).float().mean())
    truth = info["planted_masks"].any(0)
    first = next(b for b in bands if b is not None)
    info = {**info, "train": rec}
    return PlantedTask(model=model, x_test=xt, y_test=yt, test_accuracy=acc, truth=truth, band=first,
                       masks=info["masks"], info=info)


def planted_band_share(result_scores, planted_masks: torch.Tensor) -> torch.Tensor:
    """Share of ``|attribution|`` mass on a planted band, per image.

    ``sum_{planted} |a| / sum_all |a|`` with channels pooled.  Ground truth for chapter 4:
    on a data set where the label lives in a known band (:func:`planted_frequency_dataset`),
    a faithful method puts most of its mass there.  An all-zero row gives 0.

    Args:
        result_scores: ``(N, C, H, W)`` scores or a :class:`freqkit.FrequencyAttribution`.
        planted_masks: bool (or 0/1) mask, one ``(H, W)`` for all images or ``(N, H, W)``,
            one per image (e.g. ``info["planted_masks"][y]``).

    Returns:
        ``(N,)`` tensor of the scores' dtype, in ``[0, 1]``.

    Shape:
        - result_scores: ``(N, C, H, W)``; planted_masks: ``(H, W)`` or ``(N, H, W)``.
        - output: ``(N,)``.

    Raises:
        ValueError: scores not 4-D or not finite (or a result without scores);
            ``planted_masks`` of the wrong shape, not 0/1, empty, or ``(M, H, W)`` with
            ``M != N``.
        TypeError: scores or ``planted_masks`` not a tensor, or scores not floating point.

    Example:
        >>> import torch, freqkit as fk
        >>> s = torch.zeros(2, 1, 4, 4); s[:, 0, 0, 0] = 1.0; s[0, 0, 3, 3] = -3.0
        >>> fk.planted_band_share(s, fk.band_masks(4, 4, 2)[1]).tolist()   # the high half
        [0.75, 0.0]
    """
    s = scores_of(result_scores, "result_scores")
    n, _, h, w = s.shape
    m = check_mask(planted_masks, "planted_masks", h, w, allow_stack=True).to(s.device)
    if m.dim() == 3 and m.shape[0] != n:
        raise ValueError(f"planted_masks must be (H, W) or one mask per image ({n}, {h}, {w}), got {tuple(m.shape)}")
    a = s.abs().sum(1)
    on = (a * m.to(a.dtype)).sum((1, 2))
    return on / a.sum((1, 2)).clamp_min(torch.finfo(a.dtype).tiny)


def ground_truth_table(results: dict, masks: torch.Tensor, truth: torch.Tensor, n_boot: int = 1000,
                       seed: int = 0) -> dict:
    """How much of each method's attribution falls on the planted (informative) frequencies.

    Per method: :func:`planted_band_share` of ``truth`` per image, its mean with a
    percentile-bootstrap 95% interval over images (:func:`freqkit.stats.bootstrap_ci`, the
    same ``seed`` for every method), and the mean :func:`freqkit.band_shares` (``by="abs"``)
    per band.  The verdict on these numbers is :func:`freqkit.hypotheses.decide_ground_truth`.

    Args:
        results: ``{method name: FrequencyAttribution or (N, C, H, W) scores}``, non-empty.
        masks: ``(K, H, W)`` band partition (the data set's ``info["masks"]``).
        truth: ``(H, W)`` bool, the planted frequencies: the union of one or more whole bands.
        n_boot: bootstrap resamples, >= 1 (default 1000).
        seed: seeds the resampling.

    Returns:
        ``{method: {...}}`` with ``share`` (mean over images of the share of ``|score|`` on
        ``truth``), ``share_ci`` (95% bootstrap interval ``[lo, hi]``), ``share_median``,
        ``coefficient_share`` (``truth``'s share of the frequencies: what a method
        spreading mass uniformly would get), ``band_shares`` (K mean shares per band,
        channels pooled), ``top_band`` (the band with the largest mean share),
        ``truth_bands`` (the bands inside ``truth``) and ``n``.

    Raises:
        ValueError: ``results`` not a non-empty dict; ``masks`` or ``truth`` of the wrong
            shape, not 0/1 or empty; ``truth`` cutting a band; ``n_boot`` not an integer
            >= 1; and what :func:`planted_band_share` and :func:`freqkit.band_shares` raise
            for a method's scores.
        TypeError: ``truth`` or a method's scores not a tensor.
    """

    if not isinstance(results, dict) or not results:
        raise ValueError("results must be a non-empty dict {method: attribution}")
    masks = check_mask(masks, "masks", *masks.shape[-2:], allow_stack=True)
    if masks.dim() == 2:
        masks = masks.unsqueeze(0)
    h, w = masks.shape[-2:]
    truth = check_mask(truth, "truth", h, w)
    inside = [k for k in range(masks.shape[0]) if bool((masks[k] & truth).any())]
    partial = [k for k in inside if bool((masks[k] & ~truth).any())]
    if partial:
        raise ValueError(f"truth must be a union of whole bands of masks; bands {partial} are cut by it")
    check_positive_int(n_boot, "n_boot")
    table = {}
    for name, r in results.items():
        share = planted_band_share(r, truth).detach().double().cpu().numpy()
        bs = band_shares(r, masks).detach().double().cpu().mean(0)
        lo, hi = (float(v) for v in bootstrap_ci(share, np.mean, n_boot=n_boot, seed=seed))
        table[name] = {"share": float(share.mean()), "share_ci": [lo, hi], "share_median": float(np.median(share)),
                       "coefficient_share": float(truth.double().mean()), "band_shares": bs.tolist(),
                       "top_band": int(bs.argmax()), "truth_bands": inside, "n": int(share.shape[0])}
    return table
