"""How freqkit's computations run: model mode, device, CPU threads, batches, progress.

A private module shared by the computing modules (not part of the public API).
"""
from __future__ import annotations

import os
import platform
import sys
from pathlib import Path
from contextlib import contextmanager
from typing import Iterable, Iterator

import torch
from torch import nn

__all__ = ["eval_mode", "cpu_threads", "model_device", "chunks", "progress", "offline", "cpu_info", "cpu_name", "native_bf16"]


def offline() -> bool:
    """True when ``$FREQKIT_OFFLINE`` forbids every download.

    Returns:
        Whether the environment variable ``FREQKIT_OFFLINE``, stripped and lower-cased, is
        ``"1"``, ``"true"`` or ``"yes"``; any other value (or none) means downloads are
        allowed.
    """
    return os.environ.get("FREQKIT_OFFLINE", "").strip().lower() in ("1", "true", "yes")


def native_bf16(dev: torch.device) -> bool:
    """Whether ``dev`` computes bf16 natively (training autocasts to bf16 only then).

    Args:
        dev: a ``torch.device``.

    Returns:
        CUDA: :func:`torch.cuda.is_bf16_supported`; CPU: oneDNN's bf16 test (emulated bf16 is
        slower than fp32, so a CPU without the instructions trains in fp32); else False.
    """
    if dev.type == "cuda":
        return torch.cuda.is_bf16_supported()
    if dev.type == "cpu":
        try:
            return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
        except (AttributeError, RuntimeError):
            return False
    return False


def cpu_info() -> dict:
    """The CPU this runs on: model name (/proc/cpuinfo), native bf16 or not, its bf16 flags, CPUs, threads.

    Every timing freqkit records names the CPU with this (benchmark tables, the book's
    measured record), because the two kinds of CPU among our machines differ by up to 3x
    in training time: ``native_bf16`` is the test that picks bf16 or fp32 training
    (:func:`native_bf16`).

    Returns:
        ``{"cpu_model": str, "native_bf16": bool, "bf16_flags": [str], "logical_cpus": int,
        "torch_threads": int}``; ``cpu_model`` falls back to :func:`platform.processor` where
        ``/proc/cpuinfo`` cannot be read.
    """
    model, flags = platform.processor() or platform.machine(), set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name") and ":" in line:
                model = line.split(":", 1)[1].strip()
            elif line.startswith("flags") and ":" in line:
                flags = set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return {"cpu_model": model, "native_bf16": native_bf16(torch.device("cpu")),
            "bf16_flags": sorted(flags & {"avx512_bf16", "amx_bf16", "avx512_fp16"}),
            "logical_cpus": os.cpu_count(), "torch_threads": torch.get_num_threads()}


def cpu_name() -> str:
    """``"<model>, native bf16 yes|no"``: the CPU as tables and records name it (:func:`cpu_info`)."""
    c = cpu_info()
    return f"{c['cpu_model']}, native bf16 {'yes' if c['native_bf16'] else 'no'}"


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
