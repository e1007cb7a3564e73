"""Analysis of variance (``anova``): service/anova.py, through the API, against statsmodels' ``anova_lm(typ=1)``."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest
import statsmodels.formula.api as smf
from falcon import testing
from statsmodels.stats.anova import anova_lm

from service.anova import analyse_variance
from service.design import Design
from service.fitting import solve

RTOL = 1e-9
KEYS = ["term", "df", "sum_sq", "mean_sq", "f_value", "p_value"]


def post(client: testing.TestClient, path: str, body: dict[str, object]) -> Any:
    answer = client.simulate_post(path, json=body)
    assert answer.status_code == 200, answer.text
    return answer.json


def frame(seed: int = 2, n: int = 50) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    data = pd.DataFrame({"x0": rng.normal(size=n), "x1": rng.normal(size=n) * 10 + 50, "x2": rng.uniform(size=n),
                         "hood": rng.choice(["a", "b", "c", "d"], n), "w": rng.uniform(0.2, 3, n)})  # fmt: skip
    data["y"] = 1 + 2 * data["x0"] - 0.1 * data["x1"] + data["hood"].map({"a": 0, "b": 1, "c": -2, "d": 0.5}) + rng.normal(size=n)
    data["z"] = data["y"] * 0.5 + data["x2"] * 3 + rng.normal(size=n)
    return data


def expected_table(model: Any) -> list[dict[str, Any]]:
    """statsmodels' typ=1 table as the answer's rows (NaN as null)."""
    table = anova_lm(model, typ=1)
    rows = []
    for term, row in table.iterrows():
        values = [row["df"], row["sum_sq"], row["mean_sq"], row["F"], row["PR(>F)"]]
        clean = [None if not np.isfinite(v) else float(v) for v in values]
        rows.append(dict(zip(KEYS, [str(term).replace("Residual", "Residuals"), int(row["df"]), *clean[1:]], strict=True)))
    return rows


def check(found: list[dict[str, Any]], expected: list[dict[str, Any]]) -> None:
    assert [list(row) for row in found] == [KEYS] * len(found)
    assert [(row["term"], row["df"]) for row in found] == [(row["term"], row["df"]) for row in expected]
    for f, e in zip(found, expected, strict=True):
        for key in KEYS[2:]:
            if e[key] is None:
                assert f[key] is None, (f, e)
            else:
                assert f[key] == pytest.approx(e[key], rel=RTOL, abs=1e-12 if key == "p_value" else 0), (key, f, e)


def whitened_table(data: pd.DataFrame, target: str, features: list[str]) -> list[dict[str, Any]]:
    """The weighted table as statsmodels gives it for an OLS of the rows scaled by sqrt(w).

    (statsmodels' ``anova_lm`` on a ``WLS`` takes its effects from the unweighted design and its
    residual sum of squares from the weighted one, which is not R's weighted anova.) The
    intercept becomes the column sqrt(w), the first term, left out of the table.
    """
    root = np.sqrt(data["w"])
    scaled = pd.DataFrame({"root": root, target: data[target] * root, **{f: data[f] * root for f in features}})
    rows = expected_table(smf.ols(f"{target} ~ 0 + root + {' + '.join(features)}", scaled).fit())
    return rows[1:]


@pytest.mark.parametrize("weighted", [False, True], ids=["ols", "wls"])
def test_matrix_form_is_one_term_per_feature(client: testing.TestClient, weighted: bool) -> None:
    data = frame()
    body: dict[str, object] = {"X_train": data[["x0", "x1", "x2"]].to_dict(orient="list"), "y_train": data["y"].tolist(),
                               "anova": True}  # fmt: skip
    if weighted:
        body["sample_weight"] = data["w"].tolist()
        expected = whitened_table(data, "y", ["x0", "x1", "x2"])
    else:
        expected = expected_table(smf.ols("y ~ x0 + x1 + x2", data).fit())
    answer = post(client, "/fit", body)
    check(answer["anova"], expected)
    assert "statistics" not in answer


def test_matrix_form_without_names_calls_terms_as_statistics_do(client: testing.TestClient) -> None:
    data = frame()
    answer = post(client, "/fit", {"X_train": data[["x0", "x1"]].values.tolist(), "y_train": data["y"].tolist(), "anova": True})
    data = data.rename(columns={"x0": "a", "x1": "b"})
    expected = expected_table(smf.ols("y ~ a + b", data).fit())
    for row, name in zip(expected, ["x0", "x1", "Residuals"], strict=True):
        row["term"] = name
    check(answer["anova"], expected)


def test_several_targets_give_a_list_of_tables(client: testing.TestClient) -> None:
    data = frame()
    answer = post(client, "/fit", {"X_train": data[["x0", "x2"]].to_dict(orient="list"),
                                   "y_train": {"y": data["y"].tolist(), "z": data["z"].tolist()}, "anova": True})  # fmt: skip
    assert isinstance(answer["anova"], list) and len(answer["anova"]) == 2
    for table, target in zip(answer["anova"], ["y", "z"], strict=True):
        check(table, expected_table(smf.ols(f"{target} ~ x0 + x2", data).fit()))


@pytest.mark.parametrize("formula", ["y ~ hood + x0", "y ~ hood + x0 + x0:hood", "y ~ hood * x1", "y ~ hood + np.log(x2) + x1",
                                     "y + z ~ hood + x0", "y ~ hood - 1 + x0"])  # fmt: skip
def test_formula_terms_match_statsmodels(client: testing.TestClient, formula: str) -> None:
    """Unweighted (see ``whitened_table``); the categorical term first, where patsy puts it too."""
    data = frame(seed=4)
    ours = formula.replace("np.log", "log")
    answer = post(client, "/fit", {"train": data.to_dict(orient="list"), "formula": ours, "anova": True})
    targets = formula.split(" ~ ")[0].split(" + ")
    tables = answer["anova"] if len(targets) > 1 else [answer["anova"]]
    for table, target in zip(tables, targets, strict=True):
        right = formula.split(" ~ ")[1]
        expected = expected_table(smf.ols(f"{target} ~ {right}", data).fit())
        for row in expected:
            row["term"] = row["term"].replace("np.log", "log")
        check(table, expected)


def test_weighted_formula_matches_the_whitened_least_squares(client: testing.TestClient) -> None:
    data = frame(seed=6)
    answer = post(client, "/fit", {"train": data.to_dict(orient="list"), "formula": "z ~ x0 + x2", "weight": "w", "anova": True})
    check(answer["anova"], whitened_table(data, "z", ["x0", "x2"]))


def test_terms_are_named_as_the_formula_writes_them(client: testing.TestClient) -> None:
    data = frame()
    answer = post(client, "/fit", {"train": data.to_dict(orient="list"),
                                   "formula": "y ~ x0 * hood + log(x2) + I(x0 ** 2) + poly(x1, 2)", "anova": True})  # fmt: skip
    assert [row["term"] for row in answer["anova"]] == [
        "x0", "hood", "log(x2)", "I(x0 ** 2)", "poly(x1, 2)", "x0:hood", "Residuals"]  # fmt: skip
    assert [row["df"] for row in answer["anova"]][:-1] == [1, 3, 1, 1, 2, 3]


def test_sums_of_squares_add_up_to_the_total(client: testing.TestClient) -> None:
    data = frame()
    answer = post(client, "/fit", {"train": data.to_dict(orient="list"), "formula": "y ~ x0 * hood", "anova": True})
    total = float(np.sum((data["y"] - data["y"].mean()) ** 2))
    assert sum(row["sum_sq"] for row in answer["anova"]) == pytest.approx(total, rel=1e-12)
    assert sum(row["df"] for row in answer["anova"]) == len(data) - 1


def test_no_residual_degrees_of_freedom_gives_null_tests(client: testing.TestClient) -> None:
    """R: an anova of a saturated fit has NaN F values and a residual mean square of NaN."""
    answer = post(client, "/fit", {"X_train": [[1, 2], [2, 1], [3, 5]], "y_train": [1, 4, 2], "anova": True})
    table = answer["anova"]
    assert [row["df"] for row in table] == [1, 1, 0]
    assert all(row["f_value"] is None and row["p_value"] is None for row in table)
    assert table[-1]["mean_sq"] is None and table[-1]["sum_sq"] == pytest.approx(0.0, abs=1e-12)
    # the sequential sums of squares of a saturated fit: y's total split by the two columns
    assert table[0]["sum_sq"] + table[1]["sum_sq"] == pytest.approx(14 / 3, rel=1e-12)
    assert any("no residual degrees of freedom" in w for w in answer["warnings"])


def test_fewer_rows_than_parameters_still_splits_the_total(client: testing.TestClient) -> None:
    answer = post(client, "/fit", {"X_train": [[1, 2, 0], [2, 1, 1]], "y_train": [1, 4], "anova": True})
    table = answer["anova"]
    assert [row["term"] for row in table] == ["x0", "Residuals"]  # x1 and x2 add no rank
    assert table[0]["sum_sq"] == pytest.approx(4.5, rel=1e-12) and table[0]["df"] == 1


def test_rank_deficient_matrix_leaves_out_the_aliased_feature(client: testing.TestClient) -> None:
    data = frame()
    X = {"x0": data["x0"].tolist(), "twice": (2 * data["x0"]).tolist(), "x2": data["x2"].tolist()}
    answer = post(client, "/fit", {"X_train": X, "y_train": data["y"].tolist(), "anova": True})
    check(answer["anova"], expected_table(smf.ols("y ~ x0 + x2", data).fit()))


def test_positive_gives_degrees_of_freedom_only(client: testing.TestClient) -> None:
    data = frame()
    answer = post(client, "/fit", {"X_train": data[["x0", "x2"]].to_dict(orient="list"), "y_train": data["y"].tolist(),
                                   "positive": True, "anova": True})  # fmt: skip
    assert [row["df"] for row in answer["anova"]] == [1, 1, len(data) - 3]
    assert all(row[key] is None for row in answer["anova"] for key in KEYS[2:])
    assert any("anova" in w and "positive" in w for w in answer["warnings"])


def test_exact_fit_gives_null_tests_with_a_warning() -> None:
    X = np.arange(12.0).reshape(6, 2) ** [1, 2]
    y = X @ np.array([1.0, 0.5]) + 2
    tables, warnings = analyse_variance(Design(X, y[:, None], None, True), np.array([[1.0, 0.5]]), np.array([2.0]),
                                        ("a", "b"), full_rank=True, positive=False)  # fmt: skip
    assert [row["f_value"] for row in tables[0]] == [None, None, None]
    assert [row["p_value"] for row in tables[0]] == [None, None, None]
    assert tables[0][-1]["sum_sq"] == 0.0 and tables[0][-1]["mean_sq"] == 0.0
    assert any("exact" in w for w in warnings)


def test_zero_weight_rows_take_no_part() -> None:
    data = frame()
    X, y, w = data[["x0", "x1"]].values, data["y"].values, data["w"].values
    tables = []
    for features, target, weights in ((X, y, w), (np.vstack([X, X[:4] + 1]), np.r_[y, y[:4] * 9], np.r_[w, np.zeros(4)])):
        design = Design(features, target[:, None], weights, True)
        coef, intercept, rank = solve(design, False)
        tables.append(analyse_variance(design, coef, intercept, ("a", "b"), full_rank=rank == 2, positive=False)[0][0])
    check(tables[1], tables[0])


def test_anova_with_statistics_and_cov_type_keeps_the_classical_table(client: testing.TestClient) -> None:
    data = frame()
    body = {"X_train": data[["x0", "x1"]].to_dict(orient="list"), "y_train": data["y"].tolist(), "anova": True}
    plain = post(client, "/fit", body)
    robust = post(client, "/fit", {**body, "statistics": True, "cov_type": "HC3"})
    assert robust["anova"] == plain["anova"]
    assert robust["statistics"]["cov_type"] == "HC3"
