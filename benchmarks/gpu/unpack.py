"""Turn ``.device/data/cifar10_subset.xz`` (see pack.py) into a torchvision-style data root.

Usage (on the device machine)::

    python benchmarks/gpu/unpack.py .device/data /tmp/data

writes ``/tmp/data/cifar-10-batches-py/{data_batch_1..5, test_batch, batches.meta}``: the
carried training images split over the five batch files (so freqkit's loader, which reads
all five, sees exactly the subset) and the carried test images; and, if ``.device/data/MNIST``
was packed, MNIST's raw files under ``/tmp/data/MNIST/raw``.
"""
from __future__ import annotations

import io
import lzma
import pickle
import sys
from pathlib import Path

import numpy as np

CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


def unpack(src: Path, root: Path) -> dict:
    with np.load(io.BytesIO(lzma.decompress(Path(src).read_bytes()))) as z:
        arrays = {k: z[k] for k in z.files}
    folder = Path(root) / "cifar-10-batches-py"
    folder.mkdir(parents=True, exist_ok=True)
    xtr, ytr = arrays["x_train"], arrays["y_train"]
    for i, part in enumerate(np.array_split(np.arange(len(ytr)), 5), 1):
        batch = {"batch_label": f"training batch {i} of 5 (subset)", "labels": ytr[part].tolist(),
                 "data": np.ascontiguousarray(xtr[part].reshape(len(part), -1))}
        (folder / f"data_batch_{i}").write_bytes(pickle.dumps(batch))
    test = {"batch_label": "testing batch 1 of 1 (subset)", "labels": arrays["y_test"].tolist(),
            "data": np.ascontiguousarray(arrays["x_test"].reshape(len(arrays["y_test"]), -1))}
    (folder / "test_batch").write_bytes(pickle.dumps(test))
    (folder / "batches.meta").write_bytes(pickle.dumps({"label_names": CLASSES, "num_cases_per_batch": 10000,
                                                        "num_vis": 3072}))
    return {"n_train": int(len(ytr)), "n_test": int(len(arrays["y_test"])), "root": str(root)}


def unpack_all(src_dir: Path, root: Path) -> dict:
    import gzip

    info = unpack(Path(src_dir) / "cifar10_subset.xz", root)
    gz = sorted((Path(src_dir) / "MNIST").glob("*.gz"))
    if gz:
        raw = Path(root) / "MNIST" / "raw"
        raw.mkdir(parents=True, exist_ok=True)
        for f in gz:
            (raw / f.stem).write_bytes(gzip.decompress(f.read_bytes()))
        info["mnist_files"] = [f.stem for f in gz]
    return info


if __name__ == "__main__":
    if len(sys.argv) != 3:
        raise SystemExit("usage: unpack.py PACKED_DIR DATA_ROOT")
    print(unpack_all(Path(sys.argv[1]), Path(sys.argv[2])))
