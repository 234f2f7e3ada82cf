"""The exact projection onto band ∩ ball ∩ box, shared by band PGD and band APGD.

Private: used by :mod:`freqkit.attacks` (:func:`freqkit.pgd`) and :mod:`freqkit.apgd`
(:func:`freqkit.apgd.apgd`, :func:`freqkit.apgd.band_autoattack`); the public face of the
band projection is :func:`freqkit.band_projector`.  Why a projection onto the
intersection rather than "filter, then clip", and why dual Dykstra with FISTA momentum:
see the docstring of :mod:`freqkit.attacks`.

A band-limited perturbation ``delta`` of images ``x`` must satisfy ``delta`` in the band
subspace ``S`` (:class:`BandProjector`), ``||delta|| <= eps`` and ``0 <= x + delta <= 1``.
:func:`project` projects onto the intersection (warm-startable), :func:`finalise` makes
the returned images exactly feasible and checks the band (:func:`out_of_band_share`),
with the fallbacks documented there.
"""
from __future__ import annotations

import math

import torch

from ._validate import check_choice, check_mask, check_tensor
from .transforms import check_dft_symmetric, dct_matrix

__all__ = [
    "NORMS", "SHARE_TOL", "SHARE_MAX", "REFINE_ITERS", "check_norm", "check_eps", "check_band", "BandProjector",
    "flat_norm", "l2_ball", "project", "out_of_band_share", "shrink_into_box", "finalise", "box_bounds", "REFINE_ROUNDS",
]

#: The norms of the threat models.
NORMS = ("linf", "l2")
#: Out-of-band energy share above which an image's projection is refined (the target is 1e-3).
SHARE_TOL = 1e-4
#: The guarantee: no returned perturbation has a larger out-of-band energy share.
SHARE_MAX = 1e-3
#: Iterations of the final re-projection of images whose share is above SHARE_TOL.
REFINE_ITERS = 300
#: ... in rounds (FISTA restarted between them, the dual carried over); images leave once fine.
REFINE_ROUNDS = (25, 50, 75, 150)


# ----------------------------------------------------------------------------- input checks

def check_norm(norm) -> str:
    """``norm`` lower-cased, one of :data:`NORMS` (ValueError naming ``norm`` otherwise)."""
    n = norm.lower() if isinstance(norm, str) else norm
    return check_choice(n, "norm", NORMS)


def check_eps(eps, n: int, like: torch.Tensor, name: str = "eps") -> torch.Tensor:
    """eps as a float or an ``(N,)`` tensor of per-image radii -> ``(N, 1, 1, 1)`` tensor."""
    if isinstance(eps, torch.Tensor):
        check_tensor(eps, name, floating=False)
        if eps.dim() == 0:
            eps = eps.reshape(1).expand(n)
        if eps.dim() != 1 or eps.shape[0] != n:
            raise ValueError(f"{name} must be a number or a tensor of shape ({n},), got shape {tuple(eps.shape)}")
        e = eps.to(device=like.device, dtype=like.dtype)
    else:
        if isinstance(eps, bool) or not isinstance(eps, (int, float)) or not math.isfinite(eps):
            raise ValueError(f"{name} must be a finite number >= 0, got {eps!r}")
        e = torch.full((n,), float(eps), device=like.device, dtype=like.dtype)
    if not bool(torch.isfinite(e).all()) or bool((e < 0).any()):
        raise ValueError(f"{name} must be finite and >= 0, got min {float(e.min()):.4g}")
    return e.view(n, 1, 1, 1)


def check_band(band, h: int, w: int, basis: str, name: str = "band") -> torch.Tensor:
    """``band`` as an ``(H, W)`` bool mask (checked by ``check_mask``; DFT masks must be symmetric)."""
    m = check_mask(band, name, h, w)
    if basis != "dct":
        check_dft_symmetric(m, name)
    return m



def _real_fourier_matrix(n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Orthonormal real Fourier basis of R^n (float64, rows) and each row's frequency ``|f|``.

    Rows: the constant ``1 / sqrt(n)``; for ``f = 1 .. (n - 1) // 2`` the pair
    ``sqrt(2 / n) cos(2 pi f i / n)``, ``sqrt(2 / n) sin(2 pi f i / n)``; for even ``n`` the
    Nyquist row ``(-1)^i / sqrt(n)``.  Rows of frequency ``f`` span the real parts of the DFT
    frequencies ``+f`` and ``-f``.
    """
    i = torch.arange(n, dtype=torch.float64)
    rows, freqs = [torch.full((n,), 1.0 / math.sqrt(n), dtype=torch.float64)], [0]
    for f in range(1, (n - 1) // 2 + 1):
        ang = 2 * math.pi * f * i / n
        rows += [math.sqrt(2.0 / n) * torch.cos(ang), math.sqrt(2.0 / n) * torch.sin(ang)]
        freqs += [f, f]
    if n % 2 == 0 and n > 1:
        rows.append(torch.cos(math.pi * i) / math.sqrt(n))
        freqs.append(n // 2)
    return torch.stack(rows), torch.tensor(freqs)


def _axis_symmetric(mask: torch.Tensor) -> bool:
    """Whether a centred-grid mask is symmetric under ``u -> -u`` and under ``v -> -v`` separately."""
    h, w = mask.shape
    iu = ((-(torch.arange(h) - h // 2)) % h + h // 2) % h
    iv = ((-(torch.arange(w) - w // 2)) % w + w // 2) % w
    m = mask.cpu()
    return bool((m[iu] == m).all()) and bool((m[:, iv] == m).all())


class BandProjector:
    """Orthogonal projection onto the band subspace ``S`` of perturbations ``(..., H, W)``.

    Separable form ``P v = R_h^T (M * (R_h v R_w^T)) R_w`` with an orthonormal real basis
    ``R`` per axis, restricted to the rows and columns of ``M`` that keep any frequency
    (a low band of a 32x32 DCT keeps 12 of 32: about a quarter of the multiply-adds):

    * DCT: ``R`` the DCT matrices of :func:`freqkit.dct_matrix`;
    * DFT with a mask symmetric under each axis flip separately (radial and ring masks):
      ``R`` the real Fourier basis (1, cos, sin, Nyquist) of each axis, the mask read at
      ``(|u|, |v|)``: the span of the kept DFT frequencies is spanned by the products of
      cosines and sines of those frequencies, so this is the same projection;
    * any other DFT mask symmetric under ``f -> -f``: ``irfft2(rfft2(v) * M)``, the exact
      real projection onto the span of the kept DFT frequencies (the same subspace as the
      DHT coefficients under the mask).
    """

    def __init__(self, mask: torch.Tensor, basis: str, dtype, device):
        h, w = mask.shape
        self.h, self.w, self.basis = h, w, basis
        self.full = bool(mask.all())
        self.n_coef = int(mask.sum())
        self.fft = False
        mask = mask.to(device)
        if basis == "dct":
            bh, bw = dct_matrix(h, dtype, device), dct_matrix(w, dtype, device)
            m = mask
        elif _axis_symmetric(mask):
            (rh, fh), (rw, fw) = _real_fourier_matrix(h), _real_fourier_matrix(w)
            bh, bw = rh.to(device=device, dtype=dtype), rw.to(device=device, dtype=dtype)
            m = mask[((fh + h // 2) % h).to(device)][:, ((fw + w // 2) % w).to(device)]
        else:
            self.fft = True
            unshifted = torch.fft.ifftshift(mask, dim=(-2, -1))
            self.m = unshifted[:, : w // 2 + 1].to(dtype)
            return
        rows = m.any(1).nonzero().flatten()
        cols = m.any(0).nonzero().flatten()
        self.rh = bh[rows].contiguous()
        self.rht = self.rh.transpose(0, 1).contiguous()
        self.rw = bw[cols].contiguous()
        self.rwt = self.rw.transpose(0, 1).contiguous()
        self.m = m[rows][:, cols].to(dtype).contiguous()

    def __call__(self, v: torch.Tensor) -> torch.Tensor:
        """``P v`` (differentiable; the input itself for the full band)."""
        if self.full:
            return v
        if self.fft:
            return torch.fft.irfft2(torch.fft.rfft2(v) * self.m, s=(self.h, self.w))
        return self.rht @ ((self.rh @ v @ self.rwt) * self.m) @ self.rw

    def into(self, v: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
        """``P v`` written into ``out`` (not ``v``), through cached work buffers: no gradient.

        For the loops of :func:`project`: on a CPU, allocating a fresh image-sized tensor for
        every intermediate costs more than the arithmetic (page faults of large blocks).
        """
        if self.full:
            return out.copy_(v)
        v = v.contiguous()
        if self.fft:
            return torch.fft.irfft2(torch.fft.rfft2(v) * self.m, s=(self.h, self.w), out=out)
        key = (tuple(v.shape), v.dtype, v.device)
        ws = self._work.get(key) if hasattr(self, "_work") else None
        if ws is None:
            lead = tuple(v.shape[:-2])
            kh, kw = self.rh.shape[0], self.rw.shape[0]
            ws = (v.new_empty(lead + (kh, self.w)), v.new_empty(lead + (kh, kw)), v.new_empty(lead + (self.h, kw)))
            self._work = {key: ws}                  # one shape at a time: batches shrink under early stop
        a, b, c = ws
        torch.matmul(self.rh, v, out=a)
        torch.matmul(a, self.rwt, out=b)
        b.mul_(self.m)
        torch.matmul(self.rht, b, out=c)
        return torch.matmul(c, self.rw, out=out)


def box_bounds(lo_box, hi_box, eps, norm: str):
    """The box the perturbation must lie in: ``[0, 1] - x``, intersected with the Linf ball for Linf.

    Linf ball and ``[0, 1]`` box are both boxes, so one clamp projects onto their
    intersection; for L2 the ball is handled by the set ``A`` of :func:`project`.
    """
    if norm == "l2":
        return lo_box, hi_box
    return torch.maximum(lo_box, -eps), torch.minimum(hi_box, eps)


def flat_norm(v: torch.Tensor, norm: str) -> torch.Tensor:
    """Per-image L2 or Linf norm of ``v`` ``(N, ...)`` -> ``(N,)``."""
    f = v.reshape(v.shape[0], -1)
    return f.norm(dim=1) if norm == "l2" else f.abs().amax(dim=1)


def l2_ball(v: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
    """Project each image's ``v`` onto the L2 ball of radius ``eps`` ``(n, 1, 1, 1)``."""
    nrm = v.reshape(v.shape[0], -1).norm(dim=1).view(-1, 1, 1, 1)
    return v * torch.clamp(eps / nrm.clamp_min(1e-30), max=1.0)


def project(z, lo, hi, proj, eps_l2, iters: int, lam=None):
    """Project ``z`` onto ``A ∩ box[lo, hi]``, then make box and ball hold exactly.

    ``A`` is the band ``S`` (``eps_l2 is None``; Linf, whose ball is folded into the box) or
    ``S ∩ L2-ball`` (``eps_l2`` given), whose exact projection is "filter, then rescale".
    The projection onto the intersection is Dykstra's alternating projection (Dykstra 1983;
    Boyle & Dykstra 1986) in its dual form: for two sets, Dykstra's method is proximal
    gradient ascent on the dual of ``min ||d - z||^2, d in A, d in box`` (Gaffke & Mathar
    1989), whose dual variable ``lam`` is Dykstra's box increment, and we accelerate it with
    Nesterov/FISTA momentum: the fast dual proximal gradient method of Beck & Teboulle 2014.
    Each iteration costs one projection onto ``A`` and one clamp, like a Dykstra iteration,
    but the primal error falls as O(1/k) instead of O(1/sqrt(k)).

    ``lam`` may be warm-started with the previous call's: the dual method converges from any
    dual point, and between two PGD steps the box is the same and its active pixels barely
    move, so the iterations add up over the steps instead of starting from scratch.

    Returns ``(delta, d, lam)``: ``d = P_A(z - lam)`` is exactly in ``A`` (band, and ball);
    ``delta = clamp(d, lo, hi)`` satisfies box and ball exactly (clipping into a box that
    contains 0 never increases any ``|d_i|``) and is in the band up to the clip's residue.
    """
    def p_a(v):
        v = proj(v)
        return v if eps_l2 is None else l2_ball(v, eps_l2)

    lam = torch.zeros_like(z) if lam is None else lam
    if iters > 0:
        # Work buffers reused across iterations (fresh image-sized tensors per operation cost
        # more than the arithmetic on a CPU).  ``lam``, the caller's, is never written to.
        with torch.no_grad():
            def buf():                                  # contiguous, whatever z's memory format
                return torch.empty(z.shape, dtype=z.dtype, device=z.device)
            diff, clip, vb, spare = buf(), buf(), buf(), [buf(), buf()]
            v, t = lam, 1.0
            for k in range(iters):
                torch.sub(z, v, out=diff)
                w = proj.into(diff, spare[k % 2])       # P_S(z - v), into a buffer that is neither lam nor v
                if eps_l2 is not None:
                    nrm = w.reshape(w.shape[0], -1).norm(dim=1).view(-1, 1, 1, 1)
                    w.mul_(torch.clamp(eps_l2 / nrm.clamp_min(1e-30), max=1.0))
                w.add_(v)                               # w = v + P_A(z - v)
                torch.clamp(w, lo, hi, out=clip)
                lam_new = w.sub_(clip)                  # prox of the box's support function
                t_new = (1.0 + math.sqrt(1.0 + 4.0 * t * t)) / 2.0
                # FISTA extrapolation lam_new + ((t - 1) / t_new) (lam_new - lam), as one lerp
                v = torch.lerp(lam, lam_new, 1.0 + (t - 1.0) / t_new, out=vb)
                lam, t = lam_new, t_new
    d = p_a(z - lam)
    return torch.clamp(d, lo, hi), d, lam


def out_of_band_share(delta: torch.Tensor, proj) -> torch.Tensor:
    """``||delta - P_S delta||^2 / ||delta||^2`` per image (0 for a zero perturbation)."""
    n = delta.shape[0]
    e_all = delta.reshape(n, -1).pow(2).sum(1)
    e_out = (delta - proj(delta)).reshape(n, -1).pow(2).sum(1)
    return torch.where(e_all > 0, e_out / e_all.clamp_min(1e-38), torch.zeros_like(e_all))


def shrink_into_box(v, lo, hi):
    """Largest ``t in [0, 1]`` per image with ``lo <= t v <= hi`` (``lo <= 0 <= hi``), and ``t v``."""
    n = v.shape[0]
    big = torch.full_like(v, float("inf"))
    up = torch.where(v > 0, hi / v.clamp_min(1e-38), big)
    dn = torch.where(v < 0, lo / v.clamp_max(-1e-38), big)
    t = torch.minimum(up, dn).reshape(n, -1).amin(1).clamp(0.0, 1.0)
    # One float rounding of hi / v may overshoot by an ulp; the caller's final clamp of the
    # image to [0, 1] and the Linf tolerance absorb it.
    return t, v * t.view(n, 1, 1, 1)



def finalise(x, x_adv, proj, lo_box, hi_box, eps, norm, lam):
    """Exact feasibility and the band check of the returned images (band attacks only).

    Returns ``(x_adv, out_of_band_share, route)`` with ``route`` per image: 0 the PGD
    iterate passed; 1 re-projected with many more iterations; 2 its in-band part shrunk
    into the box; 3 zeroed, where float rounding of ``x + delta`` alone breaks the band
    (perturbations near the float resolution).
    """
    n = x.shape[0]
    route = torch.zeros(n, dtype=torch.long, device=x.device)
    if proj is None:
        return x_adv, torch.zeros(n, dtype=x.dtype, device=x.device), route
    l2 = norm == "l2"
    lo, hi = box_bounds(lo_box, hi_box, eps, norm)
    delta = x_adv - x
    bad = out_of_band_share(delta, proj) > SHARE_TOL
    if bool(bad.any()):
        b = bad.nonzero().flatten()
        # Re-project the offending images with many more (warm-started) iterations: projecting
        # an almost feasible point moves it little, so the attack's progress is kept.  In
        # rounds of growing length (FISTA restarted, the dual carried over), so that images
        # that need few more iterations leave early: REFINE_ITERS in all for the hardest.
        z, zl, zh = delta[b], lo[b], hi[b]
        ze = eps[b] if l2 else None
        zlam = torch.zeros_like(z) if lam is None else lam[b]
        d2, y2 = z.clone(), z.clone()
        todo = torch.arange(b.numel(), device=x.device)
        for iters in REFINE_ROUNDS:
            dd, yy, zlam_t = project(z[todo], zl[todo], zh[todo], proj, None if ze is None else ze[todo], iters,
                                     zlam[todo])
            d2[todo], y2[todo], zlam[todo] = dd, yy, zlam_t
            ok = out_of_band_share(dd, proj) <= SHARE_TOL
            todo = todo[~ok]
            if todo.numel() == 0:
                break
        still = torch.zeros(b.numel(), dtype=torch.bool, device=x.device)
        still[todo] = True
        if bool(still.any()):
            # The intersection is then nearly {0} (a band that cannot move the image without
            # leaving [0, 1]): shrink the in-band, in-ball iterate towards 0 until the box
            # holds, which is exactly in band and feasible because 0 is.
            _, d3 = shrink_into_box(y2[still], zl[still], zh[still])
            d2[still] = d3
        delta = delta.index_copy(0, b, d2)
        route[b] = torch.where(still, 2, 1)
    x_adv = torch.clamp(x + delta, 0.0, 1.0)
    share = out_of_band_share(x_adv - x, proj)
    tiny = share > SHARE_MAX
    if bool(tiny.any()):
        x_adv[tiny] = x[tiny]
        share[tiny] = 0.0
        route[tiny] = 3
    return x_adv, share, route

