"""Argument types that refuse bad numbers while the command line is read, before any work."""

from __future__ import annotations

import argparse

__all__ = ["non_negative_int", "positive_int"]


def whole_number_at_least(text: str, minimum: int) -> int:
    """``text`` as a whole number of at least ``minimum``, or the error argparse reports."""
    try:
        value = int(text)
    except ValueError:
        value = minimum - 1
    if value < minimum or str(text).strip().lstrip("+") != str(value):
        raise argparse.ArgumentTypeError(f"expected a whole number of at least {minimum}, got {text!r}")
    return value


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
    return whole_number_at_least(text, 1)


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
    return whole_number_at_least(text, 0)
