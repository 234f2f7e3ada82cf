"""Benchmark: fast adversarial training (FGSM-RS) of the CIFAR-10 cpu preset, whitening regulariser against robustness.

airbench's patch-whitening layer (:class:`freqkit.PatchWhitening`) divides each principal
patch direction by ``sqrt(l + eps)``.  At airbench's ``eps = 5e-4`` the weakest,
highest-frequency directions are amplified up to ``eps ** -0.5 = 45`` times; fast
adversarial training (FGSM with a random start, Wong, Rice & Kolter 2020, "Fast is better
than free") of the cpu preset then overfits catastrophically: the model defeats the single
FGSM step it is trained on and keeps no robustness against PGD.  This benchmark trains the
same FGSM-RS configuration (``freqkit.adversarial_objective("cifar10", method="fgsm_rs")``
on ``PRESETS["cifar10"]["cpu"]``) for each ``whiten_eps`` and seed, in one run, and reports
per model:

* the training seconds and the clean test accuracy (all test images on disk);
* the whitening layer's gain (largest singular value of its filters; at most
  ``whiten_eps ** -0.5``);
* robust accuracy on the first ``--n`` test images under FGSM (one step of eps, no random
  start), PGD-10 (random start, step 2.5 eps / 10) and the reference AutoAttack's APGD-CE +
  APGD-T (``pyautoattack``, when installed), Linf 8/255;
* ``catastrophic``: PGD-10 accuracy below 5% while FGSM accuracy is at least 20% (the
  signature Wong et al. describe).

``--epochs N`` trains N epochs instead of the preset's (the trade-off between training time
and robustness).  Models come from ``--cache-dir`` when already trained there (the book's cache, say);
``cached`` records which.  ``--quick``: 512 training images, 1 epoch, 16 test images, 2
PGD steps, no AutoAttack (seconds): for the tests, not for conclusions.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
if str(HERE) not in sys.path:  # _timing, when loaded from a file by the tests
    sys.path.insert(0, str(HERE))

import freqkit as fk  # noqa: E402
from _timing import cpu_info  # noqa: E402

EPS_LINF = 8 / 255
#: PGD-10 accuracy below this while FGSM accuracy is at least FGSM_AT_LEAST: catastrophic overfitting.
CATASTROPHIC_PGD_BELOW = 0.05
FGSM_AT_LEAST = 0.20


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--whiten-eps", type=float, nargs="+", default=[5e-4, 0.1])
    p.add_argument("--seeds", type=int, nargs="+", default=[0])
    p.add_argument("--n", type=int, default=200, help="test images attacked")
    p.add_argument("--pgd-steps", type=int, default=10)
    p.add_argument("--epochs", type=int, default=None, help="training epochs (default: the preset's; --quick: 1)")
    p.add_argument("--autoattack", action=argparse.BooleanOptionalAction, default=True,
                   help="also the reference APGD-CE + APGD-T (pyautoattack)")
    p.add_argument("--quick", action="store_true", help="512 images, 1 epoch, 16 test images (seconds)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--data-root", default=None)
    p.add_argument("--cache-dir", default=None, help="checkpoint folder (default: a fresh temporary one)")
    p.add_argument("--out", default=str(HERE / "out" / "robust_training.json"))
    return p.parse_args(argv)


def whitening_gain(model: torch.nn.Module) -> float:
    """Largest singular value of the whitening filters ``W`` (the first half of the bank; the rest is ``-W``)."""
    w = model.whiten.weight
    return float(torch.linalg.matrix_norm(w[: w.shape[0] // 2].flatten(1).double(), ord=2))


def evaluate_robustness(model, x, y, pgd_steps: int, autoattack: bool) -> dict:
    """Accuracy of ``model`` on ``(x, y)``: clean, FGSM, PGD-``pgd_steps`` and (optionally) APGD-CE + APGD-T, Linf 8/255."""
    out = {"clean": fk.evaluate(model, x, y)}
    x_fgsm = fk.pgd(model, x, y, eps=EPS_LINF, norm="linf", steps=1, step_size=EPS_LINF, random_start=False,
                    early_stop=False)
    out["fgsm"] = fk.evaluate(model, x_fgsm, y)
    x_pgd = fk.pgd(model, x, y, eps=EPS_LINF, norm="linf", steps=pgd_steps, seed=0)
    out["pgd"] = fk.evaluate(model, x_pgd, y)
    if autoattack:
        r = fk.reference_autoattack(model, x, y, EPS_LINF, version=["apgd-ce", "apgd-t"], seed=0)
        out["autoattack"] = r["accuracy"]
    out["catastrophic"] = bool(out["pgd"] < CATASTROPHIC_PGD_BELOW and out["fgsm"] >= FGSM_AT_LEAST)
    return out


def run(args) -> dict:
    """Train (or load) and attack every (seed, whiten_eps) model; the record (see the module docstring).

    Raises:
        ValueError: ``n``, ``pgd_steps``, ``threads`` or ``epochs`` (when given) not an integer ``>= 1``; a
            ``whiten_eps`` not a finite number ``> 0``; no ``whiten_eps`` or no seed (checked
            before anything trains).
    """
    from freqkit._validate import check_number, check_positive_int
    for k in ("n", "pgd_steps", "threads"):
        check_positive_int(getattr(args, k), k)
    if args.epochs is not None:
        check_positive_int(args.epochs, "epochs")
    if not args.whiten_eps or not args.seeds:
        raise ValueError("whiten_eps and seeds must each name at least one value")
    for we in args.whiten_eps:
        check_number(we, "whiten_eps")
    old = torch.get_num_threads()
    torch.set_num_threads(int(args.threads))
    try:
        return _run(args)
    finally:
        torch.set_num_threads(old)


def _run(args) -> dict:
    quick = bool(args.quick)
    shrink = {"n_train": 512, "epochs": 1} if quick else {}
    if args.epochs:
        shrink["epochs"] = int(args.epochs)
    n = 16 if quick else int(args.n)
    steps = 2 if quick else int(args.pgd_steps)
    autoattack = bool(args.autoattack) and not quick
    objective = fk.adversarial_objective("cifar10", method="fgsm_rs")
    x, y = fk.load_dataset("cifar10", "test", n=n, seed=0, root=args.data_root)
    rec = {"benchmark": "robust_training", "quick": quick, **cpu_info(), "torch": torch.__version__,
           "threads": torch.get_num_threads(), "date": time.strftime("%Y-%m-%d"), "objective": objective.params,
           "base_config": {**fk.PRESETS["cifar10"]["cpu"], **shrink}, "n_attacked": n, "pgd_steps": steps,
           "eps_linf": EPS_LINF, "autoattack": ["apgd-ce", "apgd-t"] if autoattack else None,
           "catastrophic_rule": f"PGD accuracy < {CATASTROPHIC_PGD_BELOW} and FGSM accuracy >= {FGSM_AT_LEAST}",
           "runs": []}
    with tempfile.TemporaryDirectory() as tmp:
        cache = args.cache_dir or tmp
        for seed in args.seeds:
            for we in args.whiten_eps:
                cfg = {**fk.PRESETS["cifar10"]["cpu"], **shrink, "whiten_eps": float(we), "seed": int(seed)}
                model, info = objective.train("cifar10", cfg, data_root=args.data_root, cache_dir=cache, device="cpu",
                                              progress=False)
                model.eval()
                t0 = time.perf_counter()
                r = {"whiten_eps": float(we), "seed": int(seed), "cached": info["cached"],
                     "train_seconds": info["train_seconds"], "test_accuracy": info["test_accuracy"],
                     "n_test": info["n_test"], "n_train": info["n_train"], "gain": whitening_gain(model),
                     "gain_cap": float(we) ** -0.5, **evaluate_robustness(model, x, y, steps, autoattack)}
                r["attack_seconds"] = time.perf_counter() - t0
                rec["runs"].append(r)
                print(f"whiten_eps {we:g} seed {seed}: clean {r['test_accuracy']:.1%}, FGSM {r['fgsm']:.1%}, "
                      f"PGD-{steps} {r['pgd']:.1%}" + (f", APGD-CE+T {r['autoattack']:.1%}" if autoattack else "")
                      + f" (n={n}), gain {r['gain']:.1f}, {r['train_seconds']:.0f} s"
                      + (" [cached]" if r["cached"] else ""), flush=True)
    return rec


def main(argv=None):
    from freqkit._io import atomic_write_json
    args = parse_args(argv)
    rec = run(args)
    print("wrote", atomic_write_json(rec, Path(args.out)))


if __name__ == "__main__":
    main()
