"""Training objectives: what a model is trained to minimise, as data the checkpoint key covers.

Each objective is an :class:`Objective`: a name, its parameters (JSON values, part of the
checkpoint key of :func:`freqkit.train_or_load`) and the ``loss_fn`` that training calls.

* :func:`adversarial_objective`: adversarial training on Linf PGD examples (Madry et al.
  2018, "Towards deep learning models resistant to adversarial attacks": the loss is the
  cross-entropy on PGD-k examples with a random start; CIFAR-10 eps 8/255, 7 steps of
  2/255; MNIST eps 0.3, 40 steps of 0.01), or the "fast" variant (Wong, Rice & Kolter
  2020, "Fast is better than free": one FGSM step of 1.25 eps from a uniform random start
  in the eps-ball; CIFAR-10 step 10/255, MNIST step 0.375, as in their code).
* :func:`lowpass_objective`: training on low-pass filtered images, after Wang et al. 2019
  (HFC, "High-frequency component helps explain the generalization of CNNs").  **The data
  are filtered** (each training batch goes through :class:`freqkit.defense.LowPassLayer`
  before the model); the model itself stays a plain network that takes unfiltered images,
  so it can be evaluated bare or behind the same filter.
* :func:`attribution_guided_objective`: cross-entropy plus a penalty on the share of the
  input gradient's energy that lies in frequencies humans barely see (below); with
  ``placebo_seed`` its placebo, the same penalty with the CSF weights shuffled over the
  frequencies (:func:`placebo_csf_map`), the control of issue 13's H5.

Training with smoothed first-layer kernels (Wang et al. 2020, section 6.3) and stopping at
a validation accuracy (the matched-accuracy control) are training-config keys
(``kernel_smoothing``, ``stop_at_accuracy``; :mod:`freqkit.training`), so they combine with
any objective; :func:`kernel_high_frequency_share` measures how smooth kernels are.

:func:`train_with_objective` trains (or loads) one model, :func:`train_suite` one model per
objective with the same base configuration (or, with ``seeds=``, one per objective and seed).

The attribution-guided penalty
------------------------------
For an image ``x`` with label ``y`` let ``g = grad_x CE(f(x), y)`` and ``G = dct2(g)`` (per
channel; orthonormal, so ``||G|| = ||g||``).  With ``S_uv`` the human contrast
sensitivity of DCT coefficient ``(u, v)`` (:func:`freqkit.csf_map`, Mannos & Sakrison
1974, peak 1), the penalty is

    P(x) = sum_{c,u,v} (1 - S_uv) G_cuv^2 / sum_{c,u,v} G_cuv^2       (in [0, 1])

and the loss is ``CE + lambda * mean_x P(x)`` (double backpropagation, Drucker & LeCun
1992).  Why this quantity: to first order the loss changes by ``<g, delta>`` under a
perturbation ``delta``, so ``g / ||g||`` is the most damaging perturbation of a given L2
size, and ``P`` is the energy-weighted *invisibility* ``1 - S`` of that perturbation, i.e.
how invisible to a person the model's most sensitive direction is.  Minimising it moves
the model's sensitivity to frequencies a person sees, so that changing the decision
requires a change a person would notice.  ``1 - P`` is the human-alignment score of
:func:`freqkit.human_alignment` computed with squared gradients per coefficient instead of
band-averaged attributions, so the objective optimises (a proxy of) the score chapter 8
reports, which is measured with Integrated Gradients on test images, not with the
training signal.  ``P`` is scale-invariant: unlike input-gradient regularisation (Ross &
Doshi-Velez 2018), which penalises ``||g||^2``, it cannot be lowered by flattening the
loss surface (a form of gradient masking), only by *redistributing* the sensitivity.
The per-coefficient CSF map is used directly (no band averaging), so the objective has no
band edges to choose; the DC coefficient has ``S ~ 0.05`` (the Mannos-Sakrison CSF is
band-pass), so sensitivity to uniform brightness changes is penalised too.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable, Mapping

import torch
import torch.nn.functional as F

from torch import nn

from ._validate import check_choice, check_number, check_positive_int, check_tensor
from .defense import STANDARD_BUDGETS, LowPassLayer
from .human import csf_map
from .training import check_seeds, first_conv, train_many, train_or_load
from .transforms import dct2, low_high_masks

__all__ = ["Objective", "adversarial_objective", "lowpass_objective", "attribution_guided_objective", "OBJECTIVES",
           "OBJECTIVE_VERSION", "AT_SETTINGS", "invisible_gradient_share", "train_with_objective", "train_suite",
           "placebo_csf_map", "kernel_high_frequency_share"]

#: Bump when an objective's code changes what it trains: it is part of every objective's
#: parameters, hence of the checkpoint key, so stale robust checkpoints are retrained.
OBJECTIVE_VERSION = 1

#: Adversarial-training settings as published.  "pgd": Madry et al. 2018 (their CIFAR-10 and
#: MNIST configs); "fgsm_rs": Wong et al. 2020 (alpha = 1.25 eps; MNIST alpha 0.375 in their code).
AT_SETTINGS = {
    "pgd": {"cifar10": {"eps": 8 / 255, "steps": 7, "step_size": 2 / 255},
            "mnist": {"eps": 0.3, "steps": 40, "step_size": 0.01}},
    "fgsm_rs": {"cifar10": {"eps": 8 / 255, "steps": 1, "step_size": 10 / 255},
                "mnist": {"eps": 0.3, "steps": 1, "step_size": 0.375}},
}


@dataclass(frozen=True)
class Objective:
    """A training objective: its ``name``, its ``params`` (JSON values) and its ``loss_fn``.

    A frozen dataclass, made by :func:`adversarial_objective`, :func:`lowpass_objective` or
    :func:`attribution_guided_objective` (see :data:`OBJECTIVES`).  :meth:`config` adds
    ``objective`` and ``objective_params`` to a training config (so the checkpoint key of
    :func:`freqkit.train_or_load` covers them); :meth:`train` is :func:`freqkit.train_or_load`
    with that config and this ``loss_fn``.  Two objectives compare equal when ``name`` and
    ``params`` are equal (``loss_fn`` is left out of ``==`` and ``repr``).

    Args:
        name: the objective's name, e.g. ``"adversarial"``.
        params: its parameters, JSON values (part of the checkpoint key).
        loss_fn: ``loss_fn(model, xb, yb, cfg, step_info) -> (loss, logits)``, called by
            training on each batch (``step_info`` may hold a ``"generator"``).
    """

    name: str
    params: dict
    loss_fn: Callable = field(repr=False, compare=False)

    def config(self, base: Mapping | None = None) -> dict:
        """A copy of the training config ``base`` (``None``: ``{}``) with ``objective`` and ``objective_params``.

        Raises ValueError if ``base`` already has either key.
        """
        base = dict(base or {})
        for k in ("objective", "objective_params"):
            if k in base:
                raise ValueError(f"base config already has {k!r}; pass the plain training config")
        return {**base, "objective": self.name, "objective_params": dict(self.params)}

    def train(self, dataset: str, base: Mapping | None = None, **kw):
        """Train (or load) a model with this objective: ``train_or_load(dataset, self.config(base), loss_fn, **kw)``.

        Returns ``(model, info)`` as :func:`freqkit.train_or_load`.
        """
        return train_or_load(dataset, self.config(base), loss_fn=self.loss_fn, **kw)

def _ce(logits, y, cfg):
    """Cross-entropy in float32 with the config's ``label_smoothing`` (default 0)."""
    return F.cross_entropy(logits.float(), y, label_smoothing=cfg.get("label_smoothing", 0.0))

def adversarial_objective(dataset: str | None = None, method: str = "fgsm_rs", eps: float | None = None,
                          steps: int | None = None, step_size: float | None = None) -> Objective:
    """Linf adversarial training: PGD-k or FGSM with a random start, as an :class:`Objective`.

    ``method="pgd"``: Madry et al. 2018, "Towards deep learning models resistant to
    adversarial attacks"; ``"fgsm_rs"``: the "fast" training of Wong, Rice & Kolter 2020,
    "Fast is better than free" (one step of ``1.25 eps``).  Each training batch is replaced
    by adversarial examples made against the current model (in the mode training calls it
    in, train mode, as in both reference implementations): ``delta`` uniform in the
    eps-ball (clipped so that ``x + delta`` is in ``[0, 1]``), then ``steps`` signed-gradient
    steps of ``step_size``, each projected onto the ball and the box; the loss is the
    cross-entropy on ``x + delta`` (no clean term, as in both papers; with the config's
    ``label_smoothing``).

    Args:
        dataset: ``"cifar10"`` or ``"mnist"``: unset ``eps``, ``steps``, ``step_size`` take
            the published values (:data:`AT_SETTINGS`); ``None``: ``eps`` and ``step_size``
            must be given, ``steps`` defaults to 1 (``"fgsm_rs"``) or 10 (``"pgd"``).
        method: ``"fgsm_rs"`` (default) or ``"pgd"``.
        eps: Linf radius on ``[0, 1]`` images, ``> 0``.
        steps: attack steps, an integer ``>= 1``; must be 1 for ``"fgsm_rs"``.
        step_size: step of each signed-gradient step, ``> 0``.

    Returns:
        :class:`Objective` named ``"adversarial"`` with params ``method``, ``eps``,
        ``steps``, ``step_size``, ``random_start`` (True) and ``version``
        (:data:`OBJECTIVE_VERSION`).

    Raises:
        ValueError: ``method`` or ``dataset`` unknown; ``dataset`` ``None`` without ``eps``
            and ``step_size``; ``eps`` or ``step_size`` not a finite number ``> 0``;
            ``steps`` not an integer ``>= 1``, or not 1 with ``"fgsm_rs"``.

    Example:
        >>> import freqkit as fk
        >>> obj = fk.adversarial_objective("cifar10", method="pgd")
        >>> sorted(obj.config({})), obj.config({})["objective"]
        (['objective', 'objective_params'], 'adversarial')
        >>> obj.params["steps"], round(obj.params["eps"] * 255, 6), round(obj.params["step_size"] * 255, 6)
        (7, 8.0, 2.0)
    """
    check_choice(method, "method", tuple(AT_SETTINGS))
    if dataset is not None:
        check_choice(dataset, "dataset", tuple(STANDARD_BUDGETS))
        ref = AT_SETTINGS[method][dataset]
    else:
        ref = {}
        if eps is None or step_size is None:
            raise ValueError("eps and step_size are required when dataset is None (no published defaults)")
    eps = check_number(ref.get("eps") if eps is None else eps, "eps")
    step_size = check_number(ref.get("step_size") if step_size is None else step_size, "step_size")
    steps = (ref.get("steps", 1 if method == "fgsm_rs" else 10) if steps is None else steps)
    check_positive_int(steps, "steps")
    if method == "fgsm_rs" and steps != 1:
        raise ValueError(f"steps must be 1 for method='fgsm_rs' (one FGSM step), got {steps}; use method='pgd'")
    params = {"method": method, "eps": eps, "steps": int(steps), "step_size": step_size, "random_start": True,
              "version": OBJECTIVE_VERSION}

    def loss_fn(model, xb, yb, cfg, info):
        x = xb.detach()
        gen = info.get("generator")
        u = torch.rand(x.shape, generator=gen, device=x.device, dtype=x.dtype) if gen is not None \
            else torch.rand_like(x)
        delta = ((x + (2 * u - 1) * eps).clamp(0, 1) - x).detach()
        for _ in range(steps):
            delta.requires_grad_(True)
            loss = F.cross_entropy(model(x + delta).float(), yb)
            g, = torch.autograd.grad(loss, delta)
            delta = (delta.detach() + step_size * g.sign()).clamp(-eps, eps)
            delta = ((x + delta).clamp(0, 1) - x).detach()
        logits = model(x + delta)
        return _ce(logits, yb, cfg), logits

    return Objective("adversarial", params, loss_fn)

def lowpass_objective(cutoff: float = 0.5, basis: str = "dct", kind: str = "radial") -> Objective:
    """Train on low-pass filtered images (Wang et al. 2019's low-frequency training), as an :class:`Objective`.

    After Wang et al. 2019, "High-frequency component helps explain the generalization of
    convolutional neural networks".  Each batch is filtered by :class:`freqkit.LowPassLayer`
    ``(cutoff, basis, kind)`` (frequencies with normalised radius ``<= cutoff`` x Nyquist
    kept; not clipped) before the model sees it; the loss is the cross-entropy.  The data
    are filtered, not the model: the trained network takes any image.

    Args:
        cutoff: largest kept normalised radius, a finite number ``>= 0`` (default 0.5).
        basis: ``"dct"`` (default) or ``"dft"``.
        kind: ``"radial"`` (default) or ``"ring"``.

    Returns:
        :class:`Objective` named ``"lowpass"`` with params ``cutoff``, ``basis``, ``kind``,
        ``version``.

    Raises:
        ValueError: ``cutoff``, ``basis`` or ``kind`` rejected by :class:`freqkit.LowPassLayer`.
    """
    layer = LowPassLayer(cutoff, basis, kind)
    params = {"cutoff": float(cutoff), "basis": basis, "kind": kind, "version": OBJECTIVE_VERSION}

    def loss_fn(model, xb, yb, cfg, info):
        logits = model(layer(xb))
        return _ce(logits, yb, cfg), logits

    return Objective("lowpass", params, loss_fn)

def placebo_csf_map(h: int, w: int, seed: int, pixels_per_degree: float = 60.0) -> torch.Tensor:
    """The CSF weights of :func:`freqkit.csf_map` shuffled over the DCT coefficients: the placebo of H5.

    The control of the attribution-guided objective (issue 13, H5): the same
    ``(H, W)`` map of Mannos & Sakrison 1974 sensitivities, its values moved to other
    coefficients by one fixed permutation drawn from a private generator seeded by
    ``seed`` (the global RNG is untouched).  Same multiset of weights, hence the same
    distribution of penalties over coefficients, and no relation to human vision: any gain
    of the real objective over this placebo is due to *which* frequencies the CSF names, not
    to penalising some share of the gradient's energy.  For a given ``(h, w, seed)`` the
    permutation is always the same (``torch.randperm`` on a CPU generator).

    Args:
        h: height of the DCT grid, an integer ``>= 1``.
        w: width of the DCT grid, an integer ``>= 1``.
        seed: seeds the permutation, an integer.
        pixels_per_degree: viewing condition of the CSF, ``> 0`` (default 60).

    Returns:
        ``(H, W)`` map (the dtype of :func:`freqkit.csf_map`) holding exactly the values of
        ``csf_map(h, w, "dct", pixels_per_degree)`` in permuted positions; values in ``[0, 1]``.

    Shape:
        - Output: ``(H, W)``.

    Raises:
        ValueError: ``h`` or ``w`` not an integer ``>= 1``; ``seed`` not an integer;
            ``pixels_per_degree`` not a finite number ``> 0``.

    Example:
        >>> import torch, freqkit as fk
        >>> p = fk.objectives.placebo_csf_map(8, 8, seed=0)
        >>> bool(torch.equal(p.flatten().sort().values, fk.csf_map(8, 8).flatten().sort().values))
        True
    """
    check_positive_int(h, "h")
    check_positive_int(w, "w")
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise ValueError(f"seed must be an integer, got {seed!r}")
    check_number(pixels_per_degree, "pixels_per_degree")
    s = csf_map(h, w, "dct", pixels_per_degree)
    perm = torch.randperm(h * w, generator=torch.Generator().manual_seed(seed))
    return s.flatten()[perm].reshape(h, w)


def invisible_gradient_share(grad: torch.Tensor, pixels_per_degree: float = 60.0,
                             sensitivity: torch.Tensor | None = None) -> torch.Tensor:
    """Share of an input gradient's energy that lies in frequencies humans barely see (``P``).

    ``P`` of the module docstring, per image: the gradient's energy in the DCT domain
    (:func:`freqkit.dct2`, per channel) weighted by human *insensitivity* ``1 - S_uv``
    (:func:`freqkit.csf_map`, Mannos & Sakrison 1974, "The effects of a visual fidelity
    criterion on the encoding of images"), over its total energy.  Differentiable (the
    penalty of :func:`attribution_guided_objective`); computed in float32.

    Args:
        grad: input gradients (any floating dtype).
        pixels_per_degree: viewing condition of the CSF, ``> 0`` (default 60); unused when
            ``sensitivity`` is given.
        sensitivity: ``None`` (default): the CSF map; or an ``(H, W)`` map of weights
            ``S_uv`` in ``[0, 1]`` used instead, e.g. :func:`placebo_csf_map`.

    Returns:
        float32 tensor of shares in ``[0, 1]``; 0 for an image whose gradient is all zero.

    Shape:
        - grad: ``(N, C, H, W)``.
        - sensitivity: ``(H, W)``.
        - Output: ``(N,)``.

    Raises:
        TypeError: ``grad`` or ``sensitivity`` not a floating-point tensor.
        ValueError: ``grad`` not 4-D or not finite; ``pixels_per_degree`` not ``> 0``;
            ``sensitivity`` not ``(H, W)``, not finite or outside ``[0, 1]``.

    Example:
        >>> import torch, freqkit as fk
        >>> s = fk.objectives.invisible_gradient_share(torch.randn(2, 3, 8, 8))
        >>> tuple(s.shape), bool(((s >= 0) & (s <= 1)).all())
        ((2,), True)
        >>> fk.objectives.invisible_gradient_share(torch.zeros(1, 1, 8, 8)).tolist()
        [0.0]
    """
    check_tensor(grad, "grad", ndim=4)
    h, w = grad.shape[-2:]
    if sensitivity is None:
        s = csf_map(h, w, "dct", pixels_per_degree)
    else:
        s = check_tensor(sensitivity, "sensitivity", ndim=2)
        if tuple(s.shape) != (h, w) or float(s.min()) < 0 or float(s.max()) > 1:
            raise ValueError(f"sensitivity must be an ({h}, {w}) map with values in [0, 1], got shape "
                             f"{tuple(s.shape)}, range [{float(s.min()):.3g}, {float(s.max()):.3g}]")
    return _weighted_share(grad, s)


def _weighted_share(grad: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
    """``P`` of ``grad`` under the sensitivity map ``s``, unchecked (the training loop's per-step path)."""
    s = s.to(device=grad.device, dtype=torch.float32)
    e = dct2(grad.float()).pow(2)
    tot = e.sum((1, 2, 3))
    inv = (e * (1 - s)).sum((1, 2, 3))
    return torch.where(tot > 0, inv / tot.clamp_min(1e-30), torch.zeros_like(tot))

def attribution_guided_objective(lam: float = 1.0, pixels_per_degree: float = 60.0,
                                 penalty_fraction: float = 1.0, placebo_seed: int | None = None) -> Objective:
    """Cross-entropy + ``lam`` x the human-invisible share of the input gradient's energy, as an :class:`Objective`.

    The loss is ``CE + lam * mean_x P(x)`` with ``P`` = :func:`invisible_gradient_share` of
    ``grad_x CE`` (double backpropagation, Drucker & LeCun 1992); see the module docstring
    for the definition and its justification.  The penalty is computed on the first
    ``max(2, ceil(penalty_fraction * batch))`` images of each (shuffled) batch, in a
    separate forward pass (BatchNorm needs more than one image), and the cross-entropy on
    the whole batch; ``penalty_fraction=1.0`` (default) penalises every image in the same
    pass as the cross-entropy.  The double backpropagation costs about 6-8 standard steps
    per penalised batch on a CPU, and 16 on an H100 (8.5 vs 133 steps/s, CIFAR-10 ResNet
    width 64, batch 512, bf16), so a fraction of 0.25 roughly halves the training time on a
    CPU and cuts it about 3x on that GPU; the penalty is an average over images, so a random
    quarter estimates it without bias.

    With ``placebo_seed`` the objective is H5's placebo: the CSF weights are shuffled over
    the DCT coefficients by a fixed permutation (:func:`placebo_csf_map`), so the penalty has
    the same form and the same distribution of weights but no relation to human vision.
    Everything else (lam, fraction, the double backpropagation and its cost) is the same,
    so the placebo and the real objective differ only in where the weights sit.

    Args:
        lam: weight of the penalty, a finite number ``>= 0`` (default 1.0).
        pixels_per_degree: viewing condition of the CSF, ``> 0`` (default 60).
        penalty_fraction: share of each batch that is penalised, in ``(0, 1]``.
        placebo_seed: ``None`` (default): the human CSF; an integer: the placebo with the
            CSF weights permuted by this seed.

    Returns:
        :class:`Objective` named ``"attribution_guided"`` with params ``lam``,
        ``pixels_per_degree``, ``csf`` (``"mannos_sakrison"``, or
        ``"mannos_sakrison_shuffled"`` for the placebo), ``gradient_of``
        (``"cross_entropy"``), ``penalty_fraction``, ``version`` and, for the placebo only,
        ``placebo_seed`` (so the real objective's checkpoint key is what it was before the
        placebo existed).

    Raises:
        ValueError: ``lam`` not a finite number ``>= 0``; ``pixels_per_degree`` not a finite
            number ``> 0``; ``penalty_fraction`` not in ``(0, 1]``; ``placebo_seed`` neither
            None nor an integer.

    Example:
        >>> import freqkit as fk
        >>> real = fk.objectives.attribution_guided_objective(1.0)
        >>> placebo = fk.objectives.attribution_guided_objective(1.0, placebo_seed=0)
        >>> placebo.params["csf"], placebo.params["placebo_seed"], "placebo_seed" in real.params
        ('mannos_sakrison_shuffled', 0, False)
    """
    lam = check_number(lam, "lam", lo_open=False)
    check_number(pixels_per_degree, "pixels_per_degree")
    frac = check_number(penalty_fraction, "penalty_fraction", hi=1.0)
    if placebo_seed is not None and (isinstance(placebo_seed, bool) or not isinstance(placebo_seed, int)):
        raise ValueError(f"placebo_seed must be None or an integer, got {placebo_seed!r}")
    params = {"lam": lam, "pixels_per_degree": float(pixels_per_degree), "csf": "mannos_sakrison",
              "gradient_of": "cross_entropy", "penalty_fraction": frac, "version": OBJECTIVE_VERSION}
    if placebo_seed is not None:
        params.update(csf="mannos_sakrison_shuffled", placebo_seed=int(placebo_seed))
    maps = {}  # (h, w, device) -> the placebo's weights: drawn and moved once, not at every step

    def share(g):
        if placebo_seed is None:
            return invisible_gradient_share(g, pixels_per_degree)
        key = (*g.shape[-2:], g.device)
        if key not in maps:
            maps[key] = placebo_csf_map(g.shape[-2], g.shape[-1], int(placebo_seed), pixels_per_degree).to(
                device=g.device, dtype=torch.float32)
        return _weighted_share(g, maps[key])

    def penalty(model, x, y):
        x = x.detach().clone().requires_grad_(True)
        logits = model(x)
        g, = torch.autograd.grad(F.cross_entropy(logits.float(), y, reduction="sum"), x, create_graph=True)
        return share(g).mean(), logits

    def loss_fn(model, xb, yb, cfg, info):
        if frac >= 1.0:
            pen, logits = penalty(model, xb, yb)
        else:
            k = max(2, math.ceil(frac * xb.shape[0]))  # BatchNorm needs more than one image
            logits = model(xb)
            pen, _ = penalty(model, xb[:k], yb[:k])
        return _ce(logits, yb, cfg) + lam * pen, logits

    return Objective("attribution_guided", params, loss_fn)

def kernel_high_frequency_share(kernels) -> float:
    """Share of the energy of convolution kernels in the upper half of their own DCT spectrum.

    Measures how smooth kernels are (Wang et al. 2020, "High-frequency component helps
    explain the generalization of convolutional neural networks", section 6: robust models
    have smooth first-layer kernels; :func:`freqkit.training.smooth_kernels`).  Each
    ``kH x kW`` kernel slice goes through the orthonormal :func:`freqkit.dct2`; the energy
    in :func:`freqkit.low_high_masks` ``(kH, kW)["high"]`` (the equal-count upper half by
    radius; on 3x3 the 5 coefficients with ``u = 2`` or ``v = 2``) is divided by the total,
    summed over all slices.  White-noise kernels give about the high half's share of the
    coefficients (5/9 on 3x3); ``kernel_smoothing=1.0`` training gives 0.

    Args:
        kernels: a weight tensor ``(C_out, C_in, kH, kW)``, or an ``nn.Module`` whose
            :func:`freqkit.training.first_conv` is measured.

    Returns:
        The share, a float in ``[0, 1]`` (0 for all-zero kernels).

    Shape:
        - kernels: ``(C_out, C_in, kH, kW)`` with ``kH, kW`` not both 1.

    Raises:
        TypeError: ``kernels`` neither a module nor a floating-point tensor.
        ValueError: a tensor not 4-D or not finite, or 1x1 kernels (no spectrum to split);
            a module without an ``nn.Conv2d``.

    Example:
        >>> import torch, freqkit as fk
        >>> smooth = torch.ones(4, 3, 3, 3)
        >>> round(fk.objectives.kernel_high_frequency_share(smooth), 6)
        0.0
    """
    if isinstance(kernels, nn.Module):
        kernels = first_conv(kernels).weight
    check_tensor(kernels, "kernels", ndim=4)
    kh, kw = kernels.shape[-2:]
    if kh * kw < 2:
        raise ValueError(f"kernels must be at least 2 coefficients wide to have a high half, got {kh}x{kw}")
    e = dct2(kernels.detach().float()).pow(2).sum((0, 1))
    high = low_high_masks(kh, kw)["high"].to(e.device)
    tot = float(e.sum())
    return float(e[high].sum()) / tot if tot > 0 else 0.0

OBJECTIVES = {"adversarial": adversarial_objective, "lowpass": lowpass_objective,
              "attribution_guided": attribution_guided_objective}

def train_with_objective(dataset: str, objective: Objective | None, config: Mapping | None = None, **kw):
    """Train (or load) a model for ``dataset`` with an :class:`Objective` (``None``: standard training).

    :func:`freqkit.train_or_load` with the objective's config (:meth:`Objective.config`) and
    ``loss_fn``; the checkpoint key covers the objective's name and parameters.

    Args:
        dataset: ``"cifar10"`` or ``"mnist"``.
        objective: an :class:`Objective`, or ``None`` for plain cross-entropy training.
        config: the base training config (``None``: the defaults), without the
            ``objective`` keys.
        **kw: passed to :func:`freqkit.train_or_load` (``data_root``, ``cache_dir``,
            ``device``, ``progress``).

    Returns:
        ``(model, info)`` as :func:`freqkit.train_or_load`.

    Raises:
        TypeError: ``objective`` neither an :class:`Objective` nor ``None``.
        ValueError: ``config`` already holding ``objective``/``objective_params`` (with an
            objective), and what :func:`freqkit.train_or_load` raises (FileNotFoundError for
            missing data, CorruptCheckpoint, ...).
    """
    if objective is None:
        return train_or_load(dataset, dict(config or {}), **kw)
    if not isinstance(objective, Objective):
        raise TypeError(f"objective must be a freqkit.objectives.Objective or None, got {type(objective).__name__}")
    return objective.train(dataset, config, **kw)


def train_suite(dataset: str, objectives: Mapping, config: Mapping | None = None, device="auto", seeds=None,
                **kw) -> tuple[dict, dict]:
    """Train (or load) one model per ``{name: Objective or None}`` with the same base ``config``, for one or several seeds.

    Only the objective differs between the models of one seed, so differences between them
    are due to it.  Each model comes from :func:`train_with_objective`, in the dict's order.
    With ``seeds``, every objective is trained once per seed (each seed replaces
    ``config["seed"]`` and is its own checkpoint, see :func:`freqkit.train_seeds`), so that
    a comparison can be made across training runs, not only across test images: the models
    at the same position of each list share their seed.  The (objective, seed) models train
    in that order, except that one another process is training at that moment (a book
    chapter run side by side) is left for last, as in :func:`freqkit.train_seeds`.

    Args:
        dataset: ``"cifar10"`` or ``"mnist"``.
        objectives: non-empty ``{name: Objective or None}`` (``None``: standard training).
        config: the shared base training config.
        device: where to train and put the models (``"auto"``: as
            :func:`freqkit.train_or_load`).
        seeds: ``None`` (default): one model per objective, seeded by ``config["seed"]``; or a
            non-empty sequence of distinct integers: one model per objective and seed.
        **kw: passed to :func:`freqkit.train_or_load` (``data_root``, ``cache_dir``,
            ``progress``).

    Returns:
        ``(models, infos)``.  With ``seeds=None``: ``{name: model}`` on ``device`` in eval
        mode, and ``{name: info}``, the :func:`freqkit.train_or_load` info of each.  With
        ``seeds``: ``{name: [model, ...]}`` and ``{name: [info, ...]}``, one entry per seed in
        the order of ``seeds`` (``info["config"]["seed"]`` names it).

    Raises:
        ValueError: ``objectives`` empty or not a mapping; ``seeds`` empty, repeated or not
            integers; TypeError/ValueError as :func:`train_with_objective` for each entry.
        TypeError: ``seeds`` not a sequence, or an entry neither an :class:`Objective` nor
            ``None`` (checked before anything trains).

    Example:
        >>> import freqkit as fk
        >>> fk.train_suite("mnist", {}, seeds=(0, 1))
        Traceback (most recent call last):
        ...
        ValueError: objectives must be a non-empty {name: Objective or None} dict
    """
    if not isinstance(objectives, Mapping) or not objectives:
        raise ValueError("objectives must be a non-empty {name: Objective or None} dict")
    for name, obj in objectives.items():
        if obj is not None and not isinstance(obj, Objective):
            raise TypeError(f"objectives[{name!r}] must be a freqkit.objectives.Objective or None, got "
                            f"{type(obj).__name__}")
    models, infos = {}, {}
    if seeds is None:
        for name, obj in objectives.items():
            m, info = train_with_objective(dataset, obj, config, device=device, **kw)
            models[name], infos[name] = m.eval(), info
        return models, infos
    seeds = check_seeds(seeds)
    if config is not None and not isinstance(config, Mapping):
        raise TypeError(f"config must be a dict, got {type(config).__name__}")
    # One list of (objective, seed) trainings, so that a chapter run beside another that trains
    # the same suite takes whichever model nobody is training yet (see training.train_many).
    names, jobs = [], []
    for name, obj in objectives.items():
        cfg = dict(config or {}) if obj is None else obj.config(config)
        for sd in seeds:
            names.append(name)
            jobs.append((dataset, {**cfg, "seed": sd}, None if obj is None else obj.loss_fn))
    for name, (m, info) in zip(names, train_many(jobs, device=device, **kw)):
        models.setdefault(name, []).append(m.eval())
        infos.setdefault(name, []).append(info)
    return models, infos
