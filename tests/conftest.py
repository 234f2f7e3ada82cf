"""Fixtures shared by every test: the offline data root and a one-thread setting.

Keep each fixture small and documented.  The book pipeline's fixtures (runner, built
books, HTTP server, Chromium) live in ``tests/book/conftest.py``.  Test modules do not
import from a conftest (there are two, both named ``conftest``): use the fixtures.
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parent.parent  # the repository root (holds freqkit/, book/, tests/)


@pytest.fixture(scope="session")
def data_root() -> Path:
    """The offline data root (``$FREQKIT_DATA``, else ``../shared/data``); skips the test when neither exists."""
    env = os.environ.get("FREQKIT_DATA")
    candidates = [Path(env).expanduser()] if env else []
    candidates.append(REPO.parent / "shared" / "data")
    for c in candidates:
        if (c / "cifar-10-batches-py").is_dir() or (c / "MNIST").is_dir():
            return c.resolve()
    pytest.skip("no data root: set FREQKIT_DATA to a folder holding cifar-10-batches-py/ and MNIST/raw/ "
                "(e.g. ../shared/data)")


@pytest.fixture(scope="module")
def one_thread():
    """One intra-op thread for a test module: steadier timings on a shared 2-core machine."""
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)
