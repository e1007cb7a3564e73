"""Servers under measurement, each a subprocess on a free loopback port, and a keep-alive client.

``Server(log_dir, arguments)`` is fitserve itself (``python -m service`` from this checkout,
default settings but for ``arguments``); ``Server(log_dir, command=[...], cwd=...)`` runs any
other command (the peers of ``benchmarks/peer_servers.py``), with ``{port}`` in it replaced.
A server is ready when a small fit answers 200 at ``/predict``.
"""

from __future__ import annotations

import http.client
import os
import select
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from processes import server_processes, status_figure  # run as a script: this folder is on the path

ROOT = Path(__file__).resolve().parent.parent  # the checkout whose service is measured
HOST = "127.0.0.1"
ENDPOINT = "/predict"
#: The fit that tells a server is up: every server measured answers it.
READY_BODY = b'{"X_train": [[1.0, 2.0], [2.0, 1.0], [3.0, 5.0]], "y_train": [1.0, 2.0, 3.0], "X_test": [[1.0, 1.0]]}'


class Server:
    """A server in a subprocess on a free loopback port: fitserve by default, else ``command``.

    fitserve runs in the root of this checkout, so that the ``service`` measured is the one
    beside this script (``-m`` puts the working directory first on the path).
    """

    def __init__(
        self,
        log_dir: Path,
        arguments: Sequence[str] = (),
        *,
        command: Sequence[str] | None = None,
        cwd: Path = ROOT,
        name: str = "fitserve",
        timeout: float = 60.0,
    ) -> None:
        self.name = name
        self.port = free_port()
        self.log_path = log_dir / f"{''.join(c if c.isalnum() else '-' for c in name)}.log"
        environ = {k: v for k, v in os.environ.items() if not k.startswith(("FITSERVE_", "VIRTUAL_ENV"))}
        if command is None:
            command = [sys.executable, "-m", "service", "--port", "{port}", *arguments]
        self.log = self.log_path.open("wb")
        self.process = subprocess.Popen(
            [part.replace("{port}", str(self.port)) for part in command],
            stdin=subprocess.DEVNULL,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            env=environ,
            cwd=cwd,
        )
        self.wait_until_ready(timeout)

    @property
    def pid(self) -> int:
        """The server process's id."""
        return self.process.pid

    def wait_until_ready(self, timeout: float) -> None:
        """POST a small fit until it answers 200, or fail with the server's log."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                break
            client = Client(self.port, timeout=5)
            try:
                client.post(READY_BODY)
                return
            except (OSError, RuntimeError, http.client.HTTPException):
                pass
            finally:
                client.close()
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"{self.name} did not become ready; its log:\n{self.log_path.read_text()}")

    def processes(self) -> list[int]:
        """The server's process and its worker processes, by id."""
        return server_processes(self.pid)

    def status(self, field: str) -> dict[int, int]:
        """A ``/proc/<pid>/status`` figure (``VmHWM``, ``VmRSS``) of each server process, in bytes."""
        return {pid: status_figure(pid, field) for pid in self.processes()}

    def cpu_seconds(self) -> float:
        """CPU time the server's processes have used so far, user and system, all threads.

        Workers that exited are counted too: their time is in the parent's ``cstime`` fields.
        """
        total = 0
        for pid in self.processes():
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:  # gone meanwhile
                continue
            total += sum(int(f) for f in fields[11:15]) if pid == self.pid else int(fields[11]) + int(fields[12])
        return total / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        """Stop the server (SIGTERM, then SIGKILL after 10 s)."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log.close()


def free_port() -> int:
    """A loopback port that is free now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((HOST, 0))
        return int(probe.getsockname()[1])


class Client:
    """One keep-alive connection that POSTs pre-serialized bodies (it reconnects if the server closes)."""

    def __init__(self, port: int, timeout: float = 300.0) -> None:
        self.connection = http.client.HTTPConnection(HOST, port, timeout=timeout)

    def post(self, body: bytes) -> bytes:
        """POST ``body`` to the endpoint and return the answer's bytes; fail unless 200.

        A connection the server closed just as it was reused is opened again, once (a fit is safe to repeat).
        """
        try:
            return self.post_once(body)
        except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
            self.connection.close()
            return self.post_once(body)

    def post_once(self, body: bytes) -> bytes:
        """POST once over this connection (opened again if the server closed it while idle)."""
        connection = self.connection
        if connection.sock is not None and select.select([connection.sock], [], [], 0)[0]:
            # Readable while idle: the server closed the connection (uvicorn does after 5 s). Reopen it.
            connection.close()
        connection.putrequest("POST", ENDPOINT, skip_accept_encoding=True)
        connection.putheader("Content-Type", "application/json")
        connection.putheader("Content-Length", str(len(body)))
        connection.endheaders()
        connection.send(body)  # not through endheaders(body): that would copy the body first
        response = connection.getresponse()
        data = response.read()
        if response.status != 200:
            raise RuntimeError(f"The server answered {response.status}: {data[:300]!r}")
        return data

    def close(self) -> None:
        """Close the connection."""
        self.connection.close()
