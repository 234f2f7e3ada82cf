"""freqkit.defense: input-transform layers, BPDA, EOT and the defense evaluation.

(Training objectives: test_objectives.py; alignment profiles: test_reliance.py; the H4/H5
rules: test_hypotheses.py; the chapter tables: tests/book/test_chapters.py.)
"""
import io

import numpy as np
import pytest
import torch
from torch import nn

import freqkit as fk
from freqkit import defense as D
from freqkit.planted import train_planted_model

pytestmark = pytest.mark.usefixtures("one_thread")


# ----------------------------------------------------------------------------- layers

def test_lowpass_layer_is_differentiable_and_matches_low_pass():
    x = torch.rand(2, 3, 8, 8, dtype=torch.float64, requires_grad=True)
    layer = D.LowPassLayer(0.5)
    assert torch.autograd.gradcheck(layer, (x,))
    assert torch.allclose(layer(x), fk.low_pass(x, 0.5), atol=1e-12)
    xf = torch.rand(2, 1, 12, 12, requires_grad=True)
    layer(xf).pow(2).sum().backward()
    assert xf.grad.abs().sum() > 0
    assert torch.allclose(D.LowPassLayer(0.4, basis="dft")(xf), fk.low_pass(xf, 0.4, basis="dft"), atol=1e-5)
    with pytest.raises(ValueError, match="cutoff"):
        D.LowPassLayer(-1)
    with pytest.raises(ValueError, match="basis"):
        D.LowPassLayer(0.5, basis="wavelet")
    with pytest.raises(ValueError, match=r"\(N, C, H, W\)"):
        layer(torch.rand(8, 8))


def test_jpeg_table():
    assert torch.equal(D.jpeg_quant_table(50), D.JPEG_LUMINANCE_TABLE)
    assert D.jpeg_quant_table(100).max() == 1 and D.jpeg_quant_table(1).max() == 255
    assert bool((D.jpeg_quant_table(90) < D.jpeg_quant_table(20)).all())
    for bad in (0, 101, 50.0, True):
        with pytest.raises(ValueError, match="quality"):
            D.jpeg_quant_table(bad)


def test_dct_quantize_bpda_gradients():
    x = torch.rand(3, 1, 28, 28, requires_grad=True)   # MNIST size: padded to 32 and cropped
    q = D.DCTQuantize(quality=50)
    out = q(x)
    assert out.shape == x.shape and float(out.detach().min()) >= 0 and float(out.detach().max()) <= 1
    assert 0 < float((out - x).detach().abs().mean()) < 0.2             # it does change the image
    out.sum().backward()
    assert torch.allclose(x.grad, torch.ones_like(x))          # BPDA: identity backward, non-zero
    x.grad = None
    D.DCTQuantize(quality=50, bpda=False)(x).sum().backward()
    assert x.grad is None or float(x.grad.abs().max()) == 0.0  # honest gradient through round(): zero
    # Same values either way.
    assert torch.allclose(D.DCTQuantize(quality=50, bpda=False)(x), out.detach(), atol=1e-6)
    # Quantising twice changes (almost) nothing on an unclipped 32x32 image (no padding, no clamp).
    v = 0.5 + 0.2 * (fk.low_pass(torch.rand(2, 1, 32, 32), 0.3) - 0.5)
    u = D.DCTQuantize(step=8.0)(v)
    assert float((D.DCTQuantize(step=8.0)(u) - u).abs().mean()) < 1e-3


def test_dct_quantize_matches_libjpeg():
    Image = pytest.importorskip("PIL.Image")
    g = torch.Generator().manual_seed(0)
    # Smooth random images (low-pass noise), like photographs at 32x32.
    x = fk.low_pass(torch.rand(6, 1, 32, 32, generator=g), 0.3).clamp(0, 1)
    x = (x * 255).round() / 255
    for quality in (30, 75):
        ours = D.DCTQuantize(quality=quality)(x)
        ref = []
        for i in range(x.shape[0]):
            buf = io.BytesIO()
            Image.fromarray((x[i, 0] * 255).round().byte().numpy(), mode="L").save(buf, "JPEG", quality=quality)
            buf.seek(0)
            ref.append(torch.from_numpy(np.array(Image.open(buf))).float() / 255)
        ref = torch.stack(ref)[:, None]
        # libjpeg uses an integer DCT and rounds to uint8: agree far below the distortion itself.
        assert float((ours - ref).abs().mean()) < 0.35 * float((ref - x).abs().mean()) + 1.5 / 255


def test_dct_quantize_bad_input():
    with pytest.raises(ValueError, match="exactly one"):
        D.DCTQuantize()
    with pytest.raises(ValueError, match="exactly one"):
        D.DCTQuantize(quality=50, step=4)
    with pytest.raises(ValueError, match="block must be 8"):
        D.DCTQuantize(quality=50, block=4)
    with pytest.raises(ValueError, match="step"):
        D.DCTQuantize(step=-1)
    with pytest.raises(ValueError, match="step must be a number or a"):
        D.DCTQuantize(step=torch.ones(4, 4))
    with pytest.raises(ValueError, match="bpda"):
        D.DCTQuantize(quality=50, bpda="yes")
    with pytest.raises(ValueError, match=r"\(N, C, H, W\)"):
        D.DCTQuantize(quality=50)(torch.rand(28, 28))


def test_defended_and_attack_view():
    net = nn.Sequential(nn.Flatten(), nn.Linear(64, 2))
    q = D.DCTQuantize(quality=50, bpda=False)
    m = D.defended(net, D.LowPassLayer(0.7), q)
    assert list(dict(m.named_children())) == ["defense0", "defense1", "model"]
    with D.attack_view(m) as n:
        assert n == 1 and q.bpda is True
    assert q.bpda is False
    with pytest.raises(TypeError, match="layers"):
        D.defended(net, lambda x: x)
    with pytest.raises(TypeError, match="model"):
        D.defended("net")


def test_defended_moves_the_layers_buffers_to_the_models_device():
    # Found on an H100: a DCTQuantize built on the CPU in front of a CUDA model mixed devices.
    net = nn.Sequential(nn.Flatten(), nn.Linear(64, 2)).to("meta")
    m = D.defended(net, D.DCTQuantize(quality=75))
    assert m.defense0.table.device.type == "meta"


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device on this machine")
def test_dct_quantize_runs_on_cuda_even_when_built_on_the_cpu():
    x = torch.rand(2, 1, 16, 16)
    q = D.DCTQuantize(quality=75)
    torch.testing.assert_close(q(x.cuda()).cpu(), q(x), atol=1e-5, rtol=0)


class _Noisy(nn.Module):
    def __init__(self, net):
        super().__init__()
        self.net = net

    def forward(self, x):
        return self.net(x + 0.05 * torch.randn_like(x))


def test_eot_and_randomness():
    net = nn.Sequential(nn.Flatten(), nn.Linear(16, 3))
    x = torch.rand(4, 1, 4, 4)
    assert not D.is_randomized(net, x) and D.is_randomized(_Noisy(net), x)
    out = D.EOT(net, 3)(x)
    assert torch.allclose(out, torch.log_softmax(net(x), 1), atol=1e-6)
    assert torch.allclose(D.EOT(_Noisy(net), 16)(x).exp().sum(1), torch.ones(4), atol=1e-5)
    with pytest.raises(ValueError, match="n_samples"):
        D.EOT(net, 0)


# ----------------------------------------------------------------------------- BPDA vs gradient masking, on a trained model

@pytest.fixture(scope="module")
def planted_low(one_thread):
    """A tiny CNN trained in ~2 s on planted LOW-frequency signal (radial band 1 of 8, 16x16)."""
    return train_planted_model(band=1, n_train=2000, n_test=200, epochs=8, size=16, n_bands=8, amplitude=2.0)


def test_attack_without_bpda_is_weaker(planted_low):
    t = planted_low
    assert t.test_accuracy > 0.9
    q = D.DCTQuantize(quality=90, bpda=False)
    model = D.defended(t.model, q)
    x, y = t.x_test[:100], t.y_test[:100]
    budgets = {"linf": 0.03}
    masked = D.evaluate_defense(model, x, y, budgets=budgets, bands=("full",), steps=10, adaptive=False,
                                progress=False)
    seen = D.evaluate_defense(model, x, y, budgets=budgets, bands=("full",), steps=10, adaptive=True, progress=False)
    assert masked["clean"]["accuracy"] > 0.85
    assert masked["gradient"]["zero_gradient_share"] == 1.0 and masked["non_differentiable_without_bpda"]
    assert seen["gradient"]["zero_gradient_share"] == 0.0 and seen["bpda_layers"] == 1
    assert q.bpda is False                                      # the evaluation restored the layer
    r_masked = masked["attacks"]["linf/full"]["accuracy"]
    r_seen = seen["attacks"]["linf/full"]["accuracy"]
    assert r_masked > r_seen + 0.3, (r_masked, r_seen)          # masking hides the model's weakness


# ----------------------------------------------------------------------------- evaluate_defense

def test_evaluate_defense_structure_and_errors(planted_low):
    t = planted_low
    x, y = t.x_test[:20], t.y_test[:20]
    r = D.evaluate_defense(D.defended(t.model, D.LowPassLayer(0.8)), x, y, budgets={"linf": 0.02, "l2": 0.3},
                           steps=3, progress=False)
    assert set(r["attacks"]) == {f"{n}/{b}" for n in ("linf", "l2") for b in ("full", "low", "high")}
    for a in r["attacks"].values():
        assert 0 <= a["ci_lo"] <= a["accuracy"] <= a["ci_hi"] <= 1 and len(a["robust"]) == 20
        assert a["accuracy"] <= r["clean"]["accuracy"] and a["out_of_band_max"] < 1e-3
    assert r["attacks"]["l2/low"]["n_coefficients"] + r["attacks"]["l2/high"]["n_coefficients"] == 256
    assert r["adaptive"] and not r["randomized"] and r["autoattack"] is None
    import json
    json.dumps(r)  # JSON-ready
    with pytest.raises(ValueError, match="budgets is required"):
        D.evaluate_defense(t.model, x, y, progress=False)
    with pytest.raises(ValueError, match="budgets"):
        D.evaluate_defense(t.model, x, y, budgets={"l1": 0.1}, progress=False)
    with pytest.raises(ValueError, match="budgets"):
        D.evaluate_defense(t.model, x, y, budgets={"linf": -0.1}, progress=False)
    with pytest.raises(ValueError, match="bands entry"):
        D.evaluate_defense(t.model, x, y, budgets={"linf": 0.1}, bands=("mid",), progress=False)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        D.evaluate_defense(t.model, x * 3, y, budgets={"linf": 0.1}, progress=False)
    with pytest.raises(ValueError, match="one label per image"):
        D.evaluate_defense(t.model, x, y[:3], budgets={"linf": 0.1}, progress=False)
    with pytest.raises(ValueError, match="autoattack"):
        D.evaluate_defense(t.model, x, y, budgets={"linf": 0.1}, autoattack="fast", progress=False)
    with pytest.raises(ValueError, match="steps"):
        D.evaluate_defense(t.model, x, y, budgets={"linf": 0.1}, steps=0, progress=False)


def test_evaluate_defense_uses_eot_for_random_models(planted_low):
    t = planted_low
    r = D.evaluate_defense(_Noisy(t.model), t.x_test[:8], t.y_test[:8], budgets={"linf": 0.01}, bands=("full",),
                           steps=2, eot_samples=2, progress=False)
    assert r["randomized"] and r["eot_samples"] == 2


def test_autoattack_reports_its_status(planted_low, monkeypatch):
    """A 2-class model cannot run APGD-T (the targeted DLR loss needs 4 classes): 'failed' with
    the reason, never a number; without pyautoattack: 'unavailable' with the install hint."""
    t = planted_low
    x, y = t.x_test[:6], t.y_test[:6]
    r = D.evaluate_defense(t.model, x, y, budgets={"linf": 0.03}, bands=("full",), steps=5, autoattack="standard",
                           progress=False)
    aa = r["autoattack"]["linf"]
    assert aa["status"] in ("ok", "failed", "unavailable")
    if aa["status"] == "ok":
        assert aa["accuracy"] <= r["clean"]["accuracy"] and aa["n_images"] == 6
    else:
        assert aa["error"] and "accuracy" not in aa
    import builtins
    real_import = builtins.__import__

    def no_reference(name, *a, **kw):
        if name == "pyautoattack":
            raise ImportError("simulated: not installed")
        return real_import(name, *a, **kw)

    monkeypatch.setattr(builtins, "__import__", no_reference)
    r2 = D.evaluate_defense(t.model, x, y, budgets={"linf": 0.03}, bands=("full",), steps=2, autoattack="standard",
                            progress=False)
    rec = r2["autoattack"]["linf"]
    assert rec["status"] == "unavailable" and "simulated" in rec["error"] and "pyautoattack==0.2.0" in rec["error"]


# ----------------------------------------------------------------------------- the reference AutoAttack

def _synthetic10(n, seed, h=16):
    """10 classes of gratings under smoothed noise (3 x h x h, clipped to [0, 1])."""
    import math
    import torch.nn.functional as F
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, 10, (n,), generator=g)
    yy, xx = torch.meshgrid(torch.arange(h).float(), torch.arange(h).float(), indexing="ij")
    freqs = [(a, b) for a in range(4) for b in range(4) if (a, b) != (0, 0)][:10]
    pat = torch.stack([torch.cos(2 * math.pi * (a * yy + b * xx) / h) for a, b in freqs])
    noise = F.avg_pool2d(F.pad(torch.randn(n, 3, h, h, generator=g), (1, 1, 1, 1), mode="circular"), 3, stride=1)
    amp = 0.08 + 0.1 * torch.rand(n, 1, 1, 1, generator=g)
    return (0.5 + amp * pat[y][:, None] + 0.35 * noise + 0.1 * torch.randn(n, 1, 1, 1, generator=g)).clamp(0, 1), y


@pytest.fixture(scope="module")
def ten_classes(one_thread):
    """A tiny 10-class CNN trained in ~2 s (AutoAttack's APGD-T needs >= 4 classes), 40 test images."""
    import torch.nn.functional as F
    xtr, ytr = _synthetic10(2048, seed=1)
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                          nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(2), nn.Flatten(),
                          nn.Linear(128, 10))
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    g = torch.Generator().manual_seed(0)
    for _ in range(150):
        i = torch.randint(0, xtr.shape[0], (128,), generator=g)
        opt.zero_grad()
        F.cross_entropy(model(xtr[i]), ytr[i]).backward()
        opt.step()
    x, y = _synthetic10(40, seed=2)
    return model.eval(), x, y


needs_reference = pytest.mark.skipif(__import__("importlib").util.find_spec("pyautoattack") is None,
                                     reason="pyautoattack (the 'attacks' extra) is not installed")


@needs_reference
def test_reference_autoattack_runs_through_evaluate_defense(ten_classes):
    model, x, y = ten_classes
    r = D.evaluate_defense(model, x, y, budgets={"linf": 8 / 255}, bands=("full",), steps=10,
                           autoattack=["apgd-ce", "apgd-t"], autoattack_n=30, progress=False)
    aa = r["autoattack"]["linf"]
    assert aa["status"] == "ok", aa.get("error")
    assert aa["implementation"].startswith("pyautoattack 0.2.0") and aa["version"] == "custom"
    assert aa["attacks"] == ["apgd-ce", "apgd-t"] and aa["n"] == aa["n_images"] == 30
    assert set(aa["after"]) == {"apgd-ce", "apgd-t"} and aa["after"]["apgd-t"] <= aa["after"]["apgd-ce"]
    robust, clean = aa["robust"], r["clean_correct"][:30]
    assert all(c or not rb for rb, c in zip(robust, clean))           # robust implies correct clean
    assert aa["accuracy"] == sum(robust) / 30 and aa["max_perturbation"] <= 8 / 255 + 1e-6
    # AutoAttack is at least about as strong as PGD-10 on the same images
    assert aa["accuracy"] <= sum(r["attacks"]["linf/full"]["robust"][:30]) / 30 + 1 / 30
    assert r["setting"]["autoattack"] == ["apgd-ce", "apgd-t"]
    import json
    json.dumps(r)


@needs_reference
def test_reference_autoattack_returns_feasible_images(ten_classes):
    model, x, y = ten_classes
    rec = D.reference_autoattack(model, x[:12], y[:12], 0.5, norm="l2", version=["apgd-ce"], return_adv=True)
    d = (rec["x_adv"] - x[:12]).flatten(1)
    assert float(d.norm(dim=1).max()) <= 0.5 + 1e-5 and float(rec["x_adv"].min()) >= 0
    with torch.no_grad():
        pred = model(rec["x_adv"]).argmax(1)
    assert rec["robust"] == ((pred == y[:12]) & (model(x[:12]).argmax(1) == y[:12])).tolist()
    with pytest.raises(ValueError, match="version entry"):
        D.reference_autoattack(model, x, y, 0.5, version=["apgd-ce", "pgd"])
    with pytest.raises(ValueError, match="eps"):
        D.reference_autoattack(model, x, y, 0.0)


@needs_reference
@pytest.mark.slow
def test_reference_standard_autoattack_with_fab_and_square(ten_classes):
    """The whole standard ensemble (FAB-T and Square included) on a few images."""
    model, x, y = ten_classes
    rec = D.reference_autoattack(model, x[:8], y[:8], 8 / 255, version="standard")
    assert rec["attacks"] == ["apgd-ce", "apgd-t", "fab-t", "square"] and 0 <= rec["accuracy"] <= 1


@needs_reference
def test_autoattack_crosscheck_states_the_difference(ten_classes):
    pytest.importorskip("torchattacks")
    model, x, y = ten_classes
    c = D.autoattack_crosscheck(model, x[:24], y[:24], 8 / 255, version=["apgd-ce", "apgd-t"])
    ref, ta = c["reference"], c["torchattacks"]
    assert c["difference_pp"] == pytest.approx(100 * (ta["accuracy"] - ref["accuracy"]))
    assert c["disagreements"] == c["robust_only_under_torchattacks"] + c["robust_only_under_reference"]
    assert ta["implementation"].startswith("torchattacks") and "10 iterations" in ta["settings"]
    assert c["n"] == 24 and len(ta["robust"]) == 24


def test_band_autoattack_beside_band_pgd_in_evaluate_defense(ten_classes):
    model, x, y = ten_classes
    r = D.evaluate_defense(model, x, y, budgets={"linf": 8 / 255, "l2": 0.4}, steps=5, band_autoattack="standard",
                           band_autoattack_n=20, band_autoattack_steps=5, progress=False)
    assert set(r["band_autoattack"]) == set(r["attacks"])
    for key, b in r["band_autoattack"].items():
        assert b["attacks"] == ["apgd-ce", "apgd-t"] and set(b["not_band_limited"]) == {"fab-t", "square"}
        assert b["n"] == 20 and len(b["robust"]) == 20 and b["out_of_band_max"] < 1e-3
        assert b["worst_case_accuracy"] <= min(b["accuracy"], b["pgd_accuracy"])
        assert b["pgd_accuracy"] == sum(r["attacks"][key]["robust"][:20]) / 20
    off = D.evaluate_defense(model, x[:4], y[:4], budgets={"linf": 8 / 255}, steps=2, progress=False)
    assert off["band_autoattack"] is None                       # off by default


@pytest.mark.parametrize("kw, match", [({"autoattack": ["apgd-ce", "pgd"]}, "autoattack entry"),
                                       ({"autoattack": []}, "autoattack"),
                                       ({"band_autoattack": ["square"]}, "band_autoattack entry"),
                                       ({"band_autoattack": "fast"}, "band_autoattack"),
                                       ({"band_autoattack_n": 0}, "band_autoattack_n"),
                                       ({"band_autoattack_steps": 0}, "band_autoattack_steps")])
def test_evaluate_defense_checks_the_autoattack_options_up_front(kw, match):
    net = nn.Sequential(nn.Flatten(), nn.Linear(64, 5)).eval()
    with pytest.raises(ValueError, match=match):
        D.evaluate_defense(net, torch.rand(2, 1, 8, 8), torch.tensor([0, 1]), budgets={"linf": 0.1}, progress=False,
                           **kw)


# ----------------------------------------------------------------- issue 11: a broken model, mode, bad input

class _NaNModel(nn.Module):
    """A classifier whose logits are all NaN, like one loaded from a diverged checkpoint."""

    def __init__(self, c=1, h=8, k=3):
        super().__init__()
        self.lin = nn.Linear(c * h * h, k)

    def forward(self, x):
        return self.lin(x.flatten(1)) * float("nan")


def _small_net(seed=0):
    """A CNN in train mode whose second BatchNorm is deliberately frozen (eval)."""
    torch.manual_seed(seed)
    net = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.Conv2d(4, 4, 3, padding=1),
                        nn.BatchNorm2d(4), nn.Flatten(), nn.Linear(4 * 8 * 8, 3))
    net.train()
    net[4].eval()
    return net


@pytest.mark.parametrize("adaptive", [True, False])
def test_evaluate_defense_refuses_nan_logits_naming_the_model(adaptive):
    x, y = torch.rand(4, 1, 8, 8), torch.tensor([0, 1, 2, 0])
    with pytest.raises(ValueError, match=r"_NaNModel.*non-finite"):
        D.evaluate_defense(_NaNModel(), x, y, budgets={"l2": 0.5}, steps=2, adaptive=adaptive, progress=False)
    with pytest.raises(ValueError, match=r"model \(Sequential\).*non-finite"):      # the model as passed
        D.evaluate_defense(D.defended(_NaNModel(), D.LowPassLayer(0.8)), x, y, budgets={"linf": 0.1}, steps=2,
                           bands=("full",), progress=False)
    with pytest.raises(ValueError, match=r"_NaNModel.*non-finite"):
        D.is_randomized(_NaNModel(), x)
    with pytest.raises(ValueError, match=r"_NaNModel.*non-finite"):
        D.EOT(_NaNModel(), 2)(x)


def test_evaluate_defense_leaves_every_submodules_mode_and_batchnorm_statistics_alone():
    net = _small_net()
    q = D.DCTQuantize(step=4.0, block=4, bpda=False)
    model = D.defended(net, q)
    model.train()
    net[4].eval()
    modes = {n: m.training for n, m in model.named_modules()}
    state = {k: v.clone() for k, v in model.state_dict().items()}
    x, y = torch.rand(4, 1, 8, 8), torch.tensor([0, 1, 2, 0])
    D.evaluate_defense(model, x, y, budgets={"linf": 0.05, "l2": 0.3}, steps=2, progress=False)
    assert {n: m.training for n, m in model.named_modules()} == modes
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in state.items())
    assert q.bpda is False


def test_evaluate_defense_refuses_empty_batches_float_labels_and_no_bands():
    net = _small_net().eval()
    x, y = torch.rand(4, 1, 8, 8), torch.tensor([0, 1, 2, 0])
    with pytest.raises(ValueError, match=r"x holds no images \(N = 0\)"):
        D.evaluate_defense(net, x[:0], y[:0], budgets={"l2": 0.5}, progress=False)
    with pytest.raises(TypeError, match="y.*integer"):
        D.evaluate_defense(net, x, y.float() + 0.7, budgets={"l2": 0.5}, progress=False)
    for bands in ({}, (), []):
        with pytest.raises(ValueError, match="bands"):
            D.evaluate_defense(net, x, y, budgets={"l2": 0.5}, bands=bands, progress=False)
    with pytest.raises(ValueError, match=r"y must hold class indices in \[0, 2\]"):
        D.evaluate_defense(net, x, torch.tensor([0, 1, 2, 3]), budgets={"l2": 0.5}, progress=False)


def test_minimal_perturbation_visibility_composes_the_search_with_the_csf_and_ssim():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(3 * 16 * 16, 3)).eval()
    x = 0.25 + 0.5 * torch.rand(6, 3, 16, 16)
    y = model(x).argmax(1)
    y[0] = (y[0] + 1) % 3                                    # already misclassified: no perturbation to measure
    r = D.minimal_perturbation_visibility(model, x, y, pixels_per_degree=30.0, search_steps=4, pgd_steps=6,
                                          batch_size=4)
    d, info = fk.minimal_distortion(model, x, y, search_steps=4, pgd_steps=6, batch_size=4, progress=False,
                                    return_info=True)
    assert torch.equal(r["x_adv"], info["x_adv"])
    found = torch.isfinite(r["l2"])
    assert not bool(found[0]) and bool(found[1:].all())     # NaN where the image needs no change
    assert bool(torch.isnan(r["log_jnd"][0])) and bool(torch.isnan(r["ssim"][0]))
    torch.testing.assert_close(r["l2"][found], d.double()[found])
    jnd = fk.perturbation_visibility(x, info["x_adv"], 30.0).double()
    torch.testing.assert_close(r["log_jnd"][found], jnd[found].log10())
    torch.testing.assert_close(r["ssim"][found], fk.perturbation_ssim(x, info["x_adv"]).double()[found])
    # each found perturbation flips the decision; the viewing distance enters the visibility (not SSIM)
    assert bool((model(r["x_adv"][found]).argmax(1) != y[found]).all())
    far = D.minimal_perturbation_visibility(model, x, y, pixels_per_degree=120.0, search_steps=4, pgd_steps=6,
                                            batch_size=4)
    assert bool((far["log_jnd"][found] != r["log_jnd"][found]).all())
    with pytest.raises(ValueError, match="pixels_per_degree"):
        D.minimal_perturbation_visibility(model, x, y, pixels_per_degree=0.0)
