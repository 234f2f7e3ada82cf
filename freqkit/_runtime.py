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
    """True when ``$FREQKIT_OFFLINE`` forbids every download.

    Returns:
        Whether the environment variable ``FREQKIT_OFFLINE``, stripped and lower-cased, is
        ``"1"``, ``"true"`` or ``"yes"``; any other value (or none) means downloads are
        allowed.
    """
    return os.environ.get("FREQKIT_OFFLINE", "").strip().lower() in ("1", "true", "yes")


@contextmanager
def eval_mode(model) -> Iterator:
    """Context manager: run ``model`` in eval mode (BatchNorm statistics frozen, dropout off).

    As torchattacks does for its attacks: a computation never changes the model it
    inspects.  On exit, also after an error, every module of the tree gets back its own
    ``training`` flag: ``model.train(root's mode)`` runs first (so that a module overriding
    ``train`` sees the call), then each submodule's saved flag is set, so a submodule
    deliberately in eval mode inside a training model (a frozen BatchNorm) stays in eval
    mode.

    Args:
        model: an ``nn.Module``, or any callable (yielded unchanged, no mode switch).

    Returns:
        A context manager that yields ``model``.
    """
    if not isinstance(model, nn.Module):
        yield model
        return
    modes = [(m, m.training) for m in model.modules()]
    model.eval()
    try:
        yield model
    finally:
        model.train(modes[0][1])
        for m, flag in modes:
            m.training = flag


@contextmanager
def cpu_threads(n: int | None) -> Iterator[None]:
    """Context manager: run with ``n`` intra-op CPU threads, restoring the setting after.

    AutoAttack's Square attack makes thousands of forward passes on a handful of images;
    with several threads on a busy CPU their synchronisation cost 50x (measured on the
    2-core build machine), with one thread it cannot.

    Args:
        n: threads for ``torch.set_num_threads`` (an integer ``>= 1``, not checked here:
            torch raises for others); ``None`` leaves the setting alone.

    Returns:
        A context manager yielding None.
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
    """The device of a model: that of its first parameter, else its first buffer.

    Args:
        model: an ``nn.Module`` or any callable.

    Returns:
        A :class:`torch.device`; the CPU for a parameter- and buffer-free module or a
        callable that is not an ``nn.Module``.
    """
    if isinstance(model, nn.Module):
        for t in model.parameters():
            return t.device
        for t in model.buffers():
            return t.device
    return torch.device("cpu")


def chunks(n: int, size: int | None) -> Iterator[slice]:
    """Slices ``[0:size], [size:2 size], ...`` covering ``range(n)``.

    Args:
        n: the number of items, ``>= 0``.
        size: items per slice (values below 1 count as 1); ``None``: one slice of all ``n``.

    Returns:
        A generator of ``slice`` objects; the last may be shorter; none for ``n == 0``.
    """
    size = max(1, n if size is None else size)
    for s in range(0, n, size):
        yield slice(s, min(n, s + size))


def progress(iterable: Iterable | None = None, enabled: bool = True, **kw):
    """A text progress bar (tqdm) over ``iterable``, shown only in a terminal.

    Long runs report progress where a person watches them (a terminal); in a notebook
    kernel stderr is no terminal, so executed chapters carry no progress logs.

    Args:
        iterable: what to iterate over; ``None`` returns a bar to ``update`` by hand
            (pass ``total=`` in ``kw``).
        enabled: ``False`` disables the bar even in a terminal.
        **kw: further ``tqdm`` arguments (``desc``, ``total``, ``unit``...); ``mininterval``
            defaults to 2 seconds.

    Returns:
        A ``tqdm`` instance (disabled, hence silent, unless ``enabled`` and stderr is a
        terminal).
    """
    from tqdm import tqdm

    show = bool(enabled) and hasattr(sys.stderr, "isatty") and sys.stderr.isatty()
    kw.setdefault("mininterval", 2.0)
    return tqdm(iterable, disable=not show, dynamic_ncols=True, **kw)
