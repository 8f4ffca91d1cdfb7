"""The project folder: settings, cell store, annotations and models of one plate.

Everything a user did with a plate (well annotations, classes, cell labels, models)
lives in its project folder, next to the plate; reopening the folder restores it.
One run writes a project at a time (:class:`ProjectLock`), and a project refuses
another plate or other settings once it holds cells
(:mod:`napari_hcs.project.identity`).
"""

from .cell_labels import CellLabels
from .cell_store import CROP_INDEX, CellStore, feature_columns, site_key
from .crop_import import DEFAULT_CHUNK_SIZE, import_crops
from .annotations import DEFAULT_CLASS_COLORS, LABEL_COLUMN
from .folder import Project, default_project_dir
from .identity import PlateMovedError, ProjectMismatchError, plate_identity
from .lock import ProjectLock, ProjectLockedError, read_lock
from .model_catalog import ModelCatalog, ModelMismatchError, ModelRecord, check_model_name

__all__ = [
    "CROP_INDEX",
    "DEFAULT_CHUNK_SIZE",
    "CellLabels",
    "CellStore",
    "DEFAULT_CLASS_COLORS",
    "LABEL_COLUMN",
    "ModelCatalog",
    "ModelMismatchError",
    "ModelRecord",
    "PlateMovedError",
    "Project",
    "ProjectLock",
    "ProjectLockedError",
    "ProjectMismatchError",
    "check_model_name",
    "default_project_dir",
    "feature_columns",
    "import_crops",
    "plate_identity",
    "read_lock",
    "site_key",
]
