"""Figures: the pixels they show are the ones freqkit computed."""
import numpy as np
import pytest
import torch

import freqkit as fk
from freqkit import viz


def test_to_display_layouts_and_clipping():
    rgb = torch.rand(3, 5, 6) * 2 - 0.5
    a = viz.to_display(rgb)
    assert a.shape == (5, 6, 3) and a.min() >= 0 and a.max() <= 1
    assert np.allclose(a[..., 1], rgb[1].clamp(0, 1).numpy())
    assert viz.to_display(torch.rand(1, 4, 4)).shape == (4, 4)


def test_stretch_maps_to_unit_range_and_keeps_order():
    hp = torch.tensor([[[-0.1, 0.0], [0.05, 0.2]]])
    s = viz.stretch(hp)
    assert s.min() == 0 and s.max() == 1
    assert np.argsort(s.ravel()).tolist() == np.argsort(hp.numpy().ravel()).tolist()
    assert np.all(viz.stretch(torch.zeros(1, 2, 2)) == 0)


def test_basis_grid_shows_the_dct_basis_images():
    fig = viz.basis_grid(4, "dct")
    shown = fig.axes[1 * 4 + 2].images[0].get_array()  # basis image (u=1, v=2)
    c = torch.zeros(4, 4, dtype=torch.float64)
    c[1, 2] = 1
    assert np.allclose(np.asarray(shown), fk.idct2(c).numpy())
    with pytest.raises(ValueError, match="basis"):
        viz.basis_grid(4, "wavelet")


def test_figure_to_png_and_show_images():
    fig = viz.show_images([torch.rand(3, 8, 8), torch.rand(1, 8, 8)], ["a", "b"], suptitle="s")
    png = viz.figure_to_png(fig)
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 500


def test_setting_caption():
    assert viz.setting_caption(data_set="CIFAR-10", n=10) == "data set=CIFAR-10 | n=10"
