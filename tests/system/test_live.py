"""Through a real waitress server on a free port."""

from __future__ import annotations

import http.client
import socket
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlsplit

import numpy as np
import orjson
import pytest

import service

pytestmark = pytest.mark.live


@pytest.fixture(scope="module")
def server() -> Iterator[service.server.BackgroundServer]:
    with service.serve_in_background(port=0, max_body_mb=1) as running:
        yield running


def post(url: str, path: str, body: bytes, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    try:
        connection.request("POST", path, body=body, headers={"Content-Type": "application/json", **(headers or {})})
        answer = connection.getresponse()
        return answer.status, {k.lower(): v for k, v in answer.getheaders()}, answer.read()
    finally:
        connection.close()


def test_many_concurrent_requests_each_get_their_own_answer(server: service.server.BackgroundServer) -> None:
    rng = np.random.default_rng(11)
    cases = []
    for i in range(48):
        n, p = int(rng.integers(10, 400)), int(rng.integers(1, 8))
        X = rng.normal(size=(n, p))
        coef = rng.integers(-9, 9, size=p).astype(float)
        y = X @ coef + i
        X_test = rng.normal(size=(int(rng.integers(1, 20)), p))
        cases.append((X, y, X_test, coef, float(i)))

    def run(case: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, float]) -> dict[str, object]:
        X, y, X_test, _, _ = case
        body = orjson.dumps({"X_train": X, "y_train": y, "X_test": X_test}, option=orjson.OPT_SERIALIZE_NUMPY)
        status, _, content = post(server.url, "/predict", body)
        assert status == 200, content
        return orjson.loads(content)  # type: ignore[no-any-return]

    with ThreadPoolExecutor(max_workers=16) as pool:
        answers = list(pool.map(run, cases))
    for (X, _, X_test, coef, intercept), answer in zip(cases, answers, strict=True):
        np.testing.assert_allclose(answer["coef"], coef, atol=1e-9)
        assert answer["intercept"] == pytest.approx(intercept, abs=1e-9)
        np.testing.assert_allclose(answer["predictions"], X_test @ coef + intercept, atol=1e-8)
        assert answer["n_samples"] == len(X)


def test_server_header_names_no_version(server: service.server.BackgroundServer) -> None:
    status, headers, _ = post(server.url, "/fit", b'{"X_train": [1, 2], "y_train": [1, 2]}')
    assert status == 200
    assert headers["server"] == "fitserve"


def test_bad_requests_leave_the_server_serving(server: service.server.BackgroundServer) -> None:
    for body in (b"{", b"", b'{"X_train": [[1, null]], "y_train": [1]}', b"\xff\xfe"):
        status, headers, content = post(server.url, "/fit", body)
        assert 400 <= status < 500 and headers["content-type"] == "application/problem+json"
        orjson.loads(content)
    status, _, _ = post(server.url, "/fit", b'{"X_train": [1, 2, 3], "y_train": [1, 2, 4]}')
    assert status == 200


def test_huge_declared_body_is_refused_before_it_is_sent(server: service.server.BackgroundServer) -> None:
    parts = urlsplit(server.url)
    with socket.create_connection((parts.hostname, parts.port), timeout=10) as connection:
        connection.sendall(
            b"POST /fit HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: 1000000000000\r\n\r\n"
        )
        answer = b""
        while b"\r\n\r\n" not in answer or not answer.rstrip().endswith(b"}"):
            chunk = connection.recv(65536)
            if not chunk:
                break
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 413")
    assert b"application/problem+json" in head.lower()
    assert orjson.loads(body)["status"] == 413
