"""The watchdog (``service.watchdog``): a worker whose request runs past ``worker_timeout`` is replaced.

The fault is switched on by the test alone: the server runs from a ``python -c`` script
that replaces the fit of ``service.resources`` before starting ``fitserve``, so that a
request of five rows hangs, either releasing the GIL (the worker's own watchdog thread
answers 503) or with the whole worker stopped (SIGSTOP: only the parent can act, and
it kills the worker). Nothing the service reads (flag, variable, request field) can
switch it on. Timings are printed as figures, never asserted.
"""

from __future__ import annotations

import json
import os
import re
import signal
import sys
import time

import numpy as np
import pytest
import requests
from test_reliability import BODY, COEF, ServerProcess, connect, request_bytes, wait_for
from test_workers import workers_of

from service.cli import main
from service.settings import Settings, SettingsError
from service.watchdog import Beats, Request, UnderWay

HUNG_SERVER = r"""
import os, signal, sys, threading
import service.resources
real_fit = service.resources.fit
def hung_fit(request):
    if request.X_train is not None and len(request.X_train) == 5:  # the test's hung request
        os.write(1, f"hung in {os.getpid()}\n".encode())
        if sys.argv[1] == "stop":
            os.kill(os.getpid(), signal.SIGSTOP)  # the whole worker, its watchdog thread too
        threading.Event().wait()
    return real_fit(request)
service.resources.fit = hung_fit
from service.cli import main
sys.exit(main(sys.argv[2:]))
"""
HUNG_BODY = {"X_train": [[1], [2], [3], [4], [5]], "y_train": [1, 2, 3, 4, 5.5]}
TIMEOUT = 2.0

pytestmark = pytest.mark.live


def read_until_closed(connection: object, wait: float = 60.0) -> bytes:
    """Everything the server sends on a raw connection until it closes it."""
    import socket

    assert isinstance(connection, socket.socket)
    connection.settimeout(wait)
    data = b""
    while True:
        try:
            chunk = connection.recv(65536)
        except ConnectionResetError:
            return data
        if not chunk:
            return data
        data += chunk


def serve_hung(mode: str) -> ServerProcess:
    """A server of two workers (one thread each) whose five-row fits hang in the way ``mode`` says."""
    command = [
        sys.executable, "-c", HUNG_SERVER, mode,
        "--port", "0", "--workers", "2", "--threads", "2", "--worker-timeout", str(TIMEOUT),
    ]  # fmt: skip
    return ServerProcess(command)


def assert_serves(url: str, times: int = 6) -> None:
    """The service answers fits correctly, on new connections (whichever worker takes them)."""
    for _ in range(times):
        answer = requests.post(url + "/fit", json=BODY, timeout=30, headers={"Connection": "close"})
        assert answer.status_code == 200
        assert np.allclose(answer.json()["coef"], COEF)


def test_a_hung_request_gets_a_503_and_its_worker_is_replaced() -> None:
    server = serve_hung("wait")
    with server as (process, url):
        assert process.stdout is not None
        assert wait_for(lambda: len(workers_of(process.pid)) == 2, attempts=300)
        connection = connect(url)
        try:
            body = json.dumps(HUNG_BODY).encode()
            head, _, rest = request_bytes("/fit", body).partition(b"\r\n")
            connection.sendall(head + b"\r\nX-Request-ID: hung-1\r\n" + rest)
            hung_in = int(process.stdout.readline().split()[-1])
            sent = time.monotonic()  # from the moment the fit hangs: the worker's start-up is not counted
            answer = read_until_closed(connection)
            waited = time.monotonic() - sent
        finally:
            connection.close()
        status_line, _, rest = answer.partition(b"\r\n")
        assert status_line == b"HTTP/1.1 503 Service Unavailable", answer[:200]
        headers, _, problem_bytes = rest.partition(b"\r\n\r\n")
        assert b"Content-Type: application/problem+json" in headers
        assert b"Connection: close" in headers and b"X-Request-ID: hung-1" in headers
        problem = json.loads(problem_bytes)
        assert (problem["status"], problem["request_id"]) == (503, "hung-1")
        assert "worker timeout of 2 seconds" in problem["detail"]
        assert wait_for(lambda: any("starting another" in line for line in server.log), attempts=300)
        assert wait_for(lambda: len(workers_of(process.pid)) == 2 and hung_in not in workers_of(process.pid))
        replaced = time.monotonic() - sent
        assert_serves(url)
        log = "".join(server.log)
        assert "request hung-1 (POST /fit) has run" in log
        assert re.search(r"request_id=hung-1 method=POST path=/fit status=503 ", log)
        metrics = requests.get(url + "/metrics", timeout=30).text
        assert 'fitserve_requests_total{endpoint="/fit",method="POST",status="503"} 1.0' in metrics
        assert "fitserve_requests_in_progress 1.0" in metrics
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=60) == 0
    print(f"\nwatchdog, hung request: 503 {waited:.2f} s after the fit hung (limit {TIMEOUT} s); worker replaced after {replaced:.2f} s")


def test_a_worker_too_stuck_to_answer_is_killed_and_replaced() -> None:
    server = serve_hung("stop")
    with server as (process, url):
        assert process.stdout is not None
        assert wait_for(lambda: len(workers_of(process.pid)) == 2, attempts=300)
        connection = connect(url)
        try:
            connection.sendall(request_bytes("/fit", json.dumps(HUNG_BODY).encode()))
            hung_in = int(process.stdout.readline().split()[-1])
            sent = time.monotonic()  # from the moment the fit hangs: the worker's start-up is not counted
            answer = read_until_closed(connection)
            waited = time.monotonic() - sent
        finally:
            connection.close()
        # The stopped worker could write nothing; the parent killed it, and the kernel closed the connection.
        assert answer == b""
        assert wait_for(lambda: any("does not answer; killing it" in line for line in server.log), attempts=300)
        assert wait_for(lambda: any("killed by signal SIGKILL; starting another" in line for line in server.log))
        assert wait_for(lambda: len(workers_of(process.pid)) == 2 and hung_in not in workers_of(process.pid))
        replaced = time.monotonic() - sent
        assert_serves(url)
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=60) == 0
    print(f"\nwatchdog, stopped worker: connection closed {waited:.2f} s after the fit hung (limit {TIMEOUT} s, parent grace {TIMEOUT} s); worker replaced after {replaced:.2f} s")


def test_worker_timeout_setting() -> None:
    seen: list[Settings] = []
    assert main(["--worker-timeout", "30"], serve=seen.append, environ={}) == 0
    assert main([], serve=seen.append, environ={"FITSERVE_WORKER_TIMEOUT": "2.5"}) == 0
    assert main([], serve=seen.append, environ={}) == 0
    assert [s.worker_timeout for s in seen] == [30.0, 2.5, 300.0]
    with pytest.raises(SettingsError, match=r"worker_timeout must be positive\. Got 0 instead\."):
        Settings(worker_timeout=0)
    assert main([], serve=seen.append, environ={"FITSERVE_WORKER_TIMEOUT": "soon"}) == 2


def test_overdue_requests_are_taken_once_and_published_for_the_parent() -> None:
    beats = Beats(2)
    under_way = UnderWay()
    under_way.beats, under_way.slot = beats, 1
    old = Request("old", "POST", "/fit", {}, started=time.monotonic() - 10)
    new = Request("new", "POST", "/fit", {})
    under_way.begin(new)
    under_way.begin(old)
    assert beats.get(1) == old.started and beats.get(0) == 0.0
    assert under_way.take_overdue(5) == [old]
    assert beats.get(1) == new.started
    assert under_way.take_overdue(5) == []
    assert under_way.end(old) is False  # the watchdog took it: the app must not answer it
    assert under_way.end(new) is True
    assert beats.get(1) == 0.0


def test_the_parent_kills_only_after_two_looks_at_the_same_overdue_start(monkeypatch: pytest.MonkeyPatch) -> None:
    from service.workers import Supervisor

    killed: list[int] = []
    monkeypatch.setattr(os, "kill", lambda pid, signum: killed.append(pid))
    supervisor = Supervisor([], 2, lambda sockets: 0, timeout=1.0)
    assert supervisor.beats is not None
    supervisor.slots = {101: 0, 102: 1}
    supervisor.beats.set(0, time.monotonic() - 60)  # stuck
    supervisor.beats.set(1, time.monotonic())  # busy, in time
    supervisor.kill_stuck()
    assert killed == []
    supervisor.kill_stuck()
    assert killed == [101]
    assert supervisor.beats.get(0) == 0.0
