"""The ``napari-hcs`` command line.

Each module of this package that defines ``register(subparsers)`` adds its
sub-commands; the command function is stored as the ``func`` default and is
called with the parsed arguments. A command returns an exit code (or None for 0).
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys

from .. import __version__


def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser with every sub-command registered."""
    parser = argparse.ArgumentParser(
        prog="napari-hcs",
        description="High-content screening plates: open, convert, segment, train, predict.",
    )
    parser.add_argument("--version", action="version", version=f"napari-hcs {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        if hasattr(module, "register"):
            module.register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the command line; return the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("Interrupted; finished work is kept and a re-run resumes from there.", file=sys.stderr)
        return 130
    except (ValueError, OSError, KeyError, RuntimeError) as error:
        print(f"napari-hcs {args.command}: error: {_message(error)}", file=sys.stderr)
        return 1


def _message(error: BaseException) -> str:
    """The error's text; an OSError without its own wording gets the file it is about."""
    if isinstance(error, OSError) and not isinstance(error, FileNotFoundError) and error.filename \
            and str(error.filename) not in str(error):
        return f"{error.strerror or error}: {error.filename}"
    return str(error)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
