"""Heteroskedasticity-consistent (sandwich) covariance of a least-squares fit: HC0 to HC3.

Pure numerics, no HTTP. The covariance of the coefficients under ``cov_type`` HC0..HC3 (as
statsmodels' ``OLS/WLS.fit(cov_type=...)`` and R's ``sandwich::vcovHC(type=...)``) is

    V = (A'WA)^-1 A'W diag(omega) W A (A'WA)^-1,   omega_i = e_i^2 * adjust_i

with ``adjust`` 1 (HC0), ``n / (n - k)`` (HC1), ``1 / (1 - h_i)`` (HC2) or ``1 / (1 - h_i)^2``
(HC3), ``h_i`` the leverage of row i in the weighted design and ``n`` the rows of positive
weight (a row of weight 0 takes no part, as if it were absent).

It is computed from the QR factor the fit already has (``service.design``), never from
``X'X`` or its inverse: with ``C = QR`` the design in the factor's coordinates ``u``,
``Cov(u) = R^-1 S R^-T`` where ``S = Q' diag(omega) Q`` (the "meat", p x p, one pass over the
rows), so a linear function ``c' u`` has variance ``z' S z`` with ``z = R^-T c``. The rows of
``Q`` also give the leverages, ``h_i = |Q_i|^2``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy import linalg

from service.design import Design, Factor
from service.request import COV_TYPES

Floats = NDArray[np.float64]
#: A computed leverage this close to 1 is a leverage of 1 (the fit passes through the row
#: whatever its target): rounding leaves it a few units of ``sqrt(eps)`` away, and dividing
#: the row's (zero) residual by ``1 - h`` would give noise, not a variance.
LEVERAGE_ONE = 1.0 - 1e-8


@dataclass(frozen=True)
class Sandwich:
    """The HC covariance of the factor's coordinates ``u``, one meat ``S_k`` per target."""

    factor: Factor
    meats: Floats  # (k, p', p')

    def variances(self, vectors: Floats) -> Floats:
        """Return ``c' Cov(u) c`` for each column ``c`` of ``vectors`` (p', m), per target: (k, m)."""
        solved = self.factor.solved(vectors)
        return np.stack([np.einsum("im,im->m", solved, meat @ solved) for meat in self.meats])

    def coefficient_variances(self) -> Floats:
        """The variance of each coefficient (intercept first), per target: (k, p')."""
        return self.variances(self.factor.coefficient_vectors())

    def prediction_variances(self, points: Floats) -> Floats:
        """The variance of the prediction at each row of ``points``, per target: (m, k)."""
        columns = np.asarray(self.factor.columns(points).T, dtype=np.float64)
        return self.variances(columns).T

    def wald(self, u: Floats) -> Floats:
        """Return ``b' V^-1 b / q`` per target for the ``q`` slopes (all coefficients without intercept).

        The slopes are the coordinates ``u`` past the intercept's, up to a scale per slope,
        which does not change the statistic. A covariance that is not positive definite
        (every residual zero, say) gives infinity: the statistic does not exist.
        """
        first = int(self.factor.intercept_scale is not None)
        p = self.factor.r.shape[1]
        selector = np.eye(p)[:, first:]
        solved = self.factor.solved(selector)
        values = np.empty(len(self.meats))
        for target, meat in enumerate(self.meats):
            covariance = solved.T @ meat @ solved
            slopes = u[first:, target]
            try:
                cholesky = linalg.cho_factor(covariance, check_finite=True)
                values[target] = float(slopes @ linalg.cho_solve(cholesky, slopes)) / (p - first)
            except (linalg.LinAlgError, ValueError):
                values[target] = np.inf
        return values


def sandwich(design: Design, factor: Factor, coef: Floats, intercept: Floats, cov_type: str) -> Sandwich | None:
    """Build the HC covariance ``cov_type`` of a full-rank fit; None where it is undefined.

    Undefined: HC2 and HC3 at a row of leverage 1 (they divide by ``1 - h``).
    """
    if cov_type not in COV_TYPES[1:]:
        raise ValueError(f"cov_type must be one of {', '.join(COV_TYPES[1:])}. Got {cov_type!r} instead.")
    _, _, w = design.rows
    p = factor.r.shape[1]
    n = design.n_used
    meats = np.zeros((coef.shape[0], p, p))
    residuals = design.residual_blocks(coef, intercept)
    for (start, stop, q), (_, _, residual) in zip(design.orthonormal_blocks(factor), residuals, strict=True):
        whitened = np.asarray(residual, dtype=np.float64) * np.sqrt(w[start:stop])[:, None]
        if cov_type == "HC1":
            whitened *= np.sqrt(n / (n - p))
        elif cov_type in ("HC2", "HC3"):
            leverage = np.einsum("ij,ij->i", q, q)
            if np.any(leverage >= LEVERAGE_ONE):
                return None
            whitened /= ((1.0 - leverage) ** (0.5 if cov_type == "HC2" else 1.0))[:, None]
        for target in range(len(meats)):
            rows = q * whitened[:, target : target + 1]
            meats[target] += rows.T @ rows
    return Sandwich(factor, meats)
