"""freqkit.objectives: adversarial, low-pass and attribution-guided training objectives,
training with them, and suites of models that differ only in the objective."""
import math

import pytest
import torch
from torch import nn

import freqkit as fk
from freqkit import objectives as O
from freqkit.defense import evaluate_defense

pytestmark = pytest.mark.usefixtures("one_thread")


def test_invisible_gradient_share():
    s = fk.csf_map(16, 16)
    dc = torch.zeros(1, 1, 16, 16)
    dc[..., 0, 0] = 1.0
    g = fk.idct2(dc)
    assert math.isclose(float(O.invisible_gradient_share(g)), 1 - float(s[0, 0]), rel_tol=1e-4)
    peak = torch.zeros(1, 1, 16, 16)
    i, j = divmod(int(s.argmax()), 16)
    peak[..., i, j] = 1.0
    assert float(O.invisible_gradient_share(fk.idct2(peak))) < 1e-3
    r = O.invisible_gradient_share(torch.randn(5, 3, 16, 16))
    assert r.shape == (5,) and bool(((r >= 0) & (r <= 1)).all())
    assert float(O.invisible_gradient_share(torch.zeros(2, 1, 8, 8)).abs().max()) == 0
    with pytest.raises(ValueError, match="grad"):
        O.invisible_gradient_share(torch.randn(3, 8, 8))


def test_objectives_configs_and_errors():
    o = O.adversarial_objective("cifar10", method="pgd")
    assert o.name == "adversarial" and o.params["steps"] == 7 and math.isclose(o.params["step_size"], 2 / 255)
    f = O.adversarial_objective("mnist")
    assert f.params["method"] == "fgsm_rs" and f.params["eps"] == 0.3 and f.params["step_size"] == 0.375
    cfg = f.config({"epochs": 1})
    assert cfg["objective"] == "adversarial" and cfg["objective_params"]["eps"] == 0.3
    assert fk.training.checkpoint_key("mnist", cfg) != fk.training.checkpoint_key("mnist", o.config({"epochs": 1}))
    with pytest.raises(ValueError, match="already has"):
        f.config(cfg)
    with pytest.raises(ValueError, match="method"):
        O.adversarial_objective("mnist", method="free")
    with pytest.raises(ValueError, match="eps and step_size"):
        O.adversarial_objective(None)
    with pytest.raises(ValueError, match="steps must be 1"):
        O.adversarial_objective("mnist", steps=3)
    with pytest.raises(ValueError, match="eps"):
        O.adversarial_objective("mnist", eps=-0.1)
    with pytest.raises(ValueError, match="lam"):
        O.attribution_guided_objective(lam=-1)
    with pytest.raises(ValueError, match="penalty_fraction"):
        O.attribution_guided_objective(penalty_fraction=0)
    assert O.lowpass_objective(0.3).params["cutoff"] == 0.3
    with pytest.raises(TypeError, match="Objective"):
        O.train_with_objective("mnist", "adversarial")


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
    for obj in (O.adversarial_objective(None, eps=0.1, step_size=0.125), O.lowpass_objective(0.5),
                O.adversarial_objective(None, method="pgd", eps=0.1, step_size=0.05, steps=3),
                O.attribution_guided_objective(1.0), O.attribution_guided_objective(1.0, penalty_fraction=0.5)):
        net, loss, logits = _tiny_step(obj, x, y)
        assert loss.dim() == 0 and torch.isfinite(loss) and logits.shape == (8, 3)
        assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in net.parameters())
    # The penalty term reaches the weights through the input gradient (double backprop).
    net, _, _ = _tiny_step(O.attribution_guided_objective(0.0), x, y)
    g0 = [p.grad.clone() for p in net.parameters()]
    net, _, _ = _tiny_step(O.attribution_guided_objective(10.0), x, y)
    assert any(not torch.allclose(a, p.grad) for a, p in zip(g0, net.parameters()))


def test_objectives_table_and_the_training_config():
    assert set(O.OBJECTIVES) == {"adversarial", "lowpass", "attribution_guided"}
    for name, make in O.OBJECTIVES.items():
        o = make("mnist") if name == "adversarial" else make()
        assert isinstance(o, O.Objective) and o.name == name and callable(o.loss_fn)
        cfg = o.config({"epochs": 1})
        assert cfg["objective"] == name and cfg["objective_params"] == o.params and cfg["epochs"] == 1
        fk.training.full_config("mnist", cfg)                 # a valid training configuration
    keys = {fk.training.checkpoint_key("mnist", make("mnist").config({}) if n == "adversarial" else make().config({}))
            for n, make in O.OBJECTIVES.items()}
    assert len(keys) == 3 and fk.training.checkpoint_key("mnist", {}) not in keys
    assert O.lowpass_objective(0.3).params != O.lowpass_objective(0.4).params


# ----------------------------------------------------------------------------- H5's placebo

def test_placebo_weights_are_a_permutation_of_the_csf_weights():
    real = fk.csf_map(32, 32)
    p0 = O.placebo_csf_map(32, 32, seed=0)
    assert p0.shape == real.shape and torch.equal(p0.flatten().sort().values, real.flatten().sort().values)
    assert not torch.equal(p0, real)                          # moved: no relation to the visible frequencies
    assert torch.equal(O.placebo_csf_map(32, 32, seed=0), p0)  # a fixed permutation per seed
    assert not torch.equal(O.placebo_csf_map(32, 32, seed=1), p0)
    # The placebo's sensitivities barely correlate with the real ones (spearman near 0, the CSF with itself 1).
    assert abs(float(fk.stats.spearman_rows(p0.flatten()[None], real.flatten()[None]))) < 0.2
    state = torch.random.get_rng_state()
    O.placebo_csf_map(8, 8, seed=3)
    assert torch.equal(torch.random.get_rng_state(), state)   # the global RNG is left alone
    with pytest.raises(ValueError, match="seed"):
        O.placebo_csf_map(8, 8, seed=1.5)
    with pytest.raises(ValueError, match="h"):
        O.placebo_csf_map(0, 8, seed=0)


def test_placebo_objective_differs_from_the_real_one_only_in_the_weights():
    real = O.attribution_guided_objective(1.0, penalty_fraction=0.5)
    placebo = O.attribution_guided_objective(1.0, penalty_fraction=0.5, placebo_seed=0)
    # The real objective's parameters are those it had before the placebo existed (same checkpoint key).
    assert set(real.params) == {"lam", "pixels_per_degree", "csf", "gradient_of", "penalty_fraction", "version"}
    assert real.params["csf"] == "mannos_sakrison"
    assert placebo.params == {**real.params, "csf": "mannos_sakrison_shuffled", "placebo_seed": 0}
    assert placebo != real and placebo == O.attribution_guided_objective(1.0, penalty_fraction=0.5, placebo_seed=0)
    keys = {fk.training.checkpoint_key("mnist", o.config({})) for o in
            (real, placebo, O.attribution_guided_objective(1.0, penalty_fraction=0.5, placebo_seed=1))}
    assert len(keys) == 3
    # The penalties differ on the same gradient; with the placebo map given explicitly they agree.
    g = torch.randn(4, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    p_real = O.invisible_gradient_share(g)
    p_plac = O.invisible_gradient_share(g, sensitivity=O.placebo_csf_map(8, 8, 0))
    assert not torch.allclose(p_real, p_plac, atol=1e-3) and bool(((p_plac >= 0) & (p_plac <= 1)).all())
    # ... and so do the losses of one training step on the same net and batch.
    x, y = torch.rand(8, 1, 8, 8, generator=torch.Generator().manual_seed(1)), torch.arange(8) % 3
    torch.manual_seed(0)
    _, loss_real, _ = _tiny_step(O.attribution_guided_objective(1.0, placebo_seed=None), x, y)
    torch.manual_seed(0)
    _, loss_plac, _ = _tiny_step(O.attribution_guided_objective(1.0, placebo_seed=0), x, y)
    assert torch.isfinite(loss_plac) and not torch.allclose(loss_real, loss_plac)
    with pytest.raises(ValueError, match="placebo_seed"):
        O.attribution_guided_objective(placebo_seed="a")
    with pytest.raises(ValueError, match="sensitivity"):
        O.invisible_gradient_share(g, sensitivity=torch.full((8, 8), 2.0))
    with pytest.raises(ValueError, match="sensitivity"):
        O.invisible_gradient_share(g, sensitivity=torch.ones(4, 4))


def test_kernel_high_frequency_share():
    g = torch.Generator().manual_seed(0)
    assert abs(O.kernel_high_frequency_share(torch.randn(256, 3, 3, 3, generator=g)) - 5 / 9) < 0.05
    assert O.kernel_high_frequency_share(torch.ones(4, 3, 3, 3)) < 1e-12
    assert O.kernel_high_frequency_share(torch.zeros(2, 1, 3, 3)) == 0.0
    smooth = fk.training.smooth_kernels(torch.randn(64, 3, 3, 3, generator=g), 1.0)
    assert O.kernel_high_frequency_share(smooth) < 1e-10
    torch.manual_seed(0)
    net = fk.build_model("mnist", width=4)
    assert O.kernel_high_frequency_share(net) == O.kernel_high_frequency_share(net.features[0][0].weight)
    with pytest.raises(ValueError, match="1x1"):
        O.kernel_high_frequency_share(torch.randn(2, 2, 1, 1))
    with pytest.raises(ValueError, match="kernels"):
        O.kernel_high_frequency_share(torch.randn(3, 3, 3))


# ----------------------------------------------------------------------------- training with objectives

def test_adversarial_training_increases_robust_accuracy(data_root, tmp_path):
    cfg = {"width": 8, "epochs": 1, "batch_size": 64, "n_train": 2048, "lr": 0.05, "augment": False}
    kw = dict(data_root=data_root, cache_dir=tmp_path, device="cpu", progress=False)
    std, _ = O.train_with_objective("mnist", None, cfg, **kw)
    adv, info = O.train_with_objective("mnist", O.adversarial_objective("mnist", eps=0.1, step_size=0.125), cfg, **kw)
    assert info["config"]["objective"] == "adversarial" and not info["cached"]
    x, y = fk.load_dataset("mnist", "test", n=200, seed=1, root=data_root)
    budgets = {"linf": 0.1}
    rs = evaluate_defense(std, x, y, budgets=budgets, bands=("full",), steps=10, progress=False)
    ra = evaluate_defense(adv, x, y, budgets=budgets, bands=("full",), steps=10, progress=False)
    assert ra["attacks"]["linf/full"]["accuracy"] > rs["attacks"]["linf/full"]["accuracy"] + 0.05


def test_train_suite_records(data_root, tmp_path):
    cfg = {"width": 4, "epochs": 1, "batch_size": 64, "n_train": 256, "lr": 0.05, "augment": False}
    models, infos = O.train_suite("mnist", {"std": None, "lp": O.lowpass_objective(0.5)}, cfg, device="cpu",
                                  data_root=data_root, cache_dir=tmp_path, progress=False)
    assert set(models) == {"std", "lp"} and set(infos) == {"std", "lp"}
    assert not models["lp"].training and not models["std"].training
    # the raw train_or_load infos: the standard model's config names no objective
    assert "objective" not in infos["std"]["config"] and infos["lp"]["config"]["objective"] == "lowpass"
    assert infos["lp"]["config"]["objective_params"]["cutoff"] == 0.5 and infos["lp"]["n_train"] == 256
    assert infos["std"]["key"] != infos["lp"]["key"] and infos["lp"]["train_seconds"] > 0
    assert not infos["lp"]["cached"] and infos["std"]["config"]["width"] == 4 == infos["lp"]["config"]["width"]
    # only the objective differs: the rest of the configuration is the same
    rest = {k: v for k, v in infos["lp"]["config"].items() if k not in ("objective", "objective_params")}
    assert rest == infos["std"]["config"]
    # a second call loads both from the cache
    _, again = O.train_suite("mnist", {"std": None, "lp": O.lowpass_objective(0.5)}, cfg, device="cpu",
                             data_root=data_root, cache_dir=tmp_path, progress=False)
    assert again["std"]["cached"] and again["lp"]["cached"] and again["lp"]["key"] == infos["lp"]["key"]
    with pytest.raises(ValueError, match="objectives"):
        O.train_suite("mnist", {}, cfg)


def test_train_suite_with_seeds_returns_a_list_per_objective(data_root, tmp_path):
    cfg = {"width": 4, "epochs": 1, "batch_size": 64, "n_train": 256, "lr": 0.05, "augment": False, "seed": 9}
    kw = dict(device="cpu", data_root=data_root, cache_dir=tmp_path, progress=False)
    objs = {"std": None, "lp": O.lowpass_objective(0.5)}
    models, infos = O.train_suite("mnist", objs, cfg, seeds=(0, 1), **kw)
    assert set(models) == {"std", "lp"} and all(len(v) == 2 for v in models.values())
    assert all(not m.training for v in models.values() for m in v)
    for name in objs:
        assert [i["config"]["seed"] for i in infos[name]] == [0, 1] and not any(i["cached"] for i in infos[name])
    assert infos["lp"][1]["config"]["objective"] == "lowpass" and "objective" not in infos["std"][0]["config"]
    # Same seed, same everything but the objective; four checkpoints, one per (objective, seed).
    for k in (0, 1):
        rest = {a: b for a, b in infos["lp"][k]["config"].items() if a not in ("objective", "objective_params")}
        assert rest == infos["std"][k]["config"]
    assert len({i["key"] for v in infos.values() for i in v}) == 4 and len(list(tmp_path.glob("*.pt"))) == 4
    # Another suite with an overlapping seed loads it and trains only the new seed.
    _, again = O.train_suite("mnist", {"lp": objs["lp"]}, cfg, seeds=[1, 2], **kw)
    assert [i["cached"] for i in again["lp"]] == [True, False] and again["lp"][0]["key"] == infos["lp"][1]["key"]
    # The one-seed call keeps its shape and uses config["seed"].
    one, one_info = O.train_suite("mnist", {"std": None}, {**cfg, "seed": 1}, **kw)
    assert isinstance(one["std"], nn.Module) and one_info["std"]["cached"] and one_info["std"]["key"] == \
        infos["std"][1]["key"]
    with pytest.raises(ValueError, match="distinct"):
        O.train_suite("mnist", objs, cfg, seeds=(0, 0), **kw)
    with pytest.raises(TypeError, match="Objective"):
        O.train_suite("mnist", {"x": "adversarial"}, cfg, seeds=(0,), **kw)
