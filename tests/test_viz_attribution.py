"""Attribution figures: each one shows the numbers freqkit computed (not just 'it runs')."""
from __future__ import annotations

import re

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pytest
import torch
from torch import nn

from freqkit import viz
from freqkit.attribution import attribute, band_pixel_attribution, deletion_insertion_curves, model_randomisation_check
from freqkit.transforms import band_masks


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    import matplotlib.pyplot as plt

    plt.close("all")


def tiny_cnn(seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.Tanh(), nn.AdaptiveAvgPool2d(2), nn.Flatten(),
                         nn.Linear(16, 3)).double().eval()


def images(n=2):
    return torch.rand(n, 3, 8, 8, generator=torch.Generator().manual_seed(1), dtype=torch.float64)


def _texts(fig):
    out = [t.get_text() for t in fig.texts]
    for ax in fig.axes:
        out += [ax.get_title(), ax.get_xlabel(), ax.get_ylabel()]
        leg = ax.get_legend()
        if leg is not None:
            out += [t.get_text() for t in leg.get_texts()]
    return out


def test_attribution_map_shows_the_scores_on_a_symmetric_scale():
    s = torch.randn(6, 5, dtype=torch.float64)
    s[0, 0] = 100.0  # a dominant mean coefficient
    fig = viz.attribution_map(s, "dct", "IG", clip=None)
    im = fig.axes[0].images[0]
    assert np.allclose(np.asarray(im.get_array()), s.numpy())
    lo, hi = im.get_clim()
    assert np.isclose(-lo, hi) and np.isclose(hi, s.abs().max().item())
    clipped = viz.attribution_map(s, "dct", "IG", clip=90).axes[0].images[0]
    assert np.allclose(np.asarray(clipped.get_array()), s.numpy())  # the data are not clipped, the colours are
    assert np.isclose(clipped.get_clim()[1], np.percentile(s.abs().numpy(), 90))
    fig2 = viz.attribution_map(s.abs(), "dft", signed=False)
    assert fig2.axes[0].images[0].get_clim()[0] == 0
    with pytest.raises(ValueError, match="H, W"):
        viz.attribution_map(torch.zeros(2, 3, 3))


def test_method_panel_has_image_and_each_map():
    r = attribute(tiny_cnn(), images(1), 0, method="ig", n_steps=4)
    maps = {"IG": r.spectral_map()[0], "|IG|": r.spectral_map("abs")[0]}
    fig = viz.method_panel(images(1)[0], maps, signed={"|IG|": False}, suptitle="setting")
    imgs = [ax.images[0] for ax in fig.axes if ax.images]
    assert len(imgs) == 3 and len(fig.axes) == 3 + 2  # image, two maps, two colour bars
    assert np.allclose(np.asarray(imgs[1].get_array()), maps["IG"].numpy())
    assert np.allclose(np.asarray(imgs[2].get_array()), maps["|IG|"].numpy())
    assert "IG" in _texts(fig) and "setting" in _texts(fig)


def test_band_profile_plot_lines_are_the_means():
    mean, lo, hi = np.array([0.5, 0.3, 0.2]), np.array([0.4, 0.2, 0.1]), np.array([0.6, 0.4, 0.3])
    fig = viz.band_profile_plot([0, 1, 2], {"IG": (mean, lo, hi), "occ": {"mean": mean[::-1], "ci_low": lo[::-1],
                                                                           "ci_high": hi[::-1]}},
                                reference=[0.1, 0.2, 0.7], xticklabels=["a", "b", "c"])
    lines = fig.axes[0].get_lines()
    assert np.allclose(lines[0].get_ydata(), mean) and np.allclose(lines[1].get_ydata(), mean[::-1])
    assert np.allclose(lines[2].get_ydata(), [0.1, 0.2, 0.7])
    assert len(fig.axes[0].collections) == 2  # two CI bands
    with pytest.raises(ValueError, match="3 values"):
        viz.band_profile_plot([0, 1, 2], {"bad": (mean[:2], lo[:2], hi[:2])})


def test_band_heatmap_grid_shows_the_maps_and_their_sums():
    m, x = tiny_cnn(), images()
    masks = band_masks(8, 8, 3)
    bp = band_pixel_attribution(m, x, 1, masks, n_steps=4)
    hm = bp.heatmaps()
    fig = viz.band_heatmap_grid(x, hm, ["low", "mid", "high"], bp.band_scores, suptitle="s", clip=None)
    axes = np.array(fig.axes).reshape(2, 4)
    clipped = np.array(viz.band_heatmap_grid(x, hm, ["low", "mid", "high"]).axes).reshape(2, 4)
    for i in range(2):
        assert np.isclose(clipped[i, 1].images[0].get_clim()[1], np.percentile(hm[i].abs().numpy(), 99))
        lim = hm[i].abs().max().item()
        for j in range(3):
            im = axes[i, j + 1].images[0]
            assert np.allclose(np.asarray(im.get_array()), hm[i, j].numpy())
            assert np.isclose(im.get_clim()[1], lim)
            want = f"{bp.band_scores[i, j].item():+.3g}"
            assert want in axes[i, j + 1].get_title()
    with pytest.raises(ValueError, match="band_labels"):
        viz.band_heatmap_grid(x, hm, ["a"])


def test_topk_strip_shows_the_reconstructions():
    x = images(3)
    rec = x * 0.5
    fig = viz.topk_strip(x, rec, titles=["a", "b", "c"], suptitle="top 10%")
    shown = [ax.images[0] for ax in fig.axes if ax.images]
    assert np.allclose(np.asarray(shown[3].get_array()), viz.to_display(rec[0]))
    assert "a" in _texts(fig) and "top 10%" in _texts(fig)
    with pytest.raises(ValueError, match="recon"):
        viz.topk_strip(x, rec[:2])


def test_deletion_insertion_plot_shows_mean_curves_and_aucs():
    m, x = tiny_cnn(), images(3)
    r = attribute(m, x, "predicted", method="ig", n_steps=4)
    cur = deletion_insertion_curves(m, x, r.target, r, n_points=5, orders=("attribution", "random"))
    fig = viz.deletion_insertion_plot(cur, title="CIFAR")
    del_ax, ins_ax = fig.axes
    for ax, data, aucs in ((del_ax, cur.deletion, cur.auc_deletion), (ins_ax, cur.insertion, cur.auc_insertion)):
        lines = ax.get_lines()
        assert np.allclose(lines[0].get_ydata(), data["attribution"].mean(0).numpy())
        assert np.allclose(lines[1].get_xdata(), cur.fractions.numpy())
        labels = [t.get_text() for t in ax.get_legend().get_texts()]
        assert f"AUC {aucs['random'].mean().item():.3f}" in labels[1]


def test_completeness_histogram_states_share_within_tolerance():
    rel = np.array([1e-4, 2e-3, 5e-3, 0.02, 0.3])
    fig = viz.completeness_histogram(rel, tol=0.01)
    txt = " ".join(_texts(fig))
    assert "60.0% of 5 within" in txt and f"median {np.median(rel):.2g}" in txt
    counts = [p.get_height() for p in fig.axes[0].patches]
    assert sum(counts) == 5
    with pytest.raises(ValueError):
        viz.completeness_histogram([np.nan])


def test_ground_truth_bars_heights_are_the_shares():
    tables = {"band 1": {"ig": {"share": 0.6, "share_ci": [0.5, 0.7], "coefficient_share": 0.1},
                         "occ": {"share": 0.8, "share_ci": [0.75, 0.85], "coefficient_share": 0.1}},
              "band 5": {"ig": {"share": 0.4, "share_ci": [0.3, 0.5], "coefficient_share": 0.2},
                         "occ": {"share": 0.3, "share_ci": [0.2, 0.4], "coefficient_share": 0.2}}}
    fig = viz.ground_truth_bars(tables)
    heights = sorted(round(p.get_height(), 6) for p in fig.axes[0].patches)
    assert heights == [0.3, 0.4, 0.6, 0.8]
    segs = [c for c in fig.axes[0].collections if c.get_label() == "share of coefficients"
            or c.get_label().startswith("_")]
    ys = sorted({round(float(s[0][1]), 6) for c in segs for s in c.get_segments() if len(s) and s[0][1] == s[1][1]})
    assert 0.1 in ys and 0.2 in ys


def test_randomisation_plot_shows_mean_spearman_per_step():
    m, x = tiny_cnn(), images()
    chk = model_randomisation_check(m, x, 0, method="gradient", mode="cascading")
    fig = viz.randomisation_plot({"gradient": chk})
    y = fig.axes[0].get_lines()[0].get_ydata()
    assert np.allclose(y, np.nanmean(chk.spearman_abs.numpy(), 1))
    ticks = [t.get_text() for t in fig.axes[0].get_xticklabels()]
    assert ticks == list(chk.layers)
    assert re.search("Spearman", fig.axes[0].get_ylabel())


def test_band_component_strip_shows_component_and_map():
    m, x = tiny_cnn(), images(2)
    masks = band_masks(8, 8, 3)
    bp = band_pixel_attribution(m, x, 1, masks, n_steps=4)
    hm = bp.heatmaps()
    lims = hm.abs().amax((1, 2, 3))
    fig = viz.band_component_strip(x, bp.components[:, 1], hm[:, 1], "band 1", bp.band_scores[:, 1], vlims=lims)
    axes = np.array(fig.axes).reshape(3, 2)
    for j in range(2):
        assert np.allclose(np.asarray(axes[1, j].images[0].get_array()), viz.stretch(bp.components[j, 1]))
        im = axes[2, j].images[0]
        assert np.allclose(np.asarray(im.get_array()), hm[j, 1].numpy())
        assert np.isclose(im.get_clim()[1], lims[j].item())
        assert f"{bp.band_scores[j, 1].item():+.3g}" in axes[2, j].get_title()
    with pytest.raises(ValueError, match="one entry per image"):
        viz.band_component_strip(x, bp.components[:1, 1], hm[:, 1], "b")


def test_markdown_table():
    t = viz.markdown_table(["method", "share", "ci", "ok", "q"], [["ig", 0.123456, (0.1, 0.2), True, [1, 0.33333, 2.5]],
                                                              ["a|b", None, 3, False, []]])
    assert t.splitlines()[0] == "| method | share | ci | ok | q |"
    assert t.splitlines()[2] == "| ig | 0.123 | [0.1, 0.2] | yes | [1, 0.333, 2.5] |"
    assert t.splitlines()[3] == "| a\\|b | - | 3 | no | [] |"
    with pytest.raises(ValueError, match="cells"):
        viz.markdown_table(["a", "b"], [[1]])
