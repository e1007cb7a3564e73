"""nginx in front of several fitserve instances, all on loopback ports: for tests and benchmarks.

nginx is Debian's binary, run in the foreground (not as a daemon) with a configuration made
from ``deploy/nginx/fitserve.conf``: the same file, with the upstream's instances, the listen
address and the log paths replaced, inside a minimal main configuration whose pid file,
logs and temporary folders are in a working folder. Each instance is
``python -m service --port N --workers 1``: one process, so that killing it kills the instance.
"""

from __future__ import annotations

import http.client
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import requests

from benchmarks.soak import check_fit, random_problem

ROOT = Path(__file__).resolve().parents[2]
SITE = ROOT / "deploy" / "nginx" / "fitserve.conf"
HOST = "127.0.0.1"


def nginx_binary() -> str | None:
    """Where nginx is (Debian puts it in /usr/sbin, not always on a user's PATH), or None."""
    return shutil.which("nginx") or next((p for p in ("/usr/sbin/nginx",) if os.access(p, os.X_OK)), None)


def free_port() -> int:
    """A loopback port that is free now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((HOST, 0))
        return int(probe.getsockname()[1])


def render_site(text: str, listen: int, upstreams: Sequence[int], access_log: Path) -> str:
    """``fitserve.conf`` with these instances, this loopback listen port and this access log."""
    lines = [line for line in text.splitlines() if re.match(r"\s*server 127\.0\.0\.1:\d+ ", line)]
    assert lines, "no 'server 127.0.0.1:PORT ...;' line in the upstream"
    options = lines[0].split(None, 2)[2]  # max_fails=... fail_timeout=...;
    instances = "\n".join(f"    server {HOST}:{port} {options}" for port in upstreams)
    text = text.replace(lines[0], instances, 1)
    for line in lines[1:]:
        text = text.replace(line + "\n", "", 1)
    text, listens = re.subn(r"^(\s*)listen \d+;", rf"\1listen {HOST}:{listen};", text, flags=re.MULTILINE)
    text, logs = re.subn(r"access_log \S+ fitserve;", f"access_log {access_log} fitserve;", text)
    assert listens == 1 and logs == 1, "fitserve.conf has not one listen line and one access_log line"
    return text


def main_config(work: Path, site: Path, worker_processes: int | str = 1) -> str:
    """A whole nginx configuration that includes ``site``, writing only under ``work``."""
    temp = "\n".join(
        f"    {name}_temp_path {work / name};" for name in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    # As root, nginx's workers run as nobody, who could not enter pytest's private folders.
    user = "user root;\n" if os.geteuid() == 0 else ""
    return (
        f"{user}worker_processes {worker_processes};\n"
        f"pid {work / 'nginx.pid'};\n"
        f"error_log {work / 'error.log'} warn;\n"
        "events { worker_connections 1024; }\n"
        "http {\n"
        f"{temp}\n"
        f"    include {site};\n"
        "}\n"
    )


class Instance:
    """``python -m service --port N --workers 1`` in a subprocess, with its log in a file."""

    def __init__(self, work: Path, number: int, arguments: Sequence[str] = ()) -> None:
        self.port = free_port()
        self.log_path = work / f"instance-{number}.log"
        environ = {k: v for k, v in os.environ.items() if not k.startswith("FITSERVE_")}
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "service", "--port", str(self.port), "--workers", "1", *arguments],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=environ, cwd=ROOT,
            )  # fmt: skip

    def kill(self) -> None:
        """SIGKILL: the instance vanishes with its connections, as a crashed machine would."""
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after 10 s."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()


class Cluster:
    """nginx on a free loopback port in front of ``instances`` fitserve instances; a context manager."""

    def __init__(self, work: Path, instances: int = 3, nginx_workers: int | str = 1, upstreams: Sequence[int] = ()) -> None:
        """Start ``instances`` fitserve instances and nginx; with ``upstreams``, nginx in front of those ports instead."""
        binary = nginx_binary()
        if binary is None:
            raise RuntimeError("nginx is not installed (Debian: apt-get install nginx)")
        self.work = work
        self.instances = [] if upstreams else [Instance(work, n) for n in range(instances)]
        self.nginx: subprocess.Popen[bytes] | None = None
        try:
            ports = list(upstreams) or [i.port for i in self.instances]
            self.port = free_port()
            self.url = f"http://{HOST}:{self.port}"
            self.access_log = work / "access.log"
            site = work / "fitserve.conf"
            site.write_text(render_site(SITE.read_text(), self.port, ports, self.access_log))
            config = work / "nginx.conf"
            config.write_text(main_config(work, site, nginx_workers))
            command = [binary, "-p", str(work), "-c", str(config), "-e", str(work / "error.log")]
            subprocess.run([*command, "-t"], check=True, capture_output=True)
            self.nginx = subprocess.Popen([*command, "-g", "daemon off;"], stdin=subprocess.DEVNULL)
            for instance in self.instances:
                wait_for_answer(instance.port, lambda i=instance: i.process.poll() is None, instance.log_path)
            nginx = self.nginx
            # With every upstream down, nginx answers 503: any answer says it is up.
            wait_for_answer(self.port, lambda: nginx.poll() is None, work / "error.log", healthy=bool(self.instances))
        except BaseException:
            self.stop()
            raise

    def __enter__(self) -> Cluster:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        """Stop nginx (SIGQUIT: graceful) and every instance."""
        if self.nginx is not None and self.nginx.poll() is None:
            self.nginx.send_signal(signal.SIGQUIT)
            try:
                self.nginx.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.nginx.kill()
                self.nginx.wait()
        for instance in self.instances:
            instance.stop()


def wait_for_answer(port: int, alive: Callable[[], bool], log: Path, healthy: bool = True, timeout: float = 60.0) -> None:
    """Poll ``GET /health`` on a loopback port until it answers (200 if ``healthy``); fail with the log if it never does."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and alive():
        try:
            connection = http.client.HTTPConnection(HOST, port, timeout=2)
            connection.request("GET", "/health")
            status = connection.getresponse().status
            connection.close()
            if status == 200 or not healthy:
                return
        except OSError:
            pass
        time.sleep(0.1)
    text = log.read_text() if log.exists() else "(no log)"
    raise RuntimeError(f"port {port} did not answer /health within {timeout:g} s; log:\n{text[-3000:]}")


@dataclass
class Load:
    """What the clients of ``send_load`` saw."""

    sent: int = 0
    answered: int = 0
    failed: int = 0  # no answer, or a status other than 200
    wrong: int = 0  # a 200 whose coefficients or predictions are not numpy's
    problems: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    progress: threading.Condition = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.progress = threading.Condition(self.lock)

    def record(self, problem: str | None, kind: str) -> None:
        """Count one request's outcome."""
        with self.lock:
            self.sent += 1
            if problem is None:
                self.answered += 1
            else:
                setattr(self, kind, getattr(self, kind) + 1)
                if len(self.problems) < 20:
                    self.problems.append(problem)
            self.progress.notify_all()


def client(url: str, count: int, seed: int, load: Load) -> None:
    """Send ``count`` random fits over one keep-alive session; check each answer against numpy."""
    rng = random.Random(seed)
    with requests.Session() as session:
        for _ in range(count):
            endpoint, body, expected, predictions = random_problem(rng)
            try:
                answer = session.post(url + endpoint, json=body, timeout=60)
            except requests.RequestException as exc:
                load.record(f"{endpoint}: {type(exc).__name__}", "failed")
                continue
            if answer.status_code != 200:
                load.record(f"{endpoint}: {answer.status_code} {answer.text[:200]}", "failed")
                continue
            try:
                problem = check_fit(answer.json(), expected, predictions)
            except (ValueError, KeyError, TypeError) as exc:  # not JSON, or not a fit's answer
                problem = f"{endpoint}: {type(exc).__name__} {answer.text[:200]}"
            load.record(problem, "wrong")


def send_load(
    url: str, clients: int, per_client: int, midway: Callable[[], None] | None = None, at: int = 0, seed: int = 0
) -> Load:
    """``clients`` threads each send ``per_client`` fits; ``midway()`` runs once ``at`` have been answered or failed."""
    load = Load()
    threads = [
        threading.Thread(target=client, args=(url, per_client, seed + n, load), daemon=True) for n in range(clients)
    ]
    for thread in threads:
        thread.start()
    if midway is not None:
        with load.progress:
            load.progress.wait_for(lambda: load.sent >= at or not any(t.is_alive() for t in threads), timeout=300)
        midway()
    for thread in threads:
        thread.join(timeout=300)
    return load
