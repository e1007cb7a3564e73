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
from service.anova import analyse_variance
from service.design import Design, column_scale
from service.errors import InvalidInput
from service.request import FitRequest, FitResult, Intervals

REFINEMENT_STEPS = 3
#: Below this condition number (of the scaled, centred design) LAPACK's float64 answer
#: is already within a few units in the last place, and refining would only cost time.
REFINE_ABOVE_CONDITION = 100.0


def fit(request: FitRequest) -> FitResult:
    """Fit (or take the model), predict ``X_test``, and add statistics when asked."""
    if request.model is not None:
        model = request.model
        return FitResult(
            coef=model.coef,
            intercept=model.intercept,
            predictions=aligned(predict(request.X_test, model.coef, model.intercept), request.test_rows),
            feature_names=model.feature_names,
            target_names=model.target_names,
            single_target=model.single_target,
            n_samples=None,
            rank=None,
            warnings=list(request.warnings),
            formula=request.formula,
            design=request.design,
        )
    X, Y, weights = request.X_train, request.y_train, request.sample_weight
    assert X is not None and Y is not None
    options = request.options
    design = Design(X, Y, weights, options.fit_intercept)
    coef, intercept, rank = solve(design, options.positive)
    warnings = [*request.warnings, *notes(design, rank, options.positive)]
    predictions = predict(request.X_test, coef, intercept)
    inference = None
    intervals = None
    terms = list(request.feature_names or (f"x{j}" for j in range(X.shape[1])))
    if options.statistics or options.interval != "none":
        try:
            with np.errstate(all="ignore"):  # every statistic is checked for finiteness after
                inference = statistics.infer(
                    design,
                    coef=coef, intercept=intercept, positive=options.positive,
                    rank_deficient=rank is not None and rank < X.shape[1],
                    terms=terms, rank=rank, level=options.level,
                    X_test=request.X_test, interval=options.interval, cov_type=options.cov_type,
                )  # fmt: skip
        except statistics.UndefinedInterval as exc:
            raise InvalidInput(str(exc), "interval") from None
        warnings.extend(w for w in inference.warnings if w not in warnings)
        if inference.lower is not None and inference.upper is not None:
            lower, upper = aligned(inference.lower, request.test_rows), aligned(inference.upper, request.test_rows)
            assert lower is not None and upper is not None
            intervals = Intervals(lower, upper, options.level, options.interval)
    anova = None
    if options.anova:
        with np.errstate(all="ignore"):  # every value is checked for finiteness
            anova, remarks = analyse_variance(
                design, coef, intercept, request.column_terms or tuple(terms),
                full_rank=rank == X.shape[1], positive=options.positive,
            )  # fmt: skip
        warnings.extend(w for w in remarks if w not in warnings)
    return FitResult(
        coef=coef,
        intercept=intercept,
        predictions=aligned(predictions, request.test_rows),
        feature_names=request.feature_names,
        target_names=request.target_names,
        single_target=request.single_target,
        n_samples=int(X.shape[0]),
        rank=rank,
        warnings=warnings,
        statistics=inference.statistics if inference is not None else None,
        intervals=intervals,
        formula=request.formula,
        design=request.design,
        n_dropped=request.n_dropped,
        anova=anova,
    )


def aligned(values: np.ndarray | None, rows: np.ndarray | None) -> np.ndarray | None:
    """Values of the complete test rows placed at their rows of the test table, NaN (null) elsewhere.

    R's ``na.exclude``: a test row with a missing value gets no prediction, and the answer stays
    aligned with the test table.
    """
    if values is None or rows is None or rows.all():
        return values
    full = np.full((len(rows), values.shape[1]), np.nan)
    full[rows] = values
    return full


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


def solve(design: Design, positive: bool) -> tuple[np.ndarray, np.ndarray, int | None]:
    """Fit a fresh ``LinearRegression``; return ``coef`` (k, p), ``intercept`` (k,) and ``rank``."""
    X, Y = design.X, design.Y
    n, p = X.shape
    scale = column_scale(X)
    with np.errstate(all="ignore"), sklearn.config_context(assume_finite=True, skip_parameter_validation=True):
        # copy_X=False: the scaled copy is made for sklearn, which may centre (and weight) it
        # in place; copying it again would cost memory, and a np.may_share_memory check that
        # releases the GIL, handing it to another thread in the middle of every fit.
        estimator = LinearRegression(
            fit_intercept=design.fit_intercept,
            positive=positive,
            tol=np.finfo(np.float64).eps * max(n, p),
            copy_X=False,
        )
        estimator.fit(X / scale, Y, sample_weight=design.weights)
        coef = np.asarray(estimator.coef_, dtype=np.float64).reshape(Y.shape[1], p) / scale
        # Without an intercept, sklearn gives a single 0.0 whatever the number of targets.
        intercept = np.broadcast_to(np.asarray(estimator.intercept_, dtype=np.float64), (Y.shape[1],)).copy()
        rank = None if positive else int(estimator.rank_)
        if rank == p and np.isfinite(coef).all() and condition(estimator.singular_) > REFINE_ABOVE_CONDITION:
            coef, intercept = refine(design, coef, intercept)
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


def refine(design: Design, coef: np.ndarray, intercept: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Refine a full-rank least-squares solution with extended-precision residuals.

    In the coordinates ``u`` of the design's factor (``service.design``), each step computes
    the gradient ``C' W (y - C u)`` in extended precision and solves ``R'R du = gradient``.
    The result is kept only where it brought the fit closer to the solution, so a step can
    never make a fit worse.
    """
    factor = design.factor
    if factor is None or not np.all(np.abs(np.diag(factor.r)) > 0):
        return coef, intercept
    u = factor.coordinates(coef, intercept)
    best, best_norm = u, np.inf
    for _ in range(REFINEMENT_STEPS + 1):
        gradient = design.gradient(factor, u).astype(np.float64)
        # |R^-T g|: how far the fit is from the least-squares solution, in a measure that the
        # columns' scaling does not change (the gradient's own size does).
        half = scipy.linalg.solve_triangular(factor.r, gradient, trans="T", check_finite=False)
        norm = float(np.abs(half).max())
        if norm >= best_norm:
            break
        best, best_norm = u, norm
        if norm == 0:
            break
        u = u + scipy.linalg.solve_triangular(factor.r, half, check_finite=False)
    refined, level = factor.coefficients(best)
    return refined, intercept if level is None else level


def notes(design: Design, rank: int | None, positive: bool) -> list[str]:
    """Warnings about the fit itself (rank deficiency, no residual degrees of freedom)."""
    p = design.X.shape[1]
    fit_intercept = design.fit_intercept
    warnings = []
    if rank is not None and rank < p:
        warnings.append(
            f"The training features are rank deficient (rank {rank} of {p} features"
            f"{', after centring' if fit_intercept else ''}): some coefficients cannot be told apart, "
            "and LinearRegression gives the minimum-norm solution."
        )
    used = design.n_used
    if used <= p + int(fit_intercept):
        warnings.append(
            f"There are no residual degrees of freedom ({used} training rows with nonzero weight for "
            f"{p + int(fit_intercept)} coefficients): the fit passes through every point, and no "
            "statistic on residuals exists."
        )
    return warnings
