"""Every waitress internal fitserve relies on, in one place, each named with why.

waitress has no public hooks for what the service needs, so this module subclasses and
reads these internals (``tests/test_channel.py`` checks each one, and fails naming it if a
waitress release changes it):

- ``HTTPChannel.error_task_class``, ``.task_class``, ``.parser_class`` (class attributes that
  pick the classes a connection uses): to swap in the three subclasses below.
- ``HTTPChannel.received`` and ``.readable``, ``.request``, ``.requests``, ``.will_close``,
  ``.total_outbufs_len``: the request deadline (a trickling client is dropped), and the drain on
  stop (a connection is idle when it has no request under way and nothing left to send).
- ``HTTPRequestParser.received``, ``.headers_finished``, ``.error``, ``.completed``,
  ``.chunked``, ``.body_rcv``, ``.content_length``, ``.expect_continue``: refusing an oversize
  body from its headers, before it is read (waitress checks only after reading it).
- ``ChunkedReceiver.chunk_remainder``: a chunk declared larger than the body limit is refused
  when its size line arrives, not after the client has sent (or failed to send) it.
- ``ErrorTask.execute``, ``.request.error``: waitress's own errors as problem+json.
- ``WSGITask.write``, ``.wrote_header``, ``.complete``, ``.has_body``, ``.chunked_response``,
  ``.content_length``, ``.content_bytes_written``, ``.build_response_header()``,
  ``.channel.write_soon``: an answer of known length leaves in one write (headers and body
  together), not two that each hand the GIL to another thread.
- ``service.balancing`` reads the few internals that spread connections over worker processes.
- ``BaseWSGIServer.channel_class``, ``.map`` (several listeners) or ``._map`` (one): to
  adopt every listener; ``service.loop`` reads those that run the loop and drain it on stop.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

import waitress.channel
import waitress.parser
import waitress.server
import waitress.task
import waitress.utilities
import waitress.wasyncore

from service.balancing import SharedListener
from service.body import too_large_detail
from service.errors import PROBLEM_JSON, render_problem
from service.observability import log_rejected, request_id

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
        detail = waitress_detail(error.code, str(error.body), self.request)
        body = render_problem(error.code, detail, request_id=identity)
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
    read; a chunked body once its data (not its chunk framing), with what the chunk under way
    declares, passes the limit: a chunk declared as 2**96 bytes is refused at its size line.
    """

    body_limit: int = 0
    error: Any = None  # waitress's error for this request, if any

    def received(self, data: bytes) -> int:
        """Take bytes of the request; refuse it once its body is known to be too large."""
        consumed = int(super().received(data))
        if self.headers_finished and not self.error:
            if self.chunked and self.body_rcv is not None:
                # What arrived, and what the chunk under way declares is still to come.
                size = len(self.body_rcv) + self.body_rcv.chunk_remainder
            else:
                size = self.content_length
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


def adopt(server: Any, timeouts: Timeouts, body_limit: int, shared: bool) -> None:
    """Make a server's connections use the classes above; share its listening sockets if ``shared``."""
    channel_class = ProblemChannel.configured(timeouts, body_limit)
    for each in listeners(server):
        each.channel_class = channel_class
        if shared and type(each) is waitress.server.TcpWSGIServer:
            each.__class__ = SharedListener


def listeners(server: Any) -> list[waitress.server.BaseWSGIServer]:
    """The listening servers of what ``waitress.create_server`` returned (one, or several)."""
    mapping = getattr(server, "map", None)
    if mapping is None:
        return [server]
    return [each for each in mapping.values() if isinstance(each, waitress.server.BaseWSGIServer)]
