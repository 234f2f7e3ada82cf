"""Input checks shared by every module: each error names the argument and what was expected.

A private module: its functions are used across freqkit, but are not part of the public API.
"""
from __future__ import annotations

import math

import torch

__all__ = ["check_tensor", "check_images", "check_positive_int", "check_choice", "check_mask", "check_number",
           "check_labels", "check_label_range", "check_model_output"]


def check_tensor(x, name: str, *, min_dim: int = 0, ndim: int | None = None,
                 finite: bool = True, floating: bool = True) -> torch.Tensor:
    """Return ``x`` if it is a tensor of the expected rank, dtype and finiteness, else raise.

    Args:
        x: the value to check.
        name: the argument's name, used in the error messages.
        min_dim: the least number of dims.
        ndim: the exact number of dims (``None``: any); checked before ``min_dim``.
        finite: reject NaN and inf (floating-point and complex tensors only).
        floating: require a floating-point or complex dtype.

    Returns:
        ``x`` unchanged.

    Raises:
        TypeError: ``x`` is not a tensor, or (``floating``) has an integer or bool dtype.
        ValueError: ``x`` has not ``ndim`` dims or fewer than ``min_dim``, or (``finite``)
            holds NaN or inf.
    """
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


def check_images(x, name: str = "x", *, unit_range: bool = False, nonempty: bool = False) -> torch.Tensor:
    """Return ``x`` if it is a batch of images: a finite float tensor ``(N, C, H, W)``.

    Args:
        x: the value to check.
        name: the argument's name, used in the error messages.
        unit_range: also require every pixel in ``[0, 1]`` (with a tolerance of 1e-6) and at
            least one image (``N >= 1``).
        nonempty: require at least one image (``N >= 1``) without checking the range.

    Returns:
        ``x`` unchanged.

    Shape:
        - x: ``(N, C, H, W)``

    Raises:
        TypeError: ``x`` is not a tensor or not floating-point.
        ValueError: ``x`` is not 4-D, holds NaN or inf, (``unit_range``) has a pixel outside
            ``[0, 1]``, or (``unit_range`` or ``nonempty``) holds no image: "x holds no
            images (N = 0)".
    """
    check_tensor(x, name, ndim=4)
    if (unit_range or nonempty) and x.shape[0] == 0:
        raise ValueError(f"{name} holds no images (N = 0), shape {tuple(x.shape)}")
    if unit_range and x.numel():
        lo, hi = float(x.min()), float(x.max())
        if lo < -1e-6 or hi > 1 + 1e-6:
            raise ValueError(f"{name} must hold pixel values in [0, 1], got range [{lo:.4g}, {hi:.4g}]")
    return x


def check_positive_int(v, name: str, minimum: int = 1) -> int:
    """Return ``v`` if it is an int (not a bool) ``>= minimum``, else raise.

    Args:
        v: the value to check; numpy integers and floats are rejected.
        name: the argument's name, used in the error message.
        minimum: the least allowed value.

    Returns:
        ``v`` unchanged.

    Raises:
        ValueError: ``v`` is not an int, is a bool, or is below ``minimum``.
    """
    if isinstance(v, bool) or not isinstance(v, int) or v < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {v!r}")
    return v


def check_choice(v, name: str, choices) -> str:
    """Return ``v`` if it is one of ``choices``, else raise.

    Args:
        v: the value to check (compared with ``in``).
        name: the argument's name, used in the error message.
        choices: the allowed values (any container; listed sorted by ``str`` in the message).

    Returns:
        ``v`` unchanged.

    Raises:
        ValueError: ``v`` is not in ``choices``.
    """
    if v not in choices:
        raise ValueError(f"{name} must be one of {sorted(choices, key=str)}, got {v!r}")
    return v


def check_number(v, name: str, lo: float = 0.0, lo_open: bool = True, hi: float = math.inf) -> float:
    """Return ``float(v)`` for a finite real number in ``(lo, hi]`` (``[lo, hi]`` with ``lo_open=False``).

    Args:
        v: the value to check: an int or float (not a bool, not a numpy scalar other than
            ``numpy.float64``, which subclasses float).
        name: the argument's name, used in the error message.
        lo: the lower bound, exclusive unless ``lo_open=False``.
        lo_open: whether ``lo`` itself is excluded.
        hi: the upper bound, inclusive (default ``inf``: none).

    Returns:
        ``v`` as a float.

    Raises:
        ValueError: ``v`` is not a finite int or float, is a bool, or lies outside the range.
    """
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) \
            or (v <= lo if lo_open else v < lo) or v > hi:
        raise ValueError(f"{name} must be a finite number {'>' if lo_open else '>='} {lo}"
                         + (f" and <= {hi}" if math.isfinite(hi) else "") + f", got {v!r}")
    return float(v)


def check_mask(mask, name: str, h: int, w: int, *, allow_stack: bool = False) -> torch.Tensor:
    """Return a frequency mask as a bool tensor, after checking its shape, values and bands.

    A frequency mask is a boolean or 0/1 tensor ``(H, W)`` (or, with ``allow_stack``, a stack
    ``(K, H, W)`` of K band masks); every mask (band) must select at least one frequency.

    Args:
        mask: the value to check.
        name: the argument's name, used in the error messages.
        h: the expected height H.
        w: the expected width W.
        allow_stack: also accept ``(K, H, W)``.

    Returns:
        ``mask`` itself if it is bool, else ``mask.bool()``.

    Shape:
        - mask: ``(H, W)`` or ``(K, H, W)``
        - output: the same.

    Raises:
        TypeError: ``mask`` is not a tensor.
        ValueError: ``mask`` has another shape, holds values other than 0 and 1, or is empty
            (at a band, for a stack).
    """
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
    """Return integer class labels ``(n,)`` as int64 on ``device``.

    Args:
        y: the labels, an integer tensor (any integer dtype; not bool).
        n: the expected number of labels (the batch size of ``x``).
        device: the device to move them to.
        name: the argument's name, used in the error messages.

    Returns:
        ``y`` as int64 on ``device`` (a copy only where dtype or device change).  The range
        is not checked (see :func:`check_label_range`).

    Shape:
        - y: ``(n,)``

    Raises:
        TypeError: ``y`` is not a tensor, or is bool, floating-point or complex.
        ValueError: ``y`` is not 1-D or has not ``n`` entries.
    """
    if not isinstance(y, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor of class indices, got {type(y).__name__}")
    if y.dtype == torch.bool or y.is_floating_point() or y.is_complex():
        raise TypeError(f"{name} must hold integer class indices, got dtype {y.dtype}")
    if y.dim() != 1 or y.shape[0] != n:
        raise ValueError(f"{name} must have shape ({n},) to match x, got {tuple(y.shape)}")
    return y.to(device=device, dtype=torch.long)


def check_label_range(y: torch.Tensor, n_classes: int, name: str = "y") -> None:
    """Raise unless every label indexes one of the model's ``n_classes`` outputs.

    Args:
        y: integer labels (any shape); an empty tensor passes.
        n_classes: the number of logits of the model.
        name: the argument's name, used in the error message.

    Returns:
        None.

    Raises:
        ValueError: a label below 0 or at least ``n_classes``.
    """
    if y.numel() and (int(y.min()) < 0 or int(y.max()) >= n_classes):
        raise ValueError(f"{name} must hold class indices in [0, {n_classes - 1}] (the model has "
                         f"{n_classes} outputs), got range [{int(y.min())}, {int(y.max())}]")


def check_model_output(out, model, what: str = "model") -> torch.Tensor:
    """Raise unless a model returned finite ``(N, n_classes)`` scores; returns ``out``.

    A NaN logit has no argmax that means anything (``argmax`` of NaN is 0), so accuracies,
    attack successes and heat maps computed from it would be silently wrong.

    Args:
        out: what ``model`` returned.
        model: the model (named in the message by its class).
        what: how the caller refers to the model (``"model"``, ``"the defended model"``).

    Returns:
        ``out`` unchanged.

    Raises:
        ValueError: ``out`` is not a 2-D tensor, or holds NaN or inf.
    """
    name = type(model).__name__
    if not isinstance(out, torch.Tensor) or out.dim() != 2:
        shape = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        raise ValueError(f"{what} ({name}) must return scores of shape (N, n_classes), got {shape}")
    if (out.is_floating_point() or out.is_complex()) and not bool(torch.isfinite(out).all()):
        bad = int((~torch.isfinite(out)).any(1).sum())
        raise ValueError(f"{what} ({name}) returned non-finite scores (NaN or inf) for {bad} of {out.shape[0]} "
                         "images; check its weights (a corrupt or diverged checkpoint) and its input")
    return out
