"""Human contrast sensitivity and the human-alignment score."""
import math

import pytest
import torch

import freqkit as fk
from freqkit.human import band_sensitivity, csf_map, csf_mannos_sakrison, human_alignment


def test_csf_shape_matches_mannos_sakrison():
    f = torch.linspace(0, 60, 601, dtype=torch.float64)
    a = csf_mannos_sakrison(f)
    assert float(a.max()) == pytest.approx(1.0)
    assert 7.0 <= float(f[a.argmax()]) <= 9.0  # the published peak is near 8 cycles/degree
    raw = lambda v: 2.6 * (0.0192 + 0.114 * v) * math.exp(-(0.114 * v) ** 1.1)
    assert float(a[300] / a[100]) == pytest.approx(raw(30.0) / raw(10.0), rel=1e-9)
    with pytest.raises(ValueError, match="f_cpd"):
        csf_mannos_sakrison(torch.tensor([-1.0]))


def test_csf_map_follows_the_viewing_assumption():
    m60 = csf_map(32, 32, pixels_per_degree=60)
    m15 = csf_map(32, 32, pixels_per_degree=15)
    # the finest DCT frequency is ~21 cpd at 60 px/deg (insensitive) but ~5 cpd at 15 px/deg (sensitive)
    assert float(m60[31, 31]) < 0.5 < float(m15[31, 31])
    with pytest.raises(ValueError, match="pixels_per_degree"):
        csf_map(8, 8, pixels_per_degree=0)


def test_alignment_ranks_low_frequency_reliance_above_high():
    masks = fk.band_masks(32, 32, 8)
    s = band_sensitivity(masks)
    low, high = torch.zeros(8, dtype=torch.float64), torch.zeros(8, dtype=torch.float64)
    low[1], high[7] = 1.0, 1.0
    assert float(human_alignment(low, masks)) == pytest.approx(float(s[1]))
    assert float(human_alignment(low, masks)) > float(human_alignment(high, masks))
    both = human_alignment(torch.stack([low, high * 3]), masks)  # rows are normalised
    assert both.shape == (2,) and float(both[1]) == pytest.approx(float(s[7]))


def test_bad_input():
    masks = fk.band_masks(8, 8, 2)
    with pytest.raises(ValueError, match="has 3 bands"):
        human_alignment(torch.ones(3), masks)
    with pytest.raises(ValueError, match="non-negative"):
        human_alignment(torch.tensor([1.0, -1.0]), masks)
    with pytest.raises(ValueError, match="positive sum"):
        human_alignment(torch.zeros(2), masks)
