"""Data: CIFAR-10 and MNIST as ``[0, 1]`` tensors, an ImageNet folder, pretrained ImageNet
classifiers, and a planted-frequency synthetic data set whose ground truth is known.

Conventions (DESIGN.md): images are float32 ``(N, C, H, W)`` in ``[0, 1]``, labels int64
``(N,)``.  Nothing here normalises: mean/std is a layer inside each model.

Where the data live
-------------------
The data root is, in order: the ``root`` argument, the environment variable
``FREQKIT_DATA``, ``~/.cache/freqkit/data``.  It is a torchvision-style root::

    ROOT/cifar-10-batches-py/{data_batch_1..5, test_batch, batches.meta}
    ROOT/MNIST/raw/{train,t10k}-{images-idx3,labels-idx1}-ubyte

Missing files are downloaded through torchvision when ``download`` allows it (the
default, unless ``FREQKIT_OFFLINE=1``); otherwise :class:`FileNotFoundError` says how to
provide them.  CIFAR-10 batch files are read *without* torchvision's md5 check, so
regenerated or partial copies load (e.g. the offline copy whose test batch holds only the
first 1,000 official test images); :func:`dataset_info` reports the split sizes found.
"""
from __future__ import annotations

import csv
import math
import os
import warnings
from functools import lru_cache
from pathlib import Path
from typing import Sequence

import torch

from ._validate import check_choice, check_positive_int
from .transforms import band_masks, dct_matrix, frequency_radius, idct2

__all__ = [
    "load_dataset", "dataset_info", "data_root", "DATASETS", "SPLITS", "CIFAR10_CLASSES", "MNIST_CLASSES",
    "load_imagenet_folder", "load_imagenet_classifier", "WeightsUnavailable",
    "planted_frequency_dataset",
]

CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
MNIST_CLASSES = tuple(str(d) for d in range(10))
DATASETS = ("cifar10", "mnist")
SPLITS = ("train", "test", "val")

_CLASSES = {"cifar10": CIFAR10_CLASSES, "mnist": MNIST_CLASSES}
_SHAPES = {"cifar10": (3, 32, 32), "mnist": (1, 28, 28)}
_OFFICIAL_SIZES = {"cifar10": {"train": 50000, "test": 10000}, "mnist": {"train": 60000, "test": 10000}}
_LAYOUT = {
    "cifar10": "ROOT/cifar-10-batches-py/{data_batch_1, ..., data_batch_5, test_batch, batches.meta} "
               "(the Python version of CIFAR-10, https://www.cs.toronto.edu/~kriz/cifar.html)",
    "mnist": "ROOT/MNIST/raw/{train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte, "
             "t10k-labels-idx1-ubyte} (uncompressed)",
}
_CIFAR_FILES = {True: [f"data_batch_{i}" for i in range(1, 6)], False: ["test_batch"]}
_MNIST_FILES = {True: ["train-images-idx3-ubyte", "train-labels-idx1-ubyte"],
                False: ["t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"]}

# The validation carve uses its own fixed seed, independent of the subset seed, so that
# the validation images never change with ``seed`` and never overlap the training images.
_VAL_SEED = 0x5EED


def _offline() -> bool:
    return os.environ.get("FREQKIT_OFFLINE", "").strip().lower() in ("1", "true", "yes")


def data_root(root=None) -> Path:
    """The data root: ``root``, else ``$FREQKIT_DATA``, else ``~/.cache/freqkit/data``."""
    if root is None:
        root = os.environ.get("FREQKIT_DATA") or "~/.cache/freqkit/data"
    return Path(root).expanduser().resolve()


def _files(name: str, train: bool, root: Path) -> list[Path]:
    if name == "cifar10":
        return [root / "cifar-10-batches-py" / f for f in _CIFAR_FILES[train]]
    return [root / "MNIST" / "raw" / f for f in _MNIST_FILES[train]]


def _missing(name: str, train: bool, root: Path) -> list[Path]:
    return [p for p in _files(name, train, root) if not p.is_file()]


def _not_found(name: str, root: Path, missing, cause: str = "") -> FileNotFoundError:
    return FileNotFoundError(
        f"{name} data not found under {root} (missing: {', '.join(str(p) for p in missing)}). "
        f"{cause}Provide the data by pointing the root argument or the environment variable FREQKIT_DATA "
        f"at a folder laid out as {_LAYOUT[name]}, or allow download=True on a machine with internet "
        f"(torchvision downloads it into the root).")


def _download(name: str, train: bool, root: Path) -> None:
    from torchvision import datasets
    root.mkdir(parents=True, exist_ok=True)
    cls = datasets.CIFAR10 if name == "cifar10" else datasets.MNIST
    cls(root=str(root), train=train, download=True)


def _ensure(name: str, train: bool, root: Path, download) -> None:
    missing = _missing(name, train, root)
    if not missing:
        return
    if download is None:
        download = not _offline()
    if not download:
        raise _not_found(name, root, missing, "Download is off (download=False or FREQKIT_OFFLINE=1). ")
    try:
        _download(name, train, root)
    except Exception as e:  # no network, proxy, disk: all end in the same advice
        raise _not_found(name, root, missing, f"Downloading failed ({type(e).__name__}: {e}). ") from e
    missing = _missing(name, train, root)
    if missing:
        raise _not_found(name, root, missing, "Download finished but files are still missing. ")


@lru_cache(maxsize=8)
def _load_raw(name: str, train: bool, root: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Whole split as uint8 ``(N, C, H, W)`` and int64 ``(N,)``; cached per process.

    The uint8 tensors are cached (not float copies: 4x smaller, and the float conversion
    of 50,000 images takes well under a second).
    """
    if name == "cifar10":
        from torchvision.datasets import CIFAR10

        class _NoMd5CIFAR10(CIFAR10):
            # Regenerated batches cannot be byte-identical to the official ones (see the
            # offline data's README_PROVENANCE.md); the loading code itself is unchanged.
            train_list = [[n, None] for n, _ in CIFAR10.train_list]
            test_list = [[n, None] for n, _ in CIFAR10.test_list]
            meta = {**CIFAR10.meta, "md5": None}

        try:
            ds = _NoMd5CIFAR10(root=root, train=train, download=False)
        except RuntimeError:
            # batches.meta is only used for class names, which we know; fall back to
            # reading the batches without it.
            ds = _read_cifar_batches(Path(root), train)
        x = torch.from_numpy(ds.data).permute(0, 3, 1, 2).contiguous()
        y = torch.as_tensor(ds.targets, dtype=torch.int64)
    else:
        from torchvision.datasets import MNIST
        ds = MNIST(root=root, train=train, download=False)
        x = ds.data.unsqueeze(1).contiguous()
        y = ds.targets.to(torch.int64)
    if x.shape[1:] != _SHAPES[name] or x.shape[0] != y.shape[0]:
        raise ValueError(f"{name} files under {root} hold images of shape {tuple(x.shape)} and "
                         f"{y.shape[0]} labels; expected (N, {', '.join(map(str, _SHAPES[name]))}) and N labels")
    return x, y


def _read_cifar_batches(root: Path, train: bool):
    import pickle
    from types import SimpleNamespace

    import numpy as np
    data, targets = [], []
    for p in _files("cifar10", train, root):
        with open(p, "rb") as f:
            entry = pickle.load(f, encoding="latin1")
        data.append(entry["data"])
        targets.extend(entry["labels"])
    return SimpleNamespace(data=np.vstack(data).reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1), targets=targets)


def _subset(n_total: int, n, seed: int, what: str) -> torch.Tensor | None:
    """Indices of a deterministic subset: the first ``n`` of a fixed permutation."""
    if n is None:
        return None
    check_positive_int(n, "n")
    if n > n_total:
        warnings.warn(f"n={n} exceeds the {n_total} images available in {what}; returning all {n_total}",
                      stacklevel=4)
        n = n_total
    g = torch.Generator().manual_seed(int(seed))
    return torch.randperm(n_total, generator=g)[:n]


def _val_split(n_train: int, val_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(train indices, val indices) of the fixed validation carve; both sorted."""
    if val_size >= n_train:
        raise ValueError(f"val_size must be smaller than the training set ({n_train} images), got {val_size}")
    g = torch.Generator().manual_seed(_VAL_SEED)
    perm = torch.randperm(n_train, generator=g)
    return perm[val_size:].sort().values, perm[:val_size].sort().values


def load_dataset(name: str, split: str = "test", n: int | None = None, seed: int = 0, root=None,
                 download: bool | None = None, val_size: int | None = None
                 ) -> tuple[torch.Tensor, torch.Tensor]:
    """Load CIFAR-10 or MNIST as tensors.

    Args:
        name: "cifar10" (3x32x32) or "mnist" (1x28x28).
        split: "train", "test" or "val".  "val" is carved from the official training set:
            ``val_size`` images picked by a fixed permutation (independent of ``seed``).
            ``split="train", val_size=k`` returns the training set *without* those k
            images; pass the same ``val_size`` to both so they never overlap.
            ``val_size`` is ignored for "test".
        n: number of images (None = the whole split).  The subset is the first ``n`` of a
            permutation fixed by ``seed``, so subsets are nested (``n=100`` is the first
            100 images of ``n=200``) and reproducible.  If ``n`` exceeds the split, a
            warning is issued and the whole split is returned (shuffled).
        seed: chooses the subset permutation.
        root: data root (see the module docstring); default ``$FREQKIT_DATA`` or
            ``~/.cache/freqkit/data``.
        download: True/False, or None = download missing files unless ``FREQKIT_OFFLINE=1``.
        val_size: size of the validation carve (e.g. 5000); required for ``split="val"``.

    Returns:
        ``x`` float32 ``(N, C, H, W)`` in ``[0, 1]`` (pixel / 255) and ``y`` int64 ``(N,)``.
        With ``n=None`` the images are in the files' order.

    Raises:
        ValueError on a bad name/split/n/val_size; FileNotFoundError, with instructions,
        when the data are missing and cannot be downloaded.

    Whole splits are cached in-process (as uint8), so repeated calls are cheap.
    """
    check_choice(name, "name", DATASETS)
    check_choice(split, "split", SPLITS)
    if n is not None:
        check_positive_int(n, "n")
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise ValueError(f"seed must be an integer, got {seed!r}")
    if val_size is not None and val_size != 0:
        check_positive_int(val_size, "val_size")
    if split == "val" and not val_size:
        raise ValueError("split='val' needs val_size >= 1 (the number of training images to hold out, "
                         "e.g. val_size=5000); pass the same val_size with split='train' to exclude them")
    x, y = _select_uint8(name, split, n, seed, root, download, val_size)
    return x.float().div_(255.0), y.clone()


def _select_uint8(name, split, n, seed, root, download, val_size):
    """The images of :func:`load_dataset` as uint8 (0..255); arguments already checked.

    Training keeps the set as uint8 (4x less memory) and converts each batch.
    """
    train = split != "test"
    r = data_root(root)
    _ensure(name, train, r, download)
    x, y = _load_raw(name, train, str(r))
    what = f"{name} {split}"
    if train and val_size:
        tr, va = _val_split(x.shape[0], val_size)
        keep = va if split == "val" else tr
        x, y = x[keep], y[keep]
        what += f" (val_size={val_size})"
    idx = _subset(x.shape[0], n, seed, what)
    if idx is not None:
        x, y = x[idx], y[idx]
    return x, y


def dataset_info(name: str, root=None) -> dict:
    """What is on disk for ``name``: split sizes found, the root, official sizes.

    Returns a dict with ``name``, ``root`` (str), ``found`` (split -> bool), ``splits``
    (split -> number of images found; absent splits are missing), ``official``
    (the official split sizes), ``complete`` (bool: every split found at its official
    size), ``classes``, ``image_shape`` ``(C, H, W)``, and ``hint`` (how to provide
    missing data, or "").  Never downloads and never raises for missing data.
    """
    check_choice(name, "name", DATASETS)
    r = data_root(root)
    found, splits = {}, {}
    for split, train in (("train", True), ("test", False)):
        found[split] = not _missing(name, train, r)
        if found[split]:
            splits[split] = int(_load_raw(name, train, str(r))[0].shape[0])
    official = dict(_OFFICIAL_SIZES[name])
    complete = all(splits.get(s) == official[s] for s in official)
    hint = "" if all(found.values()) else (
        f"Set FREQKIT_DATA (or pass root) to a folder laid out as {_LAYOUT[name]}.")
    return {"name": name, "root": str(r), "found": found, "splits": splits, "official": official,
            "complete": complete, "classes": list(_CLASSES[name]), "image_shape": _SHAPES[name], "hint": hint}


# ----------------------------------------------------------------------------- ImageNet

class WeightsUnavailable(RuntimeError):
    """Pretrained weights could not be had (offline, no cached download, no weights file).

    Raised instead of ever falling back to random weights; a chapter catches it and says
    plainly that its ImageNet section is skipped.
    """


_IMAGE_EXTS = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".ppm", ".tif", ".tiff")


def _read_synsets(path: Path) -> dict:
    """wnid -> class index from a ``synsets.txt`` (``index<TAB>wnid<TAB>name`` or one wnid a line)."""
    table = {}
    for i, line in enumerate(path.read_text().splitlines()):
        parts = line.strip().split("\t") if "\t" in line else line.strip().split(maxsplit=1)
        if not parts or not parts[0]:
            continue
        if parts[0].isdigit() and len(parts) > 1:
            table[parts[1].split()[0]] = int(parts[0])
        else:
            table[parts[0]] = i
    return table


def _imagenet_listing(root: Path, synsets) -> list[tuple[Path, int]]:
    labels = root / "labels.csv"
    if labels.is_file():
        items = []
        with open(labels, newline="") as f:
            reader = csv.reader(f)
            header = [h.strip() for h in next(reader, [])]
            if "file" not in header or "class_index" not in header:
                raise ValueError(f"{labels} must have a header with columns 'file' and 'class_index', got {header}")
            fi, ci = header.index("file"), header.index("class_index")
            for row in reader:
                # Only the leading columns are used: a later free-text column may hold
                # unquoted commas (as in the offline sample's 'source' column).
                if not row or not row[fi].strip():
                    continue
                items.append((root / row[fi].strip(), int(row[ci])))
        missing = [str(p) for p, _ in items if not p.is_file()]
        if missing:
            raise FileNotFoundError(f"{labels} lists {len(missing)} files that do not exist, e.g. {missing[:3]}")
        return sorted(items)
    subdirs = sorted(d for d in root.iterdir() if d.is_dir())
    if not subdirs:
        raise FileNotFoundError(f"{root} has neither a labels.csv (columns file,class_index) nor class "
                                f"subfolders (one folder per class, named by wnid or class index)")
    if synsets is None:
        for cand in (root / "synsets.txt", root.parent / "synsets.txt", root / "LOC_synset_mapping.txt"):
            if cand.is_file():
                synsets = cand
                break
    table = _read_synsets(Path(synsets)) if synsets is not None else None
    names = [d.name for d in subdirs]
    if all(nm.isdigit() for nm in names):
        index = {nm: int(nm) for nm in names}
    elif table is not None:
        unknown = [nm for nm in names if nm not in table]
        if unknown:
            raise ValueError(f"class folders {unknown[:5]} are not in the synsets file {synsets}")
        index = {nm: table[nm] for nm in names}
    elif len(names) == 1000:
        index = {nm: i for i, nm in enumerate(names)}  # sorted wnids = torchvision's class order
    else:
        raise ValueError(f"{root} has {len(names)} class folders but no synsets.txt to map them to ImageNet "
                         f"class indices: add synsets.txt (index<TAB>wnid<TAB>name) to the folder or pass synsets=")
    items = [(p, index[d.name]) for d in subdirs for p in sorted(d.iterdir())
             if p.is_file() and p.suffix.lower() in _IMAGE_EXTS]
    if not items:
        raise FileNotFoundError(f"no images ({', '.join(_IMAGE_EXTS)}) in the class folders of {root}")
    return items


def load_imagenet_folder(root, n: int | None = None, size: int = 224, seed: int = 0,
                         resize: int | None = None, synsets=None) -> tuple[torch.Tensor, torch.Tensor, list[str]]:
    """Load ImageNet-style images with their class indices (torchvision/Caffe order, 0..999).

    Two layouts are read:

    * a ``labels.csv`` in ``root`` with a header holding at least ``file`` (path relative
      to root) and ``class_index`` (e.g. the offline ``imagenet_sample``);
    * class subfolders (``root/<wnid>/*.JPEG``, the usual validation-folder layout),
      mapped to indices with a ``synsets.txt`` (``index<TAB>wnid<TAB>name``, in ``root``
      or its parent, or given as ``synsets``), or by sorted order when there are exactly
      1,000 folders (torchvision's order), or by folder names that are integers.

    Each image is converted to RGB, resized so its shorter side is ``resize`` (default
    ``round(size * 256 / 224)``, i.e. 256 for 224) and centre-cropped to ``size`` x ``size``:
    the standard ImageNet evaluation transform, without normalisation.

    Args:
        n: number of images (None = all); the first ``n`` of a permutation fixed by ``seed``.

    Returns:
        ``x`` float32 ``(N, 3, size, size)`` in ``[0, 1]``, ``y`` int64 ``(N,)``, and the
        image paths (list of str) in the same order.
    """
    from PIL import Image
    from torchvision.transforms import functional as TF

    root = Path(root).expanduser()
    if not root.is_dir():
        raise FileNotFoundError(f"ImageNet folder {root} does not exist (expected a folder with labels.csv "
                                f"or one subfolder per class)")
    check_positive_int(size, "size", 8)
    if n is not None:
        check_positive_int(n, "n")
    resize = round(size * 256 / 224) if resize is None else check_positive_int(resize, "resize", size)
    items = _imagenet_listing(root, synsets)
    idx = _subset(len(items), n, seed, f"ImageNet folder {root}")
    if idx is not None:
        items = [items[i] for i in idx.tolist()]
    xs = []
    for p, _ in items:
        with Image.open(p) as im:
            im = im.convert("RGB")
            im = TF.center_crop(TF.resize(im, resize, antialias=True), [size, size])
            xs.append(TF.pil_to_tensor(im))
    x = torch.stack(xs).float().div_(255.0)
    y = torch.tensor([c for _, c in items], dtype=torch.int64)
    if bool(((y < 0) | (y > 999)).any()):
        raise ValueError(f"class indices must lie in 0..999, got range {int(y.min())}..{int(y.max())}")
    return x, y, [str(p) for p, _ in items]


def _strip_state_dict(sd: dict) -> dict:
    if isinstance(sd, dict):
        for key in ("state_dict", "model_state_dict", "model"):
            if key in sd and isinstance(sd[key], dict):
                sd = sd[key]
                break
    out = {}
    for k, v in sd.items():
        if k.startswith("normalize."):
            continue  # our own wrapper's Normalize buffers: rebuilt below
        for prefix in ("module.", "net."):
            if k.startswith(prefix):
                k = k[len(prefix):]
        out[k] = v
    return out


def load_imagenet_classifier(arch: str = "resnet18", weights_path=None, download: bool | None = None):
    """A pretrained torchvision ImageNet classifier that takes ``[0, 1]`` images.

    Returns ``nn.Sequential(normalize=Normalize(ImageNet mean, std), net=<torchvision model>)``
    in eval mode, on the CPU, mapping ``(N, 3, H, W)`` in ``[0, 1]`` (224x224 as from
    :func:`load_imagenet_folder`) to logits ``(N, 1000)``.  Attributes: ``arch``,
    ``categories`` (1,000 class names) and ``weights_source`` (the file the weights came from).

    Weights come from, in order: ``weights_path`` (a local ``state_dict`` file of the
    torchvision model, e.g. the ``resnet18-f37072fd.pth`` that torchvision downloads);
    torchvision's download cache (``torch.hub.get_dir()/checkpoints``); a download
    (when ``download`` is True, or None and ``FREQKIT_OFFLINE`` is unset).

    Raises:
        WeightsUnavailable: no weights file given and none cached or downloadable.  Never
            returns random weights.
        FileNotFoundError: ``weights_path`` does not exist.
        ValueError: unknown ``arch``, or a weights file that does not fit it.
    """
    import torchvision
    from torchvision import models as tvm

    from .models import IMAGENET_MEAN, IMAGENET_STD, with_normalization

    known = tvm.list_models(module=torchvision.models)
    if arch not in known:
        raise ValueError(f"arch must be a torchvision ImageNet classifier name (e.g. 'resnet18', 'resnet50', "
                         f"'vgg16'), got {arch!r}")
    weights_enum = tvm.get_model_weights(arch)
    default = weights_enum.DEFAULT
    net = tvm.get_model(arch, weights=None)
    if weights_path is not None:
        path = Path(weights_path).expanduser()
        if not path.is_file():
            raise FileNotFoundError(f"weights_path {path} does not exist")
        try:
            sd = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as e:
            raise ValueError(f"could not read weights file {path} ({type(e).__name__}: {e}); "
                             f"it should hold a torchvision {arch} state_dict") from e
        try:
            net.load_state_dict(_strip_state_dict(sd))
        except (RuntimeError, AttributeError, TypeError) as e:
            raise ValueError(f"weights file {path} does not fit torchvision's {arch}: {e}") from e
        source = str(path)
    else:
        cached = Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(default.url)
        if download is None:
            download = not _offline()
        if not cached.is_file() and not download:
            raise WeightsUnavailable(
                f"no pretrained weights for {arch}: offline (download={download}, FREQKIT_OFFLINE="
                f"{os.environ.get('FREQKIT_OFFLINE', '')!r}) and not in torchvision's cache {cached}. "
                f"Pass weights_path= a local state_dict file (e.g. {os.path.basename(default.url)} from "
                f"{default.url}) or copy it into {cached.parent}.")
        try:
            net.load_state_dict(default.get_state_dict(progress=False, check_hash=False))
        except Exception as e:
            raise WeightsUnavailable(
                f"no pretrained weights for {arch}: could not download {default.url} ({type(e).__name__}: {e}). "
                f"Pass weights_path= a local state_dict file, or copy the file into {cached.parent}.") from e
        source = str(cached)
    model = with_normalization(net, IMAGENET_MEAN, IMAGENET_STD).eval()
    model.arch = arch
    model.categories = list(default.meta.get("categories", []))
    model.weights_source = source
    return model


# ----------------------------------------------------------------------------- planted frequencies

def planted_frequency_dataset(n: int, n_classes: int = 2, size: int = 32, channels: int = 1,
                              bands: Sequence[int | None] | None = None, kind: str = "radial",
                              basis: str = "dct", n_bands: int = 8, amplitude: float = 1.0,
                              noise: float = 0.0, exponent: float = 1.0, headroom: float = 6.0,
                              seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, dict]:
    """Synthetic images whose classes differ *only* in the energy of one DCT band each.

    Construction (all Gaussian, all in the orthonormal DCT domain, per channel):

    * background, shared by every class: coefficient ``(u, v)`` ~ N(0, s_uv^2) with
      ``s_uv = (f_uv + 1/size) ** -exponent`` (``f`` = normalised radius; ``exponent=1``
      gives the 1/f amplitude spectrum of natural images, 0 white noise), plus white
      noise N(0, (noise * rms(s))^2) on every coefficient;
    * class ``c`` adds N(0, (amplitude * s_uv)^2) to every coefficient of band
      ``bands[c]`` (a random sign and magnitude per coefficient, i.e. random phase), so
      that band's expected energy grows by ``1 + amplitude^2``; ``bands[c] = None`` adds
      nothing (a "background only" class).

    Coefficient signs are symmetric, so a class is visible only in the *energy* of its
    band; every coefficient outside the planted bands has exactly the same distribution
    in every class.  The image is ``0.5 + scale * idct2(c)`` with one global ``scale``
    computed from the parameters alone (the largest pixel standard deviation of any
    class times ``headroom`` maps to 0.5), so the map to ``[0, 1]`` is the same linear map
    for every image and class and leaks nothing into other bands.  A pixel beyond
    ``headroom`` standard deviations (probability ~2e-9 per pixel at 6) is clipped as a
    last resort and counted in ``info["n_clipped"]``.

    Args:
        n: number of images; classes are balanced (``n // n_classes`` each, the rest
            spread over the first classes) and shuffled.
        n_classes: >= 2.
        size: H = W.
        channels: C; channels are independent draws with the same spectrum.
        bands: one band index (into ``band_masks(size, size, n_bands, kind)``) or None
            per class, distinct.  Default: evenly spaced over bands 1 .. n_bands - 2.
        kind: "radial" or "ring" bands (see :func:`freqkit.band_masks`).
        basis: only "dct".
        amplitude: planted standard deviation relative to the background's, > 0.
        noise: white-noise level relative to the background's RMS coefficient, >= 0.
        exponent: background spectrum slope, >= 0.
        headroom: pixel standard deviations that fit between 0.5 and 0 or 1.
        seed: the generator's seed (images and label order).

    Returns:
        ``x`` float32 ``(n, channels, size, size)`` in ``[0, 1]``, ``y`` int64 ``(n,)`` and
        ``info`` (dict): ``masks`` (K, H, W) bool, the band partition; ``bands`` (list);
        ``planted_masks`` (n_classes, H, W) bool, class c's planted band (all False for
        None); ``coef_std`` (n_classes, H, W), the std of each DCT coefficient of
        ``x - 0.5`` per class (DC excluded from the offset); ``scale``; ``offset`` (0.5);
        ``class_names``; ``n_clipped``; and every parameter.
    """
    check_positive_int(n, "n")
    check_positive_int(n_classes, "n_classes", 2)
    check_positive_int(size, "size", 2)
    check_positive_int(channels, "channels")
    check_positive_int(n_bands, "n_bands", 2)
    check_choice(kind, "kind", ("radial", "ring"))
    check_choice(basis, "basis", ("dct",))
    for val, nm, lo_ok in ((amplitude, "amplitude", False), (noise, "noise", True), (exponent, "exponent", True),
                           (headroom, "headroom", False)):
        if isinstance(val, bool) or not isinstance(val, (int, float)) or not math.isfinite(val) \
                or val < 0 or (val == 0 and not lo_ok):
            raise ValueError(f"{nm} must be a finite number {'>=' if lo_ok else '>'} 0, got {val!r}")
    masks = band_masks(size, size, n_bands, kind=kind, basis="dct")
    k = masks.shape[0]
    if bands is None:
        if n_classes > k - 2:
            raise ValueError(f"n_classes={n_classes} needs bands= explicitly (only {k - 2} default bands "
                             f"1..{k - 2} with n_bands={n_bands})")
        bands = [round(1 + i * (k - 3) / (n_classes - 1)) for i in range(n_classes)]
    bands = list(bands)
    if len(bands) != n_classes:
        raise ValueError(f"bands must list one band per class ({n_classes}), got {bands!r}")
    for b in bands:
        if b is not None and (isinstance(b, bool) or not isinstance(b, int) or not 0 <= b < k):
            raise ValueError(f"bands entries must be band indices in 0..{k - 1} or None, got {bands!r}")
    if len(set(bands)) != len(bands):
        raise ValueError(f"bands must be distinct (one class per band), got {bands!r}")

    f = frequency_radius(size, size, "dct", "radial")
    s = (f + 1.0 / size) ** (-float(exponent))
    white = float(noise) * float(s.pow(2).mean().sqrt())
    planted = torch.zeros(n_classes, size, size, dtype=torch.bool)
    for c, b in enumerate(bands):
        if b is not None:
            planted[c] = masks[b]
    var = s.pow(2) + white ** 2 + planted.double() * (float(amplitude) * s).pow(2)  # (n_classes, H, W)
    # Pixel variance of idct2(c) with independent coefficients: sum_uv var_uv * D[u,i]^2 D[v,j]^2.
    d2 = dct_matrix(size, dtype=torch.float64).pow(2)
    pix_std = (d2.T @ var @ d2).sqrt()
    scale = 0.5 / (float(headroom) * float(pix_std.max()))

    g = torch.Generator().manual_seed(int(seed))
    y = (torch.arange(n) % n_classes)[torch.randperm(n, generator=g)]
    z = torch.randn(n, channels, size, size, generator=g, dtype=torch.float64)
    coef = z * var.sqrt()[y].unsqueeze(1)
    img = 0.5 + scale * idct2(coef)
    n_clipped = int(((img < 0) | (img > 1)).sum())
    x = img.clamp_(0.0, 1.0).float()
    info = {
        "masks": masks, "bands": bands, "planted_masks": planted,
        "coef_std": (var.sqrt() * scale).float(), "scale": scale, "offset": 0.5,
        "class_names": [f"band {b}" if b is not None else "background" for b in bands],
        "n_clipped": n_clipped, "n": n, "n_classes": n_classes, "size": size, "channels": channels,
        "kind": kind, "basis": basis, "n_bands": n_bands, "amplitude": float(amplitude), "noise": float(noise),
        "exponent": float(exponent), "headroom": float(headroom), "seed": int(seed),
    }
    return x, y.to(torch.int64), info
