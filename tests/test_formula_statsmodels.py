"""The formula stage against statsmodels' formula API (patsy) at test time, and laws of rebuilding."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import statsmodels.formula.api as smf
from hypothesis import given, settings
from hypothesis import strategies as st

from service.formula_design import build_design, rebuild_design
from service.formulas import read_formula
from service.table import Column, Table
from tests.test_formula_references import DATA, TRAIN

FRAME = pd.read_csv(DATA / "housing.csv")
FORMULAS = [
    "price ~ sqft + hood",
    "price ~ sqft * hood",
    "price ~ sqft + I(sqft**2) + I(age / 10)",
    "log(price) ~ log(sqft) + age + garage",
    "price ~ (sqft + age + garage)**2",
    "price ~ center(sqft) + scale(age) + hood",
]


def patsy(text: str) -> str:
    return text.replace("log(", "np.log(").replace("scale(age)", "scale(age, ddof=1)")


@pytest.mark.parametrize("text", FORMULAS)
def test_names_and_coefficients_match_statsmodels(text: str) -> None:
    """Same names and estimates; patsy puts categorical-only terms first, fitserve keeps R's order.

    statsmodels is given the complete rows: patsy's center() and scale() learn a NaN from a
    gap, where fitserve's learn from the rows the fit uses; and patsy's scale() divides by
    the standard deviation with n (ddof=0), fitserve's by R's, with n - 1 (ddof=1).
    """
    formula = read_formula(text, TRAIN.names)
    complete = FRAME.dropna(subset=[*formula.target_columns, *formula.term_columns])
    expected = smf.ols(patsy(text), complete).fit()
    built = build_design(formula, TRAIN)
    X = np.column_stack([np.ones(len(built.matrix)), built.matrix])
    coef = np.linalg.lstsq(X, built.targets[:, 0], rcond=None)[0]
    names = ["Intercept", *(patsy(n) for n in built.feature_names)]
    assert sorted(names) == sorted(expected.params.index)
    np.testing.assert_allclose(coef, expected.params[names].to_numpy(), rtol=1e-9, atol=0)


def shuffled(table: Table, order: list[int]) -> Table:
    return Table("test", tuple(Column(c.name, c.kind, c.values[order], None) for c in table.columns), len(order))


COMPLETE = build_design(read_formula("price ~ sqft*hood + poly(age, 2) + scale(sqft) + C(rooms)", TRAIN.names), TRAIN)
USED = np.flatnonzero(COMPLETE.rows).tolist()


@settings(max_examples=40, deadline=None)
@given(st.lists(st.sampled_from(USED), min_size=1, max_size=30))
def test_any_rows_in_any_order_rebuild_their_own_design_rows(order: list[int]) -> None:
    new = rebuild_design(COMPLETE.state, shuffled(TRAIN, order))
    position = {row: i for i, row in enumerate(USED)}
    np.testing.assert_array_equal(new.matrix, COMPLETE.matrix[[position[row] for row in order]])
