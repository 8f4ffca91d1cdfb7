"""Names the docstring examples of the package may use (``pytest --doctest-modules``).

``tmp_path`` (a fresh folder), ``np``, ``pd``, ``sample_path`` and ``plate``: the
bundled two-well scPortrait sample with its layout table.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest


@pytest.fixture(scope="session")
def _sample_plate():
    from napari_hcs.io import open_plate
    from napari_hcs.samples import sample_layout, sample_path

    return open_plate(sample_path("scportrait_mini"), pattern="scportrait", layout=sample_layout())


@pytest.fixture(autouse=True)
def _doctest_names(doctest_namespace, tmp_path, _sample_plate):
    from napari_hcs.samples import sample_layout, sample_path

    plate = dataclasses.replace(_sample_plate, annotations=_sample_plate.annotations.copy())
    doctest_namespace.update(np=np, pd=pd, tmp_path=tmp_path, plate=plate,
                     sample_path=sample_path, sample_layout=sample_layout)
