"""The one atomic writer: a file appears whole or not at all.

Every file this package writes into a project or next to a plate (tables, JSON,
label images, checkpoints, reports) goes through :func:`atomic_path`: the content
is written to a hidden temporary file beside the target, flushed to disk, then
moved into place with :func:`os.replace`, which is atomic on one file system. A
crash or a full disk leaves the previous file intact.

Examples
--------
>>> target = tmp_path / "meta.json"
>>> write_json_atomic({"plate": "P1"}, target)
>>> print(target.read_text())
{
  "plate": "P1"
}
>>> sorted(p.name for p in tmp_path.iterdir())
['meta.json']
"""

from __future__ import annotations

import json
import os
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import pandas as pd

__all__ = ["atomic_path", "file_version", "write_json_atomic", "write_parquet_atomic", "write_text_atomic"]


def file_version(path: str | os.PathLike) -> tuple | None:
    """Which version of a file is there: ``(inode, mtime_ns, size)``, or None when there is none.

    A file replaced by :func:`atomic_path` gets a new inode, so a cache keyed by this
    sees every write.

    Examples
    --------
    >>> file_version(tmp_path / "missing.csv") is None
    True
    """
    try:
        status = os.stat(path)
    except FileNotFoundError:
        return None
    return status.st_ino, status.st_mtime_ns, status.st_size


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path to write; on success it replaces ``path``.

    The temporary file is removed when the block raises, and the target is left
    as it was. Parent folders are created.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    try:
        yield tmp
        _flush(tmp)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def _flush(path: Path) -> None:
    with open(path, "rb+") as handle:
        os.fsync(handle.fileno())


def write_text_atomic(text: str, path: str | os.PathLike) -> None:
    """Write text (UTF-8) atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_json_atomic(value, path: str | os.PathLike, *, default=str) -> None:
    """Write a JSON document (indented) atomically; ``default`` as in :func:`json.dumps`."""
    write_text_atomic(json.dumps(value, indent=2, default=default), path)


def write_parquet_atomic(frame: pd.DataFrame, path: str | os.PathLike) -> None:
    """Write a DataFrame as Parquet (without its index) atomically."""
    with atomic_path(path) as tmp:
        frame.to_parquet(tmp, index=False)
