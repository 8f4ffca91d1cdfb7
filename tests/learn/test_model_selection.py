"""The SVM's C: a grid of powers of two, refined, scored by folds that hold out wells."""

from __future__ import annotations

import threading

import numpy as np
import pytest
from cell_tables import make_cells

from napari_hcs.cancel import Cancelled
from napari_hcs.learn import SVM_C_GRID, choose_svm_c, prepare_features


def test_svm_c_grid_spans_2_to_the_minus_10_to_10():
    assert SVM_C_GRID[0] == 2.0**-10 and SVM_C_GRID[-1] == 2.0**10
    assert np.allclose(np.diff(np.log2(SVM_C_GRID)), 2)


def test_choose_svm_c_uses_grouped_folds_and_refines_around_the_best():
    table = make_cells(wells_per_class=3, cells=20, n_features=4)
    x, _, _ = prepare_features(table)
    best, info = choose_svm_c(x.to_numpy(), table["class"].to_numpy(), table["well"].to_numpy())
    assert info["cv"] == "grouped 3-fold"
    tried = sorted(float(c) for c in info["scores"])
    assert set(SVM_C_GRID) <= set(tried)
    assert len(tried) in (len(SVM_C_GRID) + 1, len(SVM_C_GRID) + 2)
    assert best in tried
    odd = [c for c in tried if round(np.log2(c)) % 2]
    assert all(abs(np.log2(c) - np.log2(best)) <= 2 for c in odd)


def test_choose_svm_c_warns_when_a_class_has_one_well():
    table = make_cells(wells_per_class=2, cells=20, n_features=3)
    table.loc[table["class"] == "ctrl", "well"] = "B02"
    x, _, _ = prepare_features(table)
    with pytest.warns(UserWarning, match="ctrl have a single training well"):
        _, info = choose_svm_c(
            x.to_numpy(), table["class"].to_numpy(), table["well"].to_numpy(), grid=[0.1, 1.0]
        )
    assert info["cv"].startswith("stratified")


def test_choose_svm_c_stops_when_cancelled():
    table = make_cells(wells_per_class=2, cells=10, n_features=3)
    stop = threading.Event()
    stop.set()
    with pytest.raises(Cancelled):
        choose_svm_c(table.filter(like="feat_").to_numpy(), table["class"].to_numpy(),
                     table["well"].to_numpy(), cancel=stop)
