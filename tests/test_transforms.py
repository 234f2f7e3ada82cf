"""Transforms: parity with scipy, property tests (hypothesis), band partitions, the basis
vocabulary, band energy, bad input."""
import itertools
import math

import numpy as np
import pytest
import scipy.fft as sfft
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import freqkit as fk
from freqkit import transforms as T

sizes = st.integers(min_value=1, max_value=24)
dtypes = st.sampled_from([torch.float32, torch.float64])
TOL = {torch.float32: 1e-4, torch.float64: 1e-10}


def _rand(shape, dtype, seed):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(*shape, generator=g, dtype=torch.float64).to(dtype)


@settings(max_examples=40, deadline=None)
@given(h=sizes, w=sizes, n=st.integers(1, 3), dtype=dtypes, seed=st.integers(0, 2**16))
def test_dct2_matches_scipy_and_round_trips(h, w, n, dtype, seed):
    x = _rand((n, 2, h, w), dtype, seed)
    c = fk.dct2(x)
    ref = sfft.dctn(x.double().numpy(), axes=(-2, -1), norm="ortho")
    assert np.abs(c.double().numpy() - ref).max() < TOL[dtype] * max(1, h * w) ** 0.5
    assert torch.allclose(fk.idct2(c), x, atol=TOL[dtype] * 10)
    ref_inv = sfft.idctn(ref, axes=(-2, -1), norm="ortho")
    assert np.abs(fk.idct2(torch.from_numpy(ref)).numpy() - ref_inv).max() < 1e-9


@settings(max_examples=40, deadline=None)
@given(h=sizes, w=sizes, seed=st.integers(0, 2**16), basis=st.sampled_from(list(T.BASES)))
def test_parseval_and_round_trip_every_basis(h, w, seed, basis):
    x = _rand((2, 3, h, w), torch.float64, seed)
    c = T.to_basis(x, basis)
    assert c.dtype == torch.float64 and c.shape == x.shape
    # "dft" in real form is the Hartley transform on the centred grid; "dct" the DCT-II
    assert torch.equal(c, fk.dht2(x) if basis == "dft" else fk.dct2(x))
    assert torch.allclose((c ** 2).sum((-2, -1)), (x ** 2).sum((-2, -1)), rtol=1e-10)
    assert torch.allclose(T.from_basis(c, basis), x, atol=1e-10)
    spec = fk.dft2(x)
    assert torch.allclose((spec.abs() ** 2).sum((-2, -1)), (x ** 2).sum((-2, -1)), rtol=1e-10)
    assert torch.allclose(fk.idft2(spec), x, atol=1e-10)


def test_dft2_is_centred_numpy_fft():
    x = _rand((5, 6), torch.float64, 0)
    ref = np.fft.fftshift(np.fft.fft2(x.numpy(), norm="ortho"))
    assert np.allclose(fk.dft2(x).numpy(), ref)
    # the zero frequency (mean) sits at (H//2, W//2)
    assert math.isclose(fk.dft2(x)[2, 3].real.item(), x.sum().item() / math.sqrt(30), rel_tol=1e-12)


def test_dht_is_real_part_minus_imaginary_part():
    x = _rand((7, 8), torch.float64, 1)
    f = np.fft.fftshift(np.fft.fft2(x.numpy(), norm="ortho"))
    assert np.allclose(fk.dht2(x).numpy(), f.real - f.imag)
    assert torch.allclose(fk.idht2(fk.dht2(x)), x, atol=1e-12)


def test_dct2_is_differentiable_and_gradient_is_inverse_transform():
    x = _rand((1, 1, 6, 5), torch.float64, 2).requires_grad_(True)
    g = _rand((1, 1, 6, 5), torch.float64, 3)
    (fk.dct2(x) * g).sum().backward()
    # d<D x, g>/dx = D^T g = idct2(g) for an orthonormal D
    assert torch.allclose(x.grad, fk.idct2(g), atol=1e-12)


@settings(max_examples=40, deadline=None)
@given(h=st.integers(2, 40), w=st.integers(2, 40), k=st.integers(1, 6),
       kind=st.sampled_from(["radial", "ring"]), basis=st.sampled_from(["dct", "dft"]))
def test_band_masks_partition_the_plane(h, w, k, kind, basis):
    try:
        m = fk.band_masks(h, w, k, kind=kind, basis=basis)
    except ValueError as e:  # too many bands for a small grid must say which band is empty
        assert "empty" in str(e)
        return
    assert m.shape == (k, h, w) and m.dtype == torch.bool
    assert bool((m.sum(0) == 1).all())
    # bands are ordered by frequency: every radius in band i is below every radius in band i+1
    r = fk.frequency_radius(h, w, basis, kind)
    for i in range(k - 1):
        assert r[m[i]].max() <= r[m[i + 1]].min() + 1e-12
    if basis == "dft":
        for i in range(k):
            T.check_dft_symmetric(m[i])


def test_ring_masks_are_the_authors_L_shaped_rings():
    m = fk.band_masks(32, 32, 32, kind="ring", basis="dct")
    u, v = torch.meshgrid(torch.arange(32), torch.arange(32), indexing="ij")
    for k in range(32):
        assert torch.equal(m[k], torch.maximum(u, v) == k)


def test_user_edges_and_their_errors():
    m = fk.band_masks(16, 16, edges=[0, 0.25, 0.5, 1.5])
    r = fk.frequency_radius(16, 16)
    assert torch.equal(m[0], r < 0.25) and torch.equal(m[2], r >= 0.5)
    with pytest.raises(ValueError, match="increasing"):
        fk.band_masks(16, 16, edges=[0, 0.5, 0.4, 1.5])
    with pytest.raises(ValueError, match="cover"):
        fk.band_masks(16, 16, edges=[0.1, 0.5, 1.5])
    with pytest.raises(ValueError, match="empty"):
        fk.band_masks(16, 16, edges=[0, 1e-6, 2e-6, 1.5])


@settings(max_examples=30, deadline=None)
@given(h=st.integers(2, 20), w=st.integers(2, 20), k=st.integers(1, 4),
       basis=st.sampled_from(["dct", "dft"]), seed=st.integers(0, 2**16))
def test_band_decompose_sums_to_input_and_dft_components_are_real(h, w, k, basis, seed):
    try:
        m = fk.band_masks(h, w, k, basis=basis)
    except ValueError:
        return
    x = _rand((2, 3, h, w), torch.float64, seed)
    parts = fk.band_decompose(x, m, basis=basis)
    assert parts.shape == (2, k, 3, h, w)
    assert torch.allclose(parts.sum(1), x, atol=1e-10)
    if basis == "dft":
        spec = torch.fft.ifft2(torch.fft.ifftshift(fk.dft2(x).unsqueeze(1) * m[None, :, None], dim=(-2, -1)),
                               norm="ortho")
        assert spec.imag.abs().max() < 1e-10  # symmetric masks keep images real
    # components are orthogonal (disjoint supports in an orthonormal basis)
    if k > 1 and basis == "dct":
        assert abs(float((parts[:, 0] * parts[:, 1]).sum())) < 1e-8


@settings(max_examples=30, deadline=None)
@given(cut=st.floats(0, 1.5), seed=st.integers(0, 2**16), basis=st.sampled_from(["dct", "dft"]))
def test_low_plus_high_is_identity_and_low_pass_is_smooth(cut, seed, basis):
    x = _rand((1, 1, 12, 12), torch.float64, seed)
    lo, hi = fk.low_pass(x, cut, basis=basis), fk.high_pass(x, cut, basis=basis)
    assert torch.allclose(lo + hi, x, atol=1e-10)
    # a low-pass image carries no energy above the cut-off
    r = fk.frequency_radius(12, 12, basis)
    c = fk.dct2(lo) if basis == "dct" else fk.dft2(lo).abs()
    sel = c[..., r > cut]
    assert sel.numel() == 0 or float(sel.abs().max()) < 1e-9


def test_low_pass_zero_keeps_the_mean():
    x = _rand((2, 3, 9, 10), torch.float64, 4)
    for basis in ("dct", "dft"):
        lo = fk.low_pass(x, 0.0, basis=basis)
        assert torch.allclose(lo, x.mean((-2, -1), keepdim=True).expand_as(x), atol=1e-12)


def test_band_pass_matches_masked_dct():
    x = _rand((1, 1, 16, 16), torch.float64, 5)
    r = fk.frequency_radius(16, 16)
    expect = fk.idct2(fk.dct2(x) * ((r > 0.2) & (r <= 0.6)))
    assert torch.allclose(fk.band_pass(x, 0.2, 0.6), expect)


def test_block_dct_matches_per_block_scipy_and_round_trips():
    x = _rand((2, 3, 16, 24), torch.float64, 6)
    c = fk.block_dct2(x, 8)
    tile = x[1, 2, 8:16, 16:24].numpy()
    assert np.allclose(c[1, 2, 8:16, 16:24].numpy(), sfft.dctn(tile, norm="ortho"))
    assert torch.allclose(fk.block_idct2(c, 8), x, atol=1e-12)
    with pytest.raises(ValueError, match="divisible by block=8"):
        fk.block_dct2(torch.zeros(1, 1, 28, 28))


def test_power_spectrum_and_radial_profile():
    x = _rand((4, 3, 8, 8), torch.float64, 7)
    p = fk.power_spectrum(x, "dft")
    assert p.shape == (8, 8)
    # Parseval: total energy per image-channel equals the pixel energy
    assert math.isclose(p.sum().item(), (x ** 2).sum((-2, -1)).mean().item(), rel_tol=1e-10)
    m = fk.band_masks(8, 8, 3)
    prof = fk.radial_profile(fk.power_spectrum(x, "dct"), m)
    assert prof.shape == (3,)
    assert math.isclose(prof.sum().item(), (x ** 2).sum((-2, -1)).mean().item(), rel_tol=1e-10)
    # a natural-ish image has most energy in the lowest band (the mean)
    assert int(prof.argmax()) == 0


@pytest.mark.parametrize("call, match", [
    (lambda: fk.dct2([[1.0]]), "x must be a torch.Tensor"),
    (lambda: fk.dct2(torch.zeros(4)), "at least 2 dimensions"),
    (lambda: fk.dct2(torch.zeros(2, 2, dtype=torch.int64)), "floating-point"),
    (lambda: fk.band_masks(8, 8, 0), "n_bands must be an integer >= 1"),
    (lambda: fk.band_masks(8, 8, 4, kind="square"), "kind must be one of"),
    (lambda: fk.band_masks(8, 8, 4, basis="wavelet"), "basis must be one of"),
    (lambda: fk.band_masks(4, 4, 30), "empty"),
    (lambda: fk.low_pass(torch.zeros(1, 1, 4, 4), -0.1), "cutoff must be"),
    (lambda: fk.low_pass(torch.zeros(1, 1, 4, 4), float("nan")), "cutoff must be"),
    (lambda: fk.filter_band(torch.zeros(1, 1, 4, 4), torch.ones(5, 5)), r"mask must have shape"),
    (lambda: fk.filter_band(torch.zeros(1, 1, 4, 4), torch.eye(4).bool().roll(1, 0), "dft"), "symmetric"),
    (lambda: fk.band_decompose(torch.zeros(1, 1, 4, 4), torch.ones(2, 4, 4, dtype=torch.bool)), "partition"),
    (lambda: fk.band_decompose(torch.zeros(1, 1, 4, 4), torch.zeros(1, 4, 4, dtype=torch.bool)), "empty"),
    (lambda: fk.band_decompose(torch.full((1, 1, 4, 4), float("nan")), fk.band_masks(4, 4, 1)), "non-finite"),
])
def test_bad_input_gets_a_clear_error(call, match):
    with pytest.raises((ValueError, TypeError), match=match):
        call()


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device on this machine")
def test_dct2_on_gpu_matches_cpu():
    x = _rand((3, 3, 32, 32), torch.float32, 8)
    assert torch.allclose(fk.dct2(x.cuda()).cpu(), fk.dct2(x), atol=1e-5)


def test_radial_power_law_recovers_a_known_slope():
    # a synthetic spectrum P(r) = r^-2 (and a huge DC term that must not matter)
    r = fk.frequency_radius(32, 32, "dft")
    power = torch.where(r > 0, r.clamp_min(1e-9) ** -2.0, torch.tensor(1e6, dtype=torch.float64))
    centres, prof, slope = fk.radial_power_law(power, "dft", 16)
    assert slope == pytest.approx(-2.0, abs=0.15)
    assert len(centres) == len(prof) and bool((centres > 0).all())


# ----------------------------------------------------------------------------- the FFT (Makhoul) path
# dct2/idct2 switch from two GEMMs to Makhoul's FFT algorithm for large images; the
# private ``_fft_min_size`` lowers that crossover so small inputs exercise the FFT path.

FFT = 1  # _fft_min_size that sends every input through the FFT path
GEMM = 10 ** 9  # ... and one that never does


def _scipy_pair(x):
    xd = x.double().numpy()
    return sfft.dctn(xd, axes=(-2, -1), norm="ortho"), sfft.idctn(xd, axes=(-2, -1), norm="ortho")


@pytest.mark.parametrize("shape", [(2, 3, 224, 224), (1, 225, 225), (97, 97), (2, 225, 97), (1, 2, 97, 225),
                                   (3, 1, 300), (3, 300, 1), (2, 160, 96)])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_large_sizes_match_scipy(shape, dtype):
    x = _rand(shape, dtype, 11)
    ref, ref_inv = _scipy_pair(x)
    h, w = shape[-2:]
    # scaled by sqrt(H W) (the DC coefficient's size): float32 1.1e-4, float64 2.2e-13 at 224x224
    tol = {torch.float32: 5e-7, torch.float64: 1e-15}[dtype] * max(1, h * w) ** 0.5
    for kw in ({}, {"_fft_min_size": FFT}):
        c, ci = fk.dct2(x, **kw), fk.idct2(x, **kw)
        assert c.dtype == dtype and c.shape == x.shape and ci.shape == x.shape
        assert np.abs(c.double().numpy() - ref).max() < tol
        assert np.abs(ci.double().numpy() - ref_inv).max() < tol
        assert torch.allclose(fk.idct2(c, **kw), x, atol=tol)


@settings(max_examples=40, deadline=None)
@given(h=sizes, w=sizes, n=st.integers(1, 3), dtype=dtypes, seed=st.integers(0, 2**16))
def test_fft_path_matches_scipy_and_the_gemm_path(h, w, n, dtype, seed):
    x = _rand((n, 2, h, w), dtype, seed)
    ref, ref_inv = _scipy_pair(x)
    c, ci = fk.dct2(x, _fft_min_size=FFT), fk.idct2(x, _fft_min_size=FFT)
    assert np.abs(c.double().numpy() - ref).max() < TOL[dtype] * max(1, h * w) ** 0.5
    assert np.abs(ci.double().numpy() - ref_inv).max() < TOL[dtype] * max(1, h * w) ** 0.5
    atol = TOL[dtype] * 10
    assert torch.allclose(c, fk.dct2(x, _fft_min_size=GEMM), atol=atol)
    assert torch.allclose(fk.idct2(c, _fft_min_size=FFT), x, atol=atol)


def test_default_crossover_picks_the_fft_path_for_large_images(monkeypatch):
    calls = []
    real = T._makhoul
    monkeypatch.setattr(T, "_makhoul", lambda x, inverse: calls.append((tuple(x.shape), inverse)) or real(x, inverse))
    fk.dct2(torch.zeros(1, 32, 32))
    fk.idct2(torch.zeros(2, 28, 28))
    assert calls == []
    fk.dct2(torch.zeros(1, 224, 224))
    fk.idct2(torch.zeros(1, 224, 224))
    fk.dct2(torch.zeros(1, 224, 224, dtype=torch.float16))  # no half-precision FFT on CPU: GEMM
    assert calls == [((1, 224, 224), False), ((1, 224, 224), True)]


def test_fft_path_chunks_leading_dims_and_layouts(monkeypatch):
    monkeypatch.setattr(T, "_FFT_CHUNK_ELEMS", 3 * 40 * 33)  # 3 images per chunk: 7 = 3 + 3 + 1
    x = _rand((7, 40, 33), torch.float64, 12)
    ref, ref_inv = _scipy_pair(x)
    assert np.abs(fk.dct2(x, _fft_min_size=FFT).numpy() - ref).max() < 1e-12
    assert np.abs(fk.idct2(x, _fft_min_size=FFT).numpy() - ref_inv).max() < 1e-12
    # arbitrary leading dims, none at all, and non-contiguous inputs
    y = _rand((2, 2, 2, 33, 40), torch.float64, 13)
    assert torch.allclose(fk.dct2(y, _fft_min_size=FFT), fk.dct2(y, _fft_min_size=GEMM), atol=1e-12)
    assert torch.allclose(fk.dct2(y[0, 0, 0], _fft_min_size=FFT), fk.dct2(y[0, 0, 0], _fft_min_size=GEMM), atol=1e-12)
    yt = y.transpose(-1, -2)
    assert not yt.is_contiguous()
    assert torch.allclose(fk.dct2(yt, _fft_min_size=FFT), fk.dct2(yt.contiguous(), _fft_min_size=GEMM), atol=1e-12)
    assert torch.allclose(fk.idct2(yt[..., ::2, :], _fft_min_size=FFT),
                          fk.idct2(yt[..., ::2, :].contiguous(), _fft_min_size=GEMM), atol=1e-12)
    assert fk.dct2(torch.zeros(0, 3, 224, 224)).shape == (0, 3, 224, 224)


def test_fft_path_large_output_buffer():
    # > 4 MB of output: the CPU path advises huge pages for the result buffer (a hint only)
    x = _rand((12, 3, 224, 224), torch.float32, 14)
    c = fk.dct2(x)
    ref = sfft.dctn(x.numpy(), axes=(-2, -1), norm="ortho")
    assert np.abs(c.numpy() - ref).max() < 5e-5
    assert torch.allclose(fk.idct2(c), x, atol=5e-5)
    c.resize_(0)  # an ordinary, resizable tensor


@pytest.mark.parametrize("fn", [fk.dct2, fk.idct2])
def test_fft_path_gradients_of_any_order(fn):
    x = _rand((2, 5, 6), torch.float64, 15).requires_grad_(True)
    f = lambda v: fn(v, _fft_min_size=FFT)  # noqa: E731
    assert torch.autograd.gradcheck(f, (x,))
    assert torch.autograd.gradgradcheck(f, (x,))
    # the vector-Jacobian product of an orthonormal map is its inverse
    g = _rand((2, 5, 6), torch.float64, 16)
    (gx,) = torch.autograd.grad((f(x) * g).sum(), x)
    inv = fk.idct2 if fn is fk.dct2 else fk.dct2
    assert torch.allclose(gx, inv(g, _fft_min_size=GEMM), atol=1e-12)
    # forward mode: the Jacobian-vector product is the map itself
    import torch.autograd.forward_ad as fwAD
    with fwAD.dual_level():
        out = f(fwAD.make_dual(x.detach(), g))
        assert torch.allclose(fwAD.unpack_dual(out).tangent, fn(g, _fft_min_size=GEMM), atol=1e-12)


def test_fft_path_under_torch_func():
    x = _rand((3, 2, 9, 7), torch.float64, 20)
    for fn in (fk.dct2, fk.idct2):
        f = lambda v: fn(v, _fft_min_size=FFT)  # noqa: E731
        assert torch.allclose(torch.func.vmap(f, in_dims=1)(x), f(x.movedim(1, 0)), atol=1e-12)
        g = torch.func.grad(lambda v: (f(v) ** 3).sum())(x)
        (ref,) = torch.autograd.grad((fn(x.requires_grad_(True), _fft_min_size=GEMM) ** 3).sum(), x)
        x = x.detach()
        assert torch.allclose(g, ref, atol=1e-10)


def test_fft_path_gradient_at_224():
    x = _rand((1, 224, 224), torch.float64, 17).requires_grad_(True)
    g = _rand((1, 224, 224), torch.float64, 18)
    (gx,) = torch.autograd.grad((fk.dct2(x) * g).sum(), x)
    assert torch.allclose(gx, fk.idct2(g), atol=1e-12)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device on this machine")
@pytest.mark.parametrize("shape", [(2, 3, 224, 224), (2, 225, 97)])
def test_fft_path_on_gpu_matches_cpu(shape):
    x = _rand(shape, torch.float64, 19)
    for fn in (fk.dct2, fk.idct2):
        assert torch.allclose(fn(x.cuda()).cpu(), fn(x), atol=1e-12)
        assert torch.allclose(fn(x.float().cuda()).cpu().double(), fn(x), atol=5e-5)
    xg = x[:1, ..., :12, :10].cuda().requires_grad_(True)
    assert torch.autograd.gradcheck(lambda v: fk.dct2(v, _fft_min_size=FFT), (xg,))


# ----------------------------------------------------------------------------- the basis vocabulary

def _mirror(m: torch.Tensor) -> torch.Tensor:
    """``m`` (..., H, W) reflected through the centre of the centred DFT grid (``f -> -f``)."""
    h, w = m.shape[-2:]
    iu = ((-(torch.arange(h) - h // 2)) % h + h // 2) % h
    iv = ((-(torch.arange(w) - w // 2)) % w + w // 2) % w
    return m[..., iu, :][..., :, iv]


def test_check_basis_accepts_the_bases_and_names_the_argument():
    assert T.BASES == ("dct", "dft") and fk.BASES == T.BASES
    for b in T.BASES:
        assert T.check_basis(b) == b
    for bad in ("dht", "DCT", "fft", "", None, 0):
        with pytest.raises(ValueError, match=r"basis must be one of \['dct', 'dft'\], got "):
            T.check_basis(bad)
    with pytest.raises(ValueError, match=r"^grid_basis must be one of .*got 'dht'$"):
        T.check_basis("dht", "grid_basis")


def _dht_calls():
    from torch import nn

    from freqkit.attacks import band_comparison, band_projector, box_limited, compare_bands, minimal_distortion, pgd
    from freqkit.attribution import FrequencyModel, attribute, band_pixel_attribution, topk_reconstruction
    from freqkit.defense import LowPassLayer
    from freqkit.faithfulness import deletion_insertion_curves
    from freqkit.human import csf_map
    from freqkit.objectives import lowpass_objective
    from freqkit.reliance import filtered_accuracy

    x = _rand((2, 1, 8, 8), torch.float32, 30)
    y = torch.tensor([0, 1])
    m = nn.Sequential(nn.Flatten(), nn.Linear(64, 3))
    masks = fk.band_masks(8, 8, 2)
    return {
        "to_basis": lambda: T.to_basis(x, "dht"),
        "from_basis": lambda: T.from_basis(x, "dht"),
        "power_spectrum": lambda: fk.power_spectrum(x, "dht"),
        "frequency_radius": lambda: fk.frequency_radius(8, 8, "dht"),
        "band_masks": lambda: fk.band_masks(8, 8, 2, basis="dht"),
        "equal_count_band_masks": lambda: fk.equal_count_band_masks(8, 8, 2, basis="dht"),
        "ring_band_masks": lambda: fk.ring_band_masks(8, 8, "dht"),
        "low_high_masks": lambda: fk.low_high_masks(8, 8, "dht"),
        "filter_band": lambda: fk.filter_band(x, masks[0], "dht"),
        "low_pass": lambda: fk.low_pass(x, 0.5, basis="dht"),
        "band_decompose": lambda: fk.band_decompose(x, masks, "dht"),
        "band_energy": lambda: fk.band_energy(x, "dht"),
        "radial_power_law": lambda: fk.radial_power_law(torch.rand(8, 8), "dht"),
        "FrequencyModel": lambda: FrequencyModel(m, "dht"),
        "attribute": lambda: attribute(m, x, 0, basis="dht"),
        "band_pixel_attribution": lambda: band_pixel_attribution(m, x, 0, masks, basis="dht"),
        "topk_reconstruction": lambda: topk_reconstruction(x, x, 0.5, basis="dht"),
        "deletion_insertion_curves": lambda: deletion_insertion_curves(m, x, 0, x, basis="dht"),
        "pgd": lambda: pgd(m, x, y, 0.1, basis="dht"),
        "minimal_distortion": lambda: minimal_distortion(m, x, y, basis="dht"),
        "band_projector": lambda: band_projector(masks[0], "dht"),
        "compare_bands": lambda: compare_bands(m, x, y, masks, basis="dht", progress=False),
        "band_comparison": lambda: band_comparison(m, x, y, masks, basis="dht"),
        "box_limited": lambda: box_limited(m, x, y, masks[0], 0.1, basis="dht"),
        "LowPassLayer": lambda: LowPassLayer(0.5, basis="dht"),
        "lowpass_objective": lambda: lowpass_objective(0.5, basis="dht"),
        "csf_map": lambda: csf_map(8, 8, basis="dht"),
        "filtered_accuracy": lambda: filtered_accuracy(m, x, y, [0.5], basis="dht"),
    }


@pytest.mark.parametrize("name", list(_dht_calls()))
def test_dht_is_rejected_as_a_basis_name(name):
    """One vocabulary everywhere: "dht" is no basis name (dht2/idht2 are functions; "dft" is their basis)."""
    with pytest.raises(ValueError, match=r"basis must be one of \['dct', 'dft'\], got 'dht'"):
        _dht_calls()[name]()


@settings(max_examples=30, deadline=None)
@given(h=st.integers(1, 16), w=st.integers(1, 16), seed=st.integers(0, 2**16), frac=st.floats(0.05, 0.9))
def test_power_spectrum_dft_is_the_energy_of_to_basis_dft_over_symmetric_bands(h, w, seed, frac):
    x = _rand((3, 2, h, w), torch.float64, seed)
    p = fk.power_spectrum(x, "dft")
    e = (T.to_basis(x, "dft") ** 2).reshape(-1, h, w).mean(0)      # Hartley energy, same averaging
    # per frequency: |F(f)|^2 = (h(f)^2 + h(-f)^2) / 2
    torch.testing.assert_close(p, (e + _mirror(e)) / 2, rtol=1e-10, atol=1e-12)
    # so over any band symmetric under f -> -f the two energies are equal
    g = torch.Generator().manual_seed(seed)
    band = torch.rand(h, w, generator=g) < frac
    band = band | _mirror(band)
    T.check_dft_symmetric(band)
    assert math.isclose(float(p[band].sum()), float(e[band].sum()), rel_tol=1e-10, abs_tol=1e-12)
    k = min(3, max(1, min(h, w) // 2))
    try:
        masks = fk.equal_count_band_masks(h, w, k, basis="dft")
    except ValueError:
        return
    torch.testing.assert_close(fk.radial_profile(p, masks), fk.radial_profile(e, masks), rtol=1e-10, atol=1e-12)
    # band_energy (real Hartley form) agrees: per image, energy summed over channels
    be = fk.band_energy(x, "dft", masks=masks, normalize=False)
    per_image = (fk.dft2(x).abs() ** 2).sum(1)
    torch.testing.assert_close(be, fk.radial_profile(per_image, masks), rtol=1e-10, atol=1e-12)


def test_power_spectrum_dct_is_dct_energy():
    x = _rand((2, 3, 6, 7), torch.float64, 31)
    torch.testing.assert_close(fk.power_spectrum(x, "dct"), (fk.dct2(x) ** 2).reshape(-1, 6, 7).mean(0))


# ----------------------------------------------------------------------------- more band families

@pytest.mark.parametrize("h, w, k, basis", [(32, 32, 4, "dct"), (28, 28, 4, "dct"), (32, 32, 4, "dft"),
                                             (16, 12, 3, "dft"), (8, 8, 5, "dct")])
def test_equal_count_bands_partition_with_near_equal_counts(h, w, k, basis):
    m = fk.equal_count_band_masks(h, w, k, basis=basis)
    assert m.shape == (k, h, w) and m.dtype == torch.bool
    assert torch.equal(m.sum(0), torch.ones(h, w, dtype=m.sum(0).dtype))       # a partition
    counts = m.flatten(1).sum(1).double()
    # never off by more than the largest group of coefficients that share a radius
    r = fk.frequency_radius(h, w, basis)
    _, ties = torch.unique(r, return_counts=True)
    assert float((counts - h * w / k).abs().max()) <= int(ties.max())
    # ordered by frequency: every radius of band j is below every radius of band j + 1
    for j in range(k - 1):
        assert float(r[m[j]].max()) < float(r[m[j + 1]].min())
    if basis == "dft":
        T.check_dft_symmetric(m)


def test_equal_count_bands_errors():
    with pytest.raises(ValueError, match="n_bands"):
        fk.equal_count_band_masks(2, 2, 10)
    with pytest.raises(ValueError, match="basis"):
        fk.equal_count_band_masks(8, 8, 2, basis="wavelet")


def test_default_masks_partition_for_odd_shapes():
    for h, w in ((8, 8), (6, 10), (7, 5)):
        for basis in ("dct", "dft"):
            mk = fk.ring_band_masks(h, w, basis)
            assert bool((mk.sum(0) == 1).all())


def test_ring_band_masks_are_one_ring_per_frequency_step():
    # DCT, square: ring k is exactly max(u, v) == k (Wang et al. 2020), min(H, W) rings
    m = fk.ring_band_masks(8, 8, "dct")
    u, v = torch.meshgrid(torch.arange(8), torch.arange(8), indexing="ij")
    assert m.shape == (8, 8, 8)
    for k in range(8):
        assert torch.equal(m[k], torch.maximum(u, v) == k)
    assert fk.ring_band_masks(6, 10, "dct").shape[0] == 6
    # DFT: min(H, W) // 2 rings of the centred spectrum, symmetric, ordered outwards
    d = fk.ring_band_masks(8, 10, "dft")
    assert d.shape == (4, 8, 10)
    T.check_dft_symmetric(d)
    assert bool(d[0, 4, 5])                               # the zero frequency opens the first ring
    r = fk.frequency_radius(8, 10, "dft", "ring")
    for k in range(3):
        assert float(r[d[k]].max()) < float(r[d[k + 1]].min())
    assert torch.equal(fk.ring_band_masks(8, 10, "dft"), fk.band_masks(8, 10, 4, kind="ring", basis="dft"))
    assert fk.ring_band_masks(3, 3, "dft").shape[0] == 1   # never fewer than one ring


@pytest.mark.parametrize("h, w, basis", [(32, 32, "dct"), (28, 28, "dct"), (16, 16, "dft"), (9, 12, "dft")])
def test_low_high_masks_split_the_coefficients_in_two_equal_halves(h, w, basis):
    lh = fk.low_high_masks(h, w, basis)
    assert set(lh) == {"low", "high"}
    low, high = lh["low"], lh["high"]
    assert low.shape == (h, w) and low.dtype == torch.bool
    assert not bool((low & high).any()) and bool((low | high).all())
    r = fk.frequency_radius(h, w, basis)
    assert float(r[low].max()) < float(r[high].min())
    _, ties = torch.unique(r, return_counts=True)
    assert abs(int(low.sum()) - h * w / 2) <= int(ties.max())
    ec = fk.equal_count_band_masks(h, w, 2, basis=basis)
    assert torch.equal(low, ec[0]) and torch.equal(high, ec[1])
    if basis == "dft":
        T.check_dft_symmetric(low)


# ----------------------------------------------------------------------------- band energy of perturbations

def test_perturbation_spectrum_shares():
    from freqkit.attacks import band_projector

    hh = 16
    g = torch.Generator().manual_seed(0)
    d = torch.randn(4, 3, hh, hh, generator=g)
    for basis in ("dct", "dft"):
        masks = fk.band_masks(hh, hh, 4, "radial", basis)
        p = fk.band_energy(d, basis=basis, masks=masks)
        assert p.shape == (4, 4) and torch.allclose(p.sum(1), torch.ones(4), atol=1e-5)
        low = band_projector(masks[0], basis)(d)
        q = fk.band_energy(low, basis=basis, masks=masks)
        assert float(q[:, 1:].max()) < 1e-6
        raw = fk.band_energy(d, basis=basis, masks=masks, normalize=False)
        assert torch.allclose(raw.sum(1), d.pow(2).sum((1, 2, 3)), rtol=1e-4)
    assert fk.band_energy(d).shape == (4, hh // 2)
    assert torch.equal(fk.band_energy(torch.zeros(1, 1, hh, hh)), torch.zeros(1, hh // 2))


@pytest.mark.parametrize("call, name", [
    (lambda: fk.band_energy(torch.rand(2, 3, 16, 16), masks=torch.ones(2, 4, 4, dtype=torch.bool)), "masks"),
    (lambda: fk.band_energy(torch.rand(3, 16, 16)), "delta"),
    (lambda: fk.band_energy(torch.rand(2, 3, 16, 16), n_bands=0), "n_bands"),
])
def test_bad_input_errors_name_the_argument_band_energy(call, name):
    with pytest.raises((ValueError, TypeError)) as e:
        call()
    assert name in str(e.value), str(e.value)


# ----------------------------------------------------------------------------- DC-free bands and low-frequency blocks

@pytest.mark.parametrize("h, w, basis", [(4, 4, "dct"), (5, 4, "dct"), (4, 4, "dft"), (5, 6, "dft"), (32, 32, "dft")])
def test_dc_mask_is_the_one_zero_frequency(h, w, basis):
    m = T.dc_mask(h, w, basis)
    assert m.shape == (h, w) and m.dtype == torch.bool and int(m.sum()) == 1
    where = tuple(m.nonzero()[0].tolist())
    assert where == ((0, 0) if basis == "dct" else (h // 2, w // 2))
    x = _rand((2, 3, h, w), torch.float64, 5)
    # the DC coefficient carries the mean: sqrt(H W) * mean
    c = fk.to_basis(x, basis)[..., where[0], where[1]]
    torch.testing.assert_close(c, math.sqrt(h * w) * x.mean((-2, -1)))
    if basis == "dft":
        T.check_dft_symmetric(m)


@pytest.mark.parametrize("h, w, k, basis", [(32, 32, 8, "dct"), (32, 32, 8, "dft"), (32, 32, 12, "dct"),
                                             (28, 28, 8, "dct"), (16, 12, 3, "dft"), (8, 8, 5, "dct")])
def test_dc_free_equal_count_bands_partition_everything_but_dc(h, w, k, basis):
    m = fk.equal_count_band_masks(h, w, k, basis=basis, exclude_dc=True)
    dc = T.dc_mask(h, w, basis)
    assert m.shape == (k, h, w) and m.dtype == torch.bool
    assert not bool(m[:, dc].any())                                           # DC in no band
    cover = m.sum(0)
    assert bool((cover[~dc] == 1).all()) and int(cover[dc]) == 0             # disjoint, union = all but DC
    counts = m.flatten(1).sum(1).double()
    assert int(counts.sum()) == h * w - 1
    # equal counts up to the coefficients that share one radius (ties are never split)
    r = T.frequency_radius(h, w, basis)
    _, ties = torch.unique(r[~dc], return_counts=True)
    assert float((counts - (h * w - 1) / k).abs().max()) <= int(ties.max())
    if (h, w, k, basis) == (32, 32, 8, "dct"):
        assert float(counts.max() - counts.min()) <= 4                        # 126 .. 130 of 127.9
    for j in range(k - 1):                                                    # ordered outwards
        assert float(r[m[j]].max()) < float(r[m[j + 1]].min())
    if basis == "dft":
        T.check_dft_symmetric(m)
    # the lowest band starts at the lowest oscillating frequency
    assert math.isclose(float(r[m[0]].min()), float(r[~dc].min()))


def test_exclude_dc_leaves_the_default_bands_alone_and_refuses_non_bools():
    assert torch.equal(fk.equal_count_band_masks(16, 16, 4), fk.equal_count_band_masks(16, 16, 4, exclude_dc=False))
    assert bool(fk.equal_count_band_masks(16, 16, 4)[0, 0, 0])
    with pytest.raises(ValueError, match="exclude_dc"):
        fk.equal_count_band_masks(16, 16, 4, exclude_dc=1)
    with pytest.raises(ValueError, match="non-zero radii"):
        fk.equal_count_band_masks(2, 2, 3, exclude_dc=True)                  # radii 0.5, 0.5, 0.71: 2 distinct
    lh = fk.low_high_masks(16, 16, "dft", exclude_dc=True)
    dc = T.dc_mask(16, 16, "dft")
    assert not bool((lh["low"] & lh["high"]).any()) and torch.equal(lh["low"] | lh["high"], ~dc)
    assert abs(int(lh["low"].sum()) - int(lh["high"].sum())) <= 8


@pytest.mark.parametrize("h, w", [(32, 32), (28, 28), (16, 24)])
def test_low_block_masks_are_the_top_left_k_by_k_dct_coefficients(h, w):
    ks = [k for k in (1, 4, 8, 16) if k <= min(h, w)]
    b = T.low_block_masks(h, w, ks)
    assert list(b) == [f"{k}x{k}" for k in ks]
    u, v = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
    for k in ks:
        m = b[f"{k}x{k}"]
        assert m.shape == (h, w) and m.dtype == torch.bool and int(m.sum()) == k * k
        assert torch.equal(m, (u < k) & (v < k))
        # in frequency: fu < k / H and fv < k / W on the DCT grid
        fu, fv = T.frequency_coords(h, w, "dct")
        assert torch.equal(m, (fu < k / h - 1e-12) & (fv < k / w - 1e-12))
    for a, c in itertools.pairwise(ks):                                       # nested
        assert bool((b[f"{a}x{a}"] <= b[f"{c}x{c}"]).all())
    nodc = T.low_block_masks(h, w, [4, 8], exclude_dc=True)
    for k in (4, 8):
        m = nodc[f"{k}x{k}"]
        assert int(m.sum()) == k * k - 1 and not bool(m[0, 0])
        assert torch.equal(m | T.dc_mask(h, w), b[f"{k}x{k}"])
    assert list(T.low_block_masks(h, w, 4)) == ["4x4"]                      # one int is one block


@pytest.mark.parametrize("kw, match", [
    ({"ks": []}, "at least one"),
    ({"ks": [0]}, "ks must hold integers"),
    ({"ks": [33]}, "ks must hold integers"),
    ({"ks": [4.0]}, "ks must hold integers"),
    ({"ks": [True]}, "ks must hold integers"),
    ({"ks": [4, 4]}, "repeat"),
    ({"ks": [1], "exclude_dc": True}, "empty block"),
    ({"ks": "abc"}, "ks must hold integers"),
    ({"ks": None}, "ks must be an integer or a sequence"),
    ({"ks": [4], "exclude_dc": "yes"}, "exclude_dc"),
])
def test_low_block_masks_refuse_bad_input_by_name(kw, match):
    with pytest.raises(ValueError, match=match):
        T.low_block_masks(32, 32, **kw)
    with pytest.raises(ValueError, match="h must be"):
        T.low_block_masks(0, 32, [4])
