"""Input-transform defenses, and an evaluation that sees the defense.

Input-transform defenses (``nn.Module`` layers placed in front of a model with
:func:`defended`): :class:`LowPassLayer` (differentiable) and :class:`DCTQuantize`
(JPEG-like quantisation; rounding is not differentiable, so it carries a straight-through
backward pass, BPDA, Athalye, Carlini & Wagner 2018, "Obfuscated gradients give a false
sense of security").  :class:`EOT` averages a random model's predictions for the attacks.

:func:`evaluate_defense`: clean accuracy, and robust accuracy under full-, low- and
high-band PGD at the standard budgets (:data:`STANDARD_BUDGETS`), with attacks that *see
the defense*: they run on the whole defended model, through differentiable transforms,
with BPDA through quantisation and expectation over transformation (EOT) where a model is
random; AutoAttack (Croce & Hein 2020) from the authors' implementation
(:func:`reference_autoattack`, the ``pyautoattack`` package of the ``robust`` extra), and,
optionally, the AutoAttack ensemble inside each band (:func:`freqkit.apgd.band_autoattack`).
:func:`autoattack_crosscheck` compares the reference with torchattacks' AutoAttack on the
same model and images, so that a chapter can state the difference once.
:data:`ROBUSTBENCH_REFERENCE` and :data:`MADRY_MNIST_REFERENCE` hold published numbers to
compare with (not measured by freqkit).

Training objectives (adversarial, low-pass, attribution-guided) live in
:mod:`freqkit.objectives`.
"""
from __future__ import annotations

import logging
import math
import re
import time
from collections import OrderedDict
from contextlib import contextmanager, nullcontext
from typing import Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ._distributed import broadcast, checksum, fail_together, gather_in_order, local_batches, world
from ._runtime import cpu_threads, eval_mode
from ._runtime import progress as progress_bar
from ._validate import (
    check_choice, check_images, check_label_range, check_labels, check_mask, check_model_output, check_number,
    check_positive_int, check_tensor,
)
from .apgd import BAND_AUTOATTACK_VERSIONS
from .apgd import band_autoattack as band_aa
from .attacks import minimal_distortion, pgd
from .human import perturbation_ssim, perturbation_visibility
from .models import predict_logits
from .stats import wilson_interval
from .transforms import block_dct2, block_idct2, check_basis, filter_band, frequency_radius, low_high_masks

__all__ = [
    "STANDARD_BUDGETS", "ROBUSTBENCH_REFERENCE", "MADRY_MNIST_REFERENCE", "LowPassLayer", "DCTQuantize",
    "JPEG_LUMINANCE_TABLE", "jpeg_quant_table", "defended", "EOT", "is_randomized", "attack_view",
    "AUTOATTACK_ATTACKS", "AUTOATTACK_VERSIONS", "AUTOATTACK_VERSION_ATTACKS", "reference_autoattack",
    "autoattack_crosscheck", "evaluate_defense", "minimal_perturbation_visibility",
]

#: Standard threat models of the book (RobustBench's CIFAR-10 budgets; MNIST's customary ones).
STANDARD_BUDGETS = {"cifar10": {"linf": 8 / 255, "l2": 0.5}, "mnist": {"linf": 0.3, "l2": 2.0}}

#: Published numbers, NOT measured by freqkit: RobustBench's CIFAR-10 leaderboard entries
#: (Croce et al. 2021, "RobustBench: a standardized adversarial robustness benchmark",
#: model_info/cifar10/{Linf,L2}/*.json of github.com/RobustBench/robustbench), accuracies in %
#: on the 10,000 CIFAR-10 test images; "autoattack" is AutoAttack's robust accuracy.
ROBUSTBENCH_REFERENCE = [
    {"model": "Standard", "threat": "linf", "eps": 8 / 255, "architecture": "WideResNet-28-10",
     "training": "standard", "clean": 94.78, "autoattack": 0.0},
    {"model": "Madry2018Towards", "threat": "linf", "eps": 8 / 255, "architecture": "WideResNet-34-10",
     "training": "PGD-7 adversarial training (Madry et al. 2018)", "clean": 87.14, "autoattack": 44.04},
    {"model": "Wong2020Fast", "threat": "linf", "eps": 8 / 255, "architecture": "ResNet-18",
     "training": "FGSM with random start (Wong et al. 2020)", "clean": 83.34, "autoattack": 43.21},
    {"model": "Engstrom2019Robustness", "threat": "linf", "eps": 8 / 255, "architecture": "ResNet-50",
     "training": "PGD adversarial training (robustness library)", "clean": 87.03, "autoattack": 49.25},
    {"model": "Engstrom2019Robustness", "threat": "l2", "eps": 0.5, "architecture": "ResNet-50",
     "training": "PGD adversarial training (robustness library)", "clean": 90.83, "autoattack": 69.24},
]

#: Published, NOT measured by freqkit: Madry et al. 2018, Table 1 (MNIST, Linf eps 0.3, their
#: PGD-40-trained CNN): natural accuracy and accuracy under their strongest white-box attack
#: (PGD, 100 steps, 20 restarts).  MNIST has no RobustBench leaderboard.
MADRY_MNIST_REFERENCE = {"model": "Madry et al. 2018 MNIST CNN", "threat": "linf", "eps": 0.3, "clean": 98.8,
                         "pgd_100_steps_20_restarts": 89.3}


# ============================================================================ input-transform layers

class LowPassLayer(nn.Module):
    """Input low-pass filter: keep the frequencies with normalised radius ``<= cutoff`` (x Nyquist).

    A linear, differentiable layer, ``filter_band(x, radius <= cutoff, basis)``
    (:func:`freqkit.filter_band`, :func:`freqkit.frequency_radius`): an input-transform
    defense to put in front of a model with :func:`defended`, and the filter of
    :func:`freqkit.lowpass_objective` (after Wang et al. 2019, "High-frequency component
    helps explain the generalization of convolutional neural networks").  The output is not
    clipped to ``[0, 1]``.  The mask is cached per image size and device.

    Args:
        cutoff: largest kept normalised radius, a finite number ``>= 0`` (units of Nyquist;
            radial radii reach ``sqrt(2)``, ring radii stay below 1; 0 keeps only the mean).
        basis: ``"dct"`` (default) or ``"dft"`` (centred, symmetric mask).
        kind: ``"radial"`` (default, ``sqrt(fu^2 + fv^2)``) or ``"ring"`` (``max(fu, fv)``).

    Shape:
        - Input: ``(N, C, H, W)``, floating point.
        - Output: ``(N, C, H, W)``.

    Raises:
        ValueError: ``cutoff`` not a finite number ``>= 0``; ``basis``; ``kind``; (forward)
            an input that is not a 4-D tensor.
        TypeError: (forward) an input that is not floating point.

    Example:
        >>> import torch, freqkit as fk
        >>> lp, x = fk.LowPassLayer(cutoff=0.5), torch.rand(2, 3, 8, 8)
        >>> y = lp(x); tuple(y.shape), int(lp.mask(8, 8).sum())
        ((2, 3, 8, 8), 17)
        >>> torch.allclose(lp(y), y, atol=1e-5)   # filtering twice changes nothing
        True
    """
    def __init__(self, cutoff: float, basis: str = "dct", kind: str = "radial"):
        super().__init__()
        self.cutoff = check_number(cutoff, "cutoff", lo_open=False)
        self.basis = check_basis(basis)
        self.kind = check_choice(kind, "kind", ("radial", "ring"))
        self._masks: dict = {}

    def mask(self, h: int, w: int, device=None) -> torch.Tensor:
        """The kept frequencies on an ``h x w`` grid of ``basis``: ``(H, W)`` bool, cached."""
        key = (h, w, str(device))
        m = self._masks.get(key)
        if m is None:
            m = frequency_radius(h, w, self.basis, self.kind, device) <= self.cutoff
            self._masks[key] = m
        return m

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The low-passed images ``(N, C, H, W)`` (not clipped)."""
        if not isinstance(x, torch.Tensor) or x.dim() != 4:
            raise ValueError(f"LowPassLayer expects images (N, C, H, W), got "
                             f"{tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__}")
        return filter_band(x, self.mask(x.shape[-2], x.shape[-1], x.device), self.basis)

    def extra_repr(self) -> str:
        return f"cutoff={self.cutoff}, basis={self.basis!r}, kind={self.kind!r}"

#: The JPEG standard's example luminance quantisation table (ITU-T T.81, Annex K, Table K.1).
JPEG_LUMINANCE_TABLE = torch.tensor([
    [16, 11, 10, 16, 24, 40, 51, 61], [12, 12, 14, 19, 26, 58, 60, 55],
    [14, 13, 16, 24, 40, 57, 69, 56], [14, 17, 22, 29, 51, 87, 80, 62],
    [18, 22, 37, 56, 68, 109, 103, 77], [24, 35, 55, 64, 81, 104, 113, 92],
    [49, 64, 78, 87, 103, 121, 120, 101], [72, 92, 95, 98, 112, 100, 103, 99]], dtype=torch.float64)

def jpeg_quant_table(quality: int) -> torch.Tensor:
    """The JPEG 8x8 luminance quantisation table scaled to ``quality`` by the IJG libjpeg formula.

    :data:`JPEG_LUMINANCE_TABLE` (ITU-T T.81, Annex K, Table K.1) ``T`` scaled as libjpeg's
    ``jpeg_quality_scaling``: ``scale = 5000 / q`` for ``q < 50``, else ``200 - 2 q``; entries
    ``floor((T scale + 50) / 100)`` clipped to ``[1, 255]`` (quality 50 is ``T`` itself,
    quality 100 all ones).  Steps are on the 0..255 pixel scale.

    Args:
        quality: JPEG quality, an integer in ``1..100``.

    Returns:
        float64 tensor of quantisation steps, integers in ``[1, 255]``.

    Shape:
        - Output: ``(8, 8)``.

    Raises:
        ValueError: ``quality`` not an integer in ``1..100``.

    Example:
        >>> import freqkit as fk
        >>> fk.jpeg_quant_table(50)[0, :4].tolist(), fk.jpeg_quant_table(90)[0, :4].tolist()
        ([16.0, 11.0, 10.0, 16.0], [3.0, 2.0, 2.0, 3.0])
    """
    if isinstance(quality, bool) or not isinstance(quality, int) or not 1 <= quality <= 100:
        raise ValueError(f"quality must be an integer in 1..100, got {quality!r}")
    scale = 5000 / quality if quality < 50 else 200 - 2 * quality
    return torch.clamp(torch.floor((JPEG_LUMINANCE_TABLE * scale + 50) / 100), 1, 255)

class DCTQuantize(nn.Module):
    """JPEG-like quantisation of the 8x8 block DCT coefficients of every channel: an input-transform defense.

    Per channel: ``c = block_dct2(255 x - 128)`` (the orthonormal 8x8 DCT equals JPEG's
    FDCT), ``c_q = round(c / Q) Q``, ``x_q = clamp((block_idct2(c_q) + 128) / 255, 0, 1)``.
    ``Q`` is the JPEG luminance table at ``quality`` (:func:`jpeg_quant_table`; applied to
    each of R, G, B, no colour conversion or chroma subsampling), or ``step``: one number
    (a uniform step on the 0..255 scale) or a ``(block, block)`` matrix.  Images whose
    sides are not multiples of ``block`` (MNIST's 28x28) are padded by edge replication
    (bottom and right) to the next multiple (32) and cropped back.

    ``bpda=True``: the backward pass is the identity (straight-through estimator, the BPDA
    of Athalye, Carlini & Wagner 2018, "Obfuscated gradients give a false sense of
    security": quantisation is close to the identity, so its derivative is approximated by
    1), so gradient attacks see through it.  ``bpda=False``: the honest autograd gradient,
    which is zero (the derivative of ``round``), so a gradient attack sees a flat loss:
    gradient masking, kept to demonstrate the failure.  :func:`attack_view` switches
    ``bpda`` temporarily; :meth:`quantise` is the transform without the gradient trick.

    Args:
        quality: JPEG quality ``1..100`` (needs ``block=8``); give exactly one of
            ``quality`` and ``step``.
        step: quantisation step on the 0..255 scale: a finite number ``> 0`` or a
            ``(block, block)`` tensor of them.
        block: block size, an integer ``>= 2`` (default 8, JPEG's).
        bpda: straight-through backward pass (default ``True``).

    Shape:
        - Input: ``(N, C, H, W)`` in ``[0, 1]``, any ``H``, ``W``.
        - Output: ``(N, C, H, W)`` in ``[0, 1]``.

    Raises:
        ValueError: both or neither of ``quality`` and ``step``; ``quality`` not in
            ``1..100`` or with ``block != 8``; ``step`` not ``> 0`` and finite everywhere,
            not 2-D or not ``(block, block)``; ``block`` not an integer ``>= 2``; ``bpda``
            not a bool; (forward) an input that is not a 4-D tensor.

    Example:
        >>> import torch, freqkit as fk
        >>> q, x = fk.DCTQuantize(quality=50), torch.rand(1, 3, 28, 28, requires_grad=True)
        >>> xq = q(x); tuple(xq.shape), bool(xq.min() >= 0 and xq.max() <= 1)
        ((1, 3, 28, 28), True)
        >>> xq.sum().backward(); bool((x.grad == 1).all())   # BPDA: the identity's gradient
        True
    """
    def __init__(self, quality: int | None = None, step=None, block: int = 8, bpda: bool = True):
        super().__init__()
        check_positive_int(block, "block", 2)
        if (quality is None) == (step is None):
            raise ValueError("give exactly one of quality (1..100, JPEG luminance table) or step (quantisation step)")
        if quality is not None:
            if block != 8:
                raise ValueError(f"quality uses the 8x8 JPEG table: block must be 8, got {block}; give step instead")
            q = jpeg_quant_table(quality)
        elif isinstance(step, torch.Tensor):
            check_tensor(step, "step", ndim=2, floating=False)
            if tuple(step.shape) != (block, block):
                raise ValueError(f"step must be a number or a ({block}, {block}) matrix, got shape {tuple(step.shape)}")
            q = step.double()
        else:
            q = torch.full((block, block), check_number(step, "step"), dtype=torch.float64)
        if not bool((q > 0).all()) or not bool(torch.isfinite(q).all()):
            raise ValueError("step must be finite and > 0 everywhere")
        if not isinstance(bpda, bool):
            raise ValueError(f"bpda must be True or False, got {bpda!r}")
        self.quality, self.block, self.bpda = quality, block, bpda
        self.register_buffer("table", q.float())

    def quantise(self, x: torch.Tensor) -> torch.Tensor:
        """The quantised images ``(N, C, H, W)`` in ``[0, 1]``, without the gradient trick.

        ``round`` has zero derivative, so no gradient flows through this.  Raises ValueError
        for an input that is not a 4-D tensor.
        """
        if not isinstance(x, torch.Tensor) or x.dim() != 4:
            raise ValueError(f"DCTQuantize expects images (N, C, H, W), got "
                             f"{tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__}")
        h, w = x.shape[-2:]
        b = self.block
        ph, pw = (-h) % b, (-w) % b
        v = x * 255.0 - 128.0
        if ph or pw:
            v = F.pad(v, (0, pw, 0, ph), mode="replicate")
        coef = block_dct2(v, b)
        q = self.table.to(device=coef.device, dtype=coef.dtype).repeat(coef.shape[-2] // b, coef.shape[-1] // b)
        rec = block_idct2(torch.round(coef / q) * q, b)[..., :h, :w]
        return ((rec + 128.0) / 255.0).clamp(0.0, 1.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The quantised images; with ``bpda`` the gradient passes through as the identity's."""
        xq = self.quantise(x)
        if self.bpda:
            # Straight-through: the value of xq, the gradient of the identity.
            return x + (xq - x).detach()
        return xq

    def extra_repr(self) -> str:
        what = f"quality={self.quality}" if self.quality is not None else "step=custom"
        return f"{what}, block={self.block}, bpda={self.bpda}"

def defended(model: nn.Module, *layers: nn.Module) -> nn.Sequential:
    """Put input transforms in front of a model: ``nn.Sequential(layer_0, ..., layer_k, model)``.

    The children are named ``defense0``, ``defense1``, ... and ``model``.  The layers are
    moved (in place, ``nn.Module.to``) to the device of the model's first parameter, so
    buffers such as :class:`DCTQuantize`'s table follow the model; a model without
    parameters leaves them where they are.  The defended model is attacked as a whole by
    :func:`evaluate_defense`.

    Args:
        model: the classifier, an ``nn.Module``.
        *layers: ``nn.Module`` input transforms (e.g. :class:`LowPassLayer`,
            :class:`DCTQuantize`), applied in order; none gives ``Sequential(model)``.

    Returns:
        ``nn.Sequential`` holding the given layer and model objects (not copies).

    Shape:
        - Input: the model's input, ``(N, C, H, W)``.
        - Output: the model's output, e.g. logits ``(N, K)``.

    Raises:
        TypeError: ``model`` or a layer not an ``nn.Module``.

    Example:
        >>> import torch, freqkit as fk
        >>> net = fk.defended(torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 3)), fk.LowPassLayer(0.5))
        >>> [name for name, _ in net.named_children()], tuple(net(torch.rand(2, 1, 8, 8)).shape)
        (['defense0', 'model'], (2, 3))
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be an nn.Module, got {type(model).__name__}")
    mods = OrderedDict()
    where = next(iter(model.parameters()), None)
    for i, layer in enumerate(layers):
        if not isinstance(layer, nn.Module):
            raise TypeError(f"layers[{i}] must be an nn.Module (e.g. LowPassLayer, DCTQuantize), "
                            f"got {type(layer).__name__}")
        # The layers' buffers (e.g. DCTQuantize's table) follow the model onto its device.
        mods[f"defense{i}"] = layer if where is None else layer.to(where.device)
    mods["model"] = model
    return nn.Sequential(mods)

class EOT(nn.Module):
    """Expectation over transformation (Athalye et al. 2018) for a random model.

    After Athalye, Carlini & Wagner 2018, "Obfuscated gradients give a false sense of
    security".  ``forward(x)`` returns ``log(mean_k softmax(model(x)))`` over ``n_samples``
    forward passes (float32), so the cross-entropy an attack maximises is ``-log E[p_y]``
    and its gradient averages over the model's randomness.  For a deterministic model it
    equals ``log_softmax(model(x))`` (same argmax as the logits).

    Args:
        model: the (random) classifier returning logits.
        n_samples: forward passes averaged, an integer ``>= 1`` (default 8).

    Shape:
        - Input: ``(N, C, H, W)``.
        - Output: ``(N, K)`` log-probabilities.

    Raises:
        ValueError: ``n_samples`` not an integer ``>= 1``; (forward) ``model`` returning
            anything but finite ``(N, K)`` logits (the message names it).
    """
    def __init__(self, model: nn.Module, n_samples: int = 8):
        super().__init__()
        check_positive_int(n_samples, "n_samples")
        self.model, self.n_samples = model, n_samples

    def forward(self, x):
        """``log(mean_k softmax(model(x)))`` over ``n_samples`` draws."""
        logp = torch.stack([torch.log_softmax(check_model_output(self.model(x), self.model).float(), 1)
                            for _ in range(self.n_samples)])
        return torch.logsumexp(logp, 0) - math.log(self.n_samples)

@torch.no_grad()
def is_randomized(model: nn.Module, x: torch.Tensor) -> bool:
    """Whether two eval-mode forward passes of ``model`` on ``x`` differ (a random defense).

    The outputs are compared exactly (``torch.equal``), without gradients; the model's mode
    is restored afterwards.  :func:`evaluate_defense` attacks a randomised model through
    :class:`EOT`.

    Args:
        model: the model.
        x: a few inputs, on the model's device.

    Returns:
        ``bool``.

    Raises:
        ValueError: ``model`` returning anything but finite ``(N, K)`` scores (NaN never
            equals itself, so a NaN model would otherwise look random; the message names it).
    """
    with eval_mode(model):
        a, b = check_model_output(model(x), model), check_model_output(model(x), model)
    return not torch.equal(a, b)

@contextmanager
def attack_view(model: nn.Module, bpda: bool = True):
    """Temporarily switch every :class:`DCTQuantize` in ``model`` to ``bpda`` (restored on exit).

    A context manager: ``with attack_view(model) as n: ...`` runs with BPDA on (``bpda=True``)
    or off in every quantisation layer of ``model`` (found with ``model.modules()``), and
    restores each layer's own setting on exit, also after an exception.

    Args:
        model: a (defended) model.
        bpda: the setting during the block (default ``True``: gradients see through the
            quantisation).

    Yields:
        int: the number of :class:`DCTQuantize` layers found (0 if none).
    """
    layers = [m for m in model.modules() if isinstance(m, DCTQuantize)]
    before = [m.bpda for m in layers]
    try:
        for m in layers:
            m.bpda = bpda
        yield len(layers)
    finally:
        for m, b in zip(layers, before):
            m.bpda = b


# ============================================================================ evaluation

def _infer_dataset(x: torch.Tensor) -> str | None:
    shape = tuple(x.shape[1:])
    return {(3, 32, 32): "cifar10", (1, 28, 28): "mnist"}.get(shape)

def _predict(model, x, batch_size):
    return check_model_output(predict_logits(model, x, batch_size), model).argmax(1)

def _acc_record(correct: torch.Tensor) -> dict:
    n = int(correct.numel())
    k = int(correct.sum())
    lo, hi = wilson_interval(k, n)
    return {"accuracy": k / n, "ci_lo": lo, "ci_hi": hi, "n": n}

#: Attack names of the reference AutoAttack (``pyautoattack``, Croce & Hein 2020) usable in a
#: custom list, and its versions.
AUTOATTACK_ATTACKS = ("apgd-ce", "apgd-dlr", "fab", "square", "apgd-t", "fab-t")
AUTOATTACK_VERSIONS = ("standard", "plus", "rand")
#: The reference's attacks of each version (pyautoattack 0.2.0, ``AutoAttack._set_version``).
AUTOATTACK_VERSION_ATTACKS = {"standard": ("apgd-ce", "apgd-t", "fab-t", "square"),
                              "plus": ("apgd-ce", "apgd-dlr", "fab", "square", "apgd-t", "fab-t"),
                              "rand": ("apgd-ce", "apgd-dlr")}


def _check_aa_version(version, name: str = "version"):
    """A version name, or a de-duplicated list of the reference's attack names."""
    if isinstance(version, str):
        return check_choice(version, name, AUTOATTACK_VERSIONS)
    if isinstance(version, (list, tuple)) and version and all(isinstance(a, str) for a in version):
        for a in version:
            check_choice(a, f"{name} entry", AUTOATTACK_ATTACKS)
        return list(dict.fromkeys(version))
    raise ValueError(f"{name} must be one of {list(AUTOATTACK_VERSIONS)} or a non-empty list of "
                     f"{list(AUTOATTACK_ATTACKS)} (e.g. ['apgd-ce', 'apgd-t']), got {version!r}")


def _aa_inputs(model, x, y, eps, norm, batch_size):
    check_images(x, "x", unit_range=True)
    y = check_labels(y, x.shape[0], x.device)
    norm = check_choice(norm.lower() if isinstance(norm, str) else norm, "norm", ("linf", "l2"))
    eps = check_number(eps, "eps")
    check_positive_int(batch_size, "batch_size")
    if not callable(model):
        raise TypeError(f"model must be a callable classifier (an nn.Module), got {type(model).__name__}")
    return y, norm, eps


def _perturbation_check(x, x_adv, eps, norm, who):
    diff = (x_adv - x).flatten(1)
    size = diff.abs().amax(1) if norm == "linf" else diff.norm(dim=1)
    if bool((size > eps * (1 + 1e-4) + 1e-6).any()) or float(x_adv.min()) < -1e-6 or float(x_adv.max()) > 1 + 1e-6:
        raise RuntimeError(f"{who} returned images outside [0, 1] or perturbations larger than eps={eps:.4g} "
                           f"(max {float(size.max()):.4g}); result discarded")
    return float(size.max())


class _Capture(logging.Handler):
    """Collects the reference's log: its warnings (its checks) and its robust accuracy after each attack."""

    def __init__(self):
        super().__init__(logging.DEBUG)
        self.warnings, self.after = [], {}

    def emit(self, record):
        msg = record.getMessage()
        if record.levelno >= logging.WARNING:
            self.warnings.append(msg)
        hit = re.match(r"robust accuracy after (\S+): ([0-9.]+)%", msg)
        if hit:
            self.after[hit.group(1).lower()] = float(hit.group(2)) / 100.0


@contextmanager
def _captured(logger_name: str):
    """Route a logger's records (debug included) to a :class:`_Capture` only, restoring it afterwards."""
    log = logging.getLogger(logger_name)
    cap, before = _Capture(), (log.level, log.propagate)
    log.addHandler(cap)
    log.setLevel(logging.DEBUG)
    log.propagate = False
    try:
        yield cap
    finally:
        log.removeHandler(cap)
        log.setLevel(before[0])
        log.propagate = before[1]


def reference_autoattack(model: nn.Module, x: torch.Tensor, y: torch.Tensor, eps: float, norm: str = "linf",
                         version="standard", seed: int = 0, batch_size: int = 250, return_adv: bool = False) -> dict:
    """Robust accuracy under the reference AutoAttack (the authors' implementation, ``pyautoattack``).

    Croce & Hein 2020, "Reliable evaluation of adversarial robustness with an ensemble of
    diverse parameter-free attacks": ``pyautoattack`` 0.2.0 (the package of
    github.com/fra31/auto-attack; it installs the module ``pyautoattack``), run with
    ``run_standard_evaluation``: APGD-CE, APGD-T (9 targets), FAB-T and Square
    (``"standard"``), the ``"plus"`` ensemble, ``"rand"`` (APGD-CE and APGD-DLR with 20 EOT
    draws, for random defenses), or a list of its attacks.  A list runs with the standard
    version's settings (APGD-CE 1 restart, APGD-T and FAB-T 9 targets, Square 5,000
    queries; the reference's constructor would otherwise give APGD-CE 5 restarts).  The
    number of target classes is capped at ``K - 1``.  The model is attacked as given (for a
    defense with a non-differentiable or random step, pass the BPDA/EOT view, as
    :func:`evaluate_defense` does), in eval mode.

    Args:
        model: classifier on ``[0, 1]`` images returning logits ``(N, K)``.
        x: images ``(N, C, H, W)`` in ``[0, 1]``, at least one, on the model's device.
        y: labels, integers in ``[0, K)``.
        eps: radius, a finite number ``> 0``.
        norm: ``"linf"`` (default) or ``"l2"``.
        version: ``"standard"`` (default), ``"plus"``, ``"rand"``, or a list of
            :data:`AUTOATTACK_ATTACKS` (e.g. ``["apgd-ce", "apgd-t"]``).
        seed: the reference's seed (each attack starts from it).
        batch_size: images per batch, ``>= 1`` (the reference's default 250).
        return_adv: also return the adversarial images (``"x_adv"``, a tensor).

    Returns:
        A JSON-ready dict (plus ``x_adv`` with ``return_adv``): ``robust`` (list of ``N``
        bools: classified correctly after every attack, by ``model`` on the returned images),
        ``accuracy``, ``ci_lo``, ``ci_hi`` (Wilson 95%), ``n``, ``clean_accuracy``,
        ``after`` (``{attack: robust accuracy after it}``, the reference's own count),
        ``version``, ``attacks``, ``eps``, ``norm``, ``seed``, ``max_perturbation``,
        ``warnings`` (the reference's checks: randomness, zero gradients, Square beating the
        gradient attacks, ...), ``implementation`` (``"pyautoattack 0.2.0 (reference, ...)"``)
        and ``seconds``.

    Shape:
        - x: ``(N, C, H, W)``; y: ``(N,)``.

    Raises:
        ImportError: ``pyautoattack`` not installed (the ``robust`` extra:
            ``pip install --no-deps pyautoattack==0.2.0``).
        TypeError: ``x`` not floating point, ``y`` not integer, ``model`` not callable.
        ValueError: ``x`` not 4-D, outside ``[0, 1]`` or empty; ``y`` of the wrong shape or
            outside ``[0, K)``; ``eps`` not ``> 0``; ``norm``; ``version`` unknown;
            ``batch_size`` not an integer ``>= 1``; the model returning non-finite logits.
        RuntimeError: the reference returned images outside ``[0, 1]`` or the eps-ball.
    """
    y, norm, eps = _aa_inputs(model, x, y, eps, norm, batch_size)
    version = _check_aa_version(version)
    if not isinstance(return_adv, bool):
        raise ValueError(f"return_adv must be True or False, got {return_adv!r}")
    import pyautoattack
    from pyautoattack import AutoAttack

    t0 = time.perf_counter()
    with eval_mode(model), torch.no_grad():
        clean = check_model_output(predict_logits(model, x, batch_size), model)
    check_label_range(y, clean.shape[1])
    k_cls = clean.shape[1]
    custom = not isinstance(version, str)
    aa = AutoAttack(model, norm="Linf" if norm == "linf" else "L2", eps=float(eps), seed=int(seed),
                    version="custom" if custom else version, attacks=list(version) if custom else None,
                    device=x.device)
    if custom:       # the standard version's settings for the attacks listed
        aa.apgd.n_restarts, aa.apgd_targeted.n_restarts, aa.fab.n_restarts = 1, 1, 1
        aa.apgd_targeted.n_target_classes, aa.fab.n_target_classes, aa.square.n_queries = 9, 9, 5000
    aa.apgd_targeted.n_target_classes = min(aa.apgd_targeted.n_target_classes, k_cls - 1)
    aa.fab.n_target_classes = min(aa.fab.n_target_classes, k_cls - 1)
    with _captured("auto-attack") as cap, eval_mode(model), cpu_threads(1 if x.device.type == "cpu" else None):
        x_adv, _ = aa.run_standard_evaluation(x, y, batch_size=batch_size)
    x_adv = x_adv.detach()
    size = _perturbation_check(x, x_adv, eps, norm, "the reference AutoAttack")
    with eval_mode(model), torch.no_grad():
        pred = check_model_output(predict_logits(model, x_adv, batch_size), model).argmax(1)
    clean_ok = clean.argmax(1) == y
    robust = (pred == y) & clean_ok
    rec = {"robust": robust.cpu().tolist(), **_acc_record(robust), "clean_accuracy": int(clean_ok.sum()) / len(y),
           "version": "custom" if custom else version, "attacks": list(aa.attacks_to_run), "eps": eps, "norm": norm,
           "seed": int(seed), "after": cap.after, "max_perturbation": size, "warnings": cap.warnings,
           "implementation": f"pyautoattack {pyautoattack.__version__} (reference, Croce & Hein 2020)",
           "seconds": time.perf_counter() - t0}
    if return_adv:
        rec["x_adv"] = x_adv
    return rec


def _torchattacks_ensemble(torchattacks, model, names, norm, eps, n_classes, seed):
    """The attacks of torchattacks' AutoAttack (3.5.1) for a list of reference names, as it builds them."""
    kw = dict(eps=eps, norm="Linf" if norm == "linf" else "L2", seed=seed, verbose=False)
    make = {"apgd-ce": lambda: torchattacks.APGD(model, loss="ce", n_restarts=1, **kw),
            "apgd-dlr": lambda: torchattacks.APGD(model, loss="dlr", n_restarts=1, **kw),
            "apgd-t": lambda: torchattacks.APGDT(model, n_classes=n_classes, n_restarts=1, **kw),
            "fab": lambda: torchattacks.FAB(model, n_classes=n_classes, n_restarts=1, **kw),
            "fab-t": lambda: torchattacks.FAB(model, multi_targeted=True, n_classes=n_classes, n_restarts=1, **kw),
            "square": lambda: torchattacks.Square(model, n_queries=5000, n_restarts=1, **kw)}
    atks = [make[a]() for a in names]
    return atks[0] if len(atks) == 1 else torchattacks.MultiAttack(atks)


def autoattack_crosscheck(model: nn.Module, x: torch.Tensor, y: torch.Tensor, eps: float, norm: str = "linf",
                          version="standard", seed: int = 0, batch_size: int = 250) -> dict:
    """The reference AutoAttack against torchattacks' AutoAttack on the same model and images.

    Runs :func:`reference_autoattack` (``pyautoattack``, the authors' code) and
    torchattacks' ``AutoAttack`` (3.5.1; for a list of attacks, the same attacks built as
    torchattacks' ``AutoAttack`` builds them, chained with its ``MultiAttack``) with the same
    ``eps``, norm and seed, and reports both robust accuracies and their difference, so that
    a chapter can state it once.  The two are not the same attack: torchattacks' AutoAttack
    leaves APGD, APGD-T and FAB at its default 10 iterations (the reference runs 100), so
    it is expected to overstate robust accuracy on a robust model.

    Args:
        model: classifier on ``[0, 1]`` images returning logits ``(N, K)`` (eval mode).
        x: images ``(N, C, H, W)`` in ``[0, 1]`` on the model's device.
        y: labels in ``[0, K)``.
        eps: radius, a finite number ``> 0``.
        norm: ``"linf"`` (default) or ``"l2"``.
        version: as :func:`reference_autoattack` (both implementations get it).
        seed: both implementations' seed.
        batch_size: images per batch, ``>= 1``.

    Returns:
        JSON-ready dict: ``reference`` (the record of :func:`reference_autoattack`),
        ``torchattacks`` (``robust``, ``accuracy``, ``ci_lo``, ``ci_hi``, ``n``,
        ``implementation``, ``settings``, ``seconds``), ``difference_pp`` (torchattacks minus
        reference robust accuracy, percentage points), ``disagreements`` (images robust under
        one and not the other), ``robust_only_under_torchattacks``,
        ``robust_only_under_reference``, ``n``, ``eps``, ``norm``, ``version``.

    Shape:
        - x: ``(N, C, H, W)``; y: ``(N,)``.

    Raises:
        ImportError: ``pyautoattack`` or ``torchattacks`` not installed.
        TypeError, ValueError, RuntimeError: as :func:`reference_autoattack`.
    """
    y, norm, eps = _aa_inputs(model, x, y, eps, norm, batch_size)
    version = _check_aa_version(version)
    import torchattacks

    ref = reference_autoattack(model, x, y, eps, norm, version, seed, batch_size)
    names = AUTOATTACK_VERSION_ATTACKS[version] if isinstance(version, str) else version
    t0 = time.perf_counter()
    with eval_mode(model), torch.no_grad():
        clean = check_model_output(predict_logits(model, x, batch_size), model)
    n_classes = int(clean.shape[1])
    with eval_mode(model), cpu_threads(1 if x.device.type == "cpu" else None):
        if isinstance(version, str):
            atk = torchattacks.AutoAttack(model, norm="Linf" if norm == "linf" else "L2", eps=float(eps),
                                          version=version, n_classes=n_classes, seed=seed)
        else:
            atk = _torchattacks_ensemble(torchattacks, model, names, norm, float(eps), n_classes, seed)
        x_adv = torch.cat([atk(x[i:i + batch_size], y[i:i + batch_size]).detach()
                           for i in range(0, x.shape[0], batch_size)])
    _perturbation_check(x, x_adv, eps, norm, "torchattacks' AutoAttack")
    with eval_mode(model), torch.no_grad():
        pred = check_model_output(predict_logits(model, x_adv, batch_size), model).argmax(1)
    robust_ta = (pred == y) & (clean.argmax(1) == y)
    robust_ref = torch.tensor(ref["robust"], device=robust_ta.device)
    ta = {"robust": robust_ta.cpu().tolist(), **_acc_record(robust_ta),
          "implementation": f"torchattacks {torchattacks.__version__}",
          "settings": "AutoAttack of torchattacks: APGD/APGD-T/FAB at their default 10 iterations "
                      "(the reference: 100), Square 5,000 queries",
          "seconds": time.perf_counter() - t0}
    return {"reference": ref, "torchattacks": ta,
            "difference_pp": 100.0 * (ta["accuracy"] - ref["accuracy"]),
            "disagreements": int((robust_ta != robust_ref).sum()),
            "robust_only_under_torchattacks": int((robust_ta & ~robust_ref).sum()),
            "robust_only_under_reference": int((robust_ref & ~robust_ta).sum()),
            "n": int(x.shape[0]), "eps": eps, "norm": norm,
            "version": version if isinstance(version, str) else list(version)}


def _run_autoattack(model, x, y, norm, eps, version, seed, batch_size):
    """:func:`reference_autoattack` as a status record: ok, unavailable (not installed) or failed."""
    try:
        import pyautoattack
        del pyautoattack
    except Exception as e:  # the optional 'attacks' extra
        return {"status": "unavailable", "error": f"pyautoattack could not be imported ({type(e).__name__}: {e}); "
                                                  "install the 'attacks' extra: pip install --no-deps "
                                                  "pyautoattack==0.2.0"}
    try:
        rec = reference_autoattack(model, x, y, eps, norm, version, seed, batch_size)
    except Exception as e:
        return {"status": "failed", "error": f"{type(e).__name__}: {e}"}
    return {"status": "ok", **rec}


def _check_band_aa_version(version):
    if isinstance(version, str):
        return check_choice(version, "band_autoattack", tuple(BAND_AUTOATTACK_VERSIONS))
    if isinstance(version, (list, tuple)) and version and all(isinstance(a, str) for a in version):
        for a in version:
            check_choice(a, "band_autoattack entry", ("apgd-ce", "apgd-dlr", "apgd-t"))
        return list(dict.fromkeys(version))
    raise ValueError(f"band_autoattack must be one of {list(BAND_AUTOATTACK_VERSIONS)} or a non-empty list of "
                     f"'apgd-ce', 'apgd-dlr', 'apgd-t', got {version!r}")


def evaluate_defense(model: nn.Module, x: torch.Tensor, y: torch.Tensor, dataset: str | None = None,
                     budgets: Mapping | None = None, bands: Mapping | Sequence | None = ("full", "low", "high"),
                     steps: int = 20, restarts: int = 1, step_size_factor: float = 2.5, adaptive: bool = True,
                     eot_samples: int = 8, autoattack=None, autoattack_n: int | None = None,
                     band_autoattack=None, band_autoattack_n: int | None = None, band_autoattack_steps: int = 100,
                     batch_size: int = 256, seed: int = 0, progress: bool = True) -> dict:
    """Clean and robust accuracy of ``model`` (a defended model or a bare one) on ``x``, ``y``.

    Attacks: for every norm of ``budgets`` and every band (``"full"``: unconstrained;
    ``"low"``/``"high"``: the lower/upper half of the DCT coefficients by radius,
    :func:`freqkit.low_high_masks`; or a ``{name: (H, W) mask or None}`` dict),
    :func:`freqkit.pgd` with ``steps`` steps of ``step_size_factor * eps / steps``, a random
    start and ``restarts`` restarts, in batches of ``batch_size`` (batch ``i`` seeded
    ``seed + i``).  An image is robust if it is classified correctly both clean and after
    the attack.  The data are moved to the device of the model's first parameter.

    ``adaptive=True`` (default) makes the attacks *see the defense*: they run on the whole
    ``model``, every :class:`DCTQuantize` in it switched to BPDA (:func:`attack_view`;
    Athalye, Carlini & Wagner 2018), and a model whose eval-mode output is random
    (:func:`is_randomized` on the first 8 images) attacked through :class:`EOT` with
    ``eot_samples`` draws.  ``adaptive=False`` attacks the model exactly as given (e.g.
    quantisation without BPDA: gradient masking, to show what it hides).  Optionally
    AutoAttack (Croce & Hein 2020, "Reliable evaluation of adversarial robustness with an
    ensemble of diverse parameter-free attacks"), the authors' implementation
    (:func:`reference_autoattack`, ``pyautoattack``), on the same attack view; and
    optionally, next to band PGD, every band attacked with the band-limited AutoAttack
    ensemble (:func:`freqkit.apgd.band_autoattack`: APGD-CE and APGD-T inside the band).

    Under ``torch.distributed`` (a process group initialised, e.g. by ``torchrun``) the PGD
    attacks, the bulk of the cost at the defaults, are split by rank in whole batches
    (:func:`freqkit._distributed.local_batches` with ``whole_batches``: the batches and
    seeds of one process), the clean predictions likewise, and every rank returns the full
    record; the gradient alarm and the (optional) AutoAttack runs are computed whole on every
    rank.

    Args:
        model: the (defended) classifier, an ``nn.Module`` on ``[0, 1]`` images; everything
            runs in eval mode and every submodule's own mode is restored afterwards.
        x: images in ``[0, 1]``, at least one.
        y: integer class labels, one per image (a float tensor is refused: it is no class).
        dataset: ``"cifar10"`` or ``"mnist"``, the budgets' data set when ``budgets`` is
            ``None``; default ``None``: inferred from the image shape (3x32x32 CIFAR-10,
            1x28x28 MNIST).  Ignored when ``budgets`` is given.
        budgets: ``{norm: eps}`` with norms ``"linf"``/``"l2"`` and radii ``> 0``; default
            ``None``: :data:`STANDARD_BUDGETS` of ``dataset``.
        bands: a non-empty sequence of ``"full"``, ``"low"``, ``"high"`` (default all
            three), a non-empty ``{name: (H, W) DCT mask or None}`` dict, or ``None``
            (``("full",)``).
        steps: PGD steps, ``>= 1``.
        restarts: PGD restarts, ``>= 1``.
        step_size_factor: step ``step_size_factor * eps / steps``, ``> 0`` (default 2.5).
        adaptive: attacks that see the defense (above), a bool.
        eot_samples: EOT draws for a random model, ``>= 1``.
        autoattack: ``None`` (default, not run), ``"standard"``, ``"plus"``, ``"rand"`` or a
            list of the reference's attacks (e.g. ``["apgd-ce", "apgd-t"]``, the cpu
            profile's): the reference AutoAttack (:func:`reference_autoattack`), run for
            each norm on the attack view (BPDA, EOT).
        autoattack_n: AutoAttack on the first ``autoattack_n`` images (``>= 1``); default
            ``None``: all.
        band_autoattack: ``None`` (default, not run), or a version of
            :func:`freqkit.apgd.band_autoattack` (``"standard"``: APGD-CE + APGD-T,
            ``"plus"``, ``"rand"``, or a list of ``"apgd-ce"``, ``"apgd-dlr"``,
            ``"apgd-t"``): every norm and band of the PGD attacks attacked again with the
            band-limited AutoAttack ensemble, on the same attack view.  Off by default (it
            costs about ``10 x band_autoattack_steps`` gradient steps per image).
        band_autoattack_n: band AutoAttack on the first ``band_autoattack_n`` images
            (``>= 1``); default ``None``: all.
        band_autoattack_steps: APGD iterations per run, ``>= 1`` (default 100, AutoAttack's).
        batch_size: images per attack and per evaluation batch, ``>= 1``.
        seed: seed of the attacks.
        progress: show a progress bar over the attacks (on a terminal).

    Returns:
        A JSON-ready dict:

        * ``clean``: ``accuracy``, Wilson 95% ``ci_lo``/``ci_hi``, ``n``;
          ``clean_correct``: list of ``N`` bools;
        * ``attacks``: ``{"<norm>/<band>": {norm, band, eps, accuracy, ci_lo, ci_hi, n,
          robust (list of N bools), n_coefficients, out_of_band_max, budget_used (median of
          ``||delta|| / eps`` over the robust images: far below 1 means the band barely fits
          in the ``[0, 1]`` box, so the attack, not the model, failed; None if no image is
          robust), box_limited_share (share of the robust images with ``||delta|| < eps / 2``;
          None likewise), steps, restarts, step_size, seconds}}``;
        * ``autoattack``: ``{norm: {status ("ok", "unavailable" or "failed"), and when ok
          the record of :func:`reference_autoattack` (version, attacks, robust, accuracy,
          ci_lo, ci_hi, n, after, warnings, implementation, seconds, ...; robust also
          requires the clean image correct); else error; always norm, eps, n_images}}``, or
          ``None`` if not asked;
        * ``band_autoattack``: ``{"<norm>/<band>": {norm, band, eps, version, attacks,
          not_band_limited, accuracy, ci_lo, ci_hi, n, robust, pgd_accuracy (band PGD on the
          same images), worst_case_accuracy (robust under both), after, out_of_band_max,
          steps, seconds}}``, or ``None`` if not asked;
        * ``gradient``: ``zero_gradient_share`` (share of the first ``batch_size`` images
          whose input gradient under the attack view is exactly zero: a gradient-masking
          alarm) and ``n``;
        * ``adaptive``, ``bpda_layers`` (quantisation layers switched to BPDA),
          ``randomized``, ``eot_samples`` (None unless randomised),
          ``non_differentiable_without_bpda`` (``adaptive=False`` with a
          :class:`DCTQuantize` whose BPDA is off), ``setting`` (budgets, bands, steps,
          restarts, step_size_factor, n, seed, band_definition), ``seconds``.

    Shape:
        - x: ``(N, C, H, W)``.
        - y: ``(N,)``.

    Raises:
        TypeError: ``model`` not an ``nn.Module``; ``x`` or ``y`` not a tensor (``x`` not
            floating point, ``y`` not integer); a band mask not a tensor.
        ValueError: ``x`` not 4-D, not finite, outside ``[0, 1]`` or holding no image ("x
            holds no images (N = 0)"); ``y`` not 1-D or not one label per image; ``bands``
            empty; the model returning NaN or inf (the message names it); ``steps``,
            ``restarts``, ``batch_size``, ``eot_samples``, ``autoattack_n``,
            ``band_autoattack_n`` or ``band_autoattack_steps`` not an integer ``>= 1``; ``step_size_factor`` not ``> 0``;
            ``adaptive`` not a bool; ``autoattack`` or ``band_autoattack`` unknown; ``budgets`` ``None`` for an
            image shape that names no data set, ``dataset`` unknown, ``budgets`` empty, not a
            dict, with a norm other than ``"linf"``/``"l2"`` or a radius not ``> 0``; a band
            name other than ``"full"``/``"low"``/``"high"``; a band mask of the wrong shape,
            not 0/1 or empty; labels outside ``[0, K)`` (checked on the clean logits); and
            what :func:`freqkit.pgd` rejects; (distributed) ranks given different data or
            settings.
        RankFailed: (distributed) another rank raised.
        DistributedError: (distributed) a rank died or hung past the process group's timeout.
    """
    fp = {}
    with fail_together("evaluate_defense", fingerprint=lambda: fp):
        check_images(x, "x", unit_range=True)
        check_tensor(y, "y", ndim=1, floating=False)
        if y.shape[0] != x.shape[0]:
            raise ValueError(f"y must have one label per image ({x.shape[0]}), got {y.shape[0]}")
        check_labels(y, x.shape[0], y.device)               # integer labels only: 2.7 is no class
        if not isinstance(model, nn.Module):
            raise TypeError(f"model must be an nn.Module, got {type(model).__name__}")
        check_positive_int(steps, "steps")
        check_positive_int(restarts, "restarts")
        check_positive_int(batch_size, "batch_size")
        check_positive_int(eot_samples, "eot_samples")
        check_number(step_size_factor, "step_size_factor")
        if not isinstance(adaptive, bool):
            raise ValueError(f"adaptive must be True or False, got {adaptive!r}")
        if autoattack is not None:
            autoattack = _check_aa_version(autoattack, "autoattack")
        if autoattack_n is not None:
            check_positive_int(autoattack_n, "autoattack_n")
        if band_autoattack is not None:
            band_autoattack = _check_band_aa_version(band_autoattack)
        if band_autoattack_n is not None:
            check_positive_int(band_autoattack_n, "band_autoattack_n")
        check_positive_int(band_autoattack_steps, "band_autoattack_steps")
        h, w = x.shape[-2:]
        if budgets is None:
            ds = dataset if dataset is not None else _infer_dataset(x)
            if ds is None:
                raise ValueError(f"budgets is required for images of shape {tuple(x.shape[1:])} (dataset unknown; "
                                 f"give dataset='cifar10'/'mnist' or budgets={{'linf': eps, 'l2': eps}})")
            check_choice(ds, "dataset", tuple(STANDARD_BUDGETS))
            budgets = STANDARD_BUDGETS[ds]
        if not isinstance(budgets, Mapping) or not budgets:
            raise ValueError(f"budgets must be a non-empty dict {{norm: eps}}, got {budgets!r}")
        budgets = {check_choice(str(k).lower(), "budgets key", ("linf", "l2")): check_number(v, f"budgets[{k!r}]")
                   for k, v in budgets.items()}
        if bands is None:
            bands = ("full",)
        if isinstance(bands, str) or not isinstance(bands, (Mapping, Sequence)) or len(bands) == 0:
            raise ValueError(f"bands must name at least one band: a non-empty sequence of 'full', 'low', 'high' "
                             f"or a non-empty {{name: mask or None}} dict (None: ('full',)), got {bands!r}")
        if isinstance(bands, Mapping):
            named = {}
            for k, m in bands.items():
                named[str(k)] = None if m is None else check_mask(m, f"bands[{k!r}]", h, w)
        else:
            lh = low_high_masks(h, w)
            named = {}
            for b in bands:
                check_choice(b, "bands entry", ("full", "low", "high"))
                named[b] = None if b == "full" else lh[b]
        fp.update(n=x.shape[0], shape="x".join(map(str, x.shape[1:])), x_sum=checksum(x), y_sum=checksum(y),
                  budgets=repr(sorted(budgets.items())), bands=",".join(named), steps=steps, restarts=restarts,
                  batch_size=batch_size, seed=seed, adaptive=adaptive, autoattack=repr(autoattack),
                  band_autoattack=repr(band_autoattack))
    dev = next((p.device for p in model.parameters()), x.device)
    x, y = x.to(dev), y.to(dev).long()
    t_all = time.perf_counter()
    # One eval-mode block for everything (torchattacks restores only the top module's mode).
    with eval_mode(model):
        # Under torch.distributed each rank attacks (and classifies) its share of the whole
        # batches (batch at image i seeded seed + i, as in one process); rows are gathered.
        batches = list(local_batches(x, y, batch_size, "x", whole_batches=True)[0])
        index = torch.cat([torch.arange(i, i + xb.shape[0]) for i, xb, _ in batches]) if batches \
            else torch.zeros(0, dtype=torch.int64)
        with fail_together("evaluate_defense: clean"):
            mine = [torch.zeros(0, dtype=torch.bool)]
            for _, xb, yb in batches:
                clean = check_model_output(predict_logits(model, xb, batch_size), model)
                check_label_range(yb, clean.shape[1])
                mine.append((clean.argmax(1) == yb).cpu())
        clean_correct, = gather_in_order(index, torch.cat(mine), what="evaluate_defense")
        clean_correct = clean_correct.to(dev)

        randomized = False
        with attack_view(model, True) if adaptive else nullcontext(0) as n_bpda:
            target = model
            # one decision for every rank (a random model's draws differ between processes)
            if adaptive and bool(broadcast(torch.tensor([is_randomized(model, x[:min(8, x.shape[0])])]))[0]):
                randomized = True
                target = EOT(model, eot_samples)
            # Gradient-masking alarm: images whose loss gradient under the attack's view is exactly 0.
            with eval_mode(target), torch.enable_grad():
                xa = x[:batch_size].clone().requires_grad_(True)
                out = check_model_output(target(xa), model)
                g, = torch.autograd.grad(F.cross_entropy(out.float(), y[:batch_size], reduction="sum"), xa)
                zero_share = float((g.flatten(1).abs().amax(1) == 0).float().mean())
            jobs = [(norm, eps, bname, m) for norm, eps in budgets.items() for bname, m in named.items()]
            attacks = {}
            # Every job runs on this rank's batches inside one failure block, then one gather brings
            # the per-image rows (robust?, perturbation size, out-of-band share) of all jobs: few
            # collectives, as each costs milliseconds on a loaded machine.
            rows, secs = [], []
            with fail_together("evaluate_defense: attacks"):
                for norm, eps, bname, m in progress_bar(jobs, enabled=progress and world().rank == 0,
                                                        desc="attacks"):
                    t0 = time.perf_counter()
                    part = [torch.zeros(0, 3, dtype=torch.float64)]
                    for i, xb, yb in batches:
                        xadv, info = pgd(target, xb, yb, eps, norm=norm, steps=steps,
                                         step_size=step_size_factor * eps / steps, band=m, random_start=True,
                                         seed=seed + i, restarts=restarts, return_info=True)
                        ok = (_predict(model, xadv, batch_size) == yb).cpu().double()
                        # sizes kept in float32 (then exactly in float64) as one process keeps them
                        size = info[norm].detach().cpu().to(torch.float32).double()
                        oob = info["out_of_band"].detach().cpu().double().reshape(-1).expand(ok.shape[0])
                        part.append(torch.stack([ok, size, oob], 1))
                    rows.append(torch.cat(part))
                    secs.append(time.perf_counter() - t0)
            packed = torch.stack(rows, 1) if rows else torch.zeros(0, 0, 3, dtype=torch.float64)   # (n, jobs, 3)
            packed, = gather_in_order(index, packed, what="evaluate_defense")
            for j, (norm, eps, bname, m) in enumerate(jobs):
                robust = packed[:, j, 0].bool().to(dev) & clean_correct
                size = packed[:, j, 1].to(torch.float32)
                oob = float(packed[:, j, 2].max()) if packed.shape[0] else 0.0
                # Where the attack failed it had every step to use its budget; a perturbation far
                # smaller than eps there means the band barely fits in the [0, 1] box.
                used = size[robust.cpu()] / eps if eps > 0 else torch.zeros(0)
                attacks[f"{norm}/{bname}"] = {
                    "norm": norm, "band": bname, "eps": eps, **_acc_record(robust), "robust": robust.cpu().tolist(),
                    "n_coefficients": int(m.sum()) if m is not None else h * w, "out_of_band_max": oob,
                    "budget_used": float(used.median()) if used.numel() else None,
                    "box_limited_share": float((used < 0.5).float().mean()) if used.numel() else None,
                    "steps": steps, "restarts": restarts, "step_size": step_size_factor * eps / steps,
                    "seconds": secs[j]}
            aa = None
            if autoattack is not None:
                k = x.shape[0] if autoattack_n is None else min(autoattack_n, x.shape[0])
                aa = {}
                for norm, eps in budgets.items():
                    rec = _run_autoattack(target, x[:k], y[:k], norm, eps, autoattack, seed, batch_size)
                    if rec.get("status") == "ok":
                        rob = torch.tensor(rec["robust"], device=dev) & clean_correct[:k]
                        rec.update(_acc_record(rob), robust=rob.cpu().tolist())
                    rec.update(norm=norm, eps=eps, n_images=k)
                    aa[norm] = rec
            baa = None
            if band_autoattack is not None:
                k = x.shape[0] if band_autoattack_n is None else min(band_autoattack_n, x.shape[0])
                baa = {}
                for norm, eps, bname, m in progress_bar(jobs, enabled=progress, desc="band AutoAttack"):
                    r = band_aa(target, x[:k], y[:k], eps, norm=norm, band=m, version=band_autoattack,
                                steps=band_autoattack_steps, seed=seed, batch_size=batch_size)
                    rob = r["robust"] & clean_correct[:k] & (_predict(model, r["x_adv"], batch_size) == y[:k])
                    pgd_rob = torch.tensor(attacks[f"{norm}/{bname}"]["robust"][:k], device=dev)
                    baa[f"{norm}/{bname}"] = {
                        "norm": norm, "band": bname, "eps": eps, "version": r["version"], "attacks": list(r["attacks"]),
                        "not_band_limited": r["not_band_limited"], **_acc_record(rob), "robust": rob.cpu().tolist(),
                        "pgd_accuracy": int(pgd_rob.sum()) / k,
                        "worst_case_accuracy": int((pgd_rob & rob).sum()) / k, "after": r["after"],
                        "out_of_band_max": r["out_of_band_max"], "steps": band_autoattack_steps,
                        "seconds": r["seconds"]}
    masking = [m for m in model.modules() if isinstance(m, DCTQuantize) and not m.bpda]
    return {
        "clean": _acc_record(clean_correct), "clean_correct": clean_correct.cpu().tolist(), "attacks": attacks,
        "autoattack": aa, "band_autoattack": baa, "gradient": {"zero_gradient_share": zero_share, "n": int(min(batch_size, x.shape[0]))},
        "adaptive": adaptive, "bpda_layers": int(n_bpda), "randomized": randomized,
        "eot_samples": eot_samples if randomized else None,
        "non_differentiable_without_bpda": (len(masking) > 0 and not adaptive),
        "setting": {"budgets": budgets, "bands": list(named), "steps": steps, "restarts": restarts,
                    "autoattack": autoattack, "band_autoattack": band_autoattack,
                    "step_size_factor": step_size_factor, "n": int(x.shape[0]), "seed": seed,
                    "band_definition": "equal-count halves of the DCT coefficients by normalised radius"},
        "seconds": time.perf_counter() - t_all,
    }



def minimal_perturbation_visibility(model: nn.Module, x: torch.Tensor, y: torch.Tensor,
                                    pixels_per_degree: float = 60.0, search_steps: int = 10, pgd_steps: int = 20,
                                    seed: int = 0, batch_size: int | None = None) -> dict:
    """How visible each image's smallest L2 adversarial perturbation is to a person.

    The measure of "changing the decision takes a change a person would notice" that does
    not reuse a model's own training signal: per image the minimal L2 distortion
    (:func:`freqkit.minimal_distortion`, a log-scale bisection with PGD, no band), then the
    perturbation's visibility in multiples of the detection threshold under the contrast
    sensitivity model of :func:`freqkit.perturbation_visibility` (Barten's CSF at
    ``pixels_per_degree``) and the SSIM of the adversarial example to its image
    (:func:`freqkit.perturbation_ssim`, ``pytorch_msssim``).  An image counts only when the
    search found a perturbation that is not zero and has a visibility above zero: already
    misclassified images and failed searches get NaN in every measure.

    Args:
        model: a classifier on ``[0, 1]`` images (``nn.Module``).
        x: images in ``[0, 1]``.
        y: their labels.
        pixels_per_degree: viewing distance, pixels per degree of visual angle (> 0).
        search_steps: bisections of the search, an integer ``>= 0``.
        pgd_steps: PGD steps per try, ``>= 1``.
        seed: seed of the PGD calls.
        batch_size: images per PGD call (``None``: all at once).

    Returns:
        dict of CPU tensors: ``l2`` (minimal L2 distortion), ``log_jnd`` (log10 of the
        visibility in JND: 0 is the detection threshold), ``ssim``, each float64 ``(N,)``
        with NaN where no perturbation was found; ``x_adv`` ``(N, C, H, W)`` (the image
        itself where none).

    Shape:
        - x: ``(N, C, H, W)``; y: ``(N,)``.

    Raises:
        ValueError, TypeError: what :func:`freqkit.minimal_distortion`,
            :func:`freqkit.perturbation_visibility` or :func:`freqkit.perturbation_ssim`
            raise for the arguments (e.g. ``x`` outside ``[0, 1]``, ``pixels_per_degree``
            not ``> 0``, images smaller than SSIM's window).
    """
    d, info = minimal_distortion(model, x, y, norm="l2", search_steps=search_steps, pgd_steps=pgd_steps,
                                 seed=seed, batch_size=batch_size, progress=False, return_info=True)
    jnd = perturbation_visibility(x, info["x_adv"], pixels_per_degree).cpu()
    ssim = perturbation_ssim(x, info["x_adv"]).double().cpu()
    found = (info["success"] & (d > 0)).cpu() & (jnd > 0)
    nan = torch.full(found.shape, float("nan"), dtype=torch.float64)
    return {"l2": torch.where(found, d.double().cpu(), nan), "log_jnd": torch.where(found, jnd.log10(), nan),
            "ssim": torch.where(found, ssim, nan), "x_adv": info["x_adv"].cpu()}
