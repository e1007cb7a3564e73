"""Accuracy against NIST's certified values, through the HTTP API as a client sends data."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import orjson
import pytest
from falcon import testing

import service
from service import create_app

STRD = Path(__file__).resolve().parents[1] / "fixtures" / "strd"
SETS = sorted(STRD.glob("*.json"))


def test_reference_sets_are_there() -> None:
    assert len(SETS) >= 5, f"expected the NIST sets in {STRD}"


def lre(estimate: np.ndarray, certified: np.ndarray) -> np.ndarray:
    """Correct significant digits, as NIST defines them (absolute error where certified is 0)."""
    error = np.abs(estimate - certified)
    relative = np.where(certified == 0, error, error / np.where(certified == 0, 1.0, np.abs(certified)))
    with np.errstate(divide="ignore"):
        return np.minimum(15.0, -np.log10(relative))


def design(reference: dict[str, object]) -> np.ndarray:
    """The design columns a client builds: x, x^2, ... for polynomials; x as given otherwise."""
    x = np.asarray(reference["x"], dtype=np.float64)
    if reference["model"] == "polynomial":
        return np.column_stack([x**k for k in range(1, int(reference["degree"]) + 1)])  # type: ignore[call-overload]
    return x if x.ndim == 2 else x[:, None]


@pytest.fixture(scope="module")
def client() -> testing.TestClient:
    return testing.TestClient(create_app())


@pytest.mark.parametrize("path", SETS, ids=[p.stem for p in SETS])
def test_coefficients_have_nine_correct_digits(client: testing.TestClient, path: Path) -> None:
    reference = json.loads(path.read_text())
    body = {
        "X_train": design(reference).tolist(),
        "y_train": np.asarray(reference["y"], dtype=np.float64).tolist(),
        "fit_intercept": reference["intercept"],
    }
    answer = client.simulate_post("/fit", body=orjson.dumps(body), content_type="application/json")
    assert answer.status_code == 200, answer.text
    fitted = answer.json
    estimate = np.array(([fitted["intercept"]] if reference["intercept"] else []) + fitted["coef"])
    digits = lre(estimate, np.array(reference["certified"]["params"]))
    assert digits.min() >= 9, f"{path.stem}: LRE {np.round(digits, 1)}"
    assert fitted["rank"] == design(reference).shape[1]
    assert fitted["warnings"] == [] or reference["certified"]["residual_sd"] == 0


def test_duplicated_column_is_rank_deficient_with_a_warning(client: testing.TestClient) -> None:
    rng = np.random.default_rng(7)
    X = rng.normal(size=(40, 3))
    X = np.column_stack([X, X[:, 1]])
    y = X @ np.array([1.0, 2.0, 3.0, 4.0]) + rng.normal(size=40)
    answer = client.simulate_post("/fit", json={"X_train": X.tolist(), "y_train": y.tolist()}).json
    assert answer["rank"] == 3
    assert any("rank deficient" in w for w in answer["warnings"])
    # Both copies of the column share its coefficient, as the minimum-norm solution does.
    assert answer["coef"][1] == pytest.approx(answer["coef"][3], rel=1e-9)


def test_scaled_copy_of_a_column_is_rank_deficient(client: testing.TestClient) -> None:
    rng = np.random.default_rng(8)
    X = rng.normal(size=(40, 3))
    X = np.column_stack([X, 3e5 * X[:, 0]])
    answer = client.simulate_post("/fit", json={"X_train": X.tolist(), "y_train": X[:, 0].tolist()}).json
    assert answer["rank"] == 3
    assert any("rank deficient" in w for w in answer["warnings"])


def test_default_tolerance_would_lose_the_signal() -> None:
    """The reason for the solver settings: sklearn's default tol drops Pontius's x^2 term."""
    from sklearn.linear_model import LinearRegression

    reference = json.loads((STRD / "Pontius.json").read_text())
    X = design(reference)
    default = LinearRegression().fit(X, np.asarray(reference["y"], dtype=np.float64))
    digits = lre(default.coef_, np.array(reference["certified"]["params"][1:]))
    assert digits.min() < 9


@pytest.mark.live
def test_docs_table_is_what_the_accuracy_script_prints() -> None:
    """docs/accuracy.md shows the figures ``python -m benchmarks.accuracy`` prints (to half a digit)."""
    from benchmarks import accuracy

    documented = {}
    for line in (Path(__file__).resolve().parents[2] / "docs" / "accuracy.md").read_text().splitlines():
        cells = [cell.strip() for cell in line.strip("|").split("|")]
        if line.startswith("| ") and cells[0] in {path.stem for path in SETS}:
            documented[cells[0]] = [float(cell) for cell in cells[1:]]
    with service.serve_in_background(port=0) as server:
        measured = {path.stem: list(accuracy.digits(server.url, json.loads(path.read_text())).values()) for path in SETS}
    assert documented.keys() == measured.keys()
    for name, figures in measured.items():
        assert figures == pytest.approx(documented[name], abs=0.5), name
        assert min(figures) >= 9, name
