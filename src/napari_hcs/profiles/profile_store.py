"""Well profiles kept in a project folder.

Layout inside the project folder::

    profiles/wells.parquet   one row per well: metadata columns, then the profile's features
    profiles/wells.json      provenance: which features, aggregation, normalisation,
                             controls, feature selection, embedding source

Examples
--------
>>> table = pd.DataFrame({"plate": ["P1", "P1"], "well": ["B02", "B03"], "feat_a": [0.0, 1.5]})
>>> write_well_profiles(tmp_path, table, features=["feat_a"], provenance={"aggregation": "median"})
>>> profiles = read_well_profiles(tmp_path)
>>> profiles.features, profiles.metadata_columns, profiles.provenance["aggregation"]
(['feat_a'], ['plate', 'well'], 'median')
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from ..atomic import write_json_atomic, write_parquet_atomic

__all__ = ["WellProfiles", "read_well_profiles", "well_profiles_path", "write_well_profiles"]


@dataclass
class WellProfiles:
    """Well profiles: a table, the names of its feature columns, how it was made."""

    table: pd.DataFrame
    features: list[str]
    provenance: dict = field(default_factory=dict)

    @property
    def metadata_columns(self) -> list[str]:
        chosen = set(self.features)
        return [c for c in self.table.columns if c not in chosen]

    def values(self):
        """The profiles as a float array ``(wells, features)``."""
        return self.table[self.features].to_numpy(dtype=float)


def well_profiles_path(project_dir: str | os.PathLike) -> Path:
    return Path(project_dir) / "profiles" / "wells.parquet"


def write_well_profiles(project_dir: str | os.PathLike, table: pd.DataFrame, *, features: list[str],
                        provenance: dict) -> None:
    """Write (replace) the project's well profiles; ``features`` name the profile columns."""
    missing = [f for f in features if f not in table.columns]
    if missing:
        raise ValueError(f"Well profiles lack the feature columns {missing[:5]}.")
    path = well_profiles_path(project_dir)
    write_parquet_atomic(table, path)
    write_json_atomic({**provenance, "features": list(features)}, path.with_suffix(".json"))


def read_well_profiles(project_dir: str | os.PathLike) -> WellProfiles:
    """Read the project's well profiles; a clear error says how to make them."""
    path = well_profiles_path(project_dir)
    if not path.exists():
        raise FileNotFoundError(f"Project {project_dir} has no well profiles yet; run "
                                f"'napari-hcs profile --project {project_dir}' first.")
    provenance = json.loads(path.with_suffix(".json").read_text())
    table = pd.read_parquet(path)
    return WellProfiles(table=table, features=list(provenance.get("features", [])), provenance=provenance)
