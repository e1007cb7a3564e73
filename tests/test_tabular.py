"""The table form through the app: formulas, categories, missing values, model reuse (the contract's "Tables and formulas")."""

from __future__ import annotations

import io
from typing import Any

import falcon.testing
import numpy as np
import orjson
import pandas as pd
import pytest
import statsmodels.formula.api as smf

import service
from service.settings import Settings

JSON = "application/json"
TRAIN: dict[str, list[Any]] = {
    "sqft": [70, 85, 60, 120, 95, 80, None, 110, 72, 101],
    "hood": ["a", "b", "a", "c", "b", "c", "a", None, "b", "a"],
    "w": [1, 2, 1, 1, 0.5, 1, 1, 2, 1, 3],
    "price": [200, 260, 181, 390, 300, 280, 210, 350, 240, 330],
}
TEST: dict[str, list[Any]] = {"sqft": [90, None, 75], "hood": ["b", "a", "c"], "price": [0, 0, 0]}


@pytest.fixture(scope="module")
def client() -> falcon.testing.TestClient:
    return falcon.testing.TestClient(service.create_app(Settings()))


def post(client: falcon.testing.TestClient, body: dict[str, Any], path: str = "/fit", **headers: str) -> Any:
    return client.simulate_post(path, body=orjson.dumps(body), headers={"Content-Type": JSON, **headers})


def frame(table: dict[str, list[Any]]) -> pd.DataFrame:
    return pd.DataFrame(table).dropna()


def test_a_formula_fit_gives_statsmodels_numbers_by_name(client: falcon.testing.TestClient) -> None:
    formula = "price ~ sqft + hood + I(sqft**2)"
    body = {"train": TRAIN, "formula": formula, "missing": "drop", "test": TEST, "statistics": True,
            "interval": "prediction", "level": 0.9}  # fmt: skip
    answer = post(client, body).json
    reference = smf.ols(formula, frame(TRAIN)).fit()
    estimates = dict(zip(answer["feature_names"], answer["coef"], strict=True))
    assert set(estimates) == {"sqft", "hood[T.b]", "hood[T.c]", "I(sqft ** 2)"}
    for name, value in estimates.items():
        assert value == pytest.approx(reference.params[name], rel=1e-9)
    assert answer["intercept"] == pytest.approx(reference.params["Intercept"], rel=1e-9)
    errors = {t["term"]: t["std_error"] for t in answer["statistics"]["coefficients"]}
    assert errors["(Intercept)"] == pytest.approx(reference.bse["Intercept"], rel=1e-7)
    assert errors["hood[T.c]"] == pytest.approx(reference.bse["hood[T.c]"], rel=1e-7)
    assert answer["statistics"]["r_squared"] == pytest.approx(reference.rsquared, rel=1e-9)
    frame_test = pd.DataFrame(TEST).iloc[[0, 2]]
    expected = reference.get_prediction(frame_test).summary_frame(alpha=0.1)
    assert answer["predictions"][1] is None and answer["intervals"]["lower"][1] is None
    kept = [answer["predictions"][0], answer["predictions"][2]]
    np.testing.assert_allclose(kept, expected["mean"], rtol=1e-9)
    lower = [answer["intervals"]["lower"][0], answer["intervals"]["lower"][2]]
    np.testing.assert_allclose(lower, expected["obs_ci_lower"], rtol=1e-7)
    assert answer["n_dropped"] == 2 and answer["n_samples"] == 8
    assert any("2 training rows with a missing value were left out" in w for w in answer["warnings"])
    assert answer["formula"] == "price ~ sqft + hood + I(sqft ** 2)"
    assert answer["design"]["levels"] == {"hood": ["a", "b", "c"]}


def test_the_whole_answer_as_a_model_predicts_the_same(client: falcon.testing.TestClient) -> None:
    fitted = post(client, {"train": TRAIN, "formula": "price ~ sqft * hood", "missing": "drop", "test": TEST}).json
    again = post(client, {"model": fitted, "test": TEST, "missing": "drop"}, "/predict").json
    assert again["predictions"] == fitted["predictions"]
    assert again["formula"] == fitted["formula"] and again["n_samples"] is None


def test_a_level_training_did_not_have_is_a_422_naming_test(client: falcon.testing.TestClient) -> None:
    fitted = post(client, {"train": TRAIN, "formula": "price ~ sqft + hood", "missing": "drop"}).json
    for body, path in [
        ({"model": fitted, "test": {"sqft": [1, 2], "hood": ["a", "zz"]}}, "/predict"),
        ({"train": TRAIN, "formula": "price ~ sqft + hood", "missing": "drop",
          "test": {"sqft": [1, 2], "hood": ["a", "zz"]}}, "/fit"),
    ]:  # fmt: skip
        answer = post(client, body, path)
        assert answer.status_code == 422 and answer.json["field"] == "test"
        detail = answer.json["detail"]
        assert '"zz"' in detail and "'hood'" in detail and "row 1" in detail


def test_target_is_shorthand_for_target_dot(client: falcon.testing.TestClient) -> None:
    table = {k: v for k, v in TRAIN.items() if k != "w"}
    by_target = post(client, {"train": table, "target": "price", "missing": "drop"}).json
    by_formula = post(client, {"train": table, "formula": "price ~ .", "missing": "drop"}).json
    by_default = post(client, {"train": table, "missing": "drop"}).json  # the last column
    assert by_target["coef"] == by_formula["coef"] == by_default["coef"]
    assert by_target["feature_names"] == ["sqft", "hood[T.b]", "hood[T.c]"]
    no_intercept = post(client, {"train": table, "target": "price", "missing": "drop", "fit_intercept": False}).json
    assert no_intercept["intercept"] == 0.0 and len(no_intercept["coef"]) == 4  # every level, as R's - 1


def test_a_weight_column_gives_weighted_least_squares(client: falcon.testing.TestClient) -> None:
    answer = post(client, {"train": TRAIN, "formula": "price ~ sqft + hood", "weight": "w", "missing": "drop"}).json
    data = frame(TRAIN)
    reference = smf.wls("price ~ sqft + hood", data, weights=data["w"]).fit()
    np.testing.assert_allclose(answer["coef"], reference.params[["sqft", "hood[T.b]", "hood[T.c]"]], rtol=1e-9)
    dotted = post(client, {"train": TRAIN, "target": "price", "weight": "w", "missing": "drop"}).json
    assert "w" not in dotted["feature_names"]  # "." leaves the weight column out


def test_csv_answers_leave_a_dropped_test_row_empty(client: falcon.testing.TestClient) -> None:
    body = {"train": TRAIN, "formula": "price ~ sqft", "missing": "drop", "test": TEST, "interval": "confidence"}
    text = post(client, body, Accept="text/csv").text
    rows = list(pd.read_csv(io.StringIO(text), keep_default_na=False).itertuples(index=False))
    assert [len(r) for r in rows] == [3, 3, 3]
    assert rows[1] == ("", "", "") and rows[0][0] != ""


def test_matrix_form_drops_rows_with_null_when_asked(client: falcon.testing.TestClient) -> None:
    X = [[1, 1], [2, None], [3, 5], [4, 2], [5, 7], [6, 1], [7, 3]]
    y = [1, 2, None, 5, 6, 2, 4]
    weights = [1, 1, 1, None, 1, 2, 1]
    body = {"X_train": X, "y_train": y, "sample_weight": weights, "X_test": [[1, 1], [None, 2]], "missing": "drop"}
    answer = post(client, body).json
    kept = [0, 4, 5, 6]  # rows 1, 2 and 3 have a null in X_train, y_train or sample_weight
    design = np.array([[1.0, *X[i]] for i in kept])
    root = np.sqrt([weights[i] for i in kept])
    reference = np.linalg.lstsq(design * root[:, None], np.array([y[i] for i in kept]) * root, rcond=None)[0]
    assert answer["n_dropped"] == 3 and answer["n_samples"] == 4
    np.testing.assert_allclose(answer["coef"], reference[1:], rtol=1e-9)
    assert answer["predictions"][0] == pytest.approx(reference @ [1, 1, 1], rel=1e-9)
    assert answer["predictions"][1] is None


@pytest.mark.parametrize(
    ("body", "status", "field", "words"),
    [
        pytest.param({"train": TRAIN, "formula": "price ~ sqft"}, 422, "train", '"missing": "drop"', id="missing-fail-train"),
        pytest.param({"train": TRAIN, "formula": "price ~ hood", "missing": "drop", "test": TEST | {"hood": ["a", None, "b"]}},
                     None, None, "", id="unused-test-gap-is-fine"),
        pytest.param({"train": TRAIN, "formula": "price ~ sqft", "missing": "fail", "test": TEST},
                     422, "train", "column 'sqft' at row 6 (counting from 0)", id="first-missing-named"),
        pytest.param({"train": TRAIN, "formula": "price ~ sqft", "fit_intercept": False}, 422, "fit_intercept", "formula says", id="intercept-with-formula"),
        pytest.param({"train": TRAIN, "formula": "price ~ sqft", "target": "price"}, 422, "target", "one of them", id="formula-and-target"),
        pytest.param({"train": TRAIN, "X_train": [[1]]}, 422, "train", "one form", id="both-forms"),
        pytest.param({"y_train": [1], "test": TEST}, 422, "test", "one form", id="both-forms-test-named"),
        pytest.param({"train": TRAIN, "formula": "price ~ sqft", "missing": "maybe"}, 422, "missing", '"drop"', id="missing-value"),
        pytest.param({"train": TRAIN, "target": "prise", "missing": "drop"}, 422, "target", "Did you mean 'price'", id="unknown-target"),
        pytest.param({"train": TRAIN, "target": "price", "weight": "hood", "missing": "drop"}, 422, "weight", "text", id="text-weight"),
        pytest.param({"train": TRAIN, "target": "price", "weight": "ww", "missing": "drop"}, 422, "weight", "no such column", id="unknown-weight"),
        pytest.param({"train": TRAIN | {"w": [-1] * 10}, "target": "price", "weight": "w", "missing": "drop"}, 422, "train", "weights must be >= 0", id="negative-weight"),
        pytest.param({"train": TRAIN, "formula": "price ~ __import__('os').getpid()"}, 422, "formula", "", id="code-in-formula"),
        pytest.param({"formula": "price ~ sqft"}, 422, "train", "'train' is required", id="no-train"),
        pytest.param({"train": {"x": [1, 2, "3"], "y": [1, 2, 3]}}, 422, "train", "mixes numbers and text", id="mixed-column"),
    ],
)
def test_table_form_errors(
    client: falcon.testing.TestClient, body: dict[str, Any], status: int | None, field: str | None, words: str
) -> None:
    answer = post(client, body)
    if status is None:
        assert answer.status_code == 200, answer.text
        return
    assert answer.status_code == status, answer.text
    assert answer.json["field"] == field
    assert words in answer.json["detail"]


def test_a_missing_test_value_fails_unless_dropped(client: falcon.testing.TestClient) -> None:
    answer = post(client, {"train": frame(TRAIN).to_dict("list"), "formula": "price ~ sqft", "test": TEST})
    assert answer.status_code == 422 and answer.json["field"] == "test"
    assert "column 'sqft' at row 1 (counting from 0)" in answer.json["detail"] and '"missing": "drop"' in answer.json["detail"]


@pytest.mark.parametrize("accept", ["image/svg+xml", "image/png"])
def test_a_picture_of_a_formula_fit_with_a_dropped_test_row(client: falcon.testing.TestClient, accept: str) -> None:
    body = {"train": TRAIN, "formula": "price ~ sqft", "missing": "drop", "test": TEST, "interval": "prediction"}
    answer = post(client, body, Accept=accept)
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == accept


def test_a_column_the_fit_does_not_use_is_not_checked(client: falcon.testing.TestClient) -> None:
    train = {**frame(TRAIN).to_dict("list"), "note": [1, "x", None, 2, 3, 4, 5, "y"]}
    assert post(client, {"train": train, "formula": "price ~ sqft"}).status_code == 200
    refused = post(client, {"train": train, "formula": "price ~ sqft + note"})
    assert refused.status_code == 422 and "column 'note'" in refused.json["detail"]
    assert post(client, {"train": train, "target": "price"}).status_code == 422  # '.' uses every column
