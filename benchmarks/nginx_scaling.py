"""Throughput through nginx with 1, 2 and 3 fitserve instances, and what the CPUs spend it on.

    .venv/bin/python -m benchmarks.nginx_scaling [--seconds 10] [--rounds 3] [--kill-one]

Runs from the top folder of a checkout, with Debian's nginx and (if installed) wrk. nginx is
configured from ``deploy/nginx/fitserve.conf`` (see ``tests/system/cluster.py``), each instance is
``python -m service --workers 1`` on a loopback port, and the load is the README's small
payload (50 x 3 + 10, ``POST /predict``) from 8 keep-alive connections: wrk when installed,
else 8 Python processes. For comparison, the same load goes straight to one instance and to
one default ``fitserve`` (a worker per core). Rounds are interleaved (1, 2, 3, 1, 2, 3, ...)
so that a slow moment of a shared machine does not land on one setup only; the table has
the median and the range of the rounds, and the CPU time each party used per second of the
run (2.00 = both cores of a 2-core machine).

``--kill-one`` instead sends checked fits through nginx from 6 threads and SIGKILLs one of
three instances on the way, as tests/system/test_nginx.py does, and prints what the clients saw.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))  # benchmarks/benchmark.py imports its neighbours by their names

from loads import python_throughput, wrk_throughput  # noqa: E402
from payloads import PAYLOADS, make_body  # noqa: E402
from processes import server_processes  # noqa: E402
from servers import Server  # noqa: E402

from tests.system.cluster import Cluster, nginx_binary, send_load  # noqa: E402


def cpu_seconds(pids: Sequence[int]) -> float:
    """User and system CPU seconds these processes have used so far."""
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def children_cpu() -> float:
    """CPU seconds of this process's children that have been waited for (the load generator)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def measure(port: int, servers: Sequence[int], proxy: Sequence[int], options: argparse.Namespace, work: Path) -> dict[str, float]:
    """One run of the load against ``port``: requests per second, and each party's CPU per second."""
    body = make_body(PAYLOADS["small"])
    body_path = work / "small.json"
    body_path.write_bytes(body)
    server_pids = [pid for parent in servers for pid in server_processes(parent)]
    proxy_pids = [pid for parent in proxy for pid in server_processes(parent)]
    before = (cpu_seconds(server_pids), cpu_seconds(proxy_pids), children_cpu(), time.monotonic())
    if options.generator == "wrk":
        result = wrk_throughput(port, body_path, options.seconds, work)
    else:
        result = python_throughput(port, body, options.seconds)
    after = (cpu_seconds(server_pids), cpu_seconds(proxy_pids), children_cpu(), time.monotonic())
    elapsed = after[3] - before[3]
    return {
        "rate": result["rate"],
        "errors": result["errors"],
        "fitserve": (after[0] - before[0]) / elapsed,
        "nginx": (after[1] - before[1]) / elapsed,
        "client": (after[2] - before[2]) / elapsed,
    }


def run_setup(name: str, options: argparse.Namespace, work: Path) -> dict[str, float]:
    """Start one setup, warm it up, measure it once, stop it."""
    folder = Path(tempfile.mkdtemp(dir=work))
    if name.startswith("direct"):
        server = Server(folder, ["--workers", "1"] if name == "direct, 1 instance" else [])
        try:
            measure(server.port, [server.pid], [], options, folder)  # warm-up
            return measure(server.port, [server.pid], [], options, folder)
        finally:
            server.stop()
    instances = int(name.split()[1])
    with Cluster(folder, instances=instances, nginx_workers=options.nginx_workers) as cluster:
        pids = [i.process.pid for i in cluster.instances]
        assert cluster.nginx is not None
        measure(cluster.port, pids, [cluster.nginx.pid], options, folder)  # warm-up
        return measure(cluster.port, pids, [cluster.nginx.pid], options, folder)


def scaling(options: argparse.Namespace) -> int:
    """Measure every setup ``rounds`` times, interleaved, and print the table."""
    setups = ["direct, 1 instance", "direct, fitserve default", *(f"nginx, {n} instance{'s' * (n > 1)}" for n in (1, 2, 3))]
    results: dict[str, list[dict[str, float]]] = {name: [] for name in setups}
    load_before = os.getloadavg()[1]
    with tempfile.TemporaryDirectory(prefix="fitserve-nginx-") as work:
        for round_number in range(options.rounds):
            for name in setups:
                result = run_setup(name, options, Path(work))
                results[name].append(result)
                print(f"round {round_number + 1} {name}: {result['rate']:,.0f} req/s, {result['errors']:.0f} errors", file=sys.stderr)
    print(f"\nsmall payload, POST /predict, 8 connections ({options.generator}), {options.seconds:g} s x {options.rounds} rounds, "
          f"{os.cpu_count()} CPUs, nginx worker_processes {options.nginx_workers}; "
          f"5-minute load average {load_before:.1f} before, {os.getloadavg()[1]:.1f} after\n")
    print("| setup | req/s (median) | rounds | errors | CPU used, cores: fitserve | nginx | load generator "
          "| requests per fitserve CPU second |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for name in setups:
        rounds = results[name]
        rates = [r["rate"] for r in rounds]

        def median(key: str, rounds: list[dict[str, float]] = rounds) -> float:
            return statistics.median(r[key] for r in rounds)

        print(f"| {name} | {statistics.median(rates):,.0f} | {min(rates):,.0f} - {max(rates):,.0f} | "
              f"{sum(r['errors'] for r in rounds):.0f} | {median('fitserve'):.2f} | {median('nginx'):.2f} | {median('client'):.2f} "
              f"| {statistics.median(r['rate'] / r['fitserve'] for r in rounds):,.0f} |")
    return 0


def kill_one(options: argparse.Namespace) -> int:
    """Checked fits through nginx in front of three instances; SIGKILL one on the way; print what the clients saw."""
    clients, per_client = 6, options.requests // 6
    with tempfile.TemporaryDirectory(prefix="fitserve-nginx-") as work, Cluster(Path(work), instances=3) as cluster:
        victim = cluster.instances[1]
        started = time.monotonic()
        load = send_load(cluster.url, clients, per_client, midway=victim.kill, at=clients * per_client // 3)
        elapsed = time.monotonic() - started
        lines = cluster.access_log.read_text().splitlines()
        retried = sum(1 for line in lines if ", " in line.split(" upstream=", 1)[1].split(" upstream_status=")[0])
    print(f"kill one of 3 instances under load: {load.sent} requests sent, {load.answered} answered correctly, "
          f"{load.failed} failed, {load.wrong} wrong, {retried} sent again to another instance by nginx; {elapsed:.1f} s")
    for problem in load.problems:
        print("  ", problem)
    return 1 if load.failed or load.wrong or load.sent != clients * per_client else 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark; return the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="length of each measurement (default 10)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of every setup, interleaved (default 3)")
    parser.add_argument("--generator", choices=("auto", "wrk", "python"), default="auto",
                        help="load generator (default: wrk when installed, else Python processes)")  # fmt: skip
    parser.add_argument("--nginx-workers", default="1", help="nginx's worker_processes (default 1)")
    parser.add_argument("--kill-one", action="store_true", help="the kill-one-instance run instead of the table")
    parser.add_argument("--requests", type=int, default=3000, help="requests of the --kill-one run (default 3000)")
    options = parser.parse_args(argv)
    if nginx_binary() is None:
        print("nginx_scaling: nginx is not installed (apt-get install nginx)", file=sys.stderr)
        return 1
    if options.generator == "auto":
        options.generator = "wrk" if shutil.which("wrk") else "python"
    return kill_one(options) if options.kill_one else scaling(options)


if __name__ == "__main__":
    sys.exit(main())
