"""Start napari with the napari HCS dock on a plate and its project (``napari-hcs view``).

The command line imports this module by name only when ``napari-hcs view`` runs;
napari and Qt are imported inside the functions, so :func:`display_problem` can
tell a user without a display what is wrong before Qt would abort the process.

Examples
--------
>>> display_problem({"DISPLAY": ":0"}, platform="linux") is None
True
>>> print(display_problem({}, platform="linux"))
No display to open napari on (neither DISPLAY nor WAYLAND_DISPLAY is set). Run it on a desktop, over ssh -X, or under xvfb-run; 'napari-hcs figure' writes a picture without a display.
"""

from __future__ import annotations

import os
import sys

__all__ = ["DOCK_NAME", "display_problem", "launch", "run"]

#: Title of the dock in the viewer.
DOCK_NAME = "napari HCS"


def display_problem(environ=None, *, platform: str | None = None) -> str | None:
    """Why napari cannot open a window here, or None when it can.

    Only Linux and other X11/Wayland systems need ``DISPLAY`` or
    ``WAYLAND_DISPLAY``; an explicit ``QT_QPA_PLATFORM`` (``offscreen``, ...)
    is trusted.

    Parameters
    ----------
    environ : mapping, optional
        Environment variables; default :data:`os.environ`.
    platform : str, optional
        :data:`sys.platform`, by default.
    """
    environ = os.environ if environ is None else environ
    platform = sys.platform if platform is None else platform
    if platform.startswith(("win", "darwin", "cygwin")) or environ.get("QT_QPA_PLATFORM"):
        return None
    if environ.get("DISPLAY") or environ.get("WAYLAND_DISPLAY"):
        return None
    return ("No display to open napari on (neither DISPLAY nor WAYLAND_DISPLAY is set). Run it on a desktop, "
            "over ssh -X, or under xvfb-run; 'napari-hcs figure' writes a picture without a display.")


def launch(plate_path, *, project_dir=None, model: str | None = None, pattern: str | None = None,
           show: bool = True):
    """Make a napari viewer with the napari HCS dock, open the plate and its project, select a model.

    Parameters
    ----------
    plate_path : path
        The plate (OME-Zarr plate or folder of TIFFs).
    project_dir : path, optional
        Its project folder; default ``<plate>.napari-hcs`` beside it.
    model : str, optional
        A model of the project to select (the dock then shows its predictions).
    pattern : str, optional
        Filename pattern of a TIFF folder; detected when not given.
    show : bool
        Show the window (False for tests).

    Returns
    -------
    napari.Viewer
        The viewer; the plate's first (or last shown) site is being loaded.
    """
    import napari

    from .main_dock import MainDock
    from .site_display import shared_session

    viewer = napari.Viewer(show=show)
    try:
        dock = MainDock(viewer)
        viewer.window.add_dock_widget(dock, name=DOCK_NAME, area="right")
        session = shared_session(viewer)
        session.open(plate_path, pattern=pattern, project_dir=project_dir)
        if model:
            session.select_model(model)
    except BaseException:
        viewer.close()
        raise
    viewer.title = f"napari HCS: {session.plate.name}"
    return viewer


def run() -> None:
    """Run napari's event loop until its windows are closed."""
    import napari

    napari.run()
