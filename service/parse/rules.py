"""Every rule of the contract on a request's fields, whatever the body type that carried them.

The JSON, CSV and multipart readers each offer their fields through ``Fields``; ``build_request``
checks them in the order of API.md's table of fields and raises ``InvalidInput(detail, field)``
at the first failure, so that a request gets the same answer, or the same error, however it
was sent.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from service.errors import InvalidInput, describe, did_you_mean, excerpt
from service.parse.model import read_model
from service.parse.values import Matrix, plural
from service.request import INTERVALS, Endpoint, FitRequest, Options
from service.settings import Limits

FIELDS = (
    "X_train", "y_train", "X_test", "sample_weight", "fit_intercept",
    "positive", "statistics", "interval", "level", "model",
)  # fmt: skip
TRAINING_ONLY = ("X_train", "y_train", "sample_weight", "statistics", "interval")


class Fields:
    """Read access to the decoded fields of a body, by name."""

    def names(self) -> list[str]:
        """The field names, in the body's order."""
        raise NotImplementedError

    def matrix(self, name: str) -> Matrix:
        """The field as a matrix."""
        raise NotImplementedError

    def vector(self, name: str) -> np.ndarray:
        """The field as a flat vector of numbers."""
        raise NotImplementedError

    def value(self, name: str) -> object:
        """The field as plain Python data (for options and small objects)."""
        raise NotImplementedError


def refuse_query(params: Mapping[str, object]) -> None:
    """Refuse query parameters on a JSON request: its options come from the body only."""
    for name in params:
        raise InvalidInput(
            f"The query parameter {excerpt(name)!r} is not taken with a JSON body, whose options come "
            "from the body only; move it into the JSON object (or send the table as text/csv, whose "
            "options are query parameters).",
            excerpt(name),
        )


def build_request(fields: Fields, endpoint: Endpoint, limits: Limits) -> FitRequest:
    """Check the fields in the order of the contract's table and build the request."""
    names = fields.names()
    for name in names:
        if name not in FIELDS:
            raise InvalidInput(unknown_field_detail(name), excerpt(name))
    present = set(names)
    if "model" in present:
        return build_model_request(fields, endpoint, present, limits)
    if "X_train" not in present:
        alternative = " (or 'model', to predict from an earlier fit)" if endpoint == "predict" else ""
        raise InvalidInput(f"'X_train' is required{alternative}. Got a body without it.", "X_train")
    X = fields.matrix("X_train")
    check_size("X_train", X, limits)
    if "y_train" not in present:
        raise InvalidInput("'y_train' is required with 'X_train'. Got a body without it.", "y_train")
    y = fields.matrix("y_train")
    if y.rows != X.rows:
        raise InvalidInput(
            f"'y_train' has {plural(y.rows, 'row')}, but 'X_train' has {X.rows}; "
            "every training row needs its target.",
            "y_train",
        )
    if y.columns > limits.max_features:
        raise InvalidInput(
            f"'y_train' has {y.columns} targets, but at most {limits.max_features} are allowed "
            "(setting max_features, FITSERVE_MAX_FEATURES).",
            "y_train",
        )
    X_test = read_test(fields, endpoint, present, X.names, X.columns, "X_train", limits)
    weights = None
    if "sample_weight" in present:
        weights = fields.vector("sample_weight")
        check_weights(weights, X.rows)
    options = read_options(fields, present, has_test=X_test is not None)
    check_statistics_size(options, X.columns, y.columns, limits)
    single = y.flat or y.columns == 1
    return FitRequest(
        X_train=X.values,
        y_train=y.values,
        X_test=X_test,
        sample_weight=weights,
        feature_names=X.names,
        target_names=y.names,
        single_target=single,
        options=options,
    )


def unknown_field_detail(name: str) -> str:
    """Say that a field is unknown, suggesting the closest known one."""
    return f"{excerpt(name)!r} is not a field of this API.{did_you_mean(name, FIELDS)} The fields are: {', '.join(FIELDS)}."


def check_size(field: str, matrix: Matrix, limits: Limits) -> None:
    """Refuse a training matrix past the size limits."""
    if matrix.columns > limits.max_features:
        raise InvalidInput(
            f"'{field}' has {matrix.columns} features, but at most {limits.max_features} are allowed "
            "(setting max_features, FITSERVE_MAX_FEATURES).",
            field,
        )
    if matrix.rows * matrix.columns > limits.max_cells:
        raise InvalidInput(
            f"'{field}' has {matrix.rows * matrix.columns} values, but at most {limits.max_cells} are "
            "allowed (setting max_cells, FITSERVE_MAX_CELLS).",
            field,
        )


def read_test(
    fields: Fields,
    endpoint: Endpoint,
    present: set[str],
    names: tuple[str, ...] | None,
    width: int,
    source: str,
    limits: Limits,
) -> np.ndarray | None:
    """Read ``X_test`` and line its columns up with the fit's features."""
    if "X_test" not in present:
        if endpoint == "predict":
            raise InvalidInput(
                "'X_test' is required on /predict (use /fit to fit without predicting). "
                "Got a body without it.",
                "X_test",
            )
        return None
    test = fields.matrix("X_test")
    if test.rows > limits.max_prediction_rows:
        raise InvalidInput(
            f"'X_test' has {test.rows} rows, but at most {limits.max_prediction_rows} are allowed "
            "(setting max_prediction_rows, FITSERVE_MAX_PREDICTION_ROWS).",
            "X_test",
        )
    if test.names is None:
        if test.columns != width:
            raise InvalidInput(
                f"'X_test' has {plural(test.columns, 'column')}, but {source} has {width}.", "X_test"
            )
        return test.values
    if names is None:
        raise InvalidInput(
            f"'X_test' has named columns, but {source} has none; send 'X_test' as a list of rows.",
            "X_test",
        )
    missing = [n for n in names if n not in test.names]
    if missing:
        raise InvalidInput(f"'X_test' lacks the feature {missing[0]!r}, which {source} has.", "X_test")
    extra = [n for n in test.names if n not in names]
    if extra:
        raise InvalidInput(f"'X_test' has the column {extra[0]!r}, which {source} does not have.", "X_test")
    if test.names == names:
        return test.values
    order = [test.names.index(n) for n in names]
    return np.ascontiguousarray(test.values[:, order])


def check_weights(weights: np.ndarray, rows: int) -> None:
    """Refuse weights of the wrong length, negative, or all zero."""
    if weights.size != rows:
        raise InvalidInput(
            f"'sample_weight' has {plural(weights.size, 'value')}, but 'X_train' has "
            f"{plural(rows, 'row')}; give one weight per training row.",
            "sample_weight",
        )
    if weights.min() < 0:
        i = int(np.argmax(weights < 0))
        raise InvalidInput(
            f"'sample_weight' has {weights[i]:.6g} at row {i} (counting from 0); weights must be >= 0.",
            "sample_weight",
        )
    if not weights.any():
        raise InvalidInput("'sample_weight' is all zeros; at least one weight must be positive.", "sample_weight")


def read_options(fields: Fields, present: set[str], has_test: bool) -> Options:
    """Read the options, each with its default when absent."""
    flags = {}
    for name in ("fit_intercept", "positive", "statistics"):
        if name in present:
            value = fields.value(name)
            if value is not True and value is not False:
                raise InvalidInput(f"'{name}' must be true or false. Got {describe(value)} instead.", name)
            flags[name] = value
    interval = "none"
    if "interval" in present:
        value = fields.value("interval")
        if value not in INTERVALS or not isinstance(value, str):
            raise InvalidInput(
                f"'interval' must be one of \"none\", \"confidence\", \"prediction\". Got {describe(value)} instead.",
                "interval",
            )
        interval = value
        if interval != "none" and not has_test:
            raise InvalidInput(
                f"'interval' is {interval!r}, but there is no 'X_test' to give intervals for.", "interval"
            )
    level = 0.95
    if "level" in present:
        value = fields.value("level")
        if type(value) not in (int, float) or not 0 < value < 1:  # type: ignore[operator]
            raise InvalidInput(f"'level' must be a number between 0 and 1 (exclusive). Got {describe(value)} instead.", "level")
        level = float(value)  # type: ignore[arg-type]
    return Options(interval=interval, level=level, **flags)


def check_statistics_size(options: Options, features: int, targets: int, limits: Limits) -> None:
    """Refuse statistics (or intervals) past the size limit: their cost grows with targets x terms."""
    if not options.statistics and options.interval == "none":
        return
    terms = targets * (features + int(options.fit_intercept))
    if terms > limits.max_statistics_terms:
        field = "statistics" if options.statistics else "interval"
        raise InvalidInput(
            f"'{field}' asks for {terms} coefficient statistics ({targets} targets x "
            f"{features + int(options.fit_intercept)} terms), but at most {limits.max_statistics_terms} "
            "are allowed (setting max_statistics_terms, FITSERVE_MAX_STATISTICS_TERMS).",
            field,
        )


def build_model_request(fields: Fields, endpoint: Endpoint, present: set[str], limits: Limits) -> FitRequest:
    """Check a request that predicts from an earlier model."""
    if endpoint != "predict":
        raise InvalidInput("'model' is only taken by /predict; /fit always fits training data.", "model")
    for name in TRAINING_ONLY:
        if name in present:
            raise InvalidInput(
                f"'model' cannot come with {name!r}: a model predicts without training data "
                "(statistics and intervals need the training data, so fit again for them).",
                "model",
            )
    model = read_model(fields.value("model"))
    width = model.coef.shape[1]
    X_test = read_test(fields, endpoint, present, model.feature_names, width, "'model'", limits)
    options = read_options(fields, present, has_test=True)
    return FitRequest(
        X_test=X_test,
        feature_names=model.feature_names,
        target_names=model.target_names,
        single_target=model.single_target,
        options=options,
        model=model,
    )


