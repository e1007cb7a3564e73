"""Reading a request's body, and how a large body's memory is handled, end to end.

A body of up to ``max_body_mb`` (100 MiB by default) is held in memory, never on disk,
and the service keeps as few copies of it as it can, since a large fit's peak memory is
mostly copies of its body:

1. **Arriving.** waitress reads the socket 256 KiB at a time (``recv_bytes`` in
   ``service.server``) into one ``BytesIO`` per request; its ``inbuf_overflow`` is set above
   the body limit, so it never spills to a temporary file. ``service.channel.LimitedParser``
   refuses a body whose ``Content-Length`` is over the limit before reading it (413), and a
   chunked one as soon as its data passes the limit.
2. **Taken.** ``read_body`` takes the ``BytesIO``'s bytes without a copy (``getvalue()`` of a
   buffer nobody else writes to) and closes it, and the resource hands them over in a
   ``Body`` holder: after ``Body.take()`` the only reference is the parser's.
3. **Parsed.** simdjson copies the body into its own padded buffer, then builds its index
   and tape, all in one call: the peak (about 3.3 times the body, measured) is the body, that
   copy (pysimdjson always copies) and the index and tape (16 bytes a number). Once the call
   returns, ``service.parse.json`` lets the body go (``del``), so the arrays exported next do
   not add to the peak. Bodies up to ``SharedParser.REUSE_LIMIT`` (``service.parse.shared_parser``)
   reuse one parser's buffers; a larger one gets a parser of its own, freed with its document.
4. **Given back.** The fit that follows needs less than the parse. ``service.cli.tune_malloc``
   fixes glibc's mmap threshold (and one arena), so the large blocks go straight back to the
   system after each request instead of raising the resident set of the next one.
"""

from __future__ import annotations

import io
from typing import TYPE_CHECKING

from service.errors import BodyTooLarge

if TYPE_CHECKING:
    import falcon


class Body:
    """A request body handed over to a parser, which may let go of it once it holds its own copy.

    Large bodies are then not kept twice while they are parsed: the caller keeps only this
    holder, and ``take()`` leaves it empty.
    """

    def __init__(self, data: bytes) -> None:
        self.data = data

    def take(self) -> bytes:
        """Return the bytes, keeping no reference to them."""
        data, self.data = self.data, b""
        return data


def read_body(req: falcon.Request, limit: int) -> Body:
    """Read the whole body, refusing one over ``limit`` bytes (before reading it when its length is declared)."""
    length = req.content_length
    if length is not None and length > limit:
        raise BodyTooLarge(too_large_detail(length, limit))
    stream = req.env.get("wsgi.input")
    if length is not None and type(stream) is io.BytesIO and stream.tell() == 0:
        # waitress (and falcon.testing) hold the body in a BytesIO: take its bytes without a
        # copy, and close it so that only the parser holds them.
        body = stream.getvalue()
        stream.close()
        if len(body) > length:
            body = body[:length]
    elif length is None and req.env.get("wsgi.input_terminated"):
        # A chunked body (PEP 3333 servers that de-chunk say so): read no more than the limit allows.
        body = req.stream.read(limit + 1)
    else:
        body = req.bounded_stream.read(limit + 1)
    if len(body) > limit:
        raise BodyTooLarge(too_large_detail(None, limit))
    return Body(body)


def too_large_detail(length: int | None, limit: int) -> str:
    """Say that a body is over the limit."""
    size = f"{length} bytes" if length is not None else f"more than {limit} bytes"
    return (
        f"The body is {size}, but at most {limit} bytes ({limit / 2**20:g} MiB) are taken "
        "(setting max_body_mb, FITSERVE_MAX_BODY_MB)."
    )
