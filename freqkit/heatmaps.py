"""Fourier heat maps (Yin et al. 2019, "A Fourier perspective on model robustness").

For every frequency of the centred DFT grid, the error rate (or logit drop) of a model when
each image gets that frequency's Fourier basis image added at a fixed L2 norm.

* :func:`fourier_heatmap`: the map, ``(H, W)`` on the grid of :func:`freqkit.dft2`, of the
  whole grid or of a sub-grid (:func:`fourier_directions`: every k-th frequency, or radial/
  angular sampling, for ImageNet-sized images);
* :func:`fourier_layer_heatmap`: the same for the activations of named layers;
* :func:`fourier_basis_images`: the perturbations it adds;
* :func:`n_fourier_directions`: how many directions a full map costs;
* :func:`heatmap_radial_profile`, :func:`heatmap_summary`: the map averaged over rings, or
  over the lower and the upper half of its frequencies;
* :func:`heatmap_report`: one model's maps with what a chapter reports beside them.

Every map takes tensors or an iterable of ``(images, labels)`` batches (a DataLoader,
streamed), and splits its work across ranks under an initialised ``torch.distributed``
process group (``torchrun``; see :mod:`freqkit._distributed` and ``python -m freqkit.run
heatmap``), returning the same full map on every rank.  Nothing here draws; the book's
``viz`` does.
"""
from __future__ import annotations

import math
import time

import numpy as np
import torch
import torch.nn as nn

from ._distributed import (
    agree_shape, all_gather_rows, all_reduce_max, all_reduce_sum, checksum, fail_together, local_batches, shard,
    world,
)
from ._runtime import eval_mode, model_device
from ._runtime import progress as progress_bar
from ._validate import (
    check_choice, check_images, check_label_range, check_labels, check_model_output, check_positive_int, check_tensor,
)
from .models import predict_logits
from .transforms import equal_count_band_masks, frequency_radius, idht2

__all__ = ["fourier_basis_images", "fourier_heatmap", "fourier_layer_heatmap", "fourier_directions",
           "n_fourier_directions", "heatmap_radial_profile", "heatmap_summary", "heatmap_report"]


def _conjugate_pairs(h: int, w: int, device=None):
    """Flat indices of one member of each pair ``{f, -f}`` on the centred grid, and of its mirror."""
    u = torch.arange(h, device=device)
    v = torch.arange(w, device=device)
    mu = (-(u - h // 2)) % h
    mu = (mu + h // 2) % h
    mv = (-(v - w // 2)) % w
    mv = (mv + w // 2) % w
    flat = (u[:, None] * w + v[None, :]).flatten()
    mirror = (mu[:, None] * w + mv[None, :]).flatten()
    keep = flat <= mirror
    return flat[keep], mirror[keep]

def fourier_basis_images(h: int, w: int, index: torch.Tensor, dtype=torch.float32, device=None) -> torch.Tensor:
    """Real unit-L2-norm Fourier basis images for flat indices of the centred DFT grid.

    The image for ``(u, v)`` is the Hartley basis image ``idht2(e_uv)`` (:func:`freqkit.idht2`):
    a sinusoid at frequency ``(u, v)`` (and so also ``-(u, v)``), ``cos + sin`` of the phase
    over ``sqrt(H W)``; its DFT is supported exactly on ``(u, v)`` and its mirror, like the
    basis of Yin et al. 2019 ("A Fourier perspective on model robustness", who use the same
    sinusoid with another phase).  These are the perturbations :func:`fourier_heatmap` adds.
    Arguments are not checked.

    Args:
        h, w: grid (image) size.
        index: 1-D integer tensor of flat indices ``u * w + v`` into the centred ``h x w``
            grid of :func:`freqkit.dft2` (zero frequency at ``(h // 2, w // 2)``), each in
            ``[0, h * w)``.
        dtype: dtype of the result (floating point).
        device: device of the result (``index`` is moved there).

    Returns:
        Tensor of ``dtype``, each image of L2 norm 1.

    Shape:
        - index: ``(D,)``.
        - Output: ``(D, H, W)``.

    Example:
        >>> import torch, freqkit as fk
        >>> b = fk.fourier_basis_images(4, 4, torch.tensor([0, 5, 9]))
        >>> tuple(b.shape), [round(float(n), 4) for n in b.flatten(1).norm(dim=1)]
        ((3, 4, 4), [1.0, 1.0, 1.0])
        >>> (fk.dft2(b).abs() > 1e-5).flatten(1).sum(1).tolist()   # (u, v) and its mirror; (-2, -2) is its own
        [1, 2, 2]
    """
    e = torch.zeros(index.numel(), h * w, dtype=dtype, device=device)
    e[torch.arange(index.numel(), device=device), index.to(device)] = 1.0
    return idht2(e.reshape(-1, h, w))

_METRICS = ("error", "logit_change")
_SIGNS = ("stream", "hashed")
_M32 = 0xFFFFFFFF


def _mirror_flat(h: int, w: int, device=None) -> torch.Tensor:
    """For every flat index of the centred ``h x w`` grid, the flat index of ``-f``."""
    u = torch.arange(h, device=device)
    v = torch.arange(w, device=device)
    mu = ((-(u - h // 2)) % h + h // 2) % h
    mv = ((-(v - w // 2)) % w + w // 2) % w
    return (mu[:, None] * w + mv[None, :]).flatten()


def fourier_directions(h: int, w: int, step: int | None = None, radii=None, n_angles: int | None = None
                       ) -> torch.Tensor:
    """The frequencies a sub-grid Fourier heat map evaluates, as flat indices of the centred grid.

    A full map costs :func:`n_fourier_directions` ``(H, W)`` perturbed forward passes per
    image (25,090 at 224 x 224); a sub-grid costs one per direction returned here:

    * ``step=k``: every ``k``-th frequency along each axis, counted from the zero frequency
      (``u - H//2`` and ``v - W//2`` both multiples of ``k``), about
      ``n_fourier_directions(H, W) / k**2`` directions (1,570 at 224 x 224 with ``k=4``).
    * ``radii`` with ``n_angles``: the grid point nearest to radius ``r`` (normalised
      radius, units of Nyquist as :func:`freqkit.frequency_radius`) at each of ``n_angles``
      angles evenly spaced in ``[0, pi)`` (a frequency and its mirror are one direction),
      at most ``len(radii) * n_angles`` directions after duplicates are merged: a radial
      profile at a fixed cost whatever the image size.

    Each direction is given by the smaller flat index of its conjugate pair ``{f, -f}``
    (the one :func:`fourier_heatmap` evaluates); the selection is closed under ``f -> -f``.

    Args:
        h, w: grid (image) size, integers ``>= 1``.
        step: sub-grid spacing, an integer ``>= 1`` (1: every direction).
        radii: normalised radii, each finite and in ``[0, sqrt(2)]``; with ``n_angles``.
        n_angles: angles per radius, an integer ``>= 1``.

    Returns:
        int64 tensor of sorted flat indices ``u * w + v`` into the centred grid, for the
        ``directions=`` argument of :func:`fourier_heatmap`.

    Shape:
        - Output: ``(D,)``.

    Raises:
        ValueError: ``h``, ``w``, ``step`` or ``n_angles`` not an integer ``>= 1``; both or
            neither of ``step`` and ``radii`` given; ``radii`` empty, or a radius not finite
            or outside ``[0, sqrt(2)]``; ``n_angles`` missing with ``radii``.

    Example:
        >>> import torch
        >>> from freqkit.heatmaps import fourier_directions, n_fourier_directions
        >>> n_fourier_directions(32, 32), fourier_directions(32, 32, step=4).numel()
        (514, 34)
        >>> fourier_directions(224, 224, step=4).numel()
        1570
        >>> fourier_directions(224, 224, radii=[0.25, 0.5, 1.0], n_angles=8).numel()
        24
    """
    check_positive_int(h, "h")
    check_positive_int(w, "w")
    if (step is None) == (radii is None):
        raise ValueError("give either step (every step-th frequency) or radii with n_angles (radial/angular "
                         f"sampling), got step={step!r}, radii={radii!r}")
    idx_all, _ = _conjugate_pairs(h, w)
    if step is not None:
        check_positive_int(step, "step")
        cu = torch.arange(h) - h // 2
        cv = torch.arange(w) - w // 2
        keep = ((cu % step == 0)[:, None] & (cv % step == 0)[None, :]).flatten()
        return idx_all[keep[idx_all]]
    if n_angles is None:
        raise ValueError("n_angles must be given with radii: angles per radius, an integer >= 1")
    check_positive_int(n_angles, "n_angles")
    try:
        r = torch.as_tensor([float(v) for v in radii], dtype=torch.float64)
    except (TypeError, ValueError) as e:
        raise ValueError(f"radii must be a sequence of numbers, got {radii!r}") from e
    if r.numel() == 0 or not bool(torch.isfinite(r).all()) or float(r.min()) < 0 \
            or float(r.max()) > math.sqrt(2) + 1e-9:
        raise ValueError(f"radii must hold at least one finite radius in [0, sqrt(2)] (units of Nyquist), got "
                         f"{radii!r}")
    theta = torch.arange(n_angles, dtype=torch.float64) * math.pi / n_angles
    cu = torch.round(r[:, None] * (h / 2) * torch.sin(theta)[None]).long().flatten()
    cv = torch.round(r[:, None] * (w / 2) * torch.cos(theta)[None]).long().flatten()
    flat = ((cu + h // 2) % h) * w + (cv + w // 2) % w          # aliasing: +Nyquist is -Nyquist
    return _representatives(flat, h, w)


def _representatives(flat: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """Sorted unique smaller members of the conjugate pairs of ``flat``."""
    mirror = _mirror_flat(h, w, flat.device)
    return torch.unique(torch.minimum(flat, mirror[flat]))


def _select_directions(h: int, w: int, directions, device):
    """``(idx, mirror, pos, complete)``: evaluated directions, their mirrors, positions among all pairs."""
    idx_all, mirror_all = _conjugate_pairs(h, w, device)
    if directions is None:
        return idx_all, mirror_all, None, True
    if isinstance(directions, bool):
        raise TypeError(f"directions must be None, an int step or a 1-D tensor of flat indices, got {directions!r}")
    if isinstance(directions, int):
        reps = fourier_directions(h, w, step=directions).to(device)
    elif isinstance(directions, torch.Tensor):
        if directions.dim() != 1 or directions.is_floating_point() or directions.is_complex() \
                or directions.dtype == torch.bool:
            raise ValueError(f"directions must be a 1-D integer tensor of flat indices (fourier_directions), got "
                             f"dtype {directions.dtype}, shape {tuple(directions.shape)}")
        if directions.numel() == 0:
            raise ValueError("directions selects no frequency (an empty tensor)")
        d = directions.to(device=device, dtype=torch.int64)
        if int(d.min()) < 0 or int(d.max()) >= h * w:
            raise ValueError(f"directions must hold flat indices in [0, {h * w}) of the {h}x{w} grid, got range "
                             f"[{int(d.min())}, {int(d.max())}]")
        reps = _representatives(d, h, w)
    else:
        raise TypeError("directions must be None (every frequency), an int step (every step-th frequency) or a 1-D "
                        f"tensor of flat indices (fourier_directions), got {type(directions).__name__}")
    pos = torch.searchsorted(idx_all, reps)
    return idx_all[pos], mirror_all[pos], pos, False


def _mix32(v: torch.Tensor) -> torch.Tensor:
    """A 32-bit integer hash (two multiply-xorshift rounds) of int64 values in ``[0, 2**32)``."""
    v = v ^ (v >> 16)
    v = (v * 0x45D9F3B) & _M32
    v = v ^ (v >> 16)
    v = (v * 0x45D9F3B) & _M32
    return v ^ (v >> 16)


def _hashed_signs(seed: int, flat: torch.Tensor, images: torch.Tensor, c: int, dtype, device) -> torch.Tensor:
    """``(D, n, C)`` signs +-1, each a hash of (seed, frequency, global image index, channel)."""
    s = int(seed) % (1 << 64)
    key = _mix32(torch.tensor((s & _M32) ^ int(_mix32(torch.tensor(s >> 32))), dtype=torch.int64))
    f = flat.to(device=device, dtype=torch.int64).view(-1, 1, 1)
    i = images.to(device=device, dtype=torch.int64).view(1, -1, 1) & _M32
    ch = torch.arange(c, device=device, dtype=torch.int64).view(1, 1, -1)
    v = _mix32((key.to(device) + f) & _M32)
    v = _mix32(v ^ i)
    v = _mix32((v + ch * 0x9E3779B9) & _M32)
    return (((v >> 8) & 1) * 2 - 1).to(dtype)


class _LayerHooks:
    """Forward hooks that keep the (flattened) outputs of named submodules of the last forward pass."""

    def __init__(self, model, names: tuple):
        self.names = names
        self.out: dict = {}
        self.handles = []
        self.modules = dict(model.named_modules()) if names else {}

    def __enter__(self):
        for name in self.names:
            self.handles.append(self.modules[name].register_forward_hook(self._hook(name)))
        return self

    def _hook(self, name):
        def keep(module, inputs, output):
            t = output[0] if isinstance(output, (tuple, list)) and output else output
            if not isinstance(t, torch.Tensor):
                raise TypeError(f"layers: submodule {name!r} returned a {type(output).__name__}, not a tensor")
            self.out[name] = t.detach().flatten(1)
        return keep

    def take(self) -> dict:
        missing = [n for n in self.names if n not in self.out]
        if missing:
            raise ValueError(f"layers: submodule(s) {missing} did not run in the model's forward pass")
        out, self.out = self.out, {}
        return out

    def __exit__(self, *exc):
        for h in self.handles:
            h.remove()
        self.handles = []
        return False


def _check_layers(model, layers) -> tuple:
    """Layer names as a tuple, each a submodule of ``model``."""
    if layers is None:
        return ()
    names = (layers,) if isinstance(layers, str) else tuple(layers)
    if not names:
        return ()
    if not isinstance(model, nn.Module):
        raise TypeError(f"layers needs model to be an nn.Module (its submodules are hooked), got "
                        f"{type(model).__name__}")
    known = dict(model.named_modules())
    for n in names:
        if not isinstance(n, str) or not n or n not in known:
            listed = [k for k in known if k][:40]
            raise ValueError(f"layers: the model ({type(model).__name__}) has no submodule {n!r}; its submodules "
                             f"are named like {listed}")
    return names


def _check_eps(eps) -> float:
    if isinstance(eps, bool) or not isinstance(eps, (int, float)) or not math.isfinite(eps) or eps < 0:
        raise ValueError(f"eps must be a finite number >= 0, got {eps!r}")
    return eps


def _run_block(model, xb, yb, off, dir_flat, sign_of, eps, batch_size, metrics, hooks, accs, laccs, bar,
               count_clean):
    """Every direction of ``dir_flat`` on the images ``xb`` (global indices ``off + j``).

    Adds per-direction sums over the images to ``accs[metric]`` and ``laccs[layer]``; returns
    the number of images ``xb`` classified correctly unperturbed when ``count_clean``, else 0.
    """
    n, c, h, w = xb.shape
    clean_y, clean_acts, correct = None, {}, 0
    checked = False
    if "logit_change" in metrics or hooks.names or count_clean:
        clean = check_model_output(model(xb), model)
        if hooks.names:
            clean_acts = hooks.take()
        if metrics:
            check_label_range(yb, clean.shape[1])
            checked = True
            if "logit_change" in metrics:
                clean_y = clean.gather(1, yb[:, None]).squeeze(1)
            if count_clean:
                correct = int((clean.argmax(1) == yb).sum())
    n_dir = dir_flat.numel()
    dirs_per_batch = max(1, batch_size // n)
    imgs_per_batch = min(n, batch_size)
    for d0 in range(0, n_dir, dirs_per_batch):
        for i0 in range(0, n, imgs_per_batch):
            d1, i1 = min(d0 + dirs_per_batch, n_dir), min(i0 + imgs_per_batch, n)
            basis = fourier_basis_images(h, w, dir_flat[d0:d1], xb.dtype, xb.device)    # (D, H, W)
            s = sign_of(off, d0, d1, i0, i1)                                             # (D, n, C)
            xp = xb[i0:i1].unsqueeze(0) + eps * s[..., None, None] * basis[:, None, None]
            xp = xp.clamp(0.0, 1.0).reshape(-1, c, h, w)
            logits = check_model_output(model(xp), model)
            if metrics:
                yy = yb[i0:i1].repeat(d1 - d0)
                if not checked:
                    check_label_range(yy, logits.shape[1])
                    checked = True
                for m_, acc in accs.items():
                    if m_ == "error":
                        val = (logits.argmax(1) != yy).to(torch.float64)
                    else:
                        val = (clean_y[i0:i1].repeat(d1 - d0) - logits.gather(1, yy[:, None]).squeeze(1)).double()
                    if acc.dim() == 2:      # per image: (directions, images of x)
                        acc[d0:d1, off + i0:off + i1] += val.reshape(d1 - d0, i1 - i0)
                    else:
                        acc[d0:d1] += val.reshape(d1 - d0, i1 - i0).sum(1)
            if hooks.names:
                for name, a in hooks.take().items():
                    diff = a.reshape(d1 - d0, i1 - i0, -1).double() - clean_acts[name][i0:i1].unsqueeze(0).double()
                    laccs[name][d0:d1] += diff.norm(dim=2).sum(1)
            bar.update(1)
    return correct


def _assemble(acc: torch.Tensor, n: int, idx, mirror, h: int, w: int, complete: bool) -> torch.Tensor:
    """The ``(H, W)`` float32 map: per-direction means at ``f`` and ``-f``; NaN where not evaluated.

    A ``(D, N)`` ``acc`` (per image) gives ``(N, H, W)``: each image's own values.
    """
    if acc.dim() == 2:
        hm = torch.full((h * w, acc.shape[1]), 0.0 if complete else float("nan"), dtype=torch.float64,
                        device=acc.device)
        hm[idx.to(acc.device)] = acc
        hm[mirror.to(acc.device)] = acc
        return hm.T.reshape(-1, h, w).to(torch.float32)
    if complete:
        hm = torch.zeros(h * w, dtype=torch.float64, device=acc.device)
    else:
        hm = torch.full((h * w,), float("nan"), dtype=torch.float64, device=acc.device)
    hm[idx.to(acc.device)] = acc / n
    hm[mirror.to(acc.device)] = acc / n
    return hm.reshape(h, w).to(torch.float32)


def _heatmap_pass(model, x, y, *, eps, batch_size, seed, metric, layers, directions, signs, progress, what,
                  labels_needed=True, per_image=False) -> dict:
    """The one engine of the heat maps: validation, sharding, the perturbed passes, the full result.

    Returns ``{"maps": {metric: map}, "layer_maps": {layer: map}, "n": images, "clean_correct":
    int or None (iterables only), "n_directions": evaluated, "shape": (C, H, W)}``.
    """
    tensor = isinstance(x, torch.Tensor)
    w_ = world()
    info = {}
    with fail_together(what, fingerprint=lambda: info):
        if tensor:
            check_images(x, "x", unit_range=True)
        several = isinstance(metric, (tuple, list))
        metrics = tuple(metric) if several else ((metric,) if metric is not None else ())
        if several and not metrics:
            raise ValueError("metric must name at least one of ['error', 'logit_change'], got an empty tuple")
        for m_ in metrics:
            check_choice(m_, "metric", _METRICS)
        if tensor:
            n, c, h, w = x.shape
            if metrics or y is not None:
                y = check_labels(y, n, x.device)
        _check_eps(eps)
        check_positive_int(batch_size, "batch_size")
        names = _check_layers(model, layers)
        signs = ("stream" if tensor else "hashed") if signs is None else signs
        check_choice(signs, "signs", _SIGNS)
        if not tensor:
            if y is not None:
                raise ValueError("y must be None when x is an iterable of (images, labels) batches (e.g. a DataLoader)")
            if signs == "stream":
                raise ValueError("signs='stream' draws one random stream over every (direction, image, channel) and "
                                 "needs x as a tensor; with an iterable of batches use signs='hashed'")
            if not hasattr(x, "__iter__"):
                raise TypeError(f"x must be a tensor of images or an iterable of (images, labels) batches (e.g. a "
                                f"DataLoader), got {type(x).__name__}")
            if per_image:
                raise ValueError("per_image=True needs x as a tensor of images (the maps of every image are kept), "
                                 "not an iterable of batches")
        if tensor:
            dirs = _select_directions(h, w, directions, x.device)
            info.update(n=n, shape=f"{c}x{h}x{w}", x_sum=checksum(x),
                        y_sum=checksum(y) if y is not None else -1)
        info.update(eps=float(eps), seed=int(seed), signs=signs, metrics=",".join(metrics), layers=",".join(names),
                    directions=("all" if directions is None else
                                directions if isinstance(directions, int) else int(directions.numel())))
    hooks = _LayerHooks(model, names)
    count_clean = not tensor and bool(metrics)
    res = {"clean_correct": None}
    if tensor:
        idx, mirror, pos, complete = dirs
        part = shard(idx.numel())
        my_idx = idx[part]
        dev = x.device
        accs = {m_: torch.zeros((my_idx.numel(), n) if per_image else my_idx.numel(), dtype=torch.float64,
                                device=dev) for m_ in metrics}
        laccs = {nm: torch.zeros(my_idx.numel(), dtype=torch.float64, device=dev) for nm in names}
        blocks = [(0, n)] if not names else [(b, min(n, b + batch_size)) for b in range(0, n, batch_size)]
        total = sum(math.ceil(my_idx.numel() / max(1, batch_size // (b1 - b0)))
                    * math.ceil((b1 - b0) / min(b1 - b0, batch_size)) for b0, b1 in blocks)
        with fail_together(f"{what}: computing"):
            if signs == "stream":
                gen = torch.Generator(device="cpu").manual_seed(int(seed))
                # Signs drawn up front, per (direction, image, channel), so that the map does not
                # depend on batch_size, on a sub-grid or on the number of ranks.
                # Drawn as int8 (one byte each; torch draws the same values for every integer dtype),
                # then only the rows of the directions evaluated here are kept, in x's dtype.
                draw = torch.randint(0, 2, (_conjugate_pairs(h, w)[0].numel(), n, c), generator=gen,
                                     dtype=torch.int8)
                if not (pos is None and part == slice(0, idx.numel())):
                    draw = draw[(torch.arange(idx.numel()) if pos is None else pos.cpu())[part]]
                rows = (draw * 2 - 1).to(device=dev, dtype=x.dtype)
                del draw

                def sign_of(off, d0, d1, i0, i1):
                    return rows[d0:d1, off + i0:off + i1]
            else:
                def sign_of(off, d0, d1, i0, i1):
                    return _hashed_signs(seed, my_idx[d0:d1], torch.arange(off + i0, off + i1), c, x.dtype, dev)
            with eval_mode(model), torch.no_grad(), hooks, \
                    progress_bar(None, enabled=progress and w_.rank == 0, total=total, desc=what) as bar:
                for b0, b1 in blocks:
                    _run_block(model, x[b0:b1], None if y is None else y[b0:b1], b0, my_idx, sign_of, eps,
                               batch_size, metrics, hooks, accs, laccs, bar, False)
        accs = {k: all_gather_rows(v, what) for k, v in accs.items()}
        laccs = {k: all_gather_rows(v, what) for k, v in laccs.items()}
        n_total = n
    else:
        dev = model_device(model)
        batches, n_batches = local_batches(x, None, batch_size, "x")
        state = {"shape": None, "n": 0, "correct": 0}
        accs, laccs = {}, {}
        with fail_together(f"{what}: computing"):
            with eval_mode(model), torch.no_grad(), hooks, \
                    progress_bar(None, enabled=progress and w_.rank == 0, total=None, desc=what, unit="batch") as bar:
                for off, xb, yb in batches:
                    where = f"x's batch at image {off}"
                    check_images(xb, where, unit_range=True)
                    xb = xb.to(dev)
                    yb = check_labels(torch.as_tensor(yb), xb.shape[0], dev, name=f"labels of {where}") \
                        if metrics else None
                    if xb.shape[0] == 0:
                        continue
                    if state["shape"] is None:
                        state["shape"] = tuple(xb.shape[1:])
                        c, h, w = state["shape"]
                        idx, mirror, pos, complete = _select_directions(h, w, directions, dev)
                        accs = {m_: torch.zeros(idx.numel(), dtype=torch.float64, device=dev) for m_ in metrics}
                        laccs = {nm: torch.zeros(idx.numel(), dtype=torch.float64, device=dev) for nm in names}
                    elif tuple(xb.shape[1:]) != state["shape"]:
                        raise ValueError(f"x's batches must all hold images of one shape: {where} has "
                                         f"{tuple(xb.shape[1:])}, the first had {state['shape']}")
                    null = _NullBar()

                    def sign_of(off_, d0, d1, i0, i1, _idx=idx, _c=c, _dt=xb.dtype):
                        return _hashed_signs(seed, _idx[d0:d1], torch.arange(off_ + i0, off_ + i1), _c, _dt, dev)
                    state["correct"] += _run_block(model, xb, yb, off, idx, sign_of, eps, batch_size, metrics, hooks,
                                                   accs, laccs, null, count_clean)
                    state["n"] += int(xb.shape[0])
                    bar.update(1)
        # Every rank learns the image shape (a rank may have had no batch) and the totals.
        c, h, w = agree_shape(state["shape"], 3, what)
        if state["shape"] is None:
            idx, mirror, pos, complete = _select_directions(h, w, directions, dev)
            accs = {m_: torch.zeros(idx.numel(), dtype=torch.float64, device=dev) for m_ in metrics}
            laccs = {nm: torch.zeros(idx.numel(), dtype=torch.float64, device=dev) for nm in names}
        counts = all_reduce_sum(torch.tensor([state["n"], state["correct"]], dtype=torch.int64), what)
        n_total = int(counts[0])
        res["clean_correct"] = int(counts[1]) if count_clean else None
        accs = {k: all_reduce_sum(v, what) for k, v in accs.items()}
        laccs = {k: all_reduce_sum(v, what) for k, v in laccs.items()}
    res.update(maps={k: _assemble(v, n_total, idx, mirror, h, w, complete) for k, v in accs.items()},
               layer_maps={k: _assemble(v, n_total, idx, mirror, h, w, complete) for k, v in laccs.items()},
               n=n_total, n_directions=int(idx.numel()), shape=(c, h, w), metrics=metrics, several=several)
    return res


class _NullBar:
    """A progress bar that shows nothing (the per-direction steps of one streamed batch)."""

    def update(self, k=1):
        return None


def fourier_heatmap(model: nn.Module, x, y: torch.Tensor | None = None, eps: float = 4.0,
                    batch_size: int = 512, seed: int = 0, metric: str = "error",
                    progress: bool = True, directions=None, signs: str | None = None,
                    per_image: bool = False) -> torch.Tensor:
    """Fourier heat map (Yin et al. 2019, "A Fourier perspective on model robustness").

    For every frequency ``(u, v)`` of the centred DFT grid, each image gets the real
    unit-L2-norm Fourier basis image ``U_uv`` (:func:`fourier_basis_images`: a sinusoid
    whose spectrum sits at ``(u, v)`` and ``(-u, -v)``) added with norm ``eps`` and a random
    sign per image and channel, ``clamp(x + eps * s * U_uv, 0, 1)``; the map holds the
    model's error rate on these images (``metric="error"``: ``argmax != y``, over all
    images, including those misclassified clean) or the mean drop of the true class's logit
    (``metric="logit_change"``: ``logit_y(x) - logit_y(x + perturbation)``).  A frequency
    and its mirror share one basis image, so each conjugate pair is evaluated once and the
    map is symmetric under ``f -> -f``.  The model runs in eval mode (every submodule's
    mode restored after), without gradients.

    Random signs (``signs``): ``"stream"`` (the default for tensor ``x``) draws them up front
    from ``seed``, one stream over (direction, image, channel) of the whole grid, so the
    map does not depend on ``batch_size``, ``directions`` or the number of ranks (while it
    runs it keeps one byte per direction of the whole grid, image and channel, 75 kB per
    224x224 image, and the signs of the directions it evaluates in ``x``'s dtype: 0.3 MB per
    224x224 image for the full grid in float32, a sixteenth of that for ``directions=4``,
    half of it on each of 2 ranks); ``"hashed"`` (the default, and the only choice, for an
    iterable ``x``) makes each sign a hash of (seed, frequency, image index, channel):
    nothing kept in memory, the same for a tensor and for a DataLoader of the same images,
    but other signs than ``"stream"``.

    Sub-grids (``directions``): ImageNet-sized images have about ``H W / 2`` directions
    (25,090 at 224 x 224); ``directions=k`` evaluates every ``k``-th frequency along each
    axis, or pass :func:`fourier_directions` (``step=``, or ``radii=`` with ``n_angles=``
    for radial/angular sampling) or any flat indices.  The values at the evaluated
    frequencies equal those of the full map (same signs); the others are NaN.

    Under ``torch.distributed`` (an initialised process group with several ranks, e.g.
    ``torchrun``): a tensor ``x`` is split by direction (each rank evaluates a contiguous
    share of the directions on every image), an iterable by batch (:func:`freqkit._distributed.local_batches`:
    a sequential DataLoader over its dataset's indices, anything else every ``size``-th
    batch); every rank returns the full map, equal (to float rounding: batches differ) to
    one process's.  Every rank must pass the same data and arguments (checked on the number
    and sum of the images and the arguments); a rank that raises makes every rank raise
    (``RankFailed`` on the others).

    Args:
        model: classifier on ``[0, 1]`` images, returning logits ``(n, K)``: an
            ``nn.Module`` or any callable.
        x: images in ``[0, 1]``, at least one; or an iterable of ``(images, labels)``
            batches (a DataLoader) with ``y=None``, streamed: each batch is moved to the
            model's device and then dropped.
        y: labels in ``[0, K)`` for tensor ``x``; ``None`` for an iterable.
        eps: L2 norm of the perturbation per channel on ``[0, 1]`` images, a finite number
            ``>= 0``; ``4.0`` (default) is the CIFAR-10 convention of Yin et al. 2019 (a
            large, visible perturbation).
        batch_size: perturbed images per forward pass, ``>= 1`` (directions x images are
            batched).
        seed: seed of the random signs.
        metric: ``"error"`` (default) or ``"logit_change"``, or a tuple/list of both: then
            both maps come from the same perturbed images in one pass (half the cost of two
            calls) and a ``{metric: map}`` dict is returned.
        progress: show a progress bar (on a terminal; rank 0 only).
        directions: ``None`` (default: every direction), an int ``k`` (every ``k``-th
            frequency, :func:`fourier_directions`) or a 1-D integer tensor of flat indices of
            the centred grid (each standing for its conjugate pair).
        signs: ``"stream"``, ``"hashed"`` or ``None`` (see above).
        per_image: return every image's own map, ``(N, H, W)`` (``"error"``: 0 or 1 per
            image and frequency; ``"logit_change"``: that image's drop), instead of their
            mean; the same perturbed images, so the mean over images of the per-image maps
            is the map (to float rounding).  For per-image summaries
            (:func:`heatmap_summary` of the stack) that a bootstrap over images needs.
            Tensor ``x`` only; keeps ``8 N D`` bytes for ``D`` directions (4 MB for 1,000
            CIFAR images on the full grid).

    Returns:
        float32 map on ``x``'s device (an iterable: the model's device), laid out on the
        centred grid of :func:`freqkit.dft2` (zero frequency at ``(H//2, W//2)``), error
        rates in ``[0, 1]`` or mean logit drops, NaN at frequencies a sub-grid leaves out;
        a ``{metric: map}`` dict when ``metric`` is a tuple or list; ``(N, H, W)`` maps with
        ``per_image=True``.

    Shape:
        - x: ``(N, C, H, W)``.
        - y: ``(N,)``.
        - Output: ``(H, W)`` (each map); ``(N, H, W)`` with ``per_image=True``.

    Raises:
        TypeError: ``x`` not a floating-point tensor (nor an iterable), ``y`` not an integer
            tensor; ``directions`` of another type.
        ValueError: ``x`` not 4-D, not finite, outside ``[0, 1]`` or holding no image
            ("x holds no images (N = 0)"); ``metric`` empty or not
            ``"error"``/``"logit_change"``; ``y`` not ``(N,)`` or outside ``[0, K)``;
            ``eps`` not a finite number ``>= 0``; ``batch_size`` not an integer ``>= 1``;
            ``signs`` unknown, or ``"stream"`` with an iterable; ``y`` or ``per_image``
            given with an iterable; a batch of an iterable that is not ``(images, labels)``
            or of another image shape; ``directions`` empty or outside the grid; the model returning
            anything but finite ``(n, K)`` logits (NaN or inf: a corrupt or diverged
            checkpoint; the message names the model); different inputs on different ranks.
        RankFailed: (distributed) another rank raised.
        DistributedError: (distributed) a rank died or hung past the process group's timeout.

    Cost: per image, one perturbed forward pass per direction evaluated:
    :func:`n_fourier_directions` ``(H, W)`` for the full map (514 at 32 x 32, 25,090 at 224 x
    224), ``len(fourier_directions(...))`` for a sub-grid (1,570 at 224 x 224 with
    ``directions=4``, 394 with ``8``), in about ``ceil(N * D / batch_size)`` forward passes of
    ``batch_size`` images, plus one clean pass for ``"logit_change"`` (and for an iterable).
    Peak memory: ``batch_size`` perturbed images and the model's activations for them, the
    images of ``x`` (a tensor) or of one batch (an iterable), and the ``"stream"`` signs.

    Example:
        >>> import torch, freqkit as fk
        >>> _ = torch.manual_seed(0); model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(16, 3))
        >>> x, y = torch.rand(2, 1, 4, 4), torch.tensor([0, 1])
        >>> hm = fk.fourier_heatmap(model, x, y, eps=1.0, progress=False)
        >>> tuple(hm.shape), bool(((hm >= 0) & (hm <= 1)).all())
        ((4, 4), True)
    """
    r = _heatmap_pass(model, x, y, eps=eps, batch_size=batch_size, seed=seed, metric=metric, layers=None,
                      directions=directions, signs=signs, progress=progress, what="fourier_heatmap",
                      per_image=bool(per_image))
    return r["maps"] if r["several"] else r["maps"][metric]


def fourier_layer_heatmap(model: nn.Module, x, layers, eps: float = 4.0, batch_size: int = 512, seed: int = 0,
                          directions=None, signs: str | None = None, relative_scale: bool = False,
                          progress: bool = True) -> dict:
    """Per-layer Fourier heat maps: how much each named layer's activations move under each Fourier perturbation.

    As in Yin et al. 2019's code (``generate_freq_heatmap`` in their ``freq_heatmap.py``:
    "feed clean images and evaluate the tensors, then feed corrupted images using Fourier
    basis and evaluate the tensors, and compare"): for every direction
    ``f`` of the centred DFT grid (or of a sub-grid, ``directions``) and every named layer
    ``l``, the mean over images of ``||a_l(x + eps s U_f) - a_l(x)||_2``, the L2 norm over
    all of the layer's output elements of the change of its activations, with the same
    perturbed images (signs, clamping to ``[0, 1]``) as :func:`fourier_heatmap`.
    ``relative_scale=True`` divides each map by its maximum (their ``relative_scale``).
    Layers are named as in ``model.named_modules()`` (e.g. ``"net.layer1"`` for the
    torchvision ResNet inside :func:`freqkit.load_imagenet_classifier`); a layer returning a
    tuple is represented by its first element.  The model runs in eval mode, without
    gradients; sharded under ``torch.distributed`` as :func:`fourier_heatmap`.

    Args:
        model: an ``nn.Module`` on ``[0, 1]`` images.
        x: images ``(N, C, H, W)`` in ``[0, 1]``, or an iterable of ``(images, labels)``
            batches (labels unused).
        layers: a submodule name or a sequence of them, at least one.
        eps: L2 norm of the perturbation per channel, a finite number ``>= 0``.
        batch_size: perturbed images per forward pass, ``>= 1``.
        seed: seed of the random signs.
        directions: as :func:`fourier_heatmap` (``None``, an int step, or flat indices).
        signs: as :func:`fourier_heatmap`.
        relative_scale: divide each map by its largest value (when that is > 0).
        progress: show a progress bar (on a terminal; rank 0 only).

    Returns:
        ``{layer: map}``: float32 ``(H, W)`` maps on the centred DFT grid (NaN where a
        sub-grid leaves a frequency out), on ``x``'s device (an iterable: the model's).

    Shape:
        - x: ``(N, C, H, W)``.
        - Output: each ``(H, W)``.

    Raises:
        TypeError: ``model`` not an ``nn.Module``; a layer whose output is not a tensor.
        ValueError: ``layers`` empty or naming no submodule of ``model`` (the message lists
            some names); a layer that does not run in the forward pass; and what
            :func:`fourier_heatmap` rejects (``x``, ``eps``, ``batch_size``, ``directions``,
            ``signs``, a model output holding NaN or inf).

    Cost: as :func:`fourier_heatmap` plus one clean pass per image; peak memory adds the
    clean activations of the hooked layers for ``min(N, batch_size)`` images (a tensor) or
    one batch (an iterable), and those of one forward pass.

    Example:
        >>> import torch
        >>> from freqkit.heatmaps import fourier_layer_heatmap
        >>> net = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3, padding=1), torch.nn.ReLU(), torch.nn.Flatten(),
        ...                           torch.nn.Linear(32, 3))
        >>> maps = fourier_layer_heatmap(net, torch.rand(2, 1, 4, 4), ["0", "3"], eps=1.0, progress=False)
        >>> sorted(maps), tuple(maps["0"].shape), bool((maps["0"] > 0).all())
        (['0', '3'], (4, 4), True)
    """
    names = (layers,) if isinstance(layers, str) else tuple(layers) if layers is not None else ()
    if not names:
        raise ValueError("layers must name at least one submodule of the model, e.g. ['layer1']")
    r = _heatmap_pass(model, x, None, eps=eps, batch_size=batch_size, seed=seed, metric=None, layers=names,
                      directions=directions, signs=signs, progress=progress, what="fourier_layer_heatmap")
    maps = r["layer_maps"]
    if relative_scale:
        for k, m in maps.items():
            top = float(torch.nan_to_num(m, nan=0.0).max())
            if top > 0:
                maps[k] = m / top
    return maps


def heatmap_radial_profile(hm: torch.Tensor, n_bins: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Average a Fourier heat map (centred DFT grid, :func:`fourier_heatmap`) over rings.

    The mean of ``hm`` over each of ``n_bins`` equal-width radial bands of the normalised
    DFT radius (:func:`freqkit.frequency_radius`, from 0 to the grid's largest radius), e.g.
    the error rate as a function of the perturbation's frequency.  A band holding no grid
    point is left out, so fewer than ``n_bins`` values may come back.  NaN entries (the
    frequencies a sub-grid map did not evaluate) are left out of the means, and a band
    holding only NaN is left out.

    Args:
        hm: the map, on the centred DFT grid.
        n_bins: number of radial bands, ``>= 1``; default ``None``: ``min(H, W) // 2`` (at
            least 1).

    Returns:
        ``(centres, values)``: float64 numpy arrays, the mean normalised radius (units of
        Nyquist) and the mean of ``hm`` over each non-empty band.

    Shape:
        - hm: ``(H, W)``.
        - Output: ``centres``, ``values`` ``(B,)``, ``B <= n_bins``.

    Raises:
        TypeError: ``hm`` not a floating-point tensor.
        ValueError: ``hm`` not 2-D, holding inf or only NaN; ``n_bins`` not an integer ``>= 1``.
    """
    check_tensor(hm, "hm", ndim=2, finite=False)
    if bool(torch.isinf(hm).any()) or bool(torch.isnan(hm).all()):
        raise ValueError("hm contains inf, or only NaN: a heat map holds finite values (NaN only where not evaluated)")
    h, w = hm.shape
    n_bins = max(1, min(h, w) // 2) if n_bins is None else check_positive_int(n_bins, "n_bins")
    r = frequency_radius(h, w, "dft").numpy().ravel()
    v = hm.detach().cpu().double().numpy().ravel()
    edges = np.linspace(0.0, r.max(), n_bins + 1)
    if np.isnan(v).any():                             # a sub-grid map: only the evaluated frequencies
        r, v = r[~np.isnan(v)], v[~np.isnan(v)]
    idx = np.clip(np.searchsorted(edges, r, side="right") - 1, 0, n_bins - 1)
    cnt = np.bincount(idx, minlength=n_bins)
    keep = cnt > 0                                    # a bin between two grid radii is left out
    centres = np.bincount(idx, weights=r, minlength=n_bins)[keep] / cnt[keep]
    values = np.bincount(idx, weights=v, minlength=n_bins)[keep] / cnt[keep]
    return centres, values

def n_fourier_directions(h: int, w: int) -> int:
    """Count the basis directions :func:`fourier_heatmap` evaluates on an ``h x w`` grid.

    One per pair ``{f, -f}`` of the centred DFT grid: ``(H W + s) / 2`` with ``s`` the
    number of self-conjugate frequencies (4 on an even x even grid, 1 on an odd x odd
    one), about ``H W / 2``.  The heat map of ``N`` images costs ``N *
    n_fourier_directions(H, W)`` perturbed forward passes (images, batched).

    Args:
        h, w: grid (image) size, integers ``>= 1``.

    Returns:
        int.

    Raises:
        ValueError: ``h`` or ``w`` not an integer ``>= 1``.

    Example:
        >>> import torch, freqkit as fk
        >>> fk.n_fourier_directions(32, 32), fk.n_fourier_directions(4, 4), fk.n_fourier_directions(3, 3)
        (514, 10, 5)
    """
    check_positive_int(h, "h")
    check_positive_int(w, "w")
    return int(_conjugate_pairs(h, w)[0].numel())


def heatmap_summary(hm) -> dict:
    """Mean of a Fourier heat map over the lower and the upper half of its frequencies, and their difference.

    Halves by DFT radius with equal numbers of grid points, as far as the grid allows
    (:func:`freqkit.equal_count_band_masks` with 2 bands on the centred DFT grid, as
    :func:`freqkit.low_high_masks`; coefficients at one radius are never split), e.g. the
    mean error rate under low-frequency and under high-frequency Fourier-basis
    perturbations.  Yin et al. 2019 ("A Fourier perspective on model robustness") found
    adversarially trained models more sensitive to low-frequency perturbations and less to
    high-frequency ones than standard models: a larger ``low_minus_high``.  NaN entries
    (frequencies a sub-grid map did not evaluate) are left out of the means.

    A stack of per-image maps (:func:`fourier_heatmap` with ``per_image=True``) gives the
    same per image: the values to bootstrap over images (or over seeds, then images, with
    :func:`freqkit.stats.hierarchical_bootstrap_ci`).  The mean of the per-image values is
    the value of the mean map.

    Args:
        hm: the map on the centred DFT grid, ``(H, W)``, or per-image maps ``(N, H, W)``:
            a tensor or anything ``torch.as_tensor`` takes (converted to float64).

    Returns:
        ``{"low", "high", "low_minus_high"}``: floats for one map, float64 numpy arrays
        ``(N,)`` for a stack.

    Shape:
        - hm: ``(H, W)`` or ``(N, H, W)``.

    Raises:
        ValueError: ``hm`` not 2-D or 3-D, empty or holding inf, a half holding only NaN,
            or a grid too small to halve (fewer than 2 distinct radii).

    Example:
        >>> import torch, freqkit as fk
        >>> s = fk.heatmap_summary(fk.frequency_radius(8, 8, "dft"))   # a map that grows with frequency
        >>> sorted(s), bool(s["low"] < s["high"]), bool(s["low_minus_high"] < 0)
        (['high', 'low', 'low_minus_high'], True, True)
        >>> fk.heatmap_summary(torch.zeros(3, 8, 8))["low"].shape
        (3,)
    """
    hm = torch.as_tensor(hm, dtype=torch.float64)
    check_tensor(hm, "hm", min_dim=2, finite=False)
    if hm.dim() > 3 or hm.numel() == 0:
        raise ValueError(f"hm must be one map (H, W) or per-image maps (N, H, W), non-empty, got "
                         f"{tuple(hm.shape)}")
    if bool(torch.isinf(hm).any()):
        raise ValueError("hm contains inf: a heat map holds finite values (NaN only where not evaluated)")
    stack = hm if hm.dim() == 3 else hm.unsqueeze(0)
    m = equal_count_band_masks(hm.shape[-2], hm.shape[-1], 2, basis="dft")
    out = {}
    for name, mask in (("low", m[0]), ("high", m[1])):
        v = stack[:, mask]                                 # (N, points of the half)
        if bool(torch.isnan(v).all(1).any()):
            raise ValueError(f"hm holds no evaluated frequency (only NaN) in its {name} half: use a finer sub-grid")
        out[name] = torch.nanmean(v, 1).numpy()
    out["low_minus_high"] = out["low"] - out["high"]
    if hm.dim() == 2:
        return {k: float(v[0]) for k, v in out.items()}
    return out


def heatmap_report(model: nn.Module, x, y: torch.Tensor | None = None, eps: float = 4.0, batch_size: int = 512,
                   seed: int = 0, n_radial_bins: int | None = None,
                   metrics: tuple = ("error", "logit_change"), directions=None, signs: str | None = None,
                   layers=None, progress: bool = False) -> dict:
    """Fourier heat maps of one model (Yin et al. 2019) with what a chapter reports beside them.

    Computes every metric of ``metrics`` (and the per-layer maps of ``layers``,
    :func:`fourier_layer_heatmap`) with one :func:`fourier_heatmap` pass, their radial
    profiles (:func:`heatmap_radial_profile`), the clean error and the cost.  Sharded under
    ``torch.distributed`` as :func:`fourier_heatmap`: every rank returns the same report
    (the timing is the slowest rank's).

    Args:
        model: classifier on ``[0, 1]`` images.
        x: images in ``[0, 1]``, or an iterable of ``(images, labels)`` batches with
            ``y=None`` (streamed, as :func:`fourier_heatmap`).
        y: labels (tensor ``x``).
        eps: L2 norm of the perturbation per channel (see :func:`fourier_heatmap`).
        batch_size: perturbed images per forward pass.
        seed: seed of the random signs.
        n_radial_bins: bands of the radial profiles (default as
            :func:`heatmap_radial_profile`).
        metrics: a metric name or a tuple of them (``"error"``, ``"logit_change"``).
        directions: sub-grid of :func:`fourier_heatmap` (``None``: every direction).
        signs: ``"stream"``, ``"hashed"`` or ``None`` (see :func:`fourier_heatmap`).
        layers: submodule names for per-layer maps (``None``: none).
        progress: show a progress bar (on a terminal; rank 0 only).

    Returns:
        dict with

        * ``maps``: ``{metric: (H, W) tensor}`` on the centred DFT grid (NaN where a
          sub-grid leaves a frequency out);
        * ``radial``: ``{metric: [centres, values]}`` (lists; :func:`heatmap_radial_profile`);
        * ``clean_error``: the model's error rate on ``x`` unperturbed (float);
        * ``timing``: ``seconds``, ``n_images``, ``n_directions`` (evaluated),
          ``n_directions_full_grid`` (:func:`n_fourier_directions`),
          ``forward_passes_per_image`` (perturbed: ``n_directions``),
          ``ms_per_image_direction``, ``world_size``, ``device`` (every metric comes from the
          same forward passes);
        * ``layer_maps``: ``{layer: (H, W) tensor}`` (only with ``layers``).

    Shape:
        - x: ``(N, C, H, W)``.
        - y: ``(N,)``.

    Raises:
        TypeError: ``x`` not a floating-point tensor (nor an iterable), ``y`` not an integer
            tensor.
        ValueError: ``x`` holding no image; ``metrics`` empty; and what
            :func:`fourier_heatmap` and :func:`heatmap_radial_profile` reject (a model
            output holding NaN or inf, ...).
        RankFailed: (distributed) another rank raised.
    """
    tensor = isinstance(x, torch.Tensor)
    metrics = (metrics,) if isinstance(metrics, str) else tuple(metrics)
    with fail_together("heatmap_report"):
        if tensor:
            check_images(x, "x", nonempty=True)
            y = check_labels(y, x.shape[0], x.device)
        if not metrics:
            raise ValueError("metrics must name at least one metric, e.g. ('error',)")
        if n_radial_bins is not None:
            check_positive_int(n_radial_bins, "n_bins")
        if tensor:
            clean = check_model_output(predict_logits(model, x), model)
            clean_error = float((clean.argmax(1).cpu() != y.cpu()).float().mean())
    t0 = time.perf_counter()
    r = _heatmap_pass(model, x, y if tensor else None, eps=eps, batch_size=batch_size, seed=seed,
                      metric=metrics if len(metrics) > 1 else metrics[0], layers=layers, directions=directions,
                      signs=signs, progress=progress, what="heatmap_report")
    sec = float(all_reduce_max(torch.tensor([time.perf_counter() - t0], dtype=torch.float64), "heatmap_report")[0])
    maps = r["maps"]
    if not tensor:
        clean_error = 1.0 - r["clean_correct"] / r["n"]
    _, h, w = r["shape"]
    n_dir, n = r["n_directions"], r["n"]
    device = str(x.device) if tensor else str(model_device(model))
    out = {"maps": maps,
           "radial": {m: [v.tolist() for v in heatmap_radial_profile(maps[m], n_radial_bins)] for m in maps},
           "clean_error": clean_error,
           "timing": {"seconds": sec, "n_images": int(n), "n_directions": n_dir,
                      "n_directions_full_grid": n_fourier_directions(h, w), "forward_passes_per_image": n_dir,
                      "ms_per_image_direction": 1e3 * sec / max(1, n * n_dir), "world_size": world().size,
                      "device": device}}
    if r["layer_maps"]:
        out["layer_maps"] = r["layer_maps"]
    return out
