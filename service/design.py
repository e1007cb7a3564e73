"""The training design of one fit: exact column scaling, one QR factor, extended-precision residuals.

Fitting and statistics share one ``Design`` per request, so a request that refines an
ill-conditioned fit and asks for statistics factors its design once.

- **Scaling.** Columns are divided by a power of two near their largest magnitude (exact:
  only exponents change), so that rank cutoffs and the QR see columns of like size.
- **Factor.** ``Design.factor`` is the R of a QR of the weighted design in shifted and scaled
  columns ``C = [1 / s0, (x_j - offset_j) / s_j]`` (the offset the weighted mean when an
  intercept is fitted, so the intercept column is nearly orthogonal to the rest). ``X'X`` is
  never formed: a linear function ``c`` of the coefficients has variance ``sigma^2 |R^-T c|^2``.
- **Rank and condition.** ``design_rank`` is the rank the fit reports and ``condition_number``
  statsmodels' condition number, both of the design as statistics describe it.
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
        return self.squared_norms(self.coefficient_vectors())

    def coefficient_vectors(self) -> Floats:
        """The coefficients (intercept first) as linear functions of ``u``: column j gives coefficient j."""
        p = len(self.scale)
        slopes = np.diag(1.0 / self.scale)
        if self.intercept_scale is None:
            return slopes
        # The intercept is the prediction at x = 0.
        intercept = self.columns(np.zeros((1, p))).T
        return np.hstack([intercept, np.vstack([np.zeros((1, p)), slopes])])

    def columns(self, points: NDArray[np.floating]) -> NDArray[np.floating]:
        """The rows ``points`` in the factor's columns (in their own precision)."""
        columns = (points - self.offset.astype(points.dtype)) / self.scale.astype(points.dtype)
        if self.intercept_scale is not None:
            ones = np.full((len(points), 1), 1.0 / self.intercept_scale, dtype=points.dtype)
            columns = np.hstack([ones, columns])
        return columns

    def squared_norms(self, columns: Floats) -> Floats:
        """Return ``|R^-T c|^2`` for each column ``c``."""
        solved = self.solved(columns)
        return np.asarray(np.sum(solved * solved, axis=0), dtype=np.float64)

    def solved(self, columns: Floats) -> Floats:
        """Return ``R^-T c`` for each column ``c``: ``c' u`` has variance ``z' Q' Cov(y) Q z``."""
        return np.asarray(linalg.solve_triangular(self.r, columns, trans="T", lower=False), dtype=np.float64)

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
        x, _, _ = self.rows
        if len(x) < x.shape[1] + int(self.fit_intercept):
            return None
        return self.wide_factor

    @cached_property
    def wide_factor(self) -> Factor:
        """The QR factor of the design; with fewer rows than parameters, its ``r`` is a trapezoid."""
        x, _, w = self.rows
        n, p = x.shape
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

    def orthonormal_blocks(self, factor: Factor) -> Iterator[tuple[int, int, Floats]]:
        """Yield ``(start, stop, Q)`` of the rows of positive weight: ``Q = W^1/2 C R^-1``, a block at a time.

        The rows of ``Q`` are those of the design's orthonormal factor: a row's leverage is
        ``|Q_i|^2``, and ``Q' diag(omega) Q`` is the meat of a sandwich covariance.
        """
        x, _, w = self.rows
        root = np.sqrt(w)
        for start in range(0, len(x), CHUNK_ROWS):
            stop = start + CHUNK_ROWS
            columns = factor.columns(x[start:stop]) * root[start:stop, None]
            yield start, stop, factor.solved(np.asarray(columns.T, dtype=np.float64)).T

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


def design_rank(X: Floats, weight: Floats, fit_intercept: bool) -> int:
    """Return the rank the fit reports: LinearRegression's ``rank_`` as ``fitting`` runs it.

    That is, of the weighted (centred when fitted) design with columns scaled by a power
    of two near their largest magnitude, singular values above ``eps * max(n, p)`` times
    the largest.
    """
    scaled = X / column_scale(X)
    if fit_intercept:
        scaled = scaled - np.average(scaled, axis=0, weights=weight)
    singular = np.linalg.svd(scaled * np.sqrt(weight)[:, None], compute_uv=False)
    if singular.size == 0 or singular[0] == 0:
        return 0
    cutoff = np.finfo(np.float64).eps * max(X.shape) * singular[0]
    return int(np.sum(singular > cutoff))


def condition_number(x: Floats, w: Floats, fit_intercept: bool, factor: Factor | None) -> float | None:
    """Return statsmodels' ``condition_number``: largest over smallest singular value.

    Of the raw weighted design ``A = [1, x] * sqrt(w)``. With a factor ``C = QR`` of the
    shifted and scaled design, ``A = C T`` for a small triangular ``T``, so ``A`` has the
    singular values of ``R T``: no second pass over the rows.
    """
    if factor is not None:
        scale = np.diag(factor.scale)
        if factor.intercept_scale is None:
            transform = scale
        else:
            top = factor.intercept_scale * np.concatenate([[1.0], factor.offset])
            transform = np.vstack([top, np.hstack([np.zeros((len(factor.scale), 1)), scale])])
        singular = np.linalg.svd(factor.r @ transform, compute_uv=False)
    else:
        design = np.hstack([np.ones((len(x), 1)), x]) if fit_intercept else x
        singular = np.linalg.svd(design * np.sqrt(w)[:, None], compute_uv=False)
    columns = x.shape[1] + int(fit_intercept)
    smallest = singular.min() if len(singular) == columns else 0.0
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        ratio = float(singular.max() / smallest) if smallest > 0 else np.inf
    return ratio if np.isfinite(ratio) else None
