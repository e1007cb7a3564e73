"""Spreading connections over worker processes: the free worker with fewest connections takes a new one.

Worker processes share the listening sockets, and a keep-alive connection stays with the
worker that accepted it. Left alone, eight busy connections can end up six on one worker
and two on the other (or all eight on one): one core queues while the other idles, and the
throughput and the waits change from one run to the next. So each worker publishes, in
shared memory (``Loads``, an anonymous mapping made before forking), its open connections
and its requests under way or waiting for a thread. A worker with a thread free takes a new
connection unless another worker with a thread free has fewer connections; a worker with
every thread busy takes it only when no worker has a thread free and every other one has more
connections (``SharedListener.readable``).

Asking a busier worker's clients to reconnect (``Connection: close``) was tried and left out:
a client sent away waited in the backlog up to the loop's one-second poll, and the small
load's p99 rose from about 60 ms to 300-950 ms.

Outside the workers (one process, a server in a thread) nothing is shared, and a listener
takes a connection whenever it has a thread free. The waitress internals read here are
``TcpWSGIServer.readable``, ``._map``, ``.task_dispatcher.queue``, ``.active_count``
and ``.threads`` (``tests/test_channel.py`` checks each).
"""

from __future__ import annotations

import mmap
import struct
from typing import Any

import waitress.channel
import waitress.server

#: The figures of a slot whose worker does not serve (yet): never free, never fewest.
NOBODY = 2**31 - 1


class Loads:
    """Per worker slot, its open connections and its requests under way or waiting, shared by the processes."""

    def __init__(self, slots: int) -> None:
        self.slots = max(1, slots)
        self.memory = mmap.mmap(-1, 8 * self.slots)
        for slot in range(self.slots):
            self.set(slot, NOBODY, NOBODY)

    def set(self, slot: int, connections: int, busy: int) -> None:
        """Publish a slot's figures."""
        struct.pack_into("ii", self.memory, 8 * slot, min(connections, NOBODY), min(busy, NOBODY))

    def get(self, slot: int) -> tuple[int, int]:
        """A slot's open connections and busy requests, as its worker last said."""
        connections, busy = struct.unpack_from("ii", self.memory, 8 * slot)
        return connections, busy

    def others(self, slot: int) -> list[tuple[int, int]]:
        """The figures of every other slot."""
        return [self.get(other) for other in range(self.slots) if other != slot]


class Share:
    """This worker's slot in the shared ``Loads`` (set in each worker after the fork)."""

    loads: Loads | None = None
    slot = 0


SHARE = Share()


def join(loads: Loads, slot: int) -> None:
    """Publish this process's figures in ``slot`` of ``loads`` from now on (called in a forked worker)."""
    SHARE.loads, SHARE.slot = loads, slot


def busy(tasks: Any) -> int:
    """Requests of a task dispatcher under way or waiting for a thread."""
    return int(tasks.active_count) + len(tasks.queue)


def takes(connections: int, load: int, threads: int, others: list[tuple[int, int]]) -> bool:
    """Whether a worker with these figures should take a new connection, given the others'."""
    free = [c for c, b in others if b < threads]
    if load < threads:
        return connections <= min(free, default=NOBODY)
    return not free and connections < min((c for c, _ in others), default=NOBODY) < NOBODY


class SharedListener(waitress.server.TcpWSGIServer):  # type: ignore[misc]
    """A listening socket shared with other worker processes: the free worker with fewest connections takes one.

    Every worker is woken by a new connection and the quickest takes it; without this, a
    worker with all its threads fitting could take it too, and make it wait while another
    worker idles. Connections left waiting go to the first worker free to take them.
    """

    def readable(self) -> bool:
        """Whether to accept now: as waitress decides, and only as ``takes`` says.

        Called by the loop before each wait, so that the figures published are never stale for long.
        """
        accepting = bool(super().readable())
        tasks = self.task_dispatcher
        loads = SHARE.loads
        if loads is None:
            return accepting and not tasks.queue and tasks.active_count < len(tasks.threads)
        connections = sum(isinstance(each, waitress.channel.HTTPChannel) for each in list(self._map.values()))
        load = busy(tasks)
        loads.set(SHARE.slot, connections, load)
        return accepting and takes(connections, load, len(tasks.threads), loads.others(SHARE.slot))
