"""The classes users gave single cells: ``cell_labels.csv`` in the project folder.

A cell label overrides its well's class in training. Each row names the cell by
its ``crop_index`` (its row in the cell table) and, to catch a project segmented
again since, by its well, site key and label id::

    crop_index,well,site_key,label,class
    17,B02,B02_f000_t001,18,mitotic

Every change is written at once, atomically (the whole small file is replaced),
so a label clicked in the viewer survives a crash or closing the viewer. The
table is kept in memory between changes and read again only when the file
changed on disk.

Examples
--------
>>> labels = CellLabels(tmp_path)
>>> cells = pd.DataFrame({"crop_index": [3, 4], "well": "B02", "field": 0, "timepoint": 1, "label": [4, 5]})
>>> labels.set(cells, "mitotic")[["crop_index", "site_key", "class"]].to_numpy().tolist()
[[3, 'B02_f000_t001', 'mitotic'], [4, 'B02_f000_t001', 'mitotic']]
>>> labels.set(cells.iloc[:1], None)["crop_index"].tolist()     # None clears a label
[4]
>>> CellLabels(tmp_path).rename_class("mitotic", "dividing")     # crop indices changed
[4]
"""

from __future__ import annotations

import hashlib
import io
import os
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd

from ..atomic import file_version, write_text_atomic
from ..io import site_key
from ..names import shorten
from ..vocabulary import CELL_CLASS_COLUMN, CROP_INDEX

__all__ = ["CELL_LABEL_COLUMNS", "CellLabels"]

#: Columns of ``cell_labels.csv``, in order.
CELL_LABEL_COLUMNS = (CROP_INDEX, "well", "site_key", "label", "class")
_DTYPES = {CROP_INDEX: "int64", "well": object, "site_key": object, "label": "int64", "class": object}
#: Columns a cell-table row needs to be labelled.
_CELL_COLUMNS = (CROP_INDEX, "well", "field", "timepoint", "label")

# path -> (file stamp, content digest, table): shared by every CellLabels of a folder (the viewer
# makes a new one per click). A file changed less than _SETTLED_NS ago may change again within the
# file system's timestamp resolution, so its content is compared.
_CACHE: dict[Path, tuple[tuple, bytes, pd.DataFrame]] = {}
_SETTLED_NS = 2_000_000_000
_LOCK = threading.Lock()


def _empty() -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype=t) for c, t in _DTYPES.items()})


def _class_name(name: object) -> str:
    text = str(name).strip()
    if not text:
        raise ValueError("A cell label needs a class name; give None to clear the label.")
    return text


class CellLabels:
    """Per-cell class labels of a project, saved at once as ``cell_labels.csv`` (atomic).

    Parameters
    ----------
    folder : path
        The project folder.
    """

    FILE = "cell_labels.csv"

    def __init__(self, folder: str | os.PathLike):
        self.folder = Path(folder)
        self.path = Path(os.path.abspath(self.folder / self.FILE))

    # -- reading --------------------------------------------------------------
    def read(self) -> pd.DataFrame:
        """Return the labels: crop_index, well, site_key, label, class (no rows when none).

        Raises
        ------
        ValueError
            If ``cell_labels.csv`` is not a cell-label table (the message names the
            file and the columns expected).
        """
        with _LOCK:
            return self._current().copy()

    def _current(self) -> pd.DataFrame:
        """The table held, read again when the file changed (a recent file is compared by content)."""
        stamp = file_version(self.path)
        if stamp is None:
            return _empty()
        cached = _CACHE.get(self.path)
        if cached is not None and cached[0] == stamp and time.time_ns() - stamp[1] > _SETTLED_NS:
            return cached[2]
        raw = self.path.read_bytes()
        digest = hashlib.blake2b(raw, digest_size=16).digest()
        if cached is not None and cached[1] == digest:
            table = cached[2]
        else:
            table = self._parse(raw)
        _CACHE[self.path] = (stamp, digest, table)
        return table

    def _parse(self, raw: bytes) -> pd.DataFrame:
        try:
            frame = pd.read_csv(io.BytesIO(raw), dtype=str, keep_default_na=False)
        except (ValueError, UnicodeDecodeError) as error:
            raise ValueError(f"Cell labels {self.path} cannot be read as a table: {error}") from None
        missing = [c for c in CELL_LABEL_COLUMNS if c not in frame.columns]
        if missing:
            raise ValueError(
                f"Cell labels {self.path} lack the column(s) {', '.join(missing)}; expected "
                f"{', '.join(CELL_LABEL_COLUMNS)} (found: {shorten(frame.columns)})."
            )
        table = frame[list(CELL_LABEL_COLUMNS)]
        try:
            table = table.astype(_DTYPES)
        except ValueError:
            bad = table[~table[CROP_INDEX].str.fullmatch(r"\d+") | ~table["label"].str.fullmatch(r"\d+")]
            line = int(bad.index[0]) + 2 if len(bad) else 2
            raise ValueError(
                f"Cell labels {self.path}, line {line}: crop_index and label must be whole numbers."
            ) from None
        table = table[table["class"].str.strip() != ""]
        return table.drop_duplicates(CROP_INDEX, keep="last").sort_values(CROP_INDEX).reset_index(drop=True)

    def class_of(self) -> pd.Series:
        """Return each labelled cell's class, indexed by crop index."""
        table = self.read()
        return pd.Series(table["class"].to_numpy(), index=pd.Index(table[CROP_INDEX], name=CROP_INDEX),
                         name="class")

    def with_cell_class(self, table: pd.DataFrame) -> pd.DataFrame:
        """Return a cell table with the :data:`~napari_hcs.vocabulary.CELL_CLASS_COLUMN` column.

        Joined on ``crop_index``; a label whose well, site or cell id differ from
        the cell's (the plate was segmented again since) is left out. Cells
        without a label get ``""``.
        """
        table = table.copy()
        table[CELL_CLASS_COLUMN] = ""
        labels = self.read()
        if labels.empty or table.empty or CROP_INDEX not in table:
            return table
        rows = pd.Series(np.arange(len(table)), index=table[CROP_INDEX].to_numpy())
        rows = rows[~rows.index.duplicated()]
        labels = labels[labels[CROP_INDEX].isin(rows.index)]
        if labels.empty:
            return table
        at = rows.loc[labels[CROP_INDEX].to_numpy()].to_numpy()
        same = np.ones(len(labels), dtype=bool)
        if {"well", "label"} <= set(table.columns):
            same &= table["well"].astype(str).to_numpy()[at] == labels["well"].to_numpy()
            same &= table["label"].to_numpy()[at].astype(np.int64) == labels["label"].to_numpy()
        if {"well", "field", "timepoint"} <= set(table.columns):
            keys = [site_key(w, f, t) for w, f, t in table[["well", "field", "timepoint"]].to_numpy()[at]]
            same &= np.asarray(keys, dtype=object) == labels["site_key"].to_numpy()
        column = table.columns.get_loc(CELL_CLASS_COLUMN)
        table.iloc[at[same], column] = labels["class"].to_numpy()[same]
        return table

    # -- changing -------------------------------------------------------------
    def set(self, cells: pd.DataFrame, name: str | None) -> pd.DataFrame:
        """Give cells the class ``name`` (None removes their labels), saved at once.

        Parameters
        ----------
        cells : DataFrame
            Cell-table rows with crop_index, well, field, timepoint and label.
        name : str or None
            The class; None clears the labels of these cells.

        Returns
        -------
        DataFrame
            The whole label table, as saved.

        Raises
        ------
        ValueError
            If ``cells`` lacks a column, or ``name`` is empty.
        OSError
            If the file cannot be written (e.g. a read-only project folder); the
            message names the file, and the labels are left as they were.
        """
        missing = [c for c in _CELL_COLUMNS if c not in cells.columns]
        if missing:
            raise ValueError(f"Cells to label lack the column(s) {', '.join(missing)}; "
                             f"give cell-table rows ({', '.join(_CELL_COLUMNS)}).")
        name = None if name is None else _class_name(name)
        with _LOCK:
            table = self._current()
            indices = cells[CROP_INDEX].to_numpy(dtype=np.int64)
            kept = table[~table[CROP_INDEX].isin(indices)]
            if name is None or not len(cells):
                return self._write(kept) if len(kept) != len(table) else table.copy()
            rows = cells.drop_duplicates(CROP_INDEX, keep="last")
            new = pd.DataFrame({
                CROP_INDEX: rows[CROP_INDEX].to_numpy(dtype=np.int64),
                "well": rows["well"].astype(str).to_numpy(),
                "site_key": [site_key(w, f, t) for w, f, t in rows[["well", "field", "timepoint"]].to_numpy()],
                "label": rows["label"].to_numpy(dtype=np.int64),
                "class": name,
            })
            return self._write(pd.concat([kept, new.astype(_DTYPES)], ignore_index=True))

    def rename_class(self, old: str, new: str) -> list[int]:
        """Rename a class in the labels; return the crop indices of the cells changed."""
        new = _class_name(new)
        with _LOCK:
            table = self._current()
            hit = table["class"] == old
            if not hit.any() or old == new:
                return []
            changed = table.copy()
            changed.loc[hit, "class"] = new
            self._write(changed)
            return table.loc[hit, CROP_INDEX].tolist()

    def remove_class(self, name: str) -> list[int]:
        """Remove the labels of a class; return the crop indices of the cells that lost theirs."""
        with _LOCK:
            table = self._current()
            hit = table["class"] == name
            if hit.any():
                self._write(table[~hit])
            return table.loc[hit, CROP_INDEX].tolist()

    def _write(self, table: pd.DataFrame) -> pd.DataFrame:
        """Save ``table`` atomically and make it the one held; on failure nothing changes."""
        table = table.sort_values(CROP_INDEX, kind="stable").reset_index(drop=True)
        text = table.to_csv(index=False, lineterminator="\n")
        try:
            write_text_atomic(text, self.path)
        except OSError as error:
            reason = error.strerror or str(error)
            raise OSError(
                f"Could not save cell labels to {self.path}: {reason}. The labels were not changed; "
                "make the project folder writable, or open the project in another folder."
            ) from error
        _CACHE[self.path] = (file_version(self.path), hashlib.blake2b(text.encode(), digest_size=16).digest(), table)
        return table.copy()

    def __len__(self) -> int:
        return len(self.read())
