"""The schemas of the OpenAPI document: they take what the contract allows and refuse what it refuses."""

from __future__ import annotations

from typing import Any

import pytest
from jsonschema import Draft202012Validator

from tests.openapi_lookup import (
    SEED,
    build,
    deref,
    operation,
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
    ("FitRequest", {"X_train": [1, 2, 3], "y_train": [1, 2, 4], "cov_type": "HC3",
                    "anova": True, "statistics": True}),
    ("FitRequest", {"train": {"store": ["a", "b", "a", "b"], "x": [1, 2, 3, 4], "y": [1, 2, 2, 5]},
                    "formula": "y ~ x", "by": "store"}),
    ("PredictRequest", {"model": {"by": "store", "groups": [
        {"group": "a", "coef": [1.0], "intercept": 0.0, "feature_names": ["x"]},
        {"group": 7, "coef": [2.0], "intercept": 1.0, "feature_names": ["x"]}]},
        "test": {"store": ["a"], "x": [1]}}),
], ids=["rows", "flat-and-two-targets", "named", "options", "table", "seed", "model",
        "model-and-test-table", "robust-and-anova", "by", "group-model"])
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
    ("FitRequest", {"cov_type": "HC4"}),
    ("FitRequest", {"cov_type": "hc1"}),
    ("FitRequest", {"anova": "yes"}),
    ("FitRequest", {"by": ["store"]}),
    ("PredictRequest", {"X_train": None, "y_train": None, "cov_type": "HC0",
                        "model": {"coef": [1], "intercept": 0}}),
    ("PredictRequest", {"X_train": None, "y_train": None, "anova": False,
                        "model": {"coef": [1], "intercept": 0}}),
    ("PredictRequest", {"X_train": None, "y_train": None, "X_test": None, "by": "store",
                        "test": {"store": ["a"]},
                        "model": {"by": "store", "groups": [{"group": "a", "coef": [1.0], "intercept": 0.0}]}}),
    ("PredictRequest", {"X_train": None, "y_train": None, "X_test": None, "test": {"store": ["a"]},
                        "model": {"by": "store", "groups": [{"group": "a", "coef": [1.0]}]}}),
], ids=["unknown-field", "model-on-fit", "interval-without-X_test", "no-rows",
        "no-columns", "string-number", "boolean-number", "all-zero-weights",
        "negative-weight", "interval-enum", "level-1", "level-0", "string-boolean",
        "missing-enum", "formula-number", "no-X_test", "model-and-training-data",
        "no-training-data", "model-no-intercept", "model-and-statistics", "cov_type-enum",
        "cov_type-case", "string-anova", "by-list", "model-and-cov_type", "model-and-anova",
        "model-and-by", "group-model-no-intercept"])
def test_invalid_requests(document: dict[str, Any], name: str,
                          change: dict[str, Any]) -> None:
    body = {**SEED, **change}
    body = {key: value for key, value in body.items() if value is not None}
    assert not validator(document, name).is_valid(body)


def test_answers_validate(document: dict[str, Any]) -> None:
    answer = validator(document, "FitAnswer")
    statistics = {"r_squared": 0.9, "adj_r_squared": None, "residual_std_error": 0.1,
                  "df_residual": 0, "f_statistic": None, "f_p_value": None,
                  "condition_number": 3.2, "cov_type": "nonrobust", "coefficients": [
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


def test_anova_and_robust_answers_validate(document: dict[str, Any]) -> None:
    answer = validator(document, "FitAnswer")
    table = [{"term": "x", "df": 1, "sum_sq": 4.5, "mean_sq": 4.5, "f_value": 9.0, "p_value": 0.2},
             {"term": "Residuals", "df": 1, "sum_sq": 0.5, "mean_sq": 0.5, "f_value": None,
              "p_value": None}]
    one = {"coef": [1.5], "intercept": 0.0, "n_samples": 3, "n_features": 1, "n_targets": 1,
           "rank": 1, "warnings": [], "anova": table}
    answer.validate(one)
    answer.validate({**one, "coef": [[1.5], [2.0]], "intercept": [0.0, 1.0], "n_targets": 2,
                     "anova": [table, table]})
    statistics = {"r_squared": 0.9, "adj_r_squared": 0.8, "residual_std_error": 0.7,
                  "df_residual": 1, "f_statistic": 9.0, "f_p_value": 0.2,
                  "condition_number": 3.0, "cov_type": "HC3", "coefficients": [
                      {"term": "x0", "estimate": 1.5, "std_error": None, "t_value": None,
                       "p_value": None, "ci_lower": None, "ci_upper": None}]}
    answer.validate({**one, "statistics": statistics})
    # With `positive` (not least squares) the sums of squares do not exist.
    unfitted = [{**row, "sum_sq": None, "mean_sq": None, "f_value": None, "p_value": None} for row in table]
    answer.validate({**one, "anova": unfitted})
    for broken in [{**one, "anova": {"term": "x"}},
                   {**one, "anova": [{**table[0], "df": 0.5}]},
                   {**one, "anova": [{key: value for key, value in table[0].items() if key != "f_value"}]},
                   {**one, "anova": [{**table[0], "p_value": 2}]},
                   {**one, "statistics": {**statistics, "cov_type": "HC4"}}]:
        assert not answer.is_valid(broken)


def test_group_answers_validate(document: dict[str, Any]) -> None:
    ok = deref(document, operation(document, "post", "/fit")["responses"]["200"])
    answer = Draft202012Validator({"components": document["components"],
                                   **ok["content"]["application/json"]["schema"]})
    fit = {"coef": [1.5], "intercept": 0.0, "n_samples": 3, "n_features": 1, "n_targets": 1,
           "rank": 1, "warnings": [], "feature_names": ["x"]}
    grouped = {"by": "store", "groups": [{"group": "a", **fit}, {"group": "b", **fit}],
               "predictions": [1.0, None, 2.5],
               "intervals": {"lower": [0.5, None, 2.0], "upper": [1.5, None, 3.0], "level": 0.95,
                             "kind": "confidence"}}
    answer.validate(grouped)
    answer.validate({"by": "year", "groups": [{"group": 2024, **fit}]})
    answer.validate(fit)
    for broken in [{**grouped, "groups": []},
                   {**grouped, "groups": [fit]},
                   {**grouped, "groups": [{"group": 1.5, **fit}]},
                   {**grouped, "groups": [{"group": "a", **fit, "predictions": [1.0]}]},
                   {key: value for key, value in grouped.items() if key != "by"},
                   {**grouped, "intervals": {"lower": [1.0]}}]:
        assert not answer.is_valid(broken)


def test_problems_may_carry_the_request_id(document: dict[str, Any]) -> None:
    problem = validator(document, "Problem")
    problem.validate({"title": "Not found", "status": 404, "detail": "No such path.",
                      "request_id": "abc"})
    assert not problem.is_valid({"title": "Not found", "status": 404, "detail": "x",
                                 "request_id": 7})
