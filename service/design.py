"""The training design of one fit: exact column scaling, one QR factor, extended-precision residuals.

Fitting and statistics share one ``Design`` per request, so a request that refines an
ill-conditioned fit and asks for statistics factors its design once.

- **Scaling.** Columns are divided by a power of two near their largest magnitude (exact:
  only exponents change), so that rank cutoffs and the QR see columns of like size.
- **Factor.** ``Design.factor`` is the R of a QR of the weighted design in shifted and scaled
  columns ``C = [1 / s0, (x_j - offset_j) / s_j]`` (the offset the weighted mean when an
  intercept is fitted, so the intercept column is nearly orthogonal to the rest). ``X'X`` is
  never formed: a linear function ``c`` of the coefficients has variance ``sigma^2 |R^-T c|^2``.
- **Residuals** are computed in extended precision (``np.longdouble``), a block of rows at a
  time: the refinement of a fit and the residual sum of squares of an exact fit need digits
  that float64 arithmetic on the residual loses.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from functools import cached_property

import numpy as np
from numpy.typing import NDArray
from scipy import linalg

Floats = NDArray[np.float64]
LongFloats = NDArray[np.longdouble]

EXTENDED = np.longdouble
CHUNK_ROWS = 32_768


def power_of_two(magnitudes: Floats) -> Floats:
    """Return the power of two in [m, 2m) for each magnitude m, and 1 for 0."""
    _, exponents = np.frexp(magnitudes)
    return np.where(magnitudes > 0, np.ldexp(1.0, exponents), 1.0)


def column_scale(X: Floats) -> Floats:
    """A power of two just above each column's largest magnitude (1 for an all-zero column).

    The largest magnitude, not the norm: a norm can overflow where the values do not.
    """
    return power_of_two(np.maximum(X.max(axis=0), -X.min(axis=0)))


@dataclass(frozen=True)
class Factor:
    """The R of a QR of the weighted design in shifted and power-of-two scaled columns.

    Column 0 is the intercept (when fitted) scaled by ``1 / intercept_scale``; column j of
    the features is ``(x_j - offset_j) / scale_j``. Coordinates ``u`` in these columns map
    to coefficients by ``coef = u[1:] / scale`` and ``intercept = u[0] / intercept_scale -
    offset . coef``.
    """

    r: Floats
    offset: Floats
    scale: Floats
    intercept_scale: float | None

    def variance_factors(self, points: Floats) -> Floats:
        """Return ``v' (A'WA)^-1 v`` for each row of ``points`` (the prediction at it)."""
        return self.squared_norms(np.asarray(self.columns(points).T, dtype=np.float64))

    def coefficient_factors(self) -> Floats:
        """Return the diagonal of ``(A'WA)^-1`` in the original coefficients, intercept first."""
        p = len(self.scale)
        slopes = np.diag(1.0 / self.scale)
        if self.intercept_scale is None:
            return self.squared_norms(slopes)
        # The intercept is the prediction at x = 0.
        intercept = self.variance_factors(np.zeros((1, p)))
        slopes = np.vstack([np.zeros((1, p)), slopes])
        return np.concatenate([intercept, self.squared_norms(slopes)])

    def columns(self, points: NDArray[np.floating]) -> NDArray[np.floating]:
        """The rows ``points`` in the factor's columns (in their own precision)."""
        columns = (points - self.offset.astype(points.dtype)) / self.scale.astype(points.dtype)
        if self.intercept_scale is not None:
            ones = np.full((len(points), 1), 1.0 / self.intercept_scale, dtype=points.dtype)
            columns = np.hstack([ones, columns])
        return columns

    def squared_norms(self, columns: Floats) -> Floats:
        """Return ``|R^-T c|^2`` for each column ``c``."""
        solved = linalg.solve_triangular(self.r, columns, trans="T", lower=False)
        return np.asarray(np.sum(solved * solved, axis=0), dtype=np.float64)

    def coordinates(self, coef: Floats, intercept: Floats) -> LongFloats:
        """The coefficients (k, p) and intercepts (k,) as coordinates ``u`` (p or p + 1, k), extended."""
        slopes = coef.T.astype(EXTENDED) * self.scale[:, None]
        if self.intercept_scale is None:
            return slopes
        level = intercept.astype(EXTENDED) + self.offset.astype(EXTENDED) @ coef.T.astype(EXTENDED)
        return np.vstack([level * self.intercept_scale, slopes])

    def coefficients(self, u: LongFloats) -> tuple[Floats, Floats | None]:
        """Coordinates back to coefficients (k, p), and intercepts (k,) when fitted."""
        first = int(self.intercept_scale is not None)
        coef = u[first:] / self.scale[:, None]
        if self.intercept_scale is None:
            return coef.T.astype(np.float64), None
        intercept = u[0] / self.intercept_scale - self.offset.astype(EXTENDED) @ coef
        return coef.T.astype(np.float64), intercept.astype(np.float64)


class Design:
    """The training data of one fit: features (n, p), targets (n, k), weights, intercept or not.

    Rows of weight 0 take no part in the factor or the sums (as in R).
    """

    def __init__(self, X: Floats, Y: Floats, weights: Floats | None, fit_intercept: bool) -> None:
        self.X, self.Y, self.weights, self.fit_intercept = X, Y, weights, fit_intercept
        self.weight = np.ones(len(X)) if weights is None else np.asarray(weights, dtype=np.float64)
        kept = self.weight > 0
        self.all_kept = bool(kept.all())
        self.kept = kept

    @cached_property
    def rows(self) -> tuple[Floats, Floats, Floats]:
        """Features, targets and weights of the rows of positive weight."""
        if self.all_kept:
            return self.X, self.Y, self.weight
        return self.X[self.kept], self.Y[self.kept], self.weight[self.kept]

    @property
    def n_used(self) -> int:
        """Rows of positive weight."""
        return int(np.count_nonzero(self.kept))

    @cached_property
    def factor(self) -> Factor | None:
        """The QR factor of the design (None when there are fewer rows than parameters)."""
        x, _, w = self.rows
        n, p = x.shape
        if n < p + int(self.fit_intercept):
            return None
        unweighted = self.weights is None or bool(np.all(w == 1.0))
        root = None if unweighted else np.sqrt(w)[:, None]
        # Any offset near the mean does: the intercept column absorbs what centring misses.
        if not self.fit_intercept:
            offset = np.zeros(p)
        else:
            offset = x.mean(axis=0) if unweighted else np.average(x, axis=0, weights=w)
        first = int(self.fit_intercept)
        columns = np.empty((n, p + first))
        features = columns[:, first:]
        np.subtract(x, offset, out=features)
        if root is not None:
            features *= root
        scale = column_scale(features)
        features /= scale
        intercept_scale = None
        if self.fit_intercept:
            ones = np.ones((n, 1)) if root is None else root
            intercept_scale = float(power_of_two(ones.max(axis=0))[0])
            columns[:, :1] = ones / intercept_scale
        r = linalg.qr(columns, mode="r", overwrite_a=True, check_finite=False)[0][: p + first]
        return Factor(r=np.asarray(r), offset=offset, scale=scale, intercept_scale=intercept_scale)

    def residual_blocks(self, coef: Floats, intercept: Floats) -> Iterator[tuple[int, int, LongFloats]]:
        """Yield ``(start, stop, residuals)`` of the rows of positive weight, in extended precision."""
        x, y, _ = self.rows
        coef_t = coef.T.astype(EXTENDED)
        level = intercept.astype(EXTENDED)
        for start in range(0, len(x), CHUNK_ROWS):
            stop = start + CHUNK_ROWS
            block = x[start:stop].astype(EXTENDED)
            yield start, stop, y[start:stop] - block @ coef_t - level

    def sums_of_squares(self, coef: Floats, intercept: Floats) -> LongFloats:
        """Return rows (RSS, TSS, MSS) per target, weighted.

        TSS and MSS are centred (weighted) with an intercept and uncentred without, as R's.
        The residuals are extended precision, so that an exact fit has an RSS of (nearly)
        zero; TSS and MSS need no more than float64.
        """
        x, y, w = self.rows
        rss = np.zeros(y.shape[1], dtype=EXTENDED)
        for start, stop, residual in self.residual_blocks(coef, intercept):
            rss += np.einsum("i,ij,ij->j", w[start:stop].astype(EXTENDED), residual, residual)
        fitted = x @ coef.T + intercept
        if self.fit_intercept:
            total_sum = np.sum(w)
            total = y - (w @ y) / total_sum
            model = fitted - (w @ fitted) / total_sum
        else:
            total, model = y, fitted
        tss = np.einsum("i,ij,ij->j", w, total, total)
        mss = np.einsum("i,ij,ij->j", w, model, model)
        return np.stack([rss, tss.astype(EXTENDED), mss.astype(EXTENDED)])

    def gradient(self, factor: Factor, u: LongFloats) -> LongFloats:
        """``C' W (y - C u)`` in the factor's columns, in extended precision."""
        x, y, w = self.rows
        gradient = np.zeros(u.shape, dtype=EXTENDED)
        for start in range(0, len(x), CHUNK_ROWS):
            stop = start + CHUNK_ROWS
            columns = factor.columns(x[start:stop].astype(EXTENDED))
            residual = y[start:stop] - columns @ u
            if self.weights is not None:
                residual *= w[start:stop, None]
            gradient += columns.T @ residual
        return gradient
