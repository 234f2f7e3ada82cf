"""The book's hypotheses as data, the rules that decide them, and the verdicts gathered from runs.

Every hypothesis (H1-H7) and every sanity check is one :class:`Hypothesis` in
:data:`HYPOTHESES`: its id, its statement (the only copy in freqkit), the chapter that tests
it, what is measured, and how it is decided.  A hypothesis is decided by its
:class:`Criterion` list, fixed before the data: each criterion is an effect (a measure minus
the null or control it must beat) with a direction and a smallest effect of interest; the
one rule :func:`decide` judges its confidence interval (supported beyond delta, rejected
short of it, inconclusive otherwise) and :func:`combine` joins the criteria (premises,
claims, secondary).  :func:`judge` makes the verdict record, with per-seed agreement and the
provenance of the run; ``decide_h1`` ... ``decide_h3`` and :func:`decide_suites` turn a
chapter's per-seed, per-image measurements into the estimates.  The two sanity checks keep a
stated rule of their own (:func:`verdict`).  Nothing here measures: the measurements come
from the computing modules.

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
from .stats import hierarchical_bootstrap_ci, median_with_inf, suite_difference

__all__ = ["VERDICTS", "ROLES", "PROVENANCE_KEYS", "Criterion", "Hypothesis", "HYPOTHESES", "verdict", "decide",
           "combine", "judge", "criteria_rule", "decide_h1", "decide_h2", "decide_h3",
           "decide_suites", "decide_ground_truth", "decide_randomisation", "find_verdicts",
           "collect_verdicts", "complete_rows", "summarise"]

VERDICTS = ("supported", "rejected", "inconclusive")


ROLES = ("premise", "claim", "secondary")


@dataclass(frozen=True)
class Criterion:
    """One measured criterion of a hypothesis, fixed before the data: what, against what, how far.

    The estimate a chapter hands in is an *effect*: the measure minus its null or control
    (e.g. accuracy minus chance, attribution's agreement minus the null's agreement on the
    same images, adversarially trained suite minus standard suite), with a confidence
    interval at ``confidence`` (from :func:`freqkit.hierarchical_bootstrap_ci` over seeds
    then images, :func:`freqkit.suite_difference` or :func:`freqkit.paired_difference`).
    :func:`decide` judges the interval against ``delta`` in ``direction``.

    Attributes:
        name: an identifier, unique within its hypothesis (``"high_pass_accuracy"``).
        measure: the effect in words (what minus what).
        null: the null or control it must beat, in words.
        direction: ``"greater"`` (the effect must be positive) or ``"less"``.
        delta: the smallest effect of interest (``>= 0``), in ``units``.
        units: the effect's units, for tables (``"accuracy"``, ``"Spearman"``, ...).
        role: ``"premise"`` (must be supported for the claims to be testable: else the
            hypothesis is inconclusive), ``"claim"`` (decides the hypothesis) or
            ``"secondary"`` (decided and reported, not part of the combination).
        confidence: the level of the interval the rule reads.
    """

    name: str
    measure: str
    null: str
    direction: str
    delta: float
    units: str = ""
    role: str = "claim"
    confidence: float = 0.95

    def __post_init__(self):
        if self.direction not in ("greater", "less"):
            raise ValueError(f"direction must be 'greater' or 'less', got {self.direction!r}")
        if self.role not in ROLES:
            raise ValueError(f"role must be one of {list(ROLES)}, got {self.role!r}")
        if isinstance(self.delta, bool) or not isinstance(self.delta, numbers.Real) or not self.delta >= 0:
            raise ValueError(f"delta must be a number >= 0, got {self.delta!r}")
        if not 0 < self.confidence < 1:
            raise ValueError(f"confidence must be in (0, 1), got {self.confidence!r}")

    @property
    def rule(self) -> str:
        """The criterion's decision in words."""
        sign = "" if self.delta == 0 else ("+" if self.direction == "greater" else "-")
        side, beyond = ("above" if self.direction == "greater" else "below"), f"{sign}{self.delta:g}"
        short = "below" if self.direction == "greater" else "above"
        u = f" {self.units}" if self.units else ""
        return (f"{self.name} ({self.role}): {self.measure}, against {self.null}; supported if its "
                f"{self.confidence:.0%} CI lies {side} {beyond}{u}, rejected if it lies {short} {beyond}{u}, "
                "inconclusive otherwise")


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
        criteria: the :class:`Criterion` list that :func:`judge` decides by (the rules of
            issue 13: measure, null, direction, delta, confidence); empty for a hypothesis
            still decided by its own ``decide_*`` rule (``rule`` above).
        sources: the papers the hypothesis comes from or is placed against (bibliography keys).
    """

    id: str
    label: str
    statement: str
    chapter: str
    measure: str
    rule: str
    thresholds: Mapping = field(default_factory=dict)
    kind: str = "hypothesis"
    criteria: tuple = ()
    sources: tuple = ()

    @property
    def title(self) -> str:
        """``"<label>: <statement>"``, the text a verdict carries."""
        return f"{self.label}: {self.statement}"


HYPOTHESES: dict[str, Hypothesis] = {h.id: h for h in (
    Hypothesis(
        "H1", "H1", "CNNs use high frequencies that humans barely see", "02_which_frequencies",
        "per model seed and test image: correct or not on DCT high-pass filtered images, and on low-pass filtered "
        "images at the same cut-off; per image: the visibility of the high-pass residual (Barten CSF, JND)",
        "decided by its criteria",
        criteria=(
            Criterion("high_pass_accuracy", "accuracy on high-pass filtered test images (radial DCT cut-off r_c) "
                      "minus chance", "chance (1 / number of classes)", "greater", 0.05, "accuracy"),
            Criterion("low_pass_loss", "clean accuracy minus accuracy on low-pass filtered images at the same "
                      "cut-off (the counterfactual: without its high frequencies the image loses information the "
                      "model uses)", "no loss", "greater", 0.02, "accuracy"),
            Criterion("residual_invisible", "mean log10 visibility (JND) of removing the high frequencies, x "
                      "against lowpass(x) (Barten 2003 CSF, Minkowski pooling, 60 px/degree)",
                      "the detection threshold (log10 JND = 0)", "less", 0.0, "log10 JND"),
        ),
        sources=("wang2020hfc", "barten2003", "watson1993")),
    Hypothesis(
        "H2", "H2", "attribution quantifies each frequency component's contribution (completeness holds; the "
        "numbers agree with occlusion better than nulls that ignore the model do)", "03_frequency_attribution",
        "per model seed and image: IG's relative completeness error, and the Spearman correlation between band "
        "scores and band-occlusion scores for IG and for two nulls on the same images",
        "decided by its criteria",
        criteria=(
            Criterion("completeness", "median relative IG completeness error |sum(a) - (f(x) - f(b))| / "
                      "|f(x) - f(b)| minus 0.01", "1% of the output change", "less", 0.0, "", "premise"),
            Criterion("beats_spectrum_signed", "Spearman(IG, occlusion) minus Spearman(band energy of x - b, "
                      "occlusion), signed band scores", "the band energy of x - baseline (a score that sees the "
                      "image, not the model)", "greater", 0.1, "Spearman"),
            Criterion("beats_spectrum_magnitude", "the same with absolute band scores (how much, whatever the "
                      "sign: where the image's 1/f spectrum confounds hardest)", "the band energy of x - baseline",
                      "greater", 0.1, "Spearman"),
            Criterion("beats_randomised_model", "Spearman(IG, occlusion) minus Spearman(IG of the model with every "
                      "layer re-initialised, occlusion), signed", "IG of the randomised model (Adebayo et al. "
                      "2018)", "greater", 0.1, "Spearman"),
            Criterion("agreement", "Spearman(IG, occlusion) minus 0.5, signed", "moderate agreement (0.5)",
                      "greater", 0.0, "Spearman", "secondary"),
        ),
        sources=("sundararajan2017axiomatic", "adebayo2018sanity", "wang2020towards")),
    Hypothesis(
        "H3", "H3", "at equal L2 distortion, low-frequency perturbations are more efficient than high-frequency "
        "ones", "05_low_vs_high_attacks",
        "per model seed and test image: the minimal L2 distortion that flips the prediction (band-limited PGD, "
        "binary search, the strongest of several attack settings) in the lowest and the highest of 8 equal-count "
        "DCT bands without the DC term, and in Guo/Sharma's square low-frequency block",
        "decided by its criteria",
        criteria=(
            Criterion("converged", "the largest relative change of the two bands' median distortions between the "
                      "two strongest attack settings, minus 0.05", "a 5% change (the attack has converged)", "less",
                      0.0, "", "premise"),
            Criterion("not_box_limited", "the largest share of images the [0, 1] box keeps from being flipped in "
                      "either band, minus 0.1", "10% of the images", "less", 0.0, "", "premise"),
            Criterion("low_more_efficient", "median over seeds and images of log(d_low / d_high)",
                      "equal efficiency (0)", "less", 0.0953, "log ratio"),
            Criterion("block_more_efficient", "median of log(d_block / d_high), d_block in the top-left k x k DCT "
                      "block (Guo et al., Sharma et al.)", "equal efficiency (0)", "less", 0.0953, "log ratio",
                      "secondary"),
        ),
        sources=("guo2019low", "sharma2019effectiveness", "ortizjimenez2020hold", "carlini2019evaluating")),
    Hypothesis(
        "H4", "H4", "adversarially trained models rely more on low frequencies", "07_robust_models",
        "per model seed and test image, model-only measures (no attribution method): the share of the input "
        "gradient's power in the lower half of the DCT coefficients, the share of band-occlusion drops in the lower "
        "half, the accuracy lost to low-pass filtering, the Fourier heat map's low-half minus high-half error; the "
        "adversarially trained suite against the standard suite and against a standard suite stopped at the "
        "robust suite's clean accuracy (the matched-accuracy control)",
        "decided by its criteria",
        criteria=(
            Criterion("robust_gain", "AutoAttack robust accuracy (Linf, the standard budget), adversarially trained "
                      "suite minus standard suite", "the standard suite", "greater", 0.10, "accuracy", "premise"),
            Criterion("gradient_low_share_vs_standard", "share of input-gradient power in the lower half of the DCT "
                      "coefficients, adversarially trained minus standard suite", "the standard suite", "greater",
                      0.02, "share"),
            Criterion("gradient_low_share_vs_control", "the same, adversarially trained minus matched-accuracy "
                      "control", "a standard suite as accurate as the robust one", "greater", 0.02, "share"),
            Criterion("occlusion_low_share_vs_standard", "share of band-occlusion drops in the lower half, "
                      "adversarially trained minus standard suite", "the standard suite", "greater", 0.02, "share",
                      "secondary"),
            Criterion("occlusion_low_share_vs_control", "the same against the matched-accuracy control",
                      "the matched-accuracy control", "greater", 0.02, "share", "secondary"),
            Criterion("lowpass_retention_vs_standard", "accuracy on low-pass images (r = 0.3) minus clean accuracy, "
                      "adversarially trained minus standard suite", "the standard suite", "greater", 0.02,
                      "accuracy", "secondary"),
            Criterion("heatmap_low_minus_high_vs_standard", "Fourier heat map error, low half minus high half, "
                      "adversarially trained minus standard suite (Yin et al. 2019's direction)", "the standard "
                      "suite", "greater", 0.02, "error rate", "secondary"),
        ),
        sources=("yin2019fourier", "wang2020hfc", "madry2018towards", "wong2020fast", "croce2020reliable")),
    Hypothesis(
        "H5a", "H5a", "changing the attribution-guided model's decision takes a change a person would notice",
        "08_frequency_defense",
        "per model seed and test image: the visibility (log10 JND, Barten CSF at 60 px/degree) and SSIM of the "
        "minimal L2 adversarial perturbation, attribution-guided suite against the standard suite and against a "
        "placebo suite trained with the CSF weights shuffled over frequencies",
        "decided by its criteria",
        criteria=(
            Criterion("visibility_vs_standard", "mean log10 visibility of the minimal adversarial perturbation, "
                      "attribution-guided minus standard suite", "the standard suite", "greater", 0.1, "log10 JND"),
            Criterion("visibility_vs_placebo", "the same, attribution-guided minus placebo suite (shuffled CSF "
                      "weights)", "the placebo suite", "greater", 0.1, "log10 JND"),
            Criterion("ssim_vs_standard", "SSIM between image and minimal adversarial example, attribution-guided "
                      "minus standard suite (lower: more visible)", "the standard suite", "less", 0.01, "SSIM",
                      "secondary"),
        ),
        sources=("barten2003", "watson1993", "wang2004image", "ross2018improving")),
    Hypothesis(
        "H5b", "H5b", "aligning with human sensitivity buys robustness to attacks that see the model",
        "08_frequency_defense",
        "per model seed and test image: robust (1) or not (0) under the band AutoAttack (full band, Linf, the "
        "standard budget), attribution-guided suite against the standard and the placebo suite",
        "decided by its criteria",
        criteria=(
            Criterion("robust_vs_standard", "band AutoAttack robust accuracy, attribution-guided minus standard suite",
                      "the standard suite", "greater", 0.05, "accuracy"),
            Criterion("robust_vs_placebo", "the same, attribution-guided minus placebo suite", "the placebo suite",
                      "greater", 0.05, "accuracy"),
        ),
        sources=("croce2020reliable", "ross2018improving")),
    Hypothesis(
        "H6", "H6", "smoothing the first layer's kernels makes a model rely on low frequencies", "08_frequency_defense",
        "per model seed and test image: the input-gradient power share in the lower half of the DCT coefficients "
        "and band-occlusion low share, a suite trained with smoothed first-layer kernels against the standard "
        "suite; and its AutoAttack robust accuracy",
        "decided by its criteria",
        criteria=(
            Criterion("gradient_low_share_vs_standard", "share of input-gradient power in the lower half, smoothed "
                      "minus standard suite", "the standard suite", "greater", 0.02, "share"),
            Criterion("occlusion_low_share_vs_standard", "share of band-occlusion drops in the lower half, smoothed "
                      "minus standard suite", "the standard suite", "greater", 0.02, "share", "secondary"),
            Criterion("robust_vs_standard", "AutoAttack robust accuracy, smoothed minus standard suite",
                      "the standard suite", "greater", 0.02, "accuracy", "secondary"),
        ),
        sources=("wang2020hfc",)),
    Hypothesis(
        "H7", "H7", "the non-robust features of Ilyas et al. live in high frequencies", "07_robust_models",
        "per image: the high-frequency share of the perturbation that plants non-robust features (D_det, from a "
        "standard model) against the high-frequency share of natural images; per model seed and test image: the "
        "input-gradient low share of models trained on the robust and on the non-robust data set",
        "decided by its criteria",
        criteria=(
            Criterion("perturbation_high_share", "share of energy above half the DCT radius in x_nonrobust - x, "
                      "minus the same share in x", "the natural images' own spectrum", "greater", 0.05, "share"),
            Criterion("reliance_robust_vs_nonrobust", "input-gradient low share, model trained on the robust data "
                      "set minus model trained on the non-robust data set", "the non-robust-trained suite",
                      "greater", 0.02, "share"),
        ),
        sources=("ilyas2019adversarial",)),
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
        ``{"id", "hypothesis", "dataset", "rule", "verdict", "evidence"}``.

    Raises:
        ValueError: an unknown ``hid``, a hypothesis with criteria (decided by
            :func:`judge`), or a ``supported`` other than True, False, None.
        KeyError: a value the rule's template needs is missing.
    """
    if hid not in HYPOTHESES:
        raise ValueError(f"hid must be one of {list(HYPOTHESES)}, got {hid!r}")
    if supported not in (True, False, None):
        raise ValueError(f"supported must be True, False or None, got {supported!r}")
    h = HYPOTHESES[hid]
    if h.criteria:
        raise ValueError(f"hypothesis {hid} is decided by its criteria: use judge(), not verdict()")
    rule = h.rule.format(**{**h.thresholds, **setting})
    word = {True: "supported", False: "rejected", None: "inconclusive"}[supported]
    return {"id": hid, "hypothesis": h.title + (f" ({dataset})" if dataset else ""), "dataset": dataset, "rule": rule,
            "verdict": word, "evidence": jsonable(dict(evidence))}


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


#: What a verdict judged by :func:`judge` must record about where it came from.
PROVENANCE_KEYS = ("commit", "profile")


def _check_provenance(provenance) -> None:
    """ValueError naming ``provenance`` unless it is a dict holding :data:`PROVENANCE_KEYS` (one check for all)."""
    if not isinstance(provenance, Mapping) or any(k not in provenance for k in PROVENANCE_KEYS):
        raise ValueError(f"provenance must be a dict with at least {list(PROVENANCE_KEYS)}, got {provenance!r}")


def _with_provenance(record: dict, provenance) -> dict:
    """``record`` with ``provenance`` attached (None: as it is), checked by :func:`_check_provenance`."""
    if provenance is None:
        return record
    _check_provenance(provenance)
    return {**record, "provenance": jsonable(dict(provenance))}


def combine(decisions: Mapping[str, str], roles: Mapping[str, str]) -> tuple[str, str]:
    """One hypothesis' verdict from its criteria's decisions, and the reason in words.

    *Inconclusive* if any premise is not supported (the claims cannot be tested);
    otherwise *rejected* if any claim is rejected, *supported* if every claim is supported,
    *inconclusive* otherwise.  Secondary criteria never count.

    Args:
        decisions: ``{criterion name: "supported" | "rejected" | "inconclusive"}``.
        roles: ``{criterion name: "premise" | "claim" | "secondary"}`` (same names).

    Returns:
        ``(verdict, reason)``.

    Raises:
        ValueError: names that differ between the two, an unknown word or role, or no claim.

    Example:
        >>> combine({"a": "supported", "b": "inconclusive"}, {"a": "premise", "b": "claim"})
        ('inconclusive', 'claim b inconclusive')
        >>> combine({"a": "rejected", "b": "supported"}, {"a": "premise", "b": "claim"})[0]
        'inconclusive'
    """
    if set(decisions) != set(roles):
        raise ValueError(f"decisions and roles must name the same criteria, got {sorted(decisions)} and "
                         f"{sorted(roles)}")
    for k, w in decisions.items():
        if w not in VERDICTS:
            raise ValueError(f"decisions[{k!r}] must be one of {list(VERDICTS)}, got {w!r}")
        if roles[k] not in ROLES:
            raise ValueError(f"roles[{k!r}] must be one of {list(ROLES)}, got {roles[k]!r}")
    claims = [k for k in decisions if roles[k] == "claim"]
    if not claims:
        raise ValueError("a hypothesis needs at least one criterion with role 'claim'")
    failed = [k for k in decisions if roles[k] == "premise" and decisions[k] != "supported"]
    if failed:
        return "inconclusive", "premise " + ", ".join(f"{k} {decisions[k]}" for k in failed)
    rejected = [k for k in claims if decisions[k] == "rejected"]
    if rejected:
        return "rejected", "claim " + ", ".join(rejected) + " rejected"
    open_ = [k for k in claims if decisions[k] != "supported"]
    if open_:
        return "inconclusive", "claim " + ", ".join(open_) + " inconclusive"
    return "supported", "every claim supported"


def _estimate(name: str, est) -> dict:
    """A criterion's estimate in one form: mean, CI, per-seed intervals, n images and n seeds."""
    if not isinstance(est, Mapping):
        raise ValueError(f"estimates[{name!r}] must be a dict with 'mean', 'ci_low', 'ci_high', got {type(est)}")
    try:
        mean, lo, hi = float(est["mean"]), float(est["ci_low"]), float(est["ci_high"])
    except (KeyError, TypeError, ValueError) as e:
        raise ValueError(f"estimates[{name!r}] must hold numbers 'mean', 'ci_low', 'ci_high' ({e})") from e
    n_seeds = est.get("n_seeds", 1)
    n_seeds = min(n_seeds) if isinstance(n_seeds, (list, tuple)) else n_seeds
    n_images = est.get("n_images", est.get("n"))
    per_seed = [(float(p["ci_low"]), float(p["ci_high"])) for p in est.get("per_seed", [])]
    return {"mean": mean, "ci": [lo, hi], "n_seeds": int(n_seeds), "n_images": None if n_images is None else int(n_images),
            "per_seed": per_seed, "levels": est.get("levels", "")}


def judge(hid: str, estimates: Mapping, provenance: Mapping, dataset: str = "", evidence: Mapping | None = None) -> dict:
    """A verdict on hypothesis ``hid`` by its :class:`Criterion` list (the rules of issue 13).

    Each criterion's effect interval is decided by :func:`decide` against its ``delta`` in
    its ``direction``; with per-seed intervals, the same decision is taken per seed and the
    record says on how many seeds it agrees with the pooled one.  The hypothesis' verdict is
    :func:`combine` of the decisions.

    Args:
        hid: a key of :data:`HYPOTHESES` whose entry has criteria.
        estimates: ``{criterion name: {"mean", "ci_low", "ci_high", ["per_seed": [{"ci_low",
            "ci_high"}...]], ["n_seeds"], ["n_images" or "n"], ["ci"]}}`` for every criterion
            (the output of :func:`freqkit.hierarchical_bootstrap_ci`,
            :func:`freqkit.suite_difference` or :func:`freqkit.paired_difference`, on the
            effect: measure minus null); a ``"ci"`` level, when given, must equal the
            criterion's ``confidence``.
        provenance: at least ``commit`` (the git commit of the code) and ``profile``; stored
            as given (add anything else that identifies the run).
        dataset: appended to the statement, e.g. ``"cifar10"`` or ``"cifar10, standard model"``.
        evidence: further measurements to store beside the criteria (JSON-ready).

    Returns:
        ``{"id", "hypothesis", "dataset", "rule", "verdict", "reason", "criteria": [{"name", "role",
        "measure", "null", "direction", "delta", "units", "confidence", "mean", "ci",
        "decision", "per_seed_decisions", "seeds_agreeing", "n_seeds", "n_images"}],
        "provenance", "evidence"}``; ``n_images`` at the top of the evidence is the
        smallest over the criteria, ``n_seeds`` the largest (a model-independent measure has one).

    Raises:
        ValueError: an unknown ``hid``, a hypothesis without criteria, an estimate missing
            or malformed, an interval at another level, or provenance without
            :data:`PROVENANCE_KEYS`.

    Example:
        >>> est = {"high_pass_accuracy": {"mean": 0.3, "ci_low": 0.25, "ci_high": 0.35, "n_images": 500},
        ...        "low_pass_loss": {"mean": 0.2, "ci_low": 0.15, "ci_high": 0.25, "n_images": 500},
        ...        "residual_invisible": {"mean": -0.5, "ci_low": -0.6, "ci_high": -0.4, "n_images": 500}}
        >>> judge("H1", est, {"commit": "abc", "profile": "smoke"})["verdict"]
        'supported'
    """
    if hid not in HYPOTHESES:
        raise ValueError(f"hid must be one of {list(HYPOTHESES)}, got {hid!r}")
    h = HYPOTHESES[hid]
    if not h.criteria:
        raise ValueError(f"hypothesis {hid} has no criteria (it is decided by its own decide_* rule)")
    _check_provenance(provenance)
    if not isinstance(estimates, Mapping):
        raise ValueError(f"estimates must be a dict {{criterion: estimate}}, got {type(estimates)}")
    unknown = set(estimates) - {c.name for c in h.criteria}
    if unknown:
        raise ValueError(f"estimates name criteria {sorted(unknown)} that {hid} does not have "
                         f"({[c.name for c in h.criteria]})")
    rows, decisions = [], {}
    for c in h.criteria:
        if c.name not in estimates:
            raise ValueError(f"estimates must hold criterion {c.name!r} of {hid}")
        raw = estimates[c.name]
        if isinstance(raw, Mapping) and "ci" in raw and isinstance(raw["ci"], numbers.Real) \
                and abs(float(raw["ci"]) - c.confidence) > 1e-9:
            raise ValueError(f"estimates[{c.name!r}] is a {raw['ci']:.0%} interval; the rule reads {c.confidence:.0%}")
        e = _estimate(c.name, raw)
        word = decide(e["ci"], c.delta, c.direction)
        per_seed = [decide(ci, c.delta, c.direction) for ci in e["per_seed"]]
        decisions[c.name] = word
        rows.append({"name": c.name, "role": c.role, "measure": c.measure, "null": c.null, "direction": c.direction,
                     "delta": c.delta, "units": c.units, "confidence": c.confidence, "mean": e["mean"], "ci": e["ci"],
                     "decision": word, "per_seed_decisions": per_seed,
                     "seeds_agreeing": sum(w == word for w in per_seed) if per_seed else None,
                     "n_seeds": e["n_seeds"], "n_images": e["n_images"], "levels": e["levels"]})
    word, reason = combine(decisions, {c.name: c.role for c in h.criteria})
    imgs = [r["n_images"] for r in rows if r["n_images"] is not None]
    ev = {"n_images": min(imgs) if imgs else None, "n_seeds": max(r["n_seeds"] for r in rows), **dict(evidence or {})}
    return {"id": hid, "hypothesis": h.title + (f" ({dataset})" if dataset else ""), "dataset": dataset,
            "rule": criteria_rule(hid), "verdict": word, "reason": reason, "criteria": jsonable(rows), "provenance": jsonable(dict(provenance)),
            "evidence": jsonable(ev)}


def criteria_rule(hid: str) -> str:
    """The decision rule of a hypothesis with criteria, in words (what a verdict record states).

    Args:
        hid: a key of :data:`HYPOTHESES` whose entry has criteria.

    Returns:
        one paragraph: each criterion's rule, then how they combine.

    Raises:
        ValueError: an unknown ``hid`` or one without criteria.
    """
    if hid not in HYPOTHESES or not HYPOTHESES[hid].criteria:
        raise ValueError(f"hid must name a hypothesis with criteria, got {hid!r}")
    parts = "; ".join(c.rule for c in HYPOTHESES[hid].criteria)
    return (f"{parts}. {hid} is inconclusive if a premise is not supported; otherwise rejected if a claim is "
            "rejected, supported if every claim is supported, inconclusive otherwise (secondary criteria are "
            "reported, not counted).")


# ============================================================================ H1 (chapter 2)

def _per_seed_images(v, name: str) -> np.ndarray:
    """``v`` as a float ``(S, N)`` array (a 1-D input is one seed)."""
    a = np.asarray(v.detach().cpu().double() if isinstance(v, torch.Tensor) else v, dtype=float)
    a = a[None, :] if a.ndim == 1 else a
    if a.ndim != 2 or a.size == 0:
        raise ValueError(f"{name} must be (n_seeds, n_images) or (n_images,), got shape {a.shape}")
    return a


def decide_h1(correct_high, correct_low, correct_clean, visibility, chance: float, provenance: Mapping,
              dataset: str = "", evidence: Mapping | None = None, n_boot: int = 2000, seed: int = 0) -> dict:
    """H1: CNNs use high frequencies that humans barely see (Wang et al. 2020), by its criteria.

    Three claims on the same test images (:data:`HYPOTHESES` ``["H1"]``): the models
    classify high-pass filtered images above chance (by more than 5 points); removing the
    high frequencies (low-pass at the same cut-off) costs accuracy (more than 2 points);
    and the high-pass residual is below the human detection threshold (its mean log10
    visibility in JND, :func:`freqkit.perturbation_visibility`, below 0).  The accuracy
    effects are per seed and image, with a hierarchical bootstrap over seeds then images
    (:func:`freqkit.hierarchical_bootstrap_ci`); the visibility does not depend on the model.

    Args:
        correct_high: ``(S, N)`` 1 where seed ``s``'s model classifies high-pass image ``i`` correctly.
        correct_low: ``(S, N)`` the same on low-pass images at the same cut-off.
        correct_clean: ``(S, N)`` the same on the unfiltered images.
        visibility: ``(N,)`` JND of the change from ``x`` to ``lowpass(x)``
            (:func:`freqkit.residual_visibility`; ``>= 0``, a zero change counts as 1e-12).
        chance: the accuracy of guessing, in ``(0, 1)``.
        provenance: ``commit``, ``profile`` and anything else naming the run (:func:`judge`).
        dataset: named in the verdict.
        evidence: further measurements stored with the verdict (cut-off, energy kept, ...).
        n_boot, seed: the bootstrap.

    Returns:
        a :func:`judge` record.

    Raises:
        ValueError: arrays of other shapes (the three accuracy arrays must match, and have
            ``N`` images as ``visibility``), values outside ``{0, 1}``, a negative
            visibility, or ``chance`` outside ``(0, 1)``.
    """
    hi, lo, cl = (_per_seed_images(v, n) for v, n in ((correct_high, "correct_high"), (correct_low, "correct_low"),
                                                      (correct_clean, "correct_clean")))
    if not hi.shape == lo.shape == cl.shape:
        raise ValueError(f"correct_high, correct_low and correct_clean must have one shape, got {hi.shape}, "
                         f"{lo.shape}, {cl.shape}")
    if any(not np.isin(a, (0.0, 1.0)).all() for a in (hi, lo, cl)):
        raise ValueError("correct_high, correct_low and correct_clean must hold 0 or 1")
    vis = _per_seed_images(visibility, "visibility")
    if vis.shape != (1, hi.shape[1]) or not np.isfinite(vis).all() or (vis < 0).any():
        raise ValueError(f"visibility must be ({hi.shape[1]},) finite values >= 0, got shape {vis.shape[1:]}")
    if isinstance(chance, bool) or not isinstance(chance, numbers.Real) or not 0 < chance < 1:
        raise ValueError(f"chance must be a number in (0, 1), got {chance!r}")
    est = {"high_pass_accuracy": hierarchical_bootstrap_ci(hi - chance, n_boot, seed=seed),
           "low_pass_loss": hierarchical_bootstrap_ci(cl - lo, n_boot, seed=seed),
           "residual_invisible": hierarchical_bootstrap_ci(np.log10(np.maximum(vis, 1e-12)), n_boot, seed=seed)}
    ev = {"accuracy_high": float(hi.mean()), "accuracy_low": float(lo.mean()), "accuracy_clean": float(cl.mean()),
          "chance": float(chance), "visibility_median_jnd": float(np.median(vis)),
          "share_residual_visible": float((vis >= 1).mean()), **dict(evidence or {})}
    return judge("H1", est, provenance, dataset, ev)


# ============================================================================ H2 (chapter 3)

def _complete_columns(arrays: Mapping) -> tuple[dict, int]:
    """The ``(S, N)`` arrays with every image (column) that is NaN in any of them dropped, and the count dropped."""
    keep = np.ones(next(iter(arrays.values())).shape[1], dtype=bool)
    for a in arrays.values():
        keep &= ~np.isnan(a).any(0)
    return {k: a[:, keep] for k, a in arrays.items()}, int((~keep).sum())


def decide_h2(rel_error, diff_signed, diff_magnitude, diff_randomised, spearman, provenance: Mapping,
              dataset: str = "", evidence: Mapping | None = None, n_boot: int = 2000, seed: int = 0) -> dict:
    """H2: attribution quantifies each frequency component's contribution, by its criteria.

    The premise is IG's completeness (a theorem, checked numerically: the median relative
    error below 1%); the claims are that IG's band scores agree with band occlusion better
    than two nulls on the same images do (by at least 0.1 in Spearman correlation): the
    band energy of ``x - baseline`` (signed and absolute scores) and IG of the randomised
    model (:func:`freqkit.attribution_vs_nulls`).  Per seed and image, hierarchical
    bootstrap (seeds, then images); images where a correlation is undefined (NaN: a
    constant row of band scores) are left out of every criterion, and counted.

    Args:
        rel_error: ``(S, N)`` :func:`freqkit.relative_completeness` of IG per seed's model.
        diff_signed: ``(S, N)`` ``NullComparison.diff_energy`` with signed scores.
        diff_magnitude: ``(S, N)`` the same difference with absolute band scores.
        diff_randomised: ``(S, N)`` ``NullComparison.diff_randomised``.
        spearman: ``(S, N)`` ``NullComparison.spearman`` (IG vs occlusion, signed).
        provenance: ``commit``, ``profile``, ... (:func:`judge`).
        dataset: named in the verdict.  evidence: stored beside the criteria.  n_boot, seed: the bootstrap.

    Returns:
        a :func:`judge` record.

    Raises:
        ValueError: arrays of different shapes, or no image left without NaN.
    """
    arrays = {k: _per_seed_images(v, k) for k, v in (("rel_error", rel_error), ("diff_signed", diff_signed),
                                                     ("diff_magnitude", diff_magnitude),
                                                     ("diff_randomised", diff_randomised), ("spearman", spearman))}
    shapes = {a.shape for a in arrays.values()}
    if len(shapes) != 1:
        raise ValueError(f"every array must have one (n_seeds, n_images) shape, got {sorted(shapes)}")
    arrays, dropped = _complete_columns(arrays)
    if arrays["spearman"].shape[1] == 0:
        raise ValueError("no image has every correlation defined (all NaN)")
    hb = lambda v, **kw: hierarchical_bootstrap_ci(v, n_boot, seed=seed, **kw)  # noqa: E731
    est = {"completeness": hb(arrays["rel_error"] - 0.01, stat="median"),
           "beats_spectrum_signed": hb(arrays["diff_signed"]),
           "beats_spectrum_magnitude": hb(arrays["diff_magnitude"]),
           "beats_randomised_model": hb(arrays["diff_randomised"]),
           "agreement": hb(arrays["spearman"] - 0.5)}
    ev = {"median_rel_completeness_error": float(np.median(arrays["rel_error"])),
          "median_spearman": float(np.median(arrays["spearman"])), "n_images_undefined": dropped,
          **dict(evidence or {})}
    return judge("H2", est, provenance, dataset, ev)


# ============================================================================ H3 (chapter 5)

def _point(value: float) -> dict:
    """A measured value with no sampling interval (a check on the run itself) as an estimate."""
    return {"mean": float(value), "ci_low": float(value), "ci_high": float(value)}


def decide_h3(d_low, d_high, relative_change: float, box_share: float, provenance: Mapping, d_block=None,
              dataset: str = "", evidence: Mapping | None = None, n_boot: int = 2000, seed: int = 0) -> dict:
    """H3: at equal L2 distortion, low-frequency perturbations are more efficient, by its criteria.

    The claim is on the per-image log ratio ``log(d_low / d_high)`` of the minimal L2
    distortions in the lowest and highest band (the same image, the same model), pooled
    over seeds and images by its median (hierarchical bootstrap, ``inf`` kept: an image the
    attack never flipped in one band): supported if the interval lies below ``-log 1.1``
    (the low band needs at least 10% less distortion), rejected if above it.  Two premises
    about the run itself: the attack converged (the medians moved at most 5% between the
    two strongest settings, :func:`freqkit.attacks.minimal_distortion_convergence`) and the
    ``[0, 1]`` box blocked at most 10% of the images in either band.

    Args:
        d_low, d_high: ``(S, N)`` minimal distortions per seed and image (the best over the
            attack settings), ``> 0``, ``inf`` allowed.
        relative_change: the largest relative change of the two bands' medians between the
            two strongest settings (``>= 0``).
        box_share: the largest share, over the two bands, of box-limited images: not flipped
            inside the ``[0, 1]`` box up to ``eps_max`` but flipped once the box is relaxed
            (``minimal_distortion(box=False)``); in ``[0, 1]``.
        provenance: ``commit``, ``profile``, ... (:func:`judge`).
        d_block: ``(S, N)`` distortions in the square low-frequency block (secondary), or None
            (then the secondary criterion is recorded as inconclusive with no data: an
            interval ``(-inf, inf)``).
        dataset: named in the verdict (e.g. ``"cifar10, standard"``).
        evidence: stored beside the criteria.  n_boot, seed: the bootstrap.

    Returns:
        a :func:`judge` record.

    Raises:
        ValueError: arrays of other shapes, a distortion ``<= 0`` or NaN, ``relative_change``
            negative or NaN, ``box_share`` outside ``[0, 1]``.
    """
    lo, hi = _per_seed_images(d_low, "d_low"), _per_seed_images(d_high, "d_high")
    if lo.shape != hi.shape:
        raise ValueError(f"d_low and d_high must have one shape, got {lo.shape} and {hi.shape}")
    for a, name in ((lo, "d_low"), (hi, "d_high")):
        if np.isnan(a).any() or (a <= 0).any():
            raise ValueError(f"{name} must hold distortions > 0 (inf allowed), without NaN")
    if not (isinstance(relative_change, numbers.Real) and relative_change >= 0):
        raise ValueError(f"relative_change must be a number >= 0, got {relative_change!r}")
    if not (isinstance(box_share, numbers.Real) and 0 <= box_share <= 1):
        raise ValueError(f"box_share must be a number in [0, 1], got {box_share!r}")
    with np.errstate(invalid="ignore"):
        ratio = np.log(lo) - np.log(hi)
    ratio = np.where(np.isnan(ratio), 0.0, ratio)  # inf - inf: both bands blocked; no evidence either way
    est = {"converged": _point(relative_change - 0.05), "not_box_limited": _point(box_share - 0.1),
           "low_more_efficient": hierarchical_bootstrap_ci(ratio, n_boot, seed=seed, stat="median")}
    if d_block is None:
        est["block_more_efficient"] = {"mean": float("nan"), "ci_low": -math.inf, "ci_high": math.inf}
    else:
        bl = _per_seed_images(d_block, "d_block")
        if bl.shape != hi.shape or np.isnan(bl).any() or (bl <= 0).any():
            raise ValueError(f"d_block must be {hi.shape} distortions > 0, got shape {bl.shape}")
        with np.errstate(invalid="ignore"):
            rb = np.log(bl) - np.log(hi)
        est["block_more_efficient"] = hierarchical_bootstrap_ci(np.where(np.isnan(rb), 0.0, rb), n_boot, seed=seed,
                                                                stat="median")
    med = lambda a: float(median_with_inf(a.reshape(-1)))  # noqa: E731
    ev = {"median_low": med(lo), "median_high": med(hi), "median_ratio": float(np.exp(med(ratio))),
          "relative_change": float(relative_change), "box_share": float(box_share), **dict(evidence or {})}
    return judge("H3", est, provenance, dataset, ev)


# ============================================================================ suite comparisons (H4-H7)

def decide_suites(hid: str, comparisons: Mapping, provenance: Mapping, dataset: str = "",
                  evidence: Mapping | None = None, n_boot: int = 2000, seed: int = 0) -> dict:
    """A hypothesis whose criteria compare suites of models (H4, H5a, H5b, H6, H7), by its criteria.

    Each criterion is a difference between two suites measured on the same images, ``a``
    ``(S_a, N)`` minus ``b`` ``(S_b, N)`` (seeds by images): :func:`freqkit.suite_difference`
    resamples the seeds of each suite independently and the images once for both, and gives
    the per-seed-pair intervals for the agreement count.  A criterion that is not a
    comparison (one measure against a fixed null, e.g. H7's spectrum share) is given as
    ``(a, None)`` and bootstrapped by :func:`freqkit.hierarchical_bootstrap_ci`.  Images where
    either side is NaN (a measure undefined for that image) are left out of that criterion.

    Args:
        hid: a hypothesis of :data:`HYPOTHESES` with criteria.
        comparisons: ``{criterion name: (a, b)}`` for every criterion, ``a`` and ``b``
            array-likes ``(S, N)`` (or ``(N,)``: one seed) on the same ``N`` images, ``b`` may be None.
        provenance, dataset, evidence: as :func:`judge`.
        n_boot, seed: the bootstrap.

    Returns:
        a :func:`judge` record.

    Raises:
        ValueError: a criterion missing, a pair that is not two arrays on the same images,
            or no image left; and what :func:`judge` raises.

    Example:
        >>> import numpy as np
        >>> rng = np.random.default_rng(0)
        >>> std, robust = rng.normal(0.2, 0.05, (3, 100)), rng.normal(0.6, 0.05, (3, 100))
        >>> share = lambda d: (rng.normal(0.4 + d, 0.05, (3, 100)))
        >>> v = decide_suites("H4", {"robust_gain": (robust, std),
        ...                          "gradient_low_share_vs_standard": (share(0.1), share(0)),
        ...                          "gradient_low_share_vs_control": (share(0.1), share(0)),
        ...                          "occlusion_low_share_vs_standard": (share(0), share(0)),
        ...                          "occlusion_low_share_vs_control": (share(0), share(0)),
        ...                          "lowpass_retention_vs_standard": (share(0), share(0)),
        ...                          "heatmap_low_minus_high_vs_standard": (share(0), share(0))},
        ...                   {"commit": "abc", "profile": "smoke"})
        >>> v["verdict"], [c["decision"] for c in v["criteria"]][:3]
        ('supported', ['supported', 'supported', 'supported'])
    """
    if hid not in HYPOTHESES or not HYPOTHESES[hid].criteria:
        raise ValueError(f"hid must name a hypothesis with criteria, got {hid!r}")
    if not isinstance(comparisons, Mapping):
        raise ValueError(f"comparisons must be a dict {{criterion: (a, b)}}, got {type(comparisons)}")
    est, ns = {}, {}
    for c in HYPOTHESES[hid].criteria:
        if c.name not in comparisons:
            raise ValueError(f"comparisons must hold criterion {c.name!r} of {hid}")
        pair = comparisons[c.name]
        if not isinstance(pair, (tuple, list)) or len(pair) != 2:
            raise ValueError(f"comparisons[{c.name!r}] must be a pair (a, b), got {type(pair).__name__}")
        a = _per_seed_images(pair[0], f"comparisons[{c.name!r}][0]")
        b = None if pair[1] is None else _per_seed_images(pair[1], f"comparisons[{c.name!r}][1]")
        if b is not None and a.shape[1] != b.shape[1]:
            raise ValueError(f"comparisons[{c.name!r}]: a and b must be measured on the same images, got "
                             f"{a.shape[1]} and {b.shape[1]}")
        keep = ~np.isnan(a).any(0) & (True if b is None else ~np.isnan(b).any(0))
        if not keep.any():
            raise ValueError(f"comparisons[{c.name!r}]: no image where both sides are defined")
        ns[c.name] = int((~keep).sum())
        est[c.name] = (hierarchical_bootstrap_ci(a[:, keep], n_boot, seed=seed) if b is None
                       else suite_difference(a[:, keep], b[:, keep], n_boot, seed=seed))
    extra = set(comparisons) - set(est)
    if extra:
        raise ValueError(f"comparisons name criteria {sorted(extra)} that {hid} does not have")
    return judge(hid, est, provenance, dataset, {"n_images_undefined": ns, **dict(evidence or {})})


# ============================================================================ checks (chapter 4)

def decide_ground_truth(tables: Mapping, rule: str = "top_band", provenance: Mapping | None = None) -> dict:
    """Check: every method puts the most attribution mass on the planted band.

    Args:
        tables: ``{task name: freqkit.ground_truth_table(...)}`` (one per planted band, say).
        rule: ``"top_band"``: for every task and method, the band with the largest mean
            share is a planted band, *and* the mean share on the planted frequencies exceeds
            their share of the coefficients (a uniform spread would not pass);
            ``"above_uniform"``: only the second condition.
        provenance: where the run came from (:func:`freqkit.book.chapters.provenance`: at
            least :data:`PROVENANCE_KEYS`), stored with the record as a :func:`judge` verdict's
            is; None stores none.

    Returns:
        a :func:`verdict` record; ``evidence`` lists every (task, method) and which
        condition failed.

    Raises:
        ValueError: an unknown ``rule``, empty ``tables``, or ``provenance`` without
            :data:`PROVENANCE_KEYS`.
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
    return _with_provenance(verdict("planted", ok, {"rows": rows, "n_failed": sum(not r["passed"] for r in rows)},
                                    rule=rule, top_band_note=note), provenance)


def decide_randomisation(summary: Mapping, max_rho: float = 0.5, provenance: Mapping | None = None) -> dict:
    """Check (Adebayo et al. 2018): frequency attributions depend on the learned weights.

    Args:
        summary: :func:`freqkit.randomisation_summary` ``{method: {"spearman_abs", ...}}``.
        max_rho: a method passes if the mean Spearman correlation of ``|scores|`` between
            the trained and the fully randomised model is below it.
        provenance: as for :func:`decide_ground_truth`.

    Returns:
        a :func:`verdict` record, supported if every method passes; the evidence is ``summary``.

    Raises:
        ValueError: an empty ``summary``, or ``provenance`` without :data:`PROVENANCE_KEYS`.
    """
    if not isinstance(summary, Mapping) or not summary:
        raise ValueError("summary must be a non-empty randomisation_summary() dict")
    supported = all(v["spearman_abs"] < max_rho for v in summary.values())
    return _with_provenance(verdict("randomisation", supported, summary, max_rho=max_rho), provenance)


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
        ``where`` (the path of the verdict inside the results), ``profile`` (from the
        chapter's stored setting), and ``dataset``, ``criteria``, ``reason``, ``provenance``
        of a :func:`judge` verdict (None otherwise).  Rows follow the order of :data:`HYPOTHESES`, then the
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
                         "chapter": stem, "where": where, "profile": profile, "dataset": v.get("dataset"),
                         "criteria": v.get("criteria"),
                         "reason": v.get("reason"), "provenance": v.get("provenance")})
    rows = complete_rows(rows, chapters, status)
    return {"rows": rows, "chapters": status, "inputs": inputs}


def complete_rows(rows: Sequence[Mapping], chapters: Sequence[str] | None = None,
                  status: Mapping[str, str] | None = None) -> list[dict]:
    """Verdict rows with one placeholder row for every hypothesis of ``chapters`` that has none, in order.

    Shared by :func:`collect_verdicts` (rows read from a results store) and the README's
    committed record of measured verdicts (rows merged from several runs), so that both say
    "not run" the same way.

    Args:
        rows: verdict rows as :func:`collect_verdicts` makes them (``id``, ``chapter``, ``where``, ...).
        chapters: the chapter stems covered (default: every chapter named in :data:`HYPOTHESES`);
            a hypothesis of another chapter gets no placeholder.
        status: per chapter stem, ``"ok"``, ``"not run"``, ``"unreadable: ..."`` or ``"no verdicts"``
            (missing: ``"not run"``).

    Returns:
        A new list: ``rows`` plus the placeholders (verdict ``"not run"``, or ``"no verdict stored"``
        for a chapter that ran without storing one), sorted by the order of :data:`HYPOTHESES`,
        then of ``chapters``, then by where the verdict sits in its results.

    Raises:
        ValueError: a row whose ``id`` is not in :data:`HYPOTHESES` or whose chapter is not in ``chapters``.
    """
    if chapters is None:
        chapters = list(dict.fromkeys(h.chapter for h in HYPOTHESES.values()))
    chapters, status = list(chapters), dict(status or {})
    out = [dict(r) for r in rows]
    for r in out:
        if r.get("id") not in HYPOTHESES:
            raise ValueError(f"rows: unknown hypothesis id {r.get('id')!r}; known: {', '.join(HYPOTHESES)}")
        if r.get("chapter") not in chapters:
            raise ValueError(f"rows: chapter {r.get('chapter')!r} of {r['id']} is not among chapters {chapters}")
    have = {r["id"] for r in out}
    for hid, h in HYPOTHESES.items():
        if hid in have or h.chapter not in chapters:
            continue
        st = status.get(h.chapter, "not run")
        word = "not run" if st == "not run" or st.startswith("unreadable") else "no verdict stored"
        out.append({"id": hid, "kind": h.kind, "hypothesis": h.title, "verdict": word,
                    "rule": f"chapter {h.chapter} {'has not been run' if word == 'not run' else 'stored no verdict'}"
                            + (f" ({st})" if st.startswith("unreadable") else ""),
                    "evidence": {}, "chapter": h.chapter, "where": "", "profile": None, "dataset": None,
                    "criteria": None, "reason": None, "provenance": None})
    order = list(HYPOTHESES)
    out.sort(key=lambda r: (order.index(r["id"]), chapters.index(r["chapter"]), r.get("where") or ""))
    return out


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
