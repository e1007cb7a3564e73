"""How formulaic's columns become the design matrix: one C-contiguous float64 array, written once.

formulaic's pandas materializer evaluates each design column as its own array and, for
numpy output, ``numpy.stack``s them; the service then wants the matrix without the
intercept column, which would be a third copy (``matrix[:, 1:]`` is not contiguous).
``DesignMaterializer`` (registered with formulaic as ``"fitserve"``) writes the columns
straight into one preallocated C-contiguous array and leaves the intercept column out when
asked (``drop_intercept``), so building a design holds the evaluated columns and the
result, and nothing more.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from formulaic.materializers import PandasMaterializer
from interface_meta import override

#: The name formulaic gives the intercept's column; a table column of that name is refused.
INTERCEPT = "Intercept"


class DesignMaterializer(PandasMaterializer):  # type: ignore[misc]
    """formulaic's pandas materializer with a numpy output written into one array, without the intercept."""

    REGISTER_NAME = "fitserve"
    REGISTER_INPUTS: Sequence[str] = ()
    REGISTER_OUTPUTS: Sequence[str] = ("numpy",)

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
