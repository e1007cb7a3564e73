"""Fit a fresh ``LinearRegression`` to a ``FitRequest`` and predict: no HTTP, no JSON.

Accuracy: scikit-learn solves with LAPACK's least squares in float64. Here the columns
are first scaled by powers of two (exact), the rank cutoff is set near machine precision
instead of the default ``tol`` (which drops real signal on ill-conditioned designs), and
the solution is then refined: residuals and gradients are computed in extended precision
and corrections solved with the R factor of a QR of the design. This brings the NIST
StRD problems to the digits the data allow, while an exactly collinear column still
shows as a rank deficiency.
"""

from __future__ import annotations

import numpy as np
import scipy.linalg
import sklearn
from sklearn.linear_model import LinearRegression

from service import statistics
from service.errors import InvalidInput
from service.request import FitRequest, FitResult, Intervals

EXTENDED = np.longdouble
REFINEMENT_STEPS = 3
#: Below this condition number (of the scaled, centred design) LAPACK's float64 answer
#: is already within a few units in the last place, and refining would only cost time.
REFINE_ABOVE_CONDITION = 100.0
CHUNK_ROWS = 32_768


def fit(request: FitRequest) -> FitResult:
    """Fit (or take the model), predict ``X_test``, and add statistics when asked."""
    if request.model is not None:
        model = request.model
        return FitResult(
            coef=model.coef,
            intercept=model.intercept,
            predictions=predict(request.X_test, model.coef, model.intercept),
            feature_names=model.feature_names,
            target_names=model.target_names,
            single_target=model.single_target,
            n_samples=None,
            rank=None,
        )
    X, Y, weights = request.X_train, request.y_train, request.sample_weight
    assert X is not None and Y is not None
    options = request.options
    coef, intercept, rank = solve(X, Y, weights, options.fit_intercept, options.positive)
    warnings = notes(X, weights, rank, options.fit_intercept, options.positive)
    predictions = predict(request.X_test, coef, intercept)
    inference = None
    intervals = None
    if options.statistics or options.interval != "none":
        terms = list(request.feature_names or (f"x{j}" for j in range(X.shape[1])))
        try:
            with np.errstate(all="ignore"):  # every statistic is checked for finiteness after
                inference = statistics.infer(
                    X, Y, weights,
                    coef=coef, intercept=intercept,
                    fit_intercept=options.fit_intercept, positive=options.positive,
                    rank_deficient=rank is not None and rank < X.shape[1],
                    terms=terms, rank=rank, level=options.level,
                    X_test=request.X_test, interval=options.interval,
                )  # fmt: skip
        except statistics.UndefinedInterval as exc:
            raise InvalidInput(str(exc), "interval") from None
        warnings.extend(w for w in inference.warnings if w not in warnings)
        if inference.lower is not None and inference.upper is not None:
            intervals = Intervals(inference.lower, inference.upper, options.level, options.interval)
    return FitResult(
        coef=coef,
        intercept=intercept,
        predictions=predictions,
        feature_names=request.feature_names,
        target_names=request.target_names,
        single_target=request.single_target,
        n_samples=int(X.shape[0]),
        rank=rank,
        warnings=warnings,
        statistics=inference.statistics if inference is not None else None,
        intervals=intervals,
    )


def predict(X_test: np.ndarray | None, coef: np.ndarray, intercept: np.ndarray) -> np.ndarray | None:
    """Predict every query row, as ``LinearRegression.predict`` does; refuse overflow."""
    if X_test is None:
        return None
    with np.errstate(all="ignore"):
        predictions: np.ndarray = X_test @ coef.T + intercept
    if not np.isfinite(predictions).all():
        raise InvalidInput(
            "A prediction overflowed the range of a float64; rescale 'X_test' or the model.", "X_test"
        )
    return predictions


def solve(
    X: np.ndarray, Y: np.ndarray, weights: np.ndarray | None, fit_intercept: bool, positive: bool
) -> tuple[np.ndarray, np.ndarray, int | None]:
    """Fit a fresh ``LinearRegression``; return ``coef`` (k, p), ``intercept`` (k,) and ``rank``."""
    n, p = X.shape
    scale = column_scale(X)
    with np.errstate(all="ignore"), sklearn.config_context(assume_finite=True, skip_parameter_validation=True):
        # copy_X=False: the scaled copy is made for sklearn, which may centre (and weight) it
        # in place; copying it again would cost memory, and a np.may_share_memory check that
        # releases the GIL, handing it to another thread in the middle of every fit.
        estimator = LinearRegression(
            fit_intercept=fit_intercept,
            positive=positive,
            tol=np.finfo(np.float64).eps * max(n, p),
            copy_X=False,
        )
        estimator.fit(X / scale, Y, sample_weight=weights)
        coef = np.asarray(estimator.coef_, dtype=np.float64).reshape(Y.shape[1], p)
        # Without an intercept, sklearn gives a single 0.0 whatever the number of targets.
        intercept = np.broadcast_to(np.asarray(estimator.intercept_, dtype=np.float64), (Y.shape[1],)).copy()
        rank = None if positive else int(estimator.rank_)
        if rank == p and np.isfinite(coef).all() and condition(estimator.singular_) > REFINE_ABOVE_CONDITION:
            coef, intercept = refine(X / scale, Y, weights, fit_intercept, coef, intercept)
        coef = coef / scale
    if not (np.isfinite(coef).all() and np.isfinite(intercept).all()):
        raise InvalidInput(
            "The fit overflowed the range of a float64; rescale 'X_train' or 'y_train' "
            "(their values, or their sums of squares, are too large).",
            "X_train",
        )
    return coef, intercept, rank


def condition(singular_values: np.ndarray) -> float:
    """Ratio of the largest to the smallest singular value (infinite when one is 0)."""
    smallest = float(singular_values.min())
    return float(singular_values.max()) / smallest if smallest > 0 else np.inf


def column_scale(X: np.ndarray) -> np.ndarray:
    """A power of two near each column's largest magnitude (1 for an all-zero column)."""
    largest = np.maximum(X.max(axis=0), -X.min(axis=0))
    _, exponent = np.frexp(largest)
    scale: np.ndarray = np.ldexp(1.0, np.where(largest > 0, exponent, 1) - 1)
    return scale


def refine(
    Xs: np.ndarray,
    Y: np.ndarray,
    weights: np.ndarray | None,
    fit_intercept: bool,
    coef: np.ndarray,
    intercept: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Refine a full-rank least-squares solution with extended-precision residuals.

    Unknowns ``z = (a, c)`` for the design ``D = [1, Xs - mu]`` (``mu`` the weighted
    column means, so the intercept column is orthogonal to the rest): each step computes
    the gradient ``D' W (y - D z)`` in extended precision and solves ``R'R dz = gradient``
    with ``R`` from a QR of ``W^1/2 D``. The result is kept only where it lowered the
    gradient, so a step can never make a fit worse.
    """
    n, p = Xs.shape
    root = None if weights is None else np.sqrt(weights)
    mu = np.average(Xs, axis=0, weights=weights) if fit_intercept else np.zeros(p)
    design = Xs - mu
    if fit_intercept:
        design = np.column_stack([np.ones(n), design])
    if root is not None:
        design *= root[:, None]
    if design.shape[0] < design.shape[1]:
        return coef, intercept
    R = scipy.linalg.qr(design, mode="r", overwrite_a=True, check_finite=False)[0][: design.shape[1]]
    del design
    if not np.all(np.abs(np.diag(R)) > 0):
        return coef, intercept
    z = coef.T.astype(EXTENDED)
    if fit_intercept:
        z = np.vstack([(intercept + mu @ coef.T).astype(EXTENDED), z])
    best, best_norm = z, np.inf
    for _ in range(REFINEMENT_STEPS + 1):
        gradient = extended_gradient(Xs, Y, weights, mu, fit_intercept, z)
        norm = float(np.abs(gradient).max())
        if norm >= best_norm:
            break
        best, best_norm = z, norm
        if norm == 0:
            break
        step = scipy.linalg.cho_solve((R, False), gradient.astype(np.float64), check_finite=False)
        z = z + step
    if fit_intercept:
        c = best[1:]
        return c.T.astype(np.float64), (best[0] - mu.astype(EXTENDED) @ c).astype(np.float64)
    return best.T.astype(np.float64), intercept


def extended_gradient(
    Xs: np.ndarray,
    Y: np.ndarray,
    weights: np.ndarray | None,
    mu: np.ndarray,
    fit_intercept: bool,
    z: np.ndarray,
) -> np.ndarray:
    """``D' W (y - D z)`` in extended precision, a block of rows at a time."""
    n = Xs.shape[0]
    mu_ext = mu.astype(EXTENDED)
    gradient = np.zeros(z.shape, dtype=EXTENDED)
    for start in range(0, n, CHUNK_ROWS):
        block = Xs[start : start + CHUNK_ROWS].astype(EXTENDED) - mu_ext
        if fit_intercept:
            residual = Y[start : start + CHUNK_ROWS] - z[0] - block @ z[1:]
        else:
            residual = Y[start : start + CHUNK_ROWS] - block @ z
        if weights is not None:
            residual *= weights[start : start + CHUNK_ROWS, None]
        if fit_intercept:
            gradient[0] += residual.sum(axis=0)
            gradient[1:] += block.T @ residual
        else:
            gradient += block.T @ residual
    return gradient


def notes(
    X: np.ndarray, weights: np.ndarray | None, rank: int | None, fit_intercept: bool, positive: bool
) -> list[str]:
    """Warnings about the fit itself (rank deficiency, no residual degrees of freedom)."""
    n, p = X.shape
    warnings = []
    if rank is not None and rank < p:
        warnings.append(
            f"The training features are rank deficient (rank {rank} of {p} features"
            f"{', after centring' if fit_intercept else ''}): some coefficients cannot be told apart, "
            "and LinearRegression gives the minimum-norm solution."
        )
    used = n if weights is None else int(np.count_nonzero(weights))
    if used <= p + int(fit_intercept):
        warnings.append(
            f"There are no residual degrees of freedom ({used} training rows with nonzero weight for "
            f"{p + int(fit_intercept)} coefficients): the fit passes through every point, and no "
            "statistic on residuals exists."
        )
    return warnings
