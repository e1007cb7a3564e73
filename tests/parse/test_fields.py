"""The ``cov_type`` and ``anova`` options in every body type: what they accept and how they are refused."""

from __future__ import annotations

from typing import Any

import falcon.testing
import pytest
from urllib3 import encode_multipart_formdata

import service
from service.request import COV_TYPES
from service.settings import Settings

TRAIN: dict[str, Any] = {"X_train": [[1, 2], [2, 1], [3, 5], [4, 4], [5, 2]], "y_train": [1, 2, 3, 5, 4]}
TABLE: dict[str, Any] = {"train": {"a": [1, 2, 3, 4, 5], "b": [2, 1, 5, 4, 2], "y": [1, 2, 3, 5, 4]}, "formula": "y ~ a + b"}
CSV = b"a,b,y\n1,2,1\n2,1,2\n3,5,3\n4,4,5\n5,2,4\n"
MODEL: dict[str, Any] = {"coef": [1.5, -0.5], "intercept": 2.0}


def problem(answer: Any) -> tuple[int, str | None]:
    assert answer.headers["content-type"] == "application/problem+json"
    return answer.status_code, answer.json.get("field")


@pytest.mark.parametrize(
    ("body", "path", "field"),
    [
        pytest.param({**TRAIN, "cov_type": "hc3"}, "/fit", "cov_type", id="cov_type-lowercase"),
        pytest.param({**TRAIN, "cov_type": "HC4"}, "/fit", "cov_type", id="cov_type-unknown"),
        pytest.param({**TRAIN, "cov_type": 3}, "/fit", "cov_type", id="cov_type-number"),
        pytest.param({**TRAIN, "cov_type": None}, "/fit", "cov_type", id="cov_type-null"),
        pytest.param({**TRAIN, "cov_type": ["HC3"]}, "/fit", "cov_type", id="cov_type-list"),
        pytest.param({**TABLE, "cov_type": "robust"}, "/fit", "cov_type", id="cov_type-table"),
        pytest.param({**TRAIN, "anova": "true"}, "/fit", "anova", id="anova-string"),
        pytest.param({**TRAIN, "anova": 1}, "/fit", "anova", id="anova-number"),
        pytest.param({**TABLE, "anova": None}, "/fit", "anova", id="anova-table-null"),
        pytest.param({"model": MODEL, "X_test": [[1, 2]], "cov_type": "HC3"}, "/predict", "model", id="model-cov_type"),
        pytest.param({"model": MODEL, "X_test": [[1, 2]], "anova": True}, "/predict", "model", id="model-anova"),
        pytest.param({"model": MODEL, "X_test": [[1, 2]], "cov_type": "nonrobust"}, "/predict", "model",
                     id="model-cov_type-default"),
        pytest.param({"model": MODEL, "X_test": [[1, 2]], "anova": False}, "/predict", "model", id="model-anova-false"),
        pytest.param({"model": {**MODEL, "design": {}}, "test": {"a": [1]}, "anova": True}, "/predict", "model",
                     id="table-model-anova"),
        pytest.param({**TRAIN, "cov_tpye": "HC3"}, "/fit", "cov_tpye", id="typo"),
    ],
)
def test_bad_options_are_422_naming_the_field(client: falcon.testing.TestClient, body: dict[str, Any], path: str, field: str) -> None:
    assert problem(client.simulate_post(path, json=body)) == (422, field)


def test_bad_cov_type_says_what_it_takes(client: falcon.testing.TestClient) -> None:
    answer = client.simulate_post("/fit", json={**TRAIN, "cov_type": "HC9"})
    assert answer.json["detail"] == (
        "'cov_type' must be one of \"nonrobust\", \"HC0\", \"HC1\", \"HC2\", \"HC3\". Got the string \"HC9\" instead."
    )


def test_cov_type_is_checked_after_missing(client: falcon.testing.TestClient) -> None:
    answer = client.simulate_post("/fit", json={**TRAIN, "missing": "keep", "cov_type": "HC9", "anova": 2})
    assert problem(answer) == (422, "missing")
    answer = client.simulate_post("/fit", json={**TRAIN, "cov_type": "HC9", "anova": 2})
    assert problem(answer) == (422, "cov_type")


@pytest.mark.parametrize(
    ("params", "field"),
    [
        pytest.param({"cov_type": "HC5"}, "cov_type", id="cov_type"),
        pytest.param({"anova": "yes"}, "anova", id="anova"),
    ],
)
def test_bad_query_parameters_are_422_naming_them(client: falcon.testing.TestClient, params: dict[str, str], field: str) -> None:
    answer = client.simulate_post("/fit", body=CSV, headers={"Content-Type": "text/csv"}, params=params)
    assert problem(answer) == (422, field)


def test_bad_form_field_is_422_naming_it(client: falcon.testing.TestClient) -> None:
    body, content_type = encode_multipart_formdata({"train": ("t.csv", CSV, "text/csv"), "cov_type": "HC-3"})
    assert problem(client.simulate_post("/fit", body=body, headers={"Content-Type": content_type})) == (422, "cov_type")


def test_query_parameter_on_a_json_body_is_refused(client: falcon.testing.TestClient) -> None:
    answer = client.simulate_post("/fit", json={**TRAIN, "statistics": True}, params={"cov_type": "HC3"})
    assert problem(answer) == (422, "cov_type")


@pytest.mark.parametrize("cov_type", COV_TYPES)
def test_every_cov_type_is_taken_and_reported(client: falcon.testing.TestClient, cov_type: str) -> None:
    answer = client.simulate_post("/fit", json={**TRAIN, "statistics": True, "cov_type": cov_type})
    assert answer.status_code == 200, answer.text
    assert answer.json["statistics"]["cov_type"] == cov_type


@pytest.mark.parametrize("flag", ["true", "1", "TRUE"])
def test_anova_query_parameter_spellings(client: falcon.testing.TestClient, flag: str) -> None:
    answer = client.simulate_post("/fit", body=CSV, headers={"Content-Type": "text/csv"}, params={"anova": flag})
    assert answer.status_code == 200, answer.text
    assert [row["term"] for row in answer.json["anova"]] == ["a", "b", "Residuals"]


def test_anova_false_and_cov_type_without_statistics_add_nothing(client: falcon.testing.TestClient) -> None:
    answer = client.simulate_post("/fit", json={**TRAIN, "anova": False, "cov_type": "HC1"})
    assert answer.status_code == 200
    assert "anova" not in answer.json and "statistics" not in answer.json


def test_anova_counts_against_the_statistics_size_limit() -> None:
    client = falcon.testing.TestClient(service.create_app(Settings(max_statistics_terms=2)))
    assert problem(client.simulate_post("/fit", json={**TRAIN, "anova": True})) == (422, "anova")
