"""The fit stage on its own: checked arrays in, coefficients and predictions out."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.optimize
import statsmodels.api as sm

from service.design import column_scale
from service.errors import InvalidInput
from service.fitting import fit
from service.request import FitRequest, Model, Options


def request(X: np.ndarray, y: np.ndarray, **kwargs: object) -> FitRequest:
    Y = y.reshape(len(y), -1)
    return FitRequest(X_train=X, y_train=Y, single_target=y.ndim == 1, **kwargs)  # type: ignore[arg-type]


@pytest.fixture
def data() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(3)
    X = rng.normal(size=(60, 4)) * np.array([1.0, 1e3, 1e-3, 5.0])
    y = X @ np.array([0.5, -2e-3, 7e2, 1.5]) + 3.0 + rng.normal(size=60)
    return X, y


def test_matches_ordinary_least_squares(data: tuple[np.ndarray, np.ndarray]) -> None:
    X, y = data
    result = fit(request(X, y))
    reference = sm.OLS(y, sm.add_constant(X)).fit().params
    np.testing.assert_allclose(result.intercept[0], reference[0], rtol=1e-10)
    np.testing.assert_allclose(result.coef[0], reference[1:], rtol=1e-10)
    assert result.rank == 4 and result.n_samples == 60 and result.warnings == []


def test_weights_match_weighted_least_squares(data: tuple[np.ndarray, np.ndarray]) -> None:
    X, y = data
    weights = np.random.default_rng(4).uniform(0, 3, size=60)
    weights[:5] = 0
    result = fit(request(X, y, sample_weight=weights))
    reference = sm.WLS(y, sm.add_constant(X), weights=weights).fit().params
    np.testing.assert_allclose(np.r_[result.intercept, result.coef[0]], reference, rtol=1e-10)


def test_without_intercept(data: tuple[np.ndarray, np.ndarray]) -> None:
    X, y = data
    result = fit(request(X, y, options=Options(fit_intercept=False)))
    reference = sm.OLS(y, X).fit().params
    np.testing.assert_allclose(result.coef[0], reference, rtol=1e-10)
    assert result.intercept[0] == 0.0


def test_several_targets_are_fitted_each_on_its_own(data: tuple[np.ndarray, np.ndarray]) -> None:
    X, y = data
    Y = np.column_stack([y, -2 * y + X[:, 0], np.ones(60)])
    together = fit(request(X, Y))
    assert together.coef.shape == (3, 4) and together.n_targets == 3
    for j in range(3):
        alone = fit(request(X, Y[:, j]))
        np.testing.assert_allclose(together.coef[j], alone.coef[0], rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(together.intercept[j], alone.intercept[0], rtol=1e-9, atol=1e-12)


def test_positive_matches_nonnegative_least_squares(data: tuple[np.ndarray, np.ndarray]) -> None:
    X, y = data
    result = fit(request(X, y, options=Options(positive=True, fit_intercept=False)))
    reference, _ = scipy.optimize.nnls(X, y)
    np.testing.assert_allclose(result.coef[0], reference, rtol=1e-8, atol=1e-10)
    assert (result.coef >= 0).all()
    assert result.rank is None


def test_predictions_are_the_linear_model(data: tuple[np.ndarray, np.ndarray]) -> None:
    X, y = data
    X_test = X[:7] + 1
    result = fit(request(X, y, X_test=X_test))
    assert result.predictions is not None
    np.testing.assert_allclose(result.predictions[:, 0], X_test @ result.coef[0] + result.intercept[0], rtol=1e-13)


def test_predicting_from_a_model_does_not_fit() -> None:
    model = Model(coef=np.array([[2.0, -1.0]]), intercept=np.array([0.5]))
    result = fit(FitRequest(X_test=np.array([[1.0, 1.0], [3.0, 0.0]]), model=model))
    assert result.predictions is not None
    assert result.predictions[:, 0].tolist() == [1.5, 6.5]
    assert result.n_samples is None and result.rank is None


def test_no_residual_degrees_of_freedom_is_a_warning() -> None:
    X = np.array([[1.0], [2.0]])
    result = fit(request(X, np.array([1.0, 3.0])))
    assert any("no residual degrees of freedom" in w for w in result.warnings)


def test_zero_weights_do_not_count_as_rows() -> None:
    X = np.array([[1.0], [2.0], [3.0], [4.0]])
    result = fit(request(X, np.array([1.0, 3.0, 2.0, 8.0]), sample_weight=np.array([1.0, 1.0, 0.0, 0.0])))
    assert any("2 training rows with nonzero weight" in w for w in result.warnings)
    np.testing.assert_allclose(result.coef[0], [2.0])


def test_overflowing_fit_is_invalid_input() -> None:
    # Every value is in range, but the slope (about 1e450) is not.
    X = np.array([[1e-300], [2e-300], [3e-300], [4e-300]])
    y = np.array([1e150, 2e150, 3.5e150, 4e150])
    with pytest.raises(InvalidInput) as caught:
        fit(request(X, y))
    assert "overflowed" in caught.value.detail


def test_overflowing_prediction_is_invalid_input() -> None:
    model = Model(coef=np.array([[1e154, 1e154]]), intercept=np.array([0.0]))
    with pytest.raises(InvalidInput) as caught:
        fit(FitRequest(X_test=np.array([[1e154, 1e154]]), model=model))
    assert caught.value.field == "X_test"


def test_column_scale_is_an_exact_power_of_two() -> None:
    X = np.array([[3.0, -1e-300, 0.0], [-6.5, 2e-300, 0.0]])
    scale = column_scale(X)
    mantissa, _ = np.frexp(scale)
    assert (mantissa == 0.5).all()
    assert scale[2] == 1.0
    assert ((X / scale) * scale == X).all()
    assert (np.abs(X / scale).max(axis=0)[:2] < 1).all()
