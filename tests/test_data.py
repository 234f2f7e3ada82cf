"""freqkit.data: real offline data sets, subsets and splits, the raw uint8 form, ImageNet
folders, and clear errors for bad input.  (Pretrained classifiers: test_models.py; the
planted-frequency data set: test_planted.py.)"""
from pathlib import Path

import numpy as np
import pytest
import torch

import freqkit.data as D

# Class counts of the offline CIFAR-10 test subset (official test images 0..999) and of
# MNIST's test set, from ../shared/data/README_PROVENANCE.md.
CIFAR_TEST_COUNTS = [103, 89, 100, 103, 90, 86, 112, 102, 106, 109]
MNIST_TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


# ----------------------------------------------------------------------------- real data sets

def test_cifar10_test_split_loads_without_md5(data_root):
    x, y = D.load_dataset("cifar10", "test", root=data_root)
    assert x.shape == (1000, 3, 32, 32) and x.dtype == torch.float32
    assert y.dtype == torch.int64 and y.shape == (1000,)
    assert 0.0 <= float(x.min()) and float(x.max()) <= 1.0
    assert torch.bincount(y, minlength=10).tolist() == CIFAR_TEST_COUNTS
    # Channel means stated in the provenance file: pixel / 255, channels in RGB order.
    assert torch.allclose(x.mean((0, 2, 3)), torch.tensor([0.4967, 0.4867, 0.4510]), atol=5e-4)
    # Pixels are exact multiples of 1/255 (no resampling or normalisation).
    assert torch.allclose(x[:4] * 255, (x[:4] * 255).round(), atol=1e-4)


def test_mnist_test_split_and_train_subset(data_root):
    x, y = D.load_dataset("mnist", "test", root=data_root)
    assert x.shape == (10000, 1, 28, 28)
    assert torch.bincount(y, minlength=10).tolist() == MNIST_TEST_COUNTS
    assert abs(float(x.mean()) - 0.1325) < 5e-4
    xt, yt = D.load_dataset("mnist", "train", n=300, seed=1, root=data_root)
    assert xt.shape == (300, 1, 28, 28) and yt.shape == (300,)


def test_subsets_are_nested_reproducible_and_seeded(data_root):
    full_x, full_y = D.load_dataset("cifar10", "test", root=data_root)
    a_x, a_y = D.load_dataset("cifar10", "test", n=100, seed=3, root=data_root)
    b_x, b_y = D.load_dataset("cifar10", "test", n=40, seed=3, root=data_root)
    c_x, _ = D.load_dataset("cifar10", "test", n=40, seed=4, root=data_root)
    assert torch.equal(a_x[:40], b_x) and torch.equal(a_y[:40], b_y)
    assert not torch.equal(b_x, c_x)
    # Each subset image is an image of the full split with its own label.
    perm = torch.randperm(1000, generator=torch.Generator().manual_seed(3))[:100]
    assert torch.equal(a_x, full_x[perm]) and torch.equal(a_y, full_y[perm])
    # Loading again returns equal tensors, not views of the cache that a caller could spoil.
    a_x.zero_()
    again, _ = D.load_dataset("cifar10", "test", n=100, seed=3, root=data_root)
    assert float(again.abs().sum()) > 0


def test_validation_carve_is_disjoint_fixed_and_complete(data_root):
    tr_x, tr_y = D.load_dataset("mnist", "train", root=data_root, val_size=5000)
    va_x, va_y = D.load_dataset("mnist", "val", root=data_root, val_size=5000)
    assert tr_x.shape[0] == 55000 and va_x.shape[0] == 5000
    # Same carve whatever the subset seed; the subset is drawn inside the carve.
    v1, _ = D.load_dataset("mnist", "val", n=50, seed=0, root=data_root, val_size=5000)
    v2, _ = D.load_dataset("mnist", "val", n=50, seed=9, root=data_root, val_size=5000)
    assert not torch.equal(v1, v2)
    vals = {bytes(v.numpy().tobytes()) for v in (va_x * 255).round().to(torch.uint8)}
    for v in (v1, v2):
        assert all(bytes((im * 255).round().to(torch.uint8).numpy().tobytes()) in vals for im in v)
    # Train + val = the full training set (compare label histograms and total pixel mass).
    full_x, full_y = D.load_dataset("mnist", "train", root=data_root)
    assert torch.equal(torch.bincount(tr_y, minlength=10) + torch.bincount(va_y, minlength=10),
                       torch.bincount(full_y, minlength=10))
    assert abs(float(tr_x.sum() + va_x.sum()) - float(full_x.sum())) < 1.0
    # Disjoint: the carve's indices never appear in the train indices.
    tr_idx, va_idx = D._val_split(60000, 5000)
    assert len(set(tr_idx.tolist()) & set(va_idx.tolist())) == 0 and len(tr_idx) + len(va_idx) == 60000


# ----------------------------------------------------------------------------- the raw uint8 form

@pytest.mark.parametrize("name, split, n", [("cifar10", "test", None), ("cifar10", "test", 50),
                                            ("mnist", "test", 20), ("mnist", "val", 30)])
def test_uint8_is_the_raw_bytes_of_the_float_images(data_root, name, split, n):
    kw = dict(n=n, seed=2, root=data_root, val_size=1000 if split == "val" else None)
    x8, y8 = D.load_dataset(name, split, dtype=torch.uint8, **kw)
    xf, yf = D.load_dataset(name, split, **kw)
    assert x8.dtype == torch.uint8 and x8.shape == xf.shape and torch.equal(y8, yf)
    assert torch.equal(x8, (255 * xf).round().to(torch.uint8))
    x64, _ = D.load_dataset(name, split, dtype=torch.float64, **kw)
    assert x64.dtype == torch.float64 and torch.equal(x64, x8.double() / 255)


@pytest.mark.parametrize("n", [None, 10])
def test_uint8_does_not_alias_the_in_process_cache(data_root, n):
    x8, y8 = D.load_dataset("cifar10", "test", n=n, root=data_root, dtype=torch.uint8)
    ref = x8.clone()
    x8.fill_(7)           # a caller spoiling its copy ...
    y8.fill_(3)
    again, y_again = D.load_dataset("cifar10", "test", n=n, root=data_root, dtype=torch.uint8)
    assert torch.equal(again, ref) and not bool((y_again == 3).all())        # ... spoils no later call
    xf, _ = D.load_dataset("cifar10", "test", n=n, root=data_root)
    assert torch.equal((255 * xf).round().to(torch.uint8), ref)
    raw, _ = D._load_raw("cifar10", False, str(Path(data_root).resolve()))
    assert raw.data_ptr() != again.data_ptr() and raw.data_ptr() != x8.data_ptr()


@pytest.mark.parametrize("dtype", [torch.int32, torch.int64, torch.bool, "float32"])
def test_bad_dtype_is_refused(dtype, tmp_path):
    with pytest.raises(ValueError, match="dtype must be a floating dtype or torch.uint8"):
        D.load_dataset("mnist", "test", root=tmp_path, download=False, dtype=dtype)


def test_in_process_cache_is_hit(data_root):
    D.load_dataset("cifar10", "test", n=5, root=data_root)
    hits = D._load_raw.cache_info().hits
    D.load_dataset("cifar10", "test", n=7, root=data_root)
    assert D._load_raw.cache_info().hits == hits + 1


def test_n_larger_than_split_warns_and_returns_all(data_root):
    with pytest.warns(UserWarning, match="exceeds the 1000 images"):
        x, _ = D.load_dataset("cifar10", "test", n=5000, root=data_root)
    assert x.shape[0] == 1000


def test_root_from_environment(data_root, monkeypatch):
    monkeypatch.setenv("FREQKIT_DATA", str(data_root))
    assert D.data_root() == Path(data_root).resolve()
    x, _ = D.load_dataset("cifar10", "test", n=3)
    assert x.shape == (3, 3, 32, 32)


def test_cifar_batches_load_without_meta_file(data_root, tmp_path):
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    (folder / "test_batch").symlink_to(Path(data_root) / "cifar-10-batches-py" / "test_batch")
    x, y = D.load_dataset("cifar10", "test", root=tmp_path, download=False)
    ref_x, ref_y = D.load_dataset("cifar10", "test", root=data_root)
    assert torch.equal(x, ref_x) and torch.equal(y, ref_y)


def test_dataset_info_reports_sizes_found(data_root, tmp_path):
    info = D.dataset_info("cifar10", root=data_root)
    assert info["splits"] == {"train": 50000, "test": 1000}
    assert info["complete"] is False and info["official"]["test"] == 10000
    assert info["root"] == str(Path(data_root).resolve()) and info["classes"][0] == "airplane"
    assert D.dataset_info("mnist", root=data_root)["complete"] is True
    missing = D.dataset_info("mnist", root=tmp_path)
    assert missing["splits"] == {} and not any(missing["found"].values())
    assert "FREQKIT_DATA" in missing["hint"]


def test_class_names():
    assert len(D.CIFAR10_CLASSES) == 10 and D.CIFAR10_CLASSES[3] == "cat"
    assert D.MNIST_CLASSES == tuple("0123456789")


# ----------------------------------------------------------------------------- bad input

@pytest.mark.parametrize("kw, match", [
    (dict(name="cifar100"), "name must be one of"),
    (dict(split="validation"), "split must be one of"),
    (dict(n=0), "n must be an integer >= 1"),
    (dict(n=-5), "n must be an integer >= 1"),
    (dict(n=2.5), "n must be an integer"),
    (dict(split="val"), "needs val_size"),
    (dict(split="train", val_size=-1), "val_size"),
])
def test_bad_arguments_raise_clear_errors(kw, match, tmp_path):
    args = dict(name="mnist", split="test", root=tmp_path, download=False)
    args.update(kw)
    with pytest.raises(ValueError, match=match):
        D.load_dataset(**args)


def test_val_size_too_large(data_root):
    with pytest.raises(ValueError, match="val_size must be smaller"):
        D.load_dataset("cifar10", "val", root=data_root, val_size=50000)


def test_missing_root_says_how_to_provide_data(tmp_path, monkeypatch):
    with pytest.raises(FileNotFoundError) as e:
        D.load_dataset("cifar10", "test", root=tmp_path / "nowhere", download=False)
    msg = str(e.value)
    assert "FREQKIT_DATA" in msg and "cifar-10-batches-py" in msg and "download=True" in msg
    # download=None obeys FREQKIT_OFFLINE and never touches the network.
    monkeypatch.setenv("FREQKIT_OFFLINE", "1")
    monkeypatch.setattr(D, "_download", lambda *a: pytest.fail("must not download when offline"))
    with pytest.raises(FileNotFoundError, match="MNIST/raw"):
        D.load_dataset("mnist", "train", root=tmp_path)


def test_failed_download_becomes_file_not_found(tmp_path, monkeypatch):
    def no_network(*a):
        raise OSError("Name or service not known")
    monkeypatch.delenv("FREQKIT_OFFLINE", raising=False)
    monkeypatch.setattr(D, "_download", no_network)
    with pytest.raises(FileNotFoundError, match="Downloading failed .*Name or service not known"):
        D.load_dataset("mnist", "test", root=tmp_path)


# ----------------------------------------------------------------------------- ImageNet

def _imagenet_sample(data_root):
    p = Path(data_root) / "imagenet_sample"
    if not (p / "labels.csv").is_file():
        pytest.skip("no imagenet_sample in the data root")
    return p


def test_imagenet_sample_with_labels_csv(data_root):
    root = _imagenet_sample(data_root)
    x, y, paths = D.load_imagenet_folder(root, n=5, seed=1)
    assert x.shape == (5, 3, 224, 224) and x.dtype == torch.float32
    assert 0 <= float(x.min()) and float(x.max()) <= 1 and float(x.std()) > 0.05
    for label, p in zip(y.tolist(), paths):
        name = Path(p).name  # foolbox/imagenet_<i>_<label>.jpg or one_per_class/<label>_<wnid>_...
        expected = int(name.split("_")[2].split(".")[0]) if name.startswith("imagenet_") else int(name.split("_")[0])
        assert label == expected
    all_x, all_y, all_p = D.load_imagenet_folder(root, n=70, seed=1)
    assert len(all_p) == 70 and all_p[:5] == paths


def _save_image(path, arr):
    from PIL import Image
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr).save(path)


def test_imagenet_class_folders_resize_and_centre_crop(tmp_path):
    # 300 wide x 200 high: red | green | blue thirds.  Shorter side 200 -> 73 (= 64 * 256 / 224),
    # so the width becomes 110 and the green third spans columns 36.7..73.3; the centred
    # 64-wide crop takes columns 23..86: green in its middle, red and blue at its edges.
    arr = np.zeros((200, 300, 3), np.uint8)
    arr[:, :100, 0] = 255
    arr[:, 100:200, 1] = 255
    arr[:, 200:, 2] = 255
    _save_image(tmp_path / "n01440764" / "a.png", arr)
    _save_image(tmp_path / "n01443537" / "b.png", arr[:, ::-1].copy())
    (tmp_path / "synsets.txt").write_text("0\tn01440764\ttench\n1\tn01443537\tgoldfish\n")
    x, y, paths = D.load_imagenet_folder(tmp_path, size=64)
    assert x.shape == (2, 3, 64, 64) and y.tolist() == [0, 1]
    centre = x[:, :, 20:44, 20:44]
    assert float(centre[:, 1].min()) > 0.95 and float(centre[:, [0, 2]].max()) < 0.05
    assert float(x[0, 0, :, 0].mean()) > 0.5 and float(x[0, 2, :, -1].mean()) > 0.5


def test_imagenet_folder_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        D.load_imagenet_folder(tmp_path / "missing")
    with pytest.raises(FileNotFoundError, match="labels.csv"):
        D.load_imagenet_folder(tmp_path)
    _save_image(tmp_path / "n99999999" / "a.png", np.zeros((8, 8, 3), np.uint8))
    with pytest.raises(ValueError, match="synsets"):
        D.load_imagenet_folder(tmp_path, size=8)
    with pytest.raises(ValueError, match="n must be"):
        D.load_imagenet_folder(tmp_path, n=0, synsets=None)


def test_imagenet_integer_class_folders(tmp_path):
    _save_image(tmp_path / "7" / "a.png", np.full((10, 12, 3), 128, np.uint8))
    x, y, _ = D.load_imagenet_folder(tmp_path, size=8)
    assert y.tolist() == [7] and x.shape == (1, 3, 8, 8) and abs(float(x.mean()) - 128 / 255) < 0.01




# ----------------------------------------------------------------------------- hostile and damaged files

class _RunsCode:
    """Unpickling this runs a shell command (the classic planted-pickle payload)."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        import os
        return os.system, (f"touch {self.marker}",)


def _cifar_folder(tmp_path):
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.mark.parametrize("where", ["data", "labels", "top"])
def test_planted_cifar_batch_runs_no_code(tmp_path, where):
    import pickle

    marker = tmp_path / "pwned"
    payload = _RunsCode(marker)
    entry = {"batch_label": "testing batch 1 of 1", "labels": [0, 1],
             "data": np.zeros((2, 3072), np.uint8), "filenames": ["a.png", "b.png"]}
    obj = payload if where == "top" else {**entry, where: payload}
    batch = _cifar_folder(tmp_path) / "test_batch"
    batch.write_bytes(pickle.dumps(obj, protocol=2))
    with pytest.raises(ValueError, match="test_batch") as e:
        D.load_dataset("cifar10", "test", root=tmp_path, download=False)
    assert "system" in str(e.value)                   # says what it refused
    assert not marker.exists()
    # dataset_info reads the same way.
    with pytest.raises(ValueError, match="test_batch"):
        D.dataset_info("cifar10", root=tmp_path)
    assert not marker.exists()


def test_download_uses_torchvision_only_to_fetch_files(data_root, tmp_path, monkeypatch):
    """After a download the batches are read by freqkit's restricted reader, never by torchvision's
    CIFAR10 (which calls pickle.load on whatever lies in the root)."""
    import shutil

    import torchvision.datasets as tvd
    from torchvision.datasets import utils as tvu

    calls = []

    def fake_fetch(url, download_root, extract_root=None, filename=None, md5=None, **kw):
        calls.append((url, md5))
        shutil.copy(Path(data_root) / "cifar-10-batches-py" / "test_batch", _cifar_folder(Path(download_root)))

    def no_dataset(*a, **k):
        pytest.fail("torchvision's CIFAR10 must not read the batches")

    monkeypatch.setattr(tvu, "download_and_extract_archive", fake_fetch)
    monkeypatch.setattr(tvd.CIFAR10, "__init__", no_dataset)
    x, y = D.load_dataset("cifar10", "test", n=5, root=tmp_path, download=True)
    assert x.shape == (5, 3, 32, 32) and len(calls) == 1 and calls[0][1] == tvd.CIFAR10.tgz_md5


def test_mnist_download_fetches_only_the_split_and_tries_the_next_mirror(data_root, tmp_path, monkeypatch):
    import torchvision.datasets as tvd
    from torchvision.datasets import utils as tvu

    calls = []

    def fake_fetch(url, download_root, extract_root=None, filename=None, md5=None, **kw):
        calls.append(url)
        if url.startswith(tvd.MNIST.mirrors[0]):
            raise OSError("mirror down")
        stem = filename[:-3]
        (Path(download_root) / stem).write_bytes((Path(data_root) / "MNIST" / "raw" / stem).read_bytes())

    monkeypatch.setattr(tvu, "download_and_extract_archive", fake_fetch)
    monkeypatch.setattr(tvd.MNIST, "__init__", lambda *a, **k: pytest.fail("torchvision's MNIST must not read"))
    x, y = D.load_dataset("mnist", "test", n=4, root=tmp_path, download=True)
    assert x.shape == (4, 1, 28, 28)
    assert len(calls) == 4 and all("t10k" in u for u in calls)          # 2 files x (failed mirror, good mirror)
    assert sorted(p.name for p in (tmp_path / "MNIST" / "raw").iterdir()) == ["t10k-images-idx3-ubyte",
                                                                             "t10k-labels-idx1-ubyte"]


@pytest.mark.parametrize("damage", ["truncated", "random", "empty", "not a dict", "wrong pixels", "bad labels"])
def test_damaged_cifar_batch_names_the_file(data_root, tmp_path, damage):
    import pickle

    good = (Path(data_root) / "cifar-10-batches-py" / "test_batch").read_bytes()
    blob = {
        "truncated": good[: len(good) // 2],
        "random": np.random.default_rng(0).integers(0, 256, 5000, dtype=np.uint8).tobytes(),
        "empty": b"",
        "not a dict": pickle.dumps([1, 2, 3], protocol=2),
        "wrong pixels": pickle.dumps({"data": np.zeros((2, 100), np.uint8), "labels": [0, 1]}, protocol=2),
        "bad labels": pickle.dumps({"data": np.zeros((2, 3072), np.uint8), "labels": [0, 12]}, protocol=2),
    }[damage]
    batch = _cifar_folder(tmp_path) / "test_batch"
    batch.write_bytes(blob)
    with pytest.raises(ValueError) as e:
        D.load_dataset("cifar10", "test", root=tmp_path, download=False)
    msg = str(e.value)
    assert str(batch) in msg and "CIFAR-10" in msg
    assert "pickle data was truncated" not in msg.split(str(batch))[0]   # the file comes first, not a bare pickle error


@pytest.mark.parametrize("which, cut", [("images", 1000), ("images", 16), ("images", 5), ("labels", 500),
                                        ("labels", 0)])
def test_truncated_mnist_file_names_the_file(data_root, tmp_path, which, cut):
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    src = Path(data_root) / "MNIST" / "raw"
    for name in ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"):
        data = (src / name).read_bytes()
        if which in name:
            data = data[:cut] if cut < 100 else data[:-cut]
        (raw / name).write_bytes(data)
    bad = raw / f"t10k-{which}-idx{3 if which == 'images' else 1}-ubyte"
    with pytest.raises(ValueError) as e:
        D.load_dataset("mnist", "test", root=tmp_path, download=False)
    assert str(bad) in str(e.value) and "MNIST" in str(e.value)


def test_mnist_files_that_disagree_name_both(data_root, tmp_path):
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    src = Path(data_root) / "MNIST" / "raw"
    (raw / "t10k-images-idx3-ubyte").symlink_to(src / "t10k-images-idx3-ubyte")
    (raw / "t10k-labels-idx1-ubyte").symlink_to(src / "train-labels-idx1-ubyte")   # 60,000 labels
    with pytest.raises(ValueError, match="10000 images.*60000 labels"):
        D.load_dataset("mnist", "test", root=tmp_path, download=False)
