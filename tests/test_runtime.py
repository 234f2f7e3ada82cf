"""freqkit._runtime: model mode, CPU threads, devices, batches, progress bars, the offline switch."""
import io
import sys

import pytest
import torch
from torch import nn

from freqkit import _runtime as R


def _net():
    return nn.Sequential(nn.Linear(2, 2), nn.Dropout(0.5), nn.BatchNorm1d(2))


# ----------------------------------------------------------------------------- eval_mode

@pytest.mark.parametrize("training", [True, False])
def test_eval_mode_runs_in_eval_and_restores_the_mode(training):
    m = _net().train(training)
    with R.eval_mode(m) as inner:
        assert inner is m
        assert not m.training and not any(c.training for c in m.modules())
    assert m.training is training and all(c.training is training for c in m.modules())


def test_eval_mode_restores_train_mode_when_the_body_raises():
    m = _net().train()
    with pytest.raises(RuntimeError, match="inside"):
        with R.eval_mode(m):
            assert not m.training
            raise RuntimeError("inside")
    assert m.training and all(c.training for c in m.modules())


def _frozen_bn_net():
    """A model in train mode with one BatchNorm deliberately frozen (eval) inside it."""
    m = nn.Sequential(nn.Linear(2, 2), nn.BatchNorm1d(2), nn.Sequential(nn.Linear(2, 2), nn.BatchNorm1d(2)))
    m.train()
    m[1].eval()
    m[2][1].eval()
    return m


@pytest.mark.parametrize("raises", [False, True])
def test_eval_mode_restores_every_submodules_own_mode(raises):
    m = _frozen_bn_net()
    before = {name: c.training for name, c in m.named_modules()}
    assert before["1"] is False and before["2.1"] is False and before[""] is True
    try:
        with R.eval_mode(m):
            assert not any(c.training for c in m.modules())
            if raises:
                raise RuntimeError("inside")
    except RuntimeError:
        assert raises
    assert {name: c.training for name, c in m.named_modules()} == before


def test_eval_mode_passes_a_plain_callable_through():
    def f(z):
        return z
    with R.eval_mode(f) as g:
        assert g is f


# ----------------------------------------------------------------------------- cpu_threads

def test_cpu_threads_sets_and_restores_the_thread_count():
    before = torch.get_num_threads()
    with R.cpu_threads(1):
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before
    with pytest.raises(ValueError, match="inside"):
        with R.cpu_threads(1):
            raise ValueError("inside")
    assert torch.get_num_threads() == before
    with R.cpu_threads(None):                      # None: the setting is left alone
        assert torch.get_num_threads() == before
    assert torch.get_num_threads() == before


# ----------------------------------------------------------------------------- devices and batches

def test_model_device():
    assert R.model_device(nn.Linear(2, 2)) == torch.device("cpu")
    assert R.model_device(nn.Linear(2, 2).to("meta")).type == "meta"
    only_buffer = nn.BatchNorm1d(2, affine=False).to("meta")
    assert not list(only_buffer.parameters()) and R.model_device(only_buffer).type == "meta"
    assert R.model_device(nn.ReLU()) == torch.device("cpu")
    assert R.model_device(lambda z: z) == torch.device("cpu")


@pytest.mark.parametrize("n, size, want", [
    (10, 4, [(0, 4), (4, 8), (8, 10)]), (8, 4, [(0, 4), (4, 8)]), (3, None, [(0, 3)]), (3, 10, [(0, 3)]),
    (0, 4, []), (5, 0, [(i, i + 1) for i in range(5)]), (0, None, []),
])
def test_chunks_cover_the_range_in_order(n, size, want):
    got = [(s.start, s.stop) for s in R.chunks(n, size)]
    assert got == want


# ----------------------------------------------------------------------------- progress and offline

def test_progress_is_disabled_without_a_terminal_and_iterates_everything(monkeypatch):
    fake = io.StringIO()                                  # no isatty() -> False
    monkeypatch.setattr(sys, "stderr", fake)
    bar = R.progress(range(7), desc="work")
    assert bar.disable
    assert list(bar) == list(range(7))
    assert fake.getvalue() == ""                          # nothing printed
    manual = R.progress(total=3)
    assert manual.disable
    manual.update(3)
    manual.close()
    assert fake.getvalue() == ""


def test_progress_under_pytest_capture_is_disabled():
    if sys.stderr.isatty():
        pytest.skip("stderr is a terminal (pytest -s): the bar would rightly show")
    bar = R.progress(iter([1, 2, 3]))
    assert bar.disable and list(bar) == [1, 2, 3]


def test_progress_shows_in_a_terminal_unless_disabled(monkeypatch):
    class Tty(io.StringIO):
        def isatty(self):
            return True
    tty = Tty()
    monkeypatch.setattr(sys, "stderr", tty)
    bar = R.progress(range(3), file=tty)
    assert not bar.disable and bar.mininterval == 2.0       # the default update interval
    assert list(bar) == [0, 1, 2]
    off = R.progress(range(3), enabled=False, file=tty)
    assert off.disable and list(off) == [0, 1, 2]


@pytest.mark.parametrize("value, expected", [("1", True), ("true", True), ("YES", True), (" yes ", True),
                                             ("0", False), ("", False), ("no", False), (None, False)])
def test_offline_reads_freqkit_offline(monkeypatch, value, expected):
    if value is None:
        monkeypatch.delenv("FREQKIT_OFFLINE", raising=False)
    else:
        monkeypatch.setenv("FREQKIT_OFFLINE", value)
    assert R.offline() is expected


def test_cpu_description_names_the_model_and_the_bf16_kind():
    from freqkit._runtime import cpu_info, cpu_name, native_bf16
    info = cpu_info()
    assert set(info) == {"cpu_model", "native_bf16", "bf16_flags", "logical_cpus", "torch_threads"}
    assert info["native_bf16"] == native_bf16(torch.device("cpu"))
    assert cpu_name() == f"{info['cpu_model']}, native bf16 {'yes' if info['native_bf16'] else 'no'}"
    assert set(info["bf16_flags"]) <= {"avx512_bf16", "amx_bf16", "avx512_fp16"}
    assert native_bf16(torch.device("meta")) is False      # neither CPU nor CUDA: never autocast
