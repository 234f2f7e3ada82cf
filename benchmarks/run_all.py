"""Run every benchmark in one go and write one table (markdown + JSON).

Usage:  .venv/bin/python benchmarks/run_all.py [--device cpu|cuda] [--quick] [--readme]

Each benchmark measures freqkit and the tool a user would pick instead (scipy, Captum,
torchattacks) in the same run, as medians over repeats, and reports the ratio
freqkit / reference (< 1: freqkit is faster).  Output: benchmarks/out/results.json and
benchmarks/out/RESULTS.md; with --readme the table also replaces the block between
``<!-- perf:start -->`` and ``<!-- perf:end -->`` in README.md.
"""
from __future__ import annotations

import argparse
import platform
import sys
import time
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

import bench_attacks  # noqa: E402
import bench_attribution  # noqa: E402
import bench_transforms  # noqa: E402
from freqkit._io import atomic_write_bytes, atomic_write_json  # noqa: E402


def _table(results: dict) -> str:
    dev = results["machine"]["device"]
    lines = [f"Measured {results['machine']['date']} on {results['machine']['device_name']} ({dev}), "
             f"torch {results['machine']['torch']}, {results['machine']['threads']} CPU threads; "
             "times are medians over repeats; ratio = freqkit / reference in the same run.", "",
             "| benchmark | setting | freqkit | reference | ratio | goal |", "|---|---|---|---|---|---|"]
    tr = results["transforms"]
    for row in tr["rows"]:
        shape = "x".join(map(str, row["shape"]))
        if "scipy_dctn_s" in row:
            lines.append(f"| dct2 vs scipy.fft.dctn | {shape} | {row['freqkit_dct2_s'] * 1e3:.3f} ms | "
                         f"{row['scipy_dctn_s'] * 1e3:.3f} ms | {row['ratio_vs_scipy']:.2f} | <= 1.00 |")
        lines.append(f"| dct2 vs FFT-based DCT (torch) | {shape} | {row['freqkit_dct2_s'] * 1e3:.3f} ms | "
                     f"{row['torch_fft_dct2_s'] * 1e3:.3f} ms | {row['ratio_vs_torch_fft']:.2f} | - |")
    at = results["attribution"]
    s = at["setting"]
    lines.append(f"| frequency IG vs Captum pixel IG | batch {s['batch']}, n_steps {s['n_steps']}, {s['model']} | "
                 f"{at['median_s']['freqkit']:.3f} s | {at['median_s']['pixel']:.3f} s | "
                 f"{at['ratio_freqkit_over_pixel']:.2f} | <= 1.10 |")
    ak = results["attacks"]
    s = ak["setting"]
    med = ak["median_seconds"]
    for key, (ours, ref) in {"linf_dct_low_band": ("freqkit_pgd_dct_low_band", "torchattacks_pgd"),
                             "linf_dft_mid_band": ("freqkit_pgd_dft_mid_band", "torchattacks_pgd"),
                             "l2_dct_low_band": ("freqkit_pgdl2_dct_low_band", "torchattacks_pgdl2"),
                             "linf_no_band": ("freqkit_pgd_no_band", "torchattacks_pgd")}.items():
        lines.append(f"| band PGD vs torchattacks PGD ({key}) | batch {s['batch']}, {s['steps']} steps, "
                     f"{s['model']} | {med[ours]:.3f} s | {med[ref]:.3f} s | {ak['ratio_vs_torchattacks'][key]:.2f} "
                     "| <= 1.15 |")
    hm = ak["fourier_heatmap"]
    lines.append(f"| Fourier heat map (32x32) | {hm['images']} images, {hm['directions_evaluated']} directions | "
                 f"{hm['seconds_per_image_full_map']:.2f} s per image | - | - | - |")
    return "\n".join(lines) + "\n"


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--quick", action="store_true", help="fewer sizes and repeats (a few minutes on 2 cores)")
    p.add_argument("--readme", action="store_true", help="write the table into README.md")
    p.add_argument("--out", default=str(HERE / "out"))
    args = p.parse_args(argv)
    out = Path(args.out)
    t0 = time.time()
    rep = 5 if args.quick else 20
    results = {"machine": {"device": args.device, "torch": torch.__version__, "python": platform.python_version(),
                           "threads": torch.get_num_threads(), "date": time.strftime("%Y-%m-%d"),
                           "device_name": (torch.cuda.get_device_name(0) if args.device.startswith("cuda")
                                           else f"{platform.machine()} CPU, {torch.get_num_threads()} threads")}}
    print("== transforms", flush=True)
    results["transforms"] = bench_transforms.run(argparse.Namespace(device=args.device, repeats=rep,
                                                                    quick=args.quick))
    print("== attribution", flush=True)
    results["attribution"] = bench_attribution.run({"device": args.device, "repeats": 3 if args.quick else 7,
                                                    "threads": torch.get_num_threads(), "skip_memory": args.quick,
                                                    "out": str(out / "attribution.json")})
    print("== attacks", flush=True)
    results["attacks"] = bench_attacks.run(_attack_args(args, out))
    results["seconds_total"] = time.time() - t0
    atomic_write_json(results, out / "results.json")
    table = _table(results)
    atomic_write_bytes(out / "RESULTS.md", table.encode())
    print(table)
    if args.readme:
        readme = HERE.parent / "README.md"
        text = readme.read_text()
        a, b = "<!-- perf:start -->", "<!-- perf:end -->"
        if a not in text or b not in text:
            raise SystemExit(f"README.md has no {a} ... {b} block to replace")
        head, rest = text.split(a, 1)
        _, tail = rest.split(b, 1)
        atomic_write_bytes(readme, (head + a + "\n" + table + b + tail).encode())
        print("README.md performance table updated")
    print(f"all benchmarks: {results['seconds_total']:.0f} s")


def _attack_args(args, out):
    return argparse.Namespace(device=args.device, batch=32, steps=10, repeats=3 if args.quick else 5, width=16,
                            size=32, proj_iters=8, heatmap_images=4, threads=0, out=str(out / "attacks.json"), seed=0)


if __name__ == "__main__":
    main()
