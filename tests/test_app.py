"""The app through falcon.testing: endpoints, answers, auth, CORS, sizes and media types."""

from __future__ import annotations

import logging

import numpy as np
import orjson
import pytest
from falcon import testing

from service import __version__, create_app
from service.settings import Settings

SEED = {"X_train": [[1, 2], [2, 3], [3, 5], [4, 4]], "y_train": [3, 5, 8, 8], "X_test": [[5, 6]]}


def app_client(**settings: object) -> testing.TestClient:
    return testing.TestClient(create_app(Settings(**settings)))  # type: ignore[arg-type]


def test_health(client: testing.TestClient) -> None:
    answer = client.simulate_get("/health")
    assert answer.status_code == 200
    assert answer.json == {"status": "ok", "version": __version__}


def test_openapi_document(client: testing.TestClient) -> None:
    answer = client.simulate_get("/openapi.json")
    assert answer.status_code == 200
    assert answer.json["openapi"].startswith("3.1")
    assert answer.json["info"]["version"] == __version__


def test_seed_example_works_unchanged_and_gets_coefficients(client: testing.TestClient) -> None:
    answer = client.simulate_post("/predict", json=SEED)
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "application/json"
    body = answer.json
    assert body["predictions"] == pytest.approx([11.0], rel=1e-12)
    assert body["coef"] == pytest.approx([1.0, 1.0], rel=1e-12, abs=1e-12)
    assert body["intercept"] == pytest.approx(0.0, abs=1e-12)
    assert list(body) == ["coef", "intercept", "predictions", "n_samples", "n_features", "n_targets", "rank", "warnings"]
    assert (body["n_samples"], body["n_features"], body["n_targets"], body["rank"]) == (4, 2, 1, 2)


def test_fit_without_test_rows_has_no_predictions(client: testing.TestClient) -> None:
    body = client.simulate_post("/fit", json={"X_train": SEED["X_train"], "y_train": SEED["y_train"]}).json
    assert "predictions" not in body and body["coef"] == pytest.approx([1.0, 1.0])


@pytest.mark.parametrize(
    "X_train, X_test",
    [
        pytest.param([[1, 2], [2, 3], [3, 5], [4, 4]], [[5, 6]], id="rows"),
        pytest.param({"a": [1, 2, 3, 4], "b": [2, 3, 5, 4]}, {"b": [6], "a": [5]}, id="columns"),
        pytest.param(
            [{"a": 1, "b": 2}, {"b": 3, "a": 2}, {"a": 3, "b": 5}, {"a": 4, "b": 4}], [{"b": 6, "a": 5}], id="records"
        ),
        pytest.param({"a": [1, 2, 3, 4], "b": [2, 3, 5, 4]}, [[5, 6]], id="named-then-positional"),
    ],
)
def test_every_matrix_form_gives_the_same_fit(client: testing.TestClient, X_train: object, X_test: object) -> None:
    body = client.simulate_post("/predict", json={"X_train": X_train, "y_train": [3, 5, 8, 8], "X_test": X_test}).json
    assert body["coef"] == pytest.approx([1.0, 1.0], abs=1e-12)
    assert body["predictions"] == pytest.approx([11.0])
    if isinstance(X_train, (dict, list)) and not isinstance(X_train[0] if isinstance(X_train, list) else 0, list):
        assert body["feature_names"] == ["a", "b"]


def test_flat_list_is_one_feature(client: testing.TestClient) -> None:
    body = client.simulate_post("/predict", json={"X_train": [1, 2, 3], "y_train": [2, 4, 6], "X_test": [10]}).json
    assert body["coef"] == pytest.approx([2.0]) and body["predictions"] == pytest.approx([20.0])


def test_several_targets(client: testing.TestClient) -> None:
    X = [[1, 0], [0, 1], [1, 1], [2, 1]]
    Y = [[x0 + 2 * x1, 3 * x0 - x1 + 1] for x0, x1 in X]
    body = client.simulate_post("/predict", json={"X_train": X, "y_train": Y, "X_test": [[1, 2]]}).json
    assert np.allclose(body["coef"], [[1, 2], [3, -1]], atol=1e-12)
    assert np.allclose(body["intercept"], [0, 1], atol=1e-12)
    assert np.allclose(body["predictions"], [[5, 2]])
    assert body["n_targets"] == 2 and "target_names" not in body


def test_named_targets(client: testing.TestClient) -> None:
    y = {"up": [1, 2, 3], "down": [3, 2, 1]}
    body = client.simulate_post("/predict", json={"X_train": [1, 2, 3], "y_train": y, "X_test": [4]}).json
    assert body["target_names"] == ["up", "down"]
    assert np.allclose(body["predictions"], [[4, 0]])


def test_single_named_target_is_flat(client: testing.TestClient) -> None:
    body = client.simulate_post("/fit", json={"X_train": [1, 2, 3], "y_train": {"t": [2, 4, 6]}}).json
    assert body["target_names"] == ["t"] and body["coef"] == pytest.approx([2.0])
    assert isinstance(body["intercept"], float)


def test_rows_of_one_value_are_one_target(client: testing.TestClient) -> None:
    body = client.simulate_post("/fit", json={"X_train": [1, 2, 3], "y_train": [[2], [4], [6]]}).json
    assert body["coef"] == pytest.approx([2.0]) and body["n_targets"] == 1


def test_options_reach_the_fit(client: testing.TestClient) -> None:
    body = client.simulate_post(
        "/fit", json={"X_train": [1, 2, 3], "y_train": [3, 5, 7], "fit_intercept": False}
    ).json
    assert body["intercept"] == 0.0 and body["coef"][0] == pytest.approx(34 / 14)
    body = client.simulate_post("/fit", json={"X_train": [1, 2, 3], "y_train": [3, 1, -1], "positive": True}).json
    assert body["coef"] == [0.0] and body["rank"] is None


def test_answer_numbers_are_finite_json(client: testing.TestClient) -> None:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(30, 3))
    answer = client.simulate_post("/predict", json={"X_train": X.tolist(), "y_train": X[:, 0].tolist(), "X_test": X.tolist()})
    assert b"NaN" not in answer.content and b"Infinity" not in answer.content
    orjson.loads(answer.content)


def test_csv_answer_when_asked(client: testing.TestClient) -> None:
    answer = client.simulate_post("/predict", json=SEED, headers={"Accept": "text/csv"})
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/csv")
    header, row = answer.text.strip().split("\n")
    assert header == "y" and float(row) == pytest.approx(11.0)


@pytest.mark.parametrize("accept", ["text/html", "application/xml", "text/csv", "*/*"])
def test_errors_are_problem_json_whatever_accept_says(client: testing.TestClient, accept: str) -> None:
    for answer in (
        client.simulate_get("/nowhere", headers={"Accept": accept}),
        client.simulate_get("/fit", headers={"Accept": accept}),
        client.simulate_post("/fit", json={"X_tset": []}, headers={"Accept": accept}),
    ):
        assert answer.headers["content-type"] == "application/problem+json"
        assert set(answer.json) >= {"title", "status", "detail"}
        assert answer.json["status"] == answer.status_code


def test_405_names_the_allowed_methods(client: testing.TestClient) -> None:
    answer = client.simulate_get("/predict")
    assert answer.status_code == 405 and "POST" in answer.headers["allow"]


def test_curl_form_default_gets_a_hint() -> None:
    answer = app_client().simulate_post(
        "/fit", body="X_train=1", headers={"Content-Type": "application/x-www-form-urlencoded"}
    )
    assert answer.status_code == 415 and "--json" in answer.json["detail"]


def test_body_over_the_limit_is_refused_from_its_declared_length() -> None:
    client = app_client(max_body_mb=1 / 1024)
    body = orjson.dumps({"X_train": list(range(400)), "y_train": list(range(400))})
    assert len(body) > 1024
    answer = client.simulate_post("/fit", body=body, content_type="application/json")
    assert answer.status_code == 413 and answer.headers["content-type"] == "application/problem+json"
    assert "FITSERVE_MAX_BODY_MB" in answer.json["detail"]


def test_undeclared_body_over_the_limit_is_capped_while_reading() -> None:
    app = create_app(Settings(max_body_mb=1 / 1024))
    body = orjson.dumps({"X_train": list(range(400)), "y_train": list(range(400))})
    environ = testing.create_environ(path="/fit", method="POST", body=body, headers={"Content-Type": "application/json"})
    del environ["CONTENT_LENGTH"]  # as with a chunked body
    environ["wsgi.input_terminated"] = True
    start_response = testing.StartResponseMock()
    answer = b"".join(app(environ, start_response))
    assert start_response.status.startswith("413")
    assert orjson.loads(answer)["status"] == 413


def test_token_is_required_when_configured() -> None:
    client = app_client(token="s3cret")
    assert client.simulate_post("/predict", json=SEED).status_code == 401
    wrong = client.simulate_post("/predict", json=SEED, headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401 and wrong.headers["content-type"] == "application/problem+json"
    assert "Bearer" in wrong.headers["www-authenticate"]
    right = client.simulate_post("/predict", json=SEED, headers={"Authorization": "Bearer s3cret"})
    assert right.status_code == 200
    assert client.simulate_get("/health").status_code == 200
    assert client.simulate_get("/openapi.json").status_code == 200
    preflight = client.simulate_options(
        "/fit", headers={"Origin": "https://a.example", "Access-Control-Request-Method": "POST"}
    )
    assert preflight.status_code < 300


def test_no_auth_by_default(client: testing.TestClient) -> None:
    assert client.simulate_post("/predict", json=SEED, headers={"Authorization": "Bearer x"}).status_code == 200


def test_cors_only_for_configured_origins() -> None:
    client = app_client(cors_origins=("https://notebook.example",))
    preflight = {"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "content-type"}
    allowed = client.simulate_options("/fit", headers={"Origin": "https://notebook.example", **preflight})
    assert allowed.status_code < 300
    assert allowed.headers["access-control-allow-origin"] == "https://notebook.example"
    assert "POST" in allowed.headers["access-control-allow-methods"]
    other = client.simulate_options("/fit", headers={"Origin": "https://evil.example", **preflight})
    assert not any(h.startswith("access-control-") for h in other.headers)
    simple = client.simulate_post("/predict", json=SEED, headers={"Origin": "https://notebook.example"})
    assert simple.headers["access-control-allow-origin"] == "https://notebook.example"


def test_no_cors_headers_by_default(client: testing.TestClient) -> None:
    answer = client.simulate_options(
        "/fit", headers={"Origin": "https://notebook.example", "Access-Control-Request-Method": "POST"}
    )
    assert not any(h.startswith("access-control-") for h in answer.headers)


def test_unexpected_failure_is_a_generic_500_and_logs_no_payload(
    client: testing.TestClient, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def explode(request: object) -> None:
        raise RuntimeError("secret-value-123")

    monkeypatch.setattr("service.resources.fit", explode)
    with caplog.at_level(logging.ERROR, logger="fitserve"):
        answer = client.simulate_post("/predict", json=SEED)
    assert answer.status_code == 500 and answer.headers["content-type"] == "application/problem+json"
    assert "secret-value-123" not in answer.text and "Traceback" not in answer.text
    assert "RuntimeError" in caplog.text and "secret-value-123" not in caplog.text
    assert client.simulate_post("/predict", json=SEED).status_code == 500  # still patched, still answering


def test_out_of_memory_is_503(client: testing.TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    def exhaust(request: object) -> None:
        raise MemoryError

    monkeypatch.setattr("service.resources.fit", exhaust)
    answer = client.simulate_post("/predict", json=SEED)
    assert answer.status_code == 503 and answer.headers["content-type"] == "application/problem+json"
    monkeypatch.undo()
    assert client.simulate_post("/predict", json=SEED).status_code == 200
