"""freqkit.training: train_or_load and its checkpoint cache, configurations, train_on_tensors.
(Atomic writes: test_io.py; prediction and evaluation: test_models.py.)"""
import errno
import math
import os
import shutil
import stat
import warnings

import pytest
import torch
from torch import nn

import freqkit as fk
import freqkit.training as T

pytestmark = pytest.mark.usefixtures("one_thread")

# Trains in about a second on 2 idle CPU cores: 1,024 MNIST digits (after holding out
# 1,000 for validation), one epoch with augmentation, a narrow CNN.
TINY = {"width": 4, "epochs": 1, "batch_size": 64, "n_train": 1024, "lr": 0.05, "val_size": 1000, "augment": True}


# ----------------------------------------------------------------------------- helpers

def test_lr_schedule_shapes():
    cfg = {"schedule": "onecycle", "warmup": 0.2}
    f = [T._lr_factor(s, 100, cfg) for s in range(100)]
    assert abs(f[0] - 0.1) < 1e-9 and abs(f[20] - 1.0) < 1e-9 and f[99] < 0.02
    assert all(a <= b for a, b in zip(f[:20], f[1:21])) and all(a >= b for a, b in zip(f[20:], f[21:]))
    assert T._lr_factor(50, 100, {"schedule": "constant", "warmup": 0.2}) == 1.0
    assert abs(T._lr_factor(60, 100, {"schedule": "cosine", "warmup": 0.2}) - 0.5) < 1e-9


def test_augment_translates_and_flips():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(64, 3, 32, 32)
    out = T._augment(x, "cifar10", g)
    assert out.shape == x.shape
    # Every output is a shifted (and maybe flipped) copy: its centre appears in the input.
    for i in range(4):
        found = False
        for src in (x[i], x[i].flip(-1)):
            for dy in range(-4, 5):
                for dx in range(-4, 5):
                    a = out[i, :, 8:24, 8:24]
                    b = src[:, 8 + dy:24 + dy, 8 + dx:24 + dx]
                    found |= torch.equal(a, b)
        assert found
    assert not torch.equal(out, x)
    m = T._augment(torch.rand(8, 1, 28, 28), "mnist", g)
    assert m.shape == (8, 1, 28, 28)


def test_augment_translate_and_alternating_flip():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(32, 3, 32, 32)
    # translate=0 and a given flip mask: exactly the mirrored images change.
    mask = torch.arange(32) % 3 == 0
    out = T._augment(x, "cifar10", g, translate=0, flip=mask)
    assert torch.equal(out[mask], x[mask].flip(-1)) and torch.equal(out[~mask], x[~mask])
    # translate=2: every image is a shift of at most 2 pixels (centre found within +-2).
    out = T._augment(x, "cifar10", g, translate=2, flip=torch.zeros(32, dtype=torch.bool))
    for i in range(32):
        assert any(torch.equal(out[i, :, 4:28, 4:28], x[i, :, 4 + dy:28 + dy, 4 + dx:28 + dx])
                   for dy in range(-2, 3) for dx in range(-2, 3))
    # The sorted-copy implementation gives the same crops as a direct per-pixel gather.
    g1, g2 = torch.Generator().manual_seed(5), torch.Generator().manual_seed(5)
    out = T._augment(x, "cifar10", g1, translate=4)
    dy = torch.randint(0, 9, (32,), generator=g2)
    dx = torch.randint(0, 9, (32,), generator=g2)
    flip = torch.rand(32, generator=g2) < 0.5
    xp = torch.nn.functional.pad(x, (4, 4, 4, 4), mode="reflect")
    ref = torch.stack([xp[i, :, dy[i]:dy[i] + 32, dx[i]:dx[i] + 32] for i in range(32)])
    assert torch.equal(out, torch.where(flip[:, None, None, None], ref.flip(3), ref))


def test_lookahead_update_is_an_ema_copied_back():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(3, 2), nn.BatchNorm1d(2))
    ema = {k: v.detach().clone() for k, v in net.state_dict().items() if v.is_floating_point()}
    assert "1.num_batches_tracked" not in ema and "1.running_mean" in ema
    start = {k: v.clone() for k, v in ema.items()}
    with torch.no_grad():
        for p in net.parameters():
            p.add_(1.0)
        net[1].running_mean.add_(2.0)
    now = {k: v.detach().clone() for k, v in net.state_dict().items()}
    T._lookahead_update(ema, net, 0.75)
    for k in ema:
        expected = 0.75 * start[k] + 0.25 * now[k]
        assert torch.allclose(ema[k], expected) and torch.allclose(net.state_dict()[k], expected), k
    # decay 1: the weights become the average; decay 0: the average becomes the weights.
    with torch.no_grad():
        net[0].weight.mul_(3)
    T._lookahead_update(ema, net, 1.0)
    assert torch.allclose(net[0].weight, ema["0.weight"])
    assert T._lookahead_decay(0, 100) == 0 and abs(T._lookahead_decay(100, 100) - 0.95 ** 5) < 1e-12
    assert abs(T._lookahead_decay(50, 100) - 0.95 ** 5 / 8) < 1e-12
    assert T._lookahead_every(1024, 10 ** 4) == 5 and T._lookahead_every(256, 10 ** 4) == 20
    assert T._lookahead_every(10 ** 6, 10 ** 4) == 1 and T._lookahead_every(64, 64) == 3 and T._lookahead_every(64, 5) == 1


def test_param_groups_scale_batchnorm_biases_and_skip_frozen_parameters():
    import freqkit.models as M
    net = M.AirNet(width=4)
    cfg = T.full_config("cifar10", {"arch": "airnet", "lr": 0.5, "weight_decay": 1e-3, "bias_lr_scale": 64.0})
    plain, bn = T._param_groups(net, cfg)
    bn_biases = {id(m.bias) for m in net.modules() if isinstance(m, nn.BatchNorm2d)}
    assert {id(p) for p in bn["params"]} == bn_biases
    assert bn["lr"] == 0.5 * 64 and abs(bn["lr"] * bn["weight_decay"] - 0.5 * 1e-3) < 1e-15  # same decay per step
    frozen = {id(m.weight) for m in net.modules() if isinstance(m, nn.BatchNorm2d)}
    assert not frozen & {id(p) for p in plain["params"]}            # BN scales frozen at 1: not optimised
    assert id(net.whiten.bias) in {id(p) for p in plain["params"]}  # the whitening bias trains at the base lr
    one = T._param_groups(net, {**cfg, "bias_lr_scale": 1.0})
    assert len(one) == 1 and len(one[0]["params"]) == len(plain["params"]) + len(bn["params"])


# ----------------------------------------------------------------------------- configuration and keys

def test_full_config_defaults_and_unknown_keys():
    assert T.full_config("cifar10") == T.DEFAULT_CONFIG["cifar10"] == T.PRESETS["cifar10"]["cpu"]
    with pytest.raises(ValueError, match=r"unknown config key\(s\) \['epoch'\]"):
        T.full_config("mnist", {"epoch": 3})
    with pytest.raises(ValueError, match="dataset must be one of"):
        T.full_config("svhn")


@pytest.mark.parametrize("bad, match", [
    ({"epochs": 0}, "epochs"), ({"lr": -0.1}, "lr"), ({"lr": 0}, "lr"), ({"optimizer": "adam"}, "optimizer"),
    ({"schedule": "step"}, "schedule"), ({"label_smoothing": 1.5}, "label_smoothing"), ({"amp": "yes"}, "amp"),
    ({"val_size": -1}, "val_size"), ({"n_train": 0}, "n_train"), ({"arch": "vgg"}, "arch"),
    ({"batch_size": 2.5}, "batch_size"), ({"seed": "a"}, "seed"), ({"arch": "airnet2"}, "arch"),
    ({"flip": "sometimes"}, "flip"), ({"translate": 9}, "translate"), ({"translate": -1}, "translate"),
    ({"translate": True}, "translate"), ({"lookahead": 1}, "lookahead"), ({"tta": "no"}, "tta"),
    ({"bias_lr_scale": 0}, "bias_lr_scale"), ({"bias_lr_scale": float("inf")}, "bias_lr_scale"),
    ({"whiten_bias_epochs": -1}, "whiten_bias_epochs"), ({"whiten_bias_epochs": 1.5}, "whiten_bias_epochs"),
    ({"width_factor": 0}, "width_factor"), ({"width_factor": 2.0}, "width_factor"),
    ({"kernel_smoothing": -0.1}, "kernel_smoothing"), ({"kernel_smoothing": float("inf")}, "kernel_smoothing"),
    ({"kernel_smoothing": True}, "kernel_smoothing"),
    ({"whiten_eps": 0.1}, "whiten_eps"),                  # mnist's smallcnn has no whitening layer
    ({"arch": "airnet", "whiten_eps": 0}, "whiten_eps"), ({"arch": "airnet", "whiten_eps": float("nan")}, "whiten_eps"),
    ({"arch": "airnet", "whiten_eps": True}, "whiten_eps"),
    ({"stop_at_accuracy": 0, "val_size": 100}, "stop_at_accuracy"),
    ({"stop_at_accuracy": 1.5, "val_size": 100}, "stop_at_accuracy"),
    ({"stop_at_accuracy": True, "val_size": 100}, "stop_at_accuracy"),
    ({"stop_at_accuracy": 0.5}, "val_size"),              # never the test images
    ({"stop_at_accuracy": 0.5, "val_size": 100, "stop_check_every": 0}, "stop_check_every"),
    ({"stop_check_every": 5}, "stop_at_accuracy"),
])
def test_bad_config_values(bad, match):
    with pytest.raises(ValueError, match=match):
        T.full_config("mnist", bad)


def _changed(k, v):
    if k == "translate":
        return 3 if v is None else v + 1
    if isinstance(v, bool):
        return not v
    if v is None:
        return 17
    if isinstance(v, str):
        return {"sgd": "adamw", "onecycle": "cosine", "smallcnn": "resnet", "resnet": "smallcnn", "airnet": "resnet",
                "random": "alternating", "alternating": "random"}[v]
    if isinstance(v, float):
        return v / 2 if 0 < v < 1 else v * 1.5 if v else 0.1
    return v + 1


# The stop keys only make sense together (and with a validation split); whiten_eps with an airnet.
_STOP_CHANGES = {"stop_at_accuracy": {"stop_at_accuracy": 0.5, "val_size": 1000},
                 "stop_check_every": {"stop_at_accuracy": 0.5, "val_size": 1000, "stop_check_every": 3},
                 "whiten_eps": {"arch": "airnet", "whiten_eps": 0.1}}


def test_every_config_key_changes_the_checkpoint_key(monkeypatch):
    for ds in ("mnist", "cifar10"):
        base = T.checkpoint_key(ds, {})
        assert base == T.checkpoint_key(ds, dict(T.DEFAULT_CONFIG[ds]))  # explicit defaults: same key
        seen = {base}
        assert {"arch", "lookahead", "bias_lr_scale", "flip", "translate", "whiten_bias_epochs", "tta", "width_factor",
                "kernel_smoothing", "stop_at_accuracy", "stop_check_every", "whiten_eps"} <= set(T.DEFAULT_CONFIG[ds])
        for k, v in T.DEFAULT_CONFIG[ds].items():
            key = T.checkpoint_key(ds, _STOP_CHANGES.get(k, {k: _changed(k, v)}))
            assert key not in seen, k
            seen.add(key)
    assert T.checkpoint_key("mnist", TINY) != T.checkpoint_key("cifar10", TINY)
    before = T.checkpoint_key("mnist", TINY)
    monkeypatch.setattr(T, "TRAINING_CODE_VERSION", "test-bump")
    assert T.checkpoint_key("mnist", TINY) != before


def test_keys_that_are_off_hash_as_before_they_existed():
    """kernel_smoothing, stop_at_accuracy and stop_check_every left off: the key of version 3 without them.

    Every checkpoint cached before the keys existed keeps its key, so adding them retrained
    nothing (and TRAINING_CODE_VERSION did not need a bump).
    """
    import hashlib
    import json
    new = ("kernel_smoothing", "stop_at_accuracy", "stop_check_every", "whiten_eps")
    for ds in ("mnist", "cifar10"):
        for cfg in ({}, TINY, T.PRESETS[ds]["gpu"], {**TINY, "objective": "adv", "objective_params": {"eps": 0.1}}):
            full = {k: v for k, v in T.full_config(ds, cfg).items() if k not in new}
            blob = json.dumps({"dataset": ds, "config": full, "version": T.TRAINING_CODE_VERSION}, sort_keys=True,
                              separators=(",", ":"))
            assert T.checkpoint_key(ds, cfg) == hashlib.sha256(blob.encode()).hexdigest()[:16]
            assert T.checkpoint_key(ds, {**cfg, "kernel_smoothing": 0, "stop_at_accuracy": None,
                                         "whiten_eps": 5e-4}) == T.checkpoint_key(ds, cfg)


def test_presets_are_complete_and_valid():
    for ds, profiles in T.PRESETS.items():
        assert set(profiles) == set(T.PROFILES)
        for name, cfg in profiles.items():
            assert set(cfg) == set(T.DEFAULT_CONFIG[ds]), (ds, name)
            assert T.full_config(ds, cfg) == cfg
        assert profiles["smoke"]["n_train"] <= 5000 and profiles["smoke"]["epochs"] <= 2


def test_cache_dir_from_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("FREQKIT_CACHE", str(tmp_path))
    assert T.cache_dir() == tmp_path
    assert T.checkpoint_path("mnist", TINY).parent == tmp_path
    assert T.checkpoint_path("mnist", TINY).name == f"mnist-{T.checkpoint_key('mnist', TINY)}.pt"


# ----------------------------------------------------------------------------- training and the cache

@pytest.fixture(scope="module")
def trained(data_root, tmp_path_factory):
    """TINY trained once for this module: (model, info, cache dir)."""
    cache = tmp_path_factory.mktemp("ckpt")
    model, info = T.train_or_load("mnist", TINY, data_root=data_root, cache_dir=cache, device="cpu", progress=False)
    return model, info, cache


def test_train_then_hit_cache(trained, data_root):
    model, info, cache = trained
    assert info["cached"] is False and os.path.isfile(info["checkpoint"])
    assert info["n_test"] == 10000 and info["n_train"] == 1024 and info["n_val"] == 1000
    assert info["test_accuracy"] > 0.5  # chance is 0.1; this tiny run reaches ~0.8
    assert 0.5 < info["val_accuracy"] <= 1.0
    assert info["train_seconds"] > 0 and info["device"] == "cpu" and info["config"]["width"] == 4
    assert not model.training and len(info["history"]) == 1
    assert os.listdir(cache) == [os.path.basename(info["checkpoint"])]
    model2, info2 = T.train_or_load("mnist", TINY, data_root=data_root, cache_dir=cache, device="cpu",
                                    progress=False)
    assert info2["cached"] is True and info2["checkpoint"] == info["checkpoint"]
    assert info2["train_seconds"] == info["train_seconds"] and info2["test_accuracy"] == info["test_accuracy"]
    assert info2["val_accuracy"] == info["val_accuracy"]
    for (k, v), (k2, v2) in zip(model.state_dict().items(), model2.state_dict().items()):
        assert k == k2 and torch.equal(v, v2)
    # Another config maps to another file next to it.
    assert T.checkpoint_path("mnist", {**TINY, "seed": 1}, cache) != T.checkpoint_path("mnist", TINY, cache)


def test_a_second_process_waits_for_the_training_of_the_same_checkpoint(trained, data_root, tmp_path):
    """While another process trains a checkpoint (holds its lock), train_or_load waits, then loads it."""
    import threading
    import time
    from freqkit._io import lock_file
    _, info, _ = trained
    path = T.checkpoint_path("mnist", TINY, tmp_path)
    other = lock_file(path.with_name(f".{path.name}.lock"))       # the other process, mid-training
    got = {}
    t = threading.Thread(target=lambda: got.update(info=T.train_or_load(
        "mnist", TINY, data_root=data_root, cache_dir=tmp_path, device="cpu", progress=False)[1]))
    t.start()
    time.sleep(0.5)
    assert t.is_alive() and not path.exists()
    shutil.copyfile(info["checkpoint"], path)                     # it saves its checkpoint and finishes
    other.close()
    t.join(120)
    assert got["info"]["cached"] is True and got["info"]["train_seconds"] == info["train_seconds"]
    assert os.listdir(tmp_path) == [path.name]                    # the lock file went with the lock


def test_suites_train_first_the_seeds_no_other_process_is_training(monkeypatch, tmp_path):
    """train_seeds and train_suite leave a model whose lock another process holds for last.

    Two chapters side by side asking for one suite then split its seeds instead of one waiting
    idle; the results still come back in the order asked for.
    """
    from freqkit._io import lock_file
    from freqkit.objectives import adversarial_objective, train_suite
    calls = []

    def fake(dataset, config, loss_fn=None, **kw):
        calls.append((config.get("objective", "standard"), config["seed"]))
        return torch.nn.Linear(1, 1), {"config": dict(config)}

    monkeypatch.setattr(T, "train_or_load", fake)
    busy = T.checkpoint_path("mnist", {**TINY, "seed": 1}, tmp_path)
    other = lock_file(busy.with_name(f".{busy.name}.lock"))      # another process is training seed 1
    runs = T.train_seeds("mnist", TINY, (0, 1, 2), cache_dir=tmp_path)
    assert calls == [("standard", 0), ("standard", 2), ("standard", 1)]
    assert [i["config"]["seed"] for _, i in runs] == [0, 1, 2]
    calls.clear()
    adv = adversarial_objective("mnist")
    models, infos = train_suite("mnist", {"standard": None, "adversarial": adv}, TINY, seeds=(0, 1), cache_dir=tmp_path)
    assert calls == [("standard", 0), ("adversarial", 0), ("adversarial", 1), ("standard", 1)]
    assert {k: [i["config"]["seed"] for i in v] for k, v in infos.items()} == {"standard": [0, 1], "adversarial": [0, 1]}
    other.close()                                                  # nobody else trains: the order asked for
    calls.clear()
    T.train_seeds("mnist", TINY, (0, 1, 2), cache_dir=tmp_path)
    assert calls == [("standard", 0), ("standard", 1), ("standard", 2)]


@pytest.mark.parametrize("jobs, match", [
    ({"mnist": {}}, "jobs must be a list"), ([("mnist", {})], r"jobs\[0\] must be a \(dataset, config, loss_fn\)"),
    ([("mnist", {}, None), ("mnist", {}, "ce")], r"jobs\[1\]: loss_fn must be None or callable"),
])
def test_train_many_refuses_malformed_jobs_before_training(jobs, match, tmp_path):
    with pytest.raises(TypeError, match=match):
        T.train_many(jobs, cache_dir=tmp_path)
    with pytest.raises(ValueError, match="dataset"):
        T.train_many([("mnist", TINY, None), ("imagenet", {}, None)], cache_dir=tmp_path)
    assert not list(tmp_path.iterdir())                               # nothing trained


def test_training_is_seeded(trained, data_root, tmp_path):
    model, info, _ = trained
    torch.manual_seed(123)
    state = torch.get_rng_state()
    again, info2 = T.train_or_load("mnist", TINY, data_root=data_root, cache_dir=tmp_path, progress=False)
    assert info2["cached"] is False
    assert torch.equal(torch.get_rng_state(), state)  # the caller's random state is left alone
    for v1, v2 in zip(model.state_dict().values(), again.state_dict().values()):
        assert torch.allclose(v1.float(), v2.float(), atol=1e-5)


def test_corrupt_checkpoint_names_the_file_and_the_fix(data_root, tmp_path):
    path = T.checkpoint_path("mnist", TINY, tmp_path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\x00garbage, e.g. a truncated download")
    with pytest.raises(T.CorruptCheckpoint) as e:
        T.train_or_load("mnist", TINY, data_root=data_root, cache_dir=tmp_path, progress=False)
    assert str(path) in str(e.value) and "Delete" in str(e.value)
    assert isinstance(e.value, RuntimeError)
    # A readable file that is not a freqkit checkpoint, or one whose config differs.
    torch.save({"weights": torch.zeros(2)}, path)
    with pytest.raises(T.CorruptCheckpoint, match="not a freqkit checkpoint"):
        T.load_checkpoint(path)
    torch.save({"format": "freqkit-checkpoint", "version": "1", "dataset": "mnist", "config": {"x": 1},
                "state_dict": {}, "metrics": {}}, path)
    with pytest.raises(T.CorruptCheckpoint, match="configuration differs"):
        T.load_checkpoint(path, "mnist", T.full_config("mnist", TINY))
    with pytest.raises(T.CorruptCheckpoint, match="trained on 'mnist', not 'cifar10'"):
        T.load_checkpoint(path, "cifar10")


# A smaller run for the tests that train again: no validation split, 256 digits.
QUICK = {**TINY, "n_train": 256, "val_size": 0}


def _cached_copy(trained, tmp_path):
    """A copy of the module's trained checkpoint in a fresh cache folder: (path, info)."""
    _, info, _ = trained
    dst = tmp_path / "cache"
    dst.mkdir()
    path = dst / os.path.basename(info["checkpoint"])
    shutil.copy(info["checkpoint"], path)
    return path, info


def test_damaged_checkpoint_is_refused_not_loaded(trained, data_root, tmp_path):
    """400 bytes flipped in the middle of the file (inside the weights): not cached=True with a
    worse model, but CorruptCheckpoint naming the file."""
    path, _ = _cached_copy(trained, tmp_path)
    blob = bytearray(path.read_bytes())
    mid = len(blob) // 2
    for i in range(mid, mid + 400):
        blob[i] ^= 0x5A
    path.write_bytes(bytes(blob))
    with pytest.raises(T.CorruptCheckpoint) as e:
        T.train_or_load("mnist", TINY, data_root=data_root, cache_dir=path.parent, device="cpu", progress=False)
    msg = str(e.value)
    assert str(path) in msg and "Delete" in msg and "checksum" in msg
    with pytest.raises(T.CorruptCheckpoint, match="checksum"):
        T.load_checkpoint(path)


def _rewrite(path, change):
    payload = torch.load(path, map_location="cpu", weights_only=True)
    change(payload)
    torch.save(payload, path)


def test_checkpoint_whose_accuracy_no_longer_holds_is_refused(trained, data_root, tmp_path):
    path, info = _cached_copy(trained, tmp_path)
    kw = dict(data_root=data_root, cache_dir=path.parent, device="cpu", progress=False)

    def shift(payload):  # weights intact (checksum passes), but the model does not score what it did
        payload["metrics"]["test_accuracy_at_training"] += 0.05
    _rewrite(path, shift)
    with pytest.raises(T.CorruptCheckpoint, match=r"scores .* on the 10000 test images.*at training") as e:
        T.train_or_load("mnist", TINY, **kw)
    assert str(path) in str(e.value) and "Delete" in str(e.value)

    def within_tolerance(payload):
        payload["metrics"]["test_accuracy_at_training"] = info["test_accuracy"] + 0.009
    _rewrite(path, within_tolerance)
    assert T.train_or_load("mnist", TINY, **kw)[1]["cached"] is True

    def other_test_split(payload):  # measured on another test split: not comparable, not checked
        payload["metrics"]["test_accuracy_at_training"] = 0.2
        payload["metrics"]["n_test_at_training"] = 1000
    _rewrite(path, other_test_split)
    assert T.train_or_load("mnist", TINY, **kw)[1]["cached"] is True


def test_checkpoint_without_a_checksum_is_refused_with_advice(trained, tmp_path):
    path, _ = _cached_copy(trained, tmp_path)
    _rewrite(path, lambda payload: payload.pop("checksum"))
    with pytest.raises(T.CorruptCheckpoint, match="no checksum") as e:
        T.load_checkpoint(path, "mnist", T.full_config("mnist", TINY))
    assert str(path) in str(e.value) and "Delete" in str(e.value)
    # Checkpoints of the training code before checksums have another key: never reached by train_or_load.
    assert T.TRAINING_CODE_VERSION != "1"


def test_every_written_checkpoint_carries_its_checksum_and_accuracy(trained):
    _, info, _ = trained
    payload = torch.load(info["checkpoint"], map_location="cpu", weights_only=True)
    assert payload["checksum"]["algorithm"] == "sha256-state_dict" and len(payload["checksum"]["value"]) == 64
    assert payload["metrics"]["test_accuracy_at_training"] == info["test_accuracy"]
    assert payload["metrics"]["n_test_at_training"] == info["n_test"] == 10000


def _usable(model):
    out = model(torch.rand(3, 1, 28, 28))
    return out.shape == (3, 10) and bool(torch.isfinite(out).all())


def test_read_only_cache_folder_trains_warns_and_keeps_the_model(data_root, tmp_path):
    cache = tmp_path / "ro"
    cache.mkdir()
    cache.chmod(stat.S_IRUSR | stat.S_IXUSR | stat.S_IRGRP | stat.S_IXGRP | stat.S_IROTH | stat.S_IXOTH)  # 0o555
    try:
        if os.access(cache, os.W_OK):
            pytest.skip("chmod does not stop this user from writing (root)")
        with pytest.warns(UserWarning, match=f"{cache}.*not writable.*will not be cached"):
            model, info = T.train_or_load("mnist", QUICK, data_root=data_root, cache_dir=cache, device="cpu",
                                          progress=False)
        assert info["cached"] is False and info["saved"] is False and _usable(model)
        assert list(cache.iterdir()) == []
    finally:
        cache.chmod(0o755)


def test_cache_folder_that_cannot_exist_trains_warns_and_keeps_the_model(data_root, tmp_path):
    """Works as root too: the 'folder' lies under a plain file, so it can never be created."""
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    cache = blocker / "checkpoints"
    with pytest.warns(UserWarning, match=f"{cache}.*not writable.*will not be cached"):
        model, info = T.train_or_load("mnist", QUICK, data_root=data_root, cache_dir=cache, device="cpu",
                                      progress=False)
    assert info["cached"] is False and info["saved"] is False and _usable(model)
    assert info["test_accuracy"] > 0.2


def test_failed_write_after_training_keeps_the_model_and_names_the_path(data_root, tmp_path, monkeypatch):
    def disk_full(obj, path):
        raise OSError(errno.ENOSPC, "No space left on device")
    monkeypatch.setattr(T, "atomic_save_torch", disk_full)
    with pytest.warns(UserWarning, match="could not be written") as rec:
        model, info = T.train_or_load("mnist", QUICK, data_root=data_root, cache_dir=tmp_path, device="cpu",
                                      progress=False)
    msg = str(rec[0].message)
    assert info["checkpoint"] in msg and "No space left on device" in msg
    assert info["cached"] is False and info["saved"] is False and _usable(model)
    assert list(tmp_path.iterdir()) == []            # the probe file was removed


def test_writable_cache_saves_without_warnings(data_root, tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _, info = T.train_or_load("mnist", QUICK, data_root=data_root, cache_dir=tmp_path, device="cpu",
                                  progress=False)
    assert info["saved"] is True and [p.name for p in tmp_path.iterdir()] == [os.path.basename(info["checkpoint"])]


def test_missing_data_for_training(tmp_path, monkeypatch):
    monkeypatch.setenv("FREQKIT_OFFLINE", "1")
    with pytest.raises(FileNotFoundError, match="FREQKIT_DATA"):
        T.train_or_load("cifar10", {**TINY, "n_train": 64}, data_root=tmp_path / "none", cache_dir=tmp_path,
                        progress=False)
    assert not any(p.suffix == ".pt" for p in tmp_path.iterdir())


# ----------------------------------------------------------------------------- custom objectives (loss_fn hook)

def test_objective_keys_enter_the_checkpoint_key():
    base = T.checkpoint_key("mnist", TINY)
    # Naming the standard objective explicitly changes nothing: old checkpoints stay valid.
    assert T.checkpoint_key("mnist", {**TINY, "objective": "standard"}) == base
    assert "objective" not in T.full_config("mnist", {**TINY, "objective": "standard"})
    a = T.checkpoint_key("mnist", {**TINY, "objective": "adv", "objective_params": {"eps": 0.1}})
    b = T.checkpoint_key("mnist", {**TINY, "objective": "adv", "objective_params": {"eps": 0.2}})
    c = T.checkpoint_key("mnist", {**TINY, "objective": "other", "objective_params": {"eps": 0.1}})
    assert len({base, a, b, c}) == 4


@pytest.mark.parametrize("bad, match", [
    ({"objective": ""}, "objective"), ({"objective": 3}, "objective"),
    ({"objective": "adv", "objective_params": [1]}, "objective_params"),
    ({"objective": "adv", "objective_params": {"f": lambda: 0}}, "JSON"),
    ({"objective": "adv", "objective_params": {"eps": float("nan")}}, "JSON"),
    ({"objective_params": {"eps": 0.1}}, "standard"),
])
def test_bad_objective_keys(bad, match):
    with pytest.raises(ValueError, match=match):
        T.full_config("mnist", {**TINY, **bad})


def test_loss_fn_and_objective_must_come_together(tmp_path):
    def loss_fn(model, xb, yb, cfg, info):
        return nn.functional.cross_entropy(model(xb), yb)
    with pytest.raises(ValueError, match="no 'objective' name"):
        T.train_or_load("mnist", TINY, cache_dir=tmp_path, loss_fn=loss_fn, progress=False)
    with pytest.raises(ValueError, match="no loss_fn"):
        T.train_or_load("mnist", {**TINY, "objective": "x"}, cache_dir=tmp_path, progress=False)
    with pytest.raises(TypeError, match="loss_fn must be callable"):
        T.train_or_load("mnist", {**TINY, "objective": "x"}, cache_dir=tmp_path, loss_fn=3, progress=False)
    assert list(tmp_path.iterdir()) == []


def test_custom_loss_fn_trains_and_caches(data_root, tmp_path):
    cfg = {**TINY, "n_train": 256, "val_size": 0, "objective": "scaled_ce", "objective_params": {"scale": 2.0}}
    seen = []

    def loss_fn(model, xb, yb, c, info):
        seen.append(info)
        assert c["objective_params"] == {"scale": 2.0} and model.training
        logits = model(xb)
        return 2.0 * nn.functional.cross_entropy(logits.float(), yb), logits

    _, info = T.train_or_load("mnist", cfg, data_root=data_root, cache_dir=tmp_path, loss_fn=loss_fn,
                              progress=False)
    assert not info["cached"] and info["config"]["objective"] == "scaled_ce"
    assert len(seen) == 256 // 64  # one call per optimiser step
    assert [s["step"] for s in seen] == list(range(4)) and seen[0]["total"] == 4
    assert {"epoch", "dataset", "amp", "lr", "generator"} <= set(seen[0])
    assert isinstance(seen[0]["generator"], torch.Generator)
    assert 0 <= info["history"][0]["train_accuracy"] <= 1
    # Cached under its own key; loading again needs the loss_fn but does not call it.
    _, info2 = T.train_or_load("mnist", cfg, data_root=data_root, cache_dir=tmp_path, loss_fn=loss_fn,
                               progress=False)
    assert info2["cached"] and len(seen) == 4
    assert T.checkpoint_path("mnist", cfg, tmp_path) != T.checkpoint_path("mnist", {**cfg, "objective": "standard",
                                                                                   "objective_params": None}, tmp_path)


def test_custom_loss_fn_bad_return(data_root, tmp_path):
    cfg = {**TINY, "n_train": 128, "val_size": 0, "objective": "broken"}
    with pytest.raises(ValueError, match="scalar tensor"):
        T.train_or_load("mnist", cfg, data_root=data_root, cache_dir=tmp_path, progress=False,
                        loss_fn=lambda m, xb, yb, c, i: 1.0)
    with pytest.raises(ValueError, match="logits"):
        T.train_or_load("mnist", cfg, data_root=data_root, cache_dir=tmp_path, progress=False,
                        loss_fn=lambda m, xb, yb, c, i: (m(xb).sum(), torch.zeros(3)))
    assert not any(p.suffix == ".pt" for p in tmp_path.iterdir())


# ----------------------------------------------------------------------------- the airbench recipe, suites

# A few seconds: 1,024 CIFAR-10 images, 2 epochs, the airnet recipe at width 8 (~30% test accuracy).
AIR = {"arch": "airnet", "width": 8, "epochs": 2, "batch_size": 32, "n_train": 1024, "lr": 0.4, "momentum": 0.85,
       "weight_decay": 1.3e-3, "label_smoothing": 0.2, "augment": True, "translate": 2, "flip": "alternating",
       "lookahead": True, "bias_lr_scale": 64.0, "whiten_bias_epochs": 1}


@pytest.fixture(scope="module")
def air_trained(data_root, tmp_path_factory):
    cache = tmp_path_factory.mktemp("air")
    model, info = T.train_or_load("cifar10", AIR, data_root=data_root, cache_dir=cache, device="cpu", progress=False)
    return model, info, cache


def test_airnet_recipe_learns_and_stores_its_whitening(air_trained, data_root):
    import freqkit.models as M
    model, info, cache = air_trained
    assert isinstance(model, M.AirNet) and not model.training and info["n_train"] == 1024
    # Better than the untrained network (chance is 10%): 2 epochs on 1,024 images reach ~30%.
    xt, yt = fk.load_dataset("cifar10", "test", root=data_root)
    torch.manual_seed(0)
    untrained = M.AirNet(width=8)
    assert info["test_accuracy"] > 0.2 and info["test_accuracy"] > fk.evaluate(untrained, xt, yt) + 0.08
    # The whitening filters were fitted to the training images inside training, are saved in the
    # checkpoint, and are never trained: refitting to the same images gives the same filters.
    xs, _ = fk.load_dataset("cifar10", "train", n=1024, seed=0, root=data_root)
    refit = M.AirNet(width=8).fit_whitening(xs)
    assert torch.allclose(model.whiten.weight, refit.whiten.weight, atol=1e-4)
    payload = torch.load(info["checkpoint"], weights_only=True)
    assert torch.equal(payload["state_dict"]["whiten.weight"], model.whiten.weight)
    # whiten_bias_epochs=1: the bias moved away from its fitted value -W m during the first epoch.
    assert not torch.allclose(model.whiten.bias, refit.whiten.bias, atol=1e-4)
    assert model.whiten.bias.requires_grad  # restored after training
    # Loading gives the same function.
    again, info2 = T.train_or_load("cifar10", AIR, data_root=data_root, cache_dir=cache, device="cpu", progress=False)
    assert info2["cached"] and info2["test_accuracy"] == info["test_accuracy"]
    x = xt[:8]
    assert torch.allclose(again(x), model(x), atol=1e-5)


def test_whiten_eps_reaches_the_trained_whitening_layer(data_root, tmp_path):
    """config['whiten_eps'] is the eps the whitening layer was fitted with, in training and on loading.

    The fitted filters equal an AirNet's fitted by hand with that eps (not with the default),
    and their gain (largest singular value of the filter bank) is capped at eps ** -0.5.
    """
    import freqkit.models as M
    cfg = {**AIR, "epochs": 1, "n_train": 256, "whiten_eps": 0.1}
    model, info = T.train_or_load("cifar10", cfg, data_root=data_root, cache_dir=tmp_path, device="cpu",
                                  progress=False)
    assert info["config"]["whiten_eps"] == 0.1 and model.whiten.eps == 0.1
    assert info["key"] != T.checkpoint_key("cifar10", {**cfg, "whiten_eps": 5e-4})
    xs, _ = fk.load_dataset("cifar10", "train", n=256, seed=0, root=data_root)
    assert torch.allclose(model.whiten.weight, M.AirNet(width=8, whiten_eps=0.1).fit_whitening(xs).whiten.weight,
                          atol=1e-4)
    # The first 12 filters W (the other 12 are -W): rows diag(l + eps)^-1/2 V^T, so ||W||_2 = (l_min + eps)^-1/2.
    default = M.AirNet(width=8).fit_whitening(xs).whiten.weight[:12]
    gain = float(torch.linalg.matrix_norm(model.whiten.weight[:12].flatten(1), ord=2))
    assert 0.5 * 0.1 ** -0.5 < gain <= 0.1 ** -0.5 + 1e-4
    assert float(torch.linalg.matrix_norm(default.flatten(1), ord=2)) > 3 * gain   # the default amplifies far more
    again, info2 = T.train_or_load("cifar10", cfg, data_root=data_root, cache_dir=tmp_path, device="cpu",
                                   progress=False)
    assert info2["cached"] and again.whiten.eps == 0.1
    with pytest.raises(ValueError, match="whiten_eps"):
        M.AirNet(width=8, whiten_eps=-1.0)


def test_tta_config_hands_out_the_mirror_averaged_model(air_trained, data_root, tmp_path):
    import freqkit.models as M
    net, info, cache = air_trained
    cfg = {**AIR, "n_train": 256, "epochs": 1, "tta": True}
    model, tinfo = T.train_or_load("cifar10", cfg, data_root=data_root, cache_dir=tmp_path, device="cpu",
                                   progress=False)
    assert isinstance(model, M.MirrorAverage) and isinstance(model.net, M.AirNet)
    assert tinfo["key"] == T.checkpoint_key("cifar10", cfg) != T.checkpoint_key("cifar10", {**cfg, "tta": False})
    xt, yt = fk.load_dataset("cifar10", "test", root=data_root)
    # The accuracy reported is that of the averaged model, the function handed out.
    assert tinfo["test_accuracy"] == fk.evaluate(model, xt, yt)
    assert torch.allclose(model(xt[:4]), 0.5 * (model.net(xt[:4]) + model.net(xt[:4].flip(-1))), atol=1e-5)
    payload = torch.load(tinfo["checkpoint"], weights_only=True)
    assert set(payload["state_dict"]) == set(net.state_dict())  # the checkpoint holds the bare network
    loaded, _ = T.load_checkpoint(tinfo["checkpoint"], "cifar10", cfg)
    assert isinstance(loaded, M.MirrorAverage) and torch.allclose(loaded(xt[:4]), model(xt[:4]), atol=1e-5)


def test_train_seeds_trains_and_caches_each_seed(data_root, tmp_path):
    cfg = {**TINY, "n_train": 256, "val_size": 0, "seed": 7}
    kw = dict(data_root=data_root, cache_dir=tmp_path, device="cpu", progress=False)
    suite = fk.train_seeds("mnist", cfg, seeds=(0, 1), **kw)
    assert [i["config"]["seed"] for _, i in suite] == [0, 1] and not any(i["cached"] for _, i in suite)
    assert len({i["key"] for _, i in suite}) == 2 and len(list(tmp_path.glob("*.pt"))) == 2
    assert suite[0][1]["key"] == T.checkpoint_key("mnist", {**cfg, "seed": 0})
    w0, w1 = (next(iter(m.parameters())) for m, _ in suite)
    assert not torch.equal(w0, w1)  # different seeds, different models
    again = fk.train_seeds("mnist", cfg, seeds=[1, 2], **kw)  # seed 1 from the cache, seed 2 trained
    assert [i["cached"] for _, i in again] == [True, False] and again[0][1]["key"] == suite[1][1]["key"]
    assert len(list(tmp_path.glob("*.pt"))) == 3
    with pytest.raises(ValueError, match="distinct"):
        fk.train_seeds("mnist", cfg, seeds=(1, 1), **kw)
    with pytest.raises(ValueError, match="at least one"):
        fk.train_seeds("mnist", cfg, seeds=(), **kw)
    with pytest.raises(ValueError, match="integer"):
        fk.train_seeds("mnist", cfg, seeds=(0, 1.5), **kw)
    with pytest.raises(TypeError, match="sequence"):
        fk.train_seeds("mnist", cfg, seeds=3, **kw)


# ----------------------------------------------------------------------------- kernel smoothing (Wang et al. 2020)

def test_smooth_kernels_is_eq3_of_wang_et_al():
    g = torch.Generator().manual_seed(0)
    w = torch.randn(5, 2, 3, 3, generator=g)
    rho = 0.3
    # Eq. 3 by hand: each entry plus rho times its 8 neighbours, borders replicated.
    pad = nn.functional.pad(w, (1, 1, 1, 1), mode="replicate")
    neigh = sum(pad[..., 1 + di:4 + di, 1 + dj:4 + dj] for di in (-1, 0, 1) for dj in (-1, 0, 1)) - w
    assert torch.allclose(T.smooth_kernels(w, rho, normalize=False), w + rho * neigh, atol=1e-6)
    assert torch.allclose(T.smooth_kernels(w, rho), (w + rho * neigh) / (1 + 8 * rho), atol=1e-6)
    assert torch.equal(T.smooth_kernels(w, 0.0), w) and T.smooth_kernels(w, 0.5).shape == w.shape
    c = torch.full((2, 2, 3, 3), 0.7)
    assert torch.allclose(T.smooth_kernels(c, 1.0), c)                       # constants stay (normalised)
    # Diagonal in the kernel's DCT: coefficient (u, v) scaled by ((1 - rho) + 9 rho l_u l_v) / (1 + 8 rho).
    lam = torch.tensor([1.0, 2 / 3, 0.0])
    factor = ((1 - rho) + 9 * rho * lam[:, None] * lam[None, :]) / (1 + 8 * rho)
    assert torch.allclose(fk.dct2(T.smooth_kernels(w, rho)), fk.dct2(w) * factor, atol=1e-5)
    with pytest.raises(ValueError, match="rho"):
        T.smooth_kernels(w, -1.0)
    with pytest.raises(ValueError, match="weight"):
        T.smooth_kernels(w[0], 0.5)


def test_first_conv_and_smooth_first_layer():
    import freqkit.models as M
    torch.manual_seed(0)
    small, res, air = fk.build_model("mnist", width=4), M.ResNetCIFAR(width=4), M.AirNet(width=4)
    assert T.first_conv(small) is small.features[0][0] and T.first_conv(res) is res.features[0][0]
    assert T.first_conv(air) is air.groups[0].conv1           # the frozen whitening layer is left alone
    assert T.first_conv(M.MirrorAverage(res)) is res.features[0][0]
    with pytest.raises(ValueError, match="Conv2d"):
        T.first_conv(nn.Sequential(nn.Flatten(), nn.Linear(4, 2)))
    before = T.first_conv(res).weight.detach().clone()
    smoothed = T.smooth_first_layer(res, 1.0)                  # the paper's M(rho): unnormalised, on a copy
    assert torch.equal(T.first_conv(res).weight, before)
    assert torch.allclose(T.first_conv(smoothed).weight, T.smooth_kernels(before, 1.0, normalize=False))
    same = T.smooth_first_layer(res, 0.25, normalize=True, inplace=True)
    assert same is res and torch.allclose(T.first_conv(res).weight, T.smooth_kernels(before, 0.25))
    with pytest.raises(TypeError, match="model"):
        T.smooth_first_layer(lambda x: x, 1.0)


def test_training_with_smoothed_kernels_gives_smooth_first_layer_kernels(trained, data_root, tmp_path):
    from freqkit.objectives import kernel_high_frequency_share
    std, info, _ = trained
    cfg = {**TINY, "kernel_smoothing": 0.25}
    model, sinfo = T.train_or_load("mnist", cfg, data_root=data_root, cache_dir=tmp_path, device="cpu",
                                   progress=False)
    assert sinfo["key"] != info["key"] and sinfo["config"]["kernel_smoothing"] == 0.25
    # The share of the first-layer kernels' energy in the upper half of their 3x3 DCT: white
    # noise has ~5/9; the standard model keeps about that; smoothing after every step removes it
    # (measured: 6e-7 at rho 0.25, 0.58 for the standard model).
    assert kernel_high_frequency_share(model) < 0.01 and kernel_high_frequency_share(std) > 0.3
    # Still learns: above what predicting the commonest digit scores, by 5 binomial standard
    # errors (the tiny run reaches 0.16-0.3 depending on the CPU's arithmetic; a dead model ~0.11).
    _, yt = fk.load_dataset("mnist", "test", root=data_root)
    top = float(torch.bincount(yt).max()) / yt.numel()
    assert sinfo["n_test"] == yt.numel()
    assert sinfo["test_accuracy"] > top + 5 * math.sqrt(top * (1 - top) / yt.numel())


# ----------------------------------------------------------------------------- stopping at an accuracy (issue 12)

def test_training_stops_when_the_validation_accuracy_reaches_the_target(trained, data_root, tmp_path):
    _, full, _ = trained
    cfg = {**TINY, "stop_at_accuracy": 0.4, "stop_check_every": 2}
    kw = {"data_root": data_root, "cache_dir": tmp_path, "device": "cpu", "progress": False}
    _, info = T.train_or_load("mnist", cfg, **kw)
    stop = info["stop"]
    planned = 1024 // 64
    assert stop["reached"] and stop["target"] == 0.4 and stop["steps_planned"] == planned
    assert 2 <= stop["step"] < planned and stop["step"] % 2 == 0 and stop["images_seen"] == 64 * stop["step"]
    assert stop["epoch"] == stop["step"] / planned and stop["n_val"] == 1000
    # It stopped at the first check that met the target; every earlier check was below it.
    accs = [c["val_accuracy"] for c in stop["checks"]]
    assert [c["step"] for c in stop["checks"]] == list(range(2, stop["step"] + 1, 2))
    assert accs[-1] == stop["val_accuracy"] >= 0.4 and all(a < 0.4 for a in accs[:-1])
    # The model handed out is the one measured (up to a digit's float noise), on the validation split.
    assert abs(info["val_accuracy"] - stop["val_accuracy"]) <= 2 / 1000
    assert info["history"][-1]["stopped_after_steps"] == stop["step"] and len(info["history"]) == 1
    assert stop["check_seconds"] > 0 and info["train_seconds"] < full["train_seconds"] + 5
    assert info["key"] != full["key"] and full["stop"] is None
    # The checkpoint's metrics say where it stopped; loading gives the same record.
    payload = torch.load(info["checkpoint"], weights_only=True)
    assert payload["metrics"]["stop"]["step"] == stop["step"] and payload["metrics"]["steps"] == stop["step"]
    _, again = T.train_or_load("mnist", cfg, **kw)
    assert again["cached"] and again["stop"] == stop


def test_stop_checked_each_epoch_and_a_target_never_reached_warns(data_root, tmp_path):
    kw = {"data_root": data_root, "cache_dir": tmp_path, "device": "cpu", "progress": False}
    cfg = {**TINY, "n_train": 256, "val_size": 200, "epochs": 3, "stop_at_accuracy": 0.05}
    _, info = T.train_or_load("mnist", cfg, **kw)       # any model beats 5%: stops after the first epoch
    assert info["stop"]["reached"] and info["stop"]["step"] == 4 and info["stop"]["epoch"] == 1.0
    assert len(info["history"]) == 1 and len(info["stop"]["checks"]) == 1
    with pytest.warns(UserWarning, match="never reached"):
        _, info = T.train_or_load("mnist", {**cfg, "stop_at_accuracy": 1.0}, **kw)
    assert not info["stop"]["reached"] and info["stop"]["step"] is None and len(info["history"]) == 3
    assert [c["step"] for c in info["stop"]["checks"]] == [4, 8, 12]


# ----------------------------------------------------------------------------- training on tensors

def test_train_on_tensors_learns_and_is_seeded():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(256, 1, 8, 8, generator=g)
    y = (x[:, 0, 0, 0] > 0.5).long()

    def run():
        torch.manual_seed(0)
        m = nn.Sequential(nn.Flatten(), nn.Linear(64, 2))
        rec = T.train_on_tensors(m, x, y, epochs=15, batch_size=32, lr=0.05, seed=3)
        return m, rec

    m1, rec = run()
    m2, _ = run()
    assert not m1.training
    for p, q in zip(m1.parameters(), m2.parameters()):
        assert torch.equal(p, q)
    assert rec["n_train"] == 256 and rec["steps"] == 15 * 8 and len(rec["history"]) == 15
    assert rec["history"][-1]["train_accuracy"] > 0.9
    state = torch.random.get_rng_state()
    T.train_on_tensors(m1, x, y, epochs=1)
    assert torch.equal(state, torch.random.get_rng_state())


def test_train_on_tensors_bad_input():
    m = nn.Sequential(nn.Flatten(), nn.Linear(4, 2))
    x, y = torch.rand(4, 1, 2, 2), torch.zeros(4, dtype=torch.long)
    with pytest.raises(ValueError, match="y"):
        T.train_on_tensors(m, x, y[:3])
    with pytest.raises(ValueError, match="lr"):
        T.train_on_tensors(m, x, y, lr=0)
    with pytest.raises(ValueError, match="epochs"):
        T.train_on_tensors(m, x, y, epochs=0)
    with pytest.raises(TypeError, match="model"):
        T.train_on_tensors(lambda z: z, x, y)
    with pytest.raises(ValueError, match="non-finite"):
        T.train_on_tensors(m, x * float("nan"), y)
