"""Models: architectures, the normalisation layer, prediction and evaluation, devices, and
pretrained ImageNet classifiers.

Every model takes images ``(N, C, H, W)`` with pixels in ``[0, 1]`` and starts with a
:class:`Normalize` layer (DESIGN.md: normalisation lives inside the model, never in the
data, so attacks, filters and attributions all act in the same pixel space).  They return
logits ``(N, n_classes)``.

* :class:`SmallCNN` (MNIST, 1x28x28): two 3x3 conv blocks (conv-BN-ReLU-maxpool) and two
  fully connected layers.
* :class:`ResNetCIFAR` (CIFAR-10, 3x32x32): the "ResNet-9" layout of Page (2018,
  DAWNBench) with a width multiplier: prep conv, three stages that double the channels
  and halve the resolution, residual blocks after stages 1 and 3, global max pool, a
  scaled linear head.  ``width=64`` is Page's network (94% in 24 epochs on a GPU);
  ``width=16`` trains on a 2-core CPU in minutes.
* :class:`AirNet` (CIFAR-10): the network of airbench94 (Jordan 2024) with a width
  multiplier: a frozen patch-whitening first layer (:class:`PatchWhitening`, fitted to
  training patches), three conv groups with GELU, BatchNorm without a learnt scale, dirac
  init.  ``width=64`` is airbench94's network (94% in about 10 epochs on a GPU);
  ``width=16`` is the CPU preset's.
* :class:`MirrorAverage`: test-time flip augmentation as a model (mean logits of an image
  and its mirror), so that what is attacked is what was scored.
* :class:`PlantedCNN`: a two-convolution energy detector for the planted-frequency task
  (:mod:`freqkit.planted`).
* :func:`load_imagenet_classifier`: torchvision ImageNet weights from a local file (or a
  download), behind :class:`Normalize`; never random weights (:class:`WeightsUnavailable`).
  Every weights file is read with ``torch.load(weights_only=True)`` (a planted pickle runs
  no code), and a file in torchvision's cache is checked against the SHA-256 prefix in its
  name first.
* :func:`load_robustbench`: an entry of RobustBench's model zoo (Croce et al. 2021), its
  architecture from the optional ``robustbench`` package, its weights from a local file or
  RobustBench's download, read ``weights_only``; never random weights either.
* :func:`predict_logits`, :func:`evaluate`, :func:`resolve_device`: running any of them.
"""
from __future__ import annotations

import difflib
import glob
import importlib
import importlib.util
import math
import os
import re
import sys
import threading
import warnings
from collections import OrderedDict
from pathlib import Path
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ._io import file_sha256
from ._runtime import eval_mode, model_device, offline
from ._validate import (check_choice, check_images, check_number, check_label_range, check_labels, check_model_output,
                        check_positive_int, check_tensor)

__all__ = [
    "Normalize", "SmallCNN", "ResNetCIFAR", "AirNet", "PatchWhitening", "MirrorAverage", "PlantedCNN", "build_model",
    "with_normalization",
    "CIFAR10_MEAN", "CIFAR10_STD", "MNIST_MEAN", "MNIST_STD", "IMAGENET_MEAN", "IMAGENET_STD",
    "ARCHS", "resolve_device", "predict_logits", "evaluate", "load_imagenet_classifier", "WeightsUnavailable",
    "load_robustbench",
]

# Training-set channel statistics (CIFAR-10: of the 50,000 training images; MNIST: of the
# 60,000 training digits; ImageNet: torchvision's, used by every pretrained model).
CIFAR10_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR10_STD = (0.2470, 0.2435, 0.2616)
MNIST_MEAN = (0.1307,)
MNIST_STD = (0.3081,)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class Normalize(nn.Module):
    """Per-channel normalisation ``(x - mean) / std``, as the first layer of a model.

    Normalisation lives inside the model, never in the data (DESIGN.md), so attacks,
    filters and attributions all act on ``[0, 1]`` pixels.  ``mean`` and ``std`` are stored
    as float32 buffers of shape ``(1, C, 1, 1)``, so they move with the model and are saved
    in its state_dict.

    Args:
        mean: per-channel means, a sequence of length C, or one value for every channel.
        std: per-channel standard deviations, ``> 0``, a sequence of length C or one value.
            ``mean`` and ``std`` may differ in length only when one of them has length 1.

    Shape:
        - input: ``(N, C, H, W)``, pixels in ``[0, 1]``
        - output: ``(N, C, H, W)``

    Raises:
        ValueError: (construction) ``mean`` or ``std`` empty, of different lengths (neither
            1), not finite, or ``std <= 0``; (forward) an input that is not 4-D, or whose C
            differs from the length of ``mean`` when that is above 1 (the length of ``std``
            is not compared: a 1-value ``mean`` with a C-value ``std`` broadcasts a
            1-channel input to C channels).

    Example:
        >>> import torch, freqkit as fk
        >>> norm = fk.Normalize((0.5,), (0.25,))
        >>> norm
        Normalize(mean=[0.5], std=[0.25])
        >>> y = norm(torch.ones(2, 1, 4, 4)); y.shape, y[0, 0, 0, 0].item()
        (torch.Size([2, 1, 4, 4]), 2.0)
    """

    def __init__(self, mean: Sequence[float] | float, std: Sequence[float] | float):
        super().__init__()
        mean_t = torch.as_tensor(mean, dtype=torch.float32).reshape(-1)
        std_t = torch.as_tensor(std, dtype=torch.float32).reshape(-1)
        if mean_t.numel() == 0 or std_t.numel() == 0:
            raise ValueError("mean and std must be non-empty")
        if mean_t.numel() != std_t.numel() and 1 not in (mean_t.numel(), std_t.numel()):
            raise ValueError(f"mean and std must have the same length, got {mean_t.numel()} and {std_t.numel()}")
        if not bool(torch.isfinite(mean_t).all()) or not bool(torch.isfinite(std_t).all()):
            raise ValueError("mean and std must be finite")
        if not bool((std_t > 0).all()):
            raise ValueError(f"std must be > 0, got {std_t.tolist()}")
        self.register_buffer("mean", mean_t.reshape(1, -1, 1, 1))
        self.register_buffer("std", std_t.reshape(1, -1, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c = self.mean.shape[1]
        if x.dim() != 4 or (c > 1 and x.shape[1] != c):
            raise ValueError(f"Normalize expects input (N, {c}, H, W), got shape {tuple(x.shape)}")
        return (x - self.mean) / self.std

    def extra_repr(self) -> str:
        r = lambda t: [round(v, 4) for v in t.flatten().tolist()]  # noqa: E731
        return f"mean={r(self.mean)}, std={r(self.std)}"


def with_normalization(model: nn.Module, mean, std) -> nn.Sequential:
    """Wrap any ``[0, 1]``-input model as ``Sequential(normalize=Normalize(mean, std), net=model)``.

    Used for pretrained networks that expect normalised inputs (e.g. torchvision's ImageNet
    classifiers), so that they take ``[0, 1]`` pixels like every freqkit model.  ``model`` is
    not copied.

    Args:
        model: the network, taking normalised images.
        mean: per-channel means for :class:`Normalize`.
        std: per-channel standard deviations (``> 0``) for :class:`Normalize`.

    Returns:
        An ``nn.Sequential`` with submodules ``normalize`` and ``net``.

    Raises:
        ValueError: ``mean``/``std`` rejected by :class:`Normalize`.
    """
    return nn.Sequential(OrderedDict(normalize=Normalize(mean, std), net=model))


def _conv_bn(cin: int, cout: int, pool: bool = False) -> nn.Sequential:
    layers = [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]
    if pool:
        layers.append(nn.MaxPool2d(2))
    return nn.Sequential(*layers)


class SmallCNN(nn.Module):
    """MNIST classifier: Normalize -> 2 x (conv3x3-BN-ReLU-maxpool2) -> FC(128) -> FC(n_classes).

    About 0.42 M parameters and 4 M multiply-adds per 28x28 image at ``width=32``.

    Args:
        in_channels: C of the input (1 for MNIST), an integer ``>= 1``.
        n_classes: number of logits, an integer ``>= 2``.
        width: channels of the first conv (the second has ``2 * width``), ``>= 1``.
        image_size: H = W of the input (28 for MNIST); ``>= 4`` and divisible by 4 (the
            fully connected layer is sized for it, so other input sizes fail).
        mean: per-channel means for the Normalize layer (MNIST's by default).
        std: per-channel standard deviations for the Normalize layer (MNIST's by default).
        dropout: dropout probability before the last layer, in ``[0, 1]``.

    Shape:
        - input: ``(N, in_channels, image_size, image_size)``, pixels in ``[0, 1]``
        - output: ``(N, n_classes)`` logits

    Raises:
        ValueError: ``in_channels``, ``width`` not integers ``>= 1``; ``n_classes`` not an
            integer ``>= 2``; ``image_size`` not an integer ``>= 4`` divisible by 4; ``mean``/
            ``std`` rejected by :class:`Normalize`; ``dropout`` outside ``[0, 1]`` (torch).
    """

    def __init__(self, in_channels: int = 1, n_classes: int = 10, width: int = 32, image_size: int = 28,
                 mean=MNIST_MEAN, std=MNIST_STD, dropout: float = 0.25):
        super().__init__()
        check_positive_int(in_channels, "in_channels")
        check_positive_int(n_classes, "n_classes", 2)
        check_positive_int(width, "width")
        check_positive_int(image_size, "image_size", 4)
        if image_size % 4:
            raise ValueError(f"image_size must be divisible by 4, got {image_size}")
        self.normalize = Normalize(mean, std)
        self.features = nn.Sequential(_conv_bn(in_channels, width, pool=True),
                                      _conv_bn(width, 2 * width, pool=True))
        side = image_size // 4
        self.classifier = nn.Sequential(
            nn.Flatten(), nn.Linear(2 * width * side * side, 128), nn.ReLU(inplace=True),
            nn.Dropout(dropout), nn.Linear(128, n_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(self.normalize(x)))


class _Residual(nn.Module):
    def __init__(self, c: int):
        super().__init__()
        self.body = nn.Sequential(_conv_bn(c, c), _conv_bn(c, c))

    def forward(self, x):
        return x + self.body(x)


class ResNetCIFAR(nn.Module):
    """CIFAR-10 ResNet ("ResNet-9" layout, Page 2018) with a width multiplier.

    The network of Page (2018, "How to train your ResNet", DAWNBench):
    Normalize -> prep conv(w) -> [conv(2w)+pool, residual(2w)] -> [conv(4w)+pool]
    -> [conv(8w)+pool, residual(8w)] -> global max pool -> linear(n_classes, no bias) *
    ``head_scale``.  Every conv is 3x3-BN-ReLU; 8 convs + 1 linear layer deep.

    Args:
        width: channels of the prep layer, an integer ``>= 1`` (64 = Page's net, 6.6 M
            parameters; 16 = 0.4 M parameters, about 25 M multiply-adds per 32x32 image, the
            CPU profile).
        in_channels: C of the input (3 for CIFAR-10), an integer ``>= 1``.
        n_classes: number of logits, an integer ``>= 2``.
        mean: per-channel means for the Normalize layer (CIFAR-10's by default).
        std: per-channel standard deviations for the Normalize layer (CIFAR-10's by default).
        head_scale: fixed factor on the logits (Page's 0.125 keeps the initial softmax soft,
            so that large one-cycle learning rates need no warm-up); not checked.

    Shape:
        - input: ``(N, in_channels, H, W)``, pixels in ``[0, 1]``, ``H, W >= 8`` (32 for CIFAR-10)
        - output: ``(N, n_classes)`` logits

    Raises:
        ValueError: ``width`` or ``in_channels`` not an integer ``>= 1``; ``n_classes`` not
            an integer ``>= 2``; ``mean``/``std`` rejected by :class:`Normalize`.
    """

    def __init__(self, width: int = 16, in_channels: int = 3, n_classes: int = 10,
                 mean=CIFAR10_MEAN, std=CIFAR10_STD, head_scale: float = 0.125):
        super().__init__()
        check_positive_int(width, "width")
        check_positive_int(in_channels, "in_channels")
        check_positive_int(n_classes, "n_classes", 2)
        w = width
        self.normalize = Normalize(mean, std)
        self.features = nn.Sequential(
            _conv_bn(in_channels, w),
            _conv_bn(w, 2 * w, pool=True), _Residual(2 * w),
            _conv_bn(2 * w, 4 * w, pool=True),
            _conv_bn(4 * w, 8 * w, pool=True), _Residual(8 * w),
            nn.AdaptiveMaxPool2d(1), nn.Flatten())
        self.fc = nn.Linear(8 * w, n_classes, bias=False)
        # Page's trick: a small fixed scale on the logits keeps the initial softmax soft,
        # which lets the large one-cycle learning rates work without warm-up blow-ups.
        self.head_scale = float(head_scale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.features(self.normalize(x))) * self.head_scale


class PatchWhitening(nn.Module):
    """A frozen convolution that whitens image patches (PCA whitening), with a trainable bias.

    The first layer of airbench (Jordan 2024, "94% on CIFAR-10 in 3.29 seconds on a single
    GPU", arXiv:2404.00498; after tysam-code's hlb-CIFAR10).  :meth:`fit` computes, from
    training images, the mean ``m`` and covariance ``S = V diag(l) V^T`` of their
    ``kernel_size x kernel_size`` patches (all C channels, D = C k^2 values) and sets the
    filters to ``W = diag(l + eps)^(-1/2) V^T`` (one filter per principal direction, largest
    first) and their negatives (``2 D`` output channels, so that a following GELU or ReLU
    keeps both signs), and the bias to ``-W m`` (and ``+W m``): on the fitted patches each of
    the first ``D`` output channels has mean 0, and their covariance is
    ``diag(l / (l + eps))``, the identity up to ``eps``.  The filters are a buffer (saved in
    the state_dict, never trained); the bias is a parameter that training may tune.
    Before :meth:`fit` the filters are random (Kaiming-uniform, as an ``nn.Conv2d``):
    :meth:`reset_parameters` restores that state, so a randomisation check that
    re-initialises layers randomises this one too.

    Args:
        in_channels: C of the input, an integer ``>= 1``.
        kernel_size: patch side k, an integer ``>= 1`` (airbench: 2).
        eps: added to every eigenvalue before the inverse square root, a finite number
            ``> 0`` (airbench: 5e-4 on normalised images); it caps the gain of the
            low-variance (high-frequency) directions.

    Shape:
        - input: ``(N, in_channels, H, W)`` (normalised images), ``H, W >= kernel_size``
        - output: ``(N, 2 * in_channels * kernel_size**2, H - k + 1, W - k + 1)`` (no padding)

    Raises:
        ValueError: ``in_channels`` or ``kernel_size`` not an integer ``>= 1``; ``eps`` not
            a finite number ``> 0``.
    """

    def __init__(self, in_channels: int = 3, kernel_size: int = 2, eps: float = 5e-4):
        super().__init__()
        check_positive_int(in_channels, "in_channels")
        check_positive_int(kernel_size, "kernel_size")
        if isinstance(eps, bool) or not isinstance(eps, (int, float)) or not math.isfinite(eps) or eps <= 0:
            raise ValueError(f"eps must be a finite number > 0, got {eps!r}")
        self.in_channels, self.kernel_size, self.eps = int(in_channels), int(kernel_size), float(eps)
        d = self.in_channels * self.kernel_size ** 2
        self.register_buffer("weight", torch.empty(2 * d, self.in_channels, self.kernel_size, self.kernel_size))
        self.bias = nn.Parameter(torch.zeros(2 * d))
        self.reset_parameters()

    @property
    def out_channels(self) -> int:
        """``2 * in_channels * kernel_size**2``."""
        return self.weight.shape[0]

    def reset_parameters(self) -> None:
        """Random filters (as a fresh ``nn.Conv2d``) and a zero bias: the state before :meth:`fit`."""
        nn.init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        with torch.no_grad():
            self.bias.zero_()

    def patches(self, x: torch.Tensor) -> torch.Tensor:
        """Every ``k x k`` patch of ``x`` (stride 1) as rows ``(N * (H-k+1) * (W-k+1), C * k * k)`` in float32.

        The row layout is the flattened ``(C, k, k)`` of a filter: ``patches(x) @
        weight.flatten(1).T`` equals the convolution without bias.
        """
        k = self.kernel_size
        return x.float().unfold(2, k, 1).unfold(3, k, 1).permute(0, 2, 3, 1, 4, 5).reshape(-1, x.shape[1] * k * k)

    @torch.no_grad()
    def fit(self, x: torch.Tensor) -> "PatchWhitening":
        """Set the filters and the bias from the patches of ``x`` (see the class docstring).

        Args:
            x: images as this layer sees them (after the model's :class:`Normalize`), a
                finite floating-point tensor ``(N, C, H, W)`` with ``N >= 1``,
                ``H, W >= kernel_size``.  airbench uses 5,000 training images.

        Returns:
            ``self`` (filters and bias changed in place; float32 statistics, stored in the
            layer's dtype).

        Raises:
            TypeError: ``x`` not a floating-point tensor.
            ValueError: ``x`` not 4-D, empty, not finite, with another channel count, or
                smaller than a patch.
        """
        check_images(x, "x", nonempty=True)
        if x.shape[1] != self.in_channels or min(x.shape[2:]) < self.kernel_size:
            raise ValueError(f"x must be (N, {self.in_channels}, H, W) with H, W >= {self.kernel_size}, got "
                             f"{tuple(x.shape)}")
        p = self.patches(x.to(self.weight.device))
        n = p.shape[0]
        mean = p.sum(0, dtype=torch.float64) / n
        cov = torch.zeros(p.shape[1], p.shape[1], dtype=torch.float64, device=p.device)
        for chunk in p.split(1 << 16):  # float64 statistics without a float64 copy of every patch
            c = chunk.double() - mean
            cov += c.T @ c
        cov /= n
        evals, evecs = torch.linalg.eigh(cov)  # ascending
        evals, evecs = evals.flip(0).clamp_min(0), evecs.flip(1)
        w = evecs.T / torch.sqrt(evals + self.eps)[:, None]  # (D, D): one whitened direction per row
        b = -(w @ mean)
        k, c = self.kernel_size, self.in_channels
        self.weight.copy_(torch.cat([w, -w]).reshape(-1, c, k, k).to(self.weight.dtype))
        self.bias.copy_(torch.cat([b, -b]).to(self.bias.dtype))
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.weight, self.bias)

    def extra_repr(self) -> str:
        return (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, eps={self.eps:g} "
                "(frozen filters, trainable bias)")


def _bn_bias_only(c: int, momentum: float) -> nn.BatchNorm2d:
    """BatchNorm whose scale is frozen at 1 (airbench: only the shift is learnt)."""
    bn = nn.BatchNorm2d(c, momentum=momentum)
    bn.weight.requires_grad_(False)
    return bn


class _ConvGroup(nn.Module):
    """airbench's block: conv3x3 -> maxpool2 -> BN -> act -> conv3x3 -> BN -> act."""

    def __init__(self, cin: int, cout: int, act: str, bn_momentum: float):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, padding=1, bias=False)
        self.pool = nn.MaxPool2d(2)
        self.norm1 = _bn_bias_only(cout, bn_momentum)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1, bias=False)
        self.norm2 = _bn_bias_only(cout, bn_momentum)
        self.act = nn.GELU() if act == "gelu" else nn.ReLU(inplace=True)

    def forward(self, x):
        x = self.act(self.norm1(self.pool(self.conv1(x))))
        return self.act(self.norm2(self.conv2(x)))


class AirNet(nn.Module):
    """CIFAR-10 network of airbench94 (Jordan 2024) with a width multiplier.

    Normalize -> :class:`PatchWhitening` (2x2 patches, ``2 * 12`` channels, frozen filters)
    -> GELU -> three groups ``[conv3x3 -> maxpool2 -> BN -> GELU -> conv3x3 -> BN -> GELU]``
    of ``width``, ``f width``, ``f width`` channels (``f = width_factor``, 4 as in
    airbench) -> global max pool -> linear
    (n_classes, no bias) x ``head_scale``.  As in airbench: BatchNorm learns only its shift
    (the scale is frozen at 1, ``requires_grad=False``) and uses momentum 0.4 (airbench's
    0.6 in its own convention); every 3x3 conv starts as the identity on its first
    ``in_channels`` filters (``nn.init.dirac_``, "dirac init"; the others keep torch's
    default); the logits are scaled by 1/9.  ``width=64`` is airbench94's network (widths
    64/256/256, about 2 M parameters); ``width=16, width_factor=6`` (widths 16/96/96, 0.27 M
    parameters, about 16 M multiply-adds per image) is the CPU preset's.

    The whitening filters are random until :meth:`fit_whitening` sets them from training
    images; :func:`freqkit.train_or_load` does that before the first step, and the filters
    are saved in the state_dict.  Dirac init is applied by the constructor only:
    ``reset_parameters()`` of a conv gives torch's random init (what a randomisation check
    expects).

    Args:
        width: channels of the first group, an integer ``>= 1``.
        in_channels: C of the input (3 for CIFAR-10), an integer ``>= 1``.
        n_classes: number of logits, an integer ``>= 2``.
        mean: per-channel means for the Normalize layer (CIFAR-10's by default).
        std: per-channel standard deviations for the Normalize layer (CIFAR-10's by default).
        head_scale: fixed factor on the logits (airbench: 1/9); not checked.
        act: ``"gelu"`` (airbench) or ``"relu"``.
        dirac: start every 3x3 conv as the identity on its first channels (airbench: True).
        whiten_kernel: patch side of the whitening layer, an integer ``>= 1`` (airbench: 2).
        bn_momentum: torch BatchNorm momentum, in ``(0, 1]`` (airbench: 0.4).
        width_factor: the second and third groups have ``width_factor x width`` channels, an
            integer ``>= 1`` (airbench: 4; the CPU preset: 6).
        whiten_eps: the whitening layer's regulariser (:class:`PatchWhitening`'s ``eps``), a
            finite number ``> 0`` (airbench: 5e-4).  It bounds the layer's gain to
            ``whiten_eps ** -0.5``: at 5e-4 the weakest patch direction of CIFAR-10 is
            amplified 30.5x, which let single-step adversarial training (FGSM-RS) overfit
            catastrophically (0% under PGD-10); at 0.1 (gain at most 3.2) it did not (issue 12;
            figures in :mod:`freqkit.training`, "Whitening and adversarial training").

    Shape:
        - input: ``(N, in_channels, H, W)``, pixels in ``[0, 1]``, ``H, W >= 8 + whiten_kernel - 1``
          (32 for CIFAR-10)
        - output: ``(N, n_classes)`` logits

    Raises:
        ValueError: ``width``, ``in_channels`` or ``whiten_kernel`` not an integer ``>= 1``;
            ``n_classes`` not an integer ``>= 2``; ``act`` unknown; ``whiten_eps`` not a finite
            number ``> 0``; ``bn_momentum`` outside
            ``(0, 1]``; ``width_factor`` not an integer ``>= 1``; ``mean``/``std`` rejected by
            :class:`Normalize`.

    Example:
        >>> import torch, freqkit as fk
        >>> _ = torch.manual_seed(0)
        >>> net = fk.AirNet(width=8)
        >>> x = torch.rand(16, 3, 32, 32)
        >>> _ = net.fit_whitening(x)
        >>> net(x).shape
        torch.Size([16, 10])
    """

    def __init__(self, width: int = 16, in_channels: int = 3, n_classes: int = 10, mean=CIFAR10_MEAN,
                 std=CIFAR10_STD, head_scale: float = 1 / 9, act: str = "gelu", dirac: bool = True,
                 whiten_kernel: int = 2, bn_momentum: float = 0.4, width_factor: int = 4, whiten_eps: float = 5e-4):
        super().__init__()
        check_positive_int(width, "width")
        check_positive_int(in_channels, "in_channels")
        check_positive_int(n_classes, "n_classes", 2)
        check_choice(act, "act", ("gelu", "relu"))
        if isinstance(bn_momentum, bool) or not isinstance(bn_momentum, (int, float)) or not 0 < bn_momentum <= 1:
            raise ValueError(f"bn_momentum must be a number in (0, 1], got {bn_momentum!r}")
        check_positive_int(width_factor, "width_factor")
        check_number(whiten_eps, "whiten_eps")
        self.widths = (width, width_factor * width, width_factor * width)
        self.normalize = Normalize(mean, std)
        self.whiten = PatchWhitening(in_channels, whiten_kernel, eps=whiten_eps)
        self.act = nn.GELU() if act == "gelu" else nn.ReLU(inplace=True)
        c = self.whiten.out_channels
        groups = []
        for w in self.widths:
            groups.append(_ConvGroup(c, w, act, bn_momentum))
            c = w
        self.groups = nn.Sequential(*groups)
        self.pool = nn.AdaptiveMaxPool2d(1)
        self.fc = nn.Linear(c, n_classes, bias=False)
        self.head_scale = float(head_scale)
        if dirac:
            self._dirac_init()

    @torch.no_grad()
    def _dirac_init(self) -> None:
        for m in self.groups.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.dirac_(m.weight[:min(m.in_channels, m.out_channels)])

    def fit_whitening(self, x: torch.Tensor) -> "AirNet":
        """Fit the whitening layer to images ``x`` in ``[0, 1]`` (normalised by this model's :class:`Normalize` first).

        Args:
            x: training images, a finite floating-point tensor ``(N, C, H, W)``, ``N >= 1``.

        Returns:
            ``self``.

        Raises:
            TypeError, ValueError: as :meth:`PatchWhitening.fit`.
        """
        with torch.no_grad():
            self.whiten.fit(self.normalize(x.to(self.whiten.weight.device).float()))
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.act(self.whiten(self.normalize(x)))
        return self.fc(self.pool(self.groups(x)).flatten(1)) * self.head_scale


class MirrorAverage(nn.Module):
    """Test-time flip augmentation as a model: the mean of the logits of ``x`` and of its mirror image.

    ``MirrorAverage(net)(x) = (net(x) + net(x.flip(-1))) / 2``: one deterministic,
    differentiable function, so attacks and attributions of the wrapped model analyse exactly
    what its accuracy measures.  Costs two forward passes.  The wrapped network is the
    submodule ``net`` (state_dict keys ``net.*``).

    Args:
        net: a classifier taking ``(N, C, H, W)`` images.

    Shape:
        - input: ``(N, C, H, W)``
        - output: ``(N, n_classes)``

    Raises:
        TypeError: ``net`` is not an ``nn.Module``.
    """

    def __init__(self, net: nn.Module):
        super().__init__()
        if not isinstance(net, nn.Module):
            raise TypeError(f"net must be an nn.Module, got {type(net).__name__}")
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return 0.5 * (self.net(x) + self.net(x.flip(-1)))


class PlantedCNN(nn.Module):
    """A tiny energy detector: Normalize -> conv5x5 -> ReLU -> conv3x3 -> ReLU -> global mean -> linear.

    A band-pass filter followed by a rectifier and a spatial mean is an energy estimate,
    so two convolutions and a global average pool suffice for the planted-frequency task
    (:mod:`freqkit.planted`).  About 2.8 k parameters at the defaults.

    Args:
        in_channels: C of the input, an integer ``>= 1``.
        n_classes: number of logits, an integer ``>= 2``.
        width: channels of both convolutions, an integer ``>= 1``.
        mean: per-channel mean(s) for the Normalize layer (e.g. of the training set).
        std: per-channel standard deviation(s) for the Normalize layer, ``> 0``.

    Shape:
        - input: ``(N, in_channels, H, W)``, any ``H, W``
        - output: ``(N, n_classes)`` logits

    Raises:
        ValueError: ``in_channels`` or ``width`` not an integer ``>= 1``; ``n_classes`` not
            an integer ``>= 2``; ``mean``/``std`` rejected by :class:`Normalize`.
    """

    def __init__(self, in_channels: int = 1, n_classes: int = 2, width: int = 16, mean=0.5, std=0.1):
        super().__init__()
        check_positive_int(in_channels, "in_channels")
        check_positive_int(n_classes, "n_classes", 2)
        check_positive_int(width, "width")
        self.normalize = Normalize(mean, std)
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, width, 5, padding=2), nn.ReLU(),
            nn.Conv2d(width, width, 3, padding=1), nn.ReLU(),
            nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.fc = nn.Linear(width, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.features(self.normalize(x)))


#: The architectures made for each data set (the first is what :func:`build_model` picks for
#: ``arch=None``); build_model itself accepts any architecture for either data set.
ARCHS = {"mnist": ("smallcnn",), "cifar10": ("resnet", "airnet")}
_DEFAULT_ARCH = {"mnist": "smallcnn", "cifar10": "resnet"}
_ARCH_CLASSES = {"smallcnn": SmallCNN, "resnet": ResNetCIFAR, "airnet": AirNet}


def build_model(dataset: str, arch: str | None = None, **kw) -> nn.Module:
    """A fresh (randomly initialised) model for ``dataset`` in {"mnist", "cifar10"}.

    The channel count (1 or 3), the 10 classes and the normalisation statistics
    (:data:`MNIST_MEAN`/:data:`MNIST_STD` or :data:`CIFAR10_MEAN`/:data:`CIFAR10_STD`)
    follow the data set; any architecture can be used with either data set (a SmallCNN
    for CIFAR-10 gets ``image_size=32``).  An :class:`AirNet`'s whitening layer is random
    until :meth:`AirNet.fit_whitening` (training does it).  The weights come from torch's global RNG (seed it
    for reproducible models); the model is on the CPU, in train mode.

    Args:
        dataset: ``"mnist"`` or ``"cifar10"``.
        arch: ``"smallcnn"`` (:class:`SmallCNN`), ``"resnet"`` (:class:`ResNetCIFAR`) or
            ``"airnet"`` (:class:`AirNet`); ``None``: smallcnn for MNIST, resnet for CIFAR-10.
        **kw: further constructor arguments (e.g. ``width``); they override the data set's
            defaults.

    Returns:
        The model, taking ``[0, 1]`` images and returning logits ``(N, 10)``.

    Shape:
        - input: ``(N, 1, 28, 28)`` (MNIST) or ``(N, 3, 32, 32)`` (CIFAR-10)
        - output: ``(N, 10)``

    Raises:
        ValueError: an unknown ``dataset`` or ``arch``, or a constructor argument the model
            rejects.
        TypeError: a keyword the model's constructor does not take.

    Example:
        >>> import torch, freqkit as fk
        >>> _ = torch.manual_seed(0)
        >>> model = fk.build_model("mnist", width=4)
        >>> type(model).__name__, model(torch.rand(2, 1, 28, 28)).shape
        ('SmallCNN', torch.Size([2, 10]))
    """
    check_choice(dataset, "dataset", tuple(_DEFAULT_ARCH))
    arch = _DEFAULT_ARCH[dataset] if arch is None else arch
    check_choice(arch, "arch", tuple(_ARCH_CLASSES))
    if dataset == "mnist":
        base = dict(in_channels=1, n_classes=10, mean=MNIST_MEAN, std=MNIST_STD)
    else:
        base = dict(in_channels=3, n_classes=10, mean=CIFAR10_MEAN, std=CIFAR10_STD)
    if arch == "smallcnn":
        base["image_size"] = 28 if dataset == "mnist" else 32
    base.update(kw)
    return _ARCH_CLASSES[arch](**base)


# ----------------------------------------------------------------------------- running a model

def resolve_device(device="auto") -> torch.device:
    """The torch device to run on: ``"auto"`` picks CUDA when available.

    Args:
        device: ``"auto"`` or ``None`` (CUDA if ``torch.cuda.is_available()``, else the CPU),
            or anything ``torch.device`` accepts (``"cpu"``, ``"cuda"``, ``"cuda:1"``, a
            :class:`torch.device`, an int GPU index).

    Returns:
        A :class:`torch.device` (the index of a CUDA device is not checked against the
        number of GPUs).

    Raises:
        ValueError: ``device`` is not a device specification, or asks for CUDA where CUDA
            is not available.
    """
    if device is None or (isinstance(device, str) and device == "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as e:
        raise ValueError(f"device must be 'auto', 'cpu', 'cuda' or 'cuda:N', got {device!r}") from e
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device={device!r} asked for CUDA, but torch.cuda.is_available() is False")
    return dev


def predict_logits(model: nn.Module, x: torch.Tensor, batch_size: int = 500) -> torch.Tensor:
    """Logits of ``model`` on ``x``, in batches, without gradients.

    Each batch is moved to the model's device (:func:`freqkit._runtime.model_device`); the
    model runs in eval mode and its previous mode is restored afterwards.  What the model
    returns is checked: finite scores ``(B, n_classes)`` (``argmax`` of a NaN logit is 0, so
    NaN would otherwise pass for a prediction).

    Args:
        model: a classifier taking ``(B, C, H, W)`` images (``[0, 1]`` pixels for freqkit's
            models; the range is not checked).
        x: images, a finite floating-point tensor with at least one image.
        batch_size: images per forward pass, an integer ``>= 1``.

    Returns:
        float32 logits on ``x``'s device.

    Shape:
        - x: ``(N, C, H, W)``
        - output: ``(N, n_classes)``

    Raises:
        TypeError: ``x`` not a tensor or not floating-point.
        ValueError: ``x`` not 4-D, not finite, or empty (N = 0; checked before the model
            runs); ``batch_size`` not an integer ``>= 1``; the model returns something other
            than 2-D scores, or NaN/inf (the message names the model's class).

    Example:
        >>> import torch, freqkit as fk
        >>> _ = torch.manual_seed(0); model = fk.build_model("mnist", width=4)
        >>> logits = fk.predict_logits(model, torch.rand(3, 1, 28, 28), batch_size=2)
        >>> logits.shape, logits.dtype, model.training  # train mode restored
        (torch.Size([3, 10]), torch.float32, True)
    """
    check_images(x, "x", nonempty=True)
    check_positive_int(batch_size, "batch_size")
    dev = model_device(model)
    out = []
    with eval_mode(model), torch.no_grad():
        for i in range(0, x.shape[0], batch_size):
            logits = check_model_output(model(x[i:i + batch_size].to(dev)), model)
            out.append(logits.float().to(x.device))
    return torch.cat(out)


def evaluate(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int = 500, device=None) -> float:
    """Top-1 accuracy of ``model`` on images ``x`` and labels ``y``.

    The share of images whose largest logit (:func:`predict_logits`, eval mode, no
    gradients) is at the label.

    Args:
        model: a classifier taking ``(B, C, H, W)`` images with pixels in ``[0, 1]``.
        x: images, a finite floating-point tensor with at least one image, every pixel in
            ``[0, 1]`` (not 0..255: the model normalises inside).
        y: one integer class index per image, each in ``[0, n_classes)`` (``n_classes``: the
            number of logits the model returns).
        batch_size: images per forward pass, an integer ``>= 1``.
        device: move the model there first, in place (``"auto"``, ``"cpu"``, ``"cuda"``...,
            see :func:`resolve_device`); ``None`` leaves it where it is.

    Returns:
        The accuracy, a float in ``[0, 1]``.

    Shape:
        - x: ``(N, C, H, W)``
        - y: ``(N,)``

    Raises:
        TypeError: ``x`` or ``y`` not a tensor, ``x`` not floating-point, or ``y`` not of an
            integer dtype.
        ValueError: ``x`` not 4-D, not finite, empty (N = 0) or with a pixel outside
            ``[0, 1]``; ``y`` not 1-D, of another length, or with a label outside
            ``[0, n_classes)``; ``batch_size`` not an integer ``>= 1``; an invalid
            ``device``; the model returns non-finite scores (see :func:`predict_logits`).
    """
    check_images(x, "x", unit_range=True)  # also refuses an empty batch
    check_tensor(y, "y", ndim=1, floating=False)
    if y.shape[0] != x.shape[0]:
        raise ValueError(f"y must have one label per image ({x.shape[0]}), got {y.shape[0]}")
    y = check_labels(y, x.shape[0], "cpu", "y")
    check_positive_int(batch_size, "batch_size")
    if device is not None:
        model.to(resolve_device(device))
    logits = predict_logits(model, x, batch_size)
    check_label_range(y, logits.shape[1], "y")
    return float((logits.argmax(1).cpu() == y).float().mean())


# ----------------------------------------------------------------------------- pretrained ImageNet classifiers

class WeightsUnavailable(RuntimeError):
    """Pretrained weights could not be had (offline, no cached download, no weights file).

    Raised by :func:`load_imagenet_classifier` and :func:`load_robustbench` instead of ever
    falling back to random weights; a chapter catches it and says plainly that its section
    is skipped.
    A subclass of RuntimeError.
    """


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


_HUB_HASH = re.compile(r"-([a-f0-9]+)\.")  # torch.hub's rule: "resnet18-f37072fd.pth" -> "f37072fd"


def _hub_hash_prefix(filename: str) -> str | None:
    """The leading hex digits of the file's SHA-256 that torchvision puts in its name, or None."""
    m = _HUB_HASH.search(filename)
    return m.group(1) if m else None



def _read_weights(path: Path, what: str, fix: str) -> dict:
    """``torch.load(path, weights_only=True)``: tensors and plain containers only, never code.

    ``what`` names the model the file should fit (``"torchvision resnet18"``), for the message.
    """
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # UnpicklingError (a global outside the allow-list), bad zip, truncation...
        raise ValueError(f"could not read weights file {path} ({type(e).__name__}: {e}); it should hold a "
                         f"{what} state_dict (loaded with weights_only=True, so any code in it was "
                         f"refused, not run). {fix}".rstrip()) from e


def load_imagenet_classifier(arch: str = "resnet18", weights_path=None, download: bool | None = None):
    """A pretrained torchvision ImageNet classifier that takes ``[0, 1]`` images.

    The torchvision model ``arch`` behind a :class:`Normalize` layer with the ImageNet
    statistics (:func:`with_normalization`), in eval mode, on the CPU.  Weights come from, in
    order: ``weights_path`` (a local ``state_dict`` file of the torchvision model, e.g. the
    ``resnet18-f37072fd.pth`` that torchvision downloads; ``module.``/``net.`` prefixes and
    ``state_dict``/``model_state_dict``/``model`` wrappers are stripped); torchvision's
    download cache (``torch.hub.get_dir()/checkpoints``) for its default weights; a download
    of those into that cache (when ``download`` allows it; :func:`torch.hub.download_url_to_file`
    checks the hash while downloading).

    Never random weights, and never code from a file: every file is read with
    ``torch.load(weights_only=True)``, and a cached or downloaded file must first match the
    SHA-256 prefix in its name (torchvision's ``<arch>-<first hex digits of the SHA-256>.pth``;
    a name without one is only loaded ``weights_only``).

    Args:
        arch: a torchvision classification model name (``"resnet18"``, ``"resnet50"``,
            ``"vgg16"``...).
        weights_path: a local state_dict file; ``None`` uses the cache or a download.
        download: allow downloading when the weights are not cached: True, False, or
            ``None`` (allowed unless ``FREQKIT_OFFLINE`` is set, see
            :func:`freqkit._runtime.offline`).  Ignored with ``weights_path``.

    Returns:
        ``nn.Sequential(normalize=Normalize(ImageNet mean, std), net=<torchvision model>)``
        with attributes ``arch``, ``categories`` (the 1,000 class names of torchvision's
        default weights) and ``weights_source`` (the file the weights came from).

    Shape:
        - input: ``(N, 3, H, W)`` in ``[0, 1]`` (224 x 224 as from
          :func:`freqkit.data.load_imagenet_folder`)
        - output: ``(N, 1000)`` logits

    Raises:
        WeightsUnavailable: no ``weights_path``, the weights are not in torchvision's cache,
            and downloading is off (the message says so, and how to provide the file) or
            fails (the message says "could not download" and why).
        FileNotFoundError: ``weights_path`` does not exist.
        ValueError: an unknown ``arch``; a weights file (``weights_path``, or the cached
            file) that cannot be read with ``weights_only=True`` or does not fit the model;
            a cached file whose SHA-256 does not match its name (damaged, or planted): the
            message names the file and says to delete it.
    """
    import torchvision
    from torchvision import models as tvm

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
        fix = ""
    else:
        filename = os.path.basename(default.url)
        path = Path(torch.hub.get_dir()) / "checkpoints" / filename
        prefix = _hub_hash_prefix(filename)
        fix = f"Delete {path} and load again to download it afresh, or pass weights_path= a trusted copy."
        if download is None:
            download = not offline()
        if not path.is_file():
            if not download:
                raise WeightsUnavailable(
                    f"no pretrained weights for {arch}: downloading is off (download=False or FREQKIT_OFFLINE="
                    f"{os.environ.get('FREQKIT_OFFLINE', '')!r}) and {path} is not in torchvision's cache. "
                    f"Pass weights_path= a local state_dict file (e.g. {filename} from {default.url}) or copy "
                    f"it into {path.parent}.")
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                torch.hub.download_url_to_file(default.url, str(path), hash_prefix=prefix, progress=False)
            except Exception as e:  # no network, proxy, disk, a hash mismatch while downloading
                raise WeightsUnavailable(
                    f"no pretrained weights for {arch}: could not download {default.url} ({type(e).__name__}: "
                    f"{e}). Pass weights_path= a local state_dict file, or copy the file into {path.parent}.") from e
        if prefix is not None:
            digest = file_sha256(path)
            if not digest.startswith(prefix):
                raise ValueError(
                    f"weights file {path} is damaged or not torchvision's: its SHA-256 begins {digest[:len(prefix)]}, "
                    f"but its name says {prefix}. It was not loaded. {fix}")
    sd = _read_weights(path, f"torchvision {arch}", fix)
    try:
        net.load_state_dict(_strip_state_dict(sd))
    except (RuntimeError, AttributeError, TypeError) as e:
        raise ValueError(f"weights file {path} does not fit torchvision's {arch}: {e}. {fix}".rstrip()) from e
    model = with_normalization(net, IMAGENET_MEAN, IMAGENET_STD).eval()
    model.arch = arch
    model.categories = list(default.meta.get("categories", []))
    model.weights_source = str(path)
    return model


# ----------------------------------------------------------------------------- RobustBench's model zoo

_RB_DATASETS = ("cifar10", "cifar100", "imagenet")               # the datasets of robustbench.model_zoo.models.model_dicts
_RB_THREAT_MODELS = ("Linf", "L2", "corruptions")                # robustbench 1.1.1's model_zoo.enums.ThreatModel
_RB_INSTALL = "pip install 'freqkit[robustbench]'"
# Entries of the zoo whose checkpoints lack these (top-level) buffers: the architecture's
# constructor sets the input normalisation itself (robustbench's _safe_load_state_dict lets
# exactly these be missing), so they keep the constructor's values.
_RB_NORMALISATION_BUFFERS = frozenset({"mu", "sigma", "mean", "std", "normalize.mean", "normalize.std"})
_RB_IMPORT_LOCK = threading.Lock()


def _robustbench_module(name: str):
    """``robustbench.<name>`` (e.g. ``"model_zoo.models"``), even where ``import robustbench`` fails.

    robustbench 1.1.1's ``__init__`` imports its evaluation code, which needs the module
    ``autoattack`` (that no PyPI package provides: its own dependency ``pyautoattack`` installs
    as ``pyautoattack``) and ``pkg_resources`` (gone from setuptools >= 81), so in an
    environment installed from PyPI ``import robustbench`` (and so ``import
    robustbench.model_zoo``) fails.  The model zoo and the download helper need neither.
    So: the real package is imported first and used when that works (fra31's autoattack
    installed from GitHub, setuptools < 81).  When it fails, Python has already imported (and
    kept in ``sys.modules``) the submodules the ``__init__`` reached, the model zoo among
    them; a missing one is imported below a bare parent module made from robustbench's own
    spec (its ``__path__``; its ``__init__`` not run) that is put into ``sys.modules`` for the
    import and removed after it.  Nothing is faked: the submodules are robustbench's own
    files under their own names, and a later ``import robustbench`` fails exactly as it would
    have.
    """
    full = f"robustbench.{name}"
    with _RB_IMPORT_LOCK, warnings.catch_warnings():
        # timm, torch.jit and pkg_resources announce deprecations when imported; a caller can do nothing about them
        for category in (FutureWarning, DeprecationWarning, UserWarning):
            warnings.simplefilter("ignore", category)
        if full in sys.modules:
            return sys.modules[full]
        if sys.modules.get("robustbench") is None:  # not imported yet (or blocked with None)
            try:
                spec = importlib.util.find_spec("robustbench")
            except (ImportError, ValueError):
                spec = None
            if spec is None or spec.submodule_search_locations is None:
                raise ImportError(f"load_robustbench needs the optional package robustbench (RobustBench's "
                                  f"model zoo), which is not installed: {_RB_INSTALL}")
            try:
                importlib.import_module("robustbench")
            except Exception:  # PyPI's robustbench (no autoattack, no pkg_resources): the bare parent below
                pass
        bare = None
        if sys.modules.get("robustbench") is None:
            bare = importlib.util.module_from_spec(spec)
            sys.modules["robustbench"] = bare
        try:
            return importlib.import_module(full)
        except ImportError as e:  # a dependency of the zoo (timm, geotorch, torchdiffeq, gdown...) is missing
            raise ImportError(f"could not import {full} ({type(e).__name__}: {e}); install robustbench with its "
                              f"dependencies: {_RB_INSTALL}") from e
        finally:
            if bare is not None and sys.modules.get("robustbench") is bare:
                del sys.modules["robustbench"]


def _robustbench_downloader() -> str:
    """The name of ``robustbench.utils``' Google Drive download helper in the installed version.

    RobustBench 1.1.1 (PyPI) has ``download_gdrive(gdrive_id, fname_save)`` (requests); its
    later GitHub versions renamed it ``download_gdrive_new`` (gdown), same arguments.
    """
    rb_utils = _robustbench_module("utils")
    for name in ("download_gdrive_new", "download_gdrive"):
        if callable(getattr(rb_utils, name, None)):
            return name
    raise ImportError(f"robustbench.utils has neither download_gdrive_new nor download_gdrive; "
                      f"install the tested version: {_RB_INSTALL}")


def _robustbench_entry(name: str, dataset: str, threat_model: str) -> dict:
    """The zoo's entry ``{"model": constructor, "gdrive_id": ...}``, after checking the three names."""
    enums = _robustbench_module("model_zoo.enums")
    zoo = _robustbench_module("model_zoo.models").model_dicts
    ds = enums.BenchmarkDataset(dataset)
    tm = enums.ThreatModel(threat_model)
    if tm not in zoo.get(ds, {}):
        raise ValueError(f"threat_model {threat_model!r} has no models for dataset {dataset!r} in RobustBench's "
                         f"zoo; choose one of {sorted(t.value for t in zoo.get(ds, {}))}")
    entries = zoo[ds][tm]
    supported = [n for n, e in entries.items() if isinstance(e.get("gdrive_id"), str) and e["gdrive_id"]]
    if name not in entries:
        close = difflib.get_close_matches(name, list(entries), n=3, cutoff=0.5)
        hint = f"did you mean {close}? " if close else ""
        raise ValueError(f"name {name!r} is not in RobustBench's {dataset} {threat_model} model zoo; {hint}valid "
                         f"names include {supported[:6]} ({len(entries)} in all)")
    entry = entries[name]
    gid = entry.get("gdrive_id")
    if not isinstance(gid, str) or not gid:
        why = ("an ensemble of several checkpoints" if isinstance(gid, list) else
               "its constructor downloads its weights itself (timm/torchvision pretrained=True)")
        raise ValueError(f"name {name!r} ({dataset}, {threat_model}) is not supported by load_robustbench: {why}. "
                         f"Single-checkpoint models are, e.g. {supported[:4]}")
    return entry


def _robustbench_state_dict(sd, model: nn.Module, source: str) -> dict:
    """A RobustBench checkpoint as ``model``'s state_dict (RobustBench's own loader's rules, made strict).

    Unwraps ``last`` (Kireev2021Effectiveness, Andriushchenko2020Understanding), then
    ``state_dict``/``model_state_dict``/``model``; strips the ``module.`` prefix of
    DataParallel; strips or adds ``model.`` (Chen2020Efficient saves it, the ImageNet models
    are ``Sequential(normalize, model)``), whichever matches more of the model's keys.  Only
    the normalisation buffers robustbench tolerates may be missing, and only the keys it
    tolerates (``*.scores`` of the pruned CARD models, ``model_preact_hl1.*``) may be extra.
    """
    while isinstance(sd, dict):
        inner = next((sd[k] for k in ("last", "state_dict", "model_state_dict", "model")
                      if isinstance(sd.get(k), dict)), None)
        if inner is None:
            break
        sd = inner
    if not isinstance(sd, dict) or not sd or not all(isinstance(v, torch.Tensor) for v in sd.values()):
        raise ValueError(f"weights file {source} holds no state_dict (a dict of tensors, possibly under "
                         f"'state_dict' or 'model_state_dict')")
    out = {}
    for k, v in sd.items():
        while k.startswith("module."):
            k = k[len("module."):]
        out[k] = v
    keys = set(model.state_dict())
    variants = [out, {k.removeprefix("model."): v for k, v in out.items()},
                {"model." + k: v for k, v in out.items()}]
    out = max(variants, key=lambda d: len(keys & d.keys()))  # the first on a tie: no change
    missing = sorted(k for k in keys - out.keys() if k not in _RB_NORMALISATION_BUFFERS)
    extra = sorted(k for k in out.keys() - keys
                   if not (k.endswith(".scores") or k.startswith("model_preact_hl1.")))
    if missing or extra:
        raise ValueError(f"weights file {source} does not fit the architecture {type(model).__name__}: "
                         f"missing keys {missing[:5]}{'...' if len(missing) > 5 else ''}, unexpected keys "
                         f"{extra[:5]}{'...' if len(extra) > 5 else ''}")
    return out


def load_robustbench(name: str, dataset: str = "cifar10", threat_model: str = "Linf", weights_path=None,
                     download: bool = True) -> nn.Module:
    """A model of RobustBench's model zoo (Croce et al. 2021), with its trained weights.

    RobustBench (Croce, Andriushchenko, Sehwag, Debenedetti, Flammarion, Chiang, Mittal &
    Hein 2021, "RobustBench: a standardized adversarial robustness benchmark", NeurIPS
    Datasets and Benchmarks) collects adversarially trained (``Linf``, ``L2``) and
    corruption-robust classifiers.  The architecture is the zoo's own, built by the optional
    package ``robustbench`` (1.1.1, ``pip install 'freqkit[robustbench]'``); the weights come,
    in order, from ``weights_path``, from the cache
    ``torch.hub.get_dir()/robustbench/<dataset>/<threat_model>/<name>.pt`` (RobustBench's own
    ``model_dir`` layout, so a ``models/`` folder filled by ``robustbench.utils.load_model``
    can be copied there), or from RobustBench's Google Drive download (``download_gdrive`` in
    1.1.1, ``download_gdrive_new`` later) into that cache, moved there only when complete.
    Every file is read with ``torch.load(weights_only=True)``
    (RobustBench's loader unpickles without it); no hash is checked, as RobustBench publishes
    none.  Checkpoints are taken as RobustBench stores them: ``module.``/``model.`` prefixes
    and ``state_dict``/``model_state_dict``/``last`` wrappers are handled as its loader does,
    but strictly: only the normalisation buffers it tolerates may be missing (they keep the
    constructor's values).  Never random weights.

    Inputs are ``[0, 1]`` pixels, RobustBench's convention, and no freqkit :class:`Normalize`
    is added: a model trained on standardised inputs normalises inside (e.g. Wong2020Fast's
    ``mu``/``sigma`` buffers, the ImageNet models' ``normalize`` layer); the others (e.g.
    "Standard", a WideResNet-28-10) were trained on raw ``[0, 1]`` pixels.

    How robustbench is imported: installed from PyPI, ``import robustbench`` fails (its
    ``__init__`` needs the module ``autoattack``, which its dependency ``pyautoattack`` does
    not provide, and ``pkg_resources``, gone from setuptools >= 81).  So when the real package
    does not import, only the submodules this needs (``robustbench.model_zoo``, and
    ``robustbench.utils`` to download) are imported, below a parent package whose ``__init__``
    is not run and which is removed from ``sys.modules`` again; no module is faked (no
    ``autoattack`` alias) and no setuptools pin is needed.

    Args:
        name: the zoo's name of the model, e.g. ``"Wong2020Fast"`` (PreActResNet-18),
            ``"Standard"`` (WideResNet-28-10), ``"Engstrom2019Robustness"`` (ResNet-50),
            ``"Rice2020Overfitting"`` (WideResNet-34-20), as on robustbench.github.io.
            Ensembles (several checkpoints) and models whose constructor downloads its own
            weights (the XCiT, DeiT and torchvision "Standard_R50" entries) are refused.
        dataset: ``"cifar10"``, ``"cifar100"`` or ``"imagenet"``.
        threat_model: ``"Linf"``, ``"L2"`` or ``"corruptions"``.
        weights_path: a local checkpoint file of that model; ``None`` uses the cache or a
            download.
        download: allow downloading into the cache when the file is not there; even when
            True, ``FREQKIT_OFFLINE`` (see :func:`freqkit._runtime.offline`) forbids it.
            Ignored with ``weights_path``.

    Returns:
        The zoo's ``nn.Module``, in eval mode, on the CPU, with attributes ``arch`` (``name``),
        ``dataset``, ``threat_model`` and ``weights_source`` (the file read).

    Shape:
        - input: ``(N, 3, 32, 32)`` (CIFAR-10/100) or ``(N, 3, 224, 224)`` (ImageNet, resized
          and cropped by the caller) in ``[0, 1]``
        - output: ``(N, 10)``, ``(N, 100)`` or ``(N, 1000)`` logits

    Raises:
        ImportError: robustbench (or a dependency of its zoo: timm, geotorch, torchdiffeq,
            gdown) is not installed; the message says ``pip install 'freqkit[robustbench]'``.
        ValueError: an unknown ``dataset`` or ``threat_model`` (naming the argument and the
            choices), a ``name`` not in that zoo (listing close and valid names) or not
            supported (an ensemble, a self-downloading model); a weights file that cannot be
            read with ``weights_only=True`` or does not fit the architecture.
        WeightsUnavailable: no ``weights_path``, no cached file, and downloading is off
            (``download=False`` or ``FREQKIT_OFFLINE``; the message names the cache file and
            ``weights_path``) or fails (the message says "could not download" and why).
        FileNotFoundError: ``weights_path`` does not exist.
    """
    if not isinstance(name, str) or not name:
        raise ValueError(f"name must be a model name of RobustBench's zoo (e.g. 'Wong2020Fast', 'Standard'), "
                         f"got {name!r}")
    check_choice(dataset, "dataset", _RB_DATASETS)
    check_choice(threat_model, "threat_model", _RB_THREAT_MODELS)
    entry = _robustbench_entry(name, dataset, threat_model)
    folder = threat_model
    if weights_path is not None:
        path = Path(weights_path).expanduser()
        if not path.is_file():
            raise FileNotFoundError(f"weights_path {path} does not exist")
        fix = ""
    else:
        path = Path(torch.hub.get_dir()) / "robustbench" / dataset / folder / f"{name}.pt"
        fix = f"Delete {path} and load again to download it afresh, or pass weights_path= a trusted copy."
        if not path.is_file():
            if not download or offline():
                raise WeightsUnavailable(
                    f"no weights for RobustBench's {name} ({dataset}, {threat_model}): downloading is off "
                    f"(download={download!r}, FREQKIT_OFFLINE={os.environ.get('FREQKIT_OFFLINE', '')!r}) and "
                    f"{path} is not cached. Pass weights_path= a local checkpoint (e.g. from "
                    f"robustbench.utils.load_model's models/{dataset}/{folder}/{name}.pt) or copy it to {path}.")
            download_gdrive = getattr(_robustbench_module("utils"), _robustbench_downloader())
            # Into a private name beside the cache file, moved there only when complete: RobustBench
            # 1.1.1's requests-based helper writes straight into the name it is given, gdown
            # (later versions) into "<name><random>tmp"; either way a failure leaves no cache file.
            part = path.with_name(f".{path.name}.{os.getpid()}.part")
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                download_gdrive(entry["gdrive_id"], part)
                if not part.is_file():
                    raise OSError("the download wrote no file")
                os.replace(part, path)
            except Exception as e:  # no network, Google Drive's quota or confirmation page, disk
                for left in [part, *map(Path, glob.glob(glob.escape(str(part)) + "*"))]:
                    left.unlink(missing_ok=True)
                raise WeightsUnavailable(
                    f"no weights for RobustBench's {name} ({dataset}, {threat_model}): could not download "
                    f"them (Google Drive id {entry['gdrive_id']}; {type(e).__name__}: {e}). Pass weights_path= "
                    f"a local checkpoint, or copy it to {path}.") from e
    sd = _read_weights(path, f"RobustBench {name} ({dataset}, {threat_model})", fix)
    # Building the architecture draws random initial weights, all overwritten: it should not
    # move the caller's seeded global RNG.
    with torch.random.fork_rng(devices=[]):
        model = entry["model"]()
    sd = _robustbench_state_dict(sd, model, f"{path}")
    try:
        model.load_state_dict(sd, strict=False)  # strictness checked above, with robustbench's tolerances
    except (RuntimeError, TypeError) as e:  # a shape mismatch
        raise ValueError(f"weights file {path} does not fit RobustBench's {name}: {e}. {fix}".rstrip()) from e
    model = model.eval()
    model.arch, model.dataset, model.threat_model, model.weights_source = name, dataset, threat_model, str(path)
    return model
