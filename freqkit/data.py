"""Data loaders: CIFAR-10 and MNIST as ``[0, 1]`` tensors, and ImageNet-style image folders.

Pretrained classifiers live in :mod:`freqkit.models`; the planted-frequency data set, whose
ground truth is known, in :mod:`freqkit.planted`.

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
provide them.  torchvision only downloads (its archives are md5-checked); freqkit reads the
files itself:

* CIFAR-10 batches are pickles.  They are read with a restricted unpickler that accepts
  only what the format holds (a dict of str/bytes, lists of ints and str, and numpy uint8
  arrays: numpy's array reconstruction, ``ndarray`` and ``dtype``); any other global (a
  planted ``os.system``, say) is refused before it is called, so no code in a batch file
  ever runs.  ``batches.meta`` is not read (the class names are known).
* MNIST idx files are checked against their header (magic number, dimensions, size).

A damaged, truncated or foreign file gives a :class:`ValueError` that names it.  Batch
files are read *without* torchvision's md5 check, so regenerated or partial copies load
(e.g. the offline copy whose test batch holds only the first 1,000 official test images);
:func:`dataset_info` reports the split sizes found.
"""
from __future__ import annotations

import codecs
import csv
import os
import pickle
import struct
import warnings
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch

from ._runtime import offline
from ._validate import check_choice, check_positive_int

__all__ = [
    "load_dataset", "dataset_info", "data_root", "DATASETS", "SPLITS", "CIFAR10_CLASSES", "MNIST_CLASSES",
    "load_imagenet_folder",
]

#: CIFAR-10 class names, in label order (label 0 = "airplane").
CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
#: MNIST class names, in label order: the digits "0" .. "9".
MNIST_CLASSES = tuple(str(d) for d in range(10))
#: The data sets :func:`load_dataset` reads.
DATASETS = ("cifar10", "mnist")
#: The splits of :func:`load_dataset` ("val" is carved from the official training set).
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


def data_root(root=None) -> Path:
    """The data root: ``root``, else ``$FREQKIT_DATA``, else ``~/.cache/freqkit/data``.

    Args:
        root: a folder (str or path-like), or ``None`` for the environment variable or the
            default.  An empty ``FREQKIT_DATA`` counts as unset.

    Returns:
        The folder as an absolute :class:`pathlib.Path` (``~`` expanded, symlinks resolved);
        it need not exist.
    """
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
    """Fetch the files of ``name`` into ``root`` through torchvision's (md5-checked) downloader.

    torchvision's dataset classes are not instantiated: they would read the batches with
    ``pickle.load``.  Only the download helpers are used; freqkit reads the files.
    """
    from torchvision.datasets import CIFAR10, MNIST
    from torchvision.datasets import utils as tv_utils

    root.mkdir(parents=True, exist_ok=True)
    if name == "cifar10":
        tv_utils.download_and_extract_archive(CIFAR10.url, str(root), filename=CIFAR10.filename, md5=CIFAR10.tgz_md5)
        return
    raw = root / "MNIST" / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    wanted = set(_MNIST_FILES[train])
    for archive, md5 in MNIST.resources:
        stem = archive[:-3] if archive.endswith(".gz") else archive
        if stem not in wanted or (raw / stem).is_file():
            continue
        errors = []
        for mirror in MNIST.mirrors:
            try:
                tv_utils.download_and_extract_archive(f"{mirror}{archive}", str(raw), filename=archive, md5=md5)
                break
            except Exception as e:  # noqa: BLE001 - any failure: try the next mirror
                errors.append(f"{mirror}: {type(e).__name__}: {e}")
        else:
            raise OSError(f"could not download {archive} from any mirror ({'; '.join(errors)})")


def _ensure(name: str, train: bool, root: Path, download) -> None:
    missing = _missing(name, train, root)
    if not missing:
        return
    if download is None:
        download = not offline()
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
    of 50,000 images takes well under a second).  Read by freqkit's own readers (never by
    torchvision's dataset classes, whose CIFAR-10 reader calls ``pickle.load``).
    """
    files = _files(name, train, Path(root))
    if name == "cifar10":
        batches = [_read_cifar_batch(p) for p in files]
        data = np.concatenate([b[0] for b in batches])
        labels = np.concatenate([b[1] for b in batches])
        # Each row holds the R plane, then G, then B, each row-major: (N, 3, 32, 32) as it is.
        x = torch.from_numpy(np.ascontiguousarray(data.reshape(-1, 3, 32, 32)))
        y = torch.from_numpy(labels.astype(np.int64))
    else:
        images, labels = _read_idx(files[0], 3), _read_idx(files[1], 1)
        if images.shape[0] != labels.shape[0]:
            raise ValueError(f"MNIST files disagree: {files[0]} holds {images.shape[0]} images but {files[1]} "
                             f"{labels.shape[0]} labels; {_REPLACE['mnist']}")
        if int(labels.max(initial=0)) > 9:
            raise _bad_file("mnist", files[1], f"it holds label {int(labels.max())}, but MNIST labels are 0..9")
        x = torch.from_numpy(images.copy()).unsqueeze(1)
        y = torch.from_numpy(labels.astype(np.int64))
    if x.shape[1:] != _SHAPES[name] or x.shape[0] != y.shape[0]:
        raise ValueError(f"{name} files under {root} hold images of shape {tuple(x.shape)} and "
                         f"{y.shape[0]} labels; expected (N, {', '.join(map(str, _SHAPES[name]))}) and N labels")
    return x, y


_REPLACE = {
    "cifar10": "replace it with the file from the official archive (delete it and call load_dataset with "
               "download=True, or copy cifar-10-batches-py/ from the Python version of CIFAR-10)",
    "mnist": "replace it with the original uncompressed file (delete it and call load_dataset with download=True, "
             "or copy MNIST/raw/ from a torchvision download)",
}


def _bad_file(name: str, path: Path, why: str) -> ValueError:
    what = "CIFAR-10 batch" if name == "cifar10" else "MNIST idx file"
    return ValueError(f"{path} is not a valid {what}: {why}; {_REPLACE[name]}")


def _latin1_encode(text="", encoding="latin1", errors="strict"):
    """``_codecs.encode`` as Python 3 pickles bytes at protocol 2, latin-1 only."""
    if not isinstance(text, str) or codecs.lookup(encoding).name != "iso8859-1" or errors != "strict":
        raise pickle.UnpicklingError(f"_codecs.encode({type(text).__name__}, {encoding!r}) is not how a CIFAR-10 "
                                     f"batch stores bytes")
    return text.encode("latin1")


def _empty_bytes(*args):
    """``bytes()`` as Python 3 pickles ``b""`` at protocol 2; nothing else."""
    if args:
        raise pickle.UnpicklingError("bytes(...) with arguments is not how a CIFAR-10 batch stores bytes")
    return b""


class _RefusedGlobal(pickle.UnpicklingError):
    """A CIFAR-10 batch referred to a global outside the format (raised before it is called)."""


class _CifarUnpickler(pickle.Unpickler):
    """An unpickler for CIFAR-10 batches that resolves only the globals the format holds.

    A batch is a dict (str or bytes keys) of a numpy uint8 array (``data``), a list of ints
    (``labels``), a list of str (``filenames``) and a str (``batch_label``).  Dicts, lists,
    str, bytes and ints need no global; the array needs numpy's ``_reconstruct`` (under its
    numpy 1 or numpy 2 module name), ``ndarray`` and ``dtype``; bytes pickled by Python 3 at
    protocol 2 need ``_codecs.encode`` (latin-1 only) and ``bytes`` (empty only).  Any other
    global raises :class:`pickle.UnpicklingError` before anything is called.
    """

    _reconstruct = np.ndarray.__reduce__(np.zeros(1, np.uint8))[0]
    ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"): _reconstruct,
        ("numpy._core.multiarray", "_reconstruct"): _reconstruct,
        ("numpy", "ndarray"): np.ndarray,
        ("numpy", "dtype"): np.dtype,
        ("_codecs", "encode"): _latin1_encode,
        ("builtins", "bytes"): _empty_bytes,
        ("__builtin__", "bytes"): _empty_bytes,
    }

    def find_class(self, module, name):
        try:
            return self.ALLOWED[(module, name)]
        except KeyError:
            raise _RefusedGlobal(
                f"it refers to {module}.{name}, which a CIFAR-10 batch never holds (refused; nothing in the "
                f"file was run)") from None


def _read_cifar_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """``(data (N, 3072) uint8, labels (N,) int64)`` of one batch file, read safely and checked."""
    try:
        with open(path, "rb") as f:
            entry = _CifarUnpickler(f, encoding="latin1").load()
    except OSError:
        raise
    except _RefusedGlobal as e:
        raise _bad_file("cifar10", path, str(e)) from e
    except Exception as e:  # EOFError, truncated or random bytes, a huge shape (MemoryError)...
        raise _bad_file("cifar10", path, f"it cannot be unpickled, it is truncated or no pickle "
                                         f"({type(e).__name__}: {e})") from e
    if not isinstance(entry, dict):
        raise _bad_file("cifar10", path, f"it holds a {type(entry).__name__}, not a dict with 'data' and 'labels'")

    def field(key):
        for k in (key, key.encode()):
            if k in entry:
                return entry[k]
        raise _bad_file("cifar10", path, f"it has no {key!r} entry (keys: {sorted(map(str, entry))[:6]})")

    data, labels = field("data"), field("labels")
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3072:
        got = f"a {data.dtype} array of shape {data.shape}" if isinstance(data, np.ndarray) else type(data).__name__
        raise _bad_file("cifar10", path, f"'data' must be a uint8 array (N, 3072), got {got}")
    if isinstance(labels, np.ndarray) and labels.ndim == 1 and labels.dtype.kind in "iu":
        lab = labels.astype(np.int64)
    elif isinstance(labels, list) and all(isinstance(v, int) and not isinstance(v, bool) for v in labels):
        lab = np.asarray(labels, dtype=np.int64).reshape(-1)
    else:
        raise _bad_file("cifar10", path, "'labels' must be a list of integers")
    if lab.shape[0] != data.shape[0]:
        raise _bad_file("cifar10", path, f"it holds {data.shape[0]} images but {lab.shape[0]} labels")
    if lab.size and (int(lab.min()) < 0 or int(lab.max()) > 9):
        raise _bad_file("cifar10", path, f"its labels span {int(lab.min())}..{int(lab.max())}, not 0..9")
    return data, lab


def _read_idx(path: Path, ndim: int) -> np.ndarray:
    """An unsigned-byte idx file (MNIST) as a uint8 array, after checking header and size."""
    blob = path.read_bytes()
    head = 4 + 4 * ndim
    kind = "images (idx3)" if ndim == 3 else "labels (idx1)"
    if len(blob) < head:
        raise _bad_file("mnist", path, f"it has {len(blob)} bytes, fewer than the {head}-byte header of {kind}")
    if blob[:3] != b"\x00\x00\x08" or blob[3] != ndim:
        raise _bad_file("mnist", path, f"its magic number is {blob[:4].hex()}, expected 000008{ndim:02x} "
                        f"(unsigned-byte {kind}; a .gz file must be uncompressed first)")
    dims = struct.unpack(f">{ndim}I", blob[4:head])
    if ndim == 3 and dims[1:] != (28, 28):
        raise _bad_file("mnist", path, f"its images are {dims[1]}x{dims[2]}, not 28x28")
    size = int(np.prod(dims))
    if len(blob) - head != size:
        raise _bad_file("mnist", path, f"its header announces {dims[0]} {kind.split()[0]} ({size} bytes of data) "
                        f"but it holds {len(blob) - head} bytes (truncated or damaged)")
    return np.frombuffer(blob, np.uint8, offset=head).reshape(dims)


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
                 download: bool | None = None, val_size: int | None = None, dtype: torch.dtype = torch.float32
                 ) -> tuple[torch.Tensor, torch.Tensor]:
    """Load CIFAR-10 or MNIST as tensors.

    Reads the torchvision-style files under the data root (see the module docstring),
    downloading missing files through torchvision when ``download`` allows it.  Whole splits
    are cached in-process (as uint8), so repeated calls are cheap; the returned tensors are
    always fresh copies.

    Args:
        name: ``"cifar10"`` (3x32x32) or ``"mnist"`` (1x28x28).
        split: ``"train"``, ``"test"`` or ``"val"``.  ``"val"`` is carved from the official
            training set: ``val_size`` images picked by a fixed permutation (independent of
            ``seed``).  ``split="train", val_size=k`` returns the training set *without*
            those k images; pass the same ``val_size`` to both so they never overlap.
        n: number of images, an integer ``>= 1`` (``None`` = the whole split).  The subset
            is the first ``n`` of a permutation fixed by ``seed``, so subsets are nested
            (``n=100`` is the first 100 images of ``n=200``) and reproducible.  If ``n``
            exceeds the split, a warning is issued and the whole split is returned (shuffled).
        seed: an integer; chooses the subset permutation.
        root: data root (see the module docstring); default ``$FREQKIT_DATA`` or
            ``~/.cache/freqkit/data``.
        download: True/False, or ``None`` = download missing files unless
            ``FREQKIT_OFFLINE=1``.
        val_size: size of the validation carve (e.g. 5000), an integer ``>= 1`` below the
            training-set size; required for ``split="val"``; ``None`` or 0 = no carve.
            Ignored for ``"test"``.
        dtype: a floating dtype (pixels / 255 in ``[0, 1]``), or ``torch.uint8`` for the raw
            bytes 0..255 (4x less memory: training keeps the set so and converts per batch).

    Returns:
        ``(x, y)``: images in ``[0, 1]`` as ``dtype`` (0..255 for uint8) and int64 labels.
        With ``n=None`` the images are in the files' order.

    Shape:
        - x: ``(N, 3, 32, 32)`` (CIFAR-10) or ``(N, 1, 28, 28)`` (MNIST)
        - y: ``(N,)``

    Raises:
        ValueError: an unknown ``name`` or ``split``; ``n`` not an integer ``>= 1``; ``seed``
            not an integer; ``val_size`` not an integer ``>= 0`` or not below the
            training-set size; ``split="val"`` without ``val_size``; a ``dtype`` that is
            neither floating nor uint8; a data file that is truncated, damaged or not in
            its format (a CIFAR-10 batch referring to anything but numpy arrays, lists,
            str and bytes is refused unread), or holding images of the wrong shape: the
            message names the file.
        FileNotFoundError: the data are missing and cannot be downloaded (the message says
            how to provide them).

    Warns:
        UserWarning: ``n`` exceeds the images available.
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
    if dtype != torch.uint8 and not (isinstance(dtype, torch.dtype) and dtype.is_floating_point):
        raise ValueError(f"dtype must be a floating dtype or torch.uint8, got {dtype!r}")
    x, y = _select(name, split, n, seed, root, download, val_size)
    if dtype == torch.uint8:
        return x.clone(), y.clone()  # never hand out the in-process cache itself
    return x.to(dtype).div_(255.0), y.clone()


def _select(name, split, n, seed, root, download, val_size):
    """The images of :func:`load_dataset` as uint8 (0..255), possibly the cached tensors themselves."""
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

    Never downloads and never raises for missing data, so it suits checks before a run.
    Found splits are read (and cached, as by :func:`load_dataset`) to count their images.

    Args:
        name: ``"cifar10"`` or ``"mnist"``.
        root: data root (see :func:`data_root`).

    Returns:
        A dict with ``name``, ``root`` (str), ``found`` (``"train"``/``"test"`` -> bool),
        ``splits`` (split -> number of images found; missing splits are absent),
        ``official`` (the official split sizes), ``complete`` (bool: every split found at
        its official size), ``classes`` (list of names), ``image_shape`` ``(C, H, W)`` and
        ``hint`` (how to provide missing data, or ``""``).

    Raises:
        ValueError: an unknown ``name``, or a data file that is damaged, truncated, not in
            its format or holds images of the wrong shape (the message names the file).
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
      to root) and ``class_index`` (e.g. the offline ``imagenet_sample``); other columns are
      ignored;
    * class subfolders (``root/<wnid>/*.JPEG``, the usual validation-folder layout),
      mapped to indices by folder names that are integers, else with a ``synsets.txt``
      (``index<TAB>wnid<TAB>name``, or one wnid a line; looked for in ``root``, its parent,
      or ``root/LOC_synset_mapping.txt``, or given as ``synsets``), else by sorted order
      when there are exactly 1,000 folders (torchvision's order).  Files with an image
      extension (jpg, jpeg, png, bmp, webp, ppm, tif, tiff; any case) are read.

    Each image is converted to RGB, resized so its shorter side is ``resize`` and
    centre-cropped to ``size`` x ``size``: the standard ImageNet evaluation transform,
    without normalisation.

    Args:
        root: the folder (str or path-like; ``~`` is expanded).
        n: number of images, an integer ``>= 1`` (``None`` = all); the first ``n`` of a
            permutation fixed by ``seed`` (all of them, with a warning, if ``n`` exceeds
            the images found).
        size: side of the square crop, an integer ``>= 8``.
        seed: chooses the subset permutation.
        resize: shorter side after resizing, an integer ``>= size``; default
            ``round(size * 256 / 224)``, i.e. 256 for 224.
        synsets: path of a synsets file mapping wnids to indices (class-folder layout only).

    Returns:
        ``(x, y, paths)``: float32 images in ``[0, 1]``, int64 class indices and the image
        paths (list of str), in the same order (sorted by path when ``n`` is None).

    Shape:
        - x: ``(N, 3, size, size)``
        - y: ``(N,)``

    Raises:
        FileNotFoundError: ``root`` is not a folder; ``labels.csv`` lists missing files; no
            ``labels.csv`` and no class subfolders; no images in the class folders.
        ValueError: ``size``, ``n`` or ``resize`` out of range; a ``labels.csv`` without the
            ``file``/``class_index`` columns; class folders missing from the synsets file, or
            no way to map them; a class index outside 0..999.
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
