"""The book's hypotheses as data, the rules that decide them, and the verdicts gathered from runs.

Every hypothesis (H1-H5) and every sanity check is one :class:`Hypothesis` in
:data:`HYPOTHESES`: its id, its statement (the only copy in freqkit), the chapter that tests
it, what is measured, and the decision rule with its thresholds.  A ``decide_*`` function
per hypothesis turns a chapter's measurements into a verdict record (:func:`verdict`) by
that rule, with the rule stated in words beside the evidence; :func:`decide` is the generic
rule "supported if the confidence interval lies beyond the smallest effect of interest".
Nothing here measures: the measurements come from the computing modules.

Chapter 9 reads the verdicts back from the results store (:func:`collect_verdicts`) and
counts them per hypothesis (:func:`summarise`); a verdict is never typed.

The verdict words are :data:`VERDICTS`: ``"supported"``, ``"rejected"``, ``"inconclusive"``.
"""
from __future__ import annotations

import hashlib
import math
import numbers
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import torch

from ._io import jsonable
from .results import load_results
from .stats import paired_difference, paired_log_ratio

__all__ = ["VERDICTS", "Hypothesis", "HYPOTHESES", "verdict", "decide", "decide_h1", "decide_h2", "decide_h3",
           "decide_h4", "decide_h5", "decide_ground_truth", "decide_randomisation", "find_verdicts",
           "collect_verdicts", "summarise"]

VERDICTS = ("supported", "rejected", "inconclusive")


@dataclass(frozen=True)
class Hypothesis:
    """One hypothesis or sanity check of the book, as data.

    Attributes:
        id: ``"H1"`` ... ``"H5b"``, or the name of a check (``"planted"``, ``"randomisation"``).
        label: how the statement is introduced in a verdict (``"H1"``, ``"Ground truth"``...).
        statement: the claim, the one copy freqkit holds.
        chapter: the notebook stem of the chapter that tests it.
        measure: what is measured, in words.
        rule: the decision rule, a ``str.format`` template filled with ``thresholds`` and the
            setting of the run (``{cutoff}``, ``{attack}``, ...).
        thresholds: the rule's default thresholds (a chapter may pass others; the stated
            rule then names them).
        kind: ``"hypothesis"`` or ``"check"`` (a sanity check of the method, not a claim of
            the proposal).
    """

    id: str
    label: str
    statement: str
    chapter: str
    measure: str
    rule: str
    thresholds: Mapping = field(default_factory=dict)
    kind: str = "hypothesis"

    @property
    def title(self) -> str:
        """``"<label>: <statement>"``, the text a verdict carries."""
        return f"{self.label}: {self.statement}"


HYPOTHESES: dict[str, Hypothesis] = {h.id: h for h in (
    Hypothesis(
        "H1", "H1", "CNNs use high frequencies that humans barely see", "02_which_frequencies",
        "accuracy (95% Wilson interval) on DCT high-pass filtered test images, and the share of their non-DC "
        "energy the filter keeps",
        "H1 supported if, at high-pass cut-off r={cutoff:.3g} x Nyquist, the images keep <= {max_energy:.0%} of "
        "their non-DC energy and the 95% CI lower bound of accuracy is >= chance ({chance:.0%}) + {margin:.0%}; "
        "rejected if faint but not above; inconclusive if not faint",
        {"margin": 0.05, "max_energy": 0.2}),
    Hypothesis(
        "H2", "H2", "attribution quantifies each frequency component's contribution (completeness holds; the "
        "numbers agree with occlusion)", "03_frequency_attribution",
        "per image: the relative IG completeness error, and the Spearman correlation between IG band scores and "
        "band-occlusion scores",
        "supported if the median relative IG completeness error |delta| / |f(x) - f(b)| < {max_rel_error:g}"
        "{steps_note} AND the median per-image Spearman correlation between IG and band-occlusion band scores is "
        ">= {min_median_rho:g}; rejected if either fails; inconclusive with fewer than 3 images",
        {"max_rel_error": 0.01, "min_median_rho": 0.5}),
    Hypothesis(
        "H3", "H3", "at equal L2 distortion, low-frequency perturbations are more efficient than high-frequency "
        "ones", "05_low_vs_high_attacks",
        "per image: log of the ratio of the minimal L2 distortions that flip the prediction in the lowest and "
        "the highest band (band-limited PGD, binary search)",
        "H3 supported if the {ci:.0%} bootstrap CI of the median over images of log(d_low / d_high), d = minimal "
        "{norm_upper} distortion of the same image in the lowest band ({low}) and the highest band ({high}), lies "
        "entirely below 0; rejected if entirely above 0; inconclusive if it contains 0 or if more than "
        "{max_box_share:.0%} of the images are box-limited in either band (the [0, 1] box, not the model, stops "
        "the attack)",
        {"max_box_share": 0.1}),
    Hypothesis(
        "H4", "H4", "adversarially trained models rely more on low frequencies", "07_robust_models",
        "per image: the share of |IG attribution| on the lower half of the DCT coefficients, adversarially "
        "trained minus standard model; and the robust accuracy gain",
        "H4 supported if (a) the adversarially trained model's robust accuracy under {attack} PGD exceeds the "
        "standard model's by >= {min_robust_gain:.0%} and (b) the 95% paired-bootstrap CI of the mean per-image "
        "difference (robust - standard) in the share of |IG attribution| on the lower half of the DCT "
        "coefficients lies above 0; rejected if (a) holds and the CI's upper end is below +{min_effect:.0%} "
        "(no meaningful increase); inconclusive otherwise",
        {"min_robust_gain": 0.10, "min_effect": 0.01}),
    Hypothesis(
        "H5a", "H5a", "the attribution-guided model aligns better with human contrast sensitivity",
        "08_frequency_defense",
        "per image: the human-alignment score (IG band shares x Mannos-Sakrison band sensitivity), "
        "attribution-guided minus standard model",
        "H5a supported if the 95% paired-bootstrap CI of the mean per-image difference (attribution-guided - "
        "standard) of the human-alignment score (IG band shares x Mannos-Sakrison band sensitivity) lies above 0; "
        "rejected if below 0; inconclusive if it contains 0",
        {"delta": 0.0}),
    Hypothesis(
        "H5b", "H5b", "aligning with human sensitivity buys robustness to full-band attacks that see the model",
        "08_frequency_defense",
        "per image and attack: robust (1) or not (0), attribution-guided minus standard model",
        "H5b supported if, for every full-band attack in {attacks} at the standard budgets (PGD that sees the "
        "model), the 95% paired-bootstrap CI of the mean per-image robustness difference (attribution-guided - "
        "standard) lies above 0; rejected if every CI's upper bound is below {min_gain:.0%}; inconclusive "
        "otherwise",
        {"min_gain": 0.05}),
    Hypothesis(
        "planted", "Ground truth", "every method puts the most attribution mass on the planted band",
        "04_trust_attributions",
        "per planted task and method: the mean share of |attribution| on the planted frequencies, and the band "
        "with the largest mean share",
        "for every planted task and every method: the mean share of |attribution| on the planted band exceeds "
        "that band's share of the coefficients{top_band_note}",
        {"rule": "top_band"}, kind="check"),
    Hypothesis(
        "randomisation", "Sanity", "frequency attributions depend on the learned weights", "04_trust_attributions",
        "per method: the mean Spearman correlation of |scores| between the trained and the fully randomised "
        "model (Adebayo et al. 2018)",
        "passes for a method if the mean Spearman correlation of |scores| between the trained and the fully "
        "randomised model (cascading, all layers) is below {max_rho:g}; supported if every method passes",
        {"max_rho": 0.5}, kind="check"),
)}


# ============================================================================ records and the generic rule

def verdict(hid: str, supported, evidence: Mapping, dataset: str = "", **setting) -> dict:
    """A verdict record on hypothesis ``hid``, with its rule stated from :data:`HYPOTHESES`.

    Args:
        hid: a key of :data:`HYPOTHESES`.
        supported: ``True`` (supported), ``False`` (rejected) or ``None`` (inconclusive).
        evidence: the measurements behind it (JSON-ready after :func:`freqkit._io.jsonable`).
        dataset: appended to the statement, e.g. ``"cifar10"``.
        setting: the values that fill the rule's template (thresholds and run settings);
            missing thresholds take the hypothesis' defaults.

    Returns:
        ``{"id", "hypothesis", "rule", "verdict", "evidence"}``.

    Raises:
        ValueError: an unknown ``hid`` or a ``supported`` other than True, False, None.
        KeyError: a value the rule's template needs is missing.
    """
    if hid not in HYPOTHESES:
        raise ValueError(f"hid must be one of {list(HYPOTHESES)}, got {hid!r}")
    if supported not in (True, False, None):
        raise ValueError(f"supported must be True, False or None, got {supported!r}")
    h = HYPOTHESES[hid]
    rule = h.rule.format(**{**h.thresholds, **setting})
    word = {True: "supported", False: "rejected", None: "inconclusive"}[supported]
    return {"id": hid, "hypothesis": h.title + (f" ({dataset})" if dataset else ""), "rule": rule, "verdict": word,
            "evidence": jsonable(dict(evidence))}


def decide(ci: Sequence[float], delta: float = 0.0, direction: str = "greater") -> str:
    """The generic decision on an effect from its confidence interval and a smallest effect of interest.

    With ``direction="greater"``: *supported* if the whole interval lies above ``delta``,
    *rejected* if it lies below it (the effect, if any, is smaller than what matters),
    *inconclusive* if it straddles ``delta``.  ``"less"`` mirrors this around ``-delta``
    (supported if the interval lies below ``-delta``).

    Args:
        ci: ``(low, high)`` with ``low <= high``.
        delta: the smallest effect of interest, ``>= 0``, fixed before the data.
        direction: ``"greater"`` or ``"less"``.

    Returns:
        ``"supported"``, ``"rejected"`` or ``"inconclusive"``.

    Raises:
        ValueError: a malformed interval, a NaN, ``delta < 0`` or an unknown direction.

    Example:
        >>> decide((0.02, 0.05), 0.01), decide((-0.01, 0.005), 0.01), decide((0.0, 0.03), 0.01)
        ('supported', 'rejected', 'inconclusive')
        >>> decide((-0.3, -0.1), 0.0, "less")
        'supported'
    """
    if direction not in ("greater", "less"):
        raise ValueError(f"direction must be 'greater' or 'less', got {direction!r}")
    try:
        lo, hi = (float(v) for v in ci)
    except (TypeError, ValueError) as e:
        raise ValueError(f"ci must be a (low, high) pair of numbers, got {ci!r}") from e
    if math.isnan(lo) or math.isnan(hi) or lo > hi:
        raise ValueError(f"ci must be a (low, high) pair with low <= high and no NaN, got {ci!r}")
    if isinstance(delta, bool) or not isinstance(delta, numbers.Real) or not delta >= 0:
        raise ValueError(f"delta must be a number >= 0, got {delta!r}")
    if direction == "less":
        lo, hi = -hi, -lo
    if lo > delta:
        return "supported"
    if hi < delta:
        return "rejected"
    return "inconclusive"


_SUPPORTED = {"supported": True, "rejected": False, "inconclusive": None}


# ============================================================================ H1 (chapter 2)

def decide_h1(high: Mapping, cutoff: float, chance: float, margin: float = 0.05, max_energy: float = 0.2,
              dataset: str = "") -> dict:
    """H1: the CNN uses high frequencies that humans barely see.

    Rule: at the high-pass cut-off ``cutoff`` (the nearest of ``high["cutoffs"]``), the
    filtered images keep at most ``max_energy`` of the non-DC energy (so to a person they
    are faint, near-invisible texture), and the lower end of the 95% Wilson interval of
    the model's accuracy on them exceeds chance by at least ``margin``.  Supported if
    both hold; rejected if the energy condition holds but the accuracy condition fails;
    inconclusive if the filtered images are not faint enough to test the claim.

    Args:
        high: :func:`freqkit.filtered_accuracy` with ``mode="high"``.
        cutoff: the cut-off (x Nyquist) at which H1 is judged.
        chance: the accuracy of guessing (0.1 for ten classes).
        margin, max_energy: the rule's thresholds.
        dataset: named in the verdict.

    Returns:
        a :func:`verdict` record.

    Raises:
        ValueError: ``high`` is not a high-pass :func:`freqkit.filtered_accuracy` result.
    """
    if high.get("mode") != "high":
        raise ValueError("high must be the result of filtered_accuracy(..., mode='high')")
    cuts = high["cutoffs"]
    i = min(range(len(cuts)), key=lambda j: abs(cuts[j] - cutoff))
    faint = high["energy_kept"][i] <= max_energy
    above = high["ci_lo"][i] >= chance + margin
    supported = (faint and above) if faint else None
    return verdict("H1", supported,
                   {"cutoff": cuts[i], "accuracy": high["accuracy"][i], "ci_lo": high["ci_lo"][i],
                    "ci_hi": high["ci_hi"][i], "energy_kept": high["energy_kept"][i], "n": high["n"],
                    "chance": chance},
                   dataset, cutoff=cuts[i], max_energy=max_energy, chance=chance, margin=margin)


# ============================================================================ H2 (chapter 3)

def decide_h2(rel_error, rank_corr, max_rel_error: float = 0.01, min_median_rho: float = 0.5,
              n_steps: int | None = None, dataset: str = "") -> dict:
    """H2: attribution quantifies each component's contribution.

    Rule: *supported* if the median relative IG completeness error is below
    ``max_rel_error`` **and** the median (over images) Spearman correlation between IG
    band scores and band-occlusion scores is at least ``min_median_rho``; *rejected* if
    either fails; *inconclusive* if there are fewer than 3 usable images.

    Args:
        rel_error: ``(N,)`` :func:`freqkit.relative_completeness` of IG.
        rank_corr: ``(N,)`` :func:`freqkit.band_rank_agreement` of IG and occlusion band scores.
        max_rel_error, min_median_rho: the rule's thresholds.
        n_steps: IG's steps, named in the rule.
        dataset: named in the verdict.

    Returns:
        a :func:`verdict` record.

    Raises:
        ValueError: a non-finite threshold or ``max_rel_error <= 0``.
    """
    for v, nm in ((max_rel_error, "max_rel_error"), (min_median_rho, "min_median_rho")):
        if isinstance(v, bool) or not isinstance(v, numbers.Real) or not np.isfinite(v):
            raise ValueError(f"{nm} must be a finite number, got {v!r}")
    if not max_rel_error > 0:
        raise ValueError(f"max_rel_error must be > 0, got {max_rel_error!r}")
    rel = np.asarray(rel_error.detach().cpu().double() if isinstance(rel_error, torch.Tensor) else rel_error,
                     dtype=float).reshape(-1)
    rho = np.asarray(rank_corr.detach().cpu().double() if isinstance(rank_corr, torch.Tensor) else rank_corr,
                     dtype=float).reshape(-1)
    rel, rho_ok = rel[np.isfinite(rel)], rho[np.isfinite(rho)]
    setting = {"max_rel_error": max_rel_error, "min_median_rho": min_median_rho,
               "steps_note": f" (n_steps={n_steps})" if n_steps else ""}
    if rel.size < 3 or rho_ok.size < 3:
        return verdict("H2", None, {"n_completeness": int(rel.size), "n_rank": int(rho_ok.size)}, dataset, **setting)
    med_rel, med_rho = float(np.median(rel)), float(np.median(rho_ok))
    complete, agree = med_rel < max_rel_error, med_rho >= min_median_rho
    evidence = {"median_rel_completeness_error": med_rel, "share_within_tol": float(np.mean(rel <= max_rel_error)),
                "max_rel_completeness_error": float(rel.max()), "median_spearman": med_rho,
                "spearman_quartiles": [float(np.quantile(rho_ok, q)) for q in (0.25, 0.5, 0.75)],
                "share_spearman_positive": float(np.mean(rho_ok > 0)), "completeness_ok": complete,
                "agreement_ok": agree, "n_images": int(rel.size), "n_rank": int(rho_ok.size),
                "n_rank_undefined": int(rho.size - rho_ok.size)}
    return verdict("H2", complete and agree, evidence, dataset, **setting)


# ============================================================================ H3 (chapter 5)

def _band_order(records: Mapping) -> list:
    names = [k for k in records if k != "full"]
    if len(names) < 2:
        raise ValueError(f"records must hold at least two bands besides 'full', got {list(records)}")
    return names


def decide_h3(records: Mapping, dataset: str = "", low: str | None = None, high: str | None = None,
              max_box_share: float = 0.1, n_boot: int = 2000, ci: float = 0.95, seed: int = 0) -> dict:
    """H3: at equal L2 distortion, low-frequency perturbations are more efficient than high ones.

    Rule (paired, per image): ``r_i = log(d_low_i / d_high_i)``, the log-ratio of the minimal
    distortions of image i in the two bands (:func:`freqkit.paired_log_ratio`).  Supported
    if the ``ci`` bootstrap CI of the median of ``r`` lies entirely below 0 (for the typical
    image the low band needs less distortion; :func:`decide` with ``delta=0``, ``"less"``);
    rejected if it lies entirely above 0; inconclusive if it contains 0, or if more than
    ``max_box_share`` of the images are box-limited in either band (their infinite
    distortion then measures the ``[0, 1]`` box, not the model).  Only L2 distortion is the
    same in pixel and frequency space, so the records' ``norm`` should be ``"l2"``.

    Args:
        records: :func:`freqkit.band_comparison` (or :func:`freqkit.compare_bands`) output for
            bands ordered from low to high frequency.
        dataset: named in the verdict.
        low, high: the bands compared; default the first and last (``"full"`` excluded).
        max_box_share: the rule's threshold.
        n_boot, ci, seed: the bootstrap.

    Returns:
        a :func:`verdict` record; the evidence also holds each band's own median and CI.

    Raises:
        ValueError: fewer than two bands, an unknown band, ``max_box_share`` outside [0, 1].
    """
    names = _band_order(records)
    low = names[0] if low is None else low
    high = names[-1] if high is None else high
    for k in (low, high):
        if k not in records:
            raise ValueError(f"band {k!r} is not in records (have {list(records)})")
    if not 0 <= max_box_share <= 1:
        raise ValueError(f"max_box_share must be in [0, 1], got {max_box_share!r}")
    a, b = records[low], records[high]
    norm = a.get("norm", "l2")
    box = {k: float(records[k].get("box_limited_share", 0.0)) for k in (low, high)}
    boxed = max(box.values()) > max_box_share
    pr = paired_log_ratio(a["distortions"], b["distortions"], n_boot=n_boot, ci=ci, seed=seed)
    word = decide((pr["ci_low"], pr["ci_high"]), 0.0, "less")
    supported = None if boxed else _SUPPORTED[word]
    reason = ("box-limited" if boxed else {"supported": "ratio CI below 1", "rejected": "ratio CI above 1",
                                            "inconclusive": "ratio CI contains 1"}[word])
    ev = {"band_low": low, "band_high": high, "norm": norm, "basis": a.get("basis"), "n": pr["n"],
          "median_ratio": pr["ratio"], "ratio_ci": [float(np.exp(pr["ci_low"])), float(np.exp(pr["ci_high"]))],
          "median_log_ratio": pr["median"], "log_ratio_ci": [pr["ci_low"], pr["ci_high"]],
          "median_low": a["median_distortion"], "ci_low_band": [a["ci_low"], a["ci_high"]],
          "median_high": b["median_distortion"], "ci_high_band": [b["ci_low"], b["ci_high"]],
          "n_coefficients": [a.get("n_coefficients"), b.get("n_coefficients")],
          "box_limited_share": box, "reason": reason}
    if "full" in records:
        ev["median_full"] = records["full"]["median_distortion"]
    return verdict("H3", supported, ev, dataset, ci=ci, norm_upper=norm.upper(), low=low, high=high,
                   max_box_share=max_box_share)


# ============================================================================ H4 (chapter 7)

def decide_h4(standard: Mapping, robust: Mapping, eval_standard: Mapping, eval_robust: Mapping,
              attack: str = "linf/full", min_robust_gain: float = 0.10, min_effect: float = 0.01,
              dataset: str = "", n_boot: int = 2000, seed: int = 0) -> dict:
    """H4: adversarially trained models rely more on low frequencies.

    Rule: first, the adversarially trained model must be robust: its robust accuracy under
    ``attack`` must exceed the standard model's by at least ``min_robust_gain`` (else
    inconclusive: there is no robust model to test the claim on).  Then, with
    ``d_i = low_share_robust_i - low_share_standard_i`` (the share of |IG attribution| in the
    lower half of the DCT coefficients, same image ``i``): supported if the 95% bootstrap
    CI of mean ``d`` lies above 0; rejected if its upper end is below ``min_effect``;
    inconclusive otherwise.

    Args:
        standard, robust: :func:`freqkit.alignment_profile` of the two models on the same images.
        eval_standard, eval_robust: their :func:`freqkit.evaluate_defense` results on the same images.
        attack: the ``"<norm>/<band>"`` attack whose robust accuracy must improve.
        min_robust_gain, min_effect: the rule's thresholds.
        dataset: named in the verdict.  n_boot, seed: the bootstrap.

    Returns:
        a :func:`verdict` record.

    Raises:
        ValueError: inputs of the wrong kind, or ``attack`` missing from the evaluations.
    """
    for nm, d in (("standard", standard), ("robust", robust)):
        if "per_image_low_share" not in d:
            raise ValueError(f"{nm} must be an alignment_profile() result")
    ra = eval_robust["attacks"].get(attack)
    sa = eval_standard["attacks"].get(attack)
    if ra is None or sa is None:
        raise ValueError(f"attack {attack!r} is missing from the evaluations (have {sorted(eval_robust['attacks'])})")
    gain = ra["accuracy"] - sa["accuracy"]
    diff = paired_difference(robust["per_image_low_share"], standard["per_image_low_share"], n_boot=n_boot, seed=seed)
    if gain < min_robust_gain:
        supported, reason = None, f"robust model not robust enough (gain {gain:.1%} < {min_robust_gain:.0%})"
    elif diff["ci_low"] > 0:
        supported, reason = True, "low-frequency share CI above 0"
    elif diff["ci_high"] < min_effect:
        supported, reason = False, f"low-frequency share CI below +{min_effect:.0%}"
    else:
        supported, reason = None, f"low-frequency share CI straddles [0, +{min_effect:.0%}]"
    ev = {"low_share_standard": standard["low_share"]["mean"], "low_share_robust": robust["low_share"]["mean"],
          "difference": diff["mean"], "difference_ci": [diff["ci_low"], diff["ci_high"]], "n": diff["n"],
          "robust_accuracy_standard": sa["accuracy"], "robust_accuracy_robust": ra["accuracy"],
          "robust_gain": gain, "attack": attack, "eps": ra["eps"], "reason": reason}
    return verdict("H4", supported, ev, dataset, attack=attack, min_robust_gain=min_robust_gain,
                   min_effect=min_effect)


# ============================================================================ H5 (chapter 8)

def decide_h5(standard: Mapping, guided: Mapping, eval_standard: Mapping, eval_guided: Mapping,
              attacks: Sequence[str] = ("linf/full", "l2/full"), min_gain: float = 0.05, dataset: str = "",
              n_boot: int = 2000, seed: int = 0) -> dict:
    """H5, in two parts, each with its rule: ``{"H5a": verdict, "H5b": verdict}``.

    * **H5a** (alignment): ``d_i`` = per-image human-alignment score (guided - standard,
      same images, :func:`freqkit.alignment_profile`).  :func:`decide` on the 95%
      paired-bootstrap CI of mean ``d`` with ``delta = 0``: supported above 0, rejected
      below 0, inconclusive if it contains 0.
    * **H5b** (robustness): for each attack in ``attacks``, ``r_i`` = per-image robustness
      (guided - standard).  Supported if every attack's 95% CI of mean ``r`` lies above 0;
      rejected if every attack's CI upper bound is below ``min_gain`` (any gain is too small
      to matter); inconclusive otherwise.

    The low- and high-band attacks and the clean-accuracy cost are reported beside them
    (evidence), not folded into the rule.

    Args:
        standard, guided: :func:`freqkit.alignment_profile` of the standard and the
            attribution-guided model on the same images.
        eval_standard, eval_guided: their :func:`freqkit.evaluate_defense` results.
        attacks: the full-band attacks H5b needs; min_gain: its threshold.
        dataset: named in the verdicts.  n_boot, seed: the bootstrap.

    Raises:
        ValueError: an attack missing from the evaluations.
    """
    da = paired_difference(guided["per_image_score"], standard["per_image_score"], n_boot=n_boot, seed=seed)
    delta_a = HYPOTHESES["H5a"].thresholds["delta"]
    sup_a = _SUPPORTED[decide((da["ci_low"], da["ci_high"]), delta_a, "greater")]
    ev_a = {"score_standard": standard["score"]["mean"], "score_guided": guided["score"]["mean"],
            "difference": da["mean"], "difference_ci": [da["ci_low"], da["ci_high"]], "n": da["n"]}
    per_attack, ups, downs = {}, [], []
    for a in attacks:
        if a not in eval_guided["attacks"] or a not in eval_standard["attacks"]:
            raise ValueError(f"attack {a!r} is missing from the evaluations (have {sorted(eval_guided['attacks'])})")
        d = paired_difference(eval_guided["attacks"][a]["robust"], eval_standard["attacks"][a]["robust"],
                              n_boot=n_boot, seed=seed)
        per_attack[a] = {"guided": eval_guided["attacks"][a]["accuracy"],
                         "standard": eval_standard["attacks"][a]["accuracy"], "eps": eval_guided["attacks"][a]["eps"],
                         "difference": d["mean"], "difference_ci": [d["ci_low"], d["ci_high"]]}
        ups.append(d["ci_low"] > 0)
        downs.append(d["ci_high"] < min_gain)
    sup_b = True if all(ups) else (False if all(downs) else None)
    others = {k: {"guided": v["accuracy"], "standard": eval_standard["attacks"][k]["accuracy"]}
              for k, v in eval_guided["attacks"].items() if k in eval_standard["attacks"] and k not in attacks}
    flat = {}
    for a, rec in per_attack.items():
        flat[f"gain_{a}"] = rec["difference"]
        flat[f"gain_ci_{a}"] = rec["difference_ci"]
    ev_b = {**flat, "attacks": per_attack, "other_attacks": others,
            "clean_standard": eval_standard["clean"]["accuracy"], "clean_guided": eval_guided["clean"]["accuracy"],
            "clean_cost": eval_standard["clean"]["accuracy"] - eval_guided["clean"]["accuracy"]}
    return {"H5a": verdict("H5a", sup_a, ev_a, dataset),
            "H5b": verdict("H5b", sup_b, ev_b, dataset, attacks=list(attacks), min_gain=min_gain)}


# ============================================================================ checks (chapter 4)

def decide_ground_truth(tables: Mapping, rule: str = "top_band") -> dict:
    """Check: every method puts the most attribution mass on the planted band.

    Args:
        tables: ``{task name: freqkit.ground_truth_table(...)}`` (one per planted band, say).
        rule: ``"top_band"``: for every task and method, the band with the largest mean
            share is a planted band, *and* the mean share on the planted frequencies exceeds
            their share of the coefficients (a uniform spread would not pass);
            ``"above_uniform"``: only the second condition.

    Returns:
        a :func:`verdict` record; ``evidence`` lists every (task, method) and which
        condition failed.

    Raises:
        ValueError: an unknown ``rule`` or empty ``tables``.
    """
    if rule not in ("top_band", "above_uniform"):
        raise ValueError(f"rule must be one of ['above_uniform', 'top_band'], got {rule!r}")
    if not isinstance(tables, Mapping) or not tables:
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
    note = ", and the planted band holds the largest mean share of all bands" if rule == "top_band" else ""
    return verdict("planted", ok, {"rows": rows, "n_failed": sum(not r["passed"] for r in rows)},
                   rule=rule, top_band_note=note)


def decide_randomisation(summary: Mapping, max_rho: float = 0.5) -> dict:
    """Check (Adebayo et al. 2018): frequency attributions depend on the learned weights.

    Args:
        summary: :func:`freqkit.randomisation_summary` ``{method: {"spearman_abs", ...}}``.
        max_rho: a method passes if the mean Spearman correlation of ``|scores|`` between
            the trained and the fully randomised model is below it.

    Returns:
        a :func:`verdict` record, supported if every method passes; the evidence is ``summary``.

    Raises:
        ValueError: an empty ``summary``.
    """
    if not isinstance(summary, Mapping) or not summary:
        raise ValueError("summary must be a non-empty randomisation_summary() dict")
    supported = all(v["spearman_abs"] < max_rho for v in summary.values())
    return verdict("randomisation", supported, summary, max_rho=max_rho)


# ============================================================================ reading verdicts back

def _is_verdict(d) -> bool:
    return isinstance(d, Mapping) and {"id", "hypothesis", "rule", "verdict"} <= set(d) \
        and d["id"] in HYPOTHESES and d["verdict"] in VERDICTS


def find_verdicts(obj, path: str = "") -> list[tuple[str, dict]]:
    """Every verdict record inside ``obj`` (nested dicts and lists), with its path ``"a/b/0"``.

    Args:
        obj: a chapter's stored results (any nesting of dicts and lists).
        path: the path of ``obj`` itself (used in the recursion).

    Returns:
        ``[(path, verdict record)]`` in the order met; a record is a dict with ``id`` (a key
        of :data:`HYPOTHESES`), ``hypothesis``, ``rule`` and a ``verdict`` of :data:`VERDICTS`.
    """
    out = []
    if _is_verdict(obj):
        return [(path, dict(obj))]
    if isinstance(obj, Mapping):
        for k, v in obj.items():
            out += find_verdicts(v, f"{path}/{k}" if path else str(k))
    elif isinstance(obj, (list, tuple)):
        for i, v in enumerate(obj):
            out += find_verdicts(v, f"{path}/{i}" if path else str(i))
    return out


def collect_verdicts(results_dir, chapters: Sequence[str] | None = None) -> dict:
    """Gather the verdicts stored by ``chapters`` in ``results_dir``.

    Args:
        results_dir: the results store (:func:`freqkit.save_results`).
        chapters: chapter stems to read; default every chapter named in :data:`HYPOTHESES`.

    Returns:
        ``{"rows": [...], "chapters": {stem: status}, "inputs": {stem: sha256}}``.  Each row:
        ``id``, ``kind``, ``hypothesis``, ``verdict`` (supported / rejected / inconclusive, or ``"not run"`` /
        ``"no verdict stored"``), ``rule``, ``evidence`` (the stored dict), ``chapter``,
        ``where`` (the path of the verdict inside the results) and ``profile`` (from the
        chapter's stored setting).  Rows follow the order of :data:`HYPOTHESES`, then the
        chapters.  A chapter's status is ``"ok"``, ``"not run"`` (no results file),
        ``"unreadable: ..."`` (corrupt JSON) or ``"no verdicts"``.  Every hypothesis whose
        chapter produced no row for it gets one row saying so.  ``inputs`` holds, per chapter
        read (in the order of ``chapters``), the SHA-256 (hex) of the bytes of its results
        file ``results_dir/<stem>.json``, or None when there is none: a summary stores it
        with its own results, so that a later check can tell that a chapter was re-run since
        (the book runner refuses to build such a stale summary).
    """
    if chapters is None:
        chapters = list(dict.fromkeys(h.chapter for h in HYPOTHESES.values()))
    chapters = list(chapters)
    rows, status, inputs = [], {}, {}
    for stem in chapters:
        try:
            inputs[stem] = hashlib.sha256((Path(results_dir) / f"{stem}.json").read_bytes()).hexdigest()
        except OSError:
            inputs[stem] = None  # no file (or none readable): load_results says which below
        try:
            stored = load_results(results_dir, stem)
        except FileNotFoundError:
            status[stem] = "not run"
            inputs[stem] = None
            continue
        except ValueError as e:
            status[stem] = f"unreadable: {e}"
            continue
        found = find_verdicts(stored.get("results", {}))
        status[stem] = "ok" if found else "no verdicts"
        profile = (stored.get("setting") or {}).get("profile")
        for where, v in found:
            rows.append({"id": v["id"], "kind": HYPOTHESES[v["id"]].kind, "hypothesis": v["hypothesis"],
                         "verdict": v["verdict"], "rule": v["rule"], "evidence": v.get("evidence", {}),
                         "chapter": stem, "where": where, "profile": profile})
    have = {r["id"] for r in rows}
    for hid, h in HYPOTHESES.items():
        if hid in have or h.chapter not in chapters:
            continue
        st = status.get(h.chapter, "not run")
        word = "not run" if st == "not run" or st.startswith("unreadable") else "no verdict stored"
        rows.append({"id": hid, "kind": h.kind, "hypothesis": h.title, "verdict": word,
                     "rule": f"chapter {h.chapter} {'has not been run' if word == 'not run' else 'stored no verdict'}"
                             + (f" ({st})" if st.startswith("unreadable") else ""),
                     "evidence": {}, "chapter": h.chapter, "where": "", "profile": None})
    order = list(HYPOTHESES)
    rows.sort(key=lambda r: (order.index(r["id"]), chapters.index(r["chapter"]), r["where"]))
    return {"rows": rows, "chapters": status, "inputs": inputs}


def summarise(rows: Sequence[Mapping]) -> dict:
    """Per hypothesis id, the count of each verdict and an overall word.

    Rule: ``supported`` if every row that ran is supported, ``rejected`` if every such row
    is rejected, ``inconclusive`` if every such row is inconclusive, ``mixed`` otherwise,
    ``not run`` if no row ran.  (A hypothesis tested on two data sets with different
    outcomes is "mixed", never averaged into a verdict.)

    Args:
        rows: :func:`collect_verdicts` rows.

    Returns:
        ``{id: {"supported", "rejected", "inconclusive", "not run", "overall"}}`` in row order.
    """
    out: dict = {}
    for r in rows:
        c = out.setdefault(r["id"], {"supported": 0, "rejected": 0, "inconclusive": 0, "not run": 0})
        c[r["verdict"] if r["verdict"] in VERDICTS else "not run"] += 1
    for c in out.values():
        ran = c["supported"] + c["rejected"] + c["inconclusive"]
        c["overall"] = "not run" if ran == 0 else next((v for v in VERDICTS if c[v] == ran), "mixed")
    return out
