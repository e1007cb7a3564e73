"""Thin responders: read the body, parse, fit, render, answer."""

from __future__ import annotations

import falcon

from service import __version__
from service.errors import BodyTooLarge, UnsupportedMediaType
from service.fitting import fit
from service.openapi import build_document
from service.parsing import Endpoint, parse_json
from service.rendering import render_csv, render_json
from service.settings import Settings

import orjson

JSON = "application/json"
CSV = "text/csv"


class FitResource:
    """``POST /fit`` and ``POST /predict``: fit the posted data, predict, answer."""

    def __init__(self, settings: Settings, endpoint: Endpoint) -> None:
        self.settings = settings
        self.endpoint = endpoint

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        """Fit and answer."""
        media = media_type(req, self.endpoint)
        body = read_body(req, self.settings.max_body_bytes)
        if media == JSON:
            request = parse_json(body, self.endpoint, self.settings.limits)
        else:  # pragma: no cover - media_type only lets JSON through for now
            raise UnsupportedMediaType(f"/{self.endpoint} does not take {media}.")
        result = fit(request)
        if req.client_prefers([JSON, CSV]) == CSV:
            resp.content_type = CSV
            resp.data = render_csv(result)
        else:
            resp.content_type = JSON
            resp.data = render_json(result)


def media_type(req: falcon.Request, endpoint: Endpoint) -> str:
    """The body's media type, if this endpoint takes it; else 415 saying what it takes."""
    content_type = (req.content_type or "").split(";", 1)[0].strip().lower()
    if content_type == JSON or (content_type.startswith("application/") and content_type.endswith("+json")):
        return JSON
    arrived = f"got {content_type}" if content_type else "got no Content-Type"
    hint = ""
    if content_type == "application/x-www-form-urlencoded":
        hint = " (curl's -d sends that: use --json for JSON)"
    raise UnsupportedMediaType(
        f"/{endpoint} takes application/json; {arrived}{hint}. "
        "With curl, send JSON with --json '{...}' or -H 'Content-Type: application/json'."
    )


def read_body(req: falcon.Request, limit: int) -> bytes:
    """Read the whole body, refusing one over ``limit`` bytes (before reading it when its length is declared)."""
    length = req.content_length
    if length is not None and length > limit:
        raise BodyTooLarge(too_large_detail(length, limit))
    body = req.bounded_stream.read(limit + 1)
    if len(body) > limit:
        raise BodyTooLarge(too_large_detail(None, limit))
    return body


def too_large_detail(length: int | None, limit: int) -> str:
    """Say that a body is over the limit."""
    size = f"{length} bytes" if length is not None else f"more than {limit} bytes"
    return (
        f"The body is {size}, but at most {limit} bytes ({limit / 2**20:g} MiB) are taken "
        "(setting max_body_mb, FITSERVE_MAX_BODY_MB)."
    )


class HealthResource:
    """``GET /health``: the service is up, and its version."""

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        """Answer that all is well."""
        resp.content_type = JSON
        resp.data = orjson.dumps({"status": "ok", "version": __version__})


class OpenAPIResource:
    """``GET /openapi.json``: the OpenAPI 3.1 document of the contract."""

    def __init__(self) -> None:
        self.document = orjson.dumps(build_document(__version__))

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        """Answer with the document."""
        resp.content_type = JSON
        resp.data = self.document
