"""freqkit.book.runner, the book pipeline: profiles, the runner (papermill), failure handling, the build.

Fast checks read the configuration; the `book`-marked tests execute notebooks and build
books (the real chapters under the smoke profile, and small fixture books).
"""
from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path

import nbformat
import pytest
import yaml

from freqkit.book import runner

REPO = Path(__file__).resolve().parents[2]  # the real book's project (also the `book_repo` fixture)
WIDGET_STATE = "application/vnd.jupyter.widget-state+json"
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
TOC_CHAPTERS = runner.chapters_in_toc(REPO)
EXPECTED_STEMS = ["01_images_as_frequencies", "02_which_frequencies", "03_frequency_attribution",
                  "04_trust_attributions", "05_low_vs_high_attacks", "06_fourier_heatmaps", "07_robust_models",
                  "08_frequency_defense", "09_what_we_learned"]


# --------------------------------------------------------------------------- configuration (fast)

def test_config_never_executes_and_vendors_its_javascript():
    cfg = yaml.safe_load((REPO / "_config.yml").read_text())
    assert cfg["execute"]["execute_notebooks"] == "off", "papermill executes the chapters; the book must not"
    assert cfg["only_build_toc_files"] is True
    sphinx = cfg["sphinx"]["config"]
    assert "freqkit.book" in cfg["sphinx"]["extra_extensions"]
    static = [REPO / p for p in sphinx["html_static_path"]]
    assert all(p.is_dir() and p.name != "_static" for p in static)
    for key in sphinx["nb_ipywidgets_js"]:
        assert "://" not in key, f"widget script {key} must be vendored, not loaded from a CDN"
        assert any((p / key).is_file() for p in static), f"{key} missing from {static}"
    assert "://" not in sphinx["mathjax_path"] and any((p / sphinx["mathjax_path"]).is_file() for p in static)
    assert not (REPO / "_static").exists() and not (REPO / "book" / "_static").exists(), \
        "JB1 adds every .js in a _static folder to every page: vendor JavaScript under book/_vendor/static"


def test_vendored_files_match_checksums():
    vendor = REPO / "book" / "_vendor"
    lines = (vendor / "SHA256SUMS").read_text().split("\n")
    listed = {}
    for line in filter(None, lines):
        digest, name = line.split(maxsplit=1)
        listed[name.strip()] = digest
    on_disk = {str(p.relative_to(vendor)) for p in (vendor / "static").rglob("*") if p.is_file()}
    assert on_disk == set(listed), "book/_vendor/static differs from SHA256SUMS: re-run book/_vendor/fetch.sh"
    for name, digest in listed.items():
        assert hashlib.sha256((vendor / name).read_bytes()).hexdigest() == digest, f"{name} was modified"


def test_toc_lists_existing_pages_in_book_folder():
    pages = runner.read_toc(REPO)
    assert pages[0] == REPO / "book" / "intro.md"
    for ch in TOC_CHAPTERS:
        assert ch.stem in EXPECTED_STEMS, f"{ch.stem}: chapter notebooks are named {EXPECTED_STEMS}"
    stems = [c.stem for c in TOC_CHAPTERS]
    assert stems == sorted(stems), "chapters appear in _toc.yml in their numbered order"


def test_every_chapter_notebook_is_in_the_toc():
    on_disk = {p.stem for p in (REPO / "book").glob("[0-9][0-9]_*.ipynb")}
    assert on_disk <= {c.stem for c in TOC_CHAPTERS}, "add new chapters to _toc.yml"


@pytest.mark.parametrize("chapter", TOC_CHAPTERS, ids=lambda p: p.stem)
def test_source_notebooks_carry_no_outputs(chapter):
    nb = nbformat.read(str(chapter), as_version=4)
    dirty = [i for i, c in enumerate(nb.cells) if c.cell_type == "code" and (c.outputs or c.execution_count)]
    assert not dirty, f"{chapter.name}: cells {dirty} have outputs; strip them (outputs live in executed copies)"
    assert "widgets" not in nb.metadata, f"{chapter.name}: strip the saved widget state from the source"


@pytest.mark.parametrize("profile", ["smoke", "cpu", "gpu"])
@pytest.mark.parametrize("chapter", TOC_CHAPTERS, ids=lambda p: p.stem)
def test_profiles_fit_every_chapter_parameters_cell(profile, chapter, tmp_path):
    """Each profile sets the shared parameters; each name exists in the chapter's parameters cell."""
    profiles = runner.load_profiles(REPO)
    known = {p.stem for p in (REPO / "book").glob("*.ipynb")}
    params = runner.chapter_parameters(profiles, profile, chapter.stem, root=REPO, out=tmp_path,
                                       known_stems=known)
    assert params["profile"] == profile
    assert set(runner.SHARED_PARAMETERS) <= set(params)
    assert Path(params["results_dir"]).is_absolute()
    runner.check_source(chapter, params)


def test_unknown_profile_is_a_clear_error(run_book):
    proc = run_book("--profile", "nosuch", "--no-build")
    assert proc.returncode == 2
    assert "unknown profile 'nosuch'" in proc.stderr
    assert "smoke" in proc.stderr and "cpu" in proc.stderr and "gpu" in proc.stderr


def test_unknown_chapter_selection_is_a_clear_error(run_book):
    proc = run_book("--profile", "smoke", "--chapters", "99", "--no-build")
    assert proc.returncode == 2
    assert "no chapter in _toc.yml matches '99'" in proc.stderr


def test_parameter_missing_from_parameters_cell_is_an_error(tmp_path, run_book, make_book_project, book_fixtures):
    root = make_book_project(tmp_path, [book_fixtures / "00_fixture_widgets.ipynb"],
                             extra_profile={"smoke": {"00_fixture_widgets": {"n_frame": 3}}})  # typo
    proc = run_book("--profile", "smoke", "--no-build", root=root)
    assert proc.returncode == 2, proc.stderr
    assert "not defined in its parameters cell: n_frame" in proc.stderr
    assert not (root / "_build" / "executed" / "smoke" / "book" / "00_fixture_widgets.ipynb").exists()


def test_profile_section_for_a_missing_notebook_is_an_error(tmp_path, run_book, make_book_project, book_fixtures):
    root = make_book_project(tmp_path, [book_fixtures / "00_fixture_widgets.ipynb"],
                             extra_profile={"smoke": {"00_fixture_widget": {"n_frames": 3}}})
    proc = run_book("--profile", "smoke", "--no-build", root=root)
    assert proc.returncode == 2
    assert "00_fixture_widget" in proc.stderr and "do not exist" in proc.stderr


def test_notebook_without_parameters_cell_is_an_error(tmp_path, run_book, make_book_project, book_fixtures):
    nb = nbformat.read(str(book_fixtures / "00_fixture_widgets.ipynb"), as_version=4)
    for cell in nb.cells:
        cell.metadata.pop("tags", None)
    src = tmp_path / "src"
    src.mkdir()
    nbformat.write(nb, str(src / "00_fixture_widgets.ipynb"))
    root = make_book_project(tmp_path / "proj", [src / "00_fixture_widgets.ipynb"])
    proc = run_book("--profile", "smoke", "--no-build", root=root)
    assert proc.returncode == 2
    assert "no cell tagged 'parameters'" in proc.stderr


def test_toc_entry_without_file_is_an_error(tmp_path, run_book, make_book_project, book_fixtures):
    root = make_book_project(tmp_path, [book_fixtures / "00_fixture_widgets.ipynb"])
    toc = yaml.safe_load((root / "_toc.yml").read_text())
    toc["chapters"].insert(0, {"file": "book/01_not_written_yet"})
    (root / "_toc.yml").write_text(yaml.safe_dump(toc))
    proc = run_book("--profile", "smoke", "--no-build", root=root)
    assert proc.returncode == 2
    assert "book/01_not_written_yet" in proc.stderr


def test_check_executed_rejects_kernel_only_widgets():
    def nb_with(model_name, dom_classes=()):
        nb = nbformat.v4.new_notebook()
        cell = nbformat.v4.new_code_cell("w")
        cell.outputs = [nbformat.v4.new_output("display_data", data={WIDGET_VIEW: {"model_id": "m1",
                                                                                   "version_major": 2,
                                                                                   "version_minor": 0}})]
        nb.cells = [cell]
        nb.metadata["widgets"] = {WIDGET_STATE: {"state": {"m1": {"model_name": model_name, "state": {
            "_dom_classes": list(dom_classes)}}}, "version_major": 2, "version_minor": 0}}
        return nb

    assert runner.check_executed(nb_with("IntSliderModel"), "x") == {"widget_views": 1, "widget_models": 1}
    with pytest.raises(runner.ChapterFailed, match="Play widget"):
        runner.check_executed(nb_with("PlayModel"), "x")
    with pytest.raises(runner.ChapterFailed, match="interact"):
        runner.check_executed(nb_with("VBoxModel", ["widget-interact"]), "x")
    no_state = nb_with("IntSliderModel")
    del no_state.metadata["widgets"]
    with pytest.raises(runner.ChapterFailed, match="no saved widget state"):
        runner.check_executed(no_state, "x")


def test_path_parameters_are_made_absolute(tmp_path):
    profiles = {"p": {"_all": {"data_root": None, "cache_dir": "rel/cache", "device": "cpu", "seed": 1,
                               "results_dir": "{out}/results/{profile}", "n": 3}}}
    params = runner.chapter_parameters(profiles, "p", "x", root=tmp_path, out=tmp_path / "o", known_stems={"x"})
    assert params == {"profile": "p", "data_root": None, "cache_dir": str(tmp_path / "rel" / "cache"),
                      "device": "cpu", "seed": 1, "results_dir": str(tmp_path / "o" / "results" / "p"), "n": 3}


def test_set_overrides_keep_yaml_types_and_beat_the_profile(tmp_path):
    over = runner.parse_overrides(["n=8", "datasets=[cifar10]", "eps={a: 0.5}", "cache_dir=c", "name=cpu"])
    assert over == {"n": 8, "datasets": ["cifar10"], "eps": {"a": 0.5}, "cache_dir": "c", "name": "cpu"}
    profiles = {"p": {"_all": {"data_root": None, "cache_dir": None, "device": "cpu", "seed": 1,
                               "results_dir": "r", "n": 3}}}
    params = runner.chapter_parameters(profiles, "p", "x", root=tmp_path, out=tmp_path / "o", known_stems={"x"},
                                       overrides=over)
    assert params["n"] == 8 and params["datasets"] == ["cifar10"]
    assert params["cache_dir"] == str(tmp_path / "c")  # a path override is resolved like a profile's
    for bad in (["n"], ["=3"], ["profile=gpu"], ["n=[1"]):
        with pytest.raises(runner.BookError, match="--set"):
            runner.parse_overrides(bad)


def test_set_override_of_an_unknown_parameter_is_refused_before_running(tmp_path, run_book, make_book_project,
                                                                            book_fixtures):
    root = make_book_project(tmp_path, [book_fixtures / "00_fixture_widgets.ipynb"])
    proc = run_book("--profile", "smoke", "--no-build", "--set", "typo_name=3", root=root)
    assert proc.returncode == 2, proc.stderr
    assert "not defined in its parameters cell: typo_name" in proc.stderr
    assert not (root / "_build" / "executed" / "smoke" / "book" / "00_fixture_widgets.ipynb").exists()


def test_run_json_is_written_atomically_and_leaves_no_temporary_files(tmp_path, monkeypatch):
    """The runner's run.json (RunRecord) is replaced whole by a rename, in run order, with no temporary file left."""
    path = tmp_path / "run.json"
    record = runner.RunRecord(path, "smoke")
    record.start(["python", "-m", "freqkit.book"])
    record.chapter("02_b", status="ok", parameters={"results_dir": tmp_path / "r"})  # a Path: written with str()
    record.chapter("01_a", status="ok")
    record.finish("ok")
    text = path.read_text()
    data = json.loads(text)
    assert text.endswith("\n") and data["status"] == "ok" and data["profile"] == "smoke"
    assert list(data["chapters"]) == ["02_b", "01_a"], "chapters stay in run order (keys not sorted)"
    assert data["chapters"]["02_b"]["parameters"]["results_dir"] == str(tmp_path / "r")
    assert [p.name for p in tmp_path.iterdir()] == ["run.json"]

    def crash(*args, **kwargs):
        raise OSError("simulated crash before the rename")

    monkeypatch.setattr(os, "replace", crash)  # the new text may reach run.json only by a rename
    monkeypatch.setattr(os, "rename", crash)
    with pytest.raises(OSError, match="simulated crash"):
        record.chapter("03_c", status="ok")
    monkeypatch.undo()
    assert path.read_text() == text, "an interrupted write changed run.json"
    assert [p.name for p in tmp_path.iterdir()] == ["run.json"], "a temporary file was left behind"
    assert list(runner.RunRecord(path, "smoke").data["chapters"]) == ["02_b", "01_a"]  # a rerun reads it back


# --------------------------------------------------------------------------- runs (slow)

def _assert_clean_executed_copy(path: Path, *, need_widgets: bool) -> nbformat.NotebookNode:
    assert path.is_file(), f"missing executed copy {path}"
    nb = nbformat.read(str(path), as_version=4)
    errors = [(i, o.get("ename"), o.get("evalue")) for i, c in enumerate(nb.cells)
              for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert not errors, f"{path.name}: error outputs {errors}"
    assert any("injected-parameters" in c.metadata.get("tags", []) for c in nb.cells), "papermill did not inject"
    views = [o["data"][WIDGET_VIEW]["model_id"] for c in nb.cells for o in c.get("outputs", [])
             if WIDGET_VIEW in o.get("data", {})]
    state = nb.metadata.get("widgets", {}).get(WIDGET_STATE, {}).get("state", {})
    if need_widgets:
        assert views, f"{path.name}: displays no widget"
    assert state or not views, f"{path.name}: widget state was not saved into the notebook metadata"
    assert set(views) <= set(state), f"{path.name}: widget views without saved state"
    return nb


def _no_remote_scripts(html_dir: Path) -> None:
    """No page loads a script or a stylesheet from another host (the book works offline)."""
    bad = []
    for page in html_dir.rglob("*.html"):
        text = page.read_text(errors="replace")
        refs = re.findall(r"<script[^>]*\bsrc=[\"']([^\"']+)", text)
        refs += re.findall(r"<link[^>]*\bhref=[\"']([^\"']+)[^>]*>", text)
        for ref in refs:
            if "://" in ref or ref.startswith("//"):
                bad.append((str(page.relative_to(html_dir)), ref))
    assert not bad, f"scripts/stylesheets loaded from other hosts (vendor them): {bad[:5]}"


@pytest.mark.book
@pytest.mark.slow
def test_fixture_book_executes_and_builds(fixture_book):
    nb = _assert_clean_executed_copy(fixture_book.executed("00_fixture_widgets"), need_widgets=True)
    injected = next(c for c in nb.cells if "injected-parameters" in c.metadata.get("tags", []))
    assert 'profile = "smoke"' in injected.source and "n_frames = 5" in injected.source
    record = fixture_book.record
    assert record["status"] == "ok" and record["profile"] == "smoke"
    ch = record["chapters"]["00_fixture_widgets"]
    assert ch["status"] == "ok" and ch["seconds"] > 0 and ch["widget_views"] == 1
    assert record["build"]["status"] == "ok" and record["build"]["seconds"] > 0
    assert [p.name for p in fixture_book.stage.glob(".run.json*")] == [], "run.json left temporary files"
    result = json.loads((fixture_book.out / "results" / "smoke" / "00_fixture_widgets.json").read_text())
    assert result["n_frames"] == 5
    assert Path(result["cwd"]) == fixture_book.stage / "book", "chapters run in their executed copy's folder"
    assert not list(fixture_book.root.glob("book/*.json")), "a chapter wrote into the sources"
    page = fixture_book.html / "book" / "00_fixture_widgets.html"
    text = page.read_text()
    assert WIDGET_STATE in text and "_static/widgets/embed-amd.js" in text
    assert "basis image" in text
    _no_remote_scripts(fixture_book.html)


@pytest.mark.book
@pytest.mark.slow
def test_failing_chapter_stops_the_run_and_builds_nothing(tmp_path, run_book, make_book_project, book_fixtures):
    root = make_book_project(tmp_path / "proj", [book_fixtures / "00_fixture_fails.ipynb",
                                                 book_fixtures / "00_fixture_widgets.ipynb"])
    out = tmp_path / "out"
    proc = run_book("--profile", "smoke", "--out", str(out), root=root)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    err = proc.stderr
    assert "chapter 00_fixture_fails failed in cell 3 of the source notebook" in err
    assert 'raise ValueError("deliberate failure in the fixture chapter")' in err  # the cell's source head
    assert "ValueError: deliberate failure in the fixture chapter" in err
    assert "the book was not built" in err
    stage = out / "executed" / "smoke"
    assert not (stage / "book" / "00_fixture_fails.ipynb").exists(), "a failed chapter reached the staging tree"
    assert (stage / "failed" / "book" / "00_fixture_fails.ipynb").is_file(), "the failed copy is kept for reading"
    assert not (stage / "book" / "00_fixture_widgets.ipynb").exists(), "chapters after the failure must not run"
    assert not (out / "html").exists() and not (out / "jb").exists(), "nothing may be built"
    record = json.loads((stage / "run.json").read_text())
    assert record["status"] == "failed" and record["failed_chapter"] == "00_fixture_fails"
    assert record["chapters"]["00_fixture_fails"]["status"] == "failed"
    # --build-only refuses to build from the failed run
    proc = run_book("--profile", "smoke", "--out", str(out), "--build-only", root=root)
    assert proc.returncode == 2 and "has no successful executed copy" in proc.stderr
    assert not (out / "html").exists()


@pytest.mark.book
@pytest.mark.slow
def test_sphinx_warnings_fail_the_build(tmp_path, run_book, make_book_project):
    root = make_book_project(tmp_path / "proj", [],
                             extra_pages={"broken": "# Broken\n\nSee {doc}`no_such_page`.\n"})
    out = tmp_path / "out"
    proc = run_book("--profile", "smoke", "--out", str(out), root=root)
    assert proc.returncode == 1, proc.stdout[-3000:]
    assert "jupyter-book build failed" in proc.stderr
    assert not (out / "html").exists()


@pytest.mark.book
@pytest.mark.slow
def test_smoke_profile_executes_every_chapter(smoke_book):
    assert TOC_CHAPTERS, "_toc.yml lists no chapter notebooks yet"
    record = smoke_book.record
    assert record["status"] == "ok"
    for ch in TOC_CHAPTERS:
        info = record["chapters"][ch.stem]
        assert info["status"] == "ok" and info["seconds"] > 0 and info["parameters"]["profile"] == "smoke"
        _assert_clean_executed_copy(smoke_book.executed(ch.stem), need_widgets=ch.stem.startswith("01_"))
        assert (smoke_book.html / "book" / f"{ch.stem}.html").is_file()
    _no_remote_scripts(smoke_book.html)


@pytest.mark.book
@pytest.mark.slow
def test_chapter_one_has_a_static_slider(smoke_book):
    ch1 = next((c for c in TOC_CHAPTERS if c.stem.startswith("01_")), None)
    assert ch1 is not None, "chapter 1 (book/01_images_as_frequencies.ipynb) is not in _toc.yml"
    nb = nbformat.read(str(smoke_book.executed(ch1.stem)), as_version=4)
    state = nb.metadata["widgets"][WIDGET_STATE]["state"]
    names = [m["model_name"] for m in state.values()]
    assert "IntSliderModel" in names and "StackModel" in names and "LinkModel" in names, names
