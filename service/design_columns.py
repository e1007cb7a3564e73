"""The design of a formula whose terms are numeric columns as they are, built without formulaic.

``y ~ .`` on a numeric table (what a CSV of numbers with its target last asks for by
default) needs no evaluation: each design column is a table column. formulaic would still
parse the formula again, put the columns into a DataFrame, evaluate each one as a factor
and write them into the matrix, about 5 ms for 10 columns and more than half the reading
time of the CSV itself; here the rows used of each column are copied once into the matrix.

The matrix is row-major (C order) like every other design and like the matrix form's
``X_train``, so that a table fits to the same last bit whichever way it was sent (the
reductions that centre the columns sum in the order of the layout). It is written column
by column into a column-major array, then transposed in one copy: a third of the time of
writing each column into a row-major array, where every value lands a row apart. Names are
the columns' names, as formulaic and patsy give them, the columns come in the formula's
order (R's, for terms of degree one), and the design keeps no levels and no transforms:
what ``build_design`` would give.

A formula of such columns beside other terms of one factor each (``y ~ .`` on a table with
a text column, ``y ~ x + log(z)``) has formulaic build the other terms alone, and their
columns take their places among the stacked ones (``other_terms``, ``interleave``):
formulaic then evaluates one text column, not eleven columns (2.3 against 7.9 ms on
10,000 rows), and the design is the one it builds of the whole formula, column for column.
When those other terms are all text columns as they are, formulaic codes their levels, one
row a level, and each design row takes its level's row (``level_frame``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from service.design_functions import categories
from service.formulas import Formula
from service.table import Table


def plain_factor(formula: Formula, factor: str, kinds: Mapping[str, str]) -> bool:
    """Whether a factor of ``formula`` is one numeric column as it is (no call)."""
    expression = formula.factors[factor]
    return (
        expression.plain
        and expression.call is None
        and len(expression.columns) == 1
        and kinds[expression.columns[0]] == "numeric"
    )


def plain_columns(formula: Formula, kinds: Mapping[str, str]) -> bool:
    """Whether every target and term of ``formula`` is one numeric column, as it is (no call, no product)."""
    factors = [*formula.targets, *(term[0] for term in formula.terms if len(term) == 1)]
    if len(factors) != len(formula.targets) + len(formula.terms):
        return False
    return all(plain_factor(formula, factor, kinds) for factor in factors)


def other_terms(formula: Formula, kinds: Mapping[str, str]) -> tuple[tuple[str, ...], ...] | None:
    """The terms formulaic must build when the others are plain numeric columns; ``None`` when it must build all.

    Only for a formula of plain targets and terms of one factor each (``y ~ x + z + hood +
    log(w)``), with both kinds of term: formulaic's coding of a term of one factor depends
    on the intercept and on the terms of text columns before it, never on a numeric
    column's term, so the others built alone come out as they would among all of them.
    A product (``x:hood``) is coded by what the formula holds of its factors, numeric ones
    included: such a formula goes to formulaic whole.
    """
    if any(len(term) != 1 for term in formula.terms):
        return None
    if not all(plain_factor(formula, target, kinds) for target in formula.targets):
        return None
    others = tuple(term for term in formula.terms if not plain_factor(formula, term[0], kinds))
    return others if 0 < len(others) < len(formula.terms) else None


def stack_columns(formula: Formula, table: Table, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray, tuple[str, ...]]:
    """The term matrix, the target matrix and the feature names, on the rows marked in ``rows``."""
    every = bool(rows.all())
    count = table.rows if every else int(np.count_nonzero(rows))
    terms = [formula.factors[term[0]] for term in formula.terms]
    matrix = np.empty((count, len(terms)), dtype=np.float64, order="F")
    for j, factor in enumerate(terms):
        values = table[factor.columns[0]].values
        matrix[:, j] = values if every else values[rows]
    names = tuple(factor.text for factor in terms)
    return np.ascontiguousarray(matrix), stack_targets(formula, table, rows), names


def interleave(
    formula: Formula,
    table: Table,
    rows: np.ndarray,
    others: Sequence[tuple[str, ...]],
    built: Built,
    picks: Mapping[tuple[str, ...], np.ndarray] | None = None,
) -> tuple[np.ndarray, tuple[str, ...], tuple[str, ...]]:
    """The term matrix, its feature names and the term of each column: plain columns from ``table``, the others built.

    Every term keeps its place in the formula (R's order, for terms of one factor, is the
    order written); ``built`` holds the columns of ``others`` (``other_terms``), for the
    design's rows, or, for a term in ``picks``, for its levels: then each design row takes
    the row of its level (``level_frame``).
    """
    if len(built.blocks) != len(others):
        raise AssertionError("formulaic built another number of terms than it was given")
    every = bool(rows.all())
    count = table.rows if every else int(np.count_nonzero(rows))
    width = len(formula.terms) - len(others) + built.matrix.shape[1]
    # Row-major, written in place: a column-major array transposed at the end would be a
    # second matrix at the peak, on top of what formulaic built.
    matrix = np.empty((count, width), dtype=np.float64)
    names: list[str] = []
    owners: list[str] = []
    blocks = iter(zip(built.blocks, built.terms, strict=True))
    pending = set(others)
    for term in formula.terms:
        if term in pending:
            block, owner = next(blocks)
            pick = picks.get(term) if picks else None
            if block and pick is None:  # a term's columns are consecutive
                matrix[:, len(names) : len(names) + len(block)] = built.matrix[:, block[0] : block[-1] + 1]
            for j, column in enumerate(block if pick is not None else ()):  # a column at a time: no block-sized copy
                matrix[:, len(names) + j] = built.matrix[pick, column]
            names.extend(built.names[j] for j in block)
            owners.extend(owner for _ in block)
        else:
            factor = formula.factors[term[0]]
            values = table[factor.columns[0]].values
            matrix[:, len(names)] = values if every else values[rows]
            names.append(factor.text)
            owners.append(factor.text)
    return matrix, tuple(names), tuple(owners)


def level_terms(formula: Formula, others: Sequence[tuple[str, ...]], kinds: Mapping[str, str]) -> bool:
    """Whether every term formulaic must build is a text column as it is: one whose columns depend on its level alone."""
    return all(
        formula.factors[term[0]].plain and kinds[formula.factors[term[0]].columns[0]] == "categorical" for term in others
    )


def level_frame(
    formula: Formula, others: Sequence[tuple[str, ...]], levels: Mapping[str, list[Any]], codes: Mapping[str, np.ndarray]
) -> tuple[pd.DataFrame, dict[tuple[str, ...], np.ndarray]]:
    """The levels of the text columns of ``others`` as a frame for formulaic, and each term's row for each design row.

    formulaic codes a text column's term from its level alone (treatment contrasts over the
    given categories), so it codes one row a level, not the table's rows: its fixed cost
    stays, the part that grows with the rows goes, and no block of the table's size is held
    beside the design. Row ``i`` of the frame holds level ``i`` of each column (cycling
    through the levels of a column that has fewer); the design row of table level ``k``
    takes row ``k`` (``interleave``'s ``picks``).
    """
    names = [formula.factors[term[0]].columns[0] for term in others]
    size = max(len(levels[name]) for name in names)
    data = {
        name: pd.Categorical.from_codes(np.arange(size) % len(levels[name]), categories=categories(levels[name]))
        for name in names
    }
    picks = {term: codes[name] for term, name in zip(others, names, strict=True)}
    return pd.DataFrame(data, index=pd.RangeIndex(size), copy=False), picks


@dataclass(frozen=True)
class Built:
    """What formulaic built of some terms: the columns, their names, and each term's columns (and its name)."""

    matrix: np.ndarray
    names: tuple[str, ...]
    blocks: tuple[list[int], ...]
    terms: tuple[str, ...]


def stack_targets(formula: Formula, table: Table, rows: np.ndarray) -> np.ndarray:
    """The target matrix of a formula whose targets are plain numeric columns, on the rows marked in ``rows``."""
    every = bool(rows.all())
    targets = np.empty((table.rows if every else int(np.count_nonzero(rows)), len(formula.targets)), order="F")
    for k, target in enumerate(formula.targets):
        values = table[formula.factors[target].columns[0]].values
        targets[:, k] = values if every else values[rows]
    return np.ascontiguousarray(targets)
