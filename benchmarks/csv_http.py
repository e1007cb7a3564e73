"""CSV over HTTP against the in-process floor: ``pandas.read_csv`` + ``LinearRegression().fit``.

    python benchmarks/csv_http.py [--rounds 5] [--only medium|large]

Starts the real server (default settings, as ``benchmarks/benchmark.py`` does), posts a
numeric CSV training table (``text/csv``, the last column the target) to ``/fit`` over one
keep-alive connection, and times it against the floor a user would write in-process on the
same bytes. Rounds are interleaved (floor, service, floor, ...) and the medians compared; the
answers' coefficients are compared too. Prints one line per table.
"""

from __future__ import annotations

import argparse
import http.client
import io
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import orjson
import pandas as pd
from benchmark import HOST, SEED, Server  # run as a script: this folder is on the path
from sklearn.linear_model import LinearRegression

TABLES = {"medium": (10_000, 10), "large": (200_000, 20)}


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


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--only", choices=sorted(TABLES))
    options = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as log_dir:
        server = Server(Path(log_dir))
        try:
            for name, (rows, features) in TABLES.items():
                if options.only and name != options.only:
                    continue
                body = make_csv(rows, features)
                connection = http.client.HTTPConnection(HOST, server.port, timeout=300)
                post(connection, body)  # warm up
                floors, services = [], []
                for _ in range(options.rounds):
                    seconds, reference = timed(floor, body)
                    floors.append(seconds)
                    seconds, answer = timed(post, connection, body)
                    services.append(seconds)
                connection.close()
                error = float(np.max(np.abs(answer - reference) / np.abs(reference)))  # type: ignore[operator]
                f, s = statistics.median(floors), statistics.median(services)
                print(
                    f"{name}: {rows} x {features} ({len(body) / 1e6:.1f} MB of CSV): floor {f * 1e3:.1f} ms, "
                    f"service {s * 1e3:.1f} ms, ratio {s / f:.2f}; coefficients agree to {error:.1e} (relative)"
                )
        finally:
            server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
