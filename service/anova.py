"""Analysis of variance of a least-squares fit: R's ``anova(lm)``, sequential (type I) sums of squares.

Pure numerics, no HTTP. A term's sequential sum of squares is what its columns add to the
fit after the terms before it: in a QR factorisation of the (weighted) design, the sum of
the squared effects ``Q'y`` of the term's columns. It is computed from the factor the fit
already has (``service.design``), with no refit per term:

- the fitted values lie in the span of the design, and ``C u = Q (R u)``, so ``R u`` are the
  effects of the fitted values (those of ``y`` itself, but for the residual, which is
  orthogonal to every column and adds nothing to a term);
- a full-rank design is triangular already: the effects are ``R u``, and each column's
  share is its own entry;
- a rank-deficient design is processed as R's ``lm`` does (LINPACK ``dqrdc2``): columns in
  order, a column whose part orthogonal to the columns kept before it is below ``1e-7`` of
  its norm adds no rank and is left out. This runs on the small triangle ``R`` (whose
  columns have the geometry of the design's: ``C'C = R'R``), not on the rows. A term none of
  whose columns adds rank has no row in the table, as in R's.

The shift of the columns by their means and their scaling by powers of two change no
sequential sum of squares: each column changes by a multiple of the intercept's, which
comes first, and by a factor.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray
from scipy import stats

from service.design import Design

Floats = NDArray[np.float64]

#: R's ``lm.fit`` tolerance: a column whose part not spanned by earlier columns is below
#: this fraction of its norm adds no rank.
ALIASED = 1e-7


def analyse_variance(
    design: Design, coef: Floats, intercept: Floats, column_terms: tuple[str, ...], *, full_rank: bool, positive: bool
) -> tuple[list[list[dict[str, object]]], list[str]]:
    """Return one ``anova`` table per target and the warnings about it.

    ``column_terms`` names the term of each feature (design column, intercept excluded);
    ``full_rank`` says whether the fit found the design of full rank. Rows are
    ``{"term", "df", "sum_sq", "mean_sq", "f_value", "p_value"}``, the terms in order of
    their first column, then ``Residuals``. With ``positive`` the coefficients are not the
    least-squares ones, so only the degrees of freedom are given.
    """
    factor = design.wide_factor
    first = int(design.fit_intercept)
    u = np.asarray(factor.coordinates(coef, intercept), dtype=np.float64)
    fitted = factor.r @ u  # the fitted values in the factor's orthonormal coordinates
    if full_rank and factor.r.shape[0] == factor.r.shape[1]:
        kept = np.arange(factor.r.shape[1])
        effects = fitted
    else:
        kept, effects = _sequential_effects(factor.r, fitted)
    df_residual = design.n_used - len(kept)
    rss = design.sums_of_squares(coef, intercept)[0]

    names = list(dict.fromkeys(column_terms))
    owner = np.array([names.index(term) for term in column_terms], dtype=np.intp)
    features = kept[kept >= first] - first
    df = np.bincount(owner[features], minlength=len(names))
    squares = effects[kept >= first] ** 2
    sums = np.stack([np.bincount(owner[features], weights=squares[:, k], minlength=len(names)) for k in range(u.shape[1])])

    warnings: list[str] = []
    if positive:
        warnings.append(
            "The anova's sum_sq, mean_sq, f_value and p_value are null because positive=true constrains the "
            "coefficients, so least-squares inference does not apply."
        )
    tables = []
    for target in range(u.shape[1]):
        residual_ms = float(rss[target] / df_residual) if df_residual > 0 else np.nan
        rows: list[dict[str, object]] = []
        lost = False
        for i, term in enumerate(names):
            if df[i] == 0:
                continue  # as R: a term that adds no rank has no row
            mean_sq = sums[target, i] / df[i]
            with np.errstate(divide="ignore", invalid="ignore"):
                f_value = mean_sq / residual_ms
            p_value = stats.f.sf(f_value, df[i], df_residual) if np.isfinite(f_value) else np.nan
            row = _row(term, int(df[i]), sums[target, i], mean_sq, f_value, p_value, positive)
            lost = lost or (df_residual > 0 and not positive and row["f_value"] is None)
            rows.append(row)
        rows.append(_row("Residuals", df_residual, float(rss[target]), residual_ms, None, None, positive))
        if lost:
            subject = f" of target {target}" if u.shape[1] > 1 else ""
            warnings.append(
                f"The anova's f_value and p_value{subject} are null because the residual sum of squares is zero "
                "(the fit is exact)."
            )
        tables.append(rows)
    return tables, warnings


def _sequential_effects(r: Floats, fitted: Floats) -> tuple[NDArray[np.intp], Floats]:
    """The columns of ``r`` that add rank, in order, and the effects of ``fitted`` on them.

    Gram-Schmidt, twice per column (so that the basis stays orthonormal to rounding), on the
    columns of the small factor ``r``; a column left with less than ``ALIASED`` of its norm
    is aliased (R's ``dqrdc2`` rule).
    """
    basis = np.zeros(r.shape)
    kept: list[int] = []
    for j in range(r.shape[1]):
        column = r[:, j].copy()
        norm = float(np.linalg.norm(column))
        current = basis[:, : len(kept)]
        for _ in range(2):
            column -= current @ (current.T @ column)
        rest = float(np.linalg.norm(column))
        if norm == 0 or rest <= ALIASED * norm or len(kept) == r.shape[0]:
            continue
        basis[:, len(kept)] = column / rest
        kept.append(j)
    return np.array(kept, dtype=np.intp), basis[:, : len(kept)].T @ fitted


def _row(
    term: str, df: int, sum_sq: float, mean_sq: float, f_value: float | None, p_value: float | None, positive: bool
) -> dict[str, object]:
    """One row of the table, with None for what does not exist (not finite, or not least squares)."""
    def number(value: float | None) -> float | None:
        if value is None or positive or not np.isfinite(value):
            return None
        return float(value)

    return {
        "term": term,
        "df": df,
        "sum_sq": number(sum_sq),
        "mean_sq": number(mean_sq),
        "f_value": number(f_value),
        "p_value": number(p_value),
    }
