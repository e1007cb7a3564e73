"""Loads and clocks: throughput and latency under 8 connections (wrk, or Python processes), timers.

Bodies are serialized once, before timing, so client-side serialization is never measured.
"""

from __future__ import annotations

import http.client
import multiprocessing
import statistics
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from servers import ENDPOINT, HOST, Client

CONNECTIONS = 8

WRK_SCRIPT = """\
wrk.method = 'POST'
wrk.headers['Content-Type'] = 'application/json'
local file = assert(io.open([==[{body}]==], 'rb'))
wrk.body = file:read('*a')
file:close()
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('RESULT %d %d %d %d %d %d %d %d %d %d\\n', summary.requests, summary.duration,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(99), latency.max))
end
"""


def wrk_throughput(port: int, body_path: Path, duration: float, work: Path) -> dict[str, Any]:
    """Requests per second and latency (p50, p99, max; seconds) from ``wrk --latency``, 8 connections.

    A connection the server closes after each answer (gunicorn's sync workers do) is
    reopened by wrk, and that time is in the latency, as a client would see it.
    """
    script = work / "post.lua"
    script.write_text(WRK_SCRIPT.replace("{body}", str(body_path)))
    command = [
        "wrk", "-t", "2", "-c", str(CONNECTIONS), "-d", f"{duration:g}s", "--timeout", "10s", "--latency",
        "-s", str(script), f"http://{HOST}:{port}{ENDPOINT}",
    ]  # fmt: skip
    output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    line = next(line for line in output.splitlines() if line.startswith("RESULT "))
    requests, micros, *rest = (int(v) for v in line.split()[1:])
    errors, (p50, p99, longest) = rest[:5], rest[5:]
    return {
        "rate": (requests - errors[3]) / (micros / 1e6),
        "requests": requests,
        "errors": sum(errors),
        "p50": p50 / 1e6,
        "p99": p99 / 1e6,
        "max": longest / 1e6,
    }


def python_worker(port: int, body: bytes, start_at: float, end_at: float, results: Any) -> None:
    """One load-generator process: POST over one keep-alive connection until ``end_at``."""
    client = Client(port, timeout=30)
    latencies: list[float] = []
    errors = 0
    while time.time() < start_at:
        time.sleep(0.001)
    while time.time() < end_at:
        start = time.perf_counter()
        try:
            client.post(body)
            latencies.append(time.perf_counter() - start)
        except (RuntimeError, OSError, http.client.HTTPException):
            errors += 1
            client.close()
            client = Client(port, timeout=30)
    client.close()
    results.put((latencies, errors))


def python_throughput(port: int, body: bytes, duration: float) -> dict[str, Any]:
    """Requests per second and latency from 8 processes, each with one keep-alive connection."""
    context = multiprocessing.get_context("fork")
    results = context.Queue()
    start_at = time.time() + 0.5
    end_at = start_at + duration
    workers = [
        context.Process(target=python_worker, args=(port, body, start_at, end_at, results))
        for _ in range(CONNECTIONS)
    ]
    for worker in workers:
        worker.start()
    counts = [results.get(timeout=duration + 60) for _ in workers]
    for worker in workers:
        worker.join()
    latencies = sorted(t for c in counts for t in c[0])
    done = len(latencies)
    return {
        "rate": done / duration,
        "requests": done,
        "errors": sum(c[1] for c in counts),
        "p50": percentile(latencies, 50),
        "p99": percentile(latencies, 99),
        "max": latencies[-1] if latencies else float("nan"),
    }


def percentile(ordered: Sequence[float], q: float) -> float:
    """The ``q``-th percentile of sorted values (nearest rank)."""
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered)) - 1))]


def small_load(generator: str, port: int, body: bytes, body_path: Path, duration: float, work: Path) -> dict[str, Any]:
    """Throughput and latency of 8 connections posting ``body`` for ``duration`` seconds."""
    if generator == "wrk":
        return wrk_throughput(port, body_path, duration, work)
    return python_throughput(port, body, duration)


def time_once(function: Callable[[], object]) -> float:
    """Seconds one call takes."""
    start = time.perf_counter()
    function()
    return time.perf_counter() - start


def time_per_call(function: Callable[[], object], budget: float) -> float:
    """Seconds per call in a tight loop that runs for about ``budget`` seconds."""
    calls, start = 0, time.perf_counter()
    while True:
        function()
        calls += 1
        elapsed = time.perf_counter() - start
        if elapsed >= budget:
            return elapsed / calls


def summary(values: Sequence[float]) -> dict[str, Any]:
    """Median, min, max and every value of a list of measurements."""
    return {
        "median": statistics.median(values),
        "min": min(values),
        "max": max(values),
        "values": list(values),
    }
