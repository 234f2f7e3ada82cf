"""Shared pytest fixtures.  Keep each fixture small and documented; add new ones below."""
from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def data_root() -> Path:
    """The offline data root: ``$FREQKIT_DATA``, else ``../shared/data`` beside the repo.

    Skips the test when neither exists (a fresh clone without data).
    """
    env = os.environ.get("FREQKIT_DATA")
    candidates = [Path(env).expanduser()] if env else []
    candidates.append(REPO.parent / "shared" / "data")
    for c in candidates:
        if (c / "cifar-10-batches-py").is_dir() or (c / "MNIST").is_dir():
            return c.resolve()
    pytest.skip("no data root: set FREQKIT_DATA to a folder holding cifar-10-batches-py/ and MNIST/raw/ "
                "(e.g. ../shared/data)")


# ======================================================================================
# Book pipeline fixtures (runner, built books, local HTTP server, Chromium).
# Used by tests/test_book.py and tests/test_browser.py. Owner: the pipeline / CI.
# ======================================================================================
import contextlib as _bk_contextlib
import functools as _bk_functools
import http.server as _bk_http_server
import json as _bk_json
import shutil as _bk_shutil
import subprocess as _bk_subprocess
import sys as _bk_sys
import threading as _bk_threading
from dataclasses import dataclass as _bk_dataclass

BOOK_REPO = Path(__file__).resolve().parent.parent
BOOK_FIXTURES = Path(__file__).resolve().parent / "fixtures"
CHROMIUM = os.environ.get("FREQKIT_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def book_env() -> dict:
    """Environment for a runner subprocess: this repo on PYTHONPATH, the offline data if found."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(BOOK_REPO)] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p])
    shared = BOOK_REPO.parent / "shared" / "data"
    if not env.get("FREQKIT_DATA") and shared.is_dir():
        env["FREQKIT_DATA"] = str(shared.resolve())
    env.setdefault("PYTHONUNBUFFERED", "1")
    return env


def run_book(*args: str, root: Path = BOOK_REPO, timeout: float = 3000) -> _bk_subprocess.CompletedProcess:
    """``python -m freqkit.book ARGS --root ROOT`` in a subprocess (stdout/stderr captured)."""
    cmd = [_bk_sys.executable, "-m", "freqkit.book", *args, "--root", str(root), "--no-progress"]
    return _bk_subprocess.run(cmd, cwd=root, env=book_env(), capture_output=True, text=True, timeout=timeout)


def _tail(text: str, n: int = 60) -> str:
    return "\n".join(text.splitlines()[-n:])


def make_book_project(dest: Path, notebooks: list, *, extra_profile: dict | None = None,
                      extra_pages: dict | None = None) -> Path:
    """A throw-away book project: the repo's real _config.yml, book/_vendor, intro and
    references, plus the given fixture notebooks (paths) as the chapters, in that order."""
    import yaml

    (dest / "book").mkdir(parents=True, exist_ok=True)
    _bk_shutil.copy2(BOOK_REPO / "_config.yml", dest / "_config.yml")
    for name in ("intro.md", "references.md", "references.bib"):
        _bk_shutil.copy2(BOOK_REPO / "book" / name, dest / "book" / name)
    _bk_shutil.copytree(BOOK_REPO / "book" / "_vendor", dest / "book" / "_vendor", dirs_exist_ok=True)
    chapters = []
    for nb in notebooks:
        _bk_shutil.copy2(nb, dest / "book" / Path(nb).name)
        chapters.append({"file": f"book/{Path(nb).stem}"})
    for name, text in (extra_pages or {}).items():
        (dest / "book" / f"{name}.md").write_text(text)
        chapters.append({"file": f"book/{name}"})
    chapters.append({"file": "book/references"})
    toc = {"format": "jb-book", "root": "book/intro", "chapters": chapters}
    (dest / "_toc.yml").write_text(yaml.safe_dump(toc, sort_keys=False))
    profiles = yaml.safe_load((BOOK_REPO / "book" / "profiles.yml").read_text())
    real = {p.stem for p in (BOOK_REPO / "book").glob("*.ipynb")}
    for prof in profiles.values():  # drop the real chapters' sections: their notebooks are absent
        for key in [k for k in prof if k in real]:
            del prof[key]
    for prof_name, sections in (extra_profile or {}).items():
        for section, params in sections.items():
            profiles[prof_name].setdefault(section, {}).update(params)
    (dest / "book" / "profiles.yml").write_text(yaml.safe_dump(profiles, sort_keys=False))
    return dest


@_bk_dataclass
class BuiltBook:
    root: Path          # the project that was built
    out: Path           # the runner's --out
    profile: str
    proc: _bk_subprocess.CompletedProcess

    @property
    def html(self) -> Path:
        return self.out / "html"

    @property
    def stage(self) -> Path:
        return self.out / "executed" / self.profile

    @property
    def record(self) -> dict:
        return _bk_json.loads((self.stage / "run.json").read_text())

    def executed(self, stem: str) -> Path:
        return self.stage / "book" / f"{stem}.ipynb"


def _build(root: Path, out: Path, profile: str) -> BuiltBook:
    proc = run_book("--profile", profile, "--out", str(out), root=root)
    if proc.returncode != 0:
        pytest.fail(f"the book runner failed (exit {proc.returncode}) for {root}:\n"
                    f"--- stdout (tail) ---\n{_tail(proc.stdout)}\n--- stderr (tail) ---\n{_tail(proc.stderr)}",
                    pytrace=False)
    return BuiltBook(root=root, out=out, profile=profile, proc=proc)


@pytest.fixture(scope="session")
def smoke_book(tmp_path_factory) -> BuiltBook:
    """The real book (this repo's _toc.yml chapters), executed under the smoke profile and built,
    into a temporary --out (the developer's _build is left alone). Built once per session."""
    return _build(BOOK_REPO, tmp_path_factory.mktemp("smoke-book"), "smoke")


@pytest.fixture(scope="session")
def fixture_book(tmp_path_factory) -> BuiltBook:
    """A tiny book made of tests/fixtures/00_fixture_widgets.ipynb with the real config:
    tests the pipeline and the static widgets independently of the chapters."""
    root = make_book_project(tmp_path_factory.mktemp("fixture-project"),
                             [BOOK_FIXTURES / "00_fixture_widgets.ipynb"],
                             extra_profile={"smoke": {"00_fixture_widgets": {"n_frames": 5}}})
    return _build(root, root / "_build", "smoke")


@_bk_contextlib.contextmanager
def serve_directory(directory: Path):
    """Serve ``directory`` on http://127.0.0.1:<free port> from a thread; yields the base URL."""

    class Quiet(_bk_http_server.SimpleHTTPRequestHandler):
        def log_message(self, *args):  # keep the test output clean
            pass

    handler = _bk_functools.partial(Quiet, directory=str(directory))
    server = _bk_http_server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = _bk_threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


@pytest.fixture(scope="session")
def chromium_path() -> str:
    """Debian's chromium; skipped only outside CI when it is missing (in CI a missing browser fails)."""
    if Path(CHROMIUM).exists():
        return CHROMIUM
    msg = f"Chromium not found at {CHROMIUM} (apt-get install chromium, or set FREQKIT_CHROMIUM)"
    if in_ci():
        pytest.fail(msg + " - required in CI", pytrace=False)
    pytest.skip(msg)


@pytest.fixture(scope="session")
def browser(chromium_path):
    """A headless Chromium driven by Playwright (sync API), shared by the session."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        if in_ci():
            pytest.fail("playwright is not installed (pip install -r requirements-dev.txt)", pytrace=False)
        pytest.skip("playwright is not installed")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=chromium_path, args=CHROMIUM_ARGS, headless=True)
        try:
            yield b
        finally:
            b.close()
# ======================================================================================
# end of the book pipeline fixtures
# ======================================================================================


# --------------------------------------------------------------------------- threads

@pytest.fixture(scope="module")
def one_thread():
    """One intra-op thread for a test module: steadier timings on a shared 2-core machine."""
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)
