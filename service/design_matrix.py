"""formulaic's side of a design: its options, one C-contiguous float64 array written once, and its columns by term.

formulaic's pandas materializer evaluates each design column as its own array and, for
numpy output, ``numpy.stack``s them; the service then wants the matrix without the
intercept column, which would be a third copy (``matrix[:, 1:]`` is not contiguous).
``DesignMaterializer`` (registered with formulaic as ``"fitserve"``) writes the columns
straight into one preallocated C-contiguous array and leaves the intercept column out when
asked (``drop_intercept``). It also takes a one-factor term's column as it is, where
formulaic computes ``1 * column`` (a copy of every numeric column) to apply a scale of 1.
Building a design then holds the result, the dummy and product columns, and nothing more
(for 200,000 x 20 numbers and a 5-level text column: 1.2x the matrix, not 2.2x).
"""

from __future__ import annotations

import functools
import itertools
import operator
from collections.abc import Sequence
from typing import Any

import numpy as np
from formulaic.materializers import PandasMaterializer
from interface_meta import override

from service.design_columns import Built

#: The name formulaic gives the intercept's column; a table column of that name is refused.
INTERCEPT = "Intercept"


class DesignMaterializer(PandasMaterializer):  # type: ignore[misc]
    """formulaic's pandas materializer with a numpy output written into one array, without the intercept."""

    REGISTER_NAME = "fitserve"
    REGISTER_INPUTS: Sequence[str] = ()
    REGISTER_OUTPUTS: Sequence[str] = ("numpy",)

    @override
    def _get_columns_for_term(self, factors: list[dict[str, Any]], spec: Any, scale: float = 1) -> dict[str, Any]:
        # formulaic's own, but a lone factor with a scale of 1 is not multiplied (copied)
        out = {}
        for reverse_product in itertools.product(*(factor.items() for factor in reversed(factors))):
            product = reverse_product[::-1]
            columns = [values for _, values in product]
            column = columns[0] if len(columns) == 1 else functools.reduce(operator.mul, columns)
            out[":".join(name for name, _ in product)] = column if scale == 1 else scale * column
        return out

    @override
    def _combine_columns(self, cols: Sequence[tuple[str, Any]], spec: Any, drop_rows: Sequence[int]) -> np.ndarray:
        kept = list(cols)
        if self.params.get("drop_intercept") and kept and kept[0][0] == INTERCEPT:
            kept = kept[1:]
        rows = self.data.shape[0] - len(drop_rows)
        matrix = np.empty((rows, len(kept)), dtype=np.float64)
        for j, (_, values) in enumerate(kept):
            matrix[:, j] = np.asarray(values, dtype=np.float64).reshape(rows)
        return matrix


def matrix_options(intercept: bool) -> dict[str, Any]:
    """formulaic's options: R's full-rank coding, our own missing rows, one array without the intercept."""
    return {
        "ensure_full_rank": True,
        "na_action": "ignore",
        "output": "numpy",
        "materializer": DesignMaterializer.REGISTER_NAME,
        "materializer_params": {"drop_intercept": intercept},
    }


def built_terms(matrix: Any, intercept: bool) -> Built:
    """formulaic's matrix of the right side: its columns (intercept left out) and each term's columns."""
    values, names = without_intercept(matrix, intercept)
    shift = 1 if intercept else 0  # formulaic counts the intercept's column, which DesignMaterializer left out
    terms = [(str(term), columns) for term, columns in matrix.model_spec.term_indices.items() if str(term) != "1"]
    blocks = tuple([j - shift for j in columns] for _, columns in terms)
    return Built(values, names, blocks, tuple(name for name, _ in terms))


def without_intercept(matrix: Any, intercept: bool) -> tuple[np.ndarray, tuple[str, ...]]:
    """The matrix (``DesignMaterializer`` left the intercept out) and its column names without ``Intercept``."""
    names = tuple(matrix.model_spec.column_names)
    if intercept and names[:1] == (INTERCEPT,):
        names = names[1:]
    values = np.asarray(matrix)
    if values.shape[1] != len(names) or values.dtype != np.float64 or not values.flags.c_contiguous:
        raise AssertionError("formulaic did not materialize the design through DesignMaterializer")
    return values, names
