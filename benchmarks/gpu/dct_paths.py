"""Where the FFT path of dct2 overtakes the two-GEMM path on this device (median ms, batch 64x3).

    python benchmarks/gpu/dct_paths.py [--device cuda]

Prints one row per size: GEMM path, FFT path (Makhoul 1980), and the default's choice.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE.parents[1]))

from _timing import interleaved_medians  # noqa: E402

from freqkit.transforms import dct2  # noqa: E402


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--repeats", type=int, default=30)
    args = ap.parse_args(argv)
    print(f"{'size':>5} {'gemm ms':>9} {'fft ms':>9}  default")
    for n in (28, 32, 64, 96, 128, 224):
        x = torch.rand(64, 3, n, n, device=args.device)
        med, _ = interleaved_medians({"gemm": lambda: dct2(x, _fft_min_size=10**9),
                                      "fft": lambda: dct2(x, _fft_min_size=1),
                                      "default": lambda: dct2(x)}, args.repeats, args.device, warmup=3)
        print(f"{n:5d} {med['gemm'] * 1e3:9.3f} {med['fft'] * 1e3:9.3f}  {med['default'] * 1e3:9.3f}")


if __name__ == "__main__":
    main()
