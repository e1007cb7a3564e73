"""R-style inference for one least-squares fit: ``summary.lm`` statistics and intervals.

Pure numerics, no HTTP. ``infer`` takes the training data and the coefficients the fit
already found and returns, per target, what R's ``summary(lm(...))`` prints (weighted least
squares when there are sample weights), plus confidence or prediction intervals for query
rows.

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

from service.design import Design, Factor, column_scale

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
) -> Inference:
    """Compute R-style statistics per target, and intervals for ``X_test`` when asked.

    ``design`` holds the training data (n, p) and targets (n, k), and the factor the fit
    may already have computed; ``coef`` (k, p) and ``intercept`` (k,) are the final fit
    (zeros without intercept); ``terms`` names the p features. Rows of weight 0 do not
    count. ``level`` is the coverage of coefficient intervals and of ``interval``
    ("confidence" for the mean, "prediction" for a new observation of weight 1).

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
        rank = _rank(X, weight, fit_intercept) if deficient else p
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
    condition = _condition_number(x, w, fit_intercept, factor)
    if condition is None:
        warnings.append("condition_number is null because the design has a zero singular value.")

    names = ["(Intercept)", *terms] if fit_intercept else list(terms)
    statistics = []
    for target in range(Y.shape[1]):
        estimates = coef[target]
        if fit_intercept:
            estimates = np.concatenate([intercept[target : target + 1], estimates])
        raw = _summary(sums[:, target], estimates, coef_factors, n, df, p, fit_intercept, level)
        raw["condition_number"] = condition
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
        sigma = np.asarray(np.sqrt(sums[0] / df), dtype=np.float64)
        lower, upper = _intervals(factor, X_test, coef, intercept, sigma, df, level, interval == "prediction")
    unique = list(dict.fromkeys(warnings))
    return Inference(statistics=statistics, lower=lower, upper=upper, warnings=unique)


def _rank(X: Floats, weight: Floats, fit_intercept: bool) -> int:
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


def _condition_number(x: Floats, w: Floats, fit_intercept: bool, factor: Factor | None) -> float | None:
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


def _summary(
    sums: LongFloats,
    estimates: Floats,
    coef_factors: Floats | None,
    n: int,
    df: int,
    p: int,
    fit_intercept: bool,
    level: float,
) -> dict[str, object]:
    """Return one target's statistics as numpy numbers, possibly not finite or None."""
    rss, tss, mss = sums
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        raw: dict[str, object] = {"r_squared": 1 - rss / tss, "df_residual": df}
        if df > 0:
            raw["adj_r_squared"] = 1 - rss / tss * (n - int(fit_intercept)) / df
            raw["residual_std_error"] = np.sqrt(rss / df)
        if coef_factors is None:
            return raw
        f_value = (mss / p) / (rss / df)
        raw["f_statistic"] = f_value
        raw["f_p_value"] = stats.f.sf(float(f_value), p, df)
        sigma = float(np.sqrt(rss / df))
        errors = sigma * np.sqrt(coef_factors)
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
    factor: Factor,
    X_test: Floats,
    coef: Floats,
    intercept: Floats,
    sigma: Floats,
    df: int,
    level: float,
    new_observation: bool,
) -> tuple[Floats, Floats]:
    """Return lower and upper bounds (m, k) around the predictions of ``X_test``."""
    predictions = X_test @ coef.T + intercept
    spread = factor.variance_factors(X_test)[:, None] + (1.0 if new_observation else 0.0)
    with np.errstate(over="ignore", invalid="ignore"):
        half = stats.t.isf((1 - level) / 2, df) * np.sqrt(spread) * sigma
        lower, upper = predictions - half, predictions + half
    if not (np.all(np.isfinite(lower)) and np.all(np.isfinite(upper))):
        raise UndefinedInterval("The interval bounds overflow (they are not finite numbers).")
    return np.asarray(lower, dtype=np.float64), np.asarray(upper, dtype=np.float64)
