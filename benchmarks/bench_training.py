"""Benchmark: CIFAR-10 training time to the preset's accuracy, the new cpu preset against the old one.

Modes:

* ``--mode side_by_side`` (the CPU default): trains the **old** cpu preset (before issue 12:
  ResNet-9 layout width 16, 16 epochs, batch 256, label smoothing 0.1; :data:`OLD_CPU_PRESET`)
  and the **new** one (``freqkit.PRESETS["cifar10"]["cpu"]``, the airbench-style recipe)
  from scratch in one run, on the same machine, for each seed and each precision: bf16
  autocast (``amp=True``, only where the CPU has native bf16) and fp32 (``amp=False``: what
  a CPU without native bf16 runs, and the proxy for one here).  The runs are interleaved
  (seed by seed, precision by precision, old and new alternating which goes first), so
  drift in a shared machine's load hits both alike.  Every run trains into a fresh
  temporary cache folder: nothing is loaded.  Reported per run: training seconds (wall
  clock, the whitening fit included), the process CPU seconds of the run, the test
  accuracy, the test accuracy of the same weights with test-time mirroring
  (:class:`freqkit.MirrorAverage`, the flip half of airbench's TTA; evaluated, not trained),
  and the load average; per precision: the mean over seeds of seconds and accuracies, the
  ratio new / old of the mean seconds, and the goal (ratio <= 0.45 with the new preset's
  bare mean accuracy >= 90%; ``goal_met_with_mirror_tta`` says whether the mirrored
  accuracy would meet it, and is reported apart, never as the goal).  The record names the CPU model and whether it has
  native bf16 beside every timing.
  ``--quick``: the same comparison on 512 training images, 1 epoch, 1 seed (under a minute):
  for the tests, not for conclusions.
* ``--mode train`` (the GPU default): trains ``PRESETS["cifar10"][preset]`` once and reports
  seconds, images per second and accuracy, beside airbench94's published time.

The GPU reference is published, not re-run here: airbench94, 94.0% CIFAR-10 test accuracy
in 3.83 s on one A100 (Jordan 2024, arXiv:2404.00498), and the DAWNBench-era ResNet-9 of
Page (2018): 94% in 79 s on one V100 (24 epochs).
"""
from __future__ import annotations

import argparse
import copy
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
if str(HERE) not in sys.path:  # _timing, when loaded from a file by the tests
    sys.path.insert(0, str(HERE))

import freqkit as fk  # noqa: E402
from freqkit import training as T  # noqa: E402,F401  (the tests reach the training module through it)
from _timing import cpu_info  # noqa: E402,F401  (one CPU description for every benchmark)

PUBLISHED = {
    "airbench94": {"accuracy": 0.94, "seconds": 3.83, "device": "NVIDIA A100", "epochs": 9.9, "n_train": 50000,
                   "source": "Jordan 2024, '94% on CIFAR-10 in 3.29 Seconds on a Single GPU', arXiv:2404.00498 "
                             "(airbench94: 3.83 s on an A100)"},
    "page_resnet9": {"accuracy": 0.94, "seconds": 79.0, "device": "NVIDIA V100", "epochs": 24, "n_train": 50000,
                     "source": "Page 2018, 'How to train your ResNet' (DAWNBench, one V100)"},
}

#: The cifar10 cpu preset before issue 12 (training code version 2), with the keys added since
#: at the values that train exactly as it did (random flip, 4-pixel translation, no lookahead,
#: one learning rate, no TTA).  549-596 s and 90.2-90.6% on the 2-core build machine (bf16).
OLD_CPU_PRESET = dict(arch="resnet", width=16, epochs=16, batch_size=256, lr=0.2, momentum=0.9, weight_decay=5e-4,
                      optimizer="sgd", schedule="onecycle", warmup=0.2, n_train=None, val_size=0,
                      label_smoothing=0.1, seed=0, amp=True, augment=True, translate=None, flip="random",
                      lookahead=False, bias_lr_scale=1.0, whiten_bias_epochs=0, tta=False, width_factor=4,
                      kernel_smoothing=0.0, stop_at_accuracy=None, stop_check_every=None, whiten_eps=5e-4)

GOAL_RATIO = 0.45
GOAL_ACCURACY = 0.90
#: Accuracies are float32 ratios of counts: 900 of 1,000 reads 0.8999999762.  Far below one image in 1,000.
_ACCURACY_SLACK = 1e-6


def _reaches(accuracy: float) -> bool:
    """Whether an accuracy meets :data:`GOAL_ACCURACY`, float32 rounding of the count ratio forgiven."""
    return accuracy >= GOAL_ACCURACY - _ACCURACY_SLACK


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--preset", default=None, help="train mode: PRESETS profile (default: gpu on cuda, cpu otherwise)")
    p.add_argument("--mode", choices=("train", "side_by_side"), default=None,
                   help="default: train on cuda, side_by_side on cpu")
    p.add_argument("--quick", action="store_true", help="side_by_side on 512 images, 1 epoch, 1 seed (< 1 minute)")
    p.add_argument("--seeds", type=int, nargs="+", default=None, help="side_by_side seeds (default 0 1; quick: 0)")
    p.add_argument("--precisions", nargs="+", choices=("bf16", "fp32"), default=None,
                   help="side_by_side precisions (default: bf16 where native, and fp32)")
    p.add_argument("--data-root", default=None)
    p.add_argument("--cache-dir", default=None, help="train mode: where the fresh checkpoint goes (default: temp)")
    p.add_argument("--out", default=str(HERE / "out" / "training.json"))
    return p.parse_args(argv)


def _one_run(cfg: dict, data_root, dev) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
        c0 = time.process_time()
        model, info = fk.train_or_load("cifar10", cfg, data_root=data_root, cache_dir=tmp, device=dev,
                                       progress=False)
        cpu = time.process_time() - c0
    assert not info["cached"]
    # What test-time mirroring (airbench's flip half of TTA) buys the same trained weights: measured, not trained.
    xt, yt = fk.load_dataset("cifar10", "test", root=data_root)
    net = model.net if isinstance(model, fk.MirrorAverage) else model
    tta = fk.evaluate(fk.MirrorAverage(net).eval(), xt, yt)
    return {"train_seconds": info["train_seconds"], "process_cpu_seconds": cpu, "test_accuracy": info["test_accuracy"],
            "test_accuracy_mirror_tta": tta,
            "n_test": info["n_test"], "n_train": info["n_train"], "amp_used": info["amp"], "load_average_before": load,
            "load_average_after": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
            "epoch_seconds": [h["seconds"] for h in info["history"]]}


def side_by_side(args, dev) -> dict:
    """Old vs new cpu preset, interleaved, per seed and precision (see the module docstring)."""
    cpu = cpu_info()
    quick = bool(getattr(args, "quick", False))
    seeds = list(getattr(args, "seeds", None) or ([0] if quick else [0, 1]))
    precisions = list(getattr(args, "precisions", None) or (["bf16"] if cpu["native_bf16"] else []) + ["fp32"])
    new = dict(fk.PRESETS["cifar10"]["cpu"])
    old = dict(OLD_CPU_PRESET)
    shrink = {"n_train": 512, "epochs": 1} if quick else {}
    rec = {"benchmark": "training", "mode": "side_by_side", "quick": quick, "device": str(dev), **cpu,
           "torch": torch.__version__, "seeds": seeds, "precisions": precisions,
           "configs": {"old": {**old, **shrink}, "new": {**new, **shrink}},
           "goal": {"ratio_at_most": GOAL_RATIO, "new_accuracy_at_least": GOAL_ACCURACY}, "runs": [],
           "date": time.strftime("%Y-%m-%d")}
    order = 0
    for seed in seeds:
        for prec in precisions:
            pair = ("old", "new") if order % 2 == 0 else ("new", "old")
            order += 1
            for which in pair:
                cfg = {**(old if which == "old" else new), **shrink, "seed": seed, "amp": prec == "bf16"}
                r = _one_run(cfg, args.data_root, dev)
                r.update(which=which, seed=seed, precision=prec)
                rec["runs"].append(r)
                print(f"{which} seed {seed} {prec}: {r['train_seconds']:.1f} s, {r['test_accuracy']:.2%} "
                      f"(mirror TTA {r['test_accuracy_mirror_tta']:.2%}) "
                      f"(load {r['load_average_before']})", flush=True)
    rec["summary"] = summarise(rec)
    return rec


def summarise(rec: dict) -> dict:
    """Per precision: mean seconds and accuracy of old and new over the seeds, the ratio, and the goal's status."""
    out = {}
    for prec in rec["precisions"]:
        row = {}
        for which in ("old", "new"):
            rs = [r for r in rec["runs"] if r["which"] == which and r["precision"] == prec]
            row[which] = {"mean_seconds": statistics.mean(r["train_seconds"] for r in rs),
                          "mean_cpu_seconds": statistics.mean(r["process_cpu_seconds"] for r in rs),
                          "mean_accuracy": statistics.mean(r["test_accuracy"] for r in rs),
                          "accuracies": [r["test_accuracy"] for r in rs], "seconds": [r["train_seconds"] for r in rs],
                          # Older records lack the mirror-TTA accuracy: None there, not a guess.
                          "mean_accuracy_mirror_tta": (statistics.mean(r["test_accuracy_mirror_tta"] for r in rs)
                                                       if all("test_accuracy_mirror_tta" in r for r in rs) else None),
                          "n_seeds": len(rs), "n_test": rs[0]["n_test"], "n_train": rs[0]["n_train"]}
        row["ratio"] = row["new"]["mean_seconds"] / row["old"]["mean_seconds"]
        row["cpu_ratio"] = row["new"]["mean_cpu_seconds"] / row["old"]["mean_cpu_seconds"]
        row["goal_met"] = bool(row["ratio"] <= GOAL_RATIO and _reaches(row["new"]["mean_accuracy"]))
        # The same weights evaluated with airbench's test-time mirroring (reported apart: the
        # chapters attack the bare networks, and their accuracy is the one above).
        tta = row["new"]["mean_accuracy_mirror_tta"]
        row["goal_met_with_mirror_tta"] = None if tta is None else bool(row["ratio"] <= GOAL_RATIO and _reaches(tta))
        out[prec] = row
    return out


def train_once(args, dev) -> dict:
    preset = args.preset or ("gpu" if dev.type == "cuda" else "cpu")
    cfg = dict(fk.PRESETS["cifar10"][preset])
    n_avail = fk.dataset_info("cifar10", args.data_root)["splits"].get("train")
    rec = {"benchmark": "training", "mode": "train", "preset": preset, "config": cfg, "device": str(dev),
           "device_name": torch.cuda.get_device_name(dev) if dev.type == "cuda" else cpu_info()["cpu_model"],
           "threads": torch.get_num_threads(), "torch": torch.__version__, "published": PUBLISHED,
           "n_train_available": n_avail}
    if dev.type == "cpu":
        rec.update(cpu_info())
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        _, info = fk.train_or_load("cifar10", cfg, data_root=args.data_root, cache_dir=args.cache_dir or tmp,
                                   device=dev, progress=False)
        wall = time.perf_counter() - t0
    rec.update(train_seconds=info["train_seconds"], wall_seconds_with_test=wall, n_train=info["n_train"],
               test_accuracy=info["test_accuracy"], n_test=info["n_test"], cached=info["cached"],
               images_per_second=cfg["epochs"] * info["n_train"] / info["train_seconds"], history=info["history"])
    # Seconds the same rate needs for the full 50,000-image set (the subset carried to a GPU may be smaller).
    rec["extrapolated_seconds_50k"] = cfg["epochs"] * 50000 / rec["images_per_second"]
    return rec


def run(args) -> dict:
    dev = torch.device(args.device)
    mode = getattr(args, "mode", None) or ("train" if dev.type == "cuda" else "side_by_side")
    return train_once(args, dev) if mode == "train" else side_by_side(args, dev)


def main(argv=None):
    from freqkit._io import atomic_write_json
    args = parse_args(argv)
    rec = run(args)
    keep = copy.deepcopy(rec)
    keep.pop("history", None)
    keep.pop("runs", None)
    print(keep)
    print("wrote", atomic_write_json(rec, Path(args.out)))


if __name__ == "__main__":
    main()
