"""Package names imported on first use, so that importing a package stays cheap.

Examples
--------
>>> names, getattr_, dir_ = lazy_exports("napari_hcs.profiles", {"profile_store": ["WellProfiles"]})
>>> names, getattr_("WellProfiles").__name__
(['WellProfiles'], 'WellProfiles')
"""

from __future__ import annotations

import importlib
import sys
from typing import Callable

__all__ = ["lazy_exports"]


def lazy_exports(package: str, exports: dict[str, list[str]]) -> tuple[list[str], Callable, Callable]:
    """``(__all__, __getattr__, __dir__)`` of a package whose names live in its modules.

    ``exports`` maps a module of the package to the names it gives; a name is
    imported the first time it is asked for and then kept in the package.
    """
    module_of = {name: module for module, names in exports.items() for name in names}
    names = sorted(module_of)

    def __getattr__(name: str):
        if name not in module_of:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(f"{package}.{module_of[name]}"), name)
        setattr(sys.modules[package], name, value)
        return value

    def __dir__() -> list[str]:
        return sorted(set(vars(sys.modules[package])) | set(names))

    return names, __getattr__, __dir__
