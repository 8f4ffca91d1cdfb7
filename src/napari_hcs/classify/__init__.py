"""Interactive phenotyping: training sets from labelled wells and cells, classifiers, predictions.

Qt-free: the viewer's Train and Inspect panels run these functions in workers.

* :mod:`.training_set`: the labelled cells (a cell's own class, else its well's) and how
  validation is carved (whole wells, else sites, else cells);
* :mod:`.classifiers`: a random forest on the features or a CNN on the crops, trained and
  saved by name in the project (:class:`~napari_hcs.project.ModelCatalog`);
* :mod:`.predictions`: predicting a site, some wells or the plate, and the project's
  ``predictions`` column group;
* :mod:`.inspection`: confusion counts, mistakes, the most uncertain cells, class fractions;
* :mod:`.figure`: a site with every cell outlined in its predicted class, and the confusion matrix.
"""

from .classifiers import TrainRequest, device_description, train_classifier
from .figure import prediction_figure
from .inspection import class_fractions, confused_cells, confusion_counts, most_uncertain, probability_columns
from .predictions import (PREDICTIONS_GROUP, predict_and_save, predict_with, read_predictions, save_predictions,
                          scope_indices)
from .training_set import TrainingSetError, check_training_set, interactive_split, training_table

__all__ = [
    "PREDICTIONS_GROUP",
    "TrainRequest",
    "TrainingSetError",
    "check_training_set",
    "class_fractions",
    "confused_cells",
    "confusion_counts",
    "device_description",
    "interactive_split",
    "most_uncertain",
    "predict_and_save",
    "predict_with",
    "prediction_figure",
    "probability_columns",
    "read_predictions",
    "save_predictions",
    "scope_indices",
    "train_classifier",
    "training_table",
]
