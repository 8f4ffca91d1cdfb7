"""Reading zarr arrays so that a missing or corrupt chunk fails with its path.

zarr reads a chunk that is not stored as the fill value, so a deleted chunk file
reads as zeros; and a chunk that does not decode fails with the codec's words
("Zstd decompression error") and no path. :func:`read_checked` checks that the
chunks a selection needs are stored (one ``exists`` per chunk of the selection,
nothing listed beyond it) and names the chunk file of either fault, with what
the data belongs to (a well and site, a crop range).

Examples
--------
>>> import zarr
>>> array = zarr.create_array(tmp_path / "a.zarr", shape=(4, 4), chunks=(2, 2), dtype="u2",
...                           config={"write_empty_chunks": True})
>>> array[:] = 1
>>> read_checked(array, (slice(0, 2), slice(0, 4)), what="site B02").sum()
np.uint64(8)
>>> (tmp_path / "a.zarr" / "c" / "1" / "1").unlink()
>>> read_checked(array, (slice(2, 4), slice(2, 4)), what="site B02")
Traceback (most recent call last):
...
napari_hcs.chunks.MissingChunkError: Chunk .../a.zarr/c/1/1 of site B02 is missing from the store; the data there cannot be read (the store is incomplete or damaged: write it again).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import zarr

__all__ = ["CheckedArray", "CorruptChunkError", "MissingChunkError", "corrupt_metadata_file", "read_checked"]

#: Names of zarr metadata files (v2 and v3).
METADATA_FILES = ("zarr.json", ".zattrs", ".zgroup", ".zarray")


class MissingChunkError(FileNotFoundError):
    """A chunk the read needs is not in the store."""


class CorruptChunkError(ValueError):
    """A stored chunk does not decode."""


def _store_location(array: zarr.Array) -> str:
    root = getattr(array.store, "root", None)
    base = str(root) if root is not None else str(array.store)
    return f"{base}/{array.path}" if array.path else base


def _chunk_key(array: zarr.Array, coords: tuple[int, ...]) -> str:
    key = array.metadata.encode_chunk_key(coords)
    return f"{array.path}/{key}" if array.path else key


def _chunk_coords(array: zarr.Array, selection: tuple) -> list[tuple[int, ...]]:
    """Chunk grid coordinates of the chunks a basic selection (ints and slices) touches."""
    selection = tuple(selection) + (slice(None),) * (array.ndim - len(selection))
    ranges = []
    for index, size, chunk in zip(selection, array.shape, array.chunks):
        if isinstance(index, slice):
            start, stop, _ = index.indices(size)
            if stop <= start:
                return []
            ranges.append(range(start // chunk, (stop - 1) // chunk + 1))
        else:
            index = int(index) % size if size else 0
            ranges.append(range(index // chunk, index // chunk + 1))
    grid = np.stack(np.meshgrid(*[np.asarray(r) for r in ranges], indexing="ij"), -1)
    return [tuple(int(v) for v in c) for c in grid.reshape(-1, array.ndim)]


def missing_chunks(array: zarr.Array, selection: tuple) -> list[str]:
    """Paths of the chunks of ``selection`` that are not stored, in an array that stores some.

    An array without any stored chunk was created and never written: it reads as
    its fill value. Sharded arrays are not checked.
    """
    from zarr.core.sync import sync

    if getattr(array, "shards", None):
        return []  # a shard holds many chunks; its index, not a file, says which are stored
    missing = []
    for coords in _chunk_coords(array, selection):
        if not sync(array.store.exists(_chunk_key(array, coords))):
            missing.append(f"{_store_location(array)}/{array.metadata.encode_chunk_key(coords)}")
    if missing and array.nchunks_initialized == 0:
        return []  # an array created and never written holds its fill value, as zarr promises
    return missing


def read_checked(array: zarr.Array, selection: tuple, *, what: str, require_stored: bool = True) -> np.ndarray:
    """Read ``array[selection]``; raise naming the chunk file when one is missing or corrupt.

    ``require_stored`` says that every chunk was written (stores napari-hcs made):
    then a chunk that is not stored is missing. Other writers leave out chunks of
    fill value, as zarr allows, so for their stores only corrupt chunks are refused.

    Raises
    ------
    MissingChunkError
        Naming the first chunk file that is not stored, and ``what``.
    CorruptChunkError
        Naming the chunk files of the selection when a chunk does not decode.
    """
    missing = missing_chunks(array, selection) if require_stored else []
    if missing:
        more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
        raise MissingChunkError(
            f"Chunk {missing[0]}{more} of {what} is missing from the store; the data there cannot be "
            "read (the store is incomplete or damaged: write it again)."
        )
    try:
        return np.asarray(array[selection])
    except Exception as error:  # noqa: BLE001 - codecs raise their own types, all mean "corrupt"
        coords = _chunk_coords(array, selection)
        files = ", ".join(f"{_store_location(array)}/{array.metadata.encode_chunk_key(c)}" for c in coords[:3])
        more = f" (and {len(coords) - 3} more)" if len(coords) > 3 else ""
        raise CorruptChunkError(
            f"Cannot decode {what} from {files}{more}: {type(error).__name__}: {error}. "
            "The store is damaged: write it again."
        ) from error


class CheckedArray:
    """An array-like over a zarr array for ``dask.array.from_array`` whose reads go through :func:`read_checked`."""

    def __init__(self, array: zarr.Array, what: str, *, require_stored: bool = True):
        self.array, self.what, self.require_stored = array, what, require_stored
        self.shape, self.dtype, self.ndim = array.shape, array.dtype, array.ndim
        self.chunks = array.chunks

    def __getitem__(self, selection):
        if not isinstance(selection, tuple):
            selection = (selection,)
        return read_checked(self.array, selection, what=self.what, require_stored=self.require_stored)


def corrupt_metadata_file(path: str | os.PathLike, *, limit: int = 100_000) -> Path | None:
    """The first zarr metadata file under ``path`` that holds no valid UTF-8 JSON, or None.

    Only metadata files are read; at most ``limit`` directory entries are visited.

    Examples
    --------
    >>> import zarr
    >>> group = zarr.open_group(tmp_path / "g.zarr", mode="w")
    >>> corrupt_metadata_file(tmp_path / "g.zarr") is None
    True
    >>> _ = (tmp_path / "g.zarr" / "zarr.json").write_text("{not json")
    >>> corrupt_metadata_file(tmp_path / "g.zarr").name
    'zarr.json'
    """
    seen = 0
    for folder, dirs, files in os.walk(path):
        seen += len(dirs) + len(files)
        for name in METADATA_FILES:
            if name in files:
                try:
                    json.loads(Path(folder, name).read_bytes().decode("utf-8"))
                except (ValueError, OSError):
                    return Path(folder, name)
        if seen > limit:
            break
        dirs[:] = [d for d in dirs if any(Path(folder, d, m).exists() for m in METADATA_FILES)]
    return None
