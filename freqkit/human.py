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

Mannos-Sakrison gives *relative* sensitivity: enough to weight frequencies, not to say
whether a given perturbation can be seen.  For that, :func:`csf_barten` gives absolute
sensitivity (the reciprocal of the threshold contrast) from Barten's formula (2003,
"Formula for the contrast sensitivity of the human eye", Proc. SPIE 5294), which accounts
for the display luminance and the size of the image in the visual field, and
:func:`perturbation_visibility` turns a perturbation into multiples of the detection
threshold (JND): contrast per DCT component times sensitivity, pooled over components by
Minkowski summation with exponent 4 (probability summation, as in Watson 1993, "DCTune: a
technique for visual optimization of DCT quantization matrices").  :func:`perturbation_ssim`
is the structural similarity of Wang et al. 2004, through ``pytorch_msssim``.
"""
from __future__ import annotations

import torch

import math

from ._validate import check_mask, check_number, check_tensor
from .transforms import dct2, frequency_radius, low_pass

__all__ = ["csf_mannos_sakrison", "csf_map", "band_sensitivity", "human_alignment", "csf_barten",
           "residual_visibility",
           "perturbation_visibility", "perturbation_ssim", "REC709_LUMA"]

#: Rec. 709 weights of linear R, G, B in relative luminance (ITU-R BT.709).
REC709_LUMA = (0.2126, 0.7152, 0.0722)


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


def csf_barten(f_cpd, luminance: float = 100.0, field_deg: float = 2.0) -> torch.Tensor:
    """Absolute contrast sensitivity (1 / threshold contrast) by Barten's formula.

    ``S(u) = 5200 exp(-0.0016 u^2 (1 + 100/L)^0.08) /
    sqrt((1 + 144/X0^2 + 0.64 u^2) (63/L^0.83 + 1/(1 - exp(-0.02 u^2))))``, with ``u`` in
    cycles per degree, ``L`` the mean luminance in cd/m^2 and ``X0`` the angular size of
    the stimulus in degrees (Barten 2003, "Formula for the contrast sensitivity of the human
    eye", Proc. SPIE 5294, eq. 1; binocular viewing).  A grating of Michelson contrast
    ``c`` at frequency ``u`` is at the detection threshold when ``c * S(u) = 1``.  At
    ``u = 0`` the formula gives 0 (a uniform field carries no pattern).

    Args:
        f_cpd: frequencies in cycles per degree, ``>= 0`` (tensor, array-like or number).
        luminance: mean luminance ``L`` in cd/m^2, ``> 0`` (100: an office display).
        field_deg: angular size ``X0`` of the image in degrees, ``> 0`` (a 32-pixel image
            at 60 pixels per degree spans 0.53 degrees; small fields lower sensitivity).

    Returns:
        The sensitivity, float64, shape of ``f_cpd`` (peak about 330 near 4-5 cycles/degree
        for ``L = 100``, ``X0 = 2``).

    Raises:
        ValueError: a negative frequency, or ``luminance`` / ``field_deg`` not ``> 0``.

    Example:
        >>> import freqkit as fk
        >>> [round(float(v)) for v in fk.csf_barten([0.0, 4.0, 30.0])]
        [0, 328, 30]
    """
    lum, x0 = check_number(luminance, "luminance"), check_number(field_deg, "field_deg")
    u = torch.as_tensor(f_cpd, dtype=torch.float64)
    if bool((u < 0).any()):
        raise ValueError("f_cpd must be >= 0 (cycles per degree)")
    num = 5200.0 * torch.exp(-0.0016 * u ** 2 * (1 + 100.0 / lum) ** 0.08)
    # 1 / (1 - exp(-0.02 u^2)) -> inf at u = 0, so S(0) = 0; written to avoid 0 * inf
    lateral = -torch.expm1(-0.02 * u ** 2)
    den = torch.sqrt((1 + 144.0 / x0 ** 2 + 0.64 * u ** 2) * (63.0 / lum ** 0.83 * lateral + 1.0) / lateral)
    return torch.where(u > 0, num / den, torch.zeros_like(u))


def _luminance(x: torch.Tensor, gamma: float) -> torch.Tensor:
    y = x.clamp(0, 1).double() ** gamma
    if y.shape[1] == 1:
        return y[:, 0]
    w = torch.tensor(REC709_LUMA, dtype=y.dtype, device=y.device).view(1, 3, 1, 1)
    return (y * w).sum(1)


def perturbation_visibility(x: torch.Tensor, x_adv: torch.Tensor, pixels_per_degree: float = 60.0,
                            luminance: float = 100.0, gamma: float = 2.2, beta: float = 4.0) -> torch.Tensor:
    """How visible ``x_adv - x`` is to a person, in multiples of the detection threshold (JND).

    The model, each step a stated assumption:

    1. pixel values are display values: luminance ``Y = x^gamma`` per channel, combined
       with the Rec. 709 weights (:data:`REC709_LUMA`) for RGB;
    2. the perturbation's contrast image is ``(Y(x_adv) - Y(x)) / mean Y(x)`` (Weber
       contrast against the image's mean luminance, which sets the adaptation state);
    3. its orthonormal DCT splits it into cosine patterns: coefficient ``C[u, v]`` is a
       pattern of peak amplitude ``|C| s_u s_v`` (``s_0 = sqrt(1/N)``, else
       ``sqrt(2/N)``); with ``u, v > 0`` it is the sum of two oblique gratings of half that
       amplitude at the same radial frequency (the obliquity effect is ignored);
    4. each grating's visibility is its contrast times :func:`csf_barten` at its frequency
       (``r / 2 * pixels_per_degree`` cycles/degree, ``r`` from
       :func:`freqkit.frequency_radius`), for a field of ``max(H, W) / pixels_per_degree``
       degrees; the mean (DC) change is not a pattern and is left out;
    5. the gratings pool by Minkowski summation with exponent ``beta`` (probability
       summation; ``beta = 4`` as in Watson 1993, DCTune).

    A value below 1 means the perturbation is below the detection threshold at that
    viewing distance; the value scales linearly with the perturbation's size.

    Args:
        x: clean images in ``[0, 1]``, 1 (grey) or 3 (RGB) channels.
        x_adv: perturbed images, same shape (values are clamped to ``[0, 1]``, as a display would).
        pixels_per_degree: image pixels per degree of visual angle, ``> 0`` (60: one pixel
            per arcminute; 15-120 spans a phone at arm's length to a far screen).
        luminance: the display's mean luminance in cd/m^2, ``> 0``.
        gamma: the display gamma, ``> 0`` (2.2 for sRGB-like displays; 1: linear).
        beta: the Minkowski exponent, ``>= 1``.

    Returns:
        One visibility per image in JND, ``>= 0``, float64.

    Shape:
        - x, x_adv: ``(N, C, H, W)`` with ``C`` 1 or 3
        - output: ``(N,)``

    Raises:
        TypeError: ``x`` or ``x_adv`` not a floating-point tensor.
        ValueError: other shapes, non-finite values, an image of zero mean luminance, or a
            parameter out of range.

    Example:
        >>> import torch, freqkit as fk
        >>> u, n = 4, 32  # a horizontal DCT cosine of contrast 1% on a mid-grey image
        >>> xs = torch.arange(n, dtype=torch.float64)
        >>> g = torch.cos(torch.pi * u * (2 * xs + 1) / (2 * n)).view(1, 1, 1, n).expand(1, 1, n, n)
        >>> x = torch.full((1, 1, n, n), 0.5, dtype=torch.float64)
        >>> v = fk.perturbation_visibility(x, x + 0.005 * g, gamma=1.0)
        >>> s = fk.csf_barten(u / n / 2 * 60.0, field_deg=n / 60.0)
        >>> round(float(v[0]), 6) == round(float(0.01 * s), 6)
        True
    """
    check_tensor(x, "x", ndim=4)
    check_tensor(x_adv, "x_adv", ndim=4)
    if x_adv.shape != x.shape:
        raise ValueError(f"x_adv must have the shape of x {tuple(x.shape)}, got {tuple(x_adv.shape)}")
    if x.shape[1] not in (1, 3):
        raise ValueError(f"x must have 1 or 3 channels, got {x.shape[1]}")
    ppd = check_number(pixels_per_degree, "pixels_per_degree")
    g = check_number(gamma, "gamma")
    beta = check_number(beta, "beta", lo=1.0, lo_open=False)
    n, _, h, w = x.shape
    y0, y1 = _luminance(x, g), _luminance(x_adv, g)
    mean = y0.mean(dim=(-2, -1), keepdim=True)
    if bool((mean <= 0).any()):
        raise ValueError("x has an image of zero mean luminance (all black): its contrast is undefined")
    c = dct2((y1 - y0) / mean)
    dev = c.device
    su = torch.full((h,), math.sqrt(2.0 / h), dtype=torch.float64, device=dev)
    sv = torch.full((w,), math.sqrt(2.0 / w), dtype=torch.float64, device=dev)
    su[0], sv[0] = math.sqrt(1.0 / h), math.sqrt(1.0 / w)
    both = torch.zeros(h, w, dtype=torch.bool, device=dev)
    both[1:, 1:] = True
    amp = su.view(h, 1) * sv.view(1, w) / torch.where(both, 2.0, 1.0)  # per grating
    count = torch.where(both, 2.0, 1.0).to(torch.float64)
    f = frequency_radius(h, w, "dct", "radial", device=dev) / 2.0 * ppd
    sens = csf_barten(f.cpu(), luminance, max(h, w) / ppd).to(dev)
    jnd = c.abs() * (amp * sens)
    return (count * jnd ** beta).sum(dim=(-2, -1)).pow(1.0 / beta)


def residual_visibility(x: torch.Tensor, cutoffs, pixels_per_degree=(15.0, 30.0, 60.0, 120.0),
                        basis: str = "dct", **kw) -> dict:
    """How visible removing an image's high frequencies is: ``x`` against ``low_pass(x, r)``, in JND.

    For each cut-off ``r`` and viewing distance, :func:`perturbation_visibility` of the
    change from ``x`` to its low-pass copy (:func:`freqkit.low_pass`, clamped to ``[0, 1]``
    as a display would show it): the high-pass residual a model may use, seen the way the
    perceptual premise of Wang et al. 2020 ("humans barely see" it) needs.  Below 1 JND the
    residual is under the detection threshold at that distance.

    Args:
        x: images in ``[0, 1]``, 1 or 3 channels, at least one.
        cutoffs: normalised radii (x Nyquist, ``>= 0``), at least one.
        pixels_per_degree: viewing distances as image pixels per degree, each ``> 0``.
        basis: the filter's basis, ``"dct"`` or ``"dft"`` (:data:`freqkit.BASES`).
        **kw: ``luminance``, ``gamma``, ``beta`` of :func:`perturbation_visibility`.

    Returns:
        ``{"cutoffs", "pixels_per_degree", "jnd": (R, P, N) float64, "median": (R, P) list,
        "share_visible": (R, P) list (share of images at >= 1 JND)}``.

    Shape:
        - x: ``(N, C, H, W)``

    Raises:
        ValueError: ``x`` outside ``[0, 1]`` or of another shape; no cut-off or distance, a
            negative cut-off or a non-positive distance; and what :func:`perturbation_visibility` raises.

    Example:
        >>> import torch, freqkit as fk
        >>> x = torch.rand(2, 3, 16, 16, generator=torch.Generator().manual_seed(0))
        >>> r = fk.residual_visibility(x, [0.25, 1.0], [30.0, 60.0])
        >>> r["jnd"].shape, bool((r["jnd"][0] > r["jnd"][1]).all())  # less removed, less visible
        (torch.Size([2, 2, 2]), True)
    """
    check_tensor(x, "x", ndim=4)
    if bool((x < 0).any()) or bool((x > 1).any()):
        raise ValueError("x must hold images in [0, 1]")
    cutoffs = [float(c) for c in cutoffs]
    ppds = [float(p) for p in pixels_per_degree]
    if not cutoffs or any(not math.isfinite(c) or c < 0 for c in cutoffs):
        raise ValueError(f"cutoffs must be at least one finite radius >= 0, got {cutoffs}")
    if not ppds or any(not math.isfinite(p) or p <= 0 for p in ppds):
        raise ValueError(f"pixels_per_degree must be at least one finite number > 0, got {ppds}")
    out = torch.empty(len(cutoffs), len(ppds), x.shape[0], dtype=torch.float64)
    for i, r in enumerate(cutoffs):
        lp = low_pass(x, r, basis=basis).clamp(0, 1)
        for j, p in enumerate(ppds):
            out[i, j] = perturbation_visibility(x, lp, pixels_per_degree=p, **kw).cpu()
    return {"cutoffs": cutoffs, "pixels_per_degree": ppds, "jnd": out, "median": out.median(-1).values.tolist(),
            "share_visible": (out >= 1).double().mean(-1).tolist()}


def perturbation_ssim(x: torch.Tensor, x_adv: torch.Tensor, win_size: int = 7) -> torch.Tensor:
    """Structural similarity (SSIM, Wang et al. 2004) of each perturbed image to its original.

    Computed by the maintained ``pytorch_msssim`` package (Gaussian window of sigma 1.5,
    ``K1 = 0.01``, ``K2 = 0.03``, data range 1, valid convolution), averaged over channels
    and positions; 1 for identical images.

    Args:
        x: clean images in ``[0, 1]``.
        x_adv: perturbed images, same shape.
        win_size: the odd Gaussian window's size, ``3 <= win_size <= min(H, W)`` (7 suits
            28-32 pixel images; the usual 11 leaves few positions there).

    Returns:
        SSIM per image, in ``[-1, 1]``, float32 (or ``x``'s float64).

    Shape:
        - x, x_adv: ``(N, C, H, W)``
        - output: ``(N,)``

    Raises:
        ImportError: ``pytorch_msssim`` is not installed (``pip install pytorch-msssim``).
        TypeError / ValueError: bad images or window (named).

    Example:
        >>> import torch, freqkit as fk
        >>> x = torch.rand(2, 3, 32, 32)
        >>> fk.perturbation_ssim(x, x).tolist()
        [1.0, 1.0]
    """
    check_tensor(x, "x", ndim=4)
    check_tensor(x_adv, "x_adv", ndim=4)
    if x_adv.shape != x.shape:
        raise ValueError(f"x_adv must have the shape of x {tuple(x.shape)}, got {tuple(x_adv.shape)}")
    if isinstance(win_size, bool) or not isinstance(win_size, int) or win_size < 3 or win_size % 2 == 0 \
            or win_size > min(x.shape[-2:]):
        raise ValueError(f"win_size must be an odd integer in [3, min(H, W)={min(x.shape[-2:])}], got {win_size!r}")
    try:
        from pytorch_msssim import ssim
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ImportError("perturbation_ssim needs pytorch_msssim: pip install pytorch-msssim") from e
    return ssim(x, x_adv, data_range=1.0, size_average=False, win_size=win_size)
