"""Benchmark fitserve against the in-process floor (not a test: pytest does not collect it).

Starts the real server (``python -m service --port <free port>``, default settings
otherwise: a worker process per CPU) and measures, in one run on this machine, the
service against the floor: the time for ``orjson.loads`` + ``np.asarray`` +
``LinearRegression().fit`` + ``.predict`` + ``orjson.dumps`` of the same payload bytes
inside this Python process.

Payloads (seeded random; X_train rows x features, X_test rows):

=======  =========================  ==========================================
small    50 x 3 + 10                throughput, 8 concurrent keep-alive clients
medium   10,000 x 10 + 1,000        latency from one keep-alive client
large    200,000 x 20 + 10,000      latency, and the server's peak RSS growth
=======  =========================  ==========================================

Targets (ratios from this one run): small throughput >= 1.0 x the floor rate
(1 / floor time); medium latency <= 0.9 x the floor; large latency <= 0.8 x the floor and
peak RSS growth (``VmHWM`` of the worker that served the large requests, all on one
connection) <= 3.5 x the body size; every answer (coef,
intercept, predictions) equal to the floor's to 1e-12 relative.

Rounds are interleaved (floor, service, floor, service, ...) and the medians reported;
each measurement starts after a short pause, so that neither side runs in the other's tail.
The floor keeps the garbage collector on (its full collections over the lists that
``orjson.loads`` makes are part of its cost), with this script's own imports frozen out of
it (``gc.freeze()``), which makes the floor faster, not slower.
Small throughput uses ``wrk`` (Debian's package ``wrk``) when it is on the PATH, else
a multi-process Python load generator; the report says which. Bodies are serialized once,
before timing, so client-side serialization is never measured.

Usage::

    python benchmarks/benchmark.py                      # all payloads, markdown table
    python benchmarks/benchmark.py --only small,medium --rounds 3
    python benchmarks/benchmark.py --json > before.json
    python benchmarks/benchmark.py --server-args "--workers 1"   # other server settings
"""

from __future__ import annotations

import argparse
import gc
import http.client
import json
import multiprocessing
import os
import platform
import shlex
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import orjson
from processes import server_processes, status_figure  # run as a script: this folder is on the path
from sklearn.linear_model import LinearRegression

ROOT = Path(__file__).resolve().parent.parent  # the checkout whose service is measured
HOST = "127.0.0.1"
ENDPOINT = "/predict"
SEED = 20240611
CONNECTIONS = 8
RELATIVE_TOLERANCE = 1e-12
RSS_TARGET = 3.5
SETTLE = 0.2  # seconds of quiet before each measurement, so that one side's tail does not slow the other


@dataclass(frozen=True)
class Payload:
    """A benchmark payload: its shape, what is measured and the target ratio."""

    name: str
    rows: int
    features: int
    test_rows: int
    rounds: int
    target: float  # small: service rate / floor rate >= target; else service / floor time <= target


PAYLOADS = {
    "small": Payload("small", 50, 3, 10, rounds=5, target=1.0),
    "medium": Payload("medium", 10_000, 10, 1_000, rounds=15, target=0.9),
    "large": Payload("large", 200_000, 20, 10_000, rounds=5, target=0.8),
}


# ---------------------------------------------------------------------------- payloads


def make_body(payload: Payload, seed: int = SEED) -> bytes:
    """Serialize a seeded random regression problem of the payload's shape as JSON bytes."""
    rng = np.random.default_rng([seed, payload.rows, payload.features])
    X = rng.standard_normal((payload.rows, payload.features))
    beta = rng.uniform(-5, 5, payload.features)
    y = 3.0 + X @ beta + 0.5 * rng.standard_normal(payload.rows)
    X_test = rng.standard_normal((payload.test_rows, payload.features))
    return orjson.dumps({"X_train": X, "y_train": y, "X_test": X_test}, option=orjson.OPT_SERIALIZE_NUMPY)


def floor(body: bytes) -> bytes:
    """The in-process floor: parse, convert, fit, predict and serialize, nothing else."""
    document = orjson.loads(body)
    X = np.asarray(document["X_train"], dtype=np.float64)
    y = np.asarray(document["y_train"], dtype=np.float64)
    X_test = np.asarray(document["X_test"], dtype=np.float64)
    model = LinearRegression().fit(X, y)
    predictions = model.predict(X_test)
    answer = {"coef": model.coef_, "intercept": float(model.intercept_), "predictions": predictions}
    return orjson.dumps(answer, option=orjson.OPT_SERIALIZE_NUMPY)


def compare(service: bytes, reference: bytes) -> dict[str, Any]:
    """Compare the service's coef, intercept and predictions to the floor's, to 1e-12 relative.

    Each field passes when ``max |a - b| <= 1e-12 * max |b|`` (relative to the field's
    largest magnitude, so that a value near zero does not need digits it cannot have); the
    largest element-wise relative difference is reported too.
    """
    got, want = orjson.loads(service), orjson.loads(reference)
    fields: dict[str, Any] = {}
    ok = True
    for key in ("coef", "intercept", "predictions"):
        if key not in got:
            fields[key] = {"ok": False, "error": f"the answer has no {key!r}"}
            ok = False
            continue
        a = np.atleast_1d(np.asarray(got[key], dtype=np.float64))
        b = np.atleast_1d(np.asarray(want[key], dtype=np.float64))
        if a.shape != b.shape:
            fields[key] = {"ok": False, "error": f"shape {a.shape} instead of {b.shape}"}
            ok = False
            continue
        scale = float(np.abs(b).max()) or 1.0
        normwise = float(np.abs(a - b).max()) / scale
        elementwise = float((np.abs(a - b) / np.maximum(np.abs(b), np.finfo(np.float64).tiny)).max())
        passed = normwise <= RELATIVE_TOLERANCE
        ok = ok and passed
        fields[key] = {"ok": passed, "max_relative": normwise, "max_elementwise_relative": elementwise}
    return {"ok": ok, "fields": fields}


# ---------------------------------------------------------------------------- the server


class Server:
    """``python -m service`` in a subprocess on a free loopback port, default settings otherwise.

    It runs in the root of this checkout, so that the ``service`` measured is the one beside
    this script (``-m`` puts the working directory first on the path).
    """

    def __init__(self, log_dir: Path, arguments: Sequence[str] = ()) -> None:
        self.port = free_port()
        self.log_path = log_dir / "server.log"
        environ = {k: v for k, v in os.environ.items() if not k.startswith("FITSERVE_")}
        self.log = self.log_path.open("wb")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "service", "--port", str(self.port), *arguments],
            stdin=subprocess.DEVNULL,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            env=environ,
            cwd=ROOT,
        )
        self.wait_until_healthy()

    @property
    def pid(self) -> int:
        """The server process's id."""
        return self.process.pid

    def wait_until_healthy(self, timeout: float = 60.0) -> None:
        """Poll ``GET /health`` until it answers 200, or fail with the server's log."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                break
            try:
                connection = http.client.HTTPConnection(HOST, self.port, timeout=2)
                connection.request("GET", "/health")
                if connection.getresponse().status == 200:
                    connection.close()
                    return
                connection.close()
            except OSError:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"The server did not become healthy; its log:\n{self.log_path.read_text()}")

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
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
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
    """One keep-alive connection that POSTs pre-serialized bodies."""

    def __init__(self, port: int, timeout: float = 300.0) -> None:
        self.connection = http.client.HTTPConnection(HOST, port, timeout=timeout)

    def post(self, body: bytes) -> bytes:
        """POST ``body`` to the endpoint and return the answer's bytes; fail unless 200."""
        connection = self.connection
        connection.putrequest("POST", ENDPOINT, skip_accept_encoding=True)
        connection.putheader("Content-Type", "application/json")
        connection.putheader("Content-Length", str(len(body)))
        connection.endheaders()
        connection.send(body)  # not through endheaders(body): that would copy the body first
        response = connection.getresponse()
        data = response.read()
        if response.status != 200:
            raise RuntimeError(f"The service answered {response.status}: {data[:300]!r}")
        return data

    def close(self) -> None:
        """Close the connection."""
        self.connection.close()


# ---------------------------------------------------------------------------- measuring


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


def wrk_throughput(port: int, body_path: Path, duration: float, work: Path) -> dict[str, Any]:
    """Requests per second from ``wrk`` with 8 keep-alive connections POSTing the body."""
    script = work / "post.lua"
    script.write_text(
        "wrk.method = 'POST'\n"
        "wrk.headers['Content-Type'] = 'application/json'\n"
        f"local file = assert(io.open([==[{body_path}]==], 'rb'))\n"
        "wrk.body = file:read('*a')\n"
        "file:close()\n"
        "done = function(summary, latency, requests)\n"
        "  local e = summary.errors\n"
        "  io.write(string.format('RESULT %d %d %d %d %d %d %d\\n', summary.requests, summary.duration,\n"
        "    e.connect, e.read, e.write, e.status, e.timeout))\n"
        "end\n"
    )
    command = [
        "wrk", "-t", "2", "-c", str(CONNECTIONS), "-d", f"{duration:g}s", "--timeout", "10s",
        "-s", str(script), f"http://{HOST}:{port}{ENDPOINT}",
    ]  # fmt: skip
    output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    line = next(line for line in output.splitlines() if line.startswith("RESULT "))
    requests, micros, *errors = (int(v) for v in line.split()[1:])
    failed = sum(errors)
    return {"rate": (requests - errors[3]) / (micros / 1e6), "requests": requests, "errors": failed}


def python_worker(port: int, body: bytes, start_at: float, end_at: float, results: Any) -> None:
    """One load-generator process: POST over one keep-alive connection until ``end_at``."""
    client = Client(port, timeout=30)
    done = errors = 0
    while time.time() < start_at:
        time.sleep(0.001)
    while time.time() < end_at:
        try:
            client.post(body)
            done += 1
        except (RuntimeError, OSError, http.client.HTTPException):
            errors += 1
            client.close()
            client = Client(port, timeout=30)
    client.close()
    results.put((done, errors))


def python_throughput(port: int, body: bytes, duration: float) -> dict[str, Any]:
    """Requests per second from 8 processes, each with one keep-alive connection."""
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
    done = sum(c[0] for c in counts)
    return {"rate": done / duration, "requests": done, "errors": sum(c[1] for c in counts)}


def measure_small(
    server: Server, payload: Payload, body: bytes, rounds: int, generator: str, work: Path, duration: float
) -> dict[str, Any]:
    """Floor time per call in a tight loop against the service's throughput, interleaved."""
    body_path = work / "small.json"
    body_path.write_bytes(body)
    floor_times, rates, errors = [], [], 0
    for _ in range(rounds):
        time.sleep(SETTLE)
        floor_times.append(time_per_call(lambda: floor(body), budget=1.0))
        time.sleep(SETTLE)
        if generator == "wrk":
            result = wrk_throughput(server.port, body_path, duration, work)
        else:
            result = python_throughput(server.port, body, duration)
        rates.append(result["rate"])
        errors += result["errors"]
    floor_time = statistics.median(floor_times)
    rate = statistics.median(rates)
    ratio = rate * floor_time
    return {
        "measure": f"throughput, {CONNECTIONS} connections ({generator})",
        "floor_seconds": summary(floor_times),
        "floor_rate": 1 / floor_time,
        "service_rate": summary(rates),
        "errors": errors,
        "ratio": ratio,
        "target": f">= {payload.target}",
        "pass": ratio >= payload.target and errors == 0,
    }


def measure_latency(
    server: Server, client: Client, payload: Payload, body: bytes, rounds: int
) -> dict[str, Any]:
    """Floor time against the service's latency from one client, interleaved.

    The CPU time of each side is kept too (the floor's process time, the server's from
    ``/proc``): on a machine shared with other work it tells contention from cost.
    """
    floor_times, service_times, floor_cpu, service_cpu = [], [], [], []
    for _ in range(rounds):
        time.sleep(SETTLE)
        cpu = time.process_time()
        floor_times.append(time_once(lambda: floor(body)))
        floor_cpu.append(time.process_time() - cpu)
        time.sleep(SETTLE)
        cpu = server.cpu_seconds()
        service_times.append(time_once(lambda: client.post(body)))
        time.sleep(SETTLE)  # the server's last ticks of this request (freeing memory) are its cost too
        service_cpu.append(server.cpu_seconds() - cpu)
    ratio = statistics.median(service_times) / statistics.median(floor_times)
    return {
        "measure": "latency, 1 client",
        "floor_seconds": summary(floor_times),
        "service_seconds": summary(service_times),
        "floor_cpu_seconds": summary(floor_cpu),
        "service_cpu_seconds": summary(service_cpu),
        "ratio": ratio,
        "target": f"<= {payload.target}",
        "pass": ratio <= payload.target,
    }


# ---------------------------------------------------------------------------- the run


def run(options: argparse.Namespace) -> dict[str, Any]:
    """Start the server, check answers, measure every chosen payload, stop the server."""
    chosen = [PAYLOADS[name] for name in ("large", "medium", "small") if name in options.only]
    generator = options.generator
    if generator == "auto":
        generator = "wrk" if shutil.which("wrk") else "python"
    report: dict[str, Any] = {"machine": machine(), "load_generator": generator, "payloads": {}}
    bodies = {p.name: make_body(p) for p in chosen}
    small_body = bodies.get("small") or make_body(PAYLOADS["small"])
    # The floor keeps Python's garbage collector, but not the cost of scanning this script's
    # imports (scikit-learn's objects) at each full collection: that would flatter the service.
    gc.collect()
    gc.freeze()
    with tempfile.TemporaryDirectory(prefix="fitserve-bench-") as directory:
        work = Path(directory)
        server = Server(work, shlex.split(options.server_args))
        client = Client(server.port)
        try:
            for _ in range(20):  # warm up: imports, caches, allocator; then take the RSS baseline
                client.post(small_body)
            baseline = server.status("VmHWM")
            report["server"] = {
                "pid": server.pid,
                "port": server.port,
                "arguments": options.server_args,
                "processes": len(baseline),
                "vmhwm_after_warmup": sum(baseline.values()),
            }
            for payload in chosen:
                body = bodies[payload.name]
                rounds = options.rounds or payload.rounds
                answer = client.post(body)  # the first request of this payload: warm-up and answer check
                entry: dict[str, Any] = {
                    "shape": f"{payload.rows} x {payload.features} + {payload.test_rows}",
                    "body_bytes": len(body),
                    "rounds": rounds,
                    "answers": compare(answer, floor(body)),
                }
                if payload.name == "large":
                    first = server.status("VmHWM")
                if payload.name == "small":
                    entry.update(
                        measure_small(server, payload, body, rounds, generator, work, options.duration)
                    )
                else:
                    entry.update(measure_latency(server, client, payload, body, rounds))
                if payload.name == "large":
                    # The process that served the large requests (one connection: one worker)
                    # is the one whose peak grew most.
                    peak = server.status("VmHWM")
                    pid = max(peak, key=lambda p: peak[p] - baseline.get(p, 0))
                    growth = peak[pid] - baseline.get(pid, 0)
                    entry["rss"] = {
                        "pid": pid,
                        "vmhwm_before": baseline.get(pid, 0),
                        "vmhwm_after_first": first.get(pid, 0),
                        "vmhwm_after_all": peak[pid],
                        "growth_first": first.get(pid, 0) - baseline.get(pid, 0),
                        "growth": growth,
                        "growth_per_body_byte": growth / len(body),
                        "target": f"<= {RSS_TARGET}",
                        "pass": growth / len(body) <= RSS_TARGET,
                    }
                report["payloads"][payload.name] = entry
            report["server"]["vmrss_at_end"] = sum(server.status("VmRSS").values())
            report["machine"]["load_average_at_end"] = os.getloadavg()[0]
        finally:
            client.close()
            server.stop()
    return report


def machine() -> dict[str, Any]:
    """What the figures were measured on."""
    from threadpoolctl import threadpool_info

    return {
        "load_average_at_start": os.getloadavg()[0],
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "floor_blas_threads": max((i.get("num_threads", 0) for i in threadpool_info()), default=None),
    }


# ---------------------------------------------------------------------------- the report


def milliseconds(seconds: float) -> str:
    """Format seconds as milliseconds."""
    return f"{seconds * 1e3:,.1f} ms" if seconds < 10 else f"{seconds:,.2f} s"


def table(report: dict[str, Any]) -> str:
    """The report as markdown."""
    lines = [
        "| payload | measure | floor | service | ratio | target | result |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    notes = []
    for name, entry in report["payloads"].items():
        passed = "pass" if entry["pass"] else "FAIL"
        if name == "small":
            floor_text = (
                f"{entry['floor_rate']:,.0f} req/s ({milliseconds(entry['floor_seconds']['median'])}/req)"
            )
            service_text = f"{entry['service_rate']['median']:,.0f} req/s"
            if entry["errors"]:
                service_text += f" ({entry['errors']} errors)"
        else:
            floor_text = milliseconds(entry["floor_seconds"]["median"])
            service_text = milliseconds(entry["service_seconds"]["median"])
        lines.append(
            f"| {name} ({entry['shape']}) | {entry['measure']} | {floor_text} | {service_text} "
            f"| {entry['ratio']:.2f} | {entry['target']} | {passed} |"
        )
        if "rss" in entry:
            rss = entry["rss"]
            lines.append(
                f"| {name} | peak RSS growth (VmHWM) | body {entry['body_bytes'] / 1e6:,.1f} MB "
                f"| {rss['growth'] / 1e6:,.1f} MB | {rss['growth_per_body_byte']:.2f} | {rss['target']} "
                f"| {'pass' if rss['pass'] else 'FAIL'} |"
            )
        answers = entry["answers"]
        worst = max(
            (f.get("max_relative", float("inf")) for f in answers["fields"].values()), default=float("inf")
        )
        lines.append(
            f"| {name} | answers vs floor | | max rel. diff {worst:.1e} | | <= {RELATIVE_TOLERANCE:g} "
            f"| {'pass' if answers['ok'] else 'FAIL'} |"
        )
        spread = entry.get("service_rate") or entry.get("service_seconds")
        cpu = ""
        if "service_cpu_seconds" in entry:
            cpu = (
                f"; CPU time (median) floor {milliseconds(entry['floor_cpu_seconds']['median'])}, "
                f"server {milliseconds(entry['service_cpu_seconds']['median'])}"
            )
        notes.append(
            f"- {name}: {entry['rounds']} interleaved rounds; body {entry['body_bytes']:,} bytes; "
            f"floor {fmt_range(entry['floor_seconds'])}; service {fmt_range(spread, rate=name == 'small')}{cpu}"
        )
    if "large" in report["payloads"]:
        rss = report["payloads"]["large"]["rss"]
        notes.append(
            f"- RSS of the worker that served the large requests: VmHWM {rss['vmhwm_before'] / 1e6:,.1f} MB after warm-up, "
            f"{rss['vmhwm_after_first'] / 1e6:,.1f} MB after the first large request, "
            f"{rss['vmhwm_after_all'] / 1e6:,.1f} MB after all"
        )
    info = report["machine"]
    server = report["server"]
    notes.append(
        f"- server: {server['processes']} processes (the parent and its workers, or one that serves)"
        + (f", flags {server['arguments']}" if server["arguments"] else ", default settings")
    )
    notes.append(
        f"- load generator: {report['load_generator']}; {info['cpus']} CPUs; Python {info['python']}; "
        f"floor BLAS threads {info['floor_blas_threads']}; load average {info['load_average_at_start']:.2f} "
        f"at start, {info.get('load_average_at_end', float('nan')):.2f} at end"
    )
    return "\n".join([*lines, "", *notes])


def fmt_range(values: dict[str, Any], rate: bool = False) -> str:
    """Say the range of a list of measurements."""
    if rate:
        return f"{values['min']:,.0f}-{values['max']:,.0f} req/s"
    return f"{milliseconds(values['min'])}-{milliseconds(values['max'])}"


def build_parser() -> argparse.ArgumentParser:
    """The command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--rounds", type=int, help="rounds per payload (default: small 5, medium 15, large 5)"
    )
    parser.add_argument("--only", default="small,medium,large", help="payloads, comma-separated")
    parser.add_argument("--json", action="store_true", help="print the whole report as JSON")
    parser.add_argument(
        "--generator", choices=("auto", "wrk", "python"), default="auto",
        help="small-payload load generator (default: wrk when installed, else Python processes)",
    )  # fmt: skip
    parser.add_argument("--duration", type=float, default=3.0, help="seconds of load per small round")
    parser.add_argument(
        "--floor-blas-threads", type=int,
        help="limit BLAS threads of the floor (default: this process's default, as a plain Python process has)",
    )  # fmt: skip
    parser.add_argument(
        "--server-args", default="", help="flags for the server, as one string (default: none, the defaults)"
    )
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark and print the report."""
    options = build_parser().parse_args(argv)
    options.only = [name.strip() for name in options.only.split(",") if name.strip()]
    unknown = [name for name in options.only if name not in PAYLOADS]
    if unknown or not options.only:
        print(f"--only takes small, medium and large. Got {options.only} instead.", file=sys.stderr)
        return 2
    if options.rounds is not None and options.rounds < 1:
        print(f"--rounds must be at least 1. Got {options.rounds} instead.", file=sys.stderr)
        return 2
    if options.floor_blas_threads is not None:
        from threadpoolctl import threadpool_limits

        threadpool_limits(limits=options.floor_blas_threads)
    report = run(options)
    if options.json:
        print(json.dumps(report, indent=2))
    else:
        print(table(report))
    failed = any(
        not entry["pass"] or not entry["answers"]["ok"] or not entry.get("rss", {"pass": True})["pass"]
        for entry in report["payloads"].values()
    )
    return 1 if options.strict and failed else 0


if __name__ == "__main__":
    sys.exit(main())
