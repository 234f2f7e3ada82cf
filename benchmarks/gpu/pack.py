"""Prepare what a device (GPU machine) call carries: wheels and a CIFAR-10 subset.

Usage (here, on the build machine)::

    .venv/bin/python benchmarks/gpu/pack.py [--n-train 24000] [--data-root ../shared/data]

Writes ``.device/`` (git-ignored) in the repository root:

* ``.device/whl/``: Python 3.12 manylinux wheels of ``requirements-device.txt`` (captum,
  torchattacks, papermill and the Jupyter kernel stack), which the device image lacks;
* ``.device/data/cifar10_subset.xz``: the first ``--n-train`` CIFAR-10 training images and
  every test image of the data root, as an lzma-compressed ``.npz`` (CIFAR-10 compresses to
  76%: 24,000 training images are about 56 MB, which is what fits beside the code and the
  wheels in the 64 MiB a call may carry; all 50,000 would be 116 MB).

``unpack.py`` turns the subset back into a torchvision-style ``cifar-10-batches-py`` folder on
the device.  The subset's size is part of every GPU figure measured with it.
"""
from __future__ import annotations

import argparse
import io
import lzma
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

PLATFORMS = ["manylinux_2_28_x86_64", "manylinux_2_27_x86_64", "manylinux_2_26_x86_64", "manylinux_2_17_x86_64",
             "manylinux2014_x86_64", "manylinux1_x86_64"]


def pack_data(n_train: int, data_root: Path, dest: Path) -> Path:
    import torch

    from freqkit._io import atomic_write_bytes
    from freqkit.data import load_dataset

    if n_train < 1:
        raise ValueError(f"n_train must be >= 1, got {n_train}")
    # uint8, in the files' order (no download: the data root must hold the set)
    xtr, ytr = load_dataset("cifar10", "train", None, 0, data_root, False, None, dtype=torch.uint8)
    xte, yte = load_dataset("cifar10", "test", None, 0, data_root, False, None, dtype=torch.uint8)
    if n_train > xtr.shape[0]:
        raise ValueError(f"n_train={n_train} exceeds the {xtr.shape[0]} training images under {data_root}")
    buf = io.BytesIO()
    np.savez(buf, x_train=xtr[:n_train].numpy(), y_train=ytr[:n_train].numpy(), x_test=xte.numpy(),
             y_test=yte.numpy())
    out = dest / "cifar10_subset.xz"
    atomic_write_bytes(out, lzma.compress(buf.getvalue(), preset=6))
    return out


def pack_mnist(data_root: Path, dest: Path) -> Path:
    """gzip MNIST's four raw files (53 MB -> 11 MB) into ``dest/MNIST/``."""
    import gzip

    from freqkit._io import atomic_write_bytes

    src = data_root / "MNIST" / "raw"
    names = ["train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"]
    missing = [n for n in names if not (src / n).is_file()]
    if missing:
        raise FileNotFoundError(f"MNIST raw files missing under {src}: {', '.join(missing)}")
    for n in names:
        atomic_write_bytes(dest / "MNIST" / f"{n}.gz", gzip.compress((src / n).read_bytes(), compresslevel=6))
    return dest / "MNIST"


def pack_wheels(dest: Path) -> None:
    dest.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:", "--python-version",
           "3.12", "--implementation", "cp", *[a for p in PLATFORMS for a in ("--platform", p)],
           "-r", str(Path(__file__).with_name("requirements-device.txt")), "-d", str(dest)]
    subprocess.run(cmd, check=True)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n-train", type=int, default=24000, help="training images carried (default 24000)")
    ap.add_argument("--data-root", default=os.environ.get("FREQKIT_DATA", str(ROOT.parent / "shared" / "data")))
    ap.add_argument("--mnist", action="store_true", help="also carry MNIST, gzipped (11 MB): for the smoke book")
    ap.add_argument("--skip-wheels", action="store_true")
    args = ap.parse_args(argv)
    out = ROOT / ".device"
    path = pack_data(args.n_train, Path(args.data_root), out / "data")
    print(f"{path}: {path.stat().st_size / 2**20:.1f} MiB")
    mnist = out / "data" / "MNIST"
    if args.mnist:
        print("MNIST:", pack_mnist(Path(args.data_root), out / "data"))
    elif mnist.exists():
        import shutil
        shutil.rmtree(mnist)
    if not args.skip_wheels:
        pack_wheels(out / "whl")
    total = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    print(f".device/ holds {total / 2**20:.1f} MiB (a call carries at most 64 MiB with the code)")


if __name__ == "__main__":
    main()
