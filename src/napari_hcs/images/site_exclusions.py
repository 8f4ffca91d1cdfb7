"""Which sites quality control keeps out of training and profiles, recorded in the project.

``qc/exclusions.json`` in the project folder holds the sites quality control
flagged (with their reasons) and the sites the user chose to keep anyway::

    {"flagged": {"B04_f001_t000": ["focus"], ...}, "kept": ["B04_f001_t000"]}

A flagged site is excluded unless kept. Cells of excluded sites are dropped by
:func:`drop_excluded_cells`, which training and well profiles call, and which
says how many cells of which sites it dropped.

Examples
--------
>>> exclusions = SiteExclusions(tmp_path)
>>> exclusions.record_flags({"B04_f000_t000": ["focus"], "B05_f000_t000": []})
>>> sorted(exclusions.excluded())
['B04_f000_t000']
>>> exclusions.keep(["B04_f000_t000"])
>>> sorted(exclusions.excluded()), exclusions.flagged()["B04_f000_t000"]
([], ['focus'])
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pandas as pd

from ..atomic import write_json_atomic
from ..io import site_key

__all__ = ["SiteExclusions", "drop_excluded_cells", "table_site_keys"]


class SiteExclusions:
    """The flagged and kept sites of a project (``qc/exclusions.json``)."""

    def __init__(self, project_dir: str | os.PathLike):
        self.project_dir = Path(project_dir)
        self.path = self.project_dir / "qc" / "exclusions.json"

    def _read(self) -> dict:
        if not self.path.exists():
            return {"flagged": {}, "kept": []}
        data = json.loads(self.path.read_text())
        return {"flagged": dict(data.get("flagged", {})), "kept": list(data.get("kept", []))}

    def _write(self, data: dict) -> None:
        data = {"flagged": dict(sorted(data["flagged"].items())), "kept": sorted(set(data["kept"]))}
        write_json_atomic(data, self.path)

    def flagged(self) -> dict[str, list[str]]:
        """Site key -> the reasons quality control flagged it."""
        return self._read()["flagged"]

    def kept(self) -> set[str]:
        """Flagged sites the user keeps in training and profiles."""
        return set(self._read()["kept"])

    def excluded(self) -> set[str]:
        """Sites left out of training and profiles: flagged and not kept."""
        data = self._read()
        return set(data["flagged"]) - set(data["kept"])

    def record_flags(self, flags: dict[str, list[str]]) -> None:
        """Store what quality control flagged (sites with no reasons are not flagged).

        The user's choices to keep sites stay as they were.
        """
        data = self._read()
        data["flagged"] = {key: list(reasons) for key, reasons in flags.items() if reasons}
        self._write(data)

    def keep(self, keys) -> None:
        """Keep these sites in training and profiles although they are flagged."""
        data = self._read()
        data["kept"] = list(set(data["kept"]) | {str(k) for k in keys})
        self._write(data)

    def exclude(self, keys) -> None:
        """Undo :meth:`keep`: these flagged sites are left out again."""
        data = self._read()
        data["kept"] = list(set(data["kept"]) - {str(k) for k in keys})
        self._write(data)


def table_site_keys(table: pd.DataFrame) -> pd.Series:
    """The site key (``B04_f001_t000``) of each row of a cell table."""
    if table.empty:
        return pd.Series([], dtype=object, index=table.index)
    for column in ("well", "field", "timepoint"):
        if column not in table:
            raise KeyError(f"The cell table has no {column!r} column, so its sites are not known.")
    keys = [site_key(w, f, t) for w, f, t in zip(table["well"], table["field"], table["timepoint"])]
    return pd.Series(keys, index=table.index, dtype=object)


def drop_excluded_cells(table: pd.DataFrame, project_dir: str | os.PathLike) -> tuple[pd.DataFrame, dict]:
    """Leave out the cells of sites quality control excluded.

    Returns
    -------
    table : DataFrame
        The cells of the other sites (the same table when nothing is excluded,
        or when the table has no site columns, such as imported crops).
    dropped : dict
        Site key -> the number of its cells left out.
    """
    excluded = SiteExclusions(project_dir).excluded()
    if not excluded or table.empty or not {"well", "field", "timepoint"} <= set(table.columns):
        return table, {}
    keys = table_site_keys(table)
    out = keys.isin(excluded)
    dropped = keys[out].value_counts().sort_index().to_dict()
    return table.loc[~out], {str(k): int(v) for k, v in dropped.items()}
