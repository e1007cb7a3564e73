"""Statistics, intervals and model reuse through the API, against statsmodels."""

from __future__ import annotations

import numpy as np
import pytest
import statsmodels.api as sm
from falcon import testing


@pytest.fixture
def data() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(21)
    X = rng.normal(size=(40, 3))
    y = X @ np.array([1.5, -2.0, 0.3]) + 4.0 + rng.normal(size=40)
    return {"X": X, "y": y, "X_test": rng.normal(size=(5, 3)), "w": rng.uniform(0.5, 2.0, size=40)}


def post(client: testing.TestClient, path: str, body: dict[str, object]) -> dict[str, object]:
    answer = client.simulate_post(path, json=body)
    assert answer.status_code == 200, answer.text
    return answer.json  # type: ignore[no-any-return]


@pytest.mark.parametrize("weighted", [False, True], ids=["ols", "wls"])
def test_statistics_and_intervals_match_statsmodels(client: testing.TestClient, data: dict[str, np.ndarray], weighted: bool) -> None:
    X, y, X_test, w = data["X"], data["y"], data["X_test"], data["w"]
    body: dict[str, object] = {"X_train": X.tolist(), "y_train": y.tolist(), "X_test": X_test.tolist(),
                               "statistics": True, "interval": "prediction", "level": 0.9}  # fmt: skip
    if weighted:
        body["sample_weight"] = w.tolist()
    answer = post(client, "/predict", body)
    model = (sm.WLS(y, sm.add_constant(X), weights=w) if weighted else sm.OLS(y, sm.add_constant(X))).fit()
    stats = answer["statistics"]
    assert isinstance(stats, dict)
    assert stats["r_squared"] == pytest.approx(model.rsquared, rel=1e-7)
    assert stats["adj_r_squared"] == pytest.approx(model.rsquared_adj, rel=1e-7)
    assert stats["residual_std_error"] == pytest.approx(np.sqrt(model.scale), rel=1e-7)
    assert stats["df_residual"] == model.df_resid
    assert stats["f_statistic"] == pytest.approx(model.fvalue, rel=1e-7)
    assert stats["f_p_value"] == pytest.approx(model.f_pvalue, rel=1e-7)
    table = stats["coefficients"]
    assert [row["term"] for row in table] == ["(Intercept)", "x0", "x1", "x2"]
    ci = model.conf_int(alpha=0.1)
    for j, row in enumerate(table):
        assert row["std_error"] == pytest.approx(model.bse[j], rel=1e-7)
        assert row["p_value"] == pytest.approx(model.pvalues[j], rel=1e-7)
        assert (row["ci_lower"], row["ci_upper"]) == pytest.approx((ci[j, 0], ci[j, 1]), rel=1e-7)
    frame = model.get_prediction(sm.add_constant(X_test, has_constant="add")).summary_frame(alpha=0.1)
    intervals = answer["intervals"]
    assert intervals["kind"] == "prediction" and intervals["level"] == 0.9
    np.testing.assert_allclose(intervals["lower"], frame["obs_ci_lower"], rtol=1e-7)
    np.testing.assert_allclose(intervals["upper"], frame["obs_ci_upper"], rtol=1e-7)


def test_confidence_intervals_for_several_named_targets(client: testing.TestClient, data: dict[str, np.ndarray]) -> None:
    X, y, X_test = data["X"], data["y"], data["X_test"]
    y2 = 2 * y + np.sin(np.arange(40.0))
    answer = post(client, "/predict", {"X_train": X.tolist(), "y_train": {"a": y.tolist(), "b": y2.tolist()},
                                       "X_test": X_test.tolist(), "interval": "confidence"})  # fmt: skip
    assert isinstance(answer["statistics"], list) and len(answer["statistics"]) == 2
    lower, upper = np.array(answer["intervals"]["lower"]), np.array(answer["intervals"]["upper"])
    assert lower.shape == upper.shape == (5, 2)
    for j, target in enumerate((y, y2)):
        frame = sm.OLS(target, sm.add_constant(X)).fit().get_prediction(sm.add_constant(X_test)).summary_frame(alpha=0.05)
        np.testing.assert_allclose(lower[:, j], frame["mean_ci_lower"], rtol=1e-7)
        np.testing.assert_allclose(upper[:, j], frame["mean_ci_upper"], rtol=1e-7)


def test_statistics_use_feature_names(client: testing.TestClient) -> None:
    answer = post(client, "/fit", {"X_train": {"a": [1, 2, 3, 4, 5], "b": [2, 1, 4, 3, 6]}, "y_train": [1, 3, 2, 5, 4],
                                   "statistics": True, "fit_intercept": False})  # fmt: skip
    assert [row["term"] for row in answer["statistics"]["coefficients"]] == ["a", "b"]


def test_rank_deficiency_gives_nulls_and_a_warning(client: testing.TestClient, data: dict[str, np.ndarray]) -> None:
    X = np.column_stack([data["X"], data["X"][:, 0]])
    answer = post(client, "/fit", {"X_train": X.tolist(), "y_train": data["y"].tolist(), "statistics": True})
    stats = answer["statistics"]
    assert stats["r_squared"] is not None and stats["f_statistic"] is None
    assert all(row["std_error"] is None and row["p_value"] is None for row in stats["coefficients"])
    assert any("rank" in w for w in answer["warnings"])


def test_interval_that_cannot_exist_is_422_naming_interval(client: testing.TestClient) -> None:
    answer = client.simulate_post("/predict", json={"X_train": [1, 2], "y_train": [1, 3], "X_test": [3],
                                                    "interval": "prediction"})  # fmt: skip
    assert answer.status_code == 422 and answer.json["field"] == "interval"


def test_statistics_without_residual_degrees_of_freedom_are_null(client: testing.TestClient) -> None:
    answer = post(client, "/fit", {"X_train": [1, 2], "y_train": [1, 3], "statistics": True})
    assert answer["statistics"]["residual_std_error"] is None
    assert any("degrees of freedom" in w for w in answer["warnings"])
    assert b"NaN" not in client.simulate_post("/fit", json={"X_train": [1, 2], "y_train": [1, 3], "statistics": True}).content


def test_a_whole_earlier_answer_predicts_again(client: testing.TestClient, data: dict[str, np.ndarray]) -> None:
    X, y, X_test = data["X"], data["y"], data["X_test"]
    named = {f"f{j}": X[:, j].tolist() for j in range(3)}
    first = post(client, "/predict", {"X_train": named, "y_train": {"price": y.tolist()},
                                      "X_test": {f"f{j}": X_test[:, j].tolist() for j in range(3)}, "statistics": True})  # fmt: skip
    reordered = {f"f{j}": X_test[:, j].tolist() for j in (2, 0, 1)}
    again = post(client, "/predict", {"model": first, "X_test": reordered})
    assert again["predictions"] == pytest.approx(first["predictions"], rel=1e-13)
    assert again["feature_names"] == ["f0", "f1", "f2"] and again["target_names"] == ["price"]
    assert again["n_samples"] is None and again["rank"] is None


def test_model_of_several_targets(client: testing.TestClient) -> None:
    model = {"coef": [[1, 2], [0, -1]], "intercept": [0.5, 1]}
    answer = post(client, "/predict", {"model": model, "X_test": [[1, 1], [2, 0]]})
    assert answer["predictions"] == [[3.5, 0.0], [2.5, 1.0]] and answer["n_targets"] == 2


@pytest.mark.parametrize(
    "extra",
    [
        pytest.param({"X_train": [[1]]}, id="X_train"),
        pytest.param({"y_train": [1]}, id="y_train"),
        pytest.param({"sample_weight": [1]}, id="sample_weight"),
        pytest.param({"statistics": True}, id="statistics"),
        pytest.param({"interval": "confidence"}, id="interval"),
    ],
)
def test_model_with_training_data_or_inference_is_422(client: testing.TestClient, extra: dict[str, object]) -> None:
    body = {"model": {"coef": [1.0], "intercept": 0.0}, "X_test": [[1.0]], **extra}
    answer = client.simulate_post("/predict", json=body)
    assert answer.status_code == 422 and answer.json["field"] == "model"


@pytest.mark.parametrize(
    "model",
    [
        pytest.param([1, 2], id="not-an-object"),
        pytest.param({"intercept": 1}, id="no-coef"),
        pytest.param({"coef": [1, 2]}, id="no-intercept"),
        pytest.param({"coef": ["1"], "intercept": 0}, id="string-coef"),
        pytest.param({"coef": [[1, 2], [3, 4]], "intercept": [1]}, id="intercept-per-target"),
        pytest.param({"coef": [1, 2], "intercept": 0, "feature_names": ["a"]}, id="names-count"),
        pytest.param({"coef": [1e200], "intercept": 0}, id="coef-overflows"),
    ],
)
def test_malformed_model_is_422_naming_model(client: testing.TestClient, model: object) -> None:
    answer = client.simulate_post("/predict", json={"model": model, "X_test": [[1.0, 2.0]]})
    assert answer.status_code == 422 and answer.json["field"] == "model", answer.text


def test_model_with_names_matches_x_test_by_name(client: testing.TestClient) -> None:
    model = {"coef": [1.0, 10.0], "intercept": 0.0, "feature_names": ["a", "b"]}
    answer = post(client, "/predict", {"model": model, "X_test": {"b": [1.0], "a": [2.0]}})
    assert answer["predictions"] == [12.0]
    missing = client.simulate_post("/predict", json={"model": model, "X_test": {"a": [2.0]}})
    assert missing.status_code == 422 and missing.json["field"] == "X_test"


@pytest.mark.parametrize("option", [{"statistics": True}, {"interval": "confidence"}], ids=["statistics", "interval"])
def test_statistics_past_the_size_limit_are_refused(option: dict[str, object]) -> None:
    from service import create_app
    from service.settings import Settings

    client = testing.TestClient(create_app(Settings(max_statistics_terms=5)))
    X = [[float(i), float(i * i % 7), float(i % 3)] for i in range(10)]
    body = {"X_train": X, "y_train": [[float(i), float(-i)] for i in range(10)], "X_test": X[:2], **option}
    answer = client.simulate_post("/predict", json=body)
    field = next(iter(option))
    assert answer.status_code == 422 and answer.json["field"] == field
    assert "FITSERVE_MAX_STATISTICS_TERMS" in answer.json["detail"] and "8 coefficient statistics" in answer.json["detail"]
    plain = {k: v for k, v in body.items() if k not in option}
    assert client.simulate_post("/predict", json=plain).status_code == 200
