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

def _refuse(name):
    raise AssertionError(f"non-standard JSON constant {name} written")

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
    assert (tmp_path / "f.json").read_text() == '{"x": "inf", "y": "nan"}\n'      # strict JSON, never NaN
    # What the default hook returns is converted too.
    atomic_write_json({"p": PurePosixPath("a")}, tmp_path / "g.json", default=lambda o: [math.inf, str(o)])
    assert json.loads((tmp_path / "g.json").read_text(), parse_constant=_refuse) == {"p": ["inf", "a"]}


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


# ----------------------------------------------------------------------------- non-finite values, one form everywhere

_NON_FINITE = {"f": math.inf, "t": torch.tensor([math.inf, math.nan]), "a": np.array([-math.inf]),
               "s": np.float64(math.nan), "n": [{"g": np.float32(-math.inf), "u": torch.tensor(math.nan)}],
               "ok": torch.tensor([1.5, 2.0]), "i": np.int64(3)}
_EXPECTED = {"f": "inf", "t": ["inf", "nan"], "a": ["-inf"], "s": "nan", "n": [{"g": "-inf", "u": "nan"}],
             "ok": [1.5, 2.0], "i": 3}


def test_jsonable_turns_every_non_finite_float_into_a_string():
    v = jsonable(_NON_FINITE)
    assert v == _EXPECTED
    json.dumps(v, allow_nan=False)          # strictly valid JSON


def test_stores_write_strict_json_with_non_finite_values_as_strings(tmp_path):
    import freqkit as fk

    # atomic_write_json converts on its own (a caller that forgot jsonable still gets strict JSON) ...
    p = atomic_write_json({k: v for k, v in _NON_FINITE.items()}, tmp_path / "w.json")
    assert json.loads(p.read_text(), parse_constant=_refuse) == _EXPECTED
    # ... and the results store writes the same form.
    q = fk.save_results(tmp_path, "demo", dict(_NON_FINITE), {"eps": np.float64(math.inf)})
    back = json.loads(q.read_text(), parse_constant=_refuse)
    assert back["results"] == _EXPECTED and back["setting"] == {"eps": "inf"}
    assert "Infinity" not in q.read_text() and "NaN" not in q.read_text()


# ----------------------------------------------------------------------------- stale temporaries

def test_atomic_writer_removes_stale_temporaries_of_its_target_only(tmp_path):
    import time

    target = tmp_path / "ckpt.pt"
    old = tmp_path / ".ckpt.pt.ab12cd_9.tmp"        # left by a run killed between fsync and rename
    fresh = tmp_path / ".ckpt.pt.zz99yy88.tmp"      # another process may be writing it right now
    other = tmp_path / ".other.pt.ab12cd_9.tmp"     # another target's: not ours to judge
    lookalike = tmp_path / ".ckpt.pt.notmkstemp.tmp"  # not a name the writer makes
    for f in (old, fresh, other, lookalike):
        f.write_bytes(b"x" * 100)
    two_hours_ago = time.time() - 7200
    for f in (old, other, lookalike):
        os.utime(f, (two_hours_ago, two_hours_ago))
    atomic_save_torch({"w": torch.zeros(2)}, target)
    assert not old.exists()
    assert fresh.exists() and other.exists() and lookalike.exists()
    assert sorted(os.listdir(tmp_path)) == sorted([".ckpt.pt.zz99yy88.tmp", ".other.pt.ab12cd_9.tmp",
                                                   ".ckpt.pt.notmkstemp.tmp", "ckpt.pt"])
    # Just under an hour old: still kept.
    recent = time.time() - 3000
    os.utime(fresh, (recent, recent))
    atomic_write_bytes(target, b"again")
    assert fresh.exists()


def test_probe_writable_says_why_and_leaves_nothing(tmp_path):
    import time

    assert IO.probe_writable(tmp_path / "new" / "dir") is None
    assert (tmp_path / "new" / "dir").is_dir() and os.listdir(tmp_path / "new" / "dir") == []
    (tmp_path / "file").write_text("x")
    err = IO.probe_writable(tmp_path / "file" / "sub")
    assert isinstance(err, OSError)
    stale = tmp_path / ".freqkit-probe-abcd1234.tmp"       # left by a killed process
    stale.write_bytes(b"x")
    os.utime(stale, (time.time() - 7200,) * 2)
    assert IO.probe_writable(tmp_path) is None and not stale.exists()


def test_lock_file_excludes_a_second_holder_until_closed(tmp_path):
    path = tmp_path / "x.lock"
    first = IO.lock_file(path)
    assert path.read_text() == f"{os.getpid()}\n"     # the holder's pid, for whoever waits
    with pytest.raises(BlockingIOError, match="x.lock"):
        IO.lock_file(path, blocking=False)            # flock is per open file: a second open conflicts
    first.close()
    second = IO.lock_file(path, blocking=False)       # released on close
    second.close()


def test_lock_held_sees_a_holder_without_taking_or_creating_the_lock(tmp_path):
    path = tmp_path / "z.lock"
    assert IO.lock_held(path) is False and not path.exists()   # absent: free, and the probe creates nothing
    holder = IO.lock_file(path)
    assert IO.lock_held(path) is True
    assert path.read_text() == f"{os.getpid()}\n"             # the probe wrote nothing over the holder's pid
    holder.close()
    assert IO.lock_held(path) is False                          # a file left behind, unlocked: free
    IO.lock_file(path, blocking=False).close()                  # and the probe kept no lock of its own


def test_lock_file_blocking_waits_for_the_holder(tmp_path):
    import threading
    import time
    path, order = tmp_path / "y.lock", []
    holder = IO.lock_file(path)

    def wait():
        f = IO.lock_file(path)
        order.append("waiter")
        f.close()

    t = threading.Thread(target=wait)
    t.start()
    time.sleep(0.3)
    order.append("holder releases")
    holder.close()
    t.join(10)
    assert order == ["holder releases", "waiter"]
