"""Human frequency sensitivity, and how well a model's frequency reliance matches it.

The contrast sensitivity function (CSF) of Mannos & Sakrison (1974, "The effects of a
visual fidelity criterion on the encoding of images", IEEE Trans. Inf. Theory 20(4)):

    A(f) = 2.6 (0.0192 + 0.114 f) exp(-(0.114 f)^1.1),    f in cycles per degree,

a band-pass curve peaking near 8 cycles/degree.  Mapping it onto image frequencies needs a
viewing assumption: how many image pixels fall in one degree of visual angle.  The
default, 60 pixels per degree (one pixel per arcminute, the acuity of 20/20 vision), is
the usual "normal viewing" assumption of image-quality metrics; pass another value to
model a larger or smaller display.  A DCT coefficient at normalised radius ``r`` (units of
Nyquist, see :mod:`freqkit.transforms`) oscillates at ``r / 2`` cycles per pixel, hence at
``r / 2 * pixels_per_degree`` cycles per degree.
"""
from __future__ import annotations

import torch

from ._validate import check_mask, check_tensor
from .transforms import frequency_radius

__all__ = ["csf_mannos_sakrison", "csf_map", "band_sensitivity", "human_alignment"]


def csf_mannos_sakrison(f_cpd: torch.Tensor) -> torch.Tensor:
    """Mannos-Sakrison contrast sensitivity at ``f_cpd`` cycles/degree, normalised to a peak of 1.

    ``A(f) = 2.6 (0.0192 + 0.114 f) exp(-(0.114 f)^1.1)`` (Mannos & Sakrison 1974, "The
    effects of a visual fidelity criterion on the encoding of images"), divided by its
    maximum, found numerically on a 0..60 cycles/degree grid in steps of 0.01 (the peak is
    at about 7.9 cycles/degree).  Band-pass: the sensitivity at 0 cycles/degree is about
    0.051.

    Args:
        f_cpd: spatial frequencies in cycles per degree of visual angle, ``>= 0``: a tensor,
            array-like or number (NaN is not caught).

    Returns:
        The normalised sensitivity in ``[0, 1]``, float64, shape of ``f_cpd``.

    Raises:
        ValueError: a negative frequency.
    """
    f = torch.as_tensor(f_cpd, dtype=torch.float64)
    if bool((f < 0).any()):
        raise ValueError("f_cpd must be >= 0 (cycles per degree)")
    a = 2.6 * (0.0192 + 0.114 * f) * torch.exp(-(0.114 * f) ** 1.1)
    # normalise by the true maximum (found numerically), not the "about 8 cpd" rule of thumb
    grid = torch.linspace(0.0, 60.0, 6001, dtype=torch.float64)
    peak = float((2.6 * (0.0192 + 0.114 * grid) * torch.exp(-(0.114 * grid) ** 1.1)).max())
    return a / peak


def csf_map(h: int, w: int, basis: str = "dct", pixels_per_degree: float = 60.0) -> torch.Tensor:
    """Human contrast sensitivity (0..1) of every coefficient of an ``h x w`` frequency grid.

    Coefficient ``(u, v)`` at normalised radius ``r`` (:func:`freqkit.frequency_radius`,
    units of Nyquist) oscillates at ``r / 2`` cycles per pixel, hence at
    ``r / 2 * pixels_per_degree`` cycles per degree, and gets
    :func:`csf_mannos_sakrison` of that (see the module docstring for the viewing
    assumption).

    Args:
        h: image height, an integer ``>= 1``.
        w: image width, an integer ``>= 1``.
        basis: ``"dct"`` or ``"dft"`` (the centred DFT grid).
        pixels_per_degree: image pixels per degree of visual angle, a number ``> 0``;
            the default 60 (one pixel per arcminute) is "normal viewing".

    Returns:
        The sensitivity per coefficient, float64 (on the default device).

    Shape:
        - output: ``(H, W)``

    Raises:
        ValueError: ``pixels_per_degree`` not a number ``> 0``; ``h`` or ``w`` not an integer
            ``>= 1``; an unknown ``basis``.

    Example:
        >>> import torch, freqkit as fk
        >>> s = fk.csf_map(32, 32)
        >>> s.shape, s.dtype, round(float(s.max()), 3), round(float(s[0, 0]), 3)  # s[0, 0]: the mean
        (torch.Size([32, 32]), torch.float64, 1.0, 0.051)
    """
    if not (isinstance(pixels_per_degree, (int, float)) and pixels_per_degree > 0):
        raise ValueError(f"pixels_per_degree must be > 0, got {pixels_per_degree!r}")
    r = frequency_radius(h, w, basis, "radial")
    return csf_mannos_sakrison(r / 2.0 * pixels_per_degree)


def band_sensitivity(masks: torch.Tensor, basis: str = "dct", pixels_per_degree: float = 60.0) -> torch.Tensor:
    """Mean human contrast sensitivity over each band of ``masks``.

    The mean of :func:`csf_map` over the coefficients of each band.

    Args:
        masks: bool or 0/1 band masks on the ``basis`` grid (need not partition the plane).
        basis: ``"dct"`` or ``"dft"``.
        pixels_per_degree: the viewing assumption of :func:`csf_map`, a number ``> 0``.

    Returns:
        One sensitivity per band, in ``[0, 1]``, float64.

    Shape:
        - masks: ``(K, H, W)``
        - output: ``(K,)``

    Raises:
        ValueError: ``masks`` not a 3-D tensor (also for a non-tensor), with values other
            than 0/1 or an empty band; ``pixels_per_degree`` not ``> 0``; an unknown ``basis``.
    """
    if not isinstance(masks, torch.Tensor) or masks.dim() != 3:
        raise ValueError(f"masks must be a (K, H, W) tensor, got {getattr(masks, 'shape', type(masks))}")
    k, h, w = masks.shape
    masks = check_mask(masks, "masks", h, w, allow_stack=True)
    s = csf_map(h, w, basis, pixels_per_degree)
    return torch.stack([s[m].mean() for m in masks])


def human_alignment(band_shares: torch.Tensor, masks: torch.Tensor, basis: str = "dct",
                    pixels_per_degree: float = 60.0) -> torch.Tensor:
    """Human-alignment score of a model's frequency reliance, in [0, 1].

    ``band_shares``: the share of a model's |attribution| in each band (a data-set
    profile, e.g. from :func:`freqkit.radial_attribution_profile`; rows are normalised here).
    The score is the attribution-weighted mean human sensitivity,

        score = sum_k share_k * S_k,     S_k = mean CSF over band k (:func:`band_sensitivity`),

    i.e. the expected visibility to a person of the frequencies the model's decision rests
    on: 1 if all attribution sits where humans are most sensitive, near 0 if it sits where
    they are blind.  Chosen over a divergence between profiles because it needs no model
    of how *much* a person relies on each band, only of what they can see, and it is
    linear, so a data-set score is the mean of per-image scores (with rows of equal sum).

    Args:
        band_shares: non-negative, finite floating-point shares (or any non-negative
            weights: each row is divided by its sum), K per row, with a positive row sum.
        masks: the K bands ``(K, H, W)`` the shares refer to, on the ``basis`` grid.
        basis: ``"dct"`` or ``"dft"``.
        pixels_per_degree: the viewing assumption of :func:`csf_map`, a number ``> 0``.

    Returns:
        One score per row, in ``[0, 1]``, ``band_shares``' dtype.

    Shape:
        - band_shares: ``(..., K)``
        - masks: ``(K, H, W)``
        - output: ``(...)``

    Raises:
        TypeError: ``band_shares`` is not a tensor or not floating-point.
        ValueError: ``band_shares`` 0-D, non-finite, negative, with a row sum ``<= 0``, or
            with another number of bands than ``masks``; ``masks`` invalid (see
            :func:`band_sensitivity`); ``pixels_per_degree`` not ``> 0``; an unknown ``basis``.

    Example:
        >>> import torch, freqkit as fk
        >>> masks = fk.band_masks(32, 32, 4)
        >>> shares = torch.tensor([[1.0, 0, 0, 0], [0, 0, 0, 1.0], [1, 1, 1, 1.0]])
        >>> [round(v, 2) for v in fk.human_alignment(shares, masks).tolist()]
        [0.91, 0.11, 0.5]
    """
    check_tensor(band_shares, "band_shares", min_dim=1)
    s = band_sensitivity(masks, basis, pixels_per_degree).to(band_shares.dtype)
    if band_shares.shape[-1] != s.shape[0]:
        raise ValueError(f"band_shares has {band_shares.shape[-1]} bands but masks has {s.shape[0]}")
    if bool((band_shares < 0).any()):
        raise ValueError("band_shares must be non-negative (shares of |attribution|)")
    tot = band_shares.sum(-1, keepdim=True)
    if bool((tot <= 0).any()):
        raise ValueError("band_shares must have a positive sum in every row")
    return (band_shares / tot * s).sum(-1)
