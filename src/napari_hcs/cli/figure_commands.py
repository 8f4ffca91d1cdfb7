"""``napari-hcs figure`` and ``napari-hcs view``: look at a project's predictions.

``figure`` writes a PNG without a display: one site with every cell outlined in
its predicted class colour, a legend, and the model's confusion matrix beside it.
``view`` opens napari with the napari HCS dock on the plate and its project; the
viewer code lives in :mod:`napari_hcs.widgets.launch`, imported by name only when
the command runs, so the command line itself never imports Qt.
"""

from __future__ import annotations

import importlib
from pathlib import Path

LAUNCHER = "napari_hcs.widgets.launch"
_PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def register(subparsers) -> None:
    figure = subparsers.add_parser(
        "figure",
        help="write a PNG of one site's cells in their predicted class colours and the confusion matrix",
        description="Draw one site of the project's plate with every cell outlined in the colour of its "
        "predicted class (classes.json colours, else the default ones), a legend with the class counts "
        "on that site, and the model's confusion matrix on its test (else validation) cells beside it. "
        "Needs no display. Prints the path written.",
    )
    figure.add_argument("--project", required=True, metavar="DIR", help="project folder with predictions ('napari-hcs predict')")
    figure.add_argument("--model", metavar="NAME", help="model name (default: the model that made the predictions)")
    figure.add_argument("--site", metavar="WELL[/FIELD/TIMEPOINT]", help="WELL (its first predicted site) or WELL/FIELD/TIMEPOINT, e.g. B02/0/1 "
                        "(default: the first site with predictions)")
    figure.add_argument("--out", required=True, metavar="PNG", help="PNG file to write (an earlier PNG there is replaced)")
    figure.add_argument("--overwrite", action="store_true", help="replace an existing file that is not a PNG")
    figure.set_defaults(func=run_figure)

    view = subparsers.add_parser(
        "view",
        help="open napari with the napari HCS dock on a plate and its project",
        description="Start napari with the napari HCS dock (Plate, Segment, Train, Inspect) on the plate, "
        "its project and, optionally, a model selected. Needs a display.",
    )
    view.add_argument("plate", metavar="PLATE", help="OME-Zarr plate or folder of TIFFs")
    view.add_argument("--project", metavar="DIR", help="project folder (default: <plate>.napari-hcs beside the plate)")
    view.add_argument("--model", metavar="NAME", help="model of the project to select (its predictions are shown)")
    view.add_argument("--pattern", help="filename pattern of a TIFF folder (a preset or a regular "
                      "expression); detected when not given")
    view.set_defaults(func=run_view)


def _is_png(path: Path) -> bool:
    try:
        with open(path, "rb") as handle:
            return handle.read(len(_PNG_MAGIC)) == _PNG_MAGIC
    except OSError:
        return False


def run_figure(args) -> int:
    from ..classify.figure import prediction_figure
    from ..io.outputs import check_replaceable

    project = Path(args.project)
    if not project.is_dir():
        raise FileNotFoundError(f"Project folder {project} does not exist.")
    out = Path(args.out)
    if out.suffix.lower() != ".png":
        raise ValueError(f"Output {out} does not end in .png; the figure is written as a PNG image.")
    if out.is_dir():
        raise ValueError(f"Output {out} is a folder; give the path of a PNG file.")
    check_replaceable(out, overwrite=args.overwrite, ours=_is_png, what="a PNG image")
    written = prediction_figure(project, model=args.model, site=args.site, out=out)
    print(written)
    return 0


def run_view(args) -> int:
    plate = Path(args.plate)
    if not plate.exists():
        raise FileNotFoundError(f"Plate {plate} does not exist.")
    if args.model:
        _check_model(plate, args.project, args.model)
    try:
        launcher = importlib.import_module(LAUNCHER)
    except ImportError as error:
        raise RuntimeError(f"'napari-hcs view' needs napari and a Qt binding, which cannot be imported "
                           f"({error}); install them with: pip install 'napari[all]'.") from error
    problem = launcher.display_problem()
    if problem:
        raise RuntimeError(problem)
    launcher.launch(plate, project_dir=args.project, model=args.model, pattern=args.pattern)
    launcher.run()
    return 0


def _check_model(plate: Path, project_dir: str | None, model: str) -> None:
    """Refuse ``--model`` before napari starts: the project folder must hold that model."""
    from ..project import Project, default_project_dir

    project_dir = project_dir if project_dir is not None else default_project_dir(plate)
    if not Path(project_dir).is_dir():
        raise FileNotFoundError(f"Project folder {project_dir} does not exist, so it holds no model {model!r}.")
    names = Project(project_dir).models().names()
    if model not in names:
        raise ValueError(f"No model named {model!r} in {Path(project_dir) / 'models'}; models are: "
                         f"{', '.join(names) or 'none'}.")
