"""Benchmark: the sharded Fourier heat map and robust evaluation from 1 to 2 processes, and 224 x 224 costs.

1. **Scaling** (``torch.distributed``, gloo, CPU): the same heat map (CIFAR-size images,
   the book's ResNet width 16, every one of the 514 directions) on 1 process and on 2
   processes (``env://`` rendezvous on localhost, as ``torchrun`` does), one CPU thread per
   process; also 1 process with as many threads as there are processes (what the same
   cores give without torch.distributed).  Timed inside the workers: the slowest rank's
   wall time of the ``fourier_heatmap`` call (each rank evaluates its share of the
   directions, then the shares are gathered), median over repeats, after a warm-up; the
   launches alternate (1, 2, 1, 2, ...) so drifting load hits both alike.  Scaling
   efficiency = ``T(1 process) / (2 T(2 processes))``; goal >= 85%.  Also the work
   efficiency, ``CPU seconds of 1 process / CPU seconds summed over the 2 ranks``: what the
   split itself costs (work done twice, gathers), which other jobs on a shared machine do
   not distort (they take wall-clock time, not this process's CPU time).  And the ceiling:
   two unrelated single-thread processes side by side, each with half the images (no
   process group, nothing shared): ``T(1 process) / (2 T(pair))`` is what the two cores
   give any split of this work; the split's own cost is what lies between.  The same for
   robust evaluation (``freqkit.evaluate_defense``: PGD-10, Linf 8/255, full and low
   band, 256 images in batches of 16, split by whole batch).
2. **224 x 224** (torchvision resnet18 with random weights: the cost does not depend on
   them), each in a fresh process:

   * Fourier heat map on a sub-grid (every 28th frequency: 34 directions): milliseconds per
     image and direction, and from it the seconds per image of the full grid (25,090
     directions) and of the sub-grids ``directions=4`` (1,570) and ``8`` (394);
   * frequency Integrated Gradients (``freqkit.attribute``, DCT, ``n_steps`` 32,
     ``internal_batch_size`` 16): seconds per image;
   * peak RSS: growth of the process's peak resident memory (``VmHWM``, reset just before
     the call) over its RSS before the call, for 1 and for 4 images: with internal batching
     the growth does not scale with the number of images.

The machine this ran on first was shared with long training jobs: timings move with the
load (the JSON records the load average before and after).  Re-run it on a quiet machine::

    .venv/bin/python benchmarks/bench_distributed.py            # about 3 minutes on 2 cores
    .venv/bin/python benchmarks/bench_distributed.py --quick    # about 1 minute

Writes ``benchmarks/out/distributed.json`` (atomically).  ``benchmarks/run_all.py`` calls
:func:`run` and puts the figures in its table.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # runnable as a plain script from anywhere
    sys.path.insert(0, str(ROOT))
if str(ROOT / "benchmarks") not in sys.path:  # _timing
    sys.path.insert(0, str(ROOT / "benchmarks"))

import torch  # noqa: E402
from _timing import cpu_name  # noqa: E402

DEFAULT_OUT = ROOT / "benchmarks" / "out" / "distributed.json"
GOAL_EFFICIENCY = 0.85


def _load() -> list[float]:
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except OSError:
        return []


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _proc_bytes(field: str) -> int | None:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


# ----------------------------------------------------------------------------- workers (fresh processes)

def _scaling_worker(opts: dict) -> dict:
    """One rank: time fourier_heatmap on its share; rank 0 returns the slowest rank's times."""
    import torch.distributed as dist

    from freqkit._distributed import all_reduce_max, all_reduce_sum, init_from_env
    from freqkit.heatmaps import fourier_heatmap
    from freqkit.models import build_model

    torch.set_num_threads(opts["threads"])
    w = init_from_env(600, "gloo")
    torch.manual_seed(0)
    model = build_model("cifar10", "resnet", width=opts["width"]).eval()
    g = torch.Generator().manual_seed(1)
    x = torch.rand(opts["n_images"], 3, 32, 32, generator=g)
    y = torch.randint(0, 10, (opts["n_images"],), generator=g)
    if opts.get("what", "heatmap") == "heatmap":
        def job(xs, ys):
            return fourier_heatmap(model, xs, ys, eps=4.0, batch_size=opts["batch_size"], progress=False)
        fourier_heatmap(model, x[:4], y[:4], eps=4.0, batch_size=opts["batch_size"], directions=8, progress=False)
    else:   # robust evaluation: PGD in batches, whole batches split by rank
        from freqkit.defense import evaluate_defense

        def job(xs, ys):
            return evaluate_defense(model, xs, ys, budgets={"linf": 8 / 255}, bands=("full", "low"),
                                    steps=opts["steps"], batch_size=opts["batch_size"], progress=False)
        job(x[:2], y[:2])
    times, cpu, hm = [], [], None
    for _ in range(opts["repeats"]):
        if w.size > 1:
            dist.barrier()
        t0, c0 = time.perf_counter(), time.process_time()
        hm = job(x, y)
        dt = torch.tensor([time.perf_counter() - t0], dtype=torch.float64)
        dc = torch.tensor([time.process_time() - c0], dtype=torch.float64)
        times.append(float(all_reduce_max(dt)[0]))
        cpu.append(float(all_reduce_sum(dc)[0]))
    check = float(hm.mean()) if isinstance(hm, torch.Tensor) else hm["attacks"]["linf/full"]["accuracy"]
    out = {"seconds": times, "cpu_seconds_all_ranks": cpu, "world_size": w.size, "threads": opts["threads"],
           "result": check}
    if w.size > 1:
        dist.destroy_process_group()
    return out


def _imagenet_model():
    import torchvision

    from freqkit.models import IMAGENET_MEAN, IMAGENET_STD, with_normalization

    torch.manual_seed(0)   # random weights: a cost measurement, the outputs mean nothing
    return with_normalization(torchvision.models.resnet18(weights=None), IMAGENET_MEAN, IMAGENET_STD).eval()


def _measure_worker(opts: dict) -> dict:
    """Fresh process: one 224x224 measurement (time and peak-RSS growth)."""
    from freqkit.attribution import attribute
    from freqkit.heatmaps import fourier_directions, fourier_heatmap

    torch.set_num_threads(opts["threads"])
    model = _imagenet_model()
    g = torch.Generator().manual_seed(2)
    n = opts["n_images"]
    x = torch.rand(n, 3, 224, 224, generator=g)
    y = torch.randint(0, 1000, (n,), generator=g)
    if opts["what"] == "heatmap":
        dirs = fourier_directions(224, 224, step=opts["step"])

        def fn():
            return fourier_heatmap(model, x, y, eps=16.0, batch_size=opts["batch_size"], directions=dirs,
                                   progress=False)
        units = n * int(dirs.numel())
    else:
        def fn():
            return attribute(model, x, y, method="ig", basis="dct", n_steps=opts["n_steps"],
                             internal_batch_size=opts["ibs"])
        units = n
    try:  # reset the peak (VmHWM) to the current RSS (Linux >= 4.0)
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        reset = True
    except OSError:
        reset = False
    before = _proc_bytes("VmRSS")
    t0 = time.perf_counter()
    fn()
    sec = time.perf_counter() - t0
    peak = _proc_bytes("VmHWM")
    return {"seconds": sec, "units": units, "n_images": n, "hwm_reset": reset,
            "rss_before_bytes": before, "peak_growth_bytes": None if peak is None or before is None
            else max(0, peak - before)}


def _spawn(kind: str, opts: dict, world: int = 1, timeout: float = 1800, independent: bool = False):
    """Run a worker in ``world`` fresh processes; rank 0's JSON result.

    ``independent``: the ``world`` processes run side by side without a process group (each
    a world of one, its own ``opts``: ``opts`` is then a list), and every result comes back
    (a list): the no-communication ceiling of the same cores.
    """
    code = ("import json, sys; sys.path.insert(0, %r); import bench_distributed as b; "
            "print('RESULT' + json.dumps(b._%s_worker(json.loads(sys.argv[1]))))" % (str(ROOT / "benchmarks"), kind))
    procs = []
    port = _free_port()
    for r in range(world):
        o = opts[r] if independent else opts
        env = dict(os.environ, RANK="0" if independent else str(r), WORLD_SIZE="1" if independent else str(world),
                   LOCAL_RANK="0" if independent else str(r), MASTER_ADDR="127.0.0.1",
                   MASTER_PORT=str(_free_port() if independent else port), OMP_NUM_THREADS=str(o.get("threads", 1)),
                   PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
        env.pop("CUDA_VISIBLE_DEVICES", None)   # the CPU benchmark stays on the CPU
        procs.append(subprocess.Popen([sys.executable, "-c", code, json.dumps(o)], env=env, cwd=str(ROOT),
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    outs = [p.communicate(timeout=timeout) for p in procs]
    for p, (_, err) in zip(procs, outs):
        if p.returncode != 0:
            raise RuntimeError(f"benchmark worker {kind} failed (exit {p.returncode}): {err[-3000:]}")
    res = [json.loads([s for s in out.splitlines() if s.startswith("RESULT")][-1][len("RESULT"):])
           for out, _ in outs]
    return res if independent else res[0]


# ----------------------------------------------------------------------------- the benchmark

def scaling(args, what: str = "heatmap") -> dict:
    """T(1 process) vs T(2 processes), interleaved launches: the full 32x32 heat map, or robust evaluation."""
    if what == "heatmap":
        opts = {"n_images": args.n_images, "width": args.width, "batch_size": args.batch_size,
                "repeats": args.repeats, "threads": 1}
    else:
        opts = {"what": what, "n_images": args.n_images_eval, "width": args.width, "batch_size": args.eval_batch_size,
                "steps": args.eval_steps, "repeats": args.repeats, "threads": 1}
    ceiling = "2 independent processes, half the images each"
    runs = {"1 process, 1 thread": [], "2 processes, 1 thread each": [], "1 process, 2 threads": [], ceiling: []}
    cpu = {k: [] for k in runs}
    half = opts["n_images"] // 2
    for _ in range(args.rounds):
        for key, world, threads in (("1 process, 1 thread", 1, 1), ("2 processes, 1 thread each", 2, 1),
                                    ("1 process, 2 threads", 1, 2)):
            r = _spawn("scaling", {**opts, "threads": threads}, world=world)
            runs[key] += r["seconds"]
            cpu[key] += r["cpu_seconds_all_ranks"]
        # The same cores without torch.distributed: two unrelated processes side by side, each
        # with half the images (no gathers, no duplicated work): what the hardware allows.
        pair = _spawn("scaling", [{**opts, "n_images": half, "threads": 1},
                                  {**opts, "n_images": opts["n_images"] - half, "threads": 1}], world=2,
                      independent=True)
        runs[ceiling] += [max(a, b) for a, b in zip(pair[0]["seconds"], pair[1]["seconds"])]
        cpu[ceiling] += [a + b for a, b in zip(pair[0]["cpu_seconds_all_ranks"], pair[1]["cpu_seconds_all_ranks"])]
    med = {k: statistics.median(v) for k, v in runs.items()}
    med_cpu = {k: statistics.median(v) for k, v in cpu.items()}
    t1, t2 = med["1 process, 1 thread"], med["2 processes, 1 thread each"]
    eff = t1 / (2 * t2)
    # CPU seconds summed over ranks: the work the split adds (duplicated clean passes, gathers),
    # whatever other jobs on the machine take from the wall clock.
    work_eff = med_cpu["1 process, 1 thread"] / med_cpu["2 processes, 1 thread each"]
    common = {"median_seconds": med, "all_seconds": runs, "efficiency": eff, "speedup": t1 / t2,
              "median_cpu_seconds_all_ranks": med_cpu, "work_efficiency": work_eff,
              "ceiling_efficiency": t1 / (2 * med[ceiling]), "efficiency_of_ceiling": med[ceiling] / t2,
              "goal_efficiency_at_least": GOAL_EFFICIENCY, "goal_met": eff >= GOAL_EFFICIENCY}
    if what == "heatmap":
        return {"setting": {"image": "3x32x32", "n_images": args.n_images, "directions": 514,
                            "model": f"ResNetCIFAR width {args.width}", "batch_size": args.batch_size,
                            "repeats_per_launch": args.repeats, "launches": args.rounds, "backend": "gloo",
                            "split": "by direction (tensor input)"},
                **common, "ms_per_image_direction_1_process": 1e3 * t1 / (args.n_images * 514)}
    return {"setting": {"image": "3x32x32", "n_images": args.n_images_eval, "model": f"ResNetCIFAR width {args.width}",
                        "attacks": f"evaluate_defense: PGD-{args.eval_steps} Linf 8/255, bands full and low",
                        "batch_size": args.eval_batch_size, "repeats_per_launch": args.repeats,
                        "launches": args.rounds, "backend": "gloo", "split": "by whole batch (tensor input)"},
            **common}


def imagenet_costs(args) -> dict:
    """224x224: sub-grid heat map and IG times, peak-RSS growth for 1 and 4 images."""
    from freqkit.heatmaps import fourier_directions, n_fourier_directions

    threads = args.threads_224
    hm = _spawn("measure", {"what": "heatmap", "n_images": 2, "step": 28, "batch_size": 32, "threads": threads})
    ms = 1e3 * hm["seconds"] / hm["units"]
    per_image = {"full grid": n_fourier_directions(224, 224)}
    for k in (4, 8, 16):
        per_image[f"directions={k}"] = int(fourier_directions(224, 224, step=k).numel())
    ig = {n: _spawn("measure", {"what": "ig", "n_images": n, "n_steps": args.n_steps, "ibs": args.ibs,
                                "threads": threads}) for n in (1, 4)}
    hm4 = _spawn("measure", {"what": "heatmap", "n_images": 4, "step": 28, "batch_size": 32, "threads": threads})
    mb = 1 / 2 ** 20
    return {"setting": {"model": "torchvision resnet18 (random weights)", "image": "3x224x224", "threads": threads,
                        "heatmap": {"sub_grid_step": 28, "directions": int(hm["units"] / hm["n_images"]),
                                    "batch_size": 32},
                        "ig": {"n_steps": args.n_steps, "internal_batch_size": args.ibs, "basis": "dct"}},
            "heatmap_ms_per_image_direction": ms,
            "heatmap_seconds_per_image": {k: v * ms / 1e3 for k, v in per_image.items()},
            "heatmap_directions": per_image,
            "ig_seconds_per_image": ig[4]["seconds"] / 4,
            "peak_rss_growth_mb": {"ig_1_image": ig[1]["peak_growth_bytes"] * mb,
                                   "ig_4_images": ig[4]["peak_growth_bytes"] * mb,
                                   "heatmap_2_images": hm["peak_growth_bytes"] * mb,
                                   "heatmap_4_images": hm4["peak_growth_bytes"] * mb},
            "raw": {"heatmap_2": hm, "heatmap_4": hm4, "ig_1": ig[1], "ig_4": ig[4]}}


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="fewer images, steps and launches (about a minute)")
    p.add_argument("--n-images", type=int, default=None, help="images of the scaling heat map (default 24; quick 8)")
    p.add_argument("--width", type=int, default=16)
    p.add_argument("--batch-size", type=int, default=512)
    p.add_argument("--n-images-eval", type=int, default=None, help="images of the scaled robust evaluation "
                   "(default 256; quick 32)")
    p.add_argument("--eval-batch-size", type=int, default=16)
    p.add_argument("--eval-steps", type=int, default=None, help="PGD steps of the robust evaluation (default 10; "
                   "quick 5)")
    p.add_argument("--repeats", type=int, default=None, help="timed calls per launch (default 3; quick 2)")
    p.add_argument("--rounds", type=int, default=None, help="alternating launches per setting (default 2; quick 1)")
    p.add_argument("--n-steps", type=int, default=None, help="IG steps at 224x224 (default 32; quick 8)")
    p.add_argument("--ibs", type=int, default=16, help="IG internal_batch_size at 224x224")
    p.add_argument("--threads-224", type=int, default=None, help="threads of the 224x224 runs (default: all)")
    p.add_argument("--skip-224", action="store_true")
    p.add_argument("--out", default=str(DEFAULT_OUT))
    return p


def run(args) -> dict:
    """Run the benchmark; ``args``: an ``argparse.Namespace`` or dict of :func:`build_parser`'s options."""
    from freqkit._io import atomic_write_json

    if isinstance(args, dict):
        args = argparse.Namespace(**{**vars(build_parser().parse_args([])), **args})
    q = args.quick
    args.n_images = args.n_images or (8 if q else 24)
    args.repeats = args.repeats or (2 if q else 3)
    args.rounds = args.rounds or (1 if q else 2)
    args.n_steps = args.n_steps or (8 if q else 32)
    args.n_images_eval = args.n_images_eval or (32 if q else 256)
    args.eval_steps = args.eval_steps or (5 if q else 10)
    args.threads_224 = args.threads_224 or os.cpu_count() or 1
    rec = {"machine": {"cpu": cpu_name(), "cores": os.cpu_count(), "torch": torch.__version__,
                       "python": platform.python_version(), "date": time.strftime("%Y-%m-%d %H:%M"),
                       "load_average_before": _load()},
           "quick": bool(q),
           "caveat": "timed on a machine shared with other jobs: see load_average_before/after"}
    t0 = time.time()
    rec["scaling"] = scaling(args)
    rec["scaling_evaluate_defense"] = scaling(args, "evaluate_defense")
    if not args.skip_224:
        rec["imagenet_224"] = imagenet_costs(args)
    rec["machine"]["load_average_after"] = _load()
    rec["seconds_total"] = time.time() - t0
    atomic_write_json(rec, args.out)
    return rec


def summary(rec: dict) -> str:
    """A few lines for a terminal."""
    s = rec["scaling"]
    m = rec["machine"]
    lines = [f"CPU: {m['cpu']} ({m['cores']} cores), load {m['load_average_before']} -> {m['load_average_after']}",
             f"heat map {s['setting']['n_images']} images x 514 directions: " +
             ", ".join(f"{k}: {v:.2f} s" for k, v in s["median_seconds"].items()) +
             f"; efficiency 1 -> 2 processes {s['efficiency']:.0%} (goal >= {GOAL_EFFICIENCY:.0%}), work efficiency "
             f"{s['work_efficiency']:.0%}; ceiling (2 independent processes) {s['ceiling_efficiency']:.0%}"]
    e = rec.get("scaling_evaluate_defense")
    if e:
        lines.append(f"robust evaluation {e['setting']['n_images']} images, {e['setting']['attacks']}: " +
                     ", ".join(f"{k}: {v:.2f} s" for k, v in e["median_seconds"].items()) +
                     f"; efficiency {e['efficiency']:.0%}, work efficiency {e['work_efficiency']:.0%}; ceiling "
                     f"{e['ceiling_efficiency']:.0%}")
    im = rec.get("imagenet_224")
    if im:
        lines.append(f"224x224: heat map {im['heatmap_ms_per_image_direction']:.1f} ms per image and direction "
                     f"(full grid {im['heatmap_seconds_per_image']['full grid']:.0f} s per image, directions=4 "
                     f"{im['heatmap_seconds_per_image']['directions=4']:.0f} s); IG {im['ig_seconds_per_image']:.2f} s "
                     f"per image; peak RSS growth IG 1 image {im['peak_rss_growth_mb']['ig_1_image']:.0f} MB, "
                     f"4 images {im['peak_rss_growth_mb']['ig_4_images']:.0f} MB")
    return "\n".join(lines)


if __name__ == "__main__":
    r = run(build_parser().parse_args())
    print(summary(r))
