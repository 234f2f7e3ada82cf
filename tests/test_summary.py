"""freqkit.summary: chapter 9's table of hypotheses, built from stored results."""
import freqkit as fk
from freqkit import summary as S


def _v(h, supported):
    return fk.verdict(h, f"rule of {h}", supported, {"x": 0.5, "n": 10, "ci": [0.1, 0.2], "long": list(range(9))})


def test_collect_verdicts_finds_nested_verdicts_and_reports_missing_chapters(tmp_path):
    fk.save_results(tmp_path, "02_which_frequencies",
                    {"verdicts": {"cifar10": _v("H1: CNNs use high frequencies (cifar10)", True),
                                  "mnist": _v("H1: CNNs use high frequencies (mnist)", False)}},
                    {"profile": "smoke"})
    fk.save_results(tmp_path, "05_low_vs_high_attacks",
                    {"deep": [{"a": {"b": _v("H3: low beats high", None)}}], "checks": {"x": _v("H3: dft", None)}},
                    {"profile": "smoke"})
    fk.save_results(tmp_path, "04_trust_attributions", {"verdicts": {"gt": _v("Sanity: ground truth", True)}}, {})
    fk.save_results(tmp_path, "06_fourier_heatmaps", {"maps": [1, 2]}, {})
    (tmp_path / "07_robust_models.json").write_text("{not json")
    out = S.collect_verdicts(tmp_path)
    st = out["chapters"]
    assert st["02_which_frequencies"] == "ok" and st["03_frequency_attribution"] == "not run"
    assert st["06_fourier_heatmaps"] == "no verdicts" and st["07_robust_models"].startswith("unreadable")
    rows = out["rows"]
    ids = [r["id"] for r in rows]
    assert ids == ["H1", "H1", "H2", "H3", "H3", "H4", "H5", "check"]
    h1 = [r for r in rows if r["id"] == "H1"]
    assert {r["verdict"] for r in h1} == {"supported", "rejected"}          # a rejection is shown as such
    assert h1[0]["where"] == "verdicts/cifar10" and h1[0]["profile"] == "smoke"
    assert h1[0]["evidence"] == "ci=[0.1, 0.2]; n=10; x=0.5"  # JSON stores keys sorted
    assert [r["where"] for r in rows if r["id"] == "H3"] == ["checks/x", "deep/0/a/b"]
    for hid in ("H2", "H4", "H5"):
        r = next(r for r in rows if r["id"] == hid)
        assert r["verdict"] == "not run" and r["chapter"] == S.HYPOTHESES[hid][1]
    summ = S.summarise_hypotheses(rows)
    assert summ["H1"]["overall"] == "mixed" and summ["H3"]["overall"] == "inconclusive"
    assert summ["H2"]["overall"] == "not run" and summ["check"]["overall"] == "supported"


def test_sub_hypotheses_and_empty_results_dir(tmp_path):
    fk.save_results(tmp_path, "08_frequency_defense", {"verdicts": {"a": _v("H5a: aligned", True),
                                                                   "b": _v("H5b: robust", False)}}, {})
    rows = S.collect_verdicts(tmp_path)["rows"]
    assert [r["id"] for r in rows if r["id"].startswith("H5")] == ["H5a", "H5b"]   # no extra "not run" H5 row
    assert S.collect_verdicts(tmp_path / "nothing")["chapters"]["02_which_frequencies"] == "not run"
    assert S.hypothesis_id("  H12b: x") == "H12b" and S.hypothesis_id("Sanity") == "check"
    assert S.find_verdicts({"v": {"hypothesis": "H1", "rule": "r", "verdict": "maybe"}}) == []
