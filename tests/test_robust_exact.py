"""HC0-HC3 covariances, Wald F-tests and sequential sums of squares against exact rational arithmetic.

Every one of them is a rational function of the data (square roots aside, so variances
are compared rather than standard errors), which ``fractions.Fraction`` computes exactly
from the float64 inputs. The designs are ill-conditioned on purpose (columns of very
different scales, far from the origin), where a covariance formed from ``X'X`` or a
pseudo-inverse loses digits and one from the QR factor does not.
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest

from service import statistics
from service.anova import analyse_variance
from service.design import Design
from service.fitting import solve

Matrix = list[list[Fraction]]
RTOL = 1e-10


def inverse(a: Matrix) -> Matrix:
    """Gauss-Jordan inverse, exact."""
    n = len(a)
    work = [row[:] + [Fraction(int(i == j)) for j in range(n)] for i, row in enumerate(a)]
    for col in range(n):
        pivot = next(r for r in range(col, n) if work[r][col] != 0)
        work[col], work[pivot] = work[pivot], work[col]
        lead = work[col][col]
        work[col] = [v / lead for v in work[col]]
        for r in range(n):
            if r != col and work[r][col] != 0:
                factor = work[r][col]
                work[r] = [v - factor * c for v, c in zip(work[r], work[col], strict=True)]
    return [row[n:] for row in work]


def matmul(a: Matrix, b: Matrix) -> Matrix:
    return [[sum((x * y for x, y in zip(row, col, strict=True)), Fraction(0)) for col in zip(*b, strict=True)] for row in a]


def transpose(a: Matrix) -> Matrix:
    return [list(col) for col in zip(*a, strict=True)]


def exact(values: np.ndarray) -> Matrix:
    return [[Fraction(float(v)) for v in row] for row in np.atleast_2d(values)]


def least_squares(A: Matrix, y: list[Fraction], w: list[Fraction]) -> tuple[list[Fraction], Matrix]:
    """Exact weighted least squares: coefficients and (A'WA)^-1."""
    At = transpose(A)
    AtWA = [[sum((a * wi * b for a, wi, b in zip(ra, w, rb, strict=True)), Fraction(0)) for rb in At] for ra in At]
    AtWy = [sum((a * wi * yi for a, wi, yi in zip(ra, w, y, strict=True)), Fraction(0)) for ra in At]
    bread = inverse(AtWA)
    beta = [sum((b * v for b, v in zip(row, AtWy, strict=True)), Fraction(0)) for row in bread]
    return beta, bread


def exact_sandwich(X: np.ndarray, y: np.ndarray, w: np.ndarray, cov_type: str) -> tuple[Matrix, list[Fraction]]:
    """The HC covariance (intercept first) and the coefficients, exactly."""
    A = [[Fraction(1), *row] for row in exact(X)]
    yy, ww = exact(y)[0], exact(w)[0]
    beta, bread = least_squares(A, yy, ww)
    n, k = len(A), len(A[0])
    residuals = [yi - sum((a * b for a, b in zip(row, beta, strict=True)), Fraction(0)) for row, yi in zip(A, yy, strict=True)]
    meat = [[Fraction(0)] * k for _ in range(k)]
    for row, e, wi in zip(A, residuals, ww, strict=True):
        leverage = wi * sum((row[i] * bread[i][j] * row[j] for i in range(k) for j in range(k)), Fraction(0))
        omega = wi * wi * e * e
        omega *= {"HC0": Fraction(1), "HC1": Fraction(n, n - k), "HC2": 1 / (1 - leverage),
                  "HC3": 1 / (1 - leverage) ** 2}[cov_type]  # fmt: skip
        for i in range(k):
            for j in range(k):
                meat[i][j] += omega * row[i] * row[j]
    return matmul(matmul(bread, meat), bread), beta


def hard_data(seed: int, n: int = 24) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 3)) * [1e-3, 1.0, 1e3] + [10.0, -50.0, 3e6]
    y = X @ np.array([2e3, 0.5, 1e-3]) + rng.normal(size=n) * (1 + np.abs(X[:, 1]))
    return X, y, rng.uniform(0.5, 2.0, n)


def ours(X: np.ndarray, y: np.ndarray, w: np.ndarray, cov_type: str) -> dict[str, object]:
    design = Design(X, y[:, None], w, True)
    coef, intercept, rank = solve(design, False)
    return statistics.infer(design, coef=coef, intercept=intercept, positive=False, rank_deficient=False,
                            terms=["a", "b", "c"], rank=rank, level=0.95, cov_type=cov_type).statistics[0]  # fmt: skip


@pytest.mark.parametrize("cov_type", ["HC0", "HC1", "HC2", "HC3"])
@pytest.mark.parametrize("seed", [1, 2])
def test_robust_variances_and_wald_test_are_exact(cov_type: str, seed: int) -> None:
    X, y, w = hard_data(seed)
    V, beta = exact_sandwich(X, y, w, cov_type)
    found = ours(X, y, w, cov_type)
    errors = [row["std_error"] for row in found["coefficients"]]  # type: ignore[attr-defined,index]
    np.testing.assert_allclose(np.square(errors), [float(V[i][i]) for i in range(4)], rtol=RTOL)
    slopes = [row[1:] for row in V[1:]]
    b = beta[1:]
    solved = matmul(inverse(slopes), [[v] for v in b])
    wald = sum((bi * si[0] for bi, si in zip(b, solved, strict=True)), Fraction(0)) / 3
    assert found["f_statistic"] == pytest.approx(float(wald), rel=RTOL)


@pytest.mark.parametrize("weighted", [False, True])
def test_sequential_sums_of_squares_are_exact(weighted: bool) -> None:
    """Each term's sum of squares is the drop in the residual sum of squares when it is added."""
    X, y, w = hard_data(3)
    w = w if weighted else np.ones(len(y))
    yy, ww = exact(y)[0], exact(w)[0]
    rows = exact(X)

    def rss(columns: int) -> Fraction:
        A = [[Fraction(1), *row[:columns]] for row in rows]
        beta, _ = least_squares(A, yy, ww)
        fitted = [sum((a * b for a, b in zip(row, beta, strict=True)), Fraction(0)) for row in A]
        return sum((wi * (yi - fi) ** 2 for wi, yi, fi in zip(ww, yy, fitted, strict=True)), Fraction(0))

    expected = [float(rss(j) - rss(j + 1)) for j in range(3)] + [float(rss(3))]
    design = Design(X, y[:, None], w if weighted else None, True)
    coef, intercept, rank = solve(design, False)
    tables, _ = analyse_variance(design, coef, intercept, ("a", "b", "c"), full_rank=rank == 3, positive=False)
    np.testing.assert_allclose([row["sum_sq"] for row in tables[0]], expected, rtol=RTOL)  # type: ignore[misc]
