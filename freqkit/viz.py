"""Figures for the book: images, bases, spectra, curves.  Nothing that computes imports this.

Every function returns a matplotlib ``Figure`` (or draws on a given ``ax``) and never
calls ``plt.show()``, so figures can be rendered to PNG frames for the static widgets in
:mod:`freqkit.widgets`.
"""
from __future__ import annotations

import io
from typing import Sequence

import numpy as np
import torch

from .transforms import dct_matrix, frequency_radius

__all__ = ["to_display", "stretch", "figure_to_png", "show_images", "basis_grid", "spectrum_image",
           "plot_curves", "setting_caption"]


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
    """``(C, H, W)`` / ``(H, W)`` tensor or array in [0, 1] -> ``(H, W)`` or ``(H, W, 3)`` numpy, clipped."""
    a = img.detach().cpu().double().numpy() if isinstance(img, torch.Tensor) else np.asarray(img, dtype=float)
    if a.ndim == 3:
        a = a[0] if a.shape[0] == 1 else np.moveaxis(a, 0, -1)
    return np.clip(a, 0.0, 1.0)


def stretch(img) -> np.ndarray:
    """Min-max stretch to [0, 1] for *display only* (high-pass images are near-zero-mean).

    Figures that use it say so in their title: the stretch changes contrast, not content.
    """
    a = img.detach().cpu().double().numpy() if isinstance(img, torch.Tensor) else np.asarray(img, dtype=float)
    lo, hi = a.min(), a.max()
    return to_display((a - lo) / (hi - lo) if hi > lo else np.zeros_like(a))


def figure_to_png(fig, dpi: int = 100, close: bool = True) -> bytes:
    """Render a figure to PNG bytes (for widget frames) and close it."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
    if close:
        _plt().close(fig)
    return buf.getvalue()


def show_images(images: Sequence, titles: Sequence[str] | None = None, ncols: int | None = None,
                size: float = 1.6, suptitle: str | None = None, cmap_gray: str = "gray"):
    """A grid of images (each ``(C, H, W)``/``(H, W)`` in [0, 1], or already-displayable arrays)."""
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

    Entry ``(u, v)`` of the grid is the image whose only non-zero coefficient is ``(u, v)``.
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
    """Show a per-coefficient map ``(H, W)`` (e.g. mean power), log10 scale by default."""
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
    """Line plot of several named curves over ``x``; ``bands`` maps a name to (lo, hi) arrays."""
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
    """One line stating a figure's setting, e.g. ``data set=CIFAR-10 | model=... | n=1000``."""
    return " | ".join(f"{k.replace('_', ' ')}={v}" for k, v in setting.items())


def radius_map(h: int, w: int, basis: str = "dct") -> torch.Tensor:
    """Convenience for figures: the normalised radius per coefficient."""
    return frequency_radius(h, w, basis)
