"""The machinery that attribution methods and their faithfulness checks share (private).

Turning logits into the explained quantity (:class:`OutputHead`), baselines, target
resolution, batched forward passes, and the evaluation of many coefficient variants of
each image (:func:`eval_variants`: occlusion, Shapley coalitions, deletion and insertion
curves are all "these coefficients from x, the others from the baseline").
"""
from __future__ import annotations

import math
import numbers
from typing import Callable

import numpy as np
import torch
from torch import nn

from ._runtime import chunks
from ._validate import check_mask, check_model_output, check_positive_int, check_tensor

__all__ = ["OUTPUTS", "DEFAULT_EVAL_BATCH", "OutputHead", "check_internal_batch", "prepare_baseline", "check_masks",
           "resolve_target", "forward_batched", "pick", "eval_variants"]

#: The quantities an attribution can explain: the target class's logit, probability or log-probability.
OUTPUTS = ("logit", "prob", "log_prob")
# Perturbation methods evaluate many masked copies of each image; without a cap a 32x32
# data set times 256 coalitions would not fit in memory.
#: Default number of model inputs per forward pass for the perturbation methods.
DEFAULT_EVAL_BATCH = 256


class OutputHead(nn.Module):
    """Turn a model's logits into the quantity being explained (logit, probability, log-probability).

    ``OutputHead(f, output)(*args)`` is ``f(*args)`` (``"logit"``), its softmax
    (``"prob"``) or its log-softmax (``"log_prob"``) over the class dimension.  An
    ``nn.Module`` ``f`` becomes a submodule.  Every output of ``f`` is checked
    (:func:`freqkit._validate.check_model_output`: 2-D and finite) before it is used, so a
    model returning NaN (a diverged checkpoint) is an error naming it, not a score.

    Args:
        f: a callable returning ``(N, n_classes)`` scores (a pixel model or a
            :class:`freqkit.FrequencyModel`).
        output: one of :data:`OUTPUTS`; not checked here (callers check it), and any other
            value gives the logits.
        model: the model named in error messages (default ``None``: ``f``), e.g. the pixel
            model inside a :class:`freqkit.FrequencyModel`.

    Shape:
        - output of ``forward``: ``(N, n_classes)``.

    Raises:
        ValueError: (on call) ``f`` returns anything but a 2-D tensor, or NaN or inf.
    """

    def __init__(self, f: Callable, output: str, model=None):
        super().__init__()
        self.f = f
        self.output = output
        # Only for messages; kept out of the module tree (a plain attribute would register a Module).
        self.__dict__["named_model"] = f if model is None else model

    def forward(self, *args):
        """``f(*args)`` turned into ``output``, ``(N, n_classes)``; ValueError unless ``f`` gives finite 2-D scores."""
        out = check_model_output(self.f(*args), self.named_model)
        if self.output == "prob":
            return torch.softmax(out, dim=1)
        if self.output == "log_prob":
            return torch.log_softmax(out, dim=1)
        return out


def check_internal_batch(internal_batch_size, name: str = "internal_batch_size"):
    """Check an optional batch limit.

    Args:
        internal_batch_size: ``None`` (no limit / the default) or an integer >= 1.
        name: the argument name used in the error message.

    Returns:
        ``internal_batch_size`` unchanged.

    Raises:
        ValueError: not ``None`` and not an integer >= 1 (a bool is refused).
    """
    if internal_batch_size is not None:
        check_positive_int(internal_batch_size, name)
    return internal_batch_size


def prepare_baseline(baseline, x: torch.Tensor, name: str = "baseline") -> torch.Tensor:
    """A baseline image for every row of ``x``.

    Args:
        baseline: ``None`` (zeros: a black image), a finite real number (a constant image),
            or a tensor ``(N, C, H, W)``, ``(1, C, H, W)`` or ``(C, H, W)`` matching ``x``.
        x: images ``(N, C, H, W)``; the result takes their dtype and device.
        name: the argument name used in error messages.

    Returns:
        a new ``(N, C, H, W)`` tensor (a copy, also when expanded from one image).

    Raises:
        ValueError: a non-finite number or tensor, or a tensor of another shape.
        TypeError: neither ``None``, a number nor a floating-point tensor (a bool is not a number).
    """
    if baseline is None:
        return torch.zeros_like(x)
    if isinstance(baseline, numbers.Real) and not isinstance(baseline, bool):
        if not math.isfinite(float(baseline)):
            raise ValueError(f"{name} must be finite, got {baseline!r}")
        return torch.full_like(x, float(baseline))
    check_tensor(baseline, name)
    b = baseline.to(device=x.device, dtype=x.dtype)
    if b.dim() == 3:
        b = b.unsqueeze(0)
    if b.dim() != 4 or tuple(b.shape[1:]) != tuple(x.shape[1:]) or b.shape[0] not in (1, x.shape[0]):
        raise ValueError(f"{name} must be an image of shape {tuple(x.shape)}, (1, {', '.join(map(str, x.shape[1:]))}) "
                         f"or {tuple(x.shape[1:])} to match x, got {tuple(baseline.shape)}")
    return b.expand_as(x).clone()


def check_masks(masks, h: int, w: int, *, name: str = "masks", disjoint: bool = False,
                 partition: bool = False, device=None) -> torch.Tensor:
    """Check band masks and return them as a ``(K, H, W)`` bool stack.

    Args:
        masks: bool or 0/1 tensor ``(K, H, W)``, or one band ``(H, W)`` (made ``(1, H, W)``).
        h, w: the expected spatial size.
        name: the argument name used in error messages.
        disjoint: refuse bands that overlap.
        partition: refuse overlapping bands and frequencies in no band.
        device: move the masks there (``None``: leave them).

    Returns:
        ``(K, H, W)`` bool tensor.

    Raises:
        TypeError: ``masks`` is not a tensor.
        ValueError: wrong shape, values other than 0/1, an empty band, or (with ``disjoint``
            or ``partition``) overlapping bands, or (with ``partition``) uncovered frequencies.
    """
    masks = check_mask(masks, name, h, w, allow_stack=True)
    if masks.dim() == 2:
        masks = masks.unsqueeze(0)
    if device is not None:
        masks = masks.to(device)
    if disjoint or partition:
        cover = masks.sum(0)
        if bool((cover > 1).any()):
            raise ValueError(f"{name} must not overlap: {int((cover > 1).sum())} frequencies are in more than one band")
        if partition and bool((cover == 0).any()):
            raise ValueError(f"{name} must partition the frequency plane: {int((cover == 0).sum())} "
                             "frequencies are in no band")
    return masks


def resolve_target(target, out: torch.Tensor) -> torch.Tensor:
    """Class indices ``(N,)`` from an int, a sequence, a tensor or ``"predicted"``; range-checked.

    Args:
        target: an int (every image), a sequence, numpy array or tensor of ``N`` ints (a 0-d
            tensor counts for every image), or ``"predicted"`` (the argmax of ``out``).
        out: the model's scores ``(N, n_classes)`` on the images.

    Returns:
        ``(N,)`` int64 tensor on ``out``'s device, in ``[0, n_classes)``.

    Raises:
        ValueError: a string other than ``"predicted"``, the wrong number of indices, or an
            index out of range.
        TypeError: ``None``, a bool, a float/complex/bool tensor or array, or another type.
    """
    n, n_classes = out.shape
    if isinstance(target, str):
        if target != "predicted":
            raise ValueError(f"target must be an int, a sequence or tensor of N ints, or 'predicted'; got {target!r}")
        t = out.argmax(1)
    elif isinstance(target, bool) or target is None:
        raise TypeError(f"target must be an int, a sequence or tensor of N ints, or 'predicted'; got {target!r}")
    elif isinstance(target, numbers.Integral):
        t = torch.full((n,), int(target), dtype=torch.long)
    else:
        if isinstance(target, torch.Tensor):
            t = target.detach()
        elif isinstance(target, (list, tuple, np.ndarray)):
            try:
                t = torch.as_tensor(np.asarray(target))
            except (TypeError, ValueError) as e:
                raise TypeError(f"target must hold integers, got {target!r}") from e
        else:
            raise TypeError(f"target must be an int, a sequence or tensor of N ints, or 'predicted'; "
                            f"got {type(target).__name__}")
        if t.is_floating_point() or t.is_complex() or t.dtype == torch.bool:
            raise TypeError(f"target must hold integers, got dtype {t.dtype}")
        if t.dim() == 0:
            t = t.expand(n)
        if t.dim() != 1 or t.shape[0] != n:
            raise ValueError(f"target must have one class index per image, shape ({n},), got {tuple(t.shape)}")
    t = t.to(device=out.device, dtype=torch.long)
    if n and (int(t.min()) < 0 or int(t.max()) >= n_classes):
        raise ValueError(f"target out of range: class indices must lie in [0, {n_classes}), "
                         f"got min {int(t.min())}, max {int(t.max())}")
    return t


@torch.no_grad()
def forward_batched(f: Callable, inp: torch.Tensor, batch: int | None) -> torch.Tensor:
    """``f`` on ``inp`` in chunks of ``batch`` rows (``None``: :data:`DEFAULT_EVAL_BATCH`), without gradients.

    Returns the outputs concatenated along dimension 0; an empty ``inp`` is passed through ``f`` once.
    """
    return torch.cat([f(inp[sl]) for sl in chunks(inp.shape[0], batch or DEFAULT_EVAL_BATCH)]) \
        if inp.shape[0] else f(inp)


def pick(out: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """The entry of class ``t[n]`` of each row ``n`` of ``out`` ``(N, n_classes)``: ``(N,)``."""
    return out.gather(1, t[:, None])[:, 0]


@torch.no_grad()
def eval_variants(head: Callable, c: torch.Tensor, cb: torch.Tensor, keep_fn: Callable, n_variants: int,
                   t: torch.Tensor, batch: int | None) -> torch.Tensor:
    """Explained output for every image n and variant m: ``(N, M)``.

    Variant m of image n has coefficients ``c[n]`` where ``keep_fn(n_idx, m_idx)`` is true
    and the baseline's ``cb[n]`` elsewhere.  Images x variants are flattened and evaluated
    ``batch`` at a time, so memory is bounded whatever N and M are.  No gradients.

    Args:
        head: maps coefficients ``(B, C, H, W)`` to ``(B, n_classes)`` outputs (an
            :class:`OutputHead` around a :class:`freqkit.FrequencyModel`).
        c, cb: coefficients of the images and of their baselines, ``(N, C, H, W)``.
        keep_fn: ``(n_idx, m_idx)`` (two ``(B,)`` long tensors) -> bool mask broadcastable
            to ``(B, C, H, W)``.
        n_variants: M.
        t: ``(N,)`` the class whose output is recorded.
        batch: variants per forward pass (``None``: :data:`DEFAULT_EVAL_BATCH`).

    Returns:
        ``(N, M)`` tensor of ``c``'s dtype.
    """
    n = c.shape[0]
    total = n * n_variants
    out = torch.empty(total, dtype=c.dtype, device=c.device)
    b = batch or DEFAULT_EVAL_BATCH
    for s in range(0, total, b):
        idx = torch.arange(s, min(total, s + b), device=c.device)
        ni, mi = idx // n_variants, idx % n_variants
        keep = keep_fn(ni, mi)
        inp = torch.where(keep, c[ni], cb[ni])
        out[s:s + idx.numel()] = pick(head(inp), t[ni]).to(c.dtype)
    return out.view(n, n_variants)
