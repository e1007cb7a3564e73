"""Pictures of a fit: what they hold, their size, the numbers behind them, and when there is none (406)."""

from __future__ import annotations

import io
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import falcon.testing
import numpy as np
import pytest
import statsmodels.api as sm
from matplotlib import image as mpimg

from service import plots
from service.fitting import fit
from service.negotiation import MAX_PICTURE_TARGETS
from service.request import FitRequest, Options

ROOT = Path(__file__).resolve().parents[1]
SVG = "{http://www.w3.org/2000/svg}"
LINE = {
    "X_train": {"area": [52, 61, 70, 74, 85, 90, 104, 118]},
    "y_train": {"price": [189, 195, 241, 231, 283, 268, 329, 353]},
    "X_test": {"area": [65, 95, 125]},
}


def parse_svg(content: bytes) -> tuple[ET.Element, set[str], list[str]]:
    """The SVG's root, the ids of its groups, and its text (matplotlib writes each text as a comment)."""
    root = ET.fromstring(content, parser=ET.XMLParser(target=ET.TreeBuilder(insert_comments=True)))
    assert root.tag == f"{SVG}svg"
    ids = {element.get("id", "") for element in root.iter()}
    texts = [str(element.text).strip() for element in root.iter() if element.tag is ET.Comment]
    return root, ids, texts


def group(root: ET.Element, gid: str) -> ET.Element:
    found = root.find(f".//{SVG}g[@id='{gid}']")
    assert found is not None, gid
    return found


def markers(root: ET.Element, gid: str) -> int:
    """How many points a group of the SVG draws (matplotlib draws each marker as a <use>)."""
    return len(group(root, gid).findall(f".//{SVG}use"))


def picture(client: falcon.testing.TestClient, body: dict[str, object], accept: str, path: str = "/fit") -> falcon.testing.Result:
    return client.simulate_post(path, json=body, headers={"Accept": accept})


def png_shape(content: bytes) -> tuple[int, ...]:
    assert content.startswith(b"\x89PNG\r\n\x1a\n")
    return tuple(mpimg.imread(io.BytesIO(content), format="png").shape)


def test_one_feature_draws_points_line_predictions_and_the_band(client: falcon.testing.TestClient) -> None:
    answer = picture(client, {**LINE, "interval": "prediction", "level": 0.9}, "image/svg+xml")
    assert answer.status_code == 200 and answer.headers["content-type"] == "image/svg+xml"
    assert answer.headers["vary"] == "Accept"
    root, ids, texts = parse_svg(answer.content)
    assert {"panel-fit", "training", "fitted-line", "predictions", "interval-band"} <= ids
    assert markers(root, "training") == 8 and markers(root, "predictions") == 3
    assert "area" in texts and "price" in texts and "90% prediction interval" in texts
    assert "thinned" not in ids


def test_without_an_interval_there_is_no_band(client: falcon.testing.TestClient) -> None:
    _, ids, _ = parse_svg(picture(client, LINE, "image/svg+xml").content)
    assert "interval-band" not in ids and "predictions" in ids


def test_unnamed_data_is_labelled_x0_and_y(client: falcon.testing.TestClient) -> None:
    _, ids, texts = parse_svg(picture(client, {"X_train": [1, 2, 3, 4], "y_train": [1, 3, 2, 4]}, "image/svg+xml").content)
    assert "x0" in texts and "y" in texts and "predictions" not in ids


def test_several_features_draw_a_row_of_diagnostics_per_target(client: falcon.testing.TestClient) -> None:
    rng = np.random.default_rng(3)
    X = rng.normal(size=(60, 3))
    Y = X @ rng.normal(size=(3, 3)) + rng.normal(size=(60, 3))
    body = {"X_train": {"a": X[:, 0].tolist(), "b": X[:, 1].tolist(), "c": X[:, 2].tolist()},
            "y_train": {"rent": Y[:, 0].tolist(), "cost": Y[:, 1].tolist(), "age": Y[:, 2].tolist()}}  # fmt: skip
    root, ids, texts = parse_svg(picture(client, body, "image/svg+xml").content)
    for j, target in enumerate(["rent", "cost", "age"]):
        assert {f"panel-residuals-{j}", f"panel-qq-{j}"} <= ids
        assert markers(root, f"residuals-{j}") == 60 and markers(root, f"qq-{j}") == 60
        assert f"Fitted values of {target}" in texts and f"Standardized residuals of {target}" in texts
    assert "panel-residuals-3" not in ids and "panel-fit" not in ids
    assert texts.count("Theoretical quantiles") == 3 and texts.count("Residuals") == 3


def test_one_feature_and_two_targets_is_diagnostics_too(client: falcon.testing.TestClient) -> None:
    _, ids, _ = parse_svg(picture(client, {"X_train": [1, 2, 3, 4, 5], "y_train": [[1, 2], [2, 1], [3, 5], [4, 4], [6, 5]]}, "image/svg+xml").content)
    assert {"panel-residuals-1", "panel-qq-1"} <= ids and "panel-fit" not in ids


@pytest.mark.parametrize(
    ("body", "size"),
    [
        pytest.param(LINE, (480, 640), id="one feature"),
        pytest.param({"X_train": [[1, 2], [2, 1], [3, 5], [4, 3]], "y_train": [[1, 2], [2, 1], [3, 5], [4, 4]]}, (800, 1000), id="two targets"),
    ],
)  # fmt: skip
def test_png_decodes_to_the_size_the_figure_says(client: falcon.testing.TestClient, body: dict[str, object], size: tuple[int, int]) -> None:
    answer = picture(client, body, "image/png")
    assert answer.status_code == 200 and answer.headers["content-type"] == "image/png"
    assert png_shape(answer.content) == (*size, 4)


def test_predict_from_training_data_draws_too(client: falcon.testing.TestClient) -> None:
    answer = picture(client, {**LINE, "interval": "confidence"}, "image/png", "/predict")
    assert answer.status_code == 200 and png_shape(answer.content)[:2] == (480, 640)


def test_json_stays_the_default_and_csv_as_before(client: falcon.testing.TestClient) -> None:
    for accept in (None, "*/*", "application/json", "application/*", "text/html, */*;q=0.1"):
        answer = client.simulate_post("/fit", json=LINE, headers={} if accept is None else {"Accept": accept})
        assert answer.status_code == 200 and answer.headers["content-type"] == "application/json", accept
    answer = client.simulate_post("/predict", json=LINE, headers={"Accept": "text/csv"})
    assert answer.headers["content-type"] == "text/csv" and answer.text.startswith("price\n")
    answer = client.simulate_post("/fit", json=LINE, headers={"Accept": "image/*"})
    assert answer.headers["content-type"] == "image/svg+xml"


MODEL = {"model": {"coef": [2.0], "intercept": 1.0, "feature_names": ["area"]}, "X_test": {"area": [1, 2]}}
ELEVEN = {"X_train": [1, 2, 3, 4], "y_train": [[float(i * j % 7) for j in range(11)] for i in range(4)]}


@pytest.mark.parametrize(
    ("path", "body", "accept", "says"),
    [
        pytest.param("/predict", MODEL, "image/svg+xml", "predicts from a 'model'", id="model, svg"),
        pytest.param("/predict", MODEL, "image/png", "application/json or text/csv", id="model, png"),
        pytest.param("/predict", MODEL, "image/*", "needs its training data", id="model, any image"),
        pytest.param("/fit", ELEVEN, "image/svg+xml", f"at most {MAX_PICTURE_TARGETS} targets", id="eleven targets"),
        pytest.param("/fit", LINE, "text/html", "image/svg+xml or image/png", id="html"),
        pytest.param("/fit", LINE, "application/xml, text/plain", "application/json, text/csv", id="xml or text"),
        pytest.param("/fit", LINE, "image/png;q=0", "got 'image/png;q=0'", id="refused png"),
    ],
)  # fmt: skip
def test_406_says_what_the_endpoint_gives(
    client: falcon.testing.TestClient, path: str, body: dict[str, object], accept: str, says: str
) -> None:
    answer = picture(client, body, accept, path)
    assert answer.status_code == 406
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.json["status"] == 406 and says in answer.json["detail"]


def test_a_picture_or_else_json_gives_json_where_no_picture_exists(client: falcon.testing.TestClient) -> None:
    answer = picture(client, MODEL, "image/svg+xml, application/json;q=0.5", "/predict")
    assert answer.status_code == 200 and answer.headers["content-type"] == "application/json"
    answer = picture(client, ELEVEN, "image/png, text/csv;q=0.1")
    assert answer.status_code == 200 and answer.headers["content-type"] == "text/csv"


def test_input_errors_stay_422_when_a_picture_is_asked(client: falcon.testing.TestClient) -> None:
    answer = picture(client, {"X_train": [1, 2], "y_train": [1]}, "image/svg+xml")
    assert answer.status_code == 422 and answer.headers["content-type"] == "application/problem+json"


def request_of(X: np.ndarray, Y: np.ndarray, weights: np.ndarray | None = None, X_test: np.ndarray | None = None) -> FitRequest:
    return FitRequest(X_train=X, y_train=Y, sample_weight=weights, X_test=X_test, options=Options())


def draw(request: FitRequest, kind: plots.Format = "svg") -> bytes:
    assert request.X_train is not None and request.y_train is not None
    training = plots.Training(request.X_train, request.y_train, request.sample_weight, request.X_test, True)
    return plots.draw(training, fit(request), kind)


def test_large_fits_are_thinned_and_the_figure_says_so() -> None:
    rng = np.random.default_rng(5)
    n = 3 * plots.MAX_POINTS + 17
    x = rng.normal(size=(n, 1))
    root, ids, texts = parse_svg(draw(request_of(x, 2 * x + rng.normal(size=(n, 1)), X_test=x[:5000])))
    assert markers(root, "training") == plots.MAX_POINTS and markers(root, "predictions") == plots.MAX_POINTS
    assert f"{plots.MAX_POINTS:,} of {n:,} points drawn in each panel (an even sample)" in texts
    X = rng.normal(size=(n, 2))
    root, ids, _ = parse_svg(draw(request_of(X, X @ [[1.0], [2.0]] + rng.normal(size=(n, 1)))))
    assert markers(root, "residuals-0") == plots.MAX_POINTS and markers(root, "qq-0") == plots.MAX_POINTS
    assert "thinned" in ids


def test_the_q_q_sample_keeps_both_tails() -> None:
    picked = plots.sample(10_001)
    assert len(picked) == plots.MAX_POINTS and picked[0] == 0 and picked[-1] == 10_000
    assert list(plots.sample(5)) == [0, 1, 2, 3, 4]


@pytest.mark.parametrize("weighted", [False, True], ids=["ols", "wls"])
def test_standardized_residuals_are_r_and_statsmodels_ones(weighted: bool) -> None:
    rng = np.random.default_rng(8)
    X = rng.normal(size=(40, 3))
    y = X @ [1.0, -2.0, 0.5] + 3 + rng.normal(size=40)
    weights = rng.uniform(0.2, 3.0, size=40) if weighted else None
    result = fit(request_of(X, y[:, None], weights))
    leverage, rank = plots.hat_values(X, weights, fit_intercept=True)
    residuals = y - (X @ result.coef[0] + result.intercept[0])
    ours = plots.standardize(residuals, weights, leverage, 40 - rank)
    # Weighted least squares is least squares on rows scaled by the root of their weight (R's rstandard).
    root = np.ones(40) if weights is None else np.sqrt(weights)
    influence = sm.OLS(root * y, root[:, None] * sm.add_constant(X)).fit().get_influence()
    np.testing.assert_allclose(leverage, influence.hat_matrix_diag, rtol=1e-10, atol=1e-12)
    assert ours is not None and rank == 4
    np.testing.assert_allclose(ours, influence.resid_studentized_internal, rtol=1e-9)


def test_leverage_of_a_rank_deficient_design_is_that_of_its_column_space() -> None:
    rng = np.random.default_rng(9)
    X = rng.normal(size=(30, 2))
    X = np.column_stack([X, X[:, 0] + X[:, 1]])
    leverage, rank = plots.hat_values(X, None, fit_intercept=True)
    design = np.column_stack([np.ones(30), X[:, :2]])
    hat = design @ np.linalg.solve(design.T @ design, design.T)
    assert rank == 3
    np.testing.assert_allclose(leverage, np.diag(hat), rtol=1e-9)


def test_a_fit_through_every_point_has_no_q_q_plot_but_a_picture() -> None:
    X = np.array([[1.0, 2.0], [2.0, 1.0], [3.0, 5.0]])
    _, ids, texts = parse_svg(draw(request_of(X, np.array([[1.0], [2.0], [3.0]]))))
    assert "panel-qq-0" in ids and "no residual degrees of freedom" in texts and "qq-0" not in ids


def test_zero_weights_leave_their_rows_out_of_the_panels() -> None:
    rng = np.random.default_rng(10)
    X = rng.normal(size=(50, 2))
    weights = np.where(np.arange(50) < 10, 0.0, 1.0)
    root, _, _ = parse_svg(draw(request_of(X, X @ [[1.0], [1.0]] + rng.normal(size=(50, 1)), weights)))
    assert markers(root, "residuals-0") == 40 and markers(root, "qq-0") == 40


def test_json_answers_never_import_matplotlib() -> None:
    script = (
        "import sys, falcon.testing, service\n"
        "client = falcon.testing.TestClient(service.create_app())\n"
        "assert client.simulate_post('/fit', json={'X_train': [1, 2, 3], 'y_train': [1, 2, 4]}).status_code == 200\n"
        "assert client.simulate_post('/fit', json={'X_train': [1, 2, 3], 'y_train': [1, 2, 4]},"
        " headers={'Accept': 'text/csv'}).status_code == 200\n"
        "assert client.simulate_get('/docs').status_code == 200\n"
        "assert 'matplotlib' not in sys.modules, 'matplotlib was imported'\n"
        "client.simulate_post('/fit', json={'X_train': [1, 2, 3], 'y_train': [1, 2, 4]}, headers={'Accept': 'image/png'})\n"
        "assert 'matplotlib' in sys.modules and 'matplotlib.pyplot' not in sys.modules\n"
    )
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, timeout=120)
    assert done.returncode == 0, done.stderr.decode()[-2000:]


def test_the_figure_is_the_same_bytes_for_the_same_fit() -> None:
    request = request_of(np.arange(10.0)[:, None], (np.arange(10.0) ** 1.5)[:, None])
    assert draw(request, "png") == draw(request, "png")


def test_a_picture_of_the_large_payload_stays_bounded() -> None:
    """200,000 rows of 20 features: the picture draws the same number of points as a small one.

    Its time and memory are measured by ``benchmarks/picture.py``, not asserted here.
    """
    rng = np.random.default_rng(12)
    X = rng.normal(size=(200_000, 20))
    y = X @ rng.normal(size=20) + rng.normal(size=200_000)
    svg = draw(request_of(X, y[:, None]))
    root, ids, _ = parse_svg(svg)
    assert markers(root, "residuals-0") == plots.MAX_POINTS and markers(root, "qq-0") == plots.MAX_POINTS
    assert "thinned" in ids and len(svg) < 1_000_000


def test_many_targets_share_the_figure_budget_of_points() -> None:
    rng = np.random.default_rng(13)
    X = rng.normal(size=(3000, 2))
    Y = X @ rng.normal(size=(2, MAX_PICTURE_TARGETS)) + rng.normal(size=(3000, MAX_PICTURE_TARGETS))
    root, ids, _ = parse_svg(draw(request_of(X, Y)))
    per_panel = plots.MAX_FIGURE_POINTS // (2 * MAX_PICTURE_TARGETS)
    assert {markers(root, f"residuals-{j}") for j in range(MAX_PICTURE_TARGETS)} == {per_panel}
    assert {markers(root, f"qq-{j}") for j in range(MAX_PICTURE_TARGETS)} == {per_panel}
    assert "thinned" in ids
