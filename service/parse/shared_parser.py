"""One simdjson parser per process, reused by one request at a time (bodies up to ``REUSE_LIMIT``)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

import simdjson


class SharedParser:
    """One simdjson parser for the process, used by one request at a time.

    A parser keeps its buffers between documents; a fresh one per request spends about
    half of the parse allocating and touching new memory. Parsing holds the GIL anyway,
    so taking turns costs no concurrency. A body over ``REUSE_LIMIT`` gets a parser of its
    own, freed after it: its buffers (about twice the body) would otherwise stay resident
    and add to the peak memory of the fit that follows.
    """

    REUSE_LIMIT = 16 * 2**20

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.parser = simdjson.Parser()

    @contextmanager
    def parse(self, data: bytes) -> Iterator[object]:
        """Parse ``data``: the document, or the error if simdjson refuses it.

        The document must not outlive the ``with`` block.
        """
        if len(data) > self.REUSE_LIMIT:
            try:
                own: object = simdjson.Parser().parse(data)
            except (ValueError, RuntimeError, UnicodeDecodeError) as exc:
                yield exc
                return
            del data  # this frame lives on while the caller reads: let the body go with its last holder
            yield own
            return
        with self.lock:
            try:
                document = self.parse_once(data)
            except (ValueError, RuntimeError, UnicodeDecodeError) as exc:
                yield exc
                return
            del data
            yield document

    def parse_once(self, data: bytes) -> object:
        """Parse with the shared parser, replacing it if a stale document still holds it."""
        try:
            return self.parser.parse(data)
        except RuntimeError as exc:
            if "re-use a parser" not in str(exc):
                raise
            # A document of an earlier request is still referenced (by an exception's
            # traceback, say): start a new parser rather than fail this request.
            self.parser = simdjson.Parser()
            return self.parser.parse(data)


PARSER = SharedParser()
