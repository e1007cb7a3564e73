"""The types that travel between the stages: ``FitRequest`` in, ``FitResult`` out.

::

    bytes --parse--> FitRequest --fit--> FitResult --render--> bytes

They hold checked data only (every rule of the contract was applied by ``service.parse``)
and import nothing but numpy, so that every stage can use them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np

Endpoint = Literal["fit", "predict"]
INTERVALS = ("none", "confidence", "prediction")


@dataclass(frozen=True)
class Options:
    """How to fit, and what to add to the answer."""

    fit_intercept: bool = True
    positive: bool = False
    statistics: bool = False
    interval: str = "none"
    level: float = 0.95


@dataclass(frozen=True)
class Model:
    """An earlier fit sent back to predict again: coefficients and names."""

    coef: np.ndarray  # (k, p)
    intercept: np.ndarray  # (k,)
    feature_names: tuple[str, ...] | None = None
    target_names: tuple[str, ...] | None = None
    single_target: bool = True


@dataclass(frozen=True)
class FitRequest:
    """One request, checked: what to fit (or the model to use) and what to predict."""

    X_train: np.ndarray | None = None  # (n, p)
    y_train: np.ndarray | None = None  # (n, k), always 2-D
    X_test: np.ndarray | None = None  # (m, p), columns in the order of the fit
    sample_weight: np.ndarray | None = None  # (n,)
    feature_names: tuple[str, ...] | None = None
    target_names: tuple[str, ...] | None = None
    single_target: bool = True
    options: Options = field(default_factory=Options)
    model: Model | None = None


@dataclass(frozen=True)
class Intervals:
    """Interval bounds for every prediction, with their level and kind."""

    lower: np.ndarray  # (m, k)
    upper: np.ndarray  # (m, k)
    level: float
    kind: str


@dataclass(frozen=True)
class FitResult:
    """What a fit (or a prediction from a model) gives back."""

    coef: np.ndarray  # (k, p)
    intercept: np.ndarray  # (k,)
    predictions: np.ndarray | None  # (m, k)
    feature_names: tuple[str, ...] | None
    target_names: tuple[str, ...] | None
    single_target: bool
    n_samples: int | None
    rank: int | None
    warnings: list[str] = field(default_factory=list)
    statistics: list[dict[str, object]] | None = None
    intervals: Intervals | None = None

    @property
    def n_features(self) -> int:
        """Number of features."""
        return int(self.coef.shape[1])

    @property
    def n_targets(self) -> int:
        """Number of targets."""
        return int(self.coef.shape[0])
