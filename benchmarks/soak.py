"""Soak fitserve: valid, invalid and slow clients together for a fixed time; check it loses nothing.

Run from the repository's root (loopback only, bounded by ``--seconds``)::

    python -m benchmarks.soak --seconds 60

It starts ``python -m service`` on a free port, waits for its first answer to
``GET /health`` (the start-up time is printed, not checked), runs a warm-up, then the
soak proper:

- valid clients post random fits and predictions (all matrix forms, with and without an
  intercept) and check every answer against ``numpy.linalg.lstsq``;
- invalid clients post malformed, invalid and oversize requests (the ``n_`` documents
  of ``tests/fixtures/json`` among them) and check each gets its 4xx as problem+json;
- slow clients trickle requests in small pieces (and check the answers), abandon
  requests mid-body, or hold half-sent headers open;
- a probe asks ``GET /health`` every 0.2 s on a new connection, and times it.

It passes when no answer was wrong or missing, every probe answered within
``--health-limit`` seconds, the server's resident memory after the soak is within 10% of
that after the warm-up, it holds no more file descriptors than then, it logged no error,
and it stops cleanly on SIGTERM. It prints a summary and exits 1 when a check fails.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import requests

from benchmarks.processes import server_processes, status_figure

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT / "tests" / "fixtures" / "json"
JSON = {"Content-Type": "application/json"}
PROBLEM = "application/problem+json"


@dataclass
class Tally:
    """What the clients saw; shared by all their threads."""

    served: Counter[str] = field(default_factory=Counter)
    errors: list[str] = field(default_factory=list)
    health_worst: float = 0.0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def ok(self, kind: str) -> None:
        """Count one answer that was right."""
        with self.lock:
            self.served[kind] += 1

    def fail(self, kind: str, what: str) -> None:
        """Record one answer that was wrong or missing."""
        with self.lock:
            self.errors.append(f"{kind}: {what}"[:300])

    def health(self, seconds: float) -> None:
        """Record a probe's latency."""
        with self.lock:
            self.served["health"] += 1
            self.health_worst = max(self.health_worst, seconds)


# --- valid requests ---------------------------------------------------------------------


def random_problem(rng: random.Random) -> tuple[str, dict[str, object], np.ndarray, np.ndarray | None]:
    """A request, and the coefficients (intercept first) and predictions it must give."""
    p = rng.randint(1, 5)
    n = rng.randint(p + 2, 60)  # more rows than coefficients: one least-squares solution
    gen = np.random.default_rng(rng.randrange(2**32))
    X = gen.normal(size=(n, p)) * gen.uniform(0.1, 10, size=p)
    y = X @ gen.normal(size=p) + gen.normal() + gen.normal(scale=0.1, size=n)
    intercept = rng.random() < 0.7
    design = np.column_stack([np.ones(n), X]) if intercept else X
    expected = np.linalg.lstsq(design, y, rcond=None)[0]
    if not intercept:
        expected = np.concatenate([[0.0], expected])
    names = [f"f{j}" for j in range(p)]
    form = rng.choice(["rows", "columns", "records"])

    def matrix(values: np.ndarray) -> object:
        if form == "columns":
            return {name: values[:, j].tolist() for j, name in enumerate(names)}
        if form == "records":
            return [dict(zip(names, row.tolist(), strict=True)) for row in values]
        return values.tolist()

    body: dict[str, object] = {"X_train": matrix(X), "y_train": y.tolist(), "fit_intercept": intercept}
    predictions = None
    endpoint = rng.choice(["/fit", "/predict"])
    if endpoint == "/predict" or rng.random() < 0.3:
        X_test = gen.normal(size=(rng.randint(1, 10), p))
        body["X_test"] = matrix(X_test)
        predictions = X_test @ expected[1:] + expected[0]
    if rng.random() < 0.2:
        body["statistics"] = True
    return endpoint, body, expected, predictions


def check_fit(answer: dict[str, object], expected: np.ndarray, predictions: np.ndarray | None) -> str | None:
    """What is wrong with an answer, or None."""
    coef = np.asarray(answer["coef"], dtype=float)
    intercept = float(answer["intercept"])  # type: ignore[arg-type]
    if not np.allclose(coef, expected[1:], rtol=1e-6, atol=1e-9) or not np.isclose(
        intercept, expected[0], rtol=1e-6, atol=1e-9
    ):
        return f"coefficients {coef.tolist()}, {intercept} instead of {expected.tolist()}"
    if predictions is not None and not np.allclose(
        np.asarray(answer["predictions"]), predictions, rtol=1e-6, atol=1e-8
    ):
        return "wrong predictions"
    return None


def valid_client(url: str, stop: threading.Event, tally: Tally, seed: int) -> None:
    """Post random fits over a keep-alive connection (now and then a new one); check each answer."""
    rng = random.Random(seed)
    session = requests.Session()
    while not stop.is_set():
        endpoint, body, expected, predictions = random_problem(rng)
        try:
            response = session.post(url + endpoint, json=body, timeout=60)
        except requests.RequestException as exc:
            tally.fail("valid", f"no answer: {exc!r}")
            continue
        if response.status_code != 200:
            tally.fail("valid", f"{response.status_code} {response.text[:200]}")
            continue
        wrong = check_fit(response.json(), expected, predictions)
        if wrong:
            tally.fail("valid", wrong)
        else:
            tally.ok("valid")
        if rng.random() < 0.05:
            session.close()
            session = requests.Session()
    session.close()


# --- invalid requests -------------------------------------------------------------------

GOOD = {"X_train": [[1], [2], [3]], "y_train": [1, 2, 4]}
INVALID: list[tuple[str, str, dict[str, str], bytes, int]] = [
    ("POST", "/fit", JSON, b'{"X_train": [[1], [2]', 400),
    ("POST", "/fit", JSON, b"", 400),
    ("POST", "/fit", JSON, b'{"X_train": "\xff"}', 400),
    ("POST", "/fit", JSON, b'{"X_train": [[1]], "y_train": ["\\ud800"]}', 400),
    ("POST", "/fit", JSON, b'{"X_train": [[1], [NaN]], "y_train": [1, 2]}', 400),
    ("POST", "/fit", JSON, b"[1, 2]", 422),
    ("POST", "/fit", JSON, json.dumps({"X_train": [[1], [2]]}).encode(), 422),
    ("POST", "/fit", JSON, json.dumps({**GOOD, "X_tset": [[1]]}).encode(), 422),
    ("POST", "/fit", JSON, json.dumps({**GOOD, "y_train": [1, 2]}).encode(), 422),
    ("POST", "/fit", JSON, json.dumps({**GOOD, "X_train": [["1"], [2], [3]]}).encode(), 422),
    ("POST", "/predict", JSON, json.dumps(GOOD).encode(), 422),
    ("POST", "/fit", JSON, json.dumps({**GOOD, "interval": "prediction"}).encode(), 422),
    ("POST", "/fit", {"Content-Type": "text/plain"}, json.dumps(GOOD).encode(), 415),
    ("POST", "/fit", {"Content-Type": "application/x-www-form-urlencoded"}, b"a=1", 415),
    ("GET", "/fit", {}, b"", 405),
    ("DELETE", "/health", {}, b"", 405),
    ("GET", "/nowhere", {}, b"", 404),
]
INVALID += [("POST", "/fit", JSON, path.read_bytes(), 400) for path in sorted(CORPUS.glob("n_*.json"))]
RAW_INVALID: list[tuple[bytes, int]] = [
    (
        b"POST /fit HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 10000000000\r\n\r\n",
        413,
    ),
    (b"GET / HTTP/1.1\r\nContent-Length: -1\r\n\r\n", 400),
    (b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n", 400),  # TLS to a plain HTTP port
    (b"GET /health HTTP/1.1\r\nX: " + b"a" * 70000 + b"\r\n\r\n", 431),
]


def invalid_client(url: str, stop: threading.Event, tally: Tally, seed: int) -> None:
    """Send requests the contract refuses; check each gets its status, as problem+json."""
    rng = random.Random(seed)
    session = requests.Session()
    while not stop.is_set():
        if rng.random() < 0.15:
            raw, status = rng.choice(RAW_INVALID)
            try:
                got, headers, _ = exchange(url, raw)
            except OSError as exc:
                tally.fail("invalid", f"no answer to a raw request: {exc!r}")
                continue
        else:
            method, path, headers, body, status = rng.choice(INVALID)
            try:
                response = session.request(method, url + path, data=body, headers=headers, timeout=60)
            except requests.RequestException as exc:
                tally.fail("invalid", f"no answer: {exc!r}")
                continue
            got, headers = response.status_code, {k.lower(): v for k, v in response.headers.items()}
        if got != status or headers.get("content-type") != PROBLEM:
            tally.fail("invalid", f"{got} {headers.get('content-type')} instead of {status}")
        else:
            tally.ok("invalid")
    session.close()


# --- slow clients -----------------------------------------------------------------------


def slow_client(url: str, stop: threading.Event, tally: Tally, seed: int) -> None:
    """Trickle requests in pieces; now and then abandon one mid-body, or hold half-sent headers."""
    rng = random.Random(seed)
    while not stop.is_set():
        endpoint, body, expected, predictions = random_problem(rng)
        data = json.dumps(body).encode()
        raw = request_bytes(endpoint, data)
        style = rng.choices(["trickle", "abandon", "hold"], weights=[6, 2, 1])[0]
        try:
            with connect(url) as connection:
                if style == "hold":
                    connection.sendall(raw[:20])
                    stop.wait(rng.uniform(1, 5))
                    tally.ok("slow held")
                    continue
                cut = len(raw) // 2 if style == "abandon" else len(raw)
                for start in range(0, cut, 64):
                    connection.sendall(raw[start : min(start + 64, cut)])
                    time.sleep(rng.uniform(0.002, 0.02))
                if style == "abandon":
                    tally.ok("slow abandoned")
                    continue
                status, _, answer = read_answer(connection)
        except OSError as exc:
            tally.fail("slow", f"connection failed: {exc!r}")
            continue
        wrong = (
            f"{status} {answer[:200]!r}"
            if status != 200
            else check_fit(json.loads(answer), expected, predictions)
        )
        if wrong:
            tally.fail("slow", wrong)
        else:
            tally.ok("slow")


def health_probe(url: str, stop: threading.Event, tally: Tally, limit: float) -> None:
    """Ask ``GET /health`` on a new connection every 0.2 s; every answer must come within ``limit`` s."""
    while not stop.wait(0.2):
        began = time.monotonic()
        try:
            response = requests.get(url + "/health", timeout=limit)
            ok = response.status_code == 200 and response.json()["status"] == "ok"
        except requests.RequestException as exc:
            tally.fail("health", f"no answer within {limit} s: {exc!r}")
            continue
        took = time.monotonic() - began
        tally.health(took)
        if not ok or took > limit:
            tally.fail("health", f"status {response.status_code} after {took:.3f} s")


# --- raw HTTP ---------------------------------------------------------------------------


def connect(url: str) -> socket.socket:
    """A raw connection to the server."""
    host, port = url.removeprefix("http://").rsplit(":", 1)
    return socket.create_connection((host, int(port)), timeout=60)


def request_bytes(path: str, body: bytes) -> bytes:
    """A raw POST of a JSON body."""
    head = f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    return head.encode() + body


def exchange(url: str, raw: bytes) -> tuple[int, dict[str, str], bytes]:
    """Send raw bytes on a new connection; read the answer."""
    with connect(url) as connection:
        try:
            connection.sendall(raw)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server may answer and close before taking all of a refused request
        return read_answer(connection)


def read_answer(connection: socket.socket) -> tuple[int, dict[str, str], bytes]:
    """Read one HTTP answer: status, headers (lower-cased names), body."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = connection.recv(65536)
        if not chunk:
            raise ConnectionError(f"closed before an answer: {data[:100]!r}")
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {k.lower(): v for k, _, v in (line.partition(": ") for line in lines[1:])}
    while len(body) < int(headers.get("content-length", "0")):
        chunk = connection.recv(65536)
        if not chunk:
            raise ConnectionError("closed in the middle of an answer")
        body += chunk
    return int(lines[0].split()[1]), headers, body


# --- the server -------------------------------------------------------------------------


class Server:
    """``python -m service`` on a free port, with its log collected, once it answers."""

    def __init__(self, threads: int, start_limit: float = 120.0) -> None:
        env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
        command = [sys.executable, "-m", "service", "--port", "0", "--threads", str(threads)]
        self.process = subprocess.Popen(command, cwd=ROOT, env=env, stderr=subprocess.PIPE, text=True)
        self.log: list[str] = []
        self.url = ""
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self.log.append(line)
            match = re.search(r"serving on (http://\S+)", line)
            if match:
                self.url = match.group(1)
                break
        if not self.url:
            raise SystemExit("the server did not start:\n" + "".join(self.log))
        self.reader = threading.Thread(target=self.collect, daemon=True)
        self.reader.start()
        self.ready_after = self.wait_for_an_answer(start_limit)

    def wait_for_an_answer(self, limit: float) -> float:
        """Seconds from the logged address to the first ``GET /health`` answered.

        The address is logged once the port is bound, before the workers have imported
        and warmed up, which takes seconds on a busy machine; the ``/health`` limit is
        about a server that serves, so the clients start after the first answer.
        """
        began = time.monotonic()
        while time.monotonic() - began < limit:
            if self.process.poll() is not None:
                raise SystemExit("the server exited before answering:\n" + "".join(self.log))
            try:
                if requests.get(self.url + "/health", timeout=limit).status_code == 200:
                    return time.monotonic() - began
            except requests.RequestException:
                pass
            time.sleep(0.1)
        self.process.kill()
        raise SystemExit(f"the server did not answer GET /health within {limit:g} s")

    def collect(self) -> None:
        """Keep reading the log, so that the server never blocks writing it."""
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self.log.append(line)

    def rss(self) -> int:
        """Resident memory of the server's processes (its own and its workers'), in KiB."""
        return sum(status_figure(pid, "VmRSS") for pid in server_processes(self.process.pid)) // 1024

    def fds(self) -> int:
        """Open file descriptors of the server's processes."""
        total = 0
        for pid in server_processes(self.process.pid):
            try:
                total += len(os.listdir(f"/proc/{pid}/fd"))
            except OSError:  # gone meanwhile
                pass
        return total

    def settle(self, target: int) -> int:
        """Wait (10 s at most) until the server holds no more than ``target`` descriptors; return the count."""
        for _ in range(100):
            if self.fds() <= target:
                break
            time.sleep(0.1)
        return self.fds()

    def stop(self) -> int | None:
        """SIGTERM; the exit status (None if it did not stop within 60 s)."""
        self.process.send_signal(signal.SIGTERM)
        try:
            status = self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            return None
        self.reader.join(10)
        return status


Client = Callable[[str, threading.Event, Tally, int], None]


def run_phase(
    url: str, seconds: float, arguments: argparse.Namespace, tally: Tally, sample: Callable[[], None]
) -> None:
    """Run every kind of client for ``seconds``, calling ``sample`` once a second."""
    stop = threading.Event()
    plan: list[tuple[Client, int]] = [
        (valid_client, arguments.clients),
        (invalid_client, arguments.invalid_clients),
    ]
    plan.append((slow_client, arguments.slow_clients))
    threads = [
        threading.Thread(target=client, args=(url, stop, tally, random.randrange(2**32)), daemon=True)
        for client, count in plan
        for _ in range(count)
    ]
    threads.append(
        threading.Thread(target=health_probe, args=(url, stop, tally, arguments.health_limit), daemon=True)
    )
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        time.sleep(min(1.0, max(0.0, deadline - time.monotonic())))
        sample()
    stop.set()
    for thread in threads:
        thread.join(120)
        if thread.is_alive():
            tally.fail("soak", f"a client thread ({thread.name}) did not finish")


def main(argv: list[str] | None = None) -> int:
    """Soak a fresh server; print the summary; 0 when every check passed."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.soak", description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=60, help="length of the soak proper (default 60)")
    parser.add_argument("--warmup", type=float, default=10, help="warm-up before measuring (default 10)")
    parser.add_argument("--clients", type=int, default=4, help="valid clients (default 4)")
    parser.add_argument("--invalid-clients", type=int, default=2, help="invalid clients (default 2)")
    parser.add_argument("--slow-clients", type=int, default=4, help="slow clients (default 4)")
    parser.add_argument("--threads", type=int, default=4, help="the server's worker threads (default 4)")
    parser.add_argument(
        "--health-limit", type=float, default=2.0, help="slowest /health answer allowed, s (default 2)"
    )
    arguments = parser.parse_args(argv)
    if not 0 < arguments.seconds <= 24 * 3600 or not 0 <= arguments.warmup <= 3600:
        parser.error("--seconds must be in (0, 86400] and --warmup in [0, 3600]")

    server = Server(arguments.threads)
    idle_fds = server.fds()
    warmup, soak = Tally(), Tally()
    peak = [0]

    def sample() -> None:
        peak[0] = max(peak[0], server.rss())

    run_phase(server.url, arguments.warmup, arguments, warmup, lambda: None)
    fds_start = server.settle(idle_fds)
    rss_start = server.rss()
    began = time.monotonic()
    run_phase(server.url, arguments.seconds, arguments, soak, sample)
    elapsed = time.monotonic() - began
    fds_end = server.settle(fds_start)
    rss_end = server.rss()
    alive = server.process.poll() is None
    status = server.stop()
    logged = [line.rstrip() for line in server.log if re.search(r"\b(ERROR|CRITICAL|Traceback)\b", line)]

    errors = warmup.errors + soak.errors
    checks = {
        "every answer right, none missing": not errors,
        f"/health always within {arguments.health_limit:g} s": soak.served["health"] > 0
        and max(warmup.health_worst, soak.health_worst) <= arguments.health_limit,
        "RSS growth under 10% after warm-up": rss_end < 1.10 * rss_start,
        "no file-descriptor growth": fds_end <= fds_start,
        "no error in the server's log": not logged,
        "alive at the end, clean exit on SIGTERM": alive and status == 0,
    }
    served = sum(soak.served.values())
    print(f"soak of {elapsed:.1f} s (after {arguments.warmup:g} s of warm-up) against {server.url}")
    print(f"  first answer        {server.ready_after:.1f} s after the server logged its address")
    print(
        f"  requests served     {served} ({served / elapsed:.0f}/s): "
        + ", ".join(f"{k} {v}" for k, v in sorted(soak.served.items()))
    )
    print(f"  errors              {len(errors)}")
    print(f"  /health worst       {soak.health_worst * 1000:.1f} ms")
    print(
        f"  RSS start/end/peak  {rss_start / 1024:.1f} / {rss_end / 1024:.1f} / {peak[0] / 1024:.1f} MiB ({100 * (rss_end - rss_start) / rss_start:+.1f}%)"
    )
    print(f"  fds idle/start/end  {idle_fds} / {fds_start} / {fds_end}")
    print(f"  exit on SIGTERM     {status}")
    for error in errors[:20]:
        print(f"  ! {error}")
    for line in logged[:20]:
        print(f"  log: {line}")
    for name, passed in checks.items():
        print(f"  [{'ok' if passed else 'FAILED'}] {name}")
    print("soak passed" if all(checks.values()) else "soak FAILED")
    return 0 if all(checks.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
