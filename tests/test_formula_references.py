"""The formula stage against R's ``lm``: design, least squares, and predictions (tests/data/r)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from service.formula_design import build_design, rebuild_design
from service.formulas import read_formula
from tests.formula_tables import read_table

DATA = Path(__file__).parent / "data" / "r"
REFERENCES = json.loads((DATA / "references.json").read_text())["cases"]
TRAIN = read_table(DATA / "housing.csv", "train")
TEST = read_table(DATA / "housing_test.csv", "test")
RTOL = 1e-9


def fit(case: dict[str, Any]) -> tuple[list[str], np.ndarray, np.ndarray, int]:
    """Read, design and fit one case by least squares; answer names, coefficients, predictions, rows used."""
    weight = case["weight"]
    formula = read_formula(case["formula"], TRAIN.names, weight=weight or case["excluded"])
    design = build_design(formula, TRAIN, weight=weight)
    X = design.matrix
    if design.intercept:
        X = np.column_stack([np.ones(len(X)), X])
    y = design.targets[:, 0]
    if weight:
        root = np.sqrt(TRAIN[weight].values[design.rows])
        coef = np.linalg.lstsq(X * root[:, None], y * root, rcond=None)[0]
    else:
        coef = np.linalg.lstsq(X, y, rcond=None)[0]
    new = rebuild_design(design.state, TEST)
    Xt = np.column_stack([np.ones(len(new.matrix)), new.matrix]) if design.intercept else new.matrix
    predictions = np.full(TEST.rows, np.nan)
    predictions[new.rows] = Xt @ coef
    names = (["(Intercept)"] if design.intercept else []) + list(design.feature_names)
    return names, coef, predictions, int(design.rows.sum())


@pytest.mark.parametrize("case", REFERENCES, ids=[case["name"] for case in REFERENCES])
def test_design_and_least_squares_match_r(case: dict[str, Any]) -> None:
    names, coef, predictions, used = fit(case)
    assert names == [c["name"] for c in case["coefficients"]]
    assert used == case["n_used"]
    assert TRAIN.rows - used == case["n_dropped"]
    np.testing.assert_allclose(coef, [c["estimate"] for c in case["coefficients"]], rtol=RTOL, atol=0)
    expected = np.array([np.nan if p is None else p for p in case["predictions"]])
    np.testing.assert_array_equal(np.isnan(predictions), np.isnan(expected))
    np.testing.assert_allclose(predictions, expected, rtol=RTOL, atol=0)


def test_references_cover_what_the_brief_of_r_comparison_names() -> None:
    formulas = " ".join(case["formula"] for case in REFERENCES)
    for piece in ("hood", "*", "I(", "log(", "poly(", "C(", "center(", "scale(", "- 1", "**", "."):
        assert piece in formulas
    assert any(case["weight"] for case in REFERENCES)
    assert any(None in case["predictions"] for case in REFERENCES)
