"""nginx in front of fitserve, configured by deploy/nginx/fitserve.conf (Debian's nginx, on loopback).

Three instances behind nginx; one is SIGKILLed under load, and no client may notice: every
request answered 200, every answer numpy's least squares. These tests need nginx installed
and fail (not skip) without it: .ci/run installs it.
"""

from __future__ import annotations

import http.server
import json
import re
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from service.server import Timeouts
from service.settings import Settings
from tests.system.cluster import HOST, SITE, Cluster, free_port, nginx_binary, render_site, send_load

pytestmark = pytest.mark.live

CLIENTS = 6
PER_CLIENT = 150
KILL_AT = 300


@pytest.fixture(scope="module")
def nginx() -> str:
    """nginx's binary; fails the test when nginx is not installed."""
    binary = nginx_binary()
    if binary is None:
        pytest.fail("nginx is not installed: these tests run Debian's nginx (apt-get install nginx; .ci/run does it)")
    return binary


@pytest.fixture
def cluster(nginx: str, tmp_path: Path) -> Iterator[Cluster]:
    """nginx in front of three fitserve instances, for one test."""
    with Cluster(tmp_path, instances=3) as running:
        yield running


@pytest.fixture(scope="module")
def shared_cluster(nginx: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """nginx in front of one fitserve instance, for the tests that leave it as it was."""
    with Cluster(tmp_path_factory.mktemp("cluster"), instances=1) as running:
        yield running


class EchoHandler(http.server.BaseHTTPRequestHandler):
    """Answers every request with the X-Request-ID and X-Forwarded-For it was sent, as JSON."""

    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        body = json.dumps({h: self.headers.get(h) for h in ("X-Request-ID", "X-Forwarded-For")}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        """Quiet."""


@pytest.fixture
def echo(nginx: str, tmp_path: Path) -> Iterator[tuple[Cluster, http.server.ThreadingHTTPServer]]:
    """nginx in front of one server that echoes the headers it receives."""
    server = http.server.ThreadingHTTPServer((HOST, 0), EchoHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        with Cluster(tmp_path, upstreams=[server.server_address[1]]) as running:
            yield running, server
    finally:
        server.shutdown()
        server.server_close()


def upstreams_of_each_answer(access_log: Path) -> list[list[str]]:
    """For each fit in nginx's access log, in order, the instances the request was sent to."""
    found = []
    for line in access_log.read_text().splitlines():
        if '"POST ' not in line:  # the health checks of the start
            continue
        match = re.search(r" upstream=(.*) upstream_status=", line)
        assert match, line
        found.append(match[1].split(", "))
    return found


def test_nginx_is_installed() -> None:
    assert nginx_binary(), "nginx is not installed: these tests run Debian's nginx (apt-get install nginx; .ci/run does it)"


def test_killing_an_instance_under_load_fails_no_request(cluster: Cluster) -> None:
    victim = cluster.instances[1]
    logged_at_kill = []

    def kill() -> None:
        victim.kill()
        logged_at_kill.append(len(upstreams_of_each_answer(cluster.access_log)))

    load = send_load(cluster.url, CLIENTS, PER_CLIENT, midway=kill, at=KILL_AT)
    assert victim.process.returncode == -9
    assert load.sent == CLIENTS * PER_CLIENT
    assert (load.failed, load.wrong) == (0, 0), load.problems
    # The killed instance answered before the kill, and nothing after it: a request it failed
    # went on to another instance. (Each client has one request under way at most, so at
    # most CLIENTS answers of before the kill can be logged after it.)
    answered_by = [attempts[-1] for attempts in upstreams_of_each_answer(cluster.access_log)]
    assert len(answered_by) == load.sent
    victim_address = f"{HOST}:{victim.port}"
    assert victim_address in answered_by[: logged_at_kill[0]]
    after = answered_by[logged_at_kill[0] + CLIENTS :]
    assert after and victim_address not in after
    assert len(set(after)) == 2


def test_body_over_the_limit_is_refused_before_it_is_read(shared_cluster: Cluster) -> None:
    cluster = shared_cluster
    limit = Settings().max_body_bytes
    with socket.create_connection((HOST, cluster.port), timeout=10) as connection:
        connection.sendall(
            f"POST /fit HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {limit + 1}\r\n\r\n".encode()
        )
        answer = b""
        while b"\r\n\r\n" not in answer or not answer.rstrip().endswith(b"}"):
            chunk = connection.recv(65536)
            if not chunk:
                break
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 413 "), head
    assert b"Content-Type: application/problem+json" in head
    assert json.loads(body)["status"] == 413


def test_metrics_are_not_served_through_the_proxy(shared_cluster: Cluster) -> None:
    assert requests.get(shared_cluster.url + "/metrics", timeout=10).status_code == 404
    assert requests.get(shared_cluster.url + "/health", timeout=10).json()["status"] == "ok"


def test_the_request_id_is_forwarded_or_made(echo: tuple[Cluster, http.server.ThreadingHTTPServer]) -> None:
    cluster, _ = echo
    given = requests.get(cluster.url + "/health", headers={"X-Request-ID": "order-42"}, timeout=10).json()
    assert given["X-Request-ID"] == "order-42"
    assert given["X-Forwarded-For"] == HOST
    made = requests.get(cluster.url + "/health", timeout=10).json()["X-Request-ID"]
    assert re.fullmatch(r"[0-9a-f]{32}", made)
    log = cluster.access_log.read_text()
    assert " order-42 " in log and f" {made} " in log


def test_no_instance_left_is_a_problem_json_503(nginx: str, tmp_path: Path) -> None:
    with Cluster(tmp_path, upstreams=[free_port(), free_port()]) as cluster:  # nothing listens there
        answer = requests.post(cluster.url + "/fit", json={"X_train": [1, 2], "y_train": [1, 2]}, timeout=10)
    assert answer.status_code == 503
    assert answer.headers["Content-Type"] == "application/problem+json"
    assert answer.headers["Retry-After"] == "1"
    assert answer.json()["status"] == 503


def directive(text: str, name: str) -> str:
    """The value of the one ``name ...;`` directive of the configuration."""
    (value,) = re.findall(rf"^\s*{name}\s+([^;]*);", text, flags=re.MULTILINE)
    return value


def test_configuration_matches_the_service() -> None:
    text = SITE.read_text()
    timeouts = Timeouts()
    assert directive(text, "client_max_body_size") == f"{Settings().max_body_mb:g}m"  # nginx's m is MiB
    assert directive(text, "proxy_request_buffering") == "on"
    assert directive(text, "proxy_next_upstream").split() == ["error", "timeout", "non_idempotent"]
    assert 2 <= int(directive(text, "proxy_next_upstream_tries")) <= 3
    for name in ("client_header_timeout", "client_body_timeout", "proxy_send_timeout", "proxy_read_timeout"):
        assert directive(text, name) == f"{timeouts.request:g}s", name
    # nginx closes an idle upstream connection before fitserve does, never the other way round
    assert int(directive(text, "keepalive_timeout").rstrip("s")) < timeouts.idle
    assert directive(text, "proxy_set_header X-Request-ID") == "$fitserve_request_id"


def test_rendering_replaces_the_instances_the_port_and_the_log(tmp_path: Path) -> None:
    text = render_site(SITE.read_text(), 18000, [18001, 18002], tmp_path / "access.log")
    assert re.findall(r"server (\S+) max_fails", text) == ["127.0.0.1:18001", "127.0.0.1:18002"]
    assert directive(text, "listen") == "127.0.0.1:18000"
    assert directive(text, "access_log") == f"{tmp_path / 'access.log'} fitserve"
