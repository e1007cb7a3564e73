"""Time and peak memory of a picture of the large payload (not a test: pytest does not collect it).

Starts the real server (``python -m service --workers 1`` on a free port) once per answer
type, and POSTs the large benchmark payload (200,000 x 20 + 10,000 test rows, the one of
``benchmarks/benchmark.py``) to ``/fit`` with ``Accept`` set to that type, ``--requests`` times
on one connection. For each type it reports the time of the first request (which for a
picture includes importing matplotlib) and the median of the others, the answer's size,
and the peak RSS growth of the process that served them (``VmHWM`` after, less before).
JSON is the baseline: what a picture costs is its difference from JSON.

Usage::

    python benchmarks/picture.py                 # json, svg and png; 3 requests each
    python benchmarks/picture.py --requests 5 --types svg
"""

from __future__ import annotations

import argparse
import http.client
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from payloads import PAYLOADS, make_body
from servers import HOST, Server

TYPES = {"json": "application/json", "svg": "image/svg+xml", "png": "image/png"}


def post(port: int, body: bytes, accept: str) -> tuple[float, bytes]:
    """POST the body to /fit on a new connection; the seconds it took and the answer."""
    connection = http.client.HTTPConnection(HOST, port, timeout=600)
    try:
        started = time.perf_counter()
        connection.request("POST", "/fit", body=body, headers={"Content-Type": "application/json", "Accept": accept})
        answer = connection.getresponse()
        data = answer.read()
        elapsed = time.perf_counter() - started
    finally:
        connection.close()
    if answer.status != 200 or answer.getheader("Content-Type") != accept:
        raise RuntimeError(f"The service answered {answer.status} {answer.getheader('Content-Type')}: {data[:300]!r}")
    return elapsed, data


def measure(kind: str, body: bytes, requests: int, work: Path) -> dict[str, object]:
    """Serve ``requests`` large fits answered as ``kind`` from a fresh server; time and memory."""
    server = Server(work, ["--workers", "1"])
    try:
        before = server.status("VmHWM")
        times = []
        size = 0
        for _ in range(requests):
            elapsed, answer = post(server.port, body, TYPES[kind])
            times.append(elapsed)
            size = len(answer)
        after = server.status("VmHWM")
    finally:
        server.stop()
    pid = max(after, key=lambda p: after[p] - before.get(p, 0))
    return {
        "type": kind,
        "first_s": times[0],
        "median_rest_s": statistics.median(times[1:]) if len(times) > 1 else None,
        "answer_bytes": size,
        "peak_rss_growth_mib": (after[pid] - before.get(pid, 0)) / 2**20,
    }


def main(argv: Sequence[str] | None = None) -> int:
    """Measure and print a markdown table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--requests", type=int, default=3, help="requests per answer type (default 3)")
    parser.add_argument("--types", default="json,svg,png", help="comma-separated, of json, svg, png")
    options = parser.parse_args(argv)
    payload = PAYLOADS["large"]
    body = make_body(payload)
    print(f"payload: {payload.rows:,} x {payload.features} + {payload.test_rows:,} test rows, {len(body) / 2**20:.1f} MiB of JSON")
    print("| answer | first request | median of the rest | answer size | peak RSS growth |")
    print("| --- | --- | --- | --- | --- |")
    with tempfile.TemporaryDirectory(prefix="fitserve-picture-") as directory:
        for kind in options.types.split(","):
            row = measure(kind.strip(), body, options.requests, Path(directory))
            rest = row["median_rest_s"]
            print(
                f"| {row['type']} | {row['first_s']:.2f} s | {'-' if rest is None else f'{rest:.2f} s'} "
                f"| {row['answer_bytes']:,} B | {row['peak_rss_growth_mib']:.0f} MiB |"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
