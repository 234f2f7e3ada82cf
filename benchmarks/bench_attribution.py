"""Benchmark: frequency-domain Integrated Gradients vs Captum's pixel IG on the same model.

One run times, on the same ResNet-ish CIFAR-size CNN, batch and n_steps:

* ``pixel``: ``captum.attr.IntegratedGradients(model)`` on the images;
* ``captum_freq``: the same Captum call on ``FrequencyModel(model)`` and DCT coefficients
  (the bare cost of the frequency step: one inverse DCT per path point, and its backward);
* ``freqkit``: ``freqkit.attribute(..., method="ig")``, the library call, which also
  resolves the target and evaluates f(x) and f(baseline) for the completeness delta.

The goal is ``freqkit / pixel <= 1.10``: the DCT is two small matrix products per image,
tiny next to the network.  Variants run interleaved, ``--repeats`` times each, medians
reported.  Peak memory of ``freqkit.attribute`` for several ``internal_batch_size`` values
is measured with ``torch.cuda.max_memory_allocated`` on a GPU, and on a CPU as the growth
of the peak RSS (``VmHWM``) over the RSS just before the call, in a fresh subprocess per
setting (torch's CPU allocator is invisible to tracemalloc, and in a long-lived process
memory freed by an earlier run would hide a later run's growth).

Usage::

    python benchmarks/bench_attribution.py --device cpu --batch 8 --n-steps 32 --repeats 5

Writes ``benchmarks/out/attribution.json`` (atomically) and prints a summary.  Other
scripts can call :func:`run` with an ``argparse.Namespace`` (or a dict of the options).
"""
from __future__ import annotations

import argparse
import multiprocessing as mp
import platform
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # runnable as a plain script from anywhere
    sys.path.insert(0, str(ROOT))
if str(ROOT / "benchmarks") not in sys.path:
    sys.path.insert(0, str(ROOT / "benchmarks"))

from _timing import interleaved_medians  # noqa: E402

import torch  # noqa: E402
from torch import nn  # noqa: E402

DEFAULT_OUT = ROOT / "benchmarks" / "out" / "attribution.json"


# ----------------------------------------------------------------------------- the model

def ResNetish(width: int = 16, n_classes: int = 10) -> nn.Module:
    """The book's CIFAR-10 network (freqkit.models.ResNetCIFAR; width 16 = the cpu profile)."""
    from freqkit.models import ResNetCIFAR
    return ResNetCIFAR(width=width, n_classes=n_classes)


def _setup(device: str, batch: int, size: int, width: int, seed: int = 0):
    torch.manual_seed(seed)
    model = ResNetish(width).to(device).eval()
    x = torch.rand(batch, 3, size, size, device=device)
    with torch.no_grad():
        t = model(x).argmax(1)
    return model, x, t


def _variants(model, x, t, n_steps, ibs):
    from captum.attr import IntegratedGradients

    from freqkit.attribution import FrequencyModel, attribute
    from freqkit.transforms import dct2

    fm = FrequencyModel(model, "dct")
    ig_pix, ig_freq = IntegratedGradients(model), IntegratedGradients(fm)
    zeros = torch.zeros_like(x)
    return {
        "pixel": lambda: ig_pix.attribute(x, baselines=zeros, target=t, n_steps=n_steps, internal_batch_size=ibs),
        "captum_freq": lambda: ig_freq.attribute(dct2(x), baselines=zeros, target=t, n_steps=n_steps,
                                                 internal_batch_size=ibs),
        "freqkit": lambda: attribute(model, x, t, method="ig", basis="dct", n_steps=n_steps,
                                     internal_batch_size=ibs).scores,
    }


def _proc_status_bytes(field: str) -> int | None:
    """A memory field of /proc/self/status (VmRSS, VmHWM) in bytes; None off Linux."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def _cpu_peak_worker(q, variant, device, batch, size, width, n_steps, ibs, threads):
    """Fresh process: growth of the peak RSS (VmHWM) over the RSS just before the call.

    VmHWM belongs to the process's own address space, so unlike ``ru_maxrss`` it does not
    inherit the parent's peak across fork/exec; a fresh process also means no memory kept
    by the allocator from an earlier, larger run hides this run's growth.
    """
    torch.set_num_threads(threads)
    model, x, t = _setup(device, batch, size, width)
    fns = _variants(model, x, t, n_steps, ibs)
    # No warm-up call: memory it freed could be kept by the allocator and reused unseen.
    try:  # reset the high-water mark to the current RSS (Linux >= 4.0)
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        reset = True
    except OSError:
        reset = False
    before = _proc_status_bytes("VmRSS")
    fns[variant]()
    peak = _proc_status_bytes("VmHWM")
    if before is None or peak is None:
        q.put({"peak_bytes": None, "note": "no /proc/self/status"})
    else:
        q.put({"peak_bytes": max(0, peak - before), "hwm_reset": reset})


def _peak_memory(variant, args, ibs) -> dict:
    if str(args.device).startswith("cuda"):
        model, x, t = _setup(args.device, args.batch, args.size, args.width)
        fns = _variants(model, x, t, args.n_steps, ibs)
        torch.cuda.synchronize()
        base = torch.cuda.memory_allocated()
        torch.cuda.reset_peak_memory_stats()
        fns[variant]()
        torch.cuda.synchronize()
        return {"peak_bytes": int(torch.cuda.max_memory_allocated() - base), "kind": "cuda_max_memory_allocated"}
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    p = ctx.Process(target=_cpu_peak_worker, args=(q, variant, args.device, args.batch, args.size, args.width,
                                                   args.n_steps, ibs, args.threads))
    p.start()
    res = q.get(timeout=600)
    p.join()
    res["kind"] = "cpu_peak_rss_growth"
    return res


# ----------------------------------------------------------------------------- run

def _defaults() -> dict:
    return vars(build_parser().parse_args([]))


def run(args) -> dict:
    """Run the benchmark; ``args`` is an argparse.Namespace or a dict of the CLI options."""
    if isinstance(args, dict):
        merged = _defaults()
        merged.update(args)
        args = argparse.Namespace(**merged)
    if not str(args.device).startswith("cuda"):
        torch.set_num_threads(args.threads)
    ibs = None if args.internal_batch_size in (None, 0) else args.internal_batch_size
    model, x, t = _setup(args.device, args.batch, args.size, args.width)
    fns = _variants(model, x, t, args.n_steps, ibs)
    # warm-up (allocator, kernels, DCT-matrix cache), then interleaved rounds
    med, times = interleaved_medians(fns, args.repeats, args.device)
    result = {
        "benchmark": "attribution_ig_frequency_vs_pixel",
        "setting": {"device": str(args.device), "batch": args.batch, "n_steps": args.n_steps, "size": args.size,
                    "width": args.width, "repeats": args.repeats, "internal_batch_size": ibs,
                    "threads": args.threads if not str(args.device).startswith("cuda") else None,
                    "model": f"ResNetCIFAR(width={args.width}), 3x{args.size}x{args.size}, eval mode",
                    "ig_method": "gausslegendre"},
        "machine": {"python": platform.python_version(), "torch": torch.__version__, "platform": platform.platform(),
                    "gpu": torch.cuda.get_device_name(0) if str(args.device).startswith("cuda") else None},
        "times_s": times,
        "median_s": med,
        "ratio_freqkit_over_pixel": med["freqkit"] / med["pixel"],
        "ratio_captum_freq_over_pixel": med["captum_freq"] / med["pixel"],
        "goal_ratio": 1.10,
    }
    result["meets_goal"] = result["ratio_freqkit_over_pixel"] <= result["goal_ratio"]
    if not args.skip_memory:
        mem = []
        for setting in args.memory_ibs:
            s = None if setting == 0 else setting
            for variant in ("freqkit", "pixel"):
                m = _peak_memory(variant, args, s)
                mem.append({"variant": variant, "internal_batch_size": s, **m})
        result["peak_memory"] = mem
    if args.out:
        from freqkit._io import atomic_write_json

        atomic_write_json(result, Path(args.out))
    return result


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--n-steps", type=int, default=32)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--size", type=int, default=32, help="image side (CIFAR: 32)")
    p.add_argument("--width", type=int, default=16, help="ResNet base width")
    p.add_argument("--internal-batch-size", type=int, default=0, help="for the timing runs; 0 = none")
    p.add_argument("--memory-ibs", type=int, nargs="*", default=[0, 64, 16],
                   help="internal_batch_size settings for the peak-memory runs (0 = none)")
    p.add_argument("--skip-memory", action="store_true")
    p.add_argument("--threads", type=int, default=1, help="CPU threads (the machine may be shared)")
    p.add_argument("--out", default=str(DEFAULT_OUT), help="JSON path ('' to skip writing)")
    return p


def main(argv=None) -> dict:
    args = build_parser().parse_args(argv)
    res = run(args)
    s, med = res["setting"], res["median_s"]
    print(f"IG on {s['model']}, batch {s['batch']}, n_steps {s['n_steps']}, device {s['device']}, "
          f"median of {s['repeats']}:")
    for name, v in med.items():
        print(f"  {name:12s} {v * 1000:9.1f} ms")
    print(f"  freqkit / pixel     = {res['ratio_freqkit_over_pixel']:.3f} (goal <= {res['goal_ratio']})")
    print(f"  captum_freq / pixel = {res['ratio_captum_freq_over_pixel']:.3f}")
    for m in res.get("peak_memory", []):
        mib = "n/a" if m["peak_bytes"] is None else f"{m['peak_bytes'] / 2 ** 20:8.1f} MiB"
        print(f"  peak memory {m['variant']:8s} internal_batch_size={m['internal_batch_size']}: {mib} [{m['kind']}]")
    if args.out:
        print(f"wrote {args.out}")
    return res


if __name__ == "__main__":
    main()
