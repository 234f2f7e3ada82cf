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


def _console_watch(page):
    """Console errors (not warnings or logs) of a page, collected as they come."""
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(f"pageerror: {e}"))
    return errors


@pytest.mark.parametrize("stem", ["02_which_frequencies", "06_fourier_heatmaps"])
def test_chapter_shows_static_figures(browser, serve, smoke_book, stem):
    """Figures are outputs of the book, drawn inline even when the caller set MPLBACKEND=Agg (CI does)."""
    base = serve(smoke_book.html)
    page = browser.new_page(viewport={"width": 1366, "height": 900})
    try:
        page.goto(f"{base}/book/{stem}.html", wait_until="load")
        imgs = page.locator(".cell_output img")
        assert imgs.count() >= 1, f"{stem}: no figure on the page"
        widths = [imgs.nth(i).evaluate("el => el.naturalWidth") for i in range(imgs.count())]
        assert min(widths) > 100, f"{stem}: a figure did not load (natural widths {widths})"
    finally:
        page.close()


@pytest.mark.parametrize("width", [390, 1366], ids=["phone", "desktop"])
def test_navigation_and_search_work_without_console_errors(browser, serve, smoke_book, width):
    """The primary sidebar opens on a phone and closes on a desktop from its toggle; search finds pages."""
    base = serve(smoke_book.html)
    page = browser.new_page(viewport={"width": width, "height": 900})
    errors = _console_watch(page)
    try:
        page.goto(f"{base}/book/02_which_frequencies.html", wait_until="networkidle")
        sidebar = page.locator(".bd-sidebar-primary")
        before = sidebar.is_visible()
        assert before == (width > 960), f"sidebar visible={before} at {width} px before any click"
        toggles = page.locator("button.primary-toggle")
        visible = [i for i in range(toggles.count()) if toggles.nth(i).is_visible()]
        assert len(visible) == 1, f"expected one visible sidebar toggle, found {len(visible)} of {toggles.count()}"
        toggles.nth(visible[0]).click()
        page.wait_for_timeout(700)
        assert sidebar.is_visible() != before, "the sidebar toggle did nothing"
        page.goto(f"{base}/search.html?q=frequency", wait_until="networkidle")
        page.wait_for_timeout(1500)
        assert page.locator("#search-results li").count() >= 3, "search found nothing"
        assert not errors, f"console errors: {errors}"
    finally:
        page.close()


def test_landing_page_opens_with_the_verdicts(browser, serve, smoke_book):
    """The landing page's first table is the generated one: every hypothesis, its verdicts, its chapter."""
    from freqkit import hypotheses

    base = serve(smoke_book.html)
    page = browser.new_page(viewport={"width": 1366, "height": 900})
    try:
        page.goto(f"{base}/index.html", wait_until="load")
        # index.html forwards to the landing page with a meta refresh: wait until that page has
        # loaded whole, or the table is read while it is still being parsed (one row of it)
        page.wait_for_url("**/intro.html")
        page.wait_for_load_state("load")
        table = page.locator("table").first
        text = table.inner_text()
        for hid in hypotheses.HYPOTHESES:
            assert hid in text, f"{hid} missing from the landing table"
        assert "not run" not in text, "the landing table says a hypothesis was not run"
        assert "smoke" in page.locator("article").inner_text(), "the page does not say which profile built it"
        links = table.locator("a")
        assert links.count() >= len(hypotheses.HYPOTHESES), "hypotheses are not linked to their chapters"
    finally:
        page.close()


def test_widget_frames_stay_legible_on_a_phone(browser, serve, smoke_book):
    """A wide widget frame keeps its size on a 390 px screen (it scrolls sideways inside the widget)."""
    base = serve(smoke_book.html)
    page = browser.new_page(viewport={"width": 390, "height": 900})
    try:
        page.goto(f"{base}/book/01_images_as_frequencies.html", wait_until="load")
        img = page.locator(".freqkit-slider img").first
        img.wait_for(state="visible", timeout=30_000)
        shown, natural = img.evaluate("el => [el.getBoundingClientRect().width, el.naturalWidth]")
        assert shown >= min(natural, 560) - 1, f"frame shrunk to {shown:.0f} px of {natural} px"
        assert page.evaluate("document.documentElement.scrollWidth") <= 390 + 1, "the page overflows the phone"
    finally:
        page.close()
