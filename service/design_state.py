"""The state of a design as plain JSON, and reading it back as strictly as any input.

A formula fit answers with ``design``, what rebuilding its columns for new rows needs::

    {"formula": "price ~ sqft + hood",             # expanded: every term explicit
     "columns": {"price": "numeric", "sqft": "numeric", "hood": "categorical"},
     "levels": {"hood": ["a", "b", "c"],           # each categorical column's levels, sorted,
                "rooms": [2.0, 3.0, 10.0]},        # and each numeric column's in C()
     "transforms": {"poly(age, 2)": {"alpha": [...], "norms2": [...]},
                    "center(sqft)": {"center": 1.5}, "scale(age)": {"center": 3.0, "scale": 2.0},
                    "C(rooms)": {"levels": [2.0, 3.0, 10.0]}},
     "feature_names": ["sqft", "hood[T.b]", "hood[T.c]"]}

The same object comes back inside a ``model``; ``read_design_state`` reads it, its formula
through the same grammar as any formula, and answers ``InvalidInput`` naming the field
(``model``) for anything out of shape: unknown or missing keys, wrong types, sizes that
do not match the formula, non-finite numbers, unsorted or repeated levels.
"""

from __future__ import annotations

import copy
import itertools
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from service.design_functions import sorted_levels
from service.errors import InvalidInput, describe, excerpt
from service.formulas import MAX_EXPANDED, Formula, read_formula

KEYS = ("formula", "columns", "levels", "transforms", "feature_names")
KINDS = ("numeric", "categorical")
MAX_ITEMS = 100_000
TRANSFORM_KEYS = {"C": ("levels",), "poly": ("alpha", "norms2"), "center": ("center",), "scale": ("center", "scale")}


@dataclass(frozen=True)
class DesignState:
    """What rebuilds a design's columns for new rows; ``to_json`` gives its plain JSON form."""

    formula: str
    columns: dict[str, str]
    levels: dict[str, list[Any]]
    transforms: dict[str, dict[str, Any]]
    feature_names: tuple[str, ...]

    def to_json(self) -> dict[str, Any]:
        """The state as plain JSON (dicts, lists, strings, numbers, booleans)."""
        return {
            "formula": self.formula,
            "columns": dict(self.columns),
            "levels": {name: list(levels) for name, levels in self.levels.items()},
            "transforms": copy.deepcopy(self.transforms),
            "feature_names": list(self.feature_names),
        }

    def copy_transforms(self) -> dict[str, dict[str, Any]]:
        """A copy of the transforms' state that formulaic may mutate."""
        return copy.deepcopy(self.transforms)


def read_design_state(obj: object, field_name: str = "model") -> tuple[DesignState, Formula]:
    """Read a ``design`` (from an answer, or inside a ``model``) and its formula; ``InvalidInput`` naming ``field_name``."""

    def fail(what: str) -> InvalidInput:
        return InvalidInput(f"'{field_name}' has a design whose {what}.", field_name)

    if not isinstance(obj, dict):
        raise fail(f"value is {describe(obj)}, not an object")
    unknown = [k for k in obj if k not in KEYS]
    missing = [k for k in KEYS if k not in obj]
    if unknown or missing:
        raise fail(f"keys are not {', '.join(KEYS)} ({'unknown' if unknown else 'missing'}: {excerpt(str((unknown or missing)[0]))})")
    text, columns, levels, transforms, names = (obj[k] for k in KEYS)
    if not isinstance(text, str) or len(text) > MAX_EXPANDED:
        raise fail("formula is not a string of the allowed length")
    if not isinstance(columns, dict) or len(columns) > MAX_ITEMS or any(v not in KINDS for v in columns.values()):
        raise fail("columns are not an object of 'numeric' and 'categorical' columns")
    try:
        formula = read_formula(text, [str(k) for k in columns], max_length=MAX_EXPANDED)
    except InvalidInput as error:
        raise fail(f"formula cannot be read: {error.detail}") from None
    if formula.expanded != text:
        raise fail(f"formula is not written out term by term (expected {excerpt(formula.expanded, 80)!r})")
    if set(columns) != set(formula.target_columns) | set(formula.term_columns):
        raise fail("columns are not the columns its formula uses")
    if any(columns[c] != "numeric" for c in formula.target_columns):
        raise fail("targets are not numeric columns")
    in_c = {f.columns[0] for f in formula.factors.values() if f.call == "C"}
    read_levels(levels, {c for c in formula.term_columns if columns[c] == "categorical" or c in in_c}, columns, fail)
    read_transforms(transforms, formula, fail)
    if not isinstance(names, list) or len(names) > MAX_ITEMS or not all(isinstance(n, str) for n in names):
        raise fail("feature_names are not a list of strings")
    return DesignState(text, dict(columns), dict(levels), dict(transforms), tuple(names)), formula


def read_levels(levels: object, expected: set[str], columns: dict[str, str], fail: Any) -> None:
    """Check the levels: per categorical column (and numeric column in ``C()``) a sorted list of distinct values."""
    if not isinstance(levels, dict) or set(levels) != expected:
        raise fail("levels are not one list per categorical column and per numeric column in C()")
    for name, values in levels.items():
        if not isinstance(values, list) or not values or len(values) > MAX_ITEMS:
            raise fail(f"levels of {excerpt(name)!r} are not a non-empty list")
        if columns[name] == "numeric":
            if not all(is_number(v) for v in values) or any(b <= a for a, b in itertools.pairwise(values)):
                raise fail(f"levels of {excerpt(name)!r} are not distinct numbers in increasing order")
            continue
        if not all(isinstance(v, (str, bool)) for v in values):
            raise fail(f"levels of {excerpt(name)!r} are not strings or booleans")
        if sorted_levels(np.asarray(values, dtype=object)) != values:
            raise fail(f"levels of {excerpt(name)!r} are not distinct and sorted")


def read_transforms(transforms: object, formula: Formula, fail: Any) -> None:
    """Check the transforms' state: one entry per stateful term of the formula, each of its shape."""
    stateful = {f.text: f for f in formula.factors.values() if f.call in TRANSFORM_KEYS}
    if not isinstance(transforms, dict) or len(transforms) != len(stateful):
        raise fail("transforms are not one entry per C(), poly(), center() and scale() term")
    for key, state in transforms.items():
        call = key.split("(", 1)[0] if isinstance(key, str) else None
        if call not in TRANSFORM_KEYS or not isinstance(state, dict) or set(state) != set(TRANSFORM_KEYS[call]):
            raise fail(f"transform {excerpt(str(key))!r} is not the state of C(), poly(), center() or scale()")
        if call == "C":
            values = state["levels"]
            if not isinstance(values, list) or not values or len(values) > MAX_ITEMS:
                raise fail(f"transform {excerpt(key)!r} has no list of levels")
            if all(is_number(v) for v in values):
                if any(b <= a for a, b in itertools.pairwise(values)):
                    raise fail(f"transform {excerpt(key)!r} has levels that are not distinct and sorted")
            elif not all(isinstance(v, (str, bool)) for v in values):
                raise fail(f"transform {excerpt(key)!r} has levels that are not all numbers or all text")
        elif call == "poly":
            degree = stateful[key].degree if key in stateful else len(state["alpha"])
            numbers(state["alpha"], degree, False, key, fail)
            numbers(state["norms2"], degree + 1, True, key, fail)
        else:
            numbers([state["center"]], 1, False, key, fail)
            if call == "scale":
                numbers([state["scale"]], 1, True, key, fail)


def numbers(values: object, size: int, positive: bool, key: str, fail: Any) -> None:
    """Check a list of ``size`` finite numbers (positive ones if asked)."""
    if not isinstance(values, list) or len(values) != size or not all(is_number(v) for v in values):
        raise fail(f"transform {excerpt(key)!r} does not hold {size} finite numbers where it should")
    if positive and not all(v > 0 for v in values):
        raise fail(f"transform {excerpt(key)!r} holds a number that should be positive")


def is_number(value: object) -> bool:
    """A finite JSON number (not a boolean)."""
    return type(value) in (int, float) and math.isfinite(value)  # type: ignore[arg-type]
