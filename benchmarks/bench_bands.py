"""Benchmark: band occlusion and band Shapley (freqkit) against Captum on the same bands.

One run, same model, images, bands and budget of model inputs per forward pass:

* occlusion: ``freqkit.attribute(method="occlusion")`` vs ``captum.attr.FeatureAblation`` on
  ``FrequencyModel(model)`` with the bands as the feature mask (the authors' 32 DCT rings of
  Wang et al. 2020 on 32x32 images);
* exact Shapley: ``freqkit.attribute(method="shapley")`` (all 2^K coalitions, K=6 radial bands)
  vs ``captum.attr.ShapleyValues`` (all K! orderings);
* sampled Shapley: freqkit's antithetic permutation sampling (``exact=False``) vs
  ``captum.attr.ShapleyValueSampling``, the same number of permutations, K=16 bands.

Both sides batch the perturbed inputs: freqkit ``internal_batch_size=budget``, Captum
``perturbations_per_eval = budget // batch``.  Reported: median seconds per call, seconds per
image, model evaluations per image, and the ratio freqkit / Captum (< 1: freqkit faster).

    python benchmarks/bench_bands.py --device cpu --batch 8 --repeats 3
"""
from __future__ import annotations

import argparse
import platform
import sys
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

from _timing import interleaved_medians  # noqa: E402

from freqkit.attribution import FrequencyModel, attribute, band_feature_mask  # noqa: E402
from freqkit.models import ResNetCIFAR  # noqa: E402
from freqkit.transforms import band_masks, ring_band_masks  # noqa: E402


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--batch", type=int, default=8, help="images per call")
    p.add_argument("--width", type=int, default=16, help="ResNetCIFAR width (16: cpu profile, 64: gpu)")
    p.add_argument("--budget", type=int, default=256, help="model inputs per forward pass, both sides")
    p.add_argument("--exact-bands", type=int, default=6, help="K for exact Shapley (Captum: K! orderings)")
    p.add_argument("--sampled-bands", type=int, default=16)
    p.add_argument("--samples", type=int, default=32, help="permutations for sampled Shapley")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--out", default=str(HERE / "out" / "bands.json"))
    return p.parse_args(argv)


def run(args) -> dict:
    from captum.attr import FeatureAblation, ShapleyValues, ShapleyValueSampling

    dev = torch.device(args.device)
    torch.manual_seed(0)
    model = ResNetCIFAR(width=args.width).to(dev).eval()
    x = torch.rand(args.batch, 3, 32, 32, device=dev)
    with torch.no_grad():
        t = model(x).argmax(1)
    fm = FrequencyModel(model, "dct")
    c, cb = fm.to_coeffs(x), torch.zeros_like(x)
    ppe = max(1, args.budget // args.batch)
    rings = ring_band_masks(32, 32, "dct", device=dev)
    exact = band_masks(32, 32, args.exact_bands, "radial", "dct", device=dev)
    sampled = band_masks(32, 32, args.sampled_bands, "radial", "dct", device=dev)
    ib = args.budget
    cases = {
        "occlusion": (
            lambda: attribute(model, x, t, method="occlusion", masks=rings, internal_batch_size=ib),
            lambda: FeatureAblation(fm).attribute(c, baselines=cb, target=t, feature_mask=band_feature_mask(rings),
                                                  perturbations_per_eval=ppe),
            rings.shape[0] + 1),
        "shapley_exact": (
            lambda: attribute(model, x, t, method="shapley", masks=exact, exact=True, internal_batch_size=ib),
            lambda: ShapleyValues(fm).attribute(c, baselines=cb, target=t, feature_mask=band_feature_mask(exact),
                                                perturbations_per_eval=ppe),
            2 ** exact.shape[0]),
        "shapley_sampled": (
            lambda: attribute(model, x, t, method="shapley", masks=sampled, exact=False, n_samples=args.samples,
                              internal_batch_size=ib, seed=0),
            lambda: ShapleyValueSampling(fm).attribute(c, baselines=cb, target=t,
                                                       feature_mask=band_feature_mask(sampled),
                                                       n_samples=args.samples, perturbations_per_eval=ppe),
            args.samples * (sampled.shape[0] + 1)),
    }
    band_sets = {"occlusion": rings, "shapley_exact": exact, "shapley_sampled": sampled}
    rows = {}
    for name, (ours, theirs, evals) in cases.items():
        med, _ = interleaved_medians({"freqkit": ours, "captum": theirs}, args.repeats, dev)
        # Same quantity on both sides: Captum gives every coefficient of a band (all channels)
        # the band's score, so one coefficient per band, summed over channels / C, is it.
        m = band_sets[name]
        first = m.reshape(m.shape[0], -1).float().argmax(1)
        theirs_bands = theirs().sum(1).reshape(x.shape[0], -1)[:, first] / x.shape[1]
        diff = float((ours().band_scores.to(theirs_bands.dtype) - theirs_bands).abs().max())
        rows[name] = {"freqkit_s": med["freqkit"], "captum_s": med["captum"],
                      "freqkit_s_per_image": med["freqkit"] / args.batch,
                      "captum_s_per_image": med["captum"] / args.batch,
                      "ratio": med["freqkit"] / med["captum"], "freqkit_model_evals_per_image": evals,
                      "max_abs_diff_vs_captum": diff}
        print(f"{name:16s} freqkit {med['freqkit']:.3f} s | captum {med['captum']:.3f} s | "
              f"ratio {rows[name]['ratio']:.2f} | {med['freqkit'] / args.batch * 1e3:.1f} ms per image | "
              f"max |difference| {diff:.1e}", flush=True)
    return {"benchmark": "bands", "setting": {
        "device": str(dev), "device_name": torch.cuda.get_device_name(dev) if dev.type == "cuda" else
        platform.machine(), "threads": torch.get_num_threads(), "batch": args.batch, "budget": args.budget,
        "captum_perturbations_per_eval": ppe, "model": f"ResNetCIFAR width {args.width}, random weights",
        "bands": {"occlusion": f"{rings.shape[0]} DCT rings (Wang et al. 2020)",
                  "shapley_exact": f"{exact.shape[0]} radial DCT bands",
                  "shapley_sampled": f"{sampled.shape[0]} radial DCT bands, {args.samples} permutations"},
        "repeats": args.repeats, "torch": torch.__version__}, "rows": rows}


def main(argv=None):
    from freqkit._io import atomic_write_json
    args = parse_args(argv)
    rec = run(args)
    print("wrote", atomic_write_json(rec, Path(args.out)))


if __name__ == "__main__":
    main()
