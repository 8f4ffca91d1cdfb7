"""Learning without torch: splits, label checks, metrics, reports, classical classifiers."""

from .baselines import METHODS, run_baselines
from .metrics import classification_metrics, format_table, metrics_table
from .splits import group_labels, holdout_split, split_by_well, split_summary

__all__ = [
    "METHODS",
    "classification_metrics",
    "format_table",
    "group_labels",
    "holdout_split",
    "metrics_table",
    "run_baselines",
    "split_by_well",
    "split_summary",
]
