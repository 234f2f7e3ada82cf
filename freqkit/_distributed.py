"""torch.distributed for freqkit's data-set-level functions: who am I, my share, the full result.

A private module shared by the computing modules (not part of the public API).  When a
default process group is initialised (``torch.distributed.is_initialized()``, e.g. under
``torchrun``) with more than one rank, the data-set-level functions
(:func:`freqkit.fourier_heatmap`, :func:`freqkit.heatmaps.fourier_layer_heatmap`,
:func:`freqkit.heatmaps.heatmap_report`, :func:`freqkit.filtered_accuracy`,
:func:`freqkit.alignment_profile`, :func:`freqkit.radial_attribution_profile`) use these
helpers to split their work by rank (:func:`shard`, :func:`local_batches`) and to bring the
full result to every rank (:func:`all_gather_rows`, :func:`gather_in_order`,
:func:`all_reduce_sum`).  Without a process group (or with one rank) every helper is the
identity for rank 0 of 1 and makes no collective call, so one process computes exactly what
it computed before this module existed.

Failures.  A sharded function runs its local work inside :func:`fail_together`: at the end of
the block every rank reports to every other whether it failed (one small all-gather), so an
exception on one rank (a bad batch, a NaN logit, an out-of-memory error) makes every rank
raise: the failing rank its own exception, the others :class:`RankFailed` naming the rank and
its error, instead of the others waiting forever for a result that never comes.  A rank that
dies or hangs (killed, a deadlock) cannot report: then the others' collective call fails when
the connection drops, or after the process group's timeout (``init_process_group(timeout=)``,
see :func:`init_from_env`; ``python -m freqkit.run --timeout``), and they raise
:class:`DistributedError`.  Collectives happen only between the blocks, never inside them,
so every rank makes the same sequence of collective calls whatever fails.

Backends: gloo (CPU tensors) and nccl (CUDA tensors, on ``torch.cuda.current_device()``);
each helper moves its buffers to the backend's device and returns results on the device of
its input.
"""
from __future__ import annotations

import os
from contextlib import contextmanager
from datetime import timedelta
from typing import Iterable, Iterator, NamedTuple

import torch
import torch.distributed as dist

__all__ = ["World", "world", "is_distributed", "shard", "all_gather_rows", "all_reduce_sum", "all_reduce_max",
           "broadcast", "gather_in_order", "agree_shape", "fail_together", "checksum", "local_batches", "init_from_env",
           "RankFailed", "DistributedError", "DEFAULT_TIMEOUT_S"]

#: Default timeout (seconds) of a collective operation for :func:`init_from_env`: how long a
#: rank waits for the others at a collective before it fails.  It must exceed the largest
#: difference between the ranks' local work (a sharded function's collectives happen at its
#: end): 30 minutes, torch's own default.
DEFAULT_TIMEOUT_S = 1800.0

_MAX_MESSAGE = 4000  # bytes of an error message sent to the other ranks


class World(NamedTuple):
    """This process's place in the default process group.

    Attributes:
        rank: this process's rank, ``0 <= rank < size``.
        size: number of processes (1 without a process group).
        backend: ``"gloo"``, ``"nccl"``, ... or ``None`` without a process group.
    """

    rank: int
    size: int
    backend: str | None


class DistributedError(RuntimeError):
    """A collective operation failed: another rank died, or hung past the process group's timeout."""


class RankFailed(RuntimeError):
    """Another rank raised inside a sharded computation; this rank stops too (its message names it)."""


def world() -> World:
    """This process's rank, the number of processes and the backend.

    Returns:
        :class:`World`; ``World(0, 1, None)`` when ``torch.distributed`` is unavailable or no
        default process group is initialised.

    Example:
        >>> from freqkit._distributed import world
        >>> world()          # no process group here
        World(rank=0, size=1, backend=None)
    """
    if dist.is_available() and dist.is_initialized():
        return World(int(dist.get_rank()), int(dist.get_world_size()), str(dist.get_backend()))
    return World(0, 1, None)


def is_distributed() -> bool:
    """Whether the work is split: a default process group with more than one rank.

    Returns:
        bool; ``False`` without a process group and for a group of one process (then every
        helper here is the identity and makes no collective call).
    """
    return world().size > 1


def shard(n: int, rank: int | None = None, size: int | None = None) -> slice:
    """This rank's contiguous, balanced share of ``range(n)``.

    Rank ``r`` of ``s`` gets ``[n r // s, n (r + 1) // s)``: the shares differ by at most
    one item, cover ``range(n)`` in rank order, and some are empty when ``n < s``.

    Args:
        n: the number of items, an integer ``>= 0``.
        rank: the rank (default: this process's, :func:`world`).
        size: the number of ranks (default: this process group's).

    Returns:
        A ``slice`` (``slice(0, n)`` without a process group).

    Raises:
        ValueError: ``n`` negative or ``rank`` outside ``[0, size)``.

    Example:
        >>> from freqkit._distributed import shard
        >>> [shard(10, r, 3) for r in range(3)]
        [slice(0, 3, None), slice(3, 6, None), slice(6, 10, None)]
    """
    w = world()
    r = w.rank if rank is None else int(rank)
    s = w.size if size is None else int(size)
    if n < 0 or s < 1 or not 0 <= r < s:
        raise ValueError(f"shard needs n >= 0 and 0 <= rank < size, got n={n}, rank={r}, size={s}")
    return slice(n * r // s, n * (r + 1) // s)


def _comm_device() -> torch.device:
    """Where the backend wants its tensors: the current CUDA device for nccl, else the CPU."""
    if world().backend == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def _collective(what: str, fn):
    """Run one collective call; turn a failure into a :class:`DistributedError` that says why."""
    try:
        return fn()
    except Exception as e:  # noqa: BLE001 - gloo/nccl raise RuntimeError, DistBackendError, ...
        w = world()
        raise DistributedError(
            f"{what}: a collective operation across {w.size} ranks failed on rank {w.rank} "
            f"({type(e).__name__}: {e}). Another rank probably died (out of memory, killed) or is stuck past the "
            "process group's timeout (init_process_group(timeout=...); python -m freqkit.run --timeout); its own "
            "log says why.") from e


def all_reduce_sum(t: torch.Tensor, what: str = "all_reduce_sum") -> torch.Tensor:
    """The element-wise sum of ``t`` over all ranks, on every rank.

    Args:
        t: a tensor of the same shape and dtype on every rank (integer or floating point).
        what: the computation, named in the error message of a failed collective.

    Returns:
        A new tensor on ``t``'s device with ``t``'s dtype; ``t`` itself without a process group.

    Raises:
        DistributedError: the collective failed (another rank died or timed out).
    """
    if not is_distributed():
        return t
    buf = t.detach().to(_comm_device()).clone()
    _collective(what, lambda: dist.all_reduce(buf, op=dist.ReduceOp.SUM))
    return buf.to(t.device)


def all_reduce_max(t: torch.Tensor, what: str = "all_reduce_max") -> torch.Tensor:
    """The element-wise maximum of ``t`` over all ranks, on every rank (e.g. the slowest rank's time).

    Args:
        t: a tensor of the same shape and dtype on every rank.
        what: the computation, named in the error message of a failed collective.

    Returns:
        A new tensor on ``t``'s device; ``t`` itself without a process group.

    Raises:
        DistributedError: the collective failed.
    """
    if not is_distributed():
        return t
    buf = t.detach().to(_comm_device()).clone()
    _collective(what, lambda: dist.all_reduce(buf, op=dist.ReduceOp.MAX))
    return buf.to(t.device)


def broadcast(t: torch.Tensor, src: int = 0, what: str = "broadcast") -> torch.Tensor:
    """Rank ``src``'s ``t`` on every rank (e.g. a decision one rank makes for all: is the model random?).

    Args:
        t: a tensor of the same shape and dtype on every rank (the others' values are ignored).
        src: the rank whose tensor is sent.
        what: the computation, named in the error message of a failed collective.

    Returns:
        A new tensor on ``t``'s device holding rank ``src``'s values; ``t`` itself without a
        process group.

    Raises:
        DistributedError: the collective failed.
    """
    if not is_distributed():
        return t
    is_bool = t.dtype == torch.bool
    buf = t.detach().to(device=_comm_device(), dtype=torch.uint8 if is_bool else t.dtype).clone()
    _collective(what, lambda: dist.broadcast(buf, src=src))
    return buf.to(device=t.device, dtype=torch.bool if is_bool else t.dtype)


def all_gather_rows(t: torch.Tensor, what: str = "all_gather_rows") -> torch.Tensor:
    """Concatenate every rank's ``t`` along dim 0, in rank order, on every rank.

    The ranks may hold different numbers of rows (also none); the other dims and the dtype
    must agree.  Two collective calls: the row counts, then the rows padded to the largest
    count.

    Args:
        t: a tensor with at least one dim (bool is sent as uint8 and comes back bool).
        what: the computation, named in the error message of a failed collective.

    Returns:
        ``cat([t of rank 0, t of rank 1, ...])`` on ``t``'s device; ``t`` itself without a
        process group.

    Shape:
        - t: ``(n_rank, *rest)``.
        - Output: ``(sum of n_rank, *rest)``.

    Raises:
        ValueError: ``t`` is 0-dim.
        DistributedError: the collective failed.
    """
    if t.dim() == 0:
        raise ValueError("all_gather_rows needs a tensor with at least one dimension, got a 0-dim tensor")
    if not is_distributed():
        return t
    w, dev = world(), _comm_device()
    is_bool = t.dtype == torch.bool
    src = t.detach().to(device=dev, dtype=torch.uint8 if is_bool else t.dtype)
    count = torch.tensor([src.shape[0]], dtype=torch.int64, device=dev)
    counts = [torch.zeros_like(count) for _ in range(w.size)]
    _collective(what, lambda: dist.all_gather(counts, count))
    sizes = [int(c.item()) for c in counts]
    pad = torch.zeros((max(sizes),) + tuple(src.shape[1:]), dtype=src.dtype, device=dev)
    pad[:src.shape[0]] = src
    parts = [torch.empty_like(pad) for _ in range(w.size)]
    _collective(what, lambda: dist.all_gather(parts, pad))
    out = torch.cat([p[:k] for p, k in zip(parts, sizes)])
    return out.to(device=t.device, dtype=torch.bool if is_bool else t.dtype)


def gather_in_order(index: torch.Tensor, *tensors: torch.Tensor, what: str = "gather_in_order"):
    """Gather per-item rows from every rank and put them in the order of their global index.

    For work split by :func:`local_batches`: each rank holds the rows of its items and their
    global positions ``index``; the result is every item's row, sorted by position, on every
    rank.  Without a process group the rows come back as they are (already in order).

    Args:
        index: ``(n_rank,)`` integer global positions of this rank's rows.
        *tensors: tensors of ``n_rank`` rows each (the same trailing shape on every rank).
        what: the computation, named in the error message of a failed collective.

    Returns:
        A tuple of the gathered tensors (one per ``tensors``), rows sorted by ``index``.

    Shape:
        - index: ``(n_rank,)``; each tensor ``(n_rank, *rest)``.
        - Output: each ``(N, *rest)``, ``N`` the sum over ranks.

    Raises:
        DistributedError: the collective failed.
    """
    if not is_distributed():
        return tuple(tensors)
    idx = all_gather_rows(index.to(torch.int64).reshape(-1), what)
    order = torch.argsort(idx, stable=True)
    return tuple(all_gather_rows(t, what)[order.to(t.device)] for t in tensors)


def agree_shape(shape, ndim: int, what: str, name: str = "x") -> tuple:
    """The shape of the items every rank that saw some saw (a rank may have had no batch).

    Args:
        shape: this rank's item shape (a tuple of ``ndim`` ints, e.g. ``(C, H, W)``), or
            ``None`` when this rank saw no item.
        ndim: the length of a shape.
        what: the computation, named in the error messages.
        name: the data's argument name, in the error messages.

    Returns:
        The common shape, as a tuple of ints (``shape`` itself without a process group,
        unless it is ``None``).

    Raises:
        ValueError: no rank saw an item ("x holds no images (N = 0)"), or the ranks saw
            different shapes.
        DistributedError: the collective failed.
    """
    row = torch.tensor([[1, *shape]] if shape is not None else [[0] * (ndim + 1)], dtype=torch.int64)
    rows = all_gather_rows(row, what)
    seen = sorted({tuple(int(v) for v in r[1:].tolist()) for r in rows if int(r[0])})
    if not seen:
        raise ValueError(f"{name} holds no images (N = 0): the iterable yielded no non-empty batch")
    if len(seen) > 1:
        raise ValueError(f"{what}: {name}'s batches must all hold items of one shape; the ranks saw {seen}")
    return seen[0]


def checksum(t: torch.Tensor) -> float:
    """A number that changes when ``t``'s rows change or move: ``sum_i (i + 1) * sum(row i)``, in float64.

    For the ``fingerprint`` of :func:`fail_together`: equal on ranks holding the same data in
    the same order (the same values, computed the same way), different when a rank loaded
    other images or the same images in another order (a plain sum would not see that).

    Args:
        t: a tensor with at least one dim (any dtype but complex).

    Returns:
        float.
    """
    rows = t.detach().reshape(t.shape[0], -1).double().sum(1) if t.dim() else t.detach().double().reshape(1)
    return float((rows * torch.arange(1, rows.numel() + 1, dtype=torch.float64, device=rows.device)).sum())


def _encode(msg: str) -> torch.Tensor:
    data = msg.encode("utf-8", "replace")[:_MAX_MESSAGE]
    return torch.tensor(list(data), dtype=torch.uint8)


def _fingerprint_text(fingerprint) -> str:
    fp = fingerprint() if callable(fingerprint) else fingerprint
    return "; ".join(f"{k}={format(v, '.9g') if isinstance(v, float) else v}" for k, v in fp.items())


def _exchange(what: str, error: BaseException | None, fingerprint) -> None:
    """One round: every rank tells every other whether it failed (and why), or its input's fingerprint."""
    w = world()
    text, own = "", None
    if error is None and fingerprint is not None:
        try:
            text = _fingerprint_text(fingerprint)
        except Exception as e:  # noqa: BLE001 - a rank whose inputs cannot even be described has failed
            error = own = e
    if error is not None:
        text = f"{type(error).__name__}: {error}"
    data = _encode(text)
    flags = all_gather_rows(torch.tensor([1 if error is not None else 0], dtype=torch.int64), what)
    lengths = all_gather_rows(torch.tensor([data.numel()], dtype=torch.int64), what)
    blob = all_gather_rows(data, what)
    bounds = [0] + torch.cumsum(lengths, 0).tolist()
    texts = [bytes(blob[bounds[r]:bounds[r + 1]].tolist()).decode("utf-8", "replace") for r in range(w.size)]
    failed = [r for r in range(w.size) if int(flags[r]) != 0]
    if failed:
        if own is not None:
            raise own
        if error is not None:
            return  # the caller re-raises its own exception
        detail = "; ".join(f"rank {r}: {texts[r]}" for r in failed)
        raise RankFailed(f"{what} failed on {len(failed)} of {w.size} ranks ({detail}); rank {w.rank} stopped too")
    for r in range(1, w.size):
        if texts[r] != texts[0]:
            raise ValueError(f"{what}: the ranks were given different inputs (rank 0: {texts[0]}; rank {r}: "
                             f"{texts[r]}); every rank must pass the same data set and arguments (load the same "
                             "images in the same order on each rank: the work is split here)")


@contextmanager
def fail_together(what: str, fingerprint: dict | None = None) -> Iterator[None]:
    """Context manager: a failure inside the block on any rank stops every rank, with a clear error.

    The block holds one rank's local work and no collective call.  On leaving it (normally
    or by an exception) every rank takes part in one exchange of a status and the
    ``fingerprint`` of its inputs.  If any rank raised, that rank re-raises its exception and
    every other raises :class:`RankFailed` naming the rank(s) and their errors; if the
    fingerprints differ, every rank raises ``ValueError`` naming what differs.  Without a
    process group the block runs as it is and nothing is exchanged.

    Args:
        what: the computation (named in the messages, e.g. ``"fourier_heatmap"``).
        fingerprint: ``{name: value}`` that must be equal on every rank (e.g. the number
            of images and their sum), or a function returning it (evaluated after the
            block; if it raises, that counts as this rank's failure): catches ranks that
            loaded different data.  Floats are compared to 9 significant digits.

    Returns:
        A context manager yielding None.

    Raises:
        RankFailed: another rank raised inside its block.
        ValueError: the fingerprints differ between ranks.
        DistributedError: the exchange itself failed (a rank died or hung past the timeout).
    """
    if not is_distributed():
        yield
        return
    try:
        yield
    except Exception as e:  # noqa: BLE001 - every failure is reported to the other ranks
        _exchange(what, e, fingerprint)
        raise
    _exchange(what, None, fingerprint)


def _is_plain_sequential_loader(loader) -> bool:
    """A DataLoader over a sized map-style dataset, read in order, that keeps its last batch."""
    from torch.utils.data import DataLoader, IterableDataset, SequentialSampler

    return (isinstance(loader, DataLoader) and not isinstance(loader.dataset, IterableDataset)
            and isinstance(loader.sampler, SequentialSampler) and loader.batch_size is not None
            and not loader.drop_last and hasattr(loader.dataset, "__len__"))


def _loader_over(loader, lo: int, hi: int):
    """The same DataLoader over items ``[lo, hi)`` of its dataset."""
    from torch.utils.data import DataLoader, Subset

    kw = dict(batch_size=loader.batch_size, shuffle=False, num_workers=loader.num_workers,
              collate_fn=loader.collate_fn, pin_memory=loader.pin_memory, drop_last=False, timeout=loader.timeout,
              worker_init_fn=loader.worker_init_fn, multiprocessing_context=loader.multiprocessing_context,
              generator=loader.generator, persistent_workers=loader.persistent_workers)
    if loader.num_workers:
        kw["prefetch_factor"] = loader.prefetch_factor
    return DataLoader(Subset(loader.dataset, range(lo, hi)), **kw)


def _split_batch(batch, name: str, k: int):
    """``(images, labels)`` of one batch of an iterable; a clear error for anything else."""
    if isinstance(batch, (tuple, list)) and len(batch) >= 2:
        return batch[0], batch[1]
    raise ValueError(f"{name} must yield (images, labels) batches, e.g. a DataLoader over (image, label) pairs; "
                     f"batch {k} is a {type(batch).__name__}")


def local_batches(x, y, batch_size: int, name: str = "x", whole_batches: bool = False) -> tuple[Iterable, int | None]:
    """This rank's batches of a data set given as tensors or as an iterable of batches.

    * Tensors ``x``, ``y``: this rank's contiguous share of the images (:func:`shard`),
      in chunks of ``batch_size``.  Without a process group: ``x[0:b], x[b:2b], ...``.
      With ``whole_batches``: this rank's contiguous share of the batches ``x[0:b],
      x[b:2b], ...`` themselves, so that every batch holds the images it holds in one
      process and ``offset // batch_size`` is its index there (for computations that
      depend on a batch's composition, e.g. a random start drawn per batch and seeded with
      the batch's index).
    * A ``DataLoader`` over a sized map-style dataset read in order (no shuffling, no
      ``drop_last``): the same loader (workers, collate function, ...) over this rank's
      contiguous share of the dataset's indices, so each rank reads only its own images.
    * Any other iterable of ``(images, labels)`` batches (a shuffled or iterable-style
      loader, a generator): every rank iterates all of it and keeps batches ``rank, rank +
      size, ...``; it must yield the same batches in the same order on every rank (each
      rank reads, but does not compute on, the others' batches).

    Args:
        x: images ``(N, C, H, W)``, or an iterable of ``(images, labels)`` batches.
        y: labels ``(N,)`` for tensor ``x`` (or ``None`` when not needed); must be ``None``
            for an iterable.
        batch_size: images per batch for tensor ``x`` (an iterable keeps its own batches).
        name: the argument's name, in error messages.
        whole_batches: split tensors by whole batches of ``batch_size`` (above); iterables
            are always split by whole batches.

    Returns:
        ``(batches, n_batches)``: an iterable of ``(offset, images, labels)`` with
        ``offset`` the global index of the batch's first image (so that item ``j`` of the
        batch is image ``offset + j`` of the whole data set), and the number of batches this
        rank will see (``None`` when unknown).

    Raises:
        ValueError: ``y`` not ``None`` for an iterable; (while iterating) a batch that is not
            an ``(images, labels)`` pair.
        TypeError: ``x`` neither a tensor nor an iterable.
    """
    w = world()
    if isinstance(x, torch.Tensor):
        if whole_batches:
            n_all = -(-x.shape[0] // batch_size)
            mine = shard(n_all)
            sl = slice(mine.start * batch_size, min(x.shape[0], mine.stop * batch_size))
        else:
            sl = shard(x.shape[0])
        starts = range(sl.start, sl.stop, batch_size)

        def tensor_batches():
            for s in starts:
                e = min(sl.stop, s + batch_size)
                yield s, x[s:e], (None if y is None else y[s:e])
        return tensor_batches(), len(starts)
    if y is not None:
        raise ValueError(f"y must be None when {name} is an iterable of (images, labels) batches (e.g. a DataLoader); "
                         f"got a {type(y).__name__}")
    if not hasattr(x, "__iter__"):
        raise TypeError(f"{name} must be a tensor of images or an iterable of (images, labels) batches (e.g. a "
                        f"DataLoader), got {type(x).__name__}")
    if w.size > 1 and _is_plain_sequential_loader(x):
        sl = shard(len(x.dataset))
        loader = _loader_over(x, sl.start, sl.stop)

        def subset_batches():
            off = sl.start
            for k, batch in enumerate(loader):
                xb, yb = _split_batch(batch, name, k)
                yield off, xb, yb
                off += int(xb.shape[0]) if isinstance(xb, torch.Tensor) else len(xb)
        return subset_batches(), len(loader)

    def strided_batches():
        off = 0
        for k, batch in enumerate(x):
            xb, yb = _split_batch(batch, name, k)
            if k % w.size == w.rank:
                yield off, xb, yb
            off += int(xb.shape[0]) if isinstance(xb, torch.Tensor) else len(xb)
    n = len(x) if hasattr(x, "__len__") else None
    return strided_batches(), (None if n is None else len(range(w.rank, n, w.size)))


def init_from_env(timeout_s: float = DEFAULT_TIMEOUT_S, backend: str | None = None) -> World:
    """Initialise the default process group from ``torchrun``'s environment, if it asks for one.

    With ``WORLD_SIZE > 1`` in the environment (``torchrun`` sets it with ``RANK``,
    ``LOCAL_RANK``, ``MASTER_ADDR``, ``MASTER_PORT``), initialises ``torch.distributed``
    (``env://``) with ``backend`` and a timeout of ``timeout_s`` on the rendezvous and on every
    collective operation; for nccl it selects the GPU ``LOCAL_RANK`` and turns on asynchronous
    error handling (``TORCH_NCCL_ASYNC_ERROR_HANDLING=1`` unless set), so that a collective
    that times out aborts the process instead of hanging.  Does nothing when a group is
    already initialised or ``WORLD_SIZE`` is unset or 1.

    Args:
        timeout_s: seconds a rank waits at the rendezvous and at each collective, > 0.
        backend: ``"gloo"``, ``"nccl"`` or ``None`` (nccl when CUDA is available, else gloo).

    Returns:
        :func:`world` after initialisation.

    Raises:
        ValueError: ``timeout_s`` not > 0, or ``backend`` not gloo/nccl.
        DistributedError: the rendezvous failed (another rank never came, within the timeout).
    """
    if not (isinstance(timeout_s, (int, float)) and timeout_s > 0):
        raise ValueError(f"timeout_s must be a number of seconds > 0, got {timeout_s!r}")
    if dist.is_initialized() or int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return world()
    backend = backend or ("nccl" if torch.cuda.is_available() else "gloo")
    if backend not in ("gloo", "nccl"):
        raise ValueError(f"backend must be 'gloo' or 'nccl', got {backend!r}")
    kw = {}
    if backend == "nccl":
        local = int(os.environ.get("LOCAL_RANK", "0"))
        torch.cuda.set_device(local)
        os.environ.setdefault("TORCH_NCCL_ASYNC_ERROR_HANDLING", "1")
        kw["device_id"] = torch.device("cuda", local)
    try:
        dist.init_process_group(backend, timeout=timedelta(seconds=float(timeout_s)), **kw)
    except Exception as e:  # noqa: BLE001
        raise DistributedError(f"could not join the process group (backend {backend}, rank "
                               f"{os.environ.get('RANK')} of {os.environ.get('WORLD_SIZE')}, rendezvous "
                               f"{os.environ.get('MASTER_ADDR')}:{os.environ.get('MASTER_PORT')}, timeout "
                               f"{timeout_s:g} s): {type(e).__name__}: {e}") from e
    return world()
