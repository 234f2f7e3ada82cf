"""freqkit: explain convolutional networks in the frequency domain.

The public API is :data:`__all__`; each name lives in the module named for its concept:

========================  ==================================================================
``freqkit.transforms``    DCT/DFT bases, band masks, filters, spectra (the ground floor)
``freqkit.data``          CIFAR-10, MNIST, ImageNet folders as ``[0, 1]`` tensors
``freqkit.models``        architectures, ``Normalize``, prediction, pretrained classifiers
``freqkit.training``      presets and :func:`train_or_load` with a checkpoint cache
``freqkit.objectives``    adversarial, low-pass and attribution-guided training
``freqkit.attribution``   :func:`attribute` and frequency attributions built on it
``freqkit.faithfulness``  completeness, agreement, deletion/insertion, randomisation
``freqkit.planted``       a data set and a model whose frequency ground truth is known
``freqkit.attacks``       band-limited PGD, minimal distortion per band, smooth PGD
``freqkit.apgd``          APGD (CE, DLR, targeted) in a band, band AutoAttack
``freqkit.masking``       gradient-masking checks: eps sweep, SimBA-DCT, transfer
``freqkit.adapters``      ``BandPGD``/``BandAPGD`` as torchattacks attacks (needs torchattacks)
``freqkit.run``           command line for long runs (``python -m freqkit.run``, torchrun)
``freqkit.heatmaps``      Fourier heat maps (Yin et al. 2019)
``freqkit.defense``       input-transform defenses and an evaluation that sees them
``freqkit.reliance``      filtered accuracy and attribution profiles of a model
``freqkit.human``         the human contrast sensitivity function
``freqkit.stats``         one bootstrap, Wilson intervals, paired comparisons
``freqkit.results``       the results store
``freqkit.features``      Ilyas et al.'s robust and non-robust data sets, their spectra
``freqkit.hypotheses``    the book's hypotheses as data, and their decision rules
========================  ==================================================================

The book's own code (runner, figures, widgets, chapter helpers) is :mod:`freqkit.book`;
nothing above imports it.
"""
from . import hypotheses
from ._distributed import DistributedError, RankFailed
from .apgd import (
    APGD_LOSSES, BAND_AUTOATTACK_VERSIONS, NOT_BAND_LIMITED, apgd, band_autoattack, dlr_loss, dlr_loss_targeted,
)
from .attacks import (
    LaplacianSmoothing, band_comparison, band_examples, band_projector, box_limited, compare_bands, example_spectra,
    minimal_distortion, minimal_distortion_convergence, minimal_distortion_ddn, pgd, smooth_pgd, smooth_summary,
    suite_band_distortion, success_curve,
)
from .attribution import (
    ATTRIBUTION_METHODS, NAMED_BASELINES, FrequencyAttribution, FrequencyModel, FromBasis, attribute, baseline_image, band_feature_mask,
    band_pixel_attribution, band_shares, perturbation_attribution, radial_attribution_profile, register_lrp_rules,
    topk_reconstruction,
)
from .features import (
    ILYAS_SETTINGS, dataset_spectrum_comparison, non_robust_dataset, representation, robust_dataset,
)
from .data import CIFAR10_CLASSES, MNIST_CLASSES, dataset_info, load_dataset, load_imagenet_folder
from .defense import (
    AUTOATTACK_ATTACKS, AUTOATTACK_VERSION_ATTACKS, AUTOATTACK_VERSIONS, MADRY_MNIST_REFERENCE, ROBUSTBENCH_REFERENCE,
    STANDARD_BUDGETS, DCTQuantize, EOT, LowPassLayer, attack_view, autoattack_crosscheck, defended, evaluate_defense,
    jpeg_quant_table, minimal_perturbation_visibility, reference_autoattack,
)
from .faithfulness import (
    NullComparison, attribution_vs_nulls, auc_table, band_rank_agreement, band_share_profile, captum_parity,
    compare_methods, completeness_summary, deletion_insertion_curves, input_rank_correlation, model_randomisation_check, randomisation_summary,
    relative_completeness, topk_series,
)
from .heatmaps import (
    fourier_basis_images, fourier_directions, fourier_heatmap, fourier_layer_heatmap, heatmap_radial_profile,
    heatmap_report, heatmap_summary, n_fourier_directions,
)
from .human import (
    REC709_LUMA, band_sensitivity, csf_barten, csf_mannos_sakrison, csf_map, human_alignment, perturbation_ssim,
    perturbation_visibility, residual_visibility,
)
from .masking import accuracy_vs_eps, blackbox_check, masking_checks, simba_dct, simba_order, transfer_check
from .models import (
    AirNet, MirrorAverage, Normalize, PatchWhitening, PlantedCNN, ResNetCIFAR, SmallCNN, WeightsUnavailable,
    build_model, evaluate, load_imagenet_classifier, load_robustbench, predict_logits, resolve_device,
    with_normalization,
)
from .objectives import (
    Objective, adversarial_objective, attribution_guided_objective, kernel_high_frequency_share, lowpass_objective,
    placebo_csf_map, train_suite, train_with_objective,
)
from .planted import ground_truth_table, planted_band_share, planted_frequency_dataset, train_planted_model
from .reliance import (
    alignment_profile, band_occlusion_shares, filtered_accuracy, high_frequency_energy, input_gradient_spectrum,
    suite_reliance,
)
from .results import load_results, save_results
from .stats import (
    bootstrap_ci, distribution_summary, hierarchical_bootstrap_ci, paired_difference, paired_log_ratio,
    suite_difference, wilson_interval,
)
from .training import (
    PRESETS, CorruptCheckpoint, first_conv, smooth_first_layer, smooth_kernels, train_on_tensors, train_or_load,
    train_seeds,
)
from .transforms import (
    BASES, band_decompose, band_energy, band_masks, band_pass, block_dct2, block_idct2, dct2, dct_matrix, dft2,
    dht2, equal_count_band_masks, filter_band, frequency_radius, from_basis, high_pass, idct2, idft2, idht2,
    dc_mask, low_block_masks, low_high_masks, low_pass, power_spectrum, radial_power_law, radial_profile, ring_band_masks, to_basis,
)

__version__ = "0.2.0"

__all__ = [
    # transforms
    "BASES", "dct2", "idct2", "dft2", "idft2", "dht2", "idht2", "to_basis", "from_basis", "dct_matrix",
    "frequency_radius", "band_masks", "equal_count_band_masks", "ring_band_masks", "low_high_masks", "low_block_masks", "dc_mask", "filter_band",
    "low_pass", "high_pass", "band_pass", "band_decompose", "block_dct2", "block_idct2", "power_spectrum",
    "radial_profile", "radial_power_law", "band_energy",
    # data and models
    "load_dataset", "dataset_info", "load_imagenet_folder", "CIFAR10_CLASSES", "MNIST_CLASSES",
    "Normalize", "with_normalization", "SmallCNN", "ResNetCIFAR", "AirNet", "PatchWhitening", "MirrorAverage",
    "PlantedCNN", "build_model", "predict_logits",
    "evaluate", "resolve_device", "load_imagenet_classifier", "load_robustbench", "WeightsUnavailable",
    # training and objectives
    "PRESETS", "train_or_load", "train_seeds", "train_on_tensors", "CorruptCheckpoint", "Objective",
    "adversarial_objective", "lowpass_objective", "attribution_guided_objective", "train_with_objective", "train_suite",
    "placebo_csf_map", "first_conv", "smooth_kernels", "smooth_first_layer", "kernel_high_frequency_share",
    # Ilyas et al. 2019: robust and non-robust data sets
    "ILYAS_SETTINGS", "representation", "robust_dataset", "non_robust_dataset", "dataset_spectrum_comparison",
    # attribution and its faithfulness
    "ATTRIBUTION_METHODS", "FrequencyModel", "FrequencyAttribution", "attribute", "band_pixel_attribution",
    "band_shares", "band_feature_mask", "topk_reconstruction", "radial_attribution_profile",
    "perturbation_attribution", "FromBasis", "register_lrp_rules", "NAMED_BASELINES", "baseline_image",
    "attribution_vs_nulls", "NullComparison", "compare_methods", "relative_completeness", "completeness_summary",
    "band_rank_agreement", "captum_parity", "deletion_insertion_curves", "auc_table", "topk_series",
    "model_randomisation_check", "randomisation_summary", "input_rank_correlation", "band_share_profile",
    "planted_frequency_dataset", "train_planted_model", "planted_band_share", "ground_truth_table",
    # attacks and heat maps
    "pgd", "band_projector", "minimal_distortion", "minimal_distortion_convergence", "minimal_distortion_ddn",
    "suite_band_distortion", "success_curve", "compare_bands", "band_comparison",
    "box_limited", "band_examples", "example_spectra", "smooth_summary", "smooth_pgd", "LaplacianSmoothing",
    "fourier_heatmap", "fourier_basis_images", "n_fourier_directions", "heatmap_radial_profile", "heatmap_summary",
    "heatmap_report", "fourier_layer_heatmap", "fourier_directions",
    # strong attacks (APGD, band AutoAttack), gradient-masking checks, torchattacks adapters
    "apgd", "band_autoattack", "dlr_loss", "dlr_loss_targeted", "APGD_LOSSES", "BAND_AUTOATTACK_VERSIONS",
    "NOT_BAND_LIMITED", "accuracy_vs_eps", "simba_dct", "simba_order", "blackbox_check", "transfer_check",
    "masking_checks", "BandPGD", "BandAPGD",
    # defenses, reliance, human vision
    "STANDARD_BUDGETS", "ROBUSTBENCH_REFERENCE", "MADRY_MNIST_REFERENCE", "LowPassLayer", "DCTQuantize",
    "jpeg_quant_table", "defended", "EOT", "attack_view", "evaluate_defense", "minimal_perturbation_visibility", "reference_autoattack",
    "autoattack_crosscheck", "AUTOATTACK_ATTACKS", "AUTOATTACK_VERSIONS", "AUTOATTACK_VERSION_ATTACKS", "filtered_accuracy",
    "high_frequency_energy", "alignment_profile", "input_gradient_spectrum", "band_occlusion_shares", "suite_reliance", "csf_mannos_sakrison", "csf_map", "band_sensitivity",
    "human_alignment", "csf_barten", "perturbation_visibility", "residual_visibility", "perturbation_ssim", "REC709_LUMA",
    # statistics, results, hypotheses
    "wilson_interval", "bootstrap_ci", "paired_difference", "paired_log_ratio", "distribution_summary",
    "hierarchical_bootstrap_ci", "suite_difference",
    "save_results", "load_results", "hypotheses",
    # several processes (torchrun): errors a rank raises
    "RankFailed", "DistributedError",
]

# The torchattacks adapters need torchattacks (not a core dependency): imported on first use.
_LAZY = {"BandPGD": "adapters", "BandAPGD": "adapters"}


def __getattr__(name):
    if name in _LAZY:
        import importlib
        return getattr(importlib.import_module(f"freqkit.{_LAZY[name]}"), name)
    raise AttributeError(f"module 'freqkit' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_LAZY))
