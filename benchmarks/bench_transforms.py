"""dct2 / idct2 against scipy.fft.dctn (CPU) and an FFT-based DCT in torch, in one run.

Usage: python benchmarks/bench_transforms.py [--device cpu] [--repeats 20] [--quick] [--threads 1]
Writes benchmarks/out/transforms.json (atomically) and prints a markdown table.  Ratios
are freqkit time / reference time measured in the same run (< 1: freqkit is faster).
torch runs on ``--threads`` intra-op threads (default 1), the same as scipy.fft.dctn,
which is single-threaded unless given ``workers``: like is compared with like.
"""
from __future__ import annotations

import argparse
import platform
import sys
from pathlib import Path

import numpy as np
import scipy.fft as sfft
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from _timing import interleaved_medians  # noqa: E402

import freqkit as fk  # noqa: E402
from freqkit._io import atomic_write_json  # noqa: E402


def fft_dct2(x: torch.Tensor) -> torch.Tensor:
    """Orthonormal DCT-II via one FFT per axis (Makhoul 1980): the usual torch alternative."""
    def dct1(v):  # along the last dim
        n = v.shape[-1]
        w = torch.cat([v[..., ::2], v[..., 1::2].flip(-1)], dim=-1)
        f = torch.fft.fft(w, dim=-1)
        k = torch.arange(n, device=v.device, dtype=v.dtype)
        c = (f * torch.exp(-1j * torch.pi * k / (2 * n))).real * 2
        c = c / (2 * n) ** 0.5
        c[..., 0] /= 2 ** 0.5
        return c
    return dct1(dct1(x).transpose(-1, -2)).transpose(-1, -2)


def run(args) -> dict:
    threads = getattr(args, "threads", 1)
    old_threads = torch.get_num_threads()
    if threads and threads > 0:
        torch.set_num_threads(threads)
    try:
        return _run(args)
    finally:
        torch.set_num_threads(old_threads)


def _run(args) -> dict:
    dev = torch.device(args.device)
    sizes = [(32, 32, 3), (28, 28, 1), (224, 224, 3)]
    batches = [1, 64, 1024] if args.quick else [1, 16, 64, 256, 1024]
    rows = []
    for h, w, ch in sizes:
        for n in batches:
            if h == 224 and n > 64:  # 1024 x 3 x 224 x 224 floats = 600 MB per copy: keep it to 64
                continue
            x = torch.rand(n, ch, h, w, device=dev)
            ref = sfft.dctn(x.cpu().numpy(), axes=(-2, -1), norm="ortho")
            err = float(np.abs(fk.dct2(x).cpu().numpy() - ref).max())
            fns = {"dct2": lambda: fk.dct2(x), "idct2": lambda: fk.idct2(x), "fft": lambda: fft_dct2(x)}
            if dev.type == "cpu":
                xn = x.numpy()
                fns["scipy"] = lambda: sfft.dctn(xn, axes=(-2, -1), norm="ortho")
            # interleaved, so that load drift on a shared machine hits every contender alike
            med, _ = interleaved_medians(fns, args.repeats, dev)
            t_fk, t_inv, t_fft = med["dct2"], med["idct2"], med["fft"]
            row = {"shape": [n, ch, h, w], "freqkit_dct2_s": t_fk, "freqkit_idct2_s": t_inv,
                   "torch_fft_dct2_s": t_fft, "max_abs_err_vs_scipy": err,
                   "ratio_vs_torch_fft": t_fk / t_fft}
            if "scipy" in med:
                row["scipy_dctn_s"] = med["scipy"]
                row["ratio_vs_scipy"] = t_fk / med["scipy"]
            rows.append(row)
            print(f"{n:5d}x{ch}x{h}x{w}: freqkit {t_fk * 1e3:8.3f} ms"
                  + (f" | scipy {row['scipy_dctn_s'] * 1e3:8.3f} ms (ratio {row['ratio_vs_scipy']:.2f})"
                     if "scipy_dctn_s" in row else "")
                  + f" | torch-fft {t_fft * 1e3:8.3f} ms (ratio {row['ratio_vs_torch_fft']:.2f}) | err {err:.1e}",
                  flush=True)
    return {"benchmark": "transforms", "device": str(dev), "device_name": (torch.cuda.get_device_name(dev)
            if dev.type == "cuda" else platform.processor() or platform.machine()),
            "torch": torch.__version__, "threads": torch.get_num_threads(), "scipy_workers": 1, "repeats": args.repeats,
            "machine": platform.node(), "rows": rows}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--device", default="cpu")
    p.add_argument("--repeats", type=int, default=20)
    p.add_argument("--quick", action="store_true", help="fewer batch sizes")
    p.add_argument("--threads", type=int, default=1,
                   help="torch intra-op threads (default 1, like scipy's dctn; 0: leave torch's default)")
    p.add_argument("--out", default=str(Path(__file__).parent / "out" / "transforms.json"))
    args = p.parse_args(argv)
    res = run(args)
    atomic_write_json(res, Path(args.out))
    print("wrote", args.out)


if __name__ == "__main__":
    main()
