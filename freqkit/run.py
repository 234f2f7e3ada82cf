"""Command line: data-set-level computations on one process or many (``torchrun``), results as JSON.

::

    python -m freqkit.run heatmap --model resnet50 --weights resnet50.pth --data /data/imagenet/val \\
        --n-images 1000 --directions 4 --eps 4 --out heatmap.json
    torchrun --nproc_per_node=8 -m freqkit.run heatmap ...            # the same, split over 8 GPUs
    python -m freqkit.run filtered-accuracy --model mypkg.nets:make_net --weights net.pt \\
        --data cifar10 --cutoffs 0.25 0.5 1.0 --out filtered.json

Subcommands: ``heatmap`` (:func:`freqkit.heatmaps.heatmap_report`: Fourier heat maps,
optionally on a sub-grid and per layer) and ``filtered-accuracy``
(:func:`freqkit.filtered_accuracy`, low- and/or high-pass).

**Your model** (``--model``), never a pickled model object:

* a torchvision ImageNet classifier name (``resnet18``, ``resnet50``, ``vit_b_16``...):
  :func:`freqkit.load_imagenet_classifier`, ImageNet normalisation included; its weights from
  ``--weights`` (a local state dict) or else torchvision's cache or a download (never random
  weights: offline without a file it fails, naming the file to provide);
* ``package.module:factory``: a Python import path to a function (or class) returning an
  ``nn.Module`` that takes ``[0, 1]`` images (``--model-kwargs`` JSON are its keyword
  arguments; ``--normalize imagenet|cifar10|mnist`` puts a :class:`freqkit.Normalize` in
  front for a network trained on normalised inputs), with the state dict of ``--weights``
  loaded strictly by ``torch.load(weights_only=True)``.  The module is imported like any
  installed Python code (it must be importable: installed, or on ``PYTHONPATH``).

**Your data** (``--data``): ``cifar10`` or ``mnist`` (:func:`freqkit.load_dataset`, split
``--split``, root ``--data-root`` or ``$FREQKIT_DATA``), or an ImageNet-style folder
(:func:`freqkit.load_imagenet_folder`: ``labels.csv`` or class subfolders, resized and
centre-cropped to ``--size``).  ``--n-images`` images, chosen by ``--data-seed``.  Every rank
loads the same images (0.6 MB per 224x224 image, held in memory on every rank and moved
to its device).

**Several processes**: under ``torchrun`` (``WORLD_SIZE > 1``) the process group is
initialised from the environment (nccl when CUDA is available, each rank on GPU
``LOCAL_RANK``; else gloo on the CPU) with a timeout of ``--timeout`` seconds on every
collective operation; the library splits the work (heat map: by direction; filtered
accuracy: by image) and every rank computes the full result; rank 0 writes it.  A rank that
fails makes every rank fail, each printing why, and ``torchrun`` exits non-zero.

**Output**: one JSON file (:func:`freqkit._io.atomic_write_json`: complete or absent),
written by rank 0: ``command``, ``setting`` (model, weights file with its SHA-256, data,
options), ``world`` (ranks, backend, device), ``seconds`` and ``result`` (the library's
result; maps as nested lists with ``"nan"`` where a sub-grid skipped a frequency).  Read it
back with :func:`load_result`.  Progress bars appear only on a terminal, on rank 0.

Exit status: 0 done, 1 the computation failed (the error is printed), 2 a usage error,
130 interrupted.

This module is the library's edge: nothing in freqkit imports it; it only combines the
public functions of ``data``, ``models``, ``heatmaps`` and ``reliance`` (and freqkit's
private runtime helpers) for a shell.
"""
from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
import time
from pathlib import Path

import torch
import torch.distributed as dist
from torch import nn

from ._distributed import DEFAULT_TIMEOUT_S, init_from_env, world
from ._io import atomic_write_json, file_sha256
from .data import load_dataset, load_imagenet_folder
from .heatmaps import fourier_directions, heatmap_report
from .models import (
    CIFAR10_MEAN, CIFAR10_STD, IMAGENET_MEAN, IMAGENET_STD, MNIST_MEAN, MNIST_STD, load_imagenet_classifier,
    resolve_device, with_normalization,
)
from .reliance import filtered_accuracy

__all__ = ["main", "build_parser", "load_model", "load_data", "load_result"]

#: Version of the JSON layout :func:`main` writes.
FORMAT = 1

_NORMALIZE = {"imagenet": (IMAGENET_MEAN, IMAGENET_STD), "cifar10": (CIFAR10_MEAN, CIFAR10_STD),
              "mnist": (MNIST_MEAN, MNIST_STD)}


class UsageError(ValueError):
    """A command-line argument that cannot work (exit status 2)."""



def _unwrap_state_dict(sd):
    """The state dict inside common checkpoint wrappers (``state_dict``, ``model_state_dict``, ``model``)."""
    for key in ("state_dict", "model_state_dict", "model"):
        if isinstance(sd, dict) and key in sd and isinstance(sd[key], dict):
            return sd[key]
    return sd


def _import_factory(spec: str):
    module_name, _, attr = spec.partition(":")
    if not module_name or not attr:
        raise UsageError(f"--model must be a torchvision model name or 'package.module:factory', got {spec!r}")
    try:
        obj = importlib.import_module(module_name)
    except ImportError as e:
        raise UsageError(f"--model {spec!r}: cannot import module {module_name!r} ({e}); is it installed or on "
                         "PYTHONPATH?") from e
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise UsageError(f"--model {spec!r}: {module_name!r} has no attribute {attr!r}")
        obj = getattr(obj, part)
    if not callable(obj):
        raise UsageError(f"--model {spec!r}: {attr!r} is not callable (a function or class returning an nn.Module)")
    return obj


def load_model(spec: str, weights=None, model_kwargs: dict | None = None, normalize: str | None = None) -> nn.Module:
    """The model a ``--model`` specification names, in eval mode, on the CPU.

    Args:
        spec: a torchvision ImageNet classifier name (loaded by
            :func:`freqkit.load_imagenet_classifier`, normalisation included), or
            ``"package.module:factory"``, a callable returning an ``nn.Module`` on
            ``[0, 1]`` images.
        weights: a local state-dict file (str or path).  A torchvision name without one uses
            torchvision's cache or a download; a factory without one keeps the factory's
            own initialisation (e.g. a factory that loads its weights itself).
        model_kwargs: keyword arguments of the factory (factories only).
        normalize: ``"imagenet"``, ``"cifar10"``, ``"mnist"`` or ``None``: a
            :class:`freqkit.Normalize` with those statistics in front of a factory's model.

    Returns:
        The ``nn.Module`` in eval mode.

    Raises:
        UsageError: (a ``ValueError``) a factory that cannot be imported or is not callable,
            ``model_kwargs`` or ``normalize`` with a torchvision name, an unknown
            ``normalize``, a factory returning something else than an ``nn.Module``.
        FileNotFoundError: ``weights`` does not exist.
        ValueError: a weights file that cannot be read with ``weights_only=True`` or does
            not fit the model (the message names the missing and unexpected keys).
        WeightsUnavailable: a torchvision name without weights, offline.
    """
    if normalize is not None and normalize not in _NORMALIZE:
        raise UsageError(f"--normalize must be one of {sorted(_NORMALIZE)}, got {normalize!r}")
    if ":" not in spec:
        if model_kwargs or normalize:
            raise UsageError("--model-kwargs and --normalize apply to a 'package.module:factory' model; a torchvision "
                             f"classifier ({spec!r}) comes with its ImageNet normalisation")
        return load_imagenet_classifier(spec, weights_path=weights).eval()
    factory = _import_factory(spec)
    model = factory(**(model_kwargs or {}))
    if not isinstance(model, nn.Module):
        raise UsageError(f"--model {spec!r} returned a {type(model).__name__}, not a torch.nn.Module")
    if weights is not None:
        path = Path(weights).expanduser()
        if not path.is_file():
            raise FileNotFoundError(f"--weights {path} does not exist")
        try:
            sd = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as e:  # noqa: BLE001 - a pickled model, a damaged file
            raise ValueError(f"--weights {path} cannot be read as a state dict with torch.load(weights_only=True) "
                             f"({type(e).__name__}: {e}); save model.state_dict(), not the model") from e
        sd = _unwrap_state_dict(sd)
        if not isinstance(sd, dict):
            raise ValueError(f"--weights {path} holds a {type(sd).__name__}, not a state dict")
        missing, unexpected = model.load_state_dict(sd, strict=False)
        if missing or unexpected:
            raise ValueError(f"--weights {path} does not fit {spec}: missing keys {list(missing)[:8]}, unexpected keys "
                             f"{list(unexpected)[:8]}")
    if normalize:
        model = with_normalization(model, *_NORMALIZE[normalize])
    return model.eval()


def load_data(data: str, n: int | None = None, split: str = "test", size: int = 224, seed: int = 0,
              data_root=None) -> tuple[torch.Tensor, torch.Tensor]:
    """The images a ``--data`` specification names, in ``[0, 1]``, with their labels.

    Args:
        data: ``"cifar10"``, ``"mnist"`` (:func:`freqkit.load_dataset`) or an ImageNet-style
            folder (:func:`freqkit.load_imagenet_folder`).
        n: number of images (``None``: all), the first ``n`` of a permutation by ``seed``.
        split: the split of CIFAR-10/MNIST.
        size: crop size of an ImageNet folder.
        seed: chooses the subset.
        data_root: root of CIFAR-10/MNIST (default ``$FREQKIT_DATA``).

    Returns:
        ``(x, y)``: float32 images and int64 labels, on the CPU.

    Shape:
        - x: ``(N, C, H, W)``; y: ``(N,)``.

    Raises:
        UsageError: ``data`` neither a data set name nor a folder.
        FileNotFoundError, ValueError: as the loaders.
    """
    if data in ("cifar10", "mnist"):
        return load_dataset(data, split=split, n=n, seed=seed, root=data_root)
    if Path(data).expanduser().is_dir():
        x, y, _ = load_imagenet_folder(data, n=n, size=size, seed=seed)
        return x, y
    raise UsageError(f"--data must be 'cifar10', 'mnist' or an ImageNet-style folder (labels.csv or class "
                     f"subfolders), got {data!r} (no such folder)")


def load_result(path) -> dict:
    """Read a results file of :func:`main`, with its maps as tensors again.

    Args:
        path: the JSON file ``--out`` wrote.

    Returns:
        The stored dict; in a ``heatmap`` result, ``result["maps"]`` and
        ``result["layer_maps"]`` hold float32 ``(H, W)`` tensors (NaN where a sub-grid
        skipped a frequency).

    Raises:
        FileNotFoundError: no such file.
        ValueError: not a results file of ``freqkit.run``.
    """
    rec = json.loads(Path(path).read_text())
    if not isinstance(rec, dict) or rec.get("format") != FORMAT or "result" not in rec:
        raise ValueError(f"{path} is not a results file of python -m freqkit.run (format {FORMAT})")

    def as_map(v):
        return torch.tensor([[float(e) for e in row] for row in v], dtype=torch.float32)
    res = rec["result"]
    for key in ("maps", "layer_maps"):
        if isinstance(res, dict) and key in res:
            res[key] = {k: as_map(v) for k, v in res[key].items()}
    return rec


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``python -m freqkit.run``.

    Returns:
        An ``argparse.ArgumentParser`` with the subcommands ``heatmap`` and
        ``filtered-accuracy``.
    """
    p = argparse.ArgumentParser(prog="python -m freqkit.run",
                                description="freqkit's data-set-level computations on one process or under torchrun; "
                                            "results as JSON (written by rank 0).")
    sub = p.add_subparsers(dest="command", required=True)

    def common(q):
        g = q.add_argument_group("model")
        g.add_argument("--model", required=True,
                       help="a torchvision ImageNet classifier name (resnet50, ...) or package.module:factory")
        g.add_argument("--weights", default=None, help="local state-dict file (torch.load(weights_only=True))")
        g.add_argument("--model-kwargs", default=None, help="JSON object: keyword arguments of the factory")
        g.add_argument("--normalize", default=None, choices=sorted(_NORMALIZE),
                       help="put a Normalize with these statistics in front of a factory's model")
        g = q.add_argument_group("data")
        g.add_argument("--data", required=True, help="cifar10, mnist, or an ImageNet-style folder")
        g.add_argument("--n-images", type=int, default=None, help="number of images (default: all)")
        g.add_argument("--split", default="test", help="split of cifar10/mnist (default test)")
        g.add_argument("--size", type=int, default=224, help="crop size of an ImageNet folder (default 224)")
        g.add_argument("--data-seed", type=int, default=0, help="chooses the --n-images images (default 0)")
        g.add_argument("--data-root", default=None, help="root of cifar10/mnist (default $FREQKIT_DATA)")
        g = q.add_argument_group("run")
        g.add_argument("--batch-size", type=int, default=256, help="images per forward pass (default 256)")
        g.add_argument("--device", default="auto", help="auto, cpu, cuda (under torchrun with nccl: GPU LOCAL_RANK)")
        g.add_argument("--backend", default="auto", choices=("auto", "gloo", "nccl"),
                       help="torch.distributed backend under torchrun (auto: nccl with CUDA, else gloo)")
        g.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT_S,
                       help=f"seconds a rank waits for the others at a collective before failing (default "
                            f"{DEFAULT_TIMEOUT_S:g})")
        g.add_argument("--threads", type=int, default=None, help="CPU threads per process (default: torch's)")
        g.add_argument("--out", required=True, help="the JSON results file (written atomically by rank 0)")
        g.add_argument("--no-progress", action="store_true", help="no progress bar even on a terminal")

    h = sub.add_parser("heatmap", help="Fourier heat maps (Yin et al. 2019), full grid, sub-grid or per layer")
    common(h)
    h.add_argument("--eps", type=float, default=4.0, help="L2 norm of the perturbation per channel (default 4)")
    h.add_argument("--directions", type=int, default=None, metavar="K",
                   help="sub-grid: every K-th frequency along each axis (default: every frequency)")
    h.add_argument("--radii", type=float, nargs="+", default=None,
                   help="sub-grid: radial/angular sampling at these normalised radii (units of Nyquist)")
    h.add_argument("--angles", type=int, default=None, help="angles per radius with --radii")
    h.add_argument("--metrics", nargs="+", default=["error", "logit_change"], choices=("error", "logit_change"))
    h.add_argument("--signs", default=None, choices=("stream", "hashed"),
                   help="random signs: one stream over the whole grid (default) or hashed per image")
    h.add_argument("--layers", nargs="+", default=None, help="per-layer maps of these submodules (named_modules)")
    h.add_argument("--seed", type=int, default=0, help="seed of the random signs (default 0)")
    h.add_argument("--radial-bins", type=int, default=None, help="bands of the radial profiles")

    f = sub.add_parser("filtered-accuracy", help="accuracy on low-/high-pass filtered images (Wang et al. 2019)")
    common(f)
    f.add_argument("--cutoffs", type=float, nargs="+",
                   default=[0.0, 0.05, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.6, 0.8, 1.0, 1.2],
                   help="normalised cut-off radii (units of Nyquist)")
    f.add_argument("--modes", nargs="+", default=["low", "high"], choices=("low", "high"))
    f.add_argument("--basis", default="dct", choices=("dct", "dft"))
    f.add_argument("--kind", default="radial", choices=("radial", "ring"))
    f.add_argument("--clip", action="store_true", help="clip filtered images to [0, 1]")
    return p


def _directions(args, h: int, w: int):
    if args.directions is not None and args.radii is not None:
        raise UsageError("give --directions K or --radii ... --angles A, not both")
    if args.radii is not None:
        if args.angles is None:
            raise UsageError("--radii needs --angles (angles per radius)")
        return fourier_directions(h, w, radii=args.radii, n_angles=args.angles)
    if args.angles is not None:
        raise UsageError("--angles needs --radii")
    return args.directions


def _run(args) -> dict:
    kwargs = None
    if args.model_kwargs:
        try:
            kwargs = json.loads(args.model_kwargs)
        except json.JSONDecodeError as e:
            raise UsageError(f"--model-kwargs must be a JSON object, got {args.model_kwargs!r} ({e})") from e
        if not isinstance(kwargs, dict):
            raise UsageError(f"--model-kwargs must be a JSON object, got {args.model_kwargs!r}")
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    w = init_from_env(args.timeout, None if args.backend == "auto" else args.backend)
    if w.backend == "nccl":
        device = torch.device("cuda", torch.cuda.current_device())
    else:
        device = resolve_device(args.device)
    x, y = load_data(args.data, args.n_images, args.split, args.size, args.data_seed, args.data_root)
    model = load_model(args.model, args.weights, kwargs, args.normalize).to(device)
    x, y = x.to(device), y.to(device)
    show = not args.no_progress
    setting = {"model": args.model, "model_kwargs": kwargs, "normalize": args.normalize,
               "weights": None if args.weights is None else str(Path(args.weights).expanduser().resolve()),
               "weights_sha256": None if args.weights is None else file_sha256(Path(args.weights).expanduser()),
               "weights_source": getattr(model, "weights_source", None), "data": args.data, "n": int(x.shape[0]),
               "image_shape": list(x.shape[1:]), "split": args.split if args.data in ("cifar10", "mnist") else None,
               "data_seed": args.data_seed, "batch_size": args.batch_size}
    t0 = time.perf_counter()
    if args.command == "heatmap":
        dirs = _directions(args, x.shape[-2], x.shape[-1])
        setting.update(eps=args.eps, directions=(None if dirs is None else dirs if isinstance(dirs, int) else
                                                 {"radii": args.radii, "angles": args.angles}),
                       metrics=args.metrics, signs=args.signs or "stream", layers=args.layers, seed=args.seed)
        result = heatmap_report(model, x, y, eps=args.eps, batch_size=args.batch_size, seed=args.seed,
                                n_radial_bins=args.radial_bins, metrics=tuple(args.metrics), directions=dirs,
                                signs=args.signs, layers=args.layers, progress=show)
    else:
        setting.update(cutoffs=args.cutoffs, modes=args.modes, basis=args.basis, kind=args.kind, clip=args.clip)
        result = {mode: filtered_accuracy(model, x, y, args.cutoffs, mode=mode, basis=args.basis, kind=args.kind,
                                          batch_size=args.batch_size, clip=args.clip, progress=show)
                  for mode in args.modes}
    return {"format": FORMAT, "command": args.command, "argv": sys.argv[1:], "setting": setting,
            "world": {"size": w.size, "backend": w.backend, "device": str(device)},
            "seconds": time.perf_counter() - t0, "result": result}


def main(argv=None) -> int:
    """Run ``python -m freqkit.run`` with ``argv``; returns the exit status.

    Args:
        argv: the arguments (default ``sys.argv[1:]``).

    Returns:
        0 done (rank 0 wrote ``--out``), 1 the computation failed, 2 a usage error,
        130 interrupted.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    rank = os.environ.get("RANK", "0")
    try:
        rec = _run(args)
        if world().rank == 0:
            path = atomic_write_json(rec, Path(args.out).expanduser())
            print(f"freqkit.run {args.command}: {rec['setting']['n']} images on {rec['world']['size']} rank(s) in "
                  f"{rec['seconds']:.1f} s -> {path}", file=sys.stderr)
        return 0
    except UsageError as e:
        print(f"freqkit.run: error (rank {rank}): {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"freqkit.run: interrupted (rank {rank})", file=sys.stderr)
        return 130
    except Exception as e:  # noqa: BLE001 - one clear line per rank; torchrun reports the failed ranks
        print(f"freqkit.run: error (rank {rank}): {type(e).__name__}: {e}", file=sys.stderr)
        return 1
    finally:
        if dist.is_available() and dist.is_initialized():
            dist.destroy_process_group()


if __name__ == "__main__":
    sys.exit(main())
