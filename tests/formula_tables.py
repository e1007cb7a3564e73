"""Read a small CSV file into a ``Table`` for the formula tests (the parse stage is built elsewhere)."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from service.table import Column, Table


def read_table(path: Path, role: str) -> Table:
    """Columns whose present cells are all numbers are numeric, others categorical; empty cells are missing."""
    with path.open(newline="") as handle:
        records = list(csv.DictReader(handle))
    columns = []
    for name in records[0]:
        cells = [record[name] for record in records]
        missing = np.array([cell == "" for cell in cells])
        mask = missing if missing.any() else None
        try:
            values = np.array([float(cell) if cell else np.nan for cell in cells])
            columns.append(Column(name, "numeric", values, mask))
        except ValueError:
            values = np.array([cell or None for cell in cells], dtype=object)
            columns.append(Column(name, "categorical", values, mask))
    return Table(role, tuple(columns), len(records))


def table(role: str = "train", **columns: list[object]) -> Table:
    """A table from lists: numbers make a numeric column, text or booleans a categorical one, None a gap."""
    made = []
    for name, cells in columns.items():
        missing = np.array([cell is None for cell in cells])
        mask = missing if missing.any() else None
        present = [cell for cell in cells if cell is not None]
        if all(isinstance(cell, (int, float)) and not isinstance(cell, bool) for cell in present):
            values = np.array([np.nan if cell is None else float(cell) for cell in cells])  # type: ignore[arg-type]
            made.append(Column(name, "numeric", values, mask))
        else:
            made.append(Column(name, "categorical", np.array(cells, dtype=object), mask))
    rows = len(next(iter(columns.values())))
    return Table(role, tuple(made), rows)
