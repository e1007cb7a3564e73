"""CSV over HTTP against the in-process floor: ``pandas.read_csv`` + ``LinearRegression().fit``.

    python benchmarks/csv_http.py [--rounds N] [--only medium|large]

Starts the real server (default settings, as ``benchmarks/benchmark.py`` does), posts a
numeric CSV training table (``text/csv``, the last column the target) to ``/fit`` over one
keep-alive connection, and times it against the floor a user would write in-process on the
same bytes. Rounds are interleaved (floor, service, floor, ...) and the medians compared
(the ratio), the best rounds too; the answers' coefficients are compared. Rounds: 30 on the
medium table, 5 on the large one, unless ``--rounds`` says.

Wall time on a shared machine moves with the load of others, so each line also gives the
CPU time per request: the floor's (this process, all its threads) and the service's (the
server's processes, all their threads, from ``/proc``; tens of milliseconds resolution,
summed over the rounds). pyarrow reads a body on every core, so the service's CPU time is
above its wall time on an idle machine. Prints one line per table.
"""

from __future__ import annotations

import argparse
import http.client
import io
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import orjson
import pandas as pd
from benchmark import SETTLE  # run as a script: this folder is on the path
from payloads import SEED
from servers import HOST, Server
from sklearn.linear_model import LinearRegression

TABLES = {"medium": (10_000, 10), "large": (200_000, 20)}
ROUNDS = {"medium": 30, "large": 5}
TICK = os.sysconf("SC_CLK_TCK")


def make_csv(rows: int, features: int, seed: int = SEED) -> bytes:
    """A numeric table with a target in the last column, as CSV bytes (17 significant digits, exact)."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(rows, features))
    y = X @ rng.normal(size=features) + rng.normal(size=rows)
    frame = pd.DataFrame(np.column_stack([X, y]), columns=[*(f"x{j}" for j in range(features)), "y"])
    return frame.to_csv(index=False, float_format="%.17g").encode()


def floor(body: bytes) -> np.ndarray:
    """What a user would run in-process: read the table, fit, take the coefficients."""
    frame = pd.read_csv(io.BytesIO(body))
    model = LinearRegression().fit(frame.iloc[:, :-1], frame.iloc[:, -1])
    return np.asarray(model.coef_)


def post(connection: http.client.HTTPConnection, body: bytes) -> np.ndarray:
    """POST the table to /fit and return the coefficients."""
    connection.request("POST", "/fit", body=body, headers={"Content-Type": "text/csv"})
    response = connection.getresponse()
    data = response.read()
    if response.status != 200:
        raise RuntimeError(f"The service answered {response.status}: {data[:300]!r}")
    return np.asarray(orjson.loads(data)["coef"])


def timed(function: object, *args: object) -> tuple[float, object]:
    start = time.perf_counter()
    result = function(*args)  # type: ignore[operator]
    return time.perf_counter() - start, result


def process_tree(pid: int) -> list[int]:
    """``pid`` and every process below it (the server and its workers)."""
    found, pending = [], [pid]
    while pending:
        current = pending.pop()
        found.append(current)
        try:
            for task in os.listdir(f"/proc/{current}/task"):
                with open(f"/proc/{current}/task/{task}/children") as children:
                    pending.extend(int(child) for child in children.read().split())
        except OSError:
            continue
    return found


def cpu_seconds(pids: Sequence[int]) -> float:
    """User and system CPU time of the processes (all their threads), in seconds."""
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / TICK


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, help="rounds per table (default: 30 medium, 5 large)")
    parser.add_argument("--only", choices=sorted(TABLES))
    options = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as log_dir:
        server = Server(Path(log_dir))
        try:
            for name, (rows, features) in TABLES.items():
                if options.only and name != options.only:
                    continue
                body = make_csv(rows, features)
                rounds = options.rounds or ROUNDS[name]
                connection = http.client.HTTPConnection(HOST, server.port, timeout=300)
                post(connection, body)  # warm up
                pids = process_tree(server.pid)
                floors, services, floor_cpu, service_cpu = [], [], 0.0, 0.0
                for _ in range(rounds):
                    time.sleep(SETTLE)  # as benchmark.py: the other side's tail (BLAS threads spinning) is not this one's cost
                    cpu = time.process_time()
                    seconds, reference = timed(floor, body)
                    floor_cpu += time.process_time() - cpu
                    floors.append(seconds)
                    time.sleep(SETTLE)
                    cpu = cpu_seconds(pids)
                    seconds, answer = timed(post, connection, body)
                    service_cpu += cpu_seconds(pids) - cpu
                    services.append(seconds)
                connection.close()
                error = float(np.max(np.abs(answer - reference) / np.abs(reference)))  # type: ignore[operator]
                f, s = statistics.median(floors), statistics.median(services)
                print(
                    f"{name}: {rows} x {features} ({len(body) / 1e6:.1f} MB of CSV): floor {f * 1e3:.1f} ms, "
                    f"service {s * 1e3:.1f} ms, ratio {s / f:.2f} (best rounds: {min(floors) * 1e3:.1f} and "
                    f"{min(services) * 1e3:.1f} ms, {min(services) / min(floors):.2f}); CPU per request: floor "
                    f"{floor_cpu / rounds * 1e3:.0f} ms, service {service_cpu / rounds * 1e3:.0f} ms; "
                    f"coefficients agree to {error:.1e} (relative)"
                )
        finally:
            server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
