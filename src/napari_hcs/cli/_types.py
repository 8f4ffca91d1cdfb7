"""Argument types that refuse bad numbers while the command line is read, before any work."""

from __future__ import annotations

import argparse

__all__ = ["non_negative_int", "positive_int"]


def positive_int(text: str) -> int:
    """A whole number of at least 1 (workers, epochs, batch sizes, crop sizes).

    Examples
    --------
    >>> positive_int("4")
    4
    >>> positive_int("0")
    Traceback (most recent call last):
    ...
    argparse.ArgumentTypeError: expected a whole number of at least 1, got '0'
    """
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1 or str(text).strip().lstrip("+") != str(value):
        raise argparse.ArgumentTypeError(f"expected a whole number of at least 1, got {text!r}")
    return value


def non_negative_int(text: str) -> int:
    """A whole number of at least 0 (rounds, where 0 means none).

    Examples
    --------
    >>> non_negative_int("0")
    0
    >>> non_negative_int("-1")
    Traceback (most recent call last):
    ...
    argparse.ArgumentTypeError: expected a whole number of at least 0, got '-1'
    """
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0 or str(text).strip().lstrip("+") != str(value):
        raise argparse.ArgumentTypeError(f"expected a whole number of at least 0, got {text!r}")
    return value
