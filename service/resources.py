"""Thin responders: read the body, parse, fit, render, answer."""

from __future__ import annotations

import io

import falcon
import orjson
from falcon.media import MultipartFormHandler
from falcon.media.multipart import MultipartParseOptions
from falcon.uri import parse_query_string

from service.body import read_body
from service.errors import MalformedBody, NotAcceptable, UnsupportedMediaType, excerpt
from service.fitting import fit
from service.groups import design_groups, fit_groups, fit_sizes, is_group_request
from service.negotiation import ANSWER_TYPES, TABLE_TYPES, not_acceptable, offered, render_for
from service.openapi import build_document
from service.parse.forms import Part, parse_csv, parse_form
from service.parse.json import parse_json
from service.rendering import render_groups_csv, render_groups_json
from service.request import Endpoint, GroupRequest
from service.settings import Settings
from service.tabular import design_request
from service.version import __version__

JSON = "application/json"
CSV = "text/csv"
MULTIPART = "multipart/form-data"


class FitResource:
    """``POST /fit`` and ``POST /predict``: fit the posted data, predict, answer."""

    def __init__(self, settings: Settings, endpoint: Endpoint) -> None:
        self.settings = settings
        self.endpoint = endpoint
        # A part may be as large as the whole body may be (Falcon's default stops at 1 MiB).
        options = MultipartParseOptions()
        options.max_body_part_buffer_size = settings.max_body_bytes
        self.multipart = MultipartFormHandler(options)

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        """Fit and answer."""
        if req.client_prefers(list(ANSWER_TYPES)) is None:  # before reading a body for nothing
            raise not_acceptable(req.path, req.accept)
        media = media_type(req, self.endpoint)
        body = read_body(req, self.settings.max_body_bytes)
        limits = self.settings.limits
        params = parse_query_string(req.query_string, keep_blank=True)
        if media == JSON:
            parsed = parse_json(body, self.endpoint, limits, params)
        elif media == CSV:
            parsed = parse_csv(body.take(), params, self.endpoint, limits)
        else:
            parts = read_parts(self.multipart, body.take(), req.content_type or MULTIPART)
            parsed = parse_form(parts, params, self.endpoint, limits)
        if is_group_request(parsed):
            self.answer_groups(req, resp, design_groups(parsed, limits))
            return
        request = design_request(parsed, limits)
        answer_type = req.client_prefers(list(offered(request)))
        if answer_type is None:
            raise not_acceptable(req.path, req.accept, request)
        result = fit(request)
        # For the access log and metrics: sizes only, never a value.
        req.context.fit_sizes = (result.n_samples, result.n_features, result.n_targets)
        resp.content_type = answer_type
        resp.data = render_for(answer_type, request, result)
        resp.vary = ("Accept",)

    def answer_groups(self, req: falcon.Request, resp: falcon.Response, request: GroupRequest) -> None:
        """Fit one model per group and answer in JSON or CSV (a picture of many fits is a 406)."""
        answer_type = req.client_prefers(list(TABLE_TYPES))
        if answer_type is None:
            raise NotAcceptable(
                f"A fit per group ('by') has no picture: {req.path} answers {' or '.join(TABLE_TYPES)} here, "
                f"but the Accept header takes neither (got {excerpt(req.accept, 80)!r})."
            )
        result = fit_groups(request)
        req.context.fit_sizes = fit_sizes(result)
        resp.content_type = answer_type
        resp.data = render_groups_csv(result) if answer_type == CSV else render_groups_json(result)
        resp.vary = ("Accept",)


def media_type(req: falcon.Request, endpoint: Endpoint) -> str:
    """The body's media type, if this endpoint takes it; else 415 saying what it takes."""
    content_type = (req.content_type or "").split(";", 1)[0].strip().lower()
    if content_type == JSON or (content_type.startswith("application/") and content_type.endswith("+json")):
        return JSON
    if content_type in (CSV, MULTIPART):
        return content_type
    arrived = f"got {content_type[:60]}" if content_type else "got no Content-Type"
    hint = ""
    if content_type == "application/x-www-form-urlencoded":
        hint = " (curl's -d sends that: use --json for JSON, or -F for CSV files)"
    raise UnsupportedMediaType(
        f"/{endpoint} takes application/json, text/csv or multipart/form-data; {arrived}{hint}. "
        "With curl: --json '{...}' for JSON, --data-binary @train.csv -H 'Content-Type: text/csv' "
        "for a CSV training table, or -F train=@train.csv -F test=@test.csv for multipart."
    )


def read_parts(handler: MultipartFormHandler, body: bytes, content_type: str) -> list[Part]:
    """Split a multipart/form-data body into its named parts with Falcon's parser; 400 if malformed."""
    try:
        form = handler.deserialize(io.BytesIO(body), content_type, len(body))
        return [(part.name, part.get_data()) for part in form]
    except falcon.HTTPError as exc:  # MultipartParseError, or HTTPInvalidHeader for a missing boundary
        reason = str(exc.description or exc.title).rstrip(".")
        raise MalformedBody(f"The body is not valid multipart/form-data: {reason[:200]}.") from None


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
