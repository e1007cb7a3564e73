"""Serve the app with waitress: settings tuned for robustness, in the foreground or a thread."""

from __future__ import annotations

import logging
import os
import threading
from types import TracebackType
from typing import Any

import waitress
import waitress.channel
import waitress.server
import waitress.task

from service.app import create_app
from service.errors import PROBLEM_JSON, render_problem
from service.settings import MIB, Settings

log = logging.getLogger("fitserve")


class ProblemErrorTask(waitress.task.ErrorTask):  # type: ignore[misc]
    """Waitress's own errors (malformed HTTP, oversize body) as problem+json, not plain text."""

    def execute(self) -> None:
        """Write the error answer."""
        error = self.request.error
        body = render_problem(error.code, waitress_detail(error.code, str(error.body)))
        self.status = f"{error.code} {error.reason}"
        self.response_headers.append(("Content-Type", PROBLEM_JSON))
        self.set_close_on_finish()
        self.content_length = len(body)
        self.write(body)


def waitress_detail(code: int, reason: str) -> str:
    """A full sentence for an error waitress found before the app saw the request."""
    if code == 413:
        return "The body is larger than this server takes (setting max_body_mb, FITSERVE_MAX_BODY_MB)."
    if code == 431:
        return "The request headers are too large."
    return f"The HTTP request is malformed: {reason[:80]}."


class ProblemChannel(waitress.channel.HTTPChannel):  # type: ignore[misc]
    """An HTTP channel whose error answers are problem+json."""

    error_task_class = ProblemErrorTask


def waitress_options(settings: Settings) -> dict[str, Any]:
    """Waitress settings for ``settings``: bodies kept in memory, no version, no tracebacks."""
    body_limit = settings.max_body_bytes + MIB  # above the app's, so the app answers 413 itself
    return {
        "host": settings.host,
        "port": settings.port,
        "threads": settings.threads,
        "ident": "fitserve",
        "expose_tracebacks": False,
        "max_request_body_size": body_limit,
        "inbuf_overflow": body_limit,  # keep bodies in memory: nothing is written to disk
        "outbuf_overflow": 2**40,  # the same for answers
        "max_request_header_size": 64 * 1024,
        "channel_timeout": 30,
        "connection_limit": 256,
        "cleanup_interval": 10,
        "clear_untrusted_proxy_headers": True,
        "log_untrusted_proxy_headers": False,
    }


def create_server(settings: Settings) -> waitress.server.BaseWSGIServer:
    """Create (bind, not yet run) a waitress server for the app."""
    limit_blas_threads(settings.threads)
    server = waitress.create_server(create_app(settings), **waitress_options(settings))
    servers = getattr(server, "map", None)
    for each in servers.values() if servers is not None else [server]:
        if isinstance(each, waitress.server.BaseWSGIServer):
            each.channel_class = ProblemChannel
    return server


def limit_blas_threads(threads: int) -> None:
    """Give each of waitress's threads its share of the cores, so BLAS does not oversubscribe them."""
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=max(1, (os.cpu_count() or 1) // threads))


def serve(settings: Settings) -> None:
    """Serve in the foreground until interrupted."""
    server = create_server(settings)
    for host, port in listening(server):
        log.info("fitserve serving on http://%s:%s", f"[{host}]" if ":" in host else host, port)
    server.run()


def listening(server: waitress.server.BaseWSGIServer) -> list[tuple[str, int]]:
    """The (host, port) pairs a server listens on."""
    return [(str(address[0]), int(address[1])) for address in server.effective_listen] if hasattr(
        server, "effective_listen"
    ) else [(str(server.effective_host), int(server.effective_port))]


class BackgroundServer:
    """A server running in a thread of this process; ``stop()`` it, or use it in a ``with``."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.server = create_server(settings)
        host, port = listening(self.server)[0]
        self.url = f"http://{f'[{host}]' if ':' in host else host}:{port}"
        self.thread = threading.Thread(target=self.server.run, name="fitserve", daemon=True)
        self.thread.start()

    def stop(self) -> None:
        """Stop serving and close every connection; waits for the thread to end."""
        server = self.server
        mapping = getattr(server, "_map", None) or getattr(server, "map", {})
        while mapping:
            for channel in list(mapping.values()):
                channel.handle_close()
        server.task_dispatcher.shutdown()
        self.thread.join(timeout=10)

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

    Other keyword arguments are ``Settings`` fields (``token``, ``max_body_mb``, ...).
    """
    return BackgroundServer(Settings.from_env({}, port=port, **settings))
