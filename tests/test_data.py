"""freqkit.data: real offline data sets, subsets and splits, ImageNet folders and
classifiers, the planted-frequency data set, and clear errors for bad input."""
from pathlib import Path

import numpy as np
import pytest
import torch

import freqkit.data as D
from freqkit.transforms import dct2

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


@pytest.fixture
def empty_hub(tmp_path, monkeypatch):
    old = torch.hub.get_dir()
    torch.hub.set_dir(str(tmp_path / "hub"))
    yield tmp_path
    torch.hub.set_dir(old)


def test_classifier_offline_without_weights_raises(empty_hub, monkeypatch):
    monkeypatch.setenv("FREQKIT_OFFLINE", "1")
    with pytest.raises(D.WeightsUnavailable, match="weights_path") as e:
        D.load_imagenet_classifier("resnet18")
    assert isinstance(e.value, RuntimeError)
    with pytest.raises(D.WeightsUnavailable):
        D.load_imagenet_classifier("resnet18", download=False)


def test_classifier_failed_download_raises(empty_hub, monkeypatch):
    from torchvision.models import ResNet18_Weights

    def no_network(self, *a, **k):
        raise OSError("Name or service not known")
    monkeypatch.setattr(ResNet18_Weights, "get_state_dict", no_network)
    with pytest.raises(D.WeightsUnavailable, match="could not download"):
        D.load_imagenet_classifier("resnet18", download=True)


def test_classifier_from_local_weights_file(tmp_path):
    import torchvision
    from freqkit.models import IMAGENET_MEAN, IMAGENET_STD, Normalize
    torch.manual_seed(0)
    ref = torchvision.models.resnet18(weights=None).eval()
    path = tmp_path / "resnet18-random.pth"
    torch.save(ref.state_dict(), path)
    model = D.load_imagenet_classifier("resnet18", weights_path=path)
    assert isinstance(model[0], Normalize) and not model.training
    assert torch.allclose(model[0].mean.flatten(), torch.tensor(IMAGENET_MEAN))
    assert torch.allclose(model[0].std.flatten(), torch.tensor(IMAGENET_STD))
    assert torch.equal(model.net.fc.weight, ref.fc.weight)
    assert len(model.categories) == 1000 and model.weights_source == str(path)
    x = torch.rand(2, 3, 64, 64)
    with torch.no_grad():
        expected = ref((x - torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)) / torch.tensor(IMAGENET_STD).view(1, 3, 1, 1))
        assert torch.allclose(model(x), expected, atol=1e-5)
    # A file saved from the wrapped model itself loads too (its Normalize buffers are skipped).
    torch.save(model.state_dict(), tmp_path / "wrapped.pth")
    again = D.load_imagenet_classifier("resnet18", weights_path=tmp_path / "wrapped.pth")
    assert torch.equal(again.net.conv1.weight, ref.conv1.weight)


def test_classifier_bad_inputs(tmp_path):
    with pytest.raises(ValueError, match="arch must be"):
        D.load_imagenet_classifier("resnet_nonexistent", weights_path=tmp_path / "x.pth")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        D.load_imagenet_classifier("resnet18", weights_path=tmp_path / "x.pth")
    torch.save({"fc.weight": torch.zeros(3, 3)}, tmp_path / "wrong.pth")
    with pytest.raises(ValueError, match="does not fit"):
        D.load_imagenet_classifier("resnet18", weights_path=tmp_path / "wrong.pth")
    (tmp_path / "junk.pth").write_bytes(b"not a torch file")
    with pytest.raises(ValueError, match="could not read"):
        D.load_imagenet_classifier("resnet18", weights_path=tmp_path / "junk.pth")


# ----------------------------------------------------------------------------- planted frequencies

def _band_energy(x, masks):
    """(N, K) energy of each band in the DCT of x - 0.5, summed over channels."""
    c2 = dct2((x - 0.5).double()).pow(2).sum(1)  # (N, H, W)
    return torch.einsum("nhw,khw->nk", c2, masks.double())


def _class_mean_gap(e, y, k):
    """Largest standardised gap between the class means of band k's log energy."""
    le = e[:, k].log()
    means = [le[y == c].mean() for c in y.unique()]
    ses = [le[y == c].std() / (y == c).sum().sqrt() for c in y.unique()]
    return max(abs(float(a - b)) / float((sa ** 2 + sb ** 2).sqrt())
               for i, (a, sa) in enumerate(zip(means, ses)) for b, sb in zip(means[i + 1:], ses[i + 1:]))


def test_planted_shapes_range_and_info():
    x, y, info = D.planted_frequency_dataset(101, n_classes=3, size=16, channels=3, n_bands=6, seed=2)
    assert x.shape == (101, 3, 16, 16) and x.dtype == torch.float32 and y.dtype == torch.int64
    assert 0 <= float(x.min()) and float(x.max()) <= 1
    assert torch.bincount(y).tolist() == [34, 34, 33]
    assert info["bands"] == [1, 2, 4] and info["masks"].shape == (6, 16, 16)
    for c, b in enumerate(info["bands"]):
        assert torch.equal(info["planted_masks"][c], info["masks"][b])
    assert info["n_clipped"] == 0 and info["class_names"][0] == "band 1"
    x2, y2, _ = D.planted_frequency_dataset(101, n_classes=3, size=16, channels=3, n_bands=6, seed=2)
    assert torch.equal(x, x2) and torch.equal(y, y2)
    x3, _, _ = D.planted_frequency_dataset(101, n_classes=3, size=16, channels=3, n_bands=6, seed=3)
    assert not torch.equal(x, x3)


def test_planted_band_energy_separates_and_outside_is_class_independent():
    n = 2000
    x, y, info = D.planted_frequency_dataset(n, n_classes=2, size=32, bands=[1, 6], n_bands=8, seed=0)
    masks = info["masks"]
    e = _band_energy(x, masks)
    # The planted bands: energy grows by 1 + amplitude^2 = 2 in the planted class.
    for c, b in enumerate(info["bands"]):
        ratio = float(e[y == c, b].mean() / e[y != c, b].mean())
        assert 1.8 < ratio < 2.2
    # A one-feature classifier (log energy ratio of the two planted bands, threshold at
    # the midpoint of the class means) separates the classes.
    f = (e[:, 1] / e[:, 6]).log()
    thr = 0.5 * float(f[y == 0].mean() + f[y == 1].mean())
    acc = float(((f > thr).long() == (y == 0).long()).float().mean())
    assert acc > 0.97
    # Outside the planted bands every band's energy has the same distribution in both
    # classes: class means agree within sampling error...
    others = [k for k in range(masks.shape[0]) if k not in info["bands"]]
    for k in others:
        assert _class_mean_gap(e, y, k) < 4.0, k
    # ... and a nearest-class-mean classifier on all outside-band log energies is at chance.
    le = e[:, others].log()
    mu = torch.stack([le[y == c].mean(0) for c in (0, 1)])
    sd = le.std(0)
    pred = (((le[:, None, :] - mu[None]) / sd).pow(2).sum(-1)).argmin(1)
    assert float((pred == y).float().mean()) < 0.58
    # Control: a per-image rescale (what clipping or max-normalisation would do) leaks
    # the class into the other bands, and the same statistic catches it.
    leaky = 0.5 + (x - 0.5) / (x - 0.5).abs().amax((1, 2, 3), keepdim=True) * 0.5
    el = _band_energy(leaky, masks)
    assert max(_class_mean_gap(el, y, k) for k in others) > 6.0


def test_planted_options_ring_background_class_and_noise():
    x, y, info = D.planted_frequency_dataset(600, n_classes=2, size=16, bands=[None, 3], kind="ring",
                                             n_bands=8, amplitude=2.0, noise=0.2, seed=1)
    assert info["class_names"] == ["background", "band 3"] and not info["planted_masks"][0].any()
    e = _band_energy(x, info["masks"])
    ratio = float(e[y == 1, 3].mean() / e[y == 0, 3].mean())
    assert 3.5 < ratio < 6.5  # (1 + noise' + 4) / (1 + noise'): below 5 because of the white noise
    assert torch.equal(info["masks"], D.band_masks(16, 16, 8, kind="ring"))
    # coef_std describes the data: empirical per-coefficient std in the planted band.
    std_emp = dct2(x[y == 1] - 0.5).std(0)[0]
    m = info["planted_masks"][1]
    assert torch.allclose(std_emp[m].mean(), info["coef_std"][1][m].mean(), rtol=0.1)


@pytest.mark.parametrize("kw, match", [
    (dict(n=0), "n must be"),
    (dict(n_classes=1), "n_classes"),
    (dict(bands=[2, 2]), "distinct"),
    (dict(bands=[1]), "one band per class"),
    (dict(bands=[1, 8]), "band indices in 0..7"),
    (dict(amplitude=0.0), "amplitude"),
    (dict(noise=-1.0), "noise"),
    (dict(noise=float("nan")), "noise"),
    (dict(basis="dft"), "basis"),
    (dict(kind="square"), "kind"),
    (dict(n_classes=9), "needs bands= explicitly"),
])
def test_planted_bad_input(kw, match):
    args = dict(n=10)
    args.update(kw)
    with pytest.raises(ValueError, match=match):
        D.planted_frequency_dataset(**args)
