"""A small client of fitserve for notebooks and scripts: numpy, lists or pandas in, answers out.

::

    import service
    from service import client

    with service.serve_in_background(port=0) as server:
        answer = client.fit(server.url, X_train, y_train, X_test, statistics=True)
        again = client.predict(server.url, X_new, model=answer)  # no refit

Inputs are converted to the JSON the service takes (``GET /openapi.json``), as follows.

- a numpy array or a list: a 2-D one is a list of rows, a 1-D one a flat list (one feature, or one target);
- a dict of columns (numpy arrays or lists): named columns, as a ``DataFrame``;
- a pandas ``DataFrame``: an object of named columns, so column names become ``feature_names``
  (or ``target_names`` for ``y_train``); names that are not strings are turned into strings;
- a pandas ``Series``: with a name, one named column (a named feature or a named target);
  without one, a flat list. The index of a ``DataFrame`` or ``Series`` is ignored: rows go by position.

Numeric and boolean columns are sent as floats; anything else is sent as it is, for the service
to reject with a message naming the field and the position. ``NaN``, infinities and pandas'
``NA`` are sent as ``null``, which the service rejects in the same way. Options left at the
contract's defaults are not sent. ``url`` is a base URL or anything with a ``.url`` (the handle
of ``serve_in_background``). HTTP is spoken by ``urllib.request``; pandas is never imported
here, only recognised when it is already loaded.

``picture="svg"`` (or ``"png"``) asks for a picture of the fit instead of the JSON answer,
and returns its bytes (``IPython.display.SVG(data)`` or ``Image(data)`` shows it in a notebook)::

    svg = client.fit(server.url, X_train, y_train, X_test, interval="prediction", picture="svg")

Every error answer raises ``ServiceError`` (``.status``, ``.title``, ``.detail``, ``.field``,
from the problem+json body). A server that cannot be reached raises ``urllib.error.URLError``
(an ``OSError``), as urllib does.
"""

from __future__ import annotations

import urllib.error
import urllib.request
from collections.abc import Mapping
from typing import Any, Literal, Protocol, overload

import orjson

from service.client_data import matrix, plain, table, vector

__all__ = ["ServiceError", "fit", "groups", "health", "predict"]

DEFAULT_TIMEOUT = 60.0
Interval = Literal["none", "confidence", "prediction"]
Picture = Literal["svg", "png"]
Missing = Literal["fail", "drop"]
PICTURE_TYPES: dict[str, str] = {"svg": "image/svg+xml", "png": "image/png"}
MODEL_KEYS = ("coef", "intercept", "feature_names", "target_names", "formula", "design")


class Served(Protocol):
    """Anything with a ``url``, such as the handle of ``service.serve_in_background``."""

    url: str


class ServiceError(Exception):
    """The service answered with an error (problem+json): its status, title, detail and field."""

    def __init__(self, status: int, title: str, detail: str, field: str | None = None) -> None:
        super().__init__(f"{status} {title}: {detail}")
        self.status = status
        self.title = title
        self.detail = detail
        self.field = field


def health(url: str | Served, *, timeout: float = DEFAULT_TIMEOUT) -> dict[str, Any]:
    """Ask ``GET /health``: ``{"status": "ok", "version": ...}``."""
    return request(url, "/health", None, None, timeout)


@overload
def fit(
    url: str | Served,
    X_train: Any,
    y_train: Any = None,
    X_test: Any = None,
    *,
    formula: str | None = None,
    target: str | None = None,
    weight: str | None = None,
    by: str | None = None,
    missing: Missing = "fail",
    sample_weight: Any = None,
    fit_intercept: bool = True,
    positive: bool = False,
    statistics: bool = False,
    interval: Interval = "none",
    level: float = 0.95,
    token: str | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    picture: None = None,
) -> dict[str, Any]: ...


@overload
def fit(
    url: str | Served,
    X_train: Any,
    y_train: Any = None,
    X_test: Any = None,
    *,
    formula: str | None = None,
    target: str | None = None,
    weight: str | None = None,
    by: str | None = None,
    missing: Missing = "fail",
    sample_weight: Any = None,
    fit_intercept: bool = True,
    positive: bool = False,
    statistics: bool = False,
    interval: Interval = "none",
    level: float = 0.95,
    token: str | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    picture: Picture,
) -> bytes: ...


def fit(
    url: str | Served,
    X_train: Any,
    y_train: Any = None,
    X_test: Any = None,
    *,
    formula: str | None = None,
    target: str | None = None,
    weight: str | None = None,
    by: str | None = None,
    missing: Missing = "fail",
    sample_weight: Any = None,
    fit_intercept: bool = True,
    positive: bool = False,
    statistics: bool = False,
    interval: Interval = "none",
    level: float = 0.95,
    token: str | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    picture: Picture | None = None,
) -> dict[str, Any] | bytes:
    """Fit on ``X_train`` and ``y_train`` (``POST /fit``); predict ``X_test`` when given.

    Without ``y_train`` (or with ``formula``, ``target`` or ``weight``), ``X_train`` is the
    training *table* and ``X_test`` the rows to predict, as R's ``lm(formula, data)`` takes
    them: ``client.fit(server, df, formula="price ~ sqft + hood", X_test=new)``; text columns
    are categorical and ``NaN``/``None`` are missing values (``missing="drop"`` leaves such rows
    out). ``by="store"`` fits once per distinct value of that column (``groups(answer)`` gives each
    group's fit by its value). With ``picture="svg"`` or ``"png"``, the picture of the fit, as bytes.
    """
    if y_train is None or formula is not None or target is not None or weight is not None or by is not None:
        if y_train is not None:
            raise ValueError("y_train goes with matrices; with a table, name the target in 'formula' or 'target'.")
        if sample_weight is not None:
            raise ValueError("sample_weight goes with matrices; with a table, name its column in 'weight'.")
        body: dict[str, Any] = {"train": table(X_train), "formula": formula, "target": target,
                                "test": table(X_test), "weight": weight, "by": by}  # fmt: skip
        if formula is not None and fit_intercept is not True:
            raise ValueError("With a formula, '- 1' in the formula removes the intercept, not fit_intercept.")
    else:
        body = {"X_train": matrix(X_train), "y_train": matrix(y_train), "X_test": matrix(X_test)}
        body["sample_weight"] = vector(sample_weight)
    body.update(options(fit_intercept, positive, statistics, interval, level))
    if missing != "fail":
        body["missing"] = missing
    if picture is not None:
        return send(url, "/fit", body, token, timeout, picture_type(picture))
    return request(url, "/fit", body, token, timeout)


def predict(
    url: str | Served,
    X_test: Any,
    *,
    model: Mapping[str, Any] | None = None,
    X_train: Any = None,
    y_train: Any = None,
    sample_weight: Any = None,
    fit_intercept: bool = True,
    positive: bool = False,
    statistics: bool = False,
    interval: Interval = "none",
    level: float = 0.95,
    missing: Missing = "fail",
    token: str | None = None,
    timeout: float = DEFAULT_TIMEOUT,
) -> dict[str, Any]:
    """Predict ``X_test`` (``POST /predict``) from a ``model`` (an earlier answer) or from training data.

    A model fitted from a table and a formula (its answer has a ``design``, or ``groups`` with
    ``by``) predicts a table: ``X_test`` is then sent as ``test``.
    """
    body: dict[str, Any] = {}
    if model is not None and ("design" in model or "groups" in model):
        body["test"] = table(X_test)
    else:
        body["X_test"] = matrix(X_test)
    if model is not None and "groups" in model:
        entries = [{key: g[key] for key in ("group", *MODEL_KEYS) if key in g} for g in model["groups"]]
        body["model"] = {"by": model.get("by"), "groups": entries}
    elif model is not None:
        body["model"] = {key: model[key] for key in MODEL_KEYS if key in model}
    body.update(X_train=matrix(X_train), y_train=matrix(y_train), sample_weight=vector(sample_weight))
    body.update(options(fit_intercept, positive, statistics, interval, level))
    if missing != "fail":
        body["missing"] = missing
    return request(url, "/predict", body, token, timeout)


def groups(answer: Mapping[str, Any]) -> dict[Any, dict[str, Any]]:
    """The fits of an answer with ``by``, by group value: ``client.groups(answer)["A"]["coef"]``."""
    return {entry["group"]: entry for entry in answer["groups"]}


def picture_type(picture: str) -> str:
    """The media type of a picture kind, ``"svg"`` or ``"png"``."""
    if picture not in PICTURE_TYPES:
        raise ValueError(f"picture must be 'svg' or 'png'. Got {picture!r} instead.")
    return PICTURE_TYPES[picture]


def options(
    fit_intercept: bool, positive: bool, statistics: bool, interval: Interval, level: float
) -> dict[str, Any]:
    """The options that differ from the contract's defaults (a ``model`` request takes no others)."""
    given = {
        "fit_intercept": fit_intercept if fit_intercept is not True else None,
        "positive": positive or None,
        "statistics": statistics or None,
        "interval": interval if interval != "none" else None,
        "level": level if level != 0.95 else None,
    }
    return {key: value for key, value in given.items() if value is not None}


def request(
    url: str | Served, path: str, body: dict[str, Any] | None, token: str | None, timeout: float
) -> dict[str, Any]:
    """Send one request and read its JSON answer; raise ``ServiceError`` on an error answer."""
    result: dict[str, Any] = orjson.loads(send(url, path, body, token, timeout, "application/json"))
    return result


def send(
    url: str | Served, path: str, body: dict[str, Any] | None, token: str | None, timeout: float, accept: str
) -> bytes:
    """Send one request asking for ``accept`` and return the answer's bytes; raise ``ServiceError`` on an error."""
    base = url if isinstance(url, str) else url.url
    headers = {"Accept": accept}
    data = None
    if body is not None:
        present = {key: value for key, value in body.items() if value is not None}
        data = orjson.dumps(present, option=orjson.OPT_SERIALIZE_NUMPY, default=plain)
        headers["Content-Type"] = "application/json"
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    sent = urllib.request.Request(base.rstrip("/") + path, data=data, headers=headers)
    try:
        with urllib.request.urlopen(sent, timeout=timeout) as answer:
            content: bytes = answer.read()
            return content
    except urllib.error.HTTPError as error:
        with error:
            raise problem(error.code, error.read()) from None


def problem(status: int, content: bytes) -> ServiceError:
    """The ``ServiceError`` of an error answer; a body that is not problem+json becomes the detail."""
    try:
        document = orjson.loads(content)
    except orjson.JSONDecodeError:
        document = None
    if not isinstance(document, dict):
        text = content.decode("utf-8", "replace").strip()[:200]
        return ServiceError(status, "Error", text or f"The server answered {status} without a body.")
    field = document.get("field")
    return ServiceError(
        status,
        str(document.get("title", "Error")),
        str(document.get("detail", "")),
        field if isinstance(field, str) else None,
    )
