"""Ground truth for frequency attributions: a model trained where the answer is known.

:func:`freqkit.data.planted_frequency_dataset` makes images whose classes differ *only*
in the energy of one DCT band.  A model that classifies them well can only be using that
band, so a faithful attribution method must put its mass there.  This module trains such
a model in seconds (:func:`train_planted_model`, built on the generic
:func:`train_on_tensors`) and scores every method against the truth
(:func:`ground_truth_table`, :func:`ground_truth_verdict`).

The default task has two classes, ``bands=[None, b]``: class 0 is the background alone,
class 1 the background with extra energy in band ``b``.  Every other band has the same
distribution in both classes, so band ``b`` is the *only* informative band, whichever
class is explained.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ._validate import check_choice, check_images, check_mask, check_positive_int, check_tensor
from .data import planted_frequency_dataset
from .models import Normalize

__all__ = ["PlantedCNN", "train_on_tensors", "PlantedTask", "train_planted_model", "ground_truth_table",
           "ground_truth_verdict"]


class PlantedCNN(nn.Module):
    """A tiny energy detector: Normalize -> conv5x5 -> ReLU -> conv3x3 -> ReLU -> global mean -> linear.

    A band-pass filter followed by a rectifier and a spatial mean is an energy estimate,
    so two convolutions and a global average pool suffice for the planted task.

    Args:
        in_channels, n_classes: C of the input and number of logits.
        width: channels of both convolutions.
        mean, std: per-channel statistics for the Normalize layer (e.g. of the training set).
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


def train_on_tensors(model: nn.Module, x: torch.Tensor, y: torch.Tensor, epochs: int = 10, batch_size: int = 128,
                     lr: float = 3e-3, weight_decay: float = 1e-4, seed: int = 0, device="cpu",
                     progress: bool = False) -> dict:
    """Train ``model`` in place on in-memory images ``x`` ``(N, C, H, W)`` and labels ``y`` ``(N,)``.

    AdamW with a cosine learning-rate decay to zero, cross-entropy, shuffled mini-batches
    drawn from a generator seeded by ``seed`` (the caller's RNG is not touched).  The
    model ends in eval mode on ``device``.

    Returns:
        ``{"train_seconds", "n_train", "steps", "history": [{"epoch", "train_loss", "train_accuracy"}]}``.
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
    from .training import resolve_device

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
    from tqdm import tqdm

    bar = tqdm(total=total, disable=not progress, desc="train", unit="step", mininterval=2.0)
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


@dataclass
class PlantedTask:
    """Result of :func:`train_planted_model`.

    Attributes:
        model: the trained :class:`PlantedCNN` (eval mode).
        x_test, y_test: held-out planted images (a different seed from the training set).
        test_accuracy: of ``model`` on them.
        truth: ``(H, W)`` bool, the informative frequencies (union of the planted bands).
        band: index of the planted band in ``masks`` (the first one if several).
        masks: ``(K, H, W)`` the data set's band partition.
        info: the data set's info (see :func:`freqkit.data.planted_frequency_dataset`), and
            ``train``: the training record of :func:`train_on_tensors`.
    """

    model: nn.Module
    x_test: torch.Tensor
    y_test: torch.Tensor
    test_accuracy: float
    truth: torch.Tensor
    band: int
    masks: torch.Tensor
    info: dict = field(default_factory=dict)

    def setting(self) -> dict:
        """The setting in plain numbers, for captions and results files."""
        keep = ("n_classes", "size", "channels", "kind", "n_bands", "amplitude", "noise", "exponent", "bands")
        return {**{k: self.info[k] for k in keep}, "band": self.band, "n_train": self.info["train"]["n_train"],
                "n_test": int(self.x_test.shape[0]), "test_accuracy": self.test_accuracy,
                "train_seconds": self.info["train"]["train_seconds"], "epochs": len(self.info["train"]["history"])}


def train_planted_model(band: int | None = 5, n_train: int = 4000, n_test: int = 500, bands: Sequence | None = None,
                        width: int = 8, epochs: int = 10, batch_size: int = 128, lr: float = 1e-2,
                        weight_decay: float = 1e-4, seed: int = 0, device="cpu", progress: bool = False,
                        **dataset_kw) -> PlantedTask:
    """Train a :class:`PlantedCNN` on a planted-frequency data set and test it on fresh images.

    Args:
        band: the planted band index; the task is ``bands=[None, band]`` (background vs
            background plus energy in ``band``).  Give ``bands`` instead for other tasks.
        n_train, n_test: images; the test set is drawn with ``seed + 1`` (independent).
        width, epochs, batch_size, lr, weight_decay: the model and :func:`train_on_tensors`.
        dataset_kw: passed to :func:`freqkit.data.planted_frequency_dataset` (``size``,
            ``channels``, ``kind``, ``n_bands``, ``amplitude``, ``noise``, ``exponent``...).
    """
    if bands is None:
        if band is None:
            raise ValueError("band or bands is required (the planted band index)")
        bands = [None, band]
    bands = list(bands)
    for k in ("n", "n_classes", "bands", "seed"):
        if k in dataset_kw:
            raise TypeError(f"{k!r} is set by train_planted_model, not a dataset keyword")
    check_positive_int(n_train, "n_train")
    check_positive_int(n_test, "n_test")
    kw = dict(n_classes=len(bands), bands=bands, **dataset_kw)
    x, y, info = planted_frequency_dataset(n_train, seed=seed, **kw)
    xt, yt, _ = planted_frequency_dataset(n_test, seed=seed + 1, **kw)
    ch = x.shape[1]
    torch.manual_seed(seed)  # the initialisation
    mean = x.mean((0, 2, 3)).tolist()
    std = x.std((0, 2, 3)).clamp_min(1e-6).tolist()
    model = PlantedCNN(ch, len(bands), width, mean, std)
    rec = train_on_tensors(model, x, y, epochs=epochs, batch_size=batch_size, lr=lr, weight_decay=weight_decay,
                           seed=seed, device=device, progress=progress)
    model = model.cpu().eval()
    with torch.no_grad():
        acc = float((model(xt).argmax(1) == yt).float().mean())
    truth = info["planted_masks"].any(0)
    first = next(b for b in bands if b is not None)
    info = {**info, "train": rec}
    return PlantedTask(model=model, x_test=xt, y_test=yt, test_accuracy=acc, truth=truth, band=first,
                       masks=info["masks"], info=info)


def _bootstrap_mean(v: np.ndarray, n_boot: int, seed: int) -> tuple[float, float]:
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, v.shape[0], size=(n_boot, v.shape[0]))
    means = v[idx].mean(1)
    return float(np.quantile(means, 0.025)), float(np.quantile(means, 0.975))


def ground_truth_table(results: dict, masks: torch.Tensor, truth: torch.Tensor, n_boot: int = 1000,
                       seed: int = 0) -> dict:
    """How much of each method's attribution falls on the planted (informative) frequencies.

    Args:
        results: ``{method name: FrequencyAttribution or (N, C, H, W) scores}``.
        masks: ``(K, H, W)`` band partition (the data set's ``info["masks"]``).
        truth: ``(H, W)`` bool, the planted frequencies: the union of one or more bands.
        n_boot, seed: percentile bootstrap over images for the interval of the mean share.

    Returns:
        ``{method: {...}}`` with ``share`` (mean over images of the share of ``|score|`` on
        ``truth``), ``share_ci`` (95% bootstrap interval), ``share_median``,
        ``coefficient_share`` (``truth``'s share of the frequencies: what a method
        spreading mass uniformly would get), ``band_shares`` (K mean shares per band,
        channels pooled), ``top_band`` (the band with the largest mean share),
        ``truth_bands`` (the bands inside ``truth``) and ``n``.
    """
    from .attribution import band_shares, planted_band_share

    if not isinstance(results, dict) or not results:
        raise ValueError("results must be a non-empty dict {method: attribution}")
    masks = check_mask(masks, "masks", *masks.shape[-2:], allow_stack=True)
    if masks.dim() == 2:
        masks = masks.unsqueeze(0)
    h, w = masks.shape[-2:]
    truth = check_mask(truth, "truth", h, w)
    inside = [k for k in range(masks.shape[0]) if bool((masks[k] & truth).any())]
    partial = [k for k in inside if bool((masks[k] & ~truth).any())]
    if partial:
        raise ValueError(f"truth must be a union of whole bands of masks; bands {partial} are cut by it")
    check_positive_int(n_boot, "n_boot")
    table = {}
    for name, r in results.items():
        share = planted_band_share(r, truth).detach().double().cpu().numpy()
        bs = band_shares(r, masks).detach().double().cpu().mean(0)
        lo, hi = _bootstrap_mean(share, n_boot, seed)
        table[name] = {"share": float(share.mean()), "share_ci": [lo, hi], "share_median": float(np.median(share)),
                       "coefficient_share": float(truth.double().mean()), "band_shares": bs.tolist(),
                       "top_band": int(bs.argmax()), "truth_bands": inside, "n": int(share.shape[0])}
    return table


def ground_truth_verdict(tables: dict, rule: str = "top_band") -> dict:
    """Verdict on "every method puts the most attribution mass on the planted band".

    Args:
        tables: ``{task name: ground_truth_table(...)}`` (one per planted band, say).
        rule: ``"top_band"``: for every task and method, the band with the largest mean
            share is a planted band, *and* the mean share on the planted frequencies
            exceeds their share of the coefficients (a uniform spread would not pass);
            ``"above_uniform"``: only the second condition.

    Returns:
        :func:`freqkit.results.verdict` dict; ``evidence`` lists every (task, method) and
        which condition failed.
    """
    from .results import verdict

    check_choice(rule, "rule", ("top_band", "above_uniform"))
    if not isinstance(tables, dict) or not tables:
        raise ValueError("tables must be a non-empty dict {task: ground_truth_table}")
    rows, ok = [], True
    for task, table in tables.items():
        for method, t in table.items():
            above = t["share"] > t["coefficient_share"]
            top = t["top_band"] in t["truth_bands"]
            passed = above and (top or rule == "above_uniform")
            ok &= passed
            rows.append({"task": str(task), "method": method, "share": t["share"],
                         "coefficient_share": t["coefficient_share"], "top_band": t["top_band"],
                         "truth_bands": t["truth_bands"], "above_uniform": above, "top_is_planted": top,
                         "passed": passed})
    text = ("for every planted task and every method: the mean share of |attribution| on the planted band "
            "exceeds that band's share of the coefficients"
            + (", and the planted band holds the largest mean share of all bands" if rule == "top_band" else ""))
    return verdict("Ground truth: every method puts the most attribution mass on the planted band", text, ok,
                   {"rows": rows, "n_failed": sum(not r["passed"] for r in rows)})
