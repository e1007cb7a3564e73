"""The benchmark's payloads, the in-process floor, and how an answer is compared with the floor's."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson
from sklearn.linear_model import LinearRegression

SEED = 20240611
RELATIVE_TOLERANCE = 1e-12


@dataclass(frozen=True)
class Payload:
    """A benchmark payload: its shape, rounds, and fitserve's target ratio."""

    name: str
    rows: int
    features: int
    test_rows: int
    rounds: int
    target: float  # small: service rate / floor rate >= target; else service / floor time <= target


PAYLOADS = {
    "small": Payload("small", 50, 3, 10, rounds=3, target=1.0),
    "medium": Payload("medium", 10_000, 10, 1_000, rounds=9, target=0.8),
    "large": Payload("large", 200_000, 20, 10_000, rounds=3, target=0.7),
}
def make_body(payload: Payload, seed: int = SEED) -> bytes:
    """Serialize a seeded random regression problem of the payload's shape as JSON bytes."""
    rng = np.random.default_rng([seed, payload.rows, payload.features])
    X = rng.standard_normal((payload.rows, payload.features))
    beta = rng.uniform(-5, 5, payload.features)
    y = 3.0 + X @ beta + 0.5 * rng.standard_normal(payload.rows)
    X_test = rng.standard_normal((payload.test_rows, payload.features))
    return orjson.dumps({"X_train": X, "y_train": y, "X_test": X_test}, option=orjson.OPT_SERIALIZE_NUMPY)


def floor(body: bytes) -> bytes:
    """The in-process floor: parse, convert, fit, predict and serialize, nothing else."""
    document = orjson.loads(body)
    X = np.asarray(document["X_train"], dtype=np.float64)
    y = np.asarray(document["y_train"], dtype=np.float64)
    X_test = np.asarray(document["X_test"], dtype=np.float64)
    model = LinearRegression().fit(X, y)
    predictions = model.predict(X_test)
    answer = {"coef": model.coef_, "intercept": float(model.intercept_), "predictions": predictions}
    return orjson.dumps(answer, option=orjson.OPT_SERIALIZE_NUMPY)


def compare(answer: bytes, reference: bytes) -> dict[str, Any]:
    """Compare an answer's coef, intercept and predictions to the floor's, to 1e-12 relative.

    Each field passes when ``max |a - b| <= 1e-12 * max |b|`` (relative to the field's
    largest magnitude, so that a value near zero does not need digits it cannot have).
    """
    got, want = orjson.loads(answer), orjson.loads(reference)
    worst, problems = 0.0, []
    for key in ("coef", "intercept", "predictions"):
        a = np.atleast_1d(np.asarray(got.get(key, np.nan), dtype=np.float64)).ravel()
        b = np.atleast_1d(np.asarray(want[key], dtype=np.float64)).ravel()
        if a.shape != b.shape:
            problems.append(f"{key}: shape {a.shape} instead of {b.shape}")
            continue
        difference = float(np.abs(a - b).max()) / (float(np.abs(b).max()) or 1.0)
        worst = max(worst, difference if difference == difference else np.inf)
    return {"ok": not problems and worst <= RELATIVE_TOLERANCE, "max_relative": worst, "problems": problems}
