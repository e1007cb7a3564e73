"""The design of a formula whose terms are plain numeric columns, built without formulaic."""

from __future__ import annotations

import dataclasses
from typing import Any

import formulaic
import numpy as np
import pandas as pd
import patsy
import pytest

import service.formula_design
from service.design_columns import other_terms, plain_columns
from service.formula_design import build_design, rebuild_design
from service.formulas import read_formula
from service.table import Table
from tests.formula_tables import table

DATA = table(
    y=[1.0, 2.5, 2.0, 4.0, 5.5, 6.0, 8.5],
    a=[0.5, 1.0, None, 3.0, 4.5, 5.0, 6.0],
    **{"b c": [7.0, 1.0, 2.0, 9.0, 3.0, 8.0, 4.0]},
    w=[1.0, 2.0, 1.0, None, 1.0, 0.5, 1.0],
    h=["p", "q", "p", "q", "p", "q", "p"],
)
NUMERIC = Table("train", tuple(DATA[name] for name in ("y", "a", "b c", "w")), DATA.rows)

#: Formulas of plain numeric columns, with the weight column when one is given.
PLAIN = [
    ("y ~ .", None), ("y ~ .", "w"), ("y ~ `b c` + a", "w"), ("y ~ a - 1", None),
    ("y + a ~ `b c`", None), ("y ~ y + a", None), ("a ~ . - w", None),
]  # fmt: skip


def design(text: str, data: Table = NUMERIC, weight: str | None = None) -> Any:
    return build_design(read_formula(text, data.names, weight=weight), data, weight=weight)


def by_formulaic(monkeypatch: pytest.MonkeyPatch, text: str, weight: str | None = None) -> Any:
    """The same design as formulaic builds it."""
    with monkeypatch.context() as patch:
        patch.setattr(service.formula_design, "plain_columns", lambda *args: False)
        return design(text, weight=weight)


@pytest.mark.parametrize(("text", "weight"), PLAIN)
def test_a_plain_design_is_the_design_formulaic_builds(monkeypatch: pytest.MonkeyPatch, text: str, weight: str | None) -> None:
    built, reference = design(text, weight=weight), by_formulaic(monkeypatch, text, weight)
    assert np.array_equal(built.matrix, reference.matrix) and np.array_equal(built.targets, reference.targets)
    assert built.matrix.shape == reference.matrix.shape and built.targets.shape == reference.targets.shape
    assert (built.feature_names, built.target_names, built.intercept) == (
        reference.feature_names, reference.target_names, reference.intercept,
    )  # fmt: skip
    assert np.array_equal(built.rows, reference.rows) and built.state == reference.state


def test_a_plain_design_holds_the_columns_patsy_gives(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("formulaic evaluated a design of plain columns")

    monkeypatch.setattr(formulaic.Formula, "get_model_matrix", refuse)
    built = design("y ~ a + `b c`")
    frame = pd.DataFrame({name: NUMERIC[name].values for name in ("y", "a", "b c")}).dropna()
    targets, terms = patsy.dmatrices("y ~ a + Q('b c')", frame, return_type="dataframe")
    assert built.feature_names == ("a", "b c") and built.rows.tolist() == [True, True, False, True, True, True, True]
    assert np.array_equal(built.matrix, terms.to_numpy()[:, 1:]) and np.array_equal(built.targets, targets.to_numpy())
    assert built.matrix.flags.c_contiguous and built.targets.flags.c_contiguous and built.matrix.dtype == np.float64
    assert built.state["transforms"] == {} and built.state["levels"] == {}


@pytest.mark.parametrize(
    ("text", "plain"),
    [
        ("y ~ a + `b c`", True),
        ("y ~ log(a)", False),
        ("y ~ C(a)", False),
        ("y ~ a:`b c`", False),
        ("y ~ a + h", False),
        ("log(y) ~ a", False),
        ("y ~ I(a)", False),
    ],
)
def test_only_numeric_columns_as_they_are_skip_formulaic(text: str, plain: bool) -> None:
    formula = read_formula(text, DATA.names)
    kinds = {name: DATA[name].kind for name in DATA.names}
    assert plain_columns(formula, kinds) is plain


@pytest.mark.parametrize("text", ["y ~ .", "y ~ a + `b c`", "y ~ log(a)", "y ~ a:h", "y ~ a + h", "log(y) ~ h - 1", "y ~ poly(a, 2)"])
def test_formulaic_reads_no_text_once_the_formula_is_read(monkeypatch: pytest.MonkeyPatch, text: str) -> None:
    # formulaic builds (and rebuilds) a design from the terms its parser read in read_formula:
    # no text written out again reaches it, so no column name can smuggle a term into it
    data = DATA if "h" in text else NUMERIC
    formula = read_formula(text, data.names)
    expected = build_design(formula, data)

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("formulaic parsed a text")

    monkeypatch.setattr(formulaic.parser.DefaultFormulaParser, "get_terms", refuse)
    built = build_design(formula, data)
    assert built.feature_names == expected.feature_names
    assert np.array_equal(built.matrix, expected.matrix) and np.array_equal(built.targets, expected.targets)
    assert np.array_equal(rebuild_design(built.state, data, field="test").matrix, expected.matrix[: built.rows.sum()])


def test_a_design_has_the_terms_read_whatever_its_text_says() -> None:
    formula = read_formula("y ~ a:h", DATA.names)
    altered = dataclasses.replace(formula, expanded="y ~ a:h + `b c`")  # as if a name had smuggled a term in
    assert build_design(altered, DATA).feature_names == build_design(formula, DATA).feature_names == ("a:h[p]", "a:h[q]")


def test_a_target_whose_name_holds_a_tilde_rebuilds_its_terms() -> None:
    # the right side is written apart, not cut from the whole text at its first ' ~ '
    data = table(**{"a ~ b": [1.0, 2.0, 4.0, 3.0, 6.0]}, x=[1.0, 2.0, 3.0, 4.0, 5.0], h=["p", "q", "p", "q", "p"])
    for text in ["`a ~ b` ~ x + h", "`a ~ b` ~ x:h"]:
        built = build_design(read_formula(text, data.names), data)
        again = rebuild_design(built.state, data, field="test")
        assert np.array_equal(again.matrix, built.matrix)


#: Formulas of one-factor terms with plain numeric columns among others: formulaic builds the others alone.
MIXED = [
    ("y ~ a + h", None), ("y ~ h + a - 1", None), ("y ~ .", None), ("y ~ . - 1", "w"),
    ("y ~ log(`b c`) + a + h", None), ("y ~ a + C(h) + `b c`", None), ("y ~ poly(a, 2) + `b c` + h", None),
    ("y + a ~ h + `b c`", None), ("y ~ C(`b c`) + a", None),
]  # fmt: skip


def by_formulaic_whole(monkeypatch: pytest.MonkeyPatch, text: str, weight: str | None) -> Any:
    """The design as formulaic builds it with every term."""
    with monkeypatch.context() as patch:
        patch.setattr(service.formula_design, "other_terms", lambda *args: None)
        return design(text, DATA, weight=weight)


@pytest.mark.parametrize(("text", "weight"), MIXED)
def test_plain_columns_beside_the_terms_formulaic_builds_give_its_whole_design(
    monkeypatch: pytest.MonkeyPatch, text: str, weight: str | None
) -> None:
    formula = read_formula(text, DATA.names, weight=weight)
    assert other_terms(formula, {name: DATA[name].kind for name in DATA.names}) is not None
    built, reference = design(text, DATA, weight=weight), by_formulaic_whole(monkeypatch, text, weight)
    assert built.matrix.shape == reference.matrix.shape and built.matrix.flags.c_contiguous
    assert np.array_equal(built.matrix, reference.matrix) and np.array_equal(built.targets, reference.targets)
    assert (built.feature_names, built.column_terms, built.target_names, built.intercept) == (
        reference.feature_names, reference.column_terms, reference.target_names, reference.intercept,
    )  # fmt: skip
    assert np.array_equal(built.rows, reference.rows) and built.state == reference.state
    again = rebuild_design(built.state, DATA, field="test")  # new rows are built from the whole formula
    both = again.rows & built.rows  # new rows need no target (or weight)
    assert np.array_equal(again.matrix[both[again.rows]], built.matrix[both[built.rows]])
    assert again.feature_names == built.feature_names


@pytest.mark.parametrize("text", ["y ~ a:h + a", "log(y) ~ a + h", "y ~ a + h:`b c`", "y ~ h + C(h)"])
def test_formulaic_builds_the_whole_design_of_products_and_computed_targets(text: str) -> None:
    formula = read_formula(text, DATA.names)
    kinds = {name: DATA[name].kind for name in DATA.names}
    assert other_terms(formula, kinds) is None


def test_formulaic_is_given_only_the_terms_it_must_build(monkeypatch: pytest.MonkeyPatch) -> None:
    given: list[list[str]] = []
    original = service.formula_design.ModelSpec

    def spy(formula: Any, **kwargs: Any) -> Any:
        given.append([str(term) for term in formula])
        return original(formula=formula, **kwargs)

    monkeypatch.setattr(service.formula_design, "ModelSpec", spy)
    design("y ~ . - 1", DATA, weight="w")
    assert given == [["h"]]  # no intercept term: 'h - 1'
    design("y ~ a + h", DATA)
    assert given[1:] == [["1", "h"]]


TEXTS = table(
    y=[1.0, 2.5, 2.0, 4.0, 5.5, 6.0, 8.5, 7.0],
    a=[0.5, 1.0, 2.0, 3.0, 4.5, 5.0, 6.0, 6.5],
    h=["p", "q", "r", "q", "p", "r", "r", "q"],
    k=["u", "v", "u", "v", "v", "u", "v", "u"],
    b=[True, False, False, True, True, False, True, False],
)


@pytest.mark.parametrize(
    ("text", "frame_rows"),
    [("y ~ a + h + k", 3), ("y ~ k + a + b - 1", 2), ("y ~ .", 3), ("y ~ b + h + a", 3), ("y ~ h + a + log(a)", 8)],
)
def test_text_columns_coded_from_their_levels_give_formulaic_s_whole_design(
    monkeypatch: pytest.MonkeyPatch, text: str, frame_rows: int
) -> None:
    # formulaic codes a frame of one row a level (the columns cycling through theirs), and each
    # design row takes its level's row: the same design as formulaic's of the whole table
    sizes: list[int] = []
    original = service.formula_design.ModelSpec

    class Spy:
        def __init__(self, **kwargs: Any) -> None:
            self.spec = original(**kwargs)

        def get_model_matrix(self, frame: pd.DataFrame, **kwargs: Any) -> Any:
            sizes.append(len(frame))
            return self.spec.get_model_matrix(frame, **kwargs)

    monkeypatch.setattr(service.formula_design, "ModelSpec", Spy)
    built = build_design(read_formula(text, TEXTS.names), TEXTS)
    assert sizes == [frame_rows]  # the most levels of a text column; the table's rows beside a computed term
    monkeypatch.setattr(service.formula_design, "ModelSpec", original)
    monkeypatch.setattr(service.formula_design, "other_terms", lambda *args: None)
    reference = build_design(read_formula(text, TEXTS.names), TEXTS)
    assert np.array_equal(built.matrix, reference.matrix) and built.matrix.flags.c_contiguous
    assert (built.feature_names, built.column_terms, built.state) == (reference.feature_names, reference.column_terms, reference.state)


ONE_LEVEL = table(y=[1.0, 2.0, 3.0, 5.0], a=[1.0, 3.0, 2.0, 4.0], h=["p", "p", "p", "p"], k=["u", "v", "u", "v"])


@pytest.mark.parametrize("text", ["y ~ a + h", "y ~ h + a + k", "y ~ a + h - 1", "y ~ a + k + h - 1"])
def test_a_term_without_columns_keeps_the_others_in_place(monkeypatch: pytest.MonkeyPatch, text: str) -> None:
    # A text column of one level has no column under treatment coding (one group's rows, say).
    built = build_design(read_formula(text, ONE_LEVEL.names), ONE_LEVEL)
    with monkeypatch.context() as patch:
        patch.setattr(service.formula_design, "other_terms", lambda *args: None)
        reference = build_design(read_formula(text, ONE_LEVEL.names), ONE_LEVEL)
    assert np.array_equal(built.matrix, reference.matrix)
    assert (built.feature_names, built.column_terms) == (reference.feature_names, reference.column_terms)
