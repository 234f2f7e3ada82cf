"""Robustness analyses built on :mod:`freqkit.attacks`: the pieces chapters 5-6 need.

* :func:`equal_count_band_masks`: radial bands holding (nearly) the same number of
  coefficients, so that comparing bands compares frequencies, not subspace dimensions.
* :func:`band_comparison`: :func:`freqkit.compare_bands` plus, per band, the share of
  images whose failure is due to the ``[0, 1]`` box rather than to the model
  (:func:`box_limited`).
* :func:`h3_verdict`: the verdict on H3 (low- vs high-frequency efficiency at equal L2
  distortion), computed from :func:`band_comparison` records by a stated rule.
* :func:`band_examples`: perturbations of every band at one equal distortion, for figures.
* :func:`perturbation_attribution`: which frequencies of ``x_adv - x`` drive the change of
  the output: frequency Integrated Gradients from ``x`` to ``x_adv``, per band, next to the
  perturbation's energy per band.
* :func:`heatmap_radial_profile`: a Fourier heat map averaged over rings of equal radius.
* :func:`heatmap_report`: one model's Fourier heat maps, their ring profiles, its clean
  error and the timing, as chapter 6 (and 7) show them.

Nothing here draws; :mod:`freqkit.viz` does.
"""
from __future__ import annotations

import math
from typing import Mapping

import numpy as np
import torch
import torch.nn as nn

from ._validate import check_choice, check_images, check_mask, check_positive_int, check_tensor
from .attacks import _check_labels, compare_bands, perturbation_spectrum, pgd
from .results import verdict
from .transforms import band_masks, check_dft_symmetric, frequency_radius, radial_profile

__all__ = [
    "equal_count_band_masks", "box_limited", "band_comparison", "paired_log_ratio", "h3_verdict", "band_examples",
    "perturbation_attribution", "heatmap_radial_profile", "n_fourier_directions", "heatmap_report",
    "band_table", "h3_summary", "example_spectra", "smooth_summary",
]


# ----------------------------------------------------------------------------- bands

def equal_count_band_masks(h: int, w: int, n_bands: int, basis: str = "dct", kind: str = "radial",
                           device=None) -> torch.Tensor:
    """``n_bands`` radial (or ring) bands with as equal numbers of coefficients as the grid allows.

    Equal-width radial bands (:func:`freqkit.band_masks`) hold very different numbers of
    coefficients (on a 32 x 32 DCT grid with 4 bands: 112, 312, 468 and 132), and a
    perturbation confined to a smaller subspace needs more distortion for that reason
    alone.  Here the edges sit at the quantiles of the radius, moved to the nearest gap
    between distinct radii (coefficients at one radius are never split), so band k holds
    the coefficients between the k/K and (k+1)/K quantiles of the radius.  Returns a
    ``(K, H, W)`` bool partition, like :func:`freqkit.band_masks` (DFT masks are symmetric:
    the radius is).  Raises ``ValueError`` if the grid has too few distinct radii.
    """
    check_positive_int(h, "h")
    check_positive_int(w, "w")
    check_positive_int(n_bands, "n_bands")
    check_choice(basis, "basis", ("dct", "dft", "dht"))
    r = frequency_radius(h, w, basis, kind, device).flatten()
    vals, counts = torch.unique(r, sorted=True, return_counts=True)
    if vals.numel() < n_bands:
        raise ValueError(f"n_bands={n_bands} exceeds the {vals.numel()} distinct radii of a {h}x{w} grid")
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
    edges = [float(vals[0])] + [float(vals[j] + vals[j + 1]) / 2 for j in cuts] + [float(vals[-1])]
    return band_masks(h, w, kind=kind, basis=basis, edges=edges, device=device)


def _named_masks(masks, h: int, w: int, basis: str) -> dict:
    if isinstance(masks, Mapping):
        out = {}
        for k, m in masks.items():
            if m is not None:
                m = check_mask(m, f"masks[{k!r}]", h, w)
                if basis != "dct":
                    check_dft_symmetric(m, f"masks[{k!r}]")
            out[str(k)] = m
        return out
    ms = check_mask(masks, "masks", h, w, allow_stack=True)
    ms = ms.unsqueeze(0) if ms.dim() == 2 else ms
    if basis != "dct":
        check_dft_symmetric(ms, "masks")
    return {f"band{k}": ms[k] for k in range(ms.shape[0])}


# ----------------------------------------------------------------------------- box-limited failures

def box_limited(model: nn.Module, x: torch.Tensor, y: torch.Tensor, band: torch.Tensor | None, eps: float,
                norm: str = "l2", basis: str = "dct", steps: int = 20, step_factor: float = 2.5, seed: int = 0,
                threshold: float = 0.5) -> dict:
    """Did the ``[0, 1]`` box, rather than the model, stop the attack?

    Runs the attack of :func:`freqkit.minimal_distortion`'s first try (band-limited
    :func:`freqkit.pgd` at radius ``eps``, no random start, step ``step_factor * eps /
    steps``) and measures how much of its budget each image's final perturbation uses,
    ``||delta|| / eps`` in ``norm``.  A failed attack normally ends on the sphere (a used
    share near 1: the model resisted the whole budget).  A band that can barely move the
    image inside ``[0, 1]`` (a high band on an image with large saturated regions, such as
    MNIST's black background and white strokes) ends far inside: the projection onto
    band, ball and box is nearly 0.  Such an image is *box-limited*: failed and used share
    ``< threshold``.  (A model whose gradient vanished inside the band would also leave
    the budget unused; trained CNNs have no such bands, and the used share is returned so
    that it can be checked.)

    Returns a dict of ``(N,)`` tensors: ``success`` (bool), ``used`` (float, the used
    share) and ``limited`` (bool).
    """
    check_images(x, "x", unit_range=True)
    if not (isinstance(threshold, (int, float)) and 0 < threshold <= 1):
        raise ValueError(f"threshold must be in (0, 1], got {threshold!r}")
    if isinstance(eps, bool) or not isinstance(eps, (int, float)) or not math.isfinite(eps) or eps <= 0:
        raise ValueError(f"eps must be a finite number > 0, got {eps!r}")
    check_positive_int(steps, "steps")
    _, info = pgd(model, x, y, eps, norm=norm, steps=steps, step_size=step_factor * eps / steps, band=band,
                  basis=basis, random_start=False, seed=seed, early_stop=True, return_info=True)
    used = info[norm.lower()] / eps
    return {"success": info["success"], "used": used, "limited": (~info["success"]) & (used < threshold)}


def band_comparison(model: nn.Module, x: torch.Tensor, y: torch.Tensor, masks, norm: str = "l2",
                    eps_list=None, basis: str = "dct", steps: int = 20, search_steps: int = 10,
                    eps_max: float | None = None, n_boot: int = 1000, ci: float = 0.95,
                    include_full: bool = True, seed: int = 0, box_threshold: float = 0.5,
                    progress: bool = False) -> dict:
    """:func:`freqkit.compare_bands`, and per band how many failures the box explains.

    Each record of :func:`freqkit.compare_bands` (success rate against ``eps_list``,
    median minimal distortion with its bootstrap CI, ...) gains ``box_limited`` (``(N,)``
    list of bools: the image resisted up to ``eps_max`` *and* :func:`box_limited` says the
    box, not the model, stopped the attack), ``box_limited_share`` (their share of the N
    images) and ``budget_used`` (``(N,)`` list: used share of ``eps_max`` for images with
    infinite minimal distortion, ``nan`` for the others).  ``masks`` is a ``(K, H, W)``
    stack (bands named ``band0..``) or a ``{name: mask}`` dict.
    """
    h, w = x.shape[-2:]
    recs = compare_bands(model, x, y, masks, norm=norm, eps_list=eps_list, basis=basis, steps=steps,
                         search_steps=search_steps, eps_max=eps_max, n_boot=n_boot, ci=ci,
                         include_full=include_full, seed=seed, progress=progress)
    named = _named_masks(masks, h, w, basis)
    if include_full:
        named["full"] = None
    n = x.shape[0]
    for name, rec in recs.items():
        d = torch.tensor(rec["distortions"], dtype=torch.float64)
        failed = ~torch.isfinite(d)
        lim = torch.zeros(n, dtype=torch.bool)
        used = torch.full((n,), float("nan"), dtype=torch.float64)
        if bool(failed.any()):
            idx = failed.nonzero().flatten().to(x.device)
            b = box_limited(model, x[idx], y[idx], named[name], rec["eps_max"], norm=norm, basis=basis,
                            steps=steps, seed=seed, threshold=box_threshold)
            lim[idx.cpu()] = b["limited"].cpu()
            used[idx.cpu()] = b["used"].detach().cpu().double()
        rec["box_limited"] = [bool(v) for v in lim]
        rec["box_limited_share"] = float(lim.double().mean())
        rec["budget_used"] = [float(v) for v in used]
        rec["box_threshold"] = float(box_threshold)
    return recs


# ----------------------------------------------------------------------------- H3

def band_table(records: Mapping, eps_list) -> str:
    """:func:`band_comparison` records as a fixed-width text table, one row per band: number
    of coefficients, success rate at each eps of ``eps_list``, median minimal distortion with
    its CI, success at ``eps_max``, box-limited share, largest out-of-band share."""
    if not isinstance(records, Mapping) or not records:
        raise ValueError("records must be a non-empty {band: record} dict from band_comparison")
    eps_list = list(eps_list)
    for band, r in records.items():
        if len(r["success_rate"]) != len(eps_list):
            raise ValueError(f"records[{band!r}] has {len(r['success_rate'])} success rates but eps_list has "
                             f"{len(eps_list)} values: pass the eps_list the records were made with")
    lines = [f"  {'band':>6} {'coef':>5} | success at eps = {', '.join(f'{e:.3g}' for e in eps_list)}"
             " | median min. distortion [95% CI] | success at eps_max | box-limited | out-of-band max"]
    for band, r in records.items():
        lines.append(f"  {band:>6} {r['n_coefficients']:>5} | {' '.join(f'{s:4.0%}' for s in r['success_rate'])} | "
                     f"{r['median_distortion']:.3g} [{r['ci_low']:.3g}, {r['ci_high']:.3g}] | "
                     f"{r['success_at_eps_max']:.0%} | {r['box_limited_share']:.0%} | {r['out_of_band_max']:.1e}")
    return "\n".join(lines)


def _band_order(records: Mapping) -> list:
    names = [k for k in records if k != "full"]
    if len(names) < 2:
        raise ValueError(f"records must hold at least two bands besides 'full', got {list(records)}")
    return names


def paired_log_ratio(d_low, d_high, n_boot: int = 2000, ci: float = 0.95, seed: int = 0) -> dict:
    """Per image, ``log(d_low / d_high)`` of two minimal distortions, its median and a bootstrap CI.

    The same images are attacked in both bands, so the comparison is paired: an image that is
    hard for every band does not widen the interval.  ``inf`` (not found up to ``eps_max``)
    is larger than any distortion, so one side ``inf`` gives ``-inf`` or ``+inf``; both
    ``inf`` (or both 0) is a tie, 0.  The median is the mean of the two middle order
    statistics (a ``-inf``/``+inf`` pair counts as 0) and the CI is the percentile bootstrap
    over images (Efron 1979) with ``n_boot`` resamples.  Returns ``{"log_ratio" (N,),
    "median", "ci_low", "ci_high", "ratio" (exp of the median), "n"}``.
    """
    dl = np.asarray(d_low, dtype=float)
    dh = np.asarray(d_high, dtype=float)
    if dl.ndim != 1 or dl.shape != dh.shape or dl.size == 0:
        raise ValueError(f"d_low and d_high must be non-empty 1-D sequences of equal length, got shapes "
                         f"{dl.shape} and {dh.shape}")
    if np.isnan(dl).any() or np.isnan(dh).any() or (dl < 0).any() or (dh < 0).any():
        raise ValueError("distortions must be >= 0 (inf allowed), without NaN")
    if not 0 < ci < 1:
        raise ValueError(f"ci must be in (0, 1), got {ci!r}")
    check_positive_int(n_boot, "n_boot")
    with np.errstate(divide="ignore", invalid="ignore"):
        r = np.log(dl) - np.log(dh)
    r[np.isnan(r)] = 0.0

    def med(v, axis=-1):
        v = np.sort(v, axis=axis)
        k = v.shape[axis]
        a, b = np.take(v, (k - 1) // 2, axis=axis), np.take(v, k // 2, axis=axis)
        with np.errstate(invalid="ignore"):
            m = (a + b) / 2
        return np.where(np.isnan(m), 0.0, m)

    rng = np.random.default_rng(seed)
    boots = np.sort(med(r[rng.integers(0, r.size, size=(n_boot, r.size))], axis=1))
    lo = float(boots[int(math.floor((1 - ci) / 2 * (n_boot - 1)))])
    hi = float(boots[int(math.ceil((1 + ci) / 2 * (n_boot - 1)))])
    m = float(med(r))
    return {"log_ratio": r.tolist(), "median": m, "ci_low": lo, "ci_high": hi, "ci": ci,
            "ratio": float(np.exp(m)), "n": int(r.size)}


def h3_verdict(records: Mapping, dataset: str = "", low: str | None = None, high: str | None = None,
               max_box_share: float = 0.1, n_boot: int = 2000, ci: float = 0.95, seed: int = 0) -> dict:
    """H3: at equal L2 distortion, low-frequency perturbations are more efficient than high ones.

    ``records``: :func:`band_comparison` (or :func:`freqkit.compare_bands`) output for
    bands ordered from low to high frequency; ``low`` / ``high`` default to the first and
    last band (``"full"`` excluded).

    Rule (paired, per image): ``r_i = log(d_low_i / d_high_i)``, the log-ratio of the minimal
    distortions of image i in the two bands (:func:`paired_log_ratio`).  Supported if the
    ``ci`` bootstrap CI of the median of ``r`` lies entirely below 0 (for the typical image
    the low band needs less distortion); rejected if it lies entirely above 0; inconclusive
    if it contains 0, or if more than ``max_box_share`` of the images are box-limited in
    either band (their infinite distortion then measures the ``[0, 1]`` box, not the model).
    The records' ``norm`` should be ``"l2"``: only L2 distortion is the same in pixel and
    frequency space.  The evidence also holds each band's own median and CI.
    """
    names = _band_order(records)
    low = names[0] if low is None else low
    high = names[-1] if high is None else high
    for k in (low, high):
        if k not in records:
            raise ValueError(f"band {k!r} is not in records (have {list(records)})")
    if not 0 <= max_box_share <= 1:
        raise ValueError(f"max_box_share must be in [0, 1], got {max_box_share!r}")
    a, b = records[low], records[high]
    norm = a.get("norm", "l2")
    box = {k: float(records[k].get("box_limited_share", 0.0)) for k in (low, high)}
    boxed = max(box.values()) > max_box_share
    pr = paired_log_ratio(a["distortions"], b["distortions"], n_boot=n_boot, ci=ci, seed=seed)
    below, above = pr["ci_high"] < 0, pr["ci_low"] > 0
    supported = None if boxed else (True if below else (False if above else None))
    reason = ("box-limited" if boxed else "ratio CI below 1" if below else
              "ratio CI above 1" if above else "ratio CI contains 1")
    rule = (f"H3 supported if the {ci:.0%} bootstrap CI of the median over images of log(d_low / d_high), "
            f"d = minimal {norm.upper()} distortion of the same image in the lowest band ({low}) and the highest "
            f"band ({high}), lies entirely below 0; rejected if entirely above 0; inconclusive if it contains 0 or "
            f"if more than {max_box_share:.0%} of the images are box-limited in either band (the [0, 1] box, not "
            f"the model, stops the attack)")
    ev = {"band_low": low, "band_high": high, "norm": norm, "basis": a.get("basis"), "n": pr["n"],
          "median_ratio": pr["ratio"], "ratio_ci": [float(np.exp(pr["ci_low"])), float(np.exp(pr["ci_high"]))],
          "median_log_ratio": pr["median"], "log_ratio_ci": [pr["ci_low"], pr["ci_high"]],
          "median_low": a["median_distortion"], "ci_low_band": [a["ci_low"], a["ci_high"]],
          "median_high": b["median_distortion"], "ci_high_band": [b["ci_low"], b["ci_high"]],
          "n_coefficients": [a.get("n_coefficients"), b.get("n_coefficients")],
          "box_limited_share": box, "reason": reason}
    if "full" in records:
        ev["median_full"] = records["full"]["median_distortion"]
    title = "H3: at equal L2 distortion, low-frequency perturbations are more efficient than high-frequency ones"
    return verdict(title + (f" ({dataset})" if dataset else ""), rule, supported, ev)


# ----------------------------------------------------------------------------- examples and attribution

def h3_summary(v: Mapping) -> str:
    """An :func:`h3_verdict` as text: the verdict and reason, the rule, the paired ratio with
    its CI, and each band's median minimal distortion with its CI."""
    need = ("hypothesis", "verdict", "rule", "evidence")
    if not isinstance(v, Mapping) or any(k not in v for k in need):
        raise ValueError(f"v must be an h3_verdict result (keys {', '.join(need)}), got "
                         f"{sorted(v) if isinstance(v, Mapping) else type(v).__name__}")
    e = v["evidence"]

    def g(x):  # stored evidence writes inf as "inf"
        return f"{float(x):.3g}"

    return "\n".join([
        f"{v['hypothesis']} -> {v['verdict'].upper()} ({e['reason']})",
        f"  rule: {v['rule']}",
        f"  median over images of d_low / d_high = {g(e['median_ratio'])}, 95% CI "
        f"[{', '.join(map(g, e['ratio_ci']))}] | n={e['n']} | box-limited {e['box_limited_share']}",
        f"  per band: {e['band_low']} median {g(e['median_low'])} CI [{', '.join(map(g, e['ci_low_band']))}] | "
        f"{e['band_high']} median {g(e['median_high'])} CI [{', '.join(map(g, e['ci_high_band']))}]"
        + (f" | full band {g(e['median_full'])}" if "median_full" in e else "")])


def band_examples(model: nn.Module, x: torch.Tensor, y: torch.Tensor, masks, eps: float, norm: str = "l2",
                  basis: str = "dct", steps: int = 20, seed: int = 0, include_full: bool = True,
                  smooth: dict | None = None) -> dict:
    """Perturbations of every band at one radius ``eps``: the equal-distortion picture.

    Runs band-limited :func:`freqkit.pgd` per band *without* early stopping, so that every
    perturbation spends (up to the box) the same budget, and optionally (``smooth``: keyword
    arguments of :func:`freqkit.smooth_pgd`, e.g. ``{}``) a smooth adversarial example at
    the same radius.  Returns ``{name: {"x_adv", "delta" (N, C, H, W), "success", "pred",
    "l2", "linf", "out_of_band" (N,)}}`` with tensors on the CPU; names ``band0..`` (or the
    dict's keys), ``"full"`` and ``"smooth"``.
    """
    check_images(x, "x", unit_range=True)
    h, w = x.shape[-2:]
    named = _named_masks(masks, h, w, basis)
    if include_full:
        named["full"] = None
    out = {}
    for name, m in named.items():
        xa, info = pgd(model, x, y, eps, norm=norm, steps=steps, band=m, basis=basis, random_start=False,
                       seed=seed, early_stop=False, return_info=True)
        out[name] = _example_record(x, xa, info)
    if smooth is not None:
        from .attacks import smooth_pgd
        xa, info = smooth_pgd(model, x, y, eps, norm=norm, steps=steps, seed=seed, early_stop=False,
                              return_info=True, **smooth)
        info = {**info, "out_of_band": torch.zeros(x.shape[0])}
        out["smooth"] = _example_record(x, xa, info)
    return out


def _check_variants(examples: Mapping, names, what: str) -> None:
    if not isinstance(examples, Mapping):
        raise TypeError(f"examples must be the dict of band_examples, got {type(examples).__name__}")
    if not names:
        raise ValueError(f"{what} must name at least one example")
    missing = [v for v in names if v not in examples]
    if missing:
        raise ValueError(f"{what}: no example named {', '.join(map(repr, missing))}; band_examples made "
                         f"{', '.join(map(repr, examples))} (pass smooth={{}} to it for 'smooth')")


def example_spectra(examples: Mapping, variants: Mapping, n_bands: int, basis: str = "dct") -> tuple[dict, list]:
    """Mean radial energy profile of :func:`band_examples` perturbations.

    ``variants``: ``{example name: label}`` (e.g. ``{"full": "PGD (full band)"}``).  Returns
    ``({label: [share of energy in each of n_bands radial bands]}, centres)``, the centres
    being each band's mean normalised radius (x Nyquist).
    """
    from .attacks import perturbation_spectrum

    _check_variants(examples, variants, "variants")
    first = examples[next(iter(variants))]["delta"]
    h, w = first.shape[-2:]
    sm = band_masks(h, w, n_bands, kind="radial", basis=basis)
    r = frequency_radius(h, w, basis)
    centres = [float(r[m].mean()) for m in sm]
    spectra = {label: perturbation_spectrum(examples[v]["delta"], basis, masks=sm).mean(0).tolist()
               for v, label in variants.items()}
    return spectra, centres


def smooth_summary(examples: Mapping, masks: torch.Tensor, variants=("full", "band0", "smooth"),
                   basis: str = "dct") -> dict:
    """Smooth PGD next to full-band and lowest-band PGD at the same radius (:func:`band_examples`).

    Returns ``lowest_band_energy_share`` ``{variant: mean share of the perturbation's energy in
    masks[0]}``, ``dirichlet_smooth`` (mean graph Dirichlet energy of the smooth
    perturbations) and ``success_<variant>`` (success rate of each variant).
    """
    from .attacks import perturbation_spectrum

    _check_variants(examples, tuple(variants) + ("smooth",), "variants (and 'smooth')")
    low = {v: float(perturbation_spectrum(examples[v]["delta"], basis, masks=masks)[:, 0].mean()) for v in variants}
    out = {"lowest_band_energy_share": low, "dirichlet_smooth": float(examples["smooth"]["dirichlet"].mean())}
    out.update({f"success_{v}": float(examples[v]["success"].float().mean()) for v in variants})
    return out


def _example_record(x, xa, info) -> dict:
    rec = {"x_adv": xa.detach().cpu(), "delta": (xa - x).detach().cpu(), "success": info["success"].cpu(),
           "pred": info["logits"].argmax(1).cpu(), "l2": info["l2"].detach().cpu(),
           "linf": info["linf"].detach().cpu(), "out_of_band": info["out_of_band"].detach().cpu()}
    if "dirichlet" in info:
        rec["dirichlet"] = info["dirichlet"].detach().cpu()
    return rec


def perturbation_attribution(model: nn.Module, x: torch.Tensor, x_adv: torch.Tensor, y: torch.Tensor,
                             masks: torch.Tensor, basis: str = "dct", n_steps: int = 32,
                             internal_batch_size: int | None = None) -> dict:
    """Which frequencies of the perturbation ``x_adv - x`` drive the change of the output?

    Frequency Integrated Gradients (:func:`freqkit.attribute`, ``method="ig"``) of the
    true class's logit along the straight path from ``x`` (the baseline) to ``x_adv`` (the
    input), in ``basis``.  By completeness the scores sum to ``f_y(x_adv) - f_y(x)``, the
    change the attack caused; summed over each band of ``masks`` ``(K, H, W)`` they say how
    much of that change each band's part of the perturbation caused.  (Only coefficients
    where the perturbation is non-zero get a score: a band-limited perturbation is
    attributed to its band by construction, so this is informative for unconstrained or
    smooth perturbations.)

    Returns a dict: ``logit_change`` ``(N,)`` (``f_y(x_adv) - f_y(x)``), ``band_change``
    ``(N, K)`` (IG summed per band, logit units), ``change_share`` ``(N, K)`` (``band_change``
    over its row sum: the share of the change caused by each band; rows sum to 1),
    ``energy_share`` ``(N, K)`` (share of the perturbation's energy per band), and
    ``completeness_error`` ``(N,)`` (IG's ``delta``).  ``change_share / energy_share``
    compares the bands' effect per unit of energy.
    """
    from .attribution import attribute
    check_images(x, "x", unit_range=True)
    check_images(x_adv, "x_adv", unit_range=True)
    if x_adv.shape != x.shape:
        raise ValueError(f"x_adv must have the shape of x {tuple(x.shape)}, got {tuple(x_adv.shape)}")
    y = _check_labels(y, x.shape[0], x.device)
    h, w = x.shape[-2:]
    masks = check_mask(masks, "masks", h, w, allow_stack=True)
    masks = masks.unsqueeze(0) if masks.dim() == 2 else masks
    res = attribute(model, x_adv, y, method="ig", basis=basis, n_steps=n_steps, baseline=x,
                    internal_batch_size=internal_batch_size)
    s = res.scores.detach()
    band_change = radial_profile(s.sum(1), masks.to(s.device))                 # (N, K)
    tot = band_change.sum(1, keepdim=True)
    share = torch.where(tot.abs() > 0, band_change / torch.where(tot == 0, torch.ones_like(tot), tot),
                        torch.zeros_like(band_change))
    energy = perturbation_spectrum((x_adv - x).detach(), basis="dct" if basis == "dct" else "dft", masks=masks)
    return {"logit_change": (res.output_x - res.output_baseline).detach().cpu(),
            "band_change": band_change.cpu(), "change_share": share.cpu(), "energy_share": energy.cpu(),
            "completeness_error": res.delta.detach().cpu()}


# ----------------------------------------------------------------------------- Fourier heat maps

def heatmap_radial_profile(hm: torch.Tensor, n_bins: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """A Fourier heat map (centred DFT grid, :func:`freqkit.fourier_heatmap`) averaged over rings.

    Returns ``(centres, values)``: the mean normalised radius (units of Nyquist) and the mean
    of ``hm`` over each of ``n_bins`` equal-width radial bands (default ``min(H, W) // 2``)
    of the centred DFT grid, e.g. the error rate as a function of the perturbation's
    frequency.
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
    """How many basis directions :func:`freqkit.fourier_heatmap` evaluates on an ``H x W`` grid:
    one per pair ``{f, -f}`` of the centred DFT grid (about ``H W / 2``).  The heat map costs
    ``N * n_fourier_directions(H, W)`` forward passes for ``N`` images."""
    from .attacks import _conjugate_pairs
    check_positive_int(h, "h")
    check_positive_int(w, "w")
    return int(_conjugate_pairs(h, w)[0].numel())


def heatmap_report(model: nn.Module, x: torch.Tensor, y: torch.Tensor, eps: float, batch_size: int = 512,
                   seed: int = 0, n_radial_bins: int | None = None,
                   metrics: tuple = ("error", "logit_change")) -> dict:
    """Fourier heat maps of one model (Yin et al. 2019) with what a chapter reports beside them.

    ``x`` ``(N, C, H, W)`` in ``[0, 1]`` and labels ``y``; ``eps`` the L2 norm of the
    perturbation per channel (see :func:`freqkit.fourier_heatmap`, which does the work, all
    metrics in one pass).  Returns a dict:

    * ``maps``: ``{metric: (H, W) tensor}`` on the centred DFT grid;
    * ``radial``: ``{metric: [centres, values]}`` (lists; :func:`heatmap_radial_profile`);
    * ``clean_error``: the model's error rate on ``x`` unperturbed;
    * ``timing``: ``seconds``, ``n_images``, ``n_directions``, ``ms_per_image_direction``,
      ``device`` (every metric comes from the same forward passes).
    """
    import time

    from .attacks import fourier_heatmap
    from .training import predict_logits

    check_images(x, "x")
    y = _check_labels(y, x.shape[0], x.device)
    h, w = x.shape[-2:]
    metrics = (metrics,) if isinstance(metrics, str) else tuple(metrics)
    if not metrics:
        raise ValueError("metrics must name at least one metric, e.g. ('error',)")
    clean_error = float((predict_logits(model, x).argmax(1).cpu() != y.cpu()).float().mean())
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
