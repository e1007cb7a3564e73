"""Spreading requests over worker processes: the least busy takes new connections, the busiest lets one go.

Worker processes share the listening sockets, and a keep-alive connection stays with the
worker that accepted it. Left alone, eight busy connections can end up six on one worker
and two on the other (or all eight on one): one core queues while the other idles, and the
throughput and the waits change from one run to the next. So each worker publishes, in
shared memory (``Loads``, an anonymous mapping made before forking), how busy it is: its
requests under way plus those waiting for a thread. Then:

- **Taking.** A worker with a thread free accepts a new connection unless another worker is
  less busy; one with every thread busy only when every other worker serving is busier
  (``SharedListener.readable``): a free worker takes it before one whose threads all fit.
- **Letting go.** After an answer, a worker that would still be busier than another worker
  by more than one request answers with ``Connection: close`` (``let_go``): the client
  connects again, and the less busy worker takes the connection. A client whose requests
  the workers can keep up with is never asked to reconnect; only an unequal load moves.

Outside the workers (one process, a server in a thread) nothing is shared, and a listener
takes a connection whenever it has a thread free. The waitress internals read here are
``TcpWSGIServer.readable``, ``.task_dispatcher.queue``, ``.active_count``, ``.threads``,
``WSGITask.set_close_on_finish``, ``.channel.requests`` and ``.channel.server``
(``tests/test_channel.py`` checks each).
"""

from __future__ import annotations

import mmap
import struct
from typing import Any

import waitress.server

#: The load of a slot whose worker does not serve (yet): never the least busy.
NOBODY = 2**31 - 1


class Loads:
    """Per worker slot, its requests under way or waiting for a thread, shared by the processes."""

    def __init__(self, slots: int) -> None:
        self.slots = max(1, slots)
        self.memory = mmap.mmap(-1, 4 * self.slots)
        for slot in range(self.slots):
            self.set(slot, NOBODY)

    def set(self, slot: int, busy: int) -> None:
        """Publish how busy a slot's worker is."""
        struct.pack_into("i", self.memory, 4 * slot, min(busy, NOBODY))

    def get(self, slot: int) -> int:
        """How busy a slot's worker last said it was."""
        value: int = struct.unpack_from("i", self.memory, 4 * slot)[0]
        return value

    def fewest_elsewhere(self, slot: int) -> int:
        """The load of the least busy other worker (``NOBODY`` when there is none)."""
        return min((self.get(other) for other in range(self.slots) if other != slot), default=NOBODY)


class Share:
    """This worker's slot in the shared ``Loads`` (set in each worker after the fork)."""

    loads: Loads | None = None
    slot = 0


SHARE = Share()


def join(loads: Loads, slot: int) -> None:
    """Publish this process's load in ``slot`` of ``loads`` from now on (called in a forked worker)."""
    SHARE.loads, SHARE.slot = loads, slot


def busy(tasks: Any) -> int:
    """Requests of a task dispatcher under way or waiting for a thread."""
    return int(tasks.active_count) + len(tasks.queue)


class SharedListener(waitress.server.TcpWSGIServer):  # type: ignore[misc]
    """A listening socket shared with other worker processes: take a connection when least busy.

    Every worker is woken by a new connection and the quickest takes it; without this, a
    worker with all its threads fitting could take it too, and make it wait while another
    worker idles. Connections left waiting go to the first worker that becomes least busy.
    """

    def readable(self) -> bool:
        """Whether to accept now: as waitress decides, and only when no other worker is less busy.

        Called by the loop before each wait, so that the load published is never stale for long.
        """
        accepting = bool(super().readable())
        tasks = self.task_dispatcher
        loads = SHARE.loads
        if loads is None:
            return accepting and not tasks.queue and tasks.active_count < len(tasks.threads)
        load = busy(tasks)
        loads.set(SHARE.slot, load)
        fewest = loads.fewest_elsewhere(SHARE.slot)
        if not tasks.queue and tasks.active_count < len(tasks.threads):
            return accepting and load <= fewest
        # Every thread busy: take it only if every other worker serving is busier still.
        return accepting and load < fewest < NOBODY


def let_go(task: Any) -> bool:
    """Whether to close a connection after this answer: this worker would stay busier than another by two.

    Never with more requests of the same connection waiting (pipelined): they would be lost.
    """
    loads = SHARE.loads
    if loads is None or len(task.channel.requests) > 1:
        return False
    after = busy(task.channel.server.task_dispatcher) - 1
    loads.set(SHARE.slot, after)
    return after > loads.fewest_elsewhere(SHARE.slot) + 1
