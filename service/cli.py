"""The ``fitserve`` command: flags and ``FITSERVE_*`` variables into ``Settings``, then serve."""

from __future__ import annotations

import argparse
import ctypes
import errno
import logging
import os
import socket
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace

from service import __version__
from service.logs import configure_logging
from service.settings import LOG_FORMATS, Settings, SettingsError

log = logging.getLogger("fitserve")


def build_parser() -> argparse.ArgumentParser:
    """The command-line flags; each has a ``FITSERVE_*`` variable, and flags win."""
    parser = argparse.ArgumentParser(
        prog="fitserve",
        description="Fit a fresh scikit-learn LinearRegression per HTTP request, and predict.",
        epilog="Each flag has an environment variable (FITSERVE_HOST, FITSERVE_PORT, ...); flags win.",
    )
    parser.add_argument("--host", help="address to bind (default 127.0.0.1, loopback only)")
    parser.add_argument("--port", type=int, help="port (default 8000; 0 takes a free one)")
    parser.add_argument("--threads", type=int, help="requests served at once, shared among the workers (default 4)")
    parser.add_argument(
        "--workers", type=int,
        help="server processes sharing the port (default: one per CPU core, at most --threads)",
    )  # fmt: skip
    parser.add_argument("--max-body-mb", type=float, help="largest body taken, in MiB (default 100)")
    parser.add_argument("--token", help="require 'Authorization: Bearer TOKEN' (default: no auth)")
    parser.add_argument(
        "--cors-origin", action="append", dest="cors_origins", metavar="ORIGIN",
        help="allow CORS from this origin (repeatable; default: no CORS headers)",
    )  # fmt: skip
    parser.add_argument("--max-features", type=int, help="most features (and targets) in a fit (default 2000)")
    parser.add_argument("--max-cells", type=int, help="most values in X_train (default 25000000)")
    parser.add_argument("--max-prediction-rows", type=int, help="most rows in X_test (default 1000000)")
    parser.add_argument(
        "--max-statistics-terms", type=int,
        help="most coefficient statistics (targets x terms) when statistics or intervals are asked (default 100000)",
    )  # fmt: skip
    parser.add_argument("--max-formula-length", type=int, help="most characters in a formula (default 10000)")
    parser.add_argument("--max-groups", type=int, help="most groups (fits) in a request with 'by' (default 100000)")
    parser.add_argument(
        "--log-format", choices=LOG_FORMATS, type=str.lower,
        help="log lines as text, or one JSON object per line (default text)",
    )  # fmt: skip
    parser.add_argument(
        "--worker-timeout", type=float, metavar="SECONDS",
        help="replace a worker process whose request has run this long; its client gets a 503 (default 300)",
    )  # fmt: skip
    parser.add_argument("--version", action="version", version=f"fitserve {__version__}")
    return parser


def default_serve(settings: Settings) -> None:
    """Serve with waitress: in this process, or in worker processes it starts.

    Malloc is set up first; the server modules (numpy, the app) are imported only where
    they serve, after it, and never in a parent that forks workers.
    """
    tune_malloc()
    workers = settings.worker_count
    if workers > 1 and hasattr(os, "fork"):
        serve_with_workers(settings, workers)
        return
    from service.server import serve

    serve(settings)


def serve_with_workers(settings: Settings, workers: int) -> None:
    """Bind, start ``workers`` server processes on the sockets, and supervise them until stopped."""
    from service.workers import MetricsDirectory, Supervisor, bind, url

    sockets = bind(settings)
    for listener in sockets:
        log.info("fitserve serving on %s (%d workers)", url(listener), workers)

    share = replace(settings, threads=settings.threads_per_worker)

    def work(sockets: list[socket.socket]) -> int:
        from service.server import serve

        serve(share, sockets=sockets, processes=workers)
        return 0

    # Made (and named in the environment) before anything imports prometheus_client; see service.metrics.
    with MetricsDirectory() as metrics:
        status = Supervisor(sockets, workers, work, timeout=settings.worker_timeout, on_exit=metrics.mark_dead).run()
    log.info("fitserve stopped")
    if status:
        raise SystemExit(status)


def tune_malloc(arenas: int = 1, mmap_threshold: int = 32 * 2**20) -> None:
    """Set glibc's malloc up so that the memory of a large request goes back to the system.

    - One arena (glibc's default is one per thread): memory freed by one worker thread is
      reused by the next, instead of each thread keeping the blocks of its last request.
    - A fixed mmap threshold. By default glibc raises the threshold each time a large
      mapped block is freed (up to 32 MiB), and the trim threshold with it, to twice that:
      after one large request the heap keeps up to 64 MiB of freed memory at its top, and
      the next large request peaks that much higher. Fixed at the same 32 MiB, blocks
      under it still come from the heap (no page faults on reuse for medium requests),
      and the heap's free top goes back to the system.
    - A trim threshold of the same 32 MiB (fixing the mmap threshold leaves glibc's 128 KiB):
      with 128 KiB, every medium request gave its heap back at the end and faulted it in
      again at the next, zeroed page by page (medium requests over HTTP measured 0.84 to
      0.99 of the in-process floor with it, 1.02 to 1.08 without). Blocks over 32 MiB are
      mapped and unmapped on their own, so a large request's memory still goes back.

    Called before numpy and BLAS start threads of their own; elsewhere than glibc it does nothing.
    """
    try:
        libc = ctypes.CDLL(None)
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return
    M_TRIM_THRESHOLD, M_MMAP_THRESHOLD, M_ARENA_MAX = -1, -3, -8
    mallopt(ctypes.c_int(M_ARENA_MAX), ctypes.c_int(arenas))
    mallopt(ctypes.c_int(M_MMAP_THRESHOLD), ctypes.c_int(mmap_threshold))
    mallopt(ctypes.c_int(M_TRIM_THRESHOLD), ctypes.c_int(mmap_threshold))


def main(
    argv: Sequence[str] | None = None,
    serve: Callable[[Settings], None] = default_serve,
    environ: Mapping[str, str] | None = None,
) -> int:
    """Run the command; return its exit status."""
    arguments = build_parser().parse_args(argv)
    overrides = vars(arguments)
    if overrides["cors_origins"] is not None:
        overrides["cors_origins"] = tuple(overrides["cors_origins"])
    try:
        settings = Settings.from_env(os.environ if environ is None else environ, **overrides)
    except SettingsError as exc:
        print(f"fitserve: {exc}", file=sys.stderr)
        return 2
    configure_logging(settings.log_format)
    # waitress warns at each request that waits for a thread: under load, a line per request
    logging.getLogger("waitress.queue").setLevel(logging.ERROR)
    try:
        serve(settings)
    except OSError as exc:
        if exc.errno not in (errno.EADDRINUSE, errno.EADDRNOTAVAIL, errno.EACCES):
            raise
        print(f"fitserve: cannot listen on {settings.host} port {settings.port}: {exc.strerror}.", file=sys.stderr)
        return 1
    return 0
