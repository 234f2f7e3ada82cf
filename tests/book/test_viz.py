"""freqkit.book.viz: every figure shows exactly the numbers freqkit computed (not just 'it runs').

Sections: the basic figures (chapters 1-2), the attack figures (chapters 5-6), the
attribution figures (chapters 3-4).
"""
from __future__ import annotations

import math
import re

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402

import freqkit as fk  # noqa: E402
import freqkit.attacks as A  # noqa: E402
from freqkit.attribution import attribute, band_pixel_attribution  # noqa: E402
from freqkit.book import viz  # noqa: E402
from freqkit.faithfulness import deletion_insertion_curves, model_randomisation_check  # noqa: E402
from freqkit.heatmaps import heatmap_radial_profile  # noqa: E402
from freqkit.transforms import band_masks, dct2, dft2  # noqa: E402


@pytest.fixture(autouse=True)
def _close_figures():
    """Close every figure a test opened."""
    yield
    plt.close("all")


# ----------------------------------------------------------------------------- basic figures

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


def test_figure_to_png():
    fig = plt.figure(figsize=(2, 1))
    data = viz.figure_to_png(fig)
    assert data.startswith(b"\x89PNG") and not plt.fignum_exists(fig.number)


# ----------------------------------------------------------------------------- attack figures (chapters 5-6)

@pytest.fixture(scope="module")
def records():
    """Real compare_bands records on a tiny linear problem (fast, deterministic)."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 3)).eval()
    g = torch.Generator().manual_seed(0)
    x = 0.3 + 0.4 * torch.rand(6, 1, 8, 8, generator=g)
    with torch.no_grad():
        y = model(x).argmax(1)
    masks = band_masks(8, 8, 2, basis="dct")
    return A.compare_bands(model, x, y, masks, norm="l2", eps_list=[0.0, 0.1, 0.5, 2.0], steps=5,
                           search_steps=3, eps_max=2.0, n_boot=50, progress=False)


def test_attack_success_curves_show_the_success_rates(records):
    fig = viz.attack_success_curves(records, title="t")
    ax = fig.axes[0]
    lines = {ln.get_label(): ln for ln in ax.get_lines()}
    for name, rec in records.items():
        label = name if name == "full" else f"{name} ({rec['n_coefficients']} coef.)"
        ln = lines[label]
        assert np.allclose(ln.get_xdata(), rec["eps"]) and np.allclose(ln.get_ydata(), rec["success_rate"])
    assert "L2" in ax.get_xlabel()


def test_minimal_distortion_plot_shows_medians_cis_and_infinities(records):
    recs = {k: dict(v) for k, v in records.items()}
    recs["band1"].update(median_distortion=math.inf, ci_low=1.5, ci_high=math.inf, box_limited_share=0.25)
    fig = viz.minimal_distortion_plot(recs, title="t")
    ax = fig.axes[0]
    med = [ln for ln in ax.get_lines() if ln.get_label() == "median"][0]
    names = list(recs)
    finite = [i for i, k in enumerate(names) if math.isfinite(recs[k]["median_distortion"])]
    assert np.allclose(med.get_xdata(), finite)
    assert np.allclose(med.get_ydata(), [recs[names[i]]["median_distortion"] for i in finite])
    tri = [ln for ln in ax.get_lines() if ln.get_label().startswith("median = inf")][0]
    assert list(tri.get_xdata()) == [names.index("band1")]
    texts = [t.get_text() for t in ax.texts]
    assert any(t.startswith("inf") and "box 25%" in t for t in texts)
    assert any(t == f"{recs['full']['median_distortion']:.3g}" for t in texts)
    # CI segments: finite ends where finite
    segs = ax.collections[0].get_segments()
    i0 = names.index("band0")
    assert np.allclose([segs[i0][0][1], segs[i0][1][1]], [recs["band0"]["ci_low"], recs["band0"]["ci_high"]])


def test_fourier_heatmap_image_shows_the_map():
    hm = torch.rand(9, 10)
    fig = viz.fourier_heatmap_image(hm, title="hm", vmin=0, vmax=1)
    shown = np.asarray(fig.axes[0].images[0].get_array())
    assert np.allclose(shown, hm.numpy())
    assert [t.get_text() for t in fig.axes[0].get_xticklabels()] == ["-5", "0", "+4"]


def test_perturbation_strip_rows():
    g = torch.Generator().manual_seed(1)
    x = torch.rand(3, 3, 8, 8, generator=g)
    xa = (x + 0.05 * torch.randn(3, 3, 8, 8, generator=g)).clamp(0, 1)
    fig = viz.perturbation_strip(x, xa, titles=["a", "b", "c"], suptitle="s")
    axes = np.array(fig.axes).reshape(4, 3)
    d = (xa - x).double()
    for j in range(3):
        assert np.allclose(axes[0, j].images[0].get_array(), viz.to_display(x[j]))
        assert np.allclose(axes[1, j].images[0].get_array(), viz.to_display(xa[j]))
        assert np.allclose(axes[2, j].images[0].get_array(), viz.signed_stretch(d[j]))
        e = (dct2(d[j:j + 1]) ** 2).sum(1)[0]
        assert np.allclose(axes[3, j].images[0].get_array(), torch.log10(e + 1e-12).numpy())
    fig = viz.perturbation_strip(x[:1], xa[:1], basis="dft")
    e = (dft2(d[:1]).abs() ** 2).sum(1)[0]
    assert np.allclose(fig.axes[3].images[0].get_array(), torch.log10(e + 1e-12).numpy())


def test_signed_stretch_zero_is_grey():
    d = torch.tensor([[-0.2, 0.0], [0.1, 0.2]])
    s = viz.signed_stretch(d)
    assert np.allclose(s, [[0.0, 0.5], [0.75, 1.0]])
    assert np.all(viz.signed_stretch(torch.zeros(2, 2)) == 0.5)


def test_perturbation_spectra_and_share_bars():
    prof = {"pgd": torch.tensor([0.5, 0.3, 0.2]), "low": np.array([0.9, 0.09, 0.01])}
    fig = viz.perturbation_spectra(prof, [0.1, 0.5, 0.9], title="s")
    lines = {ln.get_label(): ln for ln in fig.axes[0].get_lines()}
    assert np.allclose(lines["pgd"].get_ydata(), [0.5, 0.3, 0.2])
    assert np.allclose(lines["low"].get_xdata(), [0.1, 0.5, 0.9])
    shares = {"energy": [0.7, 0.2, 0.1], "logit change": [0.2, 0.5, 0.3]}
    fig = viz.perturbation_share_bars(shares, ["b0", "b1", "b2"], title="t")
    heights = [p.get_height() for p in fig.axes[0].patches]
    assert np.allclose(heights, shares["energy"] + shares["logit change"])
    with pytest.raises(ValueError, match="shares"):
        viz.perturbation_share_bars({"e": [1, 2]}, ["b0", "b1", "b2"])


def test_paired_distortion_scatter_plots_the_pairs():
    lo = [0.1, 0.2, math.inf, 0.4]
    hi = [0.2, 0.1, 0.3, math.inf]
    fig = viz.paired_distortion_scatter(lo, hi, title="t")
    lines = {ln.get_label(): ln for ln in fig.axes[0].get_lines()}
    assert np.allclose(lines["image"].get_xdata(), [0.2, 0.1]) and np.allclose(lines["image"].get_ydata(), [0.1, 0.2])
    assert np.allclose(lines["lowest band: inf"].get_xdata(), [0.3])
    assert np.allclose(lines["highest band: inf"].get_ydata(), [0.4])


def test_success_curves_log_axis_keeps_zero(records):
    fig = viz.attack_success_curves(records, logx=True)
    ax = fig.axes[0]
    assert ax.get_xscale() == "symlog"
    assert np.allclose(ax.get_lines()[0].get_xdata(), records["band0"]["eps"])


def test_heatmap_report_figure_draws_each_models_maps_and_clean_error():
    rng = torch.Generator().manual_seed(0)
    reports = {}
    for label, err in (("a", 0.1), ("b", 0.4)):
        e = torch.rand(8, 8, generator=rng)
        reports[label] = {"maps": {"error": e, "logit_change": -e}, "clean_error": err,
                          "radial": {"error": [v.tolist() for v in heatmap_radial_profile(e, 3)]}}
    fig = viz.heatmap_report_figure(reports, {"a": "setting a"})
    axes = fig.axes
    titles = [ax.get_title() for ax in axes]
    assert any(t.startswith("a: error rate\nsetting a") for t in titles)
    assert any(t.startswith("b: mean logit drop") for t in titles)
    curves = [ax for ax in axes if ax.get_title().endswith("(ring mean)")]
    assert len(curves) == 2
    for ax, label in zip(curves, ("a", "b")):
        line = [ln for ln in ax.get_lines() if ln.get_label() == "clean error"][0]
        assert line.get_ydata()[0] == pytest.approx(reports[label]["clean_error"])
        np.testing.assert_allclose(ax.get_lines()[0].get_ydata(), reports[label]["radial"]["error"][1])
    plt.close(fig)


# ----------------------------------------------------------------------------- attribution figures (chapters 3-4)

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


def _panels(fig):
    """The figure's panels without its colour bars."""
    return [ax for ax in fig.axes if ax.get_label() != "<colorbar>"]


def test_band_heatmap_grid_shows_the_maps_and_their_sums():
    m, x = tiny_cnn(), images()
    masks = band_masks(8, 8, 3)
    bp = band_pixel_attribution(m, x, 1, masks, n_steps=4)
    hm = bp.heatmaps()
    fig = viz.band_heatmap_grid(x, hm, ["low", "mid", "high"], bp.band_scores, suptitle="s", clip=None)
    axes = np.array(_panels(fig)).reshape(2, 4)
    assert len(fig.axes) - len(_panels(fig)) == 2                    # one colour bar per row
    clipped = np.array(_panels(viz.band_heatmap_grid(x, hm, ["low", "mid", "high"]))).reshape(2, 4)
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
    axes = np.array(_panels(fig)).reshape(3, 2)
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


# ----------------------------------------------------------------------------- suites of models (chapter 8)

def test_suite_distribution_plot_draws_seed_means_and_counts_undefined():
    a = np.array([[1.0, 2.0, np.nan, 4.0], [2.0, 3.0, 4.0, 5.0]])
    b = np.array([0.0, 1.0, 1.0, 2.0])
    fig = viz.suite_distribution_plot({"guided": a, "standard": b}, "log10 JND", reference=0.0,
                                      reference_label="1 JND")
    ax = fig.axes[0]
    def dots(pos):  # the seed means are drawn 0.35 to the right of their suite's box
        return next(ln.get_ydata() for ln in ax.get_lines() if len(ln.get_xdata()) and
                    np.allclose(ln.get_xdata(), pos))
    assert np.allclose(dots(0.35), [7 / 3, 3.5]) and np.allclose(dots(1.35), [1.0])
    ticks = [t.get_text() for t in ax.get_xticklabels()]
    assert ticks[0] == "guided\n2 seed(s), 1 undefined" and ticks[1] == "standard\n1 seed(s)"
    assert any(ln.get_linestyle() == "--" and np.allclose(ln.get_ydata(), 0.0) for ln in ax.get_lines())
    with pytest.raises(ValueError, match="non-empty"):
        viz.suite_distribution_plot({}, "y")
    with pytest.raises(ValueError, match="n_seeds"):
        viz.suite_distribution_plot({"a": np.zeros((1, 2, 3))}, "y")


def test_penalty_sweep_plot_shows_the_values_and_the_reference():
    lams, clean, robust, vis = [0.3, 1.0, 3.0], [0.9, 0.8, 0.6], [0.0, 0.05, 0.1], [-0.4, -0.2, 0.3]
    fig = viz.penalty_sweep_plot(lams, clean, robust, vis, reference={"clean": 0.95, "visibility": -0.6})
    a0, a1 = fig.axes
    lines = a0.get_lines()
    assert np.allclose(lines[0].get_xdata(), lams) and np.allclose(lines[0].get_ydata(), clean)
    assert any(len(ln.get_ydata()) == 3 and np.allclose(ln.get_ydata(), robust) for ln in lines)
    assert any(ln.get_linestyle() == "--" and np.allclose(ln.get_ydata(), 0.95) for ln in lines)
    assert np.allclose(a1.get_lines()[0].get_ydata(), vis)
    assert any(ln.get_linestyle() == "--" and np.allclose(ln.get_ydata(), -0.6) for ln in a1.get_lines())
    assert a0.get_xscale() == "log" and a1.get_xscale() == "log"
    with pytest.raises(ValueError, match="one value per weight"):
        viz.penalty_sweep_plot(lams, clean[:2], robust, vis)
    with pytest.raises(ValueError, match="> 0"):
        viz.penalty_sweep_plot([0.0, 1.0, 2.0], clean, robust, vis)


def test_suite_perturbation_grid_shares_the_perturbation_scale_per_image():
    x = torch.full((2, 1, 4, 4), 0.5)
    small, big = x.clone(), x.clone()
    small[:, :, 0, 0] += 0.1
    big[:, :, 0, 0] += 0.2
    fig = viz.suite_perturbation_grid(x, {"a": small, "b": big}, values={"a": [0.5, float("nan")], "b": [1.0, 2.0]})
    axes = np.array(fig.axes).reshape(5, 2)
    pa = np.asarray(axes[2, 0].images[0].get_array())   # suite a's perturbation of image 0
    pb = np.asarray(axes[4, 0].images[0].get_array())
    assert np.isclose(pb[0, 0], 1.0) and np.isclose(pa[0, 0], 0.75) and np.isclose(pa[1, 1], 0.5)
    assert axes[1, 0].get_title() == "0.5" and axes[1, 1].get_title() == "-"
    with pytest.raises(ValueError, match="shape of x"):
        viz.suite_perturbation_grid(x, {"a": x[:1]})
