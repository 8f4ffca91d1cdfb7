"""Annotations a user makes: the class list and the class of each well.

The class list is ``[{"name": ..., "color": "#rrggbb"}, ...]`` (saved as
``classes.json``); a well's class is the ``class`` column of the plate's
annotations (saved as ``layout.csv``). These functions hold the rules; the
viewer session and the command line both use them.

Examples
--------
>>> classes = add_class([], "control")
>>> classes = add_class(classes, "treated")
>>> [(c["name"], c["color"]) for c in classes]
[('control', '#e69f00'), ('treated', '#56b4e9')]
>>> set_well_class(plate, ["B02"], "control")
>>> well_colors(plate.annotations, classes)
{'B02': '#e69f00'}
"""

from __future__ import annotations

import pandas as pd
from matplotlib.colors import to_hex

from ..plate import Plate

__all__ = [
    "DEFAULT_CLASS_COLORS",
    "LABEL_COLUMN",
    "add_class",
    "class_color",
    "merge_classes",
    "next_class_color",
    "remove_class",
    "rename_class",
    "rename_class_in_annotations",
    "set_class_color",
    "set_well_class",
    "well_class_counts",
    "well_colors",
]

#: Colours given to new classes in turn (colour-blind friendly, Okabe-Ito).
DEFAULT_CLASS_COLORS = [
    "#E69F00", "#56B4E9", "#009E73", "#F0E442",
    "#0072B2", "#D55E00", "#CC79A7", "#999999",
]

#: Annotation column holding each well's class.
LABEL_COLUMN = "class"

#: A cleared class: NaN, which Plate.well_annotations and the layout table treat as empty.
_NO_CLASS = float("nan")


def class_color(color: str) -> str:
    """Return a colour (any matplotlib colour: name, hex, ...) as ``#rrggbb``.

    Raises
    ------
    ValueError
        If the text is not a colour.
    """
    try:
        return to_hex(color, keep_alpha=False)
    except ValueError:
        raise ValueError(f"{color!r} is not a colour; give a name such as 'red' or '#rrggbb'.") from None


def next_class_color(classes: list[dict]) -> str:
    """Return the first default class colour not used yet, as ``#rrggbb`` (cycling when all are)."""
    used = {str(c.get("color", "")).lower() for c in classes}
    for color in DEFAULT_CLASS_COLORS:
        if color.lower() not in used:
            return color.lower()
    return DEFAULT_CLASS_COLORS[len(classes) % len(DEFAULT_CLASS_COLORS)].lower()


def _index(classes: list[dict], name: str) -> int:
    for index, entry in enumerate(classes):
        if entry["name"] == name:
            return index
    known = ", ".join(c["name"] for c in classes) or "none"
    raise ValueError(f"No class named {name!r}; classes are: {known}.")


def add_class(classes: list[dict], name: str, color: str | None = None) -> list[dict]:
    """Return the class list with a new class (the next default colour when none is given).

    Raises
    ------
    ValueError
        If the name is empty or already used.
    """
    name = str(name).strip()
    if not name:
        raise ValueError("A class needs a name.")
    if any(c["name"] == name for c in classes):
        raise ValueError(f"Class {name!r} already exists.")
    return [*classes, {"name": name, "color": class_color(color or next_class_color(classes))}]


def rename_class(classes: list[dict], old: str, new: str) -> list[dict]:
    """Return the class list with ``old`` renamed to ``new``.

    Raises
    ------
    ValueError
        If ``old`` is not a class, or ``new`` is empty or another class's name.
    """
    new = str(new).strip()
    index = _index(classes, old)
    if not new or (new != old and any(c["name"] == new for c in classes)):
        raise ValueError(f"Cannot rename {old!r} to {new!r}: empty or already used.")
    renamed = [dict(c) for c in classes]
    renamed[index]["name"] = new
    return renamed


def remove_class(classes: list[dict], name: str) -> list[dict]:
    """Return the class list without ``name`` (ValueError if there is no such class)."""
    index = _index(classes, name)
    return [dict(c) for i, c in enumerate(classes) if i != index]


def set_class_color(classes: list[dict], name: str, color: str) -> list[dict]:
    """Return the class list with a new colour for ``name``."""
    index = _index(classes, name)
    changed = [dict(c) for c in classes]
    changed[index]["color"] = class_color(color)
    return changed


def merge_classes(classes: list[dict], annotations: pd.DataFrame) -> list[dict]:
    """Return the class list plus any class named in the annotations but not listed.

    Examples
    --------
    >>> table = pd.DataFrame({"class": ["a", "b", None]}, index=["A01", "A02", "A03"])
    >>> [c["name"] for c in merge_classes([{"name": "b", "color": "#000000"}], table)]
    ['b', 'a']
    """
    merged = [dict(c) for c in classes]
    if LABEL_COLUMN not in annotations.columns:
        return merged
    names = {c["name"] for c in merged}
    for value in annotations[LABEL_COLUMN].dropna():
        name = str(value)
        if name and name not in names:
            merged.append({"name": name, "color": next_class_color(merged)})
            names.add(name)
    return merged


def well_colors(annotations: pd.DataFrame, classes: list[dict]) -> dict[str, str]:
    """Return ``{well: colour}`` of every well whose class is in the class list."""
    if LABEL_COLUMN not in annotations.columns:
        return {}
    color_of = {c["name"]: c["color"] for c in classes}
    colors = {}
    for well, value in annotations[LABEL_COLUMN].dropna().items():
        if str(value) in color_of:
            colors[well] = color_of[str(value)]
    return colors


def well_class_counts(annotations: pd.DataFrame) -> dict[str, int]:
    """Return the number of wells of each class."""
    if LABEL_COLUMN not in annotations.columns:
        return {}
    return {str(k): int(v) for k, v in annotations[LABEL_COLUMN].dropna().astype(str).value_counts().items()}


def set_well_class(plate: Plate, wells: list[str], name: str | None) -> None:
    """Give wells a class (``name``), or clear their class when ``name`` is None."""
    if name is not None:
        for well in wells:
            plate.annotate(well, class_=name)
        return
    if LABEL_COLUMN not in plate.annotations.columns:
        return
    present = [w for w in wells if w in plate.annotations.index]
    if present:
        plate.annotations.loc[present, LABEL_COLUMN] = _NO_CLASS


def rename_class_in_annotations(plate: Plate, old: str, new: str | None) -> list[str]:
    """Rename a class in the plate's annotations (None clears it); return the wells changed."""
    if LABEL_COLUMN not in plate.annotations.columns:
        return []
    column = plate.annotations[LABEL_COLUMN]
    wells = list(column.index[column.astype("string") == old])
    if wells:
        plate.annotations.loc[wells, LABEL_COLUMN] = new if new is not None else _NO_CLASS
    return wells
