"""R-style inference for one least-squares fit: ``summary.lm`` statistics and intervals.

Pure numerics, no HTTP. ``infer`` takes the training data and the coefficients the fit
already found and returns, per target, what R's ``summary(lm(...))`` prints (weighted least
squares when there are sample weights), plus confidence or prediction intervals for query
rows. With ``cov_type`` HC0..HC3 the covariance of the coefficients is the sandwich of
``service.robust``, and every statistic that rests on it follows (standard errors, t, p,
intervals, a Wald F-test of the slopes).

Accuracy comes from never forming ``X'X``: the inverse cross-product enters only through
the triangular factor of the design's QR decomposition, and residuals are computed in
extended precision, so an exact fit has a residual standard error of (about) zero. Both
come from ``service.design``, shared with the fit.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy import stats

from service.design import Design, condition_number, design_rank
from service.request import COV_TYPES
from service.robust import sandwich

Floats = NDArray[np.float64]
LongFloats = NDArray[np.longdouble]

_INFERENCE_KEYS = ("std_error", "t_value", "p_value", "ci_lower", "ci_upper")


class UndefinedInterval(ValueError):
    """An interval was asked for a fit where it cannot exist.

    That is: zero residual degrees of freedom, a rank-deficient design, or
    ``positive=True``. The message is a full sentence saying which; the caller answers
    422 naming ``interval``.
    """


@dataclass(frozen=True)
class Inference:
    """R-style inference for one fit."""

    statistics: list[dict[str, object]]
    """One ``summary.lm``-like dict per target, keys as in the answer's ``statistics``."""
    lower: Floats | None
    """Interval lower bounds, shape (m, k), or None when no interval was asked."""
    upper: Floats | None
    """Interval upper bounds, shape (m, k), or None when no interval was asked."""
    warnings: list[str]
    """Full sentences, e.g. why a statistic is null."""


def infer(
    design: Design,
    *,
    coef: Floats,
    intercept: Floats,
    positive: bool,
    rank_deficient: bool,
    terms: list[str],
    rank: int | None = None,
    level: float,
    X_test: Floats | None = None,
    interval: str = "none",
    cov_type: str = "nonrobust",
) -> Inference:
    """Compute R-style statistics per target, and intervals for ``X_test`` when asked.

    ``design`` holds the training data (n, p) and targets (n, k), and the factor the fit
    may already have computed; ``coef`` (k, p) and ``intercept`` (k,) are the final fit
    (zeros without intercept); ``terms`` names the p features. Rows of weight 0 do not
    count. ``level`` is the coverage of coefficient intervals and of ``interval``
    ("confidence" for the mean, "prediction" for a new observation of weight 1).
    ``cov_type`` is the covariance of the coefficients behind them ("nonrobust", "HC0"..
    "HC3"; see ``service.robust``).

    Statistics that do not exist are None, with a sentence in ``warnings``. Intervals
    that do not exist (zero residual degrees of freedom, rank deficiency, ``positive``)
    raise ``UndefinedInterval``, since interval bounds must be numbers.
    """
    if interval not in ("none", "confidence", "prediction"):
        raise ValueError(f"interval must be 'none', 'confidence' or 'prediction'. Got {interval!r} instead.")
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must be in (0, 1). Got {level!r} instead.")
    if interval != "none" and X_test is None:
        raise ValueError(f"interval {interval!r} needs X_test.")
    if cov_type not in COV_TYPES:
        raise ValueError(f"cov_type must be one of {', '.join(COV_TYPES)}. Got {cov_type!r} instead.")
    X, Y, weight, fit_intercept = design.X, design.Y, design.weight, design.fit_intercept
    if design.n_used == 0:
        raise ValueError("sample_weight must have at least one positive weight.")
    x, _, w = design.rows
    n, p = x.shape
    n_params = p + int(fit_intercept)
    deficient = rank_deficient or n < n_params
    factor = None if deficient or positive else design.factor
    # An exactly singular factor means the caller's rank missed a deficiency.
    deficient = deficient or (factor is not None and not np.all(np.diag(factor.r)))
    if rank is None or not deficient:
        rank = design_rank(X, weight, fit_intercept) if deficient else p
    df = max(n - rank - int(fit_intercept), 0)
    warnings: list[str] = []

    reasons = []
    if df == 0:
        reasons.append(
            f"there are no residual degrees of freedom ({n} rows of positive weight"
            f" for {n_params} parameters)"
        )
        warnings.append(f"residual_std_error and adj_r_squared are null because {reasons[-1]}.")
    if deficient:
        detail = f" (rank {rank} for {p} features)" if rank < p else ""
        reasons.append(f"the design is rank deficient{detail}")
    if positive:
        reasons.append("positive=true constrains the coefficients, so least-squares inference does not apply")
    why = " and ".join(reasons)
    if why:
        warnings.append(
            f"The F-test and every coefficient's {_join(_INFERENCE_KEYS)} are null because {why}."
        )
    if interval != "none" and why:
        raise UndefinedInterval(f"A {interval} interval cannot be computed because {why}.")

    sums = design.sums_of_squares(coef, intercept)
    factor = None if why else factor
    coef_factors = None if factor is None else factor.coefficient_factors()
    condition = condition_number(x, w, fit_intercept, factor)
    if condition is None:
        warnings.append("condition_number is null because the design has a zero singular value.")
    robust = robust_variances = walds = None
    if factor is not None and cov_type != "nonrobust":
        robust = sandwich(design, factor, coef, intercept, cov_type)
        if robust is None:
            undefined = (
                f"cov_type {cov_type!r} divides by 1 - leverage, and a training row has a leverage of 1 "
                "(the fit passes through it whatever its target, as through the only row of a category)"
            )
            fed = f"The F-test, every coefficient's {_join(_INFERENCE_KEYS)}"
            fed += " and the interval bounds" if interval != "none" else ""
            warnings.append(f"{fed} are null because {undefined}; 'HC0' and 'HC1' exist there.")
            factor = coef_factors = None
        else:
            robust_variances = robust.coefficient_variances()
            walds = robust.wald(np.asarray(factor.coordinates(coef, intercept), dtype=np.float64))

    names = ["(Intercept)", *terms] if fit_intercept else list(terms)
    statistics = []
    for target in range(Y.shape[1]):
        estimates = coef[target]
        if fit_intercept:
            estimates = np.concatenate([intercept[target : target + 1], estimates])
        variances = None if coef_factors is None else coef_factors * float(sums[0, target] / df)
        if robust_variances is not None:
            variances = robust_variances[target]
        wald = None if walds is None else walds[target]
        raw = _summary(sums[:, target], estimates, variances, wald, n, df, p, fit_intercept, level)
        raw["condition_number"] = condition
        raw["cov_type"] = cov_type
        clean, lost = _finite_statistics(raw, names, estimates)
        statistics.append(clean)
        if lost:
            subject = f"target {target}" if Y.shape[1] > 1 else "the target"
            warnings.append(
                f"{_join(lost)} of {subject} {'is' if len(lost) == 1 else 'are'} null"
                f" because {_cause(sums[:, target])}."
            )

    lower = upper = None
    if interval != "none" and X_test is not None and factor is not None:
        scale = np.asarray(sums[0] / df, dtype=np.float64)
        if robust is None:
            spread = factor.variance_factors(X_test)[:, None] * scale
        else:
            spread = robust.prediction_variances(X_test)
        if interval == "prediction":
            spread = spread + scale  # a new observation of weight 1
        lower, upper = _intervals(X_test, coef, intercept, spread, df, level)
    elif interval != "none" and X_test is not None:
        # the covariance does not exist (a leverage of 1): null bounds, as a warning says
        lower = upper = np.full((len(X_test), Y.shape[1]), np.nan)
    unique = list(dict.fromkeys(warnings))
    return Inference(statistics=statistics, lower=lower, upper=upper, warnings=unique)


def _summary(
    sums: LongFloats,
    estimates: Floats,
    variances: Floats | None,
    wald: float | None,
    n: int,
    df: int,
    p: int,
    fit_intercept: bool,
    level: float,
) -> dict[str, object]:
    """Return one target's statistics as numpy numbers, possibly not finite or None.

    ``variances`` are the coefficients' (None where they do not exist); ``wald`` the F
    statistic of a robust covariance (None: the classical one, from the sums of squares).
    """
    rss, tss, mss = sums
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        raw: dict[str, object] = {"r_squared": 1 - rss / tss, "df_residual": df}
        if df > 0:
            raw["adj_r_squared"] = 1 - rss / tss * (n - int(fit_intercept)) / df
            raw["residual_std_error"] = np.sqrt(rss / df)
        if variances is None:
            return raw
        f_value = (mss / p) / (rss / df) if wald is None else wald
        raw["f_statistic"] = f_value
        # no p-value for a statistic that does not exist (an exact fit's)
        raw["f_p_value"] = stats.f.sf(float(f_value), p, df) if np.isfinite(f_value) else np.nan
        errors = np.sqrt(variances)
        t_values = estimates / errors
        quantile = stats.t.isf((1 - level) / 2, df)
        raw["coefficients"] = {
            "std_error": errors,
            "t_value": t_values,
            "p_value": 2 * stats.t.sf(np.abs(t_values), df),
            "ci_lower": estimates - quantile * errors,
            "ci_upper": estimates + quantile * errors,
        }
    return raw


def _finite_statistics(
    raw: dict[str, object], names: list[str], estimates: Floats
) -> tuple[dict[str, object], list[str]]:
    """Return one target's JSON-ready statistics and the names of those not finite (now None)."""
    lost: list[str] = []

    def number(key: str, value: object) -> float | None:
        if value is None:
            return None
        result = float(value)  # type: ignore[arg-type]
        if np.isfinite(result):
            return result
        if key not in lost:
            lost.append(key)
        return None

    out: dict[str, object] = {}
    for key in ("r_squared", "adj_r_squared", "residual_std_error"):
        out[key] = number(key, raw.get(key))
    out["df_residual"] = raw["df_residual"]
    for key in ("f_statistic", "f_p_value", "condition_number"):
        out[key] = number(key, raw.get(key))
    out["cov_type"] = raw["cov_type"]
    per_term = raw.get("coefficients")
    coefficients = []
    for i, term in enumerate(names):
        entry: dict[str, object] = {"term": term, "estimate": float(estimates[i])}
        for key in _INFERENCE_KEYS:
            values = per_term.get(key) if isinstance(per_term, dict) else None
            entry[key] = None if values is None else number(key, values[i])
        coefficients.append(entry)
    out["coefficients"] = coefficients
    return out, lost


def _cause(sums: LongFloats) -> str:
    """Return why statistics of a target with these (RSS, TSS, MSS) are not finite."""
    causes = []
    if sums[0] == 0:
        causes.append("the fit is exact (the residual sum of squares is zero)")
    if sums[1] == 0:
        causes.append("the total sum of squares is zero")
    return " and ".join(causes) if causes else "the computation overflows"


def _join(words: tuple[str, ...] | list[str]) -> str:
    """Return ``a, b and c``."""
    return words[0] if len(words) == 1 else f"{', '.join(words[:-1])} and {words[-1]}"


def _intervals(
    X_test: Floats, coef: Floats, intercept: Floats, spread: Floats, df: int, level: float
) -> tuple[Floats, Floats]:
    """Return lower and upper bounds (m, k) around the predictions of ``X_test``, of variances ``spread``."""
    predictions = X_test @ coef.T + intercept
    with np.errstate(over="ignore", invalid="ignore"):
        half = stats.t.isf((1 - level) / 2, df) * np.sqrt(spread)
        lower, upper = predictions - half, predictions + half
    if not (np.all(np.isfinite(lower)) and np.all(np.isfinite(upper))):
        raise UndefinedInterval("The interval bounds overflow (they are not finite numbers).")
    return np.asarray(lower, dtype=np.float64), np.asarray(upper, dtype=np.float64)
