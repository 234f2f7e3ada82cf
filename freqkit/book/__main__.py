"""``python -m freqkit.book``: the book runner (see :mod:`freqkit.book.runner`)."""
import sys

from .runner import main

sys.exit(main())
