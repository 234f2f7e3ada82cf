"""Fixtures of the book pipeline: the runner subprocess, built books, a local HTTP server, Chromium.

Used by the tests in ``tests/book/``.  The slow fixtures are session-scoped: the real book
(``smoke_book``) and the fixture book (``fixture_book``) are each built at most once per run,
into temporary folders (the developer's ``_build`` is left alone).

Test modules use these through fixtures (``run_book``, ``make_book_project``, ``serve``, ...),
never ``from conftest import ...``: tests/conftest.py is also a module named ``conftest``.
"""
from __future__ import annotations

import contextlib
import functools
import http.server
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]                   # the repository root
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"  # tests/fixtures: fixture notebooks
CHROMIUM = os.environ.get("FREQKIT_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def in_ci() -> bool:
    """True under CI (``CI=1/true/yes``): missing tools then fail instead of skipping."""
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


# --------------------------------------------------------------------------- the runner subprocess

def book_env() -> dict:
    """Environment for a runner subprocess: this repo on PYTHONPATH, the offline data if found."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO)] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p])
    shared = REPO.parent / "shared" / "data"
    if not env.get("FREQKIT_DATA") and shared.is_dir():
        env["FREQKIT_DATA"] = str(shared.resolve())
    env.setdefault("PYTHONUNBUFFERED", "1")
    return env


def _run_book(*args: str, root: Path = REPO, timeout: float = 3000) -> subprocess.CompletedProcess:
    """``python -m freqkit.book ARGS --root ROOT --no-progress`` in a subprocess (stdout/stderr captured)."""
    cmd = [sys.executable, "-m", "freqkit.book", *args, "--root", str(root), "--no-progress"]
    return subprocess.run(cmd, cwd=root, env=book_env(), capture_output=True, text=True, timeout=timeout)


def _start_book(*args: str, root: Path = REPO) -> subprocess.Popen:
    """``python -m freqkit.book ARGS --root ROOT --no-progress`` started in the background (text pipes).

    SIGINT is reset to its default in the child, so that ``send_signal(SIGINT)`` raises
    KeyboardInterrupt there as Ctrl-C would, even when the tests run with SIGINT ignored
    (a background job of a non-interactive shell)."""
    cmd = [sys.executable, "-m", "freqkit.book", *args, "--root", str(root), "--no-progress"]
    return subprocess.Popen(cmd, cwd=root, env=book_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))


def _make_book_project(dest: Path, notebooks: list, *, extra_profile: dict | None = None,
                       extra_pages: dict | None = None) -> Path:
    """A throw-away book project in ``dest``: the repo's real _config.yml, book/_vendor, intro and
    references, plus the given fixture notebooks (paths) as the chapters, in that order, and the
    extra markdown pages ``{name: text}``; ``extra_profile`` ``{profile: {section: params}}`` is
    merged into the real profiles (whose sections for the real chapters are dropped)."""
    import yaml

    (dest / "book").mkdir(parents=True, exist_ok=True)
    shutil.copy2(REPO / "_config.yml", dest / "_config.yml")
    for name in ("intro.md", "references.md", "references.bib"):
        shutil.copy2(REPO / "book" / name, dest / "book" / name)
    shutil.copytree(REPO / "book" / "_vendor", dest / "book" / "_vendor", dirs_exist_ok=True)
    chapters = []
    for nb in notebooks:
        shutil.copy2(nb, dest / "book" / Path(nb).name)
        chapters.append({"file": f"book/{Path(nb).stem}"})
    for name, text in (extra_pages or {}).items():
        (dest / "book" / f"{name}.md").write_text(text)
        chapters.append({"file": f"book/{name}"})
    chapters.append({"file": "book/references"})
    toc = {"format": "jb-book", "root": "book/intro", "chapters": chapters}
    (dest / "_toc.yml").write_text(yaml.safe_dump(toc, sort_keys=False))
    profiles = yaml.safe_load((REPO / "book" / "profiles.yml").read_text())
    real = {p.stem for p in (REPO / "book").glob("*.ipynb")}
    for prof in profiles.values():  # drop the real chapters' sections: their notebooks are absent
        for key in [k for k in prof if k in real]:
            del prof[key]
    for prof_name, sections in (extra_profile or {}).items():
        for section, params in sections.items():
            profiles[prof_name].setdefault(section, {}).update(params)
    (dest / "book" / "profiles.yml").write_text(yaml.safe_dump(profiles, sort_keys=False))
    return dest


@pytest.fixture(scope="session")
def book_repo() -> Path:
    """The repository root: the real book's project folder (_config.yml, _toc.yml, book/)."""
    return REPO


@pytest.fixture(scope="session")
def book_fixtures() -> Path:
    """The folder of fixture notebooks (tests/fixtures): tiny chapters that test the pipeline."""
    return FIXTURES


@pytest.fixture(scope="session")
def run_book():
    """The runner as a subprocess: ``run_book(*args, root=REPO, timeout=3000) -> CompletedProcess``."""
    return _run_book


@pytest.fixture
def start_book():
    """The runner started in the background: ``start_book(*args, root=REPO) -> Popen``; any still running at
    the end of the test is interrupted (SIGINT, so that its kernel is shut down), then killed."""
    procs: list[subprocess.Popen] = []

    def start(*args: str, root: Path = REPO) -> subprocess.Popen:
        procs.append(_start_book(*args, root=root))
        return procs[-1]

    yield start
    for p in procs:
        if p.poll() is None:
            p.send_signal(signal.SIGINT)
            try:
                p.communicate(timeout=60)
            except subprocess.TimeoutExpired:
                p.kill()
                p.communicate()


@pytest.fixture(scope="session")
def make_book_project():
    """Factory of throw-away book projects: ``make_book_project(dest, notebooks, extra_profile=, extra_pages=)``."""
    return _make_book_project


# --------------------------------------------------------------------------- built books

@dataclass
class BuiltBook:
    """A book the runner executed and built: where it lives and what the runner printed."""

    root: Path          # the project that was built
    out: Path           # the runner's --out
    profile: str
    proc: subprocess.CompletedProcess

    @property
    def html(self) -> Path:
        return self.out / "html"

    @property
    def stage(self) -> Path:
        return self.out / "executed" / self.profile

    @property
    def record(self) -> dict:
        return json.loads((self.stage / "run.json").read_text())

    def executed(self, stem: str) -> Path:
        return self.stage / "book" / f"{stem}.ipynb"


def _tail(text: str, n: int = 60) -> str:
    return "\n".join(text.splitlines()[-n:])


def _build(root: Path, out: Path, profile: str) -> BuiltBook:
    """Run and build the book at ``root`` into ``out``; fail the test (with the runner's output) if it fails."""
    proc = _run_book("--profile", profile, "--out", str(out), root=root)
    if proc.returncode != 0:
        pytest.fail(f"the book runner failed (exit {proc.returncode}) for {root}:\n"
                    f"--- stdout (tail) ---\n{_tail(proc.stdout)}\n--- stderr (tail) ---\n{_tail(proc.stderr)}",
                    pytrace=False)
    return BuiltBook(root=root, out=out, profile=profile, proc=proc)


@pytest.fixture(scope="session")
def smoke_book(tmp_path_factory) -> BuiltBook:
    """The real book (this repo's _toc.yml chapters) executed under the smoke profile and built, once per session.

    ``FREQKIT_TEST_SMOKE_BOOK=<out>`` reuses a smoke book already built into ``<out>`` (its
    ``run.json`` must say "ok"), to iterate on the tests that read it without re-running it.
    """
    reuse = os.environ.get("FREQKIT_TEST_SMOKE_BOOK")
    if reuse:
        out = Path(reuse)
        status = json.loads((out / "executed" / "smoke" / "run.json").read_text()).get("status")
        if status != "ok":
            pytest.fail(f"FREQKIT_TEST_SMOKE_BOOK={out}: its run.json says {status!r}, not 'ok'", pytrace=False)
        return BuiltBook(root=REPO, out=out, profile="smoke", proc=subprocess.CompletedProcess([], 0, "", ""))
    return _build(REPO, tmp_path_factory.mktemp("smoke-book"), "smoke")


@pytest.fixture(scope="session")
def fixture_book(tmp_path_factory) -> BuiltBook:
    """A tiny book of tests/fixtures/00_fixture_widgets.ipynb (n_frames=5) with the real config, built once."""
    root = _make_book_project(tmp_path_factory.mktemp("fixture-project"), [FIXTURES / "00_fixture_widgets.ipynb"],
                              extra_profile={"smoke": {"00_fixture_widgets": {"n_frames": 5}}})
    return _build(root, root / "_build", "smoke")


# --------------------------------------------------------------------------- HTTP server

@contextlib.contextmanager
def serve_directory(directory: Path):
    """Serve ``directory`` on http://127.0.0.1:<free port> from a thread; yields the base URL."""

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):  # keep the test output clean
            pass

    handler = functools.partial(Quiet, directory=str(directory))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


@pytest.fixture
def serve():
    """Serve folders over local HTTP for one test: ``base_url = serve(folder)``; stopped after the test."""
    with contextlib.ExitStack() as stack:
        yield lambda directory: stack.enter_context(serve_directory(Path(directory)))


# --------------------------------------------------------------------------- Chromium / Playwright

@pytest.fixture(scope="session")
def chromium_path() -> str:
    """Debian's chromium (or $FREQKIT_CHROMIUM); skipped outside CI when missing, a failure in CI."""
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
