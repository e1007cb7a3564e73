"""Laws of the formula stage over generated formulas: a 422 or a design, never another error.

Formulas are drawn from the grammar (columns, numbers, arithmetic, every function, ``:``,
``*``, ``-``, ``- 1``, ``.``, powers) and from loose pieces of formula text; whatever reads
builds a design, and the design's state rebuilds the very same columns.
"""

from __future__ import annotations

import warnings

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from service.errors import InvalidInput
from service.formula_design import build_design, rebuild_design
from service.formulas import read_formula
from tests.formula_tables import table

DATA = table(
    y=[1.0, 2.0, 3.5, 4.0, 0.0, -1.0, 2.0],
    x=[0.5, 2.0, 3.0, 1.0, 0.0, 2.0, 7.0],
    z=[1.0, 1.0, 2.0, 3.0, 2.0, None, 4.0],
    hood=["a", "b", "a", "c", None, "b", "c"],
    g=[True, False, True, True, False, False, True],
    **{"a b": [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 6.0]},
)
NUMERIC = st.sampled_from(["x", "z", "`a b`"])
ANY = st.sampled_from(["x", "z", "`a b`", "hood", "g"])
NUMBER = st.sampled_from(["0", "1", "2", "0.5", "-1", "10", "1e3"])
FUNCTION = st.sampled_from(["log", "exp", "sqrt", "abs", "log2", "log10", "I"])
EXPRESSION = st.recursive(
    st.one_of(NUMERIC, NUMBER),
    lambda inner: st.one_of(
        st.tuples(inner, st.sampled_from([" + ", " - ", " * ", " / ", " ** "]), inner).map(lambda t: "(" + "".join(t) + ")"),
        st.tuples(FUNCTION, inner).map(lambda t: f"{t[0]}({t[1]})"),
    ),
    max_leaves=4,
)
FACTOR = st.one_of(
    ANY,
    EXPRESSION.map(lambda e: f"I({e})"),
    st.tuples(st.sampled_from(["log", "sqrt", "exp", "center", "scale"]), NUMERIC).map(lambda t: f"{t[0]}({t[1]})"),
    st.tuples(NUMERIC, st.integers(1, 4)).map(lambda t: f"poly({t[0]}, {t[1]})"),
    ANY.map(lambda c: f"C({c})"),
)
TERM = st.lists(FACTOR, min_size=1, max_size=3).map(":".join)
RIGHT = st.tuples(
    TERM,
    st.lists(st.tuples(st.sampled_from([" + ", " - ", " * "]), TERM), max_size=4),
    st.sampled_from(["", " - 1", " + 0", " + .", ")**2"]),
).map(lambda t: ("(" if t[2] == ")**2" else "") + t[0] + "".join(a + b for a, b in t[1]) + t[2])
LEFT = st.sampled_from(["y", "log(y + 2)", "y + x", "I(y * 2)"])
PIECES = st.lists(
    st.sampled_from(["y", "x", "`a b`", "`", "~", "+", "-", "*", "**", ":", "/", "(", ")", "^", ".", "0", "1", "2",
                     "'s'", "{", "}", "[", "]", "|", "%in%", ",", " ", "I(", "log(", "C(", "poly(", "__", "\\", "=", "\u00e9"]),
    max_size=25,
).map("".join)


def check(text: str) -> None:
    """Read, build and rebuild ``text``: a 422, or a design whose state rebuilds its columns."""
    try:
        formula = read_formula(text, DATA.names)
        design = build_design(formula, DATA)
    except InvalidInput:
        return
    again = rebuild_design(design.state, DATA)
    position = np.cumsum(again.rows) - 1
    np.testing.assert_array_equal(again.matrix[position[design.rows]], design.matrix)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(LEFT, RIGHT)
def test_grammatical_formulas_build_and_rebuild_or_are_a_422(left: str, right: str) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check(f"{left} ~ {right}")


@settings(max_examples=200, deadline=None)
@given(PIECES)
def test_loose_formula_text_is_a_422_or_a_design(text: str) -> None:
    check(text)
    check("y ~ " + text)
