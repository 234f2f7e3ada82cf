"""freqkit: explain convolutional networks in the frequency domain."""
from .transforms import (
    BASES, band_decompose, band_masks, band_pass, block_dct2, block_idct2, dct2, dct_matrix, dft2,
    dht2, filter_band, frequency_coords, frequency_radius, from_basis, high_pass, idct2, idft2,
    idht2, low_pass, power_spectrum, radial_power_law, radial_profile, to_basis,
)
from .results import load_results, save_results, verdict
from .reliance import filtered_accuracy, h1_verdict, high_frequency_energy
from .stats import bootstrap_ci, wilson_interval

__version__ = "0.1.0"
from .attribution import (
    ATTRIBUTION_METHODS, BandPixelAttribution, DeletionInsertionCurves, FrequencyAttribution, FrequencyModel,
    RadialAttributionProfile, RandomisationCheck, attribute, band_feature_mask, band_pixel_attribution, band_shares,
    default_band_masks, deletion_insertion_curves, model_randomisation_check, planted_band_share,
    radial_attribution_profile, topk_reconstruction,
)
from .attacks import (
    LaplacianSmoothing, band_projector, compare_bands, fourier_basis_images, fourier_heatmap, minimal_distortion,
    perturbation_spectrum, pgd, smooth_pgd, success_curve,
)
from .human import band_sensitivity, csf_map, csf_mannos_sakrison, human_alignment
from .data import (
    CIFAR10_CLASSES, MNIST_CLASSES, WeightsUnavailable, dataset_info, load_dataset, load_imagenet_classifier,
    load_imagenet_folder, planted_frequency_dataset,
)
from .models import Normalize, ResNetCIFAR, SmallCNN, build_model
from .training import PRESETS, CorruptCheckpoint, evaluate, predict_logits, resolve_device, train_or_load
from .faithfulness import (
    auc_table, band_rank_agreement, captum_parity, compare_methods, completeness_summary, distribution_summary,
    h2_verdict, input_rank_correlation, relative_completeness, topk_series,
)
from .planted import PlantedCNN, PlantedTask, ground_truth_table, ground_truth_verdict, train_on_tensors, train_planted_model
from .robustness import (
    band_comparison, band_examples, box_limited, equal_count_band_masks, h3_verdict, heatmap_radial_profile,
    n_fourier_directions, paired_log_ratio, perturbation_attribution,
)
from .defense import (
    STANDARD_BUDGETS, DCTQuantize, EOT, LowPassLayer, Objective, adversarial_objective, alignment_profile,
    invisible_gradient_share, jpeg_quant_table, attribution_guided_objective, defended, evaluate_defense,
    h4_verdict, h5_verdicts, lowpass_objective, train_with_objective,
)
from .summary import collect_verdicts, find_verdicts, summarise_hypotheses
