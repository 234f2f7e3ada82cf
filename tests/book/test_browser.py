"""The built book in a real browser (headless Chromium via Playwright, offline).

Serves the built HTML on 127.0.0.1, opens a page with a slider, moves the slider with the
keyboard, and checks that the visible image changed, that the page threw no JavaScript error
and that nothing was requested from another host (the book must work offline).
"""
from __future__ import annotations

from urllib.parse import urlparse

import pytest

from freqkit.book import runner

pytestmark = [pytest.mark.browser, pytest.mark.book, pytest.mark.slow]


class PageWatch:
    """Collects page errors, failed requests and requests to other hosts."""

    def __init__(self, page):
        self.errors: list[str] = []
        self.failed: list[str] = []
        self.remote: list[str] = []
        page.on("pageerror", lambda exc: self.errors.append(str(exc)))
        page.on("requestfailed", lambda req: self.failed.append(f"{req.url} ({req.failure})"))
        page.on("response", lambda resp: self.failed.append(f"{resp.url} (HTTP {resp.status})")
                if resp.status >= 400 else None)
        page.on("request", self._request)

    def _request(self, req):
        host = urlparse(req.url).hostname
        if req.url.startswith(("data:", "blob:", "about:")) or host in ("127.0.0.1", "localhost"):
            return
        self.remote.append(req.url)

    def check(self):
        assert not self.errors, f"JavaScript errors on the page: {self.errors}"
        assert not self.remote, f"requests to other hosts (the book must work offline): {self.remote}"
        assert not self.failed, f"failed requests: {self.failed}"


def _visible_frame(slider_box):
    img = slider_box.locator(".widget-image:visible, img:visible")
    return img.first.get_attribute("src"), img.first.screenshot()


def move_first_slider(page, url):
    """Open url, find the first freqkit slider, press ArrowRight on its handle; return
    (before, after) as (img src, screenshot bytes) of the visible frame, and the captions."""
    page.goto(url, wait_until="load")
    box = page.locator(".freqkit-slider").first
    box.wait_for(state="visible", timeout=30_000)  # rendered by the widget manager from saved state
    handle = box.locator(".widget-slider [role=slider], .widget-slider .noUi-handle").first
    handle.wait_for(state="visible", timeout=10_000)
    box.locator("img").first.wait_for(state="visible", timeout=10_000)
    before = _visible_frame(box)
    value_before = handle.get_attribute("aria-valuenow")
    handle.focus()
    page.keyboard.press("ArrowRight")
    page.wait_for_function(
        "([el, v]) => el.getAttribute('aria-valuenow') !== v", arg=[handle.element_handle(), value_before],
        timeout=5_000)
    page.wait_for_timeout(300)
    after = _visible_frame(box)
    return before, after, (value_before, handle.get_attribute("aria-valuenow"))


def _check_slider_moves(browser, serve, html_dir, page_path):
    assert (html_dir / page_path).is_file(), f"{page_path} was not built"
    base = serve(html_dir)
    page = browser.new_page()
    try:
        watch = PageWatch(page)
        before, after, values = move_first_slider(page, f"{base}/{page_path}")
        assert values[0] != values[1], f"the slider did not move: {values}"
        assert before[0] != after[0], "the visible frame is the same <img> after moving the slider"
        assert before[1] != after[1], "the visible frame looks the same after moving the slider"
        page.wait_for_timeout(500)  # late errors (fonts, MathJax)
        watch.check()
    finally:
        page.close()


def test_fixture_slider_changes_the_visible_image(browser, serve, fixture_book):
    _check_slider_moves(browser, serve, fixture_book.html, "book/00_fixture_widgets.html")


def test_chapter_one_slider_changes_the_visible_image(browser, serve, smoke_book, book_repo):
    ch1 = next((c for c in runner.chapters_in_toc(book_repo) if c.stem.startswith("01_")), None)
    assert ch1 is not None, "chapter 1 is not in _toc.yml yet"
    _check_slider_moves(browser, serve, smoke_book.html, f"book/{ch1.stem}.html")


def test_every_page_loads_without_errors_or_remote_requests(browser, serve, smoke_book):
    pages = sorted(p.relative_to(smoke_book.html).as_posix() for p in (smoke_book.html / "book").glob("*.html"))
    assert pages
    base = serve(smoke_book.html)
    for path in pages:
        page = browser.new_page()
        try:
            watch = PageWatch(page)
            page.goto(f"{base}/{path}", wait_until="load")
            page.wait_for_timeout(1000)
            try:
                watch.check()
            except AssertionError as exc:
                raise AssertionError(f"{path}: {exc}") from None
        finally:
            page.close()
