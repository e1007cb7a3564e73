"""glibc's malloc set up for large requests: memory kept for the next request, given back when idle."""

from __future__ import annotations

import http.client
import subprocess
import sys
import threading
import time

import pytest

from service.channel import Timeouts
from service.loop import ServerLoop
from service.memory import IdleTrim
from service.server import create_server
from service.settings import Settings

#: Two large requests' blocks in turn, then a trim: resident growth and page faults, in bytes and faults.
TWO_LARGE_REQUESTS = """
import ctypes, resource, sys
from service import memory
if sys.argv[1] == "tuned":
    memory.tune_malloc()
libc = ctypes.CDLL(None)
libc.malloc.restype = ctypes.c_void_p
libc.free.argtypes = [ctypes.c_void_p]
SIZE = 64 * 2**20

def resident():
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024

def request():  # a large request's block: written, then freed
    block = libc.malloc(SIZE)
    ctypes.memset(block, 1, SIZE)
    libc.free(block)

before = resident()
request()
kept = resident() - before
faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
request()
faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults
memory.trim_heap()
print(kept, faults, resident() - before)
"""


def two_large_requests(mode: str) -> tuple[int, int, int]:
    """What the script above prints in this malloc mode."""
    command = [sys.executable, "-c", TWO_LARGE_REQUESTS, mode]
    kept, faults, trimmed = subprocess.run(command, capture_output=True, text=True, timeout=60, check=True).stdout.split()
    return int(kept), int(faults), int(trimmed)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc and /proc are Linux's")
def test_tuned_malloc_keeps_a_large_request_s_memory_for_the_next_until_trimmed() -> None:
    pages = 64 * 2**20 // 4096
    kept, faults, trimmed = two_large_requests("default")
    assert kept < 2**20 and faults > pages // 2  # glibc maps the block afresh each time, a page fault a page
    kept, faults, trimmed = two_large_requests("tuned")
    assert kept > 60 * 2**20  # kept in the heap...
    assert faults < pages // 20  # ...so the next request finds it faulted in
    assert trimmed < 4 * 2**20  # and a trim gives it back


def test_idle_trim_trims_once_after_a_quiet_spell_that_follows_work() -> None:
    trims: list[float] = []
    clock = [0.0]
    idle = IdleTrim(after=5.0, trim=lambda: trims.append(clock[0]))

    def tick(busy: bool, now: float) -> None:
        clock[0] = now
        idle.tick(busy, now)

    tick(False, 0.0)
    tick(False, 100.0)
    assert trims == []  # nothing was under way: nothing to give back
    tick(True, 101.0)
    tick(True, 103.0)
    tick(False, 107.9)
    assert trims == []  # 4.9 s since the last request
    tick(False, 108.0)
    tick(False, 300.0)
    assert trims == [108.0]  # once
    tick(True, 301.0)
    tick(False, 306.5)
    assert trims == [108.0, 306.5]


def test_the_server_loop_trims_the_heap_once_it_is_idle() -> None:
    trims: list[float] = []
    server = create_server(Settings(port=0))
    loop = ServerLoop(server, Timeouts(), IdleTrim(after=0.05, trim=lambda: trims.append(time.monotonic())))
    thread = threading.Thread(target=loop.run, daemon=True)
    thread.start()
    try:
        time.sleep(1.2)
        assert trims == []  # no request yet
        connection = http.client.HTTPConnection("127.0.0.1", server.effective_port, timeout=10)
        connection.request("POST", "/predict", body=b'{"X_train": [[1], [2], [3]], "y_train": [1, 2, 4], "X_test": [[4]]}',
                           headers={"Content-Type": "application/json"})  # fmt: skip
        answered = time.monotonic()
        assert connection.getresponse().status == 200
        connection.close()
        deadline = time.monotonic() + 5
        while not trims and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(trims) == 1 and trims[0] > answered
    finally:
        loop.stop()
        thread.join(timeout=10)
