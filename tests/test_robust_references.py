"""Robust standard errors (cov_type HC0-HC3) and anova through the API, against R (tests/data/r).

R's references: ``sandwich::vcovHC`` with ``lmtest::coeftest``/``coefci``/``waldtest`` and
``anova(lm)``, computed by ``tests/data/r/references.R``. The requests go as multipart
(training and test CSV files, options as form fields), as text/csv with query parameters,
and as JSON tables, so that every body type carries the options.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import falcon.testing
import pytest
from urllib3 import encode_multipart_formdata

DATA = Path(__file__).parent / "data" / "r"
REFERENCES = json.loads((DATA / "references.json").read_text())
CASES = REFERENCES["cases"]
ANOVA_CASES = REFERENCES["anova_cases"]
TRAIN = (DATA / "housing.csv").read_bytes()
TEST = (DATA / "housing_test.csv").read_bytes()
HC = ("HC0", "HC1", "HC2", "HC3")
RTOL = 1e-9
#: p-values this small are compared absolutely: their relative digits are those of a tail.
P_ATOL = 1e-12
#: R's names of terms where fitserve's formula spells them otherwise.
R_TERMS = {"factor(rooms)": "C(rooms)", "I(sqft^2)": "I(sqft ** 2)", "I(age/10)": "I(age / 10)",
           "scale(sqft, scale = FALSE)": "center(sqft)"}  # fmt: skip


def without_column(data: bytes, name: str | None) -> bytes:
    """The CSV without one column (R's "." does not see a column the fit leaves out)."""
    if name is None:
        return data
    rows = list(csv.reader(io.StringIO(data.decode())))
    drop = rows[0].index(name)
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows([row[:drop] + row[drop + 1 :] for row in rows])
    return out.getvalue().encode()


def fields(case: dict[str, Any], **options: str) -> dict[str, Any]:
    """The form fields of a case's request."""
    out: dict[str, Any] = {"formula": case["formula"], "missing": "drop", **options}
    if case["weight"]:
        out["weight"] = case["weight"]
    return out


def post_form(client: falcon.testing.TestClient, case: dict[str, Any], path: str = "/predict", **options: str) -> Any:
    """POST a case as multipart: the CSV files and the options as form fields."""
    parts: dict[str, Any] = {"train": ("train.csv", without_column(TRAIN, case.get("excluded")), "text/csv")}
    if path == "/predict":
        parts["test"] = ("test.csv", TEST, "text/csv")
    body, content_type = encode_multipart_formdata({**parts, **fields(case, **options)})
    answer = client.simulate_post(path, body=body, headers={"Content-Type": content_type})
    assert answer.status_code == 200, answer.text
    return answer.json


def close(found: Any, expected: Any, *, p_value: bool = False) -> None:
    """Each number within ``RTOL`` of R's (p-values: or within ``P_ATOL``); None where R has NA."""
    if isinstance(expected, list):
        assert isinstance(found, list) and len(found) == len(expected)
        for f, e in zip(found, expected, strict=True):
            close(f, e, p_value=p_value)
        return
    if expected is None:
        assert found is None
        return
    assert found is not None
    tolerance = max(RTOL * abs(expected), P_ATOL if p_value else 0.0)
    assert abs(found - expected) <= tolerance, (found, expected)


def ids(cases: list[dict[str, Any]]) -> list[str]:
    return [case["name"] for case in cases]


@pytest.mark.parametrize("cov_type", HC)
@pytest.mark.parametrize("case", CASES, ids=ids(CASES))
def test_robust_statistics_match_r(client: falcon.testing.TestClient, case: dict[str, Any], cov_type: str) -> None:
    expected = case["robust"][cov_type]
    answer = post_form(client, case, statistics="true", interval="confidence", cov_type=cov_type)
    stats = answer["statistics"]
    assert stats["cov_type"] == cov_type
    assert [row["term"] for row in stats["coefficients"]] == [c["name"] for c in case["coefficients"]]
    table = {key: [row[key] for row in stats["coefficients"]] for key in ("std_error", "t_value", "p_value", "ci_lower", "ci_upper")}
    close(table["std_error"], expected["std_error"])
    close(table["t_value"], expected["t_value"])
    close(table["p_value"], expected["p_value"], p_value=True)
    close(table["ci_lower"], expected["ci_lower"])
    close(table["ci_upper"], expected["ci_upper"])
    close(stats["f_statistic"], expected["f_statistic"])
    close(stats["f_p_value"], expected["f_p_value"], p_value=True)
    close(answer["intervals"]["lower"], expected["confidence_lower"])
    close(answer["intervals"]["upper"], expected["confidence_upper"])
    # what the covariance does not touch stays R's summary.lm
    close(stats["residual_std_error"], case["sigma"])
    close(stats["r_squared"], case["r_squared"])


@pytest.mark.parametrize("cov_type", HC)
@pytest.mark.parametrize("case", CASES, ids=ids(CASES))
def test_robust_prediction_intervals_match_r(client: falcon.testing.TestClient, case: dict[str, Any], cov_type: str) -> None:
    expected = case["robust"][cov_type]
    answer = post_form(client, case, interval="prediction", cov_type=cov_type)
    close(answer["intervals"]["lower"], expected["prediction_lower"])
    close(answer["intervals"]["upper"], expected["prediction_upper"])


def r_anova(table: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """R's table with the terms spelt as fitserve's formula spells them."""
    return [{**row, "term": R_TERMS.get(row["term"], row["term"])} for row in table]


def check_anova(found: list[dict[str, Any]], expected: list[dict[str, Any]]) -> None:
    assert [(row["term"], row["df"]) for row in found] == [(row["term"], row["df"]) for row in expected]
    for f, e in zip(found, expected, strict=True):
        assert list(f) == ["term", "df", "sum_sq", "mean_sq", "f_value", "p_value"]
        close(f["sum_sq"], e["sum_sq"])
        close(f["mean_sq"], e["mean_sq"])
        close(f["f_value"], e["f_value"])
        close(f["p_value"], e["p_value"], p_value=True)


@pytest.mark.parametrize("case", CASES + ANOVA_CASES, ids=ids(CASES + ANOVA_CASES))
def test_anova_matches_r(client: falcon.testing.TestClient, case: dict[str, Any]) -> None:
    answer = post_form(client, case, path="/fit", anova="true")
    check_anova(answer["anova"], r_anova(case["anova"]))
    assert "statistics" not in answer


def test_anova_of_a_rank_deficient_design_leaves_out_the_aliased_term(client: falcon.testing.TestClient) -> None:
    case = ANOVA_CASES[0]
    answer = post_form(client, case, path="/fit", anova="true")
    assert "I(2 * sqft)" not in [row["term"] for row in answer["anova"]]
    assert answer["rank"] == 4 and case["rank"] == 5  # R counts the intercept in its rank
    assert sum(row["df"] for row in answer["anova"]) == answer["n_samples"] - 1


def test_csv_query_parameters_carry_cov_type_and_anova(client: falcon.testing.TestClient) -> None:
    case = next(case for case in CASES if case["name"] == "weights")
    answer = client.simulate_post(
        "/fit",
        body=TRAIN,
        headers={"Content-Type": "text/csv"},
        params={**fields(case), "statistics": "true", "cov_type": "HC3", "anova": "true"},
    )
    assert answer.status_code == 200, answer.text
    stats = answer.json["statistics"]
    assert stats["cov_type"] == "HC3"
    close([row["std_error"] for row in stats["coefficients"]], case["robust"]["HC3"]["std_error"])
    close(stats["f_statistic"], case["robust"]["HC3"]["f_statistic"])
    check_anova(answer.json["anova"], r_anova(case["anova"]))


def json_table(data: bytes) -> dict[str, list[Any]]:
    """A CSV file as a JSON table of named columns: numbers, text, and null for an empty cell."""
    rows = list(csv.DictReader(io.StringIO(data.decode())))
    columns: dict[str, list[Any]] = {}
    for name in rows[0]:
        cells = [row[name] for row in rows]
        numeric = all(cell == "" or cell.replace(".", "", 1).isdigit() for cell in cells)
        columns[name] = [None if cell == "" else float(cell) if numeric else cell for cell in cells]
    return columns


@pytest.mark.parametrize("name", ["interaction", "poly", "no_intercept"])
def test_json_tables_carry_cov_type_and_anova(client: falcon.testing.TestClient, name: str) -> None:
    case = next(case for case in CASES if case["name"] == name)
    body = {"train": json_table(TRAIN), "test": json_table(TEST), "formula": case["formula"], "missing": "drop",
            "statistics": True, "interval": "confidence", "cov_type": "HC1", "anova": True}  # fmt: skip
    answer = client.simulate_post("/predict", json=body)
    assert answer.status_code == 200, answer.text
    expected = case["robust"]["HC1"]
    stats = answer.json["statistics"]
    close([row["std_error"] for row in stats["coefficients"]], expected["std_error"])
    close([row["p_value"] for row in stats["coefficients"]], expected["p_value"], p_value=True)
    close(stats["f_statistic"], expected["f_statistic"])
    close(answer.json["intervals"]["lower"], expected["confidence_lower"])
    check_anova(answer.json["anova"], r_anova(case["anova"]))


def test_references_cover_weights_factors_interactions_and_aliasing() -> None:
    names = ids(CASES)
    assert {"weights", "interaction", "numeric_factor", "poly", "no_intercept"} <= set(names)
    assert any(case["weight"] for case in ANOVA_CASES)
    assert all(set(case["robust"]) == set(HC) for case in CASES)
    # R leaves the term that adds no rank out of its table
    for case in ANOVA_CASES:
        assert "I(2 * sqft)" not in [row["term"] for row in case["anova"]]
