"""Benchmark: band-limited PGD against torchattacks' PGD, band APGD against the reference APGD, heat maps.

What it measures, in one run on the same model and batch:

* ``torchattacks.PGD`` (Linf, no band): the reference cost of a PGD step.
* ``freqkit.pgd`` with ``band=None``: the same iteration (identical results).
* ``freqkit.pgd`` with a low-frequency DCT band and with a DFT band: the cost of keeping
  the perturbation in band, ball and box (the projection of ``freqkit.attacks``).
  The goal is a band projection costing at most 15% over torchattacks' PGD (issue 12: 10%).
* ``pyautoattack``'s ``APGDAttack`` (the reference Auto-PGD of Croce & Hein 2020, Linf and
  L2, one restart) against ``freqkit.apgd.apgd`` with the same steps and restarts, without a
  band (the same iteration) and with the low DCT band (two projections per step: after the
  gradient step and after the momentum step).  Goal: at most 1.15x the reference.
* ``freqkit.fourier_heatmap``: seconds per image and per basis direction (a conjugate pair
  of DFT frequencies counts once, as it is evaluated once).

Every attack runs with ``early_stop=False`` so that all do the same number of steps on the
whole batch (early stopping would make ours faster for reasons unrelated to the projection;
the reference APGD has none within a restart).
Times are medians over ``--repeats`` runs, interleaved so that drift on a shared machine
hits every contender alike.  The model is a small CIFAR-size ResNet with random weights
(the cost of an attack step does not depend on the weights).

    python benchmarks/bench_attacks.py --device cpu --batch 32 --steps 10 --repeats 3

writes ``benchmarks/out/attacks.json`` atomically; ``run(args) -> dict`` is the entry point
for a driver that runs every benchmark.
"""
from __future__ import annotations

import argparse
import platform
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn as nn

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

if str(REPO / "benchmarks") not in sys.path:
    sys.path.insert(0, str(REPO / "benchmarks"))

from _timing import interleaved_medians, timed  # noqa: E402

from freqkit.apgd import apgd as band_apgd  # noqa: E402
from freqkit import attacks as A  # noqa: E402
from freqkit.heatmaps import fourier_heatmap, n_fourier_directions  # noqa: E402
from freqkit.transforms import band_masks  # noqa: E402

OUT = REPO / "benchmarks" / "out" / "attacks.json"


def resnet_ish(width: int = 16, n_classes: int = 10) -> nn.Module:
    """The book's CIFAR-10 network (freqkit.models.ResNetCIFAR; width 16 = the cpu profile)."""
    from freqkit.models import ResNetCIFAR
    return ResNetCIFAR(width=width, n_classes=n_classes)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--batch", type=int, default=32, help="images per attack")
    p.add_argument("--steps", type=int, default=10, help="PGD steps")
    p.add_argument("--repeats", type=int, default=3, help="timed runs per contender (median)")
    p.add_argument("--width", type=int, default=16, help="ResNetCIFAR width (16: the cpu profile's model)")
    p.add_argument("--size", type=int, default=32, help="image side (CIFAR: 32)")
    p.add_argument("--proj-iters", type=int, default=8, help="projection iterations per PGD step")
    p.add_argument("--apgd-steps", type=int, default=None, help="APGD iterations (default: --steps)")
    p.add_argument("--no-apgd", action="store_true", help="skip the APGD comparison (pyautoattack missing)")
    p.add_argument("--heatmap-images", type=int, default=4, help="images for the Fourier heat map timing")
    p.add_argument("--heatmap-real", action="store_true",
                   help="time the heat map on CIFAR-10 test images of the data root (else random images)")
    p.add_argument("--heatmap-batch", type=int, default=256, help="perturbed images per forward pass")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: leave as is)")
    p.add_argument("--clock", choices=("wall", "cpu"), default="wall",
                   help="wall: wall-clock seconds (default); cpu: this process's CPU seconds (CPU runs with one "
                        "thread only: steadier on a machine shared with other jobs)")
    p.add_argument("--out", default=str(OUT), help="JSON output path")
    p.add_argument("--seed", type=int, default=0)
    return p.parse_args(argv)


def run(args) -> dict:
    """Run the benchmark described by ``args`` (see :func:`parse_args`) and return the record."""
    import torchattacks

    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    torch.manual_seed(args.seed)
    model = resnet_ish(args.width).to(device).eval()
    s = args.size
    x = torch.rand(args.batch, 3, s, s, device=device)
    with torch.no_grad():
        y = model(x).argmax(1)  # labels = predictions, so every image starts correctly classified
    eps, alpha, steps = 8 / 255, 2 / 255, args.steps
    low_dct = band_masks(s, s, 4, "radial", "dct", device=device)[0]
    mid_dft = band_masks(s, s, 4, "radial", "dft", device=device)[1]
    atk = torchattacks.PGD(model, eps=eps, alpha=alpha, steps=steps, random_start=True)

    def ours(band=None, basis="dct", norm="linf", e=eps, a=alpha):
        return lambda: A.pgd(model, x, y, e, norm=norm, steps=steps, step_size=a, band=band, basis=basis,
                             seed=args.seed, early_stop=False, proj_iters=args.proj_iters)

    contenders = {
        "torchattacks_pgd": lambda: atk(x, y),
        "freqkit_pgd_no_band": ours(),
        "freqkit_pgd_dct_low_band": ours(low_dct, "dct"),
        "freqkit_pgd_dft_mid_band": ours(mid_dft, "dft"),
        "torchattacks_pgdl2": (lambda a2=torchattacks.PGDL2(model, eps=0.5, alpha=0.1, steps=steps): a2(x, y)),
        "freqkit_pgdl2_dct_low_band": ours(low_dct, "dct", "l2", 0.5, 0.1),
    }
    apgd_steps = getattr(args, "apgd_steps", None) or steps
    ref_apgd_version = None
    if not getattr(args, "no_apgd", False):
        import pyautoattack
        from pyautoattack.autopgd_base import APGDAttack
        ref_apgd_version = pyautoattack.__version__
        ref_linf = APGDAttack(model, n_iter=apgd_steps, norm="Linf", eps=eps, seed=args.seed, n_restarts=1,
                              device=device)
        ref_l2 = APGDAttack(model, n_iter=apgd_steps, norm="L2", eps=0.5, seed=args.seed, n_restarts=1, device=device)

        def ours_apgd(band=None, norm="linf", e=eps):
            return lambda: band_apgd(model, x, y, e, norm=norm, steps=apgd_steps, band=band, seed=args.seed,
                                  early_stop=False, proj_iters=args.proj_iters)

        contenders.update({
            "reference_apgd": lambda: ref_linf.perturb(x, y),
            "freqkit_apgd_no_band": ours_apgd(),
            "freqkit_apgd_dct_low_band": ours_apgd(low_dct),
            "reference_apgdl2": lambda: ref_l2.perturb(x, y),
            "freqkit_apgdl2_dct_low_band": ours_apgd(low_dct, "l2", 0.5),
        })
    # warm-up (allocator, cuDNN autotuning, cached DCT matrices), then interleaved rounds
    clock = getattr(args, "clock", "wall")
    if clock == "cpu":
        if device.type != "cpu" or torch.get_num_threads() != 1:
            raise SystemExit("--clock cpu needs --device cpu and --threads 1")
        med, times = _cpu_medians(contenders, args.repeats)
    else:
        med, times = interleaved_medians(contenders, args.repeats, device)
    ref = med["torchattacks_pgd"]

    # Projection quality on the timed setting (one extra run with diagnostics).
    _, info = A.pgd(model, x, y, eps, steps=steps, step_size=alpha, band=low_dct, seed=args.seed,
                    early_stop=False, return_info=True, proj_iters=args.proj_iters)
    apgd_rec = None
    if ref_apgd_version is not None:
        _, ainfo = band_apgd(model, x, y, eps, steps=apgd_steps, band=low_dct, seed=args.seed, early_stop=False,
                          return_info=True, proj_iters=args.proj_iters)
        apgd_rec = {
            "steps": apgd_steps, "restarts": 1, "reference": f"pyautoattack {ref_apgd_version} APGDAttack",
            "ratio_vs_reference": {
                "linf_dct_low_band": med["freqkit_apgd_dct_low_band"] / med["reference_apgd"],
                "linf_no_band": med["freqkit_apgd_no_band"] / med["reference_apgd"],
                "l2_dct_low_band": med["freqkit_apgdl2_dct_low_band"] / med["reference_apgdl2"],
            },
            "goal_ratio_max": 1.15,
            "out_of_band_share_max": float(ainfo["out_of_band"].max()),
            "projection_routes": {str(k): int((ainfo["projection"] == k).sum()) for k in range(4)},
        }
        ra = apgd_rec["ratio_vs_reference"]
        apgd_rec["goal_met"] = bool(max(ra["linf_dct_low_band"], ra["l2_dct_low_band"]) <= 1.15)

    # Fourier heat map: all basis directions (a conjugate pair counts once) for every image.
    hb = getattr(args, "heatmap_batch", 256)
    source = "random images"
    if getattr(args, "heatmap_real", False) and s == 32:
        from freqkit.data import load_dataset
        xh, yh = load_dataset("cifar10", "test", n=args.heatmap_images, seed=args.seed)
        xh, yh = xh.to(device), yh.to(device)
        source = f"CIFAR-10 test images (first {xh.shape[0]} of the seed-{args.seed} order)"
    else:
        xh = torch.rand(args.heatmap_images, 3, s, s, device=device, generator=torch.Generator(device).manual_seed(1))
        with torch.no_grad():
            yh = model(xh).argmax(1)
    n_dir = n_fourier_directions(s, s)
    fourier_heatmap(model, xh[:8], yh[:8], eps=4.0, batch_size=hb, progress=False)  # warm-up
    t_hm = statistics.median(
        timed(lambda: fourier_heatmap(model, xh, yh, eps=4.0, batch_size=hb, progress=False), device)
        for _ in range(1 if xh.shape[0] >= 256 else max(1, min(args.repeats, 2))))

    record = {
        "benchmark": "attacks",
        "setting": {
            "device": str(device), "device_name": (torch.cuda.get_device_name(device) if device.type == "cuda"
                                                   else platform.processor() or platform.machine()),
            "threads": torch.get_num_threads(), "batch": args.batch, "steps": steps, "repeats": args.repeats,
            "image": [3, s, s], "model": f"ResNetCIFAR width {args.width}, random weights",
            "linf_eps": eps, "linf_alpha": alpha, "l2_eps": 0.5, "l2_alpha": 0.1,
            "proj_iters": args.proj_iters, "early_stop": False,
            "bands": {"dct_low": "radial band 0 of 4 (DCT)", "dft_mid": "radial band 1 of 4 (DFT)"},
            "torch": torch.__version__, "torchattacks": torchattacks.__version__, "clock": clock,
        },
        "median_seconds": med,
        "all_seconds": times,
        "ratio_vs_torchattacks": {
            "linf_no_band": med["freqkit_pgd_no_band"] / ref,
            "linf_dct_low_band": med["freqkit_pgd_dct_low_band"] / ref,
            "linf_dft_mid_band": med["freqkit_pgd_dft_mid_band"] / ref,
            "l2_dct_low_band": med["freqkit_pgdl2_dct_low_band"] / med["torchattacks_pgdl2"],
        },
        "goal_ratio_max": 1.10,
        "apgd": apgd_rec,
        "out_of_band_share_max": float(info["out_of_band"].max()),
        "projection_routes": {str(k): int((info["projection"] == k).sum()) for k in range(4)},
        "fourier_heatmap": {
            "images": int(xh.shape[0]), "directions_evaluated": n_dir, "grid": [s, s], "batch_size": hb,
            "source": source, "seconds_per_1000_images": t_hm / xh.shape[0] * 1000,
            "seconds": t_hm,
            "seconds_per_image_direction": t_hm / (xh.shape[0] * n_dir),
            "seconds_per_image_full_map": t_hm / xh.shape[0],
        },
    }
    r = record["ratio_vs_torchattacks"]
    record["goal_met"] = bool(max(r["linf_dct_low_band"], r["linf_dft_mid_band"], r["l2_dct_low_band"]) <= 1.10)
    return record


def _cpu_medians(fns: dict, repeats: int) -> tuple[dict, dict]:
    """As ``_timing.interleaved_medians``, timing this process's CPU seconds instead of the wall clock."""
    for fn in fns.values():
        fn()
    names = list(fns)
    times = {k: [] for k in names}
    for r in range(repeats):
        for k in names[r % len(names):] + names[:r % len(names)]:
            t0 = time.process_time()
            fns[k]()
            times[k].append(time.process_time() - t0)
    return {k: statistics.median(v) for k, v in times.items()}, times


def write_json(record: dict, path) -> Path:
    """Atomic JSON write (freqkit._io: temporary file beside ``path``, then rename)."""
    from freqkit._io import atomic_write_json
    return atomic_write_json(record, Path(path))


def main(argv=None) -> dict:
    args = parse_args(argv)
    record = run(args)
    path = write_json(record, args.out)
    r = record["ratio_vs_torchattacks"]
    hm = record["fourier_heatmap"]
    print(f"device {record['setting']['device']}, batch {args.batch}, steps {args.steps}, "
          f"median of {args.repeats}:")
    for k, v in record["median_seconds"].items():
        print(f"  {k:30s} {v:8.3f} s")
    print("  ratio vs torchattacks: " + ", ".join(f"{k} {v:.3f}" for k, v in r.items()))
    print(f"  out-of-band share max {record['out_of_band_share_max']:.2e}; goal met: {record['goal_met']}")
    if record["apgd"]:
        ra = record["apgd"]["ratio_vs_reference"]
        print("  band APGD ratio vs reference APGD: " + ", ".join(f"{k} {v:.3f}" for k, v in ra.items())
              + f"; goal met: {record['apgd']['goal_met']}")
    print(f"  Fourier heat map: {hm['seconds_per_image_direction'] * 1e3:.3f} ms per image and direction, "
          f"{hm['seconds_per_image_full_map']:.2f} s per image ({hm['directions_evaluated']} directions)")
    print(f"wrote {path}")
    return record


if __name__ == "__main__":
    main()
