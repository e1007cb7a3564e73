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


def statistics(case: dict[str, Any]) -> dict[str, Any]:
    """R's summary.lm from the design by the textbook formulas: checks the rows and weights the design uses."""
    weight = case["weight"]
    formula = read_formula(case["formula"], TRAIN.names, weight=weight or case["excluded"])
    design = build_design(formula, TRAIN, weight=weight)
    X = np.column_stack([np.ones(len(design.matrix)), design.matrix]) if design.intercept else design.matrix
    y = design.targets[:, 0]
    w = TRAIN[weight].values[design.rows] if weight else np.ones(len(y))
    root = np.sqrt(w)
    coef = np.linalg.lstsq(X * root[:, None], y * root, rcond=None)[0]
    residuals = y - X @ coef
    df = len(y) - X.shape[1]
    rss = float(np.sum(w * residuals**2))
    sigma = np.sqrt(rss / df)
    mean = np.sum(w * y) / np.sum(w) if design.intercept else 0.0
    r_squared = 1 - rss / float(np.sum(w * (y - mean) ** 2))
    xtwx = np.linalg.inv((X * w[:, None]).T @ X)
    return {"sigma": sigma, "r_squared": r_squared, "df_residual": df, "std_error": sigma * np.sqrt(np.diag(xtwx))}


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


@pytest.mark.parametrize("case", REFERENCES, ids=[case["name"] for case in REFERENCES])
def test_design_gives_r_summary_statistics(case: dict[str, Any]) -> None:
    found = statistics(case)
    assert found["df_residual"] == case["df_residual"]
    np.testing.assert_allclose(found["sigma"], case["sigma"], rtol=1e-9)
    np.testing.assert_allclose(found["r_squared"], case["r_squared"], rtol=1e-9)
    np.testing.assert_allclose(found["std_error"], [c["std_error"] for c in case["coefficients"]], rtol=1e-9)


def test_references_cover_what_the_r_comparison_names() -> None:
    formulas = " ".join(case["formula"] for case in REFERENCES)
    for piece in ("hood", "*", "I(", "log(", "poly(", "C(", "center(", "scale(", "- 1", "**", "."):
        assert piece in formulas
    assert any(case["weight"] for case in REFERENCES)
    assert any(None in case["predictions"] for case in REFERENCES)
