"""Figures for the book: images, bases, spectra, curves.  Nothing that computes imports this.

Every plotting function returns a matplotlib ``Figure`` (or draws on a given ``ax`` and
returns its figure) and never calls ``plt.show()``, so figures can be rendered to PNG frames
for the static widgets in :mod:`freqkit.book.widgets`.  The figures show the numbers they are
given; where a function changes values for display only (:func:`stretch`,
:func:`signed_stretch`, clipping), its docstring says so.  Matplotlib is switched to the
``Agg`` backend unless the inline backend is in use.
"""
from __future__ import annotations

import io
import math
from typing import Sequence

import numpy as np
import torch

from ..transforms import dct2, dct_matrix, dft2, frequency_radius

__all__ = [
    "to_display", "stretch", "signed_stretch", "figure_to_png", "show_images", "basis_grid", "spectrum_image",
    "plot_curves", "setting_caption", "radius_map", "markdown_table", "attack_success_curves",
    "minimal_distortion_plot", "paired_distortion_scatter", "fourier_heatmap_image", "heatmap_report_figure",
    "perturbation_strip", "perturbation_spectra", "perturbation_share_bars", "attribution_map", "method_panel",
    "band_profile_plot", "band_heatmap_grid", "band_component_strip", "topk_strip", "deletion_insertion_plot",
    "completeness_histogram", "ground_truth_bars", "randomisation_plot", "suite_distribution_plot",
    "penalty_sweep_plot", "suite_perturbation_grid",
]


def _plt():
    import matplotlib
    if matplotlib.get_backend().lower() not in ("agg", "module://matplotlib_inline.backend_inline"):
        try:
            matplotlib.use("Agg")
        except Exception:  # an interactive backend already in use: keep it
            pass
    import matplotlib.pyplot as plt
    return plt


def to_display(img) -> np.ndarray:
    """An image as a numpy array matplotlib can show: channels last, clipped to ``[0, 1]``.

    A one-channel image loses its channel axis; a multi-channel one has it moved last.
    Values outside ``[0, 1]`` are clipped (display only).

    Args:
        img: a torch tensor (any device; detached) or array-like, in freqkit's
            channel-first layout with values in ``[0, 1]``.

    Returns:
        A float64 numpy array with values in ``[0, 1]``.

    Shape:
        - img: ``(C, H, W)`` or ``(H, W)``; ``(1, H, W)`` -> ``(H, W)``, ``(3, H, W)`` ->
          ``(H, W, 3)``, ``(H, W)`` -> ``(H, W)``.  A 3-D input is always read as
          channel-first: an ``(H, W, 3)`` array is *not* recognised (pass it to matplotlib
          directly).

    Example:
        >>> import torch
        >>> from freqkit.book.viz import to_display
        >>> a = to_display(torch.tensor([[[-0.5, 0.5], [1.0, 2.0]]]))
        >>> a.shape, a.tolist()
        ((2, 2), [[0.0, 0.5], [1.0, 1.0]])
        >>> to_display(torch.rand(3, 4, 5)).shape
        (4, 5, 3)
    """
    a = img.detach().cpu().double().numpy() if isinstance(img, torch.Tensor) else np.asarray(img, dtype=float)
    if a.ndim == 3:
        a = a[0] if a.shape[0] == 1 else np.moveaxis(a, 0, -1)
    return np.clip(a, 0.0, 1.0)


def stretch(img) -> np.ndarray:
    """Min-max stretch to [0, 1] for *display only* (high-pass images are near-zero-mean).

    ``(img - min) / (max - min)`` with one minimum and maximum over the whole image (all
    channels together, so colours keep their balance), then :func:`to_display`; a constant
    image becomes all zeros.  Figures that use it say so in their title: the stretch changes
    contrast, not content.

    Args:
        img: a torch tensor or array-like of any range (e.g. a high-pass component).

    Returns:
        A float64 numpy array in ``[0, 1]``, laid out as by :func:`to_display`.

    Shape:
        - img: ``(C, H, W)`` or ``(H, W)`` -> ``(H, W)`` (one channel) or ``(H, W, C)``.

    Example:
        >>> import torch
        >>> from freqkit.book.viz import stretch
        >>> stretch(torch.tensor([[-0.2, 0.0], [0.2, 0.6]])).round(2).tolist()
        [[0.0, 0.25], [0.5, 1.0]]
    """
    a = img.detach().cpu().double().numpy() if isinstance(img, torch.Tensor) else np.asarray(img, dtype=float)
    lo, hi = a.min(), a.max()
    return to_display((a - lo) / (hi - lo) if hi > lo else np.zeros_like(a))


def figure_to_png(fig, dpi: int = 100, close: bool = True, colors: int | None = 256) -> bytes:
    """Render a figure to PNG bytes (for widget frames) and close it.

    Widget frames are embedded in the page, every frame of every slider: with ``colors`` the
    image is reduced to a palette of that many colours (Pillow's fast octree quantiser),
    which keeps plots and heat maps visually unchanged and makes the PNGs about 2-3x smaller,
    so that a chapter page stays under 2 MB.

    Args:
        fig: a matplotlib ``Figure``.
        dpi: resolution in dots per inch (default 100).
        close: close the figure afterwards (default True), so that it is neither shown again
            by the inline backend nor kept in memory.
        colors: palette size in ``[2, 256]``, or None for full-colour RGBA (default 256).

    Returns:
        The PNG file's bytes (saved with ``bbox_inches="tight"``).

    Raises:
        ValueError: ``colors`` outside ``[2, 256]``.
    """
    if colors is not None and not (isinstance(colors, int) and 2 <= colors <= 256):
        raise ValueError(f"colors must be None or an integer in [2, 256], got {colors!r}")
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight", facecolor="white")
    if close:
        _plt().close(fig)
    if colors is None:
        return buf.getvalue()
    from PIL import Image  # a core dependency; imported here to keep `import viz` light

    img = Image.open(io.BytesIO(buf.getvalue())).convert("RGB")
    out = io.BytesIO()
    img.quantize(colors=colors, method=Image.Quantize.FASTOCTREE).save(out, format="PNG", optimize=True)
    return out.getvalue()


def show_images(images: Sequence, titles: Sequence[str] | None = None, ncols: int | None = None,
                size: float = 1.6, suptitle: str | None = None, cmap_gray: str = "gray"):
    """A grid of images, ``ncols`` per row, each with an optional title.

    Tensors and channel-first arrays go through :func:`to_display` (clipped to ``[0, 1]``);
    numpy arrays that are already ``(H, W)`` or ``(H, W, 3)`` are shown as they are (grey
    images on the fixed scale ``[0, 1]``).

    Args:
        images: a sequence of images (see Shape), values in ``[0, 1]``; at least one.
        titles: one title per image (default: none).
        ncols: panels per row; default ``min(len(images), 8)``.
        size: inches per panel (default 1.6).
        suptitle: the figure's title (default: none).
        cmap_gray: the colour map of one-channel images (default ``"gray"``).

    Returns:
        The matplotlib ``Figure``.

    Shape:
        - images: each a ``(C, H, W)`` or ``(H, W)`` tensor/array, or an ``(H, W, 3)`` numpy array.
    """
    plt = _plt()
    n = len(images)
    ncols = ncols or min(n, 8)
    nrows = int(np.ceil(n / ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(size * ncols, size * nrows + (0.4 if suptitle else 0)),
                             squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i >= n:
            continue
        a = images[i] if (isinstance(images[i], np.ndarray) and images[i].ndim in (2, 3)
                          and (images[i].ndim == 2 or images[i].shape[-1] == 3)) else to_display(images[i])
        ax.imshow(a, cmap=cmap_gray if a.ndim == 2 else None, vmin=0, vmax=1, interpolation="nearest")
        if titles is not None:
            ax.set_title(titles[i], fontsize=8)
    if suptitle:
        fig.suptitle(suptitle, fontsize=10)
    fig.tight_layout()
    return fig


def basis_grid(n: int = 8, basis: str = "dct", size: float = 4.0):
    """The ``n x n`` basis images of the orthonormal DCT-II, or the real (cosine) DFT basis.

    DCT: entry ``(u, v)`` of the grid is the image whose only non-zero coefficient is
    ``(u, v)`` (the outer product of rows ``u`` and ``v`` of :func:`freqkit.dct_matrix`).
    DFT: entry ``(u, v)`` is the cosine of the centred frequency ``((u - n//2) / n,
    (v - n//2) / n)`` cycles per pixel, so the zero frequency is at ``(n//2, n//2)``.  Each
    panel has its own grey scale.

    Args:
        n: the size of the images and of the grid (default 8).
        basis: ``"dct"`` (default) or ``"dft"``.
        size: the figure's width and height in inches (default 4.0).

    Returns:
        The matplotlib ``Figure`` (``n x n`` panels).

    Raises:
        ValueError: ``basis`` is not ``"dct"`` or ``"dft"``.
    """
    plt = _plt()
    if basis == "dct":
        d = dct_matrix(n, torch.float64)
        imgs = torch.einsum("ui,vj->uvij", d, d)  # basis image (u,v) = outer(D[u], D[v])
        title = f"DCT-II basis images ({n}x{n}), (u, v) = (row, column)"
    elif basis == "dft":
        k = torch.arange(n, dtype=torch.float64)
        f = (k - n // 2) / n  # centred frequencies in cycles per pixel
        i = torch.arange(n, dtype=torch.float64)
        imgs = torch.cos(2 * torch.pi * (f[:, None, None, None] * i[None, None, :, None]
                                          + f[None, :, None, None] * i[None, None, None, :]))
        title = f"DFT basis (real part), centred: zero frequency at ({n // 2}, {n // 2})"
    else:
        raise ValueError(f"basis must be 'dct' or 'dft', got {basis!r}")
    fig, axes = plt.subplots(n, n, figsize=(size, size))
    for u in range(n):
        for v in range(n):
            ax = axes[u, v]
            ax.imshow(imgs[u, v].numpy(), cmap="gray", interpolation="nearest")
            ax.set_xticks([]), ax.set_yticks([])
    fig.suptitle(title, fontsize=9)
    return fig


def spectrum_image(power: torch.Tensor, basis: str, title: str = "", ax=None, log: bool = True):
    """Show a per-coefficient map ``(H, W)`` (e.g. mean power), log10 scale by default.

    With ``log`` the image is ``log10(power + 1e-12)``; the axes are labelled for the DCT
    grid (``(0, 0)``, the mean, at the top left) or, for any other ``basis``, the centred DFT
    grid (zero frequency in the middle).  A colour bar is added.

    Args:
        power: the map, a torch tensor (e.g. :func:`freqkit.power_spectrum` averaged over
            images), non-negative when ``log``.
        basis: ``"dct"`` or ``"dft"`` (only the axis labels depend on it; not checked).
        title: the panel's title.
        ax: draw on this matplotlib axes; default: a new figure.
        log: show ``log10`` (default True) or the values unchanged.

    Returns:
        The new figure, or ``ax``'s figure.

    Shape:
        - power: ``(H, W)``.
    """
    plt = _plt()
    fig = None
    if ax is None:
        fig, ax = plt.subplots(figsize=(3.2, 3))
    p = power.detach().cpu().double().numpy()
    im = ax.imshow(np.log10(p + 1e-12) if log else p, cmap="magma", interpolation="nearest")
    ax.set_title(title, fontsize=9)
    h, w = p.shape
    if basis == "dct":
        ax.set_xlabel("v (horizontal frequency)"), ax.set_ylabel("u (vertical frequency)")
    else:
        ax.set_xlabel("horizontal frequency (centred)"), ax.set_ylabel("vertical frequency (centred)")
        ax.set_xticks([0, w // 2, w - 1], ["-N", "0", "+N"]), ax.set_yticks([0, h // 2, h - 1], ["-N", "0", "+N"])
    ax.figure.colorbar(im, ax=ax, fraction=0.046, label="log10" if log else None)
    return fig or ax.figure


def plot_curves(x, curves: dict, xlabel: str, ylabel: str, title: str = "", ax=None,
                chance: float | None = None, bands: dict | None = None, logy: bool = False):
    """Line plot of several named curves over ``x``, with optional shaded intervals.

    Each curve is drawn with markers and the y-values given; ``bands[name]`` shades the area
    between ``lo`` and ``hi`` in the curve's colour.

    Args:
        x: the x-values, shared by every curve.
        curves: ``{name: y-values}`` (one per ``x``), legend labels = the names.
        xlabel: the x-axis label.
        ylabel: the y-axis label.
        title: the panel's title.
        ax: draw on this matplotlib axes; default: a new figure.
        chance: draw a dashed horizontal line "chance" at this value (default: none).
        bands: ``{name: (lo, hi)}`` intervals for some of the curves (default: none).
        logy: a logarithmic y-axis (default False).

    Returns:
        The new figure, or ``ax``'s figure.
    """
    plt = _plt()
    fig = None
    if ax is None:
        fig, ax = plt.subplots(figsize=(5, 3.4))
    for name, yv in curves.items():
        line, = ax.plot(x, yv, marker="o", ms=3, label=name)
        if bands and name in bands:
            lo, hi = bands[name]
            ax.fill_between(x, lo, hi, alpha=0.2, color=line.get_color())
    if chance is not None:
        ax.axhline(chance, color="gray", ls="--", lw=1, label="chance")
    if logy:
        ax.set_yscale("log")
    ax.set_xlabel(xlabel), ax.set_ylabel(ylabel), ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    return fig or ax.figure


def setting_caption(**setting) -> str:
    """One line stating a figure's setting, e.g. ``data set=CIFAR-10 | model=... | n=1000``.

    Args:
        setting: the settings as keyword arguments, in order; underscores in the names
            become spaces, values are written with ``str``.

    Returns:
        ``"name=value | name=value | ..."`` (``""`` without arguments).

    Example:
        >>> from freqkit.book.viz import setting_caption
        >>> setting_caption(data_set="CIFAR-10", model="SmallCNN", n=1000)
        'data set=CIFAR-10 | model=SmallCNN | n=1000'
    """
    return " | ".join(f"{k.replace('_', ' ')}={v}" for k, v in setting.items())


def radius_map(h: int, w: int, basis: str = "dct") -> torch.Tensor:
    """Convenience for figures: the normalised radius per coefficient.

    The same as :func:`freqkit.frequency_radius` with ``kind="radial"``:
    ``sqrt(fu^2 + fv^2)`` in units of Nyquist, in ``[0, sqrt(2)]``.

    Args:
        h: the grid's height.
        w: the grid's width.
        basis: ``"dct"`` (default; ``(0, 0)`` at the top left) or ``"dft"`` (centred grid).

    Returns:
        A float64 tensor.

    Shape:
        - output: ``(h, w)``.

    Raises:
        ValueError: ``basis`` is not ``"dct"`` or ``"dft"``.
    """
    return frequency_radius(h, w, basis)


# ============================================================================ attack figures (chapters 5-6)
# Success against eps per band, minimal distortion per band with CIs, Fourier heat maps,
# perturbation strips and spectra.  Inputs are the records of freqkit.compare_bands /
# freqkit.attacks.band_comparison and the tensors of freqkit.attacks.


def _band_label(name: str, rec: dict) -> str:
    k = rec.get("n_coefficients")
    return f"{name} ({k} coef.)" if k is not None and name != "full" else name


def attack_success_curves(records: dict, title: str = "", ax=None, xlabel: str | None = None,
                          logx: bool = False):
    """Success rate of (band-limited) PGD against eps, one line per band.

    Each line's y-data are exactly the stored success rates; the band ``"full"`` (the
    unconstrained attack) is dashed, and the other bands' legend labels give their number of
    coefficients.

    Args:
        records: ``{band: record}`` from :func:`freqkit.compare_bands` or
            :func:`freqkit.band_comparison` (keys ``eps`` and ``success_rate``; optional
            ``n_coefficients`` and ``norm``).
        title: the panel's title.
        ax: draw on this matplotlib axes; default: a new figure.
        xlabel: the x-axis label; default ``"eps (<NORM> radius, pixels in [0, 1])"``.
        logx: a symmetric-log eps axis, linear below the smallest positive eps (so eps = 0
            stays on the plot), for geometric eps lists (default False).

    Returns:
        The new figure, or ``ax``'s figure.
    """
    plt = _plt()
    fig = None
    if ax is None:
        fig, ax = plt.subplots(figsize=(5, 3.4))
    norm = None
    for name, rec in records.items():
        norm = rec.get("norm", norm)
        ax.plot(rec["eps"], rec["success_rate"], marker="o", ms=3, label=_band_label(name, rec),
                ls="--" if name == "full" else "-")
    ax.set_ylim(-0.03, 1.03)
    if logx:
        pos = [e for rec in records.values() for e in rec["eps"] if e > 0]
        if pos:
            ax.set_xscale("symlog", linthresh=min(pos))
    ax.set_xlabel(xlabel or f"eps ({(norm or '').upper()} radius, pixels in [0, 1])")
    ax.set_ylabel("attack success rate")
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    return fig or ax.figure


def minimal_distortion_plot(records: dict, title: str = "", ax=None, log: bool = True):
    """Median minimal distortion per band with its bootstrap CI (error bars).

    A median of ``inf`` (most images resisted up to ``eps_max``) is drawn as a triangle at
    the top, above the dotted ``eps_max`` line; an infinite CI end as a bar reaching the
    top.  The numbers are written above the points; where a record has
    ``box_limited_share`` (:func:`freqkit.band_comparison`) it is written too.
    The line labelled ``"median"`` holds the finite medians at their band positions.

    Args:
        records: ``{band: record}`` from :func:`freqkit.compare_bands` or
            :func:`freqkit.band_comparison` (keys ``median_distortion``, ``ci_low``,
            ``ci_high``; optional ``eps_max``, ``ci`` (level, default 0.95),
            ``box_limited_share``, ``norm``, ``n_coefficients``); at least one.
        title: the panel's title.
        ax: draw on this matplotlib axes; default: a new figure.
        log: a logarithmic y-axis (default True).

    Returns:
        The new figure, or ``ax``'s figure.
    """
    plt = _plt()
    fig = None
    if ax is None:
        fig, ax = plt.subplots(figsize=(5, 3.4))
    names = list(records)
    med = np.array([records[k]["median_distortion"] for k in names], dtype=float)
    lo = np.array([records[k]["ci_low"] for k in names], dtype=float)
    hi = np.array([records[k]["ci_high"] for k in names], dtype=float)
    eps_max = max(float(records[k].get("eps_max", np.nan)) for k in names)
    some_inf = not all(np.isfinite(v).all() for v in (med, lo, hi))
    # eps_max (the search ceiling) sets the scale only where some value is beyond it
    finite = np.concatenate([v[np.isfinite(v)] for v in (med, lo, hi)] + ([[eps_max]] if some_inf else []))
    top = float(np.nanmax(finite)) * (2.0 if log else 1.15)
    pos = np.arange(len(names))
    ok = np.isfinite(med)
    lo_c, hi_c = np.where(np.isfinite(lo), lo, top), np.where(np.isfinite(hi), hi, top)
    ci = int(round(100 * records[names[0]].get("ci", 0.95)))
    ax.vlines(pos, lo_c, hi_c, color="C0", lw=2, alpha=0.6, label=f"{ci}% bootstrap CI")
    ax.plot(pos[ok], med[ok], "o", color="C0", ms=6, label="median")
    if (~ok).any():
        ax.plot(pos[~ok], np.full((~ok).sum(), top), "^", color="C3", ms=8, label="median = inf (> eps_max)")
    if some_inf:
        ax.axhline(eps_max, color="gray", ls=":", lw=1, label=f"eps_max = {eps_max:.3g}")
    for i, k in enumerate(names):
        txt = f"{med[i]:.3g}" if ok[i] else "inf"
        box = records[k].get("box_limited_share")
        if box:
            txt += f"\nbox {box:.0%}"
        ax.annotate(txt, (pos[i], top if not ok[i] else med[i]), textcoords="offset points",
                    xytext=(6, 2 if ok[i] else -14), fontsize=7)
    if log:
        ax.set_yscale("log")
    lo_y = ax.get_ylim()[0]
    ax.set_ylim(lo_y, top * (1.6 if log else 1.08))
    ax.set_xticks(pos, [_band_label(k, records[k]) for k in names], rotation=20, fontsize=7)
    norm = records[names[0]].get("norm", "")
    ax.set_ylabel(f"median minimal {norm.upper()} distortion")
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3, axis="y")
    ax.legend(fontsize=7)
    return fig or ax.figure


def fourier_heatmap_image(hm, title: str = "", ax=None, vmin=None, vmax=None, cmap: str = "viridis",
                          label: str = "error rate"):
    """A Fourier heat map on the centred DFT grid (zero frequency in the middle).

    Pixel ``(i, j)`` is the value for the perturbation along the Fourier basis image of
    frequency ``(i - H//2, j - W//2)``: the centre is the lowest frequency, the corners the
    highest; the map is symmetric through the centre (Yin et al. 2019, "A Fourier
    perspective on model robustness in computer vision").  The image shows ``hm`` unchanged.

    Args:
        hm: the map, e.g. ``maps["error"]`` of :func:`freqkit.heatmap_report` or
            :func:`freqkit.fourier_heatmap`; a tensor or array.
        title: the panel's title.
        ax: draw on this matplotlib axes; default: a new figure.
        vmin: the colour scale's low end (default: the map's minimum).
        vmax: the colour scale's high end (default: the map's maximum).
        cmap: the matplotlib colour map (default ``"viridis"``).
        label: the colour bar's label (default ``"error rate"``).

    Returns:
        The new figure, or ``ax``'s figure.

    Shape:
        - hm: ``(H, W)``.
    """
    plt = _plt()
    fig = None
    if ax is None:
        fig, ax = plt.subplots(figsize=(3.4, 3))
    a = hm.detach().cpu().double().numpy() if isinstance(hm, torch.Tensor) else np.asarray(hm, dtype=float)
    im = ax.imshow(a, cmap=cmap, vmin=vmin, vmax=vmax, interpolation="nearest")
    h, w = a.shape
    ax.set_xticks([0, w // 2, w - 1], [f"{-(w // 2)}", "0", f"+{w - 1 - w // 2}"])
    ax.set_yticks([0, h // 2, h - 1], [f"{-(h // 2)}", "0", f"+{h - 1 - h // 2}"])
    ax.set_xlabel("horizontal frequency (cycles/image)"), ax.set_ylabel("vertical frequency")
    ax.set_title(title, fontsize=9)
    ax.figure.colorbar(im, ax=ax, fraction=0.046, label=label)
    return fig or ax.figure


def signed_stretch(d) -> np.ndarray:
    """Show a signed perturbation: ``0.5 + d / (2 max|d|)`` (zero is mid-grey). Display only.

    One maximum over the whole input (all channels), so the sign and the relative size of
    every pixel survive; an all-zero input becomes uniform grey 0.5.  The result goes
    through :func:`to_display`.

    Args:
        d: a perturbation, a torch tensor or array-like of any range.

    Returns:
        A float64 numpy array in ``[0, 1]``.

    Shape:
        - d: ``(C, H, W)`` or ``(H, W)`` -> ``(H, W)`` (one channel) or ``(H, W, C)``.
    """
    a = d.detach().cpu().double().numpy() if isinstance(d, torch.Tensor) else np.asarray(d, dtype=float)
    m = np.abs(a).max()
    return to_display(0.5 + a / (2 * m) if m > 0 else np.full_like(a, 0.5))


def perturbation_strip(x, x_adv, titles: Sequence[str] | None = None, suptitle: str | None = None,
                       basis: str = "dct", size: float = 1.5):
    """Adversarial examples and their perturbations, one column per image.

    Rows: ``x``, ``x_adv``, ``delta = x_adv - x`` (:func:`signed_stretch`, display only)
    and ``log10`` of the perturbation's energy per coefficient in ``basis`` (``"dct"``:
    ``dct2(delta)^2``; otherwise the DFT: centred ``|F|^2``), summed over channels, on one
    colour scale shared by all columns (the range of the non-zero energies).  The spectrum
    row's images are ``log10(energy + 1e-12)``, exactly.

    Args:
        x: the clean images, a tensor in ``[0, 1]``.
        x_adv: the adversarial images, same shape (e.g. from :func:`freqkit.pgd`).
        titles: one per column (e.g. prediction and norm); default: none.
        suptitle: the figure's title (default: none).
        basis: ``"dct"`` (default) or ``"dft"`` (any value other than ``"dct"`` gives the
            DFT; not checked).
        size: inches per panel (default 1.5).

    Returns:
        The matplotlib ``Figure`` (4 rows, N columns).

    Shape:
        - x: ``(N, C, H, W)``.
        - x_adv: ``(N, C, H, W)``.
    """
    plt = _plt()
    x, x_adv = x.detach().cpu(), x_adv.detach().cpu()
    n = x.shape[0]
    d = (x_adv - x).double()
    e = (dct2(d) ** 2 if basis == "dct" else dft2(d).abs() ** 2).sum(1)
    le = torch.log10(e + 1e-12).numpy()
    finite = le[e.numpy() > 0]
    vmin, vmax = (float(finite.min()), float(finite.max())) if finite.size else (-12.0, 0.0)
    fig, axes = plt.subplots(4, n, figsize=(size * n + 0.6, size * 4 + (0.4 if suptitle else 0)), squeeze=False)
    rows = ("image", "adversarial", "perturbation", f"log10 {basis.upper()} energy")
    for j in range(n):
        for i, a in enumerate((to_display(x[j]), to_display(x_adv[j]), signed_stretch(d[j]))):
            axes[i, j].imshow(a, cmap="gray" if a.ndim == 2 else None, vmin=0, vmax=1, interpolation="nearest")
        axes[3, j].imshow(le[j], cmap="magma", vmin=vmin, vmax=vmax, interpolation="nearest")
        for i in range(4):
            axes[i, j].set_xticks([]), axes[i, j].set_yticks([])
            if j == 0:
                axes[i, j].set_ylabel(rows[i], fontsize=7)
        if titles is not None:
            axes[0, j].set_title(titles[j], fontsize=7)
    if suptitle:
        fig.suptitle(suptitle, fontsize=9)
    fig.tight_layout()
    return fig


def perturbation_spectra(profiles: dict, centres, title: str = "", ax=None, logy: bool = True):
    """Share of perturbation energy per radial band against the band's radius.

    One line per kind of perturbation (e.g. smooth, low-frequency, unconstrained PGD).

    Args:
        profiles: ``{name: shares}``, each the K band shares of one kind of perturbation, e.g.
            :func:`freqkit.band_energy` (formerly ``perturbation_spectrum``) averaged over
            images; tensors or arrays.  The lines' y-data are these values.
        centres: the K bands' radii (x Nyquist), the x-values.
        title: the panel's title.
        ax: draw on this matplotlib axes; default: a new figure.
        logy: a logarithmic y-axis (default True).

    Returns:
        The new figure, or ``ax``'s figure.

    Shape:
        - profiles values: ``(K,)``.
        - centres: ``(K,)``.
    """
    plt = _plt()
    fig = None
    if ax is None:
        fig, ax = plt.subplots(figsize=(5, 3.4))
    c = np.asarray(centres, dtype=float)
    for name, p in profiles.items():
        p = p.detach().cpu().numpy() if isinstance(p, torch.Tensor) else np.asarray(p, dtype=float)
        ax.plot(c, p, marker="o", ms=3, label=name)
    if logy:
        ax.set_yscale("log")
    ax.set_xlabel("radius of the band (x Nyquist)"), ax.set_ylabel("share of perturbation energy")
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    return fig or ax.figure


def perturbation_share_bars(shares: dict, band_labels: Sequence[str], title: str = "", ax=None,
                            ylabel: str = "share"):
    """Grouped bars: for each band, one bar per named share vector (e.g. the perturbation's
    energy share and its share of the logit change).  Bar heights are the values given.

    Args:
        shares: ``{name: values}``, each K values (tensor or array), one per band.
        band_labels: the K bands' names (x tick labels).
        title: the panel's title.
        ax: draw on this matplotlib axes; default: a new figure.
        ylabel: the y-axis label (default ``"share"``).

    Returns:
        The new figure, or ``ax``'s figure.

    Shape:
        - shares values: ``(K,)`` with ``K = len(band_labels)``.

    Raises:
        ValueError: a share vector does not have shape ``(K,)``.
    """
    plt = _plt()
    fig = None
    if ax is None:
        fig, ax = plt.subplots(figsize=(5, 3.4))
    k = len(band_labels)
    m = max(len(shares), 1)
    width = 0.8 / m
    for i, (name, v) in enumerate(shares.items()):
        v = v.detach().cpu().numpy() if isinstance(v, torch.Tensor) else np.asarray(v, dtype=float)
        if v.shape != (k,):
            raise ValueError(f"shares[{name!r}] must have {k} values (one per band), got shape {v.shape}")
        ax.bar(np.arange(k) + (i - (m - 1) / 2) * width, v, width, label=name)
    ax.axhline(0, color="black", lw=0.8)
    ax.set_xticks(np.arange(k), list(band_labels), fontsize=7)
    ax.set_ylabel(ylabel), ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3, axis="y")
    ax.legend(fontsize=7)
    return fig or ax.figure


# ============================================================================ attribution figures (chapters 3-4)
# Spectral maps of attribution scores, band profiles with intervals, per-band pixel heat
# maps, top-k reconstructions, deletion/insertion curves, completeness histograms, ground
# truth shares and the randomisation check.  Inputs are results of freqkit.attribution,
# freqkit.faithfulness and freqkit.planted; every figure shows the numbers it is given.


def _np(a) -> np.ndarray:
    return a.detach().cpu().double().numpy() if isinstance(a, torch.Tensor) else np.asarray(a, dtype=float)


def attribution_map(scores, basis: str = "dct", title: str = "", ax=None, signed: bool = True,
                    label: str = "score", colorbar: bool = True, clip: float | None = 99.0):
    """A per-coefficient attribution map ``(H, W)`` on the frequency grid, shown unchanged.

    Only the colours are clipped (see ``clip``): the image holds the scores unchanged.
    DCT: ``(u, v) = (0, 0)`` (the mean) at the top left; DFT: zero frequency in the centre.

    Args:
        scores: the map, a tensor or array, e.g. one image's frequency attribution summed
            over channels (:func:`freqkit.attribute`).
        basis: ``"dct"`` (default) or ``"dft"`` (only the axis labels depend on it; any value
            other than ``"dct"`` is labelled as the centred DFT grid).
        title: the panel's title.
        ax: draw on this matplotlib axes; default: a new figure.
        signed: True (default): diverging colours (red raises the explained output, blue
            lowers it) on a scale symmetric about 0; False: a sequential map from 0 (e.g.
            for ``|scores|``).
        label: the colour bar's label (default ``"score"``).
        colorbar: add a colour bar (default True).
        clip: the colour scale ends at this percentile of ``|scores|`` (default 99: the few
            largest values, often the mean coefficient, saturate instead of washing out the
            rest; the colour bar is marked with arrows then); None: at the maximum.

    Returns:
        The new figure, or ``ax``'s figure.

    Shape:
        - scores: ``(H, W)``.

    Raises:
        ValueError: ``scores`` is not 2-D.
    """
    plt = _plt()
    fig = None
    if ax is None:
        fig, ax = plt.subplots(figsize=(3.2, 3))
    a = _np(scores)
    if a.ndim != 2:
        raise ValueError(f"scores must be an (H, W) map, got shape {a.shape}")
    top = float(np.abs(a).max())
    m = float(np.percentile(np.abs(a), clip)) if clip is not None else top
    m = m or top or 1.0
    im = ax.imshow(a, cmap="RdBu_r" if signed else "magma", vmin=-m if signed else 0.0, vmax=m,
                   interpolation="nearest")
    h, w = a.shape
    if basis == "dct":
        ax.set_xlabel("v (horizontal freq.)", fontsize=7), ax.set_ylabel("u (vertical freq.)", fontsize=7)
    else:
        ax.set_xticks([0, w // 2, w - 1], ["-N", "0", "+N"]), ax.set_yticks([0, h // 2, h - 1], ["-N", "0", "+N"])
    ax.tick_params(labelsize=6)
    ax.set_title(title, fontsize=8)
    if colorbar:
        extend = ("both" if signed else "max") if m < top else "neither"
        cb = ax.figure.colorbar(im, ax=ax, fraction=0.046, label=label, extend=extend)
        cb.ax.tick_params(labelsize=6)
    return fig or ax.figure


def method_panel(image, maps: dict, basis: str = "dct", signed: dict | None = None, suptitle: str | None = None,
                 size: float = 2.4, ncols: int = 4, clip: float | None = 99.0):
    """One image and, after it, each method's spectral attribution map, ``ncols`` panels per row.

    Each map is drawn by :func:`attribution_map` on its own colour scale (the methods'
    units differ), without a colour bar label.

    Args:
        image: the explained image, shown first (clipped to ``[0, 1]`` by :func:`to_display`).
        maps: ``{method name: map}``, the panel titles and maps.
        basis: ``"dct"`` (default) or ``"dft"``, as in :func:`attribution_map`.
        signed: ``{name: bool}``: which maps are signed; a name not in it (or None, the
            default) is signed.
        suptitle: the figure's title (default: none).
        size: inches per panel (default 2.4).
        ncols: panels per row (default 4; at most the number of panels).
        clip: the colour-scale percentile, as in :func:`attribution_map` (default 99).

    Returns:
        The matplotlib ``Figure``.

    Shape:
        - image: ``(C, H, W)`` or ``(H, W)``.
        - maps values: ``(H, W)`` each.

    Raises:
        ValueError: a map is not 2-D.
    """
    plt = _plt()
    n = len(maps)
    ncols = min(ncols, n + 1)
    nrows = int(np.ceil((n + 1) / ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(size * ncols + 0.6, size * nrows + (0.5 if suptitle else 0.2)),
                             squeeze=False)
    axes = axes.ravel()
    for ax in axes[n + 1:]:
        ax.axis("off")
    a = to_display(image)
    axes[0].imshow(a, cmap="gray" if a.ndim == 2 else None, vmin=0, vmax=1, interpolation="nearest")
    axes[0].set_xticks([]), axes[0].set_yticks([])
    axes[0].set_title("image", fontsize=8)
    for ax, (name, m) in zip(axes[1:], maps.items()):
        attribution_map(m, basis, name, ax=ax, signed=(signed or {}).get(name, True), label="", clip=clip)
    if suptitle:
        fig.suptitle(suptitle, fontsize=9)
    fig.tight_layout()
    return fig


def band_profile_plot(x, profiles: dict, xlabel: str = "band", ylabel: str = "share of |attribution|",
                      title: str = "", ax=None, xticklabels: Sequence[str] | None = None, reference=None,
                      reference_label: str = "share of coefficients"):
    """Band profiles with 95% intervals, one line per name.

    Each line's y-data are the means; the shaded areas the intervals.

    Args:
        x: the K x-values (e.g. band indices or radii).
        profiles: ``{name: profile}``; a profile is a ``(mean, lo, hi)`` triple (K values
            each), a dict with ``mean``, ``ci_low``, ``ci_high`` (e.g. a
            :class:`freqkit.attribution.RadialAttributionProfile`'s ``to_dict()``), or an
            object with those attributes (the profile itself).
        xlabel: the x-axis label (default ``"band"``).
        ylabel: the y-axis label (default ``"share of |attribution|"``).
        title: the panel's title.
        ax: draw on this matplotlib axes; default: a new figure.
        xticklabels: K tick labels (default: numeric ticks).
        reference: an optional K-vector drawn dashed grey (e.g. each band's share of the
            coefficients).
        reference_label: the reference's legend label (default ``"share of coefficients"``).

    Returns:
        The new figure, or ``ax``'s figure.

    Shape:
        - x: ``(K,)``; each profile's mean, lo, hi: ``(K,)``; reference: ``(K,)``.

    Raises:
        ValueError: a profile's mean, lo and hi do not all have the shape of ``x``.
    """
    plt = _plt()
    fig = None
    if ax is None:
        fig, ax = plt.subplots(figsize=(5, 3.4))
    xs = _np(x)
    for name, p in profiles.items():
        if isinstance(p, dict):
            mean, lo, hi = p["mean"], p["ci_low"], p["ci_high"]
        elif hasattr(p, "mean") and hasattr(p, "ci_low"):
            mean, lo, hi = p.mean, p.ci_low, p.ci_high
        else:
            mean, lo, hi = p
        mean, lo, hi = _np(mean), _np(lo), _np(hi)
        if not (mean.shape == lo.shape == hi.shape == xs.shape):
            raise ValueError(f"profiles[{name!r}]: mean, lo and hi must have {xs.shape[0]} values, "
                             f"got {mean.shape}, {lo.shape}, {hi.shape}")
        line, = ax.plot(xs, mean, marker="o", ms=3, label=name)
        ax.fill_between(xs, lo, hi, alpha=0.2, color=line.get_color())
    if reference is not None:
        ax.plot(xs, _np(reference), ls="--", color="gray", lw=1, label=reference_label)
    if xticklabels is not None:
        ax.set_xticks(xs, list(xticklabels), fontsize=7, rotation=30)
    ax.set_xlabel(xlabel), ax.set_ylabel(ylabel), ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    return fig or ax.figure


def band_heatmap_grid(images, maps, band_labels: Sequence[str], band_scores=None, suptitle: str | None = None,
                      size: float = 1.6, row_titles: Sequence[str] | None = None, clip: float | None = 99.0):
    """Where in the image each band matters: rows = images, columns = the image and one heat map per band.

    Each row shares one colour scale symmetric about 0 (red: the band's content there raises
    the output), so the bands of an image compare; it ends at the ``clip`` percentile of the
    row's ``|maps|`` (None: the maximum), so a few extreme pixels do not wash out the rest.
    The heat maps are shown unchanged.

    Args:
        images: the N images (each ``(C, H, W)`` or ``(H, W)``, shown through :func:`to_display`).
        maps: the pixel heat maps, e.g.
            :meth:`freqkit.attribution.BandPixelAttribution.heatmaps`; tensor or array.
        band_labels: the K bands' names (column titles).
        band_scores: the maps' sums, written in the titles (default: not written).
        suptitle: the figure's title (default: none).
        size: inches per panel (default 1.6).
        row_titles: N titles for the image column (default ``"image"``).
        clip: the percentile of a row's ``|maps|`` where its colour scale ends (default 99);
            None: the maximum.

    Returns:
        The matplotlib ``Figure`` (N rows, K + 1 columns).

    Shape:
        - maps: ``(N, K, H, W)``.
        - band_scores: ``(N, K)``.

    Raises:
        ValueError: ``maps`` is not 4-D, or ``band_labels`` does not have K entries.
    """
    plt = _plt()
    m = _np(maps)
    if m.ndim != 4:
        raise ValueError(f"maps must be (N, K, H, W), got shape {m.shape}")
    n, k = m.shape[:2]
    if len(band_labels) != k:
        raise ValueError(f"band_labels must have {k} entries, got {len(band_labels)}")
    s = None if band_scores is None else _np(band_scores)
    fig, axes = plt.subplots(n, k + 1, figsize=(size * (k + 1) + 0.5, (size + 0.35) * n + (0.5 if suptitle else 0.1)),
                             squeeze=False, layout="constrained")
    for i in range(n):
        a = to_display(images[i])
        axes[i, 0].imshow(a, cmap="gray" if a.ndim == 2 else None, vmin=0, vmax=1, interpolation="nearest")
        axes[i, 0].set_title(row_titles[i] if row_titles is not None else "image", fontsize=7)
        lim = (float(np.percentile(np.abs(m[i]), clip)) if clip is not None else 0.0) or float(np.abs(m[i]).max()) or 1.0
        for j in range(k):
            im = axes[i, j + 1].imshow(m[i, j], cmap="RdBu_r", vmin=-lim, vmax=lim, interpolation="nearest")
            t = band_labels[j] + (f"\nsum {s[i, j]:+.3g}" if s is not None else "")
            axes[i, j + 1].set_title(t, fontsize=7)
        cb = fig.colorbar(im, ax=list(axes[i, 1:]), fraction=0.02, pad=0.01)  # the row's shared scale
        cb.ax.tick_params(labelsize=6)
        for ax in axes[i]:
            ax.set_xticks([]), ax.set_yticks([])
    if suptitle:
        fig.suptitle(suptitle, fontsize=9)
    return fig


def topk_strip(images, recon, titles: Sequence[str] | None = None, suptitle: str | None = None,
               size: float = 1.5):
    """Row 1: the images; row 2: their reconstructions (e.g. :func:`freqkit.topk_reconstruction`).

    Both rows are clipped to ``[0, 1]`` for display (nothing else is changed); drawn by
    :func:`show_images` with one column per image.

    Args:
        images: the N images.
        recon: their N reconstructions.
        titles: N titles for the reconstructions (default ``"reconstruction"``); the images'
            titles are ``"image"``.
        suptitle: the figure's title (default: none).
        size: inches per panel (default 1.5).

    Returns:
        The matplotlib ``Figure`` (2 rows, N columns).

    Shape:
        - images: ``(N, C, H, W)`` or a sequence of ``(C, H, W)``/``(H, W)``.
        - recon: as ``images``.

    Raises:
        ValueError: ``recon`` does not have one image per image.
    """
    n = len(images)
    if len(recon) != n:
        raise ValueError(f"recon must have one image per image ({n}), got {len(recon)}")
    titles = list(titles) if titles is not None else ["reconstruction"] * n
    return show_images([to_display(v) for v in images] + [to_display(v) for v in recon],
                       ["image"] * n + titles, ncols=n, size=size, suptitle=suptitle)


_ORDER_STYLE = {"attribution": ("C3", "-"), "random": ("gray", "--"), "low_to_high": ("C0", "-."),
                "high_to_low": ("C2", ":")}


def deletion_insertion_plot(curves, title: str = "", axes=None, ylabel: str | None = None):
    """Mean deletion and insertion curves per order, with each order's mean AUC in the legend.

    The deletion/insertion test of Samek et al. 2017 ("Evaluating the visualization of what a
    deep neural network has learned") and Petsiuk et al. 2018 ("RISE: randomized input
    sampling for explanation of black-box models"), in frequency space.  Left panel: deletion, right panel: insertion;
    one line per order (``"attribution"``, ``"random"``, ``"low_to_high"``,
    ``"high_to_low"`` have fixed styles).  The lines' y-data are the curves averaged over
    images; the legend's AUC is the mean over images of the per-image areas.

    Args:
        curves: a :class:`freqkit.faithfulness.DeletionInsertionCurves` from
            :func:`freqkit.deletion_insertion_curves`.
        title: the figure's title (or, with ``axes`` given, appended to each panel's).
        axes: two matplotlib axes to draw on (deletion, insertion); default: a new figure.
        ylabel: the y-axis label; default ``"<output> of the explained class"``.

    Returns:
        The new figure, or the axes' figure.
    """
    plt = _plt()
    fig = None
    if axes is None:
        fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
        if title:
            fig.suptitle(title, fontsize=9)
    fr = _np(curves.fractions)
    for ax, kind, data, aucs in ((axes[0], "deletion", curves.deletion, curves.auc_deletion),
                                 (axes[1], "insertion", curves.insertion, curves.auc_insertion)):
        for order, v in data.items():
            c, ls = _ORDER_STYLE.get(order, (None, "-"))
            ax.plot(fr, _np(v).mean(0), color=c, ls=ls, label=f"{order} (AUC {float(aucs[order].mean()):.3f})")
        ax.set_xlabel(f"fraction of coefficients {'removed' if kind == 'deletion' else 'inserted'}")
        ax.set_ylabel(ylabel or f"{curves.output} of the explained class")
        ax.set_title(kind if fig is not None else f"{kind} {title}".strip(), fontsize=9)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    if fig is not None:
        fig.tight_layout()
    return fig or axes[0].figure


def completeness_histogram(rel_error, tol: float = 0.01, title: str = "", ax=None, bins: int = 30):
    """Histogram of relative completeness errors on a log10 axis, with the tolerance line.

    The legend gives the share of images within ``tol`` and the median (both computed here
    from the finite values of ``rel_error``; non-finite values are left out).  Errors below
    ``1e-12`` are drawn at ``-12``.

    Args:
        rel_error: per-image relative completeness errors
            ``|delta| / |f(x) - f(baseline)|`` (:func:`freqkit.relative_completeness`),
            tensor or array of any shape.
        tol: the tolerance line (default 0.01).
        title: the panel's title.
        ax: draw on this matplotlib axes; default: a new figure.
        bins: histogram bins (default 30).

    Returns:
        The new figure, or ``ax``'s figure.

    Raises:
        ValueError: ``rel_error`` holds no finite value.
    """
    plt = _plt()
    fig = None
    if ax is None:
        fig, ax = plt.subplots(figsize=(5, 3.2))
    v = _np(rel_error).reshape(-1)
    v = v[np.isfinite(v)]
    if v.size == 0:
        raise ValueError("rel_error holds no finite value")
    share = float(np.mean(v <= tol))
    lv = np.log10(np.maximum(v, 1e-12))
    ax.hist(lv, bins=bins, color="C0", alpha=0.8)
    ax.axvline(np.log10(tol), color="C3", ls="--", label=f"tolerance {tol:g}: {share:.1%} of {v.size} within")
    ax.axvline(np.log10(np.median(np.maximum(v, 1e-12))), color="black", lw=1,
               label=f"median {np.median(v):.2g}")
    ax.set_xlabel("log10 |delta| / |f(x) - f(baseline)|"), ax.set_ylabel("images")
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=7)
    return fig or ax.figure


def ground_truth_bars(tables: dict, title: str = "", ax=None):
    """Share of ``|attribution|`` on the planted band per method and planted task (grouped bars).

    One group per task, one bar per method, with its 95% interval as error bars; a black
    tick marks the band's share of the coefficients (what a uniform spread would get).  The
    bar heights are the tables' ``share`` values.

    Args:
        tables: ``{task: table}`` of :func:`freqkit.ground_truth_table` results
            (``{method: {"share", "share_ci", "coefficient_share", ...}}``), each non-empty.
        title: the panel's title.
        ax: draw on this matplotlib axes; default: a new figure.

    Returns:
        The new figure, or ``ax``'s figure.
    """
    plt = _plt()
    fig = None
    if ax is None:
        fig, ax = plt.subplots(figsize=(6, 3.4))
    tasks = list(tables)
    methods = list(dict.fromkeys(m for t in tasks for m in tables[t]))
    width = 0.8 / max(len(methods), 1)
    for j, meth in enumerate(methods):
        xs, hs, lo, hi = [], [], [], []
        for i, t in enumerate(tasks):
            if meth in tables[t]:
                r = tables[t][meth]
                xs.append(i + (j - (len(methods) - 1) / 2) * width)
                hs.append(r["share"])
                lo.append(r["share"] - r["share_ci"][0])
                hi.append(r["share_ci"][1] - r["share"])
        ax.bar(xs, hs, width, yerr=[lo, hi], capsize=2, label=meth)
    for i, t in enumerate(tasks):
        cs = next(iter(tables[t].values()))["coefficient_share"]
        ax.hlines(cs, i - 0.45, i + 0.45, color="black", lw=2, label="share of coefficients" if i == 0 else None)
    ax.set_xticks(range(len(tasks)), tasks, fontsize=8)
    ax.set_ylim(0, 1)
    ax.set_ylabel("share of |attribution| on the planted band")
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3, axis="y")
    ax.legend(fontsize=7, ncol=2)
    return fig or ax.figure


def randomisation_plot(checks: dict, title: str = "", ax=None, absolute: bool = True):
    """Model-randomisation test: Spearman correlation with the original attributions per step.

    The cascading randomisation test of Adebayo et al. 2018 ("Sanity checks for saliency
    maps"): the mean over images (NaN ignored) of the Spearman correlation between the
    original and the randomised model's attributions after each cascading step, one line
    per method.  The y-data are these per-step means.

    Args:
        checks: ``{method: RandomisationCheck}``
            (:func:`freqkit.model_randomisation_check`); the x tick labels are the last
            check's ``layers``.
        title: the panel's title.
        ax: draw on this matplotlib axes; default: a new figure.
        absolute: use the correlation of ``|scores|`` (default True) or of the signed scores.

    Returns:
        The new figure, or ``ax``'s figure.
    """
    plt = _plt()
    fig = None
    if ax is None:
        fig, ax = plt.subplots(figsize=(6, 3.4))
    layers = None
    for name, chk in checks.items():
        rho = _np(chk.spearman_abs if absolute else chk.spearman)
        ax.plot(np.arange(rho.shape[0]), np.nanmean(rho, 1), marker="o", ms=3, label=name)
        layers = chk.layers
    ax.axhline(0, color="black", lw=0.8)
    if layers is not None:
        ax.set_xticks(range(len(layers)), [f"{l}" for l in layers], rotation=60, fontsize=6, ha="right")
    ax.set_xlabel("randomised down to layer (cascading, top first)")
    ax.set_ylabel(f"Spearman rho{' of |scores|' if absolute else ''}")
    ax.set_ylim(-0.1, 1.05)
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    return fig or ax.figure


def band_component_strip(images, components, maps, band_label: str, band_scores=None, vlims=None,
                         titles: Sequence[str] | None = None, suptitle: str | None = None, size: float = 1.5):
    """One band for several images (a frame of the band slider).

    Rows: the images; the band's component of each (contrast-stretched by :func:`stretch`:
    display only); its pixel heat map (diverging, zero = white, shown unchanged).

    Args:
        images: the N images.
        components: the band's component of each image (e.g.
            ``BandPixelAttribution.components[:, k]``).
        maps: the band's pixel heat map of each image (e.g. ``heatmaps()[:, k]``).
        band_label: the band's name, in the titles.
        band_scores: the maps' sums, written in the titles (default: not written).
        vlims: colour limit per image; give the max over *all* bands so that frames compare
            (default: each map's own ``max |map|``).
        titles: N titles for the image row (default ``"image"``).
        suptitle: the figure's title (default: none).
        size: inches per panel (default 1.5).

    Returns:
        The matplotlib ``Figure`` (3 rows, N columns).

    Shape:
        - images: N of ``(C, H, W)`` or ``(H, W)``.
        - components: N of ``(C, H, W)`` or ``(H, W)``.
        - maps: ``(N, H, W)``.
        - band_scores: ``(N,)``; vlims: ``(N,)``.

    Raises:
        ValueError: ``components`` or ``maps`` does not have one entry per image.
    """
    plt = _plt()
    m = _np(maps)
    n = len(images)
    if m.shape[0] != n or len(components) != n:
        raise ValueError(f"components and maps must have one entry per image ({n}), got "
                         f"{len(components)} and {m.shape[0]}")
    lims = _np(vlims) if vlims is not None else np.abs(m).reshape(n, -1).max(1)
    s = None if band_scores is None else _np(band_scores)
    fig, axes = plt.subplots(3, n, figsize=(size * n + 0.4 + 0.4 * n, size * 3 + (0.5 if suptitle else 0.1)),
                             squeeze=False, layout="constrained")
    for j in range(n):
        a = to_display(images[j])
        axes[0, j].imshow(a, cmap="gray" if a.ndim == 2 else None, vmin=0, vmax=1, interpolation="nearest")
        axes[0, j].set_title(titles[j] if titles is not None else "image", fontsize=7)
        c = stretch(components[j])
        axes[1, j].imshow(c, cmap="gray" if c.ndim == 2 else None, vmin=0, vmax=1, interpolation="nearest")
        axes[1, j].set_title(f"{band_label} (stretched)", fontsize=7)
        lim = float(lims[j]) or 1.0
        im = axes[2, j].imshow(m[j], cmap="RdBu_r", vmin=-lim, vmax=lim, interpolation="nearest")
        axes[2, j].set_title("heat map" + (f", sum {s[j]:+.3g}" if s is not None else ""), fontsize=7)
        cb = fig.colorbar(im, ax=axes[2, j], fraction=0.046, pad=0.02)  # each image has its own scale
        cb.ax.tick_params(labelsize=6)
        for i in range(3):
            axes[i, j].set_xticks([]), axes[i, j].set_yticks([])
    if suptitle:
        fig.suptitle(suptitle, fontsize=9)
    return fig


def markdown_table(header: Sequence[str], rows: Sequence[Sequence], digits: int = 3) -> str:
    """A Markdown table (display it with ``IPython.display.Markdown``).

    Cells: floats (numpy floats included) to ``digits`` significant digits, non-empty lists
    or tuples of numbers as ``[a, b, ...]``, booleans as yes/no, None as ``-``, anything else
    with ``str`` (``|`` escaped).  Header cells are written with ``str``, unescaped.

    Args:
        header: the column titles.
        rows: the rows, each with one cell per column.
        digits: significant digits of floats (default 3).

    Returns:
        The table's lines (header, separator, rows) joined by newlines.

    Raises:
        ValueError: a row does not have one cell per column.

    Example:
        >>> from freqkit.book.viz import markdown_table
        >>> print(markdown_table(["model", "acc", "robust", "ci"],
        ...                      [["std", 0.91234, None, [0.9, 0.925]], ["at", 0.8, True, (1, 2)]]))
        | model | acc | robust | ci |
        |---|---|---|---|
        | std | 0.912 | - | [0.9, 0.925] |
        | at | 0.8 | yes | [1, 2] |
    """
    def fmt(v):
        if isinstance(v, bool):
            return "yes" if v else "no"
        if isinstance(v, (float, np.floating)):
            return f"{float(v):.{digits}g}"
        if isinstance(v, (list, tuple)) and v and all(isinstance(u, (float, int, np.floating)) and
                                                      not isinstance(u, bool) for u in v):
            return "[" + ", ".join(fmt(float(u)) for u in v) + "]"
        if v is None:
            return "-"
        return str(v).replace("|", "\\|")

    header = list(header)
    lines = ["| " + " | ".join(map(str, header)) + " |", "|" + "---|" * len(header)]
    for r in rows:
        r = list(r)
        if len(r) != len(header):
            raise ValueError(f"every row needs {len(header)} cells, got {len(r)}: {r!r}")
        lines.append("| " + " | ".join(fmt(v) for v in r) + " |")
    return "\n".join(lines)


def paired_distortion_scatter(d_low, d_high, title: str = "", ax=None, labels=("lowest band", "highest band")):
    """Per image, the minimal distortion in one band against another (log-log), with the diagonal.

    x: ``d_high``, y: ``d_low``; points below the diagonal are images the first band moves
    more cheaply.  ``inf`` in one band only (not found up to ``eps_max``) is drawn as a
    triangle on the top or right edge.  The finite positive pairs are the first line's
    data, exactly; images with zero distortion in either band, or ``inf`` in both, are not
    drawn.

    Args:
        d_low: per-image minimal distortion in the first band (e.g. the lowest), array-like.
        d_high: the same images' minimal distortion in the second band.
        title: the panel's title.
        ax: draw on this matplotlib axes; default: a new figure.
        labels: the two bands' names (default ``("lowest band", "highest band")``).

    Returns:
        The new figure, or ``ax``'s figure.

    Shape:
        - d_low: ``(N,)``.
        - d_high: ``(N,)``.
    """
    plt = _plt()
    fig = None
    if ax is None:
        fig, ax = plt.subplots(figsize=(3.8, 3.6))
    a, b = np.asarray(d_low, dtype=float), np.asarray(d_high, dtype=float)
    ok = np.isfinite(a) & np.isfinite(b) & (a > 0) & (b > 0)
    ax.plot(b[ok], a[ok], "o", ms=4, alpha=0.7, label="image")
    vals = np.concatenate([a[np.isfinite(a) & (a > 0)], b[np.isfinite(b) & (b > 0)]])
    lo, hi = (vals.min() / 1.5, vals.max() * 1.5) if vals.size else (1e-3, 1.0)
    edge = hi
    inf_a, inf_b = ~np.isfinite(a) & np.isfinite(b), np.isfinite(a) & ~np.isfinite(b)
    if inf_a.any():
        ax.plot(b[inf_a], np.full(inf_a.sum(), edge), "^", color="C3", ms=6, label=f"{labels[0]}: inf")
    if inf_b.any():
        ax.plot(np.full(inf_b.sum(), edge), a[inf_b], ">", color="C3", ms=6, label=f"{labels[1]}: inf")
    ax.plot([lo, hi], [lo, hi], color="gray", ls="--", lw=1, label="equal distortion")
    ax.set_xscale("log"), ax.set_yscale("log")
    ax.set_xlim(lo, hi * 1.3), ax.set_ylim(lo, hi * 1.3)
    ax.set_xlabel(f"minimal distortion, {labels[1]}"), ax.set_ylabel(f"minimal distortion, {labels[0]}")
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    return fig or ax.figure


def heatmap_report_figure(reports: dict, captions: dict | None = None):
    """One row per model of :func:`freqkit.heatmap_report` results.

    Columns: the error map (colour scale ``[0, 1]``), the mean-logit-drop map (left blank
    when the report has none) and the error by ring (radial profile) against the clean
    error.  Maps are drawn by :func:`fourier_heatmap_image`, unchanged.

    Args:
        reports: ``{label: report}`` of :func:`freqkit.heatmap_report` (each with
            ``maps["error"]``, ``radial["error"]``, ``clean_error`` and optionally
            ``maps["logit_change"]``); at least one.
        captions: ``{label: setting text}`` (e.g. from :func:`setting_caption`) written under
            the titles (default: none).

    Returns:
        The matplotlib ``Figure`` (one row of 3 panels per report).

    Raises:
        KeyError: a report lacks the ``"error"`` metric, ``radial`` or ``clean_error``.
    """
    plt = _plt()
    captions = captions or {}
    fig, axes = plt.subplots(len(reports), 3, figsize=(13, 3.6 * len(reports)), squeeze=False)
    for row, (label, rep) in enumerate(reports.items()):
        cap = captions.get(label, "")
        fourier_heatmap_image(rep["maps"]["error"], title=f"{label}: error rate\n{cap}", ax=axes[row, 0],
                              vmin=0, vmax=1, label="error rate")
        if "logit_change" in rep["maps"]:
            fourier_heatmap_image(rep["maps"]["logit_change"], title=f"{label}: mean logit drop\n{cap}",
                                  ax=axes[row, 1], cmap="magma", label="logit(x) - logit(x + pert.)")
        else:
            axes[row, 1].axis("off")
        c, v = rep["radial"]["error"]
        ax = axes[row, 2]
        plot_curves(c, {"error rate": v}, "frequency radius (x Nyquist)", "error rate",
                    f"{label}: error by frequency (ring mean)", ax=ax, chance=rep["clean_error"])
        ax.get_lines()[-1].set_label("clean error")
        ax.legend(fontsize=7)
        ax.set_ylim(-0.03, 1.03)
    fig.tight_layout()
    return fig


# ============================================================================ suites of models (chapter 8)

def _seeds_by_images(values, name: str) -> np.ndarray:
    a = values.detach().cpu().double().numpy() if isinstance(values, torch.Tensor) else np.asarray(values, dtype=float)
    a = a[None, :] if a.ndim == 1 else a
    if a.ndim != 2 or a.size == 0:
        raise ValueError(f"{name} must be (n_seeds, n_images) or (n_images,), got shape {a.shape}")
    return a


def suite_distribution_plot(values: dict, ylabel: str, title: str = "", ax=None, reference: float | None = None,
                            reference_label: str = ""):
    """Per suite of models, the distribution of a per-image measure (box) and each seed's mean (dots).

    Each suite's box is drawn over all its finite values (every seed and image pooled;
    NaN and inf, a measure undefined for that image, are left out and their count is put
    in the tick label); the dots beside it are the mean over the finite images of each
    seed, exactly.  Nothing is rescaled.

    Args:
        values: ``{suite name: (S, N) array-like}`` (``(N,)``: one seed), non-empty.
        ylabel: the y-axis label.
        title: the panel's title.
        ax: draw on this matplotlib axes; default: a new figure.
        reference: draw a dashed horizontal line at this value (e.g. 0 = 1 JND on a log10
            scale); default: none.
        reference_label: the legend label of ``reference``.

    Returns:
        The new figure, or ``ax``'s figure.

    Raises:
        ValueError: ``values`` empty, or an entry that is not 1-D or 2-D.

    Example:
        >>> import numpy as np
        >>> from freqkit.book import viz
        >>> fig = viz.suite_distribution_plot({"a": np.zeros((2, 5)), "b": np.ones(5)}, "value")
        >>> [t.get_text() for t in fig.axes[0].get_xticklabels()]
        ['a\\n2 seed(s)', 'b\\n1 seed(s)']
    """
    if not isinstance(values, dict) or not values:
        raise ValueError("values must be a non-empty {suite: (n_seeds, n_images) array} dict")
    arrays = {k: _seeds_by_images(v, f"values[{k!r}]") for k, v in values.items()}
    plt = _plt()
    fig = None
    if ax is None:
        fig, ax = plt.subplots(figsize=(1.6 * len(arrays) + 1.5, 3.4))
    labels = []
    for i, (name, a) in enumerate(arrays.items()):
        ok = np.isfinite(a)
        pooled = a[ok]
        if pooled.size:
            ax.boxplot([pooled], positions=[i], widths=0.5, showfliers=True, flierprops={"ms": 2, "alpha": 0.4})
        means = [float(r[np.isfinite(r)].mean()) if np.isfinite(r).any() else np.nan for r in a]
        ax.plot(np.full(len(means), i + 0.35), means, "o", color=f"C{i % 10}", ms=5,
                label="seed means" if i == 0 else None)
        left = int((~ok).sum())
        labels.append(f"{name}\n{a.shape[0]} seed(s)" + (f", {left} undefined" if left else ""))
    ax.set_xticks(range(len(arrays)), labels, fontsize=7)
    ax.set_xlim(-0.6, len(arrays) - 0.2)
    if reference is not None:
        ax.axhline(reference, color="gray", ls="--", lw=1, label=reference_label or None)
    ax.set_ylabel(ylabel), ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3, axis="y")
    ax.legend(fontsize=7)
    return fig or ax.figure


def penalty_sweep_plot(lams, clean, robust, visibility, reference: dict | None = None, title: str = "", axes=None,
                       visibility_label: str = "median log10 visibility (JND)"):
    """The trade-off of a penalty weight: clean and robust accuracy, and visibility, against lambda.

    Two panels sharing the (logarithmic) lambda axis: left, clean accuracy and robust
    accuracy; right, the visibility of the minimal adversarial perturbation (e.g. the
    median over images of ``log10`` JND) with the detection threshold (0 on a log10 scale)
    dotted.  ``reference`` (the model trained without the penalty) is drawn as dashed
    horizontal lines in the colour of the curve it belongs to.  The curves are the values
    given, exactly, in the order of ``lams``.

    Args:
        lams: the penalty weights, each ``> 0`` (a log axis), at least one.
        clean: clean accuracy per weight.
        robust: robust accuracy per weight.
        visibility: the visibility measure per weight (NaN: undefined, not drawn).
        reference: ``{"clean", "robust", "visibility"}`` of the unpenalised model (any subset);
            default: none.
        title: the figure's title (above both panels).
        axes: two matplotlib axes to draw on; default: a new figure.
        visibility_label: the right panel's y-axis label.

    Returns:
        The new figure, or the axes' figure.

    Raises:
        ValueError: no weight, a weight ``<= 0``, or series of other lengths than ``lams``.

    Example:
        >>> from freqkit.book import viz
        >>> fig = viz.penalty_sweep_plot([0.3, 1, 3], [0.9, 0.85, 0.7], [0.0, 0.02, 0.05], [-0.5, -0.3, 0.1])
        >>> fig.axes[1].get_lines()[0].get_ydata().tolist()
        [-0.5, -0.3, 0.1]
    """
    lams = [float(v) for v in lams]
    if not lams or any(not v > 0 for v in lams):
        raise ValueError(f"lams must be at least one weight > 0, got {lams}")
    series = {"clean": clean, "robust": robust, "visibility": visibility}
    for k, v in series.items():
        if len(v) != len(lams):
            raise ValueError(f"{k} must have one value per weight ({len(lams)}), got {len(v)}")
    plt = _plt()
    fig = None
    if axes is None:
        fig, axes = plt.subplots(1, 2, figsize=(10, 3.4))
    ref = dict(reference or {})
    a0, a1 = axes
    for k, c in (("clean", "C0"), ("robust", "C1")):
        a0.plot(lams, [float(v) for v in series[k]], marker="o", color=c, label=f"{k} accuracy")
        if ref.get(k) is not None:
            a0.axhline(float(ref[k]), color=c, ls="--", lw=1, label=f"{k}, no penalty")
    a0.set_ylim(-0.02, 1.02)
    a0.set_ylabel("accuracy")
    a1.plot(lams, [float(v) for v in series["visibility"]], marker="o", color="C2", label="penalised")
    if ref.get("visibility") is not None:
        a1.axhline(float(ref["visibility"]), color="C2", ls="--", lw=1, label="no penalty")
    a1.axhline(0.0, color="gray", ls=":", lw=1, label="detection threshold (1 JND)")
    a1.set_ylabel(visibility_label)
    for a in (a0, a1):
        a.set_xscale("log")
        a.set_xticks(lams, [f"{v:g}" for v in lams])
        a.minorticks_off()
        a.set_xlabel("penalty weight lambda")
        a.grid(alpha=0.3)
        a.legend(fontsize=7)
    if title:
        a0.figure.suptitle(title, fontsize=9)
    return fig or a0.figure


def suite_perturbation_grid(x, perturbed: dict, values: dict | None = None, value_format: str = "{:.2g}",
                            suptitle: str | None = None, size: float = 1.4):
    """Images and, per suite of models, their adversarial versions and perturbations, one column per image.

    Rows: the clean images; then, for each suite, its adversarial images and its
    perturbation ``x_adv - x``.  The perturbation rows of one column share one scale (the
    largest ``|delta|`` of that image over all suites; ``0.5 + delta / (2 max)``, zero is
    mid-grey; display only), so a larger perturbation *looks* larger across suites.
    ``values[suite][j]`` (e.g. the visibility in JND) is written above each adversarial
    image; NaN is written as "-" (no perturbation found).

    Args:
        x: clean images ``(N, C, H, W)`` in ``[0, 1]``.
        perturbed: ``{suite: (N, C, H, W) adversarial images}``, at least one.
        values: ``{suite: (N,) numbers}`` to write (default: none).
        value_format: format of a value (default ``"{:.2g}"``).
        suptitle: the figure's title.
        size: inches per panel.

    Returns:
        The matplotlib ``Figure`` (``1 + 2 x len(perturbed)`` rows, ``N`` columns).

    Raises:
        ValueError: no suite, or adversarial images of another shape than ``x``.

    Example:
        >>> import torch
        >>> from freqkit.book import viz
        >>> x = torch.rand(2, 1, 8, 8)
        >>> fig = viz.suite_perturbation_grid(x, {"a": x, "b": (x + 0.1).clamp(0, 1)})
        >>> len(fig.axes)
        10
    """
    if not isinstance(perturbed, dict) or not perturbed:
        raise ValueError("perturbed must be a non-empty {suite: adversarial images} dict")
    x = x.detach().cpu().double()
    deltas = {}
    for k, xa in perturbed.items():
        xa = xa.detach().cpu().double()
        if xa.shape != x.shape:
            raise ValueError(f"perturbed[{k!r}] must have the shape of x {tuple(x.shape)}, got {tuple(xa.shape)}")
        deltas[k] = (xa, xa - x)
    plt = _plt()
    n, rows = x.shape[0], 1 + 2 * len(deltas)
    scale = torch.stack([d.abs().flatten(1).amax(1) for _, d in deltas.values()]).amax(0)  # (N,)
    fig, axes = plt.subplots(rows, n, figsize=(size * n + 1.0, size * rows + (0.4 if suptitle else 0)),
                             squeeze=False)
    for j in range(n):
        a = to_display(x[j])
        axes[0, j].imshow(a, cmap="gray" if a.ndim == 2 else None, vmin=0, vmax=1, interpolation="nearest")
        m = float(scale[j])
        for s, (k, (xa, d)) in enumerate(deltas.items()):
            ia, ip = axes[1 + 2 * s, j], axes[2 + 2 * s, j]
            a = to_display(xa[j])
            ia.imshow(a, cmap="gray" if a.ndim == 2 else None, vmin=0, vmax=1, interpolation="nearest")
            p = to_display(0.5 + d[j] / (2 * m) if m > 0 else torch.full_like(d[j], 0.5))
            ip.imshow(p, cmap="gray" if p.ndim == 2 else None, vmin=0, vmax=1, interpolation="nearest")
            if values is not None and k in values:
                v = float(values[k][j])
                ia.set_title("-" if not math.isfinite(v) else value_format.format(v), fontsize=7)
            if j == 0:
                ia.set_ylabel(f"{k}\nadversarial", fontsize=7)
                ip.set_ylabel(f"{k}\nperturbation", fontsize=7)
        if j == 0:
            axes[0, j].set_ylabel("image", fontsize=7)
        for i in range(rows):
            axes[i, j].set_xticks([]), axes[i, j].set_yticks([])
    if suptitle:
        fig.suptitle(suptitle, fontsize=9)
    fig.tight_layout()
    return fig
