"""Serve the app with waitress: settings tuned for robustness, in the foreground or a thread.

Waitress reads requests on one thread (an ``asyncore`` loop that never blocks) and
hands only complete requests to its worker threads, so a slow client costs a socket,
never a worker. On top of waitress (through the internals in ``service.channel``) it adds:

- a deadline for a whole request to arrive (``Timeouts.request``): waitress's own
  ``channel_timeout`` only drops connections that send nothing, not ones that trickle;
- bodies refused from ``Content-Length`` before they are read, and kept in memory;
- waitress's own errors as problem+json;
- a graceful stop (SIGTERM, SIGINT, ``BackgroundServer.stop()``): stop accepting,
  let the requests under way finish and their answers be sent, then close.
"""

from __future__ import annotations

import logging
import signal
import socket
import sys
import threading
from types import FrameType, TracebackType
from typing import Any

import waitress
import waitress.server

from service.app import create_app
from service.channel import Timeouts, adopt
from service.fitting import fit
from service.loop import ServerLoop
from service.parse.json import parse_json
from service.rendering import render_json
from service.settings import MIB, Settings, available_cpus
from service.tabular import design_request

log = logging.getLogger("fitserve")

#: Seconds a thread may hold the interpreter lock while another waits for it (Python's default: 0.005).
SWITCH_INTERVAL = 0.001


def waitress_options(
    settings: Settings, timeouts: Timeouts = Timeouts(), sockets: list[socket.socket] | None = None
) -> dict[str, Any]:
    """Waitress settings for ``settings``: bodies kept in memory, no version, no tracebacks.

    With ``sockets`` (bound and listening already), waitress serves those instead of
    binding ``host`` and ``port`` itself.
    """
    # LimitedParser enforces the limit exactly; waitress's own check, which counts chunk
    # framing too, is only a backstop well above it
    body_limit = settings.max_body_bytes
    where: dict[str, Any] = {"sockets": sockets} if sockets else {"host": settings.host, "port": settings.port}
    return {
        **where,
        "threads": settings.threads,
        "ident": "fitserve",
        "expose_tracebacks": False,
        "max_request_body_size": 8 * body_limit + MIB,
        "inbuf_overflow": body_limit + MIB,  # above any body taken: nothing is written to disk
        "outbuf_overflow": 2**40,  # the same for answers
        "max_request_header_size": 64 * 1024,
        "channel_timeout": max(1, round(timeouts.idle)),
        "cleanup_interval": max(1, min(10, round(timeouts.idle / 2))),
        "connection_limit": 256,
        "asyncore_use_poll": True,  # select() fails past 1024 file descriptors
        "recv_bytes": 256 * 1024,  # fewer, larger reads of big bodies (waitress reads 8 KiB by default)
        "clear_untrusted_proxy_headers": True,
        "log_untrusted_proxy_headers": False,
    }


def create_server(
    settings: Settings, timeouts: Timeouts = Timeouts(), sockets: list[socket.socket] | None = None, processes: int = 1
) -> waitress.server.BaseWSGIServer:
    """Create (bind, not yet run) a waitress server for the app, one of ``processes``."""
    limit_blas_threads(settings.threads * processes)
    app = create_app(settings)
    warm_up(settings)
    server = waitress.create_server(app, **waitress_options(settings, timeouts, sockets))
    adopt(server, timeouts, settings.max_body_bytes, shared=bool(sockets))
    return server


def limit_blas_threads(fits: int) -> None:
    """Give each fit that may run at once its share of the cores, so BLAS does not oversubscribe them."""
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=max(1, available_cpus() // fits))


WARM_UP = (
    b'{"X_train": [[1, 2], [2, 1], [3, 5]], "y_train": [1, 2, 3], "X_test": [[1, 1]]}',
    b'{"train": {"x": [1, 2, 3, 4], "g": ["a", "b", "a", "b"], "y": [1, 3, 2, 5]}, "formula": "y ~ x + g",'
    b' "test": {"x": [1], "g": ["b"]}}',
)


def warm_up(settings: Settings) -> None:
    """Fit once in each form before serving, so that the first request does not pay for what loads lazily."""
    for body in WARM_UP:
        render_json(fit(design_request(parse_json(body, "predict", settings.limits), settings.limits)))


def listening(server: waitress.server.BaseWSGIServer) -> list[tuple[str, int]]:
    """The (host, port) pairs a server listens on."""
    return (
        [(str(address[0]), int(address[1])) for address in server.effective_listen]
        if hasattr(server, "effective_listen")
        else [(str(server.effective_host), int(server.effective_port))]
    )


def serve(
    settings: Settings,
    timeouts: Timeouts = Timeouts(),
    sockets: list[socket.socket] | None = None,
    processes: int = 1,
) -> None:
    """Serve in the foreground until SIGTERM or SIGINT, then finish the requests under way.

    As one of several worker processes (``sockets`` given, see ``service.workers``), it
    stops on SIGTERM only, and the parent says where the service listens and when it stopped.
    """
    loop: list[ServerLoop] = []
    requested: list[int] = []

    def on_signal(signum: int, frame: FrameType | None) -> None:
        requested.append(signum)
        if loop:
            loop[0].stop(wake=False)

    # A worker's threads take turns on the interpreter lock: the loop thread, which reads
    # requests and sends answers, waits for a fitting thread to let go of it at most this long.
    # Python's 5 ms made every request wait behind the other thread's fit at each hand-over.
    sys.setswitchinterval(SWITCH_INTERVAL)
    worker = sockets is not None
    previous = install_handlers(on_signal, (signal.SIGTERM,) if worker else (signal.SIGTERM, signal.SIGINT))
    try:
        server = create_server(settings, timeouts, sockets, processes)
        loop.append(ServerLoop(server, timeouts))
        if not worker:
            for host, port in listening(server):
                log.info("fitserve serving on http://%s:%s", f"[{host}]" if ":" in host else host, port)
        if requested:
            loop[0].stop(wake=False)
        loop[0].run()
        if not worker:
            log.info("fitserve stopped")
    finally:
        restore_handlers(previous)


def install_handlers(handler: Any, signals: tuple[int, ...] = (signal.SIGTERM, signal.SIGINT)) -> dict[int, Any]:
    """Handle ``signals`` (from the main thread only); return the handlers replaced."""
    if threading.current_thread() is not threading.main_thread():
        return {}
    return {signum: signal.signal(signum, handler) for signum in signals}


def restore_handlers(previous: dict[int, Any]) -> None:
    """Put back the signal handlers ``install_handlers`` replaced."""
    for signum, handler in previous.items():
        signal.signal(signum, handler)


class BackgroundServer:
    """A server running in a thread of this process; ``stop()`` it, or use it in a ``with``."""

    def __init__(self, settings: Settings, timeouts: Timeouts = Timeouts()) -> None:
        self.settings = settings
        self.timeouts = timeouts
        self.server = create_server(settings, timeouts)
        self.loop = ServerLoop(self.server, timeouts)
        host, port = listening(self.server)[0]
        self.url = f"http://{f'[{host}]' if ':' in host else host}:{port}"
        self.thread = threading.Thread(target=self.loop.run, name="fitserve", daemon=True)
        self.thread.start()

    def stop(self) -> None:
        """Stop serving: finish the requests under way, close every connection, end the thread."""
        if self.thread.is_alive():
            self.loop.stop()
        self.thread.join(timeout=self.timeouts.drain + 10)

    def __enter__(self) -> BackgroundServer:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"<fitserve at {self.url}>"


def serve_in_background(port: int = 0, **settings: Any) -> BackgroundServer:
    """Start serving from a thread; ``port=0`` takes a free port (see ``.url``).

    Other keyword arguments are ``Settings`` fields (``token``, ``max_body_mb``, ...),
    but ``workers``: this server runs in threads of the calling process.
    """
    if settings.get("workers") not in (None, 1):
        raise ValueError("serve_in_background serves from threads of this process; 'workers' is for the fitserve command.")
    return BackgroundServer(Settings.from_env({}, port=port, **settings))
