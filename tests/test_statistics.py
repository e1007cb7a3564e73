"""Tests of ``service.statistics``: statsmodels' OLS/WLS, NIST StRD, and the edge cases."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import statsmodels.api as sm
from hypothesis import given, settings
from hypothesis import strategies as st
from statsmodels.tools.sm_exceptions import SingularMatrixWarning

from service.design import Design
from service.statistics import Inference, UndefinedInterval, infer

STRD = Path(__file__).resolve().parent / "fixtures" / "strd"
# A missing directory must fail, not silently give an empty (skipped) parametrization.
NIST_FILES = sorted(STRD.glob("*.json")) or [STRD / "missing.json"]
SCALARS = ("r_squared", "adj_r_squared", "residual_std_error", "f_statistic", "f_p_value")
PER_TERM = ("std_error", "t_value", "p_value", "ci_lower", "ci_upper")


def make_data(seed: int, n: int = 30, p: int = 3, k: int = 2) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Features of mixed scales and offsets, k noisy targets, and weights with zeros."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, p)) * [1.0, 30.0, 0.01][:p] + [5.0, -200.0, 1.0][:p]
    B = rng.normal(size=(p, k)) * [[0.5], [0.02], [40.0]][:p]
    Y = X @ B + 3.0 + rng.normal(scale=0.8, size=(n, k))
    weight = rng.uniform(0.2, 3.0, size=n)
    weight[1::11] = 0.0
    return X, Y, weight


def run(
    X: np.ndarray,
    Y: np.ndarray,
    weight: np.ndarray | None,
    coef: np.ndarray,
    intercept: np.ndarray,
    *,
    fit_intercept: bool = True,
    positive: bool = False,
    rank_deficient: bool = False,
    level: float = 0.95,
    X_test: np.ndarray | None = None,
    interval: str = "none",
) -> Inference:
    """Call ``infer`` and check that every number it returns is finite or None."""
    result = infer(
        Design(X, Y, weight, fit_intercept),
        coef=coef,
        intercept=intercept,
        positive=positive,
        rank_deficient=rank_deficient,
        terms=[f"x{j}" for j in range(X.shape[1])],
        level=level,
        X_test=X_test,
        interval=interval,
    )
    assert_json_numbers(result.statistics)
    for bound in (result.lower, result.upper):
        assert bound is None or np.isfinite(bound).all()
    assert all(isinstance(w, str) and w.endswith(".") for w in result.warnings)
    return result


def table(result: Inference) -> list[dict[str, Any]]:
    """The statistics, typed for reading in tests."""
    return result.statistics


def assert_json_numbers(value: Any) -> None:
    """Every number is a finite Python int or float (or None)."""
    if isinstance(value, dict):
        for item in value.values():
            assert_json_numbers(item)
    elif isinstance(value, list):
        for item in value:
            assert_json_numbers(item)
    elif value is not None and not isinstance(value, str):
        assert type(value) in (int, float), f"{value!r} is a {type(value).__name__}"
        assert math.isfinite(value)


def statsmodels_fit(X: np.ndarray, y: np.ndarray, weight: np.ndarray | None, fit_intercept: bool) -> Any:
    """The statsmodels reference on the rows of positive weight (R drops the others)."""
    exog = sm.add_constant(X, has_constant="add") if fit_intercept else X
    if weight is None:
        return sm.OLS(y, exog).fit()
    kept = weight > 0
    return sm.WLS(y[kept], exog[kept], weights=weight[kept]).fit()


@pytest.mark.parametrize("level", [0.95, 0.8, 0.999])
@pytest.mark.parametrize("weighted", [False, True], ids=["ols", "wls"])
@pytest.mark.parametrize("fit_intercept", [True, False], ids=["intercept", "no-intercept"])
def test_matches_statsmodels(fit_intercept: bool, weighted: bool, level: float) -> None:
    X, Y, weight = make_data(seed=int(level * 1000) + 2 * weighted + fit_intercept)
    w = weight if weighted else None
    X_test = make_data(seed=99, n=7)[0]
    fits = [statsmodels_fit(X, Y[:, j], w, fit_intercept) for j in range(Y.shape[1])]
    params = np.array([fit.params for fit in fits])
    coef = params[:, 1:] if fit_intercept else params
    intercept = params[:, 0] if fit_intercept else np.zeros(Y.shape[1])
    exog_test = sm.add_constant(X_test, has_constant="add") if fit_intercept else X_test
    for kind, column in (("confidence", "mean_ci"), ("prediction", "obs_ci")):
        result = run(
            X, Y, w, coef, intercept, fit_intercept=fit_intercept, level=level, X_test=X_test, interval=kind
        )
        assert result.warnings == []
        assert result.lower is not None and result.upper is not None
        assert result.lower.shape == result.upper.shape == (len(X_test), Y.shape[1])
        for j, fit in enumerate(fits):
            frame = fit.get_prediction(exog_test, weights=1.0).summary_frame(alpha=1 - level)
            np.testing.assert_allclose(result.lower[:, j], frame[f"{column}_lower"], rtol=1e-7)
            np.testing.assert_allclose(result.upper[:, j], frame[f"{column}_upper"], rtol=1e-7)
    for j, fit in enumerate(fits):
        got = table(result)[j]
        assert got["df_residual"] == int(fit.df_resid)
        expected = {
            "r_squared": fit.rsquared,
            "adj_r_squared": fit.rsquared_adj,
            "residual_std_error": np.sqrt(fit.scale),
            "f_statistic": fit.fvalue,
            "f_p_value": fit.f_pvalue,
            "condition_number": fit.condition_number,
        }
        for key, value in expected.items():
            np.testing.assert_allclose(got[key], value, rtol=1e-7, err_msg=key)
        terms = got["coefficients"]
        assert [t["term"] for t in terms] == (["(Intercept)"] if fit_intercept else []) + [
            f"x{i}" for i in range(X.shape[1])
        ]
        ci = fit.conf_int(alpha=1 - level)
        columns = {
            "estimate": fit.params,
            "std_error": fit.bse,
            "t_value": fit.tvalues,
            "p_value": fit.pvalues,
            "ci_lower": ci[:, 0],
            "ci_upper": ci[:, 1],
        }
        for key, values in columns.items():
            np.testing.assert_allclose([t[key] for t in terms], values, rtol=1e-7, err_msg=key)


def test_zero_weights_do_not_count_in_df() -> None:
    X, Y, weight = make_data(seed=5)
    fit = statsmodels_fit(X, Y[:, 0], weight, True)
    result = run(X, Y[:, :1], weight, fit.params[None, 1:], fit.params[:1])
    assert table(result)[0]["df_residual"] == np.count_nonzero(weight) - X.shape[1] - 1
    np.testing.assert_allclose(table(result)[0]["residual_std_error"], np.sqrt(fit.scale))


def nist_design(data: dict[str, Any]) -> np.ndarray:
    x = np.asarray(data["x"], dtype=np.float64)
    if data["model"] == "polynomial":
        return np.column_stack([x**d for d in range(1, data["degree"] + 1)])
    return x.reshape(data["n"], -1)


def lre(estimate: float, certified: float) -> float:
    """Log relative error: correct significant digits (absolute where certified is 0)."""
    error = abs(estimate - certified) / (abs(certified) if certified != 0 else 1.0)
    return 15.0 if error == 0 else min(15.0, -math.log10(error))


def test_nist_data_is_there() -> None:
    names = {path.stem for path in STRD.glob("*.json")}
    assert {"Norris", "Pontius", "NoInt1", "Longley", "Wampler1"} <= names, STRD


@pytest.mark.parametrize("path", NIST_FILES, ids=[path.stem for path in NIST_FILES])
def test_nist_certified_values(path: Path) -> None:
    data = json.loads(path.read_text(encoding="utf-8"))
    certified = data["certified"]
    X = nist_design(data)
    params = np.asarray(certified["params"], dtype=np.float64)
    fit_intercept = bool(data["intercept"])
    intercept = params[:1] if fit_intercept else np.zeros(1)
    coef = params[1:] if fit_intercept else params
    y = np.asarray(data["y"], dtype=np.float64)[:, None]
    got = table(run(X, y, None, coef[None, :], intercept, fit_intercept=fit_intercept))[0]
    errors = [t["std_error"] for t in got["coefficients"]]
    assert len(errors) == len(certified["param_sd"])
    digits = [lre(e, c) for e, c in zip(errors, certified["param_sd"], strict=True)]
    digits += [lre(got["residual_std_error"], certified["residual_sd"])]
    digits += [lre(got["r_squared"], certified["r_squared"])]
    assert min(digits) >= 9, digits


def exact_fit(seed: int, n: int, p: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Data with n rows and the least-squares coefficients (through numpy's lstsq)."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, p))
    Y = rng.normal(size=(n, 1))
    solution = np.linalg.lstsq(np.hstack([np.ones((n, 1)), X]), Y, rcond=None)[0]
    return X, Y, solution[1:].T, solution[0]


@pytest.mark.parametrize("weighted", [False, True], ids=["rows", "zero-weights"])
def test_zero_residual_degrees_of_freedom(weighted: bool) -> None:
    X, Y, coef, intercept = exact_fit(seed=3, n=3, p=2)
    weight = None
    if weighted:  # two more rows, of weight 0: still 3 rows that count
        X, Y = np.vstack([X, [[9.0, 9.0], [1.0, -4.0]]]), np.vstack([Y, [[7.0], [3.0]]])
        weight = np.array([1.0, 2.0, 0.5, 0.0, 0.0])
    result = run(X, Y, weight, coef, intercept)
    got = table(result)[0]
    assert got["df_residual"] == 0
    assert got["r_squared"] == pytest.approx(1.0)
    for key in ("adj_r_squared", "residual_std_error", "f_statistic", "f_p_value"):
        assert got[key] is None, key
    assert all(t[key] is None for t in got["coefficients"] for key in PER_TERM)
    assert any("no residual degrees of freedom" in w for w in result.warnings)
    for kind in ("confidence", "prediction"):
        with pytest.raises(UndefinedInterval, match="no residual degrees of freedom"):
            run(X, Y, weight, coef, intercept, X_test=X[:2], interval=kind)


def test_rank_deficiency_keeps_fit_statistics_only() -> None:
    X, Y, _ = make_data(seed=11, k=1)
    X[:, 2] = 2.0 * X[:, 0] - 1.0
    with pytest.warns(SingularMatrixWarning):
        fit = statsmodels_fit(X, Y[:, 0], None, True)  # pinv: the minimum-norm solution
    result = run(X, Y, None, fit.params[None, 1:], fit.params[:1], rank_deficient=True)
    got = table(result)[0]
    assert got["df_residual"] == int(fit.df_resid) == len(X) - 2 - 1
    for key, value in (
        ("r_squared", fit.rsquared),
        ("adj_r_squared", fit.rsquared_adj),
        ("residual_std_error", np.sqrt(fit.scale)),
    ):
        np.testing.assert_allclose(got[key], value, rtol=1e-7, err_msg=key)
    assert got["f_statistic"] is None and got["f_p_value"] is None
    assert [t["estimate"] for t in got["coefficients"]] == pytest.approx(list(fit.params))
    assert all(t[key] is None for t in got["coefficients"] for key in PER_TERM)
    assert any("rank deficient (rank 2 for 3 features)" in w for w in result.warnings)
    with pytest.raises(UndefinedInterval, match="rank deficient"):
        run(
            X,
            Y,
            None,
            fit.params[None, 1:],
            fit.params[:1],
            rank_deficient=True,
            X_test=X[:3],
            interval="confidence",
        )


def test_fewer_rows_than_parameters() -> None:
    X = np.array([[1.0, 2.0], [3.0, 5.0]])
    Y = np.array([[1.0], [2.0]])
    result = run(X, Y, None, np.array([[0.1, 0.2]]), np.array([0.5]), rank_deficient=True)
    got = table(result)[0]
    assert got["df_residual"] == 0
    assert got["condition_number"] is None
    assert any("condition_number is null" in w for w in result.warnings)


@pytest.mark.parametrize("fit_intercept", [True, False], ids=["intercept", "no-intercept"])
def test_positive_keeps_fit_statistics_only(fit_intercept: bool) -> None:
    X, Y, weight = make_data(seed=21, k=1)
    coef = np.array([[0.3, 0.0, 12.0]])
    intercept = np.array([1.5 if fit_intercept else 0.0])
    result = run(X, Y, weight, coef, intercept, fit_intercept=fit_intercept, positive=True)
    got = table(result)[0]
    kept = weight > 0
    residual = Y[kept, 0] - X[kept] @ coef[0] - intercept[0]
    centre = np.average(Y[kept, 0], weights=weight[kept]) if fit_intercept else 0.0
    rss = np.sum(weight[kept] * residual**2)
    tss = np.sum(weight[kept] * (Y[kept, 0] - centre) ** 2)
    df = np.count_nonzero(weight) - 3 - fit_intercept
    assert got["df_residual"] == df
    assert got["r_squared"] == pytest.approx(1 - rss / tss, rel=1e-12)
    n_centred = np.count_nonzero(weight) - fit_intercept
    assert got["adj_r_squared"] == pytest.approx(1 - rss / tss * n_centred / df, rel=1e-12)
    assert got["residual_std_error"] == pytest.approx(np.sqrt(rss / df), rel=1e-12)
    assert got["f_statistic"] is None and got["f_p_value"] is None
    assert all(t[key] is None for t in got["coefficients"] for key in PER_TERM)
    assert any("positive=true" in w for w in result.warnings)
    with pytest.raises(UndefinedInterval, match="positive=true"):
        run(
            X,
            Y,
            weight,
            coef,
            intercept,
            fit_intercept=fit_intercept,
            positive=True,
            X_test=X[:3],
            interval="prediction",
        )


def test_constant_target_has_no_r_squared() -> None:
    X, _, _ = make_data(seed=4, k=1)
    Y = np.column_stack([np.full(len(X), 2.5), X[:, 0] + np.sin(np.arange(len(X)))])
    coef = np.vstack(
        [np.zeros(3), np.linalg.lstsq(np.hstack([np.ones((len(X), 1)), X]), Y[:, 1], rcond=None)[0][1:]]
    )
    intercept = np.array([2.5, np.mean(Y[:, 1] - X @ coef[1])])
    result = run(X, Y, None, coef, intercept)
    assert table(result)[0]["r_squared"] is None
    assert table(result)[0]["adj_r_squared"] is None
    assert table(result)[1]["r_squared"] is not None
    assert any("of target 0" in w and "total sum of squares is zero" in w for w in result.warnings)


def test_exact_fit_has_zero_standard_errors() -> None:
    X = np.arange(12.0).reshape(6, 2) ** 1.5
    Y = (X @ [2.0, -1.0] + 4.0)[:, None]
    result = run(X, Y, None, np.array([[2.0, -1.0]]), np.array([4.0]), X_test=X[:2], interval="prediction")
    got = table(result)[0]
    assert got["residual_std_error"] is not None and got["residual_std_error"] < 1e-12
    assert result.lower is not None and result.upper is not None
    np.testing.assert_allclose(result.upper - result.lower, 0.0, atol=1e-9)


def test_intervals_order() -> None:
    X, Y, weight = make_data(seed=8)
    fits = [statsmodels_fit(X, Y[:, j], weight, True) for j in range(2)]
    coef = np.array([fit.params[1:] for fit in fits])
    intercept = np.array([fit.params[0] for fit in fits])
    X_test = X[:5] * 1.1
    mean = run(X, Y, weight, coef, intercept, X_test=X_test, interval="confidence")
    new = run(X, Y, weight, coef, intercept, X_test=X_test, interval="prediction")
    predictions = X_test @ coef.T + intercept
    assert mean.lower is not None and mean.upper is not None
    assert new.lower is not None and new.upper is not None
    assert (new.lower < mean.lower).all() and (mean.lower < predictions).all()
    assert (predictions < mean.upper).all() and (mean.upper < new.upper).all()
    assert run(X, Y, weight, coef, intercept).lower is None


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"interval": "bogus"}, "interval must be"),
        ({"interval": "confidence"}, "needs X_test"),
        ({"level": 1.0}, "level must be in"),
        ({"level": 0.0}, "level must be in"),
    ],
    ids=["interval", "no-X_test", "level-1", "level-0"],
)
def test_bad_arguments(change: dict[str, Any], message: str) -> None:
    X, Y, _ = make_data(seed=1, k=1)
    arguments: dict[str, Any] = {"level": 0.95, "interval": "none", **change}
    with pytest.raises(ValueError, match=message):
        run(X, Y, None, np.zeros((1, 3)), np.zeros(1), **arguments)


def test_undefined_interval_is_a_value_error() -> None:
    assert issubclass(UndefinedInterval, ValueError)


@settings(max_examples=25, deadline=None)
@given(
    order=st.permutations(range(30)),
    factor=st.floats(min_value=1e-3, max_value=1e3),
)
def test_row_order_and_weight_scale_do_not_matter(order: list[int], factor: float) -> None:
    X, Y, weight = make_data(seed=17)
    fits = [statsmodels_fit(X, Y[:, j], weight, True) for j in range(2)]
    coef = np.array([fit.params[1:] for fit in fits])
    intercept = np.array([fit.params[0] for fit in fits])
    base = run(X, Y, weight, coef, intercept, X_test=X[:4], interval="confidence")
    rows = np.array(order)
    moved = run(X[rows], Y[rows], weight[rows] * factor, coef, intercept, X_test=X[:4], interval="confidence")
    assert base.lower is not None and moved.lower is not None
    np.testing.assert_allclose(moved.lower, base.lower, rtol=1e-9)
    for before, after in zip(table(base), table(moved), strict=True):
        # sigma is the error scale of a row of weight 1, so it follows the weights.
        assert after["residual_std_error"] == pytest.approx(
            before["residual_std_error"] * math.sqrt(factor), rel=1e-9
        )
        for key in (*SCALARS, "condition_number"):
            if key != "residual_std_error":
                assert after[key] == pytest.approx(before[key], rel=1e-7), key
        for old, new in zip(before["coefficients"], after["coefficients"], strict=True):
            for key in PER_TERM:
                assert new[key] == pytest.approx(old[key], rel=1e-9), key
