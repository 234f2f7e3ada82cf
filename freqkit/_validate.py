"""Input checks shared by every module: each error names the argument and what was expected.

A private module: its functions are used across freqkit, but are not part of the public API.
"""
from __future__ import annotations

import math

import torch

__all__ = ["check_tensor", "check_images", "check_positive_int", "check_choice", "check_mask", "check_number",
           "check_labels", "check_label_range"]


def check_tensor(x, name: str, *, min_dim: int = 0, ndim: int | None = None,
                 finite: bool = True, floating: bool = True) -> torch.Tensor:
    """Raise a clear error unless ``x`` is a tensor of the expected rank, dtype and finiteness."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if ndim is not None and x.dim() != ndim:
        raise ValueError(f"{name} must have {ndim} dimensions, got shape {tuple(x.shape)}")
    if x.dim() < min_dim:
        raise ValueError(f"{name} must have at least {min_dim} dimensions, got shape {tuple(x.shape)}")
    if floating and not (x.is_floating_point() or x.is_complex()):
        raise TypeError(f"{name} must be a floating-point tensor, got dtype {x.dtype}")
    if finite and (x.is_floating_point() or x.is_complex()) and not bool(torch.isfinite(x).all()):
        raise ValueError(f"{name} contains non-finite values (NaN or inf)")
    return x


def check_images(x, name: str = "x", *, unit_range: bool = False) -> torch.Tensor:
    """Images are float ``(N, C, H, W)``; with ``unit_range`` the pixels must lie in ``[0, 1]``."""
    check_tensor(x, name, ndim=4)
    if unit_range:
        lo, hi = float(x.min()), float(x.max())
        if lo < -1e-6 or hi > 1 + 1e-6:
            raise ValueError(f"{name} must hold pixel values in [0, 1], got range [{lo:.4g}, {hi:.4g}]")
    return x


def check_positive_int(v, name: str, minimum: int = 1) -> int:
    """``v`` itself if it is an int (not a bool) ``>= minimum``, else a ValueError naming ``name``."""
    if isinstance(v, bool) or not isinstance(v, int) or v < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {v!r}")
    return v


def check_choice(v, name: str, choices) -> str:
    """``v`` itself if it is one of ``choices``, else a ValueError listing them."""
    if v not in choices:
        raise ValueError(f"{name} must be one of {sorted(choices, key=str)}, got {v!r}")
    return v


def check_number(v, name: str, lo: float = 0.0, lo_open: bool = True, hi: float = math.inf) -> float:
    """``float(v)`` for a finite real number in ``(lo, hi]`` (``[lo, hi]`` with ``lo_open=False``)."""
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) \
            or (v <= lo if lo_open else v < lo) or v > hi:
        raise ValueError(f"{name} must be a finite number {'>' if lo_open else '>='} {lo}"
                         + (f" and <= {hi}" if math.isfinite(hi) else "") + f", got {v!r}")
    return float(v)


def check_mask(mask, name: str, h: int, w: int, *, allow_stack: bool = False) -> torch.Tensor:
    """A frequency mask is a boolean or 0/1 tensor ``(H, W)`` (or ``(K, H, W)`` with ``allow_stack``)."""
    if not isinstance(mask, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor mask, got {type(mask).__name__}")
    dims = (2, 3) if allow_stack else (2,)
    if mask.dim() not in dims or tuple(mask.shape[-2:]) != (h, w):
        want = "(H, W)" + (" or (K, H, W)" if allow_stack else "")
        raise ValueError(f"{name} must have shape {want} = (..., {h}, {w}), got {tuple(mask.shape)}")
    if mask.dtype != torch.bool:
        if not bool(((mask == 0) | (mask == 1)).all()):
            raise ValueError(f"{name} must be boolean or hold only 0 and 1")
        mask = mask.bool()
    flat = mask.reshape(-1, h * w)
    empty = (~flat.any(dim=1)).nonzero().flatten().tolist()
    if empty:
        raise ValueError(f"{name} is empty (selects no frequency)" + (f" at band(s) {empty}" if mask.dim() == 3 else ""))
    return mask


def check_labels(y, n: int, device, name: str = "y") -> torch.Tensor:
    """Integer class labels ``(n,)`` as int64 on ``device``."""
    if not isinstance(y, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor of class indices, got {type(y).__name__}")
    if y.dtype == torch.bool or y.is_floating_point() or y.is_complex():
        raise TypeError(f"{name} must hold integer class indices, got dtype {y.dtype}")
    if y.dim() != 1 or y.shape[0] != n:
        raise ValueError(f"{name} must have shape ({n},) to match x, got {tuple(y.shape)}")
    return y.to(device=device, dtype=torch.long)


def check_label_range(y: torch.Tensor, n_classes: int, name: str = "y") -> None:
    """Raise unless every label indexes one of the model's ``n_classes`` outputs."""
    if y.numel() and (int(y.min()) < 0 or int(y.max()) >= n_classes):
        raise ValueError(f"{name} must hold class indices in [0, {n_classes - 1}] (the model has "
                         f"{n_classes} outputs), got range [{int(y.min())}, {int(y.max())}]")
