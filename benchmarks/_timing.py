"""Timing helpers shared by the benchmarks: device sync and interleaved medians."""
from __future__ import annotations

import os
import platform
import statistics
import time
from pathlib import Path

import torch


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


def cpu_info() -> dict:
    """The CPU this runs on: model name (/proc/cpuinfo), native bf16 or not, its bf16 flags, CPUs, threads.

    ``native_bf16`` is freqkit's own test (:func:`freqkit.training._bf16_ok`, the one that
    picks bf16 or fp32 training); every benchmark table names the CPU with it, because the
    two kinds differ by up to 3x (issue 16).
    """
    from freqkit.training import _bf16_ok

    model, flags = platform.processor() or platform.machine(), set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name") and ":" in line:
                model = line.split(":", 1)[1].strip()
            elif line.startswith("flags") and ":" in line:
                flags = set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return {"cpu_model": model, "native_bf16": bool(_bf16_ok(torch.device("cpu"))),
            "bf16_flags": sorted(flags & {"avx512_bf16", "amx_bf16", "avx512_fp16"}),
            "logical_cpus": os.cpu_count(), "torch_threads": torch.get_num_threads()}


def cpu_name() -> str:
    """``"<model>, native bf16 yes|no"``: the CPU as the benchmark tables name it."""
    c = cpu_info()
    return f"{c['cpu_model']}, native bf16 {'yes' if c['native_bf16'] else 'no'}"
