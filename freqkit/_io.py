"""Atomic file writes: a reader sees either the old file or the complete new one.

Every file freqkit writes (checkpoints, results, figures' data) goes through these
helpers.  The data are written to a temporary file *in the same directory* (so the final
``os.replace`` is a rename within one file system, which POSIX and Windows make atomic),
flushed and fsynced, then renamed over the target.  An interrupted run therefore never
leaves a truncated checkpoint or JSON behind, only (at worst) a stray ``.*.tmp`` file.
"""
from __future__ import annotations

import io
import json
import math
import os
import tempfile
from pathlib import Path

import torch

__all__ = ["atomic_write_bytes", "atomic_save_torch", "atomic_write_json", "jsonable"]


def atomic_write_bytes(path, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically; create parent folders.  Returns the path."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise TypeError(f"data must be bytes, got {type(data).__name__}")
    path = Path(path).expanduser()
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        # mkstemp creates 0600 files; give the result the permissions a plain open() would.
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    return path


def atomic_save_torch(obj, path) -> Path:
    """``torch.save(obj, path)``, atomically.  Returns the path."""
    buf = io.BytesIO()
    torch.save(obj, buf)
    return atomic_write_bytes(path, buf.getvalue())


def atomic_write_json(obj, path, *, indent: int = 2, sort_keys: bool = True, default=None) -> Path:
    """Write ``obj`` as JSON (UTF-8, keys sorted for stable diffs unless ``sort_keys=False``), atomically.

    ``default`` is json's hook for values it cannot encode (e.g. ``str``); non-finite floats
    are written as JSON's ``NaN``/``Infinity`` unless converted first (:func:`jsonable`).
    """
    text = json.dumps(obj, indent=indent, sort_keys=sort_keys, ensure_ascii=False, allow_nan=True, default=default)
    return atomic_write_bytes(path, (text + "\n").encode("utf-8"))


def jsonable(v):
    """``v`` with tensors and arrays turned into lists and non-finite floats into strings ("inf", "nan")."""
    if hasattr(v, "tolist"):
        return v.tolist()
    if isinstance(v, float) and not math.isfinite(v):
        return str(v)
    if isinstance(v, dict):
        return {str(k): jsonable(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [jsonable(x) for x in v]
    return v
