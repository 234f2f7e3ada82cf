"""Robust and non-robust data sets (Ilyas et al. 2019) and how their spectra differ.

Issue 13, thread (b).  Ilyas, Santurkar, Tsipras, Engstrom, Tran & Madry 2019,
"Adversarial examples are not bugs, they are features" (NeurIPS), section 3, split what a
data set teaches a classifier into *robust* features (those a robust model uses) and
*non-robust* ones (predictive, but changed by a small perturbation):

* :func:`robust_dataset` (their D_R, Algorithm "GetRobustDataset"): for every image ``x``,
  the image ``x_r`` whose penultimate representation under a *robust* model matches that
  of ``x``, found by L2 normalised gradient descent on ``||g(x_r) - g(x)||`` from another,
  randomly chosen image, labelled with ``x``'s label.  Only the features the robust model
  sees survive.
* :func:`non_robust_dataset` (their D_det): every image moved by a targeted L2 PGD attack
  on a *standard* model towards class ``t = (y + 1) mod K`` and labelled ``t``.  To a
  person the images still show class ``y``; only non-robust features point to ``t``.  That
  a model trained on them classifies the *original* test images well is their evidence
  that non-robust features generalise.
* :func:`dataset_spectrum_comparison`: the DCT (or DFT) power spectra of the original, the
  robust and the non-robust sets side by side (radial profile, low/high share, per-image
  shares with a paired bootstrap interval against a reference set), the frequency-domain
  reading of thread (b): are the robust features the low frequencies, the non-robust ones
  the high?
* :func:`representation`: the penultimate representation ``g`` of a model (the input of
  its last linear layer, a named layer's output, or any callable), for
  :class:`freqkit.models.ResNetCIFAR`, :class:`freqkit.models.AirNet`,
  :class:`freqkit.models.SmallCNN` and :class:`freqkit.models.MirrorAverage`.

Settings: :data:`ILYAS_SETTINGS` are the paper's CIFAR-10 settings (their Appendix C: the
robust set by 1,000 normalised-gradient steps of L2 size 0.1, the non-robust set by 100
targeted L2 PGD steps of size 0.1 in a ball of radius 0.5; their robust model was trained
against L2 eps 0.5, their networks ResNet-50).  They are the defaults of the functions.  On
a 2-core CPU the 1,000 steps of D_R are the cost (each is a forward and a backward pass);
see :func:`robust_dataset` for what that costs here and what we change.  Training a new
model on the constructed sets and testing it on the original test images (their Table 1)
is :func:`freqkit.training.train_on_tensors` plus :func:`freqkit.evaluate`, left to the
chapter.
"""
from __future__ import annotations

import time
from typing import Callable, Mapping

import torch
from torch import nn

from ._runtime import chunks, eval_mode, model_device
from ._runtime import progress as progress_bar
from ._validate import (
    check_images,
    check_label_range,
    check_labels,
    check_model_output,
    check_number,
    check_positive_int,
)
from .attacks import pgd
from .stats import paired_difference
from .transforms import (
    band_energy,
    band_masks,
    check_basis,
    frequency_radius,
    low_high_masks,
    power_spectrum,
    radial_profile,
)

__all__ = ["ILYAS_SETTINGS", "representation", "robust_dataset", "non_robust_dataset", "dataset_spectrum_comparison"]

#: Ilyas et al. 2019's CIFAR-10 settings (Appendix C): "robust": D_R by L2 normalised gradient
#: descent on the representation distance; "non_robust": D_det by targeted L2 PGD.
ILYAS_SETTINGS = {
    "robust": {"norm": "l2", "steps": 1000, "step_size": 0.1},
    "non_robust": {"norm": "l2", "eps": 0.5, "steps": 100, "step_size": 0.1, "target": "(y + 1) mod K"},
}


class _HookedRepresentation:
    """``g(x)``: what ``module`` receives (``"input"``) or returns (``"output"``) when ``model(x)`` runs.

    A module called more than once per forward pass (the wrapped network of a
    :class:`freqkit.models.MirrorAverage` runs on the image and its mirror) contributes the
    mean of its calls: with a linear head that is exactly the representation the averaged
    logits are a function of.
    """

    def __init__(self, model: nn.Module, module: nn.Module, side: str, name: str):
        self.model, self.module, self.side, self.name = model, module, side, name

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        got = []

        def hook(mod, inputs, output):
            t = inputs[0] if self.side == "input" else output
            # A copy: an in-place activation after the layer would otherwise change it under autograd.
            got.append(t.flatten(1).clone())

        handle = self.module.register_forward_hook(hook)
        try:
            self.model(x)
        finally:
            handle.remove()
        if not got:
            raise ValueError(f"features: layer {self.name!r} did not run in the model's forward pass")
        return got[0] if len(got) == 1 else torch.stack(got).mean(0)

    def __repr__(self) -> str:
        return f"representation({type(self.model).__name__}, {self.side} of {self.name!r})"


def representation(model: nn.Module, layer: str | None = None) -> Callable[[torch.Tensor], torch.Tensor]:
    """The penultimate representation ``g`` of ``model`` as a callable: ``g(x) -> (N, D)``.

    Ilyas et al. 2019 ("Adversarial examples are not bugs, they are features") match the
    activations of the robust model's *representation layer*, the one before the linear
    classifier.  ``layer=None`` takes the input of the model's last ``nn.Linear`` (the head):
    for :class:`freqkit.models.ResNetCIFAR` the globally max-pooled features ``(N, 8 width)``,
    for :class:`freqkit.models.AirNet` the pooled last group ``(N, width_factor width)``, for
    :class:`freqkit.models.SmallCNN` the 128 hidden units, for a
    :class:`freqkit.models.MirrorAverage` the mean of its network's representation of the
    image and of its mirror.  A ``layer`` name (as in ``model.named_modules()``, e.g.
    ``"features"`` of a ResNetCIFAR, ``"pool"`` of an AirNet) takes that layer's output,
    flattened.  The model runs whole (its head too); gradients flow to ``x``.  The model's
    mode is not changed: call it inside :func:`freqkit._runtime.eval_mode` (the functions
    of this module do).

    Args:
        model: an ``nn.Module`` classifier.
        layer: ``None`` (the head's input) or the name of a submodule (its output).

    Returns:
        A callable ``g(x)`` returning ``(N, D)`` float tensors.

    Shape:
        - x: ``(N, C, H, W)``
        - g(x): ``(N, D)``

    Raises:
        TypeError: ``model`` is not an ``nn.Module``.
        ValueError: ``layer=None`` and ``model`` holds no ``nn.Linear``; ``layer`` names no
            submodule (the message lists the names) or (when called) does not run.

    Example:
        >>> import torch, freqkit as fk
        >>> _ = torch.manual_seed(0); net = fk.build_model("cifar10", "resnet", width=4)
        >>> fk.features.representation(net)(torch.rand(2, 3, 32, 32)).shape
        torch.Size([2, 32])
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be an nn.Module, got {type(model).__name__}")
    if layer is None:
        heads = [(n, m) for n, m in model.named_modules() if isinstance(m, nn.Linear)]
        if not heads:
            raise ValueError(f"features: {type(model).__name__} holds no nn.Linear head; pass the name of the layer "
                             "before the head, or a callable x -> (N, D)")
        name, module = heads[-1]
        return _HookedRepresentation(model, module, "input", name)
    modules = dict(model.named_modules())
    if not isinstance(layer, str) or layer not in modules or layer == "":
        names = [n for n in modules if n]
        raise ValueError(f"features: layer must name a submodule of {type(model).__name__}, got {layer!r}; "
                         f"its modules include {names[:12]}{' ...' if len(names) > 12 else ''}")
    return _HookedRepresentation(model, modules[layer], "output", layer)


def _extractor(model, features):
    if features is None or isinstance(features, str):
        return representation(model, features)
    if callable(features):
        return features
    raise ValueError(f"features must be None, a layer name or a callable x -> (N, D), got {type(features).__name__}")


def _rep(g, x: torch.Tensor) -> torch.Tensor:
    r = g(x)
    if not isinstance(r, torch.Tensor) or r.dim() < 2 or r.shape[0] != x.shape[0]:
        shape = tuple(r.shape) if isinstance(r, torch.Tensor) else type(r).__name__
        raise ValueError(f"features must map {x.shape[0]} images to a tensor (N, ...), got {shape}")
    return r.flatten(1).float()


def _check_common(model, x, y, steps, step_size, batch_size, seed):
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be an nn.Module, got {type(model).__name__}")
    check_images(x, "x", unit_range=True)
    y = check_labels(y, x.shape[0], x.device, "y")
    check_positive_int(steps, "steps")
    step_size = check_number(step_size, "step_size")
    check_positive_int(batch_size, "batch_size")
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise ValueError(f"seed must be an integer, got {seed!r}")
    return y, step_size


def robust_dataset(model: nn.Module, x: torch.Tensor, y: torch.Tensor, features=None, steps: int = 1000,
                   step_size: float = 0.1, batch_size: int = 100, seed: int = 0, progress: bool = False):
    """Ilyas et al. 2019's robust data set D_R: images that keep only what a robust model's representation sees.

    Ilyas et al. 2019, "Adversarial examples are not bugs, they are features", section 3.1
    and Algorithm "GetRobustDataset": for each ``(x, y)``, with ``g`` the robust model's
    representation (:func:`representation`), ``x_r = argmin_z ||g(z) - g(x)||_2`` over
    ``z`` in ``[0, 1]^d``, found by L2 *normalised* gradient descent (``z <- clip(z - a
    grad / ||grad||_2, 0, 1)``, ``steps`` times, no radius constraint) starting from a
    *different* image ``x'`` of the set, and labelled ``y``.  Starting elsewhere matters:
    starting at ``x`` would keep all of ``x``'s features, non-robust ones included.  Their
    settings (:data:`ILYAS_SETTINGS`, CIFAR-10, Appendix C): 1,000 steps of size 0.1, the
    start drawn from the training set, the model an L2 (eps 0.5) adversarially trained
    ResNet-50, 50,000 images.

    What we change, and why: the start of image ``i`` is the image after it in one random
    cycle over the given images (a random derangement seeded by ``seed``; theirs is drawn
    from the whole set and may repeat), so that no image starts from itself and every image
    is used once as a start.  The last iterate is returned, as theirs.  The cost is
    ``steps`` forward and backward passes per image, in float32: measured on this
    project's 2-core Intel Xeon (shared, load about 8, one thread), 4.2 ms per image and
    step for the CIFAR-10 ``cpu`` preset's AirNet (widths 16/96/96) and 7.4 ms for a
    ResNetCIFAR of width 16, so the paper's 1,000 steps take about 4 s per image: 1,000
    images about 70 minutes, their 50,000 about 58 hours.  On such a CPU build the set
    from a few hundred to a few thousand images with the paper's steps rather than all
    images with fewer steps: ``info["distance_final"]`` (relative to
    ``info["representation_norm"]``) shows how far the optimisation got (on a smoke-size
    ResNet, 1,000 steps took the median relative distance from 0.75 to 0.05).

    Args:
        model: the robust classifier (an ``nn.Module``; run in eval mode, its mode restored).
        x: source images in ``[0, 1]``, at least 2 (each needs another image to start from).
        y: their labels, integers.
        features: the representation: ``None`` (the input of the model's last linear
            layer), a layer name, or a callable ``x -> (N, D)`` (see :func:`representation`).
        steps: gradient steps, an integer ``>= 1`` (paper: 1000).
        step_size: L2 length of each step in pixel units on ``[0, 1]`` images, ``> 0``
            (paper: 0.1).
        batch_size: images optimised together, an integer ``>= 1``; every image is
            optimised independently (eval mode), so the result does not depend on it.
        seed: seeds the choice of start images, an integer (a private generator; the global
            RNG is untouched).
        progress: show a progress bar (only in a terminal).

    Returns:
        ``(x_r, y_r, info)``: ``x_r`` the robust images in ``[0, 1]`` (detached, ``x``'s
        device and dtype), ``y_r`` a copy of ``y`` (int64), and ``info`` a dict:
        ``start_index`` (int64 ``(N,)``: which image each started from), ``distance_start``
        and ``distance_final`` (``||g(.) - g(x)||_2`` at the start and at the end, ``(N,)``),
        ``representation_norm`` (``||g(x)||_2``, ``(N,)``), ``steps``, ``step_size``,
        ``norm`` (``"l2"``), ``seconds``, ``paper`` (the citation) and ``settings``
        (:data:`ILYAS_SETTINGS` ``["robust"]``, for comparison).

    Shape:
        - x: ``(N, C, H, W)``, ``N >= 2``
        - y: ``(N,)``
        - x_r: ``(N, C, H, W)``; y_r and every per-image ``info`` entry: ``(N,)``

    Raises:
        TypeError: ``model`` not an ``nn.Module``; ``x`` not a floating-point tensor; ``y``
            not an integer tensor.
        ValueError: ``x`` not 4-D, not finite, outside ``[0, 1]`` or with fewer than 2
            images; ``y`` not ``(N,)`` or outside the model's classes; ``steps`` or
            ``batch_size`` not an integer ``>= 1``; ``step_size`` not a finite number ``> 0``;
            ``seed`` not an integer; ``features`` neither None, a layer name of ``model``
            nor a callable returning ``(N, ...)``; the model returning NaN or inf.

    Example:
        >>> import torch, freqkit as fk
        >>> _ = torch.manual_seed(0); net = fk.build_model("mnist", width=4)
        >>> x = torch.rand(4, 1, 28, 28); y = torch.tensor([0, 1, 2, 3])
        >>> xr, yr, info = fk.features.robust_dataset(net, x, y, steps=20, step_size=0.5)
        >>> xr.shape, bool(xr.min() >= 0 and xr.max() <= 1), yr.tolist()
        (torch.Size([4, 1, 28, 28]), True, [0, 1, 2, 3])
        >>> bool((info["distance_final"] < info["distance_start"]).all())
        True
    """
    y, step_size = _check_common(model, x, y, steps, step_size, batch_size, seed)
    n = x.shape[0]
    if n < 2:
        raise ValueError(f"x must hold at least 2 images (each starts from another one), got {n}")
    g = _extractor(model, features)
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    start = torch.empty(n, dtype=torch.long)
    start[perm] = perm.roll(-1)  # one cycle: image perm[j] starts from perm[j + 1], never from itself
    start = start.to(x.device)
    dev = model_device(model)
    out = torch.empty_like(x)
    d0, d1, rn = (torch.empty(n, device=x.device) for _ in range(3))
    bar = progress_bar(total=n * steps, enabled=progress, desc="robust set", unit="step")
    t0 = time.perf_counter()
    try:
        with eval_mode(model), torch.enable_grad():
            for sl in chunks(n, batch_size):
                xb = x[sl].to(dev)
                with torch.no_grad():
                    check_label_range(y[sl], check_model_output(model(xb), model).shape[1], "y")
                    target = _rep(g, xb)
                    z = x[start[sl]].to(dev).float().clone()
                    d0[sl] = (_rep(g, z) - target).norm(dim=1).to(x.device)
                for _ in range(steps):
                    z.requires_grad_(True)
                    # The squared distance: its gradient has the direction of the distance's (the
                    # step is normalised) and stays defined where the distance is 0.
                    loss = (_rep(g, z) - target).pow(2).sum()
                    grad, = torch.autograd.grad(loss, z)
                    norm = grad.flatten(1).norm(dim=1).clamp_min(1e-12)[:, None, None, None]
                    z = (z.detach() - step_size * grad / norm).clamp_(0.0, 1.0)
                    bar.update(z.shape[0])
                with torch.no_grad():
                    d1[sl] = (_rep(g, z) - target).norm(dim=1).to(x.device)
                    rn[sl] = target.norm(dim=1).to(x.device)
                out[sl] = z.detach().to(device=x.device, dtype=x.dtype)
    finally:
        bar.close()
    info = {"start_index": start, "distance_start": d0, "distance_final": d1, "representation_norm": rn,
            "steps": steps, "step_size": step_size, "norm": "l2", "seconds": time.perf_counter() - t0,
            "paper": "Ilyas et al. 2019, Adversarial examples are not bugs, they are features (D_R)",
            "settings": dict(ILYAS_SETTINGS["robust"])}
    return out, y.clone(), info


def non_robust_dataset(model: nn.Module, x: torch.Tensor, y: torch.Tensor, eps: float = 0.5, steps: int = 100,
                       step_size: float = 0.1, batch_size: int = 100, seed: int = 0, progress: bool = False):
    """Ilyas et al. 2019's non-robust data set D_det: images moved towards class ``(y + 1) mod K``, relabelled.

    Ilyas et al. 2019, "Adversarial examples are not bugs, they are features", section 3.2
    ("GetNonRobustDataset", the deterministic variant D_det): for each ``(x, y)`` of a
    *standard* model's training set, ``t = (y + 1) mod K`` and ``x_nr = argmin_{||x' - x||_2
    <= eps} L(x', t)``, the cross-entropy towards ``t``, by targeted L2 PGD; the new label is
    ``t``.  A person still sees class ``y``; the features that point to ``t`` are
    non-robust.  Their CIFAR-10 settings (Appendix C, :data:`ILYAS_SETTINGS`): eps 0.5, 100
    steps of 0.1, no random start, all steps run (no early stop: the example should be
    classified as ``t`` with high confidence, not just barely).  The attack is
    :func:`freqkit.pgd` (``norm="l2"``, ``targeted=True``, ``random_start=False``,
    ``early_stop=False``), which also keeps ``x_nr`` in ``[0, 1]``.  We use their settings
    unchanged: the 100 steps cost a tenth of :func:`robust_dataset`'s 1,000 (measured on
    this project's 2-core Xeon, shared: 0.46 s per image for the CIFAR-10 ``cpu`` preset's
    AirNet, about 40 minutes for 5,000 images).  (Their D_rand variant, ``t`` drawn at
    random, is not built here.)

    Args:
        model: the standard classifier (an ``nn.Module``; attacked in eval mode, its mode
            restored).
        x: images in ``[0, 1]``, at least one.
        y: their labels, integers in ``[0, K)`` (``K``: the model's number of logits).
        eps: L2 radius in pixel units on ``[0, 1]`` images, ``> 0`` (paper: 0.5 on CIFAR-10).
        steps: PGD steps, an integer ``>= 1`` (paper: 100).
        step_size: L2 length of each step, ``> 0`` (paper: 0.1).
        batch_size: images attacked together, an integer ``>= 1``.
        seed: passed to :func:`freqkit.pgd` (no random start, so it draws nothing; kept for
            a uniform signature), an integer.
        progress: show a progress bar over the batches (only in a terminal).

    Returns:
        ``(x_nr, t, info)``: ``x_nr`` in ``[0, 1]`` within ``eps`` of ``x`` (detached,
        ``x``'s device), ``t = (y + 1) mod K`` (int64), and ``info`` a dict: ``success``
        (bool ``(N,)``: the model classifies ``x_nr`` as ``t``), ``success_rate`` (float),
        ``source_labels`` (a copy of ``y``), ``l2`` (``||x_nr - x||_2``, ``(N,)``),
        ``n_classes``, ``eps``, ``steps``, ``step_size``, ``seconds``, ``paper`` and
        ``settings`` (:data:`ILYAS_SETTINGS` ``["non_robust"]``).

    Shape:
        - x: ``(N, C, H, W)``
        - y: ``(N,)``
        - x_nr: ``(N, C, H, W)``; t and every per-image ``info`` entry: ``(N,)``

    Raises:
        TypeError: ``model`` not an ``nn.Module``; ``x`` not a floating-point tensor; ``y``
            not an integer tensor.
        ValueError: ``x`` not 4-D, not finite, outside ``[0, 1]`` or empty; ``y`` not
            ``(N,)`` or outside ``[0, K)``; ``eps`` or ``step_size`` not a finite number
            ``> 0``; ``steps`` or ``batch_size`` not an integer ``>= 1``; ``seed`` not an
            integer; the model returning NaN or inf.

    Example:
        >>> import torch, freqkit as fk
        >>> _ = torch.manual_seed(0); net = fk.build_model("mnist", width=4)
        >>> x = torch.rand(3, 1, 28, 28); y = torch.tensor([0, 4, 9])
        >>> x_nr, t, info = fk.features.non_robust_dataset(net, x, y, eps=1.0, steps=5, step_size=0.3)
        >>> t.tolist(), bool((info["l2"] <= 1.0 + 1e-4).all())
        ([1, 5, 0], True)
    """
    y, step_size = _check_common(model, x, y, steps, step_size, batch_size, seed)
    eps = check_number(eps, "eps")
    n = x.shape[0]
    if n == 0:
        raise ValueError("x holds no images (N = 0)")
    with eval_mode(model), torch.no_grad():
        k = check_model_output(model(x[:1].to(model_device(model))), model).shape[1]
    check_label_range(y, k, "y")
    t = (y + 1) % k
    out = torch.empty_like(x)
    success = torch.zeros(n, dtype=torch.bool, device=x.device)
    batches = list(chunks(n, batch_size))
    t0 = time.perf_counter()
    for sl in progress_bar(batches, enabled=progress, desc="non-robust set", unit="batch"):
        xa, info = pgd(model, x[sl], t[sl], eps, norm="l2", steps=steps, step_size=step_size, targeted=True,
                       random_start=False, early_stop=False, seed=seed, return_info=True)
        out[sl] = xa.to(x.dtype)
        success[sl] = info["success"].to(x.device)
    l2 = (out - x).flatten(1).norm(dim=1)
    info = {"success": success, "success_rate": float(success.float().mean()), "source_labels": y.clone(),
            "l2": l2, "n_classes": int(k), "eps": eps, "steps": steps, "step_size": step_size,
            "seconds": time.perf_counter() - t0,
            "paper": "Ilyas et al. 2019, Adversarial examples are not bugs, they are features (D_det)",
            "settings": dict(ILYAS_SETTINGS["non_robust"])}
    return out, t, info


def _spectrum_summary(x: torch.Tensor, masks: torch.Tensor, halves: torch.Tensor, basis: str) -> dict:
    power = power_spectrum(x.float(), basis)
    total = float(power.sum())
    radial = radial_profile(power, masks) / total if total > 0 else torch.zeros(masks.shape[0])
    lh = radial_profile(power, halves) / total if total > 0 else torch.zeros(2)
    per_image = band_energy(x.float(), basis, masks=halves)[:, 1]  # each image's own high share
    return {"n": int(x.shape[0]), "radial_share": [float(v) for v in radial], "low_share": float(lh[0]),
            "high_share": float(lh[1]), "high_share_per_image": per_image,
            "high_share_per_image_mean": float(per_image.mean()), "power": power}


def dataset_spectrum_comparison(sets: Mapping[str, torch.Tensor], basis: str = "dct", n_bands: int = 8,
                                subtract_mean: bool = True, reference: str | None = None, n_boot: int = 2000,
                                seed: int = 0) -> dict:
    """Mean power spectra of image sets side by side: where the energy of original, robust and non-robust sets lies.

    The frequency reading of Ilyas et al. 2019 ("Adversarial examples are not bugs, they
    are features") in this project: if robust features were low frequencies and non-robust
    ones high, the robust set D_R (:func:`robust_dataset`) would carry less high-frequency
    energy than the original images, and the *change* a D_det image made
    (:func:`non_robust_dataset`, ``x_nr - x``) would sit high.  Per set: the mean power
    spectrum (:func:`freqkit.power_spectrum`), its share per radial band
    (:func:`freqkit.band_masks`, ``n_bands`` equal-width bands, via
    :func:`freqkit.radial_profile`), the share in the low and high halves of
    :func:`freqkit.low_high_masks` (equal-count halves, so the two are subspaces of the same
    dimension), and each image's own high share (:func:`freqkit.band_energy`).  With
    ``reference``, also the spectra of the differences ``set - reference`` (sets of the
    reference's shape, index-paired: D_det and D_R are, image for image) and, per set, the
    paired difference of the per-image high shares against the reference with a bootstrap
    interval (:func:`freqkit.stats.paired_difference`).

    Args:
        sets: non-empty ``{name: images}``, each a finite floating-point ``(N, C, H, W)``
            tensor with at least one image, all of the same ``(C, H, W)``.
        basis: ``"dct"`` (default) or ``"dft"``.
        n_bands: radial bands of the profile, an integer ``>= 1`` (default 8).
        subtract_mean: remove each image's per-channel mean first (default True): the DC
            coefficient (mean brightness) would otherwise hold most of the energy and hide
            the rest; differences are taken before it.
        reference: ``None``, or the name of the set the others are paired with (e.g.
            ``"original"``).
        n_boot: bootstrap resamples of the paired intervals, an integer ``>= 1``.
        seed: seed of the bootstrap, an integer.

    Returns:
        ``{"basis", "n_bands", "band_centres" (mean radius of each band, units of Nyquist),
        "subtract_mean", "reference", "sets": {name: summary}, "differences": {"name -
        reference": summary} ({} without reference), "paired_high_share": {name:
        paired_difference dict of the per-image high share, name minus reference} ({}
        without reference)}``; a summary is ``{"n", "radial_share" (list of K floats summing
        to 1), "low_share", "high_share" (of the mean spectrum), "high_share_per_image"
        (tensor ``(N,)``), "high_share_per_image_mean", "power" (tensor ``(H, W)``, the mean
        spectrum, on the ``basis`` grid)}``.

    Shape:
        - sets[name]: ``(N_name, C, H, W)``

    Raises:
        TypeError: a set not a floating-point tensor.
        ValueError: ``sets`` empty or not a mapping; a set not 4-D, not finite or empty;
            sets of different ``(C, H, W)``; ``basis`` unknown; ``n_bands`` not an integer
            ``>= 1`` or leaving an empty band; ``reference`` not a key of ``sets``, or a set
            whose shape differs from it (no pairing).

    Example:
        >>> import torch, freqkit as fk
        >>> _ = torch.manual_seed(0); x = torch.rand(6, 1, 16, 16)
        >>> smooth = fk.low_pass(x, 0.3).clamp(0, 1)
        >>> r = fk.features.dataset_spectrum_comparison({"x": x, "smooth": smooth}, n_bands=4, reference="x")
        >>> r["sets"]["smooth"]["high_share"] < r["sets"]["x"]["high_share"], r["paired_high_share"]["smooth"]["n"]
        (True, 6)
    """
    if not isinstance(sets, Mapping) or not sets:
        raise ValueError("sets must be a non-empty {name: images} mapping")
    check_basis(basis)
    check_positive_int(n_bands, "n_bands")
    check_positive_int(n_boot, "n_boot")
    shape = None
    for name, x in sets.items():
        check_images(x, f"sets[{name!r}]", nonempty=True)
        if shape is None:
            shape = tuple(x.shape[1:])
        elif tuple(x.shape[1:]) != shape:
            raise ValueError(f"sets[{name!r}] has images of shape {tuple(x.shape[1:])}, the first set {shape}: "
                             "spectra are compared on one grid")
    if reference is not None and reference not in sets:
        raise ValueError(f"reference must be one of the sets {sorted(sets)}, got {reference!r}")
    h, w = shape[-2:]
    masks = band_masks(h, w, n_bands, kind="radial", basis=basis)
    halves = torch.stack([low_high_masks(h, w, basis)["low"], low_high_masks(h, w, basis)["high"]])
    r = frequency_radius(h, w, basis)
    centres = [float(r[m].mean()) for m in masks]

    def centred(x):
        x = x.float()
        return x - x.mean((2, 3), keepdim=True) if subtract_mean else x

    out = {"basis": basis, "n_bands": n_bands, "band_centres": centres, "subtract_mean": bool(subtract_mean),
           "reference": reference, "sets": {}, "differences": {}, "paired_high_share": {}}
    for name, x in sets.items():
        out["sets"][name] = _spectrum_summary(centred(x), masks, halves, basis)
    if reference is not None:
        ref = sets[reference]
        for name, x in sets.items():
            if name == reference:
                continue
            if x.shape != ref.shape:
                raise ValueError(f"sets[{name!r}] {tuple(x.shape)} cannot be paired with the reference "
                                 f"{reference!r} {tuple(ref.shape)}: pass sets of the same images")
            out["differences"][f"{name} - {reference}"] = _spectrum_summary(
                centred(x.to(ref.device) - ref), masks, halves, basis)
            out["paired_high_share"][name] = paired_difference(
                out["sets"][name]["high_share_per_image"].cpu().numpy(),
                out["sets"][reference]["high_share_per_image"].cpu().numpy(), n_boot=n_boot, seed=seed)
    return out
