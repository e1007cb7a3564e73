"""The groups of a table's by column, and each row's group: what one fit per group is split by.

A by column is categorical, or numeric with integer values only; its groups are its distinct
values in R's level order (``service.design_functions.sorted_levels``): by code point for
text, by value for integers. Each row gets its group's index (``-1`` for a missing value, or
in ``test`` under ``"missing": "drop"``); a test row whose group is not among them is a 422
naming ``test``. Rows are split by group with numpy (a stable argsort of the indices), so
that 20,000 groups cost one sort, not 20,000 scans.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import pandas as pd

from service.design_functions import level_label, sorted_levels
from service.errors import InvalidInput, describe, did_you_mean, excerpt
from service.settings import Limits
from service.table import Column, Table
from service.tabular import DROP_HINT, listed

Group = str | bool | int
MAX_INTEGER = 2**53


@dataclass(frozen=True)
class Groups:
    """The groups of a table: their values in sorted order, and each row's group (-1: missing)."""

    values: tuple[Group, ...]
    codes: np.ndarray  # int64, one per row


def read_groups(train: Table, by: str, missing: str, limits: Limits) -> Groups:
    """The groups of ``train``'s by column: categorical, or numeric with integer values only."""
    if by not in train:
        raise InvalidInput(
            f"'by' names the column {excerpt(by)!r}, but 'train' has no such column;{did_you_mean(by, train.names)} "
            f"its columns are: {listed(train.names)}.",
            "by",
        )
    column = train[by]
    column.check()
    present = None if column.missing is None else ~column.missing
    if present is not None and not present.all():
        row = int(np.argmax(~present))
        if missing == "fail":
            raise InvalidInput(
                f"'by' names the column {excerpt(by)!r}, which has a missing value at {train.where(row)} of 'train'; "
                f"{DROP_HINT}.",
                "by",
            )
        if not present.any():
            raise InvalidInput(f"'by' names the column {excerpt(by)!r}, which has no value in 'train'.", "by")
    values = column.values if present is None else column.values[present]
    if column.kind == "numeric":
        # Past 2**53 a float64 is an integer only because it has no digits left for a fraction.
        fraction = (values != np.floor(values)) | (np.abs(values) > MAX_INTEGER)
        if fraction.any():
            row = (
                int(np.flatnonzero(present)[np.argmax(fraction)])
                if present is not None
                else int(np.argmax(fraction))
            )
            raise InvalidInput(
                f"'by' names the column {excerpt(by)!r}, which holds {values[np.argmax(fraction)]:.6g} at "
                f"{train.where(row)} of 'train'; a by column is categorical or holds integers only (of magnitude "
                "at most 2**53).",
                "by",
            )
    levels = sorted_levels(values)
    if len(levels) > limits.max_groups:
        raise InvalidInput(
            f"'by' names the column {excerpt(by)!r}, which has {len(levels)} distinct values, but at most "
            f"{limits.max_groups} groups are allowed (setting max_groups, FITSERVE_MAX_GROUPS).",
            "by",
        )
    codes = codes_of(column, levels)
    shown: tuple[Group, ...] = tuple(int(v) for v in levels) if column.kind == "numeric" else tuple(levels)
    return Groups(shown, codes)


def codes_of(column: Column, levels: Sequence[object]) -> np.ndarray:
    """Each cell's index in ``levels`` (-1 for a missing cell or a value not among them)."""
    numbers = all(type(v) in (int, float) for v in levels)
    if column.kind == "numeric" and numbers:
        known = np.asarray(levels, dtype=np.float64)
        values = (
            np.where(np.isnan(column.values), np.inf, column.values) if column.has_missing else column.values
        )
        at = np.minimum(np.searchsorted(known, values), len(known) - 1)
        codes = np.where(known[at] == values, at, -1).astype(np.int64)
    elif column.kind == "numeric" or numbers:
        codes = np.full(
            len(column), -1, dtype=np.int64
        )  # a number is never a text group, nor text a number's
    else:
        codes = pd.Index(list(levels), dtype=object).get_indexer(column.values).astype(np.int64)
    if column.missing is not None:
        codes[column.missing] = -1
    return codes


def test_groups(
    test: Table, by: str, values: Sequence[Group], missing: str, source: str = "train"
) -> np.ndarray:
    """Each test row's group; a group ``source`` does not have is a 422 naming ``test``."""
    if by not in test:
        raise InvalidInput(
            f"'test' has no column {excerpt(by)!r}, the 'by' column, which says which group's fit predicts each row.",
            "test",
        )
    column = test[by]
    column.check()
    codes = codes_of(column, values)
    unknown = codes < 0
    if column.missing is not None:
        if missing == "fail" and column.has_missing:
            row = int(np.argmax(column.missing))
            raise InvalidInput(
                f"'test' has a missing value in column {excerpt(by)!r}, the 'by' column, at {test.where(row)}; "
                f"{DROP_HINT}.",
                "test",
            )
        unknown &= ~column.missing
    if unknown.any():
        row = int(np.argmax(unknown))
        raise InvalidInput(
            f"'test' has the group {describe(column.values[row])} in column {excerpt(by)!r} at {test.where(row)}, "
            f"which '{source}' does not have (groups: {shown(values)}).",
            "test",
        )
    return codes


def shown(values: Sequence[Group], limit: int = 10) -> str:
    """The first groups, for a message."""
    text = ", ".join(excerpt(level_label(v), 20) for v in values[:limit])
    return text + (", ..." if len(values) > limit else "")


def boundaries(codes: np.ndarray, count: int) -> tuple[np.ndarray, np.ndarray]:
    """The stable order that sorts ``codes`` (all >= 0) by group, and where each group starts in it."""
    order = np.argsort(codes, kind="stable")
    starts = np.zeros(count + 1, dtype=np.int64)
    np.cumsum(np.bincount(codes, minlength=count), out=starts[1:])
    return order, starts


def test_split(
    test_codes: np.ndarray | None, complete: np.ndarray | None, count: int
) -> list[np.ndarray] | None:
    """Per group, the rows of the test table it predicts (complete ones, with a group), in order."""
    if test_codes is None or complete is None:
        return None
    rows = np.flatnonzero(complete & (test_codes >= 0))
    order, starts = boundaries(test_codes[rows], count)
    ordered = rows[order]
    return [ordered[starts[g] : starts[g + 1]] for g in range(count)]


@contextmanager
def in_group(value: Group, by: str | None, note: str = "; rows counted within the group") -> Iterator[None]:
    """Say which group an error is about (an error of a group's own table counts rows within the group)."""
    try:
        yield
    except InvalidInput as error:
        raise InvalidInput(f"{group_prefix(value, by, note)}{error.detail}", error.field) from None


def group_prefix(value: Group, by: str | None, note: str = "") -> str:
    """``In the group 'A' of 'by' ('store'): ``, to start a message about one group."""
    return f"In the group {excerpt(level_label(value))!r} of 'by' ({excerpt(str(by))!r}{note}): "


def take(table: Table, rows: np.ndarray) -> Table:
    """The rows ``rows`` of a table, as a table of its own."""
    columns = tuple(
        Column(c.name, c.kind, c.values[rows], None if c.missing is None else c.missing[rows], c.problem)
        for c in table.columns
    )
    return Table(table.role, columns, len(rows), table.numbering)
