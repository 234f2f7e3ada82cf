"""Which frequencies does a model use?  Accuracy on low-/high-pass filtered images.

After Wang et al. 2019, "High-frequency component helps explain the generalization of
convolutional neural networks" (CVPR 2020; arXiv 1905.13545): a model that still
classifies images from which everything but the high frequencies was removed uses
information a person barely sees.
"""
from __future__ import annotations

from typing import Sequence

import torch

from ._validate import check_choice, check_images, check_positive_int, check_tensor
from .results import verdict
from .stats import wilson_interval
from .training import predict_logits
from .transforms import dct2, high_pass, low_pass

__all__ = ["filtered_accuracy", "high_frequency_energy", "h1_verdict"]


def filtered_accuracy(model, x: torch.Tensor, y: torch.Tensor, cutoffs: Sequence[float], mode: str = "low",
                      basis: str = "dct", kind: str = "radial", batch_size: int = 500,
                      clip: bool = False) -> dict:
    """Accuracy of ``model`` on filtered copies of ``x`` for each cut-off radius.

    Args:
        model: classifier taking ``(N, C, H, W)`` images in [0, 1] (normalisation inside).
        x: images ``(N, C, H, W)`` in [0, 1]; y: labels ``(N,)``.
        cutoffs: normalised radii (units of Nyquist, 0 .. sqrt 2).
        mode: ``"low"`` keeps radius <= cut-off, ``"high"`` keeps radius > cut-off.
        basis: ``"dct"`` or ``"dft"``; kind: ``"radial"`` or ``"ring"``.
        clip: clip filtered images to [0, 1].  Off by default, as in Wang et al.: a
            high-pass image is near-zero-mean and clipping would destroy it.

    Returns a dict with ``cutoffs``, ``accuracy``, 95% Wilson ``ci_lo``/``ci_hi``, ``n``,
    ``energy_kept`` (mean fraction of the image's non-DC energy that survives the filter).
    """
    check_images(x, "x", unit_range=True)
    check_tensor(y, "y", ndim=1, floating=False)
    if y.shape[0] != x.shape[0]:
        raise ValueError(f"y must have one label per image: x has {x.shape[0]}, y has {y.shape[0]}")
    check_choice(mode, "mode", ("low", "high"))
    check_positive_int(batch_size, "batch_size")
    if len(cutoffs) == 0:
        raise ValueError("cutoffs must hold at least one radius")
    model.eval()
    filt = low_pass if mode == "low" else high_pass
    c = dct2(x.double())
    c[..., 0, 0] = 0  # non-DC energy: the mean alone carries no class information a person sees
    total = (c ** 2).sum((1, 2, 3)).clamp_min(1e-12)
    acc, lo, hi, kept = [], [], [], []
    for cut in cutoffs:
        parts = []
        for i in range(0, x.shape[0], batch_size):
            xf = filt(x[i:i + batch_size], float(cut), basis=basis, kind=kind)
            parts.append(xf.clamp(0, 1) if clip else xf)
        xf = torch.cat(parts)
        pred = predict_logits(model, xf, batch_size).argmax(1)
        k = int((pred == y).sum())
        acc.append(k / len(y))
        a, b = wilson_interval(k, len(y))
        lo.append(a), hi.append(b)
        cf = dct2(xf.double())
        cf[..., 0, 0] = 0
        kept.append(float(((cf ** 2).sum((1, 2, 3)) / total).mean()))
    return {"cutoffs": [float(v) for v in cutoffs], "accuracy": acc, "ci_lo": lo, "ci_hi": hi, "n": len(y),
            "energy_kept": kept, "mode": mode, "basis": basis, "kind": kind}


def high_frequency_energy(x: torch.Tensor, cutoff: float, basis: str = "dct") -> torch.Tensor:
    """Per image, the fraction of non-DC energy above ``cutoff``: ``(N,)`` in [0, 1]."""
    check_images(x, "x")
    c = dct2(x.double())
    c[..., 0, 0] = 0
    hp = high_pass(x.double(), cutoff, basis=basis)
    return (hp ** 2).sum((1, 2, 3)) / (c ** 2).sum((1, 2, 3)).clamp_min(1e-12)


def h1_verdict(high: dict, cutoff: float, chance: float, margin: float = 0.05, max_energy: float = 0.2,
               dataset: str = "") -> dict:
    """H1: the CNN uses high frequencies that humans barely see.

    Rule: at the high-pass cut-off ``cutoff`` (taken from ``high["cutoffs"]``), the
    filtered images keep at most ``max_energy`` of the non-DC energy (so to a person they
    are faint, near-invisible texture), and the lower end of the 95% Wilson interval of
    the model's accuracy on them exceeds chance by at least ``margin``.  Supported if
    both hold; rejected if the energy condition holds but the accuracy condition fails;
    inconclusive if the filtered images are not faint enough to test the claim.
    """
    if high.get("mode") != "high":
        raise ValueError("high must be the result of filtered_accuracy(..., mode='high')")
    cuts = high["cutoffs"]
    i = min(range(len(cuts)), key=lambda j: abs(cuts[j] - cutoff))
    faint = high["energy_kept"][i] <= max_energy
    above = high["ci_lo"][i] >= chance + margin
    supported = (faint and above) if faint else None
    rule = (f"H1 supported if, at high-pass cut-off r={cuts[i]:.3g} x Nyquist, the images keep <= "
            f"{max_energy:.0%} of their non-DC energy and the 95% CI lower bound of accuracy is >= chance "
            f"({chance:.0%}) + {margin:.0%}; rejected if faint but not above; inconclusive if not faint")
    return verdict("H1: CNNs use high frequencies that humans barely see" + (f" ({dataset})" if dataset else ""),
                   rule, supported,
                   {"cutoff": cuts[i], "accuracy": high["accuracy"][i], "ci_lo": high["ci_lo"][i],
                    "ci_hi": high["ci_hi"][i], "energy_kept": high["energy_kept"][i], "n": high["n"],
                    "chance": chance})
