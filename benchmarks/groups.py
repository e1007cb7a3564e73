"""One fit per group over HTTP against the in-process floor: a loop of ``LinearRegression().fit``.

    python benchmarks/groups.py [--groups 20000] [--rows 50] [--features 3] [--rounds 3]

Starts the real server (default settings, as ``benchmarks/benchmark.py`` does) and posts one
CSV table of ``groups x rows`` rows (a text column ``store``, ``features`` numeric columns
and a target ``y``, rows shuffled) to ``/fit?by=store``. The
floor is what a user would run in-process on the same numbers, already split by group:
``LinearRegression().fit(X_g, y_g)`` for every group, nothing else. Rounds are interleaved
(floor, service, ...) and the medians compared; every group's coefficients are compared too.
CPU time is measured too (the floor's process, the server's processes), since a machine
shared with other work stretches wall-clock times unevenly. Memory: the growth of the serving process's peak RSS (``VmHWM``) over its peak before the
requests, against the size of the body. Prints one line of figures.
"""

from __future__ import annotations

import argparse
import http.client
import itertools
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import orjson
import pandas as pd
from payloads import SEED  # run as a script: this folder is on the path
from servers import HOST, Server
from sklearn.linear_model import LinearRegression


def make_table(groups: int, rows: int, features: int, seed: int = SEED) -> pd.DataFrame:
    """``groups x rows`` rows of a linear model per group, shuffled; numbers with 7 significant digits."""
    rng = np.random.default_rng(seed)
    n = groups * rows
    X = rng.normal(size=(n, features))
    codes = np.repeat(np.arange(groups), rows)
    slopes = rng.normal(size=(groups, features))
    y = np.einsum("ij,ij->i", X, slopes[codes]) + rng.normal(size=groups)[codes] + rng.normal(size=n)
    frame = pd.DataFrame(X, columns=[f"x{j}" for j in range(features)])
    frame.insert(0, "store", [f"s{c:06d}" for c in codes])
    frame["y"] = y
    frame = frame.sample(frac=1.0, random_state=seed).reset_index(drop=True)
    # Round through text once, so that the floor fits exactly the numbers the service reads.
    numbers = [c for c in frame.columns if c != "store"]
    frame[numbers] = frame[numbers].map(lambda v: float(f"{v:.7g}"))
    return frame


def split(frame: pd.DataFrame) -> list[tuple[np.ndarray, np.ndarray]]:
    """Each group's features and target, in the service's order of groups (sorted)."""
    ordered = frame.sort_values("store", kind="stable")
    X = ordered.iloc[:, 1:-1].to_numpy(np.float64)
    y = ordered["y"].to_numpy(np.float64)
    _, starts = np.unique(ordered["store"].to_numpy(), return_index=True)
    bounds = [*starts.tolist(), len(ordered)]
    return [(X[a:b], y[a:b]) for a, b in itertools.pairwise(bounds)]


def floor(groups: list[tuple[np.ndarray, np.ndarray]]) -> np.ndarray:
    """The in-process floor: a fresh ``LinearRegression().fit`` per group."""
    return np.array([LinearRegression().fit(X, y).coef_ for X, y in groups])


def post(port: int, body: bytes) -> np.ndarray:
    """POST the table to /fit?by=store (a connection of its own) and return every group's coefficients."""
    connection = http.client.HTTPConnection(HOST, port, timeout=600)
    connection.request("POST", "/fit?by=store&target=y", body=body, headers={"Content-Type": "text/csv"})
    response = connection.getresponse()
    data = response.read()
    connection.close()
    if response.status != 200:
        raise RuntimeError(f"The service answered {response.status}: {data[:300]!r}")
    return np.array([group["coef"] for group in orjson.loads(data)["groups"]])


def timed(function: object, *args: object) -> tuple[float, object]:
    start = time.perf_counter()
    result = function(*args)  # type: ignore[operator]
    return time.perf_counter() - start, result


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--groups", type=int, default=20_000)
    parser.add_argument("--rows", type=int, default=50)
    parser.add_argument("--features", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=3)
    options = parser.parse_args(argv)
    frame = make_table(options.groups, options.rows, options.features)
    body = frame.to_csv(index=False, float_format="%.7g").encode()
    groups = split(frame)
    with tempfile.TemporaryDirectory() as log_dir:
        server = Server(Path(log_dir))
        try:
            baseline = server.status("VmHWM")
            post(server.port, body)  # warm up (imports, first allocations): its peak counts too
            floors, services, floor_cpu, service_cpu = [], [], [], []
            for _ in range(options.rounds):
                cpu = time.process_time()
                seconds, reference = timed(floor, groups)
                floor_cpu.append(time.process_time() - cpu)
                floors.append(seconds)
                cpu = server.cpu_seconds()
                seconds, answer = timed(post, server.port, body)
                service_cpu.append(server.cpu_seconds() - cpu)
                services.append(seconds)
            peak = server.status("VmHWM")
        finally:
            server.stop()
    growth = max(peak[pid] - baseline.get(pid, 0) for pid in peak)
    # Per group, the largest coefficient difference relative to the group's largest coefficient.
    scale = np.abs(reference).max(axis=1)  # type: ignore[union-attr]
    error = float(np.max(np.abs(answer - reference).max(axis=1) / scale))  # type: ignore[operator]
    f, s = statistics.median(floors), statistics.median(services)
    fc, sc = statistics.median(floor_cpu), statistics.median(service_cpu)
    print(
        f"{options.groups} groups x {options.rows} rows x {options.features} features "
        f"({len(body) / 2**20:.1f} MiB of CSV): floor {f:.2f} s (LinearRegression().fit per group), "
        f"service {s:.2f} s over HTTP, ratio {s / f:.2f}; CPU time: floor {fc:.2f} s, server {sc:.2f} s, "
        f"ratio {sc / fc:.2f}; server peak RSS growth {growth / 2**20:.0f} MiB "
        f"({growth / len(body):.1f}x the body); coefficients agree to {error:.1e} (relative, per group). "
        f"Rounds: floor {', '.join(f'{x:.2f}' for x in floors)}; service {', '.join(f'{x:.2f}' for x in services)}."
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
