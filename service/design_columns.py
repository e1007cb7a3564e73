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
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from service.formulas import Formula
from service.table import Table


def plain_columns(formula: Formula, kinds: Mapping[str, str]) -> bool:
    """Whether every target and term of ``formula`` is one numeric column, as it is (no call, no product)."""
    factors = [*formula.targets, *(term[0] for term in formula.terms if len(term) == 1)]
    if len(factors) != len(formula.targets) + len(formula.terms):
        return False
    for factor in factors:
        expression = formula.factors[factor]
        if not expression.plain or expression.call is not None or len(expression.columns) != 1:
            return False
        if kinds[expression.columns[0]] != "numeric":
            return False
    return True


def stack_columns(formula: Formula, table: Table, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray, tuple[str, ...]]:
    """The term matrix, the target matrix and the feature names, on the rows marked in ``rows``."""
    every = bool(rows.all())
    count = table.rows if every else int(np.count_nonzero(rows))
    terms = [formula.factors[term[0]] for term in formula.terms]
    matrix = np.empty((count, len(terms)), dtype=np.float64, order="F")
    for j, factor in enumerate(terms):
        values = table[factor.columns[0]].values
        matrix[:, j] = values if every else values[rows]
    targets = np.empty((count, len(formula.targets)), dtype=np.float64, order="F")
    for k, target in enumerate(formula.targets):
        values = table[formula.factors[target].columns[0]].values
        targets[:, k] = values if every else values[rows]
    names = tuple(factor.text for factor in terms)
    return np.ascontiguousarray(matrix), np.ascontiguousarray(targets), names
