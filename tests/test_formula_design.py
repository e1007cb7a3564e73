"""The design of a formula: columns, names, order, levels, missing rows, state, and rebuilding for new rows."""

from __future__ import annotations

import copy
import tracemalloc
from typing import Any

import numpy as np
import orjson
import pandas as pd
import pytest

from service.design_functions import levels_and_codes, sorted_levels
from service.design_state import read_design_state
from service.errors import InvalidInput
from service.formula_design import build_design, first_missing, rebuild_design
from service.formulas import read_formula
from service.table import Table
from tests.formula_tables import table

HOUSES = table(
    price=[200.0, 260.0, 150.0, 310.0, 190.0, 280.0, 230.0, 175.0],
    sqft=[70.0, 85.0, 50.0, 120.0, 66.0, 101.0, 88.0, 61.0],
    hood=["b", "a", "c", "B", "a", "b", "c", "B"],
    rooms=[10.0, 2.0, 3.0, 2.5, 2.0, 10.0, 3.0, 2.5],
    garage=[True, False, True, True, False, False, True, False],
)


def design(text: str, data: Table = HOUSES, **options: Any) -> Any:
    return build_design(read_formula(text, data.names, weight=options.get("weight")), data, **options)


def test_treatment_contrasts_first_level_in_code_point_order() -> None:
    built = design("price ~ sqft + hood")
    assert built.feature_names == ("sqft", "hood[T.a]", "hood[T.b]", "hood[T.c]")  # 'B' < 'a' by code point
    assert built.state["levels"] == {"hood": ["B", "a", "b", "c"]}
    assert built.intercept
    rows_b = np.array([v == "b" for v in HOUSES["hood"].values])
    np.testing.assert_array_equal(built.matrix[:, 2], rows_b.astype(float))


def test_numeric_column_in_c_has_levels_by_value_named_as_patsy_names_integers() -> None:
    built = design("price ~ C(rooms)")
    assert built.feature_names == ("C(rooms)[T.2.5]", "C(rooms)[T.3]", "C(rooms)[T.10]")
    assert built.state["transforms"] == {"C(rooms)": {"levels": [2.0, 2.5, 3.0, 10.0]}}
    assert built.state["levels"] == {"rooms": [2.0, 2.5, 3.0, 10.0]}


def test_boolean_column_is_categorical() -> None:
    assert design("price ~ garage").feature_names == ("garage[T.True]",)


def test_interactions_are_named_as_patsy_and_the_left_factor_varies_fastest() -> None:
    data = table(y=[1.0, 2, 3, 4, 5, 6, 7, 8, 9], hood=list("abcabcabc"), g=list("pqrrqppqr"), x=[1.0, 2, 3, 4, 5, 6, 7, 8, 9])
    assert design("y ~ x*hood", data).feature_names == ("x", "hood[T.b]", "hood[T.c]", "x:hood[T.b]", "x:hood[T.c]")
    assert design("y ~ hood*g", data).feature_names[-4:] == (
        "hood[T.b]:g[T.q]", "hood[T.c]:g[T.q]", "hood[T.b]:g[T.r]", "hood[T.c]:g[T.r]")


def test_r_order_intercept_then_terms_by_degree() -> None:
    built = design("price ~ sqft:rooms + hood + log(sqft)")
    assert built.feature_names == ("hood[T.a]", "hood[T.b]", "hood[T.c]", "log(sqft)", "sqft:rooms")


def test_no_intercept_codes_the_first_factor_fully() -> None:
    built = design("price ~ hood - 1")
    assert not built.intercept
    assert built.feature_names == ("hood[B]", "hood[a]", "hood[b]", "hood[c]")


def test_matrix_is_c_contiguous_float64_and_targets_as_written() -> None:
    built = design("log(price) + sqft ~ rooms + I(rooms**2)")
    assert built.matrix.dtype == np.float64 and built.matrix.flags.c_contiguous
    assert built.matrix.shape == (8, 2)
    assert built.target_names == ("log(price)", "sqft")
    np.testing.assert_allclose(built.targets[:, 0], np.log(HOUSES["price"].values))
    np.testing.assert_allclose(built.matrix[:, 1], HOUSES["rooms"].values ** 2)


GAPS = table(
    y=[1.0, 2.0, None, 4.0, 5.0, 6.0],
    x=[1.0, 2.0, 3.0, None, 5.0, 7.0],
    w=[1.0, None, 1.0, 1.0, 1.0, 1.0],
    unused=[None, "a", 3.0, None, None, None],
)


def test_rows_complete_in_every_column_the_fit_uses_and_the_first_gap() -> None:
    formula = read_formula("y ~ x", GAPS.names, weight="w")
    assert first_missing(formula, GAPS) == (2, "y")
    assert first_missing(formula, GAPS, "w") == (1, "w")
    built = build_design(formula, GAPS, weight="w")
    assert built.rows.tolist() == [True, False, False, False, True, True]
    assert build_design(formula, GAPS).rows.tolist() == [True, True, False, False, True, True]
    assert first_missing(read_formula("x ~ w", GAPS.names), table(x=[1.0, 2.0], w=[3.0, 4.0])) is None


def test_stateful_terms_learn_from_the_rows_used() -> None:
    built = build_design(read_formula("y ~ center(x) + scale(x)", GAPS.names), GAPS)
    used = np.array([1.0, 2.0, 5.0, 7.0])
    assert built.state["transforms"]["center(x)"] == {"center": used.mean()}
    assert built.state["transforms"]["scale(x)"] == {"center": used.mean(), "scale": used.std(ddof=1)}


def test_new_rows_get_the_same_columns_as_the_fit() -> None:
    text = "log(price) ~ sqft*hood + C(rooms) + poly(sqft, 2) + center(sqft) + scale(rooms) + garage"
    built = design(text)
    again = rebuild_design(orjson.loads(orjson.dumps(built.state)), HOUSES)
    assert again.feature_names == built.feature_names
    np.testing.assert_array_equal(again.matrix, built.matrix)
    coef = np.linalg.lstsq(np.column_stack([np.ones(8), built.matrix]), built.targets[:, 0], rcond=None)[0]
    subset = Table("test", tuple(c for c in HOUSES.columns if c.name != "price"), 8)
    new = rebuild_design(built.state, subset, field="model")
    np.testing.assert_allclose(new.matrix @ coef[1:], built.matrix @ coef[1:], rtol=0, atol=0)


def test_test_rows_with_gaps_are_marked_and_extra_columns_ignored() -> None:
    built = build_design(read_formula("y ~ x", GAPS.names), GAPS)
    test = table("test", x=[1.0, None, 3.0], other=["q", None, 1.0])
    new = rebuild_design(built.state, test)
    assert new.rows.tolist() == [True, False, True]
    assert new.matrix.tolist() == [[1.0], [3.0]]


def refused(call: Any, field: str, *pieces: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        call()
    assert caught.value.field == field
    for piece in pieces:
        assert piece in caught.value.detail


def test_a_level_training_did_not_have_names_test_column_row_and_level() -> None:
    built = design("price ~ hood + C(rooms)")
    test = table("test", hood=["a", "b", "z"], rooms=[2.0, 3.0, 10.0])
    refused(lambda: rebuild_design(built.state, test), "test", "'hood'", "row 2", '"z"')
    test = table("test", hood=["a", "b", "c"], rooms=[2.0, 7.0, 10.0])
    refused(lambda: rebuild_design(built.state, test), "test", "'rooms'", "row 1", "level 7 ")
    quoted = design("price ~ C(`n rooms`)", table(price=[1.0, 2.0, 3.0], **{"n rooms": [2.0, 3.0, 2.0]}))
    between = table("test", **{"n rooms": [3.0, 2.5]})
    refused(lambda: rebuild_design(quoted.state, between), "test", "'n rooms'", "row 1", "level 2.5 ")


def test_test_needs_the_right_side_columns_of_the_same_kinds() -> None:
    built = design("price ~ hood + sqft")
    refused(lambda: rebuild_design(built.state, table("test", hood=["a"])), "test", "no column 'sqft'")
    refused(lambda: rebuild_design(built.state, table("test", hood=["a"], sqft=["big"])), "test", "'sqft'", "numeric")


def test_a_removed_term_does_not_constrain_the_design() -> None:
    built = design("price ~ hood + C(rooms) + log(hood) - C(rooms) - log(hood)")
    assert built.feature_names == ("hood[T.a]", "hood[T.b]", "hood[T.c]")
    assert set(built.state["levels"]) == {"hood"}
    assert rebuild_design(built.state, HOUSES).feature_names == built.feature_names


def test_columns_of_the_wrong_kind_for_the_formula() -> None:
    refused(lambda: design("price ~ log(hood)"), "train", "'hood'", "must be numeric")
    refused(lambda: design("hood ~ sqft"), "train", "'hood'", "must be numeric")


def test_values_a_function_cannot_take_name_the_column_and_row() -> None:
    data = table(y=[1.0, 2.0, 3.0], x=[1.0, 0.0, 2.0])
    refused(lambda: design("y ~ log(x)", data), "train", "'log(x)'", "row 1")


def test_terms_that_cannot_be_computed() -> None:
    data = table(y=[1.0, 2.0, 3.0], x=[1.0, 1.0, 2.0], c=[5.0, 5.0, 5.0])
    refused(lambda: design("y ~ poly(x, 2)", data), "train", "degree below the number of distinct values (2)")
    refused(lambda: design("y ~ scale(c)", data), "train", "standard deviation of 0")


def test_width_is_bounded_before_the_design_is_built() -> None:
    data = table(y=[float(i) for i in range(60)], many=[f"level{i}" for i in range(60)])
    refused(lambda: design("y ~ many", data, max_columns=50), "formula", "more than 50 design columns")
    assert len(design("y ~ many", data).feature_names) == 59


STATE = design("price ~ sqft*hood + C(rooms) + poly(sqft, 2) + center(sqft) + scale(rooms)").state


def changed(path: tuple[Any, ...], value: Any) -> Any:
    state = copy.deepcopy(STATE)
    if not path:
        return value
    target = state
    for key in path[:-1]:
        target = target[key]
    if value is KeyError:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return state


BAD_STATES = [
    ("not an object", (), [1, 2]),
    ("missing key", ("levels",), KeyError),
    ("unknown key", ("extra",), 1),
    ("formula not a string", ("formula",), 3),
    ("hostile formula", ("formula",), "price ~ I(__import__('os').getpid())"),
    ("formula with a dot", ("formula",), "price ~ ."),
    ("formula not expanded", ("formula",), "price ~ sqft*hood + C(rooms) + poly(sqft,2) + center(sqft) + scale(rooms)"),
    ("column kind unknown", ("columns", "hood"), "text"),
    ("column missing", ("columns", "rooms"), KeyError),
    ("target categorical", ("columns", "price"), "categorical"),
    ("levels unsorted", ("levels", "hood"), ["a", "B", "b", "c"]),
    ("levels repeated", ("levels", "hood"), ["B", "a", "a", "c"]),
    ("levels numbers", ("levels", "hood"), [1, 2]),
    ("levels empty", ("levels", "hood"), []),
    ("numeric levels missing", ("levels", "rooms"), KeyError),
    ("numeric levels unsorted", ("levels", "rooms"), [3.0, 2.0]),
    ("numeric levels text", ("levels", "rooms"), ["2", "3"]),
    ("transform missing", ("transforms", "center(sqft)"), KeyError),
    ("poly alpha too short", ("transforms", "poly(sqft, 2)", "alpha"), [1.0]),
    ("poly norms not positive", ("transforms", "poly(sqft, 2)", "norms2"), [8.0, 0.0, 1.0]),
    ("center NaN", ("transforms", "center(sqft)", "center"), float("nan")),
    ("center a boolean", ("transforms", "center(sqft)", "center"), True),
    ("scale negative", ("transforms", "scale(rooms)", "scale"), -1.0),
    ("scale a string", ("transforms", "scale(rooms)", "scale"), "1"),
    ("C levels unsorted", ("transforms", "C(rooms)", "levels"), [3.0, 2.0]),
    ("feature_names not strings", ("feature_names",), [1, 2]),
]


@pytest.mark.parametrize(("path", "value"), [b[1:] for b in BAD_STATES], ids=[b[0] for b in BAD_STATES])
def test_a_design_in_a_model_is_read_strictly(path: tuple[Any, ...], value: Any) -> None:
    refused(lambda: read_design_state(changed(path, value), "model"), "model", "'model'")


def test_a_design_that_does_not_rebuild_its_columns_is_refused() -> None:
    test = Table("test", tuple(c for c in HOUSES.columns if c.name != "price"), 8)
    renamed = changed(("feature_names",), [*STATE["feature_names"][:-1], "other"])
    refused(lambda: rebuild_design(renamed, test), "model", "feature_names")
    moved = copy.deepcopy(STATE)
    moved["transforms"]["center(rooms)"] = moved["transforms"].pop("center(sqft)")
    refused(lambda: rebuild_design(moved, test), "model", "state")


def test_state_is_plain_json() -> None:
    assert orjson.loads(orjson.dumps(STATE)) == STATE
    assert read_design_state(STATE)[0].to_json() == STATE


def test_no_complete_row_is_refused() -> None:
    data = table(y=[1.0, None], x=[None, 2.0])
    refused(lambda: design("y ~ x", data), "train", "no row without a missing value", "'y'")


def test_building_a_design_holds_little_more_than_the_matrix() -> None:
    rng = np.random.default_rng(1)
    rows = 50_000
    columns = {f"x{i}": rng.standard_normal(rows).tolist() for i in range(10)}
    data = table(y=rng.standard_normal(rows).tolist(), hood=[f"h{i % 5}" for i in range(rows)], **columns)
    formula = read_formula("y ~ .", data.names)
    tracemalloc.start()
    try:
        built = build_design(formula, data)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert built.matrix.shape == (rows, 14)
    assert peak < 1.15 * (built.matrix.nbytes + built.targets.nbytes)  # formulaic codes hood's 5 levels, not its rows


ARITHMETIC_FAULTS = ["y ~ I(x / 0)", "y ~ I(1 / 0 + x)", "y ~ exp(x * 1000)", "y ~ log(-x)", "y ~ sqrt(-x)",
                     "y ~ I(x * 1" + "0" * 400 + ")", "y ~ I(x ** -100 * 0)"]


@pytest.mark.parametrize("text", ARITHMETIC_FAULTS)
def test_arithmetic_that_fails_is_a_422_naming_train(text: str) -> None:
    data = table(y=[1.0, 2.0, 3.0], x=[1.0, 0.0, 2.0])
    refused(lambda: design(text, data), "train")


@pytest.mark.parametrize(
    "values",
    [["b", "a", None, "B", "b", "é"], [True, False, True], [None, None], [], ["x"] * 5 + ["a"]],
    ids=["text", "booleans", "missing only", "empty", "repeated"],
)
def test_levels_and_codes_are_the_levels_and_each_value_looked_up_in_them(values: list[Any]) -> None:
    array = np.array(values, dtype=object)
    levels, codes = levels_and_codes(array)
    assert levels == sorted_levels(array)
    assert codes is not None
    expected = pd.Index(levels, dtype=object).get_indexer(array) if levels else np.full(len(values), -1)
    np.testing.assert_array_equal(codes, expected)


def test_a_wide_table_s_design_is_read_back_for_new_rows() -> None:
    # 'y ~ .' on 700 columns writes out longer than a client's formula may be (10,000 characters)
    rng = np.random.default_rng(7)
    names = [f"feature_number_{j:04d}" for j in range(700)]
    data = table(**{name: rng.normal(size=720).tolist() for name in [*names, "y"]})
    built = build_design(read_formula("y ~ .", data.names), data)
    assert len(built.state["formula"]) > 10_000
    again = rebuild_design(orjson.loads(orjson.dumps(built.state)), data, field="model")
    assert np.array_equal(again.matrix, built.matrix)
