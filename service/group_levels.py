"""Each group's own categorical levels, as columns of the one design built on the whole table.

With treatment contrasts, the design column of a level is the indicator of that level, whatever
the reference: R's ``lm`` on a group's rows uses the levels the group has, its first (in sorted
order) as the reference, so the group's columns for a categorical term are the whole table's
indicator columns of the group's levels but its first. Where every categorical column enters
the formula as a main effect only (a term of its own, not in ``C()`` nor an interaction) and the
formula has an intercept, each group's design is therefore a choice of the whole design's
columns, and its ``design`` state the whole one's with the group's levels: no formulaic build
per group. Other formulas build each group's design on its rows (``service.grouping``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from service.design_functions import level_label
from service.errors import InvalidInput, describe, excerpt
from service.formulas import Formula
from service.table import Table

#: Factors whose design columns depend on the rows they are built from.
STATEFUL = ("C", "poly", "center", "scale")


@dataclass(frozen=True)
class GroupLevels:
    """Which of the whole design's columns each group uses, from the levels it has.

    ``presence[c]`` is (groups x levels) for categorical column ``c``; ``positions[c][k]`` the
    whole design's column of level ``k`` (-1 for the whole table's reference, level 0);
    ``base`` the columns of the other terms.
    """

    names: tuple[str, ...]
    levels: tuple[list[Any], ...]
    presence: tuple[np.ndarray, ...]
    positions: tuple[np.ndarray, ...]
    base: np.ndarray
    state: dict[str, Any]

    def columns(self, group: int) -> tuple[np.ndarray, tuple[str, ...], dict[str, Any]]:
        """The group's design columns (in the whole design's order), their names, and its design state."""
        chosen = [self.base]
        levels = dict(self.state["levels"])
        for name, values, presence, positions in zip(
            self.names, self.levels, self.presence, self.positions, strict=True
        ):
            present = np.flatnonzero(presence[group])
            chosen.append(positions[present[1:]])
            levels[name] = [values[k] for k in present]
        columns = np.sort(np.concatenate(chosen))
        names = self.state["feature_names"]
        chosen_names = tuple(names[j] for j in columns)
        return columns, chosen_names, {**self.state, "levels": levels, "feature_names": list(chosen_names)}


def main_effect_columns(formula: Formula, train: Table) -> list[str] | None:
    """The categorical columns, if each is a main effect only and there is an intercept; else ``None``."""
    if not formula.intercept or any(f.call in STATEFUL for f in formula.factors.values()):
        return None
    categorical = [name for name in formula.term_columns if train[name].kind == "categorical"]
    for term in formula.terms:
        if len(term) > 1 and any(c in categorical for f in term for c in formula.factors[f].columns):
            return None
    return categorical


def group_levels(
    names: list[str], train: Table, rows: np.ndarray, codes: np.ndarray, count: int, state: dict[str, Any]
) -> GroupLevels | None:
    """Each group's levels of each categorical column, from the design's rows (``codes``: their groups).

    ``None`` when the whole design does not name its columns as expected (then each group's
    design is built on its own).
    """
    feature_names: list[str] = state["feature_names"]
    index = {name: j for j, name in enumerate(feature_names)}
    taken: set[int] = set()
    all_levels, presence, positions = [], [], []
    for name in names:
        levels = state["levels"][name]
        wanted = [f"{name}[T.{level_label(v)}]" for v in levels[1:]]
        if any(w not in index for w in wanted):
            return None
        where = np.array([-1, *(index[w] for w in wanted)], dtype=np.int64)
        taken.update(where[1:].tolist())
        level_codes = pd.Index(levels, dtype=object).get_indexer(train[name].values[rows])
        table = np.zeros((count, len(levels)), dtype=bool)
        table[codes, level_codes] = True
        all_levels.append(levels)
        presence.append(table)
        positions.append(where)
    base = np.array([j for j in range(len(feature_names)) if j not in taken], dtype=np.int64)
    return GroupLevels(tuple(names), tuple(all_levels), tuple(presence), tuple(positions), base, state)


def check_test_levels(
    levels: GroupLevels, test: Table, test_codes: np.ndarray, complete: np.ndarray, values: tuple[Any, ...]
) -> None:
    """A test row's level that its group's training rows did not have is a 422 naming ``test`` (R refuses it too)."""
    for name, known, presence in zip(levels.names, levels.levels, levels.presence, strict=True):
        column = test[name]
        level_codes = pd.Index(known, dtype=object).get_indexer(column.values)
        rows = complete & (test_codes >= 0)
        bad = np.zeros(test.rows, dtype=bool)
        bad[rows] = ~presence[test_codes[rows], level_codes[rows]]
        if bad.any():
            row = int(np.argmax(bad))
            group = values[test_codes[row]]
            raise InvalidInput(
                f"'test' has the level {describe(column.values[row])} in column {excerpt(name)!r} at {test.where(row)}, "
                f"which the training rows of its group {excerpt(level_label(group))!r} did not have.",
                "test",
            )
