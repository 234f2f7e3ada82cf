"""freqkit._io: atomic writes (a reader sees the old file or the complete new one) and JSON-ready values."""
import json
import math
import os
import stat

import numpy as np
import pytest
import torch

import freqkit._io as IO
from freqkit._io import atomic_save_torch, atomic_write_bytes, atomic_write_json, jsonable


def _mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def _umask() -> int:
    u = os.umask(0)
    os.umask(u)
    return u


def test_atomic_writes_leave_only_the_target(tmp_path):
    p = atomic_write_bytes(tmp_path / "a" / "b.bin", b"hello")
    assert p.read_bytes() == b"hello"
    atomic_write_json({"x": 1, "y": [1.5, None]}, tmp_path / "r.json")
    assert json.loads((tmp_path / "r.json").read_text()) == {"x": 1, "y": [1.5, None]}
    atomic_save_torch({"t": torch.arange(3)}, tmp_path / "c.pt")
    assert torch.equal(torch.load(tmp_path / "c.pt")["t"], torch.arange(3))
    assert sorted(os.listdir(tmp_path)) == ["a", "c.pt", "r.json"]
    assert os.listdir(tmp_path / "a") == ["b.bin"]


def test_failed_write_keeps_the_old_file(tmp_path):
    target = tmp_path / "ckpt.pt"
    atomic_save_torch({"ok": 1}, target)
    with pytest.raises(Exception):
        atomic_save_torch({"bad": lambda: 0}, target)  # lambdas cannot be pickled
    with pytest.raises(TypeError, match="data must be bytes"):
        atomic_write_bytes(target, "text")
    assert torch.load(target) == {"ok": 1}
    assert os.listdir(tmp_path) == ["ckpt.pt"]  # no temporary file left behind


def test_write_interrupted_during_rename_leaves_no_temp(tmp_path, monkeypatch):
    def boom(*a):
        raise KeyboardInterrupt
    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(KeyboardInterrupt):
        atomic_write_bytes(tmp_path / "x.bin", b"data")
    assert os.listdir(tmp_path) == []


# ----------------------------------------------------------------------------- JSON options

def test_atomic_write_json_sorts_keys_indents_and_ends_with_a_newline(tmp_path):
    obj = {"b": 1, "a": {"d": [1, 2], "c": "é"}}
    p = atomic_write_json(obj, tmp_path / "s.json")
    text = p.read_text(encoding="utf-8")
    assert text == json.dumps(obj, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    assert text.index('"a"') < text.index('"b"') and "é" in text            # sorted; UTF-8, not \u escapes
    assert text.splitlines()[1].startswith('  "a"')                          # indent=2 by default
    q = atomic_write_json(obj, tmp_path / "u.json", sort_keys=False, indent=None)
    assert q.read_text(encoding="utf-8") == '{"b": 1, "a": {"d": [1, 2], "c": "é"}}\n'
    r = atomic_write_json(obj, tmp_path / "i.json", indent=4)
    assert r.read_text(encoding="utf-8").splitlines()[1].startswith('    "a"')
    assert json.loads(r.read_text(encoding="utf-8")) == obj


def test_atomic_write_json_default_hook_and_non_finite_floats(tmp_path):
    from pathlib import PurePosixPath

    with pytest.raises(TypeError):
        atomic_write_json({"p": PurePosixPath("a/b")}, tmp_path / "d.json")
    assert not os.listdir(tmp_path)                                   # nothing written, nothing left
    atomic_write_json({"p": PurePosixPath("a/b")}, tmp_path / "d.json", default=str)
    assert json.loads((tmp_path / "d.json").read_text()) == {"p": "a/b"}
    atomic_write_json({"x": math.inf, "y": math.nan}, tmp_path / "f.json", indent=None)
    assert (tmp_path / "f.json").read_text() == '{"x": Infinity, "y": NaN}\n'


def test_atomic_write_json_error_during_writing_keeps_the_old_file(tmp_path, monkeypatch):
    target = tmp_path / "r.json"
    atomic_write_json({"v": 1}, target)
    before = target.read_bytes()

    def fail(fd):
        raise OSError("disk full (simulated)")
    monkeypatch.setattr(IO.os, "fsync", fail)       # the data are written, then syncing fails
    with pytest.raises(OSError, match="disk full"):
        atomic_write_json({"v": 2}, target)
    assert target.read_bytes() == before
    assert os.listdir(tmp_path) == ["r.json"]       # the temporary file was removed


# ----------------------------------------------------------------------------- permissions

@pytest.mark.parametrize("umask", [0o022, 0o077, 0o002])
def test_written_files_get_the_permissions_of_a_plain_open(tmp_path, umask):
    old = os.umask(umask)
    try:
        for p in (atomic_write_bytes(tmp_path / "b.bin", b"x"), atomic_write_json({}, tmp_path / "j.json"),
                  atomic_save_torch({}, tmp_path / "t.pt")):
            assert _mode(p) == 0o666 & ~umask, oct(_mode(p))      # not mkstemp's 0600
        with open(tmp_path / "plain", "w") as f:
            f.write("x")
        assert _mode(tmp_path / "j.json") == _mode(tmp_path / "plain")
    finally:
        os.umask(old)
    assert _umask() == old


def test_overwriting_keeps_the_permissions_rule(tmp_path):
    p = atomic_write_bytes(tmp_path / "b.bin", b"one")
    os.chmod(p, 0o600)
    atomic_write_bytes(p, b"two")
    assert p.read_bytes() == b"two" and _mode(p) == 0o666 & ~_umask()


# ----------------------------------------------------------------------------- jsonable

def test_jsonable_converts_tensors_arrays_and_non_finite_floats():
    v = jsonable({"t": torch.tensor([1.0, 2.0]), "a": np.arange(3), 1: (math.inf, -math.inf, math.nan, 0.5),
                  "s": np.float64(2.5), "n": None, "nested": [{"z": torch.tensor(3)}]})
    assert v == {"t": [1.0, 2.0], "a": [0, 1, 2], "1": ["inf", "-inf", "nan", 0.5], "s": 2.5, "n": None,
                 "nested": [{"z": 3}]}
    json.dumps(v, allow_nan=False)          # strictly valid JSON


def test_write_json_atomic_leaves_no_temporary_files_runner_options(tmp_path):
    """The book runner's run.json call (the old ``write_json_atomic``): insertion order, ``default=str``."""
    from pathlib import PurePosixPath

    target = tmp_path / "run.json"
    atomic_write_json({"b": 1, "a": PurePosixPath("x/y")}, target, sort_keys=False, default=str)
    atomic_write_json({"b": 2, "a": 1}, target, sort_keys=False, default=str)
    assert json.loads(target.read_text()) == {"b": 2, "a": 1} and list(json.loads(target.read_text())) == ["b", "a"]
    assert [p.name for p in tmp_path.iterdir()] == ["run.json"]
