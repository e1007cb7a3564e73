"""Robust standard errors (``cov_type``): service/robust.py, through statistics and the API, against statsmodels."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
import statsmodels.formula.api as smf
from falcon import testing
from urllib3 import encode_multipart_formdata

from service import statistics
from service.design import Design
from service.fitting import solve
from service.robust import sandwich

HC = ("HC0", "HC1", "HC2", "HC3")
RTOL = 1e-9


@pytest.fixture
def data() -> dict[str, np.ndarray]:
    """Heteroskedastic data: the noise grows with the first feature; columns of unlike scales."""
    rng = np.random.default_rng(13)
    X = rng.normal(size=(60, 3)) * [1.0, 100.0, 0.01] + [0.0, 1000.0, 5.0]
    noise = rng.normal(size=60) * (0.5 + np.abs(X[:, 0]))
    y = X @ np.array([1.5, -0.02, 30.0]) + 4.0 + noise
    return {"X": X, "y": y, "X_test": X[:6] + rng.normal(size=(6, 3)), "w": rng.uniform(0.5, 2.0, size=60)}


def post(client: testing.TestClient, path: str, body: dict[str, object]) -> Any:
    answer = client.simulate_post(path, json=body)
    assert answer.status_code == 200, answer.text
    return answer.json


def reference(y: np.ndarray, X: np.ndarray, w: np.ndarray | None, cov_type: str, intercept: bool = True) -> Any:
    exog = sm.add_constant(X) if intercept else X
    model = sm.OLS(y, exog) if w is None else sm.WLS(y, exog, weights=w)
    return model.fit(cov_type=cov_type, use_t=True)


def rel(found: Any, expected: Any) -> float:
    found, expected = np.asarray(found, dtype=float), np.asarray(expected, dtype=float)
    return float(np.max(np.abs(found - expected) / np.abs(expected)))


@pytest.mark.parametrize("cov_type", HC)
@pytest.mark.parametrize("weighted", [False, True], ids=["ols", "wls"])
@pytest.mark.parametrize("interval", ["confidence", "prediction"])
def test_matrix_form_matches_statsmodels(
    client: testing.TestClient, data: dict[str, np.ndarray], cov_type: str, weighted: bool, interval: str
) -> None:
    X, y, X_test, w = data["X"], data["y"], data["X_test"], data["w"]
    body: dict[str, object] = {"X_train": X.tolist(), "y_train": y.tolist(), "X_test": X_test.tolist(),
                               "statistics": True, "interval": interval, "level": 0.9, "cov_type": cov_type}  # fmt: skip
    if weighted:
        body["sample_weight"] = w.tolist()
    answer = post(client, "/predict", body)
    model = reference(y, X, w if weighted else None, cov_type)
    stats = answer["statistics"]
    assert stats["cov_type"] == cov_type
    rows = stats["coefficients"]
    assert rel([r["std_error"] for r in rows], model.bse) < RTOL
    assert rel([r["t_value"] for r in rows], model.tvalues) < RTOL
    assert rel([r["p_value"] for r in rows], model.pvalues) < 1e-8
    ci = model.conf_int(alpha=0.1)
    assert rel([r["ci_lower"] for r in rows], ci[:, 0]) < RTOL
    assert rel([r["ci_upper"] for r in rows], ci[:, 1]) < RTOL
    assert rel(stats["f_statistic"], model.fvalue) < RTOL
    assert rel(stats["f_p_value"], model.f_pvalue) < 1e-8
    assert stats["df_residual"] == model.df_resid
    frame = model.get_prediction(sm.add_constant(X_test, has_constant="add")).summary_frame(alpha=0.1)
    prefix = "mean" if interval == "confidence" else "obs"
    assert rel(answer["intervals"]["lower"], frame[f"{prefix}_ci_lower"]) < RTOL
    assert rel(answer["intervals"]["upper"], frame[f"{prefix}_ci_upper"]) < RTOL


@pytest.mark.parametrize("cov_type", HC)
def test_without_intercept_the_wald_test_takes_every_coefficient(data: dict[str, np.ndarray], cov_type: str) -> None:
    X, y = data["X"], data["y"]
    design = Design(X, y[:, None], None, False)
    coef, intercept, rank = solve(design, False)
    found = statistics.infer(design, coef=coef, intercept=intercept, positive=False, rank_deficient=False,
                             terms=["a", "b", "c"], rank=rank, level=0.95, cov_type=cov_type).statistics[0]  # fmt: skip
    model = reference(y, X, None, cov_type, intercept=False)
    assert rel([r["std_error"] for r in found["coefficients"]], model.bse) < RTOL
    assert rel(found["f_statistic"], model.fvalue) < RTOL


def test_several_targets_each_get_their_own_sandwich(client: testing.TestClient, data: dict[str, np.ndarray]) -> None:
    X, y, X_test = data["X"], data["y"], data["X_test"]
    y2 = 3 - 2 * y + np.sin(np.arange(60.0)) * X[:, 0] ** 2
    answer = post(client, "/predict", {"X_train": X.tolist(), "y_train": {"a": y.tolist(), "b": y2.tolist()},
                                       "X_test": X_test.tolist(), "statistics": True, "interval": "confidence",
                                       "cov_type": "HC3"})  # fmt: skip
    lower = np.array(answer["intervals"]["lower"])
    for j, target in enumerate((y, y2)):
        model = reference(target, X, None, "HC3")
        stats = answer["statistics"][j]
        assert stats["cov_type"] == "HC3"
        assert rel([r["std_error"] for r in stats["coefficients"]], model.bse) < RTOL
        assert rel(stats["f_statistic"], model.fvalue) < RTOL
        frame = model.get_prediction(sm.add_constant(X_test)).summary_frame(alpha=0.05)
        assert rel(lower[:, j], frame["mean_ci_lower"]) < RTOL


def housing() -> pd.DataFrame:
    rng = np.random.default_rng(5)
    n = 80
    frame = pd.DataFrame({"sqft": rng.uniform(40, 200, n), "hood": rng.choice(["a", "b", "c"], n),
                          "w": rng.uniform(0.5, 2, n)})  # fmt: skip
    shift = frame["hood"].map({"a": 0.0, "b": 20.0, "c": -15.0})
    frame["price"] = 30 + 2 * frame["sqft"] + shift + rng.normal(size=n) * frame["sqft"] / 10
    return frame


@pytest.mark.parametrize("cov_type", HC)
def test_formula_form_in_multipart_matches_statsmodels(client: testing.TestClient, cov_type: str) -> None:
    frame = housing()
    parts = {"train": ("train.csv", frame.to_csv(index=False).encode(), "text/csv"),
             "formula": "price ~ sqft * hood", "weight": "w", "statistics": "true", "cov_type": cov_type}  # fmt: skip
    body, content_type = encode_multipart_formdata(parts)
    answer = client.simulate_post("/fit", body=body, headers={"Content-Type": content_type})
    assert answer.status_code == 200, answer.text
    model = smf.wls("price ~ sqft * hood", frame, weights=frame["w"]).fit(cov_type=cov_type, use_t=True)
    stats = answer.json["statistics"]
    expected = dict(zip(model.model.exog_names, model.bse, strict=True))
    assert {r["term"]: r["std_error"] for r in stats["coefficients"]} == pytest.approx(
        {("(Intercept)" if k == "Intercept" else k): v for k, v in expected.items()}, rel=RTOL
    )
    assert rel(stats["f_statistic"], model.fvalue) < RTOL


def test_statistics_say_nonrobust_by_default(client: testing.TestClient, data: dict[str, np.ndarray]) -> None:
    answer = post(client, "/fit", {"X_train": data["X"].tolist(), "y_train": data["y"].tolist(), "statistics": True})
    model = reference(data["y"], data["X"], None, "nonrobust")
    assert answer["statistics"]["cov_type"] == "nonrobust"
    assert rel([r["std_error"] for r in answer["statistics"]["coefficients"]], model.bse) < RTOL


def test_robust_covariance_leaves_the_fit_statistics_alone(client: testing.TestClient, data: dict[str, np.ndarray]) -> None:
    body = {"X_train": data["X"].tolist(), "y_train": data["y"].tolist(), "statistics": True}
    classical = post(client, "/fit", body)["statistics"]
    robust = post(client, "/fit", {**body, "cov_type": "HC2"})["statistics"]
    for key in ("r_squared", "adj_r_squared", "residual_std_error", "df_residual", "condition_number"):
        assert robust[key] == classical[key]
    assert [r["estimate"] for r in robust["coefficients"]] == [r["estimate"] for r in classical["coefficients"]]
    assert robust["f_statistic"] != classical["f_statistic"]


def single_row_level() -> tuple[np.ndarray, np.ndarray]:
    """A design where one row is the only one of its category: its leverage is 1."""
    rng = np.random.default_rng(8)
    X = np.column_stack([rng.normal(size=12), np.r_[np.zeros(11), 1.0]])
    return X, X[:, 0] * 2 + rng.normal(size=12)


@pytest.mark.parametrize("cov_type", ["HC2", "HC3"])
def test_leverage_of_one_gives_null_with_a_warning(client: testing.TestClient, cov_type: str) -> None:
    X, y = single_row_level()
    answer = post(client, "/fit", {"X_train": X.tolist(), "y_train": y.tolist(), "statistics": True, "cov_type": cov_type})
    stats = answer["statistics"]
    assert stats["f_statistic"] is None and stats["f_p_value"] is None
    for row in stats["coefficients"]:
        assert row["estimate"] is not None
        assert all(row[key] is None for key in ("std_error", "t_value", "p_value", "ci_lower", "ci_upper"))
    assert stats["r_squared"] is not None and stats["cov_type"] == cov_type
    assert any("leverage of 1" in warning and cov_type in warning for warning in answer["warnings"])
    # the row's leverage is 1 (statsmodels divides its zero residual by a zero 1 - h: noise)
    assert reference(y, X, None, "nonrobust").get_influence().hat_matrix_diag[-1] == pytest.approx(1.0, abs=1e-12)


@pytest.mark.parametrize("cov_type", ["HC0", "HC1"])
def test_leverage_of_one_is_fine_for_hc0_and_hc1(client: testing.TestClient, cov_type: str) -> None:
    X, y = single_row_level()
    answer = post(client, "/fit", {"X_train": X.tolist(), "y_train": y.tolist(), "statistics": True, "cov_type": cov_type})
    model = reference(y, X, None, cov_type)
    # the lone row's residual is zero, so its column's standard error is rounding: compare the others
    assert rel([r["std_error"] for r in answer["statistics"]["coefficients"]][:2], model.bse[:2]) < RTOL


@pytest.mark.parametrize("interval", ["confidence", "prediction"])
def test_leverage_of_one_gives_null_interval_bounds(client: testing.TestClient, interval: str) -> None:
    X, y = single_row_level()
    body = {"X_train": X.tolist(), "y_train": y.tolist(), "X_test": [[0.0, 0.0], [1.0, 1.0]], "interval": interval,
            "cov_type": "HC3"}  # fmt: skip
    answer = post(client, "/predict", body)
    assert answer["intervals"]["lower"] == [None, None] and answer["intervals"]["upper"] == [None, None]
    assert answer["predictions"][0] is not None
    assert any("interval bounds are null" in warning and "leverage of 1" in warning for warning in answer["warnings"])
    csv = client.simulate_post("/predict", json=body, headers={"Accept": "text/csv"})
    assert csv.status_code == 200 and csv.text.splitlines()[1].endswith(",,")
    # one feature, the lone row at 1: a picture without a band
    picture = client.simulate_post("/predict", json={**body, "X_train": X[:, 1:].tolist(), "X_test": [[0.5]]},
                                   headers={"Accept": "image/svg+xml"})  # fmt: skip
    assert picture.status_code == 200 and picture.text.startswith("<?xml")


def test_zero_weight_rows_take_no_part(data: dict[str, np.ndarray]) -> None:
    X, y, w = data["X"], data["y"], data["w"]
    padded = np.vstack([X, X[:5] * 3]), np.r_[y, y[:5] + 100], np.r_[w, np.zeros(5)]
    answers = []
    for features, target, weights in ((X, y, w), padded):
        design = Design(features, target[:, None], weights, True)
        coef, intercept, rank = solve(design, False)
        answers.append(statistics.infer(design, coef=coef, intercept=intercept, positive=False, rank_deficient=False,
                                         terms=["a", "b", "c"], rank=rank, level=0.95, X_test=X[:3],
                                         interval="confidence", cov_type="HC3"))  # fmt: skip
    np.testing.assert_allclose(answers[1].lower, answers[0].lower, rtol=1e-12)
    first, second = (a.statistics[0]["coefficients"] for a in answers)
    np.testing.assert_allclose([r["std_error"] for r in second], [r["std_error"] for r in first], rtol=1e-12)


def test_exact_fit_has_zero_robust_errors_and_no_f_test() -> None:
    X = np.arange(12.0).reshape(6, 2) ** [1, 2]
    y = X @ np.array([1.0, 0.5]) + 2
    design = Design(X, y[:, None], None, True)
    inference = statistics.infer(design, coef=np.array([[1.0, 0.5]]), intercept=np.array([2.0]), positive=False,
                                 rank_deficient=False, terms=["a", "b"], level=0.95, cov_type="HC1")  # fmt: skip
    stats = inference.statistics[0]
    assert stats["f_statistic"] is None and stats["f_p_value"] is None
    assert all(row["std_error"] == 0.0 and row["t_value"] is None for row in stats["coefficients"])
    assert any("exact" in warning for warning in inference.warnings)


def test_meat_is_the_textbook_sandwich(data: dict[str, np.ndarray]) -> None:
    """HC0's covariance from the factor equals (X'X)^-1 X' diag(e^2) X (X'X)^-1 formed directly."""
    X, y = data["X"][:, :2], data["y"]
    design = Design(X, y[:, None], None, True)
    coef, intercept, _ = solve(design, False)
    assert design.factor is not None
    robust = sandwich(design, design.factor, coef, intercept, "HC0")
    assert robust is not None
    A = np.column_stack([np.ones(len(X)), X])
    e = y - A @ np.r_[intercept, coef[0]]
    bread = np.linalg.inv(A.T @ A)
    expected = np.diag(bread @ (A.T * e**2) @ A @ bread)
    np.testing.assert_allclose(robust.coefficient_variances()[0], expected, rtol=1e-10)


def test_unknown_cov_type_is_a_value_error(data: dict[str, np.ndarray]) -> None:
    design = Design(data["X"], data["y"][:, None], None, True)
    coef, intercept, _ = solve(design, False)
    with pytest.raises(ValueError, match="cov_type"):
        statistics.infer(design, coef=coef, intercept=intercept, positive=False, rank_deficient=False,
                         terms=["a", "b", "c"], level=0.95, cov_type="HC4")  # fmt: skip
    assert design.factor is not None
    with pytest.raises(ValueError, match="cov_type"):
        sandwich(design, design.factor, coef, intercept, "nonrobust")


def test_wald_test_of_one_slope_is_its_t_squared(client: testing.TestClient, data: dict[str, np.ndarray]) -> None:
    answer = post(client, "/fit", {"X_train": data["X"][:, :1].tolist(), "y_train": data["y"].tolist(),
                                   "statistics": True, "cov_type": "HC3"})  # fmt: skip
    stats = answer["statistics"]
    t_value = stats["coefficients"][1]["t_value"]
    assert stats["f_statistic"] == pytest.approx(t_value**2, rel=1e-12)
    assert stats["f_p_value"] == pytest.approx(stats["coefficients"][1]["p_value"], rel=1e-10)


def test_rank_deficiency_still_nulls_robust_statistics(client: testing.TestClient, data: dict[str, np.ndarray]) -> None:
    X = np.column_stack([data["X"], data["X"][:, 0] * 2])
    answer = post(client, "/fit", {"X_train": X.tolist(), "y_train": data["y"].tolist(), "statistics": True, "cov_type": "HC1"})
    stats = answer["statistics"]
    assert stats["cov_type"] == "HC1" and stats["f_statistic"] is None
    assert all(row["std_error"] is None for row in stats["coefficients"])
    assert any("rank deficient" in warning for warning in answer["warnings"])
