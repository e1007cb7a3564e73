"""The design of a formula fit: the matrix of its terms' columns, its targets, and the state that rebuilds it.

``build_design(formula, table)`` evaluates a formula read by ``service.formulas`` on the
training ``Table``; ``rebuild_design(state, table)`` builds the same columns for new rows
(``test``, or a ``model`` sent back) from the JSON state the first one produced.

How a design is built:

* the rows used are those complete in every column the fit uses (targets, terms, and the
  weight column when given); the caller decides what a missing value means
  (``"missing": "fail"`` reports ``first_missing(...)``, ``"drop"`` uses ``Design.rows``);
  stateful terms (``poly``, ``center``, ``scale``, levels) learn from those rows only;
* a categorical column's levels are the distinct values of those rows, sorted by code
  point (R's ``factor`` in the C locale), handed to formulaic as a pandas ``Categorical``
  built from integer codes, so no cell becomes a new Python object; a numeric column in
  ``C()`` keeps its levels too (by value), so that new rows are checked against them;
* formulaic builds the matrix with R's treatment contrasts, R's column order and patsy's
  column names, in the context of ``service.design_functions`` only; plain numeric
  columns are stacked without it (``service.design_columns``), all of the design or
  beside the other terms of a formula of one-factor terms;
* the number of columns is bounded before anything is built, and every value of the
  result is checked finite (``log(0)``, ``sqrt(-1)`` name the column and the row).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from formulaic import ModelSpec
from formulaic.errors import FormulaicError

from service.design_columns import (
    interleave,
    level_frame,
    level_terms,
    other_terms,
    plain_columns,
    stack_columns,
    stack_targets,
)
from service.design_functions import (
    DesignError,
    MissingState,
    categories,
    level_label,
    levels_and_codes,
    make_context,
)
from service.design_matrix import built_terms, matrix_options, without_intercept
from service.design_state import DesignState, read_design_state
from service.errors import InvalidInput, describe, excerpt
from service.formulas import Formula
from service.table import Table

MAX_COLUMNS = 2_000
TRAINING = make_context(training=True)
REBUILDING = make_context(training=False)


@dataclass(frozen=True)
class Design:
    """The design of a fit on the rows it uses.

    ``matrix`` (m x p, float64, C-contiguous; stacked by ``service.design_columns`` when
    every term is a plain numeric column) holds the terms' columns without the
    intercept (``intercept`` says whether the fit has one: ``LinearRegression``'s
    ``fit_intercept``); ``targets`` (m x k) the targets. ``rows`` marks the table's rows
    used (m of them). ``state`` is the plain JSON that ``rebuild_design`` takes.
    """

    matrix: np.ndarray
    targets: np.ndarray
    feature_names: tuple[str, ...]
    target_names: tuple[str, ...]
    intercept: bool
    rows: np.ndarray
    state: dict[str, Any]
    column_terms: tuple[str, ...] = ()  # the term (as formulaic names it: ``sqft:hood``) of each column


@dataclass(frozen=True)
class NewRows:
    """The design columns for new rows: ``matrix`` for the rows marked in ``rows`` (complete ones)."""

    matrix: np.ndarray
    feature_names: tuple[str, ...]
    rows: np.ndarray


def first_missing(formula: Formula, table: Table, weight: str | None = None) -> tuple[int, str] | None:
    """The first row with a missing value in a column the fit uses, and that column; ``None`` if none."""
    found: tuple[int, str] | None = None
    for name in used_columns(formula, weight):
        column = table[name]
        if column.has_missing and column.missing is not None:
            row = int(np.argmax(column.missing))
            if found is None or row < found[0]:
                found = (row, name)
    return found


def used_columns(formula: Formula, weight: str | None = None) -> tuple[str, ...]:
    """The columns a fit uses: targets, terms, then the weight."""
    names = formula.target_columns + formula.term_columns + ((weight,) if weight else ())
    return tuple(dict.fromkeys(names))


def build_design(formula: Formula, table: Table, *, weight: str | None = None, max_columns: int = MAX_COLUMNS) -> Design:
    """Build the design of ``formula`` on the complete rows of ``table``, or raise ``InvalidInput``."""
    kinds = check_columns(formula, table, numeric=set(formula.target_columns))
    rows = complete_rows(table, used_columns(formula, weight))
    if not rows.any():
        raise InvalidInput(
            f"'{table.role}' has no row without a missing value in the columns the fit uses "
            f"({', '.join(repr(excerpt(c)) for c in used_columns(formula, weight)[:5])}).",
            table.role,
        )
    found = {name: levels_and_codes(table[name].values[rows]) for name in level_columns(formula, kinds)}
    levels = {name: found_levels for name, (found_levels, _) in found.items()}
    codes = {name: found_codes for name, (_, found_codes) in found.items() if found_codes is not None}
    check_width(formula, table, rows, levels, max_columns)
    transforms: dict[str, Any] = {}
    if plain_columns(formula, kinds):
        term_matrix, target_matrix, feature_names = stack_columns(formula, table, rows)
        terms = feature_names  # a plain numeric column is a term of one column, named as the column
    else:
        others = other_terms(formula, kinds)
        if others is None:  # formulaic builds every term, and the targets
            names = formula.target_columns + formula.term_columns
            frame = make_frame(table, dict.fromkeys(names), rows, levels, kinds, codes)
            spec = formula.structured(targets=True)
            options = matrix_options(formula.intercept)
            matrices = evaluate(lambda: spec.get_model_matrix(frame, context=TRAINING, **options), table.role)
            target_matrix = np.asarray(matrices.lhs, dtype=np.float64)
            built = built_terms(matrices.rhs, formula.intercept)
            term_matrix, feature_names, terms = built.matrix, built.names, tuple(
                owner for block, owner in zip(built.blocks, built.terms, strict=True) for _ in block
            )
            transforms = dict(matrices.rhs.model_spec.transform_state)
        else:  # the plain numeric terms are stacked, formulaic builds the others alone
            picks = None
            if level_terms(formula, others, kinds):  # text columns as they are: formulaic codes their levels only
                frame, picks = level_frame(formula, others, levels, codes)
            else:
                used = dict.fromkeys(column for term in others for column in formula.factors[term[0]].columns)
                frame = make_frame(table, used, rows, levels, kinds, codes)
            rest = ModelSpec(formula=formula.structured(others), **matrix_options(formula.intercept))
            matrix = evaluate(lambda: rest.get_model_matrix(frame, context=TRAINING), table.role)
            term_matrix, feature_names, terms = interleave(
                formula, table, rows, others, built_terms(matrix, formula.intercept), picks
            )
            target_matrix = stack_targets(formula, table, rows)
            transforms = dict(matrix.model_spec.transform_state)
    check_finite(target_matrix, formula.targets, rows, table)
    check_finite(term_matrix, feature_names, rows, table)
    state = DesignState(
        formula=formula.expanded,
        columns={name: kinds[name] for name in used_columns(formula)},
        levels=levels,
        transforms=transforms,
        feature_names=feature_names,
    )
    return Design(term_matrix, target_matrix, feature_names, formula.targets, formula.intercept, rows, state.to_json(), terms)


def rebuild_design(state: object, table: Table, *, field: str = "model") -> NewRows:
    """Build the design columns of a design's ``state`` for the rows of ``table`` (``test``).

    ``state`` is read as strictly as any input (``read_design_state``, errors naming
    ``field``); a column ``table`` lacks, a column of the other kind, or a level training
    did not have is ``InvalidInput`` naming the table's role.
    """
    design, formula = read_design_state(state, field)
    kinds = check_columns(formula, table, numeric=set(), expected=design.columns)
    rows = complete_rows(table, formula.term_columns)
    for name, levels in design.levels.items():
        check_levels(table, name, rows, levels)
    frame = make_frame(table, dict.fromkeys(formula.term_columns), rows, design.levels, kinds)
    spec = ModelSpec(formula=formula.structured(), transform_state=design.copy_transforms(), **matrix_options(formula.intercept))
    matrix = evaluate(lambda: spec.get_model_matrix(frame, context=REBUILDING), field, rebuilding=True)
    term_matrix, feature_names = without_intercept(matrix, formula.intercept)
    if feature_names != design.feature_names:
        raise InvalidInput(f"'{field}' has a design whose feature_names are not the columns its formula makes.", field)
    check_finite(term_matrix, feature_names, rows, table)
    return NewRows(term_matrix, feature_names, rows)


def check_columns(
    formula: Formula, table: Table, *, numeric: set[str], expected: dict[str, str] | None = None
) -> dict[str, str]:
    """The kinds of the columns the formula uses; ``InvalidInput`` for one the table lacks or of the wrong kind."""
    must_be_numeric = numeric | {c for f in formula.factors.values() if f.numeric for c in f.columns}
    names = tuple(dict.fromkeys((*sorted(numeric), *formula.term_columns)))
    kinds: dict[str, str] = {}
    for name in names:
        if name not in table:
            raise InvalidInput(f"'{table.role}' has no column {excerpt(name)!r}, which the formula uses.", table.role)
        table[name].check()
        kind = table[name].kind
        wanted = expected.get(name) if expected else ("numeric" if name in must_be_numeric else None)
        if wanted is not None and kind != wanted:
            why = "the formula computes with it" if expected is None else "it was in training"
            raise InvalidInput(
                f"'{table.role}' has the column {excerpt(name)!r} {kind}, but it must be {wanted}: {why}.", table.role
            )
        kinds[name] = kind
    return kinds


def complete_rows(table: Table, names: Sequence[str]) -> np.ndarray:
    """The mask of rows with no missing value in the named columns."""
    rows = np.ones(table.rows, dtype=bool)
    for name in names:
        missing = table[name].missing
        if missing is not None:
            rows &= ~missing
    return rows


def check_levels(table: Table, name: str, rows: np.ndarray, levels: Sequence[Any]) -> None:
    """``InvalidInput`` for the first complete row whose level training did not have."""
    values = table[name].values
    if table[name].kind == "numeric":
        unknown = ~np.isin(values, np.asarray(levels, dtype=np.float64)) & rows
    else:
        unknown = (pd.Index(levels, dtype=object).get_indexer(values) < 0) & rows
    if unknown.any():
        row = int(np.argmax(unknown))
        shown = ", ".join(excerpt(level_label(v), 20) for v in levels[:10]) + (", ..." if len(levels) > 10 else "")
        raise InvalidInput(
            f"'{table.role}' has the level {describe(values[row])} in column {excerpt(name)!r} at {table.where(row)}, "
            f"which the training data did not have (levels: {shown}).",
            table.role,
        )


def check_width(formula: Formula, table: Table, rows: np.ndarray, levels: dict[str, list[Any]], max_columns: int) -> None:
    """Refuse, before building anything, a design wider than ``max_columns`` (an upper bound on its width)."""
    width = 1
    for term in formula.terms:
        size = 1
        for factor in term:
            expression = formula.factors[factor]
            if expression.call == "poly":
                size *= expression.degree
            elif expression.call == "C" or (expression.plain and table[expression.columns[0]].kind == "categorical"):
                column = expression.columns[0]
                size *= len(levels[column]) if column in levels else len(np.unique(table[column].values[rows]))
        width += size
        if width > max_columns:
            raise InvalidInput(
                f"The formula makes more than {max_columns} design columns (categorical levels multiply them).", "formula"
            )


def level_columns(formula: Formula, kinds: dict[str, str]) -> list[str]:
    """The columns whose levels the design keeps: categorical ones, and numeric ones in ``C()``."""
    in_c = {f.columns[0] for f in formula.factors.values() if f.call == "C"}
    return [name for name in formula.term_columns if kinds[name] == "categorical" or name in in_c]


def make_frame(
    table: Table,
    names: dict[str, None],
    rows: np.ndarray,
    levels: dict[str, list[Any]],
    kinds: dict[str, str],
    codes: dict[str, np.ndarray] | None = None,
) -> pd.DataFrame:
    """The rows used of the named columns, as formulaic takes them: floats, and categoricals built from codes.

    ``codes``: those already found with the levels (``levels_and_codes``), by column.
    """
    data: dict[str, Any] = {}
    every = bool(rows.all())
    for name in names:
        values = table[name].values if every else table[name].values[rows]
        if kinds.get(name) == "categorical":
            given = categories(levels[name])
            known = (codes or {}).get(name)
            if known is None:
                known = given.get_indexer(values)
            data[name] = pd.Categorical.from_codes(known, categories=given)
        else:
            data[name] = values
    return pd.DataFrame(data, index=pd.RangeIndex(int(rows.sum())), copy=False)


def evaluate(build: Any, field: str, *, rebuilding: bool = False) -> Any:
    """Run formulaic; turn a term that cannot be computed into ``InvalidInput`` naming ``field``.

    numpy's warnings (log of 0) are silenced: ``check_finite`` names the value instead.
    """
    try:
        with np.errstate(all="ignore"):
            return build()
    except (FormulaicError, ValueError, TypeError, ArithmeticError, LookupError) as error:
        cause = error if isinstance(error, DesignError) else error.__cause__ or error.__context__
        if isinstance(cause, MissingState) or rebuilding:
            raise InvalidInput(f"'{field}' has a design whose state does not rebuild its formula's terms.", field) from None
        if isinstance(cause, DesignError):
            raise InvalidInput(f"The formula's design cannot be built from '{field}': {cause}", field) from None
        raise InvalidInput(f"The formula's design cannot be built from '{field}': a term could not be computed.", field) from None


def check_finite(matrix: np.ndarray, names: Sequence[str], rows: np.ndarray, table: Table) -> None:
    """``InvalidInput`` naming the first design value that is not finite, by its column and table row."""
    with np.errstate(all="ignore"):  # inf - inf, or finite values whose sum overflows: looked at below
        total = matrix.sum()
    if np.isfinite(total):
        return  # a sum is finite only if every value is: the usual case, without a mask the size of the matrix
    bad = ~np.isfinite(matrix)
    if bad.any():
        row, column = np.argwhere(bad)[0]
        table_row = int(np.flatnonzero(rows)[row])
        raise InvalidInput(
            f"The design column {excerpt(names[column])!r} is not finite at {table.where(table_row)} of "
            f"'{table.role}' ({matrix[row, column]}): its function is not defined there (such as log of 0 or "
            "sqrt of a negative).",
            table.role,
        )
