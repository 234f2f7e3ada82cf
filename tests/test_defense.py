"""freqkit.defense: objectives, input-transform layers, BPDA, the defense evaluation, H4/H5 rules."""
import io
import math

import numpy as np
import pytest
import torch
from torch import nn

import freqkit as fk
from freqkit import defense as D
from freqkit.planted import train_planted_model

torch.set_num_threads(1)


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


# ----------------------------------------------------------------------------- the penalty and the objectives

def test_invisible_gradient_share():
    s = fk.csf_map(16, 16)
    dc = torch.zeros(1, 1, 16, 16)
    dc[..., 0, 0] = 1.0
    g = fk.idct2(dc)
    assert math.isclose(float(D.invisible_gradient_share(g)), 1 - float(s[0, 0]), rel_tol=1e-4)
    peak = torch.zeros(1, 1, 16, 16)
    i, j = divmod(int(s.argmax()), 16)
    peak[..., i, j] = 1.0
    assert float(D.invisible_gradient_share(fk.idct2(peak))) < 1e-3
    r = D.invisible_gradient_share(torch.randn(5, 3, 16, 16))
    assert r.shape == (5,) and bool(((r >= 0) & (r <= 1)).all())
    assert float(D.invisible_gradient_share(torch.zeros(2, 1, 8, 8)).abs().max()) == 0
    with pytest.raises(ValueError, match="grad"):
        D.invisible_gradient_share(torch.randn(3, 8, 8))


def test_objectives_configs_and_errors():
    o = D.adversarial_objective("cifar10", method="pgd")
    assert o.name == "adversarial" and o.params["steps"] == 7 and math.isclose(o.params["step_size"], 2 / 255)
    f = D.adversarial_objective("mnist")
    assert f.params["method"] == "fgsm_rs" and f.params["eps"] == 0.3 and f.params["step_size"] == 0.375
    cfg = f.config({"epochs": 1})
    assert cfg["objective"] == "adversarial" and cfg["objective_params"]["eps"] == 0.3
    assert fk.training.checkpoint_key("mnist", cfg) != fk.training.checkpoint_key("mnist", o.config({"epochs": 1}))
    with pytest.raises(ValueError, match="already has"):
        f.config(cfg)
    with pytest.raises(ValueError, match="method"):
        D.adversarial_objective("mnist", method="free")
    with pytest.raises(ValueError, match="eps and step_size"):
        D.adversarial_objective(None)
    with pytest.raises(ValueError, match="steps must be 1"):
        D.adversarial_objective("mnist", steps=3)
    with pytest.raises(ValueError, match="eps"):
        D.adversarial_objective("mnist", eps=-0.1)
    with pytest.raises(ValueError, match="lam"):
        D.attribution_guided_objective(lam=-1)
    with pytest.raises(ValueError, match="penalty_fraction"):
        D.attribution_guided_objective(penalty_fraction=0)
    assert D.lowpass_objective(0.3).params["cutoff"] == 0.3
    with pytest.raises(TypeError, match="Objective"):
        D.train_with_objective("mnist", "adversarial")


def _tiny_step(obj, x, y):
    net = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(),
                        nn.Linear(4 * 64, 3)).train()
    info = {"generator": torch.Generator().manual_seed(0)}
    loss, logits = obj.loss_fn(net, x, y, {"label_smoothing": 0.0}, info)
    loss.backward()
    return net, loss, logits


def test_objective_loss_fns_run_and_backprop():
    g = torch.Generator().manual_seed(1)
    x, y = torch.rand(8, 1, 8, 8, generator=g), torch.randint(0, 3, (8,), generator=g)
    for obj in (D.adversarial_objective(None, eps=0.1, step_size=0.125), D.lowpass_objective(0.5),
                D.adversarial_objective(None, method="pgd", eps=0.1, step_size=0.05, steps=3),
                D.attribution_guided_objective(1.0), D.attribution_guided_objective(1.0, penalty_fraction=0.5)):
        net, loss, logits = _tiny_step(obj, x, y)
        assert loss.dim() == 0 and torch.isfinite(loss) and logits.shape == (8, 3)
        assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in net.parameters())
    # The penalty term reaches the weights through the input gradient (double backprop).
    net, _, _ = _tiny_step(D.attribution_guided_objective(0.0), x, y)
    g0 = [p.grad.clone() for p in net.parameters()]
    net, _, _ = _tiny_step(D.attribution_guided_objective(10.0), x, y)
    assert any(not torch.allclose(a, p.grad) for a, p in zip(g0, net.parameters()))


# ----------------------------------------------------------------------------- BPDA vs gradient masking, on a trained model

@pytest.fixture(scope="module")
def planted_low():
    """A tiny CNN trained in ~2 s on planted LOW-frequency signal (radial band 1 of 8, 16x16)."""
    return train_planted_model(band=1, n_train=2000, n_test=200, epochs=8, size=16, n_bands=8, amplitude=2.0)


@pytest.fixture(scope="module")
def planted_high():
    """The same, trained on planted HIGH-frequency signal (band 6 of 8)."""
    return train_planted_model(band=6, n_train=2000, n_test=200, epochs=8, size=16, n_bands=8, amplitude=2.0)


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


def test_alignment_ranks_low_frequency_model_above_high(planted_low, planted_high):
    assert planted_low.test_accuracy > 0.9 and planted_high.test_accuracy > 0.9
    scores = {}
    for name, t in (("low", planted_low), ("high", planted_high)):
        prof = fk.radial_attribution_profile(t.model, t.x_test[:100], t.y_test[:100], t.masks, method="ig",
                                             n_boot=50, progress=False, n_steps=16)
        scores[name] = float(fk.human_alignment(prof.per_image, t.masks).mean())
    assert scores["low"] > scores["high"] + 0.1, scores
    # alignment_profile gives the same ordering with its own (8 equal-width) bands.
    a = D.alignment_profile(planted_low.model, planted_low.x_test[:40], planted_low.y_test[:40], n_boot=50,
                            n_steps=8)
    b = D.alignment_profile(planted_high.model, planted_high.x_test[:40], planted_high.y_test[:40], n_boot=50,
                            n_steps=8)
    assert a["score"]["mean"] > b["score"]["mean"] and a["low_share"]["mean"] > b["low_share"]["mean"]
    assert len(a["per_image_score"]) == 40 and abs(sum(a["shares"]["mean"]) - 1) < 1e-6


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

    def no_torchattacks(name, *a, **kw):
        if name == "torchattacks":
            raise ImportError("simulated: requests is missing")
        return real_import(name, *a, **kw)

    monkeypatch.setattr(builtins, "__import__", no_torchattacks)
    r2 = D.evaluate_defense(t.model, x, y, budgets={"linf": 0.03}, bands=("full",), steps=2, autoattack="standard",
                            progress=False)
    assert r2["autoattack"]["linf"]["status"] == "unavailable" and "simulated" in r2["autoattack"]["linf"]["error"]


# ----------------------------------------------------------------------------- adversarial training works

def test_adversarial_training_increases_robust_accuracy(data_root, tmp_path):
    cfg = {"width": 8, "epochs": 1, "batch_size": 64, "n_train": 2048, "lr": 0.05, "augment": False}
    kw = dict(data_root=data_root, cache_dir=tmp_path, device="cpu", progress=False)
    std, _ = D.train_with_objective("mnist", None, cfg, **kw)
    adv, info = D.train_with_objective("mnist", D.adversarial_objective("mnist", eps=0.1, step_size=0.125), cfg, **kw)
    assert info["config"]["objective"] == "adversarial" and not info["cached"]
    x, y = fk.load_dataset("mnist", "test", n=200, seed=1, root=data_root)
    budgets = {"linf": 0.1}
    rs = D.evaluate_defense(std, x, y, budgets=budgets, bands=("full",), steps=10, progress=False)
    ra = D.evaluate_defense(adv, x, y, budgets=budgets, bands=("full",), steps=10, progress=False)
    assert ra["attacks"]["linf/full"]["accuracy"] > rs["attacks"]["linf/full"]["accuracy"] + 0.05


# ----------------------------------------------------------------------------- verdict rules

def _profile(low, score):
    return {"per_image_low_share": list(low), "low_share": {"mean": float(np.mean(low))},
            "per_image_score": list(score), "score": {"mean": float(np.mean(score))}}


def _evaluation(robust, clean=1.0, attack="linf/full", eps=0.03):
    return {"clean": {"accuracy": clean},
            "attacks": {attack: {"accuracy": float(np.mean(robust)), "robust": list(robust), "eps": eps}}}


def test_h4_rule():
    rng = np.random.default_rng(0)
    base = rng.uniform(0.5, 0.7, 200)
    std_eval, rob_eval = _evaluation([0] * 200), _evaluation([1] * 100 + [0] * 100)
    up = D.h4_verdict(_profile(base, base), _profile(base + 0.05, base), std_eval, rob_eval, dataset="toy")
    assert up["verdict"] == "supported" and "(toy)" in up["hypothesis"] and "rule" in up
    down = D.h4_verdict(_profile(base, base), _profile(base - 0.05, base), std_eval, rob_eval)
    assert down["verdict"] == "rejected"
    same = D.h4_verdict(_profile(base, base), _profile(base + rng.normal(0, 0.01, 200), base), std_eval, rob_eval)
    assert same["verdict"] == "rejected"          # no meaningful increase: CI below +1 point
    wobble = np.where(np.arange(200) % 2 == 0, 0.1, -0.09)     # mean +0.005, CI about [-0.008, 0.018]
    small = D.h4_verdict(_profile(base, base), _profile(base + wobble, base), std_eval, rob_eval)
    assert small["verdict"] == "inconclusive", small["evidence"]
    weak = D.h4_verdict(_profile(base, base), _profile(base + 0.05, base), std_eval, _evaluation([1] * 10 + [0] * 190))
    assert weak["verdict"] == "inconclusive" and "not robust" in weak["evidence"]["reason"]
    with pytest.raises(ValueError, match="attack"):
        D.h4_verdict(_profile(base, base), _profile(base, base), std_eval, rob_eval, attack="l2/full")
    with pytest.raises(ValueError, match="alignment_profile"):
        D.h4_verdict({}, _profile(base, base), std_eval, rob_eval)


def test_h5_rules():
    rng = np.random.default_rng(1)
    s = rng.uniform(0.6, 0.8, 300)
    std = _profile(s, s)
    gui = _profile(s, s + 0.05)
    e_std = {"clean": {"accuracy": 0.95}, "attacks": {
        "linf/full": {"accuracy": 0.1, "robust": [1] * 30 + [0] * 270, "eps": 0.3},
        "l2/full": {"accuracy": 0.2, "robust": [1] * 60 + [0] * 240, "eps": 2.0},
        "l2/high": {"accuracy": 0.5, "robust": [1] * 150 + [0] * 150, "eps": 2.0}}}
    better = {"clean": {"accuracy": 0.9}, "attacks": {
        "linf/full": {"accuracy": 0.5, "robust": [1] * 150 + [0] * 150, "eps": 0.3},
        "l2/full": {"accuracy": 0.6, "robust": [1] * 180 + [0] * 120, "eps": 2.0},
        "l2/high": {"accuracy": 0.7, "robust": [1] * 210 + [0] * 90, "eps": 2.0}}}
    v = D.h5_verdicts(std, gui, e_std, better, dataset="toy")
    assert v["H5a"]["verdict"] == "supported" and v["H5b"]["verdict"] == "supported"
    ev = v["H5b"]["evidence"]
    assert math.isclose(ev["clean_cost"], 0.05) and "l2/high" in ev["other_attacks"]
    assert math.isclose(ev["gain_linf/full"], 0.4) and len(ev["gain_ci_l2/full"]) == 2
    v = D.h5_verdicts(std, _profile(s, s - 0.05), e_std, e_std)
    assert v["H5a"]["verdict"] == "rejected" and v["H5b"]["verdict"] == "rejected"
    mixed = {"clean": {"accuracy": 0.9}, "attacks": {**better["attacks"], "l2/full": e_std["attacks"]["l2/full"]}}
    assert D.h5_verdicts(std, gui, e_std, mixed)["H5b"]["verdict"] == "inconclusive"
    with pytest.raises(ValueError, match="missing"):
        D.h5_verdicts(std, gui, e_std, better, attacks=("linf/low",))


def test_paired_difference():
    d = D.paired_difference([1, 1, 0, 1], [0, 1, 0, 0])
    assert math.isclose(d["mean"], 0.5) and d["ci_low"] <= 0.5 <= d["ci_high"] and d["n"] == 4
    with pytest.raises(ValueError, match="equal length"):
        D.paired_difference([1, 2], [1])
    with pytest.raises(ValueError, match="ci"):
        D.paired_difference([1], [1], ci=1.5)


# ----------------------------------------------------------------------------- chapter helpers

def test_robustness_rows_and_heatmap_summary():
    e = {"clean": {"accuracy": 0.9}, "attacks": {"linf/full": {"accuracy": 0.1, "eps": 0.3}},
         "autoattack": {"linf": {"status": "ok", "accuracy": 0.05}}}
    f = {"clean": {"accuracy": 0.8}, "attacks": {"linf/full": {"accuracy": 0.4, "eps": 0.3}},
         "autoattack": {"linf": {"status": "unavailable", "error": "x"}}}
    header, rows = D.robustness_rows({"a": e, "b": f}, records={"a": {"train_seconds": 3.0}})
    assert header == ["model", "clean", "linf/full (eps 0.3)", "AutoAttack linf", "train s"]
    assert rows == [["a", 0.9, 0.1, 0.05, 3.0], ["b", 0.8, 0.4, "unavailable", None]]
    with pytest.raises(ValueError, match="evaluations"):
        D.robustness_rows({})
    hm = torch.zeros(8, 8)
    hm[4, 4] = 1.0                                     # the zero frequency of the centred grid
    s = D.heatmap_summary(hm)
    assert s["low"] > 0 and s["high"] == 0


def test_train_suite_records(data_root, tmp_path):
    cfg = {"width": 4, "epochs": 1, "batch_size": 64, "n_train": 256, "lr": 0.05, "augment": False}
    models, recs = D.train_suite("mnist", {"std": None, "lp": D.lowpass_objective(0.5)}, cfg, device="cpu",
                                 data_root=data_root, cache_dir=tmp_path, progress=False)
    assert set(models) == {"std", "lp"} and not models["lp"].training
    assert recs["std"]["objective"] == "standard" and recs["lp"]["objective"] == "lowpass"
    assert recs["lp"]["objective_params"]["cutoff"] == 0.5 and recs["lp"]["n_train"] == 256
    assert recs["std"]["key"] != recs["lp"]["key"] and recs["lp"]["train_seconds"] > 0
    with pytest.raises(ValueError, match="objectives"):
        D.train_suite("mnist", {}, cfg)


def test_record_line_states_accuracy_model_data_time_and_objective():
    rec = {"test_accuracy": 0.9062, "n_test": 1000, "arch": "resnet", "width": 16, "epochs": 10, "n_train": 10000,
           "train_seconds": 35.4, "trained_on": "cpu", "cached": True, "objective": "adversarial",
           "objective_params": {"eps": 0.03}}
    line = D.record_line("cifar10", "adversarial", rec, name_width=12)
    assert line.startswith("cifar10  adversarial  test accuracy 90.62% (1000 images)")
    for part in ("resnet width 16, 10 epochs on 10000 images", "trained 35 s on cpu", "cached=True",
                 "objective adversarial {'eps': 0.03}"):
        assert part in line, part
