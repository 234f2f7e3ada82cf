"""freqkit.features: Ilyas et al. 2019's robust and non-robust data sets, and their spectra."""
import pytest
import torch
from torch import nn

import freqkit as fk
from freqkit import features as Fe
from freqkit import models as M
from freqkit._runtime import eval_mode

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def standard(data_root):
    """A small standard MNIST classifier (a few seconds) and 32 test digits: (model, x, y)."""
    xs, ys = fk.load_dataset("mnist", "train", n=2048, seed=0, root=data_root)
    torch.manual_seed(0)
    model = fk.build_model("mnist", width=8)
    fk.train_on_tensors(model, xs, ys, epochs=2, batch_size=64, lr=3e-3)
    x, y = fk.load_dataset("mnist", "test", n=32, seed=0, root=data_root)
    assert fk.evaluate(model, x, y) > 0.8
    return model, x, y


# ----------------------------------------------------------------------------- the representation

def test_representation_is_the_input_of_the_head_for_freqkit_models():
    torch.manual_seed(0)
    x = torch.rand(3, 3, 32, 32)
    res = M.ResNetCIFAR(width=4).eval()
    g = Fe.representation(res)
    assert torch.allclose(g(x), res.features(res.normalize(x)), atol=1e-6) and g(x).shape == (3, 32)
    assert torch.allclose(res.fc(g(x)) * res.head_scale, res(x), atol=1e-5)
    assert torch.allclose(Fe.representation(res, "features")(x), g(x))   # the layer before the head, by name
    air = M.AirNet(width=4).fit_whitening(torch.rand(8, 3, 32, 32)).eval()
    ga = Fe.representation(air)
    assert ga(x).shape == (3, 16) and torch.allclose(air.fc(ga(x)) * air.head_scale, air(x), atol=1e-5)
    assert torch.allclose(Fe.representation(air, "pool")(x), ga(x))
    small = fk.build_model("mnist", width=4).eval()
    assert Fe.representation(small)(torch.rand(2, 1, 28, 28)).shape == (2, 128)
    # A mirror average: the mean of the two passes, which its (linear) head maps to its logits.
    mirror = M.MirrorAverage(res).eval()
    gm = Fe.representation(mirror)
    assert torch.allclose(gm(x), 0.5 * (g(x) + g(x.flip(-1))), atol=1e-6)
    assert torch.allclose(res.fc(gm(x)) * res.head_scale, mirror(x), atol=1e-5)
    # Gradients reach the input.
    z = x.clone().requires_grad_(True)
    g(z).sum().backward()
    assert z.grad is not None and z.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="layer"):
        Fe.representation(res, "no_such_layer")
    with pytest.raises(ValueError, match="Linear"):
        Fe.representation(nn.Sequential(nn.Conv2d(1, 2, 3), nn.Flatten()))
    with pytest.raises(TypeError, match="model"):
        Fe.representation(lambda t: t)


# ----------------------------------------------------------------------------- D_det (non-robust)

def test_non_robust_set_is_relabelled_and_classified_as_its_new_labels(standard):
    model, x, y = standard
    model.train()  # (the fixture is shared: eval mode is put back at the end)
    # MNIST needs a larger L2 radius than the paper's CIFAR-10 0.5 (its digits are far apart).
    x_nr, t, info = Fe.non_robust_dataset(model, x, y, eps=5.0, steps=40, step_size=0.25, batch_size=12)
    assert model.training                                     # attacked in eval mode, its mode restored
    assert x_nr.shape == x.shape and x_nr.dtype == x.dtype and t.dtype == torch.int64
    assert bool(x_nr.min() >= 0) and bool(x_nr.max() <= 1)
    assert torch.equal(t, (y + 1) % 10) and torch.equal(info["source_labels"], y)
    assert bool((info["l2"] <= 5.0 + 1e-4).all()) and bool((info["l2"] > 0).all())
    pred = fk.predict_logits(model, x_nr).argmax(1)
    assert torch.equal(info["success"], pred == t) and info["success_rate"] == float((pred == t).float().mean())
    assert info["success_rate"] >= 0.9                        # the standard model sees class t
    assert fk.evaluate(model, x, y) > 0.8                     # while the originals are still class y
    assert info["n_classes"] == 10 and info["eps"] == 5.0 and info["settings"]["eps"] == 0.5
    model.eval()


def test_non_robust_defaults_are_the_papers():
    assert Fe.ILYAS_SETTINGS["non_robust"]["eps"] == 0.5 and Fe.ILYAS_SETTINGS["robust"]["steps"] == 1000
    import inspect
    sig = inspect.signature(Fe.non_robust_dataset).parameters
    assert (sig["eps"].default, sig["steps"].default, sig["step_size"].default) == (0.5, 100, 0.1)
    sig = inspect.signature(Fe.robust_dataset).parameters
    assert (sig["steps"].default, sig["step_size"].default) == (1000, 0.1)


# ----------------------------------------------------------------------------- D_R (robust)

def test_robust_construction_matches_the_representation_from_another_start(standard):
    model, x, y = standard
    x8, y8 = x[:8], y[:8]
    xr, yr, info = Fe.robust_dataset(model, x8, y8, steps=40, step_size=0.1, batch_size=5, seed=1)
    assert xr.shape == x8.shape and bool(xr.min() >= 0) and bool(xr.max() <= 1) and torch.equal(yr, y8)
    start = info["start_index"]
    assert sorted(start.tolist()) == list(range(8)) and bool((start != torch.arange(8)).all())  # a derangement
    d0, d1 = info["distance_start"], info["distance_final"]
    assert bool((d1 < d0).all()) and float(d1.mean()) < 0.6 * float(d0.mean())
    # the recorded distances are what they say
    g = Fe.representation(model)
    with eval_mode(model), torch.no_grad():
        assert torch.allclose((g(xr) - g(x8)).norm(dim=1), d1, rtol=1e-3, atol=1e-4)
        assert torch.allclose((g(x8[start]) - g(x8)).norm(dim=1), d0, rtol=1e-3, atol=1e-4)
    # It moved away from its start (and did not simply copy x): matched features, not pixels.
    assert bool(((xr - x8[start]).flatten(1).norm(dim=1) > 0.5).all())
    again, _, info2 = Fe.robust_dataset(model, x8, y8, steps=40, step_size=0.1, batch_size=5, seed=1)
    assert torch.equal(again, xr) and torch.equal(info2["start_index"], start)
    assert info["steps"] == 40 and info["norm"] == "l2" and info["settings"]["steps"] == 1000


def test_robust_construction_works_on_an_airnet_and_a_named_layer():
    torch.manual_seed(0)
    x, y = torch.rand(4, 3, 32, 32), torch.tensor([0, 1, 2, 3])
    air = M.AirNet(width=4).fit_whitening(torch.rand(16, 3, 32, 32))
    for features in (None, "pool", Fe.representation(air, "groups")):
        _, _, info = Fe.robust_dataset(air, x, y, features=features, steps=15, step_size=0.2, seed=0)
        assert bool((info["distance_final"] < info["distance_start"]).all()), features


def test_bad_input_is_refused_naming_the_argument(standard):
    model, x, y = standard
    x4, y4 = x[:4], y[:4]
    for fn in (Fe.robust_dataset, Fe.non_robust_dataset):
        with pytest.raises(ValueError, match=r"x must hold pixel values in \[0, 1\]"):
            fn(model, x4 * 2, y4, steps=1)
        with pytest.raises(ValueError, match="y must have shape"):
            fn(model, x4, y4[:3], steps=1)
        with pytest.raises(ValueError, match="y must hold class indices"):
            fn(model, x4, y4 + 10, steps=1)
        with pytest.raises(ValueError, match="steps"):
            fn(model, x4, y4, steps=0)
        with pytest.raises(ValueError, match="step_size"):
            fn(model, x4, y4, steps=1, step_size=-0.1)
        with pytest.raises(ValueError, match="batch_size"):
            fn(model, x4, y4, steps=1, batch_size=0)
        with pytest.raises(ValueError, match="seed"):
            fn(model, x4, y4, steps=1, seed=0.5)
        with pytest.raises(TypeError, match="model"):
            fn(lambda t: t, x4, y4, steps=1)
        with pytest.raises(TypeError, match="x"):
            fn(model, x4.numpy(), y4, steps=1)
    with pytest.raises(ValueError, match="eps"):
        Fe.non_robust_dataset(model, x4, y4, eps=0, steps=1)
    with pytest.raises(ValueError, match="at least 2 images"):
        Fe.robust_dataset(model, x4[:1], y4[:1], steps=1)
    with pytest.raises(ValueError, match="features"):
        Fe.robust_dataset(model, x4, y4, features=3, steps=1)
    with pytest.raises(ValueError, match="layer"):
        Fe.robust_dataset(model, x4, y4, features="nope", steps=1)
    with pytest.raises(ValueError, match="features must map"):
        Fe.robust_dataset(model, x4, y4, features=lambda t: t.sum(), steps=1)


# ----------------------------------------------------------------------------- spectra

def test_dataset_spectrum_comparison_orders_smooth_and_rough_sets():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(12, 3, 16, 16, generator=g) * 0.5 + 0.25
    smooth = fk.low_pass(x, 0.3).clamp(0, 1)
    rough = (x + 0.2 * fk.high_pass(torch.rand(12, 3, 16, 16, generator=g) - 0.5, 0.7)).clamp(0, 1)
    r = Fe.dataset_spectrum_comparison({"original": x, "smooth": smooth, "rough": rough}, n_bands=4,
                                       reference="original", n_boot=200)
    s = r["sets"]
    assert s["smooth"]["high_share"] < s["original"]["high_share"] < s["rough"]["high_share"]
    for v in s.values():
        assert abs(sum(v["radial_share"]) - 1) < 1e-5 and abs(v["low_share"] + v["high_share"] - 1) < 1e-5
        assert len(v["radial_share"]) == 4 and v["power"].shape == (16, 16) and v["n"] == 12
        assert v["high_share_per_image"].shape == (12,)
    assert len(r["band_centres"]) == 4 and r["band_centres"] == sorted(r["band_centres"])
    # the change made by "rough" lies high; the per-image paired difference says so with its interval
    assert r["differences"]["rough - original"]["high_share"] > 0.8
    pr = r["paired_high_share"]["rough"]
    assert pr["n"] == 12 and pr["ci_low"] > 0 and set(r["paired_high_share"]) == {"smooth", "rough"}
    assert r["paired_high_share"]["smooth"]["ci_high"] < 0
    # Without the mean removed the DC coefficient dominates the low half.
    raw = Fe.dataset_spectrum_comparison({"x": x}, subtract_mean=False)
    assert raw["sets"]["x"]["low_share"] > 0.9 and raw["differences"] == {} and raw["reference"] is None
    dft = Fe.dataset_spectrum_comparison({"x": x, "smooth": smooth}, basis="dft", n_bands=4)
    assert dft["sets"]["smooth"]["high_share"] < dft["sets"]["x"]["high_share"]


def test_dataset_spectrum_comparison_bad_input():
    x = torch.rand(4, 1, 8, 8)
    with pytest.raises(ValueError, match="sets"):
        Fe.dataset_spectrum_comparison({})
    with pytest.raises(ValueError, match="sets"):
        Fe.dataset_spectrum_comparison([x])
    with pytest.raises(ValueError, match=r"sets\['b'\] has images of shape"):
        Fe.dataset_spectrum_comparison({"a": x, "b": torch.rand(4, 1, 16, 16)})
    with pytest.raises(ValueError, match="reference"):
        Fe.dataset_spectrum_comparison({"a": x}, reference="b")
    with pytest.raises(ValueError, match="paired"):
        Fe.dataset_spectrum_comparison({"a": x, "b": x[:2]}, reference="a")
    with pytest.raises(ValueError, match="basis"):
        Fe.dataset_spectrum_comparison({"a": x}, basis="dht")
    with pytest.raises(ValueError, match="n_bands"):
        Fe.dataset_spectrum_comparison({"a": x}, n_bands=0)
    with pytest.raises(ValueError, match="holds no images"):
        Fe.dataset_spectrum_comparison({"a": x[:0]})
