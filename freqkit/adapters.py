"""Adapters: freqkit's band-limited attacks as torchattacks ``Attack`` objects.

torchattacks (Kim 2020, "Torchattacks: a PyTorch repository for adversarial attacks")
composes attacks through one interface: an ``Attack`` built on a model, called as
``atk(images, labels)``, with modes (``set_mode_targeted_by_label`` ...), model-mode
control (``set_model_training_mode``), ``set_normalization_used`` and wrappers such as
``MultiAttack`` (each image keeps the first attack that fools the model).  Here
freqkit's band-limited PGD (:func:`freqkit.pgd`: the perturbation stays in a DCT/DFT band,
within eps and inside ``[0, 1]``) becomes such an attack:

* :class:`BandPGD`: ``BandPGD(model, band=m[0], eps=8/255, alpha=2/255, steps=10,
  norm="linf")``; with ``band=None`` it is torchattacks' ``PGD`` (Linf) / ``PGDL2``
  operation for operation (same draws under the same ``torch.manual_seed``; tested).
* :class:`BandAPGD`: Auto-PGD (Croce & Hein 2020) in a band, :func:`freqkit.apgd.apgd`,
  with the arguments of torchattacks' ``APGD`` (``loss="ce"``, ``"dlr"`` or, as its
  ``APGDT``, ``"dlr-targeted"``).

A torchattacks ``PGD`` is not band-limited: on a low band it leaves most of its energy
outside (measured by the tests with :func:`freqkit.band_energy`), while ``BandPGD`` keeps
an out-of-band energy share below ``1e-3``.

torchattacks is an optional dependency (``pip install freqkit[attacks]``, or
``torchattacks==3.5.1``); without it, building a :class:`BandPGD` raises ``ImportError``.
Nothing else in freqkit imports this module.
"""
from __future__ import annotations

import math
import numbers
from typing import Callable

import torch

from ._validate import check_choice, check_mask, check_positive_int
from .apgd import apgd
from .attacks import pgd
from .transforms import check_basis

try:  # optional: freqkit[attacks]
    import torchattacks
    from torchattacks.attack import Attack as _ATTACK_BASE
    _IMPORT_ERROR = None
except ImportError as e:  # pragma: no cover - exercised only without torchattacks
    torchattacks = None
    _ATTACK_BASE = object
    _IMPORT_ERROR = e

__all__ = ["BandAPGD", "BandPGD"]


def _need_torchattacks(cls: str) -> None:
    if torchattacks is None:
        raise ImportError(f"{cls} is a torchattacks.Attack and needs torchattacks "
                          "(pip install 'freqkit[attacks]' or torchattacks==3.5.1)") from _IMPORT_ERROR


def _check_band(band):
    if band is None:
        return None
    if not isinstance(band, torch.Tensor):
        raise TypeError(f"band must be an (H, W) torch.Tensor mask or None, got {type(band).__name__}")
    if band.dim() != 2:
        raise ValueError(f"band must be an (H, W) mask, got shape {tuple(band.shape)}")
    return check_mask(band, "band", *band.shape).detach().clone()


def _check_number(v, name: str, positive: bool = False):
    if isinstance(v, bool) or not isinstance(v, numbers.Real) or not math.isfinite(float(v)) or v < 0 \
            or (positive and v == 0):
        raise ValueError(f"{name} must be a finite number {'> 0' if positive else '>= 0'}, got {v!r}")
    return float(v)


class _BandAttack(_ATTACK_BASE):
    """What BandPGD and BandAPGD share: the band mask, and the inputs moved to the attack's device."""

    _band: torch.Tensor | None = None

    @property
    def band(self) -> torch.Tensor | None:
        """The ``(H, W)`` bool band mask (``None``: unconstrained)."""
        return self._band

    def _inputs(self, images: torch.Tensor, labels: torch.Tensor):
        """Detached copies of the images and labels, and the band, on the attack's device."""
        device = self.device if self.device is not None else images.device
        band = None if self._band is None else self._band.to(device)
        return images.clone().detach().to(device), labels.clone().detach().to(device), band


class BandPGD(_BandAttack):
    """Band-limited PGD as a torchattacks ``Attack``: ``x_adv`` in band, in ``[0, 1]``, within eps.

    Projected gradient descent (Madry et al. 2018) whose perturbation lives in a frequency
    band (the low-frequency attacks of Guo et al. 2018 and Sharma et al. 2019), computed by
    :func:`freqkit.pgd` (projection onto band, ball and box at once; see
    :mod:`freqkit.attacks`) behind torchattacks' ``Attack`` interface (torchattacks 3.5.1):

    * ``atk(images, labels)`` returns adversarial images on the attack's device;
    * targeted mode: ``atk.set_mode_targeted_by_label()`` (then ``labels`` are the targets),
      ``set_mode_targeted_random()``, ``set_mode_targeted_least_likely()``, ``..._by_function``;
    * ``set_model_training_mode(...)`` is honoured (torchattacks switches the model's mode
      around the call; this attack does not switch it again), and the model is called
      through ``get_logits`` as torchattacks' own attacks call it (so its normalisation
      settings act as they do for them);
    * works inside ``torchattacks.MultiAttack`` (tested with torchattacks' ``PGD``).

    The random start draws from torch's global RNG as torchattacks' PGD does, so with
    ``band=None`` and ``early_stop=False`` (the default, as torchattacks runs every step)
    ``BandPGD`` and ``torchattacks.PGD`` give the same images under the same
    ``torch.manual_seed``.

    Args:
        model: the classifier, ``(N, C, H, W)`` in ``[0, 1]`` -> logits (an ``nn.Module``;
            its parameters' device becomes the attack's, as in torchattacks).
        band: ``(H, W)`` mask (bool or 0/1, at least one frequency) in the layout of
            ``basis`` (e.g. a row of :func:`freqkit.band_masks`), or ``None``: unconstrained.
        eps: radius in pixel space of ``[0, 1]`` images, ``>= 0`` (Linf default ``8/255``;
            for L2 e.g. ``0.5``).
        alpha: step size, ``> 0`` (default ``2/255``; torchattacks' ``alpha``).
        steps: gradient steps, an integer ``>= 0`` (default 10).
        norm: ``"linf"`` (default) or ``"l2"`` (case-insensitive).
        random_start: start from a random point of the (in-band) ball (default ``True``).
        basis: ``"dct"`` (default) or ``"dft"`` (then ``band`` must be symmetric on the
            centred DFT grid).
        early_stop: keep each image's first successful iterate and stop updating it
            (default ``False``: every step, like torchattacks).
        proj_iters: band/box projection iterations per step (band attacks), ``>= 1``.

    Shape:
        - images: ``(N, C, H, W)`` in ``[0, 1]``; labels: ``(N,)`` integers.
        - output: ``(N, C, H, W)``.

    Raises:
        ImportError: torchattacks is not installed.
        ValueError: ``eps`` negative or not finite, ``alpha`` not ``> 0``, ``steps`` not an
            integer ``>= 0``, ``proj_iters`` not an integer ``>= 1``, an unknown ``norm`` or
            ``basis``, a ``band`` that is not a 2-D 0/1 mask with a frequency; at the call,
            what :func:`freqkit.pgd` raises (images outside ``[0, 1]``, a band of another
            size than the images, labels out of range, ...).
        TypeError: ``band`` is not a tensor.

    Example:
        >>> import torch, freqkit as fk
        >>> from freqkit.adapters import BandPGD
        >>> _ = torch.manual_seed(0); model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 3))
        >>> x = torch.rand(2, 1, 8, 8); y = model(x).argmax(1); low = fk.low_high_masks(8, 8)["low"]
        >>> atk = BandPGD(model, band=low, eps=8/255, alpha=2/255, steps=5)
        >>> x_adv = atk(x, y); d = x_adv - x
        >>> bool(d.abs().max() <= 8/255 + 1e-6), bool(x_adv.min() >= 0 and x_adv.max() <= 1)
        (True, True)
        >>> out_of_band = fk.band_energy(d, masks=torch.stack([low, ~low]))[:, 1]   # energy share outside
        >>> bool((out_of_band < 1e-3).all())
        True
    """

    def __init__(self, model: Callable, band: torch.Tensor | None = None, eps: float = 8 / 255,
                 alpha: float = 2 / 255, steps: int = 10, norm: str = "linf", random_start: bool = True,
                 basis: str = "dct", early_stop: bool = False, proj_iters: int = 8):
        _need_torchattacks("BandPGD")
        norm = check_choice(norm.lower() if isinstance(norm, str) else norm, "norm", ("linf", "l2"))
        check_basis(basis)
        eps = _check_number(eps, "eps")
        alpha = _check_number(alpha, "alpha", positive=True)
        if isinstance(steps, bool) or not isinstance(steps, int) or steps < 0:
            raise ValueError(f"steps must be an integer >= 0, got {steps!r}")
        check_positive_int(proj_iters, "proj_iters")
        band = _check_band(band)
        super().__init__("BandPGD", model)
        self.eps = eps
        self.alpha = alpha
        self.steps = steps
        self.norm = norm
        self.random_start = bool(random_start)
        self.basis = basis
        self.early_stop = bool(early_stop)
        self.proj_iters = proj_iters
        self._band = band
        self.supported_mode = ["default", "targeted"]

    def forward(self, images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """The adversarial images (torchattacks calls this from ``atk(images, labels)``).

        Args:
            images: ``(N, C, H, W)`` in ``[0, 1]``.
            labels: ``(N,)`` true labels (in targeted mode, what torchattacks' target map
                makes of them: the targets).

        Returns:
            ``(N, C, H, W)`` adversarial images on the attack's device, detached.
        """
        images, labels, band = self._inputs(images, labels)
        y = self.get_target_label(images, labels) if self.targeted else labels
        return pgd(self.get_logits, images, y, eps=self.eps, norm=self.norm, steps=self.steps, step_size=self.alpha,
                   band=band, basis=self.basis, random_start=self.random_start, targeted=self.targeted,
                   early_stop=self.early_stop, proj_iters=self.proj_iters)


class BandAPGD(_BandAttack):
    """Band-limited Auto-PGD as a torchattacks ``Attack``: ``x_adv`` in band, in ``[0, 1]``, within eps.

    Auto-PGD (Croce & Hein 2020, "Reliable evaluation of adversarial robustness with an
    ensemble of diverse parameter-free attacks"), computed by :func:`freqkit.apgd.apgd`
    (momentum, step-size halving at checkpoints, restarts; with a band, every step projected
    onto band ∩ ball ∩ box) behind torchattacks' ``Attack`` interface, with the arguments
    of torchattacks' ``APGD`` (``norm``, ``eps``, ``steps``, ``n_restarts``, ``seed``,
    ``loss``, ``eot_iter``, ``rho``).  ``loss="dlr-targeted"`` is APGD-T (torchattacks'
    ``APGDT``): it picks its own target classes (the runner-up classes), so, as in
    torchattacks, only the default (untargeted) mode is supported.  The model is called
    through ``get_logits`` (as torchattacks' own attacks) and its mode is left to
    torchattacks (``set_model_training_mode``); works inside ``torchattacks.MultiAttack``.

    Args:
        model: the classifier, ``(N, C, H, W)`` in ``[0, 1]`` -> logits.
        band: ``(H, W)`` mask in the layout of ``basis``, or ``None``: unconstrained.
        eps: radius in pixel space, ``>= 0`` (default ``8/255``).
        steps: iterations per restart, an integer ``>= 1`` (default 10; AutoAttack: 100).
        norm: ``"linf"`` (default) or ``"l2"`` (case-insensitive: torchattacks' ``"Linf"``
            and ``"L2"`` work).
        n_restarts: random restarts, ``>= 1``.
        seed: seed of the random starts (a private generator; ``None``: torch's global RNG).
        loss: ``"ce"`` (default), ``"dlr"`` or ``"dlr-targeted"``.
        n_target_classes: targets of ``"dlr-targeted"`` (default 9).
        eot_iter: gradients averaged per step, ``>= 1``.
        rho: the checkpoint condition's fraction, in ``(0, 1]`` (default 0.75).
        basis: ``"dct"`` (default) or ``"dft"``.
        early_stop: stop updating an image once it is misclassified (default ``True``, as
            :func:`freqkit.apgd.apgd`).
        proj_iters: band/box projection iterations per step, ``>= 1``.

    Shape:
        - images: ``(N, C, H, W)`` in ``[0, 1]``; labels: ``(N,)``.
        - output: ``(N, C, H, W)``.

    Raises:
        ImportError: torchattacks is not installed.
        ValueError: ``eps`` negative or not finite, an unknown ``norm``, ``basis`` or
            ``loss``, a ``band`` that is not a 2-D 0/1 mask with a frequency; at the call,
            what :func:`freqkit.apgd.apgd` raises (bad ``steps``, ``n_restarts``, ``rho``,
            images outside ``[0, 1]``, a band of another size, too few classes for DLR, ...).
        TypeError: ``band`` is not a tensor.

    Example:
        >>> import torch, freqkit as fk
        >>> from freqkit.adapters import BandAPGD
        >>> _ = torch.manual_seed(0); model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 4))
        >>> x = torch.rand(3, 1, 8, 8); y = model(x).argmax(1); low = fk.low_high_masks(8, 8)["low"]
        >>> x_adv = BandAPGD(model, band=low, eps=0.5, norm="L2", steps=10)(x, y)
        >>> bool(x_adv.min() >= 0 and x_adv.max() <= 1), bool(((x_adv - x).flatten(1).norm(dim=1) <= 0.5 + 1e-5).all())
        (True, True)
    """

    def __init__(self, model: Callable, band: torch.Tensor | None = None, eps: float = 8 / 255, steps: int = 10,
                 norm: str = "linf", n_restarts: int = 1, seed: int | None = 0, loss: str = "ce",
                 n_target_classes: int = 9, eot_iter: int = 1, rho: float = 0.75, basis: str = "dct",
                 early_stop: bool = True, proj_iters: int = 8):
        _need_torchattacks("BandAPGD")
        norm = check_choice(norm.lower() if isinstance(norm, str) else norm, "norm", ("linf", "l2"))
        check_choice(loss, "loss", ("ce", "dlr", "dlr-targeted"))
        check_basis(basis)
        eps = _check_number(eps, "eps")
        band = _check_band(band)
        super().__init__("BandAPGD", model)
        self.eps = eps
        self.steps = steps
        self.norm = norm
        self.n_restarts = n_restarts
        self.seed = seed
        self.loss = loss
        self.n_target_classes = n_target_classes
        self.eot_iter = eot_iter
        self.rho = rho
        self.basis = basis
        self.early_stop = early_stop
        self.proj_iters = proj_iters
        self._band = band
        self.supported_mode = ["default"]

    def forward(self, images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """The adversarial images (torchattacks calls this from ``atk(images, labels)``).

        Args:
            images: ``(N, C, H, W)`` in ``[0, 1]``.
            labels: ``(N,)`` true labels.

        Returns:
            ``(N, C, H, W)`` adversarial images on the attack's device, detached (an image
            misclassified from the start is returned unchanged).
        """
        images, labels, band = self._inputs(images, labels)
        return apgd(self.get_logits, images, labels, eps=self.eps, norm=self.norm, loss=self.loss, steps=self.steps,
                    restarts=self.n_restarts, n_target_classes=self.n_target_classes, band=band, basis=self.basis,
                    rho=self.rho, eot_iter=self.eot_iter, seed=self.seed, early_stop=self.early_stop,
                    proj_iters=self.proj_iters)
