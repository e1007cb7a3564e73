"""Each waitress internal that service/channel.py relies on is still there, and the fixes it carries.

When a waitress release changes one of these, the test names the internal and what relies on
it, rather than letting the server fail in some other way at run time.
"""

from __future__ import annotations

import http.client
import socket
import urllib.parse
from typing import Any

import orjson
import pytest
import waitress.channel
import waitress.parser
import waitress.receiver
import waitress.server
import waitress.task
import waitress.utilities
import waitress.wasyncore
from waitress.adjustments import Adjustments
from waitress.buffers import OverflowableBuffer

import service
from service.channel import LimitedParser

# (what, the object, the attribute, what relies on it): class attributes and methods.
CLASS_INTERNALS = [
    ("HTTPChannel", waitress.channel.HTTPChannel, "error_task_class", "ProblemChannel: problem+json errors"),
    ("HTTPChannel", waitress.channel.HTTPChannel, "task_class", "ProblemChannel: answers in one write"),
    ("HTTPChannel", waitress.channel.HTTPChannel, "parser_class", "ProblemChannel: the body limit"),
    ("HTTPChannel", waitress.channel.HTTPChannel, "received", "ProblemChannel: the request deadline"),
    ("HTTPChannel", waitress.channel.HTTPChannel, "readable", "ProblemChannel: dropping a late request"),
    ("HTTPRequestParser", waitress.parser.HTTPRequestParser, "received", "LimitedParser"),
    ("ChunkedReceiver", waitress.receiver.ChunkedReceiver, "chunk_remainder", "LimitedParser: declared chunks"),
    ("ErrorTask", waitress.task.ErrorTask, "execute", "ProblemErrorTask"),
    ("WSGITask", waitress.task.WSGITask, "write", "OneWriteTask"),
    ("WSGITask", waitress.task.WSGITask, "build_response_header", "OneWriteTask"),
    ("TcpWSGIServer", waitress.server.TcpWSGIServer, "readable", "SharedListener"),
    ("BaseWSGIServer", waitress.server.BaseWSGIServer, "channel_class", "adopt()"),
    ("BaseWSGIServer", waitress.server.BaseWSGIServer, "pull_trigger", "ServerLoop.stop"),
    ("BaseWSGIServer", waitress.server.BaseWSGIServer, "handle_accept", "accept_waiting on stop"),
    ("wasyncore", waitress.wasyncore, "loop", "ServerLoop.run"),
    ("wasyncore", waitress.wasyncore, "close_all", "ServerLoop.run"),
    ("wasyncore.dispatcher", waitress.wasyncore.dispatcher, "close", "ServerLoop.drain"),
    ("utilities", waitress.utilities, "RequestEntityTooLarge", "LimitedParser's 413"),
]


@pytest.mark.parametrize(("what", "owner", "name", "user"), CLASS_INTERNALS, ids=[f"{c[0]}.{c[2]}" for c in CLASS_INTERNALS])
def test_waitress_still_has(what: str, owner: object, name: str, user: str) -> None:
    assert hasattr(owner, name), f"waitress's {what} no longer has {name!r}, which {user} relies on"


def new_parser() -> Any:
    return waitress.parser.HTTPRequestParser(Adjustments())


# Attributes that exist only on instances, each checked on a real one.
PARSER_ATTRIBUTES = ["headers_finished", "error", "completed", "chunked", "body_rcv", "content_length", "expect_continue"]


@pytest.mark.parametrize("name", PARSER_ATTRIBUTES)
def test_a_request_parser_still_has(name: str) -> None:
    parser = new_parser()
    parser.received(b"POST / HTTP/1.1\r\nContent-Length: 2\r\n\r\n")
    assert hasattr(parser, name), f"waitress's HTTPRequestParser no longer has {name!r}, which LimitedParser reads"


def test_a_chunked_receiver_counts_what_the_chunk_under_way_declares() -> None:
    receiver = waitress.receiver.ChunkedReceiver(OverflowableBuffer(2**20))
    receiver.received(b"a\r\n12345")
    assert receiver.chunk_remainder == 5, "ChunkedReceiver.chunk_remainder no longer counts the declared bytes to come"
    assert len(receiver) == 5


def test_a_server_still_has_its_dispatcher_and_connection_map() -> None:
    server = waitress.create_server(lambda environ, start: [], host="127.0.0.1", port=0, threads=1)
    try:
        dispatcher = server.task_dispatcher
        for name in ("queue", "active_count", "threads"):
            assert hasattr(dispatcher, name), f"waitress's ThreadedTaskDispatcher no longer has {name!r} (SharedListener)"
        assert hasattr(server, "_map"), "waitress's server no longer has '_map' (ServerLoop runs the loop on it)"
        assert hasattr(server, "adj") and hasattr(server.adj, "backlog") and hasattr(server.adj, "asyncore_loop_timeout")
        assert hasattr(server, "effective_host") and hasattr(server, "effective_port"), "listening() reads these"
    finally:
        server.close()
        dispatcher.shutdown(timeout=1)


def test_a_channel_still_has_what_the_drain_reads() -> None:
    server = waitress.create_server(lambda environ, start: [], host="127.0.0.1", port=0, threads=1)
    left, right = socket.socketpair()
    try:
        channel = waitress.channel.HTTPChannel(server, left, ("127.0.0.1", 0), server.adj, map={})
        for name in ("request", "requests", "will_close", "total_outbufs_len"):
            assert hasattr(channel, name), f"waitress's HTTPChannel no longer has {name!r} (ProblemChannel, ServerLoop.drain)"
    finally:
        left.close()
        right.close()
        server.close()
        server.task_dispatcher.shutdown(timeout=1)


def test_a_wsgi_task_still_has_what_one_write_reads() -> None:
    server = waitress.create_server(lambda environ, start: [], host="127.0.0.1", port=0, threads=1)
    left, right = socket.socketpair()
    try:
        channel = waitress.channel.HTTPChannel(server, left, ("127.0.0.1", 0), server.adj, map={})
        request = new_parser()
        request.received(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        task = waitress.task.WSGITask(channel, request)
        names = ["wrote_header", "complete", "has_body", "chunked_response", "content_length", "content_bytes_written"]
        for name in names:
            assert hasattr(task, name), f"waitress's WSGITask no longer has {name!r}, which OneWriteTask reads"
        assert hasattr(task.channel, "write_soon"), "OneWriteTask writes with channel.write_soon"
    finally:
        left.close()
        right.close()
        server.close()
        server.task_dispatcher.shutdown(timeout=1)


def test_the_queue_logger_is_still_named_waitress_queue() -> None:
    assert waitress.utilities.queue_logger.name == "waitress.queue", "the CLI mutes 'waitress.queue' by name"


# The fix this module carries: a declared chunk over the limit is refused at its size line.


def test_a_chunk_declared_over_the_limit_is_refused_at_once() -> None:
    parser = type("Limited", (LimitedParser,), {"body_limit": 1000})(Adjustments())
    parser.received(b"POST /fit HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n")
    parser.received(b"1000000000000000000000000\r\n")  # 2**96 bytes, none of them sent
    assert parser.completed and isinstance(parser.error, waitress.utilities.RequestEntityTooLarge)


@pytest.mark.live
def test_a_chunk_of_2_to_the_96_gets_413_without_waiting() -> None:
    with service.serve_in_background(port=0, max_body_mb=1) as server:
        url = urllib.parse.urlsplit(server.url)
        with socket.create_connection((url.hostname, url.port), timeout=10) as connection:
            # Without the fix the server waits for the chunk's bytes until the request deadline (60 s).
            connection.sendall(
                b"POST /fit HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                b"Transfer-Encoding: chunked\r\n\r\n1000000000000000000000000\r\n{"
            )
            response = http.client.HTTPResponse(connection)
            response.begin()
            assert response.status == 413
            assert orjson.loads(response.read())["status"] == 413
