"""Atomic file writes: a reader sees either the old file or the complete new one.

Every file freqkit writes (checkpoints, results, figures' data) goes through these
helpers.  The data are written to a temporary file *in the same directory* (so the final
``os.replace`` is a rename within one file system, which POSIX and Windows make atomic),
flushed and fsynced, then renamed over the target.  An interrupted run therefore never
leaves a truncated checkpoint or JSON behind, only (at worst) a stray ``.<name>.*.tmp``
file, which the next write of the same target removes once it is an hour old.

JSON is written strictly (no ``NaN``/``Infinity``): every non-finite float, also inside
tensors, arrays and numpy scalars, becomes the string ``"inf"``, ``"-inf"`` or ``"nan"``
(:func:`jsonable`), so every store holds one form.
"""
from __future__ import annotations

import io
import json
import math
import os
import hashlib
import re
import tempfile
import time
from pathlib import Path

import torch

try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX: nothing is locked
    fcntl = None

__all__ = ["atomic_write_bytes", "atomic_save_torch", "atomic_write_json", "jsonable", "probe_writable",
           "file_sha256", "lock_file", "lock_held", "STALE_TEMP_SECONDS"]

#: Age (seconds since the last modification) after which a temporary file of a target,
#: left by a writer killed between fsync and rename, is removed by the next write of that
#: target.  A younger one may belong to a writer that is still running, and is left alone.
STALE_TEMP_SECONDS = 3600.0

# tempfile.mkstemp's random part: 8 characters of this alphabet.
_TEMP_CHARS = "[a-z0-9_]{8}"


def _remove_stale_temporaries(folder: Path, prefix: str) -> None:
    """Remove ``<prefix>XXXXXXXX.tmp`` files in ``folder`` older than :data:`STALE_TEMP_SECONDS`."""
    pattern = re.compile(re.escape(prefix) + _TEMP_CHARS + r"\.tmp")
    cutoff = time.time() - STALE_TEMP_SECONDS
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return
    for entry in entries:
        if not pattern.fullmatch(entry.name):
            continue
        try:
            if entry.is_file(follow_symlinks=False) and entry.stat(follow_symlinks=False).st_mtime < cutoff:
                os.unlink(entry.path)
        except OSError:
            pass  # removed meanwhile by another writer, or not ours to remove: the write goes on


def atomic_write_bytes(path, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically, creating parent folders.

    The bytes go to a temporary file ``.<name>.*.tmp`` in the target's folder, are flushed
    and fsynced, given the permissions a plain ``open()`` would (``0o666`` less the umask),
    and renamed over ``path`` with ``os.replace``; on any error (also KeyboardInterrupt) the
    temporary file is removed and the error re-raised, and an existing ``path`` is left as
    it was.  Before writing, temporary files of the same target (``.<name>.XXXXXXXX.tmp``)
    last modified more than :data:`STALE_TEMP_SECONDS` (one hour) ago are removed: they are
    left by a process killed between fsync and rename (a SIGKILL runs no cleanup).  Younger
    ones are kept, since another process may be writing them.

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
    _remove_stale_temporaries(path.parent, f".{path.name}.")
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


def probe_writable(folder) -> OSError | None:
    """Whether files can be written in ``folder``: create it, write a probe file, remove it.

    Used before long work whose result is to be saved (training), so that a read-only or
    full folder is known before the work, not after it.  The probe is a temporary file
    ``.freqkit-probe-*.tmp`` holding one byte; it is removed again (also after an error),
    and probes older than :data:`STALE_TEMP_SECONDS` (left by a killed process) are removed
    first.

    Args:
        folder: the folder (str or path-like; ``~`` is expanded); created with its parents
            if missing.

    Returns:
        ``None`` when the probe was written and removed, else the :class:`OSError` that
        stopped it (read-only folder or file system, no space, a path through a plain
        file...).
    """
    folder = Path(folder).expanduser()
    try:
        folder.mkdir(parents=True, exist_ok=True)
        _remove_stale_temporaries(folder, ".freqkit-probe-")
        fd, probe = tempfile.mkstemp(prefix=".freqkit-probe-", suffix=".tmp", dir=folder)
    except OSError as e:
        return e
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(b"x")
            f.flush()
        return None
    except OSError as e:
        return e
    finally:
        try:
            os.unlink(probe)
        except OSError:
            pass


def lock_file(path, *, blocking: bool = True):
    """Open ``path`` and take an exclusive advisory lock on it, held until the file is closed.

    One lock for every process that must not do the same work at the same time: the book
    runner (one run per output folder) and :func:`freqkit.train_or_load` (one training per
    checkpoint, so that two chapters run side by side wait for each other's models instead
    of training them twice).  The lock is ``fcntl.flock``: released by the kernel when the
    holder exits, however it exits, so a killed run never leaves a stale lock.  The holder's
    pid is written into the file, for the message of whoever waits.

    Args:
        path: the lock file (str or path-like); created if absent, its folder must exist.
        blocking: wait for the holder (default); ``False``: raise at once instead.

    Returns:
        The open file (mode ``"a+"``), locked; close it to release the lock.  Where ``fcntl``
        is missing (not POSIX) the file is returned without a lock.

    Raises:
        BlockingIOError: ``blocking=False`` and another open file holds the lock.
        OSError: the file cannot be opened.
    """
    f = open(path, "a+")  # not "w": that would erase the holder's pid before the lock is tried
    if fcntl is not None:
        try:
            fcntl.flock(f.fileno(), fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
        except BlockingIOError as e:
            f.close()
            raise BlockingIOError(e.errno, f"{path} is locked by another process") from None
        except OSError:
            f.close()
            raise
    f.seek(0)
    f.truncate()
    f.write(f"{os.getpid()}\n")
    f.flush()
    return f


def lock_held(path) -> bool:
    """Whether another open file holds the :func:`lock_file` lock on ``path`` right now.

    A probe that neither creates ``path`` nor writes to it, and takes nothing it keeps:
    :func:`freqkit.train_seeds` asks it to train the seeds nobody else is training first.
    The answer can be stale a moment later (the holder may finish, another may start), so it
    serves to order work, never to exclude it (that is :func:`lock_file`'s job).

    Args:
        path: the lock file (str or path-like).

    Returns:
        True when the file exists and its lock is held (by another process, or by another
        open file of this one); False when it is absent, unreadable, free, or ``fcntl`` is
        missing.
    """
    if fcntl is None:
        return False
    try:
        f = open(path, "rb")
    except OSError:
        return False
    with f:
        try:
            fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        except OSError:
            return False
        fcntl.flock(f.fileno(), fcntl.LOCK_UN)
        return False


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
    """Write ``obj`` as strict UTF-8 JSON with a final newline, atomically.

    ``obj`` first passes through :func:`jsonable` (tensors and arrays become lists, dict keys
    strings, every non-finite float the string ``"inf"``, ``"-inf"`` or ``"nan"``), and so
    does whatever ``default`` returns; the text is then written with ``allow_nan=False``, so
    the file never holds the non-standard ``NaN``/``Infinity`` that strict JSON parsers
    reject.  Keys are sorted for stable diffs unless ``sort_keys=False``; non-ASCII
    characters are written as they are.

    Args:
        obj: a JSON-serialisable object (tensors, numpy arrays and numpy scalars allowed).
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
    hook = None if default is None else (lambda o: jsonable(default(o)))
    text = json.dumps(jsonable(obj), indent=indent, sort_keys=sort_keys, ensure_ascii=False, allow_nan=False,
                      default=hook)
    return atomic_write_bytes(path, (text + "\n").encode("utf-8"))


def jsonable(v):
    """``v`` made JSON-ready: tensors and arrays become lists, every non-finite float a string.

    Anything with a ``tolist`` method (tensors, numpy arrays and numpy scalars) is replaced by
    ``v.tolist()``, converted in turn; a float that is ``inf``, ``-inf`` or ``nan`` becomes
    ``"inf"``, ``"-inf"`` or ``"nan"`` wherever it sits (a Python float, an element of a
    tensor or array, a numpy scalar); dicts (keys turned into ``str``), lists and tuples
    (into lists) are converted recursively; everything else is returned as it is.  The
    result passes ``json.dumps(..., allow_nan=False)`` whenever its leaves are JSON types.

    Args:
        v: the value to convert.

    Returns:
        The converted value (a new container; ``v`` is not modified).

    Example:
        >>> import math, numpy as np, torch
        >>> from freqkit._io import jsonable
        >>> jsonable({"t": torch.tensor([1.0, math.inf]), "s": np.float64("nan"), 3: (-math.inf,)})
        {'t': [1.0, 'inf'], 's': 'nan', '3': ['-inf']}
    """
    if isinstance(v, float):
        return float(v) if math.isfinite(v) else str(float(v))
    if isinstance(v, (str, bytes, int, type(None))):
        return v
    if hasattr(v, "tolist"):
        return jsonable(v.tolist())
    if isinstance(v, dict):
        return {str(k): jsonable(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [jsonable(x) for x in v]
    return v


def file_sha256(path) -> str:
    """The SHA-256 (hex) of a file's bytes, read in 1 MiB blocks (bounded memory for large weight files).

    Args:
        path: the file.

    Returns:
        64 hex digits.

    Raises:
        OSError: the file cannot be read.
    """
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()
