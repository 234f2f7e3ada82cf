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
import bench_bands  # noqa: E402
import bench_training  # noqa: E402
import bench_transforms  # noqa: E402
from freqkit._io import atomic_write_bytes, atomic_write_json  # noqa: E402


def _table(results: dict) -> str:
    dev = results["machine"]["device"]
    lines = [f"Measured {results['machine']['date']} on {results['machine']['device_name']} ({dev}), "
             f"torch {results['machine']['torch']}, {results['machine']['threads']} CPU threads; "
             "times are medians over repeats; ratio = freqkit / reference in the same run.", "",
             "| benchmark | setting | freqkit | reference | ratio | goal |", "|---|---|---|---|---|---|"]
    tr = results.get("transforms", {"rows": []})
    for row in tr["rows"]:
        shape = "x".join(map(str, row["shape"]))
        if "scipy_dctn_s" in row:
            lines.append(f"| dct2 vs scipy.fft.dctn | {shape} | {row['freqkit_dct2_s'] * 1e3:.3f} ms | "
                         f"{row['scipy_dctn_s'] * 1e3:.3f} ms | {row['ratio_vs_scipy']:.2f} | <= 1.00 |")
        lines.append(f"| dct2 vs FFT-based DCT (torch) | {shape} | {row['freqkit_dct2_s'] * 1e3:.3f} ms | "
                     f"{row['torch_fft_dct2_s'] * 1e3:.3f} ms | {row['ratio_vs_torch_fft']:.2f} | - |")
    at = results.get("attribution")
    if at:
        s = at["setting"]
        lines.append(f"| frequency IG vs Captum pixel IG | batch {s['batch']}, n_steps {s['n_steps']}, {s['model']} | "
                     f"{at['median_s']['freqkit']:.3f} s | {at['median_s']['pixel']:.3f} s | "
                     f"{at['ratio_freqkit_over_pixel']:.2f} | <= 1.10 |")
    ak = results.get("attacks")
    if ak:
        s, med = ak["setting"], ak["median_seconds"]
        for key, (ours, ref) in {"linf_dct_low_band": ("freqkit_pgd_dct_low_band", "torchattacks_pgd"),
                                 "linf_dft_mid_band": ("freqkit_pgd_dft_mid_band", "torchattacks_pgd"),
                                 "l2_dct_low_band": ("freqkit_pgdl2_dct_low_band", "torchattacks_pgdl2"),
                                 "linf_no_band": ("freqkit_pgd_no_band", "torchattacks_pgd")}.items():
            lines.append(f"| band PGD vs torchattacks PGD ({key}) | batch {s['batch']}, {s['steps']} steps, "
                         f"{s['model']} | {med[ours]:.3f} s | {med[ref]:.3f} s | "
                         f"{ak['ratio_vs_torchattacks'][key]:.2f} | <= 1.15 |")
        hm = ak["fourier_heatmap"]
        per1000 = "measured" if hm["images"] >= 1000 else f"extrapolated from {hm['images']} images"
        lines.append(f"| Fourier heat map, all {hm['directions_evaluated']} directions (32x32) | {hm['source']}, "
                     f"batch {hm['batch_size']}, {s['model']} | {hm['seconds_per_1000_images']:.1f} s per 1,000 "
                     f"images ({per1000}) | - | - | - |")
    bd = results.get("bands")
    if bd:
        s = bd["setting"]
        for key, r in bd["rows"].items():
            ref = {"occlusion": "FeatureAblation", "shapley_exact": "ShapleyValues",
                   "shapley_sampled": "ShapleyValueSampling"}[key]
            lines.append(f"| band {key.replace('_', ' ')} vs Captum {ref} | {s['bands'][key]}, batch {s['batch']}, "
                         f"{s['model']} | {r['freqkit_s_per_image'] * 1e3:.1f} ms per image | "
                         f"{r['captum_s_per_image'] * 1e3:.1f} ms per image | {r['ratio']:.2f} | - |")
    tr = results.get("training")
    if tr and "skipped" not in tr:
        cfg = tr["config"]
        setting = (f"{tr['preset']} preset: ResNet width {cfg['width']}, {cfg['epochs']} epochs, batch "
                   f"{cfg['batch_size']}, {tr['n_train']} training images")
        if tr["mode"] == "train":
            ab = tr["published"]["airbench94"]
            lines.append(f"| CIFAR-10 training to the preset's accuracy | {setting} | {tr['train_seconds']:.1f} s, "
                         f"{tr['test_accuracy']:.1%} on {tr['n_test']} test images ({tr['images_per_second']:.0f} "
                         f"img/s) | airbench94 (published): {ab['accuracy']:.0%} in {ab['seconds']} s on an A100 | "
                         f"{tr['train_seconds'] / ab['seconds']:.1f} (not like for like) | - |")
        else:
            c = tr.get("cached_preset_model")
            done = (f"; cached model: {c['train_seconds']:.0f} s, {c['test_accuracy_now']:.1%} on {c['n_test']} "
                    "test images" if c else "")
            lines.append(f"| CIFAR-10 training, cpu throughput | {setting} | {tr['images_per_second']:.0f} img/s -> "
                         f"{tr['extrapolated_train_seconds']:.0f} s extrapolated{done} | - | - | - |")
    elif tr:
        lines.append(f"| CIFAR-10 training | skipped: {tr['skipped']} | - | - | - | - |")
    return "\n".join(lines) + "\n"


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--quick", action="store_true", help="fewer sizes and repeats (a few minutes on 2 cores)")
    p.add_argument("--readme", action="store_true", help="write the table into README.md")
    p.add_argument("--out", default=str(HERE / "out"))
    p.add_argument("--training-cache", default=None,
                   help="GPU training benchmark: keep its checkpoint here (default: a temporary folder)")
    p.add_argument("--skip", nargs="*", default=[], choices=("transforms", "attribution", "bands", "attacks",
                                                              "training"), help="benchmarks to leave out")
    p.add_argument("--render", metavar="RESULTS_JSON",
                   help="only print the table of a stored results.json (with --readme-block, into README.md)")
    p.add_argument("--readme-block", default=None, help="with --render: the README block name (e.g. perf-gpu)")
    args = p.parse_args(argv)
    if args.render:
        print(render(args.render, args.readme_block))
        return
    gpu = args.device.startswith("cuda")
    out = Path(args.out)
    t0 = time.time()
    rep = 5 if args.quick else 20
    results = {"machine": {"device": args.device, "torch": torch.__version__, "python": platform.python_version(),
                           "threads": torch.get_num_threads(), "date": time.strftime("%Y-%m-%d"),
                           "device_name": (torch.cuda.get_device_name(0) if args.device.startswith("cuda")
                                           else f"{platform.machine()} CPU, {torch.get_num_threads()} threads")}}
    have_data = _cifar_available()
    results["sizes"] = "gpu" if gpu else ("cpu quick" if args.quick else "cpu")

    def step(name, fn):
        if name in args.skip:
            return
        print(f"== {name}", flush=True)
        t = time.time()
        results[name] = fn()
        results.setdefault("seconds", {})[name] = time.time() - t
        atomic_write_json(results, out / "results.json")  # a partial table survives a later failure

    step("transforms", lambda: bench_transforms.run(argparse.Namespace(device=args.device, repeats=rep,
                                                                       quick=args.quick)))
    step("attribution", lambda: bench_attribution.run({
        "device": args.device, "repeats": 3 if args.quick else 7, "threads": torch.get_num_threads(),
        "skip_memory": args.quick or gpu, "out": str(out / "attribution.json"),
        **({"batch": 64, "n_steps": 64, "width": 64} if gpu else {})}))
    step("bands", lambda: bench_bands.run(argparse.Namespace(
        device=args.device, batch=64 if gpu else (4 if args.quick else 8), width=64 if gpu else 16,
        budget=4096 if gpu else 256, exact_bands=6, sampled_bands=16, samples=32,
        repeats=2 if args.quick else 3)))
    step("attacks", lambda: bench_attacks.run(_attack_args(args, out, gpu, have_data)))
    if have_data:
        step("training", lambda: bench_training.run(argparse.Namespace(
            device=args.device, preset=None, mode=None, n_probe=1024 if args.quick else 2048, data_root=None,
            cache_dir=args.training_cache)))
    elif "training" not in args.skip:
        results["training"] = {"skipped": "no CIFAR-10 training images under the data root (FREQKIT_DATA)"}
    results["seconds_total"] = time.time() - t0
    atomic_write_json(results, out / "results.json")
    table = _table(results)
    atomic_write_bytes(out / "RESULTS.md", table.encode())
    print(table)
    if args.readme:
        write_readme_block(table, "perf")
    print(f"all benchmarks: {results['seconds_total']:.0f} s")


def write_readme_block(table: str, name: str) -> None:
    """Replace the text between ``<!-- NAME:start -->`` and ``<!-- NAME:end -->`` in README.md."""
    readme = HERE.parent / "README.md"
    text = readme.read_text()
    a, b = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
    if a not in text or b not in text:
        raise SystemExit(f"README.md has no {a} ... {b} block to replace")
    head, rest = text.split(a, 1)
    _, tail = rest.split(b, 1)
    atomic_write_bytes(readme, (head + a + "\n" + table + b + tail).encode())
    print(f"README.md block '{name}' updated")


def render(path: str, block: str | None) -> str:
    """The table of a stored results.json (e.g. a GPU run brought back by the device tool)."""
    import json
    results = json.loads(Path(path).read_text())
    table = _table(results)
    if block:
        write_readme_block(table, block)
    return table


def _cifar_available() -> bool:
    from freqkit.data import dataset_info
    try:
        info = dataset_info("cifar10")
    except Exception:  # noqa: BLE001 - no data root at all
        return False
    return bool(info["found"].get("train") and info["found"].get("test"))


def _attack_args(args, out, gpu: bool, have_data: bool):
    # On a GPU the cpu sizes (batch 32, width 16) would time kernel launches, not the attack.
    return argparse.Namespace(device=args.device, batch=256 if gpu else 32, steps=10, repeats=3 if args.quick else 5,
                              width=64 if gpu else 16, size=32, proj_iters=8,
                              heatmap_images=1000 if gpu else (8 if args.quick else 32), heatmap_real=have_data,
                              heatmap_batch=4096 if gpu else 256, threads=0, out=str(out / "attacks.json"), seed=0)


if __name__ == "__main__":
    main()
