"""Timing helpers shared by the benchmarks: device sync and interleaved medians."""
from __future__ import annotations

import statistics
import time

import torch

# one CPU description for freqkit's records and every benchmark table
from freqkit._runtime import cpu_info, cpu_name  # noqa: F401  (re-exported)

__all__ = ["sync", "timed", "interleaved_medians", "cpu_info", "cpu_name"]


def sync(device) -> None:
    """Wait for queued GPU work (CUDA calls are asynchronous); no-op on a CPU."""
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn, device) -> float:
    """Wall-clock seconds of one call of ``fn``, GPU work included."""
    sync(device)
    t0 = time.perf_counter()
    fn()
    sync(device)
    return time.perf_counter() - t0


def interleaved_medians(fns: dict, repeats: int, device, warmup: int = 1) -> tuple[dict, dict]:
    """Median seconds per contender over ``repeats`` runs, contenders interleaved.

    Each round runs every contender once, starting from a rotating position, so that drift
    in a shared machine's load hits every contender alike.  ``warmup`` untimed calls first
    (allocator, cuDNN autotuning, cached matrices).  Returns (medians, all times).
    """
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    names = list(fns)
    times = {k: [] for k in names}
    for r in range(repeats):
        for k in names[r % len(names):] + names[:r % len(names)]:
            times[k].append(timed(fns[k], device))
    return {k: statistics.median(v) for k, v in times.items()}, times

