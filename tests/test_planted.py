"""Tests of freqkit.planted: training on tensors, the planted task, the ground-truth table and verdict."""
from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from freqkit.attribution import attribute
from freqkit.planted import (
    PlantedCNN, ground_truth_table, ground_truth_verdict, train_on_tensors, train_planted_model,
)
from freqkit.transforms import band_masks


def test_planted_cnn_shapes_and_errors():
    m = PlantedCNN(3, 4, width=5, mean=[0.5] * 3, std=[0.1] * 3)
    assert m(torch.rand(2, 3, 16, 12)).shape == (2, 4)
    with pytest.raises(ValueError, match="n_classes"):
        PlantedCNN(1, 1)


def test_train_on_tensors_learns_and_is_seeded():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(256, 1, 8, 8, generator=g)
    y = (x[:, 0, 0, 0] > 0.5).long()

    def run():
        torch.manual_seed(0)
        m = nn.Sequential(nn.Flatten(), nn.Linear(64, 2))
        rec = train_on_tensors(m, x, y, epochs=15, batch_size=32, lr=0.05, seed=3)
        return m, rec

    m1, rec = run()
    m2, _ = run()
    assert not m1.training
    for p, q in zip(m1.parameters(), m2.parameters()):
        assert torch.equal(p, q)
    assert rec["n_train"] == 256 and rec["steps"] == 15 * 8 and len(rec["history"]) == 15
    assert rec["history"][-1]["train_accuracy"] > 0.9
    state = torch.random.get_rng_state()
    train_on_tensors(m1, x, y, epochs=1)
    assert torch.equal(state, torch.random.get_rng_state())


def test_train_on_tensors_bad_input():
    m = nn.Sequential(nn.Flatten(), nn.Linear(4, 2))
    x, y = torch.rand(4, 1, 2, 2), torch.zeros(4, dtype=torch.long)
    with pytest.raises(ValueError, match="y"):
        train_on_tensors(m, x, y[:3])
    with pytest.raises(ValueError, match="lr"):
        train_on_tensors(m, x, y, lr=0)
    with pytest.raises(ValueError, match="epochs"):
        train_on_tensors(m, x, y, epochs=0)
    with pytest.raises(TypeError, match="model"):
        train_on_tensors(lambda z: z, x, y)
    with pytest.raises(ValueError, match="non-finite"):
        train_on_tensors(m, x * float("nan"), y)


def test_planted_model_learns_and_attribution_finds_the_band():
    """End to end, small: the trained model is accurate and IG/occlusion point at the planted band."""
    task = train_planted_model(2, n_train=800, n_test=100, size=16, n_bands=4, amplitude=2.0, width=8,
                               epochs=10, seed=0)
    assert task.test_accuracy > 0.9, task.test_accuracy
    assert task.band == 2 and task.truth.shape == (16, 16) and torch.equal(task.truth, task.masks[2])
    s = task.setting()
    assert s["n_test"] == 100 and s["band"] == task.band and s["bands"] == [None, 2]
    x, y = task.x_test[:16], task.y_test[:16]
    res = {m: attribute(task.model, x, y, method=m, masks=task.masks, n_steps=16, baseline=0.5)
           for m in ("ig", "occlusion")}
    table = ground_truth_table(res, task.masks, task.truth, n_boot=100)
    for t in table.values():
        assert t["top_band"] == task.band and t["share"] > t["coefficient_share"]
    assert ground_truth_verdict({"band 2": table})["verdict"] == "supported"


def test_train_planted_model_args():
    with pytest.raises(ValueError, match="band"):
        train_planted_model(None)
    with pytest.raises(TypeError, match="n_classes"):
        train_planted_model(2, n_classes=3)


def test_ground_truth_table_by_hand():
    masks = band_masks(4, 4, 2, kind="ring")           # band 0: max(u, v) < 2 (4 cells), band 1: the rest
    truth = masks[1]
    s = torch.zeros(2, 1, 4, 4)
    s[0, 0, 3, 3] = 3.0       # on truth
    s[0, 0, 0, 0] = -1.0      # off truth
    s[1, 0, 0, 1] = 2.0       # off truth only
    t = ground_truth_table({"m": s}, masks, truth, n_boot=50)["m"]
    assert math.isclose(t["share"], (0.75 + 0.0) / 2)
    assert math.isclose(t["share_median"], 0.375)
    assert math.isclose(t["coefficient_share"], 12 / 16)
    assert t["truth_bands"] == [1]
    assert [round(v, 6) for v in t["band_shares"]] == [0.625, 0.375] and t["top_band"] == 0
    lo, hi = t["share_ci"]
    assert 0.0 <= lo <= t["share"] <= hi <= 0.75
    v = ground_truth_verdict({"task": {"m": t}})
    assert v["verdict"] == "rejected" and v["evidence"]["n_failed"] == 1
    row = v["evidence"]["rows"][0]
    assert not row["top_is_planted"] and not row["above_uniform"]
    with pytest.raises(ValueError, match="whole bands"):
        ground_truth_table({"m": s}, masks, torch.eye(4, dtype=torch.bool))
    with pytest.raises(ValueError, match="non-empty"):
        ground_truth_table({}, masks, truth)


def test_ground_truth_verdict_rules():
    t = {"share": 0.5, "coefficient_share": 0.1, "top_band": 2, "truth_bands": [3]}
    assert ground_truth_verdict({"a": {"m": t}})["verdict"] == "rejected"
    assert ground_truth_verdict({"a": {"m": t}}, rule="above_uniform")["verdict"] == "supported"
    ok = {**t, "top_band": 3}
    assert ground_truth_verdict({"a": {"m": ok}, "b": {"m": ok}})["verdict"] == "supported"
    with pytest.raises(ValueError, match="rule"):
        ground_truth_verdict({"a": {"m": t}}, rule="nope")
