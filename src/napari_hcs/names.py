"""Short lists of names for messages: the closest names to a wanted one, and a count.

A table with 500 columns must not print 500 names when one is missing;
:func:`suggest` shows the names closest to the wanted one (or the first few)
and how many there are.

Examples
--------
>>> suggest("clas", ["well", "class", "label", "class_2"] + [f"feat_{i}" for i in range(496)], limit=3)
"well, class, label, ... (500 in all; closest to 'clas': class, class_2)"
>>> suggest("x", ["a", "b"])
'a, b'
>>> shorten(range(30), limit=3)
'0, 1, 2, ... (30 in all)'
"""

from __future__ import annotations

import difflib
from typing import Iterable

__all__ = ["shorten", "suggest"]

#: Most names a message lists.
MAX_LISTED = 8


def shorten(names: Iterable, *, limit: int = MAX_LISTED, quote: bool = False) -> str:
    """The first ``limit`` names joined by commas, with the count when some are left out."""
    names = list(names)
    shown = ", ".join(repr(str(n)) if quote else str(n) for n in names[:limit])
    return shown if len(names) <= limit else f"{shown}, ... ({len(names)} in all)"


def suggest(wanted: str, names: Iterable, *, limit: int = MAX_LISTED) -> str:
    """The first names, and when some are left out the count and the names closest to ``wanted``."""
    names = [str(n) for n in names]
    if len(names) <= limit:
        return shorten(names, limit=limit)
    by_lower = {}
    for name in names:
        by_lower.setdefault(name.lower(), name)
    close = difflib.get_close_matches(str(wanted).lower(), list(by_lower), n=limit, cutoff=0.5)
    closest = f"; closest to {wanted!r}: {', '.join(by_lower[c] for c in close)}" if close else ""
    return f"{', '.join(names[:limit])}, ... ({len(names)} in all{closest})"
