"""The schemas of the OpenAPI document: they take what the contract allows and refuse what it refuses."""

from __future__ import annotations

from typing import Any

import pytest

from tests.openapi_lookup import (
    SEED,
    build,
    validator,
)


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    """Build the document once for the module."""
    return build("1.2.3")


@pytest.mark.parametrize(("name", "body"), [
    ("FitRequest", {"X_train": [[1, 2], [3, 4]], "y_train": [1, 2]}),
    ("FitRequest", {"X_train": [1, 2, 3], "y_train": [[1, 2], [3, 4], [5, 6]]}),
    ("FitRequest", {"X_train": {"age": [30, 40]}, "y_train": {"price": [1, 2]},
                    "X_test": [{"age": 35}], "interval": "prediction", "level": 0.9}),
    ("FitRequest", {"X_train": [1, 2], "y_train": [1, 2], "sample_weight": [0, 1],
                    "fit_intercept": False, "positive": True, "statistics": True}),
    ("FitRequest", {"train": {"x": [1, 2], "g": ["a", None]}, "formula": "y ~ x",
                    "missing": "drop"}),
    ("PredictRequest", SEED),
    ("PredictRequest", {"model": {"coef": [1.0], "intercept": 0.5, "n_samples": None},
                        "X_test": [1, 2]}),
    ("PredictRequest", {"model": {"coef": [1.0], "intercept": 0.5}, "test": [{"x": 1}]}),
], ids=["rows", "flat-and-two-targets", "named", "options", "table", "seed", "model",
        "model-and-test-table"])
def test_valid_requests(document: dict[str, Any], name: str,
                        body: dict[str, Any]) -> None:
    validator(document, name).validate(body)


@pytest.mark.parametrize(("name", "change"), [
    ("FitRequest", {"X_tset": [[1, 2]]}),
    ("FitRequest", {"model": {"coef": [1], "intercept": 0}}),
    ("FitRequest", {"X_test": None, "interval": "confidence"}),
    ("FitRequest", {"X_train": []}),
    ("FitRequest", {"X_train": [[]]}),
    ("FitRequest", {"X_train": [["1.5"]]}),
    ("FitRequest", {"y_train": [True, 2, 3]}),
    ("FitRequest", {"sample_weight": [0, 0, 0]}),
    ("FitRequest", {"sample_weight": [1, -1, 1]}),
    ("FitRequest", {"interval": "bogus"}),
    ("FitRequest", {"level": 1}),
    ("FitRequest", {"level": 0}),
    ("FitRequest", {"fit_intercept": "false"}),
    ("FitRequest", {"missing": "omit"}),
    ("FitRequest", {"formula": 3}),
    ("PredictRequest", {"X_test": None}),
    ("PredictRequest", {"model": {"coef": [1], "intercept": 0}}),
    ("PredictRequest", {"X_train": None, "y_train": None}),
    ("PredictRequest", {"X_train": None, "y_train": None, "model": {"coef": [1, 1]}}),
    ("PredictRequest", {"X_train": None, "y_train": None, "statistics": True,
                        "model": {"coef": [1], "intercept": 0}}),
], ids=["unknown-field", "model-on-fit", "interval-without-X_test", "no-rows",
        "no-columns", "string-number", "boolean-number", "all-zero-weights",
        "negative-weight", "interval-enum", "level-1", "level-0", "string-boolean",
        "missing-enum", "formula-number", "no-X_test", "model-and-training-data",
        "no-training-data", "model-no-intercept", "model-and-statistics"])
def test_invalid_requests(document: dict[str, Any], name: str,
                          change: dict[str, Any]) -> None:
    body = {**SEED, **change}
    body = {key: value for key, value in body.items() if value is not None}
    assert not validator(document, name).is_valid(body)


def test_answers_validate(document: dict[str, Any]) -> None:
    answer = validator(document, "FitAnswer")
    statistics = {"r_squared": 0.9, "adj_r_squared": None, "residual_std_error": 0.1,
                  "df_residual": 0, "f_statistic": None, "f_p_value": None,
                  "condition_number": 3.2, "coefficients": [
                      {"term": "(Intercept)", "estimate": 1.0, "std_error": None,
                       "t_value": None, "p_value": None, "ci_lower": None,
                       "ci_upper": None}]}
    one: dict[str, Any] = {"coef": [1.0, 2.0], "intercept": 0.5, "predictions": [3.0],
           "feature_names": ["a", "b"], "n_samples": 3, "n_features": 2, "n_targets": 1,
           "rank": None, "warnings": ["Zero residual degrees of freedom."],
           "statistics": statistics,
           "intervals": {"lower": [2.0], "upper": [4.0], "level": 0.95,
                         "kind": "prediction"}}
    answer.validate(one)
    two = {**one, "coef": [[1.0, 2.0], [3.0, 4.0]], "intercept": [0.0, 0.0],
           "predictions": [[1.0, 2.0]], "target_names": ["u", "v"], "n_targets": 2,
           "statistics": [statistics, statistics], "n_samples": None}
    answer.validate(two)
    for broken in [{**one, "rank": 1.5}, {**one, "warnings": None},
                   {key: value for key, value in one.items() if key != "coef"},
                   {**one, "intervals": {**one["intervals"], "kind": "none"}},
                   {**one, "intervals": {**one["intervals"], "level": 1}},
                   {**one, "statistics": {**statistics, "df_residual": None}}]:
        assert not answer.is_valid(broken)


def test_problems_may_carry_the_request_id(document: dict[str, Any]) -> None:
    problem = validator(document, "Problem")
    problem.validate({"title": "Not found", "status": 404, "detail": "No such path.",
                      "request_id": "abc"})
    assert not problem.is_valid({"title": "Not found", "status": 404, "detail": "x",
                                 "request_id": 7})
