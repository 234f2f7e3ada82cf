"""freqkit.book.runner, the book pipeline: profiles, the runner (papermill), failure handling, the build.

Fast checks read the configuration; the `book`-marked tests execute notebooks and build
books (the real chapters under the smoke profile, and small fixture books).
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import signal
import subprocess
import sys
import time
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


def test_timeout_must_be_positive(capsys):
    """``--timeout -5`` (or 0) is refused, naming --timeout: papermill would take it as "no limit"."""
    for bad in ("-5", "0"):
        with pytest.raises(SystemExit) as exc:
            runner.parse_args(["--profile", "smoke", "--timeout", bad])
        assert exc.value.code == 2
        err = capsys.readouterr().err
        assert "--timeout" in err and "positive" in err, err
    assert runner.parse_args(["--profile", "smoke", "--timeout", "30"]).timeout == 30
    assert runner.parse_args(["--profile", "smoke"]).timeout is None


def test_run_json_gets_the_permissions_of_a_plain_open(tmp_path):
    """run.json is 0o666 less the umask (not mkstemp's 0o600), like any file the user writes."""
    umask = os.umask(0o022)
    try:
        record = runner.RunRecord(tmp_path / "run.json", "smoke")
        record.start(["x"])
        assert (tmp_path / "run.json").stat().st_mode & 0o777 == 0o644
        os.umask(0o002)
        record.finish("ok")
        assert (tmp_path / "run.json").stat().st_mode & 0o777 == 0o664
    finally:
        os.umask(umask)


def test_path_parameters_substitute_only_out_profile_and_root(tmp_path):
    """Placeholders are substituted, never formatted: no attribute look-ups, no other brace expression."""
    def params(value, out=tmp_path / "o"):
        profiles = {"p": {"_all": {"data_root": None, "cache_dir": value, "device": "cpu", "seed": 1,
                                   "results_dir": "r", "note": "{out.x} is not a path"}}}
        return runner.chapter_parameters(profiles, "p", "x", root=tmp_path, out=out, known_stems={"x"})

    assert params("{root}/c/{profile}")["cache_dir"] == str(tmp_path / "c" / "p")
    assert params("{out}/c-{profile}")["cache_dir"] == str(tmp_path / "o" / "c-p")
    assert params("{out}/c")["note"] == "{out.x} is not a path"  # only path parameters are substituted
    braces = tmp_path / "o{x}"  # braces in a substituted value are kept as they are
    assert params("{out}/cache", out=braces)["cache_dir"] == str(braces / "cache")
    for bad in ("{out.__class__.__mro__}", "{out!r}", "{out:>40}", "{0}", "{}", "{OUT}", "{{out}}", "a}b", "{out"):
        with pytest.raises(runner.BookError) as exc:
            params(bad)
        assert "parameter 'cache_dir'" in str(exc.value) and repr(bad) in str(exc.value)
        assert "only {out}, {profile} and {root}" in str(exc.value)


def test_set_path_parameter_with_attribute_lookup_is_refused(tmp_path, run_book, make_book_project, book_fixtures):
    root = make_book_project(tmp_path, [book_fixtures / "00_fixture_widgets.ipynb"])
    proc = run_book("--profile", "smoke", "--no-build", "--set", "cache_dir='{out.__class__.__mro__}'", root=root)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "parameter 'cache_dir'" in proc.stderr and "{out.__class__.__mro__}" in proc.stderr
    assert "<class" not in proc.stderr  # nothing of the expanded look-up is shown
    assert not (root / "_build" / "executed").exists(), "nothing may run"


def test_parse_args_works_without_docstrings(tmp_path):
    """``python -OO`` strips docstrings: the command line must not be built from ``__doc__``."""
    code = "from freqkit.book import runner; print(runner.parse_args(['--profile', 'smoke']).profile)"
    proc = subprocess.run([sys.executable, "-OO", "-c", code], capture_output=True, text=True, cwd=tmp_path,
                          env={**os.environ, "PYTHONPATH": str(REPO)}, timeout=300)
    assert proc.returncode == 0 and proc.stdout.strip().endswith("smoke"), proc.stderr[-2000:]
    proc = subprocess.run([sys.executable, "-OO", "-m", "freqkit.book", "--help"], capture_output=True, text=True,
                          cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(REPO)}, timeout=300)
    assert proc.returncode == 0 and "--profile" in proc.stdout, proc.stderr[-2000:]


def test_root_without_config_or_toc_is_a_usage_error(tmp_path, make_book_project, book_fixtures, capsys,
                                                       monkeypatch):
    """``--root`` at a folder without _config.yml (or _toc.yml, or no folder at all) exits 2 naming the file."""
    monkeypatch.setenv("PYTHONPATH", os.environ.get("PYTHONPATH", ""))  # run() changes it
    root = make_book_project(tmp_path / "proj", [book_fixtures / "00_fixture_widgets.ipynb"])
    (root / "_config.yml").unlink()
    assert runner.main(["--profile", "smoke", "--no-build", "--root", str(root)]) == 2
    err = capsys.readouterr().err
    assert "--root" in err and str(root / "_config.yml") in err, err
    assert not (root / "_build").exists()
    assert runner.main(["--profile", "smoke", "--no-build", "--root", str(tmp_path / "nowhere")]) == 2
    err = capsys.readouterr().err
    assert "--root" in err and str(tmp_path / "nowhere") in err, err


def test_find_root_needs_both_files_also_at_the_package_root(tmp_path, monkeypatch):
    """The fallback (the folder above the package) is taken only when it holds _toc.yml and _config.yml."""
    fake = tmp_path / "pkgroot"
    (fake / "freqkit" / "book").mkdir(parents=True)
    (fake / "_toc.yml").write_text("root: intro\n")
    monkeypatch.setattr(runner, "__file__", str(fake / "freqkit" / "book" / "runner.py"))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    with pytest.raises(runner.BookError, match="_config.yml"):
        runner.find_root(elsewhere)
    (fake / "_config.yml").write_text("title: x\n")
    assert runner.find_root(elsewhere) == fake.resolve()
    (elsewhere / "_toc.yml").write_text("root: intro\n")
    (elsewhere / "_config.yml").write_text("title: x\n")
    assert runner.find_root(elsewhere / ".") == elsewhere.resolve()


def test_changed_inputs_of_a_results_file(tmp_path):
    """A summary's ``setting["inputs"]`` ({stem: SHA-256, or None: not there}) is compared with the files now."""
    def sha(p):
        return hashlib.sha256(p.read_bytes()).hexdigest()

    (tmp_path / "a.json").write_text('{"v": 1}')
    (tmp_path / "b.json").write_text('{"v": 2}')
    inputs = {"a": sha(tmp_path / "a.json"), "b": sha(tmp_path / "b.json"), "c": None}
    summary = tmp_path / "s.json"
    summary.write_text(json.dumps({"chapter": "s", "setting": {"inputs": inputs}, "results": {}}))
    assert runner.changed_inputs(summary) == {}
    (tmp_path / "a.json").write_text('{"v": 3}')
    (tmp_path / "b.json").unlink()
    (tmp_path / "c.json").write_text("{}")
    changed = runner.changed_inputs(summary)
    assert list(changed) == ["a", "b", "c"]
    assert "changed" in changed["a"] and "missing" in changed["b"] and "not there" in changed["c"]
    for no_inputs in ({"setting": {}}, {"results": 1}, [1, 2]):
        summary.write_text(json.dumps(no_inputs))
        assert runner.changed_inputs(summary) == {}
    summary.write_text("{not json")
    assert runner.changed_inputs(summary) == {}
    assert runner.changed_inputs(tmp_path / "none.json") == {}
    summary.write_text(json.dumps({"setting": {"inputs": ["a"]}}))
    with pytest.raises(runner.BookError, match="inputs"):
        runner.changed_inputs(summary)


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
def test_jobs_run_chapters_side_by_side_and_a_summary_after_them(tmp_path, run_book, make_book_project,
                                                                   book_fixtures):
    """--jobs 2: two chapters run at the same time; the summary (chapter 9's kind) starts after both and reads
    the results they finished; each kernel gets OMP_NUM_THREADS = cores // 2."""
    root = make_book_project(tmp_path / "proj", [book_fixtures / "00_fixture_results.ipynb",
                                                 book_fixtures / "00_fixture_widgets.ipynb",
                                                 book_fixtures / "00_fixture_reads.ipynb"],
                             extra_profile={"smoke": {"00_fixture_results": {"sleep_s": 4.0}}})
    assert runner.is_summary(root / "book" / "00_fixture_reads.ipynb")
    assert not runner.is_summary(root / "book" / "00_fixture_results.ipynb")
    # the committed record says the widgets chapter ran longer last time: it starts first
    (root / "book" / "measured").mkdir(exist_ok=True)
    (root / "book" / "measured" / "smoke.json").write_text(json.dumps({"profile": "smoke", "rows": [], "chapters": {
        "00_fixture_widgets": {"seconds": 30.0}, "00_fixture_results": {"seconds": 3.0},
        "00_fixture_reads": {"seconds": 99.0}}}))
    assert runner.recorded_seconds(root, "smoke")["00_fixture_widgets"] == 30.0
    assert runner.recorded_seconds(root, "gpu") == {}
    out = tmp_path / "out"
    proc = run_book("--profile", "smoke", "--out", str(out), "--no-build", "--jobs", "2", root=root)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = proc.stdout.splitlines()

    def at(text):
        return next(i for i, line in enumerate(lines) if text in line)

    assert ("order: 00_fixture_widgets (30 s last run), 00_fixture_results (3 s last run), "
            "00_fixture_reads (99 s last run)") in proc.stdout              # longest first, the summary last
    # the second chapter started while the first (asleep for 4 s) still ran; the summary only after both ended
    assert at("00_fixture_widgets: executing") < at("00_fixture_results: ok"), proc.stdout
    assert at("00_fixture_reads: executing") > max(at("00_fixture_results: ok"), at("00_fixture_widgets: ok"))
    assert f"OMP_NUM_THREADS={max(1, (os.cpu_count() or 1) // 2)} per kernel" in proc.stdout
    results = out / "results" / "smoke"
    summary = json.loads((results / "00_fixture_reads.json").read_text())
    digest = hashlib.sha256((results / "00_fixture_results.json").read_bytes()).hexdigest()
    assert summary["setting"]["inputs"] == {"00_fixture_results": digest}
    record = json.loads((out / "executed" / "smoke" / "run.json").read_text())
    assert record["status"] == "executed"
    assert {k: v["status"] for k, v in record["chapters"].items()} == {
        "00_fixture_results": "ok", "00_fixture_widgets": "ok", "00_fixture_reads": "ok"}
    assert all(v["started"] <= v["finished"] for v in record["chapters"].values())


@pytest.mark.book
@pytest.mark.slow
def test_jobs_start_nothing_after_a_failure(tmp_path, run_book, make_book_project, book_fixtures):
    root = make_book_project(tmp_path / "proj", [book_fixtures / "00_fixture_fails.ipynb",
                                                 book_fixtures / "00_fixture_results.ipynb",
                                                 book_fixtures / "00_fixture_reads.ipynb"])
    out = tmp_path / "out"
    proc = run_book("--profile", "smoke", "--out", str(out), "--no-build", "--jobs", "2", root=root)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "00_fixture_reads: executing" not in proc.stdout            # the summary never started
    assert "the remaining chapters were not run" in proc.stderr
    record = json.loads((out / "executed" / "smoke" / "run.json").read_text())
    assert record["status"] == "failed" and record["failed_chapter"] == "00_fixture_fails"
    assert "00_fixture_reads" not in record["chapters"]


def test_jobs_must_be_a_positive_integer(capsys):
    for bad in ("0", "-1", "two"):
        with pytest.raises(SystemExit) as exc:
            runner.parse_args(["--profile", "smoke", "--jobs", bad])
        assert exc.value.code == 2 and "--jobs" in capsys.readouterr().err
    assert runner.parse_args(["--profile", "smoke"]).jobs == 1


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


def _wait_for(predicate, proc: subprocess.Popen, what: str, timeout: float = 300.0) -> None:
    """Poll ``predicate()`` until it holds; fail (with the runner's output) if ``proc`` ends first or time runs out."""
    t0 = time.monotonic()
    while not predicate():
        if proc.poll() is not None:
            out, err = proc.communicate()
            pytest.fail(f"the runner exited ({proc.returncode}) before {what}:\n{out[-3000:]}\n{err[-3000:]}")
        if time.monotonic() - t0 > timeout:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.2)


def _partial_has(stage: Path, stem: str, text: str):
    partial = stage / ".partial" / "book" / f"{stem}.ipynb"
    return lambda: partial.is_file() and text in partial.read_text(errors="replace")


@pytest.mark.book
@pytest.mark.slow
def test_results_of_a_failed_chapter_do_not_count(tmp_path, run_book, make_book_project, book_fixtures):
    """A chapter's results file counts only when the chapter finished: one written by a run that then failed is
    moved aside (and said so), and an older run's file is removed before the chapter starts."""
    root = make_book_project(tmp_path / "proj", [book_fixtures / "00_fixture_results.ipynb",
                                                 book_fixtures / "00_fixture_fails.ipynb"])
    out = tmp_path / "out"
    results, stage = out / "results" / "smoke", out / "executed" / "smoke"
    # 1. the chapter writes its results, then fails: the file is set aside
    proc = run_book("--profile", "smoke", "--out", str(out), "--no-build", "--chapters", "00_fixture_results",
                    "--set", "fail=true", "--set", "value=7", root=root)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "deliberate failure after the results cell" in proc.stderr
    assert not (results / "00_fixture_results.json").exists(), "a failed run's results look valid"
    aside = stage / "failed" / "results" / "00_fixture_results.json"
    assert json.loads(aside.read_text())["results"] == {"value": 7}, "the failed run's results are kept aside"
    assert str(aside) in proc.stderr and "does not count" in proc.stderr
    info = json.loads((stage / "run.json").read_text())["chapters"]["00_fixture_results"]
    assert info["status"] == "failed" and info["results_set_aside"] == str(aside)
    # 2. a chapter that fails before writing its results: an older run's file must not survive
    stale = results / "00_fixture_fails.json"
    stale.write_text(json.dumps({"chapter": "00_fixture_fails", "setting": {}, "results": {"old": True}}))
    proc = run_book("--profile", "smoke", "--out", str(out), "--no-build", "--chapters", "00_fixture_fails",
                    root=root)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert not stale.exists(), "an older run's results survived a failed re-run"
    assert str(stale) in proc.stdout + proc.stderr  # the removal is said
    assert not (stage / "failed" / "results" / "00_fixture_fails.json").exists(), "it was not from this run"
    # 3. a successful re-run publishes again and clears what was set aside
    proc = run_book("--profile", "smoke", "--out", str(out), "--no-build", "--chapters", "00_fixture_results",
                    root=root)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert json.loads((results / "00_fixture_results.json").read_text())["results"] == {"value": 1}
    assert not aside.exists()


@pytest.mark.book
@pytest.mark.slow
def test_ctrl_c_marks_the_run_and_the_chapter_interrupted(tmp_path, run_book, start_book, make_book_project,
                                                          book_fixtures):
    root = make_book_project(tmp_path / "proj", [book_fixtures / "00_fixture_results.ipynb"])
    out = tmp_path / "out"
    stage, results = out / "executed" / "smoke", out / "results" / "smoke"
    stem = "00_fixture_results"
    proc = run_book("--profile", "smoke", "--out", str(out), "--no-build", root=root)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert json.loads((stage / "run.json").read_text())["chapters"][stem]["status"] == "ok"
    assert (stage / "book" / f"{stem}.ipynb").is_file()

    p = start_book("--profile", "smoke", "--out", str(out), "--no-build", "--set", "sleep_s=120", root=root)
    _wait_for(_partial_has(stage, stem, '"wrote '), p, "the chapter wrote its results")  # now in the sleep cell
    record = json.loads((stage / "run.json").read_text())
    assert not (stage / "book" / f"{stem}.ipynb").exists(), "the old executed copy is deleted before the run"
    assert record["status"] == "running"
    assert record["chapters"][stem]["status"] == "running", "the record says 'ok' but the executed copy is gone"
    p.send_signal(signal.SIGINT)
    stdout, stderr = p.communicate(timeout=120)
    assert p.returncode == 130, stdout + stderr
    assert "interrupted" in stderr
    record = json.loads((stage / "run.json").read_text())
    assert record["status"] == "interrupted" and record["finished"], record
    info = record["chapters"][stem]
    assert info["status"] == "interrupted" and info["seconds"] > 0, info
    assert not (stage / "book" / f"{stem}.ipynb").exists()
    assert not (results / f"{stem}.json").exists(), "an interrupted run's results look valid"
    assert (stage / "failed" / "results" / f"{stem}.json").is_file()
    assert info["results_set_aside"] == str(stage / "failed" / "results" / f"{stem}.json")
    assert (stage / "failed" / "book" / f"{stem}.ipynb").is_file(), "the interrupted copy is kept for reading"
    assert not list((stage / ".partial").rglob("*.ipynb")), "the partial copy is left in .partial"
    # nothing can be built from the interrupted run
    proc = run_book("--profile", "smoke", "--out", str(out), "--build-only", root=root)
    assert proc.returncode == 2 and "has no successful executed copy" in proc.stderr
    assert json.loads((stage / "run.json").read_text())["status"] == "error"


@pytest.mark.book
@pytest.mark.slow
def test_a_second_runner_on_the_same_out_and_profile_is_refused(tmp_path, run_book, start_book, make_book_project,
                                                                book_fixtures):
    root = make_book_project(tmp_path / "proj", [book_fixtures / "00_fixture_results.ipynb"])
    out = tmp_path / "out"
    stage = out / "executed" / "smoke"
    first = start_book("--profile", "smoke", "--out", str(out), "--no-build", "--set", "sleep_s=120", root=root)
    _wait_for(_partial_has(stage, "00_fixture_results", '"wrote '), first, "the first runner's chapter")
    before = (stage / "run.json").read_bytes()
    t0 = time.monotonic()
    second = run_book("--profile", "smoke", "--out", str(out), "--no-build", "--set", "value=2", root=root,
                      timeout=120)
    assert second.returncode == 2, second.stdout + second.stderr
    assert str(stage / "run.lock") in second.stderr and f"pid {first.pid}" in second.stderr, second.stderr
    assert time.monotonic() - t0 < 60, "the second runner must give up at once, not wait"
    assert (stage / "run.json").read_bytes() == before, "the second runner wrote run.json"
    assert json.loads((out / "results" / "smoke" / "00_fixture_results.json").read_text())["results"] == {"value": 1}
    # --build-only also takes the lock; another profile has its own
    assert run_book("--profile", "smoke", "--out", str(out), "--build-only", root=root).returncode == 2
    first.send_signal(signal.SIGINT)
    first.communicate(timeout=120)
    assert first.returncode == 130
    proc = run_book("--profile", "smoke", "--out", str(out), "--no-build", root=root)  # the lock was released
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.book
@pytest.mark.slow
def test_build_refuses_a_summary_older_than_its_inputs(tmp_path, run_book, make_book_project, book_fixtures):
    """A chapter that summarises others (chapter 9) stores the SHA-256 of every results file it read; re-running
    one of those chapters makes the summary stale, and the build refuses it, naming both."""
    root = make_book_project(tmp_path / "proj", [book_fixtures / "00_fixture_results.ipynb",
                                                 book_fixtures / "00_fixture_reads.ipynb"])
    out = tmp_path / "out"
    results = out / "results" / "smoke"
    proc = run_book("--profile", "smoke", "--out", str(out), "--no-build", root=root)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    summary = json.loads((results / "00_fixture_reads.json").read_text())
    digest = hashlib.sha256((results / "00_fixture_results.json").read_bytes()).hexdigest()
    assert summary["setting"]["inputs"] == {"00_fixture_results": digest}
    assert runner.changed_inputs(results / "00_fixture_reads.json") == {}
    proc = run_book("--profile", "smoke", "--out", str(out), "--no-build", "--chapters", "00_fixture_results",
                    "--set", "value=2", root=root)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    proc = run_book("--profile", "smoke", "--out", str(out), "--build-only", root=root)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    err = proc.stderr
    assert "00_fixture_reads" in err and "00_fixture_results" in err and "re-run" in err, err
    assert not (out / "html").exists()


@pytest.mark.book
@pytest.mark.slow
def test_chapter_nine_stores_the_sha256_of_every_results_file_it_read(tmp_path, run_book, make_book_project):
    """The real chapter 9, run alone on a stored result of chapter 2: its setting records what it read."""
    import freqkit as fk

    root = make_book_project(tmp_path / "proj", [REPO / "book" / "09_what_we_learned.ipynb"])
    out = tmp_path / "out"
    results = out / "results" / "smoke"
    e = {"mean": 0.3, "ci_low": 0.2, "ci_high": 0.4, "n_images": 10}
    verdict = fk.hypotheses.judge("H1", {"high_pass_accuracy": e, "low_pass_loss": e, "residual_invisible": {
        "mean": -0.3, "ci_low": -0.4, "ci_high": -0.2, "n_images": 10}}, {"commit": "x", "profile": "smoke"}, "cifar10")
    ch2 = fk.save_results(results, "02_which_frequencies", {"verdicts": {"cifar10": verdict}}, {"profile": "smoke"})
    proc = run_book("--profile", "smoke", "--out", str(out), "--no-build", root=root)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    stored = json.loads((results / "09_what_we_learned.json").read_text())
    inputs = stored["setting"]["inputs"]
    assert inputs["02_which_frequencies"] == hashlib.sha256(ch2.read_bytes()).hexdigest()
    assert set(inputs) == set(stored["setting"]["chapters"]) and inputs["03_frequency_attribution"] is None
    assert runner.changed_inputs(results / "09_what_we_learned.json") == {}
    fk.save_results(results, "03_frequency_attribution", {}, {"profile": "smoke"})  # a chapter run since
    assert list(runner.changed_inputs(results / "09_what_we_learned.json")) == ["03_frequency_attribution"]



FIGURE_CALL = re.compile(r"\bplt\.subplots\(|\bviz\.(show_images|basis_grid|plot_curves|band_heatmap_grid|"
                         r"heatmap_report_figure|deletion_insertion_plot|randomisation_plot|ground_truth_bars|"
                         r"completeness_histogram|band_profile_plot|attribution_map)\(")


def test_every_figure_cell_of_every_chapter_has_an_image(smoke_book):
    """A cell that draws a figure (and does not turn it into widget frames) shows an image in the executed copy.

    The test process itself runs with whatever MPLBACKEND the caller set (CI: Agg); the runner
    gives the kernels the inline backend, so the figures must be there.
    """
    missing = []
    for nb_path in sorted((smoke_book.stage / "book").glob("*.ipynb")):
        nb = json.loads(nb_path.read_text())
        for i, cell in enumerate(nb["cells"]):
            src = "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]
            if cell["cell_type"] != "code" or not FIGURE_CALL.search(src) or "figure_to_png" in src:
                continue
            if "skipped" in json.dumps(cell.get("outputs", [])):
                continue  # an optional section (ImageNet without weights) that says it was skipped
            if not any("image/png" in o.get("data", {}) for o in cell.get("outputs", [])):
                missing.append(f"{nb_path.stem} cell {i}")
    assert not missing, f"figure cells without an image: {missing}"


def test_published_pages_hold_no_log_and_no_local_path(smoke_book):
    """Executed copies: no stderr output, no absolute path of the build machine in any output."""
    bad = []
    places = [str(smoke_book.out), str(REPO), str(Path.home())]
    if os.environ.get("FREQKIT_DATA"):
        places.append(os.environ["FREQKIT_DATA"])
    for nb_path in sorted((smoke_book.stage / "book").glob("*.ipynb")):
        nb = json.loads(nb_path.read_text())
        for i, cell in enumerate(nb["cells"]):
            for o in cell.get("outputs", []):
                if o.get("output_type") == "stream" and o.get("name") == "stderr":
                    bad.append(f"{nb_path.stem} cell {i}: stderr output")
                text = json.dumps(o.get("text", "")) + json.dumps({k: v for k, v in o.get("data", {}).items()
                                                                   if k.startswith("text/")})
                for place in places:
                    if place and place != "/" and place in text:
                        bad.append(f"{nb_path.stem} cell {i}: {place}")
    assert not bad, bad[:10]


def test_present_folds_code_removes_parameters_and_logs_and_scrubs_paths(tmp_path):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell("# Title"),
                nbformat.v4.new_code_cell("profile = 'cpu'", metadata={"tags": ["parameters"]}),
                nbformat.v4.new_code_cell("profile = 'smoke'", metadata={"tags": ["injected-parameters"]}),
                nbformat.v4.new_code_cell("print(1)", outputs=[
                    nbformat.v4.new_output("stream", name="stdout", text=f"saved {tmp_path}/out/results/x.json\n"),
                    nbformat.v4.new_output("stream", name="stderr", text="a warning\n")]),
                nbformat.v4.new_code_cell("x", metadata={"tags": ["show-input"]})]
    info = runner.present(nb, {"profile": "smoke", "results_dir": str(tmp_path / "out" / "results")},
                          {"out": tmp_path / "out"})
    tags = [c.metadata.get("tags", []) for c in nb.cells]
    assert "freqkit-profile" in tags[1] and "smoke" in nb.cells[1].source and "<out>/results" in nb.cells[1].source
    assert "remove-cell" in tags[2] and "remove-cell" in tags[3]
    assert "hide-input" in tags[4] and "hide-input" not in tags[5]
    outs = nb.cells[4].outputs
    assert [o.name for o in outs] == ["stdout"] and outs[0].text == "saved <out>/results/x.json\n"
    assert info == {"stderr": ["a warning\n"], "folded": 1, "removed": 2}
    assert str(tmp_path) not in json.dumps(nb)


def test_repository_url_sources(monkeypatch, tmp_path):
    monkeypatch.delenv("FREQKIT_REPOSITORY_URL", raising=False)
    monkeypatch.setenv("GITHUB_REPOSITORY", "org/freqkit")
    monkeypatch.setenv("GITHUB_SERVER_URL", "https://github.com")
    assert runner.repository_url(tmp_path) == "https://github.com/org/freqkit"
    monkeypatch.delenv("GITHUB_REPOSITORY")
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    subprocess.run(["git", "-C", str(tmp_path), "remote", "add", "origin", "git@github.com:org/fk.git"], check=True)
    assert runner.repository_url(tmp_path) == "https://github.com/org/fk"
    subprocess.run(["git", "-C", str(tmp_path), "remote", "remove", "origin"], check=True)
    assert runner.repository_url(tmp_path) is None


def test_install_cell_runs_nothing_where_freqkit_is_importable():
    src = runner.install_cell_source("https://github.com/org/freqkit")
    assert "git+https://github.com/org/freqkit" in src
    exec(compile(src, "<install cell>", "exec"), {})  # freqkit is importable here: a no-op
    with pytest.raises(SystemExit, match="install freqkit first"):
        exec(compile(runner.install_cell_source(None).replace('"freqkit"', '"no_such_module_x"'), "c", "exec"), {})


def test_downloaded_chapter_is_the_clean_source_with_an_install_cell(smoke_book):
    src = smoke_book.html / "_sources" / "book" / "02_which_frequencies.ipynb"
    nb = json.loads(src.read_text())
    assert all(not c.get("outputs") for c in nb["cells"] if c["cell_type"] == "code"), "the download has outputs"
    assert any("freqkit-install" in c["metadata"].get("tags", []) for c in nb["cells"])
    assert "injected-parameters" not in src.read_text() and str(smoke_book.out) not in src.read_text()


def test_stage_pages_unlinks_chapters_missing_from_a_partial_build(tmp_path):
    # A build of some chapters only: the landing page must not link to the others (a dangling
    # link fails jupyter-book's -W build), and the verdict table names them without a link.
    book = tmp_path / "book"
    book.mkdir()
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell("# Which frequencies?")]
    nbformat.write(nb, book / "02_which_frequencies.ipynb")
    (book / "intro.md").write_text("<!-- freqkit:verdicts -->\n\n1. [Two](02_which_frequencies.ipynb): x\n"
                                   "2. [Five](05_low_vs_high_attacks.ipynb): y\n")
    (tmp_path / "_config.yml").write_text("title: t\n")
    results = tmp_path / "results"
    results.mkdir()

    class Record:
        data = {"chapters": {"02_which_frequencies": {"parameters": {"results_dir": str(results)}}}}

    runner.stage_pages(tmp_path, "smoke", Record())
    text = (book / "intro.md").read_text()
    assert "[Two](02_which_frequencies.ipynb)" in text
    assert "05_low_vs_high_attacks.ipynb" not in text and "2. Five: y" in text
    assert "[Which frequencies?](02_which_frequencies.ipynb)" in text      # H1's row links its chapter
    assert "smoke" in yaml.safe_load((tmp_path / "_config.yml").read_text())["html"]["extra_footer"]


def test_measured_block_is_generated_from_stored_verdicts(tmp_path):
    from freqkit import hypotheses as H
    import freqkit as fk
    e = {"mean": 0.3, "ci_low": 0.2, "ci_high": 0.4, "n_images": 500,
         "per_seed": [{"ci_low": 0.1, "ci_high": 0.5}] * 3, "n_seeds": 3}
    v = H.judge("H1", {"high_pass_accuracy": e, "low_pass_loss": e,
                       "residual_invisible": {"mean": -0.5, "ci_low": -0.6, "ci_high": -0.4, "n_images": 500}},
                {"commit": "abcdef1234567", "profile": "cpu"}, "cifar10")
    results = tmp_path / "results"
    fk.save_results(results, "02_which_frequencies", {"verdicts": {"cifar10": v}}, {"profile": "cpu"})
    md = runner.measured_markdown(results, link=False)
    row = next(line for line in md.splitlines() if line.startswith("| H1 |"))
    assert "| cifar10 | **supported** |" in row and "high_pass_accuracy +0.3 [+0.2, +0.4] (> 0.05: supported, 3/3 seeds)" in row
    assert "| 500, 3 |" in row and "(book/02_which_frequencies.ipynb)" in row
    assert "| H2 | - | **not run** |" in md and "cpu profile (commit abcdef123456)" in md
    readme = tmp_path / "README.md"
    readme.write_text(f"intro\n{runner.MEASURED_START}\ntyped by hand 99%\n{runner.MEASURED_END}\nrest\n")
    assert runner.update_readme(readme, results, "cpu")
    text = readme.read_text()
    assert "typed by hand" not in text and text.startswith("intro\n") and text.endswith("rest\n")
    assert "### Measured (cpu profile)" in text and row.replace("(book/", "(book/") in text
    assert runner.update_readme(readme, results, "cpu") and readme.read_text() == text      # idempotent
    plain = tmp_path / "plain.md"
    plain.write_text("no markers\n")
    assert not runner.update_readme(plain, results, "cpu") and plain.read_text() == "no markers\n"


def _h2_estimates(mean):
    from freqkit import hypotheses as H
    e = {"mean": mean, "ci_low": mean - 0.05, "ci_high": mean + 0.05, "n_images": 32}
    return {c.name: dict(e, mean=-0.01, ci_low=-0.02, ci_high=-0.005) if c.direction == "less" else e
            for c in H.HYPOTHESES["H2"].criteria}


def test_store_measured_merges_runs_chapter_by_chapter(tmp_path):
    """The committed record keeps each chapter's last run; the README renders from it with each run's machine."""
    from freqkit import hypotheses as H
    import freqkit as fk
    e = {"mean": 0.3, "ci_low": 0.2, "ci_high": 0.4, "n_images": 500}
    h1 = {"high_pass_accuracy": e, "low_pass_loss": e,
          "residual_invisible": {"mean": -0.5, "ci_low": -0.6, "ci_high": -0.4, "n_images": 500}}
    first, second = tmp_path / "first", tmp_path / "second"
    fk.save_results(first, "02_which_frequencies",
                    {"v": H.judge("H1", h1, {"commit": "1111111aaaaaa", "profile": "cpu", "date": "2026-12-01"},
                                  "cifar10")}, {"profile": "cpu"})
    fk.save_results(first, "03_frequency_attribution",
                    {"v": H.judge("H2", _h2_estimates(0.5), {"commit": "1111111aaaaaa", "profile": "cpu"}, "mnist")},
                    {"profile": "cpu"})
    record = tmp_path / "measured" / "cpu.json"
    run = {"chapters": {"02_which_frequencies": {"seconds": 1234.5}}}
    rec = runner.store_measured(record, first, "cpu", run=run, machine="CPU A, native bf16 no")
    assert [r["id"] for r in rec["rows"]] == ["H1", "H2"]
    assert rec["chapters"]["02_which_frequencies"]["seconds"] == 1234.5
    assert rec["chapters"]["02_which_frequencies"]["machine"] == "CPU A, native bf16 no"
    assert rec["chapters"]["03_frequency_attribution"]["seconds"] is None
    # a second run of chapter 2 only (H1 now rejected on another machine): chapter 3's row stays
    low = dict(h1, high_pass_accuracy={"mean": 0.01, "ci_low": 0.0, "ci_high": 0.02, "n_images": 500})
    fk.save_results(second, "02_which_frequencies",
                    {"v": H.judge("H1", low, {"commit": "2222222bbbbbb", "profile": "cpu"}, "cifar10")},
                    {"profile": "cpu"})
    fk.save_results(second, "03_frequency_attribution",
                    {"v": H.judge("H2", _h2_estimates(-0.5), {"commit": "2222222bbbbbb", "profile": "cpu"}, "mnist")},
                    {"profile": "cpu"})
    rec = runner.store_measured(record, second, "cpu", machine="CPU B, native bf16 yes",
                                chapters_=["02_which_frequencies"])      # chapter 3 was not run this time
    by = {r["id"]: r for r in rec["rows"]}
    assert by["H1"]["verdict"] == "rejected" and by["H1"]["provenance"]["commit"] == "2222222bbbbbb"
    assert by["H2"]["provenance"]["commit"] == "1111111aaaaaa" and by["H2"]["verdict"] == "supported"
    assert rec["chapters"]["03_frequency_attribution"]["machine"] == "CPU A, native bf16 no"
    assert json.loads(record.read_text()) == rec
    md = runner.measured_markdown(record, link=False)
    assert "| H1 | cifar10 | **rejected** |" in md and "| H2 | mnist | **supported** |" in md
    assert "chapter 02: ?, commit 2222222bbbbb, CPU B, native bf16 yes" in md
    assert "chapter 03: 2026-12-01, commit 1111111aaaaa, CPU A, native bf16 no" not in md  # H2 had no date
    assert "chapter 03: ?, commit 1111111aaaaa, CPU A, native bf16 no" in md
    assert "| H3 | - | **not run** |" in md           # chapter 5 never ran
    rec["chapters"]["05_low_vs_high_attacks"] = {"commit": "3333333"}     # it ran, but stored no H3 verdict
    record.write_text(json.dumps(rec))
    assert "| H3 | - | **no verdict stored** |" in runner.measured_markdown(record, link=False)
    with pytest.raises(ValueError, match="record_file"):
        runner.store_measured(record, second, "gpu")
    with pytest.raises(ValueError, match="results_dir"):
        runner.store_measured(record, tmp_path / "missing", "cpu")
    (tmp_path / "broken.json").write_text("{not json")
    with pytest.raises(ValueError, match="record_file"):
        runner.store_measured(tmp_path / "broken.json", second, "cpu")
    with pytest.raises(ValueError, match="results_dir"):
        runner.store_measured(tmp_path / "other.json", second, "smoke")


def test_store_measured_keeps_the_rows_of_data_sets_a_partial_run_left_out(tmp_path):
    """A run with --set 'datasets=[cifar10]' replaces the chapter's cifar10 rows only; mnist's stay, with their run."""
    from freqkit import hypotheses as H
    import freqkit as fk
    e = {"mean": 0.3, "ci_low": 0.2, "ci_high": 0.4, "n_images": 500}
    h1 = {"high_pass_accuracy": e, "low_pass_loss": e,
          "residual_invisible": {"mean": -0.5, "ci_low": -0.6, "ci_high": -0.4, "n_images": 500}}
    low = dict(h1, high_pass_accuracy={"mean": 0.01, "ci_low": 0.0, "ci_high": 0.02, "n_images": 500})
    stem, record = "02_which_frequencies", tmp_path / "cpu.json"

    def store(name, commit, est, datasets, covered):
        d = tmp_path / name
        fk.save_results(d, stem, {ds: H.judge("H1", est, {"commit": commit, "profile": "cpu"}, ds) for ds in datasets},
                        {"profile": "cpu"})
        params = {} if covered is None else {"datasets": covered}
        return runner.store_measured(record, d, "cpu", machine=f"CPU {name}",
                                     run={"chapters": {stem: {"seconds": 10.0, "parameters": params}}})

    store("one", "1111111aaaaaa", h1, ["cifar10", "mnist"], None)
    rec = store("two", "2222222bbbbbb", low, ["cifar10"], ["cifar10"])
    by = {r["dataset"]: r for r in rec["rows"]}
    assert by["cifar10"]["provenance"]["commit"] == "2222222bbbbbb" and by["cifar10"]["verdict"] == "rejected"
    assert by["mnist"]["provenance"]["commit"] == "1111111aaaaaa" and by["mnist"]["verdict"] == "supported"
    runs = rec["chapters"][stem]
    assert [(r["machine"], r["datasets"]) for r in runs] == [("CPU one", ["mnist"]), ("CPU two", ["cifar10"])]
    md = runner.measured_markdown(record, link=False)
    assert "chapter 02 (mnist): ?, commit 1111111aaaaa, CPU one, 10 s; chapter 02 (cifar10): ?, commit 2222222bbbbb" in md
    # the same partial run again: the earlier cifar10 entry is not listed twice
    rec = store("three", "3333333cccccc", low, ["cifar10"], ["cifar10"])
    assert [r["machine"] for r in rec["chapters"][stem]] == ["CPU one", "CPU three"]
    # a run on every data set replaces both rows and leaves one entry
    rec = store("four", "4444444dddddd", low, ["cifar10", "mnist"], None)
    assert isinstance(rec["chapters"][stem], dict) and rec["chapters"][stem]["machine"] == "CPU four"
    assert {r["provenance"]["commit"] for r in rec["rows"]} == {"4444444dddddd"} and len(rec["rows"]) == 2


def test_readme_measured_block_is_the_committed_record():
    """No measured number in the README is typed: its block is what book/measured/cpu.json renders to."""
    root = Path(__file__).resolve().parents[2]
    record = root / runner.MEASURED_RECORD.format(profile="cpu")
    text = (root / "README.md").read_text()
    block = text.split(runner.MEASURED_START, 1)[1].split(runner.MEASURED_END, 1)[0]
    assert record.is_file(), f"{record} is missing: the README's measured block must be rendered from it"
    assert block == runner.measured_block(record, "cpu"), (
        "README.md's measured block differs from book/measured/cpu.json: regenerate it with "
        "python -c \"from pathlib import Path; from freqkit.book import runner; "
        "runner.update_readme(Path('README.md'), Path('book/measured/cpu.json'), 'cpu')\"")


def test_pages_weigh_under_2_mb_and_load_the_widget_library_only_with_widgets(smoke_book):
    """Each page with the images it shows stays under 2 MB; only pages with a widget load the widget library."""
    heavy, stray = [], []
    for page in sorted(smoke_book.html.rglob("*.html")):
        text = page.read_text(errors="replace")
        images = {m for m in re.findall(r'src="([^"]+\.(?:png|jpg|jpeg|svg|gif))"', text) if "://" not in m}
        size = page.stat().st_size + sum((page.parent / m).stat().st_size for m in images
                                         if (page.parent / m).is_file())
        if size > 2_000_000:
            heavy.append(f"{page.relative_to(smoke_book.html)}: {size / 1e6:.2f} MB")
        if "embed-amd" in text and "application/vnd.jupyter.widget-view+json" not in text:
            stray.append(str(page.relative_to(smoke_book.html)))
    assert not heavy, heavy
    assert not stray, f"pages loading the widget library without a widget: {stray}"
