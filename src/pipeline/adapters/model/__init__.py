"""Scoring models behind `pipeline.application.ports.model`: scikit-learn's Isolation Forest,
a per-sensor z-score (the embedded default, no scikit-learn needed), and the model stores
(a directory, a database table) that keep their artifacts.

scikit-learn and skops are imported only when a forest is fitted or loaded."""

from pipeline.adapters.model.artifacts import TRAINERS, trainer_for
from pipeline.adapters.model.filesystem import FilesystemModelStore
from pipeline.adapters.model.zscore import ZScoreModel, ZScoreTrainer

__all__ = ["TRAINERS", "FilesystemModelStore", "ZScoreModel", "ZScoreTrainer", "trainer_for"]
