"""The benchmark plumbing: tables from stored results, the band benchmark's parity, GPU packing."""
import argparse
import importlib.util
import sys
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parent.parent
BENCH = REPO / "benchmarks"
MEASURED = BENCH / "measured" / "h100-2026-11-26" / "results.json"


def _load(name: str, path: Path):
    sys.path.insert(0, str(BENCH))
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_stored_gpu_results_render_every_benchmark_row():
    run_all = _load("run_all", BENCH / "run_all.py")
    table = run_all.render(str(MEASURED), None)
    assert "NVIDIA H100" in table
    for row in ("frequency IG vs Captum pixel IG", "band PGD vs torchattacks PGD (linf_dct_low_band)",
                "Fourier heat map", "band occlusion vs Captum FeatureAblation",
                "band shapley exact vs Captum ShapleyValues", "CIFAR-10 training to the preset's accuracy"):
        assert row in table, row
    assert "(measured)" in table  # 1,000 real images on the GPU, not an extrapolation
    assert all(line.count("|") == 7 for line in table.splitlines() if line.startswith("| ")), "ragged table"


def test_band_benchmark_compares_the_same_quantity_as_captum(one_thread):
    bands = _load("bench_bands", BENCH / "bench_bands.py")
    rec = bands.run(argparse.Namespace(device="cpu", batch=2, width=4, budget=64, exact_bands=3, sampled_bands=4,
                                       samples=4, repeats=1))
    assert rec["rows"]["occlusion"]["max_abs_diff_vs_captum"] < 1e-5
    assert rec["rows"]["shapley_exact"]["max_abs_diff_vs_captum"] < 1e-5
    for r in rec["rows"].values():
        assert r["freqkit_s"] > 0 and r["captum_s"] > 0 and r["ratio"] == r["freqkit_s"] / r["captum_s"]


def test_device_pack_round_trips_cifar_and_mnist(data_root, tmp_path):
    pack = _load("pack", BENCH / "gpu" / "pack.py")
    unpack = _load("unpack", BENCH / "gpu" / "unpack.py")
    if not (data_root / "MNIST" / "raw" / "t10k-images-idx3-ubyte").is_file():
        pytest.skip(f"no raw MNIST under {data_root}")
    pack.pack_data(37, data_root, tmp_path / "packed")
    pack.pack_mnist(data_root, tmp_path / "packed")
    info = unpack.unpack_all(tmp_path / "packed", tmp_path / "root")
    assert info["n_train"] == 37 and len(info["mnist_files"]) == 4
    from freqkit.data import load_dataset
    for name, split in (("cifar10", "train"), ("cifar10", "test"), ("mnist", "test")):
        x, y = load_dataset(name, split, None, 0, tmp_path / "root", False, None, dtype=torch.uint8)
        x0, y0 = load_dataset(name, split, None, 0, data_root, False, None, dtype=torch.uint8)
        assert x.dtype == torch.uint8 == x0.dtype
        n = x.shape[0]
        assert n == (37 if split == "train" and name == "cifar10" else x0.shape[0])
        assert torch.equal(x, x0[:n]) and torch.equal(y, y0[:n])
    with pytest.raises(ValueError, match="n_train"):
        pack.pack_data(0, data_root, tmp_path / "bad")


@pytest.mark.slow
def test_benchmark_entry_point_runs_quick_on_this_machine(tmp_path, data_root):
    """`run_all.py --quick` end to end (a fresh clone's CPU run): every row, ratios in the JSON."""
    import json
    import os
    import subprocess
    env = {**os.environ, "FREQKIT_DATA": str(data_root), "FREQKIT_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, str(BENCH / "run_all.py"), "--quick", "--device", "cpu", "--out",
                           str(tmp_path)], capture_output=True, text=True, env=env, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    res = json.loads((tmp_path / "results.json").read_text())
    for key in ("transforms", "attribution", "bands", "attacks", "training"):
        assert key in res, key
    assert all(r["ratio_vs_scipy"] > 0 for r in res["transforms"]["rows"])
    assert res["bands"]["rows"]["occlusion"]["max_abs_diff_vs_captum"] < 1e-5
    table = (tmp_path / "RESULTS.md").read_text()
    assert "dct2 vs scipy.fft.dctn" in table and "CIFAR-10 training, cpu throughput" in table
