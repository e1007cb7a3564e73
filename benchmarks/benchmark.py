"""Benchmark fitserve against its peers and the in-process floor, in one run (pytest does not collect it).

Starts the real server (``python -m service --port <free port>``, default settings
otherwise) and the peers of ``benchmarks/peer_servers.py`` (the classic Flask example on
gunicorn and on waitress, FastAPI + pydantic on uvicorn; installed into
``.venv`` in this folder, the first time), and measures them all, in one run on this
machine, against the floor: the time for ``orjson.loads`` + ``np.asarray`` +
``LinearRegression().fit`` + ``.predict`` + ``orjson.dumps`` of the same payload bytes
inside this Python process.

Payloads (seeded random; X_train rows x features, X_test rows):

=======  =========================  ==========================================
small    50 x 3 + 10                throughput, p50 and p99 latency, 8 connections
medium   10,000 x 10 + 1,000        latency from one keep-alive client
large    200,000 x 20 + 10,000      latency, and each server's peak RSS growth
=======  =========================  ==========================================

Targets for fitserve (ratios from this one run): small throughput >= 2.0 x the best
peer's and >= 1.0 x the floor rate (1 / floor time), small p99 <= 2.0 x the lowest p99 of
the peers; medium latency <= 0.8 x the floor; large latency <= 0.7 x the floor and peak RSS
growth (``VmHWM`` growth of the process that grew most) <= 3.0 x the body size; every
answer (coef, intercept, predictions) of every server equal to the floor's to 1e-12 relative.

Rounds are interleaved (floor, fitserve, each peer, floor, ...) and the medians reported, so
that a machine getting busier or quieter shifts every side alike; each measurement starts after a
short pause. The floor keeps the garbage collector on, with this script's own imports frozen
out of it (``gc.freeze()``), which makes the floor faster, not slower. Small loads use ``wrk``
(Debian's package ``wrk``) when it is on the PATH, else Python processes; the report says which.

``--repeat N --pause S`` measures stability instead: the small load N times, S seconds apart,
each run and the spread (max / min - 1) of every server.

Usage::

    python benchmarks/benchmark.py                      # everything, markdown tables
    python benchmarks/benchmark.py --no-peers --only small,medium --rounds 3
    python benchmarks/benchmark.py --repeat 5 --pause 60
    python benchmarks/benchmark.py --json > before.json
    python benchmarks/benchmark.py --server-args "--workers 1"   # other fitserve settings
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import shlex
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import peer_servers  # run as a script: this folder is on the path
from loads import python_throughput, small_load, summary, time_once, time_per_call, wrk_throughput
from payloads import PAYLOADS, SEED, compare, floor, make_body
from report import FITSERVE, repeat_table, table, targets
from servers import HOST, Client, Server

__all__ = ["HOST", "PAYLOADS", "SEED", "Server", "make_body", "python_throughput", "wrk_throughput"]

SETTLE = 0.2  # seconds of quiet before each measurement, so that one side's tail does not slow the other


# ---------------------------------------------------------------------------- the run


def start_servers(options: argparse.Namespace, work: Path) -> dict[str, Server]:
    """fitserve and, unless ``--no-peers``, every peer, each on its own port (stopped by the caller)."""
    servers = {FITSERVE: Server(work, shlex.split(options.server_args))}
    if options.peers:
        peer_servers.environment()
        for peer in peer_servers.peers(os.cpu_count() or 1):
            servers[peer.name] = Server(work, command=peer.command, cwd=peer_servers.PEERS, name=peer.name)
    return servers


def run(options: argparse.Namespace) -> dict[str, Any]:
    """Start the servers, check answers, measure every chosen payload, stop the servers."""
    chosen = [PAYLOADS[name] for name in ("small", "medium", "large") if name in options.only]
    bodies = {p.name: make_body(p) for p in chosen}
    small_body = bodies.get("small") or make_body(PAYLOADS["small"])
    report: dict[str, Any] = {"machine": machine(), "load_generator": options.generator, "payloads": {}}
    # The floor keeps Python's garbage collector, but not the cost of scanning this script's
    # imports (scikit-learn's objects) at each full collection: that would flatter the servers.
    gc.collect()
    gc.freeze()
    with tempfile.TemporaryDirectory(prefix="fitserve-bench-") as directory:
        work = Path(directory)
        servers: dict[str, Server] = {}
        clients: dict[str, Client] = {}
        try:
            servers = start_servers(options, work)
            clients = {name: Client(server.port) for name, server in servers.items()}
            for client in clients.values():
                for _ in range(20):  # warm up: imports, caches, allocator; then take the RSS baseline
                    client.post(small_body)
            baseline = {name: server.status("VmHWM") for name, server in servers.items()}
            report["servers"] = {
                name: {"processes": len(baseline[name]), "vmhwm_after_warmup": sum(baseline[name].values())}
                for name in servers
            }
            report["fitserve_arguments"] = options.server_args
            if options.peers:
                report["peer_versions"] = peer_servers.versions()
            for payload in chosen:
                body = bodies[payload.name]
                reference = floor(body)
                entry: dict[str, Any] = {
                    "shape": f"{payload.rows} x {payload.features} + {payload.test_rows}",
                    "body_bytes": len(body),
                    "rounds": options.rounds or payload.rounds,
                    "answers": {name: compare(client.post(body), reference) for name, client in clients.items()},
                }
                if payload.name == "small":
                    entry.update(measure_small(options, servers, body, entry["rounds"], work))
                else:
                    entry.update(measure_latency(servers, clients, body, entry["rounds"]))
                if payload.name == "large":
                    entry["rss_growth"] = {
                        name: peak_growth(baseline[name], server.status("VmHWM")) for name, server in servers.items()
                    }
                report["payloads"][payload.name] = entry
            report["machine"]["load_average_at_end"] = os.getloadavg()[0]
        finally:
            for client in clients.values():
                client.close()
            for server in servers.values():
                server.stop()
    report["targets"] = targets(report)
    return report


def measure_small(
    options: argparse.Namespace, servers: dict[str, Server], body: bytes, rounds: int, work: Path
) -> dict[str, Any]:
    """Floor time per call in a tight loop, and each server's throughput and latency, interleaved."""
    body_path = work / "small.json"
    body_path.write_bytes(body)
    floor_times: list[float] = []
    loads: dict[str, list[dict[str, Any]]] = {name: [] for name in servers}
    for _ in range(rounds):
        time.sleep(SETTLE)
        floor_times.append(time_per_call(lambda: floor(body), budget=1.0))
        for name, server in servers.items():
            time.sleep(SETTLE)
            cpu = server.cpu_seconds()
            result = small_load(options.generator, server.port, body, body_path, options.duration, work)
            result["cpu_per_request"] = (server.cpu_seconds() - cpu) / max(1, result["requests"])
            loads[name].append(result)
    return {
        "floor_seconds": summary(floor_times),
        "servers": {
            name: {
                "rate": summary([r["rate"] for r in results]),
                "p50": summary([r["p50"] for r in results]),
                "p99": summary([r["p99"] for r in results]),
                "cpu_per_request": summary([r["cpu_per_request"] for r in results]),
                "errors": sum(r["errors"] for r in results),
            }
            for name, results in loads.items()
        },
    }


def measure_latency(
    servers: dict[str, Server], clients: dict[str, Client], body: bytes, rounds: int
) -> dict[str, Any]:
    """Floor time against each server's latency from one keep-alive client, interleaved.

    fitserve's CPU time is kept too (from ``/proc``): on a shared machine it tells contention from cost.
    """
    floor_times: list[float] = []
    times: dict[str, list[float]] = {name: [] for name in servers}
    cpu: list[float] = []
    for _ in range(rounds):
        time.sleep(SETTLE)
        floor_times.append(time_once(lambda: floor(body)))
        for name, client in clients.items():
            time.sleep(SETTLE)
            before = servers[name].cpu_seconds() if name == FITSERVE else 0.0
            times[name].append(time_once(lambda c=client: c.post(body)))  # type: ignore[misc]
            if name == FITSERVE:
                time.sleep(SETTLE)  # the server's last ticks of this request (freeing memory) are its cost too
                cpu.append(servers[name].cpu_seconds() - before)
    return {
        "floor_seconds": summary(floor_times),
        "servers": {name: {"seconds": summary(values)} for name, values in times.items()},
        "fitserve_cpu_seconds": summary(cpu),
    }


def peak_growth(before: dict[int, int], after: dict[int, int]) -> dict[str, Any]:
    """The largest growth of ``VmHWM`` of one process of a server (the one that served the large fits)."""
    pid = max(after, key=lambda p: after[p] - before.get(p, 0))
    return {"pid": pid, "before": before.get(pid, 0), "after": after[pid], "growth": after[pid] - before.get(pid, 0)}


def repeat(options: argparse.Namespace) -> dict[str, Any]:
    """The small load ``--repeat`` times, ``--pause`` seconds apart, on every server; each run and the spread."""
    body = make_body(PAYLOADS["small"])
    runs: dict[str, list[dict[str, Any]]] = {}
    with tempfile.TemporaryDirectory(prefix="fitserve-bench-") as directory:
        work = Path(directory)
        body_path = work / "small.json"
        body_path.write_bytes(body)
        servers: dict[str, Server] = {}
        try:
            servers = start_servers(options, work)
            runs = {name: [] for name in servers}
            for index in range(options.repeat):
                if index:
                    time.sleep(options.pause)
                for name, server in servers.items():
                    time.sleep(SETTLE)
                    result = small_load(options.generator, server.port, body, body_path, options.duration, work)
                    result["load_average"] = os.getloadavg()[0]
                    runs[name].append(result)
                    print(f"run {index + 1} {name}: {result['rate']:,.0f} req/s, p50 {result['p50'] * 1e3:.1f} ms, "
                          f"p99 {result['p99'] * 1e3:.1f} ms", file=sys.stderr, flush=True)  # fmt: skip
        finally:
            for server in servers.values():
                server.stop()
    return {"machine": machine(), "load_generator": options.generator, "pause": options.pause, "runs": runs}


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


def build_parser() -> argparse.ArgumentParser:
    """The command-line options."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--rounds", type=int, help="rounds per payload (default: small 3, medium 9, large 3)")
    parser.add_argument("--only", default="small,medium,large", help="payloads, comma-separated")
    parser.add_argument("--no-peers", dest="peers", action="store_false", help="measure fitserve and the floor only")
    parser.add_argument("--json", action="store_true", help="print the whole report as JSON")
    parser.add_argument(
        "--generator", choices=("auto", "wrk", "python"), default="auto",
        help="small-payload load generator (default: wrk when installed, else Python processes)",
    )  # fmt: skip
    parser.add_argument("--duration", type=float, default=5.0, help="seconds of each small load")
    parser.add_argument("--repeat", type=int, help="measure the small load this many times instead, and its spread")
    parser.add_argument("--pause", type=float, default=60.0, help="seconds between the runs of --repeat")
    parser.add_argument(
        "--floor-blas-threads", type=int,
        help="limit BLAS threads of the floor (default: this process's default, as a plain Python process has)",
    )  # fmt: skip
    parser.add_argument("--server-args", default="", help="flags for fitserve, as one string (default: none)")
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
    for name in ("rounds", "repeat"):
        if getattr(options, name) is not None and getattr(options, name) < 1:
            print(f"--{name} must be at least 1. Got {getattr(options, name)} instead.", file=sys.stderr)
            return 2
    if options.generator == "auto":
        options.generator = "wrk" if shutil.which("wrk") else "python"
    if options.floor_blas_threads is not None:
        from threadpoolctl import threadpool_limits

        threadpool_limits(limits=options.floor_blas_threads)
    if options.repeat:
        result = repeat(options)
        print(json.dumps(result, indent=2) if options.json else repeat_table(result))
        return 0
    report = run(options)
    print(json.dumps(report, indent=2) if options.json else table(report))
    failed = any(not t["pass"] for t in report["targets"])
    return 1 if options.strict and failed else 0


if __name__ == "__main__":
    sys.exit(main())
