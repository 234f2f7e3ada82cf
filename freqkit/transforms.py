"""Frequency transforms and band masks: the ground floor of freqkit (pure tensor maths).

Conventions (see DESIGN.md):

* Images are float tensors ``(..., H, W)``; every transform acts on the last two dims,
  per channel, batched, on any device, and is differentiable.
* The DCT is the orthonormal 2-D DCT-II (``scipy.fft.dctn(x, norm="ortho")``).  Because
  it is orthonormal, L2 norms (Parseval) and Integrated-Gradients completeness carry over
  between pixel and frequency space.
* The DFT is unitary (``norm="ortho"``) and *centred*: the zero frequency sits at index
  ``(H // 2, W // 2)`` (``fftshift``).  ``dht2`` is its real, orthonormal sibling, the
  2-D discrete Hartley transform ``Re(F) - Im(F)`` on the same centred grid, used where a
  real basis with DFT frequencies is needed (attribution, attacks).
* Frequencies are measured in units of the Nyquist frequency, so both bases share one
  scale: DCT index ``u`` has frequency ``u / H`` (0 .. ~1), a centred DFT index ``u`` has
  ``2 |u - H//2| / H`` (0 .. 1).  The normalised radius is ``sqrt(fu^2 + fv^2)`` in
  ``[0, sqrt(2)]``; the ring ("Chebyshev") radius is ``max(fu, fv)``.
"""
from __future__ import annotations

import math
from functools import lru_cache
from typing import Sequence

import torch

from ._validate import check_choice, check_mask, check_positive_int, check_tensor

__all__ = [
    "dct_matrix", "dct2", "idct2", "dft2", "idft2", "dht2", "idht2", "to_basis", "from_basis",
    "frequency_coords", "frequency_radius", "band_masks", "check_dft_symmetric",
    "filter_band", "low_pass", "high_pass", "band_pass", "band_decompose",
    "block_dct2", "block_idct2", "power_spectrum", "radial_profile", "radial_power_law", "BASES",
]

BASES = ("dct", "dft", "dht")


# ----------------------------------------------------------------------------- DCT

@lru_cache(maxsize=64)
def _dct_matrix_cpu64(n: int) -> torch.Tensor:
    k = torch.arange(n, dtype=torch.float64).unsqueeze(1)
    i = torch.arange(n, dtype=torch.float64).unsqueeze(0)
    m = torch.cos(math.pi * (2 * i + 1) * k / (2 * n)) * math.sqrt(2.0 / n)
    m[0] /= math.sqrt(2.0)
    return m


_DEVICE_CACHE: dict = {}


def dct_matrix(n: int, dtype=torch.float32, device=None) -> torch.Tensor:
    """Orthonormal DCT-II matrix ``D`` (n x n): ``D @ v`` is scipy's ``dct(v, norm="ortho")``.

    Built in float64 and cached per (n, dtype, device), so repeated calls cost nothing.
    """
    check_positive_int(n, "n")
    device = torch.device(device) if device is not None else torch.device("cpu")
    key = (n, dtype, str(device))
    m = _DEVICE_CACHE.get(key)
    if m is None:
        m = _dct_matrix_cpu64(n).to(device=device, dtype=dtype)
        if len(_DEVICE_CACHE) > 128:
            _DEVICE_CACHE.clear()
        _DEVICE_CACHE[key] = m
    return m


def _check_spatial(x: torch.Tensor, name: str) -> torch.Tensor:
    check_tensor(x, name, min_dim=2, finite=False)
    if x.is_complex():
        raise TypeError(f"{name} must be real (float32/float64), got {x.dtype}")
    return x


def dct2(x: torch.Tensor) -> torch.Tensor:
    """Orthonormal 2-D DCT-II over the last two dims of ``x`` (shape ``(..., H, W)``).

    Equal to ``scipy.fft.dctn(x, axes=(-2, -1), norm="ortho")``; computed as two matrix
    products with cached DCT matrices, which on small images (32x32) is several times
    faster than an FFT-based DCT and differentiable for free.
    """
    _check_spatial(x, "x")
    h, w = x.shape[-2:]
    dh = dct_matrix(h, x.dtype, x.device)
    dw = dh if w == h else dct_matrix(w, x.dtype, x.device)
    return dh @ x @ dw.transpose(0, 1)


def idct2(c: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`dct2` (the orthonormal DCT-III): ``idct2(dct2(x)) == x``."""
    _check_spatial(c, "c")
    h, w = c.shape[-2:]
    dh = dct_matrix(h, c.dtype, c.device)
    dw = dh if w == h else dct_matrix(w, c.dtype, c.device)
    return dh.transpose(0, 1) @ c @ dw


# ----------------------------------------------------------------------------- DFT / DHT

def dft2(x: torch.Tensor) -> torch.Tensor:
    """Unitary 2-D DFT over the last two dims, centred (zero frequency at ``(H//2, W//2)``).

    Returns a complex tensor of the same shape.  ``idft2(dft2(x)).real == x``.
    """
    _check_spatial(x, "x")
    return torch.fft.fftshift(torch.fft.fft2(x, norm="ortho"), dim=(-2, -1))


def idft2(spec: torch.Tensor, real: bool = True) -> torch.Tensor:
    """Inverse of :func:`dft2` for a centred spectrum; returns the real part unless ``real=False``."""
    check_tensor(spec, "spec", min_dim=2, finite=False)
    out = torch.fft.ifft2(torch.fft.ifftshift(spec, dim=(-2, -1)), norm="ortho")
    return out.real if real else out


def dht2(x: torch.Tensor) -> torch.Tensor:
    """Orthonormal 2-D discrete Hartley transform, centred like :func:`dft2`.

    ``dht2(x) = Re(F) - Im(F)`` with ``F`` the unitary DFT: a *real* orthonormal basis
    whose coefficient ``(u, v)`` oscillates at the DFT frequency ``(u, v)``.  The pair of
    coefficients at ``+f`` and ``-f`` spans the same plane as the real and imaginary part
    of the DFT at ``f``, so band masks and radii carry over unchanged.  It is its own
    inverse up to the centring shift (see :func:`idht2`).
    """
    _check_spatial(x, "x")
    f = torch.fft.fft2(x, norm="ortho")
    return torch.fft.fftshift(f.real - f.imag, dim=(-2, -1))


def idht2(c: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`dht2`."""
    _check_spatial(c, "c")
    f = torch.fft.fft2(torch.fft.ifftshift(c, dim=(-2, -1)), norm="ortho")
    return f.real - f.imag


def to_basis(x: torch.Tensor, basis: str) -> torch.Tensor:
    """Real coefficients of ``x`` in an orthonormal basis: ``"dct"`` or ``"dht"``
    (``"dft"`` is accepted as an alias of the real Hartley form of the DFT)."""
    check_choice(basis, "basis", BASES)
    return dct2(x) if basis == "dct" else dht2(x)


def from_basis(c: torch.Tensor, basis: str) -> torch.Tensor:
    """Inverse of :func:`to_basis`."""
    check_choice(basis, "basis", BASES)
    return idct2(c) if basis == "dct" else idht2(c)


# ----------------------------------------------------------------------------- frequency grids

def frequency_coords(h: int, w: int, basis: str = "dct", device=None):
    """Per-coefficient frequencies ``(fu, fv)``, each ``(H, W)``, in units of Nyquist (0 .. 1).

    DCT: ``fu = u / H``.  DFT/DHT (centred): ``fu = 2 |u - H//2| / H``.
    """
    check_positive_int(h, "h")
    check_positive_int(w, "w")
    check_choice(basis, "basis", BASES)
    u = torch.arange(h, dtype=torch.float64, device=device)
    v = torch.arange(w, dtype=torch.float64, device=device)
    if basis == "dct":
        fu, fv = u / h, v / w
    else:
        fu, fv = 2 * (u - h // 2).abs() / h, 2 * (v - w // 2).abs() / w
    return torch.meshgrid(fu, fv, indexing="ij")


def frequency_radius(h: int, w: int, basis: str = "dct", kind: str = "radial", device=None) -> torch.Tensor:
    """Normalised radius per coefficient, ``(H, W)`` float64.

    ``kind="radial"``: ``sqrt(fu^2 + fv^2)`` in ``[0, sqrt(2)]``;
    ``kind="ring"``: ``max(fu, fv)`` in ``[0, 1)``, whose level sets are the L-shaped
    rings ``max(u, v) = k`` of Wang et al. 2020 on a square DCT grid.
    """
    check_choice(kind, "kind", ("radial", "ring"))
    fu, fv = frequency_coords(h, w, basis, device)
    return torch.sqrt(fu ** 2 + fv ** 2) if kind == "radial" else torch.maximum(fu, fv)


def band_masks(h: int, w: int, n_bands: int | None = None, kind: str = "radial", basis: str = "dct",
               edges: Sequence[float] | None = None, device=None) -> torch.Tensor:
    """A partition of the ``H x W`` frequency plane into K bands, ``(K, H, W)`` bool.

    Args:
        h, w: spatial size.
        n_bands: number of equal-width bands over ``[0, sqrt(2)]`` (radial) or
            ``[0, 1]`` (ring), in units of Nyquist.  For ``kind="ring"`` on a square DCT
            grid with ``n_bands == H``, band k is exactly the authors' L-shaped ring
            ``max(u, v) == k`` (Wang et al. 2020, ``zifanw/frequency_explain``).
        kind: ``"radial"`` (normalised radius) or ``"ring"`` (``max(fu, fv)``).
        basis: ``"dct"`` or ``"dft"``/``"dht"`` (centred spectrum; masks are symmetric
            under ``f -> -f`` so DFT-filtered images stay real).
        edges: instead of ``n_bands``, K+1 increasing edges; band k holds radii in
            ``[edges[k], edges[k+1])``, the last band also its upper edge.  Edges must
            cover every radius on the grid.

    Every coefficient belongs to exactly one band; an empty band is an error.
    """
    check_positive_int(h, "h")
    check_positive_int(w, "w")
    check_choice(kind, "kind", ("radial", "ring"))
    r = frequency_radius(h, w, basis, kind, device)
    if edges is None:
        if n_bands is None:
            raise ValueError("band_masks needs n_bands or edges")
        check_positive_int(n_bands, "n_bands")
        # Edges span the bases' full range (radial: sqrt 2, ring: 1), so a band means the
        # same absolute frequencies whatever the grid size.
        rmax = math.sqrt(2.0) if kind == "radial" else 1.0
        e = torch.linspace(0.0, rmax, n_bands + 1, dtype=torch.float64, device=r.device)
    else:
        e = torch.as_tensor(list(edges), dtype=torch.float64, device=r.device)
        if e.dim() != 1 or e.numel() < 2:
            raise ValueError(f"edges must be a 1-D sequence of at least 2 values, got {list(edges)!r}")
        if not bool((e[1:] > e[:-1]).all()):
            raise ValueError(f"edges must be strictly increasing, got {e.tolist()}")
        if float(e[0]) > float(r.min()) + 1e-12 or float(e[-1]) < float(r.max()) - 1e-12:
            raise ValueError(f"edges must cover all radii [{float(r.min()):.4g}, {float(r.max()):.4g}] "
                             f"(kind={kind!r}, basis={basis!r}), got [{float(e[0]):.4g}, {float(e[-1]):.4g}]")
    k = e.numel() - 1
    # bucketize with right=True gives index i such that e[i-1] <= r < e[i].
    # Radii are exact rationals that often sit on an edge (ring k/H): nudge them up so an
    # edge value always opens its band, whatever float rounding linspace did.
    idx = torch.bucketize(r + 1e-9, e, right=True) - 1
    idx = idx.clamp(0, k - 1)
    masks = torch.stack([idx == i for i in range(k)])
    empty = [i for i in range(k) if not bool(masks[i].any())]
    if empty:
        raise ValueError(f"band_masks: band(s) {empty} are empty for a {h}x{w} grid with edges "
                         f"{[round(float(v), 4) for v in e]}; use fewer bands or other edges")
    return masks


def check_dft_symmetric(mask: torch.Tensor, name: str = "mask") -> None:
    """Raise unless a centred-spectrum mask is symmetric under ``f -> -f``.

    Only symmetric masks keep DFT-filtered real images real.
    """
    h, w = mask.shape[-2:]
    iu = (-(torch.arange(h, device=mask.device) - h // 2)) % h
    iu = (iu + h // 2) % h  # index of -f in the centred grid
    iv = (-(torch.arange(w, device=mask.device) - w // 2)) % w
    iv = (iv + w // 2) % w
    mirrored = mask[..., iu, :][..., :, iv]
    if not bool((mirrored == mask).all()):
        raise ValueError(f"{name} is not symmetric under f -> -f on the centred DFT grid; "
                         "a DFT-filtered real image would not stay real")


# ----------------------------------------------------------------------------- filtering

def filter_band(x: torch.Tensor, mask: torch.Tensor, basis: str = "dct") -> torch.Tensor:
    """Keep only the frequencies where ``mask`` (``(H, W)`` or broadcastable) is true.

    DCT: ``idct2(dct2(x) * mask)``.  DFT: ``Re(idft2(dft2(x) * mask))`` with a centred,
    symmetric mask (checked), so the result is real up to rounding.  Differentiable.
    """
    _check_spatial(x, "x")
    check_choice(basis, "basis", BASES)
    h, w = x.shape[-2:]
    if not isinstance(mask, torch.Tensor) or tuple(mask.shape[-2:]) != (h, w):
        shape = tuple(mask.shape) if isinstance(mask, torch.Tensor) else type(mask).__name__
        raise ValueError(f"mask must have shape (..., {h}, {w}) to match x, got {shape}")
    m = mask.to(device=x.device, dtype=x.dtype)
    if basis == "dct":
        return idct2(dct2(x) * m)
    check_dft_symmetric(mask.bool() if mask.dtype == torch.bool else mask)
    return idft2(dft2(x) * m)


def _cutoff_mask(h, w, cutoff, basis, kind, device, low: bool):
    if not isinstance(cutoff, (int, float)) or not math.isfinite(cutoff) or cutoff < 0:
        raise ValueError(f"cutoff must be a finite number >= 0 (units of Nyquist), got {cutoff!r}")
    r = frequency_radius(h, w, basis, kind, device)
    return (r <= cutoff) if low else (r > cutoff)


def low_pass(x: torch.Tensor, cutoff: float, basis: str = "dct", kind: str = "radial") -> torch.Tensor:
    """Keep frequencies with normalised radius ``<= cutoff`` (units of Nyquist; 0 keeps the mean)."""
    _check_spatial(x, "x")
    return filter_band(x, _cutoff_mask(*x.shape[-2:], cutoff, basis, kind, x.device, True), basis)


def high_pass(x: torch.Tensor, cutoff: float, basis: str = "dct", kind: str = "radial") -> torch.Tensor:
    """Keep frequencies with normalised radius ``> cutoff``: ``x == low_pass + high_pass``."""
    _check_spatial(x, "x")
    return filter_band(x, _cutoff_mask(*x.shape[-2:], cutoff, basis, kind, x.device, False), basis)


def band_pass(x: torch.Tensor, lo: float, hi: float, basis: str = "dct", kind: str = "radial") -> torch.Tensor:
    """Keep frequencies with ``lo < radius <= hi``."""
    _check_spatial(x, "x")
    if not (isinstance(lo, (int, float)) and isinstance(hi, (int, float)) and 0 <= lo < hi):
        raise ValueError(f"band_pass needs 0 <= lo < hi, got lo={lo!r}, hi={hi!r}")
    r = frequency_radius(*x.shape[-2:], basis, kind, x.device)
    return filter_band(x, (r > lo) & (r <= hi), basis)


def band_decompose(x: torch.Tensor, masks: torch.Tensor, basis: str = "dct") -> torch.Tensor:
    """Split ``x`` ``(N, C, H, W)`` into K band components ``(N, K, C, H, W)`` that sum to ``x``.

    ``masks`` is a ``(K, H, W)`` partition (e.g. from :func:`band_masks`); overlapping or
    missing frequencies are an error, since the components would then not sum to ``x``.
    """
    check_tensor(x, "x", ndim=4)
    check_choice(basis, "basis", BASES)
    h, w = x.shape[-2:]
    masks = check_mask(masks, "masks", h, w, allow_stack=True)
    if masks.dim() == 2:
        masks = masks.unsqueeze(0)
    cover = masks.sum(0)
    if not bool((cover == 1).all()):
        raise ValueError("masks must partition the frequency plane (each frequency in exactly one band); "
                         f"{int((cover == 0).sum())} uncovered, {int((cover > 1).sum())} overlapping")
    m = masks.to(x.dtype).unsqueeze(1).unsqueeze(0)  # (1, K, 1, H, W)
    if basis == "dct":
        return idct2(dct2(x).unsqueeze(1) * m)
    check_dft_symmetric(masks)
    return idft2(dft2(x).unsqueeze(1) * m)


# ----------------------------------------------------------------------------- block DCT (JPEG)

def _blocks(x: torch.Tensor, b: int, name: str):
    h, w = x.shape[-2:]
    if h % b or w % b:
        raise ValueError(f"{name} spatial size {h}x{w} must be divisible by block={b} (pad the image first)")
    lead = x.shape[:-2]
    return x.reshape(*lead, h // b, b, w // b, b).transpose(-3, -2), lead, h, w


def block_dct2(x: torch.Tensor, block: int = 8) -> torch.Tensor:
    """JPEG-style blockwise orthonormal DCT: each ``block x block`` tile transformed in place.

    Output has the shape of ``x``; tile ``(i, j)`` holds the DCT of the same pixel tile.
    """
    _check_spatial(x, "x")
    check_positive_int(block, "block")
    t, lead, h, w = _blocks(x, block, "x")
    c = dct2(t)
    return c.transpose(-3, -2).reshape(*lead, h, w)


def block_idct2(c: torch.Tensor, block: int = 8) -> torch.Tensor:
    """Inverse of :func:`block_dct2`."""
    _check_spatial(c, "c")
    check_positive_int(block, "block")
    t, lead, h, w = _blocks(c, block, "c")
    return idct2(t).transpose(-3, -2).reshape(*lead, h, w)


# ----------------------------------------------------------------------------- spectra

def power_spectrum(x: torch.Tensor, basis: str = "dft") -> torch.Tensor:
    """Mean energy per coefficient over all leading dims: ``(H, W)``.

    ``basis="dft"``: ``|F|^2`` of the centred unitary DFT; ``"dct"``: ``dct2(x)^2``.
    By Parseval the map sums to the mean squared pixel value times ``H * W``.
    """
    _check_spatial(x, "x")
    check_choice(basis, "basis", BASES)
    if basis == "dct":
        e = dct2(x) ** 2
    elif basis == "dht":
        e = dht2(x) ** 2
    else:
        e = dft2(x).abs() ** 2
    return e.reshape(-1, *x.shape[-2:]).mean(0)


def radial_profile(values: torch.Tensor, masks: torch.Tensor, reduce: str = "sum") -> torch.Tensor:
    """Reduce per-coefficient ``values`` ``(..., H, W)`` over each band of ``masks`` ``(K, H, W)``.

    Returns ``(..., K)``; ``reduce`` is ``"sum"`` or ``"mean"`` (per coefficient).
    """
    check_tensor(values, "values", min_dim=2)
    check_choice(reduce, "reduce", ("sum", "mean"))
    h, w = values.shape[-2:]
    masks = check_mask(masks, "masks", h, w, allow_stack=True)
    if masks.dim() == 2:
        masks = masks.unsqueeze(0)
    m = masks.to(values.dtype).reshape(masks.shape[0], h * w)
    out = values.reshape(*values.shape[:-2], h * w) @ m.T
    if reduce == "mean":
        out = out / m.sum(1)
    return out


def radial_power_law(power: torch.Tensor, basis: str = "dft", n_bands: int = 16, fit_range=(0.05, 1.0)):
    """Mean power per radial band and the slope of ``log10 power`` against ``log10 radius``.

    Natural images have power falling roughly as ``1 / f^2`` (van der Schaaf & van Hateren
    1996), a slope near -2.  Returns ``(radius_centres, mean_power, slope)``; the fit uses
    bands whose centre lies in ``fit_range`` (units of Nyquist); the mean (r = 0) is left out.
    """
    check_tensor(power, "power", ndim=2)
    h, w = power.shape
    r = frequency_radius(h, w, basis)
    # The mean (r = 0) is no frequency of the image's structure and dwarfs its neighbours:
    # leave it out, or it drags the first band's power and steepens the slope.
    masks = band_masks(h, w, n_bands, kind="radial", basis=basis) & (r > 0)
    masks = masks[masks.flatten(1).any(1)]
    prof = radial_profile(power.double(), masks, reduce="mean")
    centres = torch.stack([r[m].mean() for m in masks])
    sel = (centres >= fit_range[0]) & (centres <= fit_range[1]) & (prof > 0)
    if int(sel.sum()) < 2:
        raise ValueError(f"fit_range {fit_range} holds fewer than 2 bands; use more bands or a wider range")
    lx, ly = torch.log10(centres[sel]), torch.log10(prof[sel])
    slope = float(((lx - lx.mean()) * (ly - ly.mean())).sum() / ((lx - lx.mean()) ** 2).sum())
    return centres, prof, slope
