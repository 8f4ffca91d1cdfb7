"""What a project was made from: the plate's identity and the run's settings.

A project records, in ``project.json``, the plate it was segmented from (its
absolute location, ``plate``, and its identity, ``plate_identity``: wells,
sites per well, channels, image shape and pixel type) and the settings the
cells were made with (``segmentation``, ``crop_size``). Once the project holds
cells, a run with another plate or other settings is refused with a message
that says what differs, since its sites would be skipped as done and the
project would mix cells of two plates or two settings.

Examples
--------
>>> identity = plate_identity(plate)
>>> identity["channels"], identity["sites"]
(['Alexa488', 'DAPI', 'mCherry'], {'B02': 3, 'B04': 3})
>>> other = dict(identity, channels=["DAPI", "GFP"])
>>> identity_differences(identity, other)
['channels differ: project has Alexa488, DAPI, mCherry; plate has DAPI, GFP']
"""

from __future__ import annotations

from typing import Any

from ..plate import Plate

__all__ = [
    "PlateMovedError",
    "ProjectMismatchError",
    "check_run",
    "check_same_plate",
    "identity_differences",
    "plate_identity",
    "settings_differences",
    "short_list",
]

#: Items shown of a long list in a message.
SHOWN = 8


def plate_identity(plate: Plate) -> dict:
    """Return the identity of a plate: wells, sites per well, channels, shape, dtype."""
    return {
        "wells": list(plate.wells),
        "sites": {well: len(sites) for well, sites in plate.sites.items()},
        "channels": list(plate.channels),
        "shape": [int(n) for n in plate.shape],
        "dtype": str(plate.dtype),
    }


def short_list(values, *, shown: int = SHOWN) -> str:
    """Comma-separated values, cut after ``shown`` with the count.

    Examples
    --------
    >>> short_list(["A01", "A02"])
    'A01, A02'
    >>> short_list([f"A{i:02d}" for i in range(1, 25)], shown=3)
    'A01, A02, A03, ... (24 in all)'
    """
    values = [str(v) for v in values]
    if len(values) <= shown:
        return ", ".join(values) or "none"
    return f"{', '.join(values[:shown])}, ... ({len(values)} in all)"


def identity_differences(recorded: dict, current: dict) -> list[str]:
    """What differs between a recorded plate identity and a plate's (empty when the same).

    Keys missing from ``recorded`` (older projects) are not compared.
    """
    notes = []
    for key, what in (("channels", "channels differ"), ("wells", "wells differ"),
                      ("shape", "image shape differs"), ("dtype", "pixel type differs")):
        if key in recorded and recorded[key] != current[key]:
            notes.append(f"{what}: project has {_show(recorded[key])}; plate has {_show(current[key])}")
    if "sites" in recorded and recorded.get("wells") == current["wells"] and recorded["sites"] != current["sites"]:
        changed = [f"{w} {recorded['sites'].get(w)} -> {n}" for w, n in current["sites"].items()
                   if recorded["sites"].get(w) != n]
        notes.append(f"sites per well differ (project -> plate): {short_list(changed)}")
    return notes


def _show(value: Any) -> str:
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return short_list(value)
    if isinstance(value, list):
        return " x ".join(str(v) for v in value)
    return str(value)


def settings_differences(recorded: dict, current: dict) -> list[str]:
    """The settings that differ, as ``name: project has A, run asks for B``.

    Examples
    --------
    >>> settings_differences({"diameter": None, "crop_size": 32}, {"diameter": 12.0, "crop_size": 32})
    ['diameter: project has None, run asks for 12.0']
    """
    return [
        f"{name}: project has {recorded.get(name)!r}, run asks for {value!r}"
        for name, value in current.items()
        if name in recorded and recorded[name] != value
    ]


class ProjectMismatchError(ValueError):
    """The project holds cells of another plate, or made with other settings."""


def _start_over(folder, subject: str) -> str:
    return f"To segment {subject}, give a new project folder (--project), or delete {folder} to start over."


def check_run(folder, meta: dict, plate: Plate, settings: dict, *, n_done: int) -> None:
    """Refuse a segmentation run that does not fit the cells a project holds.

    Parameters
    ----------
    folder : path
        The project folder (for the message).
    meta : dict
        Its ``project.json``.
    plate : Plate
        The plate of the run.
    settings : dict
        The run's settings, flat: the segmentation settings and ``crop_size``.
    n_done : int
        Sites the project holds; nothing is checked when 0.

    Raises
    ------
    ProjectMismatchError
        Saying what differs and how to go on.

    Examples
    --------
    >>> meta = {"plate_identity": plate_identity(plate), "segmentation": {"diameter": None}, "crop_size": 32}
    >>> check_run("P", meta, plate, {"diameter": None, "crop_size": 32}, n_done=6)   # the same: fine
    >>> check_run("P", meta, plate, {"diameter": 12.0, "crop_size": 48}, n_done=6)
    Traceback (most recent call last):
    ...
    napari_hcs.project.identity.ProjectMismatchError: Project P holds 6 site(s) segmented with other settings: diameter: project has None, run asks for 12.0; crop_size: project has 32, run asks for 48. Re-run with the project's settings to resume it. To segment plate scportrait_mini with the new settings, give a new project folder (--project), or delete P to start over.
    """
    if not n_done:
        return
    name = f"plate {plate.name}"
    if meta.get("source") == "import":
        raise ProjectMismatchError(
            f"Project {folder} holds crops imported from {meta.get('crops')}, not a segmented plate. "
            + _start_over(folder, name)
        )
    differences = identity_differences(meta.get("plate_identity", {}), plate_identity(plate))
    if differences:
        raise ProjectMismatchError(
            f"Project {folder} holds {n_done} segmented site(s) of another plate"
            f"{' (' + str(meta['plate']) + ')' if meta.get('plate') else ''}: {'; '.join(differences)}. "
            + _start_over(folder, name)
        )
    recorded = dict(meta.get("segmentation") or {})
    if "crop_size" in meta:
        recorded["crop_size"] = meta["crop_size"]
    differences = settings_differences(recorded, settings)
    if differences:
        raise ProjectMismatchError(
            f"Project {folder} holds {n_done} site(s) segmented with other settings: {'; '.join(differences)}. "
            "Re-run with the project's settings to resume it. "
            + _start_over(folder, f"{name} with the new settings")
        )


class PlateMovedError(FileNotFoundError):
    """The plate a project records is no longer at its recorded location."""


def check_same_plate(folder, meta: dict, plate: Plate) -> None:
    """Refuse a plate whose identity differs from the one the project records.

    Raises
    ------
    ProjectMismatchError
        Naming what differs.
    """
    differences = identity_differences(meta.get("plate_identity", {}), plate_identity(plate))
    if differences:
        raise ProjectMismatchError(
            f"Plate {plate.source or plate.name} is not the plate of project {folder}"
            f"{' (' + str(meta['plate']) + ')' if meta.get('plate') else ''}: {'; '.join(differences)}."
        )


def moved_message(folder, recorded: str) -> str:
    """The message for a plate gone from its recorded location, and how to point at it."""
    return (
        f"The plate of project {folder} is not at {recorded} any more (moved, renamed or deleted). "
        f"Point at it: 'napari-hcs features --project {folder} --plate PATH', or "
        f"'napari-hcs segment PATH --project {folder} ...'; a plate with the same wells, sites, "
        "channels and image shape updates the recorded location."
    )
