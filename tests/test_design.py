"""The shared design (service/design.py): one factor per request, exact scaling, coordinates."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import service.design
from service.design import Design, column_scale
from service.fitting import fit
from service.request import FitRequest, Options


@pytest.fixture
def factorizations(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, int]]:
    """The shapes of the QR factorizations computed."""
    shapes: list[tuple[int, int]] = []
    qr = service.design.linalg.qr

    def counting(a: np.ndarray, *args: Any, **kwargs: Any) -> Any:
        shapes.append(a.shape)
        return qr(a, *args, **kwargs)

    monkeypatch.setattr(service.design.linalg, "qr", counting)
    return shapes


def ill_conditioned() -> tuple[np.ndarray, np.ndarray]:
    """A degree-5 polynomial design (condition number ~1e9 after centring): the fit is refined."""
    x = np.linspace(0, 20, 21)
    X = np.column_stack([x**k for k in range(1, 6)])
    y = 1 + x + x**2 + x**3 + x**4 + x**5 + np.sin(x)
    return X, y[:, None]


def test_a_refined_fit_with_statistics_and_intervals_factors_its_design_once(
    factorizations: list[tuple[int, int]],
) -> None:
    X, Y = ill_conditioned()
    options = Options(statistics=True, interval="confidence")
    result = fit(FitRequest(X_train=X, y_train=Y, X_test=X[:2], options=options))
    assert result.statistics is not None and result.intervals is not None
    assert factorizations == [(21, 6)]


def test_a_well_conditioned_fit_without_statistics_factors_nothing(factorizations: list[tuple[int, int]]) -> None:
    X = np.array([[1.0, 0], [0, 1], [1, 1], [2, 1]])
    fit(FitRequest(X_train=X, y_train=np.array([[1.0], [2], [3], [5]])))
    assert factorizations == []


@pytest.mark.parametrize("fit_intercept", [True, False])
def test_coordinates_and_coefficients_are_inverse(fit_intercept: bool) -> None:
    X, Y = ill_conditioned()
    design = Design(X, Y, np.linspace(0.5, 2, len(X)), fit_intercept)
    factor = design.factor
    assert factor is not None
    coef, intercept = np.array([[0.5, -3.0, 2.25, 1e-3, 7.0]]), np.array([4.0 if fit_intercept else 0.0])
    back, level = factor.coefficients(factor.coordinates(coef, intercept))
    np.testing.assert_allclose(back, coef, rtol=1e-15)
    if fit_intercept:
        assert level is not None
        np.testing.assert_allclose(level, intercept, rtol=1e-14)
    else:
        assert level is None


def test_the_factor_gives_the_inverse_cross_product() -> None:
    rng = np.random.default_rng(7)
    X = rng.normal(size=(30, 3)) * [1e3, 1.0, 1e-3] + [5e3, 0, 0]
    w = rng.uniform(0.5, 2, size=30)
    factor = Design(X, rng.normal(size=(30, 1)), w, True).factor
    assert factor is not None
    A = np.column_stack([np.ones(30), X])
    inverse = np.linalg.inv(A.T @ (A * w[:, None]))
    np.testing.assert_allclose(factor.coefficient_factors(), np.diag(inverse), rtol=1e-9)


def test_zero_weight_rows_take_no_part() -> None:
    X, Y = ill_conditioned()
    w = np.ones(len(X))
    w[::3] = 0
    with_zeros = Design(X, Y, w, True)
    without = Design(X[w > 0], Y[w > 0], None, True)
    assert with_zeros.factor is not None and without.factor is not None
    np.testing.assert_allclose(np.abs(with_zeros.factor.r), np.abs(without.factor.r), rtol=1e-12)
    assert with_zeros.n_used == int(w.sum())


def test_column_scale_is_a_power_of_two_above_the_largest_magnitude() -> None:
    X = np.array([[3.0, -1e-300, 0.0], [-6.5, 2e-300, 0.0], [4.0, 8.0, 0.0]])
    scale = column_scale(X)
    assert scale.tolist() == [8.0, 16.0, 1.0]
