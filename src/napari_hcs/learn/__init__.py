"""Learning without torch: splits, label checks, metrics, reports, classical classifiers."""

from .baselines import METHODS, run_baselines
from .feature_prep import CorrelationFilter, feature_pipeline, prepare_features
from .groups import group_labels
from .labels import UNUSED, LabelError, LabelledCells, check_labels, check_split, is_missing, label_values
from .metrics import classification_metrics
from .model_selection import SVM_C_GRID, choose_svm_c
from .reports import format_table, metrics_table, save_confusion_matrix_png, save_metrics
from .splits import build_split, holdout_split, parse_holdout, split_by_well, split_summary

__all__ = [
    "METHODS",
    "SVM_C_GRID",
    "UNUSED",
    "CorrelationFilter",
    "LabelError",
    "LabelledCells",
    "build_split",
    "check_labels",
    "check_split",
    "choose_svm_c",
    "classification_metrics",
    "feature_pipeline",
    "format_table",
    "group_labels",
    "holdout_split",
    "is_missing",
    "label_values",
    "metrics_table",
    "parse_holdout",
    "prepare_features",
    "run_baselines",
    "save_confusion_matrix_png",
    "save_metrics",
    "split_by_well",
    "split_summary",
]
