"""freqkit.book.chapters: the records, lines and tables the chapters print, and load_models.

The numbers come from the library (tested elsewhere); here: that each helper shows the
numbers it is given, in the promised layout, and refuses what it cannot show.
"""
from __future__ import annotations

import numpy as np
import pytest

import freqkit as fk
from freqkit import hypotheses as H
from freqkit.book import chapters as C
from freqkit.objectives import lowpass_objective, train_suite

pytestmark = pytest.mark.usefixtures("one_thread")

TINY = {"width": 4, "epochs": 1, "batch_size": 64, "n_train": 256, "lr": 0.05, "augment": False, "val_size": 0}


def _rec(d, box=0.0, n_coef=10):
    """A band_comparison record with the distortions ``d`` (its CI: their range)."""
    d = np.asarray(d, dtype=float)
    s = np.sort(d)
    return {"distortions": d.tolist(), "median_distortion": float((s[(len(s) - 1) // 2] + s[len(s) // 2]) / 2),
            "ci_low": float(s[0]), "ci_high": float(s[-1]), "ci": 0.95, "norm": "l2", "basis": "dct",
            "n": len(d), "n_coefficients": n_coef, "box_limited_share": box}


_BASE = np.exp(np.random.default_rng(0).normal(0, 1.0, 40))


# ----------------------------------------------------------------------------- band_table

def test_band_table_has_one_row_per_band_with_its_numbers():
    rec = {"n_coefficients": 256, "success_rate": [0.0, 0.5, 1.0], "median_distortion": 0.25, "ci_low": 0.2,
           "ci_high": 0.3, "success_at_eps_max": 1.0, "box_limited_share": 0.0, "out_of_band_max": 3e-5}
    text = C.band_table({"band0": rec, "full": {**rec, "n_coefficients": 1024}}, [0.0, 0.5, 1.0])
    lines = text.splitlines()
    assert len(lines) == 3 and "success at eps = 0, 0.5, 1" in lines[0]
    assert lines[1].split()[:2] == ["band0", "256"] and "0.25 [0.2, 0.3]" in lines[1] and "3.0e-05" in lines[1]
    assert "  0%  50% 100%" in lines[1] and lines[2].split()[:2] == ["full", "1024"]


def test_chapter_helpers_refuse_bad_input_by_name_band_table():
    rec = _rec(_BASE)
    rec.update(success_rate=[0.0, 1.0], n_coefficients=4, success_at_eps_max=1.0, box_limited_share=0.0,
               out_of_band_max=0.0)
    with pytest.raises(ValueError, match="eps_list has 1"):
        C.band_table({"band0": rec}, [0.0])
    with pytest.raises(ValueError, match="records"):
        C.band_table({}, [0.0])


# ----------------------------------------------------------------------------- robustness tables

def test_robustness_rows_and_heatmap_summary_robustness_rows():
    e = {"clean": {"accuracy": 0.9}, "attacks": {"linf/full": {"accuracy": 0.1, "eps": 0.3}},
         "autoattack": {"linf": {"status": "ok", "accuracy": 0.05}}}
    f = {"clean": {"accuracy": 0.8}, "attacks": {"linf/full": {"accuracy": 0.4, "eps": 0.3}},
         "autoattack": {"linf": {"status": "unavailable", "error": "x"}}}
    header, rows = C.robustness_rows({"a": e, "b": f}, records={"a": {"train_seconds": 3.0}})
    assert header == ["model", "clean", "linf/full (eps 0.3)", "AutoAttack linf", "train s"]
    assert rows == [["a", 0.9, 0.1, 0.05, 3.0], ["b", 0.8, 0.4, "unavailable", None]]
    with pytest.raises(ValueError, match="evaluations"):
        C.robustness_rows({})


def test_robustness_rows_choose_attacks_and_mark_missing_ones():
    e = {"clean": {"accuracy": 0.9}, "attacks": {"linf/full": {"accuracy": 0.1, "eps": 0.3},
                                                 "l2/low": {"accuracy": 0.6, "eps": 1.5}}, "autoattack": None}
    f = {"clean": {"accuracy": 0.7}, "attacks": {"l2/low": {"accuracy": 0.5, "eps": 1.5}}}
    header, rows = C.robustness_rows({"e": e, "f": f}, attacks=["l2/low", "linf/full", "l2/high"])
    assert header == ["model", "clean", "l2/low (eps 1.5)", "linf/full (eps 0.3)", "l2/high"]
    assert rows == [["e", 0.9, 0.6, 0.1, None], ["f", 0.7, 0.5, None, None]]
    header, rows = C.robustness_rows({"e": e})                  # default: every attack of the first result
    assert header == ["model", "clean", "linf/full (eps 0.3)", "l2/low (eps 1.5)"] and rows == [["e", 0.9, 0.1, 0.6]]


# ----------------------------------------------------------------------------- model records

def test_record_line_states_accuracy_model_data_time_and_objective():
    rec = {"test_accuracy": 0.9062, "n_test": 1000, "arch": "resnet", "width": 16, "epochs": 10, "n_train": 10000,
           "train_seconds": 35.4, "trained_on": "cpu", "cached": True, "objective": "adversarial",
           "objective_params": {"eps": 0.03}}
    line = C.record_line("cifar10", "adversarial", rec, name_width=12)
    assert line.startswith("cifar10  adversarial  test accuracy 90.62% (1000 images)")
    for part in ("resnet width 16, 10 epochs on 10000 images", "trained 35 s on cpu", "cached=True",
                 "objective adversarial {'eps': 0.03}"):
        assert part in line, part


def test_model_record_of_a_hand_made_info():
    info = {"test_accuracy": 0.5, "n_test": 100, "train_seconds": 2.0, "cached": False, "n_train": 64, "key": "k1",
            "config": {"epochs": 3, "width": 8, "arch": "smallcnn"}}
    rec = C.model_record(info)
    assert rec == {"test_accuracy": 0.5, "n_test": 100, "train_seconds": 2.0, "trained_on": None, "cached": False,
                   "n_train": 64, "epochs": 3, "width": 8, "arch": "smallcnn", "objective": "standard",
                   "objective_params": {}, "config": info["config"], "key": "k1"}
    with pytest.raises(KeyError):
        C.model_record({"config": {}})


def test_train_suite_records_model_record(data_root, tmp_path):
    cfg = {"width": 4, "epochs": 1, "batch_size": 64, "n_train": 256, "lr": 0.05, "augment": False}
    _, infos = train_suite("mnist", {"std": None, "lp": lowpass_objective(0.5)}, cfg, device="cpu",
                           data_root=data_root, cache_dir=tmp_path, progress=False)
    recs = {k: C.model_record(i) for k, i in infos.items()}
    assert recs["std"]["objective"] == "standard" and recs["lp"]["objective"] == "lowpass"
    assert recs["lp"]["objective_params"]["cutoff"] == 0.5 and recs["lp"]["n_train"] == 256
    assert recs["std"]["key"] != recs["lp"]["key"] and recs["lp"]["train_seconds"] > 0
    assert recs["std"]["objective_params"] == {} and recs["lp"]["trained_on"] == "cpu"
    assert recs["lp"]["width"] == 4 and recs["lp"]["epochs"] == 1 and recs["lp"]["arch"] == "smallcnn"
    import json
    json.dumps(recs)                                        # JSON-ready
    line = C.record_line("mnist", "lp", recs["lp"], name_width=4)
    assert line.startswith("mnist    lp   test accuracy ") and "objective lowpass {" in line


def test_load_models_trains_then_loads_and_prints_one_line_per_model(data_root, tmp_path, capsys):
    kw = dict(overrides={"mnist": TINY}, data_root=data_root, cache_dir=tmp_path, device="cpu")
    models, infos = C.load_models(["mnist"], "smoke", **kw)
    assert set(models) == {"mnist"} and not models["mnist"].training
    assert infos["mnist"]["config"] == {**fk.PRESETS["mnist"]["smoke"], **TINY} and not infos["mnist"]["cached"]
    out = capsys.readouterr().out.splitlines()
    assert out == C.models_table([("mnist", "standard", C.model_record(infos["mnist"]))]).splitlines()
    again, infos2 = C.load_models(["mnist"], "smoke", show=False, **kw)
    assert infos2["mnist"]["cached"] and capsys.readouterr().out == ""
    suite, sinfos = C.load_models(["mnist"], "smoke", objectives={"standard": None, "low": lowpass_objective(0.5)},
                                  **kw)
    assert set(suite["mnist"]) == {"standard", "low"} and sinfos["mnist"]["standard"]["cached"]
    assert sinfos["mnist"]["standard"]["key"] == infos["mnist"]["key"]
    assert sinfos["mnist"]["low"]["config"]["objective"] == "lowpass"
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 4 and lines[3].startswith("| mnist | low |")          # header, rule, two models
    # a suite of seeds: one model per seed, each its own checkpoint
    seeds, seed_infos = C.load_models(["mnist"], "smoke", seeds=[0, 1], show=False, **kw)
    assert len(seeds["mnist"]) == 2 and seed_infos["mnist"][0]["cached"]         # seed 0 is the model above
    assert [i["config"]["seed"] for i in seed_infos["mnist"]] == [0, 1] and not seed_infos["mnist"][1]["cached"]
    with pytest.raises(ValueError, match="seeds"):
        C.load_models(["mnist"], "smoke", seeds=[0], objectives={"standard": None}, **kw)
    # objectives may depend on the data set
    _, finfos = C.load_models(["mnist"], "smoke", objectives=lambda ds: {"low": lowpass_objective(0.5)}, show=False,
                              **kw)
    assert finfos["mnist"]["low"]["cached"]


def test_load_models_trains_the_other_data_set_while_a_seed_is_trained_elsewhere(monkeypatch, tmp_path):
    """Seeds of every data set form one list: a seed another process is training waits until the rest is done."""
    import torch

    from freqkit import training as T
    from freqkit._io import lock_file
    calls = []

    def fake(dataset, config, loss_fn=None, **kw):
        calls.append((dataset, config["seed"]))
        return torch.nn.Linear(1, 1), {"config": dict(config), "dataset": dataset}

    monkeypatch.setattr(T, "train_or_load", fake)
    cfg = {**fk.PRESETS["cifar10"]["smoke"], "seed": 1}
    busy = T.checkpoint_path("cifar10", cfg, tmp_path)
    other = lock_file(busy.with_name(f".{busy.name}.lock"))      # another chapter trains CIFAR-10 seed 1
    try:
        models, infos = C.load_models(["cifar10", "mnist"], "smoke", seeds=[0, 1], cache_dir=tmp_path, show=False)
    finally:
        other.close()
    assert calls == [("cifar10", 0), ("mnist", 0), ("mnist", 1), ("cifar10", 1)]
    assert {ds: [(i["dataset"], i["config"]["seed"]) for i in lst] for ds, lst in infos.items()} == {
        "cifar10": [("cifar10", 0), ("cifar10", 1)], "mnist": [("mnist", 0), ("mnist", 1)]}
    assert all(not m.training for lst in models.values() for m in lst)
    with pytest.raises(ValueError, match="distinct"):
        C.load_models(["mnist"], "smoke", seeds=[0, 0], cache_dir=tmp_path)


def test_load_models_errors():
    with pytest.raises(ValueError, match=r"overrides names data sets \['cifar10'\]"):
        C.load_models(["mnist"], "smoke", overrides={"cifar10": {}})
    with pytest.raises(KeyError):
        C.load_models(["mnist"], "no-such-profile")


# ----------------------------------------------------------------------------- verdicts as text

def _verdict():
    return H.verdict("randomisation", True, {"accuracy": 0.123456, "n": 10, "ci": [0.1, 0.2], "ok": True}, "toy")


def test_verdict_lines_show_statement_rule_and_evidence():
    v = _verdict()
    lines = C.verdict_lines(v).splitlines()
    assert lines[0] == v["hypothesis"] + " -> SUPPORTED"
    assert lines[1] == "  rule: " + v["rule"]
    assert lines[2] == "  evidence: {'accuracy': 0.1235, 'n': 10, 'ci': [0.1, 0.2], 'ok': True}"
    assert C.verdict_lines(H.decide_randomisation({"IG": {"spearman_abs": 0.9}})).splitlines()[0].endswith("REJECTED")
    for bad in ({"verdict": "supported"}, "H1", None):
        with pytest.raises(ValueError, match="verdict record"):
            C.verdict_lines(bad)


def test_collect_verdicts_finds_nested_verdicts_and_reports_missing_chapters_evidence_summary(tmp_path):
    ev = {"x": 0.5, "n": 10, "ci": [0.1, 0.2], "long": list(range(9))}
    fk.save_results(tmp_path, "04_trust_attributions", {"verdicts": {"cifar10": H.verdict(
        "randomisation", True, ev, "cifar10")}}, {"profile": "smoke"})
    row = next(r for r in H.collect_verdicts(tmp_path)["rows"] if r["id"] == "randomisation")
    assert C.evidence_summary(row["evidence"]) == "ci=[0.1, 0.2]; n=10; x=0.5"  # JSON stores keys sorted


def test_verdict_markdown_of_a_judged_verdict_tables_every_criterion():
    e = {"mean": 0.3, "ci_low": 0.2, "ci_high": 0.4, "n_images": 10,
         "per_seed": [{"ci_low": 0.1, "ci_high": 0.5}, {"ci_low": 0.0, "ci_high": 0.6}], "n_seeds": 2}
    v = H.judge("H1", {"high_pass_accuracy": e, "low_pass_loss": e,
                       "residual_invisible": {"mean": 0.5, "ci_low": 0.4, "ci_high": 0.6, "n_images": 10}},
                {"commit": "0123456789abcdef", "profile": "cpu"}, "cifar10")
    md = C.verdict_markdown(v)
    assert md.startswith(":::{admonition} " + v["hypothesis"] + ": **rejected**") and ":class: warning" in md
    rows = [line for line in md.splitlines() if line.startswith("| `")]
    assert [r.split("|")[1].strip() for r in rows] == ["`high_pass_accuracy`", "`low_pass_loss`",
                                                       "`residual_invisible`"]
    assert "+0.3 [+0.2, +0.4] accuracy" in rows[0] and "**supported**" in rows[0] and "| 1 of 2 |" in rows[0]   # seed 2: CI straddles 0.05
    assert "< 0" in rows[2] and "**rejected**" in rows[2] and "| - |" in rows[2]  # one measure, no seeds
    assert "commit `0123456789ab`, profile `cpu`, 10 images, 2 seed(s)" in md and "**Why rejected.**" in md


def test_evidence_summary_digest():
    ev = {"a": 0.123456, "b": 3, "flag": True, "none": None, "s": "box-limited", "long_s": "x" * 61,
          "pair": [1, 0.55555], "triple": [1, 2, 3], "nested": {"k": 1}, "mixed": [1, "a"]}
    assert C.evidence_summary(ev) == "a=0.123; b=3; s=box-limited; pair=[1, 0.556]"
    assert C.evidence_summary(ev, digits=2) == "a=0.12; b=3; s=box-limited; pair=[1, 0.56]"
    assert C.evidence_summary(ev, max_items=2) == "a=0.123; b=3"
    assert C.evidence_summary({}) == "" and C.evidence_summary("ci=1") == "" and C.evidence_summary(None) == ""


# ----------------------------------------------------------------------------- suites of seeds (chapter 7)

def test_load_suites_seeds_by_objectives_then_a_matched_accuracy_control(data_root, tmp_path, capsys):
    kw = dict(data_root=data_root, cache_dir=tmp_path, device="cpu")
    models, infos = C.load_suites("mnist", "smoke", {"standard": None, "low": lowpass_objective(0.5)}, [0, 1], TINY,
                                  **kw)
    assert list(models) == ["standard", "low"] and all(len(v) == 2 for v in models.values())
    assert [i["config"]["seed"] for i in infos["low"]] == [0, 1] and not models["low"][1].training
    assert infos["low"][0]["config"]["objective"] == "lowpass" and "objective" not in infos["standard"][0]["config"]
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 6 and lines[2].startswith("| mnist | standard, seed 0 |")   # header, rule, four models
    # the standard suite's checkpoints are load_models' (same preset + overrides)
    _, same = C.load_models(["mnist"], "smoke", {"mnist": TINY}, seeds=[0, 1], show=False, **kw)
    assert [i["cached"] for i in same["mnist"]] == [True, True]
    assert [i["key"] for i in same["mnist"]] == [i["key"] for i in infos["standard"]]
    # the control: standard training stopped at the low-pass suite's clean accuracy, on a held-out split
    over = C.matched_accuracy_overrides(infos["low"], val_size=64, check_every=1)
    assert over["stop_at_accuracy"] == round(float(np.mean([i["test_accuracy"] for i in infos["low"]])), 3)
    # (a target a tiny model surely reaches, so that the stop is exercised)
    over = C.matched_accuracy_overrides([{"test_accuracy": 0.12}], val_size=64, check_every=1)
    ctl, cinfos = C.load_suites("mnist", "smoke", {"control": None}, [0, 1], {**TINY, **over}, show=False, **kw)
    for i in cinfos["control"]:
        st = i["stop"]
        assert st["target"] == 0.12 and st["n_val"] == 64
        assert st["reached"] and st["val_accuracy"] >= st["target"] and st["step"] < st["steps_planned"]
        assert i["config"]["val_size"] == 64 and i["key"] not in {j["key"] for j in infos["standard"]}
    table = C.stop_table(cinfos["control"], infos["low"]).splitlines()
    assert table[0].startswith("| seed | target | reached |") and len(table) == 4
    assert table[2].startswith("| 0 | 12.0% | yes | ")
    assert table[2].endswith(f"| {infos['low'][0]['test_accuracy']:.1%} |")
    with pytest.raises(ValueError, match="stop"):
        C.stop_table(infos["standard"])
    with pytest.raises(ValueError, match="one info per seed"):
        C.stop_table(cinfos["control"], infos["low"][:1])


def test_matched_accuracy_overrides_refuses_bad_input_by_name():
    good = [{"test_accuracy": 0.5}]
    assert C.matched_accuracy_overrides(good, 10) == {"val_size": 10, "stop_at_accuracy": 0.5,
                                                      "stop_check_every": None}
    assert C.matched_accuracy_overrides([{"val_accuracy": 0.61234}], 10, accuracy="val_accuracy",
                                        digits=2)["stop_at_accuracy"] == 0.61
    for bad, match in (([], "non-empty"), ({"a": 1}, "non-empty"), ([{"test_accuracy": None}], r"infos\[0\]"),
                       ([{"test_accuracy": 1.5}], r"infos\[0\]"), ([{}], "test_accuracy")):
        with pytest.raises(ValueError, match=match):
            C.matched_accuracy_overrides(bad, 10)
    with pytest.raises(ValueError, match="val_size"):
        C.matched_accuracy_overrides(good, 0)
    with pytest.raises(ValueError, match="check_every"):
        C.matched_accuracy_overrides(good, 10, check_every=0)
    with pytest.raises(ValueError, match="digits"):
        C.matched_accuracy_overrides(good, 10, digits=0)


def test_per_seed_stacks_a_measure_into_seeds_by_images():
    import torch
    a = C.per_seed([torch.nn.Identity(), torch.nn.Identity()], lambda m: torch.tensor([1.0, float("nan")]))
    assert a.shape == (2, 2) and a.dtype == np.float64 and np.isnan(a[:, 1]).all()
    with pytest.raises(ValueError, match="at least one"):
        C.per_seed([], lambda m: [1.0])
    with pytest.raises(ValueError, match="one value per image"):
        C.per_seed([0], lambda m: [[1.0]])
    with pytest.raises(ValueError, match="different numbers"):
        C.per_seed([1, 2], lambda m: [0.0] * m)


def test_band_attack_rows_and_masking_rows_copy_the_numbers():
    import torch
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 5))
    x = torch.rand(6, 1, 8, 8)
    y = model(x).argmax(1)
    e = fk.evaluate_defense(model, x, y, budgets={"linf": 0.1}, steps=2, band_autoattack=["apgd-ce"],
                            band_autoattack_n=4, band_autoattack_steps=2, progress=False)
    header, rows = C.band_attack_rows({"toy": e})
    assert header[4] == "band PGD" and header[7] == "band AutoAttack" and [r[1] for r in rows] == [
        "linf/full", "linf/low", "linf/high"]
    for r in rows:
        a, b = e["attacks"][r[1]], e["band_autoattack"][r[1]]
        assert r[4] == a["accuracy"] and r[5] == 6 and r[6] == a["budget_used"]
        assert r[7:] == [b["accuracy"], b["pgd_accuracy"], b["worst_case_accuracy"], 4]
    no_aa = C.band_attack_rows({"toy": {**e, "band_autoattack": None}})[1]
    assert no_aa[0][7:] == [None, None, None, None]
    m = fk.masking_checks(model, x, y, eps=0.1, steps=2, curve_steps=2, simba_iters=5, source_model=model)
    header, rows = C.masking_rows({"toy": m})
    assert [r[1] for r in rows] == ["accuracy_to_zero", "blackbox", "transfer"]
    assert all(r[3] == m["whitebox"]["accuracy"] for r in rows)
    assert [r[4] for r in rows] == ["yes" if c["passed"] else "NO" for c in m["checks"].values()]
    assert "SimBA-DCT robust accuracy" in rows[1][2] and "transfer from the source model" in rows[2][2]
    for f in (C.band_attack_rows, C.masking_rows):
        with pytest.raises(ValueError, match="at least one"):
            f({})
