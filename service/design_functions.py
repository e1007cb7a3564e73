"""The functions a formula may call, as formulaic evaluates them: the whole evaluation context.

formulaic evaluates a checked term (``service.expressions``) in a context that holds the
table's columns and these functions only; nothing else of Python is reachable by name
because the grammar admits no other name.

The stateful ones keep their state as plain JSON (lists and numbers) so that a ``design``
can travel in an answer and come back in a ``model``:

* ``C(x)``: ``{"levels": [...]}``, the sorted levels (code point order for text, by value
  for numbers). formulaic's own ``C`` would name a numeric level ``C(rooms)[T.3.0]``; this
  one turns whole numbers into ``3`` as patsy and statsmodels name them for an integer
  column (``C(rooms)[T.3]``), keeping the order by value.
* ``poly(x, degree)``: ``{"alpha": [...], "norms2": [...]}``. formulaic's ``poly`` is R's
  (the same monic orthogonal polynomials, normalised; checked against R to 1e-12 in the
  tests), but keeps its state in dicts keyed by ints; this wrapper stores lists, and
  refuses a degree that is not below the number of distinct values, as R's ``poly`` does.
* ``center(x)``: ``{"center": mean}``; ``scale(x)``: ``{"center": mean, "scale": sd}``
  with the ``n - 1`` standard deviation, as R's ``scale``. Written here rather than taken
  from formulaic, whose state holds numpy scalars and a ``ddof``.

``context(training=False)`` gives functions that refuse to learn a state: rebuilding a
design for new rows must use the training state, never quietly compute a new one.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
from formulaic.transforms.contrasts import C as categorical  # noqa: N811 - formulaic names it C
from formulaic.transforms.poly import poly as formulaic_poly
from formulaic.utils.stateful_transforms import stateful_transform


class DesignError(ValueError):
    """A term cannot be computed from the data (a constant column in ``scale``, a too high degree)."""


class MissingState(DesignError):
    """A stateful term has no state to rebuild from (the design is not the one its formula makes)."""


def level_label(value: object) -> str:
    """The label of a level in a column name: whole numbers without ``.0``, as patsy names an int column's."""
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() and abs(value) < 2**53 else repr(value)
    return str(value)


def sorted_levels(values: np.ndarray) -> list[Any]:
    """The distinct values in R's level order: by value for numbers, by code point for text, False before True."""
    return levels_and_codes(values)[0]


def categories(levels: list[Any]) -> pd.Index:
    """A column's levels as formulaic is given them: Python objects (from pandas' str dtype it codes them more slowly)."""
    return pd.Index(levels, dtype=object)


def levels_and_codes(values: np.ndarray) -> tuple[list[Any], np.ndarray | None]:
    """``sorted_levels``, and for text and booleans the code of each value among them, from one hash pass.

    Looking each value up in the levels afterwards (``get_indexer``) would cost five times
    the hash pass; here only the few distinct values are placed among the levels.
    """
    if values.dtype.kind == "f":
        return [float(v) for v in np.unique(values)], None
    found, uniques = pd.factorize(values, sort=False)
    distinct = list(uniques)
    if all(isinstance(v, bool) for v in distinct):
        levels = sorted(distinct)
    else:
        levels = sorted(distinct, key=lambda v: ("true" if v else "false") if isinstance(v, bool) else v)
    if not levels:  # nothing but missing values (code -1)
        return levels, found
    order = {level: k for k, level in enumerate(levels)}  # a handful of values: a dict, not a pandas Index (0.35 ms)
    place = np.fromiter((order[v] for v in distinct), dtype=np.intp, count=len(distinct))
    return levels, np.where(found >= 0, place[found], -1)


def make_context(*, training: bool) -> dict[str, Callable[..., Any]]:
    """The functions of the grammar, learning their state when ``training``, else only using it."""

    def learn(state: dict[str, Any], name: str) -> bool:
        if state:
            return False
        if not training:
            raise MissingState(f"The design has no state for {name}.")
        return True

    @stateful_transform  # type: ignore[untyped-decorator]
    def C(data: Any, _state: dict[str, Any]) -> Any:  # noqa: N802 - the grammar's name
        if isinstance(data, pd.Series) and isinstance(data.dtype, pd.CategoricalDtype):
            levels = list(data.cat.categories)
            if learn(_state, "C()"):
                _state["levels"] = levels
            return categorical(data)
        values = np.asarray(data, dtype=np.float64)
        if learn(_state, "C()"):
            _state["levels"] = [float(v) for v in np.unique(values)]
        known = np.asarray(_state["levels"], dtype=np.float64)
        codes = np.minimum(np.searchsorted(known, values), len(known) - 1)
        if not np.array_equal(known[codes], values):
            # rebuild_design checks new rows' levels first; this only guards that check
            raise DesignError("C() met a value that is not one of its levels.")
        labels = [level_label(v) for v in _state["levels"]]
        return categorical(pd.Categorical.from_codes(codes, categories=labels))

    @stateful_transform  # type: ignore[untyped-decorator]
    def poly(data: Any, degree: int, _state: dict[str, Any]) -> Any:
        values = np.asarray(data, dtype=np.float64)
        inner: dict[str, Any] = {}
        if learn(_state, "poly()"):
            distinct = len(np.unique(values))
            if degree >= distinct:
                raise DesignError(f"poly() needs a degree below the number of distinct values ({distinct}); got {degree}.")
        else:
            inner = {"alpha": dict(enumerate(_state["alpha"])), "norms2": dict(enumerate(_state["norms2"]))}
        result = formulaic_poly(values, degree, _state=inner)
        if not _state:
            _state["alpha"] = [float(inner["alpha"][k]) for k in range(degree)]
            _state["norms2"] = [float(inner["norms2"][k]) for k in range(degree + 1)]
        return result

    @stateful_transform  # type: ignore[untyped-decorator]
    def center(data: Any, _state: dict[str, Any]) -> Any:
        values = np.asarray(data, dtype=np.float64)
        if learn(_state, "center()"):
            _state["center"] = float(values.mean())
        return values - _state["center"]

    @stateful_transform  # type: ignore[untyped-decorator]
    def scale(data: Any, _state: dict[str, Any]) -> Any:
        values = np.asarray(data, dtype=np.float64)
        if learn(_state, "scale()"):
            if values.size < 2:
                raise DesignError("scale() needs at least 2 rows to compute a standard deviation.")
            mean = float(values.mean())
            sd = float(np.sqrt(np.sum((values - mean) ** 2) / (values.size - 1)))
            if not sd > 0:
                raise DesignError("scale() of a constant has a standard deviation of 0 and cannot be scaled.")
            _state.update(center=mean, scale=sd)
        return (values - _state["center"]) / _state["scale"]

    def identity(data: Any) -> Any:
        return data

    return {
        "C": C,
        "I": identity,
        "log": np.log,
        "log2": np.log2,
        "log10": np.log10,
        "exp": np.exp,
        "sqrt": np.sqrt,
        "abs": np.abs,
        "poly": poly,
        "center": center,
        "scale": scale,
    }
