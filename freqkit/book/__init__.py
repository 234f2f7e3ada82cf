"""The book's own code, at the edge of freqkit: nothing in the library imports it.

* :mod:`freqkit.book.runner`: ``python -m freqkit.book`` executes the chapters with
  papermill under a profile and builds the HTML with Jupyter Book (also a small Sphinx
  extension, ``extra_extensions: [freqkit.book]``).
* :mod:`freqkit.book.chapters`: chapter plumbing: loading the models a chapter needs,
  record lines, tables and verdict summaries.
* :mod:`freqkit.book.viz`: the figures; :mod:`freqkit.book.widgets`: sliders and menus
  that work in the static HTML, without a kernel.
"""
from .runner import main, setup

__all__ = ["main", "setup"]
