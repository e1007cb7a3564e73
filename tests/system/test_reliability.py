"""Faults: slow and vanishing clients, oversize bodies, running out of memory, SIGTERM; and a short soak.

Every test here starts a real server (in a thread, or in a process of its own when the
test needs a signal or a memory limit) on a free loopback port. Waits are bounded by
counts and generous timeouts; no assertion is about how fast something happened.
"""

from __future__ import annotations

import json
import logging
import os
import re
import resource
import select
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import requests

from benchmarks.processes import server_processes, status_figure
from service.server import BackgroundServer, Timeouts
from service.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
JSON = {"Content-Type": "application/json"}
PROBLEM = "application/problem+json"
BODY = {"X_train": [[1, 2], [2, 1], [3, 5], [4, 3]], "y_train": [6.0, 5.0, 14.0, 11.0]}  # y = 1 + x0 + 2 x1
COEF, INTERCEPT = [1.0, 2.0], 1.0

pytestmark = pytest.mark.live


def start(timeouts: Timeouts | None = None, **settings: object) -> BackgroundServer:
    """A server in a thread, with these timeouts (a 10 s drain by default) and settings."""
    return BackgroundServer(Settings.from_env({}, port=0, **settings), timeouts or Timeouts(drain=10))


def address(url: str) -> tuple[str, int]:
    """The (host, port) of a server's URL."""
    host, port = url.removeprefix("http://").rsplit(":", 1)
    return host, int(port)


def connect(url: str) -> socket.socket:
    """A raw connection to the server."""
    return socket.create_connection(address(url), timeout=10)


def assert_correct(response: requests.Response) -> None:
    """The answer to ``BODY``: its exact coefficients."""
    assert response.status_code == 200, response.text[:300]
    answer = response.json()
    assert np.allclose(answer["coef"], COEF) and np.isclose(answer["intercept"], INTERCEPT)


def closed_by_server(connection: socket.socket, wait: float) -> bool:
    """Whether the server closes the connection within ``wait`` seconds (reading anything it sends)."""
    readable, _, _ = select.select([connection], [], [], wait)
    if not readable:
        return False
    try:
        return connection.recv(65536) == b""
    except ConnectionResetError:
        return True


def trickle_until_dropped(connection: socket.socket, first: bytes, drip: bytes, drops: int) -> int:
    """Send ``first``, then ``drip`` every 0.1 s; return how many drips went before the server closed."""
    connection.sendall(first)
    for sent in range(drops):
        try:
            connection.sendall(drip)
        except (BrokenPipeError, ConnectionResetError):
            return sent
        if closed_by_server(connection, 0.1):
            return sent
    return drops


# --- slow clients ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("first", "drip"),
    [
        (b"POST /fit HTTP/1.1\r\nHost: x\r\n", b"X"),  # headers that never end
        (
            b"POST /fit HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n",
            b" ",
        ),
    ],
    ids=["partial headers", "slow body"],
)
def test_trickling_client_is_dropped_after_the_request_timeout(first: bytes, drip: bytes) -> None:
    """A client that sends a byte every 0.1 s (never idle) is still dropped once the request is late.

    Waitress's ``channel_timeout`` only drops idle connections: without the request
    deadline this client would hold its connection for as long as it kept dripping.
    """
    with start(Timeouts(idle=30, request=1, drain=5)) as server, connect(server.url) as connection:
        drips = trickle_until_dropped(connection, first, drip, drops=150)
        assert drips < 150, "the server never dropped the trickling client"
        assert_correct(requests.post(server.url + "/fit", json=BODY, timeout=30))


def test_silent_client_is_dropped_after_the_idle_timeout() -> None:
    """A client that sends half its headers, then nothing, is dropped too."""
    with start(Timeouts(idle=1, request=60, drain=5)) as server, connect(server.url) as connection:
        connection.sendall(b"POST /fit HTTP/1.1\r\nHost: x\r\n")
        assert any(closed_by_server(connection, 1.0) for _ in range(30))


def test_slow_clients_never_block_others() -> None:
    """With one worker thread and twenty stalled clients open, other clients are served at once."""
    with start(Timeouts(idle=60, request=120, drain=5), threads=1) as server:
        stalled = [connect(server.url) for _ in range(20)]
        try:
            for i, connection in enumerate(stalled):
                if i % 2:
                    connection.sendall(b"POST /fit HTTP/1.1\r\nHost: x\r\nContent-Len")
                else:
                    connection.sendall(
                        b"POST /fit HTTP/1.1\r\nContent-Type: application/json\r\nContent-Length: 999\r\n\r\n{"
                    )
            with requests.Session() as session:
                for _ in range(10):
                    assert_correct(session.post(server.url + "/fit", json=BODY, timeout=30))
            assert not any(closed_by_server(connection, 0) for connection in stalled), (
                "the test lost its stalled clients"
            )
        finally:
            for connection in stalled:
                connection.close()


def test_slow_but_steady_client_is_served_past_the_base_deadline() -> None:
    """A body arriving at a fair pace (3 KB/s, above ``min_rate``) is served, however long it takes.

    The deadline is 1 s plus 1 s per 1000 bytes received: this body takes about 2 s.
    """
    body = json.dumps(BODY).encode().ljust(6000)
    head = f"POST /fit HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    with (
        start(Timeouts(idle=30, request=1, min_rate=1000, drain=5)) as server,
        connect(server.url) as connection,
    ):
        connection.sendall(head.encode())
        for i in range(0, len(body), 150):
            connection.sendall(body[i : i + 150])
            time.sleep(0.05)
        status, _, answer = read_answer(connection)
    assert status == 200
    assert np.allclose(json.loads(answer)["coef"], COEF)


# --- clients that vanish ---------------------------------------------------------------


@pytest.mark.parametrize(
    "partial",
    [
        b"POST /fit HTTP/1.1\r\nHost: x\r\nContent-Ty",
        b'POST /fit HTTP/1.1\r\nContent-Type: application/json\r\nContent-Length: 5000\r\n\r\n{"X_train": [[1], ',
        b'POST /fit HTTP/1.1\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n10\r\n{"X_train": [[1',
    ],
    ids=["mid-headers", "mid-body", "mid-chunk"],
)
def test_disconnect_mid_request_does_not_disturb_the_next(partial: bytes) -> None:
    """A client that goes away mid-request leaves no connection behind and no harm."""
    with start(threads=1) as server:
        for reset in (False, True):
            connection = connect(server.url)
            connection.sendall(partial)
            if reset:  # an abortive close (RST) rather than FIN
                connection.setsockopt(
                    socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00"
                )
            connection.close()
            assert_correct(requests.post(server.url + "/fit", json=BODY, timeout=30))
        assert wait_for(lambda: not server.server.active_channels), "a connection was left open"


def test_disconnect_mid_fit_does_not_disturb_the_next(monkeypatch: pytest.MonkeyPatch) -> None:
    """A client that leaves while its fit runs: the worker finishes, the next client is served."""
    import service.resources

    real_fit = service.resources.fit
    started, leave = threading.Event(), threading.Event()

    def held_fit(request: object) -> object:
        started.set()
        assert leave.wait(30)
        return real_fit(request)  # type: ignore[arg-type]

    monkeypatch.setattr(service.resources, "fit", held_fit)
    with start(threads=1) as server:
        body = json.dumps(BODY).encode()
        connection = connect(server.url)
        connection.sendall(request_bytes("/fit", body))
        assert started.wait(30)
        connection.close()
        leave.set()
        monkeypatch.setattr(service.resources, "fit", real_fit)
        for _ in range(3):
            assert_correct(requests.post(server.url + "/fit", json=BODY, timeout=30))
        assert wait_for(lambda: not server.server.active_channels)


# --- oversize bodies -------------------------------------------------------------------

LIMIT = int(0.01 * 2**20)  # max_body_mb=0.01


@pytest.mark.parametrize("expect", ["", "Expect: 100-continue\r\n"], ids=["plain", "100-continue"])
@pytest.mark.parametrize("length", [LIMIT + 1, 10 * LIMIT, 10**12])
def test_oversize_body_is_refused_before_it_is_read(length: int, expect: str) -> None:
    """A ``Content-Length`` over the limit gets its 413 at once: the client never sends the body.

    With ``Expect: 100-continue`` (curl sends it for large bodies) the answer is the 413
    alone, never a ``100 Continue`` inviting the body.
    """
    with start(max_body_mb=0.01) as server, connect(server.url) as connection:
        head = f"POST /fit HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n{expect}Content-Length: {length}\r\n\r\n"
        connection.sendall(head.encode())
        status, headers, body = read_answer(connection)
    assert status == 413
    assert headers["content-type"] == PROBLEM
    problem = json.loads(body)
    assert problem["status"] == 413 and str(length) in problem["detail"] and str(LIMIT) in problem["detail"]


def test_body_at_the_limit_is_taken_and_one_byte_more_is_not() -> None:
    """The limit is inclusive, for declared lengths and for chunked bodies alike."""
    body = json.dumps(BODY).encode()
    exact = body + b" " * (LIMIT - len(body))
    with start(max_body_mb=0.01) as server:
        assert_correct(requests.post(server.url + "/fit", data=exact, headers=JSON, timeout=30))
        assert (
            requests.post(server.url + "/fit", data=exact + b" ", headers=JSON, timeout=30).status_code == 413
        )
        chunked = requests.post(
            server.url + "/fit", data=iter([exact[:5000], exact[5000:]]), headers=JSON, timeout=30
        )
        assert_correct(chunked)
        over = requests.post(server.url + "/fit", data=iter([exact, b" " * 9000]), headers=JSON, timeout=30)
        assert over.status_code == 413 and over.headers["Content-Type"] == PROBLEM
        assert_correct(requests.post(server.url + "/fit", json=BODY, timeout=30))


# --- out of memory ---------------------------------------------------------------------


def test_out_of_memory_is_a_503_and_the_server_keeps_serving() -> None:
    """With limits raised past what the process may hold, a huge request gets 503; the next ones are served.

    The server runs in its own process; once it has warmed up, its address space is
    capped (``RLIMIT_AS``) at what it uses plus 512 MiB, and a 44 MiB request is sent
    whose parse and fit need several times that.
    """
    command = [sys.executable, "-m", "service", "--port", "0", "--threads", "2"]
    command += ["--max-body-mb", "1024", "--max-cells", "1000000000"]
    with ServerProcess(command) as (process, url):
        assert_correct(
            requests.post(
                url + "/fit",
                json={**BODY, "statistics": True, "X_test": [[1, 1]], "interval": "prediction"},
                timeout=60,
            )
        )
        for pid in server_processes(process.pid):  # the parent, and its workers
            size = status_figure(pid, "VmSize")
            resource.prlimit(pid, resource.RLIMIT_AS, (size + 512 * 2**20, size + 512 * 2**20))
        rows = 2_000_000
        huge = b'{"X_train": [' + b"[1,2,3,4,5,6,7,8,9,0]," * (rows - 1) + b"[1,2,3,4,5,6,7,8,9,1]], "
        huge += b'"y_train": [' + b"1," * (rows - 1) + b"2]}"
        for _ in range(2):
            answer = requests.post(url + "/fit", data=huge, headers=JSON, timeout=300)
            assert answer.status_code == 503, answer.text[:300]
            assert answer.headers["Content-Type"] == PROBLEM
            assert answer.json()["status"] == 503
            assert_correct(requests.post(url + "/fit", json=BODY, timeout=60))
        assert requests.get(url + "/health", timeout=60).json()["status"] == "ok"
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=60) == 0


# --- SIGTERM ---------------------------------------------------------------------------

HELD_SERVER = r"""
import os, sys, time
import service.resources
real_fit = service.resources.fit
def held_fit(request):
    os.write(1, b"fit started\n")  # one write: the two threads' lines never interleave
    time.sleep(1.5)
    return real_fit(request)
service.resources.fit = held_fit
from service.cli import main
sys.exit(main())
"""


def test_sigterm_finishes_the_requests_under_way_then_exits() -> None:
    """SIGTERM while two fits run, one waits, and one has just been sent: all answered, exit 0, port closed.

    The last request is sent right before the signal: the server may not have accepted
    its connection, or read its bytes, yet. It is answered all the same.
    """
    command = [sys.executable, "-c", HELD_SERVER, "--port", "0", "--threads", "2"]
    with ServerProcess(command) as (process, url):
        assert process.stdout is not None
        request = request_bytes("/fit", json.dumps(BODY).encode())
        connections = [connect(url) for _ in range(3)]
        try:
            for connection in connections:
                connection.sendall(request)
            assert [process.stdout.readline() for _ in range(2)] == ["fit started\n"] * 2
            connections.append(connect(url))
            connections[-1].sendall(request)
            process.send_signal(signal.SIGTERM)
            answers = [read_answer(connection) for connection in connections]
            assert process.wait(timeout=60) == 0
        finally:
            for connection in connections:
                connection.close()
        for status, _, answer in answers:
            assert status == 200
            assert np.allclose(json.loads(answer)["coef"], COEF)
        with pytest.raises(requests.ConnectionError):
            requests.get(url + "/health", timeout=10)


@pytest.mark.parametrize("signals", [[signal.SIGTERM], [signal.SIGINT], [signal.SIGINT, signal.SIGINT]])
def test_signal_when_idle_stops_with_status_0(signals: list[signal.Signals]) -> None:
    """An idle server (a keep-alive connection open) stops on SIGTERM or Ctrl-C (once or twice)."""
    with ServerProcess([sys.executable, "-m", "service", "--port", "0"]) as (process, url):
        with requests.Session() as session:
            assert session.get(url + "/health", timeout=30).status_code == 200
            for each in signals:
                process.send_signal(each)
            assert process.wait(timeout=30) == 0


def test_background_server_stop_finishes_the_request_under_way(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """``BackgroundServer.stop()`` is graceful too: a fit under way is answered, nothing is logged as an error.

    Repeated: a worker finishing its answer while the server closes is a race.
    """
    import service.resources

    real_fit = service.resources.fit
    started = threading.Event()

    def slow_fit(request: object) -> object:
        started.set()
        time.sleep(0.3)
        return real_fit(request)  # type: ignore[arg-type]

    monkeypatch.setattr(service.resources, "fit", slow_fit)
    for _ in range(5):
        started.clear()
        server = start()
        answers: list[requests.Response] = []
        post = threading.Thread(target=post_into, args=(answers, server.url + "/fit"))
        post.start()
        assert started.wait(30)
        server.stop()
        post.join(30)
        assert len(answers) == 1
        assert_correct(answers[0])
        assert not server.thread.is_alive()
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []


def post_into(answers: list[requests.Response], url: str) -> None:
    """Post ``BODY`` and keep the answer."""
    answers.append(requests.post(url, json=BODY, timeout=30))


# --- soak ------------------------------------------------------------------------------


def test_short_soak() -> None:
    """``benchmarks/soak.py`` for a few seconds: every check of the full soak passes."""
    result = subprocess.run(
        [sys.executable, "-m", "benchmarks.soak", "--seconds", "8", "--warmup", "3"],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "soak passed" in result.stdout
    assert re.search(r"first answer\s+[\d.]+ s after the server logged its address", result.stdout)  # clients wait for it
    served = re.search(r"requests served\s+(\d+)", result.stdout)
    assert served is not None and int(served.group(1)) > 100


# --- helpers ---------------------------------------------------------------------------


def request_bytes(path: str, body: bytes) -> bytes:
    """A raw POST of a JSON body."""
    head = f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    return head.encode() + body


def read_answer(connection: socket.socket) -> tuple[int, dict[str, str], bytes]:
    """Read one HTTP answer from a raw connection: status, headers (lower-cased names), body."""
    connection.settimeout(60)
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = connection.recv(65536)
        assert chunk, f"the connection closed before an answer: {data[:200]!r}"
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {k.lower(): v for k, _, v in (line.partition(": ") for line in lines[1:])}
    length = int(headers.get("content-length", "0"))
    while len(body) < length:
        chunk = connection.recv(65536)
        assert chunk, "the connection closed in the middle of an answer"
        body += chunk
    return int(lines[0].split()[1]), headers, body


def wait_for(condition: object, attempts: int = 100) -> bool:
    """Poll ``condition`` every 0.1 s, ``attempts`` times at most."""
    for _ in range(attempts):
        if condition():  # type: ignore[operator]
            return True
        time.sleep(0.1)
    return False


class ServerProcess:
    """A ``fitserve`` process on a free port: ``with ServerProcess(command) as (process, url)``."""

    def __init__(self, command: list[str], new_session: bool = False) -> None:
        env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
        self.process = subprocess.Popen(
            command,
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=new_session,  # a process group of its own, as a terminal gives
        )
        self.log: list[str] = []
        self.reader = threading.Thread(target=self.drain, daemon=True)

    def __enter__(self) -> tuple[subprocess.Popen[str], str]:
        assert self.process.stderr is not None
        for _ in range(200):
            line = self.process.stderr.readline()
            self.log.append(line)
            match = re.search(r"serving on (http://\S+)", line)
            if match:
                self.reader.start()
                return self.process, match.group(1)
            if not line:
                break
        self.process.kill()
        raise AssertionError("the server did not start: " + "".join(self.log)[-2000:])

    def drain(self) -> None:
        """Keep reading the server's log, so that it never blocks on a full pipe."""
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self.log.append(line)

    def __exit__(self, *exc: object) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()
        if self.reader.is_alive():
            self.reader.join(10)
        for pipe in (self.process.stdout, self.process.stderr):
            if pipe is not None:
                pipe.close()
