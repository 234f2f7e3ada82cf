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
* The basis vocabulary (:data:`BASES`, checked by :func:`check_basis`) has one meaning per
  name everywhere in freqkit: ``"dct"`` is the orthonormal DCT-II and its grid;
  ``"dft"`` is the centred unitary DFT and its grid.  Where real coefficients are needed
  (:func:`to_basis`, attribution, attacks) the DFT basis is represented by its real
  orthonormal form, the Hartley transform: the coefficients at ``f`` and ``-f`` span the
  same plane as ``Re F(f)`` and ``Im F(f)``, so every band that is symmetric under
  ``f -> -f`` selects the same subspace and holds the same energy in both forms
  (:func:`power_spectrum` with ``"dft"`` is that energy per frequency, ``|F|^2``).
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
    "block_dct2", "block_idct2", "power_spectrum", "radial_profile", "radial_power_law", "BASES", "check_basis",
    "equal_count_band_masks", "ring_band_masks", "low_high_masks", "low_block_masks", "dc_mask", "band_energy",
]

#: The frequency bases of freqkit, one meaning each (see the module docstring): "dct" the
#: orthonormal 2-D DCT-II, "dft" the centred unitary 2-D DFT (in real form: the Hartley transform).
BASES = ("dct", "dft")


def check_basis(basis, name: str = "basis") -> str:
    """Return ``basis`` if it names one of the frequency bases of :data:`BASES`.

    The one check of the basis vocabulary used throughout freqkit: ``"dct"`` (orthonormal
    2-D DCT-II) and ``"dft"`` (centred unitary 2-D DFT, in real form the Hartley transform);
    see the module docstring.

    Args:
        basis: the value to check; ``"dct"`` or ``"dft"``.
        name: the argument's name, used in the error message.

    Returns:
        ``basis`` unchanged.

    Raises:
        ValueError: ``basis`` is not in :data:`BASES` (the message names ``name`` and lists
            the allowed values).

    Example:
        >>> import torch, freqkit as fk
        >>> fk.transforms.check_basis("dft")
        'dft'
        >>> fk.transforms.check_basis("dht")
        Traceback (most recent call last):
        ...
        ValueError: basis must be one of ['dct', 'dft'], got 'dht'
    """
    return check_choice(basis, name, BASES)


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

    Row ``k`` is the k-th DCT-II basis vector, ``sqrt(2 / n) cos(pi (2 i + 1) k / (2 n))``
    (row 0 scaled by ``1 / sqrt(2)``), so ``D @ D.T`` is the identity and ``D.T`` is the
    inverse (DCT-III).  Built in float64 and cached per ``(n, dtype, device)``, so repeated
    calls cost nothing.

    Args:
        n: the transform length, an integer ``>= 1``.
        dtype: dtype of the result (a floating dtype; not checked).
        device: device of the result; ``None`` means the CPU.

    Returns:
        ``D``, ``(n, n)``.  The cached tensor itself is returned (no copy): do not modify it
        in place, or every later DCT of that size, dtype and device is corrupted.

    Raises:
        ValueError: ``n`` is not an integer ``>= 1``.
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


# Two algorithms, one result.  Small images: two GEMMs with cached DCT matrices (H + W
# multiply-adds per coefficient, but one fast BLAS call each, and no per-op overhead).
# Large images: Makhoul's FFT algorithm (O(log N) per coefficient, ~7 ops of fixed cost),
# taken when (H + W) / 2 >= _FFT_MIN_SIZE.  Measured on one CPU thread, 3 channels: the
# FFT path wins from 64x64 at batch 64 and from 96x96 at batch 1 (at 224x224 it is
# 2.8x faster than the GEMMs, whose cost grows as H + W per coefficient); 80 splits it.
_FFT_MIN_SIZE = 80
# On a GPU the GEMMs run on the matrix units and stay ahead at every size measured: on an
# H100 (batch 64x3, median ms, GEMM vs FFT) 0.055 vs 0.161 at 64x64, 0.095 vs 0.154 at
# 128x128, 0.322 vs 0.362 at 224x224 (benchmarks/gpu/dct_paths.py).  So CUDA keeps the GEMMs
# unless a test forces the FFT path.
_FFT_MIN_SIZE_CUDA = 10**9
# CPU: the FFT path runs the batch in chunks of about this many elements, so its
# temporaries stay in cache and are recycled by malloc instead of page-faulted afresh.
_FFT_CHUNK_ELEMS = 1 << 18
_FFT_DTYPES = {torch.float32: torch.complex64, torch.float64: torch.complex128}


def _use_fft(x: torch.Tensor, fft_min_size: int | None) -> bool:
    h, w = x.shape[-2:]
    if fft_min_size is not None:
        limit = fft_min_size
    else:
        limit = _FFT_MIN_SIZE_CUDA if x.device.type == "cuda" else _FFT_MIN_SIZE
    return x.dtype in _FFT_DTYPES and x.numel() > 0 and h + w >= 2 * limit


def _makhoul_index(n: int) -> torch.Tensor:
    """Makhoul's reorder ``v = [x[0], x[2], .., x[3], x[1]]`` composed with ``n -> -n mod N``.

    The wrap-around reversal conjugates the FFT of a real sequence, so the FFT of the
    returned gather is ``conj(V)`` and the post-twiddle needs no sign flips (see below).
    """
    m = (n + 1) // 2
    idx = torch.empty(n, dtype=torch.long)
    idx[:m] = torch.arange(0, n, 2)
    idx[m:] = torch.arange(1, n, 2).flip(0)
    return idx[(-torch.arange(n)) % n]


@lru_cache(maxsize=32)
def _makhoul_plan_cpu(h: int, w: int):
    """Index tables and float64 twiddles of the 2-D Makhoul DCT for an ``h x w`` grid.

    Forward (Makhoul 1980, "A fast cosine transform in one and multiple dimensions",
    IEEE TASSP 28(1), extended to 2-D with one real FFT): with ``v`` the reordered image
    and ``V = rfft2(v)``, ``a_q = exp(-i pi q / 2W)``, ``b_p = exp(-i pi p / 2H)`` and
    ``P = a V``, the unnormalised 2-D DCT-II is
    ``C[p, q] = Re Y[p, q]`` and ``C[p, W - q] = -Im Y[p, q]`` for ``q <= W/2``, where
    ``Y[p] = (b_p P[p] + conj(b_p) P[-p]) / 2``.  We gather the reversed reorder, whose
    rfft2 is ``conj(V)``, and so compute ``conj(Y)`` directly: its real and imaginary
    parts *are* the two halves of each output row, in one gather.  Ortho scales are
    folded into the twiddles.

    Inverse (the same steps backwards, per axis ``V[k] = conj(a_k) (C[k] - i C[N - k])``):
    ``conj(S)[p, q] = b_p a_q (E[p, q] + i E[H - p, q])`` with
    ``E[p, q] = C[p, q] + i C[p, W - q]`` and ``C[p, W] = C[H, q] = 0``, again with the
    ortho scales folded in; ``irfft2(conj(S))`` is the reversed reorder of the image,
    undone by one gather.
    """
    f64 = torch.float64
    hw = w // 2 + 1
    rows, cols = _makhoul_index(h), _makhoul_index(w)
    gather_in = (rows[:, None] * w + cols[None, :]).reshape(-1)
    scatter_out = torch.empty_like(gather_in)
    scatter_out[gather_in] = torch.arange(h * w)
    p = torch.arange(h, dtype=f64)
    q = torch.arange(hw, dtype=f64)
    a = torch.polar(torch.ones_like(q), -math.pi * q / (2 * w))
    b = torch.polar(torch.ones_like(p), -math.pi * p / (2 * h))
    s1 = torch.full((h,), math.sqrt(2.0 / h), dtype=f64)
    s1[0] = math.sqrt(1.0 / h)
    s2 = torch.full((hw,), math.sqrt(2.0 / w), dtype=f64)
    s2[0] = math.sqrt(1.0 / w)
    scale = 0.5 * s1[:, None] * s2[None, :]
    fwd1 = (b[:, None] * a[None, :]).conj() * scale          # multiplies conj(V)[p]
    fwd2 = (b[:, None].conj() * a[None, :]).conj() * scale   # multiplies conj(V)[-p]
    # Output row = [Re Z[0..W/2], Im Z[(W-1)//2 .. 1]] read from view_as_real(Z).
    out_cols = torch.empty(w, dtype=torch.long)
    out_cols[:hw] = 2 * torch.arange(hw)
    qq = torch.arange(1, (w + 1) // 2)
    out_cols[w - qq] = 2 * qq + 1
    row_flip = (-torch.arange(h)) % h
    # Inverse: E interleaves C[p, q] and C[p, W - q].  Column 0 should read C[p, W] = 0
    # as its imaginary part; the index reads C[p, 0] instead, so E[p, 0] = (1 + i) C[p, 0]
    # exactly, and dividing that column's twiddles by (1 + i) replaces a clearing pass.
    in_cols = torch.stack([torch.arange(hw), (w - torch.arange(hw)) % w], 1).reshape(-1)
    inv_s1 = 1.0 / s1
    inv_s2 = 1.0 / s2
    inv1 = (b[:, None] * a[None, :]) * inv_s1[:, None] * inv_s2[None, :]
    inv2 = 1j * (b[:, None] * a[None, :]) * inv_s1[row_flip][:, None] * inv_s2[None, :]
    inv2[0] = 0  # E[H - 0] = E[H] is the zero row
    inv1[:, 0] /= 1 + 1j
    inv2[:, 0] /= 1 + 1j
    return dict(gather_in=gather_in, scatter_out=scatter_out, out_cols=out_cols, row_flip=row_flip,
                in_cols=in_cols, fwd1=fwd1, fwd2=fwd2, inv1=inv1, inv2=inv2)


_PLAN_CACHE: dict = {}


def _makhoul_plan(h: int, w: int, dtype, device) -> dict:
    key = (h, w, dtype, device)
    plan = _PLAN_CACHE.get(key)
    if plan is None:
        cdt = _FFT_DTYPES[dtype]
        plan = {k: v.to(device=device, dtype=cdt if v.is_complex() else v.dtype)
                for k, v in _makhoul_plan_cpu(h, w).items()}
        if len(_PLAN_CACHE) > 64:
            _PLAN_CACHE.clear()
        _PLAN_CACHE[key] = plan
    return plan


_HUGE_PAGE = 1 << 21
_MADVISE = []  # [libc.madvise] once looked up; [None] where unavailable


def _empty_output(shape, like: torch.Tensor) -> torch.Tensor:
    """``torch.empty`` for a result, with transparent huge pages advised for large CPU buffers.

    A fresh buffer above glibc's mmap threshold (32 MB at most) is page-faulted 4 KiB at
    a time on first write: 38 MB (64x3x224x224 float32) cost ~13 ms here, a third of the
    whole transform.  Like numpy (which advises huge pages for arrays >= 4 MB since
    1.16), we ``madvise(MADV_HUGEPAGE)`` the untouched buffer, which cuts that to ~2 ms.
    Only a hint on memory we own; skipped silently wherever libc or madvise is missing.
    """
    out = torch.empty(shape, dtype=like.dtype, device=like.device)
    nbytes = out.numel() * out.element_size()
    if out.device.type != "cpu" or nbytes < (4 << 20):
        return out
    if not _MADVISE:
        try:
            import ctypes
            import sys
            if not sys.platform.startswith("linux"):
                raise OSError("no THP")
            fn = ctypes.CDLL(None, use_errno=True).madvise
            fn.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
            fn.restype = ctypes.c_int
            _MADVISE.append(fn)
        except (OSError, AttributeError):
            _MADVISE.append(None)
    if _MADVISE[0] is not None:
        lo = (out.data_ptr() + _HUGE_PAGE - 1) & ~(_HUGE_PAGE - 1)
        hi = (out.data_ptr() + nbytes) & ~(_HUGE_PAGE - 1)
        if hi > lo:
            _MADVISE[0](lo, hi - lo, 14)  # MADV_HUGEPAGE; a failure only means 4 KiB pages
    return out


def _chunk(n_images: int, h: int, w: int, device) -> int:
    """Images per chunk: the whole batch on accelerators, cache-sized pieces on CPU."""
    if device.type != "cpu":
        return max(n_images, 1)
    return max(1, min(n_images, _FFT_CHUNK_ELEMS // (h * w)))


def _dct2_fft_into(xf: torch.Tensor, out: torch.Tensor, pl: dict, h: int, w: int) -> None:
    """Forward Makhoul DCT of ``xf`` (n, H*W) into ``out`` (n*H, W), both contiguous."""
    n = xf.shape[0]
    v = xf.index_select(1, pl["gather_in"]).view(n, h, w)  # index_select is fastest on 2-D
    vc = torch.fft.rfft2(v)                                # conj(V): (n, H, W//2 + 1)
    z = vc * pl["fwd1"]
    z.addcmul_(vc.index_select(1, pl["row_flip"]), pl["fwd2"])
    torch.index_select(torch.view_as_real(z).view(n * h, -1), 1, pl["out_cols"], out=out)


def _idct2_fft_into(cf: torch.Tensor, out: torch.Tensor, pl: dict, h: int, w: int) -> None:
    """Inverse Makhoul DCT of ``cf`` (n, H*W) into ``out`` (n, H*W), both contiguous."""
    n = cf.shape[0]
    e = torch.view_as_complex(cf.view(n * h, w).index_select(1, pl["in_cols"]).view(n, h, w // 2 + 1, 2))
    s = e * pl["inv1"]
    s.addcmul_(e.index_select(1, pl["row_flip"]), pl["inv2"])
    v = torch.fft.irfft2(s, s=(h, w)).view(n, h * w)      # the reversed reorder of the image
    torch.index_select(v, 1, pl["scatter_out"], out=out)


def _makhoul(x: torch.Tensor, inverse: bool) -> torch.Tensor:
    h, w = x.shape[-2:]
    pl = _makhoul_plan(h, w, x.dtype, x.device)
    xf = x.reshape(-1, h * w)
    if not xf.is_contiguous():
        xf = xf.contiguous()
    total = xf.shape[0]
    out = _empty_output((total, h * w), x)
    run = _idct2_fft_into if inverse else _dct2_fft_into
    step = _chunk(total, h, w, x.device)
    # Chunks keep the four chunk-sized temporaries in cache and let malloc recycle them,
    # instead of streaming (and page-faulting) full-batch buffers several times.
    for i in range(0, total, step):
        j = min(i + step, total)
        o = out[i:j]
        run(xf[i:j], o if inverse else o.view((j - i) * h, w), pl, h, w)
    return out.view(x.shape)


class _DCT2(torch.autograd.Function):
    # The DCT is linear and orthonormal: the vector-Jacobian product is the inverse
    # transform and the Jacobian-vector product is the transform itself.  Both go back
    # through the Functions, so higher derivatives work too.
    @staticmethod
    def forward(x):
        return _makhoul(x, inverse=False)

    @staticmethod
    def setup_context(ctx, inputs, output):
        pass

    @staticmethod
    def backward(ctx, g):
        return _IDCT2.apply(g)

    @staticmethod
    def jvp(ctx, t):
        return _DCT2.apply(t)

    @staticmethod
    def vmap(info, in_dims, x):  # torch.func.vmap: the batch dim is one more leading dim
        return (_DCT2.apply(x), None) if in_dims[0] is None else (_DCT2.apply(x.movedim(in_dims[0], 0)), 0)


class _IDCT2(torch.autograd.Function):
    @staticmethod
    def forward(c):
        return _makhoul(c, inverse=True)

    @staticmethod
    def setup_context(ctx, inputs, output):
        pass

    @staticmethod
    def backward(ctx, g):
        return _DCT2.apply(g)

    @staticmethod
    def jvp(ctx, t):
        return _IDCT2.apply(t)

    @staticmethod
    def vmap(info, in_dims, c):
        return (_IDCT2.apply(c), None) if in_dims[0] is None else (_IDCT2.apply(c.movedim(in_dims[0], 0)), 0)


def dct2(x: torch.Tensor, *, _fft_min_size: int | None = None) -> torch.Tensor:
    """Orthonormal 2-D DCT-II over the last two dims of ``x``.

    The result equals ``scipy.fft.dctn(x, axes=(-2, -1), norm="ortho")``; it is
    differentiable (any order, also forward mode and ``torch.func.vmap``) and runs on any
    device.  Coefficient ``(u, v)`` oscillates at ``(u / H, v / W)`` in units of Nyquist
    (see the module docstring); ``(0, 0)`` is ``sqrt(H W)`` times the mean.  Method: small
    images use two matrix products with cached DCT matrices (below the crossover, about
    80 x 80 on CPU; always on CUDA); larger float32/float64 CPU images use Makhoul's FFT
    algorithm (Makhoul 1980, "A fast cosine transform in one and multiple dimensions"): one
    gather, one ``rfft2``, one twiddle and one gather, run in cache-sized chunks.

    Args:
        x: real floating-point tensor with at least 2 dims; NaN and inf are not checked (they
            propagate).
        _fft_min_size: private, for tests: overrides the crossover, so that the FFT path is
            taken when ``(H + W) / 2 >= _fft_min_size``.

    Returns:
        The DCT coefficients, same shape, dtype and device as ``x``.

    Shape:
        - x: ``(..., H, W)``
        - output: ``(..., H, W)``

    Raises:
        TypeError: ``x`` is not a tensor, not floating-point, or complex.
        ValueError: ``x`` has fewer than 2 dims.

    Example:
        >>> import torch, freqkit as fk
        >>> _ = torch.manual_seed(0); x = torch.rand(2, 1, 8, 8)
        >>> c = fk.dct2(x)
        >>> c.shape, bool(torch.allclose(c.pow(2).sum(), x.pow(2).sum()))  # orthonormal: Parseval
        (torch.Size([2, 1, 8, 8]), True)
        >>> bool(torch.allclose(c[..., 0, 0], 8 * x.mean((-2, -1))))  # DC = sqrt(H W) * mean
        True
    """
    _check_spatial(x, "x")
    if _use_fft(x, _fft_min_size):
        return _DCT2.apply(x)
    h, w = x.shape[-2:]
    dh = dct_matrix(h, x.dtype, x.device)
    dw = dh if w == h else dct_matrix(w, x.dtype, x.device)
    # Rows first: (B*H, W) @ (W, W) is one flat GEMM, then the batched H-side product
    # (measured a little faster than the other order at 28x28 and 32x32).
    return dh @ (x @ dw.transpose(0, 1))


def idct2(c: torch.Tensor, *, _fft_min_size: int | None = None) -> torch.Tensor:
    """Inverse of :func:`dct2` (the orthonormal 2-D DCT-III): ``idct2(dct2(x)) == x``.

    Equal to ``scipy.fft.idctn(c, axes=(-2, -1), norm="ortho")``; the same devices, dtypes,
    methods (matrix products or Makhoul's FFT algorithm) and crossover as :func:`dct2`, and
    differentiable in the same way.

    Args:
        c: real floating-point DCT coefficients with at least 2 dims (not checked for NaN/inf).
        _fft_min_size: private, for tests: overrides the crossover as in :func:`dct2`.

    Returns:
        The image, same shape, dtype and device as ``c``.

    Shape:
        - c: ``(..., H, W)``
        - output: ``(..., H, W)``

    Raises:
        TypeError: ``c`` is not a tensor, not floating-point, or complex.
        ValueError: ``c`` has fewer than 2 dims.

    Example:
        >>> import torch, freqkit as fk
        >>> _ = torch.manual_seed(0); x = torch.rand(2, 1, 8, 8)
        >>> bool(torch.allclose(fk.idct2(fk.dct2(x)), x, atol=1e-6))
        True
    """
    _check_spatial(c, "c")
    if _use_fft(c, _fft_min_size):
        return _IDCT2.apply(c)
    h, w = c.shape[-2:]
    dh = dct_matrix(h, c.dtype, c.device)
    dw = dh if w == h else dct_matrix(w, c.dtype, c.device)
    return dh.transpose(0, 1) @ (c @ dw)


# ----------------------------------------------------------------------------- DFT / DHT

def dft2(x: torch.Tensor) -> torch.Tensor:
    """Unitary 2-D DFT over the last two dims, centred (zero frequency at ``(H//2, W//2)``).

    ``fftshift(fft2(x, norm="ortho"))`` over the last two dims: unitary, so
    ``sum |F|^2 == sum x^2`` (Parseval); centred index ``u`` has frequency
    ``2 |u - H//2| / H`` in units of Nyquist (see the module docstring).  Differentiable.
    ``idft2(dft2(x)) == x`` (:func:`idft2` returns the real part).

    Args:
        x: real floating-point tensor with at least 2 dims (not checked for NaN/inf).

    Returns:
        The centred spectrum, complex (complex64 for float32 input, complex128 for float64).

    Shape:
        - x: ``(..., H, W)``
        - output: ``(..., H, W)``

    Raises:
        TypeError: ``x`` is not a tensor, not floating-point, or complex.
        ValueError: ``x`` has fewer than 2 dims.

    Example:
        >>> import torch, freqkit as fk
        >>> _ = torch.manual_seed(0); x = torch.rand(2, 1, 8, 8)
        >>> f = fk.dft2(x)
        >>> f.shape, f.dtype, bool(torch.allclose(f[..., 4, 4].real, 8 * x.mean((-2, -1))))
        (torch.Size([2, 1, 8, 8]), torch.complex64, True)
        >>> bool(torch.allclose(fk.idft2(f), x, atol=1e-6))
        True
    """
    _check_spatial(x, "x")
    return torch.fft.fftshift(torch.fft.fft2(x, norm="ortho"), dim=(-2, -1))


def idft2(spec: torch.Tensor, real: bool = True) -> torch.Tensor:
    """Inverse of :func:`dft2` for a centred spectrum.

    ``ifft2(ifftshift(spec), norm="ortho")`` over the last two dims.  With ``real=True`` the
    imaginary part is dropped without a check: it is zero (up to rounding) only for spectra
    of real images filtered with masks symmetric under ``f -> -f``.

    Args:
        spec: centred spectrum (complex, or real), at least 2 dims; not checked for NaN/inf.
        real: return the real part (default) instead of the complex result.

    Returns:
        The image: real (the real dtype of ``spec``) with ``real=True``, else complex.

    Shape:
        - spec: ``(..., H, W)``
        - output: ``(..., H, W)``

    Raises:
        TypeError: ``spec`` is not a tensor or not floating-point/complex.
        ValueError: ``spec`` has fewer than 2 dims.
    """
    check_tensor(spec, "spec", min_dim=2, finite=False)
    out = torch.fft.ifft2(torch.fft.ifftshift(spec, dim=(-2, -1)), norm="ortho")
    return out.real if real else out


def dht2(x: torch.Tensor) -> torch.Tensor:
    """Orthonormal 2-D discrete Hartley transform, centred like :func:`dft2`.

    ``dht2(x) = Re(F) - Im(F)`` with ``F`` the unitary DFT (Bracewell 1983, "Discrete
    Hartley transform"): a *real* orthonormal basis whose coefficient ``(u, v)`` oscillates
    at the DFT frequency ``(u, v)``.  The pair of coefficients at ``+f`` and ``-f`` spans
    the same plane as the real and imaginary part of the DFT at ``f``, so band masks and
    radii carry over unchanged.  It is its own inverse up to the centring shift (see
    :func:`idht2`).  This is the real form of the ``"dft"`` basis (:func:`to_basis`).

    Args:
        x: real floating-point tensor with at least 2 dims (not checked for NaN/inf).

    Returns:
        Real Hartley coefficients, same shape and dtype as ``x``.

    Shape:
        - x: ``(..., H, W)``
        - output: ``(..., H, W)``

    Raises:
        TypeError: ``x`` is not a tensor, not floating-point, or complex.
        ValueError: ``x`` has fewer than 2 dims.
    """
    _check_spatial(x, "x")
    f = torch.fft.fft2(x, norm="ortho")
    return torch.fft.fftshift(f.real - f.imag, dim=(-2, -1))


def idht2(c: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`dht2`: the image whose centred Hartley coefficients are ``c``.

    Args:
        c: real floating-point coefficients with at least 2 dims (not checked for NaN/inf).

    Returns:
        The image, same shape and dtype as ``c``.

    Shape:
        - c: ``(..., H, W)``
        - output: ``(..., H, W)``

    Raises:
        TypeError: ``c`` is not a tensor, not floating-point, or complex.
        ValueError: ``c`` has fewer than 2 dims.
    """
    _check_spatial(c, "c")
    f = torch.fft.fft2(torch.fft.ifftshift(c, dim=(-2, -1)), norm="ortho")
    return f.real - f.imag


def to_basis(x: torch.Tensor, basis: str) -> torch.Tensor:
    """Real coefficients of ``x`` in an orthonormal frequency basis.

    ``"dct"``: :func:`dct2`; ``"dft"``: the real orthonormal form of the centred DFT,
    :func:`dht2` (see the module docstring).  Both are orthonormal, so L2 norms are kept;
    :func:`from_basis` inverts it.

    Args:
        x: real floating-point tensor with at least 2 dims.
        basis: ``"dct"`` or ``"dft"``.

    Returns:
        Real coefficients, same shape and dtype as ``x``.

    Shape:
        - x: ``(..., H, W)``
        - output: ``(..., H, W)``

    Raises:
        ValueError: an unknown ``basis``, or ``x`` with fewer than 2 dims.
        TypeError: ``x`` is not a tensor, not floating-point, or complex.

    Example:
        >>> import torch, freqkit as fk
        >>> _ = torch.manual_seed(0); x = torch.rand(2, 1, 8, 8)
        >>> h = fk.to_basis(x, "dft")
        >>> h.dtype, bool(torch.allclose(h.pow(2).sum(), x.pow(2).sum()))
        (torch.float32, True)
        >>> bool(torch.allclose(fk.from_basis(h, "dft"), x, atol=1e-6))
        True
    """
    check_basis(basis)
    return dct2(x) if basis == "dct" else dht2(x)


def from_basis(c: torch.Tensor, basis: str) -> torch.Tensor:
    """Inverse of :func:`to_basis`: the image whose ``basis`` coefficients are ``c``.

    Args:
        c: real floating-point coefficients with at least 2 dims.
        basis: ``"dct"`` (:func:`idct2`) or ``"dft"`` (:func:`idht2`).

    Returns:
        The image, same shape and dtype as ``c``.

    Shape:
        - c: ``(..., H, W)``
        - output: ``(..., H, W)``

    Raises:
        ValueError: an unknown ``basis``, or ``c`` with fewer than 2 dims.
        TypeError: ``c`` is not a tensor, not floating-point, or complex.
    """
    check_basis(basis)
    return idct2(c) if basis == "dct" else idht2(c)


# ----------------------------------------------------------------------------- frequency grids

def frequency_coords(h: int, w: int, basis: str = "dct", device=None):
    """Per-coefficient frequencies ``(fu, fv)`` in units of Nyquist.

    DCT: ``fu = u / H`` (0 .. ``(H - 1) / H``).  DFT (centred, also the Hartley grid):
    ``fu = 2 |u - H//2| / H`` (0 .. 1; 1 is reached at index 0 of an even axis).  ``fv``
    likewise along W.

    Args:
        h: image height, an integer ``>= 1``.
        w: image width, an integer ``>= 1``.
        basis: ``"dct"`` or ``"dft"``.
        device: device of the results (``None``: the default device).

    Returns:
        ``(fu, fv)``, two float64 tensors (``fu`` varies along rows, ``fv`` along columns).

    Shape:
        - fu, fv: ``(H, W)`` each.

    Raises:
        ValueError: ``h`` or ``w`` not an integer ``>= 1``, or an unknown ``basis``.
    """
    check_positive_int(h, "h")
    check_positive_int(w, "w")
    check_basis(basis)
    u = torch.arange(h, dtype=torch.float64, device=device)
    v = torch.arange(w, dtype=torch.float64, device=device)
    if basis == "dct":
        fu, fv = u / h, v / w
    else:
        fu, fv = 2 * (u - h // 2).abs() / h, 2 * (v - w // 2).abs() / w
    return torch.meshgrid(fu, fv, indexing="ij")


def frequency_radius(h: int, w: int, basis: str = "dct", kind: str = "radial", device=None) -> torch.Tensor:
    """Normalised radius of every coefficient of an ``H x W`` grid.

    From :func:`frequency_coords`: ``kind="radial"`` gives ``sqrt(fu^2 + fv^2)`` in
    ``[0, sqrt(2)]``; ``kind="ring"`` gives ``max(fu, fv)``, whose level sets are the
    L-shaped rings ``max(u, v) = k`` of Wang et al. 2020 ("High-frequency component helps
    explain the generalization of convolutional neural networks") on a square DCT grid.
    Ring radii lie in ``[0, 1)`` on the DCT grid and in ``[0, 1]`` on the DFT grid (1 at
    index 0 of an even axis).

    Args:
        h: image height, an integer ``>= 1``.
        w: image width, an integer ``>= 1``.
        basis: ``"dct"`` or ``"dft"``.
        kind: ``"radial"`` or ``"ring"``.
        device: device of the result (``None``: the default device).

    Returns:
        The radius per coefficient, float64.

    Shape:
        - output: ``(H, W)``

    Raises:
        ValueError: an unknown ``kind`` or ``basis``, or ``h``/``w`` not an integer ``>= 1``.
    """
    check_choice(kind, "kind", ("radial", "ring"))
    fu, fv = frequency_coords(h, w, basis, device)
    return torch.sqrt(fu ** 2 + fv ** 2) if kind == "radial" else torch.maximum(fu, fv)


def band_masks(h: int, w: int, n_bands: int | None = None, kind: str = "radial", basis: str = "dct",
               edges: Sequence[float] | None = None, device=None) -> torch.Tensor:
    """A partition of the ``H x W`` frequency plane into K bands of normalised radius.

    Band ``k`` holds the coefficients whose radius (:func:`frequency_radius`) lies in
    ``[e_k, e_{k+1})``, the last band also its upper edge; the edges are ``n_bands + 1``
    equal steps over ``[0, sqrt(2)]`` (radial) or ``[0, 1]`` (ring), so a band means the
    same absolute frequencies whatever the grid size, or the given ``edges``.  A radius that
    sits on an edge (up to 1e-9) opens the band above it.  Every coefficient belongs to
    exactly one band.

    Args:
        h: image height, an integer ``>= 1``.
        w: image width, an integer ``>= 1``.
        n_bands: number of equal-width bands, an integer ``>= 1`` (units of Nyquist).  For
            ``kind="ring"`` on a square DCT grid with ``n_bands == H``, band k is exactly the
            authors' L-shaped ring ``max(u, v) == k`` (Wang et al. 2020,
            ``zifanw/frequency_explain``).  Ignored when ``edges`` is given.
        kind: ``"radial"`` (normalised radius) or ``"ring"`` (``max(fu, fv)``).
        basis: ``"dct"`` or ``"dft"`` (centred spectrum; masks are symmetric under
            ``f -> -f``, so DFT-filtered images stay real).
        edges: instead of ``n_bands``, K+1 strictly increasing edges; band k holds radii in
            ``[edges[k], edges[k+1])``, the last band also its upper edge.  The edges must
            cover every radius on the grid.
        device: device of the masks (``None``: the default device).

    Returns:
        Boolean masks, one per band.

    Shape:
        - output: ``(K, H, W)``

    Raises:
        ValueError: ``h``, ``w`` or ``n_bands`` not an integer ``>= 1``; an unknown ``kind``
            or ``basis``; neither ``n_bands`` nor ``edges``; ``edges`` not a 1-D sequence of
            at least 2 strictly increasing values or not covering the grid's radii; or an
            empty band (too many bands for the grid).

    Example:
        >>> import torch, freqkit as fk
        >>> m = fk.band_masks(8, 8, 4)
        >>> m.shape, m.sum((1, 2)).tolist(), bool((m.sum(0) == 1).all())
        (torch.Size([4, 8, 8]), [8, 22, 28, 6], True)
        >>> fk.band_masks(8, 8, 8, kind="ring").sum((1, 2)).tolist()  # L-shaped rings
        [1, 3, 5, 7, 9, 11, 13, 15]
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

    Only symmetric masks keep DFT-filtered real images real.  The mirror of index ``u`` on
    the centred grid is ``(2 (H//2) - u) mod H`` (so on an even axis index 0, the Nyquist
    frequency, is its own mirror).

    Args:
        mask: a tensor ``(..., H, W)`` on the centred DFT grid (bool or numeric; compared
            exactly); its type and shape are not checked.
        name: the argument's name, used in the error message.

    Returns:
        None.

    Raises:
        ValueError: the mask differs from its mirror image.
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
    """Keep only the frequencies where ``mask`` is true: ``x`` filtered in the ``basis`` domain.

    DCT: ``idct2(dct2(x) * mask)``.  DFT: ``Re(idft2(dft2(x) * mask))`` with a centred mask
    symmetric under ``f -> -f`` (checked), so the result is real up to rounding.  The mask is
    multiplied in (cast to ``x``'s dtype), so a non-binary mask weights the coefficients
    instead of selecting them.  Differentiable.

    Args:
        x: real floating-point image tensor with at least 2 dims.
        mask: a tensor whose last two dims are ``(H, W)`` and which broadcasts against
            ``x``: a bool (or 0/1) mask from e.g. :func:`band_masks` or
            :func:`low_high_masks`, on the grid of ``basis``.
        basis: ``"dct"`` or ``"dft"``.

    Returns:
        The filtered images, ``x``'s dtype, in the broadcast shape of ``x`` and ``mask``
        (the shape of ``x`` for an ``(H, W)`` mask).

    Shape:
        - x: ``(..., H, W)``
        - mask: ``(H, W)`` or broadcastable to ``x``
        - output: ``(..., H, W)``

    Raises:
        TypeError: ``x`` is not a tensor, not floating-point, or complex.
        ValueError: ``x`` has fewer than 2 dims; an unknown ``basis``; ``mask`` not a tensor
            or its last two dims not ``(H, W)``; a DFT mask not symmetric under ``f -> -f``.

    Example:
        >>> import torch, freqkit as fk
        >>> _ = torch.manual_seed(0); x = torch.rand(2, 1, 8, 8)
        >>> m = fk.low_high_masks(8, 8)
        >>> low, high = fk.filter_band(x, m["low"]), fk.filter_band(x, m["high"])
        >>> low.shape, bool(torch.allclose(low + high, x, atol=1e-6))
        (torch.Size([2, 1, 8, 8]), True)
    """
    _check_spatial(x, "x")
    check_basis(basis)
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
    """Keep the frequencies with normalised radius ``<= cutoff`` (an ideal low-pass filter).

    :func:`filter_band` with the mask ``frequency_radius(H, W, basis, kind) <= cutoff``.
    ``cutoff=0`` keeps only the mean; a cutoff at or above the largest radius keeps ``x``.
    ``low_pass(x, c) + high_pass(x, c) == x``.

    Args:
        x: real floating-point image tensor with at least 2 dims.
        cutoff: radius in units of Nyquist, a finite number ``>= 0`` (radial radii reach
            ``sqrt(2)``, ring radii 1).
        basis: ``"dct"`` or ``"dft"``.
        kind: ``"radial"`` (``sqrt(fu^2 + fv^2)``) or ``"ring"`` (``max(fu, fv)``).

    Returns:
        The low-passed images, same shape and dtype as ``x``.

    Shape:
        - x: ``(..., H, W)``
        - output: ``(..., H, W)``

    Raises:
        TypeError: ``x`` is not a tensor, not floating-point, or complex.
        ValueError: ``x`` has fewer than 2 dims; ``cutoff`` not a finite number ``>= 0``; an
            unknown ``basis`` or ``kind``.

    Example:
        >>> import torch, freqkit as fk
        >>> _ = torch.manual_seed(0); x = torch.rand(2, 1, 8, 8)
        >>> mean = x.mean((-2, -1), keepdim=True)
        >>> bool(torch.allclose(fk.low_pass(x, 0.0), mean.expand_as(x), atol=1e-6))
        True
        >>> lo, hi = fk.low_pass(x, 0.5, basis="dft"), fk.high_pass(x, 0.5, basis="dft")
        >>> bool(torch.allclose(lo + hi, x, atol=1e-6))
        True
    """
    _check_spatial(x, "x")
    return filter_band(x, _cutoff_mask(*x.shape[-2:], cutoff, basis, kind, x.device, True), basis)


def high_pass(x: torch.Tensor, cutoff: float, basis: str = "dct", kind: str = "radial") -> torch.Tensor:
    """Keep the frequencies with normalised radius ``> cutoff`` (an ideal high-pass filter).

    :func:`filter_band` with the mask ``frequency_radius(H, W, basis, kind) > cutoff``: the
    complement of :func:`low_pass`, so ``x == low_pass(x, c) + high_pass(x, c)``.  The mean
    is always removed; a cutoff at or above the largest radius returns zeros.

    Args:
        x: real floating-point image tensor with at least 2 dims.
        cutoff: radius in units of Nyquist, a finite number ``>= 0``.
        basis: ``"dct"`` or ``"dft"``.
        kind: ``"radial"`` (``sqrt(fu^2 + fv^2)``) or ``"ring"`` (``max(fu, fv)``).

    Returns:
        The high-passed images, same shape and dtype as ``x``.

    Shape:
        - x: ``(..., H, W)``
        - output: ``(..., H, W)``

    Raises:
        TypeError: ``x`` is not a tensor, not floating-point, or complex.
        ValueError: ``x`` has fewer than 2 dims; ``cutoff`` not a finite number ``>= 0``; an
            unknown ``basis`` or ``kind``.

    Example:
        >>> import torch, freqkit as fk
        >>> _ = torch.manual_seed(0); x = torch.rand(2, 1, 8, 8)
        >>> hi = fk.high_pass(x, 0.5)
        >>> bool(torch.allclose(fk.low_pass(x, 0.5) + hi, x, atol=1e-6)), bool(hi.mean().abs() < 1e-6)
        (True, True)
    """
    _check_spatial(x, "x")
    return filter_band(x, _cutoff_mask(*x.shape[-2:], cutoff, basis, kind, x.device, False), basis)


def band_pass(x: torch.Tensor, lo: float, hi: float, basis: str = "dct", kind: str = "radial") -> torch.Tensor:
    """Keep the frequencies with ``lo < radius <= hi`` (an ideal band-pass filter).

    :func:`filter_band` with that mask.  The lower bound is exclusive, so even ``lo=0``
    removes the mean: ``band_pass(x, 0, c) == low_pass(x, c) - low_pass(x, 0)``.

    Args:
        x: real floating-point image tensor with at least 2 dims.
        lo: lower radius (exclusive), units of Nyquist, ``>= 0``.
        hi: upper radius (inclusive), ``> lo``.
        basis: ``"dct"`` or ``"dft"``.
        kind: ``"radial"`` or ``"ring"``.

    Returns:
        The band-passed images, same shape and dtype as ``x``.

    Shape:
        - x: ``(..., H, W)``
        - output: ``(..., H, W)``

    Raises:
        TypeError: ``x`` is not a tensor, not floating-point, or complex.
        ValueError: ``x`` has fewer than 2 dims; ``lo``/``hi`` not numbers with
            ``0 <= lo < hi``; an unknown ``basis`` or ``kind``.
    """
    _check_spatial(x, "x")
    if not (isinstance(lo, (int, float)) and isinstance(hi, (int, float)) and 0 <= lo < hi):
        raise ValueError(f"band_pass needs 0 <= lo < hi, got lo={lo!r}, hi={hi!r}")
    r = frequency_radius(*x.shape[-2:], basis, kind, x.device)
    return filter_band(x, (r > lo) & (r <= hi), basis)


def band_decompose(x: torch.Tensor, masks: torch.Tensor, basis: str = "dct") -> torch.Tensor:
    """Split images into K band components that sum to the images.

    Component ``k`` is ``filter_band(x, masks[k], basis)``, computed with one forward
    transform.  ``masks`` must partition the frequency plane (e.g. from :func:`band_masks`
    or :func:`equal_count_band_masks`): overlapping or missing frequencies are an error,
    since the components would then not sum to ``x``.

    Args:
        x: images, a finite floating-point tensor ``(N, C, H, W)``.
        masks: bool or 0/1 partition ``(K, H, W)`` (an ``(H, W)`` mask counts as K = 1 and
            must then select every frequency); on the grid of ``basis``.
        basis: ``"dct"`` or ``"dft"`` (DFT masks must be symmetric under ``f -> -f``).

    Returns:
        The components, ``x``'s dtype.

    Shape:
        - x: ``(N, C, H, W)``
        - masks: ``(K, H, W)``
        - output: ``(N, K, C, H, W)``

    Raises:
        TypeError: ``x`` or ``masks`` not a tensor, or ``x`` not floating-point.
        ValueError: ``x`` not 4-D or not finite; an unknown ``basis``; ``masks`` of another
            shape, with values other than 0/1, with an empty band, not a partition, or (DFT)
            not symmetric under ``f -> -f``.

    Example:
        >>> import torch, freqkit as fk
        >>> _ = torch.manual_seed(0); x = torch.rand(2, 1, 8, 8)
        >>> parts = fk.band_decompose(x, fk.band_masks(8, 8, 4))
        >>> parts.shape, bool(torch.allclose(parts.sum(1), x, atol=1e-6))
        (torch.Size([2, 4, 1, 8, 8]), True)
    """
    check_tensor(x, "x", ndim=4)
    check_basis(basis)
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

    The image is cut into non-overlapping tiles (as JPEG does with 8 x 8 blocks, Wallace
    1992, "The JPEG still picture compression standard"), and tile ``(i, j)`` of the output
    holds the :func:`dct2` of the same pixel tile.  Differentiable.

    Args:
        x: real floating-point tensor with at least 2 dims; H and W divisible by ``block``.
        block: tile size, an integer ``>= 1``.

    Returns:
        The blockwise coefficients, same shape and dtype as ``x``.

    Shape:
        - x: ``(..., H, W)``
        - output: ``(..., H, W)``

    Raises:
        TypeError: ``x`` is not a tensor, not floating-point, or complex.
        ValueError: ``x`` has fewer than 2 dims; ``block`` not an integer ``>= 1``; H or W
            not divisible by ``block``.
    """
    _check_spatial(x, "x")
    check_positive_int(block, "block")
    t, lead, h, w = _blocks(x, block, "x")
    c = dct2(t)
    return c.transpose(-3, -2).reshape(*lead, h, w)


def block_idct2(c: torch.Tensor, block: int = 8) -> torch.Tensor:
    """Inverse of :func:`block_dct2`: ``block_idct2(block_dct2(x, b), b) == x``.

    Args:
        c: blockwise DCT coefficients, real floating-point, at least 2 dims; H and W
            divisible by ``block``.
        block: tile size, an integer ``>= 1`` (the one used in :func:`block_dct2`).

    Returns:
        The image, same shape and dtype as ``c``.

    Shape:
        - c: ``(..., H, W)``
        - output: ``(..., H, W)``

    Raises:
        TypeError: ``c`` is not a tensor, not floating-point, or complex.
        ValueError: ``c`` has fewer than 2 dims; ``block`` not an integer ``>= 1``; H or W
            not divisible by ``block``.
    """
    _check_spatial(c, "c")
    check_positive_int(block, "block")
    t, lead, h, w = _blocks(c, block, "c")
    return idct2(t).transpose(-3, -2).reshape(*lead, h, w)


# ----------------------------------------------------------------------------- spectra

def power_spectrum(x: torch.Tensor, basis: str = "dft") -> torch.Tensor:
    """Mean energy per frequency coefficient, averaged over all leading dims.

    ``basis="dft"``: ``|F|^2`` of the centred unitary DFT (:func:`dft2`); ``"dct"``:
    ``dct2(x)^2``.  By Parseval the map sums to the mean squared pixel value times
    ``H * W``.  For real ``x``, ``|F(f)|^2 = (h(f)^2 + h(-f)^2) / 2`` with ``h = dht2(x)``:
    summed over any band symmetric under ``f -> -f`` it is the energy of
    :func:`to_basis` ``(x, "dft")`` there.

    Args:
        x: real floating-point tensor with at least 2 dims (e.g. images ``(N, C, H, W)``).
        basis: ``"dft"`` (default) or ``"dct"``.

    Returns:
        The power map, real, ``x``'s dtype; on the centred grid for ``"dft"``.

    Shape:
        - x: ``(..., H, W)``
        - output: ``(H, W)``

    Raises:
        TypeError: ``x`` is not a tensor, not floating-point, or complex.
        ValueError: ``x`` has fewer than 2 dims, or an unknown ``basis``.

    Example:
        >>> import torch, freqkit as fk
        >>> _ = torch.manual_seed(0); x = torch.rand(2, 1, 8, 8)
        >>> p = fk.power_spectrum(x)
        >>> p.shape, bool(torch.allclose(p.sum(), 64 * x.pow(2).mean()))  # Parseval
        (torch.Size([8, 8]), True)
    """
    _check_spatial(x, "x")
    check_basis(basis)
    if basis == "dct":
        e = dct2(x) ** 2
    else:
        e = dft2(x).abs() ** 2
    return e.reshape(-1, *x.shape[-2:]).mean(0)


def radial_profile(values: torch.Tensor, masks: torch.Tensor, reduce: str = "sum") -> torch.Tensor:
    """Reduce per-coefficient ``values`` over each band of ``masks``.

    Args:
        values: finite floating-point tensor with at least 2 dims, e.g. a power map or
            attribution maps.
        masks: bool or 0/1 masks ``(K, H, W)`` (or one ``(H, W)`` mask); need not partition
            the plane.
        reduce: ``"sum"`` over each band, or ``"mean"`` per coefficient of the band.

    Returns:
        One value per band and leading index, ``values``' dtype.

    Shape:
        - values: ``(..., H, W)``
        - masks: ``(K, H, W)``
        - output: ``(..., K)``

    Raises:
        TypeError: ``values`` or ``masks`` not a tensor, or ``values`` not floating-point.
        ValueError: ``values`` with fewer than 2 dims or non-finite entries; an unknown
            ``reduce``; ``masks`` of another shape, with values other than 0/1, or with an
            empty band.
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
    1996, "Modelling the power spectra of natural images: statistics and information"), a
    slope near -2.  The power map is averaged over ``n_bands`` equal-width radial bands
    (:func:`band_masks`) with the mean (r = 0) left out (a band holding only the mean is dropped);
    the slope is the least-squares fit over the bands whose centre lies in ``fit_range``
    and whose power is positive.

    Args:
        power: a finite floating-point power map ``(H, W)``, e.g. from :func:`power_spectrum`
            on the grid of ``basis``.
        basis: ``"dft"`` (default) or ``"dct"``.
        n_bands: number of equal-width radial bands, an integer ``>= 1``.
        fit_range: ``(lo, hi)`` band centres (units of Nyquist) used for the fit, inclusive.

    Returns:
        ``(radius_centres, mean_power, slope)``: the mean radius of the coefficients of each
        band, ``(K',)`` float64; the mean power per coefficient of each band, ``(K',)``
        float64; the fitted slope, a float.  ``K' <= n_bands`` (the DC-only band is dropped).

    Shape:
        - power: ``(H, W)``
        - radius_centres, mean_power: ``(K',)``

    Raises:
        TypeError: ``power`` is not a floating-point tensor.
        ValueError: ``power`` not 2-D or not finite; an unknown ``basis``; ``n_bands`` not an
            integer ``>= 1`` or leaving an empty band; fewer than 2 bands in ``fit_range``.
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


# ----------------------------------------------------------------------------- more band families

def dc_mask(h: int, w: int, basis: str = "dct", device=None) -> torch.Tensor:
    """The mask of the zero frequency (DC, the image mean) on the ``basis`` grid.

    The DC coefficient is the only one at radius 0 (:func:`frequency_radius`): index
    ``(0, 0)`` of the DCT grid, ``(H // 2, W // 2)`` of the centred DFT grid.  A perturbation
    along it changes the brightness of the whole image, a direction of its own that the
    low-frequency subspaces of Guo et al. 2018 and Sharma et al. 2019 contain and that the
    DC-free bands (``exclude_dc=True`` in :func:`equal_count_band_masks`,
    :func:`low_block_masks`) leave out.

    Args:
        h: image height, an integer ``>= 1``.
        w: image width, an integer ``>= 1``.
        basis: ``"dct"`` or ``"dft"``.
        device: device of the mask (``None``: the default device).

    Returns:
        A bool mask with exactly one true entry (symmetric under ``f -> -f`` on the DFT grid).

    Shape:
        - output: ``(H, W)``

    Raises:
        ValueError: ``h`` or ``w`` not an integer ``>= 1``, or an unknown ``basis``.

    Example:
        >>> import torch, freqkit as fk
        >>> fk.transforms.dc_mask(4, 4).nonzero().tolist(), fk.transforms.dc_mask(4, 4, "dft").nonzero().tolist()
        ([[0, 0]], [[2, 2]])
    """
    return frequency_radius(h, w, basis, "radial", device) == 0


def equal_count_band_masks(h: int, w: int, n_bands: int, basis: str = "dct", kind: str = "radial",
                           device=None, exclude_dc: bool = False) -> torch.Tensor:
    """``n_bands`` radial (or ring) bands with as equal numbers of coefficients as the grid allows.

    Equal-width radial bands (:func:`band_masks`) hold very different numbers of
    coefficients (on a 32 x 32 DCT grid with 4 bands: 112, 312, 468 and 132), and a
    perturbation confined to a smaller subspace needs more distortion for that reason
    alone.  Here the edges sit at the quantiles of the radius, moved to the nearest gap
    between distinct radii (coefficients at one radius are never split; each band keeps at
    least one distinct radius), so band k holds the coefficients between the k/K and
    (k+1)/K quantiles of the radius.  DFT masks are symmetric under ``f -> -f`` (the radius
    is).  Because ties are never split, the counts can differ from ``H W / K`` by up to the
    largest number of coefficients sharing one radius (6 on a 32 x 32 DCT grid, mostly the
    mirror pairs ``(u, v)``, ``(v, u)``; 4 or 8 on the DFT grid, whose ``f`` and ``-f``
    share a radius): splitting a tie would make a band depend on the orientation of its
    frequencies.

    ``exclude_dc=True`` leaves out the zero frequency (:func:`dc_mask`) and splits the other
    ``H W - 1`` coefficients: the lowest band then holds the lowest *oscillating*
    frequencies only, as in the low-frequency comparisons of Guo et al. 2018 ("Low frequency
    adversarial perturbation") and Sharma et al. 2019 ("On the effectiveness of low
    frequency perturbations"), where a change of the image mean is no "low-frequency
    perturbation" of interest (it has its own direction, a brightness change).

    Args:
        h: image height, an integer ``>= 1``.
        w: image width, an integer ``>= 1``.
        n_bands: number of bands K, an integer ``>= 1``.
        basis: ``"dct"`` or ``"dft"``.
        kind: ``"radial"`` or ``"ring"`` (see :func:`frequency_radius`).
        device: device of the masks (``None``: the default device).
        exclude_dc: leave the DC coefficient out of every band (default ``False``: the bands
            partition the whole plane).

    Returns:
        A bool partition of the frequency plane, like :func:`band_masks`; with
        ``exclude_dc`` a partition of every frequency but the DC term.

    Shape:
        - output: ``(K, H, W)``

    Raises:
        ValueError: ``h``, ``w`` or ``n_bands`` not an integer ``>= 1``; an unknown
            ``basis`` or ``kind``; ``exclude_dc`` not a bool; ``n_bands`` larger than the
            number of distinct radii of the grid (the DC radius not counted with
            ``exclude_dc``; a 1 x 1 grid fails even for one band).

    Example:
        >>> import torch, freqkit as fk
        >>> fk.equal_count_band_masks(32, 32, 4).sum((1, 2)).tolist()
        [255, 255, 258, 256]
        >>> fk.band_masks(32, 32, 4).sum((1, 2)).tolist()  # equal-width bands, for contrast
        [112, 312, 468, 132]
        >>> m = fk.equal_count_band_masks(32, 32, 8, exclude_dc=True)   # 1023 coefficients / 8
        >>> m.sum((1, 2)).tolist(), bool(m[:, 0, 0].any())
        ([128, 126, 129, 126, 130, 128, 129, 127], False)
    """
    check_positive_int(h, "h")
    check_positive_int(w, "w")
    check_positive_int(n_bands, "n_bands")
    check_basis(basis)
    if not isinstance(exclude_dc, bool):
        raise ValueError(f"exclude_dc must be a bool, got {exclude_dc!r}")
    r = frequency_radius(h, w, basis, kind, device).flatten()
    if exclude_dc:
        r = r[r > 0]                                      # the DC term is the only radius 0
    vals, counts = torch.unique(r, sorted=True, return_counts=True)
    if vals.numel() < n_bands:
        what = "non-zero radii" if exclude_dc else "distinct radii"
        raise ValueError(f"n_bands={n_bands} exceeds the {vals.numel()} {what} of a {h}x{w} grid")
    cum = torch.cumsum(counts, 0).double()               # coefficients with radius <= vals[j]
    total = float(r.numel())
    cuts = []
    prev = -1
    for k in range(1, n_bands):
        target = k * total / n_bands
        # the cut after index j; keep at least one distinct radius per band
        lo_j = prev + 1
        hi_j = vals.numel() - 1 - (n_bands - k)
        j = lo_j + int(torch.argmin((cum[lo_j:hi_j + 1] - target).abs()))
        cuts.append(j)
        prev = j
    # With exclude_dc the first edge is 0, so that the edges cover the grid as band_masks
    # requires; the DC term lands in band 0 and is taken out again.
    first = 0.0 if exclude_dc else float(vals[0])
    edges = [first] + [float(vals[j] + vals[j + 1]) / 2 for j in cuts] + [float(vals[-1])]
    masks = band_masks(h, w, kind=kind, basis=basis, edges=edges, device=device)
    if exclude_dc:
        masks = masks & ~dc_mask(h, w, basis, masks.device)
    return masks


def ring_band_masks(h: int, w: int, basis: str = "dct", device=None) -> torch.Tensor:
    """The authors' L-shaped ring bands (Wang et al. 2020), one ring per frequency step.

    Wang et al. 2020, "High-frequency component helps explain the generalization of
    convolutional neural networks" (``zifanw/frequency_explain``).  DCT: ``min(H, W)``
    equal-width rings of ``max(u/H, v/W)`` (for square images, ring k is exactly
    ``max(u, v) == k``).  DFT: ``max(1, min(H, W) // 2)`` rings of the centred spectrum (the
    DFT has half as many distinct frequencies per axis).  The default bands of
    :mod:`freqkit.attribution`.

    Args:
        h: image height, an integer ``>= 1``.
        w: image width, an integer ``>= 1``.
        basis: ``"dct"`` or ``"dft"``.
        device: device of the masks (``None``: the default device).

    Returns:
        A bool partition of the frequency plane (see :func:`band_masks`).

    Shape:
        - output: ``(K, H, W)``

    Raises:
        ValueError: an unknown ``basis``; ``h`` or ``w`` not an integer ``>= 1``; an empty
            ring (see :func:`band_masks`).
    """
    check_basis(basis)
    k = min(h, w) if basis == "dct" else max(1, min(h, w) // 2)
    return band_masks(h, w, k, kind="ring", basis=basis, device=device)


def low_high_masks(h: int, w: int, basis: str = "dct", exclude_dc: bool = False) -> dict:
    """The lower and upper half of the coefficients by normalised radius.

    Equal-count halves (:func:`equal_count_band_masks` with 2 radial bands) of the ``basis``
    grid, so that a low- and a high-band attack act in subspaces of (nearly) the same
    dimension; coefficients at one radius are never split, so the halves can differ by a
    few coefficients.  The mean (DC) is in ``"low"``, unless ``exclude_dc`` leaves it out
    (then the halves split the other ``H W - 1`` coefficients).

    Args:
        h: image height, an integer ``>= 1``.
        w: image width, an integer ``>= 1``.
        basis: ``"dct"`` or ``"dft"``.
        exclude_dc: leave the DC coefficient out of both halves (default ``False``).

    Returns:
        ``{"low": mask, "high": mask}``, disjoint bool masks (on the default device):
        complementary, or with ``exclude_dc`` covering every frequency but the DC term.

    Shape:
        - low, high: ``(H, W)`` each.

    Raises:
        ValueError: ``h`` or ``w`` not an integer ``>= 1``; an unknown ``basis``;
            ``exclude_dc`` not a bool; a grid with fewer than 2 distinct radii (1 x 1; with
            ``exclude_dc``, fewer than 2 non-zero radii).

    Example:
        >>> import torch, freqkit as fk
        >>> m = fk.low_high_masks(8, 8)
        >>> sorted(m), int(m["low"].sum()), int(m["high"].sum()), bool(m["low"][0, 0])
        (['high', 'low'], 31, 33, True)
        >>> m = fk.low_high_masks(8, 8, exclude_dc=True)
        >>> int(m["low"].sum()), int(m["high"].sum()), bool(m["low"][0, 0])
        (32, 31, False)
    """
    m = equal_count_band_masks(h, w, 2, basis=basis, exclude_dc=exclude_dc)
    return {"low": m[0], "high": m[1]}


def low_block_masks(h: int, w: int, ks: Sequence[int] | int, exclude_dc: bool = False, device=None) -> dict:
    """The square low-frequency DCT blocks of Guo et al. 2018 and Sharma et al. 2019.

    Guo, Frank & Weinberger 2018 ("Low frequency adversarial perturbation", UAI 2019) and
    Sharma, Ding & Brubaker 2019 ("On the effectiveness of low frequency perturbations",
    IJCAI 2019) confine perturbations to the top-left ``k x k`` coefficients of the 2-D DCT:
    ``u < k`` and ``v < k`` on the grid of :func:`dct2`, frequencies below ``k / H`` (rows)
    and ``k / W`` (columns) in units of Nyquist.  A block is a square in ``(u, v)``, not a
    disc, so it reaches the radius ``sqrt(2) (k - 1) / H`` along the diagonal; the blocks
    are nested and hold ``k^2`` coefficients, far fewer than an equal-count band for small
    ``k``: compare them through the minimal distortion, which grows as the subspace
    shrinks, not through their size.  DCT only: the papers define the subspace on the DCT.

    Args:
        h: image height, an integer ``>= 1``.
        w: image width, an integer ``>= 1``.
        ks: block sizes, an integer or a non-empty sequence of distinct integers in
            ``[1, min(H, W)]`` (e.g. ``(4, 8, 16)`` on 32 x 32 images).
        exclude_dc: leave the DC coefficient ``(0, 0)`` out of every block (``k^2 - 1``
            coefficients), to compare with the DC-free bands of
            :func:`equal_count_band_masks`; default ``False``, the papers' blocks.
        device: device of the masks (``None``: the default device).

    Returns:
        ``{"4x4": mask, "8x8": mask, ...}``: one bool mask per size, in the order of ``ks``,
        named ``f"{k}x{k}"``.

    Shape:
        - each mask: ``(H, W)``

    Raises:
        ValueError: ``h`` or ``w`` not an integer ``>= 1``; ``ks`` empty, holding a
            non-integer, a repeated size, or a size outside ``[1, min(H, W)]`` (or ``k = 1``
            with ``exclude_dc``, an empty block); ``exclude_dc`` not a bool.

    Example:
        >>> import torch, freqkit as fk
        >>> b = fk.transforms.low_block_masks(32, 32, (4, 8, 16))
        >>> list(b), [int(m.sum()) for m in b.values()]
        (['4x4', '8x8', '16x16'], [16, 64, 256])
        >>> b = fk.transforms.low_block_masks(32, 32, 4, exclude_dc=True)
        >>> int(b["4x4"].sum()), bool(b["4x4"][0, 0]), bool(b["4x4"][3, 3])
        (15, False, True)
    """
    check_positive_int(h, "h")
    check_positive_int(w, "w")
    if not isinstance(exclude_dc, bool):
        raise ValueError(f"exclude_dc must be a bool, got {exclude_dc!r}")
    ks_list = [ks] if isinstance(ks, int) and not isinstance(ks, bool) else ks
    try:
        ks_list = list(ks_list)
    except TypeError:
        raise ValueError(f"ks must be an integer or a sequence of integers, got {ks!r}") from None
    if not ks_list:
        raise ValueError("ks must hold at least one block size")
    top = min(h, w)
    lo_k = 2 if exclude_dc else 1
    for k in ks_list:
        if isinstance(k, bool) or not isinstance(k, int) or not lo_k <= k <= top:
            raise ValueError(f"ks must hold integers in [{lo_k}, min(H, W) = {top}]"
                             + (" (k = 1 with exclude_dc is an empty block)" if exclude_dc else "")
                             + f", got {k!r}")
    if len(set(ks_list)) != len(ks_list):
        raise ValueError(f"ks must not repeat a size, got {ks_list}")
    u = torch.arange(h, device=device).view(h, 1)
    v = torch.arange(w, device=device).view(1, w)
    out = {}
    for k in ks_list:
        m = (u < k) & (v < k)
        if exclude_dc:
            m[0, 0] = False
        out[f"{k}x{k}"] = m
    return out


# ----------------------------------------------------------------------------- band energy

def band_energy(delta: torch.Tensor, basis: str = "dct", masks: torch.Tensor | None = None,
                          n_bands: int | None = None, normalize: bool = True) -> torch.Tensor:
    """Energy per frequency band, per image: the radial spectrum of perturbations (or images).

    The energy per coefficient in the orthonormal ``basis`` (``"dct"``, or ``"dft"`` in its
    real Hartley form, whose energies over a symmetric band equal ``|F|^2`` summed over it),
    summed over channels and over each band of ``masks``.  Used to compare the spectra of
    smooth, low-frequency and unconstrained perturbations.

    Args:
        delta: a finite floating-point batch, e.g. ``x_adv - x``.
        basis: ``"dct"`` or ``"dft"``.
        masks: bool or 0/1 band masks ``(K, H, W)`` (or one ``(H, W)`` mask, K = 1) on the
            ``basis`` grid; they need not partition the plane; DFT masks must be symmetric
            under ``f -> -f``.  ``None``: ``n_bands`` equal-width radial bands
            (:func:`band_masks`).
        n_bands: number of default bands, an integer ``>= 1``; ``None`` means
            ``max(2, min(H, W) // 2)``.  Ignored when ``masks`` is given.
        normalize: divide each row by its sum over the bands (the share of the image's
            energy per band when the masks partition the plane; rows sum to 1, all-zero rows
            stay zero); ``False`` returns the energies themselves.

    Returns:
        Energies (or shares) per image and band, ``delta``'s dtype.

    Shape:
        - delta: ``(N, C, H, W)``
        - masks: ``(K, H, W)``
        - output: ``(N, K)``

    Raises:
        TypeError: ``delta`` or ``masks`` not a tensor, or ``delta`` not floating-point.
        ValueError: ``delta`` not 4-D or not finite; an unknown ``basis``; ``n_bands`` not an
            integer ``>= 1``; ``masks`` of another shape, with values other than 0/1, with an
            empty band, or (DFT) not symmetric; an empty default band (e.g. a 1 x 1 image).

    Example:
        >>> import torch, freqkit as fk
        >>> _ = torch.manual_seed(0); x = torch.rand(2, 1, 8, 8)
        >>> e = fk.band_energy(x - 0.5, masks=fk.band_masks(8, 8, 4))
        >>> e.shape, bool(torch.allclose(e.sum(1), torch.ones(2)))
        (torch.Size([2, 4]), True)
    """
    check_tensor(delta, "delta", ndim=4)
    check_basis(basis)
    h, w = delta.shape[-2:]
    if masks is None:
        k = max(2, min(h, w) // 2) if n_bands is None else check_positive_int(n_bands, "n_bands")
        masks = band_masks(h, w, k, kind="radial", basis=basis, device=delta.device)
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
