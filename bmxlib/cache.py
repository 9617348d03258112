"""The bmxlib cache folder (``$BMXLIB_CACHE``): its place, its keys, its atomic fills.

Generated digits-lt splits, the pretrained digits backbone and the instance noise's
reference confidences live here, each under ``<kind>-<digest of its key><suffix>``, where
the key names everything that determines the content. A fill is written atomically, so
concurrent runs never read half a file, and an unreadable file is rebuilt.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")


def cache_dir() -> Path:
    """Folder for cached datasets and pretrained backbones (``$BMXLIB_CACHE``, default
    ``$XDG_CACHE_HOME/bmxlib`` or ``~/.cache/bmxlib``); created on first use."""
    root = os.environ.get("BMXLIB_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME", os.path.expanduser("~/.cache")), "bmxlib"
    )
    path = Path(root)
    if path.exists() and not path.is_dir():
        raise NotADirectoryError(f"BMXLIB_CACHE={root} is not a directory; point it at a "
                                 "folder (or unset it for ~/.cache/bmxlib)")
    path.mkdir(parents=True, exist_ok=True)
    return path


def cache_path(kind: str, key: str, *, suffix: str, digits: int = 16) -> Path:
    """``cache_dir() / f"{kind}-{sha1(key)[:digits]}{suffix}"``: the file of one key."""
    return cache_dir() / f"{kind}-{hashlib.sha1(key.encode()).hexdigest()[:digits]}{suffix}"


def cached(path: Path, *, read: Callable[[Path], T], build: Callable[[], T],
           write: Callable[[Path, T], None],
           unreadable: tuple[type[BaseException], ...] = (Exception,)) -> T:
    """``read(path)`` when the file is there and readable, else ``build()`` and
    ``write(path, value)`` (atomically: ``write`` is one of ``bmxlib.io``'s atomic writers).

    An existing file that fails to read with one of ``unreadable`` is removed and rebuilt.
    """
    if path.exists():
        try:
            return read(path)
        except unreadable:
            path.unlink(missing_ok=True)  # corrupt cache: rebuild it
    value = build()
    write(path, value)
    return value


def cached_arrays(path: Path, build: Callable[[], dict]) -> dict:
    """``cached`` for a dict of NumPy arrays kept as one ``.npz`` (the generated embedded
    datasets): read when readable, else ``build()`` and written atomically."""
    import numpy as np

    from .io import atomic_savez

    def read(file: Path) -> dict:
        with np.load(file) as data:
            return {k: data[k] for k in data.files}

    return cached(path, read=read, build=build,
                  write=lambda file, arrays: atomic_savez(file, **arrays),
                  unreadable=(OSError, ValueError, EOFError))
