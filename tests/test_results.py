"""freqkit.results: the results store (statistics: test_stats.py; verdicts: test_hypotheses.py)."""
import json

import numpy as np
import pytest
import torch

import freqkit as fk


def test_save_and_load_round_trip(tmp_path):
    p = fk.save_results(tmp_path, "02_which_frequencies", {"acc": np.array([0.5, 0.25]), "inf": float("inf")},
                        {"profile": "smoke"})
    back = fk.load_results(tmp_path, "02_which_frequencies")
    assert back["results"]["acc"] == [0.5, 0.25] and back["setting"]["profile"] == "smoke"
    assert back["results"]["inf"] == "inf"
    assert not [f for f in tmp_path.iterdir() if f.name.endswith(".tmp")]  # nothing half-written left
    assert p == tmp_path / "02_which_frequencies.json"


def test_stored_file_is_sorted_indented_json_ending_with_a_newline(tmp_path):
    p = fk.save_results(tmp_path, "07_robust_models", {"b": torch.tensor([1, 2]), "a": {"nan": float("nan")}},
                        {"seed": 0, "device": "cpu"})
    text = p.read_text()
    assert text.endswith("}\n") and not text.endswith("\n\n")
    data = json.loads(text)
    assert data == {"chapter": "07_robust_models", "setting": {"device": "cpu", "seed": 0},
                    "results": {"a": {"nan": "nan"}, "b": [1, 2]}}
    assert text == json.dumps(data, indent=1, sort_keys=True, ensure_ascii=False) + "\n"
    # saving again replaces the file whole
    fk.save_results(tmp_path, "07_robust_models", {}, {})
    assert fk.load_results(tmp_path, "07_robust_models")["results"] == {}
    assert sorted(f.name for f in tmp_path.iterdir()) == ["07_robust_models.json"]


def test_load_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="run that chapter first"):
        fk.load_results(tmp_path, "03_missing")
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(ValueError, match="corrupt"):
        fk.load_results(tmp_path, "bad")
    with pytest.raises(ValueError, match="chapter"):
        fk.save_results(tmp_path, "a/b", {}, {})
    with pytest.raises(ValueError, match="chapter"):
        fk.save_results(tmp_path, "", {}, {})
    with pytest.raises(TypeError, match="dicts"):
        fk.save_results(tmp_path, "x", [1], {})
