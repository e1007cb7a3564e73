"""Measure CSV readers: time and peak memory, on the tables the service is benchmarked with.

    python benchmarks/csv_reader.py [--rounds 7] [--tables medium,large,text,quoted]

Tables (seeded, built in memory, nothing is written to disk):

- ``medium``: 10,000 rows x 10 numeric columns (about 2 MB);
- ``large``: 200,000 rows x 20 numeric columns (about 80 MB);
- ``text``: ``large`` with its first column replaced by a text column of 40 levels and one
  cell in a hundred of each numeric column empty (missing);
- ``quoted``: ``text`` as R's ``write.csv`` writes it: header names and text cells quoted.

Readers:

- ``pandas``: ``pandas.read_csv`` (the C reader, its defaults): the in-process floor's reader;
- ``pandas-strict``: the C reader with only empty cells and ``NA`` as missing values;
- ``pandas-strings``: the C reader with every column read as text (what a pandas-based
  reader would need to check each cell's spelling itself);
- ``pyarrow-infer``: ``pyarrow.csv.read_csv`` with its type inference;
- ``pyarrow-strings``: ``pyarrow.csv.read_csv`` with every column read as strings (the
  road of ``service.parse.csv`` for a body with a space or a tab in its rows, such as the
  ``text`` and ``quoted`` tables, whose text cells hold spaces: numeric columns are then
  cast from strings);
- ``fitserve``: ``service.parse.csv.read_csv``, the whole reader (typing, every check; on
  ``medium`` and ``large`` pyarrow converts the numeric columns to float64 as it reads);
- ``fitserve-1-thread``: the same with pyarrow held to one thread.

Time: the best and the median wall time over ``--rounds`` rounds, the readers interleaved
within each round; CPU time (all threads) of the best round. Peak memory: each reader runs
once in a fresh process that receives the table on its standard input; the figure is the
growth of the resident set's high-water mark (``VmHWM``, reset through
``/proc/self/clear_refs`` once the table is in memory) while it reads, the result alive.
"""

from __future__ import annotations

import argparse
import io
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

SEED = 20_260_101
READERS = (
    "pandas",
    "pandas-strict",
    "pandas-strings",
    "pyarrow-infer",
    "pyarrow-strings",
    "fitserve",
    "fitserve-1-thread",
)
TABLES = ("medium", "large", "text", "quoted")


def make_table(name: str) -> bytes:
    """Serialize one of the seeded tables as CSV bytes."""
    rows, columns = (10_000, 10) if name == "medium" else (200_000, 20)
    rng = np.random.default_rng([SEED, rows, columns])
    X = rng.standard_normal((rows, columns))
    names = [f"x{j}" for j in range(columns - 1)] + ["y"]
    cells = [[repr(value) for value in row] for row in X.tolist()]
    if name in ("text", "quoted"):
        names[0] = "hood"
        levels = [f"hood {k}" for k in range(40)]
        quote = '"{}"'.format if name == "quoted" else str
        for row, level in zip(cells, rng.integers(0, 40, rows).tolist(), strict=True):
            row[0] = quote(levels[level])
        for j in range(1, columns):
            for i in rng.choice(rows, rows // 100, replace=False).tolist():
                cells[i][j] = ""
        if name == "quoted":
            names = [f'"{name}"' for name in names]
    lines = [",".join(names)] + [",".join(row) for row in cells]
    return ("\n".join(lines) + "\n").encode()


def reader(name: str) -> Callable[[bytes], object]:
    """The function that reads CSV bytes the named way."""
    if name.startswith("pandas"):
        import pandas as pd

        if name == "pandas":
            return lambda data: pd.read_csv(io.BytesIO(data))
        text = str if name == "pandas-strings" else None
        return lambda data: pd.read_csv(
            io.BytesIO(data), keep_default_na=False, na_values=["", "NA"], dtype=text
        )
    import pyarrow as pa
    import pyarrow.csv as pcsv

    if name == "pyarrow-infer":
        return lambda data: pcsv.read_csv(pa.BufferReader(data))
    if name == "pyarrow-strings":

        def strings(data: bytes) -> object:
            names = data[: data.index(b"\n")].decode().replace('"', "").split(",")
            options = pcsv.ConvertOptions(
                column_types={name: pa.string() for name in names},
                null_values=["", "NA"],
                strings_can_be_null=True,
            )
            return pcsv.read_csv(pa.BufferReader(data), convert_options=options)

        return strings
    from service.parse.csv import read_csv

    if name == "fitserve":
        return lambda data: read_csv(data, "train")

    def one_thread(data: bytes) -> object:
        threads = pa.cpu_count()
        pa.set_cpu_count(1)
        try:
            return read_csv(data, "train")
        finally:
            pa.set_cpu_count(threads)

    return one_thread


def time_readers(data: bytes, names: Sequence[str], rounds: int) -> dict[str, dict[str, float]]:
    """Best and median wall time, and the CPU time of the best round, per reader (ms)."""
    functions = {name: reader(name) for name in names}
    for function in functions.values():
        function(data)  # warm: imports, thread pools
    walls: dict[str, list[float]] = {name: [] for name in names}
    cpus: dict[str, list[float]] = {name: [] for name in names}
    for _ in range(rounds):
        for name, function in functions.items():
            cpu, wall = time.process_time(), time.perf_counter()
            result = function(data)
            walls[name].append(time.perf_counter() - wall)
            cpus[name].append(time.process_time() - cpu)
            del result
    return {
        name: {
            "best": 1000 * min(walls[name]),
            "median": 1000 * statistics.median(walls[name]),
            "cpu": 1000 * cpus[name][walls[name].index(min(walls[name]))],
        }
        for name in names
    }


def high_water_kib() -> int:
    """The resident set's high-water mark of this process, in KiB."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    raise RuntimeError("no VmHWM in /proc/self/status")


def resident_kib() -> int:
    """The resident set of this process, in KiB."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS in /proc/self/status")


def measure_memory_here(name: str) -> None:
    """Child process: read the table on stdin once and print the peak growth in MiB."""
    data = sys.stdin.buffer.read()
    function = reader(name)
    function(make_table("medium")[:20_000].rsplit(b"\n", 1)[0])  # imports and thread pools
    with open("/proc/self/clear_refs", "w") as refs:
        refs.write("5")
    before = resident_kib()
    result = function(data)
    peak = high_water_kib()
    del result
    print((peak - before) / 1024)


def measure_memory(data: bytes, name: str) -> float:
    """Peak memory growth (MiB) of one read, in a fresh process."""
    run = subprocess.run(
        [sys.executable, __file__, "--memory-of", name],
        input=data,
        capture_output=True,
        check=True,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )
    return float(run.stdout)


def floor_ms(data: bytes, rounds: int) -> float:
    """The in-process floor of the service's benchmark: pandas.read_csv + LinearRegression().fit."""
    import pandas as pd
    from sklearn.linear_model import LinearRegression

    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        frame = pd.read_csv(io.BytesIO(data))
        LinearRegression().fit(frame.iloc[:, :-1], frame.iloc[:, -1])
        times.append(time.perf_counter() - start)
    return 1000 * min(times)


def run(options: argparse.Namespace) -> list[dict[str, Any]]:
    """Measure every reader on every table asked for."""
    rows = []
    for table in options.tables:
        data = make_table(table)
        print(f"{table}: {len(data) / 1e6:.1f} MB", file=sys.stderr, flush=True)
        times = time_readers(data, options.readers, options.rounds)
        for name in options.readers:
            rows.append(
                {
                    "table": table,
                    "mb": len(data) / 1e6,
                    "reader": name,
                    **times[name],
                    "peak": measure_memory(data, name),
                }
            )
        if table in ("medium", "large"):
            rows.append(
                {
                    "table": table,
                    "mb": len(data) / 1e6,
                    "reader": "floor: pandas + fit",
                    "best": floor_ms(data, options.rounds),
                }
            )
    return rows


def render(rows: list[dict[str, Any]]) -> str:
    """The figures as a Markdown table."""
    lines = [
        f"CPUs: {os.cpu_count()}, load average {os.getloadavg()[0]:.1f}; times in ms, memory in MiB",
        "",
        "| table | reader | best | median | CPU | peak memory |",
        "| --- | --- | ---: | ---: | ---: | ---: |",
    ]
    for row in rows:
        cells = [f"{row[key]:.0f}" if key in row else "" for key in ("best", "median", "cpu", "peak")]
        lines.append(f"| {row['table']} ({row['mb']:.0f} MB) | {row['reader']} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Parse the flags, measure, print the table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--tables", type=lambda text: text.split(","), default=list(TABLES))
    parser.add_argument("--readers", type=lambda text: text.split(","), default=list(READERS))
    parser.add_argument("--memory-of", help=argparse.SUPPRESS)
    options = parser.parse_args(argv)
    if options.memory_of:
        measure_memory_here(options.memory_of)
        return 0
    print(render(run(options)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
