"""Serve the app with waitress: settings tuned for robustness, in the foreground or a thread.

Waitress reads requests on one thread (an ``asyncore`` loop that never blocks) and
hands only complete requests to its worker threads, so a slow client costs a socket,
never a worker. On top of waitress this module adds:

- a deadline for a whole request to arrive (``Timeouts.request``): waitress's own
  ``channel_timeout`` only drops connections that send nothing, not ones that trickle;
- bodies refused from ``Content-Length`` before they are read, and kept in memory;
- waitress's own errors as problem+json;
- a graceful stop (SIGTERM, SIGINT, ``BackgroundServer.stop()``): stop accepting,
  let the requests under way finish and their answers be sent, then close.
"""

from __future__ import annotations

import logging
import select
import signal
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from types import FrameType, TracebackType
from typing import Any

import waitress
import waitress.channel
import waitress.parser
import waitress.server
import waitress.task
import waitress.utilities
import waitress.wasyncore

from service.app import create_app
from service.errors import PROBLEM_JSON, render_problem
from service.fitting import fit
from service.observability import log_rejected, request_id
from service.parsing import parse_json
from service.rendering import render_json
from service.resources import too_large_detail
from service.settings import MIB, Settings, available_cpus

log = logging.getLogger("fitserve")


@dataclass(frozen=True)
class Timeouts:
    """How long, in seconds, the server waits for clients, and for itself when stopping.

    A request must arrive whole within ``request`` seconds, plus one second for every
    ``min_rate`` bytes of it received: a large body sent at a fair pace has the time it
    needs, while a client trickling bytes (never idle, never done) is dropped.
    """

    idle: float = 30.0  # a connection that sends nothing, between or inside requests
    request: float = 60.0
    min_rate: float = 8192.0  # bytes per second
    drain: float = 20.0  # on stop, the requests under way get this long to finish


class ProblemErrorTask(waitress.task.ErrorTask):  # type: ignore[misc]
    """Waitress's own errors (malformed HTTP, oversize body) as problem+json, not plain text."""

    def execute(self) -> None:
        """Write the error answer."""
        error = self.request.error
        identity = request_id(getattr(self.request, "headers", {}).get("X_REQUEST_ID"))
        body = render_problem(error.code, waitress_detail(error.code, str(error.body), self.request), request_id=identity)
        self.status = f"{error.code} {error.reason}"
        self.response_headers.append(("Content-Type", PROBLEM_JSON))
        self.response_headers.append(("X-Request-ID", identity))
        self.set_close_on_finish()
        self.content_length = len(body)
        self.write(body)
        request = self.request
        log_rejected(
            identity, getattr(request, "command", None), getattr(request, "path", None), error.code, len(body),
            request.content_length,
        )  # fmt: skip


def waitress_detail(code: int, reason: str, request: Any = None) -> str:
    """A full sentence for an error waitress found before the app saw the request."""
    if code == 413:
        limit = getattr(request, "body_limit", None)
        if limit is None:
            return "The body is larger than this server takes (setting max_body_mb, FITSERVE_MAX_BODY_MB)."
        length = 0 if request.chunked else int(request.content_length or 0)
        return too_large_detail(length if length > limit else None, limit)
    if code == 431:
        return "The request headers are too large."
    return f"The HTTP request is malformed: {reason[:80]}."


class LimitedParser(waitress.parser.HTTPRequestParser):  # type: ignore[misc]
    """A request parser that refuses a body over ``body_limit`` bytes, as soon as it can tell.

    A declared ``Content-Length`` is refused from the headers alone, before the body is
    read; a chunked body once its data (not its chunk framing) passes the limit.
    """

    body_limit: int = 0
    error: Any = None  # waitress's error for this request, if any

    def received(self, data: bytes) -> int:
        """Take bytes of the request; refuse it once its body is known to be too large."""
        consumed = int(super().received(data))
        if self.headers_finished and not self.error:
            size = len(self.body_rcv) if self.chunked and self.body_rcv is not None else self.content_length
            if size > self.body_limit:
                self.error = waitress.utilities.RequestEntityTooLarge(f"exceeds {self.body_limit} bytes")
                self.completed = True
        if self.error:
            # else waitress answers "100 Continue" to a refused request, and waits for its body
            self.expect_continue = False
        return consumed


class OneWriteTask(waitress.task.WSGITask):  # type: ignore[misc]
    """A WSGI task that sends an answer of known length, headers and body, in one write.

    Waitress writes the headers and the body separately, and flushes each at once: two
    sends, each releasing the GIL to another thread. The bytes on the wire are the same.
    """

    wrote_header: bool
    content_bytes_written: int

    def write(self, data: bytes) -> None:
        """Write the answer; the headers go with the first chunk when it is the whole body."""
        if (
            not self.wrote_header
            and self.complete
            and data
            and self.has_body
            and not self.chunked_response
            and self.content_length == len(data)
        ):
            # With a Content-Length, build_response_header() never turns to chunked encoding.
            header = self.build_response_header()
            self.wrote_header = True
            self.content_bytes_written += len(data)
            self.channel.write_soon(header + data)
            return
        super().write(data)


class ProblemChannel(waitress.channel.HTTPChannel):  # type: ignore[misc]
    """An HTTP channel whose errors are problem+json, and whose requests must arrive in time.

    The deadline (see ``Timeouts``) runs from a request's first byte, so a client
    trickling a byte a second is dropped too, not only one that goes silent.
    """

    error_task_class = ProblemErrorTask
    task_class = OneWriteTask
    parser_class = LimitedParser
    timeouts = Timeouts()
    arriving: object = None  # the parser of the request under way
    deadline = 0.0  # when it must have arrived (time.monotonic())

    @classmethod
    def configured(cls, timeouts: Timeouts, body_limit: int) -> type[ProblemChannel]:
        """A channel class with these timeouts, refusing bodies over ``body_limit`` bytes."""
        parser = type("LimitedParser", (LimitedParser,), {"body_limit": body_limit})
        return type("ProblemChannel", (cls,), {"timeouts": timeouts, "parser_class": parser})

    def received(self, data: bytes) -> bool:
        """Take bytes, and move the deadline of the request under way."""
        result = bool(super().received(data))
        if self.request is not None:
            if self.request is not self.arriving:
                self.arriving = self.request
                self.deadline = time.monotonic() + self.timeouts.request
            self.deadline += len(data) / self.timeouts.min_rate
        return result

    def readable(self) -> bool:
        """Drop a request still arriving past its deadline; else as waitress decides."""
        if self.request is not None and self.request is self.arriving and time.monotonic() > self.deadline:
            self.will_close = True  # the loop closes it at once (writable() is now true)
            return False
        return bool(super().readable())


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
    channel_class = ProblemChannel.configured(timeouts, settings.max_body_bytes)
    for each in listeners(server):
        each.channel_class = channel_class
        if sockets and type(each) is waitress.server.TcpWSGIServer:
            each.__class__ = SharedListener
    return server


class SharedListener(waitress.server.TcpWSGIServer):  # type: ignore[misc]
    """A listening socket shared with other worker processes: take a connection only with a thread free.

    Every worker is woken by a new connection and the quickest takes it; without this, a
    worker with all its threads fitting could take it too, and make it wait while another
    worker idles. Connections left waiting go to the first worker with a thread free.
    """

    def readable(self) -> bool:
        """Whether to accept now: as waitress decides, and only with a thread free."""
        accepting = bool(super().readable())
        tasks = self.task_dispatcher
        return accepting and not tasks.queue and tasks.active_count < len(tasks.threads)


def listeners(server: Any) -> list[waitress.server.BaseWSGIServer]:
    """The listening servers of what ``waitress.create_server`` returned (one, or several)."""
    mapping = getattr(server, "map", None)
    if mapping is None:
        return [server]
    return [each for each in mapping.values() if isinstance(each, waitress.server.BaseWSGIServer)]


def limit_blas_threads(fits: int) -> None:
    """Give each fit that may run at once its share of the cores, so BLAS does not oversubscribe them."""
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=max(1, available_cpus() // fits))


def warm_up(settings: Settings) -> None:
    """Fit once before serving, so that the first request does not pay for what loads lazily."""
    body = b'{"X_train": [[1, 2], [2, 1], [3, 5]], "y_train": [1, 2, 3], "X_test": [[1, 1]]}'
    render_json(fit(parse_json(body, "predict", settings.limits)))


def listening(server: waitress.server.BaseWSGIServer) -> list[tuple[str, int]]:
    """The (host, port) pairs a server listens on."""
    return (
        [(str(address[0]), int(address[1])) for address in server.effective_listen]
        if hasattr(server, "effective_listen")
        else [(str(server.effective_host), int(server.effective_port))]
    )


class ServerLoop:
    """Run a waitress server until ``stop()``, then drain it: the requests under way finish.

    ``stop()`` may be called from any thread and from a signal handler (it only sets
    flags; the loop notices within waitress's one-second poll timeout, or at once
    when ``wake`` is true). A second ``stop()`` gives up waiting for the requests.
    """

    def __init__(self, server: Any, timeouts: Timeouts) -> None:
        self.server = server
        self.timeouts = timeouts
        self.stopping = False
        self.hurry = False
        mapping = getattr(server, "map", None)
        self.map: dict[int, Any] = mapping if mapping is not None else server._map

    def stop(self, wake: bool = True) -> None:
        """Ask the loop to stop; ``wake=False`` from a signal handler (no locks taken)."""
        self.hurry = self.stopping
        self.stopping = True
        if wake:
            for each in listeners(self.server):
                try:
                    each.pull_trigger()
                except OSError:  # the loop has already closed its trigger
                    pass

    def run(self) -> None:
        """Serve until stopped, then finish the requests under way and close everything."""
        timeout = self.server.adj.asyncore_loop_timeout
        while not self.stopping:
            waitress.wasyncore.loop(timeout=timeout, map=self.map, use_poll=True, count=1)
        try:
            self.drain()
        finally:
            self.server.task_dispatcher.shutdown(timeout=1)
            waitress.wasyncore.close_all(self.map)

    def drain(self) -> None:
        """Stop accepting; wait for the requests under way and for their answers to be sent.

        Connections the kernel accepted before the stop are taken and served; a
        connection is closed once it has nothing under way and nothing waiting to be read.
        """
        for each in listeners(self.server):
            accept_waiting(each)
            # The listening socket only: its trigger stays open for the workers still finishing.
            waitress.wasyncore.dispatcher.close(each)
        deadline = time.monotonic() + self.timeouts.drain
        while not self.hurry:
            busy = 0
            for channel in list(self.channels()):
                if channel.requests or channel.request is not None or channel.total_outbufs_len:
                    busy += 1
                elif has_bytes_waiting(channel.socket):
                    busy += 1  # the loop reads them next
                else:
                    channel.handle_close()  # idle between requests: nothing is lost
            if not busy:
                return
            if time.monotonic() >= deadline:
                log.warning("fitserve stopped with %d connections still busy", busy)
                return
            waitress.wasyncore.loop(timeout=0.05, map=self.map, use_poll=True, count=1)

    def channels(self) -> Iterator[waitress.channel.HTTPChannel]:
        """The open client connections."""
        for each in list(self.map.values()):
            if isinstance(each, waitress.channel.HTTPChannel):
                yield each


def accept_waiting(listener: waitress.server.BaseWSGIServer) -> None:
    """Take every connection waiting in a listening socket's backlog."""
    for _ in range(listener.adj.backlog):
        ready, _, _ = select.select([listener.socket], [], [], 0)
        if not ready:
            return
        listener.handle_accept()


def has_bytes_waiting(connection: socket.socket) -> bool:
    """Whether a client has sent bytes not read yet (False at end of stream or on error)."""
    try:
        return bool(connection.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT))
    except OSError:  # BlockingIOError when nothing waits; any other error ends the connection
        return False


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
