"""Running waitress's loop ourselves, so that a stop drains the requests under way.

The waitress internals read here (``tests/test_channel.py`` checks each one):
``BaseWSGIServer.map`` (several listeners) or ``._map`` (one), ``.pull_trigger()``,
``.handle_accept()``, ``.adj``, ``.task_dispatcher.shutdown()``, ``wasyncore.loop``,
``close_all`` and ``dispatcher.close``; and a channel's ``.request``, ``.requests``,
``.total_outbufs_len``, ``.socket`` and ``.handle_close()``.
"""

from __future__ import annotations

import logging
import select
import socket
import time
from collections.abc import Iterator
from typing import Any

import waitress.channel
import waitress.wasyncore

from service.balancing import SharedListener
from service.channel import Timeouts, listeners

log = logging.getLogger("fitserve")

#: Seconds a worker sharing its listening socket waits for events before it looks again.
SHARED_POLL = 0.02


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
        if any(isinstance(each, SharedListener) for each in listeners(self.server)):
            # Whether to take a connection depends on the other workers' figures, which do not
            # wake this loop: look again this often, or a connection may wait a whole timeout.
            timeout = min(timeout, SHARED_POLL)
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


