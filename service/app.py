"""``create_app(settings)``: routes, error answers and middleware. The only place that wires things."""

from __future__ import annotations

import hmac
import logging
import traceback
from typing import Any

import falcon
import falcon.inspect

from service.docs import DocsResource
from service.errors import PROBLEM_JSON, FitserveError, render_problem
from service.metrics import Metrics
from service.observability import MetricsResource, Observer, request_id_of
from service.resources import FitResource, HealthResource, OpenAPIResource
from service.settings import Settings, metrics_directory

log = logging.getLogger("fitserve")

OPEN_PATHS = frozenset({"/health", "/openapi.json", "/docs"})
#: The docs page's own files (its scripts and styles) are as open as the page.
OPEN_PREFIX = "/docs/"
ENDPOINTS = "POST /fit, POST /predict, GET /health, GET /openapi.json, GET /docs and GET /metrics"


def create_app(settings: Settings | None = None) -> falcon.App[falcon.Request, falcon.Response]:
    """Build the WSGI application for ``settings`` (the defaults when omitted)."""
    settings = settings or Settings()
    metrics = Metrics(metrics_directory())
    observer = Observer(metrics)
    middleware: list[Any] = [observer]  # first: every answer, a 401 too, gets its id, log line and count
    if settings.cors_origins:
        middleware.append(
            falcon.CORSMiddleware(allow_origins=list(settings.cors_origins), expose_headers=["WWW-Authenticate"])
        )
    if settings.token is not None:
        middleware.append(BearerAuth(settings.token))
    app = falcon.App(middleware=middleware)
    app.add_route("/fit", FitResource(settings, "fit"))
    app.add_route("/predict", FitResource(settings, "predict"))
    app.add_route("/health", HealthResource())
    app.add_route("/openapi.json", OpenAPIResource())
    docs = DocsResource(token_required=settings.token is not None)
    app.add_route("/docs", docs)
    app.add_route("/docs/{name}", docs, suffix="asset")
    app.add_route("/metrics", MetricsResource(metrics))
    observer.know_routes(falcon.inspect.inspect_routes(app))
    app.set_error_serializer(serialize_http_error)
    app.add_error_handler(Exception, handle_unexpected)
    app.add_error_handler(MemoryError, handle_memory_error)
    app.add_error_handler(FitserveError, handle_fitserve_error)
    return app


class BearerAuth:
    """Require ``Authorization: Bearer <token>``, compared in constant time.

    ``GET /health``, ``GET /openapi.json``, ``GET /docs`` (and its files) and CORS preflights stay open.
    """

    def __init__(self, token: str) -> None:
        self.expected = f"Bearer {token}".encode()

    def process_request(self, req: falcon.Request, resp: falcon.Response) -> None:
        """Refuse the request unless it carries the token."""
        if req.path in OPEN_PATHS or req.path.startswith(OPEN_PREFIX) or is_preflight(req):
            return
        given = (req.get_header("Authorization") or "").encode("utf-8", "surrogateescape")
        if not hmac.compare_digest(given, self.expected):
            raise falcon.HTTPUnauthorized(
                title="Unauthorized",
                description="This service needs the header 'Authorization: Bearer <token>' with its token; "
                "it was missing or wrong.",
                challenges=["Bearer"],
            )


def is_preflight(req: falcon.Request) -> bool:
    """Tell whether a request is a CORS preflight."""
    return (
        req.method == "OPTIONS"
        and req.get_header("Origin") is not None
        and req.get_header("Access-Control-Request-Method") is not None
    )


def serialize_http_error(req: falcon.Request, resp: falcon.Response, exc: falcon.HTTPError) -> None:
    """Render Falcon's own errors (401, 404, 405, ...) as problem+json, whatever ``Accept`` says."""
    status = exc.status_code
    detail = exc.description or default_detail(status, req)
    resp.content_type = PROBLEM_JSON
    resp.data = render_problem(status, detail, request_id=request_id_of(req))


def default_detail(status: int, req: falcon.Request) -> str:
    """A full sentence for an error Falcon raised without one."""
    path = req.path if len(req.path) <= 60 else req.path[:57] + "..."
    if status == 404:
        return f"There is no endpoint at {path!r}; the endpoints are {ENDPOINTS}."
    if status == 405:
        return f"{path!r} does not take {req.method}; the endpoints are {ENDPOINTS}."
    if status == 400:
        return "The request is malformed (a header or the query string cannot be parsed)."
    return "The request failed."


def handle_fitserve_error(req: falcon.Request, resp: falcon.Response, exc: FitserveError, params: object) -> None:
    """Answer a domain error with its status and problem+json."""
    resp.status = exc.status
    resp.content_type = PROBLEM_JSON
    resp.data = render_problem(exc.status, exc.detail, exc.field, request_id=request_id_of(req))
    if exc.status == 413:
        resp.set_header("Connection", "close")


def handle_memory_error(req: falcon.Request, resp: falcon.Response, exc: MemoryError, params: object) -> None:
    """Answer 503 when this request needed more memory than the machine has."""
    log.warning("out of memory serving %s %s (request %s)", req.method, req.path, request_id_of(req))
    resp.status = 503
    resp.content_type = PROBLEM_JSON
    resp.data = render_problem(
        503,
        "The server ran out of memory for this request; send a smaller request or try again later.",
        request_id=request_id_of(req),
    )


def handle_unexpected(req: falcon.Request, resp: falcon.Response, exc: Exception, params: object) -> None:
    """Answer 500 with generic text; log the failure's type and place, never its message or payload.

    Falcon's own errors never reach this handler: its handler for ``HTTPError`` is more specific.
    """
    # Where it failed, without the exception's message or source lines: either could quote the payload.
    frames = " <- ".join(f"{f.name} ({f.filename}:{f.lineno})" for f in reversed(traceback.extract_tb(exc.__traceback__)))
    log.error(
        "unexpected %s serving %s %s (request %s) at %s", type(exc).__name__, req.method, req.path, request_id_of(req), frames
    )
    resp.status = 500
    resp.content_type = PROBLEM_JSON
    resp.data = render_problem(
        500, "The server failed to answer this request; the failure has been logged.", request_id=request_id_of(req)
    )
