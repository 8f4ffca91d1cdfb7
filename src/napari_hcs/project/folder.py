"""The project folder: everything a user did with a plate, kept next to it.

A project folder holds::

    project.json        the plate (absolute location and identity), reader pattern,
                        segmentation settings and crop size, created/updated times
    .lock               while a run writes the project: who (see project.lock)
    layout.csv          per-well annotations (class, compound, concentration, ...);
                        a plate without annotations has a header-only one
    classes.json        the class list the user edits: [{"name", "color"}, ...]
    cell_labels.csv     the classes users gave single cells (project.cell_labels)
    cells.json, cells/, crops.zarr, features/, columns/   the cell store
    labels/             segmentation labels of every site (the label store)
    models/             trained models by name: <name>.pt (CNN), <name>.forest.joblib,
                        <name>.json records, <name>.evaluation.parquet (project.model_catalog)

Reopening the folder restores the annotations, classes, cell labels and models.
"""

from __future__ import annotations

import json
import os
import tempfile
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd

from ..io import LabelStore, read_layout_table, write_layout_table
from ..atomic import write_json_atomic
from .cell_labels import CellLabels
from .cell_store import CellStore
from .identity import PlateMovedError, check_run, check_same_plate, moved_message, plate_identity
from .lock import ProjectLock
from .model_catalog import ModelCatalog
from ..plate import Plate

__all__ = ["Project", "default_project_dir"]

def default_project_dir(plate: "Plate | str | os.PathLike") -> Path:
    """Return the default project folder of a plate: ``<plate>.napari-hcs`` beside it.

    ``plate`` is a :class:`~napari_hcs.plate.Plate` or the path it was opened from;
    a plate opened from no path (a generated plate) gets
    ``~/.napari-hcs/projects/<plate name>.napari-hcs``.

    When the plate's folder cannot be written (read-only data; ``os.access`` is not
    trusted, since root passes it on read-only mounts) or the plate is a sample
    bundled inside the package, the project goes to
    ``~/.napari-hcs/projects/<plate name>.napari-hcs`` instead.
    """
    if isinstance(plate, Plate):
        if not plate.source:
            return _home_projects() / f"{plate.name}.napari-hcs"
        plate = plate.source
    plate_path = Path(plate).resolve()
    beside = plate_path.with_name(plate_path.name.removesuffix(".zarr") + ".napari-hcs")
    package = Path(__file__).resolve().parents[1]
    if package not in plate_path.parents and _can_write(plate_path.parent):
        return beside
    return _home_projects() / beside.name


def _home_projects() -> Path:
    return Path.home() / ".napari-hcs" / "projects"


def _can_write(folder: Path) -> bool:
    try:
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".napari-hcs-probe-"):
            return True
    except OSError:
        return False


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


class Project:
    """A project folder tied to a plate.

    Parameters
    ----------
    folder : path
        Project folder; created when missing.

    Examples
    --------
    >>> project = Project(tmp_path / "screen.napari-hcs")
    >>> plate.annotate("B04", class_="treated")
    >>> project.save_annotations(plate).name
    'layout.csv'
    >>> project.apply_annotations(plate).well_annotations("B04")["class"]   # as saved
    'treated'
    """

    def __init__(self, folder: str | os.PathLike):
        self.folder = Path(folder)
        if self.folder.exists() and not self.folder.is_dir():
            raise ValueError(f"Project folder {self.folder} is a file, not a folder; give a folder.")
        self.folder.mkdir(parents=True, exist_ok=True)

    def lock(self, **options) -> ProjectLock:
        """The project's lock (a context manager); options as in :class:`ProjectLock`."""
        return ProjectLock(self.folder, **options)

    # -- metadata -----------------------------------------------------------
    @property
    def meta_path(self) -> Path:
        return self.folder / "project.json"

    def read_meta(self) -> dict:
        """Return project.json (empty dict when missing)."""
        if not self.meta_path.exists():
            return {}
        return json.loads(self.meta_path.read_text())

    def update_meta(self, **values) -> dict:
        """Merge values into project.json (written atomically) and return it."""
        meta = self.read_meta()
        meta.setdefault("created", _now())
        meta.update(values, updated=_now())
        write_json_atomic(meta, self.meta_path)
        return meta

    # -- the plate ----------------------------------------------------------
    def open_plate(self, path: str | os.PathLike | None = None, *, pattern: str | None = None,
                   illumination: bool = True) -> Plate:
        """Open the plate this project was made for, with its annotations applied.

        When project.json records illumination correction applied (``illumination``:
        ``{"method": ..., "applied": true}``) the plate reads corrected pixels
        (:func:`napari_hcs.images.corrected_loader.corrected_plate`), unless
        ``illumination=False``.

        Parameters
        ----------
        path : path, optional
            Where the plate is now, when it moved; default the recorded location.
        pattern : str, optional
            Reader pattern; default the recorded one.

        Raises
        ------
        FileNotFoundError
            If the project records no plate, or the plate is not at the recorded
            location (:class:`~napari_hcs.project.identity.PlateMovedError`, saying
            how to point at it).
        ValueError
            If the plate found is not the one the project records
            (:class:`~napari_hcs.project.identity.ProjectMismatchError`).
        """
        from ..io import open_plate

        meta = self.read_meta()
        if path is None:
            if "plate" not in meta:
                raise FileNotFoundError(f"Project {self.folder} records no plate (project.json).")
            path = meta["plate"]
            if not Path(path).exists():
                raise PlateMovedError(moved_message(self.folder, str(path)))
        plate = open_plate(path, pattern=pattern if pattern is not None else meta.get("pattern"))
        self.check_plate(plate)
        self.apply_annotations(plate)
        if illumination:
            from ..images.corrected_loader import with_project_illumination

            plate = with_project_illumination(plate, self.folder, meta)
        return plate

    def check_plate(self, plate: Plate) -> None:
        """Raise when ``plate`` is not the plate the project records (wells, sites, channels, shape)."""
        check_same_plate(self.folder, self.read_meta(), plate)

    def check_run(self, plate: Plate, settings: dict) -> None:
        """Refuse a segmentation run whose plate or settings differ from the cells held.

        ``settings`` are flat: the segmentation settings and ``crop_size``. Nothing is
        checked while the project holds no segmented site. See
        :func:`napari_hcs.project.identity.check_run`.
        """
        done = len(CellStore(self.folder).done_sites()) if (self.folder / CellStore.META).exists() else 0
        check_run(self.folder, self.read_meta(), plate, settings, n_done=done)

    def record_plate(self, plate: Plate, **values) -> dict:
        """Record the plate (its absolute location and identity) and ``values`` in project.json.

        Examples
        --------
        >>> project = Project(tmp_path / "p")
        >>> meta = project.record_plate(plate, pattern="scportrait")
        >>> Path(meta["plate"]).is_absolute(), meta["plate_identity"]["shape"]
        (True, [540, 540])
        """
        values["plate_identity"] = plate_identity(plate)
        if plate.source is not None:
            values["plate"] = os.path.abspath(plate.source)
        return self.update_meta(**values)

    # -- annotations --------------------------------------------------------
    @property
    def layout_path(self) -> Path:
        return self.folder / "layout.csv"

    def apply_annotations(self, plate: Plate) -> Plate:
        """Attach the saved well annotations (if any) to ``plate`` and return it."""
        if self.layout_path.exists():
            read_layout_table(self.layout_path, plate=plate)
        return plate

    def save_annotations(self, plate: Plate) -> Path:
        """Save the plate's well annotations to layout.csv (atomically)."""
        write_layout_table(plate.annotations, self.layout_path)
        return self.layout_path

    # -- classes ------------------------------------------------------------
    @property
    def classes_path(self) -> Path:
        return self.folder / "classes.json"

    def read_classes(self) -> list[dict]:
        """Return the class list: ``[{"name": ..., "color": "#rrggbb"}, ...]``."""
        if not self.classes_path.exists():
            return []
        return json.loads(self.classes_path.read_text())

    def save_classes(self, classes: list[dict]) -> None:
        """Save the class list (atomically)."""
        write_json_atomic(classes, self.classes_path)

    # -- cells --------------------------------------------------------------
    def cell_store(self) -> CellStore:
        """Return the project's cell store (raises when there is none yet)."""
        return CellStore(self.folder)

    def well_annotations(self) -> pd.DataFrame | None:
        """Per-well annotations: the saved layout.csv, else those stored with the plate."""
        if self.layout_path.exists():
            return read_layout_table(self.layout_path)
        if "plate" in self.read_meta():
            try:
                return self.open_plate().annotations
            except (FileNotFoundError, ValueError):
                return None
        return None

    def cell_table(self) -> pd.DataFrame:
        """Return the cell table with the project's well annotations and cell labels joined.

        The well's class is column ``class``; the class a user gave the cell itself
        is column :data:`~napari_hcs.vocabulary.CELL_CLASS_COLUMN` (``""`` when none).
        """
        table = self.cell_store().table(annotations=self.well_annotations())
        return self.cell_labels().with_cell_class(table)

    def cell_labels(self) -> CellLabels:
        """Return the classes users gave single cells (``cell_labels.csv``)."""
        return CellLabels(self.folder)

    def models(self) -> ModelCatalog:
        """Return the models trained in the project (``models/``, made when one is saved)."""
        return ModelCatalog(self.folder / "models")

    @property
    def models_dir(self) -> Path:
        path = self.folder / "models"
        path.mkdir(exist_ok=True)
        return path

    def label_store(self) -> LabelStore:
        """Return the project's label store (segmentation labels of each site)."""
        return LabelStore(self.folder)
