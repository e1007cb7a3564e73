"""One fit per group (``by``) through the app: against R's per-group ``lm`` and statsmodels, model reuse, errors."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import falcon.testing
import numpy as np
import orjson
import pandas as pd
import pytest
import statsmodels.formula.api as smf

import service
from service.settings import Settings

DATA = Path(__file__).parent / "data" / "r"
REFERENCES = json.loads((DATA / "groups.json").read_text())["cases"]
RTOL = 1e-9
JSON = "application/json"
STATISTICS = ("r_squared", "adj_r_squared", "residual_std_error", "df_residual", "f_statistic", "f_p_value")
COEFFICIENTS = ("estimate", "std_error", "t_value", "p_value", "ci_lower", "ci_upper")


@pytest.fixture(scope="module")
def client() -> falcon.testing.TestClient:
    return falcon.testing.TestClient(service.create_app(Settings()))


def post(client: falcon.testing.TestClient, body: dict[str, Any], path: str = "/fit", **headers: str) -> Any:
    return client.simulate_post(path, body=orjson.dumps(body), headers={"Content-Type": JSON, **headers})


def columns(path: Path) -> dict[str, list[Any]]:
    """A CSV file as JSON columns, empty cells as null."""
    frame = pd.read_csv(path, keep_default_na=False, dtype=str)
    table: dict[str, list[Any]] = {}
    for name in frame.columns:
        cells = frame[name].tolist()
        numeric = all(c == "" or c.lstrip("-").replace(".", "", 1).isdigit() for c in cells)
        table[name] = [None if c == "" else (float(c) if numeric else c) for c in cells]
    return table


TRAIN = columns(DATA / "groups.csv")
TEST = columns(DATA / "groups_test.csv")


def close(actual: Any, expected: Any, rtol: float = RTOL) -> bool:
    """Equal to a relative tolerance, nulls where R has NA."""
    a = np.array(
        [np.nan if v is None else v for v in np.atleast_1d(np.asarray(actual, dtype=object))], dtype=float
    )
    e = np.array(
        [np.nan if v is None else v for v in np.atleast_1d(np.asarray(expected, dtype=object))], dtype=float
    )
    return bool(
        np.array_equal(np.isnan(a), np.isnan(e)) and np.allclose(a, e, rtol=rtol, atol=0, equal_nan=True)
    )


def reference_body(case: dict[str, Any]) -> dict[str, Any]:
    body = {
        "train": TRAIN, "test": TEST, "formula": case["formula"], "by": case["by"], "missing": "drop",
        "statistics": True, "interval": case["interval"],
    }  # fmt: skip
    if case["weight"]:
        body["weight"] = case["weight"]
    return body


def check_against_r(answer: dict[str, Any], case: dict[str, Any]) -> None:
    assert answer["by"] == case["by"]
    assert [g["group"] for g in answer["groups"]] == [g["group"] for g in case["groups"]]
    for entry, reference in zip(answer["groups"], case["groups"], strict=True):
        assert entry["n_samples"] == reference["n_samples"]
        statistics = entry["statistics"]
        terms = statistics["coefficients"]
        assert len(terms) == len(reference["terms"])
        for key in COEFFICIENTS:
            assert close([t[key] for t in terms], reference[key]), (reference["group"], key)
        for key in STATISTICS:
            assert close(statistics[key], reference[key]), (reference["group"], key)
    assert close(answer["predictions"], case["predictions"])
    assert close(answer["intervals"]["lower"], case["lower"])
    assert close(answer["intervals"]["upper"], case["upper"])
    assert answer["intervals"]["kind"] == case["interval"]


@pytest.mark.parametrize("case", REFERENCES, ids=[c["name"] for c in REFERENCES])
def test_each_group_is_r_lm_on_its_rows(client: falcon.testing.TestClient, case: dict[str, Any]) -> None:
    answer = post(client, reference_body(case)).json
    check_against_r(answer, case)


def test_a_level_absent_from_a_group_is_not_a_column_of_its_fit(client: falcon.testing.TestClient) -> None:
    case = next(c for c in REFERENCES if c["name"] == "factor")
    answer = post(client, reference_body(case)).json
    store_c = next(g for g in answer["groups"] if g["group"] == "C")
    # Store C has no "k1", the reference of the whole table: its reference is "k2", as R's lm on its rows.
    assert store_c["feature_names"] == ["x1", "kind[T.k3]"]
    assert store_c["design"]["levels"] == {"kind": ["k2", "k3"]}
    store_a = next(g for g in answer["groups"] if g["group"] == "A")
    assert store_a["feature_names"] == ["x1", "kind[T.k2]", "kind[T.k3]"]


@pytest.mark.parametrize("case", REFERENCES, ids=[c["name"] for c in REFERENCES])
def test_multipart_with_a_by_field_is_r_lm_per_group(
    client: falcon.testing.TestClient, case: dict[str, Any]
) -> None:
    fields = {
        "formula": case["formula"],
        "by": case["by"],
        "missing": "drop",
        "statistics": "true",
        "interval": case["interval"],
    }
    if case["weight"]:
        fields["weight"] = case["weight"]
    files = {
        "train": ("train.csv", (DATA / "groups.csv").read_bytes()),
        "test": ("test.csv", (DATA / "groups_test.csv").read_bytes()),
    }
    body, content_type = multipart(fields, files)
    answer = client.simulate_post("/fit", body=body, headers={"Content-Type": content_type}).json
    check_against_r(answer, case)


def test_csv_body_takes_by_as_a_query_parameter(client: falcon.testing.TestClient) -> None:
    case = next(c for c in REFERENCES if c["name"] == "integer_by")
    query = "formula=y~x1%2Bx2&by=region&missing=drop&statistics=true"
    answer = client.simulate_post(
        "/fit",
        body=(DATA / "groups.csv").read_bytes(),
        query_string=query,
        headers={"Content-Type": "text/csv"},
    ).json
    assert [g["group"] for g in answer["groups"]] == [2, 10, 33]  # numbers by value, not as text
    for entry, reference in zip(answer["groups"], case["groups"], strict=True):
        assert close([t["estimate"] for t in entry["statistics"]["coefficients"]], reference["estimate"])
    assert "predictions" not in answer


def multipart(fields: dict[str, str], files: dict[str, tuple[str, bytes]]) -> tuple[bytes, str]:
    boundary = "fitserveboundary"
    out = io.BytesIO()
    for name, value in fields.items():
        out.write(
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()
        )
    for name, (filename, data) in files.items():
        out.write(
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; filename="{filename}"\r\n'
            "Content-Type: text/csv\r\n\r\n".encode()
        )
        out.write(data + b"\r\n")
    out.write(f"--{boundary}--\r\n".encode())
    return out.getvalue(), f"multipart/form-data; boundary={boundary}"


def random_table(seed: int, groups: int = 6, rows: int = 12) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    n = groups * rows
    frame = pd.DataFrame(
        {
            "g": rng.choice([f"s{i}" for i in range(groups)], size=n),
            "x": rng.normal(size=n).round(4),
            "z": rng.uniform(1, 5, size=n).round(4),
            "kind": rng.choice(["p", "q", "r"], size=n),
            "w": rng.uniform(0.5, 2.0, size=n).round(3),
        }
    )
    frame["y"] = (1 + 2 * frame["x"] - frame["z"] + (frame["kind"] == "q") + rng.normal(size=n)).round(4)
    return frame


@pytest.mark.parametrize("seed", [1, 2, 3])
@pytest.mark.parametrize("formula", ["y ~ x + z", "y ~ x + kind", "y ~ x * z + np_log_z"])
def test_each_group_is_statsmodels_wls_on_its_rows(
    client: falcon.testing.TestClient, seed: int, formula: str
) -> None:
    frame = random_table(seed)
    service_formula = formula.replace("np_log_z", "log(z)")
    model_formula = formula.replace("np_log_z", "np.log(z)")
    test = random_table(seed + 100, rows=2)
    test = test[test["g"].isin(frame["g"])]
    body = {
        "train": frame.to_dict("list"), "test": test.to_dict("list"), "formula": service_formula, "by": "g",
        "weight": "w", "statistics": True, "interval": "confidence",
    }  # fmt: skip
    answer = post(client, body).json
    groups = sorted(frame["g"].unique())
    assert [g["group"] for g in answer["groups"]] == groups
    for entry, name in zip(answer["groups"], groups, strict=True):
        rows = frame[frame["g"] == name]
        result = smf.wls(model_formula, rows, weights=rows["w"]).fit()
        terms = entry["statistics"]["coefficients"]
        # patsy puts categorical terms first; R, formulaic and fitserve by degree, as written.
        names = [t["term"].replace("(Intercept)", "Intercept").replace("log(z)", "np.log(z)") for t in terms]
        assert sorted(names) == sorted(result.params.index)
        assert np.allclose([t["estimate"] for t in terms], result.params[names].to_numpy(), rtol=1e-9, atol=0)
        assert np.allclose([t["std_error"] for t in terms], result.bse[names].to_numpy(), rtol=1e-9, atol=0)
        assert entry["statistics"]["r_squared"] == pytest.approx(result.rsquared, rel=1e-9)
        at = np.flatnonzero(test["g"].to_numpy() == name)
        if len(at):
            frame_at = result.get_prediction(test.iloc[at]).summary_frame(alpha=0.05)
            assert np.allclose(np.asarray(answer["predictions"])[at], frame_at["mean"], rtol=1e-9, atol=0)
            assert np.allclose(
                np.asarray(answer["intervals"]["lower"])[at], frame_at["mean_ci_lower"], rtol=1e-9, atol=0
            )


def test_every_group_entry_and_the_whole_answer_work_as_a_model(client: falcon.testing.TestClient) -> None:
    for formula in ("y ~ x1 + x2", "y ~ x1 + kind"):
        body = {"train": TRAIN, "test": TEST, "formula": formula, "by": "store", "missing": "drop"}
        fitted = post(client, body).json
        again = post(client, {"model": fitted, "test": TEST, "missing": "drop"}, "/predict").json
        assert close(again["predictions"], fitted["predictions"], rtol=1e-15)
        assert [g["group"] for g in again["groups"]] == [g["group"] for g in fitted["groups"]]
        stores = TEST["store"]
        for entry in fitted["groups"]:
            rows = [i for i, s in enumerate(stores) if s == entry["group"]]
            table = {name: [values[i] for i in rows] for name, values in TEST.items()}
            alone = post(client, {"model": entry, "test": table, "missing": "drop"}, "/predict").json
            assert close(alone["predictions"], [fitted["predictions"][i] for i in rows], rtol=1e-15)


def test_predictions_follow_the_test_rows_each_by_its_own_group(client: falcon.testing.TestClient) -> None:
    train = {"g": ["a", "b", "a", "b", "a", "b"], "x": [0, 0, 1, 1, 2, 2], "y": [1, 10, 3, 10, 5, 10]}
    test = {"g": ["b", "a", "a"], "x": [5, 5, 0]}
    answer = post(client, {"train": train, "test": test, "formula": "y ~ x", "by": "g"}).json
    assert answer["predictions"] == pytest.approx([10, 11, 1], rel=1e-12)
    assert [g["intercept"] for g in answer["groups"]] == pytest.approx([1, 10])
    assert all("predictions" not in g for g in answer["groups"])


def test_csv_answer_has_a_row_per_test_row(client: falcon.testing.TestClient) -> None:
    train = {"g": ["a", "b", "a", "b", "a", "b"], "x": [0, 0, 1, 1, 2, 2], "y": [1, 10, 3, 10, 5, 10]}
    test = {"g": ["b", "a", None], "x": [5, 5, 0]}
    body = {"train": train, "test": test, "formula": "y ~ x", "by": "g", "missing": "drop"}
    answer = post(client, body, Accept="text/csv")
    assert answer.headers["content-type"] == "text/csv"
    lines = answer.text.splitlines()
    assert (
        lines[0] == "y" and len(lines) == 4 and lines[3] == '""'
    )  # a row of one empty cell, as Python's csv writes it
    assert [float(v) for v in lines[1:3]] == pytest.approx([10, 11])


def test_a_picture_of_fits_per_group_is_406(client: falcon.testing.TestClient) -> None:
    body = {"train": TRAIN, "formula": "y ~ x1", "by": "store"}
    answer = post(client, body, Accept="image/svg+xml")
    assert answer.status_code == 406
    assert "by" in answer.json["detail"]


def test_a_group_too_small_is_fitted_with_warnings_and_null_statistics(
    client: falcon.testing.TestClient,
) -> None:
    train = {
        "g": ["a", "a", "a", "a", "b", "b"],
        "x": [0, 1, 2, 3, 0, 1],
        "z": [1, 0, 1, 1, 3, 2],
        "y": [1, 3, 4, 7, 2, 4],
    }
    answer = post(client, {"train": train, "formula": "y ~ x + z", "by": "g", "statistics": True}).json
    small = answer["groups"][1]
    assert small["n_samples"] == 2
    assert small["rank"] == 1
    assert any("rank deficient" in w for w in small["warnings"])
    assert small["statistics"]["f_statistic"] is None
    assert all(t["std_error"] is None for t in small["statistics"]["coefficients"])
    assert answer["groups"][0]["statistics"]["f_statistic"] is not None


def test_missing_values_drop_per_group_and_in_the_by_column(client: falcon.testing.TestClient) -> None:
    train = {
        "g": ["a", "a", None, "b", "b", "b", "a"],
        "x": [0, 1, 2, 0, 1, None, 2],
        "y": [1, 3, 9, 2, 4, 6, 5],
    }
    test = {"g": ["a", None, "b"], "x": [1, 1, None]}
    body = {"train": train, "test": test, "formula": "y ~ x", "by": "g", "missing": "drop"}
    answer = post(client, body).json
    assert answer["n_dropped"] == 1  # the row without a group
    complete = post(client, {**body, "train": {**train, "g": ["a", "a", "b", "b", "b", "b", "a"]}}).json
    assert "n_dropped" not in complete  # the contract's shape when every row has its group
    a, b = answer["groups"]
    assert (a["n_dropped"], b["n_dropped"]) == (0, 1)
    assert (a["n_samples"], b["n_samples"]) == (3, 2)
    assert any("left out" in w for w in b["warnings"]) and not a["warnings"]
    assert answer["predictions"][0] == pytest.approx(3) and answer["predictions"][1:] == [None, None]


def test_a_fast_and_an_own_design_give_the_same_numeric_fit(client: falcon.testing.TestClient) -> None:
    # center() makes each group's design its own; centring changes the intercept only.
    numeric = post(client, {"train": TRAIN, "formula": "y ~ x1", "by": "store", "missing": "drop"}).json
    centred = post(
        client, {"train": TRAIN, "formula": "y ~ center(x1)", "by": "store", "missing": "drop"}
    ).json
    for plain, own in zip(numeric["groups"], centred["groups"], strict=True):
        assert own["coef"] == pytest.approx(plain["coef"], rel=1e-12)
        x1 = [x for x, s in zip(TRAIN["x1"], TRAIN["store"], strict=True) if s == plain["group"]]
        assert own["design"]["transforms"]["center(x1)"]["center"] == pytest.approx(np.mean(x1), rel=1e-12)


def test_max_groups_is_a_setting_named_in_its_422() -> None:
    client = falcon.testing.TestClient(service.create_app(Settings(max_groups=3)))
    answer = post(client, {"train": TRAIN, "formula": "y ~ x1", "by": "store", "missing": "drop"})
    assert answer.status_code == 422 and answer.json["field"] == "by"
    assert "max_groups" in answer.json["detail"] and "FITSERVE_MAX_GROUPS" in answer.json["detail"]
    assert post(client, {"train": TRAIN, "formula": "y ~ x1", "by": "region"}).status_code == 200
    fitted = post(client, {"train": TRAIN, "formula": "y ~ x1", "by": "region"}).json
    tight = falcon.testing.TestClient(service.create_app(Settings(max_groups=2)))
    answer = post(tight, {"model": fitted, "test": TEST}, "/predict")
    assert (
        answer.status_code == 422
        and answer.json["field"] == "model"
        and "max_groups" in answer.json["detail"]
    )


def test_max_groups_has_a_flag_and_a_variable() -> None:
    from service.cli import main

    seen: list[Settings] = []
    assert main(["--max-groups", "7"], serve=seen.append, environ={}) == 0
    assert main([], serve=seen.append, environ={"FITSERVE_MAX_GROUPS": "9"}) == 0
    assert [s.max_groups for s in seen] == [7, 9]
    assert Settings().max_groups == 100_000


SMALL = {"g": ["a", "b", "a", "b", "a", "b"], "x": [0, 0, 1, 1, 2, 2], "y": [1, 10, 3, 10, 5, 10]}
BAD = [
    ("unknown_column", {"by": "gg"}, "by", "Did you mean 'g'"),
    ("not_a_string", {"by": 3}, "by", "must be a string"),
    (
        "fraction",
        {
            "by": "x",
            "train": {**SMALL, "x": [0.5, 1, 2, 3, 4, 5], "y": [1, 2, 3, 4, 5, 6], "x2": [1, 3, 2, 5, 4, 6]},
            "formula": "y ~ x2",
        },
        "by",
        "integers",
    ),
    ("huge", {"train": {**SMALL, "g": [1e100, 1, 1e100, 1, 1e100, 1]}}, "by", "2**53"),
    ("missing_fail", {"train": {**SMALL, "g": ["a", None, "a", "b", "a", "b"]}}, "by", '"missing": "drop"'),
    (
        "matrix_form",
        {"train": None, "formula": None, "X_train": [[1], [2]], "y_train": [1, 2]},
        "by",
        "table form",
    ),
    ("in_formula", {"formula": "y ~ x + g"}, "formula", "'by' column"),
    ("unknown_test_group", {"test": {"g": ["a", "c"], "x": [1, 2]}}, "test", 'the string "c"'),
    ("test_without_by", {"test": {"x": [1, 2]}}, "test", "'by' column"),
    ("test_missing_by", {"test": {"g": ["a", None], "x": [1, 2]}}, "test", "row 1"),
    ("all_zero_weights", {"train": {**SMALL, "w": [1, 0, 1, 0, 1, 0]}, "weight": "w"}, "train", "group 'b'"),
]


@pytest.mark.parametrize(("change", "field", "words"), [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_bad_requests_are_422_naming_the_field(
    client: falcon.testing.TestClient, change: dict[str, Any], field: str, words: str
) -> None:
    body = {"train": SMALL, "formula": "y ~ x", "by": "g", **change}
    answer = post(client, {k: v for k, v in body.items() if v is not None})
    assert answer.status_code == 422, answer.text
    assert answer.json["field"] == field
    assert words in answer.json["detail"]


def group_answer(client: falcon.testing.TestClient) -> dict[str, Any]:
    answer: dict[str, Any] = post(client, {"train": SMALL, "formula": "y ~ x", "by": "g"}).json
    return answer


BAD_MODELS = [
    ("unsorted", lambda m: {**m, "groups": m["groups"][::-1]}, "sorted"),
    ("fraction_group", lambda m: {**m, "groups": [{**m["groups"][0], "group": 1.5}]}, "integer"),
    ("no_by", lambda m: {"groups": m["groups"]}, "'model.by'"),
    ("empty", lambda m: {**m, "groups": []}, "non-empty"),
    ("bad_coef", lambda m: {**m, "groups": [{**m["groups"][0], "coef": ["x"]}, m["groups"][1]]}, "item 0"),
    (
        "no_design",
        lambda m: {**m, "groups": [{k: v for k, v in g.items() if k != "design"} for g in m["groups"]]},
        "design",
    ),
]


@pytest.mark.parametrize(("change", "words"), [b[1:] for b in BAD_MODELS], ids=[b[0] for b in BAD_MODELS])
def test_a_group_model_is_read_strictly(client: falcon.testing.TestClient, change: Any, words: str) -> None:
    model = change(group_answer(client))
    answer = post(client, {"model": model, "test": {"g": ["a"], "x": [1]}}, "/predict")
    assert answer.status_code == 422, answer.text
    assert answer.json["field"] == "model"
    assert words in answer.json["detail"]


def test_a_group_model_refuses_an_unknown_group_and_by_with_it(client: falcon.testing.TestClient) -> None:
    model = group_answer(client)
    unknown = post(client, {"model": model, "test": {"g": ["a", "z"], "x": [1, 2]}}, "/predict")
    assert (
        unknown.status_code == 422
        and unknown.json["field"] == "test"
        and "'model' does not have" in unknown.json["detail"]
    )
    with_by = post(client, {"model": model, "test": {"g": ["a"], "x": [1]}, "by": "g"}, "/predict")
    assert with_by.status_code == 422 and with_by.json["field"] == "model"
    as_matrix = post(client, {"model": model, "X_test": [[1]]}, "/predict")
    assert (
        as_matrix.status_code == 422
        and as_matrix.json["field"] == "model"
        and "'test'" in as_matrix.json["detail"]
    )


def test_dot_and_the_default_target_leave_out_the_by_column(client: falcon.testing.TestClient) -> None:
    train = {"x": [0, 1, 2, 0, 1, 2], "y": [1, 3, 5, 2, 2, 2], "g": ["a", "a", "a", "b", "b", "b"]}
    dotted = post(client, {"train": train, "formula": "y ~ .", "by": "g"}).json
    assert [g["feature_names"] for g in dotted["groups"]] == [["x"], ["x"]]
    # Without formula or target, the target is the last column that is not the weight or the by column.
    default = post(client, {"train": train, "by": "g"}).json
    assert [g["target_names"] for g in default["groups"]] == [["y"], ["y"]]
    assert [g["coef"] for g in default["groups"]] == [pytest.approx([2.0]), pytest.approx([0.0], abs=1e-12)]


def test_integer_groups_are_numbers_in_numeric_order(client: falcon.testing.TestClient) -> None:
    train = {"g": [10, 2, 10, 2, 10, 2, -1, -1], "x": [0, 0, 1, 1, 2, 2, 0, 1], "y": [1, 2, 3, 4, 5, 6, 7, 8]}
    answer = post(
        client, {"train": train, "formula": "y ~ x", "by": "g", "test": {"g": [2, -1], "x": [3, 3]}}
    ).json
    assert [g["group"] for g in answer["groups"]] == [-1, 2, 10]
    assert answer["predictions"] == pytest.approx([8.0, 10.0])
    unknown = post(client, {"train": train, "formula": "y ~ x", "by": "g", "test": {"g": [2.5], "x": [3]}})
    assert unknown.status_code == 422 and unknown.json["field"] == "test"


def test_intervals_come_from_each_rows_own_group(client: falcon.testing.TestClient) -> None:
    train = {
        "g": ["a"] * 4 + ["b"] * 4 + ["c"] * 2,
        "x": [0, 1, 2, 3] * 2 + [0, 1],
        "y": [0, 1.1, 1.9, 3.2, 5, 4.4, 5.3, 4.9, 1, 2],
    }
    body = {
        "train": train,
        "formula": "y ~ x",
        "by": "g",
        "test": {"g": ["b", "a"], "x": [1.5, 1.5]},
        "interval": "prediction",
    }
    answer = post(client, body).json
    for row, name in enumerate(["b", "a"]):
        rows = pd.DataFrame(train)[lambda f, name=name: f["g"] == name]
        frame = (
            smf.ols("y ~ x", rows).fit().get_prediction(pd.DataFrame({"x": [1.5]})).summary_frame(alpha=0.05)
        )
        assert answer["intervals"]["lower"][row] == pytest.approx(frame["obs_ci_lower"][0], rel=1e-9)
        assert answer["intervals"]["upper"][row] == pytest.approx(frame["obs_ci_upper"][0], rel=1e-9)
    # Group c has no residual degrees of freedom, but no test row: its fit has the statistics' nulls, no 422.
    assert answer["groups"][2]["statistics"]["residual_std_error"] is None
    asked = post(client, {**body, "test": {"g": ["c"], "x": [0.5]}})
    assert asked.status_code == 422 and asked.json["field"] == "interval" and "'c'" in asked.json["detail"]


LEVELS = {
    "g": ["a"] * 6 + ["b"] * 6 + ["c"] * 5,
    "x": [0, 1, 2, 3, 4, 5] * 2 + [0, 1, 2, 3, 4],
    # a has p, q, r; b lacks p (the whole table's reference); c has q only
    "kind": ["p", "q", "r", "p", "q", "r", "q", "r", "q", "r", "q", "r", "q", "q", "q", "q", "q"],
    "y": [1.0, 2.5, 2.9, 4.2, 5.6, 6.1, 0.3, 1.9, 2.2, 3.8, 4.1, 5.9, 1.0, 2.1, 2.9, 4.2, 5.0],
}


def test_levels_per_group_are_those_of_rs_lm_on_the_groups_rows(client: falcon.testing.TestClient) -> None:
    fast = post(client, {"train": LEVELS, "formula": "y ~ x + kind", "by": "g", "statistics": True}).json
    # C() makes each group's design its own (built on its rows by formulaic): the same fits.
    own = post(client, {"train": LEVELS, "formula": "y ~ x + C(kind)", "by": "g", "statistics": True}).json
    assert [g["feature_names"] for g in fast["groups"]] == [
        ["x", "kind[T.q]", "kind[T.r]"],
        ["x", "kind[T.r]"],
        ["x"],
    ]
    assert [g["design"]["levels"] for g in fast["groups"]] == [
        {"kind": ["p", "q", "r"]},
        {"kind": ["q", "r"]},
        {"kind": ["q"]},
    ]
    for a, b in zip(fast["groups"], own["groups"], strict=True):
        assert [n.replace("C(kind)", "kind") for n in b["feature_names"]] == a["feature_names"]
        assert a["coef"] == pytest.approx(b["coef"], rel=1e-12)
        assert a["statistics"]["r_squared"] == pytest.approx(b["statistics"]["r_squared"], rel=1e-12)
    for entry in fast["groups"]:
        rows = pd.DataFrame(LEVELS)[lambda f, name=entry["group"]: f["g"] == name]
        formula = "y ~ x + kind" if rows["kind"].nunique() > 1 else "y ~ x"
        result = smf.ols(formula, rows).fit()
        terms = entry["statistics"]["coefficients"]
        names = [t["term"].replace("(Intercept)", "Intercept") for t in terms]
        assert [t["estimate"] for t in terms] == pytest.approx(list(result.params[names]), rel=1e-9)


def test_a_test_level_its_group_did_not_have_is_a_422_naming_test(client: falcon.testing.TestClient) -> None:
    test = {"g": ["a", "b"], "x": [1, 1], "kind": ["p", "p"]}
    answer = post(client, {"train": LEVELS, "formula": "y ~ x + kind", "by": "g", "test": test})
    assert answer.status_code == 422 and answer.json["field"] == "test"
    assert "row 1" in answer.json["detail"] and "'b'" in answer.json["detail"]


def test_a_group_model_follows_the_missing_rules_for_the_by_column(client: falcon.testing.TestClient) -> None:
    model = group_answer(client)
    test = {"g": ["b", None, "a"], "x": [1, 1, 1]}
    refused = post(client, {"model": model, "test": test}, "/predict")
    assert (
        refused.status_code == 422 and refused.json["field"] == "test" and "row 1" in refused.json["detail"]
    )
    dropped = post(client, {"model": model, "test": test, "missing": "drop"}, "/predict").json
    assert dropped["predictions"][0] == pytest.approx(10.0) and dropped["predictions"][1] is None
    assert dropped["predictions"][2] == pytest.approx(3.0)


def test_row_order_does_not_change_any_groups_fit(client: falcon.testing.TestClient) -> None:
    frame = random_table(7, groups=5, rows=10)
    body = {"formula": "y ~ x + z + kind", "by": "g", "weight": "w", "statistics": True}
    ordered = post(client, {**body, "train": frame.sort_values("g", kind="stable").to_dict("list")}).json
    shuffled = post(client, {**body, "train": frame.sample(frac=1.0, random_state=3).to_dict("list")}).json
    for a, b in zip(ordered["groups"], shuffled["groups"], strict=True):
        assert a["group"] == b["group"] and a["feature_names"] == b["feature_names"]
        assert a["coef"] == pytest.approx(b["coef"], rel=1e-12)
        assert a["statistics"]["r_squared"] == pytest.approx(b["statistics"]["r_squared"], rel=1e-12)


def test_each_group_is_fitted_by_a_fresh_linear_regression(
    client: falcon.testing.TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sklearn.linear_model import LinearRegression

    import service.fitting

    made: list[object] = []

    class Counted(LinearRegression):  # type: ignore[misc]
        def __init__(self, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            made.append(self)

    monkeypatch.setattr(service.fitting, "LinearRegression", Counted)
    answer = post(client, {"train": TRAIN, "formula": "y ~ x1", "by": "store", "missing": "drop"}).json
    assert len(made) == len(answer["groups"]) == 4
    assert len({id(m) for m in made}) == 4


def test_intervals_are_given_even_when_every_test_row_is_left_out(client: falcon.testing.TestClient) -> None:
    test = {"g": ["a", None], "x": [None, 1]}
    body = {
        "train": SMALL,
        "formula": "y ~ x",
        "by": "g",
        "test": test,
        "missing": "drop",
        "interval": "confidence",
    }
    answer = post(client, body).json
    assert answer["predictions"] == [None, None]
    assert answer["intervals"] == {
        "lower": [None, None],
        "upper": [None, None],
        "level": 0.95,
        "kind": "confidence",
    }
