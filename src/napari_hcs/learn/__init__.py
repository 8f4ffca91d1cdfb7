"""Learning without torch: splits, plates, label checks, metrics, reports, classical classifiers."""

from .baselines import METHODS, run_baselines
from .feature_prep import CorrelationFilter, feature_pipeline, normalise_features, prepare_features
from .groups import group_labels
from .labels import UNUSED, LabelError, LabelledCells, check_labels, check_split, is_missing, label_values
from .metrics import classification_metrics
from .model_selection import SVM_C_GRID, choose_svm_c
from .plates import (
    PLATE_COLUMN,
    SINGLE_PLATE,
    Normalisation,
    control_mask,
    controls_text,
    dividing_columns,
    normalise_per_plate,
    parse_controls,
    plate_keys,
)
from .reports import format_table, metrics_table, save_confusion_matrix_png, save_metrics
from .splits import MIN_WHOLE_WELLS, build_split, holdout_split, parse_holdout, split_by_well, split_summary

__all__ = [
    "METHODS",
    "MIN_WHOLE_WELLS",
    "PLATE_COLUMN",
    "SINGLE_PLATE",
    "SVM_C_GRID",
    "UNUSED",
    "CorrelationFilter",
    "LabelError",
    "LabelledCells",
    "Normalisation",
    "build_split",
    "check_labels",
    "check_split",
    "choose_svm_c",
    "classification_metrics",
    "control_mask",
    "controls_text",
    "dividing_columns",
    "feature_pipeline",
    "format_table",
    "group_labels",
    "holdout_split",
    "is_missing",
    "label_values",
    "metrics_table",
    "normalise_features",
    "normalise_per_plate",
    "parse_controls",
    "parse_holdout",
    "plate_keys",
    "prepare_features",
    "run_baselines",
    "save_confusion_matrix_png",
    "save_metrics",
    "split_by_well",
    "split_summary",
]
