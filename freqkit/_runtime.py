"""How freqkit's computations run: model mode, device, CPU threads, batches, progress.

A private module shared by the computing modules (not part of the public API).
"""
from __future__ import annotations

import os
import sys
from contextlib import contextmanager
from typing import Iterable, Iterator

import torch
from torch import nn

__all__ = ["eval_mode", "cpu_threads", "model_device", "chunks", "progress", "offline"]


def offline() -> bool:
    """True when ``$FREQKIT_OFFLINE`` (1, true or yes) forbids every download."""
    return os.environ.get("FREQKIT_OFFLINE", "").strip().lower() in ("1", "true", "yes")


@contextmanager
def eval_mode(model) -> Iterator:
    """Run ``model`` in eval mode (BatchNorm statistics frozen, dropout off) and restore its mode.

    As torchattacks does for its attacks: a computation never changes the model it
    inspects.  A callable that is not an ``nn.Module`` is yielded unchanged.
    """
    if not isinstance(model, nn.Module):
        yield model
        return
    was_training = model.training
    model.eval()
    try:
        yield model
    finally:
        model.train(was_training)


@contextmanager
def cpu_threads(n: int | None) -> Iterator[None]:
    """Run with ``n`` intra-op CPU threads (``None``: leave the setting alone), restored after.

    AutoAttack's Square attack makes thousands of forward passes on a handful of images;
    with several threads on a busy CPU their synchronisation cost 50x (measured on the
    2-core build machine), with one thread it cannot.
    """
    if n is None:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def model_device(model) -> torch.device:
    """The device of a model's first parameter (else buffer); CPU for a parameter-free callable."""
    if isinstance(model, nn.Module):
        for t in model.parameters():
            return t.device
        for t in model.buffers():
            return t.device
    return torch.device("cpu")


def chunks(n: int, size: int | None) -> Iterator[slice]:
    """Slices ``[0:size], [size:2 size], ...`` covering ``range(n)``; one slice when ``size`` is None."""
    size = n if size is None else max(1, size)
    for s in range(0, n, size):
        yield slice(s, min(n, s + size))


def progress(iterable: Iterable | None = None, enabled: bool = True, **kw):
    """A text progress bar (tqdm) over ``iterable``, shown only in a terminal.

    Long runs report progress where a person watches them (a terminal); in a notebook
    kernel stderr is no terminal, so executed chapters carry no progress logs.  Without
    ``iterable``, returns a bar to ``update`` by hand (``total=`` in ``kw``).
    """
    from tqdm import tqdm

    show = bool(enabled) and hasattr(sys.stderr, "isatty") and sys.stderr.isatty()
    kw.setdefault("mininterval", 2.0)
    return tqdm(iterable, disable=not show, dynamic_ncols=True, **kw)
