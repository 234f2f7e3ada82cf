"""Attack figures (chapters 5-6): each figure shows exactly the numbers freqkit computed."""
from __future__ import annotations

import math

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
import torch.nn as nn  # noqa: E402

import freqkit.attacks as A  # noqa: E402
from freqkit import viz  # noqa: E402
from freqkit.transforms import band_masks, dct2, dft2  # noqa: E402


@pytest.fixture(autouse=True)
def _close():
    yield
    plt.close("all")


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
    from freqkit import robustness as R
    rng = torch.Generator().manual_seed(0)
    reports = {}
    for label, err in (("a", 0.1), ("b", 0.4)):
        e = torch.rand(8, 8, generator=rng)
        reports[label] = {"maps": {"error": e, "logit_change": -e}, "clean_error": err,
                          "radial": {"error": [v.tolist() for v in R.heatmap_radial_profile(e, 3)]}}
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
