"""Shared fixtures: the real data beside the project, and small synthetic plates."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# Docstring examples live in the package (src/); test files hold none, and this file
# must not be collected a second time as a doctest module.
collect_ignore = ["conftest.py"]
SHARED_DATA = Path(os.environ.get("NAPARI_HCS_SHARED_DATA", ROOT.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """Folder of the real data sets (``../shared/data``).

    Absent data skips the real-data tests on a workstation, and fails them in CI
    (``CI`` set), where the data must be there.
    """
    if not SHARED_DATA.is_dir():
        message = f"real data not found at {SHARED_DATA}"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return SHARED_DATA


@pytest.fixture(scope="session")
def scportrait_dir(shared_data) -> Path:
    return shared_data / "scportrait_timecourse"
