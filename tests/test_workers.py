"""Worker processes (``fitserve --workers N``): they share the port, serve at once, are
replaced when they die, never outlive the parent, and stop gracefully with it.

Each test starts ``fitserve`` in a process of its own on a free loopback port.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import numpy as np
import pytest
from test_reliability import (
    BODY,
    COEF,
    ROOT,
    ServerProcess,
    connect,
    read_answer,
    request_bytes,
    wait_for,
)

from benchmarks.processes import server_processes
from service import serve_in_background
from service.settings import Settings, SettingsError

pytestmark = pytest.mark.live

HELD_SERVER = r"""
import os, sys, time
import service.resources
real_fit = service.resources.fit
def held_fit(request):
    os.write(1, f"fit started in {os.getpid()}\n".encode())
    time.sleep(1.5)
    return real_fit(request)
service.resources.fit = held_fit
from service.cli import main
sys.exit(main())
"""


def workers_of(pid: int) -> list[int]:
    """The worker processes of a server (its children)."""
    return server_processes(pid)[1:]


def test_default_is_one_worker_per_cpu_at_most_threads(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("service.settings.available_cpus", lambda: 8)
    assert (Settings().worker_count, Settings().threads_per_worker) == (4, 1)
    monkeypatch.setattr("service.settings.available_cpus", lambda: 2)
    assert (Settings().worker_count, Settings().threads_per_worker) == (2, 2)
    assert Settings(threads=5).threads_per_worker == 3  # rounded up: never fewer threads in all
    assert Settings.from_env({"FITSERVE_WORKERS": "3"}).worker_count == 3
    with pytest.raises(SettingsError, match="workers must be at least 1"):
        Settings(workers=0)


def test_background_servers_refuse_workers() -> None:
    with pytest.raises(ValueError, match="'workers' is for the fitserve command"):
        serve_in_background(workers=2)


def test_a_busy_worker_leaves_new_connections_to_a_free_one() -> None:
    # One thread each: while one worker fits, a new connection goes to the other, every time.
    command = [sys.executable, "-c", HELD_SERVER, "--port", "0", "--workers", "2", "--threads", "2"]
    server = ServerProcess(command)
    with server as (process, url):
        assert process.stdout is not None
        assert wait_for(lambda: len(workers_of(process.pid)) == 2, attempts=300)
        request = request_bytes("/fit", json.dumps(BODY).encode())
        for _ in range(3):
            connections, fitted_in = [], []
            try:
                for _ in range(2):
                    connections.append(connect(url))
                    connections[-1].sendall(request)
                    fitted_in.append(process.stdout.readline().split()[-1])  # before the next one connects
                answers = [read_answer(connection) for connection in connections]
            finally:
                for connection in connections:
                    connection.close()
            assert fitted_in[0] != fitted_in[1]
            for status, _, answer in answers:
                assert status == 200
                assert np.allclose(json.loads(answer)["coef"], COEF)
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=60) == 0
        assert wait_for(lambda: any("fitserve stopped" in line for line in server.log))


def test_a_worker_that_dies_is_replaced() -> None:
    command = [sys.executable, "-m", "service", "--port", "0", "--workers", "2"]
    server = ServerProcess(command)
    with server as (process, url):
        assert wait_for(lambda: len(workers_of(process.pid)) == 2, attempts=300)
        killed = workers_of(process.pid)[0]
        os.kill(killed, signal.SIGKILL)
        assert wait_for(lambda: any("killed by signal SIGKILL; starting another" in line for line in server.log))
        assert wait_for(lambda: len(workers_of(process.pid)) == 2 and killed not in workers_of(process.pid))
        for _ in range(10):  # new connections, whichever worker takes them
            connection = connect(url)
            try:
                connection.sendall(request_bytes("/fit", json.dumps(BODY).encode()))
                status, _, answer = read_answer(connection)
            finally:
                connection.close()
            assert status == 200
            assert np.allclose(json.loads(answer)["coef"], COEF)
        workers = workers_of(process.pid)
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=60) == 0
        assert wait_for(lambda: not any(os.path.exists(f"/proc/{pid}") for pid in workers))


def test_workers_stop_when_the_parent_is_killed() -> None:
    command = [sys.executable, "-m", "service", "--port", "0", "--workers", "2"]
    with ServerProcess(command) as (process, _):
        assert wait_for(lambda: len(workers_of(process.pid)) == 2, attempts=300)
        workers = workers_of(process.pid)
        process.kill()
        process.wait(timeout=30)
        assert wait_for(lambda: not any(alive(pid) for pid in workers), attempts=300)


def alive(pid: int) -> bool:
    """Whether a process exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def test_ctrl_c_to_the_whole_group_finishes_the_fit_under_way() -> None:
    # A terminal's Ctrl-C sends SIGINT to every process of the group: the workers must not
    # take it as a second stop (which means "stop now"), but finish what they serve.
    command = [sys.executable, "-c", HELD_SERVER, "--port", "0", "--workers", "2"]
    server = ServerProcess(command, new_session=True)
    with server as (process, url):
        assert process.stdout is not None
        connection = connect(url)
        try:
            connection.sendall(request_bytes("/fit", json.dumps(BODY).encode()))
            assert process.stdout.readline().startswith("fit started")
            os.killpg(process.pid, signal.SIGINT)
            status, _, answer = read_answer(connection)
        finally:
            connection.close()
        assert status == 200
        assert np.allclose(json.loads(answer)["coef"], COEF)
        assert process.wait(timeout=60) == 0


FAILING_WORKERS = r"""
import logging, sys
from service.settings import Settings
from service.workers import Supervisor, bind
logging.basicConfig(level=logging.INFO)
def work(sockets):
    raise RuntimeError("cannot start")
sys.exit(Supervisor(bind(Settings(port=0)), 2, work).run())
"""


def test_workers_that_keep_failing_stop_the_service() -> None:
    done = subprocess.run(
        [sys.executable, "-c", FAILING_WORKERS], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 1
    assert "workers keep failing to start; stopping" in done.stderr
    assert done.stderr.count("RuntimeError: cannot start") >= 5
