"""The normalisation options of ``train``, ``baseline`` and ``compare``: per plate, or global."""

from __future__ import annotations

from ..vocabulary import NORMALISATIONS


def add_normalisation_arguments(parser) -> None:
    """Add ``--normalisation {plate,global}`` and ``--controls COLUMN=VALUE[,VALUE]`` as one group."""
    group = parser.add_argument_group("normalisation")
    group.add_argument(
        "--normalisation", choices=NORMALISATIONS, default="plate",
        help="plate (default): each plate's cells are scaled by that plate's own channel / feature "
        "statistics, or by those of its control cells with --controls; global: one set of statistics "
        "from the training cells",
    )
    group.add_argument(
        "--controls", metavar="COLUMN=VALUE[,VALUE]",
        help="the control cells each plate is normalised by, e.g. compound=DMSO (default: all its cells)",
    )


def normalisation_from_arguments(args) -> tuple[str, str | None]:
    """Return ``(normalisation, controls)`` of the parsed options; controls as ``"COLUMN=VALUE[,VALUE]"``.

    Raises
    ------
    ValueError
        If ``--controls`` is not ``COLUMN=VALUE[,VALUE]``, or comes with ``--normalisation global``.

    Examples
    --------
    >>> from argparse import Namespace
    >>> normalisation_from_arguments(Namespace(normalisation="plate", controls=" compound = DMSO"))
    ('plate', 'compound=DMSO')
    >>> normalisation_from_arguments(Namespace(normalisation="global", controls="compound=DMSO"))
    Traceback (most recent call last):
    ...
    ValueError: --controls needs --normalisation plate (got --normalisation global).
    """
    from ..learn.plates import controls_text, parse_controls

    controls = controls_text(parse_controls(args.controls))
    if controls is not None and args.normalisation != "plate":
        raise ValueError(f"--controls needs --normalisation plate (got --normalisation {args.normalisation}).")
    return args.normalisation, controls
