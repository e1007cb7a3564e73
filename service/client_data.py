"""How the client turns numpy arrays, lists and pandas objects into the JSON the service takes.

The rules are those of ``service.client``'s docstring: a 2-D array is a list of rows, a 1-D
one a flat list; a ``DataFrame`` or a dict of columns is named columns; numeric and boolean
columns are sent as floats, anything else as it is (for the service to reject with a message
naming the field and the position); ``NaN`` and pandas' ``NA`` are ``null``. pandas is never
imported here, only recognised when it is already loaded.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from typing import Any

import numpy as np


def matrix(value: Any) -> Any:
    """The JSON form of a matrix or a target: named columns for pandas, lists for the rest."""
    pandas = sys.modules.get("pandas")
    if pandas is not None and isinstance(value, pandas.DataFrame):
        columns: dict[str, Any] = {}
        for name, column in value.items():
            if str(name) in columns:
                raise ValueError(f"Column names must be distinct as strings. Got {str(name)!r} twice.")
            columns[str(name)] = values(column)
        return columns
    if pandas is not None and isinstance(value, pandas.Series):
        return values(value) if value.name is None else {str(value.name): values(value)}
    if isinstance(value, Mapping):
        return {str(name): values(column) for name, column in value.items()}
    return values(value)


def table(value: Any) -> Any:
    """The JSON form of a table: named columns, numbers as floats, text and booleans as they are, gaps as null."""
    if value is None:
        return None
    pandas = sys.modules.get("pandas")
    if pandas is not None and isinstance(value, pandas.DataFrame):
        columns = {str(name): column for name, column in value.items()}
        if len(columns) != value.shape[1]:
            raise ValueError("Column names must be distinct as strings.")
    elif isinstance(value, Mapping):
        columns = {str(name): column for name, column in value.items()}
    else:
        raise TypeError(
            f"A table is a pandas DataFrame or a dict of columns. Got {type(value).__name__} instead."
        )
    return {name: cells(column) for name, column in columns.items()}


def cells(column: Any) -> Any:
    """One column of a table: floats (NaN as null) when numeric, else its values with gaps as None."""
    kind = getattr(getattr(column, "dtype", None), "kind", None)
    if kind in ("i", "u", "f"):
        return values(column)
    items = column.tolist() if hasattr(column, "tolist") else list(column)
    pandas = sys.modules.get("pandas")
    missing = pandas.isna if pandas is not None else (lambda item: item is None or item != item)
    return [None if missing(item) else item for item in items]


def vector(value: Any) -> Any:
    """The JSON form of a vector (``sample_weight``): a flat list whatever its type."""
    return values(value)


def values(value: Any) -> Any:
    """Numbers of an array, a list or a pandas column, as floats where they are numeric or boolean."""
    if value is None or isinstance(value, (list, tuple)):
        return value
    numeric = getattr(getattr(value, "dtype", None), "kind", None) in ("b", "i", "u", "f")
    if hasattr(value, "to_numpy"):  # pandas, whose nullable columns hold NA: sent as NaN, so null
        return value.to_numpy(np.float64, na_value=np.nan) if numeric else value.to_numpy().tolist()
    array = np.asarray(value)
    return np.ascontiguousarray(array, np.float64) if array.dtype.kind in "biuf" else array.tolist()


def plain(value: Any) -> Any:
    """What orjson cannot serialize by itself: numpy scalars and arrays it does not take."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"Type {type(value).__name__} cannot be sent as JSON.")
