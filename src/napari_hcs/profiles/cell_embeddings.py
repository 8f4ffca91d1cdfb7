"""One embedding per cell, from one of four sources, stored in the project.

- ``cnn``: the penultimate layer of a trained CNN (a model of the project's
  catalog, or a checkpoint file), normalised as the model was trained;
- ``features``: the classical ``feat_*`` features, z-scored per plate (NaN
  features are 0, as everywhere in the cell store);
- ``pca``: a PCA of the raw crops, normalised per plate and shrunk
  (:mod:`~napari_hcs.profiles.crop_pca`), the baseline;
- ``autoencoder``: the bottleneck of a convolutional autoencoder trained on the
  crops (:mod:`~napari_hcs.profiles.autoencoder_embedding`).

:func:`embed_cells` computes one and stores it as ``embeddings/<source>``
(:class:`~napari_hcs.profiles.embedding_store.EmbeddingStore`) with its
provenance: the source, the model, the options, the normalisation, the time it
took and the cells left out (those of sites quality control excluded). A
source that gives NaN or infinite values for some cells is an error naming how
many and in which wells, and nothing is stored.

Examples
--------
>>> EmbedRequest(source="cnn", dimensions=0)
Traceback (most recent call last):
...
ValueError: EmbedRequest.dimensions must be an integer of at least 1; got 0.
"""

from __future__ import annotations

import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd

from ..vocabulary import CROP_INDEX, EMBEDDING_SOURCES, NORMALISATIONS
from .embedding_store import Embedding, EmbeddingStore

__all__ = ["EmbedRequest", "embed_cells", "nan_embedding_message", "resolve_cnn_model"]


@dataclass
class EmbedRequest:
    """Which embedding to make, and how.

    Parameters
    ----------
    source : {"cnn", "features", "pca", "autoencoder"}
        Where each cell's vector comes from.
    model : str, optional
        ``cnn``: a model name in the project's catalog or a checkpoint file;
        default the newest CNN of the catalog.
    dimensions : int
        Components (``pca``) or bottleneck size (``autoencoder``).
    epochs : int, optional
        Autoencoder training epochs; default 5 on a CPU, 30 on a GPU.
    seed : int
        Seeds the autoencoder's training and the cells sampled for plate statistics.
    device : str
        ``"auto"``, ``"cpu"``, ``"cuda"`` or ``"mps"`` (``cnn``, ``autoencoder``).
    normalisation : {"plate", "global"}
        ``features``, ``pca``, ``autoencoder``: each plate with its own statistics
        (its control cells' with ``controls``), or one set for all cells.
        (A CNN normalises as it was trained.)
    controls : str, optional
        ``"COLUMN=VALUE[,VALUE]"`` naming each plate's control cells (``compound=DMSO``).
    input_size : int, optional
        Side the crops are shrunk to: ``pca`` (default 32) and ``autoencoder`` (default 32).
    batch_size : int
        Cells per forward pass (``cnn``, ``autoencoder``); the PCA reads batches
        of ``4 * dimensions`` cells (at least 256), its quickest.
    """

    source: str
    model: str | None = None
    dimensions: int = 50
    epochs: int | None = None
    seed: int = 0
    device: str = "auto"
    normalisation: str = "plate"
    controls: str | None = None
    input_size: int | None = None
    batch_size: int = 512

    def __post_init__(self) -> None:
        for name, choices in (("source", EMBEDDING_SOURCES), ("normalisation", NORMALISATIONS)):
            if getattr(self, name) not in choices:
                raise ValueError(f"EmbedRequest.{name} must be one of {', '.join(choices)}; "
                                 f"got {getattr(self, name)!r}.")
        for name, minimum, optional in (("dimensions", 1, False), ("epochs", 1, True), ("seed", 0, False),
                                        ("input_size", 4, True), ("batch_size", 1, False)):
            value = getattr(self, name)
            if value is None and optional:
                continue
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
                raise ValueError(f"EmbedRequest.{name} must be an integer of at least {minimum}; got {value!r}.")
            setattr(self, name, int(value))
        if self.controls is not None:
            from ..learn.plates import controls_text

            self.controls = controls_text(self.controls)


def resolve_cnn_model(project_dir: str | os.PathLike, model: str | None) -> tuple[Path, str]:
    """The checkpoint of ``model`` (a catalog name or a file) and its name; default the newest CNN.

    Raises
    ------
    FileNotFoundError
        No such model (listing the project's models), or no CNN in the project.
    ValueError
        When the named model is a random forest, which has no embedding.
    """
    from ..names import shorten
    from ..project import Project

    catalog = Project(project_dir).models()
    if model is None:
        cnns = [r for r in catalog.records() if r.kind == "cnn"]
        if not cnns:
            raise FileNotFoundError(f"Project {project_dir} has no CNN to embed the cells with; train one "
                                    "('napari-hcs train') or give a checkpoint file with --model.")
        return Path(cnns[0].path), cnns[0].name
    if model in catalog:
        record = catalog.record(model)
        if record.kind != "cnn":
            raise ValueError(f"Model {model!r} is a {record.kind}, which gives no embedding; name a CNN.")
        return Path(record.path), model
    if Path(model).is_file():
        return Path(model), Path(model).stem
    raise FileNotFoundError(f"No model named {model!r} in project {project_dir} (its models: "
                            f"{shorten(catalog.names()) or 'none yet'}), and no checkpoint file {model!r}.")


def _cells(project_dir: Path, *, features: bool = False) -> pd.DataFrame:
    """The cells with their well annotations (the whole cell table for ``features``)."""
    from ..project import Project

    project = Project(project_dir)
    if features:
        return project.cell_table()
    cells = project.cell_store().cells()
    annotations = project.well_annotations()
    if annotations is not None and len(annotations) and "well" in cells:
        extra = [c for c in annotations.columns if c not in cells.columns]
        cells = cells.join(annotations[extra], on="well")
    return cells


def nan_embedding_message(cells: pd.DataFrame, bad_crop_index: np.ndarray, what: str) -> str:
    """The error for cells whose embedding holds NaN or infinite values: how many, which wells.

    Examples
    --------
    >>> cells = pd.DataFrame({"crop_index": [0, 1, 2], "well": ["B02", "B02", "B03"]})
    >>> nan_embedding_message(cells, np.array([0, 1]), "Model 'm'")
    "Model 'm' gave NaN or infinite embedding values for 2 of 3 cells (wells B02: 2); nothing was stored."
    """
    rows = cells[cells[CROP_INDEX].isin(bad_crop_index)]
    where = ""
    if "well" in rows:
        counts = rows["well"].astype(str).value_counts().sort_index()
        listed = ", ".join(f"{well}: {n}" for well, n in list(counts.items())[:8])
        where = f" (wells {listed}{', ...' if len(counts) > 8 else ''})"
    return (f"{what} gave NaN or infinite embedding values for {len(bad_crop_index)} of {len(cells)} cells"
            f"{where}; nothing was stored.")


def _features(project_dir: Path, cells: pd.DataFrame, request: EmbedRequest):
    from ..finite import finite_features
    from ..learn.plates import normalise_per_plate
    from ..project.cell_store import feature_columns

    names = feature_columns(cells)
    if not names:
        raise ValueError(f"Project {project_dir} has no feat_* features; measure them first "
                         f"('napari-hcs features --project {project_dir}').")
    raw = cells[names].apply(pd.to_numeric, errors="coerce")
    missing = int((~np.isfinite(raw.to_numpy(dtype=float))).sum())
    raw, _ = finite_features(raw)
    table = cells if request.normalisation == "plate" else cells.drop(columns=["plate"], errors="ignore")
    controls = request.controls if request.normalisation == "plate" else None
    # A copy: pandas may hand back a read-only view of its own block.
    values = np.array(normalise_per_plate(raw, table, controls=controls).to_numpy(dtype=np.float32), copy=True)
    values[~np.isfinite(values)] = 0.0  # a feature with no value on a plate's reference cells
    info = {"features": names, "nan_values_set_to_0": missing}
    return _whole(cells[CROP_INDEX].to_numpy(dtype=np.int64), values, info)


def _cnn(project_dir: Path, cells: pd.DataFrame, request: EmbedRequest, progress, cancel):
    from ..nn import load_checkpoint, predict_cells, resolve_device
    from ..nn.predict import normalisation_table

    path, name = resolve_cnn_model(project_dir, request.model)
    model, meta = load_checkpoint(path, device=resolve_device(request.device))
    store = _store(project_dir)
    table = normalisation_table(project_dir, cells, meta)
    table = table[table[CROP_INDEX].isin(cells[CROP_INDEX])]
    out = predict_cells(model, meta, store.crops, indices=cells[CROP_INDEX].to_numpy(),
                        batch_size=request.batch_size, device=request.device, channels=store.channels,
                        embeddings=True, table=table, progress=progress, cancel=cancel)
    normalisation = meta.get("normalisation") or {}
    info = {"model": name, "checkpoint": str(Path(path).resolve()), "architecture": meta.get("architecture"),
            "classes": meta.get("classes"), "tta": meta.get("tta"),
            "normalisation": {"method": normalisation.get("method", "global"),
                              "controls": normalisation.get("controls"), "as": "the model was trained"}}
    return _whole(out.crop_index, out.embeddings, info)


def _pca(project_dir: Path, cells: pd.DataFrame, request: EmbedRequest, progress, cancel):
    from .crop_pca import DEFAULT_PCA_SIZE, crop_pca_blocks

    blocks, dims, info = crop_pca_blocks(
        _store(project_dir).crops, cells, dimensions=request.dimensions, size=request.input_size or DEFAULT_PCA_SIZE,
        normalisation=request.normalisation, controls=request.controls, seed=request.seed,
        batch_size=max(4 * request.dimensions, 256), progress=progress, cancel=cancel)
    return dims, blocks, info


def _autoencoder(project_dir: Path, cells: pd.DataFrame, request: EmbedRequest, progress, cancel):
    from .autoencoder_embedding import autoencoder_embedding

    store = _store(project_dir)
    crop_index, values, info = autoencoder_embedding(project_dir, cells, store.crops, channels=store.channels,
                                                     request=request, progress=progress, cancel=cancel)
    return _whole(crop_index, values, info)


def _store(project_dir: Path):
    from ..project import CellStore

    return CellStore(project_dir)


def _whole(crop_index: np.ndarray, values: np.ndarray, info: dict):
    """``(dimensions, blocks, info)`` of an embedding computed at once."""
    return int(values.shape[1]), [(crop_index, values)], info


_SOURCES = {"cnn": _cnn, "pca": _pca, "autoencoder": _autoencoder}


def embed_cells(project_dir: str | os.PathLike, request: EmbedRequest, *,
                progress: Callable[[int, int], None] | None = None, cancel=None) -> Embedding:
    """Compute one embedding of every cell of a project and store it as ``embeddings/<source>``.

    Parameters
    ----------
    project_dir : path
        Project folder with cells (``napari-hcs segment`` or ``import-crops``).
    request : EmbedRequest
        The source and its options.
    progress : callable, optional
        ``progress(done, total)`` while it works (in cells; training epochs for the autoencoder).
    cancel : callable or threading.Event, optional
        Checked between batches; when set, :class:`napari_hcs.cancel.Cancelled`
        is raised and the stored embedding of that source stays as it was.

    Returns
    -------
    Embedding
        The stored embedding; ``provenance`` has ``source``, ``request`` (the
        options), ``normalisation``, ``cells_dropped`` (QC-excluded site -> cells),
        ``seconds`` and what the source adds (``model``, ``features``, ...).

    Raises
    ------
    FileNotFoundError
        A missing project, or a missing model (listing the project's models).
    ValueError
        A project without cells (or features, for ``features``), a model that
        does not fit the crops, NaN or infinite embedding values (naming how
        many cells and which wells).
    """
    from ..images.site_exclusions import drop_excluded_cells
    from ..project import Project

    project_dir = Path(project_dir)
    if not (project_dir / "cells.json").exists() and not (project_dir / "cells").is_dir():
        raise FileNotFoundError(f"Project {project_dir} has no cells; segment a plate or import crops first.")
    started = time.perf_counter()
    cells = _cells(project_dir, features=request.source == "features")
    cells, dropped = drop_excluded_cells(cells, project_dir)
    cells = cells.reset_index(drop=True)
    if cells.empty:
        raise ValueError(f"Project {project_dir} has no cells to embed"
                         f"{' (every site was excluded by quality control)' if dropped else ''}.")
    provenance = {"source": request.source, "request": asdict(request), "cells_dropped": dropped,
                  "cells_dropped_total": int(sum(dropped.values())),
                  "normalisation": {"method": request.normalisation, "controls": request.controls}}
    with Project(project_dir).lock(wait=False, command=f"napari-hcs: embedding cells ({request.source})"):
        if request.source == "features":
            dims, blocks, info = _features(project_dir, cells, request)
        else:
            dims, blocks, info = _SOURCES[request.source](project_dir, cells, request, progress, cancel)
        return _write(project_dir, cells, request, (dims, blocks), {**provenance, **info}, started)


def _write(project_dir: Path, cells: pd.DataFrame, request: EmbedRequest, computed, provenance: dict,
           started: float) -> Embedding:
    dims, blocks = computed
    store = EmbeddingStore(project_dir)
    what = f"Model {provenance['model']!r}" if request.source == "cnn" else f"The {request.source} embedding"
    bad: list[np.ndarray] = []
    with store.writer(request.source, dimensions=dims, provenance=provenance,
                      expected_rows=len(cells)) as writer:
        for crop_index, values in blocks:
            values = np.asarray(values, dtype=np.float32)
            finite = np.isfinite(values).all(axis=1)
            if not finite.all():
                bad.append(np.asarray(crop_index)[~finite])
            writer.append(crop_index, values)
        if bad:  # raised inside the writer, so nothing replaces the stored embedding
            raise ValueError(nan_embedding_message(cells, np.concatenate(bad), what))
        # The writer reads the provenance when the block ends.
        provenance["seconds"] = round(time.perf_counter() - started, 2)
    return store.read(request.source)

