"""Security defaults.

Loopback unless told, the token compared in constant time and never logged, no CORS
unless configured, no version in ``Server``, short excerpts only in error bodies,
nothing written to disk.
"""

from __future__ import annotations

import hmac
import json
import logging
import os
import re
import secrets
import signal
import socket
import string
import subprocess
import sys
from pathlib import Path

import falcon.testing
import pytest
import requests

import service
from service import cli
from service.app import create_app
from service.server import create_server, listening, waitress_options
from service.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
JSON = {"Content-Type": "application/json"}


def test_binds_to_loopback_unless_told() -> None:
    """The default host is 127.0.0.1 everywhere: settings, the command, the server's socket."""
    assert Settings().host == "127.0.0.1"
    assert Settings.from_env({}).host == "127.0.0.1"
    seen: list[Settings] = []
    handler = signal.getsignal(signal.SIGTERM)
    try:
        assert cli.main([], serve=seen.append, environ={}) == 0
    finally:
        signal.signal(signal.SIGTERM, handler)
    assert seen[0].host == "127.0.0.1"
    server = create_server(Settings(port=0))
    try:
        assert [host for host, _ in listening(server)] == ["127.0.0.1"]
    finally:
        server.close()
    told = Settings.from_env({"FITSERVE_HOST": "0.0.0.0"})
    assert told.host == "0.0.0.0" and waitress_options(told)["host"] == "0.0.0.0"


@pytest.mark.live
def test_background_server_binds_to_loopback() -> None:
    """``serve_in_background`` listens on 127.0.0.1 only."""
    with service.serve_in_background(port=0) as server:
        assert server.url.startswith("http://127.0.0.1:")
        assert requests.get(server.url + "/health", timeout=30).status_code == 200


def test_token_is_compared_in_constant_time(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every check of the token goes through ``hmac.compare_digest``."""
    calls: list[tuple[bytes, bytes]] = []
    compare = hmac.compare_digest

    def spy(given: bytes, expected: bytes) -> bool:
        calls.append((given, expected))
        return compare(given, expected)

    monkeypatch.setattr("service.app.hmac.compare_digest", spy)
    client = falcon.testing.TestClient(create_app(Settings(token="s3cret")))
    body = {"X_train": [[1], [2], [3]], "y_train": [1, 2, 4]}
    for header, status in (("Bearer s3cret", 200), ("Bearer s3creT", 401), ("Bearer s", 401), (None, 401)):
        headers = {"Authorization": header} if header else {}
        assert client.simulate_post("/fit", json=body, headers=headers).status_code == status
    assert len(calls) == 4
    assert all(expected == b"Bearer s3cret" for _, expected in calls)


@pytest.mark.live
def test_token_is_never_logged(caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch) -> None:
    """No log record of the server carries the token, whatever the request, even when it fails."""
    token = "tok-" + secrets.token_hex(16)
    failures = iter([MemoryError(), RuntimeError("boom")])

    def failing_fit(request: object) -> object:
        raise next(failures)

    caplog.set_level(logging.DEBUG)
    with service.serve_in_background(port=0, token=token, max_body_mb=0.01) as server:
        url = server.url
        good = {"Authorization": f"Bearer {token}"}
        bad = {"Authorization": f"Bearer {token}x"}
        body = {"X_train": [[1], [2], [3]], "y_train": [1, 2, 4]}
        assert requests.post(url + "/fit", json=body, headers=good, timeout=30).status_code == 200
        assert requests.post(url + "/fit", json=body, headers=bad, timeout=30).status_code == 401
        assert requests.post(url + "/fit", data=b"{", headers={**good, **JSON}, timeout=30).status_code == 400
        assert (
            requests.post(url + "/fit", data=b" " * 20000, headers={**good, **JSON}, timeout=30).status_code
            == 413
        )
        assert requests.get(url + f"/{token}", headers=good, timeout=30).status_code == 404
        raw_exchange(url, f"GET /\x00{token} HTTP/1.1\r\nAuthorization: Bearer {token}\r\n\r\n".encode())
        monkeypatch.setattr("service.resources.fit", failing_fit)
        # The token in another header too (a query string on a JSON body is refused before the fit).
        failing = {**good, "Referer": f"{url}/?{token}"}
        assert requests.post(url + "/fit", json=body, headers=failing, timeout=30).status_code == 503
        assert requests.post(url + "/fit", json=body, headers=failing, timeout=30).status_code == 500
    records = [
        f"{r.name} {r.getMessage()} {r.exc_text or ''}"
        for r in caplog.records
        if r.name.startswith(("fitserve", "waitress", "falcon"))
    ]
    assert len(records) >= 2, "the server logged nothing: the test would prove nothing"
    assert not [r for r in records if token in r]


@pytest.mark.live
def test_token_is_never_logged_by_the_command() -> None:
    """The ``fitserve`` process's output, from start to SIGTERM, never carries the token."""
    token = "tok-" + secrets.token_hex(16)
    process = subprocess.Popen(
        [sys.executable, "-m", "service", "--port", "0", "--token", token],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        url = read_url(process)
        requests.post(
            url + "/fit", json={"X_train": [[1]]}, headers={"Authorization": f"Bearer {token}"}, timeout=30
        )
        requests.post(url + "/fit", json={}, headers={"Authorization": f"Bearer {token[:-1]}"}, timeout=30)
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=60)
    finally:
        process.kill()
        process.wait()
    assert "fitserve stopped" in err
    assert token not in out + err


@pytest.mark.live
def test_cors_is_off_unless_configured() -> None:
    """No CORS header for any origin by default; with an origin configured, for it alone."""
    preflight = {"Origin": "https://app.example", "Access-Control-Request-Method": "POST"}
    with service.serve_in_background(port=0) as server:
        for method, path in (("OPTIONS", "/fit"), ("GET", "/health"), ("POST", "/fit")):
            response = requests.request(method, server.url + path, headers=preflight, timeout=30)
            assert not [h for h in response.headers if h.lower().startswith("access-control-")]
    with service.serve_in_background(port=0, cors_origins=("https://app.example",)) as server:
        allowed_origin = requests.options(server.url + "/fit", headers=preflight, timeout=30)
        assert allowed_origin.headers.get("Access-Control-Allow-Origin") == "https://app.example"
        other = {**preflight, "Origin": "https://evil.example"}
        refused = requests.options(server.url + "/fit", headers=other, timeout=30)
        assert not [h for h in refused.headers if h.lower().startswith("access-control-allow-origin")]


@pytest.mark.live
def test_server_header_has_no_version() -> None:
    """``Server`` says ``fitserve``: no version, no waitress, on answers from the app and from waitress."""
    with service.serve_in_background(port=0, max_body_mb=0.01) as server:
        answers = [
            requests.get(server.url + "/health", timeout=30),
            requests.get(server.url + "/nowhere", timeout=30),
            requests.post(server.url + "/fit", json={}, timeout=30),
            requests.post(server.url + "/fit", data=b" " * 20000, headers=JSON, timeout=30),
        ]
        headers = [dict(a.headers) for a in answers]
        headers.append(parse_headers(raw_exchange(server.url, b"GARBAGE\r\n\r\n")))
    for each in headers:
        lowered = {k.lower(): v for k, v in each.items()}
        assert lowered["server"] == "fitserve"
        assert not {"x-powered-by", "via"} & set(lowered)
        assert not re.search(
            r"\d", " ".join(f"{k} {v}" for k, v in lowered.items() if k not in ("date", "content-length", "x-request-id"))
        )


MARKER = "".join(secrets.choice(string.ascii_letters) for _ in range(3000))
EXCERPT = 80  # the longest run of the input an error body may repeat

ECHO_CASES: dict[str, tuple[str, str, dict[str, str], bytes]] = {
    "unknown field": ("POST", "/fit", JSON, json.dumps({MARKER: 1}).encode()),
    "string in X_train": ("POST", "/fit", JSON, json.dumps({"X_train": [[MARKER]], "y_train": [1]}).encode()),
    "string in y_train": ("POST", "/fit", JSON, json.dumps({"X_train": [[1]], "y_train": [MARKER]}).encode()),
    "interval": (
        "POST",
        "/fit",
        JSON,
        json.dumps({"X_train": [[1]], "y_train": [1], "X_test": [[1]], "interval": MARKER}).encode(),
    ),
    "level": ("POST", "/fit", JSON, json.dumps({"X_train": [[1]], "y_train": [1], "level": MARKER}).encode()),
    "column name": (
        "POST",
        "/fit",
        JSON,
        json.dumps({"X_train": {"a": [1, 2]}, "y_train": [1, 2], "X_test": {MARKER: [1]}}).encode(),
    ),
    "feature names": (
        "POST",
        "/predict",
        JSON,
        json.dumps(
            {"model": {"coef": [1], "intercept": 0, "feature_names": [MARKER, MARKER]}, "X_test": [[1]]}
        ).encode(),
    ),
    "malformed JSON": ("POST", "/fit", JSON, b'{"X_train": ' + MARKER.encode()),
    "bad UTF-8": ("POST", "/fit", JSON, b'{"' + MARKER.encode() + b'\xff": 1}'),
    "not an object": ("POST", "/fit", JSON, json.dumps(MARKER).encode()),
    "content type": ("POST", "/fit", {"Content-Type": "text/" + MARKER}, b"{}"),
    "path": ("GET", "/" + MARKER, {}, b""),
    "method": ("DELETE", "/fit?" + MARKER, {}, b""),
    "query": ("POST", "/fit?" + MARKER + "=1", JSON, b"{}"),
}


@pytest.mark.parametrize("case", ECHO_CASES)
def test_error_bodies_echo_only_a_short_excerpt(case: str) -> None:
    """Wherever a long input sits, the error repeats at most a short excerpt of it."""
    method, path, headers, body = ECHO_CASES[case]
    client = falcon.testing.TestClient(create_app(Settings()))
    result = client.simulate_request(method, path, body=body, headers=headers)
    assert 400 <= result.status_code < 500
    assert longest_run_of_marker(result.text) <= EXCERPT


@pytest.mark.live
def test_waitress_errors_echo_only_a_short_excerpt() -> None:
    """Errors waitress answers itself (malformed HTTP, headers too large) repeat no more either."""
    with service.serve_in_background(port=0) as server:
        requests_ = [
            f"GET /{MARKER} HTTP/1.1\x00\r\n\r\n".encode(),
            f"GET / HTTP/1.1\r\nX-Long: {MARKER * 30}\r\n\r\n".encode(),
            f"{MARKER} / HTTP/1.1\r\n\r\n".encode(),
            f"GET / HTTP/1.1\r\nContent-Length: {MARKER}\r\n\r\n".encode(),
        ]
        answers = [raw_exchange(server.url, raw) for raw in requests_]
    for answer in answers:
        assert re.match(rb"HTTP/1\.[01] 4\d\d ", answer), answer[:100]
        assert longest_run_of_marker(answer.decode("latin-1")) <= EXCERPT


def longest_run_of_marker(text: str) -> int:
    """The length of the longest piece of ``MARKER`` that ``text`` contains."""
    longest = 0
    for start in range(len(MARKER)):
        while start + longest < len(MARKER) and MARKER[start : start + longest + 1] in text:
            longest += 1
    return longest


AUDIT = r"""
import os, re, sys
WRITING = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC | getattr(os, "O_TMPFILE", 0)
CHANGING = {"os.mkdir", "os.rename", "os.remove", "os.rmdir", "os.truncate", "os.link", "os.symlink",
            "os.chmod", "os.utime", "shutil.copyfile", "shutil.rmtree", "tempfile.mkstemp", "tempfile.mkdtemp"}
def kind(path):
    # The one exception: the metrics directory of the worker processes (see service.metrics)
    # (removed at the stop by name, relative to the directory: hence the second test)
    metrics = "fitserve-metrics-" in str(path) or re.fullmatch(r"(counter|histogram|gauge_livesum)_\d+\.db", str(path))
    return "METRICS-WRITE" if metrics else "DISK-WRITE"
def audit(event, args):
    if event == "open":
        path, mode, flags = args
        if (isinstance(mode, str) and set(mode) & set("wax+")) or (isinstance(flags, int) and flags & WRITING):
            os.write(2, f"{kind(path)} open {path!r} {mode!r} {flags!r}\n".encode())
    elif event in CHANGING:
        os.write(2, f"{kind(args[0])} {event} {args[:1]!r}\n".encode())
sys.addaudithook(audit)
from service.cli import main
sys.exit(main())
"""


@pytest.mark.live
def test_nothing_is_written_to_disk(tmp_path: Path) -> None:
    """A server under every kind of request opens no file for writing and creates none.

    An audit hook in the server's process reports each open for writing, each file made,
    renamed or removed. Large and chunked bodies and large answers are the cases where
    waitress would otherwise spill to temporary files.
    """
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1", "TMPDIR": str(tmp_path)}
    process = subprocess.Popen(
        [sys.executable, "-c", AUDIT, "--port", "0", "--max-body-mb", "8"],
        cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        url = read_url(process)
        rows = 120_000
        X = [[i % 7, (i * 3) % 11] for i in range(rows)]
        y = [2.0 * a - b + 1.0 for a, b in X]
        big = {"X_train": X, "y_train": y, "X_test": X, "statistics": True, "interval": "prediction"}
        answer = requests.post(url + "/predict", json=big, timeout=120)
        assert answer.status_code == 200 and len(answer.content) > 4 * 2**20
        csv = requests.post(url + "/predict", json=big, headers={"Accept": "text/csv"}, timeout=120)
        assert csv.status_code == 200
        text = json.dumps({"X_train": X[:50_000], "y_train": y[:50_000]}).encode()
        chunks = iter([text[i : i + 65536] for i in range(0, len(text), 65536)])  # sent chunked
        assert requests.post(url + "/fit", data=chunks, headers=JSON, timeout=120).status_code == 200
        assert (
            requests.post(url + "/fit", data=b" " * (9 * 2**20), headers=JSON, timeout=120).status_code == 413
        )
        assert requests.post(url + "/fit", data=b"{" * 2**20, headers=JSON, timeout=120).status_code == 400
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=60)
    finally:
        process.kill()
        process.wait()
    assert process.returncode == 0, err[-2000:]
    assert "DISK-WRITE" not in err, err[-2000:]
    # Worker processes keep their metrics in files of one directory: counts only, removed at the stop.
    metric_files = re.findall(r"METRICS-WRITE open '([^']*)'", err)
    assert all(re.search(r"/(counter|histogram|gauge_livesum)_\d+\.db$", path) for path in metric_files), metric_files
    assert not any(os.path.exists(path) for path in metric_files)
    assert list(tmp_path.iterdir()) == []


# --- helpers ---------------------------------------------------------------------------


def read_url(process: subprocess.Popen[str]) -> str:
    """The URL a ``fitserve`` process logs when it starts serving."""
    assert process.stderr is not None
    for _ in range(200):
        line = process.stderr.readline()
        match = re.search(r"serving on (http://\S+)", line)
        if match:
            return match.group(1)
        if not line and process.poll() is not None:
            break
    raise AssertionError("the server did not start")


def raw_exchange(url: str, raw: bytes) -> bytes:
    """Send raw bytes to the server, and read its answer until it closes or 5 s pass."""
    host, port = url.removeprefix("http://").rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=5) as connection:
        connection.sendall(raw)
        chunks = []
        try:
            while chunk := connection.recv(65536):
                chunks.append(chunk)
                if b"\r\n\r\n" in b"".join(chunks) and answer_complete(b"".join(chunks)):
                    break
        except TimeoutError:
            pass
    return b"".join(chunks)


def answer_complete(data: bytes) -> bool:
    """Whether ``data`` holds a whole answer (headers and ``Content-Length`` bytes of body)."""
    head, _, body = data.partition(b"\r\n\r\n")
    match = re.search(rb"(?i)content-length:\s*(\d+)", head)
    return match is not None and len(body) >= int(match.group(1))


def parse_headers(answer: bytes) -> dict[str, str]:
    """The headers of a raw HTTP answer."""
    head = answer.partition(b"\r\n\r\n")[0].decode("latin-1").split("\r\n")[1:]
    return dict(line.split(": ", 1) for line in head if ": " in line)
