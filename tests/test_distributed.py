"""torch.distributed: two gloo processes on the CPU give what one process gives; failures stop every rank.

Each multi-process test starts real processes (``subprocess``, ``env://`` rendezvous on a
free localhost port, ``torch.distributed`` with the gloo backend), one CPU thread each;
the workers are this module's ``_worker`` function.  Also here: the helpers of
``freqkit._distributed`` without a process group, the command line ``python -m
freqkit.run`` (one process and ``torchrun``), and the ImageNet code path of the library on
the 70-image sample with an UNTRAINED resnet18 (the book never uses such weights).
"""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import torch.nn as nn
from torch.utils.data import DataLoader, TensorDataset

from freqkit import _distributed as D
from freqkit.attacks import minimal_distortion
from freqkit.attribution import radial_attribution_profile
from freqkit.defense import evaluate_defense
from freqkit.heatmaps import fourier_heatmap, fourier_layer_heatmap, heatmap_report
from freqkit.reliance import alignment_profile, filtered_accuracy
from freqkit.transforms import band_masks

REPO = Path(__file__).resolve().parent.parent
TESTS = Path(__file__).resolve().parent
pytestmark = pytest.mark.usefixtures("one_thread")


# --------------------------------------------------------------------------- helpers without a process group

def test_helpers_are_the_identity_without_a_process_group():
    assert D.world() == D.World(0, 1, None) and not D.is_distributed()
    assert D.shard(7) == slice(0, 7)
    t = torch.arange(6.0).reshape(3, 2)
    assert D.all_gather_rows(t) is t and D.all_reduce_sum(t) is t and D.all_reduce_max(t) is t
    assert D.gather_in_order(torch.tensor([2, 0, 1]), t)[0] is t
    with D.fail_together("nothing", fingerprint=lambda: 1 / 0):   # no exchange, so never evaluated
        pass
    with pytest.raises(KeyError):
        with D.fail_together("a failure"):
            raise KeyError("boom")
    assert D.agree_shape((3, 8, 8), 3, "x") == (3, 8, 8)
    with pytest.raises(ValueError, match=r"x holds no images \(N = 0\)"):
        D.agree_shape(None, 3, "x")


def test_shard_covers_the_range_in_rank_order():
    for n in (0, 1, 5, 10, 11):
        for size in (1, 2, 3, 4):
            parts = [D.shard(n, r, size) for r in range(size)]
            assert [i for p in parts for i in range(n)[p]] == list(range(n))
            assert max(p.stop - p.start for p in parts) - min(p.stop - p.start for p in parts) <= 1
    with pytest.raises(ValueError, match="rank"):
        D.shard(4, 2, 2)


def test_local_batches_of_tensors_and_iterables_without_a_process_group():
    x, y = torch.rand(7, 1, 2, 2), torch.arange(7)
    batches, n = D.local_batches(x, y, 3)
    got = list(batches)
    assert n == 3 and [o for o, _, _ in got] == [0, 3, 6] and torch.equal(torch.cat([b for _, b, _ in got]), x)
    assert [o for o, _, _ in D.local_batches(x, y, 3, whole_batches=True)[0]] == [0, 3, 6]
    assert torch.equal(D.broadcast(x), x)
    loader = DataLoader(TensorDataset(x, y), batch_size=2)
    batches, n = D.local_batches(loader, None, 99)
    assert n == 4 and [o for o, _, _ in batches] == [0, 2, 4, 6]
    with pytest.raises(ValueError, match="y must be None"):
        D.local_batches(loader, y, 2)
    with pytest.raises(ValueError, match=r"\(images, labels\)"):
        list(D.local_batches([x], None, 2)[0])
    with pytest.raises(TypeError, match="x must be a tensor"):
        D.local_batches(3, None, 2)


def test_init_from_env_does_nothing_without_torchrun(monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    assert D.init_from_env(5.0) == D.World(0, 1, None)
    with pytest.raises(ValueError, match="timeout_s"):
        D.init_from_env(0)


# --------------------------------------------------------------------------- two processes

def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env(rank: int, world: int, port: int) -> dict:
    env = dict(os.environ)
    env.update(RANK=str(rank), WORLD_SIZE=str(world), LOCAL_RANK=str(rank), LOCAL_WORLD_SIZE=str(world),
               MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), OMP_NUM_THREADS="1",
               PYTHONPATH=os.pathsep.join([str(TESTS), str(REPO), env.get("PYTHONPATH", "")]))
    env.pop("CUDA_VISIBLE_DEVICES", None)
    return env


def _launch(job: str, out: Path, world: int = 2, timeout_s: float = 60.0, limit: float = 240.0, wait=None):
    """Run ``_worker(job)`` on ``world`` ranks; returns [(returncode, stderr, seconds)] per rank.

    Waits for the ranks in ``wait`` (default: all) or ``limit`` seconds, then kills what still
    runs (its return code is then None).
    """
    wait = range(world) if wait is None else wait
    port = _free_port()
    code = f"import test_distributed as t; t._worker({job!r}, {str(out)!r}, {timeout_s!r})"
    t0 = time.monotonic()
    procs = [subprocess.Popen([sys.executable, "-c", code], cwd=str(REPO), env=_env(r, world, port),
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True) for r in range(world)]
    results = [None] * world
    try:
        while any(results[r] is None for r in wait):
            for r, p in enumerate(procs):
                if results[r] is None and p.poll() is not None:
                    results[r] = (p.returncode, p.stderr.read(), time.monotonic() - t0)
            if time.monotonic() - t0 > limit:
                break
            time.sleep(0.1)
    finally:
        for r, p in enumerate(procs):
            if p.poll() is None:   # still running past the limit (a rank told to hang): stop it
                p.kill()
                p.wait()
                if results[r] is None:
                    results[r] = (None, p.stderr.read(), time.monotonic() - t0)
    return results


class _Tiny(nn.Module):
    """Conv -> ReLU -> pool -> linear, 3 classes; ``fail`` makes the ``k``-th forward raise, die or hang."""

    def __init__(self, seed: int = 0):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.head = nn.Linear(16, 3)
        with torch.no_grad():
            for p in self.parameters():
                p.copy_(torch.randn(p.shape, generator=g) * 0.5)
        self.calls, self.fail = 0, None

    def forward(self, x):
        self.calls += 1
        if self.fail is not None and self.calls == 3:
            if self.fail == "raise":
                raise RuntimeError("boom on this rank")
            if self.fail == "die":
                os._exit(3)
            if self.fail == "hang":
                time.sleep(600)
        z = torch.relu(self.conv(x))
        return self.head(nn.functional.adaptive_avg_pool2d(z, 2).flatten(1))


def _data(n: int = 10, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, 3, 8, 8, generator=g), torch.randint(0, 3, (n,), generator=g)


def _compute_all() -> dict:
    """Every sharded function, on tensors, a sequential DataLoader and a plain list of batches."""
    model, (x, y) = _Tiny().eval(), _data()
    loader = DataLoader(TensorDataset(x, y), batch_size=3)
    batches = [(x[i:i + 4], y[i:i + 4]) for i in range(0, len(y), 4)]
    masks = band_masks(8, 8, 3)
    out = {
        "heatmap": fourier_heatmap(model, x, y, eps=2.0, batch_size=37, metric=("error", "logit_change"),
                                   progress=False),
        "heatmap_subgrid_hashed": fourier_heatmap(model, x, y, eps=2.0, directions=2, signs="hashed",
                                                  metric="logit_change", progress=False),
        "heatmap_loader": fourier_heatmap(model, loader, eps=2.0, metric=("error", "logit_change"), progress=False),
        "heatmap_list": fourier_heatmap(model, batches, eps=2.0, metric="logit_change", progress=False),
        "layer_maps": fourier_layer_heatmap(model, x, ["conv", "head"], eps=2.0, directions=2, progress=False),
        "layer_maps_loader": fourier_layer_heatmap(model, loader, ["conv"], eps=2.0, directions=3, progress=False),
        "report_loader": heatmap_report(model, loader, eps=2.0, metrics=("error",), directions=3),
        "filtered": filtered_accuracy(model, x, y, [0.2, 0.8], mode="high", batch_size=3),
        "filtered_loader": filtered_accuracy(model, loader, None, [0.2, 0.8], mode="low"),
        "alignment": alignment_profile(model, x, y, n_bands=3, n_boot=50, batch_size=3, n_steps=4),
        "alignment_list": alignment_profile(model, batches, None, n_bands=3, n_boot=50, n_steps=4),
        "radial": radial_attribution_profile(model, x, y, masks, n_steps=4, batch_size=3, n_boot=50, by_class=True,
                                             progress=False).to_dict(),
        "radial_loader": radial_attribution_profile(model, loader, None, masks, n_steps=4, n_boot=50,
                                                    progress=False).to_dict(),
    }
    out["report_loader"].pop("timing")
    # attacks: whole batches of 3 (4 batches over 10 images, the last one short), band-limited and full;
    # a model whose predictions (the labels here) the attacks can change
    amodel = _Tiny(3).eval()
    with torch.no_grad():
        ya = amodel(x).argmax(1)
    d, info = minimal_distortion(amodel, x, ya, band=masks[0], search_steps=3, pgd_steps=4, batch_size=3,
                                 progress=False, return_info=True)
    out["minimal_distortion"] = {"d": d, **info}
    out["minimal_distortion_full"] = minimal_distortion(amodel, x, ya, norm="linf", search_steps=2, pgd_steps=3,
                                                        batch_size=4, random_start=True, progress=False)
    rec = evaluate_defense(amodel, x, ya, budgets={"linf": 0.05, "l2": 0.5}, bands=("full", "low"), steps=3,
                           batch_size=3, seed=5, progress=False)
    rec.pop("seconds")
    for a in rec["attacks"].values():
        a.pop("seconds")
    out["evaluate_defense"] = rec
    # the helpers the attacks will use: whole batches keep their single-process composition
    offsets = [o for o, _, _ in D.local_batches(x, y, 3, whole_batches=True)[0]]
    out["whole_batch_offsets"] = D.all_gather_rows(torch.tensor(offsets, dtype=torch.int64))
    out["broadcast"] = D.broadcast(torch.tensor([D.world().rank * 10 + 7, 1]) > 5)
    return out


def _worker(job: str, out: str, timeout_s: float) -> None:
    """One rank of a multi-process test (run in a fresh interpreter by ``_launch``)."""
    torch.set_num_threads(1)
    w = D.init_from_env(timeout_s, "gloo")
    try:
        if job == "all":
            torch.save(_compute_all(), Path(out) / f"rank{w.rank}.pt")
            return
        model, (x, y) = _Tiny().eval(), _data()
        if job in ("raise", "die", "hang") and w.rank == 1:
            model.fail = job
        if job == "differ" and w.rank == 1:
            x = x.flip(0)
        fourier_heatmap(model, x, y, eps=2.0, batch_size=8, progress=False)
        (Path(out) / f"done{w.rank}").write_text("ok")
    finally:
        if job not in ("die", "hang"):
            torch.distributed.destroy_process_group()


def _close(a, b, path=""):
    if isinstance(a, dict):
        assert set(a) == set(b), (path, set(a) ^ set(b))
        for k in a:
            _close(a[k], b[k], f"{path}/{k}")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), path
        for i, (u, v) in enumerate(zip(a, b)):
            _close(u, v, f"{path}[{i}]")
    elif isinstance(a, torch.Tensor):
        assert a.shape == b.shape and a.dtype == b.dtype, path
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6, equal_nan=True, msg=lambda m: f"{path}: {m}")
    elif isinstance(a, float):
        assert a == pytest.approx(b, rel=1e-5, abs=1e-6, nan_ok=True), (path, a, b)
    else:
        assert a == b, (path, a, b)


@pytest.fixture(scope="module")
def two_ranks(tmp_path_factory):
    """Every sharded function on 2 gloo ranks (both ranks' results) and on one process."""
    out = tmp_path_factory.mktemp("two_ranks")
    res = _launch("all", out, timeout_s=120, limit=600)
    for rc, err, _ in res:
        assert rc == 0, err[-3000:]
    ranks = [torch.load(out / f"rank{r}.pt", weights_only=False) for r in range(2)]
    return ranks, _compute_all()


@pytest.mark.slow
@pytest.mark.parametrize("key", ["heatmap", "heatmap_subgrid_hashed", "heatmap_loader", "heatmap_list", "layer_maps",
                                 "layer_maps_loader", "report_loader", "filtered", "filtered_loader", "alignment",
                                 "alignment_list", "radial", "radial_loader", "minimal_distortion",
                                 "minimal_distortion_full", "evaluate_defense", "whole_batch_offsets",
                                 "broadcast"])
def test_two_gloo_ranks_return_one_process_result_on_every_rank(two_ranks, key):
    (r0, r1), single = two_ranks
    _close(r0[key], single[key], key)
    _close(r1[key], single[key], key)


@pytest.mark.slow
def test_streamed_and_sharded_results_agree_with_each_other(two_ranks):
    _, single = two_ranks
    # hashed signs are the same for a tensor, a DataLoader and a list of batches
    _close(single["heatmap_list"], single["heatmap_loader"]["logit_change"])
    _close(single["filtered"]["n"], 10)
    _close(single["radial"]["mean"], single["radial_loader"]["mean"])
    # the attacks compared across ranks did something: finite, non-zero distortions on some images
    md = single["minimal_distortion"]
    assert md["success"].all() and (md["d"] > 0).all()
    assert torch.isfinite(single["minimal_distortion_full"]).any()
    assert any(not all(a["robust"]) for a in single["evaluate_defense"]["attacks"].values())


@pytest.mark.slow
def test_a_rank_that_raises_stops_every_rank_with_a_clear_error(tmp_path):
    (rc0, err0, t0), (rc1, err1, t1) = _launch("raise", tmp_path, timeout_s=300)
    assert rc1 != 0 and "RuntimeError: boom on this rank" in err1
    assert rc0 != 0 and "RankFailed" in err0 and "rank 1: RuntimeError: boom on this rank" in err0, err0[-2000:]
    assert max(t0, t1) < 120      # no rank waited for the 300 s timeout
    assert not list(tmp_path.glob("done*"))


@pytest.mark.slow
def test_a_rank_that_dies_makes_the_others_fail_not_hang(tmp_path):
    (rc0, err0, t0), (rc1, _, _) = _launch("die", tmp_path, timeout_s=20)
    assert rc1 == 3
    assert rc0 not in (0, None) and "DistributedError" in err0 and "rank 0" in err0, err0[-2000:]
    assert t0 < 20 + 90


@pytest.mark.slow
def test_a_rank_that_hangs_makes_the_others_fail_after_the_timeout(tmp_path):
    res = _launch("hang", tmp_path, timeout_s=8, limit=150, wait=[0])
    rc0, err0, t0 = res[0]
    assert rc0 not in (0, None) and "DistributedError" in err0, err0[-2000:]
    assert t0 < 8 + 100                           # the timeout, plus starting two interpreters on a busy machine
    assert res[1][0] is None or res[1][0] != 0     # the hung rank was still hanging (killed by the test)


@pytest.mark.slow
def test_ranks_given_different_data_refuse_to_compute(tmp_path):
    res = _launch("differ", tmp_path, timeout_s=120)
    for rc, err, _ in res:
        assert rc != 0 and "different inputs" in err and "x_sum" in err, err[-2000:]


# --------------------------------------------------------------------------- the command line

def _cli(args, tmp_path, torchrun: int | None = None, timeout=300):
    env = dict(os.environ, OMP_NUM_THREADS="1",
               PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]))
    env.pop("CUDA_VISIBLE_DEVICES", None)
    head = [sys.executable, "-m"]
    if torchrun:
        head += ["torch.distributed.run", f"--nproc_per_node={torchrun}", f"--master_port={_free_port()}", "-m"]
    return subprocess.run(head + ["freqkit.run"] + args, cwd=str(tmp_path), env=env, capture_output=True, text=True,
                          timeout=timeout)


@pytest.fixture(scope="module")
def tiny_cifar_model(tmp_path_factory):
    """A freqkit SmallCNN (width 4, random weights) saved as a state dict; the CLI builds it by import path."""
    torch.manual_seed(0)
    from freqkit.models import build_model
    path = tmp_path_factory.mktemp("cli") / "smallcnn.pt"
    torch.save(build_model("cifar10", "smallcnn", width=4).state_dict(), path)
    return ["--model", "freqkit.models:build_model", "--model-kwargs",
            '{"dataset": "cifar10", "arch": "smallcnn", "width": 4}', "--weights", str(path)]


@pytest.mark.slow
def test_cli_heatmap_and_filtered_accuracy_one_process_and_torchrun(tiny_cifar_model, data_root, tmp_path):
    from freqkit.run import load_result

    common = tiny_cifar_model + ["--data", "cifar10", "--data-root", str(data_root), "--n-images", "6",
                                 "--threads", "1"]
    hm = ["heatmap", *common, "--directions", "8", "--eps", "2", "--layers", "features.0"]
    p1 = _cli(hm + ["--out", "one.json"], tmp_path)
    assert p1.returncode == 0, p1.stderr
    p2 = _cli(hm + ["--out", "two.json"], tmp_path, torchrun=2)
    assert p2.returncode == 0, p2.stderr[-3000:]
    one, two = load_result(tmp_path / "one.json"), load_result(tmp_path / "two.json")
    assert one["world"]["size"] == 1 and two["world"]["size"] == 2 and two["world"]["backend"] == "gloo"
    assert len(one["setting"]["weights_sha256"]) == 64 and one["setting"]["n"] == 6
    for key in ("maps", "layer_maps"):
        for k, m in one["result"][key].items():
            assert m.shape == (32, 32) and int(torch.isnan(m).sum()) == 32 * 32 - 16   # every 8th frequency
            torch.testing.assert_close(m, two["result"][key][k], equal_nan=True, rtol=1e-5, atol=1e-6)
    assert one["result"]["timing"]["n_directions"] == 10 and one["result"]["timing"]["n_directions_full_grid"] == 514
    fa = ["filtered-accuracy", *common, "--cutoffs", "0.3", "1.0", "--modes", "low", "high"]
    p3 = _cli(fa + ["--out", "fa1.json"], tmp_path)
    p4 = _cli(fa + ["--out", "fa2.json"], tmp_path, torchrun=2)
    assert p3.returncode == 0 and p4.returncode == 0, p3.stderr + p4.stderr[-3000:]
    a, b = (json.loads((tmp_path / f).read_text())["result"] for f in ("fa1.json", "fa2.json"))
    for mode in ("low", "high"):
        assert a[mode]["accuracy"] == b[mode]["accuracy"] and a[mode]["n"] == 6
        assert a[mode]["energy_kept"] == pytest.approx(b[mode]["energy_kept"], rel=1e-9)


def test_cli_refuses_bad_arguments_with_a_clear_message(tmp_path, data_root):
    p = _cli(["heatmap", "--model", "nosuchpkg.mod:make", "--data", "cifar10", "--out", "x.json"], tmp_path)
    assert p.returncode == 2 and "cannot import module 'nosuchpkg.mod'" in p.stderr
    p = _cli(["heatmap", "--model", "resnet18", "--normalize", "imagenet", "--data", "cifar10", "--out", "x.json"],
             tmp_path)
    assert p.returncode == 2 and "--normalize apply to a 'package.module:factory'" in p.stderr
    p = _cli(["heatmap", "--model", "freqkit.models:build_model", "--model-kwargs", '{"dataset": "mnist"}',
              "--data", str(tmp_path / "nowhere"), "--out", "x.json"], tmp_path)
    assert p.returncode == 2 and "--data must be" in p.stderr
    assert not (tmp_path / "x.json").exists()


def test_cli_loads_weights_only_and_names_a_state_dict_that_does_not_fit(tmp_path):
    from freqkit.run import UsageError, load_model

    torch.save({"state_dict": {"nope": torch.zeros(1)}}, tmp_path / "bad.pt")
    with pytest.raises(ValueError, match="missing keys"):
        load_model("freqkit.models:build_model", tmp_path / "bad.pt", {"dataset": "mnist", "width": 2})
    torch.save(nn.Linear(2, 2), tmp_path / "pickled.pt")           # a whole pickled module: refused
    with pytest.raises(ValueError, match="weights_only=True"):
        load_model("torch.nn:Linear", tmp_path / "pickled.pt", {"in_features": 2, "out_features": 2})
    with pytest.raises(UsageError, match="not a torch.nn.Module"):
        load_model("collections:OrderedDict", None, {"a": 1})
    m = load_model("torch.nn:Conv2d", None, {"in_channels": 3, "out_channels": 2, "kernel_size": 1},
                   normalize="imagenet")
    assert type(m[0]).__name__ == "Normalize" and not m.training


# --------------------------------------------------------------------------- ImageNet-sized inputs

@pytest.fixture(scope="module")
def imagenet_sample(data_root):
    root = data_root / "imagenet_sample"
    if not (root / "labels.csv").is_file():
        pytest.skip(f"no ImageNet sample at {root}")
    return root


@pytest.fixture(scope="module")
def untrained_resnet18(tmp_path_factory):
    """An UNTRAINED torchvision resnet18 (random weights) saved as a state dict.

    It stands in for real ImageNet weights, which this machine does not have: the test
    exercises the code path the book's ImageNet sections take when weights are present
    (loading a local state dict of the same architecture, 224x224 inputs, 1,000 classes);
    its numbers mean nothing, and the book never uses such weights.
    """
    import torchvision

    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("imagenet") / "resnet18-untrained.pth"
    torch.save(torchvision.models.resnet18(weights=None).state_dict(), path)
    return path


def test_imagenet_code_path_with_an_untrained_resnet18(imagenet_sample, untrained_resnet18):
    from freqkit.data import load_imagenet_folder
    from freqkit.heatmaps import fourier_directions, heatmap_summary
    from freqkit.models import load_imagenet_classifier

    model = load_imagenet_classifier("resnet18", weights_path=untrained_resnet18)     # UNTRAINED weights
    assert model.weights_source and not model.training
    x, y, paths = load_imagenet_folder(imagenet_sample, n=3, seed=0)
    assert x.shape == (3, 3, 224, 224) and len(paths) == 3 and int(y.max()) < 1000
    dirs = fourier_directions(224, 224, step=56)                        # 10 of the 25,090 directions
    rep = heatmap_report(model, x, y, eps=16.0, batch_size=16, directions=dirs, layers=["net.layer1"])
    assert rep["timing"]["n_directions"] == 10 and rep["timing"]["n_directions_full_grid"] == 25090
    err = rep["maps"]["error"]
    assert err.shape == (224, 224) and int((~torch.isnan(err)).sum()) == 16
    assert rep["layer_maps"]["net.layer1"].shape == (224, 224)
    assert set(heatmap_summary(err)) == {"low", "high", "low_minus_high"}
    fa = filtered_accuracy(model, x, y, [0.25, 1.415], mode="low", batch_size=2)    # 1.415 > sqrt(2): keeps all
    assert fa["n"] == 3 and len(fa["accuracy"]) == 2 and fa["energy_kept"][1] == pytest.approx(1.0, abs=1e-6)
