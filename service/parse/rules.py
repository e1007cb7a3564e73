"""Every rule of the contract on a request's fields, whatever the body type that carried them.

The JSON, CSV and multipart readers each offer their fields through ``Fields``; ``build_request``
checks them in the order of the contract's table of fields (README, "The API by example") and raises ``InvalidInput(detail, field)``
at the first failure, so that a request gets the same answer, or the same error, however it
was sent.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace

import numpy as np

from service.errors import InvalidInput, did_you_mean, excerpt
from service.parse.fields import (
    Fields,
    check_model_alone,
    check_prediction_rows,
    check_statistics_size,
    prediction_rows_given,
    read_options,
)
from service.parse.model import read_model
from service.parse.table_form import build_table_request
from service.parse.values import Matrix, plural
from service.request import Endpoint, FitRequest, TableRequest
from service.settings import Limits

FIELDS = (
    "X_train", "y_train", "X_test", "sample_weight", "fit_intercept",
    "positive", "statistics", "interval", "level", "model", "missing", "cov_type", "anova",
)  # fmt: skip
#: The fields of the table form, in the order in which the first one present is named when
#: a request mixes the two forms.
TABLE_FIELDS = ("train", "formula", "target", "test", "weight", "by")
MATRIX_FIELDS = ("X_train", "y_train", "X_test", "sample_weight")
KNOWN = FIELDS + TABLE_FIELDS


def refuse_query(params: Mapping[str, object]) -> None:
    """Refuse query parameters on a JSON request: its options come from the body only."""
    for name in params:
        raise InvalidInput(
            f"The query parameter {excerpt(name)!r} is not taken with a JSON body, whose options come "
            "from the body only; move it into the JSON object (or send the table as text/csv, whose "
            "options are query parameters).",
            excerpt(name),
        )


def build_request(fields: Fields, endpoint: Endpoint, limits: Limits) -> FitRequest | TableRequest:
    """Check the fields in the order of the contract's table and build the request."""
    names = fields.names()
    for name in names:
        if name not in KNOWN:
            raise InvalidInput(unknown_field_detail(name), excerpt(name))
    present = set(names)
    table_form = [name for name in TABLE_FIELDS if name in present]
    if table_form:
        matrix_form = [name for name in MATRIX_FIELDS if name in present]
        if matrix_form:
            raise InvalidInput(
                f"{table_form[0]!r} belongs to the table form and {matrix_form[0]!r} to the matrix form; "
                "a request gives its data in one form (a table and a formula, or matrices).",
                table_form[0],
            )
        return build_table_request(fields, endpoint, present, limits)
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
    request = FitRequest(
        X_train=X.values,
        y_train=y.values,
        X_test=X_test,
        sample_weight=weights,
        feature_names=X.names,
        target_names=y.names,
        single_target=single,
        options=options,
    )
    return drop_missing(request) if options.missing == "drop" else request


def unknown_field_detail(name: str) -> str:
    """Say that a field is unknown, suggesting the closest known one."""
    return f"{excerpt(name)!r} is not a field of this API.{did_you_mean(name, KNOWN)} The fields are: {', '.join(KNOWN)}."


def drop_missing(request: FitRequest) -> FitRequest:
    """Leave out the training rows with a missing value; mark the test rows that have one (R's ``na.exclude``)."""
    X, y, weights = request.X_train, request.y_train, request.sample_weight
    assert X is not None and y is not None
    kept = ~(np.isnan(X).any(axis=1) | np.isnan(y).any(axis=1))
    if weights is not None:
        kept &= ~np.isnan(weights)
    if not kept.any():
        raise InvalidInput("'X_train' has no row without a missing value in 'X_train', 'y_train' or 'sample_weight'.", "X_train")
    n_dropped = int(np.count_nonzero(~kept))
    if weights is not None and not weights[kept].any():
        raise InvalidInput("'sample_weight' is all zeros in the rows without a missing value.", "sample_weight")
    warnings = [dropped_warning(n_dropped, "training rows")] if n_dropped else []
    test_rows = None
    if request.X_test is not None:
        test_rows = ~np.isnan(request.X_test).any(axis=1)
    return replace(
        request,
        X_train=X if not n_dropped else np.ascontiguousarray(X[kept]),
        y_train=y if not n_dropped else np.ascontiguousarray(y[kept]),
        sample_weight=weights if weights is None or not n_dropped else weights[kept],
        X_test=None if request.X_test is None else np.ascontiguousarray(request.X_test[test_rows]),
        test_rows=test_rows,
        n_dropped=n_dropped,
        warnings=tuple(warnings),
    )


def dropped_warning(count: int, what: str) -> str:
    """The warning that rows were left out for a missing value."""
    return (
        f"{count} {what[:-1] if count == 1 else what} with a missing value {'was' if count == 1 else 'were'} "
        'left out ("missing": "drop"); n_samples counts the rows used.'
    )


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
    if not prediction_rows_given(endpoint, present, "X_test"):
        return None
    test = fields.matrix("X_test")
    check_prediction_rows(test.rows, "X_test", limits)
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


def build_model_request(fields: Fields, endpoint: Endpoint, present: set[str], limits: Limits) -> FitRequest:
    """Check a request that predicts from an earlier model."""
    check_model_alone(endpoint, present)
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


