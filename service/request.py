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

from service.table import Table

Endpoint = Literal["fit", "predict"]
INTERVALS = ("none", "confidence", "prediction")
MISSING = ("fail", "drop")
COV_TYPES = ("nonrobust", "HC0", "HC1", "HC2", "HC3")


@dataclass(frozen=True)
class Options:
    """How to fit, and what to add to the answer."""

    fit_intercept: bool = True
    positive: bool = False
    statistics: bool = False
    interval: str = "none"
    level: float = 0.95
    missing: str = "fail"
    cov_type: str = "nonrobust"
    anova: bool = False


@dataclass(frozen=True)
class Model:
    """An earlier fit sent back to predict again: coefficients and names."""

    coef: np.ndarray  # (k, p)
    intercept: np.ndarray  # (k,)
    feature_names: tuple[str, ...] | None = None
    target_names: tuple[str, ...] | None = None
    single_target: bool = True
    formula: str | None = None
    design: dict[str, object] | None = None  # a formula fit's design state, checked by the design stage


@dataclass(frozen=True)
class TableRequest:
    """A request in the table form, checked field by field: the formula is read by the design stage."""

    train: Table | None
    test: Table | None
    formula: str | None = None
    target: str | None = None
    weight: str | None = None
    options: Options = field(default_factory=Options)
    model: Model | GroupModel | None = None
    by: str | None = None  # a column of train: one fit per distinct value


@dataclass(frozen=True)
class GroupModel:
    """A whole answer of a fit per group sent back as ``model``: the ``by`` column and one model per group."""

    by: str
    groups: tuple[str | bool | int, ...]  # in sorted order, as the answer gave them
    models: tuple[Model, ...]


@dataclass(frozen=True)
class GroupRequest:
    """One fit per group: a ``FitRequest`` per group, and where each group's test rows sit in the test table.

    ``test_index[g]`` holds the rows of the test table that group ``g``'s ``X_test`` predicts, in
    its order; rows in no ``test_index`` (a missing value, under ``"missing": "drop"``) get ``null``.
    """

    by: str
    groups: tuple[str | bool | int, ...]
    requests: tuple[FitRequest, ...]
    test_index: tuple[np.ndarray, ...] | None
    test_rows: int | None  # rows of the test table
    n_dropped: int | None = None  # training rows in no group (a missing by value, "drop"), when there are any
    options: Options = field(default_factory=Options)  # the request's (each group's may differ: see grouping)


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
    formula: str | None = None  # as the service read it, for the answer
    design: dict[str, object] | None = None  # what rebuilds the design for new rows, for the answer
    n_dropped: int | None = None  # training rows left out for a missing value ("missing": "drop")
    test_rows: np.ndarray | None = None  # which rows of the test table X_test holds (the others: null)
    warnings: tuple[str, ...] = ()
    column_terms: tuple[str, ...] | None = None  # the formula term of each feature (None: one term per feature)


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
    formula: str | None = None
    design: dict[str, object] | None = None
    n_dropped: int | None = None
    anova: list[list[dict[str, object]]] | None = None  # one table per target

    @property
    def n_features(self) -> int:
        """Number of features."""
        return int(self.coef.shape[1])

    @property
    def n_targets(self) -> int:
        """Number of targets."""
        return int(self.coef.shape[0])


@dataclass(frozen=True)
class GroupResult:
    """The fits of every group, and the test table's predictions (each row by its own group's fit)."""

    by: str
    groups: tuple[str | bool | int, ...]
    results: tuple[FitResult, ...]
    predictions: np.ndarray | None  # (m, k), aligned with the test rows, NaN for a row left out
    intervals: Intervals | None
    single_target: bool
    target_names: tuple[str, ...] | None
    n_dropped: int | None = None
