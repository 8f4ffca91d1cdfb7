"""The normalisation options of ``train``, ``baseline`` and ``compare``: per plate, or global."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..vocabulary import NORMALISATIONS

if TYPE_CHECKING:
    from ..learn.plates import Normalisation


def add_normalisation_arguments(parser) -> None:
    """Add ``--normalisation``, ``--controls`` and ``--normalise-within`` as one group."""
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
    group.add_argument(
        "--normalise-within", metavar="COLUMN[,COLUMN]", default="",
        help="divide each plate by these columns and normalise each part on its own, e.g. timepoint "
        "for a time course imaged over days (default: whole plates)",
    )


def normalisation_from_arguments(args) -> "Normalisation":
    """Return what the parsed options ask for; controls as ``"COLUMN=VALUE[,VALUE]"``.

    Raises
    ------
    ValueError
        If ``--controls`` is not ``COLUMN=VALUE[,VALUE]``, or ``--controls`` or
        ``--normalise-within`` come with ``--normalisation global``.

    Examples
    --------
    >>> from argparse import Namespace
    >>> normalisation_from_arguments(Namespace(normalisation="plate", controls=" compound = DMSO"))
    Normalisation(method='plate', controls='compound=DMSO', within=())
    >>> normalisation_from_arguments(Namespace(normalisation="plate", controls=None,
    ...                                        normalise_within="timepoint")).within
    ('timepoint',)
    >>> normalisation_from_arguments(Namespace(normalisation="global", controls="compound=DMSO"))
    Traceback (most recent call last):
    ...
    ValueError: --controls needs --normalisation plate (got --normalisation global).
    """
    from ..learn.plates import Normalisation, controls_text, parse_controls, within_columns

    controls = controls_text(parse_controls(args.controls))
    within = within_columns(getattr(args, "normalise_within", None))
    for given, option in ((controls is not None, "--controls"), (bool(within), "--normalise-within")):
        if given and args.normalisation != "plate":
            raise ValueError(f"{option} needs --normalisation plate (got --normalisation {args.normalisation}).")
    return Normalisation(args.normalisation, controls, within)
