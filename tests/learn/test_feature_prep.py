"""Feature preparation: a scikit-learn Pipeline fitted on the train cells only."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from cell_tables import make_cells
from sklearn.base import clone

from napari_hcs.learn import CorrelationFilter, feature_pipeline, prepare_features


def test_correlation_filter_drops_a_duplicate_and_constant_feature():
    table = make_cells()
    table["feat_copy"] = 3 * table["feat_1"] - 2
    table["feat_flat"] = 7.0
    train, (other,), info = prepare_features(table, [table.iloc[:10]])
    assert info["dropped_correlated"] == ["feat_copy"]
    assert info["dropped_constant"] == ["feat_flat"]
    assert list(train.columns) == [f"feat_{i}" for i in range(8)]
    assert np.allclose(train.mean(), 0) and np.allclose(train.std(ddof=0), 1)
    assert list(other.columns) == list(train.columns)
    assert other.index.equals(table.index[:10])


def test_everything_is_fitted_on_train_only():
    table = make_cells()
    train_df, other_df = table.iloc[:100].copy(), table.iloc[100:].copy()
    # Correlated on the other cells only: must be kept.
    train_df["feat_late"] = np.arange(100.0) % 7
    other_df["feat_late"] = other_df["feat_0"]
    train, (other,), info = prepare_features(train_df, [other_df])
    assert "feat_late" in info["features"]
    expected = (other_df["feat_3"] - train_df["feat_3"].mean()) / train_df["feat_3"].std(ddof=0)
    assert np.allclose(other["feat_3"], expected)
    assert info["mean"]["feat_3"] == pytest.approx(train_df["feat_3"].mean())


def test_missing_and_infinite_values_are_imputed_with_the_train_median_or_raise():
    table = make_cells()
    table.loc[[0, 1], "feat_2"] = [np.nan, np.inf]
    table["feat_empty"] = np.nan
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        train, (other,), info = prepare_features(table, [table.iloc[:5]])
    assert info["imputed"] == {"feat_2": 4}  # two values in the train cells, two in the others
    assert other.columns.equals(train.columns)
    assert info["dropped_missing"] == ["feat_empty"]
    assert np.isfinite(train.to_numpy()).all()
    median = table["feat_2"].iloc[2:].median()
    scaled_median = (median - info["mean"]["feat_2"]) / info["std"]["feat_2"]
    assert train.loc[[0, 1], "feat_2"].tolist() == pytest.approx([scaled_median] * 2)
    with pytest.raises(ValueError, match=r"feat_2 \(2\)"):
        prepare_features(table, nan_policy="raise")


def test_no_feature_columns_says_what_to_run():
    with pytest.raises(ValueError, match="napari-hcs features"):
        prepare_features(pd.DataFrame({"well": ["A01"], "area": [1.0]}))


def test_no_usable_feature_left_is_an_error():
    with pytest.raises(ValueError, match="No usable feature left of 2"):
        prepare_features(pd.DataFrame({"feat_a": [1.0, 1.0], "feat_b": [np.nan, np.nan]}))


def test_empty_other_frames_keep_the_kept_columns():
    table = make_cells(wells_per_class=1, cells=10, n_features=3)
    _, (empty,), info = prepare_features(table, [table.iloc[:0]])
    assert empty.shape == (0, len(info["features"]))


def test_an_other_frame_lacking_a_feature_is_a_key_error():
    table = make_cells(wells_per_class=1, cells=10, n_features=3)
    with pytest.raises(KeyError, match="feat_2"):
        prepare_features(table, [table.drop(columns="feat_2")])


def test_the_pipeline_is_a_scikit_learn_estimator():
    pipeline = feature_pipeline(corr_threshold=0.9)
    assert [name for name, _ in pipeline.steps] == ["impute", "constant", "correlated", "scale"]
    assert clone(pipeline)["correlated"].threshold == 0.9
    x = np.column_stack([np.arange(10.0), 2 * np.arange(10.0), np.ones(10), np.arange(10.0) % 3])
    assert pipeline.fit_transform(x).shape == (10, 2)
    assert CorrelationFilter(threshold=None).fit(x).get_support().all()
