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
    """Write ``data`` to ``path`` atomically, creating parent folders.

    The bytes go to a temporary file ``.<name>.*.tmp`` in the target's folder, are flushed
    and fsynced, given the permissions a plain ``open()`` would (``0o666`` less the umask),
    and renamed over ``path`` with ``os.replace``; on any error (also KeyboardInterrupt) the
    temporary file is removed and the error re-raised, and an existing ``path`` is left as
    it was.

    Args:
        path: the target file (str or path-like; ``~`` is expanded).
        data: ``bytes``, ``bytearray`` or ``memoryview``.

    Returns:
        The path written, as a :class:`pathlib.Path`.

    Raises:
        TypeError: ``data`` is not bytes-like.
        OSError: the folder cannot be created or the file not written.
    """
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
    """``torch.save(obj, path)``, atomically (through :func:`atomic_write_bytes`).

    The object is serialised into memory first, so a failing ``torch.save`` leaves no file.

    Args:
        obj: anything ``torch.save`` accepts.
        path: the target file (parent folders are created).

    Returns:
        The path written, as a :class:`pathlib.Path`.

    Raises:
        OSError: the file cannot be written.  Errors of ``torch.save`` (e.g. an unpicklable
            object) propagate.
    """
    buf = io.BytesIO()
    torch.save(obj, buf)
    return atomic_write_bytes(path, buf.getvalue())


def atomic_write_json(obj, path, *, indent: int = 2, sort_keys: bool = True, default=None) -> Path:
    """Write ``obj`` as UTF-8 JSON with a final newline, atomically.

    Keys are sorted for stable diffs unless ``sort_keys=False``; non-ASCII characters are
    written as they are.  Non-finite floats are written as JavaScript's ``NaN``/``Infinity``
    (which Python's ``json`` reads back, but strict JSON parsers reject) unless converted
    first (:func:`jsonable` turns Python floats, not tensor or array elements, into strings).

    Args:
        obj: a JSON-serialisable object.
        path: the target file (parent folders are created).
        indent: ``json.dumps`` indentation.
        sort_keys: sort the keys of every dict.
        default: json's hook for values it cannot encode (e.g. ``str``); ``None``: such values
            raise.

    Returns:
        The path written, as a :class:`pathlib.Path`.

    Raises:
        TypeError: ``obj`` holds a value json cannot encode and ``default`` does not convert.
        OSError: the file cannot be written.
    """
    text = json.dumps(obj, indent=indent, sort_keys=sort_keys, ensure_ascii=False, allow_nan=True, default=default)
    return atomic_write_bytes(path, (text + "\n").encode("utf-8"))


def jsonable(v):
    """``v`` made JSON-ready: tensors and arrays become lists, non-finite Python floats strings.

    Anything with a ``tolist`` method (tensors, numpy arrays and numpy scalars) is replaced by
    ``v.tolist()``; a Python float that is ``inf``, ``-inf`` or ``nan`` becomes ``"inf"``,
    ``"-inf"`` or ``"nan"``; dicts (keys turned into ``str``), lists and tuples (into lists)
    are converted recursively; everything else is returned as it is.  Non-finite values
    *inside* tensors and arrays, and non-finite numpy scalars, stay floats (``tolist`` is
    not recursed into), and are then written as ``NaN``/``Infinity`` by
    :func:`atomic_write_json`.

    Args:
        v: the value to convert.

    Returns:
        The converted value (a new container; ``v`` is not modified).
    """
    if hasattr(v, "tolist"):
        return v.tolist()
    if isinstance(v, float) and not math.isfinite(v):
        return str(v)
    if isinstance(v, dict):
        return {str(k): jsonable(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [jsonable(x) for x in v]
    return v
