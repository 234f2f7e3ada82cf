"""Training with a checkpoint cache: one function, :func:`train_or_load`.

A chapter asks for a model by data set and configuration; if a checkpoint trained with
exactly that configuration (and this version of the training code) exists it is loaded,
otherwise the model is trained and the checkpoint written atomically.

Configuration keys (every key has a default; ``DEFAULT_CONFIG[dataset]`` lists them, and
the defaults equal ``PRESETS[dataset]["cpu"]``):

========================  ==================================================================
``arch``                  "smallcnn", "resnet" or "airnet" (:func:`freqkit.models.build_model`);
                          None = the data set's default (MNIST: smallcnn, CIFAR-10: resnet).
``width``                 the model's width multiplier (channels of its first conv; of its
                          first group for airnet).
``width_factor``          airnet: its second and third groups have ``width_factor x width``
                          channels (airbench: 4); other architectures ignore it.
``epochs``                passes over the training images (int >= 1).
``batch_size``            images per SGD step.
``lr``                    peak learning rate (of the mean loss over the batch).
``momentum``              SGD momentum (Nesterov) or AdamW's beta1.
``weight_decay``          L2 weight decay (SGD) / decoupled decay (AdamW), on every trained
                          parameter.
``optimizer``             "sgd" (Nesterov momentum) or "adamw".
``schedule``              "onecycle" (the triangular schedule: linear warm-up from lr/10 to lr
                          over ``warmup`` of the steps, then linear decay to 0), "cosine" (same
                          warm-up, cosine decay) or "constant".
``warmup``                fraction of the steps spent warming up (0 .. 1).
``n_train``               number of training images (None = all left after ``val_size``); a
                          subset fixed by ``seed`` (:func:`freqkit.data.load_dataset`).
``val_size``              images held out of the training set for validation (0 = none).
``augment``               CIFAR-10: random translation + horizontal flip; MNIST: random shift.
                          Done on the device, per batch.
``translate``             pixels of the random translation (padding on each side, then a random
                          crop): None = the data set's default (CIFAR-10: 4, reflected; MNIST:
                          2, zeros); airbench uses 2.  Integer 0 .. 8.
``flip``                  CIFAR-10 mirroring with ``augment``: "random" (each image with
                          probability 1/2, every epoch) or "alternating" (airbench: a random half
                          in even epochs, the other half in odd epochs).
``label_smoothing``       cross-entropy label smoothing (0 .. 1).
``lookahead``             airbench's lookahead: every 5,120 images (and at least 20 times a
                          run) the weights (and BatchNorm statistics) move to an exponential average of themselves,
                          ``ema <- d ema + (1 - d) w; w <- ema`` with ``d = 0.95**5 (step /
                          total)**3``; the final weights are the average (updated with the
                          last steps).
``bias_lr_scale``         BatchNorm biases train with ``lr x bias_lr_scale`` and
                          ``weight_decay / bias_lr_scale`` (airbench: 64); 1 = as the rest.
``whiten_bias_epochs``    epochs during which the bias of an airnet's whitening layer is
                          trained (airbench: 3); its filters are never trained.  The filters
                          are fitted before the first step to the first 5,000 training images
                          (timed as training) and saved in the state_dict.
``whiten_eps``            airnet: the regulariser of its whitening layer
                          (:class:`freqkit.models.PatchWhitening`'s ``eps``, airbench: 5e-4),
                          a finite number ``> 0``; it caps the layer's gain at
                          ``whiten_eps ** -0.5``.  Adversarial training of the CIFAR-10 cpu
                          preset needs 0.1 (see "Whitening and adversarial training" below).
                          Only for ``arch="airnet"``.
``tta``                   test-time flip augmentation: the model handed out is
                          :class:`freqkit.models.MirrorAverage` of the trained network (mean
                          logits of the image and its mirror), and its accuracy is that of this
                          averaged model; the checkpoint holds the bare network.
``seed``                  seeds the initialisation, the subset, the shuffling and the
                          augmentation.
``amp``                   mixed precision: bf16 autocast on CUDA, and on CPUs with native bf16
                          (AVX512-BF16/AMX, where it measured 1.5-2x faster); fp32 elsewhere.
``kernel_smoothing``      ``rho >= 0`` (0 = off): after every optimiser step (and once before
                          the first) the kernels of the first convolution (:func:`first_conv`)
                          are smoothed by Wang et al. 2020's Eq. 3, normalised
                          (:func:`smooth_kernels`); see "Kernel smoothing" below.
``stop_at_accuracy``      None (off) or a target in ``(0, 1]``: training stops as soon as the
                          accuracy on the validation split (``val_size`` images held out of
                          the training set; never the test images) reaches it; see "Stopping
                          at an accuracy" below.
``stop_check_every``      with ``stop_at_accuracy``: optimiser steps between validation checks
                          (an integer >= 1); None = at the end of each epoch.
========================  ==================================================================

These last three keys and ``whiten_eps`` are off (at their default) unless set, and leave
the checkpoint key of a configuration that does not use them unchanged (they enter the
hash only when set), so adding them retrained nothing.

Whitening and adversarial training (issue 12).  airbench's whitening layer divides each
principal patch direction by ``sqrt(l + eps)``, so its gain is at most ``eps ** -0.5``: with
``eps = 5e-4`` on normalised CIFAR-10 the weakest (highest-frequency) direction of a 2x2
patch is amplified 30.5 times (the cap is 45).  FGSM-RS (Wong et al. 2020) on the cpu preset
then overfits catastrophically.  ``benchmarks/bench_robust_training.py``, AMD EPYC,
2026-12-02, seed 0, on the 1,000 test images, Linf 8/255:

* ``whiten_eps`` 5e-4: 71.2% clean, 60.3% under FGSM, **0.0%** under PGD-10 and under the
  reference APGD-CE + APGD-T (712 s of training on one thread).  Two one-off runs (scripts
  not in the repository, PGD-10 on 200 images) stayed at 0% with the FGSM step at eps and with lr 0.1.
* ``whiten_eps`` 0.1 (gain at most 3.2): 71.1% clean, 39.0% under PGD-10 (200 images); seeds
  0-2 under the reference APGD-CE + APGD-T on 500 images each: 34.2% (chapter 7).

0.1 was the only other value tried.  The book's cpu profile therefore trains every full-size
CIFAR-10 model of chapters 2-7 at ``whiten_eps = 0.1``, standard ones included, so that the
architecture is the same on both sides of a comparison and each seed of the standard suite
trains once for all chapters (standard models at 0.1: 88.6 / 89.6 / 88.8% for seeds 0-2 on the
1,000 test images, against 88.8 / 88.4 / 89.4% at 5e-4; AMD EPYC, native bf16, 2026-12-02).

Kernel smoothing (issue 13, thread (a)).  Wang et al. 2020 ("High-frequency component
helps explain the generalization of convolutional neural networks", CVPR, section 6.3)
smooth the first layer's kernels of a *trained* model once, ``w_ij <- w_ij + rho
sum_{8 neighbours} w_hk`` (borders replicated; rho in {0.10, 0.25, 0.5, 1.0}), and report
higher robustness at lower clean accuracy; :func:`smooth_first_layer` does exactly that.
``kernel_smoothing`` instead *trains* under the smoothing (projected training): the same
update divided by ``1 + 8 rho`` after every step, so the network learns with smooth
first-layer kernels rather than having them blurred afterwards.  The division keeps the
kernel's mean (a constant kernel is a fixed point); without it each of thousands of steps
would multiply the kernels by up to ``1 + 8 rho``.  On a 3x3 kernel the normalised update
multiplies its DCT coefficient ``(u, v)`` by ``((1 - rho) + 9 rho l_u l_v) / (1 + 8 rho)``
with ``l = (1, 2/3, 0)``: at ``rho = 1`` it removes every coefficient with ``u = 2`` or
``v = 2`` at each step.

Stopping at an accuracy (issue 12, the matched-accuracy control).  A standard model
stopped at a robust model's clean accuracy tells "adversarially trained" from "less
accurate".  The learning-rate schedule is the full run's (``epochs``), so the stopped model
is the full run's model at the step where it stopped (the validation checks draw no
random numbers and leave the weights alone); with ``lookahead`` the weights are those
measured (the final average is not applied after a stop).  The checks see the model
handed out (with ``tta`` the mirror average) in eval mode, as :func:`train_or_load`
measures ``val_accuracy``.  ``info["stop"]`` and the checkpoint's metrics record where it
stopped: ``target``, ``reached``, ``step``, ``steps_planned``, ``epoch`` (fractional),
``images_seen``, ``val_accuracy``, ``n_val``, ``check_seconds`` (inside ``train_seconds``)
and ``checks`` (every check: step, epoch, val_accuracy).

Suites: :func:`train_seeds` trains (or loads) one model per seed of a configuration; each
seed is its own checkpoint.

Two optional keys (not in ``DEFAULT_CONFIG``, absent for standard training) name a custom
training objective, so that it is part of the checkpoint key:

=====================  =====================================================================
``objective``          a name such as ``"adversarial"`` (``"standard"`` = plain cross-entropy,
                       the same as leaving the key out).
``objective_params``   a dict of JSON-serialisable values: every parameter of the objective
                       (eps, step size, lambda, a version of the objective's code...).
=====================  =====================================================================

``train_or_load(..., loss_fn=f)`` trains with ``loss = f(model, xb, yb, cfg, step_info)``
(or ``(loss, logits)``, logits of the images trained on, for the running training
accuracy) instead of cross-entropy; ``f`` is called where the cross-entropy would be,
inside the bf16 autocast context when ``amp`` is on, with the model in train mode.
``step_info`` is a dict: ``step`` and ``total`` (optimiser steps), ``epoch``, ``dataset``,
``amp``, ``lr`` (current learning rate) and ``generator`` (a ``torch.Generator`` on the
device, seeded by ``config["seed"]``, for the objective's random draws).  A ``loss_fn``
needs a config naming its ``objective``, and a config naming an objective needs its
``loss_fn``: two objectives can then never share a cache entry.  This module knows
nothing of attacks or defenses (layering): :mod:`freqkit.objectives` builds the objectives.

The checkpoint's key is a hash of (data set, the full configuration with defaults filled
in, ``TRAINING_CODE_VERSION``); the file is ``{cache_dir}/{dataset}-{key}.pt``.  The cache
directory is the ``cache_dir`` argument, else ``$FREQKIT_CACHE``, else
``~/.cache/freqkit/checkpoints``.  Device, progress bar and thread count are not part of the
key: a model trained on a GPU is reused on a CPU.

Nothing damaged loads silently.  Every checkpoint stores a SHA-256 of its weights (names,
dtypes, shapes and bytes of the state_dict's tensors) and the test accuracy measured at
training.  Loading recomputes the checksum, and :func:`train_or_load` compares the accuracy
it measures now with the stored one whenever the test split found now has the same size
(within 1 percentage point); a mismatch raises :class:`CorruptCheckpoint` naming the file.
A checkpoint without a checksum (written before version 2 of the training code) is
refused the same way; :func:`train_or_load` never meets one, because the version is part of
the key: such files are stale and the configuration is trained afresh.

A read-only or full cache folder costs no work: the folder is probed before training; if
it cannot be written, training goes ahead with a warning that the model will not be
cached, and a write that fails after training (e.g. no space left) warns with the path and
still returns the trained model (``info["saved"]`` is then False).
"""
from __future__ import annotations

import copy
import hashlib
import json
import math
import os
import sys
import time
import warnings
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from ._io import atomic_save_torch, lock_file, lock_held, probe_writable
from ._runtime import native_bf16
from ._runtime import progress as progress_bar
from ._validate import check_choice, check_images, check_number, check_positive_int, check_tensor
from .data import DATASETS, load_dataset
from .models import MirrorAverage, PatchWhitening, build_model, evaluate, resolve_device

__all__ = [
    "train_or_load", "train_on_tensors", "checkpoint_key", "checkpoint_path", "load_checkpoint", "full_config",
    "cache_dir", "CorruptCheckpoint", "train_many", "check_seeds", "PRESETS", "DEFAULT_CONFIG",
    "TRAINING_CODE_VERSION", "PROFILES",
    "OBJECTIVE_KEYS", "train_seeds", "first_conv", "smooth_kernels", "smooth_first_layer",
]

# Bump whenever a change to this module (or the models) changes what a configuration trains:
# every cached checkpoint then becomes stale and is retrained, never silently reused.
# Version 2: checkpoints carry a checksum of their weights (version-1 files have none).
# Version 3: the airbench recipe (AirNet, lookahead, BN-bias learning rate, alternating flip,
# translate, whitening-bias epochs, TTA); the optimiser skips frozen parameters.
#: Version of the training code; part of every checkpoint key (:func:`checkpoint_key`).
TRAINING_CODE_VERSION = "3"

# How far the test accuracy of a loaded checkpoint may lie from the one stored with it
# (same test-split size) before the file counts as damaged: 1 percentage point.
_ACCURACY_TOLERANCE = 0.01
_CHECKSUM_ALGORITHM = "sha256-state_dict"

#: The preset names of :data:`PRESETS`: "smoke" (seconds), "cpu" (minutes on a CPU), "gpu".
PROFILES = ("smoke", "cpu", "gpu")

_COMMON = dict(arch=None, momentum=0.9, weight_decay=5e-4, optimizer="sgd", schedule="onecycle", warmup=0.2,
               n_train=None, val_size=0, label_smoothing=0.0, seed=0, amp=True, translate=None, flip="random",
               lookahead=False, bias_lr_scale=1.0, whiten_bias_epochs=0, tta=False, width_factor=4,
               kernel_smoothing=0.0, stop_at_accuracy=None, stop_check_every=None, whiten_eps=5e-4)

# Keys added after version 3 whose default is "off": at these values they are left out of the
# checkpoint key, so that every configuration trained before them keeps its key (and its cached
# checkpoint) without a version bump: they change nothing about what such a configuration trains.
_OFF_BY_DEFAULT = {"kernel_smoothing": 0.0, "stop_at_accuracy": None, "stop_check_every": None, "whiten_eps": 5e-4}

# The airbench recipe (Jordan 2024, arXiv:2404.00498; its hyperparameters are per 1,024 images with
# a summed loss): lr 11.5 / (1024 (1 + 1 / (1 - 0.85))) per image, i.e. 0.375 for the mean loss of
# a batch of 256 (1.5 at 1,024); weight decay 0.0153 / 11.5 = 1.33e-3 in torch's convention;
# momentum 0.85 (Nesterov); BatchNorm biases at 64x the lr; label smoothing 0.2; 23% warm-up;
# 2-pixel translation with alternating flip; lookahead; whitening bias trained for 3 epochs.
_AIRBENCH = dict(arch="airnet", momentum=0.85, weight_decay=1.33e-3, warmup=0.23, label_smoothing=0.2,
                 augment=True, translate=2, flip="alternating", lookahead=True, bias_lr_scale=64.0,
                 whiten_bias_epochs=3)

# Measured (issue 12) on this 2-core Intel Xeon with AVX512-BF16/AMX, shared with other jobs; see
# benchmarks/bench_training.py and the README's training rows for the side-by-side figures:
#   cifar10 cpu:  AirNet widths 16/96/96 (0.27 M parameters), 10 epochs, all 50,000 images, seed 0, one
#                 thread, side by side with the old preset (benchmarks/bench_training.py, 2026-12-01, record in
#                 benchmarks/measured/cpu-xeon-2026-12-01/training.json; that run had translate 4, which
#                 changes no cost): fp32 (what a CPU without native bf16 runs) 515 s vs 1,173 s for the old
#                 preset (ratio 0.44; CPU seconds 414 vs 1,119), 89.7% vs 89.7% on the 1,000 offline test
#                 images; bf16 234 vs 939 CPU seconds (0.25), 89.5% vs 90.6% (the bf16 wall times are not
#                 comparable: the old run shared the cores with four other jobs).  The preset as it stands
#                 (translate 2), chapter 2's cpu run, 3 seeds: 90.8 / 89.3 / 89.3% (mean 89.8%), 182-195 s each
#                 with one thread at load about 3.
#                 On an AMD EPYC with native bf16 (chapter 2's cpu run, 2026-12-02, one thread, two runs
#                 sharing the 2 cores): 88.8 / 88.4 / 89.4% (mean 88.9%), 421 / 370 / 369 s; the same three
#                 models with mirror TTA (models.MirrorAverage) 90.1 / 89.6 / 89.7% (mean 89.8%): six trainings
#                 on two CPUs span 88.4-90.8%, so the >= 90% goal is missed by about a point without TTA.
#                 On an AMD EPYC without native bf16 (fp32, benchmarks/bench_training.py, 2026-12-02, record in
#                 benchmarks/measured/cpu-epyc-nobf16-2026-12-02/training.json, seed 0, one thread): 985 s vs 2,537 s
#                 for the old preset (ratio 0.39), 89.1% bare and 90.0% with mirror TTA (old: 90.4% / 91.3%).
#   the old cifar10 cpu preset (ResNet-9 layout width 16, 16 epochs, batch 256, label smoothing 0.1,
#   bench_training.OLD_CPU_PRESET): 90.2-90.6% in 549-596 s (bf16).
#   mnist cpu:    99.27% on the 10,000 test digits, 80 s training (45 CPU-s).
#   smoke:        a few seconds of training each.
# The gpu presets are unmeasured (no GPU on this machine).
#: Ready-made configurations, ``PRESETS[dataset][profile]`` (see :data:`PROFILES`).
PRESETS: dict = {
    "mnist": {
        # Seconds: a few thousand digits, one epoch; enough for a notebook to run end to end.
        "smoke": {**_COMMON, "arch": "smallcnn", "width": 16, "epochs": 1, "batch_size": 64, "lr": 0.05,
                  "n_train": 2560, "augment": False},
        "cpu": {**_COMMON, "arch": "smallcnn", "width": 32, "epochs": 3, "batch_size": 128, "lr": 0.05,
                "augment": False},
        "gpu": {**_COMMON, "arch": "smallcnn", "width": 64, "epochs": 12, "batch_size": 256, "lr": 0.1,
                "augment": True},
    },
    "cifar10": {
        # Seconds: the cpu recipe's code path (whitening, lookahead, ...) on 2,560 images.
        "smoke": {**_COMMON, **_AIRBENCH, "width": 8, "epochs": 2, "batch_size": 64, "lr": 0.4, "n_train": 2560,
                  "augment": False, "whiten_bias_epochs": 1},
        # airbench's recipe scaled to 2 CPU cores (widths 16/96/96 instead of 64/256/256).
        # Chosen on a 5,000-image validation split (45,000 training images, one seed each; never on the
        # test images): widths 16/96/96 89.8% (mirror TTA 90.4%); translate 4 89.1%; 16/64/64 with ReLU
        # 86.2%; without whitening 88.3%, lookahead 88.7%, label smoothing 89.2%, dirac 89.0%,
        # alternating flip 89.3%, BN-bias lr scale and frozen BN scale 87.9%.
        "cpu": {**_COMMON, **_AIRBENCH, "width": 16, "width_factor": 6, "epochs": 10, "batch_size": 256,
                "lr": 0.375},
        # airbench94 (94.01% in 9.9 epochs on an A100, with test-time flip and translate): widths
        # 64/256/256, batch 1,024, lr 1.5 for the mean loss; tta = the mirror half of airbench's TTA.
        # Unmeasured here (no GPU on this machine).
        "gpu": {**_COMMON, **_AIRBENCH, "width": 64, "width_factor": 4, "epochs": 10, "batch_size": 1024,
                "lr": 1.5, "tta": True},
    },
}

#: The default configuration of each data set (equal to ``PRESETS[dataset]["cpu"]``).
DEFAULT_CONFIG = {d: dict(PRESETS[d]["cpu"]) for d in PRESETS}

#: Optional configuration keys naming a custom training objective (see the module docstring).
OBJECTIVE_KEYS = ("objective", "objective_params")


class CorruptCheckpoint(RuntimeError):
    """A checkpoint file exists but cannot be read, is damaged, or does not match its configuration.

    Raised by :func:`load_checkpoint` (and so by :func:`train_or_load`) with a message that
    names the file and says to delete it to retrain: an unreadable file, weights that do not
    match their stored checksum (or no checksum at all), a configuration or data set other
    than the one asked for, and (from :func:`train_or_load`) a test accuracy that no longer
    matches the one measured at training.  A subclass of RuntimeError.
    """


def _corrupt(path: Path, why: str) -> CorruptCheckpoint:
    return CorruptCheckpoint(f"checkpoint {path} is corrupt or incompatible: {why}. "
                             f"Delete {path} and rerun to retrain it.")


def _state_dict_checksum(sd: dict) -> str:
    """SHA-256 (hex) over the names, dtypes, shapes and bytes of a state_dict's tensors, by sorted name."""
    h = hashlib.sha256()
    for k in sorted(sd):
        t = sd[k]
        if not isinstance(t, torch.Tensor):
            raise TypeError(f"state_dict entry {k!r} is a {type(t).__name__}, not a tensor")
        t = t.detach().cpu().contiguous().reshape(-1)
        h.update(f"{k}\0{t.dtype}\0{tuple(sd[k].shape)}\0".encode())
        h.update(t.view(torch.uint8).numpy())
    return h.hexdigest()


# ----------------------------------------------------------------------------- helpers

def cache_dir(path=None) -> Path:
    """Checkpoint folder: ``path``, else ``$FREQKIT_CACHE``, else ``~/.cache/freqkit/checkpoints``.

    Args:
        path: a folder (str or path-like), or ``None`` for the environment variable or the
            default.  An empty ``FREQKIT_CACHE`` counts as unset.

    Returns:
        The folder as a :class:`pathlib.Path` with ``~`` expanded (not resolved; it need not
        exist).
    """
    if path is None:
        path = os.environ.get("FREQKIT_CACHE") or "~/.cache/freqkit/checkpoints"
    return Path(path).expanduser()


_CHOICES = {"optimizer": ("sgd", "adamw"), "schedule": ("onecycle", "cosine", "constant"),
            "arch": (None, "smallcnn", "resnet", "airnet"), "flip": ("random", "alternating")}
_MAX_TRANSLATE = 8


def full_config(dataset: str, config: dict | None = None) -> dict:
    """``DEFAULT_CONFIG[dataset]`` updated with ``config``, checked; unknown keys are an error.

    The configuration keys and their meaning are listed in the module docstring.  The
    optional objective keys (:data:`OBJECTIVE_KEYS`) are kept only for a non-standard
    objective: ``objective="standard"`` (or no objective) drops them, so that it hashes like
    plain cross-entropy training.

    Args:
        dataset: ``"mnist"`` or ``"cifar10"``.
        config: the keys to change (``None``: none); not modified.

    Returns:
        A new dict: every key of ``DEFAULT_CONFIG[dataset]``, plus ``objective`` and
        ``objective_params`` (a copy, ``{}`` when not given) for a non-standard objective.

    Raises:
        TypeError: ``config`` is not a dict.
        ValueError: an unknown ``dataset``; an unknown key; ``width``, ``epochs``,
            ``batch_size`` or ``n_train`` (unless None) not an integer ``>= 1``; ``val_size``
            not an integer ``>= 0``; ``seed`` not an integer; ``lr`` not a number ``> 0``;
            ``weight_decay`` not a finite number ``>= 0``; ``momentum``, ``label_smoothing``
            or ``warmup`` outside ``[0, 1)``; an unknown ``optimizer``, ``schedule``, ``arch``
            or ``flip``; ``augment``, ``amp``, ``lookahead`` or ``tta`` not a bool;
            ``width_factor`` not an integer ``>= 1``; ``translate`` neither None nor an integer in ``[0, 8]``; ``bias_lr_scale`` not a
            finite number ``> 0``; ``whiten_bias_epochs`` not an integer ``>= 0``;
            ``kernel_smoothing`` not a finite number ``>= 0``; ``whiten_eps`` not a finite
            number ``> 0``, or set (not 5e-4) for an arch other than airnet; ``stop_at_accuracy`` neither
            None nor in ``(0, 1]``, or set with ``val_size`` 0; ``stop_check_every`` neither
            None nor an integer ``>= 1``, or set without ``stop_at_accuracy``;
            ``objective`` not a non-empty name
            without surrounding spaces; ``objective_params`` not a dict of str keys and
            finite JSON values, or given with the ``"standard"`` objective.
    """
    check_choice(dataset, "dataset", DATASETS)
    config = {} if config is None else config
    if not isinstance(config, dict):
        raise TypeError(f"config must be a dict, got {type(config).__name__}")
    base = DEFAULT_CONFIG[dataset]
    unknown = sorted(set(config) - set(base) - set(OBJECTIVE_KEYS))
    if unknown:
        raise ValueError(f"unknown config key(s) {unknown}; known keys: {sorted(base) + list(OBJECTIVE_KEYS)}")
    objective = _check_objective(config)
    cfg = {**base, **{k: v for k, v in config.items() if k not in OBJECTIVE_KEYS}, **objective}
    for k in ("width", "epochs", "batch_size"):
        check_positive_int(cfg[k], f"config[{k!r}]")
    if cfg["n_train"] is not None:
        check_positive_int(cfg["n_train"], "config['n_train']")
    if isinstance(cfg["val_size"], bool) or not isinstance(cfg["val_size"], int) or cfg["val_size"] < 0:
        raise ValueError(f"config['val_size'] must be an integer >= 0, got {cfg['val_size']!r}")
    if isinstance(cfg["seed"], bool) or not isinstance(cfg["seed"], int):
        raise ValueError(f"config['seed'] must be an integer, got {cfg['seed']!r}")
    for k, lo, hi in (("lr", 0, math.inf), ("weight_decay", 0, math.inf), ("momentum", 0, 1),
                      ("label_smoothing", 0, 1), ("warmup", 0, 1)):
        v = cfg[k]
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not lo <= v < hi:
            raise ValueError(f"config[{k!r}] must be a number in [{lo}, {hi}), got {v!r}")
    if cfg["lr"] == 0:
        raise ValueError("config['lr'] must be > 0, got 0")
    check_choice(cfg["optimizer"], "config['optimizer']", _CHOICES["optimizer"])
    check_choice(cfg["schedule"], "config['schedule']", _CHOICES["schedule"])
    if cfg["arch"] not in _CHOICES["arch"]:
        raise ValueError(f"config['arch'] must be None, 'smallcnn', 'resnet' or 'airnet', got {cfg['arch']!r}")
    check_choice(cfg["flip"], "config['flip']", _CHOICES["flip"])
    for k in ("augment", "amp", "lookahead", "tta"):
        if not isinstance(cfg[k], bool):
            raise ValueError(f"config[{k!r}] must be True or False, got {cfg[k]!r}")
    t = cfg["translate"]
    if t is not None and (isinstance(t, bool) or not isinstance(t, int) or not 0 <= t <= _MAX_TRANSLATE):
        raise ValueError(f"config['translate'] must be None or an integer in [0, {_MAX_TRANSLATE}], got {t!r}")
    b = cfg["bias_lr_scale"]
    if isinstance(b, bool) or not isinstance(b, (int, float)) or not math.isfinite(b) or b <= 0:
        raise ValueError(f"config['bias_lr_scale'] must be a finite number > 0, got {b!r}")
    check_positive_int(cfg["width_factor"], "config['width_factor']")
    w = cfg["whiten_bias_epochs"]
    if isinstance(w, bool) or not isinstance(w, int) or w < 0:
        raise ValueError(f"config['whiten_bias_epochs'] must be an integer >= 0, got {w!r}")
    we = check_number(cfg["whiten_eps"], "config['whiten_eps']")
    if we != _OFF_BY_DEFAULT["whiten_eps"] and cfg["arch"] != "airnet":
        raise ValueError(f"config['whiten_eps'] is set ({we!r}) but config['arch'] is {cfg['arch']!r}: only an "
                         "airnet has a whitening layer")
    r = cfg["kernel_smoothing"]
    if isinstance(r, bool) or not isinstance(r, (int, float)) or not math.isfinite(r) or r < 0:
        raise ValueError(f"config['kernel_smoothing'] must be a finite number >= 0 (rho; 0 = off), got {r!r}")
    a = cfg["stop_at_accuracy"]
    if a is not None:
        if isinstance(a, bool) or not isinstance(a, (int, float)) or not 0 < a <= 1:
            raise ValueError(f"config['stop_at_accuracy'] must be None or a number in (0, 1], got {a!r}")
        if not cfg["val_size"]:
            raise ValueError("config['stop_at_accuracy'] needs a validation split: set config['val_size'] (training "
                             "images held out to decide when to stop; the test images are never used for it)")
    e = cfg["stop_check_every"]
    if e is not None:
        check_positive_int(e, "config['stop_check_every']")
        if a is None:
            raise ValueError("config['stop_check_every'] is set but config['stop_at_accuracy'] is None: the checks "
                             "only serve a stop; set the target or drop stop_check_every")
    return cfg


def _check_objective(config: dict) -> dict:
    """The objective keys of ``config``, checked; ``{}`` for standard training."""
    name = config.get("objective", "standard")
    params = config.get("objective_params", None)
    if not isinstance(name, str) or not name.strip() or name != name.strip():
        raise ValueError(f"config['objective'] must be a non-empty name like 'adversarial', got {name!r}")
    if params is None:
        params = {}
    if not isinstance(params, dict) or not all(isinstance(k, str) for k in params):
        raise ValueError(f"config['objective_params'] must be a dict with str keys, got {params!r}")
    try:
        json.dumps(params, sort_keys=True, allow_nan=False)
    except (TypeError, ValueError) as e:
        raise ValueError(f"config['objective_params'] must hold finite JSON values (numbers, strings, lists, "
                         f"dicts), so that the checkpoint key covers them: {e}") from e
    if name == "standard":
        if params:
            raise ValueError(f"config['objective_params'] given ({sorted(params)}) but config['objective'] is "
                             "'standard' (plain cross-entropy takes no parameters); name the objective")
        return {}
    return {"objective": name, "objective_params": dict(params)}


def checkpoint_key(dataset: str, config: dict | None = None) -> str:
    """The checkpoint key of ``(dataset, config)``: 16 hex digits of a SHA-256.

    The hash covers the data set, the full configuration (:func:`full_config`, defaults
    filled in, objective keys included) and :data:`TRAINING_CODE_VERSION`, serialised as
    canonical JSON; device, progress and threads are not part of it.  ``kernel_smoothing``,
    ``stop_at_accuracy``, ``stop_check_every`` and ``whiten_eps`` enter it only when they are
    not off (0, None, None, 5e-4), so configurations from before these keys keep their keys.

    Args:
        dataset: ``"mnist"`` or ``"cifar10"``.
        config: the configuration (``None``: the defaults).

    Returns:
        16 lowercase hex digits.

    Raises:
        TypeError, ValueError: as :func:`full_config`.
    """
    cfg = full_config(dataset, config)
    cfg = {k: v for k, v in cfg.items() if not (k in _OFF_BY_DEFAULT and v == _OFF_BY_DEFAULT[k])}
    blob = json.dumps({"dataset": dataset, "config": cfg, "version": TRAINING_CODE_VERSION},
                      sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def checkpoint_path(dataset: str, config: dict | None = None, cache_dir_=None) -> Path:
    """Where :func:`train_or_load` keeps the checkpoint of ``(dataset, config)``.

    Args:
        dataset: ``"mnist"`` or ``"cifar10"``.
        config: the configuration (``None``: the defaults).
        cache_dir_: the checkpoint folder (see :func:`cache_dir`).

    Returns:
        ``{cache_dir}/{dataset}-{checkpoint_key(dataset, config)}.pt`` (it need not exist).

    Raises:
        TypeError, ValueError: as :func:`full_config`.
    """
    return cache_dir(cache_dir_) / f"{dataset}-{checkpoint_key(dataset, config)}.pt"


def _make_model(dataset: str, cfg: dict) -> nn.Module:
    """The bare network of ``cfg`` (what is trained and what the checkpoint's state_dict holds)."""
    kw = {"width_factor": cfg["width_factor"], "whiten_eps": cfg["whiten_eps"]} if cfg["arch"] == "airnet" else {}
    return build_model(dataset, cfg["arch"], width=cfg["width"], **kw)


def _finalize(net: nn.Module, cfg: dict) -> nn.Module:
    """The model handed out: the bare network, or :class:`freqkit.models.MirrorAverage` of it with ``tta``."""
    return MirrorAverage(net) if cfg["tta"] else net


def first_conv(model: nn.Module) -> nn.Conv2d:
    """The first convolution of ``model``: the layer :func:`smooth_first_layer` and ``kernel_smoothing`` smooth.

    The first ``nn.Conv2d`` in registration order (``model.modules()``), which in freqkit's
    models is the first convolution the image meets: :class:`freqkit.models.SmallCNN` and
    :class:`freqkit.models.ResNetCIFAR`: ``features[0][0]``; :class:`freqkit.models.AirNet`:
    ``groups[0].conv1`` (its :class:`freqkit.models.PatchWhitening` is a frozen filter bank
    fitted to the data, not an ``nn.Conv2d``: smoothing it would undo the whitening, so the
    first *trained* convolution, which sees the whitened image at full resolution, is
    smoothed); :class:`freqkit.models.MirrorAverage`: that of the wrapped network.

    Args:
        model: an ``nn.Module``.

    Returns:
        The ``nn.Conv2d`` module itself (its ``weight`` is ``(C_out, C_in / groups, kH, kW)``).

    Raises:
        TypeError: ``model`` is not an ``nn.Module``.
        ValueError: ``model`` holds no ``nn.Conv2d``.

    Example:
        >>> import freqkit as fk
        >>> fk.training.first_conv(fk.build_model("mnist", width=4)).weight.shape
        torch.Size([4, 1, 3, 3])
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be an nn.Module, got {type(model).__name__}")
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            return m
    raise ValueError(f"model ({type(model).__name__}) holds no nn.Conv2d whose kernels could be smoothed")


def smooth_kernels(weight: torch.Tensor, rho: float, normalize: bool = True) -> torch.Tensor:
    """Wang et al. 2020's kernel smoothing (their Eq. 3): each weight plus ``rho`` times its 8 neighbours.

    Wang, Wu, Huang & Xing 2020, "High-frequency component helps explain the generalization
    of convolutional neural networks" (CVPR), section 6.3: ``w_ij <- w_ij + rho
    sum_{(h,k) in N(i,j)} w_hk`` over the 8 spatial neighbours of each kernel entry, values
    beyond the border duplicated from the border (replicate padding), per kernel slice
    ``(out, in)``.  With ``normalize`` (default) the result is divided by ``1 + 8 rho``, so a
    constant kernel is unchanged; that is what ``config["kernel_smoothing"]`` applies after
    every optimiser step (the paper's unnormalised update, applied thousands of times, would
    grow the kernels geometrically).  Replicate padding makes the update diagonal in the
    kernel's DCT-II basis: a 3x3 kernel's coefficient ``(u, v)`` is multiplied by
    ``((1 - rho) + 9 rho l_u l_v) / (1 + 8 rho)`` (normalised), ``l = (1, 2/3, 0)``.

    Args:
        weight: convolution kernels, a finite floating-point tensor ``(C_out, C_in, kH, kW)``.
        rho: the paper's hyperparameter, a finite number ``>= 0`` (theirs: 0.10 to 1.0; 0
            returns a copy).
        normalize: divide by ``1 + 8 rho`` (default True); False is the paper's Eq. 3 as
            printed.

    Returns:
        The smoothed kernels, a new tensor of ``weight``'s shape, dtype and device (no
        gradient history).

    Shape:
        - weight: ``(C_out, C_in, kH, kW)``
        - output: the same.

    Raises:
        TypeError: ``weight`` is not a floating-point tensor.
        ValueError: ``weight`` not 4-D or not finite; ``rho`` not a finite number ``>= 0``.

    Example:
        >>> import torch, freqkit as fk
        >>> w = torch.zeros(1, 1, 3, 3); w[..., 1, 1] = 1.0
        >>> fk.training.smooth_kernels(w, 1.0)[0, 0]   # a delta becomes a 3x3 box
        tensor([[0.1111, 0.1111, 0.1111],
                [0.1111, 0.1111, 0.1111],
                [0.1111, 0.1111, 0.1111]])
        >>> fk.training.smooth_kernels(torch.ones(2, 3, 3, 3), 0.5).unique().tolist()   # constants stay
        [1.0]
    """
    check_tensor(weight, "weight", ndim=4)
    if isinstance(rho, bool) or not isinstance(rho, (int, float)) or not math.isfinite(rho) or rho < 0:
        raise ValueError(f"rho must be a finite number >= 0, got {rho!r}")
    with torch.no_grad():
        o, i, kh, kw = weight.shape
        flat = weight.detach().reshape(o * i, 1, kh, kw)
        box = F.conv2d(F.pad(flat.float(), (1, 1, 1, 1), mode="replicate"),
                       torch.ones(1, 1, 3, 3, device=weight.device))   # the 3x3 sum, centre included
        out = flat.float() + rho * (box - flat.float())
        if normalize:
            out = out / (1.0 + 8.0 * rho)
        return out.reshape(weight.shape).to(weight.dtype)


def smooth_first_layer(model: nn.Module, rho: float, normalize: bool = False, inplace: bool = False) -> nn.Module:
    """A model whose first convolution's kernels are smoothed once: Wang et al. 2020's ``M(rho)``.

    Their section 6.3 applies Eq. 3 (:func:`smooth_kernels`, unnormalised) once to the first
    layer of a trained model (``M_natural(rho)``, ``M_adversarial(rho)``; rho 0.10, 0.25, 0.5,
    1.0) and reports lower clean accuracy and higher FGSM/PGD robustness.  The layer is
    :func:`first_conv`.  Unnormalised, the kernels grow by up to ``1 + 8 rho`` and a
    following BatchNorm's running statistics no longer match them: part of the accuracy
    drop they report may come from that scale; ``normalize=True`` separates it.

    Args:
        model: a trained ``nn.Module`` holding an ``nn.Conv2d``.
        rho: a finite number ``>= 0``.
        normalize: divide by ``1 + 8 rho`` (default False: the paper's update).
        inplace: change ``model`` itself (default False: a deep copy is changed).

    Returns:
        The smoothed model (``model`` itself with ``inplace``), in ``model``'s mode.

    Raises:
        TypeError: ``model`` is not an ``nn.Module``.
        ValueError: ``model`` holds no ``nn.Conv2d``; ``rho`` not a finite number ``>= 0``.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be an nn.Module, got {type(model).__name__}")
    first_conv(model)  # fail before copying
    out = model if inplace else copy.deepcopy(model)
    conv = first_conv(out)
    with torch.no_grad():
        conv.weight.copy_(smooth_kernels(conv.weight, rho, normalize))
    return out


def load_checkpoint(path, dataset: str | None = None, config: dict | None = None) -> tuple[nn.Module, dict]:
    """Read a checkpoint written by :func:`train_or_load`.

    Loads the file with ``torch.load(weights_only=True)`` (tensors and plain containers only:
    a planted pickle runs no code), checks its format and fields, and, where given, that it
    was trained on ``dataset`` with ``config`` (compared after :func:`full_config` fills in
    defaults); then recomputes the SHA-256 of its weights and compares it with the stored
    checksum, builds the model and loads the weights.  The stored training-code version is
    not compared with :data:`TRAINING_CODE_VERSION` (:func:`train_or_load` never reads a
    stale file: the version is part of the key).  The accuracy stored with the checkpoint is
    compared by :func:`train_or_load`, which measures it.

    Args:
        path: the checkpoint file.
        dataset: the expected data set, or ``None`` to accept any.
        config: the expected configuration, or ``None`` to accept any.

    Returns:
        ``(model, payload)``: the model on the CPU in eval mode (wrapped in
        :class:`freqkit.models.MirrorAverage` when its config has ``tta``; the stored
        state_dict is the bare network's), and the stored dict
        (``format``, ``version``, ``dataset``, ``config``, ``key``, ``state_dict``,
        ``metrics``, ``checksum``).

    Raises:
        FileNotFoundError: ``path`` does not exist.
        CorruptCheckpoint: the file cannot be read, is no freqkit checkpoint, lacks a
            field, does not match ``dataset``/``config``, has no checksum (written by freqkit
            before checkpoints carried one), its weights do not match their checksum
            (damaged), or they do not fit the model (the message names the file and says to
            delete it).
    """
    path = Path(path)

    def bad(why: str, cause: Exception | None = None):
        err = _corrupt(path, why)
        if cause is not None:
            raise err from cause
        raise err

    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise
    except Exception as e:  # pickle errors, truncated zip, wrong magic number...
        bad(f"it could not be read ({type(e).__name__}: {e})", e)
    if not isinstance(payload, dict) or payload.get("format") != "freqkit-checkpoint":
        bad("it is not a freqkit checkpoint")
    for k in ("dataset", "config", "state_dict", "metrics", "version"):
        if k not in payload:
            bad(f"field {k!r} is missing")
    if dataset is not None and payload["dataset"] != dataset:
        bad(f"it was trained on {payload['dataset']!r}, not {dataset!r}")
    if config is not None:
        try:
            same = full_config(payload["dataset"], payload["config"]) == full_config(payload["dataset"], config)
        except (ValueError, TypeError):
            same = False
        if not same:
            bad("its configuration differs from the one asked for")
    stored = payload.get("checksum")
    if not isinstance(stored, dict) or stored.get("algorithm") != _CHECKSUM_ALGORITHM \
            or not isinstance(stored.get("value"), str):
        bad(f"it has no checksum of its weights (written by training code version {payload['version']!r}, "
            f"before checkpoints carried one), so damage could not be detected")
    if not isinstance(payload["state_dict"], dict):
        bad(f"its state_dict is a {type(payload['state_dict']).__name__}, not a dict")
    try:
        actual = _state_dict_checksum(payload["state_dict"])
    except (TypeError, RuntimeError) as e:
        bad(f"its weights cannot be checksummed ({e})", e)
    if actual != stored["value"]:
        bad(f"its weights do not match the checksum stored with them (SHA-256 {actual[:12]}..., stored "
            f"{stored['value'][:12]}...): the file was damaged after it was written")
    try:
        cfg = full_config(payload["dataset"], payload["config"])
        model = _make_model(payload["dataset"], cfg)
        model.load_state_dict(payload["state_dict"])
    except Exception as e:
        bad(f"its weights do not fit the model ({type(e).__name__}: {e})", e)
    return _finalize(model, cfg).eval(), payload


def _augment(x: torch.Tensor, dataset: str, gen: torch.Generator, translate: int | None = None,
             flip: torch.Tensor | None = None) -> torch.Tensor:
    """Random translation (a crop of a padded copy) and horizontal flip (CIFAR-10), or shift (MNIST).

    ``translate`` pixels of padding on each side (None: 4 with reflection for CIFAR-10, 2
    with zeros for MNIST; 0: no translation), then a random crop of the original size per
    image.  CIFAR-10 images are also mirrored: each with probability 1/2 (``flip=None``), or
    exactly those where the boolean ``flip`` ``(N,)`` is True (alternating flip).  MNIST is
    never mirrored.  Runs on the batch's device.
    """
    n, c, h, w = x.shape
    cifar = dataset == "cifar10"
    pad = (4 if cifar else 2) if translate is None else translate
    out = x
    if pad:
        # Draw both shifts first (as before version 3: the same draws give the same crops).
        dy = torch.randint(0, 2 * pad + 1, (n,), device=x.device, generator=gen)
        dx = torch.randint(0, 2 * pad + 1, (n,), device=x.device, generator=gen)
        xp = F.pad(x, (pad, pad, pad, pad), mode="reflect" if cifar else "constant")
        # Sort the images by shift, then one strided slice copy per shift: much faster on a
        # CPU than a gather over every pixel (27 ms -> a few ms for 256 CIFAR-10 images).
        side = 2 * pad + 1
        code = dy * side + dx
        order = torch.argsort(code)
        counts = torch.bincount(code, minlength=side * side).tolist()
        src = xp[order]
        out = torch.empty_like(x)
        start = 0
        for k, cnt in enumerate(counts):
            if cnt:
                sy, sx = divmod(k, side)
                out[start:start + cnt] = src[start:start + cnt, :, sy:sy + h, sx:sx + w]
                start += cnt
        out = out[torch.argsort(order)]
    if cifar:
        if flip is None:
            flip = torch.rand(n, device=x.device, generator=gen) < 0.5
        out = torch.where(flip.to(x.device)[:, None, None, None], out.flip(3), out)
    return out


def _lookahead_update(ema: dict, model: nn.Module, decay: float) -> None:
    """One lookahead step (airbench): ``ema <- decay * ema + (1 - decay) * weights``; then ``weights <- ema``.

    ``ema`` maps state_dict names to float tensors (parameters and float buffers such as
    BatchNorm's running statistics); both are changed in place.
    """
    sd = model.state_dict()
    with torch.no_grad():
        for k, e in ema.items():
            e.lerp_(sd[k], 1.0 - decay)
            sd[k].copy_(e)


def _lookahead_decay(step: int, total: int) -> float:
    """airbench's lookahead decay: ``0.95**5 * (step / total)**3`` (0 at the start: no averaging yet)."""
    return 0.95 ** 5 * (step / total) ** 3


def _lookahead_every(batch_size: int, total: int) -> int:
    """Steps between lookahead updates: every 5,120 images (airbench: 5 steps of 1,024), and at least 20 per run.

    (A short run would otherwise reach its end with an average that never saw its weights.)
    """
    return max(1, min(round(5120 / batch_size), total // 20))


def _lr_factor(step: int, total: int, cfg: dict) -> float:
    if cfg["schedule"] == "constant":
        return 1.0
    warm = int(cfg["warmup"] * total)
    if step < warm:
        return 0.1 + 0.9 * step / warm
    t = (step - warm) / max(1, total - warm)
    return 1.0 - t if cfg["schedule"] == "onecycle" else 0.5 * (1 + math.cos(math.pi * t))


def _param_groups(model: nn.Module, cfg: dict) -> list[dict]:
    """Optimiser groups: trainable parameters; BatchNorm biases apart when ``bias_lr_scale != 1``.

    The BatchNorm biases get ``lr * bias_lr_scale`` and ``weight_decay / bias_lr_scale``, so
    that their decay per step (lr x weight_decay) is that of the other parameters (airbench).
    """
    trainable = [p for p in model.parameters() if p.requires_grad]
    if cfg["bias_lr_scale"] == 1:
        return [{"params": trainable}]
    bn_bias = {id(m.bias) for m in model.modules()
               if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.bias is not None and m.bias.requires_grad}
    scale = cfg["bias_lr_scale"]
    groups = [{"params": [p for p in trainable if id(p) not in bn_bias]},
              {"params": [p for p in trainable if id(p) in bn_bias], "lr": cfg["lr"] * scale,
               "weight_decay": cfg["weight_decay"] / scale}]
    return [g for g in groups if g["params"]]


# Training images the whitening layer of an AirNet is fitted to (airbench: 5,000).
_WHITEN_IMAGES = 5000


def _train(model: nn.Module, dataset: str, cfg: dict, data_root, dev: torch.device, progress: bool,
           loss_fn=None) -> dict:
    xs, ys = load_dataset(dataset, "train", cfg["n_train"], cfg["seed"], data_root, val_size=cfg["val_size"] or None,
                          dtype=torch.uint8)
    xs, ys = xs.to(dev), ys.to(dev)
    n = xs.shape[0]
    bs = min(cfg["batch_size"], n)
    steps_per_epoch = n // bs  # drop the ragged last batch: BN statistics of tiny batches hurt
    total = steps_per_epoch * cfg["epochs"]
    groups = _param_groups(model, cfg)
    if cfg["optimizer"] == "sgd":
        opt = torch.optim.SGD(groups, lr=cfg["lr"], momentum=cfg["momentum"], nesterov=cfg["momentum"] > 0,
                              weight_decay=cfg["weight_decay"])
    else:
        opt = torch.optim.AdamW(groups, lr=cfg["lr"], betas=(cfg["momentum"], 0.999),
                                weight_decay=cfg["weight_decay"])
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: _lr_factor(s, total, cfg))
    amp = cfg["amp"] and native_bf16(dev)
    gen = torch.Generator(device=dev).manual_seed(cfg["seed"])
    gen_cpu = torch.Generator().manual_seed(cfg["seed"])
    whiteners = [m for m in model.modules() if isinstance(m, PatchWhitening)]
    smoothed = first_conv(model) if cfg["kernel_smoothing"] > 0 else None
    target = cfg["stop_at_accuracy"]
    if target is not None:
        xv, yv = load_dataset(dataset, "val", root=data_root, val_size=cfg["val_size"])
        xv, yv = xv.to(dev), yv.to(dev)
        stop = {"target": target, "reached": False, "step": None, "steps_planned": total, "epoch": None,
                "images_seen": None, "val_accuracy": None, "n_val": int(xv.shape[0]), "check_seconds": 0.0,
                "checks": []}
    stopped = False
    history = []
    desc = f"train {dataset}" + (f" ({cfg['objective']})" if loss_fn is not None else "")
    bar = progress_bar(total=total, enabled=progress, desc=desc, unit="step")
    tracked = 0  # images whose training prediction was seen (a loss_fn may return no logits)
    model.train()
    t0 = time.perf_counter()
    try:
        if hasattr(model, "fit_whitening"):  # part of training: fitted to the training images, timed
            model.fit_whitening(xs[:_WHITEN_IMAGES].float().div_(255.0))
        if smoothed is not None:  # start inside the set of smoothed kernels, as every later step ends
            _smooth_in_place(smoothed, cfg["kernel_smoothing"])
        ema = ({k: v.detach().clone() for k, v in model.state_dict().items() if v.is_floating_point()}
               if cfg["lookahead"] else None)
        every = _lookahead_every(bs, total)
        # Alternating flip (airbench): a fixed random half of the images is mirrored in even
        # epochs, the other half in odd epochs, so every image is seen both ways in two epochs.
        alt = cfg["augment"] and cfg["flip"] == "alternating" and dataset == "cifar10"
        flip_base = torch.rand(n, device=dev, generator=gen) < 0.5 if alt else None
        for epoch in range(cfg["epochs"]):
            for m in whiteners:
                m.bias.requires_grad_(epoch < cfg["whiten_bias_epochs"])
            perm = torch.randperm(n, generator=gen_cpu).to(dev)
            loss_sum = torch.zeros((), device=dev)
            correct = torch.zeros((), device=dev)
            for i in range(steps_per_epoch):
                idx = perm[i * bs:(i + 1) * bs]
                xb = xs[idx].float().div_(255.0)
                yb = ys[idx]
                if cfg["augment"]:
                    flip = flip_base[idx] ^ bool(epoch % 2) if alt else None
                    xb = _augment(xb, dataset, gen, cfg["translate"], flip)
                xb = xb.contiguous(memory_format=torch.channels_last)
                step = epoch * steps_per_epoch + i
                with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=amp):
                    if loss_fn is None:
                        logits = model(xb)
                        loss = F.cross_entropy(logits.float(), yb, label_smoothing=cfg["label_smoothing"])
                    else:
                        loss, logits = _custom_loss(loss_fn, model, xb, yb, cfg, {
                            "step": step, "total": total, "epoch": epoch, "dataset": dataset, "amp": amp,
                            "lr": sched.get_last_lr()[0], "generator": gen})
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                if smoothed is not None:  # before the lookahead, so that its average is of smoothed kernels
                    _smooth_in_place(smoothed, cfg["kernel_smoothing"])
                sched.step()
                if ema is not None and (step + 1) % every == 0:
                    _lookahead_update(ema, model, _lookahead_decay(step + 1, total))
                loss_sum += loss.detach()
                if logits is not None:
                    correct += (logits.detach().argmax(1) == yb).sum()
                    tracked += yb.shape[0]
                bar.update(1)
                if i % 50 == 0 and not math.isfinite(float(loss.detach())):
                    raise FloatingPointError(f"training diverged (loss {float(loss)}) at epoch {epoch}, step {i}; "
                                             f"lower config['lr'] (now {cfg['lr']})")
                check_every = cfg["stop_check_every"]
                if target is not None and (step + 1 == total or ((step + 1) % check_every == 0 if check_every
                                                                 else i == steps_per_epoch - 1)):
                    stopped = _check_stop(stop, model, cfg, xv, yv, step + 1, epoch + (i + 1) / steps_per_epoch, bs)
                    if stopped:
                        break
            ep = {"epoch": epoch + 1, "train_loss": float(loss_sum) / (i + 1),
                  "train_accuracy": float(correct) / tracked if tracked else None,
                  "seconds": time.perf_counter() - t0}
            if stopped:
                ep["stopped_after_steps"] = i + 1  # a partial epoch: its means are over these steps
            tracked = 0
            history.append(ep)
            bar.set_postfix(loss=f"{ep['train_loss']:.3f}",
                            acc="-" if ep["train_accuracy"] is None else f"{ep['train_accuracy']:.3f}")
            if stopped:
                break
        # After a stop the weights are the ones whose validation accuracy was measured: no
        # final average (it would hand out another model than the one that met the target).
        if ema is not None and total % every and not stopped:
            # The last steps since the last update enter the average too (airbench copies the
            # average of its last update back, dropping them; with few steps that is all of them).
            _lookahead_update(ema, model, _lookahead_decay(total, total))
    finally:
        bar.close()
        for m in whiteners:
            m.bias.requires_grad_(True)
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)
    out = {"train_seconds": time.perf_counter() - t0, "n_train": n,
           "steps": stop["step"] if stopped else total, "amp": amp, "history": history}
    if target is not None:
        if not stopped:
            warnings.warn(f"config['stop_at_accuracy']={target} was never reached: the validation accuracy peaked at "
                          f"{max(c['val_accuracy'] for c in stop['checks']):.2%} over {len(stop['checks'])} checks; "
                          "the full schedule was trained (info['stop']['reached'] is False)", stacklevel=3)
        out["stop"] = stop
    return out


def _smooth_in_place(conv: nn.Conv2d, rho: float) -> None:
    with torch.no_grad():
        conv.weight.copy_(smooth_kernels(conv.weight, rho))


def _check_stop(stop: dict, model: nn.Module, cfg: dict, xv, yv, step: int, epoch: float, bs: int) -> bool:
    """One validation check of ``stop_at_accuracy``: record it in ``stop``; True when the target is reached."""
    t = time.perf_counter()
    acc = evaluate(_finalize(model, cfg), xv, yv)  # eval mode inside, the training mode restored
    stop["check_seconds"] += time.perf_counter() - t
    stop["checks"].append({"step": step, "epoch": epoch, "val_accuracy": acc})
    if acc < stop["target"]:
        return False
    stop.update(reached=True, step=step, epoch=epoch, images_seen=step * bs, val_accuracy=acc)
    return True


def _custom_loss(loss_fn, model, xb, yb, cfg, step_info):
    """Call a custom objective; accept ``loss`` or ``(loss, logits)``; check what came back."""
    out = loss_fn(model, xb, yb, cfg, step_info)
    logits = None
    if isinstance(out, (tuple, list)):
        if len(out) != 2:
            raise ValueError(f"loss_fn must return loss or (loss, logits), got a {type(out).__name__} of {len(out)}")
        out, logits = out
        if logits is not None and (not isinstance(logits, torch.Tensor) or logits.dim() != 2
                                   or logits.shape[0] != yb.shape[0]):
            raise ValueError(f"loss_fn's logits must be a ({yb.shape[0]}, n_classes) tensor, got "
                             f"{tuple(logits.shape) if isinstance(logits, torch.Tensor) else type(logits).__name__}")
    if not isinstance(out, torch.Tensor) or out.numel() != 1 or not out.requires_grad:
        raise ValueError(f"loss_fn must return a scalar tensor attached to the model's graph (requires_grad), got "
                         f"{tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__}"
                         + ("" if not isinstance(out, torch.Tensor) or out.requires_grad else " without grad"))
    return out.float().reshape(()), logits


def train_or_load(dataset: str, config: dict | None = None, data_root=None, cache_dir=None, device="auto",
                  progress: bool = True, loss_fn=None) -> tuple[nn.Module, dict]:
    """Return a trained model for ``dataset`` ("mnist" or "cifar10") and its record.

    Loads ``{cache_dir}/{dataset}-{key}.pt`` when it exists (key: see :func:`checkpoint_key`),
    verifying the checksum of its weights (:func:`load_checkpoint`) and, when the test split
    found now has as many images as the one it was scored on at training, that its test
    accuracy is still the stored one (within 1 percentage point).  Otherwise trains with
    ``config`` (missing keys take ``DEFAULT_CONFIG[dataset]``, see the module docstring;
    ``PRESETS[dataset][profile]`` are ready-made configs) on the training split from
    ``data_root`` and writes the checkpoint atomically, with the checksum of its weights and
    the accuracy measured.  The cache folder is probed before training: if it cannot be
    written, the model is trained anyway and not cached (with a warning); if the write fails
    after training (e.g. no space left), a warning names the path and the trained model is
    still returned.  Training runs inside a forked RNG seeded by ``config["seed"]``, so the
    caller's random state is left alone.  The test (and validation, if ``val_size``)
    accuracy is computed on the data found now, so a model trained elsewhere is scored on
    this machine's test split.  Processes that ask for the same missing checkpoint at once
    train it once: the first holds a lock (``.<checkpoint name>.lock`` beside it, see
    :func:`freqkit._io.lock_file`) while it trains, the others wait and then load it.

    Args:
        dataset: ``"mnist"`` or ``"cifar10"``.
        config: configuration keys to change from ``DEFAULT_CONFIG[dataset]`` (``None``:
            none); see the module docstring.
        data_root: data root (see :func:`freqkit.data.load_dataset`).
        cache_dir: checkpoint folder (see :func:`cache_dir`).
        device: where to train and return the model (see
            :func:`freqkit.models.resolve_device`; ``"auto"``: CUDA if available).
        progress: show a progress bar while training (only in a terminal).
        loss_fn: a custom objective ``loss_fn(model, xb, yb, cfg, step_info) -> loss`` (or
            ``(loss, logits)``), see the module docstring; it requires ``config["objective"]``
            (and ``config["objective_params"]``), which enter the checkpoint key.

    Returns:
        ``(model, info)``: the model (eval mode, on ``device``; takes ``[0, 1]`` images; with
        ``config["tta"]`` a :class:`freqkit.models.MirrorAverage` of the trained network, and
        every accuracy is that of this averaged model) and
        a dict with ``test_accuracy``, ``n_test``, ``val_accuracy`` and ``n_val`` (None
        without a validation split), ``train_seconds`` (of the original training run),
        ``n_train``, ``config`` (full), ``key``, ``checkpoint`` (path str), ``cached``
        (bool), ``device`` (str), ``amp`` (whether bf16 was used in training), ``history``
        (per epoch: epoch, train_loss, train_accuracy, seconds since the start; a last,
        partial epoch after a stop also has ``stopped_after_steps``),
        ``trained_on`` (the device of the original training run), ``saved`` (bool: the
        checkpoint is on disk; False when the cache folder could not be written) and
        ``stop`` (None without ``stop_at_accuracy``; else where training stopped, see the
        module docstring).

    Raises:
        TypeError: ``config`` not a dict, or ``loss_fn`` not callable.
        ValueError: an invalid ``dataset``, ``config`` (see :func:`full_config`) or
            ``device``; a ``loss_fn`` without ``config["objective"]`` or the reverse; a
            ``loss_fn`` result that is not a scalar loss attached to the graph (or
            ``(loss, logits)`` with logits ``(B, n_classes)``).
        CorruptCheckpoint: the cached file exists but is unreadable, damaged (its weights
            do not match their checksum, or its test accuracy moved by more than 1
            percentage point on a test split of the same size), or does not match (the
            message names the file: delete it).
        FileNotFoundError: the data are missing (see :func:`freqkit.data.load_dataset`).
        FloatingPointError: training diverged (a non-finite loss, checked every 50 steps).

    Warns:
        UserWarning: the cache folder is not writable (named; the model will not be cached),
            or writing the checkpoint failed after training (the path and the error);
            ``stop_at_accuracy`` was never reached (the full schedule was trained).
    """
    cfg = full_config(dataset, config)
    if loss_fn is not None and not callable(loss_fn):
        raise TypeError(f"loss_fn must be callable (model, xb, yb, cfg, step_info) -> loss, got "
                        f"{type(loss_fn).__name__}")
    if loss_fn is not None and "objective" not in cfg:
        raise ValueError("loss_fn given but config has no 'objective' name: set config['objective'] (and "
                         "config['objective_params']) so that the checkpoint of this objective never shares a "
                         "cache key with plain cross-entropy training or another objective")
    if loss_fn is None and "objective" in cfg:
        raise ValueError(f"config['objective'] is {cfg['objective']!r} but no loss_fn was given: pass the loss_fn "
                         "that implements it (e.g. from freqkit.defense), or drop the objective keys for "
                         "standard training")
    dev = resolve_device(device)
    path = checkpoint_path(dataset, cfg, cache_dir)
    lock = _claim_training(path, progress)
    try:
        return _train_or_load(dataset, cfg, path, data_root, dev, progress, loss_fn)
    finally:
        if lock is not None:
            # Removed while held: a process waiting on it then finds the checkpoint, and a
            # later one never needs the lock; the file name of a crashed holder is reused.
            try:
                os.unlink(lock.name)
            except OSError:
                pass
            lock.close()


def _lock_path(path: Path) -> Path:
    """The lock file that guards the training of checkpoint ``path``."""
    return path.with_name(f".{path.name}.lock")


def _claim_training(path: Path, progress: bool):
    """Lock the training of checkpoint ``path`` against other processes, or None (nothing to lock).

    Two processes asking for the same missing checkpoint (two book runners side by side,
    say) would train the same model twice; with the lock the second waits, then loads the
    first one's checkpoint.  None when the checkpoint exists, the folder cannot be written
    (training then goes on uncached, see :func:`train_or_load`) or the lock cannot be taken.
    """
    if path.exists() or probe_writable(path.parent) is not None:
        return None
    lock_path = _lock_path(path)
    try:
        return lock_file(lock_path, blocking=False)
    except BlockingIOError:
        pass
    except OSError:
        return None
    if progress and hasattr(sys.stderr, "isatty") and sys.stderr.isatty():
        print(f"freqkit: another process is training {path.name}; waiting for its checkpoint", file=sys.stderr,
              flush=True)
    try:
        return lock_file(lock_path)
    except OSError:
        return None


def _train_or_load(dataset: str, cfg: dict, path: Path, data_root, dev, progress: bool, loss_fn):
    """The body of :func:`train_or_load` once the checkpoint's lock is held (see there)."""
    saved = True
    if path.exists():
        model, payload = load_checkpoint(path, dataset, cfg)
        stats = payload["metrics"]
        cached = True
    else:
        problem = probe_writable(path.parent)
        if problem is not None:
            saved = False
            warnings.warn(f"checkpoint folder {path.parent} is not writable ({type(problem).__name__}: {problem}); "
                          f"training anyway, but the model will not be cached (it is trained again next time). "
                          f"Point cache_dir or FREQKIT_CACHE at a writable folder to keep it.", stacklevel=3)
        # Seed inside a forked RNG so that training leaves the caller's random state alone.
        with torch.random.fork_rng(devices=[dev] if dev.type == "cuda" else []):
            torch.manual_seed(cfg["seed"])
            net = _make_model(dataset, cfg).to(dev).to(memory_format=torch.channels_last)
            stats = _train(net, dataset, cfg, data_root, dev, progress, loss_fn)
        # channels_last only speeds up training; hand back the same layout a loaded model has.
        net = net.to(memory_format=torch.contiguous_format)
        model = _finalize(net, cfg)
        cached = False
    model = model.to(dev).eval()
    xt, yt = load_dataset(dataset, "test", root=data_root)
    test_acc = evaluate(model, xt, yt)
    val_acc, n_val = None, None
    if cfg["val_size"]:
        xv, yv = load_dataset(dataset, "val", root=data_root, val_size=cfg["val_size"])
        val_acc, n_val = evaluate(model, xv, yv), int(xv.shape[0])
    if cached:
        then, n_then = stats.get("test_accuracy_at_training"), stats.get("n_test_at_training")
        if isinstance(then, (int, float)) and n_then == int(xt.shape[0]) \
                and abs(test_acc - then) > _ACCURACY_TOLERANCE:
            raise _corrupt(path, f"the model scores {test_acc:.2%} on the {n_then} test images found now, but "
                                 f"{then:.2%} on {n_then} test images at training (more than "
                                 f"{100 * _ACCURACY_TOLERANCE:g} percentage point apart): its weights or the "
                                 f"model code changed since")
    elif saved:
        stats = {**stats, "test_accuracy_at_training": test_acc, "n_test_at_training": int(xt.shape[0]),
                 "val_accuracy_at_training": val_acc, "device": str(dev), "torch": str(torch.__version__)}
        sd = {k: v.detach().cpu().contiguous() for k, v in net.state_dict().items()}
        try:
            atomic_save_torch({"format": "freqkit-checkpoint", "version": TRAINING_CODE_VERSION, "dataset": dataset,
                               "config": cfg, "key": path.stem.split("-", 1)[1], "state_dict": sd, "metrics": stats,
                               "checksum": {"algorithm": _CHECKSUM_ALGORITHM, "value": _state_dict_checksum(sd)}},
                              path)
        except OSError as e:
            saved = False
            warnings.warn(f"the checkpoint {path} could not be written ({type(e).__name__}: {e}); the trained model "
                          f"is returned for this run but not cached (it is trained again next time). Free space "
                          f"there, or point cache_dir or FREQKIT_CACHE at a writable folder.", stacklevel=3)
    else:
        stats = {**stats, "device": str(dev)}
    info = {"test_accuracy": test_acc, "n_test": int(xt.shape[0]), "val_accuracy": val_acc, "n_val": n_val,
            "train_seconds": stats["train_seconds"], "n_train": stats["n_train"], "config": cfg,
            "key": path.stem.split("-", 1)[1], "checkpoint": str(path), "cached": cached, "device": str(dev),
            "amp": stats["amp"], "history": stats["history"], "trained_on": stats.get("device"),
            "saved": saved, "stop": stats.get("stop")}
    return model, info


# ----------------------------------------------------------------------------- in-memory tensors

def train_on_tensors(model: nn.Module, x: torch.Tensor, y: torch.Tensor, epochs: int = 10, batch_size: int = 128,
                     lr: float = 3e-3, weight_decay: float = 1e-4, seed: int = 0, device="cpu",
                     progress: bool = False) -> dict:
    """Train ``model`` in place on in-memory images and labels.

    AdamW with a cosine learning-rate decay to zero over all steps, cross-entropy,
    shuffled mini-batches (the last one of an epoch may be smaller).  The shuffling draws
    from a private generator seeded by ``seed``; random layers of the model (dropout) still
    draw from the global RNG, and the initialisation is the caller's.  The model is moved to
    ``device`` and ends there in eval mode (also after an error).

    Args:
        model: the ``nn.Module`` to train (modified in place).
        x: images, a finite floating-point tensor with at least one image (moved to
            ``device`` whole).
        y: one class index per image (any dtype; converted to int64).
        epochs: passes over the data, an integer ``>= 1``.
        batch_size: images per step, an integer ``>= 1`` (capped at N).
        lr: peak learning rate, a finite number ``> 0``.
        weight_decay: AdamW's decoupled weight decay, a finite number ``>= 0``.
        seed: seeds the shuffling.
        device: where to train (see :func:`freqkit.models.resolve_device`); the CPU by
            default.
        progress: show a progress bar (only in a terminal).

    Returns:
        ``{"train_seconds", "n_train", "steps", "history"}``; ``history`` holds one
        ``{"epoch", "train_loss", "train_accuracy"}`` per epoch (means over the images, as
        seen during the epoch).

    Shape:
        - x: ``(N, C, H, W)``
        - y: ``(N,)``

    Raises:
        TypeError: ``model`` not an ``nn.Module``; ``x`` or ``y`` not a tensor, or ``x`` not
            floating-point.
        ValueError: ``x`` not 4-D, not finite or empty; ``y`` not 1-D or of another length;
            ``epochs`` or ``batch_size`` not an integer ``>= 1``; ``lr`` or ``weight_decay``
            out of range; an invalid ``device``.
        FloatingPointError: the loss became non-finite (checked after each epoch).
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be an nn.Module, got {type(model).__name__}")
    check_images(x, "x")
    check_tensor(y, "y", ndim=1, floating=False)
    if y.shape[0] != x.shape[0]:
        raise ValueError(f"y must have one label per image ({x.shape[0]}), got {y.shape[0]}")
    if x.shape[0] == 0:
        raise ValueError("x holds no images")
    check_positive_int(epochs, "epochs")
    check_positive_int(batch_size, "batch_size")
    for v, nm in ((lr, "lr"), (weight_decay, "weight_decay")):
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v < 0 \
                or (nm == "lr" and v == 0):
            raise ValueError(f"{nm} must be a finite number {'>' if nm == 'lr' else '>='} 0, got {v!r}")
    dev = resolve_device(device)
    model.to(dev)
    xs, ys = x.to(dev), y.to(dev).long()
    n = xs.shape[0]
    bs = min(batch_size, n)
    steps_per_epoch = math.ceil(n / bs)
    total = steps_per_epoch * epochs
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 0.5 * (1 + math.cos(math.pi * s / total)))
    gen = torch.Generator().manual_seed(int(seed))
    history = []
    bar = progress_bar(total=total, enabled=progress, desc="train", unit="step")
    t0 = time.perf_counter()
    model.train()
    try:
        for epoch in range(epochs):
            perm = torch.randperm(n, generator=gen).to(dev)
            loss_sum, correct = 0.0, 0
            for i in range(steps_per_epoch):
                idx = perm[i * bs:(i + 1) * bs]
                logits = model(xs[idx])
                loss = F.cross_entropy(logits, ys[idx])
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                sched.step()
                loss_sum += float(loss.detach()) * idx.numel()
                correct += int((logits.argmax(1) == ys[idx]).sum())
                bar.update(1)
            if not math.isfinite(loss_sum):
                raise FloatingPointError(f"training diverged at epoch {epoch}: lower lr (now {lr})")
            history.append({"epoch": epoch + 1, "train_loss": loss_sum / n, "train_accuracy": correct / n})
    finally:
        bar.close()
        model.eval()
    return {"train_seconds": time.perf_counter() - t0, "n_train": n, "steps": total, "history": history}


# ----------------------------------------------------------------------------- suites of seeds

def check_seeds(seeds) -> list:
    """``seeds`` as a list, checked: a non-empty sequence of distinct integers.

    Args:
        seeds: training seeds, e.g. ``(0, 1, 2)``.

    Returns:
        A new list of the seeds, in their order.

    Raises:
        TypeError: ``seeds`` not a sequence (a str, a dict or a set count as none).
        ValueError: ``seeds`` empty, with a non-integer (or bool) or a repeated seed.
    """
    if isinstance(seeds, (str, bytes, dict, set, frozenset)) or not hasattr(seeds, "__len__") \
            or not hasattr(seeds, "__getitem__"):
        raise TypeError(f"seeds must be a sequence of integers, e.g. (0, 1, 2), got {type(seeds).__name__}")
    seeds = list(seeds)
    if not seeds:
        raise ValueError("seeds must hold at least one seed")
    for sd in seeds:
        if isinstance(sd, bool) or not isinstance(sd, int):
            raise ValueError(f"every seed must be an integer, got {sd!r}")
    if len(set(seeds)) != len(seeds):
        raise ValueError(f"seeds must be distinct (a repeated seed is the same cached model), got {seeds}")
    return seeds


def train_seeds(dataset: str, config: dict | None = None, seeds=(0, 1, 2), **kw) -> list[tuple[nn.Module, dict]]:
    """Train (or load) one model per seed of one configuration: a suite for evidence across training runs.

    Each seed replaces ``config["seed"]`` (which seeds the initialisation, the training
    subset, the shuffling and the augmentation), so each seed is its own checkpoint, cached
    and loaded independently by :func:`train_or_load`: asking again for ``(0, 1, 2, 3)``
    after ``(0, 1, 2)`` trains only seed 3.  The seeds run one after another, in the order
    given, except that a seed another process is training at that moment (a book chapter
    run side by side, say) is left for last: this process trains the others meanwhile, then
    waits for that one's checkpoint.

    Args:
        dataset: ``"mnist"`` or ``"cifar10"``.
        config: the configuration (``None``: the defaults); its ``seed`` is ignored.
        seeds: a non-empty sequence of distinct integers.
        **kw: passed to :func:`train_or_load` (``data_root``, ``cache_dir``, ``device``,
            ``progress``, ``loss_fn``).

    Returns:
        A list of ``(model, info)``, one per seed in the order of ``seeds``, each as
        :func:`train_or_load` returns it (``info["config"]["seed"]`` is the seed).

    Raises:
        TypeError: ``seeds`` not a sequence (a str, a dict or a set count as none), or
            ``config`` not a dict.
        ValueError: ``seeds`` empty, with a non-integer or a repeated seed; and whatever
            :func:`train_or_load` raises.

    Example:
        >>> import freqkit as fk
        >>> [fk.training.checkpoint_key("mnist", {"seed": s}) != fk.training.checkpoint_key("mnist", {})
        ...  for s in (0, 1)]
        [False, True]
    """
    seeds = check_seeds(seeds)
    if config is not None and not isinstance(config, dict):
        raise TypeError(f"config must be a dict, got {type(config).__name__}")
    base = dict(config or {})
    loss_fn = kw.pop("loss_fn", None)
    return train_many([(dataset, {**base, "seed": sd}, loss_fn) for sd in seeds], **kw)


def train_many(jobs: list, **kw) -> list:
    """:func:`train_or_load` for every ``(dataset, config, loss_fn)`` of ``jobs``; the results in the order of ``jobs``.

    The order of work is not that of ``jobs``: each time, the first job whose checkpoint no
    other process is training right now (:func:`freqkit._io.lock_held` on its lock) goes
    next, and only when every job left is being trained elsewhere does this process wait
    for the first of them.  Two book chapters run side by side that ask for the same suite
    thus split its seeds between them instead of one waiting idle while the other trains
    them all.  A bad configuration raises before anything trains.

    Args:
        jobs: a list of ``(dataset, config, loss_fn)``: the arguments of one
            :func:`train_or_load` each (``loss_fn`` None: standard training).
        **kw: passed to every :func:`train_or_load` (``data_root``, ``cache_dir``, ``device``,
            ``progress``).

    Returns:
        A list of ``(model, info)``, one per job, in the order of ``jobs``.

    Raises:
        TypeError: ``jobs`` not a list or tuple, a job not a ``(dataset, config, loss_fn)``
            triple, or a ``loss_fn`` neither None nor callable (all checked before anything
            trains).
        ValueError: as :func:`full_config` (checked for every job first) and
            :func:`train_or_load`.
    """
    if not isinstance(jobs, (list, tuple)):
        raise TypeError(f"jobs must be a list of (dataset, config, loss_fn) triples, got {type(jobs).__name__}")
    for i, job in enumerate(jobs):
        if not isinstance(job, (list, tuple)) or len(job) != 3:
            raise TypeError(f"jobs[{i}] must be a (dataset, config, loss_fn) triple, got {job!r}")
        if job[2] is not None and not callable(job[2]):
            raise TypeError(f"jobs[{i}]: loss_fn must be None or callable, got {type(job[2]).__name__}")
    paths = [checkpoint_path(dataset, cfg, kw.get("cache_dir")) for dataset, cfg, _ in jobs]
    out: list = [None] * len(jobs)
    pending = list(range(len(jobs)))
    while pending:
        i = next((j for j in pending if not lock_held(_lock_path(paths[j]))), pending[0])
        pending.remove(i)
        dataset, cfg, loss_fn = jobs[i]
        out[i] = train_or_load(dataset, cfg, loss_fn=loss_fn, **kw)
    return out

