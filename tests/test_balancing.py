"""Spreading connections over worker processes (``service.balancing``): which worker takes a new one.

Each rule is checked on waitress's real listener and dispatcher, with the other workers'
loads written into the shared memory as another process would.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from typing import Any

import pytest
import waitress

from service.balancing import NOBODY, SHARE, Loads, SharedListener, join, takes


@pytest.fixture
def listener() -> Iterator[Any]:
    """A waitress listener of one thread, as a worker's SharedListener in slot 0 of two."""
    server = waitress.create_server(lambda environ, start: [], host="127.0.0.1", port=0, threads=1)
    tasks = server.task_dispatcher
    deadline = time.monotonic() + 10
    while tasks.active_count and time.monotonic() < deadline:  # its thread starts, then waits for work
        time.sleep(0.01)
    server.__class__ = SharedListener
    join(Loads(2), 0)
    try:
        yield server
    finally:
        SHARE.loads, SHARE.slot = None, 0
        server.close()
        tasks.shutdown(timeout=1)


def other(connections: int, busy: int) -> None:
    """Say, as the worker in slot 1 would, how many connections it holds and how busy it is."""
    assert SHARE.loads is not None
    SHARE.loads.set(1, connections, busy)


def test_figures_written_in_a_forked_worker_are_seen_by_the_parent() -> None:
    loads = Loads(3)
    assert [loads.get(slot) for slot in range(3)] == [(NOBODY, NOBODY)] * 3  # nobody serves yet
    pid = os.fork()
    if pid == 0:
        loads.set(2, 5, 1)
        os._exit(0)
    os.waitpid(pid, 0)
    assert loads.get(2) == (5, 1)
    assert loads.others(0) == [(NOBODY, NOBODY), (5, 1)]


def test_a_free_worker_takes_a_connection_unless_another_free_one_has_fewer(listener: Any) -> None:
    other(0, 0)
    assert listener.readable()  # as few as the other: either may take it
    assert SHARE.loads is not None and SHARE.loads.get(0) == (0, 0)  # it published its own figures
    other(2, 1)  # the other worker has no thread free: this one takes it
    assert listener.readable()
    assert takes(connections=3, load=1, threads=2, others=[(1, 2)])  # fewer there, but every thread busy
    assert not takes(connections=3, load=1, threads=2, others=[(2, 1)])  # free there too, and fewer connections
    assert takes(connections=3, load=1, threads=2, others=[(3, 0)])


def test_a_worker_with_every_thread_busy_takes_a_connection_only_when_nobody_is_free_and_it_has_fewest(
    listener: Any,
) -> None:
    tasks = listener.task_dispatcher
    tasks.active_count = 1  # its one thread fits
    try:
        other(NOBODY, NOBODY)  # the other worker does not serve yet (starting, or replaced): wait for it
        assert not listener.readable()
        other(5, 0)  # a thread free there
        assert not listener.readable()
        other(0, 1)  # busy, and as few connections (this one has none)
        assert not listener.readable()
        other(1, 1)  # busy, with more connections
        assert listener.readable()
    finally:
        tasks.active_count = 0


def test_a_worker_sharing_its_socket_looks_at_the_others_figures_every_20_ms(
    listener: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The others' figures do not wake this loop: waiting out waitress's 1 s poll left a
    # connection nobody took waiting that long (the small load's p99 near 1 s).
    import service.loop

    timeouts: list[float] = []
    loop = service.loop.ServerLoop(listener, service.loop.Timeouts())

    def one_round(timeout: float, **kwargs: object) -> None:
        timeouts.append(timeout)
        loop.stop(wake=False)

    monkeypatch.setattr(service.loop.waitress.wasyncore, "loop", one_round)
    monkeypatch.setattr(loop, "drain", lambda: None)
    loop.run()
    assert timeouts[0] == pytest.approx(0.02)
    assert listener.adj.asyncore_loop_timeout == 1  # waitress's own, for a listener of its own
