"""``service.client`` with ``by``: one fit per group from a DataFrame, read by group, and predicted again."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pandas as pd
import pytest

import service
from service import client


@pytest.fixture(scope="module")
def url() -> Iterator[str]:
    with service.serve_in_background(port=0) as server:
        yield server.url


TRAIN = pd.DataFrame(
    {
        "store": ["b", "a", "a", "b", "a", "b", "a", "b"],
        "sqft": [50.0, 60.0, 70.0, 80.0, 90.0, 100.0, 110.0, 120.0],
        "hood": ["x", "y", "x", "y", "y", "x", "x", "y"],
        "price": [101.0, 122.0, 139.0, 170.0, 182.0, 196.0, 221.0, 250.0],
    }
)
TEST = pd.DataFrame({"store": ["a", "b", None], "sqft": [65.0, 65.0, 65.0], "hood": ["x", "x", "x"]})


def test_fit_by_a_column_gives_one_fit_per_group_read_by_its_value(url: str) -> None:
    answer = client.fit(url, TRAIN, formula="price ~ sqft", by="store", X_test=TEST, missing="drop")
    fits = client.groups(answer)
    assert list(fits) == ["a", "b"]
    for name, fit in fits.items():
        rows = TRAIN[TRAIN["store"] == name]
        slope, intercept = np.polyfit(rows["sqft"], rows["price"], 1)
        assert fit["coef"] == pytest.approx([slope], rel=1e-9)
        assert fit["intercept"] == pytest.approx(intercept, rel=1e-9)
    expected = [fits[s]["intercept"] + fits[s]["coef"][0] * 65.0 for s in ("a", "b")]
    assert answer["predictions"][:2] == pytest.approx(expected, rel=1e-12)
    assert answer["predictions"][2] is None


def test_a_group_answer_predicts_again_as_a_model(url: str) -> None:
    answer = client.fit(url, TRAIN, formula="price ~ sqft + hood", by="store", X_test=TEST, missing="drop")
    again = client.predict(url, TEST, model=answer, missing="drop")
    assert again["predictions"][:2] == pytest.approx(answer["predictions"][:2], rel=1e-15)
    alone = client.predict(url, TEST.iloc[:1], model=client.groups(answer)["a"])
    assert alone["predictions"] == pytest.approx(answer["predictions"][:1], rel=1e-15)
