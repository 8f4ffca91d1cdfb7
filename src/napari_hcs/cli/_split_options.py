"""The split options of ``train``, ``baseline`` and ``compare``, and the split they give."""

from __future__ import annotations


def add_split_arguments(parser, *, test_fraction: float) -> None:
    """Add ``--split-column``, ``--holdout``, ``--group-column``, ``--val-fraction``, ``--test-fraction``."""
    group = parser.add_argument_group("split (whole wells are held out)")
    group.add_argument("--split-column", help="column holding a predefined split (train/val/test); "
                       "without val rows, val groups are carved from train")
    group.add_argument("--holdout", metavar="COLUMN=VALUE[,VALUE]",
                       help="test on the cells whose COLUMN is one of the values (e.g. plate=Week4_27821), "
                       "train on the others")
    group.add_argument("--group-column", default="well",
                       help="what is held out whole: well (default), plate, or columns joined with "
                       "commas (e.g. plate,well,site holds out sites)")
    group.add_argument("--val-fraction", type=float, default=0.2, help="fraction of each class's groups for val")
    group.add_argument("--test-fraction", type=float, default=test_fraction,
                       help=f"fraction of groups for test when no split is given (default {test_fraction})")


def split_from_arguments(table, args, label_column: str | None):
    """Return the split of ``table`` that the parsed split options (and ``args.seed``) ask for."""
    from ..learn import build_split

    return build_split(
        table,
        label_column=label_column,
        split_column=args.split_column,
        holdout=args.holdout,
        group_column=args.group_column,
        val_fraction=args.val_fraction,
        test_fraction=args.test_fraction,
        seed=args.seed,
    )
