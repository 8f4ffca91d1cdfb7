"""Import single-cell crops cut elsewhere into a project's cell store.

The crops come as a NumPy ``.npz`` holding ``crops`` of shape ``(N, C, H, W)``
and a CSV with one row per crop (plate, well, compound, ...). They are written
into the project's :class:`~napari_hcs.project.cell_store.CellStore` in chunks, each chunk a
table part ``import_<i>`` written only after its crops are stored, so an
interrupted import resumes where it stopped. Classical features
(:func:`~napari_hcs.features.crop_features`) are measured per chunk and stored
beside the cells.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import pandas as pd

from .cell_store import CROP_INDEX, CellStore
from ..cancel import check_cancel
from ..features import crop_features
from ..finite import require_finite
from ..plate import PlateError, normalize_well_name
from .folder import Project

__all__ = ["DEFAULT_CHUNK_SIZE", "import_crops", "load_crops", "read_crop_metadata"]

#: Crops written (and measured) per table part.
DEFAULT_CHUNK_SIZE = 2048
#: Column added to every imported cell: its row in the crops file and the CSV.
SOURCE_ROW = "source_row"


def load_crops(crops_path: str | os.PathLike) -> np.ndarray:
    """Read the ``(N, C, H, W)`` crops of a ``.npz`` (key ``crops``) or ``.npy`` file.

    A ``(N, H, W)`` array is read as one channel.

    Raises
    ------
    FileNotFoundError
        If the file does not exist.
    ValueError
        If the file holds no ``crops`` array or its shape is not ``(N, C, H, W)``.
    """
    path = Path(crops_path)
    if not path.is_file():
        raise FileNotFoundError(f"Crops file {path} does not exist.")
    loaded = np.load(path, allow_pickle=False, mmap_mode="r" if path.suffix == ".npy" else None)
    if isinstance(loaded, np.lib.npyio.NpzFile):
        with loaded:
            if "crops" not in loaded.files:
                raise ValueError(
                    f"{path} holds no 'crops' array; it holds: {', '.join(loaded.files) or 'nothing'}."
                )
            crops = loaded["crops"]
    else:
        crops = loaded
    if crops.ndim == 3:
        crops = crops[:, np.newaxis]
    if crops.ndim != 4 or min(crops.shape[1:]) == 0:
        raise ValueError(f"The crops in {path} have shape {crops.shape}; expected (N, C, H, W).")
    if not np.issubdtype(crops.dtype, np.number) or np.issubdtype(crops.dtype, np.complexfloating):
        raise ValueError(f"The crops in {path} have dtype {crops.dtype}; expected real numbers.")
    return crops


def read_crop_metadata(meta_csv: str | os.PathLike, n_crops: int, crops_path: str | os.PathLike) -> pd.DataFrame:
    """Read the per-crop CSV and check it has one row per crop.

    Well names are brought to the ``A01`` form so well annotations join, and a
    ``source_row`` column records each crop's row in the files.

    Raises
    ------
    ValueError
        If the row count differs from the crop count, or a well name is unknown.
    """
    path = Path(meta_csv)
    if not path.is_file():
        raise FileNotFoundError(f"Metadata file {path} does not exist.")
    meta = pd.read_csv(path, dtype={"well": str, "plate": str})
    if len(meta) != n_crops:
        raise ValueError(
            f"{path} has {len(meta)} rows but {crops_path} holds {n_crops} crops; "
            "expected one CSV row per crop, in the same order."
        )
    if CROP_INDEX in meta:
        meta = meta.rename(columns={CROP_INDEX: f"source_{CROP_INDEX}"})
    if "well" in meta:
        meta["well"] = [_canonical_well(w, path, i) for i, w in enumerate(meta["well"])]
    meta[SOURCE_ROW] = np.arange(len(meta), dtype=np.int64)
    return meta


def _canonical_well(name, path: Path, row: int) -> str:
    try:
        return normalize_well_name(name)
    except PlateError as error:
        raise ValueError(f"{path}, row {row + 1}: {error}") from None


def _channel_names(channels: Sequence[str] | None, n_channels: int, crops_path: Path) -> list[str]:
    if channels is None:
        return [f"ch{i}" for i in range(n_channels)]
    names = [str(c).strip() for c in channels]
    if len(names) != n_channels or len(set(names)) != len(names) or not all(names):
        raise ValueError(
            f"{len(names)} channel name(s) given ({', '.join(names)}) but the crops in {crops_path} "
            f"have {n_channels} channel(s); give {n_channels} distinct names."
        )
    return names


def _fit_square(crops: np.ndarray, size: int) -> np.ndarray:
    """Centre-crop or zero-pad ``(n, C, H, W)`` crops to ``(n, C, size, size)``."""
    out = np.zeros((len(crops), crops.shape[1], size, size), dtype=np.float32)
    spans = []
    for extent in crops.shape[2:]:
        source = max(0, (extent - size) // 2)
        target = max(0, (size - extent) // 2)
        length = min(extent, size)
        spans.append((slice(source, source + length), slice(target, target + length)))
    (src_y, dst_y), (src_x, dst_x) = spans
    out[:, :, dst_y, dst_x] = crops[:, :, src_y, src_x]
    return out


def _check_project(project: Project, crops_path: Path, n_crops: int, chunk_size: int) -> None:
    meta = project.read_meta()
    if "plate" in meta:
        raise ValueError(
            f"Project {project.folder} belongs to plate {meta['plate']}; import crops into a new folder."
        )
    previous = meta.get("crops")
    if not previous:
        return
    if Path(previous) != crops_path or meta.get("n_crops") != n_crops:
        raise ValueError(
            f"Project {project.folder} already holds {meta.get('n_crops')} crops imported from "
            f"{previous}; import {crops_path} into a new folder."
        )
    if meta.get("chunk_size", chunk_size) != chunk_size:
        raise ValueError(
            f"Project {project.folder} was imported in chunks of {meta['chunk_size']} crops; "
            f"resume with that chunk size (asked for {chunk_size})."
        )


def import_crops(
    crops_path: str | os.PathLike,
    meta_csv: str | os.PathLike,
    project_dir: str | os.PathLike,
    *,
    channels: Sequence[str] | None = None,
    crop_size: int | None = None,
    nucleus_channel: int | str = 0,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    progress: Callable[[int, int], None] | None = None,
    cancel: Callable[[], bool] | threading.Event | None = None,
) -> CellStore:
    """Import crops and their metadata into a project, and measure their features.

    Parameters
    ----------
    crops_path : path
        ``.npz`` with key ``crops`` of shape ``(N, C, H, W)`` (or a ``.npy``).
    meta_csv : path
        CSV with one row per crop, in the same order (e.g. plate, well, site,
        compound). Its columns become cell-table columns; ``well`` names are
        normalised to ``A01`` form.
    project_dir : path
        Project folder; created when missing. Re-running the same import resumes it.
    channels : sequence of str, optional
        Channel names; default ``ch0 .. ch<C-1>``.
    crop_size : int, optional
        Side of the stored crops; default ``H`` (which must equal ``W``). Other
        sizes centre-crop or zero-pad; features are measured on the crops as given.
    nucleus_channel : int or str
        Channel (index or name) the nucleus is found in for the features.
    chunk_size : int
        Crops per table part (the unit of resumption).
    progress : callable, optional
        ``progress(done, total)`` after every chunk, in crops.
    cancel : callable or threading.Event, optional
        Checked between chunks; when set, :class:`InterruptedError` is raised and
        the finished chunks are kept.

    Returns
    -------
    CellStore
        The project's cell store with the imported cells and their features.

    Raises
    ------
    ValueError
        If the files do not fit together (row count, channel count, shape) or the
        project holds other data.
    """
    crops_path = Path(crops_path).resolve()
    crops = load_crops(crops_path)
    n_crops, n_channels, height, width = crops.shape
    names = _channel_names(channels, n_channels, crops_path)
    if crop_size is None:
        if height != width:
            raise ValueError(
                f"The crops in {crops_path} are {height} x {width}, not square; give a crop size."
            )
        crop_size = height
    if int(crop_size) < 1:
        raise ValueError(f"Crop size must be a positive number of pixels; got {crop_size}.")
    crop_size = int(crop_size)
    if chunk_size < 1:
        raise ValueError(f"Chunk size must be at least 1 crop; got {chunk_size}.")
    meta = read_crop_metadata(meta_csv, n_crops, crops_path)

    project = Project(project_dir)
    _check_project(project, crops_path, n_crops, chunk_size)
    store = CellStore.create(project.folder, channels=names, crop_size=crop_size, dtype="float32")
    project.update_meta(
        source="import",
        crops=str(crops_path),
        metadata=str(Path(meta_csv).resolve()),
        n_crops=n_crops,
        channels=names,
        crop_size=crop_size,
        chunk_size=chunk_size,
    )
    done_cells, done_features = store.done_sites(), store.done_feature_sites()
    for number, start in enumerate(range(0, n_crops, chunk_size)):
        check_cancel(cancel, f"Import cancelled after {start} of {n_crops} crops; re-run to resume.")
        key = f"import_{number:05d}"
        stop = min(start + chunk_size, n_crops)
        chunk = np.asarray(crops[start:stop])
        require_finite(chunk, what=f"{crops_path}: crops {start} to {stop - 1}")
        if key in done_cells:
            crop_index = pd.read_parquet(store.folder / "cells" / f"{key}.parquet", columns=[CROP_INDEX])
        else:
            stored = chunk if (height, width) == (crop_size, crop_size) else _fit_square(chunk, crop_size)
            crop_index = store.append_site(key, meta.iloc[start:stop], stored)[[CROP_INDEX]]
        if key not in done_features:
            features = crop_features(chunk, channel_names=names, nucleus_channel=nucleus_channel)
            features.insert(0, CROP_INDEX, crop_index[CROP_INDEX].to_numpy())
            store.write_features(key, features)
        if progress is not None:
            progress(stop, n_crops)
    return store
