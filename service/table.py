"""``Table``: a typed table of named columns, as the parse stage hands it to the design stage.

A column is *numeric* (float64 values) or *categorical* (text, or JSON booleans), and
knows which of its cells are missing. Missing cells hold no meaningful value: ``NaN`` in
a numeric column, ``None`` in a categorical one; ``missing`` is the authority.
This module imports nothing heavy beyond numpy: every stage may use it.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Literal

import numpy as np

Kind = Literal["numeric", "categorical"]


@dataclass(frozen=True)
class Column:
    """One named column of a table.

    ``values`` is float64 for a numeric column, an object array of ``str`` (or ``bool``,
    from JSON) for a categorical one. ``missing`` is a boolean mask of the same length, or
    ``None`` when no cell is missing.
    """

    name: str
    kind: Kind
    values: np.ndarray
    missing: np.ndarray | None = None
    #: Why the column cannot be used (numbers and text mixed, a number too large): raised only
    #: if a fit uses it, since columns a fit does not use are not checked.
    problem: Exception | None = None

    def check(self) -> None:
        """Raise the column's problem, if it has one (the caller is about to use it)."""
        if self.problem is not None:
            raise self.problem

    def __len__(self) -> int:
        return int(self.values.shape[0])

    @property
    def has_missing(self) -> bool:
        """Tell whether any cell is missing."""
        return self.missing is not None and bool(self.missing.any())


@dataclass(frozen=True)
class Table(Mapping[str, Column]):
    """Named columns of equal length, in the order the client sent them.

    ``role`` is the field the table came from (``train``, ``test``, or a matrix field),
    so that every message about one of its cells names it.
    """

    role: str
    columns: tuple[Column, ...]
    rows: int
    #: How messages count rows: from 0 as in JSON, or as data rows of a CSV file.
    numbering: Literal["json", "csv"] = "json"

    def __post_init__(self) -> None:
        for column in self.columns:
            if len(column) != self.rows:
                raise ValueError(f"column {column.name!r} has {len(column)} cells, the table {self.rows} rows")

    def __getitem__(self, name: str) -> Column:
        for column in self.columns:
            if column.name == name:
                return column
        raise KeyError(name)

    def __iter__(self) -> Iterator[str]:
        return (column.name for column in self.columns)

    def __len__(self) -> int:
        return len(self.columns)

    def where(self, row: int) -> str:
        """Name a row (counting from 0 here) in a message, as the client counts it."""
        if self.numbering == "csv":
            return f"data row {row + 1} (data rows count from 1 below the header; row {row + 2} in a spreadsheet)"
        return f"row {row} (counting from 0)"

    @property
    def names(self) -> tuple[str, ...]:
        """The column names, in order."""
        return tuple(column.name for column in self.columns)
