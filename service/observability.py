"""Request ids, the access log and metrics: one falcon middleware, first in the stack.

For every request that reaches the app:

- **Request id.** The request's own ``X-Request-ID`` when it is 1 to 128 visible ASCII
  characters (0x21-0x7E), else a new one (``uuid4().hex``). It is on ``req.context.request_id``
  from the start (error answers put it in their body as ``request_id``) and on every
  answer's ``X-Request-ID``.
- **Access log.** One line through the ``fitserve.access`` logger when the answer is
  ready: request id, method, path, status, duration, body bytes in and out, and for fits
  ``n_samples``, ``n_features``, ``n_targets`` (which the fit resource puts on
  ``req.context.fit_sizes``). Never a payload value, a query string or a header value
  other than the request id; a path that is not an endpoint is cut to a short excerpt.
- **Metrics** (``service.metrics``): requests by endpoint, method and status, duration
  by endpoint, training rows and features of fits, requests in progress. A path that is
  not an endpoint counts as ``other`` and an unknown method as ``OTHER``, so that no
  client can add label values (each is a time series kept for ever).
- **Watchdog.** Each request is registered with ``service.watchdog.UNDER_WAY`` while it
  runs, so that a worker whose request runs past its limit can be found and replaced.

Duration is measured from the app's first sight of the request (after waitress read it
whole) to its answer being ready, not sent.
"""

from __future__ import annotations

import logging
import time
import uuid

import falcon
from falcon.inspect import RouteInfo

from service.errors import excerpt
from service.logs import format_fields
from service.metrics import CONTENT_TYPE, Metrics
from service.watchdog import UNDER_WAY, Request, wait_for_exit

access_log = logging.getLogger("fitserve.access")

#: The label of every path that is not an endpoint, and of every method HTTP does not define.
OTHER_ENDPOINT = "other"
OTHER_METHOD = "OTHER"
METHODS = frozenset(falcon.COMBINED_METHODS)
#: How much of a path that is not an endpoint the log keeps: enough to see what was asked, too
#: little to hold a whole secret that a client put in a URL by mistake (a token is longer).
PATH_EXCERPT = 20
REQUEST_ID = "X-Request-ID"
MAX_REQUEST_ID = 128


def request_id(given: str | None) -> str:
    """The request's own id when it is 1 to 128 visible ASCII characters, else a new one."""
    if given is not None and 0 < len(given) <= MAX_REQUEST_ID and all(33 <= ord(c) <= 126 for c in given):
        return given
    return uuid.uuid4().hex


def request_id_of(req: falcon.Request) -> str:
    """The id of a request (made now if the middleware has not seen it)."""
    found = getattr(req.context, "request_id", None)
    if not isinstance(found, str):
        found = req.context.request_id = request_id(req.get_header(REQUEST_ID))
    return found


class Observer:
    """Falcon middleware: request ids, the access log, metrics, and the watchdog's register.

    ``endpoints`` are the app's route paths (the values the ``endpoint`` label may take
    besides ``other``); ``create_app`` sets them once its routes are added.
    """

    def __init__(self, metrics: Metrics, endpoints: frozenset[str] = frozenset()) -> None:
        self.metrics = metrics
        self.endpoints = endpoints

    def know_routes(self, routes: list[RouteInfo]) -> None:
        """Take the app's routes as the endpoints, and start each one's series at zero.

        Series at zero from the start are what Prometheus advises (a rate needs two points);
        in multiprocess mode it also opens each worker's files of counts at once, so that a
        worker holds the same file descriptors from its first request to its last.
        """
        self.endpoints = frozenset(route.path for route in routes)
        for route in routes:
            self.metrics.duration.labels(route.path)
            for method in route.methods:
                if not method.internal:
                    self.metrics.requests.labels(route.path, method.method, "200")
                    if method.method == "POST":
                        self.metrics.training_rows.labels(route.path)
                        self.metrics.training_features.labels(route.path)

    def process_request(self, req: falcon.Request, resp: falcon.Response) -> None:
        """Give the request its id, start its clock, count it in progress."""
        req.context.started = time.perf_counter()
        under_way = Request(request_id_of(req), req.method, self.path_of(req), req.env)
        under_way.finish = lambda status, size: self.record(req, status, size)
        req.context.under_way = under_way
        self.metrics.in_progress.inc()
        UNDER_WAY.begin(under_way)

    def process_response(
        self, req: falcon.Request, resp: falcon.Response, resource: object, req_succeeded: bool
    ) -> None:
        """Put the id on the answer; log the request and count it."""
        resp.set_header(REQUEST_ID, request_id_of(req))
        under_way: Request | None = getattr(req.context, "under_way", None)
        if under_way is None:  # process_request never ran (Falcon failed before it)
            return
        if not UNDER_WAY.end(under_way):
            wait_for_exit()  # the watchdog answered 503 and ends this worker: send nothing more
        self.metrics.in_progress.dec()
        finish, under_way.finish = under_way.finish, None  # no cycle left through req
        if finish is not None:
            finish(resp.status_code, len(resp.data) if resp.data is not None else body_size(resp))

    def record(self, req: falcon.Request, status: int, size: int) -> None:
        """Write the access-log line of a request and count it (once: the watchdog may answer first)."""
        under_way: Request = req.context.under_way
        if under_way.recorded:
            return
        under_way.recorded = True
        duration = time.perf_counter() - req.context.started
        endpoint = self.endpoint_of(req)
        method = req.method if req.method in METHODS else OTHER_METHOD
        sizes: tuple[int | None, int, int] | None = getattr(req.context, "fit_sizes", None)
        metrics = self.metrics
        metrics.requests.labels(endpoint, method, str(status)).inc()
        metrics.duration.labels(endpoint).observe(duration)
        if sizes is not None:
            if sizes[0] is not None:
                metrics.training_rows.labels(endpoint).observe(sizes[0])
            metrics.training_features.labels(endpoint).observe(sizes[1])
        fields: dict[str, object] = {
            "request_id": under_way.request_id,
            "method": excerpt(req.method, 16),
            "path": under_way.path,
            "status": status,
            "duration_ms": round(duration * 1000, 3),
            "request_bytes": req.content_length,
            "response_bytes": size,
        }
        if sizes is not None:
            fields.update(n_samples=sizes[0], n_features=sizes[1], n_targets=sizes[2])
        if access_log.isEnabledFor(logging.INFO):
            access_log.info("%s", format_fields(fields), extra={"access": fields})

    def path_of(self, req: falcon.Request) -> str:
        """The path as logged: an endpoint's in full, any other cut to a short excerpt."""
        return req.path if req.path in self.endpoints else excerpt(req.path, PATH_EXCERPT)

    def endpoint_of(self, req: falcon.Request) -> str:
        """The ``endpoint`` label: the route's path, or ``other``."""
        template = req.uri_template
        if template is not None:
            return template
        return req.path if req.path in self.endpoints else OTHER_ENDPOINT


def log_rejected(
    request_id: str, method: object, path: object, status: int, response_bytes: int, request_bytes: object = None
) -> None:
    """Write the access-log line of a request that waitress refused before the app saw it.

    Malformed HTTP (400, 431) and bodies over the limit (413) are answered by the server
    itself (``service.server``); they are logged here the same way, without a duration
    (``request_bytes`` is the declared length, when there is one).
    They are not counted in the metrics, which belong to the app.
    """
    fields: dict[str, object] = {
        "request_id": request_id,
        "method": excerpt(method, 16) if isinstance(method, str) else None,
        "path": excerpt(path, PATH_EXCERPT) if isinstance(path, str) else None,
        "status": status,
        "duration_ms": None,
        "request_bytes": request_bytes if isinstance(request_bytes, int) and request_bytes > 0 else None,
        "response_bytes": response_bytes,
    }
    access_log.info("%s", format_fields(fields), extra={"access": fields})


def body_size(resp: falcon.Response) -> int:
    """The size of an answer's body given as text or media (the app's own answers are bytes)."""
    text = resp.text
    return len(text.encode()) if text is not None else 0


class MetricsResource:
    """``GET /metrics``: the service's metrics in Prometheus' text format 0.0.4."""

    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        """Answer with the metrics (of every worker process, in multiprocess mode)."""
        resp.content_type = CONTENT_TYPE
        resp.data = self.metrics.expose()
