"""Several server processes sharing the listening sockets: ``fitserve --workers N``.

A process runs Python on one core at a time, and a fit of a small request is mostly
Python; worker processes let the requests use every core. The parent binds the
sockets, forks the workers (each a waitress server with its share of ``--threads``,
taking connections from the same sockets), starts a new worker when one dies, and on
SIGTERM or SIGINT asks every worker to stop: each finishes the requests it has under way.
With a ``timeout`` it also replaces a worker stuck on one request (see ``service.watchdog``).

The parent imports neither numpy nor the app, and starts no thread: it forks before
anything that a fork could leave in a bad state exists, and each worker loads the app.
"""

from __future__ import annotations

import ctypes
import logging
import os
import shutil
import signal
import socket
import tempfile
import time
from collections.abc import Callable
from types import FrameType, TracebackType

from waitress.adjustments import Adjustments

from service.balancing import NOBODY, Loads, join
from service.settings import Settings, metrics_directory
from service.watchdog import Beats, arm

log = logging.getLogger("fitserve")

#: A worker that dies sooner than this after it started counts as failing to start.
QUICK_EXIT = 5.0
#: After this many quick exits in a row the service stops, rather than restart forever.
QUICK_EXITS_ALLOWED = 5
#: How often the parent looks for a stuck worker, when it has a timeout.
WATCH_INTERVAL = 0.5


def bind(settings: Settings) -> list[socket.socket]:
    """Bind and listen on every address the host resolves to, as waitress would."""
    adjustments = Adjustments(host=settings.host, port=settings.port)
    sockets = []
    try:
        for family, kind, protocol, address in adjustments.listen:
            listener = socket.socket(family, kind, protocol)
            sockets.append(listener)
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:
                listener.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            listener.bind(address)
            listener.listen(adjustments.backlog)
    except OSError:
        for listener in sockets:
            listener.close()
        raise
    return sockets


def url(listener: socket.socket) -> str:
    """The address a listening socket serves, as a URL."""
    host, port = listener.getsockname()[:2]
    return f"http://{f'[{host}]' if ':' in host else host}:{port}"


class Supervisor:
    """Start ``count`` workers on ``sockets``, keep them running, and stop them on a signal.

    ``work(sockets)`` runs in each forked worker and returns its exit status; it must
    stop gracefully on SIGTERM. SIGINT (Ctrl-C reaches every process of the terminal's
    group) is left to the parent, so that a worker is not told to stop twice, which
    would mean "stop now".
    """

    def __init__(
        self,
        sockets: list[socket.socket],
        count: int,
        work: Callable[[list[socket.socket]], int],
        timeout: float | None = None,
        on_exit: Callable[[int], None] | None = None,
    ) -> None:
        self.sockets = sockets
        self.count = count
        self.work = work
        self.workers: dict[int, float] = {}  # pid: when it started
        self.stopping = False
        self.quick_exits = 0
        # With a timeout: each worker's slot in shared memory, where it says since when it serves its oldest request
        self.timeout = timeout
        self.beats = Beats(count) if timeout is not None else None
        self.slots: dict[int, int] = {}  # pid: slot
        self.suspects: dict[int, float] = {}  # pid: the start it published that was seen overdue
        self.on_exit = on_exit
        self.loads = Loads(count)  # each worker's load: the least busy takes new connections

    def run(self) -> int:
        """Serve until a signal, or until workers keep failing; return the exit status."""
        previous = {signum: signal.signal(signum, self.on_signal) for signum in (signal.SIGTERM, signal.SIGINT)}
        try:
            for _ in range(self.count):
                self.start_worker()
            return self.watch()
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)

    def start_worker(self) -> None:
        """Fork a worker; in the child, serve and exit with ``work``'s status.

        Signals wait while it forks, so that a stop can never miss a worker just started.
        """
        stop_signals = {signal.SIGTERM, signal.SIGINT}
        signal.pthread_sigmask(signal.SIG_BLOCK, stop_signals)
        try:
            if self.stopping:
                return
            parent = os.getpid()
            slot = min(set(range(self.count)) - set(self.slots.values()), default=len(self.slots))
            pid = os.fork()
            if pid == 0:  # the worker
                status = 1
                try:
                    signal.signal(signal.SIGINT, signal.SIG_IGN)
                    signal.signal(signal.SIGTERM, signal.SIG_DFL)
                    stop_with_parent(parent)
                    signal.pthread_sigmask(signal.SIG_UNBLOCK, stop_signals)
                    if self.timeout is not None:
                        arm(self.timeout, self.beats, slot)
                    join(self.loads, slot)
                    status = self.work(self.sockets)
                except BaseException:
                    log.exception("fitserve worker %d failed", os.getpid())
                finally:
                    logging.shutdown()
                    os._exit(status)
            self.workers[pid] = time.monotonic()
            self.slots[pid] = slot
        finally:
            signal.pthread_sigmask(signal.SIG_UNBLOCK, stop_signals)

    def watch(self) -> int:
        """Wait for workers to exit; start new ones unless stopping; return the exit status."""
        status = 0
        while self.workers:
            pid, wait_status = self.wait()
            started = self.workers.pop(pid, None)
            slot = self.slots.pop(pid, None)
            if slot is not None:
                self.loads.set(slot, NOBODY, NOBODY)  # until another serves in its slot, no connection waits for it
            self.suspects.pop(pid, None)
            if self.on_exit is not None:
                self.on_exit(pid)
            if started is None or self.stopping:
                continue
            log.error("fitserve worker %d %s; starting another", pid, describe_exit(wait_status))
            self.quick_exits = self.quick_exits + 1 if time.monotonic() - started < QUICK_EXIT else 0
            if self.quick_exits >= QUICK_EXITS_ALLOWED:
                log.error("fitserve workers keep failing to start; stopping")
                self.stop()
                status = 1
                continue
            self.start_worker()
        for listener in self.sockets:
            listener.close()
        return status

    def wait(self) -> tuple[int, int]:
        """Wait for a worker to exit; meanwhile, with a timeout, kill any worker stuck past it."""
        if self.beats is None:
            return os.waitpid(-1, 0)  # retried after a signal handler runs (PEP 475)
        while True:
            pid, wait_status = os.waitpid(-1, os.WNOHANG)
            if pid:
                return pid, wait_status
            self.kill_stuck()
            time.sleep(WATCH_INTERVAL)

    def kill_stuck(self) -> None:
        """SIGKILL a worker whose oldest request has run past the timeout and a grace period.

        The grace period leaves the worker's own watchdog time to answer 503 first; a
        value must be seen overdue twice, so that a torn read of shared memory kills nobody.
        """
        assert self.beats is not None and self.timeout is not None
        limit = self.timeout + min(10.0, self.timeout)
        now = time.monotonic()
        for pid, slot in list(self.slots.items()):
            started = self.beats.get(slot)
            if not (started and now - started > limit):
                self.suspects.pop(pid, None)
                continue
            if self.suspects.get(pid) != started:
                self.suspects[pid] = started
                continue
            log.error(
                "fitserve worker %d has served one request for %.0f s, past the worker timeout of %g s, "
                "and does not answer; killing it",
                pid, now - started, self.timeout,
            )  # fmt: skip
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:  # exited meanwhile
                pass
            self.beats.set(slot, 0.0)

    def on_signal(self, signum: int, frame: FrameType | None) -> None:
        """Stop on SIGTERM or SIGINT; a second signal tells the workers to stop at once."""
        self.stop()

    def stop(self) -> None:
        """Ask every worker to stop (a second call: to stop without waiting for requests)."""
        if not self.stopping:
            self.stopping = True
            for listener in self.sockets:
                # The workers hold their own copies: closing the parent's takes no connection away.
                listener.close()
        for pid in list(self.workers):
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:  # exited, not yet reaped
                pass


def stop_with_parent(parent: int) -> None:
    """Have this worker sent SIGTERM if the parent dies (even by SIGKILL): no worker outlives it.

    Linux only (``prctl``); elsewhere it does nothing.
    """
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        PR_SET_PDEATHSIG = 1
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    except (OSError, AttributeError):
        return
    if os.getppid() != parent:  # it died before prctl took effect
        os.kill(os.getpid(), signal.SIGTERM)


def describe_exit(wait_status: int) -> str:
    """Say how a process ended, from its ``waitpid`` status."""
    if os.WIFSIGNALED(wait_status):
        return f"was killed by signal {signal.Signals(os.WTERMSIG(wait_status)).name}"
    return f"exited with status {os.waitstatus_to_exitcode(wait_status)}"


class MetricsDirectory:
    """The directory of the Prometheus client's multiprocess mode, for one run of the service.

    A fresh one at each start (in ``/dev/shm`` where it exists: memory, not disk), named
    in ``PROMETHEUS_MULTIPROC_DIR`` for the workers forked after it, and removed at the
    stop. ``mark_dead(pid)`` drops a dead worker's share of the in-progress gauge.

    A service killed with SIGKILL cannot remove its directory; its name holds the
    parent's process id, so that the next start removes the directories of services
    that no longer run (and only those: several may run on one machine).
    """

    PREFIX = "fitserve-metrics-"

    def __init__(self, base: str | None = None) -> None:
        shm = "/dev/shm"
        if base is None and os.path.isdir(shm) and os.access(shm, os.W_OK):
            base = shm
        self.base = base or tempfile.gettempdir()
        remove_stale(self.base, self.PREFIX)
        self.path = tempfile.mkdtemp(prefix=f"{self.PREFIX}{os.getpid()}-", dir=self.base)
        self.previous = metrics_directory()

    def __enter__(self) -> MetricsDirectory:
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = self.path
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        if self.previous is None:
            os.environ.pop("PROMETHEUS_MULTIPROC_DIR", None)
        else:
            os.environ["PROMETHEUS_MULTIPROC_DIR"] = self.previous
        shutil.rmtree(self.path, ignore_errors=True)

    def mark_dead(self, pid: int) -> None:
        """Forget a dead worker's live gauges (its counters stay: the totals never go down)."""
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(pid, self.path)  # type: ignore[no-untyped-call]


def remove_stale(base: str, prefix: str) -> None:
    """Remove the metrics directories in ``base`` whose service (the process id in the name) has ended."""
    for name in os.listdir(base):
        owner = name.removeprefix(prefix).split("-", 1)[0]
        if not name.startswith(prefix) or not owner.isdigit():
            continue
        try:
            os.kill(int(owner), 0)
        except ProcessLookupError:
            shutil.rmtree(os.path.join(base, name), ignore_errors=True)
        except PermissionError:  # another user's service, running
            continue
