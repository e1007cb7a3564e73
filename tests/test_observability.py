"""Request ids, the access log and metrics (``service.observability``, ``service.metrics``, ``service.logs``).

Most tests go through ``falcon.testing``; the ones about worker processes start
``fitserve`` in a process of its own on a free loopback port.
"""

from __future__ import annotations

import io
import json
import logging
import os
import re
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import falcon.testing
import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families
from test_reliability import ROOT, ServerProcess, wait_for
from test_workers import workers_of

import service
from service import cli
from service.logs import JSONFormatter, configure_logging, format_fields
from service.observability import OTHER_ENDPOINT, request_id
from service.settings import Settings, SettingsError
from service.workers import MetricsDirectory

BODY = {"X_train": [[1, 2], [2, 1], [3, 5], [4, 3]], "y_train": [6.0, 5.0, 14.0, 11.0]}
HEX_ID = re.compile(r"[0-9a-f]{32}")
#: A number and a name that appear nowhere but in the payload.
SECRET_NUMBER = 987654.321987
SECRET_NAME = "zqxjw_feature"


def client(**settings: object) -> falcon.testing.TestClient:
    """A test client of an app with these settings."""
    return falcon.testing.TestClient(service.create_app(Settings(**settings)))  # type: ignore[arg-type]


@pytest.fixture
def access(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    """Capture the access log (INFO of ``fitserve.access``)."""
    caplog.set_level(logging.INFO, logger="fitserve")
    yield caplog


def access_records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    """The access-log records captured."""
    return [r for r in caplog.records if r.name == "fitserve.access"]


def metric_samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of a Prometheus text exposition, parsed by prometheus_client's own parser."""
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def requests_total(samples: dict[tuple[str, tuple[tuple[str, str], ...]], float], endpoint: str, status: int) -> float:
    """The count of ``fitserve_requests_total`` for one endpoint and status (all methods)."""
    return sum(
        value
        for (name, labels), value in samples.items()
        if name == "fitserve_requests_total" and ("endpoint", endpoint) in labels and ("status", str(status)) in labels
    )


# --- request ids -------------------------------------------------------------------------


@pytest.mark.parametrize("given", ["abc", "0" * 128, "!~", "req-42/x:y"], ids=["short", "128", "ends", "punctuation"])
def test_a_request_id_of_visible_ascii_is_echoed(given: str) -> None:
    answer = client().simulate_get("/health", headers={"X-Request-ID": given})
    assert answer.headers["X-Request-ID"] == given


@pytest.mark.parametrize(
    "given",
    [None, "", "a" * 129, "abc\x01", "a b", "tab\there", "caf\u00e9", "\x7f"],
    ids=["absent", "empty", "129", "control", "space", "tab", "non-ASCII", "DEL"],
)
def test_any_other_request_id_is_replaced_by_a_new_one(given: str | None) -> None:
    headers = {} if given is None else {"X-Request-ID": given}
    first = client().simulate_get("/health", headers=headers).headers["X-Request-ID"]
    second = client().simulate_get("/health", headers=headers).headers["X-Request-ID"]
    assert HEX_ID.fullmatch(first) and HEX_ID.fullmatch(second)
    assert first != second


def test_request_id_rule() -> None:
    assert request_id("x" * 128) == "x" * 128
    assert request_id("x" * 129) != "x" * 129
    assert request_id(None) != request_id(None)


def failing_fit(error: BaseException) -> object:
    def fit(request: object) -> object:
        raise error

    return fit


@pytest.mark.parametrize(
    ("method", "path", "body", "settings", "fault", "status"),
    [
        ("GET", "/nowhere", None, {}, None, 404),
        ("DELETE", "/fit", None, {}, None, 405),
        ("POST", "/fit", b"{", {}, None, 400),
        ("POST", "/fit", b'{"X_train": [[1]]}', {}, None, 422),
        ("POST", "/fit", b"{}", {"max_body_mb": 1e-6}, None, 413),
        ("POST", "/fit", b"{}", {"token": "s3cret"}, None, 401),
        ("POST", "/fit", json.dumps(BODY).encode(), {}, MemoryError(), 503),
        ("POST", "/fit", json.dumps(BODY).encode(), {}, RuntimeError("boom"), 500),
    ],
    ids=["404 falcon", "405 falcon", "400 domain", "422 domain", "413 domain", "401 auth", "503", "500"],
)
def test_every_error_body_carries_the_request_id(
    monkeypatch: pytest.MonkeyPatch,
    method: str,
    path: str,
    body: bytes | None,
    settings: dict[str, object],
    fault: BaseException | None,
    status: int,
) -> None:
    if fault is not None:
        monkeypatch.setattr("service.resources.fit", failing_fit(fault))
    headers = {"Content-Type": "application/json", "X-Request-ID": "trace-7"}
    answer = client(**settings).simulate_request(method, path, body=body, headers=headers)
    assert answer.status_code == status
    assert answer.headers["Content-Type"] == "application/problem+json"
    assert answer.headers["X-Request-ID"] == "trace-7"
    assert answer.json["request_id"] == "trace-7"


def test_a_new_request_id_is_the_same_in_header_and_body() -> None:
    answer = client().simulate_get("/nowhere")
    assert answer.json["request_id"] == answer.headers["X-Request-ID"]


# --- access log ------------------------------------------------------------------------


def test_one_access_line_per_request_with_its_fields(access: pytest.LogCaptureFixture) -> None:
    app = client()
    app.simulate_post("/fit", json=BODY, headers={"X-Request-ID": "fit-1"})
    app.simulate_get("/health", headers={"X-Request-ID": "health-1"})
    fit_line, health_line = access_records(access)
    fields = fit_line.access  # type: ignore[attr-defined]
    assert list(fields) == [
        "request_id", "method", "path", "status", "duration_ms", "request_bytes", "response_bytes",
        "n_samples", "n_features", "n_targets",
    ]  # fmt: skip
    assert (fields["request_id"], fields["method"], fields["path"], fields["status"]) == ("fit-1", "POST", "/fit", 200)
    assert (fields["n_samples"], fields["n_features"], fields["n_targets"]) == (4, 2, 1)
    assert fields["request_bytes"] == len(json.dumps(BODY)) and fields["response_bytes"] > 0
    assert fields["duration_ms"] >= 0
    message = fit_line.getMessage()
    assert message.startswith("request_id=fit-1 method=POST path=/fit status=200 duration_ms=")
    assert "n_samples=4 n_features=2 n_targets=1" in message
    assert "n_samples" not in health_line.access  # type: ignore[attr-defined]
    assert health_line.access["status"] == 200  # type: ignore[attr-defined]


def test_failures_are_logged_too(access: pytest.LogCaptureFixture) -> None:
    app = client(token="s3cret")
    app.simulate_post("/fit", body=b"{", headers={"Content-Type": "application/json"})
    app.simulate_post("/fit", body=b"{", headers={"Content-Type": "application/json", "Authorization": "Bearer s3cret"})
    statuses = [r.access["status"] for r in access_records(access)]  # type: ignore[attr-defined]
    assert statuses == [401, 400]


def test_an_unknown_path_is_logged_cut_short_and_escaped(access: pytest.LogCaptureFixture) -> None:
    client().simulate_get("/" + "a" * 100 + "\nforged line")
    (line,) = access_records(access)
    path = line.access["path"]  # type: ignore[attr-defined]
    assert len(path) == 20 and path.endswith("...")
    client().simulate_get("/x\ny")
    message = access_records(access)[-1].getMessage()
    assert "\n" not in message and 'path="/x\\ny"' in message


def test_no_payload_value_name_or_token_is_logged(access: pytest.LogCaptureFixture) -> None:
    token = "tok-" + "7" * 40
    app = client(token=token)
    body = {"X_train": {SECRET_NAME: [1.0, 2.0, SECRET_NUMBER]}, "y_train": [1.0, 2.0, 3.5]}
    auth = {"Authorization": f"Bearer {token}"}
    assert app.simulate_post("/fit", json=body, headers=auth).status_code == 200
    assert app.simulate_post("/fit", json={**body, "y_train": [1.0]}, headers=auth).status_code == 422
    # A query string on a JSON body is refused (422), and still never logged.
    assert app.simulate_post(f"/fit?{SECRET_NAME}={SECRET_NUMBER}", json=body, headers=auth).status_code == 422
    assert app.simulate_get(f"/{token}", headers=auth).status_code == 404
    records = access_records(access)
    assert len(records) == 4
    formatter = JSONFormatter()
    for record in records:
        for line in (record.getMessage(), formatter.format(record)):
            for secret in (str(SECRET_NUMBER), "987654", SECRET_NAME, token):
                assert secret not in line


def test_json_lines_are_objects_with_the_fields(access: pytest.LogCaptureFixture) -> None:
    client().simulate_post("/fit", json=BODY, headers={"X-Request-ID": "json-1"})
    (record,) = access_records(access)
    line = json.loads(JSONFormatter().format(record))
    assert line["logger"] == "fitserve.access" and line["level"] == "INFO"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+00:00", line["time"])
    assert (line["request_id"], line["path"], line["status"], line["n_samples"]) == ("json-1", "/fit", 200, 4)
    other = logging.LogRecord("fitserve", logging.INFO, __file__, 1, "fitserve serving on %s", ("http://x",), None)
    assert json.loads(JSONFormatter().format(other))["message"] == "fitserve serving on http://x"


def test_text_values_stay_on_one_line() -> None:
    assert format_fields({"a": None, "b": 1.5, "c": "/fit", "d": 'say "hi"\n'}) == 'a=- b=1.5 c=/fit d="say \\"hi\\"\\n"'


def test_configure_logging_writes_json_lines_and_leaves_existing_handlers_alone(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    root = logging.getLogger()
    monkeypatch.setattr(root, "handlers", [])
    monkeypatch.setattr(root, "level", root.level)
    stream = io.StringIO()
    configure_logging("json", stream)
    logging.getLogger("fitserve").info("fitserve serving on %s", "http://x")
    assert json.loads(stream.getvalue())["message"] == "fitserve serving on http://x"
    before = list(root.handlers)
    configure_logging("text", io.StringIO())  # a handler is there already: left in charge
    assert root.handlers == before


def test_log_format_setting() -> None:
    seen: list[Settings] = []
    assert cli.main(["--log-format", "JSON"], serve=seen.append, environ={}) == 0
    assert cli.main([], serve=seen.append, environ={"FITSERVE_LOG_FORMAT": "json"}) == 0
    assert cli.main([], serve=seen.append, environ={}) == 0
    assert [s.log_format for s in seen] == ["json", "json", "text"]
    with pytest.raises(SettingsError, match=r"log_format must be one of text, json\. Got 'xml' instead\."):
        Settings(log_format="xml")
    assert cli.main([], serve=seen.append, environ={"FITSERVE_LOG_FORMAT": "xml"}) == 2


def test_the_command_logs_json_lines_from_start_to_stop() -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "service", "--port", "0", "--workers", "1", "--log-format", "json"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert process.stderr is not None
        first = json.loads(process.stderr.readline())
        url = re.search(r"serving on (http://[^\s\"]+)", first["message"])
        assert url, first
        assert requests.post(url.group(1) + "/fit", json=BODY, headers={"X-Request-ID": "cmd-1"}, timeout=30).ok
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=60)
    finally:
        process.kill()
        process.wait()
    lines = [json.loads(line) for line in err.splitlines()]  # every line is one JSON object
    access = [line for line in lines if line["logger"] == "fitserve.access"]
    assert [(a["request_id"], a["status"], a["n_samples"]) for a in access] == [("cmd-1", 200, 4)]
    assert lines[-1]["message"] == "fitserve stopped"


# --- metrics ---------------------------------------------------------------------------


def test_metrics_parse_and_count_what_was_sent() -> None:
    app = client()
    for _ in range(3):
        assert app.simulate_post("/fit", json=BODY).status_code == 200
    assert app.simulate_post("/predict", json={**BODY, "X_test": [[1, 1]]}).status_code == 200
    assert app.simulate_post("/fit", json={"X_train": [[1]]}).status_code == 422
    for i in range(5):
        assert app.simulate_get(f"/probe-{i}").status_code == 404
    assert app.simulate_request("DELETE", "/fit").status_code == 405
    answer = app.simulate_get("/metrics")
    assert answer.status_code == 200
    assert answer.headers["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
    samples = metric_samples(answer.text)
    assert requests_total(samples, "/fit", 200) == 3
    assert requests_total(samples, "/predict", 200) == 1
    assert requests_total(samples, "/fit", 422) == 1
    assert requests_total(samples, OTHER_ENDPOINT, 404) == 5
    labels = {dict(key[1]).get("endpoint") for key in samples} - {None}
    # The routes (at zero from the start) and one value for every unknown path
    assert labels == {"/fit", "/predict", "/health", "/openapi.json", "/metrics", "/docs", "/docs/{name}", OTHER_ENDPOINT}
    methods = {dict(key[1]).get("method") for key in samples} - {None}
    assert methods == {"POST", "GET", "DELETE"}
    assert requests_total(samples, "/health", 200) == 0  # started at zero
    assert samples[("fitserve_request_duration_seconds_count", (("endpoint", "/fit"),))] == 5  # 405 included
    assert samples[("fitserve_training_rows_count", (("endpoint", "/fit"),))] == 3
    assert samples[("fitserve_training_rows_sum", (("endpoint", "/fit"),))] == 12
    assert samples[("fitserve_training_features_sum", (("endpoint", "/predict"),))] == 2
    assert samples[("fitserve_requests_in_progress", ())] == 1  # the scrape itself


def test_endpoint_labels_are_the_apps_routes() -> None:
    app = service.create_app(Settings())
    routes = {route.path for route in falcon.inspect.inspect_routes(app)}
    assert {"/fit", "/predict", "/health", "/openapi.json", "/metrics"} <= routes
    test = falcon.testing.TestClient(app)
    for path in routes:
        test.simulate_get(path)
    samples = metric_samples(test.simulate_get("/metrics").text)
    assert {dict(key[1]).get("endpoint") for key in samples} - {None} == routes


@pytest.mark.live
def test_a_method_http_does_not_define_is_counted_as_other() -> None:
    with service.serve_in_background(port=0) as server:
        for method in ("BREW", "XYZZY"):
            assert requests.request(method, server.url + "/fit", timeout=30).status_code in (400, 405)
        samples = scrape(server.url)
    methods = {dict(key[1]).get("method") for key in samples} - {None}
    assert methods == {"OTHER", "GET", "POST"}  # the last two: the routes' series, at zero from the start
    others = [value for (name, labels), value in samples.items()
              if name == "fitserve_requests_total" and ("method", "OTHER") in labels]
    assert sum(others) == 2


def test_metrics_need_the_token_when_one_is_set() -> None:
    app = client(token="s3cret")
    refused = app.simulate_get("/metrics")
    assert refused.status_code == 401 and refused.json["request_id"]
    assert app.simulate_get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert app.simulate_get("/metrics", headers={"Authorization": "Bearer s3cret"}).status_code == 200
    assert app.simulate_get("/health").status_code == 200


def test_each_app_counts_its_own_requests() -> None:
    first, second = client(), client()
    first.simulate_get("/health")
    samples = metric_samples(second.simulate_get("/metrics").text)
    assert requests_total(samples, "/health", 200) == 0


# --- several worker processes ------------------------------------------------------------

HELD_SERVER = r"""
import os, signal, sys, threading
import service.resources
real_fit = service.resources.fit
holds = []
def release(signum, frame):  # SIGUSR1 lets the held fits of a worker go on
    for hold in holds:
        hold.set()
signal.signal(signal.SIGUSR1, release)
def held_fit(request):
    os.write(1, f"fit started in {os.getpid()}\n".encode())
    if request.X_train is not None and len(request.X_train) == 5:  # five rows: held until released or killed
        holds.append(threading.Event())
        holds[-1].wait()
    return real_fit(request)
service.resources.fit = held_fit
from service.cli import main
sys.exit(main())
"""
HELD_BODY = {"X_train": [[1], [2], [3], [4], [5]], "y_train": [1, 2, 3, 4, 5.5]}


def scrape(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """The samples of the server's /metrics, on a new connection (any worker may answer)."""
    answer = requests.get(url + "/metrics", timeout=30, headers={"Connection": "close"})
    assert answer.status_code == 200
    return metric_samples(answer.text)


@pytest.mark.live
def test_metrics_are_summed_over_workers_and_a_dead_worker_stops_counting_in_progress() -> None:
    command = [sys.executable, "-c", HELD_SERVER, "--port", "0", "--workers", "2", "--threads", "2"]
    server = ServerProcess(command)
    with server as (process, url):
        assert process.stdout is not None
        assert wait_for(lambda: len(workers_of(process.pid)) == 2, attempts=300)
        found: list[str] = []
        assert wait_for(lambda: found.extend(metrics_directories(workers_of(process.pid)[0])) or found, attempts=300)
        directory = found[0]
        assert os.path.isdir(directory)
        # Hold a fit in one worker: the next fits go to the other one; then let it go. Both have counted.
        first: list[str] = []
        held = threading.Thread(target=post_held, args=(url, first), daemon=True)
        held.start()
        held_in = int(process.stdout.readline().split()[-1])
        for _ in range(3):
            assert requests.post(url + "/fit", json=BODY, timeout=30, headers={"Connection": "close"}).ok
            assert int(process.stdout.readline().split()[-1]) != held_in
        assert scrape(url)[("fitserve_requests_in_progress", ())] == 2  # the held fit and this scrape
        os.kill(held_in, signal.SIGUSR1)
        held.join(30)
        assert first == ["200"]
        for _ in range(3):  # whichever worker answers, it reads every worker's files
            samples = scrape(url)
            assert requests_total(samples, "/fit", 200) == 4
            assert samples[("fitserve_training_rows_sum", (("endpoint", "/fit"),))] == 3 * 4 + 5
        # Hold another, and kill its worker: its count stays, its request is no longer in progress.
        second: list[str] = []
        held = threading.Thread(target=post_held, args=(url, second), daemon=True)
        held.start()
        killed = int(process.stdout.readline().split()[-1])
        assert scrape(url)[("fitserve_requests_in_progress", ())] == 2
        os.kill(killed, signal.SIGKILL)
        held.join(30)
        assert second == ["connection closed"]
        assert wait_for(lambda: any("killed by signal SIGKILL; starting another" in line for line in server.log))
        assert wait_for(lambda: len(workers_of(process.pid)) == 2 and killed not in workers_of(process.pid))
        for _ in range(3):
            samples = scrape(url)
            assert requests_total(samples, "/fit", 200) == 4
            assert samples[("fitserve_requests_in_progress", ())] == 1  # only the scrape: the dead worker's is gone
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=60) == 0
    assert not os.path.exists(directory)  # removed at the stop


def post_held(url: str, outcome: list[str]) -> None:
    """Post the fit that the server holds; note how it ended."""
    try:
        answer = requests.post(url + "/fit", json=HELD_BODY, timeout=60)
        outcome.append(str(answer.status_code))
    except requests.ConnectionError:
        outcome.append("connection closed")


def metrics_directories(pid: int) -> list[str]:
    """The metrics directory of a worker process, from the files it has mapped (none before its app starts)."""
    try:
        with open(f"/proc/{pid}/maps") as maps:
            return sorted({os.path.dirname(line.split()[-1]) for line in maps if "/fitserve-metrics-" in line})
    except OSError:
        return []


@pytest.mark.live
def test_requests_the_server_refuses_before_the_app_are_logged_with_an_id(access: pytest.LogCaptureFixture) -> None:
    # A body over the limit (from its Content-Length) and malformed HTTP never reach the app.
    with service.serve_in_background(port=0, max_body_mb=0.001) as server:
        too_large = requests.post(
            server.url + "/fit", data=b" " * 5000, headers={"Content-Type": "application/json", "X-Request-ID": "big-1"},
            timeout=30,
        )  # fmt: skip
        host, port = server.url.removeprefix("http://").rsplit(":", 1)
        with socket.create_connection((host, int(port)), timeout=30) as connection:
            connection.sendall(b"GET /fit HTTP/1.1\r\nContent-Length: nope\r\n\r\n")
            malformed = connection.recv(65536)
    assert too_large.status_code == 413
    assert too_large.headers["X-Request-ID"] == "big-1" and too_large.json()["request_id"] == "big-1"
    assert malformed.startswith(b"HTTP/1.1 400 ") and b"x-request-id: " in malformed.lower()
    lines = [r.access for r in access_records(access)]  # type: ignore[attr-defined]
    assert [(line["request_id"], line["method"], line["path"], line["status"]) for line in lines][:1] == [
        ("big-1", "POST", "/fit", 413)
    ]
    assert lines[1]["status"] == 400 and HEX_ID.fullmatch(lines[1]["request_id"])
    assert (lines[0]["request_bytes"], lines[1]["request_bytes"]) == (5000, None)
    assert all(line["response_bytes"] > 0 for line in lines)


def test_metrics_directories_of_services_that_ended_are_removed_at_start(tmp_path: Path) -> None:
    ended = subprocess.Popen([sys.executable, "-c", "pass"])
    ended.wait()
    stale = tmp_path / f"fitserve-metrics-{ended.pid}-abc"
    stale.mkdir()
    (stale / "counter_1.db").write_bytes(b"\0" * 8)
    running = tmp_path / f"fitserve-metrics-{os.getppid()}-def"
    running.mkdir()
    other = tmp_path / "something-else"
    other.mkdir()
    with MetricsDirectory(str(tmp_path)) as directory:
        assert os.path.isdir(directory.path)
        assert os.path.basename(directory.path).startswith(f"fitserve-metrics-{os.getpid()}-")
        assert os.environ["PROMETHEUS_MULTIPROC_DIR"] == directory.path
        assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
            [running.name, other.name, os.path.basename(directory.path)]
        )
    assert "PROMETHEUS_MULTIPROC_DIR" not in os.environ
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([running.name, other.name])
