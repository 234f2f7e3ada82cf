"""Run every benchmark in one go and write one table (markdown + JSON).

Usage:  .venv/bin/python benchmarks/run_all.py [--device cpu|cuda] [--quick] [--readme]

Each benchmark measures freqkit and the tool a user would pick instead (scipy, Captum,
torchattacks) in the same run, as medians over repeats, and reports the ratio
freqkit / reference (< 1: freqkit is faster).  The CPU training benchmark compares the new
cpu preset with the old one (bench_training.py, side by side, 2 seeds x bf16/fp32: about an
hour on 2 cores; ``--quick`` shrinks it to seconds, ``--training-record FILE`` renders a
stored record instead of running it).  Output: benchmarks/out/results.json and
benchmarks/out/RESULTS.md; with --readme the table also replaces the block between
``<!-- perf:start -->`` and ``<!-- perf:end -->`` in README.md.
"""
from __future__ import annotations

import argparse
import importlib.util
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
import bench_distributed  # noqa: E402
import bench_training  # noqa: E402
import bench_transforms  # noqa: E402
from _timing import cpu_name  # noqa: E402
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
                         f"{ak['ratio_vs_torchattacks'][key]:.2f} | <= {ak.get('goal_ratio_max', 1.15):.2f} |")
        ap = ak.get("apgd")
        if ap:
            for key, (ours, ref) in {"linf_dct_low_band": ("freqkit_apgd_dct_low_band", "reference_apgd"),
                                     "l2_dct_low_band": ("freqkit_apgdl2_dct_low_band", "reference_apgdl2"),
                                     "linf_no_band": ("freqkit_apgd_no_band", "reference_apgd")}.items():
                lines.append(f"| band APGD vs reference APGD ({key}) | batch {s['batch']}, {ap['steps']} steps, "
                             f"{ap['restarts']} restart, {s['model']}; reference: {ap['reference']} | "
                             f"{med[ours]:.3f} s | {med[ref]:.3f} s | {ap['ratio_vs_reference'][key]:.2f} | "
                             f"<= {ap['goal_ratio_max']:.2f} |")
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
    lines.extend(distributed_rows(results.get("distributed")))
    tr = results.get("training")
    if tr and "skipped" not in tr:
        lines.extend(training_rows(tr))
    elif tr:
        lines.append(f"| CIFAR-10 training | skipped: {tr['skipped']} | - | - | - | - |")
    return "\n".join(lines) + "\n"


def _ceiling(s: dict) -> str:
    """" (2 independent processes: X%)": the efficiency of the no-communication ceiling (older records: "")."""
    return f" (2 independent processes: {s['ceiling_efficiency']:.0%})" if "ceiling_efficiency" in s else ""


def distributed_rows(d: dict | None) -> list[str]:
    """The README rows of a ``bench_distributed`` record: 1 -> 2 processes, and the 224x224 costs."""
    if not d:
        return []
    s, st = d["scaling"], d["scaling"]["setting"]
    med = s["median_seconds"]
    load = f"load average {d['machine']['load_average_before']} -> {d['machine']['load_average_after']}"
    rows = [f"| Fourier heat map, 1 -> 2 processes (torch.distributed, gloo) | {st['n_images']} images x 514 "
            f"directions (32x32), {st['model']}, 1 thread per process, split by direction; {d['machine']['cpu']}, "
            f"{load} | "
            f"{med['2 processes, 1 thread each']:.2f} s on 2 processes (work efficiency {s['work_efficiency']:.0%}) | "
            f"{med['1 process, 1 thread']:.2f} s on 1 process (1 process x 2 threads: "
            f"{med['1 process, 2 threads']:.2f} s) | efficiency {s['efficiency']:.0%}"
            f"{_ceiling(s)} | >= {s['goal_efficiency_at_least']:.0%}: {'met' if s['goal_met'] else 'missed'} |"]
    e = d.get("scaling_evaluate_defense")
    if e:
        st, med = e["setting"], e["median_seconds"]
        rows.append(f"| robust evaluation, 1 -> 2 processes (torch.distributed, gloo) | {st['n_images']} images, "
                    f"{st['attacks']}, batch {st['batch_size']}, {st['model']}, 1 thread per process, split by whole "
                    f"batch; {d['machine']['cpu']}, {load} | {med['2 processes, 1 thread each']:.2f} s on 2 processes "
                    f"(work efficiency {e['work_efficiency']:.0%}) | {med['1 process, 1 thread']:.2f} s on 1 process "
                    f"(1 process x 2 threads: {med['1 process, 2 threads']:.2f} s) | efficiency {e['efficiency']:.0%}"
                    f"{_ceiling(e)} | >= {e['goal_efficiency_at_least']:.0%}: {'met' if e['goal_met'] else 'missed'} |")
    im = d.get("imagenet_224")
    if im:
        st = im["setting"]
        sec = im["heatmap_seconds_per_image"]
        rss = im["peak_rss_growth_mb"]
        rows += [f"| Fourier heat map at 224x224, sub-grid | {st['model']}, every 28th frequency "
                 f"({st['heatmap']['directions']} directions), batch {st['heatmap']['batch_size']}, "
                 f"{st['threads']} threads | {im['heatmap_ms_per_image_direction']:.1f} ms per image and direction: "
                 f"{sec['full grid']:.0f} s per image for all 25,090 directions, {sec['directions=4']:.0f} s with "
                 f"directions=4, {sec['directions=8']:.0f} s with 8 | - | - | - |",
                 f"| frequency IG at 224x224 | {st['model']}, DCT, n_steps {st['ig']['n_steps']}, internal_batch_size "
                 f"{st['ig']['internal_batch_size']}, {st['threads']} threads | {im['ig_seconds_per_image']:.2f} s per "
                 f"image | - | - | - |",
                 f"| peak RSS at 224x224 (growth over the process's RSS) | same settings, fresh process per run | IG: "
                 f"{rss['ig_1_image']:.0f} MB for 1 image, {rss['ig_4_images']:.0f} MB for 4; heat map: "
                 f"{rss['heatmap_2_images']:.0f} MB for 2, {rss['heatmap_4_images']:.0f} MB for 4 | - | - | - |"]
    return rows


def _model(cfg: dict) -> str:
    """'AirNet widths 16/96/96', 'ResNet width 16', ... for a training config."""
    w = cfg["width"]
    if cfg.get("arch") == "airnet":
        f = cfg.get("width_factor", 4)
        return f"AirNet widths {w}/{f * w}/{f * w}"
    name = {"resnet": "ResNet", "smallcnn": "SmallCNN"}.get(cfg.get("arch"), str(cfg.get("arch")))
    return f"{name} width {w}"


def _tta(acc) -> str:
    """`` (mirror TTA x%)`` where a record measured the same weights with test-time mirroring."""
    return "" if acc is None else f" (mirror TTA {acc:.1%})"


def training_rows(tr: dict) -> list[str]:
    """The README rows of a ``bench_training`` record (side_by_side: one row per precision)."""
    if tr["mode"] == "side_by_side":
        rows = []
        new, old = tr["configs"]["new"], tr["configs"]["old"]
        for prec, s in tr["summary"].items():
            n, o = s["new"], s["old"]
            cpu = (f"{tr['cpu_model']}, native bf16: {'yes' if tr['native_bf16'] else 'no'}, "
                   f"{tr['torch_threads']} threads")
            what = "bf16 autocast" if prec == "bf16" else "fp32 (amp off: what a CPU without native bf16 runs)"
            seeds = ", ".join(map(str, tr["seeds"]))
            quick = " QUICK (512 images, 1 epoch: not a measurement of the presets)" if tr.get("quick") else ""
            setting = (f"{what}; new: {_model(new)}, {new['epochs']} epochs, batch "
                       f"{new['batch_size']}{', flip TTA' if new.get('tta') else ', no TTA'}; old: {_model(old)}, "
                       f"{old['epochs']} epochs, batch "
                       f"{old['batch_size']}; {n['n_train']} training images, mean of seeds {seeds}, test accuracy "
                       f"on {n['n_test']} images; {cpu}{quick}")
            tta_n, tta_o = n.get("mean_accuracy_mirror_tta"), o.get("mean_accuracy_mirror_tta")
            status = "met" if s["goal_met"] else "missed"
            if not s["goal_met"] and s.get("goal_met_with_mirror_tta"):
                status += " (met with mirror TTA)"
            rows.append(f"| CIFAR-10 training, new vs old cpu preset ({prec}) | {setting} | {n['mean_seconds']:.0f} s, "
                        f"{n['mean_accuracy']:.1%}{_tta(tta_n)} | {o['mean_seconds']:.0f} s, "
                        f"{o['mean_accuracy']:.1%}{_tta(tta_o)} | {s['ratio']:.2f} | <= "
                        f"{tr['goal']['ratio_at_most']:.2f} and >= {tr['goal']['new_accuracy_at_least']:.0%}: "
                        f"{status} |")
        return rows
    cfg = tr["config"]
    setting = (f"{tr['preset']} preset: {_model(cfg)}, {cfg['epochs']} epochs, batch "
               f"{cfg['batch_size']}, {tr['n_train']} training images")
    if tr["mode"] == "train":
        ab = tr["published"]["airbench94"]
        return [f"| CIFAR-10 training to the preset's accuracy | {setting} | {tr['train_seconds']:.1f} s, "
                f"{tr['test_accuracy']:.1%} on {tr['n_test']} test images ({tr['images_per_second']:.0f} "
                f"img/s) | airbench94 (published): {ab['accuracy']:.0%} in {ab['seconds']} s on an A100 | "
                f"{tr['train_seconds'] / ab['seconds']:.1f} (not like for like) | - |"]
    # the throughput mode of older records
    c = tr.get("cached_preset_model")
    done = (f"; cached model: {c['train_seconds']:.0f} s, {c['test_accuracy_now']:.1%} on {c['n_test']} "
            "test images" if c else "")
    return [f"| CIFAR-10 training, cpu throughput | {setting} | {tr['images_per_second']:.0f} img/s -> "
            f"{tr['extrapolated_train_seconds']:.0f} s extrapolated{done} | - | - | - |"]


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--quick", action="store_true", help="fewer sizes and repeats (a few minutes on 2 cores)")
    p.add_argument("--readme", action="store_true", help="write the table into README.md")
    p.add_argument("--out", default=str(HERE / "out"))
    p.add_argument("--training-cache", default=None,
                   help="GPU training benchmark: keep its checkpoint here (default: a temporary folder)")
    p.add_argument("--training-record", default=None, metavar="TRAINING_JSON",
                   help="use this stored bench_training record (e.g. benchmarks/measured/...) instead of running the "
                        "CPU side-by-side training comparison (about an hour on a 2-core machine: 2 seeds x old/new "
                        "x bf16/fp32)")
    p.add_argument("--skip", nargs="*", default=[], choices=("transforms", "attribution", "bands", "attacks",
                                                              "training", "distributed"),
                   help="benchmarks to leave out")
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
                                           else f"{cpu_name()}, {torch.get_num_threads()} threads")}}
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
    if not gpu:   # CPU processes (gloo) and 224x224 costs on the CPU
        step("distributed", lambda: bench_distributed.run({"quick": args.quick, "out": str(out / "distributed.json")}))
    if args.training_record and "training" not in args.skip:
        import json
        results["training"] = json.loads(Path(args.training_record).read_text())
    elif have_data:
        step("training", lambda: bench_training.run(argparse.Namespace(
            device=args.device, preset=None, mode=None, quick=args.quick, seeds=None, precisions=None,
            data_root=None, cache_dir=args.training_cache)))
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
                              heatmap_batch=4096 if gpu else 256, threads=0, out=str(out / "attacks.json"), seed=0,
                              apgd_steps=None, no_apgd=importlib.util.find_spec("pyautoattack") is None)


if __name__ == "__main__":
    main()
