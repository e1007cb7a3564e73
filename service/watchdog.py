"""A watchdog for hung workers: a request past ``worker_timeout`` gets a 503, its worker is replaced.

A fit that never ends (a library stuck in a loop, a machine swapping) would keep its
client waiting for ever and its thread taken. As gunicorn's ``timeout`` does, the
service replaces such a worker process, in two layers:

1. **Inside the worker**, a thread (``Watchdog``) looks every second at the requests
   under way (``UNDER_WAY``, filled by ``service.observability``). When one has run past
   the limit, it writes a 503 problem+json (with ``Connection: close``) on that request's
   connection, waits for it to be sent, logs the request, and ends the process at once
   (``os._exit``): there is no way to stop a thread that is stuck. Other requests the
   worker had under way end with a closed connection, as under gunicorn; their clients
   may send them again (every fit is safe to repeat).
2. **In the parent** (``service.workers.Supervisor``), for a worker stuck so hard that
   its own thread cannot run (holding the GIL in C code, stopped): each worker publishes
   in shared memory (``Beats``, an anonymous mapping made before forking: nothing on disk)
   when its oldest request under way started. Past the limit plus a grace period the
   parent kills it with SIGKILL; its clients see the connection closed, since only that
   worker could answer on it. The parent then starts another worker, as for any death.

The connection of a request is waitress's channel, which waitress puts in every request's
environ as the owner of ``environ["waitress.client_disconnected"]``; ``channel.write_soon``
is how waitress's own task threads send answers.
"""

from __future__ import annotations

import logging
import mmap
import os
import struct
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from service.errors import PROBLEM_JSON, render_problem

log = logging.getLogger("fitserve")

#: The exit status of a worker that the watchdog ended.
EXIT_STUCK = 3
#: How long the worker waits for its 503 to be sent before it ends anyway.
SEND_WAIT = 5.0


@dataclass(eq=False)
class Request:
    """One request under way, as the watchdog needs it: who, since when, and its connection."""

    request_id: str
    method: str
    path: str
    environ: dict[str, Any] = field(repr=False)
    started: float = field(default_factory=time.monotonic)
    finish: Callable[[int, int], None] | None = field(default=None, repr=False)  # log and count (status, bytes)
    recorded: bool = False


class Beats:
    """Per worker slot, the ``time.monotonic()`` at which its oldest request under way started (0: none).

    Shared memory between the parent and the workers it forks (an anonymous shared mapping).
    """

    def __init__(self, slots: int) -> None:
        self.memory = mmap.mmap(-1, 8 * max(1, slots))

    def set(self, slot: int, started: float) -> None:
        """Publish a worker's oldest start."""
        struct.pack_into("d", self.memory, 8 * slot, started)

    def get(self, slot: int) -> float:
        """Read a worker's oldest start."""
        value: float = struct.unpack_from("d", self.memory, 8 * slot)[0]
        return value


class UnderWay:
    """The requests this process is serving now (thread-safe)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.requests: dict[int, Request] = {}
        self.beats: Beats | None = None
        self.slot = 0

    def begin(self, request: Request) -> None:
        """Register a request that the app starts serving."""
        with self.lock:
            self.requests[id(request)] = request
            self.publish()

    def end(self, request: Request) -> bool:
        """Unregister a request the app has answered; False if the watchdog took it first."""
        with self.lock:
            found = self.requests.pop(id(request), None) is not None
            self.publish()
        return found

    def take_overdue(self, limit: float) -> list[Request]:
        """Unregister and return the requests that have run more than ``limit`` seconds."""
        now = time.monotonic()
        with self.lock:
            overdue = [request for request in self.requests.values() if now - request.started > limit]
            for request in overdue:
                del self.requests[id(request)]
            self.publish()
        return overdue

    def publish(self) -> None:
        """Write the oldest start to shared memory, for the parent (call with the lock held)."""
        if self.beats is not None:
            self.beats.set(self.slot, min((r.started for r in self.requests.values()), default=0.0))


#: The requests under way in this process.
UNDER_WAY = UnderWay()


def wait_for_exit() -> None:
    """Block the calling thread for good: the watchdog answered its request and ends the process."""
    threading.Event().wait()


class Watchdog(threading.Thread):
    """In a worker: answer 503 to any request past ``limit`` seconds, then end the process."""

    def __init__(self, limit: float, under_way: UnderWay = UNDER_WAY) -> None:
        super().__init__(name="fitserve-watchdog", daemon=True)
        self.limit = limit
        self.under_way = under_way
        self.interval = min(1.0, limit / 4)

    def run(self) -> None:
        """Look at the requests under way until one is overdue."""
        while True:
            time.sleep(self.interval)
            overdue = self.under_way.take_overdue(self.limit)
            if overdue:
                self.replace_worker(overdue)

    def replace_worker(self, overdue: list[Request]) -> None:
        """Answer the overdue requests with 503, and end this worker so that the parent starts another."""
        channels = []
        for request in overdue:
            log.error(
                "fitserve worker %d: request %s (%s %s) has run %.1f s, past the worker timeout of %g s; "
                "answering 503 and replacing this worker",
                os.getpid(), request.request_id, request.method, request.path,
                time.monotonic() - request.started, self.limit,
            )  # fmt: skip
            channel = answer_unavailable(request, self.limit)
            if channel is not None:
                channels.append(channel)
        deadline = time.monotonic() + SEND_WAIT
        while time.monotonic() < deadline and any(sending(channel) for channel in channels):
            time.sleep(0.01)
        logging.shutdown()
        os._exit(EXIT_STUCK)


def answer_unavailable(request: Request, limit: float) -> Any:
    """Write a 503 on the request's connection; return its channel, or None when it cannot be written."""
    body = render_problem(
        503,
        f"The request ran past the worker timeout of {limit:g} seconds (setting worker_timeout, "
        "FITSERVE_WORKER_TIMEOUT); the worker serving it is being replaced. Send it again, or a smaller request.",
        request_id=request.request_id,
    )
    protocol = request.environ.get("SERVER_PROTOCOL", "HTTP/1.1")
    head = (
        f"{protocol} 503 Service Unavailable\r\nServer: fitserve\r\nContent-Type: {PROBLEM_JSON}\r\n"
        f"Content-Length: {len(body)}\r\nX-Request-ID: {request.request_id}\r\nConnection: close\r\n\r\n"
    )
    finish = request.finish
    if finish is not None:
        finish(503, len(body))
    channel = getattr(request.environ.get("waitress.client_disconnected"), "__self__", None)
    if channel is None:
        return None
    try:
        channel.write_soon(head.encode("latin-1") + body)
    except Exception:  # waitress's ClientDisconnected, or the socket already gone: nobody to answer
        return None
    return channel


def sending(channel: Any) -> bool:
    """Whether a waitress channel still has bytes to send."""
    return bool(channel.connected and channel.total_outbufs_len)


def arm(limit: float, beats: Beats | None = None, slot: int = 0) -> Watchdog:
    """In a worker process: publish to ``beats[slot]`` and start the watchdog thread."""
    UNDER_WAY.beats, UNDER_WAY.slot = beats, slot
    if beats is not None:
        beats.set(slot, 0.0)
    watchdog = Watchdog(limit)
    watchdog.start()
    return watchdog
