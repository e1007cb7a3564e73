"""Spreading work over worker processes (``service.balancing``): who takes a connection, who lets one go.

Each rule is checked on waitress's real listener and dispatcher, with the other workers'
loads written into the shared memory as another process would.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import pytest
import waitress

from service.balancing import NOBODY, SHARE, Loads, SharedListener, join, let_go


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


def other(load: int) -> None:
    """Say, as the worker in slot 1 would, how busy it is."""
    assert SHARE.loads is not None
    SHARE.loads.set(1, load)


def test_loads_written_in_a_forked_worker_are_seen_by_the_parent() -> None:
    loads = Loads(3)
    assert [loads.get(slot) for slot in range(3)] == [NOBODY] * 3  # nobody serves yet
    pid = os.fork()
    if pid == 0:
        loads.set(2, 5)
        os._exit(0)
    os.waitpid(pid, 0)
    assert loads.get(2) == 5
    assert loads.fewest_elsewhere(0) == 5 and loads.fewest_elsewhere(2) == NOBODY


def test_a_free_worker_takes_a_connection_unless_another_is_less_busy(listener: Any) -> None:
    other(1)
    assert listener.readable()
    assert SHARE.loads is not None and SHARE.loads.get(0) == 0  # it published its own load
    other(0)
    assert listener.readable()  # as free as the other: either may take it
    listener.task_dispatcher.queue.append(object())  # now busier than the other, its thread taken
    try:
        assert not listener.readable()
    finally:
        listener.task_dispatcher.queue.clear()


def test_a_worker_with_every_thread_busy_takes_a_connection_only_when_the_others_are_busier(listener: Any) -> None:
    tasks = listener.task_dispatcher
    tasks.active_count = 1  # its one thread fits
    try:
        other(NOBODY)  # the other worker does not serve yet (starting, or replaced): wait for it
        assert not listener.readable()
        other(1)  # as busy
        assert not listener.readable()
        other(3)  # busier: the connection would wait longer there
        assert listener.readable()
    finally:
        tasks.active_count = 0


def task(active: int, queued: int, pipelined: int = 0) -> Any:
    """An answer being written by a worker with ``active`` requests under way and ``queued`` waiting."""
    dispatcher = SimpleNamespace(active_count=active, queue=[object()] * queued)
    channel = SimpleNamespace(requests=[object()] * (1 + pipelined), server=SimpleNamespace(task_dispatcher=dispatcher))
    return SimpleNamespace(channel=channel)


def test_a_worker_busier_than_another_by_two_lets_the_connection_go(listener: Any) -> None:
    other(1)
    assert let_go(task(active=1, queued=3))  # 3 left after this answer, against 1
    assert not let_go(task(active=1, queued=2))  # 2 against 1: moving would not help
    assert not let_go(task(active=1, queued=3, pipelined=1))  # its next request is already here
    other(NOBODY)
    assert not let_go(task(active=1, queued=3))  # nowhere to go


def test_a_single_process_never_lets_a_connection_go() -> None:
    assert SHARE.loads is None
    assert not let_go(task(active=1, queued=10))
